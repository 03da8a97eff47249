/*
 * qr.c
 *		QR codes of client configs, rendered in process.
 *
 * libqrencode builds the module matrix; this file turns it into a 1-bit
 * grayscale PNG written to memory by libpng, a compact SVG (one <path>
 * made of horizontal runs) or UTF-8 half blocks for a terminal.  libpng
 * reports errors by longjmp: the jump lands in this file, which frees
 * everything and returns a status, so no caller ever sees a longjmp.
 */
#include "core/qr.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <qrencode.h>

/*
 * Error-correction levels above L, strongest first, with the most bytes
 * each holds in byte mode within WG_QR_COMFORT_VERSION (ISO/IEC 18004,
 * table 7).  A typical config (~360 bytes with PSK and IPv6) gets M.
 */
static const struct
{
	char		name;
	QRecLevel	level;
	size_t		max_bytes;
}			comfort_levels[] =
{
	{'H', QR_ECLEVEL_H, 220},
	{'Q', QR_ECLEVEL_Q, 292},
	{'M', QR_ECLEVEL_M, 412},
};

/* A growing output buffer that refuses to pass max_len bytes. */
typedef struct qr_buf
{
	unsigned char *data;
	size_t		len;
	size_t		cap;
	size_t		max_len;
	wg_qr_status status;		/* first failure; later appends do nothing */
} qr_buf;

/* UTF-8 of the half blocks: upper, lower and full. */
static const char upper_half[] = "\xe2\x96\x80";
static const char lower_half[] = "\xe2\x96\x84";
static const char full_block[] = "\xe2\x96\x88";

/*
 * Encode len bytes of data (any bytes, in QR byte mode) into qr.  The
 * level is the strongest that keeps the symbol within
 * WG_QR_COMFORT_VERSION, else L at whatever version fits, so a typical
 * config stays small enough to scan from a terminal.  On success the
 * caller frees qr with wg_qr_free.
 */
wg_qr_status
wg_qr_encode(const char *data, size_t len, wg_qr *qr)
{
	QRecLevel	level = QR_ECLEVEL_L;
	char		name = 'L';
	QRcode	   *code;
	size_t		i;
	size_t		n;

	memset(qr, 0, sizeof(*qr));
	if (len == 0)
		return WG_QR_EMPTY;
	if (len > WG_QR_MAX_BYTES)
		return WG_QR_TOO_LONG;
	for (i = 0; i < sizeof(comfort_levels) / sizeof(comfort_levels[0]); i++)
	{
		if (len <= comfort_levels[i].max_bytes)
		{
			level = comfort_levels[i].level;
			name = comfort_levels[i].name;
			break;
		}
	}

	errno = 0;
	code = QRcode_encodeData((int) len, (const unsigned char *) data, 0, level);
	if (code == NULL)
		return errno == ENOMEM ? WG_QR_NO_MEMORY :
			errno == ERANGE ? WG_QR_TOO_LONG : WG_QR_ENCODER_FAILED;

	n = (size_t) code->width * code->width;
	qr->modules = malloc(n);
	if (qr->modules == NULL)
	{
		QRcode_free(code);
		return WG_QR_NO_MEMORY;
	}
	/* bit 0 of each byte is the module's colour; the rest is metadata */
	for (i = 0; i < n; i++)
		qr->modules[i] = code->data[i] & 1;
	qr->version = code->version;
	qr->size = code->width;
	qr->level = name;
	QRcode_free(code);
	return WG_QR_OK;
}

/*
 * Release the matrix of a symbol; safe on a zeroed or freed one.
 */
void
wg_qr_free(wg_qr *qr)
{
	free(qr->modules);
	qr->modules = NULL;
}

/* Start an empty buffer that may grow to max_len bytes. */
static void
buf_init(qr_buf *b, size_t max_len)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max_len = max_len;
	b->status = WG_QR_OK;
}

/*
 * Append n bytes, keeping room for a terminating NUL after them.  Returns
 * 0, or -1 (and records why in b->status) when the buffer would pass
 * max_len or memory ran out.
 */
