/*
 * shaping.h
 *		Per-peer speed limits on a WireGuard interface, over rtnetlink.
 *
 * Download (to the peer) is shaped on the interface's egress: wgpeer's HTB
 * root qdisc 7770:, one class 7770:<slot> per limited peer, and a flower
 * filter per tunnel address (IPv4, IPv6) sending the peer's packets to its
 * class.  Unclassified packets (every unlimited peer) take HTB's direct
 * queue, unshaped.  Upload (from the peer) is policed on the interface's
 * ingress: a flower filter per tunnel address matching the source, with a
 * police action that drops what exceeds the rate.
 *
 * A peer's objects all carry its slot (class minor and filter handle), so a
 * change touches that peer's objects only.  wgpeer's objects are told from
 * anyone else's by their handles and priorities: the root qdisc 7770:, and
 * filters at priorities WGTC_PRIO_V4 and WGTC_PRIO_V6.  The ingress qdisc
 * (ffff:, always that handle) may be shared with someone else's filters.
 *
 * The message building and dump parsing use no socket (unit tested); the
 * socket calls are at the end.
 */
#ifndef WGPEER_SHAPING_H
#define WGPEER_SHAPING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* wgpeer's HTB root qdisc handle major: 7770: */
#define WGTC_MAJOR 0x7770u
/* filter priorities: one per address family (a protocol per priority) */
#define WGTC_PRIO_V4 0x7770u
#define WGTC_PRIO_V6 0x7771u
/* slots 1..WGTC_SLOT_MAX: a peer's class minor and filter handle */
#define WGTC_SLOT_MAX 65534
/* rates in kbit/s: 8 kbit/s to 10 Gbit/s (the rate fits a u32 of bytes/s) */
#define WGTC_KBIT_MIN 8
#define WGTC_KBIT_MAX 10000000
/* a message this size holds any one wgpeer builds */
#define WGTC_MSG_MAX 4096

typedef enum wgtc_dir
{
	WGTC_DOWN,					/* to the peer: interface egress, HTB class */
	WGTC_UP						/* from the peer: interface ingress, police */
} wgtc_dir;

/* filter bits of wgtc_installed.filters, one per direction and family */
#define WGTC_F_DOWN4 0x1
#define WGTC_F_DOWN6 0x2
#define WGTC_F_UP4 0x4
#define WGTC_F_UP6 0x8

/* One limited peer as the database wants it. */
typedef struct wgtc_peer
{
	uint16_t	slot;
	uint32_t	down_kbit;		/* 0: unlimited */
	uint32_t	up_kbit;		/* 0: unlimited */
	bool		has_v4;
	uint8_t		v4[4];
	bool		has_v6;
	uint8_t		v6[16];
} wgtc_peer;

/* What a dump of one interface found (index by slot). */
typedef struct wgtc_installed
{
	bool		root_ours;		/* HTB 7770: is the root qdisc */
	bool		root_foreign;	/* another qdisc (not the default) is root */
	bool		ingress;		/* an ingress qdisc (ffff:) is there */
	uint32_t	class_kbit[WGTC_SLOT_MAX + 1];	/* 0: no class */
	uint32_t	police_kbit[WGTC_SLOT_MAX + 1]; /* upload rate seen, 0: none */
	uint8_t		filters[WGTC_SLOT_MAX + 1]; /* WGTC_F_* */
} wgtc_installed;

/* Message building: the length built, or -errno (-EINVAL, -EMSGSIZE). */
extern int	wgtc_build_root(void *buf, size_t size, uint32_t seq,
							int ifindex);
extern int	wgtc_build_ingress(void *buf, size_t size, uint32_t seq,
							   int ifindex);
extern int	wgtc_build_class(void *buf, size_t size, uint32_t seq,
							 int ifindex, uint16_t slot, uint32_t kbit);
extern int	wgtc_build_del_class(void *buf, size_t size, uint32_t seq,
								 int ifindex, uint16_t slot);
extern int	wgtc_build_filter(void *buf, size_t size, uint32_t seq,
							  int ifindex, wgtc_dir dir, bool v6,
							  const uint8_t *addr, uint16_t slot,
							  uint32_t kbit);
extern int	wgtc_build_del_filter(void *buf, size_t size, uint32_t seq,
								  int ifindex, wgtc_dir dir, bool v6,
								  uint16_t slot);
extern int	wgtc_build_dump(void *buf, size_t size, uint32_t seq,
							uint16_t type, int ifindex, uint32_t parent);

/* Dump parsing: one message of a dump into what was found. */
extern int	wgtc_parse(const void *msg, size_t len, int ifindex,
					   wgtc_installed *found);

/* rate conversions (exposed for the tests) */
extern uint32_t wgtc_rate_bytes(uint32_t kbit);
extern uint32_t wgtc_ticks(uint32_t bytes, uint32_t rate_bytes);
extern uint32_t wgtc_burst(uint32_t rate_bytes);

/* Socket I/O: 0 or -errno. */
typedef struct wgtc_ctx wgtc_ctx;
extern int	wgtc_open(wgtc_ctx **ctx, int timeout_ms);
extern void wgtc_close(wgtc_ctx *ctx);
extern int	wgtc_read(wgtc_ctx *ctx, int ifindex, wgtc_installed *found);
extern int	wgtc_ensure_qdiscs(wgtc_ctx *ctx, int ifindex,
							   const wgtc_installed *found);
extern int	wgtc_set_peer(wgtc_ctx *ctx, int ifindex, const wgtc_peer *peer,
						  const wgtc_installed *found);
extern int	wgtc_clear_slot(wgtc_ctx *ctx, int ifindex, uint16_t slot,
							const wgtc_installed *found);

#endif							/* WGPEER_SHAPING_H */
