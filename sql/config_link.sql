-- One-time config links: a token redeemed once for a peer's config and QR
-- code by a role that cannot read private keys otherwise; only the token's
-- hash is stored; every token that does not redeem gives the same error.
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql
\i sql/include/try_hint.sql
-- What redeeming a token gives: the same error for every bad token.
CREATE FUNCTION pg_temp.redeem(token text) RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.try(format('SELECT * FROM wgpeer.wg_redeem_config_link(%L)', token))
$$;

SELECT name FROM wg_add_interface('wgk', '198.51.100.14:51820', '10.214.0.1/24',
                                  address6 => 'fd00:214::1/64', dns => '10.214.0.1');
CREATE TEMP TABLE pal AS
	SELECT user_id, peer_id, config_name, config
	FROM wg_create_peer('kim', interface => 'wgk')
	UNION ALL
	SELECT user_id, peer_id, config_name, config
	FROM wg_create_peer('lee', interface => 'wgk');
SELECT peer_id AS kim_id, md5(config) AS kim_md5 FROM pal WHERE user_id = 'kim' \gset
-- the links of this suite's interface (other suites may leave some)
CREATE TEMP VIEW wgk_link AS
	SELECT l.* FROM config_link l JOIN peer p USING (peer_id)
	WHERE p.interface = 'wgk';

-- A token is 43 characters of URL-safe base64 (256 bits); each call
-- gives a new one, valid for 15 minutes unless told otherwise.
CREATE TEMP TABLE link (n int, token text);
INSERT INTO link SELECT 1, wg_config_link(peer_id) FROM pal WHERE user_id = 'kim';
INSERT INTO link SELECT 2, wg_config_link(peer_id, '1 hour') FROM pal WHERE user_id = 'kim';
INSERT INTO link SELECT 3, wg_config_link(peer_id, valid_for => '30 days')
	FROM pal WHERE user_id = 'kim';
SELECT n, length(token), token ~ '^[A-Za-z0-9_-]{43}$' AS url_safe FROM link ORDER BY n;
SELECT count(DISTINCT token) AS distinct_tokens FROM link;
SELECT l.expires_at - l.created_at AS valid_for, l.created_by = current_user AS by_me
FROM wgk_link l ORDER BY 1;

-- Only the hash is stored: the SHA-256 of the token's 32 bytes.  Neither
-- the token's text nor its bytes appear anywhere in the table.
CREATE FUNCTION pg_temp.token_bytes(token text) RETURNS bytea LANGUAGE sql AS $$
	SELECT decode(translate(token, '-_', '+/') || '=', 'base64')
$$;
SELECT count(*) AS matched,
       bool_and(length(pg_temp.token_bytes(k.token)) = 32) AS bits_256
FROM link k JOIN config_link l ON l.token_hash = sha256(pg_temp.token_bytes(k.token));
SELECT count(*) AS token_found_in_table
FROM link k, config_link l
WHERE strpos(l::text, k.token) > 0
   OR position(convert_to(k.token, 'UTF8') IN l.token_hash) > 0
   OR position(pg_temp.token_bytes(k.token) IN l.token_hash) > 0;
SELECT attname FROM pg_attribute
WHERE attrelid = 'config_link'::regclass AND attnum > 0 ORDER BY attnum;

-- Arguments are checked.
SELECT pg_temp.try('SELECT wg_config_link(NULL)');
SELECT pg_temp.try_hint(format('SELECT wg_config_link(%L, NULL)', :'kim_id'));
SELECT pg_temp.try_hint(format('SELECT wg_config_link(%L, %L)', :'kim_id', d))
FROM unnest(ARRAY['0', '-1 minute', '1 day -25 hours', '30 days 1 second', '1 year']) d;
SELECT pg_temp.try('SELECT wg_config_link(''00000000-0000-0000-0000-000000000000'')');
SELECT pg_temp.try('SELECT * FROM wg_redeem_config_link(NULL)');
SELECT pg_temp.try_hint('SELECT * FROM wg_redeem_config_link(''x'', NULL)');

