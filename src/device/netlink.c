/*
 * netlink.c
 *		Kernel WireGuard over generic netlink, with libmnl.
 *
 * WG_CMD_SET_DEVICE batches are split into messages of at most
 * WGNL_SET_MSG_MAX bytes.  A peer that fits in one message is never split;
 * a peer whose allowed IPs do not fit in a whole message is continued in the
 * next one with only its public key, WGPEER_F_UPDATE_ONLY and the remaining
 * allowed IPs, so the continuation neither replaces the IPs already sent nor
 * recreates a peer that someone removed in between.  Every message is
 * acknowledged before the next is sent: the kernel stops at the first
 * error, and so do we.
 *
 * WG_CMD_GET_DEVICE is a dump: a peer may be cut across two messages (the
 * second part repeats its public key), and NLM_F_DUMP_INTR means the device
 * changed under the dump, which is then started again.
 *
 * AmneziaWG devices belong to the amneziawg module's family "amneziawg",
 * which speaks WireGuard's commands and attributes plus its own device
 * attributes (Jc .. I5, amneziawg-linux-kernel-module src/uapi/wireguard.h),
 * encoded as the family's version expects: H1..H4 as a u32 (version 1,
 * single values only), as a "lo-hi" string (version 2) or as a u64 with hi
 * in its upper half (version 3); S3, S4 and I1..I5 since version 2; a
 * peer's keepalive as a u32 range since version 3.  Both families are
 * resolved when the socket opens, either may be missing.  A device is
 * spoken to in the family it answers: a set or dump refused with
 * EOPNOTSUPP (not this family's device) is sent again in the other one.
 */
#include "device/netlink.h"

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>

/* The amneziawg module's generic netlink family. */
#define AWG_GENL_NAME "amneziawg"

/* Its device attributes past WireGuard's. */
enum
{
	AWGDEVICE_A_JC = WGDEVICE_A_PEERS + 1,
	AWGDEVICE_A_JMIN,
	AWGDEVICE_A_JMAX,
	AWGDEVICE_A_S1,
	AWGDEVICE_A_S2,
	AWGDEVICE_A_H1,
	AWGDEVICE_A_H2,
	AWGDEVICE_A_H3,
	AWGDEVICE_A_H4,
	AWGDEVICE_A_PEER,
	AWGDEVICE_A_S3,
	AWGDEVICE_A_S4,
	AWGDEVICE_A_I1,
	AWGDEVICE_A_I2,
	AWGDEVICE_A_I3,
	AWGDEVICE_A_I4,
	AWGDEVICE_A_I5
};

/* Receive buffer: large enough for any dump datagram the kernel sends. */
#define WGNL_RECV_SIZE 65536

/* How many times a dump interrupted by a device change is retried. */
#define WGNL_DUMP_ATTEMPTS 20

/* The largest errno a netlink error reply may carry (MAX_ERRNO). */
#define WGNL_ERRNO_MAX 4095

/*
 * The buffers hold netlink messages that are built and read in place, so
 * they are aligned for struct nlmsghdr: after the uint16_t before them
 * they would otherwise start at an odd multiple of two.
 */
struct wgnl_ctx
{
	struct mnl_socket *nl;
	uint32_t	portid;
	uint32_t	seq;
	uint16_t	family_id;		/* "wireguard", 0 when missing */
	uint16_t	awg_family_id;	/* "amneziawg", 0 when missing */
	uint32_t	awg_version;	/* its version */
	char		awg_ifname[WG_IFNAME_SIZE];	/* the last device found AWG */
	alignas(struct nlmsghdr) char sendbuf[WGNL_SET_MSG_MAX];
	alignas(struct nlmsghdr) char recvbuf[WGNL_RECV_SIZE];
};

/* How much of one peer put_peer placed in the message being built. */
typedef enum peer_fit
{
	PEER_NONE,					/* nothing: the message is full */
	PEER_DONE,					/* the whole (rest of the) peer */
	PEER_PARTIAL				/* part of its allowed IPs; message full */
} peer_fit;

/*
 * Is buf aligned for the netlink headers that are read and written in
 * place?  Every builder and parser refuses a buffer that is not (-EINVAL)
 * rather than access it misaligned.
 */
static bool
is_aligned(const void *buf)
{
	return (uintptr_t) buf % alignof(struct nlmsghdr) == 0;
}

/*
 * Start a generic netlink message in buf: netlink header then genl header.
 * NULL if size cannot even hold the headers.  buf is aligned.
 */
static struct nlmsghdr *
put_genl_header(void *buf, size_t size, uint16_t type, uint16_t flags,
				uint32_t seq, uint8_t cmd, uint8_t version)
{
	struct nlmsghdr *nlh;
	struct genlmsghdr *genl;

	if (size < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct genlmsghdr)))
		return NULL;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = version;
	return nlh;
}

/* Append one allowed IP nest; false (and nothing added) if it does not fit. */
static bool
put_allowedip(struct nlmsghdr *nlh, size_t size, const wg_allowedip *a)
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
 * Append the peer at the cursor (or the rest of it) to the open peers nest
 * and advance the cursor past what was placed.  alone says no other peer
 * is in this message: only then may a peer be split, so a peer that fits
 * in one message always travels whole.
 */
