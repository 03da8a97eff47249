/*
 * test_uapi.c
 *		Unit tests of the userspace WireGuard (UAPI) backend.
 *
 * Set requests are built into memory and checked line by line; their
 * chunking is checked on a batch far larger than a chunk.  Canned get and
 * set replies are parsed whole and byte by byte.  Then the socket layer
 * talks to a scripted fake daemon (a child process listening in a
 * temporary directory): the request it receives, its replies, an errno,
 * a daemon that hangs up mid-request, one that never answers (the timeout)
 * and one that is gone (a stale socket).  Last a hung daemon (a listening
 * socket nobody accepts on, as when its process is stopped): calls give up
 * after their limit, a full backlog refuses at once, and a probe answers
 * "not yet" without waiting until the daemon serves it.
 */
#include "core/keys.h"
#include "device/uapi.h"
#include "helpers.h"
#include "unit.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

/* What a sink received: every byte, and how it was chunked. */
typedef struct capture
{
	char	   *data;
	size_t		len;
	size_t		cap;
	int			chunks;
	size_t		max_chunk;
	int			fail_at;		/* chunk number that fails with -EPIPE, 0: none */
} capture;

/* A wguapi_sink collecting into a capture. */
static int
capture_sink(void *arg, const char *data, size_t len)
{
	capture    *c = arg;

	c->chunks++;
	if (c->fail_at != 0 && c->chunks >= c->fail_at)
		return -EPIPE;
	if (len > c->max_chunk)
		c->max_chunk = len;
	if (c->len + len + 1 > c->cap)
	{
		c->cap = (c->len + len + 1) * 2;
		c->data = realloc(c->data, c->cap);
	}
	memcpy(c->data + c->len, data, len);
	c->len += len;
	c->data[c->len] = '\0';
	return 0;
}

/* A key whose bytes are all b. */
static void
fill_key(uint8_t key[WG_KEY_LEN], uint8_t b)
{
	memset(key, b, WG_KEY_LEN);
}

/* An allowed IP from text and a prefix length. */
static wg_allowedip
ip(const char *text, int cidr)
{
	wg_allowedip a;

	memset(&a, 0, sizeof(a));
	a.family = strchr(text, ':') ? AF_INET6 : AF_INET;
	inet_pton(a.family, text, &a.addr);
	a.cidr = cidr;
	return a;
}

/* 64 hex digits of a key whose bytes are all b. */
static const char *
hex_of(uint8_t b)
{
	static char buf[8][65];
	static int	next;
	char	   *out = buf[next++ % 8];

	for (int i = 0; i < WG_KEY_LEN; i++)
		sprintf(out + 2 * i, "%02x", b);
	return out;
}

/* Compare text with the expected lines, one CHECK per line. */
static void
check_lines(const char *text, const char *const *want, int n_want)
{
	char	   *copy = strdup(text);
	char	   *line = copy;
	int			i = 0;

	for (char *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1, i++)
	{
		*nl = '\0';
		if (i < n_want)
			CHECK_STR(line, want[i]);
	}
	CHECK(i == n_want);
	CHECK(*line == '\0');		/* nothing after the last newline */
	free(copy);
}

