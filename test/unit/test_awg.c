/*
 * test_awg.c
 *		Unit tests of awg.c: ranges, the signature-packet tag grammar, the
 *		rules of a whole set, and random sets that those rules accept.
 */
#include <string.h>

#include <sodium.h>

#include "unit.h"
#include "core/awg.h"

#define OK(expr) CHECK((expr) == NULL)
#define BAD(expr) CHECK((expr) != NULL)

/* The set the thirdparty notes saw handshake: jc 4 jmin 40 jmax 70 ... */
static wg_awg
known_set(void)
{
	wg_awg		a;

	memset(&a, 0, sizeof(a));
	a.jc = 4;
	a.jmin = 40;
	a.jmax = 70;
	a.s[0] = 20;
	a.s[1] = 30;
	a.h[0].lo = a.h[0].hi = 123456;
	a.h[1].lo = a.h[1].hi = 234567;
	a.h[2].lo = a.h[2].hi = 345678;
	a.h[3].lo = a.h[3].hi = 456789;
	return a;
}

static void
test_range(void)
{
	wg_awg_range r;
	char		buf[32];

	OK(wg_awg_parse_range("5", &r));
	CHECK(r.lo == 5 && r.hi == 5);
	OK(wg_awg_parse_range("100-200", &r));
	CHECK(r.lo == 100 && r.hi == 200);
	OK(wg_awg_parse_range("4294967295", &r));
	CHECK(r.lo == 4294967295u);
	OK(wg_awg_parse_range("0", &r));
	CHECK(r.lo == 0 && r.hi == 0);
	BAD(wg_awg_parse_range("4294967296", &r));
	BAD(wg_awg_parse_range("99999999999", &r));
	BAD(wg_awg_parse_range("", &r));
	BAD(wg_awg_parse_range("-5", &r));
	BAD(wg_awg_parse_range("5-", &r));
	BAD(wg_awg_parse_range("5 - 6", &r));
	BAD(wg_awg_parse_range("200-100", &r));
	BAD(wg_awg_parse_range("0-10", &r));
	BAD(wg_awg_parse_range("1-2-3", &r));
	BAD(wg_awg_parse_range("0x10", &r));
	r.lo = 7;
	r.hi = 7;
	CHECK(wg_awg_format_range(r, buf, sizeof(buf)) == 1);
	CHECK_STR(buf, "7");
	r.hi = 4294967295u;
	wg_awg_format_range(r, buf, sizeof(buf));
	CHECK_STR(buf, "7-4294967295");
}

static void
test_tags(void)
{
	OK(wg_awg_check_tags("<b 0xc0ff>"));
	OK(wg_awg_check_tags("<b 0xC0FFee><c><t><r 16><rc 8><rd 4>"));
	OK(wg_awg_check_tags("<r 65507>"));
	BAD(wg_awg_check_tags("<r 65508>"));
	BAD(wg_awg_check_tags("<r 65000><r 600>"));
	BAD(wg_awg_check_tags(""));
	BAD(wg_awg_check_tags("junk<r 4>"));
	BAD(wg_awg_check_tags("<r 4> <r 4>"));
	BAD(wg_awg_check_tags("<r 4>x"));
	BAD(wg_awg_check_tags("<b 0xabc>"));
	BAD(wg_awg_check_tags("<b 0x>"));
	BAD(wg_awg_check_tags("<b ab>"));
	BAD(wg_awg_check_tags("<b 0xzz>"));
	BAD(wg_awg_check_tags("<b>"));
	BAD(wg_awg_check_tags("<c 1>"));
	BAD(wg_awg_check_tags("<t 1>"));
	BAD(wg_awg_check_tags("<r>"));
	BAD(wg_awg_check_tags("<r 0>"));
	BAD(wg_awg_check_tags("<r -1>"));
	BAD(wg_awg_check_tags("<r 1x>"));
	BAD(wg_awg_check_tags("<r  4>"));
	BAD(wg_awg_check_tags("<r 4 5>"));
	BAD(wg_awg_check_tags("<x 4>"));
	BAD(wg_awg_check_tags("< r 4>"));
	BAD(wg_awg_check_tags("<r 4"));
	BAD(wg_awg_check_tags("<r <r 4>>"));
	BAD(wg_awg_check_tags("<b 0x00>#"));
	BAD(wg_awg_check_tags("<r 4>\n<r 4>"));
	{
		char		big[WG_AWG_I_MAX + 2];

		memset(big, 0, sizeof(big));
		memcpy(big, "<b 0x", 5);
		memset(big + 5, 'a', WG_AWG_I_MAX - 6);
		big[WG_AWG_I_MAX - 1] = '>';
		OK(wg_awg_check_tags(big));
		memmove(big + 6, big + 5, WG_AWG_I_MAX - 5);
		big[5] = 'a';
		BAD(wg_awg_check_tags(big));
	}
}

