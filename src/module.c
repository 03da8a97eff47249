/*
 * module.c
 *		The module's entry point: _PG_init hooks wgpeer into the server.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "libpq/auth.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"

#include "common/common.h"
#include "core/capability.h"
#include "webhook/webhook.h"
#include "worker/worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

/* whether this process has dropped CAP_NET_ADMIN for good */
static bool net_admin_dropped = false;

/*
 * Is this process the apply worker, the one process that keeps
 * CAP_NET_ADMIN?
 */
static bool
is_apply_worker(void)
{
	return MyBgworkerEntry != NULL &&
		strcmp(MyBgworkerEntry->bgw_library_name, "wgpeer") == 0 &&
		strcmp(MyBgworkerEntry->bgw_function_name, "wgpeer_worker_main") == 0;
}

/*
 * Drop CAP_NET_ADMIN from every set of this process, once; the apply
 * worker keeps it.
 */
static void
drop_net_admin(void)
{
	int			rc;

	if (net_admin_dropped || is_apply_worker())
		return;
	net_admin_dropped = true;
	if ((rc = wg_drop_net_admin()) < 0)
		ereport(WARNING,
				(errmsg("wgpeer could not drop CAP_NET_ADMIN in this process: %s",
						strerror(-rc))));
}

/*
 * Client backends (and WAL senders) drop CAP_NET_ADMIN as soon as they
 * start, so no SQL session ever holds it: only the apply worker talks to
 * the kernel.
 */
static void
drop_capability_hook(Port *port, int status)
{
	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	drop_net_admin();
}

/*
 * Every other process that runs a transaction (autovacuum launcher and
 * workers, parallel workers, logical replication launcher and workers,
 * other extensions' background workers) drops it when its first
 * transaction ends.  None of them ever had it effective (the postmaster
 * keeps it dormant), so this only takes away what code running in them
 * could raise again.
 */
static void
drop_capability_xact_callback(XactEvent event, void *arg)
{
	drop_net_admin();
}

/*
 * Where CAP_NET_ADMIN stays: preloaded in the postmaster, it becomes
 * dormant (permitted only, for the apply worker to raise), so no process
 * forked from it starts with it effective and no program run by any of
 * them inherits it; loaded in any other process but the apply worker, it
 * is dropped for good.  Processes that never run a transaction nor serve
 * a client (checkpointer, WAL writer, background writer, archiver,
 * startup) keep the dormant copy: PostgreSQL gives no hook there.
 */
static void
confine_capability(void)
{
	int			rc;

	if (IsUnderPostmaster)
		drop_net_admin();
	else if (process_shared_preload_libraries_in_progress &&
			 (rc = wg_dormant_net_admin()) < 0)
		ereport(WARNING,
				(errmsg("wgpeer could not confine CAP_NET_ADMIN to the permitted set: %s",
						strerror(-rc))));
	RegisterXactCallback(drop_capability_xact_callback, NULL);
}

/*
 * Initialise libsodium, confine CAP_NET_ADMIN, define the wgpeer.*
 * settings and set up wake-on-commit and the event log's transaction
 * callback.  When preloaded, also reserve the worker's shared memory,
 * register the apply and webhook workers (not under pg_upgrade) and make
 * client sessions
 * drop the capability.
 * Runs once per process, when the library is preloaded (in the
 * postmaster, whose children inherit it all) or first called.
 */
void
_PG_init(void)
{
	if (wg_keys_init() != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("wgpeer could not initialise libsodium"),
				 errdetail("No source of random numbers is available.")));

	confine_capability();
	wgpeer_define_settings();
	wgpeer_mailbox_init();

	/*
	 * Transaction callbacks run newest first: the webhook worker's wake-up
	 * is registered before the event log's, so that at commit it runs
	 * after the event log has cleared the transaction's slot (else the
	 * woken worker could still find its events beyond the horizon, and
	 * sleep).
	 */
	wgpeer_webhook_latch_init();
	wgpeer_event_log_init();
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = drop_capability_hook;

	/*
	 * No worker under pg_upgrade (postgres -b): it would hold a connection
	 * to the database pg_upgrade drops and re-creates, and touch the
	 * interfaces from a cluster that is not serving them.
	 */
	if (!IsBinaryUpgrade)
	{
		wgpeer_worker_register();
		wgpeer_webhook_register();
	}
}
