// SPDX-License-Identifier: GPL-2.0
/*
 * persistlog policy: where regions come from, the default mapping type,
 * and flushing write-back regions when the machine goes down.
 *
 * Region sources
 *   regions=SIZE@ADDR[,SIZE@ADDR...]  ranges the kernel command line kept
 *                                     out of System RAM (memmap=SIZE$ADDR)
 *   mem_name=NAME                     a reserve_mem=SIZE:ALIGN:NAME range
 *                                     (Linux 6.12+, compiled out before)
 *   compatible = "persistlog,region"  a device-tree node whose
 *                                     memory-region is a no-map
 *                                     reserved-memory child
 *
 * Module parameters are parsed once at load; any bad parameter or refused
 * range fails the load as a whole, so a typo never leaves the machine
 * logging to fewer regions than the administrator asked for.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mm.h>
#include <linux/notifier.h>
#include <linux/of.h>
#include <linux/of_reserved_mem.h>
#include <linux/panic_notifier.h>
#include <linux/platform_device.h>
#include <linux/rculist.h>
#include <linux/reboot.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "persistlog.h"

static char *regions;
module_param(regions, charp, 0444);
MODULE_PARM_DESC(regions,
		 "reserved ranges, SIZE@ADDR[,SIZE@ADDR...], e.g. 1M@0x30000000");

/*
 * Write-combine by default, as ramoops does: stores bypass the cache, so a
 * reset through the firmware (which may not write dirty lines back) loses
 * at most what still sits in a write-combining buffer, while a write-back
 * mapping can lose every line dirtied since the last flush when the reset
 * comes without a panic or reboot notifier running (sysrq-b, watchdog,
 * power button).  Write-back is much faster and is flushed on fsync/msync,
 * panic and reboot: choose it where those are the resets that matter.
 */
static unsigned int mem_type = PL_MEM_WC;
module_param(mem_type, uint, 0444);
MODULE_PARM_DESC(mem_type,
		 "mapping type: 0=write-combine (default), 1=uncached, 2=write-back");

static char *mem_name;
module_param(mem_name, charp, 0444);
MODULE_PARM_DESC(mem_name,
		 "name of a reserve_mem=SIZE:ALIGN:NAME range (Linux 6.12+), always write-back");

/* Regions created from module parameters; DT regions belong to devices. */
static struct pl_region *pl_param_regions[PL_MAX_REGIONS];
static unsigned int pl_nr_param_regions;

LIST_HEAD(pl_regions);
static DEFINE_MUTEX(pl_regions_lock);

static void pl_publish(struct pl_region *r)
{
	mutex_lock(&pl_regions_lock);
	list_add_tail_rcu(&r->node, &pl_regions);
	mutex_unlock(&pl_regions_lock);
}

static void pl_unpublish_destroy(struct pl_region *r)
{
	mutex_lock(&pl_regions_lock);
	list_del_rcu(&r->node);
	mutex_unlock(&pl_regions_lock);
	synchronize_rcu();
	pl_region_destroy(r);
}

/*
 * One line per region with dirty lines, so a console log shows that the
 * write-back happened; at panic time it goes out with the panic's level.
 */
static void pl_flush_all(bool atomic_ctx, const char *why)
{
	struct pl_region *r;
	resource_size_t n;

	rcu_read_lock();
	list_for_each_entry_rcu(r, &pl_regions, node) {
		n = pl_region_flush(r, atomic_ctx);
		if (!n)
			continue;
		if (atomic_ctx)
			pr_emerg("%s: %s: wrote back %llu bytes of cache lines\n",
				 r->name, why, (u64)n);
		else
			pr_notice("%s: %s: wrote back %llu bytes of cache lines\n",
				  r->name, why, (u64)n);
	}
	rcu_read_unlock();
}

static int pl_panic_notify(struct notifier_block *nb, unsigned long ev,
			   void *unused)
{
	pl_flush_all(true, "panic");
	return NOTIFY_DONE;
}

static struct notifier_block pl_panic_nb = {
	.notifier_call = pl_panic_notify,
	/* Run late, after notifiers that may still write to memory. */
	.priority = INT_MIN,
};

/* Restart, halt and power-off all pass here (kernel_restart_prepare() etc.). */
static int pl_reboot_notify(struct notifier_block *nb, unsigned long ev,
			    void *unused)
{
	pl_flush_all(false, ev == SYS_RESTART ? "restart" :
			    ev == SYS_POWER_OFF ? "power-off" : "halt");
	return NOTIFY_DONE;
}

static struct notifier_block pl_reboot_nb = {
	.notifier_call = pl_reboot_notify,
	.priority = INT_MIN,
};

/* ---- module parameters ---- */

static int pl_add_param_region(phys_addr_t base, resource_size_t size,
			       enum pl_source src)
{
	struct pl_region *r;

	if (pl_nr_param_regions == PL_MAX_REGIONS) {
		pr_err("more than %d regions requested\n", PL_MAX_REGIONS);
		return -E2BIG;
	}
	r = pl_region_create(base, size, mem_type, src, NULL);
	if (IS_ERR(r))
		return PTR_ERR(r);
	pl_param_regions[pl_nr_param_regions++] = r;
	pl_publish(r);
	return 0;
}

