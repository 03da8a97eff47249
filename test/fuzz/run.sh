#!/bin/bash
# Build the libFuzzer targets and give each a short smoke run: a fixed
# number of inputs or FUZZ_SECONDS (default 20), whichever comes first,
# starting from its seed corpus (test/fuzz/corpus_<name>/).  New inputs go
# to a scratch directory; a crash or a leak fails the run and leaves the
# reproducer in test/fuzz/ (crash-*, leak-*).
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_EACH=${FUZZ_SECONDS:-20}
RUNS=${FUZZ_RUNS:-500000}
make -s fuzz

scratch=$(mktemp -d /tmp/wgpeer-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
for target in test/fuzz/fuzz_*.c; do
	name=$(basename "$target" .c)
	mkdir -p "$scratch/$name"
	# 3000 bytes reaches past the 2953 a QR code holds
	"test/fuzz/$name" -max_total_time="$SECONDS_EACH" -runs="$RUNS" \
		-max_len=3000 -artifact_prefix=test/fuzz/ -print_final_stats=1 \
		"$scratch/$name" "test/fuzz/corpus_${name#fuzz_}" 2>"$scratch/$name.log" || {
		tail -n 40 "$scratch/$name.log"
		exit 1
	}
	grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$scratch/$name.log" |
		sed "s/^/$name: /"
done
