-- Address allocation: lowest free address, reuse, exhaustion, rollback.
SET search_path = wgpeer, public;
\set VERBOSITY default

-- Several interfaces exist: the interface must be named.
SELECT wg_next_ip();
SELECT wg_next_ip('nosuch');
SELECT wg_next_ip(E'bad\nname');

-- wg0 (10.10.0.1/24): the server holds .1, so the first client gets .2,
-- and asking twice without creating a peer gives the same answer.
SELECT wg_next_ip('wg0'), wg_next_ip('wg0');
-- the next peer created in the same transaction receives that address
BEGIN;
SELECT wg_next_ip('wg0') AS promised;
SELECT address FROM wg_create_peer('pool-a', interface => 'wg0');
SELECT wg_next_ip('wg0') AS next;
COMMIT;

-- A rolled-back creation consumes nothing.
BEGIN;
SELECT address FROM wg_create_peer('pool-rollback', interface => 'wg0');
ROLLBACK;
SELECT wg_next_ip('wg0') AS after_rollback;
SELECT count(*) AS rolled_back_rows FROM peer WHERE user_id = 'pool-rollback';

-- Fill .3 to .6, revoke .4 and .3: the lowest released address comes first.
SELECT string_agg(host(address), ' ' ORDER BY address) AS created
FROM (SELECT (wg_create_peer('pool-b', interface => 'wg0')).address
      FROM generate_series(1, 4)) s;
SELECT status, host(address) FROM wg_revoke_peer(
	(SELECT peer_id FROM peer WHERE address = '10.10.0.4' AND interface = 'wg0'));
SELECT status, host(address) FROM wg_revoke_peer(
	(SELECT peer_id FROM peer WHERE address = '10.10.0.3' AND interface = 'wg0'));
SELECT interface, host(address) FROM free_address ORDER BY address;
SELECT wg_next_ip('wg0') AS lowest_released;
SELECT host(address) FROM wg_create_peer('pool-c', interface => 'wg0');
SELECT host(address) FROM wg_create_peer('pool-c', interface => 'wg0');
-- both released addresses are reused, then the high-water mark continues
SELECT host(address) FROM wg_create_peer('pool-c', interface => 'wg0');
SELECT count(*) AS free_left FROM free_address WHERE interface = 'wg0';

-- A narrowed pool that contains the server's address skips it.
SELECT name FROM wg_add_interface('wg7', 'h.example:1', '10.70.0.5/24',
                                  pool_start => '10.70.0.4', pool_end => '10.70.0.7');
SELECT string_agg(host(address), ' ' ORDER BY address) AS wg7
FROM (SELECT (wg_create_peer('pool-d', interface => 'wg7')).address
      FROM generate_series(1, 3)) s;
-- the pool is now full: a clear error naming the interface and its size
SELECT wg_next_ip('wg7');
SELECT wg_create_peer('pool-d', interface => 'wg7');
-- revoking one frees exactly that address
SELECT status FROM wg_revoke_peer(
	(SELECT peer_id FROM peer WHERE address = '10.70.0.6' AND interface = 'wg7'));
SELECT wg_next_ip('wg7');

-- Dual stack: the IPv6 address mirrors the IPv4 offset and never takes
-- the server's own IPv6 address (fd00:80::3 here, offset 3 is skipped).
SELECT name FROM wg_add_interface('wg8', 'h.example:1', '10.80.0.1/24',
                                  address6 => 'fd00:80::3/64');
SELECT string_agg(host(address) || '=' || host(address6), ' ' ORDER BY address) AS wg8
FROM (SELECT (p).address, (p).address6
      FROM (SELECT wg_create_peer('pool-e', interface => 'wg8') AS p
            FROM generate_series(1, 3)) s) t;

-- An expired peer keeps its address through the grace period, then the
-- allocator takes it back.
SELECT name FROM wg_add_interface('wg9', 'h.example:1', '10.90.0.1/29');
SELECT host(address) FROM wg_create_peer('pool-f', interface => 'wg9');
UPDATE peer SET expires_at = now() - interval '1 hour' WHERE user_id = 'pool-f';
SELECT wg_expire_peers();
SELECT wg_next_ip('wg9') AS during_grace;
UPDATE peer SET expires_at = now() - interval '8 days' WHERE user_id = 'pool-f';
SELECT wg_next_ip('wg9') AS after_grace;
SELECT status, released_at IS NOT NULL AS released FROM peer WHERE user_id = 'pool-f';
-- the grace period is a setting
SET wgpeer.expired_grace = '1h';
SHOW wgpeer.expired_grace;
RESET wgpeer.expired_grace;

-- The unique index is the backstop behind the allocator.
INSERT INTO peer (user_id, interface, address, public_key, config_name)
VALUES ('forced', 'wg0', '10.10.0.2', wg_pubkey(wg_genkey()), 'x');

-- A bulk creation in one transaction writes the pool row once while it
-- allocates, and the mark it reached once more at commit: the next
-- transaction starts from there instead of probing every address the bulk
-- took.  A subtransaction that rolled back gives its addresses back.
SELECT name FROM wg_add_interface('wg10', 'h.example:1', '10.100.0.1/24');
BEGIN;
SELECT count(wg_create_peer('pool-g', interface => 'wg10')) FROM generate_series(1, 40);
SELECT host(next_address) AS mark_inside FROM pool WHERE interface = 'wg10';
COMMIT;
SELECT host(next_address) AS mark_after_commit FROM pool WHERE interface = 'wg10';
BEGIN;
SELECT count(wg_create_peer('pool-g', interface => 'wg10')) FROM generate_series(1, 3);
SAVEPOINT s;
SELECT count(wg_create_peer('pool-g', interface => 'wg10')) FROM generate_series(1, 5);
ROLLBACK TO s;
SELECT count(wg_create_peer('pool-g', interface => 'wg10')) FROM generate_series(1, 2);
RELEASE s;
COMMIT;
SELECT host(next_address) AS mark_after_savepoints, host(wg_next_ip('wg10')) AS next,
       (SELECT count(*) FROM peer WHERE user_id = 'pool-g') AS peers,
       (SELECT host(max(address)) FROM peer WHERE user_id = 'pool-g') AS highest
FROM pool WHERE interface = 'wg10';
-- a rolled-back bulk leaves the mark where it was
BEGIN;
SELECT count(wg_create_peer('pool-g', interface => 'wg10')) FROM generate_series(1, 10);
ROLLBACK;
SELECT host(next_address) AS mark_after_rollback FROM pool WHERE interface = 'wg10';
SELECT wg_remove_interface('wg10', force => true) AS wg10_peers_removed;
