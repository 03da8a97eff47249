------------------------------------------------------------------------------
-- Pooled traffic: a quota per user
--
-- All of a user's peers draw from one allowance: the user's quota per
-- period plus the top-ups (wg_add_traffic) bought in the period and not
-- expired.  Traffic counts as the peers' hourly usage (peer_usage) since
-- the period started, each peer's weighted by its interface's
-- consumption_multiplier (02-interfaces.sql: a premium location may count
-- double).  The worker's watch pass (wg_watch_user_quotas, after
-- wg_watch_peers) warns at each threshold once per period and, at the
-- allowance, suspends every live peer of the user with reason 'quota'; a
-- new period, a top-up or wg_reset_usage() resumes them.  The ledger
-- records every quota change, top-up and reset, so that support can
-- explain any balance.
------------------------------------------------------------------------------

CREATE TABLE user_quota (
	user_id text PRIMARY KEY,
	quota_bytes bigint NOT NULL CHECK (quota_bytes >= 0),	-- per period
	period text NOT NULL CHECK (period IN ('none', 'day', 'week', 'month')),
	period_anchor timestamptz NOT NULL,
	period_start timestamptz NOT NULL,
	period_end timestamptz,			-- NULL for 'none'
	-- usage of the period's first hour before period_start (usage is
	-- hourly): counted in that hour, not in the period
	base_bytes numeric NOT NULL DEFAULT 0,
	warn_percents integer[] NOT NULL DEFAULT '{80}'
		CHECK (0 < ALL (warn_percents) AND 100 > ALL (warn_percents)),
	warned_percent integer,			-- the highest threshold warned this period
	reached_at timestamptz,			-- when this period's allowance ran out
	CHECK ((period = 'none') = (period_end IS NULL))
);
COMMENT ON TABLE user_quota IS
	'Traffic quota shared by all of a user''s peers: reaching it suspends them all (reason quota)';

CREATE TABLE traffic_ledger (
	entry_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),	-- no sequence to dump
	user_id text NOT NULL,
	at timestamptz NOT NULL DEFAULT now(),
	kind text NOT NULL CHECK (kind IN ('quota', 'top_up', 'reset', 'period')),
	bytes bigint,					-- the quota set, or the bytes added
	expires_at timestamptz,			-- a top-up that stops counting then
	by_role text NOT NULL DEFAULT current_user
);
CREATE INDEX traffic_ledger_user ON traffic_ledger (user_id, at);

COMMENT ON TABLE traffic_ledger IS
	'Every quota change, top-up, reset and new period of a user''s pooled traffic';

