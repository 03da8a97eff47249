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
