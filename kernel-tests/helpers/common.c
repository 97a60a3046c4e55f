/*
 * Shared code for the dax-harness C helpers. The JSON line is assembled by
 * hand-written, allocation-free formatting so that the SIGALRM handler can
 * print the same report (with the observations gathered so far) safely.
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

#define MAX_OBS		64
#define MAX_EXTRA	32
#define KEY_MAX		32
#define EXTRA_STR_MAX	200
#define REASON_MAX	512
#define JSON_MAX	32768

struct obs_rec {
	char phase[KEY_MAX];
	uint64_t pfn;
	int refcount;
	int mapcount;
	int pincount;
	int zone_device;
	int order;
};

enum extra_kind { EXTRA_INT, EXTRA_BOOL, EXTRA_STR };

struct extra_rec {
	char key[KEY_MAX];
	enum extra_kind kind;
	long long value;
	/*
	 * EXTRA_STR only. Printed with a bound, never by its terminator: the
	 * SIGALRM handler may catch an overwrite half done.
	 */
	char str[EXTRA_STR_MAX + 1];
};

/*
 * Counters are bumped only after a record is complete, so the SIGALRM
 * handler never prints a half-written one.
 */
static const char *g_helper = "unknown";
static volatile sig_atomic_t g_dax;
static struct obs_rec g_obs[MAX_OBS];
static volatile sig_atomic_t g_nobs;
static struct extra_rec g_extra[MAX_EXTRA];
static volatile sig_atomic_t g_nextra;
static const char *volatile g_step = "start";
static volatile sig_atomic_t g_timeout_s;
static volatile sig_atomic_t g_emitting;
/*
 * Helpers probe and report from several threads. g_probe_lock guards the
 * probe's descriptors and g_probe_line and is held across observe() so that
 * a query, its stderr line and its record stay together; g_obs_lock guards
 * appending to g_obs. Lock order: probe, then obs.
 */
static pthread_mutex_t g_probe_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_obs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_pagemap_lock = PTHREAD_MUTEX_INITIALIZER;

struct jbuf {
	char *buf;
	size_t cap;
	size_t len;
};

static void jb_char(struct jbuf *b, char c)
{
	if (b->len + 1 < b->cap)
		b->buf[b->len++] = c;
}

static void jb_raw(struct jbuf *b, const char *s)
{
	while (*s)
		jb_char(b, *s++);
}

static void jb_ull(struct jbuf *b, unsigned long long v)
{
	char tmp[24];
	int i = 0;

	do {
		tmp[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i)
		jb_char(b, tmp[--i]);
}

static void jb_ll(struct jbuf *b, long long v)
{
	if (v < 0) {
		jb_char(b, '-');
		jb_ull(b, 0ULL - (unsigned long long)v);
	} else {
		jb_ull(b, (unsigned long long)v);
	}
}

/*
 * Quoted JSON string of at most @max bytes of @s; bytes outside printable
 * ASCII become \u00XX.
 */
static void jb_qstrn(struct jbuf *b, const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	jb_char(b, '"');
	for (i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			jb_char(b, '\\');
			jb_char(b, (char)c);
		} else if (c < 0x20 || c >= 0x7f) {
			jb_raw(b, "\\u00");
			jb_char(b, hex[c >> 4]);
			jb_char(b, hex[c & 15]);
		} else {
			jb_char(b, (char)c);
		}
	}
	jb_char(b, '"');
}

static void jb_qstr(struct jbuf *b, const char *s)
{
	jb_qstrn(b, s, SIZE_MAX);
}

static void jb_key(struct jbuf *b, const char *key)
{
	jb_qstr(b, key);
	jb_char(b, ':');
}

static void write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

