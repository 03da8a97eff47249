/*
 * uapi.c
 *		Userspace WireGuard over the cross-platform UAPI.
 *
 * A request is "set=1" or "get=1", then key=value lines, then a blank
 * line; the reply is key=value lines (a get's device and peers), then
 * "errno=N" and a blank line.  Keys travel in lowercase hex.  One
 * connection carries one operation, as with wg(8): wireguard-go reads
 * ahead, so a connection is not reused.
 *
 * A set is built line by line into a buffer of WGUAPI_CHUNK_SIZE bytes
 * that goes to the socket whenever it fills, so 100,000 peers cost no more
 * memory than one.  Peers are added or updated with replace_allowed_ips
 * (applying the same change twice equals applying it once) and removed
 * with remove=true (removing an unknown peer succeeds).  The daemon stops
 * at the first bad line and answers with its errno at once; our writes
 * after that fail (EPIPE), and the answer, still readable, is what we
 * report.  wireguard-go writes the errno negated, boringtun positive: both
 * become -errno.
 *
 * The socket is non-blocking and every wait goes through poll() with a
 * limit, idle_ms, on the time without progress (the daemon reading bytes
 * of the request or writing bytes of the reply): a daemon that stops
 * reading or answering (stopped with SIGSTOP, stuck) fails the call with
 * -ETIMEDOUT after idle_ms, however large the request, while a large set
 * or get that keeps moving is never cut short.  A daemon's listening
 * socket accepts connections into its backlog even while the daemon does
 * not run, so a connect proves nothing; a probe (an empty set, sent
 * without waiting, its answer collected later with wguapi_probe_poll) is
 * how a caller learns, without blocking, that a daemon answers again.
 */
#include "device/uapi.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "core/keys.h"

/* Bytes read from the socket at a time. */
#define WGUAPI_RECV_SIZE 16384

/* While waiting, whether the daemon reads what we sent is checked this often. */
#define WGUAPI_PROGRESS_MS 100

/* A request being built: the chunk not yet handed to the sink. */
typedef struct set_writer
{
	wguapi_sink sink;
	void	   *arg;
	int			error;			/* first failure; later puts do nothing */
	size_t		len;
	char		buf[WGUAPI_CHUNK_SIZE];
} set_writer;

static void put_line(set_writer *w, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* Hand the buffered bytes to the sink; returns 0 or the first error. */
static int
flush_chunk(set_writer *w)
{
	if (w->error == 0 && w->len > 0)
		w->error = w->sink(w->arg, w->buf, w->len);
	w->len = 0;
	return w->error;
}

/*
 * Append one line (printf format, newline included), first flushing the
 * chunk when the line would not fit in it.
 */
static void
put_line(set_writer *w, const char *fmt,...)
{
	char		line[WGUAPI_LINE_MAX];
	va_list		ap;
	int			n;

	if (w->error != 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t) n >= sizeof(line))
	{
		w->error = -EINVAL;
		return;
	}
	if (w->len + n > sizeof(w->buf) && flush_chunk(w) < 0)
		return;
	memcpy(w->buf + w->len, line, n);
	w->len += n;
	explicit_bzero(line, sizeof(line));
}

/* Append "name=<key in lowercase hex>". */
static void
put_key(set_writer *w, const char *name, const uint8_t key[WG_KEY_LEN])
{
	static const char digits[] = "0123456789abcdef";
	char		hex[WG_KEY_LEN * 2 + 1];

	for (int i = 0; i < WG_KEY_LEN; i++)
	{
		hex[2 * i] = digits[key[i] >> 4];
		hex[2 * i + 1] = digits[key[i] & 15];
	}
	hex[WG_KEY_LEN * 2] = '\0';
	put_line(w, "%s=%s\n", name, hex);
	explicit_bzero(hex, sizeof(hex));
}