/* Two adds and a removal, with device settings: every line, in order. */
static void
test_build_set(void)
{
	wg_allowedip ips[2] = {ip("10.0.0.2", 32), ip("fd00::2", 128)};
	wg_peer_change peers[3];
	wg_device_change dc;
	capture		c = {0};
	char		line[6][128];
	const char *want[14];
	int			n = 0;

	memset(peers, 0, sizeof(peers));
	fill_key(peers[0].public_key, 0xa1);
	peers[0].has_preshared_key = true;
	fill_key(peers[0].preshared_key, 0x5e);
	peers[0].keepalive = 25;
	peers[0].allowedips = ips;
	peers[0].n_allowedips = 2;
	fill_key(peers[1].public_key, 0xb2);
	peers[1].has_preshared_key = true;	/* zeros: clear it */
	peers[1].keepalive = -1;	/* leave it */
	fill_key(peers[2].public_key, 0xc3);
	peers[2].remove = true;

	memset(&dc, 0, sizeof(dc));
	dc.ifname = "wg0";
	dc.has_private_key = true;
	fill_key(dc.private_key, 0x0f);
	dc.listen_port = 51820;
	dc.peers = peers;
	dc.n_peers = 3;

	CHECK(wguapi_build_set(&dc, capture_sink, &c) == 0);
	snprintf(line[0], sizeof(line[0]), "private_key=%s", hex_of(0x0f));
	snprintf(line[1], sizeof(line[1]), "public_key=%s", hex_of(0xa1));
	snprintf(line[2], sizeof(line[2]), "preshared_key=%s", hex_of(0x5e));
	snprintf(line[3], sizeof(line[3]), "public_key=%s", hex_of(0xb2));
	snprintf(line[4], sizeof(line[4]), "preshared_key=%s", hex_of(0x00));
	snprintf(line[5], sizeof(line[5]), "public_key=%s", hex_of(0xc3));
	want[n++] = "set=1";
	want[n++] = line[0];
	want[n++] = "listen_port=51820";
	want[n++] = line[1];
	want[n++] = line[2];
	want[n++] = "persistent_keepalive_interval=25";
	want[n++] = "replace_allowed_ips=true";
	want[n++] = "allowed_ip=10.0.0.2/32";
	want[n++] = "allowed_ip=fd00::2/128";
	want[n++] = line[3];
	want[n++] = line[4];
	want[n++] = "replace_allowed_ips=true";
	want[n++] = line[5];
	want[n++] = "remove=true";
	/* ... and the blank line that ends the request */
	CHECK(c.len > 2 && strcmp(c.data + c.len - 2, "\n\n") == 0);
	c.data[--c.len] = '\0';
	check_lines(c.data, want, n);
	CHECK(c.chunks == 1);
	free(c.data);

	/* no device settings, no peers: just the frame */
	memset(&c, 0, sizeof(c));
	dc.has_private_key = false;
	dc.listen_port = -1;
	dc.n_peers = 0;
	CHECK(wguapi_build_set(&dc, capture_sink, &c) == 0);
	CHECK_STR(c.data, "set=1\n\n");
	free(c.data);
}

/*
 * A batch of 5,000 peers reaches the sink in many chunks, none larger
 * than WGUAPI_CHUNK_SIZE, none splitting a line, together the whole
 * request.
 */
