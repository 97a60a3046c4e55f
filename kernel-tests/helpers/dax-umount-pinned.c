/*
 * dax-umount-pinned: unmount an fs-DAX filesystem while an O_DIRECT read
 * from a slow device still holds one of its pages, after the file was
 * unmapped and closed. Unmount evicts the inode; eviction must not drop the
 * page from the file while it is pinned (6.15 added dax_break_layout_final()
 * to ext4/xfs eviction for that; 6.1 goes straight to
 * truncate_inode_pages_final()). Unmount must wait for the pin or refuse with
 * EBUSY, no page of the namespace may stay above idle, and the filesystem is
 * mounted again (-o dax=always) so that later tests find it.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIN_IO_MS	1000
/* How long umount may take once the pin is gone before it counts as stuck. */
#define UMOUNT_GRACE_MS	5000

struct umount_job {
	const char *mountpoint;
	uint64_t pfn;
	atomic_int *io_done;
	atomic_int done;
	int ret, err;
	uint64_t t0_us, t1_us;
	bool io_done_at_return;
	struct probe_state at_return;
	int probe_err;
};

/* Set while the filesystem is unmounted, for the exit-time safety net. */
static struct mount_entry g_unmounted;
static const char *volatile g_unmounted_at;

static const struct helper_cli umount_cli = {
	.name = "dax-umount-pinned",
	.default_size = HELPER_PAGE_SIZE,
	.options = mount_target_options,
	.check = mount_target_check,
};

static void *umount_thread(void *arg)
{
	struct umount_job *job = arg;

	job->t0_us = now_us();
	job->ret = umount2(job->mountpoint, 0);
	job->err = errno;
	if (job->ret == 0)
		g_unmounted_at = job->mountpoint;
	job->t1_us = now_us();
	job->io_done_at_return = atomic_load(job->io_done);
	job->probe_err = probe_query(job->pfn, &job->at_return) < 0 ? errno : 0;
	atomic_store(&job->done, 1);
	return NULL;
}

/*
 * If the helper fails between umount and remount, mount the filesystem
 * again on the way out (exit() runs this after the report was printed).
 */
static void remount_at_exit(void)
{
	if (!g_unmounted_at)
		return;
	if (mount(g_unmounted.dev, g_unmounted_at, g_unmounted.fstype, 0,
		  "dax=always") < 0)
		fprintf(stderr,
			"dax-umount-pinned: REMOUNT FAILED at exit: mount -t %s -o dax=always %s %s: %s\n",
			g_unmounted.fstype, g_unmounted.dev, g_unmounted_at,
			strerror(errno));
	else
		fprintf(stderr, "dax-umount-pinned: remounted %s at exit\n",
			g_unmounted_at);
}

/* Mounts the filesystem again; any failure is loud: later tests need it. */
static void remount(const struct mount_entry *me, const char *mountpoint,
		    const char *file)
{
	struct mount_entry now;
	bool dax, reported;
	int fd;

	report_step("mount the filesystem again");
	if (mount(me->dev, mountpoint, me->fstype, 0, "dax=always") < 0) {
		int err = errno;

		fprintf(stderr,
			"dax-umount-pinned: REMOUNT FAILED: mount -t %s -o dax=always %s %s: %s; later tests on %s will fail\n",
			me->fstype, me->dev, mountpoint, strerror(err), mountpoint);
		g_unmounted_at = NULL;
		fail("REMOUNT FAILED: mount -t %s -o dax=always %s %s: %s",
		     me->fstype, me->dev, mountpoint, strerror(err));
	}
	g_unmounted_at = NULL;
	if (!find_mount(mountpoint, true, &now) || strcmp(now.dev, me->dev) != 0)
		fail("REMOUNT FAILED: %s is not in /proc/mounts after mount", mountpoint);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_errno("REMOUNT CHECK: open the test file again", "open");
	if (statx_dax(fd, &dax, &reported) < 0)
		fail_errno("REMOUNT CHECK: statx the test file", "statx");
	close(fd);
	report_extra_bool("remounted_dax", dax);
	if (!dax)
		fail("REMOUNT FAILED: %s is mounted again but its files are not DAX",
		     mountpoint);
}

