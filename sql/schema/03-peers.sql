------------------------------------------------------------------------------
-- Peers
--
-- A peer row is the desired state of one client on one interface: its
-- keys, addresses, status and plan.  What happens when a row changes is in
-- the triggers of the areas that react: the queue (04-queue-and-worker.sql),
-- status transitions (05-lifecycle.sql), the event log
-- (06-events-and-usage.sql), node mode (07-node.sql) and config links
-- (08-config-links.sql).  Creating a peer and rendering its config are C
-- (src/sql/peer.c, src/common/client_config.c).
------------------------------------------------------------------------------

-- Columns after released_at came with later versions, each where an
-- ALTER TABLE appended it (an updated database has them in that order).
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
		CHECK (status IN ('creating', 'active', 'suspended', 'revoked', 'expired')),
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz,			-- NULL: never expires
	revoked_at timestamptz,
	released_at timestamptz,		-- when the address went back to the pool
	node text NOT NULL DEFAULT '',	-- its interface's (07-node.sql)
	plan_pending interval			-- a plan waiting for the first handshake
		CHECK (plan_pending > interval '0'),
	suspended_at timestamptz,		-- off the interface, keeping everything
	suspended_reason text,
	persistent_keepalive integer	-- per-peer overrides of the interface's
		CHECK (persistent_keepalive BETWEEN 0 AND 65535),
	mtu integer CHECK (mtu BETWEEN 576 AND 9000),
	private_key_forgotten_at timestamptz,	-- 08-config-links.sql
	allowed_ips cidr[]				-- what the client routes (split tunnel)
		CONSTRAINT peer_allowed_ips_check
		CHECK (cardinality(allowed_ips) BETWEEN 1 AND 64
			   AND array_ndims(allowed_ips) = 1
			   AND array_position(allowed_ips, NULL) IS NULL),
	routes cidr[]					-- subnets behind the peer (site to site)
		CONSTRAINT peer_routes_check
		CHECK (cardinality(routes) BETWEEN 1 AND 64
			   AND array_ndims(routes) = 1
			   AND array_position(routes, NULL) IS NULL),
	down_kbit integer				-- 10-speed-limits.sql (0: unlimited)
		CHECK (down_kbit = 0 OR down_kbit BETWEEN 8 AND 10000000),
	up_kbit integer CHECK (up_kbit = 0 OR up_kbit BETWEEN 8 AND 10000000),
	rate_slot integer CHECK (rate_slot BETWEEN 1 AND 65534),
	awg jsonb,						-- the client's own AmneziaWG junk profile
	CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
	CHECK (status <> 'revoked' OR released_at IS NOT NULL),
	CHECK (status NOT IN ('creating', 'active') OR released_at IS NULL),
	CONSTRAINT peer_suspended_check
		CHECK ((status = 'suspended') = (suspended_at IS NOT NULL)
			   AND (status = 'suspended' OR suspended_reason IS NULL)
			   AND (status <> 'suspended' OR released_at IS NULL)),
	CONSTRAINT peer_private_key_forgotten_check
		CHECK (private_key_forgotten_at IS NULL OR private_key IS NULL)
);
COMMENT ON TABLE peer IS 'WireGuard peers: desired state of every interface';
COMMENT ON COLUMN peer.node IS 'Its interface''s node, for row filters';
COMMENT ON COLUMN peer.awg IS
	'This client''s own AmneziaWG junk profile (jc, jmin, jmax, i1..i5), NULL for the interface''s';
COMMENT ON COLUMN peer.plan_pending IS
	'A plan bought but not started: its length, until the first handshake sets expires_at';
COMMENT ON COLUMN peer.suspended_reason IS
	'Why the peer is suspended (free text; ''quota'' when a quota did it)';
COMMENT ON COLUMN peer.persistent_keepalive IS
	'The peer''s keepalive in seconds, instead of its interface''s; NULL: the interface''s';
COMMENT ON COLUMN peer.mtu IS
	'The MTU in the peer''s config, instead of its interface''s; NULL: the interface''s';
COMMENT ON COLUMN peer.private_key_forgotten_at IS
	'When a config link handed the client private key out and the server deleted it';
COMMENT ON COLUMN peer.allowed_ips IS
	'What the peer''s client routes through the tunnel, in its config; NULL: the interface''s allowed_ips';
COMMENT ON COLUMN peer.routes IS
	'Subnets behind the peer, its allowed IPs on the interface besides its addresses; NULL: none';

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
-- The next expiry of a suspended peer, which the worker looks up on every
-- commit that may move the next expiry (src/worker/expiry.c): without an
-- index that was a scan of every peer of every interface before each apply.
CREATE INDEX peer_expiry_suspended ON peer (expires_at)
	WHERE status = 'suspended';
