/*
 * dax-fork: fork() with a MAP_SHARED and a MAP_PRIVATE fs-DAX mapping, then a
 * copy-on-write in the child. fork copies the private mapping's page tables
 * (it has an anon_vma) and so the DAX PTE in it, and the child faults the
 * shared page in anew; a child write to the private DAX page must replace it
 * with an anonymous page and leave the DAX page and the file alone. 6.15's
 * "fs/dax: Properly refcount fs dax pages" made fork and COW take and drop
 * DAX page references like any other page (6.1 counts none of them), so the
 * parent reports each page while the child maps it, after the child's COW,
 * after the child exits and after munmap().
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* File pages: 0 is mapped shared, 1 and 2 private (1 is COWed by the parent). */
#define PG_SHARED	0
#define PG_PRIV_ANON	1
#define PG_PRIV_DAX	2
#define FILE_PAGES	3

#define BYTE_SHARED	'S'
#define BYTE_PRIV	'P'
#define BYTE_PARENT	'p'
#define BYTE_CHILD	'c'

/* One message from the child; err != 0 means the step named in @what failed. */
struct child_msg {
	int err;
	char what[96];
	int inherited_shared;	/* present in the child before it touched it */
	int inherited_private;
	uint64_t pfn_shared;
	uint64_t pfn_private;
	int byte_shared;
	int byte_private;
};

static const struct helper_cli fork_cli = {
	.name = "dax-fork",
	.default_size = FILE_PAGES * HELPER_PAGE_SIZE,
};

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Returns 0, or -1 with errno set (0 at end of file: the peer is gone). */
static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = 0;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The child's pagemap lookup (pagemap_pfns() reads the child's own page
 * tables). Returns 1 with *pfn if present, 0 if not, -1 on error.
 */
static int child_pagemap(const volatile char *addr, uint64_t *pfn)
{
	if (pagemap_pfns((const void *)addr, 1, pfn) == 0)
		return 1;
	return errno == ENXIO ? 0 : -1;
}

static noreturn void child_fail(int tx, struct child_msg *m, const char *what,
				int err)
{
	m->err = err ? err : EIO;
	snprintf(m->what, sizeof(m->what), "%s", what);
	(void)write_full(tx, m, sizeof(*m));
	_exit(1);
}

/*
 * The child: report what it inherited and what it maps, COW the private
 * page on command, then wait for the command to exit. It never prints the
 * report (the parent does) and never uses fail(): it exits with _exit().
 */
static noreturn void run_child(int rx, int tx, volatile char *shared,
			       volatile char *priv_dax, unsigned int timeout)
{
	struct child_msg m;
	uint64_t pfn;
	char cmd;
	int r;

	/* The parent's timeout handler must not print a report from here. */
	signal(SIGALRM, SIG_DFL);
	alarm(timeout);
	memset(&m, 0, sizeof(m));

	r = child_pagemap(shared, &pfn);
	if (r < 0)
		child_fail(tx, &m, "child: read pagemap (shared)", errno);
	m.inherited_shared = r;
	r = child_pagemap(priv_dax, &pfn);
	if (r < 0)
		child_fail(tx, &m, "child: read pagemap (private)", errno);
	m.inherited_private = r;

	m.byte_shared = shared[0];
	m.byte_private = priv_dax[0];
	if (child_pagemap(shared, &m.pfn_shared) != 1 ||
	    child_pagemap(priv_dax, &m.pfn_private) != 1)
		child_fail(tx, &m, "child: pagemap after reading the pages",
			   ENXIO);
	if (write_full(tx, &m, sizeof(m)) < 0)
		_exit(1);

	if (read_full(rx, &cmd, 1) < 0 || cmd != 'W')
		_exit(1);
	priv_dax[0] = BYTE_CHILD;
	m.byte_private = priv_dax[0];
	m.byte_shared = shared[0];
	if (child_pagemap(priv_dax, &m.pfn_private) != 1)
		child_fail(tx, &m, "child: pagemap after the COW write", ENXIO);
	if (write_full(tx, &m, sizeof(m)) < 0)
		_exit(1);

	if (read_full(rx, &cmd, 1) < 0 || cmd != 'X')
		_exit(1);
	_exit(0);
}

static struct child_msg recv_child(int rx, const char *step)
{
	struct child_msg m;

	report_step(step);
	if (read_full(rx, &m, sizeof(m)) < 0) {
		if (errno == 0)
			fail("%s: the child exited without reporting", step);
		fail_errno(step, "read");
	}
	if (m.err)
		fail_errnum(m.what, "child", m.err);
	return m;
}

static void send_cmd(int tx, char cmd)
{
	if (write_full(tx, &cmd, 1) < 0)
		fail_errno("command the child", "write");
}

static void fill_page(int fd, unsigned int page, char byte)
{
	char buf[HELPER_PAGE_SIZE];

	memset(buf, byte, sizeof(buf));
	if (pwrite(fd, buf, sizeof(buf), (off_t)(page * HELPER_PAGE_SIZE)) !=
	    (ssize_t)sizeof(buf))
		fail_errno("write the test file's pages", "pwrite");
}

