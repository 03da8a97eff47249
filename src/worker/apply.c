/*
 * apply.c
 *		The apply worker's queue: take the queued changes that are due,
 *		apply them to each interface, and record the outcome.
 *
 * A pass reads a batch in one transaction, talks to the devices with no
 * transaction open, then records the result in a second transaction:
 * applied rows are deleted, their peers become active and a NOTIFY
 * wgpeer tells applications.  One failing change never holds back the
 * others (device/isolate.c): removals go first, a change the device
 * refuses is quarantined with its own error and retried with exponential
 * backoff while every other change goes through, and the device's own
 * settings (private key, listen port, and an AmneziaWG interface's
 * parameters) are applied apart, a failure of theirs recorded in
 * worker_state without holding back any peer; they are sent only when
 * they differ from what the queue last set on that same device
 * (settings_needed(): a recreated device, or a restarted daemon, is a new
 * one and gets them with its first peer change, so that an AmneziaWG
 * device is never left plain WireGuard; reconcile, which reads the
 * device, repairs a hand change), not with every batch.  When
 * the device fails as a whole (gone, daemon stopped, no permission) the
 * rows stay, with the attempt count, the error and the time of the next
 * try (exponential backoff per interface), and other interfaces go on.  A
 * crash between the device call and the second transaction replays the
 * batch, which is harmless: an add replaces the peer's allowed IPs and a
 * removal of an absent peer succeeds.
 *
 * A device peer wgpeer does not manage (one added by hand) is never
 * touched: wgpeer.managed_key lists the keys wgpeer has put on each
 * interface (or an admin adopted with wg_import_peer), removed since or
 * not.  Before it adds a key it does not manage that a client brought (a
 * generated key cannot be anyone else's), or removes one, the worker
 * reads the device: a peer with that key which is not the wgpeer peer cut
 * short or unrecorded by a crash (wg_peer_may_be()) is foreign.  An
 * addition of it is refused (quarantined like any refused change, with an
 * apply_failed event), a removal leaves it there.
 */
#include "worker/worker.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "core/validate.h"
#include "device/diff.h"

/* One queued change, as read from the queue joined with its peer. */
typedef struct Change
{
	int64		change_id;
	pg_uuid_t	peer_id;
	int			iface;			/* index into the pass's interfaces */
	int			slot;			/* its key's peer in the interface's change */
	bool		remove;
	uint8_t		public_key[WG_KEY_LEN];
	bool		has_psk;
	uint8_t		psk[WG_KEY_LEN];
	wg_allowedip *ips;			/* tunnel addresses and routes */
	int			n_ips;
	int			keepalive;
	bool		managed;		/* its key is in wgpeer.managed_key */
	bool		brought;		/* the client brought the key */
	wg_allowedip own;			/* the peer's IPv4 tunnel address, /32 */
} Change;

/* One interface touched by the pass. */
typedef struct Iface
{
	char	   *name;
	bool		has_private_key;
	uint8_t		private_key[WG_KEY_LEN];
	int			listen_port;
	WgBackend	backend;
	bool		has_awg;		/* an AmneziaWG interface: awg is its set */
	wg_awg		awg;
	int			n_changes;
	bool		send_settings;	/* its key and port may not be on the device */
	unsigned int device_id;		/* the device's identity before the pass */
} Iface;

/*
 * What the queue last set on an interface's device itself, and on which
 * device (its identity, wgpeer_device_id()): a batch sends the private
 * key, listen port and AmneziaWG parameters only when they differ from
 * these, or the device is a new one.  A hand change on the device is not seen here; reconcile
 * repairs that drift (it compares with what the device says).
 */
typedef struct SettingsSent
{
	char		name[NAMEDATALEN];	/* hash key: the interface */
	unsigned int device_id;
	bool		has_private_key;
	uint8_t		private_key[WG_KEY_LEN];
	int			listen_port;
	bool		has_awg;
	wg_awg		awg;			/* its I1..I5 in TopMemoryContext */
} SettingsSent;

static HTAB *settings_sent = NULL;

/* What one interface's part of the pass came to. */
typedef struct Outcome
{
	wg_apply_outcome dev;
	int		   *peer_rc;		/* per peer of the interface's change */
	bool	   *foreign;		/* per peer: refused, a peer wgpeer does not
								 * manage holds its key */
	size_t		n_peers;
} Outcome;

/* What screen_foreign() decides for one peer of an interface's change. */
typedef enum Screen
{
	SCREEN_SEND,				/* send it */
	SCREEN_SKIP,				/* a removal to leave out: applied as it is */
	SCREEN_FOREIGN				/* an addition refused: the key is foreign */
} Screen;

/*
 * Execute the queue's read through a plan kept across passes (and built
 * again only when PostgreSQL invalidates it: ANALYZE, DDL), planned with
 * sequential scans, hash joins and merge joins priced out.  A plan made
 * afresh each pass cost ten times its execution, and a generic plan made
 * from the statistics of a nearly empty table would scan the peers of
 * every interface on each pass once there are thousands: every table the
 * read touches has an index on what it is joined or looked up by, so
 * index lookups are right at any size.  (An EXISTS the planner may turn
 * into a hashed subplan, which reads its whole table, carries OFFSET 0,
 * which keeps it a lookup.)  The settings hold only while the
 * statement is planned and run (the GUC nest level is popped after it,
 * or by the transaction's abort).
 */
