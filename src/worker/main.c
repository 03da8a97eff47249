/*
 * worker.c
 *		The apply worker's process: registration, settings, its latch in
 *		shared memory, wake-on-commit, and the main loop.
 *
 * One background worker per cluster applies the change queue of one
 * database (wgpeer.database).  It sleeps on its latch; a transaction that
 * queued changes sets that latch when it commits (never when it aborts),
 * so a committed change reaches the interface in milliseconds; it also
 * wakes when the next peer expires (expiry.c), an interface's retry falls
 * due, or every second to notice interfaces that appear or are recreated
 * (reconcile.c).  The poll interval is only a safety net.  What one pass does
 * is in apply.c.
 */
#include "wgpeer.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "libpq/auth.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "tcop/tcopprot.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "capability.h"

/* How long a session waits for the worker to answer a request. */
#define WORKER_ANSWER_TIMEOUT_MS 10000

PG_FUNCTION_INFO_V1(wg_tell_worker);

void		wgpeer_worker_main(Datum arg);

/* settings */
char	   *wgpeer_database = NULL;
int			wgpeer_poll_interval = 10000;	/* ms */
int			wgpeer_batch_size = 10000;
int			wgpeer_retry_max = 300;	/* s */
int			wgpeer_reconcile_interval = 60000;	/* ms */
int			wgpeer_stats_interval = 30000;	/* ms */
char	   *wgpeer_export_dir = NULL;
bool		wgpeer_export_client_configs = false;

/* What backends need to find the worker. */
typedef struct WorkerShared
{
	slock_t		mutex;
	Latch	   *latch;			/* NULL while no worker runs */
	uint64		requested[NUM_WORKER_REQUESTS];	/* tickets handed out */
	uint64		served[NUM_WORKER_REQUESTS];	/* answered up to this ticket */
	uint64		changes[NUM_WORKER_CHANGES];	/* commits changing each */
} WorkerShared;

static WorkerShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

/*
 * Did the current transaction queue a change, or change what the worker
 * looks at only when told?
 */
static bool queued_in_xact = false;
static bool changed_in_xact[NUM_WORKER_CHANGES];

/*
 * Reserve the worker's shared state (called from shmem_request_hook, the
 * only place PostgreSQL 15 allows it).
 */
static void
worker_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerShared)));
}

/*
 * Attach to (and on first use initialise) the worker's shared state.
 */
