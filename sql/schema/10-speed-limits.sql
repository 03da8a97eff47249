------------------------------------------------------------------------------
-- Speed limits
--
-- A peer's speed limits in kbit/s, each NULL for unlimited: down_kbit to
-- the peer, up_kbit from it (docs/speed-limits.md), columns of peer (in
-- 03-peers.sql), so they stay through suspension, resumption, renewal and
-- key rotation, go to nodes with the peer and are dumped with it.
-- rate_slot numbers the peer's traffic control objects on its interface
-- (its HTB class 7770:<slot>, its filters' handle); a trigger gives one to
-- a peer with a limit that holds its address, and takes it back otherwise.
-- The apply worker's rates task (src/worker/rates.c) shapes the devices.
------------------------------------------------------------------------------

COMMENT ON COLUMN peer.down_kbit IS
	'Speed limit to the peer in kbit/s, NULL: unlimited (wg_set_peer_rate)';
COMMENT ON COLUMN peer.up_kbit IS
	'Speed limit from the peer in kbit/s, NULL: unlimited (wg_set_peer_rate)';
COMMENT ON COLUMN peer.rate_slot IS
	'Number of the peer''s traffic control objects on its interface (set by wgpeer)';
CREATE UNIQUE INDEX peer_rate_slot ON peer (interface, rate_slot);

-- Give a peer a slot when it has a limit and holds its address (not
-- revoked or expired), the lowest free one on its interface; take it back
-- when not.  Allocations on one interface wait for each other.
CREATE FUNCTION wg_peer_rate_slot() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	IF (NEW.down_kbit IS NULL AND NEW.up_kbit IS NULL)
		OR NEW.status IN ('revoked', 'expired') THEN
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
				  HINT = 'Remove the limit of a peer there (wg_set_peer_rate with NULLs), or put the peer on another interface.';
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER peer_rate_slot BEFORE INSERT OR UPDATE OF down_kbit, up_kbit, status
	ON peer FOR EACH ROW EXECUTE FUNCTION wg_peer_rate_slot();

-- The apply worker shapes again when a limit, a slot or an address
-- changes (a commit of this wakes it).
CREATE TRIGGER peer_rate_changed AFTER UPDATE OF down_kbit, up_kbit, rate_slot,
	address, address6 ON peer FOR EACH STATEMENT EXECUTE FUNCTION wg_tell_worker('rates');


-- Set a peer's speed limits (NULL: unlimited); logs rate_changed when they
-- change.
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
	IF down_in NOT BETWEEN 8 AND 10000000 THEN
		RAISE EXCEPTION 'down_kbit must be between 8 and 10000000 kbit/s, not %', down_in
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the limit to the peer in kbit/s (2000 is 2 Mbit/s), or NULL for none.';
	END IF;
	IF up_in NOT BETWEEN 8 AND 10000000 THEN
		RAISE EXCEPTION 'up_kbit must be between 8 and 10000000 kbit/s, not %', up_in
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the limit from the peer in kbit/s (1000 is 1 Mbit/s), or NULL for none.';
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
	'Set a peer''s speed limits in kbit/s, down (to it) and up (from it); NULL: unlimited';
