/*
 * deliver.c
 *		One batch of events for one webhook: read it, send it, record how
 *		it went.
 *
 * No request is made inside a transaction: the batch is read and fixed in
 * one transaction, which commits; the POST follows with no transaction
 * open (no snapshot held, no lock anyone could wait on, however slow the
 * endpoint); the outcome is recorded in a new transaction.  Recording
 * checks that the cursor is still where the batch started, so two
 * deliveries of the same batch (a worker restarted while an old request
 * was still being answered) never both advance it, and an endpoint
 * removed meanwhile records nothing.
 *
 * The batch is read with wg_events(), which returns events in id order
 * and never beyond an id some open transaction may still commit, so the
 * cursor never skips one.  Its end is stored (batch_end) before the first
 * attempt: every retry, after a failure or a crash, sends the same events
 * with the same idempotency key, the batch's last event id.  Events the
 * endpoint's kind filter leaves out move the cursor without a request.
 * Delivery is at least once: a crash after the endpoint answered but
 * before the success was recorded sends the batch again.
 */
#include "webhook/webhook.h"

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/* What the read step found for an endpoint. */
typedef struct Batch
{
	char	   *url;
	char	   *secret;
	int64		cursor;			/* the last event id delivered */
	int64		last_id;		/* the batch's last event id, 0: none */
	int64		count;			/* events in the body (after the filter) */
	int32		attempts;		/* failures in a row so far */
	char	   *body;			/* JSON; NULL when count is 0 */
} Batch;

/*
 * The batch: the events after the cursor (up to batch_end when a batch is
 * in flight, else up to wgpeer.webhook_batch_size of them), the body of
 * those the filter keeps, as {"webhook_id": ..., "events": [...]} with
 * each event as wgpeer.event's row, in id order.
 */
#define READ_BATCH \
	"WITH w AS (SELECT * FROM wgpeer.webhook WHERE webhook_id = $1)," \
	" e AS (SELECT ev.* FROM w CROSS JOIN LATERAL wgpeer.wg_events(w.cursor, $2) ev" \
	"       WHERE w.batch_end IS NULL OR ev.event_id <= w.batch_end)," \
	" kept AS (SELECT e.* FROM w, e WHERE w.kinds IS NULL OR e.kind = ANY (w.kinds))" \
	" SELECT w.url, w.secret, w.cursor, w.attempts," \
	"   (SELECT max(e.event_id) FROM e)," \
	"   (SELECT count(*) FROM kept)," \
	"   (SELECT json_build_object('webhook_id', w.webhook_id," \
	"      'events', json_agg(kept ORDER BY kept.event_id))::text FROM kept" \
	"    HAVING count(*) > 0)" \
	" FROM w"

/* Fix the batch's end before the first attempt. */
#define FIX_BATCH \
	"UPDATE wgpeer.webhook SET batch_end = $3" \
	" WHERE webhook_id = $1 AND cursor = $2 AND batch_end IS DISTINCT FROM $3"

/* Past events the filter left out: no request. */
#define SKIP_BATCH \
	"UPDATE wgpeer.webhook SET cursor = $3, batch_end = NULL" \
	" WHERE webhook_id = $1 AND cursor = $2"

/* A 2xx: the cursor advances with the record of the success. */
#define RECORD_SUCCESS \
	"UPDATE wgpeer.webhook SET cursor = $3, batch_end = NULL," \
	"   delivered = delivered + $4, attempts = 0, last_success_at = now()," \
	"   failing_since = NULL, next_attempt_at = NULL, last_error = NULL" \
	" WHERE webhook_id = $1 AND cursor = $2"

/* Anything else: the cursor stays, the next attempt waits. */
#define RECORD_FAILURE \
	"UPDATE wgpeer.webhook SET attempts = attempts + 1," \
	"   failing_since = coalesce(failing_since, now())," \
	"   next_attempt_at = now() + $4 * interval '1 millisecond'," \
	"   last_error = $3" \
	" WHERE webhook_id = $1 AND cursor = $2"

/* Memory that outlives the batch's transactions, reset for each batch. */
static MemoryContext batch_context = NULL;

/*
 * Copy a text column of the read step's row into batch_context, or NULL.
 */
static char *
batch_text(int column)
{
	char	   *value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									 column);

	return value ? MemoryContextStrdup(batch_context, value) : NULL;
}

/*
 * An int8 column of the read step's row, 0 when NULL.
 */
static int64
batch_int64(int column)
{
	bool		isnull;
	Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									  column, &isnull);

	return isnull ? 0 : DatumGetInt64(value);
}

/*
 * Read the endpoint's next batch into *batch (in one transaction), fixing
 * its end when it is new, or moving the cursor past it when the filter
 * keeps none of it.  False when the endpoint is gone or has nothing after
 * its cursor.
 */
