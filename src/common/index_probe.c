/*
 * index_probe.c
 *		"Does a live peer hold this?" answered by probing the unique index
 *		that guards it, not by a planned query.
 *
 * The planner cannot be trusted with these lookups during a bulk load: a
 * peer table analyzed while empty keeps a density of zero rows, so every
 * plan, even one made afresh, takes it for empty however much it grew
 * since, and may scan another partial index whose predicate the query
 * implies (peer_live_public_key for an address) from end to end: a
 * 5,000-peer import became quadratic.  The index is the constraint the
 * lookup checks, so probing it directly is both exact and one descent.
 */
#include "common/common.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/*
 * True when the index wgpeer.index_name has an entry whose leading
 * columns equal keys (compared with the equality functions eq_procs) for
 * a row visible to a fresh snapshot, which also sees this transaction's
 * earlier commands, as a READ COMMITTED statement would.
 */
bool
wgpeer_index_holds(const char *index_name, int nkeys, const Oid *eq_procs,
				   const Datum *keys)
{
	Oid			index_oid = get_relname_relid(index_name,
											  get_namespace_oid("wgpeer", false));
	Relation	index;
	Relation	heap;
	ScanKeyData scankeys[INDEX_MAX_KEYS];
	Snapshot	snapshot;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	bool		found;

	if (!OidIsValid(index_oid))
		elog(ERROR, "wgpeer: index wgpeer.%s does not exist", index_name);
	index = index_open(index_oid, AccessShareLock);
	heap = table_open(index->rd_index->indrelid, AccessShareLock);
	Assert(nkeys <= IndexRelationGetNumberOfKeyAttributes(index));
	for (int i = 0; i < nkeys; i++)
		ScanKeyEntryInitialize(&scankeys[i], 0, i + 1, BTEqualStrategyNumber,
							   InvalidOid, index->rd_indcollation[i],
							   eq_procs[i], keys[i]);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = wgpeer_index_beginscan(heap, index, snapshot, nkeys, 0);
	index_rescan(scan, scankeys, nkeys, NULL, 0);
	slot = table_slot_create(heap, NULL);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(heap, AccessShareLock);
	index_close(index, AccessShareLock);
	return found;
}
