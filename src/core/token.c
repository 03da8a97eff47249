/*
 * token.c
 *		Generation, strict URL-safe base64 coding and hashing of the bearer
 *		tokens of one-time config links.
 *
 * A token is 32 bytes from libsodium's CSPRNG.  Its text form has exactly
 * one spelling: decoding refuses any other length, padding, characters
 * outside the URL-safe alphabet and a last character with unused bits set,
 * so two different strings never redeem the same link.  Only the SHA-256
 * of the 32 bytes is ever stored.
 */
#include "core/token.h"

#include <sodium.h>

#define TOKEN_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING

/*
 * Fill token with 32 fresh random bytes.
 */
void
wg_token_generate(uint8_t token[WG_TOKEN_LEN])
{
	randombytes_buf(token, WG_TOKEN_LEN);
}

/*
 * Write token as 43 characters of URL-safe base64 (A-Z a-z 0-9 - _)
 * without padding, plus NUL.
 */
void
wg_token_encode(char out[WG_TOKEN_TEXT_SIZE], const uint8_t token[WG_TOKEN_LEN])
{
	sodium_bin2base64(out, WG_TOKEN_TEXT_SIZE, token, WG_TOKEN_LEN,
					  TOKEN_VARIANT);
}

/*
 * Decode the len bytes at text into token.  Returns 0, or -1 unless text
 * is exactly the spelling wg_token_encode() gives some token; token is
 * then zeroed.
 */
int
wg_token_decode(uint8_t token[WG_TOKEN_LEN], const char *text, size_t len)
{
	size_t		bin_len = 0;
	const char *end = NULL;
	char		again[WG_TOKEN_TEXT_SIZE];
	int			canonical;

	if (len != WG_TOKEN_TEXT_LEN ||
		sodium_base642bin(token, WG_TOKEN_LEN, text, len, NULL, &bin_len,
						  &end, TOKEN_VARIANT) != 0 ||
		bin_len != WG_TOKEN_LEN || end != text + len)
	{
		sodium_memzero(token, WG_TOKEN_LEN);
		return -1;
	}
	/* one spelling only: the unused low bits of the last character are 0 */
	wg_token_encode(again, token);
	canonical = sodium_memcmp(again, text, WG_TOKEN_TEXT_LEN) == 0;
	sodium_memzero(again, sizeof(again));
	if (!canonical)
	{
		sodium_memzero(token, WG_TOKEN_LEN);
		return -1;
	}
	return 0;
}

/*
 * The SHA-256 of the token's 32 bytes: what the database stores and looks
 * links up by.
 */
void
wg_token_hash(uint8_t hash[WG_TOKEN_HASH_LEN], const uint8_t token[WG_TOKEN_LEN])
{
	crypto_hash_sha256(hash, token, WG_TOKEN_LEN);
}
