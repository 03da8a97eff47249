/*
 * pool.c
 *		Tunnel address allocation: wg_next_ip() and the allocator behind
 *		wg_create_peer() and wg_renew_peer().
 *
 * Each interface has a pool row holding a high-water mark: every address
 * from next_address to pool_end has never been handed out.  Addresses below
 * it that peers gave back are listed in free_address.  The lowest free
 * address is therefore the smallest free_address entry, or the high-water
 * mark: two index probes, whatever the number of peers.
 *
 * Allocators of one interface serialize on its pool row (SELECT ... FOR
 * UPDATE), held to the end of the transaction.  Nothing else locks that
 * row, so readers, the apply worker and other interfaces never wait.
 * Under READ COMMITTED each statement after the lock sees what the
 * previous allocator committed.  Under REPEATABLE READ or SERIALIZABLE the
 * snapshot predates the lock; every allocating transaction updates the
 * pool row, so the second allocator's lock fails with a serialization
 * error, which we report with a hint to retry.
 */
#include "sql/sql.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(wg_next_ip);

/*
 * Run one of the allocator's statements.  Its plan is generic from the
 * first call: each is an index probe by the interface's name whatever the
 * name, and planning a custom plan, which a saved plan otherwise does for
 * its first five calls in a session, cost more than running it (a
 * session's first allocations on an interface cost twice the later ones).
 */
static void
pool_exec(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types,
		  Datum *values)
{
	wgpeer_exec_opts(plan, sql, nargs, types, values, NULL,
					 CURSOR_OPT_GENERIC_PLAN);
}

/*
 * Give the addresses of expired peers past the grace period back to their
 * pool (all interfaces when ifname is NULL).  Returns how many.  The
 * worker's expiry releases for every interface while allocators release
 * for theirs: each locks the rows in peer_id order and skips those another
 * transaction holds (that one releases them), so two never deadlock.
 * An allocator first asks the index of expired peers (peer_grace) whether
 * the interface has any at all, the usual case: planning the release
 * statement, which a session does afresh for its first few calls, cost the
 * first allocation after a bulk creation several times a normal one.
 */
int
wgpeer_release_expired(const char *ifname)
{
	static SPIPlanPtr one_plan;
	static SPIPlanPtr all_plan;
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];

	values[1] = Int32GetDatum(wgpeer_expired_grace);
	if (ifname)
	{
		Oid			eq_procs[1] = {F_TEXTEQ};

		values[0] = CStringGetTextDatum(ifname);
		if (!wgpeer_index_holds("peer_grace", 1, eq_procs, values))
			return 0;
		pool_exec(&one_plan,
				  "WITH due AS (SELECT peer_id FROM wgpeer.peer"
				  "  WHERE interface = $1 AND status = 'expired'"
				  "    AND released_at IS NULL"
				  "    AND expires_at < now() - make_interval(secs => $2)"
				  "  ORDER BY peer_id FOR UPDATE SKIP LOCKED),"
				  " r AS (UPDATE wgpeer.peer p SET released_at = now()"
				  "  FROM due WHERE p.peer_id = due.peer_id"
				  "  RETURNING p.interface, p.address)"
				  " INSERT INTO wgpeer.free_address (interface, address)"
				  " SELECT interface, address FROM r ON CONFLICT DO NOTHING",
				  2, types, values);
	}
	else
		wgpeer_exec(&all_plan,
					"WITH due AS (SELECT peer_id FROM wgpeer.peer"
					"  WHERE status = 'expired' AND released_at IS NULL"
					"    AND expires_at < now() - make_interval(secs => $1)"
					"  ORDER BY peer_id FOR UPDATE SKIP LOCKED),"
					" r AS (UPDATE wgpeer.peer p SET released_at = now()"
					"  FROM due WHERE p.peer_id = due.peer_id"
					"  RETURNING p.interface, p.address)"
					" INSERT INTO wgpeer.free_address (interface, address)"
					" SELECT interface, address FROM r ON CONFLICT DO NOTHING",
					1, types + 1, values + 1, NULL);
	return (int) SPI_processed;
}

