# Throwaway PostgreSQL clusters for the shell tests, benchmarks and demo.
# Source it, then:
#   cluster_start DIR [conf lines...]   initdb + start as $WGPEER_USER, wgpeer preloaded
#                                       (holding CAP_NET_ADMIN, as the systemd
#                                       drop-in gives it, when CLUSTER_NET_ADMIN=1)
#   cluster_psql [psql args...]         psql -X against it (as $WGPEER_USER)
#   cluster_stop                        stop it and remove DIR
# The server listens only on a Unix socket inside DIR.  Needs root (to
# create and switch to the unprivileged user initdb insists on).

PG_BIN=${PG_BIN:-$(pg_config --bindir)}
WGPEER_USER=${WGPEER_USER:-wgpeer_test}
CLUSTER_DIR=

cluster_start() {
	CLUSTER_DIR=$1
	shift
	id "$WGPEER_USER" >/dev/null 2>&1 ||
		useradd --system --create-home "$WGPEER_USER"
	rm -rf "$CLUSTER_DIR"
	mkdir -p "$CLUSTER_DIR"
	chmod a+x "$(dirname "$CLUSTER_DIR")"
	chown "$WGPEER_USER" "$CLUSTER_DIR"
	runuser -u "$WGPEER_USER" -- "$PG_BIN/initdb" -D "$CLUSTER_DIR/data" \
		-A trust -U postgres >/dev/null
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$CLUSTER_DIR'"
		echo "shared_preload_libraries = 'wgpeer'"
		echo "fsync = off"
		for line in "$@"; do echo "$line"; done
	} >>"$CLUSTER_DIR/data/postgresql.conf"
	setpriv --reuid="$WGPEER_USER" --regid="$(id -g "$WGPEER_USER")" --init-groups \
		${CLUSTER_NET_ADMIN:+--inh-caps=+net_admin --ambient-caps=+net_admin} -- \
		"$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" \
		-w -t 600 start >/dev/null
}

cluster_psql() {
	runuser -u "$WGPEER_USER" -- "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
		-h "$CLUSTER_DIR" -U postgres -d postgres "$@"
}

cluster_stop() {
	[ -n "$CLUSTER_DIR" ] || return 0
	runuser -u "$WGPEER_USER" -- "$PG_BIN/pg_ctl" -D "$CLUSTER_DIR/data" \
		-m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$CLUSTER_DIR"
	CLUSTER_DIR=
}
