#!/bin/bash
# Node mode across PostgreSQL majors (issue 20): operators upgrade their
# servers one at a time, so a primary on 15 drives a node on 17, and a
# primary on 17 drives a node on 15.  15 is the host's PostgreSQL (the one
# first in PATH); 17 runs in an overlay of today's Debian trixie chroot
# (test/chroot.sh) with this tree built and installed there.  A chroot
# shares the host's network and kernel: its server listens on a loopback
# port like the host's, logical replication crosses from one to the other,
# and its worker reaches the host's wireguard-go daemons through the
# UAPI socket directory, bind-mounted into it.  Run as root after
# `make install`:  bash test/node_mixed_test.sh
#
# Each direction, set up as test/node_test.sh does it (test/node_lib.sh:
# roles, wg_node_subscribe_sql, wg_node_collect_sql), with one node
# serving one wireguard-go interface in its own network namespace and a
# client joined to it:
#	1. the node gets its interface, the primary's key pair and port;
#	2. a peer created on the primary reaches the node's interface without
#	   its private key, the primary marks it active, queues nothing; a
#	   peer change called on the node fails with 25006;
#	3. the client, configured from the primary's config, pings through
#	   the node; handshake, endpoint and traffic reach the primary;
#	4. revoke on the primary removes the peer from the interface and the
#	   ping fails;
#	5. rows the node may not send, written as root on it (an outcome
#	   marking another node's peer active, a 999,999,999,999-byte counter
#	   of its own peer), change nothing on the primary and are recorded as
#	   node_rejected events; a later legitimate row flows;
#	6. every subscription runs, no client private key on the node, no
#	   unexpected ERROR in either log.
# WGPEER_ROOT_17=DIR uses DIR, a root that test/chroot.sh's wgpeer_root 17
# made already, instead of building one (about 1 to 4 minutes).  Prints
# "ok"/"not ok" lines and "N passed, N failed"; exits non-zero on any
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "test/node_mixed_test.sh makes chroots and network namespaces: run it as root" >&2
	exit 1
fi

