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

-- A peer's total (received plus sent) is summed in numeric and kept within
-- bigint: one peer_traffic row whose two counters add up past bigint (a
-- node's or a daemon's bogus counters) made every watch pass fail, which
-- stopped quota enforcement for every peer.  Not pinned to a search_path,
-- so that it stays inlinable: its callers are.
CREATE OR REPLACE FUNCTION wg_peer_total_bytes(peer_id uuid) RETURNS bigint
LANGUAGE sql STABLE
AS $$
	SELECT coalesce((SELECT greatest(least(t.rx_bytes::numeric + t.tx_bytes,
										   9223372036854775807), 0)::bigint
					 FROM wgpeer.peer_traffic t
					 WHERE t.peer_id = wg_peer_total_bytes.peer_id), 0)
$$;

-- The watch pass computes usage in numeric and handles each peer over a
-- quota, and each quota period that ends, in a subtransaction of its own:
-- one bad row is a warning about that peer, never a failed pass for all.
CREATE OR REPLACE FUNCTION wg_watch_peers() RETURNS void
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	r record;
	warn integer := current_setting('wgpeer.quota_warning')::integer;
	notice interval := current_setting('wgpeer.expiring_notice')::interval;
	event_retention interval := current_setting('wgpeer.event_retention')::interval;
	usage_retention interval := current_setting('wgpeer.usage_retention')::interval;
	online_after timestamptz := now() - interval '3 minutes';
