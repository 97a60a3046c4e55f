/*
 * dax-odirect-pin: hold an fs-DAX page under an in-flight O_DIRECT read.
 * A direct read from a slow block device (null_blk with a ~2 s completion
 * delay) into a DAX mapping makes the block layer grab the page for the life
 * of the I/O (a plain reference on 6.1, a FOLL_PIN on kernels whose block
 * layer pins); this helper reports the page before, during and after that
 * window and after munmap(), so the harness can check the grab is transient.
 * With --pmd the buffer is a 2 MiB-aligned mapping write-faulted as one PMD:
 * the read's pages are then pinned by GUP's fast path on a PMD leaf
 * (gup_fast_pmd_leaf), a path a 4 KiB mapping never takes.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENTER_WAIT_MS	500
#define SETTLE_MS	100
#define SAMPLE_EVERY_MS	100
#define SAMPLES		10
#define MIN_IO_MS	300

struct io_job {
	int devfd;
	void *buf;
	size_t len;
	atomic_int entered;
	atomic_int done;
	ssize_t ret;
	int err;
	uint64_t t0;
	uint64_t t1;
};

struct pin_config {
	const char *dev;
	bool pmd;
};

static const char *set_dev(void *cfg, const char *arg)
{
	((struct pin_config *)cfg)->dev = arg;
	return NULL;
}

static const char *set_pmd(void *cfg, const char *arg)
{
	(void)arg;
	((struct pin_config *)cfg)->pmd = true;
	return NULL;
}

static const char *check_pin(void *cfg, const struct helper_args *args)
{
	if (((struct pin_config *)cfg)->pmd && args->size < HELPER_PMD_SIZE)
		return "--pmd needs --size of at least 2 MiB";
	return NULL;
}

static const struct helper_option pin_options[] = {
	{ "dev", required_argument, true, "--dev BLOCKDEV", set_dev },
	{ "pmd", no_argument, false, "[--pmd]", set_pmd },
	{ 0 },
};

static const struct helper_cli pin_cli = {
	.name = "dax-odirect-pin",
	.default_size = HELPER_PAGE_SIZE,
	.options = pin_options,
	.check = check_pin,
};

/* Reports whether the first 2 MiB of the mapping is one aligned, contiguous run of PFNs:
 * where it is, the filesystem allowed a PMD mapping. */
static void report_pmd_layout(const struct dax_file *f)
{
	uint64_t pfns[HELPER_PMD_SIZE / HELPER_PAGE_SIZE];
	bool contig = true;
	size_t i, n = HELPER_PMD_SIZE / HELPER_PAGE_SIZE;

	/* A PTE fallback maps only what was touched: touch it all, and let the PFNs tell. */
	for (i = 0; i < n; i++)
		touch_page(f->addr + i * HELPER_PAGE_SIZE, true);
	pfns_of(f->addr, n, pfns);
	for (i = 1; i < n; i++) {
		if (pfns[i] != pfns[0] + i) {
			contig = false;
			break;
		}
	}
	report_extra_bool("vaddr_pmd_aligned", ((uintptr_t)f->addr & (HELPER_PMD_SIZE - 1)) == 0);
	report_extra_bool("pfn_contig", contig);
	report_extra_bool("huge_aligned", pfns[0] % n == 0);
}

static void *io_thread(void *arg)
{
	struct io_job *job = arg;

	job->t0 = now_ms();
	atomic_store(&job->entered, 1);
	job->ret = pread(job->devfd, job->buf, job->len, 0);
	job->err = errno;
	job->t1 = now_ms();
	atomic_store(&job->done, 1);
	return NULL;
}

/*
 * Samples the page while the read is in flight and records the sample with
 * the highest refcount as phase "during". A sample counts only if the I/O was
 * still running after it was taken. Returns the number of such samples.
 */
static int observe_during(struct io_job *job, uint64_t pfn)
{
	struct probe_state best = { .refcount = -1 }, ps;
	uint64_t deadline = now_ms() + ENTER_WAIT_MS;
	int i, taken = 0;

	report_step("wait for the I/O thread");
	while (!atomic_load(&job->entered) && now_ms() < deadline)
		sleep_ms(1);
	/* "entered" is set just before pread(): give it time to reach the bio. */
	sleep_ms(SETTLE_MS);

	report_step("sample the page during the I/O");
	for (i = 0; i < SAMPLES && !atomic_load(&job->done); i++) {
		ps = probe_or_fail(pfn);
		if (atomic_load(&job->done))
			break;
		taken++;
		if (ps.refcount > best.refcount)
			best = ps;
		sleep_ms(SAMPLE_EVERY_MS);
	}
	if (taken) {
		fprintf(stderr,
			"dax-odirect-pin: obs during: max refcount %d over %d in-flight samples\n",
			best.refcount, taken);
		report_obs("during", pfn, &best);
	}
	return taken;
}

int main(int argc, char **argv)
{
	struct pin_config cfg = { 0 };
	struct helper_args args = helper_start(argc, argv, &pin_cli, &cfg);
	const char *dev = cfg.dev;
	struct dax_file f;
	struct io_job job;
	pthread_t tid;
	uint64_t pfn;
	int devfd, err, samples;

	report_step("open block device");
	devfd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
	/* The harness sets up the slow device: missing, it is not the kernel's fault. */
	if (devfd < 0)
		infra_error("open %s with O_DIRECT: open: %s", dev, strerror(errno));

	f = dax_file_create(&args);
	dax_file_map(&f, cfg.pmd ? DAX_PLACE_PMD : DAX_PLACE_ANY);
	pfn = dax_file_fault_first(&f);
	if (cfg.pmd)
		report_pmd_layout(&f);
	observe("before", pfn);

	memset(&job, 0, sizeof(job));
	job.devfd = devfd;
	job.buf = f.addr;
	job.len = f.size;
	atomic_init(&job.entered, 0);
	atomic_init(&job.done, 0);
	report_step("start the O_DIRECT read");
	err = pthread_create(&tid, NULL, io_thread, &job);
	if (err)
		fail_errnum("start the I/O thread", "pthread_create", err);

	samples = observe_during(&job, pfn);
	report_extra_int("during_samples", samples);

	report_step("wait for the O_DIRECT read (pthread_join)");
	err = pthread_join(tid, NULL);
	if (err)
		fail_errnum("wait for the I/O thread", "pthread_join", err);
	report_extra_int("io_ms", (long long)(job.t1 - job.t0));
	report_extra_int("io_ret", job.ret < 0 ? -job.err : (long long)job.ret);

	report_step("probe after the I/O");
	observe("after", pfn);
	dax_file_unmap(&f);
	observe("unmapped", pfn);
	close(f.fd);
	close(devfd);

	if (job.ret < 0)
		fail_errnum("read the block device into the DAX mapping",
			    "pread", job.err);
	if (job.t1 - job.t0 < MIN_IO_MS)
		fail("I/O completed too fast to observe a pin (device not slow?)");
	if (!samples)
		fail("no sample was taken while the I/O was in flight");
	finish_ok();
}
