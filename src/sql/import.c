/*
 * import.c
 *		Adopting peers that already exist, without changing them:
 *		wg_import_peer() for one, wg_import_config() for every [Peer] of a
 *		server config (as `wg showconf` prints it, or wg-quick keeps it),
 *		to migrate from wg-quick, wg-easy or the service wgpeer grew from.
 *
 * An imported peer keeps its public key, preshared key, address and
 * keepalive, so its client's config goes on working and the interface
 * needs no change: the worker's reconcile finds the device as the
 * database wants it.  The server never learns the client's private key;
 * the peer's config says where it belongs.
 */
#include "sql/sql.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "core/import.h"

PG_FUNCTION_INFO_V1(wg_import_peer);
PG_FUNCTION_INFO_V1(wg_import_config);

/* What one imported peer is made of. */
typedef struct Imported
{
	const char *public_key;
	Datum		address;		/* inet /32 */
	Datum		address6;		/* inet /128 it must derive to; 0: any */
	const char *preshared_key;	/* NULL: none */
	const char *user_id;		/* NULL: its public key */
	int			keepalive;		/* -1: the interface's */
	bool		has_months;
	int			months;
} Imported;

/*
 * Error context: which [Peer] of the config was being imported.
 */
static void
peer_line_context(void *arg)
{
	errcontext("importing the [Peer] on line %d", *(int *) arg);
}

/*
 * Store one imported peer on ifname; returns its peer id.  Inside
 * SPI_connect().
 */
static Datum
import_one(const char *ifname, const Imported *imp)
{
	static SPIPlanPtr iface_plan;
	static SPIPlanPtr insert_plan;
	uint8_t		key[WG_KEY_LEN];
	const char *user_id = imp->user_id ? imp->user_id : imp->public_key;
	Datum		address6 = (Datum) 0;
	Datum		iface_address;
	int			iface_keepalive;
	bool		isnull;

	wgpeer_parse_key(imp->public_key, "public_key", key);
	wgpeer_check_key(key, false, "public_key",
					 "Import only peers a client can connect with; drop this one "
					 "from the config.");
	if (imp->preshared_key)
		wgpeer_parse_key(imp->preshared_key, "preshared_key", key);
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(ifname)};

		wgpeer_exec(&iface_plan,
					"SELECT address, address6, coalesce(persistent_keepalive, 0)"
					" FROM wgpeer.interface WHERE name = $1",
					1, types, values, NULL);
		if (SPI_processed == 0)
			wgpeer_interface_not_registered(ifname);
		iface_address = wgpeer_inet_copy(SPI_getbinval(SPI_tuptable->vals[0],
													   SPI_tuptable->tupdesc, 1,
													   &isnull));
		{
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 2, &isnull);

			if (!isnull)
				address6 = wgpeer_derive6(imp->address, iface_address,
										  wgpeer_inet_copy(d));
			if (imp->address6 &&
				(!address6 ||
				 memcmp(ip_addr(DatumGetInetPP(address6)),
						ip_addr(DatumGetInetPP(imp->address6)), 16) != 0))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("IPv6 address %s of peer %s is not the one interface "
								"\"%s\" gives its IPv4 address",
								DatumGetCString(DirectFunctionCall1(inet_out,
																		imp->address6)),
								imp->public_key, ifname),
						 address6 ?
						 errdetail("Its IPv4 address maps to %s.",
								   DatumGetCString(DirectFunctionCall1(inet_out,
																		   address6))) :
						 errdetail("The interface has no IPv6 prefix."),
						 errhint("wgpeer derives each peer's IPv6 address from its "
								 "IPv4 one; import the peer without its IPv6 "
								 "address, or register the interface with the "
								 "matching address6.")));
		}
		iface_keepalive = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 3,
													  &isnull));
	}
	wgpeer_check_peer_key(ifname, imp->public_key);
	wgpeer_claim_device(user_id, ifname);
	wgpeer_claim_address(ifname, imp->address);
	{
		Oid			types[8] = {TEXTOID, TEXTOID, INETOID, INETOID, TEXTOID,
		TEXTOID, INT4OID, INT4OID};
		Datum		values[8];
		char		nulls[8];

		memset(nulls, ' ', sizeof(nulls));
		values[0] = CStringGetTextDatum(user_id);
		values[1] = CStringGetTextDatum(ifname);
		values[2] = imp->address;
		values[3] = address6;
		nulls[3] = address6 ? ' ' : 'n';
		values[4] = CStringGetTextDatum(imp->public_key);
		values[5] = imp->preshared_key ? CStringGetTextDatum(imp->preshared_key) : (Datum) 0;
		nulls[5] = imp->preshared_key ? ' ' : 'n';
		values[6] = Int32GetDatum(imp->months);
		nulls[6] = imp->has_months ? ' ' : 'n';
		values[7] = Int32GetDatum(imp->keepalive);
		nulls[7] = imp->keepalive >= 0 && imp->keepalive != iface_keepalive ? ' ' : 'n';
		wgpeer_exec(&insert_plan,
					"INSERT INTO wgpeer.peer (peer_id, user_id, interface, address,"
					" address6, public_key, preshared_key, config_name, expires_at,"
					" persistent_keepalive)"
					" SELECT id, $1, $2, $3, $4, $5, $6, 'wg-' || right(id::text, 8),"
					"  now() + make_interval(months => $7), $8"
					" FROM gen_random_uuid() id"
					" RETURNING peer_id",
					8, types, values, nulls);
	}
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
}

