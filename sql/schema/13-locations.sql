------------------------------------------------------------------------------
-- Locations, capacity and moving peers
--
-- An interface may serve a location (interface.location, e.g. 'de') and
-- take at most capacity peers (02-interfaces.sql).  wg_create_peer(
-- location => ...) places a peer on the interface of that location with
-- the most room, under the allocator's pool locks (src/sql/placement.c);
-- wg_move_peer() moves a peer to another interface, on the same server or
-- another node, keeping its keys, plan, quota and history
-- (src/sql/move.c).
------------------------------------------------------------------------------

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
