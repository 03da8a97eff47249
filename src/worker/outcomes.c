/*
 * outcomes.c
 *		On the primary in node mode: mark active the peers a node applied.
 *
 * The trigger on wgpeer.peer_outcome marks a peer active when its node's
 * 'applied' outcome arrives.  But an outcome can arrive before the
 * primary's transaction that created the peer is visible (logical
 * decoding sends a transaction once its commit is flushed, and with
 * synchronous replication the commit waits for the node), and then the
 * trigger finds no 'creating' peer to update.  This task makes up for it:
 * when outcomes arrived (a row trigger counts those commits), once more a
 * second later, and at every poll interval, it marks active each
 * 'creating' peer of a node whose 'applied' outcome names its current key.
 * A node records 'removed' when it takes a peer off, so an old 'applied'
 * never vouches for a peer suspended and resumed since.
 */
#include "worker/worker.h"

#include "utils/timestamp.h"

/*
 * Mark the peers active, with the same NOTIFY as a local apply, inside a
 * worker transaction.
 */
static void
sweep(void)
{
	static SPIPlanPtr plan;

	wgpeer_exec(&plan,
				"WITH a AS ("
				"  UPDATE wgpeer.peer p SET status = 'active'"
				"  FROM wgpeer.peer_outcome o"
				"  WHERE o.peer_id = p.peer_id AND o.outcome = 'applied'"
				"    AND o.public_key = p.public_key"
				"    AND p.status = 'creating' AND p.node <> ''"
				"  RETURNING p.peer_id, p.user_id, p.interface)"
				" SELECT pg_notify('wgpeer', json_build_object("
				"   'peer_id', peer_id, 'user_id', user_id,"
				"   'interface', interface, 'status', 'active')::text)"
				" FROM a",
				0, NULL, NULL, NULL);
}

/*
 * The task: on the primary only (a node's peers are the primary's to
 * mark).
 */
long
wgpeer_outcomes_due(void)
{
	static TimestampTz next_sweep = 0;
	static uint64 seen_changes = 0;
	TimestampTz now = GetCurrentTimestamp();
	uint64		changes;

	if (wgpeer_served_node()[0] != '\0')
		return TASK_IDLE;
	changes = wgpeer_commits_changing(CHANGE_OUTCOMES);
	if (changes != seen_changes)
	{
		/* now, and again in a second for what was not visible yet */
		seen_changes = changes;
		next_sweep = TimestampTzPlusMilliseconds(now, 1000);
	}
	else if (now < next_sweep)
		return Max(1, (long) ((next_sweep - now) / 1000));
	else
		next_sweep = TimestampTzPlusMilliseconds(now, wgpeer_poll_interval);

	wgpeer_begin_work("wgpeer: marking what nodes applied");
	if (wgpeer_installed())
		sweep();
	wgpeer_end_work();
	return Max(1, (long) ((next_sweep - now) / 1000));
}
