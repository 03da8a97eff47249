#!/bin/bash
# Config export (wgpeer.export_dir): the apply worker keeps <interface>.conf
# in `wg setconf` format and, with wgpeer.export_client_configs, one client
# config per live peer.  Checked here: the server file loaded with
# `wg setconf` into a wireguard-go interface in a private network namespace
# shows exactly the database's keys, port, peers and allowed IPs; client
# files equal wg_peer_config(); revoked and expired peers' files go, and so
# does the file of a peer whose key a config link handed out; modes
# are 0600 (directories 0700); no temporary file is left; an idle worker
# rewrites nothing; an unwritable directory gives a WARNING, not a dead
# worker, and heals.  Then the kill test: a writer replacing a large file
# with wg_atomic_write() is SIGKILLed at random moments while a reader
# checks every version is complete.  Run as root after `make install`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. test/cluster.sh
. test/tap.sh

NS=wgpeer-exp
DEV=wgexp0
TMP=$(mktemp -d /tmp/wgpeer-export.XXXXXX)
cleanup() {
	ip netns del "$NS" 2>/dev/null || true
	cluster_stop
	rm -rf "$TMP"
}
trap cleanup EXIT

# The export directory does not exist yet: the worker creates it, 0700.
id "$WGPEER_USER" >/dev/null 2>&1 || useradd --system --create-home "$WGPEER_USER"
mkdir "$TMP/out"
chown "$WGPEER_USER" "$TMP/out"
chmod a+x "$TMP"
EXPORT=$TMP/out/wireguard

cluster_start "$TMP/pg" "wgpeer.database = 'postgres'" \
	"wgpeer.export_dir = '$EXPORT'" "wgpeer.export_client_configs = on" \
	"wgpeer.reconcile_interval = '1s'"
cluster_psql >/dev/null <<'SQL'
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('wgexp', '127.0.0.1:51999', '10.79.0.1/24',
	address6 => 'fd00:79::1/64', listen_port => 51999, persistent_keepalive => 25);
-- the private key kept outside the database
SELECT name FROM wgpeer.wg_add_interface('wgext', '127.0.0.1:51998', '10.80.0.1/24',
	public_key => 'hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=',
	preshared_keys => false);
SELECT user_id FROM wgpeer.wg_create_peer('alice', interface => 'wgexp',
	config_name => 'alice');
SELECT user_id FROM wgpeer.wg_create_peer('bob', interface => 'wgexp',
	config_name => 'bob');
SELECT user_id FROM wgpeer.wg_create_peer('bob2', interface => 'wgexp',
	config_name => 'bob');
SELECT user_id FROM wgpeer.wg_create_peer('carol', interface => 'wgext',
	config_name => 'carol');
SQL

# The files of the live peers, as the README says they are named.
client_files() {
	q -c "SELECT p.interface || '/' || p.config_name ||
	          CASE WHEN row_number() OVER (PARTITION BY p.interface, p.config_name
	                                       ORDER BY p.created_at, p.peer_id) > 1
	               THEN '@' || left(replace(p.peer_id::text, '-', ''), 8) ELSE '' END
	          || '.conf|' || p.peer_id
	   FROM wgpeer.peer p WHERE status IN ('creating', 'active')
	     AND p.private_key_forgotten_at IS NULL
	   ORDER BY 1"
}
# server_has IFNAME N: IFNAME.conf exists and says it has N peers
server_has() { grep -qs "^# wgpeer: interface $1, $2 peers;" "$EXPORT/$1.conf"; }
# conf_count MINDEPTH N: N .conf files at depth MINDEPTH or deeper
# (wait_until runs it again each time; a $(...) in its arguments would be
# read once)
conf_count() { test "$(find "$EXPORT" -mindepth "$1" -name '*.conf' 2>/dev/null | wc -l)" -eq "$2"; }

check "wgexp.conf with 3 peers" wait_until 60 server_has wgexp 3
check "wgext.conf with 1 peer" wait_until 60 server_has wgext 1
check "2 server and 4 client files" wait_until 60 conf_count 1 6
same "export dir mode" 700 "$(stat -c %a "$EXPORT")"
same "client subdir mode" 700 "$(stat -c %a "$EXPORT/wgexp")"

