#!/bin/bash
# Generated client configs are what WireGuard's own tools accept: each is
# stripped with `wg-quick strip`, loaded with `wg setconf` into a real
# (wireguard-go) interface in a private network namespace, and read back
# with `wg showconf`, which must show exactly the keys, endpoint and
# allowed IPs the database holds.  Run as root after `make install`.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh
. test/tap.sh

NS=wgpeer-cfg
DEV=wgcfg0
TMP=$(mktemp -d /tmp/wgpeer-cfg.XXXXXX)
cleanup() {
	ip netns del "$NS" 2>/dev/null || true
	cluster_stop
	rm -rf "$TMP"
}
trap cleanup EXIT

cluster_start "$TMP/pg"
cluster_psql >/dev/null <<'SQL'
CREATE EXTENSION wgpeer;
-- no keepalive: nothing is ever sent to the (loopback) endpoint
SELECT name FROM wgpeer.wg_add_interface('wgdual', '127.0.0.1:51999', '10.77.0.1/24',
	address6 => 'fd00:77::1/64', dns => '10.77.0.1, resolver.example',
	mtu => 1380);
SELECT name FROM wgpeer.wg_add_interface('wgv4', '[::1]:51998', '10.78.0.1/24',
	preshared_keys => false, allowed_ips => '10.78.0.0/24');
SELECT user_id FROM wgpeer.wg_create_peer('dual', interface => 'wgdual');
SELECT user_id FROM wgpeer.wg_create_peer('dual-dns', interface => 'wgdual',
	dns => '9.9.9.9', config_name => 'dual-dns');
SELECT user_id FROM wgpeer.wg_create_peer('v4', interface => 'wgv4');
SQL

ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
# the stripped config has none of wg-quick's own keys
stripped_clean() { ! grep -qE '^(Address|DNS|MTU) ' "$TMP/stripped.conf"; }
while IFS='|' read -r peer_id; do
	cluster_psql -At -c "SELECT wgpeer.wg_peer_config('$peer_id')" >"$TMP/wgpeer.conf"
	# what the database says the config must contain
	IFS='|' read -r priv psk server endpoint allowed < <(cluster_psql -At -c "
		SELECT p.private_key, coalesce(p.preshared_key, '(none)'),
		       i.public_key, i.endpoint, i.allowed_ips
		FROM wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface
		WHERE p.peer_id = '$peer_id'")
	wg-quick strip "$TMP/wgpeer.conf" >"$TMP/stripped.conf" 2>"$TMP/strip.err"
	ip netns exec "$NS" wireguard-go "$DEV" >/dev/null 2>&1
	ip netns exec "$NS" wg setconf "$DEV" "$TMP/stripped.conf"
	shown=$(ip netns exec "$NS" wg show "$DEV" dump)
	ip netns exec "$NS" ip link del "$DEV"
	want_endpoint=$(echo "$endpoint" | sed 's/^\[\(.*\)\]:/[\1]:/')
	want_allowed=$(echo "$allowed" | sed 's/, /,/g')
	got_priv=$(echo "$shown" | sed -n 1p | cut -f1)
	IFS=$'\t' read -r got_pub got_psk got_endpoint got_allowed _ < <(echo "$shown" | sed -n 2p)
	got_psk=${got_psk:-"(none)"}
	for pair in "private key|$priv|$got_priv" "server key|$server|$got_pub" \
		"preshared key|$psk|$got_psk" "endpoint|$want_endpoint|$got_endpoint" \
		"allowed ips|$want_allowed|$got_allowed"; do
		IFS='|' read -r what want got <<<"$pair"
		same "$peer_id $what as wg shows it" "$want" "$got"
	done
	# wg-quick strip must drop only the wg-quick keys, nothing else
	check "$peer_id: wg-quick strip leaves no wg-quick keys" stripped_clean
done < <(cluster_psql -At -c "SELECT peer_id FROM wgpeer.peer ORDER BY user_id")
# no peer at all would check nothing
[ $((PASSED + FAILED)) -gt 0 ] || { echo "config_wg: no peer to check" >&2; exit 1; }
tap_summary config_wg
