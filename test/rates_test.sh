#!/bin/bash
# Per-peer speed limits on kernel WireGuard, measured with iperf3 through
# the tunnel (docs/speed-limits.md).  Run in the VM (kernel lane):
#   bash test/vm/run.sh test/rates_test.sh [--pg-bin DIR] [--backend uapi]
# (--pg-bin: a PostgreSQL other than the one pg_config names, whose
# installed wgpeer to test; --backend uapi: the interfaces are wireguard-go
# TUN devices instead of kernel WireGuard.)  The server is this namespace (wgpeer's
# interface and the cluster, holding CAP_NET_ADMIN), with two clients in
# namespaces of their own: "lim" gets the limits, "free" never does.
#
#	1. 2,000/1,000 kbit/s: measured down (to the peer) and up (from it)
#	   within 10%;
#	2. the unlimited peer on the same interface is not slowed (more than
#	   five times the other's limit);
#	3. a changed limit (4,000/2,000) is on the interface within 1 s of its
#	   commit, and measured;
#	4. a root qdisc and an ingress qdisc deleted by hand are put back by
#	   wg_reconcile() (which the periodic pass does too);
#	5. the limit removed: the peer's objects go, it is not slowed any more;
#	6. an interface default (3,000/1,500): lim, with no limit of its own,
#	   takes it; free, exempted with wg_set_peer_rate(free, 0, 0), gets no
#	   objects and is not slowed;
#	7. someone else's root qdisc: left alone, interface_status.rates_error
#	   says so, with one warning however many passes; removed, wgpeer's
#	   objects come back and rates_error is cleared.
# Prints "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
while [ $# -gt 0 ]; do
	case $1 in
		--pg-bin) export PG_BIN=$2 PATH=$2:$PATH ;;
		--backend) WGPEER_BACKEND=$2 ;;
		*) echo "usage: $0 [--pg-bin DIR] [--backend netlink|uapi]" >&2; exit 2 ;;
	esac
	shift 2
done
. test/cluster.sh
. test/wireguard.sh
. test/tap.sh
WAIT_UNTIL_STEP=0.05

DEV=rtwg0
NS_A=wgpeer-rt-lim-$$
NS_B=wgpeer-rt-free-$$
TMP=$(mktemp -d /tmp/wgpeer-rates.XXXXXX)
chmod 755 "$TMP"
IPERF_PIDS=()
cleanup() {
	local p
	for p in "${IPERF_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del "$NS_A" 2>/dev/null || true
	ip netns del "$NS_B" 2>/dev/null || true
	wg_dev_cleanup
	ip link del "$DEV" 2>/dev/null || true
	cluster_stop
	rm -rf "$TMP"
}
trap cleanup EXIT

# iperf3 from a client namespace to the server's port: the receiver's
# rate in kbit/s, of 5 s after 2 s left out (the policer's burst);
# -R: the server sends (download)
measure() {
	local ns=$1 port=$2
	shift 2
	ip netns exec "$ns" iperf3 -c 10.95.0.1 -p "$port" -t 5 -O 2 -J "$@" |
		python3 -c 'import json, sys
print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1000))'
}
# within KBIT LIMIT: KBIT is within 10% of LIMIT
within() {
	echo "   measured $1 kbit/s, limit $2"
	[ "$1" -ge $(($2 * 9 / 10)) ] && [ "$1" -le $(($2 * 11 / 10)) ]
}
# near KBIT LIMIT: KBIT within -20%/+10% of LIMIT (a policer's TCP under
# a loaded emulator: the limit itself is held to 10% in step 1)
near() {
	echo "   measured $1 kbit/s, limit $2"
	[ "$1" -ge $(($2 * 8 / 10)) ] && [ "$1" -le $(($2 * 11 / 10)) ]
}
above() {
	echo "   measured $1 kbit/s"
	[ "$1" -gt "$2" ]
}
class_is() { tc class show dev "$DEV" | grep -q "^class htb 7770:$1 .* rate $2 "; }
no_class() { ! tc class show dev "$DEV" | grep -q "^class htb 7770:"; }
police_is() { tc filter show dev "$DEV" ingress | grep -q "rate $1 "; }
no_ingress_filters() { ! tc filter show dev "$DEV" ingress | grep -q "pref 3057[67] flower"; }
ping_a() { ip netns exec "$NS_A" ping -c 1 -W 1 10.95.0.1 >/dev/null 2>&1; }
ping_b() { ip netns exec "$NS_B" ping -c 1 -W 1 10.95.0.1 >/dev/null 2>&1; }

