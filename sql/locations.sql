-- Locations and capacity: wg_create_peer(location => ...) places a peer on
-- the interface of the location with the most room; every creation and
-- move respects an interface's capacity; location_load shows the load.
-- Moving: wg_move_peer() takes a peer to another interface with a new
-- address there, keeping its keys, plan and quota.
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql

-- Two interfaces in 'de' sharing their server key (so that a client moved
-- between them changes only Address and Endpoint), one in 'nl'.
SELECT name FROM wg_add_interface('wgde1', '198.51.100.31:51831', '10.231.0.1/24',
                                  listen_port => 51831, pool_end => '10.231.0.20');
SELECT name FROM wg_add_interface('wgde2', '198.51.100.32:51832', '10.232.0.1/24',
                                  listen_port => 51832, private_key => (SELECT private_key FROM interface WHERE name = 'wgde1'));
SELECT name FROM wg_add_interface('wgnl1', '198.51.100.33:51833', '10.233.0.1/24',
                                  listen_port => 51833, dns => '10.233.0.1');

-- wg_set_interface_location: location and capacity, with their errors.
SELECT name, location, capacity FROM wg_set_interface_location('wgde1', 'de', 2);
SELECT name, location, capacity FROM wg_set_interface_location('wgde2', 'de', 3);
SELECT name, location, capacity FROM wg_set_interface_location('wgnl1', 'nl');
SELECT pg_temp.try($$SELECT wg_set_interface_location('wgde1', 'Germany!')$$);
SELECT pg_temp.try($$SELECT wg_set_interface_location('wgde1', 'de', 0)$$);
SELECT pg_temp.try($$SELECT wg_set_interface_location('nosuch', 'de')$$);
-- the column's own check, for a direct write
SELECT pg_temp.try($$UPDATE interface SET location = '' WHERE name = 'wgde1'$$);

-- Placement: the interface with the most free places first (wgde2: 3
-- free against 2), then ties go to the one with fewer peers, then name.
CREATE TEMP TABLE placed AS
	SELECT n, (wg_create_peer('u' || n, location => 'de')).interface
	FROM generate_series(1, 5) n;
SELECT n, interface FROM placed ORDER BY n;
SELECT * FROM location_load ORDER BY location;
-- all five places taken: a clear error naming the location
SELECT pg_temp.try($$SELECT wg_create_peer('u6', location => 'de')$$);
-- nor may an explicit interface go past its capacity
SELECT pg_temp.try($$SELECT wg_create_peer('u6', interface => 'wgde1')$$);
-- a suspended peer keeps its place; a revoked one gives it back
SELECT status FROM wg_suspend_peer((SELECT peer_id FROM peer WHERE user_id = 'u1'));
SELECT pg_temp.try($$SELECT wg_create_peer('u6', location => 'de')$$);
SELECT status FROM wg_revoke_peer((SELECT peer_id FROM peer WHERE user_id = 'u2'));
SELECT interface FROM wg_create_peer('u6', location => 'de');
-- a location without a capacity: the interface with the fewest peers
SELECT interface FROM wg_create_peer('n1', location => 'nl');
SELECT * FROM location_load ORDER BY location;

-- the errors of location
SELECT pg_temp.try($$SELECT wg_create_peer('x', location => 'fr')$$);
SELECT pg_temp.try($$SELECT wg_create_peer('x', location => 'de', interface => 'wgde1')$$);
-- a 0.2 call (positional, without location) still works
SELECT interface FROM wg_create_peer('old', 1, NULL, NULL, 'wgnl1', NULL, NULL, NULL, false);

-- Moving: the peer of u3 from 'de' to 'nl' and back.
CREATE TEMP TABLE before AS
	SELECT peer_id, interface, address, public_key, private_key, expires_at
	FROM peer WHERE user_id = 'u3';
SELECT peer_id, interface, address FROM before \gset b_
SELECT (wg_set_peer_quota(:'b_peer_id', 1000000)).quota_bytes;
DELETE FROM queue;
SELECT m.interface, m.node, host(m.address), m.changed,
       m.config = wg_peer_config(m.peer_id) AS config_is_current
