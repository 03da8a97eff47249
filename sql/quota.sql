-- Traffic quotas, the usage history and what the worker watches after
-- each traffic sample (wg_watch_peers(), called here as the worker does,
-- with the traffic a sample would record written by hand).
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql
-- Record a sample: the cumulative totals of a user's peer.
CREATE FUNCTION pg_temp.sample(who text, rx bigint, tx bigint) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO wgpeer.peer_traffic AS t (peer_id, rx_bytes, tx_bytes, sampled_at)
	SELECT peer_id, rx, tx, now() FROM wgpeer.peer WHERE user_id = who
	ON CONFLICT (peer_id, node) DO UPDATE
	SET rx_bytes = EXCLUDED.rx_bytes, tx_bytes = EXCLUDED.tx_bytes, sampled_at = now()
$$;
-- The events of a user written since the last call.
CREATE TEMP TABLE seen (event_id bigint);
INSERT INTO seen VALUES (0);
CREATE FUNCTION pg_temp.news(who text) RETURNS TABLE (kind text, detail jsonb)
LANGUAGE sql AS $$
	SELECT e.kind, e.detail - 'latest_handshake' - 'expires_at' - 'previous_expires_at'
	FROM wgpeer.wg_events((SELECT max(event_id) FROM seen), 10000) e
	WHERE e.user_id = who ORDER BY e.event_id
$$;
CREATE FUNCTION pg_temp.mark() RETURNS void
LANGUAGE sql AS $$
	INSERT INTO seen SELECT coalesce(max(event_id), 0) FROM wgpeer.event
$$;
SET wgpeer.quota_warning = 80;

SELECT name FROM wg_add_interface('wgquota', '198.51.100.8:51820', '10.217.0.1/24');
SELECT count(*) FROM wg_create_peer('q-quinn', 1, interface => 'wgquota');
SELECT count(*) FROM wg_create_peer('q-uma', 1, interface => 'wgquota');
UPDATE peer SET status = 'active' WHERE interface = 'wgquota';
SELECT pg_temp.mark();

-- Arguments.
SELECT pg_temp.try($$SELECT wgpeer.wg_set_peer_quota(NULL, 1000)$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_set_peer_quota(gen_random_uuid(), 1000)$$);
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_quota(%L, 0)',
                          (SELECT peer_id FROM peer WHERE user_id = 'q-quinn')));
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_quota(%L, 1000, %L)',
                          (SELECT peer_id FROM peer WHERE user_id = 'q-quinn'), 'year'));
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_quota(%L, 1000, NULL)',
                          (SELECT peer_id FROM peer WHERE user_id = 'q-quinn')));
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_quota(%L, 1000, %L, now() + interval %L)',
                          (SELECT peer_id FROM peer WHERE user_id = 'q-quinn'), 'day', '1 hour'));

-- A monthly quota of 1000 bytes, from now: nothing used yet.
SELECT quota_bytes, period, period_start = now() AS from_now,
       period_end = now() + interval '1 month' AS a_month, base_bytes
FROM wg_set_peer_quota((SELECT peer_id FROM peer WHERE user_id = 'q-quinn'), 1000);

-- 500 bytes: under the warning (80 %), nothing happens.
SELECT pg_temp.sample('q-quinn', 300, 200);
SELECT wg_watch_peers();
SELECT * FROM pg_temp.news('q-quinn');
-- 850 bytes: one warning, and only one however often the worker looks.
SELECT pg_temp.sample('q-quinn', 500, 350);
SELECT wg_watch_peers();
SELECT wg_watch_peers();
SELECT * FROM pg_temp.news('q-quinn');
SELECT pg_temp.mark();
-- 1100 bytes: reached; the peer is suspended with reason 'quota' and its
-- removal queued.
SELECT pg_temp.sample('q-quinn', 700, 400);
SELECT wg_watch_peers();
SELECT wg_watch_peers();
SELECT * FROM pg_temp.news('q-quinn');
SELECT pg_temp.mark();
SELECT status, suspended_reason FROM peer WHERE user_id = 'q-quinn';
SELECT op FROM queue q JOIN peer p USING (peer_id) WHERE p.user_id = 'q-quinn'
ORDER BY change_id DESC LIMIT 1;
SELECT used_bytes, quota_bytes, used_percent, used, quota
FROM wg_user_usage('q-quinn');

