#!/bin/bash
# Decode wgpeer's QR codes with a real reader and compare the bytes.
#
# Needs wgpeer installed (make install), zbar-tools, pngcheck, librsvg2-bin,
# wireguard-tools (wg-quick) and perl.  Starts a throwaway PostgreSQL cluster, then for several
# configs (typical, short, long, at the QR limit) checks that:
#   - zbarimg reads the exact config bytes back from wg_qr_png, at several
#     scales and margins, and pngcheck finds the PNG well formed;
#   - the SVG from wg_qr_svg, rasterised by rsvg-convert, decodes the same;
#   - the terminal text from wg_qr_text, as psql prints it unaligned,
#     redrawn as an image (light half blocks white), decodes the same;
#   - wg_peer_qr_png/svg/text of a real peer decode to wg_peer_config;
#   - a redeemed one-time config link returns that config and a QR code
#     of it, which `wg-quick strip` accepts;
#   - a LATIN1 database's config arrives in UTF-8, a SQL_ASCII database
#     gets half blocks, and a LATIN1 one a clear error instead.
# Run as root after `make install` (the cluster runs as an ordinary user).
set -euo pipefail
cd "$(dirname "$0")/.."
. test/cluster.sh
. test/tap.sh

WORK=$(mktemp -d /tmp/wgpeer-qr-decode.XXXXXX)
trap 'cluster_stop; rm -rf "$WORK"' EXIT
cluster_start "$WORK/pg"
cluster_psql -c 'CREATE EXTENSION wgpeer'

# Run one query in which cfg is the content of the file $1, byte for byte
# (passed as base64: a shell variable would lose the final newline); print
# the result unaligned, without header or footer.
query() {
	local cfg=$1 sql=$2
	cluster_psql -At -v b64="$(base64 -w0 "$cfg")" <<EOF
WITH c AS (SELECT convert_from(decode(:'b64', 'base64'), 'UTF8') AS cfg)
$sql FROM c;
EOF
}

# decodes_to IMAGE FILE: zbarimg's exact bytes (-Sbinary: no charset
# guessing, no newline added) from IMAGE equal FILE's.
decodes_to() {
	zbarimg -q --raw -Sbinary "$1" 2>/dev/null | cmp -s - "$2"
}

# png_ok FILE: pngcheck finds FILE a well-formed PNG
png_ok() { pngcheck -q "$1" >/dev/null; }

# Redraw psql's rendering of wg_qr_text as a PBM image: every character is
# two pixel rows (top and bottom half); drawn halves are light modules.
# Scaled 4x so the reader sees clean modules.
text_to_pbm() {
	perl -CS -e '
		my @rows;
		while (my $line = <STDIN>) {
			chomp $line;
			my (@top, @bottom);
			for my $c (split //, $line) {
				my ($t, $b) = $c eq "\x{2588}" ? (0, 0) : $c eq "\x{2580}" ? (0, 1)
					: $c eq "\x{2584}" ? (1, 0) : $c eq " " ? (1, 1)
					: die "unexpected character U+" . sprintf("%04X", ord $c) . "\n";
				push @top, $t; push @bottom, $b;
			}
			push @rows, \@top, \@bottom;
		}
		my $s = 4;
		my $w = @{$rows[0]} * $s;
		print "P1\n$w ", @rows * $s, "\n";
		for my $r (@rows) {
			my $line = join(" ", map { ($_) x $s } @$r) . "\n";
			print $line x $s;
		}'
}

# The configs: a typical one (PSK, IPv6), a short one, a long one, and
# one of 2953 bytes, the most a QR code holds.
cat >"$WORK/typical.conf" <<'EOF'
[Interface]
PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=
Address = 10.10.0.2/32, fd00:10:10::2/128
DNS = 1.1.1.1, 2606:4700:4700::1111

