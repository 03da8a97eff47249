#!/bin/bash
# Commit -> one peer on a wireguard-go device (issue 22), natively on this
# host, measured interleaved in one run:
#	1. server A: one transaction creating one peer, from just before
#	   COMMIT until a UAPI get of the device lists it, against the floor:
#	   the same peer (key, PSK, /32, keepalive) sent by one UAPI set from
#	   a C program, timed the same way (bench/uapi_latency.c);
#	2. server B, the same, while 10,000 live peers sit on ANOTHER of its
#	   interfaces (on a wireguard-go device too), against server A (none).
# Two throwaway clusters (fsync off, autovacuum on: as a server runs;
# wgpeer.batch_size 1,000, see below),
# four wireguard-go devices in a private network namespace.  Each round
# times the floor, A and B once, in an order that rotates; the first
# WARMUP rounds are dropped.  Prints medians, p99, the ratios and each
# apply worker's CPU time per commit (what the load does not change), and
# writes the two rows of bench/README.md's table (bench_record).
# Run as root after `make install`:
#	bash bench/latency.sh [ROUNDS] [OTHER_PEERS]	(defaults 200 and 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. test/cluster.sh

ROUNDS=${1:-200}
OTHER=${2:-10000}
WARMUP=10
STAGE=lat
. test/userspace.sh

S=$(($$ % 100000))
IFF=wglf$S						# the floor's device
IFA=wgla$S						# server A's device
IFB=wglb$S						# server B's measured device
IFO=wglo$S						# server B's other device, OTHER peers
CL_A=$TMP/a
CL_B=$TMP/b

# on CLUSTER_DIR COMMAND...: COMMAND against that cluster
on() {
	local dir=$1
	shift
	CLUSTER_DIR=$dir "$@"
}
stage_cleanup_extra() { on "$CL_A" cluster_ctl -m fast -w stop >/dev/null 2>&1 || true; }
# percentile P of the numbers on stdin (nearest rank)
pct() { sort -g | awk -v p="$1" '{ v[NR] = $1 } END {
	if (NR == 0) { print "nan"; exit }
	i = int(p / 100 * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'; }
col() { awk -v c="$1" 'NR > w { print $c }' w="$WARMUP" "$TMP/rounds"; }
peers_on() { [ "$(wg show "$1" peers | wc -l)" -ge "$2" ]; }
port_is() { [ "$(wg show "$1" listen-port 2>/dev/null)" = "$2" ]; }

cc -O2 -Wall -Wextra -Isrc -Itest -I"$(pg_config --includedir)" \
	$(pkg-config --cflags libsodium) -o "$TMP/uapi_latency" bench/uapi_latency.c \
	src/device/uapi.c src/device/device.c src/core/keys.c src/core/awg.c -lpq \
	$(pkg-config --libs libsodium)

ip netns add "$NS"
ip -n "$NS" link set lo up
for d in "$IFF" "$IFA" "$IFB" "$IFO"; do wg_dev_add "$d" "$NS"; done
# add_if CLUSTER IFNAME POOL PORT
add_if() {
	on "$1" q -c "SELECT name FROM wgpeer.wg_add_interface('$2', '192.0.2.1:$4', '$3',
		listen_port => $4, backend => 'uapi', persistent_keepalive => 25)" >/dev/null
}
# batches of 1,000: one set of 10,000 peers keeps a daemon busy for more
# than the 2 s after which the worker deems it hung on a loaded machine,
# and the setup then never ends (the timed commits are one peer each)
for cl in "$CL_A" "$CL_B"; do
	cluster_init "$cl" "wgpeer.database = 'postgres'" "wgpeer.batch_size = 1000"
	on "$cl" cluster_run
done
on "$CL_A" q -c "CREATE EXTENSION wgpeer" >/dev/null
on "$CL_B" q -c "CREATE EXTENSION wgpeer" >/dev/null
add_if "$CL_A" "$IFA" 10.1.0.1/16 $((40000 + S % 10000))
add_if "$CL_B" "$IFB" 10.1.0.1/16 $((50000 + S % 10000))
add_if "$CL_B" "$IFO" 10.2.0.1/16 $((30000 + S % 10000))
wait_until 60 port_is "$IFA" $((40000 + S % 10000))
wait_until 60 port_is "$IFB" $((50000 + S % 10000))

echo "== $OTHER live peers on server B's other interface $IFO"
on "$CL_B" q -c "SELECT count(*) FROM (SELECT wgpeer.wg_create_peer('other' || g,
	interface => '$IFO') FROM generate_series(1, $OTHER) g) s" >/dev/null
