/*
 * diff.c
 *		Diff the desired peers of an interface against its live device.
 *
 * Both sides are sorted by public key and merged, so the diff costs
 * O(n log n) for n peers.  A reconcile that finds nothing to do returns
 * no changes at all: nothing is re-sent, no handshake is reset.
 */
#include "device/diff.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* qsort/bsearch order of 32-byte keys (the key is the first member). */
static int
key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, WG_KEY_LEN);
}

/* qsort order of device peers by public key. */
static int
peer_info_cmp(const void *a, const void *b)
{
	return memcmp(((const wg_peer_info *) a)->public_key,
				  ((const wg_peer_info *) b)->public_key, WG_KEY_LEN);
}

/*
 * Sort n items with qsort, which must not be given a NULL array even when
 * it is empty (the C library declares it nonnull): an empty device or
 * database comes as NULL and 0.  Items already in order are left as they
 * are: a reconcile sorts the device's peers before the diff does, and
 * glibc's qsort would move every 160-byte peer again, n log n times.
 */
static void
sort_items(void *items, size_t n, size_t size,
		   int (*cmp) (const void *, const void *))
{
	const char *p = items;
	size_t		i = 1;

	while (i < n && cmp(p + (i - 1) * size, p + i * size) <= 0)
		i++;
	if (i < n)
		qsort(items, n, size, cmp);
}

/* Two allowed IPs are the same prefix. */
static bool
allowedip_equal(const wg_allowedip *a, const wg_allowedip *b)
{
	if (a->family != b->family || a->cidr != b->cidr)
		return false;
	if (a->family == AF_INET)
		return memcmp(&a->addr.ip4, &b->addr.ip4, sizeof(a->addr.ip4)) == 0;
	return memcmp(&a->addr.ip6, &b->addr.ip6, sizeof(a->addr.ip6)) == 0;
}

/* Is ip among the n allowed IPs of list? */
static bool
allowedip_in(const wg_allowedip *ip, const wg_allowedip *list, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (allowedip_equal(ip, &list[k]))
			return true;
	return false;
}

/*
 * Does the live peer match the desired one: same preshared key, keepalive
 * and set of allowed IPs?  The sets are compared both ways, in whatever
 * order either side lists them: a device that reports a prefix twice (a
 * UAPI daemon repeating one) matches when the sets are the same.  At most
 * WG_PEER_ALLOWEDIPS_MAX desired IPs keep the quadratic check cheap.
 */
static bool
peer_matches(const wg_desired_peer *want, const wg_peer_info *have)
{
	if (memcmp(want->preshared_key, have->preshared_key, WG_KEY_LEN) != 0 ||
		want->keepalive != (int) have->keepalive)
		return false;
	for (size_t i = 0; i < want->n_allowedips; i++)
		if (!allowedip_in(&want->allowedips[i], have->allowedips,
						  have->n_allowedips))
			return false;
	for (size_t k = 0; k < have->n_allowedips; k++)
		if (!allowedip_in(&have->allowedips[k], want->allowedips,
						  want->n_allowedips))
			return false;
	return true;
}

/*
 * Sort the device's peers by public key, for wg_device_find_peer().
 */
void
wg_device_sort_peers(wg_device *device)
{
	sort_items(device->peers, device->n_peers, sizeof(*device->peers),
			   peer_info_cmp);
}

/*
 * The device peer with public key key, or NULL; the peers must be sorted
 * (wg_device_sort_peers).
 */
wg_peer_info *
wg_device_find_peer(const wg_device *device, const uint8_t key[WG_KEY_LEN])
{
	if (device->n_peers == 0)
		return NULL;
	return bsearch(key, device->peers, device->n_peers,
				   sizeof(*device->peers), key_cmp);
}

/*
 * Does the device peer hold exactly the prefix ip among its allowed IPs?
 */
bool
wg_peer_holds(const wg_peer_info *peer, const wg_allowedip *ip)
{
	return allowedip_in(ip, peer->allowedips, peer->n_allowedips);
}

/*
 * May the device peer be the wgpeer peer whose own tunnel address (/32)
 * is own, put there by wgpeer although wgpeer has no record of it?  Yes
 * when it holds that address (the pool handed it to that peer: an apply
 * whose outcome a crash kept from being recorded), or no allowed IP at
 * all (a set cut short by a crash: the key arrived, the rest did not;
 * such a peer routes nothing).  Any other peer is someone else's.
 */
