-- wgpeer 0.1 -> 0.2
\echo Use "ALTER EXTENSION wgpeer UPDATE TO '0.2'" to load this file. \quit

-- Used below to give functions new parameters: drop old, run definition
-- (which creates the function anew under the same name), and give back
-- the EXECUTE grants roles had on the old one.  Dropped at the end.
CREATE FUNCTION wg_recreate_keeping_grants(old regprocedure, definition text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	name text := (SELECT p.proname FROM pg_proc p WHERE p.oid = old);
	grantees regrole[];
	grantable boolean[];
BEGIN
	SELECT array_agg(a.grantee::regrole), array_agg(a.is_grantable)
		INTO grantees, grantable
		FROM pg_proc p, aclexplode(p.proacl) a
		WHERE p.oid = old AND a.grantee <> p.proowner AND a.grantee <> 0;
	EXECUTE format('DROP FUNCTION %s', old);
	EXECUTE definition;
	EXECUTE format('REVOKE ALL ON FUNCTION wgpeer.%I FROM PUBLIC', name);
	FOR i IN 1 .. coalesce(array_length(grantees, 1), 0)
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION wgpeer.%I TO %I%s', name,
					   grantees[i],
					   CASE WHEN grantable[i] THEN ' WITH GRANT OPTION' ELSE '' END);
	END LOOP;
END
$$;

------------------------------------------------------------------------------
-- One failing change never holds back the others.
------------------------------------------------------------------------------

-- A change the device refused (a full device, say) is quarantined: it
-- keeps its own error and waits until quarantined_until, backing off
-- exponentially, while every other change goes through.  A later change
-- of the same key supersedes it.
ALTER TABLE queue ADD COLUMN quarantined_until timestamptz;
COMMENT ON COLUMN queue.quarantined_until IS
	'Refused by the device: not retried before this (see last_error)';
CREATE INDEX queue_quarantined ON queue (interface, public_key, change_id)
	WHERE quarantined_until IS NOT NULL;

-- The device's own settings (private key, listen port) are applied apart
-- from the peers; when the device refuses them (a listen port another
-- interface holds), the error is kept here and no peer waits for it.
ALTER TABLE worker_state
	ADD COLUMN settings_error text,
	ADD COLUMN settings_error_at timestamptz;
COMMENT ON COLUMN worker_state.settings_error IS
	'Why the device refused its private key or listen port, NULL when it took them';

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
	GROUP BY i.name, s.interface;

------------------------------------------------------------------------------
-- One wording for an interface wgpeer does not know; interfaces are
-- removed on the primary only (wg_require_primary() is defined below).
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION wg_remove_interface(name text, force boolean DEFAULT false)
	RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	ifname text := wg_remove_interface.name;
	live bigint;
	backlog bigint;
	removed bigint;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_remove_interface');
	IF ifname IS NULL OR force IS NULL THEN
		RAISE EXCEPTION 'name and force of wg_remove_interface() must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass the name as wgpeer.interface has it; force defaults to false.';
	END IF;
	-- the lock waits for allocators (their peer rows hold a key share
	-- of it) and keeps new ones out until this transaction ends
	PERFORM 1 FROM wgpeer.interface i WHERE i.name = ifname FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'interface "%" is not registered with wgpeer', ifname
			USING ERRCODE = 'undefined_object',
				  HINT = 'Register it with wgpeer.wg_add_interface(); '
						 'SELECT name FROM wgpeer.interface lists those that are.';
	END IF;

	SELECT count(*) FILTER (WHERE p.status IN ('creating', 'active'))
		INTO live FROM wgpeer.peer p WHERE p.interface = ifname;
	SELECT count(*) INTO backlog FROM wgpeer.queue q WHERE q.interface = ifname;
	IF NOT force AND live > 0 THEN
		RAISE EXCEPTION 'interface "%" still has live peers', ifname
			USING ERRCODE = 'object_in_use',
				  DETAIL = format('Peers in state creating or active: %s.', live),
				  HINT = 'Revoke them with wgpeer.wg_revoke_peer() and let the apply worker '
						 'remove them, or pass force => true to forget them (they stay on '
						 'the WireGuard interface).';
	END IF;
	IF NOT force AND backlog > 0 THEN
		RAISE EXCEPTION 'interface "%" has changes the apply worker has not applied yet',
				ifname
			USING ERRCODE = 'object_in_use',
				  DETAIL = format('Queued changes: %s.', backlog),
				  HINT = 'Wait until wgpeer.interface_status shows a backlog of 0 for it, '
						 'or pass force => true to drop them unapplied.';
	END IF;

	DELETE FROM wgpeer.queue q WHERE q.interface = ifname;
	DELETE FROM wgpeer.peer p WHERE p.interface = ifname;
	GET DIAGNOSTICS removed = ROW_COUNT;
	DELETE FROM wgpeer.interface i WHERE i.name = ifname;
	RETURN removed;
END
$$;

------------------------------------------------------------------------------
-- Several VPN servers: node mode.
--
-- One primary holds every interface and peer; each VPN server (a node)
-- runs its own PostgreSQL with wgpeer and its worker, and serves the
-- interfaces whose node is its wgpeer.node.  Logical replication carries
-- the node's interfaces and their peers (without client private keys) from
-- the primary to the node, and the node's outcomes, device state and
-- traffic back.  See the README, "Several VPN servers".
------------------------------------------------------------------------------

