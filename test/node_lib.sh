# Node mode's clusters for the shell tests and benchmarks (test/node_test.sh,
# test/node_mixed_test.sh, bench/node.sh): several clusters at once, each
# with a name, a directory and a TCP port on 127.0.0.1, linked as the
# README's node mode section says, their interfaces wireguard-go daemons
# (test/wireguard.sh, its logs in $TMP), the checks test/tap.sh's.  Source
# it after test/cluster.sh, with $TMP set (the clusters' parent directory,
# mode 755); test/chroot.sh too for a cluster in a chroot.
#   on NAME FUNCTION...      a test/cluster.sh function (q, sql_true,
#                            cluster_psql, wanted_peers...) against NAME
#   pg_start NAME [conf...]  a new cluster NAME on a free port, ready for
#                            logical replication both ways, started (pg_init:
#                            the same, not started; PG_DIR[NAME] set first
#                            puts it there); with
#                            PG_ROOT[NAME] set to a chroot (test/chroot.sh's
#                            wgpeer_root) beforehand, it runs there, with
#                            the PostgreSQL of that root's major
#                            (PG_ROOT_MAJOR[NAME]); `on` reaches it from
#                            here through its socket all the same
#   pg_run NAME, pg_stop NAME  start it again, stop it (fast)
#   pg_ctl_on NAME ARGS...   pg_ctl ARGS on it, as the clusters' user
#   report_unexpected_errors STATUS
#                            for a cleanup: the ERRORs of each log when the
#                            suite stopped half way
#   pg_stop_all              drop every running cluster's subscriptions (and
#                            so their slots), stop every cluster
#   conninfo NAME [ROLE]     a libpq connection string to it
#   node_link PRIMARY NODE   the roles and grants the README lists (on the
#                            primary one per node, without peer.private_key;
#                            on the node one for the primary), then the
#                            node's subscription to the primary
#                            (wg_node_subscribe_sql) and the primary's to
#                            the node (wg_node_collect_sql), through \gexec;
#                            NODE must be registered (wg_add_node) already
# and the conditions the node tests poll: on_dev, off_dev, dev_count,
# test_eq, dev_converged, status_is, caught_up, streaming, and
# unexpected_errors NAME (the ERRORs of its log that no test causes).

WGPEER_BACKEND=uapi
WG_DEV_LOGS=$TMP
. test/wireguard.sh
. test/tap.sh

declare -A PG_DIR=() PG_PORT=() PG_UP=() PG_ROOT=() PG_ROOT_MAJOR=()
CLUSTERS=()

on() {
	local CLUSTER_DIR=${PG_DIR[$1]}
	local -x PGPORT=${PG_PORT[$1]}
	shift
	"$@"
}

# free_port: a TCP port on 127.0.0.1 nobody listens on
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 30000))
		if [ -z "$(ss -Hltn "sport = :$p")" ]; then
			echo "$p"
			return
		fi
	done
	echo "free_port: no free port found" >&2
	return 1
}

# in_cluster_root NAME PROGRAM ARGS: PostgreSQL's PROGRAM with ARGS (a
# shell line) in NAME's chroot as the clusters' user, of the chroot's major
in_cluster_root() {
	in_root "${PG_ROOT[$1]}" "runuser -u $WGPEER_USER -- \
		/usr/lib/postgresql/${PG_ROOT_MAJOR[$1]}/bin/$2 $3"
}

# the cluster's directory as its server sees it (inside its chroot)
pg_inner_dir() { echo "${PG_DIR[$1]#"${PG_ROOT[$1]:-}"}"; }

