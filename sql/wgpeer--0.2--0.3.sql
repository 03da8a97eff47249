-- wgpeer 0.2 -> 0.3
\echo Use "ALTER EXTENSION wgpeer UPDATE TO '0.3'" to load this file. \quit

-- 0.3 is the security and data-safety release.  Each section below belongs
-- to one change; keep them apart so they read (and merge) on their own.

------------------------------------------------------------------------------
-- Backups: pg_dump saves the tables' rows
------------------------------------------------------------------------------

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

-- A restore fires the tables' triggers: what belongs to a row's first
-- writing must not happen again.  A restored row carries the time it was
-- first written (a peer's created_at, a sample's sampled_at), and wgpeer's
-- own writers always write now() there: a row from an earlier transaction
-- is restored, not new (src/sql/restore.c).  wg_peer_event() then logs no
-- 'created', wg_queue_change() queues only a peer still 'creating', and a
-- restored traffic total adds no usage (the usage was restored too, and a
-- duplicate hour would stop the restore of peer_usage).  The worker writes
-- its samples with sampled_at = now(); a node's arrive row by row, by
-- replication, and are counted as before.
CREATE OR REPLACE FUNCTION wg_usage_sampled() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	IF coalesce(current_setting('wgpeer.node', true), '') <> '' THEN
		RETURN NULL;
	END IF;
	IF TG_LEVEL = 'ROW' THEN
		INSERT INTO wgpeer.peer_usage AS u (peer_id, hour, rx_bytes, tx_bytes)
		SELECT NEW.peer_id, date_trunc('hour', NEW.sampled_at),
			   greatest(NEW.rx_bytes - coalesce(OLD.rx_bytes, 0), 0),
			   greatest(NEW.tx_bytes - coalesce(OLD.tx_bytes, 0), 0)
		WHERE NEW.rx_bytes > coalesce(OLD.rx_bytes, 0)
		   OR NEW.tx_bytes > coalesce(OLD.tx_bytes, 0)
		ON CONFLICT (peer_id, hour) DO UPDATE
		SET rx_bytes = u.rx_bytes + EXCLUDED.rx_bytes,
			tx_bytes = u.tx_bytes + EXCLUDED.tx_bytes;
	ELSIF TG_OP = 'INSERT' THEN
		INSERT INTO wgpeer.peer_usage AS u (peer_id, hour, rx_bytes, tx_bytes)
		SELECT n.peer_id, date_trunc('hour', n.sampled_at), n.rx_bytes, n.tx_bytes
		FROM sampled_new n
		WHERE (n.rx_bytes > 0 OR n.tx_bytes > 0) AND n.sampled_at = now()
		ON CONFLICT (peer_id, hour) DO UPDATE
		SET rx_bytes = u.rx_bytes + EXCLUDED.rx_bytes,
			tx_bytes = u.tx_bytes + EXCLUDED.tx_bytes;
	ELSE
		INSERT INTO wgpeer.peer_usage AS u (peer_id, hour, rx_bytes, tx_bytes)
		SELECT n.peer_id, date_trunc('hour', n.sampled_at),
			   greatest(n.rx_bytes - o.rx_bytes, 0),
			   greatest(n.tx_bytes - o.tx_bytes, 0)
		FROM sampled_new n JOIN sampled_old o USING (peer_id)
		WHERE n.rx_bytes > o.rx_bytes OR n.tx_bytes > o.tx_bytes
		ON CONFLICT (peer_id, hour) DO UPDATE
		SET rx_bytes = u.rx_bytes + EXCLUDED.rx_bytes,
			tx_bytes = u.tx_bytes + EXCLUDED.tx_bytes;
	END IF;
	RETURN NULL;
END
$$;

------------------------------------------------------------------------------
-- Node mode: rows from a node are checked against the node that sent them
--
-- The tables nodes publish back (device, device_peer, worker_state,
-- peer_traffic, peer_outcome) hold the writing node's name in their key,
-- so that two nodes never write the same row (an interface moved from one
-- node to another, both reporting it, stalled the subscription on a
-- duplicate key).  On the primary a row trigger checks every row a node's
-- subscription applies, against the node that subscription collects from,
-- and drops (never raises: an error stalls the subscription) what that
-- node may not write, recording it as a node_rejected event.
------------------------------------------------------------------------------

ALTER TABLE event DROP CONSTRAINT event_kind_check;
ALTER TABLE event ADD CONSTRAINT event_kind_check CHECK (kind IN (
	'created', 'activated', 'apply_failed', 'suspended', 'resumed',
	'renewed', 'plan_started', 'expiring_soon', 'expired', 'revoked',
	'key_rotated', 'quota_warning', 'quota_reached', 'connected',
	'disconnected', 'node_rejected'));

-- The node each row comes from ('' = the primary): the worker's own
-- wgpeer.node.  Rows already there belong to the node serving their
-- interface.
ALTER TABLE device ADD COLUMN node text NOT NULL
	DEFAULT coalesce(current_setting('wgpeer.node', true), '')
	CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$');
ALTER TABLE device_peer ADD COLUMN node text NOT NULL
	DEFAULT coalesce(current_setting('wgpeer.node', true), '')
	CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$');
ALTER TABLE worker_state ADD COLUMN node text NOT NULL
	DEFAULT coalesce(current_setting('wgpeer.node', true), '')
	CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$');
ALTER TABLE peer_traffic ADD COLUMN node text NOT NULL
	DEFAULT coalesce(current_setting('wgpeer.node', true), '')
	CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$');
ALTER TABLE peer_outcome ADD COLUMN node text NOT NULL
	DEFAULT coalesce(current_setting('wgpeer.node', true), '')
	CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$');
UPDATE device d SET node = i.node FROM interface i
	WHERE i.name = d.interface AND d.node <> i.node;
UPDATE device_peer d SET node = i.node FROM interface i
	WHERE i.name = d.interface AND d.node <> i.node;
UPDATE worker_state s SET node = i.node FROM interface i
	WHERE i.name = s.interface AND s.node <> i.node;
UPDATE peer_traffic t SET node = p.node FROM peer p
	WHERE p.peer_id = t.peer_id AND t.node <> p.node;
UPDATE peer_outcome o SET node = i.node FROM interface i
	WHERE i.name = o.interface AND o.node <> i.node;
COMMENT ON COLUMN device.node IS 'The node that wrote the row; empty for this server itself';
COMMENT ON COLUMN device_peer.node IS 'The node that wrote the row; empty for this server itself';
COMMENT ON COLUMN worker_state.node IS 'The node that wrote the row; empty for this server itself';
COMMENT ON COLUMN peer_traffic.node IS 'The node that wrote the row; empty for this server itself';
COMMENT ON COLUMN peer_outcome.node IS 'The node that wrote the row; empty for this server itself';
-- interface_status groups by worker_state's key: for as long as the key
-- changes, it groups by the columns themselves
CREATE OR REPLACE VIEW interface_status AS
	SELECT i.name AS interface,
		   count(q.change_id) AS backlog,
		   min(q.queued_at) AS oldest_pending,
		   max(q.attempts) AS attempts,
		   s.last_success_at, s.last_error, s.last_error_at, s.retry_at,
		   count(q.change_id) FILTER (WHERE q.quarantined_until IS NOT NULL)
			   AS quarantined,
		   (array_agg(q.last_error ORDER BY q.change_id DESC)
				FILTER (WHERE q.quarantined_until IS NOT NULL))[1]
			   AS quarantine_error,
		   s.settings_error, s.settings_error_at
	FROM interface i
	LEFT JOIN queue q ON q.interface = i.name
	LEFT JOIN worker_state s ON s.interface = i.name
	GROUP BY i.name, s.last_success_at, s.last_error, s.last_error_at, s.retry_at,
		s.settings_error, s.settings_error_at;
-- the keys (and so the replica identities) name the node
ALTER TABLE device DROP CONSTRAINT device_pkey,
	ADD PRIMARY KEY (interface, node);
ALTER TABLE device_peer DROP CONSTRAINT device_peer_pkey,
	ADD PRIMARY KEY (interface, public_key, node);
ALTER TABLE worker_state DROP CONSTRAINT worker_state_pkey,
	ADD PRIMARY KEY (interface, node);
ALTER TABLE peer_traffic DROP CONSTRAINT peer_traffic_pkey,
	ADD PRIMARY KEY (peer_id, node);
