/*
 * netlink_dump.h
 *		A wg_device written as the kernel dumps it (WG_CMD_GET_DEVICE): what
 *		the netlink unit test and fuzzer parse back and compare with the
 *		device they started from.
 *
 * Header-only (static inline), like helpers.h.  Needs libmnl.
 */
#ifndef WGPEER_TEST_NETLINK_DUMP_H
#define WGPEER_TEST_NETLINK_DUMP_H

#include <stdbool.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>

#include "device/device.h"

/* Put one allowed IP nest within size; false (nothing added) if it does not fit. */
static inline bool
nl_dump_put_allowedip(struct nlmsghdr *nlh, size_t size, const wg_allowedip *a)
{
	struct nlattr *nest = mnl_attr_nest_start_check(nlh, size, 0);

	if (nest == NULL)
		return false;
	if (!mnl_attr_put_u16_check(nlh, size, WGALLOWEDIP_A_FAMILY, a->family) ||
		!mnl_attr_put_check(nlh, size, WGALLOWEDIP_A_IPADDR,
							wg_allowedip_addr_len(a->family), &a->addr) ||
		!mnl_attr_put_u8_check(nlh, size, WGALLOWEDIP_A_CIDR_MASK, a->cidr))
	{
		mnl_attr_nest_cancel(nlh, nest);
		return false;
	}
	mnl_attr_nest_end(nlh, nest);
	return true;
}

/*
 * Put the attributes of a peer's first part, all but its allowed IPs;
 * false if they do not fit.
 */
static inline bool
nl_dump_put_peer_head(struct nlmsghdr *nlh, size_t size, const wg_peer_info *p)
{
	struct __kernel_timespec ts;

	memset(&ts, 0, sizeof(ts));
	ts.tv_sec = p->last_handshake_sec;
	ts.tv_nsec = p->last_handshake_nsec;
	if (!mnl_attr_put_check(nlh, size, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN,
							p->preshared_key) ||
		!mnl_attr_put_check(nlh, size, WGPEER_A_LAST_HANDSHAKE_TIME,
							sizeof(ts), &ts) ||
		!mnl_attr_put_u16_check(nlh, size,
								WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
								p->keepalive) ||
		!mnl_attr_put_u64_check(nlh, size, WGPEER_A_RX_BYTES, p->rx_bytes) ||
		!mnl_attr_put_u64_check(nlh, size, WGPEER_A_TX_BYTES, p->tx_bytes) ||
		!mnl_attr_put_u32_check(nlh, size, WGPEER_A_PROTOCOL_VERSION, 1))
		return false;
	if (p->endpoint.family == AF_INET)
		return mnl_attr_put_check(nlh, size, WGPEER_A_ENDPOINT,
								  sizeof(p->endpoint.in4), &p->endpoint.in4);
	if (p->endpoint.family == AF_INET6)
		return mnl_attr_put_check(nlh, size, WGPEER_A_ENDPOINT,
								  sizeof(p->endpoint.in6), &p->endpoint.in6);
	return true;
}

/* Put the device's own attributes; false if they do not fit. */
static inline bool
nl_dump_put_device(struct nlmsghdr *nlh, size_t size, const wg_device *dev)
{
	if (!mnl_attr_put_u32_check(nlh, size, WGDEVICE_A_IFINDEX, dev->ifindex) ||
		(dev->ifname[0] != '\0' &&
		 !mnl_attr_put_strz_check(nlh, size, WGDEVICE_A_IFNAME, dev->ifname)) ||
		(dev->has_private_key &&
		 !mnl_attr_put_check(nlh, size, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN,
							 dev->private_key)) ||
		(dev->has_public_key &&
		 !mnl_attr_put_check(nlh, size, WGDEVICE_A_PUBLIC_KEY, WG_KEY_LEN,
							 dev->public_key)) ||
		!mnl_attr_put_u16_check(nlh, size, WGDEVICE_A_LISTEN_PORT,
								dev->listen_port) ||
		!mnl_attr_put_u32_check(nlh, size, WGDEVICE_A_FWMARK, dev->fwmark))
		return false;
	return true;
}

