// SPDX-License-Identifier: GPL-2.0
/*
 * persistlog region mechanism: claim a physical range, map it, keep its
 * cache lines clean, and expose it as /dev/persistlogN.
 *
 * Life of a region
 * ----------------
 * pl_region_create() validates the range, claims it with
 * request_mem_region(), maps it and registers the misc device; the region
 * then holds one reference for its owner (the module or a platform
 * device).  Every open file takes another, and a mapping keeps its file
 * open, so a region outlives its device node until the last mapping is
 * gone.  pl_region_destroy() unlinks the region from the flush list,
 * deregisters the device (misc_open() and misc_deregister() serialise on
 * misc_mtx, so no open can start afterwards) and drops the owner's
 * reference; the last put flushes, unmaps and releases the range.
 *
 * What makes a range acceptable
 * -----------------------------
 * Non-zero, page aligned at both ends (mmap works in pages and a partial
 * page would expose the neighbour), no wrap-around, no overlap with System
 * RAM unless the range came from reserve_mem= (which is carved out of
 * System RAM by memblock and never handed to the page allocator), and not
 * claimed by any other driver.  Each refusal says which rule failed.
 *
 * Mapping types
 * -------------
 * Kernel and user mappings of a range always use the same cache attribute:
 * x86 PAT refuses conflicting attributes for one range, and on arm64 such
 * aliases are architecturally undefined.  Uncached uses ioremap(), which
 * gives an __iomem pointer that is only touched with memcpy_{to,from}io();
 * write-combine and write-back use memremap().
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/libnvdimm.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "persistlog.h"

static DEFINE_IDA(pl_ida);

static const char *const pl_mem_type_names[PL_MEM_NR] = {
	[PL_MEM_WC] = "write-combine",
	[PL_MEM_UC] = "uncached",
	[PL_MEM_WB] = "write-back",
};

static const char *const pl_source_names[] = {
	[PL_SRC_PARAM] = "param",
	[PL_SRC_RESERVE_MEM] = "reserve_mem",
	[PL_SRC_DT] = "devicetree",
};

const char *pl_mem_type_name(enum pl_mem_type type)
{
	return type < PL_MEM_NR ? pl_mem_type_names[type] : "invalid";
}

/* ---- cache maintenance (write-back only) ---- */

static void pl_dirty_add(struct pl_region *r, resource_size_t lo,
			 resource_size_t hi)
{
	unsigned long flags;

	if (r->mem_type != PL_MEM_WB || lo >= hi)
		return;
	raw_spin_lock_irqsave(&r->dirty_lock, flags);
	if (r->dirty_lo >= r->dirty_hi) {
		r->dirty_lo = lo;
		r->dirty_hi = hi;
	} else {
		r->dirty_lo = min(r->dirty_lo, lo);
		r->dirty_hi = max(r->dirty_hi, hi);
	}
	raw_spin_unlock_irqrestore(&r->dirty_lock, flags);
}

static void pl_wb_range(struct pl_region *r, resource_size_t lo,
			resource_size_t hi)
{
	if (lo < hi)
		arch_wb_cache_pmem(r->vaddr + lo, hi - lo);
}

/* Make the region's earlier stores and cache write-backs complete. */
static void pl_drain(void)
{
	/*
	 * SFENCE on x86: drains the write-combining buffers and orders
	 * CLWB/CLFLUSHOPT; DSB ST on arm64: waits for the DC CVAP cleans.
	 * Pairs with no reader: the other side is the memory controller,
	 * and then the firmware's reset.
	 */
	wmb();
}

/*
 * Write dirty lines of the region back to memory; returns how many bytes
 * were written back (0 for types without dirty lines).  In atomic
 * context (the panic notifier) other CPUs may have been stopped while
 * holding dirty_lock, so there we only try the lock and write back the
 * whole region if it is taken.
 *
 * For write-combine and uncached there are no dirty lines; the barrier
 * drains this CPU's write-combining buffers.
 */