static void
test_build_chunks(void)
{
	enum
	{
	N = 5000};
	wg_peer_change *peers = calloc(N, sizeof(wg_peer_change));
	wg_allowedip *ips = calloc(N, sizeof(wg_allowedip));
	wg_device_change dc;
	capture		c = {0};
	int			keys = 0;
	int			ip_lines = 0;
	char	   *p;

	for (int i = 0; i < N; i++)
	{
		char		addr[32];

		fill_key(peers[i].public_key, (uint8_t) i);
		peers[i].public_key[0] = i >> 8;
		peers[i].keepalive = -1;
		snprintf(addr, sizeof(addr), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		ips[i] = ip(addr, 32);
		peers[i].allowedips = &ips[i];
		peers[i].n_allowedips = 1;
	}
	memset(&dc, 0, sizeof(dc));
	dc.ifname = "wg0";
	dc.listen_port = -1;
	dc.peers = peers;
	dc.n_peers = N;
	CHECK(wguapi_build_set(&dc, capture_sink, &c) == 0);
	CHECK(c.chunks > 100);
	CHECK(c.max_chunk <= WGUAPI_CHUNK_SIZE);
	for (p = c.data; (p = strstr(p, "public_key=")) != NULL; p++)
		keys++;
	for (p = c.data; (p = strstr(p, "allowed_ip=")) != NULL; p++)
		ip_lines++;
	CHECK(keys == N);
	CHECK(ip_lines == N);
	CHECK(strstr(c.data, "allowed_ip=10.0.19.135/32\n") != NULL);
	CHECK(strncmp(c.data, "set=1\n", 6) == 0);
	CHECK(strcmp(c.data + c.len - 2, "\n\n") == 0);
	free(c.data);

	/*
	 * A sink error stops the building: nothing is built after it.  The
	 * two chunks before it were captured, and are freed like any other.
	 */
	memset(&c, 0, sizeof(c));
	c.fail_at = 3;
	CHECK(wguapi_build_set(&dc, capture_sink, &c) == -EPIPE);
	CHECK(c.chunks == 3);
	CHECK(c.len > WGUAPI_CHUNK_SIZE && c.len <= 2 * WGUAPI_CHUNK_SIZE);
	free(c.data);

	/* an invalid batch sends nothing */
	memset(&c, 0, sizeof(c));
	ips[N - 1].cidr = 33;
	CHECK(wguapi_build_set(&dc, capture_sink, &c) == -EINVAL);
	CHECK(c.chunks == 0);
	free(peers);
	free(ips);
}

/* What wireguard-go answers to get=1 for a device with three peers. */
static const char *
canned_get(void)
{
	static char buf[2048];

	snprintf(buf, sizeof(buf),
			 "private_key=%s\n"
			 "listen_port=51820\n"
			 "fwmark=66\n"
			 "public_key=%s\n"
			 "preshared_key=%s\n"
			 "protocol_version=1\n"
			 "endpoint=192.0.2.7:40123\n"
			 "last_handshake_time_sec=1700000000\n"
			 "last_handshake_time_nsec=123456789\n"
			 "tx_bytes=1000\n"
			 "rx_bytes=18446744073709551615\n"
			 "persistent_keepalive_interval=25\n"
			 "allowed_ip=10.0.0.2/32\n"
			 "allowed_ip=fd00::2/128\n"
			 "public_key=%s\n"
			 "preshared_key=%s\n"
			 "protocol_version=1\n"
			 "endpoint=[2001:db8::1%%7]:51820\n"
			 "some_future_key=whatever\n"
			 "last_handshake_time_sec=0\n"
			 "last_handshake_time_nsec=0\n"
			 "tx_bytes=0\n"
			 "rx_bytes=0\n"
			 "persistent_keepalive_interval=0\n"
			 "allowed_ip=10.0.0.3/32\n"
			 "public_key=%s\n"
			 "preshared_key=%s\n"
			 "protocol_version=1\n"
			 "last_handshake_time_sec=0\n"
			 "last_handshake_time_nsec=0\n"
			 "tx_bytes=0\n"
			 "rx_bytes=0\n"
			 "persistent_keepalive_interval=0\n"
			 "errno=0\n"
			 "\n",
			 hex_of(0x0f), hex_of(0xa1), hex_of(0x5e), hex_of(0xb2),
			 hex_of(0x00), "C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3C3",
			 hex_of(0x00));
	return buf;
}

/* Check a device parsed from canned_get(). */
static void
check_canned_device(const wg_device *d)
{
	uint8_t		key[WG_KEY_LEN];
	uint8_t		pub[WG_KEY_LEN];
	char		text[INET6_ADDRSTRLEN];
	const wg_peer_info *p;

	fill_key(key, 0x0f);
	CHECK(d->has_private_key && memcmp(d->private_key, key, WG_KEY_LEN) == 0);
	CHECK(wg_key_public(pub, key) == 0);
	CHECK(d->has_public_key && memcmp(d->public_key, pub, WG_KEY_LEN) == 0);
	CHECK(d->listen_port == 51820);
	CHECK(d->fwmark == 66);
	CHECK(d->n_peers == 3);
	if (d->n_peers != 3)
		return;

	p = &d->peers[0];
	fill_key(key, 0xa1);
	CHECK(memcmp(p->public_key, key, WG_KEY_LEN) == 0);
	fill_key(key, 0x5e);
	CHECK(memcmp(p->preshared_key, key, WG_KEY_LEN) == 0);
	CHECK(p->endpoint.family == AF_INET);
	inet_ntop(AF_INET, &p->endpoint.in4.sin_addr, text, sizeof(text));
	CHECK_STR(text, "192.0.2.7");
	CHECK(ntohs(p->endpoint.in4.sin_port) == 40123);
	CHECK(p->last_handshake_sec == 1700000000);
	CHECK(p->last_handshake_nsec == 123456789);
	CHECK(p->tx_bytes == 1000);
	CHECK(p->rx_bytes == UINT64_MAX);
	CHECK(p->keepalive == 25);
	CHECK(p->n_allowedips == 2);
	if (p->n_allowedips == 2)
	{
		CHECK(p->allowedips[0].family == AF_INET && p->allowedips[0].cidr == 32);
		CHECK(p->allowedips[1].family == AF_INET6 && p->allowedips[1].cidr == 128);
		inet_ntop(AF_INET6, &p->allowedips[1].addr.ip6, text, sizeof(text));
		CHECK_STR(text, "fd00::2");
	}

	p = &d->peers[1];
	fill_key(key, 0);
	CHECK(memcmp(p->preshared_key, key, WG_KEY_LEN) == 0);
	CHECK(p->endpoint.family == AF_INET6);
	inet_ntop(AF_INET6, &p->endpoint.in6.sin6_addr, text, sizeof(text));
	CHECK_STR(text, "2001:db8::1");
	CHECK(ntohs(p->endpoint.in6.sin6_port) == 51820);
	CHECK(p->endpoint.in6.sin6_scope_id == 7);
	CHECK(p->last_handshake_sec == 0 && p->keepalive == 0);
	CHECK(p->n_allowedips == 1);

	p = &d->peers[2];
	fill_key(key, 0xc3);			/* upper-case hex is read too */
	CHECK(memcmp(p->public_key, key, WG_KEY_LEN) == 0);
	CHECK(p->endpoint.family == AF_UNSPEC);
	CHECK(p->n_allowedips == 0);
}

/* Feed a whole reply, return wguapi_reply_feed's result and the status. */
static int
feed_all(const char *text, wg_device *dev, int *status)
{
	wguapi_reply r;
	int			rc;

	if (dev)
		memset(dev, 0, sizeof(*dev));
	wguapi_reply_init(&r, dev);
	rc = wguapi_reply_feed(&r, text, strlen(text));
	*status = r.status;
	return rc;
}

/* Get and set replies: success, errno either sign, malformed ones. */
static void
test_parse_replies(void)
{
	const char *text = canned_get();
	wg_device dev;
	wguapi_reply r;
	int			status;
	int			rc = 0;
	char		bad[WGUAPI_LINE_MAX + 64];

	CHECK(feed_all(text, &dev, &status) == 1);
	CHECK(status == 0);
	check_canned_device(&dev);
	wg_device_free(&dev);

	/* byte by byte: the same device, and 0 until the last byte */
	memset(&dev, 0, sizeof(dev));
	wguapi_reply_init(&r, &dev);
	for (size_t i = 0; i < strlen(text); i++)
	{
		rc = wguapi_reply_feed(&r, text + i, 1);
		if (rc != 0)
			break;
	}
	CHECK(rc == 1);
	check_canned_device(&dev);
	wg_device_free(&dev);

	/* an empty device */
	CHECK(feed_all("errno=0\n\n", &dev, &status) == 1);
	CHECK(status == 0 && dev.n_peers == 0 && !dev.has_private_key);
	wg_device_free(&dev);

	/* set replies: errno as wireguard-go (negative) or boringtun sends it */
	CHECK(feed_all("errno=0\n\n", NULL, &status) == 1 && status == 0);
	CHECK(feed_all("errno=-22\n\n", NULL, &status) == 1 && status == -EINVAL);
	CHECK(feed_all("errno=98\n\n", NULL, &status) == 1 && status == -EADDRINUSE);
	CHECK(feed_all("errno=-5\n\n", &dev, &status) == 1 && status == -EIO);
	wg_device_free(&dev);

	/* incomplete: more is needed */
	CHECK(feed_all("errno=0\n", NULL, &status) == 0);
	CHECK(feed_all("listen_port=1\n", &dev, &status) == 0);
	wg_device_free(&dev);

	/* malformed */
	CHECK(feed_all("listen_port=1\n\n", &dev, &status) == -EPROTO);	/* no errno */
	wg_device_free(&dev);
	CHECK(feed_all("errno=0\n\nerrno=0\n\n", NULL, &status) == -EPROTO);
	CHECK(feed_all("errno=0\nlisten_port=1\n\n", &dev, &status) == -EPROTO);
	wg_device_free(&dev);
	CHECK(feed_all("errno=x\n\n", NULL, &status) == -EPROTO);
	CHECK(feed_all("errno=99999\n\n", NULL, &status) == -EPROTO);
	CHECK(feed_all("listen_port=1\nerrno=0\n\n", NULL, &status) == -EPROTO);
	CHECK(feed_all("no equals sign\nerrno=0\n\n", &dev, &status) == -EPROTO);
	wg_device_free(&dev);
	CHECK(feed_all("listen_port=65536\nerrno=0\n\n", &dev, &status) == -EPROTO);
	wg_device_free(&dev);
	CHECK(feed_all("public_key=1234\nerrno=0\n\n", &dev, &status) == -EPROTO);
	wg_device_free(&dev);
	snprintf(bad, sizeof(bad), "public_key=%s\nendpoint=10.0.0.1\nerrno=0\n\n",
			 hex_of(1));
	CHECK(feed_all(bad, &dev, &status) == -EPROTO);
	wg_device_free(&dev);
	snprintf(bad, sizeof(bad), "public_key=%s\nallowed_ip=10.0.0.1/33\nerrno=0\n\n",
			 hex_of(1));
	CHECK(feed_all(bad, &dev, &status) == -EPROTO);
	wg_device_free(&dev);
	snprintf(bad, sizeof(bad), "public_key=%s\nrx_bytes=-1\nerrno=0\n\n",
			 hex_of(1));
	CHECK(feed_all(bad, &dev, &status) == -EPROTO);
	wg_device_free(&dev);
	memset(bad, 'x', sizeof(bad) - 1);	/* a line longer than any real one */
	bad[sizeof(bad) - 1] = '\0';
	CHECK(feed_all(bad, &dev, &status) == -EPROTO);
	wg_device_free(&dev);
}

/*
 * Feed text in pieces of step bytes; wguapi_reply_feed's last result.
 */
static int
feed_steps(const char *text, size_t step, wg_device *dev)
{
	wguapi_reply r;
	size_t		len = strlen(text);
	int			rc = 0;

	memset(dev, 0, sizeof(*dev));
	wguapi_reply_init(&r, dev);
	for (size_t i = 0; i < len && rc == 0; i += step)
		rc = wguapi_reply_feed(&r, text + i, len - i < step ? len - i : step);
	return rc;
}

/*
 * A reply is taken a line at a time from whatever the socket gives: lines
 * split anywhere across reads, several in one read, the longest line that
 * fits and one byte more, and each hex digit of a key checked.
 */
static void
test_parse_pieces(void)
{
	const char *text = canned_get();
	char		line[WGUAPI_LINE_MAX + 64];
	char		key[WG_KEY_LEN * 2 + 1];
	wg_device	dev;
	int			status;

	for (size_t step = 2; step <= 97; step += 5)
	{
		CHECK(feed_steps(text, step, &dev) == 1);
		check_canned_device(&dev);
		wg_device_free(&dev);
	}

	/* an unknown key on a line of WGUAPI_LINE_MAX - 1 bytes is skipped */
	memset(line, 0, sizeof(line));
	memcpy(line, "x=", 2);
	memset(line + 2, 'y', WGUAPI_LINE_MAX - 1 - 2);
	strcat(line, "\nerrno=0\n\n");
	CHECK(feed_all(line, &dev, &status) == 1 && status == 0);
	wg_device_free(&dev);
	CHECK(feed_steps(line, 100, &dev) == 1);
	wg_device_free(&dev);
	/* one byte more does not fit, whole or in pieces */
	memset(line, 0, sizeof(line));
	memcpy(line, "x=", 2);
	memset(line + 2, 'y', WGUAPI_LINE_MAX - 2);
	strcat(line, "\nerrno=0\n\n");
	CHECK(feed_all(line, &dev, &status) == -EPROTO);
	wg_device_free(&dev);
	CHECK(feed_steps(line, 100, &dev) == -EPROTO);
	wg_device_free(&dev);

	/* every digit of either case, and a bad digit in either place */
	snprintf(line, sizeof(line), "public_key=%s\nerrno=0\n\n",
			 "0123456789abcdefABCDEF0123456789abcdefABCDEF0123456789abcdef0123");
	CHECK(feed_all(line, &dev, &status) == 1);
	CHECK(dev.n_peers == 1 && dev.peers[0].public_key[0] == 0x01 &&
		  dev.peers[0].public_key[5] == 0xab && dev.peers[0].public_key[9] == 0xcd &&
		  dev.peers[0].public_key[31] == 0x23);
	wg_device_free(&dev);
	for (int pos = 0; pos < 2; pos++)
	{
		const char *bad_digits = "gG/:@`\xff";

		for (const char *b = bad_digits; *b; b++)
		{
			memset(key, 'a', WG_KEY_LEN * 2);
			key[WG_KEY_LEN * 2] = '\0';
			key[10 + pos] = *b;
			snprintf(line, sizeof(line), "public_key=%s\nerrno=0\n\n", key);
			CHECK(feed_all(line, &dev, &status) == -EPROTO);
			wg_device_free(&dev);
		}
	}
}

/* Socket paths and names. */
static void
test_paths(void)
{
	char		path[108];

	CHECK(wguapi_socket_path(path, sizeof(path), NULL, "wg0") == 0);
	CHECK_STR(path, "/var/run/wireguard/wg0.sock");
	CHECK(wguapi_socket_path(path, sizeof(path), "/tmp/x", "wg0") == 0);
	CHECK_STR(path, "/tmp/x/wg0.sock");
	CHECK(wguapi_socket_path(path, sizeof(path), NULL, "") == -EINVAL);
	CHECK(wguapi_socket_path(path, sizeof(path), NULL, "../etc") == -EINVAL);
	CHECK(wguapi_socket_path(path, sizeof(path), NULL, "sixteen-chars-xx") == -EINVAL);
	CHECK(wguapi_socket_path(path, 10, NULL, "wg0") == -ENAMETOOLONG);
}

/* What the fake daemon does on each connection, in order. */
enum
{
	FAKE_RECORD_SET,			/* save the request, answer errno=0 */
	FAKE_GET,					/* answer canned_get() */
	FAKE_ERRNO,					/* answer errno=-98 */
	FAKE_HANG_UP,				/* read a little, answer errno=-22, close */
	FAKE_SILENT,				/* accept, read, never answer */
	FAKE_STEPS
};

/* Read from fd until the request's blank line; returns what was read. */
static size_t
read_request(int fd, char *buf, size_t size)
{
	size_t		len = 0;
	ssize_t		n;

	while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0)
	{
		len += n;
		buf[len] = '\0';
		if (len >= 2 && strcmp(buf + len - 2, "\n\n") == 0)
			break;
	}
	return len;
}

