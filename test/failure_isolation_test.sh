#!/bin/bash
# One failing change never holds back the others (issue 11, findings 1 and
# 2), on real wireguard-go devices over UAPI, no VM.  Run as root after
# `make install`:  bash test/failure_isolation_test.sh
#
#	1. A listen port the device cannot bind (another interface holds it):
#	   a revocation and a creation still reach the device, the port error
#	   is kept in interface_status.settings_error, and clears once the
#	   port is free.  The same when reconcile alone sets the port.
#	2. A full device (wireguard-go holds at most 65,536 peers): 100 peers
#	   past the limit are quarantined with their own error while the rest
#	   of their batch goes on; revocations made while it is full leave the
#	   device at once; then the quarantined peers follow by themselves and
#	   the device equals the database.
# Polls with bounds, never fixed sleeps.  Prints "N passed, N failed" and
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

STAGE=iso
. test/userspace.sh

FULL=65536						# wireguard-go's MaxPeers
EXTRA=100						# peers created past it

# wg(8) on a device in the namespace
dev_wg() { ip netns exec "$NS" wg "$@"; }
on_device() { dev_wg show "$1" peers | grep -qx "$2"; }
off_device() { ! on_device "$@"; }
peer_key() { q -c "SELECT public_key FROM wgpeer.peer WHERE user_id = '$1'"; }
device_count() { dev_wg show "$1" peers | wc -l; }
# a column of wgpeer.interface_status for an interface
status_of() { q -c "SELECT $2 FROM wgpeer.interface_status WHERE interface = '$1'"; }

for dev in wgiso1 wgiso2 wgiso3; do
	if [ -e "$WG_RUN_DIR/$dev.sock" ]; then
		echo "$WG_RUN_DIR/$dev.sock exists: another wireguard-go runs $dev" >&2
		exit 1
	fi
done
ip netns add "$NS"
ip -n "$NS" link set lo up
wg_dev_add wgiso1 "$NS"
wg_dev_add wgiso2 "$NS"
wg_dev_add wgiso3 "$NS"

# Short backoffs so that retries come within the test's bounds.
cluster_start "$TMP/pg" "wgpeer.database = 'postgres'" "wgpeer.retry_max = 4s" \
	"wgpeer.stats_interval = 0" "wgpeer.reconcile_interval = 1h"
q -c "CREATE EXTENSION wgpeer" >/dev/null
q -c "SELECT name FROM wgpeer.wg_add_interface('wgiso1', 'vpn.example.com:51901',
		'10.121.0.1/24', listen_port => 51901, backend => 'uapi')" >/dev/null
q -c "SELECT name FROM wgpeer.wg_add_interface('wgiso2', 'vpn.example.com:51902',
		'10.122.0.1/24', listen_port => 51902, backend => 'uapi')" >/dev/null

echo "== 1. a listen port the device cannot bind"
q -c "SELECT count(wgpeer.wg_create_peer(u, interface => 'wgiso2'))
		FROM unnest(ARRAY['alice', 'bob', 'carol']) u" >/dev/null
BOB=$(peer_key bob)
check "bob reaches wgiso2" wait_until 30 on_device wgiso2 "$BOB"
check "wgiso2 listens on its port 51902" test "$(dev_wg show wgiso2 listen-port)" = 51902

q -c "UPDATE wgpeer.interface SET listen_port = 51901 WHERE name = 'wgiso2'"
q -c "SELECT wgpeer.wg_revoke_peer(peer_id) FROM wgpeer.peer WHERE user_id = 'bob'" >/dev/null
q -c "SELECT count(*) FROM wgpeer.wg_create_peer('dave', interface => 'wgiso2')" >/dev/null
DAVE=$(peer_key dave)
check "bob, revoked, leaves wgiso2 although its port is taken" \
	wait_until 30 off_device wgiso2 "$BOB"
check "dave, created, reaches wgiso2 although its port is taken" \
	wait_until 30 on_device wgiso2 "$DAVE"
settings_error_in_use() { status_of wgiso2 settings_error | grep -q 'in use'; }
check "interface_status says the port is in use" wait_until 30 settings_error_in_use
check "and nothing of wgiso2 waits in the queue" test "$(status_of wgiso2 backlog)" = 0
check "no last_error for wgiso2 (the peers went through)" \
	test -z "$(status_of wgiso2 last_error)"

