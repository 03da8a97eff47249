/*
 * uapi.h
 *		Userspace WireGuard (wireguard-go, boringtun, and AmneziaWG's
 *		amneziawg-go) over the cross-platform UAPI: key=value lines on the
 *		unix socket <dir>/<ifname>.sock.
 *
 * The second device backend, beside netlink.h, with the model of device.h: a
 * wg_device_change goes in, a wg_device comes out, so the worker's
 * code above the seam does not know which backend it talks to.
 *
 * Pure C, no PostgreSQL headers: every function returns 0 (or a count) on
 * success and -errno on failure, never prints and never exits.
 *
 * Two layers:
 *	- request building (wguapi_build_set, handing the request to a sink
 *	  chunk by chunk, so a set of any size is never held whole) and reply
 *	  parsing (wguapi_reply_*, fed in pieces as they arrive) touch no
 *	  socket and are unit-tested;
 *	- wguapi_connect / wguapi_set / wguapi_get do the socket I/O with
 *	  them, on a non-blocking socket: no call waits longer than its
 *	  idle_ms for a daemon that makes no progress, so none can hang;
 *	  wguapi_probe_send / wguapi_probe_poll ask a daemon whether it
 *	  answers without ever waiting.
 */
#ifndef WGPEER_UAPI_H
#define WGPEER_UAPI_H

#include <stdbool.h>
#include <stddef.h>

#include "device/device.h"

/* Where wireguard-go and boringtun put their sockets (and wg looks). */
#define WGUAPI_SOCKET_DIR "/var/run/wireguard"

/* Where amneziawg-go puts its sockets (and awg looks). */
#define WGUAPI_AWG_SOCKET_DIR "/var/run/amneziawg"

/*
 * The directories searched, in order, when a caller names none: the
 * first that has the interface's socket is used.  A dir argument may be
 * such a list too, separated by ':'.
 */
#define WGUAPI_SOCKET_DIRS WGUAPI_SOCKET_DIR ":" WGUAPI_AWG_SOCKET_DIR

/* The request reaches the sink in chunks of at most this many bytes. */
#define WGUAPI_CHUNK_SIZE 4096

/*
 * Longest line sent or accepted: an AmneziaWG signature packet (i1=...,
 * up to WG_AWG_I_MAX characters) is the longest; before them an endpoint.
 */
#define WGUAPI_LINE_MAX (WG_AWG_I_MAX + 16)

/*
 * Receives a request as it is built: data, len bytes.  Returns 0, or
 * -errno to stop the building (which then returns that error).
 */
typedef int (*wguapi_sink) (void *arg, const char *data, size_t len);

/*
 * State of one reply being parsed: fed piece by piece with
 * wguapi_reply_feed.  Set up with wguapi_reply_init.
 */
typedef struct wguapi_reply
{
	wg_device *device;		/* a get reply fills it; NULL: a set reply */
	char		line[WGUAPI_LINE_MAX];
	size_t		line_len;
	bool		in_peer;		/* a public_key= line started a peer */
	bool		has_status;		/* the errno= line was seen */
	int			status;			/* its value, as 0 or -errno */
	bool		done;			/* the blank line that ends the reply */
} wguapi_reply;

/* Request building and reply parsing: no socket. */
extern int	wguapi_build_set(const wg_device_change *change,
							 wguapi_sink sink, void *arg);
extern void wguapi_reply_init(wguapi_reply *reply, wg_device *device);
extern int	wguapi_reply_feed(wguapi_reply *reply, const char *data,
							  size_t len);

/* Socket I/O. */
extern int	wguapi_socket_path(char *buf, size_t size, const char *dir,
							   const char *ifname);
extern unsigned int wguapi_socket_id(const char *dir, const char *ifname);
extern bool wguapi_exists(const char *dir, const char *ifname);
extern int	wguapi_connect(const char *dir, const char *ifname);
extern int	wguapi_set(int fd, const wg_device_change *change, int idle_ms);
extern int	wguapi_get(int fd, const char *ifname, wg_device *device,
					   int idle_ms);
extern int	wguapi_probe_send(int fd);
extern int	wguapi_probe_poll(int fd, wguapi_reply *reply);

#endif							/* WGPEER_UAPI_H */