/*
 * The pool of one interface as the allocator reads it (under its lock):
 * the high-water mark, the server's addresses (IPv6 (Datum) 0 when it has
 * none) and the first and last address of the pool.
 */
typedef struct PoolState
{
	uint32		next;
	uint32		first;
	uint32		last;
	Datum		address;
	Datum		address6;
} PoolState;

/*
 * Take the pool lock of ifname and read its pool, in one statement.
 * Under a transaction snapshot, a lock that conflicts with a concurrent
 * allocation is reported as a serialization failure the caller can retry.
 * The server's addresses are copied out of SPI's memory.
 */
static void
lock_pool(const char *ifname, PoolState *pool)
{
	static SPIPlanPtr plan;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(ifname)};
	MemoryContext ctx = CurrentMemoryContext;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;

	PG_TRY();
	{
		pool_exec(&plan,
				  "SELECT p.next_address, i.address, i.address6,"
				  " i.pool_start, i.pool_end"
				  " FROM wgpeer.pool p JOIN wgpeer.interface i"
				  "   ON i.name OPERATOR(pg_catalog.=) p.interface"
				  " WHERE p.interface = $1 FOR UPDATE OF p",
				  1, types, values);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_T_R_SERIALIZATION_FAILURE ||
			!IsolationUsesXactSnapshot())
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not allocate an address on interface \"%s\": "
						"a concurrent transaction allocated one",
						ifname),
				 errdetail("Under %s the transaction's snapshot cannot see "
						   "the other allocation.",
						   XactIsoLevel == XACT_SERIALIZABLE ?
						   "SERIALIZABLE" : "REPEATABLE READ"),
				 errhint("Retry the transaction, or allocate under READ COMMITTED, "
						 "which waits instead of failing.")));
	}
	PG_END_TRY();

	if (SPI_processed != 1)
		wgpeer_interface_not_registered(ifname);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	pool->next = wgpeer_inet4_value(DatumGetInetPP(SPI_getbinval(tup, desc, 1, &isnull)));
	pool->address = wgpeer_inet_copy(SPI_getbinval(tup, desc, 2, &isnull));
	d = SPI_getbinval(tup, desc, 3, &isnull);
	pool->address6 = isnull ? (Datum) 0 : wgpeer_inet_copy(d);
	pool->first = wgpeer_inet4_value(DatumGetInetPP(SPI_getbinval(tup, desc, 4, &isnull)));
	pool->last = wgpeer_inet4_value(DatumGetInetPP(SPI_getbinval(tup, desc, 5, &isnull)));
}

/*
 * Take the pool lock of ifname, as an allocation does: placement
 * (placement.c) takes it before it counts an interface's peers, so that
 * placements and allocations on one interface wait for each other.
 */
void
wgpeer_lock_pool(const char *ifname)
{
	PoolState	pool;

	lock_pool(ifname, &pool);
}

/*
 * True when a peer of ifname holds address (a unique index probe).
 */
static bool
address_held(const char *ifname, Datum address)
{
	Oid			eq_procs[2] = {F_NETWORK_EQ, F_TEXTEQ};
	Datum		keys[2] = {address, CStringGetTextDatum(ifname)};

	return wgpeer_index_holds("peer_live_address", 2, eq_procs, keys);
}

/*
 * How many addresses of ifname's pool (first .. last) peers hold: on an
 * exhausted pool, how many clients it serves (the server's own addresses
 * are in the pool's range but never handed out).
 */
