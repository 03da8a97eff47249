/*
 * test_diff.c
 *		Unit tests of diff.c: the diff between desired peers and a
 *		live device finds exactly what differs, and nothing when nothing
 *		does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "device/diff.h"
#include "unit.h"

/* A key whose bytes are all b. */
static void
key(uint8_t out[WG_KEY_LEN], int b)
{
	memset(out, b, WG_KEY_LEN);
}

/* The allowed IPs of the desired peers, by key byte. */
static wg_allowedip desired_ips[16][WG_PEER_ALLOWEDIPS_MAX + 1];

/* Allowed IP text ("10.0.0.1/32", "fd00::1/128", ...) as a prefix. */
static wg_allowedip
prefix(const char *text)
{
	wg_allowedip a;
	char		addr[64];
	const char *slash = strchr(text, '/');

	memset(&a, 0, sizeof(a));
	snprintf(addr, sizeof(addr), "%.*s", (int) (slash - text), text);
	a.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	inet_pton(a.family, addr, &a.addr);
	a.cidr = (uint8_t) atoi(slash + 1);
	return a;
}

/* Desired peer b with address 10.0.0.b/32 and fd00::b/128. */
static void
desired_peer(wg_desired_peer *p, int b)
{
	char		v6[32];
	wg_allowedip *ips = desired_ips[b];

	memset(p, 0, sizeof(*p));
	key(p->public_key, b);
	key(p->preshared_key, 100 + b);
	p->keepalive = 25;
	ips[0].family = AF_INET;
	ips[0].cidr = 32;
	ips[0].addr.ip4.s_addr = htonl(0x0a000000 | b);
	ips[1].family = AF_INET6;
	ips[1].cidr = 128;
	snprintf(v6, sizeof(v6), "fd00::%x", b);
	inet_pton(AF_INET6, v6, &ips[1].addr.ip6);
	p->allowedips = ips;
	p->n_allowedips = 2;
}

/* The live twin of a desired peer, allowed IPs in reverse order. */
static void
live_peer(wg_peer_info *info, const wg_desired_peer *want)
{
	size_t		n = want->n_allowedips;

	memset(info, 0, sizeof(*info));
	memcpy(info->public_key, want->public_key, WG_KEY_LEN);
	memcpy(info->preshared_key, want->preshared_key, WG_KEY_LEN);
	info->keepalive = want->keepalive;
	info->allowedips = calloc(n + 1, sizeof(wg_allowedip));
	for (size_t i = 0; i < n; i++)
		info->allowedips[i] = want->allowedips[n - 1 - i];
	info->n_allowedips = info->cap_allowedips = n;
}

/* The change for key b in changes, or NULL. */
static const wg_peer_change *
change_for(const wg_peer_change *changes, size_t n, int b)
{
	uint8_t		k[WG_KEY_LEN];

	key(k, b);
	for (size_t i = 0; i < n; i++)
		if (memcmp(changes[i].public_key, k, WG_KEY_LEN) == 0)
			return &changes[i];
	return NULL;
}

static void
free_peers(wg_peer_info *peers, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(peers[i].allowedips);
}

/* In sync: no change at all, whatever the order on either side. */
static void
test_in_sync(void)
{
	wg_desired_peer want[3];
	wg_peer_info live[3];
	wg_device dev = {0};
	wg_peer_change changes[6];
	size_t		n = 99;
	wg_diff_stats st;

	desired_peer(&want[0], 3);
	desired_peer(&want[1], 1);
	desired_peer(&want[2], 2);
	live_peer(&live[0], &want[1]);
	live_peer(&live[1], &want[2]);
	live_peer(&live[2], &want[0]);
	dev.peers = live;
	dev.n_peers = 3;
	CHECK(wg_peer_diff(want, 3, &dev, NULL, 0, false, changes, &n, &st) == 0);
	CHECK(n == 0);
	CHECK(st.added == 0 && st.corrected == 0 && st.removed == 0 && st.foreign == 0);
	free_peers(live, 3);
}