/* Append one peer's lines: a removal, or an add that replaces its IPs. */
static void
put_peer(set_writer *w, const wg_peer_change *p)
{
	put_key(w, "public_key", p->public_key);
	if (p->remove)
	{
		put_line(w, "remove=true\n");
		return;
	}
	if (p->has_preshared_key)
		put_key(w, "preshared_key", p->preshared_key);
	if (p->keepalive >= 0)
		put_line(w, "persistent_keepalive_interval=%d\n", p->keepalive);
	put_line(w, "replace_allowed_ips=true\n");
	for (size_t i = 0; i < p->n_allowedips; i++)
	{
		const wg_allowedip *a = &p->allowedips[i];
		char		addr[INET6_ADDRSTRLEN];

		if (inet_ntop(a->family, &a->addr, addr, sizeof(addr)) == NULL)
		{
			w->error = -EINVAL;
			return;
		}
		put_line(w, "allowed_ip=%s/%u\n", addr, (unsigned) a->cidr);
	}
}

/*
 * Append an AmneziaWG set's device lines as amneziawg-go reads them
 * (device/uapi.go): jc, jmin, jmax, s1, s2; s3 and s4 only when not 0 and
 * i1..i5 only when set, because amneziawg-go before 0.2.19 (AWG 1.0)
 * refuses those keys as unknown; h1..h4 always, an unset one as
 * WireGuard's own type, a range as "lo-hi" (1.0 takes single values only,
 * and refuses a range: the daemon's errno says so).
 */
static void
put_awg(set_writer *w, const wg_awg *awg)
{
	put_line(w, "jc=%d\njmin=%d\njmax=%d\n", awg->jc, awg->jmin, awg->jmax);
	put_line(w, "s1=%d\ns2=%d\n", awg->s[0], awg->s[1]);
	for (int k = 2; k < WG_AWG_S_COUNT; k++)
		if (awg->s[k] != 0)
			put_line(w, "s%d=%d\n", k + 1, awg->s[k]);
	for (int k = 0; k < WG_AWG_H_COUNT; k++)
	{
		char		range[24];

		wg_awg_format_range(wg_awg_header(awg, k), range, sizeof(range));
		put_line(w, "h%d=%s\n", k + 1, range);
	}
	for (int k = 0; k < WG_AWG_I_COUNT; k++)
		if (awg->i[k] != NULL)
			put_line(w, "i%d=%s\n", k + 1, awg->i[k]);
}

/*
 * Build the set request for change and hand it to sink in chunks of at
 * most WGUAPI_CHUNK_SIZE bytes.  The batch is validated first, so a bad
 * entry sends nothing.  Returns 0, -EINVAL, or the sink's error (after
 * which nothing more is built).
 */
int
wguapi_build_set(const wg_device_change *change, wguapi_sink sink,
				 void *arg)
{
	set_writer	w;
	int			rc;

	if ((rc = wg_device_change_validate(change)) < 0)
		return rc;
	w.sink = sink;
	w.arg = arg;
	w.error = 0;
	w.len = 0;
	put_line(&w, "set=1\n");
	if (change->has_private_key)
		put_key(&w, "private_key", change->private_key);
	if (change->listen_port >= 0)
		put_line(&w, "listen_port=%d\n", change->listen_port);
	if (change->awg != NULL)
		put_awg(&w, change->awg);
	for (size_t i = 0; i < change->n_peers && w.error == 0; i++)
		put_peer(&w, &change->peers[i]);
	put_line(&w, "\n");
	rc = flush_chunk(&w);
	explicit_bzero(w.buf, sizeof(w.buf));
	return rc;
}

/* Start parsing a reply; device (NULL for a set) must be zeroed. */
void
wguapi_reply_init(wguapi_reply *reply, wg_device *device)
{
	memset(reply, 0, sizeof(*reply));
	reply->device = device;
}

/* Parse an unsigned decimal of at most max; false if it is not one. */
static bool
parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	char	   *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

/*
 * The value of each hex digit (either case) plus one; 0 for any other
 * byte.  A dump of 10,000 peers carries 20,000 keys: a lookup per digit
 * keeps their decoding a small part of reading it.
 */
