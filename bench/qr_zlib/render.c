/*
 * render.c
 *		bench/qr_zlib.sh's timer: renders N PNGs of 64 client configs with
 *		src/core/qr.c as compiled (the script builds one copy per zlib
 *		memLevel) and prints the CPU microseconds per PNG and its mean size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/qr.h"

#define CONFIGS 64

/* CPU seconds this process used */
static double
cpu_seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	int			n = argc > 1 ? atoi(argv[1]) : 500;
	int			scale = argc > 2 ? atoi(argv[2]) : 4;
	wg_qr		qrs[CONFIGS];
	char		cfg[1024];
	size_t		total = 0;
	double		t0;

	srand(1);
	for (int i = 0; i < CONFIGS; i++)
	{
		/* shaped like wg_peer_config()'s output (keys are random text) */
		snprintf(cfg, sizeof(cfg),
				 "[Interface]\nPrivateKey = %020d%020d%02dAA=\n"
				 "Address = 10.10.0.%d/32, fd00:10:10::%x/128\n"
				 "DNS = 1.1.1.1, 2606:4700:4700::1111\n\n"
				 "[Peer]\nPublicKey = %020d%020d%02dBB=\n"
				 "PresharedKey = %020d%020d%02dCC=\n"
				 "Endpoint = vpn.example.com:51820\n"
				 "AllowedIPs = 0.0.0.0/0, ::/0\nPersistentKeepalive = 25\n",
				 rand(), rand(), i, i + 2, i + 2, rand(), rand(), i,
				 rand(), rand(), i);
		if (wg_qr_encode(cfg, strlen(cfg), &qrs[i]) != WG_QR_OK)
			return 1;
	}
	t0 = cpu_seconds();
	for (int i = 0; i < n; i++)
	{
		unsigned char *out;
		size_t		len;

		if (wg_qr_render_png(&qrs[i % CONFIGS], scale, 4, 1 << 20, &out, &len) != WG_QR_OK)
			return 2;
		total += len;
		free(out);
	}
	printf("%.1f %.1f\n", (cpu_seconds() - t0) / n * 1e6, (double) total / n);
	return 0;
}
