/*
 * dax-pin-truncate: take the blocks of an fs-DAX file away while a transient
 * pin holds one of its pages: ftruncate(), fallocate(PUNCH_HOLE) or
 * close+unlink against an O_DIRECT read from a slow device into the page, or
 * against a vmsplice()d pipe that holds it. The filesystem must not release
 * the block while it is pinned: ext4_break_layouts()/xfs_break_dax_layouts()
 * wait in dax_layout_busy_page_range() until the page is idle; a path that
 * skips the wait (an unmapped file on 6.1, eviction before 6.15's
 * dax_break_layout_final()) frees a block that DMA may still write. A wait
 * still asleep 1 s after the pin was released, with the page idle, lost its
 * wake-up: the helper records that (phase "stuck", the op's stack on stderr)
 * and ends the wait with a signal. With --reuse --fill the freed block goes
 * to a new file on a filesystem filled first, which must see zeros and an
 * idle page, nothing of the old file or of its pin.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define OLD_BYTE	0xa5	/* what the pinned page holds */
#define POLL_MS		5
#define HOLD_MS		1000	/* how long the pipe holds the page (vmsplice) */
#define SAMPLE_AFTER_MS	300	/* into the op, while the pin is held */
#define MIN_IO_MS	1000
#define REUSE_MAX_PAGES	2048	/* how far the new file may grow looking for the block */
/*
 * How long the op may go on after the pin is gone before it counts as stuck,
 * and how long it gets after a signal has interrupted its wait.
 */
#define OP_STUCK_MS	1000
#define OP_NUDGE_MS	3000
/*
 * The reading thread drops its page reference inside pread()
 * (bio_release_pages() after the bio completed), a few microseconds before
 * pread() returns and the clock is read. An op woken by that release may
 * return in that window; an op that did not wait returns >= 1 s early.
 */
#define IO_RETURN_SLACK_US	2000

enum pin_kind { PIN_ODIRECT, PIN_VMSPLICE };
enum op_kind { OP_TRUNCATE, OP_PUNCH, OP_UNLINK };

static const char *const op_names[] = { "truncate", "punch", "unlink" };

struct pin_config {
	const char *dev;
	enum pin_kind pin;
	enum op_kind op;
	bool unmap_first;
	bool reuse;
	bool fill;
};

/* The truncate, punch or unlink, run off the main thread. */
struct op_job {
	enum op_kind op;
	int fd;
	const char *path;
	uint64_t pfn;
	atomic_int *pin_done;		/* set once the pin is gone, or NULL */
	atomic_int started, done;
	pid_t tid;
	int ret, err;
	uint64_t t0_us, t1_us;
	bool pin_done_at_return;
	struct probe_state at_return;
	int probe_err;
};

static const char *set_dev(void *cfg, const char *arg)
{
	((struct pin_config *)cfg)->dev = arg;
	return NULL;
}

static const char *set_pin(void *cfg, const char *arg)
{
	struct pin_config *c = cfg;

	if (strcmp(arg, "odirect") == 0)
		c->pin = PIN_ODIRECT;
	else if (strcmp(arg, "vmsplice") == 0)
		c->pin = PIN_VMSPLICE;
	else
		return "--pin must be odirect or vmsplice";
	return NULL;
}

static const char *set_op(void *cfg, const char *arg)
{
	struct pin_config *c = cfg;
	size_t i;

	for (i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++) {
		if (strcmp(arg, op_names[i]) == 0) {
			c->op = (enum op_kind)i;
			return NULL;
		}
	}
	return "--op must be truncate, punch or unlink";
}

static const char *set_unmap_first(void *cfg, const char *arg)
{
	(void)arg;
	((struct pin_config *)cfg)->unmap_first = true;
	return NULL;
}

static const char *set_reuse(void *cfg, const char *arg)
{
	(void)arg;
	((struct pin_config *)cfg)->reuse = true;
	return NULL;
}

static const char *set_fill(void *cfg, const char *arg)
{
	(void)arg;
	((struct pin_config *)cfg)->fill = true;
	return NULL;
}

