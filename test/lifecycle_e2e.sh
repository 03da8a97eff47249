#!/bin/bash
# The subscription lifecycle with a real WireGuard client, natively on
# wireguard-go: the server interface in one network namespace, the client
# in another, joined by a veth pair.  Run as root after `make install`:
#   bash test/lifecycle_e2e.sh
#
#	1. a client from wg_create_peer's config pings the server;
#	2. wg_suspend_peer cuts it off within a second or so (peer gone from
#	   the interface, the ping fails); the address stays taken;
#	3. wg_resume_peer brings it back with the same config: the same client,
#	   untouched, pings again;
#	4. wg_rotate_peer_key: the old config stops working (its key is gone
#	   from the interface) and a client configured from the new config
#	   pings, with the same address;
#	5. a plan that starts at the first handshake: no expiry until the
#	   client connects, then expires_at = its first handshake + the plan;
#	6. 500 peers set on an interface by hand (wg addconf), imported with
#	   wg_import_config from `wg showconf`: the interface is the same peer
#	   for peer afterwards, and a reconcile finds nothing to change.
# Polls with bounds, never fixed sleeps.  Prints "N passed, N failed" and
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

E2E_NAME=lc
DEV=wglc0						# wgpeer's interface, run by wireguard-go
CDEV=wglcc0						# the client's interface
E2E_NET=192.168.251
. test/e2e.sh
ping_server() { cli ping -c 1 -W 1 10.97.0.1 >/dev/null 2>&1; }
no_ping() { ! cli ping -c 3 -i 0.3 -W 1 10.97.0.1 >/dev/null 2>&1; }
peer_key() { q -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$PEER'"; }
e2e_start
ip -n "$NS_S" addr add 10.97.0.1/24 dev "$DEV"
ip -n "$NS_S" link set "$DEV" up

cluster_start "$TMP/pg" "wgpeer.database = 'postgres'" "wgpeer.stats_interval = 1s"
q >/dev/null <<SQL
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('$DEV', '192.168.251.1:51820',
	'10.97.0.1/24', allowed_ips => '10.97.0.0/24', backend => 'uapi');
SQL
PEER=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('lena', interface => '$DEV')")
KEY=$(peer_key)
(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$PEER')" >"$TMP/client.conf")

echo "== 1. the client pings through the tunnel"
check "lena reaches $DEV" wait_until 30 on_server "$KEY"
wg_client_up "$CDEV" "$NS_C" "$TMP/client.conf" 10.97.0.0/24
check "ping 10.97.0.1 through the tunnel" wait_until 30 ping_server

echo "== 2. suspend cuts it off"
q -c "SELECT status FROM wgpeer.wg_suspend_peer('$PEER', 'payment overdue')" >/dev/null
check "lena leaves $DEV" wait_until 10 not_on_server "$KEY"
check "the ping fails" no_ping
check "her address stays taken" sql_true \
	"SELECT host(wgpeer.wg_next_ip('$DEV')) <> host(address)
	 FROM wgpeer.peer WHERE peer_id = '$PEER'"

echo "== 3. resume brings her back with the same config"
q -c "SELECT status FROM wgpeer.wg_resume_peer('$PEER')" >/dev/null
check "lena is back on $DEV" wait_until 10 on_server "$KEY"
check "the same config as before" test \
	"$(q -c "SELECT wgpeer.wg_peer_config('$PEER')")" = "$(cat "$TMP/client.conf")"
check "the untouched client pings again" wait_until 30 ping_server
check "status active" wait_until 10 sql_true \
	"SELECT status = 'active' FROM wgpeer.peer WHERE peer_id = '$PEER'"

echo "== 4. key rotation swaps which config works"
(umask 077 && q -c "SELECT wgpeer.wg_rotate_peer_key('$PEER')" >"$TMP/new.conf")
NEWKEY=$(peer_key)
check "a new key" test "$NEWKEY" != "$KEY"
check "the old key leaves $DEV" wait_until 10 not_on_server "$KEY"
check "the new key is on $DEV" wait_until 10 on_server "$NEWKEY"
check "the old config no longer pings" no_ping
check "the same address in the new config" test \
	"$(sed -n 's/^Address = //p' "$TMP/new.conf")" = \
	"$(sed -n 's/^Address = //p' "$TMP/client.conf")"
wg_dev_del "$CDEV"
wg_client_up "$CDEV" "$NS_C" "$TMP/new.conf" 10.97.0.0/24
check "a client with the new config pings" wait_until 30 ping_server

echo "== 5. a plan that starts at the first handshake"
PEER=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('mo', interface => '$DEV',
	duration => '1 hour', starts_on_handshake => true)")
(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$PEER')" >"$TMP/mo.conf")
check "mo reaches $DEV" wait_until 10 on_server "$(peer_key)"
check "no expiry before the first handshake" sql_true \
	"SELECT expires_at IS NULL AND plan_pending = interval '1 hour'
	 FROM wgpeer.peer WHERE peer_id = '$PEER'"
wg_dev_del "$CDEV"
wg_client_up "$CDEV" "$NS_C" "$TMP/mo.conf" 10.97.0.0/24
check "mo's client pings" wait_until 30 ping_server
check "expires_at is set to the first handshake + 1 hour" wait_until 15 sql_true \
	"SELECT abs(extract(epoch FROM p.expires_at
			   - (t.latest_handshake + interval '1 hour'))) < 1
	        AND p.plan_pending IS NULL
	 FROM wgpeer.peer p JOIN wgpeer.peer_traffic t USING (peer_id)
	 WHERE p.peer_id = '$PEER'"

echo "== 6. 500 existing peers imported without a change on the interface"
IDEV=wglci0
wg_dev_add "$IDEV" "$NS_S"
q -c "SELECT string_agg(format(E'[Peer]\\nPublicKey = %s\\nPresharedKey = %s\\nAllowedIPs = 10.96.%s.%s/32\\n',
		wgpeer.wg_pubkey(wgpeer.wg_genkey()), wgpeer.wg_genpsk(),
		(g + 1) / 256, (g + 1) % 256), E'\\n')
	FROM generate_series(1, 500) g" >"$TMP/existing.conf"
