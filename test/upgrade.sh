#!/bin/bash
# The upgrade test.  A released install script (sql/wgpeer--0.1.sql) is
# never edited: each schema change is an upgrade script
# sql/wgpeer--<from>--<to>.sql and default_version in wgpeer.control moves.
# The current version also has an install script of its own,
# sql/wgpeer--<default>.sql, which make builds from the schema's source
# by area (sql/schema/*.sql): CREATE EXTENSION runs it, ALTER EXTENSION
# UPDATE runs the upgrade scripts, so every schema change is written twice
# and this test is what proves the two agree.
# This test holds every such change to two promises:
#   - an installation of any earlier version, full of data written through
#     that version's own API, survives `ALTER EXTENSION wgpeer UPDATE`: it
#     reports the default version, every row of every table in schema
#     wgpeer and every sequence is as it was (a column an upgrade changes
#     on purpose is named in CHANGED_COLUMNS below, never left out
#     silently), stored peers render the same configs, identity sequences
#     are ahead of their columns, and the API still works on old and new
#     rows (renew, revoke, list, expire, a new interface called in FROM,
#     next address, removal, a new peer with the next queue id, its
#     config);
#   - the updated database has exactly the schema a fresh
#     `CREATE EXTENSION wgpeer` gives, that is the schema of the built
#     install script (checked to be what ran: the fresh database has no
#     trace of an ALTER TABLE, which the update chain leaves): the same
#     extension members, the same
#     pg_extension_config_dump registrations, no objects left outside the
#     extension, and the same `pg_dump --schema-only`, both plain and with
#     --binary-upgrade (the plain dump shows only CREATE EXTENSION, since
#     pg_dump leaves extension members out; the binary-upgrade one lists
#     every table, column, constraint, index, trigger, view, function and
#     privilege).  A difference is printed as a diff.  Every version
#     before the default (0.1, and 0.2 created through its update chain)
#     is updated and compared with the built script's install.
#
# The versions come from what is installed (this tests the installation,
# so run `make install` first), never from a list in here: every version
# named by a script wgpeer--*.sql in $(pg_config --sharedir)/extension,
# other than the installed wgpeer.control's default_version, is created,
# filled and updated in its own database; a version with no install script
# of its own is created through its update chain, as PostgreSQL does.
# While the default version is the only one (0.1, no upgrade script) the
# update of 0.1 is a no-op: the test says so and still runs every check,
# so it is known to work before the first upgrade script exists.
#
# The apply worker is preloaded but serves database postgres (the default
# wgpeer.database), which has no extension: it waits there and never
# touches the test databases, so nothing but the upgrade changes their
# rows between the two snapshots.  No WireGuard interface is needed.  (Not
# covered, then: a worker running in the database during the update.)
#
# pg_dump --binary-upgrade is meant for pg_upgrade but reads an ordinary
# server just as well; here it is only read and compared, never restored.
#
# Run as root after `make install`:  bash test/upgrade.sh
# (PG_CONFIG and PG_BIN select another PostgreSQL installation.)
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-pg_config}
PG_BIN=${PG_BIN:-$("$PG_CONFIG" --bindir)}
. test/cluster.sh
. test/tap.sh

# Columns an upgrade step changes on purpose, by step ("A--B", as in the
# script name wgpeer--A--B.sql): "table.column" entries, space-separated.
# Their values are left out of the before/after comparison of every
# upgrade that runs that step, and the test prints that it did so.  A
# column an upgrade drops must be listed here too.  Example:
#   [0.1--0.2]="peer.status queue.op"
declare -A CHANGED_COLUMNS=()

EXTDIR=$("$PG_CONFIG" --sharedir)/extension
TMP=$(mktemp -d /tmp/wgpeer-upgrade.XXXXXX)
trap 'cluster_stop; rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# in_db DB COMMAND...: run COMMAND (q, sql_true, cluster_psql...) against
# database DB instead of $CLUSTER_DB
in_db() {
	local CLUSTER_DB=$1
	shift
	"$@"
}

# dump DB [pg_dump args...]: pg_dump of DB on stdout, as the cluster's user
dump() {
	local db=$1
	shift
	runuser -u "$WGPEER_USER" -- "$PG_BIN/pg_dump" -h "$CLUSTER_DIR" \
		-U postgres "$@" "$db"
}

