/*
 * signature.h
 *		The signature of a webhook delivery: HMAC-SHA256, keyed with the
 *		endpoint's secret, over "<timestamp>.<body>", in lower-case hex.
 *
 * Pure C (libsodium), no PostgreSQL headers: unit-tested outside the server.
 */
#ifndef WGPEER_SIGNATURE_H
#define WGPEER_SIGNATURE_H

#include <stddef.h>

/* 32 bytes of HMAC-SHA256 in hex: 64 characters, NUL */
#define WG_SIGNATURE_HEX_SIZE 65

extern void wg_webhook_signature(char out[WG_SIGNATURE_HEX_SIZE],
								 const char *secret, size_t secret_len,
								 const char *timestamp,
								 const char *body, size_t body_len);

#endif							/* WGPEER_SIGNATURE_H */