# check_clients: every live peer's file holds exactly wg_peer_config()
check_clients() {
	local files
	files=$(client_files)
	same "client files present" \
		"$(echo "$files" | cut -d'|' -f1)" \
		"$(cd "$EXPORT" && find . -mindepth 2 -name '*.conf' | sed 's|^\./||' | sort)"
	while IFS='|' read -r rel peer_id; do
		[ -n "$rel" ] || continue
		same "client file $rel" "$(q -c "SELECT wgpeer.wg_peer_config('$peer_id')")" \
			"$(cat "$EXPORT/$rel")"
	done <<<"$files"
}

# check_server IFNAME: load the file with wg setconf into wireguard-go and
# compare `wg show dump` with the database
check_server() {
	local ifname=$1 want got conf
	conf=$EXPORT/$ifname.conf
	ip netns add "$NS"
	ip netns exec "$NS" wireguard-go "$DEV" >/dev/null 2>&1
	if grep -q '^PrivateKey' "$conf"; then
		ip netns exec "$NS" wg setconf "$DEV" "$conf"
	else
		# the documented restore when the key is kept elsewhere
		ip netns exec "$NS" wg setconf "$DEV" <(
			printf '[Interface]\nPrivateKey = %s\n' "$(wg genkey)"
			cat "$conf")
	fi
	got=$(ip netns exec "$NS" wg show "$DEV" dump)
	ip netns exec "$NS" ip link del "$DEV"
	ip netns del "$NS"
	want=$(q -c "SELECT listen_port FROM wgpeer.interface WHERE name = '$ifname'")
	same "$ifname listen port" "$want" "$(echo "$got" | sed -n 1p | cut -f3)"
	want=$(q -c "SELECT coalesce(private_key, '(other)') FROM wgpeer.interface WHERE name = '$ifname'")
	if [ "$want" != "(other)" ]; then
		same "$ifname private key" "$want" "$(echo "$got" | sed -n 1p | cut -f1)"
	fi
	want=$(q -c "SELECT p.public_key || E'\t' || coalesce(p.preshared_key, '(none)') ||
	                 E'\t(none)\t' || host(p.address) || '/32' ||
	                 coalesce(',' || host(p.address6) || '/128', '') ||
	                 E'\t0\t0\t0\t' || coalesce(i.persistent_keepalive::text, 'off')
	          FROM wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface
	          WHERE p.interface = '$ifname' AND p.status IN ('creating', 'active')
	          ORDER BY 1")
	same "$ifname peers as wg shows them" "$want" "$(echo "$got" | sed 1d | sort)"
}

check_clients
check_server wgexp
check_server wgext
check "no-key comment in wgext.conf" grep -q '^# PrivateKey is kept outside' "$EXPORT/wgext.conf"
none "files not of mode 0600" find "$EXPORT" -type f ! -perm 0600
none "files not owned by the server's user" find "$EXPORT" ! -user "$WGPEER_USER"

# Idle: passes run every second (reconcile_interval = 1s) but rewrite nothing.
snapshot() { find "$EXPORT" -type f -printf '%p %i %T@\n' | sort; }
before=$(snapshot)
sleep 3
same "an idle worker rewrites nothing" "$before" "$(snapshot)"

# Revoke: the client file goes, the server file loses the peer.
bob=$(q -c "SELECT peer_id FROM wgpeer.peer WHERE user_id = 'bob'")
q -c "SELECT status FROM wgpeer.wg_revoke_peer('$bob')" >/dev/null
check "wgexp.conf with 2 peers after a revoke" wait_until 60 server_has wgexp 2
# no bob@*.conf is left, and bob.conf exists
bob_renamed() { ! compgen -G "$EXPORT/wgexp/bob@*.conf" >/dev/null && test -f "$EXPORT/wgexp/bob.conf"; }
check "bob@ file renamed to bob.conf" wait_until 60 bob_renamed
check_clients
check_server wgexp

# Expiry: the worker expires the peer on time and its files go.
q -c "UPDATE wgpeer.peer SET expires_at = now() + interval '1 second' WHERE user_id = 'alice'" >/dev/null
check "alice.conf removed on expiry" wait_until 60 test ! -e "$EXPORT/wgexp/alice.conf"
check "wgexp.conf with 1 peer after an expiry" wait_until 60 server_has wgexp 1
check_clients

# A config link redeemed with forget_private_key: the client file goes
# (the server keeps no copy of the key, on disk either) while the peer
# stays in the server file; revoked, it leaves that too.
q -c "SELECT user_id FROM wgpeer.wg_create_peer('erin', interface => 'wgexp', config_name => 'erin')" >/dev/null
erin=$(q -c "SELECT peer_id FROM wgpeer.peer WHERE user_id = 'erin'")
check "erin.conf written" wait_until 60 test -f "$EXPORT/wgexp/erin.conf"
token=$(q -c "SELECT wgpeer.wg_config_link('$erin')")
q -c "SELECT count(*) FROM wgpeer.wg_redeem_config_link('$token', forget_private_key => true)" >/dev/null
check "erin.conf removed once the server forgot its key" \
	wait_until 60 test ! -e "$EXPORT/wgexp/erin.conf"
check "wgexp.conf keeps erin" server_has wgexp 2
check_clients
q -c "SELECT status FROM wgpeer.wg_revoke_peer('$erin')" >/dev/null
check "wgexp.conf without erin after a revoke" wait_until 60 server_has wgexp 1

# An unwritable directory: a WARNING with a hint, the worker lives on, and
# the file appears once the directory is writable again.
chmod 0500 "$EXPORT/wgexp"
q -c "SELECT user_id FROM wgpeer.wg_create_peer('dave', interface => 'wgexp', config_name => 'dave')" >/dev/null
check "a WARNING for the unwritable directory" wait_until 60 \
	grep -q 'WARNING:  wgpeer could not export the config files of interface "wgexp": could not write' "$TMP/pg/server.log"
# a HINT within three lines of that WARNING
warning_has_hint() { grep -A3 'wgpeer could not export the config files' "$TMP/pg/server.log" | grep -q 'HINT:'; }
check "the WARNING has a hint" warning_has_hint
same "the worker is still running" 1 \
	"$(q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'wgpeer apply worker'")"
