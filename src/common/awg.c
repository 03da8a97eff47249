/*
 * awg.c
 *		AmneziaWG parameters as jsonb: read from what a caller passes or a
 *		table stores, checked by the core (core/awg.c), and written back in
 *		wgpeer's normal form.
 *
 * The keys are the config's names in lower case (jc, jmin, jmax, s1..s4,
 * h1..h4, i1..i5; any case is taken).  Numbers may be JSON numbers or
 * strings of digits (AmneziaVPN writes them as strings); H1..H4 a number
 * or a "lo-hi" range; I1..I5 a string of tags, "" for none.
 */
#include "common/common.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "core/awg.h"

/* The keys, in the order of the normal form. */
enum
{
	KEY_JC, KEY_JMIN, KEY_JMAX,
	KEY_S1, KEY_S2, KEY_S3, KEY_S4,
	KEY_H1, KEY_H2, KEY_H3, KEY_H4,
	KEY_I1, KEY_I2, KEY_I3, KEY_I4, KEY_I5,
	NUM_KEYS
};

static const char *const key_names[NUM_KEYS] = {
	"jc", "jmin", "jmax", "s1", "s2", "s3", "s4", "h1", "h2", "h3", "h4",
	"i1", "i2", "i3", "i4", "i5"
};

/* The index of a key (any case), -1 for an unknown one. */
static int
key_index(const char *key, int len)
{
	for (int k = 0; k < NUM_KEYS; k++)
		if (strlen(key_names[k]) == (size_t) len &&
			pg_strncasecmp(key, key_names[k], len) == 0)
			return k;
	return -1;
}

/* Raise the error for a value the core refused. */
static void pg_attribute_noreturn()
bad_value(const char *what, const char *key, const char *value, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value \"%s\" for AmneziaWG parameter %s in %s",
					value, key, what),
			 errdetail("%s.", why),
			 errhint("wgpeer.wg_awg_params() returns a valid random set; "
					 "docs/amneziawg.md describes each parameter.")));
}

/*
 * A number (J, S) from its text: digits only, at most 5 of them; the
 * core then checks its range.
 */
static int
parse_small(const char *what, const char *key, const char *text)
{
	int			value = 0;
	int			n = 0;

	for (const char *p = text; *p; p++)
	{
		if (*p < '0' || *p > '9' || ++n > 5)
			bad_value(what, key, text,
					  "It is a whole number of at most 5 digits, as a JSON "
					  "number or a string of digits");
		value = value * 10 + (*p - '0');
	}
	if (n == 0)
		bad_value(what, key, text, "It is a whole number");
	return value;
}

/*
 * Read a jsonb object of AmneziaWG parameters into *out (strings palloc'd)
 * and given[] (which keys it had).  With peer, only a client's junk
 * profile is allowed: jc, jmin and jmax together, and i1..i5.  what names
 * the argument in errors.  Checks each value; the caller checks the set.
 */
