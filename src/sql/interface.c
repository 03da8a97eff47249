/*
 * interface.c
 *		wg_add_interface(): registering a WireGuard or AmneziaWG interface
 *		and its pool.
 */
#include "sql/sql.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "core/awg.h"
#include "core/validate.h"

PG_FUNCTION_INFO_V1(wg_add_interface);

/* argument positions of wg_add_interface() */
enum
{
	ARG_NAME,
	ARG_ENDPOINT,
	ARG_ADDRESS,
	ARG_ADDRESS6,
	ARG_DNS,
	ARG_LISTEN_PORT,
	ARG_MTU,
	ARG_KEEPALIVE,
	ARG_ALLOWED_IPS,
	ARG_PRIVATE_KEY,
	ARG_PUBLIC_KEY,
	ARG_POOL_START,
	ARG_POOL_END,
	ARG_PRESHARED_KEYS,
	ARG_EXCLUSIVE,
	ARG_BACKEND,
	ARG_NODE,					/* since 0.2 */
	ARG_FLAVOR,					/* since 0.3 */
	ARG_AWG,					/* since 0.3 */
	NUM_ARGS
};

/*
 * The node an interface is assigned to must be registered (wg_add_node()).
 * Inside SPI_connect().
 */
static void
check_node(const char *node)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(node)};

	if (node[0] == '\0')
		return;
	wgpeer_exec(&plan, "SELECT 1 FROM wgpeer.node WHERE name = $1",
				1, types, values, NULL);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node \"%s\" is not registered with wgpeer", node),
				 errhint("Register it first with wgpeer.wg_add_node('%s'), or "
						 "leave node null for an interface this server serves.",
						 node)));
}

/*
 * An optional integer argument, checked against [min, max]; def when NULL.
 */
static int
int_arg(FunctionCallInfo fcinfo, int argno, const char *name, int def,
		int min, int max, const char *hint)
{
	int			value;

	if (PG_ARGISNULL(argno))
		return def;
	value = PG_GETARG_INT32(argno);
	if (value < min || value > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between %d and %d, not %d",
						name, min, max, value),
				 hint ? errhint("%s", hint) : 0));
	return value;
}

/*
 * An IPv4 host address of the server's prefix, or def when the argument
 * is NULL.  Refuses other families, addresses outside the prefix and the
 * network and broadcast addresses.
 */
static uint32
pool_bound_arg(FunctionCallInfo fcinfo, int argno, const char *name,
			   uint32 network, uint32 broadcast, uint32 def)
{
	inet	   *ip;
	uint32		value;

	if (PG_ARGISNULL(argno))
		return def;
	ip = PG_GETARG_INET_PP(argno);
	if (ip_family(ip) != PGSQL_AF_INET)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be an IPv4 address", name)));
	value = wgpeer_inet4_value(ip);
	if (value <= network || value >= broadcast)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s %s is not a host address of the interface's prefix",
						name,
						DatumGetCString(DirectFunctionCall1(inet_out,
															PG_GETARG_DATUM(argno)))),
				 errhint("The pool must lie inside the prefix of address, "
						 "excluding its network and broadcast addresses.")));
	return value;
}

/*
 * Refuse an address or address6 prefix whose pool would hold addresses no
 * peer can use (wg_check_pool_prefix says which and why).
 */
static void
check_prefix(FunctionCallInfo fcinfo, int argno, const char *name)
{
	inet	   *ip = PG_GETARG_INET_PP(argno);
	bool		v4 = ip_family(ip) == PGSQL_AF_INET;
	const char *why;

	why = wg_check_pool_prefix(v4 ? AF_INET : AF_INET6, ip_addr(ip),
							   ip_bits(ip));
	if (why == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s %s is not a usable tunnel prefix", name,
					TextDatumGetCString(DirectFunctionCall1(network_show,
															PG_GETARG_DATUM(argno)))),
			 errdetail("%s.", why),
			 v4 ?
			 errhint("Use a private range such as 10.0.0.0/8, 172.16.0.0/12, "
					 "192.168.0.0/16 or 100.64.0.0/10, e.g. '10.10.0.1/24'.") :
			 errhint("Use a unique local prefix in fd00::/8, "
					 "e.g. 'fd00:10:10::1/64'.")));
}

