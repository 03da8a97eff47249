/*
 * lifecycle.c
 *		The subscription lifecycle beyond create, renew and revoke:
 *		wg_suspend_peer(), wg_resume_peer() and wg_rotate_peer_key().
 *
 * Each changes the peer row only; the peer_queue trigger (queue.c) queues
 * what the interface must do: a suspended peer leaves it, a resumed one
 * comes back with the same keys and address, and a rotated key replaces
 * the old one in one apply (the old key's removal and the new key's
 * addition are queued in this order in the same transaction).
 *
 *	from \ call		suspend			resume				rotate key
 *	creating/active	suspended		(unchanged)			same status, new key
 *	suspended		(unchanged)		creating			suspended, new key
 *	revoked/expired	55000			55000				55000
 */
#include "sql/sql.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(wg_suspend_peer);
PG_FUNCTION_INFO_V1(wg_resume_peer);
PG_FUNCTION_INFO_V1(wg_rotate_peer_key);

/* Longest suspension reason, in bytes. */
#define REASON_MAX 200

/* A peer row as the functions here need it, locked. */
typedef struct LockedPeer
{
	char	   *status;
	char	   *user_id;
	char	   *interface;
} LockedPeer;

/*
 * Lock the peer and read it; raise the usual error for an unknown id.
 * Inside SPI_connect().
 */
static void
lock_peer(Datum peer_id, LockedPeer *p)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {UUIDOID};
	Datum		values[1] = {peer_id};

	wgpeer_exec(&plan,
				"SELECT status, user_id, interface FROM wgpeer.peer"
				" WHERE peer_id = $1 FOR UPDATE",
				1, types, values, NULL);
	if (SPI_processed == 0)
		wgpeer_peer_not_found(peer_id);
	p->status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	p->user_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	p->interface = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
}

/*
 * Refuse a transition out of a final state (revoked, expired) with 55000,
 * saying the state; "what" is the verb ("suspended", ...).
 */
static void
refuse_if_final(Datum peer_id, const LockedPeer *p, const char *what)
{
	if (strcmp(p->status, "revoked") != 0 && strcmp(p->status, "expired") != 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("peer %s is %s and cannot be %s",
					DatumGetCString(DirectFunctionCall1(uuid_out, peer_id)),
					p->status, what),
			 strcmp(p->status, "expired") == 0 ?
			 errhint("Renew it with wgpeer.wg_renew_peer() first.") :
			 errhint("Create a new peer with wgpeer.wg_create_peer().")));
}

/*
 * wg_suspend_peer(peer_id, reason text DEFAULT NULL) returns peer_public:
 * take a live peer off its interface, keeping its keys, address, expiry
 * and traffic; the reason is recorded.  Suspending a suspended peer
 * changes nothing.
 */
Datum
wg_suspend_peer(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan;
	char	   *reason = wgpeer_text_arg(fcinfo, 1, "reason", false);
	Datum		peer_id;
	LockedPeer	p;
	Datum		result;

	wgpeer_require_primary("wg_suspend_peer");
	peer_id = wgpeer_peer_id_arg(fcinfo, 0);
	if (reason && strlen(reason) > REASON_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reason must be at most %d bytes, not %zu",
						REASON_MAX, strlen(reason)),
				 errhint("Record the details elsewhere and give a short reason, "
						 "e.g. 'payment overdue'.")));

	SPI_connect();
	lock_peer(peer_id, &p);
	refuse_if_final(peer_id, &p, "suspended");
	if (strcmp(p.status, "suspended") != 0)
	{
		Oid			types[2] = {UUIDOID, TEXTOID};
		Datum		values[2] = {peer_id,
		reason ? CStringGetTextDatum(reason) : (Datum) 0};
		char		nulls[2] = {' ', reason ? ' ' : 'n'};

		wgpeer_exec(&plan,
					"UPDATE wgpeer.peer SET status = 'suspended',"
					" suspended_at = now(), suspended_reason = $2"
					" WHERE peer_id = $1",
					2, types, values, nulls);
	}
	result = wgpeer_public_row(peer_id);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * wg_resume_peer(peer_id) returns peer_public: bring a suspended peer back
 * with the same config, if its user's device limit allows.  Resuming a
 * live peer changes nothing.
 */
