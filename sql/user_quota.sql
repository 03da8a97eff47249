-- Pooled quotas: all of a user's peers draw from one allowance (quota per
-- period plus top-ups), each interface's bytes weighted by its
-- consumption_multiplier; thresholds warn once per period, the allowance
-- used up suspends every live peer of the user (reason quota), a top-up, a
-- reset or a new period resumes them; the ledger explains the balance.
-- Traffic is written into peer_usage as the worker's samples would, and
-- the watch pass is called by hand.
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql

SELECT name FROM wg_add_interface('wgq1', '198.51.100.51:51851', '10.251.0.1/24',
                                  listen_port => 51851);
SELECT name FROM wg_add_interface('wgq2', '198.51.100.52:51852', '10.252.0.1/24',
                                  listen_port => 51852);
-- bytes on wgq2 count double
UPDATE interface SET consumption_multiplier = 2 WHERE name = 'wgq2';
SELECT pg_temp.try($$UPDATE interface SET consumption_multiplier = 0 WHERE name = 'wgq2'$$);
CREATE TEMP TABLE pool_peers AS
	SELECT 'p1' AS name, peer_id FROM wg_create_peer('pool', interface => 'wgq1')
	UNION ALL
	SELECT 'p2', peer_id FROM wg_create_peer('pool', interface => 'wgq2');
SELECT peer_id AS p1 FROM pool_peers WHERE name = 'p1' \gset
SELECT peer_id AS p2 FROM pool_peers WHERE name = 'p2' \gset
-- traffic of a peer this hour, as the worker's samples add it
CREATE FUNCTION pg_temp.traffic(peer uuid, bytes bigint) RETURNS void LANGUAGE sql AS $$
	INSERT INTO wgpeer.peer_usage (peer_id, hour, rx_bytes, tx_bytes)
	VALUES (peer, date_trunc('hour', now()), bytes, 0)
	ON CONFLICT (peer_id, hour) DO UPDATE
	SET rx_bytes = wgpeer.peer_usage.rx_bytes + EXCLUDED.rx_bytes
$$;
CREATE FUNCTION pg_temp.state() RETURNS TABLE (used numeric, allowance numeric,
                                              left_bytes numeric, statuses text)
LANGUAGE sql AS $$
	SELECT b.used_bytes, b.allowance_bytes, b.left_bytes,
	       (SELECT string_agg(p.status || coalesce('/' || p.suspended_reason, ''), ', '
	                          ORDER BY p.interface)
	        FROM wgpeer.peer p WHERE p.user_id = 'pool')
	FROM wgpeer.wg_user_balance('pool') b
$$;

-- traffic before the quota is not counted
SELECT pg_temp.traffic(:'p1', 77);
SELECT user_id, quota_bytes, period, warn_percents, period_end > period_start AS has_end
FROM wg_set_user_quota('pool', 1000, 'month', '{90, 50, 90}');
SELECT * FROM pg_temp.state();
-- the errors of wg_set_user_quota
SELECT pg_temp.try($$SELECT wg_set_user_quota('pool', -1)$$);
SELECT pg_temp.try($$SELECT wg_set_user_quota('pool', 1000, 'year')$$);
SELECT pg_temp.try($$SELECT wg_set_user_quota('pool', 1000, warn_percents => '{0}')$$);
SELECT pg_temp.try($$SELECT wg_set_user_quota('pool', 1000, warn_percents => '{100}')$$);
SELECT pg_temp.try($$SELECT wg_set_user_quota(NULL, 1000)$$);

