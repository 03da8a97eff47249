/*
 * device.c
 *		The device dispatcher: each interface is reached over the backend its
 *		row names, the kernel over generic netlink or a userspace daemon
 *		(wireguard-go, boringtun) over its UAPI socket, as wireguard-tools'
 *		ipc.c chooses; and what the worker says when a device fails.
 *
 * Everything above this file speaks the neutral model of device/device.h
 * and does not know which backend it talks to.
 *
 * A userspace daemon can hang without dying (stopped with SIGSTOP, stuck):
 * its socket still accepts connections, and nothing comes back.  One hung
 * daemon must not stall the other interfaces, so a call gives up once
 * nothing has moved for UAPI_IDLE_MS, and the daemon is then marked
 * unresponsive: every later call for its interface (apply, sample,
 * reconcile, wg_show) fails at once without touching its socket, and its
 * changes wait in the queue.  A probe (an empty set, sent without waiting)
 * stays outstanding on its socket, and is looked at without waiting before
 * each call and every UAPI_PROBE_MS by wgpeer_daemons_due(); when the
 * daemon answers it, or its socket is gone or replaced (it exited or was
 * restarted), the interface is used again.  Each change of state is
 * logged once (a WARNING when it stops answering, a LOG when it answers
 * again) and recorded in wgpeer.worker_state.unresponsive_since, which
 * interface_status shows; once it answers, its queued changes are retried
 * at once and every interface is reconciled, which also repairs what a
 * request it read late (from a connection given up on) did.
 *
 * The kernel cannot hang this way: a netlink request is served in our own
 * system call, by the kernel, not by a process that can be stopped, so
 * netlink needs no circuit breaker (NETLINK_TIMEOUT_MS stays a safety
 * net).
 */
#include "worker/worker.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "device/netlink.h"
#include "device/uapi.h"

/* Netlink calls give up after this long: the kernel never hangs us. */
#define NETLINK_TIMEOUT_MS 5000

/*
 * A userspace daemon that moves nothing (reads no byte of a request,
 * writes no byte of a reply) for this long is given up on.  It bounds
 * each wait, not a whole call: a large set or dump that keeps moving is
 * never cut short.
 */
#define UAPI_IDLE_MS 2000

/*
 * But a set that changes the device's private key waits this long for its
 * answer: the daemon then recomputes a secret per peer before answering
 * (wireguard-go: some 3 s for 65,536 peers here), and a daemon that hung
 * just before it would have failed the set's peers already.
 */
#define UAPI_KEY_IDLE_MS 15000

/* While a daemon does not answer, its probe is looked at this often. */
#define UAPI_PROBE_MS 250

static wgnl_ctx *nl = NULL;

/*
 * A userspace daemon that stopped answering, from when a call to it gave
 * up until its new state is recorded in wgpeer.worker_state.
 */
typedef struct Unresponsive
{
	char		ifname[WG_IFNAME_SIZE];
	unsigned int socket_id;		/* its socket (wguapi_socket_id) then */
	TimestampTz since;			/* when a call to it gave up */
	bool		answering;		/* it answers again (or is gone) */
	bool		recorded;		/* worker_state says what the above says */
	int			probe_fd;		/* the outstanding probe, -1: none */
	wguapi_reply probe;			/* its answer so far */
} Unresponsive;

static Unresponsive *daemons = NULL;
static int	n_daemons = 0;
static int	cap_daemons = 0;
static uint64 daemons_noted = 0;	/* times one was found unresponsive */

/*
 * The worker's netlink socket, opened on first use.  NULL with *rc set
 * when it cannot be opened (no WireGuard in the kernel, no permission).
 */
static wgnl_ctx *
netlink(int *rc)
{
	*rc = 0;
	if (nl == NULL && (*rc = wgnl_open(&nl, NETLINK_TIMEOUT_MS)) < 0)
		nl = NULL;
	return nl;
}

/* Close the socket after an error; the next call opens a fresh one. */
static void
netlink_reset(void)
{
	if (nl)
		wgnl_close(nl);
	nl = NULL;
}

/*
 * The backend stored in an interface row ('auto', 'netlink' or 'uapi';
 * the table's CHECK constraint allows nothing else).
 */
WgBackend
wgpeer_backend(const char *stored)
{
	if (strcmp(stored, "netlink") == 0)
		return WGPEER_BACKEND_NETLINK;
	if (strcmp(stored, "uapi") == 0)
		return WGPEER_BACKEND_UAPI;
	return WGPEER_BACKEND_AUTO;
}

