#!/bin/bash
# Metrics with a real WireGuard client, natively on wireguard-go, scraped
# the way an operator would: Debian's prometheus-sql-exporter serving the
# shipped contrib/prometheus-sql-exporter/wgpeer.yml as the read-only role
# wgpeer_monitor, Debian's Prometheus scraping it every second on
# loopback.  Run as root after `make install`:
#   bash test/metrics_test.sh
#
#	1. a client with a quota pings through the tunnel, other users' peers
#	   come and go;
#	2. wg_metrics() as the monitoring role passes `promtool check
#	   metrics`, per interface and user, and with wgpeer.metrics_per_peer
#	   on with prometheus_wireguard_exporter's per-peer series too; its
#	   figures are the database's; the role reads nothing else;
#	3. every PromQL expression of contrib/grafana/wgpeer.json, evaluated
#	   by Prometheus' HTTP API (127.0.0.1), returns data (a number, not
#	   NaN), the exporter's queries never fail.
# Polls with bounds, never fixed sleeps.  Prints "N passed, N failed" and
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

E2E_NAME=mx
DEV=wgmx0						# wgpeer's interface, run by wireguard-go
CDEV=wgmxc0						# the client's interface
E2E_NET=192.168.233
. test/e2e.sh
ping_server() { cli ping -c 1 -W 1 10.89.0.1 >/dev/null 2>&1; }
# q as the monitoring role
mq() { runuser -u "$WGPEER_USER" -- "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
	-h "$CLUSTER_DIR" -U wgpeer_monitor -d postgres "$@"; }
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
EXPORTER_PID= PROMETHEUS_PID=
e2e_cleanup_extra() {
	[ -z "$PROMETHEUS_PID" ] || kill "$PROMETHEUS_PID" 2>/dev/null || true
	[ -z "$EXPORTER_PID" ] || kill "$EXPORTER_PID" 2>/dev/null || true
	[ -z "$PROMETHEUS_PID" ] || wait "$PROMETHEUS_PID" 2>/dev/null || true
	[ -z "$EXPORTER_PID" ] || wait "$EXPORTER_PID" 2>/dev/null || true
}
for tool in promtool prometheus prometheus-sql-exporter; do
	command -v "$tool" >/dev/null || {
		echo "$tool is missing: bash test/install-deps.sh installs it" >&2
		exit 1
	}
done

e2e_start
ip -n "$NS_S" addr add 10.89.0.1/24 dev "$DEV"
ip -n "$NS_S" link set "$DEV" up
cluster_start "$TMP/pg" "wgpeer.database = 'postgres'" "wgpeer.stats_interval = 1s"
q >/dev/null <<SQL
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('$DEV', '$E2E_NET.1:51820',
	'10.89.0.1/24', allowed_ips => '10.89.0.0/24', backend => 'uapi');
-- the monitoring role of docs/metrics.md
CREATE ROLE wgpeer_monitor LOGIN;
GRANT USAGE ON SCHEMA wgpeer TO wgpeer_monitor;
GRANT EXECUTE ON FUNCTION wgpeer.wg_metrics(), wgpeer.wg_metrics_server(),
	wgpeer.wg_metrics_interfaces(), wgpeer.wg_metrics_peer_counts(),
	wgpeer.wg_metrics_apply_latency(), wgpeer.wg_metrics_node_lag(),
	wgpeer.wg_metrics_users(), wgpeer.wg_metrics_quotas(),
	wgpeer.wg_metrics_peers() TO wgpeer_monitor;
SQL

