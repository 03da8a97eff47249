-- A restore (pg_restore, psql) inserts the dumped rows with every trigger
-- enabled.  A restored row carries the time it was first written
-- (created_at, sampled_at), earlier than the restoring transaction: its
-- 'created' event, its queued add and its usage happened already and
-- must not happen again.  Rows written now (the API, the worker) and rows
-- applied by logical replication on a node behave as before.
SET search_path = wgpeer, public;
\set VERBOSITY default

SELECT name FROM wg_add_interface('wgrestore', '198.51.100.9:51820', '10.219.0.1/24');

-- through the API: a 'created' event and a queued add
SELECT count(*) FROM wg_create_peer('rst-api', interface => 'wgrestore');
SELECT kind FROM event WHERE user_id = 'rst-api';
SELECT q.op FROM queue q JOIN peer p USING (peer_id) WHERE p.user_id = 'rst-api';

-- as a restore writes them: peers created a day ago, in every state
INSERT INTO peer (user_id, interface, address, public_key, private_key,
				  config_name, status, created_at, expires_at, suspended_at,
				  revoked_at, released_at)
SELECT 'rst-' || v.s, 'wgrestore', ('10.219.0.' || (10 + v.n))::inet,
	   wg_pubkey(k.k), k.k, 'c', v.s, now() - interval '1 day',
	   now() + interval '1 month',
	   CASE WHEN v.s = 'suspended' THEN now() END,
	   CASE WHEN v.s = 'revoked' THEN now() END,
	   CASE WHEN v.s = 'revoked' THEN now() END
FROM (VALUES (1, 'active'), (2, 'suspended'), (3, 'revoked'), (4, 'creating')) v(n, s)
CROSS JOIN LATERAL (SELECT wg_genkey() AS k WHERE v.n > 0) k;
-- no event; only the peer still creating queues its add
SELECT count(*) AS events FROM event WHERE user_id LIKE 'rst-%' AND user_id <> 'rst-api';
SELECT p.user_id, q.op FROM queue q JOIN peer p USING (peer_id)
WHERE p.user_id LIKE 'rst-%' ORDER BY 1;

-- a restored traffic total adds no usage (the usage is restored too) ...
INSERT INTO peer_traffic (peer_id, rx_bytes, tx_bytes, sampled_at)
SELECT peer_id, 1000, 2000, now() - interval '2 hours' FROM peer
WHERE user_id = 'rst-active';
INSERT INTO peer_usage (peer_id, hour, rx_bytes, tx_bytes)
SELECT peer_id, date_trunc('hour', now() - interval '2 hours'), 1000, 2000
FROM peer WHERE user_id = 'rst-active';
-- ... a sample of the worker, written now, counts as before
INSERT INTO peer_traffic (peer_id, rx_bytes, tx_bytes, sampled_at)
SELECT peer_id, 300, 400, now() FROM peer WHERE user_id = 'rst-api';
UPDATE peer_traffic t SET rx_bytes = 1500, sampled_at = now()
FROM peer p WHERE p.peer_id = t.peer_id AND p.user_id = 'rst-active';
SELECT p.user_id, sum(u.rx_bytes) AS rx, sum(u.tx_bytes) AS tx
FROM peer_usage u JOIN peer p USING (peer_id)
WHERE p.user_id LIKE 'rst-%' GROUP BY 1 ORDER BY 1;

-- logical replication applying a node's peers: an active peer is queued
SET session_replication_role = replica;
INSERT INTO peer (user_id, interface, address, public_key, config_name,
				  status, created_at)
SELECT 'rst-replicated', 'wgrestore', '10.219.0.20', wg_pubkey(wg_genkey()), 'c',
	   'active', now() - interval '1 day';
RESET session_replication_role;
SELECT q.op FROM queue q JOIN peer p USING (peer_id) WHERE p.user_id = 'rst-replicated';

-- what pg_dump saves: the registered tables and their filters
SELECT c::regclass AS config_table, cond <> '' AS filtered
FROM pg_extension e, unnest(e.extconfig, e.extcondition) u(c, cond)
WHERE e.extname = 'wgpeer' ORDER BY c::regclass::text;

SELECT wg_remove_interface('wgrestore', force => true);
