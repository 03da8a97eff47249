#!/bin/bash
# test/pgversions.sh [MAJOR...]: wgpeer on the PostgreSQL majors Debian 12
# does not ship, each in a Debian chroot made here with debootstrap:
#	17	Debian 13 (trixie)
#	18	Debian sid (its index is a dated snapshot: apt is told not to
#		refuse it as expired)
# (default: both, in parallel).  Run as root on a Debian 12 machine (the
# host's own PostgreSQL 15 is tested by test/run.sh itself).
#
# In each chroot, as the host's CI does: the tree builds with -Werror,
# installs, and passes `make installcheck` (regress + isolation, as an
# ordinary user) with the apply worker started (its entry point found: the
# server log is checked), then test/upgrade.sh (every released version
# updated to the current one equals a fresh install).  The unit tests of
# the pure C layers run once, in the first chroot (they do not use
# PostgreSQL; a newer compiler and libsodium is what they add).
# With WGPEER_PGVERSIONS_WORKER=1 the worker's behavioural suite over
# wireguard-go (test/worker_test.sh --backend uapi) runs too.
#
# Each chroot (debootstrap, then PostgreSQL and the build dependencies) is
# kept under $WGPEER_CHROOT_CACHE (default /var/cache/wgpeer-chroots), keyed
# by suite, mirror, package list and day, so that later stages of one CI run
# reuse it; a run on another day, or with another mirror, makes a new one
# and removes the old.  Nothing is written into the cached chroot once it
# is ready: each run works in an overlay on top of it, thrown away at the
# end.  The mirror is the host's (its first non-security Debian source),
# or $WGPEER_DEBIAN_MIRROR.
#
# Prints each version's log, with a line per step and its time, and the
# regression diffs or server log of a failing step; exits non-zero when any
# version failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ "$(id -u)" -ne 0 ]; then
	echo "test/pgversions.sh makes chroots and mounts: run it as root" >&2
	exit 2
fi

