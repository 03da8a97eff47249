/*
 * test_netlink.c
 *		Unit tests of the WireGuard netlink message building and parsing,
 *		without a kernel.
 *
 * SET batches are built message by message, each message is decoded
 * independently (every nest walked with mnl_attr_parse and checked to be
 * exactly filled), and the decoded messages are replayed into a model of
 * what the kernel would apply, which must equal the batch.  GET dump
 * replies are hand-built with libmnl and fed to the parser, and devices
 * dumped as the kernel cuts them (test/netlink_dump.h) parse back equal.
 * Last, the socket layer against this machine's kernel, with or without
 * WireGuard.
 */
#include "device/netlink.h"
#include "device_equal.h"
#include "netlink_dump.h"
#include "unit.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <arpa/inet.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>

#define FAMILY_ID 0x1b
#define SEQ0 1000

/* A peer as the messages decoded so far would leave it in the kernel. */
typedef struct model_peer
{
	uint8_t		key[WG_KEY_LEN];
	bool		remove;
	bool		has_psk;
	uint8_t		psk[WG_KEY_LEN];
	int			keepalive;
	wg_allowedip *ips;
	size_t		n_ips;
	int			fragments;		/* peer nests it was sent in */
} model_peer;

/* The union of every decoded message of one batch. */
typedef struct model
{
	size_t		limit;			/* no message may exceed this */
	int			messages;
	bool		bad;			/* a malformed or misflagged message */
	bool		has_priv;
	uint8_t		priv[WG_KEY_LEN];
	int			port;
	model_peer *peers;
	size_t		n_peers;
	size_t		cap_peers;
} model;

/* Decoding state of one peer nest. */
typedef struct frag
{
	const uint8_t *key;
	uint32_t	flags;
	bool		has_flags;
	const uint8_t *psk;
	int			keepalive;
	wg_allowedip *ips;
	size_t		n_ips;
	bool		bad;
} frag;

/* Do the attributes inside nest fill its payload exactly? */
static bool
nest_exact(const struct nlattr *nest)
{
	const struct nlattr *a = mnl_attr_get_payload(nest);
	int			len = mnl_attr_get_payload_len(nest);

	while (mnl_attr_ok(a, len))
	{
		len -= MNL_ALIGN(a->nla_len);
		a = mnl_attr_next(a);
	}
	return len == 0;
}

/* mnl_attr_parse callback for one allowed IP nest's attributes. */
static int
ip_cb(const struct nlattr *attr, void *data)
{
	wg_allowedip *ip = data;

	switch (mnl_attr_get_type(attr))
	{
		case WGALLOWEDIP_A_FAMILY:
			if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
				return MNL_CB_ERROR;
			ip->family = mnl_attr_get_u16(attr);
			return MNL_CB_OK;
		case WGALLOWEDIP_A_IPADDR:
			if (mnl_attr_get_payload_len(attr) != 4 &&
				mnl_attr_get_payload_len(attr) != 16)
				return MNL_CB_ERROR;
			memcpy(&ip->addr, mnl_attr_get_payload(attr),
				   mnl_attr_get_payload_len(attr));
			return MNL_CB_OK;
		case WGALLOWEDIP_A_CIDR_MASK:
			if (mnl_attr_validate(attr, MNL_TYPE_U8) < 0)
				return MNL_CB_ERROR;
			ip->cidr = mnl_attr_get_u8(attr);
			return MNL_CB_OK;
	}
	return MNL_CB_ERROR;
}

/* mnl_attr_parse callback for the list of allowed IP nests. */
static int
ips_cb(const struct nlattr *attr, void *data)
{
	frag	   *f = data;
	wg_allowedip ip;

	memset(&ip, 0, sizeof(ip));
	if (!nest_exact(attr) ||
		mnl_attr_parse_nested(attr, ip_cb, &ip) != MNL_CB_OK)
		return MNL_CB_ERROR;
	f->ips = realloc(f->ips, (f->n_ips + 1) * sizeof(ip));
	f->ips[f->n_ips++] = ip;
	return MNL_CB_OK;
}

/* mnl_attr_parse callback for one peer nest's attributes. */
static int
peer_cb(const struct nlattr *attr, void *data)
{
	frag	   *f = data;

	switch (mnl_attr_get_type(attr))
	{
		case WGPEER_A_PUBLIC_KEY:
			if (mnl_attr_get_payload_len(attr) != WG_KEY_LEN)
				return MNL_CB_ERROR;
			f->key = mnl_attr_get_payload(attr);
			return MNL_CB_OK;
		case WGPEER_A_FLAGS:
			if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
				return MNL_CB_ERROR;
			f->flags = mnl_attr_get_u32(attr);
			f->has_flags = true;
			return MNL_CB_OK;
		case WGPEER_A_PRESHARED_KEY:
			if (mnl_attr_get_payload_len(attr) != WG_KEY_LEN)
				return MNL_CB_ERROR;
			f->psk = mnl_attr_get_payload(attr);
			return MNL_CB_OK;
		case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
			if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
				return MNL_CB_ERROR;
			f->keepalive = mnl_attr_get_u16(attr);
			return MNL_CB_OK;
		case WGPEER_A_ALLOWEDIPS:
			if (!(attr->nla_type & NLA_F_NESTED) || !nest_exact(attr))
				return MNL_CB_ERROR;
			return mnl_attr_parse_nested(attr, ips_cb, f);
	}
	return MNL_CB_ERROR;
}

/*
 * Replay one decoded peer nest into the model, checking its flags: a new
 * add replaces, a removal removes and carries nothing else, a continuation
 * opens its message, repeats the previous peer's key, and neither replaces
 * nor carries the preshared key or keepalive again.
 */
static void
model_apply(model *m, frag *f, bool first_in_msg)
{
	model_peer *last = m->n_peers ? &m->peers[m->n_peers - 1] : NULL;
	model_peer *p;

	if (f->bad || f->key == NULL || !f->has_flags)
	{
		m->bad = true;
		return;
	}
	if (f->flags == WGPEER_F_UPDATE_ONLY)
	{
		if (!first_in_msg || last == NULL || last->remove ||
			memcmp(last->key, f->key, WG_KEY_LEN) != 0 ||
			f->psk != NULL || f->keepalive >= 0 || f->n_ips == 0)
		{
			m->bad = true;
			return;
		}
		last->ips = realloc(last->ips, (last->n_ips + f->n_ips) * sizeof(wg_allowedip));
		memcpy(last->ips + last->n_ips, f->ips, f->n_ips * sizeof(wg_allowedip));
		last->n_ips += f->n_ips;
		last->fragments++;
		return;
	}
	if (f->flags != WGPEER_F_REPLACE_ALLOWEDIPS && f->flags != WGPEER_F_REMOVE_ME)
	{
		m->bad = true;
		return;
	}
	if (m->n_peers == m->cap_peers)
	{
		m->cap_peers = m->cap_peers ? m->cap_peers * 2 : 16;
		m->peers = realloc(m->peers, m->cap_peers * sizeof(model_peer));
	}
	p = &m->peers[m->n_peers++];
	memset(p, 0, sizeof(*p));
	memcpy(p->key, f->key, WG_KEY_LEN);
	p->remove = f->flags == WGPEER_F_REMOVE_ME;
	p->fragments = 1;
	p->keepalive = f->keepalive;
	if (f->psk)
	{
		p->has_psk = true;
		memcpy(p->psk, f->psk, WG_KEY_LEN);
	}
	if (p->remove && (f->n_ips || f->psk || f->keepalive >= 0))
		m->bad = true;
	p->ips = f->ips;
	p->n_ips = f->n_ips;
	f->ips = NULL;
}

