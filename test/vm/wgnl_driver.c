/*
 * wgnl_driver.c
 *		Command-line driver of src/device/netlink.c for the real-kernel tests.
 *
 *	wgnl_driver gen N			print N peers with fresh keys, one line each:
 *								"peer PUB allowed 10.a.b.c/32,fd00::N/128"
 *	wgnl_driver apply IF FILE	apply a batch file with wgnl_set_device and
 *								print "messages=M seconds=S"
 *	wgnl_driver dump IF			print the device as `wg show IF dump` does
 *	wgnl_driver freeze IF PID	dump IF in a loop until it has a peer, then
 *								stop process PID (SIGSTOP) and print how many
 *								peers IF has: catches a writer mid-batch
 *
 * Batch file lines (keys in base64, as wg(8) prints them):
 *	private-key KEY
 *	listen-port N
 *	peer KEY [preshared-key KEY] [keepalive N] [allowed IP/CIDR,IP/CIDR...]
 *	remove KEY
 *
 * Exits 0 on success, 1 with a message on stderr otherwise.
 */
#include "core/keys.h"
#include "device/netlink.h"
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#define TIMEOUT_MS 10000

/* Decode a base64 key or die naming the line it was on. */
static void
parse_key(uint8_t key[WG_KEY_LEN], const char *b64, int lineno)
{
	char		where[32];

	if (b64 == NULL || wg_key_from_base64(key, b64, NULL) != WG_KEY_OK)
	{
		snprintf(where, sizeof(where), "line %d", lineno);
		die("bad key", where);
	}
}

/* Parse "ADDR/CIDR" into a; false if malformed. */
static bool
parse_allowedip(wg_allowedip *a, char *text)
{
	char	   *slash = strchr(text, '/');
	char	   *end;
	long		cidr;

	if (slash == NULL)
		return false;
	*slash = '\0';
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, text, &a->addr.ip4) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, text, &a->addr.ip6) == 1)
		a->family = AF_INET6;
	else
		return false;
	cidr = strtol(slash + 1, &end, 10);
	if (*end != '\0' || cidr < 0 || cidr > (a->family == AF_INET ? 32 : 128))
		return false;
	a->cidr = (uint8_t) cidr;
	return true;
}

/* Parse a comma-separated allowed IP list into a fresh array. */
static wg_allowedip *
parse_allowedips(char *list, size_t *n, int lineno)
{
	wg_allowedip *ips = NULL;
	size_t		cap = 0;
	char	   *save = NULL;
	char	   *tok;

	*n = 0;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		char		where[32];

		if (*n == cap)
		{
			cap = cap ? cap * 2 : 4;
			ips = realloc(ips, cap * sizeof(*ips));
			if (ips == NULL)
				die("out of memory", NULL);
		}
		if (!parse_allowedip(&ips[*n], tok))
		{
			snprintf(where, sizeof(where), "line %d", lineno);
			die("bad allowed IP", where);
		}
		(*n)++;
	}
	return ips;
}

