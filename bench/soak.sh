#!/bin/bash
# Soak: wgpeer under concurrent load with the apply worker running, then the
# invariants that must still hold.  A throwaway cluster (wgpeer preloaded,
# the worker serving database postgres) and one wireguard-go interface in a
# private network namespace, its UAPI socket handed to PostgreSQL's user
# (test/wireguard.sh), registered with a pool of 4,093 addresses and IPv6.
# pgbench then runs CLIENTS sessions for SECONDS, each transaction one
# operation picked by weight (bench/soak.pgbench):
#	create  40%  wg_create_peer() for a random user id ('pool full' handled)
#	revoke  20%  wg_revoke_peer() of a random live peer
#	renew   15%  wg_renew_peer() of a random live peer, or in 30% of them of
#	             an expired one, which comes back (after the grace period,
#	             set to 5 s here, with a new address, or 'pool full')
#	expire  10%  a random live peer's subscription ends now (expires_at set
#	             to now(), as bench/reconcile.sh does): the worker's expiry
#	             timer expires it and queues its removal
#	suspend  5%  wg_suspend_peer() of a random live peer, and
#	resume   5%  wg_resume_peer() of a random suspended one, when wgpeer
#	             has them (else create and revoke get 5% more each)
#	rotate   5%  wg_rotate_peer_key() of a random live peer, when wgpeer
#	             has it (else renew gets its 5%)
# A random live peer is picked from a random address of the pool upwards,
# FOR UPDATE SKIP LOCKED, so that two sessions never pick the same one and
# a peer revoked by another session is never picked (an index probe, not a
# scan).  Reconciliation is pushed back to once a day, so what is on the
# interface at the end was put there by the queue alone; the grace period
# of expired peers is 5 s, so that their addresses are released (by the
# worker's expiry and by every allocation) many times during the run.
# After pgbench ends the script waits (bounded) until the queue is empty
# and no live peer is past its expiry, then checks (ok / not ok):
#	- no address, IPv6 address or public key held twice on the interface
#	  (live peers and expired ones in their grace period; counted with
#	  index scans off, so a broken unique index cannot hide a duplicate),
#	  IPv6 at the same offset as IPv4, every address below the pool's
#	  high-water mark either held or on the free list, indexes sound
#	  (amcheck);
#	- one queued change per transition, each applied once (see
#	  check_changes), and no peer marked active before its add was applied;
#	- the interface (wg show dump in the namespace) holds every live peer
#	  as the database wants it and nothing else; no reconcile repaired it;
#	- backlog 0, no last_error, no client aborted, no deadlock or
#	  serialization failure (pgbench retries those up to 10 times and
#	  counts them), the worker never exited (an ERROR ends it).
# Prints pgbench's throughput, the operations done, the changes the worker
# applied, the drain time after pgbench ended, and "N violations" (goal:
# 0); exits non-zero when there is any.  Run as root after `make install`:
#	bash bench/soak.sh [SECONDS] [CLIENTS]		(defaults 60 and 8)
# The cluster runs with fsync off, as every throwaway cluster here does.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "bench/soak.sh makes a network namespace: run it as root" >&2
	exit 1
fi
DURATION=${1:-60}
CLIENTS=${2:-8}
DEV=wgsoak
NS=wgpeer-soak-$$
LIVE="('creating', 'active')"
TMP=$(mktemp -d /tmp/wgpeer-soak.XXXXXX)
chmod 755 "$TMP"
SAMPLER=
WGPEER_BACKEND=uapi
WG_DEV_LOGS=$TMP
. test/wireguard.sh
. test/tap.sh

