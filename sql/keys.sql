-- Keys: generation, derivation and strict base64 parsing.
CREATE EXTENSION wgpeer;
SET search_path = wgpeer, public;

-- RFC 7748 section 6.1: Alice's and Bob's X25519 key pairs.
SELECT wg_pubkey(encode('\x77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'::bytea, 'base64'))
     = encode('\x8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'::bytea, 'base64') AS alice;
SELECT wg_pubkey(encode('\x5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'::bytea, 'base64'))
     = encode('\xde9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f'::bytea, 'base64') AS bob;
-- the same, printed, so a regression in base64 shows the bytes
SELECT wg_pubkey('dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=');

-- Generated private keys are 32 bytes, clamped, and all different.
WITH k AS (SELECT decode(wg_genkey(), 'base64') AS b FROM generate_series(1, 200))
SELECT count(*) AS keys,
       count(DISTINCT b) AS distinct_keys,
       bool_and(length(b) = 32) AS all_32_bytes,
       bool_and(get_byte(b, 0) & 7 = 0) AS low_bits_clear,
       bool_and(get_byte(b, 31) & 128 = 0 AND get_byte(b, 31) & 64 = 64) AS high_bits_set
FROM k;
-- Every generated key has a public key, and printing round-trips.
WITH k AS (SELECT wg_genkey() AS priv FROM generate_series(1, 50))
SELECT bool_and(length(priv) = 44 AND priv LIKE '%=' AND
                length(wg_pubkey(priv)) = 44 AND
                encode(decode(priv, 'base64'), 'base64') = priv) AS well_formed
FROM k;
-- Preshared keys: 32 random bytes, no clamping, all different.
WITH k AS (SELECT decode(wg_genpsk(), 'base64') AS b FROM generate_series(1, 200))
SELECT count(DISTINCT b) = 200 AS distinct_psks,
       bool_and(length(b) = 32) AS all_32_bytes,
       bool_or(get_byte(b, 0) & 7 <> 0) AS some_unclamped
FROM k;

-- NULL in, NULL out.
SELECT wg_pubkey(NULL) IS NULL AS null_in_null_out;

-- Malformed keys: each says what is wrong, SQLSTATE 22023.
\set VERBOSITY default
SELECT wg_pubkey('');
SELECT wg_pubkey('dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo');
SELECT wg_pubkey('dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo==');
SELECT wg_pubkey('dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC!=');
SELECT wg_pubkey('dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCoA');
SELECT wg_pubkey('dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCp=');
SELECT wg_pubkey(encode('\x0102'::bytea, 'base64'));
\set VERBOSITY terse
DO $$
BEGIN
	PERFORM wgpeer.wg_pubkey('not a key');
EXCEPTION WHEN invalid_parameter_value THEN
	RAISE NOTICE 'SQLSTATE 22023 for a malformed key';
END
$$;