int main(int argc, char **argv)
{
	struct helper_args args = helper_start(argc, argv, &fork_cli, NULL);
	int to_child[2], to_parent[2], status;
	uint64_t pfn_shared, pfn_priv;
	struct child_msg m1, m2;
	volatile char *shared, *priv;
	struct dax_file f;
	char byte;
	pid_t pid;

	if (args.size != FILE_PAGES * HELPER_PAGE_SIZE)
		fail("usage: --size must be %lu (3 pages)",
		     FILE_PAGES * HELPER_PAGE_SIZE);
	f = dax_file_create(&args);
	/* Written blocks: a read fault on an unwritten one maps the zero page. */
	report_step("write the test file");
	fill_page(f.fd, PG_SHARED, BYTE_SHARED);
	fill_page(f.fd, PG_PRIV_ANON, BYTE_PRIV);
	fill_page(f.fd, PG_PRIV_DAX, BYTE_PRIV);

	report_step("mmap the shared and the private mapping");
	shared = mmap(NULL, HELPER_PAGE_SIZE, PROT_READ | PROT_WRITE,
		      MAP_SHARED, f.fd, PG_SHARED * HELPER_PAGE_SIZE);
	if (shared == MAP_FAILED)
		fail_errno("map the shared page", "mmap");
	priv = mmap(NULL, 2 * HELPER_PAGE_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE, f.fd, PG_PRIV_ANON * HELPER_PAGE_SIZE);
	if (priv == MAP_FAILED)
		fail_errno("map the private pages", "mmap");

	report_step("fault the pages in the parent");
	shared[0] = BYTE_SHARED;
	/*
	 * A private write gives the mapping an anon_vma: fork() then copies its
	 * page tables, DAX PTE included, instead of letting the child refault.
	 */
	priv[0] = BYTE_PARENT;
	byte = priv[HELPER_PAGE_SIZE];
	if (byte != BYTE_PRIV)
		fail("private DAX page reads 0x%02x, not the file's 0x%02x",
		     (unsigned char)byte, BYTE_PRIV);
	pfn_shared = pfn_of((const void *)shared);
	pfn_priv = pfn_of((const void *)(priv + HELPER_PAGE_SIZE));
	observe("parent_shared", pfn_shared);
	observe("parent_private", pfn_priv);

	if (pipe2(to_child, O_CLOEXEC) < 0 || pipe2(to_parent, O_CLOEXEC) < 0)
		fail_errno("create the pipes to the child", "pipe2");
	report_step("fork");
	pid = fork();
	if (pid < 0)
		fail_errno("fork the child", "fork");
	if (pid == 0) {
		close(to_child[1]);
		close(to_parent[0]);
		run_child(to_child[0], to_parent[1], shared,
			  priv + HELPER_PAGE_SIZE, args.timeout);
	}
	close(to_child[0]);
	close(to_parent[1]);

	/* The child maps both pages until it is told to go on. */
	m1 = recv_child(to_parent[0], "wait for the child to map the pages");
	report_extra_bool("child_inherited_shared", m1.inherited_shared);
	report_extra_bool("child_inherited_private", m1.inherited_private);
	report_extra_bool("child_shared_same_pfn", m1.pfn_shared == pfn_shared);
	report_extra_bool("child_private_same_pfn", m1.pfn_private == pfn_priv);
	report_extra_bool("child_read_ok", m1.byte_shared == BYTE_SHARED &&
			  m1.byte_private == BYTE_PRIV);
	observe("child_shared", pfn_shared);
	observe("child_private", pfn_priv);

	send_cmd(to_child[1], 'W');
	m2 = recv_child(to_parent[0], "wait for the child's COW write");
	report_extra_bool("child_cow_new_pfn", m2.pfn_private != pfn_priv);
	report_extra_bool("child_cow_write_ok", m2.byte_private == BYTE_CHILD &&
			  m2.byte_shared == BYTE_SHARED);
	/* The child's private page: now anonymous memory, not ZONE_DEVICE. */
	observe("child_cow", m2.pfn_private);
	observe("child_cow_dax", pfn_priv);

	send_cmd(to_child[1], 'X');
	report_step("wait for the child to exit");
	if (waitpid(pid, &status, 0) < 0)
		fail_errno("wait for the child", "waitpid");
	report_extra_bool("child_exit_ok",
			  WIFEXITED(status) && WEXITSTATUS(status) == 0);
	observe("exited_shared", pfn_shared);
	observe("exited_private", pfn_priv);

	report_step("check the data after the child's COW");
	report_extra_bool("parent_private_intact",
			  priv[HELPER_PAGE_SIZE] == BYTE_PRIV &&
			  priv[0] == BYTE_PARENT);
	if (pread(f.fd, &byte, 1, PG_PRIV_DAX * HELPER_PAGE_SIZE) != 1)
		fail_errno("read the file after the COW", "pread");
	report_extra_bool("file_intact", byte == BYTE_PRIV);

	report_step("munmap");
	if (munmap((void *)shared, HELPER_PAGE_SIZE) < 0 ||
	    munmap((void *)priv, 2 * HELPER_PAGE_SIZE) < 0)
		fail_errno("unmap the mappings", "munmap");
	observe("unmapped_shared", pfn_shared);
	observe("unmapped_private", pfn_priv);
	dax_file_close(&f);
	finish_ok();
}
