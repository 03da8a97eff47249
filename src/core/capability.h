/*
 * capability.h
 *		CAP_NET_ADMIN: checking it and dropping it for good.
 *
 * Pure C, no PostgreSQL headers.  Returns 0 or a positive answer on
 * success, -errno on failure.
 */
#ifndef WGPEER_CAPABILITY_H
#define WGPEER_CAPABILITY_H

extern int	wg_has_net_admin(void);
extern int	wg_drop_net_admin(void);
extern int	wg_dormant_net_admin(void);
extern int	wg_raise_net_admin(void);

#endif							/* WGPEER_CAPABILITY_H */