echo "== backend $WGPEER_BACKEND; setting up: $DEV here, clients lim and free in namespaces of their own"
ip netns add "$NS_A"
ip netns add "$NS_B"
veth_pair "" rt-a 192.168.241.1/24 "$NS_A" rt-a-c 192.168.241.2/24
veth_pair "" rt-b 192.168.242.1/24 "$NS_B" rt-b-c 192.168.242.2/24
ip -n "$NS_B" route add 192.168.241.0/24 via 192.168.242.1
wg_dev_add "$DEV"
ip addr add 10.95.0.1/24 dev "$DEV"
ip addr add fd00:95::1/64 dev "$DEV" nodad
ip link set "$DEV" up
CLUSTER_NET_ADMIN=1
cluster_start "$TMP/pg" "wgpeer.database = 'postgres'"
q >/dev/null <<SQL
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('$DEV', '192.168.241.1:51820',
	'10.95.0.1/24', address6 => 'fd00:95::1/64', allowed_ips => '10.95.0.0/24');
SQL
LIM=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('lim', interface => '$DEV')")
FREE=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('free', interface => '$DEV')")
(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$LIM')" >"$TMP/lim.conf" &&
	q -c "SELECT wgpeer.wg_peer_config('$FREE')" >"$TMP/free.conf")
check "both peers are on $DEV" wait_until 30 test "$(wg show "$DEV" peers | wc -l)" -eq 2
wg_client_up rtwga "$NS_A" "$TMP/lim.conf" 10.95.0.1/32
wg_client_up rtwgb "$NS_B" "$TMP/free.conf" 10.95.0.1/32
check "lim pings the server through the tunnel" wait_until 30 ping_a
check "free pings the server through the tunnel" wait_until 30 ping_b
for port in 5201 5202; do
	iperf3 -s -B 10.95.0.1 -p "$port" >"$TMP/iperf3.$port.log" 2>&1 &
	IPERF_PIDS+=($!)
done
sleep 0.5

echo "== 1. lim at 2,000/1,000 kbit/s"
q -c "SELECT wgpeer.wg_set_peer_rate('$LIM', 2000, 1000)" >/dev/null
check "its class is on $DEV" wait_until 5 class_is 1 2Mbit
check "its policer is on $DEV's ingress" wait_until 5 police_is 1Mbit
check "download within 10% of 2,000 kbit/s" within "$(measure "$NS_A" 5201 -R)" 2000
check "upload within 10% of 1,000 kbit/s" within "$(measure "$NS_A" 5201)" 1000

echo "== 2. the unlimited peer on the same interface"
check "free downloads faster than 10,000 kbit/s" above "$(measure "$NS_B" 5202 -R)" 10000
check "free uploads faster than 10,000 kbit/s" above "$(measure "$NS_B" 5202)" 10000

echo "== 3. a changed limit holds within 1 s of its commit"
# from the commit (the server's clock, the statement after it) to the last
# traffic control change the kernel reported (tc -timestamp monitor): neither
# starting psql nor polling tc, both slow under emulation, is counted
tc -timestamp monitor >"$TMP/monitor" 2>&1 &
MONITOR=$!
IPERF_PIDS+=("$MONITOR")
sleep 0.5
committed=$(q -c "SELECT wgpeer.wg_set_peer_rate('$LIM', 4000, 2000)" \
	-c "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint" | tail -n 1)
