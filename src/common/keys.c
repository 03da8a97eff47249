/*
 * keys.c
 *		WireGuard keys as the tables store them: base64 text.
 */
#include "common/common.h"

/*
 * A key as a palloc'd base64 string.
 */
char *
wgpeer_key_text(const uint8_t key[WG_KEY_LEN])
{
	char	   *out = palloc(WG_KEY_B64_SIZE);

	wg_key_to_base64(out, key);
	return out;
}

/*
 * Decode a stored key; stored keys were validated on the way in, so a bad
 * one means the table was edited by hand.
 */
void
wgpeer_stored_key(const char *text, uint8_t key[WG_KEY_LEN])
{
	if (wg_key_from_base64(key, text, NULL) != WG_KEY_OK)
		elog(ERROR, "wgpeer: stored key \"%s\" is not a WireGuard key", text);
}
