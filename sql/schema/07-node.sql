------------------------------------------------------------------------------
-- Several VPN servers: node mode
--
-- One primary holds every interface and peer; each VPN server (a node)
-- runs its own PostgreSQL with wgpeer and its worker, and serves the
-- interfaces whose node is its wgpeer.node.  Logical replication carries
-- the node's interfaces and their peers (without client private keys) from
-- the primary to the node, and the node's outcomes, device state and
-- traffic back (docs/node-mode.md).  Replication applies rows without
-- cascades or statement triggers, so what those do elsewhere is done here
-- by row triggers enabled for replication; and a row a node sends is
-- checked against the node that sent it.
------------------------------------------------------------------------------

-- The nodes the primary knows.
CREATE TABLE node (
	name text PRIMARY KEY CHECK (name ~ '^[a-z0-9_]{1,40}$'),
	created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE node IS 'VPN servers fed by logical replication (node mode)';

-- interface.node and peer.node are part of each table's replica identity,
-- so that publications may filter rows on them.
CREATE UNIQUE INDEX interface_identity ON interface (name, node);
ALTER TABLE interface REPLICA IDENTITY USING INDEX interface_identity;
CREATE UNIQUE INDEX peer_identity ON peer (peer_id, node);
ALTER TABLE peer REPLICA IDENTITY USING INDEX peer_identity;

-- A new peer takes its interface's node.
CREATE FUNCTION wg_peer_node() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	NEW.node := coalesce((SELECT i.node FROM wgpeer.interface i
						  WHERE i.name = NEW.interface), '');
	RETURN NEW;
END
$$;
CREATE TRIGGER peer_node BEFORE INSERT ON peer
	FOR EACH ROW EXECUTE FUNCTION wg_peer_node();

-- An interface moved to another node takes its peers along and leaves
-- the old node's rows behind: they go (the new node writes its own), and
-- a quota's base moves down by the traffic counted there, so that what
-- was used this period stays used.
CREATE FUNCTION wg_interface_node_moved() RETURNS trigger
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
CREATE TRIGGER interface_node_moved AFTER UPDATE OF node ON interface
	FOR EACH ROW WHEN (OLD.node IS DISTINCT FROM NEW.node)
	EXECUTE FUNCTION wg_interface_node_moved();

-- Statement triggers never fire while logical replication applies rows:
-- on a node, interfaces changed by the primary reach the worker through
-- a row trigger instead.
CREATE TRIGGER interface_changed_by_primary
	AFTER INSERT OR UPDATE OR DELETE ON interface
	FOR EACH ROW EXECUTE FUNCTION wg_tell_worker('interfaces');
ALTER TABLE interface ENABLE REPLICA TRIGGER interface_changed_by_primary;

-- Nor do cascades: on a node, what an interface or a peer removed on the
-- primary leaves behind is cleaned up here.  An interface: its queued
-- changes, worker state, device rows and outcomes.
CREATE FUNCTION wg_interface_forgotten() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	DELETE FROM wgpeer.queue q WHERE q.interface = OLD.name;
	DELETE FROM wgpeer.worker_state s WHERE s.interface = OLD.name;
	DELETE FROM wgpeer.device_peer d WHERE d.interface = OLD.name;
	DELETE FROM wgpeer.device d WHERE d.interface = OLD.name;
	DELETE FROM wgpeer.peer_outcome o WHERE o.interface = OLD.name;
	RETURN NULL;
END
$$;
CREATE TRIGGER interface_forgotten AFTER DELETE ON interface
	FOR EACH ROW EXECUTE FUNCTION wg_interface_forgotten();
ALTER TABLE interface ENABLE REPLICA TRIGGER interface_forgotten;

-- A peer: its queued changes, traffic and outcome.
CREATE FUNCTION wg_peer_forgotten() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	DELETE FROM wgpeer.queue q WHERE q.peer_id = OLD.peer_id;
	DELETE FROM wgpeer.peer_traffic t WHERE t.peer_id = OLD.peer_id;
	DELETE FROM wgpeer.peer_outcome o WHERE o.peer_id = OLD.peer_id;
	RETURN NULL;
END
$$;
CREATE TRIGGER peer_forgotten AFTER DELETE ON peer
	FOR EACH ROW EXECUTE FUNCTION wg_peer_forgotten();
ALTER TABLE peer ENABLE REPLICA TRIGGER peer_forgotten;

-- On a node, an interface removed on the primary takes its managed keys
-- (managed_key, 02-interfaces.sql) with it.
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

-- What became of a peer on its node, written by the node's worker
-- (src/worker/outcomes.c) and replicated to the primary, where a trigger
-- marks the peer active (with the same NOTIFY wgpeer as a local apply) or
-- expired, or logs the refusal.
CREATE TABLE peer_outcome (
	peer_id uuid NOT NULL,			-- no foreign key: written on nodes
	interface text NOT NULL,
	public_key text NOT NULL,
	outcome text NOT NULL
		CHECK (outcome IN ('applied', 'removed', 'refused', 'expired')),
	at timestamptz NOT NULL,		-- when; for 'expired', the expires_at
	error text,						-- for 'refused', what the device said
	node text NOT NULL
		DEFAULT coalesce(current_setting('wgpeer.node', true), '')
		CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$'),
	PRIMARY KEY (peer_id, node)
);
COMMENT ON TABLE peer_outcome IS
	'What each node did with its peers: applied, removed, refused or expired';
COMMENT ON COLUMN peer_outcome.node IS 'The node that wrote the row; empty for this server itself';

-- An outcome arrived on the primary: 'applied' makes a peer still
-- 'creating' active, with the same NOTIFY wgpeer as a local apply;
-- 'expired' expires a peer the node expired on time without the primary;
-- a node's first refusal of a peer is an apply_failed event (its retries
-- are not news).  An outcome counts for the peer of its node and interface
-- only.
CREATE FUNCTION wg_outcome_arrived() RETURNS trigger
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
CREATE TRIGGER outcome_arrived AFTER INSERT OR UPDATE ON peer_outcome
	FOR EACH ROW EXECUTE FUNCTION wg_outcome_arrived();
