/*
 * dax-ns-disable-pinned: disabling the fsdax namespace under a filesystem
 * tears down its dev_pagemap (memunmap_pages()) and, for a namespace with its
 * memmap in RAM (ndctl -M mem), frees the struct pages. A page still pinned by
 * in-flight DMA (here an O_DIRECT read from a slow device, after munmap,
 * close and umount) must keep that teardown waiting, or the disable must be
 * refused; otherwise the I/O completes into, and put_page()s, a struct page
 * that no longer exists.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NDCTL			"/usr/bin/ndctl"
/* Longer than the other helpers': two ndctl runs and a mount under TCG. */
#define NS_DEFAULT_TIMEOUT	60
#define MIN_IO_MS		1000
/*
 * One ndctl run: its sysfs walk takes a few hundred ms under TCG; a teardown
 * that rightly waits for the pin adds at most the rest of the 2 s read.
 */
#define NDCTL_MAX_MS		15000
/* null_blk completes the read 2 s after submission; this is far past it. */
#define IO_MAX_MS		10000
/* For /dev/pmemN to come back after enable-namespace. */
#define BLOCKDEV_MAX_MS		10000
#define POLL_MS			20
/* ndctl says a line or two; the tail is kept, where its verdict is. */
#define NDCTL_OUT_MAX		4096

/* One run of `ndctl VERB NAMESPACE`, in a thread so that the wait is bounded. */
struct ndctl_run {
	const char *verb;
	const char *ns;
	atomic_int *io_done;	/* the read's done flag, sampled at exit; may be NULL */
	atomic_int done;
	int status;		/* exit status, 128 + signal, or -errno of pipe/fork/waitpid */
	uint64_t t0_us, t1_us;
	bool io_done_at_exit;
	/* The last NDCTL_OUT_MAX bytes of its stdout and stderr together. */
	char out[NDCTL_OUT_MAX + 1];
	size_t out_len;
};

static const struct helper_cli ns_cli = {
	.name = "dax-ns-disable-pinned",
	.default_size = HELPER_PAGE_SIZE,
	.options = mount_target_options,
	.check = mount_target_check,
};

/*
 * Whether argv sets --timeout: helper_start() applies the common default
 * (30 s) otherwise, and this helper wants its own. getopt_long takes any
 * unique abbreviation; "--t" is one only --timeout has here.
 */
static bool timeout_given(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		size_t n = strcspn(argv[i], "=");

		if (strcmp(argv[i], "--") == 0)
			break;
		if (n > 2 && strncmp(argv[i], "--timeout", n) == 0)
			return true;
	}
	return false;
}

static const char *dev_name(const char *dev)
{
	const char *name = strrchr(dev, '/');

	return name ? name + 1 : dev;
}

/* "namespace<region>.<index>", as ndctl names namespaces. */
static bool is_namespace_name(const char *s)
{
	static const char prefix[] = "namespace";
	size_t a, b;

	if (strncmp(s, prefix, sizeof(prefix) - 1) != 0)
		return false;
	s += sizeof(prefix) - 1;
	a = strspn(s, "0123456789");
	if (a == 0 || s[a] != '.')
		return false;
	b = strspn(s + a + 1, "0123456789");
	return b > 0 && s[a + 1 + b] == '\0';
}

/*
 * Finds the namespace under block device @dev. A raw namespace owns its
 * disk; in fsdax mode the disk hangs off a pfn device, which is a child of
 * the region, not of the namespace, and names the namespace it claims in its
 * "namespace" attribute. Returns false (reason on stderr) if neither works.
 */
static bool namespace_of(const char *dev, char *ns, size_t len)
{
	char link[512], real[PATH_MAX], attr[PATH_MAX + 16], name[64];
	const char *base;

	snprintf(link, sizeof(link), "/sys/block/%s/device", dev_name(dev));
	if (!realpath(link, real)) {
		fprintf(stderr, "dax-ns-disable-pinned: realpath %s: %s\n", link,
			strerror(errno));
		return false;
	}
	fprintf(stderr, "dax-ns-disable-pinned: %s -> %s\n", link, real);
	base = strrchr(real, '/');
	base = base ? base + 1 : real;
	if (is_namespace_name(base))
		return (size_t)snprintf(ns, len, "%s", base) < len;
	snprintf(attr, sizeof(attr), "%s/namespace", real);
	if (!read_sysfs_line(attr, name, sizeof(name))) {
		fprintf(stderr, "dax-ns-disable-pinned: %s is no namespace and %s cannot be read: %s\n",
			real, attr, strerror(errno));
		return false;
	}
	if (!is_namespace_name(name)) {
		fprintf(stderr, "dax-ns-disable-pinned: %s names no namespace: \"%s\"\n",
			attr, name);
		return false;
	}
	return (size_t)snprintf(ns, len, "%s", name) < len;
}

