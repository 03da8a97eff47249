/*
 * client_config.c
 *		A peer's client config (the .conf a WireGuard client imports),
 *		rendered from its row and its interface's: wg_peer_config() returns
 *		it and the worker's export writes it to disk.
 */
#include "common/common.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "core/awg.h"
#include "core/config.h"

/*
 * The client config of a stored peer, rendered from its row and its
 * interface's.  Raises an error for an unknown or revoked peer, and for
 * one whose private key a config link handed out and the server forgot
 * (config_link.c); a peer that brought its own key gets a placeholder
 * line instead of its PrivateKey; the client of an AmneziaWG interface
 * gets its parameters, with the client's own junk profile laid over them.
 * Must be called inside SPI_connect();
 * the result lives in the SPI context.
 */
char *
wgpeer_render_peer_config(pg_uuid_t *peer_id)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {UUIDOID};
	Datum		values[1] = {UUIDPGetDatum(peer_id)};
	HeapTuple	tup;
	TupleDesc	desc;
	wg_client_config cfg;
	wg_awg		awg;
	Datum		interface_awg;
	Datum		peer_awg;
	bool		isnull;
	bool		peer_awg_null;
	char	   *status;
	char	   *mtu;
	char	   *keepalive;
	char	   *forgotten_at;
	char	   *buf;
	int			len;

	wgpeer_exec(&plan,
				"SELECT p.status, p.private_key, p.public_key,"
				" set_masklen(p.address, 32)::text,"
				" set_masklen(p.address6, 128)::text,"
				" coalesce(p.dns, i.dns),"
				/* a peer's own mtu and keepalive (0.2), read so under 0.1 too */
				" coalesce((to_jsonb(p) ->> 'mtu')::int, i.mtu), i.public_key,"
				" p.preshared_key, i.endpoint,"
				/* the peer's own allowed_ips (0.2), in its order */
				" coalesce((SELECT string_agg(a.ip, ', ' ORDER BY a.n)"
				"           FROM jsonb_array_elements_text(nullif("
				"             to_jsonb(p) -> 'allowed_ips', 'null')) WITH ORDINALITY"
				"             AS a(ip, n)), i.allowed_ips),"
				" coalesce((to_jsonb(p) ->> 'persistent_keepalive')::int,"
				"          i.persistent_keepalive),"
				/* when a config link handed the private key out (0.2) */
				" (to_jsonb(p) ->> 'private_key_forgotten_at')::timestamptz::text,"
				/* AmneziaWG: the interface's set and the client's own (0.3) */
				" nullif(to_jsonb(i) -> 'awg', 'null'),"
				" nullif(to_jsonb(p) -> 'awg', 'null')"
				" FROM wgpeer.peer p JOIN wgpeer.interface i"
				"   ON i.name = p.interface"
				" WHERE p.peer_id = $1",
				1, types, values, NULL);
	if (SPI_processed == 0)
		wgpeer_peer_not_found(values[0]);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	status = SPI_getvalue(tup, desc, 1);
	if (strcmp(status, "revoked") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("peer %s is revoked",
						DatumGetCString(DirectFunctionCall1(uuid_out, values[0]))),
				 errdetail("A revoked peer has no usable config."),
				 errhint("Create a new peer with wgpeer.wg_create_peer().")));
	forgotten_at = SPI_getvalue(tup, desc, 13);
	if (forgotten_at != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("peer %s has no private key on the server",
						DatumGetCString(DirectFunctionCall1(uuid_out, values[0]))),
				 errdetail("A one-time config link handed its config out at %s "
						   "and the server then forgot its private key: only "
						   "the client holds it.", forgotten_at),
				 errhint("To give the client a new config, rotate its key "
						 "with wgpeer.wg_rotate_peer_key().")));

	memset(&cfg, 0, sizeof(cfg));
	cfg.private_key = SPI_getvalue(tup, desc, 2);
	cfg.public_key = SPI_getvalue(tup, desc, 3);
	cfg.address = SPI_getvalue(tup, desc, 4);
	cfg.address6 = SPI_getvalue(tup, desc, 5);
	cfg.dns = SPI_getvalue(tup, desc, 6);
	mtu = SPI_getvalue(tup, desc, 7);
	cfg.mtu = mtu ? atoi(mtu) : 0;
	cfg.server_public_key = SPI_getvalue(tup, desc, 8);
	cfg.preshared_key = SPI_getvalue(tup, desc, 9);
	cfg.endpoint = SPI_getvalue(tup, desc, 10);
	cfg.allowed_ips = SPI_getvalue(tup, desc, 11);
	keepalive = SPI_getvalue(tup, desc, 12);
	cfg.persistent_keepalive = keepalive ? atoi(keepalive) : 0;
	interface_awg = SPI_getbinval(tup, desc, 14, &isnull);
	peer_awg = SPI_getbinval(tup, desc, 15, &peer_awg_null);
	if (!isnull)
	{
		wgpeer_awg_effective(DatumGetJsonbP(interface_awg),
							 peer_awg_null ? NULL : DatumGetJsonbP(peer_awg),
							 &awg);
		cfg.awg = &awg;
	}

	len = wg_config_render(&cfg, NULL, 0);
	if (len < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the stored peer cannot be rendered as a config"),
				 errdetail("A field is empty or contains a control "
						   "character or a character outside ASCII.")));
	buf = palloc(len + 1);
	wg_config_render(&cfg, buf, len + 1);
	return buf;
}
