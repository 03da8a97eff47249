------------------------------------------------------------------------------
-- One-time config links
--
-- A bearer token that hands a peer's config out once, to a role that
-- cannot read private keys otherwise (src/sql/config_link.c).
------------------------------------------------------------------------------

-- Only the SHA-256 of a token is kept.  A link goes when it is redeemed,
-- when its peer is deleted, or (once expired) at the next wg_config_link().
CREATE TABLE config_link (
	token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
	peer_id uuid NOT NULL REFERENCES peer ON DELETE CASCADE,
	created_by text NOT NULL,		-- the role that asked for the link
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	CHECK (expires_at > created_at)
);
CREATE INDEX config_link_peer ON config_link (peer_id);
CREATE INDEX config_link_expiry ON config_link (expires_at);
COMMENT ON TABLE config_link IS
	'One-time config links not redeemed yet: the SHA-256 of each token, never the token';

CREATE FUNCTION wg_config_link(peer_id uuid,
							   valid_for interval DEFAULT '15 minutes')
RETURNS text
	AS 'MODULE_PATHNAME', 'wg_config_link'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_config_link IS
	'A one-time link token for a peer''s config (only its hash is stored)';

-- Redeeming a link with forget_private_key deletes the client's private
-- key and says when (peer.private_key_forgotten_at): the peer's config is
-- then refused (only the client holds its key) until a key rotation gives
-- it a new key.
CREATE FUNCTION wg_redeem_config_link(token text,
									  forget_private_key boolean DEFAULT false,
									  OUT peer_id uuid, OUT config_name text,
									  OUT config text, OUT qr_png bytea)
RETURNS record
	AS 'MODULE_PATHNAME', 'wg_redeem_config_link'
	LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = wgpeer, pg_temp;
COMMENT ON FUNCTION wg_redeem_config_link IS
	'The config and QR code of a one-time link, once; optionally forget the private key';

-- A new public key (a key rotation) clears private_key_forgotten_at,
-- which is about the key a link handed out.
CREATE FUNCTION wg_new_key_held() RETURNS trigger
LANGUAGE plpgsql SET search_path = wgpeer, pg_temp
AS $$
BEGIN
	NEW.private_key_forgotten_at := NULL;
	RETURN NEW;
END
$$;
CREATE TRIGGER peer_new_key_held BEFORE UPDATE OF public_key ON peer
	FOR EACH ROW WHEN (OLD.private_key_forgotten_at IS NOT NULL
					   AND NEW.public_key <> OLD.public_key)
	EXECUTE FUNCTION wg_new_key_held();

-- A peer's one-time config links go when it can no longer hand its config
-- out (revoked, expired, or its client private key gone): a token of such
-- a peer is then simply unknown, and a failed redemption costs the same
-- whatever the reason.
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
