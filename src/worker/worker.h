/*
 * worker.h
 *		The apply worker: the only process that talks to WireGuard devices.
 *
 * main.c		registration and the main loop, which walks a table of tasks
 * device.c		the device dispatcher: kernel (netlink) or userspace (UAPI)
 *				per interface, and stored rows in the device model
 * apply.c		applying the queue
 * reconcile.c	making each device match the database
 * history.c	after a promotion or restore: event ids moved on, stale
 *				peers swept from the pools
 * managed.c	which device peers are wgpeer's (never take over a foreign one)
 * wanted.c		what the database wants on an interface, read for reconcile
 * expiry.c		expiring peers when their time comes
 * stats.c		sampling the devices: handshakes, endpoints, traffic
 * watch.c		after each sample: presence and quota events, quota
 *				suspensions, retention
 * export.c		config files on disk
 * outcomes.c	on the primary, peers its nodes applied
 * rates.c		per-peer speed limits on the interfaces (traffic control)
 *
 * Every task has one contract: main.c's task table decides when it is
 * due and what wakes it before its time (commits of one kind of change, a
 * session's request...); called then, the task does its work and returns
 * the milliseconds until it is due again (0: at once, more work is
 * waiting; TASK_IDLE: only when something wakes it).  woken says it runs
 * early because something woke it.  Tasks keep no timers of their own.
 * The loop sleeps until the earliest task is due, at most
 * wgpeer.poll_interval.
 *
 * Device calls and transactions, the rule: applying the queue talks to
 * the devices with no transaction open (apply.c reads the batch in one
 * transaction and records the outcome in another: a batch of thousands
 * of peers must not hold a snapshot and its queue rows' locks while the
 * devices work, and a crash between the two re-applies, which is
 * idempotent).  Reconciling and sampling read a device inside the
 * transaction that stores what it saw, with the interface's row locked
 * FOR KEY SHARE (reconcile.c, stats.c): unregistering it waits for the
 * read, so nothing is stored for an interface that is gone.  Every device
 * call is bounded by a timeout (device.c), so no transaction waits on a
 * device longer than that.
 *
 * The worker depends on the common plumbing, the device backends and the
 * core, never on the SQL side.
 */
#ifndef WGPEER_WORKER_H
#define WGPEER_WORKER_H

#include "common/common.h"

#include <limits.h>

#include "device/device.h"
#include "device/diff.h"

/* A task has nothing due until something wakes the worker. */
#define TASK_IDLE LONG_MAX

/* main.c */
extern void wgpeer_worker_register(void);

/* device.c: how the worker reaches an interface (its backend column) */
typedef enum WgBackend
{
	WGPEER_BACKEND_AUTO,		/* the UAPI socket when it exists, else netlink */
	WGPEER_BACKEND_NETLINK,		/* kernel WireGuard */
	WGPEER_BACKEND_UAPI			/* a userspace daemon's socket */
} WgBackend;

extern WgBackend wgpeer_backend(const char *stored);
extern bool wgpeer_uses_uapi(const char *ifname, WgBackend backend);
extern int	wgpeer_device_set(const wg_device_change *change, WgBackend backend,
							  bool *at_open);
extern int	wgpeer_device_get(const char *ifname, WgBackend backend,
							  wg_device *dev, bool *at_open);
extern unsigned int wgpeer_device_id(const char *ifname, WgBackend backend);
extern bool wgpeer_device_unresponsive(const char *ifname);
extern void wgpeer_describe_failure(int rc, bool at_open, const char *ifname,
									WgBackend backend, char **message,
									const char **hint);
/*
 * A peer's allowed IPs on its interface as a cidr[]: its tunnel addresses
 * and the routes behind it, in a query on wgpeer.peer p.
 */
#define WGPEER_ALLOWED_IPS_SQL \
	"array_remove(ARRAY[set_masklen(p.address, 32)," \
	" set_masklen(p.address6, 128)]::cidr[] || p.routes, NULL)"
extern int	wgpeer_stored_allowedips(Datum array, MemoryContext ctx,
									 wg_allowedip **ips);
extern void wgpeer_device_apply(const wg_device_change *change,
								WgBackend backend, int *peer_rc,
								wg_apply_outcome *out);

/*
 * apply.c: whether a device took its private key and listen port (and
 * AmneziaWG parameters)
 */
extern void wgpeer_record_settings(const char *ifname, WgBackend backend,
								   int listen_port, bool awg, int rc);

/*
 * wanted.c: what the database wants on an interface.  The managed flags
 * (is the key in wgpeer.managed_key) are for wgpeer_screen_foreign(),
 * which compacts desired and known without them.
 */
typedef struct WgWanted
{
	wg_desired_peer *desired;	/* the peers it wants there */
	bool	   *desired_managed;
	size_t		n_desired;
	uint8_t		(*known)[WG_KEY_LEN];	/* the keys it wants off it */
	bool	   *known_managed;
	size_t		n_known;
} WgWanted;

extern void wgpeer_read_wanted(const char *ifname, WgWanted *wanted);

/* managed.c */
typedef struct WgManagedScreen
{
	uint8_t		(*adopt)[WG_KEY_LEN];	/* desired keys not yet managed */
	size_t		n_adopt;
	size_t		foreign;		/* desired peers whose key a foreign peer holds */
} WgManagedScreen;

extern void wgpeer_screen_foreign(const char *ifname, wg_device *dev,
								  WgWanted *wanted, WgManagedScreen *screen);
extern void wgpeer_record_managed(const char *ifname,
								  const WgManagedScreen *screen,
								  const wg_peer_change *changes,
								  size_t n_changes, const int *peer_rc);

/* the tasks */
extern long wgpeer_apply_due(bool woken);
extern long wgpeer_reconcile_due(bool woken);
extern long wgpeer_recreated_due(bool woken);
extern void wgpeer_reconcile_now(void);
extern void wgpeer_check_history(void);
extern long wgpeer_expiry_due(bool woken);
extern long wgpeer_stats_due(bool woken);
extern void wgpeer_sample_devices(void);
extern uint64 wgpeer_samples_taken(void);
extern long wgpeer_watch_due(bool woken);
extern long wgpeer_export_due(bool woken);
extern long wgpeer_outcomes_due(bool woken);
extern long wgpeer_rates_due(bool woken);
extern long wgpeer_daemons_due(bool woken);
extern uint64 wgpeer_daemons_noted(void);

#endif							/* WGPEER_WORKER_H */
