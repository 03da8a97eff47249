#!/bin/bash
# The SQL API works without shared_preload_libraries: keys, interfaces,
# allocation, the peer lifecycle and configs, with changes waiting in the
# queue; wg_show() says clearly that it needs the worker.  Run as root
# after `make install`.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh
. test/tap.sh

TMP=$(mktemp -d /tmp/wgpeer-nopreload.XXXXXX)
trap 'cluster_stop; rm -rf "$TMP"' EXIT
cluster_start "$TMP/pg" "shared_preload_libraries = ''"

# the last line psql prints for SQL, an error's included
last_line() { q -c "$1" 2>&1 | tail -1; }

same "nothing preloaded" "" "$(last_line "SHOW shared_preload_libraries")"
same "create extension" "" "$(last_line "CREATE EXTENSION wgpeer")"
same "add interface" "wg0" "$(last_line \
	"SELECT name FROM wgpeer.wg_add_interface('wg0', 'h.example:51820', '10.66.0.1/24')")"
same "next ip" "10.66.0.2" "$(last_line "SELECT host(wgpeer.wg_next_ip())")"
same "create peer" "10.66.0.2|creating" "$(last_line \
	"SELECT host(address) || '|' || status FROM wgpeer.wg_create_peer('u')")"
same "config" "1" "$(last_line \
	"SELECT count(*) FROM wgpeer.peer WHERE wgpeer.wg_peer_config(peer_id) LIKE '%Address = 10.66.0.2/32%'")"
same "revoke" "revoked" "$(last_line \
	"SELECT status FROM wgpeer.wg_revoke_peer((SELECT peer_id FROM wgpeer.peer))")"
same "queued" "add,remove" \
	"$(last_line "SELECT string_agg(op, ',' ORDER BY change_id) FROM wgpeer.queue")"
same "wg_show needs the worker" \
	"HINT:  Add wgpeer to shared_preload_libraries and restart." \
	"$(last_line "SELECT * FROM wgpeer.wg_show('wg0')")"
tap_summary no_preload