chmod 0700 "$EXPORT/wgexp"
check "dave.conf after the directory became writable" wait_until 60 test -f "$EXPORT/wgexp/dave.conf"
check_clients

# A restarted worker, which remembers nothing, removes the file of a peer
# revoked while it was down and stale temporary files, and leaves files
# that are not its own alone.
dave=$(q -c "SELECT peer_id FROM wgpeer.peer WHERE user_id = 'dave'")
for f in wgexp/.dave.conf.tmp.AbCdEf .wgexp.conf.tmp.AbCdEf other.conf notes.txt; do
	echo stale >"$EXPORT/$f"
done
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
   WHERE backend_type = 'wgpeer apply worker'" >/dev/null
q -c "SELECT status FROM wgpeer.wg_revoke_peer('$dave')" >/dev/null
check "dave.conf removed by the restarted worker" wait_until 60 test ! -e "$EXPORT/wgexp/dave.conf"
check "wgexp.conf without dave" wait_until 60 server_has wgexp 1
none "stale temporary files" find "$EXPORT" -name '.*.tmp.*'
same "foreign files kept" "notes.txt other.conf" \
	"$(cd "$EXPORT" && echo $(ls notes.txt other.conf))"
rm "$EXPORT/notes.txt" "$EXPORT/other.conf"
check_clients

# Turning client configs off removes them; the server files stay.
cluster_psql -c "ALTER SYSTEM SET wgpeer.export_client_configs = off" -c "SELECT pg_reload_conf()" >/dev/null
check "client files removed when export_client_configs is off" wait_until 60 conf_count 2 0
check "server files kept" test -f "$EXPORT/wgexp.conf" -a -f "$EXPORT/wgext.conf"

# An unregistered interface's file goes; the other stays.
q -c "SELECT wgpeer.wg_remove_interface('wgext', force => true)" >/dev/null
check "wgext.conf removed with its interface" wait_until 60 test ! -e "$EXPORT/wgext.conf"
check "wgexp.conf kept" test -f "$EXPORT/wgexp.conf"
none "temporary files left" find "$EXPORT" -name '.*.tmp.*'
none "errors in the server log" grep 'ERROR' "$TMP/pg/server.log"

# The kill test of the atomic writer (it prints its own counts).
cc -O2 -Wall -Wextra -Werror -Wno-unused-parameter -I"$ROOT/src" -I"$ROOT/src/core" \
	-o "$TMP/atomic_kill" "$ROOT/test/atomic_kill.c" "$ROOT/src/core/atomic_file.c"
mkdir "$TMP/kill"
check "wg_atomic_write() under SIGKILL: every version read is complete" \
	"$TMP/atomic_kill" "$TMP/kill" "${ATOMIC_KILL_ROUNDS:-300}"

tap_summary export_test
