/*
 * dax-uring-pin: try to register an fs-DAX mapping as an io_uring fixed buffer.
 * Long-term pins (FOLL_LONGTERM) of fsdax pages must be refused, since the
 * filesystem could never reclaim the blocks while the pin lasts. The register
 * return value alone proves little (6.1's io_uring refuses any file-backed
 * memory before GUP's fsdax check), so the helper also reports the FOLL_PIN
 * counters from /proc/vmstat and the page state around the attempt.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

static const struct helper_cli uring_cli = {
	.name = "dax-uring-pin",
	.default_size = HELPER_PAGE_SIZE,
};

/* 6.6+: 0 allows io_uring, 1 and 2 restrict it to a group or to nobody. */
#define URING_DISABLED_SYSCTL	"/proc/sys/kernel/io_uring_disabled"

/*
 * Ends the helper after @func (which made syscall @sys) failed with @err.
 * ENOSYS proves the kernel has no io_uring: a SKIP. EPERM from the
 * io_uring_disabled sysctl means the guest was set up wrong: an error; any
 * other EPERM (seccomp, an LSM) or errno is a FAIL.
 */
static noreturn void uring_failed(const char *op, const char *func,
				  const char *sys, int err)
{
	char val[32];

	if (err == ENOSYS)
		skip("the kernel has no io_uring (CONFIG_IO_URING off: %s returned ENOSYS)",
		     sys);
	if (err == EPERM && read_sysfs_line(URING_DISABLED_SYSCTL, val, sizeof(val)) &&
	    strcmp(val, "0") != 0) {
		fprintf(stderr, "dax-uring-pin: %s: %s: %s; " URING_DISABLED_SYSCTL " is %s\n",
			op, func, strerror(err), val);
		infra_error("io_uring is disabled by the kernel.io_uring_disabled sysctl");
	}
	fail_errnum(op, func, err);
}

/*
 * Registers an ordinary anonymous page first: if that fails, the DAX result
 * would mean nothing.
 */
static void register_control(struct io_uring *ring)
{
	struct iovec iov;
	void *anon;
	int ret;

	report_step("register anonymous control buffer");
	anon = mmap(NULL, HELPER_PAGE_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED)
		fail_errno("map anonymous control buffer", "mmap");
	touch_page(anon, true);
	iov.iov_base = anon;
	iov.iov_len = HELPER_PAGE_SIZE;
	ret = io_uring_register_buffers(ring, &iov, 1);
	report_extra_int("control_ret", ret);
	if (ret < 0)
		uring_failed("register anonymous control buffer",
			     "io_uring_register_buffers", "io_uring_register", -ret);
	ret = io_uring_unregister_buffers(ring);
	if (ret < 0)
		fail_errnum("unregister anonymous control buffer",
			    "io_uring_unregister_buffers", -ret);
	if (munmap(anon, HELPER_PAGE_SIZE) < 0)
		fail_errno("unmap anonymous control buffer", "munmap");
}

int main(int argc, char **argv)
{
	struct helper_args args = helper_start(argc, argv, &uring_cli, NULL);
	struct pin_counters before, after;
	struct io_uring ring;
	struct dax_file f;
	struct iovec iov;
	uint64_t pfn;
	int ret;

	report_step("set up io_uring");
	ret = io_uring_queue_init(4, &ring, 0);
	if (ret < 0)
		uring_failed("set up io_uring", "io_uring_queue_init", "io_uring_setup", -ret);
	register_control(&ring);

	f = dax_file_create(&args);
	dax_file_map(&f, DAX_PLACE_ANY);
	pfn = dax_file_fault_first(&f);
	observe("before", pfn);

	report_step("read FOLL_PIN counters");
	before = read_pin_counters();

	report_step("register the DAX mapping");
	iov.iov_base = f.addr;
	iov.iov_len = f.size;
	ret = io_uring_register_buffers(&ring, &iov, 1);
	report_extra_int("register_ret", ret);
	fprintf(stderr, "dax-uring-pin: io_uring_register_buffers(DAX) = %d (%s)\n",
		ret, ret < 0 ? strerror(-ret) : "registered");
	observe("after_register", pfn);
	if (ret == 0) {
		report_step("unregister the DAX mapping");
		ret = io_uring_unregister_buffers(&ring);
		if (ret < 0)
			fail_errnum("unregister the DAX mapping",
				    "io_uring_unregister_buffers", -ret);
	}

	report_step("read FOLL_PIN counters");
	after = read_pin_counters();
	report_extra_int("pin_acquired_delta", after.acquired - before.acquired);
	report_extra_int("pin_released_delta", after.released - before.released);

	dax_file_unmap(&f);
	observe("unmapped", pfn);

	io_uring_queue_exit(&ring);
	close(f.fd);
	finish_ok();
}
