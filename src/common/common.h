/*
 * wgpeer.h
 *		Declarations shared by the SQL-callable parts of wgpeer.
 */
#ifndef WGPEER_H
#define WGPEER_H

#include "postgres.h"

#include <sys/socket.h>

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/inet.h"
#include "utils/uuid.h"

#include "keys.h"
#include "netlink.h"

/* settings and SPI plumbing (wgpeer.c) */
extern int	wgpeer_expired_grace;
extern int	wgpeer_exec(SPIPlanPtr *plan, const char *sql, int nargs,
						Oid *types, Datum *values, const char *nulls);
extern int	wgpeer_exec_opts(SPIPlanPtr *plan, const char *sql, int nargs,
							 Oid *types, Datum *values, const char *nulls,
							 int cursor_options);
extern char *wgpeer_text_arg(FunctionCallInfo fcinfo, int argno,
							 const char *name, bool required);
extern char *wgpeer_dns_arg(FunctionCallInfo fcinfo, int argno);

/* keys_sql.c */
extern void wgpeer_parse_key(const char *text, const char *what,
							 uint8_t key[WG_KEY_LEN]);
extern char *wgpeer_key_text(const uint8_t key[WG_KEY_LEN]);
extern void wgpeer_generate_pair(char **private_key, char **public_key);

/* worker.c and apply.c */
extern char *wgpeer_database;
extern int	wgpeer_poll_interval;
extern int	wgpeer_batch_size;
extern int	wgpeer_retry_max;
extern int	wgpeer_reconcile_interval;
extern int	wgpeer_stats_interval;
extern char *wgpeer_export_dir;
extern bool wgpeer_export_client_configs;
extern void wgpeer_worker_define_settings(void);
extern void wgpeer_worker_init(void);
extern long wgpeer_apply_pending(void);

/* How the worker reaches an interface (its backend column). */
typedef enum WgBackend
{
	WGPEER_BACKEND_AUTO,		/* the UAPI socket when it exists, else netlink */
	WGPEER_BACKEND_NETLINK,		/* kernel WireGuard */
	WGPEER_BACKEND_UAPI			/* a userspace daemon's socket */
} WgBackend;

extern WgBackend wgpeer_backend(const char *stored);
extern int	wgpeer_device_set(const wgnl_device_change *change, WgBackend backend,
							  bool *at_open);
extern int	wgpeer_device_get(const char *ifname, WgBackend backend,
							  wgnl_device *dev, bool *at_open);
extern unsigned int wgpeer_device_id(const char *ifname, WgBackend backend);
extern void wgpeer_stored_key(const char *text, uint8_t key[WG_KEY_LEN]);
extern void wgpeer_host_allowedip(const char *host, wgnl_allowedip *ip);
extern void wgpeer_describe_failure(int rc, bool at_open, const char *ifname,
									WgBackend backend, char **message,
									const char **hint);
extern bool wgpeer_installed(void);
extern void wgpeer_begin_work(const char *what);
extern void wgpeer_end_work(void);

/* What a session can ask the apply worker to do (wgpeer_ask_worker). */
typedef enum WorkerRequest
{
	REQUEST_SHOW,				/* read the devices */
	REQUEST_RECONCILE,			/* reconcile every interface now */
	NUM_WORKER_REQUESTS
} WorkerRequest;

extern void wgpeer_ask_worker(WorkerRequest kind);

/*
 * What a committed transaction changed that the worker only looks for
 * when told (wg_tell_worker triggers count these commits).
 */
typedef enum WorkerChange
{
	CHANGE_EXPIRY,				/* a peer's expiry or status */
	CHANGE_INTERFACES,			/* interfaces registered, altered or removed */
	NUM_WORKER_CHANGES
} WorkerChange;

extern uint64 wgpeer_commits_changing(WorkerChange kind);

/* reconcile.c */
extern long wgpeer_reconcile_due(void);
extern void wgpeer_reconcile_now(void);

/* export.c */
extern bool wgpeer_export_due(void);

/* expiry.c */
extern long wgpeer_expire_due(void);

/* show.c */
extern void wgpeer_sample_devices(void);
extern long wgpeer_stats_due(void);

/* interface.c */
extern char *wgpeer_resolve_interface(text *name);

/* pool.c */
extern Datum wgpeer_allocate(const char *ifname, bool consume, Datum preferred);
extern int	wgpeer_release_expired(const char *ifname);
extern uint32 wgpeer_inet4_value(const inet *ip);
extern Datum wgpeer_inet_copy(Datum d);
extern Datum wgpeer_inet4_datum(uint32 addr, int bits);
extern Datum wgpeer_derive6(Datum address, Datum iface_address,
							Datum iface_address6);

/* peer.c */
extern char *wgpeer_render_peer_config(pg_uuid_t *peer_id);

#endif							/* WGPEER_H */