/*
 * Whether ifname is reached over its UAPI socket: when configured so, or,
 * for 'auto', when the socket exists in /var/run/wireguard, as wg(8)
 * decides.
 */
bool
wgpeer_uses_uapi(const char *ifname, WgBackend backend)
{
	return backend == WGPEER_BACKEND_UAPI ||
		(backend == WGPEER_BACKEND_AUTO && wguapi_exists(NULL, ifname));
}

/* ifname's entry among the unresponsive daemons, or NULL. */
static Unresponsive *
unresponsive_entry(const char *ifname)
{
	for (int i = 0; i < n_daemons; i++)
		if (strcmp(daemons[i].ifname, ifname) == 0)
			return &daemons[i];
	return NULL;
}

/* Close the probe of d, if one is outstanding. */
static void
close_probe(Unresponsive *d)
{
	if (d->probe_fd >= 0)
		close(d->probe_fd);
	d->probe_fd = -1;
}

/*
 * d's daemon can be used again (why says how we know): log it once, and
 * leave the recording to wgpeer_daemons_due().
 */
static void
daemon_back(Unresponsive *d, const char *why)
{
	close_probe(d);
	d->answering = true;
	d->recorded = false;
	ereport(LOG,
			(errmsg("the userspace WireGuard daemon of \"%s\" answers again "
					"after %ld s (%s): its queued changes follow and the "
					"interfaces are reconciled",
					d->ifname,
					(long) ((GetCurrentTimestamp() - d->since) / USECS_PER_SEC),
					why)));
}

/*
 * Look, without waiting, whether d's daemon answers again: its probe
 * answered (one is sent when none is outstanding), or its socket is gone
 * or replaced, so calls fail at once or reach a new daemon.
 */
static void
check_daemon(Unresponsive *d)
{
	int			rc;

	if (wguapi_socket_id(NULL, d->ifname) != d->socket_id)
	{
		daemon_back(d, "its socket is gone or new");
		return;
	}
	if (d->probe_fd < 0)
	{
		int			fd = wguapi_connect(NULL, d->ifname);

		if (fd == -EAGAIN)
			return;				/* its backlog is full: still hung */
		if (fd < 0)
		{
			daemon_back(d, "its socket refuses connections");
			return;
		}
		if (wguapi_probe_send(fd) < 0)
		{
			close(fd);
			return;
		}
		d->probe_fd = fd;
		wguapi_reply_init(&d->probe, NULL);
	}
	if ((rc = wguapi_probe_poll(d->probe_fd, &d->probe)) > 0)
		daemon_back(d, "it answered a probe");
	else if (rc < 0)
		daemon_back(d, "it closed the connection of a probe");
}

/*
 * Is ifname's daemon known not to answer?  Looks at its probe first, so a
 * daemon that answers again is used at once.
 */
static bool
skip_unresponsive(const char *ifname)
{
	Unresponsive *d = unresponsive_entry(ifname);

	if (d == NULL || d->answering)
		return false;
	check_daemon(d);
	return !d->answering;
}

/*
 * A call to ifname's daemon gave up: mark it unresponsive (one WARNING)
 * and send it a probe.
 */
static void
note_unresponsive(const char *ifname)
{
	Unresponsive *d = unresponsive_entry(ifname);

	if (d == NULL)
	{
		if (n_daemons == cap_daemons)
		{
			cap_daemons = cap_daemons ? cap_daemons * 2 : 4;
			daemons = daemons ?
				repalloc(daemons, sizeof(Unresponsive) * cap_daemons) :
				MemoryContextAlloc(TopMemoryContext,
								   sizeof(Unresponsive) * cap_daemons);
		}
		d = &daemons[n_daemons++];
		memset(d, 0, sizeof(*d));
		strlcpy(d->ifname, ifname, WG_IFNAME_SIZE);
		d->probe_fd = -1;
	}
	close_probe(d);
	d->socket_id = wguapi_socket_id(NULL, ifname);
	d->since = GetCurrentTimestamp();
	d->answering = false;
	d->recorded = false;
	daemons_noted++;
	ereport(WARNING,
			(errmsg("the userspace WireGuard daemon of \"%s\" stopped answering: "
					"nothing moved on %s/%s.sock for %d ms",
					ifname, WGUAPI_SOCKET_DIR, ifname, UAPI_IDLE_MS),
			 errdetail("Until it answers again its interface is left alone "
					   "and its changes wait in the queue; the other "
					   "interfaces go on."),
			 errhint("Look at the daemon's process (stopped, or stuck?); "
					 "wgpeer notices within a second when it answers "
					 "again, and catches up.")));
	check_daemon(d);
}

