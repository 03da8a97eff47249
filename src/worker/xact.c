/*
 * xact.c
 *		The apply worker's transactions, begun and ended as worker_spi does.
 */
#include "worker/worker.h"

#include "access/xact.h"
#include "pgstat.h"
#include "utils/snapmgr.h"

/*
 * Is the extension installed in the worker's database?  (It may not be yet,
 * or have been dropped.)  Inside a worker transaction.
 */
bool
wgpeer_installed(void)
{
	return SPI_execute("SELECT 1 FROM pg_extension WHERE extname = 'wgpeer'",
					   true, 1) == SPI_OK_SELECT && SPI_processed == 1;
}

/* Start a worker transaction with a snapshot and SPI, as worker_spi does. */
void
wgpeer_begin_work(const char *what)
{
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
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}