static void
exec_indexed(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types,
			 Datum *values)
{
	static const char *const off[] = {"enable_seqscan", "enable_bitmapscan",
	"enable_hashjoin", "enable_mergejoin"};
	int			nest = NewGUCNestLevel();

	for (size_t i = 0; i < lengthof(off); i++)
		(void) set_config_option(off[i], "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	wgpeer_exec_opts(plan, sql, nargs, types, values, NULL,
					 CURSOR_OPT_GENERIC_PLAN);
	AtEOXact_GUC(true, nest);
}

/*
 * Read up to wgpeer.batch_size due changes, in queue order, with what the
 * device needs for each.  Interfaces waiting for a retry are skipped
 * whole.  So are all the changes of a key whose latest change is
 * quarantined (refused by the device, waiting for its own retry); a key
 * whose latest change is due comes with its quarantined earlier ones,
 * which the latest supersedes.  So no change ever overtakes an earlier
 * one of the same key.  What it returns is allocated in keep, which
 * outlives the transaction.
 */
static int
read_batch(MemoryContext keep, Change **changes_out, Iface **ifaces_out,
		   int *n_ifaces_out)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(wgpeer_batch_size)};
	Change	   *changes;
	Iface	   *ifaces;
	int			n_ifaces = 0;
	uint64		n;

	exec_indexed(&plan,
				 "SELECT q.change_id, q.peer_id, q.interface, q.op = 'remove',"
				 "  q.public_key, p.preshared_key, " WGPEER_ALLOWED_IPS_SQL ","
				 "  coalesce(p.persistent_keepalive, i.persistent_keepalive, 0),"
				 "  i.private_key, i.listen_port, i.backend,"
				 "  EXISTS (SELECT FROM wgpeer.managed_key m"
				 "    WHERE m.interface = q.interface"
				 "      AND m.public_key = q.public_key OFFSET 0),"
				 "  p.private_key IS NULL,"
				 "  ARRAY[set_masklen(p.address, 32)]::cidr[], i.awg"
				 " FROM wgpeer.queue q"
				 " JOIN wgpeer.peer p ON p.peer_id = q.peer_id"
				 " JOIN wgpeer.interface i ON i.name = q.interface"
				 " LEFT JOIN wgpeer.worker_state s"
				 " ON s.interface = q.interface AND s.node = i.node"
				 " WHERE (s.retry_at IS NULL OR s.retry_at <= now())"
				 "   AND NOT EXISTS (SELECT FROM wgpeer.queue h"
				 "     WHERE h.interface = q.interface"
				 "       AND h.public_key = q.public_key"
				 "       AND h.quarantined_until > now()"
				 "       AND h.change_id >= q.change_id"
				 "       AND NOT EXISTS (SELECT FROM wgpeer.queue l"
				 "         WHERE l.interface = h.interface"
				 "           AND l.public_key = h.public_key"
				 "           AND l.change_id > h.change_id))"
				 " ORDER BY q.change_id LIMIT $1",
				 1, types, values);
	n = SPI_processed;
	changes = MemoryContextAllocZero(keep, sizeof(Change) * (n + 1));
	ifaces = MemoryContextAllocZero(keep, sizeof(Iface) * (n + 1));
	for (uint64 r = 0; r < n; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Change	   *c = &changes[r];
		char	   *ifname = SPI_getvalue(tup, desc, 3);
		char	   *text;
		bool		isnull;
		int			k;
		wg_allowedip *own;
		Datum		awg;

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
			c->n_ips = wgpeer_stored_allowedips(SPI_getbinval(tup, desc, 7, &isnull),
												keep, &c->ips);
			c->keepalive = DatumGetInt32(SPI_getbinval(tup, desc, 8, &isnull));
		}
		c->managed = DatumGetBool(SPI_getbinval(tup, desc, 12, &isnull));
		c->brought = DatumGetBool(SPI_getbinval(tup, desc, 13, &isnull));
		if (wgpeer_stored_allowedips(SPI_getbinval(tup, desc, 14, &isnull),
									 keep, &own) == 1)
			c->own = own[0];

		/* interfaces in order of first appearance */
		for (k = 0; k < n_ifaces && strcmp(ifaces[k].name, ifname) != 0; k++)
			;
		if (k == n_ifaces)
		{
			Iface	   *f = &ifaces[n_ifaces++];

			f->name = MemoryContextStrdup(keep, ifname);
			if ((text = SPI_getvalue(tup, desc, 9)) != NULL)
			{
				wgpeer_stored_key(text, f->private_key);
				f->has_private_key = true;
			}
			f->listen_port = DatumGetInt32(SPI_getbinval(tup, desc, 10, &isnull));
			f->backend = wgpeer_backend(SPI_getvalue(tup, desc, 11));
			/* an AmneziaWG interface's parameters (NULL: WireGuard) */
			awg = SPI_getbinval(tup, desc, 15, &isnull);
			if (!isnull)
			{
				MemoryContext old = MemoryContextSwitchTo(keep);

				wgpeer_awg_effective(DatumGetJsonbP(awg), NULL, &f->awg);
				MemoryContextSwitchTo(old);
				f->has_awg = true;
			}
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
 * Milliseconds until the earliest retry, of an interface that has changes
 * waiting or of a quarantined change (at least 1, also when it is already
 * due), or -1 when nothing is waiting for a retry.
 */
static long
next_retry_ms(void)
{
	static SPIPlanPtr plan;
	bool		isnull;
	Datum		d;

	/* a retry already due counts too: it is 1 ms away, not forgotten */
	wgpeer_exec(&plan,
				"SELECT ceil(extract(epoch FROM least("
				"  (SELECT min(s.retry_at) FROM wgpeer.worker_state s"
				"   WHERE s.retry_at IS NOT NULL"
				"     AND EXISTS (SELECT 1 FROM wgpeer.queue q"
				"                 WHERE q.interface = s.interface)),"
				"  (SELECT min(q.quarantined_until) FROM wgpeer.queue q"
				"   WHERE q.quarantined_until IS NOT NULL)) - now()) * 1000)::int8",
				0, NULL, NULL, NULL);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? -1 : Max(DatumGetInt64(d), 1);
}

/*
 * The device change for one interface: one peer per key, the last change
 * of each key in the batch winning (an add then a removal is a removal),
 * in queue order; each change learns the slot of its key's peer.
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
	ctl.keysize = WG_KEY_LEN;
	ctl.entrysize = WG_KEY_LEN + sizeof(int);
	ctl.hcxt = CurrentMemoryContext;
	last = hash_create("wgpeer batch peers", f->n_changes + 1, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (int i = 0; i < n; i++)
	{
		Change	   *c = &changes[i];
		bool		found;
		char	   *entry;
		wg_peer_change *pc;

		if (c->iface != iface_no)
			continue;
		entry = hash_search(last, c->public_key, HASH_ENTER, &found);
		if (!found)
			memcpy(entry + WG_KEY_LEN, &n_peers, sizeof(int));
		memcpy(&c->slot, entry + WG_KEY_LEN, sizeof(int));
		if (!found)
			n_peers++;
		pc = &peers[c->slot];
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
	dc.listen_port = -1;
	if (f->send_settings)
	{
		dc.has_private_key = f->has_private_key;
		memcpy(dc.private_key, f->private_key, WG_KEY_LEN);
		dc.listen_port = f->has_private_key ? f->listen_port : -1;
		if (f->has_awg)
			dc.awg = &f->awg;
	}
	dc.peers = peers;
	dc.n_peers = n_peers;
	return dc;
}

/*
 * Apply one interface's change, leaving alone the device peers wgpeer
 * does not manage (see the file comment).  The last change of each key
 * decides, as in device_change().  The device is read only when a change
 * needs it: a key not in wgpeer.managed_key that is to be removed, or to
 * be added when the client brought it.  Then a removal whose key is
 * absent, or held by a foreign peer, is left out (and counts as applied);
 * an addition whose key a foreign peer holds is refused.  A device that
 * cannot be read fails as a whole, as when the apply itself fails.
 */
static void
apply_screened(const Iface *f, int iface_no, const Change *changes, int n,
			   const wg_device_change *dc, Outcome *o)
{
	const Change **last = palloc0(sizeof(Change *) * (dc->n_peers + 1));
	Screen	   *screen = palloc0(sizeof(Screen) * (dc->n_peers + 1));
	wg_peer_change *peers = palloc0(sizeof(wg_peer_change) * (dc->n_peers + 1));
	size_t	   *slot_of = palloc0(sizeof(size_t) * (dc->n_peers + 1));
	int		   *sent_rc;
	wg_device_change sent = *dc;
	bool		look = false;
	size_t		m = 0;

	for (int i = 0; i < n; i++)
		if (changes[i].iface == iface_no)
			last[changes[i].slot] = &changes[i];
	for (size_t s = 0; s < dc->n_peers; s++)
		look |= !last[s]->managed && (last[s]->remove || last[s]->brought);
	if (look)
	{
		wg_device	dev;
		bool		at_open;
		int			rc = wgpeer_device_get(f->name, f->backend, &dev, &at_open);

		if (rc < 0)
		{
			o->dev.device_rc = rc;
			o->dev.at_open = at_open;
			return;
		}
		wg_device_sort_peers(&dev);
		for (size_t s = 0; s < dc->n_peers; s++)
		{
			const Change *c = last[s];
			wg_peer_info *p;

			if (c->managed || !(c->remove || c->brought))
				continue;
			p = wg_device_find_peer(&dev, c->public_key);
			if (p != NULL && !wg_peer_may_be(p, &c->own))
				screen[s] = c->remove ? SCREEN_SKIP : SCREEN_FOREIGN;
			else if (p == NULL && c->remove)
				screen[s] = SCREEN_SKIP;
		}
		wg_device_free(&dev);
	}

	for (size_t s = 0; s < dc->n_peers; s++)
	{
		if (screen[s] == SCREEN_SEND)
		{
			peers[m] = dc->peers[s];
			slot_of[m++] = s;
		}
		else if (screen[s] == SCREEN_FOREIGN)
		{
			o->foreign[s] = true;
			o->peer_rc[s] = -EEXIST;
		}
	}
	sent.peers = peers;
	sent.n_peers = m;
	sent_rc = palloc0(sizeof(int) * (m + 1));
	wgpeer_device_apply(&sent, f->backend, sent_rc, &o->dev);
	for (size_t i = 0; i < m; i++)
		o->peer_rc[slot_of[i]] = sent_rc[i];
}

/*
 * Words for an addition refused because a peer wgpeer does not manage
 * holds the key on ifname.
 */
static char *
foreign_message(const Change *c, const char *ifname)
{
	char		key[WG_KEY_B64_SIZE];

	wg_key_to_base64(key, c->public_key);
	return psprintf("public key %s is on interface \"%s\" as a peer wgpeer "
					"does not manage (added by hand?): wgpeer leaves it alone; "
					"adopt it with wgpeer.wg_import_peer() after revoking this "
					"peer, or remove it by hand", key, ifname);
}

/*
 * One interface's changes as SQL arrays: the ids and peer ids of those
 * applied (all of them when applied is NULL), and the ids and errors of
 * those the device refused.
 */
static void
batch_arrays(const Iface *f, Change *changes, int n, int iface_no,
			 const Outcome *o, Datum *ids, Datum *peers, Datum *refused_ids,
			 Datum *refused_errors, int *n_refused)
{
	Datum	   *id_datums = palloc(sizeof(Datum) * (n + 1));
	Datum	   *peer_datums = palloc(sizeof(Datum) * (n + 1));
	Datum	   *refused_datums = palloc(sizeof(Datum) * (n + 1));
	Datum	   *error_datums = palloc(sizeof(Datum) * (n + 1));
	int			k = 0;
	int			r = 0;

	for (int i = 0; i < n; i++)
	{
		Change	   *c = &changes[i];
		int			rc;

		if (c->iface != iface_no)
			continue;
		rc = o ? o->peer_rc[c->slot] : 0;
		if (rc == 0)
		{
			id_datums[k] = Int64GetDatum(c->change_id);
			peer_datums[k] = UUIDPGetDatum(&c->peer_id);
			k++;
		}
		else
		{
			char	   *message;
			const char *hint;

			if (o->foreign[c->slot])
				message = foreign_message(c, f->name);
			else
				wgpeer_describe_failure(rc, false, f->name, f->backend,
										&message, &hint);
			refused_datums[r] = Int64GetDatum(c->change_id);
			error_datums[r] = CStringGetTextDatum(message);
			r++;
		}
	}
	*ids = PointerGetDatum(construct_array(id_datums, k, INT8OID, 8, true,
										   TYPALIGN_DOUBLE));
	*peers = PointerGetDatum(construct_array(peer_datums, k, UUIDOID,
											 UUID_LEN, false, TYPALIGN_CHAR));
	*refused_ids = PointerGetDatum(construct_array(refused_datums, r, INT8OID,
												   8, true, TYPALIGN_DOUBLE));
	*refused_errors = PointerGetDatum(construct_array(error_datums, r, TEXTOID,
													  -1, false, TYPALIGN_INT));
	*n_refused = r;
}

/*
 * Record a successful apply: drop the rows (adding how long each waited
 * since it was queued to the interface's apply_latency histogram, which
 * wg_metrics() serves), activate the peers, tell applications (NOTIFY
 * wgpeer, one JSON payload per peer), clear the interface's error state
 * (unless it was unregistered meanwhile), and record each key added in
 * wgpeer.managed_key.  Only a
 * peer with no change left in the queue becomes active: one renewed or
 * resumed while its removal was being applied has a newer addition
 * queued, and stays 'creating' until that one is on the interface.
 */
static void
record_success(const char *ifname, Datum ids, Datum peers)
{
	static SPIPlanPtr plan;
	Oid			types[3] = {INT8ARRAYOID, UUIDARRAYOID, TEXTOID};
	Datum		values[3] = {ids, peers, CStringGetTextDatum(ifname)};

	wgpeer_exec_opts(&plan,
					 "WITH last AS ("
					 "  SELECT DISTINCT ON (q.public_key) q.public_key, q.op"
					 "  FROM wgpeer.queue q WHERE q.change_id = ANY ($1)"
					 "  ORDER BY q.public_key, q.change_id DESC),"
					 " managed AS ("
					 "  INSERT INTO wgpeer.managed_key (interface, public_key)"
					 "  SELECT $3, l.public_key FROM last l WHERE l.op = 'add'"
					 "  ON CONFLICT DO NOTHING),"
					 " applied AS ("
					 "  DELETE FROM wgpeer.queue WHERE change_id = ANY ($1)"
					 "  RETURNING queued_at),"
					 " waits AS ("
					 "  SELECT greatest(extract(epoch FROM"
					 "    clock_timestamp() - d.queued_at)::float8, 0) AS w"
					 "  FROM applied d),"
					 " latency AS ("
					 "  INSERT INTO wgpeer.apply_latency AS a"
					 "    (interface, bucket_counts, count, sum_seconds)"
					 "  SELECT $3, ARRAY(SELECT count(x.w) FILTER (WHERE x.w <= b.bound)"
					 "    FROM unnest(wgpeer.wg_apply_latency_bounds())"
					 "      WITH ORDINALITY AS b(bound, i) CROSS JOIN waits x"
					 "    GROUP BY b.i ORDER BY b.i),"
					 "   (SELECT count(*) FROM waits), (SELECT sum(w) FROM waits)"
					 "  WHERE EXISTS (SELECT FROM waits)"
					 "    AND EXISTS (SELECT FROM wgpeer.interface WHERE name = $3)"
					 "  ON CONFLICT (interface, node) DO UPDATE"
					 "  SET bucket_counts = ARRAY(SELECT u.x + u.y"
					 "    FROM unnest(a.bucket_counts, EXCLUDED.bucket_counts)"
					 "      WITH ORDINALITY AS u(x, y, i) ORDER BY u.i),"
					 "   count = a.count + EXCLUDED.count,"
					 "   sum_seconds = a.sum_seconds + EXCLUDED.sum_seconds),"
					 " activated AS ("
					 "  UPDATE wgpeer.peer p SET status = 'active'"
					 "  WHERE p.peer_id = ANY ($2) AND p.status = 'creating'"
					 "    AND NOT EXISTS (SELECT FROM wgpeer.queue q"
					 "      WHERE q.peer_id = p.peer_id AND q.change_id <> ALL ($1))"
					 "  RETURNING p.peer_id),"
					 " state AS ("
					 "  INSERT INTO wgpeer.worker_state AS s"
					 "    (interface, last_success_at, failures, retry_at)"
					 "  SELECT $3, now(), 0, NULL"
					 "  WHERE EXISTS (SELECT FROM wgpeer.interface WHERE name = $3)"
					 "  ON CONFLICT (interface, node) DO UPDATE"
					 "  SET last_success_at = now(), failures = 0, retry_at = NULL)"
					 " SELECT pg_notify('wgpeer', json_build_object("
					 "   'peer_id', p.peer_id, 'user_id', p.user_id,"
					 "   'interface', p.interface,"
					 "   'status', CASE WHEN p.peer_id IN (SELECT peer_id FROM activated)"
					 "                  THEN 'active' ELSE p.status END)::text)"
					 " FROM wgpeer.peer p WHERE p.peer_id = ANY ($2)",
					 3, types, values, NULL, CURSOR_OPT_CUSTOM_PLAN);
}

/*
 * On a node: tell the primary what became of its peers, through
 * wgpeer.peer_outcome (replicated to the primary, where a trigger marks
 * them active, as record_success() does on the primary itself).  A peer
 * whose changes applied_ids were applied, and that has no change left in
 * the queue, is 'applied' when the last of them was an addition and
 * 'removed' when it was a removal; the refused changes, with their
 * errors, make their peers 'refused'.
 */
static void
record_outcomes(Datum applied_ids, Datum refused_ids, Datum refused_errors)
{
	static SPIPlanPtr plan;
	Oid			types[3] = {INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID};
	Datum		values[3] = {applied_ids, refused_ids, refused_errors};

	wgpeer_exec_opts(&plan,
					 "WITH last AS ("
					 "  SELECT DISTINCT ON (q.peer_id) q.peer_id, q.op"
					 "  FROM wgpeer.queue q WHERE q.change_id = ANY ($1)"
					 "  ORDER BY q.peer_id, q.change_id DESC)"
					 " INSERT INTO wgpeer.peer_outcome AS o"
					 "  (peer_id, interface, public_key, outcome, at, error)"
					 " SELECT p.peer_id, p.interface, p.public_key,"
					 "   CASE WHEN l.op = 'add' THEN 'applied' ELSE 'removed' END,"
					 "   now(), NULL"
					 " FROM last l JOIN wgpeer.peer p USING (peer_id)"
					 " WHERE NOT EXISTS (SELECT FROM wgpeer.queue q"
					 "   WHERE q.peer_id = p.peer_id AND q.change_id <> ALL ($1))"
					 " UNION ALL"
					 " SELECT DISTINCT ON (q.peer_id) q.peer_id, q.interface,"
					 "   q.public_key, 'refused', now(), r.error"
					 " FROM unnest($2::int8[], $3::text[]) AS r(change_id, error)"
					 " JOIN wgpeer.queue q ON q.change_id = r.change_id"
					 " ON CONFLICT (peer_id, node) DO UPDATE"
					 " SET interface = EXCLUDED.interface, public_key = EXCLUDED.public_key,"
					 "     outcome = EXCLUDED.outcome, at = EXCLUDED.at, error = EXCLUDED.error",
					 3, types, values, NULL, CURSOR_OPT_CUSTOM_PLAN);
}

/*
 * Quarantine the changes the device refused: each keeps its own error
 * and waits for its own retry, backing off exponentially from one second
 * to wgpeer.retry_max, while every other change goes through.  The first
 * refusal of each writes an apply_failed event for its peer.  Returns
 * how many live peers the interface has, for the warning.
 */
static int64
record_refused(const char *ifname, Datum ids, Datum errors)
{
	static SPIPlanPtr plan;
	Oid			types[4] = {INT8ARRAYOID, TEXTARRAYOID, INT4OID, TEXTOID};
	Datum		values[4] = {ids, errors, Int32GetDatum(wgpeer_retry_max),
	CStringGetTextDatum(ifname)};
	bool		isnull;

	wgpeer_exec_opts(&plan,
					 "WITH refused AS ("
					 "  UPDATE wgpeer.queue q SET attempts = q.attempts + 1,"
					 "    last_error = r.error,"
					 "    quarantined_until = now() + make_interval(secs =>"
					 "      least($3, 2 ^ least(q.attempts, 30))),"
					 "    next_attempt_at = now() + make_interval(secs =>"
					 "      least($3, 2 ^ least(q.attempts, 30)))"
					 "  FROM unnest($1::int8[], $2::text[]) AS r(change_id, error)"
					 "  WHERE q.change_id = r.change_id"
					 "  RETURNING q.peer_id, q.attempts, r.error),"
					 /* the first refusal of a change is news, its retries not */
					 " logged AS ("
					 "  INSERT INTO wgpeer.event (kind, peer_id, user_id, interface,"
					 "    detail)"
					 "  SELECT 'apply_failed', p.peer_id, p.user_id, p.interface,"
					 "    jsonb_build_object('error', r.error)"
					 "  FROM refused r JOIN wgpeer.peer p USING (peer_id)"
					 "  WHERE r.attempts = 1 AND current_setting('wgpeer.node') = ''"
					 "  ORDER BY p.peer_id)"
					 " SELECT count(*) FROM wgpeer.peer"
					 " WHERE interface = $4 AND status IN ('creating', 'active')",
					 4, types, values, NULL, CURSOR_OPT_CUSTOM_PLAN);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Record a failure of the device as a whole: the rows stay, with one more
 * attempt, the error and the next try; the interface backs off
 * exponentially from one second to wgpeer.retry_max (unless it was
 * unregistered meanwhile).  The first failure in a row writes an
 * apply_failed event for the interface.
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
					 "  ON CONFLICT (interface, node) DO UPDATE"
					 "  SET last_error = $3, last_error_at = now(),"
					 "      failures = s.failures + 1,"
					 "      retry_at = now() + make_interval(secs =>"
					 "        least($4, 2 ^ least(s.failures, 30)))"
					 "  RETURNING retry_at, failures),"
					 /* an interface that starts failing is news, its retries not */
					 " logged AS ("
					 "  INSERT INTO wgpeer.event (kind, interface, detail)"
					 "  SELECT 'apply_failed', $2, jsonb_build_object('error', $3,"
					 "    'changes', cardinality($1))"
					 "  FROM state WHERE failures = 1"
					 "    AND current_setting('wgpeer.node') = '')"
					 " UPDATE wgpeer.queue SET attempts = attempts + 1,"
					 "   last_error = $3, next_attempt_at = (SELECT retry_at FROM state)"
					 " WHERE change_id = ANY ($1)",
					 4, types, values, NULL, CURSOR_OPT_CUSTOM_PLAN);
}