/* Each kind of drift is found and repaired with the smallest change. */
static void
test_drift(void)
{
	wg_desired_peer want[4];
	wg_peer_info live[5];
	wg_device dev = {0};
	uint8_t		known[1][WG_KEY_LEN];
	wg_peer_change changes[9];
	size_t		n = 0;
	wg_diff_stats st;
	const wg_peer_change *c;

	for (int b = 1; b <= 4; b++)
		desired_peer(&want[b - 1], b);
	/* 1: in sync; 2: wrong preshared key; 3: missing; 4: wrong address */
	live_peer(&live[0], &want[0]);
	live_peer(&live[1], &want[1]);
	live[1].preshared_key[0] ^= 1;
	live_peer(&live[2], &want[3]);
	live[2].allowedips[1].addr.ip4.s_addr = htonl(0x0a0000fe);
	/* 9: revoked in the database; 7: nobody knows it */
	memset(&live[3], 0, sizeof(live[3]));
	key(live[3].public_key, 9);
	memset(&live[4], 0, sizeof(live[4]));
	key(live[4].public_key, 7);
	dev.peers = live;
	dev.n_peers = 5;
	key(known[0], 9);

	CHECK(wg_peer_diff(want, 4, &dev, known, 1, false, changes, &n, &st) == 0);
	CHECK(n == 4);
	CHECK(st.added == 1 && st.corrected == 2 && st.removed == 1 && st.foreign == 1);
	CHECK(change_for(changes, n, 1) == NULL);
	c = change_for(changes, n, 2);
	CHECK(c && !c->remove && c->has_preshared_key &&
		  memcmp(c->preshared_key, want[1].preshared_key, WG_KEY_LEN) == 0);
	c = change_for(changes, n, 3);
	CHECK(c && !c->remove && c->n_allowedips == 2 && c->keepalive == 25);
	c = change_for(changes, n, 4);
	CHECK(c && !c->remove && c->n_allowedips == 2);
	c = change_for(changes, n, 9);
	CHECK(c && c->remove);
	CHECK(change_for(changes, n, 7) == NULL);

	/* exclusive: the unknown peer goes too */
	CHECK(wg_peer_diff(want, 4, &dev, known, 1, true, changes, &n, &st) == 0);
	CHECK(n == 5 && st.removed == 2 && st.foreign == 0);
	c = change_for(changes, n, 7);
	CHECK(c && c->remove);
	free_peers(live, 3);
}

/* An empty device gets every desired peer; an empty database removes
 * only what it knows. */
static void
test_empty_sides(void)
{
	wg_desired_peer want[2];
	wg_peer_info live[1];
	wg_device dev = {0};
	uint8_t		known[1][WG_KEY_LEN];
	wg_peer_change changes[3];
	size_t		n = 0;
	wg_diff_stats st;

	desired_peer(&want[0], 5);
	desired_peer(&want[1], 6);
	CHECK(wg_peer_diff(want, 2, &dev, NULL, 0, false, changes, &n, &st) == 0);
	CHECK(n == 2 && st.added == 2);

	live_peer(&live[0], &want[0]);
	dev.peers = live;
	dev.n_peers = 1;
	key(known[0], 5);
	CHECK(wg_peer_diff(NULL, 0, &dev, known, 1, false, changes, &n, &st) == 0);
	CHECK(n == 1 && changes[0].remove && st.removed == 1);
	free_peers(live, 1);

	want[0].n_allowedips = WG_PEER_ALLOWEDIPS_MAX + 1;
	CHECK(wg_peer_diff(want, 1, &dev, NULL, 0, false, changes, &n, &st) == -EINVAL);
}

/*
 * Routes behind a peer: a peer with its two addresses and a full set of
 * routes (more than two allowed IPs) is in sync whatever order the device
 * lists them in; a route missing, added, replaced or repeated in place of
 * another on the device is corrected with all of them.
 */
