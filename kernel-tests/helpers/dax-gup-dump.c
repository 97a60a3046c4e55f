/*
 * dax-gup-dump: cross-checks the probe module against the kernel's own page dump. Where the
 * kernel has CONFIG_GUP_TEST, /sys/kernel/debug/gup_test's DUMP_USER_PAGES_TEST takes a
 * reference on a user page and prints dump_page() for it into dmesg; the harness compares
 * that line's refcount and mapcount with what dax_probe reported for the same PFN, so a probe
 * that misreads struct page (a new kernel's layout) cannot go unnoticed. A kernel without
 * gup_test is a SKIP.
 */
#define _GNU_SOURCE
#include "common.h"
#include "gup_test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>


static const struct helper_cli gup_cli = {
	.name = "dax-gup-dump",
	.default_size = HELPER_PAGE_SIZE,
};

int main(int argc, char **argv)
{
	struct helper_args args = helper_start(argc, argv, &gup_cli, NULL);
	struct gup_test gt = { 0 };
	struct dax_file f;
	uint64_t pfn;
	int fd;

	fd = gup_test_open();
	f = dax_file_create(&args);
	dax_file_map(&f, DAX_PLACE_PTE);
	pfn = dax_file_fault_first(&f);
	observe("before", pfn);

	report_step("dump the page with gup_test");
	gt.addr = (uint64_t)(uintptr_t)f.addr;
	gt.size = HELPER_PAGE_SIZE;
	gt.nr_pages_per_call = 1;
	gt.which_pages[0] = 1;	/* 1-based index of the page to dump; 0 ends the list */
	if (ioctl(fd, DUMP_USER_PAGES_TEST, &gt))
		fail_errno("dump the DAX page", "ioctl(DUMP_USER_PAGES_TEST)");
	close(fd);
	observe("after", pfn);
	report_extra_int("pfn", (long long)pfn);

	dax_file_unmap(&f);
	observe("unmapped", pfn);
	dax_file_close(&f);
	finish_ok();
}
