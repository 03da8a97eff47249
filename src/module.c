/*
 * module.c
 *		The module's entry point: _PG_init hooks wgpeer into the server.
 */
#include "postgres.h"

#include "fmgr.h"
#include "libpq/auth.h"
#include "miscadmin.h"

#include "common/common.h"
#include "core/capability.h"
#include "worker/worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static ClientAuthentication_hook_type prev_client_auth_hook = NULL;

/*
 * Client backends drop CAP_NET_ADMIN as soon as they start, so no SQL
 * session ever holds it: only the apply worker talks to the kernel.
 */
static void
drop_capability_hook(Port *port, int status)
{
	int			rc;

	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
	if ((rc = wg_drop_net_admin()) < 0)
		ereport(WARNING,
				(errmsg("wgpeer could not drop CAP_NET_ADMIN in this session: %s",
						strerror(-rc))));
}

/*
 * Initialise libsodium, define the wgpeer.* settings and set up
 * wake-on-commit and the event log's transaction callback.  When preloaded, also reserve the worker's shared
 * memory, register the worker and make client sessions drop the
 * capability.  Runs once per process, when the library is preloaded or
 * first called.
 */
void
_PG_init(void)
{
	if (wg_keys_init() != 0)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("wgpeer could not initialise libsodium"),
				 errdetail("No source of random numbers is available.")));

	wgpeer_define_settings();
	wgpeer_mailbox_init();
	wgpeer_event_log_init();
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = drop_capability_hook;
	wgpeer_worker_register();
}
