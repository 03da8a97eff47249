/*
 * helpers.h
 *		What the C test drivers and benchmarks share: dying with a message
 *		and a monotonic clock.
 *
 * Header-only (static inline), so that each driver is still one source
 * file linked with the pure C layers it tests.
 */
#ifndef WGPEER_TEST_HELPERS_H
#define WGPEER_TEST_HELPERS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* glibc's name of the running program (errno.h declares it under _GNU_SOURCE) */
extern char *program_invocation_short_name;

/*
 * Print "program: what: detail" (detail may be NULL) and exit 1.
 */
static inline void
die(const char *what, const char *detail)
{
	fprintf(stderr, "%s: %s%s%s\n", program_invocation_short_name, what,
			detail ? ": " : "", detail ? detail : "");
	exit(1);
}

/*
 * Milliseconds on the monotonic clock.
 */
static inline double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#endif							/* WGPEER_TEST_HELPERS_H */
