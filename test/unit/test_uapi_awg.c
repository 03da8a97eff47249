/*
 * test_uapi_awg.c
 *		The UAPI backend against amneziawg-go (AmneziaWG's userspace
 *		daemon): its AWG keys in a set, its get replies of three versions,
 *		and its socket directory.
 *
 * amneziawg-go cannot be built here (its Go dependencies are in no
 * registry we reach), so the daemon's side comes from transcripts, the
 * .txt files of test/unit/fixtures/amneziawg-go, written from its
 * device/uapi.go at versions 0.2.2 (AWG 1.0), 0.2.19 (AWG 1.5) and 3.1
 * (AWG 2.0): each is a request and the reply the daemon gives to it.  The encoder must
 * produce a transcript's request byte for byte, the parser must read its
 * reply, and a fake daemon replaying the transcripts over a real unix
 * socket (in the second of two socket directories, as amneziawg-go's
 * /var/run/amneziawg comes after /var/run/wireguard) drives the socket
 * layer end to end.
 */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "device/uapi.h"

#define FIXTURES "test/unit/fixtures/amneziawg-go/"

/* One transcript: what the client sends, what the daemon answers. */
typedef struct transcript
{
	char		request[4096];
	char		reply[4096];
} transcript;

/*
 * Load FIXTURES<name>: comment lines ("# ..."), then the request up to
 * and including its blank line, then the reply.
 */
static void
load(const char *name, transcript *t)
{
	char		path[256];
	char		data[8192];
	FILE	   *f;
	size_t		len;
	char	   *p = data;
	char	   *end;

	memset(t, 0, sizeof(*t));
	snprintf(path, sizeof(path), FIXTURES "%s", name);
	f = fopen(path, "r");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	len = fread(data, 1, sizeof(data) - 1, f);
	fclose(f);
	data[len] = '\0';
	while (*p == '#')
		p = strchr(p, '\n') + 1;
	end = strstr(p, "\n\n");
	CHECK(end != NULL);
	if (end == NULL)
		return;
	end += 2;
	memcpy(t->request, p, end - p);
	strcpy(t->reply, end);
}

/* The sink of wguapi_build_set: append to a string. */
static int
append_sink(void *arg, const char *data, size_t len)
{
	char	   *buf = arg;

	strncat(buf, data, len);
	return 0;
}

/* A key of 32 equal bytes. */
static void
fill_key(uint8_t *key, uint8_t byte)
{
	memset(key, byte, WG_KEY_LEN);
}

/*
 * The set of the fixtures 3.1-set.txt and 0.2.2-set-refused.txt: port
 * 51840, an AWG 1.5/2.0 set (H ranges, S3, S4, two signature packets) and
 * one peer.  Its parts are static: the change points into them.
 */
static wg_device_change
fixture_change(void)
{
	static wg_awg awg;
	static wg_allowedip ip;
	static wg_peer_change peer;
	wg_device_change dc;

	memset(&awg, 0, sizeof(awg));
	awg.jc = 4;
	awg.jmin = 40;
	awg.jmax = 70;
	awg.s[0] = 20;
	awg.s[1] = 30;
	awg.s[2] = 32;
	awg.s[3] = 16;
	awg.h[0] = (wg_awg_range) {100, 200};
	awg.h[1] = (wg_awg_range) {300, 300};
	awg.h[2] = (wg_awg_range) {1000, 4000000000u};
	awg.h[3] = (wg_awg_range) {4000000001u, 4000000001u};
	awg.i[0] = "<b 0xc2000000011234567800><r 40>";
	awg.i[1] = "<c><t><rc 8><rd 4>";
	memset(&ip, 0, sizeof(ip));
	ip.family = AF_INET;
	ip.cidr = 32;
	ip.addr.ip4.s_addr = htonl(0x0a410002);	/* 10.65.0.2 */
	memset(&peer, 0, sizeof(peer));
	fill_key(peer.public_key, 0xa1);
	peer.has_preshared_key = true;
	peer.keepalive = 25;
	peer.allowedips = &ip;
	peer.n_allowedips = 1;
	memset(&dc, 0, sizeof(dc));
	dc.ifname = "awgfake";
	dc.listen_port = 51840;
	dc.awg = &awg;
	dc.peers = &peer;
	dc.n_peers = 1;
	return dc;
}