resource_size_t pl_region_flush(struct pl_region *r, bool atomic_ctx)
{
	resource_size_t lo, hi, mlo = 0, mhi = 0;
	unsigned long flags;

	if (r->mem_type != PL_MEM_WB) {
		pl_drain();
		return 0;
	}

	if (atomic_ctx) {
		local_irq_save(flags);
		if (!raw_spin_trylock(&r->dirty_lock)) {
			pl_wb_range(r, 0, r->size);
			local_irq_restore(flags);
			pl_drain();
			return r->size;
		}
	} else {
		raw_spin_lock_irqsave(&r->dirty_lock, flags);
	}
	lo = r->dirty_lo;
	hi = r->dirty_hi;
	r->dirty_lo = 0;
	r->dirty_hi = 0;
	if (r->live_wmaps) {
		mlo = r->map_lo;
		mhi = r->map_hi;
	}
	raw_spin_unlock_irqrestore(&r->dirty_lock, flags);

	/*
	 * Writing back outside the lock is safe: a write that lands after
	 * we took the range re-adds itself, and a line written back twice
	 * costs only time.
	 */
	pl_wb_range(r, lo, hi);
	pl_wb_range(r, mlo, mhi);
	pl_drain();
	return (hi - lo) + (mhi - mlo);
}

/* ---- region lifetime ---- */

static void pl_region_release(struct kref *ref)
{
	struct pl_region *r = container_of(ref, struct pl_region, ref);

	pl_region_flush(r, false);
	if (r->iomem)
		iounmap(r->iomem);
	if (r->vaddr)
		memunmap(r->vaddr);
	if (r->res)
		release_mem_region(r->base, r->size);
	ida_free(&pl_ida, r->id);
	kfree(r);
}

static void pl_region_put(struct pl_region *r)
{
	kref_put(&r->ref, pl_region_release);
}

/* Copy between the region and a kernel buffer, whatever the mapping. */
static void pl_copy_out(struct pl_region *r, void *dst, loff_t off, size_t n)
{
	if (r->iomem)
		memcpy_fromio(dst, r->iomem + off, n);
	else
		memcpy(dst, r->vaddr + off, n);
}

static void pl_copy_in(struct pl_region *r, loff_t off, const void *src,
		       size_t n)
{
	if (r->iomem)
		memcpy_toio(r->iomem + off, src, n);
	else
		memcpy(r->vaddr + off, src, n);
}

/* ---- file operations ---- */

static int pl_open(struct inode *inode, struct file *file)
{
	/* misc_open() left our miscdevice in private_data. */
	struct pl_region *r = container_of(file->private_data,
					   struct pl_region, misc);

	kref_get(&r->ref);
	file->private_data = r;
	return 0;
}

static int pl_release(struct inode *inode, struct file *file)
{
	pl_region_put(file->private_data);
	return 0;
}

static loff_t pl_llseek(struct file *file, loff_t offset, int whence)
{
	struct pl_region *r = file->private_data;

	/* SEEK_END gives the region size: that is how user space sizes us. */
	return fixed_size_llseek(file, offset, whence, r->size);
}

/*
 * read() and write() go through a bounce page rather than copying
 * straight between user memory and the region: uncached regions are
 * __iomem and must be copied with the io accessors, and one path for all
 * types keeps the bounds logic in one place.
 */
