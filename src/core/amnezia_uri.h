/*
 * amnezia_uri.h
 *		AmneziaVPN's "vpn://" form of a connection: the JSON document its
 *		client imports, compressed as Qt's qCompress() does (the length as
 *		4 bytes big-endian, then a zlib stream) and written in URL-safe
 *		base64 without padding after "vpn://".
 *
 * Pure C (zlib, libsodium), no PostgreSQL headers: unit-tested outside the
 * server.
 */
#ifndef WGPEER_AMNEZIA_URI_H
#define WGPEER_AMNEZIA_URI_H

#include <stddef.h>

#define WG_AMNEZIA_URI_PREFIX "vpn://"

extern size_t wg_amnezia_uri_size(size_t json_len);
extern int	wg_amnezia_uri(const char *json, size_t json_len, char *out,
						   size_t size);

#endif							/* WGPEER_AMNEZIA_URI_H */
