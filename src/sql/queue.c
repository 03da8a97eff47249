/*
 * queue.c
 *		wg_queue_change(): the one writer of wgpeer.queue, a row trigger on
 *		wgpeer.peer.
 *
 * Every transition of a peer that changes what should be on its interface
 * queues one change, in the transaction that made it: a peer becoming live
 * (created, renewed back from expiry) queues an add, a live peer leaving
 * (revoked, expired) queues the removal of its key, a live peer whose key
 * changed queues the removal of the old key and the addition of the new,
 * a live peer moved to another interface (wg_move_peer(), move.c) the
 * removal from the old interface and the addition to the new, and a live
 * peer whose addresses, routes, preshared key or keepalive changed, or
 * whose expiry moved from the past into the future, queues an add.  A
 * suspended peer's new routes wait for its resume, which queues the add
 * with them.  Anything else (creating -> active, a renewal of a live
 * peer) queues nothing.
 *
 * A restored peer (see restore.c) queues its add only while 'creating'
 * (the queue is not dumped: its add waited there); an active one is on the
 * interface, or is put there by the worker's reconcile when it starts
 * serving the restored database, and other states belong on no interface.
 * Rows that logical replication applies on a node are queued as always.
 *
 * Only peers of interfaces this cluster serves are queued: on the primary
 * those of node '' (itself), on a node those whose node is wgpeer.node.
 * The trigger is enabled ALWAYS, so it also fires when logical replication
 * applies the primary's peer rows on a node: there statement triggers do
 * not fire, so it tells the worker itself (queue and expiry) rather than
 * through wg_tell_worker.
 *
 * A database still at 0.1 has no such trigger: between installing this
 * library and ALTER EXTENSION wgpeer UPDATE, the functions that change
 * peers queue their changes through here, as 0.1 did
 * (wgpeer_queue_untriggered(), wgpeer_expire_untriggered()), so that
 * nothing they did is lost.
 */
#include "sql/sql.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(wg_queue_change);

/* The columns of a peer row the trigger looks at. */
typedef struct PeerRow
{
	Datum		peer_id;
	Datum		interface;
	char	   *ifname;
	char	   *node;
	char	   *status;
	char	   *public_key;
	char	   *address;
	char	   *address6;
	char	   *routes;
	char	   *preshared_key;
	char	   *keepalive;
	bool		has_expiry;
	TimestampTz expires_at;
} PeerRow;

/*
 * The text of column name of tup, or NULL.
 */
static char *
column_text(HeapTuple tup, TupleDesc desc, const char *name)
{
	int			attno = SPI_fnumber(desc, name);

	if (attno <= 0)
		elog(ERROR, "wgpeer: wgpeer.peer has no column \"%s\"", name);
	return SPI_getvalue(tup, desc, attno);
}

/*
 * The columns of a peer row.
 */
static void
read_row(HeapTuple tup, TupleDesc desc, PeerRow *row)
{
	bool		isnull;
	Datum		d;

	row->peer_id = SPI_getbinval(tup, desc, SPI_fnumber(desc, "peer_id"), &isnull);
	row->interface = SPI_getbinval(tup, desc, SPI_fnumber(desc, "interface"),
								   &isnull);
	row->ifname = column_text(tup, desc, "interface");
	row->node = column_text(tup, desc, "node");
	row->status = column_text(tup, desc, "status");
	row->public_key = column_text(tup, desc, "public_key");
	row->address = column_text(tup, desc, "address");
	row->address6 = column_text(tup, desc, "address6");
	row->routes = column_text(tup, desc, "routes");
	row->preshared_key = column_text(tup, desc, "preshared_key");
	row->keepalive = column_text(tup, desc, "persistent_keepalive");
	d = SPI_getbinval(tup, desc, SPI_fnumber(desc, "expires_at"), &isnull);
	row->has_expiry = !isnull;
	row->expires_at = isnull ? 0 : DatumGetTimestampTz(d);
}

/* Is the peer in a status that belongs on its interface? */
static bool
live(const PeerRow *row)
{
	return strcmp(row->status, "creating") == 0 ||
		strcmp(row->status, "active") == 0;
}

