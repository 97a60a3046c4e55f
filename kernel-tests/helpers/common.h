/*
 * Shared code for the dax-harness C helpers: the one-line JSON report, failure
 * and skip reporting, the timeout, PFN lookup through /proc/self/pagemap,
 * queries to the dax_probe module, and creation of the DAX test file.
 */
#ifndef DAX_HELPERS_COMMON_H
#define DAX_HELPERS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

#define HELPER_JSON_VERSION	1
#define HELPER_EXIT_OK		0
#define HELPER_EXIT_FAIL	1
#define HELPER_EXIT_SKIP	4
#define HELPER_DEFAULT_TIMEOUT	30

#define HELPER_PAGE_SIZE	4096UL
#define HELPER_PMD_SIZE		(2UL << 20)

#define PROBE_PFN_PATH		"/sys/kernel/debug/dax_probe/pfn"

/* One parsed "dax_probe v1 pfn=..." line. */
struct probe_state {
	bool valid;
	int refcount;
	int mapcount;
	int pincount;
	unsigned long flags;
	int zone_device;
	int pgmap_type;
	int order;
};

/* Names the helper in the report and installs the SIGALRM handler. */
void report_init(const char *helper);
/* Arms alarm(seconds); on expiry a fail line is printed and the process exits 1. */
void report_arm_timeout(unsigned int seconds);
/* Records what the helper is doing now (static string), for timeout reasons. */
void report_step(const char *step);
void report_set_dax(bool dax);
/* Sets (or overwrites) a number or boolean in "extra". */
void report_extra_int(const char *key, long long value);
void report_extra_bool(const char *key, bool value);
/* Appends one observation; fails the helper if the list is full. */
void report_obs(const char *phase, uint64_t pfn, const struct probe_state *ps);

/* Print the JSON line and exit 0 / 1 / 4. */
noreturn void finish_ok(void);
noreturn void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Fail or skip with "<op>: <func>: <strerror(err)>". */
noreturn void fail_errno(const char *op, const char *func);
noreturn void fail_errnum(const char *op, const char *func, int err);
noreturn void skip_errnum(const char *op, const char *func, int err);

/*
 * PFNs of @npages pages from @addr via /proc/self/pagemap. Returns 0, or -1
 * with errno ENXIO (a page not present), EPERM (PFN reads as 0: no
 * CAP_SYS_ADMIN) or the errno of open/pread.
 */
int pagemap_pfns(const void *addr, size_t npages, uint64_t *pfns);
/* Like pagemap_pfns(), but fails the helper with a precise reason on error. */
void pfns_of(const void *addr, size_t npages, uint64_t *pfns);
/* PFN of the page at @addr; fails the helper on error. */
uint64_t pfn_of(const void *addr);

/* Parses a probe line into @ps. Returns 0, or -1 with errno EPROTO. */
int probe_parse_line(const char *line, uint64_t pfn, struct probe_state *ps);
/* Asks dax_probe about @pfn. Returns 0, or -1 with errno set. */
int probe_query(uint64_t pfn, struct probe_state *ps);
/* Queries the probe without recording; fails the helper on error or valid=0. */
struct probe_state probe_or_fail(uint64_t pfn);
/* Queries the probe and records the observation; fails the helper on error. */
struct probe_state observe(const char *phase, uint64_t pfn);

/* Sets *dax from statx STATX_ATTR_DAX, *reported from stx_attributes_mask. */
int statx_dax(int fd, bool *dax, bool *reported);

/*
 * Creates @path (O_CREAT|O_TRUNC), fallocate()s @size bytes, fsyncs and checks
 * statx for DAX; fails with reason "not a DAX file" unless @allow_non_dax.
 * Returns the open O_RDWR fd.
 */
int create_test_file(const char *path, uint64_t size, bool allow_non_dax);
/* Maps @size bytes of @fd MAP_SHARED read/write at a kernel-chosen address. */
void *map_test_file(int fd, uint64_t size);

/* Reads or writes the first byte of the page at @p, faulting it in. */
void touch_page(void *p, bool write);

/* "4096", "0x1000", "64k", "2m", "1g" -> bytes. Returns 0 or -1. */
int parse_size(const char *s, uint64_t *out);
/* Decimal seconds in 1..86400. Returns 0 or -1. */
int parse_timeout(const char *s, unsigned int *out);

uint64_t now_ms(void);
void sleep_ms(unsigned int ms);

#endif
