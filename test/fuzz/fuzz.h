/*
 * fuzz.h: what the libFuzzer targets of test/fuzz share.
 *
 * REQUIRE(cond) checks an invariant of the code under test: when it does
 * not hold, the target names the file, line and condition and aborts, so
 * libFuzzer keeps the input that broke it (a crash alone would miss a
 * wrong answer).
 */
#ifndef WGPEER_FUZZ_H
#define WGPEER_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define REQUIRE(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

#endif							/* WGPEER_FUZZ_H */
