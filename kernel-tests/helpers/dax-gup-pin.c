/*
 * dax-gup-pin: GUP's slow path on fs-DAX pages, through CONFIG_GUP_TEST's
 * /sys/kernel/debug/gup_test. get_user_pages() and pin_user_pages() of a
 * PMD-mapped DAX page (follow_devmap_pmd) and of a PTE-mapped one
 * (follow_page_pte) must take exactly one reference or pin per page and give
 * it back, and FOLL_LONGTERM must be refused on fsdax (check_vma_flags:
 * -EOPNOTSUPP) with nothing left pinned. A kernel without gup_test is a SKIP.
 *
 * Two files, so that each page has exactly one mapping: --file is mapped on
 * a 2 MiB boundary (PMD faults), --file with ".pte" appended 4 KiB past one
 * (PTE faults only). The PMD file is faulted first, while the filesystem
 * still has 2 MiB-aligned free extents.
 */
#define _GNU_SOURCE
#include "common.h"
#include "gup_test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


/* include/linux/mm.h; gup_test hands gup_flags to GUP as they are. */
#define FOLL_WRITE		0x01
#define PAGES_PER_CALL		64

#define PMD_PAGES		(HELPER_PMD_SIZE / HELPER_PAGE_SIZE)
/* The anonymous control for PIN_LONGTERM_BENCHMARK. */
#define ANON_BYTES		(16 * HELPER_PAGE_SIZE)

static const char *check_gup(void *cfg, const struct helper_args *args)
{
	(void)cfg;
	if (args->size % HELPER_PMD_SIZE)
		return "--size must be a multiple of 2 MiB";
	return NULL;
}

static const struct helper_cli gup_cli = {
	.name = "dax-gup-pin",
	.default_size = 2 * HELPER_PMD_SIZE,
	.check = check_gup,
};

/* One of the two mapped files and the pages the helper observes in it. */
struct placement {
	const char *name;	/* "pmd" or "pte": the prefix of its phases and extras */
	struct dax_file f;
	uint64_t first_pfn;
	uint64_t mid_pfn;
};

/* Runs one gup_test command over [addr, addr + size); 0 or -1 with errno. */
static int gup_ioctl(int fd, unsigned long cmd, const void *addr, uint64_t size,
		     uint64_t *taken)
{
	struct gup_test gt = { 0 };

	gt.addr = (uint64_t)(uintptr_t)addr;
	gt.size = size;
	gt.nr_pages_per_call = PAGES_PER_CALL;
	gt.gup_flags = FOLL_WRITE;
	if (ioctl(fd, cmd, &gt) < 0)
		return -1;
	*taken = gt.size;
	return 0;
}

/* Like gup_ioctl(), but a failed ioctl fails the helper. */
static uint64_t gup_run(int fd, unsigned long cmd, const char *cmd_name,
			const void *addr, uint64_t size)
{
	uint64_t taken;

	if (gup_ioctl(fd, cmd, addr, size, &taken) < 0)
		fail_errno("run gup_test on the DAX mapping", cmd_name);
	return taken;
}

/* Records "<place>_first_<step>" and "<place>_mid_<step>". */
static void observe_both(const struct placement *p, const char *step)
{
	char phase[32];

	snprintf(phase, sizeof(phase), "%s_first_%s", p->name, step);
	observe(phase, p->first_pfn);
	snprintf(phase, sizeof(phase), "%s_mid_%s", p->name, step);
	observe(phase, p->mid_pfn);
}

static void report_place_int(const struct placement *p, const char *what,
			     long long value)
{
	char key[32];

	snprintf(key, sizeof(key), "%s_%s", p->name, what);
	report_extra_int(key, value);
}

/*
 * Creates, maps and write-faults every page of one file. @mid is the page
 * observed besides the first: the middle of the last 2 MiB, a tail page of a
 * PMD other than the first when the mapping has more than one.
 */
static void place_file(struct placement *p, const struct helper_args *args,
		       enum dax_placement where, uint64_t mid)
{
	uint64_t i, npages = args->size / HELPER_PAGE_SIZE;
	struct stat st;

	p->f = dax_file_create(args);
	if (fstat(p->f.fd, &st) < 0)
		fail_errno("stat test file", "fstat");
	report_place_int(p, "ino", (long long)st.st_ino);
	dax_file_map(&p->f, where);
	report_step("write-fault every page");
	for (i = 0; i < npages; i++)
		touch_page(p->f.addr + i * HELPER_PAGE_SIZE, true);
	p->first_pfn = pfn_of(p->f.addr);
	p->mid_pfn = pfn_of(p->f.addr + mid * HELPER_PAGE_SIZE);
}

/*
 * Whether the PMD file's blocks allow a PMD fault in every 2 MiB of it: each
 * 2 MiB is one contiguous run (pfn_contig) starting on a 2 MiB-aligned PFN
 * (huge_aligned). The runs need not follow one another.
 */