-- The nodes the primary knows.
CREATE TABLE node (
	name text PRIMARY KEY CHECK (name ~ '^[a-z0-9_]{1,40}$'),
	created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE node IS 'VPN servers fed by logical replication (node mode)';

-- Which node serves an interface ('' = this cluster, the primary), copied
-- to its peers.  NOT NULL and part of each table's replica identity, so
-- that publications may filter rows on it.
ALTER TABLE interface ADD COLUMN node text NOT NULL DEFAULT ''
	CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$');
COMMENT ON COLUMN interface.node IS
	'The node serving the interface; empty for this server itself';
CREATE UNIQUE INDEX interface_identity ON interface (name, node);
ALTER TABLE interface REPLICA IDENTITY USING INDEX interface_identity;
ALTER TABLE peer ADD COLUMN node text NOT NULL DEFAULT '';
COMMENT ON COLUMN peer.node IS 'Its interface''s node, for row filters';
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

-- An interface moved to another node takes its peers along.
CREATE FUNCTION wg_interface_node_moved() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	UPDATE wgpeer.peer p SET node = NEW.node
		WHERE p.interface = NEW.name AND p.node <> NEW.node;
	RETURN NULL;
END
$$;
CREATE TRIGGER interface_node_moved AFTER UPDATE OF node ON interface
	FOR EACH ROW WHEN (OLD.node IS DISTINCT FROM NEW.node)
	EXECUTE FUNCTION wg_interface_node_moved();

-- The queue's one writer: each transition of a peer that changes what
-- belongs on an interface this cluster serves queues its change.  Enabled
-- ALWAYS, so that it also fires where logical replication applies the
-- primary's rows on a node.
CREATE FUNCTION wg_queue_change() RETURNS trigger
	AS 'MODULE_PATHNAME', 'wg_queue_change' LANGUAGE C;
CREATE TRIGGER peer_queue AFTER INSERT OR UPDATE ON peer
	FOR EACH ROW EXECUTE FUNCTION wg_queue_change();
ALTER TABLE peer ENABLE ALWAYS TRIGGER peer_queue;

-- Statement triggers never fire while logical replication applies rows:
-- on a node, interfaces changed by the primary reach the worker through
-- a row trigger instead.
CREATE TRIGGER interface_changed_by_primary
	AFTER INSERT OR UPDATE OR DELETE ON interface
	FOR EACH ROW EXECUTE FUNCTION wg_tell_worker('interfaces');
ALTER TABLE interface ENABLE REPLICA TRIGGER interface_changed_by_primary;

-- Nor do cascades: on a node, what an interface or a peer removed on the
-- primary leaves behind is cleaned up here.
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

-- What became of a peer on its node, written by the node's worker and
-- replicated to the primary, where a trigger marks the peer active (with
-- the same NOTIFY wgpeer as a local apply) or expired.
CREATE TABLE peer_outcome (
	peer_id uuid PRIMARY KEY,		-- no foreign key: written on nodes
	interface text NOT NULL,
	public_key text NOT NULL,
	outcome text NOT NULL
		CHECK (outcome IN ('applied', 'removed', 'refused', 'expired')),
	at timestamptz NOT NULL,		-- when; for 'expired', the expires_at
	error text						-- for 'refused', what the device said
);
COMMENT ON TABLE peer_outcome IS
	'What each node did with its peers: applied, removed, refused or expired';

CREATE FUNCTION wg_outcome_arrived() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	IF NEW.outcome = 'applied' THEN
		UPDATE wgpeer.peer p SET status = 'active'
			WHERE p.peer_id = NEW.peer_id AND p.status = 'creating'
			  AND p.public_key = NEW.public_key;
		IF FOUND THEN
			PERFORM pg_notify('wgpeer', json_build_object(
						'peer_id', p.peer_id, 'user_id', p.user_id,
						'interface', p.interface, 'status', p.status)::text)
				FROM wgpeer.peer p WHERE p.peer_id = NEW.peer_id;
		END IF;
	ELSIF NEW.outcome = 'expired' THEN
		UPDATE wgpeer.peer p SET status = 'expired'
			WHERE p.peer_id = NEW.peer_id AND p.status IN ('creating', 'active')
			  AND p.expires_at <= NEW.at;
	ELSIF NEW.outcome = 'refused' AND (TG_OP = 'INSERT' OR OLD.outcome <> 'refused') THEN
		-- the node's first refusal; its retries are not news
		INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
		SELECT 'apply_failed', p.peer_id, p.user_id, p.interface,
			   jsonb_build_object('error', NEW.error, 'node', p.node)
		FROM wgpeer.peer p WHERE p.peer_id = NEW.peer_id;
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
			WHERE i.node = n.name AND o.outcome = 'refused') AS refused,
		   (SELECT max(o.at) FROM peer_outcome o JOIN interface i ON i.name = o.interface
			WHERE i.node = n.name AND o.outcome <> 'expired') AS last_outcome_at,
		   s.active AS connected,
		   pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn) AS lag_bytes,
		   r.replay_lag
	FROM node n
	LEFT JOIN pg_replication_slots s ON s.slot_name = 'wgpeer_node_' || n.name
	LEFT JOIN pg_stat_replication r ON r.application_name = 'wgpeer_node_' || n.name;
COMMENT ON VIEW node_status IS 'Per node: interfaces, peers, pending work, replication lag';