ALTER TABLE peer_outcome DROP CONSTRAINT peer_outcome_pkey,
	ADD PRIMARY KEY (peer_id, node);

-- Which node's subscription is applying the current row (NULL: not
-- replicated; '': replicated, but not by a wgpeer_from_<node> subscription).
CREATE FUNCTION wg_sending_node() RETURNS text
	AS 'MODULE_PATHNAME', 'wg_sending_node'
	LANGUAGE C STABLE;
COMMENT ON FUNCTION wg_sending_node() IS
	'The node whose subscription applies the current row (for wgpeer''s triggers)';
CREATE FUNCTION wg_first_in_transaction(key text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'wg_first_in_transaction'
	LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION wg_first_in_transaction(text) IS
	'True the first time the current transaction passes key (for wgpeer''s triggers)';

-- The check.  A node may write rows naming itself, for interfaces (and
-- their peers) it serves, with times that are not in the future (a minute
-- of clock difference allowed) nor before the peer existed, and traffic
-- that grows no faster than 40 Gbit/s in each direction, well above what
-- one WireGuard peer carries.  A node may delete its own rows.  Rows this
-- cluster writes itself are not checked (the trigger fires only where
-- replication applies rows), nor anything on a node.  Each rejection is
-- an event node_rejected, one per node, table, interface and reason in
-- each replicated transaction (a search of the event log per row would
-- make a sample of thousands of rows take minutes).
CREATE FUNCTION wg_node_row_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	sender text := wgpeer.wg_sending_node();
	skew constant interval := interval '1 minute';
	rate constant numeric := 5000000000;	-- bytes per second, each way
	ifname text;
	served text;
	reason text;
	p record;
	since timestamptz;
	seconds numeric;
	grown numeric;
BEGIN
	-- written here, or on a node (where they come from its own worker, or
	-- from cleaning up after the primary's rows its subscription applies)
	IF sender IS NULL OR current_setting('wgpeer.node', true) <> '' THEN
		RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
	END IF;

	IF sender = '' THEN
		reason := 'not sent by a wgpeer node subscription';
	ELSIF TG_OP <> 'INSERT' AND OLD.node <> sender THEN
		reason := 'row of another node';
	ELSIF TG_OP = 'DELETE' THEN
		RETURN OLD;
	ELSIF NEW.node <> sender THEN
		reason := 'row names another node';
	END IF;

	IF reason IS NULL THEN
		-- the interface the row is about, and its peer
		IF TG_TABLE_NAME = 'peer_traffic' THEN
			SELECT pp.interface, pp.created_at, pp.plan_pending INTO p
				FROM wgpeer.peer pp WHERE pp.peer_id = NEW.peer_id;
			IF NOT FOUND THEN
				reason := 'unknown peer';
			END IF;
			ifname := p.interface;
		ELSE
			ifname := NEW.interface;
			IF TG_TABLE_NAME = 'peer_outcome' THEN
				-- may arrive before the peer's creation is visible here:
				-- the outcome then counts only for a peer of its interface
				SELECT pp.interface, pp.created_at INTO p
					FROM wgpeer.peer pp WHERE pp.peer_id = NEW.peer_id;
				IF FOUND AND p.interface <> ifname THEN
					reason := 'peer not on the interface';
				END IF;
			END IF;
		END IF;
	END IF;

	IF reason IS NULL THEN
		-- a new row waits for a move of its interface to commit, which
		-- removes the rows of the node the interface leaves
		IF TG_OP = 'INSERT' THEN
			SELECT i.node INTO served FROM wgpeer.interface i
				WHERE i.name = ifname FOR KEY SHARE;
		ELSE
			SELECT i.node INTO served FROM wgpeer.interface i WHERE i.name = ifname;
		END IF;
		IF NOT FOUND THEN
			reason := 'unknown interface';
		ELSIF served <> sender THEN
			reason := 'interface served by another node';
		END IF;
	END IF;

	IF reason IS NULL THEN
		CASE TG_TABLE_NAME
		WHEN 'device' THEN
			IF NEW.sampled_at > now() + skew OR NEW.reconciled_at > now() + skew THEN
				reason := 'time in the future';
			END IF;
		WHEN 'worker_state' THEN
			IF NEW.last_success_at > now() + skew OR NEW.last_error_at > now() + skew THEN
				reason := 'time in the future';
			END IF;
		WHEN 'device_peer' THEN
			IF NEW.latest_handshake > now() + skew THEN
				reason := 'time in the future';
			ELSIF NEW.rx_bytes < 0 OR NEW.tx_bytes < 0 THEN
				reason := 'negative counter';
			END IF;
		WHEN 'peer_outcome' THEN
			IF NEW.at > now() + skew THEN
				reason := 'time in the future';
			ELSIF p.created_at IS NOT NULL AND NEW.at < p.created_at - skew THEN
				reason := 'time before the peer existed';
			END IF;
		WHEN 'peer_traffic' THEN
			IF NEW.sampled_at > now() + skew OR NEW.latest_handshake > now() + skew THEN
				reason := 'time in the future';
			ELSIF NEW.sampled_at < p.created_at - skew
				  OR (p.plan_pending IS NOT NULL
					  AND NEW.latest_handshake < p.created_at - skew) THEN
				-- (an adopted peer may show a handshake from before; it
				-- matters where the first handshake starts the plan)
				reason := 'time before the peer existed';
			ELSIF NEW.rx_bytes < 0 OR NEW.tx_bytes < 0 THEN
				reason := 'negative counter';
			ELSE
				-- (IF stops at the first THEN: no CASE in its condition)
				IF TG_OP = 'UPDATE' THEN
					since := OLD.sampled_at;
					grown := greatest(NEW.rx_bytes - OLD.rx_bytes,
									  NEW.tx_bytes - OLD.tx_bytes);
				ELSE
					since := p.created_at - skew;
					grown := greatest(NEW.rx_bytes, NEW.tx_bytes);
				END IF;
				seconds := greatest(extract(epoch FROM NEW.sampled_at - since), 0) + 1;
				IF grown > rate * seconds THEN
					reason := 'traffic beyond 40 Gbit/s';
				END IF;
			END IF;
		END CASE;
	END IF;

	IF reason IS NULL THEN
		RETURN NEW;
	END IF;

	-- one event per node, table, interface and reason in this transaction
	IF wgpeer.wg_first_in_transaction(concat_ws(E'\n', sender, TG_TABLE_NAME,
												 ifname, reason)) THEN
		INSERT INTO wgpeer.event (kind, interface, detail)
		VALUES ('node_rejected', ifname,
				jsonb_build_object('node', sender, 'reason', reason,
								   'table', TG_TABLE_NAME, 'operation', TG_OP,
								   'row', to_jsonb(CASE WHEN TG_OP = 'DELETE'
														THEN OLD ELSE NEW END)));
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION wg_node_row_check() IS
	'Drop what a node''s subscription sends that the node may not write (node_rejected events)';
CREATE TRIGGER node_row_check BEFORE INSERT OR UPDATE OR DELETE ON device
	FOR EACH ROW EXECUTE FUNCTION wg_node_row_check();
CREATE TRIGGER node_row_check BEFORE INSERT OR UPDATE OR DELETE ON device_peer
	FOR EACH ROW EXECUTE FUNCTION wg_node_row_check();
CREATE TRIGGER node_row_check BEFORE INSERT OR UPDATE OR DELETE ON worker_state
	FOR EACH ROW EXECUTE FUNCTION wg_node_row_check();
CREATE TRIGGER node_row_check BEFORE INSERT OR UPDATE OR DELETE ON peer_traffic
	FOR EACH ROW EXECUTE FUNCTION wg_node_row_check();
CREATE TRIGGER node_row_check BEFORE INSERT OR UPDATE OR DELETE ON peer_outcome
	FOR EACH ROW EXECUTE FUNCTION wg_node_row_check();
ALTER TABLE device ENABLE REPLICA TRIGGER node_row_check;
ALTER TABLE device_peer ENABLE REPLICA TRIGGER node_row_check;
ALTER TABLE worker_state ENABLE REPLICA TRIGGER node_row_check;
ALTER TABLE peer_traffic ENABLE REPLICA TRIGGER node_row_check;
ALTER TABLE peer_outcome ENABLE REPLICA TRIGGER node_row_check;

-- An outcome counts for the peer of its node and interface only.
CREATE OR REPLACE FUNCTION wg_outcome_arrived() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	IF NEW.outcome = 'applied' THEN
		UPDATE wgpeer.peer p SET status = 'active'
			WHERE p.peer_id = NEW.peer_id AND p.status = 'creating'
			  AND p.public_key = NEW.public_key
			  AND p.node = NEW.node AND p.interface = NEW.interface;
		IF FOUND THEN
			PERFORM pg_notify('wgpeer', json_build_object(
						'peer_id', p.peer_id, 'user_id', p.user_id,
						'interface', p.interface, 'status', p.status)::text)
				FROM wgpeer.peer p WHERE p.peer_id = NEW.peer_id;
		END IF;
	ELSIF NEW.outcome = 'expired' THEN
		UPDATE wgpeer.peer p SET status = 'expired'
			WHERE p.peer_id = NEW.peer_id AND p.status IN ('creating', 'active')
			  AND p.expires_at <= NEW.at
			  AND p.node = NEW.node AND p.interface = NEW.interface;
	ELSIF NEW.outcome = 'refused' AND (TG_OP = 'INSERT' OR OLD.outcome <> 'refused') THEN
		-- the node's first refusal; its retries are not news
		INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
		SELECT 'apply_failed', p.peer_id, p.user_id, p.interface,
			   jsonb_build_object('error', NEW.error, 'node', p.node)
		FROM wgpeer.peer p
		WHERE p.peer_id = NEW.peer_id
		  AND p.node = NEW.node AND p.interface = NEW.interface;
	END IF;
	RETURN NULL;
END
$$;

-- The first handshake a node reports starts the plan of its own peer only.
CREATE OR REPLACE FUNCTION wg_first_handshake() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	UPDATE wgpeer.peer p
		SET expires_at = NEW.latest_handshake + p.plan_pending, plan_pending = NULL
		WHERE p.peer_id = NEW.peer_id AND p.node = NEW.node
		  AND p.plan_pending IS NOT NULL
		  AND p.status IN ('creating', 'active', 'suspended');
	RETURN NULL;
END
$$;

-- An interface moved to another node takes its peers along and leaves
-- the old node's rows behind: they go (the new node writes its own), and
-- a quota's base moves down by the traffic counted there, so that what
-- was used this period stays used.
CREATE OR REPLACE FUNCTION wg_interface_node_moved() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	UPDATE wgpeer.peer p SET node = NEW.node
		WHERE p.interface = NEW.name AND p.node <> NEW.node;
	UPDATE wgpeer.quota q SET base_bytes = q.base_bytes - t.bytes
		FROM (SELECT t.peer_id, sum(t.rx_bytes + t.tx_bytes)::bigint AS bytes
			  FROM wgpeer.peer_traffic t JOIN wgpeer.peer p USING (peer_id)
			  WHERE p.interface = NEW.name AND t.node <> NEW.node
			  GROUP BY t.peer_id) t
		WHERE q.peer_id = t.peer_id;
	DELETE FROM wgpeer.peer_traffic t USING wgpeer.peer p
		WHERE p.peer_id = t.peer_id AND p.interface = NEW.name AND t.node <> NEW.node;
	DELETE FROM wgpeer.peer_outcome o WHERE o.interface = NEW.name AND o.node <> NEW.node;
	DELETE FROM wgpeer.device_peer d WHERE d.interface = NEW.name AND d.node <> NEW.node;
	DELETE FROM wgpeer.device d WHERE d.interface = NEW.name AND d.node <> NEW.node;
	DELETE FROM wgpeer.worker_state s WHERE s.interface = NEW.name AND s.node <> NEW.node;
	RETURN NULL;
END
$$;

-- The readers take the rows of the node serving each interface
-- (interface_status: see its last definition, under "Smaller fixes").

CREATE OR REPLACE VIEW peer_status AS
	SELECT p.peer_id, p.user_id, p.interface, p.address, p.address6,
		   p.status, p.expires_at, t.latest_handshake, t.endpoint,
		   coalesce(t.rx_bytes, 0) AS rx_bytes,
		   coalesce(t.tx_bytes, 0) AS tx_bytes,
		   coalesce(t.latest_handshake > now() - interval '3 minutes', false)
			   AS online,
		   t.sampled_at
	FROM peer p
	LEFT JOIN peer_traffic t ON t.peer_id = p.peer_id AND t.node = p.node;

CREATE OR REPLACE VIEW node_status AS
	SELECT n.name AS node,
		   (SELECT count(*) FROM interface i WHERE i.node = n.name) AS interfaces,
		   (SELECT count(*) FROM peer p
			WHERE p.node = n.name AND p.status IN ('creating', 'active')) AS live_peers,
		   (SELECT count(*) FROM peer p
			WHERE p.node = n.name AND p.status = 'creating') AS pending,
		   (SELECT count(*) FROM peer_outcome o JOIN interface i ON i.name = o.interface
			WHERE i.node = n.name AND o.node = n.name AND o.outcome = 'refused') AS refused,
		   (SELECT max(o.at) FROM peer_outcome o JOIN interface i ON i.name = o.interface
			WHERE i.node = n.name AND o.node = n.name AND o.outcome <> 'expired')
			   AS last_outcome_at,
		   s.active AS connected,
		   pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn) AS lag_bytes,
		   r.replay_lag
	FROM node n
	LEFT JOIN pg_replication_slots s ON s.slot_name = 'wgpeer_node_' || n.name
	LEFT JOIN pg_stat_replication r ON r.application_name = 'wgpeer_node_' || n.name;

REVOKE ALL ON FUNCTION wg_sending_node(), wg_first_in_transaction(text),
	wg_node_row_check() FROM PUBLIC;

------------------------------------------------------------------------------
-- Routes: no other interface's prefixes, no reserved ranges, default
-- routes for admins only
------------------------------------------------------------------------------

-- wg_set_peer_routes() refuses routes wider than /8 (IPv4) or /32 (IPv6);
-- this one, which nobody but the administrator may call until granted,
-- also sets those (a default route for an exit peer).
CREATE FUNCTION wg_set_peer_wide_routes(peer_id uuid, routes cidr[])
RETURNS cidr[]
	AS 'MODULE_PATHNAME', 'wg_set_peer_wide_routes'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_set_peer_wide_routes IS
	'wg_set_peer_routes() for an administrator: wide and default routes too';
REVOKE ALL ON FUNCTION wg_set_peer_wide_routes(uuid, cidr[]) FROM PUBLIC;

------------------------------------------------------------------------------
-- Peers wgpeer does not manage are never touched
------------------------------------------------------------------------------

-- The keys wgpeer has put on each interface (or an admin adopted with
-- wg_import_peer), removed since or not: the apply worker and reconcile
-- change and remove only the device peers with these keys, or peers that
-- hold their wgpeer peer's own tunnel address.  A peer configured by hand
-- whose key an application brings to wg_create_peer is left as it is,
-- and that peer's addition is refused; a revoked peer's key put back by
-- hand is removed again.
CREATE TABLE managed_key (
	interface text NOT NULL REFERENCES interface ON DELETE CASCADE,
	public_key text NOT NULL,
	PRIMARY KEY (interface, public_key)
);
COMMENT ON TABLE managed_key IS
	'Keys wgpeer has put on (or adopted from) each interface';
REVOKE ALL ON managed_key FROM PUBLIC;

-- On a node, an interface removed on the primary takes its managed keys
-- with it (replication applies no cascade; see wg_interface_forgotten).
CREATE FUNCTION wg_interface_keys_forgotten() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM wgpeer.managed_key m WHERE m.interface = OLD.name;
	RETURN NULL;
END
$$;
CREATE TRIGGER interface_keys_forgotten AFTER DELETE ON interface
	FOR EACH ROW EXECUTE FUNCTION wg_interface_keys_forgotten();
ALTER TABLE interface ENABLE REPLICA TRIGGER interface_keys_forgotten;
REVOKE ALL ON FUNCTION wg_interface_keys_forgotten() FROM PUBLIC;

-- An update from 0.2 takes every key 0.2 may have put on an interface as
-- wgpeer's: those of every peer but the ones still being created, and
-- those whose removal waits.
INSERT INTO managed_key (interface, public_key)
	SELECT interface, public_key FROM peer WHERE status <> 'creating'
	UNION
	SELECT interface, public_key FROM queue WHERE op = 'remove';

------------------------------------------------------------------------------
-- Standbys and failover
------------------------------------------------------------------------------

-- The server history the database was last served on: the cluster's system
-- identifier and timeline, as the apply worker found them when it started.
-- When they change (a standby promoted, a point-in-time recovery, a
-- restore or pg_upgrade onto another cluster), the old history may have
-- made commits this database lacks: the worker then moves event_id_seq a
-- billion ids on, so that no id a consumer already read is issued again,
-- and marks every interface in stale_sweep.  A database without a row
-- (a fresh install, an update, a restore of a dump without this table's
-- rows) gets one at the worker's first start, with nothing moved.
CREATE TABLE server_history (
	only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
	system_identifier numeric NOT NULL,
	timeline bigint NOT NULL,
	since timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE server_history IS
	'The system identifier and timeline the apply worker last served this database on';

-- Interfaces whose next successful reconcile also removes the peers the
-- database does not know whose allowed IPs lie in the interface's pool (or
-- its IPv6 prefix): after a change of history only wgpeer can have put
-- them there, for peers the lost commits created.  Rebuilt, not dumped.
CREATE TABLE stale_sweep (
	interface text PRIMARY KEY REFERENCES interface ON DELETE CASCADE,
	since timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE stale_sweep IS
	'Interfaces to clear of stale peers in their pool after a promotion or restore';
REVOKE ALL ON server_history, stale_sweep FROM PUBLIC;

------------------------------------------------------------------------------
-- Smaller fixes
------------------------------------------------------------------------------

-- A peer's one-time config links go when it can no longer hand its config
-- out (revoked, expired, or its client private key gone): a token of such
-- a peer is then simply unknown, and a failed redemption costs the same
-- whatever the reason.  (Links made before 0.3 for peers already in that
-- state stay until they expire; they do not redeem either.)
CREATE FUNCTION wg_peer_links_void() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	DELETE FROM wgpeer.config_link WHERE peer_id = NEW.peer_id;
	RETURN NULL;
END
$$;
CREATE TRIGGER peer_links_void AFTER UPDATE OF status, private_key ON peer
	FOR EACH ROW
	WHEN ((NEW.status IN ('revoked', 'expired') AND OLD.status <> NEW.status)
		  OR (NEW.private_key IS NULL AND OLD.private_key IS NOT NULL))
	EXECUTE FUNCTION wg_peer_links_void();
REVOKE ALL ON FUNCTION wg_peer_links_void() FROM PUBLIC;

-- A peer's total (received plus sent) is summed in numeric and kept within
-- bigint: one peer_traffic row whose two counters add up past bigint (a
-- node's or a daemon's bogus counters) made every watch pass fail, which
-- stopped quota enforcement for every peer.  Not pinned to a search_path,
-- so that it stays inlinable: its callers are.
CREATE OR REPLACE FUNCTION wg_peer_total_bytes(peer_id uuid) RETURNS bigint
LANGUAGE sql STABLE
AS $$
	SELECT coalesce((SELECT greatest(least(t.rx_bytes::numeric + t.tx_bytes,
										   9223372036854775807), 0)::bigint
					 FROM wgpeer.peer_traffic t
					 WHERE t.peer_id = wg_peer_total_bytes.peer_id), 0)
$$;

-- The watch pass computes usage in numeric and handles each peer over a
-- quota, and each quota period that ends, in a subtransaction of its own:
-- one bad row is a warning about that peer, never a failed pass for all.
CREATE OR REPLACE FUNCTION wg_watch_peers() RETURNS void
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	r record;
	warn integer := current_setting('wgpeer.quota_warning')::integer;
	notice interval := current_setting('wgpeer.expiring_notice')::interval;
	event_retention interval := current_setting('wgpeer.event_retention')::interval;
	usage_retention interval := current_setting('wgpeer.usage_retention')::interval;
	online_after timestamptz := now() - interval '3 minutes';
BEGIN
	-- Quota periods that ended start anew; the quota lets go of the peers
	-- it suspended.  Peers a session holds are left for the next pass.
	FOR r IN SELECT q.peer_id FROM wgpeer.quota q JOIN wgpeer.peer p USING (peer_id)
			 WHERE q.period_end <= now()
			 FOR NO KEY UPDATE OF p SKIP LOCKED
	LOOP
		BEGIN
			UPDATE wgpeer.quota q
				SET period_start = wgpeer.wg_quota_period_at(q.period, q.period_anchor, now()),
					period_end = wgpeer.wg_quota_period_at(q.period, q.period_anchor, now(), 1),
					base_bytes = wgpeer.wg_peer_total_bytes(q.peer_id),
					warned_at = NULL, reached_at = NULL
				WHERE q.peer_id = r.peer_id;
			PERFORM wgpeer.wg_quota_resume(r.peer_id);
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'wgpeer could not start a new quota period for peer %: %',
				r.peer_id, SQLERRM
				USING HINT = 'The other peers were watched; this one is tried again at the next pass.';
		END;
	END LOOP;

	-- Connected: a handshake in the last 3 minutes of a live peer that was
	-- not online, newer than when it went offline (a peer resumed within 3
	-- minutes of being cut off has not connected yet); disconnected: no
	-- handshake for 3 minutes, or no longer live.
	WITH came AS (
		INSERT INTO wgpeer.peer_watch AS w (peer_id, online, online_changed_at)
		SELECT t.peer_id, true, t.latest_handshake
		FROM wgpeer.peer_traffic t JOIN wgpeer.peer p USING (peer_id)
		WHERE t.latest_handshake > online_after
		  AND p.status IN ('creating', 'active')
		ON CONFLICT (peer_id) DO UPDATE
		SET online = true, online_changed_at = EXCLUDED.online_changed_at
		WHERE NOT w.online
		  AND EXCLUDED.online_changed_at > coalesce(w.online_changed_at, '-infinity')
		RETURNING w.peer_id)
	INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
	SELECT 'connected', p.peer_id, p.user_id, p.interface,
		   jsonb_build_object('endpoint', t.endpoint,
							  'latest_handshake', t.latest_handshake)
	FROM came JOIN wgpeer.peer p USING (peer_id)
	JOIN wgpeer.peer_traffic t USING (peer_id)
	ORDER BY p.peer_id;

	WITH went AS (
		UPDATE wgpeer.peer_watch w SET online = false, online_changed_at = now()
		FROM wgpeer.peer p
		WHERE w.online AND p.peer_id = w.peer_id
		  AND (p.status NOT IN ('creating', 'active')
			   OR NOT EXISTS (SELECT FROM wgpeer.peer_traffic t
							  WHERE t.peer_id = w.peer_id
								AND t.latest_handshake > online_after))
		RETURNING w.peer_id)
	INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
	SELECT 'disconnected', p.peer_id, p.user_id, p.interface,
		   jsonb_strip_nulls(jsonb_build_object('latest_handshake', t.latest_handshake))
	FROM went JOIN wgpeer.peer p USING (peer_id)
	LEFT JOIN wgpeer.peer_traffic t USING (peer_id)
	ORDER BY p.peer_id;

	-- Quotas near or at their limit: a warning once per period, then the
	-- peer is suspended with reason 'quota'.
	-- In numeric: no quota, base or total can overflow the query that
	-- finds them, and each peer is handled on its own.
	FOR r IN SELECT q.peer_id, q.quota_bytes, q.warned_at, p.user_id, p.interface,
					p.status, wgpeer.wg_peer_total_bytes(q.peer_id)::numeric
							  - q.base_bytes AS used
			 FROM wgpeer.quota q JOIN wgpeer.peer p USING (peer_id)
			 WHERE q.reached_at IS NULL
			   AND p.status IN ('creating', 'active', 'suspended')
			   AND wgpeer.wg_peer_total_bytes(q.peer_id)::numeric - q.base_bytes >=
				   CASE WHEN q.warned_at IS NULL AND warn > 0
						THEN ceil(q.quota_bytes::numeric * warn / 100)
						ELSE q.quota_bytes END
			 ORDER BY q.peer_id
			 FOR NO KEY UPDATE OF p SKIP LOCKED
	LOOP
		BEGIN
			IF r.warned_at IS NULL AND warn > 0 THEN
				INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
				VALUES ('quota_warning', r.peer_id, r.user_id, r.interface,
						jsonb_build_object('used_bytes', r.used, 'quota_bytes', r.quota_bytes,
										   'warning_percent', warn));
				UPDATE wgpeer.quota SET warned_at = now() WHERE peer_id = r.peer_id;
			END IF;
			IF r.used >= r.quota_bytes THEN
				UPDATE wgpeer.quota SET reached_at = now() WHERE peer_id = r.peer_id;
				INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
				VALUES ('quota_reached', r.peer_id, r.user_id, r.interface,
						jsonb_build_object('used_bytes', r.used, 'quota_bytes', r.quota_bytes));
				IF r.status IN ('creating', 'active') THEN
					PERFORM wgpeer.wg_suspend_peer(r.peer_id, 'quota');
				END IF;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'wgpeer could not enforce the quota of peer %: %',
				r.peer_id, SQLERRM
				USING HINT = 'The other peers were watched; this one is tried again at the next pass.';
		END;
	END LOOP;

	-- Plans about to end: once per peer and expiry.
	IF notice > interval '0' THEN
		WITH soon AS (
			INSERT INTO wgpeer.peer_watch AS w (peer_id, expiry_noticed)
			SELECT p.peer_id, p.expires_at FROM wgpeer.peer p
			WHERE p.expires_at > now() AND p.expires_at <= now() + notice
			  AND p.status IN ('creating', 'active', 'suspended')
			ON CONFLICT (peer_id) DO UPDATE SET expiry_noticed = EXCLUDED.expiry_noticed
			WHERE w.expiry_noticed IS DISTINCT FROM EXCLUDED.expiry_noticed
			RETURNING w.peer_id)
		INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
		SELECT 'expiring_soon', p.peer_id, p.user_id, p.interface,
			   jsonb_build_object('expires_at', p.expires_at)
		FROM soon JOIN wgpeer.peer p USING (peer_id)
		ORDER BY p.expires_at, p.peer_id;
	END IF;

	-- Retention (0 keeps everything).
	IF event_retention > interval '0' THEN
		DELETE FROM wgpeer.event WHERE at < now() - event_retention;
	END IF;
	IF usage_retention > interval '0' THEN
		DELETE FROM wgpeer.peer_usage WHERE hour < now() - usage_retention;
	END IF;
END
$$;
COMMENT ON FUNCTION wg_watch_peers() IS
	'Run by the worker after each traffic sample: presence, expiry notices, quotas, retention';

-- Hung userspace daemons and failing config exports (issue 19, parts 3
-- and 4), shown per interface: since when its userspace WireGuard daemon
-- has not answered (the worker leaves it alone until it does), and why
-- the exported config files could not be brought up to date.
ALTER TABLE worker_state
	ADD COLUMN unresponsive_since timestamptz,
	ADD COLUMN export_error text,
	ADD COLUMN export_error_at timestamptz;
COMMENT ON COLUMN worker_state.unresponsive_since IS
	'Since when the interface''s userspace daemon has not answered; NULL when it answers';
COMMENT ON COLUMN worker_state.export_error IS
	'Why its files in wgpeer.export_dir could not be brought up to date, NULL when they are';
COMMENT ON COLUMN worker_state.export_error_at IS
	'Since when export_error has been set';

CREATE OR REPLACE VIEW interface_status AS
	SELECT i.name AS interface,
		   count(q.change_id) AS backlog,
		   min(q.queued_at) AS oldest_pending,
		   max(q.attempts) AS attempts,
		   s.last_success_at, s.last_error, s.last_error_at, s.retry_at,
		   count(q.change_id) FILTER (WHERE q.quarantined_until IS NOT NULL)
			   AS quarantined,
		   (array_agg(q.last_error ORDER BY q.change_id DESC)
				FILTER (WHERE q.quarantined_until IS NOT NULL))[1]
			   AS quarantine_error,
		   s.settings_error, s.settings_error_at,
		   s.unresponsive_since, s.export_error, s.export_error_at
	FROM interface i
	LEFT JOIN queue q ON q.interface = i.name
	LEFT JOIN worker_state s ON s.interface = i.name AND s.node = i.node
	GROUP BY i.name, s.interface, s.node;

------------------------------------------------------------------------------
-- Performance
------------------------------------------------------------------------------

-- An event's kind is checked by a domain, not by a CHECK constraint on the
-- table.  PostgreSQL reads a table's CHECK constraints back from their
-- stored text and plans them again for every statement that inserts (each
-- event is its own INSERT, from a trigger): that was a quarter of the
-- event log's cost on a peer's creation.  A domain's check is planned once
-- per session.  A new kind: ALTER DOMAIN event_kind DROP CONSTRAINT
-- event_kind_check, then ADD CONSTRAINT event_kind_check with the list.
CREATE DOMAIN event_kind AS text
	CONSTRAINT event_kind_check CHECK (VALUE IN (
	'created', 'activated', 'apply_failed', 'suspended', 'resumed',
	'renewed', 'plan_started', 'expiring_soon', 'expired', 'revoked',
	'key_rotated', 'quota_warning', 'quota_reached', 'connected',
	'disconnected', 'node_rejected'));
COMMENT ON DOMAIN event_kind IS 'What an event in wgpeer.event says happened';
ALTER TABLE event DROP CONSTRAINT event_kind_check;
ALTER TABLE event ALTER COLUMN kind TYPE event_kind;

------------------------------------------------------------------------------
-- Speed limits
------------------------------------------------------------------------------

-- A peer's speed limits in kbit/s, each NULL for unlimited: down_kbit to
-- the peer, up_kbit from it (docs/speed-limits.md).  They are columns of
-- the peer, so they stay through suspension, resumption, renewal and key
-- rotation, go to nodes with the peer and are dumped with it.  rate_slot
-- numbers the peer's traffic control objects on its interface (its HTB
-- class 7770:<slot>, its filters' handle); a trigger gives one to a peer
-- with a limit that holds its address, and takes it back otherwise.
ALTER TABLE peer
	ADD COLUMN down_kbit integer CHECK (down_kbit BETWEEN 8 AND 10000000),
	ADD COLUMN up_kbit integer CHECK (up_kbit BETWEEN 8 AND 10000000),
	ADD COLUMN rate_slot integer CHECK (rate_slot BETWEEN 1 AND 65534);
COMMENT ON COLUMN peer.down_kbit IS
	'Speed limit to the peer in kbit/s, NULL: unlimited (wg_set_peer_rate)';
COMMENT ON COLUMN peer.up_kbit IS
	'Speed limit from the peer in kbit/s, NULL: unlimited (wg_set_peer_rate)';
COMMENT ON COLUMN peer.rate_slot IS
	'Number of the peer''s traffic control objects on its interface (set by wgpeer)';
CREATE UNIQUE INDEX peer_rate_slot ON peer (interface, rate_slot);

-- Give a peer a slot when it has a limit and holds its address (not
-- revoked or expired), the lowest free one on its interface; take it back
-- when not.  Allocations on one interface wait for each other.
CREATE FUNCTION wg_peer_rate_slot() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	IF (NEW.down_kbit IS NULL AND NEW.up_kbit IS NULL)
		OR NEW.status IN ('revoked', 'expired') THEN
		NEW.rate_slot := NULL;
		RETURN NEW;
	END IF;
	IF NEW.rate_slot IS NOT NULL THEN
		RETURN NEW;
	END IF;
	PERFORM pg_advisory_xact_lock(hashtext('wgpeer rate_slot ' || NEW.interface));
	SELECT s INTO NEW.rate_slot FROM (
		SELECT 1 AS s
		WHERE NOT EXISTS (SELECT FROM wgpeer.peer p
						  WHERE p.interface = NEW.interface AND p.rate_slot = 1)
		UNION ALL
		SELECT p.rate_slot + 1 FROM wgpeer.peer p
		WHERE p.interface = NEW.interface AND p.rate_slot < 65534
		  AND NOT EXISTS (SELECT FROM wgpeer.peer q
						  WHERE q.interface = NEW.interface
							AND q.rate_slot = p.rate_slot + 1)) free
	ORDER BY s LIMIT 1;
	IF NEW.rate_slot IS NULL THEN
		RAISE EXCEPTION 'interface "%" has 65534 speed-limited peers, its most', NEW.interface
			USING ERRCODE = 'program_limit_exceeded',
				  HINT = 'Remove the limit of a peer there (wg_set_peer_rate with NULLs), or put the peer on another interface.';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER peer_rate_slot BEFORE INSERT OR UPDATE OF down_kbit, up_kbit, status
	ON peer FOR EACH ROW EXECUTE FUNCTION wg_peer_rate_slot();

-- The apply worker shapes again when a limit, a slot or an address
-- changes (a commit of this wakes it).
CREATE TRIGGER peer_rate_changed AFTER UPDATE OF down_kbit, up_kbit, rate_slot,
	address, address6 ON peer FOR EACH STATEMENT EXECUTE FUNCTION wg_tell_worker('rates');

ALTER DOMAIN event_kind DROP CONSTRAINT event_kind_check;
ALTER DOMAIN event_kind ADD CONSTRAINT event_kind_check CHECK (VALUE IN (
	'created', 'activated', 'apply_failed', 'suspended', 'resumed',
	'renewed', 'plan_started', 'expiring_soon', 'expired', 'revoked',
	'key_rotated', 'quota_warning', 'quota_reached', 'connected',
	'disconnected', 'node_rejected', 'rate_changed'));

-- Set a peer's speed limits (NULL: unlimited); logs rate_changed when they
-- change.
CREATE FUNCTION wg_set_peer_rate(peer_id uuid, down_kbit integer, up_kbit integer)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	p wgpeer.peer;
	down_in integer := $2;
	up_in integer := $3;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_set_peer_rate');
	IF $1 IS NULL THEN
		RAISE EXCEPTION 'peer_id cannot be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF down_in NOT BETWEEN 8 AND 10000000 THEN
		RAISE EXCEPTION 'down_kbit must be between 8 and 10000000 kbit/s, not %', down_in
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the limit to the peer in kbit/s (2000 is 2 Mbit/s), or NULL for none.';
	END IF;
	IF up_in NOT BETWEEN 8 AND 10000000 THEN
		RAISE EXCEPTION 'up_kbit must be between 8 and 10000000 kbit/s, not %', up_in
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the limit from the peer in kbit/s (1000 is 1 Mbit/s), or NULL for none.';
	END IF;
	SELECT * INTO p FROM wgpeer.peer x WHERE x.peer_id = $1 FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'peer % does not exist', $1 USING ERRCODE = 'no_data_found';
	END IF;
	IF p.status IN ('revoked', 'expired') THEN
		RAISE EXCEPTION 'peer % is %: it cannot be given a speed limit', $1, p.status
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = CASE p.status WHEN 'expired'
						 THEN 'Renew it first with wg_renew_peer().'
						 ELSE 'Create a new peer for the user.' END;
	END IF;
	IF p.down_kbit IS DISTINCT FROM down_in OR p.up_kbit IS DISTINCT FROM up_in THEN
		UPDATE wgpeer.peer x SET down_kbit = down_in, up_kbit = up_in
			WHERE x.peer_id = $1;
		INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
		VALUES ('rate_changed', p.peer_id, p.user_id, p.interface,
				jsonb_build_object('down_kbit', down_in, 'up_kbit', up_in,
								   'old_down_kbit', p.down_kbit,
								   'old_up_kbit', p.up_kbit));
	END IF;
END
$$;
COMMENT ON FUNCTION wg_set_peer_rate(uuid, integer, integer) IS
	'Set a peer''s speed limits in kbit/s, down (to it) and up (from it); NULL: unlimited';
REVOKE ALL ON FUNCTION wg_set_peer_rate(uuid, integer, integer),
	wg_peer_rate_slot() FROM PUBLIC;

CREATE OR REPLACE VIEW peer_status AS
	SELECT p.peer_id, p.user_id, p.interface, p.address, p.address6,
		   p.status, p.expires_at, t.latest_handshake, t.endpoint,
		   coalesce(t.rx_bytes, 0) AS rx_bytes,
		   coalesce(t.tx_bytes, 0) AS tx_bytes,
		   coalesce(t.latest_handshake > now() - interval '3 minutes', false)
			   AS online,
		   t.sampled_at, p.down_kbit, p.up_kbit
	FROM peer p
	LEFT JOIN peer_traffic t ON t.peer_id = p.peer_id AND t.node = p.node;

------------------------------------------------------------------------------
-- AmneziaWG
------------------------------------------------------------------------------

-- An interface is plain WireGuard or AmneziaWG (its kernel device is the
-- amneziawg module's, its clients import the AWG lines).  awg holds the
-- interface's parameters, normalised by wgpeer (every key jc, jmin, jmax,
-- s1..s4, h1..h4, and the i1..i5 that are set); peer.awg a client's own
-- junk profile (jc, jmin, jmax together, and i1..i5), laid over the
-- interface's in its config.
ALTER TABLE interface
	ADD COLUMN flavor text NOT NULL DEFAULT 'wireguard'
		CHECK (flavor IN ('wireguard', 'amneziawg')),
	ADD COLUMN awg jsonb,
	ADD CONSTRAINT interface_awg_flavor
		CHECK ((flavor = 'amneziawg') = (awg IS NOT NULL));
COMMENT ON COLUMN interface.flavor IS
	'wireguard, or amneziawg (obfuscated WireGuard: see awg)';
COMMENT ON COLUMN interface.awg IS
	'AmneziaWG parameters (jc, jmin, jmax, s1..s4, h1..h4, i1..i5); NULL for WireGuard';
ALTER TABLE peer ADD COLUMN awg jsonb;
COMMENT ON COLUMN peer.awg IS
	'This client''s own AmneziaWG junk profile (jc, jmin, jmax, i1..i5), NULL for the interface''s';

-- A change of S or H on an interface invalidates every client's config.
ALTER DOMAIN event_kind DROP CONSTRAINT event_kind_check;
ALTER DOMAIN event_kind ADD CONSTRAINT event_kind_check CHECK (VALUE IN (
	'created', 'activated', 'apply_failed', 'suspended', 'resumed',
	'renewed', 'plan_started', 'expiring_soon', 'expired', 'revoked',
	'key_rotated', 'quota_warning', 'quota_reached', 'connected',
	'disconnected', 'node_rejected', 'rate_changed', 'interface_params_changed'));

-- wg_add_interface() learns flavor => ... and awg => ...
DO $do$
DECLARE
	old regprocedure := 'wgpeer.wg_add_interface(text, text, inet, inet, text,
		integer, integer, integer, text, text, text, inet, inet, boolean,
		boolean, text, text)';
	grantees regrole[];
	grantable boolean[];
BEGIN
	SELECT array_agg(a.grantee::regrole), array_agg(a.is_grantable)
		INTO grantees, grantable
		FROM pg_proc p, aclexplode(p.proacl) a
		WHERE p.oid = old AND a.grantee <> p.proowner AND a.grantee <> 0;
	EXECUTE format('DROP FUNCTION %s', old);
	CREATE FUNCTION wgpeer.wg_add_interface(
		name text,
		endpoint text,
		address inet,
		address6 inet DEFAULT NULL,
		dns text DEFAULT NULL,
		listen_port integer DEFAULT 51820,
		mtu integer DEFAULT NULL,
		persistent_keepalive integer DEFAULT NULL,
		allowed_ips text DEFAULT '0.0.0.0/0, ::/0',
		private_key text DEFAULT NULL,
		public_key text DEFAULT NULL,
		pool_start inet DEFAULT NULL,
		pool_end inet DEFAULT NULL,
		preshared_keys boolean DEFAULT true,
		exclusive boolean DEFAULT false,
		backend text DEFAULT 'auto',
		node text DEFAULT NULL,
		flavor text DEFAULT 'wireguard',
		awg jsonb DEFAULT NULL)
	RETURNS wgpeer.interface
		AS 'MODULE_PATHNAME', 'wg_add_interface'
		LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
	REVOKE ALL ON FUNCTION wgpeer.wg_add_interface FROM PUBLIC;
	FOR i IN 1 .. coalesce(array_length(grantees, 1), 0)
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION wgpeer.wg_add_interface TO %I%s',
					   grantees[i],
					   CASE WHEN grantable[i] THEN ' WITH GRANT OPTION' ELSE '' END);
	END LOOP;
