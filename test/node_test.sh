#!/bin/bash
# Node mode (several VPN servers from one database, issue 12) end to end on
# this host, no VM: one primary cluster and two node clusters (a and b),
# each with its own data directory and a TCP port on 127.0.0.1, fed by
# logical replication; each node serves one wireguard-go interface in its
# own network namespace (the UAPI socket in /var/run/wireguard is global,
# so the node's PostgreSQL reaches it from here).  Run as root after
# `make install`:  bash test/node_test.sh
#
# Set up as the README says: wg_add_node and wg_add_interface(node => ...)
# on the primary, a role per node there (peer without private_key) and one
# for the primary on each node, wg_node_subscribe_sql on each node and
# wg_node_collect_sql on the primary, both through psql's \gexec.
# Checks:
#	1. a peer created on the primary reaches node a's interface and
#	   nowhere else (not node b's interface nor its database, nothing
#	   queued on the primary), without its private key; the primary marks
#	   it active; a peer change called on a node fails with 25006;
#	1b. speed limits set on the primary (the interface's default, then
#	   the peer's own) reach node a's database and wake its worker, which
#	   shapes a twin of the interface in its namespace; its rates_error
#	   reaches the primary's interface_status;
#	2. a client in its own namespace, configured from the primary's config,
#	   pings the server through node a; handshake, endpoint and traffic
#	   reach the primary's wgpeer.peer_status;
#	3. revoke on the primary removes the peer from node a's interface and
#	   the ping fails;
#	4. 5,000 peers created in one primary transaction reach node b's
#	   interface exactly once: the device equals what the primary wants,
#	   node b queues each peer once (a counting trigger on its queue) and
#	   writes one outcome per peer;
#	5. node b stopped, peers created and revoked meanwhile, node b started:
#	   its interface converges, each change queued once;
#	6. the primary stopped: a peer past expires_at (set on the primary
#	   before it stopped) still leaves node a's interface within a second;
#	   the primary started: it records 'expired', and the peer does not
#	   come back;
#	7. rows written as root on node a into the tables it publishes back
#	   (outcomes expiring a peer of the primary's own interface or marking
#	   node b's waiting peer active, traffic starting node b's peer's plan
#	   early, node b's worker state, a handshake of its own peer tomorrow,
#	   a 999,999,999,999-byte counter) change nothing on the primary, each
#	   is recorded as a node_rejected event, and later rows flow on;
#	8. wg_remove_interface(force) on the primary: node b's rows of the
#	   interface go (interface, peers, queue, device, device peers, worker
#	   state, traffic, outcomes), and the primary's copies of them;
#	9. node a's interface moved to node b, then back while node b is down:
#	   the new node's readings reach the primary, its new peers go active,
#	   no subscription stalls;
#	10. throughout: no client private key on any node, nothing ever queued
#	   on the primary for a node's interface (a counting trigger on its
#	   queue), every subscription running, and no ERROR in any server log
#	   but those the test causes (publishers stopped, peer changes called
#	   on a node, node a's role reading peer.private_key).
# The nodes sample traffic every second (wgpeer.stats_interval), so that
# handshakes and traffic reach the primary within the test's bounds.
# Polls with bounds, never fixed sleeps.  Prints "ok"/"not ok" lines and
# "N passed, N failed"; exits non-zero on any failure.  Everything made
# here (clusters, subscriptions and their slots, daemons, namespaces) goes
# on exit; WGPEER_NODE_KEEP=1 keeps the clusters' logs in the printed
# directory.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "test/node_test.sh makes network namespaces: run it as root" >&2
	exit 1
fi

S=$(($$ % 100000))
NS_A=wgpeer-nt-a-$$				# node a's interface
NS_B=wgpeer-nt-b-$$				# node b's
NS_C=wgpeer-nt-c-$$				# a client of node a
NS_P=wgpeer-nt-p-$$				# the primary's own interface
IFA=wgna$S						# served by node a
IFB=wgnb$S						# served by node b
CDEV=wgnc$S						# the client's interface
IFP=wgnp$S						# served by the primary itself
BULK=5000
TMP=$(mktemp -d /tmp/wgpeer-node.XXXXXX)
chmod 755 "$TMP"

# Several clusters at once (test/node_lib.sh, with the wireguard-go
# interfaces and the checks): each cluster here has a name (p, a, b), a
# directory and a TCP port, and `on NAME FUNCTION...` runs a
# test/cluster.sh function against it.
. test/node_lib.sh
SUMMARY=						# set once every check has run