static peer_fit
put_peer(struct nlmsghdr *nlh, size_t size, const wg_peer_change *p,
		 wgnl_set_cursor *cursor, bool alone, uint32_t awg_version)
{
	struct nlattr *nest;
	uint32_t	flags;
	size_t		placed = 0;
	size_t		left;

	nest = mnl_attr_nest_start_check(nlh, size, 0);
	if (nest == NULL)
		return PEER_NONE;

	if (p->remove)
		flags = WGPEER_F_REMOVE_ME;
	else if (cursor->continuing)
		flags = WGPEER_F_UPDATE_ONLY;
	else
		flags = WGPEER_F_REPLACE_ALLOWEDIPS;
	if (!mnl_attr_put_check(nlh, size, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN,
							p->public_key) ||
		!mnl_attr_put_u32_check(nlh, size, WGPEER_A_FLAGS, flags))
		goto none;
	if (!p->remove && !cursor->continuing)
	{
		if (p->has_preshared_key &&
			!mnl_attr_put_check(nlh, size, WGPEER_A_PRESHARED_KEY,
								WG_KEY_LEN, p->preshared_key))
			goto none;
		/* AWG 3 takes a range lo..hi (hi in the upper half) */
		if (p->keepalive >= 0 && awg_version >= 3 &&
			!mnl_attr_put_u32_check(nlh, size,
									WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
									(uint32_t) p->keepalive << 16 |
									(uint32_t) p->keepalive))
			goto none;
		if (p->keepalive >= 0 && awg_version < 3 &&
			!mnl_attr_put_u16_check(nlh, size,
									WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
									(uint16_t) p->keepalive))
			goto none;
	}

	left = p->remove ? 0 : p->n_allowedips - cursor->allowedip;
	if (left > 0)
	{
		struct nlattr *ips = mnl_attr_nest_start_check(nlh, size,
													   WGPEER_A_ALLOWEDIPS);

		while (ips != NULL && placed < left &&
			   put_allowedip(nlh, size,
							 &p->allowedips[cursor->allowedip + placed]))
			placed++;
		if (placed > 0)
			mnl_attr_nest_end(nlh, ips);
		else if (ips != NULL)
			mnl_attr_nest_cancel(nlh, ips);
	}

	if (placed == left)
	{
		mnl_attr_nest_end(nlh, nest);
		cursor->peer++;
		cursor->allowedip = 0;
		cursor->continuing = false;
		return PEER_DONE;
	}

	/*
	 * Only part fits.  Split the peer only when it has the message to itself
	 * and something of it was placed: either allowed IPs, or the header of a
	 * new peer (which clears its allowed IPs; the continuation adds them).
	 */
	if (!alone || (placed == 0 && cursor->continuing))
		goto none;
	mnl_attr_nest_end(nlh, nest);
	cursor->allowedip += placed;
	cursor->continuing = true;
	return PEER_PARTIAL;

none:
	mnl_attr_nest_cancel(nlh, nest);
	return PEER_NONE;
}

/*
 * Put the AmneziaWG device attributes of awg as family version awg_version
 * expects them.  Unset H1..H4 are sent as WireGuard's own types and unset
 * signature packets as empty ones, so that a set restores a device a hand
 * changed.  Returns 0, -EMSGSIZE, or -EPROTONOSUPPORT for a parameter the
 * version cannot carry (S3, S4, I1..I5 or an H range before version 2).
 */
static int
put_awg(struct nlmsghdr *nlh, size_t size, const wg_awg *awg,
		uint32_t awg_version)
{
	if (awg_version < 2)
	{
		if (awg->s[2] != 0 || awg->s[3] != 0)
			return -EPROTONOSUPPORT;
		for (int k = 0; k < WG_AWG_I_COUNT; k++)
			if (awg->i[k] != NULL)
				return -EPROTONOSUPPORT;
		for (int k = 0; k < WG_AWG_H_COUNT; k++)
			if (awg->h[k].lo != awg->h[k].hi)
				return -EPROTONOSUPPORT;
	}
	if (!mnl_attr_put_u16_check(nlh, size, AWGDEVICE_A_JC, (uint16_t) awg->jc) ||
		!mnl_attr_put_u16_check(nlh, size, AWGDEVICE_A_JMIN, (uint16_t) awg->jmin) ||
		!mnl_attr_put_u16_check(nlh, size, AWGDEVICE_A_JMAX, (uint16_t) awg->jmax) ||
		!mnl_attr_put_u16_check(nlh, size, AWGDEVICE_A_S1, (uint16_t) awg->s[0]) ||
		!mnl_attr_put_u16_check(nlh, size, AWGDEVICE_A_S2, (uint16_t) awg->s[1]))
		return -EMSGSIZE;
	if (awg_version >= 2 &&
		(!mnl_attr_put_u16_check(nlh, size, AWGDEVICE_A_S3, (uint16_t) awg->s[2]) ||
		 !mnl_attr_put_u16_check(nlh, size, AWGDEVICE_A_S4, (uint16_t) awg->s[3])))
		return -EMSGSIZE;
	for (int k = 0; k < WG_AWG_H_COUNT; k++)
	{
		wg_awg_range r = wg_awg_header(awg, k);
		uint16_t	type = (uint16_t) (AWGDEVICE_A_H1 + k);
		char		text[32];
		bool		ok;

		if (awg_version < 2)
			ok = mnl_attr_put_u32_check(nlh, size, type, r.lo);
		else if (awg_version < 3)
		{
			wg_awg_format_range(r, text, sizeof(text));
			ok = mnl_attr_put_strz_check(nlh, size, type, text);
		}
		else
			ok = mnl_attr_put_u64_check(nlh, size, type,
										(uint64_t) r.hi << 32 | r.lo);
		if (!ok)
			return -EMSGSIZE;
	}
	if (awg_version >= 2)
		for (int k = 0; k < WG_AWG_I_COUNT; k++)
			if (!mnl_attr_put_strz_check(nlh, size,
										 (uint16_t) (AWGDEVICE_A_I1 + k),
										 awg->i[k] ? awg->i[k] : ""))
				return -EMSGSIZE;
	return 0;
}

