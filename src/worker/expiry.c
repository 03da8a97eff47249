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
 *
 * On a node the primary owns the peer rows, so the node expires nothing
 * there: at a peer's expires_at it queues the removal from its own
 * interface and records the outcome 'expired' in wgpeer.peer_outcome,
 * which replicates to the primary, where the peer is marked expired.  So
 * a peer leaves the node's interface on time even while the primary is
 * unreachable, and nothing flaps when they reconnect: the primary's own
 * expiry finds the peer expired already, and the node's reconcile keeps
 * a peer past its expires_at off the interface.
 */
#include "worker/worker.h"

#include "utils/timestamp.h"

/*
 * The peers p of this node's interfaces that will expire and whose expiry
 * the node has not yet carried out (recorded as outcome 'expired', or
 * 'removed' once the removal was applied).
 */
#define NODE_LIVE_EXPIRING \
	"p.status IN ('creating', 'active') AND p.expires_at IS NOT NULL" \
	" AND p.node = current_setting('wgpeer.node')" \
	" AND NOT EXISTS (SELECT FROM wgpeer.peer_outcome o" \
	"   WHERE o.peer_id = p.peer_id AND o.outcome IN ('expired', 'removed')" \
	"     AND o.at >= p.expires_at)"

static long expire_or_wait(void);
static long node_expire_or_wait(void);

/*
 * Expire the peers that are due, in a transaction of its own, when a look
 * is due.  Returns 0 when it expired some (look again), otherwise the
 * milliseconds until the next look (never more than the poll interval).
 */
long
wgpeer_expiry_due(bool woken)
{
	long		ms = -1;

	wgpeer_begin_work("wgpeer: expiring peers");
	if (wgpeer_installed())
		ms = wgpeer_served_node()[0] != '\0' ? node_expire_or_wait() :
			expire_or_wait();
	wgpeer_end_work();
	if (ms < 0 || ms > wgpeer_poll_interval)
		return wgpeer_poll_interval;
	return ms;
}

/*
 * The node's side of expiry, inside the transaction of
 * wgpeer_expiry_due(): remove the peers of this node's interfaces whose
 * expires_at has passed and record that, once per peer and expiry.
 * Returns as expire_or_wait() does.
 */
static long
node_expire_or_wait(void)
{
	static SPIPlanPtr next_plan;
	static SPIPlanPtr expire_plan;
	bool		isnull;
	Datum		d;
	long		ms;

	wgpeer_exec(&next_plan,
				"SELECT ceil(extract(epoch FROM min(p.expires_at) - now()) * 1000)::int8"
				" FROM wgpeer.peer p WHERE " NODE_LIVE_EXPIRING,
				0, NULL, NULL, NULL);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return -1;
	ms = (long) DatumGetInt64(d);
	if (ms > 0)
		return ms;

	wgpeer_exec(&expire_plan,
				"WITH due AS ("
				"  SELECT p.peer_id, p.interface, p.public_key, p.expires_at"
				"  FROM wgpeer.peer p"
				"  WHERE " NODE_LIVE_EXPIRING " AND p.expires_at <= now()),"
				" removal AS ("
				"  INSERT INTO wgpeer.queue (interface, peer_id, op, public_key)"
				"  SELECT interface, peer_id, 'remove', public_key FROM due)"
				" INSERT INTO wgpeer.peer_outcome AS o"
				"   (peer_id, interface, public_key, outcome, at)"
				" SELECT peer_id, interface, public_key, 'expired', expires_at FROM due"
				" ON CONFLICT (peer_id, node) DO UPDATE"
				" SET interface = EXCLUDED.interface, public_key = EXCLUDED.public_key,"
				"     outcome = 'expired', at = EXCLUDED.at, error = NULL",
				0, NULL, NULL, NULL);
	return 0;
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

	/* one index each (peer_expiry, peer_expiry_suspended), never a scan */
	wgpeer_exec(&next_plan,
				"SELECT ceil(extract(epoch FROM least("
				"  (SELECT min(expires_at) FROM wgpeer.peer"
				"   WHERE status IN ('creating', 'active')),"
				"  (SELECT min(expires_at) FROM wgpeer.peer"
				"   WHERE status = 'suspended')) - now()) * 1000)::int8",
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