static int64
held_in_pool(const char *ifname, uint32 first, uint32 last)
{
	static SPIPlanPtr plan;
	Oid			types[3] = {TEXTOID, INETOID, INETOID};
	Datum		values[3] = {CStringGetTextDatum(ifname),
		wgpeer_inet4_datum(first, 32), wgpeer_inet4_datum(last, 32)};
	bool		isnull;

	wgpeer_exec(&plan,
				"SELECT pg_catalog.count(*) FROM wgpeer.peer"
				" WHERE interface = $1 AND released_at IS NULL"
				"   AND address OPERATOR(pg_catalog.>=) $2"
				"   AND address OPERATOR(pg_catalog.<=) $3",
				3, types, values, NULL);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Remove address from ifname's free list.
 */
static void
drop_free(const char *ifname, Datum address)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {TEXTOID, INETOID};
	Datum		values[2] = {CStringGetTextDatum(ifname), address};

	pool_exec(&plan,
			  "DELETE FROM wgpeer.free_address"
			  " WHERE interface = $1 AND address = $2",
			  2, types, values);
}

/*
 * The lowest entry of ifname's free list that no peer holds, dropping
 * stale entries on the way; (Datum) 0 when there is none.  When preferred
 * is set and is itself a valid free entry, it wins (a renewed peer gets
 * its old address back when nobody took it).
 */
static Datum
lowest_free(const char *ifname, Datum preferred)
{
	static SPIPlanPtr min_plan;
	static SPIPlanPtr has_plan;
	Oid			types[2] = {TEXTOID, INETOID};
	Datum		values[2] = {CStringGetTextDatum(ifname), preferred};
	bool		isnull;

	if (preferred)
	{
		pool_exec(&has_plan,
				  "SELECT 1 FROM wgpeer.free_address"
				  " WHERE interface = $1 AND address = $2",
				  2, types, values);
		if (SPI_processed > 0 && !address_held(ifname, preferred))
			return preferred;
	}
	for (;;)
	{
		Datum		candidate;

		pool_exec(&min_plan,
				  "SELECT address FROM wgpeer.free_address"
				  " WHERE interface = $1 ORDER BY address LIMIT 1",
				  1, types, values);
		if (SPI_processed == 0)
			return (Datum) 0;
		candidate = SPI_getbinval(SPI_tuptable->vals[0],
								  SPI_tuptable->tupdesc, 1, &isnull);
		candidate = wgpeer_inet_copy(candidate);
		if (!address_held(ifname, candidate))
			return candidate;
		drop_free(ifname, candidate);
	}
}

/*
 * The pool row this (sub)transaction has already written, and the
 * high-water mark it has reached since: later allocations in the same
 * transaction continue from there without writing the row again, since
 * every write would add a row version that each following lock has to
 * walk past (quadratic for a bulk creation in one transaction).  The mark
 * reached is written once more just before the transaction commits, so
 * the next transaction starts from it: without that final write, the
 * first allocation after a bulk creation of 20,000 peers probed each of
 * them (33-63 ms instead of 0.7).  Subtransactions: the record follows a
 * committed subtransaction to its parent and is dropped with an aborted
 * one (whose row write is undone with it); the end of the transaction
 * drops it in any case.
 */
static struct
{
	bool		valid;
	SubTransactionId subxid;
	char		ifname[NAMEDATALEN];
	uint32		stored;			/* the mark the row holds */
	uint32		next;			/* the mark reached since */
}			written;

/* Has this (sub)transaction written ifname's pool row already? */
static bool
pool_written(const char *ifname)
{
	return written.valid &&
		written.subxid == GetCurrentSubTransactionId() &&
		strcmp(written.ifname, ifname) == 0;
}

/*
 * Store the mark the committing transaction reached, when it is past the
 * one its row holds.  Runs at pre-commit, when the transaction can still
 * fail and run statements; the pool row is locked by this transaction.
 */
