/*
 * device_limit.c
 *		The most live peers (devices) one user may have: per interface
 *		(interface.max_peers_per_user) or, where an interface sets none,
 *		across all interfaces (wgpeer.max_peers_per_user; 0 = no limit).
 *
 * A claim locks the user's row in wgpeer.peer_owner until the end of the
 * transaction, so two sessions claiming a user's last device serialize:
 * under READ COMMITTED the second waits, then counts the first's peer and
 * is refused; under REPEATABLE READ or SERIALIZABLE it fails with 40001,
 * to be retried.  Suspended, revoked and expired peers do not count;
 * resuming a suspended peer claims again.
 */
#include "sql/sql.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

/*
 * Claim one more live peer for user_id on ifname, or raise 53400 when the
 * limit that applies is reached.  Inside SPI_connect().
 */
void
wgpeer_claim_device(const char *user_id, const char *ifname)
{
	static SPIPlanPtr limit_plan;
	static SPIPlanPtr lock_plan;
	static SPIPlanPtr count_plan;
	Oid			types[3] = {TEXTOID, TEXTOID, BOOLOID};
	Datum		values[3] = {CStringGetTextDatum(user_id),
	CStringGetTextDatum(ifname), (Datum) 0};
	bool		isnull;
	int			limit;
	bool		per_interface;
	int64		live;

	wgpeer_exec(&limit_plan,
				"SELECT max_peers_per_user FROM wgpeer.interface WHERE name = $2",
				2, types, values, NULL);
	limit = SPI_processed == 1 ?
		DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1, &isnull)) : 0;
	per_interface = SPI_processed == 1 && !isnull;
	if (!per_interface)
		limit = wgpeer_max_peers_per_user;
	if (limit <= 0)
		return;

	wgpeer_exec(&lock_plan,
				"INSERT INTO wgpeer.peer_owner AS o (user_id, claimed_at)"
				" VALUES ($1, now())"
				" ON CONFLICT (user_id) DO UPDATE SET claimed_at = now()",
				1, types, values, NULL);
	values[2] = BoolGetDatum(per_interface);
	wgpeer_exec(&count_plan,
				"SELECT count(*) FROM wgpeer.peer"
				" WHERE user_id = $1 AND status IN ('creating', 'active')"
				"   AND (NOT $3 OR interface = $2)",
				3, types, values, NULL);
	live = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	if (live >= limit)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 per_interface ?
				 errmsg("user \"%s\" already has %lld live peers on interface "
						"\"%s\", the most it allows", user_id,
						(long long) live, ifname) :
				 errmsg("user \"%s\" already has %lld live peers, the most "
						"wgpeer.max_peers_per_user allows", user_id,
						(long long) live),
				 errdetail("The limit is %d; suspended, revoked and expired "
						   "peers do not count.", limit),
				 errhint("Revoke or suspend one of the user's peers "
						 "(wgpeer.wg_list_user_peers('%s') lists them), or "
						 "raise the limit.", user_id)));
}
