#!/bin/bash
# What usage and events cost, in a throwaway cluster, each against a
# baseline measured in the same run (medians of ROUNDS rounds):
#
#	1. the event log's cost on wg_create_peer: PEERS creations in one
#	   statement, and one creation per transaction (a procedure committing
#	   after each: the event's id slot and NOTIFY at every commit), with
#	   the event triggers enabled against disabled;
#	2. one traffic sample of SAMPLE peers (the statement src/worker/stats.c
#	   runs, fed the counters a dump would give: bench/usage/sample_*.sql)
#	   with traffic changing on every peer, then on 1 % of them: its
#	   duration and the WAL it writes, as wgpeer 0.1 wrote it (every row
#	   locked) against this version without and with the hourly usage
#	   history;
#	3. the worker's watch pass after that sample (wg_watch_peers(): presence,
#	   expiry notices, quotas) with a quota on every peer.
#
# Run as root after `make install`:  bash bench/usage.sh
# (PG_BIN=dir to use another installation; PEERS, SAMPLE, ROUNDS to size;
# EVENTS_ONLY=1 for part 1 alone).  Part 1 is measured in the backend's
# CPU time.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. test/cluster.sh

ROUNDS=${ROUNDS:-5}
PEERS=${PEERS:-5000}
SAMPLE=${SAMPLE:-10000}
TMP=$(mktemp -d /tmp/wgpeer-bench-usage.XXXXXX)
trap 'cluster_stop; rm -rf "$TMP"' EXIT
# The interfaces exist only in the database: the worker serves another
# database, so that it does not retry them while the figures are taken.
cluster_start "$TMP/pg" "wgpeer.stats_interval = 0" "autovacuum = off" \
	"wgpeer.database = 'template1'"
q() { cluster_psql -At "$@"; }

q >/dev/null <<EOF
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('wgbs', 'vpn.example.com:51821', '10.81.0.1/16');
-- one creation per transaction, n times; returns milliseconds
CREATE PROCEDURE create_one_by_one(n int, iface text, INOUT ms float8 DEFAULT NULL)
LANGUAGE plpgsql AS \$\$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	FOR i IN 1 .. n LOOP
		PERFORM wgpeer.wg_create_peer('one-' || i, interface => iface);
		COMMIT;
	END LOOP;
	ms := 1000 * extract(epoch FROM clock_timestamp() - t0);
END
\$\$;
EOF

# events on|off: the peer event triggers
events() {
	local how=ENABLE
	[ "$1" = on ] || how=DISABLE
	q -c "ALTER TABLE wgpeer.peer $how TRIGGER peer_created_event;
	      ALTER TABLE wgpeer.peer $how TRIGGER peer_changed_event" >/dev/null
}
# usage on|off: the usage history triggers on peer_traffic
usage() {
	local how=ENABLE
	[ "$1" = on ] || how=DISABLE
	q -c "ALTER TABLE wgpeer.peer_traffic $how TRIGGER usage_inserted;
	      ALTER TABLE wgpeer.peer_traffic $how TRIGGER usage_updated" >/dev/null
}
# a new interface for each measurement (NAME PREFIX): peers accumulate
# as on a real server, and no table is ever analyzed while empty (whose
# statistics would then make the planner scan peer for each creation)
new_interface() {
	q -c "SELECT name FROM wgpeer.wg_add_interface('$1', 'vpn.example.com:51820',
	      '$2')" >/dev/null
}
# ms of one statement, timed in the server
timed() {
	q -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN $1;
	      RAISE NOTICE 'ms=%', 1000 * extract(epoch FROM clock_timestamp() - t0); END \$\$" 2>&1 |
		sed -n 's/.*ms=//p'
}

# CPU ms of one statement in the backend (log_statement_stats): what the
# other jobs on a loaded machine do not change
cpu_ms() {
	PGOPTIONS='-c log_statement_stats=on -c client_min_messages=log' \
		q -c "$1" 2>&1 >/dev/null | cpu_us | tail -n 1 | awk '{ print $1 / 1000 }'
}

echo "== 1. the event log's cost on wg_create_peer ($PEERS peers, $ROUNDS rounds, CPU)"
for r in $(seq "$ROUNDS"); do
	k=0
	for mode in off on; do
		events "$mode"
		new_interface "wgbb$r$mode" "10.$((100 + 4 * r + k)).0.1/16"
		cpu_ms "SELECT count(*) FROM generate_series(1, $PEERS) g,
		        wgpeer.wg_create_peer('bulk-' || g, interface => 'wgbb$r$mode')" >>"$TMP/bulk.$mode"
		new_interface "wgbo$r$mode" "10.$((101 + 4 * r + k)).0.1/16"
		cpu_ms "CALL create_one_by_one(1000, 'wgbo$r$mode')" >>"$TMP/one.$mode"
		k=$((k + 2))
	done
done
events on
test "$(q -c "SELECT count(*) FROM wgpeer.event e JOIN wgpeer.peer p USING (peer_id)
              WHERE e.kind = 'created' AND p.interface = 'wgbo${ROUNDS}on'")" = 1000 ||
	{ echo "the last round wrote no events" >&2; exit 1; }
bulk_off=$(median <"$TMP/bulk.off")
bulk_on=$(median <"$TMP/bulk.on")
one_off=$(median <"$TMP/one.off")
one_on=$(median <"$TMP/one.on")
# the ratio of each round's pair (off, then on, one after the other): less
# sensitive to the machine's load drifting over the run than the ratio of
# the medians
pair_ratio() { paste "$TMP/$1.off" "$TMP/$1.on" | awk '{ print $2 / $1 }' | median | awk '{ printf "%.2f", $1 }'; }
bulk_pairs=$(pair_ratio bulk)
one_pairs=$(pair_ratio one)

