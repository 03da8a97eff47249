# The stage of the end-to-end tests with a real WireGuard client, natively
# on wireguard-go: the server's network namespace and the client's, joined
# by a veth pair.  Source it from a test run as root, after test/cluster.sh,
# having set:
#   E2E_NAME     a short name: the namespaces, veth ends and temp directory
#   DEV, CDEV    the server interface (wgpeer's) and the client's
#   E2E_NET      the veth /24, as its first three octets (192.168.249):
#                the server end is .1, the client end .2
# Then `e2e_start` refuses to run beside another daemon of DEV or CDEV,
# makes the namespaces, the veth pair and the server interface DEV in the
# server's namespace (wireguard-go, run as the cluster's user so that the
# worker may use its socket).  Defined here: NS_S, NS_C, TMP (removed at
# exit with everything else; a test's own e2e_cleanup_extra, if defined,
# runs first), srv and cli (a command in either namespace), on_server and
# not_on_server KEY.

if [ "$(id -u)" -ne 0 ]; then
	echo "$0 makes network namespaces: run it as root" >&2
	exit 1
fi

NS_S=wgpeer-$E2E_NAME-srv-$$
NS_C=wgpeer-$E2E_NAME-cli-$$
TMP=$(mktemp -d "/tmp/wgpeer-$E2E_NAME.XXXXXX")
chmod 755 "$TMP"
WGPEER_BACKEND=uapi
WG_DEV_LOGS=$TMP
. test/wireguard.sh
. test/tap.sh

e2e_cleanup() {
	if declare -F e2e_cleanup_extra >/dev/null; then
		e2e_cleanup_extra
	fi
	wg_dev_cleanup
	ip netns del "$NS_S" 2>/dev/null || true
	ip netns del "$NS_C" 2>/dev/null || true
	cluster_stop
	rm -rf "$TMP"
}
trap e2e_cleanup EXIT

srv() { ip netns exec "$NS_S" "$@"; }
cli() { ip netns exec "$NS_C" "$@"; }
on_server() { srv wg show "$DEV" peers | grep -qx "$1"; }
not_on_server() { ! on_server "$1"; }

# e2e_start [--no-server-device]: the namespaces, the veth pair and, unless
# told not to, the server interface
e2e_start() {
	for f in "$WG_RUN_DIR/$DEV.sock" "$WG_RUN_DIR/$CDEV.sock"; do
		if [ -e "$f" ]; then
			echo "$f exists: another wireguard-go runs $(basename "$f" .sock)" >&2
			exit 1
		fi
	done
	ip netns add "$NS_S"
	ip netns add "$NS_C"
	veth_pair "$NS_S" "$E2E_NAME-s" "$E2E_NET.1/24" "$NS_C" "$E2E_NAME-c" "$E2E_NET.2/24"
	[ "${1:-}" = --no-server-device ] || wg_dev_add "$DEV" "$NS_S"
}