/*
 * Warn about the changes of ifname the device refused, naming the limit
 * of its backend when the interface has that many live peers.
 */
static void
warn_refused(const Iface *f, int n_refused, int n_changes, Datum errors,
			 int64 live)
{
	ArrayType  *arr = DatumGetArrayTypeP(errors);
	Datum	   *texts;
	int			n;
	bool		uapi = wgpeer_uses_uapi(f->name, f->backend);
	int64		limit = uapi ? WG_UAPI_MAX_PEERS : WG_KERNEL_MAX_PEERS;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &texts, NULL, &n);
	if (live >= limit)
		ereport(WARNING,
				(errmsg("wgpeer could not add %d peers to \"%s\": the interface is full",
						n_refused, f->name),
				 errdetail("%s holds at most %lld peers per device and %lld are "
						   "live on \"%s\"; the device said: %s.",
						   uapi ? "A userspace WireGuard daemon (wireguard-go)" :
						   "Kernel WireGuard", (long long) limit,
						   (long long) live, f->name,
						   n > 0 ? TextDatumGetCString(texts[0]) : "?"),
				 errhint("Revoke peers or serve some from another interface; "
						 "the refused peers are retried with backoff.")));
	else
		ereport(WARNING,
				(errmsg("wgpeer could not apply %d of %d queued changes to \"%s\": %s",
						n_refused, n_changes, f->name,
						n > 0 ? TextDatumGetCString(texts[0]) : "?"),
				 errdetail("The other changes were applied; the refused ones "
						   "are retried with backoff."),
				 errhint("See last_error in wgpeer.queue for each, and "
						 "quarantined in wgpeer.interface_status.")));
}

