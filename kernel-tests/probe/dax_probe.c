// SPDX-License-Identifier: GPL-2.0
/*
 * dax_probe - a read-only window onto struct page state for the dax-harness.
 *
 * fsdax pages live in ZONE_DEVICE, which /proc/kpagecount and /proc/kpageflags
 * do not cover, so the harness cannot see their reference counts from user
 * space. This module reads them for one PFN (or counts leaked and underflowed
 * pages over a PFN range) without taking a page reference: it only reads
 * counters, holding a live dev_pagemap reference for ZONE_DEVICE PFNs so that
 * the memmap cannot be torn down while it is read.
 *
 * debugfs, /sys/kernel/debug/dax_probe/ (output format v1, one line per read):
 *   pfn      write a PFN ("4096" or "0x1000"); read:
 *            dax_probe v1 pfn=0x.. valid=1 refcount=N mapcount=N pincount=N
 *            flags=0x.. zone_device=0|1 pgmap_type=N mapping=0x.. index=N order=N
 *            or "dax_probe v1 pfn=0x.. valid=0" when there is no initialised
 *            struct page for the PFN.
 *   scan     write "<start_pfn> <nr_pages> <idle_refcount>"; read:
 *            dax_probe v1 scan start=0x.. nr=N valid=N above_idle=N first_above=0x..
 *            below_idle=N first_below=0x..
 *            (below_* came later: they follow the older fields, whose order
 *            is kept, so parsers of the older line still work)
 *   version  read: dax_probe v1
 * The state written to pfn and scan is global (one harness at a time), and the
 * values are re-read on every read from offset 0.
 *
 * What the fields mean:
 *   refcount   folio_ref_count() of the folio holding the page (the head's
 *              count for compound pages; equal to page_ref_count() for order-0
 *              pages, which is all fsdax ever has on 6.1).
 *   mapcount   6.1: page_mapcount() of this page, -1 for slab and typed pages
 *              whose _mapcount word means something else. 6.3+: folio_mapcount().
 *   pincount   exact pin count of a large folio, -1 for order-0 pages: their
 *              FOLL_PIN pins are folded into refcount as GUP_PIN_COUNTING_BIAS.
 *   flags      the raw flags word of this struct page.
 *   mapping, index  folio->mapping (raw, low bits included) and the file index
 *              of this page (folio->index plus the page's offset in the folio).
 *
 * Kernel version guards: only Debian 6.1.0-56-amd64 can be compiled here. The
 * guards for later kernels follow upstream changes as we understand them and
 * have NOT been compile-tested; each says which change it tracks.
 */
#define pr_fmt(fmt) "dax_probe: " fmt

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/memory_hotplug.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/version.h>

#define PROBE_FORMAT		"v1"
#define PROBE_SCAN_MAX		(1UL << 22)
#define PROBE_SCAN_BATCH	1024
#define PROBE_LINE_MAX		256
#define PROBE_INPUT_MAX		96

static DEFINE_MUTEX(probe_lock);
static unsigned long probe_pfn;
static bool probe_pfn_set;
static unsigned long scan_start;
static unsigned long scan_nr;
static int scan_idle;
static bool scan_set;
static struct dentry *probe_dir;

struct probe_page_state {
	int refcount;
	int mapcount;
	int pincount;
	int zone_device;
	int pgmap_type;
	int order;
	unsigned long flags;
	unsigned long mapping;
	unsigned long index;
};

/* Takes a live reference on the dev_pagemap covering @pfn, or returns NULL. */
static struct dev_pagemap *probe_get_pgmap(unsigned long pfn)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 18, 0)
	/* "mm/memremap: remove unused get_dev_pagemap() parameter" (believed 6.18). */
	return get_dev_pagemap(pfn);
#else
	return get_dev_pagemap(pfn, NULL);
#endif
}

/*
 * Returns -1 if @pfn is outside @pgmap, 0 if inside but its struct page was
 * never initialised, 1 if it can be read. The first pages of an fsdax
 * namespace hold the memmap itself (the altmap reserve);
 * memmap_init_zone_device() skips them, so their struct pages hold whatever
 * the media held. Mirrors pgmap_pfn_valid(), which is not exported.
 */
