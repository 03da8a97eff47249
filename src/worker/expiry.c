/*
 * expiry.c
 *		The apply worker's expiry timer: peers leave the interface when
 *		their subscription ends, not at the next poll.
 *
 * The worker expires what is due (wg_expire_peers(), which also queues
 * the removals and releases addresses past the grace period) and learns
 * when the next live peer expires, so it can sleep exactly that long.  It
 * asks the database again only when that time comes, when a committed
 * transaction changed a peer's expiry or status (the peer_expiry_changed
 * trigger counts them in shared memory), or after wgpeer.poll_interval:
 * an idle worker runs no transaction for expiry.
 */
#include "worker/worker.h"

#include "utils/timestamp.h"

static long expire_or_wait(void);

/*
 * Expire the peers that are due, in a transaction of its own, when a look
 * is due.  Returns 0 when it expired some (look again), otherwise the
 * milliseconds until the next look (never more than the poll interval).
 */
long
wgpeer_expiry_due(void)
{
	static TimestampTz next_look = 0;
	static uint64 seen_changes = 0;
	TimestampTz now = GetCurrentTimestamp();
	uint64		changes = wgpeer_commits_changing(CHANGE_EXPIRY);
	long		ms = -1;

	if (changes == seen_changes && now < next_look)
		return Max(1, (long) ((next_look - now) / 1000));

	/* read before the query: a commit after this is seen next time */
	seen_changes = changes;
	wgpeer_begin_work("wgpeer: expiring peers");
	if (wgpeer_installed())
		ms = expire_or_wait();
	wgpeer_end_work();
	if (ms == 0)
		return 0;
	if (ms < 0 || ms > wgpeer_poll_interval)
		next_look = TimestampTzPlusMilliseconds(now, wgpeer_poll_interval);
	else
		next_look = TimestampTzPlusMilliseconds(now, ms);
	return Max(1, (long) ((next_look - now) / 1000));
}

/*
 * The body of wgpeer_expiry_due(), inside its transaction.
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
