/*
 * shaping.c
 *		Per-peer speed limits over rtnetlink, with libmnl (see shaping.h).
 *
 * Choices, from the kernel's sch_htb, cls_flower and act_police:
 *
 * - The HTB root is created with NLM_F_EXCL: the kernel takes the
 *   interface's default qdisc (handle 0, noqueue on WireGuard) as absent,
 *   so the create succeeds over it and fails with EEXIST over anyone
 *   else's root qdisc, which is never replaced.
 * - Its default class is 0, which does not exist: unclassified packets go
 *   to HTB's direct queue, dequeued first and unshaped.
 * - Rates are given as a tc_ratespec with linklayer ethernet and no rate
 *   table for HTB (the kernel computes its own); police needs a rate table
 *   attribute (TCA_POLICE_RATE, 256 u32) but reads only the ratespec when
 *   its linklayer is set, so the table is sent zeroed.
 * - Bursts are a tenth of a second of the rate (wgtc_burst), and at
 *   least a 64 KiB packet and a full-size one: WireGuard's receive path
 *   coalesces packets with GRO and its transmit path takes GSO packets,
 *   and a policer whose burst is smaller than one packet drops them all.  A short HTB burst also lost rate whenever the
 *   qdisc's timer fired late (measured 17% under the limit in the VM with
 *   10 ms), since tokens beyond the burst are not kept.
 * - Durations (HTB buffer, police burst) are in psched ticks of 64 ns.
 */
#include "device/shaping.h"

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#define WGTC_ROOT_HANDLE (WGTC_MAJOR << 16)
#define WGTC_INGRESS_HANDLE 0xffff0000u
#define WGTC_RECV_SIZE 65536
/* a burst: at least a 64 KiB GRO/GSO packet and a full-size one */
#define WGTC_BURST_MIN (65536 + 1600)
#define WGTC_POLICE_MTU 65535
#define WGTC_DIRECT_QLEN 1000

/* The rate in bytes per second of a rate in kbit/s. */
uint32_t
wgtc_rate_bytes(uint32_t kbit)
{
	return (uint32_t) ((uint64_t) kbit * 125);
}

/*
 * How long sending bytes at rate_bytes takes, in psched ticks (64 ns),
 * at most UINT32_MAX: the kernel's unit for HTB buffers and police bursts.
 */
uint32_t
wgtc_ticks(uint32_t bytes, uint32_t rate_bytes)
{
	uint64_t	ns;

	if (rate_bytes == 0)
		return UINT32_MAX;
	ns = (uint64_t) bytes * 1000000000ull / rate_bytes;
	return (ns >> 6) > UINT32_MAX ? UINT32_MAX : (uint32_t) (ns >> 6);
}

/*
 * The burst of a class or policer of rate_bytes: 100 ms of the rate, at
 * least WGTC_BURST_MIN.
 */
uint32_t
wgtc_burst(uint32_t rate_bytes)
{
	return rate_bytes / 10 > WGTC_BURST_MIN ? rate_bytes / 10 : WGTC_BURST_MIN;
}

/* A rate spec of kbit/s as the kernel reads it without a rate table. */
static struct tc_ratespec
ratespec(uint32_t kbit, uint8_t cell_log)
{
	struct tc_ratespec r;

	memset(&r, 0, sizeof(r));
	r.rate = wgtc_rate_bytes(kbit);
	r.linklayer = TC_LINKLAYER_ETHERNET;
	r.cell_log = cell_log;
	return r;
}

/*
 * Start a traffic control message: its header and tcmsg, or NULL when the
 * buffer cannot hold even that.
 */
static struct nlmsghdr *
tc_header(void *buf, size_t size, uint16_t type, uint16_t flags,
		  uint32_t seq, int ifindex, uint32_t parent, uint32_t handle,
		  uint32_t info)
{
	struct nlmsghdr *nlh;
	struct tcmsg *tcm;

	if (size < WGTC_MSG_MAX)
		return NULL;
	memset(buf, 0, MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct tcmsg)));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = seq;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(struct tcmsg));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = parent;
	tcm->tcm_handle = handle;
	tcm->tcm_info = info;
	return nlh;
}

