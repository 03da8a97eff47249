/*
 * peer.c
 *		The peer lifecycle in C: wg_create_peer(), wg_renew_peer(),
 *		wg_expire_peers() and wg_peer_config().
 *
 * Every change to what should be on an interface is written as a queue
 * row in the caller's transaction by the peer table's row trigger
 * (queue.c), after the peer row is locked, so a rollback leaves nothing
 * behind and the queue order of one peer's changes is their commit order.
 * (wg_revoke_peer() and wg_list_user_peers() are plain SQL in the install
 * script.)  On a node, where peers arrive by replication, these functions
 * refuse to run (node.c).
 */
#include "sql/sql.h"

#include <sys/time.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/timestamp.h"

#include "core/validate.h"

PG_FUNCTION_INFO_V1(wg_create_peer);
PG_FUNCTION_INFO_V1(wg_renew_peer);
PG_FUNCTION_INFO_V1(wg_expire_peers);
PG_FUNCTION_INFO_V1(wg_peer_config);

/* Longest user_id accepted, in bytes: an application's key, not a document. */
#define USER_ID_MAX 256

/*
 * Check a number of months (1 to 120) for an expiry; hint says what to do.
 */
static void
check_months(int months, const char *name, const char *hint)
{
	if (months < 1 || months > 120)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 1 and 120, not %d", name, months),
				 errhint("%s", hint)));
}

/* Longest plan: ten years, in days (of 30 for a month). */
#define PLAN_MAX_DAYS 3653

/*
 * How long a peer lives, as wg_create_peer() and wg_renew_peer() were
 * told: whole months, an interval, or an explicit expiry (until); for a
 * new peer, possibly counted from its first handshake.
 */
typedef struct Lifetime
{
	bool		has_months;
	int			months;
	bool		has_duration;
	Datum		duration;
	bool		has_at;
	Datum		at;
	bool		on_handshake;
} Lifetime;

/*
 * Check a plan length given as an interval: positive in every field, and
 * at most ten years.
 */
static void
check_duration(Interval *iv)
{
	double		days = iv->month * 30.0 + iv->day +
		(double) iv->time / USECS_PER_DAY;

	if (iv->month < 0 || iv->day < 0 || iv->time < 0 || days <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("duration must be a positive interval, not %s",
						DatumGetCString(DirectFunctionCall1(interval_out,
															IntervalPGetDatum(iv)))),
				 errhint("Give a length such as '1 hour', '7 days' or '1 month'.")));
	if (days > PLAN_MAX_DAYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("duration must be at most 10 years, not %s",
						DatumGetCString(DirectFunctionCall1(interval_out,
															IntervalPGetDatum(iv)))),
				 errhint("For a peer that never expires, pass duration_months => NULL.")));
}

/* The latest expiry a plan may have: ten years from now. */
static TimestampTz
plan_limit(void)
{
	return GetCurrentTransactionStartTimestamp() +
		(TimestampTz) PLAN_MAX_DAYS * USECS_PER_DAY;
}

/*
 * Refuse what a renewal would make of peer_id's plan when it ends more
 * than ten years from now (expires_at, or NULL) or, for a plan waiting
 * for its first handshake, is longer than ten years (plan_pending, or
 * NULL): renewing again and again cannot sell more than a plan may be.
 */
static void
check_renewed_plan(Datum peer_id, Datum expires_at, bool expires_null,
				   Datum plan_pending, bool pending_null)
{
	if (!expires_null && DatumGetTimestampTz(expires_at) > plan_limit())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("peer %s would then expire at %s, more than 10 years "
						"from now",
						DatumGetCString(DirectFunctionCall1(uuid_out, peer_id)),
						DatumGetCString(DirectFunctionCall1(timestamptz_out,
															expires_at))),
				 errdetail("A plan ends at most 10 years from now, however "
						   "often it is renewed."),
				 errhint("Renew it later, closer to its expiry, or by less.")));
	if (!pending_null)
	{
		Interval   *iv = DatumGetIntervalP(plan_pending);

		if (iv->month * 30.0 + iv->day + (double) iv->time / USECS_PER_DAY >
			PLAN_MAX_DAYS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the plan of peer %s would then be %s long, more "
							"than 10 years",
							DatumGetCString(DirectFunctionCall1(uuid_out, peer_id)),
							DatumGetCString(DirectFunctionCall1(interval_out,
																plan_pending))),
					 errdetail("The plan starts at the peer's first handshake; "
							   "however often it is renewed before, it lasts "
							   "at most 10 years."),
					 errhint("Renew it by less, or once it has started.")));
	}
}

