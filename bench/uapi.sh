#!/bin/bash
# The apply worker over userspace WireGuard (wireguard-go, UAPI), natively on
# this host: the time to apply 5,000 peers queued in one transaction, against
# `wg addconf` of the same 5,000 peers in one call and one `wg set` process
# per peer (the seed's way; the first WGSET peers, extrapolated to 5,000).
# Run as root after `make install`:
#	bash bench/uapi.sh [RUNS] [WGSET]		(defaults 5 and 500)
#
# Each run uses fresh wireguard-go interfaces in a private network namespace:
#	worker:  wg_create_peer x 5,000 in one transaction on a new interface;
#	         from just before COMMIT (clock_timestamp() in that session) to
#	         `wg show <if> peers` listing all 5,000 (polled every 10 ms; one
#	         poll over UAPI takes a few tens of ms at that size, which bounds
#	         the resolution), and to all 5,000 rows 'active';
#	addconf: the same peers (keys, PSKs, allowed IP, keepalive) and the
#	         device's private key and port with one `wg addconf`;
#	wg set:  the first WGSET of them, one `wg set` process each, PSK from
#	         a file, times 5,000 / WGSET.
# Every wireguard-go runs as PostgreSQL's user, as the README says to run
# the worker's (test/wireguard.sh).  Prints each run, the medians and the
# ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. test/cluster.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "bench/uapi.sh makes a network namespace: run it as root" >&2
	exit 1
fi
RUNS=${1:-5}
WGSET=${2:-500}
BULK=5000
STAGE=ub
. test/userspace.sh

# wait_until (test/tap.sh) polls every 10 ms here: its polls are the timings
WAIT_UNTIL_STEP=0.01
peers_are() { [ "$(ip netns exec "$NS" wg show "$1" peers | wc -l)" -eq "$2" ]; }
all_active() { [ "$(q -c "SELECT count(*) FROM wgpeer.peer
	WHERE interface = '$1' AND status = 'active'")" -eq "$2" ]; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

ip netns add "$NS"
ip -n "$NS" link set lo up
cluster_start "$TMP/pg" "wgpeer.database = 'postgres'"
q -c "CREATE EXTENSION wgpeer" >/dev/null

echo "== $BULK peers over UAPI: the worker vs wg addconf vs one wg set per peer ($RUNS runs)"
: >"$TMP/t_worker"
: >"$TMP/t_active"
: >"$TMP/t_addconf"
: >"$TMP/t_wgset"
for r in $(seq "$RUNS"); do
	# the worker: a new interface, noticed by the worker before the batch
	ifw=wgubw$r
	wg_dev_add "$ifw" "$NS"
	q -c "SELECT name FROM wgpeer.wg_add_interface('$ifw', '192.0.2.1:$((51800 + r))',
			'10.$((100 + r)).0.1/16', listen_port => $((51800 + r)),
			persistent_keepalive => 25)" >/dev/null
	sleep 2
	t0=$(q <<SQL | tail -n 1
BEGIN;
SELECT count(*) FROM (SELECT wgpeer.wg_create_peer('bench' || g, interface => '$ifw')
	FROM generate_series(1, $BULK) g) s;
SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
COMMIT;
SQL
	)
	wait_until 300 peers_are "$ifw" "$BULK"
	echo $(($(now_ms) - t0)) >>"$TMP/t_worker"
	wait_until 300 all_active "$ifw" "$BULK"
	echo $(($(now_ms) - t0)) >>"$TMP/t_active"

	# the same peers and device settings, as one config and as wg set lines
	q -c "SELECT format(E'[Interface]\nPrivateKey = %s\nListenPort = %s',
			private_key, $((51900 + r))) FROM wgpeer.interface WHERE name = '$ifw'" >"$TMP/add.conf"
	q -c "SELECT format(E'[Peer]\nPublicKey = %s\nPresharedKey = %s\nAllowedIPs = %s/32\nPersistentKeepalive = 25',
			public_key, preshared_key, host(address))
		  FROM wgpeer.peer WHERE interface = '$ifw' ORDER BY address" >>"$TMP/add.conf"
	q -c "SELECT public_key, preshared_key, host(address)
		  FROM wgpeer.peer WHERE interface = '$ifw' ORDER BY address LIMIT $WGSET" >"$TMP/wgset.in"
	wg_dev_del "$ifw"

	ifa=wguba$r
	wg_dev_add "$ifa" "$NS"
	t0=$(now_ms)
	ip netns exec "$NS" wg addconf "$ifa" "$TMP/add.conf"
	echo $(($(now_ms) - t0)) >>"$TMP/t_addconf"
	peers_are "$ifa" "$BULK" || { echo "wg addconf lost peers" >&2; exit 1; }
	wg_dev_del "$ifa"

	ifs=wgubs$r
	wg_dev_add "$ifs" "$NS"
	t0=$(now_ms)
	while IFS=$'\t' read -r pub psk v4; do
		echo "$psk" >"$TMP/psk"
		ip netns exec "$NS" wg set "$ifs" peer "$pub" preshared-key "$TMP/psk" \
			allowed-ips "$v4/32" persistent-keepalive 25
	done <"$TMP/wgset.in"
	echo $(($(now_ms) - t0)) >>"$TMP/t_wgset"
	peers_are "$ifs" "$WGSET" || { echo "wg set lost peers" >&2; exit 1; }
	wg_dev_del "$ifs"
	echo "   run $r: worker $(tail -n 1 "$TMP/t_worker") ms (all active $(tail -n 1 "$TMP/t_active") ms)," \
		"wg addconf $(tail -n 1 "$TMP/t_addconf") ms, $WGSET x wg set $(tail -n 1 "$TMP/t_wgset") ms"
done
w=$(median <"$TMP/t_worker")
wa=$(median <"$TMP/t_active")
a=$(median <"$TMP/t_addconf")
s=$(median <"$TMP/t_wgset")
s_all=$(awk -v s="$s" -v n="$WGSET" -v b="$BULK" 'BEGIN { printf "%.0f", s * b / n }')
echo "   medians of $RUNS runs:"
printf '   worker, COMMIT to all %d on the interface  %8.0f ms\n' "$BULK" "$w"
printf '   worker, COMMIT to all %d active            %8.0f ms\n' "$BULK" "$wa"
printf '   wg addconf of the same %d peers            %8.0f ms\n' "$BULK" "$a"
printf '   wg set per peer, %d peers                  %8.0f ms (x%d extrapolated: %s ms)\n' \
	"$WGSET" "$s" $((BULK / WGSET)) "$s_all"
awk -v w="$w" -v a="$a" -v s="$s_all" 'BEGIN {
	printf "   ratio worker / wg addconf: %.2f\n", w / a
	printf "   ratio wg set per peer / worker: %.1f\n", s / w }'
