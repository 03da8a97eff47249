/*
 * test_shaping.c
 *		Unit tests of the speed limit messages (src/device/shaping.c),
 *		without a kernel.
 *
 * Each message is built, its header and attributes checked, and then fed
 * back to the dump parser: a NEWQDISC, NEWTCLASS or NEWTFILTER the kernel
 * dumps has the layout of the one that made the object, so what the parser
 * finds must be what was built.  Someone else's objects, other interfaces
 * and malformed messages are skipped or refused.
 */
#include "device/shaping.h"
#include "unit.h"

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <arpa/inet.h>

#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#define IFX 7

static alignas(struct nlmsghdr) char buf[WGTC_MSG_MAX];

/* The tcmsg of a built message. */
static const struct tcmsg *
tcm_of(void)
{
	return mnl_nlmsg_get_payload((const struct nlmsghdr *) buf);
}

/* A fresh, zeroed record of what was found. */
static wgtc_installed *
fresh(void)
{
	wgtc_installed *f = calloc(1, sizeof(*f));

	if (f == NULL)
		abort();
	return f;
}

/* A top-level attribute of the built message, or NULL. */
static const struct nlattr *
top_attr(uint16_t type)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *) buf;
	const struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(struct tcmsg))
		if (mnl_attr_get_type(attr) == type)
		return attr;
	return NULL;
}

/* A nested attribute of nest, or NULL. */
static const struct nlattr *
nested(const struct nlattr *nest, uint16_t type)
{
	const struct nlattr *attr;

	if (nest == NULL)
		return NULL;
	mnl_attr_for_each_nested(attr, nest)
		if (mnl_attr_get_type(attr) == type)
		return attr;
	return NULL;
}

static void
test_rates(void)
{
	CHECK(wgtc_rate_bytes(2000) == 250000);
	CHECK(wgtc_rate_bytes(WGTC_KBIT_MAX) == 1250000000u);
	/* 1 s of 250000 B/s is 1e9 ns, 15625000 ticks of 64 ns */
	CHECK(wgtc_ticks(250000, 250000) == 15625000);
	CHECK(wgtc_ticks(1, 0) == UINT32_MAX);
	CHECK(wgtc_ticks(UINT32_MAX, 1) == UINT32_MAX);
	/* bursts: 100 ms of the rate, at least 64 KiB and a packet */
	CHECK(wgtc_burst(250000) == 65536 + 1600);
	CHECK(wgtc_burst(1250000) == 125000);
	CHECK(wgtc_burst(1250000000u) == 125000000);
}

static void
test_root(void)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *) buf;
	const struct nlattr *opts;
	const struct tc_htb_glob *glob;
	wgtc_installed *f = fresh();
	int			n;

	n = wgtc_build_root(buf, sizeof(buf), 5, IFX);
	CHECK(n > 0 && (uint32_t) n == nlh->nlmsg_len);
	CHECK(nlh->nlmsg_type == RTM_NEWQDISC);
	/* never over someone else's root: NLM_F_EXCL, no NLM_F_REPLACE */
	CHECK((nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK)) ==
		  (NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK));
	CHECK((nlh->nlmsg_flags & NLM_F_REPLACE) == 0);
	CHECK(nlh->nlmsg_seq == 5);
	CHECK(tcm_of()->tcm_ifindex == IFX);
	CHECK(tcm_of()->tcm_parent == TC_H_ROOT);
	CHECK(tcm_of()->tcm_handle == 0x77700000u);
	CHECK_STR(mnl_attr_get_str(top_attr(TCA_KIND)), "htb");
	opts = top_attr(TCA_OPTIONS);
	CHECK(nested(opts, TCA_HTB_INIT) != NULL);
	glob = mnl_attr_get_payload(nested(opts, TCA_HTB_INIT));
	CHECK(glob->version == TC_HTB_PROTOVER);
	CHECK(glob->defcls == 0);
	CHECK(mnl_attr_get_u32(nested(opts, TCA_HTB_DIRECT_QLEN)) == 1000);

	/* dumped back, it is wgpeer's root */
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(f->root_ours && !f->root_foreign && !f->ingress);

	/* on another interface: not this one's */
	memset(f, 0, sizeof(*f));
	CHECK(wgtc_parse(buf, n, IFX + 1, f) == 0);
	CHECK(!f->root_ours && !f->root_foreign);

	/* the ingress qdisc */
	n = wgtc_build_ingress(buf, sizeof(buf), 6, IFX);
	CHECK(n > 0);
	CHECK(tcm_of()->tcm_parent == TC_H_INGRESS);
	CHECK(tcm_of()->tcm_handle == 0xffff0000u);
	CHECK_STR(mnl_attr_get_str(top_attr(TCA_KIND)), "ingress");
	memset(f, 0, sizeof(*f));
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(f->ingress && !f->root_ours && !f->root_foreign);

	/* a root qdisc of someone else's: another handle, or another kind */
	n = wgtc_build_root(buf, sizeof(buf), 7, IFX);
	((struct tcmsg *) tcm_of())->tcm_handle = 0x10000;
	memset(f, 0, sizeof(*f));
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(!f->root_ours && f->root_foreign);
	n = wgtc_build_ingress(buf, sizeof(buf), 8, IFX);
	((struct tcmsg *) tcm_of())->tcm_parent = TC_H_ROOT;
	((struct tcmsg *) tcm_of())->tcm_handle = 0x77700000u;
	memset(f, 0, sizeof(*f));
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(!f->root_ours && f->root_foreign);
	/* the default qdisc (handle 0, noqueue) is nobody's */
	((struct tcmsg *) tcm_of())->tcm_handle = 0;
	memset(f, 0, sizeof(*f));
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(!f->root_ours && !f->root_foreign);

	CHECK(wgtc_build_root(buf, sizeof(buf), 1, 0) == -EINVAL);
	CHECK(wgtc_build_root(buf, 64, 1, IFX) == -EMSGSIZE);
	free(f);
}

