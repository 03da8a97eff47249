-- Per-peer routing: a client's own AllowedIPs (split tunnel) and the
-- subnets behind a peer (site to site), with the queue and the checks
-- that keep two peers' routes apart.
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql
-- The queued changes of a user's peers, oldest first.
CREATE FUNCTION pg_temp.changes(who text) RETURNS SETOF text
LANGUAGE sql AS $$
	SELECT q.op FROM wgpeer.queue q JOIN wgpeer.peer p USING (peer_id)
	WHERE p.user_id = who ORDER BY q.change_id
$$;
-- The AllowedIPs line of a config.
CREATE FUNCTION pg_temp.allowed(config text) RETURNS text
LANGUAGE sql AS $$
	SELECT substring(config FROM '\nAllowedIPs = ([^\n]*)\n')
$$;
-- Like pg_temp.try, with the error's detail and hint.
CREATE FUNCTION pg_temp.try_full(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	detail text;
	hint text;
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RETURN regexp_replace(SQLSTATE || ': ' || SQLERRM ||
						  coalesce(E'\nDETAIL: ' || nullif(detail, ''), '') ||
						  coalesce(E'\nHINT: ' || nullif(hint, ''), ''),
						  '[0-9a-f]{8}-[0-9a-f-]{27}', '<peer_id>', 'g');
END
$$;
-- A peer's id by user.
CREATE FUNCTION pg_temp.id(who text) RETURNS uuid
LANGUAGE sql AS $$
	SELECT peer_id FROM wgpeer.peer WHERE user_id = who AND status <> 'revoked'
$$;

SELECT name FROM wg_add_interface('wgr', '198.51.100.12:51820', '10.247.0.1/24',
                                  address6 => 'fd00:247::1/64',
                                  allowed_ips => '0.0.0.0/0, ::/0');
SELECT name FROM wg_add_interface('wgr2', '198.51.100.12:51821', '10.248.0.1/24',
                                  listen_port => 51821);
SELECT count(*) FROM wg_create_peer('site-a', interface => 'wgr');
SELECT count(*) FROM wg_create_peer('site-b', interface => 'wgr');
SELECT count(*) FROM wg_create_peer('site-c', interface => 'wgr');
SELECT count(*) FROM wg_create_peer('other', interface => 'wgr2');
DELETE FROM queue;

------------------------------------------------------------------------------
-- A client's own allowed IPs: its config only, nothing queued.
------------------------------------------------------------------------------

SELECT pg_temp.allowed(wg_peer_config(pg_temp.id('site-a'))) AS default_allowed;
CREATE TEMP TABLE before AS SELECT wg_peer_config(pg_temp.id('site-a')) AS config;
SELECT pg_temp.allowed(wg_set_peer_allowed_ips(pg_temp.id('site-a'),
                                               '{10.0.0.0/8, 192.168.0.0/16, fd00::/8}'))
       AS returned;
SELECT pg_temp.allowed(wg_peer_config(pg_temp.id('site-a'))) AS stored;
SELECT allowed_ips FROM peer WHERE user_id = 'site-a';
-- only the AllowedIPs line changed
SELECT wg_peer_config(pg_temp.id('site-a')) <> config AS changed,
       regexp_replace(wg_peer_config(pg_temp.id('site-a')), 'AllowedIPs = [^\n]*', '')
       = regexp_replace(config, 'AllowedIPs = [^\n]*', '') AS only_that_line
FROM before;
SELECT count(*) AS changes FROM queue;
-- the caller's order is kept; a single prefix; then back to the interface's
SELECT pg_temp.allowed(wg_set_peer_allowed_ips(pg_temp.id('site-a'),
                                               '{192.168.1.0/24, 10.247.0.0/24}'));
SELECT pg_temp.allowed(wg_set_peer_allowed_ips(pg_temp.id('site-a'), '{10.247.0.0/24}'));
SELECT pg_temp.allowed(wg_set_peer_allowed_ips(pg_temp.id('site-a'), NULL)) AS reset;
SELECT allowed_ips IS NULL AS reset_stored, wg_peer_config(peer_id) = config AS as_before
FROM peer, before WHERE user_id = 'site-a';
-- 64 prefixes are allowed; overlapping ones too (the client routes the
-- most specific)
SELECT length(pg_temp.allowed(wg_set_peer_allowed_ips(pg_temp.id('site-b'),
       (SELECT array_agg(format('10.%s.0.0/16', g)::cidr) FROM generate_series(1, 64) g))))
       AS long_line;
SELECT pg_temp.allowed(wg_set_peer_allowed_ips(pg_temp.id('site-b'), '{0.0.0.0/0, 10.0.0.0/8}'));
SELECT count(*) AS changes FROM queue;

-- What is refused.
SELECT pg_temp.try_full(format('SELECT wg_set_peer_allowed_ips(%L, %L)', pg_temp.id('site-a'), '{}'));
SELECT pg_temp.try(format('SELECT wg_set_peer_allowed_ips(%L, %L)', pg_temp.id('site-a'),
                          '{10.0.0.0/8, 192.168.0.0/16, 10.0.0.0/8}'));
SELECT pg_temp.try(format('SELECT wg_set_peer_allowed_ips(%L, %L)', pg_temp.id('site-a'),
                          '{10.0.0.0/8, NULL}'));
SELECT pg_temp.try(format('SELECT wg_set_peer_allowed_ips(%L, %L)', pg_temp.id('site-a'),
                          '{{10.0.0.0/8}, {10.1.0.0/16}}'));
SELECT pg_temp.try(format('SELECT wg_set_peer_allowed_ips(%L, %L)', pg_temp.id('site-a'),
       (SELECT array_agg(format('10.%s.0.0/16', g)::cidr) FROM generate_series(1, 65) g)));
SELECT pg_temp.try('SELECT wg_set_peer_allowed_ips(NULL, ''{10.0.0.0/8}'')');
SELECT pg_temp.try('SELECT wg_set_peer_allowed_ips(''00000000-0000-0000-0000-000000000000'', ''{10.0.0.0/8}'')');
-- the cidr type itself refuses anything that is not a prefix, so no line
-- can be injected into the config
SELECT pg_temp.try(format('SELECT wg_set_peer_allowed_ips(%L, %L)', pg_temp.id('site-a'),
                          E'{"10.0.0.0/8\nPostUp = x"}'));
SELECT pg_temp.try(format('SELECT wg_set_peer_allowed_ips(%L, %L)', pg_temp.id('site-a'),
                          '{10.0.0.1/8}'));
-- the table's own check, for writes that bypass the function
SELECT pg_temp.try('UPDATE wgpeer.peer SET allowed_ips = ''{}'' WHERE user_id = ''site-a''');
SELECT allowed_ips IS NULL AS unchanged FROM peer WHERE user_id = 'site-a';

------------------------------------------------------------------------------
-- Routes behind a peer: allowed IPs on the interface, queued.
------------------------------------------------------------------------------

SELECT wg_set_peer_routes(pg_temp.id('site-a'), '{192.168.77.0/24, fd77::/64, 172.16.0.0/12}');
SELECT routes FROM peer WHERE user_id = 'site-a';
SELECT * FROM pg_temp.changes('site-a');
-- the client config is not changed by routes
SELECT pg_temp.allowed(wg_peer_config(pg_temp.id('site-a'))) AS client_allowed;
-- the same routes in another order change nothing and queue nothing
DELETE FROM queue;
SELECT wg_set_peer_routes(pg_temp.id('site-a'), '{fd77::/64, 172.16.0.0/12, 192.168.77.0/24}');
SELECT count(*) AS changes FROM queue;
-- one route fewer: queued again
SELECT wg_set_peer_routes(pg_temp.id('site-a'), '{192.168.77.0/24, fd77::/64}');
SELECT * FROM pg_temp.changes('site-a');
DELETE FROM queue;

-- Overlaps are refused with 23P01, naming both sides: another peer's
-- route (inside it, around it, equal), the tunnel prefixes (the pool),
-- a peer's tunnel address.
SELECT pg_temp.try_full(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-b'),
                               '{192.168.77.128/25}'));
