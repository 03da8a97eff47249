/*
 * apply_latency.c
 *		Benchmark client for bench/apply.sh: how long the apply worker takes
 *		from COMMIT to the kernel, read back over generic netlink, and to
 *		the NOTIFY wgpeer that follows.
 *
 *	apply_latency CONNINFO IFNAME single N
 *		N transactions creating one peer each.  For each, prints
 *		"commit_ms kernel_ms notify_ms": when COMMIT returned, when the
 *		peer was first seen in a dump of the interface, and when its NOTIFY
 *		arrived, all measured from just before COMMIT was sent.
 *	apply_latency CONNINFO IFNAME bulk N [SQL]
 *		One transaction creating N peers (or running SQL, which must queue
 *		N changes that add peers to IFNAME); prints the same three figures
 *		for the whole batch: kernel_ms when the interface first holds all N
 *		new peers, notify_ms when the N-th NOTIFY arrived.
 *
 * The kernel is polled with WG_CMD_GET_DEVICE dumps (src/device/netlink.c) with a
 * short sleep between them (POLL_SINGLE_US, POLL_BULK_US), so the poller
 * leaves CPU to the worker; the figures carry that resolution.  Needs
 * CAP_NET_ADMIN (run as root in the VM).  Exits 1 with a message on error.
 *
 * Built by bench/apply.sh:
 *	cc -O2 -Isrc -I$(pg_config --includedir) bench/apply_latency.c \
 *		src/device/netlink.c src/device/device.c src/core/keys.c -lpq -lmnl -lsodium
 */
#include "core/keys.h"
#include "device/netlink.h"
#include "helpers.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define POLL_SINGLE_US 500		/* between dumps of a small interface */
#define POLL_BULK_US 10000		/* between dumps while 5,000 peers arrive */
#define GIVE_UP_S 300.0			/* no figure takes this long: an error */

static PGconn *conn;
static wgnl_ctx *nl;

/* Run a statement, die unless it returns the expected status. */
static PGresult *
run(const char *sql, ExecStatusType want)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != want)
		die(sql, PQerrorMessage(conn));
	return res;
}

static void
run_command(const char *sql)
{
	PQclear(run(sql, PGRES_COMMAND_OK));
}

/* How many peers the interface has; with key, whether that one is there. */
static size_t
dump_interface(const char *ifname, const uint8_t *key, bool *found)
{
	wg_device dev;
	int			rc = wgnl_get_device(nl, ifname, &dev);
	size_t		n;

	if (rc < 0)
		die("dump", strerror(-rc));
	if (key)
	{
		*found = false;
		for (size_t i = 0; i < dev.n_peers && !*found; i++)
			*found = memcmp(dev.peers[i].public_key, key, WG_KEY_LEN) == 0;
	}
	n = dev.n_peers;
	wg_device_free(&dev);
	return n;
}

/*
 * Wait until `want` notifications on channel wgpeer have arrived (counting
 * from *seen); returns when the last one came.
 */
static double
wait_notifies(long want, long *seen, double t0)
{
	while (*seen < want)
	{
		PGnotify   *n;
		struct pollfd pfd = {.fd = PQsocket(conn),.events = POLLIN};

		if (!PQconsumeInput(conn))
			die("reading notifications", PQerrorMessage(conn));
		while ((n = PQnotifies(conn)) != NULL)
		{
			if (strcmp(n->relname, "wgpeer") == 0)
				(*seen)++;
			PQfreemem(n);
		}
		if (*seen >= want)
			break;
		if (now_ms() - t0 > GIVE_UP_S * 1e3)
			die("no NOTIFY", NULL);
		(void) poll(&pfd, 1, 1000);
	}
	return now_ms();
}

int
main(int argc, char **argv)
{
	const char *ifname;
	long		n;
	long		seen = 0;
	int			rc;
	bool		bulk;

	if (argc < 5 || argc > 6 ||
		(strcmp(argv[3], "single") != 0 && strcmp(argv[3], "bulk") != 0))
		die("usage: apply_latency CONNINFO IFNAME single|bulk N [SQL]", NULL);
	ifname = argv[2];
	bulk = strcmp(argv[3], "bulk") == 0;
	n = strtol(argv[4], NULL, 10);
	if (n < 1)
		die("N must be positive", argv[4]);
	if ((rc = wgnl_open(&nl, 10000)) < 0)
		die("netlink", strerror(-rc));
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
		die("connect", PQerrorMessage(conn));
	run_command("LISTEN wgpeer");

	if (bulk)
	{
		char		sql[512];
		size_t		base = dump_interface(ifname, NULL, NULL);
		double		t0,
					t_commit,
					t_kernel;

		run_command("BEGIN");
		if (argc == 6)
			PQclear(run(argv[5], PGRES_COMMAND_OK));
		else
		{
			snprintf(sql, sizeof(sql),
					 "SELECT count(*) FROM (SELECT wgpeer.wg_create_peer("
					 "'bulk' || g, interface => '%s') FROM generate_series(1, %ld) g) s",
					 ifname, n);
			PQclear(run(sql, PGRES_TUPLES_OK));
		}
		t0 = now_ms();
		run_command("COMMIT");
		t_commit = now_ms();
		while (dump_interface(ifname, NULL, NULL) < base + (size_t) n)
		{
			if (now_ms() - t0 > GIVE_UP_S * 1e3)
				die("the peers never all reached the interface", NULL);
			usleep(POLL_BULK_US);
		}
		t_kernel = now_ms();
		printf("%.3f %.3f %.3f\n", t_commit - t0, t_kernel - t0,
			   wait_notifies(n, &seen, t0) - t0);
	}
	else
	{
		for (long i = 0; i < n; i++)
		{
			char		sql[512];
			uint8_t		key[WG_KEY_LEN];
			bool		found = false;
			PGresult   *res;
			double		t0,
						t_commit,
						t_kernel;

			run_command("BEGIN");
			snprintf(sql, sizeof(sql),
					 "SELECT public_key FROM wgpeer.wg_create_peer("
					 "'latency%ld', interface => '%s')", i, ifname);
			res = run(sql, PGRES_TUPLES_OK);
			if (wg_key_from_base64(key, PQgetvalue(res, 0, 0), NULL) != WG_KEY_OK)
				die("bad public key", PQgetvalue(res, 0, 0));
			PQclear(res);
			t0 = now_ms();
			run_command("COMMIT");
			t_commit = now_ms();
			for (;;)
			{
				dump_interface(ifname, key, &found);
				if (found)
					break;
				if (now_ms() - t0 > GIVE_UP_S * 1e3)
					die("a peer never reached the interface", NULL);
				usleep(POLL_SINGLE_US);
			}
			t_kernel = now_ms();
			printf("%.3f %.3f %.3f\n", t_commit - t0, t_kernel - t0,
				   wait_notifies(i + 1, &seen, t0) - t0);
			fflush(stdout);
		}
	}
	PQfinish(conn);
	wgnl_close(nl);
	return 0;
}
