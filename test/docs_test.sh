#!/bin/bash
# test/docs_test.sh: the documentation, run as written.
#
# 1. README.md's Quick start, its shell and SQL blocks in order, on a
#    cluster of Debian's own tooling (pg_createcluster, pg_ctlcluster,
#    conf.d) and wireguard-go, in a network namespace of its own: the
#    blocks run as root there, the SQL ones with the README's own
#    `runuser -u postgres -- psql vpn`; then a client in a second
#    namespace comes up from the alice.conf the README wrote and pings the
#    server through the tunnel.  The only changes to the text are names
#    that would clash with the machine or another test, made by sed below
#    and printed: the cluster ("15 main"), the interface ("wg0") and the
#    server's address ("vpn.example.com").
# 2. README.md's API tour, run after it against the same database.
# 3. Every function signature in README.md and docs/*.md against pg_proc:
#    a documented function must exist with exactly the documented argument
#    names, in order.
# 4. Every other SQL block of docs/*.md, each in a transaction rolled
#    back, and every shell block as postgres, against the same database.
# Blocks marked <!-- doc-test: skip (reason) --> are listed with their
# reason.  Steps with a kernel and a userspace way (<!-- doc-test: only
# kernel|userspace -->) run the userspace one (wireguard-go), or with
# --kernel the kernel one (in the test VM: bash test/vm/run.sh
# test/docs_test.sh --kernel), the client then on the kernel too.
# Run as root after `make install`:  bash test/docs_test.sh [--kernel]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. test/tap.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "test/docs_test.sh makes network namespaces and a cluster: run it as root" >&2
	exit 1
