/*
 * keys.h
 *		WireGuard keys: X25519 key pairs, preshared keys and their base64 form.
 *
 * Pure C (libsodium), no PostgreSQL headers: unit-tested outside the server.
 */
#ifndef WGPEER_KEYS_H
#define WGPEER_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define WG_KEY_LEN 32
/* 32 bytes in standard base64: 43 characters, one '=' pad, NUL */
#define WG_KEY_B64_LEN 44
#define WG_KEY_B64_SIZE (WG_KEY_B64_LEN + 1)

/*
 * Why a key was refused: wg_key_from_base64's return value (its text), and
 * wg_key_check_public's and wg_key_check_private's (its 32 bytes).
 */
typedef enum wg_key_status
{
	WG_KEY_OK = 0,
	WG_KEY_BAD_LENGTH,			/* not 44 characters */
	WG_KEY_BAD_CHARACTER,		/* outside the standard base64 alphabet */
	WG_KEY_BAD_PADDING,			/* the 44th character is not '=' */
	WG_KEY_NOT_CANONICAL,		/* unused low bits set: not 32 bytes exactly */
	WG_KEY_LOW_ORDER,			/* public: a point of small order (all zero...) */
	WG_KEY_HIGH_BIT,			/* public: bit 255 set */
	WG_KEY_NOT_REDUCED,			/* public: u >= 2^255 - 19 */
	WG_KEY_ZERO_PRIVATE			/* private: all zero, "no key" to WireGuard */
} wg_key_status;

extern int	wg_keys_init(void);
extern void wg_key_generate_private(uint8_t key[WG_KEY_LEN]);
extern void wg_key_generate_preshared(uint8_t key[WG_KEY_LEN]);
extern int	wg_key_public(uint8_t pub[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN]);
extern void wg_key_to_base64(char out[WG_KEY_B64_SIZE], const uint8_t key[WG_KEY_LEN]);
extern wg_key_status wg_key_from_base64(uint8_t key[WG_KEY_LEN], const char *b64,
										size_t *bad_pos);
extern wg_key_status wg_key_check_public(const uint8_t key[WG_KEY_LEN]);
extern wg_key_status wg_key_check_private(const uint8_t key[WG_KEY_LEN]);
extern const char *wg_key_status_message(wg_key_status status);
extern void wg_key_wipe(void *buf, size_t len);

#endif							/* WGPEER_KEYS_H */