static int probe_pgmap_pfn_state(struct dev_pagemap *pgmap, unsigned long pfn)
{
	int i;

	for (i = 0; i < pgmap->nr_range; i++) {
		const struct range *r = &pgmap->ranges[i];
		unsigned long first = PHYS_PFN(r->start);

		if (pfn < first || pfn > PHYS_PFN(r->end))
			continue;
		if (i == 0 && (pgmap->flags & PGMAP_ALTMAP_VALID))
			first += pgmap->altmap.reserve + pgmap->altmap.alloc;
		return pfn >= first ? 1 : 0;
	}
	return -1;
}

/* Exact pin count of a large folio; -1 where the kernel keeps none. */
static int probe_pincount(struct folio *folio)
{
	if (!folio_test_large(folio))
		return -1;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	/*
	 * 6.3 removed folio_pincount_ptr() for folio->_pincount. Later 32-bit
	 * kernels keep no pincount in order-1 folios (folio_has_pincount()).
	 */
	if (!IS_ENABLED(CONFIG_64BIT) && folio_order(folio) < 2)
		return -1;
	return atomic_read(&folio->_pincount);
#else
	return atomic_read(folio_pincount_ptr(folio));
#endif
}

/* Mapcount as described in the header comment. */
static int probe_mapcount(struct page *page, struct folio *folio)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	/*
	 * folio_mapcount() is inline from 6.2 on (out of line and unexported in
	 * 6.1), and page_mapcount() was removed later, so newer kernels report
	 * the folio's total mapcount.
	 */
	return folio_mapcount(folio);
#else
	if (PageSlab(page) || page_has_type(page))
		return -1;
	return page_mapcount(page);
#endif
}

/* Raw flags word of @page. */
static unsigned long probe_flags(struct page *page)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 18, 0)
	/* page->flags became memdesc_flags_t (believed 6.18). */
	return READ_ONCE(page->flags.f);
#else
	return READ_ONCE(page->flags);
#endif
}

/*
 * Reads the state of @page (at @pfn) into @st. Nothing here takes a page
 * reference; the values can be stale by the time they are printed, which is
 * what a sampling observer gets anyway.
 */
static void probe_fill_state(struct page *page, unsigned long pfn,
			     struct dev_pagemap *pgmap,
			     struct probe_page_state *st)
{
	struct folio *folio = page_folio(page);

	st->refcount = folio_ref_count(folio);
	st->mapcount = probe_mapcount(page, folio);
	st->pincount = probe_pincount(folio);
	st->flags = probe_flags(page);
	st->zone_device = is_zone_device_page(page) ? 1 : 0;
	st->pgmap_type = pgmap ? (int)pgmap->type : -1;
	st->mapping = (unsigned long)READ_ONCE(folio->mapping);
	st->index = READ_ONCE(folio->index) + (pfn - folio_pfn(folio));
	st->order = folio_order(folio);
}

/* Returns true and fills @st if @pfn has an initialised struct page. */
static bool probe_read_pfn(unsigned long pfn, struct probe_page_state *st)
{
	struct dev_pagemap *pgmap;
	struct page *page;

	if (!pfn_valid(pfn))
		return false;

	/*
	 * ZONE_DEVICE first: pfn_to_online_page() returns NULL for it, and the
	 * pgmap reference keeps memunmap_pages() from freeing the memmap.
	 */
	pgmap = probe_get_pgmap(pfn);
	if (pgmap) {
		if (probe_pgmap_pfn_state(pgmap, pfn) <= 0) {
			put_dev_pagemap(pgmap);
			return false;
		}
		page = pfn_to_page(pfn);
	} else {
		/*
		 * Online RAM. A concurrent memory hot-remove could still free
		 * this memmap; the harness's guests never hot-remove RAM.
		 */
		page = pfn_to_online_page(pfn);
		if (!page)
			return false;
	}

	probe_fill_state(page, pfn, pgmap, st);
	put_dev_pagemap(pgmap);
	return true;
}

