/*
 * dax-poison: inject a memory failure into a mapped fs-DAX page with
 * madvise(MADV_HWPOISON) (root only), then punch the poisoned block out of
 * the file and fault the offset in again. memory_failure() on a ZONE_DEVICE
 * page goes to memory_failure_dev_pagemap(): the filesystem's notify_failure
 * or, failing that, mf_generic_kill_procs(), which sets PG_hwpoison, unmaps
 * the page and sends SIGBUS (BUS_MCEERR_AR to the caller, with si_addr_lsb
 * the size of the mapping). The helper records the signal, the page state,
 * and whether the hole punch left the offset usable again; the series that
 * made fs-DAX pages refcounted changed how that path finds the mapping size.
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
#include <unistd.h>

#ifndef MADV_HWPOISON
#define MADV_HWPOISON	100
#endif

#define PAGE_FLAG_BITS	0xffffffffULL
/* A sysctl the kernel has exactly when CONFIG_MEMORY_FAILURE=y. */
#define MF_SYSCTL	"/proc/sys/vm/memory_failure_early_kill"

struct poison_config {
	uint64_t page;
};

static const char *set_page(void *cfg, const char *arg)
{
	struct poison_config *c = cfg;
	char *end;

	errno = 0;
	c->page = strtoull(arg, &end, 0);
	if (errno || *end || end == arg)
		return "bad --page";
	return NULL;
}

static const char *check_poison(void *cfg, const struct helper_args *args)
{
	const struct poison_config *c = cfg;

	if (c->page + 1 >= args->size / HELPER_PAGE_SIZE)
		return "--page must leave a page after it in --size";
	return NULL;
}

static const struct helper_option poison_options[] = {
	{ "page", required_argument, false, "[--page N]", set_page },
	{ 0 },
};

static const struct helper_cli poison_cli = {
	.name = "dax-poison",
	.default_size = 16 * HELPER_PAGE_SIZE,
	.options = poison_options,
	.check = check_poison,
};

/* What the SIGBUS handler saw; written only by the handler. */
static volatile sig_atomic_t g_sigbus_count;
static volatile sig_atomic_t g_si_code;
static volatile sig_atomic_t g_si_addr_lsb;
static void *volatile g_si_addr;
/* Set while a fault may raise SIGBUS: the handler then jumps out of it. */
static volatile sig_atomic_t g_jump_armed;
static sigjmp_buf g_jump;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	g_sigbus_count = g_sigbus_count + 1;
	g_si_code = si->si_code;
	g_si_addr = si->si_addr;
	g_si_addr_lsb = si->si_addr_lsb;
	/*
	 * A SIGBUS forced by memory_failure() on return from madvise() can
	 * return; one raised by a faulting access would fault again.
	 */
	if (g_jump_armed) {
		g_jump_armed = 0;
		siglongjmp(g_jump, 1);
	}
}

static char pattern(uint64_t i)
{
	return (char)((i / HELPER_PAGE_SIZE) * 11 + (i % 239) + 1);
}

static bool page_intact(const volatile char *addr, uint64_t pg)
{
	uint64_t i, off = pg * HELPER_PAGE_SIZE;

	for (i = off; i < off + HELPER_PAGE_SIZE; i++)
		if (addr[i] != pattern(i))
			return false;
	return true;
}

/* HardwareCorrupted from /proc/meminfo, in kB (num_poisoned_pages * 4). */
static long long hardware_corrupted_kb(void)
{
	char line[128];
	long long v = -1;
	FILE *fp = fopen("/proc/meminfo", "re");

	if (!fp)
		fail_errno("read /proc/meminfo", "fopen");
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "HardwareCorrupted: %lld kB", &v) == 1)
			break;
	fclose(fp);
	return v;
}