static ssize_t pl_read(struct file *file, char __user *buf, size_t count,
		       loff_t *ppos)
{
	struct pl_region *r = file->private_data;
	loff_t pos = *ppos;
	size_t done = 0;
	void *bounce;

	if (pos < 0)
		return -EINVAL;
	if (pos >= r->size)
		return 0;
	count = min_t(u64, count, r->size - pos);

	bounce = (void *)__get_free_page(GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;
	while (done < count) {
		size_t n = min_t(size_t, count - done, PAGE_SIZE);

		pl_copy_out(r, bounce, pos + done, n);
		if (copy_to_user(buf + done, bounce, n))
			break;
		done += n;
		if (fatal_signal_pending(current))
			break;
		cond_resched();
	}
	free_page((unsigned long)bounce);
	if (!done && count)
		return -EFAULT;
	*ppos = pos + done;
	return done;
}

static ssize_t pl_write(struct file *file, const char __user *buf,
			size_t count, loff_t *ppos)
{
	struct pl_region *r = file->private_data;
	loff_t pos = *ppos;
	size_t done = 0;
	void *bounce;

	if (pos < 0)
		return -EINVAL;
	if (!count)
		return 0;
	if (pos >= r->size)
		return -ENOSPC;
	count = min_t(u64, count, r->size - pos);

	bounce = (void *)__get_free_page(GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;
	while (done < count) {
		size_t n = min_t(size_t, count - done, PAGE_SIZE);

		if (copy_from_user(bounce, buf + done, n))
			break;
		pl_copy_in(r, pos + done, bounce, n);
		done += n;
		if (fatal_signal_pending(current))
			break;
		cond_resched();
	}
	free_page((unsigned long)bounce);
	pl_dirty_add(r, pos, pos + done);
	if (!done)
		return -EFAULT;
	*ppos = pos + done;
	return done;
}

/*
 * msync(MS_SYNC) and fsync() end here.  Without an fsync method msync()
 * on the mapping fails with EINVAL; with it, a write-back region's dirty
 * lines in the synced range reach memory before the call returns.
 */
static int pl_fsync(struct file *file, loff_t start, loff_t end, int datasync)
{
	struct pl_region *r = file->private_data;

	if (r->mem_type == PL_MEM_WB && start < r->size && start <= end) {
		loff_t last = min_t(u64, end, r->size - 1);

		pl_wb_range(r, round_down(start, L1_CACHE_BYTES), last + 1);
	}
	pl_drain();
	return 0;
}

static resource_size_t pl_vma_off(struct vm_area_struct *vma)
{
	return (resource_size_t)vma->vm_pgoff << PAGE_SHIFT;
}

static void pl_vm_open(struct vm_area_struct *vma)
{
	struct pl_region *r = vma->vm_private_data;
	unsigned long flags;

	if (r->mem_type != PL_MEM_WB || !(vma->vm_flags & VM_MAYWRITE))
		return;
	raw_spin_lock_irqsave(&r->dirty_lock, flags);
	if (!r->live_wmaps++) {
		r->map_lo = pl_vma_off(vma);
		r->map_hi = pl_vma_off(vma) + (vma->vm_end - vma->vm_start);
	} else {
		r->map_lo = min(r->map_lo, pl_vma_off(vma));
		r->map_hi = max(r->map_hi, pl_vma_off(vma) +
				(vma->vm_end - vma->vm_start));
	}
	raw_spin_unlock_irqrestore(&r->dirty_lock, flags);
}

static void pl_vm_close(struct vm_area_struct *vma)
{
	struct pl_region *r = vma->vm_private_data;
	resource_size_t off = pl_vma_off(vma);
	unsigned long flags;

	if (r->mem_type != PL_MEM_WB || !(vma->vm_flags & VM_MAYWRITE))
		return;
	/* Lines it dirtied stay dirty after the unmap: keep them listed. */
	pl_dirty_add(r, off, off + (vma->vm_end - vma->vm_start));
	raw_spin_lock_irqsave(&r->dirty_lock, flags);
	if (!WARN_ON_ONCE(!r->live_wmaps) && !--r->live_wmaps) {
		r->map_lo = 0;
		r->map_hi = 0;
	}
	raw_spin_unlock_irqrestore(&r->dirty_lock, flags);
}

static const struct vm_operations_struct pl_vm_ops = {
	.open = pl_vm_open,
	.close = pl_vm_close,
};

static pgprot_t pl_pgprot(struct pl_region *r, pgprot_t prot)
{
	switch (r->mem_type) {
	case PL_MEM_WC:
		return pgprot_writecombine(prot);
	case PL_MEM_UC:
		return pgprot_noncached(prot);
	default:
		return prot;
	}
}

static int pl_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct pl_region *r = file->private_data;
	unsigned long region_pages = r->size >> PAGE_SHIFT;
	unsigned long pages = vma_pages(vma);
	int ret;

	/*
	 * A private copy-on-write map would silently keep writes in RAM
	 * that is not the region.  VM_MAYSHARE, not VM_SHARED: the kernel
	 * clears VM_SHARED on shared maps of read-only files.
	 */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	/* Compare in pages: vm_pgoff << PAGE_SHIFT can overflow. */
	if (vma->vm_pgoff >= region_pages ||
	    pages > region_pages - vma->vm_pgoff)
		return -EINVAL;

#ifdef PL_HAVE_VM_FLAGS_CLEAR
	vm_flags_clear(vma, VM_MAYEXEC);
#else
	vma->vm_flags &= ~VM_MAYEXEC;
#endif
	vma->vm_page_prot = pl_pgprot(r, vma->vm_page_prot);

	/* Sets VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP. */
	ret = remap_pfn_range(vma, vma->vm_start,
			      PHYS_PFN(r->base) + vma->vm_pgoff,
			      vma->vm_end - vma->vm_start, vma->vm_page_prot);
	if (ret)
		return ret;
	/* Only now: a failed mmap must not reach pl_vm_close. */
	vma->vm_private_data = r;
	vma->vm_ops = &pl_vm_ops;
	pl_vm_open(vma);
	return 0;
}

static const struct file_operations pl_fops = {
	.owner = THIS_MODULE,
	.open = pl_open,
	.release = pl_release,
	.llseek = pl_llseek,
	.read = pl_read,
	.write = pl_write,
	.fsync = pl_fsync,
	.mmap = pl_mmap,
};

/* ---- sysfs: /sys/class/misc/persistlogN/{base,size,mem_type,source} ---- */

static struct pl_region *pl_dev_region(struct device *dev)
{
	struct miscdevice *misc = dev_get_drvdata(dev);

	return container_of(misc, struct pl_region, misc);
}

static ssize_t base_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%pa\n", &pl_dev_region(dev)->base);
}
static DEVICE_ATTR_RO(base);

