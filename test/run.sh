#!/bin/bash
# Install everything, build wgpeer and run every test.  Run as root on a
# Debian 12 machine:  sudo test/run.sh
#
# Unit tests of the pure C cores run first, then pg_regress and isolation
# specs against a temporary PostgreSQL instance, as an ordinary user
# (initdb refuses root).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

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
make -s unittest

# The layering rule of src/, and that its check fails on a planted
# violation of each kind.
make -s check-layers
bash test/check_layers_test.sh

# The kernel lane: a real WireGuard kernel (this one, or Debian's under
# qemu): the netlink backend, then the apply worker end to end with
# PostgreSQL holding CAP_NET_ADMIN, then a reboot (two boots of the VM on
# one disk), then AmneziaWG, then the demo.  It is the slowest part (software emulation)
# and uses the installed build only, so it runs in the background while
# the native suites below run; its log is printed when it ends.  Nothing
# below installs over the system's build until it has ended (the
# sanitizers use a private copy of PostgreSQL, the package test waits).
TEST_USER=wgpeer_test
id "$TEST_USER" >/dev/null 2>&1 || useradd --system --create-home "$TEST_USER"
WORK=$(mktemp -d /tmp/wgpeer-test.XXXXXX)
make -s test/vm/wgnl_driver
kernel_lane() {
	set -e
	bash test/vm/run.sh test/vm/netlink_smoke.sh
	bash test/vm/run.sh test/worker_test.sh
	bash test/reboot_test.sh
	# AmneziaWG: its module and tools built from ../shared/thirdparty, the
	# configs checked here, then the worker and a client on the wire in the VM
	bash test/awg_test.sh

	# The README's demo command on kernel WireGuard (in the VM, where this
	# kernel has none and the run above took the wireguard-go path).
	bash test/vm/run.sh demo.sh >"$LANES/demo-kernel.log" 2>&1 || {
		cat "$LANES/demo-kernel.log"
		exit 1
	}
}
LANES=$(mktemp -d /tmp/wgpeer-lanes.XXXXXX)
kernel_lane >"$LANES/kernel.log" 2>&1 &
KERNEL_PID=$!
# The versions lane: PostgreSQL 17 (Debian 13) and 18 (sid), each in a
# chroot made with debootstrap that builds, installs and tests its own copy
# of the tree (installcheck, the upgrade test, the unit tests once); it
# changes nothing on the host, so it runs beside the other two.
versions_lane() {
	set -e
	bash test/pgversions.sh
}
versions_lane >"$LANES/versions.log" 2>&1 &
VERSIONS_PID=$!
# A failing native suite stops the run: the kernel lane (and its VM) goes
# with it.
kill_tree() {
	local child
	for child in $(pgrep -P "$1"); do kill_tree "$child"; done
	kill "$1" 2>/dev/null || true
}
trap 'kill_tree $KERNEL_PID; kill_tree $VERSIONS_PID; rm -rf "$WORK" "$LANES"' EXIT
SECONDS=0

# The regression suites run as an unprivileged user in a copy it owns.
cp -a "$ROOT/." "$WORK/"
chown -R "$TEST_USER" "$WORK"
status=0
runuser -u "$TEST_USER" -- make -s -C "$WORK" installcheck || status=$?
if [ $status -ne 0 ]; then
	for f in "$WORK"/regression.diffs "$WORK"/output_iso/regression.diffs; do
		[ -f "$f" ] && cat "$f"
	done
	exit $status
fi

# An install of every released version updated to the current one equals
# a fresh install, and keeps its data.
bash test/upgrade.sh

# Generated configs against WireGuard's own tools (wireguard-go, no kernel).
bash test/config_wg.sh

# The worker over userspace WireGuard (UAPI): wireguard-go server and client
# in two network namespaces, a handshake and a ping, then a revoke; then
# the worker's whole behavioural suite, which runs on the kernel below,
# against wireguard-go daemons.
bash test/uapi_e2e.sh
WGPEER_VM=never bash test/vm/run.sh test/worker_test.sh --backend uapi