END
$do$;
COMMENT ON FUNCTION wg_add_interface IS
	'Register a WireGuard or AmneziaWG interface and its address pool (served by a node with node => ...)';

CREATE FUNCTION wg_awg_params() RETURNS jsonb
	AS 'MODULE_PATHNAME', 'wg_awg_params'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION wg_awg_params() IS
	'A fresh random, valid set of AmneziaWG parameters';

CREATE FUNCTION wg_set_interface_awg(name text, awg jsonb)
RETURNS interface
	AS 'MODULE_PATHNAME', 'wg_set_interface_awg'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_set_interface_awg(text, jsonb) IS
	'Change an AmneziaWG interface''s parameters (a change of S or H invalidates every client''s config)';

CREATE FUNCTION wg_set_peer_awg(peer_id uuid, awg jsonb)
RETURNS jsonb
	AS 'MODULE_PATHNAME', 'wg_set_peer_awg'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_set_peer_awg(uuid, jsonb) IS
	'Give a client its own AmneziaWG junk profile (jc, jmin, jmax, i1..i5); NULL: the interface''s';

REVOKE ALL ON FUNCTION wg_awg_params(), wg_set_interface_awg(text, jsonb),
	wg_set_peer_awg(uuid, jsonb) FROM PUBLIC;

