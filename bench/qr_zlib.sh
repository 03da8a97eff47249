#!/bin/bash
# The zlib memLevel src/core/qr.c gives libpng, measured: the PNG renderer
# built once with each memLevel (1, 2, 4, and zlib's default 8), timed in
# CPU per PNG by bench/qr_zlib/render.c over the same 64 client configs,
# rounds interleaved, at the default scale (4) and at scale 8.  Prints the
# median CPU microseconds and the mean PNG size of each against the
# default's.  Needs a C compiler and the libraries' headers (as the unit
# tests do), no PostgreSQL:  bash bench/qr_zlib.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=${ROUNDS:-7}
CALLS=${CALLS:-500}
LEVELS="1 2 4 8"
TMP=$(mktemp -d /tmp/wgpeer-bench-qr.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

grep -q 'png_set_compression_mem_level(png, [0-9]*);' src/core/qr.c ||
	{ echo "src/core/qr.c sets no memLevel: nothing to compare" >&2; exit 1; }
shipped=$(sed -n 's/.*png_set_compression_mem_level(png, \([0-9]*\));.*/\1/p' src/core/qr.c)
for level in $LEVELS; do
	sed "s/png_set_compression_mem_level(png, [0-9]*);/png_set_compression_mem_level(png, $level);/" \
		src/core/qr.c >"$TMP/qr_$level.c"
	cc -O2 -Isrc -o "$TMP/render_$level" bench/qr_zlib/render.c "$TMP/qr_$level.c" \
		$(pkg-config --cflags --libs libqrencode libpng)
done
for r in $(seq "$ROUNDS"); do
	for scale in 4 8; do
		for level in $LEVELS; do
			echo "$scale $level $("$TMP/render_$level" "$CALLS" "$scale")"
		done
	done
done >"$TMP/results"

printf '%-26s %14s %12s %9s %9s\n' "memLevel (qr.c ships $shipped)" "CPU per PNG" "PNG size" "CPU" "size"
for scale in 4 8; do
	base_us=$(awk -v s="$scale" '$1 == s && $2 == 8 { print $3 }' "$TMP/results" | median)
	base_size=$(awk -v s="$scale" '$1 == s && $2 == 8 { print $4 }' "$TMP/results" | median)
	for level in $LEVELS; do
		us=$(awk -v s="$scale" -v l="$level" '$1 == s && $2 == l { print $3 }' "$TMP/results" | median)
		size=$(awk -v s="$scale" -v l="$level" '$1 == s && $2 == l { print $4 }' "$TMP/results" | median)
		printf '%-26s %11.1f us %8.0f B %8sx %8sx\n' "scale $scale, memLevel $level" \
			"$us" "$size" "$(ratio "$us" "$base_us")" "$(ratio "$size" "$base_size")"
		[ "$level" != "$shipped" ] || bench_record \
			"PNG QR code, scale $scale, zlib memLevel $level: CPU / size (qr_zlib.sh)" \
			"$(printf '%.0f µs / %.0f B' "$us" "$size")" \
			"$(printf '%.0f µs / %.0f B' "$base_us" "$base_size") (memLevel 8, zlib's default)" \
			"$(ratio "$us" "$base_us")x / $(ratio "$size" "$base_size")x"
	done
done
echo "(ratios against memLevel 8, zlib's default; medians of $ROUNDS interleaved rounds of"
echo " $CALLS PNGs; load average $(load))"