SELECT pg_temp.try(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-b'),
                          '{10.1.0.0/16, 192.168.0.0/16}'));
SELECT pg_temp.try(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-b'),
                          '{fd77::/64}'));
SELECT pg_temp.try_full(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-b'),
                               '{10.247.0.0/16}'));
SELECT pg_temp.try_full(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-b'),
                               '{10.247.0.200/29}'));
SELECT pg_temp.try(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-b'),
                          '{fd00:247::/48}'));
SELECT pg_temp.try(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-b'),
                          '{10.247.0.3/32}'));
SELECT pg_temp.try(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-b'),
                          '{fd00:247::2/128}'));
SELECT count(*) AS changes, (SELECT routes FROM peer WHERE user_id = 'site-b') AS b_routes
FROM queue;
-- a neighbouring subnet is fine, and so is the same subnet on another
-- interface (another device)
SELECT wg_set_peer_routes(pg_temp.id('site-b'), '{192.168.78.0/24}');
SELECT wg_set_peer_routes(pg_temp.id('other'), '{192.168.77.0/24}');
-- a peer may move its own routes around
SELECT wg_set_peer_routes(pg_temp.id('site-a'), '{192.168.77.0/25}');

-- What is refused in the list itself.
SELECT pg_temp.try(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-c'),
                          '{192.168.90.0/24, 192.168.90.0/24}'));
