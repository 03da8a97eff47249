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
 *	  and fuzzed without a kernel.  The messages are read and written in
 *	  place: a buffer must be aligned for struct nlmsghdr (as malloc's and
 *	  an alignas one are), or the call fails with -EINVAL;
 *	- wgnl_open / wgnl_set_device / wgnl_get_device do the socket I/O with
 *	  them.  Every receive is bounded by the socket timeout given to
 *	  wgnl_open, so no call can hang.
 */
#ifndef WGPEER_NETLINK_H
#define WGPEER_NETLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device/device.h"

/*
 * Largest WG_CMD_SET_DEVICE message we send.  The kernel accepts more, but
 * like wireguard-tools we stay within one page so no allocation can fail.
 */
#define WGNL_SET_MSG_MAX 8192

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

/*
 * State of one WG_CMD_GET_DEVICE dump being received: fed datagram by
 * datagram with wgnl_dump_feed.  Zero-initialise, then set seq and portid.
 */
typedef struct wgnl_dump
{
	uint32_t	seq;
	uint32_t	portid;
	bool		interrupted;	/* NLM_F_DUMP_INTR seen: redo the dump */
	wg_device device;
} wgnl_dump;

typedef struct wgnl_ctx wgnl_ctx;

/* Validation, message building and parsing: no socket. */
extern int	wgnl_build_set(void *buf, size_t size, uint16_t family_id,
						   uint32_t seq, const wg_device_change *change,
						   wgnl_set_cursor *cursor);
extern int	wgnl_build_set_awg(void *buf, size_t size, uint16_t family_id,
							   uint32_t awg_version, uint32_t seq,
							   const wg_device_change *change,
							   wgnl_set_cursor *cursor);
extern int	wgnl_build_get(void *buf, size_t size, uint16_t family_id,
						   uint32_t seq, const char *ifname);
extern int	wgnl_build_resolve(void *buf, size_t size, uint32_t seq);
extern int	wgnl_build_resolve_name(void *buf, size_t size, uint32_t seq,
									const char *name);
extern int	wgnl_parse_resolve(const void *buf, size_t len, uint32_t seq,
							   uint32_t portid, uint16_t *family_id);
extern int	wgnl_parse_resolve_version(const void *buf, size_t len,
									   uint32_t seq, uint32_t portid,
									   uint16_t *family_id, uint32_t *version);
extern int	wgnl_parse_ack(const void *buf, size_t len, uint32_t seq,
						   uint32_t portid);
extern int	wgnl_dump_feed(wgnl_dump *dump, const void *buf, size_t len);

/* Socket I/O. */
extern int	wgnl_open(wgnl_ctx **ctx, int timeout_ms);
extern void wgnl_close(wgnl_ctx *ctx);
extern int	wgnl_set_device(wgnl_ctx *ctx, const wg_device_change *change);
extern int	wgnl_get_device(wgnl_ctx *ctx, const char *ifname,
							wg_device *device);

#endif							/* WGPEER_NETLINK_H */
