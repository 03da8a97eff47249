------------------------------------------------------------------------------
-- The peer lifecycle: plans, renewal and expiry, suspension, revocation, key
-- rotation, and the device limit per user
--
-- A peer is 'creating' until its addition is applied, then 'active'; it
-- may be 'suspended' (off its interface, keeping its keys, address,
-- expiry and traffic; it can still expire), 'expired' (off its interface,
-- its address held for a grace period, renewable) or 'revoked' (for
-- good).  The transitions are C (src/sql/peer.c, src/sql/lifecycle.c,
-- src/sql/device_limit.c) but for revocation; the queue follows each one
-- through the peer_queue trigger (04-queue-and-worker.sql), the event log
-- through peer_changed_event (06-events-and-usage.sql).
------------------------------------------------------------------------------

-- Extend a peer's expiry by months, a duration, or until a time; an
-- expired peer comes back.
CREATE FUNCTION wg_renew_peer(
	peer_id uuid,
	months integer DEFAULT NULL,
	duration interval DEFAULT NULL,
	until timestamptz DEFAULT NULL)
RETURNS peer_public
	AS 'MODULE_PATHNAME', 'wg_renew_peer'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_renew_peer IS
	'Extend a peer''s expiry (by months, a duration, or until a time); brings an expired peer back';

-- Expire every peer past its expires_at (the worker calls it when the
-- next expiry is due; an application may too).
CREATE FUNCTION wg_expire_peers() RETURNS integer
	AS 'MODULE_PATHNAME', 'wg_expire_peers'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_expire_peers IS
	'Expire every peer past its expires_at and queue its removal';

-- Revoke a peer for good: it gives its address back at once (an expired
-- peer past its grace period gave it back already).  Revoking queues
-- nothing itself: the peer_queue trigger does (none for an expired peer,
-- already off the interface).
CREATE FUNCTION wg_revoke_peer(peer_id uuid) RETURNS peer_public
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
COMMENT ON FUNCTION wg_revoke_peer IS
	'Revoke a peer: queue its removal and release its address';

-- Suspend and resume (src/sql/lifecycle.c): a quota suspends with reason
-- 'quota' (06-events-and-usage.sql).
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

-- New keys for a peer, same address and expiry (src/sql/lifecycle.c).
CREATE FUNCTION wg_rotate_peer_key(peer_id uuid, public_key text DEFAULT NULL)
RETURNS text
	AS 'MODULE_PATHNAME', 'wg_rotate_peer_key'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_rotate_peer_key IS
	'New keys for a peer, same address and expiry; returns its new config';

-- The device limit: per interface (interface.max_peers_per_user), or
-- wgpeer.max_peers_per_user across the interfaces that set none.  A claim
-- locks the user's row here (src/sql/device_limit.c).
CREATE TABLE peer_owner (
	user_id text PRIMARY KEY,
	claimed_at timestamptz NOT NULL
);
COMMENT ON TABLE peer_owner IS
	'One row per user who claimed a device under a limit: the lock that serializes claims';

-- Plans that start at the first handshake (peer.plan_pending): the first
-- handshake of a peer whose plan waits for it starts the clock.  Enabled
-- ALWAYS: on the primary the worker's sample writes peer_traffic; a node's
-- sample arrives by replication (and a node starts the clock on its own
-- copy too, so it expires the peer on time without the primary).  The
-- first handshake a node reports starts the plan of its own peer only.
CREATE FUNCTION wg_first_handshake() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	UPDATE wgpeer.peer p
		SET expires_at = NEW.latest_handshake + p.plan_pending, plan_pending = NULL
		WHERE p.peer_id = NEW.peer_id AND p.node = NEW.node
		  AND p.plan_pending IS NOT NULL
		  AND p.status IN ('creating', 'active', 'suspended');
	RETURN NULL;
END
$$;
CREATE TRIGGER peer_first_handshake
	AFTER INSERT OR UPDATE OF latest_handshake ON peer_traffic
	FOR EACH ROW WHEN (NEW.latest_handshake IS NOT NULL)
	EXECUTE FUNCTION wg_first_handshake();
ALTER TABLE peer_traffic ENABLE ALWAYS TRIGGER peer_first_handshake;