/* Decoding state of one message's device attributes. */
typedef struct msg_state
{
	model	   *m;
	bool		first_msg;
	bool		seen_ifname;
	int			peers_in_msg;
} msg_state;

/* mnl_attr_parse callback for the peer nests in WGDEVICE_A_PEERS. */
static int
peers_cb(const struct nlattr *attr, void *data)
{
	msg_state  *st = data;
	frag		f;

	memset(&f, 0, sizeof(f));
	f.keepalive = -1;
	if (!(attr->nla_type & NLA_F_NESTED) || !nest_exact(attr) ||
		mnl_attr_parse_nested(attr, peer_cb, &f) != MNL_CB_OK)
		f.bad = true;
	model_apply(st->m, &f, st->peers_in_msg == 0);
	st->peers_in_msg++;
	free(f.ips);
	return MNL_CB_OK;
}

/* mnl_attr_parse callback for a SET message's top-level attributes. */
static int
dev_cb(const struct nlattr *attr, void *data)
{
	msg_state  *st = data;

	switch (mnl_attr_get_type(attr))
	{
		case WGDEVICE_A_IFNAME:
			if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0 ||
				strcmp(mnl_attr_get_str(attr), "wg0") != 0)
				return MNL_CB_ERROR;
			st->seen_ifname = true;
			return MNL_CB_OK;
		case WGDEVICE_A_PRIVATE_KEY:
			if (!st->first_msg || mnl_attr_get_payload_len(attr) != WG_KEY_LEN)
				return MNL_CB_ERROR;
			st->m->has_priv = true;
			memcpy(st->m->priv, mnl_attr_get_payload(attr), WG_KEY_LEN);
			return MNL_CB_OK;
		case WGDEVICE_A_LISTEN_PORT:
			if (!st->first_msg || mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
				return MNL_CB_ERROR;
			st->m->port = mnl_attr_get_u16(attr);
			return MNL_CB_OK;
		case WGDEVICE_A_PEERS:
			if (!(attr->nla_type & NLA_F_NESTED) || !nest_exact(attr))
				return MNL_CB_ERROR;
			return mnl_attr_parse_nested(attr, peers_cb, st);
	}
	return MNL_CB_ERROR;
}

/* Decode one built SET message into the model, checking its framing. */
static void
model_decode(model *m, const void *buf, int len, uint32_t seq)
{
	const struct nlmsghdr *nlh = buf;
	const struct genlmsghdr *genl;
	const struct nlattr *a;
	int			left;
	msg_state	st;

	memset(&st, 0, sizeof(st));
	st.m = m;
	st.first_msg = m->messages == 0;
	m->messages++;

	if (len <= 0 || (size_t) len > m->limit || nlh->nlmsg_len != (uint32_t) len ||
		nlh->nlmsg_type != FAMILY_ID ||
		nlh->nlmsg_flags != (NLM_F_REQUEST | NLM_F_ACK) || nlh->nlmsg_seq != seq)
	{
		m->bad = true;
		return;
	}
	genl = mnl_nlmsg_get_payload(nlh);
	if (genl->cmd != WG_CMD_SET_DEVICE || genl->version != WG_GENL_VERSION)
		m->bad = true;

	/* the top-level attributes fill the message exactly */
	a = mnl_nlmsg_get_payload_offset(nlh, sizeof(*genl));
	left = len - MNL_NLMSG_HDRLEN - MNL_ALIGN(sizeof(*genl));
	while (mnl_attr_ok(a, left))
	{
		left -= MNL_ALIGN(a->nla_len);
		a = mnl_attr_next(a);
	}
	if (left != 0 ||
		mnl_attr_parse(nlh, sizeof(*genl), dev_cb, &st) != MNL_CB_OK ||
		!st.seen_ifname || (!st.first_msg && st.peers_in_msg == 0))
		m->bad = true;
}

/* Free a model's memory. */
static void
model_free(model *m)
{
	size_t		i;

	for (i = 0; i < m->n_peers; i++)
		free(m->peers[i].ips);
	free(m->peers);
	memset(m, 0, sizeof(*m));
}

/* Does the model reproduce the batch exactly, peer by peer, IP by IP? */
static bool
model_matches(const model *m, const wg_device_change *c)
{
	size_t		i;
	size_t		j;

	if (m->bad || m->has_priv != c->has_private_key ||
		(c->has_private_key && memcmp(m->priv, c->private_key, WG_KEY_LEN)) ||
		m->port != (c->listen_port >= 0 ? c->listen_port : 0) ||
		m->n_peers != c->n_peers)
		return false;
	for (i = 0; i < c->n_peers; i++)
	{
		const wg_peer_change *want = &c->peers[i];
		const model_peer *got = &m->peers[i];

		if (memcmp(got->key, want->public_key, WG_KEY_LEN) != 0 ||
			got->remove != want->remove)
			return false;
		if (want->remove)
			continue;
		if (got->has_psk != want->has_preshared_key ||
			(want->has_preshared_key &&
			 memcmp(got->psk, want->preshared_key, WG_KEY_LEN) != 0) ||
			got->keepalive != want->keepalive ||
			got->n_ips != want->n_allowedips)
			return false;
		for (j = 0; j < got->n_ips; j++)
			if (!allowedip_equal(&got->ips[j], &want->allowedips[j]))
				return false;
	}
	return true;
}

/*
 * Build every message of a batch with buffers of size bytes, decoding each
 * into m.  Returns the number of messages, or the builder's -errno.
 */
static int
build_all(model *m, const wg_device_change *c, size_t size)
{
	wgnl_set_cursor cursor;
	char	   *buf = malloc(size);
	uint32_t	seq = SEQ0;
	int			r;

	memset(m, 0, sizeof(*m));
	m->limit = size;
	memset(&cursor, 0, sizeof(cursor));
	while ((r = wgnl_build_set(buf, size, FAMILY_ID, seq, c, &cursor)) > 0)
	{
		model_decode(m, buf, r, seq);
		seq++;
		if (m->messages > 1000000)
		{
			r = -ELOOP;
			break;
		}
	}
	free(buf);
	if (r == 0 && cursor.messages != (unsigned int) m->messages)
		r = -EPROTO;
	return r < 0 ? r : m->messages;
}

