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

/*
 * The value of each base64 character plus one; 0 for any other byte.  A
 * reconcile decodes every stored key of an interface (tens of thousands):
 * a lookup keeps that a small part of it.
 */
static const uint8_t b64_values[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
	['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
	['Y'] = 25, ['Z'] = 26,
	['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
	['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38,
	['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44,
	['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,
	['y'] = 51, ['z'] = 52,
	['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58,
	['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62,
	['+'] = 63, ['/'] = 64,
};

/* Value of one base64 character, or -1. */
static int
b64_value(char c)
{
	return (int) b64_values[(unsigned char) c] - 1;
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
 * The u-coordinates of the points of small order (1, 2, 4 or 8) of
 * Curve25519 and of its quadratic twist, as 32 little-endian bytes: the
 * values X25519 maps to the all-zero shared secret for every private key.
 * They are the list libsodium refuses (has_small_order() in
 * crypto_scalarmult/curve25519/ref10/x25519_ref10.c), from the discussion
 * of small-order inputs in RFC 7748 section 6.1 and the "points of small
 * order" list of cr.yp.to/ecdh.html; test_keys.c checks each with
 * libsodium, and an X25519 ladder confirms the orders noted here.
 */
static const uint8_t low_order_points[][WG_KEY_LEN] = {
	/* 0: order 2 */
	{0},
	/* 1: order 4 */
	{1},
	/* 325606250916557431795983626356110631294008115727848805560023387167927233504: order 8 */
	{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa,
		0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd,
	0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
	/* 39382357235489614581723060781553021112529911719440698176882885853963445705823: order 8 */
	{0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55,
		0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86,
	0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
	/* p - 1: order 4, on the twist */
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	/* p, which X25519 reduces to 0 */
	{0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	/* p + 1, which X25519 reduces to 1 */
	{0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};

/*
 * Check a public key a caller hands us (a peer's, or an interface's given
 * without its private key).  WireGuard adds any 32 bytes as a peer, but:
 *
 * - X25519 (RFC 7748 5) ignores bit 255 and reduces u modulo
 *   p = 2^255 - 19, so a low-order point, with or without bit 255, gives
 *   the all-zero shared secret, which the kernel (noise.c) and
 *   wireguard-go refuse at every handshake: WG_KEY_LOW_ORDER.
 * - Any other key with bit 255 set, or not below p, computes like its
 *   canonical form, but WireGuard finds a peer by the 32 bytes the
 *   handshake carries, and a public key derived by X25519 always has
 *   bit 255 clear and u < p: the peer goes active and is never matched
 *   (nor does its mac1 check pass): WG_KEY_HIGH_BIT, WG_KEY_NOT_REDUCED.
 *
 * So such a peer goes active and can never complete a handshake; we
 * refuse the key instead.  We do not check that the point lies in the
 * prime-order subgroup: a random 32 bytes nearly always passes that too
 * and belongs to nobody, which no check can tell.
 */
wg_key_status
wg_key_check_public(const uint8_t key[WG_KEY_LEN])
{
	size_t		i;
	int			j;

	for (i = 0; i < sizeof(low_order_points) / sizeof(low_order_points[0]); i++)
	{
		if (memcmp(key, low_order_points[i], WG_KEY_LEN - 1) == 0 &&
			(key[WG_KEY_LEN - 1] & 0x7f) == low_order_points[i][WG_KEY_LEN - 1])
			return WG_KEY_LOW_ORDER;
	}
	if (key[WG_KEY_LEN - 1] & 0x80)
		return WG_KEY_HIGH_BIT;
	/* u >= p: 0x7f, thirty 0xff, then 0xed or more (little-endian) */
	if (key[WG_KEY_LEN - 1] == 0x7f && key[0] >= 0xed)
	{
		for (j = 1; j < WG_KEY_LEN - 1; j++)
			if (key[j] != 0xff)
				return WG_KEY_OK;
		return WG_KEY_NOT_REDUCED;
	}
	return WG_KEY_OK;
}

/*
 * Check a private key a caller hands us.  Clamping (RFC 7748 5) makes any
 * 32 bytes a usable scalar, except that WireGuard reads all zero bytes as
 * "no private key" (curve25519_generate_public() in the kernel fails on
 * it, and the interface then has no identity).
 */
wg_key_status
wg_key_check_private(const uint8_t key[WG_KEY_LEN])
{
	uint8_t		any = 0;
	int			i;

	for (i = 0; i < WG_KEY_LEN; i++)
		any |= key[i];
	return any ? WG_KEY_OK : WG_KEY_ZERO_PRIVATE;
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
		case WG_KEY_LOW_ORDER:
			return "It is a point of small order on Curve25519 (such as all "
				"zeros): WireGuard accepts it, but every Diffie-Hellman "
				"result with it is zero, so no handshake with it can ever "
				"complete";
		case WG_KEY_HIGH_BIT:
			return "Its bit 255 is set, which no public key has: WireGuard "
				"accepts it, but no handshake with it can ever complete";
		case WG_KEY_NOT_REDUCED:
			return "It encodes a number of 2^255 - 19 or more, which no "
				"public key is: WireGuard accepts it, but no handshake with "
				"it can ever complete";
		case WG_KEY_ZERO_PRIVATE:
			return "A private key of all zero bytes means \"no key\" to "
				"WireGuard: the interface would have no identity and "
				"complete no handshake";
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