/*
 * Warn when another interface of the same server (node) already listens
 * on port: two devices on one host cannot bind one UDP port, so the
 * second device refuses it (interface_status.settings_error says so).
 * Registrations are serialized by the caller's lock on the table.  A
 * warning, not an error: an interface may be registered before the other
 * one moves, and both may live in different network namespaces.
 */
static void
warn_shared_port(const char *name, int port, const char *node)
{
	Oid			types[3] = {INT4OID, TEXTOID, TEXTOID};
	Datum		values[3] = {Int32GetDatum(port),
		CStringGetTextDatum(node ? node : ""),
	CStringGetTextDatum(name)};
	char	   *others;

	/* at most three names, then how many more */
	if (SPI_execute_with_args("SELECT string_agg(quote_ident(name), ', ' ORDER BY name)"
							  "  FILTER (WHERE n <= 3)"
							  "  || CASE WHEN count(*) > 3"
							  "     THEN format(' and %s more', count(*) - 3) ELSE '' END"
							  " FROM (SELECT name, row_number() OVER (ORDER BY name) n"
							  "  FROM wgpeer.interface"
							  "  WHERE listen_port = $1 AND node = $2 AND name <> $3) o",
							  3, types, values, NULL, true, 1) != SPI_OK_SELECT ||
		(others = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
							   1)) == NULL)
		return;
	ereport(WARNING,
			(errmsg("interface \"%s\" listens on port %d, the port of %s on "
					"the same server", name, port, others),
			 errdetail("Two WireGuard devices in one network namespace cannot "
					   "bind one UDP port: the second device refuses it, and "
					   "interface_status.settings_error says so."),
			 errhint("Give one of them another port: UPDATE wgpeer.interface "
					 "SET listen_port = ... WHERE name = '%s'.", name)));
}

/*
 * Warn when the pool holds more addresses than the interface's backend
 * holds peers: the device would refuse every peer past its limit.  For
 * 'auto' the userspace figure applies if a daemon serves the interface.
 */
static void
warn_pool_size(const char *name, const char *backend, long long size)
{
	bool		uapi = strcmp(backend, "uapi") == 0;
	bool		netlink = strcmp(backend, "netlink") == 0;

	if (size > WG_KERNEL_MAX_PEERS && !uapi)
		ereport(WARNING,
				(errmsg("the pool of interface \"%s\" holds %lld addresses, "
						"more than the %d peers kernel WireGuard holds per "
						"interface", name, size, WG_KERNEL_MAX_PEERS),
				 netlink ?
				 errdetail("The kernel refuses every peer past %d "
						   "(MAX_PEERS_PER_DEVICE), and peers created past "
						   "that stay off the interface.", WG_KERNEL_MAX_PEERS) :
				 errdetail("Kernel WireGuard refuses every peer past %d "
						   "(MAX_PEERS_PER_DEVICE), and a userspace daemon "
						   "such as wireguard-go every peer past %d; peers "
						   "created past that stay off the interface.",
						   WG_KERNEL_MAX_PEERS, WG_UAPI_MAX_PEERS),
				 netlink ?
				 errhint("Use a /12 or longer prefix, or narrow the pool with "
						 "pool_start and pool_end.") :
				 errhint("Use a /16 or longer prefix (a /12 for kernel "
						 "WireGuard), or narrow the pool with pool_start and "
						 "pool_end.")));
	else if (size > WG_UAPI_MAX_PEERS && !netlink)
		ereport(WARNING,
				(errmsg("the pool of interface \"%s\" holds %lld addresses, "
						"more than the %d peers wireguard-go holds per "
						"interface", name, size, WG_UAPI_MAX_PEERS),
				 uapi ?
				 errdetail("The userspace daemon refuses every peer past %d "
						   "(wireguard-go's MaxPeers), and peers created past "
						   "that stay off the interface.", WG_UAPI_MAX_PEERS) :
				 errdetail("If a userspace daemon serves the interface, it "
						   "refuses every peer past %d (wireguard-go's "
						   "MaxPeers), and peers created past that stay off "
						   "the interface; kernel WireGuard holds up to %d.",
						   WG_UAPI_MAX_PEERS, WG_KERNEL_MAX_PEERS),
				 uapi ?
				 errhint("Use a /16 or longer prefix, or narrow the pool with "
						 "pool_start and pool_end.") :
				 errhint("Use a /16 or longer prefix, or narrow the pool with "
						 "pool_start and pool_end; if kernel WireGuard serves "
						 "the interface, register it with backend => "
						 "'netlink'.")));
}