------------------------------------------------------------------------------
-- Speed limits: an interface's default, and why an interface is not shaped
------------------------------------------------------------------------------

-- An interface's default speed limits (issue 24): every peer there without
-- a limit of its own in a direction takes the interface's.  A peer's
-- NULL now means "the interface's default", and 0 "unlimited whatever
-- the default is" (docs/speed-limits.md).
ALTER TABLE interface
	ADD COLUMN down_kbit integer CHECK (down_kbit BETWEEN 8 AND 10000000),
	ADD COLUMN up_kbit integer CHECK (up_kbit BETWEEN 8 AND 10000000);
COMMENT ON COLUMN interface.down_kbit IS
	'Default speed limit to its peers in kbit/s, NULL: none (wg_set_interface_rate)';
COMMENT ON COLUMN interface.up_kbit IS
	'Default speed limit from its peers in kbit/s, NULL: none (wg_set_interface_rate)';
ALTER TABLE peer
	DROP CONSTRAINT peer_down_kbit_check,
	ADD CONSTRAINT peer_down_kbit_check
		CHECK (down_kbit = 0 OR down_kbit BETWEEN 8 AND 10000000),
	DROP CONSTRAINT peer_up_kbit_check,
	ADD CONSTRAINT peer_up_kbit_check
		CHECK (up_kbit = 0 OR up_kbit BETWEEN 8 AND 10000000);