/* wgpeer's HTB root qdisc 7770:, never over someone else's root. */
int
wgtc_build_root(void *buf, size_t size, uint32_t seq, int ifindex)
{
	struct nlmsghdr *nlh;
	struct nlattr *opts;
	struct tc_htb_glob glob;

	if (ifindex <= 0)
		return -EINVAL;
	nlh = tc_header(buf, size, RTM_NEWQDISC,
					NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, ifindex,
					TC_H_ROOT, WGTC_ROOT_HANDLE, 0);
	if (nlh == NULL)
		return -EMSGSIZE;
	memset(&glob, 0, sizeof(glob));
	glob.version = TC_HTB_PROTOVER;
	glob.rate2quantum = 10;
	glob.defcls = 0;			/* no such class: the direct queue */
	mnl_attr_put_strz(nlh, TCA_KIND, "htb");
	opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put(nlh, TCA_HTB_INIT, sizeof(glob), &glob);
	mnl_attr_put_u32(nlh, TCA_HTB_DIRECT_QLEN, WGTC_DIRECT_QLEN);
	mnl_attr_nest_end(nlh, opts);
	return (int) nlh->nlmsg_len;
}

/* The ingress qdisc ffff:, where upload is policed. */
int
wgtc_build_ingress(void *buf, size_t size, uint32_t seq, int ifindex)
{
	struct nlmsghdr *nlh;

	if (ifindex <= 0)
		return -EINVAL;
	nlh = tc_header(buf, size, RTM_NEWQDISC,
					NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, ifindex,
					TC_H_INGRESS, WGTC_INGRESS_HANDLE, 0);
	if (nlh == NULL)
		return -EMSGSIZE;
	mnl_attr_put_strz(nlh, TCA_KIND, "ingress");
	return (int) nlh->nlmsg_len;
}

/* Whether a slot and a rate are ones wgpeer sets. */
static bool
valid(uint16_t slot, uint32_t kbit)
{
	return slot >= 1 && slot <= WGTC_SLOT_MAX &&
		kbit >= WGTC_KBIT_MIN && kbit <= WGTC_KBIT_MAX;
}

/*
 * A peer's download class 7770:<slot> at kbit/s (rate and ceiling), made
 * or changed in place.
 */
int
wgtc_build_class(void *buf, size_t size, uint32_t seq, int ifindex,
				 uint16_t slot, uint32_t kbit)
{
	struct nlmsghdr *nlh;
	struct nlattr *opts;
	struct tc_htb_opt opt;
	uint32_t	rate;
	uint32_t	burst;
	uint32_t	quantum;

	if (ifindex <= 0 || !valid(slot, kbit))
		return -EINVAL;
	nlh = tc_header(buf, size, RTM_NEWTCLASS, NLM_F_ACK | NLM_F_CREATE, seq,
					ifindex, WGTC_ROOT_HANDLE, WGTC_ROOT_HANDLE | slot, 0);
	if (nlh == NULL)
		return -EMSGSIZE;
	rate = wgtc_rate_bytes(kbit);
	burst = wgtc_burst(rate);
	quantum = rate / 10;
	if (quantum < 1000)
		quantum = 1000;
	if (quantum > 200000)
		quantum = 200000;
	memset(&opt, 0, sizeof(opt));
	opt.rate = ratespec(kbit, 0);
	opt.ceil = ratespec(kbit, 0);
	opt.buffer = wgtc_ticks(burst, rate);
	opt.cbuffer = opt.buffer;
	opt.quantum = quantum;
	mnl_attr_put_strz(nlh, TCA_KIND, "htb");
	opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put(nlh, TCA_HTB_PARMS, sizeof(opt), &opt);
	mnl_attr_nest_end(nlh, opts);
	return (int) nlh->nlmsg_len;
}

