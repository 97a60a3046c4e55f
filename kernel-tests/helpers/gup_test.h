/*
 * The ABI of /sys/kernel/debug/gup_test (CONFIG_GUP_TEST). mm/gup_test.h is
 * not a uapi header, so it is restated here, as the kselftest does; it has
 * been stable since 5.11.
 */
#ifndef DAX_HELPERS_GUP_TEST_H
#define DAX_HELPERS_GUP_TEST_H
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

#endif
