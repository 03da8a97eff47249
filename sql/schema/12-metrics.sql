------------------------------------------------------------------------------
-- Metrics
--
-- What Prometheus scrapes (docs/metrics.md lists every metric): wg_metrics()
-- returns the exposition text, and the row-shaped wg_metrics_*() functions
-- beside it return the same figures as rows, one function per label set,
-- for a SQL exporter (contrib/prometheus-sql-exporter/wgpeer.yml).  Per
-- interface and per user by default; one series per peer only when
-- wgpeer.metrics_per_peer is on (cardinality).  All are SECURITY DEFINER,
-- so a monitoring role needs EXECUTE on them and nothing else.  The one
-- figure nothing else records is the apply latency: apply_latency below.
------------------------------------------------------------------------------

-- The upper bounds, in seconds, of the apply latency histogram's buckets
-- (the last bucket, +Inf, is the count).
CREATE FUNCTION wg_apply_latency_bounds() RETURNS float8[]
LANGUAGE sql IMMUTABLE
AS $$
	SELECT '{0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60}'::float8[]
$$;
COMMENT ON FUNCTION wg_apply_latency_bounds() IS
	'Upper bounds in seconds of the buckets of wgpeer_apply_latency_seconds';

-- How long changes waited between being queued and reaching the device,
-- per interface, as a cumulative histogram: bucket_counts[i] counts the
-- changes applied within wg_apply_latency_bounds()[i] seconds.  Written by
-- the apply worker's statement that deletes the rows it applied
-- (record_success() in src/worker/apply.c: one insert per interface and
-- batch); changes dropped unapplied with their interface or peer are not
-- counted.  The worker's own records,
-- like worker_state, so neither dumped nor replicated (a node keeps its
-- own).
CREATE TABLE apply_latency (
	interface text NOT NULL REFERENCES interface ON DELETE CASCADE,
	node text NOT NULL
		DEFAULT coalesce(current_setting('wgpeer.node', true), '')
		CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$'),
	bucket_counts bigint[] NOT NULL,
	count bigint NOT NULL,
	sum_seconds float8 NOT NULL,
	PRIMARY KEY (interface, node)
);
COMMENT ON TABLE apply_latency IS
	'Changes applied per interface and how long they waited, as a histogram';

-- Per interface (and the node serving it, '' for this server): what
-- waits, what the device refused, the state of the last apply and
-- reconcile, the apply latency's count and sum, peers online.  Times are
-- Unix seconds, 0 for never.
CREATE FUNCTION wg_metrics_interfaces()
RETURNS TABLE (interface text, node text, online_peers bigint, backlog bigint,
			   oldest_pending_seconds float8, quarantined bigint,
			   apply_failures bigint, last_apply_success_seconds float8,
			   last_reconcile_seconds float8, apply_latency_count bigint,
			   apply_latency_sum_seconds float8)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT i.name, i.node,
		   (SELECT count(*) FROM wgpeer.peer p
			JOIN wgpeer.peer_traffic t ON t.peer_id = p.peer_id AND t.node = p.node
			WHERE p.interface = i.name AND p.status IN ('creating', 'active')
			  AND t.latest_handshake > now() - interval '3 minutes'),
		   coalesce(q.backlog, 0),
		   coalesce(extract(epoch FROM now() - q.oldest)::float8, 0),
		   coalesce(q.quarantined, 0),
		   coalesce(s.failures, 0),
		   coalesce(extract(epoch FROM s.last_success_at)::float8, 0),
		   coalesce(extract(epoch FROM d.reconciled_at)::float8, 0),
		   coalesce(l.count, 0), coalesce(l.sum_seconds, 0)
	FROM wgpeer.interface i
	LEFT JOIN (SELECT q.interface, count(*) AS backlog, min(q.queued_at) AS oldest,
					  count(*) FILTER (WHERE q.quarantined_until IS NOT NULL)
						  AS quarantined
			   FROM wgpeer.queue q GROUP BY q.interface) q ON q.interface = i.name
	LEFT JOIN wgpeer.worker_state s ON s.interface = i.name AND s.node = i.node
	LEFT JOIN wgpeer.device d ON d.interface = i.name AND d.node = i.node
	LEFT JOIN wgpeer.apply_latency l ON l.interface = i.name AND l.node = i.node
	ORDER BY i.name COLLATE "C"