static const char *check_pin(void *cfg, const struct helper_args *args)
{
	const struct pin_config *c = cfg;

	if (c->pin == PIN_ODIRECT && !c->dev)
		return "--pin odirect needs --dev";
	/* Only the last reference to an unlinked inode frees its blocks. */
	if (c->op == OP_UNLINK && !c->unmap_first)
		return "--op unlink needs --unmap-first (a mapping keeps the inode)";
	if (c->reuse && c->op == OP_UNLINK)
		return "--reuse goes with --op truncate or punch";
	if (c->fill && !c->reuse)
		return "--fill goes with --reuse";
	if (args->size < 2 * HELPER_PAGE_SIZE)
		return "--size must be at least 2 pages";
	return NULL;
}

static const struct helper_option pin_options[] = {
	{ "dev", required_argument, false, "[--dev BLOCKDEV]", set_dev },
	{ "pin", required_argument, false, "[--pin odirect|vmsplice]", set_pin },
	{ "op", required_argument, false, "[--op truncate|punch|unlink]", set_op },
	{ "unmap-first", no_argument, false, "[--unmap-first]", set_unmap_first },
	{ "reuse", no_argument, false, "[--reuse [--fill]]", set_reuse },
	{ "fill", no_argument, false, NULL, set_fill },
	{ 0 },
};

static const struct helper_cli pin_cli = {
	.name = "dax-pin-truncate",
	.default_size = 4 * HELPER_PAGE_SIZE,
	.options = pin_options,
	.check = check_pin,
};

static void *op_thread(void *arg)
{
	struct op_job *job = arg;

	job->tid = (pid_t)syscall(SYS_gettid);
	job->t0_us = now_us();
	atomic_store(&job->started, 1);
	switch (job->op) {
	case OP_TRUNCATE:
		job->ret = ftruncate(job->fd, 0);
		break;
	case OP_PUNCH:
		job->ret = fallocate(job->fd,
				     FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				     0, (off_t)HELPER_PAGE_SIZE);
		break;
	case OP_UNLINK:
		/* The last reference goes with unlink(): that evicts the inode. */
		job->ret = close(job->fd);
		if (job->ret == 0)
			job->ret = unlink(job->path);
		break;
	}
	job->err = errno;
	job->t1_us = now_us();
	job->pin_done_at_return = job->pin_done && atomic_load(job->pin_done);
	/* The page as the op left it: still pinned if it did not wait. */
	job->probe_err = probe_query(job->pfn, &job->at_return) < 0 ? errno : 0;
	atomic_store(&job->done, 1);
	return NULL;
}

static void start_thread(pthread_t *tid, void *(*fn)(void *), void *arg,
			 const char *what)
{
	int err = pthread_create(tid, NULL, fn, arg);

	if (err)
		fail_errnum(what, "pthread_create", err);
}

static void join_thread(pthread_t tid, const char *what)
{
	int err = pthread_join(tid, NULL);

	if (err)
		fail_errnum(what, "pthread_join", err);
}

/* ext4's metadata reserve, zeroed while the filesystem is full; see below. */
static char g_resv_path[300];
static long long g_resv_saved = -1;

static void restore_ext4_reserve(void)
{
	char buf[32];
	int fd, len;

	if (g_resv_saved < 0)
		return;
	fd = open(g_resv_path, O_WRONLY | O_CLOEXEC);
	len = snprintf(buf, sizeof(buf), "%lld\n", g_resv_saved);
	if (fd < 0 || write(fd, buf, (size_t)len) != len)
		fprintf(stderr, "dax-pin-truncate: could not restore %s to %lld: %s\n",
			g_resv_path, g_resv_saved, strerror(errno));
	if (fd >= 0)
		close(fd);
	g_resv_saved = -1;
}

/*
 * ext4 keeps s_resv_clusters (2 % of the blocks, at most 4096) free for
 * metadata, anywhere on the device; data allocations may not use it, but
 * may be placed in it as long as the count holds, so with the reserve free
 * the freed block competes with 4096 others. Set it to 0 while the
 * filesystem is full (restored afterwards, also at exit). Returns quietly
 * if @file is not on ext4.
 */