/* Builds and writes the report line. Async-signal-safe. */
static void emit_report(const char *result, const char *reason)
{
	static char out[JSON_MAX];
	struct jbuf b = { out, sizeof(out), 0 };
	int i, nobs = g_nobs, nextra = g_nextra;

	jb_char(&b, '{');
	jb_key(&b, "helper");
	jb_qstr(&b, g_helper);
	jb_raw(&b, ",\"v\":");
	jb_ll(&b, HELPER_JSON_VERSION);
	jb_char(&b, ',');
	jb_key(&b, "result");
	jb_qstr(&b, result);
	jb_char(&b, ',');
	jb_key(&b, "reason");
	jb_qstr(&b, reason);
	jb_raw(&b, ",\"dax\":");
	jb_raw(&b, g_dax ? "true" : "false");
	jb_raw(&b, ",\"obs\":[");
	for (i = 0; i < nobs; i++) {
		const struct obs_rec *o = &g_obs[i];

		if (i)
			jb_char(&b, ',');
		jb_char(&b, '{');
		jb_key(&b, "phase");
		jb_qstr(&b, o->phase);
		jb_raw(&b, ",\"pfn\":");
		jb_ull(&b, o->pfn);
		jb_raw(&b, ",\"refcount\":");
		jb_ll(&b, o->refcount);
		jb_raw(&b, ",\"mapcount\":");
		jb_ll(&b, o->mapcount);
		jb_raw(&b, ",\"pincount\":");
		jb_ll(&b, o->pincount);
		jb_raw(&b, ",\"zone_device\":");
		jb_ll(&b, o->zone_device);
		jb_raw(&b, ",\"order\":");
		jb_ll(&b, o->order);
		jb_char(&b, '}');
	}
	jb_raw(&b, "],\"extra\":{");
	for (i = 0; i < nextra; i++) {
		const struct extra_rec *e = &g_extra[i];

		if (i)
			jb_char(&b, ',');
		jb_key(&b, e->key);
		if (e->kind == EXTRA_BOOL)
			jb_raw(&b, e->value ? "true" : "false");
		else if (e->kind == EXTRA_STR)
			jb_qstrn(&b, e->str, EXTRA_STR_MAX);
		else
			jb_ll(&b, e->value);
	}
	jb_raw(&b, "}}\n");
	write_all(STDOUT_FILENO, out, b.len);
}

/*
 * Only one report may ever reach stdout: the first caller wins, and the
 * alarm is cancelled before the main path starts printing.
 */
static bool claim_emit(void)
{
	if (g_emitting)
		return false;
	g_emitting = 1;
	return true;
}

static void on_alarm(int sig)
{
	char reason[160];
	struct jbuf b = { reason, sizeof(reason), 0 };

	(void)sig;
	if (!claim_emit())
		return;
	jb_raw(&b, "timeout after ");
	jb_ll(&b, g_timeout_s);
	jb_raw(&b, " s during ");
	jb_raw(&b, g_step);
	reason[b.len] = '\0';
	write_all(STDERR_FILENO, "timeout: ", 9);
	write_all(STDERR_FILENO, reason, b.len);
	write_all(STDERR_FILENO, "\n", 1);
	emit_report("fail", reason);
	_exit(HELPER_EXIT_FAIL);
}

void report_init(const char *helper)
{
	struct sigaction sa;

	g_helper = helper;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		fail_errno("install timeout handler", "sigaction");
}

void report_arm_timeout(unsigned int seconds)
{
	g_timeout_s = (sig_atomic_t)seconds;
	alarm(seconds);
}

void report_step(const char *step)
{
	g_step = step;
}

void report_set_dax(bool dax)
{
	g_dax = dax;
}

static void copy_key(char *dst, const char *src)
{
	snprintf(dst, KEY_MAX, "%s", src);
}

/* Stores @value and @str (EXTRA_STR only, cut to EXTRA_STR_MAX bytes) in @e. */
static void fill_extra(struct extra_rec *e, enum extra_kind kind,
		       long long value, const char *str)
{
	size_t i = 0;

	if (str)
		for (; i < EXTRA_STR_MAX && str[i]; i++)
			e->str[i] = str[i];
	e->str[i] = '\0';
	e->value = value;
	e->kind = kind;
}

static void set_extra(const char *key, enum extra_kind kind, long long value,
		      const char *str)
{
	int i;

	for (i = 0; i < g_nextra; i++) {
		if (strcmp(g_extra[i].key, key) == 0) {
			fill_extra(&g_extra[i], kind, value, str);
			return;
		}
	}
	if (g_nextra >= MAX_EXTRA)
		fail("internal: more than %d extra fields", MAX_EXTRA);
	copy_key(g_extra[g_nextra].key, key);
	fill_extra(&g_extra[g_nextra], kind, value, str);
	g_nextra = g_nextra + 1;
}

void report_extra_int(const char *key, long long value)
{
	set_extra(key, EXTRA_INT, value, NULL);
}

void report_extra_bool(const char *key, bool value)
{
	set_extra(key, EXTRA_BOOL, value, NULL);
}

void report_extra_str(const char *key, const char *value)
{
	set_extra(key, EXTRA_STR, 0, value);
}

void report_obs(const char *phase, uint64_t pfn, const struct probe_state *ps)
{
	struct obs_rec *o;

	pthread_mutex_lock(&g_obs_lock);
	if (g_nobs >= MAX_OBS)
		fail("internal: more than %d observations", MAX_OBS);
	o = &g_obs[g_nobs];
	copy_key(o->phase, phase);
	o->pfn = pfn;
	o->refcount = ps->refcount;
	o->mapcount = ps->mapcount;
	o->pincount = ps->pincount;
	o->zone_device = ps->zone_device;
	o->order = ps->order;
	g_nobs = g_nobs + 1;
	pthread_mutex_unlock(&g_obs_lock);
}

