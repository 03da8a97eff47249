/*
 * awg.c
 *		Checking and drawing AmneziaWG parameters.
 *
 * The rules are those of the kernel module (amneziawg-linux-kernel-module,
 * src/netlink.c and src/junk.c) and of amneziawg-go: the four message-type
 * ranges must not overlap, the signature packets follow the module's tag
 * grammar.  A few rules are stricter than the module, so that a set
 * accepted here works with every client: the bounds amneziawg-go
 * documents for Jc and Jmax, Jmin <= Jmax, padded handshake messages that
 * fit in 1280 bytes, S1 + 56 != S2 (else a padded initiation and a padded
 * response have the same size again), and H1..H4 given all four or none.
 */
#include "core/awg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

/* WireGuard's message sizes without padding: initiation, response,
 * cookie reply, and the header of a transport message. */
static const int message_size[WG_AWG_S_COUNT] = {148, 92, 64, 32};

/* What each message, padded, must fit in: the IPv6 minimum MTU. */
#define PADDED_MESSAGE_MAX 1280

static const char *const s_names[WG_AWG_S_COUNT] = {"s1", "s2", "s3", "s4"};
static const char *const h_names[WG_AWG_H_COUNT] = {"h1", "h2", "h3", "h4"};
static const char *const i_names[WG_AWG_I_COUNT] = {"i1", "i2", "i3", "i4", "i5"};

/*
 * Parse a decimal number of at most 10 digits at *p (no sign, no
 * spaces); advances *p past it.  Returns -1 when there is none or it is
 * past UINT32_MAX.
 */
static long long
parse_u32(const char **p)
{
	long long	value = 0;
	int			digits = 0;

	while (**p >= '0' && **p <= '9')
	{
		value = value * 10 + (**p - '0');
		(*p)++;
		if (++digits > 10 || value > UINT32_MAX)
			return -1;
	}
	return digits ? value : -1;
}

/*
 * A message type as the config writes it: "N" or "lo-hi" (decimal, lo <=
 * hi, both within 32 bits).  Fills out on success.
 */
const char *
wg_awg_parse_range(const char *text, wg_awg_range *out)
{
	const char *p = text;
	long long	lo;
	long long	hi;

	lo = parse_u32(&p);
	if (lo < 0)
		return "A message type is a decimal number from 0 to 4294967295, "
			"or a range of two such numbers such as \"100-200\"";
	hi = lo;
	if (*p == '-')
	{
		p++;
		hi = parse_u32(&p);
		if (hi < 0)
			return "A message type range ends with a decimal number from 0 "
				"to 4294967295, as in \"100-200\"";
	}
	if (*p != '\0')
		return "A message type is a decimal number or a range \"lo-hi\", "
			"with nothing else (no spaces)";
	if (lo > hi)
		return "A message type range must not end below where it starts";
	if (lo == 0 && hi > 0)
		return "A message type range cannot include 0";
	out->lo = (uint32_t) lo;
	out->hi = (uint32_t) hi;
	return NULL;
}

/*
 * Write a range as the config spells it ("N" or "lo-hi").  Returns the
 * length like snprintf.
 */
int
wg_awg_format_range(wg_awg_range range, char *buf, size_t size)
{
	if (range.lo == range.hi)
		return snprintf(buf, size, "%u", range.lo);
	return snprintf(buf, size, "%u-%u", range.lo, range.hi);
}

/* Whether c is a hexadecimal digit. */
static int
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		(c >= 'A' && c <= 'F');
}

/*
 * Check one tag's value (name and value are not NUL-terminated: name_len
 * and value_len bytes; value NULL when the tag has none) and add the bytes
 * it makes to *size.
 */
static const char *
check_tag(const char *name, size_t name_len, const char *value,
		  size_t value_len, long long *size)
{
	if (name_len == 1 && name[0] == 'b')
	{
		if (value == NULL || value_len < 4 || value[0] != '0' ||
			value[1] != 'x' || value_len % 2 != 0)
			return "A <b> tag takes bytes as hexadecimal after 0x, an even "
				"number of digits, as in <b 0x0a1b>";
		for (size_t k = 2; k < value_len; k++)
			if (!is_hex(value[k]))
				return "A <b> tag takes bytes as hexadecimal after 0x, an "
					"even number of digits, as in <b 0x0a1b>";
		*size += (long long) (value_len - 2) / 2;
		return NULL;
	}
	if (name_len == 1 && (name[0] == 'c' || name[0] == 't'))
	{
		if (value != NULL)
			return "The <c> (packet counter) and <t> (time) tags take no value";
		*size += 4;
		return NULL;
	}
	if ((name_len == 1 && name[0] == 'r') ||
		(name_len == 2 && name[0] == 'r' && (name[1] == 'c' || name[1] == 'd')))
	{
		long long	n = 0;

		if (value == NULL || value_len == 0 || value_len > 5)
			return "The <r>, <rc> and <rd> tags take a length in bytes, "
				"from 1 to 65507, as in <r 16>";
		for (size_t k = 0; k < value_len; k++)
		{
			if (value[k] < '0' || value[k] > '9')
				return "The <r>, <rc> and <rd> tags take a length in bytes, "
					"from 1 to 65507, as in <r 16>";
			n = n * 10 + (value[k] - '0');
		}
		if (n < 1 || n > WG_AWG_I_PACKET_MAX)
			return "The <r>, <rc> and <rd> tags take a length in bytes, "
				"from 1 to 65507, as in <r 16>";
		*size += n;
		return NULL;
	}
	return "Unknown tag: the tags are <b 0x...>, <c>, <t>, <r N>, <rc N> "
		"and <rd N>";
}

