/*
 * subscription.c
 *		Standing subscription links: wg_subscription_token() hands out a
 *		bearer token that fetches a user's current configs again and again
 *		(sql/schema/14-subscriptions.sql has the fetching functions), and
 *		wg_subscription_token_hash() turns a presented token into the key
 *		the table is searched by.
 *
 * A token is 256 random bits in URL-safe base64, like a one-time config
 * link's (core/token.c); wgpeer.subscription keeps only its SHA-256, so
 * neither a dump nor a reader of the table can fetch with it.  A user has
 * one link: a new one replaces it (the old token stops working in the
 * same transaction), wg_subscription_revoke() removes it.
 */
#include "sql/sql.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "core/token.h"

PG_FUNCTION_INFO_V1(wg_subscription_token);
PG_FUNCTION_INFO_V1(wg_subscription_token_hash);

/* Longest user_id accepted, in bytes, as wg_create_peer()'s. */
#define USER_ID_MAX 256

/*
 * The SHA-256 of a token, as a bytea.
 */
static bytea *
hash_bytea(const uint8_t token[WG_TOKEN_LEN])
{
	uint8_t		hash[WG_TOKEN_HASH_LEN];
	bytea	   *result = palloc(VARHDRSZ + WG_TOKEN_HASH_LEN);

	wg_token_hash(hash, token);
	SET_VARSIZE(result, VARHDRSZ + WG_TOKEN_HASH_LEN);
	memcpy(VARDATA(result), hash, WG_TOKEN_HASH_LEN);
	return result;
}

/*
 * wg_subscription_token(user_id text) returns text: a new standing link
 * token for the user's configs, replacing the user's link if there was
 * one.  Only its hash is stored, with the role that asked.
 */
Datum
wg_subscription_token(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan;
	char	   *user_id;
	uint8_t		token[WG_TOKEN_LEN];
	char		token_text[WG_TOKEN_TEXT_SIZE];
	bytea	   *hash;
	text	   *result;

	wgpeer_require_primary("wg_subscription_token");
	user_id = wgpeer_text_arg(fcinfo, 0, "user_id", true);
	if (user_id[0] == '\0' || strlen(user_id) > USER_ID_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user_id must be 1 to %d bytes", USER_ID_MAX),
				 errdetail("It is %zu bytes long.", strlen(user_id)),
				 errhint("Pass the user_id the user's peers have.")));

	wg_token_generate(token);
	hash = hash_bytea(token);
	wg_token_encode(token_text, token);
	wg_key_wipe(token, sizeof(token));

	SPI_connect();
	{
		Oid			types[3] = {TEXTOID, BYTEAOID, TEXTOID};
		Datum		values[3] = {CStringGetTextDatum(user_id),
			PointerGetDatum(hash),
		CStringGetTextDatum(GetUserNameFromId(GetOuterUserId(), false))};

		wgpeer_exec(&plan,
					"INSERT INTO wgpeer.subscription"
					" (user_id, token_hash, created_by)"
					" VALUES ($1, $2, $3)"
					" ON CONFLICT (user_id) DO UPDATE"
					" SET token_hash = excluded.token_hash,"
					"  created_by = excluded.created_by, created_at = now()",
					3, types, values, NULL);
	}
	SPI_finish();
	result = cstring_to_text(token_text);
	wg_key_wipe(token_text, sizeof(token_text));
	PG_RETURN_TEXT_P(result);
}

/*
 * wg_subscription_token_hash(token text) returns bytea: the SHA-256 the
 * table keeps of a well-formed token, NULL for anything else (the caller
 * then finds no link, as for an unknown token).
 */
Datum
wg_subscription_token_hash(PG_FUNCTION_ARGS)
{
	text	   *token = PG_GETARG_TEXT_PP(0);
	uint8_t		raw[WG_TOKEN_LEN];
	bytea	   *hash;

	if (wg_token_decode(raw, VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token)) != 0)
		PG_RETURN_NULL();
	hash = hash_bytea(raw);
	wg_key_wipe(raw, sizeof(raw));
	PG_RETURN_BYTEA_P(hash);
}
