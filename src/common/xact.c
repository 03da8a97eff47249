/*
 * xact.c
 *		The background workers' transactions (the apply worker's and the
 *		webhook worker's), begun and ended as worker_spi does, and whether
 *		the extension they serve is there.
 */
#include "common/common.h"

#include "access/xact.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "utils/snapmgr.h"

/*
 * Is the extension installed in the worker's database, at the version
 * this library serves?  (It may not be yet, or have been dropped; after a
 * new library is installed, the worker waits for ALTER EXTENSION UPDATE
 * rather than run its statements against tables of another version.)
 * Inside a worker transaction.
 */
bool
wgpeer_installed(void)
{
	static bool warned = false;
	static bool told_missing = false;
	char	   *version;

	if (SPI_execute("SELECT extversion FROM pg_extension WHERE extname = 'wgpeer'",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
	{
		/* a wrong wgpeer.database would otherwise look like an idle worker */
		if (!told_missing)
			ereport(LOG,
					(errmsg("the %s serves database \"%s\", "
							"where the extension wgpeer is not installed: it "
							"waits for CREATE EXTENSION wgpeer there",
							MyBgworkerEntry->bgw_type, wgpeer_database),
					 errhint("If wgpeer is installed in another database, set "
							 "wgpeer.database to that database in "
							 "postgresql.conf and restart.")));
		told_missing = true;
		return false;
	}
	told_missing = false;
	version = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (strcmp(version, WGPEER_VERSION) == 0)
	{
		warned = false;
		return true;
	}
	if (!warned)
		ereport(WARNING,
				(errmsg("the %s is waiting: the extension in "
						"database \"%s\" is at version %s, this library serves %s",
						MyBgworkerEntry->bgw_type, wgpeer_database, version,
						WGPEER_VERSION),
				 errhint("Run ALTER EXTENSION wgpeer UPDATE in that database.")));
	warned = true;
	return false;
}

/* The memory context a worker transaction was begun in. */
static MemoryContext outer_context = NULL;

/*
 * Start a worker transaction with a snapshot and SPI, as worker_spi does.
 * What the caller allocates after wgpeer_end_work() goes back into the
 * context it was in here (committing leaves TopMemoryContext current,
 * where every pass would leak it).
 */
void
wgpeer_begin_work(const char *what)
{
	outer_context = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, what);
}

/* Commit the worker transaction begun by wgpeer_begin_work(). */
void
wgpeer_end_work(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(outer_context);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}