-- wg_add_interface() learns node => ...
SELECT wg_recreate_keeping_grants(
	'wgpeer.wg_add_interface(text, text, inet, inet, text, integer, integer,
		integer, text, text, text, inet, inet, boolean, boolean, text)',
	$def$
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
		node text DEFAULT NULL)
	RETURNS wgpeer.interface
		AS 'MODULE_PATHNAME', 'wg_add_interface'
		LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
	$def$);
COMMENT ON FUNCTION wg_add_interface IS
	'Register a WireGuard interface and its address pool (served by a node with node => ...)';

-- Revoking queues nothing itself any more: the peer_queue trigger does.
CREATE OR REPLACE FUNCTION wg_revoke_peer(peer_id uuid) RETURNS peer_public
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	old_status text;
	p wgpeer.peer;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_revoke_peer');
	SELECT status INTO old_status FROM wgpeer.peer
		WHERE peer.peer_id = wg_revoke_peer.peer_id FOR UPDATE;
	IF NOT FOUND OR old_status = 'revoked' THEN
		RETURN (SELECT v FROM wgpeer.peer_public v
				WHERE v.peer_id = wg_revoke_peer.peer_id);
	END IF;

	UPDATE wgpeer.peer
		SET status = 'revoked', revoked_at = now(),
			released_at = coalesce(released_at, now()),
			suspended_at = NULL, suspended_reason = NULL
		WHERE peer.peer_id = wg_revoke_peer.peer_id
		RETURNING * INTO p;
	-- an expired peer past its grace period gave its address back already
	INSERT INTO wgpeer.free_address (interface, address)
		SELECT p.interface, p.address
		WHERE p.released_at = now()
		ON CONFLICT DO NOTHING;
	-- the peer_queue trigger queued its removal (an expired peer is
	-- already off the interface, so none for it)
	RETURN (SELECT v FROM wgpeer.peer_public v WHERE v.peer_id = p.peer_id);
END
$$;

------------------------------------------------------------------------------
-- Plans of any length: an interval or an explicit end besides whole months,
-- and a clock that starts at the first handshake.
------------------------------------------------------------------------------

ALTER TABLE peer ADD COLUMN plan_pending interval
	CHECK (plan_pending > interval '0');
COMMENT ON COLUMN peer.plan_pending IS
	'A plan bought but not started: its length, until the first handshake sets expires_at';

-- The first handshake of a peer whose plan waits for it starts the clock.
-- Enabled ALWAYS: on the primary the worker's sample writes peer_traffic;
-- a node's sample arrives by replication (and a node starts the clock on
-- its own copy too, so it expires the peer on time without the primary).
CREATE FUNCTION wg_first_handshake() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	UPDATE wgpeer.peer p
		SET expires_at = NEW.latest_handshake + p.plan_pending, plan_pending = NULL
		WHERE p.peer_id = NEW.peer_id AND p.plan_pending IS NOT NULL
		  AND p.status IN ('creating', 'active', 'suspended');
	RETURN NULL;
END
$$;
CREATE TRIGGER peer_first_handshake
	AFTER INSERT OR UPDATE OF latest_handshake ON peer_traffic
	FOR EACH ROW WHEN (NEW.latest_handshake IS NOT NULL)
	EXECUTE FUNCTION wg_first_handshake();
ALTER TABLE peer_traffic ENABLE ALWAYS TRIGGER peer_first_handshake;

-- wg_create_peer() and wg_renew_peer() learn duration, until and
-- starts_on_handshake.
SELECT wg_recreate_keeping_grants(
	'wgpeer.wg_create_peer(text, integer, text, text, text, text)',
	$def$
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
		LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
	$def$);
SELECT wg_recreate_keeping_grants(
	'wgpeer.wg_renew_peer(uuid, integer)',
	$def$
	CREATE FUNCTION wgpeer.wg_renew_peer(
		peer_id uuid,
		months integer DEFAULT NULL,
		duration interval DEFAULT NULL,
		until timestamptz DEFAULT NULL)
	RETURNS wgpeer.peer_public
		AS 'MODULE_PATHNAME', 'wg_renew_peer'
		LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
	$def$);
COMMENT ON FUNCTION wg_create_peer IS
	'Create a peer: keys, address, row, queued kernel change and client config';
COMMENT ON FUNCTION wg_renew_peer IS
	'Extend a peer''s expiry (by months, a duration, or until a time); brings an expired peer back';

------------------------------------------------------------------------------
-- The subscription lifecycle: suspend and resume, key rotation, a device
-- limit per user.
------------------------------------------------------------------------------

-- A suspended peer is off its interface but keeps its keys, address,
-- expiry and traffic; it can still expire.
ALTER TABLE peer DROP CONSTRAINT peer_status_check;
ALTER TABLE peer ADD CONSTRAINT peer_status_check
	CHECK (status IN ('creating', 'active', 'suspended', 'revoked', 'expired'));
ALTER TABLE peer
	ADD COLUMN suspended_at timestamptz,
	ADD COLUMN suspended_reason text,
	ADD CONSTRAINT peer_suspended_check
		CHECK ((status = 'suspended') = (suspended_at IS NOT NULL)
			   AND (status = 'suspended' OR suspended_reason IS NULL)
			   AND (status <> 'suspended' OR released_at IS NULL));
COMMENT ON COLUMN peer.suspended_reason IS
	'Why the peer is suspended (free text; ''quota'' when a quota did it)';

CREATE OR REPLACE VIEW peer_public AS
	SELECT peer_id, user_id, interface, address, address6, public_key, dns,
		   config_name, status, created_at, expires_at, revoked_at,
		   released_at, suspended_at, suspended_reason, plan_pending
	FROM peer;