-- 300 on wgq1 and 100 on wgq2 (counting 200): half used, the first warning
SELECT pg_temp.traffic(:'p1', 300), pg_temp.traffic(:'p2', 100);
SELECT wg_watch_user_quotas();
SELECT * FROM pg_temp.state();
SELECT warned_percent FROM user_quota WHERE user_id = 'pool';
-- 450 more: 950, past 90%; one warning per threshold
SELECT pg_temp.traffic(:'p1', 450);
SELECT wg_watch_user_quotas();
SELECT wg_watch_user_quotas();
-- 25 more on wgq2 (50): the allowance is used up, every peer suspended
SELECT pg_temp.traffic(:'p2', 25);
SELECT wg_watch_user_quotas();
SELECT * FROM pg_temp.state();
SELECT kind, user_id, detail FROM event
WHERE user_id = 'pool' AND kind IN ('quota_warning', 'quota_reached', 'suspended')
ORDER BY event_id;

-- a top-up resumes them: the ledger and the event say so
SELECT user_id, kind, bytes, expires_at FROM wg_add_traffic('pool', 500);
SELECT * FROM pg_temp.state();
SELECT wg_watch_user_quotas();
SELECT statuses FROM pg_temp.state();
-- a top-up that expires stops counting then
SELECT kind, bytes FROM wg_add_traffic('pool', 100, now() + interval '1 hour');
SELECT allowance FROM pg_temp.state();
UPDATE traffic_ledger SET expires_at = now() - interval '1 second'
WHERE user_id = 'pool' AND bytes = 100;
SELECT allowance FROM pg_temp.state();
-- the errors of wg_add_traffic
SELECT pg_temp.try($$SELECT wg_add_traffic('pool', 0)$$);
SELECT pg_temp.try($$SELECT wg_add_traffic('pool', 100, '2020-01-01 00:00+00')$$);
SELECT pg_temp.try($$SELECT wg_add_traffic(NULL, 100)$$);

-- a reset starts the period anew: usage from zero, top-ups gone
SELECT pg_temp.traffic(:'p1', 600);
SELECT wg_watch_user_quotas();
SELECT statuses FROM pg_temp.state();
SELECT quota_bytes, warned_percent, reached_at FROM wg_reset_usage('pool');
SELECT * FROM pg_temp.state();
SELECT pg_temp.try($$SELECT wg_reset_usage('nobody')$$);

-- a period that ended starts anew at the watch pass
SELECT pg_temp.traffic(:'p1', 2000);
SELECT wg_watch_user_quotas();
SELECT statuses FROM pg_temp.state();
UPDATE user_quota SET period_end = now() - interval '1 second',
                      period_anchor = now() - interval '1 month' WHERE user_id = 'pool';
SELECT wg_watch_user_quotas();
SELECT period_end > now() AS next_period, reached_at FROM user_quota WHERE user_id = 'pool';
SELECT used, statuses FROM pg_temp.state();

-- the ledger explains the balance
SELECT kind, bytes, expires_at IS NOT NULL AS expires, by_role = current_user AS by_me
FROM traffic_ledger WHERE user_id = 'pool' ORDER BY at, kind, bytes;
SELECT kind, detail->'bytes' AS bytes, detail->>'expires_at' IS NOT NULL AS expires
FROM event WHERE user_id = 'pool' AND kind IN ('traffic_added', 'usage_reset')
ORDER BY event_id;

-- traffic sold in packages only: a top-up gives a user without a quota
-- one of 0 bytes until reset
SELECT kind, bytes FROM wg_add_traffic('pkg', 1000);
SELECT quota_bytes, period, period_end FROM user_quota WHERE user_id = 'pkg';
SELECT allowance_bytes FROM wg_user_balance('pkg');

-- removing the quota resumes what it suspended
SELECT pg_temp.traffic(:'p1', 5000);
SELECT wg_watch_user_quotas();
SELECT statuses FROM pg_temp.state();
SELECT wg_set_user_quota('pool', NULL) IS NULL AS removed;
SELECT status FROM peer WHERE user_id = 'pool' ORDER BY interface;

SELECT wg_remove_interface(name, force => true)
FROM interface WHERE name IN ('wgq1', 'wgq2') ORDER BY name;
DELETE FROM user_quota;
DELETE FROM traffic_ledger;
