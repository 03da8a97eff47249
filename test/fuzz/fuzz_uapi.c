/*
 * fuzz_uapi.c
 *		libFuzzer target for the UAPI reply parser: the input is what a
 *		userspace WireGuard daemon answers, parsed by wguapi_reply_feed as
 *		a get reply (into a device) and as a set reply (errno only).
 *
 * Checked on every input, besides memory safety:
 *	- the result is one the callers handle: 1 with the daemon's status as
 *	  0 or -1 .. -4095, 0 (more to read), -EPROTO or -ENOMEM;
 *	- the reply cut in two at any point and fed in two pieces gives the
 *	  same result, status and device as fed whole (the socket may deliver
 *	  it in any pieces);
 *	- a parsed device is well-formed and survives a round trip: written as
 *	  wireguard-go would answer (test/uapi_text.h) and parsed again, it is
 *	  the same device.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/keys.h"
#include "device/uapi.h"
#include "device_equal.h"
#include "uapi_text.h"
#include "fuzz.h"

/* Is r, with the reply it leaves, a result the callers handle? */
static void
check_result(int r, const wguapi_reply *reply)
{
	REQUIRE(r == 1 || r == 0 || r == -EPROTO || r == -ENOMEM);
	REQUIRE(r < 0 || (r == 1) == reply->done);
	REQUIRE(!reply->done || reply->has_status);
	REQUIRE(reply->status <= 0 && reply->status >= -4095);
	REQUIRE(reply->line_len < sizeof(reply->line));
}

/* A device as a reply leaves it: every field within its bounds. */
static void
check_device(const wg_device *dev)
{
	REQUIRE(dev->n_peers <= dev->cap_peers);
	for (size_t i = 0; i < dev->n_peers; i++)
	{
		const wg_peer_info *p = &dev->peers[i];

		REQUIRE(p->endpoint.family == AF_UNSPEC ||
				p->endpoint.family == AF_INET ||
				p->endpoint.family == AF_INET6);
		REQUIRE(p->last_handshake_sec >= 0);
		REQUIRE(p->last_handshake_nsec >= 0 &&
				p->last_handshake_nsec <= 999999999);
		REQUIRE(p->n_allowedips <= p->cap_allowedips);
		for (size_t k = 0; k < p->n_allowedips; k++)
			REQUIRE(wg_allowedip_valid(&p->allowedips[k]));
	}
}

/*
 * Feed data in two pieces, cut at cut; the second unless the first
 * failed.  Returns the last result.
 */
static int
feed_in_two(wguapi_reply *reply, const char *data, size_t size, size_t cut)
{
	int			r = wguapi_reply_feed(reply, data, cut);

	if (r >= 0 && cut < size)
		r = wguapi_reply_feed(reply, data + cut, size - cut);
	return r;
}

/* Write dev as a daemon's get reply, parse it again: the same device. */
static void
round_trip(const wg_device *dev)
{
	size_t		len = uapi_text_device(NULL, 0, dev);
	char	   *text = malloc(len + 1);
	wg_device	again;
	wguapi_reply reply;

	REQUIRE(text != NULL);
	REQUIRE(uapi_text_device(text, len + 1, dev) == len);
	memset(&again, 0, sizeof(again));
	wguapi_reply_init(&reply, &again);
	REQUIRE(wguapi_reply_feed(&reply, text, len) == 1);
	REQUIRE(reply.status == 0);
	REQUIRE(device_equal(&again, dev, false));
	wg_device_free(&again);
	free(text);
}

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libsodium derives a device's public key from its private key. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	REQUIRE(wg_keys_init() == 0);
	return 0;
}

/* One input: a whole reply. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	size_t		cut = size > 0 ? (size_t) data[0] * size / 256 : 0;
	wg_device	whole;
	wg_device	parts;
	wguapi_reply reply;
	wguapi_reply reply2;
	int			r;
	int			r2;

	/* as a set reply: errno= and the blank line, nothing else */
	wguapi_reply_init(&reply, NULL);
	r = wguapi_reply_feed(&reply, text, size);
	check_result(r, &reply);

	/* as a get reply, whole and in two pieces */
	memset(&whole, 0, sizeof(whole));
	wguapi_reply_init(&reply, &whole);
	r = wguapi_reply_feed(&reply, text, size);
	check_result(r, &reply);

	memset(&parts, 0, sizeof(parts));
	wguapi_reply_init(&reply2, &parts);
	r2 = feed_in_two(&reply2, text, size, cut);
	REQUIRE(r2 == r);
	REQUIRE(reply2.done == reply.done && reply2.status == reply.status &&
			reply2.has_status == reply.has_status);
	REQUIRE(device_equal(&parts, &whole, false));
	wg_device_free(&parts);

	if (r >= 0)
	{
		check_device(&whole);
		round_trip(&whole);
	}
	wg_device_free(&whole);
	return 0;
}
