/*
 * qr.c
 *		SQL functions returning the QR code of a client config as a PNG
 *		(bytea), an SVG or UTF-8 half blocks for psql.
 *
 * The work is done by the pure core in core/qr.c, which returns a status and
 * malloc'd memory.  This file checks the arguments, frees the core's
 * memory before anything here can raise an error, and turns each status
 * into an ereport.  No PostgreSQL function is called from inside libpng.
 */
#include "sql/sql.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "core/qr.h"

PG_FUNCTION_INFO_V1(wg_qr_png);
PG_FUNCTION_INFO_V1(wg_qr_svg);
PG_FUNCTION_INFO_V1(wg_qr_text);

/* The most a varlena result can carry: the core never renders more. */
#define QR_MAX_RESULT ((size_t) (MaxAllocSize - VARHDRSZ))

static void report_failure(wg_qr_status status, size_t len)
			pg_attribute_noreturn();

/*
 * Refuse a scale or margin outside the bounds the core accepts, naming
 * the value, before any work is done.
 */
static void
check_scale_margin(int32 scale, int32 margin)
{
	if (scale < WG_QR_SCALE_MIN || scale > WG_QR_SCALE_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("QR scale %d is out of range", scale),
				 errdetail("The scale is the number of pixels per module and must be between %d and %d.",
						   WG_QR_SCALE_MIN, WG_QR_SCALE_MAX),
				 errhint("4 suits most screens; use 8 or more for print.")));
	if (margin < WG_QR_MARGIN_MIN || margin > WG_QR_MARGIN_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("QR margin %d is out of range", margin),
				 errdetail("The margin is the quiet zone around the code in modules and must be between %d and %d.",
						   WG_QR_MARGIN_MIN, WG_QR_MARGIN_MAX),
				 errhint("The QR standard asks for a margin of %d.",
						 WG_QR_QUIET_ZONE)));
}

/*
 * Report a failed encoding or rendering.  len is the size of the config
 * in bytes, for the message about configs too long for any QR code.
 */
static void
report_failure(wg_qr_status status, size_t len)
{
	switch (status)
	{
		case WG_QR_EMPTY:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot make a QR code of an empty config"),
					 errdetail("The config is the empty string."),
					 errhint("Pass the text wg_peer_config() returns.")));
			break;
		case WG_QR_TOO_LONG:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("config is too long for a QR code"),
					 errdetail("The config is %zu bytes; a QR code holds at most %d bytes.",
							   len, WG_QR_MAX_BYTES),
					 errhint("Shorten the config (fewer DNS servers or AllowedIPs), or hand it over as a file.")));
			break;
		case WG_QR_TOO_LARGE:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("QR image is too large"),
					 errdetail("%s.", wg_qr_status_message(status)),
					 errhint("Use a smaller scale or margin.")));
			break;
		case WG_QR_NO_MEMORY:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("Failed while making a QR code of %zu bytes.", len),
					 errhint("Retry when the server has more free memory.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("could not make a QR code"),
					 errdetail("%s.", wg_qr_status_message(status)),
					 errhint("Check the server's libqrencode and libpng.")));
	}
	pg_unreachable();
}

/*
 * Encode a config into qr, in UTF-8 whatever the database encoding (the
 * WireGuard apps read UTF-8).  Raises an error with nothing allocated by
 * the core; on return the caller owns qr.
 */
static void
encode_config(text *config, wg_qr *qr)
{
	int			len = VARSIZE_ANY_EXHDR(config);
	char	   *data = pg_server_to_any(VARDATA_ANY(config), len, PG_UTF8);
	wg_qr_status status;

	if (data != VARDATA_ANY(config))
		len = strlen(data);
	status = wg_qr_encode(data, len, qr);
	if (status != WG_QR_OK)
		report_failure(status, len);
}

/*
 * Copy a buffer from the core into a palloc'd varlena and free it.  The
 * allocation does not raise an error while the buffer is still held, so
 * it cannot leak.
 */
static struct varlena *
to_varlena(void *data, size_t len)
{
	struct varlena *result = palloc_extended(VARHDRSZ + len,
											 MCXT_ALLOC_NO_OOM);

	if (result != NULL)
	{
		SET_VARSIZE(result, VARHDRSZ + len);
		memcpy(VARDATA(result), data, len);
	}
	free(data);
	if (result == NULL)
		report_failure(WG_QR_NO_MEMORY, len);
	return result;
}

/*
 * A 1-bit grayscale PNG of the config's QR code, built in memory, as a
 * palloc'd bytea: wg_qr_png() and the redemption of a config link.
 */
bytea *
wgpeer_qr_png(text *config, int32 scale, int32 margin)
{
	wg_qr		qr;
	unsigned char *png;
	size_t		len;
	wg_qr_status status;

	check_scale_margin(scale, margin);
	encode_config(config, &qr);
	status = wg_qr_render_png(&qr, scale, margin, QR_MAX_RESULT, &png, &len);
	wg_qr_free(&qr);
	if (status != WG_QR_OK)
		report_failure(status, VARSIZE_ANY_EXHDR(config));
	return (bytea *) to_varlena(png, len);
}

/*
 * wg_qr_png(config text, scale int, margin int) returns bytea: a 1-bit
 * grayscale PNG of the config's QR code, built in memory.
 */
Datum
wg_qr_png(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(wgpeer_qr_png(PG_GETARG_TEXT_PP(0), PG_GETARG_INT32(1),
									PG_GETARG_INT32(2)));
}

/*
 * wg_qr_svg(config text, scale int, margin int) returns text: an SVG of
 * the config's QR code, scale pixels per module.
 */
Datum
wg_qr_svg(PG_FUNCTION_ARGS)
{
	text	   *config = PG_GETARG_TEXT_PP(0);
	int32		scale = PG_GETARG_INT32(1);
	int32		margin = PG_GETARG_INT32(2);
	wg_qr		qr;
	char	   *svg;
	size_t		len;
	wg_qr_status status;

	check_scale_margin(scale, margin);
	encode_config(config, &qr);
	status = wg_qr_render_svg(&qr, scale, margin, QR_MAX_RESULT, &svg, &len);
	wg_qr_free(&qr);
	if (status != WG_QR_OK)
		report_failure(status, VARSIZE_ANY_EXHDR(config));
	PG_RETURN_TEXT_P(to_varlena(svg, len));
}

/*
 * wg_qr_text(config text) returns text: the config's QR code in UTF-8
 * half blocks with the standard quiet zone, for a terminal.  Only a UTF8
 * (or SQL_ASCII) database can hold the half blocks.
 */
Datum
wg_qr_text(PG_FUNCTION_ARGS)
{
	text	   *config = PG_GETARG_TEXT_PP(0);
	int			encoding = GetDatabaseEncoding();
	wg_qr		qr;
	char	   *out;
	size_t		len;
	wg_qr_status status;

	if (encoding != PG_UTF8 && encoding != PG_SQL_ASCII)
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("wg_qr_text needs a UTF8 database"),
				 errdetail("The database encoding is %s, which has no half block characters.",
						   GetDatabaseEncodingName()),
				 errhint("Use wg_qr_png or wg_qr_svg instead.")));
	encode_config(config, &qr);
	status = wg_qr_render_text(&qr, WG_QR_QUIET_ZONE, QR_MAX_RESULT,
							   &out, &len);
	wg_qr_free(&qr);
	if (status != WG_QR_OK)
		report_failure(status, VARSIZE_ANY_EXHDR(config));
	PG_RETURN_TEXT_P(to_varlena(out, len));
}