/*
 * The lifetime arguments of a call: months (argument months_arg, may be
 * NULL), then, when the function is declared as in 0.2 (PG_NARGS() >
 * duration_arg), duration, until (an explicit expiry) and, for a new
 * peer, whether the clock starts at the first handshake.  Returns whether
 * the 0.2 arguments were there.
 */
static bool
lifetime_args(FunctionCallInfo fcinfo, int months_arg, int duration_arg,
			  bool creating, Lifetime *lt)
{
	bool		v2 = PG_NARGS() > duration_arg;

	memset(lt, 0, sizeof(*lt));
	lt->has_months = !PG_ARGISNULL(months_arg);
	lt->months = lt->has_months ? PG_GETARG_INT32(months_arg) : 0;
	if (!v2)
		return false;
	lt->has_duration = !PG_ARGISNULL(duration_arg);
	lt->duration = lt->has_duration ? PG_GETARG_DATUM(duration_arg) : (Datum) 0;
	lt->has_at = !PG_ARGISNULL(duration_arg + 1);
	lt->at = lt->has_at ? PG_GETARG_DATUM(duration_arg + 1) : (Datum) 0;
	lt->on_handshake = creating && !PG_ARGISNULL(duration_arg + 2) &&
		PG_GETARG_BOOL(duration_arg + 2);

	if (lt->has_duration && lt->has_at)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("give either duration or until, not both")));
	if (lt->has_duration)
		check_duration(DatumGetIntervalP(lt->duration));
	if (lt->has_at && DatumGetTimestampTz(lt->at) <= GetCurrentTransactionStartTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("until must be in the future, not %s",
						DatumGetCString(DirectFunctionCall1(timestamptz_out, lt->at))),
				 errhint("Pass a later time, or a duration.")));
	if (lt->has_at && DatumGetTimestampTz(lt->at) > plan_limit())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("until must be at most 10 years from now, not %s",
						DatumGetCString(DirectFunctionCall1(timestamptz_out, lt->at))),
				 creating ?
				 errhint("For a peer that never expires, pass "
						 "duration_months => NULL.") :
				 errhint("Pass an earlier time.")));
	if (lt->on_handshake && lt->has_at)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a plan that starts at the first handshake cannot end "
						"at a fixed time (until)"),
				 errhint("Give its length as duration or duration_months.")));
	if (lt->on_handshake && !lt->has_duration && !lt->has_months)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a plan that starts at the first handshake needs a length"),
				 errhint("Give duration or duration_months.")));
	return true;
}

/*
 * A new peer id: a version 7 UUID (RFC 9562), whose first 48 bits are the
 * Unix time in milliseconds.  Ids of peers created one after another are
 * close, so the primary key index grows at its right edge instead of
 * touching a random page per insert as random (version 4) ids would.
 */
static Datum
new_peer_id(void)
{
	pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));
	struct timeval tv;
	uint64		ms;

	if (!pg_strong_random(id->data, UUID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random peer id")));
	gettimeofday(&tv, NULL);
	ms = (uint64) tv.tv_sec * 1000 + tv.tv_usec / 1000;
	for (int i = 0; i < 6; i++)
		id->data[i] = (ms >> (40 - 8 * i)) & 0xff;
	id->data[6] = (id->data[6] & 0x0f) | 0x70;	/* version 7 */
	id->data[8] = (id->data[8] & 0x3f) | 0x80;	/* RFC 9562 variant */
	return UUIDPGetDatum(id);
}

/*
 * The row of wgpeer.peer_public for peer_id, as a datum in the caller's
 * memory context.  Must be called inside SPI_connect().
 */
Datum
wgpeer_public_row(Datum peer_id)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {UUIDOID};
	Datum		values[1] = {peer_id};

	wgpeer_exec(&plan,
				"SELECT * FROM wgpeer.peer_public WHERE peer_id = $1",
				1, types, values, NULL);
	return PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc));
}

