#!/bin/bash
# The apply worker on a real WireGuard kernel, in one VM run (see
# test/vm/run.sh): commit-to-kernel latency (median, p90, p99 over 200
# one-peer commits) and the time to apply 5,000 queued peers vs `wg addconf`
# of the same peers vs one `wg set` process per peer (the seed's way).
# test/vm/apply_bench.sh does the measuring and says how.
# Run as root after `make install`:
#	bash bench/apply.sh [--stage DIR] [RUNS] [SINGLE] [WGSET]
# (defaults 3, 200, 500; --stage DIR tests a `make install DESTDIR=DIR`
# tree in the VM instead of the host's installation).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "bench/apply.sh boots a VM (or uses network namespaces): run it as root" >&2
	exit 1
fi
stage=()
if [ "${1:-}" = --stage ]; then
	stage=(--stage "$(realpath "$2")")
	shift 2
fi

# The benchmark client (libpq + the netlink backend), built where the VM
# sees it: the VM mounts this host's root, /tmp included.
WORK=$(mktemp -d /tmp/wgpeer-apply-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
cc -O2 -Wall -Wextra -Werror -Wno-missing-field-initializers -Isrc -Itest \
	-I"$(pg_config --includedir)" $(pkg-config --cflags libsodium libmnl) \
	-o "$WORK/apply_latency" bench/apply_latency.c src/device/netlink.c src/device/device.c src/core/keys.c \
	-lpq $(pkg-config --libs libmnl libsodium)

WGPEER_VM_KEEP=$WORK/out bash test/vm/run.sh test/vm/apply_bench.sh "${stage[@]}" \
	"$WORK/apply_latency" "$@" >"$WORK/log" 2>&1 || {
	cat "$WORK/log" >&2
	exit 1
}
grep '^run.sh: VM finished' "$WORK/log" || true
cat "$WORK/out/apply_bench.txt"