# the figures of part 1 (CPU ms, medians), and with EVENTS_ONLY=1 nothing else
events_table() {
	printf '%-58s %12s %12s %7s\n' "CPU, medians of $ROUNDS rounds" "events off" "events on" "ratio"
	printf '%-58s %9.0f ms %9.0f ms %7s\n' "wg_create_peer x $PEERS, one statement" \
		"$bulk_off" "$bulk_on" "$(ratio "$bulk_on" "$bulk_off")"
	printf '%-58s %9.0f ms %9.0f ms %7s\n' "wg_create_peer x 1000, one transaction each" \
		"$one_off" "$one_on" "$(ratio "$one_on" "$one_off")"
	printf '%-58s %30s %7.2f\n' "  median of the rounds' own ratios: one statement" "" "$bulk_pairs"
	printf '%-58s %30s %7.2f\n' "  median of the rounds' own ratios: one transaction each" "" "$one_pairs"
	echo "(load average $(load))"
	bench_record "\`wg_create_peer\` x $PEERS, one statement, event log on / off, CPU (usage.sh)" \
		"$bulk_on ms" "$bulk_off ms (event triggers disabled)" \
		"$(ratio "$bulk_on" "$bulk_off")x (rounds' own: ${bulk_pairs}x)"
	bench_record "\`wg_create_peer\` x 1000, a transaction each, event log on / off, CPU (usage.sh)" \
		"$one_on ms" "$one_off ms (event triggers disabled)" \
		"$(ratio "$one_on" "$one_off")x (rounds' own: ${one_pairs}x)"
}
if [ "${EVENTS_ONLY:-0}" = 1 ]; then
	events_table
	exit 0
fi

echo "== 2. one traffic sample of $SAMPLE peers ($ROUNDS rounds)"
q >/dev/null <<EOF
SELECT count(*) FROM generate_series(1, $SAMPLE) g,
	wgpeer.wg_create_peer('sample-' || g, interface => 'wgbs');
UPDATE wgpeer.peer SET status = 'active' WHERE interface = 'wgbs';
-- what the last dump of the device said, per peer
CREATE TABLE dump AS
	SELECT public_key, '192.0.2.1:' || (1024 + row_number() OVER ()) AS endpoint,
	       host(address) || '/32' AS allowed_ips, now() AS latest_handshake,
	       0::bigint AS rx_bytes, 0::bigint AS tx_bytes, 0 AS persistent_keepalive
	FROM wgpeer.peer WHERE interface = 'wgbs';
EOF
# sample SHARE VARIANT: traffic on SHARE percent of the peers, then one
# sample: VARIANT 0.1 is the statement of wgpeer 0.1's worker without the
# usage history, now this version's statement without it, usage this
# version as it ships (bench/usage/sample_*.sql); prints "ms wal_bytes"
sample() {
	local sql=now
	[ "$2" != 0.1 ] || sql=0.1
	q -c "UPDATE dump SET rx_bytes = rx_bytes + 1500, tx_bytes = tx_bytes + 700
	      WHERE $1 = 100 OR abs(hashtext(public_key)) % 100 < $1" >/dev/null
	if [ "$2" = usage ]; then usage on; else usage off; fi
	{
		echo "SELECT pg_current_wal_insert_lsn() AS lsn \gset"
		echo "SELECT clock_timestamp() AS t0 \gset"
		cat "bench/usage/sample_$sql.sql"
		echo "SELECT round(1000 * extract(epoch FROM clock_timestamp() - :'t0'::timestamptz), 1)
		      || ' ' || pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn');"
	} | q | tail -n 1
}
# the first sample inserts every row: not the steady state
sample 100 usage >/dev/null
for r in $(seq "$ROUNDS"); do
	for share in 100 1; do
		for variant in 0.1 now usage; do
			sample "$share" "$variant" >>"$TMP/sample.$share.$variant"
		done
	done
done
usage on
test "$(q -c "SELECT count(*) FROM wgpeer.peer_usage")" = "$SAMPLE" ||
	{ echo "the usage history has not one row per peer" >&2; exit 1; }

echo "== 3. the watch pass with a quota on each of $SAMPLE peers"
q -c "SELECT count(wgpeer.wg_set_peer_quota(peer_id, 1000000000))
      FROM wgpeer.peer WHERE interface = 'wgbs'" >/dev/null
for r in $(seq "$ROUNDS"); do
	timed "PERFORM wgpeer.wg_watch_peers()" >>"$TMP/watch"
done
watch_ms=$(median <"$TMP/watch")

echo
echo "== medians of $ROUNDS rounds"
events_table
printf '%-58s %12s %12s %12s %7s\n' "one traffic sample of $SAMPLE peers" \
	"0.1" "this version" "+ usage" "ratio"
for share in 100 1; do
	for what in duration WAL; do
		col=1 unit=ms scale=1
		[ "$what" = duration ] || { col=2 unit=kB scale=1024; }
		vals=()
		for variant in 0.1 now usage; do
			vals+=("$(cut -d ' ' -f $col <"$TMP/sample.$share.$variant" | median |
				awk -v s=$scale '{ printf "%.1f", $1 / s }')")
		done
		printf '%-58s %9s %s %9s %s %9s %s %7s\n' "traffic on $share % of them: $what" \
			"${vals[0]}" "$unit" "${vals[1]}" "$unit" "${vals[2]}" "$unit" \
			"$(ratio "${vals[2]}" "${vals[0]}")"
	done
done
printf '%-58s %9.1f ms\n' "wg_watch_peers() with $SAMPLE quotas" "$watch_ms"
