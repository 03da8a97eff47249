/*
 * test_config.c
 *		Unit tests of config.c: exact output, sizing, and refusal of any
 *		field that could break out of its line.
 */
#include <errno.h>
#include <string.h>

#include "core/config.h"
#include "unit.h"

/* A complete config with every optional field. */
static wg_client_config
full_config(void)
{
	wg_client_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.private_key = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
	cfg.address = "10.10.0.2/32";
	cfg.address6 = "fd00::2/128";
	cfg.dns = "1.1.1.1, 2606:4700::1111";
	cfg.mtu = 1420;
	cfg.server_public_key = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
	cfg.preshared_key = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=";
	cfg.endpoint = "vpn.example.com:51820";
	cfg.allowed_ips = "0.0.0.0/0, ::/0";
	cfg.persistent_keepalive = 25;
	return cfg;
}

static void
test_full(void)
{
	wg_client_config cfg = full_config();
	char		buf[1024];
	int			len = wg_config_render(&cfg, buf, sizeof(buf));

	CHECK_STR(buf,
			  "[Interface]\n"
			  "PrivateKey = dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n"
			  "Address = 10.10.0.2/32, fd00::2/128\n"
			  "DNS = 1.1.1.1, 2606:4700::1111\n"
			  "MTU = 1420\n"
			  "\n"
			  "[Peer]\n"
			  "PublicKey = hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n"
			  "PresharedKey = 3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=\n"
			  "Endpoint = vpn.example.com:51820\n"
			  "AllowedIPs = 0.0.0.0/0, ::/0\n"
			  "PersistentKeepalive = 25\n");
	CHECK(len == (int) strlen(buf));
}

/*
 * AmneziaWG lines go at the end of [Interface], in the clients' order:
 * S3, S4 only when set, ranges as lo-hi, I lines verbatim; an invalid set
 * is refused.
 */
static void
test_awg(void)
{
	wg_client_config cfg = full_config();
	wg_awg		awg = {.jc = 4,.jmin = 40,.jmax = 70,.s = {20, 30, 0, 16},
		.h = {{123456, 123456}, {234567, 234567}, {345678, 345700},
	{456789, 456789}},
	.i = {"<b 0xc0ff><r 16>", NULL, "<t>"}};
	char		buf[1024];

	cfg.awg = &awg;
	cfg.preshared_key = NULL;
	cfg.dns = NULL;
	wg_config_render(&cfg, buf, sizeof(buf));
	CHECK_STR(buf,
			  "[Interface]\n"
			  "PrivateKey = dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n"
			  "Address = 10.10.0.2/32, fd00::2/128\n"
			  "MTU = 1420\n"
			  "Jc = 4\nJmin = 40\nJmax = 70\nS1 = 20\nS2 = 30\nS4 = 16\n"
			  "H1 = 123456\nH2 = 234567\nH3 = 345678-345700\nH4 = 456789\n"
			  "I1 = <b 0xc0ff><r 16>\nI3 = <t>\n"
			  "\n"
			  "[Peer]\n"
			  "PublicKey = hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n"
			  "Endpoint = vpn.example.com:51820\n"
			  "AllowedIPs = 0.0.0.0/0, ::/0\n"
			  "PersistentKeepalive = 25\n");
	awg.i[1] = "<r 4>\n[Peer]";
	CHECK(wg_config_render(&cfg, NULL, 0) == -EINVAL);
	awg.i[1] = NULL;
	awg.h[1] = awg.h[0];
	CHECK(wg_config_render(&cfg, NULL, 0) == -EINVAL);
}

static void
test_minimal(void)
{
	wg_client_config cfg = full_config();
	char		buf[1024];

	cfg.private_key = NULL;
	cfg.public_key = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=";
	cfg.address6 = NULL;
	cfg.dns = NULL;
	cfg.mtu = 0;
	cfg.preshared_key = NULL;
	cfg.persistent_keepalive = 0;
	CHECK(wg_config_render(&cfg, buf, sizeof(buf)) > 0);
	CHECK_STR(buf,
			  "[Interface]\n"
			  "# PrivateKey = <the private key of 3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=>\n"
			  "Address = 10.10.0.2/32\n"
			  "\n"
			  "[Peer]\n"
			  "PublicKey = hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n"
			  "Endpoint = vpn.example.com:51820\n"
			  "AllowedIPs = 0.0.0.0/0, ::/0\n");
}

