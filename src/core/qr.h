/*
 * qr.h
 *		QR codes of client configs: the module matrix (libqrencode) and its
 *		renderings as PNG (libpng, in memory), SVG and UTF-8 half blocks.
 *
 * Pure C, no PostgreSQL headers.  Functions return a wg_qr_status and
 * never print or exit; every buffer they hand back comes from malloc and
 * is the caller's to free.
 */
#ifndef WGPEER_QR_H
#define WGPEER_QR_H

#include <stddef.h>

/* Bounds of the rendering parameters (pixels per module, quiet zone). */
#define WG_QR_SCALE_MIN 1
#define WG_QR_SCALE_MAX 64
#define WG_QR_MARGIN_MIN 0
#define WG_QR_MARGIN_MAX 64

/* The quiet zone the standard asks for; the terminal form always has it. */
#define WG_QR_QUIET_ZONE 4

/* Largest symbol an error-correction level above L may grow to. */
#define WG_QR_COMFORT_VERSION 15

/* Most bytes any QR code holds (version 40, level L, byte mode). */
#define WG_QR_MAX_BYTES 2953

typedef enum wg_qr_status
{
	WG_QR_OK = 0,
	WG_QR_EMPTY,				/* nothing to encode */
	WG_QR_TOO_LONG,				/* more than any QR version holds */
	WG_QR_BAD_SCALE,			/* scale outside the bounds above */
	WG_QR_BAD_MARGIN,			/* margin outside the bounds above */
	WG_QR_TOO_LARGE,			/* the rendering would exceed max_len */
	WG_QR_NO_MEMORY,
	WG_QR_ENCODER_FAILED,		/* libqrencode failed for another reason */
	WG_QR_PNG_FAILED			/* libpng reported an error */
} wg_qr_status;

/* A QR symbol: size x size modules, row-major, 1 for dark, 0 for light. */
typedef struct wg_qr
{
	int			version;		/* 1..40 */
	char		level;			/* error correction: 'L', 'M', 'Q' or 'H' */
	int			size;			/* 17 + 4 * version */
	unsigned char *modules;
} wg_qr;

extern wg_qr_status wg_qr_encode(const char *data, size_t len, wg_qr *qr);
extern void wg_qr_free(wg_qr *qr);

extern wg_qr_status wg_qr_render_png(const wg_qr *qr, int scale, int margin,
									 size_t max_len, unsigned char **out,
									 size_t *out_len);
extern wg_qr_status wg_qr_render_svg(const wg_qr *qr, int scale, int margin,
									 size_t max_len, char **out,
									 size_t *out_len);
extern wg_qr_status wg_qr_render_text(const wg_qr *qr, int margin,
									  size_t max_len, char **out,
									  size_t *out_len);

extern const char *wg_qr_status_message(wg_qr_status status);

#endif							/* WGPEER_QR_H */
