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
 * or expired (or whose old key's removal is still queued) removed; peers
 * nobody knows are left alone with a warning, unless the interface is
 * exclusive, or it is marked in wgpeer.stale_sweep (after a promotion or
 * restore, history.c) and their allowed IPs lie in its pool: only wgpeer
 * can have put those there, for peers the lost commits created.  Outside
 * that case such peers stay, so that peers already on an interface can be
 * adopted with wg_import_config after it is registered.  A peer configured
 * by hand is never taken over, even when a database peer has its key
 * (managed.c).  The device's private key and listen port are set when
 * they differ, and whether the device took them is kept in
 * worker_state.settings_error, as the queue's applies keep it.
 * When nothing differs nothing is sent, so no handshake is disturbed.
 * A reconcile that leaves the device as the database wants it also ends
 * the interface's error state: its backoff is lifted, so that the queued
 * changes it just made true are applied (and their peers marked active) in
 * the same pass, and peers left 'creating' with nothing queued are marked
 * active.
 * wg_reconcile() (src/sql/reconcile.c) asks the worker for one now and
 * reports what it recorded.
 */
#include "worker/worker.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include <arpa/inet.h>

#include "device/diff.h"

/*
 * The addresses of an interface's pool: its IPv4 range, and its IPv6
 * prefix (where each peer gets the /128 at its IPv4 offset) when it has one.
 */
typedef struct PoolBounds
{
	uint32		first;			/* host order */
	uint32		last;
	bool		has6;
	struct in6_addr net6;
	int			plen6;
} PoolBounds;

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
static bool history_checked = false;

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
 * The pool of ifname when it is marked for a stale sweep; false when not.
 */
static bool
read_sweep(const char *ifname, PoolBounds *pool)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(ifname)};
	HeapTuple	tup;
	TupleDesc	desc;
	struct in_addr a;
	char	   *text;

	wgpeer_exec(&plan,
				"SELECT pg_catalog.host(i.pool_start), pg_catalog.host(i.pool_end),"
				" pg_catalog.host(i.address6), pg_catalog.masklen(i.address6)"
				" FROM wgpeer.interface i"
				" JOIN wgpeer.stale_sweep s ON s.interface = i.name"
				" WHERE i.name = $1",
				1, types, values, NULL);
	if (SPI_processed == 0)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memset(pool, 0, sizeof(*pool));
	if (inet_pton(AF_INET, SPI_getvalue(tup, desc, 1), &a) != 1)
		elog(ERROR, "pool_start of \"%s\" is not an IPv4 address", ifname);
	pool->first = ntohl(a.s_addr);
	if (inet_pton(AF_INET, SPI_getvalue(tup, desc, 2), &a) != 1)
		elog(ERROR, "pool_end of \"%s\" is not an IPv4 address", ifname);
	pool->last = ntohl(a.s_addr);
	if ((text = SPI_getvalue(tup, desc, 3)) != NULL)
	{
		pool->has6 = inet_pton(AF_INET6, text, &pool->net6) == 1;
		pool->plen6 = atoi(SPI_getvalue(tup, desc, 4));
	}
	return true;
}

/*
 * Does the allowed IP lie inside the pool: an IPv4 prefix within its
 * range, or an IPv6 prefix within its IPv6 prefix?  A default route or a
 * site's subnet does not.
 */
static bool
allowedip_in_pool(const wg_allowedip *ip, const PoolBounds *pool)
{
	if (ip->family == AF_INET && ip->cidr <= 32)
	{
		uint32		span = ip->cidr == 0 ? PG_UINT32_MAX :
			(ip->cidr == 32 ? 0 : (((uint32) 1) << (32 - ip->cidr)) - 1);
		uint32		net = ntohl(ip->addr.ip4.s_addr) & ~span;

		return net >= pool->first && net + span <= pool->last;
	}
	if (ip->family == AF_INET6 && pool->has6 && ip->cidr >= pool->plen6)
	{
		int			bytes = pool->plen6 / 8;
		int			bits = pool->plen6 % 8;
		uint8		mask = (uint8) (0xff << (8 - bits));

		if (memcmp(ip->addr.ip6.s6_addr, pool->net6.s6_addr, bytes) != 0)
			return false;
		return bits == 0 ||
			((ip->addr.ip6.s6_addr[bytes] ^ pool->net6.s6_addr[bytes]) & mask) == 0;
	}
	return false;
}

