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
 * shaped, and why is kept in wgpeer.worker_state.rates_error (shown by
 * interface_status) with one warning, not one per pass.  The same pass
 * serves a commit that changed a limit (it wakes the worker) and the
 * repair of drift, every wgpeer.reconcile_interval and after each
 * wg_reconcile().
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
 * The limited peers of an interface from the database, by slot, with the
 * limits in effect: a peer's own, else its interface's default (0, a
 * peer's explicit unlimited, stays 0).
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
				"SELECT p.rate_slot, coalesce(p.down_kbit, i.down_kbit, 0),"
				" coalesce(p.up_kbit, i.up_kbit, 0),"
				" host(p.address), host(p.address6)"
				" FROM wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface"
				" WHERE p.interface = $1 AND p.rate_slot IS NOT NULL"
				" ORDER BY p.rate_slot",
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
 * Why an interface could not be shaped (rc from shape_interface), and
 * what the administrator can do about it (NULL when nothing specific).
 */
static char *
failure_message(const char *ifname, int rc, const char **hint)
{
	if (rc == -EEXIST)
	{
		*hint = psprintf("Remove it (tc qdisc del dev %s root) for wgpeer "
						 "to apply speed limits there.", ifname);
		return pstrdup("another root qdisc is on the interface, and wgpeer "
					   "leaves it alone: its peers are not shaped");
	}
	if (rc == -ENOENT || rc == -EOPNOTSUPP)
		*hint = "Load the kernel modules sch_htb, sch_ingress, cls_flower and "
			"act_police.";
	else if (rc == -EPERM)
		*hint = "The apply worker needs CAP_NET_ADMIN (see docs/operations.md).";
	else
		*hint = NULL;
	return pstrdup(strerror(-rc));
}

/*
 * Keep an interface's outcome in worker_state.rates_error (before: what
 * it held), and say so once when it changes: a WARNING when the limits
 * cannot be applied (or for another reason than before), a LOG when they
 * are again.  Every pass tries again; none repeats the warning.
 */
static void
record_outcome(const char *ifname, const char *before, int rc)
{
	static SPIPlanPtr plan;
	const char *hint = NULL;
	char	   *now = rc < 0 ? failure_message(ifname, rc, &hint) : NULL;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = {' ', now ? ' ' : 'n'};

	if (before == NULL ? now == NULL :
		(now != NULL && strcmp(before, now) == 0))
		return;
	values[0] = CStringGetTextDatum(ifname);
	values[1] = now ? CStringGetTextDatum(now) : (Datum) 0;
	wgpeer_exec(&plan,
				"INSERT INTO wgpeer.worker_state AS s"
				"  (interface, rates_error, rates_error_at)"
				" VALUES ($1, $2, CASE WHEN $2 IS NOT NULL THEN now() END)"
				" ON CONFLICT (interface, node) DO UPDATE"
				" SET rates_error = $2,"
				"     rates_error_at = CASE WHEN $2 IS NOT NULL"
				"       THEN now() END",
				2, types, values, nulls);
	if (now != NULL)
		ereport(WARNING,
				(errmsg("wgpeer could not apply the speed limits on interface \"%s\": %s",
						ifname, now),
				 errdetail("wgpeer.interface_status shows it in rates_error; "
						   "the apply worker tries again every pass and "
						   "says when the limits are applied."),
				 hint ? errhint("%s", hint) : 0));
	else
		ereport(LOG,
				(errmsg("wgpeer applies the speed limits on interface \"%s\" again",
						ifname)));
}

/*
 * Shape each interface of names (from SPI: name, rates_error) that exists
 * here, through ctx, and record how it went.
 */
static void
shape_all(wgtc_ctx *ctx, SPITupleTable *names, uint64 n_names)
{
	wgtc_installed *found = palloc(sizeof(wgtc_installed));

	for (uint64 i = 0; i < n_names; i++)
	{
		char	   *ifname = SPI_getvalue(names->vals[i], names->tupdesc, 1);
		char	   *before = SPI_getvalue(names->vals[i], names->tupdesc, 2);
		int			ifindex = (int) if_nametoindex(ifname);
		wgtc_peer  *peers;
		int			n;
		int			rc;

		if (ifindex == 0)
			continue;			/* not here (yet): reconcile's concern */
		peers = wanted_peers(ifname, &n);
		rc = shape_interface(ctx, ifindex, peers, n, found);
		record_outcome(ifname, before, rc);
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
		SPI_execute("SELECT i.name, s.rates_error FROM wgpeer.interface i"
					" LEFT JOIN wgpeer.worker_state s"
					"  ON s.interface = i.name AND s.node = i.node"
					" WHERE i.node = current_setting('wgpeer.node')"
					" ORDER BY i.name FOR KEY SHARE OF i SKIP LOCKED",
					false, 0) == SPI_OK_SELECT &&
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