/* Remove a peer's download class (its filters first: a used class stays). */
int
wgtc_build_del_class(void *buf, size_t size, uint32_t seq, int ifindex,
					 uint16_t slot)
{
	struct nlmsghdr *nlh;

	if (ifindex <= 0 || slot < 1 || slot > WGTC_SLOT_MAX)
		return -EINVAL;
	nlh = tc_header(buf, size, RTM_DELTCLASS, NLM_F_ACK, seq, ifindex,
					WGTC_ROOT_HANDLE, WGTC_ROOT_HANDLE | slot, 0);
	if (nlh == NULL)
		return -EMSGSIZE;
	return (int) nlh->nlmsg_len;
}

/* tcm_info of a filter: its priority and protocol (network order). */
static uint32_t
filter_info(bool v6)
{
	return TC_H_MAKE((v6 ? WGTC_PRIO_V6 : WGTC_PRIO_V4) << 16,
					 htons(v6 ? ETH_P_IPV6 : ETH_P_IP));
}

/* The police action of an upload filter: drop what exceeds kbit/s. */
static void
put_police(struct nlmsghdr *nlh, uint32_t kbit)
{
	struct nlattr *acts;
	struct nlattr *act;
	struct nlattr *opts;
	struct tc_police police;
	uint32_t	rate = wgtc_rate_bytes(kbit);
	uint32_t	burst = wgtc_burst(rate);
	static const uint32_t rtab[TC_RTAB_SIZE / sizeof(uint32_t)];

	memset(&police, 0, sizeof(police));
	police.action = TC_ACT_SHOT;
	police.rate = ratespec(kbit, 3);
	police.burst = wgtc_ticks(burst, rate);
	police.mtu = WGTC_POLICE_MTU;
	acts = mnl_attr_nest_start(nlh, TCA_FLOWER_ACT);
	act = mnl_attr_nest_start(nlh, 1);
	mnl_attr_put_strz(nlh, TCA_ACT_KIND, "police");
	opts = mnl_attr_nest_start(nlh, TCA_ACT_OPTIONS);
	mnl_attr_put(nlh, TCA_POLICE_TBF, sizeof(police), &police);
	mnl_attr_put(nlh, TCA_POLICE_RATE, sizeof(rtab), rtab);
	mnl_attr_nest_end(nlh, opts);
	mnl_attr_nest_end(nlh, act);
	mnl_attr_nest_end(nlh, acts);
}

/*
 * A peer's filter for one address and direction: download matches the
 * destination and sends to the peer's class, upload matches the source
 * and polices.  Made or replaced in place (same handle).
 */
int
wgtc_build_filter(void *buf, size_t size, uint32_t seq, int ifindex,
				  wgtc_dir dir, bool v6, const uint8_t *addr, uint16_t slot,
				  uint32_t kbit)
{
	struct nlmsghdr *nlh;
	struct nlattr *opts;
	static const uint8_t ones[16] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
	};
	size_t		alen = v6 ? 16 : 4;
	uint16_t	key;
	uint16_t	mask;

	if (ifindex <= 0 || addr == NULL || !valid(slot, kbit))
		return -EINVAL;
	nlh = tc_header(buf, size, RTM_NEWTFILTER, NLM_F_ACK | NLM_F_CREATE, seq,
					ifindex,
					dir == WGTC_DOWN ? WGTC_ROOT_HANDLE : WGTC_INGRESS_HANDLE,
					slot, filter_info(v6));
	if (nlh == NULL)
		return -EMSGSIZE;
	if (dir == WGTC_DOWN)
	{
		key = v6 ? TCA_FLOWER_KEY_IPV6_DST : TCA_FLOWER_KEY_IPV4_DST;
		mask = v6 ? TCA_FLOWER_KEY_IPV6_DST_MASK : TCA_FLOWER_KEY_IPV4_DST_MASK;
	}
	else
	{
		key = v6 ? TCA_FLOWER_KEY_IPV6_SRC : TCA_FLOWER_KEY_IPV4_SRC;
		mask = v6 ? TCA_FLOWER_KEY_IPV6_SRC_MASK : TCA_FLOWER_KEY_IPV4_SRC_MASK;
	}
	mnl_attr_put_strz(nlh, TCA_KIND, "flower");
	opts = mnl_attr_nest_start(nlh, TCA_OPTIONS);
	mnl_attr_put_u16(nlh, TCA_FLOWER_KEY_ETH_TYPE,
					 htons(v6 ? ETH_P_IPV6 : ETH_P_IP));
	mnl_attr_put(nlh, key, alen, addr);
	mnl_attr_put(nlh, mask, alen, ones);
	if (dir == WGTC_DOWN)
		mnl_attr_put_u32(nlh, TCA_FLOWER_CLASSID, WGTC_ROOT_HANDLE | slot);
	else
		put_police(nlh, kbit);
	mnl_attr_nest_end(nlh, opts);
	return (int) nlh->nlmsg_len;
}