/* Like snprintf: a short buffer gets a terminated prefix and the size. */
static void
test_sizing(void)
{
	wg_client_config cfg = full_config();
	char		full[1024];
	char		small[32];
	int			need = wg_config_render(&cfg, NULL, 0);

	CHECK(need > 0);
	CHECK(wg_config_render(&cfg, small, sizeof(small)) == need);
	CHECK(strlen(small) == sizeof(small) - 1);
	wg_config_render(&cfg, full, sizeof(full));
	CHECK(strncmp(small, full, sizeof(small) - 1) == 0);
}

/*
 * No field may carry a newline, a control character or anything outside
 * ASCII (U+2028 and U+0085 break lines for some readers) into the output.
 */
static void
test_injection(void)
{
	const char *evil[] = {
		"x\n[Peer]", "x\rPostUp = id", "x\tDNS", "x\x1b", "",
		/* U+2028, U+2029 and U+0085 (line breaks to some readers), U+00A0 */
		"x\xe2\x80\xa8PostUp = id", "x\xe2\x80\xa9[Peer]",
		"x\xc2\x85PostUp = id", "vpn\xc2\xa0.example.com:51820",
		"x\x80", "x\xff",
	};

	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++)
	{
		wg_client_config cfg;
		char		buf[1024];

		cfg = full_config();
		cfg.dns = evil[i];
		CHECK(wg_config_render(&cfg, buf, sizeof(buf)) == -EINVAL);
		cfg = full_config();
		cfg.endpoint = evil[i];
		CHECK(wg_config_render(&cfg, buf, sizeof(buf)) == -EINVAL);
		cfg = full_config();
		cfg.allowed_ips = evil[i];
		CHECK(wg_config_render(&cfg, buf, sizeof(buf)) == -EINVAL);
		cfg = full_config();
		cfg.private_key = evil[i];
		CHECK(wg_config_render(&cfg, buf, sizeof(buf)) == -EINVAL);
		cfg = full_config();
		cfg.address6 = evil[i];
		CHECK(wg_config_render(&cfg, buf, sizeof(buf)) == -EINVAL);
		cfg = full_config();
		cfg.address = evil[i];
		CHECK(wg_config_render(&cfg, buf, sizeof(buf)) == -EINVAL);
		cfg = full_config();
		cfg.server_public_key = evil[i];
		CHECK(wg_config_render(&cfg, buf, sizeof(buf)) == -EINVAL);
		cfg = full_config();
		cfg.preshared_key = evil[i];
		CHECK(wg_config_render(&cfg, buf, sizeof(buf)) == -EINVAL);
		cfg = full_config();
		cfg.private_key = NULL;
		cfg.public_key = evil[i];
		CHECK(wg_config_render(&cfg, buf, sizeof(buf)) == -EINVAL);
	}
	{
		wg_client_config cfg = full_config();

		cfg.server_public_key = NULL;
		CHECK(wg_config_render(&cfg, NULL, 0) == -EINVAL);
		cfg = full_config();
		cfg.private_key = NULL;
		cfg.public_key = NULL;
		CHECK(wg_config_render(&cfg, NULL, 0) == -EINVAL);
		cfg = full_config();
		cfg.mtu = -1;
		CHECK(wg_config_render(&cfg, NULL, 0) == -EINVAL);
	}
}

/*
 * Two peers: one with everything (routes to two subnets behind it too),
 * one with the optional fields absent.
 */
static const wg_server_peer server_peers[] = {
	{"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=",
	 "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=",
	"10.10.0.2/32", "fd00::2/128", "192.168.77.0/24, fd77::/64", 25},
	{"dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=", NULL,
	"10.10.0.3/32", NULL, NULL, 0},
};

static void
test_server(void)
{
	wg_server_config cfg = {"wg0", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=",
	51820, server_peers, 2, NULL};
	char		buf[1024];
	int			len = wg_server_config_render(&cfg, buf, sizeof(buf));

	CHECK_STR(buf,
			  "# wgpeer: interface wg0, 2 peers; restore with "
			  "\"wg syncconf wg0 <this file>\"\n"
			  "[Interface]\n"
			  "PrivateKey = dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n"
			  "ListenPort = 51820\n"
			  "\n"
			  "[Peer]\n"
			  "PublicKey = hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n"
			  "PresharedKey = 3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=\n"
			  "AllowedIPs = 10.10.0.2/32, fd00::2/128, 192.168.77.0/24, "
			  "fd77::/64\n"
			  "PersistentKeepalive = 25\n"
			  "\n"
			  "[Peer]\n"
			  "PublicKey = dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n"
			  "AllowedIPs = 10.10.0.3/32\n");
	CHECK(len == (int) strlen(buf));
	/* sizing: the length is returned even when the buffer is too small */
	CHECK(wg_server_config_render(&cfg, NULL, 0) == len);
	CHECK(wg_server_config_render(&cfg, buf, 10) == len);
	CHECK(strlen(buf) == 9);

	/* no private key, no peers */
	cfg.private_key = NULL;
	cfg.n_peers = 0;
	len = wg_server_config_render(&cfg, buf, sizeof(buf));
	CHECK_STR(buf,
			  "# wgpeer: interface wg0, 0 peers; restore with "
			  "\"wg syncconf wg0 <this file>\"\n"
			  "[Interface]\n"
			  "# PrivateKey is kept outside the database: prepend it in an "
			  "[Interface] section, or syncconf clears the interface's key\n"
			  "ListenPort = 51820\n");
	CHECK(len == (int) strlen(buf));
}

