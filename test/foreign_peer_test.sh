#!/bin/bash
# Peers wgpeer does not manage are never touched (issue 18, part 4), on a
# real wireguard-go device over UAPI, no VM.  Run as root after
# `make install`:  bash test/foreign_peer_test.sh
#
# An operator configures a peer by hand (a route behind it, a preshared
# key).  The application role then creates a wgpeer peer with the same
# public key (bring-your-own-key).  Before 0.3 the worker took the hand-made
# peer over: its allowed IPs replaced, a preshared key set, and a revoke
# removed it.  Now:
#	1. the device peer keeps its allowed IPs and preshared key; the
#	   wgpeer peer's addition is quarantined with an error that says why,
#	   an apply_failed event, interface_status shows it; other peers go on;
#	2. a reconcile leaves the hand-made peer as it is too;
#	3. revoking the wgpeer peer leaves the hand-made peer on the device;
#	4. an admin adopts the peer with wg_import_peer: wgpeer then manages
#	   it (routes set, revoke removes it), and the key can be brought
#	   again once it is gone.
# Reconcile runs only when asked (reconcile_interval = 1h), so nothing but
# the queue's applies changes the device.  Polls with bounds, never fixed
# sleeps.  Prints "N passed, N failed" and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

STAGE=fp
DEV=wgfp$$						# unique per run: parallel runs do not clash
DEV=${DEV:0:15}
. test/userspace.sh

# the device's line for a key: public key, preshared key, allowed IPs, keepalive
device_line() { kernel_peers "$DEV" | grep "^$1"$'\t' || true; }
on_device() { wg show "$DEV" peers | grep -qx "$1"; }
peer_id_of() { q -c "SELECT peer_id FROM wgpeer.peer WHERE user_id = '$1' ORDER BY created_at DESC LIMIT 1"; }
status_of() { q -c "SELECT status FROM wgpeer.peer WHERE peer_id = '$1'"; }
iface_status() { q -c "SELECT $1 FROM wgpeer.interface_status WHERE interface = '$DEV'"; }
as_app() { cluster_psql -At -U app "$@"; }

ip netns add "$NS"
ip -n "$NS" link set lo up
wg_dev_add "$DEV" "$NS"

cluster_start "$TMP/pg" "wgpeer.database = 'postgres'" "wgpeer.retry_max = 4s" \
	"wgpeer.stats_interval = 0" "wgpeer.reconcile_interval = 1h"
q -c "CREATE EXTENSION wgpeer" >/dev/null
q -c "SELECT name FROM wgpeer.wg_add_interface('$DEV', 'vpn.example.com:51911',
		'10.131.0.1/24', listen_port => 51911, backend => 'uapi')" >/dev/null
q <<-'SQL' >/dev/null
	CREATE ROLE app LOGIN;
	GRANT USAGE ON SCHEMA wgpeer TO app;
	GRANT EXECUTE ON FUNCTION
		wgpeer.wg_create_peer(text, integer, text, text, text, text, interval, timestamptz, boolean, text),
		wgpeer.wg_revoke_peer(uuid)
		TO app;
SQL

q -c "SELECT count(*) FROM wgpeer.wg_create_peer('alice', interface => '$DEV')" >/dev/null
ALICE_KEY=$(q -c "SELECT public_key FROM wgpeer.peer WHERE user_id = 'alice'")
check "a generated-key peer reaches the device" wait_until 30 on_device "$ALICE_KEY"

echo "== 1. bring-your-own-key with the key of a peer configured by hand"
FOREIGN_KEY=$(wg genkey | wg pubkey)
FOREIGN_PSK=$(wg genpsk)
echo "$FOREIGN_PSK" >"$TMP/psk"
wg set "$DEV" peer "$FOREIGN_KEY" preshared-key "$TMP/psk" \
	allowed-ips 10.131.0.200/32,192.168.77.0/24
BEFORE=$(device_line "$FOREIGN_KEY")
same "the hand-made peer is on the device with its route and preshared key" \
	"$(printf '%s\t%s\t%s\t%s' "$FOREIGN_KEY" "$FOREIGN_PSK" 10.131.0.200/32,192.168.77.0/24 off)" \
	"$BEFORE"

as_app -c "SELECT count(*) FROM wgpeer.wg_create_peer('mallory', interface => '$DEV',
		public_key => '$FOREIGN_KEY')" >/dev/null
MALLORY=$(peer_id_of mallory)
quarantined() {
	sql_true "SELECT quarantined_until IS NOT NULL AND last_error LIKE '%does not manage%'
			  FROM wgpeer.queue WHERE peer_id = '$MALLORY'"
}
check "the wgpeer peer's addition is quarantined: the key is a peer wgpeer does not manage" \
	wait_until 30 quarantined