static void zero_ext4_reserve(const char *file)
{
	struct mount_entry me;
	const char *name;
	char buf[32];
	ssize_t len;
	int fd;

	if (!find_mount(file, false, &me) || strcmp(me.fstype, "ext4") != 0)
		return;
	name = strrchr(me.dev, '/');
	name = name ? name + 1 : me.dev;
	snprintf(g_resv_path, sizeof(g_resv_path),
		 "/sys/fs/ext4/%s/reserved_clusters", name);
	fd = open(g_resv_path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail_errno("open ext4's reserved_clusters", "open");
	len = read(fd, buf, sizeof(buf) - 1);
	if (len <= 0)
		fail_errno("read ext4's reserved_clusters", "read");
	buf[len] = '\0';
	g_resv_saved = strtoll(buf, NULL, 10);
	if (atexit(restore_ext4_reserve) != 0)
		fail("register the reserve restore: atexit failed");
	if (pwrite(fd, "0\n", 2, 0) != 2)
		fail_errno("zero ext4's reserved_clusters", "pwrite");
	close(fd);
}

/*
 * Fills the filesystem with an unlinked, open file (fallocate, halving the
 * chunk on ENOSPC down to one page), so the next allocation has to take the
 * blocks freed after it: xfs does not hand freed blocks out again at once,
 * and ext4 places small files in per-CPU preallocations. Returns its fd;
 * closing it (or exiting) gives the space back.
 */
static int fill_filesystem(const char *file, long long *filled)
{
	char path[4096];
	struct statfs sfs;
	off_t off = 0, chunk;
	int fd;

	report_step("fill the filesystem");
	zero_ext4_reserve(file);
	snprintf(path, sizeof(path), "%s.fill", file);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		fail_errno("create the filler file", "open");
	if (unlink(path) < 0)
		fail_errno("unlink the filler file", "unlink");
	if (fstatfs(fd, &sfs) < 0)
		fail_errno("read free space", "fstatfs");
	chunk = (off_t)sfs.f_bfree * (off_t)sfs.f_bsize;
	chunk &= ~(off_t)(HELPER_PAGE_SIZE - 1);
	while (chunk >= (off_t)HELPER_PAGE_SIZE) {
		struct stat st;

		if (fallocate(fd, 0, off, chunk) == 0) {
			off += chunk;
			continue;
		}
		if (errno != ENOSPC)
			fail_errno("fill the filesystem", "fallocate");
		/* A failed call may keep what it allocated: go on from EOF. */
		if (fstat(fd, &st) < 0)
			fail_errno("stat the filler file", "fstat");
		if (st.st_size > off)
			off = st.st_size;
		chunk = (chunk / 2) & ~(off_t)(HELPER_PAGE_SIZE - 1);
	}
	if (fstatfs(fd, &sfs) < 0)
		fail_errno("read free space", "fstatfs");
	report_extra_int("fill_left_blocks", (long long)sfs.f_bfree);
	*filled = (long long)off;
	return fd;
}

/* Closes the filler and waits (bounded) for its space to come back. */
static void unfill_filesystem(int fd, const char *dir, long long filled)
{
	uint64_t deadline;
	struct statfs sfs;
	int dfd;

	report_step("give the filler's space back");
	if (close(fd) < 0)
		fail_errno("close the filler file", "close");
	restore_ext4_reserve();
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		fail_errno("open the test file's directory", "open");
	/* xfs frees an unlinked inode's blocks in the background (inodegc). */
	deadline = now_ms() + 3000;
	for (;;) {
		if (syncfs(dfd) < 0)
			fail_errno("sync the filesystem", "syncfs");
		if (fstatfs(dfd, &sfs) < 0)
			fail_errno("read free space", "fstatfs");
		if ((long long)sfs.f_bfree * (long long)sfs.f_bsize >= filled / 2)
			break;
		if (now_ms() >= deadline)
			fail("the filler's space did not come back within 3 s");
		sleep_ms(50);
	}
	close(dfd);
}

static long long count_nonzero(const char *p, size_t len, size_t skip_every)
{
	long long n = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (skip_every && i % skip_every == 0)
			continue;
		n += p[i] != 0;
	}
	return n;
}

static long long count_byte(const char *p, size_t len, unsigned char b)
{
	long long n = 0;
	size_t i;

	for (i = 0; i < len; i++)
		n += (unsigned char)p[i] == b;
	return n;
}

