/*
 * qr_modules.h
 *		Reading a QR matrix the way a renderer must draw it: what the QR
 *		unit test and the QR fuzzer compare every rendered pixel with.
 */
#ifndef WGPEER_TEST_QR_MODULES_H
#define WGPEER_TEST_QR_MODULES_H

#include "core/qr.h"

/*
 * Whether module (y, x) of qr, framed by a quiet zone of margin modules,
 * is dark.
 */
static inline int
qr_dark_at(const wg_qr *qr, int margin, int y, int x)
{
	y -= margin;
	x -= margin;
	if (y < 0 || x < 0 || y >= qr->size || x >= qr->size)
		return 0;
	return qr->modules[y * qr->size + x];
}

#endif							/* WGPEER_TEST_QR_MODULES_H */