# active: on the device (the worker marks them after the device took
# them); polled in the database every 2 s, since a `wg show` of 10,000
# peers every 0.2 s would keep the daemon too busy to take them
all_active_b() { [ "$(on "$CL_B" q -c "SELECT count(*) FROM wgpeer.peer
	WHERE interface = '$IFO' AND status = 'active'")" -ge "$OTHER" ]; }
WAIT_UNTIL_STEP=2 wait_until 1800 all_active_b
peers_on "$IFO" "$OTHER" || { echo "$IFO lacks peers the database says are active" >&2; exit 1; }

# worker_cpu CLUSTER_DIR: the CPU time its apply worker has used, in ms
# (user + system, /proc/PID/stat), what a loaded machine's run queue
# does not change
worker_cpu() {
	local pid
	pid=$(pgrep -P "$(head -n 1 "$1/data/postmaster.pid")" -f 'wgpeer apply worker')
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f\n", ($14 + $15) * 1000 / hz }' "/proc/$pid/stat"
}

echo "== $ROUNDS rounds (first $WARMUP dropped): floor, A (no other peers), B ($OTHER on $IFO)"
cpu_a0=$(worker_cpu "$CL_A")
cpu_b0=$(worker_cpu "$CL_B")
"$TMP/uapi_latency" $((ROUNDS + WARMUP)) "$IFF" "host=$CL_A user=postgres dbname=postgres" \
	"$IFA" "host=$CL_B user=postgres dbname=postgres" "$IFB" >"$TMP/rounds"
cpu_a=$(awk -v a="$cpu_a0" -v b="$(worker_cpu "$CL_A")" -v n=$((ROUNDS + WARMUP)) 'BEGIN { printf "%.2f", (b - a) / n }')
cpu_b=$(awk -v a="$cpu_b0" -v b="$(worker_cpu "$CL_B")" -v n=$((ROUNDS + WARMUP)) 'BEGIN { printf "%.2f", (b - a) / n }')
f=$(col 1 | median)
a=$(col 2 | median)
b=$(col 3 | median)
f99=$(col 1 | pct 99)
a99=$(col 2 | pct 99)
b99=$(col 3 | pct 99)
printf '   floor, one UAPI set of the peer   median %7.3f ms   p99 %7.3f ms\n' "$f" "$f99"
printf '   A: commit -> device, no others    median %7.3f ms   p99 %7.3f ms\n' "$a" "$a99"
printf '   B: commit -> device, %d others on %s  median %7.3f ms   p99 %7.3f ms\n' "$OTHER" "$IFO" "$b" "$b99"
echo "   worker CPU per commit (all its passes during the rounds): A $cpu_a ms, B $cpu_b ms;" \
	"load $(load)"
echo "   ratio A / floor: $(ratio "$a" "$f") (goal <= 2)"
echo "   ratio B / A: $(ratio "$b" "$a") (goal <= 1.3)"
bench_record "commit -> one peer on a wireguard-go device, median / p99 (latency.sh)" \
	"$a / $a99 ms" "$f / $f99 ms (one UAPI set from C)" "$(ratio "$a" "$f")x"
bench_record "commit -> one peer with $OTHER live peers on another interface, median / p99 (latency.sh)" \
	"$b / $b99 ms" "$a / $a99 ms (none elsewhere)" "$(ratio "$b" "$a")x"
