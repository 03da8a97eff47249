#!/bin/bash
# wgpeer demo: on a fresh Debian 12 machine, install what is needed, build
# and install wgpeer, start a throwaway PostgreSQL cluster with the apply
# worker, bring up a WireGuard interface, create a peer through SQL, print
# its client config and a QR code a phone can scan, bring up a client from
# that config, ping through the tunnel, show the handshake, revoke the peer
# and watch the ping fail.  Cleans up everything it started.
# Run as root:  sudo ./demo.sh
#
# The server interface is kernel WireGuard where `ip link add type
# wireguard` works (PostgreSQL then runs with CAP_NET_ADMIN in the server's
# network namespace), otherwise wireguard-go, which the worker drives over
# its UAPI socket.  Server and client live in two network namespaces joined
# by a veth pair, so the host's own network is not touched.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh installs packages and the extension: run it as root" >&2
	exit 1
fi

echo "== installing packages and building wgpeer"
bash test/install-deps.sh
make -s -j"$(nproc)" >/dev/null
make -s install >/dev/null

. test/cluster.sh
NS_S=wgpeer-demo-srv-$$
NS_C=wgpeer-demo-cli-$$
DEV=wgdemo0
CDEV=wgdemoc0
TMP=$(mktemp -d /tmp/wgpeer-demo.XXXXXX)
chmod 755 "$TMP"
WG_DEV_LOGS=$TMP
. test/wireguard.sh
. test/tap.sh

cleanup() {
	cluster_stop
	wg_dev_cleanup
	ip netns del "$NS_S" 2>/dev/null || true
	ip netns del "$NS_C" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
run() {
	echo
	echo "wgpeer=# $1"
	cluster_psql -c "$1"
}
srv() { ip netns exec "$NS_S" "$@"; }
cli() { ip netns exec "$NS_C" "$@"; }
not_on_server() { ! srv wg show "$DEV" peers | grep -qx "$1"; }

echo "== two network namespaces joined by a veth pair (server 192.168.251.1)"
ip netns add "$NS_S"
ip netns add "$NS_C"
veth_pair "$NS_S" demo-s 192.168.251.1/24 "$NS_C" demo-c 192.168.251.2/24

id "$WGPEER_USER" >/dev/null 2>&1 || useradd --system --create-home "$WGPEER_USER"
if ip -n "$NS_S" link add "$DEV" type wireguard 2>/dev/null; then
	ip -n "$NS_S" link del "$DEV"
	echo "== server interface $DEV: kernel WireGuard (netlink)"
	# netlink reaches the interfaces of the worker's own network namespace,
	# and needs CAP_NET_ADMIN there: PostgreSQL runs inside it with it
	CLUSTER_NETNS=$NS_S
	CLUSTER_NET_ADMIN=1
else
	WGPEER_BACKEND=uapi
	echo "== server interface $DEV: no kernel WireGuard here, wireguard-go (UAPI)"
	echo "   (run as PostgreSQL's user, whose socket the worker may then use)"
fi
wg_dev_add "$DEV" "$NS_S"
ip -n "$NS_S" addr add 10.97.0.1/24 dev "$DEV"
ip -n "$NS_S" link set "$DEV" up

echo "== starting a throwaway cluster in $TMP with the apply worker"
cluster_start "$TMP/pg" "wgpeer.database = 'postgres'"

run "CREATE EXTENSION wgpeer"
run "SELECT name, endpoint, address, listen_port, public_key
     FROM wgpeer.wg_add_interface('$DEV', '192.168.251.1:51820', '10.97.0.1/24',
                                  allowed_ips => '10.97.0.0/24',
                                  persistent_keepalive => 25)"
run "SELECT peer_id, user_id, address, status, expires_at
     FROM wgpeer.wg_create_peer('alice@example.com', interface => '$DEV',
                                duration_months => 6)"
PEER=$(cluster_psql -At -c "SELECT peer_id FROM wgpeer.peer WHERE user_id = 'alice@example.com'")
KEY=$(cluster_psql -At -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$PEER'")
echo
echo "wgpeer=# SELECT wgpeer.wg_peer_config('$PEER');"
(umask 077 && cluster_psql -At -c "SELECT wgpeer.wg_peer_config('$PEER')" >"$TMP/client.conf")
cat "$TMP/client.conf"
echo "wgpeer=# SELECT wgpeer.wg_peer_qr_text('$PEER');"
cluster_psql -At -c "SELECT wgpeer.wg_peer_qr_text('$PEER')"

echo "== the worker applies the committed peer to $DEV"
wait_until 30 sql_true "SELECT status = 'active' FROM wgpeer.peer WHERE peer_id = '$PEER'" || {
	echo "the peer did not become active:" >&2
	cluster_psql -c "SELECT * FROM wgpeer.interface_status" >&2
	exit 1
}
run "SELECT user_id, status FROM wgpeer.peer"
echo
echo "# wg show $DEV   (in the server's namespace)"
srv wg show "$DEV"

echo
echo "== a client from that config in its own namespace"
wg_client_up "$CDEV" "$NS_C" "$TMP/client.conf" 10.97.0.0/24
echo "# ping 10.97.0.1 through the tunnel"
cli ping -c 3 -i 0.5 -W 2 10.97.0.1

run "SELECT public_key, endpoint, allowed_ips, latest_handshake, rx_bytes, tx_bytes
     FROM wgpeer.wg_show('$DEV')"

echo
echo "== revoking the peer"
run "SELECT user_id, status FROM wgpeer.wg_revoke_peer('$PEER')"
wait_until 30 not_on_server "$KEY"
echo
echo "# wg show $DEV peers   (alice is gone)"
srv wg show "$DEV" peers
echo "# ping 10.97.0.1 again"
if cli ping -c 3 -i 0.5 -W 1 10.97.0.1; then
	echo "the ping still goes through after the revoke" >&2
	exit 1
fi
echo
echo "== the revoked peer is cut off; cleaning up"
