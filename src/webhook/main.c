/*
 * main.c
 *		The webhook worker's process: its registration and its main loop.
 *
 * One background worker per cluster, beside the apply worker, serves the
 * database named by wgpeer.database.  It sleeps on its own latch, which a
 * transaction that wrote events (or added a webhook) sets when it commits
 * (src/common/webhook_latch.c), so an event reaches its endpoints within
 * milliseconds of the commit.  Each pass delivers to every endpoint that
 * is due (not waiting out a backoff) until it has nothing left, at most a
 * few batches each so that one busy endpoint does not starve the others;
 * then the worker sleeps until the earliest retry is due, an event
 * commits, or wgpeer.poll_interval, the safety net, passes.
 *
 * Endpoints are served one after the other: a slow one delays the others
 * by at most wgpeer.webhook_timeout per batch, and never the apply worker,
 * which is another process.
 */
#include "webhook/webhook.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

/* Batches one endpoint may send in a pass before the others' turn. */
#define BATCHES_PER_TURN 8

PGDLLEXPORT void wgpeer_webhook_main(Datum arg);

/*
 * Register the webhook worker; called from _PG_init while preloading.
 */
void
wgpeer_webhook_register(void)
{
	wgpeer_register_bgworker("wgpeer_webhook_main", "wgpeer webhook worker");
}

/*
 * The endpoints due now, in id order, and in *wait_ms the milliseconds
 * until the earliest of the others retries (unchanged when none does).
 * Returns NIL when the extension is not installed at this library's
 * version.  The ids are allocated in the caller's context.
 */
static List *
due_webhooks(long *wait_ms)
{
	static SPIPlanPtr plan = NULL;
	MemoryContext caller = CurrentMemoryContext;
	List	   *due = NIL;

	wgpeer_begin_work("wgpeer webhook worker: looking for due webhooks");
	if (wgpeer_installed())
	{
		wgpeer_exec(&plan,
					"SELECT webhook_id, ceil(extract(epoch FROM"
					"   next_attempt_at - clock_timestamp()) * 1000)::int8"
					" FROM wgpeer.webhook ORDER BY webhook_id",
					0, NULL, NULL, NULL);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
														 SPI_tuptable->tupdesc,
														 1, &isnull));
			Datum		ms = SPI_getbinval(SPI_tuptable->vals[r],
										   SPI_tuptable->tupdesc, 2, &isnull);

			if (isnull || DatumGetInt64(ms) <= 0)
			{
				MemoryContext old = MemoryContextSwitchTo(caller);

				due = lappend(due, palloc(sizeof(int64)));
				*(int64 *) llast(due) = id;
				MemoryContextSwitchTo(old);
			}
			else if (DatumGetInt64(ms) < *wait_ms)
				*wait_ms = (long) DatumGetInt64(ms);
		}
	}
	wgpeer_end_work();
	return due;
}

/*
 * One pass: every endpoint that is due gets up to BATCHES_PER_TURN
 * batches.  Returns the milliseconds until the next pass is needed.
 */
static long
deliver_pass(void)
{
	long		wait_ms = wgpeer_poll_interval;
	List	   *due = due_webhooks(&wait_ms);
	ListCell   *lc;

	foreach(lc, due)
	{
		int64		id = *(int64 *) lfirst(lc);

		for (int b = 0; b < BATCHES_PER_TURN; b++)
		{
			long		ms;

			CHECK_FOR_INTERRUPTS();
			ms = wgpeer_webhook_deliver(id);
			if (ms == 0 && b == BATCHES_PER_TURN - 1)
				wait_ms = 0;	/* its turn is over, not its work */
			if (ms != 0)
			{
				if (ms < wait_ms)
					wait_ms = ms;
				break;
			}
		}
	}
	return wait_ms;
}

/*
 * The worker: connect with search_path pinned (src/common/bgworker.c says
 * why), publish the latch, then deliver and sleep.
 * An error ends the pass, not the worker: it is logged and the next pass
 * waits a second, doubling up to wgpeer.webhook_retry_max while errors
 * continue.  Each pass runs in a memory context reset at the next.
 */
void
wgpeer_webhook_main(Datum arg)
{
	MemoryContext pass_context;
	uint32		wait_event;
	volatile int failures = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(wgpeer_database, NULL, 0);
	wgpeer_pin_search_path();
	wgpeer_http_init();

	wait_event = wgpeer_wait_event("WgpeerWebhookMain");
	wgpeer_publish_webhook_latch(MyLatch);
	ereport(LOG,
			(errmsg("wgpeer webhook worker started for database \"%s\"",
					wgpeer_database)));

	pass_context = AllocSetContextCreate(TopMemoryContext,
										 "wgpeer webhook pass",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		volatile long wait_ms;

		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(pass_context);
		MemoryContextSwitchTo(pass_context);

		/* reset first: a commit during the pass sets it again */
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		PG_TRY();
		{
			wait_ms = deliver_pass();
			failures = 0;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(pass_context);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			pgstat_report_activity(STATE_IDLE, NULL);
			wait_ms = Min(1000L << Min(failures, 20),
						  (long) wgpeer_webhook_retry_max * 1000L);
			failures++;
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg("wgpeer webhook worker: delivering failed: %s",
							edata->message),
					 edata->detail ? errdetail("%s", edata->detail) : 0,
					 errhint("It is tried again in %ld ms.", wait_ms)));
			FreeErrorData(edata);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(pass_context);

		if (wait_ms <= 0)
			continue;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, wait_event);
	}
}
