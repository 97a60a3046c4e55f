/*
 * The ABI of /sys/kernel/debug/gup_test (CONFIG_GUP_TEST). mm/gup_test.h is
 * not a uapi header, so it is restated here, as the kselftest does; it has
 * been stable since 5.11.
 */
#ifndef DAX_HELPERS_GUP_TEST_H
#define DAX_HELPERS_GUP_TEST_H
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>

#define GUP_TEST_MAX_PAGES_TO_DUMP	8
struct gup_test {
	uint64_t get_delta_usec;
	uint64_t put_delta_usec;
	uint64_t addr;
	uint64_t size;		/* in: bytes to take; out: bytes taken before the first failure */
	uint32_t nr_pages_per_call;
	uint32_t gup_flags;
	uint32_t test_flags;
	uint32_t which_pages[GUP_TEST_MAX_PAGES_TO_DUMP];
};
#define PIN_LONGTERM_BENCHMARK	_IOWR('g', 3, struct gup_test)
#define GUP_BASIC_TEST		_IOWR('g', 4, struct gup_test)
#define PIN_BASIC_TEST		_IOWR('g', 5, struct gup_test)
#define DUMP_USER_PAGES_TEST	_IOWR('g', 6, struct gup_test)
#define DEBUGFS_DIR		"/sys/kernel/debug"
#define GUP_TEST_PATH		DEBUGFS_DIR "/gup_test"

/* Whether debugfs itself is mounted on DEBUGFS_DIR (not just the empty directory). */
static inline bool debugfs_mounted(void)
{
	struct statfs sfs;

	return statfs(DEBUGFS_DIR, &sfs) == 0 && sfs.f_type == DEBUGFS_MAGIC;
}

/*
 * Opens gup_test. A missing file proves the kernel has no CONFIG_GUP_TEST
 * (a SKIP) only with debugfs mounted; without it the harness's guest setup
 * is broken (an infra_error()). Any other error is a FAIL.
 */
static inline int gup_test_open(void)
{
	int fd, err;

	report_step("open gup_test");
	fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		if (err != ENOENT)
			fail_errnum("open " GUP_TEST_PATH, "open", err);
		if (!debugfs_mounted())
			infra_error("open " GUP_TEST_PATH ": debugfs is not mounted on "
				    DEBUGFS_DIR);
		skip("the kernel has no CONFIG_GUP_TEST: " GUP_TEST_PATH
		     " is missing with debugfs mounted");
	}
	return fd;
}

#endif