/* Deterministic pseudo-random bytes (tests must be reproducible). */
static void
fill_random(uint8_t *buf, size_t len)
{
	size_t		i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t) (rand() >> 7);
}

/* The n-th address of 10.0.0.0/8 as a /32. */
static wg_allowedip
ip4(uint32_t n, uint8_t cidr)
{
	wg_allowedip a;

	memset(&a, 0, sizeof(a));
	a.family = AF_INET;
	a.cidr = cidr;
	a.addr.ip4.s_addr = htonl(0x0a000000u + n);
	return a;
}

/* The n-th address of fd00::/64. */
static wg_allowedip
ip6(uint32_t n, uint8_t cidr)
{
	wg_allowedip a;

	memset(&a, 0, sizeof(a));
	a.family = AF_INET6;
	a.cidr = cidr;
	a.addr.ip6.s6_addr[0] = 0xfd;
	a.addr.ip6.s6_addr[12] = n >> 24;
	a.addr.ip6.s6_addr[13] = n >> 16;
	a.addr.ip6.s6_addr[14] = n >> 8;
	a.addr.ip6.s6_addr[15] = n;
	return a;
}

/* A batch and the storage its peers point into. */
typedef struct batch
{
	wg_device_change change;
	wg_peer_change *peers;
	wg_allowedip *ips;
} batch;

/*
 * Make a batch of n peers; peer i gets nips(i) allowed IPs, and every
 * remove_every-th peer (if nonzero) is a removal.
 */
static void
make_batch(batch *b, size_t n, size_t (*nips) (size_t), size_t remove_every)
{
	size_t		total = 0;
	size_t		i;
	size_t		j;
	wg_allowedip *ip;

	for (i = 0; i < n; i++)
		total += nips(i);
	b->peers = calloc(n ? n : 1, sizeof(wg_peer_change));
	b->ips = calloc(total ? total : 1, sizeof(wg_allowedip));
	memset(&b->change, 0, sizeof(b->change));
	b->change.ifname = "wg0";
	b->change.has_private_key = true;
	fill_random(b->change.private_key, WG_KEY_LEN);
	b->change.listen_port = 51820;
	b->change.peers = b->peers;
	b->change.n_peers = n;

	ip = b->ips;
	for (i = 0; i < n; i++)
	{
		wg_peer_change *p = &b->peers[i];

		fill_random(p->public_key, WG_KEY_LEN);
		p->keepalive = i % 3 == 0 ? -1 : (int) (i % 60);
		p->has_preshared_key = i % 2 == 0;
		fill_random(p->preshared_key, WG_KEY_LEN);
		p->remove = remove_every && i % remove_every == remove_every - 1;
		p->allowedips = ip;
		p->n_allowedips = nips(i);
		for (j = 0; j < p->n_allowedips; j++)
			*ip++ = j % 2 == 0 ? ip4(i * 7 + j, 32 - j % 9) : ip6(i * 7 + j, 128 - j % 17);
		if (p->remove)
			p->n_allowedips = 0;
	}
}

/* Free a batch. */
static void
free_batch(batch *b)
{
	free(b->peers);
	free(b->ips);
}

static size_t
two_ips(size_t i)
{
	(void) i;
	return 2;
}

static size_t
few_ips(size_t i)
{
	return (i * 5) % 7;
}

static size_t
two_thousand(size_t i)
{
	(void) i;
	return 2000;
}

static size_t
huge_middle(size_t i)
{
	return i == 1 ? 3000 : 3;
}

/* One peer, one message: device settings and the peer with its flags. */
static void
test_single_peer(void)
{
	batch		b;
	model		m;

	make_batch(&b, 1, two_ips, 0);
	b.peers[0].has_preshared_key = true;
	b.peers[0].keepalive = 25;
	CHECK(build_all(&m, &b.change, WGNL_SET_MSG_MAX) == 1);
	CHECK(model_matches(&m, &b.change));
	CHECK(m.n_peers == 1 && m.peers[0].fragments == 1 && m.peers[0].keepalive == 25);
	model_free(&m);

	/* a removal carries its key and REMOVE_ME only */
	b.peers[0].remove = true;
	CHECK(build_all(&m, &b.change, WGNL_SET_MSG_MAX) == 1);
	CHECK(model_matches(&m, &b.change));
	model_free(&m);

	/* no device settings: none sent */
	b.change.has_private_key = false;
	b.change.listen_port = -1;
	CHECK(build_all(&m, &b.change, WGNL_SET_MSG_MAX) == 1);
	CHECK(model_matches(&m, &b.change));
	model_free(&m);
	free_batch(&b);
}

/* An empty batch is one message with the device settings, then done. */
static void
test_no_peers(void)
{
	batch		b;
	model		m;

	make_batch(&b, 0, two_ips, 0);
	CHECK(build_all(&m, &b.change, WGNL_SET_MSG_MAX) == 1);
	CHECK(model_matches(&m, &b.change));
	model_free(&m);
	free_batch(&b);
}

/*
 * 5,000 peers with a /32 and a /128 each, every 7th a removal: messages
 * stay under the limit, are well packed, and no small peer is split.
 */
static void
test_many_peers(void)
{
	batch		b;
	model		m;
	size_t		i;
	int			n;
	bool		whole = true;

	make_batch(&b, 5000, two_ips, 7);
	n = build_all(&m, &b.change, WGNL_SET_MSG_MAX);
	CHECK(n > 1);
	/* about 140 bytes a peer: 5,000 of them in well under 100 messages */
	CHECK(n < 100);
	CHECK(model_matches(&m, &b.change));
	for (i = 0; i < m.n_peers; i++)
		whole &= m.peers[i].fragments == 1;
	CHECK(whole);
	model_free(&m);
	free_batch(&b);
}

/*
 * A peer with 3,000 allowed IPs between two small ones is cut across
 * messages; the continuations add without replacing (checked by
 * model_apply) and the union is exact.
 */
static void
test_huge_peer(void)
{
	batch		b;
	model		m;
	int			n;

	make_batch(&b, 3, huge_middle, 0);
	n = build_all(&m, &b.change, WGNL_SET_MSG_MAX);
	CHECK(n >= 10);
	CHECK(model_matches(&m, &b.change));
	CHECK(m.n_peers == 3 && m.peers[1].fragments == n - 1);
	CHECK(m.peers[0].fragments == 1 && m.peers[2].fragments == 1);
	model_free(&m);
	free_batch(&b);

	/* a single peer with thousands of IPs, as the VM test applies it */
	make_batch(&b, 1, two_thousand, 0);
	CHECK(build_all(&m, &b.change, WGNL_SET_MSG_MAX) > 1);
	CHECK(model_matches(&m, &b.change));
	model_free(&m);
	free_batch(&b);
}