q -c "UPDATE wgpeer.interface SET listen_port = 51903 WHERE name = 'wgiso2'"
q -c "SELECT count(*) FROM wgpeer.wg_create_peer('erin', interface => 'wgiso2')" >/dev/null
port_moved() { test "$(dev_wg show wgiso2 listen-port)" = 51903; }
settings_clear() { test -z "$(status_of wgiso2 settings_error)"; }
check "with a free port, the device takes it" wait_until 30 port_moved
check "and the settings error clears" wait_until 30 settings_clear

# The same port, set by reconcile alone (no peer change queued): an
# interface change makes the worker reconcile it, and the device's refusal
# is kept in settings_error as well.
q -c "UPDATE wgpeer.interface SET listen_port = 51901 WHERE name = 'wgiso2'"
check "reconcile alone: interface_status says the port is in use" \
	wait_until 30 settings_error_in_use
q -c "UPDATE wgpeer.interface SET listen_port = 51903 WHERE name = 'wgiso2'"
check "reconcile alone: with a free port, the device takes it" wait_until 30 port_moved
check "reconcile alone: and the settings error clears" wait_until 30 settings_clear

echo "== 2. a full device: $FULL + $EXTRA peers on wireguard-go"
q -c "SELECT name FROM wgpeer.wg_add_interface('wgiso3', 'vpn.example.com:51904',
		'10.124.0.1/15', listen_port => 51904, backend => 'uapi')" >/dev/null 2>&1
q -c "SELECT count(wgpeer.wg_create_peer('full' || g, interface => 'wgiso3'))
		FROM generate_series(1, $FULL + $EXTRA) g" >/dev/null
# settled: every change still queued is quarantined, the rest applied
settled() {
	sql_true "SELECT backlog > 0 AND backlog = quarantined
			  FROM wgpeer.interface_status WHERE interface = 'wgiso3'"
}
exactly_extra_quarantined() {
	settled && test "$(status_of wgiso3 quarantined)" = "$EXTRA"
}
check "the peers past the limit end quarantined, $EXTRA of them" \
	wait_until 300 exactly_extra_quarantined
check "the device holds $FULL peers" test "$(device_count wgiso3)" = "$FULL"
check "$FULL peers are active" test "$(q -c "SELECT count(*) FROM wgpeer.peer
		WHERE interface = 'wgiso3' AND status = 'active'")" = "$FULL"
same "each quarantined change keeps the device's error (other errors shown)" "" \
	"$(q -c "SELECT string_agg(DISTINCT coalesce(last_error, '(none)'), ' | ')
			 FROM wgpeer.queue WHERE interface = 'wgiso3'
			   AND last_error IS DISTINCT FROM NULL AND last_error NOT LIKE '%Invalid argument%'
			    OR interface = 'wgiso3' AND last_error IS NULL")"
check "the server log names the device's limit" \
	grep -q "could not add .* peers to \"wgiso3\": the interface is full" "$TMP/pg/server.log"
same "no interface-wide error: the rest of the batch went on" "" \
	"$(status_of wgiso3 last_error)"

q -c "CREATE TABLE revoked AS
		SELECT public_key FROM wgpeer.peer
		WHERE interface = 'wgiso3' AND status = 'active' ORDER BY user_id LIMIT 300"
q -c "SELECT count(wgpeer.wg_revoke_peer(p.peer_id)) FROM wgpeer.peer p
		JOIN revoked r USING (public_key)" >/dev/null
revoked_gone() {
	! q -c "SELECT public_key FROM revoked" | grep -qxF -f - <(dev_wg show wgiso3 peers)
}
check "300 peers revoked while the device is full leave it" wait_until 20 revoked_gone
drained() { test "$(status_of wgiso3 backlog)" = 0; }
check "then the quarantined peers follow by themselves" wait_until 120 drained
check "the device holds what the database wants, peer by peer" \
	test "$(kernel_peers wgiso3 | md5sum)" = "$(wanted_peers wgiso3 | md5sum)"

tap_summary
