#!/bin/bash
# Address allocation cost as the number of peers grows: the median time of
# wg_next_ip() and of a whole wg_create_peer() at 1,000 and at 100,000
# existing peers on one interface, and the same for the seed's way of
# allocating (read every used address, scan for the first gap), measured
# in the same run.  Each sample is taken in a transaction that is rolled
# back, so the peer count stays put.
# Then the first allocation after a bulk creation: BULK peers created in
# one transaction on a fresh interface, then the CPU time of the first
# wg_next_ip() in a transaction after it against the next one in another
# transaction (a normal one: the mark then being where it belongs, the
# new rows' hint bits set), ROUNDS times interleaved.
# Run as root after `make install`:  bash bench/alloc.sh
# (BULK_ONLY=1 for the bulk part alone)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. test/cluster.sh

SMALL=${SMALL:-1000}
LARGE=${LARGE:-100000}
CALLS=${CALLS:-300}
ROUNDS=${ROUNDS:-5}
BULK=${BULK:-20000}
TMP=$(mktemp -d /tmp/wgpeer-bench.XXXXXX)
trap 'cluster_stop; rm -rf "$TMP"' EXIT
cluster_start "$TMP/pg" "shared_buffers = 512MB"
cluster_psql >/dev/null <<'SQL'
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('wgbench', '192.0.2.1:51820', '10.0.0.1/14');
-- The seed's allocator: read every used address into a set, then walk the
-- range from its start to the first address not in the set.
CREATE FUNCTION seed_next_ip() RETURNS inet LANGUAGE sql AS $$
	SELECT candidate
	FROM generate_series(0, (SELECT count(*) FROM wgpeer.peer)) AS i,
	     LATERAL (SELECT '10.0.0.2'::inet + i AS candidate) c
	WHERE candidate NOT IN (SELECT address FROM wgpeer.peer
	                        WHERE interface = 'wgbench' AND status <> 'revoked')
	LIMIT 1
$$;
-- Median microseconds of CALLS calls of one statement.
CREATE FUNCTION median_us(stmt text, calls int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	d float8[] := '{}';
BEGIN
	FOR i IN 1 .. calls LOOP
		t0 := clock_timestamp();
		EXECUTE stmt;
		d := d || extract(epoch FROM clock_timestamp() - t0) * 1e6;
	END LOOP;
	RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(d) x);
END
$$;
SQL


# fill the interface up to $1 peers
fill_to() {
	cluster_psql -c "SELECT count(wgpeer.wg_create_peer('fill', interface => 'wgbench'))
	                 FROM generate_series(1, $1 - (SELECT count(*) FROM wgpeer.peer))" >/dev/null
	cluster_psql -c "VACUUM ANALYZE" >/dev/null
}

# median over ROUNDS of the per-call median of one statement (rolled back)
measure() {
	local stmt=$1 calls=$2 r out=()
	for r in $(seq "$ROUNDS"); do
		out+=("$(cluster_psql -At -c "BEGIN" \
			-c "SELECT median_us(\$q\$$stmt\$q\$, $calls)" -c "ROLLBACK")")
	done
	printf '%s\n' "${out[@]}" | median
}

declare -A result
# BULK_ONLY=1: the first allocation after a bulk creation alone
[ "${BULK_ONLY:-0}" = 1 ] || for n in "$SMALL" "$LARGE"; do
	fill_to "$n"
	result[next_$n]=$(measure "SELECT wgpeer.wg_next_ip('wgbench')" "$CALLS")
	result[create_$n]=$(measure "SELECT wgpeer.wg_create_peer('b', interface => 'wgbench')" "$CALLS")
	result[seed_$n]=$(measure "SELECT seed_next_ip()" 20)
done

row() {
	printf '%-36s %10.1f us %10.1f us %8.2fx\n' "$1" "${result[${2}_$SMALL]}" \
		"${result[${2}_$LARGE]}" "$(echo "${result[${2}_$LARGE]} / ${result[${2}_$SMALL]}" | bc -l)"
}
if [ "${BULK_ONLY:-0}" != 1 ]; then
	printf '%-36s %13s %13s %9s\n' "median per call" "$SMALL peers" "$LARGE peers" "ratio"
	row "wg_next_ip()" next
	row "wg_create_peer() (keys, row, queue)" create
	row "seed: scan all used addresses" seed
fi

# The first allocation after a bulk creation vs the next one, each in a
# transaction of its own (the first of a transaction also takes the pool
# row's lock and the transaction's id), per round on a fresh interface
# (10.(100+r).0.0/16), in CPU microseconds of the backend (each top-level
# statement's, as log_statement_stats reports it: one call is too short
# for a wall clock on a loaded machine); the session's plans are made
# first, on another interface.  The control, in the same round and the
# same shape of session: the first allocation after a creation of one
# peer on another fresh interface (10.(150+r).0.0/16): what is left of
# the first one's cost that the bulk does not cause (a session's first
# allocations on an interface cost more than the next ones whatever was
# created before).
# first_next IFACE: CPU us of the first and the next wg_next_ip() on IFACE
first_next() {
	PGOPTIONS='-c log_statement_stats=on -c client_min_messages=log' \
		cluster_psql -At -c "SELECT FROM wgpeer.wg_next_ip('wgbench')" \
		-c "BEGIN" -c "SELECT FROM wgpeer.wg_next_ip('$1')" -c "ROLLBACK" \
		-c "BEGIN" -c "SELECT FROM wgpeer.wg_next_ip('$1')" -c "ROLLBACK" \
		2>&1 >/dev/null | cpu_us | sed -n '3p; 6p' | paste -s -d ' '
}
for r in $(seq "$ROUNDS"); do
	for kind in bulk one; do
		net=$((r + 100)) n=$BULK
		[ "$kind" = bulk ] || { net=$((r + 150)); n=1; }
		cluster_psql -c "SELECT name FROM wgpeer.wg_add_interface('wg$kind$r', '192.0.2.1:51820',
		                   '10.$net.0.1/16')" >/dev/null 2>&1
		cluster_psql -c "SELECT count(wgpeer.wg_create_peer('$kind', interface => 'wg$kind$r'))
		                 FROM generate_series(1, $n)" >/dev/null
		first_next "wg$kind$r" >>"$TMP/after_$kind"
	done
done
first=$(awk '{ print $1 }' "$TMP/after_bulk" | median)
second=$(awk '{ print $2 }' "$TMP/after_bulk" | median)
control=$(awk '{ print $1 }' "$TMP/after_one" | median)
ratio_bulk=$(ratio "$first" "$second")
ratio_control=$(ratio "$first" "$control")
printf '%-36s %10.1f us %10.1f us %8.2fx\n' "after $BULK in one transaction" \
	"$first" "$second" "$ratio_bulk"
printf '%-36s %10.1f us %10.1f us %8.2fx\n' "  against the first after one peer" \
	"$first" "$control" "$ratio_control"
echo "(CPU of the first wg_next_ip() after the bulk, of the next one, ratio; then"
echo " against the first one after a creation of one peer; medians of $ROUNDS rounds;"
echo " load average $(load))"
bench_record "first \`wg_next_ip()\` after $BULK peers in one transaction, CPU (alloc.sh)" \
	"$first µs" "$second µs (the next one)" "${ratio_bulk}x"
bench_record "first \`wg_next_ip()\` after $BULK peers in one transaction vs after one peer, CPU (alloc.sh)" \
	"$first µs" "$control µs (the first after one peer)" "${ratio_control}x"
