#!/bin/bash
# The apply worker over the userspace WireGuard backend (src/uapi.c), end to
# end on this host, no VM: wireguard-go runs the server interface in one
# network namespace and a client in another, joined by a veth pair.  Run as
# root after `make install`:  bash test/uapi_e2e.sh
#
# PostgreSQL runs as an ordinary user without CAP_NET_ADMIN; it reaches the
# server only through its UAPI socket /var/run/wireguard/wgue0.sock.
# wireguard-go makes that socket mode 0700 and exits when anyone changes its
# mode or owner, so the daemon runs as PostgreSQL's user instead (with
# CAP_NET_ADMIN, started by test/wireguard.sh, which makes /var/run/wireguard
# writable to that user's group for the test and restores it afterwards).
# Checks:
#	1. wireguard-go run by root: its socket is root's, the change stays
#	   queued and wgpeer.interface_status says permission denied;
#	2. wireguard-go restarted as PostgreSQL's user: the worker applies the
#	   peer over UAPI (wg show in the server namespace: key, allowed IP,
#	   preshared key, keepalive, the device's private key and port), status
#	   'active';
#	3. the client, configured from wg_create_peer's config (wg-quick strip,
#	   Address, a route), pings the server's tunnel address; wg_show()
#	   reports the handshake; wg_reconcile() reads the device with no error
#	   and nothing to change;
#	4. wg_revoke_peer removes the peer (gone from wg show) and the ping fails.
# Polls with bounds, never fixed sleeps.  Prints "N passed, N failed" and
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

E2E_NAME=ue
DEV=wgue0						# wgpeer's interface, run by wireguard-go
CDEV=wguc0						# the client's interface
E2E_NET=192.168.250
. test/e2e.sh
SOCK=/var/run/wireguard/$DEV.sock
ROOT_WG=						# the daemon run by root (test 1)
e2e_cleanup_extra() {
	if [ -n "$ROOT_WG" ]; then
		kill "$ROOT_WG" 2>/dev/null || true
		wait "$ROOT_WG" 2>/dev/null || true
		rm -f "$SOCK"
	fi
}
ping_server() { cli ping -c 1 -W 1 10.98.0.1 >/dev/null 2>&1; }
no_ping() { ! cli ping -c 3 -i 0.3 -W 1 10.98.0.1 >/dev/null 2>&1; }

echo "== network: two namespaces joined by a veth pair"
e2e_start --no-server-device
# first the way a package would run it: as root, its socket root's
ip netns exec "$NS_S" wireguard-go -f "$DEV" >>"$TMP/root-wireguard-go.log" 2>&1 &
ROOT_WG=$!
wait_until 10 test -S "$SOCK"

echo "== a throwaway cluster, the worker as $WGPEER_USER without CAP_NET_ADMIN"
cluster_start "$TMP/pg" "wgpeer.database = 'postgres'"
q >/dev/null <<SQL
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('$DEV', '192.168.250.1:51820',
	'10.98.0.1/24', allowed_ips => '10.98.0.0/24', persistent_keepalive => 15);
SQL
IFS=$'\t' read -r PEER KEY < <(q -c "SELECT peer_id, public_key
	FROM wgpeer.wg_create_peer('alice', interface => '$DEV')")
(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$PEER')" >"$TMP/client.conf")

echo "== 1. wireguard-go run by root: its socket is root's"
check "the worker reports permission denied on $SOCK" wait_until 30 sql_true \
	"SELECT last_error LIKE 'permission denied on $SOCK%'
	 FROM wgpeer.interface_status WHERE interface = '$DEV'"
check "the change stays queued, the peer 'creating'" sql_true \
	"SELECT status = 'creating' FROM wgpeer.peer WHERE peer_id = '$PEER'"
check "nothing reached the interface" not_on_server "$KEY"

echo "== 2. wireguard-go restarted as $WGPEER_USER: applied over UAPI"
kill "$ROOT_WG"
wait "$ROOT_WG" || true
ROOT_WG=
rm -f "$SOCK"
wg_dev_add "$DEV" "$NS_S"
ip -n "$NS_S" addr add 10.98.0.1/24 dev "$DEV"
ip -n "$NS_S" link set "$DEV" up
check "the socket is $WGPEER_USER's" test "$(stat -c %U "$SOCK")" = "$WGPEER_USER"
check "alice appears in wg show $DEV" wait_until 60 on_server "$KEY"
check "status becomes active" wait_until 30 sql_true \
	"SELECT status = 'active' FROM wgpeer.peer WHERE peer_id = '$PEER'"
IFS=$'\t' read -r _ psk _ ips _ _ _ keepalive < <(srv wg show "$DEV" dump | grep "^$KEY")
check "allowed IPs $ips" sql_true \
	"SELECT '$ips' = host(address) || '/32' FROM wgpeer.peer WHERE peer_id = '$PEER'"
check "preshared key set" sql_true \
	"SELECT '$psk' = preshared_key FROM wgpeer.peer WHERE peer_id = '$PEER'"
check "persistent keepalive 15 ($keepalive)" test "$keepalive" = 15
check "the worker set the device's private key" sql_true \
	"SELECT '$(srv wg show "$DEV" private-key)' = private_key
	 FROM wgpeer.interface WHERE name = '$DEV'"
check "the worker set the listen port" test "$(srv wg show "$DEV" listen-port)" = 51820
check "queue empty, the last apply succeeded after the error" sql_true \
	"SELECT backlog = 0 AND last_success_at > last_error_at
	 FROM wgpeer.interface_status WHERE interface = '$DEV'"

echo "== 3. a client from the returned config pings through the tunnel"
wg_client_up "$CDEV" "$NS_C" "$TMP/client.conf" 10.98.0.0/24
check "ping 10.98.0.1 through the tunnel" wait_until 30 ping_server
check "wgpeer.wg_show('$DEV') reports alice's handshake and endpoint" \
	wait_until 10 sql_true "SELECT count(*) = 1 FROM wgpeer.wg_show('$DEV')
		WHERE public_key = '$KEY' AND latest_handshake > now() - interval '5 minutes'
		  AND endpoint LIKE '192.168.250.2:%' AND rx_bytes > 0 AND tx_bytes > 0"
check "wg_reconcile('$DEV') reads the device over UAPI: no error, nothing to fix" \
	sql_true "SELECT error IS NULL AND added = 0 AND corrected = 0 AND removed = 0
		FROM wgpeer.wg_reconcile('$DEV')"

echo "== 4. revoke cuts it off"
q -c "SELECT status FROM wgpeer.wg_revoke_peer('$PEER')" >/dev/null
check "alice leaves wg show $DEV" wait_until 30 not_on_server "$KEY"
check "the ping fails" no_ping
check "wg_show('$DEV') no longer lists alice" wait_until 10 sql_true \
	"SELECT count(*) = 0 FROM wgpeer.wg_show('$DEV') WHERE public_key = '$KEY'"

tap_summary uapi_e2e
