#!/bin/bash
# wgpeer demo: on a fresh Debian 12 machine, install what is needed, build
# and install wgpeer, start a throwaway PostgreSQL cluster, register a
# WireGuard interface, create a peer through SQL, and print its client
# config and a QR code a phone can scan.  Cleans up everything it started.
# Run as root:  sudo ./demo.sh
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
TMP=$(mktemp -d /tmp/wgpeer-demo.XXXXXX)
trap 'cluster_stop; rm -rf "$TMP"' EXIT
echo "== starting a throwaway cluster in $TMP"
cluster_start "$TMP/pg"

run() {
	echo
	echo "wgpeer=# $1"
	cluster_psql -c "$1"
}

run "CREATE EXTENSION wgpeer"
run "SELECT name, endpoint, address, address6, public_key
     FROM wgpeer.wg_add_interface('wg0', 'vpn.example.com:51820', '10.10.0.1/24',
                                  address6 => 'fd00:10:10::1/64',
                                  dns => '10.10.0.1', persistent_keepalive => 25)"
run "SELECT peer_id, user_id, address, address6, status, expires_at
     FROM wgpeer.wg_create_peer('alice@example.com', duration_months => 6)"
PEER=$(cluster_psql -At -c "SELECT peer_id FROM wgpeer.peer LIMIT 1")
echo
echo "wgpeer=# SELECT wgpeer.wg_peer_config('$PEER');"
cluster_psql -At -c "SELECT wgpeer.wg_peer_config('$PEER')"
echo "wgpeer=# SELECT wgpeer.wg_peer_qr_text('$PEER');"
cluster_psql -At -c "SELECT wgpeer.wg_peer_qr_text('$PEER')"
run "SELECT change_id, interface, op, public_key FROM wgpeer.queue"
echo
echo "== the change above waits in wgpeer.queue for the apply worker; cleaning up"
