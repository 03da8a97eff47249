-- Interfaces: registration, defaults and every validation error.
SET search_path = wgpeer, public;
\set VERBOSITY default

-- A fixed server key makes the output reproducible.
SELECT name, endpoint, address, address6, pool_start, pool_end, dns,
       listen_port, mtu, persistent_keepalive, allowed_ips, private_key,
       public_key, preshared_keys
FROM wg_add_interface('wg0', 'vpn.example.com:51820', '10.10.0.1/24',
                      private_key => 'dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=');
SELECT * FROM pool;

-- Everything optional, given: the DNS list and allowed IPs are normalised.
SELECT name, endpoint, address, address6, pool_start, pool_end, dns,
       listen_port, mtu, persistent_keepalive, allowed_ips, private_key,
       public_key = wg_pubkey('XasIfmJKikt54X+Lg4AO5m87sSkmGLb9HC+LJ/+I4Os=') AS derived
FROM wg_add_interface('wg1', '[2001:db8::1]:443', '10.20.0.1/16',
                      address6 => 'fd00:20::1/64',
                      dns => '1.1.1.1,2606:4700:4700::1111 ,  corp.example',
                      listen_port => 443, mtu => 1380,
                      persistent_keepalive => 25,
                      allowed_ips => '10.20.0.0/16,192.168.1.0/24',
                      private_key => 'XasIfmJKikt54X+Lg4AO5m87sSkmGLb9HC+LJ/+I4Os=',
                      public_key => wg_pubkey('XasIfmJKikt54X+Lg4AO5m87sSkmGLb9HC+LJ/+I4Os='),
                      pool_start => '10.20.1.10', pool_end => '10.20.1.200');

-- Only a public key: the server's private key stays elsewhere.
SELECT name, private_key IS NULL AS no_private_key, public_key
FROM wg_add_interface('wg2', '192.0.2.10:51820', '10.30.0.1/30',
                      public_key => 'hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=',
                      preshared_keys => false);

-- No key at all: a fresh pair is generated.  Exclusive: the worker's
-- reconcile removes peers nobody registered (default: leaves them alone).
-- Backend uapi: reached only over its userspace daemon's socket.
SELECT length(private_key) = 44 AND public_key = wg_pubkey(private_key) AS generated,
       exclusive, backend
FROM wg_add_interface('wg3', 'h.example:1', '10.40.0.1/24', exclusive => true,
                      backend => 'uapi');

-- Names as the kernel accepts them.
SELECT wg_add_interface('', 'h.example:1', '10.50.0.1/24');
SELECT wg_add_interface('wg-much-too-long', 'h.example:1', '10.50.0.1/24');
SELECT wg_add_interface('..', 'h.example:1', '10.50.0.1/24');
SELECT wg_add_interface('wg/0', 'h.example:1', '10.50.0.1/24');
SELECT wg_add_interface('wg:0', 'h.example:1', '10.50.0.1/24');
SELECT wg_add_interface('wg 0', 'h.example:1', '10.50.0.1/24');
-- ...and as `ip` accepts them: printable ASCII without '%' (a template the
-- kernel numbers); U+00A0, a no-break space, is not a character of a name
SELECT wg_add_interface('wg%d', 'h.example:1', '10.50.0.1/24');
SELECT wg_add_interface(convert_from('\x7767c2a030', 'UTF8'), 'h.example:1', '10.50.0.1/24');
SELECT wg_add_interface(E'wg\n0', 'h.example:1', '10.50.0.1/24');
SELECT wg_add_interface(NULL, 'h.example:1', '10.50.0.1/24');
SELECT wg_add_interface('wg0', 'h.example:1', '10.50.0.1/24');

-- Endpoints: host:port with a hostname, IPv4 or [IPv6], port 1-65535.
SELECT wg_add_interface('wg5', 'h.example', '10.50.0.1/24');
SELECT wg_add_interface('wg5', 'h.example:', '10.50.0.1/24');
SELECT wg_add_interface('wg5', ':51820', '10.50.0.1/24');
SELECT wg_add_interface('wg5', 'h.example:0', '10.50.0.1/24');
SELECT wg_add_interface('wg5', 'h.example:65536', '10.50.0.1/24');
SELECT wg_add_interface('wg5', 'h.example:5x', '10.50.0.1/24');
SELECT wg_add_interface('wg5', '2001:db8::1:51820', '10.50.0.1/24');
SELECT wg_add_interface('wg5', '[2001:db8::zz]:51820', '10.50.0.1/24');
SELECT wg_add_interface('wg5', '-bad.example:51820', '10.50.0.1/24');
SELECT wg_add_interface('wg5', 'bad_host.example:51820', '10.50.0.1/24');
SELECT wg_add_interface('wg5', '10.0.0.256:51820', '10.50.0.1/24');
SELECT wg_add_interface('wg5', E'h.example:1\n[Peer]', '10.50.0.1/24');

-- Addresses and pools.
SELECT wg_add_interface('wg5', 'h.example:1', NULL);
SELECT wg_add_interface('wg5', 'h.example:1', 'fd00::1/64');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.1/31');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.1/32');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.0/24');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.255/24');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.1/24', pool_start => '10.51.0.5');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.1/24', pool_end => '10.50.0.255');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.1/24', pool_start => 'fd00::5');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.1/24',
                        pool_start => '10.50.0.100', pool_end => '10.50.0.99');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.1/24',
                        pool_start => '10.50.0.1', pool_end => '10.50.0.1');
