#!/bin/bash
# Nobody can run code in the processes wgpeer runs without a client, and
# only the apply worker holds CAP_NET_ADMIN (issue 18, part 1 and two
# items of part 5), natively on wireguard-go, no VM.  Run as root after
# `make install`:  bash test/search_path_test.sh
#
#	1. Two attackers plant, in schema public, exact-type overloads of the
#	   functions and operators the worker's statements and wgpeer's C
#	   triggers call unqualified (json_build_object, jsonb_build_object,
#	   make_interval, least, cardinality, array_remove, unnest, ^, *, ||):
#	   a database owner who is not a superuser, and a fresh login role in
#	   a database where PUBLIC may CREATE in public (as every cluster
#	   upgraded from PostgreSQL 14 or older has it); the owner also puts
#	   public before pg_catalog for the database (ALTER DATABASE ... SET
#	   search_path) and plants now().  Each planted body
#	   logs and records that it ran and, run by a superuser, makes its
#	   planter a superuser.  The server restarts (the worker plans its
#	   statements afresh).
#	2. CAP_NET_ADMIN: the worker holds it; the postmaster keeps it only in
#	   its permitted set (for the worker); the checkpointer, walwriter,
#	   background writer, autovacuum and logical replication launchers, a
#	   parallel worker, a logical replication worker and a client backend
#	   do not have it effective, nor inheritable or ambient.
#	3. The worker is driven through everything it does: apply (a real
#	   client pings through the tunnel), a change refused by a device that
#	   is gone, expiry (and a superuser session's own UPDATE of a peer,
#	   whose triggers run in that session), traffic samples and watch
#	   passes, and the events of all that.
#	4. A peer_traffic row whose rx + tx overflows bigint does not stop the
#	   watch: another peer's quota still suspends it, and no watch pass
#	   fails.
#	5. No role became a superuser and no planted function ever ran; every
#	   SECURITY DEFINER function pins its search_path.
# Polls with bounds, never fixed sleeps.  Prints "N passed, N failed" and
# exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

E2E_NAME=sp
DEV=wgsp0						# wgpeer's interface, run by wireguard-go
CDEV=wgspc0						# the client's interface
GONE=wgspgone0					# registered, never started: every change fails
E2E_NET=192.168.237
DB=wgsp
CLUSTER_DB=$DB
CLUSTER_NET_ADMIN=1
. test/e2e.sh

