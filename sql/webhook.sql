-- Webhooks: wg_add_webhook / wg_remove_webhook and webhook_status, their
-- refusals (each with its SQLSTATE and a message naming the bad value),
-- where a new endpoint's cursor starts, and who may do what.  Delivery
-- itself is test/webhook_test.sh's (a real HTTPS receiver).
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql
\i sql/include/try_hint.sql

-- A new endpoint starts after the last event id handed out: new events
-- only.
INSERT INTO event (kind, user_id) VALUES ('created', 'wh-a'), ('revoked', 'wh-a');
SELECT url, kinds, cursor = (SELECT max(event_id) FROM event) AS starts_at_last,
       batch_end, delivered, attempts, last_success_at, failing_since,
       next_attempt_at, last_error
FROM wg_add_webhook('https://hooks.example.com/wgpeer', 'a-secret-of-16+bytes');
-- or from the start of the log (0), or after a given event
SELECT url, kinds, cursor
FROM wg_add_webhook('http://127.0.0.1:8080/in?x=1', 'another-secret-0123',
                    kinds => ARRAY['revoked', 'created', 'revoked'],
                    start_after => 0);
SELECT cursor = (SELECT min(event_id) FROM event) AS after_first
FROM wg_add_webhook('HTTPS://[2001:db8::1]:8443/', 'third-secret-0123456',
                    start_after => (SELECT min(event_id) FROM event));

-- The status view shows everything but the secret.
SELECT attname FROM pg_attribute
WHERE attrelid = 'wgpeer.webhook_status'::regclass AND attnum > 0
ORDER BY attnum;

-- Refusals.
SELECT pg_temp.try_hint($$SELECT wgpeer.wg_add_webhook('ftp://example.com/x', 'a-secret-of-16+bytes')$$);
SELECT pg_temp.try_hint($$SELECT wgpeer.wg_add_webhook('file:///etc/passwd', 'a-secret-of-16+bytes')$$);
SELECT pg_temp.try_hint($$SELECT wgpeer.wg_add_webhook('example.com/hook', 'a-secret-of-16+bytes')$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_add_webhook('https://user:pw@example.com/', 'a-secret-of-16+bytes')$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_add_webhook('https:///nohost', 'a-secret-of-16+bytes')$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_add_webhook('https://example.com/a b', 'a-secret-of-16+bytes')$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_add_webhook('https://example.com/' || repeat('x', 2100), 'a-secret-of-16+bytes')$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_add_webhook(NULL, 'a-secret-of-16+bytes')$$);
SELECT pg_temp.try_hint($$SELECT wgpeer.wg_add_webhook('https://example.com/', NULL)$$);
SELECT pg_temp.try_hint($$SELECT wgpeer.wg_add_webhook('https://example.com/', 'short')$$);
SELECT pg_temp.try_hint($$SELECT wgpeer.wg_add_webhook('https://example.com/', 'a-secret-of-16+bytes', ARRAY[]::text[])$$);
SELECT pg_temp.try_hint($$SELECT wgpeer.wg_add_webhook('https://example.com/', 'a-secret-of-16+bytes', ARRAY['created', 'nosuch'])$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_add_webhook('https://example.com/', 'a-secret-of-16+bytes', ARRAY['created', NULL])$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_add_webhook('https://example.com/', 'a-secret-of-16+bytes', start_after => -1)$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_add_webhook('https://example.com/', 'a-secret-of-16+bytes', start_after => 1000000)$$) ~ '^22023: start_after 1000000 is not an event id' AS past_the_end;
-- none of them added anything: still the three above
SELECT count(*) AS webhooks FROM webhook_status;

-- Removing.
SELECT wg_remove_webhook(max(webhook_id)) FROM webhook_status;
SELECT pg_temp.try_hint($$SELECT wgpeer.wg_remove_webhook(999999)$$);
SELECT count(*) AS webhooks FROM webhook_status;

-- Who may: only an administrator adds or removes a webhook or reads its
-- secret.  Without grants a role may do nothing at all; even given
-- EXECUTE (a blanket GRANT EXECUTE ON ALL FUNCTIONS), it may not add,
-- remove or read.
CREATE ROLE wgpeer_webhook_app;
GRANT USAGE ON SCHEMA wgpeer TO wgpeer_webhook_app;
SET ROLE wgpeer_webhook_app;
SELECT pg_temp.try($$SELECT wgpeer.wg_add_webhook('https://evil.example/', 'a-secret-of-16+bytes')$$);
SELECT pg_temp.try($$SELECT secret FROM wgpeer.webhook$$);
SELECT pg_temp.try($$SELECT url FROM wgpeer.webhook_status$$);
RESET ROLE;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA wgpeer TO wgpeer_webhook_app;
SET ROLE wgpeer_webhook_app;
SELECT pg_temp.try_hint($$SELECT wgpeer.wg_add_webhook('https://evil.example/', 'a-secret-of-16+bytes')$$);
SELECT pg_temp.try($$SELECT wgpeer.wg_remove_webhook(1)$$);
SELECT pg_temp.try($$UPDATE wgpeer.webhook SET url = 'https://evil.example/'$$);
RESET ROLE;
SELECT count(*) AS webhooks FROM webhook_status;
DROP OWNED BY wgpeer_webhook_app;
DROP ROLE wgpeer_webhook_app;

-- pg_dump keeps the endpoints and their id sequence.
SELECT c.relname
FROM pg_extension x, unnest(x.extconfig) AS r(oid) JOIN pg_class c ON c.oid = r.oid
WHERE x.extname = 'wgpeer' AND c.relname LIKE 'webhook%'
ORDER BY 1;

-- Leave no endpoint behind for the suites after this one.
SELECT count(wg_remove_webhook(webhook_id)) AS removed FROM webhook_status;
