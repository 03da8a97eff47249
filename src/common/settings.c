/*
 * settings.c
 *		Every wgpeer.* setting, defined in one place.
 */
#include "common/common.h"

#include "miscadmin.h"
#include "utils/guc.h"

/* How long an expired peer keeps its address (seconds). */
int			wgpeer_expired_grace = 7 * 24 * 60 * 60;

/* Most live peers per user across interfaces that set no limit; 0: none. */
int			wgpeer_max_peers_per_user = 0;

/* The node this cluster is (node mode); empty on the primary. */
char	   *wgpeer_node = NULL;

/* The apply worker's settings. */
char	   *wgpeer_database = NULL;
bool		wgpeer_notice_unserved = true;
int			wgpeer_poll_interval = 10000;	/* ms */
int			wgpeer_batch_size = 10000;
int			wgpeer_retry_max = 300; /* s */
int			wgpeer_reconcile_interval = 60000;	/* ms */
int			wgpeer_stats_interval = 30000;	/* ms */
char	   *wgpeer_export_dir = NULL;
bool		wgpeer_export_client_configs = false;

/* The webhook worker's settings. */
int			wgpeer_webhook_batch_size = 100;
int			wgpeer_webhook_timeout = 10000; /* ms */
int			wgpeer_webhook_retry_max = 600; /* s */
char	   *wgpeer_webhook_ca_file = NULL;

/* read by wgpeer.wg_watch_peers() with current_setting() */
static int	wgpeer_quota_warning = 80;	/* percent */
static int	wgpeer_expiring_notice = 3 * 86400; /* s */
static int	wgpeer_event_retention = 30 * 86400;	/* s */
static int	wgpeer_usage_retention = 400 * 86400;	/* s */
static bool wgpeer_metrics_per_peer = false;	/* read by wg_metrics() */

/*
 * wgpeer.node must be a node name (as wgpeer.node table names it) or
 * empty.
 */
static bool
check_node(char **newval, void **extra, GucSource source)
{
	const char *p = *newval;

	if (p == NULL)
		return true;
	if (strlen(p) > WGPEER_NODE_NAME_MAX)
	{
		GUC_check_errdetail("A node name is at most %d bytes.", WGPEER_NODE_NAME_MAX);
		return false;
	}
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
		{
			GUC_check_errdetail("A node name has only lower-case letters, "
								"digits and underscores.");
			return false;
		}
	return true;
}

/*
 * The node whose interfaces this cluster serves: wgpeer.node, or "" on
 * the primary (and wherever wgpeer is not preloaded).
 */
const char *
wgpeer_served_node(void)
{
	return wgpeer_node ? wgpeer_node : "";
}

/*
 * Define the settings and reserve the prefix.  Runs in every process that
 * loads wgpeer; wgpeer.database exists only where wgpeer was preloaded
 * (where a worker can run at all), since a server-start setting can only
 * be defined then.
 */
void
wgpeer_define_settings(void)
{
	DefineCustomIntVariable("wgpeer.expired_grace",
							"How long an expired peer keeps its address.",
							"Renewing an expired peer within this period "
							"brings it back with the same address and config.",
							&wgpeer_expired_grace,
							7 * 24 * 60 * 60, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("wgpeer.notice_unserved",
							 "Say so when a session queues changes in a "
							 "database the apply worker does not serve.",
							 "Once per session, a NOTICE names the database "
							 "the worker serves (wgpeer.database).",
							 &wgpeer_notice_unserved, true,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.max_peers_per_user",
							"Most live peers one user may have, across the "
							"interfaces that set no limit of their own; 0: "
							"no limit.",
							"An interface's max_peers_per_user, when set, "
							"applies to its peers instead.",
							&wgpeer_max_peers_per_user, 0, 0, 1000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomStringVariable("wgpeer.database",
								   "Database whose wgpeer queue the apply worker serves.",
								   NULL,
								   &wgpeer_database, "postgres",
								   PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomStringVariable("wgpeer.node",
								   "The node (VPN server) this cluster is; empty "
								   "on the primary.",
								   "A node serves the interfaces the primary "
								   "assigned to it, fed by logical replication.",
								   &wgpeer_node, "",
								   PGC_POSTMASTER, 0, check_node, NULL, NULL);
	}
	DefineCustomIntVariable("wgpeer.poll_interval",
							"How often the apply worker looks at the queue "
							"without being woken.",
							"A safety net: committed changes wake the worker "
							"at once.",
							&wgpeer_poll_interval, 10000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.batch_size",
							"Most queued changes the apply worker takes at once.",
							NULL,
							&wgpeer_batch_size, 10000, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.retry_max",
							"Longest wait between retries of a failing interface.",
							"Retries back off exponentially from one second "
							"up to this.",
							&wgpeer_retry_max, 300, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.reconcile_interval",
							"How often the apply worker compares every "
							"interface with the database.",
							"Interfaces that appear or are recreated are "
							"reconciled within a second regardless.",
							&wgpeer_reconcile_interval, 60000, 1000, 86400 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.quota_warning",
							"Share of a peer's traffic quota, in percent, at "
							"which a quota_warning event is written; 0: none.",
							"Once per quota period.",
							&wgpeer_quota_warning, 80, 0, 99,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.expiring_notice",
							"How long before a peer expires an expiring_soon "
							"event is written; 0: none.",
							"Once per peer and expiry.",
							&wgpeer_expiring_notice, 3 * 86400, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.event_retention",
							"How long wgpeer.event keeps events; 0: for ever.",
							"A consumer down for longer misses the events "
							"deleted meanwhile.",
							&wgpeer_event_retention, 30 * 86400, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.usage_retention",
							"How long wgpeer.peer_usage keeps hourly traffic; "
							"0: for ever.",
							NULL,
							&wgpeer_usage_retention, 400 * 86400, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.stats_interval",
							"How often the apply worker records handshakes, "
							"endpoints and traffic per peer; 0 turns it off.",
							NULL,
							&wgpeer_stats_interval, 30000, 0, 86400 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomStringVariable("wgpeer.export_dir",
							   "Directory where the apply worker keeps WireGuard "
							   "config files; empty turns export off.",
							   "Per interface, <interface>.conf for \"wg syncconf\".",
							   &wgpeer_export_dir, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("wgpeer.export_client_configs",
							 "Also keep one client config per live peer in "
							 "wgpeer.export_dir.",
							 NULL,
							 &wgpeer_export_client_configs, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("wgpeer.metrics_per_peer",
							 "Add one series per live peer to wg_metrics() "
							 "and wg_metrics_peers().",
							 "Off, the metrics are per interface and per user: "
							 "per-peer series multiply Prometheus' cardinality.",
							 &wgpeer_metrics_per_peer, false,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.webhook_batch_size",
							"Most events the webhook worker sends in one request.",
							NULL,
							&wgpeer_webhook_batch_size, 100, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.webhook_timeout",
							"Longest a webhook request may take, connecting "
							"included.",
							"A request that takes longer fails and is retried.",
							&wgpeer_webhook_timeout, 10000, 100, 300000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("wgpeer.webhook_retry_max",
							"Longest wait between attempts at a failing webhook.",
							"Attempts back off exponentially from one second "
							"up to this, with random jitter.",
							&wgpeer_webhook_retry_max, 600, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("wgpeer.webhook_ca_file",
							   "File of CA certificates (PEM) webhook endpoints' "
							   "certificates are verified against; empty: the "
							   "system's.",
							   "Certificates are always verified.",
							   &wgpeer_webhook_ca_file, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("wgpeer");
}