/*
 * One call to ifname's userspace daemon: a set of change, or (change
 * NULL) a get into dev.  A daemon known not to answer is not called: the
 * call fails at once with -ETIMEDOUT and *at_open set.
 */
static int
uapi_call(const char *ifname, const wg_device_change *change, wg_device *dev,
		  bool *at_open)
{
	int			fd;
	int			rc;

	*at_open = true;
	if (skip_unresponsive(ifname))
		return -ETIMEDOUT;
	if ((fd = wguapi_connect(NULL, ifname)) == -EAGAIN)
	{
		/* its backlog is full: it has accepted nothing for a while */
		note_unresponsive(ifname);
		return -ETIMEDOUT;
	}
	if (fd < 0)
		return fd;
	*at_open = false;
	if (change)
		rc = wguapi_set(fd, change, change->has_private_key ?
						UAPI_KEY_IDLE_MS : UAPI_IDLE_MS);
	else
		rc = wguapi_get(fd, ifname, dev, UAPI_IDLE_MS);
	close(fd);
	if (rc == -ETIMEDOUT)
		note_unresponsive(ifname);
	return rc;
}

/*
 * Is ifname's userspace daemon known not to answer (no probe looked at)?
 * Its failures need no WARNING of their own: it had one when it stopped.
 */
bool
wgpeer_device_unresponsive(const char *ifname)
{
	Unresponsive *d = unresponsive_entry(ifname);

	return d != NULL && !d->answering;
}

/*
 * Record d's state in wgpeer.worker_state (unless its interface was
 * unregistered).  When it answers again, its backoff is cleared and the
 * commit counts as queued changes and changed interfaces, so the queue is
 * applied and every interface reconciled in this pass of the loop.
 */
static void
record_daemon(const Unresponsive *d)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum		values[2] = {CStringGetTextDatum(d->ifname),
	TimestampTzGetDatum(d->since)};
	char		nulls[2] = {' ', d->answering ? 'n' : ' '};

	wgpeer_exec(&plan,
				"INSERT INTO wgpeer.worker_state AS s (interface, unresponsive_since)"
				" SELECT $1, $2 WHERE EXISTS"
				"   (SELECT FROM wgpeer.interface WHERE name = $1)"
				" ON CONFLICT (interface, node) DO UPDATE"
				" SET unresponsive_since = $2,"
				"     retry_at = CASE WHEN $2 IS NULL THEN NULL ELSE s.retry_at END",
				2, types, values, nulls);
	if (d->answering)
	{
		wgpeer_note_change(CHANGE_QUEUE);
		wgpeer_note_change(CHANGE_INTERFACES);
	}
}

/* How many times a daemon was found unresponsive: wakes the task below. */
uint64
wgpeer_daemons_noted(void)
{
	return daemons_noted;
}

/*
 * The task that watches unresponsive userspace daemons: look at their
 * probes, record each change of state in wgpeer.worker_state, and forget
 * the daemons that answer again once that is recorded.  On its first run
 * it clears what a previous worker recorded (this one starts by trusting
 * every daemon).  Returns UAPI_PROBE_MS while a daemon does not answer.
 * The task table wakes it when a daemon is found unresponsive
 * (wgpeer_daemons_noted).
 */
long
wgpeer_daemons_due(bool woken)
{
	static bool started = false;
	bool		unrecorded = false;
	bool		hung = false;
	int			kept = 0;

	for (int i = 0; i < n_daemons; i++)
	{
		if (!daemons[i].answering)
			check_daemon(&daemons[i]);
		unrecorded |= !daemons[i].recorded;
	}
	if (unrecorded || !started)
	{
		wgpeer_begin_work("wgpeer: recording unresponsive daemons");
		if (wgpeer_installed())
		{
			if (!started)
				SPI_execute("UPDATE wgpeer.worker_state SET unresponsive_since = NULL"
							" WHERE unresponsive_since IS NOT NULL"
							"   AND interface IN (SELECT name FROM wgpeer.interface"
							"     WHERE node = current_setting('wgpeer.node'))",
							false, 0);
			started = true;
			for (int i = 0; i < n_daemons; i++)
				if (!daemons[i].recorded)
					record_daemon(&daemons[i]);
		}
		wgpeer_end_work();
		for (int i = 0; i < n_daemons && started; i++)
			daemons[i].recorded = true;
	}
	for (int i = 0; i < n_daemons; i++)
	{
		if (daemons[i].answering && daemons[i].recorded)
			continue;
		hung |= !daemons[i].answering;
		daemons[kept++] = daemons[i];
	}
	n_daemons = kept;
	return hung ? UAPI_PROBE_MS : TASK_IDLE;
}