CACHE=${WGPEER_CHROOT_CACHE:-/var/cache/wgpeer-chroots}
declare -A SUITE=([17]=trixie [18]=sid)
MAJORS=("$@")
[ ${#MAJORS[@]} -gt 0 ] || MAJORS=(17 18)
for m in "${MAJORS[@]}"; do
	[ -n "${SUITE[$m]:-}" ] || { echo "pgversions: no Debian suite known for PostgreSQL $m" >&2; exit 2; }
done

# What each chroot gets besides PostgreSQL MAJOR and its server headers:
# the build dependencies of test/install-deps.sh, and what the test
# scripts run (runuser and setpriv, ip, wireguard-go and wg, ping).
PACKAGES="build-essential pkgconf libkrb5-dev libsodium-dev libmnl-dev
	libqrencode-dev libpng-dev util-linux iproute2 procps bc perl
	wireguard-tools wireguard-go iputils-ping"
# Changes whenever the recipe below changes, so that no cached chroot of
# an older recipe is used.
RECIPE=2
TEST_USER=wgpeer_test

# debian_mirror: the Debian mirror this host uses, or $WGPEER_DEBIAN_MIRROR
debian_mirror() {
	local m=${WGPEER_DEBIAN_MIRROR:-}
	[ -n "$m" ] || m=$(awk 'tolower($1) == "uris:" && $2 !~ /security/ { print $2; exit }' \
		/etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	[ -n "$m" ] || m=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) break;
			if ($i !~ /security/) { print $i; exit } }' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
	echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=$(debian_mirror)

# retry N COMMAND...: COMMAND, tried up to N times, 10 s apart
retry() {
	local n=$1 i
	shift
	for ((i = 1; ; i++)); do
		"$@" && return 0
		[ "$i" -lt "$n" ] || return 1
		echo "   (failed, try $((i + 1)) of $n in 10 s: $*)"
		sleep 10
	done
}

# in_root ROOT COMMAND: COMMAND (a bash script) run in chroot ROOT as root,
# with a clean environment
in_root() {
	chroot "$1" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive bash -c "$2"
}

# mount_api ROOT: /proc, /sys, /dev (with /dev/shm, /dev/pts, /dev/net/tun)
# and a fresh /run and /tmp in ROOT, none of them propagating back
mount_api() {
	mount -t proc proc "$1/proc"
	mount --rbind /sys "$1/sys"
	mount --make-rslave "$1/sys"
	mount --rbind /dev "$1/dev"
	mount --make-rslave "$1/dev"
	mount -t tmpfs -o mode=755 tmpfs "$1/run"
	mount -t tmpfs -o mode=1777 tmpfs "$1/tmp"
}

# release_root ROOT: end every process still running in ROOT (a server a
# failed test left), then unmount ROOT and everything below it
release_root() {
	local root=$1 pid
	for pid in $(ls /proc | grep -E '^[0-9]+$'); do
		[ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] &&
			kill -9 "$pid" 2>/dev/null || true
	done
	umount -R "$root" 2>/dev/null || umount -R -l "$root" 2>/dev/null || true
}

# make_chroot DIR SUITE MAJOR: a ready chroot of SUITE in DIR, with
# PostgreSQL MAJOR and $PACKAGES installed (DIR must not exist)
make_chroot() {
	local dir=$1 suite=$2 major=$3
	retry 3 bash -c 'rm -rf "$1" && debootstrap --variant=minbase \
		--include=ca-certificates "$2" "$1" "$3" >"$1.debootstrap.log" 2>&1 ||
		{ tail -n 20 "$1.debootstrap.log"; [ -f "$1/debootstrap/debootstrap.log" ] &&
		  tail -n 20 "$1/debootstrap/debootstrap.log"; exit 1; }' _ "$dir" "$suite" "$MIRROR" ||
		return 1
	rm -f "$dir.debootstrap.log"
	# apt: retries, no recommends, no expiry check (sid's dated index);
	# no service started by a package, no cluster created by postgresql-MAJOR
	cat >"$dir/etc/apt/apt.conf.d/90wgpeer" <<-'EOF'
		Acquire::Retries "5";
		Acquire::Check-Valid-Until "false";
		APT::Install-Recommends "false";
	EOF
	printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
	chmod +x "$dir/usr/sbin/policy-rc.d"
	mkdir -p "$dir/etc/postgresql-common"
	echo "create_main_cluster = false" >"$dir/etc/postgresql-common/createcluster.conf"
	mount -t proc proc "$dir/proc"
	local status=0
	retry 3 in_root "$dir" "apt-get update -qq && apt-get install -y -qq \
		postgresql-$major postgresql-server-dev-$major $(echo $PACKAGES) >/tmp/apt.log 2>&1 ||
		{ tail -n 30 /tmp/apt.log; exit 1; }" || status=$?
	umount "$dir/proc"
	[ $status -eq 0 ] || return $status
	in_root "$dir" "useradd --system --create-home $TEST_USER && apt-get clean && rm -f /tmp/apt.log"
}

# cached_chroot SUITE MAJOR: set CHROOT to the cached chroot of SUITE for
# MAJOR, made first if today's is not there; its lock (fd 8) is then held
# shared, so that no other run removes it while this one uses it
cached_chroot() {
	local suite=$1 major=$2 key dir old t=$SECONDS
	key=$(printf '%s\n' "$RECIPE" "$MIRROR" "$major" $PACKAGES | sha1sum | cut -c1-10)
	dir=$CACHE/$suite-$(date -u +%Y%m%d)-$key
	mkdir -p "$CACHE"
	exec 8>"$CACHE/$suite.lock"
	flock 8
	if [ -e "$dir/.wgpeer-ready" ]; then
		echo "   reusing the $suite chroot $dir"
	else
		rm -rf "$dir.new"
		if ! make_chroot "$dir.new" "$suite" "$major"; then
			echo "   FAIL making the $suite chroot (debootstrap from $MIRROR, then postgresql-$major)"
			umount -R "$dir.new" 2>/dev/null || true
			rm -rf "$dir.new"
			return 1
		fi
		touch "$dir.new/.wgpeer-ready"
		mv "$dir.new" "$dir"
		echo "   ok   made the $suite chroot from $MIRROR with postgresql-$major ($((SECONDS - t)) s)"
		# older days' or mirrors' chroots of this suite go (2 GB each)
		for old in "$CACHE/$suite"-*; do
			[ -d "$old" ] && [ "$old" != "$dir" ] && rm -rf "$old"
		done
	fi
	flock -s 8
	CHROOT=$dir
}

# step NAME COMMAND: run COMMAND (a script for in_root in $MERGED), its
# output in $OUT/NAME.log; print a line with its time and result, and the
# output's end when it failed
step() {
	local name=$1 cmd=$2 t=$SECONDS status=0
	in_root "$MERGED" "$cmd" >"$OUT/$name.log" 2>&1 || status=$?
	if [ $status -eq 0 ]; then
		echo "   ok   $name ($((SECONDS - t)) s)${3:+: $(eval "$3")}"
	else
		echo "   FAIL $name ($((SECONDS - t)) s, exit $status); its output's end:"
		tail -n 60 "$OUT/$name.log" | sed 's/^/      /'
	fi
	return $status
}

# show_regress_failure: the diffs and server logs of a failed installcheck
show_regress_failure() {
	local f
	for f in regression.diffs output_iso/regression.diffs log/postmaster.log \
		output_iso/log/postmaster.log; do
		[ -f "$MERGED/build/wgpeer/$f" ] || continue
		echo "   ==== $f"
		tail -n 200 "$MERGED/build/wgpeer/$f" | sed 's/^/      /'
	done
}

# worker_started: the apply worker started in pg_regress's instances and
# the server found its entry point (PGXS builds with hidden symbols on 17+)
worker_started() {
	local logs=("$MERGED"/build/wgpeer/log/postmaster.log
		"$MERGED"/build/wgpeer/output_iso/log/postmaster.log)
	if grep -h 'could not find function\|could not load library' "${logs[@]}"; then
		return 1
	fi
	grep -q 'wgpeer apply worker started' "${logs[@]}"
}

# version MAJOR UNIT: the whole test of PostgreSQL MAJOR in its chroot
# (the unit tests too when UNIT is 1); its log on stdout
version() {
	local major=$1 unit=$2 suite=${SUITE[$1]} lower work status=0
	local t0=$SECONDS
	echo "== PostgreSQL $major (Debian $suite)"
	cached_chroot "$suite" "$major" || return 1
	lower=$CHROOT
	work=$(mktemp -d "$CACHE/run-$suite.XXXXXX")
	OUT=$work/out
	MERGED=$work/root
	mkdir -p "$work/upper" "$work/work" "$OUT" "$MERGED"
	mount -t overlay overlay \
		-o "lowerdir=$lower,upperdir=$work/upper,workdir=$work/work" "$MERGED"
	# shellcheck disable=SC2064
	trap "release_root '$MERGED'; rm -rf '$work'" EXIT
	mount_api "$MERGED"

	# the tree as git sees it (tracked and new files, nothing ignored:
	# no object of the host's build)
	mkdir -p "$MERGED/build/wgpeer"
	if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
		git -C "$ROOT" ls-files -z -co --exclude-standard |
			tar -C "$ROOT" --null -T - -cf - | tar -C "$MERGED/build/wgpeer" -xf -
	else
		tar -C "$ROOT" --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . |
			tar -C "$MERGED/build/wgpeer" -xf -
	fi
	echo "   $(in_root "$MERGED" "pg_config --version; gcc --version | head -n 1" | paste -sd ',' | sed 's/,/, /')"

	local B="cd /build/wgpeer &&"
	step build "$B make -s -j$(nproc) WERROR=-Werror" &&
		step install "$B make -s install && chown -R $TEST_USER /build/wgpeer" || status=1
	if [ $status -eq 0 ] && [ "$unit" = 1 ]; then
		step unittest "$B make -s -j$(nproc) WERROR=-Werror unittest" \
			"awk '/ passed, / { p += \$(NF - 3); f += \$(NF - 1) } END { print p \" passed, \" f \" failed\" }' \$OUT/unittest.log" || status=1
	fi
	if [ $status -eq 0 ]; then
		if step installcheck "$B runuser -u $TEST_USER -- make -s installcheck" \
			"grep -oE 'All [0-9]+ tests passed' \$OUT/installcheck.log | awk '{ print \$2 }' | paste -sd + | sed 's/$/ (regress+isolation) tests passed/'"; then
			if worker_started; then
				echo "   ok   the apply worker started in the test instances"
			else
				echo "   FAIL the apply worker did not start in the test instances (server logs above, if any)"
				status=1
			fi
		else
			show_regress_failure
			status=1
		fi
		step upgrade "$B bash test/upgrade.sh" \
			"tail -n 1 \$OUT/upgrade.log" || status=1
		if [ "${WGPEER_PGVERSIONS_WORKER:-0}" = 1 ]; then
			step worker_test "$B WGPEER_VM=never bash test/vm/run.sh test/worker_test.sh --backend uapi" \
				"tail -n 1 \$OUT/worker_test.log" || status=1
		fi
	fi
	if [ $status -eq 0 ]; then
		echo "== PostgreSQL $major: passed in $((SECONDS - t0)) s"
	else
		echo "== PostgreSQL $major: FAILED (after $((SECONDS - t0)) s)"
	fi
	return $status
}

command -v debootstrap >/dev/null || {
	echo "pgversions: debootstrap is missing (test/install-deps.sh installs it)" >&2
	exit 2
}
SECONDS=0
LOGS=$(mktemp -d /tmp/wgpeer-pgversions.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait; rm -rf "$LOGS"' EXIT
unit=1
for m in "${MAJORS[@]}"; do
	(version "$m" "$unit") >"$LOGS/$m.log" 2>&1 &
	PIDS+=($!)
	unit=0
done
failed=()
for i in "${!MAJORS[@]}"; do
	wait "${PIDS[$i]}" || failed+=("${MAJORS[$i]}")
	cat "$LOGS/${MAJORS[$i]}.log"
done
PIDS=()
if [ ${#failed[@]} -gt 0 ]; then
	echo "pgversions: PostgreSQL ${failed[*]} FAILED (${SECONDS} s)"
	exit 1
fi
echo "pgversions: PostgreSQL ${MAJORS[*]} passed in ${SECONDS} s"
