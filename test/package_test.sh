#!/bin/bash
# The Debian package, as a user gets it: built with dpkg-buildpackage from a
# fresh clone of this checkout (its committed state), lintian, the shipped
# systemd units checked by systemd-analyze verify, installed in place of the
# `make install` files, the regression and isolation suites run against the
# packaged files, purged without leaving anything of wgpeer behind; then
# this checkout's build is installed again, so later tests keep working.
# The versions in debian/changelog and META.json are checked against the
# one place the version lives, wgpeer.control's default_version.
#
# Run as root (installs what it needs with apt-get):  sudo test/package_test.sh
# WGPEER_PACKAGE_REPO=DIR clones DIR instead of this checkout.
#
# While it runs, the PostgreSQL directories hold the packaged build, not
# this checkout's: other tests must not run at the same time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. test/tap.sh

# --- inside the test VM: the shipped units under a real systemd ---------
#
# test/vm/run.sh runs this script again in a qemu VM (a throwaway overlay
# of this host's root): the package is installed there, systemd 252 starts
# as PID 1 of a new PID namespace with the CAP_NET_ADMIN drop-in in place
# and a target that wants wgpeer-wireguard-go@wg0 and postgresql@15-main,
# and --systemd-checks (run inside that namespace) looks at the result.
if [ "${1:-}" = --systemd-in-vm ]; then
	set +e
	deb=$2
	cache=${WGPEER_VM_CACHE:-/var/cache/wgpeer-vm}
	kdir=$(ls -d "$cache"/linux-image-*/lib/modules/"$(uname -r)" | head -n 1)
	modprobe -d "${kdir%/lib/modules/*}" tun
	chmod 0666 /dev/net/tun # what Debian's udev rule makes it
	dpkg -i "$deb" >/dev/null 2>&1
	pkg=$(dpkg-deb -f "$deb" Package)
	v=${pkg#postgresql-}
	v=${v%-wgpeer}
	[ -d "/etc/postgresql/$v/main" ] || pg_createcluster "$v" main >/dev/null
	mkdir -p "/etc/systemd/system/postgresql@$v-main.service.d"
	cp "/usr/share/doc/$pkg/examples/postgresql-cap-net-admin.conf" \
		"/etc/systemd/system/postgresql@$v-main.service.d/wgpeer.conf"
	printf '%s\n' '[Unit]' 'Description=wgpeer package test' \
		"Wants=wgpeer-wireguard-go@wg0.service postgresql@$v-main.service" \
		>/etc/systemd/system/wgpeer-package-test.target
	env container=other unshare --pid --fork --mount-proc /lib/systemd/systemd \
		--system --unit=wgpeer-package-test.target </dev/null >/dev/null 2>&1 &
	# systemd is the child unshare forks ($! is env, which becomes unshare):
	# matching the command line instead would find unshare itself, whose
	# arguments name systemd too, and enter the host's PID namespace.
	unshare_pid=$!
	sd=
	wait_until 30 eval 'sd=$(pgrep -P "$unshare_pid" -x systemd)'
	wait_until 60 nsenter -t "$sd" -m -r test -S /run/systemd/private
	status=0
	nsenter -t "$sd" -p -m -r -w bash "$ROOT/test/package_test.sh" --systemd-checks "$v" ||
		status=$?
	kill -TERM "$sd" 2>/dev/null || true
	exit $status
fi
if [ "${1:-}" = --systemd-checks ]; then
	set +e
	cluster=$2-main
	unit=wgpeer-wireguard-go@wg0
	# the VM runs under TCG, 10-50x slower than a real machine: wait for the
	# boot's jobs (asking for both units again is harmless and waits for
	# them), within a generous bound, and say what systemd says if not met
	timeout 300 systemctl start "$unit" "postgresql@$cluster"
	if ! wait_until 60 systemctl is-active -q "$unit" "postgresql@$cluster"; then
		systemctl list-jobs --no-pager
		systemctl status --no-pager --lines=15 "$unit" "postgresql@$cluster"
	fi
	wait_until 60 test -s "/run/postgresql/$cluster.pid"
	same "$unit active under systemd" active "$(systemctl is-active "$unit")"
	same "its socket /run/wireguard/wg0.sock is postgres's" "postgres srwx------" \
		"$(stat -c '%U %A' /run/wireguard/wg0.sock)"
	check "interface wg0 exists" ip link show wg0
	pid=$(systemctl show -P MainPID "$unit")
	same "wireguard-go runs as postgres" postgres "$(ps -o user= -p "$pid")"
	same "wireguard-go's capabilities (effective, bounding): CAP_NET_ADMIN only" \
		"0000000000001000 0000000000001000" \
		"$(awk '/^CapEff/ {e = $2} /^CapBnd/ {b = $2} END {print e, b}' "/proc/$pid/status")"
	check "postgres configures wg0 over the socket (wg set as postgres)" \
		runuser -u postgres -- wg set wg0 listen-port 51999
	same "the port is set" 51999 "$(wg show wg0 listen-port)"
	pm=$(head -n 1 "/run/postgresql/$cluster.pid")
	same "the drop-in gives the postmaster CAP_NET_ADMIN (ambient)" 0000000000001000 \
		"$(awk '/^CapAmb/ {print $2}' "/proc/$pm/status")"
	systemctl stop "$unit"
	check "$unit stopped: socket and wg0 gone, /run/wireguard kept" \
		bash -c '! test -e /run/wireguard/wg0.sock && ! ip link show wg0 2>/dev/null &&
			test -d /run/wireguard'
	rm "/etc/systemd/system/postgresql@$cluster.service.d/wgpeer.conf"
	systemctl daemon-reload
	systemctl restart "postgresql@$cluster"
	wait_until 30 test -s "/run/postgresql/$cluster.pid"
	pm=$(head -n 1 "/run/postgresql/$cluster.pid")
	same "without the drop-in the postmaster has no capability" 0000000000000000 \
		"$(awk '/^CapEff/ {print $2}' "/proc/$pm/status")"
	tap_summary systemd
	exit
fi

# logged COMMAND...: run it quietly (its output in
# $WORK/command.log); its output is shown when it fails
logged() {
	"$@" >"$WORK/command.log" 2>&1 && return 0
	tail -n 30 "$WORK/command.log" | sed 's/^/   /'
	return 1
}

# build_package SRC: build the binary packages from the tree SRC (in
# place) with dpkg-buildpackage, one postgresql-NN-wgpeer for each major of
# debian/pgversions installed here, and lintian them (no error); sets
# PKGS, DEBVERSION, ARCH and CHANGES (the .deb files are next to SRC).
# False when nothing was built.
build_package() {
	local src=$1 p lint lint_status
	cd "$src"
	mapfile -t PKGS < <(pg_buildext supported-versions | sed 's/.*/postgresql-&-wgpeer/')
	check "debian/pgversions names a PostgreSQL version installed here" test ${#PKGS[@]} -gt 0
	DEBVERSION=$(dpkg-parsechangelog -S Version)
	dpkg-checkbuilddeps >/dev/null 2>&1 || apt-get build-dep -y -qq "$src" >/dev/null
	if dpkg-buildpackage -us -uc -b >"$src/../build.log" 2>&1; then
		ok "dpkg-buildpackage -us -uc -b"
	else
		not_ok "dpkg-buildpackage -us -uc -b"
		tail -n 40 "$src/../build.log" | sed 's/^/   /'
		return 1
	fi
	check "the build ran the unit tests (make unittest)" \
		grep -q '^test_keys: [0-9]* passed, 0 failed' "$src/../build.log"
	ARCH=$(dpkg --print-architecture)
	CHANGES=$src/../wgpeer_${DEBVERSION}_$ARCH.changes
	for p in "${PKGS[@]}"; do
		check "built ${p}_${DEBVERSION}_$ARCH.deb" \
			test -f "$src/../${p}_${DEBVERSION}_$ARCH.deb"
	done
	# lintian: no error; what it says is shown
	lint=$(lintian --fail-on error --pedantic -I "$CHANGES" 2>&1) && lint_status=0 ||
		lint_status=$?
	printf '%s\n' "$lint" | grep -v 'running with root privileges' | sed 's/^/   lintian: /'
	check "lintian reports no error" test "$lint_status" -eq 0
}

# the template unit the packages ship
UNIT=usr/lib/systemd/system/wgpeer-wireguard-go@.service

# installed_checks PKG: the installed package PKG's files are in place
# (run from the source tree; PKGLIBDIR, EXTDIR, BITCODEDIR and EXTVERSION
# set)
installed_checks() {
	local pkg=$1 f
	none "dpkg --verify $pkg (installed files are the package's)" dpkg --verify "$pkg"
	check "wgpeer.so installed" test -f "$PKGLIBDIR/wgpeer.so"
	check "wgpeer.control installed" test -f "$EXTDIR/wgpeer.control"
	for f in sql/wgpeer--*.sql; do
		check "$(basename "$f") installed" cmp -s "$f" "$EXTDIR/$(basename "$f")"
	done
	check "JIT bitcode installed" test -f "$BITCODEDIR/wgpeer.index.bc"
	check "the template unit installed" test -f "/$UNIT"
	check "the drop-in example installed" \
		test -f "/usr/share/doc/$pkg/examples/postgresql-cap-net-admin.conf"
	for f in $(sed 's,.*/,,; s,\.md$,,' debian/docs); do
		check "the documentation's $f installed" \
			bash -c "ls /usr/share/doc/$pkg/$f.md* >/dev/null 2>&1"
	done
	none "wgpeer.so finds every library it links" \
		bash -c "ldd '$PKGLIBDIR/wgpeer.so' | grep 'not found'"
	same "the installed control file is this version" "$EXTVERSION" \
		"$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$EXTDIR/wgpeer.control")"
}

# purge_checks PKG: purge the installed package PKG; nothing of wgpeer
# is left (PKGLIBDIR, EXTDIR and WORK set)
purge_checks() {
	local pkg=$1
	check "apt-get purge $pkg" logged apt-get purge -y "$pkg"
	same "$pkg is gone" "not-installed" \
		"$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || echo not-installed)"
	none "nothing of wgpeer left in the PostgreSQL directories" \
		find "$PKGLIBDIR" "$EXTDIR" -name '*wgpeer*'
	none "nothing of wgpeer left in the systemd units" \
		find /usr/lib/systemd/system -name '*wgpeer*'
	check "/usr/share/doc/$pkg removed" test ! -e "/usr/share/doc/$pkg"
}

# --- in a chroot of test/pgversions.sh ------------------------------------
#
# --chroot: test/pgversions.sh runs this in the chroot of another major (17,
# 18), as root, in its throwaway copy of the tree (built in place): the
# package built there with -Werror (the one build of that chroot: its later
# suites use it), lintian, installed, its files checked, then a cluster
# made the Debian way with wgpeer preloaded: CREATE EXTENSION and the apply
# worker running.  The package stays installed for pgversions' suites
# (installcheck, the upgrade test, the worker's suite run against it);
# --chroot-purge removes it at the end.  The systemd checks stay on the
# host (no systemd in the chroot; the units are the same files).
if [ "${1:-}" = --chroot ] || [ "${1:-}" = --chroot-purge ]; then
	PKGLIBDIR=$(pg_config --pkglibdir)
	EXTDIR=$(pg_config --sharedir)/extension
	BITCODEDIR=$PKGLIBDIR/bitcode
	EXTVERSION=$(sed -n "s/^default_version = '\(.*\)'/\1/p" wgpeer.control)
	major=$(pg_config --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
	PKG=postgresql-$major-wgpeer
	WORK=$(mktemp -d /tmp/wgpeer-package.XXXXXX)
	trap 'rm -rf "$WORK"' EXIT
fi
if [ "${1:-}" = --chroot ]; then
	export WERROR=-Werror
	build_package "$PWD" || {
		tap_summary package_test
		exit 1
	}
	same "the package built is $PKG" "$PKG" "${PKGS[*]}"
	same "debian/control was made for this system's major" "Package: $PKG" \
		"$(grep '^Package:' debian/control)"
	DEB=$PWD/../${PKG}_${DEBVERSION}_$ARCH.deb
	none "the package has no maintainer scripts" \
		bash -c "dpkg-deb --ctrl-tarfile '$DEB' | tar -t | grep -E '(pre|post)(inst|rm)$'"
	check "apt-get install ./$(basename "$DEB")" \
		logged apt-get install -y --no-install-recommends "$DEB"
	installed_checks "$PKG"

	# a cluster as a user makes one, the package's library preloaded; its
	# port is the major's, since the chroots of one run share the network
	port=$((5400 + major))
	check "pg_createcluster $major pkgtest with shared_preload_libraries = wgpeer" \
		logged pg_createcluster --start -p "$port" -o shared_preload_libraries=wgpeer \
			"$major" pkgtest
	q() { runuser -u postgres -- psql -p "$port" -XAtq -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
	same "CREATE EXTENSION wgpeer from the package" "$EXTVERSION" \
		"$(q 'CREATE EXTENSION wgpeer' && q "SELECT extversion FROM pg_extension WHERE extname = 'wgpeer'")"
	same "its functions work (wg_pubkey of wg_genkey is a key)" 44 \
		"$(q 'SELECT length(wgpeer.wg_pubkey(wgpeer.wg_genkey()))')"
	worker_running() {
		[ "$(q "SELECT count(*) FROM pg_stat_activity
			WHERE backend_type = 'wgpeer apply worker'")" = 1 ]
	}
	check "the apply worker runs" wait_until 30 worker_running
	# 17+: its own wait event while it sleeps (pg_compat.h), not "Extension"
	worker_waits() {
		[ "$(q "SELECT wait_event FROM pg_stat_activity
			WHERE backend_type = 'wgpeer apply worker'")" = WgpeerWorkerMain ]
	}
	check "the worker sleeps in wait event WgpeerWorkerMain" wait_until 30 worker_waits
	check "the server log says it started (its entry point found)" \
		grep -q 'wgpeer apply worker started' "/var/log/postgresql/postgresql-$major-pkgtest.log"
	none "the server log has no error" \
		grep -E 'ERROR|FATAL|PANIC|could not find function' \
			"/var/log/postgresql/postgresql-$major-pkgtest.log"
	check "pg_dropcluster --stop $major pkgtest" \
		logged pg_dropcluster --stop "$major" pkgtest
	tap_summary package_test
	exit
fi
if [ "${1:-}" = --chroot-purge ]; then
	purge_checks "$PKG"
	tap_summary package_purge
	exit
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "test/package_test.sh installs packages: run it as root" >&2
	exit 1
fi

NEEDED=(git dpkg-dev debhelper lintian postgresql-server-dev-all systemd
	jq wireguard-go build-essential)
. test/apt.sh
need_packages "${NEEDED[@]}"
export DEBIAN_FRONTEND=noninteractive

PG_CONFIG=${PG_CONFIG:-pg_config}
PKGLIBDIR=$($PG_CONFIG --pkglibdir)
EXTDIR=$($PG_CONFIG --sharedir)/extension
BITCODEDIR=$PKGLIBDIR/bitcode

WORK=$(mktemp -d /tmp/wgpeer-package.XXXXXX)
chmod 0755 "$WORK"
SRC=$WORK/wgpeer
PKGS=()          # the binary packages built, installed while the test runs
REMOVED=0        # the `make install` files were taken away
RESTORED=0

# purge what this test installed and put this checkout's build back
restore() {
	[ "$RESTORED" -eq 1 ] && return 0
	RESTORED=1
	local p status=0
	for p in "${PKGS[@]}"; do
		if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
			apt-get purge -y -qq "$p" >/dev/null || status=1
		fi
	done
	if [ "$REMOVED" -eq 1 ]; then
		make -s -C "$ROOT" install || status=1
	fi
	return $status
}
trap 'restore || echo "could not put the make install files back: run make install" >&2
	rm -rf "$WORK"' EXIT

# --- the source: a fresh clone, and the version in one place ---------------

git clone -q "${WGPEER_PACKAGE_REPO:-$ROOT}" "$SRC"
cd "$SRC"
check "the clone has debian/ (committed)" test -f debian/control.in

EXTVERSION=$(sed -n "s/^default_version = '\(.*\)'/\1/p" wgpeer.control)
DEBVERSION=$(dpkg-parsechangelog -S Version)
# the upstream part: no epoch, no Debian revision
upstream=${DEBVERSION#*:}
[[ $upstream == *-* ]] && upstream=${upstream%-*}
same "debian/changelog's upstream version is wgpeer.control's default_version" \
	"$EXTVERSION" "$upstream"

# PGXN wants semantic versions (x.y.z): 0.2 is spelled 0.2.0 there.
semver=$EXTVERSION
[[ $semver =~ ^[0-9]+$ ]] && semver=$semver.0
[[ $semver =~ ^[0-9]+\.[0-9]+$ ]] && semver=$semver.0
same "META.json version is default_version as a semantic version" \
	"$semver" "$(jq -r .version META.json)"
same "META.json provides.wgpeer.version is the same" \
	"$semver" "$(jq -r .provides.wgpeer.version META.json)"
# the fields PGXN's meta-spec 1.0.0 requires, and their forms
SEMVER_RE='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'
check "META.json follows PGXN meta-spec 1.0.0" jq -e --arg re "$SEMVER_RE" '
	.name == "wgpeer" and (.abstract | type == "string" and length > 0)
	and (.maintainer | (type == "string") or (type == "array" and length > 0))
	and .license == "postgresql" and .["meta-spec"].version == "1.0.0"
	and (.version | test($re))
	and (.provides | length > 0 and all(.[]; (.file | type == "string")
		and (.version | test($re))))
	and (.provides.wgpeer.file as $f | $f != null)
	and (.prereqs.runtime.requires.PostgreSQL | type == "string")
	and (.resources | type == "object")' META.json >/dev/null
check "META.json's provided file exists" test -f "$(jq -r .provides.wgpeer.file META.json)"
check "debian/control is what pg_buildext makes of debian/control.in" \
	pg_buildext checkcontrol

build_package "$SRC" || {
	tap_summary package_test
	exit 1
}

# --- the shipped systemd pieces ---------------------------------------------

PKG=${PKGS[0]}
DEB=$WORK/${PKG}_${DEBVERSION}_$ARCH.deb
X=$WORK/unpacked
dpkg-deb -x "$DEB" "$X"
DROPIN=usr/share/doc/$PKG/examples/postgresql-cap-net-admin.conf
check "the package ships the wireguard-go template unit" test -f "$X/$UNIT"
check "the package ships the CAP_NET_ADMIN drop-in as an example" test -f "$X/$DROPIN"
none "systemd-analyze verify wgpeer-wireguard-go@.service" \
	systemd-analyze verify --man=no "$X/$UNIT"
none "systemd-analyze verify wgpeer-wireguard-go@wg0.service (an instance)" \
	systemd-analyze verify --man=no "$X/${UNIT%@.service}@wg0.service"
# the drop-in, on PostgreSQL's own unit
D=$WORK/dropin
mkdir -p "$D/postgresql@.service.d"
cp /lib/systemd/system/postgresql@.service "$D/"
cp "$X/$DROPIN" "$D/postgresql@.service.d/wgpeer.conf"
none "systemd-analyze verify postgresql@15-main.service with the drop-in" \
	systemd-analyze verify --man=no "$D/postgresql@15-main.service"
echo 'AmbientCapabilitiez=CAP_NET_ADMIN' >>"$D/postgresql@.service.d/wgpeer.conf"
check "systemd-analyze verify reads the drop-in (a planted typo is reported)" \
	bash -c "systemd-analyze verify --man=no '$D/postgresql@15-main.service' 2>&1 |
		grep -q 'wgpeer.conf.*AmbientCapabilitiez'"
# installed, not enabled: nothing under /etc, no .wants link, no active
# drop-in, no maintainer script that could enable or start a unit
none "the package enables nothing (no /etc, .wants, .service.d)" \
	bash -c "dpkg-deb -c '$DEB' | grep -E '\./etc/|\.wants/|\.service\.d/'"
none "the package has no maintainer scripts" \
	bash -c "dpkg-deb --ctrl-tarfile '$DEB' | tar -t | grep -E '(pre|post)(inst|rm)$'"

# The units at work under a real systemd, in the test VM (the host runs no
# systemd); its results count here.
vm_out=$(WGPEER_VM=always bash "$ROOT/test/vm/run.sh" "$ROOT/test/package_test.sh" \
	--systemd-in-vm "$DEB" 2>&1) || true
printf '%s\n' "$vm_out" | grep -E '^(ok|not ok) - ' | sed 's/^/   systemd: /'
check "the units work under systemd (test VM)" \
	grep -qx 'systemd: [0-9]* passed, 0 failed' <<<"$vm_out"
grep -qx 'systemd: [0-9]* passed, 0 failed' <<<"$vm_out" ||
	printf '%s\n' "$vm_out" | tail -n 80 | sed 's/^/   /'

# --- installed in place of `make install` -------------------------------

# This checkout's build first, so it can be put back at once afterwards.
make -s -j"$(nproc)" -C "$ROOT" >/dev/null
REMOVED=1
rm -rf "$PKGLIBDIR/wgpeer.so" "$EXTDIR"/wgpeer.control "$EXTDIR"/wgpeer--*.sql \
	"$BITCODEDIR/wgpeer" "$BITCODEDIR/wgpeer.index.bc"
check "apt-get install ./$(basename "$DEB")" \
	logged apt-get install -y --no-install-recommends "$DEB"
installed_checks "$PKG"

# the regression and isolation suites against the packaged files
check "make installcheck against the package (debian/tests/installcheck)" \
	debian/tests/installcheck

# --- purged: nothing left -----------------------------------------------

purge_checks "$PKG"

# --- this checkout's build back -----------------------------------------

check "make install from the checkout again" restore
check "wgpeer.so is back" test -f "$PKGLIBDIR/wgpeer.so"

tap_summary package_test
