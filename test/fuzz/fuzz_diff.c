/*
 * fuzz_diff.c
 *		libFuzzer target for the reconcile diff: the input describes the
 *		desired peers, the peers a device reports and the keys the database
 *		knows; wg_peer_diff's changes are applied to a model of the device
 *		and the result is checked.
 *
 * Keys, preshared keys and allowed IPs come from small sets, so that the
 * two sides share keys, addresses and settings often.  The desired side
 * is what the database gives (distinct keys, at most three distinct
 * prefixes a peer, no prefix on two peers); the device side is what a
 * backend may report from outside bytes, a key listed twice included.
 * The model applies a change the way WireGuard does: an add creates or
 * updates the peer and replaces its allowed IPs, taking each from any
 * other peer that held it; a removal of an unknown key does nothing.
 *
 * Checked after applying the changes:
 *	- every desired peer is on the device exactly as desired;
 *	- a peer nobody desires is gone when the database knows its key or
 *	  the interface is exclusive, else it is left alone (it only loses
 *	  the addresses desired peers hold);
 *	- nothing else is on the device;
 *	- no change for a peer that was already right, no key changed twice,
 *	  and the counts say what happened;
 *	- diffing again finds nothing to do.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "device/diff.h"
#include "device_equal.h"
#include "fuzz.h"

/* Addresses are drawn from 16 prefixes: sets of them fit in 16 bits. */
#define N_ATOMS 16
#define MAX_PEERS 12

/* The keepalives a peer may have. */
static const int keepalives[] = {0, 25, 60};

/* A peer of the model device. */
typedef struct model_peer
{
	uint8_t		key[WG_KEY_LEN];
	uint8_t		psk[WG_KEY_LEN];
	int			keepalive;
	uint16_t	ips;			/* set of atoms */
} model_peer;

/* The model device: a map from key to peer. */
typedef struct model
{
	model_peer	peers[2 * MAX_PEERS];
	size_t		n;
} model;

/* The input, read a byte at a time (zeros once it runs out). */
typedef struct reader
{
	const uint8_t *data;
	size_t		size;
	size_t		pos;
} reader;

/* The next input byte, 0 past the end. */
static uint8_t
next(reader *r)
{
	return r->pos < r->size ? r->data[r->pos++] : 0;
}

/* Address atom i: 10.0.0.i/32 for i < 8, fd00::i/(128 - i) beyond. */
static wg_allowedip
atom(int i)
{
	wg_allowedip a;

	memset(&a, 0, sizeof(a));
	if (i < 8)
	{
		a.family = AF_INET;
		a.cidr = 32;
		a.addr.ip4.s_addr = htonl(0x0a000000u + i);
	}
	else
	{
		a.family = AF_INET6;
		a.cidr = 128 - i;
		a.addr.ip6.s6_addr[0] = 0xfd;
		a.addr.ip6.s6_addr[15] = i;
	}
	return a;
}

/* The atom an allowed IP is (every IP the diff hands back is one). */
static int
atom_of(const wg_allowedip *a)
{
	for (int i = 0; i < N_ATOMS; i++)
	{
		wg_allowedip b = atom(i);

		if (allowedip_equal(a, &b))
			return i;
	}
	REQUIRE(!"an allowed IP that was never given");
	return -1;
}

/* The set of atoms in a list of allowed IPs. */
static uint16_t
atoms_of(const wg_allowedip *ips, size_t n)
{
	uint16_t	set = 0;

	for (size_t i = 0; i < n; i++)
		set |= 1u << atom_of(&ips[i]);
	return set;
}

/* Key number b (0..15) of the small key space, and the same for PSKs. */
static void
small_key(uint8_t key[WG_KEY_LEN], int b)
{
	memset(key, 0x10 * b + 1, WG_KEY_LEN);
}

/* The model peer with key, or NULL. */
static model_peer *
model_find(model *m, const uint8_t *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (memcmp(m->peers[i].key, key, WG_KEY_LEN) == 0)
			return &m->peers[i];
	return NULL;
}

/* Apply one change as WireGuard does. */
static void
model_apply(model *m, const wg_peer_change *c)
{
	model_peer *p = model_find(m, c->public_key);
	uint16_t	ips;

	if (c->remove)
	{
		if (p != NULL)
			*p = m->peers[--m->n];
		return;
	}
	if (p == NULL)
	{
		REQUIRE(m->n < sizeof(m->peers) / sizeof(m->peers[0]));
		p = &m->peers[m->n++];
		memset(p, 0, sizeof(*p));
		memcpy(p->key, c->public_key, WG_KEY_LEN);
	}
	if (c->has_preshared_key)
		memcpy(p->psk, c->preshared_key, WG_KEY_LEN);
	if (c->keepalive >= 0)
		p->keepalive = c->keepalive;
	ips = atoms_of(c->allowedips, c->n_allowedips);
	for (size_t i = 0; i < m->n; i++)
		m->peers[i].ips &= ~ips;
	p->ips = ips;
}