/* The fake daemon: serve FAKE_STEPS connections, then exit. */
static void
fake_daemon(int listener, const char *record_path)
{
	static char buf[1 << 20];

	for (int step = 0; step < FAKE_STEPS; step++)
	{
		int			fd = accept(listener, NULL, NULL);
		const char *answer = NULL;
		size_t		len;

		if (fd < 0)
			_exit(1);
		if (step == FAKE_HANG_UP)
		{
			if (read(fd, buf, 100) <= 0)
				_exit(1);
			answer = "errno=-22\n\n";
			if (write(fd, answer, strlen(answer)) < 0)
				_exit(1);
			close(fd);
			continue;
		}
		len = read_request(fd, buf, sizeof(buf));
		if (step == FAKE_RECORD_SET)
		{
			FILE	   *f = fopen(record_path, "w");

			fwrite(buf, 1, len, f);
			fclose(f);
			answer = "errno=0\n\n";
		}
		else if (step == FAKE_GET)
			answer = canned_get();
		else if (step == FAKE_ERRNO)
			answer = "errno=-98\n\n";
		else
			sleep(3);			/* FAKE_SILENT: the client times out first */
		if (answer && write(fd, answer, strlen(answer)) < 0)
			_exit(1);
		close(fd);
	}
	_exit(0);
}

