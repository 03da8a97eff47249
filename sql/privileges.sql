-- Privileges: nothing for PUBLIC; the README's grants give an application
-- role the API and the key-free view, and nothing else.
SET search_path = wgpeer, public;
\set VERBOSITY terse

CREATE ROLE wgpeer_app LOGIN;
CREATE ROLE wgpeer_nobody LOGIN;

-- Every API function runs as its owner, with a fixed search_path.
SELECT p.proname, p.prosecdef AS security_definer,
       p.proconfig AS settings
FROM pg_proc p
WHERE p.pronamespace = 'wgpeer'::regnamespace AND p.proname LIKE 'wg\_%'
  AND p.proname NOT IN ('wg_genkey', 'wg_pubkey', 'wg_genpsk')
ORDER BY p.proname;
-- and nobody but the owner may call any function or touch any table
SELECT count(*) AS public_functions
FROM pg_proc p
WHERE p.pronamespace = 'wgpeer'::regnamespace
  AND has_function_privilege('wgpeer_nobody', p.oid, 'EXECUTE');
SELECT c.relname,
       has_table_privilege('wgpeer_nobody', c.oid, 'SELECT') AS can_select,
       has_table_privilege('wgpeer_nobody', c.oid, 'INSERT') AS can_insert
FROM pg_class c
WHERE c.relnamespace = 'wgpeer'::regnamespace AND c.relkind IN ('r', 'v')
ORDER BY c.relname;

-- The README's grants for an application role.
GRANT USAGE ON SCHEMA wgpeer TO wgpeer_app;
GRANT EXECUTE ON FUNCTION
	wgpeer.wg_create_peer(text, integer, text, text, text, text, interval, timestamptz, boolean, text),
	wgpeer.wg_revoke_peer(uuid),
	wgpeer.wg_renew_peer(uuid, integer, interval, timestamptz),
	wgpeer.wg_list_user_peers(text),
	wgpeer.wg_peer_config(uuid),
	wgpeer.wg_next_ip(text),
	wgpeer.wg_suspend_peer(uuid, text),
	wgpeer.wg_resume_peer(uuid),
	wgpeer.wg_rotate_peer_key(uuid, text),
	wgpeer.wg_set_peer_quota(uuid, bigint, text, timestamptz),
	wgpeer.wg_user_usage(text),
	wgpeer.wg_events(bigint, integer),
	wgpeer.wg_config_link(uuid, interval),
	wgpeer.wg_set_peer_allowed_ips(uuid, cidr[]),
	wgpeer.wg_set_peer_routes(uuid, cidr[])
	TO wgpeer_app;
GRANT SELECT ON wgpeer.peer_public TO wgpeer_app;

SET ROLE wgpeer_app;
SELECT user_id, status FROM wgpeer.wg_create_peer('app-user', interface => 'wgc');
SELECT count(*) AS visible FROM wgpeer.peer_public WHERE user_id = 'app-user';
SELECT length(wgpeer.wg_peer_config(peer_id)) > 0 AS has_config
FROM wgpeer.peer_public WHERE user_id = 'app-user';
-- a temporary object cannot hijack the functions' search_path
CREATE TEMP TABLE peer (x int);
SELECT user_id, status FROM wgpeer.wg_list_user_peers('app-user');
SELECT status, suspended_reason FROM wgpeer.wg_suspend_peer(
	(SELECT peer_id FROM wgpeer.peer_public WHERE user_id = 'app-user'), 'unpaid');
SELECT status FROM wgpeer.wg_resume_peer(
	(SELECT peer_id FROM wgpeer.peer_public WHERE user_id = 'app-user'));
SELECT wgpeer.wg_rotate_peer_key(peer_id) LIKE '[Interface]%' AS new_config
FROM wgpeer.peer_public WHERE user_id = 'app-user';
SELECT quota_bytes, period FROM wgpeer.wg_set_peer_quota(
	(SELECT peer_id FROM wgpeer.peer_public WHERE user_id = 'app-user'), 10000000000);
SELECT used_bytes, quota FROM wgpeer.wg_user_usage('app-user');
SELECT array_agg(kind ORDER BY event_id) AS events
FROM wgpeer.wg_events(0, 1000) WHERE user_id = 'app-user';
SELECT length(wgpeer.wg_config_link(peer_id)) AS link_length
FROM wgpeer.peer_public WHERE user_id = 'app-user';
SELECT wgpeer.wg_set_peer_routes(peer_id, ARRAY['192.168.90.0/24']::cidr[]) AS routes
FROM wgpeer.peer_public WHERE user_id = 'app-user';
SELECT wgpeer.wg_set_peer_allowed_ips(peer_id, ARRAY['10.0.0.0/8']::cidr[])
       LIKE '%AllowedIPs = 10.0.0.0/8%' AS split_tunnel
FROM wgpeer.peer_public WHERE user_id = 'app-user';
SELECT status FROM wgpeer.wg_revoke_peer(
	(SELECT peer_id FROM wgpeer.peer_public WHERE user_id = 'app-user'));
-- what it cannot do
SELECT private_key FROM wgpeer.peer LIMIT 1;
SELECT * FROM wgpeer.queue LIMIT 1;
SELECT * FROM wgpeer.config_link LIMIT 1;
DELETE FROM wgpeer.peer_public;
SELECT wgpeer.wg_add_interface('wgx', 'h.example:1', '10.130.0.1/24');
SELECT wgpeer.wg_remove_interface('wgc', force => true);
SELECT wgpeer.wg_expire_peers();
RESET ROLE;

SET ROLE wgpeer_nobody;
SELECT wgpeer.wg_create_peer('nobody', interface => 'wgc');
SELECT count(*) FROM wgpeer.peer_public;
RESET ROLE;

DROP OWNED BY wgpeer_app;
DROP ROLE wgpeer_app;
DROP ROLE wgpeer_nobody;
