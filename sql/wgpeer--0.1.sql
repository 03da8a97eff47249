-- wgpeer 0.1: WireGuard peers managed from PostgreSQL.
\echo Use "CREATE EXTENSION wgpeer" to load this file. \quit

------------------------------------------------------------------------------
-- Keys
------------------------------------------------------------------------------

CREATE FUNCTION wg_genkey() RETURNS text
	AS 'MODULE_PATHNAME', 'wg_genkey' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wg_genkey() IS
	'A new clamped X25519 private key in base64, like `wg genkey`';

CREATE FUNCTION wg_pubkey(private_key text) RETURNS text
	AS 'MODULE_PATHNAME', 'wg_pubkey' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wg_pubkey(text) IS
	'The public key of a private key, like `wg pubkey`';

CREATE FUNCTION wg_genpsk() RETURNS text
	AS 'MODULE_PATHNAME', 'wg_genpsk' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wg_genpsk() IS
	'A new random preshared key in base64, like `wg genpsk`';

------------------------------------------------------------------------------
-- Interfaces and their address pools
------------------------------------------------------------------------------

CREATE TABLE interface (
	name text PRIMARY KEY,
	endpoint text NOT NULL,
	address inet NOT NULL,			-- the server's tunnel address and prefix
	address6 inet,					-- optional IPv6 address and prefix
	pool_start inet NOT NULL,
	pool_end inet NOT NULL,
	dns text,						-- normalised "a, b" list, NULL for none
	listen_port integer NOT NULL DEFAULT 51820,
	mtu integer,
	persistent_keepalive integer,
	allowed_ips text NOT NULL,		-- what clients route through the tunnel
	private_key text,				-- NULL when the key is kept elsewhere
	public_key text NOT NULL,
	preshared_keys boolean NOT NULL DEFAULT true,
	exclusive boolean NOT NULL DEFAULT false,	-- remove peers nobody registered
	backend text NOT NULL DEFAULT 'auto'		-- how the worker reaches it
		CHECK (backend IN ('auto', 'netlink', 'uapi')),
	created_at timestamptz NOT NULL DEFAULT now(),
	CHECK (family(address) = 4 AND masklen(address) <= 30),
	CHECK (address6 IS NULL OR family(address6) = 6),
	CHECK (pool_start <= pool_end),
	CHECK (listen_port BETWEEN 1 AND 65535)
);
COMMENT ON TABLE interface IS 'WireGuard interfaces managed by wgpeer';

-- Allocation state of one interface.  Allocators lock this row, and only
-- this row, so they serialize per interface without blocking readers,
-- the apply worker or other interfaces.
CREATE TABLE pool (
	interface text PRIMARY KEY REFERENCES interface ON DELETE CASCADE,
	next_address inet NOT NULL		-- no address below it is handed out
									-- from here; the allocator skips held
									-- ones at and above it
);
COMMENT ON TABLE pool IS 'Per-interface allocation state (high-water mark)';

-- Addresses below the high-water mark given back by revoked or expired
-- peers.  An entry may be stale (taken again since); the allocator drops
-- those when it meets them.
CREATE TABLE free_address (
	interface text NOT NULL REFERENCES interface ON DELETE CASCADE,
	address inet NOT NULL,
	PRIMARY KEY (interface, address)
);
COMMENT ON TABLE free_address IS 'Released addresses available for reuse';

------------------------------------------------------------------------------
-- Peers
------------------------------------------------------------------------------

CREATE TABLE peer (
	peer_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	user_id text NOT NULL,
	interface text NOT NULL REFERENCES interface,
	address inet NOT NULL,
	address6 inet,
	public_key text NOT NULL,
	private_key text,				-- NULL when the client brought its own key
	preshared_key text,
	dns text,						-- overrides the interface's when set
	config_name text NOT NULL,
	status text NOT NULL DEFAULT 'creating'
		CHECK (status IN ('creating', 'active', 'revoked', 'expired')),
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz,			-- NULL: never expires
	revoked_at timestamptz,
	released_at timestamptz,		-- when the address went back to the pool
	CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
	CHECK (status <> 'revoked' OR released_at IS NOT NULL),
	CHECK (status NOT IN ('creating', 'active') OR released_at IS NULL)
);
COMMENT ON TABLE peer IS 'WireGuard peers: desired state of every interface';

-- The backstop: two peers holding an address can never share it.  The
-- distinguishing column leads, so a lookup by address or by key can only
-- use its own index, whatever the planner believes about the table's size
-- (a plan cached while the table was small once picked the key index for
-- an address lookup and scanned every peer of the interface).
CREATE UNIQUE INDEX peer_live_address ON peer (address, interface)
	WHERE released_at IS NULL;
CREATE UNIQUE INDEX peer_live_address6 ON peer (address6, interface)
	WHERE released_at IS NULL AND address6 IS NOT NULL;
