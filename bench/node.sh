#!/bin/bash
# Node mode (issue 12) against a standalone server, natively on this host
# with wireguard-go: how much replication costs between a commit and the
# peer on the interface.  Three throwaway clusters on 127.0.0.1: a primary,
# node a (wgpeer.node = 'a', set up as the README says) and a standalone
# server; node a's interfaces and the standalone's are wireguard-go daemons
# in two network namespaces.  Run as root after `make install`:
#	bash bench/node.sh [SINGLE] [RUNS] [LOAD_SECONDS] [RATE]
# (defaults 200, 3, 25, 500).  Measures:
#	1. commit -> interface, one peer per transaction: SINGLE commits on
#	   the primary for an interface of node a, SINGLE on the standalone
#	   for its own interface, interleaved in rounds of 50 after a warm-up.
#	   A small client (written out and built below from src/device/uapi.c
#	   and libpq) takes the time just before COMMIT is sent, then polls the
#	   interface's UAPI socket (a `get` every 0.2 ms) until the new key is
#	   there, then polls the peer's status until 'active' (on the primary:
#	   after node a's outcome has come back).  Median, p90, p99.
#	2. 5,000 peers in one transaction: from just before COMMIT until the
#	   interface holds all of them (polled every 10 ms; one `get` of 5,000
#	   peers takes a few ms) and until all are active, node vs standalone,
#	   on a fresh interface each run, RUNS runs each, medians; for the node
#	   also when node a's database first holds all 5,000 (replicated).
#	3. sustained load: pgbench calls wg_create_peer at RATE transactions per
#	   second (--rate, 8 clients) for LOAD_SECONDS, first on the standalone
#	   (the baseline), then on the primary for an interface of node a,
#	   while: every 0.5 s the queue backlog is sampled, and for the node the
#	   primary's pg_stat_replication row of node a's subscription (bytes
#	   behind, replay_lag); a probe commits one peer every 0.5 s for another
#	   interface of the same server and times it to the interface as in 1;
#	   afterwards, for every peer of the node's load, node a's outcome time
#	   minus the peer's created_at (the primary's transaction start, so
#	   about its commit), and the drain time after pgbench ends.
# Goals (issue 12): median commit -> interface within 2x of standalone;
# 5,000 peers within 1.5x.  The clusters run with fsync off, as every
# throwaway cluster here does; figures on a busy machine are noisy: the
# ratios, measured in the same run, are the point.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. test/cluster.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "bench/node.sh makes network namespaces: run it as root" >&2
	exit 1
fi
SINGLE=${1:-200}
RUNS=${2:-3}
LOAD_SECONDS=${3:-25}
RATE=${4:-500}
BULK=5000
ROUND=50
S=$(($$ % 100000))
NS_N=wgpeer-nb-n-$$				# node a's interfaces
NS_S=wgpeer-nb-s-$$				# the standalone's
IFN=wgbn$S						# node a: one-peer commits
IFP=wgbp$S						# node a: the probe under load
IFL=wgbl$S						# node a: the load
IFS_=wgbs$S						# standalone: one-peer commits
IFPS=wgbq$S						# standalone: the probe under load
IFLS=wgbm$S						# standalone: the load
TMP=$(mktemp -d /tmp/wgpeer-node-bench.XXXXXX)
chmod 755 "$TMP"