# normalise: stdin to stdout with only what legitimately differs between
# two databases of one cluster replaced by placeholders or taken out: the
# random key of pg_dump's \restrict and \unrestrict lines, and, in
# binary-upgrade dumps, object OIDs (the tables registered with
# pg_extension_config_dump among them) and relfilenodes, frozen transaction
# and multixact ids, the WAL positions of
# binary_upgrade_set_next_attribute_versions, the values of sequences
# (data, not schema: upgrade_from compares them with their values before
# the update), and dropped columns: a table an upgrade dropped a column
# from keeps it, invisible to SQL, as "........pg.dropped.N........",
# which a fresh table never had (compare_schema names those it finds),
# and the "missing values" of columns an upgrade added with a default:
# the value the rows older than the column read
# (binary_upgrade_set_missing_value), storage history a fresh table never
# has either (compare_schema names those too; the column's default itself
# is compared).  Nothing else is touched, so every object, column,
# constraint and privilege stays.
normalise() {
	sed -E \
		-e 's/^\\(un)?restrict [A-Za-z0-9]+$/\\\1restrict KEY/' \
		-e "s/'[0-9]+'::pg_catalog\\.oid/'OID'::pg_catalog.oid/g" \
		-e "s/'\\{[0-9,]*\\}'::pg_catalog\\.oid\\[\\]/'{OIDS}'::pg_catalog.oid[]/g" \
		-e "s/^WHERE oid = '[0-9]+';$/WHERE oid = 'OID';/" \
		-e "s/relfrozenxid = '[0-9]+', relminmxid = '[0-9]+'/relfrozenxid = 'XID', relminmxid = 'MXID'/" \
		-e "/binary_upgrade_set_next_attribute_versions/s/'\\{[^}]*\\}'/'{LSNS}'/" \
		-e "/binary_upgrade_create_empty_extension/s/'\\{[0-9,]+\\}'/'{OIDS}'/" \
		-e "s/^(SELECT pg_catalog\\.setval\\('[^']+', )[0-9]+, (true|false)\\);$/\\1N, CALLED);/" |
		perl -0pe '
			s/,\n {4}"\.{8}pg\.dropped\.\d+\.{8}" [^\n]*?\/\* dummy \*\///g;
			s/\(\n {4}"\.{8}pg\.dropped\.\d+\.{8}" [^\n]*?\/\* dummy \*\/,\n/(\n/g;
			s/^-- For binary upgrade, recreate dropped column\.\n.*?\n\n//msg;
			s/\n-- set missing value\.\nSELECT pg_catalog\.binary_upgrade_set_missing_value\([^\n]*\);\n\n//g;
		'
}

# compare_files DESCRIPTION WANT GOT WANT_LABEL GOT_LABEL: one result,
# passed when the files are equal; otherwise their whole unified diff,
# indented, under the "not ok" line
compare_files() {
	if cmp -s "$2" "$3"; then
		ok "$1"
		return
	fi
	not_ok "$1"
	diff -u --label "$4" --label "$5" "$2" "$3" | sed 's/^/   /' || true
}

# note TEXT: a TAP comment line, for what the test decided rather than checked
note() { echo "# $*"; }

# ---------------------------------------------------------------------------
# The sample data
# ---------------------------------------------------------------------------

# populate DB VERSION: fill DB, where wgpeer VERSION was just created, with
# data through that version's API, so every table holds rows and peers are
# in every state: two interfaces (IPv4 + IPv6 with generated keys; a
# public key only, a narrowed pool, no preshared keys, exclusive, uapi),
# peers live, never expiring, with their own key, active, renewed, expired
# in the grace period and revoked (their address in free_address), queued
# changes one of which failed, and the rows only the worker writes
# (worker_state, device, device_peer, peer_traffic), inserted as it would.
# Everything here is in wgpeer 0.1; a later version that renames or drops
# one of these functions gets its own case below.
populate() {
	local db=$1 version=$2
	case $version in
	*) ;;	# the 0.1 API below works for every version so far
	esac
	in_db "$db" cluster_psql <<-'SQL'
		SELECT name FROM wgpeer.wg_add_interface('wg0', 'vpn.example.com:51820',
			'10.77.0.1/24', address6 => 'fd77::1/64', dns => '1.1.1.1, example.com',
			mtu => 1420, persistent_keepalive => 25) \g /dev/null
		SELECT name FROM wgpeer.wg_add_interface('wg1', '[2001:db8::1]:51821',
			'10.78.0.1/24', listen_port => 51821,
			public_key => wgpeer.wg_pubkey(wgpeer.wg_genkey()),
			pool_start => '10.78.0.10', pool_end => '10.78.0.20',
			allowed_ips => '10.78.0.0/24', preshared_keys => false,
			exclusive => true, backend => 'uapi') \g /dev/null

		SELECT peer_id AS alice FROM wgpeer.wg_create_peer('alice', interface => 'wg0') \gset
		SELECT peer_id AS alice2 FROM wgpeer.wg_create_peer('alice', 3, interface => 'wg0',
			config_name => 'alice-laptop') \gset
		SELECT peer_id AS bob FROM wgpeer.wg_create_peer('bob', NULL, dns => '9.9.9.9',
			config_name => 'bob-phone', interface => 'wg0') \gset
		SELECT peer_id AS erin FROM wgpeer.wg_create_peer('erin', interface => 'wg0') \gset
		SELECT peer_id AS frank FROM wgpeer.wg_create_peer('frank', 1, interface => 'wg0') \gset
		SELECT peer_id AS carol FROM wgpeer.wg_create_peer('carol', 12, interface => 'wg1',
			public_key => wgpeer.wg_pubkey(wgpeer.wg_genkey())) \gset
		SELECT peer_id AS dave FROM wgpeer.wg_create_peer('dave', interface => 'wg1') \gset

		-- revoked: address back in free_address, a remove queued
		SELECT wgpeer.wg_revoke_peer(:'alice') \g /dev/null
		SELECT wgpeer.wg_revoke_peer(:'dave') \g /dev/null
		-- renewed
		SELECT wgpeer.wg_renew_peer(:'frank', 2) \g /dev/null
		-- expired, still within the grace period (address held)
		UPDATE wgpeer.peer SET expires_at = now() - interval '1 hour'
			WHERE peer_id = :'erin';
		SELECT wgpeer.wg_expire_peers() \g /dev/null

		-- What the apply worker writes: bob and carol applied (active,
		-- their changes gone), a failed attempt on another change, the
		-- state of wg0 as read from its device, traffic samples.
		UPDATE wgpeer.peer SET status = 'active'
			WHERE peer_id IN (:'bob', :'carol');
		DELETE FROM wgpeer.queue WHERE peer_id IN (:'bob', :'carol');
		UPDATE wgpeer.queue SET attempts = 2,
			last_error = 'interface "wg0" does not exist',
			next_attempt_at = now() + interval '30 seconds'
			WHERE peer_id = :'alice2';
		INSERT INTO wgpeer.worker_state (interface, last_success_at, last_error,
				last_error_at, failures, retry_at)
			VALUES ('wg0', now() - interval '1 day', 'interface "wg0" does not exist',
				now(), 2, now() + interval '30 seconds');
		INSERT INTO wgpeer.device (interface, sampled_at, error, reconciled_at,
				added, corrected, removed, foreign_peers, reconcile_error)
			VALUES ('wg0', now(), NULL, now(), 2, 1, 1, 0, NULL),
				   ('wg1', now(), 'no such device', NULL, NULL, NULL, NULL, NULL,
					'no such device');
		INSERT INTO wgpeer.device_peer (interface, public_key, endpoint, allowed_ips,
				latest_handshake, rx_bytes, tx_bytes, persistent_keepalive)
			SELECT interface, public_key, '192.0.2.7:40000', host(address) || '/32',
				   now(), 1000, 2000, 25
			FROM wgpeer.peer WHERE peer_id IN (:'bob', :'alice2');
		INSERT INTO wgpeer.peer_traffic (peer_id, rx_bytes, tx_bytes,
				latest_handshake, endpoint, sampled_at)
			SELECT peer_id, 4096, 8192, now(), '192.0.2.7:40000', now()
			FROM wgpeer.peer WHERE peer_id IN (:'bob', :'alice2');
	SQL
}

# upgrade_window DB T: DB is still at its old version while this library
# is installed (the window before ALTER EXTENSION wgpeer UPDATE).  What
# the API changes there must reach the queue, or the worker (once the
# update lets it run) never applies it and new peers stay 'creating' for
# ever: 0.1 has no queue trigger, and the functions of this library rely
# on one.  A creation queues the addition, an expiry the removal, a
# renewal from expiry the addition again.  The worker serves another
# database: the session is told so (a NOTICE, once).
upgrade_window() {
	local db=$1 t=$2 peer
	peer=$(in_db "$db" q -c "SELECT peer_id FROM wgpeer.wg_create_peer('window',
		interface => 'wg0')" 2>"$TMP/window.err")
	check "$t: in the upgrade window, wg_create_peer queues the addition" \
		in_db "$db" sql_true "SELECT array_agg(op ORDER BY change_id) = '{add}'
			FROM wgpeer.queue WHERE peer_id = '$peer'"
	check "$t: a session in a database no worker serves is told so (NOTICE)" \
		grep -q 'NOTICE: .*apply worker serves database "postgres", not "'"$db"'"' \
		"$TMP/window.err"
	in_db "$db" q -c "UPDATE wgpeer.peer SET expires_at = now() - interval '1 hour'
		WHERE peer_id = '$peer'" >/dev/null
	in_db "$db" q -c "SELECT wgpeer.wg_expire_peers()" >/dev/null
	in_db "$db" q -c "SELECT status FROM wgpeer.wg_renew_peer('$peer', 1)" >/dev/null
	check "$t: in the upgrade window, wg_expire_peers and wg_renew_peer queue the removal and the addition" \
		in_db "$db" sql_true "SELECT array_agg(op ORDER BY change_id) = '{add,remove,add}'
			FROM wgpeer.queue WHERE peer_id = '$peer'"
}

# The tables in schema wgpeer, as a view for the session: per table its
# columns but those in the psql variable skip (a text[] literal of
# "table.column" entries), and the order of its rows (the primary key, or
# the whole row for a table without one).
SNAPSHOT_TABLES=$(cat <<-'SQL'
	CREATE TEMP VIEW snapshot_table AS
	SELECT c.relname AS tbl,
		   coalesce(cols, '') AS cols,
		   coalesce(pk, format('ROW(%s)::text', cols)) AS orderby
	FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	CROSS JOIN LATERAL (
		SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) AS cols
		FROM pg_attribute a
		WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		  AND NOT (c.relname || '.' || a.attname = ANY (:'skip'::text[]))) ac
	CROSS JOIN LATERAL (
		SELECT string_agg(format('%I', a.attname), ', '
						  ORDER BY array_position(i.indkey::int2[], a.attnum)) AS pk
		FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid = c.oid AND i.indisprimary) ap
	WHERE n.nspname = 'wgpeer' AND c.relkind IN ('r', 'p');
SQL
)

