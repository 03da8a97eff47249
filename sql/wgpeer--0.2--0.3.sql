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