# Several clusters at once (test/node_lib.sh, as test/node_test.sh has
# them, with the wireguard-go interfaces and test/tap.sh's polls): `on
# NAME FUNCTION...` runs a test/cluster.sh function against cluster NAME.
. test/node_lib.sh
SAMPLER=
LOADER=
cleanup() {
	local status=$? name
	set +e
	for pid in $SAMPLER $LOADER; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for name in "${CLUSTERS[@]}"; do
		if [ "$status" -ne 0 ] && [ -f "${PG_DIR[$name]}/server.log" ]; then
			echo "--- $name: server log errors (first 20)"
			grep -E 'ERROR|FATAL|PANIC' "${PG_DIR[$name]}/server.log" | head -n 20
		fi
	done
	pg_stop_all
	wg_dev_cleanup
	ip netns del "$NS_N" 2>/dev/null
	ip netns del "$NS_S" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------
# The timing client: libpq for the commits, the UAPI backend of src/device
# for reading the interface.
#	node_latency CONNINFO IFNAME single N [PAUSE_MS]
#		N transactions of one wg_create_peer each (PAUSE_MS between them);
#		per commit "commit_ms iface_ms active_ms" from just before COMMIT
#	node_latency CONNINFO IFNAME bulk N [NODE_CONNINFO]
#		one transaction of N; the same three figures for all N, and with
#		NODE_CONNINFO a fourth: when the node's database first holds all
#		N peers (replicated and committed there; -1 without)
# ---------------------------------------------------------------------------
cat >"$TMP/node_latency.c" <<'C'
#include "device/uapi.h"
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#define POLL_SINGLE_US 200
#define POLL_BULK_US 10000
#define GIVE_UP_MS 300000.0
#define GIVE_UP_ACTIVE_MS 10000.0	/* one peer not active by then: -1 */

static PGconn *conn;
static PGconn *node_conn;		/* bulk: the node, when given */

static PGresult *
run(const char *sql, ExecStatusType want)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != want)
		die(sql, PQerrorMessage(conn));
	return res;
}

/* Peers on the interface; with key, whether that one is there. */
static size_t
interface_peers(const char *ifname, const uint8_t *key, bool *found)
{
	wg_device	dev;
	int			fd = wguapi_connect(NULL, ifname);
	int			rc;
	size_t		n;

	if (fd < 0)
		die("connect to the UAPI socket", strerror(-fd));
	rc = wguapi_get(fd, ifname, &dev, 5000);
	close(fd);
	if (rc < 0)
		die("UAPI get", strerror(-rc));
	if (key)
	{
		*found = false;
		for (size_t i = 0; i < dev.n_peers && !*found; i++)
			*found = memcmp(dev.peers[i].public_key, key, WG_KEY_LEN) == 0;
	}
	n = dev.n_peers;
	wg_device_free(&dev);
	return n;
}

/*
 * Poll sql (one boolean) every us microseconds until true: when, in ms
 * since t0, or -1 when it is still false give_up_ms after t0.
 */
static double
poll_sql(const char *sql, useconds_t us, double t0, double give_up_ms)
{
	for (;;)
	{
		PGresult   *res = run(sql, PGRES_TUPLES_OK);
		bool		done = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;

		PQclear(res);
		if (done)
			return now_ms() - t0;
		if (now_ms() - t0 > give_up_ms)
			return -1;
		usleep(us);
	}
}

