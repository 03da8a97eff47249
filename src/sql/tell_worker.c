/*
 * tell_worker.c
 *		wg_tell_worker(what): the statement trigger through which a
 *		transaction tells the apply worker what it changed; and the refusal
 *		of every call that changes something or asks the worker, on a
 *		standby, which has no worker to tell.
 */
#include "sql/sql.h"

#include "access/xlog.h"
#include "commands/trigger.h"

PG_FUNCTION_INFO_V1(wg_tell_worker);

/*
 * Refuse to run function on a physical standby (a server in recovery).
 * Only the primary changes wgpeer's tables and runs the apply worker (it
 * starts when recovery ends), so a write would fail deep inside with an
 * internal read-only error and a question to the worker would wait for a
 * worker that is not there.  25006, as PostgreSQL's own refusal of writes
 * during recovery, so that clients that fail over on it do here too.
 */
void
wgpeer_refuse_on_standby(const char *function)
{
	if (!RecoveryInProgress())
		return;
	ereport(ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("this server is a standby: only the primary applies changes"),
			 errdetail("%s() changes peers or asks the apply worker, which "
					   "runs on the primary only; this server is in recovery.",
					   function),
			 errhint("Call wgpeer.%s() on the primary (with libpq, connect "
					 "with target_session_attrs=read-write).", function)));
}

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
 * 'rates' (AFTER UPDATE OF down_kbit, up_kbit, rate_slot, address,
 * address6 ON wgpeer.peer): a speed limit to apply, which wakes the worker.
 * 'webhooks' (AFTER INSERT ON wgpeer.webhook): a webhook was added, so the
 * webhook worker (not the apply worker) looks at once.
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
						"one argument, 'queue', 'expiry', 'interfaces', "
						"'outcomes', 'rates' or 'webhooks'")));
	what = trigdata->tg_trigger->tgargs[0];
	if (strcmp(what, "queue") == 0)
		wgpeer_note_change(CHANGE_QUEUE);
	else if (strcmp(what, "expiry") == 0)
		wgpeer_note_change(CHANGE_EXPIRY);
	else if (strcmp(what, "interfaces") == 0)
		wgpeer_note_change(CHANGE_INTERFACES);
	else if (strcmp(what, "outcomes") == 0)
		wgpeer_note_change(CHANGE_OUTCOMES);
	else if (strcmp(what, "rates") == 0)
		wgpeer_note_change(CHANGE_RATES);
	else if (strcmp(what, "webhooks") == 0)
		wgpeer_wake_webhooks_at_commit();
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wg_tell_worker() does not know \"%s\"", what),
				 errhint("Pass 'queue', 'expiry', 'interfaces', 'outcomes', "
						 "'rates' or 'webhooks'.")));
	return PointerGetDatum(NULL);
}