int main(int argc, char **argv)
{
	struct poison_config cfg = { .page = 1 };
	struct helper_args args = helper_start(argc, argv, &poison_cli, &cfg);
	struct probe_state before, ps;
	uint64_t i, pfn, pfn_re, poison_bits;
	long long hwc_before;
	volatile char *target;
	struct sigaction sa;
	struct dax_file f;
	bool refault_ok;
	int ret, err;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0)
		fail_errno("install the SIGBUS handler", "sigaction");

	f = dax_file_create(&args);
	/* 4 KiB past a 2 MiB boundary: a PTE mapping, so si_addr_lsb is 12. */
	dax_file_map(&f, DAX_PLACE_PTE);
	report_step("write the file (write faults)");
	for (i = 0; i < f.size; i++)
		f.addr[i] = pattern(i);
	target = f.addr + cfg.page * HELPER_PAGE_SIZE;
	pfn = pfn_of((const void *)target);
	before = observe("mapped", pfn);
	hwc_before = hardware_corrupted_kb();

	report_step("madvise(MADV_HWPOISON)");
	ret = madvise((void *)target, HELPER_PAGE_SIZE, MADV_HWPOISON);
	err = ret < 0 ? errno : 0;
	report_extra_int("madvise_errno", err);
	/*
	 * MADV_HWPOISON is EINVAL without CONFIG_MEMORY_FAILURE, but also for
	 * a bad range: only the missing sysctl proves the former. The helpers
	 * run as root, so EPERM is no missing prerequisite either.
	 */
	if (err == EINVAL && access(MF_SYSCTL, F_OK) < 0 && errno == ENOENT)
		skip("the kernel has no CONFIG_MEMORY_FAILURE (" MF_SYSCTL " is missing)");
	if (err == EPERM || err == EINVAL)
		fail_errnum("inject a memory failure", "madvise(MADV_HWPOISON)", err);
	report_extra_int("sigbus_count", g_sigbus_count);
	report_extra_int("si_code", g_si_code);
	report_extra_int("si_addr_lsb", g_si_addr_lsb);
	report_extra_bool("si_addr_match", g_si_addr == (void *)target);
	report_extra_int("hardware_corrupted_kb_delta",
			 hardware_corrupted_kb() - hwc_before);

	report_step("read PFNs after the memory failure");
	if (pagemap_pfns((const void *)target, 1, &pfn_re) == 0)
		report_extra_bool("present_after_poison", true);
	else if (errno == ENXIO)
		report_extra_bool("present_after_poison", false);
	else
		fail_errno("read PFNs after the memory failure", "pagemap_pfns");
	ps = observe("poisoned", pfn);
	/* Which page flag bits the failure set (PG_hwpoison's number is per config). */
	poison_bits = (ps.flags & ~before.flags) & PAGE_FLAG_BITS;
	report_extra_int("flags_added_by_poison", (long long)poison_bits);

	report_step("punch the poisoned block");
	if (fallocate(f.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(cfg.page * HELPER_PAGE_SIZE),
		      (off_t)HELPER_PAGE_SIZE) < 0)
		fail_errno("punch the poisoned block", "fallocate");
	ps = observe("punched", pfn);
	report_extra_int("poison_flags_left_after_punch",
			 (long long)(ps.flags & poison_bits));

	report_step("write-fault the punched offset again");
	g_jump_armed = 1;
	if (sigsetjmp(g_jump, 1) == 0) {
		for (i = 0; i < HELPER_PAGE_SIZE; i++)
			target[i] = pattern(cfg.page * HELPER_PAGE_SIZE + i);
		g_jump_armed = 0;
		refault_ok = page_intact(f.addr, cfg.page);
	} else {
		refault_ok = false;
	}
	report_extra_bool("refault_ok", refault_ok);
	report_extra_int("sigbus_count_total", g_sigbus_count);
	report_extra_bool("neighbours_intact",
			  page_intact(f.addr, cfg.page + 1) &&
			  (cfg.page == 0 || page_intact(f.addr, cfg.page - 1)));
	if (!refault_ok) {
		/* No page to report: the judge fails on refault_ok. */
		dax_file_unmap(&f);
		observe("unmapped_poisoned", pfn);
		dax_file_close(&f);
		finish_ok();
	}
	pfn_re = pfn_of((const void *)target);
	report_extra_bool("refault_same_pfn", pfn_re == pfn);
	observe("refault", pfn_re);

	dax_file_unmap(&f);
	observe("unmapped", pfn_re);
	ps = observe("unmapped_poisoned", pfn);
	report_extra_int("poison_flags_left_at_end",
			 (long long)(ps.flags & poison_bits));
	dax_file_close(&f);
	finish_ok();
}
