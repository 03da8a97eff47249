/*
 * pg_compat.h
 *		What differs between the PostgreSQL majors wgpeer builds against
 *		(15, 17 and 18; 16 is untested but kept portable), in one place:
 *		every PG_VERSION_NUM test of the tree lives here, and the code
 *		calls the names below instead.
 *
 * Included by common.h right after postgres.h, so every file of the
 * PostgreSQL layers (common, sql, worker) sees it.  The pure C layers
 * (core, device) use no PostgreSQL header and need none of it.  The
 * macros name PostgreSQL's functions and fields only when expanded: a file
 * that uses one includes their header itself (storage/proc.h,
 * access/genam.h, utils/wait_event.h).
 */
#ifndef WGPEER_PG_COMPAT_H
#define WGPEER_PG_COMPAT_H

/*
 * 18 replaced pg_attribute_noreturn(), written after a declaration, by
 * pg_noreturn, written before it.  The old spelling stays valid here:
 * GCC and clang (the only compilers of a Linux build) accept the
 * attribute after the declarator.
 */
#ifndef pg_attribute_noreturn
#define pg_attribute_noreturn() __attribute__((noreturn))
#endif

/*
 * This backend's index in the PGPROC array: PGPROC lost its pgprocno
 * field in 17.
 */
#if PG_VERSION_NUM >= 170000
#define wgpeer_my_procno() GetNumberFromPGProc(MyProc)
#else
#define wgpeer_my_procno() (MyProc->pgprocno)
#endif

/*
 * Is this process a background worker: 17 replaced the IsBackgroundWorker
 * flag by the process's backend type.
 */
#if PG_VERSION_NUM >= 170000
#define wgpeer_am_bgworker() AmBackgroundWorkerProcess()
#else
#define wgpeer_am_bgworker() IsBackgroundWorker
#endif

/*
 * index_beginscan() without instrumentation: 18 added an
 * IndexScanInstrumentation argument (NULL: none).
 */
#if PG_VERSION_NUM >= 180000
#define wgpeer_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), NULL, (nkeys), (norderbys))
#else
#define wgpeer_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), (nkeys), (norderbys))
#endif

/*
 * A wait event of wgpeer's own, by name, for WaitLatch() and the
 * condition-variable sleeps: on 17+ (custom wait events) pg_stat_activity
 * then shows the name in wait_event, where older majors show "Extension"
 * for every extension's wait.  The name is registered in shared memory on
 * first use in the cluster (a lock and a hash lookup): call it once per
 * process, after attaching to shared memory, and keep the id.
 */
#if PG_VERSION_NUM >= 170000
#define wgpeer_wait_event(name) WaitEventExtensionNew(name)
#else
#define wgpeer_wait_event(name) PG_WAIT_EXTENSION
#endif

/*
 * Insert a heap tuple's index entries: 16 added the onlySummarizing
 * argument (false: every index).  The caller includes executor/executor.h.
 */
#if PG_VERSION_NUM >= 160000
#define wgpeer_insert_index_tuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL, false)
#else
#define wgpeer_insert_index_tuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL)
#endif

#endif							/* WGPEER_PG_COMPAT_H */
