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
SELECT wg_add_interface('wg6', 'h.example:1', '10.60.0.1/24', backend => 'kernel');

-- Nothing above left a row behind.
SELECT name, exclusive, backend FROM interface ORDER BY name;
SELECT interface, next_address FROM pool ORDER BY interface;