/*
 * A signature packet's description: one or more tags, nothing between or
 * around them, each <name> or <name value> with one space, describing at
 * most 65507 bytes.
 */
const char *
wg_awg_check_tags(const char *spec)
{
	const char *p = spec;
	long long	size = 0;

	if (strlen(spec) > WG_AWG_I_MAX)
		return "A signature packet's description is at most 1024 characters";
	if (*p == '\0')
		return "A signature packet's description is a sequence of tags, "
			"such as <b 0xc0ff><r 16>";
	while (*p)
	{
		const char *name;
		const char *end;
		const char *space;
		const char *why;

		if (*p != '<')
			return "A signature packet's description is a sequence of tags, "
				"such as <b 0xc0ff><r 16>, with nothing between them";
		name = p + 1;
		end = strchr(name, '>');
		if (end == NULL)
			return "A tag is not closed with '>'";
		space = memchr(name, ' ', end - name);
		if (space == name || memchr(name, '<', end - name) != NULL)
			return "A tag is <name> or <name value>, as in <r 16>";
		if (space != NULL && memchr(space + 1, ' ', end - space - 1) != NULL)
			return "A tag is <name> or <name value>, with one space between";
		if (space != NULL)
			why = check_tag(name, space - name, space + 1, end - space - 1,
							&size);
		else
			why = check_tag(name, end - name, NULL, 0, &size);
		if (why != NULL)
			return why;
		if (size > WG_AWG_I_PACKET_MAX)
			return "A signature packet is at most 65507 bytes, the largest "
				"UDP payload";
		p = end + 1;
	}
	return NULL;
}

/*
 * The padding of message kind index (0 for S1 ... 3 for S4): a padded
 * message must fit in 1280 bytes.
 */
const char *
wg_awg_check_s(int index, int value)
{
	static const char *const too_big[WG_AWG_S_COUNT] = {
		"S1 is from 0 to 1132: a padded handshake initiation (148 bytes) "
		"must fit in 1280 bytes",
		"S2 is from 0 to 1188: a padded handshake response (92 bytes) "
		"must fit in 1280 bytes",
		"S3 is from 0 to 1216: a padded cookie reply (64 bytes) must fit "
		"in 1280 bytes",
		"S4 is from 0 to 1248: a padded transport header (32 bytes) must "
		"fit in 1280 bytes",
	};

	if (value < 0 || value > PADDED_MESSAGE_MAX - message_size[index])
		return too_big[index];
	return NULL;
}

/*
 * Format a check's reason into buf (size bytes) and return buf, for
 * wg_awg_check()'s "return fail(...)".
 */
