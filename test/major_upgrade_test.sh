#!/bin/bash
# The major-version upgrade path (issue 20): a PostgreSQL 15 cluster with
# wgpeer serving live peers on a wireguard-go interface, a client pinging
# through it, events and quotas, upgraded to 17 both ways Debian's
# pg_upgradecluster offers, one after the other from the same cluster:
#	1. the 15 cluster (the host's PostgreSQL, first in PATH) serves wgmu0:
#	   peers in every state (active with quotas, routes, suspended,
#	   revoked), traffic, usage and events; samples then stop, so that its
#	   rows stay as they are;
#	2. dump/restore: pg_dump of 17 (in today's trixie chroot, test/chroot.sh,
#	   with this tree installed) dumps the running 15 cluster, pg_restore
#	   restores it into a 17 cluster whose worker serves another database
#	   (as docs/backups-and-ha.md says); every row of wgpeer's tables and
#	   its sequences' values, as 17's pg_dump writes them, equal 15's; then
#	   15 stops and 17's wgpeer.database names the restored database;
#	3. pg_upgrade: the 15 cluster (stopped) upgraded with 17's pg_upgrade in
#	   the chroot, 15's binaries and the libraries the chroot lacks copied
#	   into it (host_pg_into); every row equal 15's, then its worker
#	   started the same way.
# After each: the 17 worker resumes (reconciles, its first reconcile
# changes nothing, a new peer reaches wgmu0 with an event id past 15's),
# and wgmu0 equals the database without re-adding any peer: the same
# server key, each peer's handshake and counters kept (a peer removed and
# added again would start from zero), the client pinging throughout.
# WGPEER_ROOT_17=DIR uses DIR, a root that test/chroot.sh's wgpeer_root 17
# made already, instead of building one (about 1 to 4 minutes).  Run as
# root after `make install`:  bash test/major_upgrade_test.sh
# Polls with bounds, never fixed sleeps.  Prints "N passed, N failed" and
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh
. test/chroot.sh
own_wireguard_run "test/$(basename "$0")" "$@"
# both majors' clusters with the same locale: pg_upgrade requires it
export LC_ALL=C.UTF-8

E2E_NAME=mu
DEV=wgmu0						# wgpeer's interface, run by wireguard-go
CDEV=wgmuc0						# the client's interface
E2E_NET=192.168.246
. test/e2e.sh
. test/node_lib.sh
NEW=17
CLUSTER_DB=vpn
PINGER=
SRV=

e2e_cleanup_extra() {
	[ -z "$PINGER" ] || kill "$PINGER" 2>/dev/null || true
	pg_stop_all
	[ -z "$SRV" ] || rm -rf "$SRV"
	suite_root_release
}

# in_new NAME: cluster NAME (test/node_lib.sh) will be one of $NEW in the
# chroot, in the directory of the clusters
in_new() {
	PG_ROOT[$1]=$MERGED
	PG_ROOT_MAJOR[$1]=$NEW
	PG_DIR[$1]=$SRV/$1
}
# new_pg PROGRAM ARGS: PROGRAM of PostgreSQL $NEW with ARGS (a shell line)
# in the chroot, as the clusters' user, in the directory of the clusters
new_pg() {
	in_root "$MERGED" "cd $SRV_IN && runuser -u $WGPEER_USER -- \
		/usr/lib/postgresql/$NEW/bin/$1 $2"
}
# rows NAME: the rows of wgpeer's tables and its sequences' values in
# cluster NAME's database vpn, as $NEW's pg_dump writes them (the
# extension's tables are registered with pg_extension_config_dump), each
# table's rows sorted (a restore or a copy may keep them in another
# physical order); no comment, setting or \restrict key (new each time)
rows() {
	new_pg pg_dump "-h 127.0.0.1 -p ${PG_PORT[$1]} -U postgres -d vpn --data-only -n wgpeer" |
		grep -v -e '^--' -e '^$' -e '^SET ' -e 'set_config' -e '^\\\(un\)\?restrict ' |
		perl -ne 'if (/^COPY /) { print; @rows = (); $in = 1 }
			elsif ($in && /^\\\.$/) { print sort(@rows), $_; $in = 0 }
			elsif ($in) { push @rows, $_ } else { print }'
}
# the peers as wgmu0 has them: key, latest handshake, rx, tx
dev_state() { srv wg show "$DEV" dump | tail -n +2 | awk -F'\t' -v OFS='\t' '{ print $1, $5, $6, $7 }' | sort; }
# kept SNAPSHOT: every peer of SNAPSHOT (dev_state) is on wgmu0 with the
# same handshake (or a later one) and counters no lower: none was removed
# and added again
kept() {
	dev_state | awk -F'\t' 'NR == FNR { hs[$1] = $2; rx[$1] = $3; tx[$1] = $4; next }
		($1 in hs) { seen[$1] = 1
			if ($2 < hs[$1] || (hs[$1] > 0 && $2 == 0) || $3 < rx[$1] || $4 < tx[$1]) {
				print "   reset: " $0 " (was " hs[$1] " " rx[$1] " " tx[$1] ")"; bad = 1 } }
		END { for (k in hs) if (!(k in seen)) { print "   gone: " k; bad = 1 }; exit bad }' "$1" -
}
ping_server() { cli ping -c 1 -W 1 10.96.0.1 >/dev/null 2>&1; }

