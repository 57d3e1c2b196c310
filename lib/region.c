// SPDX-License-Identifier: MIT
/*
 * libpersistlog: finding, opening and closing regions.
 *
 * The rules are persistlog/region.py's and persistlog/ring.py's open(), for
 * the cases a writer may handle on its own: a valid version 2 region is
 * attached and this boot registered; a missing one is created and
 * formatted on request; anything else is refused with an errno-style code,
 * because recovering or converting a region rewrites it, which the Python
 * tools do only after keeping a copy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_SIZE	(8u << 20)	/* a new file region, bytes (region.py) */
#define DEVICE_DEFAULT	"/dev/persistlog0"
#define ROOT_DEFAULT	"/var/lib/persistlog/ring"
#define BOOT_ID_PATH	"/proc/sys/kernel/random/boot_id"
#define BOOT_SPIN_NS	200000000u	/* ring.py's BOOT_SPIN_NS */

/* default_region_path() - the region the persistlog command uses by default. */
int pl_default_region_path(char *buf, size_t cap)
{
	const char *env = secure_getenv("PERSISTLOG_REGION");
	const char *state, *home;
	int n;

	if (env && *env)
		n = snprintf(buf, cap, "%s", env);
	else if (access(DEVICE_DEFAULT, F_OK) == 0)
		n = snprintf(buf, cap, "%s", DEVICE_DEFAULT);
	else if (geteuid() == 0)
		n = snprintf(buf, cap, "%s", ROOT_DEFAULT);
	else if ((state = secure_getenv("XDG_STATE_HOME")) && *state)
		n = snprintf(buf, cap, "%s/persistlog/ring", state);
	else if ((home = secure_getenv("HOME")) && *home)
		n = snprintf(buf, cap, "%s/.local/state/persistlog/ring", home);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A UUID with or without dashes, in any case (boot.py's parse_boot_id). */
static int parse_boot_id(const char *s, uint8_t id[16])
{
	int i = 0, hi, lo;

	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	while (i < 16) {
		if (*s == '-')
			s++;
		hi = hexval(s[0]);
		lo = hi < 0 ? -1 : hexval(s[1]);
		if (lo < 0)
			return -EINVAL;
		id[i++] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	return *s ? -EINVAL : 0;
}

/* This boot's ID: $PERSISTLOG_BOOT_ID wins, else the kernel's (boot.py). */
static int current_boot_id(uint8_t id[16])
{
	const char *env = secure_getenv("PERSISTLOG_BOOT_ID");
	char text[64];
	ssize_t n;
	int fd;

	if (env && *env)
		return parse_boot_id(env, id);
	fd = open(BOOT_ID_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	text[n] = '\0';
	return parse_boot_id(text, id);
}

/* "/dev/mem:ADDR:SIZE": ADDR page aligned, SIZE with a K/M/G/T suffix (region.py). */
static int parse_devmem(const char *name, off_t *offset, uint64_t *size)
{
	const char *p = name + strlen("/dev/mem:");
	unsigned long long addr, n;
	char *end;

	errno = 0;
	addr = strtoull(p, &end, 0);
	if (errno || end == p || *end != ':')
		return -EINVAL;
	p = end + 1;
	n = strtoull(p, &end, 0);
	if (errno || end == p)
		return -EINVAL;
	switch (*end | 0x20) {
	case 't': n <<= 10; /* fall through */
	case 'g': n <<= 10; /* fall through */
	case 'm': n <<= 10; /* fall through */
	case 'k': n <<= 10; end++; break;
	default: break;
	}
	if ((*end | 0x20) == 'i')
		end++;
	if ((*end | 0x20) == 'b')
		end++;
	if (*end || !n || addr % (unsigned long long)sysconf(_SC_PAGESIZE))
		return -EINVAL;
	*offset = (off_t)addr;
	*size = n;
	return 0;
}

static int mkdir_parents(const char *path)
{
	char dir[4096];
	char *p;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0750) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Bytes in a device: lseek(SEEK_END), else sysfs's size (region.py's _device_size). */
static uint64_t device_size(int fd, const struct stat *st)
{
	char path[96], text[32];
	off_t end = lseek(fd, 0, SEEK_END);
	ssize_t n;
	int sfd;

	if (end > 0)
		return (uint64_t)end;
	if (!S_ISCHR(st->st_mode))
		return 0;
	snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/size",
		 major(st->st_rdev), minor(st->st_rdev));
	sfd = open(path, O_RDONLY | O_CLOEXEC);
	if (sfd < 0)
		return 0;
	n = read(sfd, text, sizeof(text) - 1);
	close(sfd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	return strtoull(text, NULL, 10);
}

static uint64_t realtime_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int plr_errno(int rc)
{
	switch (rc) {
	case PLR_ETOOBIG:	return -E2BIG;
	case PLR_ESMALL:	return -ENOSPC;
	case PLR_EINVAL:	return -EINVAL;
	case PLR_ENOMEM:	return -ENOMEM;
	case PLR_EVERSION:	return -EPROTONOSUPPORT;
	case PLR_EBADHDR:	return -EBADMSG;
	case PLR_EBUSY:		return -EBUSY;
	case PLR_EOLD:		return -EROFS;
	default:		return -EIO;
	}
}

int pl_errno(int rc)
{
	return plr_errno(rc);
}

/*
 * Check, format if asked and missing, attach and register, under the lock
 * (ring.py's _open_locked(), writable case, without the rewriting cases).
 */
static int attach_locked(struct persistlog_ring *ring, int flags, const uint8_t *boot_id)
{
	struct plr_geom geom;
	struct plr_scan scan;
	int reason, rc;

	rc = plr_check(ring->base, ring->map_size, &reason, &geom);
	if (rc < 0)
		return plr_errno(rc);
	switch (rc) {
	case PLR_VALID:
		if (geom.version != PLR_VERSION)
			return -EROFS;
		break;
	case PLR_NEWER:
		return -EPROTONOSUPPORT;
	case PLR_INVALID:
		return -EBADMSG;
	case PLR_FOREIGN:
		return -EMEDIUMTYPE;
	case PLR_MISSING:
		if (!(flags & PERSISTLOG_OPEN_CREATE))
			return -ENOENT;
		/* a zeroed header page over records: recovering them is the tools' job */
		rc = plr_scan_region(ring->base, ring->map_size, 0, &scan);
		if (rc < 0)
			return plr_errno(rc);
		rc = scan.n_entries ? -EBADMSG : 0;
		plr_scan_free(&scan);
		if (rc < 0)
			return rc;
		rc = plr_format(ring->base, ring->map_size, 1, realtime_now());
		if (rc < 0)
			return plr_errno(rc);
		break;
	default:
		return -EIO;
	}
	rc = plr_attach(&ring->r, ring->base, ring->map_size, boot_id);
	if (rc < 0)
		return plr_errno(rc);
	if (!ring->is_file)
		ring->r.flags |= PLR_RING_WC;	/* _ring.c, [F1] */
	plr_boot_register(&ring->r, realtime_now(), BOOT_SPIN_NS);
	return 0;
}

_public_ int persistlog_open(const char *path, int flags, persistlog_ring **ret)
{
	char defpath[4096];
	struct persistlog_ring *ring;
	uint8_t boot_id[16];
	uint64_t size = 0;
	off_t offset = 0;
	struct stat st;
	bool devmem;
	void *base;
	int fd, rc;

	if (!ret || (flags & ~PERSISTLOG_OPEN_CREATE))
		return -EINVAL;
	if (!path) {
		rc = pl_default_region_path(defpath, sizeof(defpath));
		if (rc < 0)
			return rc;
		path = defpath;
	}
	rc = current_boot_id(boot_id);
	if (rc < 0)
		return rc;
	devmem = strncmp(path, "/dev/mem:", 9) == 0;
	if (devmem) {
		rc = parse_devmem(path, &offset, &size);
		if (rc < 0)
			return rc;
		fd = open("/dev/mem", O_RDWR | O_CLOEXEC | O_SYNC);
	} else {
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && (flags & PERSISTLOG_OPEN_CREATE)) {
			rc = mkdir_parents(path);
			if (rc < 0)
				return rc;
			fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
		}
	}
	if (fd < 0)
		return -errno;
	ring = calloc(1, sizeof(*ring));
	if (!ring) {
		close(fd);
		return -ENOMEM;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	ring->is_file = S_ISREG(st.st_mode);
	ring->is_block = S_ISBLK(st.st_mode);
	if (ring->is_file) {
		size = (uint64_t)st.st_size;
		if (!size) {
			rc = -ENOENT;
			if (!(flags & PERSISTLOG_OPEN_CREATE))
				goto fail;
			size = DEFAULT_SIZE;
			if (ftruncate(fd, (off_t)size) < 0) {
				rc = -errno;
				goto fail;
			}
		}
	} else if (!devmem) {
		rc = -EINVAL;	/* neither a file nor a device, or a device of unknown size */
		if (!S_ISCHR(st.st_mode) && !ring->is_block)
			goto fail;
		size = device_size(fd, &st);
		if (!size)
			goto fail;
	}
	size -= size % (uint64_t)sysconf(_SC_PAGESIZE);
	rc = -ENOSPC;
	if (!size)
		goto fail;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	ring->base = base;
	ring->map_size = size;
	if (flock(fd, LOCK_EX) < 0) {
		rc = -errno;
		goto fail_unmap;
	}
	rc = attach_locked(ring, flags, boot_id);
	if (rc == 0 && ring->is_block)
		msync(ring->base, ring->map_size, MS_SYNC);
	flock(fd, LOCK_UN);
	if (rc < 0)
		goto fail_unmap;
	close(fd);
	*ret = ring;
	return 0;

fail_unmap:
	munmap(ring->base, ring->map_size);
fail:
	close(fd);
	free(ring);
	return rc;
}

_public_ void persistlog_close(persistlog_ring *ring)
{
	if (!ring || ring == pl_default_ring_peek())
		return;
	plr_detach(&ring->r);
	munmap(ring->base, ring->map_size);
	free(ring);
}