/*
 * qsort/bsearch order of 32-byte keys: the known keys, and the desired
 * peers, whose key is their first member.
 */
static int
key_order(const void *a, const void *b)
{
	return memcmp(a, b, WG_KEY_LEN);
}

/*
 * Add to known the keys of the device's peers that the database neither
 * wants nor knows and that hold an allowed IP inside the pool: stale peers
 * of commits a promotion or restore lost.  Returns how many.
 */
static size_t
add_stale(const wg_device *dev, wg_desired_peer *desired, size_t n_desired,
		  uint8_t (**known)[WG_KEY_LEN], size_t *n_known,
		  const PoolBounds *pool)
{
	size_t		n_stale = 0;

	if (n_desired > 1)
		qsort(desired, n_desired, sizeof(*desired), key_order);
	if (*n_known > 1)
		qsort(*known, *n_known, sizeof(**known), key_order);
	*known = repalloc(*known, WG_KEY_LEN * (*n_known + dev->n_peers + 1));
	for (size_t j = 0; j < dev->n_peers; j++)
	{
		const wg_peer_info *p = &dev->peers[j];
		bool		inside = false;

		if ((n_desired > 0 &&
			 bsearch(p->public_key, desired, n_desired, sizeof(*desired),
					 key_order)) ||
			(*n_known > 0 &&
			 bsearch(p->public_key, *known, *n_known, sizeof(**known),
					 key_order)))
			continue;
		for (size_t k = 0; k < p->n_allowedips && !inside; k++)
			inside = allowedip_in_pool(&p->allowedips[k], pool);
		if (inside)
			memcpy((*known)[*n_known + n_stale++], p->public_key, WG_KEY_LEN);
	}
	*n_known += n_stale;
	return n_stale;
}

/*
 * The keys of the desired peers absent from the device, as a text[]
 * Datum, when the device holds at least one desired peer (an empty or
 * recreated device tells nothing); both sides sorted by key (after the
 * diff).  (Datum) 0 when there are none to report.
 */
static Datum
absent_keys(const wg_desired_peer *desired, size_t n_desired,
			const wg_device *dev)
{
	Datum	   *keys = palloc(sizeof(Datum) * (n_desired + 1));
	int			n_absent = 0;
	size_t		j = 0;

	for (size_t i = 0; i < n_desired; i++)
	{
		int			cmp = 1;

		while (j < dev->n_peers &&
			   (cmp = memcmp(dev->peers[j].public_key, desired[i].public_key,
							 WG_KEY_LEN)) < 0)
			j++;
		if (j == dev->n_peers || cmp != 0)
			keys[n_absent++] =
				CStringGetTextDatum(wgpeer_key_text(desired[i].public_key));
	}
	if (n_absent == 0 || (size_t) n_absent == n_desired)
		return (Datum) 0;
	return PointerGetDatum(construct_array(keys, n_absent, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/*
 * At a stale sweep: warn of the active peers that were missing from the
 * device with nothing queued for them.  The old server's worker had put
 * them there (they are active) and something took them off since: most
 * likely a revocation, suspension, expiry or key rotation in the commits
 * this database lacks.  They are put back, as the database says; the
 * warning names them so that the application can repeat what was lost.
 */
static void
warn_missing(const char *ifname, Datum absent)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2] = {CStringGetTextDatum(ifname), absent};
	bool		isnull;
	int64		n;

	wgpeer_exec(&plan,
				"SELECT pg_catalog.count(*), pg_catalog.array_to_string("
				"  (pg_catalog.array_agg(p.peer_id ORDER BY p.peer_id))[1:20],"
				"  ', ')"
				" FROM wgpeer.peer p"
				" WHERE p.interface = $1 AND p.public_key = ANY ($2)"
				"   AND p.status = 'active'"
				"   AND NOT EXISTS (SELECT FROM wgpeer.queue q"
				"     WHERE q.peer_id = p.peer_id)",
				2, types, values, NULL);
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1, &isnull));
	if (n > 0)
		ereport(WARNING,
				(errmsg("%lld active peers were missing from \"%s\" with "
						"nothing queued for them; they are put back",
						(long long) n, ifname),
				 errdetail("This database runs on another server history than "
						   "the one that last served it: the commits it lacks "
						   "may have revoked, suspended or rotated them."),
				 errhint("Check them against your application and repeat "
						 "what was lost: %s%s.",
						 SPI_getvalue(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 2),
						 n > 20 ? ", ..." : "")));
}

