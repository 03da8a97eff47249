#!/bin/bash
# The apply worker (src/worker.c, src/apply.c) against real WireGuard, the
# same checks for either device backend:
#	bash test/vm/run.sh test/worker_test.sh [--stage DIR] [BULK]
#		the kernel over netlink, where `ip link add type wireguard` works
#		(in a VM when this kernel has no WireGuard);
#	WGPEER_VM=never bash test/vm/run.sh test/worker_test.sh --backend uapi [BULK]
#		wireguard-go over its UAPI socket, on this host in a scratch
#		network namespace.
# Run as root after `make install` (the VM sees the host's installed files).
# --stage DIR (VM only): copy a `make install DESTDIR=DIR` tree over / first,
# to test a build without installing it on the host.  BULK (default 5000)
# is the size of tests 4 and 8; creating 5,000 peers takes ~4 minutes under
# TCG, so a smaller one is handy while developing.
#
# Interfaces come from test/wireguard.sh: kernel interfaces, or wireguard-go
# daemons run as PostgreSQL's user.  wg0 is registered with the default
# backend 'auto' (chosen by whether the socket exists), wg1 with the
# backend named explicitly.
#
# Starts PostgreSQL 15 as an unprivileged user holding CAP_NET_ADMIN (as a
# systemd drop-in would give it), wgpeer preloaded, and checks:
#	0. the worker runs (pg_stat_activity) and holds CAP_NET_ADMIN; a client
#	   backend does not;
#	1. a committed wg_create_peer reaches `wg show dump` (allowed IPs v4 /32
#	   and v6 /128, preshared key, keepalive), the device gets its private
#	   key and port, the peer becomes active and NOTIFY wgpeer says so;
#	2. a rolled-back wg_create_peer changes nothing;
#	3. wg_revoke_peer removes a peer; the worker expires one on time;
#	5. a client in its own network namespace, configured from the returned
#	   config, pings the server through the tunnel (handshake in wg_show);
#	   5b. the lifecycle on this backend: suspend cuts its ping, resume
#	   restores it, 21 routes become its allowed IPs and leave again, a
#	   100 kB quota suspends it and a new period brings it back, all in
#	   the event log; a rotated key replaces the old one, same address;
#	4. 5,000 peers created in one transaction all reach the kernel, the whole
#	   set compared with the database; then a tenth of them revoked in one
#	   transaction;
#	6. an interface missing at first: changes wait with the error in
#	   wgpeer.interface_status, other interfaces keep flowing, and they go
#	   through once the interface exists; then wg_remove_interface()
#	   unregisters it under the running worker;
#	7. reconcile: hand edits repaired by wg_reconcile, foreign peers left
#	   alone, nothing sent when nothing differs, a recreated interface
#	   restored; carol's traffic total survives the recreation;
#	8. the worker frozen (SIGSTOP) while it is sending a BULK-peer batch,
#	   with part of it on the interface, then killed (kill -9): after the
#	   crash restart every committed peer is on the interface exactly once;
#	   a backlog survives a fast and an immediate shutdown and drains.
# Tests 6 and 7 run before test 4: removing thousands of peers leaves the
# kernel busy for minutes under TCG, and netlink calls on any interface
# wait meanwhile; test 8 therefore has the most generous bounds.
# Everything polls with generous bounds (TCG is 10-50x slower than native).
# Prints "N passed, N failed" and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

STAGE=
WGPEER_BACKEND=netlink
while [ $# -gt 0 ]; do
	case $1 in
		--stage) STAGE=$2; shift 2 ;;
		--backend) WGPEER_BACKEND=$2; shift 2 ;;
		*) break ;;
	esac
done
case $WGPEER_BACKEND in
	netlink|uapi) ;;
	*) echo "worker_test.sh: --backend is netlink or uapi" >&2; exit 2 ;;
esac
if [ -n "$STAGE" ]; then
	# never overwrite the host's installation: only the VM's overlay
	[ "${WGPEER_IN_VM:-}" = 1 ] || { echo "--stage works only inside the VM" >&2; exit 2; }
	cp -a "$STAGE/." /
fi

BULK=${1:-5000}
DB=wgtest
NS=wgpeer-client-$$				# the client's network namespace (test 5)
D=$(mktemp -d /run/wgpeer-worker.XXXXXX)	# cluster, socket, scratch files
chmod 755 "$D"
T=$D/scratch
mkdir "$T"
chmod 777 "$T"
LISTENER=
WG_DEV_LOGS=$T
CLUSTER_DB=$DB
CLUSTER_NET_ADMIN=1
. test/cluster.sh
. test/wireguard.sh
. test/tap.sh