static void
test_class(void)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *) buf;
	const struct tc_htb_opt *opt;
	wgtc_installed *f = fresh();
	int			n;

	n = wgtc_build_class(buf, sizeof(buf), 9, IFX, 42, 2000);
	CHECK(n > 0);
	CHECK(nlh->nlmsg_type == RTM_NEWTCLASS);
	/* changed in place when there: no NLM_F_EXCL */
	CHECK((nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL)) == NLM_F_CREATE);
	CHECK(tcm_of()->tcm_parent == 0x77700000u);
	CHECK(tcm_of()->tcm_handle == 0x7770002au);
	opt = mnl_attr_get_payload(nested(top_attr(TCA_OPTIONS), TCA_HTB_PARMS));
	CHECK(opt->rate.rate == 250000 && opt->ceil.rate == 250000);
	CHECK(opt->rate.linklayer == TC_LINKLAYER_ETHERNET);
	/* at least a 64 KiB packet and a full one: 67136 bytes at 250000 B/s */
	CHECK(opt->buffer == wgtc_ticks(67136, 250000) && opt->cbuffer == opt->buffer);
	CHECK(opt->quantum == 25000);

	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(f->class_kbit[42] == 2000);
	CHECK(f->class_kbit[41] == 0 && f->class_kbit[43] == 0);

	/* limits of quantum, rate and slot */
	n = wgtc_build_class(buf, sizeof(buf), 9, IFX, WGTC_SLOT_MAX, WGTC_KBIT_MIN);
	CHECK(n > 0);
	opt = mnl_attr_get_payload(nested(top_attr(TCA_OPTIONS), TCA_HTB_PARMS));
	CHECK(opt->quantum == 1000);
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(f->class_kbit[WGTC_SLOT_MAX] == WGTC_KBIT_MIN);
	n = wgtc_build_class(buf, sizeof(buf), 9, IFX, 1, WGTC_KBIT_MAX);
	opt = mnl_attr_get_payload(nested(top_attr(TCA_OPTIONS), TCA_HTB_PARMS));
	CHECK(n > 0 && opt->quantum == 200000);
	CHECK(wgtc_build_class(buf, sizeof(buf), 9, IFX, 0, 2000) == -EINVAL);
	CHECK(wgtc_build_class(buf, sizeof(buf), 9, IFX, 65535, 2000) == -EINVAL);
	CHECK(wgtc_build_class(buf, sizeof(buf), 9, IFX, 1, WGTC_KBIT_MIN - 1) == -EINVAL);
	CHECK(wgtc_build_class(buf, sizeof(buf), 9, IFX, 1, WGTC_KBIT_MAX + 1) == -EINVAL);

	/* a class under another qdisc is not wgpeer's */
	n = wgtc_build_class(buf, sizeof(buf), 9, IFX, 5, 3000);
	((struct tcmsg *) tcm_of())->tcm_handle = 0x10005;
	memset(f, 0, sizeof(*f));
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(f->class_kbit[5] == 0);

	n = wgtc_build_del_class(buf, sizeof(buf), 10, IFX, 42);
	CHECK(n > 0 && nlh->nlmsg_type == RTM_DELTCLASS);
	CHECK(tcm_of()->tcm_handle == 0x7770002au);
	CHECK(wgtc_build_del_class(buf, sizeof(buf), 10, IFX, 0) == -EINVAL);
	free(f);
}

