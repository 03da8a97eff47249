-- The subscription lifecycle: suspend and resume, key rotation, the device
-- limit per user, and the queue each transition writes.
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql
-- The queued changes of a user's peers, oldest first, with whether each
-- names the peer's current key.
CREATE FUNCTION pg_temp.changes(who text) RETURNS TABLE (op text, current_key boolean)
LANGUAGE sql AS $$
	SELECT q.op, q.public_key = p.public_key
	FROM wgpeer.queue q JOIN wgpeer.peer p USING (peer_id)
	WHERE p.user_id = who ORDER BY q.change_id
$$;

SELECT name FROM wg_add_interface('wgl', '198.51.100.9:51820', '10.211.0.1/24',
                                  address6 => 'fd00:211::1/64');
SELECT count(*) FROM wg_create_peer('sam', 3, interface => 'wgl');
CREATE TEMP TABLE sam AS
	SELECT peer_id, address, address6, public_key, private_key, preshared_key,
	       expires_at, wg_peer_config(peer_id) AS config
	FROM peer WHERE user_id = 'sam';
DELETE FROM queue;

-- Suspend: off the interface (one removal queued), keys, address and
-- expiry kept, the reason recorded; the address stays taken.
SELECT status, suspended_reason, suspended_at IS NOT NULL AS since
FROM wg_suspend_peer((SELECT peer_id FROM sam), 'payment overdue');
SELECT * FROM pg_temp.changes('sam');
SELECT p.address = s.address AND p.address6 = s.address6
       AND p.public_key = s.public_key AND p.private_key = s.private_key
       AND p.preshared_key = s.preshared_key AND p.expires_at = s.expires_at
       AS all_kept,
       p.released_at IS NULL AS address_held
FROM peer p JOIN sam s USING (peer_id);
SELECT host(wg_next_ip('wgl')) AS next_free;
-- a suspended peer still has its config, and appears in its user's list
SELECT wg_peer_config(peer_id) = config AS same_config FROM sam;
SELECT status FROM wg_list_user_peers('sam');
-- suspending again changes nothing and queues nothing
SELECT status, suspended_reason
FROM wg_suspend_peer((SELECT peer_id FROM sam), 'another reason');
SELECT count(*) AS changes FROM queue;

-- Resume: back as creating with the same config, one addition queued.
SELECT status, suspended_reason, suspended_at FROM wg_resume_peer((SELECT peer_id FROM sam));
SELECT * FROM pg_temp.changes('sam');
SELECT wg_peer_config(peer_id) = config AS same_config FROM sam;
-- resuming a live peer changes nothing
SELECT status FROM wg_resume_peer((SELECT peer_id FROM sam));
SELECT count(*) AS changes FROM queue;
DELETE FROM queue;

-- A suspended peer whose expiry passes expires as any other, and is then
-- neither resumed nor suspended (55000, saying its state).
SELECT status FROM wg_suspend_peer((SELECT peer_id FROM sam));
UPDATE peer SET expires_at = now() - interval '1 second' WHERE user_id = 'sam';
SELECT wg_expire_peers() AS expired;
SELECT status, suspended_at, suspended_reason FROM peer WHERE user_id = 'sam';
SELECT count(*) AS changes FROM queue;
SELECT pg_temp.try(format('SELECT wg_resume_peer(%L)', peer_id)) FROM sam;
SELECT pg_temp.try(format('SELECT wg_suspend_peer(%L)', peer_id)) FROM sam;
SELECT status FROM wg_renew_peer((SELECT peer_id FROM sam), 1);
DELETE FROM queue;

-- Key rotation: new key pair and preshared key, same address and expiry;
-- the old key's removal then the new key's addition, in that order.
SELECT count(*) FROM wg_create_peer('rita', 1, interface => 'wgl');
CREATE TEMP TABLE rita AS
	SELECT peer_id, address, public_key, private_key, preshared_key, expires_at
	FROM peer WHERE user_id = 'rita';