/*
 * Every buffer size from tiny to a few hundred bytes, on a batch mixing
 * removals, peers without IPs and peers that must be split: either the
 * result is exact with every message within the size, or the builder says
 * -EMSGSIZE, which it may only do when one piece cannot fit.
 */
static void
test_all_sizes(void)
{
	batch		b;
	model		m;
	size_t		size;
	int			exact = 0;
	int			refused = 0;
	int			wrong = 0;

	make_batch(&b, 40, few_ips, 5);
	for (size = 16; size <= 900; size += 4)
	{
		int			n = build_all(&m, &b.change, size);

		if (n > 0 && model_matches(&m, &b.change))
			exact++;
		else if (n == -EMSGSIZE && size < 200)
			refused++;
		else
		{
			wrong++;
			fprintf(stderr, "size %zu: %d, bad %d\n", size, n, m.bad);
		}
		model_free(&m);
	}
	CHECK(wrong == 0);
	CHECK(refused > 0 && exact > 100);
	free_batch(&b);
}

/* Bad batches are refused before anything is built. */
static void
test_validate(void)
{
	batch		b;
	wg_allowedip bad;

	make_batch(&b, 3, two_ips, 0);
	CHECK(wg_device_change_validate(&b.change) == 0);
	b.ips[1].cidr = 129;
	CHECK(wg_device_change_validate(&b.change) == -EINVAL);
	b.ips[1].cidr = 128;
	b.ips[0].cidr = 33;
	CHECK(wg_device_change_validate(&b.change) == -EINVAL);
	b.ips[0].cidr = 32;
	b.ips[2].family = AF_UNIX;
	CHECK(wg_device_change_validate(&b.change) == -EINVAL);
	b.ips[2].family = AF_INET;
	b.peers[1].keepalive = 65536;
	CHECK(wg_device_change_validate(&b.change) == -EINVAL);
	b.peers[1].keepalive = 0;
	b.change.listen_port = 70000;
	CHECK(wg_device_change_validate(&b.change) == -EINVAL);
	b.change.listen_port = -1;
	b.change.ifname = "a-name-too-long0";
	CHECK(wg_device_change_validate(&b.change) == -EINVAL);
	b.change.ifname = "";
	CHECK(wg_device_change_validate(&b.change) == -EINVAL);
	b.change.ifname = "wg0";
	b.peers[2].allowedips = NULL;
	CHECK(wg_device_change_validate(&b.change) == -EINVAL);
	/* a removal's allowed IPs are not looked at */
	b.peers[2].remove = true;
	CHECK(wg_device_change_validate(&b.change) == 0);
	b.peers[2].remove = false;
	bad = ip4(1, 40);
	b.peers[2].allowedips = &bad;
	b.peers[2].n_allowedips = 1;
	CHECK(wg_device_change_validate(&b.change) == -EINVAL);
	free_batch(&b);
}

/* The GET request and the family resolution request are well-formed. */
static void
test_requests(void)
{
	static uint32_t words[64];
	char	   *buf = (char *) words;
	const struct nlmsghdr *nlh = (const struct nlmsghdr *) buf;
	const struct genlmsghdr *genl;
	const struct nlattr *a;
	int			len;

	len = wgnl_build_get(buf, sizeof(words), FAMILY_ID, 7, "wg0");
	CHECK(len > 0 && nlh->nlmsg_len == (uint32_t) len);
	CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP) && nlh->nlmsg_seq == 7);
	genl = mnl_nlmsg_get_payload(nlh);
	CHECK(genl->cmd == WG_CMD_GET_DEVICE);
	a = mnl_nlmsg_get_payload_offset(nlh, sizeof(*genl));
	CHECK(mnl_attr_get_type(a) == WGDEVICE_A_IFNAME &&
		  strcmp(mnl_attr_get_str(a), "wg0") == 0);
	CHECK(wgnl_build_get(buf, sizeof(words), FAMILY_ID, 7, "") == -EINVAL);
	CHECK(wgnl_build_get(buf, 24, FAMILY_ID, 7, "wg0") == -EMSGSIZE);

	len = wgnl_build_resolve(buf, sizeof(words), 8);
	CHECK(len > 0 && nlh->nlmsg_type == GENL_ID_CTRL);
	genl = mnl_nlmsg_get_payload(nlh);
	CHECK(genl->cmd == CTRL_CMD_GETFAMILY);
	a = mnl_nlmsg_get_payload_offset(nlh, sizeof(*genl));
	CHECK(mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_NAME &&
		  strcmp(mnl_attr_get_str(a), "wireguard") == 0);
}

/* Append an NLMSG_ERROR (ACK when err is 0) for seq at buf+*off. */
static void
put_error(char *buf, size_t *off, uint32_t seq, int err)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + *off);
	struct nlmsgerr *e;

	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = 42;
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = err;
	*off += nlh->nlmsg_len;
}

/* ACKs and errors are matched to their request; stale ones skipped. */
static void
test_ack(void)
{
	static uint32_t words[256];
	char	   *buf = (char *) words;
	size_t		off = 0;

	put_error(buf, &off, 5, 0);
	CHECK(wgnl_parse_ack(buf, off, 5, 42) == 0);
	CHECK(wgnl_parse_ack(buf, off, 6, 42) == 1);
	CHECK(wgnl_parse_ack(buf, off, 5, 43) == 1);
	/* a stale error, then ours */
	off = 0;
	put_error(buf, &off, 4, -ENODEV);
	put_error(buf, &off, 5, -EPERM);
	CHECK(wgnl_parse_ack(buf, off, 5, 42) == -EPERM);
	CHECK(wgnl_parse_ack(buf, off, 4, 42) == -ENODEV);
	/* truncated */
	CHECK(wgnl_parse_ack(buf, 10, 5, 42) == -EBADMSG);
}

/* The family id comes out of a CTRL reply; a missing family is -ENOENT. */
static void
test_resolve(void)
{
	static uint32_t words[256];
	char	   *buf = (char *) words;
	struct nlmsghdr *nlh;
	struct genlmsghdr *genl;
	uint16_t	id = 0;
	size_t		off = 0;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_seq = 9;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = CTRL_CMD_NEWFAMILY;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, "wireguard");
	mnl_attr_put_u16(nlh, CTRL_ATTR_FAMILY_ID, 0x1c);
	CHECK(wgnl_parse_resolve(buf, nlh->nlmsg_len, 9, 0, &id) == 0 && id == 0x1c);
	CHECK(wgnl_parse_resolve(buf, nlh->nlmsg_len, 10, 0, &id) == 1);

	put_error(buf, &off, 9, -ENOENT);
	CHECK(wgnl_parse_resolve(buf, off, 9, 42, &id) == -ENOENT);
}

