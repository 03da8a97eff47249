/*
 * config.c
 *		The client .conf in the wg-quick format the WireGuard apps import.
 *
 * The renderer refuses any field that could break out of its line (a
 * newline, a control character, or an empty required value), so even a
 * caller that skipped validation cannot inject lines or sections.  Every
 * field is ASCII by construction (keys, addresses, prefixes, endpoints,
 * DNS lists, interface names), so anything else is refused too: bytes
 * such as U+2028 LINE SEPARATOR or U+0085 NEXT LINE, which some readers
 * of a config (an editor, a QR scanner's app) take for a line break.
 */
#include "core/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/validate.h"

/* Output cursor: writes what fits, counts everything. */
typedef struct out_buf
{
	char	   *buf;
	size_t		size;
	size_t		len;
} out_buf;

static void out_printf(out_buf *out, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* Append a formatted string, truncating silently; len counts it all. */
static void
out_printf(out_buf *out, const char *fmt,...)
{
	va_list		ap;
	int			n;
	size_t		room = out->len < out->size ? out->size - out->len : 0;

	va_start(ap, fmt);
	n = vsnprintf(room ? out->buf + out->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		out->len += n;
}

/*
 * A field may be rendered when it is absent or a clean one-line value of
 * printable ASCII.
 */
static int
field_ok(const char *value, int required)
{
	if (value == NULL)
		return !required;
	return value[0] != '\0' && wg_check_ascii(value) == NULL;
}

/*
 * The AmneziaWG lines of a client's [Interface], in the order and spelling
 * AmneziaWG clients write and import them: Jc, Jmin, Jmax, S1, S2, then
 * S3 and S4 only when set (clients before AWG 1.5 refuse those keys),
 * H1..H4 when set, and the signature packets I1..I5 that are set.
 */
static void
render_awg(out_buf *out, const wg_awg *awg)
{
	out_printf(out, "Jc = %d\nJmin = %d\nJmax = %d\n",
			   awg->jc, awg->jmin, awg->jmax);
	out_printf(out, "S1 = %d\nS2 = %d\n", awg->s[0], awg->s[1]);
	for (int k = 2; k < WG_AWG_S_COUNT; k++)
		if (awg->s[k] != 0)
			out_printf(out, "S%d = %d\n", k + 1, awg->s[k]);
	for (int k = 0; k < WG_AWG_H_COUNT; k++)
	{
		char		range[32];

		if (awg->h[k].hi == 0)
			continue;
		wg_awg_format_range(awg->h[k], range, sizeof(range));
		out_printf(out, "H%d = %s\n", k + 1, range);
	}
	for (int k = 0; k < WG_AWG_I_COUNT; k++)
		if (awg->i[k] != NULL)
			out_printf(out, "I%d = %s\n", k + 1, awg->i[k]);
}

/*
 * Render cfg into buf.  Returns the length of the whole config (which may
 * exceed size, like snprintf; the caller retries with a larger buffer), or
 * -EINVAL when a field is missing, could not stay on its own line or is
 * not ASCII, or when the AmneziaWG parameters are not a valid set
 * (wg_awg_check(); a valid set's signature packets are tags only, which
 * can hold no '#' and no line break).
 */
int
wg_config_render(const wg_client_config *cfg, char *buf, size_t size)
{
	out_buf		out = {buf, size, 0};

	if (!field_ok(cfg->private_key, 0) || !field_ok(cfg->address, 1) ||
		!field_ok(cfg->address6, 0) || !field_ok(cfg->dns, 0) ||
		!field_ok(cfg->server_public_key, 1) ||
		!field_ok(cfg->preshared_key, 0) || !field_ok(cfg->endpoint, 1) ||
		!field_ok(cfg->allowed_ips, 1) ||
		(cfg->private_key == NULL && !field_ok(cfg->public_key, 1)) ||
		cfg->mtu < 0 || cfg->persistent_keepalive < 0)
		return -EINVAL;
	if (cfg->awg != NULL)
	{
		const char *field;
		char		why[WG_AWG_REASON_SIZE];

		if (wg_awg_check(cfg->awg, &field, why, sizeof(why)) != NULL)
			return -EINVAL;
	}

	out_printf(&out, "[Interface]\n");
	if (cfg->private_key)
		out_printf(&out, "PrivateKey = %s\n", cfg->private_key);
	else
		out_printf(&out, "# PrivateKey = <the private key of %s>\n",
				   cfg->public_key);
	out_printf(&out, "Address = %s", cfg->address);
	if (cfg->address6)
		out_printf(&out, ", %s", cfg->address6);
	out_printf(&out, "\n");
	if (cfg->dns)
		out_printf(&out, "DNS = %s\n", cfg->dns);
	if (cfg->mtu > 0)
		out_printf(&out, "MTU = %d\n", cfg->mtu);
	if (cfg->awg != NULL)
		render_awg(&out, cfg->awg);
	out_printf(&out, "\n[Peer]\n");
	out_printf(&out, "PublicKey = %s\n", cfg->server_public_key);
	if (cfg->preshared_key)
		out_printf(&out, "PresharedKey = %s\n", cfg->preshared_key);
	out_printf(&out, "Endpoint = %s\n", cfg->endpoint);
	out_printf(&out, "AllowedIPs = %s\n", cfg->allowed_ips);
	if (cfg->persistent_keepalive > 0)
		out_printf(&out, "PersistentKeepalive = %d\n",
				   cfg->persistent_keepalive);
	return (int) out.len;
}

/*
 * Render a server interface in the `wg setconf` format (no wg-quick keys),
 * so that `wg syncconf <interface> <file>` restores its key, port and
 * peers without PostgreSQL.  An AmneziaWG interface's file carries its
 * parameters in [Interface], as the client configs do, and names `awg
 * syncconf`: `awg setconf`, `awg syncconf` and `awg-quick up` read it.
 * Returns the length like wg_config_render(), -EINVAL for a missing or
 * multi-line field, a bad number or an invalid AmneziaWG set, -EOVERFLOW
 * past INT_MAX bytes.
 */
int
wg_server_config_render(const wg_server_config *cfg, char *buf, size_t size)
{
	out_buf		out = {buf, size, 0};

	if (!field_ok(cfg->interface, 1) || !field_ok(cfg->private_key, 0) ||
		cfg->listen_port < 1 || cfg->listen_port > 65535 ||
		cfg->n_peers < 0 || (cfg->n_peers > 0 && cfg->peers == NULL))
		return -EINVAL;
	if (cfg->awg != NULL)
	{
		const char *field;
		char		why[WG_AWG_REASON_SIZE];

		if (wg_awg_check(cfg->awg, &field, why, sizeof(why)) != NULL)
			return -EINVAL;
	}
	for (int i = 0; i < cfg->n_peers; i++)
	{
		const wg_server_peer *p = &cfg->peers[i];

		if (!field_ok(p->public_key, 1) || !field_ok(p->preshared_key, 0) ||
			!field_ok(p->address, 1) || !field_ok(p->address6, 0) ||
			!field_ok(p->routes, 0) ||
			p->persistent_keepalive < 0 || p->persistent_keepalive > 65535)
			return -EINVAL;
	}

	out_printf(&out, "# wgpeer: interface %s, %d peers; restore with "
			   "\"%s syncconf %s <this file>\"\n",
			   cfg->interface, cfg->n_peers, cfg->awg ? "awg" : "wg",
			   cfg->interface);
	out_printf(&out, "[Interface]\n");
	if (cfg->private_key)
		out_printf(&out, "PrivateKey = %s\n", cfg->private_key);
	else
		out_printf(&out, "# PrivateKey is kept outside the database: "
				   "prepend it in an [Interface] section, or syncconf "
				   "clears the interface's key\n");
	out_printf(&out, "ListenPort = %d\n", cfg->listen_port);
	if (cfg->awg)
		render_awg(&out, cfg->awg);
	for (int i = 0; i < cfg->n_peers; i++)
	{
		const wg_server_peer *p = &cfg->peers[i];

		out_printf(&out, "\n[Peer]\nPublicKey = %s\n", p->public_key);
		if (p->preshared_key)
			out_printf(&out, "PresharedKey = %s\n", p->preshared_key);
		out_printf(&out, "AllowedIPs = %s", p->address);
		if (p->address6)
			out_printf(&out, ", %s", p->address6);
		if (p->routes)
			out_printf(&out, ", %s", p->routes);
		out_printf(&out, "\n");
		if (p->persistent_keepalive > 0)
			out_printf(&out, "PersistentKeepalive = %d\n",
					   p->persistent_keepalive);
	}
	return out.len > INT_MAX ? -EOVERFLOW : (int) out.len;
}
