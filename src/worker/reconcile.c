/*
 * reconcile.c
 *		Desired state wins: the apply worker compares each interface with
 *		the peers the database wants on it and repairs only the difference.
 *
 * The queue is the fast path; this is the safety net for a rebooted host,
 * a recreated interface or a hand edit.  It runs when the worker starts,
 * every wgpeer.reconcile_interval, and as soon as an interface appears or
 * is recreated (its ifindex, or its userspace daemon's socket, changes:
 * wgpeer_device_id() tells without any privilege).  Missing peers are
 * added, peers with other settings corrected, peers the database revoked
 * or expired removed; peers nobody knows are left alone with a warning,
 * unless the interface is exclusive.  A peer configured by hand is never
 * taken over, even when a database peer has its key (managed.c).  The
 * device's private key and listen port are set when they differ, and
 * whether the device took them is kept in worker_state.settings_error,
 * as the queue's applies keep it.
 * When nothing differs nothing is sent, so no handshake is disturbed.
 * wg_reconcile() (src/sql/reconcile.c) asks the worker for one now and
 * reports what it recorded.
 */
#include "worker/worker.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "device/diff.h"

/*
 * The identity (wgpeer_device_id) each interface had when last looked at,
 * by name, with the backend it is reached by.
 */
typedef struct SeenIface
{
	char		name[WG_IFNAME_SIZE];
	WgBackend	backend;
	unsigned int ifindex;
	bool		listed;			/* registered at the last look */
} SeenIface;

static SeenIface *seen = NULL;
static int	n_seen = 0;
static TimestampTz next_full = 0;

/*
 * Remember ifindex and backend for name; returns the ifindex remembered
 * before (0 when never seen).
 */
static unsigned int
remember_ifindex(const char *name, WgBackend backend, unsigned int ifindex)
{
	unsigned int before;
	int			i;

	for (i = 0; i < n_seen && strcmp(seen[i].name, name) != 0; i++)
		;
	if (i == n_seen)
	{
		seen = seen ? repalloc(seen, sizeof(SeenIface) * (n_seen + 1)) :
			MemoryContextAlloc(TopMemoryContext, sizeof(SeenIface));
		strlcpy(seen[n_seen].name, name, WG_IFNAME_SIZE);
		seen[n_seen++].ifindex = 0;
	}
	before = seen[i].ifindex;
	seen[i].ifindex = ifindex;
	seen[i].backend = backend;
	seen[i].listed = true;
	return before;
}

/*
 * Forget the interfaces the last look did not list (unregistered, or
 * being unregistered): a change of their identity must not start a
 * reconcile every second.
 */
static void
forget_unlisted(void)
{
	int			kept = 0;

	for (int i = 0; i < n_seen; i++)
		if (seen[i].listed)
			seen[kept++] = seen[i];
	n_seen = kept;
}

/*
 * The peers the database wants on ifname (creating and active ones not
 * past their expiry), each with its tunnel addresses and routes as allowed
 * IPs, and the keys of peers it suspended, revoked or expired there
 * or whose expiry has passed (a node removes those at expires_at on its
 * own, before the primary marks them expired).
 */
static void
read_wanted(const char *ifname, wg_desired_peer **desired, size_t *n_desired,
			uint8_t (**known)[WG_KEY_LEN], size_t *n_known)
{
	static SPIPlanPtr want_plan;
	static SPIPlanPtr known_plan;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(ifname)};

	wgpeer_exec_opts(&want_plan,
					 "SELECT p.public_key, p.preshared_key,"
					 " " WGPEER_ALLOWED_IPS_SQL ","
					 " coalesce(p.persistent_keepalive, i.persistent_keepalive, 0)"
					 " FROM wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface"
					 " WHERE p.interface = $1 AND p.status IN ('creating', 'active')"
					 "   AND (p.expires_at IS NULL OR p.expires_at > now())",
					 1, types, values, NULL, CURSOR_OPT_CUSTOM_PLAN);
	*n_desired = SPI_processed;
	*desired = palloc0(sizeof(wg_desired_peer) * (*n_desired + 1));
	for (size_t r = 0; r < *n_desired; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		wg_desired_peer *d = &(*desired)[r];
		char	   *text;
		bool		isnull;
		wg_allowedip *ips;

		wgpeer_stored_key(SPI_getvalue(tup, desc, 1), d->public_key);
		if ((text = SPI_getvalue(tup, desc, 2)) != NULL)
			wgpeer_stored_key(text, d->preshared_key);
		d->n_allowedips = wgpeer_stored_allowedips(SPI_getbinval(tup, desc, 3, &isnull),
												   CurrentMemoryContext, &ips);
		d->allowedips = ips;
		d->keepalive = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
	}

	wgpeer_exec_opts(&known_plan,
					 "SELECT DISTINCT public_key FROM wgpeer.peer"
					 " WHERE interface = $1"
					 "   AND (status IN ('suspended', 'revoked', 'expired')"
					 "   OR expires_at <= now())",
					 1, types, values, NULL, CURSOR_OPT_CUSTOM_PLAN);
	*n_known = SPI_processed;
	*known = palloc0(WG_KEY_LEN * (*n_known + 1));
	for (size_t r = 0; r < *n_known; r++)
		wgpeer_stored_key(SPI_getvalue(SPI_tuptable->vals[r],
									   SPI_tuptable->tupdesc, 1), (*known)[r]);
}