cleanup() {
	if [ -n "$SAMPLER" ]; then
		kill "$SAMPLER" 2>/dev/null || true
		wait "$SAMPLER" 2>/dev/null || true
	fi
	cluster_stop
	wg_dev_cleanup
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

# nanoseconds since the epoch
now_ns() { date +%s%N; }
# kernel_peers (test/wireguard.sh) with `wg` run inside the namespace
device_peers() { (wg() { ip netns exec "$NS" wg "$@"; } && kernel_peers "$DEV"); }
# offenders DESCRIPTION SQL: one result; SQL lists what breaks the
# invariant, one row each: passed when it lists nothing, otherwise the
# number of rows and the first five are shown
offenders() {
	local what=$1 out
	if ! out=$(q -c "$2" 2>&1); then
		not_ok "$what (the query failed)"
		printf '%s\n' "$out" | head -n 5 | sed 's/^/      /'
		return
	fi
	if [ -z "$out" ]; then
		ok "$what"
		return
	fi
	not_ok "$what: $(printf '%s\n' "$out" | wc -l) offending rows"
	printf '%s\n' "$out" | head -n 5 | sed 's/^/      /'
}
# only_in DESCRIPTION FILE FILE: one result, passed when every line of the
# first sorted file is in the second; otherwise the count and the first
# five lines missing from the second are shown
only_in() {
	local what=$1 out
	out=$(comm -23 "$2" "$3")
	if [ -z "$out" ]; then
		ok "$what"
		return
	fi
	not_ok "$what: $(printf '%s\n' "$out" | wc -l) peers"
	printf '%s\n' "$out" | head -n 5 | sed 's/^/      /'
}
# the queue is empty and no live (or suspended) peer is past its expiry:
# the worker would expire it next
drained() {
	sql_true "SELECT NOT EXISTS (SELECT FROM wgpeer.queue)
		AND NOT EXISTS (SELECT FROM wgpeer.peer
			WHERE status IN ('creating', 'active', 'suspended') AND expires_at <= now())"
}
# the apply worker's exits in the server log: how many, and the first
# three with the error that ended each
worker_exits() {
	local log=$TMP/pg/server.log line pid
	local exits='"wgpeer apply worker" \(PID [0-9]+\) (exited|was terminated)'
	grep -E "$exits" "$log" | head -n 3 | while read -r line; do
		echo "$line"
		pid=$(sed -E 's/.*\(PID ([0-9]+)\).*/\1/' <<<"$line")
		grep -F -A 7 "[$pid] ERROR:" "$log" | head -n 8 | cut -c 1-240
	done
	local n
	n=$(grep -cE "$exits" "$log" || true)
	[ "$n" -le 3 ] || echo "... $n exits in all"
}
# the installed wgpeer.so, as inode and modification time: another
# `make install` during the run replaces it, and a process that loads it
# afterwards (a restarted worker) runs other code against this schema
library_id() { stat -c '%i %Y' "$(pg_config --pkglibdir)/wgpeer.so"; }
# sample the backlog once a second into $TMP/backlog, until killed
sample_backlog() {
	while :; do
		q -c "SELECT count(*) FROM wgpeer.queue" >>"$TMP/backlog" 2>/dev/null || true
		sleep 1
	done
}

echo "== a throwaway cluster and wireguard-go interface $DEV in namespace $NS"
cluster_start "$TMP/pg" "wgpeer.database = 'postgres'" \
	"wgpeer.reconcile_interval = '1d'" "wgpeer.expired_grace = '5s'" ||
	{ tail -n 5 "$TMP/pg/server.log" >&2; exit 1; }
ip netns add "$NS"
ip -n "$NS" link set lo up
wg_dev_add "$DEV" "$NS"
q >/dev/null <<SQL
CREATE EXTENSION wgpeer;
CREATE EXTENSION amcheck;
SELECT name FROM wgpeer.wg_add_interface('$DEV', '192.0.2.1:51877', '10.77.0.1/20',
	'fd00:77::1/64', listen_port => 51877, persistent_keepalive => 25,
	backend => 'uapi');
SQL

# What the soak records, in schema soak, through triggers on wgpeer's
# tables (they fire in the worker's transactions too).  One sequence
# orders every event: transitions of peers (status, expiry, key or
# addresses changed), changes queued, changes the worker deleted from the
# queue after applying them; each with the transaction that made it.
q >/dev/null <<SQL
CREATE SCHEMA soak;
CREATE SEQUENCE soak.event;
CREATE TABLE soak.transition (
	seq bigint PRIMARY KEY DEFAULT nextval('soak.event'),
	peer_id uuid NOT NULL,
	old_status text,				-- NULL: the peer was created
	new_status text NOT NULL,
	expect text NOT NULL,			-- the queue changes it calls for
	xid xid8 NOT NULL DEFAULT pg_current_xact_id());
CREATE INDEX ON soak.transition (seq) WHERE new_status = 'expired';
CREATE TABLE soak.queued (
	seq bigint PRIMARY KEY DEFAULT nextval('soak.event'),
	change_id bigint NOT NULL,
	peer_id uuid NOT NULL,
	op text NOT NULL,
	xid xid8 NOT NULL DEFAULT pg_current_xact_id());
CREATE INDEX ON soak.queued (peer_id, seq);
CREATE TABLE soak.applied (
	seq bigint PRIMARY KEY DEFAULT nextval('soak.event'),
	change_id bigint NOT NULL,
	peer_id uuid NOT NULL,
	op text NOT NULL,
	xid xid8 NOT NULL DEFAULT pg_current_xact_id());
CREATE INDEX ON soak.applied (peer_id, xid);
-- one row per committed operation and what came of it
CREATE TABLE soak.op_log (op text NOT NULL, outcome text NOT NULL);
-- peers wg_suspend_peer() suspended
CREATE TABLE soak.suspended (peer_id uuid PRIMARY KEY);

-- A transition of a peer and the queue changes it calls for, by the
-- rules src/sql/queue.c states (written again here, independently):
-- becoming live (creating, active) an 'add', leaving it a 'remove';
-- staying live with a new key 'remove add' (the old key off, the new
-- on); staying live with a new address, IPv6 address or preshared key,
-- or with an expiry moved from the past (as of the transaction's start)
-- into the future, an 'add'; anything else (creating -> active, renewing
-- a live peer, expired -> revoked, suspended -> expired) nothing.
CREATE FUNCTION soak.log_transition() RETURNS trigger LANGUAGE plpgsql AS \$\$
DECLARE
	was_live boolean := false;
	is_live boolean := NEW.status IN $LIVE;
	old_status text;
	expect text := '';
BEGIN
	IF TG_OP = 'UPDATE' THEN
		old_status := OLD.status;
		was_live := OLD.status IN $LIVE;
	END IF;
	IF is_live AND NOT was_live THEN
		expect := 'add';
	ELSIF was_live AND NOT is_live THEN
		expect := 'remove';
	ELSIF was_live AND is_live THEN
		IF OLD.public_key IS DISTINCT FROM NEW.public_key THEN
			expect := 'remove add';
		ELSIF (OLD.address, OLD.address6, OLD.preshared_key)
				IS DISTINCT FROM (NEW.address, NEW.address6, NEW.preshared_key)
			OR (OLD.expires_at <= now()
				AND (NEW.expires_at IS NULL OR NEW.expires_at > now())) THEN
			expect := 'add';
		END IF;
	END IF;
	INSERT INTO soak.transition (peer_id, old_status, new_status, expect)
	VALUES (NEW.peer_id, old_status, NEW.status, expect);
	RETURN NULL;
END \$\$;
CREATE TRIGGER soak_created AFTER INSERT ON wgpeer.peer
	FOR EACH ROW EXECUTE FUNCTION soak.log_transition();
CREATE TRIGGER soak_changed AFTER UPDATE ON wgpeer.peer
	FOR EACH ROW WHEN ((OLD.status, OLD.expires_at, OLD.public_key, OLD.address,
						OLD.address6, OLD.preshared_key)
		IS DISTINCT FROM (NEW.status, NEW.expires_at, NEW.public_key, NEW.address,
						  NEW.address6, NEW.preshared_key))
	EXECUTE FUNCTION soak.log_transition();

CREATE FUNCTION soak.log_queued() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	INSERT INTO soak.queued (change_id, peer_id, op)
	VALUES (NEW.change_id, NEW.peer_id, NEW.op);
	RETURN NULL;
END \$\$;
CREATE TRIGGER soak_queued AFTER INSERT ON wgpeer.queue
	FOR EACH ROW EXECUTE FUNCTION soak.log_queued();
-- only the worker deletes queue rows here, after applying them
CREATE FUNCTION soak.log_applied() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	INSERT INTO soak.applied (change_id, peer_id, op)
	VALUES (OLD.change_id, OLD.peer_id, OLD.op);
	RETURN NULL;
END \$\$;
CREATE TRIGGER soak_applied AFTER DELETE ON wgpeer.queue
	FOR EACH ROW EXECUTE FUNCTION soak.log_applied();

-- A random live peer of $DEV, locked; NULL when none is free.  From a
-- random address between the pool's start and its high-water mark
-- upwards (else downwards), skipping peers other sessions hold.
CREATE FUNCTION soak.live_peer() RETURNS uuid LANGUAGE plpgsql AS \$\$
DECLARE
	lo inet;
	hi inet;
	target inet;
	id uuid;
BEGIN
	SELECT i.pool_start, p.next_address INTO lo, hi
	FROM wgpeer.interface i JOIN wgpeer.pool p ON p.interface = i.name
	WHERE i.name = '$DEV';
	target := lo + floor(random() * greatest(hi - lo, 1))::bigint;
	SELECT p.peer_id INTO id FROM wgpeer.peer p
	WHERE p.interface = '$DEV' AND p.released_at IS NULL AND p.address >= target
	  AND p.status IN $LIVE
	ORDER BY p.address LIMIT 1 FOR UPDATE SKIP LOCKED;
	IF id IS NULL THEN
		SELECT p.peer_id INTO id FROM wgpeer.peer p
		WHERE p.interface = '$DEV' AND p.released_at IS NULL AND p.address < target
		  AND p.status IN $LIVE
		ORDER BY p.address DESC LIMIT 1 FOR UPDATE SKIP LOCKED;
	END IF;
	RETURN id;
END \$\$;

-- A random expired peer, locked; NULL when none is free.  From the
-- transitions to 'expired', from a random point upwards (else downwards).
CREATE FUNCTION soak.expired_peer() RETURNS uuid LANGUAGE plpgsql AS \$\$
DECLARE
	target bigint := floor(random() * (SELECT last_value FROM soak.event));
	id uuid;
BEGIN
	SELECT p.peer_id INTO id
	FROM soak.transition t JOIN wgpeer.peer p ON p.peer_id = t.peer_id
	WHERE t.new_status = 'expired' AND t.seq >= target AND p.status = 'expired'
	ORDER BY t.seq LIMIT 1 FOR UPDATE OF p SKIP LOCKED;
	IF id IS NULL THEN
		SELECT p.peer_id INTO id
		FROM soak.transition t JOIN wgpeer.peer p ON p.peer_id = t.peer_id
		WHERE t.new_status = 'expired' AND t.seq < target AND p.status = 'expired'
		ORDER BY t.seq DESC LIMIT 1 FOR UPDATE OF p SKIP LOCKED;
	END IF;
	RETURN id;
END \$\$;

CREATE FUNCTION soak.log(op text, outcome text) RETURNS text LANGUAGE sql AS
	\$\$ INSERT INTO soak.op_log VALUES (op, outcome) RETURNING outcome \$\$;

-- The operations pgbench calls.  Each handles what is legitimate under
-- concurrency (nobody to pick, a full pool); anything else is an error
-- that aborts the client.
CREATE FUNCTION soak.create_peer(uid int, months int) RETURNS text
LANGUAGE plpgsql AS \$\$
BEGIN
	PERFORM wgpeer.wg_create_peer('soak-' || uid, months, interface => '$DEV');
	RETURN soak.log('create', 'created');
EXCEPTION WHEN configuration_limit_exceeded THEN
	RETURN soak.log('create', 'pool full');
END \$\$;

CREATE FUNCTION soak.revoke_peer() RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE
	id uuid := soak.live_peer();
	r wgpeer.peer_public;
BEGIN
	IF id IS NULL THEN
		RETURN soak.log('revoke', 'no live peer');
	END IF;
	r := wgpeer.wg_revoke_peer(id);
	IF r.status IS DISTINCT FROM 'revoked' THEN
		RAISE EXCEPTION 'wg_revoke_peer(%) left status %', id, r.status;
	END IF;
	RETURN soak.log('revoke', 'revoked');
END \$\$;

CREATE FUNCTION soak.renew_peer(months int, revive boolean) RETURNS text
LANGUAGE plpgsql AS \$\$
DECLARE
	id uuid;
	kind text;
	r wgpeer.peer_public;
BEGIN
	IF revive THEN
		id := soak.expired_peer();
		kind := 'revived';
	END IF;
	IF id IS NULL THEN
		id := soak.live_peer();
		kind := 'extended';
	END IF;
	IF id IS NULL THEN
		RETURN soak.log('renew', 'no peer');
	END IF;
	BEGIN
		r := wgpeer.wg_renew_peer(id, months);
	EXCEPTION WHEN configuration_limit_exceeded THEN
		RETURN soak.log('renew', 'pool full');
	END;
	IF r.status NOT IN $LIVE THEN
		RAISE EXCEPTION 'wg_renew_peer(%) left status %', id, r.status;
	END IF;
	RETURN soak.log('renew', kind);
END \$\$;

CREATE FUNCTION soak.expire_peer() RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE
	id uuid := soak.live_peer();
BEGIN
	IF id IS NULL THEN
		RETURN soak.log('expire', 'no live peer');
	END IF;
	UPDATE wgpeer.peer SET expires_at = now() WHERE peer_id = id;
	RETURN soak.log('expire', 'due now');
END \$\$;

-- Called only when wgpeer has them (the weights say so).
CREATE FUNCTION soak.suspend_peer() RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE
	id uuid := soak.live_peer();
	r wgpeer.peer_public;
BEGIN
	IF id IS NULL THEN
		RETURN soak.log('suspend', 'no live peer');
	END IF;
	r := wgpeer.wg_suspend_peer(id);
	IF r.status IS DISTINCT FROM 'suspended' THEN
		RAISE EXCEPTION 'wg_suspend_peer(%) left status %', id, r.status;
	END IF;
	INSERT INTO soak.suspended VALUES (id) ON CONFLICT DO NOTHING;
	RETURN soak.log('suspend', 'suspended');
END \$\$;

CREATE FUNCTION soak.resume_peer() RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE
	id uuid;
	r wgpeer.peer_public;
BEGIN
	SELECT p.peer_id INTO id
	FROM soak.suspended s JOIN wgpeer.peer p ON p.peer_id = s.peer_id
	WHERE p.status = 'suspended'
	ORDER BY random() LIMIT 1 FOR UPDATE OF p SKIP LOCKED;
	IF id IS NULL THEN
		RETURN soak.log('resume', 'no suspended peer');
	END IF;
	r := wgpeer.wg_resume_peer(id);
	IF r.status NOT IN $LIVE THEN
		RAISE EXCEPTION 'wg_resume_peer(%) left status %', id, r.status;
	END IF;
	DELETE FROM soak.suspended WHERE peer_id = id;
	RETURN soak.log('resume', 'resumed');
END \$\$;

CREATE FUNCTION soak.rotate_peer() RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE
	id uuid := soak.live_peer();
BEGIN
	IF id IS NULL THEN
		RETURN soak.log('rotate', 'no live peer');
	END IF;
	PERFORM wgpeer.wg_rotate_peer_key(id);
	RETURN soak.log('rotate', 'new key');
END \$\$;
SQL

# The weights in percent; suspend, resume and key rotation only where
# wgpeer has them (their share goes to create and revoke, and to renew)
has_function() {
	sql_true "SELECT EXISTS (SELECT FROM pg_proc
		WHERE pronamespace = 'wgpeer'::regnamespace AND proname = '$1')"
}
declare -A W=([create]=40 [revoke]=20 [renew]=15 [expire]=10 [suspend]=5 [resume]=5 [rotate]=5)
if ! has_function wg_suspend_peer || ! has_function wg_resume_peer; then
	W[create]=$((W[create] + 5)) W[revoke]=$((W[revoke] + 5)) W[suspend]=0 W[resume]=0
fi
if ! has_function wg_rotate_peer_key; then
	W[renew]=$((W[renew] + W[rotate])) W[rotate]=0
fi
# as cumulative thresholds for bench/soak.pgbench
weights=(-D revive_pct=30)
MIX=
sum=0
for op in create revoke renew expire suspend resume rotate; do
	sum=$((sum + W[$op]))
	weights+=(-D "to_$op=$sum")
	MIX="$MIX${MIX:+, }$op ${W[$op]}%"
done
cp bench/soak.pgbench "$TMP/soak.pgbench"
chmod 644 "$TMP/soak.pgbench"
JOBS=$(nproc)
[ "$JOBS" -le "$CLIENTS" ] || JOBS=$CLIENTS
PROGRESS=$((DURATION >= 60 ? 10 : DURATION >= 10 ? 5 : 1))
echo "   wgpeer $(q -c "SELECT extversion FROM pg_extension WHERE extname = 'wgpeer'")," \
	"$(pg_config --pkglibdir)/wgpeer.so $(md5sum <"$(pg_config --pkglibdir)/wgpeer.so" | cut -c 1-12)"
# registering the interface made the worker reconcile it: let that pass
# first, so that any reconcile from here on is one the run caused
wait_until 60 sql_true "SELECT reconciled_at IS NOT NULL FROM wgpeer.device
	WHERE interface = '$DEV'"
SOAK_START=$(q -c "SELECT now()")
LIBRARY=$(library_id)

echo "== pgbench: $CLIENTS clients for $DURATION s: $MIX"
sample_backlog &
SAMPLER=$!
set +e
runuser -u "$WGPEER_USER" -- pgbench -n -h "$CLUSTER_DIR" -U postgres \
	-c "$CLIENTS" -j "$JOBS" -T "$DURATION" -P "$PROGRESS" \
	-r --max-tries=10 --failures-detailed "${weights[@]}" \
	-f "$TMP/soak.pgbench" postgres 2>&1 | tee "$TMP/pgbench.out" | sed -u 's/^/   /'
PGBENCH_RC=${PIPESTATUS[0]}
set -e
t_end=$(now_ns)
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=
backlog_end=$(q -c "SELECT count(*) FROM wgpeer.queue")

echo "== waiting for the worker to drain the backlog ($backlog_end changes queued when pgbench ended)"
WAIT_UNTIL_STEP=0.05
DRAINED=yes
wait_until 600 drained || DRAINED=no
drain_ms=$((($(now_ns) - t_end) / 1000000))

echo "== invariants"
same "wgpeer.so was not reinstalled during the run (if it was: rerun)" "$LIBRARY" "$(library_id)"
check "pgbench: every client ran to the end (exit status $PGBENCH_RC)" \
	test "$PGBENCH_RC" -eq 0
failed_tx=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$TMP/pgbench.out")
retried_tx=$(sed -n 's/^number of transactions retried: \([0-9]*\).*/\1/p' "$TMP/pgbench.out")
same "pgbench: no deadlock or serialization failure (transactions failed, retried)" \
	"0 0" "${failed_tx:-?} ${retried_tx:-?}"
check "backlog drained within 600 s of pgbench's end, no live peer left past its expiry" \
	test "$DRAINED" = yes
same "backlog 0 in wgpeer.interface_status" 0 \
	"$(q -c "SELECT backlog FROM wgpeer.interface_status WHERE interface = '$DEV'")"
offenders "no last_error in wgpeer.interface_status" \
	"SELECT interface, last_error, last_error_at, last_success_at
	 FROM wgpeer.interface_status WHERE last_error IS NOT NULL"
none "the apply worker never exited (server log)" worker_exits

# Held addresses and keys: live peers, and expired ones in their grace
# period, which keep their address.  Index scans off: the unique indexes
# are what is being checked, so the counts must not come from them.
NOIDX="SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off;"
offenders "no IPv4 address held twice on $DEV (live peers, and expired ones in their grace period)" \
	"$NOIDX SELECT interface, host(address), count(*) FROM wgpeer.peer
	 WHERE released_at IS NULL GROUP BY 1, 2 HAVING count(*) > 1"
offenders "no IPv6 address held twice on $DEV" \
	"$NOIDX SELECT interface, host(address6), count(*) FROM wgpeer.peer
	 WHERE released_at IS NULL GROUP BY 1, 2 HAVING count(*) > 1"
offenders "every live peer's IPv6 address is at the offset of its IPv4 address" \
	"SELECT p.peer_id, host(p.address), host(p.address6)
	 FROM wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface
	 WHERE p.status IN $LIVE AND (p.address6 IS NULL
		OR p.address6 - network(i.address6) <> p.address - network(i.address))"
offenders "no public key held twice on $DEV" \
	"$NOIDX SELECT interface, public_key, count(*) FROM wgpeer.peer
	 WHERE released_at IS NULL GROUP BY 1, 2 HAVING count(*) > 1"
# The allocator hands out the free list first, then the high-water mark:
# an address below the mark that no peer holds and that is not on the
# free list would never be handed out again.
offenders "no address lost: every pool address below the high-water mark is held or free" \
	"SELECT host(a.address)
	 FROM wgpeer.interface i JOIN wgpeer.pool pl ON pl.interface = i.name,
		LATERAL (SELECT set_masklen(i.pool_start + g, 32) AS address
				 FROM generate_series(0, least(pl.next_address, i.pool_end + 1)
											 - i.pool_start - 1) g) a
	 WHERE i.name = '$DEV' AND host(a.address) <> host(i.address)
	   AND NOT EXISTS (SELECT FROM wgpeer.peer p WHERE p.interface = i.name
					   AND host(p.address) = host(a.address) AND p.released_at IS NULL)
	   AND NOT EXISTS (SELECT FROM wgpeer.free_address f WHERE f.interface = i.name
					   AND host(f.address) = host(a.address))"
offenders "amcheck: every index of peer, queue, pool and free_address sound, with every row in it" \
	"WITH i AS MATERIALIZED (
		SELECT x.indexrelid FROM pg_index x
		WHERE x.indrelid IN ('wgpeer.peer'::regclass, 'wgpeer.queue'::regclass,
							 'wgpeer.pool'::regclass, 'wgpeer.free_address'::regclass))
	 SELECT indexrelid::regclass FROM i
	 WHERE bt_index_parent_check(indexrelid, true)::text <> ''"