# pg_init NAME [conf lines...]: a new cluster listening on 127.0.0.1 (the
# default pg_hba.conf of initdb -A trust lets local and replication
# connections from there in), ready for logical replication both ways, in
# PG_DIR[NAME] when set (for a chroot's cluster: below the root), else
# in $TMP/NAME (in the chroot: /srv/wgpeer-NAME); not started
pg_init() {
	local name=$1 conf
	shift
	PG_PORT[$name]=$(free_port)
	CLUSTERS+=("$name")
	conf=("listen_addresses = '127.0.0.1'" "port = ${PG_PORT[$name]}"
		"wal_level = logical" "max_replication_slots = 10"
		"max_wal_senders = 10" "max_worker_processes = 16"
		"max_logical_replication_workers = 8"
		"log_line_prefix = '%m [%p] %b '"
		"wgpeer.database = 'postgres'" "$@")
	if [ -z "${PG_ROOT[$name]:-}" ]; then
		PG_DIR[$name]=${PG_DIR[$name]:-$TMP/$name}
		on "$name" cluster_init "${PG_DIR[$name]}" "${conf[@]}"
	else
		# as cluster_init does, in the chroot (its socket directory is
		# reached from here through the root)
		PG_DIR[$name]=${PG_DIR[$name]:-${PG_ROOT[$name]}/srv/wgpeer-$name}
		local d
		d=$(pg_inner_dir "$name")
		in_root "${PG_ROOT[$name]}" "rm -rf $d && mkdir -p $d && chown $WGPEER_USER $d"
		in_cluster_root "$name" initdb "-N -D $d/data -A trust -U postgres >/dev/null"
		printf '%s\n' "unix_socket_directories = '$d'" \
			"shared_preload_libraries = 'wgpeer'" "fsync = off" "${conf[@]}" \
			>>"${PG_DIR[$name]}/data/postgresql.conf"
	fi
}
# pg_start NAME [conf lines...]: pg_init, then started
pg_start() {
	pg_init "$@"
	pg_run "$1"
}
pg_run() {
	if [ -z "${PG_ROOT[$1]:-}" ]; then
		on "$1" cluster_run
	else
		local d
		d=$(pg_inner_dir "$1")
		in_cluster_root "$1" pg_ctl "-D $d/data -l $d/server.log -w -t 600 start >/dev/null"
	fi
	PG_UP[$1]=1
}
pg_ctl_on() {
	local name=$1
	shift
	if [ -z "${PG_ROOT[$name]:-}" ]; then
		on "$name" cluster_ctl "$@"
	else
		in_cluster_root "$name" pg_ctl "-D $(pg_inner_dir "$name")/data $*"
	fi
}
pg_stop() {
	PG_UP[$1]=0
	pg_ctl_on "$1" -m fast -w stop >/dev/null
}

# conninfo CLUSTER [ROLE]
conninfo() { echo "host=127.0.0.1 port=${PG_PORT[$1]} dbname=postgres user=${2:-postgres}"; }

# Drop the subscriptions of the cluster `on` points at; when the publisher
# is unreachable, forget its slot (the publisher goes too).
drop_subscriptions() {
	local sub
	for sub in $(q -c "SELECT subname FROM pg_subscription" 2>/dev/null); do
		q -c "DROP SUBSCRIPTION $sub" >/dev/null 2>&1 && continue
		q -c "ALTER SUBSCRIPTION $sub DISABLE" >/dev/null 2>&1 || true
		q -c "ALTER SUBSCRIPTION $sub SET (slot_name = NONE)" >/dev/null 2>&1 || true
		q -c "DROP SUBSCRIPTION $sub" >/dev/null 2>&1 || true
	done
}

pg_stop_all() {
	local name
	for name in "${CLUSTERS[@]}"; do
		[ "${PG_UP[$name]:-0}" = 1 ] && on "$name" drop_subscriptions
	done
	for name in "${CLUSTERS[@]}"; do
		[ "${PG_UP[$name]:-0}" = 1 ] || continue
		pg_ctl_on "$name" -m fast -w stop >/dev/null 2>&1
		PG_UP[$name]=0
	done
	return 0
}

# report_unexpected_errors STATUS: when a suite stopped half way (STATUS,
# its exit status, not 0, and $SUMMARY, set once every check has run,
# empty), what each cluster's server said that no check shows
report_unexpected_errors() {
	local name
	[ "$1" -ne 0 ] && [ -z "${SUMMARY:-}" ] || return 0
	for name in "${CLUSTERS[@]}"; do
		[ -f "${PG_DIR[$name]}/server.log" ] || continue
		echo "--- $name: unexpected errors in its log (first 30 lines)"
		unexpected_errors "$name" | head -n 30
	done
}