/*
 * After a reconcile that left ifname as the database wants it: the
 * interface has recovered.  Its stale sweep is done, its error and
 * backoff are cleared, and the apply task is told (as by a commit that
 * queued changes), so that it applies what is queued (now true on the
 * device) at once and marks those peers active as it always does.  (A
 * change the device refused on its own stays quarantined until its retry:
 * only the apply writes the queue.)  Peers left 'creating' with nothing queued
 * (nothing else would ever mark them) are marked active here, with the
 * same NOTIFY.  A node marks nothing: its primary learns from the
 * outcomes of its applies.
 */
static void
record_recovered(const char *ifname)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(ifname)};
	bool		isnull;

	wgpeer_exec(&plan,
				"WITH swept AS ("
				"  DELETE FROM wgpeer.stale_sweep WHERE interface = $1),"
				" state AS ("
				"  UPDATE wgpeer.worker_state"
				"  SET last_error = NULL, failures = 0, retry_at = NULL"
				"  WHERE interface = $1"
				"    AND (last_error IS NOT NULL OR retry_at IS NOT NULL)"
				"  RETURNING 1),"
				" activated AS ("
				"  UPDATE wgpeer.peer p SET status = 'active'"
				"  WHERE p.interface = $1 AND p.status = 'creating'"
				"    AND (p.expires_at IS NULL OR p.expires_at > pg_catalog.now())"
				"    AND pg_catalog.current_setting('wgpeer.node') = ''"
				"    AND NOT EXISTS (SELECT FROM wgpeer.queue q"
				"      WHERE q.peer_id = p.peer_id)"
				"  RETURNING p.peer_id, p.user_id, p.interface),"
				" notified AS ("
				"  SELECT pg_catalog.pg_notify('wgpeer', pg_catalog.json_build_object("
				"   'peer_id', peer_id, 'user_id', user_id,"
				"   'interface', interface, 'status', 'active')::text)"
				"  FROM activated)"
				" SELECT (SELECT pg_catalog.count(*) FROM notified),"
				"  EXISTS (SELECT FROM state)",
				1, types, values, NULL);
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
								   SPI_tuptable->tupdesc, 2, &isnull)))
		wgpeer_note_change(CHANGE_QUEUE);
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
				" ON CONFLICT (interface, node) DO UPDATE"
				" SET reconciled_at = now(), added = $2, corrected = $3,"
				"     removed = $4, foreign_peers = $5, reconcile_error = $6",
				6, types, values, nulls);
}

/*
 * Make one live interface match the database.  When exclusive, peers
 * nobody registered are removed too.  awg: an AmneziaWG interface's
 * parameters (NULL for WireGuard), set again when the device's differ.
 */
