#!/bin/bash
# The apply worker's benchmark, run on a WireGuard kernel by bench/apply.sh:
#	bash test/vm/run.sh test/vm/apply_bench.sh [--stage DIR] CLIENT [RUNS] [SINGLE] [WGSET]
# CLIENT is bench/apply_latency built by bench/apply.sh.  --stage DIR (VM
# only) copies a `make install DESTDIR=DIR` tree over / first.
#
# Measures, with PostgreSQL 15 running as an unprivileged user holding
# CAP_NET_ADMIN and wgpeer preloaded:
#	- commit-to-kernel latency of SINGLE (default 200) one-peer
#	  transactions, after 10 warm-up ones: from just before COMMIT is sent
#	  to the peer's first appearance in a netlink dump of the interface
#	  (polled every 0.5 ms), and to the arrival of its NOTIFY wgpeer;
#	- RUNS (default 3) times, on a fresh interface each: 5,000 peers queued
#	  in one transaction (run 1: created by wg_create_peer; later runs: the
#	  same peers copied to a new, already reconciled interface with their
#	  adds queued, as creating 5,000 peers costs minutes under TCG), from
#	  just before COMMIT to the interface holding all 5,000 (dump polled
#	  every 10 ms) and to the 5,000th NOTIFY; then the same 5,000 peers
#	  (keys, PSKs, v4 + v6 allowed IPs, keepalive, device private key and
#	  port) with one `wg addconf` on a fresh interface, and
#	  the first WGSET (default 500) of them with one `wg set` process each
#	  (the seed's way), extrapolated to 5,000.
# Prints the figures and ratios and writes them to $WGPEER_VM_OUT/apply_bench.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."

STAGE=
if [ "${1:-}" = --stage ]; then
	STAGE=$2
	shift 2
fi
if [ -n "$STAGE" ]; then
	[ "${WGPEER_IN_VM:-}" = 1 ] || { echo "--stage works only inside the VM" >&2; exit 2; }
	cp -a "$STAGE/." /
fi
CLIENT=${1:?usage: apply_bench.sh [--stage DIR] CLIENT [RUNS] [SINGLE] [WGSET]}
RUNS=${2:-3}
SINGLE=${3:-200}
WGSET=${4:-500}
BULK=5000
WARMUP=10

DB=wgbench
D=$(mktemp -d /run/wgpeer-bench.XXXXXX)
chmod 755 "$D"
T=$D/scratch
mkdir "$T"
OUT=${WGPEER_VM_OUT:-$T}/apply_bench.txt
: >"$OUT"
CLUSTER_DB=$DB
CLUSTER_NET_ADMIN=1
. test/cluster.sh

cleanup() {
	cluster_ctl -m immediate -w stop >/dev/null 2>&1 || true
	[ -z "${WGPEER_VM_OUT:-}" ] || cp "$D/pg/server.log" "$WGPEER_VM_OUT/apply_bench.server.log" 2>/dev/null || true
	# the interfaces (thousands of peers each) go with the VM or run.sh's
	# scratch namespace: deleting them here would cost minutes under TCG
	rm -rf "$D"
}
trap cleanup EXIT

