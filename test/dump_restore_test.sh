#!/bin/bash
# Backups that restore: pg_dump in every format onto a fresh cluster, the
# restored database serving the same WireGuard interface, and pg_upgrade.
# Natively on wireguard-go, a real client in its own network namespace.
# Run as root after `make install`:  bash test/dump_restore_test.sh
#
#	1. cluster A serves wgdr0 with a client pinging through it; peers in
#	   every state (active with a quota, a config link and routes,
#	   suspended, revoked, and one still 'creating' on an interface with
#	   no device), traffic, usage and events;
#	2. pg_dump of A in every format (-Fc, plain, -Fd, -Ft), of the whole
#	   database and of -n wgpeer, each restored into a new database of a
#	   fresh cluster B: every registered table and the event sequence
#	   equal A's, no event logged twice, nothing queued but the add of the
#	   peer still 'creating';
#	3. A stops and B serves the -Fc restore: the same server key and
#	   peers on wgdr0, its first reconcile changes nothing, the client
#	   pings on without being touched;
#	4. a new peer on B gets an address no restored peer holds and event
#	   ids past A's;
#	5. pg_upgrade (--link) of A onto a fresh initdb keeps every row.
# Polls with bounds, never fixed sleeps.  Prints "N passed, N failed" and
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

E2E_NAME=dr
DEV=wgdr0						# wgpeer's interface, run by wireguard-go
CDEV=wgdrc0						# the client's interface
NODEV=wgdr9						# an interface with no device
E2E_NET=192.168.247
. test/e2e.sh
A=$TMP/a						# the clusters: the original,
B=$TMP/b						# the fresh one restores go to,
C=$TMP/c						# and pg_upgrade's target
# the registered tables, in the order their digests are printed
TABLES="interface pool free_address node peer quota config_link peer_watch
	peer_traffic device_peer peer_usage event"

# a command of test/cluster.sh against cluster DIR, database DB
in_cluster() {
	local dir=$1 db=$2
	shift 2
	CLUSTER_DIR=$dir CLUSTER_DB=$db "$@"
}
qa() { in_cluster "$A" vpn q "$@"; }
qb() { local db=$1; shift; in_cluster "$B" "$db" q "$@"; }
# run a PostgreSQL program as the clusters' user
as_pg() { runuser -u "$WGPEER_USER" -- "$@"; }
running() { [ -f "$1/data/postmaster.pid" ]; }
e2e_cleanup_extra() {
	for d in "$A" "$B" "$C"; do
		! running "$d" || in_cluster "$d" postgres cluster_ctl -m immediate -w stop \
			>/dev/null 2>&1 || true
	done
	[ -z "${PINGER:-}" ] || kill "$PINGER" 2>/dev/null || true
}
ping_server() { cli ping -c 1 -W 1 10.94.0.1 >/dev/null 2>&1; }

# digest DIR DB: per registered table its row count and the md5 of its
# rows in a stable order, then the event sequence's state
digest() {
	local t
	{
		for t in $TABLES; do
			echo "SELECT '$t', count(*), md5(coalesce(string_agg(x::text, '|'
				ORDER BY x::text), '')) FROM wgpeer.$t x;"
		done
		echo "SELECT 'event_id_seq', last_value, is_called FROM wgpeer.event_id_seq;"
	} | in_cluster "$1" "$2" q
}

e2e_start
ip -n "$NS_S" addr add 10.94.0.1/24 dev "$DEV"
ip -n "$NS_S" link set "$DEV" up

echo "== [${SECONDS}s] 1. cluster A serves $DEV"
cluster_start "$A" "wgpeer.database = 'vpn'" "wgpeer.stats_interval = 1s" "wal_level = logical"
in_cluster "$A" postgres q -c "CREATE DATABASE vpn" >/dev/null
qa >/dev/null <<SQL
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('$DEV', '$E2E_NET.1:51820',
	'10.94.0.1/24', allowed_ips => '10.94.0.0/24', backend => 'uapi');
SELECT name FROM wgpeer.wg_add_interface('$NODEV', '192.0.2.9:51820',
	'10.93.0.1/24', backend => 'uapi');
SELECT wgpeer.wg_add_node('fra1');
SQL
new_peer() { qa -c "SELECT peer_id FROM wgpeer.wg_create_peer('$1', interface => '${2:-$DEV}')"; }
ALICE=$(new_peer alice)
for u in bob carol dave erin; do new_peer $u >/dev/null; done
FRANK=$(new_peer frank "$NODEV")
qa >/dev/null <<SQL
SELECT wgpeer.wg_set_peer_quota('$ALICE', 1000000000, 'month');
SELECT wgpeer.wg_config_link('$ALICE');
SELECT wgpeer.wg_set_peer_routes(peer_id, '{10.194.2.0/24}') FROM wgpeer.peer
	WHERE user_id = 'bob';
SELECT wgpeer.wg_suspend_peer(peer_id, 'unpaid') FROM wgpeer.peer WHERE user_id = 'carol';
SELECT wgpeer.wg_revoke_peer(peer_id) FROM wgpeer.peer WHERE user_id = 'dave';
SELECT wgpeer.wg_set_peer_quota(peer_id, 5000000, 'day') FROM wgpeer.peer
	WHERE user_id = 'erin';
