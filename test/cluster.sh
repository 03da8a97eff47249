# Throwaway PostgreSQL clusters for the shell tests, benchmarks and demo.
# Source it, then:
#   cluster_start DIR [conf lines...]   cluster_init, then cluster_run
#   cluster_init DIR [conf lines...]    a new cluster in DIR/data (DIR is
#                                       emptied first), wgpeer preloaded,
#                                       fsync off unless a line says otherwise
#   cluster_run [pg_ctl start args...]  start the cluster in $CLUSTER_DIR as
#                                       $WGPEER_USER, holding CAP_NET_ADMIN
#                                       (as the systemd drop-in gives it) when
#                                       CLUSTER_NET_ADMIN=1, in network
#                                       namespace $CLUSTER_NETNS when set,
#                                       with the VAR=value words of
#                                       $CLUSTER_SERVER_ENV added to the
#                                       server's environment (test/sanitize.sh:
#                                       the sanitizer runtime); the server
#                                       log is DIR/server.log
#   cluster_ctl ARGS...                 pg_ctl ARGS on it, as $WGPEER_USER
#   cluster_psql [psql args...]         psql -X -q against it (as $WGPEER_USER)
#                                       in database $CLUSTER_DB (postgres),
#                                       stopping at the first error
#   q [psql args...]                    cluster_psql for scripts: unaligned,
#                                       tuples only, columns tab-separated
#                                       (q -c SQL, or SQL on stdin)
#   sql_true SQL                        true when SQL returns the one value t
#                                       (its errors, if any, on stderr)
#   cluster_stop                        stop it and remove DIR
# The server listens only on a Unix socket inside DIR.  Needs root (to
# create and switch to the unprivileged user initdb insists on).

PG_BIN=${PG_BIN:-$(pg_config --bindir)}
WGPEER_USER=${WGPEER_USER:-wgpeer_test}
CLUSTER_DB=${CLUSTER_DB:-postgres}
CLUSTER_DIR=

cluster_init() {
	CLUSTER_DIR=$1
	shift
	id "$WGPEER_USER" >/dev/null 2>&1 ||
		useradd --system --create-home "$WGPEER_USER"
	rm -rf "$CLUSTER_DIR"
	mkdir -p "$CLUSTER_DIR"
	chmod a+x "$(dirname "$CLUSTER_DIR")"
	chown "$WGPEER_USER" "$CLUSTER_DIR"
	runuser -u "$WGPEER_USER" -- "$PG_BIN/initdb" -N -D "$CLUSTER_DIR/data" \
		-A trust -U postgres >/dev/null
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$CLUSTER_DIR'"
		echo "shared_preload_libraries = 'wgpeer'"
		echo "fsync = off"
		for line in "$@"; do echo "$line"; done
	} >>"$CLUSTER_DIR/data/postgresql.conf"
}

cluster_run() {
	${CLUSTER_NETNS:+ip netns exec "$CLUSTER_NETNS"} setpriv --reuid="$WGPEER_USER" --regid="$(id -g "$WGPEER_USER")" --init-groups \
		${CLUSTER_NET_ADMIN:+--inh-caps=+net_admin --ambient-caps=+net_admin} -- \
		env ${CLUSTER_SERVER_ENV:-} \
		"$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" \
		-w -t 600 start "$@" >/dev/null
}

cluster_start() {
	cluster_init "$@"
	cluster_run
}

cluster_ctl() {
	runuser -u "$WGPEER_USER" -- "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" "$@"
}

cluster_psql() {
	runuser -u "$WGPEER_USER" -- "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
		-h "$CLUSTER_DIR" -U postgres -d "$CLUSTER_DB" "$@"
}

# q [psql args...]: cluster_psql unaligned, tuples only, tab-separated
q() { cluster_psql -At -F $'\t' "$@"; }

# sql_true SQL: true when the query's result is the single value "t"
sql_true() { [ "$(q -c "$1")" = t ]; }

cluster_stop() {
	[ -n "$CLUSTER_DIR" ] || return 0
	cluster_ctl -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$CLUSTER_DIR"
	CLUSTER_DIR=
}