static const uint8_t hex_digit[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5,
	['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
	['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* Parse 64 hex digits (either case) into a key. */
static bool
parse_key(const char *s, uint8_t key[WG_KEY_LEN])
{
	if (strlen(s) != WG_KEY_LEN * 2)
		return false;
	for (int i = 0; i < WG_KEY_LEN; i++)
	{
		uint8_t		hi = hex_digit[(unsigned char) s[2 * i]];
		uint8_t		lo = hex_digit[(unsigned char) s[2 * i + 1]];

		if (hi == 0 || lo == 0)
			return false;
		key[i] = (uint8_t) (((hi - 1) << 4) | (lo - 1));
	}
	return true;
}

/*
 * "errno=N": 0 is success; a failure is N or -N depending on the daemon
 * (wireguard-go negates it), kept as -errno.
 */
static int
parse_status(wguapi_reply *reply, const char *value)
{
	uint64_t	n;
	bool		negative = value[0] == '-';

	if (!parse_uint(value + negative, 4095, &n))
		return -EPROTO;
	reply->has_status = true;
	reply->status = -(int) n;
	return 0;
}

/*
 * Parse "addr:port" or "[addr6]:port" (an IPv6 zone may follow '%', as a
 * number or an interface name) into the peer's endpoint.
 */
static int
parse_endpoint(wg_peer_info *peer, const char *value)
{
	char		host[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
	const char *port;
	size_t		len;
	uint64_t	portnum;

	if (value[0] == '[')
	{
		const char *close = strchr(value, ']');

		if (close == NULL || close[1] != ':')
			return -EPROTO;
		len = close - value - 1;
		value++;
		port = close + 2;
	}
	else
	{
		if ((port = strrchr(value, ':')) == NULL)
			return -EPROTO;
		len = port - value;
		port++;
	}
	if (len >= sizeof(host) || !parse_uint(port, 65535, &portnum))
		return -EPROTO;
	memcpy(host, value, len);
	host[len] = '\0';

	memset(&peer->endpoint, 0, sizeof(peer->endpoint));
	if (inet_pton(AF_INET, host, &peer->endpoint.in4.sin_addr) == 1)
	{
		peer->endpoint.in4.sin_family = AF_INET;
		peer->endpoint.in4.sin_port = htons((uint16_t) portnum);
		return 0;
	}
	else
	{
		char	   *zone = strchr(host, '%');
		uint64_t	scope = 0;

		if (zone != NULL)
		{
			*zone++ = '\0';
			if (!parse_uint(zone, UINT32_MAX, &scope) &&
				(scope = if_nametoindex(zone)) == 0)
				return -EPROTO;
		}
		if (inet_pton(AF_INET6, host, &peer->endpoint.in6.sin6_addr) != 1)
			return -EPROTO;
		peer->endpoint.in6.sin6_family = AF_INET6;
		peer->endpoint.in6.sin6_port = htons((uint16_t) portnum);
		peer->endpoint.in6.sin6_scope_id = (uint32_t) scope;
		return 0;
	}
}

/* Parse "addr/cidr" and append it to the peer's allowed IPs. */
static int
parse_allowedip(wg_peer_info *peer, const char *value)
{
	const char *slash = strchr(value, '/');
	char		host[INET6_ADDRSTRLEN];
	wg_allowedip a;
	uint64_t	cidr;
	int			rc;

	if (slash == NULL || (size_t) (slash - value) >= sizeof(host))
		return -EPROTO;
	memcpy(host, value, slash - value);
	host[slash - value] = '\0';
	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, host, &a.addr.ip4) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, host, &a.addr.ip6) == 1)
		a.family = AF_INET6;
	else
		return -EPROTO;
	if (!parse_uint(slash + 1, a.family == AF_INET ? 32 : 128, &cidr))
		return -EPROTO;
	a.cidr = (uint8_t) cidr;
	if ((rc = wg_device_grow((void **) &peer->allowedips, peer->n_allowedips,
						&peer->cap_allowedips, sizeof(wg_allowedip))) < 0)
		return rc;
	peer->allowedips[peer->n_allowedips++] = a;
	return 0;
}

/* A "public_key=" line: the start of the next peer. */
static int
start_peer(wguapi_reply *reply, const char *value)
{
	wg_device *dev = reply->device;
	wg_peer_info *peer;
	int			rc;

	if ((rc = wg_device_grow((void **) &dev->peers, dev->n_peers, &dev->cap_peers,
						sizeof(wg_peer_info))) < 0)
		return rc;
	peer = &dev->peers[dev->n_peers];
	memset(peer, 0, sizeof(*peer));
	if (!parse_key(value, peer->public_key))
		return -EPROTO;
	dev->n_peers++;
	reply->in_peer = true;
	return 0;
}

/*
 * An amneziawg-go device line: jc, jmin, jmax and s1..s4 (decimal), h1..h4
 * (a number or "lo-hi"), i1..i5 (the tags as set).  Any of them makes the
 * device an AmneziaWG one.  Other keys (AWG 2.0's header_protection_key,
 * content_padding_addition, the timings, random_trailers, ...) are
 * skipped, as any unknown key.
 */
static int
parse_awg_line(wg_device *dev, const char *key, const char *value)
{
	uint64_t	n;
	/* the index of s1..s4, h1..h4, i1..i5 */
	int			k = strlen(key) == 2 ? key[1] - '1' : -1;

	if (strcmp(key, "jc") == 0 || strcmp(key, "jmin") == 0 ||
		strcmp(key, "jmax") == 0 ||
		(key[0] == 's' && k >= 0 && k < WG_AWG_S_COUNT))
	{
		if (!parse_uint(value, UINT16_MAX, &n))
			return -EPROTO;
		if (key[0] == 's')
			dev->awg.s[k] = (int) n;
		else if (strcmp(key, "jc") == 0)
			dev->awg.jc = (int) n;
		else if (strcmp(key, "jmin") == 0)
			dev->awg.jmin = (int) n;
		else
			dev->awg.jmax = (int) n;
	}
	else if (key[0] == 'h' && k >= 0 && k < WG_AWG_H_COUNT)
	{
		if (wg_awg_parse_range(value, &dev->awg.h[k]) != NULL)
			return -EPROTO;
	}
	else if (key[0] == 'i' && k >= 0 && k < WG_AWG_I_COUNT)
	{
		if (strlen(value) > WG_AWG_I_MAX)
			return -EPROTO;
		strcpy(dev->awg_i[k], value);
	}
	else
		return 0;
	dev->has_awg = true;
	return 0;
}

/*
 * A device line (before the first peer).  Unknown keys are skipped, so a
 * daemon that reports more than we know still works.
 */
static int
parse_device_line(wg_device *dev, const char *key, const char *value)
{
	uint64_t	n;

	if (strcmp(key, "private_key") == 0)
	{
		if (!parse_key(value, dev->private_key))
			return -EPROTO;
		dev->has_private_key = true;
		dev->has_public_key =
			wg_key_public(dev->public_key, dev->private_key) == 0;
	}
	else if (strcmp(key, "listen_port") == 0)
	{
		if (!parse_uint(value, 65535, &n))
			return -EPROTO;
		dev->listen_port = (uint16_t) n;
	}
	else if (strcmp(key, "fwmark") == 0)
	{
		if (!parse_uint(value, UINT32_MAX, &n))
			return -EPROTO;
		dev->fwmark = (uint32_t) n;
	}
	else
		return parse_awg_line(dev, key, value);
	return 0;
}

/* A line of the current peer; unknown keys are skipped. */
static int
parse_peer_line(wg_peer_info *peer, const char *key, const char *value)
{
	uint64_t	n = 0;
	bool		ok = true;

	if (strcmp(key, "preshared_key") == 0)
		ok = parse_key(value, peer->preshared_key);
	else if (strcmp(key, "endpoint") == 0)
		return parse_endpoint(peer, value);
	else if (strcmp(key, "allowed_ip") == 0)
		return parse_allowedip(peer, value);
	else if (strcmp(key, "last_handshake_time_sec") == 0)
	{
		ok = parse_uint(value, INT64_MAX, &n);
		peer->last_handshake_sec = (int64_t) n;
	}
	else if (strcmp(key, "last_handshake_time_nsec") == 0)
	{
		ok = parse_uint(value, 999999999, &n);
		peer->last_handshake_nsec = (int64_t) n;
	}
	else if (strcmp(key, "rx_bytes") == 0)
		ok = parse_uint(value, UINT64_MAX, &peer->rx_bytes);
	else if (strcmp(key, "tx_bytes") == 0)
		ok = parse_uint(value, UINT64_MAX, &peer->tx_bytes);
	else if (strcmp(key, "persistent_keepalive_interval") == 0)
	{
		/* amneziawg-go 3 (AWG 2.0) reports a range "lo-hi": its lo */
		wg_awg_range range = {0, 0};

		ok = wg_awg_parse_range(value, &range) == NULL &&
			range.lo <= UINT16_MAX;
		n = range.lo;
		peer->keepalive = (uint16_t) n;
	}
	return ok ? 0 : -EPROTO;
}

/* One complete reply line, its newline removed. */
static int
parse_line(wguapi_reply *reply, char *line)
{
	char	   *value;
	wg_device *dev = reply->device;

	if (line[0] == '\0')
	{
		/* the blank line ends the reply, and comes after errno= */
		if (!reply->has_status)
			return -EPROTO;
		reply->done = true;
		return 0;
	}
	if (reply->has_status || (value = strchr(line, '=')) == NULL)
		return -EPROTO;
	*value++ = '\0';
	if (strcmp(line, "errno") == 0)
		return parse_status(reply, value);
	if (dev == NULL)
		return -EPROTO;			/* a set reply carries only errno= */
	if (strcmp(line, "public_key") == 0)
		return start_peer(reply, value);
	if (!reply->in_peer)
		return parse_device_line(dev, line, value);
	return parse_peer_line(&dev->peers[dev->n_peers - 1], line, value);
}

/*
 * Feed the next len bytes of a reply.  Returns 1 when the reply is
 * complete (its errno= is then in reply->status), 0 when more is needed,
 * -EPROTO for a malformed reply (or bytes after its end), -ENOMEM.
 */
int
wguapi_reply_feed(wguapi_reply *reply, const char *data, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		const char *nl;
		size_t		take;
		int			rc;

		if (reply->done)
			return -EPROTO;
		/* the line's bytes up to its newline, or all there are */
		nl = memchr(data + i, '\n', len - i);
		take = nl ? (size_t) (nl - (data + i)) : len - i;
		if (reply->line_len + take > sizeof(reply->line) - 1)
			return -EPROTO;
		memcpy(reply->line + reply->line_len, data + i, take);
		reply->line_len += take;
		i += take;
		if (nl == NULL)
			break;
		i++;
		reply->line[reply->line_len] = '\0';
		rc = parse_line(reply, reply->line);
		explicit_bzero(reply->line, reply->line_len);
		reply->line_len = 0;
		if (rc < 0)
			return rc;
	}
	return reply->done ? 1 : 0;
}