/*
 * Write dev into buf (size bytes, aligned) as the kernel's dump answering
 * request seq of portid: messages of at most msg_size bytes, the device's
 * attributes in the first, as many peers in each as fit; a peer whose
 * allowed IPs do not fit is cut, and its next part opens the next message
 * with its public key and the remaining allowed IPs only.  NLMSG_DONE
 * ends it.  Returns the length of the whole dump, or 0 when buf is too
 * small or msg_size cannot hold one piece.
 */
static inline size_t
nl_dump_device(void *buf, size_t size, size_t msg_size, uint16_t family_id,
			   uint32_t seq, uint32_t portid, const wg_device *dev)
{
	size_t		off = 0;
	size_t		peer = 0;
	size_t		ip = 0;
	bool		continuing = false;
	bool		first = true;
	struct nlmsghdr *nlh;
	int		   *done;

	while (first || peer < dev->n_peers)
	{
		size_t		limit = size - off < msg_size ? size - off : msg_size;
		struct genlmsghdr *genl;
		struct nlattr *peers;
		bool		progress = false;

		if (limit < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(*genl)))
			return 0;
		nlh = mnl_nlmsg_put_header((char *) buf + off);
		nlh->nlmsg_type = family_id;
		nlh->nlmsg_flags = NLM_F_MULTI;
		nlh->nlmsg_seq = seq;
		nlh->nlmsg_pid = portid;
		genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
		genl->cmd = WG_CMD_GET_DEVICE;
		genl->version = WG_GENL_VERSION;
		if (first && !nl_dump_put_device(nlh, limit, dev))
			return 0;
		peers = mnl_attr_nest_start_check(nlh, limit, WGDEVICE_A_PEERS);
		while (peers != NULL && peer < dev->n_peers)
		{
			const wg_peer_info *p = &dev->peers[peer];
			struct nlattr *nest = mnl_attr_nest_start_check(nlh, limit, 0);
			struct nlattr *ips;
			size_t		placed = 0;

			if (nest == NULL ||
				!mnl_attr_put_check(nlh, limit, WGPEER_A_PUBLIC_KEY,
									WG_KEY_LEN, p->public_key) ||
				(!continuing && !nl_dump_put_peer_head(nlh, limit, p)))
			{
				if (nest != NULL)
					mnl_attr_nest_cancel(nlh, nest);
				break;
			}
			ips = ip < p->n_allowedips ?
				mnl_attr_nest_start_check(nlh, limit, WGPEER_A_ALLOWEDIPS) : NULL;
			while (ips != NULL && ip + placed < p->n_allowedips &&
				   nl_dump_put_allowedip(nlh, limit, &p->allowedips[ip + placed]))
				placed++;
			if (ips != NULL && placed > 0)
				mnl_attr_nest_end(nlh, ips);
			else if (ips != NULL)
				mnl_attr_nest_cancel(nlh, ips);
			if (continuing && placed == 0)
			{
				/* a continuation carries allowed IPs, or is not sent */
				mnl_attr_nest_cancel(nlh, nest);
				break;
			}
			mnl_attr_nest_end(nlh, nest);
			progress = true;
			ip += placed;
			if (ip < p->n_allowedips)
			{
				continuing = true;
				break;
			}
			peer++;
			ip = 0;
			continuing = false;
		}
		if (peers != NULL && progress)
			mnl_attr_nest_end(nlh, peers);
		else if (peers != NULL)
			mnl_attr_nest_cancel(nlh, peers);
		if (!progress && !first)
			return 0;
		off += MNL_ALIGN(nlh->nlmsg_len);
		first = false;
	}

	if (size - off < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(int)))
		return 0;
	nlh = mnl_nlmsg_put_header((char *) buf + off);
	nlh->nlmsg_type = NLMSG_DONE;
	nlh->nlmsg_flags = NLM_F_MULTI;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = portid;
	done = mnl_nlmsg_put_extra_header(nlh, sizeof(int));
	*done = 0;
	return off + nlh->nlmsg_len;
}

#endif							/* WGPEER_TEST_NETLINK_DUMP_H */