CREATE INDEX peer_grace ON peer (interface, expires_at)
	WHERE status = 'expired' AND released_at IS NULL;
-- The routes of an interface's peers, for the overlap check of
-- wg_set_peer_routes(), which serializes per interface.
CREATE INDEX peer_routes ON peer (interface)
	WHERE routes IS NOT NULL AND status <> 'revoked';

-- A changed expiry or status: the worker looks for the next expiry again
-- (see wg_tell_worker, 02-interfaces.sql).
CREATE TRIGGER peer_expiry_changed AFTER INSERT OR UPDATE OF expires_at, status
	ON peer FOR EACH STATEMENT EXECUTE FUNCTION wg_tell_worker('expiry');

-- What applications see: peers without their private or preshared keys.
CREATE VIEW peer_public AS
	SELECT peer_id, user_id, interface, address, address6, public_key, dns,
		   config_name, status, created_at, expires_at, revoked_at,
		   released_at, suspended_at, suspended_reason, plan_pending
	FROM peer;
COMMENT ON VIEW peer_public IS 'Peers without key material';

-- Create a peer (src/sql/peer.c): keys unless the client brings its
-- public key, the next address, the row (whose triggers queue its
-- addition and log 'created'), and its client config.  The plan is whole
-- months, a duration, an end (until), or starts at the first handshake.
-- With location => ... instead of interface, the peer goes to the
-- interface of that location with the most room (13-locations.sql).
CREATE FUNCTION wg_create_peer(
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
COMMENT ON FUNCTION wg_create_peer IS
	'Create a peer: keys, address, row, queued kernel change and client config';

-- The client config of a stored peer (src/sql/peer.c), and its QR codes
-- (SQL wrappers of 01-keys-and-qr.sql's functions).
CREATE FUNCTION wg_peer_config(peer_id uuid) RETURNS text
	AS 'MODULE_PATHNAME', 'wg_peer_config'
	LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_peer_config IS 'The client config of a peer';

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

-- A user's peers, for an application that lists a customer's devices.
CREATE FUNCTION wg_list_user_peers(user_id text) RETURNS SETOF peer_public
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT * FROM wgpeer.peer_public v
	WHERE v.user_id = wg_list_user_peers.user_id
	  AND v.status IN ('creating', 'active', 'suspended')
	ORDER BY v.created_at DESC
$$;
COMMENT ON FUNCTION wg_list_user_peers IS
	'A user''s peers that are live or suspended, newest first';

-- Per-peer routing (src/sql/routes.c): what a client routes through the
-- tunnel (a split tunnel), and subnets behind a peer that its interface
-- routes to it (site to site).  wg_set_peer_routes() refuses routes wider
-- than /8 (IPv4) or /32 (IPv6), another interface's prefixes and reserved
-- ranges; wg_set_peer_wide_routes(), which nobody but the administrator
-- may call until granted, also sets those (a default route for an exit
-- peer).
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

-- A client's own AmneziaWG junk profile (src/sql/awg.c), laid over its
-- interface's parameters in its config.
CREATE FUNCTION wg_set_peer_awg(peer_id uuid, awg jsonb)
RETURNS jsonb
	AS 'MODULE_PATHNAME', 'wg_set_peer_awg'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_set_peer_awg(uuid, jsonb) IS
	'Give a client its own AmneziaWG junk profile (jc, jmin, jmax, i1..i5); NULL: the interface''s';

-- A client of an AmneziaWG interface as AmneziaVPN's vpn:// link
-- (src/sql/awg.c).
CREATE FUNCTION wg_peer_amnezia_uri(peer_id uuid) RETURNS text
	AS 'MODULE_PATHNAME', 'wg_peer_amnezia_uri'
	LANGUAGE C STABLE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_peer_amnezia_uri(uuid) IS
	'The AmneziaVPN vpn:// link of a client of an AmneziaWG interface';

CREATE FUNCTION wg_set_peer_wide_routes(peer_id uuid, routes cidr[])
RETURNS cidr[]
	AS 'MODULE_PATHNAME', 'wg_set_peer_wide_routes'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_set_peer_wide_routes IS
	'wg_set_peer_routes() for an administrator: wide and default routes too';

-- Importing peers that already exist on an interface (src/sql/import.c):
-- one by one, or every [Peer] of a server config.  Their keys become
-- managed keys (02-interfaces.sql).
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