bool
wg_peer_may_be(const wg_peer_info *peer, const wg_allowedip *own)
{
	return peer->n_allowedips == 0 || wg_peer_holds(peer, own);
}

/*
 * The index past the device peers (sorted) that share peer j's key.  A
 * device holds one peer per key, but a report from outside bytes may list
 * a key twice (a UAPI daemon repeating a peer); such a key is diffed once,
 * and matches only if every copy does, so a desired peer is never removed
 * and never left wrong because of a second copy.
 */
static size_t
same_key_end(const wg_device *device, size_t j)
{
	size_t		end = j + 1;

	while (end < device->n_peers &&
		   memcmp(device->peers[end].public_key, device->peers[j].public_key,
				  WG_KEY_LEN) == 0)
		end++;
	return end;
}

/* The change that puts a desired peer on the device as it should be. */
static void
add_change(wg_peer_change *c, const wg_desired_peer *want)
{
	memset(c, 0, sizeof(*c));
	memcpy(c->public_key, want->public_key, WG_KEY_LEN);
	c->has_preshared_key = true;
	memcpy(c->preshared_key, want->preshared_key, WG_KEY_LEN);
	c->keepalive = want->keepalive;
	c->allowedips = want->allowedips;
	c->n_allowedips = want->n_allowedips;
}

/*
 * Compute the changes that make device match desired.  Peers on the device
 * that are not desired are removed when their key is in known (peers the
 * database revoked or expired) or when the interface is exclusive; other
 * such peers (a hand-made link, say) are left alone and counted as
 * foreign.  changes must have room for n_desired + device->n_peers
 * entries; the added ones point into desired, which must outlive them.
 * Sorts desired, device->peers and known in place.  Returns 0, or -EINVAL
 * for a desired peer with more than WG_PEER_ALLOWEDIPS_MAX allowed IPs or
 * none to point to.
 */
int
wg_peer_diff(wg_desired_peer *desired, size_t n_desired,
				  wg_device *device,
				  uint8_t (*known)[WG_KEY_LEN], size_t n_known,
				  bool exclusive,
				  wg_peer_change *changes, size_t *n_changes,
				  wg_diff_stats *stats)
{
	size_t		i = 0;
	size_t		j = 0;
	size_t		n = 0;

	memset(stats, 0, sizeof(*stats));
	for (size_t k = 0; k < n_desired; k++)
		if (desired[k].n_allowedips > WG_PEER_ALLOWEDIPS_MAX ||
			(desired[k].n_allowedips > 0 && desired[k].allowedips == NULL))
			return -EINVAL;
	sort_items(desired, n_desired, sizeof(*desired), key_cmp);
	sort_items(device->peers, device->n_peers, sizeof(*device->peers),
			   peer_info_cmp);
	sort_items(known, n_known, sizeof(*known), key_cmp);

	while (i < n_desired || j < device->n_peers)
	{
		int			cmp;

		if (i == n_desired)
			cmp = 1;
		else if (j == device->n_peers)
			cmp = -1;
		else
			cmp = memcmp(desired[i].public_key, device->peers[j].public_key,
						 WG_KEY_LEN);
		if (cmp == 0)
		{
			size_t		end = same_key_end(device, j);
			bool		matches = true;

			for (; j < end; j++)
				matches &= peer_matches(&desired[i], &device->peers[j]);
			if (!matches)
			{
				add_change(&changes[n++], &desired[i]);
				stats->corrected++;
			}
			i++;
		}
		else if (cmp < 0)
		{
			add_change(&changes[n++], &desired[i++]);
			stats->added++;
		}
		else
		{
			const uint8_t *key = device->peers[j].public_key;

			j = same_key_end(device, j);

			if (exclusive ||
				(n_known > 0 &&
				 bsearch(key, known, n_known, sizeof(*known), key_cmp)))
			{
				memset(&changes[n], 0, sizeof(changes[n]));
				memcpy(changes[n].public_key, key, WG_KEY_LEN);
				changes[n++].remove = true;
				stats->removed++;
			}
			else
				stats->foreign++;
		}
	}
	*n_changes = n;
	return 0;
}
