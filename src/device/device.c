/*
 * device.c
 *		The device model both backends share: checking a batch before it is
 *		sent, growing the arrays a reported device is built in, and freeing
 *		one.
 */
#include "device/device.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of address for an allowed IP's family, 0 for an unknown family. */
size_t
wg_allowedip_addr_len(uint16_t family)
{
	if (family == AF_INET)
		return sizeof(struct in_addr);
	if (family == AF_INET6)
		return sizeof(struct in6_addr);
	return 0;
}

/* Is a a well-formed prefix (known family, mask within the address)? */
bool
wg_allowedip_valid(const wg_allowedip *a)
{
	size_t		len = wg_allowedip_addr_len(a->family);

	return len > 0 && a->cidr <= len * 8;
}

/*
 * Check a batch before anything is sent, so that a bad entry in the middle
 * cannot leave the interface half-updated (AmneziaWG parameters included,
 * as wg_awg_check() accepts them).  Returns 0 or -EINVAL.
 */
int
wg_device_change_validate(const wg_device_change *change)
{
	size_t		i;
	size_t		j;
	size_t		len;

	if (change == NULL || change->ifname == NULL)
		return -EINVAL;
	len = strlen(change->ifname);
	if (len == 0 || len >= WG_IFNAME_SIZE)
		return -EINVAL;
	if (change->listen_port < -1 || change->listen_port > 65535)
		return -EINVAL;
	if (change->n_peers > 0 && change->peers == NULL)
		return -EINVAL;
	if (change->awg != NULL)
	{
		const char *field;
		char		why[WG_AWG_REASON_SIZE];

		if (wg_awg_check(change->awg, &field, why, sizeof(why)) != NULL)
			return -EINVAL;
	}
	for (i = 0; i < change->n_peers; i++)
	{
		const wg_peer_change *p = &change->peers[i];

		if (p->remove)
			continue;
		if (p->keepalive < -1 || p->keepalive > 65535)
			return -EINVAL;
		if (p->n_allowedips > 0 && p->allowedips == NULL)
			return -EINVAL;
		for (j = 0; j < p->n_allowedips; j++)
			if (!wg_allowedip_valid(&p->allowedips[j]))
				return -EINVAL;
	}
	return 0;
}

/*
 * Grow an array of elem-sized items to hold one more; -ENOMEM on failure.
 * Both backends build a wg_device with it.
 */
int
wg_device_grow(void **items, size_t n, size_t *cap, size_t elem)
{
	size_t		newcap;
	void	   *p;

	if (n < *cap)
		return 0;
	newcap = *cap ? *cap * 2 : 8;
	p = realloc(*items, newcap * elem);
	if (p == NULL)
		return -ENOMEM;
	*items = p;
	*cap = newcap;
	return 0;
}

/*
 * Free what a backend reported into device; wipe the keys.  Only the
 * peers reported, and the one a parse may have begun after them, are
 * wiped: the rest of the array was never written, and touching it would
 * fault in pages for nothing.
 */
void
wg_device_free(wg_device *device)
{
	size_t		i;

	for (i = 0; i < device->n_peers; i++)
		free(device->peers[i].allowedips);
	if (device->peers != NULL)
		explicit_bzero(device->peers,
					   (device->n_peers < device->cap_peers ?
						device->n_peers + 1 : device->cap_peers) *
					   sizeof(wg_peer_info));
	free(device->peers);
	explicit_bzero(device, sizeof(*device));
}


/*
 * The AmneziaWG parameters a device reported, with its signature packets
 * pointing into device (valid while it is).
 */
void
wg_device_awg(const wg_device *device, wg_awg *out)
{
	*out = device->awg;
	for (int k = 0; k < WG_AWG_I_COUNT; k++)
		out->i[k] = device->awg_i[k][0] ? device->awg_i[k] : NULL;
}