/* Does a reported peer have a desired peer's settings? */
static bool
info_matches(const wg_peer_info *have, const wg_desired_peer *want)
{
	return memcmp(have->preshared_key, want->preshared_key, WG_KEY_LEN) == 0 &&
		have->keepalive == want->keepalive &&
		have->n_allowedips == want->n_allowedips &&
		atoms_of(have->allowedips, have->n_allowedips) ==
		atoms_of(want->allowedips, want->n_allowedips);
}

/* Is key among the first n keys? */
static bool
key_in(uint8_t (*keys)[WG_KEY_LEN], size_t n, const uint8_t *key)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(keys[i], key, WG_KEY_LEN) == 0)
			return true;
	return false;
}

/* The desired peer with key, or NULL. */
static const wg_desired_peer *
desired_find(const wg_desired_peer *desired, size_t n, const uint8_t *key)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(desired[i].public_key, key, WG_KEY_LEN) == 0)
			return &desired[i];
	return NULL;
}

/* The allowed IPs of the desired peers, one row each. */
static wg_allowedip desired_ips[MAX_PEERS][WG_PEER_ALLOWEDIPS_MAX + 1];

/*
 * Read the desired peers: distinct keys, prefixes used once.  A peer may
 * ask for more allowed IPs than a peer has (which the diff refuses); *bad
 * says so.
 */
static size_t
read_desired(reader *r, wg_desired_peer *desired, bool *bad)
{
	size_t		n = next(r) % (MAX_PEERS + 1);
	size_t		made = 0;
	uint16_t	used = 0;

	*bad = false;
	for (size_t i = 0; i < n; i++)
	{
		wg_desired_peer *d = &desired[made];
		wg_allowedip *ips = desired_ips[made];
		uint8_t		b = next(r);
		size_t		want = (b >> 4) % 4;

		memset(d, 0, sizeof(*d));
		d->allowedips = ips;
		small_key(d->public_key, b & 15);
		if (desired_find(desired, made, d->public_key) != NULL)
			continue;
		small_key(d->preshared_key, next(r) % 3);
		d->keepalive = keepalives[next(r) % 3];
		for (size_t k = 0; k < want; k++)
		{
			int			a = next(r) % N_ATOMS;

			if (used & (1u << a))
				continue;
			used |= 1u << a;
			ips[d->n_allowedips++] = atom(a);
		}
		if (b == 0xff)
		{
			/* more than a peer has: refused */
			for (size_t k = 0; k <= WG_PEER_ALLOWEDIPS_MAX; k++)
				ips[k] = atom(0);
			d->n_allowedips = WG_PEER_ALLOWEDIPS_MAX + 1;
			*bad = true;
		}
		made++;
	}
	return made;
}

/*
 * Read the device's report: each entry a copy of a desired peer (its
 * addresses in another order), or made up; keys may repeat; an address
 * is on one entry at most.
 */
static void
read_device(reader *r, wg_device *dev, const wg_desired_peer *desired,
			size_t n_desired)
{
	size_t		n = next(r) % (MAX_PEERS + 1);
	uint16_t	used = 0;

	memset(dev, 0, sizeof(*dev));
	if (n == 0)
		return;
	dev->peers = calloc(n, sizeof(wg_peer_info));
	REQUIRE(dev->peers != NULL);
	dev->cap_peers = n;
	for (size_t i = 0; i < n; i++)
	{
		wg_peer_info *p = &dev->peers[dev->n_peers++];
		uint8_t		b = next(r);
		size_t		n_ips;
		int			ips[4];

		if ((b & 0x80) && n_desired > 0)
		{
			const wg_desired_peer *d = &desired[(b & 0x7f) % n_desired];

			memcpy(p->public_key, d->public_key, WG_KEY_LEN);
			memcpy(p->preshared_key, d->preshared_key, WG_KEY_LEN);
			p->keepalive = (uint16_t) d->keepalive;
			/* a peer with too many addresses has none to copy */
			n_ips = d->n_allowedips > 3 ? 0 : d->n_allowedips;
			for (size_t k = 0; k < n_ips; k++)
				ips[n_ips - 1 - k] = atom_of(&d->allowedips[k]);
		}
		else
		{
			small_key(p->public_key, b & 15);
			small_key(p->preshared_key, next(r) % 3);
			p->keepalive = (uint16_t) keepalives[next(r) % 3];
			n_ips = next(r) % 5;
			for (size_t k = 0; k < n_ips; k++)
				ips[k] = next(r) % N_ATOMS;
		}
		p->allowedips = n_ips ? calloc(n_ips, sizeof(wg_allowedip)) : NULL;
		p->cap_allowedips = n_ips;
		for (size_t k = 0; k < n_ips; k++)
		{
			if (used & (1u << ips[k]))
				continue;
			used |= 1u << ips[k];
			p->allowedips[p->n_allowedips++] = atom(ips[k]);
		}
	}
}

