/*
 * device.h
 *		The neutral model of a WireGuard device that both device backends
 *		share: what the worker asks an interface to change, and what an
 *		interface reports back.
 *
 * Pure C, no PostgreSQL headers.  A backend (netlink.h for the kernel,
 * uapi.h for a userspace daemon) includes this header and the core, never
 * the other backend, as wireguard-tools' ipc-linux.h and ipc-uapi.h share
 * only containers.h.
 */
#ifndef WGPEER_DEVICE_H
#define WGPEER_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "core/awg.h"
#include "core/keys.h"
#include "core/validate.h"

#define WG_IFNAME_SIZE 16		/* IFNAMSIZ, including the NUL */

/*
 * Most allowed IPs wgpeer gives one peer of an interface: its IPv4 and
 * IPv6 tunnel addresses and the routes behind it.
 */
#define WG_PEER_ALLOWEDIPS_MAX (2 + WG_PEER_PREFIXES_MAX)

/* One allowed IP: an IPv4 or IPv6 prefix. */
typedef struct wg_allowedip
{
	uint16_t	family;			/* AF_INET or AF_INET6 */
	uint8_t		cidr;			/* 0..32 or 0..128 */
	union
	{
		struct in_addr ip4;
		struct in6_addr ip6;
	}			addr;
} wg_allowedip;

/*
 * One peer change in a batch.
 *
 * An add (remove = false) creates the peer or updates it in place; its
 * allowed IPs replace whatever it had, so applying the same change twice
 * equals applying it once.  A removal only uses public_key (removing an
 * unknown peer succeeds).
 */
typedef struct wg_peer_change
{
	uint8_t		public_key[WG_KEY_LEN];
	bool		remove;
	bool		has_preshared_key;	/* send preshared_key; all zeros clears it */
	uint8_t		preshared_key[WG_KEY_LEN];
	int			keepalive;		/* seconds, 0 = off, -1 = leave unchanged */
	const wg_allowedip *allowedips;
	size_t		n_allowedips;
} wg_peer_change;

/* A batch for one interface: optional device settings, then peer changes. */
typedef struct wg_device_change
{
	const char *ifname;
	bool		has_private_key;
	uint8_t		private_key[WG_KEY_LEN];
	int			listen_port;	/* 0..65535, -1 = leave unchanged */
	const wg_awg *awg;			/* AmneziaWG parameters to set (a device
								 * setting, sent with the key and port), NULL:
								 * leave them */
	const wg_peer_change *peers;
	size_t		n_peers;
} wg_device_change;

/* A peer as the interface reports it. */
typedef struct wg_peer_info
{
	uint8_t		public_key[WG_KEY_LEN];
	uint8_t		preshared_key[WG_KEY_LEN];	/* all zeros: none */
	union
	{
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
		sa_family_t family;		/* AF_UNSPEC (0): no endpoint */
	}			endpoint;
	int64_t		last_handshake_sec; /* 0: never */
	int64_t		last_handshake_nsec;
	uint64_t	rx_bytes;
	uint64_t	tx_bytes;
	uint16_t	keepalive;		/* 0: off */
	wg_allowedip *allowedips;
	size_t		n_allowedips;
	size_t		cap_allowedips;
} wg_peer_info;

/* A device as the interface reports it; free with wg_device_free. */
typedef struct wg_device
{
	char		ifname[WG_IFNAME_SIZE];
	uint32_t	ifindex;
	bool		has_private_key;
	uint8_t		private_key[WG_KEY_LEN];
	bool		has_public_key;
	uint8_t		public_key[WG_KEY_LEN];
	uint16_t	listen_port;
	uint32_t	fwmark;
	bool		has_awg;		/* an AmneziaWG device: awg (whose i[] are
								 * NULL) and awg_i hold its parameters */
	wg_awg		awg;
	char		awg_i[WG_AWG_I_COUNT][WG_AWG_I_MAX + 1];	/* "" when unset */
	wg_peer_info *peers;
	size_t		n_peers;
	size_t		cap_peers;
} wg_device;

/*
 * Sends change to a device: the backend's set call, wrapped by the caller.
 * Returns 0 (or a count) or -errno; sets *at_open when the device could
 * not be reached at all.
 */
typedef int (*wg_device_setter) (void *arg, const wg_device_change *change,
								 bool *at_open);

/* Most sets one part of a batch may take to find the peers refused in it. */
#define WG_ISOLATE_MAX_SETS 64

/* What wg_device_apply_isolated found. */
typedef struct wg_apply_outcome
{
	int			device_rc;		/* -errno: the device failed as a whole */
	bool		at_open;		/* ... and could not even be reached */
	int			settings_rc;	/* -errno: private key, listen port or AWG
								 * parameters refused */
	size_t		refused;		/* peers refused (their peer_rc < 0) */
	unsigned int sets;			/* sets sent */
} wg_apply_outcome;

/* device.c */
extern size_t wg_allowedip_addr_len(uint16_t family);
extern bool wg_allowedip_valid(const wg_allowedip *a);
extern int	wg_device_change_validate(const wg_device_change *change);
extern int	wg_device_grow(void **items, size_t n, size_t *cap, size_t elem);
extern void wg_device_free(wg_device *device);
extern void wg_device_awg(const wg_device *device, wg_awg *out);

/* isolate.c */
extern int	wg_device_apply_isolated(const wg_device_change *change,
									 wg_device_setter set, void *arg,
									 int *peer_rc, wg_apply_outcome *out);

#endif							/* WGPEER_DEVICE_H */
