/*
 * atomic_kill.c
 *		Kill test of atomic_file.c: a writer that replaces a large file
 *		over and over with wg_atomic_write() is SIGKILLed at random moments,
 *		many times, while a reader keeps reading the file.  Every read, and
 *		the file after every kill, must be one complete version, never a
 *		partial or mixed one.
 *
 * Usage: atomic_kill DIR ROUNDS.  Prints "atomic_kill: N passed, N failed"
 * and exits non-zero on any failure.  Built by test/export_test.sh.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/atomic_file.h"

/* Each version: a header naming it, then one filler byte repeated. */
#define FILE_SIZE (1024 * 1024)
#define HEADER_LEN 19			/* "wgpeer v0123456789\n" */

static char target[4096];
static volatile sig_atomic_t stop_reading = 0;

/* Fill buf with version v. */
static void
make_version(char *buf, unsigned v)
{
	snprintf(buf, HEADER_LEN + 1, "wgpeer v%010u\n", v);
	memset(buf + HEADER_LEN, 'a' + v % 26, FILE_SIZE - HEADER_LEN - 1);
	buf[FILE_SIZE - 1] = '\n';
}

/*
 * Read the target and check it is one complete version.  Returns the
 * version (>= 0) or -1 when the content is partial or mixed.
 */
static long
check_file(char *buf)
{
	int			fd = open(target, O_RDONLY);
	size_t		len = 0;
	unsigned	v;
	ssize_t		n;

	if (fd < 0)
		return -1;				/* the target must always exist */
	while ((n = read(fd, buf + len, FILE_SIZE + 1 - len)) > 0)
		len += (size_t) n;
	close(fd);
	if (n < 0 || len != FILE_SIZE || sscanf(buf, "wgpeer v%10u\n", &v) != 1 ||
		buf[HEADER_LEN - 1] != '\n' || buf[FILE_SIZE - 1] != '\n')
		return -1;
	for (size_t i = HEADER_LEN; i < FILE_SIZE - 1; i++)
		if (buf[i] != 'a' + (char) (v % 26))
			return -1;
	return v;
}

/* SIGTERM handler of the reader. */
static void
on_term(int sig)
{
	stop_reading = 1;
}

/*
 * The reader: check the file until told to stop, then report the number
 * of good and bad reads through the pipe.
 */
static void
reader(int out, char *buf)
{
	long		counts[2] = {0, 0};

	signal(SIGTERM, on_term);
	while (!stop_reading)
		counts[check_file(buf) < 0]++;
	if (write(out, counts, sizeof(counts)) != sizeof(counts))
		_exit(2);
	_exit(0);
}

/* The writer: replace the target with versions first, first+1, ... */
static void
writer(unsigned first, char *buf)
{
	for (unsigned v = first;; v++)
	{
		make_version(buf, v);
		if (wg_atomic_write(target, buf, FILE_SIZE) < 0)
			_exit(1);
	}
}

/* Remove the temporary files killed writers left; return how many. */
static int
remove_temps(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	int			n = 0;
	char		path[8192];

	while (d && (e = readdir(d)) != NULL)
		if (wg_atomic_is_temp_of(e->d_name, "target.conf"))
		{
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
			n++;
		}
	if (d)
		closedir(d);
	return n;
}

int
main(int argc, char **argv)
{
	char	   *buf = malloc(FILE_SIZE + 1);
	int			rounds = argc > 2 ? atoi(argv[2]) : 0;
	int			passed = 0;
	int			failed = 0;
	int			changed = 0;
	long		last = 0;
	long		counts[2] = {0, 0};
	int			fds[2];
	pid_t		reader_pid;
	int			temps;

	if (argc != 3 || rounds <= 0 || buf == NULL)
	{
		fprintf(stderr, "usage: atomic_kill DIR ROUNDS\n");
		return 2;
	}
	snprintf(target, sizeof(target), "%s/target.conf", argv[1]);
	make_version(buf, 0);
	if (wg_atomic_write(target, buf, FILE_SIZE) < 0 || pipe(fds) < 0)
	{
		perror("atomic_kill: setup");
		return 2;
	}
	srand((unsigned) time(NULL) ^ (unsigned) getpid());
	if ((reader_pid = fork()) == 0)
		reader(fds[1], buf);

	for (int round = 1; round <= rounds; round++)
	{
		pid_t		pid = fork();
		long		v;

		if (pid == 0)
			writer((unsigned) round * 100000u, buf);
		usleep((useconds_t) (rand() % 100000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		v = check_file(buf);
		if (v < 0)
		{
			if (failed++ < 10)
				fprintf(stderr, "round %d: the file is partial or mixed\n", round);
		}
		else
		{
			passed++;
			changed += v != last;
			last = v;
		}
	}

	kill(reader_pid, SIGTERM);
	waitpid(reader_pid, NULL, 0);
	if (read(fds[0], counts, sizeof(counts)) != sizeof(counts))
		counts[1] = 1;
	temps = remove_temps(argv[1]);

	/* the reader's verdicts count too, and the test must not be vacuous */
	passed += counts[0] > 0;
	failed += counts[1] > 0;
	if (counts[1] > 0)
		fprintf(stderr, "the reader saw %ld partial or mixed files\n", counts[1]);
	if (changed < rounds / 10)
	{
		fprintf(stderr, "only %d of %d kills found a new version\n", changed, rounds);
		failed++;
	}
	else
		passed++;
	printf("atomic_kill: %d rounds, %d kills after a new version, %ld reads "
		   "(%ld bad), %d temporary files left by killed writers\n",
		   rounds, changed, counts[0] + counts[1], counts[1], temps);
	printf("atomic_kill: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