/*
 * An address argument of wg_import_peer(): an IPv4 host (a /32, or an
 * address without a prefix), returned as an inet /32.
 */
static Datum
host_address(Datum d, const char *what)
{
	inet	   *ip = DatumGetInetPP(d);

	if (ip_family(ip) != PGSQL_AF_INET || ip_bits(ip) != 32)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s %s is not an IPv4 host address",
						what, DatumGetCString(DirectFunctionCall1(inet_out, d))),
				 errhint("Give the peer's tunnel address as a /32, e.g. "
						 "'10.0.0.2/32'; its IPv6 address follows from the "
						 "interface's prefix.")));
	return wgpeer_inet4_datum(wgpeer_inet4_value(ip), 32);
}

/*
 * The check of a months argument (1 to 120, or NULL for no expiry).
 */
static void
months_arg(FunctionCallInfo fcinfo, int argno, Imported *imp)
{
	imp->has_months = !PG_ARGISNULL(argno);
	imp->months = imp->has_months ? PG_GETARG_INT32(argno) : 0;
	if (imp->has_months && (imp->months < 1 || imp->months > 120))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("duration_months must be between 1 and 120, not %d",
						imp->months),
				 errhint("Pass NULL for peers that never expire.")));
}

/*
 * wg_import_peer(interface, public_key, address, preshared_key, user_id,
 * persistent_keepalive, duration_months) returns peer_public: adopt one
 * existing peer as it is.
 */
Datum
wg_import_peer(PG_FUNCTION_ARGS)
{
	char	   *ifname_arg = wgpeer_text_arg(fcinfo, 0, "interface", false);
	Imported	imp;
	char	   *ifname;
	Datum		result;

	wgpeer_require_primary("wg_import_peer");
	memset(&imp, 0, sizeof(imp));
	imp.public_key = wgpeer_text_arg(fcinfo, 1, "public_key", true);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("address cannot be null"),
				 errhint("Give the address the peer has now.")));
	imp.address = host_address(PG_GETARG_DATUM(2), "address");
	imp.preshared_key = wgpeer_text_arg(fcinfo, 3, "preshared_key", false);
	imp.user_id = wgpeer_text_arg(fcinfo, 4, "user_id", false);
	imp.keepalive = PG_ARGISNULL(5) ? -1 : PG_GETARG_INT32(5);
	if (imp.keepalive < -1 || imp.keepalive > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("persistent_keepalive must be 0 to 65535 seconds, not %d",
						imp.keepalive)));
	months_arg(fcinfo, 6, &imp);
	if (imp.user_id && (imp.user_id[0] == '\0' || strlen(imp.user_id) > 256))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user_id must be 1 to 256 bytes")));

	SPI_connect();
	ifname = wgpeer_resolve_interface(ifname_arg ? PG_GETARG_TEXT_PP(0) : NULL);
	result = wgpeer_public_row(import_one(ifname, &imp));
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * The addresses of an imported [Peer]: its one IPv4 /32 among AllowedIPs
 * into imp->address, and an IPv6 /128, if any, into imp->address6 (which
 * import_one() checks against the interface's prefix); anything else (a
 * route behind the peer) is refused.
 */