-- prefixes whose pool would hold addresses no peer can use
SELECT wg_add_interface('wg5', 'h.example:1', '10.90.0.1/0');
SELECT wg_add_interface('wg5', 'h.example:1', '0.0.0.1/24');
SELECT wg_add_interface('wg5', 'h.example:1', '8.0.0.1/4');
SELECT wg_add_interface('wg5', 'h.example:1', '127.0.0.2/8');
SELECT wg_add_interface('wg5', 'h.example:1', '169.254.0.1/16');
SELECT wg_add_interface('wg5', 'h.example:1', '224.0.0.1/24');
SELECT wg_add_interface('wg5', 'h.example:1', '240.0.0.1/24');
SELECT wg_add_interface('wg5', 'h.example:1', '255.255.255.253/30');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.1/24', address6 => '::/0');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.1/24', address6 => '::1/128');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.1/24', address6 => '::ffff:10.50.0.1/120');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.1/24', address6 => 'fe80::1/64');
SELECT wg_add_interface('wg5', 'h.example:1', '10.50.0.1/24', address6 => 'ff02::1/64');
-- private and shared ranges are fine
BEGIN;
SELECT name, address, address6
FROM wg_add_interface('wg8', 'h.example:1', '100.64.0.1/24', address6 => 'fd00:64::1/64');
SELECT name, address FROM wg_add_interface('wg9', 'h.example:1', '172.16.5.1/24');
SELECT name, address FROM wg_add_interface('wga', 'h.example:1', '192.168.77.1/24');
ROLLBACK;
-- overlapping another interface's pool (wg0 holds 10.10.0.1-254)
SELECT wg_add_interface('wg5', 'h.example:1', '10.10.0.129/25');
-- a disjoint pool inside the same prefix is fine
SELECT name, pool_start, pool_end
FROM wg_add_interface('wg5', 'h.example:1', '10.20.2.1/16',
                      pool_start => '10.20.2.1', pool_end => '10.20.2.100');
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', address6 => '10.60.1.1/24');
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/16', address6 => 'fd00:60::1/120');
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', address6 => 'fd00:20::99/64');

-- DNS lists.
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', dns => '1.1.1.1,,8.8.8.8');
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', dns => '1.1.1.1, 8.8.8.256');
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', dns => '2606:4700::zz');
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', dns => '1.1.1.1; rm -rf /');
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', dns => E'1.1.1.1\nPostUp = id');

-- Numbers and allowed IPs.
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', listen_port => 0);
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', listen_port => 70000);
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', mtu => 100);
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', persistent_keepalive => -1);
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', allowed_ips => '');
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', allowed_ips => '10.60.0.1/24');
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', allowed_ips => 'everything');

-- Keys.
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', private_key => 'short');
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', public_key => 'short');
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24',
                        private_key => 'dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=',
                        public_key => '3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=');
-- keys no handshake could use: low-order points (all zero, order 8, p + 1),
-- bit 255 set, a number not below p = 2^255 - 19, an all-zero private key
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24',
                        public_key => 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=');
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24',
                        public_key => encode('\xe0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', 'base64'));
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24',
                        public_key => encode('\xeeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'base64'));
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24',
                        public_key => encode('\x8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4eea', 'base64'));
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24',
                        public_key => encode('\xf0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'base64'));
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24',
                        private_key => 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=');
-- with both keys, a useless public key is named as such, not as a mismatch
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24',
                        private_key => 'dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=',
                        public_key => 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=');
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', backend => 'kernel');

-- A pool larger than the backend holds per interface (wireguard-go: 65536
-- peers, kernel WireGuard: 1048576) is registered with a warning.
BEGIN;
SELECT name FROM wg_add_interface('wgu1', 'h.example:1', '10.128.0.1/15', backend => 'uapi');
-- 65536 peers fit: .0.1 to 10.133.0.1 is 65537 addresses, one the server's
SELECT name FROM wg_add_interface('wgu2', 'h.example:2', '10.132.0.1/15', backend => 'uapi',
                                  pool_end => '10.133.0.1');
SELECT name FROM wg_add_interface('wgu3', 'h.example:3', '10.134.0.1/15', backend => 'uapi',
                                  pool_end => '10.135.0.2');
SELECT name FROM wg_add_interface('wgu4', 'h.example:4', '10.136.0.1/16', backend => 'uapi');
SELECT name FROM wg_add_interface('wga1', 'h.example:5', '10.138.0.1/15');
SELECT name FROM wg_add_interface('wgn1', 'h.example:6', '10.140.0.1/15', backend => 'netlink');
SELECT name FROM wg_add_interface('wgn2', 'h.example:7', '10.160.0.1/11', backend => 'netlink',
                                  pool_end => '10.176.0.1');
SELECT name FROM wg_add_interface('wgn3', 'h.example:8', '10.192.0.1/11', backend => 'netlink',
                                  pool_end => '10.208.0.2');
SELECT name FROM wg_add_interface('wga2', 'h.example:9', '10.224.0.1/11');
ROLLBACK;

-- Nothing above left a row behind.
SELECT name, exclusive, backend FROM interface ORDER BY name;
SELECT interface, next_address FROM pool ORDER BY interface;

-- In a SQL_ASCII database text carries any byte: invalid UTF-8 in a name is
-- refused as well (only the detail is shown, the name is not printable).
SELECT current_database() AS regress_db \gset
CREATE DATABASE wgpeer_sql_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'
    TEMPLATE template0;
\c wgpeer_sql_ascii
CREATE EXTENSION wgpeer;
DO $$
DECLARE
	detail text;
BEGIN
	PERFORM wgpeer.wg_add_interface(E'wg\xff0', 'h.example:1', '10.50.0.1/24');
	RAISE NOTICE 'accepted';
EXCEPTION WHEN invalid_parameter_value THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
	RAISE NOTICE 'SQLSTATE %: %', SQLSTATE, detail;
END
$$;
SELECT count(*) AS interfaces FROM wgpeer.interface;
\c :regress_db
DROP DATABASE wgpeer_sql_ascii;