SQL
ALICE_KEY=$(qa -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$ALICE'")
(umask 077 && qa -c "SELECT wgpeer.wg_peer_config('$ALICE')" >"$TMP/client.conf")
check "alice reaches $DEV" wait_until 30 on_server "$ALICE_KEY"
wg_client_up "$CDEV" "$NS_C" "$TMP/client.conf" 10.94.0.0/24
check "the client pings 10.94.0.1 through the tunnel" wait_until 30 ping_server
cli ping -q -c 500 -i 0.01 -s 1000 -W 1 10.94.0.1 >/dev/null 2>&1 || true
sql_true_a() { in_cluster "$A" vpn sql_true "$1"; }
check "its traffic, usage and connection are recorded" wait_until 20 sql_true_a \
	"SELECT (SELECT rx_bytes > 400000 FROM wgpeer.peer_traffic WHERE peer_id = '$ALICE')
	    AND (SELECT sum(rx_bytes) > 400000 FROM wgpeer.peer_usage WHERE peer_id = '$ALICE')
	    AND EXISTS (SELECT FROM wgpeer.event WHERE peer_id = '$ALICE' AND kind = 'connected')"
check "every peer of $DEV applied, frank waits for $NODEV" wait_until 20 sql_true_a \
	"SELECT string_agg(user_id || ':' || status, ' ' ORDER BY user_id) =
	        'alice:active bob:active carol:suspended dave:revoked erin:active frank:creating'
	 FROM wgpeer.peer"
check "nothing waits for $DEV" wait_until 20 sql_true_a \
	"SELECT NOT EXISTS (SELECT FROM wgpeer.queue WHERE interface = '$DEV')"
# no more samples: A's rows stay as they are while it is dumped
qa -c "ALTER SYSTEM SET wgpeer.stats_interval = 0" -c "SELECT pg_reload_conf()" >/dev/null
wait_until 10 sql_true_a "SELECT current_setting('wgpeer.stats_interval') = '0'"
SERVER_KEY=$(qa -c "SELECT public_key FROM wgpeer.interface WHERE name = '$DEV'")
same "$DEV has A's server key" "$SERVER_KEY" "$(srv wg show "$DEV" public-key)"
DIGEST=$(digest "$A" vpn)
MAX_EVENT=$(qa -c "SELECT max(event_id) FROM wgpeer.event")
HELD=$(qa -c "SELECT string_agg(host(address), ' ') FROM wgpeer.peer WHERE released_at IS NULL")
ALICE_RX=$(qa -c "SELECT rx_bytes FROM wgpeer.peer_traffic WHERE peer_id = '$ALICE'")

echo "== [${SECONDS}s] 2. every pg_dump format, restored onto a fresh cluster"
cluster_start "$B" "wgpeer.database = 'postgres'" "wgpeer.stats_interval = 1s" "wal_level = logical"
DUMPS=$TMP/dumps
mkdir -p "$DUMPS"
chown "$WGPEER_USER" "$DUMPS"
DUMP="$PG_BIN/pg_dump -h $A -U postgres -d vpn"
restore() {				# restore NAME FORMAT SCOPE
	local db=$1 fmt=$2 scope=$3 f=$DUMPS/$1 rc=0
	# a dump of the schema alone holds its rows but not CREATE EXTENSION:
	# the extension is created first, then only the rows restored
	local data_only=${scope:+--data-only}
	[ "$fmt" != p ] || as_pg $DUMP $scope $data_only -Fp -f "$f" || return 1
	[ "$fmt" = p ] || as_pg $DUMP $scope -F"$fmt" -f "$f" || return 1
	in_cluster "$B" postgres q -c "CREATE DATABASE $db" >/dev/null
	[ -z "$scope" ] || qb "$db" -c "CREATE EXTENSION wgpeer" >/dev/null
	case $fmt in
		p) as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$B" -U postgres -d "$db" \
			-f "$f" >/dev/null || rc=$? ;;
		*) as_pg "$PG_BIN/pg_restore" --exit-on-error $data_only -h "$B" -U postgres \
			-d "$db" "$f" || rc=$? ;;
	esac
	return $rc
}
for fmt in c p d t; do
	for scope in "" "-n wgpeer"; do
		db=r_$fmt${scope:+_schema}
		what="pg_dump -F$fmt${scope:+ $scope}"
		check "$what restores without an error" restore "$db" "$fmt" "$scope"
		same "$what: every table's rows and the event sequence as A has them" \
			"$DIGEST" "$(digest "$B" "$db")"
		same "$what: no event twice" "0" "$(qb "$db" -c "SELECT count(*) FROM
			(SELECT peer_id, kind FROM wgpeer.event WHERE kind IN ('created', 'activated')
			 GROUP BY 1, 2 HAVING count(*) > 1) twice")"
		same "$what: queued only the add of the peer still creating" "add frank" \
			"$(qb "$db" -c "SELECT string_agg(q.op || ' ' || p.user_id, ', ')
				FROM wgpeer.queue q JOIN wgpeer.peer p USING (peer_id)")"
	done