cleanup() {
	local status=$?
	set +e
	# stopped half way: what the servers said (the checks show it otherwise)
	report_unexpected_errors "$status"
	pg_stop_all
	wg_dev_cleanup
	ip link del "$IFA" 2>/dev/null	# the TUN twin of section 1b
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
	ip netns del "$NS_C" 2>/dev/null
	ip netns del "$NS_P" 2>/dev/null
	if [ "${WGPEER_NODE_KEEP:-}" = 1 ]; then
		echo "kept: $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT

# ---------------------------------------------------------------------------
# Conditions (and test/node_lib.sh's)
# ---------------------------------------------------------------------------
ping_a() { ip netns exec "$NS_C" ping -c 1 -W 1 10.61.0.1 >/dev/null 2>&1; }
no_ping() { ! ip netns exec "$NS_C" ping -c 3 -i 0.3 -W 1 10.61.0.1 >/dev/null 2>&1; }

# ---------------------------------------------------------------------------
echo "== network: node a's and node b's namespaces, a client's joined to node a's"
for f in "$IFA" "$IFB" "$CDEV" "$IFP"; do
	if [ -e "$WG_RUN_DIR/$f.sock" ]; then
		echo "$WG_RUN_DIR/$f.sock exists: another wireguard-go runs $f" >&2
		exit 1
	fi
done
ip netns add "$NS_A"
ip netns add "$NS_B"
ip netns add "$NS_C"
ip -n "$NS_B" link set lo up
veth_pair "$NS_A" nt-a 192.168.251.1/24 "$NS_C" nt-c 192.168.251.2/24
wg_dev_add "$IFA" "$NS_A"
ip -n "$NS_A" addr add 10.61.0.1/16 dev "$IFA"
ip -n "$NS_A" link set "$IFA" up
wg_dev_add "$IFB" "$NS_B"
ip -n "$NS_B" addr add 10.62.0.1/16 dev "$IFB"
ip -n "$NS_B" link set "$IFB" up
ip netns add "$NS_P"
ip -n "$NS_P" link set lo up
wg_dev_add "$IFP" "$NS_P"
ip -n "$NS_P" link set "$IFP" up

echo "== three clusters on 127.0.0.1: the primary, node a, node b"
pg_start p
# stats every second on the nodes, so that handshakes and traffic show soon
# node a's worker may shape (CAP_NET_ADMIN: section 1b)
CLUSTER_NET_ADMIN=1 pg_start a "wgpeer.node = 'a'" "wgpeer.stats_interval = '1s'"
pg_start b "wgpeer.node = 'b'" "wgpeer.stats_interval = '1s'"
echo "   primary :${PG_PORT[p]}, node a :${PG_PORT[a]}, node b :${PG_PORT[b]}"
for n in p a b; do on "$n" q -c "CREATE EXTENSION wgpeer"; done
if ! on p sql_true "SELECT EXISTS (SELECT FROM pg_proc WHERE proname = 'wg_add_node')"; then
	not_ok "the installed wgpeer has node mode (wgpeer.wg_add_node)"
	tap_summary node_test
	exit 1
fi

# Counting triggers (test only): every row inserted into the queue on the
# primary and on node b, every outcome node b writes.  ENABLE ALWAYS: on
# a node the queue rows and outcomes may be written by the replication
# apply worker, where ordinary triggers do not fire.
audit_sql() {
	cat <<SQL
CREATE TABLE public.queue_audit (peer_id uuid, op text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION public.queue_audit() RETURNS trigger LANGUAGE plpgsql AS
	\$\$BEGIN INSERT INTO public.queue_audit (peer_id, op) VALUES (NEW.peer_id, NEW.op); RETURN NULL; END\$\$;
CREATE TRIGGER zz_queue_audit AFTER INSERT ON wgpeer.queue
	FOR EACH ROW EXECUTE FUNCTION public.queue_audit();
ALTER TABLE wgpeer.queue ENABLE ALWAYS TRIGGER zz_queue_audit;
SQL
}
# Every outcome written (on a node) or arriving (on the primary), with the
# peer's status as this cluster then saw it, after wgpeer's own triggers
# (NULL: the peer row was not visible).
for n in p a b; do
	on "$n" q <<SQL
$(audit_sql)
CREATE TABLE public.outcome_audit (peer_id uuid, outcome text, seen text,
	at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION public.outcome_audit() RETURNS trigger LANGUAGE plpgsql AS
	\$\$BEGIN INSERT INTO public.outcome_audit (peer_id, outcome, seen) VALUES (NEW.peer_id,
		NEW.outcome, (SELECT status FROM wgpeer.peer WHERE peer_id = NEW.peer_id)); RETURN NULL; END\$\$;
CREATE TRIGGER zz_outcome_audit AFTER INSERT OR UPDATE ON wgpeer.peer_outcome
	FOR EACH ROW EXECUTE FUNCTION public.outcome_audit();
ALTER TABLE wgpeer.peer_outcome ENABLE ALWAYS TRIGGER zz_outcome_audit;
SQL
done
# what the clusters know of a peer: for a check that failed
diag_peer() {
	local n
	for n in p a b; do
		[ "${PG_UP[$n]:-0}" = 1 ] || continue
		echo "   -- $n: peer, outcome, queued, outcomes written or arrived"
		on "$n" q -c "SELECT status, created_at, expires_at FROM wgpeer.peer WHERE peer_id = '$1'
			UNION ALL SELECT outcome, at, NULL FROM wgpeer.peer_outcome WHERE peer_id = '$1'
			UNION ALL SELECT 'queued ' || op, at, NULL FROM public.queue_audit WHERE peer_id = '$1'" |
			sed 's/^/      /'
		on "$n" q -c "SELECT CASE WHEN '$n' = 'p' THEN 'arrived ' ELSE 'wrote ' END || outcome
				|| ', the peer then ' || coalesce(seen, 'not visible'), at
			FROM public.outcome_audit WHERE peer_id = '$1'" | sed 's/^/      /'
	done
	grep -h 'wgpeer reconciled' "${PG_DIR[a]}/server.log" "${PG_DIR[b]}/server.log" | sed 's/^/   /'
}
# check_peer DESCRIPTION PEER COMMAND...: check, and when it fails what
# the clusters know of PEER
check_peer() {
	local what=$1 peer=$2
	shift 2
	if "$@"; then ok "$what"; else not_ok "$what"; diag_peer "$peer"; fi
}

echo "== node mode set up as documented"
on p q >/dev/null <<SQL
SELECT wgpeer.wg_add_node('a');
SELECT wgpeer.wg_add_node('b');
SELECT name FROM wgpeer.wg_add_interface('$IFA', '192.168.251.1:51820', '10.61.0.1/16',
	allowed_ips => '10.61.0.0/16', persistent_keepalive => 15, backend => 'uapi',
	node => 'a');
SELECT name FROM wgpeer.wg_add_interface('$IFB', '192.168.252.1:51821', '10.62.0.1/16',
	allowed_ips => '10.62.0.0/16', listen_port => 51821, backend => 'uapi',
	node => 'b');
SQL
# The roles each side connects as, with the grants the README lists, and
# the subscriptions both ways (test/node_lib.sh)
for n in a b; do node_link p "$n"; done
err=$(on p cluster_psql -c "SET ROLE wgpeer_node_a; SELECT private_key FROM wgpeer.peer" 2>&1 || true)
check "node a's role on the primary may not read peer.private_key" \
	grep -q 'permission denied for table peer' <<<"$err"
check "node a has its interface $IFA from the primary" wait_until 30 on a sql_true \
	"SELECT count(*) = 1 FROM wgpeer.interface WHERE name = '$IFA'"
check "node b has its interface $IFB" wait_until 30 on b sql_true \
	"SELECT count(*) = 1 FROM wgpeer.interface WHERE name = '$IFB'"
same "node a's interfaces" "$IFA" "$(on a q -c "SELECT string_agg(name, ',') FROM wgpeer.interface")"
same "node b's interfaces" "$IFB" "$(on b q -c "SELECT string_agg(name, ',') FROM wgpeer.interface")"
pub_a=$(on p q -c "SELECT public_key FROM wgpeer.interface WHERE name = '$IFA'")
check "node a's worker gives $IFA the primary's key pair" wait_until 30 \
	test_eq "$pub_a" wg show "$IFA" public-key
check "... and its listen port 51820" wait_until 30 test_eq 51820 wg show "$IFA" listen-port
check "node b's worker sets $IFB's listen port 51821" wait_until 30 \
	test_eq 51821 wg show "$IFB" listen-port

echo "== 1. a peer created on the primary reaches node a's interface, nowhere else"
IFS=$'\t' read -r ALICE ALICE_KEY < <(on p q -c "SELECT peer_id, public_key
	FROM wgpeer.wg_create_peer('alice', interface => '$IFA')")
(umask 077 && on p q -c "SELECT wgpeer.wg_peer_config('$ALICE')" >"$TMP/alice.conf")
check_peer "alice appears on node a's interface $IFA" "$ALICE" wait_until 30 on_dev "$IFA" "$ALICE_KEY"
check_peer "the primary marks alice active" "$ALICE" wait_until 30 status_is p "$ALICE" active
check "node a's interface holds exactly what the primary wants for it" \
	same_files <(kernel_peers "$IFA") <(on p wanted_peers "$IFA")
check "alice is not on node b's interface $IFB" off_dev "$IFB" "$ALICE_KEY"
check "node b has no row of alice" on b sql_true \
	"SELECT count(*) = 0 FROM wgpeer.peer WHERE peer_id = '$ALICE'"
check "node a's copy of alice has no private key" on a sql_true \
	"SELECT private_key IS NULL AND public_key = '$ALICE_KEY'
	 FROM wgpeer.peer WHERE peer_id = '$ALICE'"
check "the primary queued nothing" on p sql_true \
	"SELECT (SELECT count(*) FROM wgpeer.queue) + (SELECT count(*) FROM public.queue_audit) = 0"
check "the primary recorded node a's outcome 'applied'" on p sql_true \
	"SELECT outcome = 'applied' FROM wgpeer.peer_outcome WHERE peer_id = '$ALICE'"
err=$(on a cluster_psql -v VERBOSITY=verbose -c \
	"SELECT wgpeer.wg_create_peer('mallory', interface => '$IFA')" 2>&1 || true)
check "wg_create_peer on node a fails with 25006 and a hint" \
	grep -q 'ERROR:  25006' <<<"$err"
printf '%s\n' "$err" | sed -n 's/^/   /; /ERROR\|HINT/p'
err=$(on a cluster_psql -v VERBOSITY=verbose -c \
	"SELECT wgpeer.wg_revoke_peer('$ALICE')" 2>&1 || true)
check "wg_revoke_peer on node a fails with 25006" grep -q 'ERROR:  25006' <<<"$err"

echo "== 1b. speed limits set on the primary reach node a's worker"
# Node a's PostgreSQL runs in this namespace, $IFA in its own: a TUN twin
# named $IFA here is what node a's rates task finds and shapes (this
# host's kernel has sch_htb but no cls_flower: a peer's class goes on, its
# first filter is refused, and rates_error says so; node a runs with
# CAP_NET_ADMIN for this).  Each limit must be
# on the twin within 10 s of reaching node a: its periodic pass is every
# 60 s, so only the replicated rows' triggers waking the worker make it.
# (The shaping itself is checked in the VM: test/rates_test.sh.)
twin_class() { tc class show dev "$IFA" | grep -q "^class htb 7770:$1 .* rate $2 "; }
twin_bare() { ! tc class show dev "$IFA" | grep -q '^class htb 7770:'; }
ip tuntap add dev "$IFA" mode tun
on p q -c "SELECT wgpeer.wg_set_interface_rate('$IFA', 3000, 1500)" >/dev/null
check "node a gets $IFA's default limits" wait_until 30 on a sql_true \
	"SELECT down_kbit = 3000 AND up_kbit = 1500 FROM wgpeer.interface WHERE name = '$IFA'"
slot=$(on p q -c "SELECT rate_slot FROM wgpeer.peer WHERE peer_id = '$ALICE'")
check "node a gets alice's slot ($slot)" wait_until 30 on a sql_true \
	"SELECT rate_slot = $slot FROM wgpeer.peer WHERE peer_id = '$ALICE'"
check "node a's worker puts alice's class at the default within 10 s" \
	wait_until 10 twin_class "$slot" 3Mbit
on p q -c "SELECT wgpeer.wg_set_peer_rate('$ALICE', 5000, NULL)" >/dev/null
check "node a gets alice's own limit" wait_until 30 on a sql_true \
	"SELECT down_kbit = 5000 FROM wgpeer.peer WHERE peer_id = '$ALICE'"
check "node a's worker changes alice's class within 10 s" wait_until 10 twin_class "$slot" 5Mbit
check "node a's rates_error reaches the primary's interface_status" wait_until 30 on p sql_true \
	"SELECT rates_error IS NOT NULL FROM wgpeer.interface_status WHERE interface = '$IFA'"
echo "   rates_error: $(on p q -c "SELECT rates_error FROM wgpeer.interface_status WHERE interface = '$IFA'")"
on p q -c "SELECT wgpeer.wg_set_peer_rate('$ALICE', NULL, NULL)" \
	-c "SELECT wgpeer.wg_set_interface_rate('$IFA', NULL, NULL)" >/dev/null
check "limits removed: node a's worker removes the class within 30 s" wait_until 30 twin_bare
check "and clears rates_error, on the primary too" wait_until 30 on p sql_true \
	"SELECT rates_error IS NULL FROM wgpeer.interface_status WHERE interface = '$IFA'"
ip link del "$IFA"

echo "== 2. a client configured from the primary's config pings through node a"
veth_ok=$(ip netns exec "$NS_C" ping -c 1 -W 1 192.168.251.1 >/dev/null 2>&1 && echo yes || echo no)
same "the client reaches node a's namespace over the veth pair" yes "$veth_ok"
wg_client_up "$CDEV" "$NS_C" "$TMP/alice.conf" 10.61.0.0/16
check "ping 10.61.0.1 through node a's tunnel" wait_until 30 ping_a
check "handshake, endpoint and traffic reach the primary's peer_status" \
	wait_until 30 on p sql_true "SELECT status = 'active'
		AND latest_handshake > now() - interval '5 minutes'
		AND endpoint LIKE '192.168.251.2:%' AND rx_bytes > 0 AND tx_bytes > 0
		FROM wgpeer.peer_status WHERE peer_id = '$ALICE'"
on p q -c "SELECT '   primary peer_status: ' || concat_ws(' ', status, 'handshake', latest_handshake,
	'endpoint', endpoint, 'rx', rx_bytes, 'tx', tx_bytes, 'online', online)
	FROM wgpeer.peer_status WHERE peer_id = '$ALICE'"

echo "== 3. revoke on the primary cuts the client off"
on p q -c "SELECT status FROM wgpeer.wg_revoke_peer('$ALICE')" >/dev/null
check "alice leaves node a's interface" wait_until 30 off_dev "$IFA" "$ALICE_KEY"
check "the ping fails" no_ping
check "node a's copy says revoked" wait_until 10 status_is a "$ALICE" revoked
check "the primary still says revoked (no flap back from the node)" status_is p "$ALICE" revoked

echo "== 4. $BULK peers in one primary transaction reach node b exactly once"
t0=$(date +%s%N)
on p q -c "SELECT count(*) FROM (SELECT wgpeer.wg_create_peer('bulk' || g, interface => '$IFB')
	FROM generate_series(1, $BULK) g) s" >/dev/null
t1=$(date +%s%N)
check "all $BULK on node b's interface" wait_until 120 test_eq "$BULK" dev_count "$IFB"
t2=$(date +%s%N)
echo "   transaction $(((t1 - t0) / 1000000)) ms; COMMIT to all on $IFB $(((t2 - t1) / 1000000)) ms"
check "all $BULK active on the primary" wait_until 120 on p sql_true \
	"SELECT count(*) = $BULK FROM wgpeer.peer WHERE interface = '$IFB' AND status = 'active'"
check "... and on node b (the primary's updates replayed)" wait_until 60 on b sql_true \
	"SELECT count(*) = $BULK FROM wgpeer.peer WHERE interface = '$IFB' AND status = 'active'"
check "node b's queue drains" wait_until 60 on b sql_true "SELECT count(*) = 0 FROM wgpeer.queue"
check "node b's interface equals what the primary wants" \
	same_files <(kernel_peers "$IFB") <(on p wanted_peers "$IFB")
same "node b queued each peer once (adds, peers queued twice)" "$BULK 0" \
	"$(on b q -F ' ' -c "SELECT count(*) FILTER (WHERE op = 'add'),
		(SELECT count(*) FROM (SELECT peer_id FROM public.queue_audit
			GROUP BY peer_id HAVING count(*) > 1) d)
		FROM public.queue_audit")"
same "node b wrote one outcome per peer (writes, peers written twice)" "$BULK 0" \
	"$(on b q -F ' ' -c "SELECT count(*),
		(SELECT count(*) FROM (SELECT peer_id FROM public.outcome_audit
			GROUP BY peer_id HAVING count(*) > 1) d)
		FROM public.outcome_audit")"
check "the primary holds $BULK 'applied' outcomes of $IFB" on p sql_true \
	"SELECT count(*) = $BULK FROM wgpeer.peer_outcome
	 WHERE interface = '$IFB' AND outcome = 'applied'"
check "the primary queued nothing" on p sql_true \
	"SELECT (SELECT count(*) FROM wgpeer.queue) + (SELECT count(*) FROM public.queue_audit) = 0"

echo "== 5. node b stopped: changes meanwhile reach it when it starts again"
on b q -c "TRUNCATE public.queue_audit"
pg_stop b
on p q >/dev/null <<SQL
SELECT count(*) FROM (SELECT wgpeer.wg_revoke_peer(peer_id) FROM wgpeer.peer
	WHERE interface = '$IFB' AND user_id IN (SELECT 'bulk' || g FROM generate_series(1, 100) g)) s;
SELECT count(*) FROM (SELECT wgpeer.wg_create_peer('late' || g, interface => '$IFB')
	FROM generate_series(1, 50) g) s;
SQL
check "while node b is down its interface keeps the old peers" test_eq "$BULK" dev_count "$IFB"
pg_run b
check "node b's interface converges on what the primary wants" wait_until 120 dev_converged "$IFB"
check "$IFB holds $((BULK - 100 + 50)) peers" test_eq $((BULK - 100 + 50)) dev_count "$IFB"
check "the 50 new peers become active on the primary" wait_until 60 on p sql_true \
	"SELECT count(*) = 50 FROM wgpeer.peer WHERE user_id LIKE 'late%' AND status = 'active'"
check "node b's queue drains" wait_until 60 on b sql_true "SELECT count(*) = 0 FROM wgpeer.queue"
same "node b queued each change once (adds, removes, peers queued twice)" "50 100 0" \
	"$(on b q -F ' ' -c "SELECT count(*) FILTER (WHERE op = 'add'),
		count(*) FILTER (WHERE op = 'remove'),
		(SELECT count(*) FROM (SELECT peer_id, op FROM public.queue_audit
			GROUP BY peer_id, op HAVING count(*) > 1) d)
		FROM public.queue_audit")"

echo "== 6. the primary stopped: a peer past expires_at still leaves node a"
IFS=$'\t' read -r EVE EVE_KEY < <(on p q -c "SELECT peer_id, public_key
	FROM wgpeer.wg_create_peer('eve', interface => '$IFA')")
check_peer "eve appears on $IFA" "$EVE" wait_until 30 on_dev "$IFA" "$EVE_KEY"
check_peer "eve active on the primary" "$EVE" wait_until 30 status_is p "$EVE" active
expires=$(on p q -c "UPDATE wgpeer.peer SET expires_at = now() + interval '5 seconds'
	WHERE peer_id = '$EVE' RETURNING extract(epoch FROM expires_at)")
check "the expiry reaches node a" wait_until 5 on a sql_true \
	"SELECT abs(extract(epoch FROM expires_at) - $expires) < 0.001
	 FROM wgpeer.peer WHERE peer_id = '$EVE'"
check "node a's copy is active before the primary stops" wait_until 5 status_is a "$EVE" active
pg_stop p
before=$(awk -v e="$expires" -v n="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - n }')
if awk -v b="$before" 'BEGIN { exit !(b > 0.5) }'; then
	check "eve is still on $IFA ${before}s before it expires" on_dev "$IFA" "$EVE_KEY"
else
	echo "   (the primary took until ${before}s before expiry to stop: not checking that eve was still there)"
fi
WAIT_UNTIL_STEP=0.05 wait_until 30 off_dev "$IFA" "$EVE_KEY" || true
late=$(awk -v e="$expires" -v n="$(date +%s.%N)" 'BEGIN { printf "%.2f", n - e }')
check "eve left $IFA ${late}s after expires_at (goal: within 1 s, not before)" \
	awk -v l="$late" 'BEGIN { exit !(l >= -0.05 && l <= 1.1) }'
check "node a recorded the expiry (outcome 'expired', 'removed' once applied)" \
	wait_until 10 on a sql_true \
	"SELECT o.outcome IN ('expired', 'removed') AND o.at >= p.expires_at
	 FROM wgpeer.peer_outcome o JOIN wgpeer.peer p USING (peer_id)
	 WHERE o.peer_id = '$EVE'"
pg_run p
check "the primary, started again, records eve expired" wait_until 60 status_is p "$EVE" expired
check "the primary's subscriptions run" wait_until 30 streaming p
check "node a has replayed everything the primary wrote" wait_until 30 caught_up p
check "... and the primary everything node a wrote" wait_until 30 caught_up a
flapped=no
for _ in $(seq 30); do
	on_dev "$IFA" "$EVE_KEY" && flapped=yes
	sleep 0.1
done
same "eve stays off $IFA for 3 s after both sides reconnected" no "$flapped"
# the primary's update reaches node a once its subscription has reconnected
check "node a's copy of eve is expired" wait_until 60 status_is a "$EVE" expired
check "the primary still says expired" status_is p "$EVE" expired
check "node a's queue is empty" on a sql_true "SELECT count(*) = 0 FROM wgpeer.queue"
check "$IFA holds exactly what the primary wants" \
	same_files <(kernel_peers "$IFA") <(on p wanted_peers "$IFA")

echo "== 7. node a writes rows it may not, as root, into the tables it publishes"
# The primary serves an interface of its own; node b is down, so that its
# new peer bq waits in 'creating' with a plan that starts at its first
# handshake; node a serves aq (the same kind of plan) and ac.
on p q -c "SELECT name FROM wgpeer.wg_add_interface('$IFP', '192.168.253.1:51822',
	'10.63.0.1/16', allowed_ips => '10.63.0.0/16', listen_port => 51822,
	backend => 'uapi')" >/dev/null
IFS=$'\t' read -r PP PP_KEY < <(on p q -c "SELECT peer_id, public_key
	FROM wgpeer.wg_create_peer('pp', 12, interface => '$IFP')")
check_peer "the primary's own peer pp goes active on $IFP" "$PP" \
	wait_until 30 status_is p "$PP" active
pg_stop b
IFS=$'\t' read -r BQ BQ_KEY < <(on p q -c "SELECT peer_id, public_key
	FROM wgpeer.wg_create_peer('bq', interface => '$IFB', duration => '30 days',
		starts_on_handshake => true)")
AQ=$(on p q -c "SELECT peer_id FROM wgpeer.wg_create_peer('aq', interface => '$IFA',
	duration => '30 days', starts_on_handshake => true)")
AC=$(on p q -c "SELECT peer_id FROM wgpeer.wg_create_peer('ac', interface => '$IFA')")
check "node a's traffic rows of aq and ac reach the primary" wait_until 30 on p sql_true \
	"SELECT count(*) = 2 FROM wgpeer.peer_traffic WHERE peer_id IN ('$AQ', '$AC')"
# Each statement its own transaction; a row inserted for the primary's or
# another node's peer is deleted again, so that the next one is new too
# (foreign keys are off, as root may do).
on a cluster_psql >/dev/null <<SQL
SET session_replication_role = replica;
-- expire the primary's own peer, naming its interface, then node a's
INSERT INTO wgpeer.peer_outcome (peer_id, interface, public_key, outcome, at)
	VALUES ('$PP', '$IFP', '$PP_KEY', 'expired', now() + interval '10 years');
DELETE FROM wgpeer.peer_outcome WHERE peer_id = '$PP';
INSERT INTO wgpeer.peer_outcome (peer_id, interface, public_key, outcome, at)
	VALUES ('$PP', '$IFA', '$PP_KEY', 'expired', now() + interval '10 years');
DELETE FROM wgpeer.peer_outcome WHERE peer_id = '$PP';
-- mark node b's peer active, naming its interface, then node a's
INSERT INTO wgpeer.peer_outcome (peer_id, interface, public_key, outcome, at)
	VALUES ('$BQ', '$IFB', '$BQ_KEY', 'applied', now());
DELETE FROM wgpeer.peer_outcome WHERE peer_id = '$BQ';
INSERT INTO wgpeer.peer_outcome (peer_id, interface, public_key, outcome, at)
	VALUES ('$BQ', '$IFA', '$BQ_KEY', 'applied', now());
DELETE FROM wgpeer.peer_outcome WHERE peer_id = '$BQ';
-- start node b's peer's plan a day ago (so it ends early)
INSERT INTO wgpeer.peer_traffic (peer_id, latest_handshake, sampled_at)
	VALUES ('$BQ', now() - interval '1 day', now());
DELETE FROM wgpeer.peer_traffic WHERE peer_id = '$BQ';
-- node b's worker state
INSERT INTO wgpeer.worker_state (interface, last_error, last_error_at, failures)
	VALUES ('$IFB', 'forged by node a', now(), 1);
DELETE FROM wgpeer.worker_state WHERE interface = '$IFB';
-- its own peers: a handshake tomorrow (a plan that ends a day late), and
-- a 999,999,999,999-byte counter
UPDATE wgpeer.peer_traffic SET latest_handshake = now() + interval '1 day',
	sampled_at = now() WHERE peer_id = '$AQ';
UPDATE wgpeer.peer_traffic SET rx_bytes = 999999999999, sampled_at = now()
	WHERE peer_id = '$AC';
SQL
IFS=$'\t' read -r AL AL_KEY < <(on p q -c "SELECT peer_id, public_key
	FROM wgpeer.wg_create_peer('al', interface => '$IFA')")
check_peer "a later legitimate row arrives: node a's outcome makes al active" "$AL" \
	wait_until 30 status_is p "$AL" active
check "the primary has applied all node a wrote" wait_until 30 caught_up a
check "the primary's own peer pp is not expired" status_is p "$PP" active
check "node b's peer bq is not active (nothing applied it)" status_is p "$BQ" creating
check "bq's plan has not started" on p sql_true \
	"SELECT plan_pending IS NOT NULL AND expires_at IS NULL FROM wgpeer.peer WHERE peer_id = '$BQ'"
check "aq's plan has not started tomorrow" on p sql_true \
	"SELECT plan_pending IS NOT NULL AND expires_at IS NULL FROM wgpeer.peer WHERE peer_id = '$AQ'"
check "ac's traffic is not 999,999,999,999 bytes (peer_status, usage)" on p sql_true \
	"SELECT (SELECT rx_bytes FROM wgpeer.peer_status WHERE peer_id = '$AC') < 1000000
	 AND (SELECT coalesce(sum(rx_bytes), 0) FROM wgpeer.peer_usage WHERE peer_id = '$AC') < 1000000"
check "node b's worker state on the primary is not node a's" on p sql_true \
	"SELECT count(*) = 0 FROM wgpeer.worker_state WHERE last_error = 'forged by node a'"
rejected() {
	on p q -c "SELECT string_agg(concat_ws(' ', detail->>'table', interface,
			detail->>'reason'), ', ' ORDER BY event_id)
		FROM wgpeer.event WHERE kind = 'node_rejected' AND detail->>'node' = 'a'" 2>&1
}
same "each row recorded as an event node_rejected of node a" \
	"peer_outcome $IFP interface served by another node, peer_outcome $IFA peer not on the interface, peer_outcome $IFB interface served by another node, peer_outcome $IFA peer not on the interface, peer_traffic $IFB interface served by another node, worker_state $IFB interface served by another node, peer_traffic $IFA time in the future, peer_traffic $IFA traffic beyond 40 Gbit/s" \
	"$(rejected)"
check "the primary's subscription to node a runs" on p sql_true \
	"SELECT st.pid IS NOT NULL FROM pg_subscription s
	 LEFT JOIN pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL
	 WHERE s.subname = 'wgpeer_from_a'"
pg_run b
check_peer "node b started: bq goes active" "$BQ" wait_until 60 status_is p "$BQ" active
check "node b's rows flow again" wait_until 30 caught_up b

echo "== 8. removing $IFB on the primary cleans up node b"
on p q -c "SELECT wgpeer.wg_remove_interface('$IFB', force => true)" >/dev/null
b_rows() {
	on b q -F ' ' -c "SELECT
		(SELECT count(*) FROM wgpeer.interface WHERE name = '$IFB'),
		(SELECT count(*) FROM wgpeer.peer WHERE interface = '$IFB'),
		(SELECT count(*) FROM wgpeer.queue WHERE interface = '$IFB'),
		(SELECT count(*) FROM wgpeer.device WHERE interface = '$IFB'),
		(SELECT count(*) FROM wgpeer.device_peer WHERE interface = '$IFB'),
		(SELECT count(*) FROM wgpeer.worker_state WHERE interface = '$IFB'),
		(SELECT count(*) FROM wgpeer.peer_traffic),
		(SELECT count(*) FROM wgpeer.peer_outcome WHERE interface = '$IFB')"
}
p_rows() {
	on p q -F ' ' -c "SELECT
		(SELECT count(*) FROM wgpeer.interface WHERE name = '$IFB'),
		(SELECT count(*) FROM wgpeer.peer WHERE interface = '$IFB'),
		(SELECT count(*) FROM wgpeer.queue WHERE interface = '$IFB'),
		(SELECT count(*) FROM wgpeer.device WHERE interface = '$IFB'),
		(SELECT count(*) FROM wgpeer.device_peer WHERE interface = '$IFB'),
		(SELECT count(*) FROM wgpeer.worker_state WHERE interface = '$IFB'),
		(SELECT count(*) FROM wgpeer.peer_traffic t
			WHERE NOT EXISTS (SELECT FROM wgpeer.peer p WHERE p.peer_id = t.peer_id)),
		(SELECT count(*) FROM wgpeer.peer_outcome WHERE interface = '$IFB')"
}
NONE="0 0 0 0 0 0 0 0"
echo "   (interface, peer, queue, device, device_peer, worker_state, peer_traffic, peer_outcome)"
wait_until 60 test_eq "$NONE" b_rows || true
same "node b has no row of $IFB left" "$NONE" "$(b_rows)"
wait_until 30 test_eq "$NONE" p_rows || true
same "the primary has no row of $IFB left (nor node b's copies)" "$NONE" "$(p_rows)"
check "node a still serves $IFA" on a sql_true \
	"SELECT count(*) = 1 FROM wgpeer.interface WHERE name = '$IFA'"

echo "== 9. $IFA moves from node a to node b, and back while node b is down"
moved_at=$(on p q -c "SELECT now()")
on p q -c "UPDATE wgpeer.interface SET node = 'b' WHERE name = '$IFA'"
check "node b has $IFA" wait_until 30 on b sql_true \
	"SELECT count(*) = 1 FROM wgpeer.interface WHERE name = '$IFA'"
check "node a forgets $IFA" wait_until 30 on a sql_true \
	"SELECT count(*) = 0 FROM wgpeer.interface WHERE name = '$IFA'"
check "node b's reading of $IFA reaches the primary" wait_until 30 on p sql_true \
	"SELECT count(*) = 1 FROM wgpeer.device WHERE interface = '$IFA' AND sampled_at > '$moved_at'"
IFS=$'\t' read -r MV1 MV1_KEY < <(on p q -c "SELECT peer_id, public_key
	FROM wgpeer.wg_create_peer('mv1', interface => '$IFA')")
check_peer "a new peer of $IFA reaches the interface through node b" "$MV1" \
	wait_until 30 on_dev "$IFA" "$MV1_KEY"
check_peer "... and goes active on the primary" "$MV1" wait_until 30 status_is p "$MV1" active
check "$IFA holds exactly what the primary wants" wait_until 30 dev_converged "$IFA"
for n in p a b; do check "every subscription of $n runs" wait_until 30 streaming "$n"; done
pg_stop b
moved_at=$(on p q -c "SELECT now()")
on p q -c "UPDATE wgpeer.interface SET node = 'a' WHERE name = '$IFA'"
check "node a has $IFA again" wait_until 30 on a sql_true \
	"SELECT count(*) = 1 FROM wgpeer.interface WHERE name = '$IFA'"
check "node a's reading of $IFA reaches the primary" wait_until 30 on p sql_true \
	"SELECT count(*) = 1 FROM wgpeer.device WHERE interface = '$IFA' AND sampled_at > '$moved_at'"
IFS=$'\t' read -r MV2 MV2_KEY < <(on p q -c "SELECT peer_id, public_key
	FROM wgpeer.wg_create_peer('mv2', interface => '$IFA')")
check_peer "with node b down, a new peer of $IFA reaches the interface through node a" "$MV2" \
	wait_until 30 on_dev "$IFA" "$MV2_KEY"
check_peer "... and goes active on the primary" "$MV2" wait_until 30 status_is p "$MV2" active
pg_run b
check "node b, started, forgets $IFA" wait_until 30 on b sql_true \
	"SELECT count(*) = 0 FROM wgpeer.interface WHERE name = '$IFA'"
check "the primary has applied all node b wrote" wait_until 30 caught_up b
check "... and all node a wrote" wait_until 30 caught_up a
check "the primary holds node a's rows of $IFA only" on p sql_true \
	"SELECT (SELECT count(*) FROM wgpeer.device WHERE interface = '$IFA') = 1
	 AND (SELECT count(*) FROM wgpeer.worker_state WHERE interface = '$IFA') = 1"
check "$IFA holds exactly what the primary wants" wait_until 30 dev_converged "$IFA"
same "no row of node a or b rejected since" 0 \
	"$(on p q -c "SELECT count(*) FROM wgpeer.event WHERE kind = 'node_rejected'
		AND at > '$moved_at' AND detail->>'reason' <> 'interface served by another node'" 2>&1)"

echo "== 10. throughout"
for n in a b; do
	same "no client private key on node $n" 0 \
		"$(on "$n" q -c "SELECT count(*) FROM wgpeer.peer WHERE private_key IS NOT NULL")"
done
check "nothing was ever queued on the primary but for its own $IFP" on p sql_true \
	"SELECT count(*) = 0 FROM public.queue_audit
	 WHERE peer_id NOT IN (SELECT peer_id FROM wgpeer.peer WHERE interface = '$IFP')"
for n in p a b; do
	check "every subscription of $n runs" wait_until 30 streaming "$n"
	none "no unexpected ERROR in $n's log" unexpected_errors "$n"
done

SUMMARY=1
tap_summary node_test