struct probe_scan_result {
	unsigned long valid;
	unsigned long above_idle;
	unsigned long first_above;
	unsigned long below_idle;
	unsigned long first_below;
};

/*
 * Counts PFNs in [start, start + nr) whose folio refcount is above @idle (a
 * leaked reference) and below it (an underflow: a reference dropped twice).
 * The pgmap reference is cached across a batch and dropped before every
 * cond_resched(), so a scan never holds off namespace teardown for long.
 */
static int probe_scan(unsigned long start, unsigned long nr, int idle,
		      struct probe_scan_result *res)
{
	struct dev_pagemap *pgmap = NULL;
	unsigned long i;

	memset(res, 0, sizeof(*res));
	for (i = 0; i < nr; i++) {
		unsigned long pfn = start + i;
		struct page *page;
		int ref;

		if (i && i % PROBE_SCAN_BATCH == 0) {
			put_dev_pagemap(pgmap);
			pgmap = NULL;
			if (fatal_signal_pending(current))
				return -EINTR;
			cond_resched();
		}
		if (!pfn_valid(pfn))
			continue;
		if (pgmap && probe_pgmap_pfn_state(pgmap, pfn) < 0) {
			put_dev_pagemap(pgmap);
			pgmap = NULL;
		}
		if (!pgmap)
			pgmap = probe_get_pgmap(pfn);
		if (pgmap) {
			if (probe_pgmap_pfn_state(pgmap, pfn) <= 0)
				continue;
			page = pfn_to_page(pfn);
		} else {
			page = pfn_to_online_page(pfn);
			if (!page)
				continue;
		}

		res->valid++;
		ref = folio_ref_count(page_folio(page));
		if (ref > idle) {
			if (!res->above_idle)
				res->first_above = pfn;
			res->above_idle++;
		} else if (ref < idle) {
			if (!res->below_idle)
				res->first_below = pfn;
			res->below_idle++;
		}
	}
	put_dev_pagemap(pgmap);
	return 0;
}

/* Per-open buffer: one line is generated at offset 0 and then paged out. */
struct probe_buf {
	size_t len;
	char text[PROBE_LINE_MAX];
};

typedef int (*probe_fill_fn)(char *text, size_t size);

static int probe_open(struct inode *inode, struct file *file)
{
	struct probe_buf *pb = kzalloc(sizeof(*pb), GFP_KERNEL);

	if (!pb)
		return -ENOMEM;
	file->private_data = pb;
	return 0;
}

static int probe_release(struct inode *inode, struct file *file)
{
	kfree(file->private_data);
	return 0;
}

static ssize_t probe_read_common(struct file *file, char __user *ubuf,
				 size_t count, loff_t *ppos,
				 probe_fill_fn fill)
{
	struct probe_buf *pb = file->private_data;

	if (*ppos == 0) {
		int len = fill(pb->text, sizeof(pb->text));

		if (len < 0)
			return len;
		pb->len = len;
	}
	return simple_read_from_buffer(ubuf, count, ppos, pb->text, pb->len);
}

/* Copies a short user write into @buf as a NUL-terminated string. */
static int probe_copy_input(char *buf, size_t size, const char __user *ubuf,
			    size_t count)
{
	if (count == 0 || count >= size)
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	return 0;
}

/* Splits the next whitespace-separated token off *@s; NULL at the end. */
static char *probe_next_token(char **s)
{
	if (!*s)
		return NULL;
	*s = skip_spaces(*s);
	if (!**s)
		return NULL;
	return strsep(s, " \t\n");
}

