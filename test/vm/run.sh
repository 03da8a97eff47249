#!/bin/bash
# test/vm/run.sh SCRIPT [ARGS...]
#
# Run SCRIPT (with bash, as root) on a Linux kernel that has WireGuard,
# print its output and exit with its status.  Needs root.
#
# - If this host's kernel has WireGuard, SCRIPT runs here, in a throwaway
#   network namespace.
# - Otherwise it runs in a qemu VM (TCG, or KVM if asked for) that
#   boots Debian's packaged kernel (the one linux-image-amd64 depends on,
#   downloaded and unpacked, never installed) with a busybox initramfs.  The
#   VM mounts this host's root read-only over 9p under a tmpfs overlay and
#   chroots into it, so SCRIPT sees the same files and programs; a second,
#   writable 9p share carries its output and exit status back.  Inside,
#   $WGPEER_VM_OUT names that share (files left there are copied to
#   $WGPEER_VM_KEEP on the host if set).
#
# Environment: WGPEER_VM=auto|always|never (always: use the VM even when
# the host could run SCRIPT; never: run it here in a scratch namespace even
# without kernel WireGuard, for the userspace backend), WGPEER_VM_TIMEOUT
# (seconds for the whole VM run, default 1800), WGPEER_VM_MEM (MiB, default
# 2048), WGPEER_VM_CACHE (kernel and initramfs cache, default
# /var/cache/wgpeer-vm), WGPEER_VM_DISK (a raw disk image file, the VM's
# /dev/vda: what survives from one boot to the next), WGPEER_VM_ACCEL=tcg|kvm (default tcg: a /dev/kvm
# that is present may still not boot a guest, as with nested virtualization
# where the guest hangs silently or qemu aborts on an MSR).
set -euo pipefail

if [ $# -lt 1 ]; then
	echo "usage: $0 SCRIPT [ARGS...]" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "test/vm/run.sh needs root (network namespaces, qemu's 9p export of /)" >&2
	exit 2
fi
SCRIPT=$(realpath "$1")
shift
[ -f "$SCRIPT" ] || { echo "run.sh: no such script: $SCRIPT" >&2; exit 2; }

CACHE=${WGPEER_VM_CACHE:-/var/cache/wgpeer-vm}
TIMEOUT=${WGPEER_VM_TIMEOUT:-1800}
MEM=${WGPEER_VM_MEM:-2048}
# modules the VM loads (with their dependencies): WireGuard, the 9p root,
# overlayfs, veth for tests that join network namespaces, ext4 for a
# disk that outlives a boot, the traffic control of speed limits, and tun
# for wireguard-go
MODULES="virtio_pci 9pnet_virtio 9p overlay wireguard veth virtio_blk ext4
	sch_htb sch_ingress cls_flower act_police tun"

# Does this kernel create WireGuard interfaces?  Tried in a scratch netns.
host_has_wireguard() {
	local ns=wgpeer-probe-$$ ok=1
	ip netns add "$ns" 2>/dev/null || return 1
	ip -n "$ns" link add wgprobe type wireguard 2>/dev/null && ok=0
	ip netns del "$ns"
	return $ok
}

. "$(dirname "$(realpath "$0")")/../apt.sh"

if [ "${WGPEER_VM:-auto}" = never ] ||
	{ [ "${WGPEER_VM:-auto}" != always ] && host_has_wireguard; }; then
	echo "run.sh: running $SCRIPT here, in a scratch network namespace"
	ns=wgpeer-test-$$
	out=$(mktemp -d /tmp/wgpeer-out.XXXXXX)
	ip netns add "$ns"
	trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "$out"' EXIT
	status=0
	ip netns exec "$ns" env WGPEER_VM_OUT="$out" timeout -k 10 "$TIMEOUT" \
		bash "$SCRIPT" "$@" || status=$?
	[ -z "${WGPEER_VM_KEEP:-}" ] || { mkdir -p "$WGPEER_VM_KEEP" && cp -a "$out/." "$WGPEER_VM_KEEP/"; }
	exit $status
fi

need_packages qemu-system-x86 busybox-static kmod cpio

# The kernel package linux-image-amd64 points at, unpacked once into CACHE.
# On a cache miss the package lists are refreshed first, so a kernel that
# the mirror has replaced is not asked for; older unpacked kernels go.
kernel_package() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}
mkdir -p "$CACHE"
kpkg=$(kernel_package)
if [ -z "$kpkg" ] || [ ! -f "$CACHE/$kpkg/.unpacked" ]; then
	apt-get update -qq
	kpkg=$(kernel_package)
	[ -n "$kpkg" ] || { echo "run.sh: apt knows no linux-image-amd64" >&2; exit 1; }
