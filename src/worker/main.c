/*
 * main.c
 *		The apply worker's process: its registration and its main loop.
 *
 * One background worker per cluster serves the database named by
 * wgpeer.database.  It sleeps on its latch; a transaction that queued
 * changes sets that latch when it commits (never when it aborts), so a
 * committed change reaches the interface in milliseconds.  Each pass of
 * the loop walks the task table: every task does what is due and says
 * when it is due again, and the worker sleeps until the earliest of those,
 * a commit or a session's request wakes it, or wgpeer.poll_interval, the
 * safety net, passes.  A task that raises an error backs off alone; the
 * others go on.
 */
#include "worker/worker.h"

#include "access/xact.h"
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

#include "core/capability.h"

PGDLLEXPORT void wgpeer_worker_main(Datum arg);

/*
 * One thing the worker does, with the contract of worker.h, and what
 * wakes it before its time: a count that grows when something happened
 * that the task must see at once (NULL: its time alone).
 */
typedef struct WorkerTask
{
	const char *name;
	long		(*run) (bool woken);
	uint64		(*wakes) (void);
} WorkerTask;

/* When a task is due, and how it fared: after an error it backs off. */
typedef struct TaskState
{
	TimestampTz due_at;			/* runs at or after this; DT_NOEND: when woken */
	uint64		seen;			/* its wakes() when it last ran */
	int			failures;		/* errors in a row */
} TaskState;

/* Passes of the loop, for a task that looks at every one. */
static uint64 passes = 0;

/*
 * What wakes the tasks: commits that changed what a task looks at (the
 * mailbox counts them), sessions' requests, samples, daemons that stopped
 * answering, or every pass.
 */
static uint64
queue_commits(void)
{
	return wgpeer_commits_changing(CHANGE_QUEUE);
}

static uint64
expiry_commits(void)
{
	return wgpeer_commits_changing(CHANGE_EXPIRY);
}

static uint64
interface_commits(void)
{
	return wgpeer_commits_changing(CHANGE_INTERFACES);
}

static uint64
outcome_commits(void)
{
	return wgpeer_commits_changing(CHANGE_OUTCOMES);
}

static uint64
reconcile_requests(void)
{
	uint64		ticket;

	(void) wgpeer_request_pending(REQUEST_RECONCILE, &ticket);
	return ticket;
}

/* speed limits: commits that changed one, and wg_reconcile() (drift) */
static uint64
rate_wakes(void)
{
	return wgpeer_commits_changing(CHANGE_RATES) + reconcile_requests();
}

static uint64
show_requests(void)
{
	uint64		ticket;

	(void) wgpeer_request_pending(REQUEST_SHOW, &ticket);
	return ticket;
}

static uint64
every_pass(void)
{
	return passes;
}

/*
 * Answer the sessions waiting in wg_reconcile(): reconcile every
 * interface now.
 */
static long
answer_reconcile(bool woken)
{
	uint64		ticket;

	if (wgpeer_request_pending(REQUEST_RECONCILE, &ticket))
	{
		wgpeer_reconcile_now();
		wgpeer_request_answered(REQUEST_RECONCILE, ticket);
	}
	return TASK_IDLE;
}

/*
 * Answer the sessions waiting in wg_show(): read every device now.
 */
static long
answer_show(bool woken)
{
	uint64		ticket;

	if (wgpeer_request_pending(REQUEST_SHOW, &ticket))
	{
		wgpeer_sample_devices();
		wgpeer_request_answered(REQUEST_SHOW, ticket);
	}
	return TASK_IDLE;
}

/*
 * The tasks, in the order of each pass: daemons that stopped answering
 * first (one that answers again is used in this same pass), then sessions
 * waiting for an answer, then the timers, expiry before the queue (so the
 * removals it queues go out in the same pass), and the files on disk
 * last.  The export looks on every pass whether the tables it writes from
 * changed (their tuple counters: src/worker/export.c).
 */
static const WorkerTask tasks[] = {
	{"watching unresponsive userspace daemons", wgpeer_daemons_due, wgpeer_daemons_noted},
	{"answering wg_reconcile()", answer_reconcile, reconcile_requests},
	{"answering wg_show()", answer_show, show_requests},
	{"reconciling", wgpeer_reconcile_due, interface_commits},
	{"noticing recreated interfaces", wgpeer_recreated_due, NULL},
	{"sampling the devices", wgpeer_stats_due, NULL},
	{"watching peers", wgpeer_watch_due, wgpeer_samples_taken},
	{"expiring peers", wgpeer_expiry_due, expiry_commits},
	{"applying the queue", wgpeer_apply_due, queue_commits},
	{"exporting config files", wgpeer_export_due, every_pass},
	{"marking what nodes applied", wgpeer_outcomes_due, outcome_commits},
	{"applying speed limits", wgpeer_rates_due, rate_wakes},
};

static TaskState task_state[lengthof(tasks)];

/*
 * Error context: which task the worker was doing when an error came.
 */