-- A user's period: used bytes (weighted), allowance (quota plus the
-- period's live top-ups), and what is left.
CREATE FUNCTION wg_user_balance(user_id text,
								OUT used_bytes numeric, OUT allowance_bytes numeric,
								OUT left_bytes numeric, OUT period_start timestamptz,
								OUT period_end timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT u.used, a.allowance, greatest(a.allowance - u.used, 0),
		   q.period_start, q.period_end
	FROM wgpeer.user_quota q,
		 LATERAL (SELECT coalesce(sum((x.rx_bytes::numeric + x.tx_bytes)
									  * i.consumption_multiplier), 0)
						 - q.base_bytes AS used
				  FROM wgpeer.peer p
				  JOIN wgpeer.interface i ON i.name = p.interface
				  JOIN wgpeer.peer_usage x ON x.peer_id = p.peer_id
				  WHERE p.user_id = q.user_id
					AND x.hour >= date_trunc('hour', q.period_start)) u,
		 LATERAL (SELECT q.quota_bytes + coalesce(sum(l.bytes), 0) AS allowance
				  FROM wgpeer.traffic_ledger l
				  WHERE l.user_id = q.user_id AND l.kind = 'top_up'
					AND l.at >= q.period_start
					AND (l.expires_at IS NULL OR l.expires_at > now())) a
	WHERE q.user_id = wg_user_balance.user_id
$$;
COMMENT ON FUNCTION wg_user_balance(text) IS
	'A user''s pooled traffic this period: used (weighted), allowance, left';

-- The usage of the hour of at that lies before at, weighted: a period
-- starting at at does not count it.
CREATE FUNCTION wg_user_hour_base(user_id text, at timestamptz) RETURNS numeric
LANGUAGE sql STABLE SET search_path = wgpeer, pg_temp
AS $$
	SELECT coalesce(sum((x.rx_bytes::numeric + x.tx_bytes) * i.consumption_multiplier), 0)
	FROM wgpeer.peer p
	JOIN wgpeer.interface i ON i.name = p.interface
	JOIN wgpeer.peer_usage x ON x.peer_id = p.peer_id
	WHERE p.user_id = wg_user_hour_base.user_id
	  AND x.hour = date_trunc('hour', at)
$$;

-- Resume the user's peers the quota suspended (the device limit allowing:
-- see wg_quota_resume), when the user has allowance left.
CREATE FUNCTION wg_user_quota_resume(user_id text) RETURNS void
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	IF (SELECT b.left_bytes FROM wgpeer.wg_user_balance(user_id) b) > 0 THEN
		UPDATE wgpeer.user_quota q SET reached_at = NULL
			WHERE q.user_id = wg_user_quota_resume.user_id;
		FOR r IN SELECT p.peer_id FROM wgpeer.peer p
				 WHERE p.user_id = wg_user_quota_resume.user_id
				   AND p.status = 'suspended' AND p.suspended_reason = 'quota'
				 ORDER BY p.peer_id
		LOOP
			PERFORM wgpeer.wg_quota_resume(r.peer_id);
		END LOOP;
	END IF;
END
$$;

-- Set, change or (quota_bytes NULL) remove a user's pooled quota.  A new
-- quota or another period starts a period now; the same period keeps the
-- usage so far.
CREATE FUNCTION wg_set_user_quota(user_id text, quota_bytes bigint,
								  period text DEFAULT 'month',
								  warn_percents integer[] DEFAULT '{80}')
RETURNS user_quota
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	q wgpeer.user_quota;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_set_user_quota');
	IF user_id IS NULL OR period IS NULL OR warn_percents IS NULL THEN
		RAISE EXCEPTION 'user_id, period and warn_percents cannot be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass warn_percents => ''{}'' for no warnings.';
	END IF;
	IF quota_bytes < 0 THEN
		RAISE EXCEPTION 'quota_bytes must not be negative, not %', quota_bytes
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the bytes the user''s peers may use per period (0: top-ups only), or NULL to remove the quota.';
	END IF;
	IF period NOT IN ('none', 'day', 'week', 'month') THEN
		RAISE EXCEPTION 'unknown quota period "%"', period
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use ''day'', ''week'', ''month'' or ''none'' (one allowance until reset).';
	END IF;
	IF NOT (0 < ALL (warn_percents) AND 100 > ALL (warn_percents))
		OR array_position(warn_percents, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'warning thresholds must be percentages between 1 and 99, not %',
				warn_percents
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'E.g. warn_percents => ''{50, 80, 95}''.';
	END IF;
	IF quota_bytes IS NULL THEN
		DELETE FROM wgpeer.user_quota x WHERE x.user_id = wg_set_user_quota.user_id;
		INSERT INTO wgpeer.traffic_ledger (user_id, kind) VALUES (user_id, 'quota');
		PERFORM wgpeer.wg_quota_resume(p.peer_id) FROM wgpeer.peer p
			WHERE p.user_id = wg_set_user_quota.user_id
			  AND p.status = 'suspended' AND p.suspended_reason = 'quota'
			  AND NOT EXISTS (SELECT FROM wgpeer.quota pq WHERE pq.peer_id = p.peer_id);
		RETURN NULL;
	END IF;
	SELECT (SELECT array_agg(DISTINCT w ORDER BY w) FROM unnest(warn_percents) w)
		INTO warn_percents;
	INSERT INTO wgpeer.user_quota AS x (user_id, quota_bytes, period, period_anchor,
										period_start, period_end, base_bytes,
										warn_percents)
	VALUES (user_id, quota_bytes, period, now(), now(),
			wgpeer.wg_quota_period_at(period, now(), now(), 1),
			wgpeer.wg_user_hour_base(user_id, now()), coalesce(warn_percents, '{}'))
	ON CONFLICT ON CONSTRAINT user_quota_pkey DO UPDATE
	SET quota_bytes = EXCLUDED.quota_bytes, warn_percents = EXCLUDED.warn_percents,
		warned_percent = NULL, reached_at = NULL,
		period = EXCLUDED.period,
		period_anchor = CASE WHEN x.period = EXCLUDED.period THEN x.period_anchor
						ELSE EXCLUDED.period_anchor END,
		period_start = CASE WHEN x.period = EXCLUDED.period THEN x.period_start
					   ELSE EXCLUDED.period_start END,
		period_end = CASE WHEN x.period = EXCLUDED.period THEN x.period_end
					 ELSE EXCLUDED.period_end END,
		base_bytes = CASE WHEN x.period = EXCLUDED.period THEN x.base_bytes
					 ELSE EXCLUDED.base_bytes END
	RETURNING * INTO q;
	INSERT INTO wgpeer.traffic_ledger (user_id, kind, bytes)
		VALUES (user_id, 'quota', quota_bytes);
	PERFORM wgpeer.wg_user_quota_resume(user_id);
	RETURN q;
END
$$;
COMMENT ON FUNCTION wg_set_user_quota(text, bigint, text, integer[]) IS
	'Set a quota shared by all of a user''s peers, per day, week, month or until reset; NULL removes it';

-- A top-up: bytes added to the user's allowance for this period (until
-- expires_at, if given); a user without a quota gets one of 0 bytes per
-- period 'none', so that traffic is sold in packages only.
CREATE FUNCTION wg_add_traffic(user_id text, bytes bigint,
							   expires_at timestamptz DEFAULT NULL)
