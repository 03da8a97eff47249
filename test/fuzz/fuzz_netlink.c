/*
 * fuzz_netlink.c
 *		libFuzzer target for the netlink reply parsers: the input is one
 *		received datagram, given to wgnl_parse_ack, wgnl_parse_resolve and
 *		wgnl_dump_feed as the kernel's answer to our request.
 *
 * Checked on every input, besides memory safety:
 *	- every result is one the callers handle: 1 (read on), 0, or -errno
 *	  with an errno of 1..4095 (so a caller can negate and print it);
 *	- the datagram cut at its message boundaries into one datagram per
 *	  message and fed in order gives the same result and the same device;
 *	- a parsed device is well-formed (valid allowed IPs, a NUL-terminated
 *	  name, no peer split in two) and survives a round trip: dumped again
 *	  the way the kernel dumps, in messages small enough to cut its peers
 *	  (test/netlink_dump.h), it parses back equal.
 * The seq and port id the parsers wait for are those of the seed corpus
 * (test/fuzz/corpus_netlink/), so mutations keep reaching past the
 * header checks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device/netlink.h"
#include "device_equal.h"
#include "netlink_dump.h"
#include "fuzz.h"

#define SEQ 77
#define PORTID 42
#define FAMILY_ID 0x1b

/* Is r a result a caller can handle: 1, 0 or -1 .. -4095? */
static int
result_ok(int r)
{
	return r >= -4095 && r <= 1;
}

/* A device as a dump leaves it: every field within its bounds. */
static void
check_device(const wg_device *dev)
{
	REQUIRE(memchr(dev->ifname, '\0', sizeof(dev->ifname)) != NULL);
	REQUIRE(dev->n_peers <= dev->cap_peers);
	for (size_t i = 0; i < dev->n_peers; i++)
	{
		const wg_peer_info *p = &dev->peers[i];

		/* a peer repeated next to itself is merged, never listed twice */
		REQUIRE(i == 0 || memcmp(p->public_key, dev->peers[i - 1].public_key,
								 WG_KEY_LEN) != 0);
		REQUIRE(p->endpoint.family == AF_UNSPEC ||
				p->endpoint.family == AF_INET ||
				p->endpoint.family == AF_INET6);
		REQUIRE(p->n_allowedips <= p->cap_allowedips);
		for (size_t k = 0; k < p->n_allowedips; k++)
			REQUIRE(wg_allowedip_valid(&p->allowedips[k]));
	}
}

/*
 * Feed the datagram one message at a time, each in a buffer of its exact
 * size, as consecutive datagrams, until the dump ends or fails; returns
 * the last result.  What follows the last whole message (padding
 * included) goes last, as a datagram of its own.
 */
static int
feed_by_message(wgnl_dump *dump, const char *buf, size_t len)
{
	size_t		off = 0;
	int			r = 0;

	while (r == 0 && off < len)
	{
		const struct nlmsghdr *nlh = (const struct nlmsghdr *) (buf + off);
		size_t		n = len - off;
		void	   *one;

		if (n >= sizeof(*nlh) && nlh->nlmsg_len >= sizeof(*nlh) &&
			nlh->nlmsg_len <= n && MNL_ALIGN(nlh->nlmsg_len) <= n)
			n = MNL_ALIGN(nlh->nlmsg_len);
		one = malloc(n);
		REQUIRE(one != NULL);
		memcpy(one, nlh, n);
		r = wgnl_dump_feed(dump, one, n);
		free(one);
		off += n;
	}
	return r;
}

/*
 * Dump dev again, in messages of msg_size bytes, and check that it parses
 * back to the same device.
 */
static void
round_trip(const wg_device *dev, size_t msg_size)
{
	size_t		size = 4096 + dev->n_peers * 256;
	uint32_t   *buf;
	size_t		len;
	wgnl_dump	again;

	for (size_t i = 0; i < dev->n_peers; i++)
		size += dev->peers[i].n_allowedips * 64;
	buf = malloc(size);
	REQUIRE(buf != NULL);
	len = nl_dump_device(buf, size, msg_size, FAMILY_ID, SEQ, PORTID, dev);
	REQUIRE(len > 0);
	memset(&again, 0, sizeof(again));
	again.seq = SEQ;
	again.portid = PORTID;
	REQUIRE(wgnl_dump_feed(&again, buf, len) == 1);
	REQUIRE(!again.interrupted);
	REQUIRE(device_equal(&again.device, dev, true));
	wg_device_free(&again.device);
	free(buf);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input: one datagram. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *buf = malloc(size ? size : 1);	/* exactly sized, aligned */
	wgnl_dump	whole;
	wgnl_dump	parts;
	uint16_t	id = 0;
	int			r;
	int			r2;

	REQUIRE(buf != NULL);
	memcpy(buf, data, size);

	r = wgnl_parse_ack(buf, size, SEQ, PORTID);
	REQUIRE(result_ok(r));
	r = wgnl_parse_resolve(buf, size, SEQ, PORTID, &id);
	REQUIRE(result_ok(r));

	memset(&whole, 0, sizeof(whole));
	whole.seq = SEQ;
	whole.portid = PORTID;
	r = wgnl_dump_feed(&whole, buf, size);
	REQUIRE(result_ok(r));

	memset(&parts, 0, sizeof(parts));
	parts.seq = SEQ;
	parts.portid = PORTID;
	r2 = feed_by_message(&parts, buf, size);
	REQUIRE(r2 == r);
	REQUIRE(parts.interrupted == whole.interrupted);
	REQUIRE(device_equal(&parts.device, &whole.device, true));
	wg_device_free(&parts.device);

	if (r >= 0)
	{
		check_device(&whole.device);
		/*
		 * peers cut across small messages, then messages as large as a
		 * nest's 16-bit length allows (one, for what 4 KiB of input holds)
		 */
		round_trip(&whole.device, 256 + (size % 97) * 4);
		round_trip(&whole.device, 65532);
	}
	wg_device_free(&whole.device);
	free(buf);
	return 0;
}