static void
store_final_mark(void)
{
	static SPIPlanPtr plan;
	Oid			types[2] = {TEXTOID, INETOID};
	Datum		values[2];

	if (!written.valid || written.subxid != TopSubTransactionId ||
		written.next <= written.stored)
		return;
	values[0] = CStringGetTextDatum(written.ifname);
	values[1] = wgpeer_inet4_datum(written.next, 32);
	/* portals are closed by now: the statement needs a snapshot of its own */
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pool_exec(&plan,
			  "UPDATE wgpeer.pool SET next_address = $2"
			  " WHERE interface = $1 AND next_address OPERATOR(pg_catalog.<) $2",
			  2, types, values);
	SPI_finish();
	PopActiveSnapshot();
	written.valid = false;
}

/* The end of a transaction: store the final mark first when it commits. */
static void
pool_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE)
		store_final_mark();
	else
		written.valid = false;
}

/* The end of a subtransaction: hand the record to its parent, or drop it. */
static void
pool_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	if (!written.valid || written.subxid != mySubid)
		return;
	if (event == SUBXACT_EVENT_COMMIT_SUB)
		written.subxid = parentSubid;
	else if (event == SUBXACT_EVENT_ABORT_SUB)
		written.valid = false;
}

/*
 * Record the pool's new high-water mark.  A consuming allocation writes
 * the row once per transaction: that write is what makes a concurrent
 * snapshot-isolated allocator fail instead of handing out the same
 * address.  A mere look (wg_next_ip) writes only to move the mark up.
 */
static void
update_pool(const char *ifname, uint32 next, uint32 stored, bool consume)
{
	static SPIPlanPtr plan;
	static bool callbacks_registered = false;
	Oid			types[2] = {TEXTOID, INETOID};
	Datum		values[2];

	if (pool_written(ifname))
	{
		written.next = Max(written.next, next);
		return;
	}
	if (!consume && next == stored)
		return;
	if (!callbacks_registered)
	{
		RegisterXactCallback(pool_xact_callback, NULL);
		RegisterSubXactCallback(pool_subxact_callback, NULL);
		callbacks_registered = true;
	}
	values[0] = CStringGetTextDatum(ifname);
	values[1] = wgpeer_inet4_datum(next, 32);
	pool_exec(&plan,
			  "UPDATE wgpeer.pool SET next_address = $2 WHERE interface = $1",
			  2, types, values);
	written.valid = true;
	written.subxid = GetCurrentSubTransactionId();
	strlcpy(written.ifname, ifname, NAMEDATALEN);
	written.stored = next;
	written.next = next;
}

/*
 * The lowest free host address of ifname's pool, as an inet /32, with the
 * pool locked until the end of the transaction.  When consume is false
 * (wg_next_ip) the address stays free, so the next peer created on the
 * interface in this transaction receives it; when true the address is
 * taken off the free list or the high-water mark moves past it.
 * Must be called inside SPI_connect().
 */
Datum
wgpeer_allocate(const char *ifname, bool consume, Datum preferred)
{
	PoolState	pool;
	uint32		stored;
	uint32		next;
	uint32		server;
	uint32		first;
	uint32		last;
	Datum		result;

	lock_pool(ifname, &pool);
	next = stored = pool.next;
	if (pool_written(ifname))
		next = Max(next, written.next);
	first = pool.first;
	last = pool.last;
	server = wgpeer_inet4_value(DatumGetInetPP(pool.address));

	wgpeer_release_expired(ifname);

	result = lowest_free(ifname, preferred);
	if (result)
	{
		if (consume)
		{
			drop_free(ifname, result);
			update_pool(ifname, next, stored, true);
		}
		return result;
	}

	/* nothing given back: take the high-water mark, skipping reserved ones */
	for (;; next++)
	{
		if (next > last || next < first)
		{
			int64		held = held_in_pool(ifname, first, last);

			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("the address pool of interface \"%s\" is exhausted",
							ifname),
					 errdetail_plural("The pool's %lld client address is in use.",
									  "All %lld client addresses of the pool are in use.",
									  (unsigned long) held, (long long) held),
					 errhint("Revoke unused peers, or add an interface with a "
							 "larger pool.")));
		}
		result = wgpeer_inet4_datum(next, 32);
		if (next == server)
			continue;
		if (pool.address6)
		{
			Datum		derived = wgpeer_derive6(result, pool.address,
												 pool.address6);

			if (memcmp(ip_addr(DatumGetInetPP(derived)),
					   ip_addr(DatumGetInetPP(pool.address6)), 16) == 0)
				continue;
		}
		/* once this transaction wrote the mark, nobody else moved it */
		if (!pool_written(ifname) && address_held(ifname, result))
			continue;
		break;
	}
	update_pool(ifname, consume ? next + 1 : next, stored, consume);
	return result;
}