/*
 * The socket path of interface ifname in dir (NULL: WGUAPI_SOCKET_DIRS):
 * with a list of directories separated by ':', in the first that has a
 * socket of that name, or else the first.  -EINVAL for a name that is not
 * an interface name, -ENAMETOOLONG when the path does not fit.
 */
int
wguapi_socket_path(char *buf, size_t size, const char *dir,
				   const char *ifname)
{
	const char *dirs = dir ? dir : WGUAPI_SOCKET_DIRS;
	size_t		len;
	struct stat st;
	int			n;

	if (ifname == NULL || ifname[0] == '\0' ||
		strlen(ifname) >= WG_IFNAME_SIZE || strchr(ifname, '/') != NULL)
		return -EINVAL;
	for (const char *p = dirs;; p += len + 1)
	{
		len = strcspn(p, ":");
		n = snprintf(buf, size, "%.*s/%s.sock", (int) len, p, ifname);
		if (n < 0 || (size_t) n >= size)
			return -ENAMETOOLONG;
		if (stat(buf, &st) == 0 && S_ISSOCK(st.st_mode))
			return 0;
		if (p[len] == '\0')
			break;
	}
	/* none has it: the first directory's path */
	n = snprintf(buf, size, "%.*s/%s.sock", (int) strcspn(dirs, ":"), dirs,
				 ifname);
	return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/*
 * The identity of ifname's UAPI socket in dir (NULL: WGUAPI_SOCKET_DIRS):
 * its inode number and change time folded to 32 bits, never 0, which
 * changes when the daemon restarts and makes a new socket (even when the
 * file system reuses the inode number); 0 when there is no socket.
 */
unsigned int
wguapi_socket_id(const char *dir, const char *ifname)
{
	char		path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
	struct stat st;
	unsigned int id;

	if (wguapi_socket_path(path, sizeof(path), dir, ifname) < 0 ||
		stat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return 0;
	id = (unsigned int) ((uint64_t) st.st_ino * 2654435761u ^
						 (uint64_t) st.st_ctim.tv_sec * 40503u ^
						 (uint64_t) st.st_ctim.tv_nsec);
	return id != 0 ? id : 1;
}

/*
 * Does ifname have a UAPI socket in dir?  Then a userspace daemon runs it
 * and the UAPI is the way in; otherwise it is the kernel's.  This is the
 * choice wg(8) makes.
 */
bool
wguapi_exists(const char *dir, const char *ifname)
{
	return wguapi_socket_id(dir, ifname) != 0;
}

/*
 * Connect to ifname's socket in dir (NULL: WGUAPI_SOCKET_DIRS), without
 * waiting.  Returns a non-blocking descriptor (close it after one
 * wguapi_set, wguapi_get or probe) or -errno: -ENOENT without a socket,
 * -ECONNREFUSED when its daemon is gone, -EACCES when we may not use it,
 * -EAGAIN when its backlog is full (the daemon accepts nothing: hung).
 */
int
wguapi_connect(const char *dir, const char *ifname)
{
	struct sockaddr_un addr;
	int			rc;

	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	if ((rc = wguapi_socket_path(addr.sun_path, sizeof(addr.sun_path), dir,
								 ifname)) < 0)
		return rc;

	/* an interrupted connect is started again on a fresh socket */
	for (;;)
	{
		int			fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *) &addr, sizeof(addr)) == 0)
			return fd;
		rc = errno;
		close(fd);
		if (rc == EAGAIN || rc == EWOULDBLOCK)
			return -EAGAIN;
		if (rc != EINTR)
			return -rc;
	}
}

