/*
 * routes.c
 *		Per-peer routing: wg_set_peer_allowed_ips(), what a client routes
 *		through the tunnel (a split tunnel), and wg_set_peer_routes(), the
 *		subnets behind a peer (site to site).
 *
 * A peer's allowed_ips replace its interface's allowed_ips in its client
 * config only; nothing changes on the interface.  Its routes become allowed
 * IPs of the peer on the interface besides its tunnel addresses: the
 * peer_queue trigger (queue.c) queues the change for a live peer, and the
 * worker's apply, reconcile and export carry them.
 *
 * WireGuard gives an allowed IP to one peer only, so the routes of the
 * peers of an interface that are not revoked (a suspended or expired peer
 * keeps its routes, for when it comes back) never overlap, nor do they
 * overlap the tunnel prefixes of any interface (where the pools and the
 * peers' addresses are: a peer routed another interface's prefix could
 * send packets from its addresses), nor the ranges no pool may touch
 * (loopback, link-local, multicast...: core/validate.c).  Setters of one
 * interface serialize on its row (FOR NO KEY UPDATE, which neither the
 * worker's nor foreign keys' KEY SHARE locks wait for) and check with the
 * latest snapshot, so that under REPEATABLE READ too two sessions cannot
 * claim overlapping routes.  Against a registration of an interface,
 * which locks the interface table in SHARE ROW EXCLUSIVE mode, a setter
 * holds it in ROW EXCLUSIVE mode: one waits for the other, and the second
 * sees the first's prefix or routes (wgpeer_check_prefix_unrouted()).
 *
 * A wide route (shorter than /8 in IPv4 or /32 in IPv6, a default route
 * above all) lets its peer send from nearly any address and takes what no
 * other peer routes: only wg_set_peer_wide_routes(), which the
 * administrator keeps, sets one.  It is left out of the overlap checks
 * with tunnel prefixes and addresses, which it necessarily covers, and
 * with routes of another length, since WireGuard sends a packet to the
 * peer with the longest matching prefix.
 */
#include "sql/sql.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "core/validate.h"

PG_FUNCTION_INFO_V1(wg_set_peer_allowed_ips);
PG_FUNCTION_INFO_V1(wg_set_peer_routes);
PG_FUNCTION_INFO_V1(wg_set_peer_wide_routes);

/* SQL: whether cidr r is narrow enough for any caller (not a wide route). */
#define NARROW(r) \
	"(masklen(" r ") >= CASE family(" r ") WHEN 4 THEN " \
	CppAsString2(WG_ROUTE_MIN_BITS_V4) " ELSE " \
	CppAsString2(WG_ROUTE_MIN_BITS_V6) " END)"

/* A list of prefixes given as a cidr[] argument. */
typedef struct PrefixList
{
	Datum	   *items;
	int			n;
} PrefixList;

/* The text of a cidr datum. */
static char *
cidr_text(Datum d)
{
	return DatumGetCString(DirectFunctionCall1(cidr_out, d));
}

/* The text of a peer_id. */
static char *
uuid_text(Datum d)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, d));
}

/* qsort order of cidr datums: the order of the cidr type. */
static int
cidr_cmp(const void *a, const void *b)
{
	return DatumGetInt32(DirectFunctionCall2(network_cmp,
											 *(const Datum *) a,
											 *(const Datum *) b));
}

/*
 * Argument argno, a cidr[] called name, as a list (n = -1 for SQL NULL):
 * one dimension, no null element, at most WG_PEER_PREFIXES_MAX prefixes,
 * none listed twice.  When disjoint, no two may overlap either.
 */