static noreturn void finish(const char *result, const char *reason, int code)
{
	alarm(0);
	if (claim_emit())
		emit_report(result, reason);
	exit(code);
}

noreturn void finish_ok(void)
{
	finish("ok", "", HELPER_EXIT_OK);
}

static noreturn void finish_fmt(const char *result, int code, const char *fmt,
				va_list ap)
{
	char reason[REASON_MAX];

	vsnprintf(reason, sizeof(reason), fmt, ap);
	fprintf(stderr, "%s: %s: %s\n", g_helper, result, reason);
	finish(result, reason, code);
}

noreturn void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	finish_fmt("fail", HELPER_EXIT_FAIL, fmt, ap);
}

noreturn void skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	finish_fmt("skip", HELPER_EXIT_SKIP, fmt, ap);
}

noreturn void infra_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	finish_fmt("error", HELPER_EXIT_ERROR, fmt, ap);
}

noreturn void fail_errnum(const char *op, const char *func, int err)
{
	fail("%s: %s: %s", op, func, strerror(err));
}

noreturn void fail_errno(const char *op, const char *func)
{
	fail_errnum(op, func, errno);
}

noreturn void skip_errnum(const char *op, const char *func, int err)
{
	skip("%s: %s: %s", op, func, strerror(err));
}

noreturn void infra_error_errnum(const char *op, const char *func, int err)
{
	infra_error("%s: %s: %s", op, func, strerror(err));
}

/* Bit 63: page present. Bits 0-54: PFN (zero without CAP_SYS_ADMIN). */
#define PM_PRESENT	(1ULL << 63)
#define PM_PFN_MASK	((1ULL << 55) - 1)
#define PM_BATCH	512

/*
 * The pagemap descriptor, opened once per process: one inherited across
 * fork() still reads the parent's page tables, so a child opens its own.
 */
static int g_pagemap_fd = -1;
static pid_t g_pagemap_pid;

static int pagemap_fd(void)
{
	pid_t pid = getpid();

	pthread_mutex_lock(&g_pagemap_lock);
	if (g_pagemap_fd >= 0 && g_pagemap_pid != pid) {
		close(g_pagemap_fd);
		g_pagemap_fd = -1;
	}
	if (g_pagemap_fd < 0) {
		g_pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		g_pagemap_pid = pid;
	}
	pthread_mutex_unlock(&g_pagemap_lock);
	return g_pagemap_fd;
}

int pagemap_pfns(const void *addr, size_t npages, uint64_t *pfns)
{
	uint64_t ents[PM_BATCH];
	off_t off = (off_t)((uintptr_t)addr / HELPER_PAGE_SIZE) * 8;
	size_t done = 0;
	int fd = pagemap_fd();

	if (fd < 0)
		return -1;
	while (done < npages) {
		size_t want = npages - done < PM_BATCH ? npages - done : PM_BATCH;
		ssize_t n = pread(fd, ents, want * 8, off);
		size_t i;

		if (n < 0)
			return -1;
		if ((size_t)n != want * 8) {
			errno = EIO;
			return -1;
		}
		for (i = 0; i < want; i++) {
			if (!(ents[i] & PM_PRESENT)) {
				errno = ENXIO;
				return -1;
			}
			pfns[done + i] = ents[i] & PM_PFN_MASK;
			if (pfns[done + i] == 0) {
				errno = EPERM;
				return -1;
			}
		}
		done += want;
		off += (off_t)(want * 8);
	}
	return 0;
}

void pfns_of(const void *addr, size_t npages, uint64_t *pfns)
{
	if (pagemap_pfns(addr, npages, pfns) == 0)
		return;
	if (errno == ENXIO)
		fail("pagemap: a page in %p+%zu pages is not present after faulting it",
		     addr, npages);
	if (errno == EPERM)
		fail("pagemap: PFNs read as 0 (needs CAP_SYS_ADMIN)");
	fail_errno("read PFNs from /proc/self/pagemap", "pread");
}

uint64_t pfn_of(const void *addr)
{
	uint64_t pfn;

	pfns_of(addr, 1, &pfn);
	return pfn;
}

/* Parses a "0x..." or decimal field; returns false if @s is not all digits. */
static bool parse_field_ll(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 0);
	return errno == 0 && end != s && *end == '\0';
}