static void
test_filters(void)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *) buf;
	const struct nlattr *opts;
	const struct nlattr *act;
	const struct tc_police *police;
	const uint8_t v4[4] = {10, 8, 0, 3};
	uint8_t		v6[16];
	wgtc_installed *f = fresh();
	int			n;

	inet_pton(AF_INET6, "fd00:8::3", v6);

	/* download, IPv4: destination, to the slot's class */
	n = wgtc_build_filter(buf, sizeof(buf), 11, IFX, WGTC_DOWN, false, v4, 42, 2000);
	CHECK(n > 0 && nlh->nlmsg_type == RTM_NEWTFILTER);
	CHECK(tcm_of()->tcm_parent == 0x77700000u);
	CHECK(tcm_of()->tcm_handle == 42);
	CHECK(tcm_of()->tcm_info == TC_H_MAKE(WGTC_PRIO_V4 << 16, htons(ETH_P_IP)));
	CHECK_STR(mnl_attr_get_str(top_attr(TCA_KIND)), "flower");
	opts = top_attr(TCA_OPTIONS);
	CHECK(mnl_attr_get_u16(nested(opts, TCA_FLOWER_KEY_ETH_TYPE)) == htons(ETH_P_IP));
	CHECK(memcmp(mnl_attr_get_payload(nested(opts, TCA_FLOWER_KEY_IPV4_DST)), v4, 4) == 0);
	CHECK(*(const uint32_t *) mnl_attr_get_payload(nested(opts, TCA_FLOWER_KEY_IPV4_DST_MASK)) == 0xffffffffu);
	CHECK(nested(opts, TCA_FLOWER_KEY_IPV4_SRC) == NULL);
	CHECK(mnl_attr_get_u32(nested(opts, TCA_FLOWER_CLASSID)) == 0x7770002au);
	CHECK(nested(opts, TCA_FLOWER_ACT) == NULL);
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(f->filters[42] == WGTC_F_DOWN4);

	/* download, IPv6 */
	n = wgtc_build_filter(buf, sizeof(buf), 12, IFX, WGTC_DOWN, true, v6, 42, 2000);
	CHECK(tcm_of()->tcm_info == TC_H_MAKE(WGTC_PRIO_V6 << 16, htons(ETH_P_IPV6)));
	opts = top_attr(TCA_OPTIONS);
	CHECK(memcmp(mnl_attr_get_payload(nested(opts, TCA_FLOWER_KEY_IPV6_DST)), v6, 16) == 0);
	CHECK(mnl_attr_get_payload_len(nested(opts, TCA_FLOWER_KEY_IPV6_DST_MASK)) == 16);
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(f->filters[42] == (WGTC_F_DOWN4 | WGTC_F_DOWN6));

	/* upload, IPv4: source, on the ingress, policed */
	n = wgtc_build_filter(buf, sizeof(buf), 13, IFX, WGTC_UP, false, v4, 42, 1000);
	CHECK(n > 0);
	CHECK(tcm_of()->tcm_parent == 0xffff0000u);
	opts = top_attr(TCA_OPTIONS);
	CHECK(memcmp(mnl_attr_get_payload(nested(opts, TCA_FLOWER_KEY_IPV4_SRC)), v4, 4) == 0);
	CHECK(nested(opts, TCA_FLOWER_KEY_IPV4_DST) == NULL);
	CHECK(nested(opts, TCA_FLOWER_CLASSID) == NULL);
	act = nested(nested(opts, TCA_FLOWER_ACT), 1);
	CHECK_STR(mnl_attr_get_str(nested(act, TCA_ACT_KIND)), "police");
	police = mnl_attr_get_payload(nested(nested(act, TCA_ACT_OPTIONS), TCA_POLICE_TBF));
	CHECK(police->rate.rate == 125000);
	CHECK(police->rate.linklayer == TC_LINKLAYER_ETHERNET && police->rate.cell_log > 0);
	CHECK(police->action == TC_ACT_SHOT);
	/* the burst holds a 64 KiB GRO packet */
	CHECK(police->burst >= wgtc_ticks(65536, 125000));
	CHECK(police->burst == wgtc_ticks(65536 + 1600, 125000));
	CHECK(mnl_attr_get_payload_len(nested(nested(act, TCA_ACT_OPTIONS), TCA_POLICE_RATE)) == TC_RTAB_SIZE);
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(f->filters[42] == (WGTC_F_DOWN4 | WGTC_F_DOWN6 | WGTC_F_UP4));
	CHECK(f->police_kbit[42] == 1000);

	/* upload, IPv6, at another rate: the lower is kept (drift shows) */
	n = wgtc_build_filter(buf, sizeof(buf), 14, IFX, WGTC_UP, true, v6, 42, 800);
	opts = top_attr(TCA_OPTIONS);
	CHECK(memcmp(mnl_attr_get_payload(nested(opts, TCA_FLOWER_KEY_IPV6_SRC)), v6, 16) == 0);
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(f->filters[42] == (WGTC_F_DOWN4 | WGTC_F_DOWN6 | WGTC_F_UP4 | WGTC_F_UP6));
	CHECK(f->police_kbit[42] == 800);

	/* not wgpeer's: another priority, another class, handle 0 */
	memset(f, 0, sizeof(*f));
	n = wgtc_build_filter(buf, sizeof(buf), 15, IFX, WGTC_DOWN, false, v4, 9, 2000);
	((struct tcmsg *) tcm_of())->tcm_info = TC_H_MAKE(1 << 16, htons(ETH_P_IP));
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(f->filters[9] == 0);
	n = wgtc_build_filter(buf, sizeof(buf), 15, IFX, WGTC_DOWN, false, v4, 9, 2000);
	((struct tcmsg *) tcm_of())->tcm_handle = 10;
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(f->filters[10] == 0);	/* its class is 7770:9, not 7770:a */
	n = wgtc_build_filter(buf, sizeof(buf), 15, IFX, WGTC_UP, false, v4, 9, 2000);
	((struct tcmsg *) tcm_of())->tcm_handle = 0;
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	for (int i = 0; i <= WGTC_SLOT_MAX; i++)
		if (f->filters[i] != 0)
		{
			CHECK(f->filters[i] == 0);
			break;
		}

	CHECK(wgtc_build_filter(buf, sizeof(buf), 1, IFX, WGTC_UP, false, NULL, 1, 1000) == -EINVAL);
	CHECK(wgtc_build_filter(buf, sizeof(buf), 1, IFX, WGTC_UP, false, v4, 1, 0) == -EINVAL);
	CHECK(wgtc_build_filter(buf, 100, 1, IFX, WGTC_UP, false, v4, 1, 1000) == -EMSGSIZE);

	n = wgtc_build_del_filter(buf, sizeof(buf), 16, IFX, WGTC_UP, true, 42);
	CHECK(n > 0 && nlh->nlmsg_type == RTM_DELTFILTER);
	CHECK(tcm_of()->tcm_parent == 0xffff0000u && tcm_of()->tcm_handle == 42);
	CHECK(tcm_of()->tcm_info == TC_H_MAKE(WGTC_PRIO_V6 << 16, htons(ETH_P_IPV6)));
	free(f);
}

