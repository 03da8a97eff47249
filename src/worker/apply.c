/*
 * apply.c
 *		One pass of the apply worker: take the queued changes that are due,
 *		apply them to each interface (over netlink, or over the UAPI socket
 *		of a userspace WireGuard), and record the outcome.
 *
 * A pass reads a batch in one transaction, talks to the kernel with no
 * transaction open, then records the result in a second transaction:
 * applied rows are deleted, their peers become active and a NOTIFY
 * wgpeer tells applications; on failure the rows stay, with the attempt
 * count, the error and the time of the next try (exponential backoff per
 * interface), and other interfaces go on.  A crash between the kernel
 * call and the second transaction replays the batch, which is harmless:
 * an add replaces the peer's allowed IPs and a removal of an absent peer
 * succeeds.
 */
#include "worker/worker.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* One queued change, as read from the queue joined with its peer. */
typedef struct Change
{
	int64		change_id;
	pg_uuid_t	peer_id;
	int			iface;			/* index into the pass's interfaces */
	bool		remove;
	uint8_t		public_key[WG_KEY_LEN];
	bool		has_psk;
	uint8_t		psk[WG_KEY_LEN];
	wg_allowedip ips[2];
	int			n_ips;
	int			keepalive;
} Change;

/* One interface touched by the pass. */
typedef struct Iface
{
	char	   *name;
	bool		has_private_key;
	uint8_t		private_key[WG_KEY_LEN];
	int			listen_port;
	WgBackend	backend;
	int			n_changes;
} Iface;

/*
 * Read up to wgpeer.batch_size due changes, in queue order, with what the
 * kernel needs for each.  Interfaces waiting for a retry are skipped
 * whole, so one interface's changes never overtake each other.
 */
static int
read_batch(Change **changes_out, Iface **ifaces_out, int *n_ifaces_out)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(wgpeer_batch_size)};
	Change	   *changes;
	Iface	   *ifaces;
	int			n_ifaces = 0;
	uint64		n;

	wgpeer_exec_opts(&plan,
					 "SELECT q.change_id, q.peer_id, q.interface, q.op = 'remove',"
					 "  q.public_key, p.preshared_key, host(p.address),"
					 "  host(p.address6), coalesce(i.persistent_keepalive, 0),"
					 "  i.private_key, i.listen_port, i.backend"
					 " FROM wgpeer.queue q"
					 " JOIN wgpeer.peer p ON p.peer_id = q.peer_id"
					 " JOIN wgpeer.interface i ON i.name = q.interface"
					 " LEFT JOIN wgpeer.worker_state s ON s.interface = q.interface"
					 " WHERE s.retry_at IS NULL OR s.retry_at <= now()"
					 " ORDER BY q.change_id LIMIT $1",
					 1, types, values, NULL, CURSOR_OPT_CUSTOM_PLAN);
	n = SPI_processed;
	changes = palloc0(sizeof(Change) * (n + 1));
	ifaces = palloc0(sizeof(Iface) * (n + 1));
	for (uint64 r = 0; r < n; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Change	   *c = &changes[r];
		char	   *ifname = SPI_getvalue(tup, desc, 3);
		char	   *text;
		bool		isnull;
		int			k;

		c->change_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		memcpy(&c->peer_id, DatumGetUUIDP(SPI_getbinval(tup, desc, 2, &isnull)),
			   sizeof(pg_uuid_t));
		c->remove = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		wgpeer_stored_key(SPI_getvalue(tup, desc, 5), c->public_key);
		if (!c->remove)
		{
			if ((text = SPI_getvalue(tup, desc, 6)) != NULL)
			{
				wgpeer_stored_key(text, c->psk);
				c->has_psk = true;
			}
			wgpeer_host_allowedip(SPI_getvalue(tup, desc, 7), &c->ips[c->n_ips++]);
			if ((text = SPI_getvalue(tup, desc, 8)) != NULL)
				wgpeer_host_allowedip(text, &c->ips[c->n_ips++]);
			c->keepalive = DatumGetInt32(SPI_getbinval(tup, desc, 9, &isnull));
		}

		/* interfaces in order of first appearance */
		for (k = 0; k < n_ifaces && strcmp(ifaces[k].name, ifname) != 0; k++)
			;
		if (k == n_ifaces)
		{
			Iface	   *f = &ifaces[n_ifaces++];

			f->name = ifname;
			if ((text = SPI_getvalue(tup, desc, 10)) != NULL)
			{
				wgpeer_stored_key(text, f->private_key);
				f->has_private_key = true;
			}
			f->listen_port = DatumGetInt32(SPI_getbinval(tup, desc, 11, &isnull));
			f->backend = wgpeer_backend(SPI_getvalue(tup, desc, 12));
		}
		c->iface = k;
		ifaces[k].n_changes++;
	}
	*changes_out = changes;
	*ifaces_out = ifaces;
	*n_ifaces_out = n_ifaces;
	return (int) n;
}

