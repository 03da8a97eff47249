------------------------------------------------------------------------------
-- Events, usage and quotas
--
-- A durable event log (what happened to peers, in order, for applications
-- to follow), traffic per peer and hour, traffic quotas, and the watch
-- pass the worker runs after each traffic sample (presence, expiry
-- notices, quotas, retention).
------------------------------------------------------------------------------

-- The event log.  Written only by wgpeer (in the transaction that caused
-- an event, or by the worker for what it observes); read in order with
-- wg_events(after, max).  Every event takes its id through wg_event_id(),
-- which is what lets wg_events() return ids in order without gaps
-- (src/sql/event.c).
CREATE SEQUENCE event_id_seq;
CREATE FUNCTION wg_event_id() RETURNS bigint
	AS 'MODULE_PATHNAME', 'wg_event_id'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION wg_event_id() IS
	'A new event id (the default of event.event_id; for wgpeer''s own use)';
-- An event's kind is checked by a domain, not by a CHECK constraint on the
-- table: PostgreSQL plans a table's CHECK constraints again for every
-- statement that inserts (each event is its own INSERT, from a trigger),
-- a domain's once per session.  A new kind: ALTER DOMAIN event_kind DROP
-- CONSTRAINT event_kind_check, then ADD CONSTRAINT event_kind_check with
-- the list (in the upgrade delta; the list here in full).
CREATE DOMAIN event_kind AS text
	CONSTRAINT event_kind_check CHECK (VALUE IN (
	'created', 'activated', 'apply_failed', 'suspended', 'resumed',
	'renewed', 'plan_started', 'expiring_soon', 'expired', 'revoked',
	'key_rotated', 'quota_warning', 'quota_reached', 'connected',
	'disconnected', 'node_rejected', 'rate_changed', 'interface_params_changed',
	'moved', 'subscription_fetched', 'traffic_added', 'usage_reset'));
COMMENT ON DOMAIN event_kind IS 'What an event in wgpeer.event says happened';

CREATE TABLE event (
	event_id bigint PRIMARY KEY DEFAULT wg_event_id(),
	at timestamptz NOT NULL DEFAULT clock_timestamp(),
	kind event_kind NOT NULL,
	peer_id uuid,					-- no foreign key: events outlive peers
	user_id text,
	interface text,
	detail jsonb NOT NULL DEFAULT '{}'
);
ALTER SEQUENCE event_id_seq OWNED BY event.event_id;
-- retention deletes by age; events are appended in time order, so a
-- BRIN index finds the old ones at a fraction of a B-tree's upkeep
CREATE INDEX event_at ON event USING brin (at);
CREATE INDEX event_peer ON event (peer_id, event_id);
COMMENT ON TABLE event IS
	'What happened to peers, in order: read it with wg_events(after, max)';

CREATE FUNCTION wg_events(after bigint DEFAULT 0, max integer DEFAULT 100)
RETURNS SETOF event
	AS 'MODULE_PATHNAME', 'wg_events'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_events(bigint, integer) IS
	'Up to max events after the event id after, in order, none ever skipped';

-- The peer's own transitions, in the transaction that made them (a C
-- trigger: it runs for every peer created).  Enabled ALWAYS, so that a
-- node's outcome applied on the primary by replication (a peer activated
-- or expired there) is logged too; a node logs nothing.  A restored row
-- (src/sql/restore.c) logs no 'created'.
CREATE FUNCTION wg_peer_event() RETURNS trigger
	AS 'MODULE_PATHNAME', 'wg_peer_event'
	LANGUAGE C;
CREATE TRIGGER peer_created_event AFTER INSERT ON peer
	FOR EACH ROW EXECUTE FUNCTION wg_peer_event();