BEGIN
	-- Quota periods that ended start anew; the quota lets go of the peers
	-- it suspended.  Peers a session holds are left for the next pass.
	FOR r IN SELECT q.peer_id FROM wgpeer.quota q JOIN wgpeer.peer p USING (peer_id)
			 WHERE q.period_end <= now()
			 FOR NO KEY UPDATE OF p SKIP LOCKED
	LOOP
		BEGIN
			UPDATE wgpeer.quota q
				SET period_start = wgpeer.wg_quota_period_at(q.period, q.period_anchor, now()),
					period_end = wgpeer.wg_quota_period_at(q.period, q.period_anchor, now(), 1),
					base_bytes = wgpeer.wg_peer_total_bytes(q.peer_id),
					warned_at = NULL, reached_at = NULL
				WHERE q.peer_id = r.peer_id;
			PERFORM wgpeer.wg_quota_resume(r.peer_id);
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'wgpeer could not start a new quota period for peer %: %',
				r.peer_id, SQLERRM
				USING HINT = 'The other peers were watched; this one is tried again at the next pass.';
		END;
	END LOOP;

	-- Connected: a handshake in the last 3 minutes of a live peer that was
	-- not online, newer than when it went offline (a peer resumed within 3
	-- minutes of being cut off has not connected yet); disconnected: no
	-- handshake for 3 minutes, or no longer live.
	WITH came AS (
		INSERT INTO wgpeer.peer_watch AS w (peer_id, online, online_changed_at)
		SELECT t.peer_id, true, t.latest_handshake
		FROM wgpeer.peer_traffic t JOIN wgpeer.peer p USING (peer_id)
		WHERE t.latest_handshake > online_after
		  AND p.status IN ('creating', 'active')
		ON CONFLICT (peer_id) DO UPDATE
		SET online = true, online_changed_at = EXCLUDED.online_changed_at
		WHERE NOT w.online
		  AND EXCLUDED.online_changed_at > coalesce(w.online_changed_at, '-infinity')
		RETURNING w.peer_id)
	INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
	SELECT 'connected', p.peer_id, p.user_id, p.interface,
		   jsonb_build_object('endpoint', t.endpoint,
							  'latest_handshake', t.latest_handshake)
	FROM came JOIN wgpeer.peer p USING (peer_id)
	JOIN wgpeer.peer_traffic t USING (peer_id)
	ORDER BY p.peer_id;

	WITH went AS (
		UPDATE wgpeer.peer_watch w SET online = false, online_changed_at = now()
		FROM wgpeer.peer p
		WHERE w.online AND p.peer_id = w.peer_id
		  AND (p.status NOT IN ('creating', 'active')
			   OR NOT EXISTS (SELECT FROM wgpeer.peer_traffic t
							  WHERE t.peer_id = w.peer_id
								AND t.latest_handshake > online_after))
		RETURNING w.peer_id)
	INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
	SELECT 'disconnected', p.peer_id, p.user_id, p.interface,
		   jsonb_strip_nulls(jsonb_build_object('latest_handshake', t.latest_handshake))
	FROM went JOIN wgpeer.peer p USING (peer_id)
	LEFT JOIN wgpeer.peer_traffic t USING (peer_id)
	ORDER BY p.peer_id;

	-- Quotas near or at their limit: a warning once per period, then the
	-- peer is suspended with reason 'quota'.
	-- In numeric: no quota, base or total can overflow the query that
	-- finds them, and each peer is handled on its own.
	FOR r IN SELECT q.peer_id, q.quota_bytes, q.warned_at, p.user_id, p.interface,
					p.status, wgpeer.wg_peer_total_bytes(q.peer_id)::numeric
							  - q.base_bytes AS used
			 FROM wgpeer.quota q JOIN wgpeer.peer p USING (peer_id)
			 WHERE q.reached_at IS NULL
			   AND p.status IN ('creating', 'active', 'suspended')
			   AND wgpeer.wg_peer_total_bytes(q.peer_id)::numeric - q.base_bytes >=
				   CASE WHEN q.warned_at IS NULL AND warn > 0
						THEN ceil(q.quota_bytes::numeric * warn / 100)
						ELSE q.quota_bytes END
			 ORDER BY q.peer_id
			 FOR NO KEY UPDATE OF p SKIP LOCKED
	LOOP
		BEGIN
			IF r.warned_at IS NULL AND warn > 0 THEN
				INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
				VALUES ('quota_warning', r.peer_id, r.user_id, r.interface,
						jsonb_build_object('used_bytes', r.used, 'quota_bytes', r.quota_bytes,
										   'warning_percent', warn));
				UPDATE wgpeer.quota SET warned_at = now() WHERE peer_id = r.peer_id;
			END IF;
			IF r.used >= r.quota_bytes THEN
				UPDATE wgpeer.quota SET reached_at = now() WHERE peer_id = r.peer_id;
				INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
				VALUES ('quota_reached', r.peer_id, r.user_id, r.interface,
						jsonb_build_object('used_bytes', r.used, 'quota_bytes', r.quota_bytes));
				IF r.status IN ('creating', 'active') THEN
					PERFORM wgpeer.wg_suspend_peer(r.peer_id, 'quota');
				END IF;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'wgpeer could not enforce the quota of peer %: %',
				r.peer_id, SQLERRM
				USING HINT = 'The other peers were watched; this one is tried again at the next pass.';
		END;
	END LOOP;

	-- Plans about to end: once per peer and expiry.
	IF notice > interval '0' THEN
		WITH soon AS (
			INSERT INTO wgpeer.peer_watch AS w (peer_id, expiry_noticed)
			SELECT p.peer_id, p.expires_at FROM wgpeer.peer p
			WHERE p.expires_at > now() AND p.expires_at <= now() + notice
			  AND p.status IN ('creating', 'active', 'suspended')
			ON CONFLICT (peer_id) DO UPDATE SET expiry_noticed = EXCLUDED.expiry_noticed
			WHERE w.expiry_noticed IS DISTINCT FROM EXCLUDED.expiry_noticed
			RETURNING w.peer_id)
		INSERT INTO wgpeer.event (kind, peer_id, user_id, interface, detail)
		SELECT 'expiring_soon', p.peer_id, p.user_id, p.interface,
			   jsonb_build_object('expires_at', p.expires_at)
		FROM soon JOIN wgpeer.peer p USING (peer_id)
		ORDER BY p.expires_at, p.peer_id;
	END IF;

	-- Retention (0 keeps everything).
	IF event_retention > interval '0' THEN
		DELETE FROM wgpeer.event WHERE at < now() - event_retention;
	END IF;
	IF usage_retention > interval '0' THEN
		DELETE FROM wgpeer.peer_usage WHERE hour < now() - usage_retention;
	END IF;
END
$$;
COMMENT ON FUNCTION wg_watch_peers() IS
	'Run by the worker after each traffic sample: presence, expiry notices, quotas, retention';