cleanup() {
	if [ -n "$LISTENER" ]; then
		exec 7>&- || true
		kill "$LISTENER" 2>/dev/null || true
	fi
	cluster_ctl -m immediate -w stop >/dev/null 2>&1 || true
	# the server log goes out with the results (run.sh's WGPEER_VM_KEEP)
	[ -z "${WGPEER_VM_OUT:-}" ] || cp "$D/pg/server.log" "$WGPEER_VM_OUT/worker_test.server.log" 2>/dev/null || true
	# kernel interfaces are left alone: they go with the VM (or run.sh's
	# scratch namespace), and deleting an interface that still holds
	# thousands of peers costs the kernel minutes under TCG; wireguard-go
	# daemons are stopped
	wg_dev_cleanup
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$D"
}
trap cleanup EXIT

in_kernel() { wg show "$1" peers 2>/dev/null | grep -qxF "$2"; }
not_in_kernel() { ! in_kernel "$@"; }
kernel_count() { wg show "$1" peers 2>/dev/null | wc -l; }
kernel_count_is() { [ "$(kernel_count "$1")" -eq "$2" ]; }
# CAP_NET_ADMIN (bit 12) in a capability mask in hex
has_net_admin() { (((16#$1 >> 12) & 1)); }
cap_of() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

echo "== backend $WGPEER_BACKEND; starting PostgreSQL 15 as $WGPEER_USER with CAP_NET_ADMIN"
# as a systemd drop-in with AmbientCapabilities=CAP_NET_ADMIN would;
# only wake-on-commit can deliver within the tests' bounds, not the poll;
# reconcile only when asked (wg_reconcile) or on a new ifindex, so the
# hand edits of test 7 are still there when wg_reconcile() counts them
cluster_start "$D/pg" "wgpeer.database = '$DB'" "wgpeer.retry_max = '2s'" \
	"wgpeer.poll_interval = '10min'" "wgpeer.reconcile_interval = '1h'"
# the worker connects to $DB: it retries (bgw_restart_time) until it exists
cluster_psql -d postgres -c "CREATE DATABASE $DB"
q -c "CREATE EXTENSION wgpeer"

# the server side of the tunnel: wg0 with its addresses; the worker sets
# its private key and listen port
wg_dev_add wg0
ip addr add 10.10.0.1/16 dev wg0
ip addr add fd00:10:10::1/64 dev wg0 nodad
ip link set wg0 up
q -c "SELECT name FROM wgpeer.wg_add_interface('wg0', '10.99.0.1:51820',
		'10.10.0.1/16', 'fd00:10:10::1/64', persistent_keepalive => 25)" >/dev/null

echo "== 0. the worker process and capabilities"
# the worker is connected to $DB (quiet while the server restarts after a
# crash, when psql cannot connect)
worker_running() {
	sql_true "SELECT count(*) = 1 FROM pg_stat_activity
			  WHERE backend_type = 'wgpeer apply worker' AND datname = '$DB'" 2>/dev/null
}
check "worker in pg_stat_activity as 'wgpeer apply worker' on $DB" wait_until 180 worker_running
WORKER=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'wgpeer apply worker'")
check "worker holds CAP_NET_ADMIN (CapEff $(cap_of "$WORKER" CapEff))" \
	has_net_admin "$(cap_of "$WORKER" CapEff)"
# a backend reads its own /proc status (superuser may read files)
q -c "SELECT pg_read_file('/proc/self/status', 0, 65536)" >"$T/backend_status"
for set in CapEff CapPrm CapInh CapAmb; do
	mask=$(awk -v f="$set:" '$1 == f { print $2 }' "$T/backend_status")
	check "client backend lacks CAP_NET_ADMIN in $set ($mask)" \
		eval '! has_net_admin "$mask"'
done

# A session that LISTENs on wgpeer; "SELECT 1" after each event makes psql
# print the notifications that arrived in the meantime.
mkfifo "$T/listen.in"
runuser -u "$WGPEER_USER" -- "$PG_BIN/psql" -X -At -h "$D/pg" -U postgres -d "$DB" \
	<"$T/listen.in" >"$T/listen.out" 2>&1 &
LISTENER=$!
exec 7>"$T/listen.in"
echo "LISTEN wgpeer;" >&7
# the LISTEN must be in effect before the first commit, or its
# notification goes to nobody
echo "SELECT 'listening';" >&7
listening() { grep -q '^listening$' "$T/listen.out"; }
wait_until 120 listening || true
notified() {					# notified REGEX: a notification matching it
	echo "SELECT 1;" >&7
	grep -q "^Asynchronous notification \"wgpeer\" with payload \".*$1" "$T/listen.out"
}

echo "== 1. a committed wg_create_peer reaches the kernel"
IFS=$'\t' read -r A_ID A_KEY A_V4 A_V6 < <(q -c "
	SELECT peer_id, public_key, host(address), host(address6)
	FROM wgpeer.wg_create_peer('alice@example.com', interface => 'wg0')")
t0=$SECONDS
check "alice's peer appears in wg show wg0" wait_until 60 in_kernel wg0 "$A_KEY"
echo "   (visible within $((SECONDS - t0)) s of commit)"
line=$(wg show wg0 dump | awk -F'\t' -v k="$A_KEY" '$1 == k')
ips=$(echo "$line" | cut -f4 | tr ',' '\n' | sort | paste -sd,)
want=$(printf '%s\n' "$A_V4/32" "$A_V6/128" | sort | paste -sd,)
check "allowed IPs are $want (got $ips)" test "$ips" = "$want"
psk=$(q -c "SELECT preshared_key FROM wgpeer.peer WHERE peer_id = '$A_ID'")
check "preshared key set" test "$(echo "$line" | cut -f2)" = "$psk"
check "persistent keepalive 25" test "$(echo "$line" | cut -f8)" = 25
IFS=$'\t' read -r S_PRIV S_PORT < <(q -c "SELECT private_key, listen_port FROM wgpeer.interface WHERE name = 'wg0'")
check "worker set the device's private key" test "$(wg show wg0 private-key)" = "$S_PRIV"
check "worker set the device's listen port ($S_PORT)" test "$(wg show wg0 listen-port)" = "$S_PORT"
check "status becomes active" wait_until 60 \
	sql_true "SELECT status = 'active' FROM wgpeer.peer WHERE peer_id = '$A_ID'"
check "queue empty afterwards" sql_true "SELECT count(*) = 0 FROM wgpeer.queue"
check "NOTIFY wgpeer with alice's JSON payload" wait_until 60 notified \
	"\"peer_id\" : \"$A_ID\", \"user_id\" : \"alice@example.com\", \"interface\" : \"wg0\", \"status\" : \"active\"}\" received from server process with PID $WORKER\\."

echo "== 2. a rolled-back wg_create_peer changes nothing"
kernel_peers wg0 >"$T/before"
R_KEY=$(q -c "BEGIN" -c "SELECT public_key FROM wgpeer.wg_create_peer('rollback', interface => 'wg0')" -c "ROLLBACK")
# a committed peer after it is a barrier: once it is on the interface the
# worker has seen everything before it
B_KEY=$(q -c "SELECT public_key FROM wgpeer.wg_create_peer('barrier', interface => 'wg0')")
check "a later committed peer arrives" wait_until 60 in_kernel wg0 "$B_KEY"
check "the rolled-back peer is not on the interface" not_in_kernel wg0 "$R_KEY"
kernel_peers wg0 | grep -vF "$B_KEY" >"$T/after" || true
check "nothing else changed on the interface" same_files "$T/before" "$T/after"
check "no peer row and no queued change for it" \
	sql_true "SELECT count(*) = 0 FROM wgpeer.peer WHERE public_key = '$R_KEY'"

echo "== 3. revoke and expiry remove peers"
q -c "SELECT wgpeer.wg_revoke_peer('$A_ID')" >/dev/null
check "wg_revoke_peer removes alice from the interface" wait_until 60 not_in_kernel wg0 "$A_KEY"
check "alice is revoked" sql_true "SELECT status = 'revoked' FROM wgpeer.peer WHERE peer_id = '$A_ID'"
check "NOTIFY says revoked" wait_until 60 notified "\"peer_id\" : \"$A_ID\".*\"status\" : \"revoked\"}"
IFS=$'\t' read -r E_ID E_KEY < <(q -c "SELECT peer_id, public_key FROM wgpeer.wg_create_peer('erin', interface => 'wg0')")
check "erin arrives" wait_until 60 in_kernel wg0 "$E_KEY"
# the worker expires peers on its own, within about a second of expires_at
q -c "UPDATE wgpeer.peer SET expires_at = clock_timestamp() + interval '2 seconds'
	  WHERE peer_id = '$E_ID'"
check "the worker expires erin on time: she leaves the interface" \
	wait_until 60 not_in_kernel wg0 "$E_KEY"
check "erin is expired" sql_true "SELECT status = 'expired' FROM wgpeer.peer WHERE peer_id = '$E_ID'"
check "the barrier peer is still there" in_kernel wg0 "$B_KEY"

echo "== 5. end to end: a client namespace pings the server through the tunnel"
ip netns add "$NS"
veth_pair "" wgv0 10.99.0.1/24 "$NS" wgv1 10.99.0.2/24
C_ID=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('carol', interface => 'wg0')")
(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$C_ID')" >"$T/wgc0.conf")
C_KEY=$(q -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$C_ID'")
# the client: its interface created inside its namespace (the socket lives
# where the interface is created), configured from that config
wg_client_up wgc0 "$NS" "$T/wgc0.conf" 10.10.0.0/16 fd00:10:10::/64
check "carol is on the server interface" wait_until 60 in_kernel wg0 "$C_KEY"
ping4() { ip netns exec "$NS" ping -c 1 -W 2 10.10.0.1 >/dev/null 2>&1; }
ping6() { ip netns exec "$NS" ping -6 -c 1 -W 2 fd00:10:10::1 >/dev/null 2>&1; }
check "ping 10.10.0.1 through the tunnel" wait_until 120 ping4
check "ping fd00:10:10::1 through the tunnel" wait_until 60 ping6
handshake=$(wg show wg0 latest-handshakes | awk -v k="$C_KEY" '$1 == k { print $2 }')
check "wg show reports carol's handshake ($handshake)" test "${handshake:-0}" -gt 0
if sql_true "SELECT count(*) = 1 FROM pg_proc WHERE proname = 'wg_show'"; then
	check "wgpeer.wg_show('wg0') reports carol's handshake and endpoint" \
		sql_true "SELECT count(*) = 1 FROM wgpeer.wg_show('wg0')
				  WHERE public_key = '$C_KEY' AND latest_handshake > now() - interval '10 minutes'
				    AND endpoint LIKE '10.99.0.2:%'"
	check "wg_show('wg0') lists the same peers as wg show" \
		sql_true "SELECT count(*) = $(kernel_count wg0) FROM wgpeer.wg_show('wg0')"
fi

echo "== 5b. the subscription lifecycle on this backend"
# carol, pinging above, is suspended and resumed, given routes and a quota
# that suspends her, and ends as she was (test 7 uses her again)
carol_is() {
	sql_true "SELECT status || '/' || coalesce(suspended_reason, '') = '$1'
		FROM wgpeer.peer WHERE peer_id = '$C_ID'"
}
q -c "SELECT status FROM wgpeer.wg_suspend_peer('$C_ID', 'payment overdue')" >/dev/null
check "suspended carol leaves wg0" wait_until 60 not_in_kernel wg0 "$C_KEY"
check "and cannot ping" bash -c "! ip netns exec '$NS' ping -c 2 -W 1 10.10.0.1 >/dev/null 2>&1"
q -c "SELECT status FROM wgpeer.wg_resume_peer('$C_ID')" >/dev/null
check "resumed, she is back on wg0" wait_until 60 in_kernel wg0 "$C_KEY"
check "and pings again with the same config" wait_until 120 ping4
# routes: a subnet behind her and twenty hosts, as her allowed IPs on wg0
carol_ips() { wg show wg0 allowed-ips | awk -v k="$C_KEY" '$1 == k { $1 = ""; print }' | tr ' ' '\n' | grep -c .; }
q -c "SELECT wgpeer.wg_set_peer_routes('$C_ID', ARRAY['192.168.88.0/24']::cidr[]
	|| ARRAY(SELECT ('192.168.89.' || g || '/32')::cidr FROM generate_series(1, 20) g))" >/dev/null
check "her 21 routes and 2 addresses are her allowed IPs on wg0" wait_until 60 \
	eval '[ "$(carol_ips)" = 23 ]'
check "wg show lists 192.168.88.0/24 for her" bash -c \
	"wg show wg0 allowed-ips | grep -F '$C_KEY' | grep -qw '192.168.88.0/24'"
q -c "SELECT wgpeer.wg_set_peer_routes('$C_ID', NULL)" >/dev/null
check "routes removed: her 2 addresses again" wait_until 60 eval '[ "$(carol_ips)" = 2 ]'
# a quota of 100 kB a day: 150 kB of pings suspend her; a new period
# brings her back
q -c "SELECT quota_bytes FROM wgpeer.wg_set_peer_quota('$C_ID', 100000, 'day')" >/dev/null
ip netns exec "$NS" ping -q -c 100 -i 0.02 -s 1200 -W 2 10.10.0.1 >/dev/null 2>&1 || true
# wg_show() has the worker take a sample now; its watch pass follows
sampled_suspended() { q -c "SELECT count(*) FROM wgpeer.wg_show('wg0')" >/dev/null; carol_is suspended/quota; }
check "over her quota, suspended with reason quota" wait_until 120 sampled_suspended
check "she leaves wg0" wait_until 60 not_in_kernel wg0 "$C_KEY"
q -c "UPDATE wgpeer.quota SET period_anchor = period_anchor - interval '1 day',
	period_start = period_start - interval '1 day', period_end = period_end - interval '1 day'
	WHERE peer_id = '$C_ID'" >/dev/null
sampled_active() { q -c "SELECT count(*) FROM wgpeer.wg_show('wg0')" >/dev/null; carol_is active/; }
check "a new period brings her back" wait_until 120 sampled_active
check "on wg0" wait_until 60 in_kernel wg0 "$C_KEY"
check "pinging" wait_until 120 ping4
q -c "SELECT wgpeer.wg_set_peer_quota('$C_ID', NULL)" >/dev/null
same "the event log holds her lifecycle in order" \
	"created activated suspended resumed activated quota_warning quota_reached suspended resumed activated" \
	"$(q -c "SELECT string_agg(kind, ' ' ORDER BY event_id) FROM wgpeer.event
	         WHERE peer_id = '$C_ID' AND kind NOT IN ('connected', 'disconnected')")"
# key rotation: the old key leaves and the new one arrives in one apply
D_ID=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('dave', interface => 'wg0')")
D_KEY=$(q -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$D_ID'")
D_ADDR=$(q -c "SELECT host(address) FROM wgpeer.peer WHERE peer_id = '$D_ID'")
check "dave is on wg0" wait_until 60 in_kernel wg0 "$D_KEY"
q -c "SELECT wgpeer.wg_rotate_peer_key('$D_ID')" >/dev/null
D_NEW=$(q -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$D_ID'")
check "rotated: his new key is on wg0" wait_until 60 in_kernel wg0 "$D_NEW"
check "and the old one is gone" not_in_kernel wg0 "$D_KEY"
check "with the same address ($D_ADDR)" bash -c \
	"wg show wg0 allowed-ips | grep -F '$D_NEW' | grep -qF '$D_ADDR/32'"

echo "== 6. an interface missing at first"
q -c "SELECT name FROM wgpeer.wg_add_interface('wg1', '10.99.0.1:51821', '10.20.0.1/24',
		listen_port => 51821, backend => '$WGPEER_BACKEND')" >/dev/null
check "registering wg1 makes the worker reconcile at once (interval: 1 h)" wait_until 60 \
	sql_true "SELECT reconcile_error = 'interface \"wg1\" does not exist'
			  FROM wgpeer.device WHERE interface = 'wg1'"
D_ID=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('dave', interface => 'wg1')")
D_KEY=$(q -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$D_ID'")
check "interface_status shows the backlog and the error naming wg1" wait_until 60 \
	sql_true "SELECT backlog = 1 AND last_error LIKE '%\"wg1\"%' AND retry_at IS NOT NULL
			  FROM wgpeer.interface_status WHERE interface = 'wg1'"
q -c "SELECT * FROM wgpeer.interface_status WHERE interface = 'wg1'" | sed 's/^/   /'
check "the queued change carries attempts, error and next attempt" \
	sql_true "SELECT attempts >= 1 AND last_error LIKE '%wg1%' AND next_attempt_at IS NOT NULL
			  FROM wgpeer.queue WHERE peer_id = '$D_ID'"
check "dave stays creating" sql_true "SELECT status = 'creating' FROM wgpeer.peer WHERE peer_id = '$D_ID'"
F_KEY=$(q -c "SELECT public_key FROM wgpeer.wg_create_peer('frank', interface => 'wg0')")
check "meanwhile wg0 keeps flowing" wait_until 60 in_kernel wg0 "$F_KEY"
check "the worker retries (attempts reach 3 within the 2 s backoff cap)" wait_until 90 \
	sql_true "SELECT attempts >= 3 FROM wgpeer.queue WHERE peer_id = '$D_ID'"
wg_dev_add wg1
t0=$SECONDS
check "once wg1 exists, dave reaches it" wait_until 60 in_kernel wg1 "$D_KEY"
echo "   (within $((SECONDS - t0)) s of ip link add)"
check "dave becomes active" wait_until 60 \
	sql_true "SELECT status = 'active' FROM wgpeer.peer WHERE peer_id = '$D_ID'"
check "interface_status: no backlog, a success recorded, no retry pending" \
	sql_true "SELECT backlog = 0 AND last_success_at IS NOT NULL AND retry_at IS NULL
			  FROM wgpeer.interface_status WHERE interface = 'wg1'"
check "wg1 got its listen port 51821" test "$(wg show wg1 listen-port)" = 51821
# unregistering wg1 once its peers are revoked and off it: the worker,
# which samples and reconciles it, carries on without it
q -c "SELECT status FROM wgpeer.wg_revoke_peer('$D_ID')" >/dev/null
check "dave revoked and removed from wg1" wait_until 60 sql_true \
	"SELECT backlog = 0 FROM wgpeer.interface_status WHERE interface = 'wg1'"
check "wg_remove_interface('wg1') forgets its one peer" \
	test "$(q -c "SELECT wgpeer.wg_remove_interface('wg1')")" = 1
check "no row of wg1 is left, and wg_show() answers for the others" sql_true \
	"SELECT NOT EXISTS (SELECT FROM wgpeer.device WHERE interface = 'wg1')
		AND NOT EXISTS (SELECT FROM wgpeer.interface_status WHERE interface = 'wg1')
		AND EXISTS (SELECT FROM wgpeer.wg_show('wg0'))"
check "the WireGuard interface wg1 is left as it is, empty" \
	test "$(kernel_count wg1)" -eq 0
# deleting the device of an unregistered interface starts one reconcile
# (the worker notices an identity change, then forgets wg1), not one a second
# (the worker checks identities every second: 5 s to notice, 3 s to watch;
# a reconcile shows as the worker's last activity unless a stats sample,
# every 30 s, followed it)
not_reconciled_since() {
	sql_true "SELECT NOT EXISTS (SELECT FROM pg_stat_activity
		WHERE backend_type = 'wgpeer apply worker'
		  AND query = 'wgpeer: reconciling' AND query_start > '$1')"
}
wg_dev_del wg1
sleep 5
t0=$(q -c "SELECT now()")
sleep 3
check "no reconcile every second for the deleted, unregistered wg1" \
	not_reconciled_since "$t0"

echo "== 7. reconcile: desired state wins; traffic totals survive"
# hand edits behind wgpeer's back: a live peer removed, another's allowed
# IPs changed, a revoked peer put back, and a peer nobody registered
wg set wg0 peer "$B_KEY" remove
wg set wg0 peer "$F_KEY" allowed-ips 10.10.252.1/32
wg set wg0 peer "$A_KEY" allowed-ips 10.10.253.1/32
X_KEY=$(wg genkey | wg pubkey)
wg set wg0 peer "$X_KEY" allowed-ips 10.10.254.1/32
out=$(q -c "SELECT added, corrected, removed, foreign_peers, coalesce(error, '-')
			FROM wgpeer.wg_reconcile('wg0')")
check "wg_reconcile adds 1, corrects 1, removes 1, leaves 1 foreign (got $(echo $out))" \
	test "$out" = "$(printf '1\t1\t1\t1\t-')"
wanted_peers wg0 >"$T/want"
kernel_peers wg0 | grep -vF "$X_KEY" >"$T/got" || true
check "wg0 matches the database again" same_files "$T/want" "$T/got"
check "the foreign peer is left alone" in_kernel wg0 "$X_KEY"
out=$(q -c "SELECT added, corrected, removed FROM wgpeer.wg_reconcile('wg0')")
check "a second reconcile changes nothing (got $(echo $out))" test "$out" = "$(printf '0\t0\t0')"

# carol's traffic from test 5, as recorded by a sample (wg_show takes one)
q -c "SELECT count(*) FROM wgpeer.wg_show('wg0')" >/dev/null
TOTAL1=$(q -c "SELECT rx_bytes + tx_bytes FROM wgpeer.peer_status WHERE peer_id = '$C_ID'")
check "carol's traffic is recorded ($TOTAL1 bytes)" test "${TOTAL1:-0}" -gt 0

# the interface recreated, as after a reboot: empty, new ifindex
wg_dev_del wg0
wg_dev_add wg0
ip addr add 10.10.0.1/16 dev wg0
ip addr add fd00:10:10::1/64 dev wg0 nodad
ip link set wg0 up
restored() {
	wanted_peers wg0 >"$T/want"
	kernel_peers wg0 >"$T/got"
	cmp -s "$T/want" "$T/got"
}
t0=$SECONDS
check "the recreated wg0 gets every live peer back" wait_until 60 restored
echo "   (within $((SECONDS - t0)) s of ip link add)"
check "and its private key" test "$(wg show wg0 private-key)" = "$S_PRIV"
check "and its listen port" test "$(wg show wg0 listen-port)" = "$S_PORT"
check "carol pings through the tunnel again" wait_until 180 ping4
# the device's counter first, then the samples: counters only grow, so a
# sample taken after the read holds at least what was read (reading after
# the sample raced late pings and keepalives, and the sample that a
# wg_show() asks for may land just before the read: wait for one after it)
KERNEL2=$(wg show wg0 transfer | awk -v k="$C_KEY" '$1 == k { print $2 + $3 }')
total_kept() {
	q -c "SELECT count(*) FROM wgpeer.wg_show('wg0')" >/dev/null
	TOTAL2=$(q -c "SELECT rx_bytes + tx_bytes FROM wgpeer.peer_status WHERE peer_id = '$C_ID'")
	[ "${TOTAL2:-0}" -ge $((TOTAL1 + KERNEL2)) ]
}
wait_until 60 total_kept || true
check "carol's total kept its old traffic and added the new ($TOTAL1 + $KERNEL2 <= $TOTAL2)" \
	test "$TOTAL2" -ge $((TOTAL1 + KERNEL2))
check "peer_status says carol is online" \
	sql_true "SELECT online FROM wgpeer.peer_status WHERE peer_id = '$C_ID'"

echo "== 4. $BULK peers in one transaction"
# counted first: the worker may apply the batch before psql returns
before=$(kernel_count wg0)
t0=$SECONDS
q -c "SELECT count(*) FROM (SELECT wgpeer.wg_create_peer('bulk' || g, interface => 'wg0')
		  FROM generate_series(1, $BULK) g) s" >/dev/null
echo "   (created and committed in $((SECONDS - t0)) s)"
t0=$SECONDS
check "all $BULK reach the interface ($before peers before)" \
	wait_until 300 kernel_count_is wg0 $((before + BULK))
echo "   (on the interface within $((SECONDS - t0)) s)"
check "all of them become active" wait_until 120 \
	sql_true "SELECT count(*) = 0 FROM wgpeer.peer WHERE status = 'creating'"
wanted_peers wg0 >"$T/want"
kernel_peers wg0 >"$T/got"
check "the interface holds exactly the database's live peers: keys, PSKs, allowed IPs, keepalive ($(wc -l <"$T/want") peers)" \
	same_files "$T/want" "$T/got"
# a tenth of them revoked in one transaction: each removal costs the
# kernel an RCU grace period, tens of milliseconds under TCG
REVOKE=$((BULK / 10))
q -c "SELECT count(wgpeer.wg_revoke_peer(peer_id))
	  FROM (SELECT peer_id FROM wgpeer.peer WHERE user_id LIKE 'bulk%' LIMIT $REVOKE) s" >/dev/null
check "revoking $REVOKE of them in one transaction removes them" \
	wait_until 600 kernel_count_is wg0 $((before + BULK - REVOKE))
wanted_peers wg0 >"$T/want"
kernel_peers wg0 >"$T/got"
check "and it still matches the database" same_files "$T/want" "$T/got"

echo "== the server log"
grep -E 'ERROR|FATAL|PANIC|WARNING' "$D/pg/server.log" | grep -v 'database "wgtest" does not exist' |
	sort | uniq -c | sort -rn | head -n 10 | sed 's/^/   /' || true
check "worker never crashed (same pid as at the start)" \
	sql_true "SELECT pid = $WORKER FROM pg_stat_activity WHERE backend_type = 'wgpeer apply worker'"

echo "== 8. crashes and restarts lose nothing"
# kill -9 of the worker in the middle of a 5,000-peer batch: the postmaster
# restarts every process (crash recovery); after that every committed peer
# is on the interface exactly once
wg_dev_add wg2
q -c "SELECT name FROM wgpeer.wg_add_interface('wg2', '10.99.0.1:51822', '10.30.0.1/16',
		listen_port => 51822)" >/dev/null
WORKER=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'wgpeer apply worker'")
q -c "SELECT count(wgpeer.wg_create_peer('crash' || i, interface => 'wg2'))
	  FROM generate_series(1, $BULK) i" >/dev/null
# The whole commit is one batch (wgpeer.batch_size 10,000), sent in one
# set.  Freeze the worker inside it, kill it, and see how far it got.
# The kernel shows a set's peers message by message: test/vm/wgnl_driver
# dumps wg2 in a tight loop and freezes the worker once the first ones are
# there (a shell loop around wg show is too slow under TCG).  wireguard-go
# holds its lock for a whole set (wg show would wait for the frozen
# worker): freeze once the worker is connected to wg2's socket, and count
# after the kill, when the daemon has read what was sent.
worker_on_socket() {
	# the daemon's ends of connections on wg2.sock, and the worker's
	ss -xpn | awk -v sock="$WG_RUN_DIR/wg2.sock" -v pid="pid=$WORKER," '
		$5 == sock { daemon[$8] = 1 }
		index($0, pid) { mine[$6] = 1 }
		END { for (i in mine) if (i in daemon) exit 0; exit 1 }'
}
if [ "$WGPEER_BACKEND" = netlink ]; then
	frozen_at=$(test/vm/wgnl_driver freeze wg2 "$WORKER") || frozen_at=none
	kill -9 "$WORKER"
else
	limit=$((SECONDS + 300))
	until worker_on_socket || [ $SECONDS -ge $limit ]; do :; done
	kill -STOP "$WORKER"
	kill -9 "$WORKER"
	frozen_at=$(kernel_count wg2)
fi
check "the worker was stopped mid-batch ($frozen_at of $BULK peers on wg2)" \
	test "$frozen_at" != none -a "$frozen_at" -lt "$BULK"
server_back() { q -c "SELECT 1" >/dev/null 2>&1; }
check "the server recovers from the crash" wait_until 600 server_back
check "a new worker runs" wait_until 600 worker_running
all_on_wg2() { [ "$(kernel_count wg2)" -eq "$BULK" ]; }
check "after the restart all $BULK committed peers are on wg2" wait_until 900 all_on_wg2
wanted_peers wg2 >"$T/want"
kernel_peers wg2 >"$T/got"
check "wg2 holds exactly the database's peers, each once" same_files "$T/want" "$T/got"
check "all of them active, queue drained" wait_until 600 \
	sql_true "SELECT count(*) = 0 FROM wgpeer.queue"

# a backlog across a fast and an immediate shutdown: changes for a missing
# interface wait, survive both restarts, and drain once it exists
q -c "SELECT name FROM wgpeer.wg_add_interface('wg3', '10.99.0.1:51823', '10.40.0.1/24',
		listen_port => 51823)" >/dev/null
q -c "SELECT count(wgpeer.wg_create_peer('backlog' || i, interface => 'wg3'))
	  FROM generate_series(1, 20) i" >/dev/null
check "20 changes wait for wg3" wait_until 600 \
	sql_true "SELECT backlog = 20 FROM wgpeer.interface_status WHERE interface = 'wg3'"
for mode in fast immediate; do
	cluster_ctl -m "$mode" -w stop >/dev/null
	cluster_run
	check "after a $mode shutdown the backlog of 20 is still there" wait_until 600 \
		sql_true "SELECT count(*) = 20 FROM wgpeer.queue WHERE interface = 'wg3'"
done
wg_dev_add wg3
check "once wg3 exists the backlog drains onto it" wait_until 600 kernel_count_is wg3 20
check "and the queue is empty" wait_until 600 sql_true "SELECT count(*) = 0 FROM wgpeer.queue"

tap_summary "worker_test ($WGPEER_BACKEND)"