DELETE FROM queue;
CREATE TEMP TABLE rita_config AS
	SELECT wg_rotate_peer_key((SELECT peer_id FROM rita)) AS config;
SELECT c.config LIKE '%PrivateKey = ' || p.private_key || '%' AS has_new_key,
       c.config LIKE '%PublicKey = ' || i.public_key || '%' AS same_server,
       c.config LIKE '%Address = ' || host(p.address) || '/32%' AS same_address
FROM rita_config c, peer p, interface i
WHERE p.user_id = 'rita' AND i.name = 'wgl';
SELECT p.public_key <> r.public_key AS new_key,
       p.private_key <> r.private_key AS new_private,
       p.preshared_key <> r.preshared_key AS new_psk,
       p.public_key = wg_pubkey(p.private_key) AS pair_matches,
       p.address = r.address AS same_address,
       p.expires_at = r.expires_at AS same_expiry, p.status
FROM peer p JOIN rita r USING (peer_id);
SELECT q.op, q.public_key = r.public_key AS old_key
FROM queue q JOIN rita r USING (peer_id) ORDER BY q.change_id;
DELETE FROM queue;
-- with the client's own public key: no private key kept
SELECT wg_rotate_peer_key((SELECT peer_id FROM rita),
                          'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=')
       LIKE '%# PrivateKey = <the private key of%' AS placeholder;
SELECT public_key, private_key IS NULL AS no_private FROM peer WHERE user_id = 'rita';
-- a key another peer of the interface holds, the interface's own key,
-- a low-order point, and a revoked peer are refused
SELECT pg_temp.try(format('SELECT wg_rotate_peer_key(%L, %L)', r.peer_id, s.public_key))
FROM rita r, peer s WHERE s.user_id = 'sam';
SELECT pg_temp.try(format('SELECT wg_rotate_peer_key(%L, %L)', r.peer_id, i.public_key))
FROM rita r, interface i WHERE i.name = 'wgl';
SELECT pg_temp.try(format('SELECT wg_rotate_peer_key(%L, %L)', peer_id,
                          'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='))
FROM rita;
SELECT pg_temp.try(format('SELECT wg_rotate_peer_key(%L, %L)', peer_id, 'not a key'))
FROM rita;
SELECT status FROM wg_revoke_peer((SELECT peer_id FROM rita));
SELECT pg_temp.try(format('SELECT wg_rotate_peer_key(%L)', peer_id)) FROM rita;
-- a suspended peer rotates without reaching the interface
SELECT status FROM wg_suspend_peer((SELECT peer_id FROM sam));
DELETE FROM queue;
SELECT wg_rotate_peer_key((SELECT peer_id FROM sam)) IS NOT NULL AS rotated;
SELECT count(*) AS changes FROM queue;
SELECT status FROM wg_resume_peer((SELECT peer_id FROM sam));
SELECT * FROM pg_temp.changes('sam');

-- Bad arguments.
SELECT pg_temp.try('SELECT wg_suspend_peer(NULL)');
SELECT pg_temp.try(format('SELECT wg_suspend_peer(%L, %L)', peer_id, E'late\nPostUp = x'))
FROM sam;
SELECT pg_temp.try(format('SELECT wg_suspend_peer(%L, %L)', peer_id, repeat('x', 201)))
FROM sam;
SELECT pg_temp.try('SELECT wg_resume_peer(''00000000-0000-0000-0000-000000000000'')');
SELECT pg_temp.try('SELECT wg_rotate_peer_key(''00000000-0000-0000-0000-000000000000'')');

-- The device limit: per interface, then across interfaces.
SELECT name FROM wg_add_interface('wglim', '198.51.100.10:51820', '10.212.0.1/24');
UPDATE interface SET max_peers_per_user = 2 WHERE name = 'wglim';
SELECT count(*) FROM wg_create_peer('uma', interface => 'wglim');
SELECT count(*) FROM wg_create_peer('uma', interface => 'wglim');
SELECT pg_temp.try('SELECT wg_create_peer(''uma'', interface => ''wglim'')');
-- on another interface without a limit of its own she may create more
SELECT count(*) FROM wg_create_peer('uma', interface => 'wgl');
-- a suspended peer frees its place; resuming claims it again
SELECT status FROM wg_suspend_peer((SELECT peer_id FROM peer
                                    WHERE user_id = 'uma' AND interface = 'wglim'
                                    ORDER BY created_at LIMIT 1));