static void
test_dump_and_malformed(void)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *) buf;
	wgtc_installed *f = fresh();
	int			n;

	n = wgtc_build_dump(buf, sizeof(buf), 17, RTM_GETTFILTER, IFX, 0xffff0000u);
	CHECK(n > 0 && nlh->nlmsg_type == RTM_GETTFILTER);
	CHECK((nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP);
	CHECK(tcm_of()->tcm_ifindex == IFX && tcm_of()->tcm_parent == 0xffff0000u);
	CHECK(wgtc_build_dump(buf, sizeof(buf), 17, RTM_GETLINK, IFX, 0) == -EINVAL);

	/* too short for a tcmsg, or longer than the bytes given */
	n = wgtc_build_class(buf, sizeof(buf), 18, IFX, 3, 2000);
	CHECK(wgtc_parse(buf, 8, IFX, f) == -EINVAL);
	CHECK(wgtc_parse(buf, n - 4, IFX, f) == -EINVAL);
	((struct nlmsghdr *) buf)->nlmsg_len = MNL_NLMSG_HDRLEN;
	CHECK(wgtc_parse(buf, n, IFX, f) == -EINVAL);
	/* a class without its parameters is not one of wgpeer's */
	n = wgtc_build_class(buf, sizeof(buf), 18, IFX, 3, 2000);
	((struct nlmsghdr *) buf)->nlmsg_len = MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct tcmsg));
	CHECK(wgtc_parse(buf, n, IFX, f) == 0);
	CHECK(f->class_kbit[3] == 0);
	free(f);
}

int
main(void)
{
	test_rates();
	test_root();
	test_class();
	test_filters();
	test_dump_and_malformed();
	return UNIT_DONE("test_shaping");
}
