/*
 * amnezia_uri.c
 *		Encoding a JSON document as AmneziaVPN's "vpn://" link.
 *
 * The client (amnezia-client, its import of a "vpn://" text) strips the
 * prefix, decodes URL-safe base64 without padding and runs qUncompress():
 * a 4-byte big-endian length of the document, then the document as a
 * zlib stream.  This file writes exactly that.
 */
#include "core/amnezia_uri.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zlib.h>

/*
 * The buffer wg_amnezia_uri() needs for a document of json_len bytes,
 * the terminating NUL included.
 */
size_t
wg_amnezia_uri_size(size_t json_len)
{
	size_t		packed = 4 + compressBound((uLong) json_len);

	return strlen(WG_AMNEZIA_URI_PREFIX) +
		sodium_base64_ENCODED_LEN(packed,
								  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/*
 * Write the "vpn://" link of json (json_len bytes) into out (size bytes,
 * at least wg_amnezia_uri_size(json_len)).  Returns the link's length, or
 * -EINVAL (no document, or one past 4 GiB), -ENOSPC (out too small),
 * -ENOMEM.
 */
int
wg_amnezia_uri(const char *json, size_t json_len, char *out, size_t size)
{
	size_t		prefix = strlen(WG_AMNEZIA_URI_PREFIX);
	uLongf		zlen = compressBound((uLong) json_len);
	unsigned char *packed;
	int			rc;

	if (json == NULL || json_len == 0 || json_len > UINT32_MAX ||
		json_len > (size_t) INT32_MAX)
		return -EINVAL;
	if (size < wg_amnezia_uri_size(json_len))
		return -ENOSPC;
	packed = malloc(4 + zlen);
	if (packed == NULL)
		return -ENOMEM;
	/* qCompress: the uncompressed length, big-endian, then zlib */
	packed[0] = (unsigned char) (json_len >> 24);
	packed[1] = (unsigned char) (json_len >> 16);
	packed[2] = (unsigned char) (json_len >> 8);
	packed[3] = (unsigned char) json_len;
	rc = compress2(packed + 4, &zlen, (const Bytef *) json, (uLong) json_len,
				   Z_DEFAULT_COMPRESSION);
	if (rc != Z_OK)
	{
		free(packed);
		return rc == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
	}
	memcpy(out, WG_AMNEZIA_URI_PREFIX, prefix);
	sodium_bin2base64(out + prefix, size - prefix, packed, 4 + zlen,
					  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	free(packed);
	return (int) strlen(out);
}
