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
# Exits non-zero on the first mismatch.
set -euo pipefail
cd "$(dirname "$0")/../.."

IF=wgsmoke0
RUNS=${1:-3}
DRIVER=test/vm/wgnl_driver
make -s "$DRIVER"
T=$(mktemp -d)
trap 'drop_if; rm -rf "$T"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

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
# to $T/last.
apply() {
	"$DRIVER" apply "$IF" "$1" >"$T/last" || fail "apply $1"
}

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

# Compare two files or fail, showing the start of the difference.
same() {
	if ! cmp -s "$1" "$2"; then
		diff "$1" "$2" | head -n 10 >&2
		fail "$3"
	fi
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
[ "$(wg show "$IF" private-key)" = "$PRIV" ] || fail "private key not set"
[ "$(wg show "$IF" listen-port)" = 51820 ] || fail "listen port not set"
[ "$(wg show "$IF" peers | wc -l)" -eq 5000 ] || fail "expected 5000 peers"
peers_in "$T/add5000" >"$T/want"
peers_now >"$T/got"
same "$T/want" "$T/got" "5,000 peers: allowed IPs differ"
grep -q "messages=1 " "$T/last" && fail "5,000 peers in one message?"

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
grep -q "messages=1 " "$T/last" && fail "2,000 allowed IPs were not split"
cat "$T/add5000" "$T/big1" | peers_in >"$T/want"
peers_now >"$T/got"
same "$T/want" "$T/got" "big peer: allowed IPs differ"
[ "$(wg show "$IF" persistent-keepalive | awk -v k="$BIG" '$1 == k { print $2 }')" = 25 ] ||
	fail "big peer: keepalive not set"
# a split add must replace the old IPs once, not per message
apply "$T/big2"
cat "$T/add5000" "$T/big2" | peers_in >"$T/want"
peers_now >"$T/got"
same "$T/want" "$T/got" "big peer replaced: allowed IPs differ (continuation replaced or first part did not)"

echo "== removals: every 5th peer and the big one, in one batch"
awk 'NR % 5 == 0 { print "remove " $2 }' "$T/peers" >"$T/remove"
echo "remove $BIG" >>"$T/remove"
apply "$T/remove"
echo "   $(cat "$T/last")"
[ "$(wg show "$IF" peers | wc -l)" -eq 4000 ] || fail "expected 4000 peers after removals"
awk 'NR % 5 != 0' "$T/peers" | peers_in >"$T/want"
peers_now >"$T/got"
same "$T/want" "$T/got" "after removals: peers differ"
# removing peers that are already gone succeeds and changes nothing
apply "$T/remove"
[ "$(wg show "$IF" peers | wc -l)" -eq 4000 ] || fail "second removal changed something"

echo "== the same add batch twice"
apply "$T/add5000"
wg show "$IF" dump >"$T/dump1"
apply "$T/add5000"
wg show "$IF" dump >"$T/dump2"
same "$T/dump1" "$T/dump2" "applying the batch again changed the interface"
peers_in "$T/add5000" >"$T/want"
peers_now >"$T/got"
same "$T/want" "$T/got" "after re-adding: peers differ"

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
same "$T/theirs" "$T/ours" "wgnl_driver dump differs from wg show dump"
grep -q "$PSK" "$T/ours" || fail "preshared key missing from the dump"
grep -q '\[2001:db8::7\]:51001' "$T/ours" || fail "IPv6 endpoint missing from the dump"

echo "== a missing interface is ENODEV"
echo "peer $P1" >"$T/one"
if "$DRIVER" apply wgnosuch0 "$T/one" 2>"$T/err"; then
	fail "applying to a missing interface succeeded"
fi
grep -q "No such device" "$T/err" || fail "missing interface: $(cat "$T/err")"

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
	[ "$(wg show "$IF" peers | wc -l)" -eq 5000 ] || fail "timed driver run lost peers"

	reset_if
	t0=$(date +%s%N)
	wg addconf "$IF" "$T/add5000.conf"
	since "$t0" >>"$T/t_wg"
	[ "$(wg show "$IF" peers | wc -l)" -eq 5000 ] || fail "timed wg addconf run lost peers"
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

echo "netlink smoke: all checks passed"
