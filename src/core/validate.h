/*
 * validate.h
 *		Syntax checks for everything a caller can put into an interface, a
 *		peer or a client config.
 *
 * Pure C, no PostgreSQL headers.  Each check returns NULL when the value
 * is acceptable, otherwise a static sentence saying what is wrong, which
 * the SQL layer reports as the error detail.
 */
#ifndef WGPEER_VALIDATE_H
#define WGPEER_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

/* Longest DNS list we render: plenty for any real resolver set. */
#define WG_DNS_LIST_MAX 1024

/*
 * Most prefixes a peer's own client AllowedIPs, or the routes behind it,
 * may list: plenty for a split tunnel or a site, and few enough that a
 * peer's allowed IPs on the interface stay a short list.
 */
#define WG_PEER_PREFIXES_MAX 64

extern const char *wg_check_ifname(const char *name);
extern const char *wg_check_config_name(const char *name);
extern const char *wg_check_hostname(const char *host);
extern const char *wg_check_endpoint(const char *endpoint);
extern const char *wg_check_dns_list(const char *list, char *normalized,
									 size_t size, char *bad_entry,
									 size_t bad_size);
extern const char *wg_check_no_control(const char *text);
extern const char *wg_check_ascii(const char *text);
/*
 * Most peers one device holds; past them it refuses new peers.  Kernel
 * WireGuard: MAX_PEERS_PER_DEVICE (drivers/net/wireguard/messages.h), a
 * full device answers ENOMEM.  wireguard-go: MaxPeers
 * (device/constants.go), a full device answers EINVAL.
 */
#define WG_KERNEL_MAX_PEERS (1 << 20)
#define WG_UAPI_MAX_PEERS (1 << 16)

extern const char *wg_check_pool_prefix(int family, const uint8_t addr[16],
										int bits);

/*
 * The widest route an application may give a peer: /8 in IPv4 (the
 * widest private block, a whole corporate network behind a site) and /32
 * in IPv6 (the largest allocation one organisation gets; a site is a
 * /48).  Anything wider, a default route (0.0.0.0/0, ::/0) included,
 * lets the peer send from nearly any address: wg_set_peer_wide_routes(),
 * an administrator's function, sets those.
 */
#define WG_ROUTE_MIN_BITS_V4 8
#define WG_ROUTE_MIN_BITS_V6 32

extern const char *wg_check_route_prefix(int family, const uint8_t addr[16],
										 int bits, int wide);

#endif							/* WGPEER_VALIDATE_H */
