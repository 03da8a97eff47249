#!/bin/bash
# Build the libFuzzer targets and give each a short smoke run: a fixed
# number of inputs or FUZZ_SECONDS (default 5), whichever comes first,
# starting from its seed corpus (test/fuzz/corpus_<name>/).  New inputs go
# to a scratch directory; a crash, a broken invariant, a sanitizer report
# or a leak fails the run and leaves the reproducer in test/fuzz/
# (crash-*, leak-*, timeout-*, oom-*): replay it with
# "test/fuzz/fuzz_<name> test/fuzz/crash-...".  bench/fuzz.sh runs the
# same targets for 10 million inputs each.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_EACH=${FUZZ_SECONDS:-5}
RUNS=${FUZZ_RUNS:-200000}
make -s fuzz

scratch=$(mktemp -d /tmp/wgpeer-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
for target in test/fuzz/fuzz_*.c; do
	name=$(basename "$target" .c)
	mkdir -p "$scratch/$name"
	# 4096 bytes reach past the 2953 a QR code holds and hold a dump
	# datagram of a dozen peers
	"test/fuzz/$name" -max_total_time="$SECONDS_EACH" -runs="$RUNS" \
		-max_len=4096 -artifact_prefix=test/fuzz/ -print_final_stats=1 \
		"$scratch/$name" "test/fuzz/corpus_${name#fuzz_}" 2>"$scratch/$name.log" || {
		tail -n 40 "$scratch/$name.log"
		exit 1
	}
	grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$scratch/$name.log" |
		sed "s/^/$name: /"
done
