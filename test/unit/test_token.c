/*
 * test_token.c
 *		Unit tests of token.c: the URL-safe text form (one spelling per
 *		token, everything else refused), SHA-256 of the token's bytes, and
 *		fresh tokens from the CSPRNG.
 */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "core/token.h"
#include "unit.h"

/* Bytes 0xfb 0xff 0xbf ... give both URL-safe characters '-' and '_'. */
static void
test_encode_known(void)
{
	uint8_t		token[WG_TOKEN_LEN];
	uint8_t		back[WG_TOKEN_LEN];
	char		text[WG_TOKEN_TEXT_SIZE];

	memset(token, 0, sizeof(token));
	wg_token_encode(text, token);
	CHECK_STR(text, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	for (int i = 0; i < WG_TOKEN_LEN; i++)
		token[i] = (uint8_t) i;
	wg_token_encode(text, token);
	CHECK_STR(text, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
	memset(token, 0xff, sizeof(token));
	token[0] = 0xfb;
	token[1] = 0xef;
	wg_token_encode(text, token);
	CHECK(strlen(text) == WG_TOKEN_TEXT_LEN);
	CHECK(strchr(text, '-') != NULL && strchr(text, '_') != NULL);
	CHECK(strpbrk(text, "+/=") == NULL);
	CHECK(wg_token_decode(back, text, strlen(text)) == 0);
	CHECK(memcmp(back, token, WG_TOKEN_LEN) == 0);
}

/* Anything but the one spelling of some token is refused, and zeroed. */
static void
test_decode_strict(void)
{
	const char *good = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
	static const char *bad[] = {
		"",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh",	/* 42 characters */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",	/* padded */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A",	/* 44 characters */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9",	/* unused bits set */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+",	/* standard alphabet */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd/h8",	/* standard alphabet */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd h8",	/* space */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\nh8",	/* newline */
	};
	uint8_t		token[WG_TOKEN_LEN];
	uint8_t		zero[WG_TOKEN_LEN];

	memset(zero, 0, sizeof(zero));
	CHECK(wg_token_decode(token, good, strlen(good)) == 0);
	CHECK(token[0] == 0 && token[1] == 1 && token[31] == 31);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		memset(token, 0xaa, sizeof(token));
		CHECK(wg_token_decode(token, bad[i], strlen(bad[i])) == -1);
		CHECK(memcmp(token, zero, WG_TOKEN_LEN) == 0);
	}
	/* the length given counts, not a NUL: a good prefix of longer text */
	CHECK(wg_token_decode(token, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8xyz",
						  46) == -1);
	CHECK(wg_token_decode(token, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8xyz",
						  43) == 0);
}

/* The stored hash is SHA-256 of the 32 bytes (FIPS 180-2 style vector). */
static void
test_hash(void)
{
	uint8_t		token[WG_TOKEN_LEN];
	uint8_t		hash[WG_TOKEN_HASH_LEN];
	char		hex[2 * WG_TOKEN_HASH_LEN + 1];

	memset(token, 0, sizeof(token));
	wg_token_hash(hash, token);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	/* sha256 of 32 zero bytes, as `head -c 32 /dev/zero | sha256sum` */
	CHECK_STR(hex, "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
	token[31] = 1;
	wg_token_hash(hash, token);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	CHECK(strcmp(hex, "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925") != 0);
}

/* Fresh tokens differ and round-trip through their text. */
static void
test_generate(void)
{
	uint8_t		a[WG_TOKEN_LEN];
	uint8_t		b[WG_TOKEN_LEN];
	uint8_t		back[WG_TOKEN_LEN];
	char		text[WG_TOKEN_TEXT_SIZE];

	wg_token_generate(a);
	wg_token_generate(b);
	CHECK(memcmp(a, b, WG_TOKEN_LEN) != 0);
	wg_token_encode(text, a);
	CHECK(strlen(text) == WG_TOKEN_TEXT_LEN);
	CHECK(wg_token_decode(back, text, WG_TOKEN_TEXT_LEN) == 0);
	CHECK(memcmp(a, back, WG_TOKEN_LEN) == 0);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_encode_known();
	test_decode_strict();
	test_hash();
	test_generate();
	return UNIT_DONE("test_token");
}