/*
 * Record in worker_state whether ifname's device took its own settings
 * (private key, listen port, and with awg its AmneziaWG parameters),
 * apart from the peers; warn when a new error appears.  Both the queue
 * and reconcile set them.
 */
void
wgpeer_record_settings(const char *ifname, WgBackend backend, int listen_port,
					   bool awg, int rc)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = {' ', 'n'};
	char	   *message = NULL;
	const char *hint = NULL;

	values[0] = CStringGetTextDatum(ifname);
	values[1] = (Datum) 0;
	if (rc < 0)
	{
		wgpeer_describe_failure(rc, false, ifname, backend, &message, &hint);
		values[1] = CStringGetTextDatum(message);
		nulls[1] = ' ';
	}
	/* a row for an interface only reconcile has touched yet, too */
	wgpeer_exec_opts(&plan,
					 "INSERT INTO wgpeer.worker_state AS s"
					 "  (interface, settings_error, settings_error_at)"
					 " SELECT $1, $2, CASE WHEN $2 IS NULL THEN NULL ELSE now() END"
					 " WHERE $2 IS NOT NULL"
					 "   OR EXISTS (SELECT FROM wgpeer.worker_state WHERE interface = $1)"
					 " ON CONFLICT (interface, node) DO UPDATE"
					 " SET settings_error = $2,"
					 "     settings_error_at = CASE WHEN $2 IS NULL THEN NULL"
					 "                              ELSE now() END"
					 " WHERE s.settings_error IS DISTINCT FROM $2",
					 2, types, values, nulls, CURSOR_OPT_CUSTOM_PLAN);
	if (rc < 0 && SPI_processed > 0)
		ereport(WARNING,
				(errmsg("wgpeer could not set the private key%s and listen "
						"port %d of \"%s\": %s",
						awg ? ", AmneziaWG parameters" : "", listen_port,
						ifname, message),
				 errdetail("Peer changes are applied regardless."),
				 errhint("%s", hint ? hint :
						 "Choose a free port: UPDATE wgpeer.interface SET listen_port = ...")));
}