/* The model of what the device holds, as reported: the last copy wins. */
static void
model_from_device(model *m, const wg_device *dev)
{
	m->n = 0;
	for (size_t i = 0; i < dev->n_peers; i++)
	{
		const wg_peer_info *p = &dev->peers[i];
		model_peer *mp = model_find(m, p->public_key);

		if (mp == NULL)
			mp = &m->peers[m->n++];
		memcpy(mp->key, p->public_key, WG_KEY_LEN);
		memcpy(mp->psk, p->preshared_key, WG_KEY_LEN);
		mp->keepalive = p->keepalive;
		mp->ips = atoms_of(p->allowedips, p->n_allowedips);
	}
}

/* A device reporting what the model holds, addresses in descending order. */
static void
device_from_model(wg_device *dev, const model *m)
{
	memset(dev, 0, sizeof(*dev));
	dev->peers = m->n ? calloc(m->n, sizeof(wg_peer_info)) : NULL;
	dev->n_peers = dev->cap_peers = m->n;
	for (size_t i = 0; i < m->n; i++)
	{
		wg_peer_info *p = &dev->peers[i];

		memcpy(p->public_key, m->peers[i].key, WG_KEY_LEN);
		memcpy(p->preshared_key, m->peers[i].psk, WG_KEY_LEN);
		p->keepalive = (uint16_t) m->peers[i].keepalive;
		p->allowedips = calloc(N_ATOMS, sizeof(wg_allowedip));
		p->cap_allowedips = N_ATOMS;
		for (int a = N_ATOMS - 1; a >= 0; a--)
			if (m->peers[i].ips & (1u << a))
				p->allowedips[p->n_allowedips++] = atom(a);
	}
}

/* Free a device made here. */
static void
device_free(wg_device *dev)
{
	for (size_t i = 0; i < dev->n_peers; i++)
		free(dev->peers[i].allowedips);
	free(dev->peers);
}

/*
 * Check the changes against the rules, then apply them to the model of
 * the device and check where that leaves it.
 */
