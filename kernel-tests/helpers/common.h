/*
 * Shared code for the dax-harness C helpers: the command line every helper
 * shares, the one-line JSON report, failure, skip and error reporting, the
 * timeout, PFN lookup through /proc/self/pagemap, queries to the dax_probe
 * module, creation and mapping of the DAX test file, and the O_DIRECT read
 * from a slow device that pins a page. Probe queries and the report may be
 * used from several threads at once.
 */
#ifndef DAX_HELPERS_COMMON_H
#define DAX_HELPERS_COMMON_H

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>
#include <sys/types.h>

#define HELPER_JSON_VERSION	1
#define HELPER_EXIT_OK		0
#define HELPER_EXIT_FAIL	1
/* The test's environment is broken (not set up by the harness), not the kernel. */
#define HELPER_EXIT_ERROR	3
#define HELPER_EXIT_SKIP	4
#define HELPER_DEFAULT_TIMEOUT	30

#define HELPER_PAGE_SIZE	4096UL
#define HELPER_PMD_SIZE		(2UL << 20)

#define PROBE_PFN_PATH		"/sys/kernel/debug/dax_probe/pfn"
#define PROBE_SCAN_PATH		"/sys/kernel/debug/dax_probe/scan"

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
	bool has_mapping;	/* the line had a mapping= field */
	uint64_t mapping;	/* raw page->mapping (folio->mapping) */
};

/* The options every helper takes, with defaults applied. */
struct helper_args {
	const char *file;	/* --file PATH, required */
	uint64_t size;		/* --size BYTES: n * 4096, n > 0 */
	unsigned int timeout;	/* --timeout SECONDS */
	bool allow_non_dax;	/* --allow-non-dax */
};

/* One option of a helper's own, besides the common ones. */
struct helper_option {
	const char *name;	/* long name without the leading "--" */
	int has_arg;		/* no_argument or required_argument */
	bool required;		/* a usage error if absent, like --file */
	/* Its words in the usage line ("--dev BLOCKDEV"); NULL if none. */
	const char *usage;
	/* Stores it in @cfg (@arg NULL if none); NULL or a usage error. */
	const char *(*set)(void *cfg, const char *arg);
};

/* A helper's command line: the common options plus its own. */
struct helper_cli {
	const char *name;	/* "helper" in the report */
	uint64_t default_size;	/* 0: --size must be given */
	/* The helper's own options, ending with { 0 }; NULL if none. */
	const struct helper_option *options;
	/* Checks the options together at the end; NULL or a usage error. */
	const char *(*check)(void *cfg, const struct helper_args *args);
};

/*
 * Starts the helper: report_init(), parses argv, arms the timeout; @cfg is
 * handed to the helper's set() and check(). A usage error prints the usage
 * line (--file, required own options, --size, the other own options,
 * --timeout, --allow-non-dax) and fails with reason "usage: <what>". Options
 * are taken in argv order (getopt_long: unique abbreviations allowed), the
 * first unknown or malformed one or bad value failing; then come stray
 * arguments, missing required options ("--file is required", "--file and
 * --dev are required"), --size, and last cli->check.
 */
struct helper_args helper_start(int argc, char **argv,
				const struct helper_cli *cli, void *cfg);

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
/* Sets (or overwrites) a string in "extra", cut to its first 200 bytes. */
void report_extra_str(const char *key, const char *value);
/* Appends one observation; fails the helper if the list is full. Thread-safe. */
void report_obs(const char *phase, uint64_t pfn, const struct probe_state *ps);

/*
 * Print the JSON line and exit 0 / 1 / 4 / 3. skip() only when the kernel
 * provably lacks a feature; infra_error() when the harness did not set up
 * what the test needs (result "error": neither a kernel fail nor a skip).
 */
noreturn void finish_ok(void);
noreturn void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void infra_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Fail, skip or error with "<op>: <func>: <strerror(err)>". */
noreturn void fail_errno(const char *op, const char *func);
noreturn void fail_errnum(const char *op, const char *func, int err);
noreturn void skip_errnum(const char *op, const char *func, int err);
noreturn void infra_error_errnum(const char *op, const char *func, int err);