say() { echo "$*" | tee -a "$OUT"; }
# Median and percentiles of the numbers on stdin: "median p90 p99 max"
stats() {
	sort -g | awk '{ v[NR] = $1 }
		function pct(p,  i) { i = int(p * NR + 0.999999); if (i < 1) i = 1; return v[i] }
		END { printf "%.1f %.1f %.1f %.1f\n",
			(NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2,
			pct(0.90), pct(0.99), v[NR] }'
}
median() { stats | cut -d' ' -f1; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
worker_running() {
	[ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'wgpeer apply worker'")" = 1 ]
}

echo "== PostgreSQL 15 as $WGPEER_USER with CAP_NET_ADMIN, wgpeer preloaded"
cluster_start "$D/pg" "wgpeer.database = '$DB'" "shared_buffers = 256MB"
cluster_psql -d postgres -c "CREATE DATABASE $DB"
q -c "CREATE EXTENSION wgpeer"
for _ in $(seq 600); do worker_running && break; sleep 0.2; done
worker_running || { echo "the apply worker did not start" >&2; exit 1; }
CONN="host=$D/pg user=postgres dbname=$DB"

say "== commit-to-kernel latency: $SINGLE one-peer transactions (after $WARMUP warm-up)"
ip link add wgl type wireguard
q -c "SELECT name FROM wgpeer.wg_add_interface('wgl', '10.99.0.1:51830', '10.40.0.1/16',
		'fd00:40::1/64', listen_port => 51830, persistent_keepalive => 25)" >/dev/null
"$CLIENT" "$CONN" wgl single $((SINGLE + WARMUP)) | tail -n +$((WARMUP + 1)) >"$T/single"
[ "$(wc -l <"$T/single")" -eq "$SINGLE" ] || { echo "latency run incomplete" >&2; exit 1; }
read -r c_med c_p90 c_p99 c_max < <(cut -d' ' -f1 "$T/single" | stats)
read -r k_med k_p90 k_p99 k_max < <(cut -d' ' -f2 "$T/single" | stats)
read -r n_med n_p90 n_p99 n_max < <(cut -d' ' -f3 "$T/single" | stats)
say "   ms from before COMMIT      median    p90    p99    max"
say "$(printf '   COMMIT returned         %8s %6s %6s %6s' "$c_med" "$c_p90" "$c_p99" "$c_max")"
say "$(printf '   peer in the kernel      %8s %6s %6s %6s' "$k_med" "$k_p90" "$k_p99" "$k_max")"
say "$(printf '   NOTIFY wgpeer received  %8s %6s %6s %6s' "$n_med" "$n_p90" "$n_p99" "$n_max")"

say "== $BULK peers: the worker vs wg addconf vs one wg set per peer ($RUNS runs)"
: >"$T/t_worker"
: >"$T/t_notify"
: >"$T/t_addconf"
: >"$T/t_wgset"
ip link add wgb type wireguard
q -c "SELECT name FROM wgpeer.wg_add_interface('wgb', '10.99.0.1:51840', '10.50.0.1/16',
		'fd00:50::1/64', listen_port => 51840, persistent_keepalive => 25)" >/dev/null
