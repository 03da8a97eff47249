/*
 * move.c
 *		wg_move_peer(): a peer leaves its interface (and node) for another,
 *		in the caller's transaction.
 *
 * The peer row stays the same row: its id, keys, plan, quota, device
 * limit slot, events and usage go along.  It gets an address on the new
 * interface (the allocator's, pool.c) and gives the old one back; the
 * peer_queue trigger queues the removal of its key from the old interface
 * and its addition to the new one (queue.c), and node mode's row filters
 * turn the update into a deletion on the old node and an insertion on the
 * new one (07-node.sql, 13-locations.sql).  Traffic the old node counted
 * leaves with it, so a quota's base moves down by it, as when a whole
 * interface moves to another node.
 *
 * The client keeps its keys; what its config needs changed is returned as
 * the list of the settings whose lines differ (Address and Endpoint when
 * the two interfaces share their server key and settings).
 */
#include "sql/sql.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"

PG_FUNCTION_INFO_V1(wg_move_peer);

/*
 * Is line (up to its newline) one of the lines of config?
 */
static bool
has_line(const char *config, const char *line, size_t len)
{
	const char *p = config;

	while (*p)
	{
		const char *end = strchr(p, '\n');
		size_t		n = end ? (size_t) (end - p) : strlen(p);

		if (n == len && strncmp(p, line, len) == 0)
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

/*
 * Append to *names the setting names ("Address" of "Address = ...") of
 * the lines of a that are not lines of b, once each.
 */
static void
missing_settings(const char *a, const char *b, List **names)
{
	const char *p = a;

	while (*p)
	{
		const char *end = strchr(p, '\n');
		size_t		n = end ? (size_t) (end - p) : strlen(p);
		const char *eq = memchr(p, '=', n);

		if (eq && p[0] != '#' && !has_line(b, p, n))
		{
			char	   *name = pnstrdup(p, eq - p);
			ListCell   *lc;
			bool		seen = false;

			name[strcspn(name, " ")] = '\0';
			foreach(lc, *names)
				seen |= strcmp(lfirst(lc), name) == 0;
			if (!seen)
				*names = lappend(*names, name);
		}
		if (!end)
			break;
		p = end + 1;
	}
}

/*
 * The settings whose lines differ between the configs before and after,
 * as a text[], in the order they come in the new config.
 */
static Datum
changed_settings(const char *before, const char *after)
{
	List	   *names = NIL;
	Datum	   *items;
	int			n = 0;
	ListCell   *lc;

	missing_settings(after, before, &names);
	missing_settings(before, after, &names);
	items = palloc(sizeof(Datum) * (list_length(names) + 1));
	foreach(lc, names)
		items[n++] = CStringGetTextDatum(lfirst(lc));
	return PointerGetDatum(construct_array(items, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/*
 * Refuse to move peer_id in status from its interface to target: a
 * revoked or expired peer (55000), one already there (22023), one routing
 * subnets (55000: the routes' overlap check belongs to the interface).
 */
static void
check_movable(Datum peer_id, const char *status, const char *from,
			  const char *target, bool has_routes)
{
	char	   *id = DatumGetCString(DirectFunctionCall1(uuid_out, peer_id));

	if (strcmp(status, "revoked") == 0 || strcmp(status, "expired") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("peer %s is %s and cannot be moved", id, status),
				 strcmp(status, "expired") == 0 ?
				 errhint("Renew it with wgpeer.wg_renew_peer() first.") :
				 errhint("Create a new peer with wgpeer.wg_create_peer().")));
	if (strcmp(from, target) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("peer %s is already on interface \"%s\"", id, target),
				 errhint("Name another interface; SELECT * FROM "
						 "wgpeer.location_load shows the locations.")));
	if (has_routes)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("peer %s routes subnets behind it and cannot be moved",
						id),
				 errdetail("Its routes were checked against interface \"%s\" "
						   "only.", from),
				 errhint("Clear them with wgpeer.wg_set_peer_routes(peer_id, "
						 "NULL), move the peer, and set them again.")));
}

/*
 * Traffic the old node counted leaves with the peer (the old node deletes
 * its row): a quota's base moves down by it, so that what was used this
 * period stays used, and the primary's copy of that row goes.  Inside
 * SPI_connect().
 */
static void
leave_node(Datum peer_id, const char *new_node)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {UUIDOID, TEXTOID};
	Datum		values[2] = {peer_id, CStringGetTextDatum(new_node)};

	wgpeer_exec(&plan,
				"WITH gone AS (DELETE FROM wgpeer.peer_traffic t"
				"  WHERE t.peer_id = $1 AND t.node <> $2"
				"  RETURNING least(t.rx_bytes::numeric + t.tx_bytes,"
				"                  9223372036854775807) AS bytes)"
				" UPDATE wgpeer.quota q"
				" SET base_bytes = greatest(q.base_bytes -"
				"   (SELECT coalesce(sum(bytes), 0) FROM gone), -9223372036854775807)::bigint"
				" WHERE q.peer_id = $1",
				2, types, values, NULL);
}

