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

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char usage[] =
	"usage: dax-fault --file PATH --size BYTES [--align 4k|2m] "
	"[--write|--read] [--timeout SECONDS] [--allow-non-dax]";

struct fault_config {
	const char *file;
	uint64_t size;
	bool align_2m;
	bool write;
	bool allow_non_dax;
	unsigned int timeout;
};

static noreturn void usage_fail(const char *what)
{
	fprintf(stderr, "%s\n", usage);
	fail("usage: %s", what);
}

static struct fault_config parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 's' },
		{ "align", required_argument, NULL, 'a' },
		{ "write", no_argument, NULL, 'w' },
		{ "read", no_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ "allow-non-dax", no_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	struct fault_config cfg = {
		.write = true,
		.timeout = HELPER_DEFAULT_TIMEOUT,
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			cfg.file = optarg;
			break;
		case 's':
			if (parse_size(optarg, &cfg.size) < 0)
				usage_fail("bad --size");
			break;
		case 'a':
			if (strcmp(optarg, "4k") == 0)
				cfg.align_2m = false;
			else if (strcmp(optarg, "2m") == 0)
				cfg.align_2m = true;
			else
				usage_fail("--align must be 4k or 2m");
			break;
		case 'w':
			cfg.write = true;
			break;
		case 'r':
			cfg.write = false;
			break;
		case 't':
			if (parse_timeout(optarg, &cfg.timeout) < 0)
				usage_fail("bad --timeout");
			break;
		case 'N':
			cfg.allow_non_dax = true;
			break;
		default:
			usage_fail("unknown option");
		}
	}
	if (optind != argc)
		usage_fail("unexpected argument");
	if (!cfg.file)
		usage_fail("--file is required");
	if (cfg.size == 0 || cfg.size % HELPER_PAGE_SIZE)
		usage_fail("--size must be a non-zero multiple of 4096");
	if (cfg.align_2m && cfg.size < HELPER_PMD_SIZE)
		usage_fail("--align 2m needs --size of at least 2 MiB");
	return cfg;
}

/*
 * Maps the file at an address @offset bytes past a 2 MiB boundary, inside a
 * PROT_NONE reservation that is trimmed afterwards. A PMD fault needs the
 * virtual address and the file offset congruent modulo 2 MiB: offset 0 allows
 * one, offset 4 KiB rules it out. A plain mmap() would not do for 4k:
 * ext4/xfs hand out 2 MiB-aligned addresses for DAX files
 * (thp_get_unmapped_area), so large mappings could fault PMDs anyway.
 */
static char *map_at_offset(int fd, uint64_t size, uintptr_t offset)
{
	size_t span = size + HELPER_PMD_SIZE + offset;
	char *res, *addr, *end, *res_end;
	uintptr_t base;

	report_step("reserve address range");
	res = mmap(NULL, span, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		fail_errno("reserve address range", "mmap");
	base = ((uintptr_t)res + HELPER_PMD_SIZE - 1) & ~(HELPER_PMD_SIZE - 1);
	addr = (char *)(base + offset);

	report_step("mmap test file");
	if (mmap(addr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 fd, 0) == MAP_FAILED)
		fail_errno("map test file at a fixed address", "mmap");

	end = addr + size;
	res_end = res + span;
	if (addr > res && munmap(res, (size_t)(addr - res)) < 0)
		fail_errno("trim address reservation", "munmap");
	if (res_end > end && munmap(end, (size_t)(res_end - end)) < 0)
		fail_errno("trim address reservation", "munmap");
	return addr;
}

int main(int argc, char **argv)
{
	struct fault_config cfg;
	uint64_t *pfns, i, npages;
	bool contig = true;
	char *addr;
	int fd;

	report_init("dax-fault");
	cfg = parse_args(argc, argv);
	report_arm_timeout(cfg.timeout);

	fd = create_test_file(cfg.file, cfg.size, cfg.allow_non_dax);
	npages = cfg.size / HELPER_PAGE_SIZE;
	report_extra_int("pages", (long long)npages);

	addr = map_at_offset(fd, cfg.size, cfg.align_2m ? 0 : HELPER_PAGE_SIZE);
	report_extra_bool("vaddr_pmd_aligned",
			  ((uintptr_t)addr & (HELPER_PMD_SIZE - 1)) == 0);

	/*
	 * With --read on a freshly fallocated (unwritten) extent, the fault maps
	 * the shared zero page rather than media: the observations then show
	 * zone_device=0, and pfn_contig comes out false.
	 */
	report_step(cfg.write ? "write-fault pages" : "read-fault pages");
	for (i = 0; i < npages; i++)
		touch_page(addr + i * HELPER_PAGE_SIZE, cfg.write);

	report_step("read PFNs from pagemap");
	pfns = calloc(npages, sizeof(*pfns));
	if (!pfns)
		fail_errno("allocate PFN array", "calloc");
	pfns_of(addr, npages, pfns);
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

	report_step("munmap test file");
	if (munmap(addr, cfg.size) < 0)
		fail_errno("unmap test file", "munmap");

	report_step("probe unmapped pages");
	observe("unmapped", pfns[0]);
	if (npages > 1)
		observe("unmapped_last", pfns[npages - 1]);

	if (close(fd) < 0)
		fail_errno("close test file", "close");
	free(pfns);
	finish_ok();
}