RETURNS traffic_ledger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	l wgpeer.traffic_ledger;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_add_traffic');
	IF user_id IS NULL OR bytes IS NULL THEN
		RAISE EXCEPTION 'user_id and bytes cannot be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF bytes <= 0 THEN
		RAISE EXCEPTION 'bytes must be positive, not %', bytes
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the bytes of the traffic package bought.';
	END IF;
	IF expires_at <= now() THEN
		RAISE EXCEPTION 'expires_at must be in the future, not %', expires_at
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Leave it NULL for a top-up that lasts the period.';
	END IF;
	IF NOT EXISTS (SELECT FROM wgpeer.user_quota q WHERE q.user_id = wg_add_traffic.user_id) THEN
		PERFORM wgpeer.wg_set_user_quota(user_id, 0, 'none');
	END IF;
	INSERT INTO wgpeer.traffic_ledger AS x (user_id, kind, bytes, expires_at)
		VALUES (user_id, 'top_up', bytes, expires_at) RETURNING * INTO l;
	INSERT INTO wgpeer.event (kind, user_id, detail)
		VALUES ('traffic_added', user_id,
				jsonb_build_object('bytes', bytes, 'expires_at', expires_at));
	PERFORM wgpeer.wg_user_quota_resume(user_id);
	RETURN l;
END
$$;
COMMENT ON FUNCTION wg_add_traffic(text, bigint, timestamptz) IS
	'Add a traffic package to a user''s pooled allowance (recorded in traffic_ledger); resumes the user''s peers';

-- Start the user's period anew now (a payment): usage from zero, top-ups
-- of the old period gone, peers the quota suspended resumed.
CREATE FUNCTION wg_reset_usage(user_id text) RETURNS user_quota
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	q wgpeer.user_quota;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_reset_usage');
	UPDATE wgpeer.user_quota x
		SET period_anchor = now(), period_start = now(),
			period_end = wgpeer.wg_quota_period_at(x.period, now(), now(), 1),
			base_bytes = wgpeer.wg_user_hour_base(x.user_id, now()),
			warned_percent = NULL, reached_at = NULL
		WHERE x.user_id = wg_reset_usage.user_id
		RETURNING * INTO q;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'user "%" has no pooled quota', user_id
			USING ERRCODE = 'no_data_found',
				  HINT = 'Give the user one with wgpeer.wg_set_user_quota().';
	END IF;
	INSERT INTO wgpeer.traffic_ledger (user_id, kind) VALUES (user_id, 'reset');
	INSERT INTO wgpeer.event (kind, user_id, detail)
		VALUES ('usage_reset', user_id, '{}');
	PERFORM wgpeer.wg_user_quota_resume(user_id);
	RETURN q;
