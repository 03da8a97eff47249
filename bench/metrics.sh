#!/bin/bash
# What a scrape of wgpeer's metrics costs on PEERS peers (each its own
# user, all with traffic, half online, QUOTAS with a quota), in a
# throwaway cluster, medians of ROUNDS rounds measured interleaved in one
# session:
#	wg_metrics()                      per interface and per user (default)
#	the row-shaped wg_metrics_*()     what prometheus-sql-exporter runs
#	wg_metrics(), per peer on         wgpeer.metrics_per_peer = on
# against the baseline, the per-peer query of the postgres_exporter recipe
# 0.2 documented (peer_status, one row per live peer).
# Run as root after `make install`:  bash bench/metrics.sh
# (PEERS, QUOTAS, ROUNDS to size).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. test/cluster.sh

PEERS=${PEERS:-10000}
QUOTAS=${QUOTAS:-1000}
ROUNDS=${ROUNDS:-15}
TMP=$(mktemp -d /tmp/wgpeer-bench-metrics.XXXXXX)
trap 'cluster_stop; rm -rf "$TMP"' EXIT
# The interface exists only in the database: the worker serves another one.
cluster_start "$TMP/pg" "wgpeer.stats_interval = 0" "autovacuum = off" \
	"wgpeer.database = 'template1'"
q() { cluster_psql -At "$@"; }

q >/dev/null <<EOF
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('wgbm', 'vpn.example.com:51821', '10.82.0.1/16');
SELECT count(wgpeer.wg_create_peer('user' || g || '@example.com', interface => 'wgbm'))
FROM generate_series(1, $PEERS) g;
UPDATE wgpeer.peer SET status = 'active';
INSERT INTO wgpeer.peer_traffic (peer_id, rx_bytes, tx_bytes, latest_handshake, sampled_at)
SELECT peer_id, (random() * 1e9)::bigint, (random() * 1e9)::bigint,
	   CASE WHEN random() < 0.5 THEN now() ELSE now() - interval '1 hour' END, now()
FROM wgpeer.peer;
SELECT count(wgpeer.wg_set_peer_quota(peer_id, 100000000000))
FROM (SELECT peer_id FROM wgpeer.peer LIMIT $QUOTAS) p;
VACUUM ANALYZE;
EOF

echo "$PEERS peers, $QUOTAS quotas, $ROUNDS rounds; load $(load)"
q <<EOF
CREATE TEMP TABLE t (what text, ms float8);
DO \$\$
DECLARE
	s timestamptz;
	n bigint;
BEGIN
	FOR r IN 1 .. $ROUNDS LOOP
		s := clock_timestamp();
		PERFORM length(wgpeer.wg_metrics());
		INSERT INTO t VALUES ('wg_metrics()', 1000 * extract(epoch FROM clock_timestamp() - s));
		s := clock_timestamp();
		SELECT (SELECT sum(length(x::text)) FROM wgpeer.wg_metrics_server() x)
			 + (SELECT sum(length(x::text)) FROM wgpeer.wg_metrics_interfaces() x)
			 + (SELECT sum(length(x::text)) FROM wgpeer.wg_metrics_peer_counts() x)
			 + (SELECT sum(length(x::text)) FROM wgpeer.wg_metrics_apply_latency() x)
			 + (SELECT sum(length(x::text)) FROM wgpeer.wg_metrics_node_lag() x)
			 + (SELECT sum(length(x::text)) FROM wgpeer.wg_metrics_users() x)
			 + (SELECT sum(length(x::text)) FROM wgpeer.wg_metrics_quotas() x) INTO n;
		INSERT INTO t VALUES ('row functions', 1000 * extract(epoch FROM clock_timestamp() - s));
		PERFORM set_config('wgpeer.metrics_per_peer', 'on', true);
		s := clock_timestamp();
		PERFORM length(wgpeer.wg_metrics());
		INSERT INTO t VALUES ('wg_metrics() per peer', 1000 * extract(epoch FROM clock_timestamp() - s));
		PERFORM set_config('wgpeer.metrics_per_peer', 'off', true);
		s := clock_timestamp();
		-- every row and column, as the exporter fetches them
		SELECT sum(length(x::text)) FROM (
			SELECT interface, user_id, peer_id::text, online::int AS online,
				   rx_bytes, tx_bytes,
				   coalesce(extract(epoch FROM latest_handshake), 0) AS latest_handshake_seconds
			FROM wgpeer.peer_status WHERE status IN ('creating', 'active')) x INTO n;
		INSERT INTO t VALUES ('0.2 recipe (baseline)', 1000 * extract(epoch FROM clock_timestamp() - s));
	END LOOP;
END
\$\$;
WITH m AS (SELECT what, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms
		   FROM t GROUP BY what)
SELECT format('%-24s median %8s ms  (%s x the baseline)', m.what, round(m.ms::numeric, 1),
			  round((m.ms / b.ms)::numeric, 2))
FROM m, m b WHERE b.what = '0.2 recipe (baseline)'
ORDER BY m.what;
SELECT format('wg_metrics(): %s lines, %s bytes; per peer on: %s lines',
			  (SELECT count(*) FROM regexp_split_to_table(wgpeer.wg_metrics(), E'\n')),
			  length(wgpeer.wg_metrics()),
			  (SELECT count(*) FROM regexp_split_to_table(
				  (SELECT wgpeer.wg_metrics() FROM (SELECT set_config('wgpeer.metrics_per_peer', 'on', false)) s),
				  E'\n')));
EOF