/* The socket layer against the fake daemon. */
static void
test_socket(void)
{
	char		dir[] = "/tmp/wgpeer-uapi.XXXXXX";
	char		record[128];
	struct sockaddr_un addr;
	wg_allowedip ips[1] = {ip("10.0.0.9", 32)};
	wg_peer_change peer;
	wg_peer_change *many;
	wg_device_change dc;
	wg_device dev;
	capture		c = {0};
	int			listener;
	unsigned int first_id;
	pid_t		pid;
	int			fd;
	int			rc;
	double		start;
	FILE	   *f;
	char		got[4096];
	size_t		got_len;

	if (mkdtemp(dir) == NULL)
	{
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(record, sizeof(record), "%s/request", dir);
	CHECK(!wguapi_exists(dir, "wgfake"));
	CHECK(wguapi_connect(dir, "wgfake") == -ENOENT);

	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	CHECK(wguapi_socket_path(addr.sun_path, sizeof(addr.sun_path), dir, "wgfake") == 0);
	listener = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(listener, (struct sockaddr *) &addr, sizeof(addr)) == 0);
	CHECK(listen(listener, 8) == 0);
	CHECK(wguapi_exists(dir, "wgfake"));
	CHECK(!wguapi_exists(dir, "request"));	/* a file, not a socket */
	first_id = wguapi_socket_id(dir, "wgfake");
	CHECK(first_id != 0);
	CHECK(wguapi_socket_id(dir, "request") == 0);
	if ((pid = fork()) == 0)
		fake_daemon(listener, record);

	/* a set: the daemon receives exactly what the builder produces */
	memset(&peer, 0, sizeof(peer));
	fill_key(peer.public_key, 0x42);
	peer.keepalive = 0;
	peer.allowedips = ips;
	peer.n_allowedips = 1;
	memset(&dc, 0, sizeof(dc));
	dc.ifname = "wgfake";
	dc.listen_port = -1;
	dc.peers = &peer;
	dc.n_peers = 1;
	fd = wguapi_connect(dir, "wgfake");
	CHECK(fd >= 0);
	CHECK(wguapi_set(fd, &dc, 2000) == 0);
	close(fd);
	CHECK(wguapi_build_set(&dc, capture_sink, &c) == 0);
	f = fopen(record, "r");
	got_len = f ? fread(got, 1, sizeof(got) - 1, f) : 0;
	got[got_len] = '\0';
	if (f)
		fclose(f);
	CHECK_STR(got, c.data);
	free(c.data);

	/* a get */
	fd = wguapi_connect(dir, "wgfake");
	CHECK(wguapi_get(fd, "wgfake", &dev, 2000) == 0);
	close(fd);
	CHECK_STR(dev.ifname, "wgfake");
	check_canned_device(&dev);
	wg_device_free(&dev);

	/* the daemon's errno */
	fd = wguapi_connect(dir, "wgfake");
	CHECK(wguapi_set(fd, &dc, 2000) == -EADDRINUSE);
	close(fd);

	/*
	 * A daemon that refuses an early line and hangs up while a large set
	 * is still being written: its errno, not EPIPE.
	 */
	many = calloc(20000, sizeof(wg_peer_change));
	for (int i = 0; i < 20000; i++)
	{
		many[i] = peer;
		many[i].public_key[0] = i;
		many[i].public_key[1] = i >> 8;
	}
	dc.peers = many;
	dc.n_peers = 20000;
	fd = wguapi_connect(dir, "wgfake");
	CHECK(wguapi_set(fd, &dc, 2000) == -EINVAL);
	close(fd);
	free(many);

	/* a daemon that never answers: the timeout, not a hang */
	fd = wguapi_connect(dir, "wgfake");
	start = now_ms();
	rc = wguapi_get(fd, "wgfake", &dev, 300);
	CHECK(rc == -ETIMEDOUT);
	CHECK(now_ms() - start < 2000);
	CHECK(dev.n_peers == 0 && dev.peers == NULL);
	close(fd);

	/* a daemon that is gone leaves a stale socket: refused */
	waitpid(pid, &rc, 0);
	CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
	close(listener);
	CHECK(wguapi_connect(dir, "wgfake") == -ECONNREFUSED);

	/*
	 * A restarted daemon makes a new socket: another identity, even when
	 * the inode number is reused (file times tick in milliseconds).
	 */
	unlink(addr.sun_path);
	usleep(20000);
	listener = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(listener, (struct sockaddr *) &addr, sizeof(addr)) == 0);
	CHECK(wguapi_socket_id(dir, "wgfake") != 0);
	CHECK(wguapi_socket_id(dir, "wgfake") != first_id);
	close(listener);
	unlink(addr.sun_path);
	unlink(record);
	rmdir(dir);
}