static void
test_set(void)
{
	wg_awg		a = known_set();
	wg_awg		zero;
	const char *field;
	char		why[WG_AWG_REASON_SIZE];

	OK(wg_awg_check(&a, &field, why, sizeof(why)));
	CHECK(field == NULL);
	memset(&zero, 0, sizeof(zero));
	OK(wg_awg_check(&zero, &field, why, sizeof(why)));

	a.jc = 129;
	BAD(wg_awg_check(&a, &field, why, sizeof(why)));
	CHECK_STR(field, "jc");
	CHECK(strstr(why, "Jc is 129: ") == why && strstr(why, "0 to 128"));
	a = known_set();
	a.jmin = 80;
	BAD(wg_awg_check(&a, &field, why, sizeof(why)));
	CHECK_STR(field, "jmax");
	CHECK(strstr(why, "Jmax is 70, smaller than Jmin (80)") == why);
	a = known_set();
	a.jmax = 1281;
	BAD(wg_awg_check(&a, &field, why, sizeof(why)));
	CHECK_STR(field, "jmax");
	a = known_set();
	a.jmin = 0;
	BAD(wg_awg_check(&a, &field, why, sizeof(why)));
	CHECK_STR(field, "jmin");
	CHECK(strstr(why, "Jmin is 0 while Jc is 4") == why);
	a.jc = 0;
	OK(wg_awg_check(&a, &field, why, sizeof(why)));

	a = known_set();
	a.s[0] = 1132;
	OK(wg_awg_check(&a, &field, why, sizeof(why)));
	a.s[0] = 1133;
	BAD(wg_awg_check(&a, &field, why, sizeof(why)));
	CHECK_STR(field, "s1");
	a = known_set();
	a.s[1] = 1189;
	BAD(wg_awg_check(&a, &field, why, sizeof(why)));
	CHECK_STR(field, "s2");
	a = known_set();
	a.s[2] = 1217;
	BAD(wg_awg_check(&a, &field, why, sizeof(why)));
	CHECK_STR(field, "s3");
	a = known_set();
	a.s[3] = 1249;
	BAD(wg_awg_check(&a, &field, why, sizeof(why)));
	CHECK_STR(field, "s4");
	a.s[3] = -1;
	BAD(wg_awg_check(&a, &field, why, sizeof(why)));
	a = known_set();
	a.s[1] = a.s[0] + 56;
	BAD(wg_awg_check(&a, &field, why, sizeof(why)));
	CHECK_STR(field, "s2");
	CHECK(strstr(why, "S2 is 76, which is S1 (20) + 56") == why);

	a = known_set();
	a.h[2].lo = 100;
	a.h[2].hi = 123456;
	BAD(wg_awg_check(&a, &field, why, sizeof(why)));
	CHECK_STR(field, "h3");
	CHECK(strstr(why, "H3 (100-123456) overlaps H1 (123456)") == why);
	a.h[2].hi = 123455;
	OK(wg_awg_check(&a, &field, why, sizeof(why)));
	a.h[3].lo = a.h[3].hi = 0;
	BAD(wg_awg_check(&a, &field, why, sizeof(why)));
	CHECK_STR(field, "h4");
	CHECK(strstr(why, "H4 is not set while H1 is") == why);

	a = known_set();
	a.i[2] = "<r 16>";
	OK(wg_awg_check(&a, &field, why, sizeof(why)));
	a.i[4] = "<q>";
	BAD(wg_awg_check(&a, &field, why, sizeof(why)));
	CHECK_STR(field, "i5");
	CHECK(strstr(why, "I5: Unknown tag") == why);
}

static void
test_random(void)
{
	for (int n = 0; n < 2000; n++)
	{
		wg_awg		a;
		const char *field;
		char		why[WG_AWG_REASON_SIZE];

		wg_awg_random(&a);
		OK(wg_awg_check(&a, &field, why, sizeof(why)));
		CHECK(a.jc >= 3 && a.jmin >= 40 && a.s[0] >= 15);
		for (int k = 0; k < WG_AWG_H_COUNT; k++)
			CHECK(a.h[k].lo >= 5 && a.h[k].lo == a.h[k].hi);
	}
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_range();
	test_tags();
	test_set();
	test_random();
	return UNIT_DONE("test_awg");
}
