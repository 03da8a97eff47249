/*
 * test_qr.c
 *		Unit tests of the QR core: level choice, matrix, PNG, SVG, text.
 *
 * Every rendering is read back (the PNG with libpng, the SVG path and the
 * half blocks by small parsers here) and compared module by module with
 * the matrix, so a renderer that drew anything else would fail.
 */
#include <stdint.h>
#include <stdlib.h>

#include <png.h>

#include "core/qr.h"
#include "qr_modules.h"
#include "unit.h"

/* No limit on the size of a rendering. */
#define NOLIM SIZE_MAX

/* A typical client config: PSK, IPv6, DNS, keepalive; 360 bytes. */
static const char typical[] =
"[Interface]\n"
"PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n"
"Address = 10.10.0.2/32, fd00:10:10::2/128\n"
"DNS = 1.1.1.1, 2606:4700:4700::1111\n"
"\n"
"[Peer]\n"
"PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\n"
"PresharedKey = FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=\n"
"Endpoint = vpn.example.com:51820\n"
"AllowedIPs = 0.0.0.0/0, ::/0\n"
"PersistentKeepalive = 25\n";

/* Encode n copies of 'a' and return the symbol (for level boundaries). */
static wg_qr_status
encode_len(size_t n, wg_qr *qr)
{
	char	   *s = malloc(n + 1);
	wg_qr_status st;

	memset(s, 'a', n);
	st = wg_qr_encode(s, n, qr);
	free(s);
	return st;
}

/* Check the 7x7 finder pattern whose corner is at (y0, x0). */
static int
finder_ok(const wg_qr *qr, int y0, int x0)
{
	int			y;
	int			x;

	for (y = 0; y < 7; y++)
		for (x = 0; x < 7; x++)
		{
			int			ring = (y == 0 || y == 6 || x == 0 || x == 6);
			int			core = (y >= 2 && y <= 4 && x >= 2 && x <= 4);

			if (qr->modules[(y0 + y) * qr->size + x0 + x] != (ring || core))
				return 0;
		}
	return 1;
}

/* Level choice, versions, limits and the matrix itself. */
static void
test_encode(void)
{
	wg_qr		qr;
	struct
	{
		size_t		len;
		char		level;
		int			version;
	}			cases[] =
	{
		{1, 'H', 1},
		{220, 'H', 15},			/* the most H holds within version 15 */
		{221, 'Q', 13},
		{292, 'Q', 15},
		{293, 'M', 13},
		{412, 'M', 15},
		{413, 'L', 13},
		{2953, 'L', 40},		/* the most any QR code holds */
	};
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		CHECK(encode_len(cases[i].len, &qr) == WG_QR_OK);
		CHECK(qr.level == cases[i].level);
		CHECK(qr.version == cases[i].version);
		CHECK(qr.size == 17 + 4 * cases[i].version);
		if (qr.level != cases[i].level || qr.version != cases[i].version)
			fprintf(stderr, "len %zu: got %c %d\n", cases[i].len, qr.level,
					qr.version);
		wg_qr_free(&qr);
	}

	CHECK(encode_len(2954, &qr) == WG_QR_TOO_LONG);
	CHECK(qr.modules == NULL);
	CHECK(wg_qr_encode("", 0, &qr) == WG_QR_EMPTY);
	CHECK(qr.modules == NULL);

	/* a typical config fits at M in version 14 (73 modules a side) */
	CHECK(strlen(typical) == 360);
	CHECK(wg_qr_encode(typical, strlen(typical), &qr) == WG_QR_OK);
	CHECK(qr.level == 'M');
	CHECK(qr.version == 14);
	CHECK(qr.size == 73);
	/* finder patterns in three corners, none in the fourth */
	CHECK(finder_ok(&qr, 0, 0));
	CHECK(finder_ok(&qr, 0, qr.size - 7));
	CHECK(finder_ok(&qr, qr.size - 7, 0));
	CHECK(!finder_ok(&qr, qr.size - 7, qr.size - 7));
	/* only 0 and 1 in the matrix */
	for (i = 0; i < (size_t) qr.size * qr.size; i++)
		if (qr.modules[i] > 1)
			break;
	CHECK(i == (size_t) qr.size * qr.size);
	wg_qr_free(&qr);
	CHECK(qr.modules == NULL);
	wg_qr_free(&qr);			/* twice is harmless */

	/* bytes outside ASCII, NUL included, are encoded as they are */
	CHECK(wg_qr_encode("a\0\xff", 3, &qr) == WG_QR_OK);
	CHECK(qr.level == 'H' && qr.version == 1);
	wg_qr_free(&qr);
}