/* Start a WG_CMD_GET_DEVICE reply of a dump at buf+*off. */
static struct nlmsghdr *
dump_msg(char *buf, size_t *off, uint32_t seq, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + *off);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = FAMILY_ID;
	nlh->nlmsg_flags = NLM_F_MULTI | flags;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = 42;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = WG_CMD_GET_DEVICE;
	genl->version = WG_GENL_VERSION;
	return nlh;
}

/* Close a reply begun with dump_msg. */
static void
dump_end(size_t *off, struct nlmsghdr *nlh)
{
	*off += nlh->nlmsg_len;
}

/* Append NLMSG_DONE, carrying err as the kernel does, at buf+*off. */
static void
dump_done(char *buf, size_t *off, uint32_t seq, int err)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + *off);
	int		   *payload;

	nlh->nlmsg_type = NLMSG_DONE;
	nlh->nlmsg_flags = NLM_F_MULTI;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = 42;
	payload = mnl_nlmsg_put_extra_header(nlh, sizeof(int));
	*payload = err;
	*off += nlh->nlmsg_len;
}

/* Put one allowed IP nest. */
static void
put_ip(struct nlmsghdr *nlh, wg_allowedip a)
{
	struct nlattr *n = mnl_attr_nest_start(nlh, 0);

	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, a.family);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, a.family == AF_INET ? 4 : 16, &a.addr);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, a.cidr);
	mnl_attr_nest_end(nlh, n);
}

/*
 * A three-message dump: device attributes and peers A and B, then the
 * rest of B (cut by the kernel) and C, then NLMSG_DONE in a datagram of its
 * own.  B must come out as one peer with all its IPs in order.
 */
static void
test_dump(void)
{
	static uint32_t words[2048];
	char	   *buf = (char *) words;
	uint8_t		ka[32],
				kb[32],
				kc[32],
				priv[32],
				pub[32],
				psk[32];
	struct nlmsghdr *nlh;
	struct nlattr *peers,
			   *peer,
			   *ips;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct __kernel_timespec ts = {1700000000, 5};
	wgnl_dump	d;
	size_t		off = 0;
	size_t		first_len;

	fill_random(ka, 32);
	fill_random(kb, 32);
	fill_random(kc, 32);
	fill_random(priv, 32);
	fill_random(pub, 32);
	fill_random(psk, 32);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(5678);
	sin.sin_addr.s_addr = htonl(0x01020304);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(51820);
	sin6.sin6_addr = ip6(9, 128).addr.ip6;

	nlh = dump_msg(buf, &off, 77, 0);
	mnl_attr_put_u32(nlh, WGDEVICE_A_IFINDEX, 7);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, 32, priv);
	mnl_attr_put(nlh, WGDEVICE_A_PUBLIC_KEY, 32, pub);
	mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, 51820);
	mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, ka);
	mnl_attr_put(nlh, WGPEER_A_PRESHARED_KEY, 32, psk);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin), &sin);
	mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), &ts);
	mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, 1000);
	mnl_attr_put_u64(nlh, WGPEER_A_TX_BYTES, 2000);
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
	mnl_attr_put_u32(nlh, WGPEER_A_PROTOCOL_VERSION, 1);
	ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_ip(nlh, ip4(1, 32));
	mnl_attr_nest_end(nlh, ips);
	mnl_attr_nest_end(nlh, peer);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, kb);
	mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(sin6), &sin6);
	ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_ip(nlh, ip4(2, 32));
	put_ip(nlh, ip6(2, 128));
	mnl_attr_nest_end(nlh, ips);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	dump_end(&off, nlh);

	nlh = dump_msg(buf, &off, 77, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, kb);
	ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	put_ip(nlh, ip4(256, 24));
	mnl_attr_nest_end(nlh, ips);
	mnl_attr_nest_end(nlh, peer);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, kc);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	dump_end(&off, nlh);
	first_len = off;
	/* a stale reply to an earlier request in between is skipped */
	put_error(buf, &off, 76, -EINTR);
	dump_done(buf, &off, 77, 0);

	memset(&d, 0, sizeof(d));
	d.seq = 77;
	d.portid = 42;
	CHECK(wgnl_dump_feed(&d, buf, first_len) == 0);
	CHECK(wgnl_dump_feed(&d, buf + first_len, off - first_len) == 1);
	CHECK(!d.interrupted);
	CHECK(d.device.ifindex == 7 && strcmp(d.device.ifname, "wg0") == 0);
	CHECK(d.device.has_private_key && memcmp(d.device.private_key, priv, 32) == 0);
	CHECK(d.device.has_public_key && memcmp(d.device.public_key, pub, 32) == 0);
	CHECK(d.device.listen_port == 51820);
	CHECK(d.device.n_peers == 3);
	if (d.device.n_peers == 3)
	{
		wg_peer_info *a = &d.device.peers[0];
		wg_peer_info *b = &d.device.peers[1];
		wg_peer_info *c = &d.device.peers[2];
		wg_allowedip w;

		CHECK(memcmp(a->public_key, ka, 32) == 0 && memcmp(a->preshared_key, psk, 32) == 0);
		CHECK(a->endpoint.family == AF_INET &&
			  a->endpoint.in4.sin_port == htons(5678) &&
			  a->endpoint.in4.sin_addr.s_addr == htonl(0x01020304));
		CHECK(a->last_handshake_sec == 1700000000 && a->last_handshake_nsec == 5);
		CHECK(a->rx_bytes == 1000 && a->tx_bytes == 2000 && a->keepalive == 25);
		CHECK(a->n_allowedips == 1);
		CHECK(memcmp(b->public_key, kb, 32) == 0 && b->endpoint.family == AF_INET6);
		CHECK(memcmp(&b->endpoint.in6.sin6_addr, &sin6.sin6_addr, 16) == 0);
		CHECK(b->n_allowedips == 3);
		if (b->n_allowedips == 3)
		{
			w = ip4(2, 32);
			CHECK(allowedip_equal(&b->allowedips[0], &w));
			w = ip6(2, 128);
			CHECK(allowedip_equal(&b->allowedips[1], &w));
			w = ip4(256, 24);
			CHECK(allowedip_equal(&b->allowedips[2], &w));
		}
		CHECK(memcmp(c->public_key, kc, 32) == 0 && c->n_allowedips == 0 &&
			  c->endpoint.family == AF_UNSPEC && c->last_handshake_sec == 0);
	}
	wg_device_free(&d.device);
	CHECK(d.device.n_peers == 0 && d.device.peers == NULL);

	/* the same dump flagged NLM_F_DUMP_INTR on its second message */
	((struct nlmsghdr *) (buf + MNL_ALIGN(((struct nlmsghdr *) buf)->nlmsg_len)))->nlmsg_flags |= NLM_F_DUMP_INTR;
	memset(&d, 0, sizeof(d));
	d.seq = 77;
	d.portid = 42;
	CHECK(wgnl_dump_feed(&d, buf, off) == 1);
	CHECK(d.interrupted);
	wg_device_free(&d.device);
}

