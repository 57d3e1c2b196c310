/* SPDX-License-Identifier: MIT */
/*
 * libpersistlog's private declarations.  The ring itself is the C core the
 * Python module is built from (persistlog/_ring.c), compiled into the
 * library; only persistlog_* is exported (libpersistlog.sym).
 */
#ifndef PERSISTLOG_INTERNAL_H
#define PERSISTLOG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persistlog.h"
#include "_ring.h"

#define _public_ __attribute__((visibility("default")))

struct persistlog_ring {
	struct plr_ring r;	/* the core's view: first, so it is the handle's address */
	uint8_t *base;		/* the mapping */
	uint64_t map_size;	/* bytes mapped */
	bool is_file;		/* a regular file (else a device: commits fenced) */
	bool is_block;		/* a block device: msync after each append */
};

int pl_default_region_path(char *buf, size_t cap);
int pl_errno(int plr_rc);
struct persistlog_ring *pl_default_ring_peek(void);
int pl_default_ring(struct persistlog_ring **ret);

#endif /* PERSISTLOG_INTERNAL_H */
