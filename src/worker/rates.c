/*
 * rates.c
 *		Per-peer speed limits: the worker brings each interface's traffic
 *		control objects to the limits the peers have (src/device/shaping.h,
 *		docs/speed-limits.md).
 *
 * One pass per interface reads what wgpeer has installed there (its qdiscs,
 * classes and filters, by their handles), compares it with the limited
 * peers' rows and sends only the differences: a changed limit is a message
 * or two for that peer, a qdisc deleted by hand is put back with every
 * peer's objects, and the objects of a slot no peer holds any more go.
 * Someone else's root qdisc is never replaced: the interface is then not
 * shaped, with a warning.  The same pass serves a commit that changed a
 * limit (it wakes the worker) and the repair of drift, every
 * wgpeer.reconcile_interval and after each wg_reconcile().
 *
 * The interface rows are key-share locked while their objects are set, as
 * reconcile does; every netlink call is bounded by a timeout.
 */
#include "worker/worker.h"

#include <net/if.h>
#include <arpa/inet.h>

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "device/shaping.h"

/* How long one netlink call may take. */
#define RATES_TIMEOUT_MS 5000

/* The socket of the pass under way (an error may leave it open). */
static wgtc_ctx *pass_ctx = NULL;

/*
 * The limited peers of an interface from the database, by slot.
 */
static wgtc_peer *
wanted_peers(const char *ifname, int *n_out)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(ifname)};
	wgtc_peer  *peers;
	uint64		n;

	wgpeer_exec(&plan,
				"SELECT rate_slot, coalesce(down_kbit, 0), coalesce(up_kbit, 0),"
				" host(address), host(address6) FROM wgpeer.peer"
				" WHERE interface = $1 AND rate_slot IS NOT NULL"
				" ORDER BY rate_slot",
				1, types, values, NULL);
	n = SPI_processed;
	peers = palloc0(sizeof(wgtc_peer) * (n + 1));
	for (uint64 r = 0; r < n; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *v4 = SPI_getvalue(tup, desc, 4);
		char	   *v6 = SPI_getvalue(tup, desc, 5);
		wgtc_peer  *p = &peers[r];

		p->slot = (uint16_t) DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		p->down_kbit = (uint32_t) DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		p->up_kbit = (uint32_t) DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		p->has_v4 = v4 != NULL && inet_pton(AF_INET, v4, p->v4) == 1;
		p->has_v6 = v6 != NULL && inet_pton(AF_INET6, v6, p->v6) == 1;
	}
	*n_out = (int) n;
	return peers;
}

/*
 * Bring one interface's objects to its peers' limits.  Returns 0 or
 * -errno (the first failure: the pass goes on at its next time).
 */
static int
shape_interface(wgtc_ctx *ctx, int ifindex, const wgtc_peer *peers, int n,
				wgtc_installed *found)
{
	bool	   *wanted = palloc0(sizeof(bool) * (WGTC_SLOT_MAX + 1));
	int			r = wgtc_read(ctx, ifindex, found);

	if (r < 0)
		return r;
	if (n == 0 && !found->root_ours)
		return 0;
	if (n > 0 && (!found->root_ours || !found->ingress))
	{
		r = wgtc_ensure_qdiscs(ctx, ifindex, found);
		if (r == 0)
			r = wgtc_read(ctx, ifindex, found);
		if (r < 0)
			return r;
	}
	for (int i = 0; i < n && r == 0; i++)
	{
		wanted[peers[i].slot] = true;
		r = wgtc_set_peer(ctx, ifindex, &peers[i], found);
	}
	for (int s = 1; s <= WGTC_SLOT_MAX && r == 0; s++)
		if (!wanted[s] && (found->class_kbit[s] != 0 || found->filters[s] != 0))
			r = wgtc_clear_slot(ctx, ifindex, (uint16_t) s, found);
	return r;
}

/*
 * Say why an interface could not be shaped, with what the administrator
 * can do about it.
 */
static void
warn_failure(const char *ifname, int rc)
{
	const char *hint;

	if (rc == -EEXIST)
		hint = psprintf("Another root qdisc is on \"%s\" and wgpeer leaves it "
						"alone; remove it (tc qdisc del dev %s root) for "
						"wgpeer to apply speed limits there.", ifname, ifname);
	else if (rc == -ENOENT || rc == -EOPNOTSUPP)
		hint = "Load the kernel modules sch_htb, sch_ingress, cls_flower and "
			"act_police.";
	else if (rc == -EPERM)
		hint = "The apply worker needs CAP_NET_ADMIN (see docs/operations.md).";
	else
		hint = NULL;
	ereport(WARNING,
			(errmsg("wgpeer could not apply the speed limits on interface \"%s\": %s",
					ifname, strerror(-rc)),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * Shape each interface of names (from SPI) that exists here, through ctx.
 */
static void
shape_all(wgtc_ctx *ctx, SPITupleTable *names, uint64 n_names)
{
	wgtc_installed *found = palloc(sizeof(wgtc_installed));

	for (uint64 i = 0; i < n_names; i++)
	{
		char	   *ifname = SPI_getvalue(names->vals[i], names->tupdesc, 1);
		int			ifindex = (int) if_nametoindex(ifname);
		wgtc_peer  *peers;
		int			n;
		int			rc;

		if (ifindex == 0)
			continue;			/* not here (yet): reconcile's concern */
		peers = wanted_peers(ifname, &n);
		rc = shape_interface(ctx, ifindex, peers, n, found);
		if (rc < 0)
			warn_failure(ifname, rc);
	}
}

/*
 * The task: shape every interface this worker serves that exists here.
 * Due every wgpeer.reconcile_interval (the repair of drift), and woken by
 * every commit that changed a limit and by wg_reconcile().
 */
long
wgpeer_rates_due(bool woken)
{
	wgpeer_begin_work("wgpeer: applying speed limits");
	if (wgpeer_installed() &&
		SPI_execute("SELECT name FROM wgpeer.interface"
					" WHERE node = current_setting('wgpeer.node') ORDER BY name"
					" FOR KEY SHARE SKIP LOCKED", false, 0) == SPI_OK_SELECT &&
		SPI_processed > 0)
	{
		SPITupleTable *names = SPI_tuptable;
		uint64		n_names = SPI_processed;
		int			rc;

		/* a pass an error ended left its socket: closed here */
		wgtc_close(pass_ctx);
		pass_ctx = NULL;
		rc = wgtc_open(&pass_ctx, RATES_TIMEOUT_MS);
		if (rc < 0)
			ereport(ERROR,
					(errmsg("wgpeer could not open an rtnetlink socket: %s",
							strerror(-rc))));
		shape_all(pass_ctx, names, n_names);
		wgtc_close(pass_ctx);
		pass_ctx = NULL;
	}
	wgpeer_end_work();
	return wgpeer_reconcile_interval > 0 ? wgpeer_reconcile_interval : TASK_IDLE;
}
