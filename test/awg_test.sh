#!/bin/bash
# AmneziaWG: wgpeer's configs and devices against the real thing, built
# from ../shared/thirdparty (never from the network).  Run as root after
# `make install`:  bash test/awg_test.sh
#
# On the host:
#   - the amneziawg kernel module is built against Debian's
#     linux-headers-<version>-amd64 of the kernel the test VM boots, and
#     awg / awg-quick from amneziawg-tools (cached in /var/tmp by the
#     sources' checksum);
#   - every config wgpeer renders for a set of AmneziaWG interfaces and
#     peers (single and range H, S3/S4, signature packets, a client's own
#     junk profile) is accepted by `awg-quick strip` and by awg's config
#     parser (`awg setconf`, stopped only by the missing device), carries
#     the parameters the database holds, and its QR code decodes to it;
#     its AmneziaVPN vpn:// link (wg_peer_amnezia_uri) inflates to the
#     same config and parameters.
# Then, in the test VM (test/vm/run.sh), with the module loaded:
#   - wgpeer's worker sets a kernel AmneziaWG interface's key, port and
#     parameters (read back with `awg showconf`); a client in another
#     network namespace, set up from its rendered config with awg-quick
#     strip and awg setconf, completes a handshake and pings the server;
#   - tcpdump on the veth: junk packets of Jmin..Jmax bytes come before the
#     handshake, and no packet starts with WireGuard's message types 1-4,
#     while the same capture of a plain WireGuard interface does show them
#     (so the check can fail);
#   - a parameter changed by hand with `awg set` is restored by
#     wg_reconcile(), and the tunnel still carries pings;
#   - a device recreated between reconciles gets its key, port and
#     parameters back with the next batch of peer changes;
#   - the server file the worker exports (wgpeer.export_dir) brings the
#     interface back with `awg-quick up`, parameters and peers included.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "test/awg_test.sh builds a kernel module and boots a VM: run it as root" >&2
	exit 1
fi
# the VM's PATH is its own: the host passes the PostgreSQL to use
if [ "${1:-}" = --pg-bin ]; then
	export PG_BIN=$2 PATH=$2:$PATH
fi
. test/apt.sh
. test/cluster.sh
. test/tap.sh

THIRDPARTY=${WGPEER_THIRDPARTY:-$(realpath ..)/shared/thirdparty}
[ -d "$THIRDPARTY" ] || THIRDPARTY=/work/shared/thirdparty

# where the builds are kept: visible in the VM (its /tmp is a fresh tmpfs)
sums=$(cat "$THIRDPARTY"/amneziawg-*.tar.gz | sha256sum | cut -c1-12)
BUILD=/var/tmp/wgpeer-awg-$sums
export PATH="$BUILD/bin:$PATH"

# the SQL helpers: one value, as text
q() { cluster_psql -At "$@"; }

# The parameters every interface here starts from (those the thirdparty
# notes saw handshake), as the jsonb wg_add_interface takes.
AWG='{"jc": 4, "jmin": 40, "jmax": 70, "s1": 20, "s2": 30,
      "h1": 123456, "h2": 234567, "h3": 345678, "h4": 456789}'