Datum
wg_resume_peer(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan;
	Datum		peer_id;
	LockedPeer	p;
	Datum		result;

	wgpeer_require_primary("wg_resume_peer");
	peer_id = wgpeer_peer_id_arg(fcinfo, 0);

	SPI_connect();
	lock_peer(peer_id, &p);
	refuse_if_final(peer_id, &p, "resumed");
	if (strcmp(p.status, "suspended") == 0)
	{
		Oid			types[1] = {UUIDOID};
		Datum		values[1] = {peer_id};

		wgpeer_claim_device(p.user_id, p.interface);
		wgpeer_exec(&plan,
					"UPDATE wgpeer.peer SET status = 'creating',"
					" suspended_at = NULL, suspended_reason = NULL"
					" WHERE peer_id = $1",
					1, types, values, NULL);
	}
	result = wgpeer_public_row(peer_id);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * wg_rotate_peer_key(peer_id, public_key text DEFAULT NULL) returns text:
 * a new key pair (or the client's own public key) and a new preshared key
 * for the peer, keeping its address, expiry and traffic totals; returns
 * its new client config.  The old key leaves the interface and the new
 * one arrives in the same apply, so the old config stops working when the
 * new one starts to.
 */
Datum
wg_rotate_peer_key(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr iface_plan;
	static SPIPlanPtr update_plan;
	char	   *client_key = wgpeer_text_arg(fcinfo, 1, "public_key", false);
	MemoryContext outer = CurrentMemoryContext;
	char	   *private_key = NULL;
	char	   *public_key;
	char	   *preshared_key = NULL;
	Datum		peer_id;
	LockedPeer	p;
	char	   *config;
	text	   *result;

	wgpeer_require_primary("wg_rotate_peer_key");
	peer_id = wgpeer_peer_id_arg(fcinfo, 0);
	if (client_key)
	{
		uint8_t		pub[WG_KEY_LEN];

		wgpeer_parse_key(client_key, "public_key", pub);
		wgpeer_check_key(pub, false, "public_key",
						 "Pass the key `wg pubkey` prints for the client's new "
						 "private key, or leave public_key null to have a key "
						 "pair generated.");
		public_key = wgpeer_key_text(pub);
	}
	else
		wgpeer_generate_pair(&private_key, &public_key);

	SPI_connect();
	lock_peer(peer_id, &p);
	refuse_if_final(peer_id, &p, "given a new key");
	wgpeer_check_peer_key(p.interface, public_key);
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(p.interface)};
		bool		isnull;

		wgpeer_exec(&iface_plan,
					"SELECT preshared_keys FROM wgpeer.interface WHERE name = $1",
					1, types, values, NULL);
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull)))
			preshared_key = wgpeer_new_preshared_key();
	}
	{
		Oid			types[4] = {UUIDOID, TEXTOID, TEXTOID, TEXTOID};
		Datum		values[4] = {peer_id, CStringGetTextDatum(public_key),
			private_key ? CStringGetTextDatum(private_key) : (Datum) 0,
		preshared_key ? CStringGetTextDatum(preshared_key) : (Datum) 0};
		char		nulls[4] = {' ', ' ', private_key ? ' ' : 'n',
		preshared_key ? ' ' : 'n'};

		wgpeer_exec(&update_plan,
					"UPDATE wgpeer.peer SET public_key = $2, private_key = $3,"
					" preshared_key = $4 WHERE peer_id = $1",
					4, types, values, nulls);
	}
	config = wgpeer_render_peer_config(DatumGetUUIDP(peer_id));
	MemoryContextSwitchTo(outer);
	result = cstring_to_text(config);
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}
