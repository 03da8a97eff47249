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
 * never vouches for a peer suspended and resumed since; and an outcome
 * counts only for a peer of the node and interface it names.
 *
 * The same pass deletes what a node wrote about an interface it no longer
 * serves.  Moving an interface deletes the old node's rows in the same
 * transaction (wg_interface_node_moved), and the trigger checking what
 * nodes send refuses new rows from a node for an interface it does not
 * serve; this catches a row that node's subscription was applying while
 * the move committed.
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
				"    AND o.node = p.node AND o.interface = p.interface"
				"    AND p.status = 'creating' AND p.node <> ''"
				"  RETURNING p.peer_id, p.user_id, p.interface)"
				" SELECT pg_notify('wgpeer', json_build_object("
				"   'peer_id', peer_id, 'user_id', user_id,"
				"   'interface', interface, 'status', 'active')::text)"
				" FROM a",
				0, NULL, NULL, NULL);
}

/*
 * Delete the rows of nodes that no longer serve their interface (see the
 * top of the file), inside a worker transaction.
 */
static void
forget_moved(void)
{
	static SPIPlanPtr plan;

	wgpeer_exec(&plan,
				"WITH t AS ("
				"  DELETE FROM wgpeer.peer_traffic t USING wgpeer.peer p"
				"  WHERE p.peer_id = t.peer_id AND t.node <> p.node),"
				" o AS ("
				"  DELETE FROM wgpeer.peer_outcome o USING wgpeer.interface i"
				"  WHERE i.name = o.interface AND o.node <> i.node),"
				" dp AS ("
				"  DELETE FROM wgpeer.device_peer d USING wgpeer.interface i"
				"  WHERE i.name = d.interface AND d.node <> i.node),"
				" d AS ("
				"  DELETE FROM wgpeer.device d USING wgpeer.interface i"
				"  WHERE i.name = d.interface AND d.node <> i.node)"
				" DELETE FROM wgpeer.worker_state s USING wgpeer.interface i"
				" WHERE i.name = s.interface AND s.node <> i.node",
				0, NULL, NULL, NULL);
}

/*
 * The task: on the primary only (a node's peers are the primary's to
 * mark), when outcomes arrive (the task table wakes it) and at
 * wgpeer.poll_interval.
 */
long
wgpeer_outcomes_due(bool woken)
{
	if (wgpeer_served_node()[0] != '\0')
		return TASK_IDLE;

	wgpeer_begin_work("wgpeer: marking what nodes applied");
	if (wgpeer_installed())
	{
		sweep();
		forget_moved();
	}
	wgpeer_end_work();
	/* woken by outcomes: again in a second, for what was not visible yet */
	return woken ? 1000 : wgpeer_poll_interval;
}