COMMENT ON COLUMN peer.down_kbit IS
	'Speed limit to the peer in kbit/s, NULL: its interface''s, 0: unlimited (wg_set_peer_rate)';
COMMENT ON COLUMN peer.up_kbit IS
	'Speed limit from the peer in kbit/s, NULL: its interface''s, 0: unlimited (wg_set_peer_rate)';

-- Why the speed limits could not be applied on an interface (someone
-- else's root qdisc, say), kept by the worker and shown in
-- interface_status instead of a warning on every pass.
ALTER TABLE worker_state
	ADD COLUMN rates_error text,
	ADD COLUMN rates_error_at timestamptz;
COMMENT ON COLUMN worker_state.rates_error IS
	'Why the speed limits could not be applied on the interface, NULL when they are';
COMMENT ON COLUMN worker_state.rates_error_at IS
	'Since when rates_error has been set';

-- Give a peer a slot when it has a limit, its own or its interface's, and
-- holds its address (not revoked or expired), the lowest free one on its
-- interface; take it back when not.  Allocations on one interface, and
-- every read of its default, wait for each other and for a change of the
-- default (wg_set_interface_rate takes the same lock), so that no peer
-- misses a default committed meanwhile.
CREATE OR REPLACE FUNCTION wg_peer_rate_slot() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	default_down integer;
	default_up integer;
BEGIN
	IF NEW.status IN ('revoked', 'expired') THEN
		NEW.rate_slot := NULL;
		RETURN NEW;
	END IF;
	-- still live with the same limits (the worker marking it active, a
	-- suspension): its slot stands, and nothing waits for the lock
	IF TG_OP = 'UPDATE' AND OLD.status NOT IN ('revoked', 'expired')
		AND NEW.down_kbit IS NOT DISTINCT FROM OLD.down_kbit
		AND NEW.up_kbit IS NOT DISTINCT FROM OLD.up_kbit THEN
		RETURN NEW;
	END IF;
	IF NEW.down_kbit IS NULL OR NEW.up_kbit IS NULL THEN
		PERFORM pg_advisory_xact_lock(hashtext('wgpeer rate_slot ' || NEW.interface));
		SELECT i.down_kbit, i.up_kbit INTO default_down, default_up
			FROM wgpeer.interface i WHERE i.name = NEW.interface;
	END IF;
	IF coalesce(NEW.down_kbit, default_down, 0) = 0
		AND coalesce(NEW.up_kbit, default_up, 0) = 0 THEN
		NEW.rate_slot := NULL;
		RETURN NEW;
	END IF;
	IF NEW.rate_slot IS NOT NULL THEN
		RETURN NEW;
	END IF;
	PERFORM pg_advisory_xact_lock(hashtext('wgpeer rate_slot ' || NEW.interface));
	SELECT s INTO NEW.rate_slot FROM (
		SELECT 1 AS s
		WHERE NOT EXISTS (SELECT FROM wgpeer.peer p
						  WHERE p.interface = NEW.interface AND p.rate_slot = 1)
		UNION ALL
		SELECT p.rate_slot + 1 FROM wgpeer.peer p
		WHERE p.interface = NEW.interface AND p.rate_slot < 65534
		  AND NOT EXISTS (SELECT FROM wgpeer.peer q
						  WHERE q.interface = NEW.interface
							AND q.rate_slot = p.rate_slot + 1)) free
	ORDER BY s LIMIT 1;
	IF NEW.rate_slot IS NULL THEN
		RAISE EXCEPTION 'interface "%" has 65534 speed-limited peers, its most', NEW.interface
			USING ERRCODE = 'program_limit_exceeded',
				  HINT = 'Remove the limit of a peer there (wg_set_peer_rate with 0 for unlimited), or put the peer on another interface.';
	END IF;
	RETURN NEW;
END
$$;
-- The apply worker shapes again when a limit, a slot or an address
-- changes, or a peer with a slot is created (a commit of this wakes it).
-- Statement triggers never fire where logical replication applies rows:
-- on a node, row triggers that only such changes fire wake it instead.
-- (peer_rate_changed, the statement trigger, is already there.)
CREATE TRIGGER peer_rate_added AFTER INSERT ON peer
	FOR EACH ROW WHEN (NEW.rate_slot IS NOT NULL)
	EXECUTE FUNCTION wg_tell_worker('rates');
ALTER TABLE peer ENABLE ALWAYS TRIGGER peer_rate_added;
CREATE TRIGGER peer_rate_changed_by_primary AFTER UPDATE ON peer
	FOR EACH ROW WHEN (OLD.down_kbit IS DISTINCT FROM NEW.down_kbit
					   OR OLD.up_kbit IS DISTINCT FROM NEW.up_kbit
					   OR OLD.rate_slot IS DISTINCT FROM NEW.rate_slot
					   OR OLD.address IS DISTINCT FROM NEW.address
					   OR OLD.address6 IS DISTINCT FROM NEW.address6)
	EXECUTE FUNCTION wg_tell_worker('rates');
ALTER TABLE peer ENABLE REPLICA TRIGGER peer_rate_changed_by_primary;
CREATE TRIGGER interface_rate_changed AFTER UPDATE OF down_kbit, up_kbit ON interface
	FOR EACH ROW WHEN (OLD.down_kbit IS DISTINCT FROM NEW.down_kbit
					   OR OLD.up_kbit IS DISTINCT FROM NEW.up_kbit)
	EXECUTE FUNCTION wg_tell_worker('rates');
ALTER TABLE interface ENABLE ALWAYS TRIGGER interface_rate_changed;

-- Set a peer's speed limits: kbit/s, NULL for its interface's default, 0
-- for unlimited whatever that is; logs rate_changed when they change.
CREATE OR REPLACE FUNCTION wg_set_peer_rate(peer_id uuid, down_kbit integer, up_kbit integer)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	p wgpeer.peer;
	down_in integer := $2;
	up_in integer := $3;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_set_peer_rate');
	IF $1 IS NULL THEN
		RAISE EXCEPTION 'peer_id cannot be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF down_in <> 0 AND down_in NOT BETWEEN 8 AND 10000000 THEN
		RAISE EXCEPTION 'down_kbit must be 0 (unlimited) or between 8 and 10000000 kbit/s, not %', down_in
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the limit to the peer in kbit/s (2000 is 2 Mbit/s), 0 for unlimited, or NULL for its interface''s default.';
	END IF;
	IF up_in <> 0 AND up_in NOT BETWEEN 8 AND 10000000 THEN
		RAISE EXCEPTION 'up_kbit must be 0 (unlimited) or between 8 and 10000000 kbit/s, not %', up_in
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the limit from the peer in kbit/s (1000 is 1 Mbit/s), 0 for unlimited, or NULL for its interface''s default.';
	END IF;
	SELECT * INTO p FROM wgpeer.peer x WHERE x.peer_id = $1 FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'peer % does not exist', $1 USING ERRCODE = 'no_data_found';
	END IF;
	IF p.status IN ('revoked', 'expired') THEN
		RAISE EXCEPTION 'peer % is %: it cannot be given a speed limit', $1, p.status
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = CASE p.status WHEN 'expired'
						 THEN 'Renew it first with wg_renew_peer().'
						 ELSE 'Create a new peer for the user.' END;
	END IF;
	IF p.down_kbit IS DISTINCT FROM down_in OR p.up_kbit IS DISTINCT FROM up_in THEN
		UPDATE wgpeer.peer x SET down_kbit = down_in, up_kbit = up_in
			WHERE x.peer_id = $1;
		INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
		VALUES ('rate_changed', p.peer_id, p.user_id, p.interface,
				jsonb_build_object('down_kbit', down_in, 'up_kbit', up_in,
								   'old_down_kbit', p.down_kbit,
								   'old_up_kbit', p.up_kbit));
	END IF;
END
$$;
COMMENT ON FUNCTION wg_set_peer_rate(uuid, integer, integer) IS
	'Set a peer''s speed limits in kbit/s, down (to it) and up (from it); NULL: its interface''s, 0: unlimited';

-- Set an interface's default speed limits (NULL: none), which every peer
-- there without its own limit in that direction takes: its peers' slots
-- follow in the same statement, set-based; logs rate_changed (without a
-- peer) when they change.
CREATE FUNCTION wg_set_interface_rate(name text, down_kbit integer, up_kbit integer)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	i wgpeer.interface;
	ifname text := $1;
	down_in integer := $2;
	up_in integer := $3;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_set_interface_rate');
	IF ifname IS NULL THEN
		RAISE EXCEPTION 'name cannot be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF down_in NOT BETWEEN 8 AND 10000000 THEN
		RAISE EXCEPTION 'down_kbit must be between 8 and 10000000 kbit/s, not %', down_in
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the default limit to the interface''s peers in kbit/s (2000 is 2 Mbit/s), or NULL for none.';
	END IF;
	IF up_in NOT BETWEEN 8 AND 10000000 THEN
		RAISE EXCEPTION 'up_kbit must be between 8 and 10000000 kbit/s, not %', up_in
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the default limit from the interface''s peers in kbit/s (1000 is 1 Mbit/s), or NULL for none.';
	END IF;
	PERFORM pg_advisory_xact_lock(hashtext('wgpeer rate_slot ' || ifname));
	SELECT * INTO i FROM wgpeer.interface x WHERE x.name = ifname FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'interface "%" is not registered with wgpeer', ifname
			USING ERRCODE = 'undefined_object',
				  HINT = 'Register it with wgpeer.wg_add_interface(); SELECT name FROM wgpeer.interface lists those that are.';
	END IF;
	IF i.down_kbit IS NOT DISTINCT FROM down_in AND i.up_kbit IS NOT DISTINCT FROM up_in THEN
		RETURN;
	END IF;
	UPDATE wgpeer.interface x SET down_kbit = down_in, up_kbit = up_in
		WHERE x.name = ifname;
	-- slots back from the peers no longer limited, then to the newly
	-- limited, the lowest free first
	UPDATE wgpeer.peer p SET rate_slot = NULL
		WHERE p.interface = ifname AND p.rate_slot IS NOT NULL
		  AND coalesce(p.down_kbit, down_in, 0) = 0
		  AND coalesce(p.up_kbit, up_in, 0) = 0;
	WITH wanting AS (
		SELECT p.peer_id, row_number() OVER (ORDER BY p.created_at, p.peer_id) AS n
		FROM wgpeer.peer p
		WHERE p.interface = ifname AND p.rate_slot IS NULL
		  AND p.status NOT IN ('revoked', 'expired')
		  AND (coalesce(p.down_kbit, down_in, 0) > 0
			   OR coalesce(p.up_kbit, up_in, 0) > 0)),
	free AS (
		SELECT s, row_number() OVER (ORDER BY s) AS n
		FROM generate_series(1, 65534) s
		WHERE s NOT IN (SELECT q.rate_slot FROM wgpeer.peer q
						WHERE q.interface = ifname AND q.rate_slot IS NOT NULL))
	UPDATE wgpeer.peer p SET rate_slot = f.s
		FROM wanting w JOIN free f USING (n)
		WHERE p.peer_id = w.peer_id;
	IF EXISTS (SELECT FROM wgpeer.peer p
			   WHERE p.interface = ifname AND p.rate_slot IS NULL
				 AND p.status NOT IN ('revoked', 'expired')
				 AND (coalesce(p.down_kbit, down_in, 0) > 0
					  OR coalesce(p.up_kbit, up_in, 0) > 0)) THEN
		RAISE EXCEPTION 'interface "%" would have more than 65534 speed-limited peers, its most', ifname
			USING ERRCODE = 'program_limit_exceeded',
				  HINT = 'Exempt peers there with wg_set_peer_rate(peer_id, 0, 0), or move peers to another interface.';
	END IF;
	INSERT INTO wgpeer.event (kind, interface, detail)
	VALUES ('rate_changed', ifname,
			jsonb_build_object('down_kbit', down_in, 'up_kbit', up_in,
							   'old_down_kbit', i.down_kbit,
							   'old_up_kbit', i.up_kbit));
END
$$;
COMMENT ON FUNCTION wg_set_interface_rate(text, integer, integer) IS
	'Set the default speed limits in kbit/s of an interface''s peers (those without their own); NULL: none';
REVOKE ALL ON FUNCTION wg_set_interface_rate(text, integer, integer) FROM PUBLIC;

CREATE OR REPLACE VIEW interface_status AS
	SELECT i.name AS interface,
		   count(q.change_id) AS backlog,
		   min(q.queued_at) AS oldest_pending,
		   max(q.attempts) AS attempts,
		   s.last_success_at, s.last_error, s.last_error_at, s.retry_at,
		   count(q.change_id) FILTER (WHERE q.quarantined_until IS NOT NULL)
			   AS quarantined,
		   (array_agg(q.last_error ORDER BY q.change_id DESC)
				FILTER (WHERE q.quarantined_until IS NOT NULL))[1]
			   AS quarantine_error,
		   s.settings_error, s.settings_error_at,
		   s.unresponsive_since, s.export_error, s.export_error_at,
		   s.rates_error, s.rates_error_at
	FROM interface i
	LEFT JOIN queue q ON q.interface = i.name
	LEFT JOIN worker_state s ON s.interface = i.name AND s.node = i.node
	GROUP BY i.name, s.interface, s.node;

CREATE OR REPLACE VIEW peer_status AS
	SELECT p.peer_id, p.user_id, p.interface, p.address, p.address6,
		   p.status, p.expires_at, t.latest_handshake, t.endpoint,
		   coalesce(t.rx_bytes, 0) AS rx_bytes,
		   coalesce(t.tx_bytes, 0) AS tx_bytes,
		   coalesce(t.latest_handshake > now() - interval '3 minutes', false)
			   AS online,
		   t.sampled_at,
		   nullif(coalesce(p.down_kbit, i.down_kbit), 0) AS down_kbit,
		   nullif(coalesce(p.up_kbit, i.up_kbit), 0) AS up_kbit,
		   CASE WHEN p.down_kbit IS NOT NULL THEN 'peer'
				WHEN i.down_kbit IS NOT NULL THEN 'interface' END AS down_from,
		   CASE WHEN p.up_kbit IS NOT NULL THEN 'peer'
				WHEN i.up_kbit IS NOT NULL THEN 'interface' END AS up_from
	FROM peer p
	LEFT JOIN interface i ON i.name = p.interface
	LEFT JOIN peer_traffic t ON t.peer_id = p.peer_id AND t.node = p.node;