static PrefixList
prefix_list_arg(FunctionCallInfo fcinfo, int argno, const char *name,
				const char *example, bool disjoint)
{
	PrefixList	list = {NULL, -1};
	ArrayType  *arr;
	bool	   *nulls;

	if (PG_ARGISNULL(argno))
		return list;
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array, not %d-dimensional",
						name, ARR_NDIM(arr)),
				 errhint("List the prefixes in one array, e.g. %s.", example)));
	deconstruct_array(arr, CIDROID, -1, false, TYPALIGN_INT,
					  &list.items, &nulls, &list.n);
	for (int i = 0; i < list.n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s cannot contain null (element %d)", name, i + 1),
					 errhint("List prefixes only, e.g. %s.", example)));
	if (list.n > WG_PEER_PREFIXES_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many %s: %d, at most %d", name, list.n,
						WG_PEER_PREFIXES_MAX),
				 errhint("Summarise adjacent prefixes into larger ones.")));
	for (int i = 0; i < list.n; i++)
		for (int k = 0; k < i; k++)
		{
			if (DatumGetBool(DirectFunctionCall2(network_eq, list.items[i],
												 list.items[k])))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s lists %s twice", name,
								cidr_text(list.items[i])),
						 errhint("List each prefix once.")));
			if (disjoint &&
				DatumGetBool(DirectFunctionCall2(network_overlap, list.items[i],
												 list.items[k])))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s %s and %s overlap", name,
								cidr_text(list.items[k]),
								cidr_text(list.items[i])),
						 errhint("List the larger prefix only: it covers the "
								 "smaller one.")));
		}
	return list;
}

/* The list as a cidr[] datum. */
static Datum
prefix_array(const PrefixList *list)
{
	return PointerGetDatum(construct_array(list->items, list->n, CIDROID, -1,
										   false, TYPALIGN_INT));
}

/*
 * Lock peer_id's row, with the lock of its interface's routes first when
 * routes is set (the order wg_remove_interface() locks in: interface,
 * then peers); raise the usual error for an unknown id and 55000 for a
 * revoked peer.  Returns the peer's interface.  Inside SPI_connect().
 */
static char *
lock_peer(Datum peer_id, bool routes, const char *what)
{
	static SPIPlanPtr find_plan;
	static SPIPlanPtr iface_plan;
	static SPIPlanPtr peer_plan;
	Oid			types[1] = {UUIDOID};
	Datum		values[1] = {peer_id};
	char	   *ifname = NULL;

	if (routes)
	{
		Oid			iface_types[1] = {TEXTOID};
		Datum		iface_values[1];

		/* no interface registers while this checks every one's prefixes */
		if (SPI_execute("LOCK TABLE wgpeer.interface IN ROW EXCLUSIVE MODE",
						false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "wgpeer: could not lock wgpeer.interface");

		/* a peer never changes interface: read it, then lock that first */
		wgpeer_exec(&find_plan,
					"SELECT interface FROM wgpeer.peer WHERE peer_id = $1",
					1, types, values, NULL);
		if (SPI_processed == 0)
			wgpeer_peer_not_found(peer_id);
		ifname = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		iface_values[0] = CStringGetTextDatum(ifname);
		wgpeer_exec(&iface_plan,
					"SELECT 1 FROM wgpeer.interface WHERE name = $1"
					" FOR NO KEY UPDATE",
					1, iface_types, iface_values, NULL);
	}
	wgpeer_exec(&peer_plan,
				"SELECT status, interface FROM wgpeer.peer"
				" WHERE peer_id = $1 FOR UPDATE",
				1, types, values, NULL);
	if (SPI_processed == 0)
		wgpeer_peer_not_found(peer_id);
	if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
			   "revoked") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("peer %s is revoked and cannot be given %s",
						uuid_text(peer_id), what),
				 errhint("Create a new peer with wgpeer.wg_create_peer().")));
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
}

/*
 * Run a check with the latest snapshot rather than the transaction's, so
 * that it sees what a setter that held the interface's lock before this
 * one committed, under REPEATABLE READ too.  At most one row.
 */
static void
check_latest(SPIPlanPtr *plan, const char *sql, Datum *values)
{
	Oid			types[3] = {TEXTOID, UUIDOID, CIDRARRAYOID};
	int			rc;

	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, 3, types);

		if (p == NULL)
			elog(ERROR, "wgpeer: could not prepare \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*plan = p;
	}
	rc = SPI_execute_snapshot(*plan, values, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 1);
	if (rc < 0)
		elog(ERROR, "wgpeer: could not execute \"%s\": %s",
			 sql, SPI_result_code_string(rc));
}

