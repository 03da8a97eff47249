/*
 * fuzz_validate.c
 *		libFuzzer target for the checks of caller-supplied text and keys:
 *		interface, tunnel and host names, endpoints, DNS lists, address
 *		pools (src/core/validate.c) and keys in base64 and as bytes
 *		(src/core/keys.c).
 *
 * Every input goes through every check, and each answer is compared with
 * an oracle written here from the rule, not from the code:
 *	- a check that has an exact rule (control characters, interface and
 *	  tunnel names, hostnames, endpoints, DNS lists, base64 keys) accepts
 *	  exactly what the rule accepts;
 *	- what a DNS list check writes is itself an accepted list, written
 *	  back unchanged, and never overflows a buffer of any size;
 *	- a key's base64 decodes to the bytes it encodes, and back;
 *	- a public key is refused when X25519 with it gives the all-zero
 *	  secret, when its bit 255 is set, or when it is 2^255 - 19 or more;
 *	  a private key when it is all zero;
 *	- an address pool that holds an unspecified, loopback, link-local,
 *	  multicast or broadcast address is refused (tested on an address of
 *	  the prefix the input picks), one inside a private, shared or global
 *	  unicast range is accepted.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <sodium.h>

#include "core/keys.h"
#include "core/validate.h"
#include "device/uapi.h"
#include "fuzz.h"

/* Longest text checked: its normalized DNS list fits in 8 KiB. */
#define TEXT_MAX 4000

static const char b64_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Is c an ASCII letter or digit? */
static bool
is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9');
}

/* Does s contain a control character or DEL? */
static bool
has_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

/* Is s an IPv4 or IPv6 address? */
static bool
is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/*
 * The interface name rule: 1 to 15 bytes of printable ASCII other than
 * '/', ':' and '%', and not "." or "..".
 */