/* The encoder writes the transcript's request, byte for byte. */
static void
test_encode(void)
{
	transcript t;
	static char got[8192];
	wg_device_change dc = fixture_change();
	wg_awg		plain;

	load("3.1-set.txt", &t);
	got[0] = '\0';
	CHECK(wguapi_build_set(&dc, append_sink, got) == 0);
	CHECK_STR(got, t.request);

	/*
	 * An AWG 1.0 set: no s3, s4 or i lines (amneziawg-go 0.2.2 refuses
	 * them as unknown keys), H as numbers, WireGuard's types when unset.
	 */
	memset(&plain, 0, sizeof(plain));
	plain.jc = 3;
	plain.jmin = 10;
	plain.jmax = 20;
	dc.awg = &plain;
	dc.n_peers = 0;
	dc.listen_port = -1;
	got[0] = '\0';
	CHECK(wguapi_build_set(&dc, append_sink, got) == 0);
	CHECK_STR(got, "set=1\njc=3\njmin=10\njmax=20\ns1=0\ns2=0\n"
			  "h1=1\nh2=2\nh3=3\nh4=4\n\n");

	/* an invalid set is not sent at all */
	plain.jmin = 30;
	got[0] = '\0';
	CHECK(wguapi_build_set(&dc, append_sink, got) == -EINVAL);
	CHECK_STR(got, "");
}

/* Parse a whole reply into dev; returns the feed's result. */
static int
parse(const char *reply, wg_device *dev)
{
	wguapi_reply r;

	memset(dev, 0, sizeof(*dev));
	wguapi_reply_init(&r, dev);
	return wguapi_reply_feed(&r, reply, strlen(reply));
}

/* Check the parameters a 3.1 get reply (3.1-get.txt) holds. */
static void
check_v3_device(const wg_device *dev)
{
	wg_awg		awg;
	wg_device_change dc = fixture_change();

	CHECK(dev->has_awg);
	CHECK(dev->listen_port == 51840);
	wg_device_awg(dev, &awg);
	/* the same set as the fixture's set request */
	CHECK(wg_awg_equal(&awg, dc.awg));
	CHECK(dev->n_peers == 2);
	if (dev->n_peers == 2)
	{
		/* keepalive as a range: its lower end */
		CHECK(dev->peers[0].keepalive == 25);
		CHECK(dev->peers[0].rx_bytes == 2000);
		CHECK(dev->peers[1].keepalive == 0);
	}
}

/* The get replies of the three versions. */
static void
test_parse(void)
{
	transcript t;
	wg_device	dev;
	wg_awg		awg;

	load("3.1-get.txt", &t);
	CHECK_STR(t.request, "get=1\n\n");
	CHECK(parse(t.reply, &dev) == 1);
	check_v3_device(&dev);
	wg_device_free(&dev);

	load("0.2.19-get.txt", &t);
	CHECK(parse(t.reply, &dev) == 1);
	CHECK(dev.has_awg);
	wg_device_awg(&dev, &awg);
	CHECK(awg.jc == 4 && awg.jmin == 40 && awg.jmax == 70);
	CHECK(awg.s[0] == 20 && awg.s[1] == 30 && awg.s[2] == 0 && awg.s[3] == 0);
	CHECK(awg.h[2].lo == 345678 && awg.h[2].hi == 345700);
	CHECK_STR(awg.i[0], "<b 0xc0ff><r 16>");
	CHECK(awg.i[1] == NULL || awg.i[1][0] == '\0');
	CHECK(dev.n_peers == 1 && dev.peers[0].keepalive == 25);
	wg_device_free(&dev);

	load("0.2.2-get.txt", &t);
	CHECK(parse(t.reply, &dev) == 1);
	CHECK(dev.has_awg);
	wg_device_awg(&dev, &awg);
	CHECK(awg.h[0].lo == 123456 && awg.h[0].hi == 123456);
	CHECK(awg.h[3].lo == 456789);
	CHECK(dev.n_peers == 1 && dev.peers[0].keepalive == 0);
	wg_device_free(&dev);

	/* a plain wireguard-go reply has no AWG keys: not an AWG device */
	CHECK(parse("listen_port=51820\nerrno=0\n\n", &dev) == 1);
	CHECK(!dev.has_awg);
	wg_device_free(&dev);

	/* malformed AWG values are protocol errors, not zeros */
	CHECK(parse("jc=x\nerrno=0\n\n", &dev) == -EPROTO);
	wg_device_free(&dev);
	CHECK(parse("h1=5-\nerrno=0\n\n", &dev) == -EPROTO);
	wg_device_free(&dev);
	CHECK(parse("s1=70000\nerrno=0\n\n", &dev) == -EPROTO);
	wg_device_free(&dev);
	CHECK(parse("public_key=a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1\n"
				"persistent_keepalive_interval=30-\nerrno=0\n\n", &dev) == -EPROTO);
	wg_device_free(&dev);
}