/* Column c of the first row of the last check, as text. */
static char *
found(int c)
{
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, c);
}

/*
 * Refuse a route in a range no peer may use (22023), and, unless wide_ok,
 * a wide route (22023, naming the function that sets one).
 */
static void
check_route_ranges(const PrefixList *list, bool wide_ok)
{
	for (int i = 0; i < list->n; i++)
	{
		inet	   *ip = DatumGetInetPP(list->items[i]);
		bool		v4 = ip_family(ip) == PGSQL_AF_INET;
		int			min_bits = v4 ? WG_ROUTE_MIN_BITS_V4 : WG_ROUTE_MIN_BITS_V6;
		bool		wide = ip_bits(ip) < min_bits;
		const char *why;

		if (wide && !wide_ok)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("route %s is wider than /%d",
							cidr_text(list->items[i]), min_bits),
					 errdetail("A route that wide (a default route above all) "
							   "lets the peer send from nearly any address "
							   "and takes what no other peer routes."),
					 errhint("Route the subnets behind the peer, e.g. "
							 "'{192.168.77.0/24}'; an administrator gives a "
							 "peer a wider route with "
							 "wgpeer.wg_set_peer_wide_routes().")));
		why = wg_check_route_prefix(v4 ? AF_INET : AF_INET6, ip_addr(ip),
									ip_bits(ip), wide);
		if (why)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("route %s is in a reserved range",
							cidr_text(list->items[i])),
					 errdetail("%s.", why),
					 errhint("Route the subnets behind the peer, e.g. "
							 "'{192.168.77.0/24}'.")));
	}
}

/*
 * Refuse routes that overlap, on ifname, the address of another peer that
 * holds one, the routes of another peer that is not revoked, or, on any
 * interface, the tunnel prefixes (the pools): SQLSTATE 23P01, naming both
 * sides.  Wide routes are left out as the file's comment says.
 */
static void
check_routes_free(const char *ifname, Datum peer_id, Datum routes)
{
	static SPIPlanPtr address_plan;
	static SPIPlanPtr prefix_plan;
	static SPIPlanPtr route_plan;
	Datum		values[3] = {CStringGetTextDatum(ifname), peer_id, routes};

	check_latest(&address_plan,
				 "SELECT r::text, p.peer_id::text,"
				 " CASE WHEN set_masklen(p.address, 32) <<= r"
				 "      THEN host(p.address) ELSE host(p.address6) END"
				 " FROM wgpeer.peer p, unnest($3) r"
				 " WHERE p.interface = $1 AND p.released_at IS NULL"
				 "   AND " NARROW("r")
				 "   AND (set_masklen(p.address, 32) <<= r"
				 "        OR set_masklen(p.address6, 128) <<= r)"
				 " ORDER BY p.address LIMIT 1",
				 values);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXCLUSION_VIOLATION),
				 errmsg("route %s overlaps the tunnel address %s of peer %s",
						found(1), found(3), found(2)),
				 errdetail("A route is a subnet behind the peer, outside the "
						   "tunnel addresses of interface \"%s\".", ifname),
				 errhint("Route the subnets behind the peer, e.g. "
						 "'{192.168.77.0/24}'.")));

	/* the peer's own interface first, for the more telling message */
	check_latest(&prefix_plan,
				 "SELECT r::text, n::text, i.name, i.name = $1"
				 " FROM wgpeer.interface i,"
				 "  LATERAL (VALUES (network(i.address)),"
				 "                  (network(i.address6))) v(n),"
				 "  unnest($3) r"
				 " WHERE n IS NOT NULL AND r && n AND " NARROW("r")
				 " ORDER BY i.name = $1 DESC, i.name, n, r LIMIT 1",
				 values);
	if (SPI_processed > 0 && strcmp(found(4), "t") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXCLUSION_VIOLATION),
				 errmsg("route %s overlaps the tunnel prefix %s of interface "
						"\"%s\", where its address pool is",
						found(1), found(2), ifname),
				 errdetail("The interface reaches its peers' tunnel addresses "
						   "itself; a route is a subnet behind one peer."),
				 errhint("Route a subnet outside %s, or narrow the route.",
						 found(2))));
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXCLUSION_VIOLATION),
				 errmsg("route %s overlaps the tunnel prefix %s of interface "
						"\"%s\"", found(1), found(2), found(3)),
				 errdetail("Interface \"%s\" hands out addresses there: a "
						   "peer of interface \"%s\" routed them could send "
						   "packets from its peers' addresses.",
						   found(3), ifname),
				 errhint("Route a subnet outside %s, or narrow the route.",
						 found(2))));

	check_latest(&route_plan,
				 "SELECT r::text, o::text, p.peer_id::text, p.status"
				 " FROM wgpeer.peer p, unnest(p.routes) o, unnest($3) r"
				 " WHERE p.interface = $1 AND p.routes IS NOT NULL"
				 "   AND p.status <> 'revoked' AND p.peer_id <> $2"
				 "   AND o && r"
				 "   AND (masklen(o) = masklen(r)"
				 "        OR (" NARROW("o") " AND " NARROW("r") "))"
				 " ORDER BY p.peer_id, o, r LIMIT 1",
				 values);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXCLUSION_VIOLATION),
				 errmsg("route %s overlaps route %s of peer %s on interface \"%s\"",
						found(1), found(2), found(3), ifname),
				 errdetail("WireGuard sends a subnet to one peer only; the "
						   "other peer is %s and keeps its routes until it "
						   "is revoked.", found(4)),
				 errhint("Take the route from peer %s with "
						 "wgpeer.wg_set_peer_routes() first, or route "
						 "another subnet.", found(3))));
}