CREATE OR REPLACE FUNCTION wg_list_user_peers(user_id text) RETURNS SETOF peer_public
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT * FROM wgpeer.peer_public v
	WHERE v.user_id = wg_list_user_peers.user_id
	  AND v.status IN ('creating', 'active', 'suspended')
	ORDER BY v.created_at DESC
$$;
COMMENT ON FUNCTION wg_list_user_peers IS
	'A user''s peers that are live or suspended, newest first';

CREATE FUNCTION wg_suspend_peer(peer_id uuid, reason text DEFAULT NULL)
RETURNS peer_public
	AS 'MODULE_PATHNAME', 'wg_suspend_peer'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_suspend_peer IS
	'Take a peer off its interface, keeping its keys, address and expiry';

CREATE FUNCTION wg_resume_peer(peer_id uuid)
RETURNS peer_public
	AS 'MODULE_PATHNAME', 'wg_resume_peer'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_resume_peer IS
	'Bring a suspended peer back with the same config';

CREATE FUNCTION wg_rotate_peer_key(peer_id uuid, public_key text DEFAULT NULL)
RETURNS text
	AS 'MODULE_PATHNAME', 'wg_rotate_peer_key'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_rotate_peer_key IS
	'New keys for a peer, same address and expiry; returns its new config';

-- The device limit: per interface, or wgpeer.max_peers_per_user across
-- the interfaces that set none.  A claim locks the user's row here.
ALTER TABLE interface ADD COLUMN max_peers_per_user integer
	CHECK (max_peers_per_user > 0);
COMMENT ON COLUMN interface.max_peers_per_user IS
	'Most live peers one user may have on this interface; NULL: wgpeer.max_peers_per_user';
CREATE TABLE peer_owner (
	user_id text PRIMARY KEY,
	claimed_at timestamptz NOT NULL
);
COMMENT ON TABLE peer_owner IS
	'One row per user who claimed a device under a limit: the lock that serializes claims';

------------------------------------------------------------------------------
-- Per-peer overrides, and importing peers that already exist.
------------------------------------------------------------------------------

-- A peer's own keepalive (on the interface and in its config) and MTU (in
-- its config), instead of its interface's.
ALTER TABLE peer
	ADD COLUMN persistent_keepalive integer
		CHECK (persistent_keepalive BETWEEN 0 AND 65535),
	ADD COLUMN mtu integer CHECK (mtu BETWEEN 576 AND 9000);
COMMENT ON COLUMN peer.persistent_keepalive IS
	'The peer''s keepalive in seconds, instead of its interface''s; NULL: the interface''s';
COMMENT ON COLUMN peer.mtu IS
	'The MTU in the peer''s config, instead of its interface''s; NULL: the interface''s';

-- A peer leaving 'suspended' (expired, revoked) forgets the suspension.
CREATE FUNCTION wg_suspension_ended() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	NEW.suspended_at := NULL;
	NEW.suspended_reason := NULL;
	RETURN NEW;
END
$$;
CREATE TRIGGER peer_suspension_ended BEFORE UPDATE OF status ON peer
	FOR EACH ROW WHEN (OLD.status = 'suspended' AND NEW.status <> 'suspended')
	EXECUTE FUNCTION wg_suspension_ended();

CREATE FUNCTION wg_import_peer(
	interface text,
	public_key text,
	address inet,
	preshared_key text DEFAULT NULL,
	user_id text DEFAULT NULL,
	persistent_keepalive integer DEFAULT NULL,
	duration_months integer DEFAULT NULL)
RETURNS peer_public
	AS 'MODULE_PATHNAME', 'wg_import_peer'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_import_peer IS
	'Adopt an existing peer as it is: its key, preshared key, address and keepalive';

CREATE FUNCTION wg_import_config(
	interface text,
	config text,
	duration_months integer DEFAULT NULL)
RETURNS integer
	AS 'MODULE_PATHNAME', 'wg_import_config'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_import_config IS
	'Adopt every [Peer] of a server config (wg showconf); returns how many';

------------------------------------------------------------------------------
-- Usage and events: a durable event log, usage per hour, traffic quotas.
------------------------------------------------------------------------------

-- The event log.  Written only by wgpeer (in the transaction that caused
-- an event, or by the worker for what it observes); read in order with
-- wg_events(after, max).  Every event takes its id through wg_event_id(),
-- which is what lets wg_events() return ids in order without gaps.
CREATE SEQUENCE event_id_seq;
CREATE FUNCTION wg_event_id() RETURNS bigint
	AS 'MODULE_PATHNAME', 'wg_event_id'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION wg_event_id() IS
	'A new event id (the default of event.event_id; for wgpeer''s own use)';
CREATE TABLE event (
	event_id bigint PRIMARY KEY DEFAULT wg_event_id(),
	at timestamptz NOT NULL DEFAULT clock_timestamp(),
	kind text NOT NULL CHECK (kind IN (
		'created', 'activated', 'apply_failed', 'suspended', 'resumed',
		'renewed', 'plan_started', 'expiring_soon', 'expired', 'revoked',
		'key_rotated', 'quota_warning', 'quota_reached', 'connected',
		'disconnected')),
	peer_id uuid,					-- no foreign key: events outlive peers
	user_id text,
	interface text,
	detail jsonb NOT NULL DEFAULT '{}'
);
ALTER SEQUENCE event_id_seq OWNED BY event.event_id;
-- retention deletes by age; events are appended in time order, so a
-- BRIN index finds the old ones at a fraction of a B-tree's upkeep
CREATE INDEX event_at ON event USING brin (at);
CREATE INDEX event_peer ON event (peer_id, event_id);
COMMENT ON TABLE event IS
	'What happened to peers, in order: read it with wg_events(after, max)';