static void
worker_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("wgpeer worker", sizeof(WorkerShared), &found);
	if (!found)
	{
		SpinLockInit(&shared->mutex);
		shared->latch = NULL;
		memset(shared->requested, 0, sizeof(shared->requested));
		memset(shared->served, 0, sizeof(shared->served));
		memset(shared->changes, 0, sizeof(shared->changes));
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Client backends drop CAP_NET_ADMIN as soon as they start, so no SQL
 * session ever holds it: only the apply worker talks to the kernel.
 */
static void
drop_capability_hook(Port *port, int status)
{
	int			rc;

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if ((rc = wg_drop_net_admin()) < 0)
		ereport(WARNING,
				(errmsg("wgpeer could not drop CAP_NET_ADMIN in this session: %s",
						strerror(-rc))));
}

/*
 * Set the worker's latch, if a worker is running.  The latch pointer is
 * copied under the spinlock and checked, since the worker may be between
 * restarts.
 */
static void
wake_worker(void)
{
	Latch	   *latch;

	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	latch = shared->latch;
	SpinLockRelease(&shared->mutex);
	if (latch)
		SetLatch(latch);
}

/*
 * Ask the worker to do something for this session (read the devices,
 * reconcile) and wait until it has, so a client backend gets the result
 * without holding CAP_NET_ADMIN itself.  Raises an error when no worker
 * serves this database or it does not answer in time.
 */
void
wgpeer_ask_worker(WorkerRequest kind)
{
	uint64		ticket = 0;
	Latch	   *latch = NULL;
	TimestampTz deadline;
	char	   *dbname;

	if (shared == NULL || wgpeer_database == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the wgpeer apply worker is not running"),
				 errdetail("Only the apply worker may read or change WireGuard devices."),
				 errhint("Add wgpeer to shared_preload_libraries and restart.")));
	dbname = get_database_name(MyDatabaseId);
	if (strcmp(dbname, wgpeer_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the wgpeer apply worker serves database \"%s\", not \"%s\"",
						wgpeer_database, dbname),
				 errhint("Set wgpeer.database = '%s' in postgresql.conf and "
						 "restart, or use wgpeer in that database.", dbname)));

	SpinLockAcquire(&shared->mutex);
	latch = shared->latch;
	if (latch)
		ticket = ++shared->requested[kind];
	SpinLockRelease(&shared->mutex);
	if (latch == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the wgpeer apply worker is not running"),
				 errhint("Check the server log: the worker may be restarting "
						 "after an error.")));
	SetLatch(latch);

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   WORKER_ANSWER_TIMEOUT_MS);
	for (;;)
	{
		uint64		served;

		SpinLockAcquire(&shared->mutex);
		served = shared->served[kind];
		SpinLockRelease(&shared->mutex);
		if (served >= ticket)
			break;
		if (GetCurrentTimestamp() > deadline)
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("the wgpeer apply worker did not answer within %d seconds",
							WORKER_ANSWER_TIMEOUT_MS / 1000),
					 errhint("The worker may be busy applying a large batch; try again.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 5, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Worker side: run fn when a request of this kind is pending, then mark
 * every ticket handed out so far as answered.
 */
static void
answer_requests(WorkerRequest kind, void (*fn) (void))
{
	uint64		requested;

	SpinLockAcquire(&shared->mutex);
	requested = shared->requested[kind];
	SpinLockRelease(&shared->mutex);
	if (requested <= shared->served[kind])
		return;
	fn();
	SpinLockAcquire(&shared->mutex);
	shared->served[kind] = requested;
	SpinLockRelease(&shared->mutex);
}

/*
 * Transaction callback, registered once per process: when a transaction
 * commits, count the changes it made that the worker looks for only when
 * told, and wake the worker if it queued changes; forget on abort.
 */
static void
wake_on_commit(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* the lock only for commits that changed something it counts */
			for (int k = 0; k < NUM_WORKER_CHANGES; k++)
				if (changed_in_xact[k] && shared != NULL)
				{
					SpinLockAcquire(&shared->mutex);
					shared->changes[k]++;
					SpinLockRelease(&shared->mutex);
				}
			if (queued_in_xact)
				wake_worker();
			queued_in_xact = false;
			memset(changed_in_xact, 0, sizeof(changed_in_xact));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			queued_in_xact = false;
			memset(changed_in_xact, 0, sizeof(changed_in_xact));
			break;
		default:
			break;
	}
}

/*
 * wg_tell_worker(what) statement trigger: note what this transaction
 * did, for wake_on_commit to pass on when it commits.  'queue' (AFTER
 * INSERT ON wgpeer.queue): it queued changes, so wake the worker.
 * 'expiry' (AFTER INSERT OR UPDATE OF expires_at, status ON wgpeer.peer):
 * it may have moved the next expiry, so the worker looks again
 * (expiry.c) instead of querying every second.  'interfaces' (AFTER
 * INSERT OR UPDATE OR DELETE ON wgpeer.interface): the worker reconciles
 * every interface at once (reconcile.c) instead of at its interval.
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
						"one argument, 'queue', 'expiry' or 'interfaces'")));
	what = trigdata->tg_trigger->tgargs[0];
	if (strcmp(what, "queue") == 0)
		queued_in_xact = true;
	else if (strcmp(what, "expiry") == 0)
		changed_in_xact[CHANGE_EXPIRY] = true;
	else if (strcmp(what, "interfaces") == 0)
		changed_in_xact[CHANGE_INTERFACES] = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("wg_tell_worker() does not know \"%s\"", what),
				 errhint("Pass 'queue', 'expiry' or 'interfaces'.")));
	return PointerGetDatum(NULL);
}

/*
 * How many committed transactions have made a change of this kind since
 * the server started: the worker looks at what it concerns again only
 * when this moves (or its own timer comes).
 */
uint64
wgpeer_commits_changing(WorkerChange kind)
{
	uint64		n;

	SpinLockAcquire(&shared->mutex);
	n = shared->changes[kind];
	SpinLockRelease(&shared->mutex);
	return n;
}

/*
 * Define the worker's settings.  Runs in every process that loads wgpeer;
 * wgpeer.database exists only where wgpeer was preloaded (where a worker
 * can run at all).
 */
void
wgpeer_worker_define_settings(void)
{
	/* a server-start setting can only be defined while preloading */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("wgpeer.database",
								   "Database whose wgpeer queue the apply worker serves.",
								   NULL,
								   &wgpeer_database, "postgres",
								   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.poll_interval",
							"How often the apply worker looks at the queue "
							"without being woken.",
							"A safety net: committed changes wake the worker "
							"at once.",
							&wgpeer_poll_interval, 10000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.batch_size",
							"Most queued changes the apply worker takes at once.",
							NULL,
							&wgpeer_batch_size, 10000, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.retry_max",
							"Longest wait between retries of a failing interface.",
							"Retries back off exponentially from one second "
							"up to this.",
							&wgpeer_retry_max, 300, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.reconcile_interval",
							"How often the apply worker compares every "
							"interface with the database.",
							"Interfaces that appear or are recreated are "
							"reconciled within a second regardless.",
							&wgpeer_reconcile_interval, 60000, 1000, 86400 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.stats_interval",
							"How often the apply worker records handshakes, "
							"endpoints and traffic per peer; 0 turns it off.",
							NULL,
							&wgpeer_stats_interval, 30000, 0, 86400 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomStringVariable("wgpeer.export_dir",
							   "Directory where the apply worker keeps WireGuard "
							   "config files; empty turns export off.",
							   "Per interface, <interface>.conf for \"wg syncconf\".",
							   &wgpeer_export_dir, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("wgpeer.export_client_configs",
							 "Also keep one client config per live peer in "
							 "wgpeer.export_dir.",
							 NULL,
							 &wgpeer_export_client_configs, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/*
 * Hook wgpeer into the server: wake-on-commit in every process, and when
 * preloaded, the worker, its shared memory and the capability drop.
 */
void
wgpeer_worker_init(void)
{
	BackgroundWorker worker;

	RegisterXactCallback(wake_on_commit, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = worker_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = worker_shmem_startup;
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = drop_capability_hook;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "wgpeer");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "wgpeer_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "wgpeer apply worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "wgpeer apply worker");
	RegisterBackgroundWorker(&worker);
}

/*
 * Publish or withdraw this process's latch for the backends.
 */
static void
publish_latch(Latch *latch)
{
	SpinLockAcquire(&shared->mutex);
	shared->latch = latch;
	SpinLockRelease(&shared->mutex);
}

/* on_shmem_exit callback: stop backends from setting a dead latch. */
static void
withdraw_latch(int code, Datum arg)
{
	publish_latch(NULL);
}

/*
 * The worker: connect, publish the latch, then apply what is queued each
 * time it is woken, a retry falls due, or the poll interval passes.
 */
void
wgpeer_worker_main(Datum arg)
{
	TimestampTz apply_at = 0;	/* the next apply pass without a wake-up */
	bool		woken;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(wgpeer_database, NULL, 0);

	publish_latch(MyLatch);
	on_shmem_exit(withdraw_latch, (Datum) 0);
	ereport(LOG,
			(errmsg("wgpeer apply worker started for database \"%s\"",
					wgpeer_database)));
	woken = true;				/* anything queued while we were down */

	for (;;)
	{
		TimestampTz now;
		long		wait_ms;
		long		ms;
		bool		more = false;
		int			rc;

		/* reset first: a commit during the pass sets it again */
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* callers waiting in wg_reconcile() or wg_show() come first */
		answer_requests(REQUEST_RECONCILE, wgpeer_reconcile_now);
		answer_requests(REQUEST_SHOW, wgpeer_sample_devices);

		/* the cheap timers: at most a second away */
		wait_ms = wgpeer_reconcile_due();
		if ((ms = wgpeer_stats_due()) > 0)
			wait_ms = Min(wait_ms, ms);
		if ((ms = wgpeer_expire_due()) == 0)
			more = true;		/* expired some: their removals are queued */
		else if (ms > 0)
			wait_ms = Min(wait_ms, ms);

		/* the queue: when a commit woke us, a retry fell due, or at a poll */
		now = GetCurrentTimestamp();
		if (woken || more || now >= apply_at)
		{
			ms = wgpeer_apply_pending();
			if (ms == 0)
				more = true;	/* a full batch: more is waiting */
			else
			{
				if (ms < 0 || ms > wgpeer_poll_interval)
					ms = wgpeer_poll_interval;
				/* from the end of the pass: the retry times were set there */
				now = GetCurrentTimestamp();
				apply_at = TimestampTzPlusMilliseconds(now, ms);
			}
		}
		if (more)
			continue;
		if (wgpeer_export_due())
			continue;			/* more exported files to write */

		wait_ms = Min(wait_ms, Max(1, (long) ((apply_at - now) / 1000)));
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   wait_ms, PG_WAIT_EXTENSION);
		woken = (rc & WL_LATCH_SET) != 0;
	}
}