/* Read a batch file into change (peers and their IPs are malloc'd). */
static void
read_batch(const char *path, wg_device_change *change)
{
	FILE	   *f = fopen(path, "r");
	char	   *line = NULL;
	size_t		linecap = 0;
	int			lineno = 0;
	size_t		cap = 0;
	wg_peer_change *peers = NULL;

	if (f == NULL)
		die("cannot open batch file", strerror(errno));
	while (getline(&line, &linecap, f) > 0)
	{
		char	   *save = NULL;
		char	   *word = strtok_r(line, " \t\n", &save);
		wg_peer_change *p;

		lineno++;
		if (word == NULL || word[0] == '#')
			continue;
		if (strcmp(word, "private-key") == 0)
		{
			parse_key(change->private_key, strtok_r(NULL, " \t\n", &save), lineno);
			change->has_private_key = true;
			continue;
		}
		if (strcmp(word, "listen-port") == 0)
		{
			const char *v = strtok_r(NULL, " \t\n", &save);

			change->listen_port = v ? atoi(v) : -1;
			continue;
		}
		if (strcmp(word, "peer") != 0 && strcmp(word, "remove") != 0)
			die("unknown batch line", word);

		if (change->n_peers == cap)
		{
			cap = cap ? cap * 2 : 64;
			peers = realloc(peers, cap * sizeof(*peers));
			if (peers == NULL)
				die("out of memory", NULL);
		}
		p = &peers[change->n_peers++];
		memset(p, 0, sizeof(*p));
		p->keepalive = -1;
		p->remove = strcmp(word, "remove") == 0;
		parse_key(p->public_key, strtok_r(NULL, " \t\n", &save), lineno);
		while ((word = strtok_r(NULL, " \t\n", &save)) != NULL)
		{
			char	   *value = strtok_r(NULL, " \t\n", &save);

			if (value == NULL)
				die("missing value after", word);
			if (strcmp(word, "preshared-key") == 0)
			{
				parse_key(p->preshared_key, value, lineno);
				p->has_preshared_key = true;
			}
			else if (strcmp(word, "keepalive") == 0)
				p->keepalive = atoi(value);
			else if (strcmp(word, "allowed") == 0)
				p->allowedips = parse_allowedips(value, &p->n_allowedips, lineno);
			else
				die("unknown peer attribute", word);
		}
	}
	free(line);
	fclose(f);
	change->peers = peers;
}

/* Seconds on the monotonic clock. */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* apply IF FILE */
static int
cmd_apply(const char *ifname, const char *path)
{
	wg_device_change change;
	wgnl_ctx   *ctx;
	double		start;
	int			r;

	memset(&change, 0, sizeof(change));
	change.ifname = ifname;
	change.listen_port = -1;
	read_batch(path, &change);

	start = now();
	if ((r = wgnl_open(&ctx, TIMEOUT_MS)) < 0)
		die("wgnl_open", strerror(-r));
	r = wgnl_set_device(ctx, &change);
	wgnl_close(ctx);
	if (r < 0)
		die("wgnl_set_device", strerror(-r));
	printf("messages=%d seconds=%.6f\n", r, now() - start);
	return 0;
}

/* Print a key in base64, or "(none)" when absent or all zeros. */
static void
print_key(const uint8_t key[WG_KEY_LEN], bool present)
{
	static const uint8_t zero[WG_KEY_LEN];
	char		b64[WG_KEY_B64_SIZE];

	if (!present || memcmp(key, zero, WG_KEY_LEN) == 0)
	{
		fputs("(none)", stdout);
		return;
	}
	wg_key_to_base64(b64, key);
	fputs(b64, stdout);
}

/* Print a peer's endpoint as wg(8) does: ADDR:PORT or [ADDR6]:PORT. */
static void
print_endpoint(const wg_peer_info *p)
{
	char		buf[INET6_ADDRSTRLEN];

	if (p->endpoint.family == AF_INET)
		printf("%s:%u", inet_ntop(AF_INET, &p->endpoint.in4.sin_addr, buf, sizeof(buf)),
			   ntohs(p->endpoint.in4.sin_port));
	else if (p->endpoint.family == AF_INET6)
		printf("[%s]:%u", inet_ntop(AF_INET6, &p->endpoint.in6.sin6_addr, buf, sizeof(buf)),
			   ntohs(p->endpoint.in6.sin6_port));
	else
		fputs("(none)", stdout);
}

