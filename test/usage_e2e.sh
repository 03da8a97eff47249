#!/bin/bash
# Usage and events with a real WireGuard client, natively on wireguard-go:
# the server interface in one network namespace, the client in another,
# joined by a veth pair.  Run as root after `make install`:
#   bash test/usage_e2e.sh
#
#	1. a client with a daily quota of 200 kB pings the server; a consumer
#	   LISTENing on wgpeer_events is woken with the id of the last event;
#	2. the client sends more than its quota: within a traffic sample and a
#	   second the quota suspends it (reason 'quota'), it leaves the
#	   interface and cannot ping; the hourly usage holds what it sent;
#	3. the worker is killed (kill -9) and comes back;
#	4. the quota period ends (moved back here): the peer comes back by
#	   itself, and the same client pings again;
#	5. a consumer that connects late reads, in pages, every event in
#	   order, each once, the same as the table holds; the client's events
#	   are the lifecycle it went through;
#	6. a worker task that fails (the watch pass, planted to raise) backs
#	   off alone: the same worker still applies a new peer at once.
# Polls with bounds, never fixed sleeps.  Prints "N passed, N failed" and
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

E2E_NAME=us
DEV=wgus0						# wgpeer's interface, run by wireguard-go
CDEV=wgusc0						# the client's interface
E2E_NET=192.168.249
. test/e2e.sh
ping_server() { cli ping -c 1 -W 1 10.95.0.1 >/dev/null 2>&1; }
no_ping() { ! cli ping -c 3 -i 0.3 -W 1 10.95.0.1 >/dev/null 2>&1; }
# this cluster's worker (other clusters may run on the machine)
worker_pid() { pgrep -P "$(head -n 1 "$CLUSTER_DIR/data/postmaster.pid")" -f "wgpeer apply worker"; }
status_is() {
	sql_true "SELECT status || '/' || coalesce(suspended_reason, '') = '$1'
		FROM wgpeer.peer WHERE peer_id = '$PEER'"
}
e2e_start
ip -n "$NS_S" addr add 10.95.0.1/24 dev "$DEV"
ip -n "$NS_S" link set "$DEV" up

cluster_start "$TMP/pg" "wgpeer.database = 'postgres'" "wgpeer.stats_interval = 1s" \
	"wgpeer.quota_warning = 50"
q >/dev/null <<SQL
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('$DEV', '192.168.249.1:51820',
	'10.95.0.1/24', allowed_ips => '10.95.0.0/24', backend => 'uapi');
SQL

echo "== 1. a client with a quota of 200 kB a day"
# a consumer woken by NOTIFY (it reads what happened from wg_events)
cluster_psql -At -c "LISTEN wgpeer_events" -c "SELECT pg_sleep(4)" \
	>"$TMP/listen.out" 2>&1 &
LISTENER=$!
wait_until 10 sql_true "SELECT count(*) = 1 FROM pg_stat_activity
	WHERE query = 'SELECT pg_sleep(4)'"