(umask 077 && wg genkey >"$TMP/existing.key")
srv wg addconf "$IDEV" "$TMP/existing.conf"
srv wg set "$IDEV" private-key "$TMP/existing.key" listen-port 51830
srv wg showconf "$IDEV" >"$TMP/showconf"
kernel_peers "$IDEV" >"$TMP/before"
check "the interface holds 500 peers set by hand" test "$(wc -l <"$TMP/before")" = 500
q -c "SELECT name FROM wgpeer.wg_add_interface('$IDEV', '192.168.251.1:51830',
	'10.96.0.1/22', listen_port => 51830, backend => 'uapi',
	private_key => '$(cat "$TMP/existing.key")')" >/dev/null
check "wg_import_config adopts all 500" test \
	"$(q -v conf="$(cat "$TMP/showconf")" <<<"SELECT wgpeer.wg_import_config('$IDEV', :'conf');")" = 500
drained() { sql_true "SELECT backlog = 0 FROM wgpeer.interface_status WHERE interface = '$IDEV'"; }
check "their queued changes are applied" wait_until 60 drained
check "wg_reconcile finds nothing to add, correct or remove" sql_true \
	"SELECT error IS NULL AND added = 0 AND corrected = 0 AND removed = 0
	        AND foreign_peers = 0
	 FROM wgpeer.wg_reconcile('$IDEV')"
kernel_peers "$IDEV" >"$TMP/after"
check "every peer on the interface is as it was" cmp -s "$TMP/before" "$TMP/after"
check "the device kept its key and port" test \
	"$(srv wg show "$IDEV" private-key)/$(srv wg show "$IDEV" listen-port)" = \
	"$(cat "$TMP/existing.key")/51830"

tap_summary