/*
 * Record the outcome of reconciling ifname in wgpeer.device, where
 * wg_reconcile() reads it: the counts, or why it could not be done.
 */
static void
record_outcome(const char *ifname, const wg_diff_stats *stats, const char *error)
{
	static SPIPlanPtr plan;
	Oid			types[6] = {TEXTOID, INT4OID, INT4OID, INT4OID, INT4OID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', error ? ' ' : 'n'};

	values[0] = CStringGetTextDatum(ifname);
	values[1] = Int32GetDatum((int32) stats->added);
	values[2] = Int32GetDatum((int32) stats->corrected);
	values[3] = Int32GetDatum((int32) stats->removed);
	values[4] = Int32GetDatum((int32) stats->foreign);
	values[5] = error ? CStringGetTextDatum(error) : (Datum) 0;
	wgpeer_exec(&plan,
				"INSERT INTO wgpeer.device AS d (interface, reconciled_at,"
				" added, corrected, removed, foreign_peers, reconcile_error)"
				" VALUES ($1, now(), $2, $3, $4, $5, $6)"
				" ON CONFLICT (interface) DO UPDATE"
				" SET reconciled_at = now(), added = $2, corrected = $3,"
				"     removed = $4, foreign_peers = $5, reconcile_error = $6",
				6, types, values, nulls);
}

/*
 * Make one live interface match the database.  When exclusive, peers
 * nobody registered are removed too.
 */
static void
reconcile_one(const char *ifname, WgBackend backend, const char *private_key,
			  int listen_port, bool exclusive)
{
	wg_desired_peer *desired;
	uint8_t		(*known)[WG_KEY_LEN];
	size_t		n_desired;
	size_t		n_known;
	wg_device dev;
	wg_device_change dc;
	wg_peer_change *changes;
	size_t		n_changes = 0;
	wg_diff_stats stats;
	WgManagedScreen screen;
	bool		at_open;
	int			rc;

	memset(&stats, 0, sizeof(stats));
	if ((rc = wgpeer_device_get(ifname, backend, &dev, &at_open)) < 0)
	{
		char	   *message;
		const char *hint;

		wgpeer_describe_failure(rc, at_open, ifname, backend, &message, &hint);
		record_outcome(ifname, &stats, message);
		return;
	}
	read_wanted(ifname, &desired, &n_desired, &known, &n_known);
	wgpeer_screen_foreign(ifname, &dev, desired, &n_desired, known, &n_known,
						  &screen);
	changes = palloc0(sizeof(wg_peer_change) * (n_desired + dev.n_peers + 1));
	wg_peer_diff(desired, n_desired, &dev, known, n_known, exclusive,
				 changes, &n_changes, &stats);

	memset(&dc, 0, sizeof(dc));
	dc.ifname = ifname;
	dc.listen_port = -1;
	if (private_key)
	{
		wgpeer_stored_key(private_key, dc.private_key);
		if (!dev.has_private_key ||
			memcmp(dev.private_key, dc.private_key, WG_KEY_LEN) != 0 ||
			dev.listen_port != listen_port)
		{
			dc.has_private_key = true;
			dc.listen_port = listen_port;
		}
	}
	dc.peers = changes;
	dc.n_peers = n_changes;
	wg_device_free(&dev);

	if (n_changes > 0 || dc.has_private_key)
	{
		int		   *peer_rc = palloc0(sizeof(int) * (n_changes + 1));
		wg_apply_outcome out;
		char	   *message = NULL;
		const char *hint = NULL;

		wgpeer_device_apply(&dc, backend, peer_rc, &out);
		if (out.device_rc == 0)
			wgpeer_record_managed(ifname, &screen, changes, n_changes, peer_rc);
		if (out.device_rc == 0 && dc.has_private_key)
			wgpeer_record_settings(ifname, backend, listen_port, out.settings_rc);
		if (out.device_rc < 0)
			wgpeer_describe_failure(out.device_rc, out.at_open, ifname, backend,
									&message, &hint);
		else if (out.refused > 0)
		{
			size_t		first = 0;

			while (peer_rc[first] == 0)
				first++;
			wgpeer_describe_failure(peer_rc[first], false, ifname, backend,
									&message, &hint);
			message = psprintf("the device refused %zu of %zu peer changes: %s",
							   out.refused, n_changes, message);
		}
		else if (out.settings_rc < 0)
		{
			wgpeer_describe_failure(out.settings_rc, false, ifname, backend,
									&message, &hint);
			message = psprintf("the device refused its private key and "
							   "listen port %d: %s", listen_port, message);
		}
		if (message)
		{
			ereport(WARNING,
					(errmsg("wgpeer could not reconcile \"%s\" fully: %s",
							ifname, message),
					 hint ? errhint("%s", hint) : 0));
			record_outcome(ifname, &stats, message);
			return;
		}
		ereport(LOG,
				(errmsg("wgpeer reconciled \"%s\": %zu peers added, %zu corrected, "
						"%zu removed%s",
						ifname, stats.added, stats.corrected, stats.removed,
						dc.has_private_key ? ", device key and port set" : "")));
	}
	else
	{
		wgpeer_record_managed(ifname, &screen, NULL, 0, NULL);
		if (private_key)
			wgpeer_record_settings(ifname, backend, listen_port, 0);
	}
	if (screen.foreign > 0)
		ereport(WARNING,
				(errmsg("interface \"%s\" has %zu peers configured by hand whose "
						"keys wgpeer peers also have; they are left alone",
						ifname, screen.foreign),
				 errhint("Revoke those wgpeer peers, or adopt the peers with "
						 "wgpeer.wg_import_peer() after revoking them.")));
	if (stats.foreign > 0)
		ereport(WARNING,
				(errmsg("interface \"%s\" has %zu peers wgpeer does not know; "
						"they are left alone", ifname, stats.foreign),
				 errhint("Remove them with \"wg set %s peer <key> remove\" if "
						 "they should not be there, or mark the interface "
						 "exclusive.", ifname)));
	record_outcome(ifname, &stats, NULL);
}

/*
 * Reconcile what is due: every interface when the interval has passed,
 * on the first call, or when a committed transaction registered, altered
 * or removed an interface; otherwise those whose ifindex changed since the
 * last look.  Checking the ifindexes costs a few system calls and no
 * transaction, so the worker does it every second.  Interfaces are
 * locked as wgpeer_sample_devices() locks them.  Returns the milliseconds
 * until it should be called again.
 */
long
wgpeer_reconcile_due(void)
{
	static uint64 seen_changes = 0;
	uint64		changes = wgpeer_commits_changing(CHANGE_INTERFACES);
	TimestampTz now = GetCurrentTimestamp();
	bool		full = now >= next_full || changes != seen_changes;
	bool		changed = false;

	for (int i = 0; i < n_seen && !full && !changed; i++)
		changed = wgpeer_device_id(seen[i].name, seen[i].backend) != seen[i].ifindex;
	if (!full && !changed)
		return Min(1000, Max(1, (long) ((next_full - now) / 1000)));

	/* read before the query: a commit after this is seen next time */
	seen_changes = changes;
	wgpeer_begin_work("wgpeer: reconciling");
	if (wgpeer_installed() &&
		SPI_execute("SELECT name, private_key, listen_port, exclusive, backend"
					" FROM wgpeer.interface"
					" WHERE node = current_setting('wgpeer.node') ORDER BY name"
					" FOR KEY SHARE SKIP LOCKED", false, 0) == SPI_OK_SELECT)
	{
		SPITupleTable *ifaces = SPI_tuptable;
		uint64		n = SPI_processed;

		for (int i = 0; i < n_seen; i++)
			seen[i].listed = false;
		for (uint64 r = 0; r < n; r++)
		{
			char	   *name = SPI_getvalue(ifaces->vals[r], ifaces->tupdesc, 1);
			char	   *private_key = SPI_getvalue(ifaces->vals[r], ifaces->tupdesc, 2);
			int			port = atoi(SPI_getvalue(ifaces->vals[r], ifaces->tupdesc, 3));
			bool		exclusive = strcmp(SPI_getvalue(ifaces->vals[r],
														 ifaces->tupdesc, 4), "t") == 0;
			WgBackend	backend = wgpeer_backend(SPI_getvalue(ifaces->vals[r],
																  ifaces->tupdesc, 5));
			unsigned int ifindex = wgpeer_device_id(name, backend);
			unsigned int before = remember_ifindex(name, backend, ifindex);

			if (ifindex != 0 && (full || ifindex != before))
				reconcile_one(name, backend, private_key, port, exclusive);
			else if (ifindex == 0 && full)
			{
				wg_diff_stats none = {0};

				record_outcome(name, &none,
							   psprintf("interface \"%s\" does not exist", name));
			}
		}
		forget_unlisted();
	}
	wgpeer_end_work();
	if (full)
		next_full = TimestampTzPlusMilliseconds(now, wgpeer_reconcile_interval);
	return Min(1000, Max(1, (long) ((next_full - now) / 1000)));
}

/*
 * Reconcile every interface now (wg_reconcile()).
 */
void
wgpeer_reconcile_now(void)
{
	next_full = 0;
	(void) wgpeer_reconcile_due();
}
