------------------------------------------------------------------------------
-- Privileges and backups
--
-- Last, so that they cover every object above.
------------------------------------------------------------------------------

-- Privileges: nothing for PUBLIC; see docs/security.md for what to grant.
-- (Every table, view and function; of the sequences, event_id_seq and
-- webhook_id_seq.  An upgrade script revokes what it adds by name:
-- test/upgrade.sh finds one it forgot.)
REVOKE ALL ON ALL TABLES IN SCHEMA wgpeer FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA wgpeer FROM PUBLIC;
REVOKE ALL ON SEQUENCE event_id_seq, webhook_id_seq FROM PUBLIC;

-- Backups: pg_dump saves the tables' rows.  (The order of the calls is
-- the order of pg_extension's extconfig: keep it, and add at the end.)
--
-- pg_dump writes the rows of an extension's tables only when the extension
-- registers them; it then restores them after CREATE EXTENSION, in the
-- order of their foreign keys, with the tables' triggers enabled.
-- Registered: what the business needs to go on, the server keys and the
-- peers with their keys, addresses, allocation state, routes, quotas,
-- traffic and usage, events, links and nodes, and the event sequence.
-- Not registered, rebuilt after a restore: the queue (the worker's
-- reconcile at start puts the interfaces in the state the peers say, and a
-- restored peer still 'creating' queues its add again), worker_state and
-- device (the worker's own records), peer_owner (lock rows, made on
-- demand) and peer_outcome (a node's reports: the node's subscription
-- copies them again).
SELECT pg_catalog.pg_extension_config_dump('interface', '');
SELECT pg_catalog.pg_extension_config_dump('pool', '');
SELECT pg_catalog.pg_extension_config_dump('free_address', '');
SELECT pg_catalog.pg_extension_config_dump('node', '');
SELECT pg_catalog.pg_extension_config_dump('peer', '');
SELECT pg_catalog.pg_extension_config_dump('quota', '');
SELECT pg_catalog.pg_extension_config_dump('config_link', '');
SELECT pg_catalog.pg_extension_config_dump('peer_watch', '');
-- A node's traffic and device reach the primary by its subscription, whose
-- initial copy brings them back (a restored row would stop it on a
-- duplicate key).
SELECT pg_catalog.pg_extension_config_dump('peer_traffic',
	$$WHERE peer_id IN (SELECT p.peer_id FROM wgpeer.peer p WHERE p.node = '')$$);
-- The devices' counters as last sampled: the base the next sample adds
-- the growth of to peer_traffic.  Without it the first sample after a
-- restore, finding no base, would add each peer's whole counter again.
SELECT pg_catalog.pg_extension_config_dump('device_peer',
	$$WHERE interface IN (SELECT i.name FROM wgpeer.interface i WHERE i.node = '')$$);
-- Events and usage within their retention (the worker deletes older ones
-- anyway); the event sequence goes on past every id ever handed out.
SELECT pg_catalog.pg_extension_config_dump('event',
	$$WHERE CASE WHEN coalesce(current_setting('wgpeer.event_retention', true), '0')
					  IN ('0', '') THEN true
				 ELSE at >= now() - current_setting('wgpeer.event_retention', true)::interval
			END$$);
SELECT pg_catalog.pg_extension_config_dump('event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('peer_usage',
	$$WHERE CASE WHEN coalesce(current_setting('wgpeer.usage_retention', true), '0')
					  IN ('0', '') THEN true
				 ELSE hour >= now() - current_setting('wgpeer.usage_retention', true)::interval
			END$$);
-- Standing subscription links (14-subscriptions.sql): only tokens' hashes.
SELECT pg_catalog.pg_extension_config_dump('subscription', '');
-- Pooled quotas and their ledger (15-user-quotas.sql).
SELECT pg_catalog.pg_extension_config_dump('user_quota', '');
SELECT pg_catalog.pg_extension_config_dump('traffic_ledger', '');
-- Webhooks: the endpoints, their secrets and cursors (a restored endpoint
-- goes on from its cursor: at least once, never a gap), and the sequence
-- of their ids.  Their rows are the administrators': REVOKE above.
SELECT pg_catalog.pg_extension_config_dump('webhook', '');
SELECT pg_catalog.pg_extension_config_dump('webhook_id_seq', '');
