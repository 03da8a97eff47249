#!/bin/bash
# The subscription lifecycle in bulk (issue 13), natively on this host with
# wireguard-go in a private network namespace and the apply worker running:
#	1. suspend and resume of PEERS (default 5,000) peers, one statement and
#	   one transaction each way (wg_suspend_peer / wg_resume_peer over the
#	   interface's peers), against creating PEERS peers in one statement
#	   (wg_create_peer over generate_series) on an empty interface: the
#	   statement's time as psql measures it (its commit included), and from
#	   just after its commit until the interface holds the peers (after
#	   create and resume) or none (after suspend), polled with `wg show
#	   <if> peers` every 10 ms (one poll of 5,000 peers over UAPI takes a
#	   few tens of ms, which bounds the resolution).  After the resume the
#	   interface must hold exactly what it held before the suspend (keys,
#	   preshared keys, allowed IPs, keepalive).
#	2. the import of a PEERS-peer server config: PEERS [Peer] sections
#	   (public key, preshared key, an IPv4 /32 and the IPv6 /128 at the same
#	   offset, keepalive 25), loaded onto a new wireguard-go interface with
#	   one `wg addconf` (the baseline), then `wg showconf` of it registered
#	   with its private key and port and adopted with one
#	   wg_import_config(): its time as psql measures it, the time until the
#	   worker has applied the adds the import queued (backlog 0), then
#	   wg_reconcile(), which must find nothing to add, correct or remove,
#	   and the interface, which must be peer for peer as it was.  The keys
#	   of the config are made in SQL (wg_pubkey(wg_genkey()), wg_genpsk()):
#	   timed against `wg genkey | wg pubkey` and `wg genpsk` per peer (the
#	   first KEYSAMPLE peers, extrapolated).
# Each round uses fresh interfaces, unregistered (force) and stopped at its
# end.  Prints each round, then one table of medians and ratios against the
# baselines measured in the same run; any check that fails makes the exit
# status non-zero.  Run as root after `make install` (or with PG_BIN):
#	bash bench/lifecycle.sh [PEERS] [ROUNDS]	(defaults 5000 and 5)
#	bash bench/lifecycle.sh --quick				(1000 peers, 3 rounds)
# The cluster runs with fsync off, as every throwaway cluster here does;
# reconciles only when asked and no traffic sampling, so that the worker does
# nothing the benchmark did not ask for; and autovacuum off, so that every
# round finds the tables as a fresh install has them (never analyzed): once
# the peer table has been vacuumed or analyzed while (nearly) empty, as
# autovacuum does here after a round's peers are deleted, the plans cached
# for wg_import_config's per-peer lookups (key and address taken?) and the
# worker's batch query are sequential scans, and a 5,000-peer import took
# 5-15 s and its apply up to 15 s in later rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. test/cluster.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "bench/lifecycle.sh makes a network namespace: run it as root" >&2
	exit 1
fi
if [ "${1:-}" = --quick ]; then
	set -- 1000 3
fi
PEERS=${1:-5000}
ROUNDS=${2:-5}
if ! [[ $PEERS =~ ^[0-9]+$ && $ROUNDS =~ ^[0-9]+$ ]] ||
	[ "$PEERS" -lt 1 ] || [ "$PEERS" -gt 60000 ] || [ "$ROUNDS" -lt 1 ]; then
	echo "usage: bench/lifecycle.sh [PEERS (1-60000)] [ROUNDS (1 or more)] | --quick" >&2
	exit 2
fi
KEYSAMPLE=$((PEERS < 50 ? PEERS : 50))
STAGE=bn-lifecycle
. test/userspace.sh
trap 'exit 130' INT TERM HUP

# wait_until (test/tap.sh) polls every 10 ms here: its polls are the timings
WAIT_UNTIL_STEP=0.01
now_ms() { echo $(($(date +%s%N) / 1000000)); }
die() {
	echo "bench/lifecycle.sh: $*" >&2
	exit 1
}
# record NAME VALUE: one round's figure, in $TMP/t_NAME
record() { echo "$2" >>"$TMP/t_$1"; }
last() { tail -n 1 "$TMP/t_$1"; }
med() { median <"$TMP/t_$1"; }

peer_count() { ip netns exec "$NS" wg show "$1" peers | wc -l; }
peers_are() { [ "$(peer_count "$1")" -eq "$2" ]; }
# the interface's peers as wireguard-go has them (test/wireguard.sh)
device_peers() { (wg() { ip netns exec "$NS" wg "$@"; } && kernel_peers "$1"); }
all_active() {
	sql_true "SELECT count(*) = $2 FROM wgpeer.peer WHERE interface = '$1' AND status = 'active'"
}
drained() { sql_true "SELECT backlog = 0 FROM wgpeer.interface_status WHERE interface = '$1'"; }
# the worker has reconciled the interface since its registration
reconciled() {
	sql_true "SELECT reconciled_at IS NOT NULL FROM wgpeer.device WHERE interface = '$1'"
}

