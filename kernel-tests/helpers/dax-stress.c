/*
 * dax-stress: several processes fault, pin (vmsplice), truncate, re-extend and punch
 * holes in the same DAX file at once for a bounded time, from a seed. Afterwards every
 * fsdax page any of them mapped must be back at the same (idle) refcount: a reference
 * leaked or dropped twice under concurrency shows up as a page above or below the rest.
 * The operation sequence of each process is reproducible from --seed; the interleaving
 * is whatever the scheduler makes of it.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PROCS	16
#define MAX_PFNS	8192
#define OP_KINDS	4

struct stress_config {
	unsigned long long seed;
	unsigned int procs;
	unsigned int seconds;
};

/* Shared between the processes (MAP_SHARED|MAP_ANONYMOUS). */
struct shared_state {
	unsigned long long ops[MAX_PROCS][OP_KINDS];
	/* Pins that happened: ops[][1] counts attempts, even when vmsplice failed. */
	unsigned long long pins[MAX_PROCS];
	unsigned long long sigbus[MAX_PROCS];
	unsigned int npfns;	/* may exceed MAX_PFNS: only the first are kept */
	uint64_t pfns[MAX_PFNS];
};

static const char *set_seed(void *cfg, const char *arg)
{
	char *end;

	errno = 0;
	((struct stress_config *)cfg)->seed = strtoull(arg, &end, 0);
	return (errno || *end || end == arg) ? "bad --seed" : NULL;
}

static const char *set_procs(void *cfg, const char *arg)
{
	int n = atoi(arg);

	if (n < 1 || n > MAX_PROCS)
		return "bad --procs (1..16)";
	((struct stress_config *)cfg)->procs = (unsigned int)n;
	return NULL;
}

static const char *set_seconds(void *cfg, const char *arg)
{
	int n = atoi(arg);

	if (n < 1 || n > 600)
		return "bad --seconds (1..600)";
	((struct stress_config *)cfg)->seconds = (unsigned int)n;
	return NULL;
}

static const struct helper_option stress_options[] = {
	{ "seed", required_argument, false, "--seed N", set_seed },
	{ "procs", required_argument, false, "--procs N", set_procs },
	{ "seconds", required_argument, false, "--seconds N", set_seconds },
	{ 0 },
};

static const char *check_stress(void *cfg, const struct helper_args *args)
{
	struct stress_config *c = cfg;

	if (args->timeout <= c->seconds + 5)
		return "--timeout must exceed --seconds by more than 5";
	return NULL;
}

static const struct helper_cli stress_cli = {
	.name = "dax-stress",
	.default_size = 4UL << 20,
	.options = stress_options,
	.check = check_stress,
};

/* xorshift64*: small, seedable, the same sequence on every machine. */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static sigjmp_buf bus_jump;

/* Another process truncated the file under this mapping: expected, counted. */
static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(bus_jump, 1);
}

static void remember_pfn(struct shared_state *sh, uint64_t pfn)
{
	unsigned int i = __atomic_fetch_add(&sh->npfns, 1, __ATOMIC_RELAXED);

	if (i < MAX_PFNS)
		sh->pfns[i] = pfn;
}

/* Write-faults a few random pages of a fresh mapping, optionally pinning one in a pipe. */
static void op_map(int fd, uint64_t size, uint64_t *rng, struct shared_state *sh,
		   unsigned int me, bool pin)
{
	volatile unsigned int touched = 0;
	size_t npages = size / HELPER_PAGE_SIZE;
	char *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		_exit(10);
	if (sigsetjmp(bus_jump, 1) == 0) {
		for (unsigned int i = 0; i < 8; i++) {
			char *page = p + (next_rand(rng) % npages) * HELPER_PAGE_SIZE;
			uint64_t pfn;

			*(volatile char *)page = (char)me;
			touched++;
			if (pagemap_pfns(page, 1, &pfn) == 0)
				remember_pfn(sh, pfn);
			if (pin && i == 0) {
				struct iovec iov = { page, HELPER_PAGE_SIZE };
				int pfd[2];
				char buf[HELPER_PAGE_SIZE];

				/* vmsplice takes page references that live while the pipe holds them. */
				if (pipe(pfd) == 0) {
					if (vmsplice(pfd[1], &iov, 1, 0) > 0) {
						ssize_t n;

						sleep_ms((unsigned int)(next_rand(rng) % 20));
						n = read(pfd[0], buf, sizeof(buf));
						if (n < 0)
							_exit(11);
						if (n > 0)
							sh->pins[me]++;
					}
					close(pfd[0]);
					close(pfd[1]);
				}
			}
		}
	} else {
		sh->sigbus[me]++;
	}
	(void)touched;
	if (munmap(p, size))
		_exit(12);
}

