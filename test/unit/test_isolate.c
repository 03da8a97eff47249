/*
 * test_isolate.c
 *		Unit tests of wg_device_apply_isolated() against a recording fake
 *		device that behaves as the kernel and wireguard-go do: peers of a
 *		set are applied in order until the first one refused, and a listen
 *		port already taken fails the set.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "device/device.h"
#include "unit.h"

#define FAKE_MAX_PEERS 20000

/* The fake device: which keys it holds and what it refuses. */
typedef struct fake
{
	bool		present[FAKE_MAX_PEERS];
	bool		refuse[FAKE_MAX_PEERS]; /* adding this peer fails (EINVAL) */
	bool		port_taken;		/* a listen port fails (EADDRINUSE) */
	bool		down;			/* cannot be reached (ENOENT at open) */
	int			down_after;		/* goes down after this many sets; -1 never */
	int			port;
	bool		has_key;
	unsigned int sets;
	unsigned int empty_sets;
	size_t		sent;			/* peers sent, over all sets */
} fake;

/* A peer's number, kept in the first two bytes of its key. */
static size_t
peer_no(const uint8_t *key)
{
	return (size_t) key[0] << 8 | key[1];
}

/* The fake's set: the device semantics above, recorded. */
static int
fake_set(void *arg, const wg_device_change *change, bool *at_open)
{
	fake	   *f = arg;

	f->sets++;
	if (f->down_after >= 0 && f->sets > (unsigned int) f->down_after)
		f->down = true;
	if (f->down)
	{
		*at_open = true;
		return -ENOENT;
	}
	if (change->n_peers == 0 && !change->has_private_key && change->listen_port < 0)
		f->empty_sets++;
	for (size_t i = 0; i < change->n_peers; i++)
	{
		const wg_peer_change *p = &change->peers[i];
		size_t		no = peer_no(p->public_key);

		f->sent++;
		if (p->remove)
			f->present[no] = false;
		else if (f->refuse[no])
			return -EINVAL;
		else
			f->present[no] = true;
	}
	if (change->has_private_key)
		f->has_key = true;
	if (change->listen_port >= 0)
	{
		if (f->port_taken)
			return -EADDRINUSE;
		f->port = change->listen_port;
	}
	return 1;
}

/* A fresh fake that never goes down by itself. */
static fake *
new_fake(void)
{
	fake	   *f = calloc(1, sizeof(fake));

	f->down_after = -1;
	return f;
}

/*
 * A batch of n peers numbered from 0: every third one a removal, the rest
 * additions; with device settings when settings is true.
 */
static wg_device_change
batch(size_t n, bool settings)
{
	wg_device_change c;
	wg_peer_change *peers = calloc(n + 1, sizeof(wg_peer_change));

	for (size_t i = 0; i < n; i++)
	{
		peers[i].public_key[0] = (uint8_t) (i >> 8);
		peers[i].public_key[1] = (uint8_t) i;
		peers[i].public_key[2] = 0x42;
		peers[i].remove = i % 3 == 2;
	}
	memset(&c, 0, sizeof(c));
	c.ifname = "wgtest";
	c.has_private_key = settings;
	c.listen_port = settings ? 51820 : -1;
	c.peers = peers;
	c.n_peers = n;
	return c;
}

/* Does the fake hold exactly the additions of c that it does not refuse? */
static bool
holds_wanted(const fake *f, const wg_device_change *c)
{
	for (size_t i = 0; i < c->n_peers; i++)
	{
		size_t		no = peer_no(c->peers[i].public_key);
		bool		want = !c->peers[i].remove && !f->refuse[no];

		if (f->present[no] != want)
			return false;
	}
	return true;
}

/* Nothing refused: one set for the peers by kind, one for the settings. */
static void
test_all_applied(void)
{
	fake	   *f = new_fake();
	wg_device_change c = batch(300, true);
	int		   *rc = calloc(c.n_peers, sizeof(int));
	wg_apply_outcome out;

	for (size_t i = 0; i < c.n_peers; i++)
		if (c.peers[i].remove)
			f->present[i] = true;	/* revoked peers still on the device */
	CHECK(wg_device_apply_isolated(&c, fake_set, f, rc, &out) == 0);
	CHECK(out.device_rc == 0);
	CHECK(out.settings_rc == 0);
	CHECK(out.refused == 0);
	CHECK(out.sets == 3);		/* removals, additions, settings */
	CHECK(f->sent == 300);
	CHECK(holds_wanted(f, &c));
	CHECK(f->has_key && f->port == 51820);
	free((void *) c.peers);
	free(rc);
	free(f);
}

/*
 * One addition refused, placed first: every removal and every other
 * addition still applied, only that one refused, in a few sets.
 */
