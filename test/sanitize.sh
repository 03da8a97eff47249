#!/bin/bash
# test/sanitize.sh: wgpeer under AddressSanitizer and
# UndefinedBehaviorSanitizer (gcc, -fsanitize=address,undefined
# -fno-sanitize-recover=all: every report is fatal).  Run as root on a
# Debian 12 machine where test/install-deps.sh has run:
#	sudo test/sanitize.sh
#
#	1. the unit tests, built with both sanitizers, run with LeakSanitizer
#	   on (any leak fails them);
#	2. the extension, built with both, installed, and the regression and
#	   isolation suites run against it (make installcheck as the
#	   unprivileged wgpeer_test in a copy of the tree, as test/run.sh does);
#	3. the worker's behavioural suite over UAPI (wireguard-go) against the
#	   same build: test/worker_test.sh --backend uapi, with BULK
#	   SANITIZE_BULK peers (default 5000, the suite's own: its crash test
#	   freezes the worker in the middle of sending one set, and a set of
#	   1,000 peers, about 250 kB, fits in the socket's buffers, so the
#	   daemon could read it whole after the worker was frozen);
#	4. every sanitizer log and server log scanned for a report;
#
# The sanitized build is installed into a private copy of PostgreSQL
# (test/private_pg.sh), never over the system's: the tests that run at the
# same time (test/run.sh runs the kernel tests in the VM alongside) keep
# the normal build.
#
# How the server runs the sanitized library.  PostgreSQL itself is not
# instrumented; the library is, and needs the ASan runtime loaded first in
# the process (before libc), which only LD_PRELOAD can do for a binary that
# is not linked with it.  So the server starts with
#	LD_PRELOAD=<gcc's libasan.so>:<asan_first.so> plus ASAN_OPTIONS and
#	UBSAN_OPTIONS
# in its environment; its children (backends, the apply worker) inherit it.
# With a preloaded runtime ASan initialises itself at the first call it
# intercepts, and the constructors of PostgreSQL's libraries run before
# the runtime's own: libgpg-error's (through libsystemd and libgcrypt)
# calls malloc inside bindtextdomain() holding glibc's gettext lock, and
# ASan's initialisation then calls dlerror(), which takes that lock again;
# the lock is left corrupt and every PostgreSQL program hangs at its own
# bindtextdomain() (gcc 12's and clang 14's runtimes alike).  So a
# one-line library built here, asan_first.so, linked -z initfirst so that
# the dynamic linker runs its constructor before any other, calls malloc
# first.
# ASAN_OPTIONS: detect_leaks=0 (PostgreSQL frees by memory context and
# leaks by design at exit), abort_on_error=1 (a report kills the process,
# so the suite sees a crash too), log_path=<dir>/asan (reports go to
# asan.<pid> files); UBSAN_OPTIONS: print_stacktrace=1:halt_on_error=1
# (gcc's UBSan writes its reports to stderr whatever log_path says: they
# land in the server log).
#	- pg_regress's temporary instance inherits pg_regress's environment,
#	  so the variables are exported around `make installcheck` (make,
#	  pg_regress, initdb and psql then run with the runtime too; with
#	  detect_leaks=0 it only watches them);
#	- the worker suite starts its server with cluster_run (test/cluster.sh),
#	  which puts $CLUSTER_SERVER_ENV (VAR=value words) into the server's
#	  environment only; wireguard-go, a Go program, must not get the
#	  runtime.
# Then every asan.* file and every server log (pg_regress keeps its
# instances' in log/ and output_iso/log/) is searched for
# "ERROR: AddressSanitizer", "ERROR: LeakSanitizer" and "runtime error".
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ "$(id -u)" -ne 0 ]; then
	echo "test/sanitize.sh installs the extension: run it as root" >&2
	exit 1
fi
TEST_USER=wgpeer_test
BULK=${SANITIZE_BULK:-5000}

# gcc's sanitizer runtimes (gcc-12 depends on both; checked all the same)
. test/apt.sh
need_packages libasan8 libubsan1
LIBASAN=$(realpath "$(gcc -print-file-name=libasan.so)")
[ -f "$LIBASAN" ] || { echo "sanitize.sh: gcc has no libasan.so" >&2; exit 1; }

