#!/bin/bash
# AmneziaWG in node mode, natively (no VM): an AmneziaWG interface
# registered on the primary for node a replicates to node a with its
# parameters, and node a's worker gives them to the device; a change of
# them on the primary reaches the device too.
#
# The device is amneziawg-go's UAPI socket in /var/run/amneziawg, played
# by a recording fake (python3): amneziawg-go cannot be built here (its Go
# dependencies are in no registry we reach) and a kernel AmneziaWG device
# needs the module, i.e. the VM (test/awg_test.sh proves that one on the
# wire).  The fake answers a get as a device without parameters would
# and records every set the node's worker sends; the checks read what it
# recorded.  Run as root after `make install`:  bash test/awg_node_test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh
. test/tap.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "test/awg_node_test.sh makes a socket in /var/run/amneziawg: run it as root" >&2
	exit 1
fi

S=$(($$ % 100000))
IFN=awgn$S
AWG_DIR=/var/run/amneziawg
TMP=$(mktemp -d /tmp/wgpeer-awg-node.XXXXXX)
chmod 755 "$TMP"
. test/node_lib.sh
FAKE=
MADE_DIR=

cleanup() {
	local status=$?
	set +e
	report_unexpected_errors "$status"
	[ -z "$FAKE" ] || kill "$FAKE" 2>/dev/null
	pg_stop_all
	rm -f "$AWG_DIR/$IFN.sock"
	[ -z "$MADE_DIR" ] || rmdir "$AWG_DIR" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

if [ -e "$AWG_DIR/$IFN.sock" ] || [ -e "/var/run/wireguard/$IFN.sock" ]; then
	echo "a daemon runs $IFN already" >&2
	exit 1
fi
if [ ! -d "$AWG_DIR" ]; then
	mkdir -m 755 "$AWG_DIR"
	MADE_DIR=1
fi

echo "== the device: a recording fake of amneziawg-go's socket"
# Every request goes to $TMP/requests, one after the other; a get is
# answered with the listen port only (no AWG keys: parameters lost), a
# set with errno=0.
python3 - "$AWG_DIR/$IFN.sock" "$TMP/requests" <<'PY' &
import os, socket, sys
path, record = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
os.chmod(path, 0o777)
srv.listen(16)
while True:
    conn, _ = srv.accept()
    data = b""
    while not data.endswith(b"\n\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    with open(record, "ab") as f:
        f.write(data)
    if data.startswith(b"get=1"):
        conn.sendall(b"listen_port=51870\nerrno=0\n\n")
    else:
        conn.sendall(b"errno=0\n\n")
    conn.close()
PY
FAKE=$!
sock_up() { [ -S "$AWG_DIR/$IFN.sock" ]; }
check "the fake amneziawg-go listens in $AWG_DIR" wait_until 30 sock_up

echo "== the primary and node a"
pg_start p
pg_start a "wgpeer.node = 'a'"
for n in p a; do on "$n" q -c "CREATE EXTENSION wgpeer" >/dev/null; done
on p q >/dev/null <<SQL
SELECT wgpeer.wg_add_node('a');
SELECT name FROM wgpeer.wg_add_interface('$IFN', '192.0.2.70:51870',
	'10.70.0.1/24', listen_port => 51870, node => 'a', backend => 'uapi',
	flavor => 'amneziawg',
	awg => '{"jc": 4, "jmin": 40, "jmax": 70, "s1": 20, "s2": 30,
	         "h1": "100-200", "h2": 300, "h3": 400, "h4": 500,
	         "i1": "<b 0xc0ff><r 16>"}');
SQL
node_link p a >/dev/null

replicated() {
	[ "$(on a q -c "SELECT awg FROM wgpeer.interface WHERE name = '$IFN'")" = \
		"$(on p q -c "SELECT awg FROM wgpeer.interface WHERE name = '$IFN'")" ]
}
check "the interface's flavor and parameters replicate to node a" wait_until 120 replicated
same "node a's row is an AmneziaWG one" amneziawg \
	"$(on a q -c "SELECT flavor FROM wgpeer.interface WHERE name = '$IFN'")"

# the parameters as a set of node a's worker carries them
told() {
	grep -qx 'jc=4' "$TMP/requests" 2>/dev/null &&
		grep -qx 'h1=100-200' "$TMP/requests" &&
		grep -qx 'h4=500' "$TMP/requests" &&
		grep -qx 'i1=<b 0xc0ff><r 16>' "$TMP/requests"
}
check "node a's worker asks the device for the parameters" wait_until 120 told
check "and read the device first (get=1)" grep -qx 'get=1' "$TMP/requests"

# a peer: its batch carries the parameters again, with the peer
PEER=$(on p q -c "SELECT peer_id FROM wgpeer.wg_create_peer('nadia', interface => '$IFN')")
KEY_HEX=$(on p q -c "SELECT encode(decode(public_key, 'base64'), 'hex')
	FROM wgpeer.peer WHERE peer_id = '$PEER'")
peer_sent() { grep -qx "public_key=$KEY_HEX" "$TMP/requests" 2>/dev/null; }
check "node a's worker sends the new peer to the device" wait_until 120 peer_sent
# the batch sends the peer, then the device settings apart (isolate.c):
# the parameters come again after the peer
after_peer() {
	awk -v key="public_key=$KEY_HEX" '$0 == key { seen = 1 }
		seen && $0 == "jc=4" { found = 1 } END { exit !found }' "$TMP/requests"
}
check "and the parameters with the batch's device settings" wait_until 60 after_peer

# a change on the primary reaches the device through node a
on p q -c "SELECT name FROM wgpeer.wg_set_interface_awg('$IFN',
	(SELECT awg || '{\"jc\": 6}' FROM wgpeer.interface WHERE name = '$IFN'))" >/dev/null
changed() { grep -qx 'jc=6' "$TMP/requests" 2>/dev/null; }
check "a change of the parameters on the primary reaches the device" wait_until 120 changed

tap_summary awg_node_test