/*
 * An AmneziaWG server's file: its parameters in [Interface], after the
 * port, as a client config carries them (S3, S4 only when set), and the
 * restore command is awg's; an invalid set is refused.
 */
static void
test_server_awg(void)
{
	wg_awg		awg;
	wg_server_config cfg = {"awg0", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=",
	51820, server_peers, 1, &awg};
	char		buf[1024];
	int			len;

	memset(&awg, 0, sizeof(awg));
	awg.jc = 4;
	awg.jmin = 40;
	awg.jmax = 70;
	awg.s[0] = 20;
	awg.s[1] = 30;
	awg.s[3] = 16;
	awg.h[0].lo = awg.h[0].hi = 123456;
	awg.h[1].lo = awg.h[1].hi = 234567;
	awg.h[2].lo = 345678;
	awg.h[2].hi = 345700;
	awg.h[3].lo = awg.h[3].hi = 456789;
	awg.i[1] = "<b 0xc0ff><r 16>";
	len = wg_server_config_render(&cfg, buf, sizeof(buf));
	CHECK_STR(buf,
			  "# wgpeer: interface awg0, 1 peers; restore with "
			  "\"awg syncconf awg0 <this file>\"\n"
			  "[Interface]\n"
			  "PrivateKey = dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n"
			  "ListenPort = 51820\n"
			  "Jc = 4\nJmin = 40\nJmax = 70\nS1 = 20\nS2 = 30\nS4 = 16\n"
			  "H1 = 123456\nH2 = 234567\nH3 = 345678-345700\nH4 = 456789\n"
			  "I2 = <b 0xc0ff><r 16>\n"
			  "\n"
			  "[Peer]\n"
			  "PublicKey = hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n"
			  "PresharedKey = 3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=\n"
			  "AllowedIPs = 10.10.0.2/32, fd00::2/128, 192.168.77.0/24, "
			  "fd77::/64\n"
			  "PersistentKeepalive = 25\n");
	CHECK(len == (int) strlen(buf));
	awg.jmin = 80;
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
}

static void
test_server_refused(void)
{
	wg_server_peer peers[2];
	wg_server_config cfg = {"wg0", NULL, 51820, peers, 2, NULL};

	memcpy(peers, server_peers, sizeof(peers));
	CHECK(wg_server_config_render(&cfg, NULL, 0) > 0);
	peers[1].public_key = "key\n[Peer]";
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
	peers[1].public_key = NULL;
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
	memcpy(peers, server_peers, sizeof(peers));
	peers[0].address6 = "fd00::2/128\nEndpoint = x";
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
	memcpy(peers, server_peers, sizeof(peers));
	peers[0].routes = "192.168.77.0/24\n[Peer]";
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
	peers[0].routes = "";
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
	peers[0].routes = "192.168.77.0/24\xe2\x80\xa8[Peer]";
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
	memcpy(peers, server_peers, sizeof(peers));
	peers[1].public_key = "key\xc2\x85[Peer]";
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
	memcpy(peers, server_peers, sizeof(peers));
	peers[1].address = "10.10.0.3/32\xe2\x80\xa9";
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
	memcpy(peers, server_peers, sizeof(peers));
	peers[0].persistent_keepalive = -1;
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
	memcpy(peers, server_peers, sizeof(peers));
	cfg.private_key = "";
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
	cfg.private_key = NULL;
	cfg.interface = "wg0\r";
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
	cfg.interface = "wg0";
	cfg.listen_port = 0;
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
	cfg.listen_port = 51820;
	cfg.peers = NULL;
	CHECK(wg_server_config_render(&cfg, NULL, 0) == -EINVAL);
}

int
main(void)
{
	test_full();
	test_awg();
	test_minimal();
	test_sizing();
	test_injection();
	test_server();
	test_server_awg();
	test_server_refused();
	return UNIT_DONE("test_config");
}