/*
 * wgnl_build_set_awg for kernel WireGuard's family: a change with AWG
 * parameters has no place in it (-EINVAL).
 */
int
wgnl_build_set(void *buf, size_t size, uint16_t family_id, uint32_t seq,
			   const wg_device_change *change, wgnl_set_cursor *cursor)
{
	if (change != NULL && change->awg != NULL)
		return -EINVAL;
	return wgnl_build_set_awg(buf, size, family_id, 0, seq, change, cursor);
}

/*
 * Build the next WG_CMD_SET_DEVICE message of a batch into buf (at most
 * size bytes), starting at *cursor and advancing it, for the family
 * family_id: kernel WireGuard's (awg_version 0) or the amneziawg module's
 * of that version.  The first message also carries the device's private
 * key, listen port and AmneziaWG parameters, and is built even when there
 * are no peers.  Returns the message length, 0 when the batch
 * is complete, -EMSGSIZE when size cannot hold the next piece, or -EINVAL
 * (also for a buf not aligned for struct nlmsghdr), -EPROTONOSUPPORT for
 * AmneziaWG parameters the version cannot carry.  The caller validates
 * the batch once with wg_device_change_validate.
 */
int
wgnl_build_set_awg(void *buf, size_t size, uint16_t family_id,
				   uint32_t awg_version, uint32_t seq,
				   const wg_device_change *change, wgnl_set_cursor *cursor)
{
	struct nlmsghdr *nlh;
	struct nlattr *peers = NULL;
	bool		first = cursor->messages == 0;
	bool		progress = false;

	if (!is_aligned(buf) || change == NULL || change->ifname == NULL)
		return -EINVAL;
	if (!first && cursor->peer >= change->n_peers)
		return 0;

	nlh = put_genl_header(buf, size, family_id, NLM_F_REQUEST | NLM_F_ACK, seq,
						  WG_CMD_SET_DEVICE,
						  awg_version ? (uint8_t) awg_version : WG_GENL_VERSION);
	if (nlh == NULL ||
		!mnl_attr_put_strz_check(nlh, size, WGDEVICE_A_IFNAME, change->ifname))
		return -EMSGSIZE;
	if (first)
	{
		if (change->has_private_key &&
			!mnl_attr_put_check(nlh, size, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN,
								change->private_key))
			return -EMSGSIZE;
		if (change->listen_port >= 0 &&
			!mnl_attr_put_u16_check(nlh, size, WGDEVICE_A_LISTEN_PORT,
									(uint16_t) change->listen_port))
			return -EMSGSIZE;
		if (change->awg != NULL)
		{
			int			r;

			if (awg_version == 0)
				return -EINVAL;
			if ((r = put_awg(nlh, size, change->awg, awg_version)) < 0)
				return r;
		}
	}

	while (cursor->peer < change->n_peers)
	{
		peer_fit	fit;

		if (peers == NULL)
		{
			peers = mnl_attr_nest_start_check(nlh, size, WGDEVICE_A_PEERS);
			if (peers == NULL)
				break;
		}
		fit = put_peer(nlh, size, &change->peers[cursor->peer], cursor,
					   !progress, awg_version);
		if (fit == PEER_NONE)
			break;
		progress = true;
		if (fit == PEER_PARTIAL)
			break;
	}
	if (peers != NULL)
	{
		if (progress)
			mnl_attr_nest_end(nlh, peers);
		else
			mnl_attr_nest_cancel(nlh, peers);
	}

	/* a later message that cannot hold one piece would never end */
	if (!first && !progress)
		return -EMSGSIZE;
	cursor->messages++;
	return (int) nlh->nlmsg_len;
}

/*
 * Build a WG_CMD_GET_DEVICE dump request for ifname.  Returns the message
 * length or -EMSGSIZE / -EINVAL.
 */
int
wgnl_build_get(void *buf, size_t size, uint16_t family_id, uint32_t seq,
			   const char *ifname)
{
	struct nlmsghdr *nlh;

	if (!is_aligned(buf) || ifname == NULL || ifname[0] == '\0' ||
		strlen(ifname) >= WG_IFNAME_SIZE)
		return -EINVAL;
	nlh = put_genl_header(buf, size, family_id, NLM_F_REQUEST | NLM_F_DUMP, seq,
						  WG_CMD_GET_DEVICE, WG_GENL_VERSION);
	if (nlh == NULL ||
		!mnl_attr_put_strz_check(nlh, size, WGDEVICE_A_IFNAME, ifname))
		return -EMSGSIZE;
	return (int) nlh->nlmsg_len;
}

