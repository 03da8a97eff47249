/*
 * wgpeer.c
 *		Module entry point: settings and one-time library initialisation.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "wgpeer.h"

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
							PGC_USERSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("wgpeer");
}
