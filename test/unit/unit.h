/*
 * unit.h
 *		A minimal harness for the unit tests of the pure C cores.
 *
 * CHECK records a failure with its line and goes on; UNIT_DONE prints the
 * "N passed, N failed" line CI reads and returns the exit status.
 */
#ifndef WGPEER_UNIT_H
#define WGPEER_UNIT_H

#include <stdio.h>
#include <string.h>

static int	unit_passed;
static int	unit_failed;

#define CHECK(cond) \
	do { \
		if (cond) \
			unit_passed++; \
		else \
		{ \
			unit_failed++; \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		} \
	} while (0)

#define CHECK_STR(got, want) \
	do { \
		const char *g_ = (got); \
		const char *w_ = (want); \
		if (g_ && w_ && strcmp(g_, w_) == 0) \
			unit_passed++; \
		else \
		{ \
			unit_failed++; \
			fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, \
					g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
		} \
	} while (0)

#define UNIT_DONE(name) \
	(printf("%s: %d passed, %d failed\n", (name), unit_passed, unit_failed), \
	 unit_failed ? 1 : 0)

#endif							/* WGPEER_UNIT_H */