/* Remove a peer's filter for one family and direction. */
int
wgtc_build_del_filter(void *buf, size_t size, uint32_t seq, int ifindex,
					  wgtc_dir dir, bool v6, uint16_t slot)
{
	struct nlmsghdr *nlh;

	if (ifindex <= 0 || slot < 1 || slot > WGTC_SLOT_MAX)
		return -EINVAL;
	nlh = tc_header(buf, size, RTM_DELTFILTER, NLM_F_ACK, seq, ifindex,
					dir == WGTC_DOWN ? WGTC_ROOT_HANDLE : WGTC_INGRESS_HANDLE,
					slot, filter_info(v6));
	if (nlh == NULL)
		return -EMSGSIZE;
	mnl_attr_put_strz(nlh, TCA_KIND, "flower");
	return (int) nlh->nlmsg_len;
}

/*
 * A dump request: RTM_GETQDISC (every interface's: the answer is filtered
 * by ifindex), RTM_GETTCLASS or RTM_GETTFILTER (the filters under parent).
 */
int
wgtc_build_dump(void *buf, size_t size, uint32_t seq, uint16_t type,
				int ifindex, uint32_t parent)
{
	struct nlmsghdr *nlh;

	if (ifindex <= 0 || (type != RTM_GETQDISC && type != RTM_GETTCLASS &&
						 type != RTM_GETTFILTER))
		return -EINVAL;
	nlh = tc_header(buf, size, type, NLM_F_DUMP, seq, ifindex, parent, 0, 0);
	if (nlh == NULL)
		return -EMSGSIZE;
	return (int) nlh->nlmsg_len;
}

/* The attributes of a nest (or a message's, after its tcmsg), by type. */
typedef struct attrs
{
	const struct nlattr *tb[TCA_FLOWER_MAX + 1];
	int			max;
} attrs;

/* mnl callback: keep each attribute of a known type, the last one wins. */
static int
keep_attr(const struct nlattr *attr, void *data)
{
	attrs	   *a = data;
	int			type = mnl_attr_get_type(attr);

	if (type <= a->max)
		a->tb[type] = attr;
	return MNL_CB_OK;
}

/* Read a nest's attributes up to max (at most TCA_FLOWER_MAX). */
static void
nest_attrs(const struct nlattr *nest, int max, attrs *a)
{
	memset(a, 0, sizeof(*a));
	a->max = max;
	if (nest != NULL)
		mnl_attr_parse_nested(nest, keep_attr, a);
}

/* Whether an attribute carries a string equal to s. */
static bool
attr_is(const struct nlattr *attr, const char *s)
{
	size_t		n = strlen(s) + 1;

	return attr != NULL && mnl_attr_get_payload_len(attr) >= n &&
		memcmp(mnl_attr_get_payload(attr), s, n) == 0;
}