# The same peers and device settings as one wg addconf file, and as lines
# for wg set; the peers exist after run 1.
make_inputs() {
	q -c "SELECT format(E'[Interface]\nPrivateKey = %s\nListenPort = 51940', private_key)
		  FROM wgpeer.interface WHERE name = 'wgb'" >"$T/add.conf"
	q -c "SELECT format(E'[Peer]\nPublicKey = %s\nPresharedKey = %s\nAllowedIPs = %s/32, %s/128\nPersistentKeepalive = 25',
				public_key, preshared_key, host(address), host(address6))
		  FROM wgpeer.peer WHERE interface = 'wgb' ORDER BY address" >>"$T/add.conf"
	q -c "SELECT public_key, preshared_key, host(address), host(address6)
		  FROM wgpeer.peer WHERE interface = 'wgb' ORDER BY address LIMIT $WGSET" >"$T/wgset.in"
}
for r in $(seq "$RUNS"); do
	if [ "$r" -eq 1 ]; then
		# run 1: the peers are created by wg_create_peer, committed at once
		how="wg_create_peer x $BULK"
		read -r _ t_kernel t_notify < <("$CLIENT" "$CONN" wgb bulk "$BULK")
		make_inputs
		[ "$(wg show wgb peers | wc -l)" -eq "$BULK" ] || { echo "worker run lost peers" >&2; exit 1; }
	else
		# later runs: the same peers (keys, PSKs, addresses) copied to a
		# new interface and queued, in one transaction.  The interface is
		# registered and reconciled (empty) first: the worker reconciles a
		# new interface within a second, and would otherwise restore the
		# peers itself, outside the measurement.
		ifb=wgb$r
		how="$BULK peers copied to a new interface"
		ip link add "$ifb" type wireguard
		q -c "SELECT name FROM wgpeer.wg_add_interface('$ifb', '10.99.0.1:$((51840 + r))',
				'10.$((50 + r)).0.1/16', 'fd00:$((50 + r))::1/64', listen_port => $((51840 + r)),
				persistent_keepalive => 25)" >/dev/null
		for _ in $(seq 600); do
			[ "$(q -c "SELECT count(*) FROM wgpeer.device
					   WHERE interface = '$ifb' AND reconciled_at IS NOT NULL")" = 1 ] && break
			sleep 0.2
		done
		read -r _ t_kernel t_notify < <("$CLIENT" "$CONN" "$ifb" bulk "$BULK" \
			"WITH p AS (INSERT INTO wgpeer.peer (user_id, interface, address, address6,
						public_key, private_key, preshared_key, config_name)
					SELECT user_id, '$ifb', address, address6, public_key, private_key,
						   preshared_key, config_name
					FROM wgpeer.peer WHERE interface = 'wgb' ORDER BY address
					RETURNING peer_id, interface, public_key)
			 INSERT INTO wgpeer.queue (interface, peer_id, op, public_key)
			 SELECT interface, peer_id, 'add', public_key FROM p")
		[ "$(wg show "$ifb" peers | wc -l)" -eq "$BULK" ] || { echo "worker run lost peers" >&2; exit 1; }
	fi
	echo "$t_kernel" >>"$T/t_worker"
	echo "$t_notify" >>"$T/t_notify"

	ifa=wga$r
	ip link add "$ifa" type wireguard
	sed -i "s/^ListenPort = .*/ListenPort = $((51940 + r))/" "$T/add.conf"
	t0=$(date +%s%N)
	wg addconf "$ifa" "$T/add.conf"
	ms_since "$t0" >>"$T/t_addconf"
	[ "$(wg show "$ifa" peers | wc -l)" -eq "$BULK" ] || { echo "addconf run lost peers" >&2; exit 1; }

	# the seed's way: one wg set process per peer, the PSK from a file
	ifs=wgs$r
	ip link add "$ifs" type wireguard
	t0=$(date +%s%N)
	while IFS=$'\t' read -r pub psk v4 v6; do
		echo "$psk" >"$T/psk"
		wg set "$ifs" peer "$pub" preshared-key "$T/psk" \
			allowed-ips "$v4/32,$v6/128" persistent-keepalive 25
	done <"$T/wgset.in"
	ms_since "$t0" >>"$T/t_wgset"
	[ "$(wg show "$ifs" peers | wc -l)" -eq "$WGSET" ] || { echo "wg set run lost peers" >&2; exit 1; }
	say "   run $r ($how): worker $t_kernel ms (NOTIFY $t_notify ms), wg addconf $(tail -n 1 "$T/t_addconf") ms, $WGSET x wg set $(tail -n 1 "$T/t_wgset") ms"
done
w=$(median <"$T/t_worker")
wn=$(median <"$T/t_notify")
a=$(median <"$T/t_addconf")
s=$(median <"$T/t_wgset")
s_all=$(awk -v s="$s" -v n="$WGSET" -v b="$BULK" 'BEGIN { printf "%.0f", s * b / n }')
say "   medians of $RUNS runs:"
say "$(printf '   worker, COMMIT to all %d in the kernel  %10.1f ms' "$BULK" "$w")"
say "$(printf '   worker, COMMIT to the %dth NOTIFY       %10.1f ms' "$BULK" "$wn")"
say "$(printf '   wg addconf of the same %d peers         %10.1f ms' "$BULK" "$a")"
say "$(printf '   wg set per peer, %d peers              %10.1f ms (x%d extrapolated: %s ms)' "$WGSET" "$s" $((BULK / WGSET)) "$s_all")"
say "$(awk -v w="$w" -v a="$a" -v s="$s_all" 'BEGIN {
	printf "   ratio worker / wg addconf: %.2f (goal <= 1.5)\n", w / a
	printf "   ratio wg set per peer / worker: %.1f", s / w }')"