/* One "SIZE@ADDR" item: SIZE takes K/M/G suffixes, ADDR is a number. */
static int pl_parse_region(char *item)
{
	char *at, *end;
	unsigned long long size, base;

	at = strchr(item, '@');
	if (!at || at == item || !at[1]) {
		pr_err("regions: \"%s\" is not SIZE@ADDR (e.g. 1M@0x30000000)\n",
		       item);
		return -EINVAL;
	}
	*at = '\0';
	size = memparse(item, &end);
	if (*end) {
		pr_err("regions: bad size \"%s\"\n", item);
		return -EINVAL;
	}
	if (kstrtoull(at + 1, 0, &base)) {
		pr_err("regions: bad address \"%s\"\n", at + 1);
		return -EINVAL;
	}
	if (base != (phys_addr_t)base || size != (resource_size_t)size) {
		pr_err("regions: %s@%s does not fit this machine's physical addresses\n",
		       item, at + 1);
		return -EINVAL;
	}
	return pl_add_param_region(base, size, PL_SRC_PARAM);
}

static int pl_parse_regions(void)
{
	char *buf, *cur, *item;
	int ret = 0;

	buf = kstrdup(regions, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	cur = buf;
	while ((item = strsep(&cur, ",")) != NULL) {
		item = strim(item);
		if (!*item) {
			pr_err("regions: empty item in \"%s\"\n", regions);
			ret = -EINVAL;
			break;
		}
		ret = pl_parse_region(item);
		if (ret)
			break;
	}
	kfree(buf);
	return ret;
}

static int pl_add_reserve_mem(void)
{
#ifdef PL_HAVE_RESERVE_MEM
	phys_addr_t start, size;

	if (!reserve_mem_find_by_name(mem_name, &start, &size)) {
		pr_err("mem_name=%s: no reserve_mem= range of that name on the kernel command line\n",
		       mem_name);
		return -ENOENT;
	}
	return pl_add_param_region(start, size, PL_SRC_RESERVE_MEM);
#else
	pr_err("mem_name=%s: this kernel has no reserve_mem= (Linux 6.12+); use memmap= and regions=\n",
	       mem_name);
	return -EOPNOTSUPP;
#endif
}

static void pl_remove_param_regions(void)
{
	while (pl_nr_param_regions)
		pl_unpublish_destroy(pl_param_regions[--pl_nr_param_regions]);
}

/* ---- device tree ---- */

static void pl_dt_release(void *data)
{
	pl_unpublish_destroy(data);
}

static int pl_dt_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct device_node *mem_np;
	struct reserved_mem *rmem;
	struct pl_region *r;
	bool no_map;

	mem_np = of_parse_phandle(dev->of_node, "memory-region", 0);
	if (!mem_np) {
		dev_err(dev, "no memory-region phandle\n");
		return -EINVAL;
	}
	no_map = of_property_read_bool(mem_np, "no-map");
	rmem = of_reserved_mem_lookup(mem_np);
	of_node_put(mem_np);
	if (!rmem) {
		dev_err(dev, "memory-region is not a reserved-memory child\n");
		return -EINVAL;
	}
	if (!no_map) {
		dev_err(dev, "reserved-memory %s lacks no-map: the kernel maps it as ordinary cached RAM\n",
			rmem->name);
		return -EINVAL;
	}

	r = pl_region_create(rmem->base, rmem->size, mem_type, PL_SRC_DT, dev);
	if (IS_ERR(r))
		return PTR_ERR(r);
	pl_publish(r);
	return devm_add_action_or_reset(dev, pl_dt_release, r);
}

static const struct of_device_id pl_of_match[] = {
	{ .compatible = "persistlog,region" },
	{ }
};
MODULE_DEVICE_TABLE(of, pl_of_match);

static struct platform_driver pl_platform_driver = {
	.probe = pl_dt_probe,
	.driver = {
		.name = PL_NAME,
		.of_match_table = pl_of_match,
	},
};

/* ---- module ---- */

static int __init pl_init(void)
{
	int ret;

	if (mem_type >= PL_MEM_NR) {
		pr_err("mem_type=%u is not 0 (write-combine), 1 (uncached) or 2 (write-back)\n",
		       mem_type);
		return -EINVAL;
	}

	ret = atomic_notifier_chain_register(&panic_notifier_list, &pl_panic_nb);
	if (ret)
		return ret;
	ret = register_reboot_notifier(&pl_reboot_nb);
	if (ret)
		goto err_panic;

	if (regions) {
		ret = pl_parse_regions();
		if (ret)
			goto err_regions;
	}
	if (mem_name) {
		ret = pl_add_reserve_mem();
		if (ret)
			goto err_regions;
	}

	ret = platform_driver_register(&pl_platform_driver);
	if (ret)
		goto err_regions;

	if (!pl_nr_param_regions && !IS_ENABLED(CONFIG_OF))
		pr_info("no regions= or mem_name= given: no devices\n");
	return 0;

err_regions:
	pl_remove_param_regions();
	unregister_reboot_notifier(&pl_reboot_nb);
err_panic:
	atomic_notifier_chain_unregister(&panic_notifier_list, &pl_panic_nb);
	return ret;
}

static void __exit pl_exit(void)
{
	platform_driver_unregister(&pl_platform_driver);
	pl_remove_param_regions();
	unregister_reboot_notifier(&pl_reboot_nb);
	atomic_notifier_chain_unregister(&panic_notifier_list, &pl_panic_nb);
}

module_init(pl_init);
module_exit(pl_exit);

MODULE_DESCRIPTION("persistlog: log regions in RAM that survives a warm reset");
MODULE_AUTHOR("persistlog developers");
MODULE_LICENSE("GPL");
