/*
 * config_link.c
 *		One-time config links: wg_config_link() hands out a bearer token
 *		for a peer's config, wg_redeem_config_link() trades it for the
 *		config and its QR code exactly once.
 *
 * A token is 256 random bits in URL-safe base64 (core/token.c); the table
 * wgpeer.config_link keeps only its SHA-256, so neither a dump nor a
 * reader of the table can redeem a link.  Redemption deletes the link's
 * row in the redeeming transaction: of two sessions redeeming one token
 * at once, the second waits for the first's row lock and, once the first
 * commits, finds no row.  Every reason a token does not redeem (malformed,
 * unknown, used, expired, its peer revoked or expired, its private key
 * forgotten) raises the same error, so a caller learns nothing about
 * tokens it does not hold.  Nor does the time it takes: a peer's links are
 * deleted when it is revoked or expires or its private key goes (trigger
 * peer_links_void), so those tokens are unknown ones, and only a link that
 * redeems is locked and deleted: a wrong token costs decoding it and one
 * index probe, plus reading the row of a link that has expired.  Expired
 * rows are deleted by the next wg_config_link() call.  A peer has at most
 * LINK_MAX_PER_PEER live links.
 *
 * With forget_private_key the redemption also deletes the peer's client
 * private key, marking when (peer.private_key_forgotten_at): the config
 * renderer then refuses the peer with a hint (common/client_config.c), the
 * worker's export leaves its file out, and the peer's other links go.
 */
#include "sql/sql.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "core/token.h"

PG_FUNCTION_INFO_V1(wg_config_link);
PG_FUNCTION_INFO_V1(wg_redeem_config_link);

/* Longest validity of a link. */
#define LINK_MAX_VALIDITY "30 days"

/*
 * Most links of one peer not redeemed and not expired: plenty for a
 * customer who asks again and again, and few enough that nobody fills the
 * table with one peer's links.
 */
#define LINK_MAX_PER_PEER 16

/* The QR code in a redemption: the wg_qr_png() defaults. */
#define LINK_QR_SCALE 4
#define LINK_QR_MARGIN 4

static void link_not_valid(void) pg_attribute_noreturn();

/*
 * The one error of a token that does not redeem, whatever the reason.
 */
static void
link_not_valid(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("config link is not valid"),
			 errdetail("The link is unknown, was already used, or has expired."),
			 errhint("Ask for a new link.")));
}

/*
 * When a link created now for valid_for expires: after now and at most
 * LINK_MAX_VALIDITY from now, else an error naming the interval.
 */
static TimestampTz
link_expiry(Interval *valid_for)
{
	Datum		now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	Datum		expires = DirectFunctionCall2(timestamptz_pl_interval, now,
											  IntervalPGetDatum(valid_for));
	Datum		limit = DirectFunctionCall2(timestamptz_pl_interval, now,
											DirectFunctionCall3(interval_in,
																CStringGetDatum(LINK_MAX_VALIDITY),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)));
	char	   *shown = DatumGetCString(DirectFunctionCall1(interval_out,
															IntervalPGetDatum(valid_for)));

	if (DatumGetTimestampTz(expires) <= DatumGetTimestampTz(now))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("valid_for must be a positive interval, not %s", shown),
				 errhint("Give a validity such as '15 minutes' or '1 day'.")));
	if (DatumGetTimestampTz(expires) > DatumGetTimestampTz(limit))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("valid_for must be at most %s, not %s",
						LINK_MAX_VALIDITY, shown),
				 errhint("A link is a password to the peer's private key: "
						 "keep it short-lived and create a new one when needed.")));
	return DatumGetTimestampTz(expires);
}

/*
 * Refuse a link for a peer whose config it could not hand out: unknown,
 * revoked or expired, or without a client private key on the server.  The
 * peer's row stays locked FOR NO KEY UPDATE, so that the callers making
 * links for one peer take turns at count_links().  Inside SPI_connect().
 */