int
main(int argc, char **argv)
{
	const char *ifname;
	long		n;
	long		pause_ms = 0;
	char		sql[1024];

	if (argc < 5 || argc > 6 ||
		(strcmp(argv[3], "single") != 0 && strcmp(argv[3], "bulk") != 0))
		die("usage: node_latency CONNINFO IFNAME single N [PAUSE_MS] | bulk N [NODE_CONNINFO]", NULL);
	ifname = argv[2];
	n = strtol(argv[4], NULL, 10);
	if (n < 1)
		die("N must be positive", argv[4]);
	conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK)
		die("connect", PQerrorMessage(conn));
	if (argc > 5 && strcmp(argv[3], "single") == 0)
		pause_ms = strtol(argv[5], NULL, 10);
	else if (argc > 5)
	{
		node_conn = PQconnectdb(argv[5]);
		if (PQstatus(node_conn) != CONNECTION_OK)
			die("connect to the node", PQerrorMessage(node_conn));
	}

	if (strcmp(argv[3], "bulk") == 0)
	{
		size_t		base = interface_peers(ifname, NULL, NULL);
		double		t0,
					t_commit,
					t_iface,
					t_node = -1;
		char		node_sql[512];

		snprintf(node_sql, sizeof(node_sql),
				 "SELECT count(*) >= %ld FROM wgpeer.peer WHERE interface = '%s'",
				 n, ifname);
		PQclear(run("BEGIN", PGRES_COMMAND_OK));
		snprintf(sql, sizeof(sql),
				 "SELECT count(*) FROM (SELECT wgpeer.wg_create_peer('bulk' || g, "
				 "interface => '%s') FROM generate_series(1, %ld) g) s", ifname, n);
		PQclear(run(sql, PGRES_TUPLES_OK));
		t0 = now_ms();
		PQclear(run("COMMIT", PGRES_COMMAND_OK));
		t_commit = now_ms();
		for (;;)
		{
			if (node_conn && t_node < 0)
			{
				PGresult   *res = PQexec(node_conn, node_sql);

				if (PQresultStatus(res) != PGRES_TUPLES_OK)
					die(node_sql, PQerrorMessage(node_conn));
				if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
					t_node = now_ms() - t0;
				PQclear(res);
			}
			if (interface_peers(ifname, NULL, NULL) >= base + (size_t) n)
				break;
			if (now_ms() - t0 > GIVE_UP_MS)
				die("the peers never all reached the interface", NULL);
			usleep(POLL_BULK_US);
		}
		t_iface = now_ms();
		snprintf(sql, sizeof(sql),
				 "SELECT count(*) >= %ld FROM wgpeer.peer "
				 "WHERE interface = '%s' AND status = 'active'", n, ifname);
		printf("%.3f %.3f %.3f %.3f\n", t_commit - t0, t_iface - t0,
			   poll_sql(sql, POLL_BULK_US, t0, GIVE_UP_MS), t_node);
	}
	else
		for (long i = 0; i < n; i++)
		{
			uint8_t		key[WG_KEY_LEN];
			bool		found = false;
			char		peer_id[64];
			PGresult   *res;
			double		t0,
						t_commit,
						t_iface;

			PQclear(run("BEGIN", PGRES_COMMAND_OK));
			snprintf(sql, sizeof(sql),
					 "SELECT public_key, peer_id FROM wgpeer.wg_create_peer("
					 "'latency%ld', interface => '%s')", i, ifname);
			res = run(sql, PGRES_TUPLES_OK);
			if (wg_key_from_base64(key, PQgetvalue(res, 0, 0), NULL) != WG_KEY_OK)
				die("bad public key", PQgetvalue(res, 0, 0));
			snprintf(peer_id, sizeof(peer_id), "%s", PQgetvalue(res, 0, 1));
			PQclear(res);
			t0 = now_ms();
			PQclear(run("COMMIT", PGRES_COMMAND_OK));
			t_commit = now_ms();
			for (;;)
			{
				interface_peers(ifname, key, &found);
				if (found)
					break;
				if (now_ms() - t0 > GIVE_UP_MS)
					die("a peer never reached the interface", NULL);
				usleep(POLL_SINGLE_US);
			}
			t_iface = now_ms();
			snprintf(sql, sizeof(sql),
					 "SELECT status = 'active' FROM wgpeer.peer WHERE peer_id = '%s'",
					 peer_id);
			printf("%.3f %.3f %.3f\n", t_commit - t0, t_iface - t0,
				   poll_sql(sql, 500, t0, GIVE_UP_ACTIVE_MS));
			fflush(stdout);
			if (pause_ms > 0)
				usleep(pause_ms * 1000);
		}
	PQfinish(conn);
	if (node_conn)
		PQfinish(node_conn);
	return 0;
}
C
cc -O2 -Wall -Wextra -Wno-missing-field-initializers -Isrc -Itest \
	-I"$(pg_config --includedir)" $(pkg-config --cflags libsodium) \
	-o "$TMP/node_latency" "$TMP/node_latency.c" src/device/uapi.c \
	src/device/device.c src/core/keys.c -lpq $(pkg-config --libs libsodium)
