-- AmneziaWG: interfaces with flavor 'amneziawg', their parameters and
-- every validation error, a client's own junk profile, the configs and
-- the event a change of S or H logs.
SET search_path = wgpeer, public;
\set VERBOSITY default

\i sql/include/try.sql

-- pg_temp.why(stmt): as pg_temp.try, with the error's detail (why the
-- value is refused: its allowed range or the parameter it conflicts with).
CREATE FUNCTION pg_temp.why(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	detail text;
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
	RETURN SQLSTATE || ': ' ||
		regexp_replace(SQLERRM, '[0-9a-f]{8}-[0-9a-f-]{27}', '<peer_id>', 'g') ||
		coalesce(E'\n    ' || nullif(detail, ''), '');
END
$$;

-- A random set is valid (registering it takes it) and draws every key.
SELECT array(SELECT jsonb_object_keys(wg_awg_params()) ORDER BY 1) AS keys;
SELECT count(DISTINCT wg_awg_params()) AS distinct_sets
FROM generate_series(1, 20);
SELECT bool_and((p ->> 'jc')::int BETWEEN 3 AND 10
				AND (p ->> 'jmin')::int <= (p ->> 'jmax')::int
				AND (p ->> 's1')::int + 56 <> (p ->> 's2')::int
				AND (p ->> 'h1')::bigint >= 5) AS sane
FROM (SELECT wg_awg_params() AS p FROM generate_series(1, 200)) s;

-- The set the thirdparty notes saw handshake, given as AmneziaVPN writes
-- it (strings, keys in any case), stored in wgpeer's normal form.
SELECT name, flavor, awg
FROM wg_add_interface('awg0', 'vpn.example.com:51821', '10.231.0.1/24',
                      listen_port => 51821,
                      private_key => 'dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=',
                      preshared_keys => false,
                      flavor => 'amneziawg',
                      awg => '{"Jc": "4", "Jmin": 40, "jmax": 70, "s1": 20,
                               "s2": 30, "h1": 123456, "h2": "234567",
                               "h3": "345678-345700", "h4": 456789,
                               "i1": "<b 0xc0ff><r 16>"}');

-- Flavor 'amneziawg' without awg draws a set; plain WireGuard has none.
SELECT flavor, awg IS NOT NULL AS has_awg,
       (SELECT count(*) FROM jsonb_object_keys(awg)) AS keys
FROM wg_add_interface('awg1', 'vpn.example.com:51822', '10.232.0.1/24',
                      listen_port => 51822, flavor => 'amneziawg');
SELECT flavor, awg FROM wg_add_interface('awg2', 'vpn.example.com:51823',
                                        '10.233.0.1/24', listen_port => 51823);

-- Each refusal, with its SQLSTATE, message and detail.
SELECT pg_temp.why(format(
	$$SELECT wg_add_interface('awgx', 'vpn.example.com:51824', '10.234.0.1/24',
	                          flavor => %L, awg => %L)$$, f, a)) AS refused
FROM (VALUES
	('wireguard', '{"jc": 4}'),
	('amnezia', NULL),
	('amneziawg', '[1, 2]'),
	('amneziawg', '{"jc": 4, "h5": 7}'),
	('amneziawg', '{"jc": null}'),
	('amneziawg', '{"jc": 4.5}'),
	('amneziawg', '{"jc": -1}'),
	('amneziawg', '{"jc": 129, "jmin": 40, "jmax": 70}'),
	('amneziawg', '{"jc": 4, "jmin": 80, "jmax": 70}'),
	('amneziawg', '{"jc": 4, "jmin": 40, "jmax": 1281}'),
	('amneziawg', '{"jc": 4, "jmin": 0, "jmax": 70}'),
	('amneziawg', '{"s1": 1133}'),
	('amneziawg', '{"s2": 1189}'),
	('amneziawg', '{"s3": 1217}'),
	('amneziawg', '{"s4": 1249}'),
	('amneziawg', '{"s1": 20, "s2": 76}'),
	('amneziawg', '{"h1": 5, "h2": 6, "h3": 7}'),
	('amneziawg', '{"h2": 6, "h3": 7}'),
	('amneziawg', '{"h1": "5-10", "h2": 10, "h3": 20, "h4": 30}'),
	('amneziawg', '{"h1": 5, "h2": 11, "h3": "1-20", "h4": 30}'),
	('amneziawg', '{"h1": "10-5", "h2": 11, "h3": 20, "h4": 30}'),
	('amneziawg', '{"h1": "0-5", "h2": 11, "h3": 20, "h4": 30}'),
	('amneziawg', '{"h1": 4294967296, "h2": 11, "h3": 20, "h4": 30}'),
	('amneziawg', '{"h1": "5 - 6", "h2": 11, "h3": 20, "h4": 30}'),
	('amneziawg', '{"i1": "<b 0xabc>"}'),
	('amneziawg', '{"i2": "junk<r 4>"}'),
	('amneziawg', '{"i3": "<r 70000>"}'),
	('amneziawg', '{"i4": "<x>"}'),
	('amneziawg', '{"i5": "<c 1>"}')) v(f, a);
-- The hint of a refused set.
SELECT wg_awg_params() FROM wg_add_interface('awgx', 'vpn.example.com:51824',
	'10.234.0.1/24', flavor => 'amneziawg',
	awg => '{"jc": 4, "jmin": 80, "jmax": 70}');
SELECT count(*) AS no_interface_added FROM interface WHERE name = 'awgx';

-- A client's config carries the AWG lines in the clients' order.
CREATE TEMP TABLE p AS
SELECT peer_id, config FROM wg_create_peer('awg-user', interface => 'awg0');
SELECT regexp_replace(config, 'PrivateKey = \S+', 'PrivateKey = <key>') AS config
FROM p;

-- A client's own junk profile: J together, I replaced or hidden ("").
SELECT wg_set_peer_awg(peer_id, '{"jc": 2, "jmin": 10, "jmax": 20,
                                  "i1": "", "i2": "<t><rd 8>"}') FROM p;
SELECT awg FROM peer WHERE peer_id = (SELECT peer_id FROM p);
SELECT line FROM p, regexp_split_to_table(wg_peer_config(peer_id), '\n') line
WHERE line ~ '^(J|S|H|I)';
SELECT pg_temp.why(format($$SELECT wg_set_peer_awg(%L, %L)$$, peer_id, a))
	AS refused
FROM p, (VALUES
	('{"jc": 2}'),
	('{"jc": 2, "jmin": 30, "jmax": 20}'),
	('{"s1": 20}'),
	('{"h1": 99}'),
	('{"i1": "<r>"}'),
	('{"q": 1}')) v(a);
-- NULL takes the profile away.
SELECT wg_set_peer_awg(peer_id, NULL) = (SELECT awg FROM interface
										 WHERE name = 'awg0') AS back_to_interface
FROM p;
SELECT awg IS NULL AS no_profile FROM peer WHERE peer_id = (SELECT peer_id FROM p);

-- A WireGuard interface's peers have no profile, nor AWG lines.
CREATE TEMP TABLE q AS
SELECT peer_id, config FROM wg_create_peer('wg-user', interface => 'awg2');
SELECT pg_temp.why(format($$SELECT wg_set_peer_awg(%L, '{}')$$, peer_id))
	AS refused FROM q;
SELECT config ~ '(?n)^(Jc|H1) = ' AS has_awg_lines FROM q;

-- Changing J or I only: no warning, no event.
SELECT max(event_id) AS before FROM event \gset
SELECT awg ->> 'jc' AS jc FROM wg_set_interface_awg('awg0',
	(SELECT awg || '{"jc": 6}' FROM interface WHERE name = 'awg0'));
SELECT count(*) AS events FROM event
WHERE event_id > coalesce(:'before'::bigint, 0)
  AND kind = 'interface_params_changed';

-- Changing S or H: a WARNING and one event naming what changed.
SELECT awg ->> 's1' AS s1, awg ->> 'h2' AS h2 FROM wg_set_interface_awg('awg0',
	(SELECT awg || '{"s1": 21, "h2": "234567-234600"}' FROM interface
	 WHERE name = 'awg0'));
SELECT kind, interface, detail -> 'changed' AS changed,
       detail -> 'awg' ->> 's1' AS s1
FROM event WHERE event_id > coalesce(:'before'::bigint, 0)
  AND kind = 'interface_params_changed';
-- New configs follow.
SELECT line FROM p, regexp_split_to_table(wg_peer_config(peer_id), '\n') line
WHERE line ~ '^(S1|H2)';

SELECT pg_temp.why(stmt) AS refused FROM (VALUES
	($$SELECT wg_set_interface_awg('awg2', wg_awg_params())$$),
	($$SELECT wg_set_interface_awg('nosuch', wg_awg_params())$$),
	($$SELECT wg_set_interface_awg('awg0', NULL)$$),
	($$SELECT wg_set_interface_awg('awg0', '{"h1": 1, "h2": 1, "h3": 2, "h4": 3}')$$))
	v(stmt);

-- AmneziaVPN's vpn:// link: URL-safe base64 of qCompress(JSON), i.e. the
-- JSON's length (4 bytes, big-endian), then a zlib stream (0x78 ...).
-- test/awg_test.sh inflates it and compares every field.
CREATE TEMP TABLE u AS
SELECT wg_peer_amnezia_uri(peer_id) AS uri FROM p;
SELECT left(uri, 6) AS prefix, substr(uri, 7) ~ '^[A-Za-z0-9_-]+$' AS urlsafe,
       length(uri) < 2000 AS short
FROM u;
SELECT (get_byte(b, 0) << 24 | get_byte(b, 1) << 16 | get_byte(b, 2) << 8 |
        get_byte(b, 3)) BETWEEN 1000 AND 4000 AS json_length,
       get_byte(b, 4) = 120 AS zlib_header
FROM (SELECT decode(rpad(t, (length(t) + 3) / 4 * 4, '='), 'base64') AS b
      FROM (SELECT translate(substr(uri, 7), '-_', '+/') AS t FROM u) s) d;
SELECT pg_temp.why(format($$SELECT wg_peer_amnezia_uri(%L)$$, peer_id))
	AS refused FROM q
UNION ALL
SELECT pg_temp.why($$SELECT wg_peer_amnezia_uri('00000000-0000-0000-0000-000000000000')$$)
UNION ALL
SELECT pg_temp.why(format($$SELECT wg_peer_amnezia_uri(%L)$$, peer_id))
FROM wg_create_peer('own-key', interface => 'awg0',
                    public_key => wg_pubkey(wg_genkey()));

SELECT wg_remove_interface(name, force => true)
FROM interface WHERE name IN ('awg0', 'awg1', 'awg2') ORDER BY name;