# One queued change per transition.  soak.log_transition() writes, with
# each transition of a peer, the queue changes it calls for (an 'add' onto
# the interface, a 'remove' off it, 'remove add' for a new key; the rules
# are above it).  Per peer, the queued ops in change_id order must equal
# the ops its transitions call for in transition order: a missing, extra,
# wrong or reordered change shows as a difference.  Both logs are written
# by triggers in the transactions that made the transitions and queued
# the changes, so rollbacks (the pool-full handlers' subtransactions)
# leave nothing in either.  Then every queued change must have been
# deleted by the worker exactly once (its apply recorded), and the apply
# that marks a peer active (creating -> active, in the worker's
# transaction) must leave it on the interface: the last of that peer's
# changes it applied is an add.
check_changes() {
	offenders "one queued change per transition, per peer and in order" \
		"WITH t AS (
			SELECT peer_id, string_agg(expect, ' ' ORDER BY seq) AS ops
			FROM soak.transition WHERE expect <> '' GROUP BY peer_id),
		 c AS (SELECT peer_id, string_agg(op, ' ' ORDER BY change_id) AS ops
			   FROM soak.queued GROUP BY peer_id)
		 SELECT peer_id, 'transitions: ' || coalesce(t.ops, '-'),
				'queued: ' || coalesce(c.ops, '-')
		 FROM t FULL JOIN c USING (peer_id)
		 WHERE t.ops IS DISTINCT FROM c.ops"
	offenders "every queued change applied (deleted by the worker) exactly once" \
		"SELECT change_id, op, count(a.seq) AS times_applied
		 FROM soak.queued q LEFT JOIN soak.applied a USING (change_id, op)
		 GROUP BY change_id, op HAVING count(a.seq) <> 1
		 UNION ALL
		 SELECT change_id, op, -1 FROM soak.applied a
		 WHERE NOT EXISTS (SELECT FROM soak.queued q WHERE q.change_id = a.change_id)"
	offenders "no peer marked active by an apply that left it off the interface (its newer add still queued)" \
		"SELECT t.peer_id, 'activated by xact ' || t.xid || ', which applied '
					|| string_agg(a.op || ' #' || a.change_id, ', ' ORDER BY a.change_id),
				(SELECT 'its add #' || q.change_id || ' was applied by xact ' || a2.xid
				 FROM soak.queued q LEFT JOIN soak.applied a2 USING (change_id)
				 WHERE q.peer_id = t.peer_id AND q.op = 'add' AND q.seq < t.seq
				 ORDER BY q.seq DESC LIMIT 1)
		 FROM soak.transition t
		 LEFT JOIN soak.applied a ON a.peer_id = t.peer_id AND a.xid = t.xid
		 WHERE t.old_status = 'creating' AND t.new_status = 'active'
		 GROUP BY t.peer_id, t.seq, t.xid
		 HAVING (array_agg(a.op ORDER BY a.change_id DESC))[1] IS DISTINCT FROM 'add'"
	offenders "every live peer is active once its add is applied (none left 'creating')" \
		"SELECT peer_id, status FROM wgpeer.peer WHERE status = 'creating'"
}
check_changes

