#!/bin/bash
# bench/fuzz.sh [NAME...]: run each libFuzzer target (test/fuzz/fuzz_NAME,
# all of them by default) for FUZZ_RUNS inputs (default 10 million) from
# its seed corpus, FUZZ_JOBS targets at a time (default: one per CPU), and
# print per target the inputs executed, inputs per second, crashes and
# seconds, then the totals.  The goal is 0 crashes.
#
# libFuzzer stops at the first crash (a sanitizer report or a broken
# invariant); the target is then started again on the corpus it has grown,
# until it has executed FUZZ_RUNS inputs in all, so every crash is counted
# and the run still reaches its count; after 10 crashes a target stops.
# Reproducers are kept in FUZZ_OUT (default a new /tmp/wgpeer-fuzzbench.*
# directory, named at the end): replay one with
# "test/fuzz/fuzz_NAME FILE".
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${FUZZ_RUNS:-10000000}
JOBS=${FUZZ_JOBS:-$(nproc)}
MAX_CRASHES=10
if [ $# -gt 0 ]; then
	NAMES=("$@")
else
	NAMES=()
	for f in test/fuzz/fuzz_*.c; do
		n=$(basename "$f" .c)
		NAMES+=("${n#fuzz_}")
	done
fi
OUT=${FUZZ_OUT:-$(mktemp -d /tmp/wgpeer-fuzzbench.XXXXXX)}
mkdir -p "$OUT"
make -s fuzz

# fuzz NAME: run it to RUNS inputs in all; write "executed seconds crashes"
# to $OUT/NAME.result
fuzz() {
	local name=$1 done=0 crashes=0 start end n
	local corpus=$OUT/corpus_$name log=$OUT/$name.log
	mkdir -p "$corpus"
	start=$(date +%s.%N)
	while [ "$done" -lt "$RUNS" ] && [ "$crashes" -lt "$MAX_CRASHES" ]; do
		if "test/fuzz/fuzz_$name" -runs=$((RUNS - done)) -max_len=4096 \
			-print_final_stats=1 -artifact_prefix="$OUT/$name-" \
			"$corpus" "test/fuzz/corpus_$name" >"$log" 2>&1; then
			:
		else
			crashes=$((crashes + 1))
			cp "$log" "$OUT/$name.crash$crashes.log"
		fi
		n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		done=$((done + ${n:-0}))
		# a crash before any statistics (in the seed corpus): give up
		[ -n "$n" ] || break
	done
	end=$(date +%s.%N)
	echo "$done $(echo "$end - $start" | bc) $crashes" >"$OUT/$name.result"
}

running=0
for name in "${NAMES[@]}"; do
	[ -x "test/fuzz/fuzz_$name" ] || { echo "no target test/fuzz/fuzz_$name" >&2; exit 2; }
	if [ "$running" -ge "$JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
	fuzz "$name" &
	running=$((running + 1))
done
wait

total_runs=0
total_crashes=0
total_seconds=0
printf '%-16s %12s %10s %8s %9s\n' target executions exec/s crashes seconds
for name in "${NAMES[@]}"; do
	read -r n secs crashes <"$OUT/$name.result"
	printf '%-16s %12d %10.0f %8d %9.0f\n' "fuzz_$name" "$n" \
		"$(echo "$n / $secs" | bc -l)" "$crashes" "$secs"
	total_runs=$((total_runs + n))
	total_crashes=$((total_crashes + crashes))
	total_seconds=$(echo "$total_seconds + $secs" | bc)
done
printf '%-16s %12d %10s %8d %9.0f\n' total "$total_runs" "" "$total_crashes" \
	"$total_seconds"
echo "seconds are each target's wall time, $JOBS at a time; logs and reproducers: $OUT"
[ "$total_crashes" -eq 0 ]
