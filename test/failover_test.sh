#!/bin/bash
# Physical standbys and failover, natively on wireguard-go: a primary and a
# streaming standby (pg_basebackup -R, real streaming replication) on this
# host, the primary's worker serving a wireguard-go interface in a network
# namespace, a real client in another.  Run as root after `make install`:
#   bash test/failover_test.sh
# Checks:
#	1. reconcile after the interface recovered: a peer created while the
#	   daemon was down (the interface backing off) is active within
#	   seconds of the daemon's return and last_error is cleared; a rotated
#	   key whose removal is still queued is removed by a reconcile, not
#	   reported as a peer wgpeer does not know;
#	2. on the hot standby: wg_events(), wg_show(), wg_reconcile() and write
#	   calls are refused with 25006, saying the server is a standby;
#	3. asynchronous replication with lost commits: the standby stopped, 20
#	   more peers created and applied on the primary (a client of one
#	   pings) and one revoked, the primary killed with kill -9, the standby
#	   promoted: its worker serves the same interface; the device equals
#	   the database, no lost peer is left on it (the client's ping fails),
#	   peers revoked before stay revoked, the one whose revocation was lost
#	   is put back with a warning naming it, new peers reuse the lost
#	   addresses, and every new event's id lies past the last id a
#	   consumer read from the old primary;
#	4. synchronous replication: a new standby of the promoted server with
#	   synchronous_standby_names = '*', peers created and revoked, kill -9,
#	   promotion: nothing lost (every peer row as it was), the device equals
#	   the database, new event ids past the consumer's.
# Polls with bounds, never fixed sleeps.  Prints "N passed, N failed" and
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

E2E_NAME=fo
DEV=wgfo0						# wgpeer's interface, run by wireguard-go
CDEV=wgfc0						# the client's interface
E2E_NET=192.168.237
. test/e2e.sh
ping_server() { cli ping -c 1 -W 1 10.87.0.1 >/dev/null 2>&1; }
no_ping() { ! cli ping -c 3 -i 0.3 -W 1 10.87.0.1 >/dev/null 2>&1; }

# on NAME COMMAND...: COMMAND (a cluster.sh function) against cluster NAME
on() {
	local name=$1
	shift
	CLUSTER_DIR=$TMP/$name "$@"
}
e2e_cleanup_extra() {
	local name
	for name in p s s2; do
		[ -f "$TMP/$name/data/postmaster.pid" ] &&
			on "$name" cluster_ctl -m immediate -w stop >/dev/null 2>&1 || true
	done
}
# device_is_database NAME: the interface holds exactly the live peers of
# cluster NAME's database
device_is_database() {
	[ "$(kernel_peers_of "$DEV")" = "$(CLUSTER_DIR=$TMP/$1 wanted_peers "$DEV")" ]
}
kernel_peers_of() { srv wg show "$1" dump | tail -n +2 |
	awk -F'\t' -v OFS='\t' '{ print $1, $2, $4, $8 }' | sort_allowed_ips | sort; }