# The interface as wireguard-go has it vs the database's live peers
device_peers >"$TMP/device"
wanted_peers "$DEV" >"$TMP/wanted"
only_in "every live peer ($(wc -l <"$TMP/wanted")) is on $DEV with its key, PSK, allowed IPs and keepalive" \
	"$TMP/wanted" "$TMP/device"
only_in "nothing else is on $DEV ($(wc -l <"$TMP/device") peers): no revoked, expired or unknown peer, no stale setting" \
	"$TMP/device" "$TMP/wanted"
comm -13 "$TMP/wanted" "$TMP/device" | cut -f1 >"$TMP/extra_keys"
if [ -s "$TMP/extra_keys" ]; then
	echo "   what the database says of the keys on $DEV that should not be there (or not so):"
	q <<SQL |
SELECT coalesce(p.status, 'unknown to the database'), count(*)
FROM unnest(string_to_array('$(paste -sd, "$TMP/extra_keys")', ',')) k
LEFT JOIN wgpeer.peer p ON p.public_key = k GROUP BY 1
SQL
		awk -F'\t' '{ printf "      %-27s %9d\n", $1, $2 }'
fi
# a restarted worker reconciles first, and applies what waited that way
if [ -z "$(worker_exits)" ]; then
	offenders "no reconcile repaired $DEV during the soak (the queue alone put it in shape)" \
		"SELECT reconciled_at, added, corrected, removed FROM wgpeer.device
		 WHERE interface = '$DEV' AND reconciled_at >= '$SOAK_START'
		   AND added + corrected + removed > 0"