. test/chroot.sh
own_wireguard_run "test/$(basename "$0")" "$@"
S=$(($$ % 100000))
OLD=$("$PG_BIN/pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
NEW=17
TMP=$(mktemp -d /tmp/wgpeer-node-mixed.XXXXXX)
chmod 755 "$TMP"
. test/node_lib.sh
NETNS=()
SUMMARY=						# set once every check has run

cleanup() {
	local status=$? name
	set +e
	report_unexpected_errors "$status"
	pg_stop_all
	wg_dev_cleanup
	for name in "${NETNS[@]}"; do ip netns del "$name" 2>/dev/null; done
	suite_root_release
	rm -rf "$TMP"
}
trap cleanup EXIT

echo "== [${SECONDS}s] PostgreSQL $NEW: a trixie overlay with this tree installed"
suite_root "$NEW" mixed

# quiet COMMAND...: COMMAND, its output dropped
quiet() { "$@" >/dev/null 2>&1; }

# mixed ROUND PRIMARY_MAJOR NODE_MAJOR: one direction, its clusters named
# p<major> and n<major>, in the chroot when the major is $NEW
mixed() {
	local r=$1 pm=$2 nm=$3
	local P=p$pm N=n$nm T="[$pm -> $nm]"
	local ns_a=wgpeer-mx$r-a-$$ ns_c=wgpeer-mx$r-c-$$
	local ifa=wgm${r}a$S cdev=wgm${r}c$S ifz=wgm${r}z$S
	local net=192.168.$((240 + r)) tun=10.$((80 + r))
	echo "== [${SECONDS}s] $T a primary on PostgreSQL $pm drives a node on $nm"
	NETNS+=("$ns_a" "$ns_c")
	ip netns add "$ns_a"
	ip netns add "$ns_c"
	veth_pair "$ns_a" "mx$r-a" "$net.1/24" "$ns_c" "mx$r-c" "$net.2/24"
	wg_dev_add "$ifa" "$ns_a"
	ip -n "$ns_a" addr add "$tun.0.1/16" dev "$ifa"
	ip -n "$ns_a" link set "$ifa" up

	[ "$pm" != "$NEW" ] || { PG_ROOT[$P]=$MERGED; PG_ROOT_MAJOR[$P]=$NEW; }
	[ "$nm" != "$NEW" ] || { PG_ROOT[$N]=$MERGED; PG_ROOT_MAJOR[$N]=$NEW; }
	pg_start "$P"
	pg_start "$N" "wgpeer.node = '$N'" "wgpeer.stats_interval = '1s'"
	same "$T the servers' majors" "$pm $nm" \
		"$(on "$P" q -c "SHOW server_version_num" | cut -c1-2) $(on "$N" q -c "SHOW server_version_num" | cut -c1-2)"
	on "$P" q -c "CREATE EXTENSION wgpeer"
	on "$N" q -c "CREATE EXTENSION wgpeer"
	# node zz is registered and serves $ifz, but never runs: its peers wait
	on "$P" q >/dev/null <<SQL
SELECT wgpeer.wg_add_node('$N');
SELECT wgpeer.wg_add_node('zz');
SELECT name FROM wgpeer.wg_add_interface('$ifa', '$net.1:51820', '$tun.0.1/16',
	allowed_ips => '$tun.0.0/16', persistent_keepalive => 15, backend => 'uapi',
	node => '$N');
SELECT name FROM wgpeer.wg_add_interface('$ifz', '192.0.2.1:51821', '10.99.0.1/16',
	backend => 'uapi', node => 'zz');
SQL
	node_link "$P" "$N"
	check "$T the node has its interface $ifa from the primary" wait_until 30 on "$N" sql_true \
		"SELECT string_agg(name, ',') = '$ifa' FROM wgpeer.interface"
	check "$T the node's worker gives $ifa the primary's key pair" wait_until 30 test_eq \
		"$(on "$P" q -c "SELECT public_key FROM wgpeer.interface WHERE name = '$ifa'")" \
		wg show "$ifa" public-key
	check "$T ... and its listen port 51820" wait_until 30 test_eq 51820 wg show "$ifa" listen-port

	local alice alice_key err
	IFS=$'\t' read -r alice alice_key < <(on "$P" q -c "SELECT peer_id, public_key
		FROM wgpeer.wg_create_peer('alice', interface => '$ifa')")
	(umask 077 && on "$P" q -c "SELECT wgpeer.wg_peer_config('$alice')" >"$TMP/alice$r.conf")
	check "$T alice, created on the primary, reaches the node's $ifa" \
		wait_until 30 on_dev "$ifa" "$alice_key"
	check "$T the primary marks alice active" wait_until 30 status_is "$P" "$alice" active
	check "$T $ifa holds exactly what the primary wants" \
		same_files <(kernel_peers "$ifa") <(on "$P" wanted_peers "$ifa")
	check "$T the node's copy of alice has no private key" on "$N" sql_true \
		"SELECT private_key IS NULL AND public_key = '$alice_key'
		 FROM wgpeer.peer WHERE peer_id = '$alice'"
	check "$T the primary queued nothing" on "$P" sql_true "SELECT count(*) = 0 FROM wgpeer.queue"
	err=$(on "$N" cluster_psql -v VERBOSITY=verbose -c \
		"SELECT wgpeer.wg_create_peer('mallory', interface => '$ifa')" 2>&1 || true)
	check "$T wg_create_peer on the node fails with 25006" grep -q 'ERROR:  25006' <<<"$err"
	err=$(on "$P" cluster_psql -c "SET ROLE wgpeer_node_$N; SELECT private_key FROM wgpeer.peer" 2>&1 || true)
	check "$T the node's role on the primary may not read peer.private_key" \
		grep -q 'permission denied for table peer' <<<"$err"

	wg_client_up "$cdev" "$ns_c" "$TMP/alice$r.conf" "$tun.0.0/16"
	check "$T the client pings $tun.0.1 through the node's tunnel" \
		wait_until 30 quiet ip netns exec "$ns_c" ping -c 1 -W 1 "$tun.0.1"
	check "$T handshake, endpoint and traffic reach the primary's peer_status" \
		wait_until 30 on "$P" sql_true "SELECT status = 'active'
			AND latest_handshake > now() - interval '5 minutes'
			AND endpoint LIKE '$net.2:%' AND rx_bytes > 0 AND tx_bytes > 0
			FROM wgpeer.peer_status WHERE peer_id = '$alice'"

	on "$P" q -c "SELECT status FROM wgpeer.wg_revoke_peer('$alice')" >/dev/null
	check "$T revoked on the primary, alice leaves $ifa" wait_until 30 off_dev "$ifa" "$alice_key"
	check "$T the ping fails" \
		bash -c "! ip netns exec '$ns_c' ping -c 3 -i 0.3 -W 1 '$tun.0.1' >/dev/null 2>&1"
	check "$T the node's copy says revoked" wait_until 10 status_is "$N" "$alice" revoked
	check "$T the primary still says revoked" status_is "$P" "$alice" revoked

	# rows the node may not send: another node's peer marked active, and
	# 999,999,999,999 bytes for its own peer
	local zq zq_key ac al
	IFS=$'\t' read -r zq zq_key < <(on "$P" q -c "SELECT peer_id, public_key
		FROM wgpeer.wg_create_peer('zq', interface => '$ifz')")
	ac=$(on "$P" q -c "SELECT peer_id FROM wgpeer.wg_create_peer('ac', interface => '$ifa')")
	check "$T the node's traffic row of ac reaches the primary" wait_until 30 on "$P" sql_true \
		"SELECT count(*) = 1 FROM wgpeer.peer_traffic WHERE peer_id = '$ac'"
	on "$N" cluster_psql >/dev/null <<SQL
SET session_replication_role = replica;
INSERT INTO wgpeer.peer_outcome (peer_id, interface, public_key, outcome, at)
	VALUES ('$zq', '$ifz', '$zq_key', 'applied', now());
DELETE FROM wgpeer.peer_outcome WHERE peer_id = '$zq';
UPDATE wgpeer.peer_traffic SET rx_bytes = 999999999999, sampled_at = now()
	WHERE peer_id = '$ac';
SQL
	al=$(on "$P" q -c "SELECT peer_id FROM wgpeer.wg_create_peer('al', interface => '$ifa')")
	check "$T a later legitimate row arrives: the node's outcome makes al active" \
		wait_until 30 status_is "$P" "$al" active
	check "$T the primary has applied all the node wrote" wait_until 30 caught_up "$N"
	check "$T zq, another node's peer, is not active" status_is "$P" "$zq" creating
	check "$T ac's traffic is not 999,999,999,999 bytes" on "$P" sql_true \
		"SELECT (SELECT rx_bytes FROM wgpeer.peer_status WHERE peer_id = '$ac') < 1000000"
	same "$T each row recorded as an event node_rejected" \
		"peer_outcome $ifz interface served by another node, peer_traffic $ifa traffic beyond 40 Gbit/s" \
		"$(on "$P" q -c "SELECT string_agg(concat_ws(' ', detail->>'table', interface,
				detail->>'reason'), ', ' ORDER BY event_id)
			FROM wgpeer.event WHERE kind = 'node_rejected' AND detail->>'node' = '$N'" 2>&1)"
	check "$T $ifa holds exactly what the primary wants" wait_until 30 dev_converged "$ifa" "$P"

	same "$T no client private key on the node" 0 \
		"$(on "$N" q -c "SELECT count(*) FROM wgpeer.peer WHERE private_key IS NOT NULL")"
	check "$T every subscription of the primary runs" wait_until 30 streaming "$P"
	check "$T every subscription of the node runs" wait_until 30 streaming "$N"
	none "$T no unexpected ERROR in the primary's log" unexpected_errors "$P"
	none "$T no unexpected ERROR in the node's log" unexpected_errors "$N"
	pg_stop_all
}

mixed 1 "$OLD" "$NEW"
mixed 2 "$NEW" "$OLD"

SUMMARY=1
echo "== [${SECONDS}s] done"
tap_summary node_mixed_test
