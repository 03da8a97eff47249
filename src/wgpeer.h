/*
 * wgpeer.h
 *		Declarations shared by the SQL-callable parts of wgpeer.
 */
#ifndef WGPEER_H
#define WGPEER_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/uuid.h"

#include "keys.h"

/* settings (wgpeer.c) */
extern int	wgpeer_expired_grace;

/* keys_sql.c */
extern void wgpeer_parse_key(const char *text, const char *what,
							 uint8_t key[WG_KEY_LEN]);
extern char *wgpeer_key_text(const uint8_t key[WG_KEY_LEN]);

/* interface.c */
extern char *wgpeer_resolve_interface(text *name);

/* pool.c */
extern Datum wgpeer_allocate(const char *ifname, bool consume);

/* peer.c */
extern char *wgpeer_render_peer_config(pg_uuid_t *peer_id);

#endif							/* WGPEER_H */