int probe_parse_line(const char *line, uint64_t pfn, struct probe_state *ps)
{
	static const char prefix[] = "dax_probe v1 ";
	enum { F_PFN, F_VALID, F_REF, F_MAP, F_PIN, F_FLAGS, F_ZONE, F_PGMAP,
	       F_ORDER, F_COUNT };
	static const char *const names[F_COUNT] = {
		"pfn", "valid", "refcount", "mapcount", "pincount", "flags",
		"zone_device", "pgmap_type", "order",
	};
	char copy[512], *save = NULL, *tok;
	long long val[F_COUNT];
	bool seen[F_COUNT] = { false };
	int i;

	memset(ps, 0, sizeof(*ps));
	if (strncmp(line, prefix, sizeof(prefix) - 1) != 0)
		goto bad;
	snprintf(copy, sizeof(copy), "%s", line + sizeof(prefix) - 1);
	for (tok = strtok_r(copy, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq)
			goto bad;
		*eq = '\0';
		/* page->mapping is a pointer or a tag: kept, never required. */
		if (strcmp(tok, "mapping") == 0) {
			char *end;

			errno = 0;
			ps->mapping = strtoull(eq + 1, &end, 16);
			ps->has_mapping = !errno && end != eq + 1 && !*end;
			continue;
		}
		for (i = 0; i < F_COUNT; i++) {
			if (strcmp(tok, names[i]) != 0)
				continue;
			/* flags is a full 64-bit word: parse it unsigned. */
			if (i == F_FLAGS) {
				char *end;

				errno = 0;
				ps->flags = strtoul(eq + 1, &end, 0);
				if (errno || *end)
					goto bad;
				val[i] = 0;
			} else if (!parse_field_ll(eq + 1, &val[i])) {
				goto bad;
			}
			seen[i] = true;
		}
		/* Unknown keys (index, later additions) are ignored. */
	}
	if (!seen[F_PFN] || !seen[F_VALID] || (uint64_t)val[F_PFN] != pfn)
		goto bad;
	if (val[F_VALID] == 0) {
		ps->has_mapping = false;
		ps->mapping = 0;
		return 0;
	}
	if (val[F_VALID] != 1)
		goto bad;
	for (i = F_REF; i < F_COUNT; i++)
		if (!seen[i])
			goto bad;
	ps->valid = true;
	ps->refcount = (int)val[F_REF];
	ps->mapcount = (int)val[F_MAP];
	ps->pincount = (int)val[F_PIN];
	ps->zone_device = (int)val[F_ZONE];
	ps->pgmap_type = (int)val[F_PGMAP];
	ps->order = (int)val[F_ORDER];
	return 0;
bad:
	errno = EPROTO;
	return -1;
}

static char g_probe_line[512];

/* probe_query() with g_probe_lock held. */
static int probe_query_locked(uint64_t pfn, struct probe_state *ps)
{
	static int fd = -1;
	char cmd[32];
	ssize_t n;
	int len;

	if (fd < 0) {
		fd = open(PROBE_PFN_PATH, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -1;
	}
	/* The probe keeps the file offset at 0 on write; pread/pwrite make that moot. */
	len = snprintf(cmd, sizeof(cmd), "0x%" PRIx64 "\n", pfn);
	n = pwrite(fd, cmd, (size_t)len, 0);
	if (n < 0)
		return -1;
	if (n != len) {
		errno = EIO;
		return -1;
	}
	n = pread(fd, g_probe_line, sizeof(g_probe_line) - 1, 0);
	if (n < 0)
		return -1;
	g_probe_line[n] = '\0';
	return probe_parse_line(g_probe_line, pfn, ps);
}

int probe_query(uint64_t pfn, struct probe_state *ps)
{
	int ret, err;

	pthread_mutex_lock(&g_probe_lock);
	ret = probe_query_locked(pfn, ps);
	err = errno;
	pthread_mutex_unlock(&g_probe_lock);
	errno = err;
	return ret;
}

/* probe_or_fail() with g_probe_lock held. */
static struct probe_state probe_or_fail_locked(uint64_t pfn)
{
	struct probe_state ps;

	if (probe_query_locked(pfn, &ps) < 0) {
		if (errno == EPROTO)
			fail("dax_probe: unexpected line for pfn 0x%" PRIx64 ": %.200s",
			     pfn, g_probe_line);
		fail_errno("query " PROBE_PFN_PATH " (is dax_probe loaded?)",
			   "probe_query");
	}
	if (!ps.valid)
		fail("dax_probe: pfn 0x%" PRIx64 " has no struct page (valid=0)",
		     pfn);
	return ps;
}

struct probe_state probe_or_fail(uint64_t pfn)
{
	struct probe_state ps;

	pthread_mutex_lock(&g_probe_lock);
	ps = probe_or_fail_locked(pfn);
	pthread_mutex_unlock(&g_probe_lock);
	return ps;
}

struct probe_state observe(const char *phase, uint64_t pfn)
{
	struct probe_state ps;

	pthread_mutex_lock(&g_probe_lock);
	ps = probe_or_fail_locked(pfn);
	fprintf(stderr, "%s: obs %s: %s", g_helper, phase, g_probe_line);
	report_obs(phase, pfn, &ps);
	pthread_mutex_unlock(&g_probe_lock);
	return ps;
}

/* Parses the number after @key in a scan line; fails the helper if absent. */
static long long scan_field(const char *line, const char *key)
{
	const char *p = strstr(line, key);
	long long v;

	if (!p || sscanf(p + strlen(key), "%lld", &v) != 1)
		fail("dax_probe: unexpected scan line: %.200s", line);
	return v;
}

long long probe_scan(uint64_t start, uint64_t nr, int idle, long long *valid,
		     long long *below)
{
	char cmd[96], line[256];
	ssize_t n;
	int fd, len;

	pthread_mutex_lock(&g_probe_lock);
	fd = open(PROBE_SCAN_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail_errno("open " PROBE_SCAN_PATH " (is dax_probe loaded?)", "open");
	len = snprintf(cmd, sizeof(cmd), "0x%" PRIx64 " %" PRIu64 " %d\n",
		       start, nr, idle);
	if (pwrite(fd, cmd, (size_t)len, 0) != len)
		fail_errno("start a probe range scan", "pwrite");
	n = pread(fd, line, sizeof(line) - 1, 0);
	if (n == 0)
		errno = EIO;
	if (n <= 0)
		fail_errno("read the probe range scan", "pread");
	close(fd);
	pthread_mutex_unlock(&g_probe_lock);
	line[n] = '\0';
	fprintf(stderr, "%s: scan idle=%d: %s", g_helper, idle, line);
	if (valid)
		*valid = scan_field(line, " valid=");
	if (below)
		*below = scan_field(line, " below_idle=");
	return scan_field(line, " above_idle=");
}

bool find_mount(const char *path, bool exact, struct mount_entry *me)
{
	char line[1024], dev[256], dir[512], type[32];
	size_t best = 0, n;
	bool found = false;
	FILE *fp;

	fp = fopen("/proc/mounts", "re");
	if (!fp)
		fail_errno("read the mount table", "fopen");
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "%255s %511s %31s", dev, dir, type) != 3)
			continue;
		n = strlen(dir);
		if (exact ? strcmp(dir, path) != 0 :
		    strncmp(path, dir, n) != 0 || path[n] != '/' || n < best)
			continue;
		best = n;
		snprintf(me->dev, sizeof(me->dev), "%s", dev);
		snprintf(me->dir, sizeof(me->dir), "%s", dir);
		snprintf(me->fstype, sizeof(me->fstype), "%s", type);
		found = true;
	}
	fclose(fp);
	return found;
}