/*
 * Build the CTRL_CMD_GETFAMILY request that resolves the generic netlink
 * family name ("wireguard" or "amneziawg").  Returns the message length or
 * -EMSGSIZE / -EINVAL.
 */
int
wgnl_build_resolve_name(void *buf, size_t size, uint32_t seq,
						const char *name)
{
	struct nlmsghdr *nlh;

	if (!is_aligned(buf))
		return -EINVAL;
	nlh = put_genl_header(buf, size, GENL_ID_CTRL, NLM_F_REQUEST, seq,
						  CTRL_CMD_GETFAMILY, 1);
	if (nlh == NULL ||
		!mnl_attr_put_strz_check(nlh, size, CTRL_ATTR_FAMILY_NAME, name))
		return -EMSGSIZE;
	return (int) nlh->nlmsg_len;
}

/* wgnl_build_resolve_name for the "wireguard" family. */
int
wgnl_build_resolve(void *buf, size_t size, uint32_t seq)
{
	return wgnl_build_resolve_name(buf, size, seq, WG_GENL_NAME);
}

/*
 * Is there a whole message at nlh, padding included, within the left
 * bytes of the datagram?  Used instead of mnl_nlmsg_ok, which compares the
 * length as a signed int (a length of 2^31 or more passes, and the walk
 * jumps gigabytes past the datagram), and which lets a last message end
 * unpadded, when the attribute walk reads up to the padded end.
 */
static bool
msg_ok(const struct nlmsghdr *nlh, int left)
{
	return left >= (int) sizeof(*nlh) &&
		nlh->nlmsg_len >= sizeof(*nlh) &&
		nlh->nlmsg_len <= (unsigned int) left &&
		MNL_ALIGN(nlh->nlmsg_len) <= (unsigned int) left;
}

/* Does nlh answer our request seq from our socket? */
static bool
is_reply(const struct nlmsghdr *nlh, uint32_t seq, uint32_t portid)
{
	return mnl_nlmsg_seq_ok(nlh, seq) && mnl_nlmsg_portid_ok(nlh, portid);
}

/*
 * A kernel error code as -errno: 0 stays 0, -1 .. -WGNL_ERRNO_MAX are
 * errnos; anything else (positive, or beyond any errno, such as INT_MIN,
 * which a caller could not even negate) is -EPROTO.
 */
static int
errno_of(int error)
{
	return error <= 0 && error >= -WGNL_ERRNO_MAX ? error : -EPROTO;
}

/* The errno an NLMSG_ERROR message carries: 0 for an ACK, else -errno. */
static int
error_of(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *err;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct nlmsgerr)))
		return -EBADMSG;
	err = mnl_nlmsg_get_payload(nlh);
	return errno_of(err->error);
}

/*
 * Length of a generic netlink message's payload after the genl header, or
 * -EBADMSG when it is too short to have one.
 */
static int
check_genl(const struct nlmsghdr *nlh)
{
	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct genlmsghdr)))
		return -EBADMSG;
	return 0;
}

/*
 * Look for the family id in one received datagram answering
 * wgnl_build_resolve.  Returns 0 with *family_id set, 1 if the datagram
 * held no answer (read another), -ENOENT when the kernel has no WireGuard
 * family, another -errno on error (-EINVAL for a buf not aligned for
 * struct nlmsghdr, as no receive buffer is).
 */
int
wgnl_parse_resolve(const void *buf, size_t len, uint32_t seq, uint32_t portid,
				   uint16_t *family_id)
{
	uint32_t	version;

	return wgnl_parse_resolve_version(buf, len, seq, portid, family_id,
									  &version);
}

/*
 * wgnl_parse_resolve that also gives the family's version (0 when the
 * answer has none).
 */
int
wgnl_parse_resolve_version(const void *buf, size_t len, uint32_t seq,
						   uint32_t portid, uint16_t *family_id,
						   uint32_t *version)
{
	const struct nlmsghdr *nlh = buf;
	int			left = (int) len;

	if (!is_aligned(buf))
		return -EINVAL;
	for (; msg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
	{
		const struct nlattr *attr;

		if (!is_reply(nlh, seq, portid))
			continue;
		if (nlh->nlmsg_type == NLMSG_ERROR)
		{
			int			r = error_of(nlh);

			return r < 0 ? r : -EBADMSG;
		}
		if (nlh->nlmsg_type != GENL_ID_CTRL || check_genl(nlh) < 0)
			return -EBADMSG;
		*version = 0;
		mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr))
		{
			if (mnl_attr_get_type(attr) == CTRL_ATTR_VERSION &&
				mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
				*version = mnl_attr_get_u32(attr);
		}
		mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr))
		{
			if (mnl_attr_get_type(attr) == CTRL_ATTR_FAMILY_ID &&
				mnl_attr_validate(attr, MNL_TYPE_U16) == 0)
			{
				*family_id = mnl_attr_get_u16(attr);
				return 0;
			}
		}
		return -EBADMSG;
	}
	return left > 0 ? -EBADMSG : 1;
}

/*
 * Look for the acknowledgement of request seq in one received datagram.
 * Returns 0 for a positive ACK, -errno for an error reply, 1 when the
 * datagram held neither (stale replies to an abandoned request are
 * skipped).  -EINVAL for a misaligned buf, as wgnl_parse_resolve.
 */
