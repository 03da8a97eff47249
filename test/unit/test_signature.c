/*
 * test_signature.c
 *		Unit tests of signature.c: HMAC-SHA256 over "timestamp.body" in hex,
 *		checked against values computed by Python's hmac module (an
 *		implementation of its own), including a key longer than a block.
 */
#include <string.h>

#include "core/signature.h"
#include "unit.h"

/* RFC 4231's second key and text, with the "." the scheme adds. */
static void
test_short_key(void)
{
	char		sig[WG_SIGNATURE_HEX_SIZE];

	wg_webhook_signature(sig, "Jefe", 4, "what do ya want for nothing?", "", 0);
	CHECK_STR(sig, "38c6c848e5a2f57451f5095df6370d5c9b83175b99df46422b34960c28def6ae");
}

/* A typical delivery: the signed text is timestamp, ".", body. */
static void
test_delivery(void)
{
	const char *secret = "whsec-test-0123456789";
	const char *body = "{\"events\":[]}";
	char		sig[WG_SIGNATURE_HEX_SIZE];
	char		other[WG_SIGNATURE_HEX_SIZE];

	wg_webhook_signature(sig, secret, strlen(secret), "1700000000", body,
						 strlen(body));
	CHECK_STR(sig, "ae59f880ef02eeebe0888c5e46f662f82b33fd3eb006ef2164cfeada182acaf6");
	/* another timestamp, or a body one byte shorter, signs differently */
	wg_webhook_signature(other, secret, strlen(secret), "1700000001", body,
						 strlen(body));
	CHECK(strcmp(sig, other) != 0);
	wg_webhook_signature(other, secret, strlen(secret), "1700000000", body,
						 strlen(body) - 1);
	CHECK(strcmp(sig, other) != 0);
}

/* A key longer than SHA-256's 64-byte block is hashed first. */
static void
test_long_key(void)
{
	char		key[131];
	const char *body = "{\"webhook_id\":1,\"events\":[]}";
	char		sig[WG_SIGNATURE_HEX_SIZE];

	memset(key, 0xaa, sizeof(key));
	wg_webhook_signature(sig, key, sizeof(key), "1700000000", body, strlen(body));
	CHECK_STR(sig, "bccd31db7eb3d4e841321958239c37ed0eb3d66b1562593e34bf6e8b7d97c2c1");
}

int
main(void)
{
	test_short_key();
	test_delivery();
	test_long_key();
	return UNIT_DONE("test_signature");
}
