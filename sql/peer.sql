-- The peer lifecycle: create, list, renew, expire, revoke, and the queue.
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql

SELECT name FROM wg_add_interface('wgp', '198.51.100.7:51820', '10.100.0.1/24',
                                  address6 => 'fd00:100::1/64',
                                  dns => '10.100.0.1');

-- A new peer: keys, the lowest address, status creating, one queued add.
SELECT user_id, interface, host(address), host(address6), status,
       length(public_key) AS key_len, config_name ~ '^wg-[0-9a-f]{8}$' AS default_name,
       expires_at = created_at + interval '3 months' AS three_months
FROM wg_create_peer('carol', 3, interface => 'wgp');
SELECT p.public_key = wg_pubkey(p.private_key) AS pair_matches,
       length(p.preshared_key) AS psk_len, p.dns IS NULL AS inherits_dns
FROM peer p WHERE user_id = 'carol';
SELECT op, q.interface, q.public_key = p.public_key AS same_key, attempts
FROM queue q JOIN peer p USING (peer_id) WHERE p.user_id = 'carol';

-- Optional arguments: no expiry, own DNS, own tunnel name.
SELECT user_id, host(address), expires_at IS NULL AS never_expires, config_name
FROM wg_create_peer('carol', NULL, dns => '9.9.9.9, 149.112.112.112',
                    config_name => 'carol-laptop', interface => 'wgp');
SELECT dns FROM peer WHERE config_name = 'carol-laptop';

-- The client brings its own key: the server never holds a private key.
SELECT host(address), public_key
FROM wg_create_peer('dave', 1, interface => 'wgp',
                    public_key => '3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=');
SELECT private_key IS NULL AS no_private_key FROM peer WHERE user_id = 'dave';
-- the same key twice on one interface is refused
SELECT wg_create_peer('dave', 1, interface => 'wgp',
                      public_key => '3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=');
-- and so is the server's own key
SELECT wg_create_peer('dave', 1, interface => 'wgp',
                      public_key => (SELECT public_key FROM interface WHERE name = 'wgp'));

-- Listing: live peers only, newest first.
SELECT user_id, config_name ~ '^wg-' AS default_name, host(address), status
FROM wg_list_user_peers('carol');
SELECT count(*) AS nobody FROM wg_list_user_peers('nobody');