/* Milliseconds on the monotonic clock. */
static int64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Bytes we sent on fd that the daemon has not read yet (SIOCOUTQ), or -1.
 */
static int
unread_bytes(int fd)
{
	int			n;

	return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -1;
}

/*
 * Wait until fd is ready for events (POLLIN or POLLOUT), through signals,
 * until nothing has moved for idle_ms (0 or less: without limit).  The
 * daemon reading what we sent counts as moving: a socket becomes writable
 * again only once most of its buffer is read, and a reply comes only once
 * the whole request is, so the bytes still unread are looked at every
 * WGUAPI_PROGRESS_MS.  Returns 0 (ready, or in an error state that the
 * next send or recv reports), -ETIMEDOUT, or -errno.
 */
static int
wait_ready(int fd, short events, int idle_ms)
{
	int64_t		deadline = monotonic_ms() + idle_ms;
	int			unread = unread_bytes(fd);

	for (;;)
	{
		struct pollfd pfd;
		int64_t		now = monotonic_ms();
		int			wait_ms = WGUAPI_PROGRESS_MS;
		int			n;

		if (idle_ms > 0 && deadline - now < wait_ms)
			wait_ms = deadline > now ? (int) (deadline - now) : 0;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, wait_ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
		now = monotonic_ms();
		if ((n = unread_bytes(fd)) >= 0 && n < unread)
		{
			unread = n;
			deadline = now + idle_ms;
		}
		if (idle_ms > 0 && now >= deadline)
			return -ETIMEDOUT;
	}
}