CREATE UNIQUE INDEX peer_live_public_key ON peer (public_key, interface)
	WHERE released_at IS NULL;
CREATE INDEX peer_user ON peer (user_id, created_at);
CREATE INDEX peer_expiry ON peer (expires_at)
	WHERE status IN ('creating', 'active');
CREATE INDEX peer_grace ON peer (interface, expires_at)
	WHERE status = 'expired' AND released_at IS NULL;

-- Statement triggers tell the apply worker, once the transaction commits,
-- what it did: queued changes ('queue': wake up and apply them), changed
-- a peer's expiry or status ('expiry': look for the next expiry again; the
-- worker does not query for it otherwise), or registered, altered or
-- removed an interface ('interfaces': reconcile every interface now, not
-- at the reconcile interval).
CREATE FUNCTION wg_tell_worker() RETURNS trigger
	AS 'MODULE_PATHNAME', 'wg_tell_worker' LANGUAGE C;
CREATE TRIGGER peer_expiry_changed AFTER INSERT OR UPDATE OF expires_at, status
	ON peer FOR EACH STATEMENT EXECUTE FUNCTION wg_tell_worker('expiry');
CREATE TRIGGER interface_changed AFTER INSERT OR UPDATE OR DELETE
	ON interface FOR EACH STATEMENT EXECUTE FUNCTION wg_tell_worker('interfaces');

-- What applications see: peers without their private or preshared keys.
CREATE VIEW peer_public AS
	SELECT peer_id, user_id, interface, address, address6, public_key, dns,
		   config_name, status, created_at, expires_at, revoked_at,
		   released_at
	FROM peer;
COMMENT ON VIEW peer_public IS 'Peers without key material';

------------------------------------------------------------------------------
-- The change queue: desired kernel changes, written in the caller's
-- transaction, consumed by the apply worker after commit.
------------------------------------------------------------------------------

CREATE TABLE queue (
	change_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	interface text NOT NULL REFERENCES interface,
	peer_id uuid NOT NULL REFERENCES peer,
	op text NOT NULL CHECK (op IN ('add', 'remove')),
	public_key text NOT NULL,
	queued_at timestamptz NOT NULL DEFAULT now(),
	attempts integer NOT NULL DEFAULT 0,
	last_error text,
	next_attempt_at timestamptz
);
COMMENT ON TABLE queue IS 'Peer changes waiting to reach the interface';
CREATE INDEX queue_interface ON queue (interface, change_id);

-- Every statement that queues a change tells the transaction to wake the
-- apply worker when it commits.
CREATE TRIGGER queue_wake AFTER INSERT ON queue
	FOR EACH STATEMENT EXECUTE FUNCTION wg_tell_worker('queue');

-- What the apply worker knows about each interface it has served.
CREATE TABLE worker_state (
	interface text PRIMARY KEY REFERENCES interface ON DELETE CASCADE,
	last_success_at timestamptz,
	last_error text,
	last_error_at timestamptz,
	failures integer NOT NULL DEFAULT 0,	-- consecutive failed applies
	retry_at timestamptz					-- no apply before this
);
COMMENT ON TABLE worker_state IS 'Apply worker outcome per interface';

-- Per interface: how much waits, since when, and how the last apply went.
CREATE VIEW interface_status AS
	SELECT i.name AS interface,
		   count(q.change_id) AS backlog,
		   min(q.queued_at) AS oldest_pending,
		   max(q.attempts) AS attempts,
		   s.last_success_at, s.last_error, s.last_error_at, s.retry_at
	FROM interface i
	LEFT JOIN queue q ON q.interface = i.name
	LEFT JOIN worker_state s ON s.interface = i.name
	GROUP BY i.name, s.interface;
COMMENT ON VIEW interface_status IS 'Apply backlog and errors per interface';

-- The kernel's view, as the apply worker last read it for wg_show().
CREATE TABLE device (
	interface text PRIMARY KEY REFERENCES interface ON DELETE CASCADE,
	sampled_at timestamptz,
	error text,						-- why the device could not be read
	reconciled_at timestamptz,		-- the last reconcile and what it did
	added integer,
	corrected integer,
	removed integer,
	foreign_peers integer,
	reconcile_error text
);
COMMENT ON TABLE device IS 'When the apply worker last read and reconciled each interface';
CREATE TABLE device_peer (
	interface text NOT NULL REFERENCES interface ON DELETE CASCADE,
	public_key text NOT NULL,
	endpoint text,
	allowed_ips text NOT NULL,
	latest_handshake timestamptz,
	rx_bytes bigint NOT NULL,
	tx_bytes bigint NOT NULL,
	persistent_keepalive integer NOT NULL,
	PRIMARY KEY (interface, public_key)
);
COMMENT ON TABLE device_peer IS 'Peers as the kernel last reported them';

