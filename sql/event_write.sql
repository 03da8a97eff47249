-- How a peer's event reaches wgpeer.event: written directly (no INSERT
-- statement) while the table has nothing but its row and indexes, with
-- what an INSERT would have checked (privilege, kind, unique id); by an
-- INSERT when the table has a trigger of the user's, which then fires.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS wgpeer;
RESET client_min_messages;
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql
SELECT name FROM wg_add_interface('wgevw', '198.51.100.9:51829', '10.219.0.1/24',
                                  listen_port => 51829);

-- The row: what the INSERT wrote, id from the sequence, time of the write.
SELECT pg_catalog.nextval('event_id_seq') AS before \gset
SELECT now() AS t0 \gset
SELECT count(*) FROM wg_create_peer('evw-ann', interface => 'wgevw');
SELECT e.event_id > :before AS later_id,
       e.event_id < pg_catalog.nextval('event_id_seq') AS below_next,
       e.at >= :'t0' AND e.at <= clock_timestamp() AS at_now,
       e.kind, e.peer_id = p.peer_id AS peer, e.user_id, e.interface,
       e.detail->>'address' = host(p.address) AS address,
       (e.detail->>'expires_at')::timestamptz = p.expires_at AS expiry,
       e.detail - 'address' - 'expires_at' AS rest
FROM event e JOIN peer p USING (peer_id) WHERE p.user_id = 'evw-ann';
-- its index entries: found through each index
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) AS by_peer FROM event
WHERE peer_id = (SELECT peer_id FROM peer WHERE user_id = 'evw-ann');
SELECT count(*) AS by_id FROM event
WHERE event_id = (SELECT max(event_id) FROM event);
RESET enable_seqscan;
RESET enable_bitmapscan;
-- ids in the order of the transitions
SELECT status FROM wg_suspend_peer((SELECT peer_id FROM peer WHERE user_id = 'evw-ann'), 'test');
SELECT status FROM wg_revoke_peer((SELECT peer_id FROM peer WHERE user_id = 'evw-ann'));
SELECT string_agg(kind, ' ' ORDER BY event_id) AS kinds FROM event WHERE user_id = 'evw-ann';

-- The primary key holds: an id taken twice is refused.
SELECT pg_catalog.setval('event_id_seq', (SELECT max(event_id) FROM event) - 1) > 0 AS set_back;
SELECT pg_temp.try($$SELECT count(*) FROM wgpeer.wg_create_peer('evw-dup', interface => 'wgevw')$$);
SELECT pg_catalog.setval('event_id_seq', (SELECT max(event_id) FROM event)) > 0 AS set_again;
SELECT count(*) AS dup_peers FROM peer WHERE user_id = 'evw-dup';

-- The kind is checked against the domain event_kind.
ALTER DOMAIN event_kind ADD CONSTRAINT evw_no_created CHECK (VALUE <> 'created') NOT VALID;
SELECT pg_temp.try($$SELECT count(*) FROM wgpeer.wg_create_peer('evw-kind', interface => 'wgevw')$$);
ALTER DOMAIN event_kind DROP CONSTRAINT evw_no_created;

-- A CHECK constraint of the user's on the table is checked.
SELECT count(*) FROM wg_create_peer('evw-cy', interface => 'wgevw');
ALTER TABLE event ADD CONSTRAINT evw_no_suspended CHECK (kind <> 'suspended') NOT VALID;
SELECT pg_temp.try($$SELECT status FROM wgpeer.wg_suspend_peer((SELECT peer_id FROM wgpeer.peer WHERE user_id = 'evw-cy'), 'test')$$);
ALTER TABLE event DROP CONSTRAINT evw_no_suspended;

-- A role that changes peers without the privilege to insert events is
-- refused, as the INSERT refused it.
CREATE ROLE wgpeer_evw_editor;
GRANT USAGE ON SCHEMA wgpeer TO wgpeer_evw_editor;
GRANT SELECT, UPDATE ON peer TO wgpeer_evw_editor;
SELECT count(*) FROM wg_create_peer('evw-bob', interface => 'wgevw');
SET ROLE wgpeer_evw_editor;
SELECT pg_temp.try($$UPDATE wgpeer.peer SET expires_at = now() + interval '1 day' WHERE user_id = 'evw-bob'$$);
RESET ROLE;
REVOKE ALL ON peer FROM wgpeer_evw_editor;
REVOKE ALL ON SCHEMA wgpeer FROM wgpeer_evw_editor;
DROP ROLE wgpeer_evw_editor;

-- A trigger of the user's on the event table fires for the peer's events.
CREATE TABLE public.evw_forwarded (event_id bigint, kind text);
CREATE FUNCTION public.evw_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.evw_forwarded VALUES (NEW.event_id, NEW.kind);
	RETURN NEW;
END
$$;
CREATE TRIGGER evw_forward AFTER INSERT ON event
	FOR EACH ROW EXECUTE FUNCTION public.evw_forward();
SELECT count(*) FROM wg_create_peer('evw-cat', interface => 'wgevw');
SELECT f.kind, f.event_id = e.event_id AS same_id
FROM public.evw_forwarded f JOIN event e USING (event_id) WHERE e.user_id = 'evw-cat';
DROP TRIGGER evw_forward ON event;
-- and once it is gone, events are written directly again
SELECT count(*) FROM wg_create_peer('evw-dan', interface => 'wgevw');
SELECT count(*) AS forwarded FROM public.evw_forwarded;
SELECT count(*) AS dan_events FROM event WHERE user_id = 'evw-dan';
DROP TABLE public.evw_forwarded;
DROP FUNCTION public.evw_forward();
