/*
 * device.c
 *		The device dispatcher: each interface is reached over the backend its
 *		row names, the kernel over generic netlink or a userspace daemon
 *		(wireguard-go, boringtun) over its UAPI socket, as wireguard-tools'
 *		ipc.c chooses; and what the worker says when a device fails.
 *
 * Everything above this file speaks the neutral model of device/device.h
 * and does not know which backend it talks to.
 */
#include "worker/worker.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/inet.h"

#include "device/netlink.h"
#include "device/uapi.h"

/* Netlink calls give up after this long: the kernel never hangs us. */
#define NETLINK_TIMEOUT_MS 5000

/* Nor does a userspace WireGuard daemon: each read or write, at most. */
#define UAPI_TIMEOUT_MS 5000

static wgnl_ctx *nl = NULL;

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
	{
		int			fd = wguapi_connect(NULL, change->ifname, UAPI_TIMEOUT_MS);

		*at_open = fd < 0;
		if (fd < 0)
			return fd;
		rc = wguapi_set(fd, change);
		close(fd);
		return rc;
	}
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
	{
		int			fd = wguapi_connect(NULL, ifname, UAPI_TIMEOUT_MS);

		*at_open = fd < 0;
		if (fd < 0)
			return fd;
		rc = wguapi_get(fd, ifname, dev);
		close(fd);
		return rc;
	}
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
	else if (rc == -ETIMEDOUT)
		*message = psprintf("the userspace WireGuard daemon of \"%s\" did not "
							"answer within %d ms", ifname, UAPI_TIMEOUT_MS);
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
