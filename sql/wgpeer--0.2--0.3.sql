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
-- Locations, capacity, moving peers and standing subscription links
------------------------------------------------------------------------------

-- An interface may serve a location and take at most capacity peers;
-- wg_create_peer(location => ...) places a peer on the interface of that
-- location with the most room.
ALTER TABLE interface
	ADD COLUMN location text
		CONSTRAINT interface_location_check
		CHECK (location ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
	ADD COLUMN capacity integer
		CONSTRAINT interface_capacity_check CHECK (capacity > 0),
	ADD COLUMN consumption_multiplier numeric NOT NULL DEFAULT 1
		CONSTRAINT interface_consumption_multiplier_check
		CHECK (consumption_multiplier > 0 AND consumption_multiplier <= 100);
COMMENT ON COLUMN interface.location IS
	'Where the interface serves (e.g. ''de''), for placement by location; NULL: none';
COMMENT ON COLUMN interface.capacity IS
	'Most peers (live or suspended) the interface takes; NULL: no limit';
COMMENT ON COLUMN interface.consumption_multiplier IS
	'How much a byte on this interface counts against a user''s pooled quota (default 1)';

-- A move logs moved, a fetch of a subscription link subscription_fetched,
-- a top-up traffic_added, a reset of pooled usage usage_reset.
ALTER DOMAIN event_kind DROP CONSTRAINT event_kind_check;
ALTER DOMAIN event_kind ADD CONSTRAINT event_kind_check CHECK (VALUE IN (
	'created', 'activated', 'apply_failed', 'suspended', 'resumed',
	'renewed', 'plan_started', 'expiring_soon', 'expired', 'revoked',
	'key_rotated', 'quota_warning', 'quota_reached', 'connected',
	'disconnected', 'node_rejected', 'rate_changed', 'interface_params_changed',
	'moved', 'subscription_fetched', 'traffic_added', 'usage_reset'));

-- wg_create_peer() learns location => ...
DO $do$
DECLARE
	old regprocedure := 'wgpeer.wg_create_peer(text, integer, text, text,
		text, text, interval, timestamptz, boolean)';
	grantees regrole[];
	grantable boolean[];
BEGIN
	SELECT array_agg(a.grantee::regrole), array_agg(a.is_grantable)
		INTO grantees, grantable
		FROM pg_proc p, aclexplode(p.proacl) a
		WHERE p.oid = old AND a.grantee <> p.proowner AND a.grantee <> 0;
	EXECUTE format('DROP FUNCTION %s', old);
	CREATE FUNCTION wgpeer.wg_create_peer(
		user_id text,
		duration_months integer DEFAULT 1,
		dns text DEFAULT NULL,
		config_name text DEFAULT NULL,
		interface text DEFAULT NULL,
		public_key text DEFAULT NULL,
		duration interval DEFAULT NULL,
		until timestamptz DEFAULT NULL,
		starts_on_handshake boolean DEFAULT false,
		location text DEFAULT NULL,
		OUT peer_id uuid,
		OUT user_id text,
		OUT interface text,
		OUT address inet,
		OUT address6 inet,
		OUT public_key text,
		OUT status text,
		OUT config_name text,
		OUT created_at timestamptz,
		OUT expires_at timestamptz,
		OUT config text)
		AS 'MODULE_PATHNAME', 'wg_create_peer'
		LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
	REVOKE ALL ON FUNCTION wgpeer.wg_create_peer FROM PUBLIC;
	FOR i IN 1 .. coalesce(array_length(grantees, 1), 0)
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION wgpeer.wg_create_peer TO %I%s',
					   grantees[i],
					   CASE WHEN grantable[i] THEN ' WITH GRANT OPTION' ELSE '' END);
	END LOOP;
END
$do$;
COMMENT ON FUNCTION wg_create_peer IS
	'Create a peer: keys, address, row, queued kernel change and client config';

-- The peers that hold an address on an interface, counted for its
-- capacity by every creation and move.
CREATE INDEX peer_held ON peer (interface)
	WHERE status IN ('creating', 'active', 'suspended');

-- Give an interface a location and a capacity (NULL: none, no limit).
-- A lower capacity than the peers it holds is allowed: it takes no new
-- ones until enough go.
CREATE FUNCTION wg_set_interface_location(name text, location text,
										  capacity integer DEFAULT NULL)
RETURNS interface
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	i wgpeer.interface;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_set_interface_location');
	IF wg_set_interface_location.location !~ '^[a-z0-9][a-z0-9_-]{0,39}$' THEN
		RAISE EXCEPTION 'invalid location "%"', wg_set_interface_location.location
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A location is 1 to 40 lower-case letters, digits, '
						   'hyphens and underscores, starting with a letter or digit.',
				  HINT = 'Use a short code such as ''de'' or ''us-east''; NULL for none.';
	END IF;
	IF wg_set_interface_location.capacity <= 0 THEN
		RAISE EXCEPTION 'capacity must be positive, not %', wg_set_interface_location.capacity
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give the most peers the interface takes, or NULL for no limit.';
	END IF;
	UPDATE wgpeer.interface AS t
		SET location = wg_set_interface_location.location,
			capacity = wg_set_interface_location.capacity
		WHERE t.name = wg_set_interface_location.name
		RETURNING * INTO i;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'interface "%" is not registered with wgpeer',
				wg_set_interface_location.name
			USING ERRCODE = 'undefined_object',
				  HINT = 'Register it with wgpeer.wg_add_interface(); '
						 'SELECT name FROM wgpeer.interface lists those that are.';
	END IF;
	RETURN i;
END
$$;
COMMENT ON FUNCTION wg_set_interface_location(text, text, integer) IS
	'Set the location an interface serves and the most peers it takes (NULL: none, no limit)';

-- The load of each location, for an application's "server load": its
-- interfaces and nodes, the peers holding an address there (live or
-- suspended), the capacity (NULL when an interface has no limit), the
-- free places and the percentage used.
CREATE VIEW location_load AS
	SELECT i.location,
		   count(*) AS interfaces,
		   array_agg(DISTINCT i.node ORDER BY i.node) AS nodes,
		   sum(h.held)::bigint AS peers,
		   CASE WHEN bool_and(i.capacity IS NOT NULL)
				THEN sum(i.capacity)::bigint END AS capacity,
		   CASE WHEN bool_and(i.capacity IS NOT NULL)
				THEN sum(greatest(i.capacity - h.held, 0))::bigint END AS free,
		   CASE WHEN bool_and(i.capacity IS NOT NULL)
				THEN round(100.0 * sum(h.held) / sum(i.capacity), 1) END AS load_percent
	FROM interface i,
		 LATERAL (SELECT count(*) AS held FROM peer p
				  WHERE p.interface = i.name
					AND p.status IN ('creating', 'active', 'suspended')) h
	WHERE i.location IS NOT NULL
	GROUP BY i.location;
COMMENT ON VIEW location_load IS
	'Per location: interfaces, nodes, peers held, capacity, free places and load';

-- Move a peer to another interface (src/sql/move.c), in the caller's
-- transaction: it leaves its interface (and node) and appears on the new
-- one with a new address there, keeping its keys, plan, quota, device
-- limit slot and history; an event 'moved'.  Returns its new config and
-- the settings of it that changed (changed: Address and Endpoint when the
-- interfaces share their server key and settings).
CREATE FUNCTION wg_move_peer(peer_id uuid, interface text,
							 OUT peer_id uuid, OUT interface text,
							 OUT node text, OUT address inet,
							 OUT address6 inet, OUT config text,
							 OUT changed text[])
RETURNS record
	AS 'MODULE_PATHNAME', 'wg_move_peer'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_move_peer(uuid, text) IS
	'Move a peer to another interface or node, keeping its keys, plan and quota; returns its new config';

