# Test results for the shell tests, one line each ("ok - ..." or
# "not ok - ..."), counted.  Source it, then:
#   check DESCRIPTION COMMAND...   one result from COMMAND's status
#   wait_until SECONDS COMMAND...  poll COMMAND every 0.2 s until it
#                                  succeeds; false (with a note) when
#                                  SECONDS pass first
#   tap_summary                    print "N passed, N failed"; false when
#                                  anything failed
PASSED=0
FAILED=0

ok() {
	echo "ok - $*"
	PASSED=$((PASSED + 1))
}

not_ok() {
	echo "not ok - $*"
	FAILED=$((FAILED + 1))
}

check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}

wait_until() {
	local limit=$1 start=$SECONDS
	shift
	until "$@"; do
		if [ $((SECONDS - start)) -ge "$limit" ]; then
			echo "   (gave up after ${limit}s waiting for: $*)"
			return 1
		fi
		sleep 0.2
	done
}

tap_summary() {
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
}
