-- What the primary takes from a node's subscription (wg_node_row_check):
-- this session stands in for the apply worker of the subscription
-- wgpeer_from_fra1, with that subscription's replication origin set up
-- and session_replication_role = replica, as the worker runs.  The real
-- thing, over logical replication, is test/node_test.sh.
SET search_path = wgpeer, public;
SET client_min_messages = error;	-- no wal_level warnings from publications
\set VERBOSITY terse

SELECT wg_add_node('fra1'), wg_add_node('ams1');
SELECT name FROM wg_add_interface('wgfra', 'fra1.example.com:51820', '10.231.0.1/24',
	node => 'fra1');
SELECT name FROM wg_add_interface('wgams', 'ams1.example.com:51820', '10.232.0.1/24',
	node => 'ams1');
SELECT name FROM wg_add_interface('wghere', 'db.example.com:51820', '10.233.0.1/24');
CREATE TEMP TABLE nr AS
SELECT (SELECT peer_id FROM wg_create_peer('nr-f', interface => 'wgfra')) AS f,
	   (SELECT peer_id FROM wg_create_peer('nr-f2', interface => 'wgfra',
			duration => '30 days', starts_on_handshake => true)) AS f2,
	   (SELECT peer_id FROM wg_create_peer('nr-a', interface => 'wgams',
			duration => '30 days', starts_on_handshake => true)) AS a,
	   (SELECT peer_id FROM wg_create_peer('nr-h', interface => 'wghere')) AS h;
SELECT quota_bytes FROM wg_set_peer_quota((SELECT f FROM nr), 1000000, 'month');
-- what node ams1 reported, written as its subscription would
INSERT INTO worker_state (interface, node, last_success_at) VALUES ('wgams', 'ams1', now());
INSERT INTO peer_outcome (peer_id, interface, public_key, outcome, at, node)
SELECT a, 'wgams', 'k', 'refused', now(), 'ams1' FROM nr;

-- Subscriptions that never connect; each has its replication origin.
CREATE SUBSCRIPTION wgpeer_from_fra1 CONNECTION 'dbname=none'
	PUBLICATION wgpeer_node_outbound WITH (connect = false, slot_name = NONE);
CREATE SUBSCRIPTION something_else CONNECTION 'dbname=none'
	PUBLICATION wgpeer_node_outbound WITH (connect = false, slot_name = NONE);

-- Written here, nothing is checked: wg_sending_node() is NULL.
SELECT wg_sending_node() IS NULL AS local;
SELECT pg_replication_origin_session_setup('pg_' || oid)
FROM pg_subscription WHERE subname = 'wgpeer_from_fra1';
SELECT wg_sending_node();
SET session_replication_role = replica;

-- Accepted: fra1's own peer applied, its traffic and device state.
INSERT INTO peer_outcome (peer_id, interface, public_key, outcome, at, node)
SELECT f, 'wgfra', (SELECT public_key FROM peer WHERE peer_id = f), 'applied', now(), 'fra1'
FROM nr;
SELECT status FROM peer, nr WHERE peer_id = f;
INSERT INTO peer_traffic (peer_id, rx_bytes, tx_bytes, latest_handshake, sampled_at, node)
SELECT f, 1000, 2000, now(), now(), 'fra1' FROM nr;
INSERT INTO device (interface, sampled_at, node) VALUES ('wgfra', now(), 'fra1');
INSERT INTO worker_state (interface, last_success_at, node) VALUES ('wgfra', now(), 'fra1');
UPDATE peer_traffic SET rx_bytes = 5000, sampled_at = now() + interval '1 second'
WHERE node = 'fra1';
SELECT rx_bytes, tx_bytes FROM peer_traffic, nr WHERE peer_id = f;

-- Dropped: each is an event node_rejected, none raises an error.
-- another node's interface, the primary's own one, an unknown one
INSERT INTO peer_outcome (peer_id, interface, public_key, outcome, at, node)
SELECT a, 'wgams', (SELECT public_key FROM peer WHERE peer_id = a), 'applied', now(), 'fra1'
FROM nr;
INSERT INTO peer_outcome (peer_id, interface, public_key, outcome, at, node)
SELECT h, 'wghere', (SELECT public_key FROM peer WHERE peer_id = h), 'expired',
	'infinity', 'fra1' FROM nr;
INSERT INTO device (interface, sampled_at, node) VALUES ('wgnone', now(), 'fra1');
-- its own interface, another's peer
INSERT INTO peer_outcome (peer_id, interface, public_key, outcome, at, node)
SELECT a, 'wgfra', (SELECT public_key FROM peer WHERE peer_id = a), 'applied', now(), 'fra1'
FROM nr;
-- another node's peer's traffic: its plan would start a day ago
INSERT INTO peer_traffic (peer_id, latest_handshake, sampled_at, node)
SELECT a, now() - interval '1 day', now(), 'fra1' FROM nr;
-- a row naming another node; another node's rows changed or deleted
INSERT INTO device_peer (interface, public_key, allowed_ips, rx_bytes, tx_bytes,
	persistent_keepalive, node) VALUES ('wgfra', 'k', '10.231.0.2/32', 0, 0, 0, 'ams1');
