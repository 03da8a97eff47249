#!/bin/bash
# make check-layers must fail, naming the file and what it used, when a
# file breaks the layering rule.  Plants one violation of each kind in a
# copy of the built tree and runs test/check_layers.pl on it: an include
# across the capability boundary, a PostgreSQL header in the pure core, a
# call from the SQL side into the worker, a PostgreSQL symbol in a device
# backend, and two files that call each other.  Run after a build (it
# needs the objects).
set -euo pipefail
cd "$(dirname "$0")/.."
. test/tap.sh

TMP=$(mktemp -d /tmp/wgpeer-layers.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# A fresh copy of the built src/, objects included.
fresh_copy() {
	rm -rf "$TMP/src"
	cp -a src "$TMP/src"
}

# The checker on the copy: its status, its output in $TMP/out.
checker() {
	perl test/check_layers.pl "$TMP/src" >"$TMP/out" 2>&1
}

# "fails naming FILE and WORDS": the checker failed and said both.
fails_naming() {
	! checker && grep -q -- "$1" "$TMP/out" && grep -q -- "$2" "$TMP/out"
}

# An object compiled from C text into the copy, as a planted file.
plant_object() {
	printf '%s\n' "$2" >"$TMP/src/$1.c"
	cc -c -o "$TMP/src/$1.o" "$TMP/src/$1.c"
}

fresh_copy
check "the built tree keeps the rule" checker

fresh_copy
echo '#include "worker/worker.h"' >>"$TMP/src/sql/peer.c"
check "an SQL file including the worker's header fails, naming both" \
	fails_naming "src/sql/peer.c" 'includes "worker/worker.h" of layer worker'

fresh_copy
echo '#include "utils/builtins.h"' >>"$TMP/src/core/keys.c"
check "a PostgreSQL header in the core fails, naming it" \
	fails_naming "src/core/keys.c" 'includes "utils/builtins.h", a PostgreSQL header'

fresh_copy
plant_object sql/planted 'extern int wgpeer_device_set(void); int planted(void) { return wgpeer_device_set(); }'
check "an SQL object calling the worker's device dispatcher fails, naming the symbol" \
	fails_naming "src/sql/planted.o" "uses wgpeer_device_set from $TMP/src/worker/device.o"

fresh_copy
plant_object device/planted 'extern void *palloc(unsigned long); void *planted(void) { return palloc(8); }'
check "a device object using palloc fails as a PostgreSQL symbol" \
	fails_naming "src/device/planted.o" "uses palloc, a PostgreSQL symbol"

fresh_copy
printf '%s\n' 'static const char *planted = "INSERT INTO"' \
	'	" wgpeer.queue (interface) VALUES ($1)";' >>"$TMP/src/sql/peer.c"
check "a second writer of the queue fails, naming the file" \
	fails_naming "src/sql/peer.c: writes wgpeer.queue" "only sql/queue.c"

fresh_copy
plant_object common/ping 'extern int pong(int); int ping(int n) { return n ? pong(n - 1) : 0; }'
plant_object common/pong 'extern int ping(int); int pong(int n) { return n ? ping(n - 1) : 1; }'
check "two files calling each other fail as a cycle" \
	fails_naming "cycle between" "ping.o uses pong of pong.o"

tap_summary
