/*
 * history.c
 *		After a promotion: notice that the database now runs on another
 *		server history than the one it was last served on, and make what
 *		the old history may have done harmless.
 *
 * A standby promoted after asynchronous replication, a point-in-time
 * recovery or a restore onto another cluster can lack the last commits of
 * the server it replaces.  Those commits may have taken event ids that
 * consumers already read, and the old server's worker put their peers on
 * interfaces the database no longer knows them on.  The worker starts when
 * recovery ends; before its first reconcile it compares the cluster's
 * system identifier and timeline with those in wgpeer.server_history.
 * When they differ it moves the event sequence EVENT_ID_MARGIN past its
 * value, so no id a consumer read is issued again, and marks each of its
 * interfaces in wgpeer.stale_sweep: the next successful reconcile of each
 * removes the peers the database does not know inside its pool
 * (reconcile.c).  A restart on the same history changes nothing.
 */
#include "worker/worker.h"

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"

/*
 * How far the event sequence moves at a change of history: more ids than
 * any server writes events in the time replication can lag (a billion is
 * days at ten thousand events a second), and few enough that a bigint
 * lasts for billions of failovers.
 */
#define EVENT_ID_MARGIN INT64CONST(1000000000)

/*
 * Compare the server's history with the recorded one and, when it
 * changed, move the event sequence on and mark the interfaces this worker
 * serves for a stale sweep, all in the caller's transaction.  The first
 * call on a database records the history and changes nothing else.
 */
void
wgpeer_check_history(void)
{
	static SPIPlanPtr read_plan;
	static SPIPlanPtr moved_plan;
	static SPIPlanPtr first_plan;
	Oid			types[3] = {TEXTOID, INT8OID, INT8OID};
	Datum		values[3];
	char		sysid[32];
	TimeLineID	timeline = GetWALInsertionTimeLine();
	char	   *was_sysid;
	int64		was_timeline;
	bool		isnull;

	snprintf(sysid, sizeof(sysid), UINT64_FORMAT, GetSystemIdentifier());
	values[0] = CStringGetTextDatum(sysid);
	values[1] = Int64GetDatum((int64) timeline);
	values[2] = Int64GetDatum(EVENT_ID_MARGIN);

	wgpeer_exec(&read_plan,
				"SELECT system_identifier::text, timeline"
				" FROM wgpeer.server_history FOR UPDATE",
				0, NULL, NULL, NULL);
	if (SPI_processed == 0)
	{
		wgpeer_exec(&first_plan,
					"INSERT INTO wgpeer.server_history"
					" (system_identifier, timeline) VALUES ($1::numeric, $2)",
					2, types, values, NULL);
		return;
	}
	was_sysid = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	was_timeline = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 2,
											   &isnull));
	if (strcmp(was_sysid, sysid) == 0 && was_timeline == (int64) timeline)
		return;

	wgpeer_exec(&moved_plan,
				"WITH moved AS ("
				"  UPDATE wgpeer.server_history"
				"  SET system_identifier = $1::numeric, timeline = $2,"
				"      since = pg_catalog.now()),"
				" swept AS ("
				"  INSERT INTO wgpeer.stale_sweep (interface)"
				"  SELECT name FROM wgpeer.interface"
				"  WHERE node = pg_catalog.current_setting('wgpeer.node')"
				"  ON CONFLICT DO NOTHING)"
				" SELECT pg_catalog.setval('wgpeer.event_id_seq'::regclass,"
				"   s.last_value + $3)"
				" FROM wgpeer.event_id_seq s",
				3, types, values, NULL);
	ereport(LOG,
			(errmsg("wgpeer: this database was last served on system %s "
					"timeline %lld and now runs on system %s timeline %u",
					was_sysid, (long long) was_timeline, sysid, timeline),
			 errdetail("Commits of the old history may be missing here: event "
					   "ids move on by " INT64_FORMAT ", and the next reconcile "
					   "of each interface removes the peers the database does "
					   "not know inside its pool.", EVENT_ID_MARGIN)));
}
