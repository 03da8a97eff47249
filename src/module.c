/*
 * wgpeer.c
 *		Module entry point: settings, one-time library initialisation, and
 *		the plumbing every SQL function shares (cached SPI plans, argument
 *		checks).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "wgpeer.h"

#include "validate.h"

PG_MODULE_MAGIC;

/* How long an expired peer keeps its address (seconds). */
int			wgpeer_expired_grace = 7 * 24 * 60 * 60;

void		_PG_init(void);

/*
 * Define the wgpeer.* settings and initialise libsodium.  Runs once per
 * process, when the library is preloaded or first called.
 */
void
_PG_init(void)
{
	if (wg_keys_init() != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("wgpeer could not initialise libsodium"),
				 errdetail("No source of random numbers is available.")));

	DefineCustomIntVariable("wgpeer.expired_grace",
							"How long an expired peer keeps its address.",
							"Renewing an expired peer within this period "
							"brings it back with the same address and config.",
							&wgpeer_expired_grace,
							7 * 24 * 60 * 60, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	wgpeer_worker_define_settings();
	MarkGUCPrefixReserved("wgpeer");
	wgpeer_worker_init();
}

/*
 * Execute a statement through a plan prepared on first use and kept for
 * the life of the backend.  Every statement is schema-qualified, so the
 * cached plan does not depend on the caller's search_path.  Returns the
 * SPI result code; SPI failures raise an internal error.
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

/*
 * A text argument as a C string, checked for control characters (which
 * could break a config line or a log line).  Returns NULL for SQL NULL,
 * unless the argument is required, in which case NULL is an error.
 */
char *
wgpeer_text_arg(FunctionCallInfo fcinfo, int argno, const char *name,
				bool required)
{
	char	   *value;
	const unsigned char *p;

	if (PG_ARGISNULL(argno))
	{
		if (required)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s cannot be null", name)));
		return NULL;
	}
	value = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	for (p = (const unsigned char *) value; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s contains a control character", name),
					 errdetail("Newlines, tabs and other control characters "
							   "are refused in every argument.")));
	return value;
}

/*
 * A "dns" argument: a list of resolver addresses and search domains,
 * returned normalised ("a, b"), or NULL when the argument is NULL.
 */
char *
wgpeer_dns_arg(FunctionCallInfo fcinfo, int argno)
{
	char	   *list = wgpeer_text_arg(fcinfo, argno, "dns", false);
	char	   *normalised;
	char		bad[256];
	const char *why;

	if (list == NULL)
		return NULL;
	normalised = palloc(WG_DNS_LIST_MAX);
	why = wg_check_dns_list(list, normalised, WG_DNS_LIST_MAX, bad, sizeof(bad));
	if (why)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 bad[0] ? errmsg("invalid dns entry \"%s\"", bad) :
				 errmsg("invalid dns \"%s\"", list),
				 errdetail("%s.", why),
				 errhint("Give a comma-separated list of resolver addresses "
						 "and search domains, e.g. '1.1.1.1, 2606:4700::1111'.")));
	return normalised;
}
