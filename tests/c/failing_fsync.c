// SPDX-License-Identifier: MIT
/*
 * A disk that fails to write back: LD_PRELOADed into a process, fsync() and
 * fdatasync() fail with EIO for every file whose path contains
 * $FAIL_FSYNC_MATCH (as a dying disk or a full thin pool reports it; fsync(2)).
 * Other files sync as usual.  tests/test_archive_fsync.py builds it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failing(int fd)
{
	const char *match = getenv("FAIL_FSYNC_MATCH");
	char link[64], path[4096];
	ssize_t n;

	if (!match || !*match)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return 0;
	path[n] = '\0';
	return strstr(path, match) != NULL;
}

int fsync(int fd)
{
	static int (*real)(int);

	if (failing(fd)) {
		errno = EIO;
		return -1;
	}
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	return real(fd);
}

int fdatasync(int fd)
{
	static int (*real)(int);

	if (failing(fd)) {
		errno = EIO;
		return -1;
	}
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	return real(fd);
}
