/*
 * diff.h
 *		The difference between the peers an interface should have and the
 *		peers it has, as the smallest set of changes that repairs it.
 *
 * Pure C, no PostgreSQL headers, no I/O: the worker reads the desired
 * peers from the database and the device from the kernel, and applies
 * what wg_peer_diff() returns.
 */
#ifndef WGPEER_DIFF_H
#define WGPEER_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device/device.h"

/*
 * A peer the database says should be on the interface.  Its allowed IPs
 * (tunnel addresses and routes, at most WG_PEER_ALLOWEDIPS_MAX, distinct,
 * in any order) belong to the caller and must outlive the changes.
 */
typedef struct wg_desired_peer
{
	uint8_t		public_key[WG_KEY_LEN];
	uint8_t		preshared_key[WG_KEY_LEN];	/* all zeros: none */
	int			keepalive;		/* seconds, 0 = off */
	const wg_allowedip *allowedips;
	size_t		n_allowedips;
} wg_desired_peer;

/* What the diff found, besides the changes. */
typedef struct wg_diff_stats
{
	size_t		added;			/* desired, absent from the device */
	size_t		corrected;		/* present with other settings */
	size_t		removed;		/* on the device, known and not desired */
	size_t		foreign;		/* on the device, unknown, left alone */
} wg_diff_stats;

extern int	wg_peer_diff(wg_desired_peer *desired, size_t n_desired,
							  wg_device *device,
							  uint8_t (*known)[WG_KEY_LEN], size_t n_known,
							  bool exclusive,
							  wg_peer_change *changes, size_t *n_changes,
							  wg_diff_stats *stats);

extern void wg_device_sort_peers(wg_device *device);
extern wg_peer_info *wg_device_find_peer(const wg_device *device,
										 const uint8_t key[WG_KEY_LEN]);
extern bool wg_peer_holds(const wg_peer_info *peer, const wg_allowedip *ip);
extern bool wg_peer_may_be(const wg_peer_info *peer, const wg_allowedip *own);

#endif							/* WGPEER_DIFF_H */
