/*
 * dax-map-sync: mmap(MAP_SHARED_VALIDATE|MAP_SYNC) is the fs-DAX promise that
 * a write fault returns only once the file's metadata for that block is
 * durable (dax_fault_is_synchronous() -> VM_FAULT_NEEDDSYNC ->
 * dax_finish_sync_fault()). This helper maps a DAX file that way, write-faults
 * it on fresh (unwritten) blocks so the fault must sync, and reports the page
 * while mapped and after munmap; it also asks for MAP_SYNC on a non-DAX file,
 * which the kernel must refuse with EOPNOTSUPP.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE	0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC		0x80000
#endif

#define SYNC_FLAGS	(MAP_SHARED_VALIDATE | MAP_SYNC)

static const char *set_nondax(void *cfg, const char *arg)
{
	*(const char **)cfg = arg;
	return NULL;
}

static const struct helper_option sync_options[] = {
	{ "nondax-file", required_argument, true, "--nondax-file PATH",
	  set_nondax },
	{ 0 },
};

/* 64 KiB: under 2 MiB, so no PMD fault is possible and PTE faults are seen. */
static const struct helper_cli sync_cli = {
	.name = "dax-map-sync",
	.default_size = 16 * HELPER_PAGE_SIZE,
	.options = sync_options,
};

/*
 * Asks for MAP_SYNC on a file that is not DAX (tmpfs in the guest). Returns
 * the errno of the refusal, or 0 if the kernel accepted it.
 */
static int map_sync_nondax(const char *path, bool *nondax_is_dax)
{
	bool dax = false, reported;
	void *p;
	int fd, err;

	report_step("create the non-DAX file");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail_errno("create the non-DAX file", "open");
	if (ftruncate(fd, (off_t)HELPER_PAGE_SIZE) < 0)
		fail_errno("size the non-DAX file", "ftruncate");
	if (statx_dax(fd, &dax, &reported) < 0)
		fail_errno("check the non-DAX file", "statx");
	*nondax_is_dax = dax;

	report_step("mmap MAP_SYNC on the non-DAX file");
	p = mmap(NULL, HELPER_PAGE_SIZE, PROT_READ | PROT_WRITE, SYNC_FLAGS,
		 fd, 0);
	err = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED && munmap(p, HELPER_PAGE_SIZE) < 0)
		fail_errno("unmap the non-DAX file", "munmap");
	close(fd);
	unlink(path);
	return err;
}

int main(int argc, char **argv)
{
	const char *nondax = NULL;
	struct helper_args args = helper_start(argc, argv, &sync_cli, &nondax);
	bool nondax_is_dax = false;
	struct dax_file f;
	struct stat st;
	uint64_t pfn;
	void *p;
	int err;

	f = dax_file_create(&args);
	if (fstat(f.fd, &st) < 0)
		fail_errno("stat test file", "fstat");
	/* The judge picks this file's events out of the fs_dax trace by inode. */
	report_extra_int("ino", (long long)st.st_ino);

	report_step("mmap MAP_SYNC on the DAX file");
	p = mmap(NULL, f.size, PROT_READ | PROT_WRITE, SYNC_FLAGS, f.fd, 0);
	err = p == MAP_FAILED ? errno : 0;
	report_extra_int("map_sync_errno", err);

	report_extra_int("nondax_map_sync_errno",
			 map_sync_nondax(nondax, &nondax_is_dax));
	report_extra_bool("nondax_is_dax", nondax_is_dax);

	if (err) {
		/* Nothing to fault: the judge fails on map_sync_errno. */
		dax_file_close(&f);
		finish_ok();
	}
	f.addr = p;

	/*
	 * dax_file_create() left the blocks allocated but unwritten: this
	 * first write converts them, so the filesystem has metadata to commit
	 * and the fault must take the synchronous path.
	 */
	pfn = dax_file_fault_first(&f);
	observe("mapped", pfn);
	dax_file_unmap(&f);
	observe("unmapped", pfn);
	dax_file_close(&f);
	finish_ok();
}
