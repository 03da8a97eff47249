#!/bin/bash
# Locations, moving and the standing subscription link end to end on this
# host, no VM (issue 26): a primary and two nodes (test/node_lib.sh), node
# a serving location 'de' and node b location 'nl' with wireguard-go, both
# interfaces with the same server key; a client in its own namespace,
# joined to both nodes by veth pairs, whose config comes from the
# subscription link.  Run as root after `make install`:
#   bash test/locations_e2e.sh
# Checks:
#	1. wg_create_peer(location => 'de') puts the peer on node a; the
#	   client, configured from a subscription fetch, pings through node a;
#	2. wg_move_peer() on the primary to node b's interface: the returned
#	   config changes only Address and Endpoint; the peer leaves node a's
#	   interface and appears on node b's, the primary marks it active
#	   again, an event 'moved' says from where to where;
#	3. the client, its config fetched again from the same link (a new
#	   fetch event), pings through node b with the same keys; the old
#	   server address no longer answers;
#	4. a pooled quota of the user: the client's pings through node b use
#	   it up, the primary's worker suspends the peer (reason quota), node
#	   b takes it off and the ping fails; a top-up brings it back;
#	5. every subscription runs, no unexpected ERROR in any log.
# Polls with bounds, never fixed sleeps.  Prints "ok"/"not ok" lines and
# "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "test/locations_e2e.sh makes network namespaces: run it as root" >&2
	exit 1
fi

S=$(($$ % 100000))
NS_A=wgpeer-le-a-$$				# node a's interface
NS_B=wgpeer-le-b-$$				# node b's
NS_C=wgpeer-le-c-$$				# the client, joined to both
IFA=wgla$S
IFB=wglb$S
CDEV=wglc$S
TMP=$(mktemp -d /tmp/wgpeer-locations.XXXXXX)
chmod 755 "$TMP"
. test/node_lib.sh
SUMMARY=