CREATE FUNCTION wg_events(after bigint DEFAULT 0, max integer DEFAULT 100)
RETURNS SETOF event
	AS 'MODULE_PATHNAME', 'wg_events'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_events(bigint, integer) IS
	'Up to max events after the event id after, in order, none ever skipped';

-- The peer's own transitions, in the transaction that made them (a C
-- trigger: it runs for every peer created).  Enabled ALWAYS, so that a
-- node's outcome applied on the primary by replication (a peer activated
-- or expired there) is logged too; a node logs nothing.
CREATE FUNCTION wg_peer_event() RETURNS trigger
	AS 'MODULE_PATHNAME', 'wg_peer_event'
	LANGUAGE C;
CREATE TRIGGER peer_created_event AFTER INSERT ON peer
	FOR EACH ROW EXECUTE FUNCTION wg_peer_event();
CREATE TRIGGER peer_changed_event AFTER UPDATE ON peer
	FOR EACH ROW
	WHEN (OLD.status <> NEW.status OR OLD.public_key <> NEW.public_key
		  OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
	EXECUTE FUNCTION wg_peer_event();
ALTER TABLE peer ENABLE ALWAYS TRIGGER peer_created_event;
ALTER TABLE peer ENABLE ALWAYS TRIGGER peer_changed_event;

-- Traffic per peer and hour, from the growth of the cumulative totals in
-- peer_traffic: one row per peer per hour, updated in place, written only
-- for peers whose traffic grew.  The worker's sample writes peer_traffic
-- in one statement (statement triggers see all its rows at once); a
-- node's sample arrives by replication, row by row (statement triggers
-- do not fire there).  A node keeps no usage of its own.
CREATE TABLE peer_usage (
	peer_id uuid NOT NULL REFERENCES peer ON DELETE CASCADE,
	hour timestamptz NOT NULL,
	rx_bytes bigint NOT NULL DEFAULT 0,
	tx_bytes bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (peer_id, hour)
) WITH (fillfactor = 70);
CREATE INDEX peer_usage_hour ON peer_usage (hour);
COMMENT ON TABLE peer_usage IS
	'Bytes received and sent per peer and hour (the server''s view: rx is what the peer sent)';

CREATE FUNCTION wg_usage_sampled() RETURNS trigger
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
		WHERE n.rx_bytes > 0 OR n.tx_bytes > 0
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
CREATE TRIGGER usage_inserted AFTER INSERT ON peer_traffic
	REFERENCING NEW TABLE AS sampled_new
	FOR EACH STATEMENT EXECUTE FUNCTION wg_usage_sampled();
CREATE TRIGGER usage_updated AFTER UPDATE ON peer_traffic
	REFERENCING OLD TABLE AS sampled_old NEW TABLE AS sampled_new
	FOR EACH STATEMENT EXECUTE FUNCTION wg_usage_sampled();
CREATE TRIGGER usage_replicated AFTER INSERT OR UPDATE ON peer_traffic
	FOR EACH ROW EXECUTE FUNCTION wg_usage_sampled();
ALTER TABLE peer_traffic ENABLE REPLICA TRIGGER usage_replicated;

-- Traffic quotas: per peer, bytes (received + sent) per period.  Usage in
-- a period is the growth of the peer's cumulative totals since the period
-- started (base_bytes), so it survives interface resets and worker
-- restarts and is never counted twice.
CREATE TABLE quota (
	peer_id uuid PRIMARY KEY REFERENCES peer ON DELETE CASCADE,
	quota_bytes bigint NOT NULL CHECK (quota_bytes > 0),
	period text NOT NULL CHECK (period IN ('none', 'day', 'week', 'month')),
	period_anchor timestamptz NOT NULL,	-- the first period's start
	period_start timestamptz NOT NULL,
	period_end timestamptz,			-- NULL for 'none': one quota for ever
	base_bytes bigint NOT NULL,		-- the peer's total when the period started
	warned_at timestamptz,			-- this period's quota_warning event
	reached_at timestamptz,			-- when this period's quota was reached
	CHECK ((period = 'none') = (period_end IS NULL)),
	CHECK (period_end > period_start)
);
CREATE INDEX quota_period_end ON quota (period_end);
COMMENT ON TABLE quota IS
	'Traffic quota per peer: reaching it suspends the peer (reason quota) until the period ends';

-- The start of the quota period that contains at, for periods counted
-- from anchor, moved by next periods (next => 1: its end); NULL for the
-- end of a period 'none'.  Months count from the anchor itself, so
-- periods anchored on the 31st end on the last day of shorter months and
-- on the 31st again after them.
CREATE FUNCTION wg_quota_period_at(period text, anchor timestamptz,
								   at timestamptz, next integer DEFAULT 0)
