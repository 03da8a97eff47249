/*
 * token.h
 *		Bearer tokens of one-time config links: 256 random bits, written as
 *		43 characters of URL-safe base64 without padding, stored only as
 *		their SHA-256.
 *
 * Pure C (libsodium), no PostgreSQL headers: unit-tested outside the server.
 */
#ifndef WGPEER_TOKEN_H
#define WGPEER_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define WG_TOKEN_LEN 32
/* 32 bytes in URL-safe base64 without padding: 43 characters, NUL */
#define WG_TOKEN_TEXT_LEN 43
#define WG_TOKEN_TEXT_SIZE (WG_TOKEN_TEXT_LEN + 1)
#define WG_TOKEN_HASH_LEN 32

extern void wg_token_generate(uint8_t token[WG_TOKEN_LEN]);
extern void wg_token_encode(char out[WG_TOKEN_TEXT_SIZE],
							const uint8_t token[WG_TOKEN_LEN]);
extern int	wg_token_decode(uint8_t token[WG_TOKEN_LEN], const char *text,
							size_t len);
extern void wg_token_hash(uint8_t hash[WG_TOKEN_HASH_LEN],
						  const uint8_t token[WG_TOKEN_LEN]);

#endif							/* WGPEER_TOKEN_H */
