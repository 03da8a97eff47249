/*
 * sql.h
 *		What the SQL-callable functions share among themselves.
 *
 * args.c		checks of text arguments
 * keys.c		wg_genkey(), wg_pubkey(), wg_genpsk(); key arguments
 * inet.c		address arithmetic
 * interface.c	wg_add_interface()
 * awg.c		wg_awg_params(), wg_set_interface_awg(), wg_set_peer_awg():
 *				AmneziaWG parameters
 * pool.c		wg_next_ip() and the address allocator
 * peer.c		wg_create_peer(), wg_renew_peer(), wg_expire_peers(),
 *				wg_peer_config()
 * lifecycle.c	wg_suspend_peer(), wg_resume_peer(), wg_rotate_peer_key()
 * routes.c		wg_set_peer_allowed_ips(), wg_set_peer_routes(),
 *				wg_set_peer_wide_routes(): per-peer routing
 * device_limit.c	the most live peers one user may have
 * import.c		wg_import_peer(), wg_import_config(): adopting existing peers
 * qr.c			wg_qr_png(), wg_qr_svg(), wg_qr_text()
 * config_link.c	wg_config_link(), wg_redeem_config_link(): one-time
 *				config links
 * show.c		wg_show(), answered by the apply worker
 * reconcile.c	wg_reconcile(), answered by the apply worker
 * tell_worker.c	the wg_tell_worker() trigger; refusals on a standby
 * queue.c		the wg_queue_change() trigger, the one writer of the queue
 * node.c		node mode: changes are made on the primary only; the node
 *				that sent a replicated row
 * event.c		wg_event_id() and wg_events(): the event log, read in order
 * restore.c	how a trigger tells a restored row from a new one
 *
 * These run in client backends, which have dropped CAP_NET_ADMIN: this
 * layer depends on the common plumbing and the core, never on a device
 * backend or the worker.
 */
#ifndef WGPEER_SQL_H
#define WGPEER_SQL_H

#include "common/common.h"

#include <sys/socket.h>

#include "utils/inet.h"

/* args.c */
extern char *wgpeer_text_arg(FunctionCallInfo fcinfo, int argno,
							 const char *name, bool required);
extern char *wgpeer_dns_arg(FunctionCallInfo fcinfo, int argno);

/* keys.c */
extern void wgpeer_parse_key(const char *text, const char *what,
							 uint8_t key[WG_KEY_LEN]);
extern void wgpeer_check_key(const uint8_t key[WG_KEY_LEN], bool is_private,
							 const char *what, const char *hint);
extern void wgpeer_generate_pair(char **private_key, char **public_key);
extern void wgpeer_check_peer_key(const char *ifname, const char *public_key);
extern char *wgpeer_new_preshared_key(void);

/* args.c */
extern Datum wgpeer_peer_id_arg(FunctionCallInfo fcinfo, int argno);

/* inet.c */
extern uint32 wgpeer_inet4_value(const inet *ip);
extern Datum wgpeer_inet_copy(Datum d);
extern Datum wgpeer_inet4_datum(uint32 addr, int bits);
extern Datum wgpeer_derive6(Datum address, Datum iface_address,
							Datum iface_address6);

/* peer.c */
extern Datum wgpeer_public_row(Datum peer_id);

/* device_limit.c */
extern void wgpeer_claim_device(const char *user_id, const char *ifname);

/* node.c */
extern void wgpeer_require_primary(const char *function);

/* tell_worker.c */
extern void wgpeer_refuse_on_standby(const char *function);

/* placement.c */
extern void wgpeer_check_capacity(const char *ifname);
extern char *wgpeer_place(const char *location);

/* qr.c */
extern bytea *wgpeer_qr_png(text *config, int32 scale, int32 margin);

/* routes.c */
extern void wgpeer_check_prefix_unrouted(const char *ifname, Datum address,
										 Datum address6);

/* pool.c */
extern Datum wgpeer_allocate(const char *ifname, bool consume, Datum preferred);
extern int	wgpeer_release_expired(const char *ifname);
extern void wgpeer_lock_pool(const char *ifname);
extern void wgpeer_claim_address(const char *ifname, Datum address);

/* restore.c */
extern bool wgpeer_row_restored(HeapTuple tup, TupleDesc desc,
								const char *column);

/* queue.c */
extern bool wgpeer_peer_untriggered(void);
extern void wgpeer_queue_untriggered(Datum peer_id, const char *op);
extern int	wgpeer_expire_untriggered(void);

#endif							/* WGPEER_SQL_H */