ALTER TABLE peer_outcome ENABLE REPLICA TRIGGER outcome_arrived;
-- The trigger can arrive before the peer's creation is visible here; the
-- worker then marks the peer active a moment later (src/worker/outcomes.c).
CREATE TRIGGER outcome_counted AFTER INSERT OR UPDATE ON peer_outcome
	FOR EACH ROW EXECUTE FUNCTION wg_tell_worker('outcomes');
ALTER TABLE peer_outcome ENABLE REPLICA TRIGGER outcome_counted;

-- Peer and interface changes are made on the primary only.
CREATE FUNCTION wg_require_primary(function text) RETURNS void
	AS 'MODULE_PATHNAME', 'wg_require_primary'
	LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION wg_require_primary(text) IS
	'Raise 25006 when this cluster is a node (wgpeer.node is set)';

-- (Re)create the publication of a node: its interfaces, and their peers
-- without client private keys.  Run by wg_add_node(); run it again after
-- a restore (pg_dump keeps the publication but not the replica identities
-- the install script gives peer and interface) or when an upgrade gave
-- peer new columns.
CREATE FUNCTION wg_node_publish(name text) RETURNS text
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	pub text := 'wgpeer_node_' || wg_node_publish.name;
	columns text;
	tables text;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_node_publish');
	IF NOT EXISTS (SELECT FROM wgpeer.node n WHERE n.name = wg_node_publish.name) THEN
		RAISE EXCEPTION 'node "%" is not registered with wgpeer', wg_node_publish.name
			USING ERRCODE = 'undefined_object',
				  HINT = 'Register it with wgpeer.wg_add_node().';
	END IF;
	SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
		FROM pg_attribute a
		WHERE a.attrelid = 'wgpeer.peer'::regclass AND a.attnum > 0
		  AND NOT a.attisdropped AND a.attname <> 'private_key';
	tables := format('wgpeer.interface WHERE (node = %L), wgpeer.peer (%s) WHERE (node = %L)',
					 wg_node_publish.name, columns, wg_node_publish.name);
	IF EXISTS (SELECT FROM pg_publication p WHERE p.pubname = pub) THEN
		EXECUTE format('ALTER PUBLICATION %I SET TABLE %s', pub, tables);
	ELSE
		EXECUTE format('CREATE PUBLICATION %I FOR TABLE %s', pub, tables);
	END IF;
	RETURN pub;
END
$$;
COMMENT ON FUNCTION wg_node_publish(text) IS
	'(Re)create the publication that feeds a node';

