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
#include <stdint.h>
#include <sys/ioctl.h>

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
#define GUP_TEST_PATH		"/sys/kernel/debug/gup_test"

/* Opens gup_test; a kernel without CONFIG_GUP_TEST is a SKIP, any other error a FAIL. */
static inline int gup_test_open(void)
{
	int fd;

	report_step("open gup_test");
	fd = open(GUP_TEST_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			skip("the kernel has no CONFIG_GUP_TEST (" GUP_TEST_PATH " is missing)");
		fail_errno("open " GUP_TEST_PATH, "open");
	}
	return fd;
}

#endif