else
	echo "   (not checked: no reconcile repaired $DEV; the worker restarted, and reconciled" \
		"$(q -c "SELECT format('added %s, corrected %s, removed %s', added, corrected, removed)
			FROM wgpeer.device WHERE interface = '$DEV'"))"
fi

echo "== figures ($CLIENTS clients, $DURATION s, $(nproc) CPUs)"
sed -n -e 's/^\(number of transactions actually processed\|number of failed transactions\|number of transactions retried\|total number of retries\|latency average\|tps\)/   pgbench: &/p' "$TMP/pgbench.out"
echo "   latency per operation (pgbench -r: average ms, failures, retries):"
sed -n 's/^ *\([0-9.]*\) *\([0-9]*\) *\([0-9]*\) *SELECT soak\.\([a-z_]*\)(.*/\4 \1 \2 \3/p' "$TMP/pgbench.out" |
	awk '$2 + $3 + $4 > 0 { printf "      %-14s %9s ms %6s %6s\n", $1, $2, $3, $4 }'
echo "   operations (committed), by outcome:"
q -c "SELECT op, outcome, count(*) FROM soak.op_log GROUP BY 1, 2 ORDER BY 1, 2" |
	awk -F'\t' '{ printf "      %-8s %-18s %9d\n", $1, $2, $3 }'