# standby NAME FROM: a streaming standby NAME of cluster FROM, started
standby() {
	local dir=$TMP/$1
	mkdir -p "$dir"
	chown "$WGPEER_USER" "$dir"
	runuser -u "$WGPEER_USER" -- "$PG_BIN/pg_basebackup" -h "$TMP/$2" -U postgres \
		-D "$dir/data" -R -X stream -c fast
	echo "unix_socket_directories = '$dir'" >>"$dir/data/postgresql.conf"
	CLUSTER_DIR=$dir cluster_run
}
# caught_up STANDBY PRIMARY: the standby replayed all the primary wrote
caught_up() {
	local lsn
	lsn=$(on "$2" q -c "SELECT pg_current_wal_lsn()")
	on "$1" sql_true "SELECT pg_last_wal_replay_lsn() >= '$lsn'"
}
# crash NAME: kill -9 the postmaster of cluster NAME and wait until its
# processes are gone (a real crash: nothing is shut down)
crash() {
	local pid children c
	pid=$(head -1 "$TMP/$1/data/postmaster.pid")
	children=$(pgrep -P "$pid" || true)
	kill -9 "$pid"
	for c in $pid $children; do
		wait_until 30 sh -c "! kill -0 $c 2>/dev/null"
	done
}
# refused NAME SQL: SQL fails on cluster NAME with 25006 saying "standby"
refused() {
	local out
	out=$(on "$1" q -v VERBOSITY=verbose -c "$2" 2>&1) && return 1
	case $out in
		*"25006:"*standby*) return 0 ;;
		*) echo "   $out" >&2; return 1 ;;
	esac
}
# keys_on_device KEYS...: how many of KEYS the interface holds
keys_on_device() {
	local peers k n=0
	peers=$(srv wg show "$DEV" peers)
	for k in "$@"; do
		grep -qxF "$k" <<<"$peers" && n=$((n + 1))
	done
	echo "$n"
}
# create CLUSTER N NAME: N new peers on cluster CLUSTER, their ids, keys
# and addresses in $TMP/NAME.ids, .keys, .addresses
# (a statement each: several in one statement can collide on a reused
# address, a bug of the allocator reported apart)
create() {
	local i
	for i in $(seq "$2"); do
		echo "SELECT peer_id, public_key, host(address)
			FROM wgpeer.wg_create_peer('$3$i', interface => '$DEV');"
	done | on "$1" q >"$TMP/$3"
	cut -f1 "$TMP/$3" >"$TMP/$3.ids"
	cut -f2 "$TMP/$3" >"$TMP/$3.keys"
	cut -f3 "$TMP/$3" | sort >"$TMP/$3.addresses"
}
ids_sql() { sed "s/.*/'&'/" "$TMP/$1.ids" | paste -sd, -; }
# the last event id a consumer reading cluster NAME with wg_events() has
consumer_cursor() {
	on "$1" q -c "SELECT coalesce(max(event_id), 0) FROM wgpeer.wg_events(0, 10000)"
}

echo "== network, the interface, the primary"
e2e_start
srv ip addr add 10.87.0.1/24 dev "$DEV"
srv ip link set "$DEV" up
CLUSTER_DIR=$TMP/p
cluster_start "$TMP/p" "wgpeer.database = 'postgres'" "wal_level = replica" \
	"max_wal_senders = 4" "wal_keep_size = '64MB'"
q >/dev/null <<SQL
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('$DEV', '$E2E_NET.1:51820',
	'10.87.0.1/24', address6 => 'fd87::1/64', allowed_ips => '10.87.0.0/24',
	backend => 'uapi');
SQL
create p 10 kept
q -c "SELECT count(wgpeer.wg_revoke_peer(peer_id)) FROM wgpeer.peer
	WHERE peer_id IN ($(head -2 "$TMP/kept.ids" | sed "s/.*/'&'/" | paste -sd,))" >/dev/null
head -2 "$TMP/kept.keys" >"$TMP/revoked.keys"
check "the primary's worker puts its 8 live peers on $DEV" wait_until 30 device_is_database p

echo "== 1. reconcile after the interface recovered"
wg_dev_del "$DEV"
create p 1 late
check "with the daemon gone the apply fails (last_error set)" wait_until 30 sql_true \
	"SELECT last_error IS NOT NULL FROM wgpeer.interface_status WHERE interface = '$DEV'"
# a worker that failed for minutes waits up to wgpeer.retry_max (5 min)
q -c "UPDATE wgpeer.worker_state SET retry_at = now() + interval '5 minutes',
	failures = 9 WHERE interface = '$DEV'" >/dev/null
wg_dev_add "$DEV" "$NS_S"
srv ip addr add 10.87.0.1/24 dev "$DEV"
srv ip link set "$DEV" up
check "the daemon back: the reconcile puts the late peer on $DEV" \
	wait_until 10 device_is_database p
