/*
 * webhook.h
 *		The webhook worker: a background worker of its own that delivers
 *		the event log to HTTP endpoints (wgpeer.webhook), apart from the
 *		apply worker, so that a slow endpoint never delays a revoke.
 *
 * main.c		registration and the main loop
 * deliver.c	one batch for one endpoint: read it, send it, record the
 *				outcome, each step in its own transaction or none
 * http.c		the signed POST, by libcurl
 *
 * The webhook worker depends on the common plumbing and the core, never
 * on the device backends, the apply worker or the SQL side.
 */
#ifndef WGPEER_WEBHOOK_H
#define WGPEER_WEBHOOK_H

#include "common/common.h"

#include <limits.h>

/* An endpoint has nothing due until an event or a retry time comes. */
#define WEBHOOK_IDLE LONG_MAX

/* main.c */
extern void wgpeer_webhook_register(void);

/* deliver.c */
extern long wgpeer_webhook_deliver(int64 webhook_id);

/* http.c */
extern void wgpeer_http_init(void);
extern bool wgpeer_http_post(const char *url, const char *secret,
							 int64 event_id, const char *body,
							 char **error);

#endif							/* WGPEER_WEBHOOK_H */