RETURNS timestamptz
LANGUAGE sql STABLE
AS $$
	SELECT CASE
		WHEN period = 'none' THEN CASE WHEN next = 0 THEN anchor END
		WHEN period = 'month' THEN anchor + make_interval(months => next +
			CASE WHEN at < anchor THEN 0
				 ELSE (extract(year FROM age(at, anchor)) * 12
					   + extract(month FROM age(at, anchor)))::integer END)
		ELSE CASE WHEN at < anchor THEN anchor
				  ELSE date_bin(CASE period WHEN 'day' THEN interval '1 day'
											ELSE interval '7 days' END, at, anchor) END
			 + CASE period WHEN 'day' THEN interval '1 day'
						   ELSE interval '7 days' END * next
	END
$$;

-- A peer's cumulative total, received plus sent.
CREATE FUNCTION wg_peer_total_bytes(peer_id uuid) RETURNS bigint
LANGUAGE sql STABLE
AS $$
	SELECT coalesce((SELECT t.rx_bytes + t.tx_bytes FROM wgpeer.peer_traffic t
					 WHERE t.peer_id = wg_peer_total_bytes.peer_id), 0)
$$;

-- Resume a peer the quota suspended, if its user's device limit allows
-- (otherwise it stays suspended, with a warning in the log).
CREATE FUNCTION wg_quota_resume(peer_id uuid) RETURNS void
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT FROM wgpeer.peer p WHERE p.peer_id = wg_quota_resume.peer_id
			   AND p.status = 'suspended' AND p.suspended_reason = 'quota') THEN
		BEGIN
			PERFORM wgpeer.wg_resume_peer(peer_id);
		EXCEPTION WHEN program_limit_exceeded THEN
			RAISE WARNING 'peer % stays suspended after its quota was lifted: %',
				peer_id, SQLERRM;
		END;
	END IF;
END
$$;

-- Set, change or (quota_bytes NULL) remove a peer's quota.  A new quota,
-- or a new period, counts from period_start: from now by default, or from
-- an earlier start using the usage history.  Changing only the amount
-- keeps what was used in the period.  A peer the quota suspended comes
-- back when the new quota is above its usage.
CREATE FUNCTION wg_set_peer_quota(
	peer_id uuid,
	quota_bytes bigint,
	period text DEFAULT 'month',
	period_start timestamptz DEFAULT NULL)
RETURNS quota
LANGUAGE plpgsql SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	p wgpeer.peer;
	q wgpeer.quota;
	start timestamptz := coalesce(period_start, now());
	total bigint;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_set_peer_quota');
	IF peer_id IS NULL THEN
		RAISE EXCEPTION 'peer_id cannot be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF quota_bytes <= 0 THEN
		RAISE EXCEPTION 'quota_bytes must be positive, not %', quota_bytes
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the bytes (received + sent) allowed per period, or NULL to remove the quota.';
	END IF;
	IF period IS NULL THEN
		RAISE EXCEPTION 'period cannot be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Use ''day'', ''week'', ''month'' or ''none'' (one quota for the peer''s whole life).';
	END IF;
	IF period NOT IN ('none', 'day', 'week', 'month') THEN
		RAISE EXCEPTION 'unknown quota period "%"', period
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use ''day'', ''week'', ''month'' or ''none'' (one quota for the peer''s whole life).';
	END IF;
	IF start > now() THEN
		RAISE EXCEPTION 'period_start cannot be in the future'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('period_start is %s, now is %s.', start, now()),
				  HINT = 'A period starts now or earlier; leave period_start null to start it now.';
	END IF;
	SELECT * INTO p FROM wgpeer.peer x WHERE x.peer_id = wg_set_peer_quota.peer_id
		FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'peer % does not exist', peer_id USING ERRCODE = 'no_data_found';
	END IF;
	IF p.status IN ('revoked', 'expired') THEN
		RAISE EXCEPTION 'peer % is %: it cannot be given a quota', peer_id, p.status
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = CASE p.status WHEN 'expired'
						 THEN 'Renew it first with wg_renew_peer().'
						 ELSE 'Create a new peer for the user.' END;
	END IF;
	SELECT * INTO q FROM wgpeer.quota x WHERE x.peer_id = wg_set_peer_quota.peer_id;
	IF quota_bytes IS NULL THEN
		DELETE FROM wgpeer.quota x WHERE x.peer_id = wg_set_peer_quota.peer_id;
		PERFORM wgpeer.wg_quota_resume(peer_id);
		RETURN NULL;
	END IF;
	total := wgpeer.wg_peer_total_bytes(peer_id);
	IF q.peer_id IS NOT NULL AND q.period = wg_set_peer_quota.period
		AND (wg_set_peer_quota.period_start IS NULL
			 OR q.period_start = wg_set_peer_quota.period_start) THEN
		-- the same period: a new amount, the usage so far kept
		UPDATE wgpeer.quota x SET quota_bytes = wg_set_peer_quota.quota_bytes,
			warned_at = NULL, reached_at = NULL
			WHERE x.peer_id = wg_set_peer_quota.peer_id
			RETURNING * INTO q;
	ELSE
		INSERT INTO wgpeer.quota AS x (peer_id, quota_bytes, period, period_anchor,
									   period_start, period_end, base_bytes)
		VALUES (peer_id, quota_bytes, period, start, start,
				wgpeer.wg_quota_period_at(period, start, start, 1),
				greatest(total - CASE WHEN wg_set_peer_quota.period_start IS NULL THEN 0
					ELSE coalesce((SELECT sum(u.rx_bytes + u.tx_bytes)
								   FROM wgpeer.peer_usage u
								   WHERE u.peer_id = wg_set_peer_quota.peer_id
									 AND u.hour >= date_trunc('hour', start)), 0)
					END, 0))
		ON CONFLICT ON CONSTRAINT quota_pkey DO UPDATE
		SET quota_bytes = EXCLUDED.quota_bytes, period = EXCLUDED.period,
			period_anchor = EXCLUDED.period_anchor, period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end,
			base_bytes = EXCLUDED.base_bytes, warned_at = NULL, reached_at = NULL
		RETURNING * INTO q;
	END IF;
	IF total - q.base_bytes < q.quota_bytes THEN
		PERFORM wgpeer.wg_quota_resume(peer_id);
	END IF;
	RETURN q;
