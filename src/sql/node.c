/*
 * node.c
 *		Node mode on the SQL side: on a node (a VPN server fed by logical
 *		replication from the primary), peers and interfaces are changed only
 *		on the primary.
 */
#include "sql/sql.h"

#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(wg_require_primary);

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
