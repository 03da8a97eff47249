/*
 * awg.h
 *		AmneziaWG parameters: junk packets (Jc, Jmin, Jmax), padding of the
 *		four message kinds (S1..S4), their message types (H1..H4, each a
 *		number or a range) and the signature packets (I1..I5).
 *
 * Pure C, no PostgreSQL headers.  The checks return NULL when the value is
 * acceptable, otherwise a sentence saying what is wrong (static, or for a
 * whole set formatted into the caller's buffer with the values at fault),
 * which the SQL layer reports as the error detail.
 */
#ifndef WGPEER_AWG_H
#define WGPEER_AWG_H

#include <stddef.h>
#include <stdint.h>

#define WG_AWG_H_COUNT 4
#define WG_AWG_S_COUNT 4
#define WG_AWG_I_COUNT 5

/*
 * Most junk packets before a handshake, and the largest junk packet:
 * amneziawg-go's documented bounds (the kernel module takes any u16, but
 * a junk packet past 1280 bytes may not cross an IPv6 path).
 */
#define WG_AWG_JC_MAX 128
#define WG_AWG_JMAX_MAX 1280

/*
 * Longest signature-packet description, in characters: all five fit in
 * the first netlink message of a set (8 KiB) with room to spare.
 */
#define WG_AWG_I_MAX 1024

/* Largest packet a signature-packet description may describe (UDP). */
#define WG_AWG_I_PACKET_MAX 65507

/* An inclusive range of message types; lo == hi is a single value. */
typedef struct wg_awg_range
{
	uint32_t	lo;
	uint32_t	hi;
} wg_awg_range;

/*
 * One set of parameters.  Zero (and a NULL signature packet) means unset:
 * an all-zero set behaves as plain WireGuard.
 */
typedef struct wg_awg
{
	int			jc;
	int			jmin;
	int			jmax;
	int			s[WG_AWG_S_COUNT];	/* S1..S4 */
	wg_awg_range h[WG_AWG_H_COUNT]; /* H1..H4, {0, 0} when unset */
	const char *i[WG_AWG_I_COUNT];	/* I1..I5, NULL when unset */
} wg_awg;

extern const char *wg_awg_parse_range(const char *text, wg_awg_range *out);
extern int	wg_awg_format_range(wg_awg_range range, char *buf, size_t size);
extern const char *wg_awg_check_tags(const char *spec);
extern const char *wg_awg_check_s(int index, int value);
/* a reason of wg_awg_check() fits in this */
#define WG_AWG_REASON_SIZE 256
extern const char *wg_awg_check(const wg_awg *awg, const char **field,
								char *buf, size_t size);
extern void wg_awg_random(wg_awg *awg);
extern wg_awg_range wg_awg_header(const wg_awg *awg, int index);
extern int	wg_awg_equal(const wg_awg *a, const wg_awg *b);

#endif							/* WGPEER_AWG_H */
