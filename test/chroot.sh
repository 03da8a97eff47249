#!/bin/bash
# test/chroot.sh: Debian chroots with another PostgreSQL major, made with
# debootstrap from the host's mirror and cached for the day; sourced by
# test/pgversions.sh and the suites that need a second major (run as root).
#	17	Debian 13 (trixie)
#	18	Debian sid (its index is a dated snapshot: apt is told not to
#		refuse it as expired)
#
# Each chroot (debootstrap, then PostgreSQL and the build dependencies) is
# kept under $WGPEER_CHROOT_CACHE (default /var/cache/wgpeer-chroots), keyed
# by suite, mirror, package list and day, so that later stages of one CI run
# reuse it; a run on another day, or with another mirror or recipe, makes a
# new one (and removes those of older days).  Nothing should be written
# into a cached chroot once it is ready: work in an overlay on top of it
# (overlay_root).  The mirror is the host's (its first non-security Debian
# source), or $WGPEER_DEBIAN_MIRROR.

CACHE=${WGPEER_CHROOT_CACHE:-/var/cache/wgpeer-chroots}
declare -A SUITE=([17]=trixie [18]=sid)
# What each chroot gets besides PostgreSQL MAJOR and its server headers:
# the build dependencies of test/install-deps.sh, what the test scripts
# run (runuser and setpriv, ip, wireguard-go and wg, ping), and what
# building the Debian package and checking it needs (dpkg-buildpackage,
# debhelper, lintian; postgresql-server-dev-all brings pg_buildext, which
# sid's postgresql-server-dev-18 no longer pulls in).  No fakeroot: the
# package says Rules-Requires-Root: no, and the build runs as root.
PACKAGES="build-essential pkgconf libkrb5-dev libsodium-dev libmnl-dev
	libqrencode-dev libpng-dev libcurl4-openssl-dev util-linux iproute2 procps bc perl
	wireguard-tools wireguard-go iputils-ping
	dpkg-dev debhelper lintian postgresql-server-dev-all"
# Changes whenever the recipe below changes, so that no cached chroot of
# an older recipe is used.
RECIPE=3
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
	# reusing a ready chroot needs the shared lock only; making one (and
	# removing older days') takes it exclusive, once no run uses one
	flock -s 8
	[ -e "$dir/.wgpeer-ready" ] || flock 8
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
		# older days' chroots of this suite go (2 GB each); today's of
		# another recipe or mirror stay, so that runs of two branches on
		# one machine do not remove each other's
		for old in "$CACHE/$suite"-*; do
			[ -d "$old" ] && [[ $old != "$CACHE/$suite-$(date -u +%Y%m%d)-"* ]] &&
				rm -rf "$old"
		done
	fi
	flock -s 8
	CHROOT=$dir
}


# overlay_root LOWER WORK: a writable overlay of chroot LOWER, its changes
# in directory WORK, mounted at $WORK/root with /proc, /sys, /dev, /run and
# /tmp (mount_api); sets MERGED to it.  release_root "$MERGED" undoes it.
overlay_root() {
	local lower=$1 work=$2
	MERGED=$work/root
	mkdir -p "$work/upper" "$work/work" "$MERGED"
	mount -t overlay overlay \
		-o "lowerdir=$lower,upperdir=$work/upper,workdir=$work/work" "$MERGED"
	mount_api "$MERGED"
}

# wgpeer_root MAJOR WORK: an overlay (overlay_root, in WORK) of today's
# chroot of PostgreSQL MAJOR with this tree built and installed in it (the
# tree as git sees it, copied to /build/wgpeer there, as test/pgversions.sh
# does), for the suites that run a server of another major beside the
# host's; sets MERGED.  The build's output is in WORK/build.log.
wgpeer_root() {
	local major=$1 work=$2 src
	src=$(git rev-parse --show-toplevel)
	cached_chroot "${SUITE[$major]}" "$major" >/dev/null || return 1
	overlay_root "$CHROOT" "$work"
	mkdir -p "$MERGED/build/wgpeer"
	git -C "$src" ls-files -z -co --exclude-standard |
		tar -C "$src" --null -T - -cf - | tar -C "$MERGED/build/wgpeer" -xf -
	in_root "$MERGED" "cd /build/wgpeer && make -s -j$(nproc) && make -s install" \
		>"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log"; return 1; }
}

# share_wireguard_run ROOT: the host's WireGuard UAPI socket directory
# (/var/run/wireguard, where test/wireguard.sh's wireguard-go daemons put
# their sockets) seen at the same path in chroot ROOT, whose /run is its
# own (mount_api), so that a worker there reaches the host's daemons
share_wireguard_run() {
	mkdir -p /run/wireguard "$1/run/wireguard"
	mount --bind /run/wireguard "$1/run/wireguard"
}

