/*
 * netlink.h
 *		Kernel WireGuard over generic netlink (libmnl): apply peer changes to
 *		an interface and read its live state back.
 *
 * Pure C, no PostgreSQL headers: every function returns 0 (or a count) on
 * success and -errno on failure, never prints and never exits.
 *
 * Two layers:
 *	- message building and parsing (wgnl_build_*, wgnl_parse_*, wgnl_dump_*)
 *	  work on caller buffers and never touch a socket, so they are unit-tested
 *	  without a kernel;
 *	- wgnl_open / wgnl_set_device / wgnl_get_device do the socket I/O with
 *	  them.  Every receive is bounded by the socket timeout given to
 *	  wgnl_open, so no call can hang.
 */
#ifndef WGPEER_NETLINK_H
#define WGPEER_NETLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#define WGNL_KEY_LEN 32
#define WGNL_IFNAME_SIZE 16		/* IFNAMSIZ, including the NUL */

/*
 * Largest WG_CMD_SET_DEVICE message we send.  The kernel accepts more, but
 * like wireguard-tools we stay within one page so no allocation can fail.
 */
#define WGNL_SET_MSG_MAX 8192

/* One allowed IP: an IPv4 or IPv6 prefix. */
typedef struct wgnl_allowedip
{
	uint16_t	family;			/* AF_INET or AF_INET6 */
	uint8_t		cidr;			/* 0..32 or 0..128 */
	union
	{
		struct in_addr ip4;
		struct in6_addr ip6;
	}			addr;
} wgnl_allowedip;

/*
 * One peer change in a WG_CMD_SET_DEVICE batch.
 *
 * An add (remove = false) creates the peer or updates it in place; its
 * allowed IPs replace whatever it had (WGPEER_F_REPLACE_ALLOWEDIPS), so
 * applying the same change twice equals applying it once.  A removal only
 * uses public_key (WGPEER_F_REMOVE_ME; removing an unknown peer succeeds).
 */
typedef struct wgnl_peer_change
{
	uint8_t		public_key[WGNL_KEY_LEN];
	bool		remove;
	bool		has_preshared_key;	/* send preshared_key; all zeros clears it */
	uint8_t		preshared_key[WGNL_KEY_LEN];
	int			keepalive;		/* seconds, 0 = off, -1 = leave unchanged */
	const wgnl_allowedip *allowedips;
	size_t		n_allowedips;
} wgnl_peer_change;

/* A batch for one interface: optional device settings, then peer changes. */
typedef struct wgnl_device_change
{
	const char *ifname;
	bool		has_private_key;
	uint8_t		private_key[WGNL_KEY_LEN];
	int			listen_port;	/* 0..65535, -1 = leave unchanged */
	const wgnl_peer_change *peers;
	size_t		n_peers;
} wgnl_device_change;

/*
 * Where wgnl_build_set stopped: the next peer, the next of its allowed IPs,
 * and whether that peer was already started in an earlier message (then it
 * is continued with only its public key, WGPEER_F_UPDATE_ONLY, and its
 * remaining allowed IPs, without replacing again).  Zero-initialise it.
 */
typedef struct wgnl_set_cursor
{
	size_t		peer;
	size_t		allowedip;
	bool		continuing;
	unsigned int messages;		/* messages built so far */
} wgnl_set_cursor;

/* A peer as the kernel reports it. */
typedef struct wgnl_peer_info
{
	uint8_t		public_key[WGNL_KEY_LEN];
	uint8_t		preshared_key[WGNL_KEY_LEN];	/* all zeros: none */
	union
	{
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
		sa_family_t family;		/* AF_UNSPEC (0): no endpoint */
	}			endpoint;
	int64_t		last_handshake_sec;	/* 0: never */
	int64_t		last_handshake_nsec;
	uint64_t	rx_bytes;
	uint64_t	tx_bytes;
	uint16_t	keepalive;		/* 0: off */
	wgnl_allowedip *allowedips;
	size_t		n_allowedips;
	size_t		cap_allowedips;
} wgnl_peer_info;

/* A device as the kernel reports it; free with wgnl_device_free. */
typedef struct wgnl_device
{
	char		ifname[WGNL_IFNAME_SIZE];
	uint32_t	ifindex;
	bool		has_private_key;
	uint8_t		private_key[WGNL_KEY_LEN];
	bool		has_public_key;
	uint8_t		public_key[WGNL_KEY_LEN];
	uint16_t	listen_port;
	uint32_t	fwmark;
	wgnl_peer_info *peers;
	size_t		n_peers;
	size_t		cap_peers;
} wgnl_device;

/*
 * State of one WG_CMD_GET_DEVICE dump being received: fed datagram by
 * datagram with wgnl_dump_feed.  Zero-initialise, then set seq and portid.
 */
typedef struct wgnl_dump
{
	uint32_t	seq;
	uint32_t	portid;
	bool		interrupted;	/* NLM_F_DUMP_INTR seen: redo the dump */
	wgnl_device device;
} wgnl_dump;

typedef struct wgnl_ctx wgnl_ctx;

/* Validation, message building and parsing: no socket. */
extern int	wgnl_validate_change(const wgnl_device_change *change);
extern int	wgnl_build_set(void *buf, size_t size, uint16_t family_id,
						   uint32_t seq, const wgnl_device_change *change,
						   wgnl_set_cursor *cursor);
extern int	wgnl_build_get(void *buf, size_t size, uint16_t family_id,
						   uint32_t seq, const char *ifname);
extern int	wgnl_build_resolve(void *buf, size_t size, uint32_t seq);
extern int	wgnl_parse_resolve(const void *buf, size_t len, uint32_t seq,
							   uint32_t portid, uint16_t *family_id);
extern int	wgnl_parse_ack(const void *buf, size_t len, uint32_t seq,
						   uint32_t portid);
extern int	wgnl_dump_feed(wgnl_dump *dump, const void *buf, size_t len);
extern void wgnl_device_free(wgnl_device *device);
extern int	wgnl_grow(void **items, size_t n, size_t *cap, size_t elem);

/* Socket I/O. */
extern int	wgnl_open(wgnl_ctx **ctx, int timeout_ms);
extern void wgnl_close(wgnl_ctx *ctx);
extern int	wgnl_set_device(wgnl_ctx *ctx, const wgnl_device_change *change);
extern int	wgnl_get_device(wgnl_ctx *ctx, const char *ifname,
							wgnl_device *device);

#endif							/* WGPEER_NETLINK_H */
