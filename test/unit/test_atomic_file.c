/*
 * test_atomic_file.c
 *		Unit tests of atomic_file.c: content, mode 0600 whatever the umask,
 *		replacement, no temporary file left behind, and the error paths.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "unit.h"

static char dir[64];

/* path of name inside the test directory, in one of a few static buffers */
static const char *
in_dir(const char *name)
{
	static char paths[8][256];
	static int	next;
	char	   *path = paths[next++ % 8];

	snprintf(path, 256, "%s/%s", dir, name);
	return path;
}

/* The whole content of path, in a static buffer ("" when unreadable). */
static const char *
slurp(const char *path)
{
	static char buf[4096];
	int			fd = open(path, O_RDONLY);
	ssize_t		n = fd < 0 ? 0 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* Permission bits of path, -1 when it cannot be stat'ed. */
static int
mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) < 0 ? -1 : (int) (st.st_mode & 07777);
}

/* Number of entries in the test directory besides "." and "..". */
static int
entries(void)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	int			n = 0;

	while (d && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	if (d)
		closedir(d);
	return n;
}

static void
test_write_replace(void)
{
	const char *path = in_dir("wg0.conf");
	const char *first = "[Interface]\nListenPort = 51820\n";
	const char *second = "[Interface]\n";

	umask(0);					/* the mode must not depend on the umask */
	CHECK(wg_atomic_write(path, first, strlen(first)) == 0);
	CHECK_STR(slurp(path), first);
	CHECK(mode_of(path) == 0600);
	CHECK(entries() == 1);		/* no temporary file left */
	CHECK(wg_atomic_unchanged(path, first, strlen(first)) == 1);
	CHECK(wg_atomic_unchanged(path, second, strlen(second)) == 0);
	CHECK(wg_atomic_unchanged(path, "[Interface]\nListenPort = 51821\n",
							  strlen(first)) == 0);

	/* replacement by a shorter content: nothing of the old one remains */
	umask(022);
	CHECK(wg_atomic_write(path, second, strlen(second)) == 0);
	CHECK_STR(slurp(path), second);
	CHECK(mode_of(path) == 0600);
	CHECK(entries() == 1);

	/* a file with the right content but the wrong mode is not unchanged */
	chmod(path, 0644);
	CHECK(wg_atomic_unchanged(path, second, strlen(second)) == 0);
	CHECK(wg_atomic_unchanged(in_dir("missing.conf"), "", 0) == 0);

	/* an empty file */
	CHECK(wg_atomic_write(path, "", 0) == 0);
	CHECK_STR(slurp(path), "");
	CHECK(wg_atomic_unchanged(path, "", 0) == 1);

	/* remove, twice */
	CHECK(wg_atomic_remove(path) == 0);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
	CHECK(wg_atomic_remove(path) == 0);
	CHECK(entries() == 0);
}

static void
test_errors(void)
{
	const char *sub = in_dir("sub");

	/* missing directory */
	CHECK(wg_atomic_write(in_dir("nope/wg0.conf"), "x", 1) == -ENOENT);
	/* a path under a file */
	CHECK(wg_atomic_write(in_dir("plain"), "x", 1) == 0);
	CHECK(wg_atomic_write(in_dir("plain/wg0.conf"), "x", 1) == -ENOTDIR);
	CHECK(wg_atomic_mkdir(in_dir("plain")) == -ENOTDIR);
	CHECK(wg_atomic_remove(in_dir("plain")) == 0);
	/* no last component */
	CHECK(wg_atomic_write(in_dir(""), "x", 1) == -EINVAL);
	/* the target is a directory: the rename fails, the temp file goes */
	CHECK(wg_atomic_mkdir(sub) == 0);
	CHECK(mode_of(sub) == 0700);
	CHECK(wg_atomic_mkdir(sub) == 0);	/* already there */
	CHECK(wg_atomic_write(sub, "x", 1) == -EISDIR);
	CHECK(entries() == 1);
	/* a read-only directory (root is never refused) */
	if (geteuid() != 0)
	{
		chmod(sub, 0500);
		CHECK(wg_atomic_write(in_dir("sub/wg0.conf"), "x", 1) == -EACCES);
		chmod(sub, 0700);
	}
	rmdir(sub);
	CHECK(entries() == 0);
}

static void
test_temp_names(void)
{
	CHECK(wg_atomic_is_temp_of(".wg0.conf.tmp.aB3xYz", "wg0.conf"));
	CHECK(wg_atomic_is_temp_of(".wg0.conf.tmp.aB3xYz", NULL));
	CHECK(!wg_atomic_is_temp_of(".wg0.conf.tmp.aB3xYz", "wg1.conf"));
	CHECK(!wg_atomic_is_temp_of(".wg0.conf.tmp.aB3xYz", "wg0.con"));
	CHECK(!wg_atomic_is_temp_of("wg0.conf", "wg0.conf"));
	CHECK(!wg_atomic_is_temp_of("wg0.conf.tmp.aB3xYz", NULL));
	CHECK(!wg_atomic_is_temp_of(".wg0.conf.tmp.aB3", NULL));
	CHECK(!wg_atomic_is_temp_of(".tmp.", NULL));
}

int
main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_atomic_file.XXXXXX");
	if (mkdtemp(dir) == NULL)
	{
		perror("mkdtemp");
		return 1;
	}
	test_write_replace();
	test_errors();
	test_temp_names();
	rmdir(dir);
	return UNIT_DONE("test_atomic_file");
}
