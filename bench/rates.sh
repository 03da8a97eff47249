#!/bin/bash
# Speed limits on a real WireGuard kernel, in one VM run (test/vm/run.sh;
# docs/speed-limits.md):
#
#	1. applying limits to 1,000 peers in one batch: from the commit of
#	   wg_set_interface_rate(dev, 2000, 1000) on an interface of 1,000
#	   unlimited peers to the kernel's last traffic control event (every
#	   class and filter installed: `tc -timestamp monitor`), vs `tc -batch`
#	   of the same objects (the HTB root and ingress qdiscs, 1,000 classes,
#	   1,000 download and 1,000 upload flower filters) on a second
#	   WireGuard interface wgpeer does not manage, its wall clock time;
#	2. the per-packet cost on an unlimited peer: iperf3 through the tunnel
#	   (download and upload, 3 s each) of a peer exempted from the limits,
#	   with the other 1,000 peers limited vs with no limit anywhere (no
#	   qdisc on the interface at all).
#
# Both sides of each measure are interleaved in one run, RUNS times; the
# medians, and the ratio, go to stdout and to the table of bench/README.md
# (bench_record).  Run as root after `make install`:
#	bash bench/rates.sh [--pg-bin DIR] [RUNS]
# (RUNS defaults to 3; --pg-bin: the PostgreSQL whose installed wgpeer to
# measure, when it is not the first pg_config on PATH.)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

PG_BIN_ARG=()
if [ "${1:-}" = --pg-bin ]; then
	PG_BIN_ARG=(--pg-bin "$2")
	export PG_BIN=$2 PATH=$2:$PATH
	shift 2
fi
RUNS=${1:-3}
N=1000

if [ -z "${WGPEER_IN_VM:-}" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench/rates.sh boots a VM: run it as root" >&2
		exit 1
	fi
	log=$(mktemp /tmp/wgpeer-rates-bench.XXXXXX)
	trap 'rm -f "$log"' EXIT
	bash test/vm/run.sh bench/rates.sh "${PG_BIN_ARG[@]}" "$RUNS" >"$log" 2>&1 || {
		cat "$log" >&2
		exit 1
	}
	grep -v '^RECORD' "$log"
	while IFS='|' read -r _ measure figure baseline ratio; do
		bench_record "$measure" "$figure" "$baseline" "$ratio"
	done < <(grep '^RECORD' "$log")
	exit 0
fi

# --- in the VM --------------------------------------------------------------
. test/cluster.sh
. test/wireguard.sh
DEV=rbwg0						# wgpeer's interface
BASE=rbwg1						# the baseline's, not wgpeer's
NS=wgpeer-rb-$$
TMP=$(mktemp -d /tmp/wgpeer-rates-bench.XXXXXX)
chmod 755 "$TMP"
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del "$NS" 2>/dev/null || true
	wg_dev_cleanup
	ip link del "$DEV" 2>/dev/null || true
	ip link del "$BASE" 2>/dev/null || true
	cluster_stop
	rm -rf "$TMP"
}
trap cleanup EXIT

