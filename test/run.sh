#!/bin/bash
# Install everything, build wgpeer and run every test.  Run as root on a
# Debian 12 machine:  sudo test/run.sh
#
# The suites run in tiers (test/tiers.sh), each ending with one line that
# adds up its checks, "== tier NAME: N passed, N failed (...)":
#	fast         unit tests, layering, regress + isolation (as an ordinary
#	             user: initdb refuses root), upgrade, generated configs
#	             against WireGuard's tools, QR, fuzz smoke
#	integration  the worker and everything around it against wireguard-go,
#	             clusters, standbys, nodes, the docs as written, sanitizers
#	kernel (VM)  a real WireGuard kernel under qemu, in the background
#	versions     PostgreSQL 17 and 18 in Debian chroots, in the background
#	package      the Debian package, built, installed, tested, purged
# A failing suite does not stop its tier, so one run shows every failure;
# a failed tier stops the run after it (the background lanes are waited
# for, so that their results are shown too).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. test/tiers.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "test/run.sh installs packages and the extension: run it as root" >&2
	exit 1
fi

bash test/install-deps.sh
# Developers and CI build with warnings as errors; a user's plain "make"
# does not, so a newer compiler's new warning cannot stop an install.
export WERROR=-Werror
make -s -j"$(nproc)"
make -s install

TEST_USER=wgpeer_test
id "$TEST_USER" >/dev/null 2>&1 || useradd --system --create-home "$TEST_USER"
WORK=$(mktemp -d /tmp/wgpeer-test.XXXXXX)
LANES=$(mktemp -d /tmp/wgpeer-lanes.XXXXXX)
make -s test/vm/wgnl_driver

# demo LOG: the README's demo command, its output in LOG, shown when it fails
demo() {
	bash demo.sh >"$1" 2>&1 || {
		cat "$1"
		return 1
	}
}

# The kernel lane: a real WireGuard kernel (this one, or Debian's under
# qemu): the netlink backend, then the apply worker end to end with
# PostgreSQL holding CAP_NET_ADMIN, then a reboot (two boots of the VM on
# one disk), then AmneziaWG, the demo and the README's quick start on the kernel.  It is the slowest part (software emulation)
# and uses the installed build only, so it runs in the background while
# the native suites below run; its log is printed when it ends.  Nothing
# below installs over the system's build until it has ended (the
# sanitizers use a private copy of PostgreSQL, the package test waits).
kernel_lane() {
	tier "kernel (VM)"
	suite "netlink backend (VM)" bash test/vm/run.sh test/vm/netlink_smoke.sh
	suite "worker suite on the kernel (VM)" bash test/vm/run.sh test/worker_test.sh
	# per-peer speed limits on the kernel, measured with iperf3 through the tunnel
	suite "speed limits (VM)" bash test/vm/run.sh test/rates_test.sh
	suite "reboot (VM)" bash test/reboot_test.sh
	# AmneziaWG: its module and tools built from ../shared/thirdparty, the
	# configs checked here, then the worker and a client on the wire in the VM
	suite "AmneziaWG (VM)" bash test/awg_test.sh
	# the README's demo command on kernel WireGuard (in the VM, where this
	# kernel has none and the native run takes the wireguard-go path)
	suite "demo on the kernel (VM)" bash test/vm/run.sh demo.sh
	# the README's quick start, its kernel way, to a working tunnel
	suite "docs as written, kernel (VM)" bash test/vm/run.sh test/docs_test.sh --kernel
	tier_end
}
kernel_lane >"$LANES/kernel.log" 2>&1 &
KERNEL_PID=$!
# The versions lane: PostgreSQL 17 (Debian 13) and 18 (sid), each in a
# chroot made with debootstrap that builds its own copy of the tree as the
# Debian package (unit tests, lintian), installs it and tests it there
# (a cluster, installcheck, the upgrade test, the worker's suite over
# wireguard-go, the purge); it changes nothing on the host, so it runs
# beside the other two.
versions_lane() {
	tier versions
	suite "PostgreSQL 17 and 18 (chroots)" bash test/pgversions.sh
	# Node mode across majors (a primary on 15 drives a node on 17 and the
	# reverse), then 15 upgraded to 17 by dump/restore and by pg_upgrade with
	# live peers: each in a mount namespace of its own, beside the host's
	# suites, building the tree in a trixie overlay (after pgversions.sh:
	# the trixie chroot's lock lets one user make it, the others wait).
	suite "node mode across 15 and 17" bash test/node_mixed_test.sh
	suite "15 upgraded to 17 (dump/restore, pg_upgrade)" bash test/major_upgrade_test.sh
	tier_end
}
versions_lane >"$LANES/versions.log" 2>&1 &
VERSIONS_PID=$!
kill_tree() {
	local child
	for child in $(pgrep -P "$1"); do kill_tree "$child"; done
	kill "$1" 2>/dev/null || true
}
trap 'kill_tree $KERNEL_PID; kill_tree $VERSIONS_PID; rm -rf "$WORK" "$LANES"' EXIT
SECONDS=0

# installcheck: the regression and isolation suites, as an unprivileged
# user in a copy it owns; the diffs when they fail
installcheck() {
	local status=0 f
	cp -a "$ROOT/." "$WORK/"
	chown -R "$TEST_USER" "$WORK"
	runuser -u "$TEST_USER" -- make -s -C "$WORK" installcheck || status=$?
	if [ $status -ne 0 ]; then
		for f in "$WORK"/regression.diffs "$WORK"/output_iso/regression.diffs; do
			[ -f "$f" ] && cat "$f"
		done
	fi
	return $status
}