$$;
COMMENT ON FUNCTION wg_metrics_interfaces() IS
	'Metrics per interface as rows: backlog, quarantined, last apply and reconcile, apply latency';

-- Per interface and peer status, the number of peers (every status, 0
-- included, so that a panel never loses a line).
CREATE FUNCTION wg_metrics_peer_counts()
RETURNS TABLE (interface text, node text, status text, peers bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT i.name, i.node, s.status, coalesce(c.peers, 0)
	FROM wgpeer.interface i
	CROSS JOIN unnest('{creating,active,suspended,revoked,expired}'::text[])
		WITH ORDINALITY AS s(status, pos)
	LEFT JOIN (SELECT p.interface, p.status, count(*) AS peers
			   FROM wgpeer.peer p GROUP BY p.interface, p.status) c
		ON c.interface = i.name AND c.status = s.status
	ORDER BY i.name COLLATE "C", s.pos
$$;
COMMENT ON FUNCTION wg_metrics_peer_counts() IS
	'Metrics as rows: peers per interface and status';

-- The apply latency histogram's cumulative buckets per interface, the
-- last one le = '+Inf'.
CREATE FUNCTION wg_metrics_apply_latency()
RETURNS TABLE (interface text, node text, le text, count bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT i.name, i.node, b.le, coalesce(b.count, 0)
	FROM wgpeer.interface i
	LEFT JOIN wgpeer.apply_latency l ON l.interface = i.name AND l.node = i.node
	CROSS JOIN LATERAL (
		SELECT x.bound::text AS le, l.bucket_counts[x.i] AS count, x.i
		FROM unnest(wgpeer.wg_apply_latency_bounds()) WITH ORDINALITY AS x(bound, i)
		UNION ALL
		SELECT '+Inf', l.count, 1000) b
	ORDER BY i.name COLLATE "C", b.i
$$;
COMMENT ON FUNCTION wg_metrics_apply_latency() IS
	'Metrics as rows: the apply latency histogram''s cumulative buckets per interface';

-- Per interface: how far behind the replication to the node serving it
-- is (the primary's WAL its slot has not confirmed, and its replay lag, 0
-- when idle); 0 for an interface this server serves itself (nothing to
-- replicate).  An interface whose node has no slot yet (or a standby,
-- which has no WAL position of its own) has no row.
CREATE FUNCTION wg_metrics_node_lag()
RETURNS TABLE (interface text, node text, lag_bytes numeric, lag_seconds float8)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT i.name, i.node, 0, 0
	FROM wgpeer.interface i WHERE i.node = ''
	UNION ALL
	SELECT i.name, i.node,
		   pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn),
		   coalesce(extract(epoch FROM r.replay_lag)::float8, 0)
	FROM wgpeer.interface i
	JOIN pg_replication_slots s ON s.slot_name = 'wgpeer_node_' || i.node
	LEFT JOIN pg_stat_replication r ON r.application_name = 'wgpeer_node_' || i.node
	WHERE i.node <> '' AND NOT pg_is_in_recovery()
	  AND s.confirmed_flush_lsn IS NOT NULL
	ORDER BY 1
$$;
COMMENT ON FUNCTION wg_metrics_node_lag() IS
	'Metrics as rows: replication lag to the node serving each interface (0 for this server''s own)';

-- Per user and interface, for the users with a live or suspended peer
-- there: traffic of all their peers on it (so that the totals only grow),
-- their live peers and how many of those are online.
CREATE FUNCTION wg_metrics_users()
RETURNS TABLE (interface text, node text, user_id text, devices bigint,
			   online_devices bigint, received_bytes numeric, sent_bytes numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT p.interface, min(p.node), p.user_id,
		   count(*) FILTER (WHERE p.status IN ('creating', 'active')),
		   count(*) FILTER (WHERE p.status IN ('creating', 'active')
							AND t.latest_handshake > now() - interval '3 minutes'),
		   coalesce(sum(t.rx_bytes), 0), coalesce(sum(t.tx_bytes), 0)
	FROM wgpeer.peer p
	LEFT JOIN wgpeer.peer_traffic t ON t.peer_id = p.peer_id AND t.node = p.node
	GROUP BY p.interface, p.user_id
	HAVING count(*) FILTER (WHERE p.status IN ('creating', 'active', 'suspended')) > 0
	ORDER BY p.interface COLLATE "C", p.user_id COLLATE "C"
$$;
COMMENT ON FUNCTION wg_metrics_users() IS
	'Metrics as rows: per user and interface, traffic, devices and devices online';

-- Per user and interface, for the users whose live or suspended peers
-- there have a quota: the bytes allowed and used in the current periods,
-- summed over those peers (as the quota counts them: wg_set_peer_quota).
CREATE FUNCTION wg_metrics_quotas()
RETURNS TABLE (interface text, node text, user_id text, quota_bytes numeric,
			   used_bytes numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT p.interface, min(p.node), p.user_id, sum(q.quota_bytes),
		   sum(greatest(wgpeer.wg_peer_total_bytes(p.peer_id) - q.base_bytes, 0))
	FROM wgpeer.peer p
	JOIN wgpeer.quota q ON q.peer_id = p.peer_id
	WHERE p.status IN ('creating', 'active', 'suspended')
	GROUP BY p.interface, p.user_id
	ORDER BY p.interface COLLATE "C", p.user_id COLLATE "C"
$$;
COMMENT ON FUNCTION wg_metrics_quotas() IS
	'Metrics as rows: per user and interface, quota and usage in the current period';

-- One row per live peer, only when wgpeer.metrics_per_peer is on, with
-- the labels of prometheus_wireguard_exporter (interface, public_key,
-- allowed_ips as "a/32,b/128", friendly_name: the config name).  The
-- handshake is Unix seconds, 0 for none, as that exporter has it.
CREATE FUNCTION wg_metrics_peers()
RETURNS TABLE (interface text, node text, user_id text, public_key text,
			   allowed_ips text, friendly_name text, received_bytes bigint,
			   sent_bytes bigint, latest_handshake_seconds float8)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT p.interface, p.node, p.user_id, p.public_key,
		   array_to_string(ARRAY[host(p.address) || '/32',
								 host(p.address6) || '/128']
						   || coalesce(p.routes::text[], '{}'), ','),
		   p.config_name, coalesce(t.rx_bytes, 0), coalesce(t.tx_bytes, 0),
		   coalesce(extract(epoch FROM t.latest_handshake)::float8, 0)
	FROM wgpeer.peer p
	LEFT JOIN wgpeer.peer_traffic t ON t.peer_id = p.peer_id AND t.node = p.node
	WHERE p.status IN ('creating', 'active')
	  AND coalesce(current_setting('wgpeer.metrics_per_peer', true), 'off')
		  IN ('on', 'true', 'yes', '1')
	ORDER BY p.interface COLLATE "C", p.public_key COLLATE "C"
$$;
COMMENT ON FUNCTION wg_metrics_peers() IS
	'Metrics as rows: per live peer traffic and handshake (only with wgpeer.metrics_per_peer on)';

-- The whole database: the apply worker serving it (1 or 0) and the
-- events logged so far (the last event id: after a promotion or a restore
-- onto another cluster it jumps a billion on, which a rate() shows once).
CREATE FUNCTION wg_metrics_server()
RETURNS TABLE (worker_up integer, events_total bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT (SELECT count(*) FROM pg_stat_activity a
			WHERE a.backend_type = 'wgpeer apply worker'
			  AND a.datname = current_database())::integer,
		   coalesce((SELECT max(e.event_id) FROM wgpeer.event e), 0)
$$;
COMMENT ON FUNCTION wg_metrics_server() IS
	'Metrics as a row: whether the apply worker runs, and the events logged so far';

-- A Prometheus label value, escaped.
CREATE FUNCTION wg_metrics_label(value text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
	SELECT replace(replace(replace(value, E'\\', E'\\\\'), '"', E'\\"'),
				   E'\n', E'\\n')
$$;
COMMENT ON FUNCTION wg_metrics_label(text) IS
	'A Prometheus label value with backslash, quote and newline escaped';

-- One family of the exposition text: its HELP and TYPE lines, then its
-- samples (each ending in a newline); nothing when it has no sample.
CREATE FUNCTION wg_metrics_family(name text, type text, help text, samples text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
	SELECT CASE WHEN samples IS NULL OR samples = '' THEN ''
				ELSE format(E'# HELP %s %s\n# TYPE %s %s\n', name, help, name, type)
					 || samples END
$$;
COMMENT ON FUNCTION wg_metrics_family(text, text, text, text) IS
	'One family of Prometheus exposition text: HELP, TYPE and its samples';

-- Everything above as Prometheus exposition text (format 0.0.4), one
-- family after another, each with its HELP and TYPE; a family with no
-- sample is left out.  Each row-shaped function runs once, and one pass
-- over its rows writes all its families, in the function's order.  The
-- per-peer families use the names and labels of
-- prometheus_wireguard_exporter, so dashboards made for it work.
CREATE FUNCTION wg_metrics() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	WITH s AS (SELECT * FROM wgpeer.wg_metrics_server()),
	i AS (SELECT i.*, format('interface="%s",node="%s"', wgpeer.wg_metrics_label(i.interface),
							 wgpeer.wg_metrics_label(i.node)) AS l
		  FROM wgpeer.wg_metrics_interfaces() WITH ORDINALITY AS i),
	ifs AS (
		SELECT string_agg(format(E'wgpeer_online_peers{%s} %s\n', l, online_peers), '' ORDER BY ordinality) AS online,
			   string_agg(format(E'wgpeer_queue_backlog{%s} %s\n', l, backlog), '' ORDER BY ordinality) AS backlog,
			   string_agg(format(E'wgpeer_queue_oldest_pending_seconds{%s} %s\n', l, oldest_pending_seconds), '' ORDER BY ordinality) AS oldest,
			   string_agg(format(E'wgpeer_queue_quarantined{%s} %s\n', l, quarantined), '' ORDER BY ordinality) AS quarantined,
			   string_agg(format(E'wgpeer_apply_failures{%s} %s\n', l, apply_failures), '' ORDER BY ordinality) AS failures,
			   string_agg(format(E'wgpeer_last_apply_success_timestamp_seconds{%s} %s\n', l, last_apply_success_seconds), '' ORDER BY ordinality) AS success,
			   string_agg(format(E'wgpeer_last_reconcile_timestamp_seconds{%s} %s\n', l, last_reconcile_seconds), '' ORDER BY ordinality) AS reconcile
		FROM i),
	pc AS (
		SELECT string_agg(format(E'wgpeer_peers{interface="%s",node="%s",status="%s"} %s\n',
								 wgpeer.wg_metrics_label(c.interface), wgpeer.wg_metrics_label(c.node),
								 c.status, c.peers), '' ORDER BY c.ordinality) AS peers
		FROM wgpeer.wg_metrics_peer_counts() WITH ORDINALITY AS c),
	lat AS (
		SELECT string_agg(b.buckets
						  || format(E'wgpeer_apply_latency_seconds_sum{%s} %s\n', i.l, i.apply_latency_sum_seconds)
						  || format(E'wgpeer_apply_latency_seconds_count{%s} %s\n', i.l, i.apply_latency_count),
						  '' ORDER BY i.ordinality) AS latency
		FROM i JOIN (
			SELECT b.interface,
				   string_agg(format(E'wgpeer_apply_latency_seconds_bucket{interface="%s",node="%s",le="%s"} %s\n',
									 wgpeer.wg_metrics_label(b.interface), wgpeer.wg_metrics_label(b.node),
									 b.le, b.count), '' ORDER BY b.ordinality) AS buckets
			FROM wgpeer.wg_metrics_apply_latency() WITH ORDINALITY AS b
			GROUP BY b.interface) b ON b.interface = i.interface),
	lag AS (
		SELECT string_agg(format(E'wgpeer_node_lag_bytes{%s} %s\n', n.l, n.lag_bytes), '' ORDER BY n.ordinality) AS bytes,
			   string_agg(format(E'wgpeer_node_lag_seconds{%s} %s\n', n.l, n.lag_seconds), '' ORDER BY n.ordinality) AS seconds
		FROM (SELECT n.*, format('interface="%s",node="%s"', wgpeer.wg_metrics_label(n.interface),
								 wgpeer.wg_metrics_label(n.node)) AS l
			  FROM wgpeer.wg_metrics_node_lag() WITH ORDINALITY AS n) n),
	us AS (
		SELECT string_agg(format(E'wgpeer_user_devices{%s} %s\n', u.l, u.devices), '' ORDER BY u.ordinality) AS devices,
			   string_agg(format(E'wgpeer_user_online_devices{%s} %s\n', u.l, u.online_devices), '' ORDER BY u.ordinality) AS online,
			   string_agg(format(E'wgpeer_user_received_bytes_total{%s} %s\n', u.l, u.received_bytes), '' ORDER BY u.ordinality) AS received,
			   string_agg(format(E'wgpeer_user_sent_bytes_total{%s} %s\n', u.l, u.sent_bytes), '' ORDER BY u.ordinality) AS sent
		FROM (SELECT u.*, format('interface="%s",node="%s",user_id="%s"', wgpeer.wg_metrics_label(u.interface),
								 wgpeer.wg_metrics_label(u.node), wgpeer.wg_metrics_label(u.user_id)) AS l
			  FROM wgpeer.wg_metrics_users() WITH ORDINALITY AS u) u),
	qs AS (
		SELECT string_agg(format(E'wgpeer_user_quota_bytes{%s} %s\n', q.l, q.quota_bytes), '' ORDER BY q.ordinality) AS quota,
			   string_agg(format(E'wgpeer_user_quota_used_bytes{%s} %s\n', q.l, q.used_bytes), '' ORDER BY q.ordinality) AS used
		FROM (SELECT q.*, format('interface="%s",node="%s",user_id="%s"', wgpeer.wg_metrics_label(q.interface),
								 wgpeer.wg_metrics_label(q.node), wgpeer.wg_metrics_label(q.user_id)) AS l
			  FROM wgpeer.wg_metrics_quotas() WITH ORDINALITY AS q) q),
	ps AS (
		SELECT string_agg(format(E'wireguard_sent_bytes_total{%s} %s\n', p.l, p.sent_bytes), '' ORDER BY p.ordinality) AS sent,
			   string_agg(format(E'wireguard_received_bytes_total{%s} %s\n', p.l, p.received_bytes), '' ORDER BY p.ordinality) AS received,
			   string_agg(format(E'wireguard_latest_handshake_seconds{%s} %s\n', p.l, p.latest_handshake_seconds), '' ORDER BY p.ordinality) AS handshake
		FROM (SELECT p.*, format('interface="%s",public_key="%s",allowed_ips="%s",friendly_name="%s",user_id="%s"',
								 wgpeer.wg_metrics_label(p.interface), p.public_key, p.allowed_ips,
								 wgpeer.wg_metrics_label(p.friendly_name), wgpeer.wg_metrics_label(p.user_id)) AS l
			  FROM wgpeer.wg_metrics_peers() WITH ORDINALITY AS p) p)
	SELECT concat(
		wgpeer.wg_metrics_family('wgpeer_up', 'gauge', 'Whether the apply worker serving this database runs',
			format(E'wgpeer_up %s\n', s.worker_up)),
		wgpeer.wg_metrics_family('wgpeer_events_total', 'counter', 'Events logged so far (the last event id)',
			format(E'wgpeer_events_total %s\n', s.events_total)),
		wgpeer.wg_metrics_family('wgpeer_peers', 'gauge', 'Peers per interface and status', pc.peers),
		wgpeer.wg_metrics_family('wgpeer_online_peers', 'gauge', 'Live peers with a handshake in the last 3 minutes', ifs.online),
		wgpeer.wg_metrics_family('wgpeer_queue_backlog', 'gauge', 'Changes waiting to reach the interface', ifs.backlog),
		wgpeer.wg_metrics_family('wgpeer_queue_oldest_pending_seconds', 'gauge', 'Age of the oldest waiting change, 0 when none waits', ifs.oldest),
		wgpeer.wg_metrics_family('wgpeer_queue_quarantined', 'gauge', 'Changes the device refused, retried apart', ifs.quarantined),
		wgpeer.wg_metrics_family('wgpeer_apply_failures', 'gauge', 'Consecutive failed applies to the interface', ifs.failures),
		wgpeer.wg_metrics_family('wgpeer_last_apply_success_timestamp_seconds', 'gauge', 'When an apply to the interface last succeeded, 0 for never', ifs.success),
		wgpeer.wg_metrics_family('wgpeer_last_reconcile_timestamp_seconds', 'gauge', 'When the interface was last reconciled, 0 for never', ifs.reconcile),
		wgpeer.wg_metrics_family('wgpeer_apply_latency_seconds', 'histogram', 'Time from queueing a change to its apply to the interface', lat.latency),
		wgpeer.wg_metrics_family('wgpeer_node_lag_bytes', 'gauge', 'WAL the node serving the interface has not confirmed', lag.bytes),
		wgpeer.wg_metrics_family('wgpeer_node_lag_seconds', 'gauge', 'Replay lag of the node serving the interface', lag.seconds),
		wgpeer.wg_metrics_family('wgpeer_user_devices', 'gauge', 'A user''s live peers on the interface', us.devices),
		wgpeer.wg_metrics_family('wgpeer_user_online_devices', 'gauge', 'A user''s live peers with a handshake in the last 3 minutes', us.online),
		wgpeer.wg_metrics_family('wgpeer_user_received_bytes_total', 'counter', 'Bytes received from a user''s peers on the interface', us.received),
		wgpeer.wg_metrics_family('wgpeer_user_sent_bytes_total', 'counter', 'Bytes sent to a user''s peers on the interface', us.sent),
		wgpeer.wg_metrics_family('wgpeer_user_quota_bytes', 'gauge', 'Bytes a user''s peers with a quota may use in their current period', qs.quota),
		wgpeer.wg_metrics_family('wgpeer_user_quota_used_bytes', 'gauge', 'Bytes a user''s peers with a quota used in their current period', qs.used),
		wgpeer.wg_metrics_family('wireguard_sent_bytes_total', 'counter', 'Bytes sent to the peer', ps.sent),
		wgpeer.wg_metrics_family('wireguard_received_bytes_total', 'counter', 'Bytes received from the peer', ps.received),
		wgpeer.wg_metrics_family('wireguard_latest_handshake_seconds', 'gauge', 'Unix time of the last handshake with the peer, 0 for none', ps.handshake))
	FROM s, ifs, pc, lat, lag, us, qs, ps
$$;
COMMENT ON FUNCTION wg_metrics() IS
	'Prometheus exposition text: per interface, per user, and per peer with wgpeer.metrics_per_peer';
