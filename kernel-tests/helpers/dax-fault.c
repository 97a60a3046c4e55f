/*
 * dax-fault: fault every page of a MAP_SHARED fs-DAX mapping, then unmap it,
 * reporting the struct page state of the first and last page at each step.
 * It exercises the fsdax fault path (dax_iomap_fault, PTE-sized with --align
 * 4k, PMD-capable with --align 2m) and the reference that path takes and that
 * munmap() must give back; 6.15 reworked it (1-based counts on 6.1, 0-based
 * folios with mapcount later), so the harness compares the numbers per kernel.
 */
#define _GNU_SOURCE
#include "common.h"

#include <stdlib.h>
#include <string.h>

struct fault_config {
	bool align_2m;
	bool write;
};

static const char *set_align(void *cfg, const char *arg)
{
	struct fault_config *c = cfg;

	if (strcmp(arg, "4k") == 0)
		c->align_2m = false;
	else if (strcmp(arg, "2m") == 0)
		c->align_2m = true;
	else
		return "--align must be 4k or 2m";
	return NULL;
}

static const char *set_write(void *cfg, const char *arg)
{
	(void)arg;
	((struct fault_config *)cfg)->write = true;
	return NULL;
}

static const char *set_read(void *cfg, const char *arg)
{
	(void)arg;
	((struct fault_config *)cfg)->write = false;
	return NULL;
}

static const char *check_fault(void *cfg, const struct helper_args *args)
{
	const struct fault_config *c = cfg;

	if (c->align_2m && args->size < HELPER_PMD_SIZE)
		return "--align 2m needs --size of at least 2 MiB";
	return NULL;
}

static const struct helper_option fault_options[] = {
	{ "align", required_argument, false, "[--align 4k|2m]", set_align },
	{ "write", no_argument, false, "[--write|--read]", set_write },
	{ "read", no_argument, false, NULL, set_read },
	{ 0 },
};

static const struct helper_cli fault_cli = {
	.name = "dax-fault",
	.options = fault_options,
	.check = check_fault,
};

int main(int argc, char **argv)
{
	struct fault_config cfg = { .write = true };
	struct helper_args args = helper_start(argc, argv, &fault_cli, &cfg);
	uint64_t *pfns, i, npages;
	struct dax_file f;
	bool contig = true;

	f = dax_file_create(&args);
	npages = f.size / HELPER_PAGE_SIZE;
	report_extra_int("pages", (long long)npages);

	dax_file_map(&f, cfg.align_2m ? DAX_PLACE_PMD : DAX_PLACE_PTE);
	report_extra_bool("vaddr_pmd_aligned",
			  ((uintptr_t)f.addr & (HELPER_PMD_SIZE - 1)) == 0);

	/*
	 * With --read on a freshly fallocated (unwritten) extent, the fault maps
	 * the shared zero page rather than media: the observations then show
	 * zone_device=0, and pfn_contig comes out false.
	 */
	report_step(cfg.write ? "write-fault pages" : "read-fault pages");
	for (i = 0; i < npages; i++)
		touch_page(f.addr + i * HELPER_PAGE_SIZE, cfg.write);

	report_step("read PFNs from pagemap");
	pfns = calloc(npages, sizeof(*pfns));
	if (!pfns)
		fail_errno("allocate PFN array", "calloc");
	pfns_of(f.addr, npages, pfns);
	for (i = 1; i < npages; i++) {
		if (pfns[i] != pfns[0] + i) {
			contig = false;
			break;
		}
	}
	report_extra_bool("pfn_contig", contig);
	report_extra_bool("huge_aligned", pfns[0] % 512 == 0);

	report_step("probe mapped pages");
	observe("mapped", pfns[0]);
	if (npages > 1)
		observe("mapped_last", pfns[npages - 1]);

	dax_file_unmap(&f);

	report_step("probe unmapped pages");
	observe("unmapped", pfns[0]);
	if (npages > 1)
		observe("unmapped_last", pfns[npages - 1]);

	dax_file_close(&f);
	free(pfns);
	finish_ok();
}