static void
task_error_context(void *arg)
{
	errcontext("wgpeer apply worker, %s", ((const WorkerTask *) arg)->name);
}

/* Milliseconds from now until at (at least 1), or TASK_IDLE. */
static long
ms_until(TimestampTz at, TimestampTz now)
{
	if (at == DT_NOEND)
		return TASK_IDLE;
	if (at <= now)
		return 0;
	return (long) Min((at - now + 999) / 1000, (TimestampTz) LONG_MAX - 1);
}

/*
 * Run one task if it is due, or woken before its time by something it
 * must see at once (not while it backs off after an error); returns the
 * milliseconds until it is due again.  The task says when that is,
 * counted from the end of its run: a run that was due sets the time, a
 * run woken early can only bring it forward (an early look must not
 * postpone a periodic one).
 *
 * An error ends the task's transaction, not the worker: it is logged as a
 * WARNING and the task waits one second, doubling with each error in a
 * row up to wgpeer.retry_max, while the other tasks go on (a failing
 * traffic watch must not hold back revocations).  FATAL errors still end
 * the worker, and PostgreSQL restarts it.
 */
static long
run_task(const WorkerTask *task, TaskState *state)
{
	MemoryContext pass_context = CurrentMemoryContext;
	TimestampTz now = GetCurrentTimestamp();
	uint64		wakes = task->wakes ? task->wakes() : state->seen;
	bool		woken = now < state->due_at && wakes != state->seen;
	ErrorContextCallback context;
	volatile long ms;
	TimestampTz next;

	if (now < state->due_at && (!woken || state->failures > 0))
		return ms_until(state->due_at, now);
	/* read before the run: what happens during it wakes the task again */
	state->seen = wakes;
	context.callback = task_error_context;
	context.arg = (void *) task;
	context.previous = error_context_stack;
	error_context_stack = &context;
	PG_TRY();
	{
		ms = task->run(woken);
		state->failures = 0;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		long		backoff = Min(1000L << Min(state->failures, 20),
								  (long) wgpeer_retry_max * 1000L);

		MemoryContextSwitchTo(pass_context);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		state->failures++;
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("wgpeer apply worker: %s failed: %s",
						task->name, edata->message),
				 edata->detail ? errdetail("%s", edata->detail) : 0,
				 errhint("It is tried again in %ld ms; the worker's other "
						 "tasks go on.", backoff)));
		FreeErrorData(edata);
		ms = backoff;
		woken = false;
	}
	PG_END_TRY();
	error_context_stack = context.previous;
	/* an aborted transaction leaves TopMemoryContext current */
	MemoryContextSwitchTo(pass_context);

	now = GetCurrentTimestamp();
	next = ms == TASK_IDLE ? DT_NOEND : TimestampTzPlusMilliseconds(now, ms);
	state->due_at = woken ? Min(state->due_at, next) : next;
	return ms_until(state->due_at, now);
}
/*
 * Register the worker; called from _PG_init while preloading.
 */
void
wgpeer_worker_register(void)
{
	wgpeer_register_bgworker("wgpeer_worker_main", "wgpeer apply worker");
}

/*
 * The worker: connect, publish the latch, then run the tasks on every
 * pass and sleep until the earliest is due again.  Each pass runs in a
 * memory context reset at the start of the next, as pg_cron's loop does:
 * what a task allocates outside its transactions, or leaves behind when
 * an error ends it, does not pile up.
 */
void
wgpeer_worker_main(Datum arg)
{
	MemoryContext pass_context;
	uint32		wait_event;

	/* the postmaster kept CAP_NET_ADMIN dormant for this process alone */
	(void) wg_raise_net_admin();
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(wgpeer_database, NULL, 0);
	wgpeer_pin_search_path();

	/* pg_stat_activity's wait_event while it sleeps (17+) */
	wait_event = wgpeer_wait_event("WgpeerWorkerMain");
	wgpeer_publish_worker_latch(MyLatch);
	ereport(LOG,
			(errmsg("wgpeer apply worker started for database \"%s\"",
					wgpeer_database)));

	/* what a pass allocates outside its transactions goes with the pass */
	pass_context = AllocSetContextCreate(TopMemoryContext,
										 "wgpeer worker pass",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		long		wait_ms;

		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(pass_context);
		MemoryContextSwitchTo(pass_context);
		passes++;

		/* reset first: a commit during the pass sets it again */
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* intervals and settings may have changed: every task looks */
			for (size_t t = 0; t < lengthof(tasks); t++)
				if (task_state[t].failures == 0)
					task_state[t].due_at = 0;
		}

		wait_ms = wgpeer_poll_interval;
		for (size_t t = 0; t < lengthof(tasks); t++)
		{
			long		ms = run_task(&tasks[t], &task_state[t]);

			if (ms < wait_ms)
				wait_ms = ms;
		}
		if (wait_ms <= 0)
			continue;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, wait_event);
	}
}
