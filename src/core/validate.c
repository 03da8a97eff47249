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
 * An interface name as the Linux kernel accepts it (dev_valid_name): 1 to
 * 15 bytes, not "." or "..", without '/', ':' or whitespace.
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
		if (*p == '/' || *p == ':')
			return "An interface name cannot contain '/' or ':'";
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
