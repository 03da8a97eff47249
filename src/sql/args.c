/*
 * args.c
 *		Checks of the text arguments every SQL function shares.
 */
#include "sql/sql.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "core/validate.h"

/* Most bytes of a refused value an error message repeats. */
#define SHOWN_MAX 64

/*
 * s, cut at a character boundary to at most SHOWN_MAX bytes and marked
 * "..." when cut: a refused value of any size gives an error message of a
 * readable size.
 */
static char *
shown(const char *s)
{
	int			len = strlen(s);
	int			n = pg_mbcliplen(s, len, SHOWN_MAX);

	return n < len ? psprintf("%.*s...", n, s) : pstrdup(s);
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
				 bad[0] ? errmsg("invalid dns entry \"%s\"", shown(bad)) :
				 errmsg("invalid dns \"%s\"", shown(list)),
				 errdetail("%s.", why),
				 errhint("Give a comma-separated list of resolver addresses "
						 "and search domains, e.g. '1.1.1.1, 2606:4700::1111'.")));
	return normalised;
}

/*
 * A peer_id argument, which cannot be NULL.
 */
Datum
wgpeer_peer_id_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("peer_id cannot be null")));
	return PG_GETARG_DATUM(argno);
}