# serve NAME WHAT: 17's cluster NAME, its rows checked, takes wgmu0 over
# from the stopped 15 cluster: its worker is pointed at vpn and started;
# the checks of a finished upgrade
serve() {
	local name=$1 what=$2 snap=$TMP/dev.$1
	dev_state >"$snap"
	pg_ctl_on "$name" -m fast -w stop >/dev/null
	printf '%s\n' "wgpeer.database = 'vpn'" "wgpeer.stats_interval = 1s" \
		>>"${PG_DIR[$name]}/data/postgresql.conf"
	pg_run "$name"
	check "$what: 17's worker reconciles $DEV" wait_until 30 on "$name" sql_true \
		"SELECT reconciled_at IS NOT NULL FROM wgpeer.device WHERE interface = '$DEV'"
	same "$what: its first reconcile changed nothing on $DEV (added, corrected, removed, error)" \
		"0 0 0 " "$(on "$name" q -c "SELECT added || ' ' || corrected || ' ' || removed || ' '
			|| coalesce(reconcile_error, '') FROM wgpeer.device WHERE interface = '$DEV'")"
	same "$what: $DEV keeps the server key" "$SERVER_KEY" "$(srv wg show "$DEV" public-key)"
	same "$what: $DEV has the peers the upgraded database wants" \
		"$(on "$name" wanted_peers "$DEV")" "$(kernel_peers "$DEV")"
	check "$what: no peer of $DEV was removed and added again (handshakes, counters kept)" \
		kept "$snap"
	check "$what: the client still pings" wait_until 10 ping_server
	check "$what: 17's samples go on counting alice's traffic" wait_until 20 on "$name" sql_true \
		"SELECT rx_bytes >= $ALICE_RX AND sampled_at > now() - interval '5 seconds'
		 FROM wgpeer.peer_traffic WHERE peer_id = '$ALICE'"
	local new new_key
	IFS=$'\t' read -r new new_key < <(on "$name" q -c "SELECT peer_id, public_key
		FROM wgpeer.wg_create_peer('new_$name', interface => '$DEV')")
	check "$what: a new peer reaches $DEV" wait_until 20 on_server "$new_key"
	check "$what: ... goes active, its event ids after 15's last ($MAX_EVENT)" \
		wait_until 20 on "$name" sql_true "SELECT status = 'active'
			AND (SELECT min(event_id) > $MAX_EVENT FROM wgpeer.event WHERE peer_id = '$new')
			FROM wgpeer.peer WHERE peer_id = '$new'"
	echo "   (its first event id: $(on "$name" q -c "SELECT min(event_id) FROM wgpeer.event
		WHERE peer_id = '$new'"); 15's last: $MAX_EVENT)"
	on "$name" q -c "SELECT wgpeer.wg_revoke_peer('$new')" >/dev/null
	check "$what: ... and leaves when revoked" wait_until 20 not_on_server "$new_key"
	check "$what: the client still pings" wait_until 10 ping_server
	pg_stop "$name"
}

e2e_start
ip -n "$NS_S" addr add 10.96.0.1/24 dev "$DEV"
ip -n "$NS_S" link set "$DEV" up

echo "== [${SECONDS}s] PostgreSQL $NEW: a trixie overlay with this tree installed"
suite_root "$NEW" upgrade
host_pg_into "$MERGED"
OLD_BIN=$(pg_config --bindir)
echo "   PostgreSQL $("$PG_BIN/pg_config" --version | cut -d' ' -f2) copied into it" \
	"(libraries the chroot lacks, copied too: $HOST_PG_LIBS)"
# every cluster's directory below the root, so that $NEW's programs there
# reach 15's too
SRV_IN=/srv/wgpeer-mu-$$
SRV=$MERGED$SRV_IN
mkdir -p "$SRV"
chown "$WGPEER_USER" "$SRV"

echo "== [${SECONDS}s] 1. PostgreSQL 15 serves $DEV"
PG_DIR[old]=$SRV/old
pg_start old "wgpeer.database = 'vpn'" "wgpeer.stats_interval = 1s"
CLUSTER_DB=postgres on old q -c "CREATE DATABASE vpn"
OLD_IN=${PG_DIR[old]#"$MERGED"}	# its directory as the chroot sees it
on old q >/dev/null <<SQL
CREATE EXTENSION wgpeer;
SELECT name FROM wgpeer.wg_add_interface('$DEV', '$E2E_NET.1:51820',
	'10.96.0.1/24', allowed_ips => '10.96.0.0/24', backend => 'uapi');
SQL
# alice (a monthly quota) and erin (a daily one) stay active, bob gets a
# route, carol is suspended, dave revoked
on old q >/dev/null <<SQL
SELECT count(*) FROM unnest('{alice,bob,carol,dave,erin}'::text[]) u,
	LATERAL wgpeer.wg_create_peer(u, interface => '$DEV');
SELECT wgpeer.wg_set_peer_quota(p.peer_id, q.bytes, q.period)
	FROM (VALUES ('alice', 1000000000, 'month'), ('erin', 5000000, 'day')) q (who, bytes, period)
	JOIN wgpeer.peer p ON p.user_id = q.who;
SELECT wgpeer.wg_set_peer_routes(peer_id, '{10.196.2.0/24}') FROM wgpeer.peer WHERE user_id = 'bob';
SELECT wgpeer.wg_suspend_peer(peer_id, 'unpaid') FROM wgpeer.peer WHERE user_id = 'carol';
SELECT wgpeer.wg_revoke_peer(peer_id) FROM wgpeer.peer WHERE user_id = 'dave';
SQL
IFS=$'\t' read -r ALICE ALICE_KEY < <(on old q -c "SELECT peer_id, public_key FROM wgpeer.peer
	WHERE user_id = 'alice'")
(umask 077 && on old q -c "SELECT wgpeer.wg_peer_config('$ALICE')" >"$TMP/client.conf")
check "alice reaches $DEV" wait_until 30 on_server "$ALICE_KEY"
wg_client_up "$CDEV" "$NS_C" "$TMP/client.conf" 10.96.0.0/24
check "the client pings 10.96.0.1 through the tunnel" wait_until 30 ping_server
cli ping -q -c 300 -i 0.01 -s 1000 -W 1 10.96.0.1 >/dev/null 2>&1 || true
check "its traffic, usage and connection are recorded" wait_until 20 on old sql_true \
	"SELECT (SELECT rx_bytes > 250000 FROM wgpeer.peer_traffic WHERE peer_id = '$ALICE')
	    AND (SELECT sum(rx_bytes) > 250000 FROM wgpeer.peer_usage WHERE peer_id = '$ALICE')
	    AND EXISTS (SELECT FROM wgpeer.event WHERE peer_id = '$ALICE' AND kind = 'connected')"
PEERS='alice:active bob:active carol:suspended dave:revoked erin:active'
check "every peer applied" wait_until 20 on old sql_true \
	"SELECT string_agg(user_id || ':' || status, ' ' ORDER BY user_id) = '$PEERS'
	 FROM wgpeer.peer"
# the client pings all along, until the end; what it lost is printed
ip netns exec "$NS_C" ping -i 0.2 -W 1 10.96.0.1 >"$TMP/ping.log" 2>&1 &
PINGER=$!
# no more samples: 15's rows stay as they are while it is dumped
on old q -c "ALTER SYSTEM SET wgpeer.stats_interval = 0" -c "SELECT pg_reload_conf()" >/dev/null
wait_until 10 on old sql_true "SELECT current_setting('wgpeer.stats_interval') = '0'"
SERVER_KEY=$(on old q -c "SELECT public_key FROM wgpeer.interface WHERE name = '$DEV'")
same "$DEV has 15's server key" "$SERVER_KEY" "$(srv wg show "$DEV" public-key)"
rows old >"$TMP/rows.old"
MAX_EVENT=$(on old q -c "SELECT max(event_id) FROM wgpeer.event")
VERSION=$(on old q -c "SELECT extversion FROM pg_extension WHERE extname = 'wgpeer'")
ALICE_RX=$(on old q -c "SELECT rx_bytes FROM wgpeer.peer_traffic WHERE peer_id = '$ALICE'")
echo "   $(on old q -c "SELECT count(*) FROM wgpeer.peer") peers, $(on old q -c "SELECT count(*)
	FROM wgpeer.quota") quotas, $(on old q -c "SELECT count(*) FROM wgpeer.event") events;" \
	"pg_dump: $(grep -c '^COPY wgpeer\.' "$TMP/rows.old") tables, $(wc -l <"$TMP/rows.old") lines"
check "pg_dump of 15 holds wgpeer's rows (peer, quota, event, the event sequence)" \
	bash -c 'grep -q "^COPY wgpeer.peer " "$1" && grep -q "^COPY wgpeer.quota " "$1" &&
		grep -q "^COPY wgpeer.event " "$1" && grep -q "setval(.wgpeer.event_id_seq." "$1"' _ \
	"$TMP/rows.old"

echo "== [${SECONDS}s] 2. dump/restore: 17's pg_dump of the running 15, restored into 17"
# 17's worker serves the database postgres (without wgpeer) meanwhile
in_new dump
pg_start dump
dumped=0
{ new_pg pg_dump "-Fc -h 127.0.0.1 -p ${PG_PORT[old]} -U postgres -d vpn -f vpn.dump" &&
	new_pg createdb "-h 127.0.0.1 -p ${PG_PORT[dump]} -U postgres vpn" &&
	new_pg pg_restore "--exit-on-error -h 127.0.0.1 -p ${PG_PORT[dump]} -U postgres \
		-d vpn vpn.dump"; } >"$TMP/dump.log" 2>&1 || dumped=$?
check "17's pg_dump of 15, pg_restore into 17" test "$dumped" = 0
[ "$dumped" = 0 ] || tail -n 30 "$TMP/dump.log"
check "dump/restore: every row of wgpeer and its sequences as 15 has them" \
	same_files "$TMP/rows.old" <(rows dump)
same "dump/restore: the extension's version" "$VERSION" \
	"$(on dump q -c "SELECT extversion FROM pg_extension WHERE extname = 'wgpeer'")"
same "dump/restore: the peers and their states" "$PEERS" \
	"$(on dump q -c "SELECT string_agg(user_id || ':' || status, ' ' ORDER BY user_id) FROM wgpeer.peer")"
pg_stop old
serve dump "dump/restore"

echo "== [${SECONDS}s] 3. pg_upgrade of the 15 cluster to 17"
in_new up
pg_init up
upgraded=0
t=$SECONDS
new_pg pg_upgrade "-b $OLD_BIN -B /usr/lib/postgresql/$NEW/bin \
	-d $OLD_IN/data -D $(pg_inner_dir up)/data -U postgres \
	-p $((50000 + $$ % 1000)) -P $((51000 + $$ % 1000))" >"$TMP/upgrade.log" 2>&1 ||
	upgraded=$?
check "17's pg_upgrade of the 15 cluster ($((SECONDS - t)) s)" test "$upgraded" = 0
[ "$upgraded" = 0 ] || tail -n 30 "$TMP/upgrade.log" "${PG_DIR[up]}"/data/pg_upgrade_output.d/*/log/*
# its worker serves the database postgres (without wgpeer) at first
pg_run up
check "pg_upgrade: every row of wgpeer and its sequences as 15 had them" \
	same_files "$TMP/rows.old" <(rows up)
same "pg_upgrade: the extension's version" "$VERSION" \
	"$(on up q -c "SELECT extversion FROM pg_extension WHERE extname = 'wgpeer'")"
serve up "pg_upgrade"

kill -INT "$PINGER" 2>/dev/null || true
wait "$PINGER" 2>/dev/null || true
PINGER=
read -r sent got < <(awk '/packets transmitted/ { print $1, $4 }' "$TMP/ping.log")
echo "   the client's ping across both upgrades: $got of $sent received"
check "the client lost at most 2% of its pings across both upgrades" \
	test "$((got * 100))" -ge "$((sent * 98))"

echo "== [${SECONDS}s] done"
tap_summary major_upgrade_test
