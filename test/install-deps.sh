#!/bin/bash
# Install the Debian 12 packages wgpeer needs to build, test and demo.
# Idempotent; needs root.
set -euo pipefail

PACKAGES=(
	build-essential pkg-config
	postgresql-15 postgresql-server-dev-15 libkrb5-dev libipc-run-perl
	libsodium-dev libmnl-dev libqrencode-dev libpng-dev zlib1g-dev libcurl4-openssl-dev
	wireguard-tools wireguard-go iproute2 qrencode zbar-tools pngcheck util-linux bc
	# the reboot test's disk image
	e2fsprogs
	# apply worker tests: ping through the tunnel, libpq for bench/apply_latency
	iputils-ping libpq-dev
	# QR decode test (SVG rasteriser, text to image) and fuzz smoke run
	librsvg2-bin perl clang libclang-rt-14-dev
	# the sanitizer build's runtimes (test/sanitize.sh)
	libasan8 libubsan1
	# the VM with a WireGuard kernel (test/vm/run.sh); installed here, before
	# test/run.sh starts its lanes, so no two apt-get runs race for dpkg's lock
	qemu-system-x86 busybox-static kmod cpio
	# the chroots of PostgreSQL 17 and 18 (test/pgversions.sh)
	debootstrap
	# the metrics suite: promtool, Prometheus and the SQL exporter
	# (test/metrics_test.sh)
	prometheus prometheus-sql-exporter
)

. "$(dirname "$0")/apt.sh"
need_packages "${PACKAGES[@]}"