/* A connection and its limit, the argument of send_all. */
typedef struct uapi_conn
{
	int			fd;
	int			idle_ms;
} uapi_conn;

/*
 * A wguapi_sink writing to the connection *(uapi_conn *) arg: the whole
 * chunk, or -errno (-ETIMEDOUT when the daemon read nothing for its
 * idle_ms).  MSG_NOSIGNAL: a daemon that hung up must not kill us with
 * SIGPIPE.
 */
static int
send_all(void *arg, const char *data, size_t len)
{
	const uapi_conn *c = arg;

	while (len > 0)
	{
		ssize_t		n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int			rc;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		{
			if ((rc = wait_ready(c->fd, POLLOUT, c->idle_ms)) < 0)
				return rc;
			continue;
		}
		if (n < 0)
			return -errno;
		data += n;
		len -= n;
	}
	return 0;
}

/*
 * Feed reply with whatever fd holds now, without waiting.  Returns 1 when
 * the reply is complete, 0 when more has to come, or -errno: -ECONNRESET
 * when the daemon hung up first, -EPROTO for a malformed reply.
 */
static int
read_available(int fd, wguapi_reply *reply)
{
	char		buf[WGUAPI_RECV_SIZE];
	int			rc = 0;

	while (rc == 0)
	{
		ssize_t		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			rc = -errno;
		else if (n == 0)
			rc = -ECONNRESET;
		else
			rc = wguapi_reply_feed(reply, buf, n);
	}
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

/*
 * Read the reply into reply until it is complete.  Returns 0 (its errno=
 * is in reply->status) or -errno: -ETIMEDOUT when the daemon sent nothing
 * for idle_ms, -ECONNRESET when it hung up first, -EPROTO for a malformed
 * reply.
 */
static int
read_reply(int fd, wguapi_reply *reply, int idle_ms)
{
	int			rc;

	while ((rc = read_available(fd, reply)) == 0)
		if ((rc = wait_ready(fd, POLLIN, idle_ms)) < 0)
			return rc;
	return rc < 0 ? rc : 0;
}

/*
 * Apply change over a connection from wguapi_connect, streaming the
 * request; each wait for the daemon lasts at most idle_ms (0: without
 * limit).  Returns 0 or -errno: the daemon's own errno when it refused a
 * line (even if it hung up on the rest of the request), else the
 * socket's (-ETIMEDOUT when the daemon stopped moving).
 */
int
wguapi_set(int fd, const wg_device_change *change, int idle_ms)
{
	uapi_conn	c = {fd, idle_ms};
	wguapi_reply reply;
	int			rc;
	int			read_rc;

	rc = wguapi_build_set(change, send_all, &c);
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		return rc;
	wguapi_reply_init(&reply, NULL);
	read_rc = read_reply(fd, &reply, idle_ms);
	if (read_rc < 0)
		return rc < 0 ? rc : read_rc;
	return reply.status;
}

/*
 * Read ifname's device over a connection from wguapi_connect into device
 * (free it with wg_device_free; it is empty after an error); each wait
 * for the daemon lasts at most idle_ms (0: without limit).  The daemon
 * does not report an ifindex: it stays 0.  Returns 0 or -errno.
 */
int
wguapi_get(int fd, const char *ifname, wg_device *device, int idle_ms)
{
	static const char request[] = "get=1\n\n";
	uapi_conn	c = {fd, idle_ms};
	wguapi_reply reply;
	int			rc;

	memset(device, 0, sizeof(*device));
	if (ifname == NULL || strlen(ifname) >= WG_IFNAME_SIZE)
		return -EINVAL;
	strcpy(device->ifname, ifname);
	if ((rc = send_all(&c, request, sizeof(request) - 1)) < 0)
		return rc;
	wguapi_reply_init(&reply, device);
	if ((rc = read_reply(fd, &reply, idle_ms)) == 0)
		rc = reply.status;
	if (rc < 0)
		wg_device_free(device);
	return rc;
}

/*
 * Start a probe over a fresh connection from wguapi_connect: an empty set,
 * which changes nothing, sent without waiting (it fits in the socket
 * buffer even of a daemon that does not run).  Set up reply with
 * wguapi_reply_init(reply, NULL) and collect the answer with
 * wguapi_probe_poll.  Returns 0 or -errno.
 */
int
wguapi_probe_send(int fd)
{
	static const char request[] = "set=1\n\n";
	ssize_t		n;

	do
		n = send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t) n == sizeof(request) - 1 ? 0 : -EAGAIN;
}

/*
 * Has the daemon answered the probe sent with wguapi_probe_send?  Never
 * waits.  Returns 1 when it has (it runs and serves its socket; its errno
 * is in reply->status), 0 when not yet, or -errno when the connection
 * failed (-ECONNRESET: the daemon closed it, e.g. when it exited).
 */
int
wguapi_probe_poll(int fd, wguapi_reply *reply)
{
	return read_available(fd, reply);
}
