/*
 * test_validate.c
 *		Unit tests of validate.c: every rule accepts what it should and
 *		refuses what it should.
 */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

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
	/* what `ip` accepts: printable ASCII but '/', ':', '%' */
	OK(wg_check_ifname("x!#$&~"));
	OK(wg_check_ifname("WG_0+=@[]{}"));
	OK(wg_check_ifname("..."));
	BAD(wg_check_ifname("wg%d"));
	CHECK_STR(wg_check_ifname("wg%d"),
			  "An interface name cannot contain '%', which the kernel "
			  "replaces with a number");
	BAD(wg_check_ifname("%"));
	/* U+00A0 NO-BREAK SPACE in UTF-8, U+200B ZERO WIDTH SPACE, invalid UTF-8 */
	BAD(wg_check_ifname("wg\xc2\xa0" "0"));
	CHECK_STR(wg_check_ifname("wg\xc2\xa0" "0"),
			  "An interface name may contain only printable ASCII "
			  "characters");
	BAD(wg_check_ifname("wg\xe2\x80\x8b"));
	BAD(wg_check_ifname("wg\xff"));
	BAD(wg_check_ifname("\x80"));
	BAD(wg_check_ifname("caf\xc3\xa9"));
	CHECK_STR(wg_check_ifname("wg 0"),
			  "An interface name cannot contain whitespace");
	CHECK_STR(wg_check_ifname("wg\x7f"),
			  "An interface name cannot contain control characters");
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
	/* a final dot does not turn a bad IPv4 address into a name (fuzz_validate) */
	BAD(wg_check_hostname("10.0.0.256."));
	BAD(wg_check_hostname("1.2.3.4."));
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
	OK(wg_check_endpoint("vpn.example.com.:51820"));
	BAD(wg_check_endpoint("10.0.0.256.:51820"));
	BAD(wg_check_endpoint("1.2.3.4.:51820"));
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

/* Printable ASCII passes; control characters and other bytes do not. */
static void
test_ascii(void)
{
	OK(wg_check_ascii("vpn.example.com:51820"));
	OK(wg_check_ascii(" !~ 0.0.0.0/0, ::/0 [x] = y"));
	CHECK_STR(wg_check_ascii("a\nb"),
			  "Control characters (such as newlines or tabs) are not allowed");
	CHECK_STR(wg_check_ascii("a\xe2\x80\xa8" "b"),
			  "Only printable ASCII characters are allowed");
	BAD(wg_check_ascii("a\xe2\x80\xa9"));
	BAD(wg_check_ascii("a\xc2\x85"));
	BAD(wg_check_ascii("\x80"));
	BAD(wg_check_ascii("\xff"));
	BAD(wg_check_ascii("a\x7f"));
}

/* The reason wg_check_route_prefix gives for text address/bits. */
static const char *
route(const char *text, int bits, int wide)
{
	uint8_t		addr[16];

	memset(addr, 0, sizeof(addr));
	if (inet_pton(AF_INET, text, addr) == 1)
		return wg_check_route_prefix(AF_INET, addr, bits, wide);
	if (inet_pton(AF_INET6, text, addr) == 1)
		return wg_check_route_prefix(AF_INET6, addr, bits, wide);
	return "test error: not an address";
}

static void
test_route_prefix(void)
{
	OK(route("192.168.77.0", 24, 0));
	OK(route("10.0.0.0", 8, 0));
	OK(route("fd77::", 64, 0));
	/* inside, equal to, or around a reserved range */
	CHECK_STR(route("127.0.0.0", 8, 0),
			  "The prefix includes loopback addresses (127.0.0.0/8), which "
			  "never leave a host");
	BAD(route("127.0.0.1", 32, 0));
	BAD(route("169.254.1.0", 24, 0));
	BAD(route("169.0.0.0", 8, 0));
	BAD(route("224.0.0.0", 8, 0));
	BAD(route("255.255.255.255", 32, 0));
	BAD(route("0.0.0.0", 0, 0));
	BAD(route("::", 0, 0));
	BAD(route("::ffff:10.0.0.0", 104, 0));
	BAD(route("fe80::", 64, 0));
	BAD(route("ff02::1", 128, 0));
	/* a wide route may contain them, never lie inside one */
	OK(route("0.0.0.0", 0, 1));
	OK(route("::", 0, 1));
	OK(route("0.0.0.0", 1, 1));
	OK(route("128.0.0.0", 1, 1));
	OK(route("169.0.0.0", 8, 1));
	BAD(route("224.0.0.0", 5, 1));
	BAD(route("224.0.0.0", 4, 1));
	BAD(route("127.0.0.0", 8, 1));
	BAD(route("ff00::", 9, 1));
	BAD(route("::1", 128, 1));
	/* nonsense arguments */
	BAD(route("10.0.0.0", 33, 0));
	BAD(route("10.0.0.0", -1, 1));
	{
		static const uint8_t ten[16] = {10};

		BAD(wg_check_route_prefix(12345, ten, 8, 0));
	}
}

/* The reason wg_check_pool_prefix gives for text address/bits. */
static const char *
prefix(const char *text, int bits)
{
	uint8_t		addr[16];

	memset(addr, 0xa5, sizeof(addr));
	if (inet_pton(AF_INET, text, addr) == 1)
		return wg_check_pool_prefix(AF_INET, addr, bits);
	if (inet_pton(AF_INET6, text, addr) == 1)
		return wg_check_pool_prefix(AF_INET6, addr, bits);
	return "test error: not an address";
}

