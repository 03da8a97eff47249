------------------------------------------------------------------------------
-- Standing subscription links
--
-- One bearer token per user that fetches the user's current configs, as
-- often as the client likes: after a key rotation, a move or a change of
-- an AmneziaWG interface the next fetch returns the new config.  Only the
-- SHA-256 of a token is kept (src/sql/subscription.c).  The HTTP endpoint
-- belongs to the application or PostgREST, which calls the fetching
-- functions below with the token from the URL.
------------------------------------------------------------------------------

CREATE TABLE subscription (
	user_id text PRIMARY KEY,
	token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
	created_by text NOT NULL,		-- the role that asked for the link
	created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE subscription IS
	'Standing subscription links: the SHA-256 of each user''s token, never the token';

CREATE FUNCTION wg_subscription_token(user_id text) RETURNS text
	AS 'MODULE_PATHNAME', 'wg_subscription_token'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_subscription_token(text) IS
	'A new standing link token for a user''s configs (replaces the user''s link; only its hash is stored)';

CREATE FUNCTION wg_subscription_token_hash(token text) RETURNS bytea
	AS 'MODULE_PATHNAME', 'wg_subscription_token_hash'
	LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION wg_subscription_token_hash(text) IS
	'The SHA-256 kept of a well-formed link token, NULL otherwise (for wgpeer''s own use)';

-- Revoke a user's link: its token stops working at commit.  Returns
-- whether there was one.
CREATE FUNCTION wg_subscription_revoke(user_id text) RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_subscription_revoke');
	DELETE FROM wgpeer.subscription s WHERE s.user_id = wg_subscription_revoke.user_id;
	RETURN FOUND;
END
$$;
COMMENT ON FUNCTION wg_subscription_revoke(text) IS
	'Revoke a user''s standing subscription link';

-- The user a token fetches for, logging the fetch (subscription_fetched,
-- with what was fetched); the one error of a token that does not fetch,
-- whatever the reason, so that a caller learns nothing about tokens it
-- does not hold.
CREATE FUNCTION wg_subscription_user(token text, fetched jsonb) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	uid text;
BEGIN
	PERFORM wgpeer.wg_require_primary('wg_subscription_fetch');
	SELECT s.user_id INTO uid FROM wgpeer.subscription s
		WHERE s.token_hash = wgpeer.wg_subscription_token_hash(token);
	IF uid IS NULL THEN
		RAISE EXCEPTION 'subscription link is not valid'
			USING ERRCODE = 'invalid_authorization_specification',
				  DETAIL = 'The link is unknown, or was revoked or replaced.',
				  HINT = 'Ask for the current link.';
	END IF;
	INSERT INTO wgpeer.event (kind, user_id, detail)
		VALUES ('subscription_fetched', uid, fetched);
	RETURN uid;
END
$$;
COMMENT ON FUNCTION wg_subscription_user(text, jsonb) IS
	'The user of a subscription token, logging the fetch (for wgpeer''s own use)';

-- The current configs of a user, one row per live peer whose private key
-- the server holds, oldest first (for the fetching functions below).
CREATE FUNCTION wg_subscription_configs(user_id text)
RETURNS TABLE (peer_id uuid, config_name text, location text,
			   interface text, status text, config text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT p.peer_id, p.config_name, i.location, p.interface, p.status,
		   wgpeer.wg_peer_config(p.peer_id)
	FROM wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface
	WHERE p.user_id = wg_subscription_configs.user_id
	  AND p.status IN ('creating', 'active')
	  AND p.private_key_forgotten_at IS NULL
	ORDER BY p.created_at, p.peer_id
$$;
COMMENT ON FUNCTION wg_subscription_configs(text) IS
	'A user''s current configs, one row per live peer (for wgpeer''s own use)';

CREATE FUNCTION wg_subscription_fetch(token text)
RETURNS TABLE (peer_id uuid, config_name text, location text,
			   interface text, status text, config text)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT * FROM wgpeer.wg_subscription_configs(
		wgpeer.wg_subscription_user(token, '{"form": "rows"}'))
$$;
COMMENT ON FUNCTION wg_subscription_fetch(text) IS
	'A user''s current configs by subscription token, one row per live peer (logs subscription_fetched)';

-- The same as one JSON document: {"fetched_at", "peers": [...]}.
CREATE FUNCTION wg_subscription_fetch_json(token text) RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
	SELECT jsonb_build_object(
		'fetched_at', now(),
		'peers', coalesce(jsonb_agg(to_jsonb(f) - 'ordinality' ORDER BY f.ordinality), '[]'))
	FROM wgpeer.wg_subscription_configs(
		wgpeer.wg_subscription_user(token, '{"form": "json"}')) WITH ORDINALITY AS f
$$;
COMMENT ON FUNCTION wg_subscription_fetch_json(text) IS
	'A user''s current configs by subscription token, as JSON (logs subscription_fetched)';

-- One peer's config by its config_name, as the wg-quick text a client
-- imports from a URL.
CREATE FUNCTION wg_subscription_fetch_config(token text, config_name text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp
AS $$
DECLARE
	uid text := wgpeer.wg_subscription_user(token,
		jsonb_build_object('form', 'config', 'config_name', config_name));
	result text;
BEGIN
	SELECT c.config INTO result
		FROM wgpeer.wg_subscription_configs(uid) WITH ORDINALITY c
		WHERE c.config_name = wg_subscription_fetch_config.config_name
		ORDER BY c.ordinality DESC LIMIT 1;
	IF result IS NULL THEN
		RAISE EXCEPTION 'the subscription has no live peer named "%"', config_name
			USING ERRCODE = 'no_data_found',
				  HINT = 'wgpeer.wg_subscription_fetch(token) lists the names.';
	END IF;
	RETURN result;
END
$$;
COMMENT ON FUNCTION wg_subscription_fetch_config(text, text) IS
	'One config of a subscription, by config_name, as wg-quick text (logs subscription_fetched)';
