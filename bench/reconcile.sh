#!/bin/bash
# Self-healing figures of the apply worker, on either device backend:
#	- reconcile of an interface holding PEERS (default 10,000) peers, when
#	  nothing changed and when 1% drifted (that many peers removed behind
#	  the worker's back), timed from wg_reconcile() in one psql session,
#	  against `wg syncconf` of the same peers (what a tool without a diff
#	  does: read the device, send every peer again) and, as the floor, one
#	  `wg show dump` of the device;
#	- the expiry lag over EXPIRING (default 100) peers whose expires_at are
#	  staggered 100 ms apart: from each expires_at to the first poll of
#	  `wg show` (every few ms; its duration is printed as the resolution)
#	  that no longer lists the peer.  Median and max.
# Run as root after `make install`:
#	bash bench/reconcile.sh [--backend netlink|uapi] [RUNS] [PEERS] [EXPIRING]
# netlink (the default) needs a WireGuard kernel: this one, or Debian's under
# qemu (TCG: everything 10-50x slower than natively) through test/vm/run.sh;
# uapi runs wireguard-go on this host, in a scratch network namespace.
# RUNS (default 5) timings of each kind; medians are quoted.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BACKEND=netlink
if [ "${1:-}" = --backend ]; then
	BACKEND=$2
	shift 2
fi
case $BACKEND in
	netlink|uapi) ;;
	*) echo "bench/reconcile.sh: --backend is netlink or uapi" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
	echo "bench/reconcile.sh makes network namespaces (or boots a VM): run it as root" >&2
	exit 1
fi
# From the command line: go where WireGuard is, and come back here.
if [ -z "${WGPEER_VM_OUT:-}" ]; then
	never=
	[ "$BACKEND" = netlink ] || never=never
	exec env ${never:+WGPEER_VM=$never} bash test/vm/run.sh "$PWD/bench/reconcile.sh" --backend "$BACKEND" "$@"
fi

RUNS=${1:-5}
PEERS=${2:-10000}
EXPIRING=${3:-100}
DRIFT=$((PEERS / 100))
WGPEER_BACKEND=$BACKEND
T=$(mktemp -d /tmp/wgpeer-rb.XXXXXX)
chmod 755 "$T"
WG_DEV_LOGS=$T
. test/cluster.sh
. test/wireguard.sh
. test/tap.sh

cleanup() {
	cluster_stop
	wg_dev_cleanup
	rm -rf "$T"
}
trap cleanup EXIT

ms_since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f\n", (b - a) / 1e6 }'; }
count() { wg show "$1" peers | wc -l; }
# wg_reconcile('wgr') in one session: "added corrected removed ms error";
# error is "-" when the reconcile recorded none
reconcile() {
	q -c '\timing on' -c "SELECT added, corrected, removed,
			coalesce(error, '-') FROM wgpeer.wg_reconcile('wgr')" |
		awk -F'\t' '/^Time: / { ms = $0; sub(/^Time: /, "", ms); sub(/ ms.*/, "", ms); next }
			{ r = $1 " " $2 " " $3; e = $4 } END { print r, ms, e }'
}
# on-CPU milliseconds so far of every thread of process $1 (schedstat: ns)
cpu_ms() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.1f\n", s / 1e6 }'; }
# the CPU milliseconds a command took (its user + system time, as times
# reports children's), on stdout; the command's output is discarded
child_cpu_ms() {
	(
		"$@" >/dev/null
		times
	) | awk 'NR == 2 { u = $1; s = $2; sub(/s$/, "", u); sub(/s$/, "", s)
		split(u, a, "m"); split(s, b, "m")
		printf "%.1f\n", (a[1] * 60 + a[2] + b[1] * 60 + b[2]) * 1000 }'
}
# remove DRIFT peers of wgr behind the worker's back, in one wg set
drift() {
	wg show wgr peers | shuf -n "$DRIFT" | awk '{ printf " peer %s remove", $1 }' >"$T/drift"
	# shellcheck disable=SC2046
	wg set wgr $(cat "$T/drift")
	[ "$(count wgr)" -eq $((PEERS - DRIFT)) ] || { echo "drift did not take" >&2; exit 1; }
}

echo "== backend $BACKEND; PostgreSQL 15 with the worker (reconcile only when asked)"
CLUSTER_NET_ADMIN=1 cluster_start "$T/pg" "wgpeer.database = 'postgres'" \
	"wgpeer.reconcile_interval = '1h'" "wgpeer.stats_interval = 0" \
	"shared_buffers = 256MB"
q -c "CREATE EXTENSION wgpeer"
wg_dev_add wgr
wg_dev_add wge
q -c "SELECT count(*) FROM wgpeer.wg_add_interface('wgr', '10.99.0.1:51850', '10.60.0.1/16',
		'fd00:60::1/64', listen_port => 51850, persistent_keepalive => 25)" >/dev/null
q -c "SELECT count(*) FROM wgpeer.wg_add_interface('wge', '10.99.0.1:51851', '10.61.0.1/24',
		listen_port => 51851)" >/dev/null