static const char *fail(char *buf, size_t size, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

static const char *
fail(char *buf, size_t size, const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	vsnprintf(buf, size, fmt, args);
	va_end(args);
	return buf;
}

/* Whether two message-type ranges share a value. */
static int
overlap(wg_awg_range a, wg_awg_range b)
{
	return a.lo <= b.hi && b.lo <= a.hi;
}

/*
 * A whole set.  Returns NULL when it is valid; otherwise *field names the
 * parameter at fault ("jmin", "h2", ...) and buf (size bytes) holds the
 * reason, naming the values at fault, the allowed range or the
 * conflicting parameter, and buf is returned.
 */
const char *
wg_awg_check(const wg_awg *awg, const char **field, char *buf, size_t size)
{
	int			h_set = 0;
	int			h_first = -1;

	*field = "jc";
	if (awg->jc < 0 || awg->jc > WG_AWG_JC_MAX)
		return fail(buf, size, "Jc is %d: the number of junk packets before "
					"a handshake is from 0 to %d", awg->jc, WG_AWG_JC_MAX);
	*field = "jmin";
	if (awg->jmin < 0 || awg->jmin > WG_AWG_JMAX_MAX)
		return fail(buf, size, "Jmin is %d: the smallest junk packet is from "
					"0 to %d bytes", awg->jmin, WG_AWG_JMAX_MAX);
	*field = "jmax";
	if (awg->jmax < 0 || awg->jmax > WG_AWG_JMAX_MAX)
		return fail(buf, size, "Jmax is %d: the largest junk packet is from "
					"0 to %d bytes", awg->jmax, WG_AWG_JMAX_MAX);
	if (awg->jmin > awg->jmax)
		return fail(buf, size, "Jmax is %d, smaller than Jmin (%d): the "
					"largest junk packet cannot be smaller than the smallest",
					awg->jmax, awg->jmin);
	*field = "jmin";
	if (awg->jc > 0 && awg->jmin < 1)
		return fail(buf, size, "Jmin is 0 while Jc is %d: junk packets are "
					"at least 1 byte (or set Jc to 0 for none)", awg->jc);
	for (int k = 0; k < WG_AWG_S_COUNT; k++)
	{
		const char *why = wg_awg_check_s(k, awg->s[k]);

		*field = s_names[k];
		if (why != NULL)
			return fail(buf, size, "S%d is %d: %s", k + 1, awg->s[k], why);
	}
	*field = "s2";
	if (awg->s[0] + message_size[0] == awg->s[1] + message_size[1])
		return fail(buf, size, "S2 is %d, which is S1 (%d) + 56: a padded "
					"initiation (148 + S1 bytes) and a padded response "
					"(92 + S2 bytes) would have the same size again",
					awg->s[1], awg->s[0]);
	for (int k = 0; k < WG_AWG_H_COUNT; k++)
		if (awg->h[k].hi != 0)
		{
			h_set++;
			if (h_first < 0)
				h_first = k;
		}
	for (int k = 0; k < WG_AWG_H_COUNT; k++)
	{
		char		mine[24];

		*field = h_names[k];
		wg_awg_format_range(awg->h[k], mine, sizeof(mine));
		if (h_set != 0 && awg->h[k].hi == 0)
			return fail(buf, size, "H%d is not set while H%d is: H1, H2, H3 "
						"and H4 are given all four or none", k + 1,
						h_first + 1);
		if (awg->h[k].lo > awg->h[k].hi || (awg->h[k].lo == 0 && awg->h[k].hi))
			return fail(buf, size, "H%d is %s: a message type range must not "
						"end below where it starts, nor include 0", k + 1,
						mine);
		for (int m = 0; m < k && h_set; m++)
			if (overlap(awg->h[k], awg->h[m]))
			{
				char		theirs[24];

				wg_awg_format_range(awg->h[m], theirs, sizeof(theirs));
				return fail(buf, size, "H%d (%s) overlaps H%d (%s): the "
							"message types must not overlap, a received "
							"message's type says which kind it is", k + 1,
							mine, m + 1, theirs);
			}
	}
	for (int k = 0; k < WG_AWG_I_COUNT; k++)
	{
		*field = i_names[k];
		if (awg->i[k] != NULL)
		{
			const char *why = wg_awg_check_tags(awg->i[k]);

			if (why != NULL)
				return fail(buf, size, "I%d: %s", k + 1, why);
		}
	}
	*field = NULL;
	return NULL;
}

/*
 * Draw a fresh set that wg_awg_check() accepts and every AmneziaWG client
 * imports: 3 to 10 junk packets of 40 to 600 bytes, S1 and S2 from 15 to
 * 150 (S3, S4 zero, which clients before AWG 1.5 understand), and four
 * distinct single message types from 5 up (never a WireGuard type), no
 * signature packets.  Uses libsodium's generator (sodium_init() is done
 * by the caller, as for keys).
 */
void
wg_awg_random(wg_awg *awg)
{
	memset(awg, 0, sizeof(*awg));
	awg->jc = 3 + (int) randombytes_uniform(8);
	awg->jmin = 40 + (int) randombytes_uniform(41);
	awg->jmax = awg->jmin + 50 + (int) randombytes_uniform(511);
	awg->s[0] = 15 + (int) randombytes_uniform(136);
	do
		awg->s[1] = 15 + (int) randombytes_uniform(136);
	while (awg->s[0] + message_size[0] == awg->s[1] + message_size[1]);
	for (int k = 0; k < WG_AWG_H_COUNT; k++)
	{
		int			clash;

		do
		{
			uint32_t	value = 5 + randombytes_uniform(0x7ffffffa);

			awg->h[k].lo = awg->h[k].hi = value;
			clash = 0;
			for (int m = 0; m < k; m++)
				clash |= awg->h[m].lo == value;
		} while (clash);
	}
}

/*
 * The message type range H<index + 1> a device uses: the set's, or
 * WireGuard's own type (index + 1) when the set leaves H unset.
 */
wg_awg_range
wg_awg_header(const wg_awg *awg, int index)
{
	wg_awg_range r = awg->h[index];

	if (r.hi == 0)
		r.lo = r.hi = (uint32_t) index + 1;
	return r;
}

/*
 * Whether two sets make a device behave the same: unset H equals
 * WireGuard's own type, an unset signature packet an empty one.
 */
int
wg_awg_equal(const wg_awg *a, const wg_awg *b)
{
	if (a->jc != b->jc || a->jmin != b->jmin || a->jmax != b->jmax)
		return 0;
	for (int k = 0; k < WG_AWG_S_COUNT; k++)
		if (a->s[k] != b->s[k])
			return 0;
	for (int k = 0; k < WG_AWG_H_COUNT; k++)
	{
		wg_awg_range x = wg_awg_header(a, k);
		wg_awg_range y = wg_awg_header(b, k);

		if (x.lo != y.lo || x.hi != y.hi)
			return 0;
	}
	for (int k = 0; k < WG_AWG_I_COUNT; k++)
		if (strcmp(a->i[k] ? a->i[k] : "", b->i[k] ? b->i[k] : "") != 0)
			return 0;
	return 1;
}