/*
 * wg_create_peer(user_id, duration_months, dns, config_name, interface,
 * public_key, duration, until, starts_on_handshake, location): keys,
 * address, peer row, queued addition and client config, all in the
 * caller's transaction.  With location the interface is the one of that
 * location with the most room (placement.c); every creation respects its
 * interface's capacity.
 */
Datum
wg_create_peer(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr iface_plan;
	static SPIPlanPtr insert_plan;
	static SPIPlanPtr insert_plan_0_1;
	char	   *user_id = wgpeer_text_arg(fcinfo, 0, "user_id", true);
	char	   *dns = wgpeer_dns_arg(fcinfo, 2);
	char	   *config_name = wgpeer_text_arg(fcinfo, 3, "config_name", false);
	char	   *client_key = wgpeer_text_arg(fcinfo, 5, "public_key", false);
	char	   *private_key = NULL;
	char	   *public_key;
	char	   *preshared_key = NULL;
	char	   *ifname;
	char	   *location = NULL;
	char	   *config;
	const char *why;
	Lifetime	lt;
	bool		v2;
	Datum		peer_id;
	Datum		address;
	Datum		address6 = (Datum) 0;
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	TupleDesc	result_desc;
	MemoryContext outer = CurrentMemoryContext;
	Datum		out[11];
	bool		out_nulls[11];

	wgpeer_require_primary("wg_create_peer");
	v2 = lifetime_args(fcinfo, 1, 6, true, &lt);
	if (user_id[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user_id must be 1 to %d bytes", USER_ID_MAX)));
	if (strlen(user_id) > USER_ID_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user_id must be 1 to %d bytes", USER_ID_MAX),
				 pg_mbstrlen(user_id) < (int) strlen(user_id) ?
				 errdetail("It is %zu bytes long; a character outside ASCII "
						   "takes more than one byte.", strlen(user_id)) :
				 errdetail("It is %zu bytes long.", strlen(user_id)),
				 errhint("Use a shorter identifier, such as the user's "
						 "number or a hash of a longer key.")));
	if (lt.has_months)
		check_months(lt.months, "duration_months",
					 "Pass NULL for a peer that never expires.");
	if (config_name && (why = wg_check_config_name(config_name)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid config_name \"%s\"", config_name),
				 errdetail("%s.", why),
				 errhint("The WireGuard apps use it as the tunnel's name.")));

	/* keys: the client's own public key, or a fresh pair */
	if (client_key)
	{
		uint8_t		pub[WG_KEY_LEN];

		wgpeer_parse_key(client_key, "public_key", pub);
		wgpeer_check_key(pub, false, "public_key",
						 "Pass the key `wg pubkey` prints for the client's "
						 "private key, or leave public_key null to have a "
						 "key pair generated.");
		public_key = wgpeer_key_text(pub);
	}
	else
		wgpeer_generate_pair(&private_key, &public_key);

	peer_id = new_peer_id();
	if (!config_name)
	{
		char	   *uuid = DatumGetCString(DirectFunctionCall1(uuid_out, peer_id));

		/* the id's random tail, not its time prefix, names the tunnel */
		config_name = psprintf("wg-%.8s", uuid + 28);
	}

	/* location came with 0.3 */
	if (PG_NARGS() > 9 && !PG_ARGISNULL(9))
		location = wgpeer_text_arg(fcinfo, 9, "location", false);
	if (location && !PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("give either interface or location, not both"),
				 errhint("With location => '%s' wgpeer picks the interface "
						 "of that location with the most room.", location)));

	SPI_connect();
	if (location)
		ifname = wgpeer_place(location);
	else
	{
		ifname = wgpeer_resolve_interface(PG_ARGISNULL(4) ? NULL :
										  PG_GETARG_TEXT_PP(4));
		/* capacity came with location (an older schema has neither) */
		if (PG_NARGS() > 9)
			wgpeer_check_capacity(ifname);
	}
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		values[2] = {CStringGetTextDatum(ifname),
		CStringGetTextDatum(public_key)};

		wgpeer_exec(&iface_plan,
					"SELECT address, address6, preshared_keys"
					" FROM wgpeer.interface WHERE name = $1",
					2, types, values, NULL);
		if (SPI_processed == 0)
			wgpeer_interface_not_registered(ifname);
		tup = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		if (DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull)))
			preshared_key = wgpeer_new_preshared_key();
		{
			Datum		iface_address = wgpeer_inet_copy(SPI_getbinval(tup, desc, 1, &isnull));
			Datum		iface_address6 = SPI_getbinval(tup, desc, 2, &isnull);

			if (!isnull)
				iface_address6 = wgpeer_inet_copy(iface_address6);

			/* a key we just generated cannot be taken; a client's can */
			if (client_key)
				wgpeer_check_peer_key(ifname, public_key);

			/* the device limit came with 0.2 */
			if (v2)
				wgpeer_claim_device(user_id, ifname);
			address = wgpeer_allocate(ifname, true, (Datum) 0);
			if (!isnull)
				address6 = wgpeer_derive6(address, iface_address, iface_address6);
		}
	}

	{
		Oid			types[14] = {UUIDOID, TEXTOID, TEXTOID, INETOID, INETOID,
			TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, INTERVALOID,
		TIMESTAMPTZOID, BOOLOID};
		Datum		values[14];
		char		nulls[14];

		memset(nulls, ' ', sizeof(nulls));
		values[0] = peer_id;
		values[1] = CStringGetTextDatum(user_id);
		values[2] = CStringGetTextDatum(ifname);
		values[3] = address;
		values[4] = address6;
		nulls[4] = address6 ? ' ' : 'n';
		values[5] = CStringGetTextDatum(public_key);
		values[6] = private_key ? CStringGetTextDatum(private_key) : (Datum) 0;
		nulls[6] = private_key ? ' ' : 'n';
		values[7] = preshared_key ? CStringGetTextDatum(preshared_key) : (Datum) 0;
		nulls[7] = preshared_key ? ' ' : 'n';
		values[8] = dns ? CStringGetTextDatum(dns) : (Datum) 0;
		nulls[8] = dns ? ' ' : 'n';
		values[9] = CStringGetTextDatum(config_name);
		values[10] = Int32GetDatum(lt.months);
		nulls[10] = lt.has_months ? ' ' : 'n';
		values[11] = lt.duration;
		nulls[11] = lt.has_duration ? ' ' : 'n';
		values[12] = lt.at;
		nulls[12] = lt.has_at ? ' ' : 'n';
		values[13] = BoolGetDatum(lt.on_handshake);
		if (v2)
			wgpeer_exec(&insert_plan,
						"INSERT INTO wgpeer.peer (peer_id, user_id, interface,"
						" address, address6, public_key, private_key,"
						" preshared_key, dns, config_name, expires_at, plan_pending)"
						" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
						" CASE WHEN $14 THEN NULL ELSE coalesce($13,"
						"   now() + coalesce($12, make_interval(months => $11))) END,"
						" CASE WHEN $14 THEN coalesce($12, make_interval(months => $11)) END)"
						" RETURNING peer_id, user_id, interface, address, address6,"
						" public_key, status, config_name, created_at, expires_at",
						14, types, values, nulls);
		else
			wgpeer_exec(&insert_plan_0_1,
						"INSERT INTO wgpeer.peer (peer_id, user_id, interface,"
						" address, address6, public_key, private_key,"
						" preshared_key, dns, config_name, expires_at)"
						" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
						" now() + make_interval(months => $11))"
						" RETURNING peer_id, user_id, interface, address, address6,"
						" public_key, status, config_name, created_at, expires_at",
						11, types, values, nulls);
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	wgpeer_queue_untriggered(peer_id, "add");
	config = wgpeer_render_peer_config(DatumGetUUIDP(peer_id));

	/* the result row, built in the caller's memory context */
	MemoryContextSwitchTo(outer);
	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "wg_create_peer must return a row");
	result_desc = BlessTupleDesc(result_desc);
	for (int i = 0; i < 10; i++)
	{
		Datum		d = SPI_getbinval(tup, desc, i + 1, &out_nulls[i]);

		out[i] = out_nulls[i] ? (Datum) 0 :
			datumCopy(d, TupleDescAttr(desc, i)->attbyval,
					  TupleDescAttr(desc, i)->attlen);
	}
	out[10] = CStringGetTextDatum(config);
	out_nulls[10] = false;
	SPI_finish();
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(result_desc, out, out_nulls)));
}