# the installed objects of one device: classes, download and upload filters
classes() { tc class show dev "$1" | grep -c '^class htb 7770:' || true; }
down_filters() { tc filter show dev "$1" parent 7770: | grep -c 'flower chain 0 handle' || true; }
up_filters() { tc filter show dev "$1" ingress | grep -c 'flower chain 0 handle' || true; }
all_installed() {
	[ "$(classes "$1")" -eq "$N" ] && [ "$(down_filters "$1")" -eq "$N" ] &&
		[ "$(up_filters "$1")" -eq "$N" ]
}
no_qdisc() { ! tc qdisc show dev "$1" | grep -q '^qdisc htb 7770:'; }
# wait_for SECONDS COMMAND...: poll every half second (no tight timing)
wait_for() {
	local until=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$until" ] || { echo "timed out: $*" >&2; return 1; }
		sleep 0.5
	done
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# the time of the last event of a `tc -timestamp monitor` log, in ms
last_event_ms() {
	local wd mon day hms year usec
	read -r _ wd mon day hms year usec _ < <(grep '^Timestamp:' "$1" | tail -n 1)
	echo $(($(date -d "$wd $mon $day $hms $year" +%s) * 1000 + 10#$usec / 1000))
}

echo "== setting up: $DEV with $N peers and a client, $BASE for tc -batch"
ip netns add "$NS"
veth_pair "" rb-a 192.168.243.1/24 "$NS" rb-a-c 192.168.243.2/24
wg_dev_add "$DEV"
ip addr add 10.96.0.1/21 dev "$DEV"
ip link set "$DEV" up
wg_dev_add "$BASE"
ip link set "$BASE" up
CLUSTER_NET_ADMIN=1
cluster_start "$TMP/pg" "wgpeer.database = 'postgres'"
q >/dev/null <<SQL
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('$DEV', '192.168.243.1:51820',
	'10.96.0.1/21', allowed_ips => '10.96.0.0/21');
SQL
FREE=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('free', interface => '$DEV')")
q -c "SELECT wgpeer.wg_set_peer_rate('$FREE', 0, 0)" >/dev/null
q -c "SELECT count(*) FROM generate_series(1, $N) g,
	LATERAL wgpeer.wg_create_peer('p' || g, interface => '$DEV')" >/dev/null
(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$FREE')" >"$TMP/free.conf")
wait_for 300 test "$(wg show "$DEV" peers | wc -l)" -eq $((N + 1))
wg_client_up rbwgc "$NS" "$TMP/free.conf" 10.96.0.1/32
wait_for 60 ip netns exec "$NS" ping -q -c 1 -W 1 10.96.0.1 >/dev/null
iperf3 -s -B 10.96.0.1 -p 5201 >"$TMP/iperf3.log" 2>&1 &
PIDS+=($!)

# The same objects for tc -batch: what wgpeer's worker sends, the peers'
# addresses from the database.
{
	echo "qdisc add dev $BASE root handle 7770: htb default 0 direct_qlen 1000"
	echo "qdisc add dev $BASE ingress"
	q -c "SELECT rate_n, host(address) FROM (SELECT row_number() OVER (ORDER BY address) AS rate_n,
		address FROM wgpeer.peer WHERE user_id <> 'free') p" |
		while IFS=$'\t' read -r n a; do
			echo "class add dev $BASE parent 7770: classid 7770:$n htb rate 2000kbit ceil 2000kbit burst 67136 cburst 67136 quantum 25000"
			echo "filter add dev $BASE parent 7770: prio 30576 handle $n protocol ip flower dst_ip $a/32 classid 7770:$n"
			echo "filter add dev $BASE parent ffff: prio 30576 handle $n protocol ip flower src_ip $a/32 action police rate 1000kbit burst 67136 mtu 65535 drop"
		done
} >"$TMP/batch"

# wgpeer: commit to the last kernel event, then the limits removed and the
# qdiscs deleted (the bare interface again)
wgpeer_apply() {
	local mon committed
	tc -timestamp monitor >"$TMP/monitor" 2>&1 &
	mon=$!
	sleep 0.5
	committed=$(q -c "SELECT wgpeer.wg_set_interface_rate('$DEV', 2000, 1000)" \
		-c "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint" | tail -n 1)
	wait_for 600 all_installed "$DEV" || { diagnose >&2; return 1; }
	sleep 1
	kill "$mon"
	wait "$mon" 2>/dev/null || true
	echo $(($(last_event_ms "$TMP/monitor") - committed))
}
# on a timeout: why the worker did not get there
diagnose() {
	echo "   rates_error: $(q -c "SELECT rates_error FROM wgpeer.interface_status WHERE interface = '$DEV'")"
	grep -E 'WARNING|ERROR' "$TMP/pg/server.log" | tail -n 20 | sed 's/^/   /' || true
}
wgpeer_clear() {
	q -c "SELECT wgpeer.wg_set_interface_rate('$DEV', NULL, NULL)" >/dev/null
	wait_for 600 test "$(classes "$DEV")" -eq 0 || { diagnose; return 1; }
	tc qdisc del dev "$DEV" root
	tc qdisc del dev "$DEV" ingress
}
tc_batch() {
	local t0 t1
	t0=$(now_ms)
	tc -batch "$TMP/batch"
	t1=$(now_ms)
	all_installed "$BASE" || { echo "tc -batch left objects out" >&2; return 1; }
	tc qdisc del dev "$BASE" root
	tc qdisc del dev "$BASE" ingress
	echo $((t1 - t0))
}
# iperf3 of the exempt peer, kbit/s received; -R: download
free_kbit() {
	ip netns exec "$NS" iperf3 -c 10.96.0.1 -p 5201 -t 3 -J "$@" |
		python3 -c 'import json, sys
print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1000))'
}

echo "== 1. limits on $N peers in one commit vs tc -batch, $RUNS runs"
: >"$TMP/apply"
: >"$TMP/batchms"
for r in $(seq "$RUNS"); do
	a=$(wgpeer_apply)
	wgpeer_clear
	b=$(tc_batch)
	echo "   run $r: wgpeer $a ms, tc -batch $b ms"
	echo "$a" >>"$TMP/apply"
	echo "$b" >>"$TMP/batchms"
done
ma=$(median <"$TMP/apply")
mb=$(median <"$TMP/batchms")
echo "   median: wgpeer $ma ms (commit to the last kernel event), tc -batch $mb ms; ratio $(ratio "$ma" "$mb")"
echo "RECORD|speed limits on $N peers, one commit (VM)|$ma ms|tc -batch $mb ms|$(ratio "$ma" "$mb")x"

echo "== 2. an unlimited peer's throughput, $N limited peers vs none, $RUNS runs"
: >"$TMP/d_lim"; : >"$TMP/d_none"; : >"$TMP/u_lim"; : >"$TMP/u_none"
for r in $(seq "$RUNS"); do
	dn=$(free_kbit -R); un=$(free_kbit)
	q -c "SELECT wgpeer.wg_set_interface_rate('$DEV', 2000, 1000)" >/dev/null
	wait_for 600 all_installed "$DEV"
	dl=$(free_kbit -R); ul=$(free_kbit)
	wgpeer_clear
	echo "   run $r: down $dl vs $dn kbit/s, up $ul vs $un kbit/s (limited present vs none)"
	echo "$dl" >>"$TMP/d_lim"; echo "$dn" >>"$TMP/d_none"
	echo "$ul" >>"$TMP/u_lim"; echo "$un" >>"$TMP/u_none"
done
for d in d u; do
	ml=$(median <"$TMP/${d}_lim")
	mn=$(median <"$TMP/${d}_none")
	name=$([ "$d" = d ] && echo download || echo upload)
	echo "   median $name: $ml kbit/s with $N limited peers, $mn kbit/s with none; ratio $(ratio "$ml" "$mn")"
	echo "RECORD|unlimited peer's $name with $N limited peers (VM, iperf3)|$ml kbit/s|none: $mn kbit/s|$(ratio "$ml" "$mn")x"
done
echo "load: $(load)"