echo "== 1. a client with a quota, and other users (${SECONDS} s)"
PEER=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('alice@example.com', interface => '$DEV')")
q -c "SELECT quota_bytes FROM wgpeer.wg_set_peer_quota('$PEER', 1000000000, 'month')" >/dev/null
KEY=$(q -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$PEER'")
(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$PEER')" >"$TMP/client.conf")
check "the peer reaches $DEV" wait_until 30 on_server "$KEY"
wg_client_up "$CDEV" "$NS_C" "$TMP/client.conf" 10.89.0.0/24
check "ping 10.89.0.1 through the tunnel" wait_until 30 ping_server
cli ping -q -c 20 -i 0.05 -s 1000 -W 1 10.89.0.1 >/dev/null 2>&1 || true
for u in bob carol carol; do
	q -c "SELECT 1 FROM wgpeer.wg_create_peer('$u@example.com', interface => '$DEV')" >/dev/null
done
check "every peer is active" wait_until 30 sql_true \
	"SELECT count(*) = 4 FROM wgpeer.peer WHERE status = 'active'"
check "the traffic is sampled" wait_until 30 sql_true \
	"SELECT rx_bytes > 20000 AND tx_bytes > 20000 FROM wgpeer.peer_traffic
	 WHERE peer_id = '$PEER'"

echo "== 2. wg_metrics() as the monitoring role (${SECONDS} s)"
mq -c "SELECT wgpeer.wg_metrics()" >"$TMP/metrics.prom"
check "promtool check metrics passes on wg_metrics()" promtool check metrics <"$TMP/metrics.prom"
has() { grep -qxF "$1" "$TMP/metrics.prom" || { echo "   (no line: $1)"; false; }; }
check "4 active peers on $DEV" has "wgpeer_peers{interface=\"$DEV\",node=\"\",status=\"active\"} 4"
check "carol has 2 devices" has "wgpeer_user_devices{interface=\"$DEV\",node=\"\",user_id=\"carol@example.com\"} 2"
check "alice is online" has "wgpeer_user_online_devices{interface=\"$DEV\",node=\"\",user_id=\"alice@example.com\"} 1"
check "the apply latency counts the 4 peers (at least)" grep -Eq \
	"^wgpeer_apply_latency_seconds_count\\{interface=\"$DEV\",node=\"\"\\} ([4-9]|[1-9][0-9]+)$" "$TMP/metrics.prom"
check "its +Inf bucket equals its count" test \
	"$(sed -n "s/^wgpeer_apply_latency_seconds_bucket{interface=\"$DEV\",node=\"\",le=\"+Inf\"} //p" "$TMP/metrics.prom")" = \
	"$(sed -n "s/^wgpeer_apply_latency_seconds_count{interface=\"$DEV\",node=\"\"} //p" "$TMP/metrics.prom")"
check "its buckets never decrease, le ascending" bash -c "grep '^wgpeer_apply_latency_seconds_bucket{interface=\"$DEV\"' '$TMP/metrics.prom' |
	sed 's/.* //' | sort -n -c"
RX=$(q -c "SELECT rx_bytes FROM wgpeer.peer_traffic WHERE peer_id = '$PEER'")
check "alice's received bytes are those of peer_traffic, or a later sample's" \
	test "$(sed -n "s/^wgpeer_user_received_bytes_total{interface=\"$DEV\",node=\"\",user_id=\"alice@example.com\"} //p" \
		"$TMP/metrics.prom")" -ge "$RX"
check "alice's quota is there" has "wgpeer_user_quota_bytes{interface=\"$DEV\",node=\"\",user_id=\"alice@example.com\"} 1000000000"
check "no per-peer series by default" bash -c "! grep -q '^wireguard_' '$TMP/metrics.prom'"
mq -c "SET wgpeer.metrics_per_peer = on" -c "SELECT wgpeer.wg_metrics()" >"$TMP/peers.prom"
check "promtool check metrics passes with wgpeer.metrics_per_peer on" promtool check metrics <"$TMP/peers.prom"
check "alice's peer has prometheus_wireguard_exporter's handshake series" grep -Eq \
	"^wireguard_latest_handshake_seconds\\{interface=\"$DEV\",public_key=\"$(printf %s "$KEY" | sed 's/[+/]/\\&/g')\",allowed_ips=\"10\\.89\\.0\\.[0-9]+/32\",friendly_name=\"[^\"]+\",user_id=\"alice@example.com\"\\} [1-9]" \
	"$TMP/peers.prom"
check "and its sent and received bytes" test "$(grep -c "^wireguard_\(sent\|received\)_bytes_total{.*public_key=\"$KEY\"" "$TMP/peers.prom")" = 2
denied() { ! mq -c "$1" 2>"$TMP/denied" && grep -q "permission denied for $2" "$TMP/denied"; }
check "the monitoring role reads no peer" denied "SELECT count(*) FROM wgpeer.peer" "table peer"
check "nor the event log" denied "SELECT * FROM wgpeer.wg_events(0, 1)" "function wg_events"

echo "== 3. prometheus-sql-exporter and Prometheus (${SECONDS} s)"
EXPORTER_PORT=$(free_port)
sed -e "s|interval: '30s'|interval: '1s'|" \
	-e "s|postgres://wgpeer_monitor@/vpn?host=/var/run/postgresql|postgres://wgpeer_monitor@/postgres?host=$CLUSTER_DIR|" \
	contrib/prometheus-sql-exporter/wgpeer.yml >"$TMP/exporter.yml"
check "the shipped exporter config was adapted (connection and interval)" \
	grep -q "host=$CLUSTER_DIR" "$TMP/exporter.yml"
CONFIG=$TMP/exporter.yml LOGLEVEL=WARN prometheus-sql-exporter \
	-web.listen-address "127.0.0.1:$EXPORTER_PORT" >"$TMP/exporter.log" 2>&1 &
EXPORTER_PID=$!
PROM_PORT=$(free_port)
cat >"$TMP/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
- job_name: wgpeer
  static_configs:
  - targets: ['127.0.0.1:$EXPORTER_PORT']
YML
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom" \
	--web.listen-address="127.0.0.1:$PROM_PORT" >"$TMP/prometheus.log" 2>&1 &
PROMETHEUS_PID=$!
# promql [--within SECONDS] EXPR...: evaluate each EXPR (an instant query
# through Prometheus' HTTP API) until it returns at least one sample whose
# value is a number (not NaN), all within SECONDS (default: once each);
# print "   ok<TAB>EXPR" or "   fail<TAB>EXPR<TAB>why" per EXPR, and be true when
# all passed.  The dashboard's variables $node and $interface stand for
# every value.  One process for all, polling every half second.  The lines
# are indented, like the suites' notes.
promql() {
	python3 - "$PROM_PORT" "$@" <<'PY'
import json, math, sys, time, urllib.parse, urllib.request
port, args = sys.argv[1], sys.argv[2:]
within = 0
if args[:1] == ['--within']:
    within, args = float(args[1]), args[2:]
def answer(expr):
    q = expr.replace('$node', '.*').replace('$interface', '.*')
    url = 'http://127.0.0.1:%s/api/v1/query?%s' % (port, urllib.parse.urlencode({'query': q}))
    try:
        r = json.load(urllib.request.urlopen(url, timeout=10))
    except Exception as e:
        return str(e)
    if r.get('status') != 'success':
        return '%s: %s' % (r.get('errorType'), r.get('error'))
    vals = [float(s['value'][1]) for s in r['data']['result']]
    if not vals:
        return 'no data'
    if all(math.isnan(v) for v in vals):
        return 'NaN only'
    return None
deadline = time.monotonic() + within
why = {e: 'not asked' for e in args}
while True:
    for e in [e for e in args if why[e] is not None]:
        why[e] = answer(e)
    if all(w is None for w in why.values()) or time.monotonic() >= deadline:
        break
    time.sleep(0.5)
for e in args:
    print('   ok\t%s' % e if why[e] is None else '   fail\t%s\t%s' % (e, why[e]))
sys.exit(0 if all(w is None for w in why.values()) else 1)
PY
}
check "Prometheus scrapes the exporter" promql --within 90 'up{job="wgpeer"} == 1'
check "the exporter has run every query at least twice" promql --within 60 \
	'count_over_time(sql_wgpeer_server{col="events_total"}[5m]) >= 2'
echo "   (two scrapes by ${SECONDS} s)"
# activity between scrapes, for the rates: peers come and go, traffic
for u in dave erin; do
	q -c "SELECT 1 FROM wgpeer.wg_create_peer('$u@example.com', interface => '$DEV')" >/dev/null
done
q -c "SELECT wgpeer.wg_revoke_peer(peer_id) FROM wgpeer.peer WHERE user_id = 'dave@example.com'" >/dev/null
cli ping -q -c 20 -i 0.05 -s 1000 -W 1 10.89.0.1 >/dev/null 2>&1 || true
check "the new peers are applied" wait_until 30 sql_true \
	"SELECT count(*) = 0 FROM wgpeer.queue"
python3 -c '
import json, sys
for p in json.load(open(sys.argv[1]))["panels"]:
    for t in p["targets"]:
        print(p["title"] + "\t" + t["expr"])' contrib/grafana/wgpeer.json >"$TMP/exprs"
echo "   (activity done by ${SECONDS} s)"
check "the dashboard has PromQL expressions" test "$(wc -l <"$TMP/exprs")" -ge 15
mapfile -t EXPRS < <(cut -f 2 "$TMP/exprs")
promql --within 60 "${EXPRS[@]}" >"$TMP/answers" || true
# one result per expression, in the dashboard's order
while IFS=$'\t' read -r title expr <&3 && IFS=$'\t' read -r verdict answered why <&4; do
	if [ "${verdict// /}" = ok ] && [ "$answered" = "$expr" ]; then
		ok "dashboard \"$title\": $expr"
	else
		not_ok "dashboard \"$title\": $expr (${why:-no answer})"
	fi
done 3<"$TMP/exprs" 4<"$TMP/answers"
same "every expression has its answer" "$(wc -l <"$TMP/exprs")" "$(wc -l <"$TMP/answers")"
echo "   (every expression evaluated by ${SECONDS} s)"
check "no query of the exporter failed" promql \
	'count(sql_exporter_last_scrape_failed{sql_job="wgpeer"}) >= 7 and max(sql_exporter_last_scrape_failed{sql_job="wgpeer"}) == 0'
none "the exporter logged no warning or error" grep -E '"level":"(warn|error)"' "$TMP/exporter.log"

tap_summary
