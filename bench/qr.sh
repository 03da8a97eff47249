#!/bin/bash
# QR PNGs per second for a typical client config (PSK, IPv6, DNS; ~360
# bytes): wg_qr_png() in a throwaway cluster against the seed's way, one
# `qrencode -o file.png` process per code, in the same run.  Each config
# has its own keys and addresses.  Prints the median of ROUNDS rounds for
# each, and the ratio; "in SQL" times the function inside one statement,
# "to client" also ships every PNG to psql.
# Run as root after `make install`:  bash bench/qr.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
. test/cluster.sh

ROUNDS=${ROUNDS:-5}
SQL_CODES=${SQL_CODES:-2000}
SHELL_CODES=${SHELL_CODES:-200}
TMP=$(mktemp -d /tmp/wgpeer-bench.XXXXXX)
trap 'cluster_stop; rm -rf "$TMP"' EXIT
cluster_start "$TMP/pg"
cluster_psql -c "CREATE EXTENSION wgpeer" >/dev/null

# Configs shaped like wg_peer_config's output, with fresh keys each.
cluster_psql <<EOF
CREATE TABLE bench_cfg AS
SELECT i, format(E'[Interface]\nPrivateKey = %s\nAddress = 10.10.%s.%s/32, fd00:10:10::%s/128\n'
                 'DNS = 1.1.1.1, 2606:4700:4700::1111\n\n[Peer]\nPublicKey = %s\n'
                 'PresharedKey = %s\nEndpoint = vpn.example.com:51820\n'
                 'AllowedIPs = 0.0.0.0/0, ::/0\nPersistentKeepalive = 25\n',
                 wgpeer.wg_genkey(), i / 250, i % 250 + 2, to_hex(i + 2),
                 wgpeer.wg_pubkey(wgpeer.wg_genkey()), wgpeer.wg_genpsk()) AS config
FROM generate_series(1, $SQL_CODES) AS i;
EOF
# PNGs per second over the whole table, timed inside the server.
cluster_psql <<'EOF'
CREATE FUNCTION png_rate() RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	n bigint;
BEGIN
	SELECT count(wgpeer.wg_qr_png(config)) INTO n FROM bench_cfg;
	RETURN n / extract(epoch FROM clock_timestamp() - t0);
END
$$;
EOF
cluster_psql -At -c "SELECT min(octet_length(config)), max(octet_length(config)) FROM bench_cfg" |
	{ IFS='|' read -r lo hi; echo "config size: $lo..$hi bytes"; }
mkdir "$TMP/cfg"
cluster_psql -At -c "SELECT translate(encode(convert_to(config, 'UTF8'), 'base64'), E'\\n', '')
                     FROM bench_cfg WHERE i <= $SHELL_CODES ORDER BY i" | {
	n=0
	while read -r b64; do
		n=$((n + 1))
		base64 -d <<<"$b64" >"$TMP/cfg/$n"
	done
}


sql_rates=()
client_rates=()
shell_rates=()
for _ in $(seq "$ROUNDS"); do
	sql_rates+=("$(cluster_psql -At -c "SELECT png_rate()")")

	start=$(date +%s.%N)
	cluster_psql -c "COPY (SELECT wgpeer.wg_qr_png(config) FROM bench_cfg) TO STDOUT" >/dev/null
	end=$(date +%s.%N)
	client_rates+=("$(echo "$SQL_CODES / ($end - $start)" | bc -l)")

	start=$(date +%s.%N)
	for n in $(seq "$SHELL_CODES"); do
		qrencode -o "$TMP/seed.png" <"$TMP/cfg/$n"
	done
	end=$(date +%s.%N)
	shell_rates+=("$(echo "$SHELL_CODES / ($end - $start)" | bc -l)")
done

# both sides produce valid PNGs of the same config
cluster_psql -At -c "SELECT encode(wgpeer.wg_qr_png(config), 'base64') FROM bench_cfg
                     WHERE i = $SHELL_CODES" | base64 -d >"$TMP/ours.png"
for f in ours seed; do
	zbarimg -q --raw -Sbinary "$TMP/$f.png" 2>/dev/null | cmp -s - "$TMP/cfg/$SHELL_CODES" ||
		{ echo "$f.png does not decode to its config" >&2; exit 1; }
done

sql_med=$(printf '%s\n' "${sql_rates[@]}" | median)
client_med=$(printf '%s\n' "${client_rates[@]}" | median)
shell_med=$(printf '%s\n' "${shell_rates[@]}" | median)
printf 'PNGs/s, wg_qr_png() in SQL              : %8.0f  (median of %d rounds of %d)\n' \
	"$sql_med" "$ROUNDS" "$SQL_CODES"
printf 'PNGs/s, wg_qr_png() to client (COPY)    : %8.0f  (median of %d rounds of %d)\n' \
	"$client_med" "$ROUNDS" "$SQL_CODES"
printf 'PNGs/s, qrencode -o file.png (seed)     : %8.0f  (median of %d rounds of %d)\n' \
	"$shell_med" "$ROUNDS" "$SHELL_CODES"
printf 'ratio in SQL / seed                     : %8.1fx\n' \
	"$(echo "$sql_med / $shell_med" | bc -l)"
printf 'ratio to client / seed                  : %8.1fx\n' \
	"$(echo "$client_med / $shell_med" | bc -l)"