SELECT pg_temp.try_full(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-c'),
                               '{192.168.0.0/16, 192.168.90.0/24}'));
SELECT pg_temp.try(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-c'),
                          '{192.168.90.0/24, NULL}'));
SELECT pg_temp.try(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-c'),
       (SELECT array_agg(format('172.20.%s.0/24', g)::cidr) FROM generate_series(1, 65) g)));
SELECT pg_temp.try('SELECT wg_set_peer_routes(NULL, ''{192.168.90.0/24}'')');
SELECT pg_temp.try('SELECT wg_set_peer_routes(''00000000-0000-0000-0000-000000000000'', ''{192.168.90.0/24}'')');
SELECT pg_temp.try('UPDATE wgpeer.peer SET routes = ''{}'' WHERE user_id = ''site-c''');
SELECT routes IS NULL AS c_unchanged FROM peer WHERE user_id = 'site-c';
-- 64 routes are allowed
SELECT cardinality(wg_set_peer_routes(pg_temp.id('site-c'),
       (SELECT array_agg(format('172.20.%s.0/24', g)::cidr) FROM generate_series(1, 64) g)))
       AS c_routes;

-- Another interface's tunnel prefixes (where its pool is) are refused with
-- 23P01, naming that interface: a peer routed them could send from its
-- peers' addresses.
SELECT pg_temp.try_full(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-c'),
                               '{10.248.0.0/16}'));
SELECT pg_temp.try(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-c'),
                          '{192.168.91.0/24, 10.248.0.128/25}'));
-- Ranges no pool may hold are refused with 22023, whatever their length.
SELECT r, pg_temp.try(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-c'),
                             ARRAY[r]))
FROM unnest('{0.0.0.0/8, 0.0.0.0/32, 127.0.0.0/8, 127.0.0.1/32, 169.254.0.0/16,
              169.254.1.0/24, 169.0.0.0/8, 224.0.0.0/8, 239.1.2.0/24,
              240.0.0.0/8, 255.255.255.255/32, ::/128, ::1/128, ::ffff:0:0/96,
              ::ffff:10.1.2.0/120, fe80::/64, ff02::1/128, ff00::/32}'::cidr[]) r;
SELECT pg_temp.try_full(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-c'),
                               '{127.0.0.0/8}'));
-- Wide routes (shorter than /8 in IPv4, /32 in IPv6), a default route
-- above all, are for an administrator: 22023 from wg_set_peer_routes.
SELECT r, pg_temp.try(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-c'),
                             ARRAY[r]))
