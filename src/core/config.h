/*
 * config.h
 *		Rendering of a client's wg-quick configuration, and of a server's
 *		configuration in the `wg setconf` format.
 *
 * Pure C, no PostgreSQL headers, so it can be unit-tested and fuzzed.
 */
#ifndef WGPEER_CONFIG_H
#define WGPEER_CONFIG_H

#include <stddef.h>

#include "core/awg.h"

/*
 * Everything that goes into one client config.  Strings are NUL-terminated;
 * optional ones are NULL when absent, optional numbers 0.
 */
typedef struct wg_client_config
{
	const char *private_key;	/* NULL: the client keeps its own key */
	const char *public_key;		/* the client's, named when private_key is
								 * NULL */
	const char *address;		/* "10.10.0.2/32" */
	const char *address6;		/* "fd00::2/128" or NULL */
	const char *dns;			/* "1.1.1.1, 8.8.8.8" or NULL */
	int			mtu;
	const char *server_public_key;
	const char *preshared_key;	/* or NULL */
	const char *endpoint;		/* "host:port" */
	const char *allowed_ips;	/* "0.0.0.0/0, ::/0" */
	int			persistent_keepalive;
	const wg_awg *awg;			/* AmneziaWG parameters, NULL for plain
								 * WireGuard */
} wg_client_config;

extern int	wg_config_render(const wg_client_config *cfg, char *buf, size_t size);

/* One peer of a server's wg setconf file. */
typedef struct wg_server_peer
{
	const char *public_key;
	const char *preshared_key;	/* or NULL */
	const char *address;		/* "10.10.0.2/32" */
	const char *address6;		/* "fd00::2/128" or NULL */
	const char *routes;			/* "192.168.77.0/24, ..." behind the peer,
								 * or NULL */
	int			persistent_keepalive;	/* 0: off */
} wg_server_peer;

/*
 * A server interface as `wg setconf` / `wg syncconf` read it (`awg
 * setconf`, `awg syncconf` and `awg-quick` for an AmneziaWG one).
 */
typedef struct wg_server_config
{
	const char *interface;		/* named in the header comment */
	const char *private_key;	/* NULL when kept outside the database */
	int			listen_port;
	const wg_server_peer *peers;
	int			n_peers;
	const wg_awg *awg;			/* an AmneziaWG interface's parameters (its
								 * own, no client's profile), NULL for plain
								 * WireGuard */
} wg_server_config;

extern int	wg_server_config_render(const wg_server_config *cfg, char *buf,
									size_t size);

#endif							/* WGPEER_CONFIG_H */