/*
 * wg_move_peer(peer_id uuid, interface text) returns (peer_id, interface,
 * node, address, address6, config, changed): see the file comment.  The
 * config is NULL (and changed with it) when the server no longer holds
 * the client's private key (a config link forgot it).
 */
Datum
wg_move_peer(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr lock_plan;
	static SPIPlanPtr target_plan;
	static SPIPlanPtr move_plan;
	static SPIPlanPtr event_plan;
	MemoryContext outer = CurrentMemoryContext;
	Datum		peer_id;
	char	   *target;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	char	   *status;
	char	   *user_id;
	char	   *from;
	char	   *public_key;
	bool		renderable;
	char	   *before = NULL;
	char	   *after = NULL;
	Datum		old_address;
	char	   *old_node;
	char	   *new_node;
	bool		per_interface_limit;
	Datum		iface_address;
	Datum		iface_address6;
	bool		no_address6;
	Datum		address;
	Datum		address6 = (Datum) 0;
	TupleDesc	result_desc;
	Datum		out[7];
	bool		out_nulls[7] = {false, false, false, false, false, false, false};

	wgpeer_require_primary("wg_move_peer");
	peer_id = wgpeer_peer_id_arg(fcinfo, 0);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("interface cannot be null"),
				 errhint("Name the interface to move the peer to.")));
	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "wg_move_peer must return a row");
	result_desc = BlessTupleDesc(result_desc);

	SPI_connect();
	target = wgpeer_resolve_interface(PG_GETARG_TEXT_PP(1));
	{
		Oid			types[1] = {UUIDOID};
		Datum		values[1] = {peer_id};

		wgpeer_exec(&lock_plan,
					"SELECT status, user_id, interface, public_key,"
					" routes IS NOT NULL, private_key_forgotten_at IS NULL,"
					" address, node"
					" FROM wgpeer.peer WHERE peer_id = $1 FOR UPDATE",
					1, types, values, NULL);
	}
	if (SPI_processed == 0)
		wgpeer_peer_not_found(peer_id);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	status = SPI_getvalue(tup, desc, 1);
	user_id = SPI_getvalue(tup, desc, 2);
	from = SPI_getvalue(tup, desc, 3);
	public_key = SPI_getvalue(tup, desc, 4);
	renderable = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
	old_address = wgpeer_inet_copy(SPI_getbinval(tup, desc, 7, &isnull));
	old_node = SPI_getvalue(tup, desc, 8);
	check_movable(peer_id, status, from, target,
				  DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull)));

	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(target)};

		wgpeer_exec(&target_plan,
					"SELECT node, max_peers_per_user IS NOT NULL, address,"
					" address6 FROM wgpeer.interface WHERE name = $1",
					1, types, values, NULL);
	}
	if (SPI_processed == 0)
		wgpeer_interface_not_registered(target);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	new_node = SPI_getvalue(tup, desc, 1);
	per_interface_limit = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
	iface_address = wgpeer_inet_copy(SPI_getbinval(tup, desc, 3, &isnull));
	iface_address6 = SPI_getbinval(tup, desc, 4, &no_address6);
	if (!no_address6)
		iface_address6 = wgpeer_inet_copy(iface_address6);

	if (renderable)
		before = wgpeer_render_peer_config(DatumGetUUIDP(peer_id));

	/*
	 * the target's capacity and pool lock, the user's place under a limit
	 * of the target's own (a limit over all interfaces counts the peer
	 * already), and its key free there
	 */
	wgpeer_check_capacity(target);
	if (per_interface_limit && strcmp(status, "suspended") != 0)
		wgpeer_claim_device(user_id, target);
	wgpeer_check_peer_key(target, public_key);
	address = wgpeer_allocate(target, true, (Datum) 0);
	if (!no_address6)
		address6 = wgpeer_derive6(address, iface_address, iface_address6);

	{
		Oid			types[5] = {UUIDOID, TEXTOID, INETOID, INETOID, TEXTOID};
		Datum		values[5] = {peer_id, CStringGetTextDatum(target), address,
		address6, CStringGetTextDatum(new_node)};
		char		nulls[5] = {' ', ' ', ' ', no_address6 ? 'n' : ' ', ' '};

		/*
		 * down_kbit = down_kbit gives a speed-limited peer a rate slot on the
		 * new interface (trigger peer_rate_slot)
		 */
		wgpeer_exec(&move_plan,
					"UPDATE wgpeer.peer SET interface = $2, address = $3,"
					" address6 = $4, node = $5, rate_slot = NULL,"
					" down_kbit = down_kbit"
					" WHERE peer_id = $1",
					5, types, values, nulls);
	}
	{
		static SPIPlanPtr release_plan;
		Oid			types[2] = {TEXTOID, INETOID};
		Datum		values[2] = {CStringGetTextDatum(from), old_address};

		/* the old address goes back to the old interface's pool */
		wgpeer_exec(&release_plan,
					"INSERT INTO wgpeer.free_address (interface, address)"
					" VALUES ($1, $2) ON CONFLICT DO NOTHING",
					2, types, values, NULL);
	}
	if (strcmp(old_node, new_node) != 0)
		leave_node(peer_id, new_node);
	{
		Oid			types[8] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID, INETOID,
		INETOID, TEXTOID, TEXTOID};
		Datum		values[8] = {peer_id, CStringGetTextDatum(user_id),
			CStringGetTextDatum(target), CStringGetTextDatum(from),
			old_address, address, CStringGetTextDatum(old_node),
		CStringGetTextDatum(new_node)};

		wgpeer_exec(&event_plan,
					"INSERT INTO wgpeer.event (kind, peer_id, user_id,"
					" interface, detail)"
					" VALUES ('moved', $1, $2, $3, jsonb_build_object("
					"  'from_interface', $4, 'from_address', host($5),"
					"  'from_node', $7, 'address', host($6), 'node', $8))",
					8, types, values, NULL);
	}
	if (renderable)
		after = wgpeer_render_peer_config(DatumGetUUIDP(peer_id));

	/* the result row, built in the caller's memory context */
	MemoryContextSwitchTo(outer);
	out[0] = PointerGetDatum(palloc(UUID_LEN));
	memcpy(DatumGetPointer(out[0]), DatumGetPointer(peer_id), UUID_LEN);
	out[1] = CStringGetTextDatum(target);
	out[2] = CStringGetTextDatum(new_node);
	out[3] = datumCopy(address, false, -1);
	out[4] = no_address6 ? (Datum) 0 : datumCopy(address6, false, -1);
	out_nulls[4] = no_address6;
	out[5] = after ? CStringGetTextDatum(after) : (Datum) 0;
	out_nulls[5] = after == NULL;
	out[6] = after ? changed_settings(before, after) : (Datum) 0;
	out_nulls[6] = after == NULL;
	SPI_finish();
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(result_desc, out,
													  out_nulls)));
}
