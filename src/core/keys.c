/*
 * keys.c
 *		X25519 key generation and strict base64 coding of WireGuard keys.
 *
 * Keys come from libsodium's CSPRNG; private keys are clamped the way
 * `wg genkey` clamps them, so a key generated here is byte-for-byte what
 * the WireGuard tools would accept and print back.
 */
#include "core/keys.h"

#include <string.h>

#include <sodium.h>

static const char b64_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * Initialise libsodium.  Returns 0 on success, -1 when no entropy source
 * is available.  Safe to call more than once.
 */
int
wg_keys_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

/*
 * Fill key with a fresh, clamped Curve25519 private key (RFC 7748 5).
 */
void
wg_key_generate_private(uint8_t key[WG_KEY_LEN])
{
	randombytes_buf(key, WG_KEY_LEN);
	key[0] &= 248;
	key[31] &= 127;
	key[31] |= 64;
}

/*
 * Fill key with 32 random bytes for a WireGuard preshared key.
 */
void
wg_key_generate_preshared(uint8_t key[WG_KEY_LEN])
{
	randombytes_buf(key, WG_KEY_LEN);
}

/*
 * Derive the public key of priv (X25519 with the base point).  libsodium
 * clamps the scalar itself, as WireGuard does.  Returns 0, or -1 if the
 * result is the all-zero point (impossible for the base point, checked
 * anyway so the caller never publishes a degenerate key).
 */
int
wg_key_public(uint8_t pub[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN])
{
	return crypto_scalarmult_curve25519_base(pub, priv) == 0 ? 0 : -1;
}

/*
 * Encode a 32-byte key as 44 characters of standard base64 plus NUL.
 */
void
wg_key_to_base64(char out[WG_KEY_B64_SIZE], const uint8_t key[WG_KEY_LEN])
{
	int			i;
	int			o = 0;

	for (i = 0; i + 3 <= WG_KEY_LEN; i += 3)
	{
		uint32_t	v = (key[i] << 16) | (key[i + 1] << 8) | key[i + 2];

		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	/* 32 = 10 * 3 + 2: two bytes left, three characters and one pad */
	{
		uint32_t	v = (key[30] << 16) | (key[31] << 8);

		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
}

/* Value of one base64 character, or -1. */
static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decode a key written as standard base64.  Accepts exactly the 44
 * characters wg(8) prints; anything else is refused with a reason, and for
 * a bad character its 0-based position in *bad_pos.  The output is wiped
 * on failure.
 */
wg_key_status
wg_key_from_base64(uint8_t key[WG_KEY_LEN], const char *b64, size_t *bad_pos)
{
	int			vals[WG_KEY_B64_LEN - 1];
	size_t		len = strlen(b64);
	int			i;
	int			o = 0;

	if (len != WG_KEY_B64_LEN)
		return WG_KEY_BAD_LENGTH;
	for (i = 0; i < WG_KEY_B64_LEN - 1; i++)
	{
		vals[i] = b64_value(b64[i]);
		if (vals[i] < 0)
		{
			if (bad_pos)
				*bad_pos = i;
			return WG_KEY_BAD_CHARACTER;
		}
	}
	if (b64[WG_KEY_B64_LEN - 1] != '=')
	{
		if (bad_pos)
			*bad_pos = WG_KEY_B64_LEN - 1;
		return b64_value(b64[WG_KEY_B64_LEN - 1]) < 0 ?
			WG_KEY_BAD_CHARACTER : WG_KEY_BAD_PADDING;
	}
	/* the last data character carries 4 bits; its low 2 bits must be 0 */
	if (vals[42] & 3)
		return WG_KEY_NOT_CANONICAL;

	for (i = 0; i + 4 <= 40; i += 4)
	{
		uint32_t	v = (vals[i] << 18) | (vals[i + 1] << 12) |
			(vals[i + 2] << 6) | vals[i + 3];

		key[o++] = (v >> 16) & 0xff;
		key[o++] = (v >> 8) & 0xff;
		key[o++] = v & 0xff;
	}
	{
		uint32_t	v = (vals[40] << 18) | (vals[41] << 12) | (vals[42] << 6);

		key[o++] = (v >> 16) & 0xff;
		key[o++] = (v >> 8) & 0xff;
	}
	return WG_KEY_OK;
}

/*
 * A sentence for each refusal, for error messages.
 */
const char *
wg_key_status_message(wg_key_status status)
{
	switch (status)
	{
		case WG_KEY_OK:
			return "Valid";
		case WG_KEY_BAD_LENGTH:
			return "A key is 44 characters of base64";
		case WG_KEY_BAD_CHARACTER:
			return "A key may contain only A-Z, a-z, 0-9, '+', '/' and a final '='";
		case WG_KEY_BAD_PADDING:
			return "A key ends with '=' (32 bytes in base64)";
		case WG_KEY_NOT_CANONICAL:
			return "The last character before '=' does not encode exactly 32 bytes";
	}
	return "Unknown";
}

/*
 * Overwrite key material in a way the compiler may not optimise away.
 */
void
wg_key_wipe(void *buf, size_t len)
{
	sodium_memzero(buf, len);
}