static bool
oracle_ifname(const char *s)
{
	size_t		len = strlen(s);

	if (len == 0 || len > 15 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		if (*p < 0x21 || *p > 0x7e || strchr("/:%", *p))
			return false;
	return true;
}

/* The tunnel name rule: 1 to 15 of A-Z a-z 0-9 _ = + . - */
static bool
oracle_config_name(const char *s)
{
	size_t		len = strlen(s);

	if (len == 0 || len > 15)
		return false;
	for (const char *p = s; *p; p++)
		if (!is_alnum(*p) && !strchr("_=+.-", *p))
			return false;
	return true;
}

/*
 * The hostname rule (RFC 1123, RFC 3696 2): at most 253 characters, labels
 * of 1 to 63 letters, digits and inner hyphens separated by dots, with an
 * optional final dot after the last label, which is not all digits.
 */
static bool
oracle_hostname(const char *s, size_t len)
{
	size_t		start = 0;
	bool		last_all_digits = false;

	if (len == 0 || len > 253)
		return false;
	if (s[len - 1] == '.')
		len--;					/* the root's empty label */
	while (start <= len)
	{
		size_t		end = start;
		bool		digits = true;

		while (end < len && s[end] != '.')
		{
			if (!is_alnum(s[end]) && s[end] != '-')
				return false;
			digits &= s[end] >= '0' && s[end] <= '9';
			end++;
		}
		if (end == start || end - start > 63 || s[start] == '-' ||
			s[end - 1] == '-')
			return false;
		last_all_digits = digits;
		start = end + 1;
	}
	return !last_all_digits;
}

/*
 * The endpoint rule: host:port, port 1 to 65535 in at most five digits;
 * host an IPv6 address in brackets, an IPv4 address or a hostname.
 */
static bool
oracle_endpoint(const char *s)
{
	const char *colon = strrchr(s, ':');
	size_t		hostlen;
	char		host[512];
	long		port;

	if (colon == NULL || has_control(s))
		return false;
	if (colon[1] == '\0' || strlen(colon + 1) > 5 ||
		strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return false;
	port = strtol(colon + 1, NULL, 10);
	if (port < 1 || port > 65535)
		return false;
	hostlen = colon - s;
	if (hostlen == 0 || hostlen >= sizeof(host))
		return false;
	if (s[0] == '[')
	{
		unsigned char buf[16];

		if (hostlen < 3 || s[hostlen - 1] != ']')
			return false;
		memcpy(host, s + 1, hostlen - 2);
		host[hostlen - 2] = '\0';
		return inet_pton(AF_INET6, host, buf) == 1;
	}
	memcpy(host, s, hostlen);
	host[hostlen] = '\0';
	if (strchr(host, ':'))
		return false;
	return is_ip(host) || oracle_hostname(host, hostlen);
}

/*
 * The DNS list rule: comma-separated entries, spaces around them ignored,
 * each an IP address or a hostname; no control characters.  Writes the
 * normalized "a, b, c" into out (large enough).
 */
static bool
oracle_dns_list(const char *s, char *out)
{
	const char *p = s;

	out[0] = '\0';
	if (has_control(s))
		return false;
	for (;;)
	{
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		char		entry[512];
		size_t		len;

		while (*p == ' ')
			p++;
		while (end > p && end[-1] == ' ')
			end--;
		len = end - p;
		if (len == 0 || len >= sizeof(entry))
			return false;
		memcpy(entry, p, len);
		entry[len] = '\0';
		if (!is_ip(entry) && (strchr(entry, ':') || !oracle_hostname(entry, len)))
			return false;
		if (out[0] != '\0')
			strcat(out, ", ");
		strcat(out, entry);
		if (comma == NULL)
			return true;
		p = comma + 1;
	}
}

/* The base64 rule: exactly what wg(8) prints for some 32 bytes. */
static bool
oracle_base64(const char *s)
{
	const char *last;

	if (strlen(s) != WG_KEY_B64_LEN || s[WG_KEY_B64_LEN - 1] != '=')
		return false;
	for (int i = 0; i < WG_KEY_B64_LEN - 1; i++)
		if (strchr(b64_alphabet, s[i]) == NULL)
			return false;
	/* the last character carries 4 bits of the key and 2 zero bits */
	last = strchr(b64_alphabet, s[WG_KEY_B64_LEN - 2]);
	return ((last - b64_alphabet) & 3) == 0;
}

/* Text checks: names, hosts, endpoints, DNS lists, base64 keys. */
static void
check_text(const char *s, size_t small)
{
	size_t		len = strlen(s);
	char	   *normalized = malloc(small);
	char	   *bad = malloc(small);
	char		big[8192];
	char		again[8192];
	char		want[8192];
	char		bad_big[300];
	uint8_t		key[WG_KEY_LEN];
	char		b64[WG_KEY_B64_SIZE];
	size_t		pos = SIZE_MAX;
	const char *why;
	wg_key_status st;

	REQUIRE(normalized != NULL && bad != NULL);
	REQUIRE((wg_check_no_control(s) == NULL) == !has_control(s));
	REQUIRE((wg_check_ifname(s) == NULL) == oracle_ifname(s));
	if (wg_check_ifname(s) == NULL)
	{
		char		path[128];

		REQUIRE(wguapi_socket_path(path, sizeof(path), NULL, s) == 0);
	}
	REQUIRE((wg_check_config_name(s) == NULL) == oracle_config_name(s));
	REQUIRE((wg_check_hostname(s) == NULL) == oracle_hostname(s, len));
	REQUIRE((wg_check_endpoint(s) == NULL) == oracle_endpoint(s));

	/* a DNS list: the rule, its normal form, and buffers of any size */
	why = wg_check_dns_list(s, big, sizeof(big), bad_big, sizeof(bad_big));
	REQUIRE((why == NULL) == oracle_dns_list(s, want));
	if (why == NULL)
	{
		REQUIRE(strcmp(big, want) == 0);
		REQUIRE(wg_check_dns_list(big, again, sizeof(again), NULL, 0) == NULL);
		REQUIRE(strcmp(again, big) == 0);
	}
	else
		REQUIRE(strlen(bad_big) < sizeof(bad_big));
	why = wg_check_dns_list(s, normalized, small, bad, small);
	if (why == NULL)
		REQUIRE(strlen(normalized) < small && strcmp(normalized, big) == 0);
	else
		REQUIRE(strlen(bad) < small);

	/* a key in base64 */
	st = wg_key_from_base64(key, s, &pos);
	REQUIRE((st == WG_KEY_OK) == oracle_base64(s));
	REQUIRE((st == WG_KEY_BAD_LENGTH) == (len != WG_KEY_B64_LEN));
	if (st == WG_KEY_OK)
	{
		wg_key_to_base64(b64, key);
		REQUIRE(strcmp(b64, s) == 0);
	}
	if (st == WG_KEY_BAD_CHARACTER)
		REQUIRE(pos < len && strchr(b64_alphabet, s[pos]) == NULL);
	free(normalized);
	free(bad);
}

/* Is the 32-byte little-endian number key at least p = 2^255 - 19? */
static bool
at_least_p(const uint8_t key[WG_KEY_LEN])
{
	if ((key[31] & 0x7f) != 0x7f || key[0] < 0xed)
		return false;
	for (int i = 1; i < 31; i++)
		if (key[i] != 0xff)
			return false;
	return true;
}

/* Key checks on 32 bytes: base64 both ways, public and private rules. */
static void
check_key(const uint8_t key[WG_KEY_LEN])
{
	static const uint8_t scalar[WG_KEY_LEN] = {0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9};
	char		b64[WG_KEY_B64_SIZE];
	uint8_t		back[WG_KEY_LEN];
	uint8_t		shared[WG_KEY_LEN];
	bool		zero = true;
	wg_key_status st;

	wg_key_to_base64(b64, key);
	REQUIRE(wg_key_from_base64(back, b64, NULL) == WG_KEY_OK);
	REQUIRE(memcmp(back, key, WG_KEY_LEN) == 0);

	/* an accepted key gives a nonzero secret, bit 255 clear, u < p */
	st = wg_key_check_public(key);
	if (st == WG_KEY_OK)
		REQUIRE(crypto_scalarmult_curve25519(shared, scalar, key) == 0 &&
				!(key[31] & 0x80) && !at_least_p(key));

	for (int i = 0; i < WG_KEY_LEN; i++)
		zero &= key[i] == 0;
	REQUIRE((wg_key_check_private(key) == WG_KEY_OK) == !zero);
}

/* Is this IPv4 address (host order) one no peer may have? */
static bool
bad_v4(uint32_t a)
{
	return (a >> 24) == 0 || (a >> 24) == 127 || (a >> 16) == 0xa9fe ||
		(a >> 28) == 0xe || a == 0xffffffffu;
}

/* Is this IPv6 address one no peer may have? */
static bool
bad_v6(const uint8_t a[16])
{
	static const uint8_t zero[16];

	return (memcmp(a, zero, 15) == 0 && a[15] <= 1) ||
		(a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || a[0] == 0xff;
}

/*
 * Address pools: the prefix family/addr/bits from the input, and host
 * bits for one address of it.
 */
static void
check_pool(int family, const uint8_t *addr, int bits, const uint8_t *host)
{
	int			max = family == AF_INET ? 32 : 128;
	uint8_t		a[16];
	const char *why = wg_check_pool_prefix(family, addr, bits);
	bool		bad;
	bool		safe;

	if (bits < 1 || bits > max)
	{
		REQUIRE(why != NULL);
		return;
	}
	/* an address of the prefix: its network bits, the input's host bits */
	for (int i = 0; i < max / 8; i++)
	{
		int			net = bits >= (i + 1) * 8 ? 8 : bits > i * 8 ? bits - i * 8 : 0;
		uint8_t		mask = (uint8_t) (0xff00 >> net);

		a[i] = (addr[i] & mask) | (host[i] & ~mask);
	}
	if (family == AF_INET)
	{
		uint32_t	v = (uint32_t) a[0] << 24 | a[1] << 16 | a[2] << 8 | a[3];

		bad = bad_v4(v);
		/* inside 10/8, 172.16/12, 192.168/16 or 100.64/10 */
		safe = (bits >= 8 && a[0] == 10) ||
			(bits >= 12 && a[0] == 172 && (a[1] & 0xf0) == 16) ||
			(bits >= 16 && a[0] == 192 && a[1] == 168) ||
			(bits >= 10 && a[0] == 100 && (a[1] & 0xc0) == 64);
	}
	else
	{
		bad = bad_v6(a);
		/* inside fc00::/7 (unique local) or 2000::/3 (global unicast) */
		safe = (bits >= 7 && (a[0] & 0xfe) == 0xfc) ||
			(bits >= 3 && (a[0] & 0xe0) == 0x20);
	}
	if (bad)
		REQUIRE(why != NULL);
	if (safe)
		REQUIRE(why == NULL);
}

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libsodium for the key checks. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	REQUIRE(wg_keys_init() == 0);
	return 0;
}

/*
 * One input: the whole of it as text (up to its first NUL, at most
 * TEXT_MAX bytes, so that a normalized DNS list always fits the oracle's
 * buffer), the first byte also giving the size of a small output buffer;
 * its first 32 bytes as a key; its first 34 as an address pool.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		len = size < TEXT_MAX ? size : TEXT_MAX;
	char	   *text = malloc(len + 1);
	uint8_t		buf[34];
	int			family;

	REQUIRE(text != NULL);
	memcpy(text, data, len);
	text[len] = '\0';
	check_text(text, size > 0 ? 1 + data[0] % 64 : 1);
	free(text);

	memset(buf, 0, sizeof(buf));
	memcpy(buf, data, size < sizeof(buf) ? size : sizeof(buf));
	check_key(buf);
	/* byte 0: family; 1..16: address; 17..32: host bits; 33: length */
	family = buf[0] & 1 ? AF_INET6 : AF_INET;
	check_pool(family, buf + 1,
			   buf[33] % ((family == AF_INET ? 32 : 128) + 3) - 1, buf + 17);
	return 0;
}
