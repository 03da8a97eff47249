#!/bin/bash
# Key pairs per second: wg_genkey() + wg_pubkey() in SQL against the seed's
# `wg genkey | wg pubkey` pipeline (two processes per pair), in one run.
# Prints the median of ROUNDS rounds for each, and the ratio.
# Run as root after `make install`:  bash bench/keys.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. test/cluster.sh

ROUNDS=${ROUNDS:-5}
SQL_PAIRS=${SQL_PAIRS:-20000}
SHELL_PAIRS=${SHELL_PAIRS:-300}
TMP=$(mktemp -d /tmp/wgpeer-bench.XXXXXX)
trap 'cluster_stop; rm -rf "$TMP"' EXIT
cluster_start "$TMP/pg"
cluster_psql -c "CREATE EXTENSION wgpeer" >/dev/null


sql_rates=()
shell_rates=()
for _ in $(seq "$ROUNDS"); do
	s=$(cluster_psql -At -c "
		SELECT $SQL_PAIRS / extract(epoch FROM clock_timestamp() - t0)
		FROM (SELECT clock_timestamp() AS t0) s,
		     LATERAL (SELECT count(wgpeer.wg_pubkey(wgpeer.wg_genkey()))
		              FROM generate_series(1, $SQL_PAIRS)) k")
	sql_rates+=("$s")
	start=$(date +%s.%N)
	for _ in $(seq "$SHELL_PAIRS"); do
		wg genkey | tee "$TMP/priv" | wg pubkey >/dev/null
	done
	end=$(date +%s.%N)
	shell_rates+=("$(echo "$SHELL_PAIRS / ($end - $start)" | bc -l)")
done
sql_med=$(printf '%s\n' "${sql_rates[@]}" | median)
shell_med=$(printf '%s\n' "${shell_rates[@]}" | median)
printf 'key pairs/s, wg_genkey()+wg_pubkey() in SQL : %10.0f  (median of %d rounds of %d)\n' \
	"$sql_med" "$ROUNDS" "$SQL_PAIRS"
printf 'key pairs/s, wg genkey | wg pubkey (seed)   : %10.0f  (median of %d rounds of %d)\n' \
	"$shell_med" "$ROUNDS" "$SHELL_PAIRS"
printf 'ratio                                       : %10.1fx\n' \
	"$(echo "$sql_med / $shell_med" | bc -l)"