/*
 * Key-share lock ifname's row for the rest of the transaction, so that it
 * cannot be unregistered while its outcome is recorded; false when
 * wg_remove_interface() holds it now (waiting for it instead, while it
 * waits for the queue rows this transaction is about to touch, would
 * deadlock).
 */
static bool
interface_held(const char *ifname)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(ifname)};

	wgpeer_exec(&plan,
				"SELECT 1 FROM wgpeer.interface WHERE name = $1"
				" FOR KEY SHARE SKIP LOCKED",
				1, types, values, NULL);
	return SPI_processed > 0;
}

/*
 * The entry of settings_sent for ifname, created when create is true (the
 * table itself on first use); NULL when there is none, or the name does
 * not fit a key (such an interface always gets its settings sent).
 */
static SettingsSent *
settings_entry(const char *ifname, bool create)
{
	SettingsSent *e;
	bool		found;

	if (strlen(ifname) >= NAMEDATALEN)
		return NULL;
	if (settings_sent == NULL)
	{
		HASHCTL		ctl;

		if (!create)
			return NULL;
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(SettingsSent);
		settings_sent = hash_create("wgpeer device settings sent", 16, &ctl,
									HASH_ELEM | HASH_STRINGS);
	}
	e = hash_search(settings_sent, ifname, create ? HASH_ENTER : HASH_FIND,
					&found);
	if (e != NULL && !found)
		memset((char *) e + NAMEDATALEN, 0, sizeof(SettingsSent) - NAMEDATALEN);
	return e;
}