static void
config_addresses(const wg_import_entry *p, Imported *imp)
{
	char	   *list = pstrdup(p->allowed_ips);
	char	   *save = NULL;
	Datum		address = (Datum) 0;
	Datum		address6 = (Datum) 0;

	for (char *item = strtok_r(list, ",", &save); item;
		 item = strtok_r(NULL, ",", &save))
	{
		Datum		d;
		inet	   *ip;

		while (*item == ' ')
			item++;
		d = DirectFunctionCall1(inet_in, CStringGetDatum(item));
		ip = DatumGetInetPP(d);
		if (ip_family(ip) == PGSQL_AF_INET && ip_bits(ip) == 32 && !address)
			address = host_address(d, "address");
		else if (ip_family(ip) == PGSQL_AF_INET6 && ip_bits(ip) == 128 &&
				 !address6)
			address6 = d;
		else
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("AllowedIPs %s of peer %s is more than its own address",
							item, p->public_key),
					 errdetail("wgpeer imports a peer's tunnel address (one IPv4 "
							   "/32 and its IPv6 /128), not routes behind it."),
					 errhint("Import this peer by hand without the route, or "
							 "leave it out of the config.")));
	}
	if (!address)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("peer %s has no IPv4 /32 among its AllowedIPs",
						p->public_key),
				 errhint("Every imported peer needs its tunnel address, e.g. "
						 "AllowedIPs = 10.0.0.2/32.")));
	imp->address = address;
	imp->address6 = address6;
}

/*
 * wg_import_config(interface, config, duration_months) returns integer:
 * adopt every [Peer] of a server config; returns how many.  All or
 * nothing: a peer that cannot be imported stops the import, naming its
 * line.
 */
Datum
wg_import_config(PG_FUNCTION_ARGS)
{
	char	   *ifname_arg = wgpeer_text_arg(fcinfo, 0, "interface", false);
	char	   *config;
	wg_import	parsed;
	const char *why;
	int			line;
	int			n = 0;
	char	   *ifname;
	Imported	base;

	wgpeer_require_primary("wg_import_config");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("config cannot be null")));
	config = text_to_cstring(PG_GETARG_TEXT_PP(1));
	memset(&base, 0, sizeof(base));
	months_arg(fcinfo, 2, &base);

	SPI_connect();
	ifname = wgpeer_resolve_interface(ifname_arg ? PG_GETARG_TEXT_PP(0) : NULL);

	/*
	 * The parse is malloc'd (core/import.c knows no memory contexts): from
	 * here to PG_TRY nothing may raise an error, or it would leak.
	 */
	memset(&parsed, 0, sizeof(parsed));
	why = wg_import_parse(config, &parsed, &line);
	if (why)
	{
		wg_import_free(&parsed);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid WireGuard config at line %d: %s", line, why),
				 errhint("Pass the server's config as `wg showconf <interface>` "
						 "prints it.")));
	}
	PG_TRY();
	{
		for (size_t i = 0; i < parsed.n_peers; i++)
		{
			wg_import_entry *p = &parsed.peers[i];
			ErrorContextCallback context;
			Imported	imp = base;

			context.callback = peer_line_context;
			context.arg = &p->line;
			context.previous = error_context_stack;
			error_context_stack = &context;
			imp.public_key = p->public_key;
			imp.preshared_key = p->has_preshared_key ? p->preshared_key : NULL;
			imp.keepalive = p->keepalive;
			config_addresses(p, &imp);
			(void) import_one(ifname, &imp);
			error_context_stack = context.previous;
			n++;
		}
	}
	PG_FINALLY();
	{
		wg_import_free(&parsed);
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT32(n);
}
