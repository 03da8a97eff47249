/*
 * validate.c
 *		Syntax rules for interface names, tunnel names, hostnames, endpoints
 *		and DNS lists.
 *
 * These are the only gate between caller-supplied text and the lines of a
 * generated config, so they are strict: nothing that passes can contain a
 * newline, a '[' section header, '=' or any control character.
 */
#include "core/validate.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/*
 * Refuse ASCII control characters and DEL anywhere in text.
 */
const char *
wg_check_no_control(const char *text)
{
	const unsigned char *p;

	for (p = (const unsigned char *) text; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return "Control characters (such as newlines or tabs) are not allowed";
	return NULL;
}

/*
 * Refuse anything but printable ASCII (0x20 to 0x7e) in text: what keys,
 * addresses, prefixes, endpoints and DNS lists are made of.  Besides the
 * control characters, this keeps out bytes that some readers of a config
 * take for a line break (U+0085 NEXT LINE, U+2028 LINE SEPARATOR and
 * U+2029 PARAGRAPH SEPARATOR in UTF-8), or that look like other
 * characters.
 */
const char *
wg_check_ascii(const char *text)
{
	const unsigned char *p;

	if (wg_check_no_control(text))
		return wg_check_no_control(text);
	for (p = (const unsigned char *) text; *p; p++)
		if (*p > 0x7e)
			return "Only printable ASCII characters are allowed";
	return NULL;
}

/*
 * An interface name as both the Linux kernel (dev_valid_name) and `ip`
 * accept it: 1 to 15 bytes, not "." or "..", of printable ASCII (0x21 to
 * 0x7e) other than '/', ':' and '%'.  The kernel itself takes any other
 * byte, but a name with '%' is a template it numbers ("wg%d" becomes wg0),
 * and bytes outside ASCII depend on the encoding of whoever reads them
 * (U+00A0 looks like a space; invalid UTF-8 gets into a SQL_ASCII
 * database), so an operator could not type the name back.
 */
const char *
wg_check_ifname(const char *name)
{
	const unsigned char *p;
	size_t		len = strlen(name);

	if (len == 0)
		return "An interface name cannot be empty";
	if (len > 15)
		return "An interface name is at most 15 bytes";
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return "\".\" and \"..\" are not interface names";
	for (p = (const unsigned char *) name; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
			return "An interface name cannot contain control characters";
		if (*p == ' ')
			return "An interface name cannot contain whitespace";
		if (*p > 0x7f)
			return "An interface name may contain only printable ASCII characters";
		if (*p == '/' || *p == ':')
			return "An interface name cannot contain '/' or ':'";
		if (*p == '%')
			return "An interface name cannot contain '%', which the kernel "
				"replaces with a number";
	}
	return NULL;
}

/*
 * A tunnel name as the WireGuard apps and wg-quick accept it: 1 to 15
 * characters from [A-Za-z0-9_=+.-].
 */
const char *
wg_check_config_name(const char *name)
{
	const char *p;
	size_t		len = strlen(name);

	if (len == 0 || len > 15)
		return "A tunnel name is 1 to 15 characters";
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || strchr("_=+.-", *p)))
			return "A tunnel name may contain only letters, digits and _ = + . -";
	return NULL;
}

/*
 * A DNS hostname (RFC 1123): dot-separated labels of letters, digits and
 * inner hyphens, each 1-63 characters, 253 in all, an optional final dot.
 * The last label may not be all digits (RFC 3696 2), so a mistyped IPv4
 * address such as 10.0.0.256 is refused rather than taken for a name.
 */
const char *
wg_check_hostname(const char *host)
{
	size_t		len = strlen(host);
	size_t		label = 0;
	int			digits_only = 1;
	const char *p;

	if (len == 0)
		return "A hostname cannot be empty";
	if (len > 253)
		return "A hostname is at most 253 characters";
	for (p = host; *p; p++)
	{
		if (*p == '.')
		{
			if (label == 0)
				return "A hostname cannot have an empty label";
			if (p[-1] == '-')
				return "A hostname label cannot end with '-'";
			if (p[1] == '\0')
				break;			/* a final dot: the last label ends here */
			label = 0;
			digits_only = 1;
			continue;
		}
		if (*p < '0' || *p > '9')
			digits_only = 0;
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '-'))
			return "A hostname may contain only letters, digits, '-' and '.'";
		if (*p == '-' && label == 0)
			return "A hostname label cannot start with '-'";
		if (++label > 63)
			return "A hostname label is at most 63 characters";
	}
	if (label > 0 && p[-1] == '-')
		return "A hostname label cannot end with '-'";
	if (label > 0 && digits_only)
		return "Not a valid IP address, and a hostname cannot end with an all-digit label";
	return NULL;
}

