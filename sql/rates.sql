-- Speed limits: wg_set_peer_rate(), its errors, the slots of the traffic
-- control objects, what survives suspension, resumption, renewal and key
-- rotation, the rate_changed events and peer_status; an interface's
-- default (wg_set_interface_rate) and a peer's exemption from it.
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
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_rate(%L, 1, 1000)', pg_temp.id('r-ann')));
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_rate(%L, 7, NULL)', pg_temp.id('r-ann')));
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_rate(%L, NULL, -5)', pg_temp.id('r-ann')));
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_rate(%L, 10000001, NULL)', pg_temp.id('r-ann')));
-- the bounds themselves are allowed, and 0 (unlimited)
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_rate(%L, 0, 0)', pg_temp.id('r-ann')));
SELECT * FROM pg_temp.rates('wgrate');
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

-- A commit that changes a limit tells the worker: the statement trigger
-- here, row triggers where logical replication applies the primary's
-- rows (a node: replica or always), for peers and interfaces.
SELECT tgrelid::regclass, tgname, tgenabled,
	   pg_get_triggerdef(oid) LIKE '%wg_tell_worker(''rates'')%' AS tells
FROM pg_trigger
WHERE tgrelid IN ('wgpeer.peer'::regclass, 'wgpeer.interface'::regclass)
  AND tgname LIKE '%rate%'
ORDER BY 1, 2;

-- An interface's default: every peer there without its own limit in a
-- direction takes it, a peer's own wins, 0 exempts a peer.
SELECT max(event_id) AS before FROM event \gset
SELECT pg_temp.try($$SELECT wgpeer.wg_set_interface_rate(NULL, 1000, 1000)$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_set_interface_rate('nosuch', 1000, 1000)$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_set_interface_rate('wgrate', 0, 1000)$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_set_interface_rate('wgrate', 1000, 10000001)$$);
SELECT count(*) FROM wg_create_peer('r-eve', 1, interface => 'wgrate');
SELECT wg_set_peer_rate(pg_temp.id('r-cat'), NULL, 0);
SELECT wg_set_peer_rate(pg_temp.id('r-cat'), 4000, 0);
SELECT * FROM pg_temp.rates('wgrate');
SELECT wg_set_interface_rate('wgrate', 1500, 700);
SELECT down_kbit, up_kbit FROM interface WHERE name = 'wgrate';
-- r-eve (nothing of its own) takes a slot; the revoked r-bob does not
SELECT * FROM pg_temp.rates('wgrate');
SELECT user_id, status, down_kbit, down_from, up_kbit, up_from FROM peer_status
WHERE interface = 'wgrate' ORDER BY user_id;
-- a peer created there has its slot at once
SELECT count(*) FROM wg_create_peer('r-fay', 1, interface => 'wgrate');
SELECT user_id, rate_slot FROM peer WHERE user_id = 'r-fay';
-- exempt both ways: no slot, unlimited, from the peer
SELECT wg_set_peer_rate(pg_temp.id('r-eve'), 0, 0);
SELECT user_id, status, down_kbit, down_from, up_kbit, up_from FROM peer_status
WHERE user_id = 'r-eve';
SELECT rate_slot FROM peer WHERE user_id = 'r-eve';
-- back to the default: a slot again
SELECT wg_set_peer_rate(pg_temp.id('r-eve'), NULL, NULL);
SELECT rate_slot IS NOT NULL AS has_slot FROM peer WHERE user_id = 'r-eve';
-- the same again changes nothing, logs nothing
SELECT wg_set_interface_rate('wgrate', 1500, 700);
-- one direction only, then none: the peers' own limits stay
SELECT wg_set_interface_rate('wgrate', NULL, 700);
SELECT * FROM pg_temp.rates('wgrate');
SELECT wg_set_interface_rate('wgrate', NULL, NULL);
SELECT * FROM pg_temp.rates('wgrate');
SELECT user_id, down_kbit, down_from, up_kbit, up_from FROM peer_status
WHERE interface = 'wgrate' ORDER BY user_id;
-- the interface's changes are events of the interface (no peer)
SELECT kind, interface, peer_id IS NULL AS no_peer, detail
FROM event WHERE event_id > :before AND kind = 'rate_changed' AND peer_id IS NULL
ORDER BY event_id;
-- slots given set-based stay unique and lowest-first on a busy interface
SELECT count(*) FROM generate_series(1, 40) g,
	LATERAL wg_create_peer('r-many-' || g, 1, interface => 'wgrate2');
SELECT wg_set_peer_rate(pg_temp.id('r-many-7'), 0, 0);
SELECT wg_set_interface_rate('wgrate2', 10000, 5000);
SELECT count(*) AS limited, count(DISTINCT rate_slot) AS slots,
	   min(rate_slot), max(rate_slot)
FROM peer WHERE interface = 'wgrate2' AND rate_slot IS NOT NULL;

-- Nobody but the administrator may call it until granted.
SELECT has_function_privilege('public', 'wgpeer.wg_set_peer_rate(uuid, integer, integer)',
							  'EXECUTE') AS public_may;
SELECT has_function_privilege('public', 'wgpeer.wg_set_interface_rate(text, integer, integer)',
							  'EXECUTE') AS public_may;

SELECT wg_remove_interface('wgrate', force => true) IS NOT NULL AS removed;
SELECT wg_remove_interface('wgrate2', force => true) IS NOT NULL AS removed;