cleanup() {
	local status=$?
	set +e
	report_unexpected_errors "$status"
	pg_stop_all
	wg_dev_cleanup
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
	ip netns del "$NS_C" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

ping_from_client() { ip netns exec "$NS_C" ping -c 1 -W 1 "$1" >/dev/null 2>&1; }
no_ping() { ! ip netns exec "$NS_C" ping -c 3 -i 0.3 -W 1 "$1" >/dev/null 2>&1; }
# the client applies a config as a WireGuard app imports it: keys, peer
# and endpoint from the file, its address replaced
client_apply() {
	(umask 077 && wg-quick strip "$1" >"$1.stripped")
	ip netns exec "$NS_C" wg setconf "$CDEV" "$1.stripped"
	ip -n "$NS_C" addr flush dev "$CDEV"
	ip -n "$NS_C" addr add "$(sed -n 's/^Address = //p' "$1")" dev "$CDEV"
	ip -n "$NS_C" route replace 10.70.0.0/15 dev "$CDEV"
}

echo "== network: node a's and node b's namespaces, a client joined to both"
ip netns add "$NS_A"
ip netns add "$NS_B"
ip netns add "$NS_C"
veth_pair "$NS_A" le-a 192.168.241.1/24 "$NS_C" le-ca 192.168.241.2/24
veth_pair "$NS_B" le-b 192.168.242.1/24 "$NS_C" le-cb 192.168.242.2/24
wg_dev_add "$IFA" "$NS_A"
ip -n "$NS_A" addr add 10.70.0.1/16 dev "$IFA"
ip -n "$NS_A" link set "$IFA" up
wg_dev_add "$IFB" "$NS_B"
ip -n "$NS_B" addr add 10.71.0.1/16 dev "$IFB"
ip -n "$NS_B" link set "$IFB" up

echo "== a primary and nodes a ('de') and b ('nl')"
pg_start p
pg_start a "wgpeer.node = 'a'" "wgpeer.stats_interval = '1s'"
pg_start b "wgpeer.node = 'b'" "wgpeer.stats_interval = '1s'"
for n in p a b; do on "$n" q -c "CREATE EXTENSION wgpeer"; done
KEY=$(wg genkey)
on p q >/dev/null <<SQL
SELECT wgpeer.wg_add_node('a');
SELECT wgpeer.wg_add_node('b');
SELECT name FROM wgpeer.wg_add_interface('$IFA', '192.168.241.1:51820', '10.70.0.1/16',
	allowed_ips => '10.70.0.0/15', private_key => '$KEY', persistent_keepalive => 5,
	backend => 'uapi', node => 'a');
SELECT name FROM wgpeer.wg_add_interface('$IFB', '192.168.242.1:51820', '10.71.0.1/16',
	allowed_ips => '10.70.0.0/15', private_key => '$KEY', persistent_keepalive => 5,
	backend => 'uapi', node => 'b');
SELECT location FROM wgpeer.wg_set_interface_location('$IFA', 'de', 100);
SELECT location FROM wgpeer.wg_set_interface_location('$IFB', 'nl', 100);
SQL
for n in a b; do node_link p "$n"; done
check "node a has $IFA, node b has $IFB" wait_until 30 on b sql_true \
	"SELECT count(*) = 1 FROM wgpeer.interface WHERE name = '$IFB'"
check "node a's worker sets up $IFA" wait_until 30 test_eq 51820 wg show "$IFA" listen-port
check "node b's worker sets up $IFB" wait_until 30 test_eq 51820 wg show "$IFB" listen-port

echo "== 1. a peer placed in 'de', its config from the subscription link"
IFS=$'\t' read -r CAROL CAROL_KEY CAROL_IF < <(on p q -c "SELECT peer_id, public_key, interface
	FROM wgpeer.wg_create_peer('carol', location => 'de', config_name => 'carol-laptop')")
same "placed on node a's interface" "$IFA" "$CAROL_IF"
TOKEN=$(on p q -c "SELECT wgpeer.wg_subscription_token('carol')")
(umask 077 && on p q -c "SELECT wgpeer.wg_subscription_fetch_config('$TOKEN', 'carol-laptop')" \
	>"$TMP/carol.conf")
check "the fetched config names node a's endpoint" grep -qx 'Endpoint = 192.168.241.1:51820' \
	"$TMP/carol.conf"
check "carol appears on $IFA" wait_until 30 on_dev "$IFA" "$CAROL_KEY"
wg_client_up "$CDEV" "$NS_C" "$TMP/carol.conf" 10.70.0.0/15
check "the client pings 10.70.0.1 through node a" wait_until 30 ping_from_client 10.70.0.1
check "the primary marks carol active" wait_until 30 status_is p "$CAROL" active

echo "== 2. moved to node b ('nl') in one primary transaction"
CHANGED=$(on p q -c "SELECT changed FROM wgpeer.wg_move_peer('$CAROL', '$IFB')")
same "the client changes only Address and Endpoint" "{Address,Endpoint}" "$CHANGED"
check "carol leaves node a's interface" wait_until 30 off_dev "$IFA" "$CAROL_KEY"
check "carol appears on node b's interface" wait_until 30 on_dev "$IFB" "$CAROL_KEY"
check "node a has no row of carol" wait_until 30 on a sql_true \
	"SELECT count(*) = 0 FROM wgpeer.peer WHERE peer_id = '$CAROL'"
check "$IFA holds exactly what the primary wants" wait_until 30 dev_converged "$IFA"
check "$IFB holds exactly what the primary wants" wait_until 30 dev_converged "$IFB"
check "the primary marks carol active on node b" wait_until 30 on p sql_true \
	"SELECT status = 'active' AND node = 'b' FROM wgpeer.peer WHERE peer_id = '$CAROL'"
same "an event 'moved' says from where to where" "$IFA a $IFB b" \
	"$(on p q -F ' ' -c "SELECT detail->>'from_interface', detail->>'from_node', interface,
		detail->>'node' FROM wgpeer.event WHERE kind = 'moved' AND peer_id = '$CAROL'")"

echo "== 3. the client fetches its config again and pings through node b"
(umask 077 && on p q -c "SELECT config FROM wgpeer.wg_subscription_fetch('$TOKEN')
	WHERE config_name = 'carol-laptop'" >"$TMP/carol2.conf")
same "the new config's Endpoint is node b's" "Endpoint = 192.168.242.1:51820" \
	"$(grep '^Endpoint' "$TMP/carol2.conf")"
same "its keys are the same" "$(grep -E '^(PrivateKey|PublicKey|PresharedKey)' "$TMP/carol.conf")" \
	"$(grep -E '^(PrivateKey|PublicKey|PresharedKey)' "$TMP/carol2.conf")"
client_apply "$TMP/carol2.conf"
check "the client pings 10.71.0.1 through node b" wait_until 30 ping_from_client 10.71.0.1
check "node a's old address no longer answers" no_ping 10.70.0.1
same "two fetches logged for carol" 2 \
	"$(on p q -c "SELECT count(*) FROM wgpeer.event WHERE kind = 'subscription_fetched'
		AND user_id = 'carol'")"
check "node b's handshake reaches the primary" wait_until 30 on p sql_true \
	"SELECT latest_handshake > now() - interval '5 minutes' AND endpoint LIKE '192.168.242.2:%'
	 FROM wgpeer.peer_status WHERE peer_id = '$CAROL'"

echo "== 4. a pooled quota: the user's traffic through node b suspends, a top-up resumes"
on p q -c "SELECT quota_bytes FROM wgpeer.wg_set_user_quota('carol', 20000, 'month')" >/dev/null
ip netns exec "$NS_C" ping -c 40 -i 0.2 -s 1000 -W 1 10.71.0.1 >/dev/null 2>&1 || true
check "the primary suspends carol with reason quota" wait_until 60 on p sql_true \
	"SELECT status = 'suspended' AND suspended_reason = 'quota'
	 FROM wgpeer.peer WHERE peer_id = '$CAROL'"
check "a quota_reached event of scope user" on p sql_true \
	"SELECT count(*) = 1 FROM wgpeer.event WHERE kind = 'quota_reached'
	 AND user_id = 'carol' AND detail->>'scope' = 'user'"
check "carol leaves node b's interface" wait_until 30 off_dev "$IFB" "$CAROL_KEY"
check "the client's ping fails" no_ping 10.71.0.1
on p q -c "SELECT kind FROM wgpeer.wg_add_traffic('carol', 100000000)" >/dev/null
check "a top-up resumes carol, back on node b's interface" wait_until 30 on_dev "$IFB" "$CAROL_KEY"
check "the client pings through node b again" wait_until 30 ping_from_client 10.71.0.1
same "the ledger explains the balance" "quota 20000, top_up 100000000" \
	"$(on p q -c "SELECT string_agg(kind || ' ' || bytes, ', ' ORDER BY at, kind)
		FROM wgpeer.traffic_ledger WHERE user_id = 'carol'")"

echo "== 5. throughout"
for n in p a b; do
	check "every subscription of $n runs" wait_until 30 streaming "$n"
	none "no unexpected ERROR in $n's log" unexpected_errors "$n"
done

SUMMARY=1
tap_summary locations_e2e