-- Traffic per peer as cumulative totals: each sample adds the growth of
-- the kernel's counters, so totals survive interface recreation and
-- counter resets.  Rows are updated in place, only when something changed.
CREATE TABLE peer_traffic (
	peer_id uuid PRIMARY KEY REFERENCES peer ON DELETE CASCADE,
	rx_bytes bigint NOT NULL DEFAULT 0,
	tx_bytes bigint NOT NULL DEFAULT 0,
	latest_handshake timestamptz,
	endpoint text,
	sampled_at timestamptz NOT NULL
) WITH (fillfactor = 70);
COMMENT ON TABLE peer_traffic IS 'Cumulative traffic and last handshake per peer';
ALTER TABLE device_peer SET (fillfactor = 70);

-- Peers with their traffic and whether they are online (a handshake in
-- the last 3 minutes).
CREATE VIEW peer_status AS
	SELECT p.peer_id, p.user_id, p.interface, p.address, p.address6,
		   p.status, p.expires_at, t.latest_handshake, t.endpoint,
		   coalesce(t.rx_bytes, 0) AS rx_bytes,
		   coalesce(t.tx_bytes, 0) AS tx_bytes,
		   coalesce(t.latest_handshake > now() - interval '3 minutes', false)
			   AS online,
		   t.sampled_at
	FROM peer p LEFT JOIN peer_traffic t USING (peer_id);
COMMENT ON VIEW peer_status IS 'Peers with cumulative traffic and online flag';

------------------------------------------------------------------------------
-- The API
------------------------------------------------------------------------------

CREATE FUNCTION wg_add_interface(
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
	backend text DEFAULT 'auto')
RETURNS interface
	AS 'MODULE_PATHNAME', 'wg_add_interface'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_add_interface IS
	'Register a WireGuard interface and its address pool';

-- Unregister an interface: its peers (live, revoked and expired), pool,
-- queue and worker state go.  The WireGuard interface itself is not
-- touched.  Without force it refuses while live peers or unapplied
-- changes remain, so that nothing the database wanted removed from the
-- interface is forgotten.
CREATE FUNCTION wg_remove_interface(name text, force boolean DEFAULT false)
	RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	ifname text := wg_remove_interface.name;
	live bigint;
	backlog bigint;
	removed bigint;
BEGIN
	IF ifname IS NULL OR force IS NULL THEN
		RAISE EXCEPTION 'name and force of wg_remove_interface() must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass the name as wgpeer.interface has it; force defaults to false.';
	END IF;
	-- the lock waits for allocators (their peer rows hold a key share
	-- of it) and keeps new ones out until this transaction ends
	PERFORM 1 FROM wgpeer.interface i WHERE i.name = ifname FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'WireGuard interface "%" is not registered', ifname
			USING ERRCODE = 'undefined_object',
				  HINT = 'SELECT name FROM wgpeer.interface lists the registered ones.';
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
COMMENT ON FUNCTION wg_remove_interface IS
	'Unregister an interface and forget its peers; the WireGuard interface itself is left as it is';

CREATE FUNCTION wg_next_ip(interface text DEFAULT NULL) RETURNS inet
	AS 'MODULE_PATHNAME', 'wg_next_ip'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_next_ip IS
	'The lowest free address of an interface; locks its pool until commit';