/* Errors end a dump with their errno; malformed replies are refused. */
static void
test_dump_errors(void)
{
	static uint32_t words[512];
	char	   *buf = (char *) words;
	struct nlmsghdr *nlh;
	struct nlattr *peers,
			   *peer,
			   *ips,
			   *ip;
	uint8_t		key[32] = {1};
	wgnl_dump	d;
	size_t		off = 0;

	memset(&d, 0, sizeof(d));
	d.seq = 3;
	put_error(buf, &off, 3, -ENODEV);
	CHECK(wgnl_dump_feed(&d, buf, off) == -ENODEV);

	off = 0;
	dump_done(buf, &off, 3, -EMSGSIZE);
	CHECK(wgnl_dump_feed(&d, buf, off) == -EMSGSIZE);

	/* an IPv4 allowed IP with a 16-byte address */
	off = 0;
	nlh = dump_msg(buf, &off, 3, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, key);
	ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	ip = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 16, key);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, 32);
	mnl_attr_nest_end(nlh, ip);
	mnl_attr_nest_end(nlh, ips);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	dump_end(&off, nlh);
	CHECK(wgnl_dump_feed(&d, buf, off) == -EBADMSG);
	wg_device_free(&d.device);

	/* a peer without its public key */
	off = 0;
	nlh = dump_msg(buf, &off, 3, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, 1);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	dump_end(&off, nlh);
	CHECK(wgnl_dump_feed(&d, buf, off) == -EBADMSG);
	wg_device_free(&d.device);

	/* a datagram cut in the middle of a message */
	CHECK(wgnl_dump_feed(&d, buf, off - 8) == -EBADMSG);
	wg_device_free(&d.device);
}

/*
 * Devices dumped as the kernel dumps them, in messages from tiny to large:
 * every peer cut at every possible place parses back to the same device.
 */
static void
test_dump_round_trip(void)
{
	static uint32_t words[65536];
	wg_device	dev;
	wg_allowedip *ips;
	size_t		n_ips = 0;
	int			sizes = 0;
	int			equal = 0;
	int			multi = 0;

	memset(&dev, 0, sizeof(dev));
	strcpy(dev.ifname, "wg7");
	dev.ifindex = 9;
	dev.has_private_key = dev.has_public_key = true;
	fill_random(dev.private_key, WG_KEY_LEN);
	fill_random(dev.public_key, WG_KEY_LEN);
	dev.listen_port = 51820;
	dev.fwmark = 0x42;
	dev.n_peers = 6;
	dev.peers = calloc(dev.n_peers, sizeof(wg_peer_info));
	ips = calloc(200, sizeof(wg_allowedip));
	for (size_t i = 0; i < dev.n_peers; i++)
	{
		wg_peer_info *p = &dev.peers[i];
		size_t		n = i == 2 ? 150 : i % 3;	/* one peer needs cutting */

		fill_random(p->public_key, WG_KEY_LEN);
		fill_random(p->preshared_key, WG_KEY_LEN);
		p->last_handshake_sec = 1700000000 + i;
		p->last_handshake_nsec = 999999999 - i;
		p->rx_bytes = UINT64_MAX - i;
		p->tx_bytes = i << 40;
		p->keepalive = (uint16_t) (i * 10);
		if (i % 3 == 1)
		{
			p->endpoint.in4.sin_family = AF_INET;
			p->endpoint.in4.sin_port = htons(40000 + i);
			p->endpoint.in4.sin_addr.s_addr = htonl(0xc0000200 + i);
		}
		else if (i % 3 == 2)
		{
			p->endpoint.in6.sin6_family = AF_INET6;
			p->endpoint.in6.sin6_port = htons(51820);
			p->endpoint.in6.sin6_addr = ip6(i, 128).addr.ip6;
			p->endpoint.in6.sin6_scope_id = 3;
		}
		p->allowedips = &ips[n_ips];
		p->n_allowedips = n;
		for (size_t k = 0; k < n; k++)
			ips[n_ips++] = k % 2 ? ip6(i * 1000 + k, 128 - k % 64) : ip4(i * 1000 + k, 32 - k % 32);
	}

	for (size_t msg = 64; msg <= 4096; msg += msg < 400 ? 4 : 256)
	{
		size_t		len = nl_dump_device(words, sizeof(words), msg, FAMILY_ID,
										 77, 42, &dev);
		wgnl_dump	d;
		int			r;

		if (len == 0)
			continue;			/* too small for the device's attributes */
		sizes++;
		memset(&d, 0, sizeof(d));
		d.seq = 77;
		d.portid = 42;
		r = wgnl_dump_feed(&d, words, len);
		if (r == 1 && !d.interrupted && device_equal(&d.device, &dev, true))
			equal++;
		else
			fprintf(stderr, "message size %zu: %d\n", msg, r);
		multi += len > msg + 20;
		wg_device_free(&d.device);
	}
	CHECK(sizes > 50 && equal == sizes);
	CHECK(multi > 50);
	free(dev.peers);
	free(ips);
}

/*
 * Buffers that are not aligned for struct nlmsghdr are refused by every
 * builder and parser (-EINVAL) instead of being accessed misaligned
 * (UBSan: "member access within misaligned address").
 */
static void
test_misaligned(void)
{
	static uint32_t words[256];
	char	   *odd = (char *) words + 2;
	wgnl_set_cursor cursor;
	wg_device_change change;
	wgnl_dump	d;
	uint16_t	id = 0;

	memset(&cursor, 0, sizeof(cursor));
	memset(&change, 0, sizeof(change));
	change.ifname = "wg0";
	change.listen_port = -1;
	CHECK(wgnl_build_set(odd, 512, FAMILY_ID, 1, &change, &cursor) == -EINVAL);
	CHECK(cursor.messages == 0);
	CHECK(wgnl_build_get(odd, 512, FAMILY_ID, 1, "wg0") == -EINVAL);
	CHECK(wgnl_build_resolve(odd, 512, 1) == -EINVAL);

	/* a valid ACK, moved off its alignment */
	memset(words, 0, sizeof(words));
	{
		size_t		off = 0;

		put_error((char *) words, &off, 5, 0);
		CHECK(wgnl_parse_ack(words, off, 5, 42) == 0);
		memmove(odd, words, off);
		CHECK(wgnl_parse_ack(odd, off, 5, 42) == -EINVAL);
		CHECK(wgnl_parse_resolve(odd, off, 5, 42, &id) == -EINVAL);
		memset(&d, 0, sizeof(d));
		d.seq = 5;
		d.portid = 42;
		CHECK(wgnl_dump_feed(&d, odd, off) == -EINVAL);
	}
}