SELECT count(*) FROM wg_create_peer('uma', interface => 'wglim');
SELECT pg_temp.try(format('SELECT wg_resume_peer(%L)', peer_id))
FROM peer WHERE user_id = 'uma' AND status = 'suspended';
SELECT count(*) AS uma_live FROM peer
WHERE user_id = 'uma' AND interface = 'wglim' AND status IN ('creating', 'active');
-- the global limit counts every interface that sets none
SET wgpeer.max_peers_per_user = 2;
SELECT count(*) FROM wg_create_peer('vic', interface => 'wgl');
SELECT count(*) FROM wg_create_peer('vic', interface => 'wgl');
SELECT pg_temp.try('SELECT wg_create_peer(''vic'', interface => ''wgl'')');
RESET wgpeer.max_peers_per_user;
SELECT count(*) FROM wg_create_peer('vic', interface => 'wgl');
SELECT pg_temp.try('UPDATE wgpeer.interface SET max_peers_per_user = 0 WHERE name = ''wglim''');

-- Plans of any length: an interval or an explicit end instead of whole
-- months (which they replace when given).
SELECT expires_at - created_at AS length
FROM wg_create_peer('tia', duration => '14 days', interface => 'wgl');
SELECT expires_at - created_at AS length
FROM wg_create_peer('tia', duration => '1 hour', interface => 'wgl');
SELECT expires_at = date_trunc('day', now()) + interval '5 years' AS fixed_end
FROM wg_create_peer('tia', until => date_trunc('day', now()) + interval '5 years',
                    interface => 'wgl');
-- renewed by an interval, or to a fixed end
SELECT expires_at = date_trunc('day', now()) + interval '5 years 14 days' AS two_weeks_later
FROM wg_renew_peer((SELECT peer_id FROM peer WHERE user_id = 'tia'
                    AND expires_at = date_trunc('day', now()) + interval '5 years'),
                   duration => '14 days');
SELECT expires_at = date_trunc('day', now()) + interval '6 years' AS new_end
FROM wg_renew_peer((SELECT peer_id FROM peer WHERE user_id = 'tia'
                    AND expires_at = date_trunc('day', now()) + interval '5 years 14 days'),
                   until => date_trunc('day', now()) + interval '6 years');
-- A plan bought now and used later: the clock starts at the first
-- handshake the worker records (simulated here); later handshakes do not
-- move it; a renewal before it starts lengthens the plan.
SELECT expires_at IS NULL AS not_started
FROM wg_create_peer('ula', duration => '30 days', starts_on_handshake => true,
                    interface => 'wgl');
SELECT plan_pending FROM wg_renew_peer((SELECT peer_id FROM peer WHERE user_id = 'ula'),
                                       duration => '2 days');
INSERT INTO peer_traffic (peer_id, latest_handshake, sampled_at)
	SELECT peer_id, '2030-05-01 12:00+00', now() FROM peer WHERE user_id = 'ula';