int main(int argc, char **argv)
{
	struct mount_target cfg = { 0 };
	struct helper_args args = helper_start(argc, argv, &umount_cli, &cfg);
	struct odirect_read io = { .devfd = -1 };
	struct umount_job um = { 0 };
	struct mount_entry me;
	uint64_t start, nr, pfn;
	pthread_t io_tid, um_tid;
	int err;

	report_step("find the filesystem");
	if (!find_mount(cfg.mountpoint, true, &me))
		fail("%s is not mounted", cfg.mountpoint);
	if (cfg.fstype && strcmp(cfg.fstype, me.fstype) != 0)
		fail("%s is %s, not %s", cfg.mountpoint, me.fstype, cfg.fstype);
	pmem_pfn_range(me.dev, &start, &nr);
	fprintf(stderr, "dax-umount-pinned: %s (%s) on %s: pfn 0x%" PRIx64 " + %" PRIu64 "\n",
		cfg.mountpoint, me.fstype, me.dev, start, nr);

	pfn = pin_closed_page(&cfg, &args, start, nr, &io, &io_tid);

	g_unmounted = me;
	if (atexit(remount_at_exit) != 0)
		fail("register the exit-time remount: atexit failed");

	report_step("umount while pinned");
	um.mountpoint = cfg.mountpoint;
	um.pfn = pfn;
	um.io_done = &io.done;
	err = pthread_create(&um_tid, NULL, umount_thread, &um);
	if (err)
		fail_errnum("start the umount thread", "pthread_create", err);

	report_step("wait for the O_DIRECT read");
	err = pthread_join(io_tid, NULL);
	if (err)
		fail_errnum("wait for the I/O thread", "pthread_join", err);
	report_extra_int("io_ms", (long long)(io.t1_us - io.t0_us) / 1000);
	report_extra_int("io_ret", io.ret < 0 ? -io.err : (long long)io.ret);

	report_step("wait for umount after the pin was released");
	if (!wait_flag(&um.done, now_ms() + UMOUNT_GRACE_MS))
		fail("umount still blocked %d ms after the pin was released; %s stays unmounted or busy",
		     UMOUNT_GRACE_MS, cfg.mountpoint);
	err = pthread_join(um_tid, NULL);
	if (err)
		fail_errnum("wait for the umount thread", "pthread_join", err);
	if (um.probe_err)
		fail_errnum("probe the page when umount returned", "probe_query",
			    um.probe_err);
	report_obs("umount_returned", pfn, &um.at_return);
	report_extra_int("umount_ms", (long long)(um.t1_us - um.t0_us) / 1000);
	report_extra_int("umount_ret", um.ret < 0 ? -um.err : um.ret);
	report_extra_bool("umount_finished_after_io",
			  um.io_done_at_return || um.t1_us >= io.t1_us);

	if (um.ret < 0 && um.err == EBUSY) {
		/* Refused while pinned: with the pin gone it must go through. */
		report_step("umount again after EBUSY");
		um.ret = umount2(cfg.mountpoint, 0);
		report_extra_int("umount_retry_ret", um.ret < 0 ? -errno : 0);
	}
	if (um.ret == 0)
		g_unmounted_at = cfg.mountpoint;	/* the retry unmounted it */
	if (um.ret < 0) {
		/* Still mounted: nothing to remount, but the scan below is moot. */
		fail("umount %s: umount2: %s", cfg.mountpoint, strerror(um.err));
	}

	/* Unmounted: nothing may hold any page of the namespace now. */
	report_step("scan the namespace's pages");
	observe("unmounted", pfn);
	report_idle_scan(start, nr);

	remount(&me, cfg.mountpoint, args.file);
	close(io.devfd);

	odirect_check(&io, MIN_IO_MS);
	finish_ok();
}