echo "== $PEERS peers on wgr"
t0=$(date +%s%N)
q -c "SELECT count(wgpeer.wg_create_peer('r' || g, interface => 'wgr'))
	  FROM generate_series(1, $PEERS) g" >/dev/null
all_on() { [ "$(count wgr)" -eq "$PEERS" ]; }
wait_until 3600 all_on
echo "   created and applied in $(ms_since "$t0") ms"
wg showconf wgr >"$T/wgr.conf"

# The reconcile's CPU: the worker's, and the daemon's (UAPI: wireguard-go
# serves the read; in the kernel the worker's own system time covers it).
# The dump's: wg's, and the daemon's.  Other tasks of the worker (the
# expiry poll, say) may run meanwhile and count; the wall times are the
# headline, the CPU times what a loaded machine does not inflate.
WORKER=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'wgpeer apply worker'")
DAEMON=${WG_DEV_PID[wgr]:-}
daemon_ms() { if [ -n "$DAEMON" ]; then cpu_ms "$DAEMON"; else echo 0; fi; }
daemon_back() {
	sql_true "SELECT coalesce(bool_and(unresponsive_since IS NULL), true)
			  FROM wgpeer.worker_state WHERE interface = 'wgr'"
}
echo "== reconcile with nothing changed ($RUNS runs), each after a wg syncconf and followed by a wg show dump"
: >"$T/r0"
: >"$T/s0"
: >"$T/d0"
: >"$T/rc0"
: >"$T/rg0"
: >"$T/dc0"
: >"$T/dg0"
r=0
attempts=0
while [ "$r" -lt "$RUNS" ]; do
	attempts=$((attempts + 1))
	[ "$attempts" -le $((RUNS * 3)) ] || { echo "too many failed reconciles" >&2; exit 1; }
	t0=$(date +%s%N)
	wg syncconf wgr "$T/wgr.conf"
	sync_ms=$(ms_since "$t0")
	w0=$(cpu_ms "$WORKER")
	g0=$(daemon_ms)
	read -r added corrected removed ms error < <(reconcile)
	w1=$(cpu_ms "$WORKER")
	g1=$(daemon_ms)
	if [ "$error" != - ]; then
		# a loaded machine can starve the daemon past the worker's limit;
		# the worker leaves it alone until its probe is answered again
		echo "   (a reconcile failed, not counted: $error)"
		wait_until 300 daemon_back
		continue
	fi
	[ "$added $corrected $removed" = "0 0 0" ] ||
		{ echo "reconcile changed something: $added $corrected $removed" >&2; exit 1; }
	r=$((r + 1))
	echo "$ms" >>"$T/r0"
	echo "$sync_ms" >>"$T/s0"
	awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.1f\n", b - a }' >>"$T/rc0"
	awk -v c="$g0" -v d="$g1" 'BEGIN { printf "%.1f\n", d - c }' >>"$T/rg0"
	g0=$(daemon_ms)
	t0=$(date +%s%N)
	wgcpu=$(child_cpu_ms wg show wgr dump)
	ms_since "$t0" >>"$T/d0"
	g1=$(daemon_ms)
	echo "$wgcpu" >>"$T/dc0"
	awk -v c="$g0" -v d="$g1" 'BEGIN { printf "%.1f\n", d - c }' >>"$T/dg0"
	echo "   run $r: wg syncconf $sync_ms ms; wg_reconcile $ms ms" \
		"(CPU: worker $(tail -n 1 "$T/rc0"), daemon $(tail -n 1 "$T/rg0") ms);" \
		"wg show dump $(tail -n 1 "$T/d0") ms (CPU: wg $(tail -n 1 "$T/dc0")," \
		"daemon $(tail -n 1 "$T/dg0") ms)"
done

echo "== reconcile after 1% drift: $DRIFT of $PEERS peers removed by hand ($RUNS runs)"
: >"$T/r1"
: >"$T/s1"
for r in $(seq "$RUNS"); do
	drift
	read -r added corrected removed ms error < <(reconcile)
	[ "$added $corrected $removed $error" = "$DRIFT 0 0 -" ] ||
		{ echo "reconcile did $added $corrected $removed, not $DRIFT 0 0" >&2; exit 1; }
	all_on || { echo "reconcile left peers missing" >&2; exit 1; }
	echo "$ms" >>"$T/r1"
	drift
	t0=$(date +%s%N)
	wg syncconf wgr "$T/wgr.conf"
	ms_since "$t0" >>"$T/s1"
	all_on || { echo "syncconf left peers missing" >&2; exit 1; }
	echo "   run $r: wg_reconcile $ms ms (added $added), wg syncconf $(tail -n 1 "$T/s1") ms"
done

echo "== expiry lag: $EXPIRING peers on wge, expires_at 100 ms apart"
q -c "SELECT count(wgpeer.wg_create_peer('e' || g, interface => 'wge'))
	  FROM generate_series(1, $EXPIRING) g" >/dev/null