if [ -z "${WGPEER_IN_VM:-}" ]; then
	# the kernel the VM boots, and its headers
	kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
	kver=${kpkg#linux-image-}
	need_packages "linux-headers-$kver" tcpdump zbar-tools libmnl-dev
	if [ ! -f "$BUILD/$kver/amneziawg.ko" ] || [ ! -x "$BUILD/bin/awg" ]; then
		echo "== building the amneziawg module for $kver and awg, awg-quick"
		src=$(mktemp -d /var/tmp/wgpeer-awg-src.XXXXXX)
		tar -xzf "$THIRDPARTY/amneziawg-linux-kernel-module.tar.gz" -C "$src"
		tar -xzf "$THIRDPARTY/amneziawg-tools.tar.gz" -C "$src"
		make -s -C "$src/amneziawg-linux-kernel-module/src" \
			KERNELDIR="/usr/src/linux-headers-$kver" >/dev/null 2>&1
		make -s -C "$src/amneziawg-tools/src" >/dev/null 2>&1
		mkdir -p "$BUILD/$kver" "$BUILD/bin"
		cp "$src/amneziawg-linux-kernel-module/src/amneziawg.ko" "$BUILD/$kver/"
		cp "$src/amneziawg-tools/src/wg" "$BUILD/bin/awg"
		cp "$src/amneziawg-tools/src/wg-quick/linux.bash" "$BUILD/bin/awg-quick"
		chmod -R a+rX "$BUILD"
		rm -rf "$src"
	fi

	echo "== configs: awg-quick strip, awg's parser, QR codes"
	T=$(mktemp -d /tmp/wgpeer-awg.XXXXXX)
	chmod 755 "$T"
	trap 'cluster_ctl -m immediate -w stop >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
	cluster_start "$T/pg"
	q -c "CREATE EXTENSION wgpeer" >/dev/null
	q >/dev/null <<SQL
SELECT name FROM wgpeer.wg_add_interface('awga', '192.0.2.1:51831',
	'10.62.0.1/24', address6 => 'fd00:62::1/64', dns => '10.62.0.1',
	mtu => 1380, persistent_keepalive => 25, flavor => 'amneziawg',
	awg => '$AWG');
SELECT name FROM wgpeer.wg_add_interface('awgb', '[2001:db8::1]:51832',
	'10.63.0.1/24', preshared_keys => false, flavor => 'amneziawg',
	awg => '{"jc": 10, "jmin": 64, "jmax": 1024, "s1": 100, "s2": 120,
	         "s3": 32, "s4": 16, "h1": "100-200", "h2": "300-300",
	         "h3": "1000-4000000000", "h4": 4000000001,
	         "i1": "<b 0xc2000000011234567800><r 40>", "i2": "<c><t><rc 8><rd 4>"}');
SELECT name FROM wgpeer.wg_add_interface('awgc', '192.0.2.3:51833',
	'10.64.0.1/24', flavor => 'amneziawg');
SELECT count(wgpeer.wg_create_peer(u, interface => i))
FROM (VALUES ('a1', 'awga'), ('a2', 'awga'), ('b1', 'awgb'), ('b2', 'awgb'),
             ('c1', 'awgc')) v(u, i);
SELECT wgpeer.wg_set_peer_awg(peer_id, '{"jc": 2, "jmin": 8, "jmax": 16,
	"i1": "<r 12>"}') FROM wgpeer.peer WHERE user_id = 'a2';
SELECT wgpeer.wg_set_peer_awg(peer_id, '{"i1": ""}')
FROM wgpeer.peer WHERE user_id = 'b2';
SQL
	while IFS='|' read -r peer_id user; do
		# psql ends the value with a newline of its own
		(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$peer_id')" |
			head -c -1 >"$T/$user.conf")
		check "$user: awg-quick strip accepts its config" \
			bash -c "awg-quick strip '$T/$user.conf' >'$T/$user.stripped' 2>'$T/$user.err'"
		# awg parses the whole file (endpoints resolved) before it looks
		# for the device, which this host does not have
		awg setconf awgnosuch0 "$T/$user.stripped" >"$T/$user.set" 2>&1 || true
		check "$user: awg setconf parses it and stops only at the device" \
			grep -q '^Unable to modify interface: ' "$T/$user.set"
		grep -q '^Unable to modify interface: ' "$T/$user.set" || cat "$T/$user.set"
		# each parameter the database holds for this client is in the file
		want=$(q -c "SELECT string_agg(format('%s = %s', upper(left(k, 1)) ||
				substr(k, 2), v), E'\n' ORDER BY k)
			FROM wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface,
				jsonb_each_text(i.awg || coalesce(p.awg, '{}')) e(k, v)
			WHERE p.peer_id = '$peer_id' AND v <> ''
			  AND NOT (k IN ('s3', 's4') AND v = '0')")
		got=$(grep -E '^(J|S|H|I)[a-z0-9]* = ' "$T/$user.stripped" | sort)
		same "$user: the stripped config carries its AWG parameters" \
			"$(echo "$want" | sort)" "$got"
		q -c "SELECT encode(wgpeer.wg_peer_qr_png('$peer_id'), 'base64')" |
			base64 -d >"$T/$user.png"
		zbarimg -q --raw -Sbinary "$T/$user.png" >"$T/$user.qr" 2>/dev/null || true
		check "$user: its QR code decodes to the config" cmp -s "$T/$user.qr" "$T/$user.conf"
		# AmneziaVPN's vpn:// link, inflated as the app does (base64url,
		# qUncompress: 4-byte length, zlib), carries the same config and
		# parameters
		uri=$(q -c "SELECT wgpeer.wg_peer_amnezia_uri('$peer_id')")
		doc=$(python3 -c '
import base64, json, sys, zlib
b = sys.argv[1][len("vpn://"):]
raw = base64.urlsafe_b64decode(b + "=" * (-len(b) % 4))
doc = zlib.decompress(raw[4:])
assert int.from_bytes(raw[:4], "big") == len(doc)
print(json.dumps(json.loads(doc)))' "$uri")
		same "$user: its vpn:// link decodes to its config and parameters" t \
			"$(q -v doc="$doc" -v peer="$peer_id" <<'SQL'
SELECT d -> 'containers' -> 0 ->> 'container' = 'amnezia-awg'
   AND d ->> 'defaultContainer' = 'amnezia-awg'
   AND d ->> 'hostName' = btrim(regexp_replace(i.endpoint, ':[0-9]+$', ''), '[]')
   AND a ->> 'port' = substring(i.endpoint FROM ':([0-9]+)$')
   AND l ->> 'config' = wgpeer.wg_peer_config(p.peer_id)
   AND l ->> 'client_priv_key' = p.private_key
   AND l ->> 'client_pub_key' = p.public_key
   AND l ->> 'server_pub_key' = i.public_key
   AND l ->> 'client_ip' = host(p.address)
   AND NOT EXISTS (SELECT FROM jsonb_each_text(i.awg || coalesce(p.awg, '{}')) e(k, v)
                   WHERE v <> '' AND NOT (k IN ('s3', 's4') AND v = '0')
                     AND (a ->> (upper(left(k, 1)) || substr(k, 2)) IS DISTINCT FROM v
                          OR l ->> (upper(left(k, 1)) || substr(k, 2)) IS DISTINCT FROM v))
FROM (SELECT :'doc'::jsonb AS d) x,
     LATERAL (SELECT d -> 'containers' -> 0 -> 'awg' AS a) y,
     LATERAL (SELECT (a ->> 'last_config')::jsonb AS l) z,
     wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface
WHERE p.peer_id = :'peer'
SQL
)"
	done < <(q -F'|' -c "SELECT peer_id, user_id FROM wgpeer.peer ORDER BY user_id")
	cluster_ctl -m immediate -w stop >/dev/null 2>&1 || true
	tap_summary "awg_test (host)" || exit 1

	echo "== on the wire, in the test VM"
	exec bash test/vm/run.sh test/awg_test.sh --pg-bin "$PG_BIN"