END
$$;
COMMENT ON FUNCTION wg_reset_usage(text) IS
	'Start a user''s pooled-quota period anew now (usage from zero); resumes the user''s peers';

-- The watch pass of pooled quotas (the worker calls it after
-- wg_watch_peers): periods that ended start anew, thresholds crossed warn
-- once per period, an allowance used up suspends every live peer of the
-- user.  Each user in a subtransaction of its own.
CREATE FUNCTION wg_watch_user_quotas() RETURNS void
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	r record;
	crossed integer;
BEGIN
	FOR r IN SELECT q.user_id FROM wgpeer.user_quota q
			 WHERE q.period_end <= now() ORDER BY q.user_id
	LOOP
		BEGIN
			UPDATE wgpeer.user_quota q
				SET period_start = wgpeer.wg_quota_period_at(q.period, q.period_anchor, now()),
					period_end = wgpeer.wg_quota_period_at(q.period, q.period_anchor, now(), 1),
					warned_percent = NULL, reached_at = NULL
				WHERE q.user_id = r.user_id;
			UPDATE wgpeer.user_quota q
				SET base_bytes = wgpeer.wg_user_hour_base(q.user_id, q.period_start)
				WHERE q.user_id = r.user_id;
			INSERT INTO wgpeer.traffic_ledger (user_id, kind) VALUES (r.user_id, 'period');
			PERFORM wgpeer.wg_user_quota_resume(r.user_id);
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'wgpeer could not start a new quota period for user "%": %',
				r.user_id, SQLERRM;
		END;
	END LOOP;

	FOR r IN SELECT q.user_id, q.warn_percents, q.warned_percent, q.reached_at,
					b.used_bytes, b.allowance_bytes
			 FROM wgpeer.user_quota q, wgpeer.wg_user_balance(q.user_id) b
			 ORDER BY q.user_id
	LOOP
		BEGIN
			SELECT max(w) INTO crossed FROM unnest(r.warn_percents) w
				WHERE r.used_bytes * 100 >= r.allowance_bytes * w
				  AND w > coalesce(r.warned_percent, 0);
			IF crossed IS NOT NULL AND r.used_bytes < r.allowance_bytes THEN
				UPDATE wgpeer.user_quota q SET warned_percent = crossed
					WHERE q.user_id = r.user_id;
				INSERT INTO wgpeer.event (kind, user_id, detail)
				VALUES ('quota_warning', r.user_id,
						jsonb_build_object('scope', 'user', 'used_bytes', r.used_bytes,
										   'quota_bytes', r.allowance_bytes,
										   'warning_percent', crossed));
			END IF;
			IF r.used_bytes >= r.allowance_bytes AND r.reached_at IS NULL THEN
				UPDATE wgpeer.user_quota q SET reached_at = now(), warned_percent = 100
					WHERE q.user_id = r.user_id;
				INSERT INTO wgpeer.event (kind, user_id, detail)
				VALUES ('quota_reached', r.user_id,
						jsonb_build_object('scope', 'user', 'used_bytes', r.used_bytes,
										   'quota_bytes', r.allowance_bytes));
			END IF;
			IF r.used_bytes >= r.allowance_bytes THEN
				PERFORM wgpeer.wg_suspend_peer(p.peer_id, 'quota')
					FROM wgpeer.peer p
					WHERE p.user_id = r.user_id AND p.status IN ('creating', 'active')
					ORDER BY p.peer_id;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'wgpeer could not enforce the pooled quota of user "%": %',
				r.user_id, SQLERRM;
		END;
	END LOOP;
END
$$;
COMMENT ON FUNCTION wg_watch_user_quotas() IS
	'The watch pass of pooled quotas (run by the apply worker after each traffic sample)';