/* True when s is a literal IPv4 or IPv6 address. */
static int
is_ip_literal(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/*
 * An endpoint as wg(8) takes it: host:port, where host is a hostname, an
 * IPv4 address or an IPv6 address in brackets, and port is 1-65535.
 */
const char *
wg_check_endpoint(const char *endpoint)
{
	const char *colon;
	const char *p;
	char		host[256];
	size_t		hostlen;
	long		port;

	if (wg_check_no_control(endpoint))
		return wg_check_no_control(endpoint);
	colon = strrchr(endpoint, ':');
	if (colon == NULL)
		return "An endpoint is host:port";
	if (colon[1] == '\0')
		return "The port is missing after ':'";
	for (p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return "The port must be a number from 1 to 65535";
	if (strlen(colon + 1) > 5 || (port = strtol(colon + 1, NULL, 10)) < 1 ||
		port > 65535)
		return "The port must be a number from 1 to 65535";

	hostlen = colon - endpoint;
	if (hostlen == 0)
		return "The host is missing before ':'";
	if (endpoint[0] == '[')
	{
		unsigned char buf[16];

		if (hostlen < 3 || endpoint[hostlen - 1] != ']' ||
			hostlen - 2 >= sizeof(host))
			return "An IPv6 endpoint is written [address]:port";
		memcpy(host, endpoint + 1, hostlen - 2);
		host[hostlen - 2] = '\0';
		if (inet_pton(AF_INET6, host, buf) != 1)
			return "The address in brackets is not an IPv6 address";
		return NULL;
	}
	if (hostlen >= sizeof(host))
		return "A hostname is at most 253 characters";
	memcpy(host, endpoint, hostlen);
	host[hostlen] = '\0';
	if (strchr(host, ':'))
		return "An IPv6 endpoint is written [address]:port";
	if (is_ip_literal(host))
		return NULL;
	return wg_check_hostname(host);
}

/*
 * A DNS setting as wg-quick reads it: a comma-separated list of resolver
 * addresses (IPv4 or IPv6) and search domains (hostnames).  Spaces around
 * entries are ignored.  On success writes "a, b, c" into normalized; on
 * failure copies the offending entry into bad_entry.
 */
const char *
wg_check_dns_list(const char *list, char *normalized, size_t size,
				  char *bad_entry, size_t bad_size)
{
	const char *p = list;
	size_t		used = 0;
	int			count = 0;

	if (bad_size > 0)
		bad_entry[0] = '\0';
	if (wg_check_no_control(list))
		return wg_check_no_control(list);
	normalized[0] = '\0';
	for (;;)
	{
		const char *start;
		const char *end;
		const char *comma;
		char		entry[256];
		size_t		len;
		const char *why = NULL;

		while (*p == ' ')
			p++;
		start = p;
		comma = strchr(p, ',');
		end = comma ? comma : p + strlen(p);
		p = end;
		while (end > start && end[-1] == ' ')
			end--;
		len = end - start;
		if (len == 0)
			return "The DNS list has an empty entry";
		if (len >= sizeof(entry))
			why = "A DNS entry is at most 253 characters";
		else
		{
			memcpy(entry, start, len);
			entry[len] = '\0';
			if (strchr(entry, ':') && !is_ip_literal(entry))
				why = "Not a valid IPv6 address";
			else if (!is_ip_literal(entry))
				why = wg_check_hostname(entry);
		}
		if (why)
		{
			if (bad_size > 0)
			{
				size_t		n = len < bad_size - 1 ? len : bad_size - 1;

				memcpy(bad_entry, start, n);
				bad_entry[n] = '\0';
			}
			return why;
		}
		if (used + len + 3 > size)
			return "The DNS list is too long";
		if (count++ > 0)
		{
			memcpy(normalized + used, ", ", 2);
			used += 2;
		}
		memcpy(normalized + used, start, len);
		used += len;
		normalized[used] = '\0';
		if (*p == '\0')
			break;
		p++;					/* skip the comma */
	}
	return NULL;
}


/* An address range no tunnel pool may touch, and why. */
typedef struct bad_range
{
	uint8_t		addr[16];		/* network, in network byte order */
	int			bits;
	const char *why;
} bad_range;

/*
 * IPv4 ranges no peer can use (RFC 6890 and RFC 1112 4; RFC 919 7 for
 * 255.255.255.255).
 */
static const bad_range bad_v4[] = {
	{{0}, 8, "The prefix includes unspecified addresses (0.0.0.0/8, "
	"\"this network\"), which no host can use"},
	{{127}, 8, "The prefix includes loopback addresses (127.0.0.0/8), which "
	"never leave a host"},
	{{169, 254}, 16, "The prefix includes link-local addresses "
	"(169.254.0.0/16), which are not routed beyond one link"},
	{{224}, 4, "The prefix includes multicast addresses (224.0.0.0/4), "
	"which cannot be a peer's address"},
	{{240}, 4, "The prefix includes reserved addresses (240.0.0.0/4, with "
	"the broadcast address 255.255.255.255), which many systems "
	"refuse to send or route"},
};

/* IPv6 ranges no peer can use (RFC 4291 2.5.2, 2.5.3, 2.5.5.2, 2.5.6, 2.7). */
static const bad_range bad_v6[] = {
	{{0}, 128, "The prefix includes the unspecified address ::, which no "
	"host can use"},
	{{[15] = 1}, 128, "The prefix includes the loopback address ::1, which "
	"never leaves a host"},
	{{[10] = 0xff, [11] = 0xff}, 96, "The prefix includes IPv4-mapped "
	"addresses (::ffff:0:0/96), which stand for IPv4 addresses and are not "
	"used on IPv6 links"},
	{{0xfe, 0x80}, 10, "The prefix includes link-local addresses "
	"(fe80::/10), which are not routed beyond one link"},
	{{0xff}, 8, "The prefix includes multicast addresses (ff00::/8), which "
	"cannot be a peer's address"},
};

/* True when the first bits of a and b are equal. */
static int
same_prefix(const uint8_t *a, const uint8_t *b, int bits)
{
	int			whole = bits / 8;
	int			rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[whole] ^ b[whole]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/*
 * The entry of the ranges no peer can use (bad_v4 or bad_v6) that a
 * prefix overlaps, or NULL.  With containing_ok a prefix that strictly
 * contains a range (a default route contains them all) is not counted:
 * only one that lies inside a range, or equals it, is.
 */
static const bad_range *
bad_range_hit(int family, const uint8_t addr[16], int bits, int containing_ok)
{
	const bad_range *ranges = family == AF_INET ? bad_v4 : bad_v6;
	size_t		n = family == AF_INET ?
		sizeof(bad_v4) / sizeof(bad_v4[0]) : sizeof(bad_v6) / sizeof(bad_v6[0]);

	/* two prefixes overlap when they agree on the shorter one's bits */
	for (size_t i = 0; i < n; i++)
	{
		if (containing_ok && bits < ranges[i].bits)
			continue;
		if (same_prefix(addr, ranges[i].addr,
						bits < ranges[i].bits ? bits : ranges[i].bits))
			return &ranges[i];
	}
	return NULL;
}

/* Whether family is AF_INET or AF_INET6 and bits a prefix length of it. */
static const char *
check_family_bits(int family, int bits)
{
	if (family != AF_INET && family != AF_INET6)
		return "The address is neither IPv4 nor IPv6";
	if (bits < 0 || bits > (family == AF_INET ? 32 : 128))
		return "The prefix length is out of range";
	return NULL;
}

/*
 * The server's address prefix, which is also the peers' address pool:
 * family AF_INET (addr[0..3]) or AF_INET6 (addr[0..15]) and a prefix
 * length.  Refuses a prefix that overlaps any range no peer can use
 * (unspecified, loopback, link-local, multicast, reserved and broadcast,
 * IPv4-mapped), since it would hand such addresses out or route them into
 * the tunnel; /0, which overlaps all of them, gets its own sentence.
 * Private (10/8, 172.16/12, 192.168/16, fd00::/8), shared (100.64/10) and
 * public ranges pass.
 */
const char *
wg_check_pool_prefix(int family, const uint8_t addr[16], int bits)
{
	const char *why = check_family_bits(family, bits);
	const bad_range *hit;

	if (why)
		return why;
	if (bits == 0)
		return family == AF_INET ?
			"A /0 prefix is the whole address space, so the pool would hand "
			"out 0.0.0.1, 0.0.0.2 and so on" :
			"A /0 prefix is the whole address space, unspecified, loopback "
			"and multicast addresses included";
	hit = bad_range_hit(family, addr, bits, 0);
	return hit ? hit->why : NULL;
}

/*
 * A route behind a peer (a subnet its interface sends to it, and from
 * which it accepts packets): it may not overlap the ranges no tunnel pool
 * may touch either, since the interface would then take loopback,
 * link-local or multicast traffic from the peer.  A wide route (shorter
 * than WG_ROUTE_MIN_BITS_V4 or _V6, which only an administrator may set)
 * necessarily contains some of them (0.0.0.0/0 contains all): with wide
 * it is refused only when it lies inside one of them.
 */
const char *
wg_check_route_prefix(int family, const uint8_t addr[16], int bits, int wide)
{
	const char *why = check_family_bits(family, bits);
	const bad_range *hit;

	if (why)
		return why;
	hit = bad_range_hit(family, addr, bits, wide);
	return hit ? hit->why : NULL;
}