SELECT expires_at = '2030-06-02 12:00+00' AS started, plan_pending
FROM peer WHERE user_id = 'ula';
UPDATE peer_traffic SET latest_handshake = '2030-05-03 12:00+00'
WHERE peer_id = (SELECT peer_id FROM peer WHERE user_id = 'ula');
SELECT expires_at = '2030-06-02 12:00+00' AS unchanged FROM peer WHERE user_id = 'ula';
-- with months, too
SELECT expires_at IS NULL AS not_started
FROM wg_create_peer('ula', 3, starts_on_handshake => true, interface => 'wgl');
SELECT plan_pending FROM peer WHERE user_id = 'ula' AND expires_at IS NULL;
-- what is refused
SELECT pg_temp.try('SELECT wg_create_peer(''x'', duration => ''1 day'', until => now() + interval ''1 day'', interface => ''wgl'')');
SELECT pg_temp.try('SELECT wg_create_peer(''x'', duration => ''-1 day'', interface => ''wgl'')');
SELECT pg_temp.try('SELECT wg_create_peer(''x'', duration => ''1 day -1 hour'', interface => ''wgl'')');
SELECT pg_temp.try('SELECT wg_create_peer(''x'', duration => ''11 years'', interface => ''wgl'')');
SELECT pg_temp.try('SELECT wg_create_peer(''x'', until => ''2001-01-01'', interface => ''wgl'')');
SELECT pg_temp.try('SELECT wg_create_peer(''x'', until => now() + interval ''1 day'', starts_on_handshake => true, interface => ''wgl'')');
SELECT pg_temp.try('SELECT wg_create_peer(''x'', NULL, starts_on_handshake => true, interface => ''wgl'')');
SELECT pg_temp.try(format('SELECT wg_renew_peer(%L)', peer_id)) FROM sam;
SELECT pg_temp.try(format('SELECT wg_renew_peer(%L, 1, duration => %L)', peer_id, '1 day')) FROM sam;
SELECT count(*) AS nothing_for_x FROM peer WHERE user_id = 'x';
-- A plan ends at most 10 years from now: an explicit end past that
-- ('infinity' too) is refused, and so is a renewal, or a series of them,
-- that would take the plan past it (times masked: they depend on today).
SET datestyle = 'ISO, MDY';
CREATE FUNCTION pg_temp.try_masked(stmt text) RETURNS text LANGUAGE sql AS $$
	SELECT regexp_replace(pg_temp.try(stmt), '\d{4}-\d\d-\d\d [0-9:.+-]+', '<time>', 'g')
$$;
SELECT pg_temp.try_masked('SELECT wg_create_peer(''x'', until => ''infinity'', interface => ''wgl'')');
SELECT pg_temp.try_masked('SELECT wg_create_peer(''x'', until => now() + interval ''10 years 2 days'', interface => ''wgl'')');
SELECT count(*) AS nothing_for_x FROM peer WHERE user_id = 'x';
SELECT expires_at = created_at + interval '9 years' AS nine_years
FROM wg_create_peer('vera', duration => '9 years', interface => 'wgl');
CREATE TEMP TABLE vera AS SELECT peer_id FROM peer WHERE user_id = 'vera';
SELECT pg_temp.try_masked(format('SELECT wg_renew_peer(%L, until => %L)', peer_id, 'infinity'))
FROM vera;
SELECT pg_temp.try_masked(format('SELECT wg_renew_peer(%L, duration => %L)', peer_id, '2 years'))
FROM vera;
SELECT pg_temp.try_masked(format('SELECT wg_renew_peer(%L, 120)', peer_id)) FROM vera;
SELECT pg_temp.try_masked(format('SELECT wg_renew_peer(%L, 12)', peer_id)) FROM vera;
SELECT pg_temp.try_masked(format('SELECT wg_renew_peer(%L, 1)', peer_id)) FROM vera;
SELECT p.expires_at = p.created_at + interval '10 years' AS ten_years
FROM peer p JOIN vera USING (peer_id);
-- a plan waiting for its first handshake grows by renewals to 10 years at most
SELECT expires_at IS NULL AS not_started
FROM wg_create_peer('vera', duration => '9 years', starts_on_handshake => true,
                    interface => 'wgl');
SELECT pg_temp.try_masked(format('SELECT wg_renew_peer(%L, duration => %L)', peer_id, '2 years'))
FROM peer WHERE user_id = 'vera' AND expires_at IS NULL;
SELECT count(*) FROM wg_renew_peer((SELECT peer_id FROM peer WHERE user_id = 'vera'
                                    AND expires_at IS NULL), 12);
SELECT plan_pending FROM peer WHERE user_id = 'vera' AND expires_at IS NULL;
RESET datestyle;