/*
 * PFNs of @npages pages from @addr via /proc/self/pagemap of the calling
 * process (also in a fork()ed child). Returns 0, or -1 with errno ENXIO (a
 * page not present), EPERM (PFN reads as 0: no CAP_SYS_ADMIN) or the errno
 * of open/pread.
 */
int pagemap_pfns(const void *addr, size_t npages, uint64_t *pfns);
/* Like pagemap_pfns(), but fails the helper with a precise reason on error. */
void pfns_of(const void *addr, size_t npages, uint64_t *pfns);
/* PFN of the page at @addr; fails the helper on error. */
uint64_t pfn_of(const void *addr);

/* Parses a probe line into @ps. Returns 0, or -1 with errno EPROTO. */
int probe_parse_line(const char *line, uint64_t pfn, struct probe_state *ps);
/* Asks dax_probe about @pfn. Returns 0, or -1 with errno set. Thread-safe. */
int probe_query(uint64_t pfn, struct probe_state *ps);
/* Queries the probe without recording; fails the helper on error or valid=0. */
struct probe_state probe_or_fail(uint64_t pfn);
/* Queries the probe and records the observation; fails the helper on error. */
struct probe_state observe(const char *phase, uint64_t pfn);
/*
 * Runs a probe range scan of @nr PFNs from @start and returns how many are
 * above refcount @idle; *valid and *below (each if not NULL) get how many
 * have a struct page and how many are below @idle (an underflow). Logs the
 * line to stderr; fails the helper on error. Thread-safe.
 */
long long probe_scan(uint64_t start, uint64_t nr, int idle, long long *valid,
		     long long *below);

/*
 * The options of a helper that unmounts its test filesystem: --dev (the slow
 * device for the O_DIRECT pin), --mountpoint (absolute; --file must be under
 * it) and --fstype (optional, checked against /proc/mounts by the helper).
 * Use mount_target_options and mount_target_check in the helper_cli, with a
 * struct mount_target as its cfg.
 */
struct mount_target {
	const char *dev;
	const char *mountpoint;
	const char *fstype;
};
extern const struct helper_option mount_target_options[];
const char *mount_target_check(void *cfg, const struct helper_args *args);

/* Reads the first line of a sysfs file (newline dropped); false with errno on error. */
bool read_sysfs_line(const char *path, char *buf, size_t len);
/* Reads a sysfs number (decimal or 0x hex); false on error. */
bool read_sysfs_u64(const char *path, uint64_t *out);
/*
 * The PFNs of a pmem block device's data area (/dev/pmemN): its
 * /sys/block/pmemN/device (the fsdax pfn device, or the raw namespace)
 * resource and size. Fails the helper if they cannot be read.
 */
void pmem_pfn_range(const char *dev, uint64_t *start, uint64_t *nr);

/*
 * Scans [start, start + nr) with the probe and reports scan_valid (PFNs with
 * a struct page), scan_above_1 and scan_above_0 (PFNs above each model's
 * idle refcount) and scan_below_1 and scan_below_0 (below it), for a judge to
 * read the ones of its model.
 */
void report_idle_scan(uint64_t start, uint64_t nr);

/* A line of /proc/mounts. */
struct mount_entry {
	char dev[256];
	char dir[512];
	char fstype[32];
};

/*
 * Finds the mount at @path (@exact) or the one holding the file @path (the
 * longest mount directory that is a proper prefix directory of it); the last
 * match in /proc/mounts wins, as it is the one visible. Returns false if none
 * matches; fails the helper if the table cannot be read.
 */
bool find_mount(const char *path, bool exact, struct mount_entry *me);

/* Sets *dax from statx STATX_ATTR_DAX, *reported from stx_attributes_mask. */
int statx_dax(int fd, bool *dax, bool *reported);

/* The test file, open O_RDWR, and its MAP_SHARED mapping once mapped. */
struct dax_file {
	int fd;
	uint64_t size;
	char *addr;		/* NULL while unmapped */
};