-- A larger quota for the same period keeps what was used and lets the
-- peer back at once.
SELECT quota_bytes, base_bytes FROM wg_set_peer_quota(
	(SELECT peer_id FROM peer WHERE user_id = 'q-quinn'), 5000);
SELECT status, suspended_reason FROM peer WHERE user_id = 'q-quinn';
SELECT used_bytes FROM wg_user_usage('q-quinn');
SELECT * FROM pg_temp.news('q-quinn');
SELECT pg_temp.mark();

-- A smaller one again: the worker suspends it at its next look (the
-- warning is written first: the new quota is a new limit).
SELECT quota_bytes FROM wg_set_peer_quota(
	(SELECT peer_id FROM peer WHERE user_id = 'q-quinn'), 1000);
UPDATE peer SET status = 'active' WHERE user_id = 'q-quinn';
SELECT wg_watch_peers();
SELECT * FROM pg_temp.news('q-quinn');
SELECT pg_temp.mark();

-- The period ends (moved back here): a new period starts at the boundary,
-- usage starts from zero, and the peer the quota suspended comes back.
CREATE TEMP TABLE boundary AS SELECT period_start AS at FROM quota
WHERE peer_id = (SELECT peer_id FROM peer WHERE user_id = 'q-quinn');
UPDATE quota SET period_anchor = period_anchor - interval '1 month',
                 period_start = period_start - interval '1 month',
                 period_end = period_end - interval '1 month'
WHERE peer_id = (SELECT peer_id FROM peer WHERE user_id = 'q-quinn');
SELECT wg_watch_peers();
SELECT period_start = (SELECT at FROM boundary) AS at_the_boundary,
       period_end = (SELECT at FROM boundary) + interval '1 month' AS a_month,
       base_bytes, warned_at, reached_at
FROM quota WHERE peer_id = (SELECT peer_id FROM peer WHERE user_id = 'q-quinn');
SELECT status, suspended_reason FROM peer WHERE user_id = 'q-quinn';
SELECT used_bytes FROM wg_user_usage('q-quinn');
SELECT * FROM pg_temp.news('q-quinn');
SELECT pg_temp.mark();

-- A peer suspended for another reason stays suspended when its period
-- ends; removing the quota of a peer the quota suspended lets it back.
SELECT status FROM wg_suspend_peer((SELECT peer_id FROM peer WHERE user_id = 'q-quinn'), 'payment overdue');
UPDATE quota SET period_anchor = period_anchor - interval '2 months',
                 period_start = period_start - interval '1 month',
                 period_end = period_end - interval '1 month'
WHERE peer_id = (SELECT peer_id FROM peer WHERE user_id = 'q-quinn');
SELECT wg_watch_peers();
SELECT status, suspended_reason FROM peer WHERE user_id = 'q-quinn';
SELECT status FROM wg_resume_peer((SELECT peer_id FROM peer WHERE user_id = 'q-quinn'));
UPDATE peer SET status = 'active' WHERE user_id = 'q-quinn';
SELECT pg_temp.sample('q-quinn', 2000, 1000);
SELECT wg_watch_peers();
SELECT status, suspended_reason FROM peer WHERE user_id = 'q-quinn';
SELECT wg_set_peer_quota((SELECT peer_id FROM peer WHERE user_id = 'q-quinn'), NULL) IS NULL AS removed;
SELECT status, suspended_reason FROM peer WHERE user_id = 'q-quinn';
SELECT count(*) AS quotas FROM quota JOIN peer USING (peer_id) WHERE user_id = 'q-quinn';
SELECT pg_temp.mark();

-- Periods start at whole periods after their anchor; months count from
-- the anchor (the 31st: the 28th in February, the 31st in March); a quota
-- with no period ('none') never resets.
SET TimeZone = 'UTC';
SELECT wg_quota_period_at('day', '2026-01-01 06:00', '2026-01-03 05:00') AS day,
       wg_quota_period_at('day', '2026-01-01 06:00', '2026-01-03 05:00', 1) AS day_end,
       wg_quota_period_at('week', '2026-01-01 06:00', '2026-01-20 00:00') AS week,
       wg_quota_period_at('week', '2026-01-01 06:00', '2026-01-20 00:00', 1) AS week_end;