END
$$;
COMMENT ON FUNCTION wg_set_peer_quota(uuid, bigint, text, timestamptz) IS
	'Set a peer''s traffic quota per day, week, month or for ever; NULL removes it';

-- Per peer of a user: usage in the current period (the quota's, or the
-- calendar month without one), for psql or a bot.
CREATE FUNCTION wg_user_usage(user_id text)
RETURNS TABLE (peer_id uuid, config_name text, interface text, status text,
			   period_start timestamptz, period_end timestamptz,
			   rx_bytes bigint, tx_bytes bigint, used_bytes bigint,
			   quota_bytes bigint, used_percent numeric, used text, quota text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT p.peer_id, p.config_name, p.interface, p.status,
		   coalesce(q.period_start, date_trunc('month', now())),
		   CASE WHEN q.peer_id IS NULL THEN date_trunc('month', now()) + interval '1 month'
				ELSE q.period_end END,
		   u.rx, u.tx, used.bytes, q.quota_bytes,
		   round(100.0 * used.bytes / q.quota_bytes, 1),
		   pg_size_pretty(used.bytes), pg_size_pretty(q.quota_bytes)
	FROM wgpeer.peer p
	LEFT JOIN wgpeer.quota q USING (peer_id)
	CROSS JOIN LATERAL (
		SELECT coalesce(sum(h.rx_bytes), 0)::bigint AS rx,
			   coalesce(sum(h.tx_bytes), 0)::bigint AS tx
		FROM wgpeer.peer_usage h
		WHERE h.peer_id = p.peer_id
		  AND h.hour >= date_trunc('hour', coalesce(q.period_start,
													date_trunc('month', now())))) u
	CROSS JOIN LATERAL (
		SELECT CASE WHEN q.peer_id IS NULL THEN u.rx + u.tx
					ELSE greatest(wgpeer.wg_peer_total_bytes(p.peer_id)
								  - q.base_bytes, 0) END AS bytes) used
	WHERE p.user_id = wg_user_usage.user_id
	  AND p.status IN ('creating', 'active', 'suspended')
	ORDER BY p.created_at
$$;
COMMENT ON FUNCTION wg_user_usage(text) IS
	'A user''s live peers with their traffic this period and their quota';

-- What the worker watches for on the primary after each traffic sample:
-- peers that came online or went offline, plans about to end, quotas near
-- or at their limit, quota periods that ended; and the retention of the
-- event log and the usage history.
CREATE TABLE peer_watch (
	peer_id uuid PRIMARY KEY REFERENCES peer ON DELETE CASCADE,
	online boolean NOT NULL DEFAULT false,
	online_changed_at timestamptz,
	expiry_noticed timestamptz		-- the expires_at an expiring_soon was for
);
CREATE INDEX peer_watch_online ON peer_watch (peer_id) WHERE online;
COMMENT ON TABLE peer_watch IS
	'What the worker last told of each peer: online or not, which expiry it announced';

CREATE FUNCTION wg_watch_peers() RETURNS void
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
		UPDATE wgpeer.quota q
			SET period_start = wgpeer.wg_quota_period_at(q.period, q.period_anchor, now()),
				period_end = wgpeer.wg_quota_period_at(q.period, q.period_anchor, now(), 1),
				base_bytes = wgpeer.wg_peer_total_bytes(q.peer_id),
				warned_at = NULL, reached_at = NULL
			WHERE q.peer_id = r.peer_id;
		PERFORM wgpeer.wg_quota_resume(r.peer_id);
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
	FOR r IN SELECT q.peer_id, q.quota_bytes, q.warned_at, p.user_id, p.interface,
					p.status, wgpeer.wg_peer_total_bytes(q.peer_id) - q.base_bytes AS used
			 FROM wgpeer.quota q JOIN wgpeer.peer p USING (peer_id)
			 WHERE q.reached_at IS NULL
			   AND p.status IN ('creating', 'active', 'suspended')
			   AND wgpeer.wg_peer_total_bytes(q.peer_id) - q.base_bytes >=
				   CASE WHEN q.warned_at IS NULL AND warn > 0
						THEN ceil(q.quota_bytes * warn / 100.0)::bigint
						ELSE q.quota_bytes END
			 ORDER BY q.peer_id
			 FOR NO KEY UPDATE OF p SKIP LOCKED
	LOOP
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
-- One-time config links: a bearer token that hands a peer's config out
-- once, to a role that cannot read private keys otherwise.
------------------------------------------------------------------------------

-- Only the SHA-256 of a token is kept.  A link goes when it is redeemed,
-- when its peer is deleted, or (once expired) at the next wg_config_link().
CREATE TABLE config_link (
	token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
	peer_id uuid NOT NULL REFERENCES peer ON DELETE CASCADE,
	created_by text NOT NULL,		-- the role that asked for the link
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	CHECK (expires_at > created_at)
);
CREATE INDEX config_link_peer ON config_link (peer_id);
CREATE INDEX config_link_expiry ON config_link (expires_at);
COMMENT ON TABLE config_link IS
	'One-time config links not redeemed yet: the SHA-256 of each token, never the token';

-- Redeeming a link with forget_private_key deletes the client's private
-- key and says when: the peer's config is then refused (only the client
-- holds its key) until a key rotation gives it a new key.
ALTER TABLE peer
	ADD COLUMN private_key_forgotten_at timestamptz,
	ADD CONSTRAINT peer_private_key_forgotten_check
		CHECK (private_key_forgotten_at IS NULL OR private_key IS NULL);
