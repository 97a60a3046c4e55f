/*
 * dax-hole: read-fault the holes of a sparse fs-DAX file, then write them.
 * A read fault on a hole must map the shared zero page (dax_load_hole) or,
 * on a 2 MiB-aligned range, the huge zero page (dax_pmd_load_hole), never
 * media: no fsdax page, no block allocated, nothing stale visible. The write
 * fault that follows must replace the zero page with a freshly zeroed fsdax
 * page that follows the refcount model and goes idle after munmap(). The
 * test file first holds a pattern in blocks it then frees, so blocks handed
 * back unzeroed would show.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define STALE_BYTE	0x5a
#define STALE_SIZE	(4UL << 20)

static const struct helper_cli hole_cli = {
	.name = "dax-hole",
	.default_size = 4UL << 20,
	.check = NULL,
};

/*
 * Maps @len bytes of @fd from @file_off at an address @past bytes after a
 * 2 MiB boundary (0: PMD faults possible when @file_off is 2 MiB-aligned;
 * 4 KiB: PTE faults only), inside a trimmed PROT_NONE reservation.
 */
static char *map_at(int fd, int prot, int flags, size_t len, off_t file_off,
		    uintptr_t past)
{
	size_t span = len + HELPER_PMD_SIZE + past;
	char *res, *addr;
	uintptr_t base;

	res = mmap(NULL, span, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		fail_errno("reserve address range", "mmap");
	base = ((uintptr_t)res + HELPER_PMD_SIZE - 1) & ~(HELPER_PMD_SIZE - 1);
	addr = (char *)(base + past);
	if (mmap(addr, len, prot, flags | MAP_FIXED, fd, file_off) == MAP_FAILED)
		fail_errno("map at a fixed address", "mmap");
	if (addr > res && munmap(res, (size_t)(addr - res)) < 0)
		fail_errno("trim address reservation", "munmap");
	if (res + span > addr + len &&
	    munmap(addr + len, (size_t)(res + span - (addr + len))) < 0)
		fail_errno("trim address reservation", "munmap");
	return addr;
}

/* Bytes of [p, p+len) that are not zero, skipping the first @skip bytes. */
static long long count_nonzero(const char *p, size_t len, size_t skip)
{
	long long n = 0;
	size_t i;

	for (i = skip; i < len; i++)
		n += p[i] != 0;
	return n;
}

/*
 * Fills the test file with STALE_BYTE, records its PFNs, then truncates it
 * to 0 and commits that, so the blocks it gets next likely held the pattern
 * (the allocator starts from the same goal for the same inode). Returns the
 * file, open and empty, and the number of PFNs in *pfns.
 */
static int create_over_stale_blocks(const char *file, uint64_t **pfns,
				    size_t *npfns)
{
	size_t npages = STALE_SIZE / HELPER_PAGE_SIZE, i;
	char *buf, *map;
	int fd;

	report_step("fill the test file with a pattern");
	fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail_errno("create test file", "open");
	buf = malloc(STALE_SIZE);
	if (!buf)
		fail_errno("allocate the pattern buffer", "malloc");
	memset(buf, STALE_BYTE, STALE_SIZE);
	if (pwrite(fd, buf, STALE_SIZE, 0) != (ssize_t)STALE_SIZE)
		fail_errno("write the pattern to the test file", "pwrite");
	free(buf);
	if (fsync(fd) < 0)
		fail_errno("flush the test file", "fsync");
	map = mmap(NULL, STALE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		fail_errno("map the patterned test file", "mmap");
	for (i = 0; i < npages; i++)
		touch_page(map + i * HELPER_PAGE_SIZE, false);
	*pfns = calloc(npages, sizeof(**pfns));
	if (!*pfns)
		fail_errno("allocate PFN array", "calloc");
	pfns_of(map, npages, *pfns);
	if (munmap(map, STALE_SIZE) < 0)
		fail_errno("unmap the patterned test file", "munmap");

	report_step("free the patterned blocks");
	if (ftruncate(fd, 0) < 0)
		fail_errno("free the patterned blocks", "ftruncate");
	/* Commit the free: ext4 and xfs reuse freed blocks only after it. */
	if (fsync(fd) < 0)
		fail_errno("commit the truncate", "fsync");
	*npfns = npages;
	return fd;
}

static bool pfn_in(uint64_t pfn, const uint64_t *set, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (set[i] == pfn)
			return true;
	return false;
}

/*
 * PFN of the shared zero page: a read fault on private anonymous memory maps
 * it (there is no other way to learn it from user space).
 */
static uint64_t anon_zero_pfn(const char **map_out, size_t len, bool huge)
{
	char *p;

	if (huge) {
		p = map_at(-1, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, len, 0, 0);
		/* THP "madvise" mode needs this; "always" does not mind. */
		if (madvise(p, len, MADV_HUGEPAGE) < 0)
			fail_errno("ask for a huge zero page", "madvise");
	} else {
		p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
		if (p == MAP_FAILED)
			fail_errno("map anonymous memory", "mmap");
	}
	touch_page(p, false);
	*map_out = p;
	return pfn_of(p);
}

int main(int argc, char **argv)
{
	struct helper_args args = helper_start(argc, argv, &hole_cli, NULL);
	uint64_t *stale = NULL, zero_pfn, huge_zero_pfn, pfn4, pfn2, last2;
	struct probe_state anon_huge;
	const char *anon4, *anon2;
	size_t nstale;
	bool dax, reported, huge_known;
	char *a, *b;
	struct stat st;
	int fd;

	if (args.size < 2 * HELPER_PMD_SIZE || args.size % HELPER_PMD_SIZE)
		fail("usage: --size must be a multiple of 2 MiB, at least 4 MiB");

	fd = create_over_stale_blocks(args.file, &stale, &nstale);

	report_step("make the test file sparse");
	if (ftruncate(fd, (off_t)args.size) < 0)
		fail_errno("size the sparse test file", "ftruncate");
	if (statx_dax(fd, &dax, &reported) < 0)
		fail_errno("check test file for DAX", "statx");
	report_set_dax(dax);
	if (!dax && !args.allow_non_dax)
		fail("not a DAX file");
	if (fstat(fd, &st) < 0)
		fail_errno("stat test file", "fstat");
	report_extra_int("ino", (long long)st.st_ino);

	report_step("find the zero pages");
	zero_pfn = anon_zero_pfn(&anon4, HELPER_PAGE_SIZE, false);
	huge_zero_pfn = anon_zero_pfn(&anon2, HELPER_PMD_SIZE, true);
	anon_huge = probe_or_fail(huge_zero_pfn);
	/* Without THP the anonymous fault maps the small zero page instead. */
	huge_known = anon_huge.order == 9 && anon_huge.zone_device == 0;
	report_extra_bool("huge_zero_pfn_known", huge_known);

	/* File [0, 2 MiB) placed 4 KiB off a boundary: PTE faults only. */
	report_step("read-fault the 4 KiB hole");
	a = map_at(fd, PROT_READ | PROT_WRITE, MAP_SHARED, HELPER_PMD_SIZE, 0,
		   HELPER_PAGE_SIZE);
	touch_page(a, false);
	pfn4 = pfn_of(a);
	observe("hole_4k", pfn4);
	report_extra_bool("hole_4k_is_zero_page", pfn4 == zero_pfn);
	report_extra_int("hole_4k_nonzero", count_nonzero(a, HELPER_PAGE_SIZE, 0));

	/* File [2 MiB, 4 MiB) on a 2 MiB boundary: a PMD fault is possible. */
	report_step("read-fault the 2 MiB hole");
	b = map_at(fd, PROT_READ | PROT_WRITE, MAP_SHARED, HELPER_PMD_SIZE,
		   (off_t)HELPER_PMD_SIZE, 0);
	touch_page(b, false);
	pfn2 = pfn_of(b);
	observe("hole_2m", pfn2);
	report_extra_bool("hole_2m_is_huge_zero_page",
			  huge_known && pfn2 == huge_zero_pfn);
	report_extra_int("hole_2m_nonzero", count_nonzero(b, HELPER_PMD_SIZE, 0));
	last2 = pfn_of(b + HELPER_PMD_SIZE - HELPER_PAGE_SIZE);
	report_extra_bool("hole_2m_one_huge_page", last2 == pfn2 + 511);

	/* Reading holes allocates nothing. */
	if (fstat(fd, &st) < 0)
		fail_errno("stat test file", "fstat");
	report_extra_int("blocks_after_reads", (long long)st.st_blocks);

	report_step("write-fault the 4 KiB hole");
	touch_page(a, true);
	pfn4 = pfn_of(a);
	observe("written_4k", pfn4);
	report_step("write-fault the 2 MiB hole");
	touch_page(b, true);
	pfn2 = pfn_of(b);
	observe("written_2m", pfn2);

	/* All but the byte written must read back as zero: fresh blocks. */
	report_extra_int("written_4k_nonzero",
			 count_nonzero(a, HELPER_PAGE_SIZE, 1));
	report_extra_int("written_2m_nonzero",
			 count_nonzero(b, HELPER_PMD_SIZE, 1));
	report_extra_bool("reused_stale_blocks",
			  pfn_in(pfn4, stale, nstale) ||
			  pfn_in(pfn2, stale, nstale));
	report_extra_bool("zero_pages_still_zero",
			  count_nonzero(anon4, HELPER_PAGE_SIZE, 0) == 0 &&
			  count_nonzero(anon2, HELPER_PMD_SIZE, 0) == 0);

	report_step("munmap test file");
	if (munmap(a, HELPER_PMD_SIZE) < 0 || munmap(b, HELPER_PMD_SIZE) < 0)
		fail_errno("unmap test file", "munmap");
	observe("unmapped_4k", pfn4);
	observe("unmapped_2m", pfn2);
	if (fstat(fd, &st) < 0)
		fail_errno("stat test file", "fstat");
	report_extra_int("blocks_after", (long long)st.st_blocks);
	if (close(fd) < 0)
		fail_errno("close test file", "close");
	free(stale);
	finish_ok();
}