/* kbit/s of a rate in bytes/s (wgpeer's rates convert back exactly). */
static uint32_t
kbit_of(uint32_t rate_bytes)
{
	return (uint32_t) (((uint64_t) rate_bytes * 8 + 999) / 1000);
}

/* The rate of the first police action of an upload filter, 0 if none. */
static uint32_t
police_kbit(const struct nlattr *acts_attr)
{
	attrs		acts;

	nest_attrs(acts_attr, TCA_ACT_MAX_PRIO, &acts);
	for (int i = 1; i <= TCA_ACT_MAX_PRIO; i++)
	{
		attrs		act;
		attrs		opts;
		const struct tc_police *p;

		if (acts.tb[i] == NULL)
			continue;
		nest_attrs(acts.tb[i], TCA_ACT_MAX, &act);
		if (!attr_is(act.tb[TCA_ACT_KIND], "police"))
			continue;
		nest_attrs(act.tb[TCA_ACT_OPTIONS], TCA_POLICE_MAX, &opts);
		if (opts.tb[TCA_POLICE_TBF] == NULL ||
			mnl_attr_get_payload_len(opts.tb[TCA_POLICE_TBF]) < sizeof(*p))
			return 0;
		p = mnl_attr_get_payload(opts.tb[TCA_POLICE_TBF]);
		return kbit_of(p->rate.rate);
	}
	return 0;
}

/* A qdisc of the dump: is wgpeer's root, someone else's, the ingress? */
static void
parse_qdisc(const struct tcmsg *tcm, const attrs *a, wgtc_installed *found)
{
	if (tcm->tcm_parent == TC_H_ROOT)
	{
		if (tcm->tcm_handle == WGTC_ROOT_HANDLE && attr_is(a->tb[TCA_KIND], "htb"))
			found->root_ours = true;
		else if (tcm->tcm_handle != 0)
			found->root_foreign = true;
	}
	else if (tcm->tcm_parent == TC_H_INGRESS &&
			 tcm->tcm_handle == WGTC_INGRESS_HANDLE &&
			 attr_is(a->tb[TCA_KIND], "ingress"))
		found->ingress = true;
}

/* A class of the dump: one of wgpeer's, with its rate? */
static void
parse_class(const struct tcmsg *tcm, const attrs *a, wgtc_installed *found)
{
	attrs		opts;
	uint32_t	slot = TC_H_MIN(tcm->tcm_handle);
	const struct tc_htb_opt *opt;

	if (TC_H_MAJ(tcm->tcm_handle) != WGTC_ROOT_HANDLE || slot < 1 ||
		slot > WGTC_SLOT_MAX || !attr_is(a->tb[TCA_KIND], "htb"))
		return;
	nest_attrs(a->tb[TCA_OPTIONS], TCA_HTB_MAX, &opts);
	if (opts.tb[TCA_HTB_PARMS] == NULL ||
		mnl_attr_get_payload_len(opts.tb[TCA_HTB_PARMS]) < sizeof(*opt))
		return;
	opt = mnl_attr_get_payload(opts.tb[TCA_HTB_PARMS]);
	found->class_kbit[slot] = kbit_of(opt->rate.rate);
}

/*
 * A filter of the dump: one of wgpeer's (its priority, its parent, a
 * handle that is a slot, flower), and whole (download: to its slot's
 * class; upload: with a policer, whose rate is kept)?
 */
