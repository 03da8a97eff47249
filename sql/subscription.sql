-- Standing subscription links: one token per user that fetches the user's
-- current configs again and again (rows, JSON, one wg-quick text per
-- peer); only the token's hash is stored; a new token replaces the old,
-- a revoked one stops working; every fetch is an event; after a key
-- rotation, a move or an AmneziaWG change the next fetch has the new
-- config.
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql

SELECT name FROM wg_add_interface('wgs1', '198.51.100.41:51820', '10.241.0.1/24',
                                  listen_port => 51841);
SELECT name FROM wg_add_interface('wgs2', '198.51.100.42:51820', '10.242.0.1/24',
                                  listen_port => 51842);
SELECT location FROM wg_set_interface_location('wgs1', 'de');
SELECT location FROM wg_set_interface_location('wgs2', 'nl');
CREATE TEMP TABLE mine AS
	SELECT * FROM wg_create_peer('sub-user', interface => 'wgs1', config_name => 'laptop');
INSERT INTO mine SELECT * FROM wg_create_peer('sub-user', interface => 'wgs2', config_name => 'phone');
-- peers the link does not show: another user's, a revoked one
SELECT interface FROM wg_create_peer('other-user', interface => 'wgs1');
SELECT status FROM wg_revoke_peer((wg_create_peer('sub-user', interface => 'wgs1',
                                                   config_name => 'old')).peer_id);

-- a token: 43 characters of URL-safe base64; only its SHA-256 is kept
SELECT wg_subscription_token('sub-user') AS token \gset
SELECT length(:'token') AS token_length, :'token' ~ '^[A-Za-z0-9_-]{43}$' AS url_safe;
SELECT user_id, token_hash = sha256(decode(translate(:'token', '-_', '+/') || '=', 'base64')) AS hash_of_token,
       length(token_hash) AS hash_bytes, created_by = current_user AS by_me
FROM subscription;
SELECT count(*) AS rows_holding_the_token FROM subscription
WHERE position(convert_to(:'token', 'UTF8') IN token_hash) > 0;

-- rows: one per live peer, with its name and location, oldest first
SELECT f.config_name, f.location, f.interface, f.status,
       f.config = wg_peer_config(f.peer_id) AS current_config
FROM wg_subscription_fetch(:'token') f;
-- JSON
SELECT jsonb_array_length(j->'peers') AS peers,
       j->'peers'->0->>'config_name' AS first, j->'peers'->1->>'location' AS second_location,
       (j->'peers'->0->>'config') = (SELECT config FROM wg_subscription_fetch(:'token') LIMIT 1)
           AS same_config
FROM wg_subscription_fetch_json(:'token') j;
-- one wg-quick text, by name
SELECT wg_subscription_fetch_config(:'token', 'phone') =
       wg_peer_config((SELECT peer_id FROM mine WHERE config_name = 'phone')) AS phone_config;
SELECT pg_temp.try($$SELECT wg_subscription_fetch_config('$$ || :'token' || $$', 'old')$$);
-- every fetch is an event of the user's
SELECT kind, user_id, peer_id, detail FROM event
WHERE kind = 'subscription_fetched' ORDER BY event_id;

-- a key rotation, a move, an AmneziaWG change: the next fetch has them
SELECT wg_rotate_peer_key((SELECT peer_id FROM mine WHERE config_name = 'laptop'))
       LIKE '%PrivateKey%' AS rotated;
SELECT interface FROM wg_move_peer((SELECT peer_id FROM mine WHERE config_name = 'phone'), 'wgs1');
SELECT f.config_name, f.location, f.interface,
       f.config = wg_peer_config(f.peer_id) AS current_config,
       f.config NOT LIKE '%' || m.config || '%' AS changed_since_creation
FROM wg_subscription_fetch(:'token') f JOIN mine m USING (peer_id)
ORDER BY f.config_name;
SELECT name FROM wg_add_interface('wgs3', '198.51.100.43:51820', '10.243.0.1/24',
                                  listen_port => 51843, flavor => 'amneziawg',
                                  awg => '{"jc": 4, "jmin": 40, "jmax": 70, "s1": 20, "s2": 30,
                                           "h1": 123456, "h2": 234567, "h3": 345678,
                                           "h4": 456789}');
SELECT interface FROM wg_move_peer((SELECT peer_id FROM mine WHERE config_name = 'phone'), 'wgs3');
SELECT substring(config FROM 'S1 = [0-9]+') FROM wg_subscription_fetch(:'token')
WHERE config_name = 'phone';
SELECT (wg_set_interface_awg('wgs3', '{"jc": 4, "jmin": 40, "jmax": 70, "s1": 21, "s2": 30,
                                       "h1": 123456, "h2": 234567, "h3": 345678,
                                       "h4": 456789}')).name;
SELECT substring(config FROM 'S1 = [0-9]+') FROM wg_subscription_fetch(:'token')
WHERE config_name = 'phone';

-- a new token replaces the old; the same error for every token that does
-- not fetch
SELECT wg_subscription_token('sub-user') AS token2 \gset
SELECT :'token' <> :'token2' AS new_token;
SELECT pg_temp.try($$SELECT * FROM wg_subscription_fetch('$$ || :'token' || $$')$$);
SELECT count(*) FROM wg_subscription_fetch(:'token2');
SELECT pg_temp.try($$SELECT * FROM wg_subscription_fetch('not a token')$$);
SELECT pg_temp.try($$SELECT * FROM wg_subscription_fetch(NULL)$$);
SELECT pg_temp.try($$SELECT wg_subscription_fetch_json('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')$$);
-- revoked: gone at once
SELECT wg_subscription_revoke('sub-user') AS revoked, wg_subscription_revoke('sub-user') AS again;
SELECT pg_temp.try($$SELECT wg_subscription_fetch_config('$$ || :'token2' || $$', 'phone')$$);
-- a user without peers may have a link; it fetches nothing
SELECT count(*) FROM wg_subscription_fetch(wg_subscription_token('nobody-yet'));
-- the errors of wg_subscription_token
SELECT pg_temp.try($$SELECT wg_subscription_token(NULL)$$);
SELECT pg_temp.try($$SELECT wg_subscription_token('')$$);
SELECT pg_temp.try($$SELECT wg_subscription_token(repeat('x', 257))$$);

SELECT wg_remove_interface(name, force => true)
FROM interface WHERE name IN ('wgs1', 'wgs2', 'wgs3') ORDER BY name;
DELETE FROM subscription;