[Peer]
PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
PresharedKey = FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=
Endpoint = vpn.example.com:51820
AllowedIPs = 0.0.0.0/0, ::/0
PersistentKeepalive = 25
EOF
head -n 3 "$WORK/typical.conf" >"$WORK/short.conf"
{
	head -n 9 "$WORK/typical.conf"
	printf 'AllowedIPs = '
	for i in $(seq 1 60); do printf '10.%d.0.0/16, ' "$i"; done
	printf 'fd00::/8\n'
} >"$WORK/long.conf"
{
	printf '# wgpeer \xc3\xa9t\xc3\xa9\n'
	cat "$WORK/typical.conf"
	for i in $(seq 1 40); do printf '# padding %090d\n' "$i"; done
} >"$WORK/limit.conf"
truncate -s 2953 "$WORK/limit.conf"

for name in typical short long limit; do
	cfg=$WORK/$name.conf

	for sm in "4 4" "2 4" "3 2" "8 6"; do
		set -- $sm
		png=$WORK/$name-$1-$2.png
		query "$cfg" "SELECT encode(wgpeer.wg_qr_png(cfg, $1, $2), 'base64')" |
			base64 -d >"$png"
		check "pngcheck $(basename "$png")" png_ok "$png"
		check "PNG of $name (scale $1, margin $2) decodes to $name.conf" \
			decodes_to "$png" "$cfg"
	done

	svg=$WORK/$name.svg
	query "$cfg" "SELECT wgpeer.wg_qr_svg(cfg, 4, 4)" >"$svg"
	rsvg-convert "$svg" -o "$WORK/$name-svg.png"
	check "SVG of $name decodes to $name.conf" decodes_to "$WORK/$name-svg.png" "$cfg"

	query "$cfg" "SELECT wgpeer.wg_qr_text(cfg)" | text_to_pbm >"$WORK/$name-text.pbm"
	check "terminal text of $name decodes to $name.conf" \
		decodes_to "$WORK/$name-text.pbm" "$cfg"
done

# A real peer: its QR forms decode to its config.
cluster_psql -At >/dev/null <<'EOF'
SELECT wgpeer.wg_add_interface('wgqr', 'vpn.example.com:51820', '10.10.0.1/24',
                               address6 => 'fd00:10:10::1/64',
                               dns => '1.1.1.1, 2606:4700:4700::1111',
                               persistent_keepalive => 25);
SELECT wgpeer.wg_create_peer('qr-user', interface => 'wgqr');
EOF
id=$(cluster_psql -At -c "SELECT peer_id FROM wgpeer.peer WHERE user_id = 'qr-user'")
cluster_psql -At -c "SELECT wgpeer.wg_peer_config('$id')" >"$WORK/peer.conf"
# psql adds a newline after the value: the config ends in one already
truncate -s -1 "$WORK/peer.conf"
# the peer's config has a preshared key and an IPv6 address
peer_conf_full() {
	grep -q '^PresharedKey = ' "$WORK/peer.conf" && grep -q 'fd00:10:10::' "$WORK/peer.conf"
}
check "peer config has the PSK and the IPv6 address" peer_conf_full
cluster_psql -At -c "SELECT encode(wgpeer.wg_peer_qr_png('$id'), 'base64')" | base64 -d >"$WORK/peer.png"
check "wg_peer_qr_png decodes to the peer's config" decodes_to "$WORK/peer.png" "$WORK/peer.conf"
cluster_psql -At -c "SELECT wgpeer.wg_peer_qr_svg('$id')" >"$WORK/peer.svg"
rsvg-convert "$WORK/peer.svg" -o "$WORK/peer-svg.png"
check "wg_peer_qr_svg decodes to the peer's config" \
	decodes_to "$WORK/peer-svg.png" "$WORK/peer.conf"
cluster_psql -At -c "SELECT wgpeer.wg_peer_qr_text('$id')" | text_to_pbm >"$WORK/peer-text.pbm"
check "wg_peer_qr_text decodes to the peer's config" \
	decodes_to "$WORK/peer-text.pbm" "$WORK/peer.conf"

# A one-time config link, redeemed by a role that may do nothing else:
# its QR code decodes to the config it returns, which is the peer's
# config byte for byte and what `wg-quick strip` accepts.
cluster_psql -c "CREATE ROLE qr_redeemer" \
	-c "GRANT USAGE ON SCHEMA wgpeer TO qr_redeemer" \
	-c "GRANT EXECUTE ON FUNCTION wgpeer.wg_redeem_config_link(text, boolean) TO qr_redeemer"