static void
parse_filter(const struct tcmsg *tcm, const attrs *a, wgtc_installed *found)
{
	uint32_t	prio = TC_H_MAJ(tcm->tcm_info) >> 16;
	bool		v6 = prio == WGTC_PRIO_V6;
	uint32_t	slot = tcm->tcm_handle;
	attrs		opts;

	if ((prio != WGTC_PRIO_V4 && !v6) || slot < 1 || slot > WGTC_SLOT_MAX ||
		!attr_is(a->tb[TCA_KIND], "flower"))
		return;
	nest_attrs(a->tb[TCA_OPTIONS], TCA_FLOWER_MAX, &opts);
	if (tcm->tcm_parent == WGTC_ROOT_HANDLE)
	{
		if (opts.tb[TCA_FLOWER_CLASSID] != NULL &&
			mnl_attr_get_payload_len(opts.tb[TCA_FLOWER_CLASSID]) >= 4 &&
			mnl_attr_get_u32(opts.tb[TCA_FLOWER_CLASSID]) == (WGTC_ROOT_HANDLE | slot))
			found->filters[slot] |= v6 ? WGTC_F_DOWN6 : WGTC_F_DOWN4;
	}
	else if (tcm->tcm_parent == WGTC_INGRESS_HANDLE)
	{
		uint32_t	kbit = police_kbit(opts.tb[TCA_FLOWER_ACT]);

		if (kbit == 0)
			return;
		found->filters[slot] |= v6 ? WGTC_F_UP6 : WGTC_F_UP4;
		/* the lower of the two, so that a drifted one is seen */
		if (found->police_kbit[slot] == 0 || kbit < found->police_kbit[slot])
			found->police_kbit[slot] = kbit;
	}
}

/*
 * One message of a qdisc, class or filter dump: what it says about
 * wgpeer's objects on ifindex goes into found (others are skipped).
 * Returns 0, or -EINVAL for a message too short to be one.
 */
int
wgtc_parse(const void *msg, size_t len, int ifindex, wgtc_installed *found)
{
	const struct nlmsghdr *nlh = msg;
	const struct tcmsg *tcm;
	attrs		a;

	if (len < sizeof(*nlh) || nlh->nlmsg_len > len ||
		nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(*tcm))
		return -EINVAL;
	tcm = mnl_nlmsg_get_payload(nlh);
	if (tcm->tcm_ifindex != ifindex)
		return 0;
	memset(&a, 0, sizeof(a));
	a.max = TCA_MAX;
	mnl_attr_parse(nlh, sizeof(*tcm), keep_attr, &a);
	switch (nlh->nlmsg_type)
	{
		case RTM_NEWQDISC:
			parse_qdisc(tcm, &a, found);
			break;
		case RTM_NEWTCLASS:
			parse_class(tcm, &a, found);
			break;
		case RTM_NEWTFILTER:
			parse_filter(tcm, &a, found);
			break;
		default:
			break;
	}
	return 0;
}

/*
 * Socket I/O.  Every request is acknowledged before the next is sent.
 */
struct wgtc_ctx
{
	struct mnl_socket *nl;
	uint32_t	portid;
	uint32_t	seq;
	alignas(struct nlmsghdr) char sendbuf[WGTC_MSG_MAX];
	alignas(struct nlmsghdr) char recvbuf[WGTC_RECV_SIZE];
};

/* Open an rtnetlink socket whose calls wait at most timeout_ms. */
int
wgtc_open(wgtc_ctx **out, int timeout_ms)
{
	wgtc_ctx   *ctx = calloc(1, sizeof(*ctx));
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int			fd;

	*out = NULL;
	if (ctx == NULL)
		return -ENOMEM;
	ctx->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (ctx->nl == NULL)
	{
		int			r = -errno;

		free(ctx);
		return r;
	}
	fd = mnl_socket_get_fd(ctx->nl);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
		mnl_socket_bind(ctx->nl, 0, MNL_SOCKET_AUTOPID) < 0)
	{
		int			r = -errno;

		wgtc_close(ctx);
		return r;
	}
	ctx->portid = mnl_socket_get_portid(ctx->nl);
	ctx->seq = (uint32_t) time(NULL);
	*out = ctx;
	return 0;
}

/* Close a socket from wgtc_open (NULL is fine). */
void
wgtc_close(wgtc_ctx *ctx)
{
	if (ctx == NULL)
		return;
	mnl_socket_close(ctx->nl);
	free(ctx);
}

