/*
 * fuzz_config.c
 *		libFuzzer target for config rendering: every field of a client
 *		config (wg_config_render) and of a server config with its peers
 *		(wg_server_config_render) comes from the input, any bytes at all.
 *
 * Checked on every input, besides memory safety:
 *	- a config is refused exactly when a required field is missing or
 *	  empty, a field holds a control character, or a number is out of
 *	  range;
 *	- a rendered config has exactly the lines its fields call for, each
 *	  "Key = value" with the field verbatim, in order: no field can add a
 *	  line or a section (no injection);
 *	- with AmneziaWG parameters (a fixed valid set and a signature packet
 *	  I1 from the input), the config is refused also when I1 is not a
 *	  clean line the tag grammar accepts, and otherwise carries the AWG
 *	  lines in order with I1 verbatim;
 *	- rendered into a buffer of any size, it is cut like snprintf cuts
 *	  (the same length returned, the prefix that fits, NUL-terminated).
 */
#define _GNU_SOURCE				/* vasprintf */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/awg.h"
#include "core/config.h"
#include "fuzz.h"

#define MAX_FIELDS 32
#define MAX_LINES 64
#define MAX_PEERS 3

/* The input cut at its NUL bytes into strings, handed out in turn. */
typedef struct fields
{
	char	   *copy;
	char	   *field[MAX_FIELDS];
	int			n;
	int			next;
} fields;

/* The lines a rendered config must have, in order. */
typedef struct lines
{
	char	   *line[MAX_LINES];
	int			n;
} lines;

/* The next field, or NULL when absent is chosen or the input ran out. */
static const char *
take(fields *f, bool absent)
{
	const char *s = f->next < f->n ? f->field[f->next++] : NULL;

	return absent ? NULL : s;
}

/*
 * May a field be rendered: absent when optional, else a non-empty line of
 * printable ASCII (every field of a config is ASCII by construction; the
 * renderer refuses control characters and anything past 0x7e, U+2028 and
 * U+0085 among them)?
 */