/* dump IF: the same lines as `wg show IF dump`. */
static int
cmd_dump(const char *ifname)
{
	wgnl_ctx   *ctx;
	wg_device dev;
	size_t		i;
	size_t		j;
	int			r;

	if ((r = wgnl_open(&ctx, TIMEOUT_MS)) < 0)
		die("wgnl_open", strerror(-r));
	r = wgnl_get_device(ctx, ifname, &dev);
	wgnl_close(ctx);
	if (r < 0)
		die("wgnl_get_device", strerror(-r));

	print_key(dev.private_key, dev.has_private_key);
	putchar('\t');
	print_key(dev.public_key, dev.has_public_key);
	printf("\t%u\t", dev.listen_port);
	if (dev.fwmark)
		printf("0x%x\n", dev.fwmark);
	else
		puts("off");
	for (i = 0; i < dev.n_peers; i++)
	{
		const wg_peer_info *p = &dev.peers[i];

		print_key(p->public_key, true);
		putchar('\t');
		print_key(p->preshared_key, true);
		putchar('\t');
		print_endpoint(p);
		putchar('\t');
		for (j = 0; j < p->n_allowedips; j++)
		{
			char		buf[INET6_ADDRSTRLEN];

			printf("%s%s/%u", j ? "," : "",
				   inet_ntop(p->allowedips[j].family, &p->allowedips[j].addr,
							 buf, sizeof(buf)),
				   p->allowedips[j].cidr);
		}
		if (p->n_allowedips == 0)
			fputs("(none)", stdout);
		printf("\t%lld\t%llu\t%llu\t", (long long) p->last_handshake_sec,
			   (unsigned long long) p->rx_bytes, (unsigned long long) p->tx_bytes);
		if (p->keepalive)
			printf("%u\n", p->keepalive);
		else
			puts("off");
	}
	wg_device_free(&dev);
	return 0;
}

/*
 * The number of peers ifname has now, by a netlink dump (which the kernel
 * serves between two messages of a writer's batch, never inside one).
 */
static size_t
peer_count(wgnl_ctx *ctx, const char *ifname)
{
	wg_device dev;
	size_t		n;
	int			r;

	if ((r = wgnl_get_device(ctx, ifname, &dev)) < 0)
		die("wgnl_get_device", strerror(-r));
	n = dev.n_peers;
	wg_device_free(&dev);
	return n;
}

/*
 * freeze IF PID: as soon as IF has a peer, stop PID and print the count.
 * A shell loop around `wg show` is too slow under emulation: a batch of
 * thousands of peers can arrive whole between two of its polls.
 */
static int
cmd_freeze(const char *ifname, long pid)
{
	wgnl_ctx   *ctx;
	time_t		give_up = time(NULL) + 600;
	int			r;

	if ((r = wgnl_open(&ctx, TIMEOUT_MS)) < 0)
		die("wgnl_open", strerror(-r));
	while (peer_count(ctx, ifname) == 0)
		if (time(NULL) > give_up)
			die("no peer arrived on", ifname);
	if (kill((pid_t) pid, SIGSTOP) < 0)
		die("kill", strerror(errno));
	printf("%zu\n", peer_count(ctx, ifname));
	wgnl_close(ctx);
	return 0;
}

/* gen N: N peers with real key pairs and one /32 and one /128 each. */
static int
cmd_gen(long n)
{
	long		i;

	if (wg_keys_init() < 0)
		die("no entropy source", NULL);
	for (i = 0; i < n; i++)
	{
		uint8_t		priv[WG_KEY_LEN];
		uint8_t		pub[WG_KEY_LEN];
		char		b64[WG_KEY_B64_SIZE];
		long		host = i + 1;

		wg_key_generate_private(priv);
		if (wg_key_public(pub, priv) < 0)
			die("key derivation failed", NULL);
		wg_key_to_base64(b64, pub);
		printf("peer %s allowed 10.%ld.%ld.%ld/32,fd00::%lx/128\n", b64,
			   (host >> 16) & 255, (host >> 8) & 255, host & 255, host);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "gen") == 0)
		return cmd_gen(atol(argv[2]));
	if (argc == 4 && strcmp(argv[1], "apply") == 0)
		return cmd_apply(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "dump") == 0)
		return cmd_dump(argv[2]);
	if (argc == 4 && strcmp(argv[1], "freeze") == 0)
		return cmd_freeze(argv[2], atol(argv[3]));
	fprintf(stderr, "usage: wgnl_driver gen N | apply IFNAME FILE | dump IFNAME"
			" | freeze IFNAME PID\n");
	return 2;
}
