/*
 * mailbox.c
 *		How sessions and the apply worker reach each other: the worker's
 *		latch, requests and their answers in shared memory, wake-on-commit,
 *		and counters of commits that changed what the worker watches.
 *
 * A transaction notes what it changed (wgpeer_note_change(), called by the
 * wg_tell_worker triggers); when it commits, a transaction callback counts
 * it in shared memory and, when it queued changes, sets the worker's
 * latch.  An aborted transaction counts nothing and wakes nobody.  The
 * worker compares the counters with what it saw last, so it looks at
 * expiries or interfaces again only when a commit changed them.
 *
 * A session that needs the worker to act now (wg_show(), wg_reconcile())
 * takes a ticket, sets the worker's latch and sleeps on a condition
 * variable until the worker has served its ticket.
 */
#include "common/common.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

/* How long a session waits for the worker to answer a request. */
#define WORKER_ANSWER_TIMEOUT_MS 10000

/* What backends need to find the worker. */
typedef struct Mailbox
{
	slock_t		mutex;
	Latch	   *latch;			/* NULL while no worker runs */
	uint64		requested[NUM_WORKER_REQUESTS]; /* tickets handed out */
	uint64		served[NUM_WORKER_REQUESTS];	/* answered up to this ticket */
	uint64		changes[NUM_WORKER_CHANGES];	/* commits changing each */
	ConditionVariable answered; /* broadcast when a ticket is served */
} Mailbox;

static Mailbox *mailbox = NULL;

/* What a session waiting for the worker's answer shows (17+), made once */
static uint32 answer_wait_event = 0;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* What the current transaction changed, for wake_on_commit. */
static bool changed_in_xact[NUM_WORKER_CHANGES];

/*
 * Reserve the mailbox (called from shmem_request_hook, the only place
 * PostgreSQL 15 allows it).
 */
static void
mailbox_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(Mailbox)));
}

/*
 * Attach to (and on first use initialise) the mailbox.
 */
static void
mailbox_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	mailbox = ShmemInitStruct("wgpeer mailbox", sizeof(Mailbox), &found);
	if (!found)
	{
		memset(mailbox, 0, sizeof(Mailbox));
		SpinLockInit(&mailbox->mutex);
		ConditionVariableInit(&mailbox->answered);
	}
	LWLockRelease(AddinShmemInitLock);
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

	if (mailbox == NULL)
		return;
	SpinLockAcquire(&mailbox->mutex);
	latch = mailbox->latch;
	SpinLockRelease(&mailbox->mutex);
	if (latch)
		SetLatch(latch);
}

/*
 * Transaction callback, registered once per process: when a transaction
 * commits, count the changes it noted and wake the worker if it queued
 * some; forget them on abort.
 */
static void
wake_on_commit(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* the lock only for commits that changed something counted */
			for (int k = 0; k < NUM_WORKER_CHANGES; k++)
				if (changed_in_xact[k] && mailbox != NULL)
				{
					SpinLockAcquire(&mailbox->mutex);
					mailbox->changes[k]++;
					SpinLockRelease(&mailbox->mutex);
				}
			if (changed_in_xact[CHANGE_QUEUE])
				wake_worker();
			memset(changed_in_xact, 0, sizeof(changed_in_xact));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			memset(changed_in_xact, 0, sizeof(changed_in_xact));
			break;
		default:
			break;
	}
}

/*
 * Hook the mailbox into the server: wake-on-commit in every process, and
 * when preloaded, the shared memory it lives in.
 */