static void child(int fd, uint64_t size, const struct stress_config *c,
		  struct shared_state *sh, unsigned int me, uint64_t deadline)
{
	uint64_t rng = c->seed * 1000003ULL + me + 1;
	size_t npages = size / HELPER_PAGE_SIZE;
	struct sigaction sa = { .sa_handler = on_sigbus };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL))
		_exit(13);
	while (now_ms() < deadline) {
		unsigned int op = (unsigned int)(next_rand(&rng) % OP_KINDS);
		off_t off = (off_t)(next_rand(&rng) % npages) * (off_t)HELPER_PAGE_SIZE;

		switch (op) {
		case 0:
			op_map(fd, size, &rng, sh, me, false);
			break;
		case 1:
			op_map(fd, size, &rng, sh, me, true);
			break;
		case 2:
			/* Shrink (freeing blocks under the others' mappings), then grow back. */
			if (ftruncate(fd, off) || fallocate(fd, 0, 0, (off_t)size))
				_exit(14);
			break;
		case 3:
			if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
				      (off_t)HELPER_PAGE_SIZE))
				_exit(15);
			break;
		}
		sh->ops[me][op]++;
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	struct stress_config cfg = { .seed = 1, .procs = 4, .seconds = 5 };
	struct helper_args args = helper_start(argc, argv, &stress_cli, &cfg);
	struct dax_file f = dax_file_create(&args);
	struct shared_state *sh;
	unsigned long long total[OP_KINDS] = { 0 }, sigbus = 0, pins = 0;
	int min_ref = -1, max_ref = -1, checked = 0, not_dax = 0;
	uint64_t deadline, first_pfn = 0;
	pid_t pids[MAX_PROCS];

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		fail_errno("map shared counters", "mmap");
	report_extra_int("seed", (long long)cfg.seed);
	report_extra_int("procs", cfg.procs);
	report_extra_int("seconds", cfg.seconds);

	report_step("run the processes");
	deadline = now_ms() + cfg.seconds * 1000ULL;
	for (unsigned int i = 0; i < cfg.procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			fail_errno("start a stress process", "fork");
		if (pids[i] == 0)
			child(f.fd, f.size, &cfg, sh, i, deadline);
	}
	for (unsigned int i = 0; i < cfg.procs; i++) {
		int st;

		if (waitpid(pids[i], &st, 0) < 0)
			fail_errno("wait for a stress process", "waitpid");
		if (WIFSIGNALED(st))
			fail("stress process %u died of signal %d", i, WTERMSIG(st));
		if (WEXITSTATUS(st) != 0)
			fail("stress process %u failed a syscall (exit %d)", i, WEXITSTATUS(st));
	}
	for (unsigned int i = 0; i < cfg.procs; i++) {
		for (unsigned int k = 0; k < OP_KINDS; k++)
			total[k] += sh->ops[i][k];
		sigbus += sh->sigbus[i];
		pins += sh->pins[i];
	}
	report_extra_int("ops_map", (long long)total[0]);
	report_extra_int("ops_map_pin", (long long)total[1]);
	report_extra_int("pins_done", (long long)pins);
	report_extra_int("ops_truncate", (long long)total[2]);
	report_extra_int("ops_punch", (long long)total[3]);
	report_extra_int("sigbus", (long long)sigbus);

	/* Nobody maps or pins anything now: every page seen must be at the same count. */
	report_step("check the pages");
	dax_file_close(&f);
	for (unsigned int i = 0; i < sh->npfns && i < MAX_PFNS; i++) {
		struct probe_state ps;

		if (probe_query(sh->pfns[i], &ps) || !ps.valid)
			fail_errno("query the probe for a page the processes mapped", "probe_query");
		if (!ps.zone_device) {
			not_dax++;
			continue;
		}
		if (!checked)
			first_pfn = sh->pfns[i];
		if (min_ref < 0 || ps.refcount < min_ref)
			min_ref = ps.refcount;
		if (ps.refcount > max_ref)
			max_ref = ps.refcount;
		checked++;
	}
	report_extra_int("pfns_seen", sh->npfns);
	report_extra_int("pfns_checked", checked);
	report_extra_int("pfns_not_dax", not_dax);
	report_extra_int("min_refcount", min_ref);
	report_extra_int("max_refcount", max_ref);
	if (checked)
		observe("end_first", first_pfn);
	finish_ok();
}
