# What the benchmarks share.  Source it, then:
#   median          the median of the numbers on stdin, one per line
#                   ("nan" for none)
#   ratio A B       A / B with two decimals ("nan" when B is 0)

median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }
#   cpu_us          with PGOPTIONS='-c log_statement_stats=on -c
#                   client_min_messages=log' on a psql session, its stderr
#                   on stdin: the CPU microseconds (user + system) of each
#                   statement the session ran, one a line, in order; what
#                   a loaded machine's scheduling does not change
#   load            the load average, for the record

cpu_us() {
	awk '/^!\t[0-9.]+ s user, [0-9.]+ s system, / {
		printf "%.1f\n", ($2 + $5) * 1e6 }'
}

load() { cut -d' ' -f1-3 /proc/loadavg; }

# bench_record MEASURE FIGURE BASELINE RATIO: write the row of MEASURE in
# the generated table of bench/README.md (between its two "bench-table"
# markers) with today's date and this machine, replacing the row a
# previous run wrote; the other rows stay.  Only the scripts write there,
# so the table says what they last measured.  BENCH_RECORD=0 skips it.
bench_record() {
	[ "${BENCH_RECORD:-1}" = 1 ] || return 0
	local readme machine
	readme="$(dirname "${BASH_SOURCE[0]}")/README.md"
	machine="$(nproc) CPUs $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1 |
		sed 's/  */ /g'), load $(cut -d' ' -f1 /proc/loadavg)"
	grep -q '^<!-- bench-table begin' "$readme" || return 0
	awk -v m="$1" -v row="| $1 | $2 | $3 | $4 | $(date -u +%F) | $machine |" '
		/^<!-- bench-table end/ { if (!done) print row; done = 1 }
		index($0, "| " m " |") == 1 { if (!done) print row; done = 1; next }
		{ print }' "$readme" >"$readme.tmp" && mv "$readme.tmp" "$readme"
}