check "the late peer is active within seconds, not at the next retry" \
	wait_until 5 sql_true "SELECT status = 'active' FROM wgpeer.peer
		WHERE peer_id = '$(cat "$TMP/late.ids")'"
check "last_error is cleared once the interface recovered" wait_until 5 sql_true \
	"SELECT last_error IS NULL AND backlog = 0
	 FROM wgpeer.interface_status WHERE interface = '$DEV'"
q -c "UPDATE wgpeer.worker_state SET retry_at = now() + interval '5 minutes'
	WHERE interface = '$DEV'" >/dev/null
OLD_KEY=$(sed -n 3p "$TMP/kept.keys")
q -c "SELECT wgpeer.wg_rotate_peer_key('$(sed -n 3p "$TMP/kept.ids")')" >/dev/null
check "a rotated key's queued removal counts as known: removed, not foreign" sql_true \
	"SELECT error IS NULL AND removed = 1 AND added = 1 AND foreign_peers = 0
	 FROM wgpeer.wg_reconcile('$DEV')"
check "the old key is off $DEV" test "$(keys_on_device "$OLD_KEY")" = 0
check "no warning of peers wgpeer does not know" \
	sh -c "! grep -q 'peers wgpeer does not know' '$TMP/p/server.log'"
check "the queue drains at once afterwards" wait_until 5 sql_true \
	"SELECT backlog = 0 FROM wgpeer.interface_status WHERE interface = '$DEV'"

echo "== 2. a streaming standby refuses what only a primary can do"
standby s p
check "the standby replays the primary" wait_until 30 caught_up s p
check "wg_events() on the standby: 25006" refused s "SELECT * FROM wgpeer.wg_events(0)"
check "wg_show() on the standby: 25006, a standby" refused s "SELECT * FROM wgpeer.wg_show('$DEV')"
check "wg_reconcile() on the standby: 25006, a standby" refused s "SELECT * FROM wgpeer.wg_reconcile()"
check "wg_create_peer() on the standby: 25006, a standby" refused s \
	"SELECT * FROM wgpeer.wg_create_peer('x', interface => '$DEV')"
check "wg_revoke_peer() on the standby: 25006, a standby" refused s \
	"SELECT wgpeer.wg_revoke_peer('$(sed -n 4p "$TMP/kept.ids")')"
check "no worker runs on the standby" \
	sh -c "! grep -q 'apply worker started' '$TMP/s/server.log'"

