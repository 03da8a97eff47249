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
