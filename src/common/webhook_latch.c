/*
 * webhook_latch.c
 *		Waking the webhook worker: its latch in shared memory, set when a
 *		transaction that wrote events (or added a webhook) commits.
 *
 * Delivery must follow a commit closely (a bot that provisions a user
 * waits for "created"), so the worker is woken rather than left to poll;
 * setting a latch costs a commit next to nothing.  An aborted transaction
 * wakes nobody.  The webhook worker has a latch of its own, apart from
 * the apply worker's mailbox: a commit that wrote events but queued no
 * change does not wake the apply worker, and neither waits for the other.
 */
#include "common/common.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"

typedef struct WebhookLatch
{
	slock_t		mutex;
	Latch	   *latch;			/* NULL while no webhook worker runs */
} WebhookLatch;

static WebhookLatch *webhook_latch = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* whether the open transaction wrote an event or added a webhook */
static bool wake_at_commit = false;

/*
 * Reserve the latch's slot (shmem_request_hook).
 */
static void
webhook_latch_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WebhookLatch)));
}

/*
 * Find or create the slot, empty (shmem_startup_hook).
 */
static void
webhook_latch_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	webhook_latch = ShmemInitStruct("wgpeer webhook latch",
									sizeof(WebhookLatch), &found);
	if (!found)
	{
		SpinLockInit(&webhook_latch->mutex);
		webhook_latch->latch = NULL;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Transaction callback: on commit, set the webhook worker's latch if the
 * transaction asked for it (the pointer copied under the spinlock and
 * checked: the worker may be between restarts); forget it otherwise.
 */
static void
webhook_latch_xact_callback(XactEvent event, void *arg)
{
	Latch	   *latch = NULL;

	if (!wake_at_commit)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (webhook_latch != NULL)
			{
				SpinLockAcquire(&webhook_latch->mutex);
				latch = webhook_latch->latch;
				SpinLockRelease(&webhook_latch->mutex);
			}
			if (latch != NULL)
				SetLatch(latch);
			wake_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wake_at_commit = false;
			break;
		default:
			break;
	}
}

/*
 * Hook the latch into the server: the transaction callback in every
 * process and, when preloaded, its slot in shared memory.
 */
void
wgpeer_webhook_latch_init(void)
{
	RegisterXactCallback(webhook_latch_xact_callback, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = webhook_latch_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = webhook_latch_shmem_startup;
}

/*
 * Wake the webhook worker when the open transaction commits.
 */
void
wgpeer_wake_webhooks_at_commit(void)
{
	wake_at_commit = true;
}

/*
 * Clear the published latch as the webhook worker exits, so that no
 * commit sets a latch that is gone (on_shmem_exit callback).
 */
static void
withdraw_webhook_latch(int code, Datum arg)
{
	SpinLockAcquire(&webhook_latch->mutex);
	webhook_latch->latch = NULL;
	SpinLockRelease(&webhook_latch->mutex);
}

/*
 * Publish the webhook worker's latch, for commits to set; called once
 * when the worker starts.
 */
void
wgpeer_publish_webhook_latch(Latch *latch)
{
	if (webhook_latch == NULL)
		return;
	SpinLockAcquire(&webhook_latch->mutex);
	webhook_latch->latch = latch;
	SpinLockRelease(&webhook_latch->mutex);
	on_shmem_exit(withdraw_webhook_latch, (Datum) 0);
}