# snapshot_scripts DB DIR SKIP: write DIR/digest.sql, DIR/rows.sql and
# DIR/columns from DB's catalog, so that the same statements, naming the
# same columns, read the tables before and after the update.  digest.sql
# gives per table its name, row count and the md5 of its rows in primary
# key order; rows.sql lists every row, to show what changed when a digest
# differs; columns lists every column as table.column.  SKIP is a text[]
# literal of "table.column" entries left out of digest.sql and rows.sql.
snapshot_scripts() {
	local db=$1 dir=$2 skip=$3
	{
		echo "$SNAPSHOT_TABLES"
		cat <<-'SQL'
			SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(ROW(%s)::text, '
						  'E''\n'' ORDER BY %s), '''')) FROM wgpeer.%I;',
						  tbl, cols, orderby, tbl)
			FROM snapshot_table ORDER BY tbl;
		SQL
	} | in_db "$db" q -v skip="$skip" >"$dir/digest.sql"
	{
		echo "$SNAPSHOT_TABLES"
		cat <<-'SQL'
			SELECT format('SELECT %L, ROW(%s)::text FROM wgpeer.%I ORDER BY %s;',
						  tbl, cols, tbl, orderby)
			FROM snapshot_table ORDER BY tbl;
		SQL
	} | in_db "$db" q -v skip="$skip" >"$dir/rows.sql"
	in_db "$db" q >"$dir/columns" <<-'SQL'
		SELECT format('%s.%s', c.relname, a.attname)
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE n.nspname = 'wgpeer' AND c.relkind IN ('r', 'p')
		ORDER BY 1;
	SQL
}

# ---------------------------------------------------------------------------
# One upgrade: from VERSION to the default, in its own database
# ---------------------------------------------------------------------------

# upgrade_from VERSION: the whole test of one source version; each result
# is prefixed with "VERSION -> DEFAULT"
upgrade_from() {
	local from=$1 db dir t path skip="" step col new_peer old_max
	local -a steps=()
	db=from_${from//[^A-Za-z0-9]/_}
	dir=$TMP/$db
	t="$from -> $DEFAULT"
	mkdir -p "$dir"
	chown "$WGPEER_USER" "$dir"	# psql, run as that user, reads scripts from it

	q -c "CREATE DATABASE $db"
	if ! in_db "$db" q -c "CREATE EXTENSION wgpeer VERSION '$from'" >/dev/null; then
		not_ok "$t: CREATE EXTENSION wgpeer VERSION '$from'"
		return
	fi
	ok "$t: CREATE EXTENSION wgpeer VERSION '$from'"

	# the update steps and the columns they change on purpose
	if [ "$from" != "$DEFAULT" ]; then
		path=$(q -c "SELECT path FROM pg_extension_update_paths('wgpeer')
			WHERE source = '$from' AND target = '$DEFAULT'")
		if [ -z "$path" ]; then
			not_ok "$t: an update path exists (no chain of wgpeer--A--B.sql scripts leads there)"
			return
		fi
		ok "$t: update path $path"
		IFS=' ' read -r -a steps <<<"$(echo "$path" |
			awk -F-- '{ for (i = 1; i < NF; i++) printf "%s--%s ", $i, $(i + 1) }')"
	fi
	for step in "${steps[@]}"; do
		for col in ${CHANGED_COLUMNS[$step]:-}; do
			skip+="${skip:+,}$col"
			note "$t: $col is changed by $step on purpose (CHANGED_COLUMNS): its values are not compared"
		done
	done

	if ! populate "$db" "$from"; then
		not_ok "$t: sample data written through the $from API"
		return
	fi
	ok "$t: sample data written through the $from API"
	upgrade_window "$db" "$t"

	# before: digests, rows, configs, sequences
	snapshot_scripts "$db" "$dir" "{$skip}"
	mv "$dir/columns" "$dir/columns.before"
	in_db "$db" q -f "$dir/digest.sql" >"$dir/digest.before"
	in_db "$db" q -f "$dir/rows.sql" >"$dir/rows.before"
	sequence_state "$db" >"$dir/sequences.before"
	configs "$db" >"$dir/configs.before"
	old_max=$(in_db "$db" q -c "SELECT coalesce(max(change_id), 0) FROM wgpeer.queue")
	note "$t: before the update: $(awk -F'\t' '{ printf "%s%s %s", sep, $1, $2; sep = ", " }' \
		"$dir/digest.before") rows"

	# the update itself
	if ! in_db "$db" q -c "ALTER EXTENSION wgpeer UPDATE" 2>"$dir/update.log"; then
		not_ok "$t: ALTER EXTENSION wgpeer UPDATE"
		sed 's/^/   /' "$dir/update.log"
		return
	fi
	if [ "$from" = "$DEFAULT" ]; then
		note "$t: no upgrade script: ALTER EXTENSION wgpeer UPDATE is a no-op" \
			"($(tr -d '\n' <"$dir/update.log")); every check below still runs"
	fi
	ok "$t: ALTER EXTENSION wgpeer UPDATE"
	same "$t: the extension reports the default version" "$DEFAULT" \
		"$(in_db "$db" q -c "SELECT extversion FROM pg_extension WHERE extname = 'wgpeer'")"
	check "$t: the keys the old version may have put on the interfaces are managed (peers past creating, queued removals)" \
		in_db "$db" sql_true "SELECT NOT EXISTS (
			SELECT interface, public_key FROM wgpeer.peer WHERE status <> 'creating'
			UNION SELECT interface, public_key FROM wgpeer.queue WHERE op = 'remove'
			EXCEPT SELECT interface, public_key FROM wgpeer.managed_key)
			AND (SELECT count(*) > 0 FROM wgpeer.managed_key)"

	# after: the same statements over the same columns (all of them, even
	# when one fails, so that its error shows in place of its table)
	in_db "$db" q -v ON_ERROR_STOP=0 -f "$dir/digest.sql" >"$dir/digest.after" 2>&1 || true
	in_db "$db" q -v ON_ERROR_STOP=0 -f "$dir/rows.sql" >"$dir/rows.after" 2>&1 || true
	compare_files "$t: every table's rows unchanged (count and md5 per table)" \
		"$dir/digest.before" "$dir/digest.after" "digest before" "digest after"
	if ! cmp -s "$dir/digest.before" "$dir/digest.after"; then
		compare_files "$t: the rows themselves" "$dir/rows.before" "$dir/rows.after" \
			"rows before" "rows after"
	fi
	sequence_state "$db" >"$dir/sequences.after"
	configs "$db" >"$dir/configs.after"
	# sequences the update created are new, not changed
	awk -F'\t' 'NR == FNR { old[$1] = 1; next } ($1 in old)' \
		"$dir/sequences.before" "$dir/sequences.after" >"$dir/sequences.kept"
	awk -F'\t' 'NR == FNR { old[$1] = 1; next } !($1 in old) { print $1 }' \
		"$dir/sequences.before" "$dir/sequences.after" |
		sed "s/^/# $t: new sequence /"
	compare_files "$t: every sequence's state unchanged" \
		"$dir/sequences.before" "$dir/sequences.kept" "before" "after"
	compare_files "$t: stored peers render the same configs" \
		"$dir/configs.before" "$dir/configs.after" "before" "after"
	snapshot_scripts "$db" "$dir" "{}"
	comm -13 "$dir/columns.before" "$dir/columns" | while read -r col; do
		note "$t: new column $col (its values in the old rows are not compared)"
	done
	same "$t: no column disappeared without being listed in CHANGED_COLUMNS" "" \
		"$(lost_columns "$dir/columns.before" "$dir/columns" "$skip")"

	# the API after the update
	same "$t: every sequence is ahead of the values in its column" "" \
		"$(sequences_behind "$db")"
	check "$t: wg_renew_peer on a peer created before the update" in_db "$db" sql_true \
		"SELECT r.status = 'creating' FROM wgpeer.peer p,
			wgpeer.wg_renew_peer(p.peer_id, 1) r WHERE p.user_id = 'frank'"
	check "$t: wg_revoke_peer on a peer created before the update" in_db "$db" sql_true \
		"SELECT r.status = 'revoked' FROM wgpeer.peer p,
			wgpeer.wg_revoke_peer(p.peer_id) r WHERE p.user_id = 'bob'"
	check "$t: wg_list_user_peers" in_db "$db" sql_true \
		"SELECT count(*) = 1 FROM wgpeer.wg_list_user_peers('alice')"
	check "$t: wg_expire_peers" in_db "$db" sql_true \
		"SELECT wgpeer.wg_expire_peers() = 0"
	# called in FROM, as the README does: a function returning a table's
	# row type must still match the table after columns were added to or
	# dropped from it
	if in_db "$db" sql_true "SELECT i.name = 'wg2' FROM wgpeer.wg_add_interface('wg2',
			'vpn2.example.com:51822', '10.79.0.1/24', listen_port => 51822) i"; then
		ok "$t: wg_add_interface, called in FROM"
		check "$t: wg_next_ip on the new interface" in_db "$db" sql_true \
			"SELECT wgpeer.wg_next_ip('wg2') = '10.79.0.2'"
		check "$t: wg_remove_interface of the new interface" in_db "$db" sql_true \
			"SELECT wgpeer.wg_remove_interface('wg2') = 0"
	else
		not_ok "$t: wg_add_interface, called in FROM"
	fi
	if new_peer=$(in_db "$db" q -c "SELECT peer_id FROM wgpeer.wg_create_peer(
			'after-update', interface => 'wg0')" 2>"$dir/create.err") && [ -n "$new_peer" ]; then
		ok "$t: wg_create_peer after the update"
		check "$t: its queued change continues the identity sequence (change_id > $old_max)" \
			in_db "$db" sql_true "SELECT min(change_id) > $old_max FROM wgpeer.queue
				WHERE peer_id = '$new_peer'"
		check "$t: wg_peer_config renders it (its address, wg0's key and endpoint)" \
			in_db "$db" sql_true "SELECT wgpeer.wg_peer_config(p.peer_id)
					LIKE '%Address = ' || host(p.address) || '/32%'
				AND wgpeer.wg_peer_config(p.peer_id) LIKE '%PublicKey = ' || i.public_key || '%'
				AND wgpeer.wg_peer_config(p.peer_id) LIKE '%Endpoint = ' || i.endpoint || '%'
				FROM wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface
				WHERE p.peer_id = '$new_peer'"
	else
		not_ok "$t: wg_create_peer after the update"
		sed 's/^/   /' "$dir/create.err"
	fi

	compare_schema "$t" "$db"
}

# sequence_state DB: every sequence in schema wgpeer with its last value
sequence_state() {
	in_db "$1" q <<-'SQL'
		SELECT format('SELECT %L, last_value, is_called FROM wgpeer.%I;', c.relname, c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'wgpeer' AND c.relkind = 'S' ORDER BY c.relname \gexec
	SQL
}

# configs DB: the md5 of every stored peer's client config (revoked peers
# have none), by peer
configs() {
	in_db "$1" q -c "SELECT peer_id, md5(wgpeer.wg_peer_config(peer_id))
		FROM wgpeer.peer WHERE status <> 'revoked' ORDER BY peer_id"
}

# lost_columns BEFORE AFTER SKIP: the columns (table.column, one a line)
# listed in file BEFORE but neither in file AFTER nor in the comma-separated
# SKIP
lost_columns() {
	comm -23 "$1" "$2" | grep -vxF -f <(tr ',' '\n' <<<"$3") || true
}

# sequences_behind DB: the columns of tables in schema wgpeer fed by a
# sequence (identity or serial) holding a value the sequence would hand
# out again, so that the next insert collides; one a line
sequences_behind() {
	in_db "$1" q <<-'SQL'
		SELECT format($f$SELECT %L WHERE (SELECT max(%I) FROM wgpeer.%I) >=
			(SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM %s);$f$,
			c.relname || '.' || a.attname, a.attname, c.relname,
			pg_get_serial_sequence(format('wgpeer.%I', c.relname), a.attname))
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE n.nspname = 'wgpeer' AND c.relkind IN ('r', 'p')
		  AND pg_get_serial_sequence(format('wgpeer.%I', c.relname), a.attname) IS NOT NULL
		\gexec
	SQL
}

# ---------------------------------------------------------------------------
# The updated schema against a fresh installation
# ---------------------------------------------------------------------------

# members DB: the extension's member objects, described
members() {
	in_db "$1" q -c "SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
		WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
		  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'wgpeer')
		ORDER BY 1"
}

# config_dump DB: the tables registered with pg_extension_config_dump and
# their filter conditions, or "(none)"
config_dump() {
	in_db "$1" q -c "SELECT coalesce(string_agg(cfg::regclass::text || ' ' ||
			coalesce(nullif(cond, ''), '(all rows)'), E'\n' ORDER BY cfg::regclass::text),
			'(none)')
		FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(cfg, cond)
		WHERE e.extname = 'wgpeer'"
}

# loose_objects DB: relations, functions and types in schema wgpeer that
# belong to no extension and to nothing that does (an index, a row or
# array type, a TOAST table or an identity sequence belongs to its table)
loose_objects() {
	in_db "$1" q <<-'SQL'
		WITH obj AS (
			SELECT 'pg_class'::regclass AS classid, c.oid AS objid
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = 'wgpeer'
			UNION ALL
			SELECT 'pg_proc'::regclass, p.oid
			FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE n.nspname = 'wgpeer'
			UNION ALL
			SELECT 'pg_type'::regclass, t.oid
			FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
			WHERE n.nspname = 'wgpeer'
		)
		SELECT pg_describe_object(o.classid, o.objid, 0) FROM obj o
		WHERE NOT EXISTS (SELECT 1 FROM pg_depend d
						  WHERE d.classid = o.classid AND d.objid = o.objid
							AND d.deptype IN ('e', 'i', 'a'))
		  AND NOT EXISTS (SELECT 1 FROM pg_type t WHERE o.classid = 'pg_type'::regclass
							AND t.oid = o.objid AND t.typrelid <> 0)
		ORDER BY 1
	SQL
}

# altered_columns DB CONDITION: the columns (table.column, comma-separated)
# in schema wgpeer whose pg_attribute row a meets CONDITION: a.attisdropped
# (a column an ALTER TABLE dropped) or a.atthasmissing (one it added with a
# default, which older rows read), what only a history of ALTER TABLE
# leaves; fails when the query does
altered_columns() {
	in_db "$1" q -v ON_ERROR_STOP=1 -c "SELECT string_agg(c.relname || '.' || a.attname, ', '
			ORDER BY c.relname, a.attnum)
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'wgpeer' AND a.attnum > 0 AND ($2)"
}

# compare_schema TITLE DB: DB, just updated, against database fresh (the
# files compared are written to $TMP/DB/)
compare_schema() {
	local t=$1 db=$2 d=$TMP/$2 f dropped missing
	for f in fresh "$db"; do
		members "$f" >"$d/members.$f"
		dump "$f" --schema-only | normalise >"$d/dump.$f"
		dump "$f" --schema-only --binary-upgrade | normalise >"$d/dump-bu.$f"
	done
	dropped=$(in_db "$db" q -c "SELECT string_agg(DISTINCT c.relname, ', ')
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'wgpeer' AND a.attisdropped")
	if [ -n "$dropped" ]; then
		note "$t: dropped columns (kept, invisible to SQL) in: $dropped;" \
			"the binary-upgrade dump comparison leaves them out"
	fi
	missing=$(altered_columns "$db" a.atthasmissing)
	if [ -n "$missing" ]; then
		note "$t: columns added with a default, whose value older rows read:" \
			"$missing; the binary-upgrade dump comparison leaves the values out"
	fi
	same "$t: the same pg_extension_config_dump registrations as a fresh install" \
		"$(config_dump fresh)" "$(config_dump "$db")"
	compare_files "$t: the same extension members as a fresh install" \
		"$d/members.fresh" "$d/members.$db" "fresh" "$db"
	none "$t: no object in schema wgpeer outside the extension" loose_objects "$db"
	compare_files "$t: pg_dump --schema-only equals a fresh install's" \
		"$d/dump.fresh" "$d/dump.$db" "fresh" "$db"
	compare_files "$t: pg_dump --schema-only --binary-upgrade (every member object) equals a fresh install's" \
		"$d/dump-bu.fresh" "$d/dump-bu.$db" "fresh" "$db"
}

# ---------------------------------------------------------------------------
# The versions installed, then one cluster for all of them
# ---------------------------------------------------------------------------

# not_installed: the files of this checkout's wgpeer.control and
# sql/wgpeer--*.sql that are not installed as they are here, one a line
# (an upgrade script missing from DATA in the Makefile shows here, and so
# does a checkout changed since `make install`)
not_installed() {
	local f
	for f in wgpeer.control sql/wgpeer--*.sql; do
		cmp -s "$f" "$EXTDIR/${f##*/}" || echo "$f"
	done
}

# installed_versions: every version named by an installed wgpeer--*.sql
# (wgpeer--X.sql, wgpeer--A--B.sql), one a line, oldest first
installed_versions() {
	local f name
	for f in "$EXTDIR"/wgpeer--*.sql; do
		[ -e "$f" ] || continue
		name=${f##*/wgpeer--}
		name=${name%.sql}
		echo "${name%%--*}"
		[ "$name" = "${name#*--}" ] || echo "${name#*--}"
	done | sort -uV
}

if [ "$(id -u)" -ne 0 ]; then
	echo "test/upgrade.sh creates a throwaway cluster as $WGPEER_USER: run it as root" >&2
	exit 1
fi
if [ ! -f "$EXTDIR/wgpeer.control" ]; then
	echo "wgpeer is not installed in $EXTDIR: run make install first" >&2
	exit 1
fi
DEFAULT=$(sed -nE "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'([^']*)'.*/\1/p" \
	"$EXTDIR/wgpeer.control")
mapfile -t VERSIONS < <(installed_versions)
note "installed in $EXTDIR: versions ${VERSIONS[*]}; default_version $DEFAULT;" \
	"upgrade scripts: $(cd "$EXTDIR" && ls wgpeer--*--*.sql 2>/dev/null | tr '\n' ' ' || echo none)"

same "the installed control file and scripts are this checkout's" "" \
	"$(not_installed)"

cluster_start "$TMP/pg" "wgpeer.database = 'postgres'"

check "the worker says in the server log that its database has no wgpeer" \
	wait_until 60 grep -q 'apply worker serves database "postgres", where the extension wgpeer is not installed' \
	"$TMP/pg/server.log"
same "PostgreSQL's default_version is the control file's" "$DEFAULT" \
	"$(q -c "SELECT default_version FROM pg_available_extensions WHERE name = 'wgpeer'")"

q -c "CREATE DATABASE fresh"
if ! in_db fresh q -c "CREATE EXTENSION wgpeer"; then
	not_ok "CREATE EXTENSION wgpeer in a fresh database"
	tap_summary upgrade
	exit 1
fi
same "CREATE EXTENSION wgpeer in a fresh database gives the default version" "$DEFAULT" \
	"$(in_db fresh q -c "SELECT extversion FROM pg_extension WHERE extname = 'wgpeer'")"
# PostgreSQL runs the target version's own install script when there is
# one, the update chain only when there is none: the built script must be
# there, and what ran must have been it (an install through the chain has
# the columns its ALTER TABLEs added with a default, or dropped).
check "the default version $DEFAULT has its own install script (built from sql/schema/)" \
	test -f "$EXTDIR/wgpeer--$DEFAULT.sql"
if history=$(altered_columns fresh "a.attisdropped OR a.atthasmissing"); then
	same "the fresh install ran that script, not the update chain (no column dropped, or added with a default, by ALTER TABLE)" \
		"" "$history"
else
	not_ok "the fresh install ran that script, not the update chain (the query of pg_attribute failed)"
fi
if [ "$(config_dump fresh)" = "(none)" ]; then
	note "no table is registered with pg_extension_config_dump: pg_dump saves no wgpeer rows"
fi

FROM_VERSIONS=()
for v in "${VERSIONS[@]}"; do
	[ "$v" = "$DEFAULT" ] || FROM_VERSIONS+=("$v")
done
if [ ${#FROM_VERSIONS[@]} -eq 0 ]; then
	note "$DEFAULT is the only version: updating $DEFAULT to itself (a no-op) checks the test itself"
	FROM_VERSIONS=("$DEFAULT")
fi
for v in "${FROM_VERSIONS[@]}"; do
	upgrade_from "$v"
done

tap_summary upgrade