CREATE TRIGGER peer_changed_event AFTER UPDATE ON peer
	FOR EACH ROW
	WHEN (OLD.status <> NEW.status OR OLD.public_key <> NEW.public_key
		  OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
	EXECUTE FUNCTION wg_peer_event();
ALTER TABLE peer ENABLE ALWAYS TRIGGER peer_created_event;
ALTER TABLE peer ENABLE ALWAYS TRIGGER peer_changed_event;

-- Traffic per peer and hour, from the growth of the cumulative totals in
-- peer_traffic: one row per peer per hour, updated in place, written only
-- for peers whose traffic grew.  The worker's sample writes peer_traffic
-- in one statement (statement triggers see all its rows at once); a
-- node's sample arrives by replication, row by row (statement triggers
-- do not fire there).  A node keeps no usage of its own.
CREATE TABLE peer_usage (
	peer_id uuid NOT NULL REFERENCES peer ON DELETE CASCADE,
	hour timestamptz NOT NULL,
	rx_bytes bigint NOT NULL DEFAULT 0,
	tx_bytes bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (peer_id, hour)
) WITH (fillfactor = 70);
CREATE INDEX peer_usage_hour ON peer_usage (hour);
COMMENT ON TABLE peer_usage IS
	'Bytes received and sent per peer and hour (the server''s view: rx is what the peer sent)';

-- A restore fires the tables' triggers, and a restored row carries the
-- time it was first written: the worker writes its samples with
-- sampled_at = now(), so a restored traffic total adds no usage (the usage
-- was restored too, and a duplicate hour would stop the restore of
-- peer_usage).  A node's samples arrive row by row, by replication, and
-- are counted as before.
CREATE FUNCTION wg_usage_sampled() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	IF coalesce(current_setting('wgpeer.node', true), '') <> '' THEN
		RETURN NULL;
	END IF;
	IF TG_LEVEL = 'ROW' THEN
		INSERT INTO wgpeer.peer_usage AS u (peer_id, hour, rx_bytes, tx_bytes)
		SELECT NEW.peer_id, date_trunc('hour', NEW.sampled_at),
			   greatest(NEW.rx_bytes - coalesce(OLD.rx_bytes, 0), 0),
			   greatest(NEW.tx_bytes - coalesce(OLD.tx_bytes, 0), 0)
		WHERE NEW.rx_bytes > coalesce(OLD.rx_bytes, 0)
		   OR NEW.tx_bytes > coalesce(OLD.tx_bytes, 0)
		ON CONFLICT (peer_id, hour) DO UPDATE
		SET rx_bytes = u.rx_bytes + EXCLUDED.rx_bytes,
			tx_bytes = u.tx_bytes + EXCLUDED.tx_bytes;
	ELSIF TG_OP = 'INSERT' THEN
		INSERT INTO wgpeer.peer_usage AS u (peer_id, hour, rx_bytes, tx_bytes)
		SELECT n.peer_id, date_trunc('hour', n.sampled_at), n.rx_bytes, n.tx_bytes
		FROM sampled_new n
		WHERE (n.rx_bytes > 0 OR n.tx_bytes > 0) AND n.sampled_at = now()
		ON CONFLICT (peer_id, hour) DO UPDATE
		SET rx_bytes = u.rx_bytes + EXCLUDED.rx_bytes,
			tx_bytes = u.tx_bytes + EXCLUDED.tx_bytes;
	ELSE
		INSERT INTO wgpeer.peer_usage AS u (peer_id, hour, rx_bytes, tx_bytes)
		SELECT n.peer_id, date_trunc('hour', n.sampled_at),
			   greatest(n.rx_bytes - o.rx_bytes, 0),
			   greatest(n.tx_bytes - o.tx_bytes, 0)
		FROM sampled_new n JOIN sampled_old o USING (peer_id)
		WHERE n.rx_bytes > o.rx_bytes OR n.tx_bytes > o.tx_bytes
		ON CONFLICT (peer_id, hour) DO UPDATE
		SET rx_bytes = u.rx_bytes + EXCLUDED.rx_bytes,
			tx_bytes = u.tx_bytes + EXCLUDED.tx_bytes;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER usage_inserted AFTER INSERT ON peer_traffic
	REFERENCING NEW TABLE AS sampled_new
	FOR EACH STATEMENT EXECUTE FUNCTION wg_usage_sampled();
