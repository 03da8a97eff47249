-- Metrics: wg_metrics() (Prometheus exposition text) and the row-shaped
-- wg_metrics_*() functions: families, labels and their escaping, the
-- per-peer setting, who may read them, and that only the apply worker's
-- deletions from the queue count as applies.  Other suites' interfaces
-- are in this database too: the checks look at the lines of 'wgmetrics'.
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql
-- The lines of wg_metrics() for interface wgmetrics, and every HELP and
-- TYPE, with times and ages masked (those not 0).
CREATE FUNCTION pg_temp.lines() RETURNS SETOF text
LANGUAGE sql AS $$
	SELECT regexp_replace(l, '^((wgpeer_(queue_oldest_pending_|last_[a-z_]*)|wireguard_latest_handshake_)seconds\{[^}]*\}) ([1-9]|0\.).*$', '\1 <t>')
	FROM regexp_split_to_table(wgpeer.wg_metrics(), E'\n') WITH ORDINALITY AS x(l, n)
	WHERE l LIKE '# %' OR l LIKE '%interface="wgmetrics"%'
	ORDER BY n
$$;

SELECT name FROM wg_add_interface('wgmetrics', '198.51.100.9:51820', '172.30.18.1/24',
	listen_port => 51890);
SELECT count(*) FROM wg_create_peer('m-ann', interface => 'wgmetrics');
SELECT count(*) FROM wg_create_peer('m-ann', interface => 'wgmetrics');
SELECT count(*) FROM wg_create_peer(E'm-"odd"\\user', interface => 'wgmetrics');
SELECT count(*) FROM wg_create_peer('m-gone', interface => 'wgmetrics');
-- ann's peers as the worker leaves them: applied, one online; gone revoked
DELETE FROM queue WHERE interface = 'wgmetrics' AND peer_id IN
	(SELECT peer_id FROM peer WHERE user_id = 'm-ann');
UPDATE peer SET status = 'active' WHERE user_id = 'm-ann';
SELECT count(wg_revoke_peer(peer_id)) FROM peer WHERE user_id = 'm-gone';
INSERT INTO peer_traffic (peer_id, rx_bytes, tx_bytes, latest_handshake, sampled_at)
SELECT peer_id, 1000 * row_number() OVER (ORDER BY address), 5000,
	   CASE WHEN row_number() OVER (ORDER BY address) = 1 THEN now() END, now()
FROM peer WHERE user_id = 'm-ann';
SELECT quota_bytes FROM wg_set_peer_quota(
	(SELECT peer_id FROM peer WHERE user_id = 'm-ann' ORDER BY address LIMIT 1), 1000000, 'month');
UPDATE peer_traffic SET rx_bytes = rx_bytes + 2500
WHERE peer_id = (SELECT peer_id FROM peer WHERE user_id = 'm-ann' ORDER BY address LIMIT 1);

-- The exposition text: every family once, with HELP and TYPE, the
-- interface's series with its labels; per user: ann's traffic (of both
-- peers), devices, online devices, quota and what it used since the quota
-- was set; the quoted user escaped; gone (revoked) left out.
SELECT * FROM pg_temp.lines();

-- Only the apply worker's deletions count as applies: the one above
-- (this session's) recorded nothing.
SELECT count(*) FROM apply_latency WHERE interface = 'wgmetrics';

-- The rows beside it, for a SQL exporter.
SELECT interface, node, online_peers, backlog, quarantined, apply_failures,
	   last_apply_success_seconds, last_reconcile_seconds,
	   apply_latency_count, apply_latency_sum_seconds,
	   oldest_pending_seconds > 0 AS waiting
FROM wg_metrics_interfaces() WHERE interface = 'wgmetrics';
SELECT * FROM wg_metrics_peer_counts() WHERE interface = 'wgmetrics';
SELECT le, count FROM wg_metrics_apply_latency() WHERE interface = 'wgmetrics';
SELECT * FROM wg_metrics_node_lag() WHERE interface = 'wgmetrics';
SELECT * FROM wg_metrics_users() WHERE interface = 'wgmetrics';
SELECT * FROM wg_metrics_quotas() WHERE interface = 'wgmetrics';
SELECT worker_up, events_total = (SELECT max(event_id) FROM event)
FROM wg_metrics_server();

-- Per peer only when wgpeer.metrics_per_peer asks: the live peers, with
-- prometheus_wireguard_exporter's names and labels.
SELECT count(*) FROM wg_metrics_peers() WHERE interface = 'wgmetrics';
SET wgpeer.metrics_per_peer = on;
SELECT m.user_id, m.allowed_ips,
	   friendly_name = p.config_name AS config_name, received_bytes, sent_bytes,
	   latest_handshake_seconds > 0 AS handshake
FROM wg_metrics_peers() m JOIN peer p USING (public_key)
WHERE m.interface = 'wgmetrics' ORDER BY m.user_id, received_bytes;
SELECT regexp_replace(regexp_replace(l, 'public_key="[^"]*"', 'public_key="<key>"'),
					  'friendly_name="[^"]*"', 'friendly_name="<name>"')
FROM pg_temp.lines() AS l WHERE l ~ '^(# [A-Z]+ )?wireguard_'
ORDER BY 1;
RESET wgpeer.metrics_per_peer;
SELECT pg_temp.try($$SET wgpeer.metrics_per_peer = 'sometimes'$$);

-- Label values escaped as the exposition format wants.
SELECT wg_metrics_label(E'a\\b"c\nd');

-- A monitoring role: EXECUTE on the metric functions, nothing else.
CREATE ROLE metrics_reader;
GRANT USAGE ON SCHEMA wgpeer TO metrics_reader;
GRANT EXECUTE ON FUNCTION wg_metrics(), wg_metrics_users() TO metrics_reader;
SET ROLE metrics_reader;
SELECT wg_metrics() LIKE '%# TYPE wgpeer_peers gauge%';
SELECT count(*) FROM wg_metrics_users() WHERE interface = 'wgmetrics';
SELECT pg_temp.try($$SELECT * FROM wgpeer.wg_metrics_quotas()$$);
SELECT pg_temp.try($$SELECT * FROM wgpeer.peer$$);
SELECT pg_temp.try($$SELECT * FROM wgpeer.apply_latency$$);
RESET ROLE;
-- and PUBLIC nothing
SELECT count(*) FROM information_schema.routine_privileges
WHERE grantee = 'PUBLIC' AND routine_schema = 'wgpeer' AND routine_name LIKE 'wg_metrics%';
DROP OWNED BY metrics_reader;
DROP ROLE metrics_reader;
