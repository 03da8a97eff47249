/*
 * common.h
 *		The PostgreSQL plumbing both sides of wgpeer share: the SQL-callable
 *		functions (src/sql/) and the apply worker (src/worker/).
 *
 * settings.c	every wgpeer.* setting, defined in one place
 * spi.c		statements through plans cached for the life of a process
 * index_probe.c	"does a live peer hold this?", asked of the unique index
 * keys.c		keys as the tables store them (base64 text)
 * catalog.c	lookups of interfaces and peers, with one error each for
 *				"not registered" and "does not exist"
 * client_config.c	a peer's client config, rendered from its rows
 * awg.c		AmneziaWG parameters as jsonb, checked and normalised
 * mailbox.c	how sessions and the worker reach each other: the worker's
 *				latch and requests in shared memory, wake-on-commit, and
 *				counters of commits that changed what the worker watches
 * event_log.c	the horizon under which wgpeer.event ids are settled, and
 *				the NOTIFY of a transaction's last event
 * bgworker.c	the background workers' registration and pinned search_path
 * xact.c		the background workers' transactions, and whether the
 *				extension they serve is installed at this library's version
 * webhook_latch.c	waking the webhook worker when a transaction that
 *				wrote events (or added a webhook) commits
 *
 * This layer depends on the pure C core only, never on a device backend,
 * the SQL side or the worker.
 */
#ifndef WGPEER_COMMON_H
#define WGPEER_COMMON_H

#include "postgres.h"

#include "common/pg_compat.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "storage/latch.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "core/keys.h"

/* settings.c */
#define WGPEER_NODE_NAME_MAX 40
extern int	wgpeer_expired_grace;
extern int	wgpeer_max_peers_per_user;
extern char *wgpeer_node;
extern char *wgpeer_database;
extern bool wgpeer_notice_unserved;
extern int	wgpeer_poll_interval;
extern int	wgpeer_batch_size;
extern int	wgpeer_retry_max;
extern int	wgpeer_reconcile_interval;
extern int	wgpeer_stats_interval;
extern char *wgpeer_export_dir;
extern bool wgpeer_export_client_configs;
extern int	wgpeer_webhook_batch_size;
extern int	wgpeer_webhook_timeout;
extern int	wgpeer_webhook_retry_max;
extern char *wgpeer_webhook_ca_file;
extern void wgpeer_define_settings(void);
extern const char *wgpeer_served_node(void);

/* spi.c */
extern int	wgpeer_exec(SPIPlanPtr *plan, const char *sql, int nargs,
						Oid *types, Datum *values, const char *nulls);
extern int	wgpeer_exec_opts(SPIPlanPtr *plan, const char *sql, int nargs,
							 Oid *types, Datum *values, const char *nulls,
							 int cursor_options);

/* index_probe.c */
extern bool wgpeer_index_holds(const char *index_name, int nkeys,
							   const Oid *eq_procs, const Datum *keys);

/* keys.c */
extern char *wgpeer_key_text(const uint8_t key[WG_KEY_LEN]);
extern void wgpeer_stored_key(const char *text, uint8_t key[WG_KEY_LEN]);

/* catalog.c */
extern char *wgpeer_resolve_interface(text *name);
extern void wgpeer_interface_not_registered(const char *ifname) pg_attribute_noreturn();
extern void wgpeer_peer_not_found(Datum peer_id) pg_attribute_noreturn();

/* client_config.c */
extern char *wgpeer_render_peer_config(pg_uuid_t *peer_id);

/* awg.c */
struct wg_awg;
extern Jsonb *wgpeer_awg_interface(Jsonb *jb, const char *what,
								   struct wg_awg *out);
extern Jsonb *wgpeer_awg_peer(Jsonb *jb, Jsonb *interface_awg,
							  const char *what);
extern void wgpeer_awg_effective(Jsonb *interface_awg, Jsonb *peer_awg,
								 struct wg_awg *out);
extern Jsonb *wgpeer_awg_random(void);
extern char *wgpeer_awg_shared_changes(Jsonb *before, Jsonb *after);

/* mailbox.c: what a session can ask the apply worker to do */
typedef enum WorkerRequest
{
	REQUEST_SHOW,				/* read the devices */
	REQUEST_RECONCILE,			/* reconcile every interface now */
	NUM_WORKER_REQUESTS
} WorkerRequest;

/*
 * What a committed transaction changed that the worker looks at when told
 * (the wg_tell_worker triggers note these; a commit counts them).
 */
typedef enum WorkerChange
{
	CHANGE_QUEUE,				/* changes queued: also wakes the worker */
	CHANGE_EXPIRY,				/* a peer's expiry or status */
	CHANGE_INTERFACES,			/* interfaces registered, altered or removed */
	CHANGE_OUTCOMES,			/* a node's outcomes arrived (on the primary) */
	CHANGE_RATES,				/* speed limits to apply: also wakes the worker */
	NUM_WORKER_CHANGES
} WorkerChange;

extern void wgpeer_mailbox_init(void);
extern void wgpeer_note_change(WorkerChange kind);
extern uint64 wgpeer_commits_changing(WorkerChange kind);
extern void wgpeer_ask_worker(WorkerRequest kind);
extern bool wgpeer_request_pending(WorkerRequest kind, uint64 *ticket);
extern void wgpeer_request_answered(WorkerRequest kind, uint64 ticket);
extern void wgpeer_publish_worker_latch(Latch *latch);

/* event_log.c */
extern void wgpeer_event_log_init(void);
extern void wgpeer_event_id_taking(void);
extern void wgpeer_event_id_taken(int64 id);
extern bool wgpeer_event_horizon(int64 next_id, int64 *horizon);

/* bgworker.c */
extern void wgpeer_register_bgworker(const char *function, const char *name);
extern void wgpeer_pin_search_path(void);

/* xact.c */
extern bool wgpeer_installed(void);
extern void wgpeer_begin_work(const char *what);
extern void wgpeer_end_work(void);

/* webhook_latch.c */
extern void wgpeer_webhook_latch_init(void);
extern void wgpeer_wake_webhooks_at_commit(void);
extern void wgpeer_publish_webhook_latch(Latch *latch);

#endif							/* WGPEER_COMMON_H */