/* Read a PNG back with libpng and compare it pixel by pixel with qr. */
static void
check_png(const wg_qr *qr, const unsigned char *png, size_t len,
		  int scale, int margin)
{
	png_image	image;
	unsigned char *pixels;
	int			side = (qr->size + 2 * margin) * scale;
	int			y;
	int			x;
	int			bad = 0;

	/* signature, then IHDR: width, height, bit depth 1, grayscale */
	CHECK(len > 33 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
	CHECK(memcmp(png + 12, "IHDR", 4) == 0);
	CHECK(png[24] == 1 && png[25] == 0);

	memset(&image, 0, sizeof(image));
	image.version = PNG_IMAGE_VERSION;
	CHECK(png_image_begin_read_from_memory(&image, png, len));
	CHECK((int) image.width == side && (int) image.height == side);
	image.format = PNG_FORMAT_GRAY;
	pixels = malloc(PNG_IMAGE_SIZE(image));
	CHECK(png_image_finish_read(&image, NULL, pixels, 0, NULL));
	for (y = 0; y < side; y++)
		for (x = 0; x < side; x++)
		{
			int			dark = qr_dark_at(qr, margin, y / scale, x / scale);

			bad += pixels[y * side + x] != (dark ? 0 : 255);
		}
	CHECK(bad == 0);
	free(pixels);
	png_image_free(&image);
}

/* PNG: exact pixels, parameter bounds, the output limit. */
static void
test_png(void)
{
	wg_qr		qr;
	unsigned char *png = NULL;
	unsigned char *none = NULL;
	size_t		len = 0;
	size_t		len2 = 0;

	CHECK(wg_qr_encode(typical, strlen(typical), &qr) == WG_QR_OK);

	CHECK(wg_qr_render_png(&qr, 4, 4, NOLIM, &png, &len) == WG_QR_OK);
	check_png(&qr, png, len, 4, 4);
	free(png);
	CHECK(wg_qr_render_png(&qr, 1, 0, NOLIM, &png, &len) == WG_QR_OK);
	check_png(&qr, png, len, 1, 0);
	free(png);
	CHECK(wg_qr_render_png(&qr, 3, 1, NOLIM, &png, &len) == WG_QR_OK);
	check_png(&qr, png, len, 3, 1);
	free(png);
	/* row widths that are not a multiple of 8 pixels */
	CHECK(wg_qr_render_png(&qr, 7, 3, NOLIM, &png, &len) == WG_QR_OK);
	check_png(&qr, png, len, 7, 3);

	/* the limit is inclusive: the exact size passes, one byte less fails */
	CHECK(wg_qr_render_png(&qr, 7, 3, len, &none, &len2) == WG_QR_OK);
	CHECK(len2 == len && memcmp(none, png, len) == 0);
	free(none);
	none = NULL;
	CHECK(wg_qr_render_png(&qr, 7, 3, len - 1, &none, &len2) ==
		  WG_QR_TOO_LARGE);
	CHECK(none == NULL);
	free(png);
	/* a limit hit inside the header: libpng's longjmp lands in the core */
	CHECK(wg_qr_render_png(&qr, 4, 4, 10, &none, &len2) == WG_QR_TOO_LARGE);
	CHECK(none == NULL);

	CHECK(wg_qr_render_png(&qr, 0, 4, NOLIM, &none, &len2) == WG_QR_BAD_SCALE);
	CHECK(wg_qr_render_png(&qr, 65, 4, NOLIM, &none, &len2) == WG_QR_BAD_SCALE);
	CHECK(wg_qr_render_png(&qr, 4, -1, NOLIM, &none, &len2) ==
		  WG_QR_BAD_MARGIN);
	CHECK(wg_qr_render_png(&qr, 4, 65, NOLIM, &none, &len2) ==
		  WG_QR_BAD_MARGIN);
	CHECK(none == NULL);
	wg_qr_free(&qr);

	/* the largest parameters on a small symbol */
	CHECK(wg_qr_encode("hello", 5, &qr) == WG_QR_OK);
	CHECK(wg_qr_render_png(&qr, 64, 64, NOLIM, &png, &len) == WG_QR_OK);
	check_png(&qr, png, len, 64, 64);
	free(png);
	wg_qr_free(&qr);
}

/* Read an integer at *p, advancing it; 0 if there is none. */
static int
parse_int(const char **p, int *ok)
{
	char	   *end;
	long		v = strtol(*p, &end, 10);

	if (end == *p)
		*ok = 0;
	*p = end;
	return (int) v;
}

/*
 * Paint the path of an SVG made by wg_qr_render_svg onto a grid of side x side
 * modules: "M x y" or "m dx dy", then "h n v1 h-n z" per run.  Returns 0
 * when the path has any other shape.
 */
static int
paint_svg_path(const char *d, unsigned char *grid, int side)
{
	int			x = 0;
	int			y = 0;
	int			ok = 1;

	while (*d && *d != '"' && ok)
	{
		int			n;
		int			i;
		char		cmd = *d++;

		if (cmd != 'M' && cmd != 'm')
			return 0;
		n = parse_int(&d, &ok);
		x = cmd == 'M' ? n : x + n;
		if (*d++ != ' ')
			return 0;
		n = parse_int(&d, &ok);
		y = cmd == 'M' ? n : y + n;
		if (*d++ != 'h')
			return 0;
		n = parse_int(&d, &ok);
		if (strncmp(d, "v1h-", 4) != 0)
			return 0;
		d += 4;
		if (parse_int(&d, &ok) != n || *d++ != 'z')
			return 0;
		if (n <= 0 || y < 0 || y >= side || x < 0 || x + n > side)
			return 0;
		for (i = 0; i < n; i++)
			grid[y * side + x + i]++;
	}
	return ok && *d == '"';
}

/* Compare the SVG's header and path with qr. */
static void
check_svg(const wg_qr *qr, const char *svg, size_t len, int scale, int margin)
{
	int			side = qr->size + 2 * margin;
	char		head[512];
	const char *d;
	unsigned char *grid = calloc(side * side, 1);
	int			y;
	int			x;
	int			bad = 0;

	CHECK(strlen(svg) == len);
	snprintf(head, sizeof(head),
			 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
			 "viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">"
			 "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path d=\"",
			 side * scale, side * scale, side, side, side, side);
	CHECK(strncmp(svg, head, strlen(head)) == 0);
	CHECK(len > 9 && strcmp(svg + len - 9, "\"/></svg>") == 0);
	/* exactly one path, one rect */
	CHECK(strstr(svg + 1, "<path") == strstr(svg, "<path"));
	CHECK(strstr(strstr(svg, "<path") + 1, "<path") == NULL);
	d = strstr(svg, " d=\"");
	CHECK(d != NULL);
	if (d)
		CHECK(paint_svg_path(d + 4, grid, side));
	for (y = 0; y < side; y++)
		for (x = 0; x < side; x++)
			bad += grid[y * side + x] != qr_dark_at(qr, margin, y, x);
	CHECK(bad == 0);
	free(grid);
}

/* SVG: header, every run, the output limit. */
static void
test_svg(void)
{
	wg_qr		qr;
	char	   *svg = NULL;
	char	   *none = NULL;
	size_t		len;
	size_t		len2;

	CHECK(wg_qr_encode(typical, strlen(typical), &qr) == WG_QR_OK);
	CHECK(wg_qr_render_svg(&qr, 4, 4, NOLIM, &svg, &len) == WG_QR_OK);
	check_svg(&qr, svg, len, 4, 4);
	/* compact: well under 10 bytes per dark module of a 73x73 symbol */
	CHECK(len < 20000);
	free(svg);
	CHECK(wg_qr_render_svg(&qr, 1, 0, NOLIM, &svg, &len) == WG_QR_OK);
	check_svg(&qr, svg, len, 1, 0);

	CHECK(wg_qr_render_svg(&qr, 1, 0, len, &none, &len2) == WG_QR_OK);
	CHECK(len2 == len && strcmp(none, svg) == 0);
	free(none);
	none = NULL;
	CHECK(wg_qr_render_svg(&qr, 1, 0, len - 1, &none, &len2) ==
		  WG_QR_TOO_LARGE);
	CHECK(none == NULL);
	free(svg);

	CHECK(wg_qr_render_svg(&qr, 0, 4, NOLIM, &none, &len2) == WG_QR_BAD_SCALE);
	CHECK(wg_qr_render_svg(&qr, 4, 65, NOLIM, &none, &len2) ==
		  WG_QR_BAD_MARGIN);
	CHECK(none == NULL);
	wg_qr_free(&qr);
}

/*
 * Decode one UTF-8 half block (or a space) at *p into its top and bottom
 * halves, 1 for drawn; returns 0 for anything else.
 */
static int
read_cell(const char **p, int *top, int *bottom)
{
	if (**p == ' ')
	{
		*top = *bottom = 0;
		(*p)++;
		return 1;
	}
	if (strncmp(*p, "\xe2\x96", 2) != 0)
		return 0;
	switch ((unsigned char) (*p)[2])
	{
		case 0x88:
			*top = *bottom = 1;
			break;
		case 0x80:
			*top = 1;
			*bottom = 0;
			break;
		case 0x84:
			*top = 0;
			*bottom = 1;
			break;
		default:
			return 0;
	}
	*p += 3;
	return 1;
}

/* Parse the terminal text back and compare it with qr. */
static void
check_text(const wg_qr *qr, const char *text, size_t len, int margin)
{
	int			side = qr->size + 2 * margin;
	const char *p = text;
	int			lines = 0;
	int			bad = 0;
	int			y;

	CHECK(strlen(text) == len);
	CHECK(text[len - 1] != '\n');
	for (y = 0; y < side; y += 2)
	{
		int			x;

		if (y > 0)
			bad += *p++ != '\n';
		for (x = 0; x < side; x++)
		{
			int			top;
			int			bottom;

			if (!read_cell(&p, &top, &bottom))
			{
				bad++;
				break;
			}
			/* drawn means light; past the last row nothing is drawn */
			bad += top != !qr_dark_at(qr, margin, y, x);
			bad += bottom != (y + 1 < side && !qr_dark_at(qr, margin, y + 1, x));
		}
		lines++;
	}
	CHECK(*p == '\0');
	CHECK(lines == (side + 1) / 2);
	CHECK(bad == 0);
}

/* Terminal text: dimensions, every half block, quiet zone, limit. */
static void
test_text(void)
{
	wg_qr		qr;
	char	   *text = NULL;
	char	   *none = NULL;
	size_t		len;
	size_t		len2;
	char	   *nl;

	CHECK(wg_qr_encode(typical, strlen(typical), &qr) == WG_QR_OK);
	CHECK(wg_qr_render_text(&qr, WG_QR_QUIET_ZONE, NOLIM, &text, &len) ==
		  WG_QR_OK);
	check_text(&qr, text, len, WG_QR_QUIET_ZONE);
	/* 81 rows: 41 lines of 81 cells; the first is all quiet zone */
	nl = strchr(text, '\n');
	CHECK(nl != NULL && nl - text == 81 * 3);
	CHECK(strncmp(text, "\xe2\x96\x88\xe2\x96\x88", 6) == 0);
	/* the last line holds row 80 (quiet zone) over nothing */
	CHECK(strncmp(strrchr(text, '\n') + 1, "\xe2\x96\x80", 3) == 0);
	free(text);

	/* without a quiet zone, the odd last row is the finder's bottom edge */
	CHECK(wg_qr_render_text(&qr, 0, NOLIM, &text, &len) == WG_QR_OK);
	check_text(&qr, text, len, 0);
	CHECK(strncmp(strrchr(text, '\n') + 1, "       ", 7) == 0);

	CHECK(wg_qr_render_text(&qr, 0, len - 1, &none, &len2) == WG_QR_TOO_LARGE);
	CHECK(none == NULL);
	free(text);
	CHECK(wg_qr_render_text(&qr, -1, NOLIM, &none, &len2) == WG_QR_BAD_MARGIN);
	CHECK(none == NULL);
	wg_qr_free(&qr);
}

/* Every status has its own sentence. */
static void
test_messages(void)
{
	int			s;

	for (s = WG_QR_OK; s <= WG_QR_PNG_FAILED; s++)
		CHECK(strcmp(wg_qr_status_message(s), "unknown") != 0);
	CHECK(strcmp(wg_qr_status_message(WG_QR_PNG_FAILED + 1), "unknown") == 0);
}

int
main(void)
{
	test_encode();
	test_png();
	test_svg();
	test_text();
	test_messages();
	return UNIT_DONE("test_qr");
}
