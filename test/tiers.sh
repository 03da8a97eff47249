# test/tiers.sh: test/run.sh's tiers, sourced.  A tier is a list of
# suites; each suite's output is shown as it runs, and the tier ends with
# one line that adds up what its suites reported:
#	tier NAME                 start tier NAME
#	suite LABEL COMMAND...    run COMMAND (a suite) in the current tier;
#	                          its "N passed, N failed" lines (test/tap.sh's
#	                          tap_summary, the unit tests) and pg_regress's
#	                          "All N tests passed" / "N of M tests failed"
#	                          are added up; a suite that prints none counts
#	                          as one check, passed when it exited 0.  A
#	                          failing suite does not stop the tier: the
#	                          others still run, so that one run shows every
#	                          failure
#	tier_end                  print "== tier NAME: N passed, N failed
#	                          (S suites, F failed: ...; T s)"; false when
#	                          any suite failed
TIER_NAME=
TIER_START=0
TIER_PASSED=0
TIER_FAILED=0
TIER_SUITES=0
TIER_BROKEN=()

tier() {
	TIER_NAME=$1
	TIER_START=$SECONDS
	TIER_PASSED=0
	TIER_FAILED=0
	TIER_SUITES=0
	TIER_BROKEN=()
	echo "== tier $TIER_NAME"
}

# suite_counts LOG: "PASSED FAILED" from a suite's output
suite_counts() {
	awk '
		match($0, /[0-9]+ passed, [0-9]+ failed/) {
			split(substr($0, RSTART, RLENGTH), w, " ")
			p += w[1]; f += w[3]; seen = 1
		}
		/^[# ]*All [0-9]+ tests passed/ {
			for (i = 1; i <= NF; i++) if ($i == "All") { p += $(i + 1); seen = 1 }
		}
		/^[# ]*[0-9]+ of [0-9]+ tests failed/ {
			for (i = 1; i <= NF; i++) if ($i == "of") { f += $(i - 1); p += $(i + 1) - $(i - 1); seen = 1 }
		}
		END { if (seen) print p + 0, f + 0; else print "-" }' "$1"
}

suite() {
	local label=$1 log rc counts t=$SECONDS
	shift
	log=$(mktemp /tmp/wgpeer-suite.XXXXXX)
	echo "-- $label"
	{
		rc=0
		"$@" 2>&1 || rc=$?
		echo "$rc" >"$log.rc"
	} | tee "$log"
	rc=$(cat "$log.rc")
	counts=$(suite_counts "$log")
	rm -f "$log" "$log.rc"
	TIER_SUITES=$((TIER_SUITES + 1))
	if [ "$counts" = - ]; then
		if [ "$rc" -eq 0 ]; then counts="1 0"; else counts="0 1"; fi
	elif [ "$rc" -ne 0 ] && [ "${counts#* }" = 0 ]; then
		# it failed without a failed check (set -e, a crash): one more
		counts="${counts% *} 1"
	fi
	TIER_PASSED=$((TIER_PASSED + ${counts% *}))
	TIER_FAILED=$((TIER_FAILED + ${counts#* }))
	if [ "$rc" -ne 0 ]; then
		TIER_BROKEN+=("$label")
		echo "-- FAILED: $label (exit $rc, $((SECONDS - t)) s)"
	else
		echo "-- ok: $label ($((SECONDS - t)) s)"
	fi
	return 0
}

tier_end() {
	local broken=
	[ ${#TIER_BROKEN[@]} -eq 0 ] || broken=", failed: $(printf '%s; ' "${TIER_BROKEN[@]}" | sed 's/; $//')"
	echo "== tier $TIER_NAME: $TIER_PASSED passed, $TIER_FAILED failed ($TIER_SUITES suites$broken; $((SECONDS - TIER_START)) s)"
	[ ${#TIER_BROKEN[@]} -eq 0 ]
}