/* Appends @n bytes of ndctl's output to run->out, dropping the oldest. */
static void keep_output(struct ndctl_run *run, const char *p, size_t n)
{
	size_t drop;

	if (n >= NDCTL_OUT_MAX) {
		p += n - NDCTL_OUT_MAX;
		n = NDCTL_OUT_MAX;
		run->out_len = 0;
	} else if (run->out_len + n > NDCTL_OUT_MAX) {
		drop = run->out_len + n - NDCTL_OUT_MAX;
		memmove(run->out, run->out + drop, run->out_len - drop);
		run->out_len -= drop;
	}
	memcpy(run->out + run->out_len, p, n);
	run->out_len += n;
	run->out[run->out_len] = '\0';
}

/*
 * Reads ndctl's output from @fd until EOF (ndctl exited), copying it to
 * stderr as it comes, so the diagnostics are what they were before it was
 * captured, even if ndctl hangs.
 */
static void drain_output(struct ndctl_run *run, int fd)
{
	char chunk[512];
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		fwrite(chunk, 1, (size_t)n, stderr);
		keep_output(run, chunk, (size_t)n);
	}
}

static void *ndctl_thread(void *arg)
{
	struct ndctl_run *run = arg;
	char *const argv[] = { (char *)NDCTL, (char *)run->verb, (char *)run->ns, NULL };
	static const char exec_failed[] = "dax-ns-disable-pinned: execve " NDCTL " failed\n";
	int pfd[2], st = 0, err;
	pid_t pid, w;

	run->t0_us = now_us();
	/* O_CLOEXEC: the pipe must reach no child but this ndctl (EOF needs every writer gone). */
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		run->status = -errno;
		goto out;
	}
	pid = fork();
	if (pid == 0) {
		/*
		 * Only async-signal-safe calls between fork and exec (the
		 * parent has threads). stdout carries the report alone, so
		 * ndctl's stdout and stderr both go to the pipe (dup2()
		 * clears O_CLOEXEC on the copies); the parent reads them to
		 * tell a refusal from a failure.
		 */
		if (dup2(pfd[1], STDOUT_FILENO) >= 0 && dup2(pfd[1], STDERR_FILENO) >= 0)
			execve(NDCTL, argv, environ);
		if (write(STDERR_FILENO, exec_failed, sizeof(exec_failed) - 1) < 0)
			_exit(127);
		_exit(127);
	}
	err = errno;
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		run->status = -err;
		goto out;
	}
	drain_output(run, pfd[0]);
	close(pfd[0]);
	do
		w = waitpid(pid, &st, 0);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		run->status = -errno;
	else if (WIFEXITED(st))
		run->status = WEXITSTATUS(st);
	else
		run->status = 128 + WTERMSIG(st);
out:
	run->t1_us = now_us();
	if (run->io_done)
		run->io_done_at_exit = atomic_load(run->io_done);
	atomic_store(&run->done, 1);
	return NULL;
}

/*
 * Runs `ndctl VERB NS` (output kept in run->out and copied to stderr) and
 * waits up to NDCTL_MAX_MS for it; fails the helper if it cannot be run or
 * is still running then.
 */
static void run_ndctl(struct ndctl_run *run, const char *verb, const char *ns,
		      atomic_int *io_done)
{
	pthread_t tid;
	int err;

	run->verb = verb;
	run->ns = ns;
	run->io_done = io_done;
	fprintf(stderr, "dax-ns-disable-pinned: %s %s %s\n", NDCTL, verb, ns);
	err = pthread_create(&tid, NULL, ndctl_thread, run);
	if (err)
		fail_errnum("start the ndctl thread", "pthread_create", err);
	if (!wait_flag(&run->done, now_ms() + NDCTL_MAX_MS))
		fail("ndctl %s %s still running after %d ms (blocked in the kernel?)",
		     verb, ns, NDCTL_MAX_MS);
	err = pthread_join(tid, NULL);
	if (err)
		fail_errnum("wait for the ndctl thread", "pthread_join", err);
	if (run->status < 0)
		fail_errnum("run " NDCTL, "pipe/fork/waitpid", -run->status);
	fprintf(stderr, "dax-ns-disable-pinned: ndctl %s %s: exit %d after %" PRIu64 " ms\n",
		verb, ns, run->status, (run->t1_us - run->t0_us) / 1000);
}