fi

# ---------------------------------------------------------------- in the VM
T=$(mktemp -d /run/wgpeer-awg.XXXXXX)
chmod 755 "$T"
CLUSTER_NET_ADMIN=1
. test/wireguard.sh
NS=wgpeer-awgc-$$
cleanup() {
	[ -z "${TCPDUMP:-}" ] || kill "$TCPDUMP" 2>/dev/null || true
	cluster_ctl -m immediate -w stop >/dev/null 2>&1 || true
	[ -z "${WGPEER_VM_OUT:-}" ] || cp "$T/pg/server.log" "$WGPEER_VM_OUT/awg_test.server.log" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

kver=$(uname -r)
insmod "$BUILD/$kver/amneziawg.ko"
check "the amneziawg module is loaded" test -d /sys/module/amneziawg

mkdir "$T/out"
chown "$WGPEER_USER" "$T/out"
cluster_start "$T/pg" "wgpeer.database = 'postgres'" "wgpeer.reconcile_interval = '1h'" \
	"wgpeer.export_dir = '$T/out/export'"
q -c "CREATE EXTENSION wgpeer" >/dev/null

# the link: the server here, the clients in $NS
ip netns add "$NS"
veth_pair "" awgv0 10.97.0.1/24 "$NS" awgv1 10.97.0.2/24

# the server interfaces: awg0 (AmneziaWG) and wgp0 (plain, for the
# control capture); the worker sets their keys, ports and parameters
ip link add awg0 type amneziawg
ip addr add 10.65.0.1/24 dev awg0
ip link set awg0 up
ip link add wgp0 type wireguard
ip addr add 10.66.0.1/24 dev wgp0
ip link set wgp0 up
q >/dev/null <<SQL
SELECT name FROM wgpeer.wg_add_interface('awg0', '10.97.0.1:51840',
	'10.65.0.1/24', listen_port => 51840, preshared_keys => false,
	flavor => 'amneziawg', awg => '$AWG');
SELECT name FROM wgpeer.wg_add_interface('wgp0', '10.97.0.1:51841',
	'10.66.0.1/24', listen_port => 51841, preshared_keys => false);
SQL
params_set() { awg showconf awg0 2>/dev/null | grep -qx 'H4 = 456789'; }
check "the worker set awg0's AmneziaWG parameters" wait_until 120 params_set
shown=$(awg showconf awg0 | grep -E '^(ListenPort|Jc|Jmin|Jmax|S1|S2|H1|H2|H3|H4) = ' | tr '\n' ' ')
same "awg showconf awg0" \
	"ListenPort = 51840 Jc = 4 Jmin = 40 Jmax = 70 S1 = 20 S2 = 30 H1 = 123456 H2 = 234567 H3 = 345678 H4 = 456789 " \
	"$shown"

# capture both ports on the server's end of the link from here on
tcpdump -i awgv0 -U -n -w "$T/wire.pcap" udp >/dev/null 2>&1 &
TCPDUMP=$!
sleep 2

# an AmneziaWG client from its rendered config, and a plain one
A_ID=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('alice', interface => 'awg0')")
(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$A_ID')" >"$T/alice.conf")
awg-quick strip "$T/alice.conf" >"$T/alice.stripped"
ip -n "$NS" link add awgc0 type amneziawg
ip netns exec "$NS" awg setconf awgc0 "$T/alice.stripped"
ip -n "$NS" addr add "$(sed -n 's/^Address = //p' "$T/alice.conf")" dev awgc0
ip -n "$NS" link set awgc0 up
ip -n "$NS" route add 10.65.0.0/24 dev awgc0
W_ID=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('wendy', interface => 'wgp0')")
(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$W_ID')" >"$T/wendy.conf")
wg_client_up wgc0 "$NS" "$T/wendy.conf" 10.66.0.0/24

ping_awg() { ip netns exec "$NS" ping -c 1 -W 2 10.65.0.1 >/dev/null 2>&1; }
ping_wg() { ip netns exec "$NS" ping -c 1 -W 2 10.66.0.1 >/dev/null 2>&1; }
check "the AmneziaWG client pings the server through the tunnel" wait_until 120 ping_awg
check "the plain WireGuard client pings its server" wait_until 120 ping_wg
handshook() { [ "$(awg show awg0 latest-handshakes | awk '{ print $2 }')" -gt 0 ]; }
check "awg0 had a handshake with alice" handshook
sleep 1
kill "$TCPDUMP"
wait "$TCPDUMP" 2>/dev/null || true
TCPDUMP=

# per packet to a server port: "port size first-4-bytes-as-little-endian",
# in capture order (the pcap read as written: Ethernet, IPv4, UDP)
python3 - "$T/wire.pcap" >"$T/wire.txt" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
off = 24
while off + 16 <= len(data):
    incl = struct.unpack_from('<I', data, off + 8)[0]
    pkt = data[off + 16:off + 16 + incl]
    off += 16 + incl
    if len(pkt) < 14 + 20 + 8 or pkt[12:14] != b'\x08\x00':
        continue
    ihl = (pkt[14] & 0x0f) * 4
    udp = pkt[14 + ihl:]
    sport, dport = struct.unpack_from('!HH', udp, 0)
    payload = udp[8:]
    first = struct.unpack_from('<I', payload.ljust(4, b'\0'), 0)[0]
    port = dport if dport in (51840, 51841) else sport
    print(port, len(payload), first)
PY
awg_pkts=$(awk '$1 == 51840' "$T/wire.txt" | wc -l)
wg_pkts=$(awk '$1 == 51841' "$T/wire.txt" | wc -l)
check "the capture holds AmneziaWG packets ($awg_pkts)" test "$awg_pkts" -gt 0
check "and WireGuard packets ($wg_pkts)" test "$wg_pkts" -gt 0
typed() { awk -v port="$1" '$1 == port && $3 >= 1 && $3 <= 4' "$T/wire.txt" | wc -l; }
same "no AmneziaWG packet starts with a WireGuard message type (1-4)" 0 "$(typed 51840)"
check "the plain WireGuard capture does show them" test "$(typed 51841)" -gt 0
# before the first handshake initiation (148 + S1 = 168 bytes): at least
# Jc = 4 junk packets of Jmin..Jmax = 40..70 bytes
junk=$(awk '$1 == 51840 { if ($2 == 168) exit; if ($2 >= 40 && $2 <= 70) n++ }
	END { print n + 0 }' "$T/wire.txt")
check "junk packets of 40..70 bytes come before the handshake ($junk)" test "$junk" -ge 4
check "a padded handshake initiation (168 bytes) was sent" \
	grep -q '^51840 168 ' "$T/wire.txt"

# a hand edit is undone by reconcile
awg set awg0 jc 9 h1 7777
check "the hand edit took" bash -c "awg showconf awg0 | grep -qx 'Jc = 9'"
same "wg_reconcile('awg0') reports no error" "" \
	"$(q -c "SELECT coalesce(error, '') FROM wgpeer.wg_reconcile('awg0')")"
restored() { awg showconf awg0 | grep -qx 'Jc = 4' && awg showconf awg0 | grep -qx 'H1 = 123456'; }
check "wg_reconcile() restored Jc and H1" wait_until 60 restored
check "alice still pings" wait_until 60 ping_awg
status=$(q -c "SELECT coalesce(last_error, 'none') FROM wgpeer.interface_status WHERE interface = 'awg0'")
same "awg0 has no error" none "$status"

# a device recreated between reconciles (reconcile_interval is 1h here)
# is a new device: the next batch of peer changes sends it the key, port
# and AmneziaWG parameters, as the recreated-device check does too (an
# AmneziaWG device without them is plain WireGuard, and no client config
# connects to it).  A reset in place by hand is drift, which the reconcile
# above repairs: batches send the device's settings only when that device
# may lack them.
ip link del awg0
ip link add awg0 type amneziawg
ip addr add 10.65.0.1/24 dev awg0
ip link set awg0 up
B_ID=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('bob', interface => 'awg0')")
B_KEY=$(q -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$B_ID'")
bob_there() { awg show awg0 peers | grep -qxF "$B_KEY"; }
check "the batch put bob on awg0" wait_until 120 bob_there
shown=$(awg showconf awg0 | grep -E '^(ListenPort|Jc|Jmin|Jmax|S1|S2|H1|H2|H3|H4) = ' | tr '\n' ' ')
same "and set its AmneziaWG parameters again" \
	"ListenPort = 51840 Jc = 4 Jmin = 40 Jmax = 70 S1 = 20 S2 = 30 H1 = 123456 H2 = 234567 H3 = 345678 H4 = 456789 " \
	"$shown"
check "alice still pings" wait_until 60 ping_awg

# the exported server file brings the server up with awg-quick alone:
# key, port, parameters and both peers, without PostgreSQL
exported() { grep -q '^H4 = 456789$' "$T/out/export/awg0.conf" &&
	[ "$(grep -c '^\[Peer\]' "$T/out/export/awg0.conf")" = 2 ]; }
check "the worker exported awg0.conf with its parameters and peers" wait_until 120 exported
cluster_ctl -m immediate -w stop >/dev/null 2>&1 || true
ip link del awg0
cp "$T/out/export/awg0.conf" "$T/awg0.conf"
check "awg-quick up brings awg0 up from the exported file" \
	bash -c "awg-quick up '$T/awg0.conf' >'$T/quick.log' 2>&1" || cat "$T/quick.log"
shown=$(awg showconf awg0 | grep -E '^(ListenPort|Jc|Jmin|Jmax|S1|S2|H1|H2|H3|H4) = ' | tr '\n' ' ')
same "with its port and AmneziaWG parameters" \
	"ListenPort = 51840 Jc = 4 Jmin = 40 Jmax = 70 S1 = 20 S2 = 30 H1 = 123456 H2 = 234567 H3 = 345678 H4 = 456789 " \
	"$shown"
same "and its two peers" 2 "$(awg show awg0 peers | wc -l)"

tap_summary "awg_test (VM)"
