/*
 * test_config.c
 *		Unit tests of config.c: exact output, sizing, and refusal of any
 *		field that could break out of its line.
 */
#include <errno.h>
#include <string.h>

#include "config.h"
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

/* No field may carry a newline or control character into the output. */
static void
test_injection(void)
{
	const char *evil[] = {
		"x\n[Peer]", "x\rPostUp = id", "x\tDNS", "x\x1b", "",
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

int
main(void)
{
	test_full();
	test_minimal();
	test_sizing();
	test_injection();
	return UNIT_DONE("test_config");
}