-- Register a node on the primary and create its publication.
CREATE FUNCTION wg_add_node(name text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_add_node');
	IF wg_add_node.name IS NULL OR wg_add_node.name !~ '^[a-z0-9_]{1,40}$' THEN
		RAISE EXCEPTION 'invalid node name "%"', wg_add_node.name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A node name is 1 to 40 lower-case letters, digits and underscores.',
				  HINT = 'Use the name the node has as wgpeer.node, e.g. ''fra1''.';
	END IF;
	IF EXISTS (SELECT FROM wgpeer.node n WHERE n.name = wg_add_node.name) THEN
		RAISE EXCEPTION 'node "%" is already registered', wg_add_node.name
			USING ERRCODE = 'duplicate_object',
				  HINT = 'SELECT * FROM wgpeer.node_status lists the nodes.';
	END IF;
	INSERT INTO wgpeer.node (name) VALUES (wg_add_node.name);
	RETURN wgpeer.wg_node_publish(wg_add_node.name);
END
$$;
COMMENT ON FUNCTION wg_add_node(text) IS
	'Register a node (a VPN server fed by logical replication) and create its publication';

-- On a node: its publication back to the primary, and the statement that
-- subscribes it to the primary's (for psql's \gexec: CREATE SUBSCRIPTION
-- cannot run inside a function).
CREATE FUNCTION wg_node_subscribe_sql(primary_conninfo text) RETURNS SETOF text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	node text := coalesce(current_setting('wgpeer.node', true), '');
BEGIN
	IF node = '' THEN
		RAISE EXCEPTION 'this cluster is not a wgpeer node'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Set wgpeer.node to the name registered with '
						 'wgpeer.wg_add_node() on the primary, and restart.';
	END IF;
	IF primary_conninfo IS NULL OR primary_conninfo = '' THEN
		RAISE EXCEPTION 'primary_conninfo must name the primary database'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a libpq connection string, e.g. '
						 '''host=db.example.com dbname=vpn user=wgpeer_node''.';
	END IF;
	IF NOT EXISTS (SELECT FROM pg_publication p WHERE p.pubname = 'wgpeer_node_outbound') THEN
		CREATE PUBLICATION wgpeer_node_outbound FOR TABLE wgpeer.device,
			wgpeer.device_peer, wgpeer.worker_state, wgpeer.peer_traffic,
			wgpeer.peer_outcome;
	END IF;
	RETURN NEXT format('CREATE SUBSCRIPTION %I CONNECTION %L PUBLICATION %I',
					   'wgpeer_node_' || node, primary_conninfo, 'wgpeer_node_' || node);
END
$$;
COMMENT ON FUNCTION wg_node_subscribe_sql(text) IS
	'On a node: the CREATE SUBSCRIPTION to the primary, for \gexec';

-- On the primary: the statement that subscribes it to a node's outcomes.
CREATE FUNCTION wg_node_collect_sql(node text, node_conninfo text) RETURNS SETOF text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_node_collect_sql');
	IF NOT EXISTS (SELECT FROM wgpeer.node n WHERE n.name = wg_node_collect_sql.node) THEN
		RAISE EXCEPTION 'node "%" is not registered with wgpeer', wg_node_collect_sql.node
			USING ERRCODE = 'undefined_object',
				  HINT = 'Register it with wgpeer.wg_add_node().';
	END IF;
	IF node_conninfo IS NULL OR node_conninfo = '' THEN
		RAISE EXCEPTION 'node_conninfo must name the node''s database'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a libpq connection string, e.g. '
						 '''host=vpn-a.example.com dbname=vpn user=wgpeer_primary''.';
	END IF;
	RETURN NEXT format('CREATE SUBSCRIPTION %I CONNECTION %L PUBLICATION wgpeer_node_outbound',
					   'wgpeer_from_' || wg_node_collect_sql.node, node_conninfo);
END
$$;
COMMENT ON FUNCTION wg_node_collect_sql(text, text) IS
	'On the primary: the CREATE SUBSCRIPTION to a node''s outcomes, for \gexec';

-- Per node, from the primary: its interfaces, peers, what waits, and how
-- far behind replication is.
CREATE VIEW node_status AS
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
COMMENT ON VIEW node_status IS 'Per node: interfaces, peers, pending work, replication lag';

-- Rows from a node are checked against the node that sent them.  The
-- tables nodes publish back (device, device_peer, worker_state,
-- peer_traffic, peer_outcome) hold the writing node's name in their key,
-- so that two nodes never write the same row (an interface moved from one
-- node to another, both reporting it, stalled the subscription on a
-- duplicate key).  On the primary a row trigger checks every row a node's
-- subscription applies, against the node that subscription collects from,
-- and drops (never raises: an error stalls the subscription) what that
-- node may not write, recording it as a node_rejected event.

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
