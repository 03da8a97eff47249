/*
 * event_log.c
 *		What makes wgpeer.event readable in order without gaps: the
 *		"horizon" below which every event id is settled, and the NOTIFY
 *		that tells consumers a new event committed.
 *
 * Event ids come from a sequence, so a transaction can take id 5, another
 * id 6 and commit first: a consumer that read 6 and remembered it would
 * never see 5.  Each process therefore announces, in a slot of shared
 * memory, the first event id its open transaction took (and that it is
 * about to take one); a reader returns only ids below every announced id
 * and below the sequence's next value read before the slots.  Any id under
 * that horizon belongs to a transaction that had ended when the slots were
 * read, so a snapshot taken afterwards shows it if it committed.  Slots
 * are cleared when the transaction ends, after it became visible.
 *
 * A transaction that wrote events NOTIFYs "wgpeer_events" with its last
 * event id at commit: a wake-up only (any role can NOTIFY any channel);
 * what happened is read from the table.
 */
#include "postgres.h"

#include "access/twophase.h"
#include "access/xact.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"

#include "common/common.h"

/* slot values besides an event id */
#define SLOT_EMPTY		PG_UINT64_MAX	/* no event in the open transaction */
#define SLOT_TAKING		0			/* an id is being taken right now */

typedef struct EventSlots
{
	int			n;
	pg_atomic_uint64 first_id[FLEXIBLE_ARRAY_MEMBER];
} EventSlots;

static EventSlots *slots = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * Whether the open transaction announced itself in its slot, and its first
 * and last event ids (0 when none yet).
 */
static bool xact_announced = false;
static int64 xact_first_id = 0;
static int64 xact_last_id = 0;

/*
 * One slot per PGPROC, as proc.c counts them.
 */
static int
slot_count(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

static Size
slots_size(void)
{
	return add_size(offsetof(EventSlots, first_id),
					mul_size(sizeof(pg_atomic_uint64), slot_count()));
}

/*
 * Reserve the slots (shmem_request_hook).
 */
static void
event_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(slots_size()));
}

/*
 * Find or create the slots, all empty (shmem_startup_hook).
 */
static void
event_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	slots = ShmemInitStruct("wgpeer event slots", slots_size(), &found);
	if (!found)
	{
		slots->n = slot_count();
		for (int i = 0; i < slots->n; i++)
			pg_atomic_init_u64(&slots->first_id[i], SLOT_EMPTY);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * This process's slot, or NULL when the library was not preloaded.
 */
static pg_atomic_uint64 *
my_slot(void)
{
	if (slots == NULL || MyProc == NULL || wgpeer_my_procno() >= slots->n)
		return NULL;
	return &slots->first_id[wgpeer_my_procno()];
}

/*
 * Transaction callback: NOTIFY the last event id before commit, clear the
 * slot once the transaction has ended either way.  A prepared transaction
 * would leave its events invisible with its slot cleared, so preparing
 * one that wrote events is refused.
 */
static void
event_xact_callback(XactEvent event, void *arg)
{
	pg_atomic_uint64 *slot;

	if (!xact_announced)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (xact_last_id != 0)
				Async_Notify("wgpeer_events",
						 psprintf(INT64_FORMAT, xact_last_id));
			return;
		case XACT_EVENT_PRE_PREPARE:
			if (xact_last_id != 0)
				ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot prepare a transaction that wrote wgpeer events"),
					 errhint("Commit it instead of PREPARE TRANSACTION.")));
			return;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			if ((slot = my_slot()) != NULL)
				pg_atomic_write_u64(slot, SLOT_EMPTY);
			xact_announced = false;
			xact_first_id = xact_last_id = 0;
			return;
		default:
			return;
	}
}

/*
 * Hook the event log into the server: the transaction callback in every
 * process and, when preloaded, the slots in shared memory.
 */
void
wgpeer_event_log_init(void)
{
	RegisterXactCallback(event_xact_callback, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = event_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = event_shmem_startup;
}

/*
 * Announce that this transaction is about to take an event id (before
 * taking it).  Only its first id matters to readers.
 */
void
wgpeer_event_id_taking(void)
{
	pg_atomic_uint64 *slot = my_slot();

	if (xact_first_id == 0)
	{
		if (slot != NULL)
			pg_atomic_write_u64(slot, SLOT_TAKING);
		pg_memory_barrier();
		xact_announced = true;
	}
}

/*
 * Record the event id this transaction just took.
 */
void
wgpeer_event_id_taken(int64 id)
{
	pg_atomic_uint64 *slot = my_slot();

	if (xact_first_id == 0)
	{
		xact_first_id = id;
		if (slot != NULL)
			pg_atomic_write_u64(slot, (uint64) id);
		/* webhooks deliver the event once the transaction commits */
		wgpeer_wake_webhooks_at_commit();
	}
	xact_last_id = id;
}

/*
 * The horizon for a reader: the lowest first id of any process's open
 * transaction, or next_id (the sequence's next value, read before this
 * call) when lower.  Waits out a process caught between announcing and
 * taking its id.  Returns false when the library was not preloaded (no
 * slots: no horizon can be known).
 */
bool
wgpeer_event_horizon(int64 next_id, int64 *horizon)
{
	uint64		h = (uint64) next_id;

	if (slots == NULL)
		return false;
	pg_memory_barrier();
	for (int i = 0; i < slots->n; i++)
	{
		uint64		v;

		while ((v = pg_atomic_read_u64(&slots->first_id[i])) == SLOT_TAKING)
		{
			CHECK_FOR_INTERRUPTS();
			pg_usleep(10);
		}
		if (v < h)
			h = v;
	}
	*horizon = (int64) h;
	return true;
}