new_limits() { class_is 1 4Mbit && police_is 2Mbit; }
check "the new limits are on $DEV" wait_until 5 new_limits
sleep 0.5
kill "$MONITOR" 2>/dev/null || true
wait "$MONITOR" 2>/dev/null || true
# "Timestamp: Mon Dec  7 21:25:26 2026 123456 usec" of the last event
read -r _ wd mon day hms year usec _ < <(grep '^Timestamp:' "$TMP/monitor" | tail -n 1) || true
changed=$(($(date -d "$wd $mon $day $hms $year" +%s) * 1000 + 10#${usec:-0} / 1000))
ms=$((changed - committed))
echo "   last change on the interface $ms ms after the commit" \
	"($(grep -c '^Timestamp:' "$TMP/monitor") events)"
check "the new limits are on $DEV within 1,000 ms of the commit" test "$ms" -le 1000
check "download within 10% of 4,000 kbit/s" within "$(measure "$NS_A" 5201 -R)" 4000
check "upload follows the new limit (2,000 kbit/s, -20%/+10%)" near "$(measure "$NS_A" 5201)" 2000

echo "== 4. qdiscs deleted by hand are put back"
tc qdisc del dev "$DEV" root
tc qdisc del dev "$DEV" ingress
q -c "SELECT count(*) FROM wgpeer.wg_reconcile('$DEV')" >/dev/null
check "the class is back within 10 s" wait_until 10 class_is 1 4Mbit
check "the policer is back within 10 s" wait_until 10 police_is 2Mbit
check "download within 10% of 4,000 kbit/s again" within "$(measure "$NS_A" 5201 -R)" 4000

echo "== 5. the limit removed"
q -c "SELECT wgpeer.wg_set_peer_rate('$LIM', NULL, NULL)" >/dev/null
check "its class is gone" wait_until 5 no_class
check "its policers are gone" wait_until 5 no_ingress_filters
check "lim downloads faster than 10,000 kbit/s" above "$(measure "$NS_A" 5201 -R)" 10000
check "the worker logged no warning" test \
	"$(grep -c 'WARNING' "$TMP/pg/server.log" || true)" -eq 0
grep 'WARNING' "$TMP/pg/server.log" | head -n 20 | sed 's/^/   /' || true

echo "== 6. an interface default; free exempted from it"
q >/dev/null <<SQL
SELECT wgpeer.wg_set_peer_rate('$FREE', 0, 0);
SELECT wgpeer.wg_set_interface_rate('$DEV', 3000, 1500);
SQL
slot=$(q -c "SELECT rate_slot FROM wgpeer.peer WHERE peer_id = '$LIM'")
check "free has no slot, lim has one ($slot)" test \
	"$(q -c "SELECT count(rate_slot) FROM wgpeer.peer WHERE peer_id = '$FREE'")" -eq 0
check "lim's class takes the default" wait_until 5 class_is "$slot" 3Mbit
check "lim's policer takes the default" wait_until 5 police_is 1500Kbit
check "only lim's class is on $DEV" test "$(tc class show dev "$DEV" | grep -c '^class htb 7770:')" -eq 1
check "peer_status says where the limits come from" test \
	"$(q -c "SELECT string_agg(user_id || ' ' || coalesce(down_kbit::text, '-') || ' ' ||
		coalesce(down_from, '-') || ' ' || coalesce(up_kbit::text, '-') || ' ' ||
		coalesce(up_from, '-'), ', ' ORDER BY user_id) FROM wgpeer.peer_status")" = \
	"free - peer - peer, lim 3000 interface 1500 interface"
check "lim downloads within 10% of the default, 3,000 kbit/s" within "$(measure "$NS_A" 5201 -R)" 3000
check "free (exempt) downloads faster than twice the default" above "$(measure "$NS_B" 5202 -R)" 6000

echo "== 7. someone else's root qdisc"
tc qdisc del dev "$DEV" root
tc qdisc add dev "$DEV" root handle 1: htb
rates_error() { q -c "SELECT coalesce(rates_error, '') FROM wgpeer.interface_status WHERE interface = '$DEV'"; }
foreign_seen() { rates_error | grep -q '^another root qdisc'; }
q -c "SELECT count(*) FROM wgpeer.wg_reconcile('$DEV')" >/dev/null
check "interface_status.rates_error says so" wait_until 10 foreign_seen
echo "   rates_error: $(rates_error)"
q -c "SELECT count(*) FROM wgpeer.wg_reconcile('$DEV')" >/dev/null
q -c "SELECT count(*) FROM wgpeer.wg_reconcile('$DEV')" >/dev/null
check "the foreign root is left alone" test "$(tc qdisc show dev "$DEV" root | grep -c "^qdisc htb 1: root")" -eq 1
check "one warning over three passes" test \
	"$(grep -c 'could not apply the speed limits on interface' "$TMP/pg/server.log" || true)" -eq 1
tc qdisc del dev "$DEV" root
q -c "SELECT count(*) FROM wgpeer.wg_reconcile('$DEV')" >/dev/null
rates_cleared() { [ -z "$(rates_error)" ]; }
check "removed: lim's class is back" wait_until 10 class_is "$slot" 3Mbit
check "and rates_error is cleared" wait_until 10 rates_cleared
check "a LOG says the limits apply again" \
	grep -q 'applies the speed limits on interface "'"$DEV"'" again' "$TMP/pg/server.log"

tap_summary rates_test
