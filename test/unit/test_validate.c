/*
 * test_validate.c
 *		Unit tests of validate.c: every rule accepts what it should and
 *		refuses what it should.
 */
#include <string.h>

#include "unit.h"
#include "core/validate.h"

#define OK(expr) CHECK((expr) == NULL)
#define BAD(expr) CHECK((expr) != NULL)

static void
test_ifname(void)
{
	OK(wg_check_ifname("wg0"));
	OK(wg_check_ifname("a"));
	OK(wg_check_ifname("exactly15chars_"));
	OK(wg_check_ifname("wg-office.1"));
	BAD(wg_check_ifname(""));
	BAD(wg_check_ifname("sixteen_chars_xx"));
	BAD(wg_check_ifname("."));
	BAD(wg_check_ifname(".."));
	BAD(wg_check_ifname("wg/0"));
	BAD(wg_check_ifname("wg:0"));
	BAD(wg_check_ifname("wg 0"));
	BAD(wg_check_ifname("wg\t0"));
	BAD(wg_check_ifname("wg\n0"));
	BAD(wg_check_ifname("wg\x7f"));
}

static void
test_config_name(void)
{
	OK(wg_check_config_name("home"));
	OK(wg_check_config_name("a_b=c+d.e-f"));
	OK(wg_check_config_name("123456789012345"));
	BAD(wg_check_config_name(""));
	BAD(wg_check_config_name("1234567890123456"));
	BAD(wg_check_config_name("my phone"));
	BAD(wg_check_config_name("x/y"));
	BAD(wg_check_config_name("caf\xc3\xa9"));
	BAD(wg_check_config_name("a\nb"));
	BAD(wg_check_config_name("[Peer]"));
}

static void
test_hostname(void)
{
	OK(wg_check_hostname("vpn.example.com"));
	OK(wg_check_hostname("vpn.example.com."));
	OK(wg_check_hostname("a-b.c"));
	OK(wg_check_hostname("localhost"));
	OK(wg_check_hostname("1a.example"));
	BAD(wg_check_hostname(""));
	BAD(wg_check_hostname("-a.example"));
	BAD(wg_check_hostname("a-.example"));
	BAD(wg_check_hostname("a..example"));
	BAD(wg_check_hostname(".example"));
	BAD(wg_check_hostname("under_score.example"));
	BAD(wg_check_hostname("10.0.0.256"));
	BAD(wg_check_hostname("1.2.3"));
	{
		char		label[70];
		char		name[300];

		memset(label, 'a', 64);
		label[64] = '\0';
		BAD(wg_check_hostname(label));
		label[63] = '\0';
		OK(wg_check_hostname(label));
		memset(name, 'a', 254);
		for (int i = 50; i < 254; i += 50)
			name[i] = '.';
		name[254] = '\0';
		BAD(wg_check_hostname(name));
	}
}

static void
test_endpoint(void)
{
	OK(wg_check_endpoint("vpn.example.com:51820"));
	OK(wg_check_endpoint("192.0.2.1:1"));
	OK(wg_check_endpoint("[2001:db8::1]:65535"));
	OK(wg_check_endpoint("[::1]:51820"));
	BAD(wg_check_endpoint("vpn.example.com"));
	BAD(wg_check_endpoint("vpn.example.com:"));
	BAD(wg_check_endpoint(":51820"));
	BAD(wg_check_endpoint("h:0"));
	BAD(wg_check_endpoint("h:65536"));
	BAD(wg_check_endpoint("h:000051820"));
	BAD(wg_check_endpoint("h:-1"));
	BAD(wg_check_endpoint("h: 1"));
	BAD(wg_check_endpoint("2001:db8::1:51820"));
	BAD(wg_check_endpoint("[2001:db8::1:51820"));
	BAD(wg_check_endpoint("[]:51820"));
	BAD(wg_check_endpoint("[192.0.2.1]:51820"));
	BAD(wg_check_endpoint("h.example:1\n[Peer]"));
	BAD(wg_check_endpoint("h.example:1 # x"));
}

static void
test_dns(void)
{
	char		out[WG_DNS_LIST_MAX];
	char		bad[64];

	OK(wg_check_dns_list("1.1.1.1", out, sizeof(out), bad, sizeof(bad)));
	CHECK_STR(out, "1.1.1.1");
	OK(wg_check_dns_list(" 1.1.1.1 ,2606:4700::1111,  corp.example ", out,
						 sizeof(out), bad, sizeof(bad)));
	CHECK_STR(out, "1.1.1.1, 2606:4700::1111, corp.example");
	BAD(wg_check_dns_list("", out, sizeof(out), bad, sizeof(bad)));
	BAD(wg_check_dns_list("1.1.1.1,", out, sizeof(out), bad, sizeof(bad)));
	BAD(wg_check_dns_list("1.1.1.1,,8.8.8.8", out, sizeof(out), bad, sizeof(bad)));
	BAD(wg_check_dns_list("1.1.1.1, 8.8.8.256", out, sizeof(out), bad, sizeof(bad)));
	CHECK_STR(bad, "8.8.8.256");
	BAD(wg_check_dns_list("fe80::zz", out, sizeof(out), bad, sizeof(bad)));
	CHECK_STR(bad, "fe80::zz");
	BAD(wg_check_dns_list("1.1.1.1\nPostUp = id", out, sizeof(out), bad, sizeof(bad)));
	BAD(wg_check_dns_list("1.1.1.1 8.8.8.8", out, sizeof(out), bad, sizeof(bad)));
	BAD(wg_check_dns_list("a=b", out, sizeof(out), bad, sizeof(bad)));
	/* an output buffer too small is an error, never an overflow */
	BAD(wg_check_dns_list("1.1.1.1, 8.8.8.8", out, 10, bad, sizeof(bad)));
}

static void
test_no_control(void)
{
	OK(wg_check_no_control("plain text, with = signs [and] brackets"));
	BAD(wg_check_no_control("a\rb"));
	BAD(wg_check_no_control("a\x1b[31m"));
}

int
main(void)
{
	test_ifname();
	test_config_name();
	test_hostname();
	test_endpoint();
	test_dns();
	test_no_control();
	return UNIT_DONE("test_validate");
}
