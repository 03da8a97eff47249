/*
 * show.c
 *		wg_show(): an interface's live peers, as the device reports them now.
 *
 * A session holds no CAP_NET_ADMIN, so it asks the apply worker for a
 * fresh sample (the mailbox's REQUEST_SHOW), waits for the answer, and
 * reads what the worker recorded in wgpeer.device and wgpeer.device_peer.
 */
#include "sql/sql.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(wg_show);

/*
 * wg_show(interface text) returns the interface's live peers as the
 * kernel reports them now: public key, endpoint, allowed IPs, latest
 * handshake, bytes received and sent, keepalive.
 */
Datum
wg_show(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr peers_plan;
	static SPIPlanPtr error_plan;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *ifname;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	SPI_connect();
	ifname = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt,
								 wgpeer_resolve_interface(PG_ARGISNULL(0) ? NULL :
														  PG_GETARG_TEXT_PP(0)));
	SPI_finish();
	values[0] = CStringGetTextDatum(ifname);

	wgpeer_refuse_on_standby("wg_show");
	wgpeer_ask_worker(REQUEST_SHOW);

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	wgpeer_exec(&error_plan,
				"SELECT d.error FROM wgpeer.device d"
				" JOIN wgpeer.interface i ON i.name = d.interface AND i.node = d.node"
				" WHERE d.interface = $1",
				1, types, values, NULL);
	if (SPI_processed == 0)
		wgpeer_interface_not_registered(ifname);
	{
		char	   *error = SPI_getvalue(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1);

		if (error)
			ereport(ERROR,
					(errcode(ERRCODE_SYSTEM_ERROR),
					 errmsg("could not read interface \"%s\": %s", ifname, error)));
	}
	wgpeer_exec(&peers_plan,
				"SELECT d.public_key, d.endpoint, d.allowed_ips, d.latest_handshake,"
				" d.rx_bytes, d.tx_bytes, d.persistent_keepalive"
				" FROM wgpeer.device_peer d"
				" JOIN wgpeer.interface i ON i.name = d.interface AND i.node = d.node"
				" WHERE d.interface = $1"
				" ORDER BY d.latest_handshake DESC NULLS LAST, d.public_key",
				1, types, values, NULL);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		Datum		out[7];
		bool		nulls[7];

		for (int c = 0; c < 7; c++)
			out[c] = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc,
								   c + 1, &nulls[c]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
