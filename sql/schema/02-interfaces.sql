------------------------------------------------------------------------------
-- Interfaces and their address pools
--
-- An interface row is the desired state of one WireGuard interface (or, in
-- node mode, of one on a node: see 07-node.sql); pool and free_address are
-- its allocator's state (src/sql/pool.c locks the pool row, and only
-- that row).  managed_key lists every key wgpeer has put on an interface:
-- the worker never touches a device peer whose key is not there.
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
	-- Which node serves the interface ('' = this cluster, the primary),
	-- copied to its peers.  NOT NULL and part of the replica identity, so
	-- that publications may filter rows on it (07-node.sql).
	node text NOT NULL DEFAULT ''
		CHECK (node = '' OR node ~ '^[a-z0-9_]{1,40}$'),
	-- The device limit of the interface (05-lifecycle.sql).
	max_peers_per_user integer
		CHECK (max_peers_per_user > 0),
	-- wireguard, or amneziawg: the amneziawg module's device, whose
	-- parameters awg holds in wgpeer's normal form (src/common/awg.c)
	flavor text NOT NULL DEFAULT 'wireguard'
		CHECK (flavor IN ('wireguard', 'amneziawg')),
	awg jsonb,
	-- Where the interface serves and how many peers it takes
	-- (13-locations.sql): wg_create_peer(location => ...) places a peer on
	-- the interface of its location with the most room.
	location text
		CONSTRAINT interface_location_check
		CHECK (location ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
	capacity integer
		CONSTRAINT interface_capacity_check CHECK (capacity > 0),
	-- How much a byte here counts against a user's pooled quota
	-- (15-user-quotas.sql)
	consumption_multiplier numeric NOT NULL DEFAULT 1
		CONSTRAINT interface_consumption_multiplier_check
		CHECK (consumption_multiplier > 0 AND consumption_multiplier <= 100),
	-- The default speed limits of its peers in kbit/s, NULL: none
	-- (10-speed-limits.sql)
	down_kbit integer CHECK (down_kbit BETWEEN 8 AND 10000000),
	up_kbit integer CHECK (up_kbit BETWEEN 8 AND 10000000),
	CONSTRAINT interface_awg_flavor
		CHECK ((flavor = 'amneziawg') = (awg IS NOT NULL)),
	CHECK (family(address) = 4 AND masklen(address) <= 30),
	CHECK (address6 IS NULL OR family(address6) = 6),
	CHECK (pool_start <= pool_end),
	CHECK (listen_port BETWEEN 1 AND 65535)
);
COMMENT ON TABLE interface IS 'WireGuard interfaces managed by wgpeer';
COMMENT ON COLUMN interface.node IS
	'The node serving the interface; empty for this server itself';
COMMENT ON COLUMN interface.flavor IS
	'wireguard, or amneziawg (obfuscated WireGuard: see awg)';
COMMENT ON COLUMN interface.awg IS
	'AmneziaWG parameters (jc, jmin, jmax, s1..s4, h1..h4, i1..i5); NULL for WireGuard';
COMMENT ON COLUMN interface.location IS
	'Where the interface serves (e.g. ''de''), for placement by location; NULL: none';
COMMENT ON COLUMN interface.capacity IS
	'Most peers (live or suspended) the interface takes; NULL: no limit';
COMMENT ON COLUMN interface.consumption_multiplier IS
	'How much a byte on this interface counts against a user''s pooled quota (default 1)';
COMMENT ON COLUMN interface.max_peers_per_user IS
	'Most live peers one user may have on this interface; NULL: wgpeer.max_peers_per_user';

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

-- Statement triggers tell the apply worker, once the transaction commits,
-- what it did: queued changes ('queue': wake up and apply them), changed
-- a peer's expiry or status ('expiry': look for the next expiry again; the
-- worker does not query for it otherwise), or registered, altered or
-- removed an interface ('interfaces': reconcile every interface now, not
-- at the reconcile interval); a node's outcomes arrived ('outcomes').
-- The C function is src/sql/tell_worker.c; its triggers are with their tables.
CREATE FUNCTION wg_tell_worker() RETURNS trigger
	AS 'MODULE_PATHNAME', 'wg_tell_worker' LANGUAGE C;
CREATE TRIGGER interface_changed AFTER INSERT OR UPDATE OR DELETE
	ON interface FOR EACH STATEMENT EXECUTE FUNCTION wg_tell_worker('interfaces');

-- Register an interface (src/sql/interface.c): validates every setting,
-- generates the server key unless one is given, and creates its pool.
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
	backend text DEFAULT 'auto',
	node text DEFAULT NULL,
	flavor text DEFAULT 'wireguard',
	awg jsonb DEFAULT NULL)
RETURNS interface
	AS 'MODULE_PATHNAME', 'wg_add_interface'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_add_interface IS
	'Register a WireGuard or AmneziaWG interface and its address pool (served by a node with node => ...)';

-- AmneziaWG (src/sql/awg.c): a fresh random set of parameters, and a
-- change of an interface's (a change of S or H invalidates every client's
-- config: a WARNING and an interface_params_changed event say so).
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

-- Unregister an interface: its peers (live, revoked and expired), pool,
-- queue and worker state go.  The WireGuard interface itself is not
-- touched.  Without force it refuses while live peers or unapplied
-- changes remain, so that nothing the database wanted removed from the
-- interface is forgotten.  On the primary only (a node's interfaces come
-- from the primary by replication).
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
COMMENT ON FUNCTION wg_remove_interface IS
	'Unregister an interface and forget its peers; the WireGuard interface itself is left as it is';

-- The address the next peer of an interface would get (src/sql/pool.c).
CREATE FUNCTION wg_next_ip(interface text DEFAULT NULL) RETURNS inet
	AS 'MODULE_PATHNAME', 'wg_next_ip'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_next_ip IS
	'The lowest free address of an interface; locks its pool until commit';