latency() { "$TMP/node_latency" "$@"; }

# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------
# percentile P of the numbers on stdin (nearest rank)
pct() { sort -g | awk -v p="$1" '{ v[NR] = $1 } END {
	if (NR == 0) { print "nan"; exit }
	i = int(p / 100 * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'; }
# column C of FILE, without the -1s (never reached)
col() { awk -v c="$1" '$c >= 0 { print $c }' "$2"; }
# how many of column C of FILE are -1
never() { awk -v c="$1" '$c < 0 { n++ } END { print n + 0 }' "$2"; }

# ---------------------------------------------------------------------------
# Interfaces
# ---------------------------------------------------------------------------
# dev_up NETNS IFNAME ADDRESS: a wireguard-go interface, addressed and up
dev_up() {
	wg_dev_add "$2" "$1"
	ip -n "$1" addr add "$3" dev "$2"
	ip -n "$1" link set "$2" up
}
# test_eq EXPECTED COMMAND...: COMMAND prints EXPECTED
test_eq() { [ "$("${@:2}" 2>/dev/null)" = "$1" ]; }
# served IFNAME PORT: its worker has configured the interface (its listen
# port is set): it knows the interface and the batch can start
served() { wait_until 60 test_eq "$2" wg show "$1" listen-port; }
# add_if CLUSTER IFNAME ADDRESS PORT [NODE]: register the interface
add_if() {
	on "$1" q -c "SELECT name FROM wgpeer.wg_add_interface('$2', '192.0.2.1:$4', '$3',
		listen_port => $4, backend => 'uapi'${5:+, node => '$5'})" >/dev/null
}

echo "== three clusters on 127.0.0.1 (primary, node a, standalone), wireguard-go interfaces"
ip netns add "$NS_N"
ip netns add "$NS_S"
ip -n "$NS_N" link set lo up
ip -n "$NS_S" link set lo up
pg_start p
pg_start a "wgpeer.node = 'a'"
pg_start s
for n in p a s; do on "$n" q -c "CREATE EXTENSION wgpeer"; done
if ! on p sql_true "SELECT EXISTS (SELECT FROM pg_proc WHERE proname = 'wg_add_node')"; then
	echo "the installed wgpeer has no node mode (wgpeer.wg_add_node)" >&2
	exit 1
fi
on p q -c "SELECT wgpeer.wg_add_node('a')" >/dev/null
dev_up "$NS_N" "$IFN" 10.71.0.1/16
dev_up "$NS_N" "$IFP" 10.72.0.1/16
dev_up "$NS_N" "$IFL" 10.73.0.1/16
dev_up "$NS_S" "$IFS_" 10.74.0.1/16
dev_up "$NS_S" "$IFPS" 10.75.0.1/16
dev_up "$NS_S" "$IFLS" 10.76.0.1/16
add_if p "$IFN" 10.71.0.1/16 51801 a
add_if p "$IFP" 10.72.0.1/16 51802 a
add_if p "$IFL" 10.73.0.1/16 51803 a
add_if s "$IFS_" 10.74.0.1/16 51804
add_if s "$IFPS" 10.75.0.1/16 51805
add_if s "$IFLS" 10.76.0.1/16 51806
node_link p a
for x in "$IFN 51801" "$IFP 51802" "$IFL 51803" "$IFS_ 51804" "$IFPS 51805" "$IFLS 51806"; do
	# shellcheck disable=SC2086
	served $x
done

echo "== 1. commit -> interface, one peer per transaction: $SINGLE on the primary for node a, $SINGLE standalone"
latency "$(conninfo p)" "$IFN" single 5 >/dev/null
latency "$(conninfo s)" "$IFS_" single 5 >/dev/null
: >"$TMP/single_node"
: >"$TMP/single_alone"
left=$SINGLE
while [ "$left" -gt 0 ]; do
	k=$((left < ROUND ? left : ROUND))
	latency "$(conninfo s)" "$IFS_" single "$k" >>"$TMP/single_alone"
	latency "$(conninfo p)" "$IFN" single "$k" >>"$TMP/single_node"
	left=$((left - k))
done
single_row() {
	printf '   %-34s %8.2f %8.2f %8.2f ms\n' "$1" "$(col "$2" "$3" | median)" \
		"$(col "$2" "$3" | pct 90)" "$(col "$2" "$3" | pct 99)"
}
printf '   %-34s %8s %8s %8s\n' "" median p90 p99
single_row "standalone: COMMIT returns" 1 "$TMP/single_alone"
single_row "standalone: peer on the interface" 2 "$TMP/single_alone"
single_row "standalone: peer active" 3 "$TMP/single_alone"
single_row "node: COMMIT returns (primary)" 1 "$TMP/single_node"
single_row "node: peer on node a's interface" 2 "$TMP/single_node"
single_row "node: peer active on the primary" 3 "$TMP/single_node"
for f in single_alone single_node; do
	[ "$(never 3 "$TMP/$f")" -eq 0 ] ||
		echo "   $f: $(never 3 "$TMP/$f") of $(wc -l <"$TMP/$f") peers on the interface never became active (10 s)"
done
m_node=$(col 2 "$TMP/single_node" | median)
m_alone=$(col 2 "$TMP/single_alone" | median)
p99_node=$(col 2 "$TMP/single_node" | pct 99)
p99_alone=$(col 2 "$TMP/single_alone" | pct 99)
echo "   ratio node / standalone, commit -> interface: median $(ratio "$m_node" "$m_alone") (goal <= 2), p99 $(ratio "$p99_node" "$p99_alone")"
echo "   ratio node / standalone, commit -> active: median $(ratio "$(col 3 "$TMP/single_node" | median)" "$(col 3 "$TMP/single_alone" | median)")"

echo "== 2. $BULK peers in one transaction, node vs standalone ($RUNS runs, fresh interfaces)"
: >"$TMP/bulk_node"
: >"$TMP/bulk_alone"
for r in $(seq "$RUNS"); do
	ifk=wgbk$r$S
	ift=wgbt$r$S
	dev_up "$NS_N" "$ifk" "10.$((80 + r)).0.1/16"
	dev_up "$NS_S" "$ift" "10.$((90 + r)).0.1/16"
	add_if p "$ifk" "10.$((80 + r)).0.1/16" $((51810 + r)) a
	add_if s "$ift" "10.$((90 + r)).0.1/16" $((51820 + r))
	served "$ifk" $((51810 + r))
	served "$ift" $((51820 + r))
	latency "$(conninfo s)" "$ift" bulk "$BULK" >>"$TMP/bulk_alone"
	latency "$(conninfo p)" "$ifk" bulk "$BULK" "$(conninfo a)" >>"$TMP/bulk_node"
	echo "   run $r: standalone $(tail -n 1 "$TMP/bulk_alone" | awk '{ printf "COMMIT %.0f, interface %.0f, active %.0f ms", $1, $2, $3 }');" \
		"node $(tail -n 1 "$TMP/bulk_node" | awk '{ printf "COMMIT %.0f, in node a'"'"'s database %.0f, interface %.0f, active %.0f ms", $1, $4, $2, $3 }')"
	# out of the way of the next runs
	on p q -c "SELECT wgpeer.wg_remove_interface('$ifk', force => true)" >/dev/null
	on s q -c "SELECT wgpeer.wg_remove_interface('$ift', force => true)" >/dev/null
	wait_until 60 on a sql_true "SELECT count(*) = 0 FROM wgpeer.interface WHERE name = '$ifk'"
	wg_dev_del "$ifk"
	wg_dev_del "$ift"