tier fast
suite "unit tests of the pure C cores" make -s unittest
# the layering rule of src/, and that its check fails on a planted
# violation of each kind
suite "layers" make -s check-layers
suite "layer check catches violations" bash test/check_layers_test.sh
suite "regress + isolation" installcheck
# an install of every released version updated to the current one equals
# a fresh install, and keeps its data
suite "upgrade scripts" bash test/upgrade.sh
# generated configs against WireGuard's own tools (wireguard-go, no kernel)
suite "configs vs wg-quick/wg" bash test/config_wg.sh
# QR codes read back by a real decoder (zbarimg), then the fuzz smoke runs
suite "QR decode" bash test/qr_decode.sh
suite "fuzz smoke" bash test/fuzz/run.sh
# the SQL API without shared_preload_libraries
suite "without preload" bash test/no_preload.sh
tier_end || exit 1

tier integration
# the worker over userspace WireGuard (UAPI): wireguard-go server and
# client in two network namespaces, a handshake and a ping, then a revoke;
# then the worker's whole behavioural suite (it also runs on the kernel, in
# the VM lane) against wireguard-go daemons
suite "UAPI end to end" bash test/uapi_e2e.sh
suite "worker suite on wireguard-go" env WGPEER_VM=never bash test/vm/run.sh test/worker_test.sh --backend uapi
# one failing change never holds back the others: a listen port another
# interface holds, a full wireguard-go device (65,536 peers)
suite "failure isolation" bash test/failure_isolation_test.sh
# a batch sends the device's key and port only when they may be missing;
# a hand change is repaired by reconcile, a recreated device gets them
suite "device settings" bash test/device_settings_test.sh
# one hung userspace daemon (SIGSTOP) stalls no other interface
suite "hung daemon" bash test/hung_daemon_test.sh
# peers configured by hand are never taken over
suite "foreign peers" bash test/foreign_peer_test.sh
# the subscription lifecycle with a real client: suspend, resume, key
# rotation, a plan that starts at the first handshake, 500 peers imported
suite "lifecycle with a client" bash test/lifecycle_e2e.sh
# per-peer routing with a real client; a split tunnel's config
suite "routes with a client" bash test/routes_e2e.sh
# usage and events with a real client: quotas, the event log read late, in
# pages, across a worker killed with kill -9
suite "usage and events" bash test/usage_e2e.sh
# metrics as operators scrape them: wg_metrics() through promtool, the
# shipped prometheus-sql-exporter config scraped by Prometheus, and every
# PromQL expression of the shipped Grafana dashboard returning data
suite "metrics and dashboard" bash test/metrics_test.sh
# webhooks against a real HTTPS receiver: failures, an endpoint down, the
# delivery worker killed with kill -9 mid-batch, a wrong CA, signatures
suite "webhooks" bash test/webhook_test.sh
# nobody can make the worker or the triggers run planted functions; only
# the worker holds CAP_NET_ADMIN
suite "search_path and privileges" bash test/search_path_test.sh
# backups with a real client: pg_dump in every format restored onto a
# fresh cluster that then serves the interface; pg_upgrade
suite "dump and restore" bash test/dump_restore_test.sh
# several VPN servers: a primary and two nodes over logical replication
suite "node mode" bash test/node_test.sh
# locations, moving a user between two nodes, the subscription link: a
# client pings before and after, its config fetched again from the link
suite "locations and moving" bash test/locations_e2e.sh
# AmneziaWG in node mode: parameters replicate and reach the node's device
# (amneziawg-go's socket, a recording fake)
suite "AmneziaWG node mode" bash test/awg_node_test.sh
# physical standbys: promoted after kill -9 of the primary, asynchronous
# with lost commits and synchronous (wireguard-go)
suite "failover" bash test/failover_test.sh
# the README's demo command: wireguard-go here, where the kernel has no
# WireGuard (the kernel path runs in the VM lane)
suite "demo" demo "$WORK/demo.log"
# the documentation as written: the README's quick start to a working
# tunnel (Debian's cluster tools, wireguard-go, a real client), its API
# tour, every documented signature against the catalog
suite "docs as written" bash test/docs_test.sh
# config files exported by the worker, the atomic writer under SIGKILL,
# and the export on a full disk
suite "export" bash test/export_test.sh
suite "export on a full disk" bash test/export_full_test.sh
# the unit tests, regression and isolation suites and the worker's suite
# over UAPI against an AddressSanitizer + UBSan build (in a private copy
# of PostgreSQL)
suite "sanitizers" bash test/sanitize.sh
integration_status=0
tier_end || integration_status=1

echo "native tiers done in ${SECONDS}s; waiting for the kernel and versions lanes"
kernel_status=0
wait "$KERNEL_PID" || kernel_status=$?
echo "==== kernel lane (VM) log"
cat "$LANES/kernel.log"
versions_status=0
wait "$VERSIONS_PID" || versions_status=$?
echo "==== versions lane (PostgreSQL 17 and 18) log"
cat "$LANES/versions.log"
echo "==== summary"
grep -h '^== tier ' "$LANES/kernel.log" "$LANES/versions.log" || true
if [ $integration_status -ne 0 ] || [ $kernel_status -ne 0 ] || [ $versions_status -ne 0 ]; then
	echo "failed: integration exit $integration_status, kernel lane exit $kernel_status, versions lane exit $versions_status"
	exit 1
fi
echo "all lanes passed in ${SECONDS}s"

# The Debian package: built from a clean clone, installed, the suites run
# against it, purged; then the checkout's build is installed again.
tier package
suite "Debian package" bash test/package_test.sh
tier_end || exit 1

echo "all tests passed"
