#!/bin/bash
# A host reboot: the same PostgreSQL data directory, a fresh kernel whose
# WireGuard interfaces come back empty.  Run as root after `make install`:
#	bash test/reboot_test.sh
# It boots the test VM (test/vm/run.sh, always a VM: it is the machine
# that reboots) twice with the same disk image, an ext4 file system that
# holds the data directory:
#	boot 1: PostgreSQL (CAP_NET_ADMIN, fsync on) with the worker; wg0 with
#	   40 live peers, one revoked, one that expires while the machine is
#	   down, and a change queued for wg1, which does not exist yet; then
#	   the power goes: an immediate shutdown, the VM powered off;
#	boot 2: wg0 created empty before PostgreSQL starts (as the network
#	   configuration would), PostgreSQL recovers; checked: wg0 gets every
#	   live peer back (keys, preshared keys, allowed IPs, keepalive) with
#	   its private key and port, the revoked peer stays off, the peer whose
#	   subscription ended while the machine was down is expired and not
#	   restored, and once wg1 appears the change queued before the reboot
#	   reaches it.
# Prints "N passed, N failed" for each boot and exits non-zero on any
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "test/reboot_test.sh boots a VM: run it as root" >&2
	exit 1
fi

# On the host: make the disk, boot twice.
if [ "${1:-}" != --boot ]; then
	disk=$(mktemp /tmp/wgpeer-reboot.XXXXXX)
	trap 'rm -f "$disk"' EXIT
	truncate -s 512M "$disk"
	mkfs.ext4 -q -F "$disk"
	for boot in 1 2; do
		WGPEER_VM=always WGPEER_VM_DISK=$disk bash test/vm/run.sh "$PWD/test/reboot_test.sh" --boot "$boot"
	done
	exit 0
fi

# In the VM.
BOOT=$2
STATE=/run/wgpeer-state			# the disk: the cluster and notes
T=$(mktemp -d /run/wgpeer-reboot.XXXXXX)
chmod 755 "$T"
CLUSTER_NET_ADMIN=1
. test/cluster.sh
. test/wireguard.sh
. test/tap.sh

id "$WGPEER_USER" >/dev/null 2>&1 || useradd --system --create-home "$WGPEER_USER"
mkdir -p "$STATE"
mount -t ext4 /dev/vda "$STATE"
CLUSTER_DIR=$STATE/pg
cleanup() {
	# boot 1 ends with a power cut: no clean shutdown
	cluster_ctl -m immediate -w stop >/dev/null 2>&1 || true
	[ -z "${WGPEER_VM_OUT:-}" ] ||
		cp "$CLUSTER_DIR/server.log" "$WGPEER_VM_OUT/reboot.boot$BOOT.server.log" 2>/dev/null || true
	umount "$STATE" || true
	rm -rf "$T"
}
trap cleanup EXIT

server_up() {
	ip addr add 10.10.0.1/24 dev wg0
	ip link set wg0 up
}
in_kernel() { wg show "$1" peers 2>/dev/null | grep -qxF "$2"; }
restored() {
	kernel_peers wg0 >"$T/got"
	cmp -s "$STATE/live" "$T/got"
}

