/*
 * fuzz_qr.c
 *		libFuzzer target for the QR core: encode any bytes, render all three
 *		forms, read the PNG back and check every invariant.
 *
 * The first input byte chooses the rendering: scale 1..2, margin 0..7,
 * and in one case of four an output limit small enough to stop libpng in
 * the middle of the image, which drives its longjmp path; the rest is the
 * text.  Built with AddressSanitizer, so a leak on any path is a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "core/qr.h"
#include "qr_modules.h"
#include "fuzz.h"

/* The level the core promises for a text of len bytes. */
static char
expected_level(size_t len)
{
	return len <= 220 ? 'H' : len <= 292 ? 'Q' : len <= 412 ? 'M' : 'L';
}

/* Decode the PNG with libpng and compare every pixel with the matrix. */
static void
check_png(const wg_qr *qr, const unsigned char *png, size_t len,
		  int scale, int margin)
{
	png_image	image;
	unsigned char *pixels;
	int			side = (qr->size + 2 * margin) * scale;
	int			y;
	int			x;

	memset(&image, 0, sizeof(image));
	image.version = PNG_IMAGE_VERSION;
	REQUIRE(png_image_begin_read_from_memory(&image, png, len));
	REQUIRE((int) image.width == side && (int) image.height == side);
	image.format = PNG_FORMAT_GRAY;
	pixels = malloc(PNG_IMAGE_SIZE(image));
	REQUIRE(pixels != NULL);
	REQUIRE(png_image_finish_read(&image, NULL, pixels, 0, NULL));
	for (y = 0; y < side; y++)
		for (x = 0; x < side; x++)
			REQUIRE(pixels[y * side + x] ==
					(qr_dark_at(qr, margin, y / scale, x / scale) ? 0 : 255));
	free(pixels);
	png_image_free(&image);
}

/* Render the PNG, with or without a limit, and check what comes back. */
static void
fuzz_png(const wg_qr *qr, int scale, int margin, size_t limit)
{
	unsigned char *png = NULL;
	size_t		len = 0;
	wg_qr_status st = wg_qr_render_png(qr, scale, margin, limit, &png, &len);

	if (st == WG_QR_TOO_LARGE)
	{
		REQUIRE(limit != SIZE_MAX && png == NULL);
		return;
	}
	REQUIRE(st == WG_QR_OK && len <= limit);
	check_png(qr, png, len, scale, margin);
	free(png);
}

/* Render the SVG and the terminal text; check their shape. */
static void
fuzz_text_forms(const wg_qr *qr, int scale, int margin, size_t limit)
{
	char	   *out = NULL;
	size_t		len = 0;
	int			side = qr->size + 2 * margin;
	size_t		lines = 1;
	size_t		i;
	wg_qr_status st;

	st = wg_qr_render_svg(qr, scale, margin, limit, &out, &len);
	REQUIRE(st == WG_QR_OK || (st == WG_QR_TOO_LARGE && out == NULL));
	if (st == WG_QR_OK)
	{
		REQUIRE(strlen(out) == len && len <= limit);
		REQUIRE(strncmp(out, "<svg ", 5) == 0);
		REQUIRE(strcmp(out + len - 9, "\"/></svg>") == 0);
		free(out);
	}

	out = NULL;
	st = wg_qr_render_text(qr, margin, limit, &out, &len);
	REQUIRE(st == WG_QR_OK || (st == WG_QR_TOO_LARGE && out == NULL));
	if (st == WG_QR_OK)
	{
		REQUIRE(strlen(out) == len && len <= limit);
		for (i = 0; i < len; i++)
			lines += out[i] == '\n';
		REQUIRE(lines == (size_t) (side + 1) / 2);
		free(out);
	}
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * One input: byte 0 picks the parameters, the rest is encoded.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wg_qr		qr;
	int			scale;
	int			margin;
	size_t		limit;
	size_t		len;
	wg_qr_status st;

	if (size < 1)
		return 0;
	scale = 1 + (data[0] & 1);
	margin = (data[0] >> 1) & 7;
	/* one input in four: a limit from 0 to 1020 bytes */
	limit = (data[0] >> 4) < 4 ? (size_t) (data[0] >> 4) * 255 +
		(size > 1 ? data[1] : 0) : SIZE_MAX;
	data++;
	len = size - 1;

	st = wg_qr_encode((const char *) data, len, &qr);
	if (len == 0 || len > WG_QR_MAX_BYTES)
	{
		REQUIRE(st == (len == 0 ? WG_QR_EMPTY : WG_QR_TOO_LONG));
		REQUIRE(qr.modules == NULL);
		return 0;
	}
	REQUIRE(st == WG_QR_OK);
	REQUIRE(qr.level == expected_level(len));
	REQUIRE(qr.version >= 1 && qr.version <= 40);
	REQUIRE(qr.level == 'L' || qr.version <= WG_QR_COMFORT_VERSION);
	REQUIRE(qr.size == 17 + 4 * qr.version);

	fuzz_png(&qr, scale, margin, limit);
	fuzz_text_forms(&qr, scale, margin, limit);
	wg_qr_free(&qr);
	return 0;
}