/*
 * Apply a batch of changes to one interface: the device backend seam.
 * A userspace daemon (wireguard-go, boringtun) is spoken to over its UAPI
 * socket, the kernel over netlink.  Returns 0 or -errno; *at_open says
 * the backend itself could not be reached (rather than the interface
 * refusing the change).
 */
int
wgpeer_device_set(const wg_device_change *change, WgBackend backend,
				  bool *at_open)
{
	int			rc;
	wgnl_ctx   *ctx;

	if (wgpeer_uses_uapi(change->ifname, backend))
		return uapi_call(change->ifname, change, NULL, at_open);
	ctx = netlink(&rc);
	*at_open = ctx == NULL;
	if (ctx != NULL && (rc = wgnl_set_device(ctx, change)) < 0)
		netlink_reset();
	return rc < 0 ? rc : 0;
}

/*
 * Read one interface's live state into dev (free it with
 * wg_device_free): the other half of the device backend seam.
 */
int
wgpeer_device_get(const char *ifname, WgBackend backend, wg_device *dev,
				  bool *at_open)
{
	int			rc;
	wgnl_ctx   *ctx;

	memset(dev, 0, sizeof(*dev));
	if (wgpeer_uses_uapi(ifname, backend))
		return uapi_call(ifname, NULL, dev, at_open);
	ctx = netlink(&rc);
	*at_open = ctx == NULL;
	if (ctx != NULL && (rc = wgnl_get_device(ctx, ifname, dev)) < 0)
		netlink_reset();
	return rc < 0 ? rc : 0;
}

/*
 * A number that changes when ifname's device is recreated, 0 while it does
 * not exist: the identity of its UAPI socket (a restarted daemon makes a
 * new one; the daemon may run in another network namespace), else the
 * kernel interface's ifindex; only the one its backend uses when that is
 * named.  Needs no privilege.
 */
unsigned int
wgpeer_device_id(const char *ifname, WgBackend backend)
{
	unsigned int id = 0;

	if (backend != WGPEER_BACKEND_NETLINK)
		id = wguapi_socket_id(NULL, ifname);
	if (id == 0 && backend != WGPEER_BACKEND_UAPI)
		id = if_nametoindex(ifname);
	return id;
}

/*
 * The allowed IPs of a stored peer, from a cidr[] of its tunnel addresses
 * and routes (the worker's queries build it), in an array allocated in
 * ctx; returns how many.  A peer never has more than
 * WG_PEER_ALLOWEDIPS_MAX (the table's checks bound its routes), nor a NULL
 * element.
 */
int
wgpeer_stored_allowedips(Datum array, MemoryContext ctx, wg_allowedip **ips)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(DatumGetArrayTypeP(array), CIDROID, -1, false,
					  TYPALIGN_INT, &elems, &nulls, &n);
	if (n > WG_PEER_ALLOWEDIPS_MAX)
		elog(ERROR, "wgpeer: a stored peer has %d allowed IPs, more than %d",
			 n, WG_PEER_ALLOWEDIPS_MAX);
	*ips = MemoryContextAllocZero(ctx, sizeof(wg_allowedip) * (n + 1));
	for (int i = 0; i < n; i++)
	{
		inet	   *ip;
		wg_allowedip *a = &(*ips)[i];

		if (nulls[i])
			elog(ERROR, "wgpeer: a stored peer has a null allowed IP");
		ip = DatumGetInetPP(elems[i]);
		a->family = ip_family(ip) == PGSQL_AF_INET ? AF_INET : AF_INET6;
		a->cidr = ip_bits(ip);
		memcpy(&a->addr, ip_addr(ip), wg_allowedip_addr_len(a->family));
	}
	return n;
}

/*
 * Words for a failed call to a userspace WireGuard daemon, and a hint
 * when the operator can act.
 */