id "$TEST_USER" >/dev/null 2>&1 || useradd --system --create-home "$TEST_USER"
WORK=$(mktemp -d /tmp/wgpeer-sanitize.XXXXXX)
TREE=$WORK/tree
LOGS=$WORK/logs
chmod 755 "$WORK"
mkdir -p "$LOGS"
chmod 1777 "$LOGS"			# the servers (as $TEST_USER) write reports here

trap 'rm -rf "$WORK"' EXIT
. "$ROOT/test/private_pg.sh"
private_pg "$WORK/pg"

# initialise ASan before any library constructor runs (see above)
printf '%s\n' '#include <stdlib.h>' \
	'static void __attribute__((constructor)) asan_first(void)' \
	'{ void *volatile p = malloc(1); free(p); }' >"$WORK/asan_first.c"
gcc -shared -fPIC -O0 -Wl,-z,initfirst -o "$WORK/asan_first.so" "$WORK/asan_first.c"

SERVER_ENV="LD_PRELOAD=$LIBASAN:$WORK/asan_first.so"
SERVER_ENV+=" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:disable_coredump=1:log_path=$LOGS/asan"
SERVER_ENV+=" UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"

# Print every sanitizer report: the asan.* files (written only for a
# report) and the lines of FILES... (server logs) that start one.  Returns
# 1 when there is any.
reports() {
	local f found=0
	for f in "$LOGS"/asan.*; do
		[ -f "$f" ] || continue
		echo "---- $f:"
		head -n 60 "$f"
		found=1
	done
	for f in "$@"; do
		[ -f "$f" ] || continue
		if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error' "$f"; then
			echo "---- $f:"
			grep -E -A 30 'ERROR: (Address|Leak)Sanitizer|runtime error' "$f" | head -n 60
			found=1
		fi
	done
	return $found
}

cp -a "$ROOT/." "$TREE/"
if ! grep -q CLUSTER_SERVER_ENV "$TREE/test/cluster.sh"; then
	echo "sanitize.sh: test/cluster.sh has no CLUSTER_SERVER_ENV, so the" \
		"worker suite's server would start without the sanitizer runtime" >&2
	exit 1
fi
# Sanitizers make gcc warn differently; warnings are the normal build's
# business, so no -Werror here.
make -s -C "$TREE" clean >/dev/null

echo "== 1. unit tests with ASan (LeakSanitizer on) and UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	make -s -C "$TREE" SANITIZE=1 WERROR= unittest

echo "== 2. the extension with ASan and UBSan: regression and isolation suites"
make -s -C "$TREE" SANITIZE=1 WERROR= -j"$(nproc)"
chown -R "$TEST_USER" "$TREE"
make -s -C "$TREE" SANITIZE=1 WERROR= install
status=0
# shellcheck disable=SC2086 # SERVER_ENV is VAR=value words without spaces
runuser -u "$TEST_USER" -- env PATH="$PATH" PG_CONFIG="$PG_CONFIG" $SERVER_ENV \
	make -s -C "$TREE" installcheck || status=$?
if [ $status -ne 0 ]; then
	for f in "$TREE"/regression.diffs "$TREE"/output_iso/regression.diffs; do
		[ -f "$f" ] && cat "$f"
	done
	reports "$TREE"/log/*.log "$TREE"/output_iso/log/*.log || true
	exit $status
fi
reports "$TREE"/log/*.log "$TREE"/output_iso/log/*.log || exit 1

echo "== 3. the worker's behavioural suite over UAPI, $BULK-peer bulk"
CLUSTER_SERVER_ENV=$SERVER_ENV WGPEER_VM=never WGPEER_VM_KEEP=$LOGS/worker \
	bash "$TREE/test/vm/run.sh" "$TREE/test/worker_test.sh" --backend uapi "$BULK" ||
	status=$?

echo "== 4. sanitizer reports"
reports "$LOGS"/worker/*.log || status=1
[ $status -ne 0 ] || echo "sanitize.sh: no sanitizer report"
exit $status