echo "== 3. asynchronous replication: the last commits are lost"
EV_BEFORE=$(q -c "SELECT max(event_id) FROM wgpeer.event")
check "the standby has every commit so far" wait_until 30 caught_up s p
on s cluster_ctl -m fast -w stop >/dev/null
create p 20 lost
UNDONE=$(sed -n 4p "$TMP/kept.ids")	# a revocation the standby never gets
q -c "SELECT status FROM wgpeer.wg_revoke_peer('$UNDONE')" >/dev/null
(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$(head -1 "$TMP/lost.ids")')" >"$TMP/lost.conf")
check "the primary's worker applies the 20 peers the standby never gets" \
	wait_until 30 device_is_database p
wg_client_up "$CDEV" "$NS_C" "$TMP/lost.conf" 10.87.0.0/24
check "a lost peer's client pings through the tunnel" wait_until 30 ping_server
CURSOR=$(consumer_cursor p)
check "the lost commits took more event ids ($EV_BEFORE to $CURSOR) than a sequence caches (32)" \
	test $((CURSOR - EV_BEFORE)) -gt 32
crash p
on s cluster_run
on s cluster_ctl -w promote >/dev/null
CLUSTER_DIR=$TMP/s
check "the promoted server's worker starts" wait_until 30 \
	grep -q 'apply worker started' "$TMP/s/server.log"
check "device = database on the promoted server" wait_until 30 device_is_database s
check "no lost peer is left on $DEV" test "$(keys_on_device $(cat "$TMP/lost.keys"))" = 0
check "the lost peer's client is cut off" no_ping
check "peers revoked before stay revoked and off $DEV" sql_true \
	"SELECT count(*) = 2 FROM wgpeer.peer WHERE status = 'revoked'
	 AND public_key IN ($(sed "s/.*/'&'/" "$TMP/revoked.keys" | paste -sd,))"
check "... and off $DEV" test "$(keys_on_device $(cat "$TMP/revoked.keys"))" = 0
check "the log says why the peers were removed" \
	grep -q 'removed 20 peers the database does not know' "$TMP/s/server.log"
lost_revocation_named() {
	grep -q '1 active peers were missing from' "$TMP/s/server.log" &&
		grep -q "HINT:.*$UNDONE" "$TMP/s/server.log"
}
check "the peer whose revocation was lost is put back, named in a warning" \
	lost_revocation_named
create s 20 new
check "the new peers are applied: device = database" wait_until 30 device_is_database s
REUSED=$(comm -12 "$TMP/lost.addresses" "$TMP/new.addresses" | wc -l)
check "the new peers were handed the lost peers' addresses ($REUSED of 20)" \
	test "$REUSED" -ge 18
check "wg_reconcile: nothing unknown left, nothing to fix" sql_true \
	"SELECT error IS NULL AND added = 0 AND removed = 0 AND foreign_peers = 0
	 FROM wgpeer.wg_reconcile('$DEV')"
check "every new peer's event lies past the consumer's cursor $CURSOR" sql_true \
	"SELECT count(*) = 20 FROM wgpeer.wg_events($CURSOR, 10000)
	 WHERE kind = 'created' AND peer_id IN ($(ids_sql new))"
check "no event id at or below the cursor was issued again" sql_true \
	"SELECT min(event_id) > $CURSOR FROM wgpeer.event WHERE peer_id IN ($(ids_sql new))"

echo "== 4. synchronous replication: nothing is lost"
q -c "ALTER SYSTEM SET synchronous_standby_names = '*'" >/dev/null
q -c "SELECT pg_reload_conf()" >/dev/null
standby s2 s
check "the new standby is synchronous" wait_until 30 sql_true \
	"SELECT count(*) = 1 FROM pg_stat_replication WHERE sync_state = 'sync'"
create s 10 synced
q -c "SELECT count(wgpeer.wg_revoke_peer(peer_id)) FROM wgpeer.peer
	WHERE peer_id IN ($(head -3 "$TMP/new.ids" | sed "s/.*/'&'/" | paste -sd,))" >/dev/null
check "applied on the primary" wait_until 30 device_is_database s
ROWS_SQL="SELECT md5(string_agg(concat_ws('|', peer_id, status, public_key, address),
	',' ORDER BY peer_id)) FROM wgpeer.peer"
ROWS=$(q -c "$ROWS_SQL")
CURSOR=$(consumer_cursor s)
crash s
on s2 cluster_ctl -w promote >/dev/null
CLUSTER_DIR=$TMP/s2
check "the second promoted server's worker starts" wait_until 30 \
	grep -q 'apply worker started' "$TMP/s2/server.log"
# it has no standby of its own yet (a cluster manager does this)
q -c "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null
q -c "SELECT pg_reload_conf()" >/dev/null
same "every peer row is as the old primary committed it" "$ROWS" "$(q -c "$ROWS_SQL")"
check "device = database" wait_until 30 device_is_database s2
check "the revoked peers are off $DEV" \
	test "$(keys_on_device $(head -3 "$TMP/new.keys"))" = 0
check "nothing was stale: no peer removed as unknown" \
	sh -c "! grep -q 'removed [0-9]* peers the database does not know' '$TMP/s2/server.log'"
create s2 1 after
check "the next event lies past the consumer's cursor $CURSOR" sql_true \
	"SELECT count(*) = 1 FROM wgpeer.wg_events($CURSOR, 10000)
	 WHERE kind = 'created' AND peer_id IN ($(ids_sql after))"

tap_summary failover_test