static int probe_fill_pfn(char *text, size_t size)
{
	struct probe_page_state st;
	unsigned long pfn;
	bool set;

	mutex_lock(&probe_lock);
	pfn = probe_pfn;
	set = probe_pfn_set;
	mutex_unlock(&probe_lock);
	if (!set)
		return -ENODATA;

	if (!probe_read_pfn(pfn, &st))
		return scnprintf(text, size,
				 "dax_probe " PROBE_FORMAT " pfn=0x%lx valid=0\n",
				 pfn);
	return scnprintf(text, size,
			 "dax_probe " PROBE_FORMAT " pfn=0x%lx valid=1 refcount=%d mapcount=%d pincount=%d flags=0x%lx zone_device=%d pgmap_type=%d mapping=0x%lx index=%lu order=%d\n",
			 pfn, st.refcount, st.mapcount, st.pincount, st.flags,
			 st.zone_device, st.pgmap_type, st.mapping, st.index,
			 st.order);
}

static ssize_t probe_pfn_read(struct file *file, char __user *ubuf,
			      size_t count, loff_t *ppos)
{
	return probe_read_common(file, ubuf, count, ppos, probe_fill_pfn);
}

static ssize_t probe_pfn_write(struct file *file, const char __user *ubuf,
			       size_t count, loff_t *ppos)
{
	char buf[PROBE_INPUT_MAX];
	unsigned long pfn;
	int err;

	err = probe_copy_input(buf, sizeof(buf), ubuf, count);
	if (err)
		return err;
	err = kstrtoul(strim(buf), 0, &pfn);
	if (err)
		return err;

	mutex_lock(&probe_lock);
	probe_pfn = pfn;
	probe_pfn_set = true;
	mutex_unlock(&probe_lock);
	/* *ppos stays put, so a read on the same fd starts at offset 0. */
	return count;
}

static int probe_fill_scan(char *text, size_t size)
{
	struct probe_scan_result res;
	unsigned long start, nr;
	int idle, err;
	bool set;

	mutex_lock(&probe_lock);
	start = scan_start;
	nr = scan_nr;
	idle = scan_idle;
	set = scan_set;
	mutex_unlock(&probe_lock);
	if (!set)
		return -ENODATA;

	err = probe_scan(start, nr, idle, &res);
	if (err)
		return err;
	return scnprintf(text, size,
			 "dax_probe " PROBE_FORMAT " scan start=0x%lx nr=%lu valid=%lu above_idle=%lu first_above=0x%lx below_idle=%lu first_below=0x%lx\n",
			 start, nr, res.valid, res.above_idle, res.first_above,
			 res.below_idle, res.first_below);
}

static ssize_t probe_scan_read(struct file *file, char __user *ubuf,
			       size_t count, loff_t *ppos)
{
	return probe_read_common(file, ubuf, count, ppos, probe_fill_scan);
}

/* Accepts "<start_pfn> <nr_pages> <idle_refcount>"; nr above 1<<22 is EINVAL. */
static ssize_t probe_scan_write(struct file *file, const char __user *ubuf,
				size_t count, loff_t *ppos)
{
	char buf[PROBE_INPUT_MAX];
	char *s = buf, *tok;
	unsigned long start, nr;
	int idle, err;

	err = probe_copy_input(buf, sizeof(buf), ubuf, count);
	if (err)
		return err;

	tok = probe_next_token(&s);
	if (!tok || kstrtoul(tok, 0, &start))
		return -EINVAL;
	tok = probe_next_token(&s);
	if (!tok || kstrtoul(tok, 0, &nr))
		return -EINVAL;
	tok = probe_next_token(&s);
	if (!tok || kstrtoint(tok, 0, &idle))
		return -EINVAL;
	if (probe_next_token(&s))
		return -EINVAL;
	if (nr > PROBE_SCAN_MAX || nr > ULONG_MAX - start)
		return -EINVAL;

	mutex_lock(&probe_lock);
	scan_start = start;
	scan_nr = nr;
	scan_idle = idle;
	scan_set = true;
	mutex_unlock(&probe_lock);
	return count;
}

static int probe_fill_version(char *text, size_t size)
{
	return scnprintf(text, size, "dax_probe " PROBE_FORMAT "\n");
}

static ssize_t probe_version_read(struct file *file, char __user *ubuf,
				  size_t count, loff_t *ppos)
{
	return probe_read_common(file, ubuf, count, ppos, probe_fill_version);
}

