------------------------------------------------------------------------------
-- Speed limits
--
-- A peer's speed limits in kbit/s: down_kbit to the peer, up_kbit from it
-- (docs/speed-limits.md), columns of peer (in 03-peers.sql), so they stay
-- through suspension, resumption, renewal and key rotation, go to nodes
-- with the peer and are dumped with it.  NULL takes the interface's
-- default (its own down_kbit and up_kbit, in 02-interfaces.sql, NULL for
-- none); 0 is unlimited whatever the interface's default.  Each
-- direction is taken on its own.  rate_slot numbers the peer's traffic
-- control objects on its interface (its HTB class 7770:<slot>, its
-- filters' handle): a peer that holds its address (not revoked or
-- expired) and has a limit, its own or its interface's, has one.
-- The apply worker's rates task (src/worker/rates.c) shapes the devices.
------------------------------------------------------------------------------

COMMENT ON COLUMN peer.down_kbit IS
	'Speed limit to the peer in kbit/s, NULL: its interface''s, 0: unlimited (wg_set_peer_rate)';
COMMENT ON COLUMN peer.up_kbit IS
	'Speed limit from the peer in kbit/s, NULL: its interface''s, 0: unlimited (wg_set_peer_rate)';
COMMENT ON COLUMN interface.down_kbit IS
	'Default speed limit to its peers in kbit/s, NULL: none (wg_set_interface_rate)';
COMMENT ON COLUMN interface.up_kbit IS
	'Default speed limit from its peers in kbit/s, NULL: none (wg_set_interface_rate)';
COMMENT ON COLUMN peer.rate_slot IS
	'Number of the peer''s traffic control objects on its interface (set by wgpeer)';
CREATE UNIQUE INDEX peer_rate_slot ON peer (interface, rate_slot);

-- Give a peer a slot when it has a limit, its own or its interface's, and
-- holds its address (not revoked or expired), the lowest free one on its
-- interface; take it back when not.  Allocations on one interface, and
-- every read of its default, wait for each other and for a change of the
-- default (wg_set_interface_rate takes the same lock), so that no peer
-- misses a default committed meanwhile.
CREATE FUNCTION wg_peer_rate_slot() RETURNS trigger
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
CREATE TRIGGER peer_rate_slot BEFORE INSERT OR UPDATE OF down_kbit, up_kbit, status
	ON peer FOR EACH ROW EXECUTE FUNCTION wg_peer_rate_slot();

-- The apply worker shapes again when a limit, a slot or an address
-- changes, or a peer with a slot is created (a commit of this wakes it).
-- Statement triggers never fire where logical replication applies rows:
-- on a node, row triggers that only such changes fire wake it instead.
CREATE TRIGGER peer_rate_changed AFTER UPDATE OF down_kbit, up_kbit, rate_slot,
	address, address6 ON peer FOR EACH STATEMENT EXECUTE FUNCTION wg_tell_worker('rates');
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