static void
test_routes(void)
{
	wg_desired_peer want[1];
	wg_peer_info live[1];
	wg_device	dev = {0};
	wg_peer_change changes[2];
	size_t		n = 99;
	wg_diff_stats st;
	wg_allowedip *ips = desired_ips[1];
	wg_allowedip saved;
	char		text[64];

	desired_peer(&want[0], 1);
	ips[2] = prefix("192.168.77.0/24");
	ips[3] = prefix("fd77::/64");
	for (int i = 4; i < WG_PEER_ALLOWEDIPS_MAX; i++)
	{
		snprintf(text, sizeof(text), "172.16.%d.0/24", i);
		ips[i] = prefix(text);
	}
	want[0].n_allowedips = WG_PEER_ALLOWEDIPS_MAX;
	live_peer(&live[0], &want[0]);
	dev.peers = live;
	dev.n_peers = 1;

	/* reversed on the device, and in yet another order on either side */
	CHECK(wg_peer_diff(want, 1, &dev, NULL, 0, false, changes, &n, &st) == 0);
	CHECK(n == 0 && st.corrected == 0);
	saved = live[0].allowedips[0];
	live[0].allowedips[0] = live[0].allowedips[30];
	live[0].allowedips[30] = saved;
	CHECK(wg_peer_diff(want, 1, &dev, NULL, 0, false, changes, &n, &st) == 0);
	CHECK(n == 0);

	/* a route missing from the device */
	live[0].n_allowedips--;
	CHECK(wg_peer_diff(want, 1, &dev, NULL, 0, false, changes, &n, &st) == 0);
	CHECK(n == 1 && st.corrected == 1 && !changes[0].remove &&
		  changes[0].n_allowedips == WG_PEER_ALLOWEDIPS_MAX &&
		  changes[0].allowedips == want[0].allowedips);

	/* the device has a route the database no longer wants */
	live[0].n_allowedips++;
	want[0].n_allowedips = 3;
	CHECK(wg_peer_diff(want, 1, &dev, NULL, 0, false, changes, &n, &st) == 0);
	CHECK(n == 1 && changes[0].n_allowedips == 3);

	/* one route replaced by another of the same count */
	want[0].n_allowedips = WG_PEER_ALLOWEDIPS_MAX;
	saved = live[0].allowedips[5];
	live[0].allowedips[5] = prefix("192.168.78.0/24");
	CHECK(wg_peer_diff(want, 1, &dev, NULL, 0, false, changes, &n, &st) == 0);
	CHECK(n == 1 && st.corrected == 1);

	/* the same count, one route repeated in place of another */
	live[0].allowedips[5] = live[0].allowedips[6];
	CHECK(wg_peer_diff(want, 1, &dev, NULL, 0, false, changes, &n, &st) == 0);
	CHECK(n == 1 && st.corrected == 1);

	/* a prefix the device lists twice, the set being right, matches */
	live[0].allowedips[5] = saved;
	live[0].allowedips[WG_PEER_ALLOWEDIPS_MAX] = saved;
	live[0].n_allowedips = WG_PEER_ALLOWEDIPS_MAX + 1;
	CHECK(wg_peer_diff(want, 1, &dev, NULL, 0, false, changes, &n, &st) == 0);
	CHECK(n == 0);

	/* same address, another prefix length: not the same route */
	live[0].n_allowedips = WG_PEER_ALLOWEDIPS_MAX;
	live[0].allowedips[5].cidr = 23;
	CHECK(wg_peer_diff(want, 1, &dev, NULL, 0, false, changes, &n, &st) == 0);
	CHECK(n == 1);
	free_peers(live, 1);

	/* a count with nothing to point to is refused */
	want[0].allowedips = NULL;
	CHECK(wg_peer_diff(want, 1, &dev, NULL, 0, false, changes, &n, &st) == -EINVAL);
}

/*
 * An empty device (no peer array at all, as a backend reports it) against
 * an empty database: no change.  Every array is NULL with a count of 0,
 * which qsort and bsearch must never see (UBSan: "null pointer passed as
 * argument 1, which is declared to never be null").
 */
static void
test_all_empty(void)
{
	wg_device	dev = {0};
	wg_peer_change changes[1];
	size_t		n = 99;
	wg_diff_stats st;

	CHECK(wg_peer_diff(NULL, 0, &dev, NULL, 0, false, changes, &n, &st) == 0);
	CHECK(n == 0);
	CHECK(st.added == 0 && st.corrected == 0 && st.removed == 0 && st.foreign == 0);
	CHECK(wg_peer_diff(NULL, 0, &dev, NULL, 0, true, changes, &n, &st) == 0);
	CHECK(n == 0);
}

/*
 * A report that lists a key twice (a UAPI daemon may repeat a peer): the
 * key is diffed once, matches only if every copy does, and a desired peer
 * is never removed because of its second copy.
 */