static sigjmp_buf g_bus_jmp;

/* A write fault that cannot allocate (ENOSPC) raises SIGBUS: stop there. */
static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(g_bus_jmp, 1);
}

/*
 * Gives the freed blocks to @fd, created and unlinked before the filesystem
 * was filled (xfs needs free space for a new inode): write-faults its pages one
 * by one until one of them is the old pinned PFN (ext4's preallocation may
 * hand out other freed blocks first), SIGBUS (no space) or REUSE_MAX_PAGES.
 * The pages must read as zeros apart from the byte written, and the reused
 * page must be at the mapped, then the idle refcount.
 */
static void reuse_blocks(int fd, uint64_t old_pfn)
{
	size_t len = REUSE_MAX_PAGES * HELPER_PAGE_SIZE;
	volatile size_t pages = 0;
	volatile bool reused = false;
	struct sigaction sa, old_sa;
	uint64_t pfn = 0;
	char *p;

	report_step("allocate the freed blocks to a new file");
	if (ftruncate(fd, (off_t)len) < 0)
		fail_errno("size the new file", "ftruncate");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		fail_errno("map the new file", "mmap");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &old_sa) < 0)
		fail_errno("install the SIGBUS handler", "sigaction");
	if (sigsetjmp(g_bus_jmp, 1) == 0) {
		while (pages < REUSE_MAX_PAGES && !reused) {
			touch_page(p + pages * HELPER_PAGE_SIZE, true);
			pages = pages + 1;
			reused = pfn_of(p + (pages - 1) * HELPER_PAGE_SIZE) == old_pfn;
		}
	}
	if (sigaction(SIGBUS, &old_sa, NULL) < 0)
		fail_errno("restore SIGBUS", "sigaction");
	if (pages == 0)
		fail("the new file could not get a single block (SIGBUS)");
	pfn = pfn_of(p + (pages - 1) * HELPER_PAGE_SIZE);
	report_extra_bool("reused_pinned_block", reused);
	report_extra_int("reuse_pages", (long long)pages);
	/* touch_page() wrote one byte at the start of each page. */
	report_extra_int("reuse_nonzero_bytes",
			 count_nonzero(p, pages * HELPER_PAGE_SIZE,
				       HELPER_PAGE_SIZE));
	report_extra_int("reuse_old_pattern_bytes",
			 count_byte(p, pages * HELPER_PAGE_SIZE, OLD_BYTE));
	observe("reuse_mapped", pfn);
	if (munmap(p, len) < 0)
		fail_errno("unmap the new file", "munmap");
	observe("reuse_unmapped", pfn);
	if (close(fd) < 0)
		fail_errno("close the new file", "close");
}

/* SIGUSR1 only interrupts a wait; SA_RESTART makes the op start over. */
static void on_nudge(int sig)
{
	(void)sig;
}

/* Copies the kernel stack of thread @tid to stderr: where the op sleeps. */
static void dump_stack_of(pid_t tid)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stack", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		fprintf(stderr, "dax-pin-truncate: stack of the blocked op:\n%s", buf);
	}
}

/*
 * Waits for the op once the pin is gone. A break-layouts wait sleeps until
 * the page's refcount falls to idle and someone calls wake_up_var() on it;
 * if the op is still asleep OP_STUCK_MS after the release with the page idle,
 * the wake-up was lost: records phase "stuck" and the stack, then interrupts
 * the sleep with a signal (the op restarts and finds the page idle).
 */
static void wait_op(struct op_job *op, pthread_t tid, const char *op_name)
{
	struct sigaction sa;
	char key[64];
	bool nudged = false;
	int err;

	report_step("wait for the op to return after the pin was released");
	if (!wait_flag(&op->done, now_ms() + OP_STUCK_MS)) {
		observe("stuck", op->pfn);
		dump_stack_of(op->tid);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_nudge;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGUSR1, &sa, NULL) < 0)
			fail_errno("install the nudge handler", "sigaction");
		report_step("interrupt the stuck op with a signal");
		err = pthread_kill(tid, SIGUSR1);
		if (err)
			fail_errnum("interrupt the stuck op", "pthread_kill", err);
		nudged = true;
		if (!wait_flag(&op->done, now_ms() + OP_NUDGE_MS))
			fail("%s still blocked %d ms after the pin was released and %d ms after a signal",
			     op_name, OP_STUCK_MS, OP_NUDGE_MS);
	}
	snprintf(key, sizeof(key), "%s_needed_signal", op_name);
	report_extra_bool(key, nudged);
	join_thread(tid, "wait for the op thread");
}