# One failing change never holds back the others: a listen port another
# interface holds, a full wireguard-go device (65,536 peers).
bash test/failure_isolation_test.sh

# One hung userspace daemon (SIGSTOP) stalls no other interface: the
# healthy one's commit -> device latency before and during the hang, its
# wg_show(), and the hung one catching up after SIGCONT.
bash test/hung_daemon_test.sh

# Peers configured by hand are never taken over: an application bringing
# such a peer's key is refused, a revoke leaves the peer, an admin adopts it.
bash test/foreign_peer_test.sh

# The subscription lifecycle with a real client: suspend, resume, key
# rotation, a plan that starts at the first handshake, 500 peers imported.
bash test/lifecycle_e2e.sh

# Per-peer routing with a real client: a subnet behind it reachable through
# the tunnel once routed to it, unreachable once the route is gone; a split
# tunnel's config.
bash test/routes_e2e.sh

# Usage and events with a real client: a quota suspends it and a new
# period brings it back; the event log read late, in pages, across a
# worker killed with kill -9.
bash test/usage_e2e.sh

# Nobody can make the worker or the triggers run planted functions; only
# the worker holds CAP_NET_ADMIN; an overflowing traffic row stops no quota.
bash test/search_path_test.sh

# Backups with a real client: pg_dump in every format restored onto a
# fresh cluster that then serves the interface; pg_upgrade.
bash test/dump_restore_test.sh

# Several VPN servers: a primary and two nodes over logical replication.
bash test/node_test.sh

# Physical standbys: a streaming standby promoted after kill -9 of the
# primary, asynchronous with lost commits and synchronous (wireguard-go).
bash test/failover_test.sh

# The README's demo command: wireguard-go here, where the kernel has no
# WireGuard (the kernel path runs in the VM below).
bash demo.sh >"$WORK/demo.log" 2>&1 || {
	cat "$WORK/demo.log"
	exit 1
}

# The documentation as written: the README's quick start to a working
# tunnel (Debian's cluster tools, wireguard-go, a real client), its API
# tour, every documented signature against the catalog.
bash test/docs_test.sh

# The SQL API without shared_preload_libraries.
bash test/no_preload.sh

# Config files exported by the worker, and the atomic writer under SIGKILL.
bash test/export_test.sh

# The export on a full disk (a small tmpfs): revoked peers' files go, no
# server file lists them, one WARNING, interface_status.export_error.
bash test/export_full_test.sh

# QR codes read back by a real decoder (zbarimg), then the fuzz smoke runs.
bash test/qr_decode.sh
bash test/fuzz/run.sh

# The unit tests, regression and isolation suites and the worker's suite
# over UAPI against an AddressSanitizer + UBSan build (reinstalls the
# normal build at the end).
bash test/sanitize.sh

echo "native suites passed in ${SECONDS}s; waiting for the kernel and versions lanes"
kernel_status=0
wait "$KERNEL_PID" || kernel_status=$?
echo "==== kernel lane (VM) log"
cat "$LANES/kernel.log"
versions_status=0
wait "$VERSIONS_PID" || versions_status=$?
echo "==== versions lane (PostgreSQL 17 and 18) log"
cat "$LANES/versions.log"
if [ $kernel_status -ne 0 ]; then
	echo "the kernel lane failed (exit $kernel_status)"
	exit $kernel_status
fi
if [ $versions_status -ne 0 ]; then
	echo "the versions lane failed (exit $versions_status)"
	exit $versions_status
fi
echo "kernel and versions lanes passed; all lanes done in ${SECONDS}s"

# The Debian package: built from a clean clone, installed, the suites run
# against it, purged; then the checkout's build is installed again.
bash test/package_test.sh

echo "all tests passed"