/*
 * The fake daemon: serve one connection per transcript, in order; record
 * each request it reads (to record_path, one after the other) and answer
 * with the transcript's reply.  It dies by SIGALRM after 30 s.
 */
static void
replay(int listener, const transcript *ts, int n, const char *record_path)
{
	FILE	   *rec = fopen(record_path, "w");

	/* a client that never comes (a broken socket layer) fails, not hangs */
	alarm(30);
	for (int i = 0; i < n; i++)
	{
		char		buf[8192];
		size_t		len = 0;
		ssize_t		r;
		int			fd = accept(listener, NULL, NULL);

		if (fd < 0 || rec == NULL)
			_exit(1);
		while (len < sizeof(buf) - 1 &&
			   (r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		{
			len += r;
			buf[len] = '\0';
			if (len >= 2 && strcmp(buf + len - 2, "\n\n") == 0)
				break;
		}
		fwrite(buf, 1, len, rec);
		fflush(rec);
		if (write(fd, ts[i].reply, strlen(ts[i].reply)) < 0)
			_exit(1);
		close(fd);
	}
	fclose(rec);
	_exit(0);
}

/*
 * The socket layer against the replaying daemon, its socket in the second
 * of two directories (as amneziawg-go's).
 */
static void
test_socket(void)
{
	char		base[] = "/tmp/wgpeer-awg-uapi.XXXXXX";
	char		dirs[256];
	char		path[256];
	char		record[256];
	char		got[16384];
	char		want[16384];
	transcript	ts[3];
	struct sockaddr_un addr;
	wg_device_change dc = fixture_change();
	wg_device	dev;
	int			listener;
	int			fd;
	int			status;
	pid_t		pid;
	FILE	   *f;
	size_t		len;

	if (mkdtemp(base) == NULL)
	{
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(dirs, sizeof(dirs), "%s/wireguard:%s/amneziawg", base, base);
	snprintf(path, sizeof(path), "%s/wireguard", base);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/amneziawg", base);
	CHECK(mkdir(path, 0700) == 0);
	snprintf(record, sizeof(record), "%s/requests", base);

	/* no socket anywhere: the first directory's path, and none exists */
	CHECK(wguapi_socket_path(path, sizeof(path), dirs, "awgfake") == 0);
	snprintf(want, sizeof(want), "%s/wireguard/awgfake.sock", base);
	CHECK_STR(path, want);
	CHECK(!wguapi_exists(dirs, "awgfake"));

	load("3.1-set.txt", &ts[0]);
	load("3.1-get.txt", &ts[1]);
	load("0.2.2-set-refused.txt", &ts[2]);
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/amneziawg/awgfake.sock",
			 base);
	listener = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(listener, (struct sockaddr *) &addr, sizeof(addr)) == 0);
	CHECK(listen(listener, 8) == 0);

	/* the socket in amneziawg-go's directory is found */
	CHECK(wguapi_socket_path(path, sizeof(path), dirs, "awgfake") == 0);
	CHECK_STR(path, addr.sun_path);
	CHECK(wguapi_exists(dirs, "awgfake"));
	CHECK(wguapi_socket_id(dirs, "awgfake") != 0);

	if ((pid = fork()) == 0)
		replay(listener, ts, 3, record);

	fd = wguapi_connect(dirs, "awgfake");
	CHECK(fd >= 0);
	CHECK(wguapi_set(fd, &dc, 5000) == 0);
	close(fd);

	fd = wguapi_connect(dirs, "awgfake");
	CHECK(wguapi_get(fd, "awgfake", &dev, 5000) == 0);
	close(fd);
	check_v3_device(&dev);
	wg_device_free(&dev);

	/* an AWG 1.0 daemon refuses s3: its errno comes back */
	fd = wguapi_connect(dirs, "awgfake");
	CHECK(wguapi_set(fd, &dc, 5000) == -EINVAL);
	close(fd);

	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(listener);

	/* what the daemon read: exactly the transcripts' requests */
	f = fopen(record, "r");
	len = f ? fread(got, 1, sizeof(got) - 1, f) : 0;
	got[len] = '\0';
	if (f)
		fclose(f);
	snprintf(want, sizeof(want), "%s%s%s", ts[0].request, ts[1].request,
			 ts[2].request);
	CHECK_STR(got, want);

	unlink(addr.sun_path);
	unlink(record);
	snprintf(path, sizeof(path), "%s/amneziawg", base);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/wireguard", base);
	rmdir(path);
	rmdir(base);
}

int
main(void)
{
	test_encode();
	test_parse();
	test_socket();
	return UNIT_DONE("test_uapi_awg");
}