-- Argument errors.
SELECT wg_create_peer(NULL, interface => 'wgp');
SELECT wg_create_peer('', interface => 'wgp');
SELECT wg_create_peer(repeat('u', 257), interface => 'wgp');
-- user_id is counted in bytes: 128 two-byte characters (U+00E9) fit, 129 do not
BEGIN;
SELECT octet_length(user_id) AS bytes, length(user_id) AS characters
FROM wg_create_peer(repeat(convert_from('\xc3a9', 'UTF8'), 128), interface => 'wgp');
ROLLBACK;
SELECT wg_create_peer(repeat(convert_from('\xc3a9', 'UTF8'), 129), interface => 'wgp');
SELECT wg_create_peer(E'eve\n[Peer]', interface => 'wgp');
SELECT wg_create_peer('eve', 0, interface => 'wgp');
SELECT wg_create_peer('eve', 121, interface => 'wgp');
SELECT wg_create_peer('eve', dns => '8.8.8.8, evil host', interface => 'wgp');
SELECT wg_create_peer('eve', config_name => 'has space', interface => 'wgp');
SELECT wg_create_peer('eve', config_name => 'sixteen-chars-xx', interface => 'wgp');
SELECT wg_create_peer('eve', config_name => E'x\nDNS=1.1.1.1', interface => 'wgp');
SELECT wg_create_peer('eve', public_key => 'bogus', interface => 'wgp');
-- public keys no handshake could use: low-order points (all zero, order 8,
-- p = 2^255 - 19, p + 1, 1 with bit 255 set), bit 255 set (dave's key), a
-- number not below p
SELECT wg_create_peer('eve', public_key => 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
                      interface => 'wgp');
SELECT wg_create_peer('eve', interface => 'wgp',
       public_key => encode('\x5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157', 'base64'));
SELECT wg_create_peer('eve', interface => 'wgp',
       public_key => encode('\xedffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'base64'));
SELECT wg_create_peer('eve', interface => 'wgp',
       public_key => encode('\xeeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'base64'));
SELECT wg_create_peer('eve', interface => 'wgp',
       public_key => encode('\x0100000000000000000000000000000000000000000000000000000000000080', 'base64'));
SELECT wg_create_peer('eve', interface => 'wgp',
       public_key => encode(set_byte(decode('3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=', 'base64'),
                                     31, 128 | 79), 'base64'));
SELECT wg_create_peer('eve', interface => 'wgp',
       public_key => encode('\xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'base64'));
SELECT wg_create_peer('eve', interface => 'nosuch');
SELECT count(*) AS no_eve FROM peer WHERE user_id = 'eve';

-- Revoke: status, address released, one queued removal; twice is a no-op.
SELECT user_id, status, revoked_at IS NOT NULL AS stamped, released_at IS NOT NULL AS released
FROM wg_revoke_peer((SELECT peer_id FROM peer WHERE config_name = 'carol-laptop'));
SELECT user_id, status FROM wg_revoke_peer((SELECT peer_id FROM peer WHERE config_name = 'carol-laptop'));
SELECT op, count(*) FROM queue JOIN peer USING (peer_id)
WHERE config_name = 'carol-laptop' GROUP BY op ORDER BY op;
SELECT host(address) FROM free_address WHERE interface = 'wgp';
SELECT wg_revoke_peer('00000000-0000-0000-0000-000000000000') IS NULL AS unknown_is_null;
SELECT wg_revoke_peer(NULL) IS NULL AS null_is_null;
-- a revoked peer has no config and cannot be renewed
SELECT pg_temp.try($$SELECT wgpeer.wg_peer_config(peer_id) FROM wgpeer.peer
                     WHERE config_name = 'carol-laptop'$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_renew_peer(peer_id, 1) FROM wgpeer.peer
                     WHERE config_name = 'carol-laptop'$$);

-- Renew a live peer: from its current expiry, not from now.
SELECT status, expires_at = created_at + interval '5 months' AS five_months
FROM wg_renew_peer((SELECT peer_id FROM peer WHERE user_id = 'carol' AND status = 'creating'), 2);
SELECT status, expires_at = created_at + interval '1 month' AS one_month
FROM wg_renew_peer((SELECT peer_id FROM peer WHERE user_id = 'dave'), 1);
SELECT wg_renew_peer((SELECT peer_id FROM peer WHERE user_id = 'dave'), 0);
SELECT wg_renew_peer((SELECT peer_id FROM peer WHERE user_id = 'dave'), NULL);
SELECT wg_renew_peer(NULL, 1);
SELECT wg_renew_peer('00000000-0000-0000-0000-000000000000', 1);
SELECT name FROM wg_add_interface('wgq', '198.51.100.7:51821', '10.101.0.1/24');
SELECT status, expires_at IS NULL AS still_unlimited
FROM wg_renew_peer((wg_create_peer('grace', NULL, interface => 'wgq')).peer_id, 6);

-- Expiry: past-due live peers expire and their removal is queued.
UPDATE peer SET expires_at = now() - interval '1 minute' WHERE user_id = 'carol' AND status = 'creating';
SELECT wg_expire_peers() AS expired;
SELECT wg_expire_peers() AS expired_again;
SELECT status, released_at IS NULL AS holds_address FROM peer WHERE user_id = 'carol' AND revoked_at IS NULL;
SELECT op FROM queue JOIN peer USING (peer_id)
WHERE user_id = 'carol' AND revoked_at IS NULL ORDER BY change_id;
SELECT count(*) AS carol_live FROM wg_list_user_peers('carol');

-- Renewed within the grace period: same address, same config, queued add.
CREATE TEMP TABLE before_renew AS
SELECT peer_id, address, wg_peer_config(peer_id) AS config
FROM peer WHERE user_id = 'carol' AND revoked_at IS NULL;
SELECT status, host(address), expires_at > now() + interval '27 days' AS month_from_now
FROM wg_renew_peer((SELECT peer_id FROM before_renew), 1);
SELECT wg_peer_config(peer_id) = (SELECT config FROM before_renew) AS same_config
FROM before_renew;
SELECT op FROM queue WHERE peer_id = (SELECT peer_id FROM before_renew) ORDER BY change_id;

-- Expired past the grace period: the address goes back to the pool, and a
-- renewal gets it back if nobody took it...
UPDATE peer SET expires_at = now() - interval '8 days' WHERE peer_id = (SELECT peer_id FROM before_renew);
SELECT wg_expire_peers() AS expired;
SELECT status, released_at IS NOT NULL AS released FROM peer WHERE peer_id = (SELECT peer_id FROM before_renew);
SELECT status, host(address), host(address6) FROM wg_renew_peer((SELECT peer_id FROM before_renew), 1);
-- ...and otherwise the lowest free one.
UPDATE peer SET expires_at = now() - interval '8 days' WHERE peer_id = (SELECT peer_id FROM before_renew);
SELECT wg_expire_peers() AS expired;
SELECT host(address) AS taken_by_frank FROM wg_create_peer('frank', interface => 'wgp');
SELECT status, host(address), host(address6) FROM wg_renew_peer((SELECT peer_id FROM before_renew), 1);

-- Revoking an expired peer queues nothing more (it is off the interface).
UPDATE peer SET expires_at = now() - interval '1 minute' WHERE user_id = 'frank';
SELECT wg_expire_peers() AS expired;
SELECT count(*) AS queued_before FROM queue WHERE peer_id = (SELECT peer_id FROM peer WHERE user_id = 'frank');
SELECT status, released_at IS NOT NULL AS released FROM wg_revoke_peer((SELECT peer_id FROM peer WHERE user_id = 'frank'));
SELECT count(*) AS queued_after FROM queue WHERE peer_id = (SELECT peer_id FROM peer WHERE user_id = 'frank');

-- A rolled-back transaction leaves no peer, no queue row, no address used.
SELECT count(*) AS peers, (SELECT count(*) FROM queue) AS changes,
       (SELECT next_address FROM pool WHERE interface = 'wgp') AS next
FROM peer \gset before_
BEGIN;
SELECT count(*) FROM (SELECT wg_create_peer('ghost', interface => 'wgp') FROM generate_series(1, 5)) s;
SELECT (wg_revoke_peer((SELECT peer_id FROM peer WHERE user_id = 'dave'))).status AS in_tx;
ROLLBACK;
SELECT count(*) = :before_peers AS same_peers,
       (SELECT count(*) FROM queue) = :before_changes AS same_queue,
       (SELECT next_address FROM pool WHERE interface = 'wgp') = :'before_next' AS same_pool,
       (SELECT status FROM peer WHERE user_id = 'dave') AS dave
FROM peer;

-- The queue is in commit order per peer: add before remove.
SELECT string_agg(op, ',' ORDER BY change_id) AS ops
FROM queue WHERE peer_id = (SELECT peer_id FROM peer WHERE config_name = 'carol-laptop');

-- wg_show() is answered by the apply worker, which serves the database
-- named by wgpeer.database ("postgres" here), not this one.
SELECT * FROM wg_show('wgp');
SELECT * FROM wg_reconcile();

-- Unregistering an interface: refused while it has live peers or
-- unapplied changes (no worker serves this database, so the revoke's
-- removal stays queued), then forced; other interfaces keep theirs.
SELECT name FROM wg_add_interface('wgr', '198.51.100.7:51829', '10.109.0.1/24');
SELECT peer_id AS r1 FROM wg_create_peer('rita', interface => 'wgr') \gset
SELECT host(address) FROM wg_create_peer('rob', interface => 'wgr');
SELECT count(*) AS wgp_peers FROM peer WHERE interface = 'wgp' \gset
SELECT pg_temp.try('SELECT wg_remove_interface(NULL)');
SELECT pg_temp.try('SELECT wg_remove_interface(''wgr'', force => NULL)');
SELECT pg_temp.try('SELECT wg_remove_interface(''nope'')');
SELECT pg_temp.try('SELECT wg_remove_interface(''wgr'')');
SELECT wg_remove_interface('wgr');
SELECT status FROM wg_revoke_peer((SELECT peer_id FROM peer WHERE user_id = 'rob'));
SELECT pg_temp.try('SELECT wg_remove_interface(''wgr'')');
SELECT status FROM wg_revoke_peer(:'r1');
SELECT pg_temp.try('SELECT wg_remove_interface(''wgr'')');
SELECT wg_remove_interface('wgr');
-- Once the worker has applied them (done here by hand), no force is needed.
DELETE FROM queue WHERE interface = 'wgr';
SELECT wg_remove_interface('wgr') AS peers_removed;
SELECT (SELECT count(*) FROM interface WHERE name = 'wgr') AS interfaces,
       (SELECT count(*) FROM peer WHERE interface = 'wgr') AS peers,
       (SELECT count(*) FROM queue WHERE interface = 'wgr') AS changes,
       (SELECT count(*) FROM pool WHERE interface = 'wgr') AS pools,
       (SELECT count(*) FROM free_address WHERE interface = 'wgr') AS free,
       (SELECT count(*) FROM peer WHERE interface = 'wgp') = :wgp_peers AS wgp_kept;
-- The name can be registered again, from a fresh pool; force forgets a
-- live peer and its queued add.
SELECT name FROM wg_add_interface('wgr', '198.51.100.7:51829', '10.109.0.1/24');
SELECT host(address) FROM wg_create_peer('rita', interface => 'wgr');
SELECT wg_remove_interface('wgr', force => true) AS peers_removed;
SELECT (SELECT count(*) FROM peer WHERE interface = 'wgr') AS peers,
       (SELECT count(*) FROM queue WHERE interface = 'wgr') AS changes;
