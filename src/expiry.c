/*
 * expiry.c
 *		The apply worker's expiry timer: peers leave the interface when
 *		their subscription ends, not at the next poll.
 *
 * Each loop the worker expires what is due (wg_expire_peers(), which
 * also queues the removals and releases addresses past the grace period)
 * and learns when the next live peer expires, so it can sleep exactly
 * that long.
 */
#include "wgpeer.h"

static long expire_or_wait(void);

/*
 * Expire the peers that are due, in a transaction of its own.  Returns 0
 * when it expired some (look again), otherwise the milliseconds until the
 * next live peer expires, or -1 when none has an expiry.
 */
long
wgpeer_expire_due(void)
{
	long		ms = -1;

	wgpeer_begin_work("wgpeer: expiring peers");
	if (wgpeer_installed())
		ms = expire_or_wait();
	wgpeer_end_work();
	return ms;
}

/*
 * The body of wgpeer_expire_due(), inside its transaction.
 */
static long
expire_or_wait(void)
{
	static SPIPlanPtr next_plan;
	static SPIPlanPtr expire_plan;
	bool		isnull;
	Datum		d;
	long		ms;

	wgpeer_exec(&next_plan,
				"SELECT ceil(extract(epoch FROM min(expires_at) - now()) * 1000)::int8"
				" FROM wgpeer.peer"
				" WHERE status IN ('creating', 'active') AND expires_at IS NOT NULL",
				0, NULL, NULL, NULL);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return -1;
	ms = (long) DatumGetInt64(d);
	if (ms > 0)
		return ms;

	/* due now: expire them and queue their removal, then look again */
	wgpeer_exec(&expire_plan, "SELECT wgpeer.wg_expire_peers()",
				0, NULL, NULL, NULL);
	return 0;
}