-- Only a live or suspended peer whose private key the server holds gets a
-- link: not one that brought its own key or was imported (hint: give it
-- the config with the placeholder), not a revoked or expired one.
SELECT count(*) FROM wg_create_peer('byok', interface => 'wgk',
	public_key => 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=');
SELECT count(*) FROM wg_import_peer('wgk', 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=',
                                    '10.214.0.200', user_id => 'imported');
SELECT user_id, pg_temp.try_hint(format('SELECT wg_config_link(%L)', peer_id))
FROM peer WHERE user_id IN ('byok', 'imported') ORDER BY user_id;
SELECT count(*) FROM wg_create_peer('gone', interface => 'wgk');
SELECT count(*) FROM wg_create_peer('late', interface => 'wgk');
SELECT status FROM wg_revoke_peer((SELECT peer_id FROM peer WHERE user_id = 'gone'));
UPDATE peer SET expires_at = now() - interval '1 second' WHERE user_id = 'late';
SELECT wg_expire_peers() AS expired;
SELECT user_id, pg_temp.try_hint(format('SELECT wg_config_link(%L)', peer_id))
FROM peer WHERE user_id IN ('gone', 'late') ORDER BY user_id;
SELECT count(*) AS links FROM wgk_link;

-- A role that may only redeem: it cannot read keys, configs or links,
-- nor make links, but redeems a token once.
CREATE ROLE wgpeer_redeemer;
GRANT USAGE ON SCHEMA wgpeer TO wgpeer_redeemer;
GRANT EXECUTE ON FUNCTION wgpeer.wg_redeem_config_link(text, boolean) TO wgpeer_redeemer;
SELECT token AS token1 FROM link WHERE n = 1 \gset
SET ROLE wgpeer_redeemer;
SELECT private_key FROM wgpeer.peer LIMIT 1;
SELECT token_hash FROM wgpeer.config_link LIMIT 1;
SELECT wgpeer.wg_peer_config(:'kim_id');
SELECT wgpeer.wg_peer_qr_png(:'kim_id');
SELECT wgpeer.wg_config_link(:'kim_id');
SELECT r.peer_id = :'kim_id' AS right_peer, r.config_name LIKE 'wg-%' AS named,
       md5(r.config) = :'kim_md5' AS same_config,
       r.config LIKE '%PrivateKey = %' AS has_private_key,
       substr(r.qr_png, 1, 8) = '\x89504e470d0a1a0a'::bytea AS png
FROM wgpeer.wg_redeem_config_link(:'token1') r;
-- a second time: the error of a token that never existed
SELECT * FROM wgpeer.wg_redeem_config_link(:'token1');
SELECT * FROM wgpeer.wg_redeem_config_link('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
RESET ROLE;
SELECT count(*) AS links FROM wgk_link;

-- Every token that does not redeem gives one error, whatever the reason:
-- used, unknown, malformed (too short or long, padded, the standard
-- alphabet, unused bits set, empty).
SELECT token AS token3 FROM link WHERE n = 3 \gset
SELECT why, pg_temp.redeem(t) AS error
FROM (VALUES ('used', :'token1'),
             ('unknown', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
             ('short', left(:'token3', 42)),
             ('long', :'token3' || 'A'),
             ('padded', :'token3' || '='),
             ('standard alphabet', 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd+h8'),
             ('unused bits set', 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9'),
             ('empty', '')) AS v(why, t);

-- Redemption is transactional: a rollback gives the link back.
BEGIN;
SELECT md5(config) = :'kim_md5' AS same_config FROM wg_redeem_config_link(:'token3');
ROLLBACK;
SELECT count(*) AS links_left FROM wgk_link;
SELECT md5(config) = :'kim_md5' AS same_config FROM wg_redeem_config_link(:'token3');
SELECT pg_temp.redeem(:'token3') AS again;

-- An expired link fails the same, and the next link deletes it.
INSERT INTO link SELECT 4, wg_config_link(peer_id, '10 milliseconds')
	FROM pal WHERE user_id = 'lee';
SELECT pg_sleep(0.05);
SELECT pg_temp.redeem(token) AS expired FROM link WHERE n = 4;
SELECT count(*) AS expired_rows FROM wgk_link WHERE expires_at <= now();
INSERT INTO link SELECT 5, wg_config_link(peer_id) FROM pal WHERE user_id = 'lee';
SELECT count(*) AS expired_rows FROM wgk_link WHERE expires_at <= now();
-- an expiry in the past, set by hand, counts as well
INSERT INTO link SELECT 6, wg_config_link(peer_id) FROM pal WHERE user_id = 'lee';
UPDATE config_link SET created_at = now() - interval '2 hours',
                       expires_at = now() - interval '1 hour'
WHERE token_hash = (SELECT sha256(pg_temp.token_bytes(token)) FROM link WHERE n = 6);
SELECT pg_temp.redeem(token) AS expired_by_hand FROM link WHERE n = 6;

-- A suspended peer's link redeems (its config works once resumed); a link
-- of a peer revoked since fails the same as any other.
SELECT status FROM wg_suspend_peer((SELECT peer_id FROM pal WHERE user_id = 'lee'));
SELECT c.config = p.config AS same_config
FROM link k, wg_redeem_config_link(k.token) c, pal p
WHERE k.n = 5 AND p.user_id = 'lee';
INSERT INTO link SELECT 7, wg_config_link(peer_id) FROM pal WHERE user_id = 'lee';
SELECT count(*) AS lees_links FROM config_link
WHERE peer_id = (SELECT peer_id FROM pal WHERE user_id = 'lee') AND expires_at > now();
SELECT status FROM wg_revoke_peer((SELECT peer_id FROM pal WHERE user_id = 'lee'));
SELECT pg_temp.redeem(token) AS revoked_since FROM link WHERE n = 7;
-- the revocation took its links with it: the token is now simply unknown
SELECT count(*) AS lees_links FROM config_link
WHERE peer_id = (SELECT peer_id FROM pal WHERE user_id = 'lee');

-- A token that does not redeem locks, deletes and writes nothing, whatever
-- the reason: the failed call does not even take a transaction id, the
-- same work as for an unknown token.
INSERT INTO link SELECT 10, wg_config_link(peer_id, '1 hour') FROM pal WHERE user_id = 'kim';
UPDATE config_link SET created_at = now() - interval '2 hours',
                       expires_at = now() - interval '1 hour'
WHERE token_hash = (SELECT sha256(pg_temp.token_bytes(token)) FROM link WHERE n = 10);
BEGIN;
SELECT pg_temp.redeem(token) AS expired, pg_current_xact_id_if_assigned() IS NULL AS no_xid
FROM link WHERE n = 10;
ROLLBACK;
BEGIN;
SELECT pg_temp.redeem('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA') AS unknown,
       pg_current_xact_id_if_assigned() IS NULL AS no_xid;
ROLLBACK;
SELECT count(*) AS expired_row_kept FROM wgk_link
WHERE token_hash = (SELECT sha256(pg_temp.token_bytes(token)) FROM link WHERE n = 10);

-- forget_private_key: the config is handed out, then the server holds no
-- private key: the peer's other links are gone, and its config, QR code
-- and new links are refused with a hint, until a key rotation.
INSERT INTO link SELECT 8, wg_config_link(peer_id) FROM pal WHERE user_id = 'kim';
SELECT count(*) AS queued_before FROM queue WHERE peer_id = :'kim_id' \gset
SELECT md5(config) = :'kim_md5' AS same_config
FROM link k, wg_redeem_config_link(k.token, forget_private_key => true)
WHERE k.n = 2;
SELECT private_key IS NULL AS no_private_key,
       private_key_forgotten_at IS NOT NULL AS forgotten,
       status
FROM peer WHERE peer_id = :'kim_id';
SELECT count(*) AS kims_links FROM config_link WHERE peer_id = :'kim_id';
SELECT pg_temp.redeem(token) AS other_link FROM link WHERE n = 8;
SELECT pg_temp.try_hint(format('SELECT wg_peer_config(%L)', :'kim_id'));
SELECT pg_temp.try_hint(format('SELECT wg_peer_qr_png(%L)', :'kim_id'));
SELECT pg_temp.try_hint(format('SELECT wg_config_link(%L)', :'kim_id'));
-- the peer stays on its interface: nothing queued
SELECT count(*) - :queued_before AS queued FROM queue WHERE peer_id = :'kim_id';
-- a rotation gives it a key the server holds again
SELECT wg_rotate_peer_key(:'kim_id') LIKE '[Interface]' || E'\n' || 'PrivateKey = %' AS new_config;
SELECT private_key IS NOT NULL AS has_key, private_key_forgotten_at
FROM peer WHERE peer_id = :'kim_id';
SELECT length(wg_config_link(:'kim_id')) AS new_link;
-- after forgetting, a rotation to the client's own key gives the
-- placeholder config of a peer that brought its own key
INSERT INTO link SELECT 9, wg_config_link(peer_id) FROM pal WHERE user_id = 'kim';
SELECT count(*) FROM link k, wg_redeem_config_link(k.token, true) WHERE k.n = 9;
SELECT wg_pubkey(wg_genkey()) AS own_key \gset
SELECT wg_rotate_peer_key(:'kim_id', :'own_key')
       LIKE '%# PrivateKey = <the private key of ' || :'own_key' || '>%' AS placeholder;
SELECT private_key_forgotten_at FROM peer WHERE peer_id = :'kim_id';

-- At most 16 live links per peer: the 17th is refused with 54000; a
-- redeemed or expired link makes room.
SELECT count(*) FROM wg_create_peer('max', interface => 'wgk');
CREATE TEMP TABLE max_link AS
	SELECT n, wg_config_link(peer_id, '1 hour') AS token
	FROM peer, generate_series(1, 16) n WHERE user_id = 'max';
SELECT count(*) AS made FROM max_link;
SELECT regexp_replace(pg_temp.try_hint(format('SELECT wg_config_link(%L)', peer_id)),
                      '\d{4}-\d\d-\d\d [0-9:.+-]+', '<time>') AS seventeenth
FROM peer WHERE user_id = 'max';
SELECT count(*) AS redeemed FROM max_link k, wg_redeem_config_link(k.token) WHERE k.n = 1;
SELECT length(wg_config_link(peer_id)) AS made_again FROM peer WHERE user_id = 'max';
SELECT pg_temp.try(format('SELECT wg_config_link(%L)', peer_id)) AS full_again
FROM peer WHERE user_id = 'max';
UPDATE config_link SET created_at = now() - interval '2 hours',
                       expires_at = now() - interval '1 hour'
WHERE token_hash = (SELECT sha256(pg_temp.token_bytes(token)) FROM max_link WHERE n = 2);
SELECT length(wg_config_link(peer_id)) AS made_after_expiry FROM peer WHERE user_id = 'max';
SELECT count(*) AS live_links FROM config_link l JOIN peer p USING (peer_id)
WHERE p.user_id = 'max' AND l.expires_at > now();

-- The role that asked is recorded, not the functions' owner.
CREATE ROLE wgpeer_linker;
GRANT USAGE ON SCHEMA wgpeer TO wgpeer_linker;
GRANT EXECUTE ON FUNCTION wgpeer.wg_config_link(uuid, interval) TO wgpeer_linker;
SELECT count(*) FROM wg_create_peer('ned', interface => 'wgk');
SELECT peer_id AS ned_id FROM peer WHERE user_id = 'ned' \gset
SET ROLE wgpeer_linker;
SELECT length(wgpeer.wg_config_link(:'ned_id')) AS link_length;
RESET ROLE;
SELECT created_by FROM config_link WHERE peer_id = :'ned_id';

-- A peer deleted with its interface takes its links along.
CREATE TEMP TABLE wgk_peer AS SELECT peer_id FROM peer WHERE interface = 'wgk';
SELECT count(*) > 0 AS has_links FROM config_link JOIN wgk_peer USING (peer_id);
SELECT wg_remove_interface('wgk', force => true) > 0 AS removed;
SELECT count(*) AS links FROM config_link JOIN wgk_peer USING (peer_id);

DROP OWNED BY wgpeer_redeemer;
DROP OWNED BY wgpeer_linker;
DROP ROLE wgpeer_redeemer;
DROP ROLE wgpeer_linker;
