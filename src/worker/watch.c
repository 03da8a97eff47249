/*
 * watch.c
 *		After each traffic sample, on the primary: what the samples mean
 *		for the peers.  wgpeer.wg_watch_peers() writes the events the
 *		worker observes (connected, disconnected, expiring_soon,
 *		quota_warning, quota_reached), suspends peers over their quota and
 *		brings them back when a new quota period starts, and applies the
 *		retention of the event log and the usage history.
 *
 * It runs right after each sample, so a quota is enforced within one
 * wgpeer.stats_interval of the traffic that reached it.  On a node it does
 * nothing: its traffic reaches the primary by replication, and the
 * primary's worker watches every peer.
 */
#include "worker/worker.h"

/*
 * Watch the peers when a sample was taken since the last look.
 */
long
wgpeer_watch_due(bool woken)
{
	if (!woken || wgpeer_served_node()[0] != '\0')
		return TASK_IDLE;
	wgpeer_begin_work("wgpeer: watching peers");
	if (wgpeer_installed())
	{
		SPI_execute("SELECT wgpeer.wg_watch_peers()", false, 0);
		/* pooled quotas, a user's peers together (15-user-quotas.sql) */
		SPI_execute("SELECT wgpeer.wg_watch_user_quotas()", false, 0);
	}
	wgpeer_end_work();
	return TASK_IDLE;
}
