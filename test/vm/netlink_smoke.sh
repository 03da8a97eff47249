#!/bin/bash
# The netlink backend (src/netlink.c) against a real WireGuard kernel.
# Runs as root where `ip link add type wireguard` works: through
#	bash test/vm/run.sh test/vm/netlink_smoke.sh
# Drives test/vm/wgnl_driver and checks every result with wg(8):
#	5,000 peers in one batch; one peer with 2,000 allowed IPs (split across
#	messages), replaced by another 2,000; removals; the same batch applied
#	twice; the driver's dump against `wg show dump`; a missing interface.
# Then times the 5,000-peer apply against `wg addconf`: medians of $1 runs
# (default 3).
# Prints "netlink_smoke: N passed, N failed" and exits non-zero on any
# failure; a batch the driver fails to apply ends the run at once.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/tap.sh

IF=wgsmoke0
RUNS=${1:-3}
DRIVER=test/vm/wgnl_driver
make -s "$DRIVER"
T=$(mktemp -d)
trap 'drop_if; rm -rf "$T"' EXIT

# Delete the interface if it exists.  Its peers are removed first, in one
# batch: deleting an interface that still has 5,000 peers takes the kernel
# about 90 s under TCG, removing them over netlink about a second.
drop_if() {
	ip link show "$IF" >/dev/null 2>&1 || return 0
	wg show "$IF" peers | awk '{ print "remove " $1 }' >"$T/clear"
	[ ! -s "$T/clear" ] || "$DRIVER" apply "$IF" "$T/clear" >/dev/null
	ip link del "$IF"
}

# A fresh, empty interface.
reset_if() {
	drop_if
	ip link add "$IF" type wireguard
}

# Seconds elapsed since $1 (a `date +%s%N` reading).
since() {
	awk -v t0="$1" -v t1="$(date +%s%N)" 'BEGIN { printf "%.6f\n", (t1 - t0) / 1e9 }'
}

# Apply a batch file with the driver; its "messages=M seconds=S" line goes
# to $T/last.  A failed apply is a failed result that ends the run: every
# check after it would compare against a batch that is not there.
apply() {
	"$DRIVER" apply "$IF" "$1" >"$T/last" && return
	not_ok "wgnl_driver apply $(basename "$1")"
	tap_summary netlink_smoke || true
	exit 1
}

# peer_count_is N: the interface has N peers
peer_count_is() { [ "$(wg show "$IF" peers | wc -l)" -eq "$1" ]; }

# more_than_one_message: the last apply took more than one netlink message
more_than_one_message() { ! grep -q "messages=1 " "$T/last"; }

# "PUBKEY<TAB>IP,IP" for each peer on the interface, sorted; allowed IPs
# sorted within the peer.
peers_now() {
	wg show "$IF" dump | tail -n +2 | awk -F'\t' '{
		n = split($4, ips, ","); s = ""
		for (i = 1; i <= n; i++) print $1 "\t" ips[i]
	}' | sort
}

# The same for a batch file's "peer" lines.
peers_in() {
	awk '$1 == "peer" {
		for (i = 3; i <= NF; i++) if ($i == "allowed") {
			n = split($(i + 1), ips, ",")
			for (j = 1; j <= n; j++) print $2 "\t" ips[j]
		}
	}' "$@" | sort
}

# Median of the numbers on stdin.
median() {
	sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

PRIV=$(wg genkey)
"$DRIVER" gen 5000 >"$T/peers"
{
	echo "private-key $PRIV"
	echo "listen-port 51820"
	cat "$T/peers"
} >"$T/add5000"

echo "== 5,000 peers in one batch"
reset_if
apply "$T/add5000"
echo "   $(cat "$T/last")"
same "private key set" "$PRIV" "$(wg show "$IF" private-key)"
same "listen port set" 51820 "$(wg show "$IF" listen-port)"
check "5000 peers" peer_count_is 5000
peers_in "$T/add5000" >"$T/want"
peers_now >"$T/got"
check "5,000 peers: allowed IPs as in the batch" same_files "$T/want" "$T/got"
check "5,000 peers took more than one message" more_than_one_message

echo "== one peer with 2,000 allowed IPs, then another 2,000 replacing them"
BIG=$(wg genkey | wg pubkey)
# 172.16.0.0/21 one /32 at a time; then 172.20.0.0/21
bigpeer() {
	awk -v key="$BIG" -v net="$1" 'BEGIN {
		printf "peer %s keepalive 25 allowed ", key
		for (i = 0; i < 2000; i++)
			printf "%s172.%d.%d.%d/32", i ? "," : "", net, int(i / 256), i % 256
		print ""
	}'
}
bigpeer 16 >"$T/big1"
bigpeer 20 >"$T/big2"
apply "$T/big1"
echo "   $(cat "$T/last")"
check "2,000 allowed IPs split across messages" more_than_one_message
cat "$T/add5000" "$T/big1" | peers_in >"$T/want"
peers_now >"$T/got"
check "big peer: allowed IPs as in the batch" same_files "$T/want" "$T/got"
same "big peer: keepalive set" 25 \
	"$(wg show "$IF" persistent-keepalive | awk -v k="$BIG" '$1 == k { print $2 }')"