static bool
clean(const char *s, bool required)
{
	if (s == NULL)
		return !required;
	if (s[0] == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

static void expect(lines *l, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* Add an expected line. */
static void
expect(lines *l, const char *fmt,...)
{
	va_list		ap;

	REQUIRE(l->n < MAX_LINES);
	va_start(ap, fmt);
	REQUIRE(vasprintf(&l->line[l->n++], fmt, ap) >= 0);
	va_end(ap);
}

/*
 * Check a rendered config: len bytes, its lines exactly the expected
 * ones, each ended by a newline; then free them.
 */
static void
check_lines(const char *out, int len, lines *l)
{
	const char *p = out;

	REQUIRE(len >= 0 && strlen(out) == (size_t) len);
	for (int i = 0; i < l->n; i++)
	{
		size_t		n = strlen(l->line[i]);

		REQUIRE(strncmp(p, l->line[i], n) == 0 && p[n] == '\n');
		p += n + 1;
		free(l->line[i]);
	}
	REQUIRE(*p == '\0');
	l->n = 0;
}

/*
 * Render again into a buffer of size bytes (NULL when 0) and check the
 * cut: the same length returned, the prefix that fits, NUL-terminated.
 */
static void
check_cut(const char *whole, int len,
		  int (*render) (const void *cfg, char *buf, size_t size),
		  const void *cfg, size_t size)
{
	char	   *buf = malloc(size + 1);

	REQUIRE(buf != NULL);
	REQUIRE(render(cfg, size ? buf : NULL, size) == len);
	if (size > 0)
	{
		size_t		kept = (size_t) len < size ? (size_t) len : size - 1;

		REQUIRE(memcmp(buf, whole, kept) == 0 && buf[kept] == '\0');
	}
	free(buf);
}

/* wg_config_render through a void pointer, for check_cut. */
static int
render_client(const void *cfg, char *buf, size_t size)
{
	return wg_config_render(cfg, buf, size);
}

/* wg_server_config_render through a void pointer, for check_cut. */
static int
render_server(const void *cfg, char *buf, size_t size)
{
	return wg_server_config_render(cfg, buf, size);
}

/* A client config from the input; absent chooses the missing fields. */
static void
fuzz_client(fields *f, unsigned absent, int mtu, int keepalive, size_t cut)
{
	wg_client_config c;
	wg_awg		awg = {.jc = 4,.jmin = 40,.jmax = 70,.s = {20, 30},
	.h = {{1000, 1000}, {1001, 1001}, {1002, 1010}, {1011, 1011}}};
	lines		want = {{0}, 0};
	bool		valid;
	char	   *out;
	int			len;

	c.private_key = take(f, absent & 1);
	c.public_key = take(f, absent & 2);
	c.address = take(f, absent & 4);
	c.address6 = take(f, absent & 8);
	c.dns = take(f, absent & 16);
	c.server_public_key = take(f, absent & 32);
	c.preshared_key = take(f, absent & 64);
	c.endpoint = take(f, absent & 128);
	c.allowed_ips = take(f, absent & 256);
	c.mtu = mtu;
	c.persistent_keepalive = keepalive;
	c.awg = NULL;
	if (absent & 512)
	{
		awg.i[0] = take(f, absent & 1024);
		c.awg = &awg;
	}

	valid = clean(c.private_key, false) && clean(c.address, true) &&
		clean(c.address6, false) && clean(c.dns, false) &&
		clean(c.server_public_key, true) && clean(c.preshared_key, false) &&
		clean(c.endpoint, true) && clean(c.allowed_ips, true) &&
		(c.private_key != NULL || clean(c.public_key, true)) &&
		mtu >= 0 && keepalive >= 0 &&
		(c.awg == NULL || (clean(awg.i[0], false) &&
						   (awg.i[0] == NULL ||
							wg_awg_check_tags(awg.i[0]) == NULL)));
	len = wg_config_render(&c, NULL, 0);
	if (!valid)
	{
		REQUIRE(len == -EINVAL);
		return;
	}
	REQUIRE(len > 0);
	out = malloc(len + 1);
	REQUIRE(out != NULL);
	REQUIRE(wg_config_render(&c, out, len + 1) == len);

	expect(&want, "[Interface]");
	if (c.private_key)
		expect(&want, "PrivateKey = %s", c.private_key);
	else
		expect(&want, "# PrivateKey = <the private key of %s>", c.public_key);
	if (c.address6)
		expect(&want, "Address = %s, %s", c.address, c.address6);
	else
		expect(&want, "Address = %s", c.address);
	if (c.dns)
		expect(&want, "DNS = %s", c.dns);
	if (mtu > 0)
		expect(&want, "MTU = %d", mtu);
	if (c.awg)
	{
		expect(&want, "Jc = 4");
		expect(&want, "Jmin = 40");
		expect(&want, "Jmax = 70");
		expect(&want, "S1 = 20");
		expect(&want, "S2 = 30");
		expect(&want, "H1 = 1000");
		expect(&want, "H2 = 1001");
		expect(&want, "H3 = 1002-1010");
		expect(&want, "H4 = 1011");
		if (awg.i[0])
			expect(&want, "I1 = %s", awg.i[0]);
	}
	expect(&want, "%s", "");
	expect(&want, "[Peer]");
	expect(&want, "PublicKey = %s", c.server_public_key);
	if (c.preshared_key)
		expect(&want, "PresharedKey = %s", c.preshared_key);
	expect(&want, "Endpoint = %s", c.endpoint);
	expect(&want, "AllowedIPs = %s", c.allowed_ips);
	if (keepalive > 0)
		expect(&want, "PersistentKeepalive = %d", keepalive);
	check_lines(out, len, &want);
	check_cut(out, len, render_client, &c, cut);
	free(out);
}

/*
 * A server config with up to three peers from the input; absent chooses
 * the missing fields, two bits for the interface, four for each peer.
 */
static void
fuzz_server(fields *f, unsigned absent, int port, int n_peers,
			const int *keepalive, size_t cut)
{
	wg_server_config s;
	wg_server_peer peers[MAX_PEERS];
	lines		want = {{0}, 0};
	bool		valid;
	char	   *out;
	int			len;

	s.interface = take(f, absent & 1);
	s.private_key = take(f, absent & 2);
	s.listen_port = port;
	s.peers = n_peers > 0 ? peers : NULL;
	s.n_peers = n_peers;
	s.awg = NULL;				/* the unit test renders AmneziaWG lines */
	valid = clean(s.interface, true) && clean(s.private_key, false) &&
		port >= 1 && port <= 65535 && n_peers >= 0;
	for (int i = 0; i < n_peers; i++)
	{
		wg_server_peer *p = &peers[i];
		unsigned	bits = absent >> (2 + 4 * i);

		p->public_key = take(f, bits & 1);
		p->preshared_key = take(f, bits & 2);
		p->address = take(f, bits & 4);
		p->address6 = take(f, bits & 8);
		p->routes = NULL;		/* the unit test renders routes */
		p->persistent_keepalive = keepalive[i];
		valid = valid && clean(p->public_key, true) &&
			clean(p->preshared_key, false) && clean(p->address, true) &&
			clean(p->address6, false) &&
			keepalive[i] >= 0 && keepalive[i] <= 65535;
	}
	len = wg_server_config_render(&s, NULL, 0);
	if (!valid)
	{
		REQUIRE(len == -EINVAL);
		return;
	}
	REQUIRE(len > 0);
	out = malloc(len + 1);
	REQUIRE(out != NULL);
	REQUIRE(wg_server_config_render(&s, out, len + 1) == len);

	expect(&want, "# wgpeer: interface %s, %d peers; restore with "
		   "\"wg syncconf %s <this file>\"", s.interface, n_peers, s.interface);
	expect(&want, "[Interface]");
	if (s.private_key)
		expect(&want, "PrivateKey = %s", s.private_key);
	else
		expect(&want, "# PrivateKey is kept outside the database: prepend "
			   "it in an [Interface] section, or syncconf clears the "
			   "interface's key");
	expect(&want, "ListenPort = %d", port);
	for (int i = 0; i < n_peers; i++)
	{
		const wg_server_peer *p = &peers[i];

		expect(&want, "%s", "");
		expect(&want, "[Peer]");
		expect(&want, "PublicKey = %s", p->public_key);
		if (p->preshared_key)
			expect(&want, "PresharedKey = %s", p->preshared_key);
		if (p->address6)
			expect(&want, "AllowedIPs = %s, %s", p->address, p->address6);
		else
			expect(&want, "AllowedIPs = %s", p->address);
		if (p->persistent_keepalive > 0)
			expect(&want, "PersistentKeepalive = %d", p->persistent_keepalive);
	}
	check_lines(out, len, &want);
	check_cut(out, len, render_server, &s, cut);
	free(out);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * One input: 8 bytes of choices, then the fields, separated by NUL bytes.
 *	0-1: which fields are absent (a bit each, in the order taken)
 *	2:	 the buffer size the config is rendered into again, to be cut
 *	3:	 client: MTU (x 20, negative too); server: number of peers (-1..3)
 *	4-5: client: keepalive (negative too); server: listen port (0..65535)
 *	6:	 bit 0: a client config, else a server's; bit 1: port 65536
 *	7:	 each server peer's keepalive (0, 25, 65535 or -1; 65536 for the
 *		 first when byte 6 has bit 2)
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int keepalives[] = {0, 25, 65535, -1};
	uint8_t		head[8] = {0};
	size_t		rest = size > sizeof(head) ? size - sizeof(head) : 0;
	fields		f;
	unsigned	absent;
	int			keepalive[MAX_PEERS];

	memcpy(head, data, size < sizeof(head) ? size : sizeof(head));
	f.copy = malloc(rest + 1);
	REQUIRE(f.copy != NULL);
	memcpy(f.copy, data + (size - rest), rest);
	f.copy[rest] = '\0';
	f.n = 0;
	f.next = 0;
	for (size_t i = 0; i <= rest && f.n < MAX_FIELDS; i++)
	{
		f.field[f.n++] = f.copy + i;
		i += strlen(f.copy + i);
	}

	absent = head[0] | head[1] << 8;
	if (head[6] & 1)
		fuzz_client(&f, absent, (int8_t) head[3] * 20, (int8_t) head[4],
					head[2]);
	else
	{
		for (int i = 0; i < MAX_PEERS; i++)
			keepalive[i] = keepalives[(head[7] >> (2 * i)) & 3];
		if (head[6] & 4)
			keepalive[0] = 65536;
		fuzz_server(&f, absent,
					(head[4] << 8 | head[5]) + (head[6] & 2 ? 65536 : 0),
					head[3] % (MAX_PEERS + 2) - 1, keepalive, head[2]);
	}
	free(f.copy);
	return 0;
}