done
check "the dumps hold the server's private key (a dump is a secret)" \
	grep -q "$(qa -c "SELECT private_key FROM wgpeer.interface WHERE name = '$DEV'")" \
	"$DUMPS/r_p"

echo "== [${SECONDS}s] 3. A stops, B serves the restored database"
# the client pings all along; what it lost is printed
ip netns exec "$NS_C" ping -i 0.1 -W 1 10.94.0.1 >"$TMP/ping.log" 2>&1 &
PINGER=$!
in_cluster "$A" vpn cluster_ctl -m fast -w stop >/dev/null
qb postgres -c "ALTER SYSTEM SET wgpeer.database = 'r_c'" >/dev/null
in_cluster "$B" postgres cluster_ctl -m fast -w stop >/dev/null
in_cluster "$B" postgres cluster_run
sql_true_b() { in_cluster "$B" r_c sql_true "$1"; }
check "B's worker reconciles $DEV" wait_until 30 sql_true_b \
	"SELECT reconciled_at IS NOT NULL FROM wgpeer.device WHERE interface = '$DEV'"
same "its first reconcile changed nothing on $DEV" "0 0 0 " \
	"$(qb r_c -c "SELECT added || ' ' || corrected || ' ' || removed || ' '
		|| coalesce(reconcile_error, '') FROM wgpeer.device WHERE interface = '$DEV'")"
same "$DEV keeps the server key" "$SERVER_KEY" "$(srv wg show "$DEV" public-key)"
same "$DEV has the peers the restored database wants" \
	"$(CLUSTER_DIR=$B CLUSTER_DB=r_c wanted_peers "$DEV")" "$(kernel_peers "$DEV")"
check "the client still pings, unchanged" wait_until 10 ping_server
# A's last sample is the base of B's first: it adds what the client sent
# since (the pings of the switch, a few kB), not the whole counter again
check "B's samples count alice's traffic once (A's total: $ALICE_RX bytes)" \
	wait_until 10 sql_true_b "SELECT rx_bytes > $ALICE_RX AND rx_bytes < $ALICE_RX * 1.5
		FROM wgpeer.peer_traffic WHERE peer_id = '$ALICE' AND sampled_at > now() - interval '5s'"
echo "   (alice's total on B: $(qb r_c -c "SELECT rx_bytes FROM wgpeer.peer_traffic
	WHERE peer_id = '$ALICE'") bytes)"
kill -INT "$PINGER" 2>/dev/null || true
wait "$PINGER" 2>/dev/null || true
PINGER=
echo "   ($(grep -o '[0-9]* packets transmitted, [0-9]* received' "$TMP/ping.log" || echo 'no ping summary') across the switch)"
check "the restored queue's add reached frank's interface queue only" sql_true_b \
	"SELECT count(*) = 1 FROM wgpeer.queue WHERE interface = '$NODEV'"

echo "== [${SECONDS}s] 4. new rows never collide with restored ones"
read -r GRACE_ADDR GRACE < <(qb r_c -c "SELECT host(address), peer_id
	FROM wgpeer.wg_create_peer('grace', interface => '$DEV')") || true
check "grace's address $GRACE_ADDR is none a restored peer holds ($HELD)" \
	bash -c "! printf '%s\n' $HELD | grep -qx '$GRACE_ADDR'"
check "its event ids come after A's last ($MAX_EVENT)" sql_true_b \
	"SELECT min(event_id) > $MAX_EVENT FROM wgpeer.event WHERE peer_id = '$GRACE'"
check "grace reaches $DEV" wait_until 20 on_server \
	"$(qb r_c -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$GRACE'")"
check "alice still pings" wait_until 10 ping_server

echo "== [${SECONDS}s] 5. pg_upgrade keeps every row"
cluster_init "$C" "wgpeer.database = 'postgres'" "wal_level = logical"
mkdir -p "$TMP/upgrade"
chown "$WGPEER_USER" "$TMP/upgrade"
# as a user would run it: no worker runs under pg_upgrade (it would hold
# a connection to a database pg_upgrade re-creates); C's serves a database
# without wgpeer afterwards, as B has the interface now
upgraded=0
as_pg bash -c "cd '$TMP/upgrade' &&
	'$PG_BIN/pg_upgrade' -b '$PG_BIN' -B '$PG_BIN' -d '$A/data' -D '$C/data' --link \
		-U postgres -p $((50000 + $$ % 1000)) -P $((51000 + $$ % 1000))" \
	>"$TMP/upgrade.log" 2>&1 || upgraded=$?
check "pg_upgrade --link from A onto a fresh initdb" test "$upgraded" = 0
[ "$upgraded" = 0 ] || tail -n 30 "$TMP/upgrade.log" "$C"/data/pg_upgrade_output.d/*/log/*
in_cluster "$C" postgres cluster_run
same "after pg_upgrade every table's rows and the event sequence as A had them" \
	"$DIGEST" "$(digest "$C" vpn)"

tap_summary
