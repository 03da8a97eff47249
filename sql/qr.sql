-- QR codes of client configs: PNG, SVG and terminal text, and their errors.
SET search_path = wgpeer, public;
\set VERBOSITY default

-- Reads a PNG's signature, its IHDR (width x height, bit depth, colour
-- type) and whether it ends with the IEND chunk.
CREATE FUNCTION pg_temp.png_header(p bytea) RETURNS text LANGUAGE sql AS $$
	SELECT format('signature %s, %sx%s, depth %s, colour type %s, iend %s',
		substring(p FROM 1 FOR 8) = '\x89504e470d0a1a0a'::bytea,
		(get_byte(p, 16) << 24) | (get_byte(p, 17) << 16) |
			(get_byte(p, 18) << 8) | get_byte(p, 19),
		(get_byte(p, 20) << 24) | (get_byte(p, 21) << 16) |
			(get_byte(p, 22) << 8) | get_byte(p, 23),
		get_byte(p, 24), get_byte(p, 25),
		substring(p FROM octet_length(p) - 11) =
			'\x0000000049454e44ae426082'::bytea)
$$;

-- A typical config (PSK, IPv6, DNS, keepalive: 360 bytes), a short one,
-- the most a QR code holds (2953 bytes) and one byte more.
CREATE TEMP TABLE cfg (name text PRIMARY KEY, config text NOT NULL);
INSERT INTO cfg VALUES
	('typical', E'[Interface]\n'
		'PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n'
		'Address = 10.10.0.2/32, fd00:10:10::2/128\n'
		'DNS = 1.1.1.1, 2606:4700:4700::1111\n'
		'\n'
		'[Peer]\n'
		'PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\n'
		'PresharedKey = FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=\n'
		'Endpoint = vpn.example.com:51820\n'
		'AllowedIPs = 0.0.0.0/0, ::/0\n'
		'PersistentKeepalive = 25\n'),
	('hello', 'hello'),
	('limit', repeat('a', 2953)),
	('too_long', repeat('a', 2954));

-- PNG: the side is (modules + 2 * margin) * scale.  hello is version 1
-- (21 modules), typical version 14 (73), limit version 40 (177).
SELECT name, octet_length(config) AS bytes, pg_temp.png_header(wg_qr_png(config))
FROM cfg WHERE name <> 'too_long' ORDER BY octet_length(config);
SELECT scale, margin, pg_temp.png_header(wg_qr_png(config, scale, margin))
FROM cfg, (VALUES (1, 0), (3, 2), (4, 4), (64, 64), (1, 64), (64, 0)) AS p(scale, margin)
WHERE name = 'typical' ORDER BY scale, margin;
-- defaults are scale 4, margin 4; the same input gives the same bytes
SELECT wg_qr_png(config) = wg_qr_png(config, 4, 4) AS defaults,
       wg_qr_png(config, 3, 2) <> wg_qr_png(config, 3, 1) AS margin_matters
FROM cfg WHERE name = 'typical';

-- SVG: header with the pixel size and the module viewBox, one path of
-- runs.  hello has 216 dark modules in 112 runs (as qrencode -t ASCII
-- draws the same symbol).
SELECT substring(wg_qr_svg(config, 3, 2) FROM '^<svg[^>]*>') AS header
FROM cfg WHERE name = 'hello';
SELECT substring(svg FROM '<rect.*?v1h-7z') AS first_run, right(svg, 30) AS ending,
       regexp_count(svg, 'z') AS runs,
       (SELECT sum(m[1]::int) FROM regexp_matches(svg, 'h(\d+)v1', 'g') AS m) AS dark_modules,
       regexp_count(svg, '<path') AS paths
FROM (SELECT wg_qr_svg(config, 1, 0) AS svg FROM cfg WHERE name = 'hello') AS s;
SELECT substring(wg_qr_svg(config) FROM '^<svg[^>]*>') AS header,
       octet_length(wg_qr_svg(config)) < 20000 AS compact
FROM cfg WHERE name = 'typical';