static void
read_awg(Jsonb *jb, const char *what, bool peer, wg_awg *out,
		 bool given[NUM_KEYS])
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			key = -1;

	memset(out, 0, sizeof(*out));
	memset(given, 0, sizeof(bool) * NUM_KEYS);
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", what),
				 errhint("Pass e.g. '{\"jc\": 4, \"jmin\": 40, \"jmax\": 70}'.")));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *text;

		if (tok == WJB_KEY)
		{
			char	   *name = pnstrdup(v.val.string.val, v.val.string.len);

			key = key_index(v.val.string.val, v.val.string.len);
			if (key < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown AmneziaWG parameter \"%s\" in %s",
								name, what),
						 errhint(peer ?
								 "A client's own profile takes jc, jmin, jmax "
								 "and i1 to i5." :
								 "The parameters are jc, jmin, jmax, s1 to s4, "
								 "h1 to h4 and i1 to i5.")));
			if (peer && key >= KEY_S1 && key <= KEY_H4)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s cannot be set for one client", name),
						 errdetail("S1..S4 and H1..H4 must be the same on the "
								   "server and every client of an interface."),
						 errhint("Change them for the whole interface with "
								 "wgpeer.wg_set_interface_awg().")));
			continue;
		}
		if (tok != WJB_VALUE || key < 0)
			continue;
		if (v.type == jbvString)
			text = pnstrdup(v.val.string.val, v.val.string.len);
		else if (v.type == jbvNumeric)
			text = DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v.val.numeric)));
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("AmneziaWG parameter %s in %s must be a number or "
							"a string", key_names[key], what),
					 errhint("Leave a parameter out rather than set it to "
							 "null.")));
		given[key] = true;
		switch (key)
		{
			case KEY_JC:
				out->jc = parse_small(what, "jc", text);
				break;
			case KEY_JMIN:
				out->jmin = parse_small(what, "jmin", text);
				break;
			case KEY_JMAX:
				out->jmax = parse_small(what, "jmax", text);
				break;
			case KEY_S1:
			case KEY_S2:
			case KEY_S3:
			case KEY_S4:
				{
					int			k = key - KEY_S1;
					const char *why;

					out->s[k] = parse_small(what, key_names[key], text);
					if ((why = wg_awg_check_s(k, out->s[k])) != NULL)
						bad_value(what, key_names[key], text, why);
					break;
				}
			case KEY_H1:
			case KEY_H2:
			case KEY_H3:
			case KEY_H4:
				{
					const char *why;

					why = wg_awg_parse_range(text, &out->h[key - KEY_H1]);
					if (why != NULL)
						bad_value(what, key_names[key], text, why);
					break;
				}
			default:
				{
					const char *why;

					if (text[0] == '\0')
						break;
					if ((why = wg_awg_check_tags(text)) != NULL)
						bad_value(what, key_names[key], text, why);
					out->i[key - KEY_I1] = text;
					break;
				}
		}
	}
	if (peer && (given[KEY_JC] || given[KEY_JMIN] || given[KEY_JMAX]) &&
		!(given[KEY_JC] && given[KEY_JMIN] && given[KEY_JMAX]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a client's junk profile gives jc, jmin and jmax "
						"together"),
				 errdetail("Each is checked against the others (Jmin <= Jmax)."),
				 errhint("Pass all three, e.g. '{\"jc\": 2, \"jmin\": 10, "
						 "\"jmax\": 50}'.")));
}

/*
 * The value of key in awg as the normal form writes it ("" for an unset
 * H or I).
 */
static char *
key_value(const wg_awg *awg, int key)
{
	char		range[24];

	if (key <= KEY_JMAX)
		return psprintf("%d", key == KEY_JC ? awg->jc :
						key == KEY_JMIN ? awg->jmin : awg->jmax);
	if (key <= KEY_S4)
		return psprintf("%d", awg->s[key - KEY_S1]);
	if (key <= KEY_H4)
	{
		if (awg->h[key - KEY_H1].hi == 0)
			return pstrdup("");
		wg_awg_format_range(awg->h[key - KEY_H1], range, sizeof(range));
		return pstrdup(range);
	}
	return pstrdup(awg->i[key - KEY_I1] ? awg->i[key - KEY_I1] : "");
}

/*
 * Raise the error for a set the core refused as a whole: the message
 * names the parameter at fault and its value (or that it is missing), the
 * detail why, with the values it conflicts with.
 */
static void
check_set(const wg_awg *awg, const char *what)
{
	const char *field;
	char		why[WG_AWG_REASON_SIZE];
	char	   *value;

	if (wg_awg_check(awg, &field, why, sizeof(why)) == NULL)
		return;
	value = key_value(awg, key_index(field, strlen(field)));
	if (value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("AmneziaWG parameter %s is missing in %s", field,
						what),
				 errdetail("%s.", why),
				 errhint("Give %s too, or leave all four H out.", field)));
	bad_value(what, field, value, why);
}

/*
 * The normal form: every key of an interface's set (i1..i5 only when
 * set), or only the keys given for a client's profile (an i key given as
 * "" stays, to hide the interface's).
 */
static Jsonb *
write_awg(const wg_awg *awg, bool peer, const bool given[NUM_KEYS])
{
	StringInfoData buf;
	const char *sep = "";

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int k = 0; k < NUM_KEYS; k++)
	{
		if (peer && !given[k])
			continue;
		if (k >= KEY_I1 && awg->i[k - KEY_I1] == NULL && !(peer && given[k]))
			continue;
		appendStringInfo(&buf, "%s\"%s\": ", sep, key_names[k]);
		sep = ", ";
		if (k <= KEY_JMAX)
			appendStringInfo(&buf, "%d",
							 k == KEY_JC ? awg->jc :
							 k == KEY_JMIN ? awg->jmin : awg->jmax);
		else if (k <= KEY_S4)
			appendStringInfo(&buf, "%d", awg->s[k - KEY_S1]);
		else if (k <= KEY_H4)
		{
			wg_awg_range r = awg->h[k - KEY_H1];

			if (r.lo == r.hi)
				appendStringInfo(&buf, "%u", r.lo);
			else
				appendStringInfo(&buf, "\"%u-%u\"", r.lo, r.hi);
		}
		else
			escape_json(&buf, awg->i[k - KEY_I1] ? awg->i[k - KEY_I1] : "");
	}
	appendStringInfoChar(&buf, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(buf.data)));
}