static void
describe_uapi_failure(int rc, bool at_open, const char *ifname,
					  char **message, const char **hint)
{
	Unresponsive *d;

	*hint = NULL;
	if (at_open && (rc == -EACCES || rc == -EPERM))
	{
		*message = psprintf("permission denied on %s/%s.sock: the wgpeer "
							"apply worker's operating system user may not use "
							"the userspace WireGuard socket",
							WGUAPI_SOCKET_DIR, ifname);
		*hint = "Give the PostgreSQL user access to the socket, see the "
			"README section \"Userspace WireGuard\".";
	}
	else if (at_open && rc == -ENOENT)
	{
		*message = psprintf("interface \"%s\" has no userspace WireGuard "
							"socket %s/%s.sock", ifname, WGUAPI_SOCKET_DIR, ifname);
		*hint = "Start its daemon (e.g. wireguard-go); queued changes are "
			"applied as soon as it answers.";
	}
	else if (at_open && rc == -ECONNREFUSED)
	{
		*message = psprintf("nothing answers on %s/%s.sock: the userspace "
							"WireGuard daemon of \"%s\" has stopped",
							WGUAPI_SOCKET_DIR, ifname, ifname);
		*hint = "Start it again (e.g. wireguard-go), or remove the stale socket.";
	}
	else if (rc == -ETIMEDOUT && (d = unresponsive_entry(ifname)) != NULL &&
			 !d->answering)
	{
		*message = psprintf("the userspace WireGuard daemon of \"%s\" has not "
							"answered since %s; the interface is left alone "
							"until it does", ifname, timestamptz_to_str(d->since));
		*hint = "Look at the daemon's process (stopped, or stuck?); queued "
			"changes are applied as soon as it answers.";
	}
	else if (rc == -ETIMEDOUT)
		*message = psprintf("the userspace WireGuard daemon of \"%s\" did not "
							"answer within %d ms", ifname, UAPI_IDLE_MS);
	else
		*message = psprintf("userspace WireGuard (UAPI) error on interface "
							"\"%s\": %s", ifname, strerror(-rc));
}

/*
 * Words for a failed apply, and a hint when the operator can act.
 */
void
wgpeer_describe_failure(int rc, bool at_open, const char *ifname,
						WgBackend backend, char **message, const char **hint)
{
	if (wgpeer_uses_uapi(ifname, backend))
	{
		describe_uapi_failure(rc, at_open, ifname, message, hint);
		return;
	}
	*hint = NULL;
	if (rc == -EPERM || rc == -EACCES)
	{
		*message = psprintf("permission denied: the wgpeer apply worker lacks "
							"CAP_NET_ADMIN");
		*hint = "Give PostgreSQL CAP_NET_ADMIN, see the README section \"Kernel access\".";
	}
	else if (at_open && rc == -ENOENT)
	{
		*message = psprintf("the kernel has no WireGuard support "
							"(generic netlink family \"wireguard\" not found)");
		*hint = "Load the module with \"modprobe wireguard\".";
	}
	else if (rc == -ENODEV)
	{
		*message = psprintf("interface \"%s\" does not exist", ifname);
		*hint = "Create it, e.g. \"ip link add dev <name> type wireguard\"; "
			"queued changes are applied as soon as it exists.";
	}
	else if (rc == -EOPNOTSUPP)
		*message = psprintf("interface \"%s\" is not a WireGuard interface",
							ifname);
	else if (rc == -EPFNOSUPPORT)
	{
		*message = psprintf("the kernel has no AmneziaWG support (generic "
							"netlink family \"amneziawg\" not found)");
		*hint = "Build and load the amneziawg module, see docs/amneziawg.md; "
			"its interfaces are created with \"ip link add dev <name> type "
			"amneziawg\".";
	}
	else if (rc == -EPROTONOSUPPORT)
	{
		*message = psprintf("the amneziawg module is too old for the "
							"parameters of \"%s\" (S3, S4, I1..I5 or an H "
							"range)", ifname);
		*hint = "Update the module, or leave those parameters out with "
			"wgpeer.wg_set_interface_awg().";
	}
	else
		*message = psprintf("netlink error on interface \"%s\": %s",
							ifname, strerror(-rc));
}

/*
 * wg_device_setter over the worker's dispatcher; arg points to the
 * interface's backend.
 */
static int
set_through_backend(void *arg, const wg_device_change *change, bool *at_open)
{
	return wgpeer_device_set(change, *(WgBackend *) arg, at_open);
}

/*
 * Apply change to its interface so that a peer or a setting the device
 * refuses holds back nothing else (device/isolate.c): peer_rc receives,
 * per peer of change, 0 or the -errno it was refused with, and out says
 * whether the device failed as a whole or refused its settings.
 */
void
wgpeer_device_apply(const wg_device_change *change, WgBackend backend,
					int *peer_rc, wg_apply_outcome *out)
{
	if (wg_device_apply_isolated(change, set_through_backend, &backend,
								 peer_rc, out) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
}