UPDATE worker_state SET last_error = 'forged' WHERE node = 'ams1';
DELETE FROM peer_outcome WHERE node = 'ams1';
-- times: a handshake tomorrow, a sample tomorrow, an outcome before the peer
INSERT INTO peer_traffic (peer_id, latest_handshake, sampled_at, node)
SELECT f2, now() + interval '1 day', now(), 'fra1' FROM nr;
UPDATE peer_traffic SET sampled_at = now() + interval '1 day' WHERE node = 'fra1';
INSERT INTO peer_outcome (peer_id, interface, public_key, outcome, at, node)
SELECT f2, 'wgfra', 'k', 'applied', now() - interval '1 hour', 'fra1' FROM nr;
-- counters: negative, 999,999,999,999 bytes a minute after creation
UPDATE peer_traffic SET rx_bytes = -1 WHERE node = 'fra1';
UPDATE peer_traffic SET tx_bytes = 999999999999, sampled_at = now() + interval '2 seconds'
WHERE node = 'fra1';
INSERT INTO device_peer (interface, public_key, allowed_ips, rx_bytes, tx_bytes,
	persistent_keepalive, node) VALUES ('wgfra', 'k', '10.231.0.2/32', -5, 0, 0, 'fra1');
-- the same reason twice in one transaction: one event
BEGIN;
INSERT INTO device_peer (interface, public_key, allowed_ips, rx_bytes, tx_bytes,
	persistent_keepalive, node) VALUES ('wgams', 'k1', '10.232.0.2/32', 0, 0, 0, 'fra1'),
	('wgams', 'k2', '10.232.0.3/32', 0, 0, 0, 'fra1');
INSERT INTO worker_state (interface, node) VALUES ('wghere', 'fra1');
COMMIT;

-- Nothing changed.
SELECT p.user_id, p.status, p.plan_pending IS NOT NULL AS plan_waits
FROM peer p WHERE p.user_id LIKE 'nr-%' ORDER BY p.user_id;
SELECT t.peer_id = nr.f AS fra1s, t.node, t.rx_bytes, t.tx_bytes
FROM peer_traffic t, nr WHERE t.peer_id IN (nr.f, nr.f2, nr.a, nr.h) ORDER BY t.node;
SELECT interface, node, last_error FROM worker_state
WHERE interface IN ('wgfra', 'wgams', 'wghere', 'wgnone') ORDER BY interface, node;
SELECT interface, node FROM device
WHERE interface IN ('wgfra', 'wgams', 'wghere', 'wgnone') ORDER BY interface, node;
SELECT count(*) AS device_peers FROM device_peer WHERE interface IN ('wgfra', 'wgams');
SELECT count(*) AS ams1_outcomes FROM peer_outcome WHERE node = 'ams1';

SELECT e.detail->>'table' AS "table", e.detail->>'operation' AS op, e.interface,
	   e.detail->>'reason' AS reason
FROM event e WHERE e.kind = 'node_rejected' AND e.detail->>'node' = 'fra1'
ORDER BY e.event_id;

-- fra1 may delete its own rows
DELETE FROM device WHERE node = 'fra1';
SELECT count(*) AS fra1_devices FROM device WHERE node = 'fra1';

-- A subscription that is not wgpeer_from_<node> is nobody's.
SELECT pg_replication_origin_session_reset();
SELECT pg_replication_origin_session_setup('pg_' || oid)
FROM pg_subscription WHERE subname = 'something_else';
SELECT wg_sending_node() = '' AS nobody;
INSERT INTO device (interface, sampled_at, node) VALUES ('wghere', now(), '');
SELECT count(*) AS here_devices FROM device WHERE interface = 'wghere';
SELECT e.detail->>'node' AS node, e.interface, e.detail->>'reason' AS reason
FROM event e WHERE e.kind = 'node_rejected' AND e.detail->>'node' = '';

-- Moving an interface: the old node's rows go, a quota keeps what was used.
SELECT pg_replication_origin_session_reset();
RESET session_replication_role;
SELECT used_bytes FROM wg_user_usage('nr-f');
INSERT INTO device (interface, sampled_at, node) VALUES ('wgfra', now(), 'fra1');
UPDATE interface SET node = 'ams1' WHERE name = 'wgfra';
SELECT (SELECT count(*) FROM device WHERE interface = 'wgfra') AS devices,
	   (SELECT count(*) FROM worker_state WHERE interface = 'wgfra') AS states,
	   (SELECT count(*) FROM peer_traffic, nr WHERE peer_id = f) AS traffic,
	   (SELECT count(*) FROM peer_outcome, nr WHERE peer_id = f) AS outcomes;
SELECT used_bytes FROM wg_user_usage('nr-f');
INSERT INTO peer_traffic (peer_id, rx_bytes, tx_bytes, sampled_at, node)
SELECT f, 100, 0, now(), 'ams1' FROM nr;
SELECT used_bytes FROM wg_user_usage('nr-f');

DROP SUBSCRIPTION wgpeer_from_fra1;
DROP SUBSCRIPTION something_else;
SELECT count(*) FROM (SELECT wg_remove_interface(name, force => true)
	FROM interface WHERE name IN ('wgfra', 'wgams', 'wghere')) r;
