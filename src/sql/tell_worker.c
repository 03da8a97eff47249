/*
 * tell_worker.c
 *		wg_tell_worker(what): the statement trigger through which a
 *		transaction tells the apply worker what it changed.
 */
#include "sql/sql.h"

#include "commands/trigger.h"

PG_FUNCTION_INFO_V1(wg_tell_worker);

/*
 * Note what this transaction did, for the mailbox to pass on when it
 * commits.  'queue' (AFTER INSERT ON wgpeer.queue): it queued changes, so
 * wake the worker.  'expiry' (AFTER INSERT OR UPDATE OF expires_at, status
 * ON wgpeer.peer): it may have moved the next expiry, so the worker looks
 * again instead of querying every second.  'interfaces' (AFTER INSERT OR
 * UPDATE OR DELETE ON wgpeer.interface): the worker reconciles every
 * interface at once instead of at its interval.  'outcomes' (a row trigger
 * on wgpeer.peer_outcome, enabled for replication): a node's outcomes
 * arrived, so the primary's worker looks for peers to mark active.
 */
Datum
wg_tell_worker(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *what;

	if (!CALLED_AS_TRIGGER(fcinfo) || trigdata->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wg_tell_worker() must be called as a trigger with "
						"one argument, 'queue', 'expiry', 'interfaces' or "
						"'outcomes'")));
	what = trigdata->tg_trigger->tgargs[0];
	if (strcmp(what, "queue") == 0)
		wgpeer_note_change(CHANGE_QUEUE);
	else if (strcmp(what, "expiry") == 0)
		wgpeer_note_change(CHANGE_EXPIRY);
	else if (strcmp(what, "interfaces") == 0)
		wgpeer_note_change(CHANGE_INTERFACES);
	else if (strcmp(what, "outcomes") == 0)
		wgpeer_note_change(CHANGE_OUTCOMES);
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wg_tell_worker() does not know \"%s\"", what),
				 errhint("Pass 'queue', 'expiry', 'interfaces' or 'outcomes'.")));
	return PointerGetDatum(NULL);
}