CREATE TRIGGER usage_updated AFTER UPDATE ON peer_traffic
	REFERENCING OLD TABLE AS sampled_old NEW TABLE AS sampled_new
	FOR EACH STATEMENT EXECUTE FUNCTION wg_usage_sampled();
CREATE TRIGGER usage_replicated AFTER INSERT OR UPDATE ON peer_traffic
	FOR EACH ROW EXECUTE FUNCTION wg_usage_sampled();
ALTER TABLE peer_traffic ENABLE REPLICA TRIGGER usage_replicated;

-- Traffic quotas: per peer, bytes (received + sent) per period.  Usage in
-- a period is the growth of the peer's cumulative totals since the period
-- started (base_bytes), so it survives interface resets and worker
-- restarts and is never counted twice.
CREATE TABLE quota (
	peer_id uuid PRIMARY KEY REFERENCES peer ON DELETE CASCADE,
	quota_bytes bigint NOT NULL CHECK (quota_bytes > 0),
	period text NOT NULL CHECK (period IN ('none', 'day', 'week', 'month')),
	period_anchor timestamptz NOT NULL,	-- the first period's start
	period_start timestamptz NOT NULL,
	period_end timestamptz,			-- NULL for 'none': one quota for ever
	base_bytes bigint NOT NULL,		-- the peer's total when the period started
	warned_at timestamptz,			-- this period's quota_warning event
	reached_at timestamptz,			-- when this period's quota was reached
	CHECK ((period = 'none') = (period_end IS NULL)),
	CHECK (period_end > period_start)
);
CREATE INDEX quota_period_end ON quota (period_end);
COMMENT ON TABLE quota IS
	'Traffic quota per peer: reaching it suspends the peer (reason quota) until the period ends';

-- The start of the quota period that contains at, for periods counted
-- from anchor, moved by next periods (next => 1: its end); NULL for the
-- end of a period 'none'.  Months count from the anchor itself, so
-- periods anchored on the 31st end on the last day of shorter months and
-- on the 31st again after them.
CREATE FUNCTION wg_quota_period_at(period text, anchor timestamptz,
								   at timestamptz, next integer DEFAULT 0)
RETURNS timestamptz
LANGUAGE sql STABLE
AS $$
	SELECT CASE
		WHEN period = 'none' THEN CASE WHEN next = 0 THEN anchor END
		WHEN period = 'month' THEN anchor + make_interval(months => next +
			CASE WHEN at < anchor THEN 0
				 ELSE (extract(year FROM age(at, anchor)) * 12
					   + extract(month FROM age(at, anchor)))::integer END)
		ELSE CASE WHEN at < anchor THEN anchor
				  ELSE date_bin(CASE period WHEN 'day' THEN interval '1 day'
											ELSE interval '7 days' END, at, anchor) END
			 + CASE period WHEN 'day' THEN interval '1 day'
						   ELSE interval '7 days' END * next
	END
$$;

-- A peer's total (received plus sent) is summed in numeric and kept within
-- bigint: one peer_traffic row whose two counters add up past bigint (a
-- node's or a daemon's bogus counters) made every watch pass fail, which
-- stopped quota enforcement for every peer.  Not pinned to a search_path,
-- so that it stays inlinable: its callers are.
CREATE FUNCTION wg_peer_total_bytes(peer_id uuid) RETURNS bigint
LANGUAGE sql STABLE
AS $$
	SELECT coalesce((SELECT greatest(least(t.rx_bytes::numeric + t.tx_bytes,
										   9223372036854775807), 0)::bigint
					 FROM wgpeer.peer_traffic t
					 WHERE t.peer_id = wg_peer_total_bytes.peer_id), 0)
$$;

-- Resume a peer the quota suspended, if its user's device limit allows
-- (otherwise it stays suspended, with a warning in the log).
CREATE FUNCTION wg_quota_resume(peer_id uuid) RETURNS void
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT FROM wgpeer.peer p WHERE p.peer_id = wg_quota_resume.peer_id
			   AND p.status = 'suspended' AND p.suspended_reason = 'quota') THEN
		BEGIN
			PERFORM wgpeer.wg_resume_peer(peer_id);
		EXCEPTION WHEN program_limit_exceeded THEN
			RAISE WARNING 'peer % stays suspended after its quota was lifted: %',
				peer_id, SQLERRM;
		END;
	END IF;