/*
 * Whether ndctl said it refused because the namespace is in use. ndctl 76
 * disable-namespace prints "error disabling namespaces: Device or resource
 * busy" when the exclusive open of the block device fails with EBUSY;
 * create/destroy say "<ns> is active, specify --force ...".
 */
static bool output_busy(const struct ndctl_run *run)
{
	return strcasestr(run->out, "is active") || strcasestr(run->out, "busy");
}

/* Copies the last line of run->out with something but blanks in it to @buf (or ""). */
static void output_last_line(const struct ndctl_run *run, char *buf, size_t len)
{
	const char *p = run->out, *line = NULL, *end = NULL;

	while (*p) {
		const char *s = p + strspn(p, " \t\r");
		const char *e = s + strcspn(s, "\n");
		const char *t = e;

		while (t > s && strchr(" \t\r", t[-1]))
			t--;
		if (t > s) {
			line = s;
			end = t;
		}
		p = *e ? e + 1 : e;
	}
	if (!line)
		line = end = "";
	snprintf(buf, len, "%.*s", (int)(end - line), line);
}

/* Waits until @dev is a block device again with its sysfs range readable. */
static bool wait_blockdev(const char *dev)
{
	uint64_t deadline = now_ms() + BLOCKDEV_MAX_MS;
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/block/%s/device/resource", dev_name(dev));
	for (;;) {
		if (stat(dev, &st) == 0 && S_ISBLK(st.st_mode) &&
		    access(path, R_OK) == 0)
			return true;
		if (now_ms() >= deadline)
			return false;
		sleep_ms(POLL_MS);
	}
}

/*
 * Mounts the filesystem again and checks that a new file on it is DAX. A
 * failed mount is recorded for the judge, not a helper failure: it is what
 * the kernel did to the namespace.
 */
