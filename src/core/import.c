/*
 * import.c
 *		Reading the [Peer] sections of a WireGuard config.
 *
 * The format is wg(8)'s: sections in brackets, "Key = Value" lines, keys
 * case-insensitive, '#' starting a comment, AllowedIPs repeatable.  The
 * [Interface] section and wg-quick's own keys in it are skipped: only
 * peers are imported.  In a [Peer] section PublicKey, PresharedKey,
 * AllowedIPs, Endpoint (ignored: a server learns it from the client) and
 * PersistentKeepalive are read; anything else is an error, so that nothing
 * of a peer is silently dropped.  Keys are checked as keys; addresses are
 * left to the caller, which parses them with its own rules.
 */
#include "core/import.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest line accepted. */
#define LINE_MAX_LEN 4096

/* Where the parser is. */
typedef enum section
{
	SECTION_NONE,
	SECTION_INTERFACE,
	SECTION_PEER
} section;

/*
 * Strip a comment and surrounding whitespace from line, in place.
 */
static char *
trim(char *line)
{
	char	   *hash = strchr(line, '#');
	char	   *end;

	if (hash)
		*hash = '\0';
	while (isspace((unsigned char) *line))
		line++;
	end = line + strlen(line);
	while (end > line && isspace((unsigned char) end[-1]))
		*--end = '\0';
	return line;
}

/*
 * Check a base64 key and copy it to out; NULL or why it is not a key.
 */
static const char *
take_key(const char *value, char out[WG_KEY_B64_SIZE])
{
	uint8_t		key[WG_KEY_LEN];
	wg_key_status st = wg_key_from_base64(key, value, NULL);

	if (st != WG_KEY_OK)
		return wg_key_status_message(st);
	memcpy(out, value, WG_KEY_B64_SIZE);
	return NULL;
}

/*
 * Read one "Key = Value" line of a [Peer] into peer; NULL or why not.
 */
static const char *
peer_line(wg_import_entry *peer, const char *key, const char *value)
{
	if (strcasecmp(key, "PublicKey") == 0)
		return take_key(value, peer->public_key);
	if (strcasecmp(key, "PresharedKey") == 0)
	{
		peer->has_preshared_key = true;
		return take_key(value, peer->preshared_key);
	}
	if (strcasecmp(key, "AllowedIPs") == 0)
	{
		size_t		used = strlen(peer->allowed_ips);

		if (used + strlen(value) + 3 > WG_IMPORT_IPS_MAX)
			return "AllowedIPs is too long";
		if (used > 0)
			strcat(peer->allowed_ips, ", ");
		strcat(peer->allowed_ips, value);
		return NULL;
	}
	if (strcasecmp(key, "PersistentKeepalive") == 0)
	{
		char	   *end;
		long		n;

		if (strcasecmp(value, "off") == 0)
		{
			peer->keepalive = 0;
			return NULL;
		}
		errno = 0;
		n = strtol(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0' || n < 0 || n > 65535)
			return "PersistentKeepalive must be 0 to 65535 seconds, or off";
		peer->keepalive = (int) n;
		return NULL;
	}
	if (strcasecmp(key, "Endpoint") == 0)
		return NULL;
	return "unknown key in a [Peer] section";
}

/*
 * Append an empty peer starting at line; NULL, or "out of memory".
 */
static wg_import_entry *
new_peer(wg_import *out, int line)
{
	wg_import_entry *peer;

	if (out->n_peers == out->cap_peers)
	{
		size_t		cap = out->cap_peers ? out->cap_peers * 2 : 16;
		wg_import_entry *p = realloc(out->peers, cap * sizeof(*p));

		if (p == NULL)
			return NULL;
		out->peers = p;
		out->cap_peers = cap;
	}
	peer = &out->peers[out->n_peers++];
	memset(peer, 0, sizeof(*peer));
	peer->keepalive = -1;
	peer->line = line;
	return peer;
}

/*
 * Parse text into out (zero-initialised by the caller).  Returns NULL, or
 * what is wrong with *line (1-based; the [Peer] line for a peer that ends
 * without a PublicKey).  On error out holds what was read so far; free it
 * with wg_import_free either way.
 */
const char *
wg_import_parse(const char *text, wg_import *out, int *line)
{
	section		in = SECTION_NONE;
	wg_import_entry *peer = NULL;
	const char *p = text;
	char		buf[LINE_MAX_LEN];

	*line = 0;
	while (*p)
	{
		const char *nl = strchr(p, '\n');
		size_t		len = nl ? (size_t) (nl - p) : strlen(p);
		char	   *s;
		char	   *eq;
		const char *why;

		(*line)++;
		if (len >= sizeof(buf))
			return "line too long";
		memcpy(buf, p, len);
		buf[len] = '\0';
		p += len + (nl ? 1 : 0);
		if (memchr(buf, '\0', len) != NULL)
			return "NUL byte in the config";
		s = trim(buf);
		if (*s == '\0')
			continue;
		if (*s == '[')
		{
			if (peer && peer->public_key[0] == '\0')
			{
				*line = peer->line;
				return "a [Peer] section has no PublicKey";
			}
			peer = NULL;
			if (strcasecmp(s, "[Interface]") == 0)
				in = SECTION_INTERFACE;
			else if (strcasecmp(s, "[Peer]") == 0)
			{
				in = SECTION_PEER;
				if ((peer = new_peer(out, *line)) == NULL)
					return "out of memory";
			}
			else
				return "unknown section";
			continue;
		}
		if ((eq = strchr(s, '=')) == NULL)
			return "a line is neither a section nor Key = Value";
		*eq = '\0';
		if (in == SECTION_NONE)
			return "a Key = Value line before any section";
		if (in == SECTION_INTERFACE)
			continue;
		if ((why = peer_line(peer, trim(s), trim(eq + 1))) != NULL)
			return why;
	}
	if (peer && peer->public_key[0] == '\0')
	{
		*line = peer->line;
		return "a [Peer] section has no PublicKey";
	}
	return NULL;
}

/* Free what wg_import_parse read. */
void
wg_import_free(wg_import *import)
{
	free(import->peers);
	memset(import, 0, sizeof(*import));
}
