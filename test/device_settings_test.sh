#!/bin/bash
# The device's own settings (private key, listen port) and the queue
# (issue 22): a batch sends them only when they differ from what the queue
# last set on that same device, never leaving a device with a wrong key or
# port.  wireguard-go natively, in a network namespace.  Run as root after
# `make install`:  bash test/device_settings_test.sh
# Checks:
#	1. the first batch sets the device's key and port;
#	2. a later batch does not send them again: a port changed by hand on
#	   the device is still there after the next peer is active (the old
#	   worker resent both with every batch);
#	3. reconcile repairs a port and a private key changed by hand, and the
#	   next batch leaves them right;
#	4. a new listen_port in the database reaches the device;
#	5. a recreated device (a new daemon: no key, a random port) gets its
#	   key and port with the next batch (its socket is new: the worker
#	   knows nothing of what is on it).
# Polls with bounds, never fixed sleeps.  Prints "N passed, N failed" and
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh
STAGE=ds
. test/userspace.sh

S=$(($$ % 10000))
DEV=wgds$S
PORT=$((41000 + S % 1000))
PORT_HAND=$((43000 + S % 1000))
PORT_NEW=$((45000 + S % 1000))

srv() { ip netns exec "$NS" "$@"; }
port_is() { [ "$(srv wg show "$DEV" listen-port 2>/dev/null)" = "$1" ]; }
key_is_ours() {
	sql_true "SELECT '$(srv wg show "$DEV" private-key 2>/dev/null)' = private_key
		FROM wgpeer.interface WHERE name = '$DEV'"
}
# peer NAME: create one peer on DEV, wait until it is active; its key
peer() {
	local id key
	IFS=$'\t' read -r id key < <(q -c "SELECT peer_id, public_key
		FROM wgpeer.wg_create_peer('$1', interface => '$DEV')")
	wait_until 60 sql_true "SELECT status = 'active' FROM wgpeer.peer
		WHERE peer_id = '$id'" || return 1
	echo "$key"
}
key_not_ours() { ! key_is_ours; }
on_device() { srv wg show "$DEV" peers | grep -qxF "$1"; }

ip netns add "$NS"
ip -n "$NS" link set lo up
wg_dev_add "$DEV" "$NS"
# reconcile only when asked (or when an interface changes): what repairs
# what is then plain
cluster_start "$TMP/pg" "wgpeer.database = 'postgres'" \
	"wgpeer.reconcile_interval = 3600000" "wgpeer.stats_interval = 0"
q >/dev/null <<SQL
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('$DEV', '192.0.2.1:$PORT',
	'10.97.0.1/24', listen_port => $PORT, backend => 'uapi');
SQL

echo "== 1. the first batch sets the device's key and port"
k=$(peer a1)
check "the peer is on the device" on_device "$k"
check "the device has the interface's private key" key_is_ours
check "the device listens on $PORT" port_is "$PORT"

echo "== 2. a later batch does not resend them"
srv wg set "$DEV" listen-port "$PORT_HAND"
check "the port changed by hand to $PORT_HAND" port_is "$PORT_HAND"
k=$(peer a2)
check "the next peer is on the device" on_device "$k"
check "the batch left the port alone ($PORT_HAND)" port_is "$PORT_HAND"

echo "== 3. reconcile repairs a port and a key changed by hand"
check "wg_reconcile() sets them again" sql_true \
	"SELECT error IS NULL FROM wgpeer.wg_reconcile('$DEV')"
check "the device listens on $PORT again" port_is "$PORT"
(umask 077 && wg genkey >"$TMP/hand.key")
srv wg set "$DEV" private-key "$TMP/hand.key"
check "the key changed by hand" key_not_ours
q -c "SELECT count(*) FROM wgpeer.wg_reconcile('$DEV')" >/dev/null
check "reconcile put the interface's key back" key_is_ours
k=$(peer a3)
check "after the next batch: the peer is on the device" on_device "$k"
check "... the key is still the interface's" key_is_ours
check "... the port is still $PORT" port_is "$PORT"

echo "== 4. a new listen_port in the database reaches the device"
q -c "UPDATE wgpeer.interface SET listen_port = $PORT_NEW WHERE name = '$DEV'"
check "the device listens on $PORT_NEW" wait_until 30 port_is "$PORT_NEW"
k=$(peer a4)
check "the next peer is on the device" on_device "$k"
check "the port is still $PORT_NEW" port_is "$PORT_NEW"

echo "== 5. a recreated device gets its key and port"
wg_dev_del "$DEV"
wg_dev_add "$DEV" "$NS"
k=$(peer a5)
check "the next peer is on the new device" on_device "$k"
# at once: the batch sets them before the peer is recorded active (the
# worker also notices a recreated device within a second and reconciles)
check "the new device has the interface's private key" key_is_ours
check "the new device listens on $PORT_NEW" port_is "$PORT_NEW"

tap_summary device_settings