SELECT wg_quota_period_at('month', '2026-01-31 06:00', '2026-03-30 00:00') AS month,
       wg_quota_period_at('month', '2026-01-31 06:00', '2026-03-30 00:00', 1) AS month_end,
       wg_quota_period_at('month', '2026-01-31 06:00', '2026-02-10 00:00', 1) AS february_end,
       wg_quota_period_at('month', '2026-01-31 06:00', '2026-01-01 00:00') AS before;
SELECT wg_quota_period_at('none', '2026-01-01 06:00', '2027-01-01 00:00') AS none,
       wg_quota_period_at('none', '2026-01-01 06:00', '2027-01-01 00:00', 1) AS none_end;
RESET TimeZone;
SELECT period, period_end FROM wg_set_peer_quota(
	(SELECT peer_id FROM peer WHERE user_id = 'q-uma'), 1000000, 'none');

-- Usage per hour: the growth of the totals, one row per peer and hour;
-- an update of several peers in one statement counts each.
SELECT pg_temp.sample('q-uma', 100, 10);
UPDATE peer_traffic SET rx_bytes = rx_bytes + 5, tx_bytes = tx_bytes + 1
WHERE peer_id IN (SELECT peer_id FROM peer WHERE interface = 'wgquota');
SELECT p.user_id, u.hour = date_trunc('hour', now()) AS this_hour, u.rx_bytes, u.tx_bytes
FROM peer_usage u JOIN peer p USING (peer_id) ORDER BY p.user_id;
-- a quota from an earlier start counts the usage since then
SELECT base_bytes FROM wg_set_peer_quota(
	(SELECT peer_id FROM peer WHERE user_id = 'q-uma'), 1000000, 'month',
	date_trunc('hour', now()) - interval '1 day');
SELECT rx_bytes, tx_bytes, used_bytes, used_percent FROM wg_user_usage('q-uma');

-- Presence: connected at a handshake after being offline, disconnected
-- three minutes after the last one.
UPDATE peer_traffic SET latest_handshake = now() - interval '10 seconds', endpoint = '192.0.2.4:40000'
WHERE peer_id = (SELECT peer_id FROM peer WHERE user_id = 'q-uma');
SELECT wg_watch_peers();
SELECT wg_watch_peers();
UPDATE peer_traffic SET latest_handshake = now() - interval '4 minutes'
WHERE peer_id = (SELECT peer_id FROM peer WHERE user_id = 'q-uma');
SELECT wg_watch_peers();
SELECT wg_watch_peers();
SELECT * FROM pg_temp.news('q-uma');
SELECT pg_temp.mark();

-- Expiring soon: once per peer and expiry, within wgpeer.expiring_notice.
SET wgpeer.expiring_notice = '3d';
UPDATE peer SET expires_at = now() + interval '4 days' WHERE user_id = 'q-uma';
SELECT wg_watch_peers();
UPDATE peer SET expires_at = now() + interval '2 days' WHERE user_id = 'q-uma';
SELECT wg_watch_peers();
SELECT wg_watch_peers();
UPDATE peer SET expires_at = now() + interval '1 day' WHERE user_id = 'q-uma';
SELECT wg_watch_peers();
SELECT * FROM pg_temp.news('q-uma');
SELECT pg_temp.mark();

-- Retention: events and usage older than their setting go.
SET wgpeer.event_retention = '1h';
SET wgpeer.usage_retention = '1h';
UPDATE event SET at = now() - interval '2 hours' WHERE user_id = 'q-quinn';
UPDATE peer_usage SET hour = hour - interval '2 hours'
WHERE peer_id = (SELECT peer_id FROM peer WHERE user_id = 'q-quinn');
SELECT wg_watch_peers();
SELECT count(*) AS quinn_events FROM event WHERE user_id = 'q-quinn';
SELECT count(*) > 0 AS uma_events FROM event WHERE user_id = 'q-uma';
SELECT p.user_id FROM peer_usage u JOIN peer p USING (peer_id);
RESET wgpeer.event_retention;
RESET wgpeer.usage_retention;

-- A revoked peer takes no quota.
SELECT status FROM wg_revoke_peer((SELECT peer_id FROM peer WHERE user_id = 'q-uma'));
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_quota(%L, 1000)',
                          (SELECT peer_id FROM peer WHERE user_id = 'q-uma')));
