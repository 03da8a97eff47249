-- Speed limits: wg_set_peer_rate(), its errors, the slots of the traffic
-- control objects, what survives suspension, resumption, renewal and key
-- rotation, the rate_changed events and peer_status.
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql
CREATE FUNCTION pg_temp.id(who text) RETURNS uuid LANGUAGE sql AS $$
	SELECT peer_id FROM wgpeer.peer WHERE user_id = who
$$;
CREATE FUNCTION pg_temp.rates(iface text)
RETURNS TABLE (user_id text, status text, down_kbit int, up_kbit int, rate_slot int)
LANGUAGE sql AS $$
	SELECT user_id, status, down_kbit, up_kbit, rate_slot FROM wgpeer.peer
	WHERE interface = iface ORDER BY user_id
$$;

SELECT name FROM wg_add_interface('wgrate', '198.51.100.9:51820', '10.150.0.1/24');
SELECT name FROM wg_add_interface('wgrate2', '198.51.100.10:51820', '10.151.0.1/24');
SELECT count(*) FROM wg_create_peer('r-ann', 1, interface => 'wgrate');
SELECT count(*) FROM wg_create_peer('r-bob', 1, interface => 'wgrate');
SELECT count(*) FROM wg_create_peer('r-cat', 1, interface => 'wgrate');
SELECT count(*) FROM wg_create_peer('r-dan', 1, interface => 'wgrate2');
UPDATE peer SET status = 'active' WHERE interface LIKE 'wgrate%';
SELECT max(event_id) AS before FROM event \gset

-- Arguments: each refusal names what is wrong.
SELECT pg_temp.try($$SELECT wgpeer.wg_set_peer_rate(NULL, 1000, 1000)$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_set_peer_rate(gen_random_uuid(), 1000, 1000)$$);
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_rate(%L, 0, 1000)', pg_temp.id('r-ann')));
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_rate(%L, 7, NULL)', pg_temp.id('r-ann')));
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_rate(%L, NULL, -5)', pg_temp.id('r-ann')));
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_rate(%L, 10000001, NULL)', pg_temp.id('r-ann')));
-- the bounds themselves are allowed
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_rate(%L, 8, 10000000)', pg_temp.id('r-ann')));
SELECT * FROM pg_temp.rates('wgrate');

-- Limits, one direction or both; slots are the lowest free per interface.
SELECT wg_set_peer_rate(pg_temp.id('r-ann'), 2000, 1000);
SELECT wg_set_peer_rate(pg_temp.id('r-bob'), NULL, 500);
SELECT wg_set_peer_rate(pg_temp.id('r-dan'), 300, 300);
SELECT * FROM pg_temp.rates('wgrate');
SELECT * FROM pg_temp.rates('wgrate2');
-- removed: the slot is free again and goes to the next peer
SELECT wg_set_peer_rate(pg_temp.id('r-ann'), NULL, NULL);
SELECT wg_set_peer_rate(pg_temp.id('r-cat'), 4000, NULL);
SELECT * FROM pg_temp.rates('wgrate');
SELECT wg_set_peer_rate(pg_temp.id('r-ann'), 2000, 1000);
SELECT * FROM pg_temp.rates('wgrate');

-- Kept through suspension, resumption, key rotation and renewal; a
-- revoked or expired peer gives its slot back and cannot be limited.
SELECT status FROM wg_suspend_peer(pg_temp.id('r-ann'), 'unpaid');
SELECT down_kbit, up_kbit, rate_slot FROM peer WHERE user_id = 'r-ann';
SELECT status FROM wg_resume_peer(pg_temp.id('r-ann'));
SELECT wg_rotate_peer_key(pg_temp.id('r-ann')) LIKE '[Interface]%' AS rotated;
SELECT count(*) FROM wg_renew_peer(pg_temp.id('r-ann'), 1);
SELECT down_kbit, up_kbit, rate_slot FROM peer WHERE user_id = 'r-ann';
UPDATE peer SET status = 'expired' WHERE user_id = 'r-cat';
SELECT * FROM pg_temp.rates('wgrate');
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_rate(%L, 1000, 1000)', pg_temp.id('r-cat')));
SELECT count(*) FROM wg_renew_peer(pg_temp.id('r-cat'), 1);
UPDATE peer SET status = 'active' WHERE user_id = 'r-cat';
SELECT * FROM pg_temp.rates('wgrate');
SELECT count(*) FROM wg_revoke_peer(pg_temp.id('r-bob'));
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_rate(%L, 1000, 1000)', pg_temp.id('r-bob')));
SELECT * FROM pg_temp.rates('wgrate');

-- peer_status shows the limits.
SELECT user_id, down_kbit, up_kbit FROM peer_status
WHERE interface LIKE 'wgrate%' ORDER BY user_id;

-- Events: one per change that changes something, none for the same again.
SELECT wg_set_peer_rate(pg_temp.id('r-ann'), 2000, 1000);
SELECT kind, (SELECT user_id FROM peer WHERE peer_id = e.peer_id) AS who, detail
FROM event e WHERE event_id > :before AND kind = 'rate_changed' ORDER BY event_id;

-- A commit that changes a limit tells the worker (the statement trigger).
SELECT tgname, pg_get_triggerdef(oid) LIKE '%wg_tell_worker(''rates'')%' AS tells
FROM pg_trigger WHERE tgrelid = 'wgpeer.peer'::regclass AND tgname LIKE 'peer_rate%'
ORDER BY tgname;

-- Nobody but the administrator may call it until granted.
SELECT has_function_privilege('public', 'wgpeer.wg_set_peer_rate(uuid, integer, integer)',
							  'EXECUTE') AS public_may;

SELECT wg_remove_interface('wgrate', force => true) IS NOT NULL AS removed;
SELECT wg_remove_interface('wgrate2', force => true) IS NOT NULL AS removed;
