/*
 * import.h
 *		Reading the [Peer] sections of a WireGuard config, as `wg showconf`
 *		prints it or wg-quick keeps it, to adopt peers that already exist.
 *
 * Pure C, no PostgreSQL headers, no I/O: the caller passes the text.
 */
#ifndef WGPEER_IMPORT_H
#define WGPEER_IMPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/keys.h"

/* Longest AllowedIPs of one peer kept (all its AllowedIPs lines joined). */
#define WG_IMPORT_IPS_MAX 1024

/* One [Peer] section. */
typedef struct wg_import_entry
{
	char		public_key[WG_KEY_B64_SIZE];
	bool		has_preshared_key;
	char		preshared_key[WG_KEY_B64_SIZE];
	char		allowed_ips[WG_IMPORT_IPS_MAX]; /* "a, b", as written */
	int			keepalive;		/* seconds; -1: not given */
	int			line;			/* of its [Peer] header */
} wg_import_entry;

/* Every [Peer] of a config, in order; free with wg_import_free. */
typedef struct wg_import
{
	wg_import_entry *peers;
	size_t		n_peers;
	size_t		cap_peers;
} wg_import;

extern const char *wg_import_parse(const char *text, wg_import *out, int *line);
extern void wg_import_free(wg_import *import);

#endif							/* WGPEER_IMPORT_H */
