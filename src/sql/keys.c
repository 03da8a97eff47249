/*
 * keys.c
 *		SQL functions wg_genkey(), wg_pubkey() and wg_genpsk(), and the key
 *		arguments every other SQL function takes.
 */
#include "sql/sql.h"

#include "utils/builtins.h"
#include "utils/fmgroids.h"

PG_FUNCTION_INFO_V1(wg_genkey);
PG_FUNCTION_INFO_V1(wg_pubkey);
PG_FUNCTION_INFO_V1(wg_genpsk);

/*
 * Decode a base64 key or raise SQLSTATE 22023 saying what is wrong with
 * it.  "what" names the argument ("private key", "public_key", ...).
 */
void
wgpeer_parse_key(const char *text, const char *what, uint8_t key[WG_KEY_LEN])
{
	size_t		bad_pos = 0;
	wg_key_status st = wg_key_from_base64(key, text, &bad_pos);

	if (st == WG_KEY_OK)
		return;
	if (st == WG_KEY_BAD_LENGTH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s: %zu characters, expected 44", what,
						strlen(text)),
				 errdetail("%s.", wg_key_status_message(st)),
				 errhint("Generate keys with wgpeer.wg_genkey() or `wg genkey`.")));
	if (st == WG_KEY_BAD_CHARACTER)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s: unexpected character at position %zu",
						what, bad_pos + 1),
				 errdetail("%s.", wg_key_status_message(st))));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid %s: not 32 bytes of base64", what),
			 errdetail("%s.", wg_key_status_message(st))));
}

/*
 * Refuse a key the caller gave that no handshake could ever use (see
 * wg_key_check_public and wg_key_check_private) with SQLSTATE 22023;
 * "what" names the argument and hint says what to pass instead.
 */
void
wgpeer_check_key(const uint8_t key[WG_KEY_LEN], bool is_private,
				 const char *what, const char *hint)
{
	wg_key_status st = is_private ? wg_key_check_private(key) :
		wg_key_check_public(key);

	if (st == WG_KEY_OK)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 is_private ? errmsg("invalid %s: all zero bytes", what) :
			 st == WG_KEY_LOW_ORDER ?
			 errmsg("invalid %s: a low-order point", what) :
			 errmsg("invalid %s: not a canonical X25519 public key", what),
			 errdetail("%s.", wg_key_status_message(st)),
			 errhint("%s", hint)));
}

/*
 * Refuse public_key for a peer of ifname when it is the interface's own
 * key (22023) or a live peer of the interface holds it (23505).  Inside
 * SPI_connect().
 */
void
wgpeer_check_peer_key(const char *ifname, const char *public_key)
{
	static SPIPlanPtr own_plan;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(ifname),
	CStringGetTextDatum(public_key)};
	Oid			eq_procs[2] = {F_TEXTEQ, F_TEXTEQ};
	Datum		keys[2] = {values[1], values[0]};

	wgpeer_exec(&own_plan,
				"SELECT 1 FROM wgpeer.interface WHERE name = $1 AND public_key = $2",
				2, types, values, NULL);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("public_key is the public key of interface \"%s\" itself",
						ifname)));
	if (wgpeer_index_holds("peer_live_public_key", 2, eq_procs, keys))
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("public_key is already used by a peer of interface \"%s\"",
						ifname),
				 errhint("Each peer needs its own key pair.")));
}

/*
 * A fresh preshared key as base64 text; the raw key is wiped.
 */
char *
wgpeer_new_preshared_key(void)
{
	uint8_t		psk[WG_KEY_LEN];
	char	   *text;

	wg_key_generate_preshared(psk);
	text = wgpeer_key_text(psk);
	wg_key_wipe(psk, sizeof(psk));
	return text;
}

/*
 * A fresh key pair as palloc'd base64 strings; the raw private key is
 * wiped.
 */
void
wgpeer_generate_pair(char **private_key, char **public_key)
{
	uint8_t		priv[WG_KEY_LEN];
	uint8_t		pub[WG_KEY_LEN];

	wg_key_generate_private(priv);
	wg_key_public(pub, priv);
	*private_key = wgpeer_key_text(priv);
	*public_key = wgpeer_key_text(pub);
	wg_key_wipe(priv, sizeof(priv));
}

/*
 * wg_genkey() returns text: a new private key, as `wg genkey` prints it.
 */
Datum
wg_genkey(PG_FUNCTION_ARGS)
{
	uint8_t		key[WG_KEY_LEN];
	char	   *out;

	wg_key_generate_private(key);
	out = wgpeer_key_text(key);
	wg_key_wipe(key, sizeof(key));
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * wg_pubkey(private_key text) returns text: its public key.
 */
Datum
wg_pubkey(PG_FUNCTION_ARGS)
{
	char	   *priv_text = text_to_cstring(PG_GETARG_TEXT_PP(0));
	uint8_t		priv[WG_KEY_LEN];
	uint8_t		pub[WG_KEY_LEN];
	int			rc;

	wgpeer_parse_key(priv_text, "private key", priv);
	rc = wg_key_public(pub, priv);
	wg_key_wipe(priv, sizeof(priv));
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid private key: it has no usable public key")));
	PG_RETURN_TEXT_P(cstring_to_text(wgpeer_key_text(pub)));
}

/*
 * wg_genpsk() returns text: a new preshared key, as `wg genpsk` prints it.
 */
Datum
wg_genpsk(PG_FUNCTION_ARGS)
{
	uint8_t		key[WG_KEY_LEN];
	char	   *out;

	wg_key_generate_preshared(key);
	out = wgpeer_key_text(key);
	wg_key_wipe(key, sizeof(key));
	PG_RETURN_TEXT_P(cstring_to_text(out));
}