/*
 * Whether f's device needs its private key, listen port and AmneziaWG
 * parameters sent with this batch: unless the queue set these very values
 * on this very device before (a recreated device, or a daemon restarted,
 * has a new identity), they may be missing.  Notes the device's identity
 * in f.
 */
static bool
settings_needed(Iface *f)
{
	SettingsSent *e = settings_entry(f->name, false);

	f->device_id = wgpeer_device_id(f->name, f->backend);
	if (!f->has_private_key && !f->has_awg)
		return false;
	if (e == NULL || e->device_id == 0 || e->device_id != f->device_id ||
		e->has_private_key != f->has_private_key || e->has_awg != f->has_awg)
		return true;
	if (f->has_private_key &&
		(e->listen_port != f->listen_port ||
		 memcmp(e->private_key, f->private_key, WG_KEY_LEN) != 0))
		return true;
	return f->has_awg && !wg_awg_equal(&e->awg, &f->awg);
}

/*
 * Keep a copy of src in dst, an entry of settings_sent, its signature
 * packets in TopMemoryContext (dst's previous ones freed).
 */
static void
settings_keep_awg(wg_awg *dst, const wg_awg *src)
{
	for (int k = 0; k < WG_AWG_I_COUNT; k++)
		if (dst->i[k] != NULL)
			pfree((char *) dst->i[k]);
	*dst = *src;
	for (int k = 0; k < WG_AWG_I_COUNT; k++)
		if (src->i[k] != NULL)
			dst->i[k] = MemoryContextStrdup(TopMemoryContext, src->i[k]);
}