int
wgnl_parse_ack(const void *buf, size_t len, uint32_t seq, uint32_t portid)
{
	const struct nlmsghdr *nlh = buf;
	int			left = (int) len;

	if (!is_aligned(buf))
		return -EINVAL;
	for (; msg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
	{
		if (!is_reply(nlh, seq, portid))
			continue;
		if (nlh->nlmsg_type == NLMSG_ERROR)
			return error_of(nlh);
	}
	return left > 0 ? -EBADMSG : 1;
}

/* Parse one allowed IP nest and append it to peer. */
static int
parse_allowedip(wg_peer_info *peer, const struct nlattr *nest)
{
	const struct nlattr *attr;
	wg_allowedip a;
	const void *addr = NULL;
	size_t		alen = 0;
	bool		has_family = false;
	bool		has_cidr = false;
	int			r;

	memset(&a, 0, sizeof(a));
	mnl_attr_for_each_nested(attr, nest)
	{
		switch (mnl_attr_get_type(attr))
		{
			case WGALLOWEDIP_A_FAMILY:
				if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
					return -EBADMSG;
				a.family = mnl_attr_get_u16(attr);
				has_family = true;
				break;
			case WGALLOWEDIP_A_IPADDR:
				addr = mnl_attr_get_payload(attr);
				alen = mnl_attr_get_payload_len(attr);
				break;
			case WGALLOWEDIP_A_CIDR_MASK:
				if (mnl_attr_validate(attr, MNL_TYPE_U8) < 0)
					return -EBADMSG;
				a.cidr = mnl_attr_get_u8(attr);
				has_cidr = true;
				break;
		}
	}
	if (!has_family || !has_cidr || addr == NULL ||
		alen != wg_allowedip_addr_len(a.family) || !wg_allowedip_valid(&a))
		return -EBADMSG;
	memcpy(&a.addr, addr, alen);

	r = wg_device_grow((void **) &peer->allowedips, peer->n_allowedips,
				  &peer->cap_allowedips, sizeof(wg_allowedip));
	if (r < 0)
		return r;
	peer->allowedips[peer->n_allowedips++] = a;
	return 0;
}

/* Copy a WGPEER_A_ENDPOINT sockaddr into peer, checking its family. */
static int
parse_endpoint(wg_peer_info *peer, const struct nlattr *attr)
{
	const struct sockaddr *sa = mnl_attr_get_payload(attr);
	size_t		len = mnl_attr_get_payload_len(attr);

	if (len == sizeof(struct sockaddr_in) && sa->sa_family == AF_INET)
		memcpy(&peer->endpoint.in4, sa, len);
	else if (len == sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6)
		memcpy(&peer->endpoint.in6, sa, len);
	else
		return -EBADMSG;
	return 0;
}

/*
 * Parse one peer nest into device.  A peer whose public key equals the
 * previous peer's is the continuation of a peer the kernel cut across two
 * messages: its allowed IPs are appended to that peer.
 */
static int
parse_peer(wg_device *device, const struct nlattr *nest)
{
	const struct nlattr *attr;
	const uint8_t *key = NULL;
	wg_peer_info *peer;
	int			r;

	mnl_attr_for_each_nested(attr, nest)
	{
		if (mnl_attr_get_type(attr) == WGPEER_A_PUBLIC_KEY &&
			mnl_attr_get_payload_len(attr) == WG_KEY_LEN)
			key = mnl_attr_get_payload(attr);
	}
	if (key == NULL)
		return -EBADMSG;

	if (device->n_peers > 0 &&
		memcmp(device->peers[device->n_peers - 1].public_key, key,
			   WG_KEY_LEN) == 0)
		peer = &device->peers[device->n_peers - 1];
	else
	{
		r = wg_device_grow((void **) &device->peers, device->n_peers,
					  &device->cap_peers, sizeof(wg_peer_info));
		if (r < 0)
			return r;
		peer = &device->peers[device->n_peers++];
		memset(peer, 0, sizeof(*peer));
		memcpy(peer->public_key, key, WG_KEY_LEN);
	}

	mnl_attr_for_each_nested(attr, nest)
	{
		const struct nlattr *ip;

		switch (mnl_attr_get_type(attr))
		{
			case WGPEER_A_PRESHARED_KEY:
				if (mnl_attr_get_payload_len(attr) != WG_KEY_LEN)
					return -EBADMSG;
				memcpy(peer->preshared_key, mnl_attr_get_payload(attr),
					   WG_KEY_LEN);
				break;
			case WGPEER_A_ENDPOINT:
				if ((r = parse_endpoint(peer, attr)) < 0)
					return r;
				break;
			case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
				/* amneziawg 3 sends a u32 range, lo in the lower half */
				if (mnl_attr_get_payload_len(attr) == sizeof(uint32_t))
					peer->keepalive = (uint16_t) mnl_attr_get_u32(attr);
				else if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
					return -EBADMSG;
				else
					peer->keepalive = mnl_attr_get_u16(attr);
				break;
			case WGPEER_A_LAST_HANDSHAKE_TIME:
				{
					struct __kernel_timespec ts;

					if (mnl_attr_get_payload_len(attr) != sizeof(ts))
						return -EBADMSG;
					memcpy(&ts, mnl_attr_get_payload(attr), sizeof(ts));
					peer->last_handshake_sec = ts.tv_sec;
					peer->last_handshake_nsec = ts.tv_nsec;
				}
				break;
			case WGPEER_A_RX_BYTES:
				if (mnl_attr_validate(attr, MNL_TYPE_U64) < 0)
					return -EBADMSG;
				peer->rx_bytes = mnl_attr_get_u64(attr);
				break;
			case WGPEER_A_TX_BYTES:
				if (mnl_attr_validate(attr, MNL_TYPE_U64) < 0)
					return -EBADMSG;
				peer->tx_bytes = mnl_attr_get_u64(attr);
				break;
			case WGPEER_A_ALLOWEDIPS:
				mnl_attr_for_each_nested(ip, attr)
				{
					if ((r = parse_allowedip(peer, ip)) < 0)
						return r;
				}
				break;
		}
	}
	return 0;
}

/*
 * One AmneziaWG device attribute of a dump (any other attribute is
 * skipped).  H1..H4 are told apart by their length: a u32 (version 1), a
 * u64 (version 3), else a "lo-hi" string (version 2).
 */
static int
parse_awg_attr(wg_device *device, const struct nlattr *attr)
{
	int			type = mnl_attr_get_type(attr);
	uint16_t	len = mnl_attr_get_payload_len(attr);

	if (type >= AWGDEVICE_A_JC && type <= AWGDEVICE_A_S4 &&
		type != AWGDEVICE_A_PEER &&
		(type < AWGDEVICE_A_H1 || type > AWGDEVICE_A_H4))
	{
		uint16_t	v;

		if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
			return -EBADMSG;
		v = mnl_attr_get_u16(attr);
		device->has_awg = true;
		if (type == AWGDEVICE_A_JC)
			device->awg.jc = v;
		else if (type == AWGDEVICE_A_JMIN)
			device->awg.jmin = v;
		else if (type == AWGDEVICE_A_JMAX)
			device->awg.jmax = v;
		else if (type == AWGDEVICE_A_S1 || type == AWGDEVICE_A_S2)
			device->awg.s[type - AWGDEVICE_A_S1] = v;
		else
			device->awg.s[2 + type - AWGDEVICE_A_S3] = v;
	}
	else if (type >= AWGDEVICE_A_H1 && type <= AWGDEVICE_A_H4)
	{
		wg_awg_range *r = &device->awg.h[type - AWGDEVICE_A_H1];

		device->has_awg = true;
		if (len == sizeof(uint32_t))
			r->lo = r->hi = mnl_attr_get_u32(attr);
		else if (len == sizeof(uint64_t))
		{
			uint64_t	v = mnl_attr_get_u64(attr);

			r->lo = (uint32_t) v;
			r->hi = (uint32_t) (v >> 32);
		}
		else if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0 ||
				 wg_awg_parse_range(mnl_attr_get_str(attr), r) != NULL)
			return -EBADMSG;
	}
	else if (type >= AWGDEVICE_A_I1 && type <= AWGDEVICE_A_I5)
	{
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0 ||
			strlen(mnl_attr_get_str(attr)) > WG_AWG_I_MAX)
			return -EBADMSG;
		device->has_awg = true;
		strcpy(device->awg_i[type - AWGDEVICE_A_I1], mnl_attr_get_str(attr));
	}
	return 0;
}

