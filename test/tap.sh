# Test results for the shell suites, one line each ("ok - ..." or
# "not ok - ..."), counted: the one assertion library of test/*.sh,
# test/vm/*.sh, demo.sh and the benchmarks' polls.  Source it, then:
#   check DESCRIPTION COMMAND...   one result from COMMAND's status
#   same DESCRIPTION EXPECTED ACTUAL
#                                  one result: the two strings are equal;
#                                  both are shown when they are not
#   none DESCRIPTION COMMAND...    one result: COMMAND prints nothing (on
#                                  stdout or stderr, whatever its status);
#                                  what it printed is shown when it does
#   ok DESCRIPTION                 one passed result, decided by the caller
#   not_ok DESCRIPTION             one failed result, decided by the caller
#   same_files FILE FILE           a condition for check: the files are
#                                  equal; shows the start of the difference
#                                  when they are not
#   wait_until SECONDS COMMAND...  poll COMMAND every $WAIT_UNTIL_STEP
#                                  seconds (default 0.2) until it succeeds;
#                                  false (with a note) when SECONDS pass
#                                  first.  A condition for check, or a
#                                  plain wait that fails the script under
#                                  set -e
#   tap_summary [NAME]             print "[NAME: ]N passed, N failed"; false
#                                  when anything failed, so a suite ends
#                                  with it
# None of the results stops the suite: check, same and none return true
# either way, and tap_summary decides the exit status.
PASSED=0
FAILED=0
WAIT_UNTIL_STEP=${WAIT_UNTIL_STEP:-0.2}

# ok DESCRIPTION: count a passed result and print it
ok() {
	echo "ok - $*"
	PASSED=$((PASSED + 1))
}

# not_ok DESCRIPTION: count a failed result and print it
not_ok() {
	echo "not ok - $*"
	FAILED=$((FAILED + 1))
}

# check DESCRIPTION COMMAND...: passed when COMMAND succeeds
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}

# same DESCRIPTION EXPECTED ACTUAL: passed when the strings are equal;
# otherwise both are printed, indented, under the "not ok" line
same() {
	if [ "$2" = "$3" ]; then
		ok "$1"
		return
	fi
	not_ok "$1"
	echo "   want:"
	printf '%s\n' "$2" | sed 's/^/      /'
	echo "   got:"
	printf '%s\n' "$3" | sed 's/^/      /'
}

# none DESCRIPTION COMMAND...: passed when COMMAND prints nothing, on
# stdout or stderr; its exit status does not matter.  Otherwise what it
# printed follows the "not ok" line, indented
none() {
	local what=$1 out
	shift
	out=$("$@" 2>&1 || true)
	if [ -z "$out" ]; then
		ok "$what"
		return
	fi
	not_ok "$what"
	echo "   printed:"
	printf '%s\n' "$out" | sed 's/^/      /'
}

# same_files FILE FILE: true when the two files are equal; otherwise the
# first lines of their diff, indented, and false.  Each file is read once,
# so either may be a process substitution.
same_files() {
	local d
	d=$(diff "$1" "$2") && return 0
	printf '%s\n' "$d" | head -n 10 | sed 's/^/   /'
	return 1
}

# wait_until SECONDS COMMAND...: run COMMAND every $WAIT_UNTIL_STEP seconds
# until it succeeds (true) or SECONDS have passed (a note, and false)
wait_until() {
	local limit=$1 start=$SECONDS
	shift
	until "$@"; do
		if [ $((SECONDS - start)) -ge "$limit" ]; then
			echo "   (gave up after ${limit}s waiting for: $*)"
			return 1
		fi
		sleep "$WAIT_UNTIL_STEP"
	done
}

# tap_summary [NAME]: print the counts, prefixed with NAME when given;
# false when any result failed
tap_summary() {
	echo "${1:+$1: }$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
}
