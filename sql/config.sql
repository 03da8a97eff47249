-- Client configs, byte for byte, and what cannot get into them.
SET search_path = wgpeer, public;
\set VERBOSITY default
\pset format unaligned
\pset tuples_only on

-- Everything fixed: server key given, no preshared keys, client key given.
SELECT name FROM wg_add_interface('wgc', 'vpn.example.net:51820', '10.110.0.1/24',
                                  address6 => 'fd00:110::1/64',
                                  dns => '10.110.0.1, fd00:110::1',
                                  mtu => 1420, persistent_keepalive => 25,
                                  private_key => 'XasIfmJKikt54X+Lg4AO5m87sSkmGLb9HC+LJ/+I4Os=',
                                  preshared_keys => false);
-- the server's public key, for reading the configs below
SELECT public_key FROM interface WHERE name = 'wgc';
-- A client that keeps its own private key: a comment says where it goes.
SELECT config FROM wg_create_peer('cfg-own-key', interface => 'wgc',
                                  public_key => 'hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=');
-- wg_peer_config() renders the same bytes later.
SELECT wg_peer_config(peer_id) FROM peer WHERE user_id = 'cfg-own-key';

-- A generated key and a per-peer DNS override (keys masked: random).
SELECT regexp_replace(config, 'PrivateKey = [A-Za-z0-9+/]{43}=', 'PrivateKey = <private key>')
FROM wg_create_peer('cfg-generated', interface => 'wgc', dns => 'dns.example, 9.9.9.9');
SELECT wg_peer_config(peer_id) LIKE '%PrivateKey = ' || private_key || E'\n%' AS key_in_config
FROM peer WHERE user_id = 'cfg-generated';

-- Minimal interface: IPv4 only, no DNS, MTU or keepalive; with a PSK.
SELECT name FROM wg_add_interface('wgm', '203.0.113.5:4500', '10.120.0.1/24',
                                  allowed_ips => '10.120.0.0/24, 192.168.50.0/24',
                                  private_key => 'dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=');
SELECT regexp_replace(regexp_replace(config,
         'PrivateKey = [A-Za-z0-9+/]{43}=', 'PrivateKey = <private key>'),
         'PresharedKey = [A-Za-z0-9+/]{43}=', 'PresharedKey = <preshared key>')
FROM wg_create_peer('cfg-minimal', interface => 'wgm');
SELECT wg_peer_config(peer_id) LIKE '%PresharedKey = ' || preshared_key || E'\n%' AS psk_in_config
FROM peer WHERE user_id = 'cfg-minimal';

-- Every line of every config is one of the known keys, a section header,
-- a comment or blank: nothing a caller passed can add a line.
SELECT count(*) AS lines,
       count(*) FILTER (WHERE line !~ '^(\[Interface\]|\[Peer\]|# PrivateKey = <the private key of [A-Za-z0-9+/]{43}=>|(PrivateKey|PublicKey|PresharedKey) = [A-Za-z0-9+/]{43}=|Address = [0-9a-f.:/, ]+|DNS = [0-9A-Za-z.:, -]+|MTU = [0-9]+|Endpoint = [0-9A-Za-z.:\[\]-]+|AllowedIPs = [0-9a-f.:/, ]+|PersistentKeepalive = [0-9]+|)$') AS unexpected
FROM peer, regexp_split_to_table(wg_peer_config(peer_id), E'\n') AS line
WHERE status <> 'revoked';

-- Unknown peer.
\pset tuples_only off
SELECT wg_peer_config('00000000-0000-0000-0000-000000000000');

-- A field that is ASCII by construction but was written past the API's
-- checks (here by a superuser) is refused whole, never rendered: U+2028
-- and U+0085, which some readers take for a line break, included.
\set VERBOSITY terse
BEGIN;
UPDATE interface SET endpoint = E'vpn.example.net\u2028PostUp = id:51820' WHERE name = 'wgc';
SELECT wg_peer_config(peer_id) IS NULL FROM peer WHERE user_id = 'cfg-generated';
ROLLBACK;
BEGIN;
UPDATE peer SET dns = E'9.9.9.9\u0085PostUp = id' WHERE user_id = 'cfg-generated';
SELECT wg_peer_config(peer_id) IS NULL FROM peer WHERE user_id = 'cfg-generated';
ROLLBACK;
\set VERBOSITY default

-- An invalid DNS list is named in the error by its bad entry, or its
-- beginning, cut to 64 bytes: never echoed whole.
CREATE FUNCTION pg_temp.error_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT pg_temp.error_of(format('SELECT wg_create_peer(%L, interface => %L, dns => %L)',
                               'cfg-dns', 'wgc', d)) AS error, length(d) AS given
FROM unnest(ARRAY[repeat('1.1.1.1, ', 7000) || '1.1.1.1',
                  '1.1.1.1, ' || repeat('a', 300),
                  '1.1.1.1, ' || repeat('é', 200),
                  '1.1.1.1,, 8.8.8.8',
                  '1.1.1.1, 999.1.1.1']) d;