-- Terminal text: two module rows per line in half blocks, a quiet zone
-- of 4, light modules drawn.  hello: 29 rows, so 15 lines of 29 cells;
-- the same as qrencode -t UTF8 but for the last line, whose lower half
-- (past the quiet zone) is left blank.
\pset format unaligned
\pset tuples_only on
SELECT wg_qr_text(config) FROM cfg WHERE name = 'hello';
\pset format aligned
\pset tuples_only off
-- typical: 81 rows, 41 lines of 81 cells; the first two rows and the
-- last are quiet zone
WITH l AS (
	SELECT n, line
	FROM cfg, regexp_split_to_table(wg_qr_text(config), E'\n')
		WITH ORDINALITY AS t(line, n)
	WHERE name = 'typical')
SELECT count(*) AS lines,
       min(regexp_count(line, '█|▀|▄| ')) AS min_cells,
       max(regexp_count(line, '█|▀|▄| ')) AS max_cells,
       bool_and(line ~ '^(█|▀|▄| )*$') AS only_half_blocks,
       bool_and(line <> '' AND right(line, 1) <> ' ') AS no_trailing_blank,
       min(line) FILTER (WHERE n = 1) = repeat('█', 81) AS top_quiet,
       min(line) FILTER (WHERE n = 41) = repeat('▀', 81) AS bottom_quiet
FROM l;

-- NULL in, NULL out.
SELECT wg_qr_png(NULL) IS NULL AS png, wg_qr_svg(NULL) IS NULL AS svg,
       wg_qr_text(NULL) IS NULL AS text, wg_qr_png('x', NULL) IS NULL AS scale;

-- Errors.
SELECT wg_qr_png('');
SELECT wg_qr_text('');
SELECT wg_qr_png(config) FROM cfg WHERE name = 'too_long';
SELECT wg_qr_svg(config) FROM cfg WHERE name = 'too_long';
SELECT wg_qr_text(config) FROM cfg WHERE name = 'too_long';
-- the limit counts bytes, not characters: 1477 two-byte characters
SELECT wg_qr_png(repeat('é', 1477));
SELECT wg_qr_png('x', 0);
SELECT wg_qr_png('x', 65);
SELECT wg_qr_png('x', 4, -1);
SELECT wg_qr_png('x', 4, 65);
SELECT wg_qr_svg('x', -3);
SELECT wg_qr_svg('x', 4, 1000);

-- A stored peer: each form is the same as rendering its config.
SELECT name FROM wg_add_interface('wgqr', 'vpn.example.com:51820', '10.140.0.1/24',
                                  address6 => 'fd00:140::1/64',
                                  dns => '1.1.1.1, 2606:4700:4700::1111',
                                  persistent_keepalive => 25);
CREATE TEMP TABLE qr_peer AS
	SELECT peer_id FROM wg_create_peer('qr-user', interface => 'wgqr');
SELECT octet_length(wg_peer_config(peer_id)) AS config_bytes,
       wg_peer_config(peer_id) ~ 'PresharedKey = ' AS has_psk,
       pg_temp.png_header(wg_peer_qr_png(peer_id)),
       wg_peer_qr_png(peer_id) = wg_qr_png(wg_peer_config(peer_id)) AS png_same,
       wg_peer_qr_svg(peer_id) = wg_qr_svg(wg_peer_config(peer_id)) AS svg_same,
       wg_peer_qr_text(peer_id) = wg_qr_text(wg_peer_config(peer_id)) AS text_same
FROM qr_peer;
SELECT wg_peer_qr_png(NULL) IS NULL AS null_peer;
SELECT wg_peer_qr_png('00000000-0000-0000-0000-000000000000');

-- An application role granted only the peer forms gets the code without
-- reading the peer table or holding EXECUTE on the renderers.
CREATE ROLE wgpeer_qr_app;
GRANT USAGE ON SCHEMA wgpeer TO wgpeer_qr_app;
GRANT EXECUTE ON FUNCTION wg_peer_qr_png(uuid), wg_peer_qr_svg(uuid),
	wg_peer_qr_text(uuid) TO wgpeer_qr_app;
GRANT SELECT ON qr_peer TO wgpeer_qr_app;
SET ROLE wgpeer_qr_app;
SELECT pg_temp.png_header(wgpeer.wg_peer_qr_png(peer_id)),
       length(wgpeer.wg_peer_qr_svg(peer_id)) > 0 AS svg,
       length(wgpeer.wg_peer_qr_text(peer_id)) > 0 AS text
FROM qr_peer;
SELECT count(*) FROM wgpeer.peer;
SELECT wgpeer.wg_qr_png('x');
RESET ROLE;
DROP OWNED BY wgpeer_qr_app;
DROP ROLE wgpeer_qr_app;