COMMENT ON COLUMN peer.private_key_forgotten_at IS
	'When a config link handed the client private key out and the server deleted it';

CREATE FUNCTION wg_new_key_held() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	NEW.private_key_forgotten_at := NULL;
	RETURN NEW;
END
$$;
CREATE TRIGGER peer_new_key_held BEFORE UPDATE OF public_key ON peer
	FOR EACH ROW WHEN (OLD.private_key_forgotten_at IS NOT NULL
					   AND NEW.public_key <> OLD.public_key)
	EXECUTE FUNCTION wg_new_key_held();

CREATE FUNCTION wg_config_link(peer_id uuid,
							   valid_for interval DEFAULT '15 minutes')
RETURNS text
	AS 'MODULE_PATHNAME', 'wg_config_link'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_config_link IS
	'A one-time link token for a peer''s config (only its hash is stored)';

CREATE FUNCTION wg_redeem_config_link(token text,
									  forget_private_key boolean DEFAULT false,
									  OUT peer_id uuid, OUT config_name text,
									  OUT config text, OUT qr_png bytea)
RETURNS record
	AS 'MODULE_PATHNAME', 'wg_redeem_config_link'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_redeem_config_link IS
	'The config and QR code of a one-time link, once; optionally forget the private key';
-- Per-peer routing: what a client routes through the tunnel (a split
-- tunnel), and subnets behind a peer that its interface routes to it (site
-- to site).
------------------------------------------------------------------------------

ALTER TABLE peer
	ADD COLUMN allowed_ips cidr[]
		CONSTRAINT peer_allowed_ips_check
		CHECK (cardinality(allowed_ips) BETWEEN 1 AND 64
			   AND array_ndims(allowed_ips) = 1
			   AND array_position(allowed_ips, NULL) IS NULL),
	ADD COLUMN routes cidr[]
		CONSTRAINT peer_routes_check
		CHECK (cardinality(routes) BETWEEN 1 AND 64
			   AND array_ndims(routes) = 1
			   AND array_position(routes, NULL) IS NULL);
COMMENT ON COLUMN peer.allowed_ips IS
	'What the peer''s client routes through the tunnel, in its config; NULL: the interface''s allowed_ips';
COMMENT ON COLUMN peer.routes IS
	'Subnets behind the peer, its allowed IPs on the interface besides its addresses; NULL: none';

-- The routes of an interface's peers, for the overlap check of
-- wg_set_peer_routes(), which serializes per interface.
CREATE INDEX peer_routes ON peer (interface)
	WHERE routes IS NOT NULL AND status <> 'revoked';

CREATE FUNCTION wg_set_peer_allowed_ips(peer_id uuid, allowed_ips cidr[])
RETURNS text
	AS 'MODULE_PATHNAME', 'wg_set_peer_allowed_ips'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_set_peer_allowed_ips IS
	'What a peer''s client routes through the tunnel (NULL: its interface''s); returns its new config';

CREATE FUNCTION wg_set_peer_routes(peer_id uuid, routes cidr[])
RETURNS cidr[]
	AS 'MODULE_PATHNAME', 'wg_set_peer_routes'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_set_peer_routes IS
	'Subnets behind a peer, routed to it by its interface (NULL or empty: none)';

------------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC on what this version adds.
------------------------------------------------------------------------------

REVOKE ALL ON node, peer_outcome, node_status, peer_owner, event,
	event_id_seq, peer_usage, quota, peer_watch, config_link FROM PUBLIC;
REVOKE ALL ON FUNCTION wg_peer_node(), wg_interface_node_moved(),
	wg_queue_change(), wg_interface_forgotten(), wg_peer_forgotten(),
	wg_outcome_arrived(), wg_require_primary(text), wg_node_publish(text),
	wg_add_node(text), wg_node_subscribe_sql(text),
	wg_node_collect_sql(text, text), wg_suspend_peer(uuid, text),
	wg_resume_peer(uuid), wg_rotate_peer_key(uuid, text),
	wg_first_handshake(), wg_suspension_ended(),
	wg_import_peer(text, text, inet, text, text, integer, integer),
	wg_import_config(text, text, integer), wg_event_id(),
	wg_events(bigint, integer), wg_peer_event(), wg_usage_sampled(),
	wg_quota_period_at(text, timestamptz, timestamptz, integer),
	wg_peer_total_bytes(uuid), wg_quota_resume(uuid),
	wg_set_peer_quota(uuid, bigint, text, timestamptz), wg_user_usage(text),
	wg_watch_peers(), wg_new_key_held(), wg_config_link(uuid, interval),
	wg_redeem_config_link(text, boolean),
	wg_set_peer_allowed_ips(uuid, cidr[]), wg_set_peer_routes(uuid, cidr[])
	FROM PUBLIC;

DROP FUNCTION wg_recreate_keeping_grants(regprocedure, text);