wge_full() { [ "$(count wge)" -eq "$EXPIRING" ]; }
wait_until 600 wge_full
# the first expiry 3 s from now, the last (EXPIRING - 1) / 10 s later
q -c "UPDATE wgpeer.peer p SET expires_at = s.at
	  FROM (SELECT peer_id, clock_timestamp() + interval '3 s'
					+ (row_number() OVER (ORDER BY peer_id) - 1) * interval '100 ms' AS at
			FROM wgpeer.peer WHERE interface = 'wge') s
	  WHERE p.peer_id = s.peer_id"
q -c "SELECT public_key, extract(epoch FROM expires_at) FROM wgpeer.peer
	  WHERE interface = 'wge'" >"$T/expiry"
# poll until wge is empty: each poll's end time, then the keys it listed
limit=$((SECONDS + 120 + EXPIRING / 10))
: >"$T/polls"
while [ $SECONDS -lt $limit ]; do
	start=$(date +%s.%N)
	wg show wge peers >"$T/poll"
	echo "P $start $(date +%s.%N)" >>"$T/polls"
	cat "$T/poll" >>"$T/polls"
	[ -s "$T/poll" ] || break
done
[ ! -s "$T/poll" ] || { echo "not every peer left wge" >&2; exit 1; }
# for each peer: the end of the first poll that did not list it
awk -v OFS='\t' '
	FILENAME == ARGV[1] { due[$1] = $2; next }
	$1 == "P" { if (n++) close_poll(); t = $3; dur[n] = $3 - $2; delete seen; next }
	{ seen[$1] = 1 }
	function close_poll(  k) { for (k in due) if (!(k in gone) && !(k in seen)) gone[k] = t }
	END {
		close_poll()
		for (k in due) print (gone[k] - due[k]) * 1000 >"'"$T/lag"'"
		for (i = 1; i <= n; i++) print dur[i] * 1000 >"'"$T/pollms"'"
	}' "$T/expiry" "$T/polls"
[ "$(wc -l <"$T/lag")" -eq "$EXPIRING" ] || { echo "lost track of some peers" >&2; exit 1; }
read -r lag_med lag_max < <(sort -g "$T/lag" | awk '{ v[NR] = $1 } END {
	printf "%.0f %.0f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[NR] }')
early=$(awk '$1 < 0' "$T/lag" | wc -l)
[ "$early" -eq 0 ] || { echo "$early peers left before their expires_at" >&2; exit 1; }

echo "== results (backend $BACKEND, medians of $RUNS runs)"
r0=$(median <"$T/r0")
s0=$(median <"$T/s0")
d0=$(median <"$T/d0")
r1=$(median <"$T/r1")
s1=$(median <"$T/s1")
printf '   %-44s %10s %10s %8s\n' "$PEERS peers" wg_reconcile "wg syncconf" ratio
printf '   %-44s %10s %10s %8s\n' "nothing changed (ms)" "$r0" "$s0" \
	"$(awk -v a="$r0" -v b="$s0" 'BEGIN { printf "%.2fx", b / a }')"
printf '   %-44s %10s %10s %8s\n' "1% drifted, $DRIFT peers missing (ms)" "$r1" "$s1" \
	"$(awk -v a="$r1" -v b="$s1" 'BEGIN { printf "%.2fx", b / a }')"
printf '   %-44s %10s\n' "floor: one wg show dump of the device (ms)" "$d0"
echo "   (ratio: how many times longer wg syncconf takes)"
rc0=$(median <"$T/rc0")
rg0=$(median <"$T/rg0")
dc0=$(median <"$T/dc0")
dg0=$(median <"$T/dg0")
printf '   %-44s %10s %10s %8s\n' "" wg_reconcile "wg dump" ratio
printf '   %-44s %10s %10s %8s\n' "nothing changed vs the floor (ms)" "$r0" "$d0" "$(ratio "$r0" "$d0")x"
printf '   %-44s %10s %10s %8s\n' "  CPU: the worker vs wg (ms)" "$rc0" "$dc0" "$(ratio "$rc0" "$dc0")x"
printf '   %-44s %10s %10s\n' "  CPU: the daemon serving each (ms)" "$rg0" "$dg0"
echo "   (ratio: how many times longer wg_reconcile takes than one dump; load $(load))"
bench_record "\`wg_reconcile()\` of $PEERS unchanged peers, $BACKEND (reconcile.sh)" \
	"$r0 ms" "$d0 ms (one \`wg show dump\`)" "$(ratio "$r0" "$d0")x"
bench_record "\`wg_reconcile()\` of $PEERS unchanged peers, $BACKEND, CPU of the worker (reconcile.sh)" \
	"$rc0 ms" "$dc0 ms (\`wg show dump\`'s own)" "$(ratio "$rc0" "$dc0")x"
printf '   expiry lag over %d peers: median %s ms, max %s ms (poll resolution: median %s ms)\n' \
	"$EXPIRING" "$lag_med" "$lag_max" "$(median <"$T/pollms")"
