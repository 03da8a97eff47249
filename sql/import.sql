-- Importing peers that already exist, without changing them.
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql

SELECT name FROM wg_add_interface('wgi', '198.51.100.11:51820', '10.213.0.1/24',
                                  address6 => 'fd00:213::1/64');

-- One peer: its key, preshared key, address and keepalive kept; its IPv6
-- address follows from the interface's prefix; no private key; one add
-- queued (the same settings it has on the interface already).
SELECT user_id, host(address), host(address6), status, expires_at
FROM wg_import_peer('wgi', 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=',
                    '10.213.0.50', 'FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=',
                    'imported-1', 25);
SELECT private_key IS NULL AS no_private, preshared_key, persistent_keepalive
FROM peer WHERE user_id = 'imported-1';
SELECT op FROM queue q JOIN peer p USING (peer_id) WHERE p.user_id = 'imported-1';
SELECT wg_peer_config(peer_id) LIKE '%# PrivateKey = <the private key of%'
       AND wg_peer_config(peer_id) LIKE '%PersistentKeepalive = 25%' AS config_ok
FROM peer WHERE user_id = 'imported-1';
-- the addresses below it stay free, lowest first
SELECT host(wg_next_ip('wgi')) AS next_free;
SELECT host(address) FROM wg_create_peer('new-1', interface => 'wgi');
-- without user_id, the public key names the user; an imported keepalive
-- equal to the interface's is not stored as an override
SELECT user_id = public_key AS named_by_key, host(address)
FROM wg_import_peer('wgi', 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=', '10.213.0.3/32',
                    persistent_keepalive => 0);
SELECT persistent_keepalive FROM peer
WHERE public_key = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=';

-- What is refused.
SELECT pg_temp.try('SELECT wg_import_peer(''wgi'', ''WfKYLlGtThDCAPbWLJpKV0aMd9a1yk07aj0EkzuhcWA='', ''10.213.0.50'')');
SELECT pg_temp.try('SELECT wg_import_peer(''wgi'', ''WfKYLlGtThDCAPbWLJpKV0aMd9a1yk07aj0EkzuhcWA='', ''10.99.0.5'')');
SELECT pg_temp.try('SELECT wg_import_peer(''wgi'', ''WfKYLlGtThDCAPbWLJpKV0aMd9a1yk07aj0EkzuhcWA='', ''10.213.0.1'')');
SELECT pg_temp.try('SELECT wg_import_peer(''wgi'', ''WfKYLlGtThDCAPbWLJpKV0aMd9a1yk07aj0EkzuhcWA='', ''10.213.0.0/24'')');
SELECT pg_temp.try('SELECT wg_import_peer(''wgi'', ''WfKYLlGtThDCAPbWLJpKV0aMd9a1yk07aj0EkzuhcWA='', ''fd00:213::9'')');
SELECT pg_temp.try('SELECT wg_import_peer(''wgi'', ''xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='', ''10.213.0.60'')');
SELECT pg_temp.try('SELECT wg_import_peer(''wgi'', ''AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='', ''10.213.0.60'')');
SELECT pg_temp.try('SELECT wg_import_peer(''wgi'', ''WfKYLlGtThDCAPbWLJpKV0aMd9a1yk07aj0EkzuhcWA='', ''10.213.0.60'', ''short'')');
SELECT pg_temp.try('SELECT wg_import_peer(''wgi'', ''WfKYLlGtThDCAPbWLJpKV0aMd9a1yk07aj0EkzuhcWA='', ''10.213.0.60'', persistent_keepalive => 70000)');
SELECT pg_temp.try('SELECT wg_import_peer(''nosuch'', ''WfKYLlGtThDCAPbWLJpKV0aMd9a1yk07aj0EkzuhcWA='', ''10.213.0.60'')');

-- A whole server config, as `wg showconf` prints it: every peer adopted.
SELECT wg_import_config('wgi', $conf$
[Interface]
ListenPort = 51820
PrivateKey = eK8HaXGrUKnwyMYPQRd5m5cfF3nq5AdVuDBV0UhDM2w=

[Peer]
PublicKey = WfKYLlGtThDCAPbWLJpKV0aMd9a1yk07aj0EkzuhcWA=
PresharedKey = FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=
AllowedIPs = 10.213.0.20/32, fd00:213::14/128
Endpoint = 192.0.2.7:40000

[Peer]
PublicKey = 1Ns2y0Yo/37GmGkzqUnuD7aqH8oDJJWLmUvp3L5F5XQ=
AllowedIPs = 10.213.0.21/32
PersistentKeepalive = 15
$conf$, duration_months => 6) AS imported;
SELECT host(address), host(address6), preshared_key IS NOT NULL AS psk,
       persistent_keepalive, expires_at > now() + interval '5 months' AS six_months
FROM peer WHERE interface = 'wgi' AND address IN ('10.213.0.20', '10.213.0.21')
ORDER BY address;

-- All or nothing, naming the [Peer] and its line.
SELECT count(*) AS peers_before FROM peer WHERE interface = 'wgi';
SELECT wg_import_config('wgi', $conf$
[Peer]
PublicKey = 0H9e6sYhrIxwvfSN7iNvxCC4+3WXKqEnaMmWRoybHls=
AllowedIPs = 10.213.0.30/32

[Peer]
PublicKey = gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdO39T6Ws=
AllowedIPs = 10.213.0.31/32, 192.168.77.0/24
$conf$);
SELECT wg_import_config('wgi', E'[Peer]\nPublicKey = gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdO39T6Ws=\nAllowedIPs = 10.213.0.31/32, fd00:213::99/128\n');
SELECT wg_import_config('wgi', E'[Peer]\nPublicKey = gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdO39T6Ws=\nAllowedIPs = fd00:213::1f/128\n');
SELECT wg_import_config('wgi', E'[Peer]\nPublicKey = gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdO39T6Ws=\nPostUp = rm -rf /\n');
SELECT wg_import_config('wgi', E'[Peer]\nAllowedIPs = 10.213.0.31/32\n');
SELECT count(*) AS peers_after FROM peer WHERE interface = 'wgi';

-- A call refused before any peer is imported (here an invalid interface
-- name) frees the parse: the backend's memory does not grow with each
-- failing call.  Each of these 20,000-peer parses takes about 37 MB, so
-- five of them leaked would grow the data segment by about 180 MB.
CREATE TEMP TABLE big AS
SELECT string_agg(format(E'[Peer]\nPublicKey = %s\nAllowedIPs = 10.%s.%s.%s/32\n',
                         encode(sha256(g::text::bytea), 'base64'),
                         g / 65536, (g / 256) % 256, g % 256), '') AS conf
FROM generate_series(1, 20000) g;
CREATE FUNCTION pg_temp.vm_data_kb() RETURNS bigint LANGUAGE sql AS $$
	SELECT substring(pg_read_file('/proc/self/status') FROM 'VmData:\s+(\d+) kB')::bigint
$$;
SELECT pg_temp.try(format('SELECT wg_import_config(%L, %L)', 'no/such', conf)) FROM big;
CREATE TEMP TABLE vm AS SELECT pg_temp.vm_data_kb() AS before;
SELECT pg_temp.try(format('SELECT wg_import_config(%L, %L)', 'no/such', conf))
FROM big, generate_series(1, 5);
-- (AddressSanitizer keeps freed memory in quarantine, so a sanitized
-- server's data segment grows whatever is freed: test/sanitize.sh looks
-- for leaks with LeakSanitizer instead)
SELECT pg_temp.vm_data_kb() - before < 60000
       OR pg_read_file('/proc/self/maps') LIKE '%libasan%' AS no_leak FROM vm;