static void
check_peer(Datum peer_id)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {UUIDOID};
	Datum		values[1] = {peer_id};
	char	   *id = DatumGetCString(DirectFunctionCall1(uuid_out, peer_id));
	char	   *status;
	char	   *forgotten_at;

	wgpeer_exec(&plan,
				"SELECT status, private_key IS NOT NULL,"
				" private_key_forgotten_at::text"
				" FROM wgpeer.peer WHERE peer_id = $1 FOR NO KEY UPDATE",
				1, types, values, NULL);
	if (SPI_processed == 0)
		wgpeer_peer_not_found(peer_id);
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	forgotten_at = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	if (strcmp(status, "revoked") == 0 || strcmp(status, "expired") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("peer %s is %s and has no config to hand out", id, status),
				 strcmp(status, "expired") == 0 ?
				 errhint("Renew it with wgpeer.wg_renew_peer() first.") :
				 errhint("Create a new peer with wgpeer.wg_create_peer().")));
	if (forgotten_at != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("peer %s has no private key on the server", id),
				 errdetail("A one-time config link handed its config out at %s "
						   "and the server then forgot its private key: only "
						   "the client holds it.", forgotten_at),
				 errhint("To give the client a new config, rotate its key "
						 "with wgpeer.wg_rotate_peer_key().")));
	if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
			   "t") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("peer %s has no private key on the server", id),
				 errdetail("The client brought its own key, or the peer was "
						   "imported: its config has the line "
						   "\"# PrivateKey = <the private key of ...>\" "
						   "where the client's own key belongs."),
				 errhint("Give the client wgpeer.wg_peer_config() to complete "
						 "with its key, or have a key pair generated with "
						 "wgpeer.wg_rotate_peer_key().")));
}

/*
 * Refuse a new link for peer_id when it has LINK_MAX_PER_PEER live links
 * (54000).  Counted with the latest snapshot, so that under REPEATABLE
 * READ too the links of a caller that held the peer's lock before this
 * one count.  Inside SPI_connect(), with the peer locked by check_peer().
 */
static void
count_links(Datum peer_id)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {UUIDOID};
	Datum		values[1] = {peer_id};
	bool		isnull;
	int64		live;
	int			rc;

	if (plan == NULL)
	{
		const char *sql = "SELECT count(*), max(expires_at)::text"
			" FROM wgpeer.config_link"
			" WHERE peer_id = $1 AND expires_at > now()";
		SPIPlanPtr	p = SPI_prepare(sql, 1, types);

		if (p == NULL)
			elog(ERROR, "wgpeer: could not prepare \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		plan = p;
	}
	rc = SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "wgpeer: could not count the links of a peer: %s",
			 SPI_result_code_string(rc));
	live = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	if (live >= LINK_MAX_PER_PEER)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("peer %s already has %lld config links not redeemed",
						DatumGetCString(DirectFunctionCall1(uuid_out, peer_id)),
						(long long) live),
				 errdetail("A peer has at most %d links that are neither "
						   "redeemed nor expired; its last one expires at %s.",
						   LINK_MAX_PER_PEER,
						   SPI_getvalue(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 2)),
				 errhint("Hand out one of the peer's links made before, or "
						 "make links with a shorter valid_for.")));
}

/*
 * wg_config_link(peer_id uuid, valid_for interval DEFAULT '15 minutes')
 * returns text: a new one-time link token for the peer's config, valid
 * for valid_for.  Only its hash is stored, with the role that asked (the
 * session's current role, not this function's owner).  Also deletes the
 * links that have expired.
 */
Datum
wg_config_link(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr cleanup_plan;
	static SPIPlanPtr insert_plan;
	Datum		peer_id;
	TimestampTz expires_at;
	uint8_t		token[WG_TOKEN_LEN];
	uint8_t		hash[WG_TOKEN_HASH_LEN];
	char		token_text[WG_TOKEN_TEXT_SIZE];
	bytea	   *hash_datum;
	text	   *result;

	wgpeer_require_primary("wg_config_link");
	peer_id = wgpeer_peer_id_arg(fcinfo, 0);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("valid_for cannot be null"),
				 errhint("Leave it out for the default of 15 minutes.")));
	expires_at = link_expiry(PG_GETARG_INTERVAL_P(1));

	SPI_connect();
	check_peer(peer_id);
	/* links nobody redeemed in time; rows another session holds can wait */
	wgpeer_exec(&cleanup_plan,
				"DELETE FROM wgpeer.config_link WHERE token_hash IN"
				" (SELECT token_hash FROM wgpeer.config_link"
				"  WHERE expires_at <= now() FOR UPDATE SKIP LOCKED)",
				0, NULL, NULL, NULL);
	count_links(peer_id);

	wg_token_generate(token);
	wg_token_hash(hash, token);
	wg_token_encode(token_text, token);
	wg_key_wipe(token, sizeof(token));
	hash_datum = palloc(VARHDRSZ + WG_TOKEN_HASH_LEN);
	SET_VARSIZE(hash_datum, VARHDRSZ + WG_TOKEN_HASH_LEN);
	memcpy(VARDATA(hash_datum), hash, WG_TOKEN_HASH_LEN);
	{
		Oid			types[4] = {BYTEAOID, UUIDOID, TEXTOID, TIMESTAMPTZOID};
		Datum		values[4] = {PointerGetDatum(hash_datum), peer_id,
			CStringGetTextDatum(GetUserNameFromId(GetOuterUserId(), false)),
		TimestampTzGetDatum(expires_at)};

		wgpeer_exec(&insert_plan,
					"INSERT INTO wgpeer.config_link"
					" (token_hash, peer_id, created_by, expires_at)"
					" VALUES ($1, $2, $3, $4)",
					4, types, values, NULL);
	}
	SPI_finish();
	result = cstring_to_text(token_text);
	wg_key_wipe(token_text, sizeof(token_text));
	PG_RETURN_TEXT_P(result);
}