int statx_dax(int fd, bool *dax, bool *reported)
{
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) < 0)
		return -1;
	*reported = (stx.stx_attributes_mask & STATX_ATTR_DAX) != 0;
	*dax = (stx.stx_attributes & STATX_ATTR_DAX) != 0;
	return 0;
}

struct dax_file dax_file_create(const struct helper_args *args)
{
	struct dax_file f = { .fd = -1, .size = args->size, .addr = NULL };
	bool dax, reported;

	report_step("create test file");
	f.fd = open(args->file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (f.fd < 0)
		fail_errno("create test file", "open");
	report_step("fallocate test file");
	if (fallocate(f.fd, 0, 0, (off_t)f.size) < 0)
		fail_errno("allocate test file blocks", "fallocate");
	if (fsync(f.fd) < 0)
		fail_errno("flush test file metadata", "fsync");
	if (statx_dax(f.fd, &dax, &reported) < 0)
		fail_errno("check test file for DAX", "statx");
	report_set_dax(dax);
	if (!dax) {
		fprintf(stderr, "%s: %s: STATX_ATTR_DAX %s\n", g_helper,
			args->file,
			reported ? "is clear" :
			"is not reported by this kernel/filesystem");
		if (!args->allow_non_dax)
			fail("not a DAX file");
	}
	return f;
}

/*
 * Maps the file at an address @offset bytes past a 2 MiB boundary, inside a
 * PROT_NONE reservation that is trimmed afterwards. A PMD fault needs the
 * virtual address and the file offset congruent modulo 2 MiB: offset 0 allows
 * one, offset 4 KiB rules it out. A plain mmap() would not do for 4k:
 * ext4/xfs hand out 2 MiB-aligned addresses for DAX files
 * (thp_get_unmapped_area), so large mappings could fault PMDs anyway.
 */
static char *map_past_pmd(int fd, uint64_t size, uintptr_t offset)
{
	size_t span = size + HELPER_PMD_SIZE + offset;
	char *res, *addr, *end, *res_end;
	uintptr_t base;

	report_step("reserve address range");
	res = mmap(NULL, span, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		fail_errno("reserve address range", "mmap");
	base = ((uintptr_t)res + HELPER_PMD_SIZE - 1) & ~(HELPER_PMD_SIZE - 1);
	addr = (char *)(base + offset);

	report_step("mmap test file");
	if (mmap(addr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 fd, 0) == MAP_FAILED)
		fail_errno("map test file at a fixed address", "mmap");

	end = addr + size;
	res_end = res + span;
	if (addr > res && munmap(res, (size_t)(addr - res)) < 0)
		fail_errno("trim address reservation", "munmap");
	if (res_end > end && munmap(end, (size_t)(res_end - end)) < 0)
		fail_errno("trim address reservation", "munmap");
	return addr;
}

void dax_file_map(struct dax_file *f, enum dax_placement place)
{
	void *p;

	switch (place) {
	case DAX_PLACE_PMD:
		f->addr = map_past_pmd(f->fd, f->size, 0);
		return;
	case DAX_PLACE_PTE:
		f->addr = map_past_pmd(f->fd, f->size, HELPER_PAGE_SIZE);
		return;
	case DAX_PLACE_ANY:
		break;
	}
	report_step("mmap test file");
	p = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	if (p == MAP_FAILED)
		fail_errno("map test file", "mmap");
	f->addr = p;
}

uint64_t dax_file_fault_first(const struct dax_file *f)
{
	report_step("write-fault first page");
	touch_page(f->addr, true);
	return pfn_of(f->addr);
}

void dax_file_unmap(struct dax_file *f)
{
	report_step("munmap test file");
	if (munmap(f->addr, f->size) < 0)
		fail_errno("unmap test file", "munmap");
	f->addr = NULL;
}

void dax_file_close(struct dax_file *f)
{
	if (close(f->fd) < 0)
		fail_errno("close test file", "close");
	f->fd = -1;
}

void touch_page(void *p, bool write)
{
	volatile char *c = p;

	if (write)
		*c = 'D';
	else
		(void)*c;
}

int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case '\0':
		shift = 0;
		break;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	default:
		return -1;
	}
	if (shift && *++end)
		return -1;
	if (v > (~0ULL >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

int parse_timeout(const char *s, unsigned int *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v == 0 || v > 86400)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

#define HELPER_MAX_OPTIONS	32
/* getopt_long returns OPT_VAL_BASE + table index; anything less: an error. */
#define OPT_VAL_BASE		256

enum { OPT_FILE, OPT_SIZE, OPT_TIMEOUT, OPT_ALLOW_NON_DAX, OPT_COMMON };

static const struct helper_option common_options[OPT_COMMON] = {
	[OPT_FILE] = { "file", required_argument, true, "--file PATH", NULL },
	[OPT_SIZE] = { "size", required_argument, false, NULL, NULL },
	[OPT_TIMEOUT] = { "timeout", required_argument, false,
			  "[--timeout SECONDS]", NULL },
	[OPT_ALLOW_NON_DAX] = { "allow-non-dax", no_argument, false,
				"[--allow-non-dax]", NULL },
};

static const struct helper_cli *g_cli;

/* The helper's own options with @required set, in the usage line. */
static void print_own_usage(bool required)
{
	const struct helper_option *o;

	for (o = g_cli->options; o && o->name; o++)
		if (o->required == required && o->usage)
			fprintf(stderr, " %s", o->usage);
}

static noreturn void usage_fail(const char *what)
{
	fprintf(stderr, "usage: %s %s", g_cli->name,
		common_options[OPT_FILE].usage);
	print_own_usage(true);
	fputs(g_cli->default_size ? " [--size BYTES]" : " --size BYTES",
	      stderr);
	print_own_usage(false);
	fprintf(stderr, " %s %s\n", common_options[OPT_TIMEOUT].usage,
		common_options[OPT_ALLOW_NON_DAX].usage);
	fail("usage: %s", what);
}

/*
 * Fails with "--file is required", "--file and --dev are required" or
 * "--file, --a and --b are required": --file first, as in the usage line.
 */
static noreturn void required_fail(void)
{
	const char *names[HELPER_MAX_OPTIONS];
	const struct helper_option *o;
	char msg[256];
	size_t len = 0;
	int i, n = 0;

	names[n++] = common_options[OPT_FILE].name;
	for (o = g_cli->options; o && o->name && n < HELPER_MAX_OPTIONS; o++)
		if (o->required)
			names[n++] = o->name;
	msg[0] = '\0';
	for (i = 0; i < n && len < sizeof(msg); i++)
		len += (size_t)snprintf(msg + len, sizeof(msg) - len, "%s--%s",
					i == 0 ? "" :
					i == n - 1 ? " and " : ", ", names[i]);
	if (len < sizeof(msg))
		snprintf(msg + len, sizeof(msg) - len, " %s required",
			 n == 1 ? "is" : "are");
	usage_fail(msg);
}

/* Applies common option @i; returns NULL or a usage error. */
static const char *set_common(struct helper_args *args, int i, const char *arg)
{
	switch (i) {
	case OPT_FILE:
		args->file = arg;
		break;
	case OPT_SIZE:
		if (parse_size(arg, &args->size) < 0)
			return "bad --size";
		break;
	case OPT_TIMEOUT:
		if (parse_timeout(arg, &args->timeout) < 0)
			return "bad --timeout";
		break;
	case OPT_ALLOW_NON_DAX:
		args->allow_non_dax = true;
		break;
	}
	return NULL;
}

/*
 * Each option gets its own val: glibc takes an abbreviation that matches
 * several options of equal has_arg and val as the first of them instead of
 * refusing it as ambiguous.
 */
struct helper_args helper_start(int argc, char **argv,
				const struct helper_cli *cli, void *cfg)
{
	const struct helper_option *tab[HELPER_MAX_OPTIONS];
	struct option opts[HELPER_MAX_OPTIONS + 1];
	bool seen[HELPER_MAX_OPTIONS] = { false };
	struct helper_args args = {
		.size = cli->default_size,
		.timeout = HELPER_DEFAULT_TIMEOUT,
	};
	const struct helper_option *o;
	int i, c, n = 0, nown;

	report_init(cli->name);
	g_cli = cli;
	for (o = cli->options; o && o->name; o++) {
		if (n == HELPER_MAX_OPTIONS - OPT_COMMON)
			fail("internal: more than %d own options",
			     HELPER_MAX_OPTIONS - OPT_COMMON);
		tab[n++] = o;
	}
	nown = n;
	for (i = 0; i < OPT_COMMON; i++)
		tab[n++] = &common_options[i];
	for (i = 0; i < n; i++)
		opts[i] = (struct option){ tab[i]->name, tab[i]->has_arg, NULL,
					   OPT_VAL_BASE + i };
	opts[n] = (struct option){ NULL, 0, NULL, 0 };

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		const char *err;

		if (c < OPT_VAL_BASE || c >= OPT_VAL_BASE + n)
			usage_fail("unknown option");
		i = c - OPT_VAL_BASE;
		seen[i] = true;
		if (i < nown)
			err = tab[i]->set(cfg, optarg);
		else
			err = set_common(&args, i - nown, optarg);
		if (err)
			usage_fail(err);
	}
	if (optind != argc)
		usage_fail("unexpected argument");
	for (i = 0; i < n; i++)
		if (tab[i]->required && !seen[i])
			required_fail();
	if (args.size == 0 || args.size % HELPER_PAGE_SIZE)
		usage_fail("--size must be a non-zero multiple of 4096");
	if (cli->check) {
		const char *err = cli->check(cfg, &args);

		if (err)
			usage_fail(err);
	}
	report_arm_timeout(args.timeout);
	return args;
}

void *odirect_read_thread(void *arg)
{
	struct odirect_read *rd = arg;

	rd->t0_us = now_us();
	rd->ret = pread(rd->devfd, rd->buf, rd->len, 0);
	rd->err = errno;
	rd->t1_us = now_us();
	atomic_store(&rd->done, 1);
	return NULL;
}

#define PIN_WAIT_MS	1500	/* for the O_DIRECT read to take its reference */
#define PIN_POLL_MS	5

void odirect_wait_pinned(struct odirect_read *rd, uint64_t pfn, int before)
{
	uint64_t deadline = now_ms() + PIN_WAIT_MS;
	struct probe_state ps;

	report_step("wait for the O_DIRECT read to pin the page");
	for (;;) {
		ps = probe_or_fail(pfn);
		if (ps.refcount > before)
			break;
		if (atomic_load(&rd->done))
			fail("the O_DIRECT read completed before a pin was seen (device not slow?)");
		if (now_ms() >= deadline)
			fail("no pin seen within %d ms of starting the O_DIRECT read",
			     PIN_WAIT_MS);
		sleep_ms(PIN_POLL_MS);
	}
	observe("pinned", pfn);
}

void odirect_check(const struct odirect_read *rd, unsigned int min_ms)
{
	if (rd->ret < 0)
		fail_errnum("read the block device into the DAX mapping", "pread",
			    rd->err);
	if ((rd->t1_us - rd->t0_us) / 1000 < min_ms)
		fail("I/O completed too fast to hold a pin (device not slow?)");
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

bool wait_flag(atomic_int *flag, uint64_t deadline_ms)
{
	while (!atomic_load(flag)) {
		if (now_ms() >= deadline_ms)
			return false;
		sleep_ms(PIN_POLL_MS);
	}
	return true;
}

struct pin_counters read_pin_counters(void)
{
	struct pin_counters pc = { -1, -1 };
	char name[64];
	long long val;
	FILE *fp;
	int fd;

	fd = open("/proc/sys/vm/stat_refresh", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		fail_errno("refresh vmstat counters", "open");
	if (write(fd, "1\n", 2) != 2)
		fail_errno("refresh vmstat counters", "write");
	if (close(fd) < 0)
		fail_errno("refresh vmstat counters", "close");

	fp = fopen("/proc/vmstat", "re");
	if (!fp)
		fail_errno("read /proc/vmstat", "fopen");
	while (fscanf(fp, "%63s %lld", name, &val) == 2) {
		if (strcmp(name, "nr_foll_pin_acquired") == 0)
			pc.acquired = val;
		else if (strcmp(name, "nr_foll_pin_released") == 0)
			pc.released = val;
	}
	fclose(fp);
	if (pc.acquired < 0 || pc.released < 0)
		fail("nr_foll_pin_acquired/released missing from /proc/vmstat");
	return pc;
}

static const char *set_target_dev(void *cfg, const char *arg)
{
	((struct mount_target *)cfg)->dev = arg;
	return NULL;
}

static const char *set_target_mountpoint(void *cfg, const char *arg)
{
	if (arg[0] != '/')
		return "--mountpoint must be an absolute path";
	((struct mount_target *)cfg)->mountpoint = arg;
	return NULL;
}

static const char *set_target_fstype(void *cfg, const char *arg)
{
	((struct mount_target *)cfg)->fstype = arg;
	return NULL;
}

const struct helper_option mount_target_options[] = {
	{ "dev", required_argument, true, "--dev BLOCKDEV", set_target_dev },
	{ "mountpoint", required_argument, true, "--mountpoint DIR", set_target_mountpoint },
	{ "fstype", required_argument, false, "[--fstype TYPE]", set_target_fstype },
	{ 0 },
};

const char *mount_target_check(void *cfg, const struct helper_args *args)
{
	const struct mount_target *c = cfg;
	size_t n = strlen(c->mountpoint);

	/* The test file must live on the filesystem that is unmounted. */
	if (strncmp(args->file, c->mountpoint, n) != 0 || args->file[n] != '/')
		return "--file must be under --mountpoint";
	return NULL;
}

bool read_sysfs_line(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	if (n == 0)
		errno = ENODATA;
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return true;
}

bool read_sysfs_u64(const char *path, uint64_t *out)
{
	char buf[64];

	if (!read_sysfs_line(path, buf, sizeof(buf)))
		return false;
	errno = 0;
	*out = strtoull(buf, NULL, 0);
	return errno == 0;
}

void pmem_pfn_range(const char *dev, uint64_t *start, uint64_t *nr)
{
	const char *name = strrchr(dev, '/');
	uint64_t res, size;
	char path[512];

	name = name ? name + 1 : dev;
	snprintf(path, sizeof(path), "/sys/block/%s/device/resource", name);
	if (!read_sysfs_u64(path, &res))
		fail("cannot read the PFN range of %s from %s", dev, path);
	snprintf(path, sizeof(path), "/sys/block/%s/device/size", name);
	if (!read_sysfs_u64(path, &size) || size == 0)
		fail("cannot read the size of %s from %s", dev, path);
	*start = res / HELPER_PAGE_SIZE;
	*nr = size / HELPER_PAGE_SIZE;
}

uint64_t pin_closed_page(const struct mount_target *t, const struct helper_args *args,
			 uint64_t start, uint64_t nr, struct odirect_read *io, pthread_t *tid)
{
	struct probe_state before;
	struct dax_file f;
	uint64_t pfn;
	int err;

	report_step("open block device");
	io->devfd = open(t->dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (io->devfd < 0)
		infra_error("open %s with O_DIRECT: open: %s", t->dev, strerror(errno));

	f = dax_file_create(args);
	dax_file_map(&f, DAX_PLACE_ANY);
	pfn = dax_file_fault_first(&f);
	before = observe("before", pfn);
	if (pfn < start || pfn >= start + nr)
		fail("the test page 0x%" PRIx64 " is outside %s's range 0x%" PRIx64 "+%" PRIu64,
		     pfn, t->mountpoint, start, nr);

	report_step("start the O_DIRECT read");
	io->buf = f.addr;
	io->len = HELPER_PAGE_SIZE;
	err = pthread_create(tid, NULL, odirect_read_thread, io);
	if (err)
		fail_errnum("start the I/O thread", "pthread_create", err);
	odirect_wait_pinned(io, pfn, before.refcount);

	/* Nothing but the pin may keep the page: no mapping, no open file. */
	dax_file_unmap(&f);
	dax_file_close(&f);
	observe("pinned_closed", pfn);
	return pfn;
}

void report_idle_scan(uint64_t start, uint64_t nr)
{
	long long valid, above, below;

	above = probe_scan(start, nr, 1, &valid, &below);
	report_extra_int("scan_valid", valid);
	report_extra_int("scan_above_1", above);
	report_extra_int("scan_below_1", below);
	above = probe_scan(start, nr, 0, NULL, &below);
	report_extra_int("scan_above_0", above);
	report_extra_int("scan_below_0", below);
}
