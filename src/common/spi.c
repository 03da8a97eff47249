/*
 * spi.c
 *		Statements through SPI plans prepared on first use and kept for the
 *		life of the process.
 */
#include "common/common.h"

/*
 * Execute a statement through a plan prepared on first use and kept for
 * the life of the backend.  The plan is analysed under the search_path of
 * the moment, and analysed again under the then current one whenever it
 * is invalidated; qualified table names do not make it independent of
 * the path, since unqualified functions and operators are still resolved
 * over it (and an exact-type overload anywhere on it beats pg_catalog's
 * variadic or coercing one).  So the caller must run under a safe path:
 * the apply worker pins its own (worker/main.c), API functions are
 * declared with SET search_path, and the statements of triggers, which
 * run in whatever session fired them, qualify their functions and
 * operators with pg_catalog.  Returns the SPI result code; SPI failures
 * raise an internal error.
 */
int
wgpeer_exec(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types,
			Datum *values, const char *nulls)
{
	return wgpeer_exec_opts(plan, sql, nargs, types, values, nulls, 0);
}

/*
 * wgpeer_exec() with planner options: CURSOR_OPT_CUSTOM_PLAN plans each
 * execution afresh, for a lookup whose table may have grown from empty
 * within one transaction (a plan made while it was empty scans it whole,
 * and autovacuum cannot see uncommitted rows to fix that).
 */
int
wgpeer_exec_opts(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types,
				 Datum *values, const char *nulls, int cursor_options)
{
	int			rc;

	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare_cursor(sql, nargs, types, cursor_options);

		if (p == NULL)
			elog(ERROR, "wgpeer: could not prepare \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*plan = p;
	}
	rc = SPI_execute_plan(*plan, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "wgpeer: could not execute \"%s\": %s",
			 sql, SPI_result_code_string(rc));
	return rc;
}