int main(int argc, char **argv)
{
	struct pin_config cfg = { .pin = PIN_ODIRECT, .op = OP_TRUNCATE };
	struct helper_args args = helper_start(argc, argv, &pin_cli, &cfg);
	const char *op_name = op_names[cfg.op];
	struct odirect_read io = { .devfd = -1 };
	struct op_job op = { .op = cfg.op };
	atomic_int pipe_drained = 0;
	struct probe_state before;
	pthread_t io_tid, op_tid;
	int pfd[2] = { -1, -1 }, fill_fd = -1, new_fd = -1;
	char new_path[4096];
	long long filled = 0;
	uint64_t pfn, t_release_us;
	struct dax_file f;
	struct stat st;
	char key[64];

	if (cfg.pin == PIN_ODIRECT) {
		report_step("open block device");
		io.devfd = open(cfg.dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
		/* The harness sets up the slow device: missing, it is not the kernel's fault. */
		if (io.devfd < 0)
			infra_error("open %s with O_DIRECT: open: %s", cfg.dev,
				    strerror(errno));
	}

	f = dax_file_create(&args);
	if (fstat(f.fd, &st) < 0)
		fail_errno("stat test file", "fstat");
	report_extra_int("blocks_before", (long long)st.st_blocks);
	dax_file_map(&f, DAX_PLACE_ANY);
	pfn = dax_file_fault_first(&f);
	memset(f.addr, OLD_BYTE, HELPER_PAGE_SIZE);
	if (cfg.reuse) {
		snprintf(new_path, sizeof(new_path), "%s.new", args.file);
		new_fd = open(new_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (new_fd < 0)
			fail_errno("create the new file", "open");
		/*
		 * Unlinked at once (the fd keeps it), so that it goes away with
		 * the helper: left behind, its blocks steer later allocations
		 * off 2 MiB alignment on ext4.
		 */
		if (unlink(new_path) < 0)
			fail_errno("unlink the new file", "unlink");
		if (cfg.fill)
			fill_fd = fill_filesystem(args.file, &filled);
	}
	before = observe("before", pfn);

	/* Pin the first page. */
	if (cfg.pin == PIN_ODIRECT) {
		io.buf = f.addr;
		io.len = HELPER_PAGE_SIZE;
		report_step("start the O_DIRECT read");
		start_thread(&io_tid, odirect_read_thread, &io,
			     "start the I/O thread");
		odirect_wait_pinned(&io, pfn, before.refcount);
	} else {
		struct iovec iov = { f.addr, HELPER_PAGE_SIZE };
		ssize_t n;

		report_step("vmsplice the page into a pipe");
		if (pipe2(pfd, O_CLOEXEC) < 0)
			fail_errno("create a pipe", "pipe2");
		n = vmsplice(pfd[1], &iov, 1, 0);
		if (n < 0)
			fail_errno("vmsplice the page into a pipe", "vmsplice");
		if (n != (ssize_t)HELPER_PAGE_SIZE)
			fail("vmsplice took %zd of %lu bytes", n, HELPER_PAGE_SIZE);
		observe("pinned", pfn);
	}

	if (cfg.unmap_first) {
		dax_file_unmap(&f);
		observe("pinned_unmapped", pfn);
	}

	/* Take the blocks away while the pin is held. */
	op.fd = f.fd;
	op.path = args.file;
	op.pfn = pfn;
	op.pin_done = cfg.pin == PIN_ODIRECT ? &io.done : &pipe_drained;
	atomic_init(&op.started, 0);
	atomic_init(&op.done, 0);
	report_step(cfg.op == OP_TRUNCATE ? "truncate while pinned" :
		    cfg.op == OP_PUNCH ? "punch a hole while pinned" :
		    "close and unlink while pinned");
	start_thread(&op_tid, op_thread, &op, "start the op thread");
	if (!wait_flag(&op.started, now_ms() + 1000))
		fail("the op thread did not start within 1 s");
	sleep_ms(SAMPLE_AFTER_MS);
	if (!atomic_load(&op.done) && !atomic_load(op.pin_done))
		observe("during_op", pfn);

	/* Release the pin. */
	if (cfg.pin == PIN_ODIRECT) {
		report_step("wait for the O_DIRECT read");
		join_thread(io_tid, "wait for the I/O thread");
		t_release_us = io.t1_us > IO_RETURN_SLACK_US ?
			       io.t1_us - IO_RETURN_SLACK_US : 0;
		report_extra_int("io_ms", (long long)(io.t1_us - io.t0_us) / 1000);
		report_extra_int("io_ret", io.ret < 0 ? -io.err : (long long)io.ret);
	} else {
		char buf[HELPER_PAGE_SIZE];
		ssize_t n;
		uint64_t hold_end = now_ms() + (HOLD_MS - SAMPLE_AFTER_MS);

		while (now_ms() < hold_end && !atomic_load(&op.done))
			sleep_ms(POLL_MS);
		report_step("drain the pipe");
		t_release_us = now_us();
		n = read(pfd[0], buf, sizeof(buf));
		if (n < 0)
			fail_errno("drain the pipe", "read");
		atomic_store(&pipe_drained, 1);
		report_extra_int("held_ms",
				 (long long)(t_release_us - op.t0_us) / 1000);
		report_extra_int("drained_bytes", n);
		report_extra_int("drained_old_bytes",
				 count_byte(buf, (size_t)n, OLD_BYTE));
		close(pfd[0]);
		close(pfd[1]);
	}

	wait_op(&op, op_tid, op_name);
	if (op.probe_err)
		fail_errnum("probe the page when the op returned", "probe_query",
			    op.probe_err);
	report_obs("op_returned", pfn, &op.at_return);
	snprintf(key, sizeof(key), "%s_ms", op_name);
	report_extra_int(key, (long long)(op.t1_us - op.t0_us) / 1000);
	snprintf(key, sizeof(key), "%s_ret", op_name);
	report_extra_int(key, op.ret < 0 ? -op.err : op.ret);
	snprintf(key, sizeof(key), "%s_finished_after_%s", op_name,
		 cfg.pin == PIN_ODIRECT ? "io" : "drain");
	report_extra_bool(key, op.pin_done_at_return || op.t1_us >= t_release_us);
	/* From the pin's release (pread() returned, or read() of the pipe began). */
	snprintf(key, sizeof(key), "%s_wake_ms", op_name);
	report_extra_int(key, ((long long)op.t1_us -
			       (long long)(cfg.pin == PIN_ODIRECT ? io.t1_us :
					   t_release_us)) / 1000);

	report_step("probe after the op and the pin");
	observe("after", pfn);
	if (cfg.op != OP_UNLINK) {
		if (fstat(f.fd, &st) < 0)
			fail_errno("stat test file", "fstat");
		report_extra_int("size_after", (long long)st.st_size);
		report_extra_int("blocks_after", (long long)st.st_blocks);
		/*
		 * Commit the free: ext4 gives freed data blocks back to its
		 * allocator only when the transaction that freed them commits,
		 * and fsync() of the emptied file did not wait for that one.
		 */
		if (syncfs(f.fd) < 0)
			fail_errno("commit the op", "syncfs");
		if (f.addr)
			dax_file_unmap(&f);
		dax_file_close(&f);
	}
	observe("end", pfn);

	if (cfg.reuse) {
		char dir[4096], *slash;

		reuse_blocks(new_fd, pfn);
		if (cfg.fill) {
			snprintf(dir, sizeof(dir), "%s", args.file);
			slash = strrchr(dir, '/');
			if (slash && slash != dir)
				*slash = '\0';
			unfill_filesystem(fill_fd, dir, filled);
		}
	}
	if (io.devfd >= 0)
		close(io.devfd);

	if (cfg.pin == PIN_ODIRECT)
		odirect_check(&io, MIN_IO_MS);
	finish_ok();
}
