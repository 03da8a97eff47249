/*
 * reconcile.c
 *		wg_reconcile(): have the apply worker reconcile every interface now
 *		and report what it did, from what it recorded in wgpeer.device.
 */
#include "sql/sql.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(wg_reconcile);

/*
 * wg_reconcile(interface text default null): have the worker reconcile
 * every interface now, and report for the given one (or all) how many
 * peers it added, corrected and removed, how many unknown peers it left
 * alone, or why it could not.
 */
Datum
wg_reconcile(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {(Datum) 0};
	char		nulls[1] = {'n'};

	if (!PG_ARGISNULL(0))
	{
		MemoryContext outer = CurrentMemoryContext;
		char	   *ifname;

		SPI_connect();
		ifname = MemoryContextStrdup(outer,
									 wgpeer_resolve_interface(PG_GETARG_TEXT_PP(0)));
		SPI_finish();
		values[0] = CStringGetTextDatum(ifname);
		nulls[0] = ' ';
	}
	wgpeer_refuse_on_standby("wg_reconcile");
	wgpeer_ask_worker(REQUEST_RECONCILE);

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	wgpeer_exec(&plan,
				"SELECT i.name, d.added, d.corrected, d.removed,"
				" d.foreign_peers, d.reconcile_error"
				" FROM wgpeer.interface i"
				" LEFT JOIN wgpeer.device d ON d.interface = i.name AND d.node = i.node"
				" WHERE $1::text IS NULL OR i.name = $1"
				" ORDER BY i.name",
				1, types, values, nulls);
	if (SPI_processed == 0 && nulls[0] == ' ')
		wgpeer_interface_not_registered(TextDatumGetCString(values[0]));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		Datum		out[6];
		bool		out_nulls[6];

		for (int c = 0; c < 6; c++)
			out[c] = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc,
								   c + 1, &out_nulls[c]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, out_nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
