/*
 * signature.c
 *		Signing a webhook delivery, so that its receiver can tell it came
 *		from this database and was not replayed long after.
 *
 * The signed text is the request's timestamp (decimal Unix seconds, also
 * sent as a header), a full stop, and the body exactly as sent: a receiver
 * recomputes the HMAC over what it received and compares in constant
 * time, and refuses timestamps too far from its clock.
 */
#include "core/signature.h"

#include <string.h>

#include <sodium.h>

/*
 * Write into out the hex HMAC-SHA256 of "timestamp.body" keyed with the
 * secret's secret_len bytes (any length: libsodium hashes a key longer
 * than a block, as RFC 2104 says).
 */
void
wg_webhook_signature(char out[WG_SIGNATURE_HEX_SIZE],
					 const char *secret, size_t secret_len,
					 const char *timestamp,
					 const char *body, size_t body_len)
{
	crypto_auth_hmacsha256_state state;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];

	crypto_auth_hmacsha256_init(&state, (const unsigned char *) secret,
								secret_len);
	crypto_auth_hmacsha256_update(&state, (const unsigned char *) timestamp,
								  strlen(timestamp));
	crypto_auth_hmacsha256_update(&state, (const unsigned char *) ".", 1);
	crypto_auth_hmacsha256_update(&state, (const unsigned char *) body,
								  body_len);
	crypto_auth_hmacsha256_final(&state, mac);
	sodium_bin2hex(out, WG_SIGNATURE_HEX_SIZE, mac, sizeof(mac));
	sodium_memzero(&state, sizeof(state));
}