ping_server() { cli ping -c 1 -W 1 10.93.0.1 >/dev/null 2>&1; }
# CAP_NET_ADMIN (bit 12) in a capability mask in hex
has_net_admin() { (((16#$1 >> 12) & 1)); }
cap_of() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
# pids of this cluster's processes of a backend_type
pids_of() {
	q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = '$1' ORDER BY pid"
}
status_of() {
	q -c "SELECT status || '/' || coalesce(suspended_reason, '') FROM wgpeer.peer
		WHERE peer_id = '$1'"
}
status_is() { [ "$(status_of "$1")" = "$2" ]; }

e2e_start
ip -n "$NS_S" addr add 10.93.0.1/24 dev "$DEV"
ip -n "$NS_S" link set "$DEV" up

cluster_init "$TMP/pg" "wgpeer.database = '$DB'" "wgpeer.stats_interval = 1s" \
	"wgpeer.retry_max = 2s" "wgpeer.quota_warning = 0" "wal_level = logical" \
	"max_parallel_workers_per_gather = 2" "autovacuum_naptime = 1s"
cluster_run

echo "== [${SECONDS}s] 1. two attackers plant overloads in public"
CLUSTER_DB=postgres q >/dev/null <<SQL
CREATE ROLE sp_owner LOGIN;
CREATE ROLE sp_fresh LOGIN;
CREATE DATABASE $DB OWNER sp_owner;
CREATE DATABASE sp_sub;
SQL
q >/dev/null <<SQL
CREATE EXTENSION wgpeer;
-- as a cluster upgraded from PostgreSQL 14 or older has it
GRANT CREATE ON SCHEMA public TO PUBLIC;
SELECT name FROM wgpeer.wg_add_interface('$DEV', '$E2E_NET.1:51820',
	'10.93.0.1/24', allowed_ips => '10.93.0.0/24', backend => 'uapi');
SELECT name FROM wgpeer.wg_add_interface('$GONE', '192.0.2.1:51821',
	'10.94.0.1/24', listen_port => 51821, backend => 'uapi');
SQL

# What each planted body does: log and record that it ran and, when its
# caller is a superuser, make the planter one.
q >/dev/null <<'SQL'
SET ROLE sp_owner;
CREATE TABLE public.planted_ran (what text, by_role text, at timestamptz DEFAULT now());
GRANT INSERT ON public.planted_ran TO PUBLIC;
CREATE FUNCTION public.planted_ran(what text, planter text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	RAISE WARNING 'wgpeer-planted % ran as %', what, current_user;
	INSERT INTO public.planted_ran (what, by_role) VALUES (what, current_user);
	IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
		EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', planter);
	END IF;
END $$;
SQL

# the database owner's: what the apply pass's NOTIFY, a device failure
# and a refused change call
q >/dev/null <<'SQL'
SET ROLE sp_owner;
CREATE FUNCTION public.json_build_object(text, uuid, text, text, text, text, text, text)
RETURNS json LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.planted_ran('json_build_object(text, uuid, text x 6)', 'sp_owner');
	RETURN pg_catalog.json_build_object($1, $2, $3, $4, $5, $6, $7, $8);
END $$;
CREATE FUNCTION public.jsonb_build_object(text, text, text, integer)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.planted_ran('jsonb_build_object(text, text, text, integer)', 'sp_owner');
	RETURN pg_catalog.jsonb_build_object($1, $2, $3, $4);
END $$;
CREATE FUNCTION public.jsonb_build_object(text, text)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.planted_ran('jsonb_build_object(text, text)', 'sp_owner');
	RETURN pg_catalog.jsonb_build_object($1, $2);
END $$;
CREATE FUNCTION public.make_interval(secs double precision)
RETURNS interval LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.planted_ran('make_interval(double precision)', 'sp_owner');
	RETURN pg_catalog.make_interval(secs => secs);
END $$;
CREATE FUNCTION public.least(integer, integer)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.planted_ran('least(integer, integer)', 'sp_owner');
	RETURN CASE WHEN $1 < $2 THEN $1 ELSE $2 END;
END $$;
CREATE FUNCTION public.cardinality(bigint[])
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.planted_ran('cardinality(bigint[])', 'sp_owner');
	RETURN pg_catalog.cardinality($1);
END $$;
CREATE FUNCTION public.planted_pow(integer, integer)
RETURNS double precision LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.planted_ran('^(integer, integer)', 'sp_owner');
	RETURN pg_catalog.power($1::float8, $2::float8);
END $$;
CREATE OPERATOR public.^ (LEFTARG = integer, RIGHTARG = integer,
	FUNCTION = public.planted_pow);
-- and, as the owner may, public before pg_catalog for every session of the
-- database: now a function of pg_catalog's very signature wins
CREATE FUNCTION public.now()
RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.planted_ran('now()', 'sp_owner');
	RETURN pg_catalog.now();
END $$;
ALTER DATABASE wgsp SET search_path = public, pg_catalog;
SQL

# the fresh role's: what the event trigger, the expiry timer, the retry
# timer, the apply pass and the traffic sample call
q >/dev/null <<'SQL'
SET ROLE sp_fresh;
CREATE FUNCTION public.jsonb_build_object(text, text, text, timestamptz, text,
	timestamptz, text, numeric, text, text, text, boolean, text, text, text, text)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.planted_ran('jsonb_build_object(16 arguments)', 'sp_fresh');
	RETURN pg_catalog.jsonb_build_object($1, $2, $3, $4, $5, $6, $7, $8, $9,
		$10, $11, $12, $13, $14, $15, $16);
END $$;
CREATE FUNCTION public.planted_times(numeric, integer)
RETURNS numeric LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.planted_ran('*(numeric, integer)', 'sp_fresh');
	RETURN $1 OPERATOR(pg_catalog.*) $2::numeric;
END $$;
CREATE OPERATOR public.* (LEFTARG = numeric, RIGHTARG = integer,
	FUNCTION = public.planted_times);
CREATE FUNCTION public.planted_cat(cidr[], cidr[])
RETURNS cidr[] LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.planted_ran('||(cidr[], cidr[])', 'sp_fresh');
	RETURN pg_catalog.array_cat($1, $2);
END $$;
CREATE OPERATOR public.|| (LEFTARG = cidr[], RIGHTARG = cidr[],
	FUNCTION = public.planted_cat);
CREATE FUNCTION public.array_remove(cidr[], cidr)
RETURNS cidr[] LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.planted_ran('array_remove(cidr[], cidr)', 'sp_fresh');
	RETURN pg_catalog.array_remove($1, $2);
END $$;
CREATE FUNCTION public.unnest(bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
	PERFORM public.planted_ran('unnest(bigint[])', 'sp_fresh');
	RETURN QUERY SELECT pg_catalog.unnest($1);
END $$;
SQL
PLANTED=$(q -c "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname = 'public' AND p.proowner IN ('sp_owner'::regrole, 'sp_fresh'::regrole)")
echo "   ($PLANTED functions planted)"

# the server restarts (with the capability, as cluster_run gives it): the
# worker plans its statements in this world
cluster_ctl -m fast -w stop >/dev/null
cluster_run
worker_running() {
	sql_true "SELECT count(*) = 1 FROM pg_stat_activity
		WHERE backend_type = 'wgpeer apply worker'" 2>/dev/null
}
check "the worker is back after the restart" wait_until 60 worker_running

echo "== [${SECONDS}s] 2. CAP_NET_ADMIN only in the worker"
WORKER=$(pids_of 'wgpeer apply worker')
POSTMASTER=$(head -n 1 "$CLUSTER_DIR/data/postmaster.pid")
check "the worker holds it effective (CapEff $(cap_of "$WORKER" CapEff))" \
	has_net_admin "$(cap_of "$WORKER" CapEff)"
check "the postmaster keeps it permitted, for the worker (CapPrm $(cap_of "$POSTMASTER" CapPrm))" \
	has_net_admin "$(cap_of "$POSTMASTER" CapPrm)"
# a parallel worker, running while this is checked
q -c "CREATE TABLE public.par AS SELECT g FROM generate_series(1, 30000) g; ANALYZE public.par" >/dev/null
q -c "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
	SET min_parallel_table_scan_size = 0;
	SELECT count(*) FROM public.par WHERE pg_sleep(0.001) IS NOT NULL" >/dev/null 2>&1 &
PARALLEL=$!
parallel_running() { [ -n "$(pids_of 'parallel worker')" ]; }
wait_until 30 parallel_running || true
# a logical replication worker: a subscription of this cluster to itself
q >/dev/null <<SQL
CREATE TABLE public.rep (id integer PRIMARY KEY);
CREATE PUBLICATION sp_pub FOR TABLE public.rep;
SELECT 1 FROM pg_create_logical_replication_slot('sp_slot', 'pgoutput');
SQL
CLUSTER_DB=sp_sub q >/dev/null <<SQL
CREATE TABLE public.rep (id integer PRIMARY KEY);
CREATE SUBSCRIPTION sp_sub CONNECTION 'host=$CLUSTER_DIR dbname=$DB user=postgres'
	PUBLICATION sp_pub WITH (create_slot = false, slot_name = 'sp_slot');
SQL
repl_running() { [ -n "$(pids_of 'logical replication worker')" ]; }
wait_until 30 repl_running || true
for type in 'postmaster' 'checkpointer' 'walwriter' 'background writer' \
	'autovacuum launcher' 'logical replication launcher' 'parallel worker' \
	'logical replication worker' 'client backend'; do
	case $type in
		postmaster) pids=$POSTMASTER ;;
		'client backend')
			# a backend reads its own /proc status
			q -c "SELECT pg_read_file('/proc/self/status', 0, 65536)" >"$TMP/backend_status"
			for set in CapEff CapInh CapAmb CapPrm; do
				mask=$(awk -v f="$set:" '$1 == f { print $2 }' "$TMP/backend_status")
				check "a client backend lacks it in $set ($mask)" eval '! has_net_admin "$mask"'
			done
			continue ;;
		*) pids=$(pids_of "$type") ;;
	esac
	pid=${pids%%$'\n'*}
	if [ -z "$pid" ] || [ ! -r "/proc/$pid/status" ]; then
		not_ok "a $type runs"
		continue
	fi
	for set in CapEff CapInh CapAmb; do
		mask=$(cap_of "$pid" "$set")
		check "the $type (pid $pid) lacks it in $set ($mask)" eval '! has_net_admin "$mask"'
	done
done
# the parallel query is not needed any longer
q -c "SELECT pg_cancel_backend(leader_pid) FROM pg_stat_activity
	WHERE backend_type = 'parallel worker'" >/dev/null
wait "$PARALLEL" || true

echo "== [${SECONDS}s] 3. the worker applies, fails, expires, samples and watches"
PEER_B=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('quota-user', interface => '$DEV')")
KEY_B=$(q -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$PEER_B'")
(umask 077 && q -c "SELECT wgpeer.wg_peer_config('$PEER_B')" >"$TMP/client.conf")
check "a peer reaches $DEV" wait_until 30 on_server "$KEY_B"
check "and becomes active" wait_until 10 status_is "$PEER_B" active/
wg_client_up "$CDEV" "$NS_C" "$TMP/client.conf" 10.93.0.0/24
check "its client pings through the tunnel" wait_until 30 ping_server

GONE_PEER=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('gone-user', interface => '$GONE')")
failed() {
	sql_true "SELECT failures >= 2 FROM wgpeer.worker_state WHERE interface = '$GONE'"
}
check "a change to an interface that is gone fails, and is retried" wait_until 30 failed
check "its failure is an apply_failed event" sql_true \
	"SELECT count(*) = 1 FROM wgpeer.event WHERE kind = 'apply_failed' AND interface = '$GONE'"
check "the peer waits in the queue" sql_true \
	"SELECT count(*) = 1 FROM wgpeer.queue WHERE peer_id = '$GONE_PEER'"

PEER_E=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('expiring-user', interface => '$DEV')")
KEY_E=$(q -c "SELECT public_key FROM wgpeer.peer WHERE peer_id = '$PEER_E'")
wait_until 30 on_server "$KEY_E" || true
# a superuser's own session, with the default search_path: the peer's
# triggers run here
q -c "UPDATE wgpeer.peer SET expires_at = pg_catalog.now() + interval '2 seconds'
	WHERE peer_id = '$PEER_E'" >/dev/null
check "a peer expires on time" wait_until 20 status_is "$PEER_E" expired/
check "and leaves $DEV" wait_until 10 not_on_server "$KEY_E"
same "its lifecycle's events (the triggers ran in both sessions)" \
	"created activated renewed expired" \
	"$(q -c "SELECT string_agg(kind, ' ' ORDER BY event_id) FROM wgpeer.event
		WHERE peer_id = '$PEER_E' AND kind <> 'expiring_soon'")"

echo "== [${SECONDS}s] 4. one peer_traffic row whose rx + tx overflows bigint"
PEER_O=$(q -c "SELECT peer_id FROM wgpeer.wg_create_peer('overflow-user', interface => '$DEV')")
q >/dev/null <<SQL
SELECT 1 FROM wgpeer.wg_set_peer_quota('$PEER_O', 1000000, 'day');
SELECT 1 FROM wgpeer.wg_set_peer_quota('$PEER_B', 100000, 'day');
INSERT INTO wgpeer.peer_traffic (peer_id, rx_bytes, tx_bytes, sampled_at)
VALUES ('$PEER_O', 9223372036854775807, 9223372036854775807, pg_catalog.now())
ON CONFLICT (peer_id) DO UPDATE SET rx_bytes = EXCLUDED.rx_bytes,
	tx_bytes = EXCLUDED.tx_bytes;
SQL
LOG_AT=$(wc -c <"$CLUSTER_DIR/server.log")
# 150 pings of 1,200 bytes: about 180 kB each way
cli ping -q -c 150 -i 0.01 -s 1200 -W 1 10.93.0.1 >/dev/null 2>&1 || true
check "another peer's quota still suspends it" wait_until 20 status_is "$PEER_B" suspended/quota
check "it leaves $DEV" wait_until 10 not_on_server "$KEY_B"
check "the peer with the overflowing row is over its quota too" \
	wait_until 10 status_is "$PEER_O" suspended/quota
watch_failed() { tail -c +"$((LOG_AT + 1))" "$CLUSTER_DIR/server.log" | grep "watching peers failed"; }
none "no watch pass failed" watch_failed
check "wg_user_usage reads the overflowing peer" sql_true \
	"SELECT used_bytes = 9223372036854775807 FROM wgpeer.wg_user_usage('overflow-user')"

echo "== [${SECONDS}s] 5. nobody gained anything"
# two more samples and watch passes, then look
T0=$(q -c "SELECT pg_catalog.now()")
sampled_after() { sql_true "SELECT sampled_at > '$T0'::timestamptz + interval '2 s'
	FROM wgpeer.device WHERE interface = '$DEV'"; }
check "the worker went on sampling $DEV" wait_until 20 sampled_after
same "the only superuser is the bootstrap one" "postgres" \
	"$(q -c "SELECT string_agg(rolname, ' ' ORDER BY rolname) FROM pg_roles WHERE rolsuper")"
same "no planted function ran (recorded)" "" \
	"$(q -c "SELECT string_agg(DISTINCT what || ' as ' || by_role, '; ') FROM public.planted_ran")"
same "every SECURITY DEFINER function of wgpeer pins a search_path without public" "" \
	"$(q -c "SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
		WHERE p.pronamespace = 'wgpeer'::regnamespace AND p.prosecdef
		  AND NOT coalesce('search_path=wgpeer, pg_temp' = ANY (p.proconfig), false)")"
planted_in_log() { grep -o "wgpeer-planted .*" "$CLUSTER_DIR/server.log" | sort | uniq -c; }
none "no planted function ran (server log)" planted_in_log

tap_summary