/*
 * Refuse to register an interface whose tunnel prefixes (address,
 * address6: inet datums, address6 may be 0) overlap a route of a peer of
 * another interface that is not revoked: 23P01, naming the route and its
 * peer.  The caller holds the interface table in SHARE ROW EXCLUSIVE
 * mode, so no route setter is between its check and its commit; the
 * latest snapshot sees the routes of one that committed while this
 * transaction's snapshot was older.  Inside SPI_connect().
 */
void
wgpeer_check_prefix_unrouted(const char *ifname, Datum address, Datum address6)
{
	static SPIPlanPtr plan;
	Oid			types[3] = {TEXTOID, INETOID, INETOID};
	Datum		values[3] = {CStringGetTextDatum(ifname), address, address6};
	char		nulls[3] = {' ', ' ', address6 ? ' ' : 'n'};
	int			rc;

	if (plan == NULL)
	{
		const char *sql =
			"SELECT network(n)::text, o::text, p.peer_id::text, p.interface"
			" FROM (VALUES ($2), ($3)) v(n), wgpeer.peer p, unnest(p.routes) o"
			" WHERE n IS NOT NULL AND p.routes IS NOT NULL"
			"   AND p.status <> 'revoked' AND p.interface <> $1"
			"   AND o && network(n) AND " NARROW("o")
			" ORDER BY p.interface, p.peer_id, o LIMIT 1";
		SPIPlanPtr	p = SPI_prepare(sql, 3, types);

		if (p == NULL)
			elog(ERROR, "wgpeer: could not prepare \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		plan = p;
	}
	rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 1);
	if (rc < 0)
		elog(ERROR, "wgpeer: could not check the routes of other interfaces: %s",
			 SPI_result_code_string(rc));
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_EXCLUSION_VIOLATION),
				 errmsg("tunnel prefix %s of interface \"%s\" overlaps route "
						"%s of peer %s on interface \"%s\"",
						found(1), ifname, found(2), found(3), found(4)),
				 errdetail("That peer could send packets from the addresses "
						   "this interface would hand out."),
				 errhint("Choose another prefix, or take the route from the "
						 "peer with wgpeer.wg_set_peer_routes() first.")));
}

/*
 * wg_set_peer_allowed_ips(peer_id uuid, allowed_ips cidr[]) returns text:
 * what the peer's client routes through the tunnel (a split tunnel), in
 * place of its interface's allowed_ips; NULL gives it the interface's
 * again.  Returns the peer's new client config, which the client must
 * import: only its [Peer] AllowedIPs line changes.
 */