/* Parse the device attributes and peers of one WG_CMD_GET_DEVICE reply. */
static int
parse_device_msg(wg_device *device, const struct nlmsghdr *nlh)
{
	const struct nlattr *attr;
	int			r;

	if ((r = check_genl(nlh)) < 0)
		return r;
	mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr))
	{
		const struct nlattr *peer;

		switch (mnl_attr_get_type(attr))
		{
			case WGDEVICE_A_IFINDEX:
				if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
					return -EBADMSG;
				device->ifindex = mnl_attr_get_u32(attr);
				break;
			case WGDEVICE_A_IFNAME:
				if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0 ||
					mnl_attr_get_payload_len(attr) > WG_IFNAME_SIZE)
					return -EBADMSG;
				strcpy(device->ifname, mnl_attr_get_str(attr));
				break;
			case WGDEVICE_A_PRIVATE_KEY:
				if (mnl_attr_get_payload_len(attr) != WG_KEY_LEN)
					return -EBADMSG;
				memcpy(device->private_key, mnl_attr_get_payload(attr),
					   WG_KEY_LEN);
				device->has_private_key = true;
				break;
			case WGDEVICE_A_PUBLIC_KEY:
				if (mnl_attr_get_payload_len(attr) != WG_KEY_LEN)
					return -EBADMSG;
				memcpy(device->public_key, mnl_attr_get_payload(attr),
					   WG_KEY_LEN);
				device->has_public_key = true;
				break;
			case WGDEVICE_A_LISTEN_PORT:
				if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
					return -EBADMSG;
				device->listen_port = mnl_attr_get_u16(attr);
				break;
			case WGDEVICE_A_FWMARK:
				if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
					return -EBADMSG;
				device->fwmark = mnl_attr_get_u32(attr);
				break;
			case WGDEVICE_A_PEERS:
				mnl_attr_for_each_nested(peer, attr)
				{
					if ((r = parse_peer(device, peer)) < 0)
						return r;
				}
				break;
			default:
				if ((r = parse_awg_attr(device, attr)) < 0)
					return r;
				break;
		}
	}
	return 0;
}