/* Send the message built in sendbuf and wait for its acknowledgement. */
static int
talk(wgtc_ctx *ctx, int built)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *) ctx->sendbuf;

	if (built < 0)
		return built;
	if (mnl_socket_sendto(ctx->nl, ctx->sendbuf, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;)
	{
		ssize_t		n = mnl_socket_recvfrom(ctx->nl, ctx->recvbuf,
										   sizeof(ctx->recvbuf));
		int			r;

		if (n < 0)
			return -errno;
		r = mnl_cb_run(ctx->recvbuf, n, nlh->nlmsg_seq, ctx->portid, NULL, NULL);
		if (r < 0)
			return errno ? -errno : -EPROTO;
		if (r == MNL_CB_STOP)
			return 0;
	}
}

/* What a dump callback needs. */
typedef struct dump_arg
{
	int			ifindex;
	wgtc_installed *found;
} dump_arg;

/* mnl callback: one message of a dump. */
static int
dump_cb(const struct nlmsghdr *nlh, void *data)
{
	dump_arg   *d = data;

	return wgtc_parse(nlh, nlh->nlmsg_len, d->ifindex, d->found) < 0 ?
		MNL_CB_ERROR : MNL_CB_OK;
}

/* Run one dump into found. */
static int
dump(wgtc_ctx *ctx, uint16_t type, int ifindex, uint32_t parent,
	 wgtc_installed *found)
{
	int			built = wgtc_build_dump(ctx->sendbuf, sizeof(ctx->sendbuf),
										++ctx->seq, type, ifindex, parent);
	dump_arg	d = {ifindex, found};

	if (built < 0)
		return built;
	if (mnl_socket_sendto(ctx->nl, ctx->sendbuf, built) < 0)
		return -errno;
	for (;;)
	{
		ssize_t		n = mnl_socket_recvfrom(ctx->nl, ctx->recvbuf,
										   sizeof(ctx->recvbuf));
		int			r;

		if (n < 0)
			return -errno;
		r = mnl_cb_run(ctx->recvbuf, n, ctx->seq, ctx->portid, dump_cb, &d);
		if (r < 0)
			return errno ? -errno : -EPROTO;
		if (r == MNL_CB_STOP)
			return 0;
	}
}

/*
 * Read what wgpeer has installed on ifindex: qdiscs, its classes, its
 * filters on both sides.
 */
int
wgtc_read(wgtc_ctx *ctx, int ifindex, wgtc_installed *found)
{
	int			r;

	memset(found, 0, sizeof(*found));
	r = dump(ctx, RTM_GETQDISC, ifindex, 0, found);
	if (r == 0 && found->root_ours)
		r = dump(ctx, RTM_GETTCLASS, ifindex, 0, found);
	if (r == 0 && found->root_ours)
		r = dump(ctx, RTM_GETTFILTER, ifindex, WGTC_ROOT_HANDLE, found);
	if (r == 0 && found->ingress)
		r = dump(ctx, RTM_GETTFILTER, ifindex, WGTC_INGRESS_HANDLE, found);
	return r;
}

/*
 * Put wgpeer's root and the ingress qdisc on ifindex where missing.
 * -EEXIST: someone else's root qdisc is there (left as it is).
 */
int
wgtc_ensure_qdiscs(wgtc_ctx *ctx, int ifindex, const wgtc_installed *found)
{
	int			r;

	if (found->root_foreign)
		return -EEXIST;
	if (!found->root_ours)
	{
		r = talk(ctx, wgtc_build_root(ctx->sendbuf, sizeof(ctx->sendbuf),
									  ++ctx->seq, ifindex));
		if (r < 0)
			return r;
	}
	if (!found->ingress)
	{
		r = talk(ctx, wgtc_build_ingress(ctx->sendbuf, sizeof(ctx->sendbuf),
										 ++ctx->seq, ifindex));
		if (r < 0)
			return r;
	}
	return 0;
}