/* Do two nullable texts differ? */
static bool
differ(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

/*
 * Append one change to the queue.
 */
static void
queue(const PeerRow *row, const char *op)
{
	static SPIPlanPtr plan;
	Oid			types[4] = {TEXTOID, UUIDOID, TEXTOID, TEXTOID};
	Datum		values[4] = {row->interface, row->peer_id,
		CStringGetTextDatum(op), CStringGetTextDatum(row->public_key)};

	wgpeer_exec(&plan,
				"INSERT INTO wgpeer.queue (interface, peer_id, op, public_key)"
				" VALUES ($1, $2, $3, $4)",
				4, types, values, NULL);
	wgpeer_note_change(CHANGE_QUEUE);
}

/*
 * The changes one transition of a peer queues (see the file comment).
 */
static void
queue_transition(const PeerRow *old, const PeerRow *new)
{
	bool		was = old != NULL && live(old);
	bool		is = new != NULL && live(new);

	if (was && !is)
		queue(old, "remove");
	else if (!was && is)
		queue(new, "add");
	else if (was && is)
	{
		TimestampTz now = GetCurrentTransactionStartTimestamp();
		bool		back_in_time = old->has_expiry && old->expires_at <= now &&
			(!new->has_expiry || new->expires_at > now);

		if (differ(old->public_key, new->public_key) ||
			differ(old->ifname, new->ifname))
		{
			queue(old, "remove");
			queue(new, "add");
		}
		else if (differ(old->address, new->address) ||
				 differ(old->address6, new->address6) ||
				 differ(old->routes, new->routes) ||
				 differ(old->preshared_key, new->preshared_key) ||
				 differ(old->keepalive, new->keepalive) ||
				 back_in_time)
			queue(new, "add");
	}
}

/*
 * wg_queue_change(): AFTER INSERT OR UPDATE ON wgpeer.peer FOR EACH ROW,
 * enabled ALWAYS.
 */
Datum
wg_queue_change(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	PeerRow		old;
	PeerRow		new;
	PeerRow    *oldp = NULL;
	PeerRow    *newp = NULL;
	bool		restored = false;
	const char *here = wgpeer_served_node();

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wg_queue_change() must be called as an AFTER INSERT "
						"OR UPDATE ... FOR EACH ROW trigger on wgpeer.peer")));
	desc = td->tg_relation->rd_att;

	SPI_connect();
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		read_row(td->tg_trigtuple, desc, &new);
		newp = &new;
		/* a restored peer (not a replicated one) that is not 'creating' */
		restored = SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA &&
			strcmp(new.status, "creating") != 0 &&
			wgpeer_row_restored(td->tg_trigtuple, desc, "created_at");
	}
	else
	{
		read_row(td->tg_trigtuple, desc, &old);
		read_row(td->tg_newtuple, desc, &new);
		oldp = &old;
		newp = &new;
	}

	/* the next expiry may have moved */
	if (oldp == NULL || differ(old.status, new.status) ||
		old.has_expiry != new.has_expiry || old.expires_at != new.expires_at)
		wgpeer_note_change(CHANGE_EXPIRY);

	/* only peers of interfaces this cluster serves, and no restored one */
	if (oldp && strcmp(old.node, here) != 0)
		oldp = NULL;
	if (restored || strcmp(new.node, here) != 0)
		newp = NULL;
	queue_transition(oldp, newp);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * Does wgpeer.peer lack the queue trigger (a database still at 0.1, in
 * the upgrade window)?
 */
bool
wgpeer_peer_untriggered(void)
{
	Oid			relid = get_relname_relid("peer",
										  get_namespace_oid("wgpeer", false));
	Relation	rel = table_open(relid, AccessShareLock);
	bool		found = false;

	for (int i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
		found |= strcmp(rel->trigdesc->triggers[i].tgname, "peer_queue") == 0;
	table_close(rel, AccessShareLock);
	return !found;
}

/*
 * Queue op ('add' or 'remove') for the peer peer_id, with its current
 * interface and key, when no trigger does it (see the file comment);
 * otherwise nothing.  Inside SPI_connect().
 */
void
wgpeer_queue_untriggered(Datum peer_id, const char *op)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {UUIDOID, TEXTOID};
	Datum		values[2] = {peer_id, CStringGetTextDatum(op)};

	if (!wgpeer_peer_untriggered())
		return;
	wgpeer_exec(&plan,
				"INSERT INTO wgpeer.queue (interface, peer_id, op, public_key)"
				" SELECT interface, peer_id, $2, public_key FROM wgpeer.peer"
				" WHERE peer_id = $1",
				2, types, values, NULL);
	wgpeer_note_change(CHANGE_QUEUE);
}

/*
 * wg_expire_peers() where no trigger queues (see the file comment): expire
 * every live peer past its expires_at and queue its removal, as 0.1 did;
 * returns how many expired.  Inside SPI_connect().
 */
int
wgpeer_expire_untriggered(void)
{
	static SPIPlanPtr plan;

	wgpeer_exec(&plan,
				"WITH expired AS ("
				"  UPDATE wgpeer.peer SET status = 'expired'"
				"  WHERE status IN ('creating', 'active')"
				"    AND expires_at <= now()"
				"  RETURNING interface, peer_id, public_key)"
				" INSERT INTO wgpeer.queue (interface, peer_id, op, public_key)"
				" SELECT interface, peer_id, 'remove', public_key FROM expired",
				0, NULL, NULL, NULL);
	wgpeer_note_change(CHANGE_QUEUE);
	return (int) SPI_processed;
}