same "the hand-made peer keeps its allowed IPs and preshared key" "$BEFORE" \
	"$(device_line "$FOREIGN_KEY")"
same "the wgpeer peer stays creating" creating "$(status_of "$MALLORY")"
check "an apply_failed event names the refusal" sql_true \
	"SELECT count(*) = 1 FROM wgpeer.event WHERE kind = 'apply_failed'
	 AND peer_id = '$MALLORY' AND detail->>'error' LIKE '%does not manage%'"
same "interface_status shows one quarantined change" 1 "$(iface_status quarantined)"
check "with the error" sql_true "SELECT quarantine_error LIKE 'public key $FOREIGN_KEY is on interface%does not manage%'
	FROM wgpeer.interface_status WHERE interface = '$DEV'"
check "the server log warns" grep -q "could not apply 1 of 1 queued changes to \"$DEV\": public key" \
	"$TMP/pg/server.log"
q -c "SELECT count(*) FROM wgpeer.wg_create_peer('bob', interface => '$DEV')" >/dev/null
BOB_KEY=$(q -c "SELECT public_key FROM wgpeer.peer WHERE user_id = 'bob'")
check "other peers still reach the device" wait_until 30 on_device "$BOB_KEY"
# a retry (retry_max 4s) refuses it again, without a second event
retried() {
	sql_true "SELECT attempts >= 2 FROM wgpeer.queue WHERE peer_id = '$MALLORY'"
}
check "the quarantined change is retried" wait_until 30 retried
same "and still leaves the hand-made peer as it was" "$BEFORE" "$(device_line "$FOREIGN_KEY")"
same "one apply_failed event, not one per retry" 1 \
	"$(q -c "SELECT count(*) FROM wgpeer.event WHERE kind = 'apply_failed' AND peer_id = '$MALLORY'")"

echo "== 2. reconcile leaves it alone too"
q -c "SELECT * FROM wgpeer.wg_reconcile('$DEV')" >/dev/null
same "after wg_reconcile() the hand-made peer is as it was" "$BEFORE" \
	"$(device_line "$FOREIGN_KEY")"
check "the server log says why" grep -q "peers configured by hand whose keys wgpeer peers also have" \
	"$TMP/pg/server.log"

echo "== 3. revoking the wgpeer peer leaves the hand-made peer"
as_app -c "SELECT status FROM wgpeer.wg_revoke_peer('$MALLORY')" >/dev/null
drained() { test "$(iface_status backlog)" = 0; }
check "the revocation is applied (nothing left in the queue)" wait_until 30 drained
same "the hand-made peer is still on the device, as it was" "$BEFORE" \
	"$(device_line "$FOREIGN_KEY")"
same "no quarantined change left" 0 "$(iface_status quarantined)"

echo "== 4. an admin adopts it with wg_import_peer"
ADOPTED=$(q -c "SELECT peer_id FROM wgpeer.wg_import_peer('$DEV', '$FOREIGN_KEY',
		'10.131.0.200', preshared_key => '$FOREIGN_PSK', user_id => 'site-link')")
active() { test "$(status_of "$1")" = active; }
check "the adopted peer becomes active" wait_until 30 active "$ADOPTED"
same "wgpeer now holds it as imported (its address, its preshared key)" \
	"$(printf '%s\t%s\t%s\t%s' "$FOREIGN_KEY" "$FOREIGN_PSK" 10.131.0.200/32 off)" \
	"$(device_line "$FOREIGN_KEY")"
q -c "SELECT wgpeer.wg_set_peer_routes('$ADOPTED', '{192.168.77.0/24}')" >/dev/null
routed() {
	test "$(device_line "$FOREIGN_KEY")" = "$BEFORE"
}
check "its route, set through wgpeer, reaches the device" wait_until 30 routed
q -c "SELECT status FROM wgpeer.wg_revoke_peer('$ADOPTED')" >/dev/null
check "revoking the adopted peer removes it from the device" \
	wait_until 30 bash -c "! wg show '$DEV' peers | grep -qx '$FOREIGN_KEY'"
as_app -c "SELECT count(*) FROM wgpeer.wg_create_peer('mallory', interface => '$DEV',
		public_key => '$FOREIGN_KEY')" >/dev/null
check "the key, gone from the device, can be brought again" \
	wait_until 30 active "$(peer_id_of mallory)"
check "the device holds what the database wants, peer by peer" \
	test "$(kernel_peers "$DEV" | md5sum)" = "$(wanted_peers "$DEV" | md5sum)"

tap_summary
