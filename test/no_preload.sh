#!/bin/bash
# The SQL API works without shared_preload_libraries: keys, interfaces,
# allocation, the peer lifecycle and configs, with changes waiting in the
# queue; wg_show() says clearly that it needs the worker.  Run as root
# after `make install`.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

TMP=$(mktemp -d /tmp/wgpeer-nopreload.XXXXXX)
trap 'cluster_stop; rm -rf "$TMP"' EXIT
cluster_start "$TMP/pg" "shared_preload_libraries = ''"

passed=0
failed=0
# check NAME EXPECTED SQL: the query's single value must equal EXPECTED
check() {
	local got
	got=$(cluster_psql -At -c "$3" 2>&1 | tail -1) || true
	if [ "$got" = "$2" ]; then
		passed=$((passed + 1))
	else
		echo "FAIL $1: want '$2', got '$got'"
		failed=$((failed + 1))
	fi
}

check "nothing preloaded" "" "SHOW shared_preload_libraries"
check "create extension" "" "CREATE EXTENSION wgpeer"
check "add interface" "wg0" \
	"SELECT name FROM wgpeer.wg_add_interface('wg0', 'h.example:51820', '10.66.0.1/24')"
check "next ip" "10.66.0.2" "SELECT host(wgpeer.wg_next_ip())"
check "create peer" "10.66.0.2|creating" \
	"SELECT host(address) || '|' || status FROM wgpeer.wg_create_peer('u')"
check "config" "1" \
	"SELECT count(*) FROM wgpeer.peer WHERE wgpeer.wg_peer_config(peer_id) LIKE '%Address = 10.66.0.2/32%'"
check "revoke" "revoked" \
	"SELECT status FROM wgpeer.wg_revoke_peer((SELECT peer_id FROM wgpeer.peer))"
check "queued" "add,remove" "SELECT string_agg(op, ',' ORDER BY change_id) FROM wgpeer.queue"
check "wg_show needs the worker" \
	"HINT:  Add wgpeer to shared_preload_libraries and restart." \
	"SELECT * FROM wgpeer.wg_show('wg0')"
echo "no_preload: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
