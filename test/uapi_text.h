/*
 * uapi_text.h
 *		A wg_device written as a userspace daemon answers get=1 over the
 *		UAPI: what the UAPI unit test and fuzzer parse back and compare with
 *		the device they started from.
 *
 * Header-only (static inline), like helpers.h.
 */
#ifndef WGPEER_TEST_UAPI_TEXT_H
#define WGPEER_TEST_UAPI_TEXT_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <arpa/inet.h>

#include "device/device.h"

/* Output that writes what fits and counts everything, like snprintf. */
typedef struct uapi_text
{
	char	   *buf;
	size_t		size;
	size_t		len;
} uapi_text;

static inline void uapi_text_printf(uapi_text *t, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* Append a formatted string. */
static inline void
uapi_text_printf(uapi_text *t, const char *fmt,...)
{
	size_t		room = t->len < t->size ? t->size - t->len : 0;
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += n;
}

/* Append "name=<key in lowercase hex>\n". */
static inline void
uapi_text_key(uapi_text *t, const char *name, const uint8_t key[WG_KEY_LEN])
{
	uapi_text_printf(t, "%s=", name);
	for (int i = 0; i < WG_KEY_LEN; i++)
		uapi_text_printf(t, "%02x", key[i]);
	uapi_text_printf(t, "\n");
}

/* Append a peer's endpoint line, if it has one. */
static inline void
uapi_text_endpoint(uapi_text *t, const wg_peer_info *p)
{
	char		addr[INET6_ADDRSTRLEN];

	if (p->endpoint.family == AF_INET)
	{
		inet_ntop(AF_INET, &p->endpoint.in4.sin_addr, addr, sizeof(addr));
		uapi_text_printf(t, "endpoint=%s:%u\n", addr,
						 (unsigned) ntohs(p->endpoint.in4.sin_port));
	}
	else if (p->endpoint.family == AF_INET6)
	{
		inet_ntop(AF_INET6, &p->endpoint.in6.sin6_addr, addr, sizeof(addr));
		uapi_text_printf(t, "endpoint=[%s%%%" PRIu32 "]:%u\n", addr,
						 p->endpoint.in6.sin6_scope_id,
						 (unsigned) ntohs(p->endpoint.in6.sin6_port));
	}
}

/*
 * Write dev into buf as wireguard-go answers get=1: the device's lines,
 * each peer's, then "errno=0" and the blank line.  Returns the length of
 * the whole reply, which may exceed size (as snprintf's).
 */
static inline size_t
uapi_text_device(char *buf, size_t size, const wg_device *dev)
{
	uapi_text	t = {buf, size, 0};

	if (dev->has_private_key)
		uapi_text_key(&t, "private_key", dev->private_key);
	uapi_text_printf(&t, "listen_port=%u\n", (unsigned) dev->listen_port);
	if (dev->fwmark != 0)
		uapi_text_printf(&t, "fwmark=%" PRIu32 "\n", dev->fwmark);
	for (size_t i = 0; i < dev->n_peers; i++)
	{
		const wg_peer_info *p = &dev->peers[i];

		uapi_text_key(&t, "public_key", p->public_key);
		uapi_text_key(&t, "preshared_key", p->preshared_key);
		uapi_text_printf(&t, "protocol_version=1\n");
		uapi_text_endpoint(&t, p);
		uapi_text_printf(&t, "last_handshake_time_sec=%" PRId64 "\n"
						 "last_handshake_time_nsec=%" PRId64 "\n"
						 "tx_bytes=%" PRIu64 "\nrx_bytes=%" PRIu64 "\n"
						 "persistent_keepalive_interval=%u\n",
						 p->last_handshake_sec, p->last_handshake_nsec,
						 p->tx_bytes, p->rx_bytes, (unsigned) p->keepalive);
		for (size_t k = 0; k < p->n_allowedips; k++)
		{
			char		addr[INET6_ADDRSTRLEN];

			inet_ntop(p->allowedips[k].family, &p->allowedips[k].addr,
					  addr, sizeof(addr));
			uapi_text_printf(&t, "allowed_ip=%s/%u\n", addr,
							 (unsigned) p->allowedips[k].cidr);
		}
	}
	uapi_text_printf(&t, "errno=0\n\n");
	return t.len;
}

#endif							/* WGPEER_TEST_UAPI_TEXT_H */
