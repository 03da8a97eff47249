#!/bin/bash
# One-time config links per second, in a throwaway cluster: for PEERS peers,
# wg_config_link() (a token each) and wg_redeem_config_link() (the config
# and its PNG QR code, the link deleted), against two baselines measured in
# the same run on the same peers: wg_peer_config() alone, and
# wg_peer_config() + wg_qr_png(), the same output without a link.  Every
# call is its own transaction (a procedure commits after each), timed
# inside the server.  Prints the median of ROUNDS rounds of each and the
# ratios.
# Run as root after `make install`:  bash bench/config_link.sh
# (or with PG_BIN pointing at another installation's bin directory).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. test/cluster.sh

ROUNDS=${ROUNDS:-5}
PEERS=${PEERS:-1000}
TMP=$(mktemp -d /tmp/wgpeer-bench-link.XXXXXX)
trap 'cluster_stop; rm -rf "$TMP"' EXIT
cluster_start "$TMP/pg"
cluster_psql >/dev/null <<EOF
CREATE EXTENSION wgpeer;
SELECT wgpeer.wg_add_interface('wgbl', 'vpn.example.com:51820', '10.90.0.1/16',
                               address6 => 'fd00:90::1/64', dns => '1.1.1.1',
                               persistent_keepalive => 25);
SELECT count(wgpeer.wg_create_peer('user-' || i, interface => 'wgbl'))
FROM generate_series(1, $PEERS) AS i;
CREATE TABLE bench_link (peer_id uuid, token text);
EOF

# Each procedure makes or redeems one thing per transaction over every
# peer and returns, as OUT rate, how many per second.
cluster_psql <<'EOF'
CREATE PROCEDURE make_links(INOUT rate float8 DEFAULT NULL) LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	n bigint := 0;
	p uuid;
BEGIN
	TRUNCATE bench_link;
	COMMIT;
	FOR p IN SELECT peer_id FROM wgpeer.peer ORDER BY peer_id LOOP
		INSERT INTO bench_link VALUES (p, wgpeer.wg_config_link(p));
		COMMIT;
		n := n + 1;
	END LOOP;
	rate := n / extract(epoch FROM clock_timestamp() - t0);
END
$$;
CREATE PROCEDURE redeem_links(INOUT rate float8 DEFAULT NULL) LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	n bigint := 0;
	t text;
	got int;
BEGIN
	FOR t IN SELECT token FROM bench_link ORDER BY peer_id LOOP
		SELECT octet_length(config) + octet_length(qr_png) INTO got
		FROM wgpeer.wg_redeem_config_link(t);
		COMMIT;
		n := n + 1;
	END LOOP;
	rate := n / extract(epoch FROM clock_timestamp() - t0);
END
$$;
CREATE PROCEDURE fetch_configs(with_qr boolean, INOUT rate float8 DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	n bigint := 0;
	p uuid;
	got int;
BEGIN
	FOR p IN SELECT peer_id FROM wgpeer.peer ORDER BY peer_id LOOP
		IF with_qr THEN
			SELECT octet_length(c) + octet_length(wgpeer.wg_qr_png(c)) INTO got
			FROM wgpeer.wg_peer_config(p) AS c;
		ELSE
			SELECT octet_length(wgpeer.wg_peer_config(p)) INTO got;
		END IF;
		COMMIT;
		n := n + 1;
	END LOOP;
	rate := n / extract(epoch FROM clock_timestamp() - t0);
END
$$;
EOF


make_rates=()
redeem_rates=()
config_rates=()
config_qr_rates=()
for _ in $(seq "$ROUNDS"); do
	make_rates+=("$(cluster_psql -At -c "CALL make_links()")")
	redeem_rates+=("$(cluster_psql -At -c "CALL redeem_links()")")
	config_rates+=("$(cluster_psql -At -c "CALL fetch_configs(false)")")
	config_qr_rates+=("$(cluster_psql -At -c "CALL fetch_configs(true)")")
done

# every link was redeemed, once: none is left, and one more try fails
left=$(cluster_psql -At -c "SELECT count(*) FROM wgpeer.config_link")
[ "$left" = 0 ] || { echo "$left links left unredeemed" >&2; exit 1; }
if cluster_psql -c "SELECT * FROM wgpeer.wg_redeem_config_link(
		(SELECT token FROM bench_link LIMIT 1))" >/dev/null 2>&1; then
	echo "a redeemed link redeemed again" >&2
	exit 1
fi

make_med=$(printf '%s\n' "${make_rates[@]}" | median)
redeem_med=$(printf '%s\n' "${redeem_rates[@]}" | median)
config_med=$(printf '%s\n' "${config_rates[@]}" | median)
config_qr_med=$(printf '%s\n' "${config_qr_rates[@]}" | median)
printf 'one transaction per call, median of %d rounds of %d peers:\n' "$ROUNDS" "$PEERS"
printf 'links made/s, wg_config_link()                    : %8.0f\n' "$make_med"
printf 'redemptions/s, wg_redeem_config_link() (conf+PNG) : %8.0f\n' "$redeem_med"
printf 'configs/s, wg_peer_config() + wg_qr_png()         : %8.0f\n' "$config_qr_med"
printf 'configs/s, wg_peer_config()                       : %8.0f\n' "$config_med"
printf 'ratio redemption / (config + QR)                  : %8.2fx\n' \
	"$(echo "$redeem_med / $config_qr_med" | bc -l)"
printf 'ratio redemption / config alone                   : %8.2fx\n' \
	"$(echo "$redeem_med / $config_med" | bc -l)"