# a split add must replace the old IPs once, not per message
apply "$T/big2"
cat "$T/add5000" "$T/big2" | peers_in >"$T/want"
peers_now >"$T/got"
check "big peer replaced: only the new allowed IPs (the first message replaces, continuations add)" \
	same_files "$T/want" "$T/got"

echo "== removals: every 5th peer and the big one, in one batch"
awk 'NR % 5 == 0 { print "remove " $2 }' "$T/peers" >"$T/remove"
echo "remove $BIG" >>"$T/remove"
apply "$T/remove"
echo "   $(cat "$T/last")"
check "4000 peers after removals" peer_count_is 4000
awk 'NR % 5 != 0' "$T/peers" | peers_in >"$T/want"
peers_now >"$T/got"
check "after removals: the remaining peers as in the batch" same_files "$T/want" "$T/got"
# removing peers that are already gone succeeds and changes nothing
apply "$T/remove"
check "a second removal changes nothing" peer_count_is 4000

echo "== the same add batch twice"
apply "$T/add5000"
wg show "$IF" dump >"$T/dump1"
apply "$T/add5000"
wg show "$IF" dump >"$T/dump2"
check "applying the batch again changes nothing" same_files "$T/dump1" "$T/dump2"
peers_in "$T/add5000" >"$T/want"
peers_now >"$T/got"
check "after re-adding: peers as in the batch" same_files "$T/want" "$T/got"

echo "== the driver's dump against wg show dump"
# endpoints, a preshared key and a keepalive, so every field is compared
PSK=$(wg genpsk)
P1=$(sed -n 1p "$T/peers" | awk '{ print $2 }')
P2=$(sed -n 2p "$T/peers" | awk '{ print $2 }')
wg set "$IF" peer "$P1" endpoint 192.0.2.7:51000 peer "$P2" endpoint '[2001:db8::7]:51001'
echo "peer $P1 preshared-key $PSK keepalive 15 allowed 10.0.0.1/32,fd00::1/128" >"$T/psk"
apply "$T/psk"
"$DRIVER" dump "$IF" >"$T/ours"
wg show "$IF" dump >"$T/theirs"
check "wgnl_driver dump equals wg show dump" same_files "$T/theirs" "$T/ours"
check "preshared key in the dump" grep -q "$PSK" "$T/ours"
check "IPv6 endpoint in the dump" grep -q '\[2001:db8::7\]:51001' "$T/ours"

echo "== a missing interface is ENODEV"
echo "peer $P1" >"$T/one"
# the driver fails on a missing interface
apply_missing_fails() { ! "$DRIVER" apply wgnosuch0 "$T/one" 2>"$T/err"; }
check "applying to a missing interface fails" apply_missing_fails
# its error says ENODEV; what it said instead is shown when not
enodev() {
	grep -q "No such device" "$T/err" && return
	sed 's/^/   /' "$T/err"
	return 1
}
check "the error says No such device" enodev

echo "== timing: 5,000 peers, wgnl_driver apply vs wg addconf (median of $RUNS runs)"
{
	printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n' "$PRIV"
	awk '{ printf "[Peer]\nPublicKey = %s\nAllowedIPs = %s\n", $2, $4 }' "$T/peers"
} >"$T/add5000.conf"
: >"$T/t_driver"
: >"$T/t_driver_inner"
: >"$T/t_wg"
for _ in $(seq "$RUNS"); do
	reset_if
	t0=$(date +%s%N)
	apply "$T/add5000"
	since "$t0" >>"$T/t_driver"
	sed 's/.*seconds=//' "$T/last" >>"$T/t_driver_inner"
	check "timed driver run: 5000 peers" peer_count_is 5000

	reset_if
	t0=$(date +%s%N)
	wg addconf "$IF" "$T/add5000.conf"
	since "$t0" >>"$T/t_wg"
	check "timed wg addconf run: 5000 peers" peer_count_is 5000
done
d=$(median <"$T/t_driver")
di=$(median <"$T/t_driver_inner")
w=$(median <"$T/t_wg")
printf '   wgnl_driver apply: %.3f s (process), %.3f s (open + set_device)\n' "$d" "$di"
printf '   wg addconf:        %.3f s (process)\n' "$w"
awk -v d="$d" -v w="$w" 'BEGIN { printf "   ratio driver/addconf: %.2f\n", d / w }'
if [ -n "${WGPEER_VM_OUT:-}" ]; then
	printf 'driver_s=%s driver_inner_s=%s addconf_s=%s\n' "$d" "$di" "$w" \
		>"$WGPEER_VM_OUT/netlink_smoke.times"
fi

tap_summary netlink_smoke
