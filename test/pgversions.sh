#!/bin/bash
# test/pgversions.sh [MAJOR...]: wgpeer on the PostgreSQL majors Debian 12
# does not ship, each in a Debian chroot made here with debootstrap:
#	17	Debian 13 (trixie)
#	18	Debian sid (its index is a dated snapshot: apt is told not to
#		refuse it as expired)
# (default: both, in parallel).  Run as root on a Debian 12 machine (the
# host's own PostgreSQL 15 is tested by test/run.sh itself).
#
# In each chroot: the Debian package postgresql-MAJOR-wgpeer is built from
# the tree with dpkg-buildpackage (-Werror; the build runs the unit tests
# of the pure C layers, with that suite's compiler and libsodium), passes
# lintian, is installed in place of `make install` and works in a cluster
# made the Debian way (test/package_test.sh --chroot).  Against that one
# build: `make installcheck` (regress + isolation, as an ordinary user)
# with the apply worker started (its entry point found: the server log is
# checked), test/upgrade.sh (every released version updated to the current
# one equals a fresh install), the worker's behavioural suite over
# wireguard-go (test/worker_test.sh --backend uapi; WGPEER_PGVERSIONS_WORKER=0
# leaves it out), and last the package's purge.
#
# The chroots come from test/chroot.sh (cached for the day); each run works
# in an overlay on top of one, thrown away at the end.
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

. test/chroot.sh
MAJORS=("$@")
[ ${#MAJORS[@]} -gt 0 ] || MAJORS=(17 18)
for m in "${MAJORS[@]}"; do
	[ -n "${SUITE[$m]:-}" ] || { echo "pgversions: no Debian suite known for PostgreSQL $m" >&2; exit 2; }
done

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

# version MAJOR: the whole test of PostgreSQL MAJOR in its chroot; its log
# on stdout
version() {
	local major=$1 suite=${SUITE[$1]} lower work status=0
	local pkg=postgresql-$1-wgpeer
	local t0=$SECONDS
	echo "== PostgreSQL $major (Debian $suite)"
	cached_chroot "$suite" "$major" || return 1
	lower=$CHROOT
	work=$(mktemp -d "$CACHE/run-$suite.XXXXXX")
	OUT=$work/out
	mkdir -p "$OUT"
	overlay_root "$lower" "$work"
	# shellcheck disable=SC2064
	trap "release_root '$MERGED'; rm -rf '$work'" EXIT

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
	# the one build: the Debian package, built with -Werror (its build
	# runs the unit tests), lintian-clean, installed in place of `make
	# install` and checked in a cluster (test/package_test.sh --chroot);
	# the suites below run against it
	step package "$B bash test/package_test.sh --chroot" \
		"awk '/^test_[a-z_]*: [0-9]+ passed, / { p += \$2; f += \$4 }
			END { printf \"unit tests %d passed, %d failed; \", p, f }' \$MERGED/build/build.log
		 tail -n 1 \$OUT/package.log" || status=1
	if [ "$(in_root "$MERGED" "dpkg-query -W -f='\${db:Status-Status}' $pkg 2>/dev/null")" = installed ]; then
		in_root "$MERGED" "chown -R $TEST_USER /build/wgpeer"
		if step installcheck "$B runuser -u $TEST_USER -- make -s installcheck" \
			"grep -oE 'All [0-9]+ tests passed' \$OUT/installcheck.log | awk '{ print \$2 }' | paste -sd + | sed 's/$/ (regress+isolation) tests passed, against the package/'"; then
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
		if [ "${WGPEER_PGVERSIONS_WORKER:-1}" = 1 ]; then
			step worker_test "$B WGPEER_VM=never bash test/vm/run.sh test/worker_test.sh --backend uapi" \
				"tail -n 1 \$OUT/worker_test.log" || status=1
		fi
		step purge "$B bash test/package_test.sh --chroot-purge" \
			"tail -n 1 \$OUT/purge.log" || status=1
	else
		status=1
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
for m in "${MAJORS[@]}"; do
	(version "$m") >"$LOGS/$m.log" 2>&1 &
	PIDS+=($!)
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