echo "   status transitions:"
q -c "SELECT coalesce(old_status, '(new)') || ' -> ' || new_status, count(*)
	  FROM soak.transition WHERE old_status IS DISTINCT FROM new_status
	  GROUP BY 1 ORDER BY 2 DESC" |
	awk -F'\t' '{ printf "      %-27s %9d\n", $1, $2 }'
IFS=$'\t' read -r adds removes applied batches < <(q -c "SELECT
	(SELECT count(*) FROM soak.queued WHERE op = 'add'),
	(SELECT count(*) FROM soak.queued WHERE op = 'remove'),
	(SELECT count(*) FROM soak.applied),
	(SELECT count(DISTINCT xid) FROM soak.applied)")
echo "   changes queued: $adds adds, $removes removes; applied by the worker: $applied in $batches transactions"
echo "   backlog: max $(sort -n "$TMP/backlog" | tail -n 1 | grep . || echo 0) during the run (sampled every second), $backlog_end when pgbench ended"
echo "   drain time after pgbench ended: $drain_ms ms"
echo "   peers now: $(q -c "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status)
	FROM (SELECT status, count(*) n FROM wgpeer.peer GROUP BY 1) s")"
errors=$(grep -c 'ERROR:' "$TMP/pg/server.log" || true)
echo "   server log: $errors ERROR lines$([ "$errors" -eq 0 ] || echo ", the first:")"
{ grep 'ERROR:' "$TMP/pg/server.log" || true; } | head -n 3 | cut -c 1-240 | sed 's/^/      /'
echo "== $FAILED violations ($PASSED checks passed)"
[ "$FAILED" -eq 0 ]