Datum
wg_set_peer_allowed_ips(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan;
	MemoryContext outer = CurrentMemoryContext;
	PrefixList	list;
	Datum		peer_id;
	Oid			types[2] = {UUIDOID, CIDRARRAYOID};
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	char	   *config;
	text	   *result;

	wgpeer_require_primary("wg_set_peer_allowed_ips");
	peer_id = wgpeer_peer_id_arg(fcinfo, 0);
	list = prefix_list_arg(fcinfo, 1, "allowed_ips",
						   "'{10.0.0.0/8, 192.168.0.0/16}'", false);
	if (list.n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("allowed_ips cannot be empty"),
				 errdetail("A client with no allowed IPs sends nothing "
						   "through the tunnel."),
				 errhint("Pass NULL to give the peer its interface's "
						 "allowed_ips again.")));

	SPI_connect();
	lock_peer(peer_id, false, "allowed IPs");
	values[0] = peer_id;
	values[1] = list.n < 0 ? (Datum) 0 : prefix_array(&list);
	nulls[1] = list.n < 0 ? 'n' : ' ';
	wgpeer_exec(&plan,
				"UPDATE wgpeer.peer SET allowed_ips = $2 WHERE peer_id = $1",
				2, types, values, nulls);
	config = wgpeer_render_peer_config(DatumGetUUIDP(peer_id));
	MemoryContextSwitchTo(outer);
	result = cstring_to_text(config);
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}

/*
 * Set the routes of the peer in argument 0 to the cidr[] in argument 1;
 * with wide_ok, wide routes too.  Returns the routes as stored, or NULL.
 */
static Datum
set_routes(FunctionCallInfo fcinfo, bool wide_ok)
{
	static SPIPlanPtr plan;
	PrefixList	list;
	Datum		peer_id;
	Datum		routes = (Datum) 0;
	char	   *ifname;
	Oid			types[2] = {UUIDOID, CIDRARRAYOID};
	Datum		values[2];
	char		nulls[2] = {' ', 'n'};

	peer_id = wgpeer_peer_id_arg(fcinfo, 0);
	list = prefix_list_arg(fcinfo, 1, "routes", "'{192.168.77.0/24}'", true);
	check_route_ranges(&list, wide_ok);
	if (list.n > 0)
	{
		qsort(list.items, list.n, sizeof(Datum), cidr_cmp);
		routes = prefix_array(&list);
	}

	SPI_connect();
	ifname = lock_peer(peer_id, true, "routes");
	if (routes)
		check_routes_free(ifname, peer_id, routes);
	values[0] = peer_id;
	values[1] = routes;
	nulls[1] = routes ? ' ' : 'n';
	wgpeer_exec(&plan,
				"UPDATE wgpeer.peer SET routes = $2 WHERE peer_id = $1",
				2, types, values, nulls);
	SPI_finish();
	return routes;
}

/*
 * wg_set_peer_routes(peer_id uuid, routes cidr[]) returns cidr[]: the
 * subnets behind the peer, which its interface sends to it (allowed IPs
 * besides its tunnel addresses); NULL or an empty array removes them.
 * Returns the routes as stored (sorted), or NULL.  No wide route.
 */
Datum
wg_set_peer_routes(PG_FUNCTION_ARGS)
{
	Datum		routes;

	wgpeer_require_primary("wg_set_peer_routes");
	routes = set_routes(fcinfo, false);
	if (!routes)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(routes);
}

/*
 * wg_set_peer_wide_routes(peer_id uuid, routes cidr[]) returns cidr[]:
 * wg_set_peer_routes() for an administrator, who may also give the peer
 * wide routes, a default route (0.0.0.0/0, ::/0) included.  Not granted
 * to anyone by default.
 */
Datum
wg_set_peer_wide_routes(PG_FUNCTION_ARGS)
{
	Datum		routes;

	wgpeer_require_primary("wg_set_peer_wide_routes");
	routes = set_routes(fcinfo, true);
	if (!routes)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(routes);
}