/*
 * Parse a comma-separated list of CIDR prefixes into its normalised
 * text form ("0.0.0.0/0, ::/0").  Malformed prefixes raise the cidr
 * type's own error, which names the value.
 */
static char *
normalise_allowed_ips(const char *list)
{
	StringInfoData out;
	char	   *copy = pstrdup(list);
	char	   *item;
	char	   *save;
	int			count = 0;

	initStringInfo(&out);
	for (item = strtok_r(copy, ",", &save); item;
		 item = strtok_r(NULL, ",", &save))
	{
		Datum		cidr;

		while (*item == ' ')
			item++;
		while (*item && item[strlen(item) - 1] == ' ')
			item[strlen(item) - 1] = '\0';
		if (*item == '\0')
			continue;
		cidr = DirectFunctionCall1(cidr_in, CStringGetDatum(item));
		appendStringInfo(&out, "%s%s", count++ ? ", " : "",
						 DatumGetCString(DirectFunctionCall1(cidr_out, cidr)));
	}
	if (count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("allowed_ips cannot be empty"),
				 errhint("Clients route these prefixes through the tunnel; "
						 "the default is '0.0.0.0/0, ::/0'.")));
	return out.data;
}

/*
 * Refuse a pool or IPv6 prefix that overlaps another interface's, since
 * two interfaces would then hand out the same addresses.
 */
static void
check_overlap(const char *name, uint32 first, uint32 last, Datum address6)
{
	static SPIPlanPtr plan;
	Oid			types[4] = {TEXTOID, INETOID, INETOID, INETOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	values[0] = CStringGetTextDatum(name);
	values[1] = wgpeer_inet4_datum(first, 32);
	values[2] = wgpeer_inet4_datum(last, 32);
	values[3] = address6;
	if (!address6)
		nulls[3] = 'n';

	wgpeer_exec(&plan,
				"SELECT name, pool_start <= $3 AND pool_end >= $2"
				" FROM wgpeer.interface"
				" WHERE name = $1"
				"    OR (pool_start <= $3 AND pool_end >= $2)"
				"    OR network(address6) && network($4)"
				" ORDER BY name = $1 DESC LIMIT 1",
				4, types, values, nulls);
	if (SPI_processed == 0)
		return;
	{
		char	   *other = SPI_getvalue(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1);
		bool		isnull;
		bool		pool_clash = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
															SPI_tuptable->tupdesc,
															2, &isnull));

		if (strcmp(other, name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("interface \"%s\" already exists", name),
					 errhint("Choose another name, or remove the registered one "
							 "first with wgpeer.wg_remove_interface('%s').",
							 name)));
		if (pool_clash)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the address pool of \"%s\" overlaps the pool of "
							"interface \"%s\"", name, other),
					 errhint("Choose another prefix, or narrow the pools with "
							 "pool_start and pool_end.")));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the IPv6 prefix of \"%s\" overlaps the IPv6 prefix of "
						"interface \"%s\"", name, other),
				 errhint("Give each interface its own IPv6 prefix.")));
	}
}

/*
 * The flavor and AmneziaWG parameters of a new interface: NULL for plain
 * WireGuard; for AmneziaWG the caller's set, checked and normalised, or a
 * fresh random one when awg is NULL.
 */
static Jsonb *
awg_args(FunctionCallInfo fcinfo, const char **flavor)
{
	bool		given = !PG_ARGISNULL(ARG_AWG);

	*flavor = wgpeer_text_arg(fcinfo, ARG_FLAVOR, "flavor", false);
	if (*flavor == NULL)
		*flavor = "wireguard";
	if (strcmp(*flavor, "wireguard") == 0)
	{
		if (given)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("AmneziaWG parameters need flavor => 'amneziawg'"),
					 errdetail("A plain WireGuard interface sends no junk "
							   "packets and uses WireGuard's message types."),
					 errhint("Pass flavor => 'amneziawg' with awg, or leave "
							 "awg null.")));
		return NULL;
	}
	if (strcmp(*flavor, "amneziawg") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid flavor \"%s\"", *flavor),
				 errhint("Use \"wireguard\" (the default) or \"amneziawg\".")));
	if (!given)
		return wgpeer_awg_random();
	return wgpeer_awg_interface(PG_GETARG_JSONB_P(ARG_AWG), "awg", NULL);
}