static void
test_pool_prefix(void)
{
	/* private and shared ranges, and public ones (some use those) */
	OK(prefix("10.10.0.1", 24));
	OK(prefix("10.0.0.1", 8));
	OK(prefix("10.50.0.1", 30));
	OK(prefix("10.50.0.1", 32));
	OK(prefix("172.16.0.1", 12));
	OK(prefix("192.168.0.1", 16));
	OK(prefix("100.64.0.1", 10));
	OK(prefix("198.51.100.1", 24));
	/* next to the refused ranges, on either side */
	OK(prefix("1.0.0.1", 8));
	OK(prefix("126.255.255.1", 8));
	OK(prefix("128.0.0.1", 8));
	OK(prefix("169.253.0.1", 16));
	OK(prefix("169.255.0.1", 16));
	OK(prefix("223.255.255.1", 8));
	OK(prefix("192.0.0.1", 3));
	OK(prefix("128.0.0.1", 5));

	/* /0 is everything */
	CHECK_STR(prefix("10.90.0.1", 0),
			  "A /0 prefix is the whole address space, so the pool would "
			  "hand out 0.0.0.1, 0.0.0.2 and so on");
	/* unspecified ("this network") */
	CHECK_STR(prefix("0.0.0.1", 8),
			  "The prefix includes unspecified addresses (0.0.0.0/8, "
			  "\"this network\"), which no host can use");
	BAD(prefix("0.1.2.3", 24));
	BAD(prefix("8.0.0.1", 4));
	/* loopback */
	CHECK_STR(prefix("127.0.0.2", 8),
			  "The prefix includes loopback addresses (127.0.0.0/8), which "
			  "never leave a host");
	BAD(prefix("127.1.0.1", 24));
	BAD(prefix("64.0.0.1", 2));
	/* link-local */
	CHECK_STR(prefix("169.254.0.1", 16),
			  "The prefix includes link-local addresses (169.254.0.0/16), "
			  "which are not routed beyond one link");
	BAD(prefix("169.254.10.1", 24));
	BAD(prefix("160.0.0.1", 3));
	BAD(prefix("128.0.0.1", 2));
	/* multicast */
	CHECK_STR(prefix("224.0.0.1", 24),
			  "The prefix includes multicast addresses (224.0.0.0/4), which "
			  "cannot be a peer's address");
	BAD(prefix("239.255.0.1", 16));
	BAD(prefix("192.0.0.1", 2));
	/* reserved, with the limited broadcast */
	CHECK_STR(prefix("240.0.0.1", 24),
			  "The prefix includes reserved addresses (240.0.0.0/4, with "
			  "the broadcast address 255.255.255.255), which many systems "
			  "refuse to send or route");
	BAD(prefix("255.255.255.253", 30));

	/* IPv6: unique local, global, and next to the refused ranges */
	OK(prefix("fd00:10:10::1", 64));
	OK(prefix("fd00::1", 8));
	OK(prefix("fc00::1", 7));
	OK(prefix("2001:db8::1", 64));
	OK(prefix("fe7f::1", 16));
	OK(prefix("fec0::1", 10));
	OK(prefix("feff::1", 16));
	OK(prefix("::2", 127));
	OK(prefix("::fffe:0:1", 96));
	OK(prefix("64:ff9b::1", 96));
	CHECK_STR(prefix("fd00::1", 0),
			  "A /0 prefix is the whole address space, unspecified, "
			  "loopback and multicast addresses included");
	CHECK_STR(prefix("::", 64),
			  "The prefix includes the unspecified address ::, which no "
			  "host can use");
	BAD(prefix("::1:0:0:1", 64));
	CHECK_STR(prefix("::1", 128),
			  "The prefix includes the loopback address ::1, which never "
			  "leaves a host");
	/* ::/127 holds both :: and ::1 */
	BAD(prefix("::1", 127));
	CHECK_STR(prefix("::ffff:10.0.0.1", 120),
			  "The prefix includes IPv4-mapped addresses (::ffff:0:0/96), "
			  "which stand for IPv4 addresses and are not used on IPv6 "
			  "links");
	CHECK_STR(prefix("fe80::1", 64),
			  "The prefix includes link-local addresses (fe80::/10), which "
			  "are not routed beyond one link");
	BAD(prefix("febf:ffff::1", 32));
	BAD(prefix("fe00::1", 8));
	CHECK_STR(prefix("ff02::1", 64),
			  "The prefix includes multicast addresses (ff00::/8), which "
			  "cannot be a peer's address");
	BAD(prefix("ff00::1", 8));
	BAD(prefix("f000::1", 4));
	BAD(prefix("8000::1", 1));

	/* nonsense arguments are refused, never read out of bounds */
	{
		static const uint8_t ten[16] = {10, 0, 0, 1};
		static const uint8_t fd[16] = {0xfd, [15] = 1};

		OK(wg_check_pool_prefix(AF_INET, ten, 24));
		BAD(wg_check_pool_prefix(AF_INET, ten, 33));
		BAD(wg_check_pool_prefix(AF_INET, ten, -1));
		OK(wg_check_pool_prefix(AF_INET6, fd, 64));
		BAD(wg_check_pool_prefix(AF_INET6, fd, 129));
		BAD(wg_check_pool_prefix(12345, ten, 24));
	}
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
	test_ascii();
	test_route_prefix();
	test_pool_prefix();
	return UNIT_DONE("test_validate");
}