-- On a node, a peer the primary moved to another node arrives as a
-- deletion (the row left the node's row filter), and the database then
-- neither wants nor knows its key: the interface is marked for a sweep of
-- such peers in its pool (stale_sweep, 04-queue-and-worker.sql), and the
-- worker reconciles at once and takes the key off.  (A plain reconcile
-- leaves a key nobody knows alone: it could be a peer configured by hand.)
CREATE FUNCTION wg_peer_moved_away() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	INSERT INTO wgpeer.stale_sweep (interface)
		SELECT i.name FROM wgpeer.interface i WHERE i.name = OLD.interface
		ON CONFLICT (interface) DO NOTHING;
	RETURN NULL;
END
$$;
CREATE TRIGGER peer_moved_away AFTER DELETE ON peer
	FOR EACH ROW WHEN (OLD.status IN ('creating', 'active'))
	EXECUTE FUNCTION wg_peer_moved_away();
ALTER TABLE peer ENABLE REPLICA TRIGGER peer_moved_away;
CREATE TRIGGER peer_moved_away_reconcile AFTER DELETE ON peer
	FOR EACH ROW EXECUTE FUNCTION wg_tell_worker('interfaces');
ALTER TABLE peer ENABLE REPLICA TRIGGER peer_moved_away_reconcile;

CREATE TABLE subscription (
	user_id text PRIMARY KEY,
	token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
	created_by text NOT NULL,		-- the role that asked for the link
	created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE subscription IS
	'Standing subscription links: the SHA-256 of each user''s token, never the token';

CREATE FUNCTION wg_subscription_token(user_id text) RETURNS text
	AS 'MODULE_PATHNAME', 'wg_subscription_token'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_subscription_token(text) IS
	'A new standing link token for a user''s configs (replaces the user''s link; only its hash is stored)';

CREATE FUNCTION wg_subscription_token_hash(token text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'wg_subscription_token_hash'
	LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION wg_subscription_token_hash(text) IS
	'The SHA-256 kept of a well-formed link token, NULL otherwise (for wgpeer''s own use)';

-- Revoke a user's link: its token stops working at commit.  Returns
-- whether there was one.
CREATE FUNCTION wg_subscription_revoke(user_id text) RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_subscription_revoke');
	DELETE FROM wgpeer.subscription s WHERE s.user_id = wg_subscription_revoke.user_id;
	RETURN FOUND;
END
$$;
COMMENT ON FUNCTION wg_subscription_revoke(text) IS
	'Revoke a user''s standing subscription link';

-- The user a token fetches for, logging the fetch (subscription_fetched,
-- with what was fetched); the one error of a token that does not fetch,
-- whatever the reason, so that a caller learns nothing about tokens it
-- does not hold.
CREATE FUNCTION wg_subscription_user(token text, fetched jsonb) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	uid text;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_subscription_fetch');
	SELECT s.user_id INTO uid FROM wgpeer.subscription s
		WHERE s.token_hash = wgpeer.wg_subscription_token_hash(token);
	IF uid IS NULL THEN
		RAISE EXCEPTION 'subscription link is not valid'
			USING ERRCODE = 'invalid_authorization_specification',
				  DETAIL = 'The link is unknown, or was revoked or replaced.',
				  HINT = 'Ask for the current link.';
	END IF;
	INSERT INTO wgpeer.event (kind, user_id, detail)
		VALUES ('subscription_fetched', uid, fetched);
	RETURN uid;
END
$$;
COMMENT ON FUNCTION wg_subscription_user(text, jsonb) IS
	'The user of a subscription token, logging the fetch (for wgpeer''s own use)';

-- The current configs of a user, one row per live peer whose private key
-- the server holds, oldest first (for the fetching functions below).
CREATE FUNCTION wg_subscription_configs(user_id text)
RETURNS TABLE (peer_id uuid, config_name text, location text,
			   interface text, status text, config text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT p.peer_id, p.config_name, i.location, p.interface, p.status,
		   wgpeer.wg_peer_config(p.peer_id)
	FROM wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface
	WHERE p.user_id = wg_subscription_configs.user_id
	  AND p.status IN ('creating', 'active')
	  AND p.private_key_forgotten_at IS NULL
	ORDER BY p.created_at, p.peer_id
$$;
COMMENT ON FUNCTION wg_subscription_configs(text) IS
	'A user''s current configs, one row per live peer (for wgpeer''s own use)';

CREATE FUNCTION wg_subscription_fetch(token text)
RETURNS TABLE (peer_id uuid, config_name text, location text,
			   interface text, status text, config text)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT * FROM wgpeer.wg_subscription_configs(
		wgpeer.wg_subscription_user(token, '{"form": "rows"}'))
$$;
COMMENT ON FUNCTION wg_subscription_fetch(text) IS
	'A user''s current configs by subscription token, one row per live peer (logs subscription_fetched)';

-- The same as one JSON document: {"fetched_at", "peers": [...]}.
CREATE FUNCTION wg_subscription_fetch_json(token text) RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT jsonb_build_object(
		'fetched_at', now(),
		'peers', coalesce(jsonb_agg(to_jsonb(f) - 'ordinality' ORDER BY f.ordinality), '[]'))
	FROM wgpeer.wg_subscription_configs(
		wgpeer.wg_subscription_user(token, '{"form": "json"}')) WITH ORDINALITY AS f
$$;
COMMENT ON FUNCTION wg_subscription_fetch_json(text) IS
	'A user''s current configs by subscription token, as JSON (logs subscription_fetched)';

-- One peer's config by its config_name, as the wg-quick text a client
-- imports from a URL.
CREATE FUNCTION wg_subscription_fetch_config(token text, config_name text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	uid text := wgpeer.wg_subscription_user(token,
		jsonb_build_object('form', 'config', 'config_name', config_name));
	result text;
BEGIN
	SELECT c.config INTO result
		FROM wgpeer.wg_subscription_configs(uid) WITH ORDINALITY c
		WHERE c.config_name = wg_subscription_fetch_config.config_name
		ORDER BY c.ordinality DESC LIMIT 1;
	IF result IS NULL THEN
		RAISE EXCEPTION 'the subscription has no live peer named "%"', config_name
			USING ERRCODE = 'no_data_found',
				  HINT = 'wgpeer.wg_subscription_fetch(token) lists the names.';
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION wg_subscription_fetch_config(text, text) IS
	'One config of a subscription, by config_name, as wg-quick text (logs subscription_fetched)';

CREATE TABLE user_quota (
	user_id text PRIMARY KEY,
	quota_bytes bigint NOT NULL CHECK (quota_bytes >= 0),	-- per period
	period text NOT NULL CHECK (period IN ('none', 'day', 'week', 'month')),
	period_anchor timestamptz NOT NULL,
	period_start timestamptz NOT NULL,
	period_end timestamptz,			-- NULL for 'none'
	-- usage of the period's first hour before period_start (usage is
	-- hourly): counted in that hour, not in the period
	base_bytes numeric NOT NULL DEFAULT 0,
	warn_percents integer[] NOT NULL DEFAULT '{80}'
		CHECK (0 < ALL (warn_percents) AND 100 > ALL (warn_percents)),
	warned_percent integer,			-- the highest threshold warned this period
	reached_at timestamptz,			-- when this period's allowance ran out
	CHECK ((period = 'none') = (period_end IS NULL))
);
COMMENT ON TABLE user_quota IS
	'Traffic quota shared by all of a user''s peers: reaching it suspends them all (reason quota)';

CREATE TABLE traffic_ledger (
	entry_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),	-- no sequence to dump
	user_id text NOT NULL,
	at timestamptz NOT NULL DEFAULT now(),
	kind text NOT NULL CHECK (kind IN ('quota', 'top_up', 'reset', 'period')),
	bytes bigint,					-- the quota set, or the bytes added
	expires_at timestamptz,			-- a top-up that stops counting then
	by_role text NOT NULL DEFAULT current_user
);
CREATE INDEX traffic_ledger_user ON traffic_ledger (user_id, at);

COMMENT ON TABLE traffic_ledger IS
	'Every quota change, top-up, reset and new period of a user''s pooled traffic';

-- A user's period: used bytes (weighted), allowance (quota plus the
-- period's live top-ups), and what is left.
CREATE FUNCTION wg_user_balance(user_id text,
								OUT used_bytes numeric, OUT allowance_bytes numeric,
								OUT left_bytes numeric, OUT period_start timestamptz,
								OUT period_end timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT u.used, a.allowance, greatest(a.allowance - u.used, 0),
		   q.period_start, q.period_end
	FROM wgpeer.user_quota q,
		 LATERAL (SELECT coalesce(sum((x.rx_bytes::numeric + x.tx_bytes)
									  * i.consumption_multiplier), 0)
						 - q.base_bytes AS used
				  FROM wgpeer.peer p
				  JOIN wgpeer.interface i ON i.name = p.interface
				  JOIN wgpeer.peer_usage x ON x.peer_id = p.peer_id
				  WHERE p.user_id = q.user_id
					AND x.hour >= date_trunc('hour', q.period_start)) u,
		 LATERAL (SELECT q.quota_bytes + coalesce(sum(l.bytes), 0) AS allowance
				  FROM wgpeer.traffic_ledger l
				  WHERE l.user_id = q.user_id AND l.kind = 'top_up'
					AND l.at >= q.period_start
					AND (l.expires_at IS NULL OR l.expires_at > now())) a
	WHERE q.user_id = wg_user_balance.user_id
$$;
COMMENT ON FUNCTION wg_user_balance(text) IS
	'A user''s pooled traffic this period: used (weighted), allowance, left';

-- The usage of the hour of at that lies before at, weighted: a period
-- starting at at does not count it.
CREATE FUNCTION wg_user_hour_base(user_id text, at timestamptz) RETURNS numeric
LANGUAGE sql STABLE SET search_path = wgpeer, pg_temp
AS $$
	SELECT coalesce(sum((x.rx_bytes::numeric + x.tx_bytes) * i.consumption_multiplier), 0)
	FROM wgpeer.peer p
	JOIN wgpeer.interface i ON i.name = p.interface
	JOIN wgpeer.peer_usage x ON x.peer_id = p.peer_id
	WHERE p.user_id = wg_user_hour_base.user_id
	  AND x.hour = date_trunc('hour', at)
$$;

-- Resume the user's peers the quota suspended (the device limit allowing:
-- see wg_quota_resume), when the user has allowance left.
CREATE FUNCTION wg_user_quota_resume(user_id text) RETURNS void
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	IF (SELECT b.left_bytes FROM wgpeer.wg_user_balance(user_id) b) > 0 THEN
		UPDATE wgpeer.user_quota q SET reached_at = NULL
			WHERE q.user_id = wg_user_quota_resume.user_id;
		FOR r IN SELECT p.peer_id FROM wgpeer.peer p
				 WHERE p.user_id = wg_user_quota_resume.user_id
				   AND p.status = 'suspended' AND p.suspended_reason = 'quota'
				 ORDER BY p.peer_id
		LOOP
			PERFORM wgpeer.wg_quota_resume(r.peer_id);
		END LOOP;
	END IF;
END
$$;

-- Set, change or (quota_bytes NULL) remove a user's pooled quota.  A new
-- quota or another period starts a period now; the same period keeps the
-- usage so far.
CREATE FUNCTION wg_set_user_quota(user_id text, quota_bytes bigint,
								  period text DEFAULT 'month',
								  warn_percents integer[] DEFAULT '{80}')
RETURNS user_quota
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	q wgpeer.user_quota;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_set_user_quota');
	IF user_id IS NULL OR period IS NULL OR warn_percents IS NULL THEN
		RAISE EXCEPTION 'user_id, period and warn_percents cannot be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass warn_percents => ''{}'' for no warnings.';
	END IF;
	IF quota_bytes < 0 THEN
		RAISE EXCEPTION 'quota_bytes must not be negative, not %', quota_bytes
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the bytes the user''s peers may use per period (0: top-ups only), or NULL to remove the quota.';
	END IF;
	IF period NOT IN ('none', 'day', 'week', 'month') THEN
		RAISE EXCEPTION 'unknown quota period "%"', period
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use ''day'', ''week'', ''month'' or ''none'' (one allowance until reset).';
	END IF;
	IF NOT (0 < ALL (warn_percents) AND 100 > ALL (warn_percents))
		OR array_position(warn_percents, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'warning thresholds must be percentages between 1 and 99, not %',
				warn_percents
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'E.g. warn_percents => ''{50, 80, 95}''.';
	END IF;
	IF quota_bytes IS NULL THEN
		DELETE FROM wgpeer.user_quota x WHERE x.user_id = wg_set_user_quota.user_id;
		INSERT INTO wgpeer.traffic_ledger (user_id, kind) VALUES (user_id, 'quota');
		PERFORM wgpeer.wg_quota_resume(p.peer_id) FROM wgpeer.peer p
			WHERE p.user_id = wg_set_user_quota.user_id
			  AND p.status = 'suspended' AND p.suspended_reason = 'quota'
			  AND NOT EXISTS (SELECT FROM wgpeer.quota pq WHERE pq.peer_id = p.peer_id);
		RETURN NULL;
	END IF;
	SELECT (SELECT array_agg(DISTINCT w ORDER BY w) FROM unnest(warn_percents) w)
		INTO warn_percents;
	INSERT INTO wgpeer.user_quota AS x (user_id, quota_bytes, period, period_anchor,
										period_start, period_end, base_bytes,
										warn_percents)
	VALUES (user_id, quota_bytes, period, now(), now(),
			wgpeer.wg_quota_period_at(period, now(), now(), 1),
			wgpeer.wg_user_hour_base(user_id, now()), coalesce(warn_percents, '{}'))
	ON CONFLICT ON CONSTRAINT user_quota_pkey DO UPDATE
	SET quota_bytes = EXCLUDED.quota_bytes, warn_percents = EXCLUDED.warn_percents,
		warned_percent = NULL, reached_at = NULL,
		period = EXCLUDED.period,
		period_anchor = CASE WHEN x.period = EXCLUDED.period THEN x.period_anchor
						ELSE EXCLUDED.period_anchor END,
		period_start = CASE WHEN x.period = EXCLUDED.period THEN x.period_start
					   ELSE EXCLUDED.period_start END,
		period_end = CASE WHEN x.period = EXCLUDED.period THEN x.period_end
					 ELSE EXCLUDED.period_end END,
		base_bytes = CASE WHEN x.period = EXCLUDED.period THEN x.base_bytes
					 ELSE EXCLUDED.base_bytes END
	RETURNING * INTO q;
	INSERT INTO wgpeer.traffic_ledger (user_id, kind, bytes)
		VALUES (user_id, 'quota', quota_bytes);
	PERFORM wgpeer.wg_user_quota_resume(user_id);
	RETURN q;
END
$$;
COMMENT ON FUNCTION wg_set_user_quota(text, bigint, text, integer[]) IS
	'Set a quota shared by all of a user''s peers, per day, week, month or until reset; NULL removes it';

-- A top-up: bytes added to the user's allowance for this period (until
-- expires_at, if given); a user without a quota gets one of 0 bytes per
-- period 'none', so that traffic is sold in packages only.
CREATE FUNCTION wg_add_traffic(user_id text, bytes bigint,
							   expires_at timestamptz DEFAULT NULL)
RETURNS traffic_ledger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	l wgpeer.traffic_ledger;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_add_traffic');
	IF user_id IS NULL OR bytes IS NULL THEN
		RAISE EXCEPTION 'user_id and bytes cannot be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF bytes <= 0 THEN
		RAISE EXCEPTION 'bytes must be positive, not %', bytes
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the bytes of the traffic package bought.';
	END IF;
	IF expires_at <= now() THEN
		RAISE EXCEPTION 'expires_at must be in the future, not %', expires_at
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Leave it NULL for a top-up that lasts the period.';
	END IF;
	IF NOT EXISTS (SELECT FROM wgpeer.user_quota q WHERE q.user_id = wg_add_traffic.user_id) THEN
		PERFORM wgpeer.wg_set_user_quota(user_id, 0, 'none');
	END IF;
	INSERT INTO wgpeer.traffic_ledger AS x (user_id, kind, bytes, expires_at)
		VALUES (user_id, 'top_up', bytes, expires_at) RETURNING * INTO l;
	INSERT INTO wgpeer.event (kind, user_id, detail)
		VALUES ('traffic_added', user_id,
				jsonb_build_object('bytes', bytes, 'expires_at', expires_at));
	PERFORM wgpeer.wg_user_quota_resume(user_id);
	RETURN l;
END
$$;
COMMENT ON FUNCTION wg_add_traffic(text, bigint, timestamptz) IS
	'Add a traffic package to a user''s pooled allowance (recorded in traffic_ledger); resumes the user''s peers';

-- Start the user's period anew now (a payment): usage from zero, top-ups
-- of the old period gone, peers the quota suspended resumed.
CREATE FUNCTION wg_reset_usage(user_id text) RETURNS user_quota
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	q wgpeer.user_quota;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_reset_usage');
	UPDATE wgpeer.user_quota x
		SET period_anchor = now(), period_start = now(),
			period_end = wgpeer.wg_quota_period_at(x.period, now(), now(), 1),
			base_bytes = wgpeer.wg_user_hour_base(x.user_id, now()),
			warned_percent = NULL, reached_at = NULL
		WHERE x.user_id = wg_reset_usage.user_id
		RETURNING * INTO q;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'user "%" has no pooled quota', user_id
			USING ERRCODE = 'no_data_found',
				  HINT = 'Give the user one with wgpeer.wg_set_user_quota().';
	END IF;
	INSERT INTO wgpeer.traffic_ledger (user_id, kind) VALUES (user_id, 'reset');
	INSERT INTO wgpeer.event (kind, user_id, detail)
		VALUES ('usage_reset', user_id, '{}');
	PERFORM wgpeer.wg_user_quota_resume(user_id);
	RETURN q;
END
$$;
COMMENT ON FUNCTION wg_reset_usage(text) IS
	'Start a user''s pooled-quota period anew now (usage from zero); resumes the user''s peers';

-- The watch pass of pooled quotas (the worker calls it after
-- wg_watch_peers): periods that ended start anew, thresholds crossed warn
-- once per period, an allowance used up suspends every live peer of the
-- user.  Each user in a subtransaction of its own.
CREATE FUNCTION wg_watch_user_quotas() RETURNS void
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	r record;
	crossed integer;
BEGIN
	FOR r IN SELECT q.user_id FROM wgpeer.user_quota q
			 WHERE q.period_end <= now() ORDER BY q.user_id
	LOOP
		BEGIN
			UPDATE wgpeer.user_quota q
				SET period_start = wgpeer.wg_quota_period_at(q.period, q.period_anchor, now()),
					period_end = wgpeer.wg_quota_period_at(q.period, q.period_anchor, now(), 1),
					warned_percent = NULL, reached_at = NULL
				WHERE q.user_id = r.user_id;
			UPDATE wgpeer.user_quota q
				SET base_bytes = wgpeer.wg_user_hour_base(q.user_id, q.period_start)
				WHERE q.user_id = r.user_id;
			INSERT INTO wgpeer.traffic_ledger (user_id, kind) VALUES (r.user_id, 'period');
			PERFORM wgpeer.wg_user_quota_resume(r.user_id);
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'wgpeer could not start a new quota period for user "%": %',
				r.user_id, SQLERRM;
		END;
	END LOOP;

	FOR r IN SELECT q.user_id, q.warn_percents, q.warned_percent, q.reached_at,
					b.used_bytes, b.allowance_bytes
			 FROM wgpeer.user_quota q, wgpeer.wg_user_balance(q.user_id) b
			 ORDER BY q.user_id
	LOOP
		BEGIN
			SELECT max(w) INTO crossed FROM unnest(r.warn_percents) w
				WHERE r.used_bytes * 100 >= r.allowance_bytes * w
				  AND w > coalesce(r.warned_percent, 0);
			IF crossed IS NOT NULL AND r.used_bytes < r.allowance_bytes THEN
				UPDATE wgpeer.user_quota q SET warned_percent = crossed
					WHERE q.user_id = r.user_id;
				INSERT INTO wgpeer.event (kind, user_id, detail)
				VALUES ('quota_warning', r.user_id,
						jsonb_build_object('scope', 'user', 'used_bytes', r.used_bytes,
										   'quota_bytes', r.allowance_bytes,
										   'warning_percent', crossed));
			END IF;
			IF r.used_bytes >= r.allowance_bytes AND r.reached_at IS NULL THEN
				UPDATE wgpeer.user_quota q SET reached_at = now(), warned_percent = 100
					WHERE q.user_id = r.user_id;
				INSERT INTO wgpeer.event (kind, user_id, detail)
				VALUES ('quota_reached', r.user_id,
						jsonb_build_object('scope', 'user', 'used_bytes', r.used_bytes,
										   'quota_bytes', r.allowance_bytes));
			END IF;
			IF r.used_bytes >= r.allowance_bytes THEN
				PERFORM wgpeer.wg_suspend_peer(p.peer_id, 'quota')
					FROM wgpeer.peer p
					WHERE p.user_id = r.user_id AND p.status IN ('creating', 'active')
					ORDER BY p.peer_id;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'wgpeer could not enforce the pooled quota of user "%": %',
				r.user_id, SQLERRM;
		END;
	END LOOP;
END
$$;
COMMENT ON FUNCTION wg_watch_user_quotas() IS
	'The watch pass of pooled quotas (run by the apply worker after each traffic sample)';

REVOKE ALL ON FUNCTION wg_set_interface_location(text, text, integer), wg_peer_moved_away(),
	wg_move_peer(uuid, text), wg_subscription_token(text),
	wg_subscription_token_hash(text), wg_subscription_revoke(text),
	wg_subscription_user(text, jsonb), wg_subscription_configs(text),
	wg_subscription_fetch(text),
	wg_subscription_fetch_json(text), wg_subscription_fetch_config(text, text),
	wg_user_balance(text), wg_user_hour_base(text, timestamptz),
	wg_user_quota_resume(text), wg_set_user_quota(text, bigint, text, integer[]),
	wg_add_traffic(text, bigint, timestamptz), wg_reset_usage(text),
	wg_watch_user_quotas()
	FROM PUBLIC;
REVOKE ALL ON location_load, subscription, user_quota, traffic_ledger FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('subscription', '');
SELECT pg_catalog.pg_extension_config_dump('user_quota', '');
SELECT pg_catalog.pg_extension_config_dump('traffic_ledger', '');

------------------------------------------------------------------------------
-- Metrics: wg_metrics() (Prometheus exposition text), the row-shaped
-- wg_metrics_*() functions for a SQL exporter, and the apply latency
-- histogram the worker's deletions of applied changes record
------------------------------------------------------------------------------

-- The upper bounds, in seconds, of the apply latency histogram's buckets
-- (the last bucket, +Inf, is the count).
CREATE FUNCTION wg_apply_latency_bounds() RETURNS float8[]
LANGUAGE sql IMMUTABLE
AS $$
	SELECT '{0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30,60}'::float8[]
$$;
COMMENT ON FUNCTION wg_apply_latency_bounds() IS
	'Upper bounds in seconds of the buckets of wgpeer_apply_latency_seconds';

-- How long changes waited between being queued and reaching the device,
-- per interface, as a cumulative histogram: bucket_counts[i] counts the
-- changes applied within wg_apply_latency_bounds()[i] seconds.  Written by
-- the apply worker's statement that deletes the rows it applied
-- (record_success() in src/worker/apply.c: one insert per interface and
-- batch); changes dropped unapplied with their interface or peer are not
-- counted.  The worker's own records,
-- like worker_state, so neither dumped nor replicated (a node keeps its
-- own).
CREATE TABLE apply_latency (
	interface text NOT NULL REFERENCES interface ON DELETE CASCADE,
	node text NOT NULL
		DEFAULT coalesce(current_setting('wgpeer.node', true), '')
		CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$'),
	bucket_counts bigint[] NOT NULL,
	count bigint NOT NULL,
	sum_seconds float8 NOT NULL,
	PRIMARY KEY (interface, node)
);
COMMENT ON TABLE apply_latency IS
	'Changes applied per interface and how long they waited, as a histogram';

-- Per interface (and the node serving it, '' for this server): what
-- waits, what the device refused, the state of the last apply and
-- reconcile, the apply latency's count and sum, peers online.  Times are
-- Unix seconds, 0 for never.
CREATE FUNCTION wg_metrics_interfaces()
RETURNS TABLE (interface text, node text, online_peers bigint, backlog bigint,
			   oldest_pending_seconds float8, quarantined bigint,
			   apply_failures bigint, last_apply_success_seconds float8,
			   last_reconcile_seconds float8, apply_latency_count bigint,
			   apply_latency_sum_seconds float8)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT i.name, i.node,
		   (SELECT count(*) FROM wgpeer.peer p
			JOIN wgpeer.peer_traffic t ON t.peer_id = p.peer_id AND t.node = p.node
			WHERE p.interface = i.name AND p.status IN ('creating', 'active')
			  AND t.latest_handshake > now() - interval '3 minutes'),
		   coalesce(q.backlog, 0),
		   coalesce(extract(epoch FROM now() - q.oldest)::float8, 0),
		   coalesce(q.quarantined, 0),
		   coalesce(s.failures, 0),
		   coalesce(extract(epoch FROM s.last_success_at)::float8, 0),
		   coalesce(extract(epoch FROM d.reconciled_at)::float8, 0),
		   coalesce(l.count, 0), coalesce(l.sum_seconds, 0)
	FROM wgpeer.interface i
	LEFT JOIN (SELECT q.interface, count(*) AS backlog, min(q.queued_at) AS oldest,
					  count(*) FILTER (WHERE q.quarantined_until IS NOT NULL)
						  AS quarantined
			   FROM wgpeer.queue q GROUP BY q.interface) q ON q.interface = i.name
	LEFT JOIN wgpeer.worker_state s ON s.interface = i.name AND s.node = i.node
	LEFT JOIN wgpeer.device d ON d.interface = i.name AND d.node = i.node
	LEFT JOIN wgpeer.apply_latency l ON l.interface = i.name AND l.node = i.node
	ORDER BY i.name COLLATE "C"
$$;
COMMENT ON FUNCTION wg_metrics_interfaces() IS
	'Metrics per interface as rows: backlog, quarantined, last apply and reconcile, apply latency';

-- Per interface and peer status, the number of peers (every status, 0
-- included, so that a panel never loses a line).
CREATE FUNCTION wg_metrics_peer_counts()
RETURNS TABLE (interface text, node text, status text, peers bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT i.name, i.node, s.status, coalesce(c.peers, 0)
	FROM wgpeer.interface i
	CROSS JOIN unnest('{creating,active,suspended,revoked,expired}'::text[])
		WITH ORDINALITY AS s(status, pos)
	LEFT JOIN (SELECT p.interface, p.status, count(*) AS peers
			   FROM wgpeer.peer p GROUP BY p.interface, p.status) c
		ON c.interface = i.name AND c.status = s.status
	ORDER BY i.name COLLATE "C", s.pos
$$;
COMMENT ON FUNCTION wg_metrics_peer_counts() IS
	'Metrics as rows: peers per interface and status';

-- The apply latency histogram's cumulative buckets per interface, the
-- last one le = '+Inf'.
CREATE FUNCTION wg_metrics_apply_latency()
RETURNS TABLE (interface text, node text, le text, count bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT i.name, i.node, b.le, coalesce(b.count, 0)
	FROM wgpeer.interface i
	LEFT JOIN wgpeer.apply_latency l ON l.interface = i.name AND l.node = i.node
	CROSS JOIN LATERAL (
		SELECT x.bound::text AS le, l.bucket_counts[x.i] AS count, x.i
		FROM unnest(wgpeer.wg_apply_latency_bounds()) WITH ORDINALITY AS x(bound, i)
		UNION ALL
		SELECT '+Inf', l.count, 1000) b
	ORDER BY i.name COLLATE "C", b.i
$$;
COMMENT ON FUNCTION wg_metrics_apply_latency() IS
	'Metrics as rows: the apply latency histogram''s cumulative buckets per interface';

-- Per interface: how far behind the replication to the node serving it
-- is (the primary's WAL its slot has not confirmed, and its replay lag, 0
-- when idle); 0 for an interface this server serves itself (nothing to
-- replicate).  An interface whose node has no slot yet (or a standby,
-- which has no WAL position of its own) has no row.
CREATE FUNCTION wg_metrics_node_lag()
RETURNS TABLE (interface text, node text, lag_bytes numeric, lag_seconds float8)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT i.name, i.node, 0, 0
	FROM wgpeer.interface i WHERE i.node = ''
	UNION ALL
	SELECT i.name, i.node,
		   pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn),
		   coalesce(extract(epoch FROM r.replay_lag)::float8, 0)
	FROM wgpeer.interface i
	JOIN pg_replication_slots s ON s.slot_name = 'wgpeer_node_' || i.node
	LEFT JOIN pg_stat_replication r ON r.application_name = 'wgpeer_node_' || i.node
	WHERE i.node <> '' AND NOT pg_is_in_recovery()
	  AND s.confirmed_flush_lsn IS NOT NULL
	ORDER BY 1
$$;
COMMENT ON FUNCTION wg_metrics_node_lag() IS
	'Metrics as rows: replication lag to the node serving each interface (0 for this server''s own)';

-- Per user and interface, for the users with a live or suspended peer
-- there: traffic of all their peers on it (so that the totals only grow),
-- their live peers and how many of those are online.
CREATE FUNCTION wg_metrics_users()
RETURNS TABLE (interface text, node text, user_id text, devices bigint,
			   online_devices bigint, received_bytes numeric, sent_bytes numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT p.interface, min(p.node), p.user_id,
		   count(*) FILTER (WHERE p.status IN ('creating', 'active')),
		   count(*) FILTER (WHERE p.status IN ('creating', 'active')
							AND t.latest_handshake > now() - interval '3 minutes'),
		   coalesce(sum(t.rx_bytes), 0), coalesce(sum(t.tx_bytes), 0)
	FROM wgpeer.peer p
	LEFT JOIN wgpeer.peer_traffic t ON t.peer_id = p.peer_id AND t.node = p.node
	GROUP BY p.interface, p.user_id
	HAVING count(*) FILTER (WHERE p.status IN ('creating', 'active', 'suspended')) > 0
	ORDER BY p.interface COLLATE "C", p.user_id COLLATE "C"
$$;
COMMENT ON FUNCTION wg_metrics_users() IS
	'Metrics as rows: per user and interface, traffic, devices and devices online';

-- Per user and interface, for the users whose live or suspended peers
-- there have a quota: the bytes allowed and used in the current periods,
-- summed over those peers (as the quota counts them: wg_set_peer_quota).
CREATE FUNCTION wg_metrics_quotas()
RETURNS TABLE (interface text, node text, user_id text, quota_bytes numeric,
			   used_bytes numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT p.interface, min(p.node), p.user_id, sum(q.quota_bytes),
		   sum(greatest(wgpeer.wg_peer_total_bytes(p.peer_id) - q.base_bytes, 0))
	FROM wgpeer.peer p
	JOIN wgpeer.quota q ON q.peer_id = p.peer_id
	WHERE p.status IN ('creating', 'active', 'suspended')
	GROUP BY p.interface, p.user_id
	ORDER BY p.interface COLLATE "C", p.user_id COLLATE "C"
$$;
COMMENT ON FUNCTION wg_metrics_quotas() IS
	'Metrics as rows: per user and interface, quota and usage in the current period';

-- One row per live peer, only when wgpeer.metrics_per_peer is on, with
-- the labels of prometheus_wireguard_exporter (interface, public_key,
-- allowed_ips as "a/32,b/128", friendly_name: the config name).  The
-- handshake is Unix seconds, 0 for none, as that exporter has it.
CREATE FUNCTION wg_metrics_peers()
RETURNS TABLE (interface text, node text, user_id text, public_key text,
			   allowed_ips text, friendly_name text, received_bytes bigint,
			   sent_bytes bigint, latest_handshake_seconds float8)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT p.interface, p.node, p.user_id, p.public_key,
		   array_to_string(ARRAY[host(p.address) || '/32',
								 host(p.address6) || '/128']
						   || coalesce(p.routes::text[], '{}'), ','),
		   p.config_name, coalesce(t.rx_bytes, 0), coalesce(t.tx_bytes, 0),
		   coalesce(extract(epoch FROM t.latest_handshake)::float8, 0)
	FROM wgpeer.peer p
	LEFT JOIN wgpeer.peer_traffic t ON t.peer_id = p.peer_id AND t.node = p.node
	WHERE p.status IN ('creating', 'active')
	  AND coalesce(current_setting('wgpeer.metrics_per_peer', true), 'off')
		  IN ('on', 'true', 'yes', '1')
	ORDER BY p.interface COLLATE "C", p.public_key COLLATE "C"
$$;
COMMENT ON FUNCTION wg_metrics_peers() IS
	'Metrics as rows: per live peer traffic and handshake (only with wgpeer.metrics_per_peer on)';

-- The whole database: the apply worker serving it (1 or 0) and the
-- events logged so far (the last event id: after a promotion or a restore
-- onto another cluster it jumps a billion on, which a rate() shows once).
CREATE FUNCTION wg_metrics_server()
RETURNS TABLE (worker_up integer, events_total bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT (SELECT count(*) FROM pg_stat_activity a
			WHERE a.backend_type = 'wgpeer apply worker'
			  AND a.datname = current_database())::integer,
		   coalesce((SELECT max(e.event_id) FROM wgpeer.event e), 0)
$$;
COMMENT ON FUNCTION wg_metrics_server() IS
	'Metrics as a row: whether the apply worker runs, and the events logged so far';

-- A Prometheus label value, escaped.
CREATE FUNCTION wg_metrics_label(value text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
	SELECT replace(replace(replace(value, E'\\', E'\\\\'), '"', E'\\"'),
				   E'\n', E'\\n')
$$;
COMMENT ON FUNCTION wg_metrics_label(text) IS
	'A Prometheus label value with backslash, quote and newline escaped';

-- One family of the exposition text: its HELP and TYPE lines, then its
-- samples (each ending in a newline); nothing when it has no sample.
CREATE FUNCTION wg_metrics_family(name text, type text, help text, samples text)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
	SELECT CASE WHEN samples IS NULL OR samples = '' THEN ''
				ELSE format(E'# HELP %s %s\n# TYPE %s %s\n', name, help, name, type)
					 || samples END
$$;
COMMENT ON FUNCTION wg_metrics_family(text, text, text, text) IS
	'One family of Prometheus exposition text: HELP, TYPE and its samples';

-- Everything above as Prometheus exposition text (format 0.0.4), one
-- family after another, each with its HELP and TYPE; a family with no
-- sample is left out.  Each row-shaped function runs once, and one pass
-- over its rows writes all its families, in the function's order.  The
-- per-peer families use the names and labels of
-- prometheus_wireguard_exporter, so dashboards made for it work.
CREATE FUNCTION wg_metrics() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	WITH s AS (SELECT * FROM wgpeer.wg_metrics_server()),
	i AS (SELECT i.*, format('interface="%s",node="%s"', wgpeer.wg_metrics_label(i.interface),
							 wgpeer.wg_metrics_label(i.node)) AS l
		  FROM wgpeer.wg_metrics_interfaces() WITH ORDINALITY AS i),
	ifs AS (
		SELECT string_agg(format(E'wgpeer_online_peers{%s} %s\n', l, online_peers), '' ORDER BY ordinality) AS online,
			   string_agg(format(E'wgpeer_queue_backlog{%s} %s\n', l, backlog), '' ORDER BY ordinality) AS backlog,
			   string_agg(format(E'wgpeer_queue_oldest_pending_seconds{%s} %s\n', l, oldest_pending_seconds), '' ORDER BY ordinality) AS oldest,
			   string_agg(format(E'wgpeer_queue_quarantined{%s} %s\n', l, quarantined), '' ORDER BY ordinality) AS quarantined,
			   string_agg(format(E'wgpeer_apply_failures{%s} %s\n', l, apply_failures), '' ORDER BY ordinality) AS failures,
			   string_agg(format(E'wgpeer_last_apply_success_timestamp_seconds{%s} %s\n', l, last_apply_success_seconds), '' ORDER BY ordinality) AS success,
			   string_agg(format(E'wgpeer_last_reconcile_timestamp_seconds{%s} %s\n', l, last_reconcile_seconds), '' ORDER BY ordinality) AS reconcile
		FROM i),
	pc AS (
		SELECT string_agg(format(E'wgpeer_peers{interface="%s",node="%s",status="%s"} %s\n',
								 wgpeer.wg_metrics_label(c.interface), wgpeer.wg_metrics_label(c.node),
								 c.status, c.peers), '' ORDER BY c.ordinality) AS peers
		FROM wgpeer.wg_metrics_peer_counts() WITH ORDINALITY AS c),
	lat AS (
		SELECT string_agg(b.buckets
						  || format(E'wgpeer_apply_latency_seconds_sum{%s} %s\n', i.l, i.apply_latency_sum_seconds)
						  || format(E'wgpeer_apply_latency_seconds_count{%s} %s\n', i.l, i.apply_latency_count),
						  '' ORDER BY i.ordinality) AS latency
		FROM i JOIN (
			SELECT b.interface,
				   string_agg(format(E'wgpeer_apply_latency_seconds_bucket{interface="%s",node="%s",le="%s"} %s\n',
									 wgpeer.wg_metrics_label(b.interface), wgpeer.wg_metrics_label(b.node),
									 b.le, b.count), '' ORDER BY b.ordinality) AS buckets
			FROM wgpeer.wg_metrics_apply_latency() WITH ORDINALITY AS b
			GROUP BY b.interface) b ON b.interface = i.interface),
	lag AS (
		SELECT string_agg(format(E'wgpeer_node_lag_bytes{%s} %s\n', n.l, n.lag_bytes), '' ORDER BY n.ordinality) AS bytes,
			   string_agg(format(E'wgpeer_node_lag_seconds{%s} %s\n', n.l, n.lag_seconds), '' ORDER BY n.ordinality) AS seconds
		FROM (SELECT n.*, format('interface="%s",node="%s"', wgpeer.wg_metrics_label(n.interface),
								 wgpeer.wg_metrics_label(n.node)) AS l
			  FROM wgpeer.wg_metrics_node_lag() WITH ORDINALITY AS n) n),
	us AS (
		SELECT string_agg(format(E'wgpeer_user_devices{%s} %s\n', u.l, u.devices), '' ORDER BY u.ordinality) AS devices,
			   string_agg(format(E'wgpeer_user_online_devices{%s} %s\n', u.l, u.online_devices), '' ORDER BY u.ordinality) AS online,
			   string_agg(format(E'wgpeer_user_received_bytes_total{%s} %s\n', u.l, u.received_bytes), '' ORDER BY u.ordinality) AS received,
			   string_agg(format(E'wgpeer_user_sent_bytes_total{%s} %s\n', u.l, u.sent_bytes), '' ORDER BY u.ordinality) AS sent
		FROM (SELECT u.*, format('interface="%s",node="%s",user_id="%s"', wgpeer.wg_metrics_label(u.interface),
								 wgpeer.wg_metrics_label(u.node), wgpeer.wg_metrics_label(u.user_id)) AS l
			  FROM wgpeer.wg_metrics_users() WITH ORDINALITY AS u) u),
	qs AS (
		SELECT string_agg(format(E'wgpeer_user_quota_bytes{%s} %s\n', q.l, q.quota_bytes), '' ORDER BY q.ordinality) AS quota,
			   string_agg(format(E'wgpeer_user_quota_used_bytes{%s} %s\n', q.l, q.used_bytes), '' ORDER BY q.ordinality) AS used
		FROM (SELECT q.*, format('interface="%s",node="%s",user_id="%s"', wgpeer.wg_metrics_label(q.interface),
								 wgpeer.wg_metrics_label(q.node), wgpeer.wg_metrics_label(q.user_id)) AS l
			  FROM wgpeer.wg_metrics_quotas() WITH ORDINALITY AS q) q),
	ps AS (
		SELECT string_agg(format(E'wireguard_sent_bytes_total{%s} %s\n', p.l, p.sent_bytes), '' ORDER BY p.ordinality) AS sent,
			   string_agg(format(E'wireguard_received_bytes_total{%s} %s\n', p.l, p.received_bytes), '' ORDER BY p.ordinality) AS received,
			   string_agg(format(E'wireguard_latest_handshake_seconds{%s} %s\n', p.l, p.latest_handshake_seconds), '' ORDER BY p.ordinality) AS handshake
		FROM (SELECT p.*, format('interface="%s",public_key="%s",allowed_ips="%s",friendly_name="%s",user_id="%s"',
								 wgpeer.wg_metrics_label(p.interface), p.public_key, p.allowed_ips,
								 wgpeer.wg_metrics_label(p.friendly_name), wgpeer.wg_metrics_label(p.user_id)) AS l
			  FROM wgpeer.wg_metrics_peers() WITH ORDINALITY AS p) p)
	SELECT concat(
		wgpeer.wg_metrics_family('wgpeer_up', 'gauge', 'Whether the apply worker serving this database runs',
			format(E'wgpeer_up %s\n', s.worker_up)),
		wgpeer.wg_metrics_family('wgpeer_events_total', 'counter', 'Events logged so far (the last event id)',
			format(E'wgpeer_events_total %s\n', s.events_total)),
		wgpeer.wg_metrics_family('wgpeer_peers', 'gauge', 'Peers per interface and status', pc.peers),
		wgpeer.wg_metrics_family('wgpeer_online_peers', 'gauge', 'Live peers with a handshake in the last 3 minutes', ifs.online),
		wgpeer.wg_metrics_family('wgpeer_queue_backlog', 'gauge', 'Changes waiting to reach the interface', ifs.backlog),
		wgpeer.wg_metrics_family('wgpeer_queue_oldest_pending_seconds', 'gauge', 'Age of the oldest waiting change, 0 when none waits', ifs.oldest),
		wgpeer.wg_metrics_family('wgpeer_queue_quarantined', 'gauge', 'Changes the device refused, retried apart', ifs.quarantined),
		wgpeer.wg_metrics_family('wgpeer_apply_failures', 'gauge', 'Consecutive failed applies to the interface', ifs.failures),
		wgpeer.wg_metrics_family('wgpeer_last_apply_success_timestamp_seconds', 'gauge', 'When an apply to the interface last succeeded, 0 for never', ifs.success),
		wgpeer.wg_metrics_family('wgpeer_last_reconcile_timestamp_seconds', 'gauge', 'When the interface was last reconciled, 0 for never', ifs.reconcile),
		wgpeer.wg_metrics_family('wgpeer_apply_latency_seconds', 'histogram', 'Time from queueing a change to its apply to the interface', lat.latency),
		wgpeer.wg_metrics_family('wgpeer_node_lag_bytes', 'gauge', 'WAL the node serving the interface has not confirmed', lag.bytes),
		wgpeer.wg_metrics_family('wgpeer_node_lag_seconds', 'gauge', 'Replay lag of the node serving the interface', lag.seconds),
		wgpeer.wg_metrics_family('wgpeer_user_devices', 'gauge', 'A user''s live peers on the interface', us.devices),
		wgpeer.wg_metrics_family('wgpeer_user_online_devices', 'gauge', 'A user''s live peers with a handshake in the last 3 minutes', us.online),
		wgpeer.wg_metrics_family('wgpeer_user_received_bytes_total', 'counter', 'Bytes received from a user''s peers on the interface', us.received),
		wgpeer.wg_metrics_family('wgpeer_user_sent_bytes_total', 'counter', 'Bytes sent to a user''s peers on the interface', us.sent),
		wgpeer.wg_metrics_family('wgpeer_user_quota_bytes', 'gauge', 'Bytes a user''s peers with a quota may use in their current period', qs.quota),
		wgpeer.wg_metrics_family('wgpeer_user_quota_used_bytes', 'gauge', 'Bytes a user''s peers with a quota used in their current period', qs.used),
		wgpeer.wg_metrics_family('wireguard_sent_bytes_total', 'counter', 'Bytes sent to the peer', ps.sent),
		wgpeer.wg_metrics_family('wireguard_received_bytes_total', 'counter', 'Bytes received from the peer', ps.received),
		wgpeer.wg_metrics_family('wireguard_latest_handshake_seconds', 'gauge', 'Unix time of the last handshake with the peer, 0 for none', ps.handshake))
	FROM s, ifs, pc, lat, lag, us, qs, ps
$$;
COMMENT ON FUNCTION wg_metrics() IS
	'Prometheus exposition text: per interface, per user, and per peer with wgpeer.metrics_per_peer';

-- Nothing for PUBLIC (99-privileges-and-backups.sql revokes everything at
-- install): docs/metrics.md grants the monitoring role what it reads.
REVOKE ALL ON TABLE apply_latency FROM PUBLIC;
REVOKE ALL ON FUNCTION wg_apply_latency_bounds(),
	wg_metrics_interfaces(), wg_metrics_peer_counts(), wg_metrics_apply_latency(),
	wg_metrics_node_lag(), wg_metrics_users(), wg_metrics_quotas(),
	wg_metrics_peers(), wg_metrics_server(), wg_metrics_label(text),
	wg_metrics_family(text, text, text, text), wg_metrics() FROM PUBLIC;

------------------------------------------------------------------------------
-- AmneziaWG: AmneziaVPN's vpn:// link of a client (issue 23)
------------------------------------------------------------------------------

CREATE FUNCTION wg_peer_amnezia_uri(peer_id uuid) RETURNS text
	AS 'MODULE_PATHNAME', 'wg_peer_amnezia_uri'
	LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_peer_amnezia_uri(uuid) IS
	'The AmneziaVPN vpn:// link of a client of an AmneziaWG interface';
REVOKE ALL ON FUNCTION wg_peer_amnezia_uri(uuid) FROM PUBLIC;

------------------------------------------------------------------------------
-- Webhooks: the event log delivered to HTTP endpoints
--
-- The webhook table, its status view, wg_add_webhook and wg_remove_webhook
-- (sql/schema/11-webhooks.sql, as there), nothing for PUBLIC, and the
-- endpoints kept by pg_dump.
------------------------------------------------------------------------------

-- One row per endpoint.  cursor: the last event id delivered (or skipped
-- by the kind filter); batch_end: the last event id of the batch being
-- sent, fixed before the first attempt so that every retry sends the same
-- events under the same idempotency key.  The worker advances cursor only
-- after a 2xx, in the transaction that records it.
CREATE TABLE webhook (
	webhook_id bigint GENERATED BY DEFAULT AS IDENTITY
		(SEQUENCE NAME webhook_id_seq) PRIMARY KEY,
	url text NOT NULL,
	secret text NOT NULL,
	kinds text[],					-- NULL: every kind
	created_at timestamptz NOT NULL DEFAULT now(),
	cursor bigint NOT NULL CHECK (cursor >= 0),
	batch_end bigint CHECK (batch_end > cursor),
	delivered bigint NOT NULL DEFAULT 0,	-- events delivered
	attempts integer NOT NULL DEFAULT 0,	-- failed attempts in a row
	last_success_at timestamptz,
	failing_since timestamptz,
	next_attempt_at timestamptz,	-- NULL: when there are events
	last_error text
);
COMMENT ON TABLE webhook IS
	'Webhook endpoints and their delivery state (the secrets: administrators only)';

-- Wake the webhook worker when a webhook is added (src/sql/tell_worker.c).
CREATE TRIGGER webhook_tell_worker AFTER INSERT ON webhook
	FOR EACH STATEMENT EXECUTE FUNCTION wg_tell_worker('webhooks');

-- Every column but the secret.
CREATE VIEW webhook_status AS
	SELECT webhook_id, url, kinds, created_at, cursor, batch_end, delivered,
		   last_success_at, failing_since, attempts, next_attempt_at, last_error
	FROM webhook;
COMMENT ON VIEW webhook_status IS
	'Each webhook''s cursor, last success, failure streak, next attempt and last error';

-- Add an endpoint.  SECURITY INVOKER on purpose: the caller needs INSERT
-- on wgpeer.webhook, which only an administrator has; a blanket GRANT
-- EXECUTE ON ALL FUNCTIONS to an application role does not let it make the
-- server call URLs of its choosing.  Delivery starts after start_after:
-- by default the last event id handed out so far (new events only); 0
-- delivers the whole log kept.
CREATE FUNCTION wg_add_webhook(url text, secret text, kinds text[] DEFAULT NULL,
							   start_after bigint DEFAULT NULL)
RETURNS webhook_status
LANGUAGE plpgsql VOLATILE SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	scheme text := substring(url FROM '^([A-Za-z][A-Za-z0-9+.-]*):');
	last_id bigint;
	k text;
	w wgpeer.webhook_status;
BEGIN
	IF NOT has_table_privilege('wgpeer.webhook', 'INSERT') THEN
		RAISE EXCEPTION 'permission denied to add a webhook'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Role %s may not insert into wgpeer.webhook.', current_user),
				  HINT = 'A webhook makes the database server send requests: only an administrator (the extension''s owner or a superuser) adds one.';
	END IF;
	PERFORM wgpeer.wg_require_primary('wg_add_webhook');
	IF url IS NULL OR secret IS NULL THEN
		RAISE EXCEPTION '% cannot be null', CASE WHEN url IS NULL THEN 'url' ELSE 'secret' END
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Give the endpoint''s https:// URL and a secret of at least 16 bytes (wgpeer.wg_genpsk() makes a random one).';
	END IF;
	IF scheme IS NULL THEN
		RAISE EXCEPTION 'webhook url "%" has no scheme', url
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give an absolute URL: https://host[:port]/path.';
	END IF;
	IF lower(scheme) NOT IN ('https', 'http') THEN
		RAISE EXCEPTION 'webhook url scheme "%" is not supported', scheme
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The url is %s.', url),
				  HINT = 'Use https:// (or http:// on a network you trust).';
	END IF;
	IF url !~ '^[A-Za-z]+://[^/?#@[:space:][:cntrl:]]+([/?#][^[:space:][:cntrl:]]*)?$' THEN
		RAISE EXCEPTION 'webhook url "%" is not valid', url
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'It needs a host after the scheme, and may not contain spaces, control characters or user:password@.',
				  HINT = 'Give https://host[:port]/path; the secret authenticates the requests.';
	END IF;
	IF length(url) > 2048 THEN
		RAISE EXCEPTION 'webhook url is too long: % characters', length(url)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use a URL of at most 2048 characters.';
	END IF;
	IF octet_length(secret) < 16 THEN
		RAISE EXCEPTION 'webhook secret is too short: % bytes', octet_length(secret)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use at least 16 bytes; wgpeer.wg_genpsk() makes a random one.';
	END IF;
	IF kinds IS NOT NULL THEN
		IF cardinality(kinds) = 0 THEN
			RAISE EXCEPTION 'kinds cannot be empty'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Pass NULL to deliver every kind of event.';
		END IF;
		FOREACH k IN ARRAY kinds LOOP
			IF k IS NULL THEN
				RAISE EXCEPTION 'kinds cannot contain null'
					USING ERRCODE = 'null_value_not_allowed';
			END IF;
			BEGIN
				PERFORM k::wgpeer.event_kind;
			EXCEPTION WHEN check_violation THEN
				RAISE EXCEPTION 'unknown event kind "%"', k
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'The kinds are those of wgpeer.event_kind (see the README''s Events).';
			END;
		END LOOP;
	END IF;
	last_id := coalesce(pg_sequence_last_value('wgpeer.event_id_seq'), 0);
	IF start_after < 0 OR start_after > last_id THEN
		RAISE EXCEPTION 'start_after % is not an event id', start_after
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('Event ids handed out so far run up to %s.', last_id),
				  HINT = 'Pass 0 for the whole log kept, an event_id, or leave it out for new events only.';
	END IF;
	INSERT INTO wgpeer.webhook (url, secret, kinds, cursor)
	VALUES (url, secret, (SELECT array_agg(DISTINCT x ORDER BY x) FROM unnest(kinds) x),
			coalesce(start_after, last_id))
	RETURNING webhook_id INTO w.webhook_id;
	SELECT * INTO w FROM wgpeer.webhook_status s WHERE s.webhook_id = w.webhook_id;
	RETURN w;
END
$$;
COMMENT ON FUNCTION wg_add_webhook(text, text, text[], bigint) IS
	'Deliver events (of some kinds) to an HTTP endpoint, signed with the secret (administrators only)';

-- Remove an endpoint; a delivery in flight records nothing afterwards.
CREATE FUNCTION wg_remove_webhook(webhook_id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	IF NOT has_table_privilege('wgpeer.webhook', 'DELETE') THEN
		RAISE EXCEPTION 'permission denied to remove a webhook'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Role %s may not delete from wgpeer.webhook.', current_user),
				  HINT = 'Only an administrator (the extension''s owner or a superuser) removes webhooks.';
	END IF;
	DELETE FROM wgpeer.webhook w WHERE w.webhook_id = wg_remove_webhook.webhook_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'webhook % does not exist', webhook_id
			USING ERRCODE = 'no_data_found',
				  HINT = 'SELECT webhook_id, url FROM wgpeer.webhook_status lists them.';
	END IF;
END
$$;
COMMENT ON FUNCTION wg_remove_webhook(bigint) IS
	'Stop delivering events to a webhook and forget it (administrators only)';

REVOKE ALL ON webhook, webhook_status FROM PUBLIC;
REVOKE ALL ON SEQUENCE webhook_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION wg_add_webhook(text, text, text[], bigint),
	wg_remove_webhook(bigint) FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('webhook', '');
SELECT pg_catalog.pg_extension_config_dump('webhook_id_seq', '');

------------------------------------------------------------------------------
-- Commit to device latency (issue 22)
------------------------------------------------------------------------------

-- The next expiry of a suspended peer, which the worker looks up on every
-- commit that may move the next expiry (src/worker/expiry.c): without an
-- index that was a scan of every peer of every interface before each apply.
CREATE INDEX peer_expiry_suspended ON peer (expires_at)
	WHERE status = 'suspended';

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
