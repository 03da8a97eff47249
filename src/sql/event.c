/*
 * event.c
 *		The durable event log: wg_event_id(), the default of
 *		wgpeer.event.event_id through which every event is written, and
 *		wg_events(after, max), which reads them in order without gaps.
 *
 * Why the two must cooperate is explained in src/common/event_log.c.
 */
#include "sql/sql.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#define EVENTS_MAX_BATCH 10000

PG_FUNCTION_INFO_V1(wg_event_id);
PG_FUNCTION_INFO_V1(wg_events);

/*
 * The sequence event ids come from.
 */
static Oid
event_sequence(void)
{
	Oid			schema = get_namespace_oid("wgpeer", false);
	Oid			seq = get_relname_relid("event_id_seq", schema);

	if (!OidIsValid(seq))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("sequence wgpeer.event_id_seq does not exist"),
				 errhint("Update the extension: ALTER EXTENSION wgpeer UPDATE.")));
	return seq;
}

/*
 * A new event id, announced to readers before it is taken (see
 * event_log.c).  Only the extension's own code writes events.
 */
Datum
wg_event_id(PG_FUNCTION_ARGS)
{
	Oid			seq = event_sequence();
	int64		id;

	wgpeer_event_id_taking();
	id = nextval_internal(seq, false);
	wgpeer_event_id_taken(id);
	PG_RETURN_INT64(id);
}

/*
 * The id the sequence hands out next (1 before the first).
 */
static int64
event_next_id(void)
{
	Datum		last;
	LOCAL_FCINFO(fcinfo, 1);

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(event_sequence());
	fcinfo->args[0].isnull = false;
	last = pg_sequence_last_value(fcinfo);
	return fcinfo->isnull ? 1 : DatumGetInt64(last) + 1;
}

/*
 * wg_events(after, max): up to max events with ids above after, in id
 * order, stopping below the first id that some open transaction may still
 * commit.  A consumer that remembers the last id it read and passes it
 * next time reads every event exactly once, whatever crashed in between.
 * The horizon is fixed before the query's snapshot is taken, which is why
 * this needs READ COMMITTED (a newer snapshot per statement).
 */
Datum
wg_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	static SPIPlanPtr plan;
	int64		after;
	int32		max;
	int64		horizon;
	Oid			types[3] = {INT8OID, INT8OID, INT4OID};
	Datum		values[3];

	if (PG_ARGISNULL(0) || PG_GETARG_INT64(0) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("after must be an event id of 0 or more"),
				 errhint("Pass 0 to read from the oldest event kept, or the "
						 "last event_id you read.")));
	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) < 1 ||
		PG_GETARG_INT32(1) > EVENTS_MAX_BATCH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max must be between 1 and %d", EVENTS_MAX_BATCH)));
	after = PG_GETARG_INT64(0);
	max = PG_GETARG_INT32(1);
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("wg_events() cannot run in a %s transaction",
						IsolationIsSerializable() ? "SERIALIZABLE" :
						"REPEATABLE READ"),
				 errdetail("Its snapshot predates the point up to which events "
						   "are known to be complete."),
				 errhint("Read events in a READ COMMITTED transaction (the "
						 "default).")));
	if (!wgpeer_event_horizon(event_next_id(), &horizon))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("wg_events() needs wgpeer in shared_preload_libraries"),
				 errhint("Add wgpeer to shared_preload_libraries and restart "
						 "the server.")));

	InitMaterializedSRF(fcinfo, 0);
	values[0] = Int64GetDatum(after);
	values[1] = Int64GetDatum(horizon);
	values[2] = Int32GetDatum(max);
	SPI_connect();
	/* a statement of its own: its snapshot is taken after the horizon */
	wgpeer_exec(&plan,
				"SELECT * FROM wgpeer.event"
				" WHERE event_id > $1 AND event_id < $2"
				" ORDER BY event_id LIMIT $3",
				3, types, values, NULL);
	for (uint64 r = 0; r < SPI_processed; r++)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[r]);
	SPI_finish();
	return (Datum) 0;
}