/* Where dax_file_map() puts the mapping. */
enum dax_placement {
	/* Where mmap() chooses (ext4/xfs: 2 MiB-aligned for large DAX maps). */
	DAX_PLACE_ANY,
	/* On a 2 MiB boundary: PMD faults possible. */
	DAX_PLACE_PMD,
	/* 4 KiB past a 2 MiB boundary: PTE faults only. */
	DAX_PLACE_PTE,
};

/*
 * Creates args->file (O_CREAT|O_TRUNC), fallocate()s args->size bytes, fsyncs
 * and checks statx for DAX; fails with reason "not a DAX file" unless
 * args->allow_non_dax. Returns it open and unmapped.
 */
struct dax_file dax_file_create(const struct helper_args *args);
/* Maps all of @f MAP_SHARED read/write at @place; fails the helper on error. */
void dax_file_map(struct dax_file *f, enum dax_placement place);
/* Write-faults the first page of the mapping and returns its PFN. */
uint64_t dax_file_fault_first(const struct dax_file *f);
/* munmap()s the mapping; fails the helper on error. */
void dax_file_unmap(struct dax_file *f);
/* Closes the file; fails the helper on error. */
void dax_file_close(struct dax_file *f);

/* Reads or writes the first byte of the page at @p, faulting it in. */
void touch_page(void *p, bool write);

/* "4096", "0x1000", "64k", "2m", "1g" -> bytes. Returns 0 or -1. */
int parse_size(const char *s, uint64_t *out);
/* Decimal seconds in 1..86400. Returns 0 or -1. */
int parse_timeout(const char *s, unsigned int *out);

/* An O_DIRECT read of @len bytes from offset 0 of @devfd into @buf. */
struct odirect_read {
	int devfd;
	void *buf;
	size_t len;
	atomic_int done;	/* set once pread() returned */
	ssize_t ret;
	int err;		/* errno of pread() */
	uint64_t t0_us, t1_us;	/* now_us() before and after pread() */
};

/* Thread body: runs the read in @arg (a struct odirect_read). */
void *odirect_read_thread(void *arg);
/*
 * Waits until the read pins @pfn (its refcount rises above @before) and
 * records phase "pinned"; fails if the read ends first or nothing is seen
 * within 1.5 s.
 */
void odirect_wait_pinned(struct odirect_read *rd, uint64_t pfn, int before);
/*
 * The start of every "pin, then take the filesystem away" scenario: opens
 * t->dev for O_DIRECT (an infra_error() if it cannot: the harness sets up
 * the slow device), creates, maps and faults the test file (phase "before";
 * its page must lie in [start, start + nr)), starts the slow read into the
 * page on *tid (phase "pinned"), then unmaps and closes the file so that
 * only the pin holds the page (phase "pinned_closed"). Returns the page's PFN.
 */
uint64_t pin_closed_page(const struct mount_target *t, const struct helper_args *args,
			 uint64_t start, uint64_t nr, struct odirect_read *io, pthread_t *tid);

/* Fails if the read failed or took under @min_ms (the device is not slow). */
void odirect_check(const struct odirect_read *rd, unsigned int min_ms);

/* The FOLL_PIN counters of /proc/vmstat (pages pinned and unpinned, ever). */
struct pin_counters {
	long long acquired;	/* nr_foll_pin_acquired */
	long long released;	/* nr_foll_pin_released */
};
/*
 * Reads them after writing /proc/sys/vm/stat_refresh: they are node counters
 * with per-CPU deltas, and a recent pin may not show otherwise. Fails the
 * helper if they cannot be read.
 */
struct pin_counters read_pin_counters(void);

uint64_t now_ms(void);
/* CLOCK_MONOTONIC in microseconds. */
uint64_t now_us(void);
void sleep_ms(unsigned int ms);
/* Waits until @flag is set (true) or now_ms() reaches @deadline_ms (false). */
bool wait_flag(atomic_int *flag, uint64_t deadline_ms);

#endif