/*
 * An interface's parameters as a caller passed them (what names the
 * argument in errors): checked key by key and as a set, returned in the
 * normal form, and in *out when out is not NULL.
 */
Jsonb *
wgpeer_awg_interface(Jsonb *jb, const char *what, wg_awg *out)
{
	wg_awg		awg;
	bool		given[NUM_KEYS];

	read_awg(jb, what, false, &awg, given);
	check_set(&awg, what);
	if (out)
		*out = awg;
	return write_awg(&awg, false, given);
}

/*
 * A client's own profile as a caller passed it, laid over its interface's
 * parameters (stored, normal form): the two together must make a valid
 * set.  Returns the profile in the normal form.
 */
Jsonb *
wgpeer_awg_peer(Jsonb *jb, Jsonb *interface_awg, const char *what)
{
	wg_awg		awg;
	wg_awg		mine;
	bool		given[NUM_KEYS];
	bool		ignored[NUM_KEYS];

	read_awg(jb, what, true, &mine, given);
	read_awg(interface_awg, "the interface's parameters", false, &awg, ignored);
	if (given[KEY_JC])
	{
		awg.jc = mine.jc;
		awg.jmin = mine.jmin;
		awg.jmax = mine.jmax;
	}
	for (int k = 0; k < WG_AWG_I_COUNT; k++)
		if (given[KEY_I1 + k])
			awg.i[k] = mine.i[k];
	check_set(&awg, what);
	return write_awg(&mine, true, given);
}

/*
 * The set a client's config carries: its interface's parameters with the
 * client's own profile (NULL for none) laid over them.
 */
void
wgpeer_awg_effective(Jsonb *interface_awg, Jsonb *peer_awg, wg_awg *out)
{
	wg_awg		mine;
	bool		given[NUM_KEYS];

	read_awg(interface_awg, "the interface's parameters", false, out, given);
	if (peer_awg == NULL)
		return;
	read_awg(peer_awg, "the client's profile", true, &mine, given);
	if (given[KEY_JC])
	{
		out->jc = mine.jc;
		out->jmin = mine.jmin;
		out->jmax = mine.jmax;
	}
	for (int k = 0; k < WG_AWG_I_COUNT; k++)
		if (given[KEY_I1 + k])
			out->i[k] = mine.i[k];
}

/* A fresh random set, in the normal form. */
Jsonb *
wgpeer_awg_random(void)
{
	wg_awg		awg;
	bool		given[NUM_KEYS];

	wg_awg_random(&awg);
	memset(given, 0, sizeof(given));
	return write_awg(&awg, false, given);
}

/*
 * Which of S1..S4 and H1..H4 (the parameters server and clients must
 * share) differ between two stored sets, as a list "s1, h2", or NULL when
 * none does.
 */
char *
wgpeer_awg_shared_changes(Jsonb *before, Jsonb *after)
{
	wg_awg		a;
	wg_awg		b;
	bool		given[NUM_KEYS];
	StringInfoData names;

	read_awg(before, "the former parameters", false, &a, given);
	read_awg(after, "the new parameters", false, &b, given);
	initStringInfo(&names);
	for (int k = 0; k < WG_AWG_S_COUNT; k++)
		if (a.s[k] != b.s[k])
			appendStringInfo(&names, "%s%s", names.len ? ", " : "",
							 key_names[KEY_S1 + k]);
	for (int k = 0; k < WG_AWG_H_COUNT; k++)
		if (a.h[k].lo != b.h[k].lo || a.h[k].hi != b.h[k].hi)
			appendStringInfo(&names, "%s%s", names.len ? ", " : "",
							 key_names[KEY_H1 + k]);
	return names.len ? names.data : NULL;
}