/* default_llseek, not no_llseek: callers pread() at offset 0, and no_llseek is gone in 6.12+. */
static const struct file_operations probe_pfn_fops = {
	.owner = THIS_MODULE,
	.open = probe_open,
	.release = probe_release,
	.read = probe_pfn_read,
	.write = probe_pfn_write,
	.llseek = default_llseek,
};

static const struct file_operations probe_scan_fops = {
	.owner = THIS_MODULE,
	.open = probe_open,
	.release = probe_release,
	.read = probe_scan_read,
	.write = probe_scan_write,
	.llseek = default_llseek,
};

static const struct file_operations probe_version_fops = {
	.owner = THIS_MODULE,
	.open = probe_open,
	.release = probe_release,
	.read = probe_version_read,
	.llseek = default_llseek,
};

/*
 * Self-test faults, for testing the harness itself (does it see a WARN, survive a task
 * stuck in D state?). Off unless the module is loaded with selftest_faults=1, and even
 * then only root can write the debugfs file. Never used by the refcount suite.
 */
static bool selftest_faults;
module_param(selftest_faults, bool, 0444);
MODULE_PARM_DESC(selftest_faults, "create debugfs dax_probe/fault for harness self-tests");

/*
 * A WARN while the module loads, during the guest's boot and set-up and so outside every
 * test's dmesg window: proves the harness judges the kernel log between the windows too.
 * Given on the kernel command line (dax_probe.selftest_warn_on_load=1) by that self-test only.
 */
static bool selftest_warn_on_load;
module_param(selftest_warn_on_load, bool, 0444);
MODULE_PARM_DESC(selftest_warn_on_load, "WARN once while loading (harness self-test)");

static ssize_t probe_fault_write(struct file *file, const char __user *ubuf,
				 size_t len, loff_t *ppos)
{
	char buf[32];
	unsigned int secs;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	if (sysfs_streq(buf, "warn")) {
		/* A real WARN splat: "WARNING: CPU: ... at .../dax_probe.c" and taint W. */
		WARN(1, "dax_probe: self-test warning requested\n");
		return len;
	}
	if (sscanf(buf, "hang %u", &secs) == 1 && secs > 0 && secs <= 3600) {
		/*
		 * msleep() sleeps in TASK_UNINTERRUPTIBLE: the writer sits in D state, cannot
		 * be killed, and the hung-task detector reports it, as a wedged kernel would.
		 */
		pr_info("self-test: sleeping uninterruptibly for %u s\n", secs);
		msleep(secs * 1000);
		return len;
	}
	return -EINVAL;
}

static const struct file_operations probe_fault_fops = {
	.owner = THIS_MODULE,
	.write = probe_fault_write,
};

static int __init dax_probe_init(void)
{
	probe_dir = debugfs_create_dir("dax_probe", NULL);
	/* Without debugfs the probe is useless: fail the load so insmod says so. */
	if (IS_ERR_OR_NULL(probe_dir))
		return probe_dir ? PTR_ERR(probe_dir) : -ENODEV;

	debugfs_create_file("pfn", 0600, probe_dir, NULL, &probe_pfn_fops);
	debugfs_create_file("scan", 0600, probe_dir, NULL, &probe_scan_fops);
	debugfs_create_file("version", 0444, probe_dir, NULL,
			    &probe_version_fops);
	if (selftest_faults)
		debugfs_create_file("fault", 0200, probe_dir, NULL, &probe_fault_fops);
	pr_info("loaded (format " PROBE_FORMAT ")%s\n",
		selftest_faults ? " with self-test faults" : "");
	WARN(selftest_warn_on_load, "dax_probe: self-test warning at load requested\n");
	return 0;
}

static void __exit dax_probe_exit(void)
{
	debugfs_remove(probe_dir);
}

module_init(dax_probe_init);
module_exit(dax_probe_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Read-only struct page state (refcount, mapcount, pincount) for fs-DAX tests");
