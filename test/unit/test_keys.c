/*
 * test_keys.c
 *		Unit tests of keys.c: RFC 7748 vectors, clamping, strict base64,
 *		and the public and private keys no handshake can use.
 */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "core/keys.h"
#include "unit.h"

/* Decode a 64-character hex string into 32 bytes. */
static void
from_hex(uint8_t out[WG_KEY_LEN], const char *hex)
{
	for (int i = 0; i < WG_KEY_LEN; i++)
	{
		unsigned int v;

		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t) v;
	}
}

/* RFC 7748 6.1: both key pairs derive the published public keys. */
static void
test_rfc7748(void)
{
	static const char *vectors[][2] = {
		{"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"},
		{"5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
		"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"},
	};

	for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++)
	{
		uint8_t		priv[WG_KEY_LEN];
		uint8_t		want[WG_KEY_LEN];
		uint8_t		pub[WG_KEY_LEN];

		from_hex(priv, vectors[v][0]);
		from_hex(want, vectors[v][1]);
		CHECK(wg_key_public(pub, priv) == 0);
		CHECK(memcmp(pub, want, WG_KEY_LEN) == 0);
	}
}

/* Base64 both ways, against a known encoding and a round trip. */
static void
test_base64(void)
{
	uint8_t		key[WG_KEY_LEN];
	uint8_t		back[WG_KEY_LEN];
	char		text[WG_KEY_B64_SIZE];
	size_t		pos = 0;

	from_hex(key, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	wg_key_to_base64(text, key);
	CHECK_STR(text, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=");
	CHECK(wg_key_from_base64(back, text, NULL) == WG_KEY_OK);
	CHECK(memcmp(key, back, WG_KEY_LEN) == 0);

	/* every byte value survives a round trip */
	for (int b = 0; b < 256; b++)
	{
		memset(key, b, sizeof(key));
		key[0] = (uint8_t) (255 - b);
		wg_key_to_base64(text, key);
		CHECK(strlen(text) == 44 && text[43] == '=');
		CHECK(wg_key_from_base64(back, text, NULL) == WG_KEY_OK &&
			  memcmp(key, back, WG_KEY_LEN) == 0);
	}

	CHECK(wg_key_from_base64(back, "", NULL) == WG_KEY_BAD_LENGTH);
	CHECK(wg_key_from_base64(back, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo",
							 NULL) == WG_KEY_BAD_LENGTH);
	CHECK(wg_key_from_base64(back, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCoA",
							 NULL) == WG_KEY_BAD_PADDING);
	CHECK(wg_key_from_base64(back, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCp=",
							 NULL) == WG_KEY_NOT_CANONICAL);
	CHECK(wg_key_from_base64(back, "dwdtCnMYpX08FsFy-bJmRd9ML4frwJkqsXf7pR25LCo=",
							 &pos) == WG_KEY_BAD_CHARACTER);
	CHECK(pos == 16);
	CHECK(wg_key_from_base64(back, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo!",
							 &pos) == WG_KEY_BAD_CHARACTER);
	CHECK(pos == 43);
	CHECK(strlen(wg_key_status_message(WG_KEY_NOT_CANONICAL)) > 0);
}

/* Generated private keys are clamped; generated keys differ. */
static void
test_generate(void)
{
	uint8_t		a[WG_KEY_LEN];
	uint8_t		b[WG_KEY_LEN];
	int			clamped = 1;

	for (int i = 0; i < 1000; i++)
	{
		wg_key_generate_private(a);
		if ((a[0] & 7) != 0 || (a[31] & 128) != 0 || (a[31] & 64) == 0)
			clamped = 0;
	}
	CHECK(clamped);
	wg_key_generate_private(b);
	CHECK(memcmp(a, b, WG_KEY_LEN) != 0);
	wg_key_generate_preshared(a);
	wg_key_generate_preshared(b);
	CHECK(memcmp(a, b, WG_KEY_LEN) != 0);
	wg_key_wipe(a, sizeof(a));
	CHECK(a[0] == 0 && a[31] == 0);
}

/*
 * The u-coordinates of the points of small order (1, 2, 4 or 8) on
 * Curve25519 and its twist, little-endian: 0, 1, the two order-8 points,
 * p - 1, and the non-canonical p and p + 1 (p = 2^255 - 19).  Written out
 * here independently of keys.c's table; libsodium refuses each of them in
 * crypto_scalarmult_curve25519, which the test also checks.
 */
static const char *const low_order_hex[] = {
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
};

/* Public keys: low-order and non-canonical ones refused, real ones not. */
static void
test_check_public(void)
{
	uint8_t		key[WG_KEY_LEN];
	uint8_t		priv[WG_KEY_LEN];
	uint8_t		shared[WG_KEY_LEN];
	int			all_ok = 1;

	for (size_t i = 0; i < sizeof(low_order_hex) / sizeof(low_order_hex[0]); i++)
	{
		from_hex(key, low_order_hex[i]);
		CHECK(wg_key_check_public(key) == WG_KEY_LOW_ORDER);
		/* libsodium agrees that no shared secret comes of it */
		wg_key_generate_private(priv);
		CHECK(crypto_scalarmult_curve25519(shared, priv, key) != 0);
		/* WireGuard ignores bit 255, so with it set it is the same point */
		key[31] |= 0x80;
		CHECK(wg_key_check_public(key) == WG_KEY_LOW_ORDER);
	}

	/* not reduced modulo p: p + 2 (the first after p + 1) up to 2^255 - 1 */
	from_hex(key, "efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
	CHECK(wg_key_check_public(key) == WG_KEY_NOT_REDUCED);
	from_hex(key, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
	CHECK(wg_key_check_public(key) == WG_KEY_NOT_REDUCED);
	/* p - 2 is the largest canonical value, and not of small order */
	from_hex(key, "ebffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
	CHECK(wg_key_check_public(key) == WG_KEY_OK);
	/* 2 is canonical and not of small order (close to the table's 0 and 1) */
	from_hex(key, "0200000000000000000000000000000000000000000000000000000000000000");
	CHECK(wg_key_check_public(key) == WG_KEY_OK);
	/* p + 1 with byte 30 lowered: canonical, and not of small order */
	from_hex(key, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f7f");
	CHECK(wg_key_check_public(key) == WG_KEY_OK);

	/* RFC 7748 6.1's public keys, and each with bit 255 set */
	from_hex(key, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	CHECK(wg_key_check_public(key) == WG_KEY_OK);
	key[31] |= 0x80;
	CHECK(wg_key_check_public(key) == WG_KEY_HIGH_BIT);
	from_hex(key, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	CHECK(wg_key_check_public(key) == WG_KEY_OK);
	key[31] |= 0x80;
	CHECK(wg_key_check_public(key) == WG_KEY_HIGH_BIT);

	/* every public key X25519 derives is accepted */
	for (int i = 0; i < 2000; i++)
	{
		wg_key_generate_private(priv);
		if (wg_key_public(key, priv) != 0 || wg_key_check_public(key) != WG_KEY_OK)
			all_ok = 0;
	}
	CHECK(all_ok);
	wg_key_wipe(priv, sizeof(priv));

	CHECK(strstr(wg_key_status_message(WG_KEY_LOW_ORDER), "small order") != NULL);
	CHECK(strstr(wg_key_status_message(WG_KEY_HIGH_BIT), "bit 255") != NULL);
	CHECK(strstr(wg_key_status_message(WG_KEY_NOT_REDUCED), "2^255 - 19") != NULL);
}

/* Private keys: only all zero is refused; clamping makes the rest usable. */
static void
test_check_private(void)
{
	uint8_t		key[WG_KEY_LEN];

	memset(key, 0, sizeof(key));
	CHECK(wg_key_check_private(key) == WG_KEY_ZERO_PRIVATE);
	CHECK(strstr(wg_key_status_message(WG_KEY_ZERO_PRIVATE), "all zero") != NULL);
	/* zero once clamped, but not zero as given: WireGuard takes it */
	key[0] = 7;
	CHECK(wg_key_check_private(key) == WG_KEY_OK);
	memset(key, 0, sizeof(key));
	key[31] = 0x80;
	CHECK(wg_key_check_private(key) == WG_KEY_OK);
	from_hex(key, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
	CHECK(wg_key_check_private(key) == WG_KEY_OK);
	wg_key_generate_private(key);
	CHECK(wg_key_check_private(key) == WG_KEY_OK);
}

int
main(void)
{
	CHECK(wg_keys_init() == 0);
	test_rfc7748();
	test_base64();
	test_generate();
	test_check_public();
	test_check_private();
	return UNIT_DONE("test_keys");
}
