/*
 * placement.c
 *		Locations and capacities: which interface a new peer of a location
 *		goes to (wg_create_peer(location => ...)), and the capacity check of
 *		every creation and move.
 *
 * An interface may name a location (interface.location, e.g. 'de') and a
 * capacity (interface.capacity, the most peers it holds; NULL: no limit).
 * A peer counts against its interface's capacity while it holds its
 * address there: live (creating, active) or suspended.
 *
 * Placement takes the pool locks of every interface of the location, in
 * name order, before it counts (the allocator's lock: see pool.c), so two
 * creations in one location take turns and the second counts the first's
 * peer once it committed; they never fill an interface past its capacity.
 * Under READ COMMITTED each statement after the locks sees what the
 * previous holder committed; under REPEATABLE READ or SERIALIZABLE the
 * lock of a pool a concurrent transaction allocated from fails with a
 * serialization error (wgpeer_lock_pool()).
 */
#include "sql/sql.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

/*
 * The capacity of ifname (-1: no limit) and how many peers hold an
 * address there (live or suspended); those are not counted (0) for an
 * interface without a capacity unless always_count.  Inside SPI_connect(),
 * with the pool locked.
 */
static int64
peers_held(const char *ifname, bool always_count, int *capacity)
{
	static SPIPlanPtr capacity_plan;
	static SPIPlanPtr count_plan;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(ifname)};
	bool		isnull;
	Datum		d;

	wgpeer_exec(&capacity_plan,
				"SELECT capacity FROM wgpeer.interface WHERE name = $1",
				1, types, values, NULL);
	if (SPI_processed != 1)
		wgpeer_interface_not_registered(ifname);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*capacity = isnull ? -1 : DatumGetInt32(d);
	if (isnull && !always_count)
		return 0;
	wgpeer_exec(&count_plan,
				"SELECT count(*) FROM wgpeer.peer WHERE interface = $1"
				"  AND status IN ('creating', 'active', 'suspended')",
				1, types, values, NULL);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Refuse one more peer on ifname when it holds its capacity already
 * (53400).  Takes the interface's pool lock, kept to the end of the
 * transaction, so that creations and moves onto it take turns.  Inside
 * SPI_connect().
 */
void
wgpeer_check_capacity(const char *ifname)
{
	int			capacity;
	int64		held;

	wgpeer_lock_pool(ifname);
	held = peers_held(ifname, false, &capacity);
	if (capacity >= 0 && held >= capacity)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("interface \"%s\" is full", ifname),
				 errdetail("It holds %lld peers, its capacity; live and "
						   "suspended peers count.", (long long) held),
				 errhint("Raise its capacity with "
						 "wgpeer.wg_set_interface_location(), put the peer "
						 "on another interface, or revoke peers there.")));
}

/*
 * The interface of location with the most room for one more peer: no
 * capacity first (the fewest peers among those), then the most free
 * places, then the name.  Locks the pools of every interface of the
 * location (see the file comment).  42704 when no interface serves the
 * location, 53400 when all of them are full.  Inside SPI_connect().
 */
char *
wgpeer_place(const char *location)
{
	static SPIPlanPtr names_plan;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(location)};
	int			n;
	char	  **names;
	int			best = -1;
	int64		best_free = 0;
	int64		best_held = 0;
	int64		total = 0;

	wgpeer_exec(&names_plan,
				"SELECT name FROM wgpeer.interface WHERE location = $1"
				" ORDER BY name",
				1, types, values, NULL);
	n = (int) SPI_processed;
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no interface serves location \"%s\"", location),
				 errhint("Give an interface a location with "
						 "wgpeer.wg_set_interface_location(); "
						 "SELECT * FROM wgpeer.location_load lists the "
						 "locations.")));
	names = palloc(n * sizeof(char *));
	for (int i = 0; i < n; i++)
		names[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

	/*
	 * in name order, as every placement does (no deadlock among them); then
	 * count, each statement seeing what the previous lock holder committed
	 */
	for (int i = 0; i < n; i++)
		wgpeer_lock_pool(names[i]);
	for (int i = 0; i < n; i++)
	{
		int			capacity;
		int64		held = peers_held(names[i], true, &capacity);
		int64		free = capacity < 0 ? PG_INT64_MAX : capacity - held;

		total += held;
		if (free <= 0)
			continue;
		if (best < 0 || free > best_free ||
			(free == best_free && held < best_held))
		{
			best = i;
			best_free = free;
			best_held = held;
		}
	}
	if (best < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("location \"%s\" is full", location),
				 errdetail("Its %d interfaces hold %lld peers, their "
						   "capacity; live and suspended peers count.",
						   n, (long long) total),
				 errhint("Raise an interface's capacity with "
						 "wgpeer.wg_set_interface_location(), add an "
						 "interface to the location, or revoke peers there.")));
	return names[best];
}