/*
 * A hung daemon: its socket listens, with a backlog of one connection, but
 * nobody accepts until the test plays the daemon's part.
 */
static void
test_hung(void)
{
	char		dir[] = "/tmp/wgpeer-uapi.XXXXXX";
	struct sockaddr_un addr;
	wguapi_reply reply;
	wg_device	dev;
	char		buf[64];
	int			listener;
	int			fd;
	int			served;
	double		start;
	ssize_t		n;

	if (mkdtemp(dir) == NULL)
	{
		CHECK(!"mkdtemp");
		return;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	CHECK(wguapi_socket_path(addr.sun_path, sizeof(addr.sun_path), dir, "wghung") == 0);
	listener = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(listener, (struct sockaddr *) &addr, sizeof(addr)) == 0);
	CHECK(listen(listener, 0) == 0);

	/* the connection waits in the backlog; the get gives up after 300 ms */
	fd = wguapi_connect(dir, "wghung");
	CHECK(fd >= 0);
	start = now_ms();
	CHECK(wguapi_get(fd, "wghung", &dev, 300) == -ETIMEDOUT);
	CHECK(now_ms() - start >= 250 && now_ms() - start < 2000);
	close(fd);

	/* the backlog is full: refused at once, not after a timeout */
	start = now_ms();
	CHECK(wguapi_connect(dir, "wghung") == -EAGAIN);
	CHECK(now_ms() - start < 100);

	/* the daemon resumes: it serves the stale connection (EOF) */
	served = accept(listener, NULL, NULL);
	CHECK(served >= 0);
	close(served);

	/* a probe: "not yet" while nobody serves it, then the answer */
	fd = wguapi_connect(dir, "wghung");
	CHECK(fd >= 0);
	CHECK(wguapi_probe_send(fd) == 0);
	wguapi_reply_init(&reply, NULL);
	start = now_ms();
	CHECK(wguapi_probe_poll(fd, &reply) == 0);
	CHECK(wguapi_probe_poll(fd, &reply) == 0);
	CHECK(now_ms() - start < 100);
	served = accept(listener, NULL, NULL);
	n = read(served, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	CHECK_STR(buf, "set=1\n\n");
	CHECK(write(served, "errno=0\n", 8) == 8);
	CHECK(wguapi_probe_poll(fd, &reply) == 0);	/* half an answer */
	CHECK(write(served, "\n", 1) == 1);
	CHECK(wguapi_probe_poll(fd, &reply) == 1);
	CHECK(reply.status == 0);
	close(served);
	close(fd);

	/* a daemon that closes a probe's connection unanswered (it exited) */
	fd = wguapi_connect(dir, "wghung");
	CHECK(wguapi_probe_send(fd) == 0);
	wguapi_reply_init(&reply, NULL);
	served = accept(listener, NULL, NULL);
	close(served);
	CHECK(wguapi_probe_poll(fd, &reply) == -ECONNRESET);
	close(fd);

	/*
	 * A slow daemon that keeps reading: a set far larger than the socket's
	 * buffer, read 16 KiB every 50 ms, succeeds with a limit of 300 ms on
	 * the time without progress although it takes over a second.
	 */
	{
		wg_allowedip ips[1] = {ip("10.0.0.9", 32)};
		wg_peer_change *many = calloc(2000, sizeof(wg_peer_change));
		wg_device_change dc;
		pid_t		pid;
		int			status;

		for (int i = 0; i < 2000; i++)
		{
			fill_key(many[i].public_key, 0x42);
			many[i].public_key[0] = i;
			many[i].public_key[1] = i >> 8;
			many[i].allowedips = ips;
			many[i].n_allowedips = 1;
		}
		memset(&dc, 0, sizeof(dc));
		dc.ifname = "wghung";
		dc.listen_port = -1;
		dc.peers = many;
		dc.n_peers = 2000;
		if ((pid = fork()) == 0)
		{
			static char slow[1 << 14];
			int			c = accept(listener, NULL, NULL);
			ssize_t		got;
			size_t		len = 0;

			while ((got = read(c, slow, sizeof(slow))) > 0)
			{
				len += got;
				if (got >= 2 && slow[got - 1] == '\n' && slow[got - 2] == '\n')
					break;
				usleep(50000);
			}
			_exit(len > 200000 && write(c, "errno=0\n\n", 9) == 9 ? 0 : 1);
		}
		fd = wguapi_connect(dir, "wghung");
		start = now_ms();
		CHECK(wguapi_set(fd, &dc, 300) == 0);
		CHECK(now_ms() - start > 600);
		close(fd);
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		free(many);
	}

	close(listener);
	unlink(addr.sun_path);
	rmdir(dir);
}

int
main(void)
{
	if (wg_keys_init() != 0)
		return 1;
	test_build_set();
	test_build_chunks();
	test_parse_replies();
	test_parse_pieces();
	test_paths();
	test_socket();
	test_hung();
	return UNIT_DONE("test_uapi");
}