CREATE FUNCTION wg_create_peer(
	user_id text,
	duration_months integer DEFAULT 1,
	dns text DEFAULT NULL,
	config_name text DEFAULT NULL,
	interface text DEFAULT NULL,
	public_key text DEFAULT NULL,
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
COMMENT ON FUNCTION wg_create_peer IS
	'Create a peer: keys, address, row, queued kernel change and client config';

CREATE FUNCTION wg_renew_peer(peer_id uuid, months integer)
RETURNS peer_public
	AS 'MODULE_PATHNAME', 'wg_renew_peer'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_renew_peer IS
	'Extend a peer''s expiry; brings an expired peer back';

CREATE FUNCTION wg_expire_peers() RETURNS integer
	AS 'MODULE_PATHNAME', 'wg_expire_peers'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_expire_peers IS
	'Expire every peer past its expires_at and queue its removal';

CREATE FUNCTION wg_peer_config(peer_id uuid) RETURNS text
	AS 'MODULE_PATHNAME', 'wg_peer_config'
	LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_peer_config IS 'The client config of a peer';

CREATE FUNCTION wg_show(interface text DEFAULT NULL)
RETURNS TABLE (public_key text, endpoint text, allowed_ips text,
			   latest_handshake timestamptz, rx_bytes bigint, tx_bytes bigint,
			   persistent_keepalive integer)
	AS 'MODULE_PATHNAME', 'wg_show'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_show IS
	'The live peers of an interface, read from the kernel by the apply worker';

CREATE FUNCTION wg_reconcile(interface text DEFAULT NULL)
RETURNS TABLE (interface text, added integer, corrected integer,
			   removed integer, foreign_peers integer, error text)
	AS 'MODULE_PATHNAME', 'wg_reconcile'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_reconcile IS
	'Reconcile the interfaces with the database now and report what changed';

CREATE FUNCTION wg_revoke_peer(peer_id uuid) RETURNS peer_public
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	old_status text;
	p wgpeer.peer;
BEGIN
	SELECT status INTO old_status FROM wgpeer.peer
		WHERE peer.peer_id = wg_revoke_peer.peer_id FOR UPDATE;
	IF NOT FOUND OR old_status = 'revoked' THEN
		RETURN (SELECT v FROM wgpeer.peer_public v
				WHERE v.peer_id = wg_revoke_peer.peer_id);
	END IF;

	UPDATE wgpeer.peer
		SET status = 'revoked', revoked_at = now(),
			released_at = coalesce(released_at, now())
		WHERE peer.peer_id = wg_revoke_peer.peer_id
		RETURNING * INTO p;
	-- an expired peer past its grace period gave its address back already
	INSERT INTO wgpeer.free_address (interface, address)
		SELECT p.interface, p.address
		WHERE p.released_at = now()
		ON CONFLICT DO NOTHING;
	-- an expired peer is already off the interface
	IF old_status <> 'expired' THEN
		INSERT INTO wgpeer.queue (interface, peer_id, op, public_key)
			VALUES (p.interface, p.peer_id, 'remove', p.public_key);
	END IF;
	RETURN (SELECT v FROM wgpeer.peer_public v WHERE v.peer_id = p.peer_id);
END
$$;
COMMENT ON FUNCTION wg_revoke_peer IS
	'Revoke a peer: queue its removal and release its address';

CREATE FUNCTION wg_list_user_peers(user_id text) RETURNS SETOF peer_public
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT * FROM wgpeer.peer_public v
	WHERE v.user_id = wg_list_user_peers.user_id
	  AND v.status IN ('creating', 'active')
	ORDER BY v.created_at DESC, v.peer_id
$$;
COMMENT ON FUNCTION wg_list_user_peers IS
	'A user''s live peers (creating, active), newest first';

------------------------------------------------------------------------------
-- QR codes
------------------------------------------------------------------------------

CREATE FUNCTION wg_qr_png(config text, scale integer DEFAULT 4,
						  margin integer DEFAULT 4) RETURNS bytea
	AS 'MODULE_PATHNAME', 'wg_qr_png' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wg_qr_png(text, integer, integer) IS
	'The QR code of a config as a 1-bit grayscale PNG: scale 1..64 pixels per module, margin 0..64 modules of quiet zone (4 is standard); at most 2953 bytes of config';

CREATE FUNCTION wg_qr_svg(config text, scale integer DEFAULT 4,
						  margin integer DEFAULT 4) RETURNS text
	AS 'MODULE_PATHNAME', 'wg_qr_svg' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wg_qr_svg(text, integer, integer) IS
	'The QR code of a config as SVG: scale 1..64 pixels per module, margin 0..64 modules of quiet zone (4 is standard); at most 2953 bytes of config';

CREATE FUNCTION wg_qr_text(config text) RETURNS text
	AS 'MODULE_PATHNAME', 'wg_qr_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wg_qr_text(text) IS
	'The QR code of a config in UTF-8 half blocks with a 4-module quiet zone, for a light-on-dark terminal (psql: \pset format unaligned); needs a UTF8 database';

CREATE FUNCTION wg_peer_qr_png(peer_id uuid) RETURNS bytea
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$ SELECT wgpeer.wg_qr_png(wgpeer.wg_peer_config(peer_id)) $$;
COMMENT ON FUNCTION wg_peer_qr_png(uuid) IS
	'The QR code of a peer''s client config as a PNG (scale 4, margin 4)';

CREATE FUNCTION wg_peer_qr_svg(peer_id uuid) RETURNS text
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$ SELECT wgpeer.wg_qr_svg(wgpeer.wg_peer_config(peer_id)) $$;
COMMENT ON FUNCTION wg_peer_qr_svg(uuid) IS
	'The QR code of a peer''s client config as SVG (scale 4, margin 4)';

CREATE FUNCTION wg_peer_qr_text(peer_id uuid) RETURNS text
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$ SELECT wgpeer.wg_qr_text(wgpeer.wg_peer_config(peer_id)) $$;
COMMENT ON FUNCTION wg_peer_qr_text(uuid) IS
	'The QR code of a peer''s client config in UTF-8 half blocks, for psql';

------------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC; see the README for what to grant.
------------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA wgpeer FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA wgpeer FROM PUBLIC;