done
b_node=$(col 2 "$TMP/bulk_node" | median)
b_alone=$(col 2 "$TMP/bulk_alone" | median)
printf '   medians: standalone %.0f ms (active %.0f ms), node %.0f ms (in node a'"'"'s database %.0f ms, active on the primary %.0f ms)\n' \
	"$b_alone" "$(col 3 "$TMP/bulk_alone" | median)" "$b_node" "$(col 4 "$TMP/bulk_node" | median)" \
	"$(col 3 "$TMP/bulk_node" | median)"
echo "   ratio node / standalone, COMMIT -> all $BULK on the interface: $(ratio "$b_node" "$b_alone") (goal <= 1.5)"

# load WHO: RATE wg_create_peer/s for LOAD_SECONDS on the primary for node
# a's interface $IFL (WHO = node) or on the standalone for its $IFLS (WHO
# = alone), sampled, probed, and drained; figures on stdout, the probe's
# in $TMP/probe_WHO
load() {
	local who=$1 db=p ifl=$IFL ifp=$IFP created t_load t_end t_drain t_active
	[ "$who" = node ] || { db=s; ifl=$IFLS; ifp=$IFPS; }
	cat >"$TMP/load.pgbench" <<SQL
\set u random(1, 1000000000)
SELECT 1 FROM wgpeer.wg_create_peer('load' || :u, interface => '$ifl');
SQL
	sample() {
		while :; do
			if [ "$who" = node ]; then
				on p q -F ' ' -c "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
					coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), -1),
					coalesce(extract(epoch FROM replay_lag) * 1000, 0)
					FROM pg_stat_replication WHERE application_name = 'wgpeer_node_a'" 2>/dev/null |
					tr '\n' ' '
				on a q -c "SELECT count(*) FROM wgpeer.queue" 2>/dev/null || echo
			else
				echo "$(date +%s%3N) -1 0 $(on s q -c "SELECT count(*) FROM wgpeer.queue" 2>/dev/null)"
			fi
			sleep 0.5
		done
	}
	sample >"$TMP/samples" &
	SAMPLER=$!
	t_load=$(date +%s%N)
	pgbench -n -h 127.0.0.1 -p "${PG_PORT[$db]}" -U postgres -c 8 -j 2 --rate="$RATE" \
		-T "$LOAD_SECONDS" -f "$TMP/load.pgbench" postgres >"$TMP/pgbench.out" 2>&1 &
	LOADER=$!
	latency "$(conninfo "$db")" "$ifp" single $((LOAD_SECONDS * 2 - 2)) 500 >"$TMP/probe_$who"
	wait "$LOADER" || { cat "$TMP/pgbench.out" >&2; exit 1; }
	LOADER=
	t_end=$(date +%s%N)
	created=$(on "$db" q -c "SELECT count(*) FROM wgpeer.peer WHERE interface = '$ifl'")
	if [ "$who" = node ]; then
		wait_until 300 test_eq "$created" on a q -c "SELECT count(*) FROM wgpeer.peer_outcome
			WHERE interface = '$ifl' AND outcome = 'applied'"
	fi
	t_drain=$(date +%s%N)
	wait_until 300 test_eq "$created" on "$db" q -c "SELECT count(*) FROM wgpeer.peer
		WHERE interface = '$ifl' AND status = 'active'"
	t_active=$(date +%s%N)
	kill "$SAMPLER" 2>/dev/null || true
	wait "$SAMPLER" 2>/dev/null || true
	SAMPLER=
	grep -E '^(number of transactions actually processed|latency average|rate limit schedule lag|tps)' \
		"$TMP/pgbench.out" | sed 's/^/   pgbench: /'
	echo "   created $created peers in $(((t_end - t_load) / 1000000)) ms; $(wg show "$ifl" peers | wc -l) on $ifl at the end"
	if [ "$who" = node ]; then
		awk 'NF >= 3 && $2 >= 0 { print $2 }' "$TMP/samples" >"$TMP/lag_bytes"
		awk 'NF >= 3 && $2 >= 0 { print $3 }' "$TMP/samples" >"$TMP/lag_ms"
		printf '   replication, primary -> node a (%d samples): bytes behind median %s, p99 %s, max %s;' \
			"$(wc -l <"$TMP/lag_bytes")" "$(median <"$TMP/lag_bytes")" "$(pct 99 <"$TMP/lag_bytes")" \
			"$(pct 100 <"$TMP/lag_bytes")"
		printf ' replay_lag median %.1f ms, p99 %.1f ms, max %.1f ms\n' \
			"$(median <"$TMP/lag_ms")" "$(pct 99 <"$TMP/lag_ms")" "$(pct 100 <"$TMP/lag_ms")"
	fi
	awk 'NF >= 4 { print $4 }' "$TMP/samples" >"$TMP/backlog"
	printf '   queue backlog (%s): median %s, max %s\n' "$([ "$who" = node ] && echo "node a" || echo standalone)" \
		"$(median <"$TMP/backlog")" "$(pct 100 <"$TMP/backlog")"
	printf '   probe (%d commits, another interface): commit -> interface median %.2f ms, p99 %.2f ms; -> active median %.2f ms, p99 %.2f ms\n' \
		"$(wc -l <"$TMP/probe_$who")" "$(col 2 "$TMP/probe_$who" | median)" "$(col 2 "$TMP/probe_$who" | pct 99)" \
		"$(col 3 "$TMP/probe_$who" | median)" "$(col 3 "$TMP/probe_$who" | pct 99)"
	[ "$(never 3 "$TMP/probe_$who")" -eq 0 ] ||
		echo "   probe: $(never 3 "$TMP/probe_$who") peers on the interface never became active (10 s)"
	if [ "$who" = node ]; then
		on a q -F ' ' -c "SELECT 'every load peer: created_at (primary) -> outcome on node a: median '
				|| round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 2) || ' ms, p99 '
				|| round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))::numeric, 2) || ' ms, max '
				|| round(max(ms)::numeric, 2) || ' ms'
			FROM (SELECT extract(epoch FROM o.at - p.created_at) * 1000 AS ms
				  FROM wgpeer.peer p JOIN wgpeer.peer_outcome o USING (peer_id)
				  WHERE p.interface = '$ifl' AND o.outcome = 'applied') s" | sed 's/^/   /'
		echo "   after pgbench ended: all applied on node a in $(((t_drain - t_end) / 1000000)) ms, all active on the primary in $(((t_active - t_end) / 1000000)) ms"
		echo "   wgpeer.node_status on the primary:"
		on p cluster_psql -c "SELECT * FROM wgpeer.node_status" | sed 's/^/      /'
	else
		echo "   after pgbench ended: all active in $(((t_active - t_end) / 1000000)) ms"
	fi
}
echo "== 3. sustained load: $RATE wg_create_peer/s for ${LOAD_SECONDS}s, a probe commit every 0.5 s"
echo "   -- standalone"
load alone
echo "   -- node: on the primary for node a"
load node
l_node=$(col 2 "$TMP/probe_node" | median)
l_alone=$(col 2 "$TMP/probe_alone" | median)
echo "   ratio node / standalone under load, probe commit -> interface: median $(ratio "$l_node" "$l_alone"), p99 $(ratio "$(col 2 "$TMP/probe_node" | pct 99)" "$(col 2 "$TMP/probe_alone" | pct 99)")"

echo "== summary"
printf '   commit -> interface median: node %.2f ms, standalone %.2f ms, ratio %s (goal <= 2)\n' \
	"$m_node" "$m_alone" "$(ratio "$m_node" "$m_alone")"
printf '   %d peers COMMIT -> interface: node %.0f ms, standalone %.0f ms, ratio %s (goal <= 1.5)\n' \
	"$BULK" "$b_node" "$b_alone" "$(ratio "$b_node" "$b_alone")"
printf '   under %d creations/s, probe commit -> interface median: node %.2f ms, standalone %.2f ms, ratio %s\n' \
	"$RATE" "$l_node" "$l_alone" "$(ratio "$l_node" "$l_alone")"
