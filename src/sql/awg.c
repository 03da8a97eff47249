/*
 * awg.c
 *		AmneziaWG: wg_awg_params(), wg_set_interface_awg() and
 *		wg_set_peer_awg().
 */
#include "sql/sql.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(wg_awg_params);
PG_FUNCTION_INFO_V1(wg_set_interface_awg);
PG_FUNCTION_INFO_V1(wg_set_peer_awg);

/*
 * wg_awg_params() returns jsonb: a fresh random set of parameters that
 * every AmneziaWG client imports.
 */
Datum
wg_awg_params(PG_FUNCTION_ARGS)
{
	PG_RETURN_JSONB_P(wgpeer_awg_random());
}

/*
 * wg_set_interface_awg(name, awg) returns interface: replace the
 * parameters of an AmneziaWG interface.  The worker applies them to the
 * device once the transaction commits (an UPDATE of interface tells it).
 * A change of S1..S4 or H1..H4, which server and clients must share,
 * leaves every client's config stale: a WARNING says so, and an
 * interface_params_changed event tells applications to send new configs.
 */
Datum
wg_set_interface_awg(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr lock_plan;
	static SPIPlanPtr update_plan;
	static SPIPlanPtr event_plan;
	char	   *ifname;
	Jsonb	   *awg;
	char	   *changed;
	Oid			types[3] = {TEXTOID, JSONBOID, TEXTOID};
	Datum		values[3];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	char	   *flavor;
	Datum		before;
	int64		clients;
	Datum		result;

	wgpeer_require_primary("wg_set_interface_awg");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name cannot be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("awg cannot be null"),
				 errhint("wgpeer.wg_awg_params() draws a fresh set.")));
	SPI_connect();
	ifname = wgpeer_resolve_interface(PG_GETARG_TEXT_PP(0));
	awg = wgpeer_awg_interface(PG_GETARG_JSONB_P(1), "awg", NULL);
	values[0] = CStringGetTextDatum(ifname);
	values[1] = JsonbPGetDatum(awg);

	wgpeer_exec(&lock_plan,
				"SELECT flavor, awg,"
				" (SELECT count(*) FROM wgpeer.peer p WHERE p.interface = i.name"
				"   AND p.status IN ('creating', 'active', 'suspended'))"
				" FROM wgpeer.interface i WHERE name = $1 FOR UPDATE",
				1, types, values, NULL);
	if (SPI_processed == 0)
		wgpeer_interface_not_registered(ifname);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	flavor = SPI_getvalue(tup, desc, 1);
	if (strcmp(flavor, "amneziawg") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("interface \"%s\" is a WireGuard interface, not an "
						"AmneziaWG one", ifname),
				 errdetail("Its device is kernel WireGuard's, which has no "
						   "AmneziaWG parameters."),
				 errhint("Register an AmneziaWG interface with "
						 "wgpeer.wg_add_interface(..., flavor => 'amneziawg').")));
	before = SPI_getbinval(tup, desc, 2, &isnull);
	clients = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	changed = wgpeer_awg_shared_changes(DatumGetJsonbP(before), awg);

	wgpeer_exec(&update_plan,
				"UPDATE wgpeer.interface SET awg = $2 WHERE name = $1"
				" RETURNING *",
				2, types, values, NULL);
	result = PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc));
	if (changed)
	{
		values[2] = CStringGetTextDatum(changed);
		wgpeer_exec(&event_plan,
					"INSERT INTO wgpeer.event (kind, interface, detail)"
					" SELECT 'interface_params_changed', $1,"
					" jsonb_build_object('changed', string_to_array($3, ', '),"
					"                    'awg', $2::jsonb)",
					3, types, values, NULL);
		ereport(WARNING,
				(errmsg_plural("the config of the %lld client of AmneziaWG "
							   "interface \"%s\" no longer connects",
							   "the configs of the %lld clients of AmneziaWG "
							   "interface \"%s\" no longer connect",
							   clients, (long long) clients, ifname),
				 errdetail("Changed: %s.  S1..S4 and H1..H4 must be the same "
						   "on the server and on every client.", changed),
				 errhint("Send every client its new config "
						 "(wgpeer.wg_peer_config() or a QR code); the event "
						 "interface_params_changed tells applications.")));
	}
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * wg_set_peer_awg(peer_id, awg) returns jsonb: give a client of an
 * AmneziaWG interface its own junk profile (jc, jmin, jmax together, and
 * i1..i5; "" hides one of the interface's signature packets), or with
 * NULL or '{}' take it away.  Only the client's config changes: junk and
 * signature packets are the sender's own, the server needs none of them.
 * Returns the set the client's config now carries.
 */
Datum
wg_set_peer_awg(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr lock_plan;
	static SPIPlanPtr update_plan;
	Datum		peer_id = wgpeer_peer_id_arg(fcinfo, 0);
	Oid			types[2] = {UUIDOID, JSONBOID};
	Datum		values[2] = {peer_id, (Datum) 0};
	char		nulls[2] = {' ', 'n'};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	char	   *status;
	char	   *ifname;
	Datum		interface_awg;
	Jsonb	   *mine = NULL;
	Datum		result;

	wgpeer_require_primary("wg_set_peer_awg");
	SPI_connect();
	wgpeer_exec(&lock_plan,
				"SELECT p.status, p.interface, i.awg FROM wgpeer.peer p"
				" JOIN wgpeer.interface i ON i.name = p.interface"
				" WHERE p.peer_id = $1 FOR UPDATE OF p",
				1, types, values, NULL);
	if (SPI_processed == 0)
		wgpeer_peer_not_found(peer_id);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	status = SPI_getvalue(tup, desc, 1);
	ifname = SPI_getvalue(tup, desc, 2);
	interface_awg = SPI_getbinval(tup, desc, 3, &isnull);
	if (strcmp(status, "revoked") == 0 || strcmp(status, "expired") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("peer %s is %s",
						DatumGetCString(DirectFunctionCall1(uuid_out, peer_id)),
						status),
				 errhint("A revoked or expired peer has no usable config.")));
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("interface \"%s\" of peer %s is a WireGuard "
						"interface, not an AmneziaWG one", ifname,
						DatumGetCString(DirectFunctionCall1(uuid_out, peer_id))),
				 errhint("Junk profiles belong to clients of interfaces "
						 "registered with flavor => 'amneziawg'.")));
	if (!PG_ARGISNULL(1))
	{
		mine = wgpeer_awg_peer(PG_GETARG_JSONB_P(1),
							   DatumGetJsonbP(interface_awg), "awg");
		if (JB_ROOT_COUNT(mine) == 0)
			mine = NULL;
	}
	values[1] = mine ? JsonbPGetDatum(mine) : (Datum) 0;
	nulls[1] = mine ? ' ' : 'n';
	wgpeer_exec(&update_plan,
				"UPDATE wgpeer.peer p SET awg = $2 WHERE peer_id = $1"
				" RETURNING (SELECT i.awg FROM wgpeer.interface i"
				"            WHERE i.name = p.interface) || coalesce($2, '{}')",
				2, types, values, nulls);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						   &isnull);
	result = SPI_datumTransfer(result, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