if [ "$BOOT" = 1 ]; then
	echo "== boot 1: a working server"
	cluster_start "$CLUSTER_DIR" "wgpeer.database = 'postgres'" "wgpeer.retry_max = '2s'" \
		"fsync = on"
	q -c "CREATE EXTENSION wgpeer"
	wg_dev_add wg0
	server_up
	q -c "SELECT count(*) FROM wgpeer.wg_add_interface('wg0', '10.99.0.1:51820', '10.10.0.1/24',
			'fd00:10::1/64', persistent_keepalive => 25)" >/dev/null
	q -c "SELECT count(*) FROM wgpeer.wg_add_interface('wg1', '10.99.0.1:51821', '10.11.0.1/24',
			listen_port => 51821)" >/dev/null
	q -c "SELECT count(wgpeer.wg_create_peer('user' || g, interface => 'wg0'))
		  FROM generate_series(1, 42) g" >/dev/null
	REVOKED=$(q -c "SELECT public_key FROM wgpeer.wg_revoke_peer(
					(SELECT peer_id FROM wgpeer.peer WHERE user_id = 'user1'))")
	LEAVING=$(q -c "SELECT public_key FROM wgpeer.peer WHERE user_id = 'user2'")
	applied() {
		sql_true "SELECT count(*) = 0 FROM wgpeer.queue" && [ "$(wg show wg0 peers | wc -l)" -eq 41 ]
	}
	check "41 peers on wg0, the revoked one removed" wait_until 300 applied
	Q_KEY=$(q -c "SELECT public_key FROM wgpeer.wg_create_peer('queued', interface => 'wg1')")
	check "a change for wg1 waits in the queue" wait_until 120 \
		sql_true "SELECT backlog = 1 FROM wgpeer.interface_status WHERE interface = 'wg1'"
	kernel_peers wg0 | grep -vF "$LEAVING" >"$STATE/live"
	check "wg0 matches the database" same_files "$STATE/live" \
		<(wanted_peers wg0 | grep -vF "$LEAVING")
	printf '%s\n' "$REVOKED" >"$STATE/revoked"
	printf '%s\n' "$LEAVING" >"$STATE/leaving"
	printf '%s\n' "$Q_KEY" >"$STATE/queued"
	wg show wg0 private-key >"$STATE/private-key"
	wg show wg0 listen-port >"$STATE/listen-port"
	# user2's subscription ends 5 s from now, and the power goes at once
	q -c "UPDATE wgpeer.peer SET expires_at = clock_timestamp() + interval '5 s'
		  WHERE user_id = 'user2'"
	echo "== the power goes"
	cluster_ctl -m immediate -w stop >/dev/null
	check "user2 was still on wg0 when it went" in_kernel wg0 "$LEAVING"
	tap_summary "reboot_test boot $BOOT"
	exit
fi

echo "== boot 2: the kernel has no peers; the database has them"
read -r REVOKED <"$STATE/revoked"
read -r LEAVING <"$STATE/leaving"
read -r Q_KEY <"$STATE/queued"
# wg0 comes up empty before PostgreSQL, as systemd-networkd would make it
wg_dev_add wg0
server_up
check "wg0 starts empty" test "$(wg show wg0 peers | wc -l)" -eq 0
cluster_run
t0=$SECONDS
check "wg0 gets every live peer back: keys, preshared keys, allowed IPs, keepalive ($(wc -l <"$STATE/live") peers)" \
	wait_until 300 restored
echo "   (within $((SECONDS - t0)) s of PostgreSQL's start)"
check "and its private key" test "$(wg show wg0 private-key)" = "$(cat "$STATE/private-key")"
check "and its listen port" test "$(wg show wg0 listen-port)" = "$(cat "$STATE/listen-port")"
check "the revoked peer stays off" eval '! in_kernel wg0 "$REVOKED"'
left() {
	sql_true "SELECT status = 'expired' FROM wgpeer.peer WHERE public_key = '$LEAVING'"
}
check "the peer whose subscription ended while the machine was down is expired" \
	wait_until 120 left
check "and not on wg0" eval '! in_kernel wg0 "$LEAVING"'
check "wg0 holds exactly the database's live peers" same_files <(wanted_peers wg0) <(kernel_peers wg0)
check "the change queued before the reboot is still queued" \
	sql_true "SELECT count(*) = 1 FROM wgpeer.queue WHERE interface = 'wg1'"
wg_dev_add wg1
check "once wg1 exists it arrives" wait_until 120 in_kernel wg1 "$Q_KEY"
check "and the queue drains" wait_until 120 sql_true "SELECT count(*) = 0 FROM wgpeer.queue"
tap_summary "reboot_test boot $BOOT"