token=$(cluster_psql -At -c "SELECT wgpeer.wg_config_link('$id')")
cluster_psql -At -v token="$token" >"$WORK/redeemed.b64" <<'EOF'
SET ROLE qr_redeemer;
-- one line: base64 of the config, '|', base64 of the PNG
SELECT translate(encode(convert_to(config, 'UTF8'), 'base64') || '|' ||
                 encode(qr_png, 'base64'), E'\n', '')
FROM wgpeer.wg_redeem_config_link(:'token');
EOF
cut -d'|' -f1 "$WORK/redeemed.b64" | base64 -d >"$WORK/redeemed.conf"
cut -d'|' -f2 "$WORK/redeemed.b64" | base64 -d >"$WORK/redeemed.png"
check "a redeemed link's config is the peer's config" \
	cmp -s "$WORK/redeemed.conf" "$WORK/peer.conf"
check "a redeemed link's QR code is a well-formed PNG" png_ok "$WORK/redeemed.png"
check "a redeemed link's QR code decodes to its config" \
	decodes_to "$WORK/redeemed.png" "$WORK/redeemed.conf"
# (through files, so that a failure shows what wg-quick said and printed)
strip_ok() {
	wg-quick strip "$WORK/redeemed.conf" >"$WORK/stripped.conf" 2>"$WORK/strip.err" &&
		grep -q '^PrivateKey = ' "$WORK/stripped.conf"
}
check "wg-quick strip accepts a redeemed config" strip_ok
strip_ok || {
	echo "# wg-quick strip of the redeemed config: exit and stderr, then stdout:"
	sed 's/^/#   /' "$WORK/strip.err" "$WORK/stripped.conf"
	sed 's/PrivateKey = .*/PrivateKey = (hidden)/; s/^/#   in: /' "$WORK/redeemed.conf"
}

# Other database encodings.  The code always carries UTF-8 (what the apps
# read): in a LATIN1 database an e-acute (one byte there) becomes two.  A
# SQL_ASCII database passes bytes through, half blocks included; LATIN1
# has no half blocks, so wg_qr_text refuses with SQLSTATE 22P05.
cluster_psql -c "CREATE DATABASE qr_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" \
	-c "CREATE DATABASE qr_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
for db in qr_latin1 qr_ascii; do
	cluster_psql -d "$db" -c 'CREATE EXTENSION wgpeer'
done
printf '# caf\xc3\xa9\n[Interface]\n' >"$WORK/utf8.conf"
cluster_psql -d qr_latin1 -At -c "SELECT encode(wgpeer.wg_qr_png(
	convert_from('\\x2320636166e90a5b496e746572666163655d0a'::bytea, 'LATIN1')), 'base64')" |
	base64 -d >"$WORK/latin1.png"
check "PNG from a LATIN1 database decodes to UTF-8" \
	decodes_to "$WORK/latin1.png" "$WORK/utf8.conf"
cluster_psql -d qr_latin1 -v VERBOSITY=verbose -c "SELECT wgpeer.wg_qr_text('x')" \
	>/dev/null 2>"$WORK/latin1.err" || true
# psql's error is SQLSTATE 22P05 saying a UTF8 database is needed; what
# it said instead is shown when not
latin1_refused() {
	grep -q '^ERROR:  22P05: wg_qr_text needs a UTF8 database' "$WORK/latin1.err" && return
	sed 's/^/   /' "$WORK/latin1.err"
	return 1
}
check "wg_qr_text in a LATIN1 database refuses with 22P05" latin1_refused
cluster_psql -d qr_ascii -At -v b64="$(base64 -w0 "$WORK/typical.conf")" <<'EOF' |
SELECT wgpeer.wg_qr_text(convert_from(decode(:'b64', 'base64'), 'SQL_ASCII'));
EOF
	text_to_pbm >"$WORK/ascii-text.pbm"
check "terminal text from a SQL_ASCII database decodes to typical.conf" \
	decodes_to "$WORK/ascii-text.pbm" "$WORK/typical.conf"

tap_summary qr_decode