PEER=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('quota-user', interface => '$DEV')")
q -c "SELECT quota_bytes FROM wgpeer.wg_set_peer_quota('$PEER', 200000, 'day')" >/dev/null
KEY=$(q -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$PEER'")
(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$PEER')" >"$TMP/client.conf")
wait "$LISTENER" || true
check "the listener is woken with the id of the creation's last event" grep -q \
	"Asynchronous notification \"wgpeer_events\" with payload \"$(q -c "SELECT max(event_id)
		FROM wgpeer.event WHERE peer_id = '$PEER' AND kind = 'created'")\"" "$TMP/listen.out"
check "the peer reaches $DEV" wait_until 30 on_server "$KEY"
wg_client_up "$CDEV" "$NS_C" "$TMP/client.conf" 10.95.0.0/24
check "ping 10.95.0.1 through the tunnel" wait_until 30 ping_server
check "under its quota it stays active" sql_true \
	"SELECT status = 'active' FROM wgpeer.peer WHERE peer_id = '$PEER'"

echo "== 2. more than the quota: suspended"
# 200 pings of 1,200 bytes: about 250 kB each way
cli ping -q -c 200 -i 0.01 -s 1200 -W 1 10.95.0.1 >/dev/null 2>&1 || true
SENT=$(date +%s.%N)
check "suspended with reason quota" wait_until 15 status_is suspended/quota
LAG=$(q -c "SELECT round(extract(epoch FROM suspended_at) - $SENT, 2)
	FROM wgpeer.peer WHERE peer_id = '$PEER'")
echo "   (suspended ${LAG} s after the last ping ended; stats_interval 1 s)"
check "within a traffic sample and a second of the last ping (+1 s of slack)" \
	sql_true "SELECT $LAG < 3"
check "it leaves $DEV" wait_until 10 not_on_server "$KEY"
check "the client cannot ping" no_ping
check "the usage this period is over the quota" sql_true \
	"SELECT used_bytes >= 200000 AND quota_bytes = 200000 FROM wgpeer.wg_user_usage('quota-user')"
check "the hourly usage holds what it sent and received" sql_true \
	"SELECT sum(u.rx_bytes) = t.rx_bytes AND sum(u.tx_bytes) = t.tx_bytes
	        AND sum(u.rx_bytes + u.tx_bytes) > 200000
	 FROM wgpeer.peer_usage u JOIN wgpeer.peer_traffic t USING (peer_id)
	 WHERE u.peer_id = '$PEER' GROUP BY t.rx_bytes, t.tx_bytes"

check "cut off, it is disconnected" wait_until 10 sql_true \
	"SELECT count(*) = 1 FROM wgpeer.event WHERE peer_id = '$PEER' AND kind = 'disconnected'"

echo "== 3. the worker is killed and comes back"
OLD=$(worker_pid)
kill -9 "$OLD"
back() { p=$(worker_pid) && [ -n "$p" ] && [ "$p" != "$OLD" ]; }
check "the worker is back" wait_until 60 back
wait_until 60 sql_true "SELECT true" 2>/dev/null

echo "== 4. a new quota period brings it back"
q -c "UPDATE wgpeer.quota SET period_anchor = period_anchor - interval '1 day',
	period_start = period_start - interval '1 day', period_end = period_end - interval '1 day'
	WHERE peer_id = '$PEER'" >/dev/null
check "active again" wait_until 30 status_is active/
check "back on $DEV" wait_until 10 on_server "$KEY"
check "the same client pings again" wait_until 30 ping_server
check "connected again" wait_until 10 sql_true \
	"SELECT count(*) = 2 FROM wgpeer.event WHERE peer_id = '$PEER' AND kind = 'connected'"
check "the usage starts again from what is sent now" sql_true \
	"SELECT used_bytes < 200000 FROM wgpeer.wg_user_usage('quota-user')"

echo "== 5. a consumer that connects late reads every event"
# pages of 2, each after the last id read
: >"$TMP/read"
last=0
while :; do
	q -c "SELECT event_id, kind, coalesce(peer_id::text, '') FROM wgpeer.wg_events($last, 2)" >"$TMP/page"
	[ -s "$TMP/page" ] || break
	cat "$TMP/page" >>"$TMP/read"
	last=$(tail -n 1 "$TMP/page" | cut -f 1)
done
q -c "SELECT event_id, kind, coalesce(peer_id::text, '') FROM wgpeer.event ORDER BY event_id" >"$TMP/table"
check "the pages hold every event of the table, in order, each once" cmp -s "$TMP/read" "$TMP/table"
check "ids increase" bash -c "cut -f 1 '$TMP/read' | sort -n -c"
same "the client's events are its lifecycle" \
	"created activated connected quota_warning quota_reached suspended disconnected resumed activated connected" \
	"$(grep -F "$PEER" "$TMP/read" | cut -f 2 | tr '\n' ' ' | sed 's/ $//')"

echo "== 6. a failing task does not stop the others"
WORKER=$(worker_pid)
q -c "CREATE OR REPLACE FUNCTION wgpeer.wg_watch_peers() RETURNS void
	LANGUAGE plpgsql AS \$\$ BEGIN RAISE EXCEPTION 'planted failure'; END \$\$" >/dev/null
watch_failed() { grep -q "watching peers failed: planted failure" "$CLUSTER_DIR/server.log"; }
check "the watch pass fails, with a warning" wait_until 15 watch_failed
NEW_KEY=$(q -c "SELECT public_key FROM wgpeer.wg_create_peer('after-the-failure', interface => '$DEV')")
check "a new peer still reaches $DEV" wait_until 10 on_server "$NEW_KEY"
check "applied by the same worker, which never restarted" test "$(worker_pid)" = "$WORKER"

tap_summary