static void
reconcile_one(const char *ifname, WgBackend backend, const char *private_key,
			  int listen_port, bool exclusive, const wg_awg *awg)
{
	WgWanted	wanted;
	wg_device dev;
	wg_device_change dc;
	wg_peer_change *changes;
	size_t		n_changes = 0;
	wg_diff_stats stats;
	PoolBounds	pool;
	bool		sweeping;
	size_t		n_stale = 0;
	Datum		absent = (Datum) 0;
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
	wgpeer_read_wanted(ifname, &wanted);
	wgpeer_screen_foreign(ifname, &dev, &wanted, &screen);
	if ((sweeping = read_sweep(ifname, &pool)))
		n_stale = add_stale(&dev, wanted.desired, wanted.n_desired,
							&wanted.known, &wanted.n_known, &pool);
	/* not zeroed: the diff writes each change it makes whole */
	changes = palloc(sizeof(wg_peer_change) *
					 (wanted.n_desired + dev.n_peers + 1));
	wg_peer_diff(wanted.desired, wanted.n_desired, &dev, wanted.known,
				 wanted.n_known, exclusive, changes, &n_changes, &stats);
	if (sweeping)
		absent = absent_keys(wanted.desired, wanted.n_desired, &dev);

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
	/* the kernel module's, or amneziawg-go's over the UAPI */
	if (awg != NULL)
	{
		wg_awg		now;

		wg_device_awg(&dev, &now);
		if (!dev.has_awg || !wg_awg_equal(&now, awg))
			dc.awg = awg;
	}
	dc.peers = changes;
	dc.n_peers = n_changes;
	wg_device_free(&dev);

	if (n_changes > 0 || dc.has_private_key || dc.awg)
	{
		int		   *peer_rc = palloc0(sizeof(int) * (n_changes + 1));
		wg_apply_outcome out;
		char	   *message = NULL;
		const char *hint = NULL;

		wgpeer_device_apply(&dc, backend, peer_rc, &out);
		if (out.device_rc == 0)
			wgpeer_record_managed(ifname, &screen, changes, n_changes, peer_rc);
		if (out.device_rc == 0 && dc.has_private_key && !dc.awg)
			wgpeer_record_settings(ifname, backend, listen_port, false,
								   out.settings_rc);
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
		else if (out.settings_rc < 0 && dc.awg)
		{
			wgpeer_describe_failure(out.settings_rc, false, ifname, backend,
									&message, &hint);
			message = psprintf("the device refused its %sAmneziaWG "
							   "parameters: %s", dc.has_private_key ?
							   "private key, listen port and " : "", message);
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
						"%zu removed%s%s",
						ifname, stats.added, stats.corrected, stats.removed,
						dc.has_private_key ? ", device key and port set" : "",
						dc.awg ? ", AmneziaWG parameters set" : "")));
	}
	else
	{
		wgpeer_record_managed(ifname, &screen, NULL, 0, NULL);
		if (private_key)
			wgpeer_record_settings(ifname, backend, listen_port, awg != NULL,
								   0);
	}
	if (absent != (Datum) 0)
		warn_missing(ifname, absent);
	if (n_stale > 0)
		ereport(WARNING,
				(errmsg("wgpeer removed %zu peers the database does not know "
						"from the pool of \"%s\"", n_stale, ifname),
				 errdetail("This database runs on another server history than "
						   "the one that last served it (a promotion, a "
						   "point-in-time recovery or a restore): those peers "
						   "were put there for commits it lacks."),
				 errhint("Their users need new configs: see \"High "
						 "availability\" in docs/backups-and-ha.md.")));
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
	record_recovered(ifname);
}

/*
 * Reconcile every interface (full), or only those whose ifindex changed
 * since the last look.  Interfaces are locked as wgpeer_sample_devices()
 * locks them.  Before the first reconcile the server's history is checked
 * (history.c).
 */
static void
reconcile_pass(bool full)
{
	bool		checked_now = false;
	bool		installed;

	wgpeer_begin_work("wgpeer: reconciling");
	installed = wgpeer_installed();
	/* before the first reconcile; in effect once this transaction commits */
	if (installed && !history_checked)
	{
		wgpeer_check_history();
		checked_now = true;
	}
	if (installed &&
		SPI_execute("SELECT name, private_key, listen_port, exclusive, backend,"
		/* AmneziaWG (0.3), read so under older schemas too */
					" nullif(to_jsonb(i) -> 'awg', 'null')"
					" FROM wgpeer.interface i"
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
			bool		no_awg;
			Datum		awg_json = SPI_getbinval(ifaces->vals[r],
												 ifaces->tupdesc, 6, &no_awg);
			wg_awg		awg;

			if (!no_awg)
				wgpeer_awg_effective(DatumGetJsonbP(awg_json), NULL, &awg);
			if (ifindex != 0 && (full || ifindex != before))
				reconcile_one(name, backend, private_key, port, exclusive,
							  no_awg ? NULL : &awg);
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
	history_checked |= checked_now;
}

/*
 * The reconcile task: every interface, every wgpeer.reconcile_interval,
 * on the first pass, and when a committed transaction registered, altered
 * or removed an interface (the task table wakes it).
 */
long
wgpeer_reconcile_due(bool woken)
{
	reconcile_pass(true);
	return wgpeer_reconcile_interval;
}

/*
 * The recreated-interface task: each second, the interfaces whose identity
 * changed since the last look (recreated after a reboot or by hand, or a
 * daemon restarted) are reconciled at once.  Looking costs a few system
 * calls and no transaction.
 */
long
wgpeer_recreated_due(bool woken)
{
	bool		changed = false;

	for (int i = 0; i < n_seen && !changed; i++)
		changed = wgpeer_device_id(seen[i].name, seen[i].backend) != seen[i].ifindex;
	if (changed)
		reconcile_pass(false);
	return 1000;
}

/*
 * Reconcile every interface now (wg_reconcile()).
 */
void
wgpeer_reconcile_now(void)
{
	reconcile_pass(true);
}