static void
test_repeated_key(void)
{
	wg_desired_peer want[1];
	wg_peer_info live[6];
	wg_device	dev = {0};
	uint8_t		known[1][WG_KEY_LEN];
	wg_peer_change changes[7];
	size_t		n = 0;
	wg_diff_stats st;
	const wg_peer_change *c;

	desired_peer(&want[0], 1);
	live_peer(&live[0], &want[0]);
	live_peer(&live[1], &want[0]);
	live[1].keepalive = 0;		/* the second copy is wrong */
	memset(&live[2], 0, sizeof(live[2]));
	key(live[2].public_key, 9);
	live[3] = live[2];
	memset(&live[4], 0, sizeof(live[4]));
	key(live[4].public_key, 7);
	live[5] = live[4];
	dev.peers = live;
	dev.n_peers = 6;
	key(known[0], 9);

	CHECK(wg_peer_diff(want, 1, &dev, known, 1, false, changes, &n, &st) == 0);
	CHECK(n == 2);
	CHECK(st.added == 0 && st.corrected == 1 && st.removed == 1 && st.foreign == 1);
	c = change_for(changes, n, 1);
	CHECK(c && !c->remove && c->keepalive == 25);
	c = change_for(changes, n, 9);
	CHECK(c && c->remove);

	/* exclusive: every key nobody desires goes, once; key 1 stays */
	CHECK(wg_peer_diff(want, 1, &dev, known, 1, true, changes, &n, &st) == 0);
	CHECK(n == 3 && st.corrected == 1 && st.removed == 2 && st.foreign == 0);
	c = change_for(changes, n, 1);
	CHECK(c && !c->remove);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < i; k++)
			CHECK(memcmp(changes[i].public_key, changes[k].public_key,
						 WG_KEY_LEN) != 0);
	free_peers(live, 6);
}

/*
 * Finding a device peer by key after sorting, and whether it holds a
 * prefix exactly: what the worker asks to tell a foreign peer from one
 * wgpeer put there.
 */
static void
test_find_and_holds(void)
{
	wg_desired_peer want[5];
	wg_peer_info live[5];
	wg_device dev;
	uint8_t		k[WG_KEY_LEN];
	wg_allowedip host = prefix("10.0.0.3/32");
	wg_allowedip wider = prefix("10.0.0.0/24");
	wg_allowedip other = prefix("10.0.0.9/32");
	wg_peer_info *p;

	memset(&dev, 0, sizeof(dev));
	key(k, 1);
	CHECK(wg_device_find_peer(&dev, k) == NULL);	/* an empty device */
	for (int i = 0; i < 5; i++)
	{
		desired_peer(&want[i], 5 - i);	/* keys 5..1: unsorted */
		live_peer(&live[i], &want[i]);
	}
	dev.peers = live;
	dev.n_peers = dev.cap_peers = 5;
	wg_device_sort_peers(&dev);
	for (int b = 1; b <= 5; b++)
	{
		key(k, b);
		p = wg_device_find_peer(&dev, k);
		CHECK(p != NULL && memcmp(p->public_key, k, WG_KEY_LEN) == 0);
	}
	key(k, 7);
	CHECK(wg_device_find_peer(&dev, k) == NULL);
	key(k, 3);
	p = wg_device_find_peer(&dev, k);
	CHECK(p != NULL && wg_peer_holds(p, &host));
	/* a prefix that merely covers the address is not the address */
	CHECK(p != NULL && !wg_peer_holds(p, &wider));
	CHECK(p != NULL && !wg_peer_holds(p, &other));
	CHECK(p != NULL && wg_peer_may_be(p, &host));
	CHECK(p != NULL && !wg_peer_may_be(p, &other));
	/* a set cut short: the key without its allowed IPs */
	if (p != NULL)
		p->n_allowedips = 0;
	CHECK(p != NULL && wg_peer_may_be(p, &other));
	free_peers(live, 5);
}

int
main(void)
{
	test_all_empty();
	test_in_sync();
	test_drift();
	test_empty_sides();
	test_repeated_key();
	test_routes();
	test_find_and_holds();
	return UNIT_DONE("test_diff");
}