/*
 * wg_redeem_config_link(token text, forget_private_key boolean DEFAULT
 * false) returns (peer_id, config_name, config, qr_png): the config of the
 * link's peer and its QR code as a PNG, once.  The link is used up when
 * the calling transaction commits (a rollback gives it back).  With
 * forget_private_key the server deletes the peer's client private key in
 * the same transaction, and with it the peer's other links.
 */
Datum
wg_redeem_config_link(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr redeem_plan;
	static SPIPlanPtr forget_plan;
	MemoryContext outer = CurrentMemoryContext;
	text	   *token;
	bool		forget;
	uint8_t		raw[WG_TOKEN_LEN];
	uint8_t		hash[WG_TOKEN_HASH_LEN];
	bytea	   *hash_datum;
	bool		isnull;
	Datum		peer_id;
	char	   *config_name;
	char	   *config;
	TupleDesc	result_desc;
	Datum		out[4];
	bool		out_nulls[4] = {false, false, false, false};

	wgpeer_require_primary("wg_redeem_config_link");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("token cannot be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("forget_private_key cannot be null"),
				 errhint("Pass true to have the server forget the private "
						 "key once the config is handed out, else false.")));
	token = PG_GETARG_TEXT_PP(0);
	forget = PG_GETARG_BOOL(1);
	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "wg_redeem_config_link must return a row");
	result_desc = BlessTupleDesc(result_desc);

	if (wg_token_decode(raw, VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token)) != 0)
		link_not_valid();
	wg_token_hash(hash, raw);
	wg_key_wipe(raw, sizeof(raw));
	hash_datum = palloc(VARHDRSZ + WG_TOKEN_HASH_LEN);
	SET_VARSIZE(hash_datum, VARHDRSZ + WG_TOKEN_HASH_LEN);
	memcpy(VARDATA(hash_datum), hash, WG_TOKEN_HASH_LEN);

	SPI_connect();
	{
		Oid			types[1] = {BYTEAOID};
		Datum		values[1] = {PointerGetDatum(hash_datum)};

		/*
		 * only a link that redeems is locked and deleted: an expired one, or
		 * one whose peer cannot have it, is passed over like an unknown one,
		 * with no row lock, deletion or transaction id to pay for
		 */
		wgpeer_exec(&redeem_plan,
					"DELETE FROM wgpeer.config_link l USING wgpeer.peer p"
					" WHERE l.token_hash = $1 AND p.peer_id = l.peer_id"
					"   AND l.expires_at > now()"
					"   AND p.status IN ('creating', 'active', 'suspended')"
					"   AND p.private_key IS NOT NULL"
					" RETURNING l.peer_id, p.config_name",
					1, types, values, NULL);
	}
	if (SPI_processed != 1)
		link_not_valid();
	peer_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
							&isnull);
	config_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	config = wgpeer_render_peer_config(DatumGetUUIDP(peer_id));
	if (forget)
	{
		Oid			types[1] = {UUIDOID};
		Datum		values[1] = {peer_id};

		wgpeer_exec(&forget_plan,
					"WITH forgotten AS ("
					"  UPDATE wgpeer.peer SET private_key = NULL,"
					"  private_key_forgotten_at = now()"
					"  WHERE peer_id = $1 RETURNING peer_id)"
					" DELETE FROM wgpeer.config_link l USING forgotten f"
					" WHERE l.peer_id = f.peer_id",
					1, types, values, NULL);
	}

	/* the result row, built in the caller's memory context */
	MemoryContextSwitchTo(outer);
	out[0] = PointerGetDatum(palloc(UUID_LEN));
	memcpy(DatumGetPointer(out[0]), DatumGetPointer(peer_id), UUID_LEN);
	out[1] = CStringGetTextDatum(config_name);
	out[2] = CStringGetTextDatum(config);
	SPI_finish();
	out[3] = PointerGetDatum(wgpeer_qr_png(DatumGetTextPP(out[2]),
										   LINK_QR_SCALE, LINK_QR_MARGIN));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(result_desc, out,
													  out_nulls)));
}
