/*
 * atomic_file.c
 *		Write, replace and remove files so that a reader, or the next boot
 *		after a crash, sees either the complete old content or the complete
 *		new content, never a mix or a truncated file.
 *
 * A write goes to a new temporary file in the target's directory (so the
 * rename stays within one file system), created with O_EXCL and mode
 * 0600 so nobody else can open it; the data is written in full and
 * fsynced, the temporary file is renamed over the target (rename is
 * atomic), and the directory is fsynced so the rename itself survives a
 * power loss.  A writer killed midway leaves at most a stale temporary
 * file, which wg_atomic_is_temp_of() recognises for cleanup.
 */
#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Temporary names are ".<target>.tmp.XXXXXX": hidden, never "*.conf". */
#define TEMP_INFIX ".tmp."
#define TEMP_SUFFIX_LEN 6
#define TEMP_ATTEMPTS 100

/*
 * Split path into its directory (dir, "." when path has no slash) and its
 * last component (*base points into path).  -ENAMETOOLONG when the
 * directory does not fit, -EINVAL when there is no last component.
 */
static int
split_path(const char *path, char *dir, size_t dir_size, const char **base)
{
	const char *slash = strrchr(path, '/');
	size_t		len;

	if (slash == NULL)
	{
		snprintf(dir, dir_size, ".");
		*base = path;
	}
	else
	{
		len = slash == path ? 1 : (size_t) (slash - path);
		if (len >= dir_size)
			return -ENAMETOOLONG;
		memcpy(dir, path, len);
		dir[len] = '\0';
		*base = slash + 1;
	}
	return (*base)[0] == '\0' ? -EINVAL : 0;
}

/*
 * fsync a directory, so that the names created, renamed or removed in it
 * are durable.
 */
static int
fsync_dir(const char *dir)
{
	int			fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int			rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/*
 * Create a temporary file next to the target: O_CREAT | O_EXCL with a
 * fresh random suffix until a name is free.  Returns the descriptor, with
 * the name in tmp, or -errno.
 */
static int
create_temp(const char *dir, const char *base, char *tmp, size_t tmp_size)
{
	static const char letters[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	static unsigned long long state;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	state ^= ((unsigned long long) getpid() << 32) ^
		(unsigned long long) ts.tv_nsec ^ (unsigned long long) ts.tv_sec;
	for (int attempt = 0; attempt < TEMP_ATTEMPTS; attempt++)
	{
		char		suffix[TEMP_SUFFIX_LEN + 1];
		int			fd;
		int			n;

		for (int i = 0; i < TEMP_SUFFIX_LEN; i++)
		{
			/* xorshift64: uniqueness comes from O_EXCL, not from this */
			state ^= state << 13;
			state ^= state >> 7;
			state ^= state << 17;
			suffix[i] = letters[state % (sizeof(letters) - 1)];
		}
		suffix[TEMP_SUFFIX_LEN] = '\0';
		n = snprintf(tmp, tmp_size, "%s/.%s" TEMP_INFIX "%s", dir, base, suffix);
		if (n < 0 || (size_t) n >= tmp_size)
			return -ENAMETOOLONG;
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				  WG_ATOMIC_FILE_MODE);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

/*
 * Write all of data to fd, through short writes and signals.
 */
static int
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0)
	{
		ssize_t		n = write(fd, p, len);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

/*
 * Replace path with data atomically, mode 0600 (whatever the umask).
 * Returns 0 or -errno; on failure the target is untouched and no
 * temporary file is left behind.
 */
int
wg_atomic_write(const char *path, const void *data, size_t len)
{
	char		dir[PATH_MAX];
	char		tmp[PATH_MAX];
	const char *base;
	int			fd;
	int			rc;

	if ((rc = split_path(path, dir, sizeof(dir), &base)) < 0)
		return rc;
	if ((fd = create_temp(dir, base, tmp, sizeof(tmp))) < 0)
		return fd;
	if (fchmod(fd, WG_ATOMIC_FILE_MODE) < 0 ||
		(rc = write_all(fd, data, len)) < 0 ||
		fsync(fd) < 0)
		rc = rc < 0 ? rc : -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
	{
		unlink(tmp);
		return rc;
	}
	return fsync_dir(dir);
}

/*
 * Remove path and make the removal durable.  A file that is already gone
 * is not an error: removing twice equals removing once.
 */
int
wg_atomic_remove(const char *path)
{
	char		dir[PATH_MAX];
	const char *base;
	int			rc;

	if ((rc = split_path(path, dir, sizeof(dir), &base)) < 0)
		return rc;
	if (unlink(path) < 0)
		return errno == ENOENT ? 0 : -errno;
	return fsync_dir(dir);
}

/*
 * Make sure path is a directory, creating it with mode 0700 (and making
 * its name durable) when missing.  An existing directory is left as it
 * is; anything else in its place is -ENOTDIR.
 */
int
wg_atomic_mkdir(const char *path)
{
	char		dir[PATH_MAX];
	const char *base;
	struct stat st;
	int			rc;

	if (mkdir(path, WG_ATOMIC_DIR_MODE) == 0)
	{
		if (chmod(path, WG_ATOMIC_DIR_MODE) < 0)
			return -errno;
		if ((rc = split_path(path, dir, sizeof(dir), &base)) < 0)
			return rc;
		return fsync_dir(dir);
	}
	if (errno != EEXIST)
		return -errno;
	if (stat(path, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/*
 * Does path already hold exactly data, as a regular file of mode 0600?
 * Returns 1 when it does (nothing to write), 0 when it differs or is
 * missing, -errno when it cannot be read.
 */
int
wg_atomic_unchanged(const char *path, const void *data, size_t len)
{
	const char *want = data;
	char		buf[8192];
	struct stat st;
	size_t		done = 0;
	int			rc = 1;
	int			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return errno == ENOENT || errno == ELOOP ? 0 : -errno;
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else if (!S_ISREG(st.st_mode) ||
			 (st.st_mode & 07777) != WG_ATOMIC_FILE_MODE ||
			 (size_t) st.st_size != len)
		rc = 0;
	while (rc == 1)
	{
		ssize_t		n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		else if (n == 0)
			break;
		else if ((size_t) n > len - done || memcmp(buf, want + done, n) != 0)
			rc = 0;
		else
			done += (size_t) n;
	}
	close(fd);
	return rc == 1 && done == len ? 1 : (rc < 0 ? rc : 0);
}

/*
 * Is name (a directory entry) a temporary file that wg_atomic_write()
 * created for the target named target (a last component; NULL for any
 * target), and left behind because the writer was killed?
 */
int
wg_atomic_is_temp_of(const char *name, const char *target)
{
	size_t		len = strlen(name);
	size_t		ilen = strlen(TEMP_INFIX);
	size_t		tlen;

	if (name[0] != '.' || len < 2 + ilen + TEMP_SUFFIX_LEN)
		return 0;
	tlen = len - 1 - ilen - TEMP_SUFFIX_LEN;
	return strncmp(name + 1 + tlen, TEMP_INFIX, ilen) == 0 &&
		(target == NULL ||
		 (strlen(target) == tlen && strncmp(name + 1, target, tlen) == 0));
}