/*
 * Feed one received datagram of a WG_CMD_GET_DEVICE dump into dump.
 * Returns 1 when the dump is complete (NLMSG_DONE), 0 when more datagrams
 * follow, -errno for an error reply or a malformed message.  Replies to
 * other requests are skipped.  After completion, check dump->interrupted.
 * -EINVAL for a misaligned buf, as wgnl_parse_resolve.
 */
int
wgnl_dump_feed(wgnl_dump *dump, const void *buf, size_t len)
{
	const struct nlmsghdr *nlh = buf;
	int			left = (int) len;
	int			r;

	if (!is_aligned(buf))
		return -EINVAL;
	for (; msg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
	{
		if (!is_reply(nlh, dump->seq, dump->portid))
			continue;
		if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
			dump->interrupted = true;
		switch (nlh->nlmsg_type)
		{
			case NLMSG_NOOP:
				break;
			case NLMSG_ERROR:
				r = error_of(nlh);
				return r < 0 ? r : 1;
			case NLMSG_DONE:
				/* a dump that failed part way reports its errno here */
				if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int))
				{
					int			err;

					memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
					if (err < 0)
						return errno_of(err);
				}
				return 1;
			default:
				if ((r = parse_device_msg(&dump->device, nlh)) < 0)
					return r;
				break;
		}
	}
	return left > 0 ? -EBADMSG : 0;
}

/* Send one message; a send timeout becomes -ETIMEDOUT. */
static int
send_msg(wgnl_ctx *ctx, const void *buf, size_t len)
{
	ssize_t		n = mnl_socket_sendto(ctx->nl, buf, len);

	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? -ETIMEDOUT : -errno;
	return (size_t) n == len ? 0 : -EIO;
}

/*
 * Receive one datagram into ctx->recvbuf.  Returns its length or -errno:
 * -ETIMEDOUT when nothing arrived within the socket timeout, -EMSGSIZE
 * when it did not fit.  A signal (EINTR) retries: PostgreSQL's latch
 * signals must not fail a kernel call.
 */
static int
recv_msg(wgnl_ctx *ctx)
{
	for (;;)
	{
		ssize_t		n = mnl_socket_recvfrom(ctx->nl, ctx->recvbuf,
											sizeof(ctx->recvbuf));

		if (n >= 0)
			return (int) n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -ETIMEDOUT;
		if (errno == ENOSPC)
			return -EMSGSIZE;
		return -errno;
	}
}

/*
 * Resolve the genl family name into *family_id and *version; -ENOENT when
 * the kernel has no such family.
 */
static int
resolve_family(wgnl_ctx *ctx, const char *name, uint16_t *family_id,
			   uint32_t *version)
{
	uint32_t	seq = ++ctx->seq;
	int			r;

	r = wgnl_build_resolve_name(ctx->sendbuf, sizeof(ctx->sendbuf), seq, name);
	if (r < 0 || (r = send_msg(ctx, ctx->sendbuf, r)) < 0)
		return r;
	do
	{
		int			n = recv_msg(ctx);

		if (n < 0)
			return n;
		r = wgnl_parse_resolve_version(ctx->recvbuf, n, seq, ctx->portid,
									   family_id, version);
	} while (r == 1);
	return r;
}

/*
 * Open a generic netlink socket whose every send and receive gives up
 * after timeout_ms, and resolve the WireGuard and AmneziaWG families.
 * Returns 0 with *out set, -ENOENT when the kernel has neither, or another
 * -errno.
 */
int
wgnl_open(wgnl_ctx **out, int timeout_ms)
{
	wgnl_ctx   *ctx;
	struct timeval tv;
	int			one = 1;
	int			fd;
	int			r;

	if (timeout_ms <= 0)
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return -ENOMEM;
	ctx->nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (ctx->nl == NULL)
	{
		r = -errno;
		free(ctx);
		return r;
	}
	fd = mnl_socket_get_fd(ctx->nl);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
		mnl_socket_bind(ctx->nl, 0, MNL_SOCKET_AUTOPID) < 0)
	{
		r = -errno;
		wgnl_close(ctx);
		return r;
	}
	/* error replies need not echo our 8 KiB request; best effort */
	(void) setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	ctx->portid = mnl_socket_get_portid(ctx->nl);
	ctx->seq = (uint32_t) time(NULL);

	{
		uint32_t	version;
		int			awg;

		r = resolve_family(ctx, WG_GENL_NAME, &ctx->family_id, &version);
		awg = resolve_family(ctx, AWG_GENL_NAME, &ctx->awg_family_id,
							 &ctx->awg_version);
		if (r == -ENOENT && awg == 0)
			r = 0;
		else if (r == 0 && awg < 0 && awg != -ENOENT)
			r = awg;
		/* a family that predates versions speaks as its first */
		if (awg == 0 && ctx->awg_version == 0)
			ctx->awg_version = 1;
	}
	if (r < 0)
	{
		wgnl_close(ctx);
		return r;
	}
	*out = ctx;
	return 0;
}

/* Close the socket and free the context; NULL is allowed. */
void
wgnl_close(wgnl_ctx *ctx)
{
	if (ctx == NULL)
		return;
	if (ctx->nl != NULL)
		mnl_socket_close(ctx->nl);
	explicit_bzero(ctx, sizeof(*ctx));
	free(ctx);
}

