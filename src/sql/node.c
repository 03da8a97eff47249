/*
 * node.c
 *		Node mode on the SQL side: on a node (a VPN server fed by logical
 *		replication from the primary), peers and interfaces are changed only
 *		on the primary; on the primary, which node sent a replicated row.
 */
#include "sql/sql.h"

#include "access/xact.h"
#include "catalog/pg_subscription.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "replication/origin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

/* the subscriptions wg_node_collect_sql() creates: this prefix, the node */
#define COLLECT_PREFIX "wgpeer_from_"

PG_FUNCTION_INFO_V1(wg_require_primary);
PG_FUNCTION_INFO_V1(wg_sending_node);
PG_FUNCTION_INFO_V1(wg_first_in_transaction);

/*
 * Refuse to run function on a node: its changes would never reach the
 * primary, and the next replicated change would overwrite them.  On a
 * physical standby, say that instead.
 */
void
wgpeer_require_primary(const char *function)
{
	const char *node = wgpeer_served_node();

	wgpeer_refuse_on_standby(function);
	if (node[0] != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("%s() cannot run on node \"%s\"", function, node),
				 errdetail("This cluster is a wgpeer node (wgpeer.node = '%s'): "
						   "it serves interfaces the primary assigns to it, "
						   "fed by logical replication.", node),
				 errhint("Call wgpeer.%s() on the primary database.", function)));
}

/*
 * wg_require_primary(function text): wgpeer_require_primary() for the
 * functions written in SQL.
 */
Datum
wg_require_primary(PG_FUNCTION_ARGS)
{
	wgpeer_require_primary(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/*
 * wg_sending_node(): the node whose subscription is applying the current
 * row, for the triggers that check what nodes send (wg_node_row_check).
 * NULL when no replication origin is set up in this session (a local
 * write: the primary's own worker, an admin); '' when the row is being
 * replicated but not by a subscription of this database named
 * wgpeer_from_<node>.
 *
 * A logical replication apply (or table sync) worker sets up the origin
 * of its subscription, named pg_<subscription oid> (pg_<oid>_<relid> for
 * a table sync), before applying anything.  The subscription's name is
 * the primary's own catalog, set by whoever ran wg_node_collect_sql():
 * nothing the node sends, nor any column of the row, can change it.
 */
Datum
wg_sending_node(PG_FUNCTION_ARGS)
{
	char	   *origin = NULL;
	unsigned int subid;
	HeapTuple	tuple;
	text	   *node = NULL;

	if (replorigin_session_origin == InvalidRepOriginId)
		PG_RETURN_NULL();
	if (!replorigin_by_oid(replorigin_session_origin, true, &origin) ||
		sscanf(origin, "pg_%u", &subid) != 1)
		PG_RETURN_TEXT_P(cstring_to_text(""));
	tuple = SearchSysCache1(SUBSCRIPTIONOID, ObjectIdGetDatum((Oid) subid));
	if (HeapTupleIsValid(tuple))
	{
		Form_pg_subscription sub = (Form_pg_subscription) GETSTRUCT(tuple);
		const char *name = NameStr(sub->subname);

		if (sub->subdbid == MyDatabaseId &&
			strncmp(name, COLLECT_PREFIX, strlen(COLLECT_PREFIX)) == 0)
			node = cstring_to_text(name + strlen(COLLECT_PREFIX));
		ReleaseSysCache(tuple);
	}
	PG_RETURN_TEXT_P(node ? node : cstring_to_text(""));
}

/* the keys wg_first_in_transaction() saw in this transaction */
static List *first_seen = NIL;

/*
 * Forget the keys when the transaction ends (their memory, in
 * TopTransactionContext, goes with it).
 */
static void
forget_first_seen(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		first_seen = NIL;
}

/*
 * wg_first_in_transaction(key text): true the first time the current
 * transaction passes key, false after.  wg_node_row_check() writes one
 * node_rejected event per kind of rejection and replicated transaction
 * with it: a node sending thousands of bad rows at once (a sample of a
 * whole interface) must not cost thousands of events, nor a search of the
 * event log per row.
 */
Datum
wg_first_in_transaction(PG_FUNCTION_ARGS)
{
	static bool registered = false;
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ListCell   *lc;
	MemoryContext old;

	if (!registered)
	{
		RegisterXactCallback(forget_first_seen, NULL);
		registered = true;
	}
	foreach(lc, first_seen)
	{
		if (strcmp((const char *) lfirst(lc), key) == 0)
			PG_RETURN_BOOL(false);
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	first_seen = lappend(first_seen, pstrdup(key));
	MemoryContextSwitchTo(old);
	PG_RETURN_BOOL(true);
}