FROM unnest('{0.0.0.0/0, ::/0, 0.0.0.0/1, 128.0.0.0/1, 8.0.0.0/7, 2000::/3,
              fd00::/8, 2001:db8::/31}'::cidr[]) r;
SELECT pg_temp.try_full(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-c'),
                               '{0.0.0.0/0}'));
-- the widest routes an application may set
SELECT wg_set_peer_routes(pg_temp.id('site-c'), '{11.0.0.0/8, 2001:db8::/32}');
SELECT routes IS NOT NULL AS c_routed FROM peer WHERE user_id = 'site-c';

-- wg_set_peer_wide_routes, the administrator's: a default route for an
-- exit peer.  It covers tunnel prefixes and addresses (WireGuard sends a
-- packet to the peer with the longest matching prefix), and routes of
-- other lengths; the same wide route twice, and ranges no pool may hold
-- that it lies inside, are still refused.
SELECT wg_set_peer_wide_routes(pg_temp.id('site-a'), '{0.0.0.0/0, ::/0}');
SELECT pg_temp.try(format('SELECT wg_set_peer_wide_routes(%L, %L)', pg_temp.id('site-c'),
                          '{0.0.0.0/0}'));
SELECT wg_set_peer_wide_routes(pg_temp.id('site-c'), '{0.0.0.0/1, 2001:db8::/32}');
SELECT r, pg_temp.try(format('SELECT wg_set_peer_wide_routes(%L, %L)', pg_temp.id('site-c'),
                             ARRAY[r]))
FROM unnest('{224.0.0.0/5, 240.0.0.0/6, ff00::/9, fe80::/11, 127.0.0.0/8,
              10.248.0.0/16, 192.168.78.0/24}'::cidr[]) r;
-- an application's narrow route next to it
SELECT wg_set_peer_routes(pg_temp.id('site-c'), '{192.168.92.0/24}');
SELECT user_id, routes FROM peer WHERE user_id IN ('site-a', 'site-c') ORDER BY user_id;
SELECT wg_set_peer_routes(pg_temp.id('site-a'), '{192.168.77.0/25}');

-- Registering an interface whose prefix a peer of another interface
-- routes is refused with 23P01, naming the route and its peer.
SELECT wg_set_peer_routes(pg_temp.id('site-c'), '{fd79::/48}');
SELECT pg_temp.try_full('SELECT wg_add_interface(''wgr3'', ''198.51.100.12:51822'',
                         ''192.168.77.1/24'', listen_port => 51822)');
SELECT pg_temp.try('SELECT wg_add_interface(''wgr3'', ''198.51.100.12:51822'',
                    ''10.249.0.1/24'', address6 => ''fd79::1/64'', listen_port => 51822)');
SELECT count(*) AS no_wgr3 FROM interface WHERE name = 'wgr3';
-- no clash: registered
SELECT name FROM wg_add_interface('wgr3', '198.51.100.12:51822', '10.249.0.1/24',
                                  address6 => 'fd7a::1/64', listen_port => 51822);
SELECT cardinality(wg_set_peer_routes(pg_temp.id('site-c'),
       (SELECT array_agg(format('172.20.%s.0/24', g)::cidr) FROM generate_series(1, 64) g)))
       AS c_routes_again;

-- NULL and an empty array both remove them, queued once.
DELETE FROM queue;
SELECT wg_set_peer_routes(pg_temp.id('site-c'), NULL) IS NULL AS none;
SELECT routes IS NULL AS c_none FROM peer WHERE user_id = 'site-c';
SELECT * FROM pg_temp.changes('site-c');
SELECT wg_set_peer_routes(pg_temp.id('site-c'), '{}') IS NULL AS none_again;
SELECT count(*) AS changes FROM queue;

------------------------------------------------------------------------------
-- Statuses: a suspended or expired peer keeps its routes reserved; a
-- revoked one gives them up and can be given none.
------------------------------------------------------------------------------