/* Remove one of a slot's filters if it is there. */
static int
del_filter(wgtc_ctx *ctx, int ifindex, const wgtc_installed *found,
		   uint16_t slot, wgtc_dir dir, bool v6)
{
	uint8_t		bit = dir == WGTC_DOWN ? (v6 ? WGTC_F_DOWN6 : WGTC_F_DOWN4) :
		(v6 ? WGTC_F_UP6 : WGTC_F_UP4);

	if ((found->filters[slot] & bit) == 0)
		return 0;
	return talk(ctx, wgtc_build_del_filter(ctx->sendbuf, sizeof(ctx->sendbuf),
										   ++ctx->seq, ifindex, dir, v6, slot));
}

/*
 * One direction and family of a peer: its filter made, changed or
 * removed, as the peer wants and found lacks.
 */
static int
set_filter(wgtc_ctx *ctx, int ifindex, const wgtc_peer *peer,
		   const wgtc_installed *found, wgtc_dir dir, bool v6)
{
	uint32_t	kbit = dir == WGTC_DOWN ? peer->down_kbit : peer->up_kbit;
	bool		has = v6 ? peer->has_v6 : peer->has_v4;
	uint8_t		bit = dir == WGTC_DOWN ? (v6 ? WGTC_F_DOWN6 : WGTC_F_DOWN4) :
		(v6 ? WGTC_F_UP6 : WGTC_F_UP4);
	bool		right;

	if (kbit == 0 || !has)
		return del_filter(ctx, ifindex, found, peer->slot, dir, v6);
	right = (found->filters[peer->slot] & bit) != 0 &&
		(dir == WGTC_DOWN ||
		 found->police_kbit[peer->slot] == kbit);
	if (right)
		return 0;
	return talk(ctx, wgtc_build_filter(ctx->sendbuf, sizeof(ctx->sendbuf),
									   ++ctx->seq, ifindex, dir, v6,
									   v6 ? peer->v6 : peer->v4, peer->slot,
									   kbit));
}

/*
 * Bring one peer's objects to what it wants, touching only those that
 * differ from found (read just before): a change of one peer's rate is a
 * message or two.
 */
int
wgtc_set_peer(wgtc_ctx *ctx, int ifindex, const wgtc_peer *peer,
			  const wgtc_installed *found)
{
	uint16_t	s = peer->slot;
	int			r = 0;

	if (s < 1 || s > WGTC_SLOT_MAX)
		return -EINVAL;
	if (peer->down_kbit != 0 && found->class_kbit[s] != peer->down_kbit)
		r = talk(ctx, wgtc_build_class(ctx->sendbuf, sizeof(ctx->sendbuf),
									   ++ctx->seq, ifindex, s,
									   peer->down_kbit));
	if (r == 0)
		r = set_filter(ctx, ifindex, peer, found, WGTC_DOWN, false);
	if (r == 0)
		r = set_filter(ctx, ifindex, peer, found, WGTC_DOWN, true);
	if (r == 0)
		r = set_filter(ctx, ifindex, peer, found, WGTC_UP, false);
	if (r == 0)
		r = set_filter(ctx, ifindex, peer, found, WGTC_UP, true);
	if (r == 0 && peer->down_kbit == 0 && found->class_kbit[s] != 0)
		r = talk(ctx, wgtc_build_del_class(ctx->sendbuf, sizeof(ctx->sendbuf),
										   ++ctx->seq, ifindex, s));
	return r;
}

/* Remove everything of a slot no peer wants any more. */
int
wgtc_clear_slot(wgtc_ctx *ctx, int ifindex, uint16_t slot,
				const wgtc_installed *found)
{
	wgtc_peer	none;

	memset(&none, 0, sizeof(none));
	none.slot = slot;
	return wgtc_set_peer(ctx, ifindex, &none, found);
}