# host_pg_into ROOT: the host's PostgreSQL (the installation of the
# pg_config first in PATH, wgpeer included) copied into chroot ROOT at the
# same paths, so that pg_upgrade there finds both majors' binaries; the
# shared libraries they need that ROOT lacks (another Debian's sonames:
# ICU, LLVM, LDAP) are copied from the host into a directory of ROOT's
# dynamic linker (/usr/local/lib/wgpeer-host-pg), where no program of
# ROOT's own looks for them
host_pg_into() {
	local root=$1 bindir pkgdir sharedir missing so from i
	local libs=/usr/local/lib/wgpeer-host-pg
	bindir=$(pg_config --bindir)
	pkgdir=$(dirname "$bindir")
	sharedir=$(pg_config --sharedir)
	for d in "$pkgdir" "$sharedir"; do
		mkdir -p "$root$(dirname "$d")"
		[ -d "$root$d" ] || cp -a "$d" "$root$d"
	done
	mkdir -p "$root$libs"
	echo "$libs" >"$root/etc/ld.so.conf.d/wgpeer-host-pg.conf"
	for i in 1 2 3 4 5; do
		missing=$(in_root "$root" "ldconfig && for f in $bindir/* $(pg_config --pkglibdir)/*.so; do
				ldd \"\$f\" 2>/dev/null
			done | awk '/not found/ { print \$1 }' | sort -u")
		[ -n "$missing" ] || { HOST_PG_LIBS=$(ls "$root$libs" | paste -sd ' '); return 0; }
		for so in $missing; do
			# awk reads to the end: an early exit would kill ldconfig
			# with SIGPIPE, which pipefail turns into a failure
			from=$(ldconfig -p | awk -v s="$so" '$1 == s && !f { print $NF; f = 1 }')
			[ -n "$from" ] || { echo "host_pg_into: $so is not on the host either" >&2; return 1; }
			cp -L "$from" "$root$libs/$so"
		done
	done
	echo "host_pg_into: libraries still missing in $root: $missing" >&2
	return 1
}

# suite_root MAJOR NAME: for a suite (NAME) that runs PostgreSQL MAJOR in a
# chroot beside the host's: $WGPEER_ROOT_<MAJOR> when set (a root that
# wgpeer_root made already, shared between suites), else a new one made
# with wgpeer_root in a directory of the cache (SUITE_WORK, removed by
# suite_root_release); sets MERGED, with the host's UAPI socket directory
# shared into it
suite_root() {
	local major=$1 given
	given=WGPEER_ROOT_$major
	SUITE_WORK=
	if [ -n "${!given:-}" ]; then
		MERGED=${!given}
		echo "   using $MERGED"
	else
		mkdir -p "$CACHE"
		SUITE_WORK=$(mktemp -d "$CACHE/run-$2.XXXXXX")
		chmod 755 "$SUITE_WORK"		# the clusters' user reaches their sockets in it
		wgpeer_root "$major" "$SUITE_WORK" || return 1
		echo "   built and installed in $MERGED"
	fi
	mountpoint -q "$MERGED/run/wireguard" || share_wireguard_run "$MERGED"
}

# suite_root_release: undo suite_root (the root goes when it made it)
suite_root_release() {
	if [ -n "${SUITE_WORK:-}" ]; then
		[ -z "${MERGED:-}" ] || release_root "$MERGED"
		rm -rf "$SUITE_WORK"
		SUITE_WORK=
	elif [ -n "${MERGED:-}" ]; then
		umount "$MERGED/run/wireguard" 2>/dev/null || true
	fi
}

# own_wireguard_run SCRIPT [ARGS...]: re-run SCRIPT (the caller, "$0") in
# a mount namespace of its own, where /var/run/wireguard and /run/netns
# are empty tmpfs and every mount it makes (overlays, network namespaces)
# stays, going with it; then the UAPI sockets and the directory's mode,
# which test/wireguard.sh changes and gives back, are no other suite's, so
# that it runs beside the host's suites (test/run.sh's versions lane).
# Returns at once in that namespace.
own_wireguard_run() {
	[ -z "${WGPEER_OWN_WIREGUARD_RUN:-}" ] || return 0
	mkdir -p /run/wireguard /run/netns
	WGPEER_OWN_WIREGUARD_RUN=1 exec unshare --mount --propagation private -- bash -c \
		'mount -t tmpfs -o mode=755 tmpfs /run/wireguard &&
		 mount -t tmpfs -o mode=755 tmpfs /run/netns && exec bash "$@"' _ "$@"
}