# node_link PRIMARY NODE: the roles each side connects as, with the grants
# the README lists (on the primary one per node, which may read interfaces
# and every column of peer but private_key; on the node one for the
# primary, which may read the tables the node publishes back), then both
# subscriptions as documented
node_link() {
	local p=$1 n=$2
	on "$p" cluster_psql <<SQL
CREATE ROLE wgpeer_node_$n LOGIN REPLICATION;
GRANT USAGE ON SCHEMA wgpeer TO wgpeer_node_$n;
GRANT SELECT ON wgpeer.interface TO wgpeer_node_$n;
SELECT format('GRANT SELECT (%s) ON wgpeer.peer TO wgpeer_node_$n',
	string_agg(quote_ident(attname), ', ' ORDER BY attnum))
FROM pg_attribute WHERE attrelid = 'wgpeer.peer'::regclass AND attnum > 0
	AND NOT attisdropped AND attname <> 'private_key' \gexec
SQL
	on "$n" cluster_psql <<SQL
CREATE ROLE wgpeer_primary LOGIN REPLICATION;
GRANT USAGE ON SCHEMA wgpeer TO wgpeer_primary;
GRANT SELECT ON wgpeer.device, wgpeer.device_peer, wgpeer.worker_state,
	wgpeer.peer_traffic, wgpeer.peer_outcome TO wgpeer_primary;
SQL
	on "$n" cluster_psql <<SQL
SET client_min_messages = warning;
SELECT wgpeer.wg_node_subscribe_sql('$(conninfo "$p" "wgpeer_node_$n")') \gexec
SQL
	on "$p" cluster_psql <<SQL
SET client_min_messages = warning;
SELECT wgpeer.wg_node_collect_sql('$n', '$(conninfo "$n" wgpeer_primary)') \gexec
SQL
}

# ---------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------
# on_dev IF KEY: the interface has the peer (over its UAPI socket)
on_dev() { wg show "$1" peers | grep -qxF "$2"; }
off_dev() { ! on_dev "$@"; }
dev_count() { wg show "$1" peers | wc -l; }
# test_eq EXPECTED COMMAND...: COMMAND prints EXPECTED
test_eq() { [ "$("${@:2}" 2>/dev/null)" = "$1" ]; }
# dev_converged IF [PRIMARY]: the interface holds exactly the live peers
# the primary (default p) wants for it
dev_converged() { [ "$(kernel_peers "$1")" = "$(on "${2:-p}" wanted_peers "$1")" ]; }
# status_is CLUSTER PEER STATUS
status_is() { on "$1" sql_true "SELECT status = '$3' FROM wgpeer.peer WHERE peer_id = '$2'"; }
# caught_up PUBLISHER: the cluster's subscribers have each applied what it
# has written so far (its LSN taken first)
caught_up() {
	local pub=$1 lsn
	lsn=$(on "$pub" q -c "SELECT pg_current_wal_lsn()")
	on "$pub" sql_true "SELECT count(*) > 0 AND bool_and(replay_lsn >= '$lsn')
		FROM pg_stat_replication WHERE application_name LIKE 'wgpeer_%'"
}
# every subscription of the cluster has an apply worker running
streaming() {
	on "$1" sql_true "SELECT count(*) > 0 AND bool_and(st.pid IS NOT NULL)
		FROM pg_subscription s
		LEFT JOIN pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL"
}
# ERRORs in the cluster's log other than those the node tests cause on
# purpose: a publisher stopped or restarted (its subscribers' workers lose
# it and retry; a new worker may start before the old one let go of its
# replication origin), peer changes called on a node (25006), a node's
# role reading peer.private_key; each with the lines of the same process
# after it (DETAIL, HINT, CONTEXT)
unexpected_errors() {
	cut -c 1-300 "${PG_DIR[$1]}/server.log" | awk '
		/(ERROR|PANIC):/ {
			show = $0 !~ /could not send end-of-streaming message|could not connect to the publisher|could not receive data from WAL stream|replication origin with ID [0-9]+ is already active|cannot run on node|permission denied for table peer/
			pid = $4
			if (show) print
			next
		}
		/^\t/ { if (show) print; next }
		{ if (show && $4 == pid && $0 ~ /(DETAIL|HINT|CONTEXT|STATEMENT):/) print; else show = 0 }'
}
