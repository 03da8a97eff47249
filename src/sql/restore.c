/*
 * restore.c
 *		How a trigger tells a restored row from a new one.
 *
 * pg_dump saves the rows of wgpeer's tables and a restore (pg_restore,
 * psql) inserts them again with every trigger enabled: pg_restore disables
 * none unless asked (--disable-triggers, superuser only).  Side effects
 * that belong to a row's first writing (the 'created' event of a peer, the
 * add a new live peer queues, the usage a traffic sample adds) must not
 * happen twice.
 *
 * A restored row says so itself: it carries the time it was first
 * written, in a column whose default is now() (a peer's created_at, a
 * traffic sample's sampled_at), and wgpeer's own writers always take that
 * default.  A row whose time is not this transaction's start was written
 * by an earlier transaction, elsewhere or before: it is restored (or
 * copied by hand), not new.  This needs no setting the person restoring
 * must remember, nothing in the dump, and no state in the session, and it
 * holds for every pg_dump format, COPY or --inserts alike.
 */
#include "sql/sql.h"

#include "access/xact.h"
#include "utils/timestamp.h"

/*
 * Was row tup, whose column (a timestamptz defaulting to now()) holds the
 * time it was first written, written by an earlier transaction?  A NULL
 * time counts as new.
 */
bool
wgpeer_row_restored(HeapTuple tup, TupleDesc desc, const char *column)
{
	int			attno = SPI_fnumber(desc, column);
	bool		isnull;
	Datum		d;

	if (attno <= 0)
		elog(ERROR, "wgpeer: the row has no column \"%s\"", column);
	d = SPI_getbinval(tup, desc, attno, &isnull);
	return !isnull &&
		DatumGetTimestampTz(d) != GetCurrentTransactionStartTimestamp();
}