/*
 * wg_next_ip(interface text default null) returns inet: the address the
 * next peer created on the interface in this transaction will receive.
 */
Datum
wg_next_ip(PG_FUNCTION_ARGS)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *ifname;
	Datum		result;

	wgpeer_require_primary("wg_next_ip");
	SPI_connect();
	ifname = wgpeer_resolve_interface(PG_ARGISNULL(0) ? NULL :
									  PG_GETARG_TEXT_PP(0));
	result = wgpeer_allocate(ifname, false, (Datum) 0);
	MemoryContextSwitchTo(outer);
	result = wgpeer_inet_copy(result);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * Claim a given address of ifname's pool for a peer being imported: it
 * must lie in the pool, not be the server's, and not be held; it leaves
 * the free list, or, above the high-water mark, the mark moves past it
 * and the addresses it skips go on the free list.  Must be called inside
 * SPI_connect().
 */
void
wgpeer_claim_address(const char *ifname, Datum address)
{
	static SPIPlanPtr skip_plan;
	Oid			types[4] = {TEXTOID, INETOID, INT8OID, INT8OID};
	Datum		values[4] = {CStringGetTextDatum(ifname), address, 0, 0};
	uint32		addr = wgpeer_inet4_value(DatumGetInetPP(address));
	PoolState	pool;
	uint32		stored;
	uint32		next;
	uint32		server;
	uint32		first;
	uint32		last;

	lock_pool(ifname, &pool);
	next = stored = pool.next;
	if (pool_written(ifname))
		next = Max(next, written.next);
	first = pool.first;
	last = pool.last;
	server = wgpeer_inet4_value(DatumGetInetPP(pool.address));
	if (addr < first || addr > last || addr == server)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("address %s is not in the pool of interface \"%s\"",
						DatumGetCString(DirectFunctionCall1(inet_out, address)),
						ifname),
				 addr == server ?
				 errdetail("It is the server's own address.") :
				 errdetail("The pool runs from %s to %s.",
						   DatumGetCString(DirectFunctionCall1(inet_out,
																   wgpeer_inet4_datum(first, 32))),
						   DatumGetCString(DirectFunctionCall1(inet_out,
																   wgpeer_inet4_datum(last, 32)))),
				 errhint("Import the peer into the interface whose pool holds "
						 "its address.")));
	if (address_held(ifname, address))
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("address %s is already taken on interface \"%s\"",
						DatumGetCString(DirectFunctionCall1(inet_out, address)),
						ifname)));
	if (addr < next)
	{
		drop_free(ifname, address);
		return;
	}
	values[2] = Int64GetDatum((int64) next);
	values[3] = Int64GetDatum((int64) server);
	wgpeer_exec(&skip_plan,
				"INSERT INTO wgpeer.free_address (interface, address)"
				" SELECT $1, '0.0.0.0/32'::inet + n"
				" FROM generate_series($3, ($2 - '0.0.0.0/32'::inet) - 1) n"
				" WHERE n <> $4 AND NOT EXISTS (SELECT FROM wgpeer.peer p"
				"   WHERE p.interface = $1 AND p.released_at IS NULL"
				"     AND p.address = '0.0.0.0/32'::inet + n)"
				" ON CONFLICT DO NOTHING",
				4, types, values, NULL);
	update_pool(ifname, addr + 1, stored, true);
}