fi
kdir=$CACHE/$kpkg
if [ ! -f "$kdir/.unpacked" ]; then
	echo "run.sh: downloading $kpkg into $CACHE"
	dl=$(mktemp -d "$CACHE/download.XXXXXX")
	chmod 755 "$dl"
	chown _apt "$dl" 2>/dev/null || true
	(cd "$dl" && apt-get download -qq "$kpkg")
	rm -rf "$kdir"
	dpkg-deb -x "$dl"/*.deb "$kdir"
	rm -rf "$dl"
	touch "$kdir/.unpacked"
	find "$CACHE" -mindepth 1 -maxdepth 1 -name 'linux-image-*' ! -name "$kpkg" \
		-exec rm -rf {} +
fi
kver=$(ls "$kdir/lib/modules")
vmlinuz=$kdir/boot/vmlinuz-$kver

# The initramfs's /init: load the modules, build the root, run the command,
# power off.  Any failure powers off too: the host then finds no status.
read -r -d '' INIT <<'EOF' || true
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /lower /rw /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "wgpeer-vm init: $*" >/dev/console; poweroff -f; }
while read -r m; do
	insmod "/modules/$m" || fail "insmod $m"
done </modules/order
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144,cache=loose hostroot /lower ||
	fail "mount host root"
mount -t tmpfs -o mode=755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot ||
	fail "mount overlay"
mount -t tmpfs -o mode=755 tmpfs /newroot/run || fail "mount /run"
mkdir -p /newroot/run/wgpeer-vm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 wgout /newroot/run/wgpeer-vm ||
	fail "mount output share"
for d in /proc /sys /dev; do
	mount --move $d /newroot$d || fail "move $d"
done
ln -sfn /proc/self/fd /newroot/dev/fd
ln -sfn /proc/self/fd/0 /newroot/dev/stdin
ln -sfn /proc/self/fd/1 /newroot/dev/stdout
ln -sfn /proc/self/fd/2 /newroot/dev/stderr
mkdir -p /newroot/dev/shm /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
ip link set lo up
hostname wgpeer-vm
chroot /newroot /bin/bash /run/wgpeer-vm/cmd.sh
sync
poweroff -f
EOF

# The initramfs, cached per kernel and version of this script.
isum=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)
initrd=$CACHE/initrd-$kver-$isum.cpio.gz
if [ ! -f "$initrd" ]; then
	echo "run.sh: building $initrd"
	rm -f "$CACHE"/initrd-*.cpio.gz
	[ -f "$kdir/lib/modules/$kver/modules.dep" ] || depmod -b "$kdir" "$kver"
	root=$(mktemp -d)
	mkdir -p "$root/bin" "$root/modules"
	cp /bin/busybox "$root/bin/busybox"
	printf '%s\n' "$INIT" >"$root/init"
	chmod 755 "$root/init"
	: >"$root/modules/order"
	# modprobe lists each module after its dependencies; keep the first
	for ko in $(for m in $MODULES; do
		modprobe -d "$kdir" -S "$kver" --show-depends "$m"
	done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }'); do
		name=$(basename "$ko")
		case $name in
			*.xz) xz -dc "$ko" >"$root/modules/${name%.xz}"; name=${name%.xz} ;;
			*.zst) zstd -qdc "$ko" >"$root/modules/${name%.zst}"; name=${name%.zst} ;;
			*) cp "$ko" "$root/modules/$name" ;;
		esac
		echo "$name" >>"$root/modules/order"
	done
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
	rm -rf "$root"
fi

# The writable share: the command to run in, output and status out.
share=$(mktemp -d /tmp/wgpeer-vm.XXXXXX)
qpid=
tpid=
cleanup() {
	[ -z "$qpid" ] || kill "$qpid" 2>/dev/null || true
	[ -z "$tpid" ] || kill "$tpid" 2>/dev/null || true
	rm -rf "$share"
}
trap cleanup EXIT
{
	echo '#!/bin/bash'
	echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	echo "export HOME=/root LANG=C.UTF-8 TERM=dumb WGPEER_VM_OUT=/run/wgpeer-vm WGPEER_IN_VM=1"
	printf 'cd %q || exit 1\n' "$PWD"
	printf 'bash %q' "$SCRIPT"
	[ $# -eq 0 ] || printf ' %q' "$@"
	echo ' </dev/null >/run/wgpeer-vm/output 2>&1'
	echo 'echo $? >/run/wgpeer-vm/status'
} >"$share/cmd.sh"
: >"$share/output"

accel=(-accel tcg -cpu max)
[ "${WGPEER_VM_ACCEL:-tcg}" != kvm ] || accel=(-accel kvm -cpu host)
disk=()
[ -z "${WGPEER_VM_DISK:-}" ] ||
	disk=(-drive "file=$(realpath "$WGPEER_VM_DISK"),format=raw,if=virtio")
echo "run.sh: booting $kpkg ($(basename "$initrd")) for $(basename "$SCRIPT"), timeout ${TIMEOUT}s"
start=$(date +%s)
# no_timer_check: under software emulation on a loaded host the guest's
# early check of the IO-APIC timer can time out, and the kernel then
# panics ("IO-APIC + timer doesn't work!"); seen with CI's lanes running
# beside the VM.
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 "${accel[@]}" \
	-smp "$(nproc)" -m "$MEM" -nodefaults -no-reboot -display none \
	-serial "file:$share/console.log" \
	-kernel "$vmlinuz" -initrd "$initrd" "${disk[@]}" \
	-append "console=ttyS0 panic=-1 quiet loglevel=3 no_timer_check" \
	-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
	-virtfs "local,path=$share,mount_tag=wgout,security_model=none" &
qpid=$!
# print the script's output as it is written; tail stops when qemu exits
tail -n +1 -f --pid="$qpid" "$share/output" &
tpid=$!
qstatus=0
wait "$qpid" || qstatus=$?
qpid=
wait "$tpid" || true
tpid=
echo "run.sh: VM finished in $(($(date +%s) - start)) s"

if [ -n "${WGPEER_VM_KEEP:-}" ]; then
	mkdir -p "$WGPEER_VM_KEEP"
	cp -a "$share/." "$WGPEER_VM_KEEP/"
fi
if [ ! -s "$share/status" ]; then
	if [ $qstatus -eq 124 ]; then
		echo "run.sh: timed out after ${TIMEOUT}s" >&2
	else
		echo "run.sh: the VM stopped without a status (qemu exit $qstatus)" >&2
	fi
	echo "--- VM console (last 40 lines) ---" >&2
	tail -n 40 "$share/console.log" >&2 || true
	exit 1
fi
exit "$(cat "$share/status")"
