#!/bin/bash
# Config export (wgpeer.export_dir) on a full disk (issue 19, part 4), on a
# small tmpfs filled up.  Checked: a failed write is shown in
# interface_status.export_error, with one WARNING however many
# transactions commit meanwhile; a server file that only lacks a new peer
# is kept; revocations remove the revoked peers' client files (their
# private keys) and never leave a server file that lists them, even when
# nothing can be written; once there is space again the files are
# rewritten, the error clears and the log says so.  Run as root after
# `make install`:  bash test/export_full_test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh
. test/tap.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "test/export_full_test.sh mounts a tmpfs: run it as root" >&2
	exit 1
fi

TMP=$(mktemp -d /tmp/wgpeer-export-full.XXXXXX)
MNT=$TMP/disk
EXPORT=$MNT/wireguard
PEERS=100
cleanup() {
	cluster_stop
	umount "$MNT" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

id "$WGPEER_USER" >/dev/null 2>&1 || useradd --system --create-home "$WGPEER_USER"
chmod a+x "$TMP"
mkdir "$MNT"
# 2 MiB: 512 pages; a client file takes one, the server file five
mount -t tmpfs -o size=2m,mode=0755,uid="$(id -u "$WGPEER_USER")" wgpeer-full "$MNT"

cluster_start "$TMP/pg" "wgpeer.database = 'postgres'" \
	"wgpeer.export_dir = '$EXPORT'" "wgpeer.export_client_configs = on" \
	"wgpeer.reconcile_interval = '1s'" "wgpeer.stats_interval = 0"
LOG=$TMP/pg/server.log
cluster_psql >/dev/null <<SQL
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('wgfull', '127.0.0.1:51931', '10.141.0.1/24',
	listen_port => 51931, backend => 'uapi');
SELECT name FROM wgpeer.wg_add_interface('wgkeep', '127.0.0.1:51932', '10.142.0.1/24',
	listen_port => 51932, backend => 'uapi');
SELECT count(wgpeer.wg_create_peer('u' || g, interface => 'wgfull', config_name => 'u' || g))
	FROM generate_series(1, $PEERS) g;
SELECT count(wgpeer.wg_create_peer('k' || g, interface => 'wgkeep', config_name => 'k' || g))
	FROM generate_series(1, 2) g;
SQL

server_has() { grep -qs "^# wgpeer: interface $1, $2 peers;" "$EXPORT/$1.conf"; }
client_count() { find "$EXPORT/$1" -name '*.conf' 2>/dev/null | wc -l; }
has_clients() { test "$(client_count "$1")" -eq "$2"; }
status_of() { q -c "SELECT $2 FROM wgpeer.interface_status WHERE interface = '$1'"; }
failing() { test -n "$(status_of "$1" export_error)"; }
clear() { test -z "$(status_of "$1" export_error)"; }
# export WARNINGs (0.2 worded them "could not write <file>") and
# recoveries in the server log, per interface
warnings() {
	grep -cE "WARNING:  wgpeer could not (export the config files of interface \"$1\"|write \"$EXPORT/$1[./])" "$LOG" || true
}
recoveries() { grep -c "LOG:  wgpeer exports the config files of interface \"$1\" again" "$LOG" || true; }
# the file of a revoked peer, or a server file line naming one
revoked_keys() { q -c "SELECT public_key FROM wgpeer.peer WHERE interface = 'wgfull' AND status = 'revoked'"; }
revoked_files() { q -c "SELECT 'wgfull/' || config_name || '.conf' FROM wgpeer.peer WHERE interface = 'wgfull' AND status = 'revoked'"; }
no_revoked_on_disk() {
	local f
	for f in $(revoked_files); do
		[ ! -e "$EXPORT/$f" ] || return 1
	done
	! { [ -e "$EXPORT/wgfull.conf" ] && revoked_keys | grep -qFf - "$EXPORT/wgfull.conf"; }
}
fill_disk() { dd if=/dev/zero of="$MNT/fill.$1" bs=4k 2>/dev/null || true; }

check "wgfull.conf with $PEERS peers" wait_until 60 server_has wgfull $PEERS
check "$PEERS client files" wait_until 60 has_clients wgfull $PEERS
check "wgkeep.conf with 2 peers" wait_until 60 server_has wgkeep 2
check "no export error while there is space" clear wgfull

echo "== the disk fills up; a new peer's files cannot be written"
fill_disk 1
echo "# $(df -k --output=avail "$MNT" | tail -1 | tr -d ' ') KiB left"
q -c "SELECT count(*) FROM wgpeer.wg_create_peer('late', interface => 'wgfull', config_name => 'late')" >/dev/null
check "interface_status shows the export error of wgfull" wait_until 30 failing wgfull
echo "# export_error: $(status_of wgfull export_error)"
check "export_error_at is set" test -n "$(status_of wgfull export_error_at)"
check "wgfull.conf, which only lacks the new peer, is kept" server_has wgfull $PEERS
check "wgkeep, whose files did not change, shows no error" clear wgkeep
# more committing transactions, each a new pass that fails again
for i in 1 2 3 4 5 6 7 8 9 10; do
	q -c "UPDATE wgpeer.peer SET dns = '10.141.0.$i' WHERE user_id = 'late'" >/dev/null
	sleep 0.2
done
same "one WARNING for wgfull after 11 failing transactions" 1 "$(warnings wgfull)"

echo "== two peers revoked on the full disk"
q -c "SELECT count(wgpeer.wg_revoke_peer(peer_id)) FROM wgpeer.peer
	  WHERE user_id IN ('u1', 'u2')" >/dev/null
check "their client files are gone and no server file lists them" \
	wait_until 30 no_revoked_on_disk
check "the server file that listed them was removed, not kept stale" \
	grep -q "LOG:  wgpeer removed \"$EXPORT/wgfull.conf\": it lists peers" "$LOG"

echo "== full again; every peer revoked, one transaction each"
fill_disk 2
echo "# $(df -k --output=avail "$MNT" | tail -1 | tr -d ' ') KiB left"
for u in $(q -c "SELECT user_id FROM wgpeer.peer WHERE interface = 'wgfull'
				 AND status <> 'revoked' ORDER BY user_id"); do
	q -c "SELECT (wgpeer.wg_revoke_peer(peer_id)).status FROM wgpeer.peer WHERE user_id = '$u'" >/dev/null
done
check "every revoked peer's client file is gone, no server file lists one" \
	wait_until 60 no_revoked_on_disk
check "no client file is left for wgfull" wait_until 30 has_clients wgfull 0
none "temporary files left" find "$EXPORT" -name '.*.tmp.*'

echo "== space again"
rm -f "$MNT"/fill.*
q -c "SELECT count(*) FROM wgpeer.wg_create_peer('after', interface => 'wgfull', config_name => 'after')" >/dev/null
check "wgfull.conf lists the one live peer" wait_until 60 server_has wgfull 1
after=$(q -c "SELECT peer_id FROM wgpeer.peer WHERE user_id = 'after'")
after_file_ok() { test "$(cat "$EXPORT/wgfull/after.conf" 2>/dev/null)" = "$(q -c "SELECT wgpeer.wg_peer_config('$after')")"; }
check "its client file equals wg_peer_config()" wait_until 60 after_file_ok
check "the export error of wgfull clears" wait_until 30 clear wgfull
check "export_error_at clears" test -z "$(status_of wgfull export_error_at)"
echo "# WARNINGs for wgfull: $(warnings wgfull), recoveries logged: $(recoveries wgfull)"
same "one WARNING per time wgfull started failing, one LOG per recovery" \
	"$(warnings wgfull)" "$(recoveries wgfull)"
check "at most 3 WARNINGs for wgfull (over 100 failing commits)" test "$(warnings wgfull)" -le 3
same "no WARNING for wgkeep" 0 "$(warnings wgkeep)"
check "wgkeep.conf kept its 2 peers" server_has wgkeep 2
same "the worker is still running" 1 \
	"$(q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'wgpeer apply worker'")"

tap_summary export_full_test