static void
check_changes(wg_desired_peer *desired, size_t n_desired,
			  const wg_device *dev, const model *before,
			  uint8_t (*known)[WG_KEY_LEN], size_t n_known,
			  bool exclusive, const wg_peer_change *changes, size_t n_changes,
			  const wg_diff_stats *st)
{
	model		m = *before;
	uint16_t	desired_ips = 0;
	size_t		added = 0;
	size_t		corrected = 0;
	size_t		removed = 0;
	size_t		foreign = 0;

	REQUIRE(n_changes <= n_desired + dev->n_peers);
	for (size_t i = 0; i < n_changes; i++)
		for (size_t k = 0; k < i; k++)
			REQUIRE(memcmp(changes[i].public_key, changes[k].public_key,
						   WG_KEY_LEN) != 0);

	/* what each desired peer needed, and whether it got a change */
	for (size_t i = 0; i < n_desired; i++)
	{
		const wg_desired_peer *d = &desired[i];
		bool		on_device = false;
		bool		all_match = true;
		bool		changed = false;

		desired_ips |= atoms_of(d->allowedips, d->n_allowedips);
		for (size_t k = 0; k < dev->n_peers; k++)
			if (memcmp(dev->peers[k].public_key, d->public_key, WG_KEY_LEN) == 0)
			{
				on_device = true;
				all_match &= info_matches(&dev->peers[k], d);
			}
		for (size_t k = 0; k < n_changes; k++)
			if (memcmp(changes[k].public_key, d->public_key, WG_KEY_LEN) == 0)
			{
				REQUIRE(!changes[k].remove);
				changed = true;
			}
		REQUIRE(changed == !(on_device && all_match));
		added += !on_device;
		corrected += on_device && changed;
	}

	/* what each undesired key on the device got */
	for (size_t i = 0; i < before->n; i++)
	{
		const model_peer *p = &before->peers[i];
		bool		removal = false;

		if (desired_find(desired, n_desired, p->key) != NULL)
			continue;
		for (size_t k = 0; k < n_changes; k++)
			if (memcmp(changes[k].public_key, p->key, WG_KEY_LEN) == 0)
				removal = changes[k].remove;
		REQUIRE(removal == (exclusive || key_in(known, n_known, p->key)));
		removed += removal;
		foreign += !removal;
	}
	REQUIRE(st->added == added && st->corrected == corrected &&
			st->removed == removed && st->foreign == foreign);
	REQUIRE(n_changes == added + corrected + removed);

	/* applied: desired peers as desired, foreign ones left alone */
	for (size_t i = 0; i < n_changes; i++)
		model_apply(&m, &changes[i]);
	REQUIRE(m.n == n_desired + foreign);
	for (size_t i = 0; i < n_desired; i++)
	{
		const model_peer *p = model_find(&m, desired[i].public_key);

		REQUIRE(p != NULL);
		REQUIRE(memcmp(p->psk, desired[i].preshared_key, WG_KEY_LEN) == 0);
		REQUIRE(p->keepalive == desired[i].keepalive);
		REQUIRE(p->ips == atoms_of(desired[i].allowedips,
								   desired[i].n_allowedips));
	}
	for (size_t i = 0; i < before->n; i++)
	{
		const model_peer *was = &before->peers[i];
		const model_peer *p;

		if (desired_find(desired, n_desired, was->key) != NULL ||
			exclusive || key_in(known, n_known, was->key))
			continue;
		p = model_find(&m, was->key);
		REQUIRE(p != NULL);
		REQUIRE(memcmp(p->psk, was->psk, WG_KEY_LEN) == 0);
		REQUIRE(p->keepalive == was->keepalive);
		REQUIRE(p->ips == (was->ips & ~desired_ips));
	}

	/* and a second diff against the repaired device finds nothing */
	{
		wg_device	after;
		wg_peer_change *again = malloc((n_desired + m.n) * sizeof(*again));
		size_t		n_again = 99;
		wg_diff_stats st2;

		REQUIRE(again != NULL || n_desired + m.n == 0);
		device_from_model(&after, &m);
		REQUIRE(wg_peer_diff(desired, n_desired, &after, known, n_known,
							 exclusive, again, &n_again, &st2) == 0);
		REQUIRE(n_again == 0);
		REQUIRE(st2.foreign == foreign);
		device_free(&after);
		free(again);
	}
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * One input: the exclusive flag, the desired peers, the device's report,
 * the known keys.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	reader		r = {data, size, 0};
	wg_desired_peer buf[MAX_PEERS];
	wg_desired_peer *desired = NULL;
	uint8_t		(*known)[WG_KEY_LEN] = NULL;
	wg_device	dev;
	model		before;
	wg_peer_change *changes;
	wg_diff_stats st;
	size_t		n_desired;
	size_t		n_known;
	size_t		n_changes = 0;
	bool		exclusive = next(&r) & 1;
	bool		bad;
	int			rc;

	/* exactly sized arrays, NULL when empty, as a caller may pass them */
	n_desired = read_desired(&r, buf, &bad);
	if (n_desired > 0)
	{
		desired = malloc(n_desired * sizeof(*desired));
		REQUIRE(desired != NULL);
		memcpy(desired, buf, n_desired * sizeof(*desired));
	}
	read_device(&r, &dev, desired, n_desired);
	model_from_device(&before, &dev);
	n_known = next(&r) % 6;
	if (n_known > 0)
	{
		known = malloc(n_known * WG_KEY_LEN);
		REQUIRE(known != NULL);
		for (size_t i = 0; i < n_known; i++)
			small_key(known[i], next(&r) & 15);
	}
	changes = malloc((n_desired + dev.n_peers) * sizeof(*changes));
	REQUIRE(changes != NULL || n_desired + dev.n_peers == 0);

	rc = wg_peer_diff(desired, n_desired, &dev, known, n_known, exclusive,
					  changes, &n_changes, &st);
	if (bad)
		REQUIRE(rc == -EINVAL);
	else
	{
		REQUIRE(rc == 0);
		check_changes(desired, n_desired, &dev, &before, known, n_known,
					  exclusive, changes, n_changes, &st);
	}
	device_free(&dev);
	free(changes);
	free(known);
	free(desired);
	return 0;
}
