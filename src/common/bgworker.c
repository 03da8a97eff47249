/*
 * bgworker.c
 *		What wgpeer's background workers (the apply worker, the webhook
 *		worker) share: their registration and their pinned search_path.
 */
#include "common/common.h"

#include "postmaster/bgworker.h"
#include "utils/guc.h"

/*
 * Register a background worker of this library that runs function,
 * named (and typed, as pg_stat_activity.backend_type shows it) name:
 * connected to a database, started once recovery has finished (never on
 * a hot standby), restarted 5 s after it exits with an error.  Called
 * from _PG_init while preloading.
 */
void
wgpeer_register_bgworker(const char *function, const char *name)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "wgpeer");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", name);
	RegisterBackgroundWorker(&worker);
}

/*
 * Pin a background worker's search_path to pg_catalog, pg_temp for its
 * whole life, as PostgreSQL's logical replication workers do.  A worker is
 * a superuser session; an unqualified function or operator in its
 * statements, in the triggers they fire or in any SQL function they call
 * is resolved over the whole path, and an exact-type overload anywhere on
 * it beats pg_catalog's variadic or coercing one (json_build_object,
 * 2 ^ n, numeric * 1000...).  Under the database's default path
 * ("$user", public) anyone who may create in public (a database owner;
 * PUBLIC itself in a cluster upgraded from 14 or older) could make the
 * worker run their function, and a cached plan re-analysed after an
 * invalidation would pick it up without a restart.  The setting is made
 * after connecting, outside any transaction, at PGC_S_OVERRIDE: it
 * survives every task's transaction and outranks ALTER DATABASE / ALTER
 * ROLE ... SET search_path and postgresql.conf (reloads included).
 */
void
wgpeer_pin_search_path(void)
{
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);
}