/*
 * After f's batch: remember the settings the device took, or forget what
 * was known of it when the device failed or refused them (so the next
 * batch sends them again).
 */
static void
settings_done(const Iface *f, const Outcome *o)
{
	SettingsSent *e;

	if (o->dev.device_rc < 0 || o->dev.settings_rc < 0)
	{
		wg_awg		none;

		if ((e = settings_entry(f->name, false)) == NULL)
			return;
		memset(&none, 0, sizeof(none));
		settings_keep_awg(&e->awg, &none);
		(void) hash_search(settings_sent, f->name, HASH_REMOVE, NULL);
		return;
	}
	if (!f->send_settings || (e = settings_entry(f->name, true)) == NULL)
		return;
	e->device_id = f->device_id;
	e->has_private_key = f->has_private_key;
	memcpy(e->private_key, f->private_key, WG_KEY_LEN);
	e->listen_port = f->listen_port;
	e->has_awg = f->has_awg;
	if (f->has_awg)
		settings_keep_awg(&e->awg, &f->awg);
}

/*
 * One pass.  Returns 0 when the batch was full (call again at once), else
 * the milliseconds until a retry falls due, or -1 when nothing is waiting
 * for a retry.
 */
static long
apply_pass(void)
{
	/* the worker's pass context (main.c), reset after the pass */
	MemoryContext pass_ctx = CurrentMemoryContext;
	Change	   *changes = NULL;
	Iface	   *ifaces = NULL;
	int			n_ifaces = 0;
	int			n = 0;
	bool		installed;
	long		result = -1;	/* nothing waiting for a retry */
	Outcome    *outcomes;

	wgpeer_begin_work("wgpeer: reading the queue");
	installed = wgpeer_installed();
	if (installed)
	{
		/* read in SPI's memory, kept in the pass's: it outlives the xact */
		n = read_batch(pass_ctx, &changes, &ifaces, &n_ifaces);
		/* nothing to send: the same transaction says when to look again */
		if (n == 0)
			result = next_retry_ms();
	}
	wgpeer_end_work();
	if (!installed || n == 0)
		return result;

	/* the devices, with no transaction open */
	outcomes = palloc0(sizeof(Outcome) * n_ifaces);
	for (int k = 0; k < n_ifaces; k++)
	{
		wg_device_change dc;

		ifaces[k].send_settings = settings_needed(&ifaces[k]);
		dc = device_change(&ifaces[k], k, changes, n);

		outcomes[k].n_peers = dc.n_peers;
		outcomes[k].peer_rc = palloc0(sizeof(int) * (dc.n_peers + 1));
		outcomes[k].foreign = palloc0(sizeof(bool) * (dc.n_peers + 1));
		apply_screened(&ifaces[k], k, changes, n, &dc, &outcomes[k]);
		settings_done(&ifaces[k], &outcomes[k]);
	}

	wgpeer_begin_work("wgpeer: recording the outcome");
	for (int k = 0; k < n_ifaces; k++)
	{
		Iface	   *f = &ifaces[k];
		Outcome    *o = &outcomes[k];
		Datum		ids;
		Datum		peers;
		Datum		refused_ids;
		Datum		refused_errors;
		int			n_refused;

		/* one being unregistered takes its rows with it: leave them */
		if (!interface_held(f->name))
			continue;
		if (o->dev.device_rc < 0)
		{
			char	   *message;
			const char *hint;

			batch_arrays(f, changes, n, k, NULL, &ids, &peers, &refused_ids,
						 &refused_errors, &n_refused);
			wgpeer_describe_failure(o->dev.device_rc, o->dev.at_open, f->name,
									f->backend, &message, &hint);
			record_failure(f->name, ids, message);
			/* a daemon that stopped answering had its WARNING then */
			if (!wgpeer_device_unresponsive(f->name))
				ereport(WARNING,
						(errmsg("wgpeer could not apply %d queued changes to \"%s\": %s",
								f->n_changes, f->name, message),
						 hint ? errhint("%s", hint) : 0));
			continue;
		}
		batch_arrays(f, changes, n, k, o, &ids, &peers, &refused_ids,
					 &refused_errors, &n_refused);
		if (wgpeer_served_node()[0] != '\0')
			record_outcomes(ids, refused_ids, refused_errors);
		record_success(f->name, ids, peers);
		if (n_refused > 0)
			warn_refused(f, n_refused, f->n_changes, refused_errors,
						 record_refused(f->name, refused_ids, refused_errors));
		if (f->send_settings)
			wgpeer_record_settings(f->name, f->backend, f->listen_port,
								   f->has_awg, o->dev.settings_rc);
	}
	result = n >= wgpeer_batch_size ? 0 : next_retry_ms();
	wgpeer_end_work();
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
wgpeer_apply_due(bool woken)
{
	long		ms = apply_pass();

	if (ms < 0 || ms > wgpeer_poll_interval)
		return wgpeer_poll_interval;
	return ms;
}