fi
MAJOR=$(pg_config --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
CL=wgdoc$$
DEV=wgdoc$(($$ % 10000))
NS_S=wgpeer-doc-srv-$$
NS_C=wgpeer-doc-cli-$$
SERVER_IP=192.168.248.1
TMP=$(mktemp -d /tmp/wgpeer-docs.XXXXXX)
chmod 755 "$TMP"
RUN_DIR_WAS=$(stat -c '%a %U %G' /var/run/wireguard 2>/dev/null || true)
VARIANT=userspace
WGPEER_BACKEND=uapi
if [ "${1:-}" = --kernel ]; then
	VARIANT=kernel
	WGPEER_BACKEND=netlink
fi
WG_DEV_LOGS=$TMP
. test/cluster.sh
. test/wireguard.sh

cleanup() {
	# the README starts wireguard-go itself, not through wg_dev_add
	pkill -f "^wireguard-go $DEV\$" 2>/dev/null || true
	wg_dev_cleanup
	pg_dropcluster --stop "$MAJOR" "$CL" 2>/dev/null || true
	# what the README wrote into the cluster's conf.d as root stays behind
	rm -rf "/etc/postgresql/$MAJOR/$CL"
	ip netns del "$NS_S" 2>/dev/null || true
	ip netns del "$NS_C" 2>/dev/null || true
	if [ -n "$RUN_DIR_WAS" ]; then
		read -r mode owner group <<<"$RUN_DIR_WAS"
		chown "$owner:$group" /var/run/wireguard && chmod "$mode" /var/run/wireguard
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

# The README's names, made private to this run.
localize() {
	sed -e "s/$MAJOR main/$MAJOR $CL/g" \
		-e "s|/etc/postgresql/$MAJOR/main|/etc/postgresql/$MAJOR/$CL|g" \
		-e "s/postgresql@$MAJOR-main/postgresql@$MAJOR-$CL/g" \
		-e "s/\\bwg0\\b/$DEV/g" \
		-e "s/\\([^.a-z0-9-]\\|^\\)vpn\\.example\\.com/\\1$SERVER_IP/g" "$@"
}

# run_blocks DIR: every block in DIR, in order, in the server's namespace:
# shell blocks with bash as root, SQL blocks with the README's psql.
run_blocks() {
	local f
	for f in "$1"/*; do
		echo "---- $(basename "$f") (as run):"
		localize "$f" | tee "$f.run"
		case $f in
		*.sh)
			(cd "$TMP" && ip netns exec "$NS_S" env PGCLUSTER="$MAJOR/$CL" \
				bash -euo pipefail "$f.run") || return 1
			;;
		*.sql)
			(cd "$TMP" && ip netns exec "$NS_S" runuser -u postgres -- \
				env PGCLUSTER="$MAJOR/$CL" psql -X -v ON_ERROR_STOP=1 vpn \
				-f "$f.run") || return 1
			;;
		esac
	done
}

echo "== the network: server and client namespaces, a veth pair"
ip netns add "$NS_S"
ip netns add "$NS_C"
veth_pair "$NS_S" doc-s "$SERVER_IP/24" "$NS_C" doc-c 192.168.248.2/24
# Debian's cluster tooling, as a fresh machine has it: a cluster of its own
# (running, as the package leaves it), in the server's namespace
pg_createcluster "$MAJOR" "$CL" >/dev/null
ip netns exec "$NS_S" pg_ctlcluster "$MAJOR" "$CL" start

echo "== 1. README.md: Quick start ($VARIANT)"
mkdir "$TMP/quickstart"
perl test/doc_blocks.pl README.md "$TMP/quickstart" quickstart "$VARIANT" >/dev/null
check "the quick start has shell and SQL blocks" \
	test "$(ls "$TMP/quickstart" | wc -l)" -ge 4
check "the quick start runs as written" run_blocks "$TMP/quickstart"
q_doc() {
	runuser -u postgres -- env PGCLUSTER="$MAJOR/$CL" psql -XAt vpn -c "$1"
}
alice_active() {
	[ "$(q_doc "SELECT status FROM wgpeer.peer WHERE user_id = 'alice@example.com'")" = active ]
}
check "alice's peer becomes active on $DEV" wait_until 30 alice_active
check "wg show $DEV lists it" \
	sh -c "ip netns exec '$NS_S' wg show '$DEV' peers | grep -qx \"\$(runuser -u postgres -- env PGCLUSTER='$MAJOR/$CL' psql -XAt vpn -c \"SELECT public_key FROM wgpeer.peer WHERE user_id = 'alice@example.com'\")\""
check "the README wrote alice.conf" test -s "$TMP/alice.conf"
wg_client_up docc0 "$NS_C" "$TMP/alice.conf" 10.10.0.0/24
check "a client from alice.conf pings the server through the tunnel" \
	ip netns exec "$NS_C" ping -c 3 -i 0.3 -W 2 10.10.0.1
handshake_seen() {
	[ "$(q_doc "SELECT count(*) FROM wgpeer.wg_show('$DEV') WHERE latest_handshake IS NOT NULL")" = 1 ]
}
check "wg_show('$DEV') shows the handshake" wait_until 30 handshake_seen

echo "== 2. README.md: the API tour"
mkdir "$TMP/tour"
perl test/doc_blocks.pl README.md "$TMP/tour" tour "$VARIANT" >/dev/null
check "the tour has a block" test "$(ls "$TMP/tour" | wc -l)" -ge 1
check "the tour runs as written" run_blocks "$TMP/tour"
check "bob was revoked at the end of it" \
	test "$(q_doc "SELECT status FROM wgpeer.peer WHERE user_id = 'bob@example.com'")" = revoked

# the rest does not depend on how the interface was made
if [ "$VARIANT" = kernel ]; then
	tap_summary "docs (kernel)"
	exit 0
fi

echo "== 3. documented signatures against pg_proc"
perl test/doc_signatures.pl README.md docs/*.md >"$TMP/signatures"
check "the docs document signatures" test "$(wc -l <"$TMP/signatures")" -ge 15
while IFS=$'\t' read -r name args; do
	check "$name($args) exists as documented" \
		test "$(q_doc "SELECT count(*) FROM pg_proc
			WHERE pronamespace = 'wgpeer'::regnamespace AND proname = '$name'
			  AND coalesce(array_to_string((SELECT array_agg(n ORDER BY i)
			        FROM unnest(proargnames, coalesce(proargmodes::text[],
			             array_fill('i'::text, ARRAY[pronargs])))
			             WITH ORDINALITY AS a(n, m, i)
			        WHERE m IN ('i', 'b', 'v')), ','), '') = '$args'")" = 1
done <"$TMP/signatures"

echo "== 4. docs/*.md: every example, each in a transaction rolled back"
# what the examples take as given: the role they grant to, a second
# interface (removed by one), the users whose peers they change
q_doc "CREATE ROLE app" >/dev/null
q_doc "SELECT wgpeer.wg_add_interface('wg1', '$SERVER_IP:51999', '10.99.0.1/24',
	listen_port => 51999)" >/dev/null
q_doc "SELECT count(*) FROM unnest(ARRAY['branch-office', 'exit-node']) u,
	wgpeer.wg_create_peer(u, interface => '$DEV')" >/dev/null
# is_signature FILE: a block of signatures (checked in part 3), not SQL
is_signature() {
	grep -v '^\s*\(--.*\)\?$' "$1" | head -n 1 | grep -q '^wg_[a-z0-9_]*('
}
# run_example FILE: the block in one transaction, rolled back, as the
# server's postgres with the README's psql
run_example() {
	{
		echo "BEGIN;"
		localize "$1"
		printf '\nROLLBACK;\n'
	} >"$1.run"
	(cd "$TMP" && ip netns exec "$NS_S" runuser -u postgres -- \
		env PGCLUSTER="$MAJOR/$CL" psql -X -q -v ON_ERROR_STOP=1 -v last_seen=0 vpn \
		-f "$1.run" >"$1.out" 2>&1) || { cat "$1.run" "$1.out"; return 1; }
}
examples=0
for doc in docs/*.md; do
	dir=$TMP/docs-$(basename "$doc" .md)
	mkdir "$dir"
	perl test/doc_blocks.pl "$doc" "$dir" 2>&1 >/dev/null | sed 's/^/   /'
	for block in "$dir"/*.sql; do
		[ -e "$block" ] && ! is_signature "$block" || continue
		examples=$((examples + 1))
		check "$doc, block $(basename "$block" .sql), runs" run_example "$block"
	done
	for block in "$dir"/*.sh; do
		[ -e "$block" ] || continue
		examples=$((examples + 1))
		localize "$block" >"$block.run"
		check "$doc, block $(basename "$block" .sh), runs as postgres" \
			ip netns exec "$NS_S" runuser -u postgres -- \
			env PGCLUSTER="$MAJOR/$CL" bash -euo pipefail "$block.run"
	done
done
check "docs/ has examples ($examples run)" test "$examples" -ge 10

tap_summary docs
