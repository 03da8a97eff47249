-- wgpeer 0.2 -> 0.3
\echo Use "ALTER EXTENSION wgpeer UPDATE TO '0.3'" to load this file. \quit

-- 0.3 is the security and data-safety release.  Each section below belongs
-- to one change; keep them apart so they read (and merge) on their own.

------------------------------------------------------------------------------
-- Backups: pg_dump saves the tables' rows
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- Node mode: rows from a node are checked against the node that sent them
------------------------------------------------------------------------------

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

------------------------------------------------------------------------------
-- Standbys and failover
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- Smaller fixes
------------------------------------------------------------------------------
