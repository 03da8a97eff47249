/*
 * test_keys.c
 *		Unit tests of keys.c: RFC 7748 vectors, clamping, strict base64.
 */
#include <stdint.h>
#include <string.h>

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

int
main(void)
{
	CHECK(wg_keys_init() == 0);
	test_rfc7748();
	test_base64();
	test_generate();
	return UNIT_DONE("test_keys");
}
