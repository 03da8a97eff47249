#!/bin/bash
# Per-peer routing with a real WireGuard client, natively on wireguard-go:
# the server interface in one network namespace, the client in another,
# joined by a veth pair; a subnet (192.168.77.1 on the client's loopback)
# behind the client.  Run as root after `make install`:
#   bash test/routes_e2e.sh
#
#	1. a client from wg_create_peer's config pings the server; the subnet
#	   behind it is unreachable from the server's namespace (no peer of
#	   the interface has it);
#	2. wg_set_peer_routes: the interface gives the peer its routes besides
#	   its addresses (five allowed IPs), wg_show and the exported server
#	   config say so, and the server's namespace reaches 192.168.77.1
#	   through the tunnel; a reconcile finds nothing to fix;
#	3. a hand edit that drops the routes is repaired by a reconcile;
#	4. the routes removed: off the interface, the subnet unreachable
#	   again, a reconcile finds nothing to fix;
#	5. wg_set_peer_allowed_ips: the client's new config, which WireGuard's
#	   own tools load, routes only the given prefixes.
# Polls with bounds, never fixed sleeps.  Prints "N passed, N failed" and
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

E2E_NAME=rt
DEV=rtwg0						# wgpeer's interface, run by wireguard-go
CDEV=rtwgc0						# the client's interface
E2E_NET=192.168.243
. test/e2e.sh
ping_server() { cli ping -c 1 -W 1 10.93.0.1 >/dev/null 2>&1; }
ping_subnet() { srv ping -c 1 -W 1 192.168.77.1 >/dev/null 2>&1; }
no_ping_subnet() { ! srv ping -c 3 -i 0.3 -W 1 192.168.77.1 >/dev/null 2>&1; }
# the peer's allowed IPs on the interface, sorted, one line
device_ips() { srv wg show "$DEV" allowed-ips | awk -v k="$KEY" '$1 == k { $1 = ""; print }' | tr ' ' '\n' | sed '/^$/d' | sort | paste -sd,; }
ips_are() { [ "$(device_ips)" = "$1" ]; }
device_in_sync() { [ "$(kernel_peers "$DEV")" = "$(wanted_peers "$DEV")" ]; }
nothing_to_fix() {
	sql_true "SELECT error IS NULL AND added = 0 AND corrected = 0 AND removed = 0
	          FROM wgpeer.wg_reconcile('$DEV')"
}
exported() { grep -qxF "$1" "$TMP/export/$DEV.conf" 2>/dev/null; }
e2e_start
ip -n "$NS_S" addr add 10.93.0.1/24 dev "$DEV"
ip -n "$NS_S" link set "$DEV" up
# the operator routes the subnet to the interface; wgpeer picks the peer
ip -n "$NS_S" route add 192.168.77.0/24 dev "$DEV"
# the subnet behind the client
ip -n "$NS_C" addr add 192.168.77.1/32 dev lo

mkdir -p "$TMP/export"
chown "$WGPEER_USER" "$TMP/export"
cluster_start "$TMP/pg" "wgpeer.database = 'postgres'" \
	"wgpeer.export_dir = '$TMP/export'"
q >/dev/null <<SQL
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('$DEV', '192.168.243.1:51820',
	'10.93.0.1/24', address6 => 'fd00:93::1/64',
	allowed_ips => '10.93.0.0/24', backend => 'uapi');
SQL
PEER=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('site', interface => '$DEV')")
KEY=$(q -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$PEER'")
(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$PEER')" >"$TMP/client.conf")

echo "== 1. the client pings; the subnet behind it is unreachable"
check "the peer reaches $DEV" wait_until 30 on_server "$KEY"
wg_client_up "$CDEV" "$NS_C" "$TMP/client.conf" 10.93.0.0/24
check "ping 10.93.0.1 through the tunnel" wait_until 30 ping_server
same "the peer has its two addresses only" "10.93.0.2/32,fd00:93::2/128" "$(device_ips)"
check "192.168.77.1 is unreachable from the server" no_ping_subnet

echo "== 2. routes behind the peer"
same "wg_set_peer_routes stores them sorted" "{192.168.77.0/24,192.168.78.0/24,fd77::/64}" \
	"$(q -c "SELECT wgpeer.wg_set_peer_routes('$PEER', '{fd77::/64, 192.168.78.0/24, 192.168.77.0/24}')")"
check "the interface gives the peer five allowed IPs" wait_until 10 ips_are \
	"10.93.0.2/32,192.168.77.0/24,192.168.78.0/24,fd00:93::2/128,fd77::/64"
check "the server's namespace reaches 192.168.77.1 through the tunnel" \
	wait_until 30 ping_subnet
check "the interface holds what the database wants" device_in_sync
check "wg_show lists the routes" sql_true \
	"SELECT allowed_ips LIKE '%192.168.77.0/24%' AND allowed_ips LIKE '%fd77::/64%'
	 FROM wgpeer.wg_show('$DEV') WHERE public_key = '$KEY'"
check "the exported server config routes them to the peer" wait_until 15 exported \
	"AllowedIPs = 10.93.0.2/32, fd00:93::2/128, 192.168.77.0/24, 192.168.78.0/24, fd77::/64"
check "wg_reconcile finds nothing to fix" nothing_to_fix

echo "== 3. a hand edit that drops the routes is repaired"
srv wg set "$DEV" peer "$KEY" allowed-ips 10.93.0.2/32,fd00:93::2/128
check "the routes are gone by hand" ips_are "10.93.0.2/32,fd00:93::2/128"
check "wg_reconcile corrects the peer" sql_true \
	"SELECT error IS NULL AND added = 0 AND corrected = 1 AND removed = 0
	 FROM wgpeer.wg_reconcile('$DEV')"
check "the routes are back" device_in_sync
check "the subnet is reachable again" wait_until 30 ping_subnet

echo "== 4. the routes removed"
check "wg_set_peer_routes(NULL) returns NULL" test \
	"$(q -c "SELECT wgpeer.wg_set_peer_routes('$PEER', NULL) IS NULL")" = t
check "the peer is back to its addresses" wait_until 10 ips_are \
	"10.93.0.2/32,fd00:93::2/128"
check "192.168.77.1 is unreachable again" no_ping_subnet
check "the client still pings the server" ping_server
check "the interface holds what the database wants" device_in_sync
check "wg_reconcile finds nothing to fix" nothing_to_fix
check "the exported server config has no route" wait_until 15 exported \
	"AllowedIPs = 10.93.0.2/32, fd00:93::2/128"

echo "== 5. a split tunnel: the client's own AllowedIPs"
(umask 077 && q -c "SELECT wgpeer.wg_set_peer_allowed_ips('$PEER',
	'{10.93.0.0/24, 192.168.88.0/24}')" >"$TMP/split.conf")
check "the new config routes the given prefixes" \
	grep -qx "AllowedIPs = 10.93.0.0/24, 192.168.88.0/24" "$TMP/split.conf"
check "only that line changed" same_files \
	<(grep -v '^AllowedIPs' "$TMP/client.conf") <(grep -v '^AllowedIPs' "$TMP/split.conf")
wg_dev_del "$CDEV"
wg_client_up "$CDEV" "$NS_C" "$TMP/split.conf" 10.93.0.0/24
same "the client's WireGuard routes them" "10.93.0.0/24,192.168.88.0/24" \
	"$(cli wg show "$CDEV" allowed-ips | cut -f2 | tr ' ' '\n' | sort | paste -sd,)"
check "the client still pings the server" wait_until 30 ping_server
check "nothing changed on the server interface" nothing_to_fix

tap_summary