static void remount(const struct mount_entry *me, const char *mountpoint,
		    const char *file)
{
	char path[PATH_MAX];
	bool dax, reported;
	int fd, ret;

	report_step("mount the filesystem again");
	ret = mount(me->dev, mountpoint, me->fstype, 0, "dax=always") < 0 ? -errno : 0;
	report_extra_int("remount_ret", ret);
	if (ret < 0) {
		fprintf(stderr,
			"dax-ns-disable-pinned: REMOUNT FAILED: mount -t %s -o dax=always %s %s: %s\n",
			me->fstype, me->dev, mountpoint, strerror(-ret));
		return;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s.remount", file) >= sizeof(path))
		fail("--file is too long");
	report_step("create a file on the remounted filesystem");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail_errno("create a file on the remounted filesystem", "open");
	if (pwrite(fd, "dax", 3, 0) != 3)
		fail_errno("write a file on the remounted filesystem", "pwrite");
	if (fsync(fd) < 0)
		fail_errno("flush a file on the remounted filesystem", "fsync");
	if (statx_dax(fd, &dax, &reported) < 0)
		fail_errno("check the new file for DAX", "statx");
	close(fd);
	report_extra_bool("remounted_dax", dax);
	if (!dax)
		fprintf(stderr,
			"dax-ns-disable-pinned: %s is mounted again but %s is not DAX\n",
			mountpoint, path);
}

/* Twenty extra fields when the disable is refused, of the 32 common.c keeps (MAX_EXTRA). */
int main(int argc, char **argv)
{
	struct mount_target cfg = { 0 };
	struct helper_args args = helper_start(argc, argv, &ns_cli, &cfg);
	struct odirect_read io = { .devfd = -1 };
	struct ndctl_run dis = { 0 }, retry = { 0 }, en = { 0 };
	struct mount_entry me;
	uint64_t start, nr, start2, nr2, pfn, t0;
	pthread_t io_tid;
	char ns[64], msg[NDCTL_OUT_MAX + 1];
	int err, ret;

	if (!timeout_given(argc, argv))
		report_arm_timeout(NS_DEFAULT_TIMEOUT);

	/* Everything that can be missing is checked while the filesystem is mounted. */
	report_step("find ndctl");
	if (access(NDCTL, X_OK) < 0)
		fail("ndctl is needed to disable the namespace: access %s: %s",
		     NDCTL, strerror(errno));

	report_step("find the filesystem and its namespace");
	if (!find_mount(cfg.mountpoint, true, &me))
		fail("%s is not mounted", cfg.mountpoint);
	if (cfg.fstype && strcmp(cfg.fstype, me.fstype) != 0)
		fail("%s is %s, not %s", cfg.mountpoint, me.fstype, cfg.fstype);
	if (!namespace_of(me.dev, ns, sizeof(ns)))
		fail("cannot find the namespace of %s (mounted at %s) in /sys/block",
		     me.dev, cfg.mountpoint);
	/* The judge needs only that it was found: the name goes to stderr. */
	report_extra_bool("ns_found", true);
	pmem_pfn_range(me.dev, &start, &nr);
	fprintf(stderr, "dax-ns-disable-pinned: %s (%s) on %s, %s: pfn 0x%" PRIx64 " + %" PRIu64 "\n",
		cfg.mountpoint, me.fstype, me.dev, ns, start, nr);

	pfn = pin_closed_page(&cfg, &args, start, nr, &io, &io_tid);

	/*
	 * From here to the remount a failure leaves the filesystem unmounted or
	 * the namespace disabled: the harness replaces the guest after this test.
	 */
	report_step("umount while pinned");
	t0 = now_us();
	ret = umount2(cfg.mountpoint, 0) < 0 ? -errno : 0;
	report_extra_int("umount_ms", (long long)(now_us() - t0) / 1000);
	report_extra_int("umount_ret", ret);
	if (ret == -EBUSY) {
		/* Refused while pinned (sound): with the pin gone it must go through. */
		report_step("wait for the O_DIRECT read after umount EBUSY");
		if (!wait_flag(&io.done, now_ms() + IO_MAX_MS))
			fail("the O_DIRECT read has not completed %d ms after umount returned EBUSY",
			     IO_MAX_MS);
		report_step("umount again after EBUSY");
		if (umount2(cfg.mountpoint, 0) < 0)
			fail_errno("umount again after the read completed", "umount2");
	} else if (ret < 0) {
		fail_errnum("umount while pinned", "umount2", -ret);
	}
	/* Still pinned here unless umount waited for the read (or refused). */
	observe("unmounted", pfn);

	report_step("ndctl disable-namespace");
	report_extra_bool("io_in_flight_at_disable", !atomic_load(&io.done));
	run_ndctl(&dis, "disable-namespace", ns, &io.done);
	report_extra_int("disable_ret", dis.status);
	report_extra_int("disable_ms", (long long)(dis.t1_us - dis.t0_us) / 1000);
	/* A non-zero exit is a sound refusal only if ndctl said the namespace is in use. */
	report_extra_bool("disable_busy", output_busy(&dis));
	output_last_line(&dis, msg, sizeof(msg));
	report_extra_str("disable_msg", msg);

	report_step("wait for the O_DIRECT read");
	if (!wait_flag(&io.done, now_ms() + IO_MAX_MS))
		fail("the O_DIRECT read has not completed %d ms after the namespace disable",
		     IO_MAX_MS);
	err = pthread_join(io_tid, NULL);
	if (err)
		fail_errnum("wait for the I/O thread", "pthread_join", err);
	report_extra_int("io_ms", (long long)(io.t1_us - io.t0_us) / 1000);
	report_extra_int("io_ret", io.ret < 0 ? -io.err : (long long)io.ret);
	/* The exit was seen after the read returned, or timed after it. */
	report_extra_bool("disable_finished_after_io",
			  dis.io_done_at_exit || dis.t1_us >= io.t1_us);

	if (dis.status != 0) {
		/* Refused while pinned (sound): with the pin gone it must go through. */
		report_step("ndctl disable-namespace again");
		run_ndctl(&retry, "disable-namespace", ns, NULL);
		report_extra_int("disable_retry_ret", retry.status);
	}

	report_step("ndctl enable-namespace");
	run_ndctl(&en, "enable-namespace", ns, NULL);
	report_extra_int("enable_ret", en.status);

	report_step("wait for the block device");
	if (!wait_blockdev(me.dev))
		fail("%s is not back %d ms after ndctl enable-namespace %s (exit %d)",
		     me.dev, BLOCKDEV_MAX_MS, ns, en.status);

	/* The re-enabled namespace has a new pgmap: nothing may be above idle in it. */
	report_step("scan the re-enabled namespace's pages");
	pmem_pfn_range(me.dev, &start2, &nr2);
	if (start2 != start || nr2 != nr)
		fprintf(stderr, "dax-ns-disable-pinned: %s's range moved: pfn 0x%" PRIx64 " + %" PRIu64 "\n",
			me.dev, start2, nr2);
	if (pfn < start2 || pfn >= start2 + nr2)
		fail("the test page 0x%" PRIx64 " is outside the re-enabled %s's range 0x%" PRIx64 "+%" PRIu64,
		     pfn, me.dev, start2, nr2);
	observe("reenabled", pfn);
	report_idle_scan(start2, nr2);

	remount(&me, cfg.mountpoint, args.file);
	close(io.devfd);

	odirect_check(&io, MIN_IO_MS);
	finish_ok();
}
