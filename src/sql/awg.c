/*
 * awg.c
 *		AmneziaWG: wg_awg_params(), wg_set_interface_awg(),
 *		wg_set_peer_awg() and wg_peer_amnezia_uri().
 */
#include "sql/sql.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "core/amnezia_uri.h"

PG_FUNCTION_INFO_V1(wg_awg_params);
PG_FUNCTION_INFO_V1(wg_set_interface_awg);
PG_FUNCTION_INFO_V1(wg_set_peer_awg);
PG_FUNCTION_INFO_V1(wg_peer_amnezia_uri);

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

/*
 * The JSON document AmneziaVPN imports for one client (amnezia-client: a
 * server with one container "amnezia-awg" whose awg object holds the
 * parameters, the port and last_config, itself a JSON text with the
 * wg-quick config and its parts).  Strings where the client writes
 * strings.  $1 is the peer_id.
 */
#define AMNEZIA_DOCUMENT_SQL \
	"WITH c AS (" \
	" SELECT p.peer_id, p.private_key, p.public_key, p.preshared_key," \
	"  host(p.address) AS client_ip, i.public_key AS server_key," \
	"  coalesce(p.config_name, p.user_id) AS description," \
	"  btrim(regexp_replace(i.endpoint, ':[0-9]+$', ''), '[]') AS host," \
	"  substring(i.endpoint FROM ':([0-9]+)$') AS port," \
	"  coalesce(p.mtu, i.mtu) AS mtu," \
	"  coalesce(p.persistent_keepalive, i.persistent_keepalive) AS keepalive," \
	"  wgpeer.wg_peer_config(p.peer_id) AS config," \
	"  (SELECT coalesce(jsonb_object_agg(upper(left(k, 1)) || substr(k, 2), v)," \
	"                   '{}')" \
	"   FROM jsonb_each_text(i.awg || coalesce(p.awg, '{}')) e(k, v)" \
	"   WHERE v <> '' AND NOT (k IN ('s3', 's4') AND v = '0')) AS params" \
	" FROM wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface" \
	" WHERE p.peer_id = $1)," \
	" d AS (" \
	" SELECT c.*," \
	"  string_to_array(substring(config FROM '\\nDNS = ([^\\n]*)'), ', ') AS dns," \
	"  string_to_array(substring(config FROM '\\nAllowedIPs = ([^\\n]*)'), ', ')" \
	"   AS allowed_ips" \
	" FROM c)" \
	"SELECT private_key IS NULL, jsonb_build_object(" \
	" 'containers', jsonb_build_array(jsonb_build_object(" \
	"   'container', 'amnezia-awg'," \
	"   'awg', params || jsonb_build_object(" \
	"     'port', port, 'transport_proto', 'udp'," \
	"     'last_config', (params || jsonb_strip_nulls(jsonb_build_object(" \
	"       'config', config, 'hostName', host, 'port', port::int," \
	"       'client_priv_key', private_key, 'client_pub_key', public_key," \
	"       'client_ip', client_ip, 'psk_key', preshared_key," \
	"       'server_pub_key', server_key, 'mtu', mtu::text," \
	"       'persistent_keep_alive', keepalive::text," \
	"       'allowed_ips', to_jsonb(allowed_ips))))::text)))," \
	" 'defaultContainer', 'amnezia-awg'," \
	" 'description', description," \
	" 'hostName', host)" \
	" || jsonb_strip_nulls(jsonb_build_object('dns1', dns[1], 'dns2', dns[2]))" \
	" FROM d"

/*
 * wg_peer_amnezia_uri(peer_id) returns text: the client's connection as
 * AmneziaVPN's "vpn://" link (the document of AMNEZIA_DOCUMENT_SQL,
 * compressed as qCompress() does, in URL-safe base64), which the
 * AmneziaVPN app imports from the clipboard or a QR code.  Only for a
 * client of an AmneziaWG interface whose private key the database holds.
 */
Datum
wg_peer_amnezia_uri(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan;
	static SPIPlanPtr plan_document;
	Datum		peer_id = wgpeer_peer_id_arg(fcinfo, 0);
	Oid			types[1] = {UUIDOID};
	Datum		values[1] = {peer_id};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	char	   *json;
	char	   *uri;
	size_t		size;
	int			len;
	text	   *result;

	SPI_connect();
	wgpeer_exec(&plan,
				"SELECT i.awg IS NOT NULL, i.name FROM wgpeer.peer p"
				" JOIN wgpeer.interface i ON i.name = p.interface"
				" WHERE p.peer_id = $1",
				1, types, values, NULL);
	if (SPI_processed == 0)
		wgpeer_peer_not_found(peer_id);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	if (!DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("interface \"%s\" of peer %s is a WireGuard "
						"interface, not an AmneziaWG one",
						SPI_getvalue(tup, desc, 2),
						DatumGetCString(DirectFunctionCall1(uuid_out, peer_id))),
				 errhint("Give WireGuard clients wgpeer.wg_peer_config() or "
						 "its QR code; AmneziaVPN imports those too.")));

	/* the document (wg_peer_config() checks the peer's state) */
	wgpeer_exec(&plan_document, AMNEZIA_DOCUMENT_SQL, 1, types, values, NULL);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	if (DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("peer %s keeps its own private key",
						DatumGetCString(DirectFunctionCall1(uuid_out, peer_id))),
				 errdetail("An AmneziaVPN link carries the client's private "
						   "key, which the database does not hold."),
				 errhint("Give the client wgpeer.wg_peer_config(), which it "
						 "completes with its own key.")));
	json = SPI_getvalue(tup, desc, 2);

	size = wg_amnezia_uri_size(strlen(json));
	uri = palloc(size);
	len = wg_amnezia_uri(json, strlen(json), uri, size);
	if (len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not encode the AmneziaVPN link of peer %s: %s",
						DatumGetCString(DirectFunctionCall1(uuid_out, peer_id)),
						strerror(-len))));
	result = cstring_to_text_with_len(uri, len);
	result = (text *) SPI_datumTransfer(PointerGetDatum(result), false, -1);
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}
