/* SPDX-License-Identifier: GPL-2.0 */
/*
 * persistlog: character devices over RAM that the firmware does not clear
 * on a warm reset.
 *
 * pl_region.c holds the mechanism: claiming a physical range, mapping it,
 * keeping its cache lines clean, and the misc device through which user
 * space reads, writes and maps it.  pl_main.c holds the policy: where the
 * ranges come from (module parameters, reserve_mem=, the device tree), the
 * default mapping type, and the panic and reboot notifiers.
 */
#ifndef PERSISTLOG_H
#define PERSISTLOG_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/spinlock.h>
#include <linux/types.h>

#define PL_NAME		"persistlog"
#define PL_MAX_REGIONS	16

/*
 * Numbered as ramoops numbers its mem_type parameter, so that one habit
 * serves both.
 */
enum pl_mem_type {
	PL_MEM_WC = 0,	/* write-combine: no dirty cache lines to lose */
	PL_MEM_UC = 1,	/* uncached: every access goes to memory */
	PL_MEM_WB = 2,	/* write-back: fast, flushed on fsync/panic/reboot */
	PL_MEM_NR
};

enum pl_source {
	PL_SRC_PARAM,		/* regions= on the module command line */
	PL_SRC_RESERVE_MEM,	/* mem_name= naming a reserve_mem= range */
	PL_SRC_DT,		/* a "persistlog,region" device-tree node */
};

struct pl_region {
	struct kref ref;		/* open files and the owner */
	struct list_head node;		/* on pl_regions, RCU for notifiers */
	struct miscdevice misc;
	char name[24];
	int id;

	phys_addr_t base;
	resource_size_t size;
	enum pl_mem_type mem_type;
	enum pl_source source;

	struct resource *res;		/* NULL for reserve_mem: see create */
	void *vaddr;			/* memremap()ed; NULL for PL_MEM_UC */
	void __iomem *iomem;		/* ioremap()ed; only for PL_MEM_UC */

	/*
	 * Write-back only: which bytes may have dirty cache lines.
	 * [dirty_lo, dirty_hi) collects write() ranges and the ranges of
	 * writable mappings that have been closed since the last flush;
	 * [map_lo, map_hi) covers every live writable mapping, which can
	 * dirty lines at any time and so is flushed on every flush.
	 */
	raw_spinlock_t dirty_lock;
	resource_size_t dirty_lo, dirty_hi;
	resource_size_t map_lo, map_hi;
	unsigned int live_wmaps;
};

extern struct list_head pl_regions;

const char *pl_mem_type_name(enum pl_mem_type type);
struct pl_region *pl_region_create(phys_addr_t base, resource_size_t size,
				   enum pl_mem_type type, enum pl_source src,
				   struct device *parent);
void pl_region_destroy(struct pl_region *r);
resource_size_t pl_region_flush(struct pl_region *r, bool atomic_ctx);

#endif /* PERSISTLOG_H */
