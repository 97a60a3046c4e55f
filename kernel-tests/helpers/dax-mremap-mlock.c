/*
 * dax-mremap-mlock: move a PMD-faulted fs-DAX mapping with mremap() to another
 * 2 MiB-aligned address (move_huge_pmd() carries a DAX PMD over as is), then
 * mlock() and munlock() it, and mlock() it again and munmap() it while
 * locked. DAX pages are never LRU pages: mlock must not mark or count them
 * (6.1's mlock_fixup() skips DAX VMAs altogether, so mlock() succeeds and
 * locks nothing; 6.15's "fs/dax: Properly refcount fs dax pages" also made
 * mlock_pte_range() skip DAX PMDs). The helper reports the head page, the
 * nr_mlock counter, VmLck and the data at each step.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct helper_cli mremap_cli = {
	.name = "dax-mremap-mlock",
	.default_size = 2 * HELPER_PMD_SIZE,
};

/* Page flags proper live in the low bits; node/zone/section above them. */
#define PAGE_FLAG_BITS	0xffffffffULL

/* nr_mlock from /proc/vmstat (pages mlocked, all zones, ZONE_DEVICE too). */
static long long read_nr_mlock(void)
{
	char line[128];
	long long v = -1;
	FILE *fp = fopen("/proc/vmstat", "re");

	if (!fp)
		fail_errno("read /proc/vmstat", "fopen");
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "nr_mlock %lld", &v) == 1)
			break;
	fclose(fp);
	if (v < 0)
		fail("/proc/vmstat has no nr_mlock line");
	return v;
}

/* VmLck of this process in kB: what mlock() really locked (mm->locked_vm). */
static long long read_vmlck_kb(void)
{
	char line[128];
	long long v = -1;
	FILE *fp = fopen("/proc/self/status", "re");

	if (!fp)
		fail_errno("read /proc/self/status", "fopen");
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "VmLck: %lld kB", &v) == 1)
			break;
	fclose(fp);
	if (v < 0)
		fail("/proc/self/status has no VmLck line");
	return v;
}

/* Byte @i of the pattern: differs per page and within a page. */
static char pattern(uint64_t i)
{
	return (char)((i / HELPER_PAGE_SIZE) * 7 + (i % 251) + 1);
}

static bool pattern_intact(const volatile char *p, uint64_t size)
{
	uint64_t i;

	/* Every 512th byte: a check per page costs nothing and finds a lost page. */
	for (i = 0; i < size; i += 512)
		if (p[i] != pattern(i))
			return false;
	return true;
}

/*
 * Reserves a 2 MiB-aligned range of @size that does not overlap the
 * mapping, for MREMAP_FIXED; the slack is unmapped again.
 */
static char *reserve_pmd_target(uint64_t size)
{
	size_t span = size + HELPER_PMD_SIZE;
	char *res, *target;

	report_step("reserve the mremap target");
	res = mmap(NULL, span, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		fail_errno("reserve the mremap target", "mmap");
	target = (char *)(((uintptr_t)res + HELPER_PMD_SIZE - 1) &
			  ~(HELPER_PMD_SIZE - 1));
	if (target > res && munmap(res, (size_t)(target - res)) < 0)
		fail_errno("trim the target reservation", "munmap");
	if (res + span > target + size &&
	    munmap(target + size, (size_t)(res + span - (target + size))) < 0)
		fail_errno("trim the target reservation", "munmap");
	return target;
}

/* Records nr_mlock minus the baseline as extra @key. */
static void mlock_delta(const char *key, long long base)
{
	report_extra_int(key, read_nr_mlock() - base);
}

int main(int argc, char **argv)
{
	struct helper_args args = helper_start(argc, argv, &mremap_cli, NULL);
	uint64_t i, npages, pfn0, pfn_last, moved;
	struct probe_state before, ps;
	struct dax_file f;
	struct stat st;
	long long base;
	char *target;
	void *p;

	if (args.size % HELPER_PMD_SIZE)
		fail("usage: --size must be a multiple of 2 MiB");
	f = dax_file_create(&args);
	if (fstat(f.fd, &st) < 0)
		fail_errno("stat test file", "fstat");
	/* The judge picks this file's events out of the fs_dax trace by inode. */
	report_extra_int("ino", (long long)st.st_ino);
	npages = f.size / HELPER_PAGE_SIZE;
	dax_file_map(&f, DAX_PLACE_PMD);

	report_step("write the pattern (write faults)");
	for (i = 0; i < f.size; i++)
		f.addr[i] = pattern(i);
	pfn0 = pfn_of(f.addr);
	pfn_last = pfn_of(f.addr + f.size - HELPER_PAGE_SIZE);
	report_extra_bool("huge_aligned", pfn0 % 512 == 0);
	report_extra_bool("pfn_contig", pfn_last == pfn0 + npages - 1);
	before = observe("mapped", pfn0);
	base = read_nr_mlock();

	target = reserve_pmd_target(f.size);
	report_step("mremap to a 2 MiB-aligned address");
	p = mremap(f.addr, f.size, f.size, MREMAP_MAYMOVE | MREMAP_FIXED,
		   target);
	if (p == MAP_FAILED)
		fail_errno("move the mapping", "mremap");
	f.addr = p;

	/* Moved page tables keep the page present; a zapped PMD would refault. */
	report_step("read PFNs after the move");
	if (pagemap_pfns(f.addr, 1, &moved) == 0)
		report_extra_bool("moved_present", true);
	else if (errno == ENXIO)
		report_extra_bool("moved_present", false);
	else
		fail_errno("read PFNs after the move", "pagemap_pfns");
	report_extra_bool("data_intact_after_move",
			  pattern_intact(f.addr, f.size));
	report_extra_bool("moved_same_pfn", pfn_of(f.addr) == pfn0);
	observe("moved", pfn0);

	report_step("mlock");
	if (mlock(f.addr, f.size) < 0)
		fail_errno("lock the moved mapping", "mlock");
	ps = observe("mlocked", pfn0);
	mlock_delta("nr_mlock_delta_locked", base);
	/* 6.1's mlock_fixup() leaves DAX VMAs unlocked: mlock() succeeds, locks nothing. */
	report_extra_int("vmlck_kb_locked", read_vmlck_kb());
	report_extra_int("flags_changed_locked",
			 (long long)((ps.flags ^ before.flags) & PAGE_FLAG_BITS));

	report_step("munlock");
	if (munlock(f.addr, f.size) < 0)
		fail_errno("unlock the mapping", "munlock");
	ps = observe("munlocked", pfn0);
	mlock_delta("nr_mlock_delta_unlocked", base);
	report_extra_int("flags_changed_unlocked",
			 (long long)((ps.flags ^ before.flags) & PAGE_FLAG_BITS));
	report_extra_bool("data_intact_after_mlock",
			  pattern_intact(f.addr, f.size));

	/* munmap() of a locked mapping must not leave the pages mlocked. */
	report_step("mlock again, then munmap while locked");
	if (mlock(f.addr, f.size) < 0)
		fail_errno("lock the mapping again", "mlock");
	dax_file_unmap(&f);
	ps = observe("unmapped", pfn0);
	observe("unmapped_last", pfn_last);
	mlock_delta("nr_mlock_delta_unmapped", base);
	report_extra_int("flags_changed_unmapped",
			 (long long)((ps.flags ^ before.flags) & PAGE_FLAG_BITS));
	dax_file_close(&f);
	finish_ok();
}
