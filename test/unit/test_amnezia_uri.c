/*
 * test_amnezia_uri.c
 *		Unit tests of amnezia_uri.c: a link decodes back, as AmneziaVPN's
 *		import does it (URL-safe base64 without padding, then qUncompress:
 *		a 4-byte big-endian length and a zlib stream), to the document;
 *		sizes and refusals.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zlib.h>

#include "core/amnezia_uri.h"
#include "unit.h"

/*
 * Decode a link as the app does into out (size bytes, NUL-terminated);
 * returns the document's length or -1.
 */
static long
decode(const char *uri, char *out, size_t size)
{
	unsigned char packed[8192];
	size_t		packed_len;
	uLongf		len = size - 1;
	uint32_t	declared;

	if (strncmp(uri, "vpn://", 6) != 0 ||
		sodium_base642bin(packed, sizeof(packed), uri + 6, strlen(uri + 6),
						  NULL, &packed_len, NULL,
						  sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
		packed_len < 5)
		return -1;
	declared = (uint32_t) packed[0] << 24 | (uint32_t) packed[1] << 16 |
		(uint32_t) packed[2] << 8 | packed[3];
	if (uncompress((Bytef *) out, &len, packed + 4, packed_len - 4) != Z_OK ||
		len != declared)
		return -1;
	out[len] = '\0';
	return (long) len;
}

/* A document goes through and comes back; the link is URL-safe. */
static void
test_round_trip(void)
{
	const char *json = "{\"containers\": [{\"container\": \"amnezia-awg\", "
		"\"awg\": {\"Jc\": \"4\", \"H1\": \"100-200\", \"I1\": \"<b 0xc0ff>\"}}], "
		"\"defaultContainer\": \"amnezia-awg\", \"hostName\": \"vpn.example.com\"}";
	size_t		size = wg_amnezia_uri_size(strlen(json));
	char	   *uri = malloc(size);
	char		back[4096];
	int			len = wg_amnezia_uri(json, strlen(json), uri, size);

	CHECK(len > 6 && (size_t) len < size);
	CHECK((size_t) len == strlen(uri));
	CHECK(strncmp(uri, "vpn://", 6) == 0);
	CHECK(strspn(uri + 6, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				 "0123456789-_") == strlen(uri + 6));
	CHECK(decode(uri, back, sizeof(back)) == (long) strlen(json));
	CHECK_STR(back, json);
	/* a buffer one byte short is refused, not overrun */
	CHECK(wg_amnezia_uri(json, strlen(json), uri, size - 1) == -ENOSPC);
	free(uri);
}

/* A repetitive document shrinks: the stream is compressed. */
static void
test_compressed(void)
{
	char		json[3000];
	char	   *uri;
	size_t		size;
	char		back[4096];

	memset(json, 'a', sizeof(json) - 1);
	json[sizeof(json) - 1] = '\0';
	size = wg_amnezia_uri_size(strlen(json));
	uri = malloc(size);
	CHECK(wg_amnezia_uri(json, strlen(json), uri, size) > 0);
	CHECK(strlen(uri) < 200);
	CHECK(decode(uri, back, sizeof(back)) == (long) strlen(json));
	CHECK_STR(back, json);
	free(uri);
}

/* No document. */
static void
test_refused(void)
{
	char		buf[64];

	CHECK(wg_amnezia_uri(NULL, 3, buf, sizeof(buf)) == -EINVAL);
	CHECK(wg_amnezia_uri("{}", 0, buf, sizeof(buf)) == -EINVAL);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_round_trip();
	test_compressed();
	test_refused();
	return UNIT_DONE("test_amnezia_uri");
}