static ssize_t size_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%llu\n", (u64)pl_dev_region(dev)->size);
}
static DEVICE_ATTR_RO(size);

static ssize_t mem_type_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%s\n",
			  pl_mem_type_name(pl_dev_region(dev)->mem_type));
}
static DEVICE_ATTR_RO(mem_type);

static ssize_t source_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "%s\n",
			  pl_source_names[pl_dev_region(dev)->source]);
}
static DEVICE_ATTR_RO(source);

static struct attribute *pl_attrs[] = {
	&dev_attr_base.attr,
	&dev_attr_size.attr,
	&dev_attr_mem_type.attr,
	&dev_attr_source.attr,
	NULL,
};
ATTRIBUTE_GROUPS(pl);

/* ---- create / destroy ---- */

static int pl_check_range(phys_addr_t base, resource_size_t size,
			  enum pl_mem_type type, enum pl_source src)
{
	phys_addr_t end;
	int hit;

	if (!size) {
		pr_err("region at %pa: size is zero\n", &base);
		return -EINVAL;
	}
	if (!PAGE_ALIGNED(base) || !PAGE_ALIGNED(size)) {
		pr_err("region %pa+%#llx: base and size must be multiples of %lu (the page size)\n",
		       &base, (u64)size, PAGE_SIZE);
		return -EINVAL;
	}
	if (check_add_overflow(base, (phys_addr_t)size - 1, &end)) {
		pr_err("region %pa+%#llx wraps around the physical address space\n",
		       &base, (u64)size);
		return -EINVAL;
	}
	if (type >= PL_MEM_NR) {
		pr_err("mem_type %u is not 0 (write-combine), 1 (uncached) or 2 (write-back)\n",
		       type);
		return -EINVAL;
	}
	if (type == PL_MEM_WB && !IS_ENABLED(CONFIG_ARCH_HAS_PMEM_API)) {
		pr_err("mem_type=2 (write-back) needs a cache write-back primitive this architecture lacks\n");
		return -EINVAL;
	}

