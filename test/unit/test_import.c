/*
 * test_import.c
 *		Unit tests of wg_import_parse(): the [Peer] sections of configs as
 *		`wg showconf` and wg-quick write them, and what is refused.
 */
#include <string.h>

#include "core/import.h"
#include "unit.h"

#define KEY_A "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
#define KEY_B "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
#define PSK "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE="

/* Parse text; the message (NULL on success) and the line it names. */
static const char *
parse(const char *text, wg_import *imp, int *line)
{
	memset(imp, 0, sizeof(*imp));
	return wg_import_parse(text, imp, line);
}

/* A showconf dump: interface skipped, two peers with what they carry. */
static void
test_showconf(void)
{
	wg_import	imp;
	int			line;
	const char *why = parse("[Interface]\n"
							"ListenPort = 51820\n"
							"PrivateKey = " KEY_B "\n"
							"\n"
							"[Peer]\n"
							"PublicKey = " KEY_A "\n"
							"PresharedKey = " PSK "\n"
							"AllowedIPs = 10.0.0.2/32\n"
							"AllowedIPs = fd00::2/128\n"
							"Endpoint = 192.0.2.1:51820\n"
							"\n"
							"[Peer]\r\n"
							"publickey=" KEY_B "   # a comment\r\n"
							"AllowedIPs = 10.0.0.3/32\r\n"
							"PersistentKeepalive = 25\r\n",
							&imp, &line);

	CHECK(why == NULL);
	CHECK(imp.n_peers == 2);
	CHECK_STR(imp.peers[0].public_key, KEY_A);
	CHECK(imp.peers[0].has_preshared_key);
	CHECK_STR(imp.peers[0].preshared_key, PSK);
	CHECK_STR(imp.peers[0].allowed_ips, "10.0.0.2/32, fd00::2/128");
	CHECK(imp.peers[0].keepalive == -1);
	CHECK(imp.peers[0].line == 5);
	CHECK_STR(imp.peers[1].public_key, KEY_B);
	CHECK(!imp.peers[1].has_preshared_key);
	CHECK_STR(imp.peers[1].allowed_ips, "10.0.0.3/32");
	CHECK(imp.peers[1].keepalive == 25);
	CHECK(imp.peers[1].line == 12);
	wg_import_free(&imp);
	CHECK(imp.peers == NULL && imp.n_peers == 0);
}

/* wg-quick's own keys in [Interface] are skipped; keepalive off is 0. */
static void
test_wg_quick(void)
{
	wg_import	imp;
	int			line;
	const char *why = parse("# a wg-quick config\n"
							"[Interface]\n"
							"Address = 10.0.0.1/24\n"
							"PostUp = iptables -A FORWARD -i %i -j ACCEPT\n"
							"[Peer]\n"
							"PublicKey = " KEY_A "\n"
							"PersistentKeepalive = off\n",
							&imp, &line);

	CHECK(why == NULL);
	CHECK(imp.n_peers == 1);
	CHECK(imp.peers[0].keepalive == 0);
	CHECK_STR(imp.peers[0].allowed_ips, "");
	wg_import_free(&imp);
}

/* Each refusal names the line. */
static void
test_refused(void)
{
	static const struct
	{
		const char *text;
		int			line;
	}			bad[] = {
		{"[Peer]\nPublicKey = nope\n", 2},
		{"[Peer]\nPublicKey = " KEY_A "\nPresharedKey = short=\n", 3},
		{"[Peer]\nAllowedIPs = 10.0.0.2/32\n", 1},
		{"[Peer]\nAllowedIPs = 10.0.0.2/32\n[Peer]\nPublicKey = " KEY_A "\n", 1},
		{"[Peer]\nPublicKey = " KEY_A "\nPersistentKeepalive = 70000\n", 3},
		{"[Peer]\nPublicKey = " KEY_A "\nPersistentKeepalive = -1\n", 3},
		{"[Peer]\nPublicKey = " KEY_A "\nPostUp = rm -rf /\n", 3},
		{"[Peer]\nPublicKey = " KEY_A "\njust words\n", 3},
		{"PublicKey = " KEY_A "\n", 1},
		{"[Peers]\n", 1},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		wg_import	imp;
		int			line;

		CHECK(parse(bad[i].text, &imp, &line) != NULL);
		CHECK(line == bad[i].line);
		wg_import_free(&imp);
	}
}

/* An AllowedIPs longer than the buffer is refused, not cut. */
static void
test_too_long(void)
{
	char		text[4 * WG_IMPORT_IPS_MAX];
	wg_import	imp;
	int			line;

	strcpy(text, "[Peer]\nPublicKey = " KEY_A "\n");
	for (int i = 0; i < 100; i++)
		strcat(text, "AllowedIPs = 10.0.0.1/32\n");
	CHECK(parse(text, &imp, &line) != NULL);
	wg_import_free(&imp);
}

/* Many peers grow the array. */
static void
test_many(void)
{
	static char text[500 * 100];
	wg_import	imp;
	int			line;

	text[0] = '\0';
	for (int i = 0; i < 500; i++)
		strcat(text, "[Peer]\nPublicKey = " KEY_A "\nAllowedIPs = 10.0.0.2/32\n");
	CHECK(parse(text, &imp, &line) == NULL);
	CHECK(imp.n_peers == 500);
	CHECK(imp.peers[499].line == 499 * 3 + 1);
	wg_import_free(&imp);
}

int
main(void)
{
	test_showconf();
	test_wg_quick();
	test_refused();
	test_too_long();
	test_many();
	return UNIT_DONE("test_import");
}
