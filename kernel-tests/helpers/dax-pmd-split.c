/*
 * dax-pmd-split: punch a 4 KiB hole into a PMD-mapped fs-DAX extent. The
 * punch must zap the whole PMD (a file PMD is never split into PTEs, only
 * torn down) and drop the 2 MiB DAX entry, so a later fault maps PTEs: the
 * punched page reads as zeroes (the zero page) and its neighbours keep their
 * data and their blocks. The helper reports the pages before the punch, after
 * it, after the refault and after munmap(), plus a probe scan of the whole
 * 2 MiB that counts pages still above (or below) the idle refcount.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PMD_PAGES	(HELPER_PMD_SIZE / HELPER_PAGE_SIZE)

struct split_config {
	uint64_t hole_page;
};

static const char *set_hole(void *cfg, const char *arg)
{
	struct split_config *c = cfg;
	char *end;

	errno = 0;
	c->hole_page = strtoull(arg, &end, 0);
	if (errno || *end || end == arg || c->hole_page == 0 ||
	    c->hole_page >= PMD_PAGES - 1)
		return "--hole-page must be in 1..510";
	return NULL;
}

static const char *check_split(void *cfg, const struct helper_args *args)
{
	(void)cfg;
	if (args->size < HELPER_PMD_SIZE || args->size % HELPER_PMD_SIZE)
		return "--size must be a multiple of 2 MiB";
	return NULL;
}

static const struct helper_option split_options[] = {
	{ "hole-page", required_argument, false, "[--hole-page N]", set_hole },
	{ 0 },
};

/* 4 MiB as for mmap-fault-2m: only the first 2 MiB is faulted and punched. */
static const struct helper_cli split_cli = {
	.name = "dax-pmd-split",
	.default_size = 2 * HELPER_PMD_SIZE,
	.options = split_options,
	.check = check_split,
};

static char pattern(uint64_t i)
{
	return (char)((i / HELPER_PAGE_SIZE) * 13 + (i % 241) + 1);
}

/* Whether page @pg of the mapping holds its pattern (or zeroes if @zero). */
static bool page_is(const volatile char *addr, uint64_t pg, bool zero)
{
	uint64_t i, off = pg * HELPER_PAGE_SIZE;

	for (i = off; i < off + HELPER_PAGE_SIZE; i++)
		if (addr[i] != (zero ? 0 : pattern(i)))
			return false;
	return true;
}

/* Counts the pages of [addr, addr + npages pages) that are mapped now. */
static long long present_pages(const char *addr, uint64_t npages)
{
	long long n = 0;
	uint64_t i, pfn;

	for (i = 0; i < npages; i++) {
		if (pagemap_pfns(addr + i * HELPER_PAGE_SIZE, 1, &pfn) == 0)
			n++;
		else if (errno != ENXIO)
			fail_errno("read PFNs after the punch", "pagemap_pfns");
	}
	return n;
}

int main(int argc, char **argv)
{
	struct split_config cfg = { .hole_page = 5 };
	struct helper_args args = helper_start(argc, argv, &split_cli, &cfg);
	uint64_t pfns[PMD_PAGES], hole = cfg.hole_page, i, pfn;
	long long below;
	bool data_ok = true;
	struct dax_file f;
	struct stat st;

	f = dax_file_create(&args);
	if (fstat(f.fd, &st) < 0)
		fail_errno("stat test file", "fstat");
	report_extra_int("ino", (long long)st.st_ino);
	report_extra_int("hole_page", (long long)hole);
	dax_file_map(&f, DAX_PLACE_PMD);

	report_step("write the first 2 MiB (PMD write fault)");
	for (i = 0; i < HELPER_PMD_SIZE; i++)
		f.addr[i] = pattern(i);
	pfns_of(f.addr, PMD_PAGES, pfns);
	for (i = 1; i < PMD_PAGES; i++)
		if (pfns[i] != pfns[0] + i)
			break;
	report_extra_bool("pfn_contig", i == PMD_PAGES);
	report_extra_bool("huge_aligned", pfns[0] % PMD_PAGES == 0);
	observe("mapped", pfns[0]);
	observe("mapped_hole", pfns[hole]);

	report_step("punch a 4 KiB hole");
	if (fallocate(f.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(hole * HELPER_PAGE_SIZE),
		      (off_t)HELPER_PAGE_SIZE) < 0)
		fail_errno("punch a hole in the PMD extent", "fallocate");
	/* The punched page must be gone; the rest of the PMD goes with it on 6.1. */
	report_extra_int("present_after_punch",
			 present_pages(f.addr, PMD_PAGES));
	report_extra_bool("hole_present_after_punch",
			  present_pages(f.addr + hole * HELPER_PAGE_SIZE, 1) > 0);
	observe("punched", pfns[hole]);
	observe("punched_head", pfns[0]);

	report_step("refault (read) the first 2 MiB");
	for (i = 0; i < PMD_PAGES; i++)
		if (!page_is(f.addr, i, i == hole))
			data_ok = false;
	report_extra_bool("hole_reads_zero", page_is(f.addr, hole, true));
	report_extra_bool("neighbours_intact",
			  page_is(f.addr, hole - 1, false) &&
			  page_is(f.addr, hole + 1, false));
	report_extra_bool("data_intact", data_ok);
	report_step("read PFNs after the refault");
	pfn = pfn_of(f.addr + hole * HELPER_PAGE_SIZE);
	report_extra_bool("hole_same_pfn", pfn == pfns[hole]);
	report_extra_bool("neighbours_same_pfn",
			  pfn_of(f.addr + (hole - 1) * HELPER_PAGE_SIZE) ==
			  pfns[hole - 1] &&
			  pfn_of(f.addr + (hole + 1) * HELPER_PAGE_SIZE) ==
			  pfns[hole + 1]);
	observe("refault_hole", pfn);
	observe("refault_prev", pfns[hole - 1]);
	observe("refault_next", pfns[hole + 1]);

	dax_file_unmap(&f);
	observe("unmapped", pfns[0]);
	observe("unmapped_prev", pfns[hole - 1]);
	observe("unmapped_punched", pfns[hole]);
	/* The helper does not know the model: the judge picks the scan for its idle. */
	report_extra_int("scan_above_0", probe_scan(pfns[0], PMD_PAGES, 0, NULL, &below));
	report_extra_int("scan_below_0", below);
	report_extra_int("scan_above_1", probe_scan(pfns[0], PMD_PAGES, 1, NULL, &below));
	report_extra_int("scan_below_1", below);
	dax_file_close(&f);
	finish_ok();
}