	hit = region_intersects(base, size, IORESOURCE_SYSTEM_RAM,
				IORES_DESC_NONE);
	if (src == PL_SRC_RESERVE_MEM) {
		/*
		 * reserve_mem= ranges are System RAM kept from the page
		 * allocator and already mapped write-back in the linear
		 * map; a second mapping with another attribute would alias.
		 */
		if (hit != REGION_INTERSECTS) {
			pr_err("reserve_mem range %pa-%pa is not entirely System RAM\n",
			       &base, &end);
			return -EINVAL;
		}
		if (type != PL_MEM_WB) {
			pr_err("reserve_mem range %pa-%pa is in the kernel's write-back linear map; only mem_type=2 (write-back) is allowed\n",
			       &base, &end);
			return -EINVAL;
		}
	} else if (hit != REGION_DISJOINT) {
		pr_err("refusing %pa-%pa: it overlaps System RAM; reserve it first (memmap=%lluK$%pa, or a no-map reserved-memory node)\n",
		       &base, &end, (u64)size >> 10, &base);
		return -EINVAL;
	}
	return 0;
}

struct pl_region *pl_region_create(phys_addr_t base, resource_size_t size,
				   enum pl_mem_type type, enum pl_source src,
				   struct device *parent)
{
	struct pl_region *r;
	phys_addr_t end;
	int ret;

	ret = pl_check_range(base, size, type, src);
	if (ret)
		return ERR_PTR(ret);
	end = base + size - 1;

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return ERR_PTR(-ENOMEM);
	kref_init(&r->ref);
	INIT_LIST_HEAD(&r->node);
	raw_spin_lock_init(&r->dirty_lock);
	r->base = base;
	r->size = size;
	r->mem_type = type;
	r->source = src;

	r->id = ida_alloc(&pl_ida, GFP_KERNEL);
	if (r->id < 0) {
		ret = r->id;
		goto err_free;
	}
	snprintf(r->name, sizeof(r->name), PL_NAME "%d", r->id);

	/*
	 * A reserve_mem= range lies inside a busy "System RAM" resource, so
	 * it cannot be requested; like ramoops we rely on its name for
	 * ownership (and mem_name= takes one name).
	 */
	if (src != PL_SRC_RESERVE_MEM) {
		r->res = request_mem_region(base, size, r->name);
		if (!r->res) {
			pr_err("refusing %pa-%pa: already claimed by another driver (see /proc/iomem)\n",
			       &base, &end);
			ret = -EBUSY;
			goto err_ida;
		}
	}

	if (type == PL_MEM_UC) {
		r->iomem = ioremap(base, size);
		if (!r->iomem)
			goto err_map;
	} else {
		r->vaddr = memremap(base, size, type == PL_MEM_WB ?
				    MEMREMAP_WB : MEMREMAP_WC);
		if (!r->vaddr)
			goto err_map;
	}

	r->misc.minor = MISC_DYNAMIC_MINOR;
	r->misc.name = r->name;
	r->misc.fops = &pl_fops;
	r->misc.parent = parent;
	r->misc.groups = pl_groups;
	/* The udev rule widens this to 0660 root:persistlog. */
	r->misc.mode = 0600;
	ret = misc_register(&r->misc);
	if (ret) {
		pr_err("%s: misc_register failed: %d\n", r->name, ret);
		goto err_unmap;
	}

	pr_info("%s: %pa-%pa (%llu KiB, %s, from %s)\n", r->name, &base, &end,
		(u64)size >> 10, pl_mem_type_name(type), pl_source_names[src]);
	return r;

err_map:
	pr_err("%s: cannot map %pa-%pa as %s\n", r->name, &base, &end,
	       pl_mem_type_name(type));
	ret = -ENOMEM;
	goto err_release;
err_unmap:
	if (r->iomem)
		iounmap(r->iomem);
	if (r->vaddr)
		memunmap(r->vaddr);
err_release:
	if (r->res)
		release_mem_region(base, size);
err_ida:
	ida_free(&pl_ida, r->id);
err_free:
	kfree(r);
	return ERR_PTR(ret);
}

/* The caller has already taken the region off pl_regions and waited for
 * RCU readers (the notifiers) to leave it.
 */
void pl_region_destroy(struct pl_region *r)
{
	misc_deregister(&r->misc);
	pl_region_put(r);
}