/*
 * Send a validated batch message by message in one family (awg: the
 * amneziawg module's), waiting for each ACK.  Returns the number of
 * messages sent or the first -errno.
 */
static int
send_set(wgnl_ctx *ctx, const wg_device_change *change, bool awg)
{
	wgnl_set_cursor cursor;
	int			r;

	memset(&cursor, 0, sizeof(cursor));
	for (;;)
	{
		uint32_t	seq = ++ctx->seq;
		int			len;

		len = wgnl_build_set_awg(ctx->sendbuf, sizeof(ctx->sendbuf),
								 awg ? ctx->awg_family_id : ctx->family_id,
								 awg ? ctx->awg_version : 0, seq, change,
								 &cursor);
		if (len == 0)
			break;
		if (len < 0)
			return len;
		if ((r = send_msg(ctx, ctx->sendbuf, len)) < 0)
			return r;
		do
		{
			int			n = recv_msg(ctx);

			if (n < 0)
				return n;
			r = wgnl_parse_ack(ctx->recvbuf, n, seq, ctx->portid);
		} while (r == 1);
		if (r < 0)
			return r;
	}
	return (int) cursor.messages;
}

/*
 * Which family to speak to ifname in first: the amneziawg module's when
 * the change has AWG parameters, when ifname was last found to be an AWG
 * device, or when the kernel has no WireGuard family.
 */
static bool
awg_first(const wgnl_ctx *ctx, const char *ifname, bool has_awg)
{
	return has_awg || ctx->family_id == 0 ||
		(ctx->awg_family_id != 0 && strcmp(ctx->awg_ifname, ifname) == 0);
}

/*
 * Whether a call in one family that failed with r is to be made in the
 * other: r is EOPNOTSUPP (a device of the other family) and the other
 * family exists.  Remembers an AWG device by name.
 */
static bool
try_other(wgnl_ctx *ctx, const char *ifname, bool *awg, int r)
{
	if (r != -EOPNOTSUPP || (*awg ? ctx->family_id : ctx->awg_family_id) == 0)
		return false;
	*awg = !*awg;
	if (*awg)
		snprintf(ctx->awg_ifname, sizeof(ctx->awg_ifname), "%s", ifname);
	else
		ctx->awg_ifname[0] = '\0';
	return true;
}

/*
 * Apply a batch: validate it, then send it message by message, waiting for
 * each ACK, in the family of the device (see the file comment).  Returns
 * the number of messages sent (at least 1), or -errno from the first
 * failing message: the messages before it were applied, the rest were not
 * sent.  Typical errors: -ENODEV (no such interface), -EPERM (no
 * CAP_NET_ADMIN), -ETIMEDOUT, -EOPNOTSUPP (not a device of either family),
 * -EPFNOSUPPORT (AmneziaWG parameters, and the kernel has no amneziawg
 * module), -EPROTONOSUPPORT (parameters the module's version cannot
 * carry).
 */
int
wgnl_set_device(wgnl_ctx *ctx, const wg_device_change *change)
{
	bool		awg;
	int			r;

	if ((r = wg_device_change_validate(change)) < 0)
		return r;
	if (change->awg != NULL && ctx->awg_family_id == 0)
		return -EPFNOSUPPORT;
	awg = awg_first(ctx, change->ifname, change->awg != NULL);
	r = send_set(ctx, change, awg);
	/* nothing of a set is applied when its device is not found */
	if (change->awg == NULL && try_other(ctx, change->ifname, &awg, r))
		r = send_set(ctx, change, awg);
	else if (r >= 0 && awg)
		snprintf(ctx->awg_ifname, sizeof(ctx->awg_ifname), "%s",
				 change->ifname);
	return r;
}

/*
 * Read ifname's device and peers into *device (free it with
 * wg_device_free).  A dump interrupted by a concurrent change is started
 * again; -EAGAIN if that keeps happening.  On error *device is empty.
 */
int
wgnl_get_device(wgnl_ctx *ctx, const char *ifname, wg_device *device)
{
	int			attempt;
	bool		awg = awg_first(ctx, ifname, false);
	bool		switched = false;

	memset(device, 0, sizeof(*device));
	for (attempt = 0; attempt < WGNL_DUMP_ATTEMPTS; attempt++)
	{
		wgnl_dump	dump;
		int			r;

		memset(&dump, 0, sizeof(dump));
		dump.seq = ++ctx->seq;
		dump.portid = ctx->portid;
		r = wgnl_build_get(ctx->sendbuf, sizeof(ctx->sendbuf),
						   awg ? ctx->awg_family_id : ctx->family_id,
						   dump.seq, ifname);
		if (r < 0 || (r = send_msg(ctx, ctx->sendbuf, r)) < 0)
			return r;
		do
		{
			int			n = recv_msg(ctx);

			r = n < 0 ? n : wgnl_dump_feed(&dump, ctx->recvbuf, n);
		} while (r == 0);
		if (r < 0 || dump.interrupted)
		{
			wg_device_free(&dump.device);
			if (r < 0 && !switched && try_other(ctx, ifname, &awg, r))
			{
				switched = true;
				continue;
			}
			if (r < 0)
				return r;
			continue;
		}
		*device = dump.device;
		return 0;
	}
	return -EAGAIN;
}