static void report_pmd_layout(const struct placement *p, uint64_t npages)
{
	bool contig = true, aligned = true;
	uint64_t *pfns, i;

	report_step("read PFNs from pagemap");
	pfns = calloc(npages, sizeof(*pfns));
	if (!pfns)
		fail_errno("allocate PFN array", "calloc");
	pfns_of(p->f.addr, npages, pfns);
	for (i = 0; i < npages; i++) {
		if (i % PMD_PAGES == 0)
			aligned = aligned && pfns[i] % PMD_PAGES == 0;
		else
			contig = contig && pfns[i] == pfns[i - 1] + 1;
	}
	report_extra_bool("pfn_contig", contig);
	report_extra_bool("huge_aligned", aligned);
	free(pfns);
}

/*
 * FOLL_LONGTERM on ordinary anonymous memory must pin all of it: otherwise a
 * refusal on DAX would say nothing about fsdax.
 */
static void longterm_control(int fd)
{
	uint64_t taken;
	void *anon;

	report_step("PIN_LONGTERM_BENCHMARK on anonymous memory");
	anon = mmap(NULL, ANON_BYTES, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED)
		fail_errno("map anonymous control buffer", "mmap");
	memset(anon, 0x5a, ANON_BYTES);
	taken = gup_run(fd, PIN_LONGTERM_BENCHMARK,
			"ioctl(PIN_LONGTERM_BENCHMARK)", anon, ANON_BYTES);
	report_extra_int("anon_bytes", (long long)ANON_BYTES);
	report_extra_int("longterm_anon_bytes", (long long)taken);
	if (munmap(anon, ANON_BYTES) < 0)
		fail_errno("unmap anonymous control buffer", "munmap");
}

int main(int argc, char **argv)
{
	struct helper_args args = helper_start(argc, argv, &gup_cli, NULL);
	struct placement pmd = { .name = "pmd" }, pte = { .name = "pte" };
	struct placement *places[] = { &pmd, &pte };
	struct helper_args pte_args = args;
	uint64_t npages = args.size / HELPER_PAGE_SIZE;
	uint64_t mid = npages - PMD_PAGES / 2, taken;
	struct pin_counters before, after;
	char pte_path[4096];
	size_t i;
	int fd;

	fd = gup_test_open();
	if ((size_t)snprintf(pte_path, sizeof(pte_path), "%s.pte", args.file) >=
	    sizeof(pte_path))
		fail("usage: --file is too long");
	pte_args.file = pte_path;
	report_extra_int("mapping_bytes", (long long)args.size);

	longterm_control(fd);

	place_file(&pmd, &args, DAX_PLACE_PMD, mid);
	report_pmd_layout(&pmd, npages);
	place_file(&pte, &pte_args, DAX_PLACE_PTE, mid);

	before = read_pin_counters();
	for (i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		struct placement *p = places[i];

		observe_both(p, "before");
		report_step("GUP_BASIC_TEST on the DAX mapping");
		taken = gup_run(fd, GUP_BASIC_TEST, "ioctl(GUP_BASIC_TEST)",
				p->f.addr, p->f.size);
		report_place_int(p, "gup_bytes", (long long)taken);
		observe_both(p, "after_gup");
		report_step("PIN_BASIC_TEST on the DAX mapping");
		taken = gup_run(fd, PIN_BASIC_TEST, "ioctl(PIN_BASIC_TEST)",
				p->f.addr, p->f.size);
		report_place_int(p, "pin_bytes", (long long)taken);
		observe_both(p, "after_pin");
	}

	/*
	 * 6.1's gup_test returns 0 and size 0 when pin_user_pages() fails at
	 * once; an ioctl error is reported (and judged), not fatal, so that the
	 * rest of the report is still printed.
	 */
	report_step("PIN_LONGTERM_BENCHMARK on the PMD mapping");
	if (gup_ioctl(fd, PIN_LONGTERM_BENCHMARK, pmd.f.addr, pmd.f.size,
		      &taken) < 0) {
		int err = errno;

		fprintf(stderr, "dax-gup-pin: ioctl(PIN_LONGTERM_BENCHMARK): %s\n",
			strerror(err));
		report_extra_int("longterm_errno", err);
		report_extra_int("longterm_bytes", -1);
	} else {
		report_extra_int("longterm_errno", 0);
		report_extra_int("longterm_bytes", (long long)taken);
	}
	observe_both(&pmd, "after_longterm");

	for (i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		dax_file_unmap(&places[i]->f);
		observe_both(places[i], "unmapped");
	}

	after = read_pin_counters();
	report_extra_int("foll_pin_acquired_delta", after.acquired - before.acquired);
	report_extra_int("foll_pin_released_delta", after.released - before.released);

	for (i = 0; i < sizeof(places) / sizeof(places[0]); i++)
		dax_file_close(&places[i]->f);
	if (close(fd) < 0)
		fail_errno("close " GUP_TEST_PATH, "close");
	finish_ok();
}