static bool
read_batch(int64 webhook_id, Batch *batch)
{
	static SPIPlanPtr read_plan = NULL;
	static SPIPlanPtr fix_plan = NULL;
	static SPIPlanPtr skip_plan = NULL;
	Oid			types[3] = {INT8OID, INT4OID, INT8OID};
	Datum		values[3];
	bool		found = false;
	bool		isnull;

	wgpeer_begin_work("wgpeer webhook worker: reading a batch");
	values[0] = Int64GetDatum(webhook_id);
	values[1] = Int32GetDatum(wgpeer_webhook_batch_size);
	wgpeer_exec(&read_plan, READ_BATCH, 2, types, values, NULL);
	if (SPI_processed == 1)
	{
		batch->url = batch_text(1);
		batch->secret = batch_text(2);
		batch->cursor = batch_int64(3);
		batch->attempts = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc,
													  4, &isnull));
		batch->last_id = batch_int64(5);
		batch->count = batch_int64(6);
		batch->body = batch_text(7);
		found = batch->last_id != 0;
	}
	if (found)
	{
		Oid			update_types[3] = {INT8OID, INT8OID, INT8OID};

		values[1] = Int64GetDatum(batch->cursor);
		values[2] = Int64GetDatum(batch->last_id);
		if (batch->count == 0)
			wgpeer_exec(&skip_plan, SKIP_BATCH, 3, update_types, values, NULL);
		else
			wgpeer_exec(&fix_plan, FIX_BATCH, 3, update_types, values, NULL);
	}
	wgpeer_end_work();
	return found;
}

/*
 * How long to wait after the given number of failures in a row (this one
 * included): one second, doubling with each, capped at
 * wgpeer.webhook_retry_max, then drawn at random from its upper half, so
 * that endpoints failing together do not retry in step.
 */
static double
backoff_ms(int failures)
{
	double		cap = wgpeer_webhook_retry_max * 1000.0;
	double		base = Min(cap, 1000.0 * (double) (1L << Min(failures - 1, 30)));

	return base / 2 + pg_prng_double(&pg_global_prng_state) * base / 2;
}

/*
 * Record how the request went (in one transaction), if the cursor is
 * still where the batch started.  Returns the milliseconds until the
 * endpoint is due again: 0 after a success (more events may wait), the
 * backoff after a failure.
 */
static long
record_outcome(int64 webhook_id, const Batch *batch, bool ok, const char *error)
{
	static SPIPlanPtr success_plan = NULL;
	static SPIPlanPtr failure_plan = NULL;
	Oid			types[4] = {INT8OID, INT8OID, INT8OID, INT8OID};
	Datum		values[4];
	double		wait_ms = 0;

	wgpeer_begin_work("wgpeer webhook worker: recording a delivery");
	values[0] = Int64GetDatum(webhook_id);
	values[1] = Int64GetDatum(batch->cursor);
	if (ok)
	{
		values[2] = Int64GetDatum(batch->last_id);
		values[3] = Int64GetDatum(batch->count);
		wgpeer_exec(&success_plan, RECORD_SUCCESS, 4, types, values, NULL);
	}
	else
	{
		types[2] = TEXTOID;
		types[3] = FLOAT8OID;
		wait_ms = backoff_ms(batch->attempts + 1);
		values[2] = CStringGetTextDatum(error);
		values[3] = Float8GetDatum(wait_ms);
		wgpeer_exec(&failure_plan, RECORD_FAILURE, 4, types, values, NULL);
	}
	wgpeer_end_work();
	return (long) wait_ms;
}

/*
 * Deliver the next batch of one webhook.  Returns the milliseconds until
 * it is due again: 0 when more events may be waiting, the backoff after a
 * failure, WEBHOOK_IDLE when it has nothing to send.
 */
long
wgpeer_webhook_deliver(int64 webhook_id)
{
	Batch		batch;
	char	   *error = NULL;
	bool		ok;

	if (batch_context == NULL)
		batch_context = AllocSetContextCreate(TopMemoryContext,
											  "wgpeer webhook batch",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(batch_context);
	memset(&batch, 0, sizeof(batch));
	if (!read_batch(webhook_id, &batch))
		return WEBHOOK_IDLE;
	if (batch.count == 0)
		return 0;

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("wgpeer webhook worker: sending events up to "
									INT64_FORMAT " to webhook " INT64_FORMAT,
									batch.last_id, webhook_id));
	ok = wgpeer_http_post(batch.url, batch.secret, batch.last_id, batch.body,
						  &error);
	pgstat_report_activity(STATE_IDLE, NULL);
	/* a stop requested during the request takes effect now */
	CHECK_FOR_INTERRUPTS();
	return record_outcome(webhook_id, &batch, ok, error);
}