END
$$;

-- Set, change or (quota_bytes NULL) remove a peer's quota.  A new quota,
-- or a new period, counts from period_start: from now by default, or from
-- an earlier start using the usage history.  Changing only the amount
-- keeps what was used in the period.  A peer the quota suspended comes
-- back when the new quota is above its usage.
CREATE FUNCTION wg_set_peer_quota(
	peer_id uuid,
	quota_bytes bigint,
	period text DEFAULT 'month',
	period_start timestamptz DEFAULT NULL)
RETURNS quota
LANGUAGE plpgsql SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	p wgpeer.peer;
	q wgpeer.quota;
	start timestamptz := coalesce(period_start, now());
	total bigint;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_set_peer_quota');
	IF peer_id IS NULL THEN
		RAISE EXCEPTION 'peer_id cannot be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF quota_bytes <= 0 THEN
		RAISE EXCEPTION 'quota_bytes must be positive, not %', quota_bytes
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the bytes (received + sent) allowed per period, or NULL to remove the quota.';
	END IF;
	IF period IS NULL THEN
		RAISE EXCEPTION 'period cannot be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Use ''day'', ''week'', ''month'' or ''none'' (one quota for the peer''s whole life).';
	END IF;
	IF period NOT IN ('none', 'day', 'week', 'month') THEN
		RAISE EXCEPTION 'unknown quota period "%"', period
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use ''day'', ''week'', ''month'' or ''none'' (one quota for the peer''s whole life).';
	END IF;
	IF start > now() THEN
		RAISE EXCEPTION 'period_start cannot be in the future'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('period_start is %s, now is %s.', start, now()),
				  HINT = 'A period starts now or earlier; leave period_start null to start it now.';
	END IF;
	SELECT * INTO p FROM wgpeer.peer x WHERE x.peer_id = wg_set_peer_quota.peer_id
		FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'peer % does not exist', peer_id USING ERRCODE = 'no_data_found';
	END IF;
	IF p.status IN ('revoked', 'expired') THEN
		RAISE EXCEPTION 'peer % is %: it cannot be given a quota', peer_id, p.status
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = CASE p.status WHEN 'expired'
						 THEN 'Renew it first with wg_renew_peer().'
						 ELSE 'Create a new peer for the user.' END;
	END IF;
	SELECT * INTO q FROM wgpeer.quota x WHERE x.peer_id = wg_set_peer_quota.peer_id;
	IF quota_bytes IS NULL THEN
		DELETE FROM wgpeer.quota x WHERE x.peer_id = wg_set_peer_quota.peer_id;
		PERFORM wgpeer.wg_quota_resume(peer_id);
		RETURN NULL;
	END IF;
	total := wgpeer.wg_peer_total_bytes(peer_id);
	IF q.peer_id IS NOT NULL AND q.period = wg_set_peer_quota.period
		AND (wg_set_peer_quota.period_start IS NULL
			 OR q.period_start = wg_set_peer_quota.period_start) THEN
		-- the same period: a new amount, the usage so far kept
		UPDATE wgpeer.quota x SET quota_bytes = wg_set_peer_quota.quota_bytes,
			warned_at = NULL, reached_at = NULL
			WHERE x.peer_id = wg_set_peer_quota.peer_id
			RETURNING * INTO q;
	ELSE
		INSERT INTO wgpeer.quota AS x (peer_id, quota_bytes, period, period_anchor,
									   period_start, period_end, base_bytes)
		VALUES (peer_id, quota_bytes, period, start, start,
				wgpeer.wg_quota_period_at(period, start, start, 1),
				greatest(total - CASE WHEN wg_set_peer_quota.period_start IS NULL THEN 0
					ELSE coalesce((SELECT sum(u.rx_bytes + u.tx_bytes)
								   FROM wgpeer.peer_usage u
								   WHERE u.peer_id = wg_set_peer_quota.peer_id
									 AND u.hour >= date_trunc('hour', start)), 0)
					END, 0))
		ON CONFLICT ON CONSTRAINT quota_pkey DO UPDATE
		SET quota_bytes = EXCLUDED.quota_bytes, period = EXCLUDED.period,
			period_anchor = EXCLUDED.period_anchor, period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end,
			base_bytes = EXCLUDED.base_bytes, warned_at = NULL, reached_at = NULL
		RETURNING * INTO q;
	END IF;
	IF total - q.base_bytes < q.quota_bytes THEN
		PERFORM wgpeer.wg_quota_resume(peer_id);
	END IF;
	RETURN q;
