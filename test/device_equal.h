/*
 * device_equal.h
 *		Comparing what the device backends report, field by field: the
 *		round-trip checks of the netlink and UAPI parsers (unit tests and
 *		fuzzers) and the diff fuzzer's device model compare with it.
 *
 * Header-only (static inline), like helpers.h.
 */
#ifndef WGPEER_TEST_DEVICE_EQUAL_H
#define WGPEER_TEST_DEVICE_EQUAL_H

#include <stdbool.h>
#include <string.h>

#include "device/device.h"

/*
 * Are a and b the same prefix: family, length and the address bytes of
 * that family?
 */
static inline bool
allowedip_equal(const wg_allowedip *a, const wg_allowedip *b)
{
	return a->family == b->family && a->cidr == b->cidr &&
		memcmp(&a->addr, &b->addr, wg_allowedip_addr_len(a->family)) == 0;
}

/*
 * Are two reported endpoints the same: no endpoint on both, or the same
 * family and the same socket address of that family.
 */
static inline bool
endpoint_equal(const wg_peer_info *a, const wg_peer_info *b)
{
	if (a->endpoint.family != b->endpoint.family)
		return false;
	if (a->endpoint.family == AF_INET)
		return memcmp(&a->endpoint.in4, &b->endpoint.in4,
					  sizeof(a->endpoint.in4)) == 0;
	if (a->endpoint.family == AF_INET6)
		return memcmp(&a->endpoint.in6, &b->endpoint.in6,
					  sizeof(a->endpoint.in6)) == 0;
	return true;
}

/* Are two reported peers equal, allowed IPs in the same order? */
static inline bool
peer_info_equal(const wg_peer_info *a, const wg_peer_info *b)
{
	if (memcmp(a->public_key, b->public_key, WG_KEY_LEN) != 0 ||
		memcmp(a->preshared_key, b->preshared_key, WG_KEY_LEN) != 0 ||
		!endpoint_equal(a, b) ||
		a->last_handshake_sec != b->last_handshake_sec ||
		a->last_handshake_nsec != b->last_handshake_nsec ||
		a->rx_bytes != b->rx_bytes || a->tx_bytes != b->tx_bytes ||
		a->keepalive != b->keepalive || a->n_allowedips != b->n_allowedips)
		return false;
	for (size_t i = 0; i < a->n_allowedips; i++)
		if (!allowedip_equal(&a->allowedips[i], &b->allowedips[i]))
			return false;
	return true;
}

/*
 * Are two reported devices equal, peers in the same order?  The UAPI
 * reports no ifindex and names no interface, so with_ifname false leaves
 * both out.
 */
static inline bool
device_equal(const wg_device *a, const wg_device *b, bool with_ifname)
{
	if (with_ifname &&
		(strcmp(a->ifname, b->ifname) != 0 || a->ifindex != b->ifindex))
		return false;
	if (a->has_private_key != b->has_private_key ||
		(a->has_private_key &&
		 memcmp(a->private_key, b->private_key, WG_KEY_LEN) != 0) ||
		a->has_public_key != b->has_public_key ||
		(a->has_public_key &&
		 memcmp(a->public_key, b->public_key, WG_KEY_LEN) != 0) ||
		a->listen_port != b->listen_port || a->fwmark != b->fwmark ||
		a->n_peers != b->n_peers)
		return false;
	for (size_t i = 0; i < a->n_peers; i++)
		if (!peer_info_equal(&a->peers[i], &b->peers[i]))
			return false;
	return true;
}

#endif							/* WGPEER_TEST_DEVICE_EQUAL_H */