DELETE FROM queue;
SELECT status FROM wg_suspend_peer(pg_temp.id('site-b'));
SELECT pg_temp.try_full(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-c'),
                               '{192.168.78.0/24}'));
-- its routes may change while suspended: nothing queued until it resumes
DELETE FROM queue;
SELECT wg_set_peer_routes(pg_temp.id('site-b'), '{192.168.78.0/24, 192.168.79.0/24}');
SELECT count(*) AS changes FROM queue;
SELECT status FROM wg_resume_peer(pg_temp.id('site-b'));
SELECT * FROM pg_temp.changes('site-b');
-- expired: still reserved, and settable
UPDATE peer SET expires_at = now() - interval '1 second' WHERE user_id = 'site-b';
SELECT wg_expire_peers() AS expired;
SELECT pg_temp.try(format('SELECT wg_set_peer_routes(%L, %L)', pg_temp.id('site-c'),
                          '{192.168.79.0/24}'));
SELECT wg_set_peer_routes(pg_temp.id('site-b'), '{192.168.78.0/24}');
-- revoked: the route is free for another peer; the revoked peer is refused
SELECT status FROM wg_revoke_peer(pg_temp.id('site-b'));
SELECT wg_set_peer_routes(pg_temp.id('site-c'), '{192.168.78.0/24}');
SELECT pg_temp.try(format('SELECT wg_set_peer_routes(%L, %L)', peer_id, '{192.168.99.0/24}'))
FROM peer WHERE user_id = 'site-b';
SELECT pg_temp.try(format('SELECT wg_set_peer_allowed_ips(%L, %L)', peer_id, '{10.0.0.0/8}'))
FROM peer WHERE user_id = 'site-b';

------------------------------------------------------------------------------
-- An application role with the README's grants.
------------------------------------------------------------------------------

CREATE ROLE wgpeer_routes_app;
GRANT USAGE ON SCHEMA wgpeer TO wgpeer_routes_app;
GRANT EXECUTE ON FUNCTION wgpeer.wg_set_peer_allowed_ips(uuid, cidr[]),
	wgpeer.wg_set_peer_routes(uuid, cidr[]) TO wgpeer_routes_app;
CREATE TEMP TABLE ids AS SELECT pg_temp.id('site-c') AS c;
GRANT SELECT ON ids TO wgpeer_routes_app;
SET ROLE wgpeer_routes_app;
SELECT pg_temp.allowed(wgpeer.wg_set_peer_allowed_ips(c, '{10.247.0.0/24}')) FROM ids;
SELECT wgpeer.wg_set_peer_routes(c, '{192.168.80.0/24}') FROM ids;
-- but no wide route, and not the administrator's function
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_routes(%L, %L)', c, '{0.0.0.0/0}')) FROM ids;
SELECT pg_temp.try(format('SELECT wgpeer.wg_set_peer_wide_routes(%L, %L)', c, '{0.0.0.0/0}'))
FROM ids;
-- but not the table
SELECT routes FROM wgpeer.peer LIMIT 1;
RESET ROLE;
DROP OWNED BY wgpeer_routes_app;
DROP ROLE wgpeer_routes_app;

------------------------------------------------------------------------------
-- Node mode: a node's publication carries both columns.
------------------------------------------------------------------------------

SET client_min_messages = error;
SELECT wg_add_node('rtnode');
RESET client_min_messages;
SELECT 'allowed_ips' = ANY (attnames) AS has_allowed_ips,
       'routes' = ANY (attnames) AS has_routes,
       'private_key' = ANY (attnames) AS has_private_key
FROM pg_publication_tables
WHERE pubname = 'wgpeer_node_rtnode' AND tablename = 'peer';
DROP PUBLICATION wgpeer_node_rtnode;
DELETE FROM node WHERE name = 'rtnode';

SELECT wg_remove_interface('wgr', force => true);
SELECT wg_remove_interface('wgr2', force => true);
SELECT wg_remove_interface('wgr3', force => true);