# timed PRE SQL: in one session, the psql commands PRE, then the statement
# SQL (one transaction) under psql's \timing; prints "RESULT MS END_MS": its
# one value, its time in ms as psql measures it (round trip and commit
# included), and the epoch in ms just after its commit
timed() {
	q <<SQL | awk '/^Time: / { ms = $2; next } !seen { r = $0; seen = 1; next } { end = $0 }
		END { print r, ms, end }'
$1
\timing on
$2;
\timing off
SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
SQL
}

# register DEV NET PORT [ARGS]: wgpeer interface DEV (10.NET.0.1/16,
# fd00:NET::1/64, keepalive 25, over UAPI), once the worker has reconciled it
register() {
	q -c "SELECT name FROM wgpeer.wg_add_interface('$1', '192.0.2.1:$3',
		'10.$2.0.1/16', 'fd00:$2::1/64', listen_port => $3,
		persistent_keepalive => 25, backend => 'uapi'${4:+, $4})" >/dev/null
	wait_until 60 reconciled "$1"
}
# unregister DEV: forget it in wgpeer (peers left on it), stop its daemon
unregister() {
	q -c "SELECT wgpeer.wg_remove_interface('$1', force => true)" >/dev/null
	wg_dev_del "$1"
}

# suspend_round R: create, suspend and resume PEERS peers on a new interface
suspend_round() {
	local dev=bnsr$1 net=$((150 + $1)) port=$((51960 + $1)) n ms end
	wg_dev_add "$dev" "$NS"
	register "$dev" "$net" "$port"

	read -r n ms end < <(timed "" "SELECT count(wgpeer.wg_create_peer('bench' || g,
		interface => '$dev')) FROM generate_series(1, $PEERS) g")
	[ "$n" = "$PEERS" ] || die "wg_create_peer made $n peers, not $PEERS"
	record create "$ms"
	wait_until 300 peers_are "$dev" "$PEERS"
	record create_applied $(($(now_ms) - end))
	wait_until 300 all_active "$dev" "$PEERS"
	device_peers "$dev" >"$TMP/before"

	read -r n ms end < <(timed "" "SELECT count(wgpeer.wg_suspend_peer(peer_id, 'bench'))
		FROM wgpeer.peer WHERE interface = '$dev' AND status = 'active'")
	[ "$n" = "$PEERS" ] || die "wg_suspend_peer suspended $n peers, not $PEERS"
	record suspend "$ms"
	wait_until 300 peers_are "$dev" 0
	record suspend_applied $(($(now_ms) - end))
	wait_until 300 drained "$dev"
	check "round $1: all $PEERS suspended, the interface empty, the queue drained" sql_true \
		"SELECT count(*) FILTER (WHERE status = 'suspended') = $PEERS
			AND count(*) FILTER (WHERE suspended_reason = 'bench') = $PEERS
		 FROM wgpeer.peer WHERE interface = '$dev'"

	read -r n ms end < <(timed "" "SELECT count(wgpeer.wg_resume_peer(peer_id))
		FROM wgpeer.peer WHERE interface = '$dev' AND status = 'suspended'")
	[ "$n" = "$PEERS" ] || die "wg_resume_peer resumed $n peers, not $PEERS"
	record resume "$ms"
	wait_until 300 peers_are "$dev" "$PEERS"
	record resume_applied $(($(now_ms) - end))
	wait_until 300 all_active "$dev" "$PEERS"
	device_peers "$dev" >"$TMP/after"
	check "round $1: after the resume $dev holds the same $PEERS peers as before the suspend" \
		same_files "$TMP/before" "$TMP/after"
	unregister "$dev"
	echo "   round $1: create $(last create) ms (on $dev $(last create_applied) ms later)," \
		"suspend $(last suspend) ms (off $(last suspend_applied) ms later)," \
		"resume $(last resume) ms (back $(last resume_applied) ms later)"
}

# import_round R: a PEERS-peer config onto a new interface with wg addconf,
# then adopted by wg_import_config
import_round() {
	local dev=bnim$1 net=$((170 + $1)) port=$((51980 + $1)) n ms end t0 k key rec

	# the keys the config needs: in SQL, and per peer with wg (a sample)
	read -r n ms end < <(timed "" "SELECT count(wgpeer.wg_pubkey(wgpeer.wg_genkey()))
		+ count(wgpeer.wg_genpsk()) FROM generate_series(1, $PEERS)")
	record keys_sql "$ms"
	t0=$(date +%s%N)
	for _ in $(seq "$KEYSAMPLE"); do
		k=$(wg genkey)
		wg pubkey <<<"$k" >/dev/null
		wg genpsk >/dev/null
	done
	record keys_wg "$(awk -v a="$t0" -v b="$(date +%s%N)" -v s="$KEYSAMPLE" -v n="$PEERS" \
		'BEGIN { printf "%.1f", (b - a) / 1e6 * n / s }')"

	# the config: peer g at 10.NET.0.1 + g and fd00:NET::1 + g
	key=$(q -c "SELECT wgpeer.wg_genkey()")
	{
		printf '[Interface]\nListenPort = %s\nPrivateKey = %s\n' "$port" "$key"
		q -c "SELECT string_agg(format(E'\\n[Peer]\\nPublicKey = %s\\nPresharedKey = %s\\nAllowedIPs = %s/32, %s/128\\nPersistentKeepalive = 25\\n',
				wgpeer.wg_pubkey(wgpeer.wg_genkey()), wgpeer.wg_genpsk(),
				host('10.$net.0.1'::inet + g), host('fd00:$net::1'::inet + g)), '')
			  FROM generate_series(1, $PEERS) g"
	} >"$TMP/import.conf"

	wg_dev_add "$dev" "$NS"
	t0=$(date +%s%N)
	ip netns exec "$NS" wg addconf "$dev" "$TMP/import.conf"
	record addconf "$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')"
	peers_are "$dev" "$PEERS" || die "wg addconf left $(peer_count "$dev") peers, not $PEERS"
	ip netns exec "$NS" wg showconf "$dev" >"$TMP/showconf"
	chmod 644 "$TMP/showconf"
	device_peers "$dev" >"$TMP/before"

	register "$dev" "$net" "$port" "private_key => '$key'"
	read -r n ms end < <(timed "\\set conf \`cat '$TMP/showconf'\`" \
		"SELECT wgpeer.wg_import_config('$dev', :'conf')")
	[ "$n" = "$PEERS" ] || die "wg_import_config adopted $n peers, not $PEERS"
	record import "$ms"
	wait_until 300 drained "$dev"
	record import_applied $(($(now_ms) - end))
	rec=$(q -F ' ' -c "SELECT added, corrected, removed, foreign_peers, coalesce(error, '-')
		FROM wgpeer.wg_reconcile('$dev')")
	echo "$rec" >>"$TMP/reconciles"
	same "round $1: wg_reconcile after the import: added, corrected, removed, foreign, error" \
		"0 0 0 0 -" "$rec"
	device_peers "$dev" >"$TMP/after"
	check "round $1: $dev holds the same $PEERS peers as before the import" \
		same_files "$TMP/before" "$TMP/after"
	check "round $1: all $PEERS imported peers active" all_active "$dev" "$PEERS"
	unregister "$dev"
	echo "   round $1: keys in SQL $(last keys_sql) ms (wg per peer $(last keys_wg) ms)," \
		"wg addconf $(last addconf) ms, wg_import_config $(last import) ms" \
		"(applied $(last import_applied) ms later), reconcile: $rec"
}

echo "== PostgreSQL 15 with the worker, wireguard-go in namespace $NS; $PEERS peers, $ROUNDS rounds"
ip netns add "$NS"
ip -n "$NS" link set lo up
cluster_start "$TMP/pg" "wgpeer.database = 'postgres'" \
	"wgpeer.reconcile_interval = '1h'" "wgpeer.stats_interval = 0" \
	"shared_buffers = 256MB" "autovacuum = off" ||
	{ tail -n 5 "$TMP/pg/server.log" >&2; exit 1; }
q -c "CREATE EXTENSION wgpeer" >/dev/null

echo "== 1. suspend and resume $PEERS peers vs creating them, one statement each"
for r in $(seq "$ROUNDS"); do
	suspend_round "$r"
done

echo "== 2. import of a $PEERS-peer config vs wg addconf of it"
for r in $(seq "$ROUNDS"); do
	import_round "$r"
done

printf '== medians of %d rounds, %d peers (%d CPUs, load average %s)\n' "$ROUNDS" "$PEERS" \
	"$(nproc)" "$(cut -d ' ' -f 1-3 /proc/loadavg)"
# row WHAT MS [BASELINE MS]: a median, and its ratio to a baseline's
row() {
	printf '   %-48s %9.1f ms' "$1" "$2"
	[ $# -lt 4 ] || printf '   %-34s %9.1f ms %7sx' "$3" "$4" "$(ratio "$2" "$4")"
	echo
}
printf '   %-48s %12s   %-34s %12s %8s\n' "" wgpeer baseline "" ratio
row "wg_create_peer x $PEERS, one statement" "$(med create)"
row "wg_suspend_peer x $PEERS, one statement" "$(med suspend)" \
	"wg_create_peer x $PEERS" "$(med create)"
row "wg_resume_peer x $PEERS, one statement" "$(med resume)" \
	"wg_create_peer x $PEERS" "$(med create)"
row "commit -> created: interface holds $PEERS" "$(med create_applied)"
row "commit -> suspended: interface holds 0" "$(med suspend_applied)" \
	"commit -> created" "$(med create_applied)"
row "commit -> resumed: interface holds $PEERS" "$(med resume_applied)" \
	"commit -> created" "$(med create_applied)"
row "keys for $PEERS peers in SQL (pair + PSK)" "$(med keys_sql)" \
	"wg genkey | wg pubkey, wg genpsk" "$(med keys_wg)"
row "wg_import_config of the $PEERS-peer showconf" "$(med import)" \
	"wg addconf of the config" "$(med addconf)"
row "commit -> the import's queued adds applied" "$(med import_applied)"
echo "   wg_reconcile after each import (added corrected removed foreign error):" \
	"$(sort "$TMP/reconciles" | uniq -c | awk '{ $1 = $1 " x"; print }' | paste -sd ';')"
tap_summary "checks"
