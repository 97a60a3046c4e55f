/*
 * dax-reflink: FICLONE an fs-DAX file, so two files share its blocks, map and
 * read-fault both (one PFN, two files), then write to one (a DAX CoW fault:
 * its page moves to a new block), truncate one and then the other. 6.1 tracks
 * a shared DAX page through page->mapping (PAGE_MAPPING_DAX_COW and a share
 * count in page->index, with WARN_ON_ONCE()s in dax_associate_entry() and
 * dax_disassociate_entry() when two files claim one page); 6.15 reworked this
 * into folio references. The helper reports each page at each step and what
 * page->mapping holds, so the harness can judge counts and dmesg.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define BYTE_ORIG	'O'
#define BYTE_NEW	'N'

/* What page->mapping holds, as the probe prints it. */
enum mapping_kind {
	MAPPING_NULL = 0,
	/* A tag, not a pointer: 6.1's PAGE_MAPPING_DAX_COW (0x1) for a shared block. */
	MAPPING_DAX_TAG = 1,
	MAPPING_FILE = 2,	/* an address_space pointer */
	MAPPING_UNKNOWN = 3,	/* no mapping field in the probe line */
};

static const char *set_clone(void *cfg, const char *arg)
{
	*(const char **)cfg = arg;
	return NULL;
}

static const struct helper_option reflink_options[] = {
	{ "clone", required_argument, true, "--clone PATH", set_clone },
	{ 0 },
};

static const struct helper_cli reflink_cli = {
	.name = "dax-reflink",
	.default_size = 16 * HELPER_PAGE_SIZE,
	.options = reflink_options,
};

/* What page->mapping of @pfn holds; fails the helper if the probe fails. */
static enum mapping_kind probe_mapping(uint64_t pfn)
{
	struct probe_state ps;

	if (probe_query(pfn, &ps) < 0)
		fail_errno("ask the probe about a PFN", "probe_query");
	if (!ps.has_mapping)
		return MAPPING_UNKNOWN;
	if (ps.mapping == 0)
		return MAPPING_NULL;
	return ps.mapping < HELPER_PAGE_SIZE ? MAPPING_DAX_TAG : MAPPING_FILE;
}

static void fill_file(int fd, uint64_t size)
{
	char buf[HELPER_PAGE_SIZE];
	uint64_t off;

	memset(buf, BYTE_ORIG, sizeof(buf));
	for (off = 0; off < size; off += sizeof(buf))
		if (pwrite(fd, buf, sizeof(buf), (off_t)off) !=
		    (ssize_t)sizeof(buf))
			fail_errno("write the source file", "pwrite");
	if (fsync(fd) < 0)
		fail_errno("flush the source file", "fsync");
}

static char *map_file(int fd, uint64_t size, const char *what)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		fail_errno(what, "mmap");
	return p;
}

int main(int argc, char **argv)
{
	const char *clone_path = NULL;
	struct helper_args args = helper_start(argc, argv, &reflink_cli,
					       &clone_path);
	uint64_t pfn_a, pfn_b, pfn_cow;
	volatile char *a, *b;
	bool dax, reported;
	struct dax_file f;
	int bfd, err;

	f = dax_file_create(&args);
	report_step("write the source file");
	fill_file(f.fd, f.size);

	report_step("FICLONE the source file");
	bfd = open(clone_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (bfd < 0)
		fail_errno("create the clone", "open");
	/*
	 * The harness runs this only on xfs made with reflink=1, so a refusal
	 * is the kernel's answer for a DAX file (xfs_reflink_remap_prep()
	 * refused all DAX files before 6.0, and still refuses to mix DAX and
	 * non-DAX), never a missing prerequisite.
	 */
	if (ioctl(bfd, FICLONE, f.fd) < 0) {
		err = errno;
		report_extra_int("ficlone_errno", err);
		fail_errnum("reflink the DAX file", "ioctl(FICLONE)", err);
	}
	if (statx_dax(bfd, &dax, &reported) < 0)
		fail_errno("check the clone for DAX", "statx");
	if (!dax)
		fail("the clone is not a DAX file");

	report_step("read-fault both files");
	a = map_file(f.fd, f.size, "map the source");
	b = map_file(bfd, f.size, "map the clone");
	report_extra_bool("read_ok", a[0] == BYTE_ORIG && b[0] == BYTE_ORIG);
	pfn_a = pfn_of((const void *)a);
	pfn_b = pfn_of((const void *)b);
	report_extra_bool("shared_pfn", pfn_a == pfn_b);
	observe("a_mapped", pfn_a);
	observe("b_mapped", pfn_b);
	report_extra_int("mapping_kind_shared", probe_mapping(pfn_b));

	report_step("write the source (CoW fault)");
	a[0] = BYTE_NEW;
	pfn_cow = pfn_of((const void *)a);
	report_extra_bool("cow_new_pfn", pfn_cow != pfn_a);
	report_extra_bool("cow_data_ok", a[0] == BYTE_NEW && b[0] == BYTE_ORIG);
	observe("a_cow", pfn_cow);
	observe("b_after_cow", pfn_b);
	report_extra_int("mapping_kind_cow", probe_mapping(pfn_cow));
	report_extra_int("mapping_kind_shared_after_cow",
			 probe_mapping(pfn_b));

	/* Truncation while mapped: the path that breaks DAX layouts. */
	report_step("truncate the source");
	if (ftruncate(f.fd, 0) < 0)
		fail_errno("truncate the source", "ftruncate");
	observe("a_truncated_cow", pfn_cow);
	observe("a_truncated_shared", pfn_b);
	report_step("truncate the clone");
	if (ftruncate(bfd, 0) < 0)
		fail_errno("truncate the clone", "ftruncate");
	observe("b_truncated", pfn_b);

	report_step("munmap both");
	if (munmap((void *)a, f.size) < 0 || munmap((void *)b, f.size) < 0)
		fail_errno("unmap the files", "munmap");
	observe("unmapped_cow", pfn_cow);
	observe("unmapped_shared", pfn_b);
	report_extra_int("mapping_kind_cow_end", probe_mapping(pfn_cow));
	report_extra_int("mapping_kind_shared_end", probe_mapping(pfn_b));
	close(bfd);
	dax_file_close(&f);
	finish_ok();
}