static int
buf_append(qr_buf *b, const void *p, size_t n)
{
	if (b->status != WG_QR_OK)
		return -1;
	if (n > b->max_len - b->len)
	{
		b->status = WG_QR_TOO_LARGE;
		return -1;
	}
	if (b->len + n > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 1024;
		unsigned char *grown;

		while (cap < b->len + n)
			cap *= 2;
		if (cap > b->max_len)
			cap = b->max_len;
		grown = realloc(b->data, cap + 1);
		if (grown == NULL)
		{
			b->status = WG_QR_NO_MEMORY;
			return -1;
		}
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

/* Append a NUL-terminated string. */
static void
buf_puts(qr_buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

/* Append a formatted string short enough for a small stack buffer. */
static void
buf_printf(qr_buf *b, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

static void
buf_printf(qr_buf *b, const char *fmt,...)
{
	char		tmp[256];
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	/* every format here is far shorter; refuse rather than truncate */
	if (n >= 0 && (size_t) n < sizeof(tmp))
		buf_append(b, tmp, n);
	else if (b->status == WG_QR_OK)
		b->status = WG_QR_TOO_LARGE;
}

/*
 * Hand a finished text buffer to the caller, NUL-terminated, or free it
 * and return the failure.  Every rendering appends something, so a
 * successful buffer is never NULL.
 */
static wg_qr_status
buf_finish_text(qr_buf *b, char **out, size_t *out_len)
{
	if (b->status != WG_QR_OK)
	{
		free(b->data);
		return b->status;
	}
	b->data[b->len] = '\0';
	*out = (char *) b->data;
	*out_len = b->len;
	return WG_QR_OK;
}

/* Check the rendering parameters a caller may choose. */
static wg_qr_status
check_params(int scale, int margin)
{
	if (scale < WG_QR_SCALE_MIN || scale > WG_QR_SCALE_MAX)
		return WG_QR_BAD_SCALE;
	if (margin < WG_QR_MARGIN_MIN || margin > WG_QR_MARGIN_MAX)
		return WG_QR_BAD_MARGIN;
	return WG_QR_OK;
}

/*
 * Whether the module at row y, column x of the symbol framed by a quiet
 * zone of margin modules is dark.  Coordinates count from the corner of
 * the quiet zone.
 */
static int
is_dark(const wg_qr *qr, int margin, int y, int x)
{
	y -= margin;
	x -= margin;
	if (y < 0 || x < 0 || y >= qr->size || x >= qr->size)
		return 0;
	return qr->modules[(size_t) y * qr->size + x];
}

/*
 * libpng's write callback: append to the qr_buf behind the io pointer.
 * A full buffer is reported with png_error, which jumps back to
 * qr_png_guarded() in this file; the reason stays in the qr_buf.
 */
static void
qr_png_write(png_structp png, png_bytep data, size_t len)
{
	if (buf_append(png_get_io_ptr(png), data, len) != 0)
		png_error(png, "output buffer full");
}

/* libpng's flush callback: memory needs no flushing. */
static void
qr_png_flush(png_structp png)
{
	(void) png;
}

/*
 * libpng's error callback: never return (libpng requires it), never
 * print; jump to the setjmp in qr_png_guarded().
 */
static void
qr_png_error(png_structp png, png_const_charp msg)
{
	(void) msg;
	png_longjmp(png, 1);
}

/* libpng's warning callback: a server has nowhere to print warnings. */
static void
qr_png_warning(png_structp png, png_const_charp msg)
{
	(void) png;
	(void) msg;
}

/*
 * Write the header and every pixel row of the image: each module row
 * becomes scale identical rows of 1-bit pixels, 0 black and 1 white.
 * Called only under qr_png_guarded()'s setjmp.
 */
static void
qr_png_pixels(png_structp png, png_infop info, const wg_qr *qr,
				 int scale, int margin, unsigned char *row)
{
	int			side = qr->size + 2 * margin;
	int			width = side * scale;
	size_t		row_bytes = ((size_t) width + 7) / 8;
	int			y;
	int			x;
	int			k;

	png_set_IHDR(png, info, width, width, 1, PNG_COLOR_TYPE_GRAY,
				 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
				 PNG_FILTER_TYPE_DEFAULT);

	/*
	 * zlib's default state (memLevel 8, a 128 KiB hash) is sized for large
	 * inputs.  For a QR image of a few KiB, memLevel 2 renders the PNG in
	 * about 30% less CPU than the default, for a PNG 4% (scale 4) to 6%
	 * (scale 8) larger; memLevel 4 saves 13% for 1-3% smaller.  Measured
	 * by bench/qr_zlib.sh (zlib 1.2.13, libpng 1.6.39).
	 */
	png_set_compression_mem_level(png, 2);
	png_write_info(png, info);
	for (y = 0; y < side; y++)
	{
		memset(row, 0xff, row_bytes);
		for (x = 0; x < side; x++)
		{
			if (!is_dark(qr, margin, y, x))
				continue;
			for (k = x * scale; k < (x + 1) * scale; k++)
				row[k >> 3] &= ~(0x80 >> (k & 7));
		}
		for (k = 0; k < scale; k++)
			png_write_row(png, row);
	}
	png_write_end(png, NULL);
}

/*
 * Run qr_png_pixels with libpng's error jump pointing here.  Kept apart
 * from its caller so that no local variable changes between setjmp and a
 * longjmp (whose value would then be indeterminate).  Returns 0 or -1.
 */
static int
qr_png_guarded(png_structp png, png_infop info, const wg_qr *qr,
				int scale, int margin, unsigned char *row)
{
	if (setjmp(png_jmpbuf(png)))
		return -1;
	qr_png_pixels(png, info, qr, scale, margin, row);
	return 0;
}

/*
 * Render qr as a PNG: 1-bit grayscale, scale pixels per module, a quiet
 * zone of margin modules.  At most max_len bytes; on success *out is a
 * malloc'd buffer of *out_len bytes.  Any libpng failure is returned as a
 * status with everything freed.
 */
wg_qr_status
wg_qr_render_png(const wg_qr *qr, int scale, int margin, size_t max_len,
		  unsigned char **out, size_t *out_len)
{
	wg_qr_status status = check_params(scale, margin);
	qr_buf		buf;
	png_structp png;
	png_infop	info;
	unsigned char *row;
	int			failed;

	if (status != WG_QR_OK)
		return status;
	row = malloc(((size_t) (qr->size + 2 * margin) * scale + 7) / 8);
	if (row == NULL)
		return WG_QR_NO_MEMORY;
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
								  qr_png_error, qr_png_warning);
	info = png ? png_create_info_struct(png) : NULL;
	if (info == NULL)
	{
		png_destroy_write_struct(&png, NULL);
		free(row);
		return WG_QR_NO_MEMORY;
	}

	buf_init(&buf, max_len);
	png_set_write_fn(png, &buf, qr_png_write, qr_png_flush);
	failed = qr_png_guarded(png, info, qr, scale, margin, row);
	png_destroy_write_struct(&png, &info);
	free(row);
	if (failed || buf.status != WG_QR_OK)
	{
		free(buf.data);
		return buf.status != WG_QR_OK ? buf.status : WG_QR_PNG_FAILED;
	}
	*out = buf.data;
	*out_len = buf.len;
	return WG_QR_OK;
}

/*
 * Render qr as SVG text: width and height in pixels (scale per module),
 * drawn in module units on a white square, the dark modules as one path
 * with a rectangle per horizontal run.  Runs after the first move
 * relatively, which keeps the path short.
 */
wg_qr_status
wg_qr_render_svg(const wg_qr *qr, int scale, int margin, size_t max_len,
		  char **out, size_t *out_len)
{
	wg_qr_status status = check_params(scale, margin);
	int			side = qr->size + 2 * margin;
	int			px = 0;
	int			py = 0;
	int			first = 1;
	int			y;
	int			x;
	qr_buf		buf;

	if (status != WG_QR_OK)
		return status;
	buf_init(&buf, max_len);
	buf_printf(&buf,
			   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
			   "viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">"
			   "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path d=\"",
			   side * scale, side * scale, side, side, side, side);
	for (y = margin; y < margin + qr->size; y++)
	{
		x = margin;
		while (x < margin + qr->size)
		{
			int			run = 0;

			while (is_dark(qr, margin, y, x + run))
				run++;
			if (run == 0)
			{
				x++;
				continue;
			}
			if (first)
				buf_printf(&buf, "M%d %dh%dv1h-%dz", x, y, run, run);
			else
				buf_printf(&buf, "m%d %dh%dv1h-%dz", x - px, y - py, run, run);
			first = 0;
			px = x;
			py = y;
			x += run;
		}
	}
	buf_puts(&buf, "\"/></svg>");
	return buf_finish_text(&buf, out, out_len);
}

/*
 * Render qr as text for a terminal: each line holds two module rows in
 * UTF-8 half blocks, with a quiet zone of margin modules.  Light modules
 * are drawn (full, upper or lower half block) and dark ones left blank,
 * so on the usual light-on-dark terminal the code appears dark on light,
 * as scanners expect.  Lines end in '\n' except the last; the lower half
 * of the last line is blank when the row count is odd.
 */
wg_qr_status
wg_qr_render_text(const wg_qr *qr, int margin, size_t max_len,
		   char **out, size_t *out_len)
{
	int			side = qr->size + 2 * margin;
	int			y;
	int			x;
	qr_buf		buf;

	if (margin < WG_QR_MARGIN_MIN || margin > WG_QR_MARGIN_MAX)
		return WG_QR_BAD_MARGIN;
	buf_init(&buf, max_len);
	for (y = 0; y < side; y += 2)
	{
		if (y > 0)
			buf_puts(&buf, "\n");
		for (x = 0; x < side; x++)
		{
			int			top = !is_dark(qr, margin, y, x);
			int			bottom = y + 1 < side &&
				!is_dark(qr, margin, y + 1, x);

			buf_puts(&buf, top ? (bottom ? full_block : upper_half) :
					 (bottom ? lower_half : " "));
		}
	}
	return buf_finish_text(&buf, out, out_len);
}

/*
 * A sentence for each status, for error details.
 */
const char *
wg_qr_status_message(wg_qr_status status)
{
	switch (status)
	{
		case WG_QR_OK:
			return "success";
		case WG_QR_EMPTY:
			return "there is nothing to encode";
		case WG_QR_TOO_LONG:
			return "a QR code holds at most 2953 bytes";
		case WG_QR_BAD_SCALE:
			return "the scale (pixels per module) must be 1 to 64";
		case WG_QR_BAD_MARGIN:
			return "the margin (quiet zone, in modules) must be 0 to 64";
		case WG_QR_TOO_LARGE:
			return "the image would be larger than the output limit";
		case WG_QR_NO_MEMORY:
			return "out of memory";
		case WG_QR_ENCODER_FAILED:
			return "libqrencode could not encode the text";
		case WG_QR_PNG_FAILED:
			return "libpng could not write the image";
	}
	return "unknown";
}