/*
 * Error codes from outside: an NLMSG_ERROR or NLMSG_DONE carrying a
 * number that is no errno (INT_MIN, which no caller could negate, or
 * below -4095) is -EPROTO.
 */
static void
test_bad_errno(void)
{
	static uint32_t words[256];
	char	   *buf = (char *) words;
	wgnl_dump	d;
	size_t		off = 0;

	put_error(buf, &off, 5, INT_MIN);
	CHECK(wgnl_parse_ack(buf, off, 5, 42) == -EPROTO);
	off = 0;
	put_error(buf, &off, 5, -4096);
	CHECK(wgnl_parse_ack(buf, off, 5, 42) == -EPROTO);
	off = 0;
	put_error(buf, &off, 5, -4095);
	CHECK(wgnl_parse_ack(buf, off, 5, 42) == -4095);
	off = 0;
	dump_done(buf, &off, 5, INT_MIN);
	memset(&d, 0, sizeof(d));
	d.seq = 5;
	CHECK(wgnl_dump_feed(&d, buf, off) == -EPROTO);
}

/* The amneziawg module's attribute numbers (its src/uapi/wireguard.h). */
enum
{
	T_JC = 9, T_JMIN, T_JMAX, T_S1, T_S2, T_H1, T_H2, T_H3, T_H4, T_PEER,
	T_S3, T_S4, T_I1, T_I2, T_I3, T_I4, T_I5
};

/* The attribute of type among the top-level ones of a built set, or NULL. */
static const struct nlattr *
find_attr(const struct nlmsghdr *nlh, int type)
{
	const struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr))
		if (mnl_attr_get_type(attr) == type)
		return attr;
	return NULL;
}

/*
 * AmneziaWG sets: the device attributes as each family version expects
 * them (H as u32, "lo-hi" string, u64 with hi above), unset H as
 * WireGuard's types, unset I as "", a peer's keepalive as a u32 range in
 * version 3; what a version cannot carry is refused, as is any AWG
 * parameter in WireGuard's own family.
 */
static void
test_awg_set(void)
{
	static uint32_t words[2048];
	char	   *buf = (char *) words;
	wg_awg		awg = {.jc = 4,.jmin = 40,.jmax = 70,.s = {20, 30, 0, 16},
		.h = {{123456, 123456}, {234567, 234567}, {345678, 345700},
	{456789, 456789}},
	.i = {"<b 0xc0ff><r 16>"}};
	wg_awg		plain = {.jc = 3,.jmin = 10,.jmax = 30,.s = {15, 25}};
	wg_peer_change peer;
	wg_device_change c;
	wgnl_set_cursor cursor;
	const struct nlattr *a;
	const struct nlmsghdr *nlh = (const struct nlmsghdr *) buf;

	memset(&peer, 0, sizeof(peer));
	fill_random(peer.public_key, 32);
	peer.keepalive = 25;
	memset(&c, 0, sizeof(c));
	c.ifname = "awg0";
	c.listen_port = -1;
	c.awg = &awg;
	c.peers = &peer;
	c.n_peers = 1;

	memset(&cursor, 0, sizeof(cursor));
	CHECK(wgnl_build_set(buf, sizeof(words), FAMILY_ID, 1, &c, &cursor) == -EINVAL);

	/* version 3 */
	memset(&cursor, 0, sizeof(cursor));
	CHECK(wgnl_build_set_awg(buf, sizeof(words), FAMILY_ID, 3, 1, &c, &cursor) > 0);
	CHECK((a = find_attr(nlh, T_JC)) && mnl_attr_get_u16(a) == 4);
	CHECK((a = find_attr(nlh, T_JMAX)) && mnl_attr_get_u16(a) == 70);
	CHECK((a = find_attr(nlh, T_S2)) && mnl_attr_get_u16(a) == 30);
	CHECK((a = find_attr(nlh, T_S4)) && mnl_attr_get_u16(a) == 16);
	CHECK((a = find_attr(nlh, T_H3)) && mnl_attr_get_payload_len(a) == 8 &&
		  mnl_attr_get_u64(a) == ((uint64_t) 345700 << 32 | 345678));
	CHECK((a = find_attr(nlh, T_I1)) &&
		  strcmp(mnl_attr_get_str(a), "<b 0xc0ff><r 16>") == 0);
	CHECK((a = find_attr(nlh, T_I5)) && strcmp(mnl_attr_get_str(a), "") == 0);
	{
		const struct nlattr *peers = find_attr(nlh, WGDEVICE_A_PEERS);
		const struct nlattr *p;
		const struct nlattr *in;
		int			seen = 0;

		CHECK(peers != NULL);
		mnl_attr_for_each_nested(p, peers)
			mnl_attr_for_each_nested(in, p)
			if (mnl_attr_get_type(in) == WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL)
		{
			CHECK(mnl_attr_get_payload_len(in) == 4 &&
				  mnl_attr_get_u32(in) == (25u << 16 | 25u));
			seen++;
		}
		CHECK(seen == 1);
	}

	/* version 2: H as strings, keepalive a u16 */
	memset(&cursor, 0, sizeof(cursor));
	CHECK(wgnl_build_set_awg(buf, sizeof(words), FAMILY_ID, 2, 1, &c, &cursor) > 0);
	CHECK((a = find_attr(nlh, T_H1)) &&
		  strcmp(mnl_attr_get_str(a), "123456") == 0);
	CHECK((a = find_attr(nlh, T_H3)) &&
		  strcmp(mnl_attr_get_str(a), "345678-345700") == 0);

	/* version 1: no S3, S4, I, nor H ranges; H as u32 */
	memset(&cursor, 0, sizeof(cursor));
	CHECK(wgnl_build_set_awg(buf, sizeof(words), FAMILY_ID, 1, 1, &c, &cursor) ==
		  -EPROTONOSUPPORT);
	c.awg = &plain;
	memset(&cursor, 0, sizeof(cursor));
	CHECK(wgnl_build_set_awg(buf, sizeof(words), FAMILY_ID, 1, 1, &c, &cursor) > 0);
	CHECK((a = find_attr(nlh, T_H2)) && mnl_attr_get_payload_len(a) == 4 &&
		  mnl_attr_get_u32(a) == 2);
	CHECK(find_attr(nlh, T_S3) == NULL && find_attr(nlh, T_I1) == NULL);

	/* only the first message carries the device's parameters */
	CHECK(wgnl_build_set_awg(buf, sizeof(words), FAMILY_ID, 1, 2, &c, &cursor) == 0);

	/* an invalid set is refused before anything is built */
	awg.h[1] = awg.h[0];
	c.awg = &awg;
	CHECK(wg_device_change_validate(&c) == -EINVAL);
}

