# WireGuard interfaces for the shell tests and benchmarks, in the kernel or
# in userspace, so that one test script runs against either backend.
# Source it (after test/cluster.sh, whose $WGPEER_USER it uses), then:
#   wg_dev_add NAME [NETNS]   create interface NAME (in NETNS): a kernel
#                             interface, or with WGPEER_BACKEND=uapi a
#                             wireguard-go daemon run as $WGPEER_USER with
#                             CAP_NET_ADMIN, so that the worker may use its
#                             socket (wireguard-go exits when its socket's
#                             owner or mode is changed)
#   wg_dev_del NAME           delete it (stops its daemon)
#   wg_dev_cleanup            stop every daemon started here and give
#                             /var/run/wireguard its mode and group back
#   kernel_peers NAME         NAME's peers as the device has them, one line
#                             each: public key, preshared key, allowed IPs
#                             (sorted), keepalive; sorted
#   wanted_peers NAME         the same as the database wants them (its live
#                             peers, their routes among the allowed IPs),
#                             read with q (test/cluster.sh)
#   wg_client_up NAME NETNS CONFIG PREFIX...
#                             a client interface NAME in NETNS configured
#                             from a generated client CONFIG as wg-quick
#                             would (stripped, its Addresses), routing only
#                             the server's tunnel PREFIXes through it
#   veth_pair NS_A LINK_A ADDR_A NS_B LINK_B ADDR_B
#                             a veth pair joining two existing network
#                             namespaces ("" for this one), each end
#                             addressed and up, loopback up in both
# Daemon logs go to $WG_DEV_LOGS (default /tmp).  Needs root.

WGPEER_BACKEND=${WGPEER_BACKEND:-netlink}
WGPEER_USER=${WGPEER_USER:-wgpeer_test}
WG_RUN_DIR=/var/run/wireguard
WG_DEV_LOGS=${WG_DEV_LOGS:-/tmp}
WG_RUN_DIR_WAS=
declare -A WG_DEV_PID=()
declare -A WG_DEV_NS=()

# in NETNS (or here when empty): COMMAND...
wg_dev_in() {
	local ns=$1
	shift
	if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

wg_dev_add() {
	local name=$1 ns=${2:-} i
	WG_DEV_NS[$name]=$ns
	if [ "$WGPEER_BACKEND" != uapi ]; then
		wg_dev_in "$ns" ip link add "$name" type wireguard
		return
	fi
	if [ -e "$WG_RUN_DIR/$name.sock" ]; then
		echo "wg_dev_add: $WG_RUN_DIR/$name.sock exists: another daemon runs $name" >&2
		return 1
	fi
	mkdir -p "$WG_RUN_DIR"
	if [ -z "$WG_RUN_DIR_WAS" ]; then
		WG_RUN_DIR_WAS=$(stat -c '%a %g' "$WG_RUN_DIR")
		chgrp "$(id -g "$WGPEER_USER")" "$WG_RUN_DIR"
		chmod 775 "$WG_RUN_DIR"
	fi
	# CAP_DAC_OVERRIDE too: /dev/net/tun is mode 0666 on Debian but 0600 in
	# some containers.  Started as a simple command (ip netns exec and
	# setpriv exec what follows), so that $! is the daemon itself.
	local as=(setpriv --reuid="$WGPEER_USER" --regid="$(id -g "$WGPEER_USER")"
		--init-groups --inh-caps=+net_admin,+dac_override
		--ambient-caps=+net_admin,+dac_override --)
	[ -z "$ns" ] || as=(ip netns exec "$ns" "${as[@]}")
	"${as[@]}" wireguard-go -f "$name" >>"$WG_DEV_LOGS/wireguard-go.$name.log" 2>&1 &
	WG_DEV_PID[$name]=$!
	for i in $(seq 100); do
		[ -S "$WG_RUN_DIR/$name.sock" ] && return 0
		sleep 0.1
	done
	echo "wg_dev_add: wireguard-go made no socket for $name" >&2
	return 1
}

wg_dev_del() {
	local name=$1 pid=${WG_DEV_PID[$1]:-} ns=${WG_DEV_NS[$1]:-}
	if [ -z "$pid" ]; then
		wg_dev_in "$ns" ip link del "$name"
		return
	fi
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "WG_DEV_PID[$name]"
	rm -f "$WG_RUN_DIR/$name.sock"
	# its tun device goes with it
	while wg_dev_in "$ns" ip link show "$name" >/dev/null 2>&1; do sleep 0.1; done
}

wg_dev_cleanup() {
	local name
	for name in "${!WG_DEV_PID[@]}"; do
		kill "${WG_DEV_PID[$name]}" 2>/dev/null || true
		wait "${WG_DEV_PID[$name]}" 2>/dev/null || true
		rm -f "$WG_RUN_DIR/$name.sock"
	done
	WG_DEV_PID=()
	if [ -n "$WG_RUN_DIR_WAS" ]; then
		chmod "${WG_RUN_DIR_WAS% *}" "$WG_RUN_DIR"
		chgrp "${WG_RUN_DIR_WAS#* }" "$WG_RUN_DIR"
		WG_RUN_DIR_WAS=
	fi
}

# allowed IPs (third field) in a canonical order
sort_allowed_ips() {
	perl -F'\t' -lane '$F[2] = join(",", sort split(/,/, $F[2])); print join("\t", @F)'
}

kernel_peers() {
	wg show "$1" dump | tail -n +2 | awk -F'\t' -v OFS='\t' '{ print $1, $2, $4, $8 }' |
		sort_allowed_ips | sort
}

wanted_peers() {
	q -c "SELECT p.public_key, coalesce(p.preshared_key, '(none)'),
				 concat_ws(',', host(p.address) || '/32', host(p.address6) || '/128',
				           array_to_string(p.routes, ',')),
				 coalesce(nullif(i.persistent_keepalive, 0)::text, 'off')
		  FROM wgpeer.peer p JOIN wgpeer.interface i ON i.name = p.interface
		  WHERE p.interface = '$1' AND p.status IN ('creating', 'active')" |
		sort_allowed_ips | sort
}

wg_client_up() {
	local name=$1 ns=$2 conf=$3 a
	shift 3
	wg_dev_add "$name" "$ns"
	(umask 077 && wg-quick strip "$conf" >"$conf.stripped")
	wg_dev_in "$ns" wg setconf "$name" "$conf.stripped"
	for a in $(sed -n 's/^Address = //p' "$conf" | tr ',' ' '); do
		case $a in
			*:*) wg_dev_in "$ns" ip addr add "$a" dev "$name" nodad ;;
			*) wg_dev_in "$ns" ip addr add "$a" dev "$name" ;;
		esac
	done
	wg_dev_in "$ns" ip link set "$name" up
	for a in "$@"; do
		wg_dev_in "$ns" ip route add "$a" dev "$name"
	done
}

# one end of a veth pair, addressed and up: NETNS LINK ADDRESS (see veth_pair)
veth_up() {
	local ns=$1 link=$2 addr=$3
	[ -z "$ns" ] || ip -n "$ns" link set lo up
	wg_dev_in "$ns" ip addr add "$addr" dev "$link"
	wg_dev_in "$ns" ip link set "$link" up
}

veth_pair() {
	local to=()
	[ -z "$4" ] || to=(netns "$4")
	wg_dev_in "$1" ip link add "$2" type veth peer name "$5" "${to[@]}"
	veth_up "$1" "$2" "$3"
	veth_up "$4" "$5" "$6"
}