END
$$;
COMMENT ON FUNCTION wg_set_peer_quota(uuid, bigint, text, timestamptz) IS
	'Set a peer''s traffic quota per day, week, month or for ever; NULL removes it';

-- Per peer of a user: usage in the current period (the quota's, or the
-- calendar month without one), for psql or a bot.
CREATE FUNCTION wg_user_usage(user_id text)
RETURNS TABLE (peer_id uuid, config_name text, interface text, status text,
			   period_start timestamptz, period_end timestamptz,
			   rx_bytes bigint, tx_bytes bigint, used_bytes bigint,
			   quota_bytes bigint, used_percent numeric, used text, quota text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT p.peer_id, p.config_name, p.interface, p.status,
		   coalesce(q.period_start, date_trunc('month', now())),
		   CASE WHEN q.peer_id IS NULL THEN date_trunc('month', now()) + interval '1 month'
				ELSE q.period_end END,
		   u.rx, u.tx, used.bytes, q.quota_bytes,
		   round(100.0 * used.bytes / q.quota_bytes, 1),
		   pg_size_pretty(used.bytes), pg_size_pretty(q.quota_bytes)
	FROM wgpeer.peer p
	LEFT JOIN wgpeer.quota q USING (peer_id)
	CROSS JOIN LATERAL (
		SELECT coalesce(sum(h.rx_bytes), 0)::bigint AS rx,
			   coalesce(sum(h.tx_bytes), 0)::bigint AS tx
		FROM wgpeer.peer_usage h
		WHERE h.peer_id = p.peer_id
		  AND h.hour >= date_trunc('hour', coalesce(q.period_start,
													date_trunc('month', now())))) u
	CROSS JOIN LATERAL (
		SELECT CASE WHEN q.peer_id IS NULL THEN u.rx + u.tx
					ELSE greatest(wgpeer.wg_peer_total_bytes(p.peer_id)
								  - q.base_bytes, 0) END AS bytes) used
	WHERE p.user_id = wg_user_usage.user_id
	  AND p.status IN ('creating', 'active', 'suspended')
	ORDER BY p.created_at
$$;
COMMENT ON FUNCTION wg_user_usage(text) IS
	'A user''s live peers with their traffic this period and their quota';

-- What the worker watches for on the primary after each traffic sample:
-- peers that came online or went offline, plans about to end, quotas near
-- or at their limit, quota periods that ended; and the retention of the
-- event log and the usage history.
CREATE TABLE peer_watch (
	peer_id uuid PRIMARY KEY REFERENCES peer ON DELETE CASCADE,
	online boolean NOT NULL DEFAULT false,
	online_changed_at timestamptz,
	expiry_noticed timestamptz		-- the expires_at an expiring_soon was for
);
CREATE INDEX peer_watch_online ON peer_watch (peer_id) WHERE online;
COMMENT ON TABLE peer_watch IS
	'What the worker last told of each peer: online or not, which expiry it announced';

-- The watch pass (called by src/worker/watch.c).  It computes usage in
-- numeric and handles each peer over a quota, and each quota period that
-- ends, in a subtransaction of its own: one bad row is a warning about
-- that peer, never a failed pass for all.
CREATE FUNCTION wg_watch_peers() RETURNS void
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