FROM wg_move_peer(:'b_peer_id', 'wgnl1') m;
-- the same row: keys, plan and quota kept, new interface and address
SELECT p.interface, host(p.address), p.status,
       p.public_key = b.public_key AS same_key,
       p.private_key = b.private_key AS same_private_key,
       p.expires_at = b.expires_at AS same_plan,
       (SELECT count(*) FROM quota q WHERE q.peer_id = p.peer_id) AS quotas
FROM peer p, before b WHERE p.peer_id = b.peer_id;
-- off the old interface, onto the new one
SELECT interface, op, public_key = (SELECT public_key FROM before) AS its_key
FROM queue ORDER BY change_id;
-- the old address is free again on the old interface
SELECT host(address) FROM free_address WHERE interface = :'b_interface'
  AND address = :'b_address';
-- an event says so
SELECT kind, interface, detail - 'from_address' - 'address' AS detail
FROM event WHERE peer_id = :'b_peer_id' AND kind = 'moved';
-- and back, to a free place
SELECT host(address), changed FROM wg_move_peer(:'b_peer_id', 'wgde2');
SELECT interface, host(address) FROM peer WHERE peer_id = :'b_peer_id';

-- a suspended peer moves too; nothing is queued until it resumes
DELETE FROM queue;
SELECT interface FROM wg_move_peer((SELECT peer_id FROM peer WHERE user_id = 'u1'), 'wgnl1');
SELECT count(*) AS queued FROM queue;
SELECT status FROM wg_resume_peer((SELECT peer_id FROM peer WHERE user_id = 'u1'));
SELECT interface, op FROM queue ORDER BY change_id;

-- between two interfaces sharing their key and settings the client
-- changes only its Address and Endpoint
SELECT interface, host(address), changed
FROM wg_move_peer((SELECT peer_id FROM peer WHERE user_id = 'u4'), 'wgde2');

-- the errors of wg_move_peer: a full target (wgde2 holds u3, u4, u5)
SELECT pg_temp.try($$SELECT wg_move_peer((SELECT peer_id FROM peer WHERE user_id = 'u6'), 'wgde2')$$);
SELECT pg_temp.try($$SELECT wg_move_peer((SELECT peer_id FROM peer WHERE user_id = 'u4'),
                                         (SELECT interface FROM peer WHERE user_id = 'u4'))$$);
SELECT pg_temp.try($$SELECT wg_move_peer((SELECT peer_id FROM peer WHERE user_id = 'u2'), 'wgnl1')$$);
SELECT pg_temp.try($$SELECT wg_move_peer((SELECT peer_id FROM peer WHERE user_id = 'u4'), NULL)$$);
SELECT pg_temp.try($$SELECT wg_move_peer((SELECT peer_id FROM peer WHERE user_id = 'u4'), 'nosuch')$$);
SELECT pg_temp.try($$SELECT wg_move_peer('00000000-0000-7000-8000-000000000000', 'wgnl1')$$);
SELECT wg_set_peer_routes((SELECT peer_id FROM peer WHERE user_id = 'n1'), '{192.168.77.0/24}');
SELECT pg_temp.try($$SELECT wg_move_peer((SELECT peer_id FROM peer WHERE user_id = 'n1'), 'wgde2')$$);
-- a limit of the target's own counts the user's peers there
UPDATE interface SET max_peers_per_user = 1 WHERE name = 'wgnl1';
SELECT interface FROM wg_create_peer('u5', interface => 'wgnl1');
SELECT pg_temp.try($$SELECT wg_move_peer((SELECT peer_id FROM peer WHERE user_id = 'u5'
                                          AND interface <> 'wgnl1'), 'wgnl1')$$);
UPDATE interface SET max_peers_per_user = NULL WHERE name = 'wgnl1';

-- clean up for the suites after this one
SELECT wg_remove_interface(name, force => true)
FROM interface WHERE name IN ('wgde1', 'wgde2', 'wgnl1') ORDER BY name;