static void
test_one_refused(void)
{
	fake	   *f = new_fake();
	wg_device_change c = batch(1000, true);
	int		   *rc = calloc(c.n_peers, sizeof(int));
	wg_apply_outcome out;
	int			others = 0;

	f->refuse[0] = true;
	for (size_t i = 0; i < c.n_peers; i++)
		if (c.peers[i].remove)
			f->present[i] = true;
	CHECK(wg_device_apply_isolated(&c, fake_set, f, rc, &out) == 0);
	CHECK(out.device_rc == 0);
	CHECK(out.refused == 1);
	CHECK(rc[0] == -EINVAL);
	for (size_t i = 1; i < c.n_peers; i++)
		others += rc[i] != 0;
	CHECK(others == 0);
	CHECK(holds_wanted(f, &c));
	CHECK(f->empty_sets == 1);	/* the probe that the device answers */
	/* removals, additions, probe, two halves per level (~10), settings */
	CHECK(out.sets <= 4 + 2 * 10);
	CHECK(out.settings_rc == 0);
	free((void *) c.peers);
	free(rc);
	free(f);
}

/*
 * Finding 1 of issue 11: a listen port that cannot be bound fails the
 * settings alone; every peer change, the removals above all, goes through.
 */
static void
test_port_taken(void)
{
	fake	   *f = new_fake();
	wg_device_change c = batch(30, true);
	int		   *rc = calloc(c.n_peers, sizeof(int));
	wg_apply_outcome out;

	f->port_taken = true;
	for (size_t i = 0; i < c.n_peers; i++)
		if (c.peers[i].remove)
			f->present[i] = true;
	CHECK(wg_device_apply_isolated(&c, fake_set, f, rc, &out) == 0);
	CHECK(out.device_rc == 0);
	CHECK(out.settings_rc == -EADDRINUSE);
	CHECK(out.refused == 0);
	CHECK(holds_wanted(f, &c));
	free((void *) c.peers);
	free(rc);
	free(f);
}

/* A device that cannot be reached: a device failure, nothing refused. */
static void
test_device_down(void)
{
	fake	   *f = new_fake();
	wg_device_change c = batch(30, true);
	int		   *rc = calloc(c.n_peers, sizeof(int));
	wg_apply_outcome out;

	f->down = true;
	CHECK(wg_device_apply_isolated(&c, fake_set, f, rc, &out) == 0);
	CHECK(out.device_rc == -ENOENT);
	CHECK(out.at_open);
	CHECK(out.refused == 0);
	CHECK(out.sets == 1);		/* nothing more is tried */
	free((void *) c.peers);
	free(rc);
	free(f);
}

/*
 * The device goes away while refused peers are being looked for: the
 * search stops at once with a device failure.
 */
static void
test_device_dies_while_splitting(void)
{
	fake	   *f = new_fake();
	wg_device_change c = batch(1000, false);
	int		   *rc = calloc(c.n_peers, sizeof(int));
	wg_apply_outcome out;

	f->refuse[501] = true;
	f->down_after = 4;			/* removals, additions, probe, one half */
	CHECK(wg_device_apply_isolated(&c, fake_set, f, rc, &out) == 0);
	CHECK(out.device_rc == -ENOENT);
	CHECK(out.sets == 5);
	free((void *) c.peers);
	free(rc);
	free(f);
}

/*
 * Finding 2 of issue 11, the shape of a full device: every addition of a
 * 10,000-peer batch refused.  The search stays within its budget, every
 * addition is reported refused, and the removals all went through.
 */
static void
test_full_device(void)
{
	fake	   *f = new_fake();
	wg_device_change c = batch(10000, false);
	int		   *rc = calloc(c.n_peers, sizeof(int));
	wg_apply_outcome out;
	size_t		additions = 0;
	size_t		refused_additions = 0;
	size_t		removed = 0;

	for (size_t i = 0; i < c.n_peers; i++)
	{
		f->refuse[i] = true;
		if (c.peers[i].remove)
			f->present[i] = true;
	}
	CHECK(wg_device_apply_isolated(&c, fake_set, f, rc, &out) == 0);
	CHECK(out.device_rc == 0);
	for (size_t i = 0; i < c.n_peers; i++)
	{
		if (c.peers[i].remove)
			removed += !f->present[i] && rc[i] == 0;
		else
		{
			additions++;
			refused_additions += rc[i] == -EINVAL;
		}
	}
	CHECK(removed == c.n_peers - additions);
	CHECK(refused_additions == additions);
	CHECK(out.refused == additions);
	CHECK(out.sets <= 3 + WG_ISOLATE_MAX_SETS);
	free((void *) c.peers);
	free(rc);
	free(f);
}

/* Several refused peers scattered in the batch are each found. */
static void
test_scattered(void)
{
	fake	   *f = new_fake();
	wg_device_change c = batch(2000, false);
	int		   *rc = calloc(c.n_peers, sizeof(int));
	wg_apply_outcome out;
	size_t		bad[] = {0, 7, 1000, 1999};
	size_t		refused = 0;

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		f->refuse[bad[k]] = true;
	CHECK(wg_device_apply_isolated(&c, fake_set, f, rc, &out) == 0);
	for (size_t i = 0; i < c.n_peers; i++)
		refused += rc[i] != 0;
	CHECK(out.refused == 4);
	CHECK(refused == 4);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		CHECK(rc[bad[k]] == -EINVAL);
	CHECK(holds_wanted(f, &c));
	free((void *) c.peers);
	free(rc);
	free(f);
}

int
main(void)
{
	test_all_applied();
	test_one_refused();
	test_port_taken();
	test_device_down();
	test_device_dies_while_splitting();
	test_full_device();
	test_scattered();
	return UNIT_DONE("test_isolate");
}