/*
 * The INSERT of an interface row for the arguments the installed schema
 * declares: ncols of them (16 in 0.1, node since 0.2, flavor and awg
 * since 0.3).
 */
static char *
insert_sql(int ncols)
{
	static const char *const columns[NUM_ARGS] = {
		"name", "endpoint", "address", "address6", "dns", "listen_port",
		"mtu", "persistent_keepalive", "allowed_ips", "private_key",
		"public_key", "pool_start", "pool_end", "preshared_keys",
		"exclusive", "backend", "node", "flavor", "awg"
	};
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "INSERT INTO wgpeer.interface (");
	for (int k = 0; k < ncols; k++)
		appendStringInfo(&buf, "%s%s", k ? ", " : "", columns[k]);
	appendStringInfoString(&buf, ") VALUES (");
	for (int k = 0; k < ncols; k++)
		appendStringInfo(&buf, "%s$%d", k ? ", " : "", k + 1);
	appendStringInfoString(&buf, ") RETURNING *");
	return buf.data;
}

/*
 * wg_add_interface(name, endpoint, address, ...) returns interface: check
 * every setting, derive the pool and the server keys, and store both.
 */
Datum
wg_add_interface(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr insert_plans[3];
	static SPIPlanPtr pool_plan;
	char	   *name = wgpeer_text_arg(fcinfo, ARG_NAME, "name", true);
	char	   *endpoint = wgpeer_text_arg(fcinfo, ARG_ENDPOINT, "endpoint", true);
	char	   *dns = wgpeer_dns_arg(fcinfo, ARG_DNS);
	char	   *allowed_arg = wgpeer_text_arg(fcinfo, ARG_ALLOWED_IPS, "allowed_ips", false);
	char	   *private_key = wgpeer_text_arg(fcinfo, ARG_PRIVATE_KEY, "private_key", false);
	char	   *public_key = wgpeer_text_arg(fcinfo, ARG_PUBLIC_KEY, "public_key", false);
	char	   *backend = wgpeer_text_arg(fcinfo, ARG_BACKEND, "backend", false);
	bool		has_node = PG_NARGS() > ARG_NODE;	/* declared as in 0.2 */
	char	   *node = has_node ?
		wgpeer_text_arg(fcinfo, ARG_NODE, "node", false) : NULL;
	bool		has_awg = PG_NARGS() > ARG_AWG; /* declared as in 0.3 */
	const char *flavor = "wireguard";
	Jsonb	   *awg = NULL;
	int			variant = has_awg ? 2 : has_node ? 1 : 0;
	int			ncols = has_awg ? NUM_ARGS : has_node ? ARG_FLAVOR : ARG_NODE;
	char	   *allowed_ips;
	const char *why;
	inet	   *address;
	int			bits;
	uint32		server;
	uint32		hostmask;
	uint32		network;
	uint32		broadcast;
	uint32		first;
	uint32		last;
	Datum		address6 = (Datum) 0;
	int			listen_port;
	int			mtu;
	int			keepalive;
	bool		preshared_keys;
	Datum		values[NUM_ARGS];
	char		nulls[NUM_ARGS];
	Oid			types[NUM_ARGS] = {TEXTOID, TEXTOID, INETOID, INETOID, TEXTOID,
		INT4OID, INT4OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, INETOID, INETOID,
	BOOLOID, BOOLOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID};
	Datum		result;

	wgpeer_require_primary("wg_add_interface");
	if ((why = wg_check_ifname(name)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid interface name \"%s\"", name),
				 errdetail("%s.", why),
				 errhint("Use the name the interface has or will have in "
						 "the kernel, such as wg0.")));
	if ((why = wg_check_endpoint(endpoint)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid endpoint \"%s\"", endpoint),
				 errdetail("%s.", why),
				 errhint("Write the address clients connect to as host:port, "
						 "e.g. vpn.example.com:51820 or [2001:db8::1]:51820.")));

	/* the server's IPv4 address and prefix define the pool */
	if (PG_ARGISNULL(ARG_ADDRESS))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("address cannot be null"),
				 errhint("Give the server's tunnel address with its prefix, "
						 "e.g. '10.10.0.1/24'.")));
	address = PG_GETARG_INET_PP(ARG_ADDRESS);
	if (ip_family(address) != PGSQL_AF_INET)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("address must be an IPv4 address with its prefix"),
				 errhint("Pass an IPv6 address and prefix as address6.")));
	check_prefix(fcinfo, ARG_ADDRESS, "address");
	bits = ip_bits(address);
	if (bits > 30)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("prefix /%d is too small to hold a client", bits),
				 errdetail("A /30 is the smallest prefix with room for the "
						   "server and one client."),
				 errhint("Give the prefix with the address, e.g. '10.10.0.1/24'.")));
	server = wgpeer_inet4_value(address);
	hostmask = bits == 0 ? ~(uint32) 0 : ~(~(uint32) 0 << (32 - bits));
	network = server & ~hostmask;
	broadcast = network | hostmask;
	if (server == network || server == broadcast)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("address must be a host address, not the %s address "
						"of its prefix",
						server == network ? "network" : "broadcast"),
				 errhint("The server usually takes the first host, "
						 "e.g. '10.10.0.1/24'.")));

	first = pool_bound_arg(fcinfo, ARG_POOL_START, "pool_start",
						   network, broadcast, network + 1);
	last = pool_bound_arg(fcinfo, ARG_POOL_END, "pool_end",
						  network, broadcast, broadcast - 1);
	if (first > last)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pool_start is after pool_end")));
	if (first == last && first == server)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the pool holds only the server's own address"),
				 errhint("Widen the pool with pool_start and pool_end.")));

	if (!PG_ARGISNULL(ARG_ADDRESS6))
	{
		inet	   *a6 = PG_GETARG_INET_PP(ARG_ADDRESS6);

		if (ip_family(a6) != PGSQL_AF_INET6)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("address6 must be an IPv6 address with its prefix"),
					 errhint("e.g. 'fd00:10:10::1/64'.")));
		check_prefix(fcinfo, ARG_ADDRESS6, "address6");
		if (128 - ip_bits(a6) < 32 - bits)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("IPv6 prefix /%d is smaller than the IPv4 prefix /%d",
							ip_bits(a6), bits),
					 errdetail("Each peer's IPv6 address mirrors its IPv4 "
							   "offset, so the IPv6 prefix needs at least %d "
							   "host bits.", 32 - bits),
					 errhint("Use a /64.")));
		address6 = PG_GETARG_DATUM(ARG_ADDRESS6);
	}


	listen_port = int_arg(fcinfo, ARG_LISTEN_PORT, "listen_port", 51820,
						  1, 65535, NULL);
	mtu = int_arg(fcinfo, ARG_MTU, "mtu", 0, 576, 9000,
				  "WireGuard's default is 1420; leave it null to let clients choose.");
	keepalive = int_arg(fcinfo, ARG_KEEPALIVE, "persistent_keepalive", 0,
						0, 65535, "25 seconds keeps most NAT mappings open.");
	allowed_ips = normalise_allowed_ips(allowed_arg ? allowed_arg :
										"0.0.0.0/0, ::/0");
	preshared_keys = PG_ARGISNULL(ARG_PRESHARED_KEYS) ||
		PG_GETARG_BOOL(ARG_PRESHARED_KEYS);
	if (backend == NULL)
		backend = "auto";
	else if (strcmp(backend, "auto") != 0 && strcmp(backend, "netlink") != 0 &&
			 strcmp(backend, "uapi") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid backend \"%s\"", backend),
				 errdetail("The backend is how the worker reaches the interface."),
				 errhint("Use \"netlink\" for kernel WireGuard, \"uapi\" for a "
						 "userspace daemon such as wireguard-go, or \"auto\" "
						 "(the default) to use the daemon's socket when it exists.")));

	if (has_awg)
		awg = awg_args(fcinfo, &flavor);

	/* server keys: derive, check, or generate */
	{
		uint8_t		priv[WG_KEY_LEN];
		uint8_t		pub[WG_KEY_LEN];

		if (private_key)
		{
			wgpeer_parse_key(private_key, "private_key", priv);
			wgpeer_check_key(priv, true, "private_key",
							 "Generate one with wgpeer.wg_genkey() or `wg genkey`, "
							 "or leave private_key null to have a key pair "
							 "generated.");
			wg_key_public(pub, priv);
			if (public_key)
			{
				uint8_t		given[WG_KEY_LEN];

				wgpeer_parse_key(public_key, "public_key", given);
				wgpeer_check_key(given, false, "public_key",
							 "Pass the server's public key as `wg pubkey` prints "
							 "it, or its private_key instead.");
				if (memcmp(given, pub, WG_KEY_LEN) != 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("public_key does not belong to private_key"),
							 errhint("Pass only private_key; the public key "
									 "is derived from it.")));
			}
			public_key = wgpeer_key_text(pub);
		}
		else if (public_key)
		{
			wgpeer_parse_key(public_key, "public_key", pub);
			wgpeer_check_key(pub, false, "public_key",
							 "Pass the server's public key as `wg pubkey` prints "
							 "it, or its private_key instead.");
		}
		else
			wgpeer_generate_pair(&private_key, &public_key);
		wg_key_wipe(priv, sizeof(priv));
	}

	memset(nulls, ' ', sizeof(nulls));
	values[ARG_NAME] = CStringGetTextDatum(name);
	values[ARG_ENDPOINT] = CStringGetTextDatum(endpoint);
	values[ARG_ADDRESS] = PG_GETARG_DATUM(ARG_ADDRESS);
	values[ARG_ADDRESS6] = address6;
	nulls[ARG_ADDRESS6] = address6 ? ' ' : 'n';
	values[ARG_DNS] = dns ? CStringGetTextDatum(dns) : (Datum) 0;
	nulls[ARG_DNS] = dns ? ' ' : 'n';
	values[ARG_LISTEN_PORT] = Int32GetDatum(listen_port);
	values[ARG_MTU] = Int32GetDatum(mtu);
	nulls[ARG_MTU] = mtu ? ' ' : 'n';
	values[ARG_KEEPALIVE] = Int32GetDatum(keepalive);
	nulls[ARG_KEEPALIVE] = keepalive ? ' ' : 'n';
	values[ARG_ALLOWED_IPS] = CStringGetTextDatum(allowed_ips);
	values[ARG_PRIVATE_KEY] = private_key ? CStringGetTextDatum(private_key) : (Datum) 0;
	nulls[ARG_PRIVATE_KEY] = private_key ? ' ' : 'n';
	values[ARG_PUBLIC_KEY] = CStringGetTextDatum(public_key);
	values[ARG_POOL_START] = wgpeer_inet4_datum(first, 32);
	values[ARG_POOL_END] = wgpeer_inet4_datum(last, 32);
	values[ARG_PRESHARED_KEYS] = BoolGetDatum(preshared_keys);
	values[ARG_EXCLUSIVE] = BoolGetDatum(!PG_ARGISNULL(ARG_EXCLUSIVE) &&
										 PG_GETARG_BOOL(ARG_EXCLUSIVE));
	values[ARG_BACKEND] = CStringGetTextDatum(backend);
	values[ARG_NODE] = CStringGetTextDatum(node ? node : "");
	values[ARG_FLAVOR] = CStringGetTextDatum(flavor);
	values[ARG_AWG] = awg ? JsonbPGetDatum(awg) : (Datum) 0;
	nulls[ARG_AWG] = awg ? ' ' : 'n';

	SPI_connect();
	/* serialize registrations so the overlap check cannot race */
	SPI_execute("LOCK TABLE wgpeer.interface IN SHARE ROW EXCLUSIVE MODE",
				false, 0);
	check_overlap(name, first, last, address6);
	/* peers have routes since 0.2, when the node argument came too */
	if (has_node)
		wgpeer_check_prefix_unrouted(name, PG_GETARG_DATUM(ARG_ADDRESS),
									 address6);
	if (node)
		check_node(node);
	wgpeer_exec(&insert_plans[variant], insert_sql(ncols), ncols, types,
				values, nulls);
	result = PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc));
	wgpeer_exec(&pool_plan,
				"INSERT INTO wgpeer.pool (interface, next_address)"
				" VALUES ($1, $12)",
				NUM_ARGS, types, values, nulls);
	/* interface.node came with 0.2's schema (a 0.1 one awaits its update) */
	if (has_node)
		warn_shared_port(name, listen_port, node);
	SPI_finish();

	/* registered; say so if the device cannot hold the whole pool */
	warn_pool_size(name, backend, (long long) last - first + 1 -
				   (server >= first && server <= last ? 1 : 0));
	PG_RETURN_DATUM(result);
}
