/*
 * dax-odirect-pin: hold an fs-DAX page under an in-flight O_DIRECT read.
 * A direct read from a slow block device (null_blk with a ~2 s completion
 * delay) into a DAX mapping makes the block layer grab the page for the life
 * of the I/O (a plain reference on 6.1, a FOLL_PIN on kernels whose block
 * layer pins); this helper reports the page before, during and after that
 * window and after munmap(), so the harness can check the grab is transient.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ENTER_WAIT_MS	500
#define SETTLE_MS	100
#define SAMPLE_EVERY_MS	100
#define SAMPLES		10
#define MIN_IO_MS	300

static const char usage[] =
	"usage: dax-odirect-pin --file PATH --dev BLOCKDEV [--size BYTES] "
	"[--timeout SECONDS] [--allow-non-dax]";

struct pin_config {
	const char *file;
	const char *dev;
	uint64_t size;
	bool allow_non_dax;
	unsigned int timeout;
};

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

static noreturn void usage_fail(const char *what)
{
	fprintf(stderr, "%s\n", usage);
	fail("usage: %s", what);
}

static struct pin_config parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "dev", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "allow-non-dax", no_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	struct pin_config cfg = {
		.size = HELPER_PAGE_SIZE,
		.timeout = HELPER_DEFAULT_TIMEOUT,
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			cfg.file = optarg;
			break;
		case 'd':
			cfg.dev = optarg;
			break;
		case 's':
			if (parse_size(optarg, &cfg.size) < 0)
				usage_fail("bad --size");
			break;
		case 't':
			if (parse_timeout(optarg, &cfg.timeout) < 0)
				usage_fail("bad --timeout");
			break;
		case 'N':
			cfg.allow_non_dax = true;
			break;
		default:
			usage_fail("unknown option");
		}
	}
	if (optind != argc)
		usage_fail("unexpected argument");
	if (!cfg.file || !cfg.dev)
		usage_fail("--file and --dev are required");
	if (cfg.size == 0 || cfg.size % HELPER_PAGE_SIZE)
		usage_fail("--size must be a non-zero multiple of 4096");
	return cfg;
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
	struct pin_config cfg;
	struct io_job job;
	pthread_t tid;
	uint64_t pfn;
	int devfd, fd, err, samples;
	char *addr;

	report_init("dax-odirect-pin");
	cfg = parse_args(argc, argv);
	report_arm_timeout(cfg.timeout);

	report_step("open block device");
	devfd = open(cfg.dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (devfd < 0)
		skip("open %s with O_DIRECT: open: %s", cfg.dev,
		     strerror(errno));

	fd = create_test_file(cfg.file, cfg.size, cfg.allow_non_dax);
	addr = map_test_file(fd, cfg.size);
	report_step("write-fault first page");
	touch_page(addr, true);
	pfn = pfn_of(addr);
	observe("before", pfn);

	memset(&job, 0, sizeof(job));
	job.devfd = devfd;
	job.buf = addr;
	job.len = cfg.size;
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
	report_step("munmap test file");
	if (munmap(addr, cfg.size) < 0)
		fail_errno("unmap test file", "munmap");
	observe("unmapped", pfn);
	close(fd);
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
