# The stage of a test (or benchmark) on wireguard-go devices in a network
# namespace of its own.  Source it from a script run as root, after
# test/cluster.sh, having set STAGE (a short name).  Defined here: NS (the
# namespace's name; the script makes it when it needs it), TMP (a
# temporary directory the cluster's user can read), WGPEER_BACKEND=uapi
# with the daemons' logs in TMP (test/wireguard.sh), and test/tap.sh.  At
# exit the script's own stage_cleanup_extra runs first, if it defines one;
# then the daemons, the namespace, the cluster and TMP go.

if [ "$(id -u)" -ne 0 ]; then
	echo "$0 makes network namespaces: run it as root" >&2
	exit 1
fi

NS=wgpeer-$STAGE-$$
TMP=$(mktemp -d "/tmp/wgpeer-$STAGE.XXXXXX")
chmod 755 "$TMP"
WGPEER_BACKEND=uapi
WG_DEV_LOGS=$TMP
. test/wireguard.sh
. test/tap.sh

stage_cleanup() {
	if declare -F stage_cleanup_extra >/dev/null; then
		stage_cleanup_extra
	fi
	wg_dev_cleanup
	ip netns del "$NS" 2>/dev/null || true
	cluster_stop
	rm -rf "$TMP"
}
trap stage_cleanup EXIT
