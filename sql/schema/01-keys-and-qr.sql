------------------------------------------------------------------------------
-- Keys and QR codes
--
-- Pure functions of their arguments, in C (src/core/keys.c, src/core/qr.c,
-- called through src/sql/); no table.  The QR codes of a stored peer's
-- config (wg_peer_qr_png and the others) are with the peers, in 03-peers.sql.
------------------------------------------------------------------------------

CREATE FUNCTION wg_genkey() RETURNS text
	AS 'MODULE_PATHNAME', 'wg_genkey' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wg_genkey() IS
	'A new clamped X25519 private key in base64, like `wg genkey`';

CREATE FUNCTION wg_pubkey(private_key text) RETURNS text
	AS 'MODULE_PATHNAME', 'wg_pubkey' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wg_pubkey(text) IS
	'The public key of a private key, like `wg pubkey`';

CREATE FUNCTION wg_genpsk() RETURNS text
	AS 'MODULE_PATHNAME', 'wg_genpsk' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wg_genpsk() IS
	'A new random preshared key in base64, like `wg genpsk`';

CREATE FUNCTION wg_qr_png(config text, scale integer DEFAULT 4,
						  margin integer DEFAULT 4) RETURNS bytea
	AS 'MODULE_PATHNAME', 'wg_qr_png' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wg_qr_png(text, integer, integer) IS
	'The QR code of a config as a 1-bit grayscale PNG: scale 1..64 pixels per module, margin 0..64 modules of quiet zone (4 is standard); at most 2953 bytes of config';

CREATE FUNCTION wg_qr_svg(config text, scale integer DEFAULT 4,
						  margin integer DEFAULT 4) RETURNS text
	AS 'MODULE_PATHNAME', 'wg_qr_svg' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wg_qr_svg(text, integer, integer) IS
	'The QR code of a config as SVG: scale 1..64 pixels per module, margin 0..64 modules of quiet zone (4 is standard); at most 2953 bytes of config';

CREATE FUNCTION wg_qr_text(config text) RETURNS text
	AS 'MODULE_PATHNAME', 'wg_qr_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION wg_qr_text(text) IS
	'The QR code of a config in UTF-8 half blocks with a 4-module quiet zone, for a light-on-dark terminal (psql: \pset format unaligned); needs a UTF8 database';