/*
 * An AmneziaWG dump: the device's parameters in each version's encoding
 * come back as the set they encode (wg_awg_equal), signature packets in
 * awg_i, and a peer's keepalive whether a u16 or (version 3) a u32 range.
 */
static void
test_awg_dump(void)
{
	static uint32_t words[1024];
	char	   *buf = (char *) words;
	wg_awg		want = {.jc = 4,.jmin = 40,.jmax = 70,.s = {20, 30, 0, 16},
		.h = {{123456, 123456}, {234567, 234567}, {345678, 345700},
	{456789, 456789}},
	.i = {NULL, "<t>"}};

	for (int version = 1; version <= 3; version++)
	{
		struct nlmsghdr *nlh;
		wgnl_dump	d;
		wg_awg		got;
		size_t		off = 0;

		nlh = dump_msg(buf, &off, 60, 0);
		mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "awg0");
		mnl_attr_put_u16(nlh, T_JC, 4);
		mnl_attr_put_u16(nlh, T_JMIN, 40);
		mnl_attr_put_u16(nlh, T_JMAX, 70);
		mnl_attr_put_u16(nlh, T_S1, 20);
		mnl_attr_put_u16(nlh, T_S2, 30);
		mnl_attr_put_u16(nlh, T_S3, 0);
		mnl_attr_put_u16(nlh, T_S4, 16);
		for (int k = 0; k < 4; k++)
		{
			char		text[32];

			if (version == 1)
				mnl_attr_put_u32(nlh, T_H1 + k, want.h[k].lo);
			else if (version == 2)
			{
				wg_awg_format_range(want.h[k], text, sizeof(text));
				mnl_attr_put_strz(nlh, T_H1 + k, text);
			}
			else
				mnl_attr_put_u64(nlh, T_H1 + k,
								 (uint64_t) want.h[k].hi << 32 | want.h[k].lo);
		}
		mnl_attr_put_strz(nlh, T_I1, "");
		mnl_attr_put_strz(nlh, T_I2, "<t>");
		{
			/* a peer; version 3 dumps its keepalive as a u32 range */
			struct nlattr *peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
			struct nlattr *peer = mnl_attr_nest_start(nlh, 0);
			uint8_t		key[32];

			fill_random(key, 32);
			mnl_attr_put_u32(nlh, WGPEER_A_FLAGS, 8);
			mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, key);
			if (version == 3)
				mnl_attr_put_u32(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
								 25u << 16 | 25u);
			else
				mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
			mnl_attr_put_u32(nlh, WGPEER_A_PROTOCOL_VERSION, 1);
			mnl_attr_nest_end(nlh, peer);
			mnl_attr_nest_end(nlh, peers);
		}
		dump_end(&off, nlh);
		dump_done(buf, &off, 60, 0);
		memset(&d, 0, sizeof(d));
		d.seq = 60;
		d.portid = 42;
		CHECK(wgnl_dump_feed(&d, buf, off) == 1);
		CHECK(d.device.has_awg);
		CHECK(d.device.n_peers == 1 && d.device.peers[0].keepalive == 25);
		wg_device_awg(&d.device, &got);
		if (version == 1)
		{
			/* a version-1 device holds only single values */
			got.h[2] = want.h[2];
		}
		CHECK(wg_awg_equal(&got, &want));
		CHECK(got.i[0] == NULL && strcmp(got.i[1], "<t>") == 0);
		got.jc = 5;
		CHECK(!wg_awg_equal(&got, &want));
		wg_device_free(&d.device);
	}
}

/*
 * Message lengths from outside: one of 2^31 or more (which libmnl's
 * mnl_nlmsg_ok takes for a fit, sending the walk gigabytes past the
 * datagram: a crash), and a last message not padded to 4 bytes, whose
 * attributes libmnl walks up to the padded end, past the datagram: both
 * refused.
 */
static void
test_bad_lengths(void)
{
	struct nlmsghdr *nlh = malloc(sizeof(*nlh));
	char	   *odd;
	wgnl_dump	d;
	uint16_t	id = 0;
	size_t		off = 0;
	static uint32_t words[64];

	memset(nlh, 0, sizeof(*nlh));
	nlh->nlmsg_len = 0xff4dffffu;
	nlh->nlmsg_seq = 0x5d5d5d5d;
	CHECK(wgnl_parse_ack(nlh, sizeof(*nlh), 5, 42) == -EBADMSG);
	CHECK(wgnl_parse_resolve(nlh, sizeof(*nlh), 5, 42, &id) == -EBADMSG);
	memset(&d, 0, sizeof(d));
	d.seq = 5;
	CHECK(wgnl_dump_feed(&d, nlh, sizeof(*nlh)) == -EBADMSG);
	free(nlh);

	/* a dump message of 21 bytes: its headers, then one byte */
	nlh = dump_msg((char *) words, &off, 5, 0);
	nlh->nlmsg_len = MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct genlmsghdr)) + 1;
	odd = malloc(nlh->nlmsg_len);
	memcpy(odd, nlh, nlh->nlmsg_len);
	memset(&d, 0, sizeof(d));
	d.seq = 5;
	d.portid = 42;
	CHECK(wgnl_dump_feed(&d, odd, nlh->nlmsg_len) == -EBADMSG);
	wg_device_free(&d.device);
	free(odd);
}

/*
 * The socket layer on this machine's kernel: the WireGuard family is
 * resolved (0) or missing (-ENOENT); either way the request and the reply
 * went through the context's buffers.  With WireGuard, a dump of an
 * interface that does not exist fails with -ENODEV (-EPERM without
 * CAP_NET_ADMIN).
 */
static void
test_socket(void)
{
	wgnl_ctx   *ctx = NULL;
	wg_device	dev;
	int			r = wgnl_open(&ctx, 2000);

	CHECK(r == 0 || r == -ENOENT);
	if (r != 0)
		return;
	r = wgnl_get_device(ctx, "wgpeer-nosuch", &dev);
	CHECK(r == -ENODEV || r == -EPERM);
	CHECK(dev.n_peers == 0 && dev.peers == NULL);
	wgnl_close(ctx);
}

int
main(void)
{
	srand(12345);
	test_single_peer();
	test_no_peers();
	test_many_peers();
	test_huge_peer();
	test_all_sizes();
	test_validate();
	test_requests();
	test_ack();
	test_resolve();
	test_dump();
	test_dump_errors();
	test_dump_round_trip();
	test_misaligned();
	test_bad_errno();
	test_bad_lengths();
	test_awg_set();
	test_awg_dump();
	test_socket();
	return UNIT_DONE("test_netlink");
}
