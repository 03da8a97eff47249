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

REVOKE ALL ON node, peer_outcome, node_status, peer_owner FROM PUBLIC;
REVOKE ALL ON FUNCTION wg_peer_node(), wg_interface_node_moved(),
	wg_queue_change(), wg_interface_forgotten(), wg_peer_forgotten(),
	wg_outcome_arrived(), wg_require_primary(text), wg_node_publish(text),
	wg_add_node(text), wg_node_subscribe_sql(text),
	wg_node_collect_sql(text, text), wg_suspend_peer(uuid, text),
	wg_resume_peer(uuid), wg_rotate_peer_key(uuid, text),
	wg_first_handshake(), wg_suspension_ended(),
	wg_import_peer(text, text, inet, text, text, integer, integer),
	wg_import_config(text, text, integer),
	wg_set_peer_allowed_ips(uuid, cidr[]), wg_set_peer_routes(uuid, cidr[])
	FROM PUBLIC;

DROP FUNCTION wg_recreate_keeping_grants(regprocedure, text);