void
wgpeer_mailbox_init(void)
{
	RegisterXactCallback(wake_on_commit, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = mailbox_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = mailbox_shmem_startup;
}

/*
 * Tell the session, the first time it queues changes, when no worker
 * serves this database (unless wgpeer.notice_unserved is off): the
 * changes stay queued until one does.  Without it a wrong wgpeer.database
 * looks like a worker that never applies anything.
 */
static void
notice_unserved(void)
{
	static bool told = false;
	char	   *dbname;

	if (told || wgpeer_database == NULL || !wgpeer_notice_unserved)
		return;
	told = true;
	dbname = get_database_name(MyDatabaseId);
	if (dbname != NULL && strcmp(dbname, wgpeer_database) == 0)
		return;
	ereport(NOTICE,
			(errmsg("the wgpeer apply worker serves database \"%s\", not \"%s\": "
					"changes queued here reach no WireGuard interface",
					wgpeer_database, dbname ? dbname : "?"),
			 errhint("Set wgpeer.database = '%s' in postgresql.conf and "
					 "restart, or use wgpeer in database \"%s\".",
					 dbname ? dbname : "?", wgpeer_database)));
}

/*
 * Note that the current transaction made a change of this kind; the
 * worker hears of it when the transaction commits.
 */
void
wgpeer_note_change(WorkerChange kind)
{
	if (kind == CHANGE_QUEUE && !changed_in_xact[kind] && !wgpeer_am_bgworker())
		notice_unserved();
	changed_in_xact[kind] = true;
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

	SpinLockAcquire(&mailbox->mutex);
	n = mailbox->changes[kind];
	SpinLockRelease(&mailbox->mutex);
	return n;
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

	if (mailbox == NULL || wgpeer_database == NULL)
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

	SpinLockAcquire(&mailbox->mutex);
	latch = mailbox->latch;
	if (latch)
		ticket = ++mailbox->requested[kind];
	SpinLockRelease(&mailbox->mutex);
	if (latch == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the wgpeer apply worker is not running"),
				 errhint("Check the server log: the worker may be restarting "
						 "after an error.")));
	SetLatch(latch);

	if (answer_wait_event == 0)
		answer_wait_event = wgpeer_wait_event("WgpeerWorkerAnswer");
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   WORKER_ANSWER_TIMEOUT_MS);
	ConditionVariablePrepareToSleep(&mailbox->answered);
	for (;;)
	{
		uint64		served;
		long		left;

		SpinLockAcquire(&mailbox->mutex);
		served = mailbox->served[kind];
		SpinLockRelease(&mailbox->mutex);
		if (served >= ticket)
			break;
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (left <= 0)
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("the wgpeer apply worker did not answer within %d seconds",
							WORKER_ANSWER_TIMEOUT_MS / 1000),
					 errhint("The worker may be busy applying a large batch; try again.")));
		}
		(void) ConditionVariableTimedSleep(&mailbox->answered, left,
										   answer_wait_event);
	}
	ConditionVariableCancelSleep();
}

/*
 * Worker side: is a request of this kind waiting?  *ticket is the last
 * ticket handed out, to pass to wgpeer_request_answered() once done.
 */
bool
wgpeer_request_pending(WorkerRequest kind, uint64 *ticket)
{
	SpinLockAcquire(&mailbox->mutex);
	*ticket = mailbox->requested[kind];
	SpinLockRelease(&mailbox->mutex);
	return *ticket > mailbox->served[kind];
}

/*
 * Worker side: every ticket up to this one is answered; wake the sessions
 * waiting for them.
 */
void
wgpeer_request_answered(WorkerRequest kind, uint64 ticket)
{
	SpinLockAcquire(&mailbox->mutex);
	mailbox->served[kind] = ticket;
	SpinLockRelease(&mailbox->mutex);
	ConditionVariableBroadcast(&mailbox->answered);
}

/* on_shmem_exit callback: stop backends from setting a dead latch. */
static void
withdraw_latch(int code, Datum arg)
{
	SpinLockAcquire(&mailbox->mutex);
	mailbox->latch = NULL;
	SpinLockRelease(&mailbox->mutex);
}

/*
 * Worker side: publish this process's latch for the backends to set, and
 * withdraw it when the process exits.
 */
void
wgpeer_publish_worker_latch(Latch *latch)
{
	SpinLockAcquire(&mailbox->mutex);
	mailbox->latch = latch;
	SpinLockRelease(&mailbox->mutex);
	on_shmem_exit(withdraw_latch, (Datum) 0);
}