/*
 * Milliseconds until the earliest retry of an interface that has changes
 * waiting (at least 1, also when it is already due), or -1 when none is
 * waiting for a retry.
 */
static long
next_retry_ms(void)
{
	static SPIPlanPtr plan;
	bool		isnull;
	Datum		d;

	/* a retry already due counts too: it is 1 ms away, not forgotten */
	wgpeer_exec(&plan,
				"SELECT ceil(extract(epoch FROM min(s.retry_at) - now()) * 1000)::int8"
				" FROM wgpeer.worker_state s"
				" WHERE s.retry_at IS NOT NULL"
				"   AND EXISTS (SELECT 1 FROM wgpeer.queue q"
				"               WHERE q.interface = s.interface)",
				0, NULL, NULL, NULL);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? -1 : Max(DatumGetInt64(d), 1);
}

/*
 * The kernel change for one interface: the last change of each peer in
 * the batch wins (an add then a removal is a removal), in queue order.
 */
static wg_device_change
device_change(Iface *f, int iface_no, Change *changes, int n)
{
	wg_device_change dc;
	wg_peer_change *peers = palloc0(sizeof(wg_peer_change) * (f->n_changes + 1));
	HTAB	   *last;
	HASHCTL		ctl;
	int			n_peers = 0;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = sizeof(pg_uuid_t) + sizeof(int);
	ctl.hcxt = CurrentMemoryContext;
	last = hash_create("wgpeer batch peers", f->n_changes + 1, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (int i = 0; i < n; i++)
	{
		Change	   *c = &changes[i];
		bool		found;
		char	   *entry;
		int			slot;
		wg_peer_change *pc;

		if (c->iface != iface_no)
			continue;
		entry = hash_search(last, &c->peer_id, HASH_ENTER, &found);
		if (!found)
			memcpy(entry + sizeof(pg_uuid_t), &n_peers, sizeof(int));
		memcpy(&slot, entry + sizeof(pg_uuid_t), sizeof(int));
		if (!found)
			n_peers++;
		pc = &peers[slot];
		memset(pc, 0, sizeof(*pc));
		memcpy(pc->public_key, c->public_key, WG_KEY_LEN);
		pc->remove = c->remove;
		if (!c->remove)
		{
			pc->has_preshared_key = true;	/* zeros clear a stale one */
			if (c->has_psk)
				memcpy(pc->preshared_key, c->psk, WG_KEY_LEN);
			pc->keepalive = c->keepalive;
			pc->allowedips = c->ips;
			pc->n_allowedips = c->n_ips;
		}
	}
	hash_destroy(last);

	memset(&dc, 0, sizeof(dc));
	dc.ifname = f->name;
	dc.has_private_key = f->has_private_key;
	memcpy(dc.private_key, f->private_key, WG_KEY_LEN);
	dc.listen_port = f->has_private_key ? f->listen_port : -1;
	dc.peers = peers;
	dc.n_peers = n_peers;
	return dc;
}

/*
 * The change ids and peer ids of one interface's changes, as SQL arrays.
 */
static void
batch_arrays(Change *changes, int n, int iface_no, Datum *ids, Datum *peers)
{
	Datum	   *id_datums = palloc(sizeof(Datum) * (n + 1));
	Datum	   *peer_datums = palloc(sizeof(Datum) * (n + 1));
	int			k = 0;

	for (int i = 0; i < n; i++)
	{
		if (changes[i].iface != iface_no)
			continue;
		id_datums[k] = Int64GetDatum(changes[i].change_id);
		peer_datums[k] = UUIDPGetDatum(&changes[i].peer_id);
		k++;
	}
	*ids = PointerGetDatum(construct_array(id_datums, k, INT8OID, 8, true,
										   TYPALIGN_DOUBLE));
	*peers = PointerGetDatum(construct_array(peer_datums, k, UUIDOID,
											 UUID_LEN, false, TYPALIGN_CHAR));
}

/*
 * Record a successful apply: drop the rows, activate the peers, tell
 * applications (NOTIFY wgpeer, one JSON payload per peer), clear the
 * interface's error state (unless it was unregistered meanwhile).
 */
static void
record_success(const char *ifname, Datum ids, Datum peers)
{
	static SPIPlanPtr plan;
	Oid			types[3] = {INT8ARRAYOID, UUIDARRAYOID, TEXTOID};
	Datum		values[3] = {ids, peers, CStringGetTextDatum(ifname)};

	wgpeer_exec_opts(&plan,
					 "WITH applied AS ("
					 "  DELETE FROM wgpeer.queue WHERE change_id = ANY ($1)),"
					 " activated AS ("
					 "  UPDATE wgpeer.peer SET status = 'active'"
					 "  WHERE peer_id = ANY ($2) AND status = 'creating'),"
					 " state AS ("
					 "  INSERT INTO wgpeer.worker_state AS s"
					 "    (interface, last_success_at, failures, retry_at)"
					 "  SELECT $3, now(), 0, NULL"
					 "  WHERE EXISTS (SELECT FROM wgpeer.interface WHERE name = $3)"
					 "  ON CONFLICT (interface) DO UPDATE"
					 "  SET last_success_at = now(), failures = 0, retry_at = NULL)"
					 " SELECT pg_notify('wgpeer', json_build_object("
					 "   'peer_id', p.peer_id, 'user_id', p.user_id,"
					 "   'interface', p.interface,"
					 "   'status', CASE WHEN p.status = 'creating' THEN 'active'"
					 "                  ELSE p.status END)::text)"
					 " FROM wgpeer.peer p WHERE p.peer_id = ANY ($2)",
					 3, types, values, NULL, CURSOR_OPT_CUSTOM_PLAN);
}

/*
 * Record a failed apply: the rows stay, with one more attempt, the error
 * and the next try; the interface backs off exponentially from one second
 * to wgpeer.retry_max (unless it was unregistered meanwhile).
 */
static void
record_failure(const char *ifname, Datum ids, const char *message)
{
	static SPIPlanPtr plan;
	Oid			types[4] = {INT8ARRAYOID, TEXTOID, TEXTOID, INT4OID};
	Datum		values[4] = {ids, CStringGetTextDatum(ifname),
		CStringGetTextDatum(message), Int32GetDatum(wgpeer_retry_max)};

	wgpeer_exec_opts(&plan,
					 "WITH state AS ("
					 "  INSERT INTO wgpeer.worker_state AS s"
					 "    (interface, last_error, last_error_at, failures, retry_at)"
					 "  SELECT $2, $3, now(), 1, now() + interval '1 second'"
					 "  WHERE EXISTS (SELECT FROM wgpeer.interface WHERE name = $2)"
					 "  ON CONFLICT (interface) DO UPDATE"
					 "  SET last_error = $3, last_error_at = now(),"
					 "      failures = s.failures + 1,"
					 "      retry_at = now() + make_interval(secs =>"
					 "        least($4, 2 ^ least(s.failures, 30)))"
					 "  RETURNING retry_at)"
					 " UPDATE wgpeer.queue SET attempts = attempts + 1,"
					 "   last_error = $3, next_attempt_at = (SELECT retry_at FROM state)"
					 " WHERE change_id = ANY ($1)",
					 4, types, values, NULL, CURSOR_OPT_CUSTOM_PLAN);
}

/*
 * One pass.  Returns 0 when the batch was full (call again at once), else
 * the milliseconds until an interface's retry falls due, or -1 when
 * nothing is waiting for a retry.
 */
static long
apply_pass(void)
{
	MemoryContext pass_ctx = AllocSetContextCreate(TopMemoryContext,
												   "wgpeer apply pass",
												   ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(pass_ctx);
	Change	   *changes = NULL;
	Iface	   *ifaces = NULL;
	int			n_ifaces = 0;
	int			n = 0;
	bool		installed;
	long		result = -1;	/* nothing waiting for a retry */
	int		   *rcs;
	bool	   *at_open;

	wgpeer_begin_work("wgpeer: reading the queue");
	installed = wgpeer_installed();
	if (installed)
	{
		Change	   *read_changes;
		Iface	   *read_ifaces;

		/* read in SPI's memory, keep in the pass's: it outlives the xact */
		n = read_batch(&read_changes, &read_ifaces, &n_ifaces);
		changes = MemoryContextAlloc(pass_ctx, sizeof(Change) * (n + 1));
		memcpy(changes, read_changes, sizeof(Change) * (n + 1));
		ifaces = MemoryContextAlloc(pass_ctx, sizeof(Iface) * (n + 1));
		memcpy(ifaces, read_ifaces, sizeof(Iface) * (n + 1));
		for (int k = 0; k < n_ifaces; k++)
			ifaces[k].name = MemoryContextStrdup(pass_ctx, read_ifaces[k].name);
		/* nothing to send: the same transaction says when to look again */
		if (n == 0)
			result = next_retry_ms();
	}
	wgpeer_end_work();
	if (!installed || n == 0)
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(pass_ctx);
		return result;
	}

	/* the kernel, with no transaction open */
	rcs = palloc0(sizeof(int) * n_ifaces);
	at_open = palloc0(sizeof(bool) * n_ifaces);
	for (int k = 0; k < n_ifaces; k++)
	{
		wg_device_change dc = device_change(&ifaces[k], k, changes, n);

		rcs[k] = wgpeer_device_set(&dc, ifaces[k].backend, &at_open[k]);
	}

	wgpeer_begin_work("wgpeer: recording the outcome");
	for (int k = 0; k < n_ifaces; k++)
	{
		Datum		ids;
		Datum		peers;

		batch_arrays(changes, n, k, &ids, &peers);
		if (rcs[k] == 0)
			record_success(ifaces[k].name, ids, peers);
		else
		{
			char	   *message;
			const char *hint;

			wgpeer_describe_failure(rcs[k], at_open[k], ifaces[k].name,
									ifaces[k].backend, &message, &hint);
			record_failure(ifaces[k].name, ids, message);
			ereport(WARNING,
					(errmsg("wgpeer could not apply %d queued changes to \"%s\": %s",
							ifaces[k].n_changes, ifaces[k].name, message),
					 hint ? errhint("%s", hint) : 0));
		}
	}
	result = n >= wgpeer_batch_size ? 0 : next_retry_ms();
	wgpeer_end_work();

	MemoryContextSwitchTo(old);
	MemoryContextDelete(pass_ctx);
	return result;
}

/*
 * The queue task: a pass when a commit queued changes since the last one
 * (the mailbox counts those commits), when an interface's retry falls
 * due, when the last pass left more, or at wgpeer.poll_interval.  On the
 * first call a pass runs at once, for what was queued while the worker
 * was down.
 */
long
wgpeer_apply_due(void)
{
	static TimestampTz apply_at = 0;
	static uint64 seen_queued = 0;
	uint64		queued = wgpeer_commits_changing(CHANGE_QUEUE);
	TimestampTz now = GetCurrentTimestamp();
	long		ms;

	if (queued == seen_queued && now < apply_at)
		return Max(1, (long) ((apply_at - now) / 1000));

	/* read before the pass: a commit during it is seen next time */
	seen_queued = queued;
	ms = apply_pass();
	if (ms == 0)
	{
		apply_at = 0;			/* a full batch: more is waiting */
		return 0;
	}
	if (ms < 0 || ms > wgpeer_poll_interval)
		ms = wgpeer_poll_interval;
	/* from the end of the pass: the retry times were set there */
	apply_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
	return ms;
}
