/*
 * uapi_latency.c
 *		Benchmark client for bench/latency.sh: commit -> one peer on a
 *		wireguard-go device, against the floor of the same peer sent over
 *		UAPI by this program, interleaved round by round.
 *
 *	uapi_latency ROUNDS FLOOR_IF CONNINFO_A IF_A [CONNINFO_B IF_B]
 *		Each round measures, in an order that rotates from round to round:
 *		floor: one new peer (random key, PSK, one /32, keepalive 25, as the
 *		worker sends it) set on FLOOR_IF with one UAPI set;
 *		a (and b): one transaction creating one peer on IF_A of the server
 *		at CONNINFO_A (on IF_B at CONNINFO_B).
 *		Each figure runs from just before the set (before COMMIT is sent)
 *		until a UAPI get of the device (polled every POLL_US) lists the new
 *		key; so the floor pays one get as the commits do.  Prints one line
 *		per round: "floor_ms a_ms [b_ms]".
 *
 * Built by bench/latency.sh from src/device/uapi.c, src/device/device.c,
 * src/core/keys.c, src/core/awg.c, libpq and libsodium.  Exits 1 with a message on error.
 */
#include "core/keys.h"
#include "device/uapi.h"
#include "helpers.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#define POLL_US 200				/* between gets of the device */
#define GIVE_UP_MS 60000.0		/* no peer takes this long: an error */

/* One server whose commits are timed. */
typedef struct Server
{
	PGconn	   *conn;
	const char *ifname;
} Server;

/* A connection to ifname's UAPI socket, or die. */
static int
uapi_open(const char *ifname)
{
	int			fd = wguapi_connect(NULL, ifname);

	if (fd < 0)
		die("connect to the UAPI socket", strerror(-fd));
	return fd;
}

/* Whether the device ifname lists key now. */
static bool
device_has(const char *ifname, const uint8_t *key)
{
	wg_device	dev;
	int			fd = uapi_open(ifname);
	int			rc = wguapi_get(fd, ifname, &dev, 5000);
	bool		found = false;

	close(fd);
	if (rc < 0)
		die("UAPI get", strerror(-rc));
	for (size_t i = 0; i < dev.n_peers && !found; i++)
		found = memcmp(dev.peers[i].public_key, key, WG_KEY_LEN) == 0;
	wg_device_free(&dev);
	return found;
}

/* Poll ifname until it lists key; ms since t0. */
static double
wait_for(const char *ifname, const uint8_t *key, double t0)
{
	while (!device_has(ifname, key))
	{
		if (now_ms() - t0 > GIVE_UP_MS)
			die("a peer never reached the device", ifname);
		usleep(POLL_US);
	}
	return now_ms() - t0;
}

/* The floor: one peer set on ifname by one UAPI set. */
static double
floor_once(const char *ifname, long round)
{
	wg_peer_change pc;
	wg_device_change dc;
	wg_allowedip ip;
	double		t0;
	int			fd;
	int			rc;

	memset(&pc, 0, sizeof(pc));
	memset(&dc, 0, sizeof(dc));
	memset(&ip, 0, sizeof(ip));
	randombytes_buf(pc.public_key, WG_KEY_LEN);
	randombytes_buf(pc.preshared_key, WG_KEY_LEN);
	pc.has_preshared_key = true;
	pc.keepalive = 25;
	ip.family = AF_INET;
	ip.cidr = 32;
	ip.addr.ip4.s_addr = htonl(0x0afa0000u + (uint32_t) (round + 2));
	pc.allowedips = &ip;
	pc.n_allowedips = 1;
	dc.ifname = ifname;
	dc.listen_port = -1;
	dc.peers = &pc;
	dc.n_peers = 1;

	t0 = now_ms();
	fd = uapi_open(ifname);
	rc = wguapi_set(fd, &dc, 5000);
	close(fd);
	if (rc < 0)
		die("UAPI set", strerror(-rc));
	return wait_for(ifname, pc.public_key, t0);
}

/* Run sql on s, dying unless it returns want. */
static PGresult *
run(Server *s, const char *sql, ExecStatusType want)
{
	PGresult   *res = PQexec(s->conn, sql);

	if (PQresultStatus(res) != want)
		die(sql, PQerrorMessage(s->conn));
	return res;
}

/* One transaction creating one peer on s's interface: commit -> device. */
static double
commit_once(Server *s, long round)
{
	char		sql[256];
	uint8_t		key[WG_KEY_LEN];
	PGresult   *res;
	double		t0;

	PQclear(run(s, "BEGIN", PGRES_COMMAND_OK));
	snprintf(sql, sizeof(sql),
			 "SELECT public_key FROM wgpeer.wg_create_peer('latency%ld', "
			 "interface => '%s')", round, s->ifname);
	res = run(s, sql, PGRES_TUPLES_OK);
	if (wg_key_from_base64(key, PQgetvalue(res, 0, 0), NULL) != WG_KEY_OK)
		die("bad public key", PQgetvalue(res, 0, 0));
	PQclear(res);
	t0 = now_ms();
	PQclear(run(s, "COMMIT", PGRES_COMMAND_OK));
	return wait_for(s->ifname, key, t0);
}

/* Connect to a server, dying on failure. */
static void
connect_server(Server *s, const char *conninfo, const char *ifname)
{
	s->conn = PQconnectdb(conninfo);
	if (PQstatus(s->conn) != CONNECTION_OK)
		die("connect", PQerrorMessage(s->conn));
	s->ifname = ifname;
}

int
main(int argc, char **argv)
{
	Server		servers[2];
	int			n_servers;
	long		rounds;
	const char *floor_if;

	if (argc != 5 && argc != 7)
		die("usage: uapi_latency ROUNDS FLOOR_IF CONNINFO_A IF_A [CONNINFO_B IF_B]",
			NULL);
	if (sodium_init() < 0)
		die("sodium_init", NULL);
	rounds = strtol(argv[1], NULL, 10);
	if (rounds < 1)
		die("ROUNDS must be positive", argv[1]);
	floor_if = argv[2];
	n_servers = argc == 7 ? 2 : 1;
	connect_server(&servers[0], argv[3], argv[4]);
	if (n_servers == 2)
		connect_server(&servers[1], argv[5], argv[6]);

	for (long r = 0; r < rounds; r++)
	{
		double		ms[3];
		int			n = n_servers + 1;

		/* rotate the order, so no side always runs first */
		for (int k = 0; k < n; k++)
		{
			int			which = (int) ((r + k) % n);

			ms[which] = which == 0 ? floor_once(floor_if, r) :
				commit_once(&servers[which - 1], r);
		}
		if (n_servers == 2)
			printf("%.3f %.3f %.3f\n", ms[0], ms[1], ms[2]);
		else
			printf("%.3f %.3f\n", ms[0], ms[1]);
		fflush(stdout);
	}
	for (int k = 0; k < n_servers; k++)
		PQfinish(servers[k].conn);
	return 0;
}
