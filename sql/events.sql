-- The event log: one event per transition, in the transaction that made
-- it; wg_events() reads them in order; its arguments are checked.
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql
-- A user's events in order: kind and the detail that matters.
CREATE FUNCTION pg_temp.events_of(who text) RETURNS TABLE (kind text, detail jsonb)
LANGUAGE sql AS $$
	SELECT e.kind, e.detail - 'expires_at' - 'previous_expires_at'
		- 'public_key' - 'previous_public_key' - 'address'
	FROM wgpeer.wg_events(0, 10000) e WHERE e.user_id = who ORDER BY e.event_id
$$;

SELECT name FROM wg_add_interface('wgevents', '198.51.100.7:51820', '10.218.0.1/24');
SELECT count(*) FROM wg_create_peer('evt-eve', 1, interface => 'wgevents');
CREATE TEMP TABLE eve AS SELECT peer_id, public_key, expires_at FROM peer WHERE user_id = 'evt-eve';

-- created, with the address and expiry
SELECT kind, detail->>'address' AS address,
       (detail->>'expires_at')::timestamptz = (SELECT expires_at FROM eve) AS expiry
FROM wg_events(0, 10000) WHERE user_id = 'evt-eve';
-- the worker applying it: activated (done here as the worker does)
UPDATE peer SET status = 'active' WHERE user_id = 'evt-eve';
-- suspended with its reason, suspending again writes nothing, resumed
SELECT status FROM wg_suspend_peer((SELECT peer_id FROM eve), 'payment overdue');
SELECT status FROM wg_suspend_peer((SELECT peer_id FROM eve), 'payment overdue');
SELECT status FROM wg_resume_peer((SELECT peer_id FROM eve));
-- renewed: the new and the previous expiry
SELECT count(*) FROM wg_renew_peer((SELECT peer_id FROM eve), 2);
SELECT (detail->>'previous_expires_at')::timestamptz = (SELECT expires_at FROM eve) AS previous,
       (detail->>'expires_at')::timestamptz = (SELECT expires_at FROM peer WHERE user_id = 'evt-eve') AS new
FROM wg_events(0, 10000) WHERE user_id = 'evt-eve' AND kind = 'renewed';
-- the detail is what jsonb_build_object() makes of the columns, to the
-- letter (wg_peer_event() builds it in C)
SELECT detail = jsonb_build_object('expires_at', (SELECT expires_at FROM peer WHERE user_id = 'evt-eve'),
                                   'previous_expires_at', (SELECT expires_at FROM eve)) AS same_detail
FROM wg_events(0, 10000) WHERE user_id = 'evt-eve' AND kind = 'renewed';
-- key rotated: the new and the previous key
SELECT length(wg_rotate_peer_key((SELECT peer_id FROM eve))) > 0 AS rotated;
SELECT detail->>'previous_public_key' = (SELECT public_key FROM eve) AS previous,
       detail->>'public_key' = (SELECT public_key FROM peer WHERE user_id = 'evt-eve') AS new
FROM wg_events(0, 10000) WHERE user_id = 'evt-eve' AND kind = 'key_rotated';
-- expired, then renewed back to life within the grace period, then revoked
UPDATE peer SET expires_at = now() - interval '1 minute' WHERE user_id = 'evt-eve';
SELECT wg_expire_peers();
SELECT count(*) FROM wg_renew_peer((SELECT peer_id FROM eve), 1);
SELECT status FROM wg_revoke_peer((SELECT peer_id FROM eve));
SELECT * FROM pg_temp.events_of('evt-eve');

-- A plan that starts at the first handshake: plan_started when it does.
SELECT count(*) FROM wg_create_peer('evt-pat', interface => 'wgevents', duration => '7 days',
                                    starts_on_handshake => true);
SELECT (detail->>'plan_seconds')::numeric / 86400 = 7 AS seven_days FROM wg_events(0, 10000)
WHERE user_id = 'evt-pat' AND kind = 'created';
INSERT INTO peer_traffic (peer_id, latest_handshake, sampled_at)
SELECT peer_id, now(), now() FROM peer WHERE user_id = 'evt-pat';
SELECT kind, (detail->>'expires_at')::timestamptz
             = (SELECT latest_handshake + interval '7 days' FROM peer_traffic
                JOIN peer USING (peer_id) WHERE user_id = 'evt-pat') AS seven_days,
       detail->'previous_expires_at' AS previous
FROM wg_events(0, 10000) WHERE user_id = 'evt-pat' AND kind <> 'created';

-- Nothing of a rolled-back transaction is logged.
BEGIN;
SELECT count(*) FROM wg_create_peer('evt-ghost', interface => 'wgevents');
ROLLBACK;
SELECT count(*) AS ghost_events FROM event WHERE user_id = 'evt-ghost';

-- Ids increase with each event; reading after an id skips up to it and
-- max bounds a batch.
SELECT bool_and(e.event_id > prev) AS increasing FROM (
	SELECT event_id, lag(event_id, 1, 0::bigint) OVER (ORDER BY event_id) AS prev
	FROM wg_events(0, 10000)) e;
SELECT count(*) = 2 AS two,
       min(event_id) > (SELECT min(event_id) FROM event) AS after_the_first
FROM wg_events((SELECT min(event_id) FROM event), 2);
SELECT count(*) AS none_after_the_last FROM wg_events((SELECT max(event_id) FROM event), 100);

-- Arguments.
SELECT pg_temp.try($$SELECT * FROM wgpeer.wg_events(-1, 10)$$);
SELECT pg_temp.try($$SELECT * FROM wgpeer.wg_events(NULL, 10)$$);
SELECT pg_temp.try($$SELECT * FROM wgpeer.wg_events(0, 0)$$);
SELECT pg_temp.try($$SELECT * FROM wgpeer.wg_events(0, 10001)$$);
SELECT pg_temp.try($$SELECT * FROM wgpeer.wg_events(0, NULL)$$);
-- REPEATABLE READ would read with a snapshot older than the horizon
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.try($$SELECT * FROM wgpeer.wg_events(0, 10)$$);
ROLLBACK;
-- an application role may read events, not write them
CREATE ROLE wgpeer_events_reader;
GRANT USAGE ON SCHEMA wgpeer TO wgpeer_events_reader;
GRANT EXECUTE ON FUNCTION wg_events(bigint, integer) TO wgpeer_events_reader;
SET ROLE wgpeer_events_reader;
SELECT count(*) > 0 AS reads FROM wgpeer.wg_events(0, 100);
SELECT pg_temp.try($$INSERT INTO wgpeer.event (kind) VALUES ('revoked')$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_event_id()$$);
RESET ROLE;
-- only the known kinds are events (the domain event_kind checks them)
SELECT pg_temp.try($$INSERT INTO wgpeer.event (kind) VALUES ('nosuch')$$);
DROP OWNED BY wgpeer_events_reader;
DROP ROLE wgpeer_events_reader;