/*
 * wg_renew_peer(peer_id, months) returns peer_public: push expires_at
 * forward from the later of now and the current expiry.  An expired peer
 * comes back: with its old address and config while it still holds them
 * (the grace period), otherwise with the lowest free address.
 */
Datum
wg_renew_peer(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr lock_plan;
	static SPIPlanPtr extend_plan;
	static SPIPlanPtr revive_plan;
	static SPIPlanPtr extend_plan_0_1;
	static SPIPlanPtr revive_plan_0_1;
	Datum		peer_id;
	Lifetime	lt;
	bool		v2;
	char	   *status;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	bool		released;
	bool		no_expiry;
	Datum		result;

	wgpeer_require_primary("wg_renew_peer");
	peer_id = wgpeer_peer_id_arg(fcinfo, 0);
	v2 = lifetime_args(fcinfo, 1, 2, false, &lt);
	if (!v2 && !lt.has_months)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("months cannot be null"),
				 errhint("Renew by 1 to 120 months.")));
	if (lt.has_months + lt.has_duration + lt.has_at != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("give exactly one of months, duration or until"),
				 errhint("E.g. wgpeer.wg_renew_peer(peer_id, duration => '30 days').")));
	if (lt.has_months)
		check_months(lt.months, "months", "Renew by 1 to 120 months.");

	SPI_connect();
	{
		Oid			types[1] = {UUIDOID};
		Datum		values[1] = {peer_id};

		wgpeer_exec(&lock_plan,
					"SELECT status, released_at IS NOT NULL, expires_at IS NULL,"
					" interface, address, address6"
					" FROM wgpeer.peer WHERE peer_id = $1 FOR UPDATE",
					1, types, values, NULL);
	}
	if (SPI_processed == 0)
		wgpeer_peer_not_found(peer_id);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	status = SPI_getvalue(tup, desc, 1);
	released = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
	no_expiry = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));

	if (strcmp(status, "revoked") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("peer %s is revoked and cannot be renewed",
						DatumGetCString(DirectFunctionCall1(uuid_out, peer_id))),
				 errhint("Create a new peer with wgpeer.wg_create_peer().")));

	if (strcmp(status, "expired") != 0)
	{
		/*
		 * live or suspended: only the expiry moves (a peer without one keeps
		 * none, unless given expires_at); a plan waiting for the first
		 * handshake grows instead
		 */
		Oid			types[4] = {UUIDOID, INT4OID, INTERVALOID, TIMESTAMPTZOID};
		Datum		values[4] = {peer_id, Int32GetDatum(lt.months), lt.duration,
		lt.at};
		char		nulls[4] = {' ', lt.has_months ? ' ' : 'n',
			lt.has_duration ? ' ' : 'n', lt.has_at ? ' ' : 'n'};

		bool		expires_null;
		bool		pending_null = true;
		Datum		expires_at;
		Datum		plan_pending = (Datum) 0;

		if (v2)
			wgpeer_exec(&extend_plan,
						"UPDATE wgpeer.peer SET"
						" expires_at = CASE WHEN $4 IS NOT NULL THEN $4"
						"   WHEN expires_at IS NULL THEN NULL"
						"   ELSE greatest(now(), expires_at)"
						"     + coalesce($3, make_interval(months => $2)) END,"
						" plan_pending = CASE WHEN $4 IS NOT NULL THEN NULL"
						"   ELSE plan_pending + coalesce($3, make_interval(months => $2)) END"
						" WHERE peer_id = $1"
						" RETURNING expires_at, plan_pending",
						4, types, values, nulls);
		else if (!no_expiry)
			wgpeer_exec(&extend_plan_0_1,
						"UPDATE wgpeer.peer SET expires_at ="
						" greatest(now(), expires_at)"
						"  + make_interval(months => $2)"
						" WHERE peer_id = $1"
						" RETURNING expires_at",
						2, types, values, nulls);
		if (v2 || !no_expiry)
		{
			expires_at = SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &expires_null);
			if (v2)
				plan_pending = SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 2,
											 &pending_null);
			check_renewed_plan(peer_id, expires_at, expires_null,
							   plan_pending, pending_null);
		}
	}
	else
	{
		char	   *ifname = SPI_getvalue(tup, desc, 4);
		Datum		address = wgpeer_inet_copy(SPI_getbinval(tup, desc, 5, &isnull));
		Datum		address6 = SPI_getbinval(tup, desc, 6, &isnull);
		char		address6_null = isnull ? 'n' : ' ';

		if (!isnull)
			address6 = wgpeer_inet_copy(address6);
		if (released)
		{
			static SPIPlanPtr iface_plan;
			Oid			types[1] = {TEXTOID};
			Datum		values[1] = {CStringGetTextDatum(ifname)};
			Datum		iface_address;
			Datum		iface_address6;

			address = wgpeer_allocate(ifname, true, address);
			wgpeer_exec(&iface_plan,
						"SELECT address, address6 FROM wgpeer.interface"
						" WHERE name = $1",
						1, types, values, NULL);
			iface_address = SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull);
			iface_address6 = SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 2, &isnull);
			address6_null = isnull ? 'n' : ' ';
			if (!isnull)
				address6 = wgpeer_derive6(address, iface_address, iface_address6);
		}
		{
			Oid			types[6] = {UUIDOID, INT4OID, INETOID, INETOID,
			INTERVALOID, TIMESTAMPTZOID};
			Datum		values[6] = {peer_id, Int32GetDatum(lt.months), address,
			address6, lt.duration, lt.at};
			char		nulls[6] = {' ', lt.has_months ? ' ' : 'n', ' ',
				address6_null, lt.has_duration ? ' ' : 'n',
			lt.has_at ? ' ' : 'n'};

			if (v2)
				wgpeer_exec(&revive_plan,
							"UPDATE wgpeer.peer SET status = 'creating',"
							" released_at = NULL, address = $3, address6 = $4,"
							" expires_at = coalesce($6, now()"
							"   + coalesce($5, make_interval(months => $2))),"
							" plan_pending = NULL"
							" WHERE peer_id = $1",
							6, types, values, nulls);
			else
				wgpeer_exec(&revive_plan_0_1,
							"UPDATE wgpeer.peer SET status = 'creating',"
							" released_at = NULL, address = $3, address6 = $4,"
							" expires_at = now() + make_interval(months => $2)"
							" WHERE peer_id = $1",
							4, types, values, nulls);
			wgpeer_queue_untriggered(peer_id, "add");
		}
	}
	result = wgpeer_public_row(peer_id);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * wg_expire_peers() returns integer: expire every live peer whose
 * expires_at has passed, queue its removal, and give back the addresses
 * of expired peers past the grace period.  Returns how many expired now.
 */
Datum
wg_expire_peers(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan;
	int			expired;

	wgpeer_require_primary("wg_expire_peers");
	SPI_connect();
	if (wgpeer_peer_untriggered())
		expired = wgpeer_expire_untriggered();
	else
	{
		wgpeer_exec(&plan,
					"UPDATE wgpeer.peer SET status = 'expired'"
					" WHERE status IN ('creating', 'active', 'suspended')"
					"   AND expires_at <= now()",
					0, NULL, NULL, NULL);
		expired = (int) SPI_processed;
	}
	wgpeer_release_expired(NULL);
	SPI_finish();
	PG_RETURN_INT32(expired);
}

/*
 * wg_peer_config(peer_id) returns text: the peer's client config.
 */
Datum
wg_peer_config(PG_FUNCTION_ARGS)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *config;
	text	   *result;

	SPI_connect();
	config = wgpeer_render_peer_config(PG_GETARG_UUID_P(0));
	MemoryContextSwitchTo(outer);
	result = cstring_to_text(config);
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}
