// Tests for the KCIDB export, validated by ajv against kcidb-io's own v5.3 schema
// (test/fixtures/kcidb): a real run (Debian 6.1.0-57) and constructed records for what it lacks
// (a built kernel with a series, a crash with a long dmesg, an interrupted run).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import ajvFormats from 'ajv-formats';
import { KCIDB_LOG_MAX, planKcidb, type KcidbData, type KcidbTest } from '../../src/report/kcidb.js';
import { parseRunRecords, type RunJson, type RunRecords } from '../../src/report/run-records.js';
import type { KernelSource } from '../../src/kernel/kernel.js';
import type { TestRecord } from '../../src/run/run.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const REAL = join(FIXTURES, 'runs-real', '6.1.0-57');
const real = (): RunRecords => parseRunRecords(REAL, readFileSync(join(REAL, 'run.json'), 'utf8'), readFileSync(join(REAL, 'tests.jsonl'), 'utf8'));

// The schema is draft 2020-12 ($defs): ajv's 2020 build, with the formats (date-time, uri, email)
// it declares. Both packages are CommonJS: named and .default imports type and load alike.
const ajv = new Ajv2020({ allErrors: true });
ajvFormats.default(ajv);
const validate = ajv.compile(JSON.parse(readFileSync(join(FIXTURES, 'kcidb', 'kcidb-v5.3.schema.json'), 'utf8')) as object);
// The data as kcidb-submit would read it: through JSON, so nothing JavaScript-only slips through.
const check = (data: unknown): string[] => (validate(JSON.parse(JSON.stringify(data))) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));

// A run as parseRunRecords reads it from disk: run.json and tests.jsonl text (constructed).
function runOf(run: Partial<RunJson> & { runId: string; tests?: string[] }, recs: (Partial<TestRecord> & { fs: string; test: string })[]): RunRecords {
  const json = {
    startedAt: '2026-12-04T02:00:00.000Z',
    kernel: { release: '6.1.0-57-amd64', origin: 'debian:linux-image-6.1.0-57-amd64', packageVersion: '6.1.192-3' },
    filesystems: ['ext4', 'xfs'],
    model: { name: 'legacy', idle: 1 },
    profile: { name: 'default' },
    ...run,
  };
  const lines = recs.map((r) => JSON.stringify({ id: `${r.fs}-${r.test}`, outcome: 'pass', durationMs: 100, ...r }));
  return parseRunRecords(`/results/${run.runId}`, JSON.stringify(json), lines.join('\n'));
}

const COMMIT = '5ea1e01bac9c8b1a0e6c1f9d2c7e4a3b6d8f0a12';
const SERIES_HASH = '903638c087335b10293663c682b9aa0076f9f7be478a8e7828bc22e12d301b42';
const builtSource = (series: KernelSource['series']): KernelSource => ({
  line: 'linux',
  tree: 'https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git',
  commit: COMMIT,
  base: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
  buildKey: 'bb1432986e05e667',
  config: 'tinyconfig+dax.config',
  series,
});
const builtRun = (runId: string, series: KernelSource['series'], recs: Parameters<typeof runOf>[1]): RunRecords =>
  runOf({ runId, model: { name: 'folio', idle: 0 }, kernel: { release: '7.2.13', origin: `build:linux@${COMMIT.slice(0, 12)}`, packageVersion: null, source: builtSource(series) } }, recs);

t.test('the real run validates against the KCIDB v5.3 schema', async (t) => {
  const r = real();
  const data = planKcidb([r]);
  t.same(check(data), []);
  t.same(data.version, { major: 5, minor: 3 });
  t.equal(data.checkouts.length, 1);
  t.equal(data.builds.length, 1);
  t.equal(data.tests.length, r.tests.length, 'a test per record, no MISS: every planned test has one');
  const co = data.checkouts[0]!;
  t.match(co.id, /^daxharness:[0-9a-f]{16}$/);
  t.equal(co.tree_name, 'debian-6.1');
  t.equal(co.patchset_hash, '', 'a package: no series on top');
  t.notOk('git_commit_hash' in co || 'git_repository_url' in co, 'no commit, no repository for a package');
  t.equal(co.start_time, '2026-12-03T14:48:02.176Z');
  const b = data.builds[0]!;
  t.equal(b.checkout_id, co.id);
  t.equal(b.architecture, 'x86_64');
  t.equal(b.config_name, 'debian');
  t.equal(b.status, 'PASS');
  for (const x of data.tests) t.equal(x.build_id, b.id);
  const count = (s: string): number => data.tests.filter((x) => x.status === s).length;
  t.same([count('PASS'), count('SKIP'), count('FAIL')], [24, 5, 17], 'the 17 known failures are FAIL');
  const x = data.tests.find((y) => y.id === 'daxharness:20261203-144802Z-6.1.0-57-amd64-3d4b.ext4-pin-truncate-odirect-unmapped')!;
  t.equal(x.path, 'dax.ext4.pin-truncate-odirect-unmapped', 'dashes are allowed in a KCIDB path');
  t.match(x.misc.known_failure, /^6\.1's dax_layout_busy_page_range\(\) returns at once/);
  t.notMatch(x.misc.known_failure, /evidence:/);
  t.equal(x.misc.outcome, 'xfail');
  t.match(x.log_excerpt, /^known failure: [\s\S]*\nfailed checks:\n[\s\S]*\ndmesg:\n[\s\S]*WARNING: CPU: 0 PID: 342 at fs\/dax\.c:398/);
  t.equal(x.comment, x.log_excerpt!.split('\n')[0]);
  t.equal(x.duration, r.tests.find((y) => y.id === 'ext4-pin-truncate-odirect-unmapped')!.durationMs / 1000);
  t.same(x.environment, { comment: 'qemu', misc: { model: 'legacy', profile: 'default', accel: 'tcg' } });
  t.equal(x.start_time, '2026-12-03T14:48:02.176Z');
});

t.test('every outcome maps to its status', async (t) => {
  const r = runOf({ runId: 'r-mixed' }, [
    { fs: 'ext4', test: 'pass', outcome: 'pass' },
    { fs: 'ext4', test: 'fail', outcome: 'fail', reason: '1 of 3 checks failed', checks: [{ name: 'unmapped: refcount back to idle', ok: false, expected: '1', actual: '2' }] },
    { fs: 'ext4', test: 'timeout', outcome: 'timeout', reason: 'helper did not finish in 120 s' },
    { fs: 'ext4', test: 'crash', outcome: 'crash', reason: 'the kernel crashed: BUG: kernel NULL pointer dereference' },
    { fs: 'ext4', test: 'error', outcome: 'error', reason: 'infrastructure: the guest was lost (QEMU exited 1)' },
    { fs: 'ext4', test: 'skip', outcome: 'skip', reason: 'the kernel lacks CONFIG_GUP_TEST' },
    { fs: 'ext4', test: 'xfail', outcome: 'xfail', knownAs: 'timeout', reason: 'known failure: 6.1 frees a pinned block (evidence: run x); this run: timed out', known: { reason: '6.1 frees a pinned block', evidence: 'run x' } },
    { fs: 'all', test: 'kernel-log', outcome: 'pass', reason: '3 boot log(s) read: nothing outside the test windows' },
  ]);
  const data = planKcidb([r]);
  t.same(check(data), []);
  const by = new Map(data.tests.map((x) => [x.misc.test as string, x]));
  const status = Object.fromEntries([...by].map(([k, v]) => [k, v.status]));
  t.same(status, { pass: 'PASS', fail: 'FAIL', timeout: 'FAIL', crash: 'FAIL', error: 'ERROR', skip: 'SKIP', xfail: 'FAIL', 'kernel-log': 'PASS' });
  t.same(by.get('xfail')!.misc, { run_id: 'r-mixed', fs: 'ext4', test: 'xfail', outcome: 'xfail', known_failure: '6.1 frees a pinned block', known_evidence: 'run x', known_as: 'timeout' });
  t.equal(by.get('crash')!.misc.outcome, 'crash', 'the harness\'s own outcome is kept');
  t.notOk('known_failure' in by.get('fail')!.misc);
  t.equal(by.get('kernel-log')!.path, 'dax.kernel-log');
  t.equal(by.get('kernel-log')!.id, 'daxharness:r-mixed.all-kernel-log');
  t.notOk('comment' in by.get('pass')! || 'log_excerpt' in by.get('pass')!, 'a plain pass has nothing to say');
  t.equal(by.get('fail')!.log_excerpt, '1 of 3 checks failed\nfailed checks:\n  unmapped: refcount back to idle: expected 1, observed 2');
});

t.test('a long dmesg window is cut from its start; the reason stays', async (t) => {
  const dmesg = Array.from({ length: 2000 }, (_, i) => `[ ${String(i).padStart(5)}.000000] dax line ${i} ${'x'.repeat(60)}`);
  dmesg[1999] = '[ 1999.000000] Kernel panic - not syncing: Fatal exception \u0000 NUL from a torn console';
  const r = runOf({ runId: 'r-long' }, [{ fs: 'xfs', test: 'crashy', outcome: 'crash', reason: 'the kernel crashed: Oops: 0000 [#1] PREEMPT SMP\nsecond line', dmesgExcerpt: dmesg }]);
  const data = planKcidb([r]);
  t.same(check(data), [], 'no NUL reaches the data');
  const x = data.tests[0]!;
  t.ok(x.log_excerpt!.length <= KCIDB_LOG_MAX, `${x.log_excerpt!.length} <= ${KCIDB_LOG_MAX}`);
  t.ok(x.log_excerpt!.length > KCIDB_LOG_MAX - 100, 'and uses the room it has');
  t.match(x.log_excerpt, /^the kernel crashed: Oops: 0000 \[#1\] PREEMPT SMP\nsecond line\ndmesg:\n\[\.\.\. \d+ earlier dmesg line\(s\) cut\]\n/);
  t.match(x.log_excerpt, /Kernel panic - not syncing: Fatal exception  NUL from a torn console$/, 'the end of the window is kept');
  t.notMatch(x.log_excerpt, 'dax line 0 ');
  t.equal(x.comment, 'the kernel crashed: Oops: 0000 [#1] PREEMPT SMP', 'the reason\'s first line');
  const huge = planKcidb([
    runOf({ runId: 'r-huge' }, [
      { fs: 'xfs', test: 'one-line', outcome: 'crash', reason: 'the kernel crashed', dmesgExcerpt: ['early', `${'y'.repeat(40_000)} the end`] },
      { fs: 'xfs', test: 'long-reason', outcome: 'fail', reason: 'r'.repeat(20_000), dmesgExcerpt: ['a dmesg line'] },
    ]),
  ]);
  t.same(check(huge), []);
  const [oneLine, longReason] = huge.tests as [KcidbTest, KcidbTest];
  t.match(oneLine.log_excerpt, /^the kernel crashed\ndmesg:\n\[\.\.\. 1 earlier dmesg line\(s\) cut\]\ny+ the end$/, 'a line too long to fit keeps its end');
  t.ok(oneLine.log_excerpt!.length <= KCIDB_LOG_MAX);
  t.equal(longReason.log_excerpt, 'r'.repeat(KCIDB_LOG_MAX), 'a reason longer than the limit fills it');
  const withNul = { ...data, tests: [{ ...x, log_excerpt: 'a\u0000b' }] };
  t.not(check(withNul).length, 0, 'the schema itself refuses a NUL: the export has to drop it');
});

t.test('a built kernel with a series: commit, repository, patchset hash and message id reach the checkout', async (t) => {
  const series = {
    hash: SERIES_HASH,
    patches: [
      { subject: '[PATCH 1/2] fs/dax: document dax_busy_page()', messageId: '20261201120000.1001-1-dev@kernel.org' },
      { subject: '[PATCH 2/2] mm/memremap: wake fsdax waiters when the last reference', messageId: '20261201120000.1001-2-dev@kernel.org' },
    ],
  };
  const withSeries = builtRun('r-series', series, [{ fs: 'ext4', test: 'pin-unlink', outcome: 'pass' }]);
  const base = builtRun('r-base', null, [{ fs: 'ext4', test: 'pin-unlink', outcome: 'fail', reason: 'pin-unlink: page freed while pinned' }]);
  const log = Array.from({ length: 3000 }, (_, i) => `  CC      fs/dax-${i}.o`).join('\n') + '\n  LD      vmlinux\nKernel: arch/x86/boot/bzImage is ready  (#1)\n';
  const data = planKcidb([withSeries, base], { buildLogs: new Map([['r-series', log]]) });
  t.same(check(data), []);
  t.equal(data.checkouts.length, 2, 'the base and the base with the series are two checkouts');
  const co = data.checkouts.find((c) => c.patchset_hash !== '')!;
  t.equal(co.patchset_hash, SERIES_HASH);
  t.equal(co.message_id, '20261201120000.1001-1-dev@kernel.org', 'the first patch\'s Message-ID');
  t.equal(co.git_commit_hash, COMMIT);
  t.equal(co.git_repository_url, 'https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git');
  t.equal(co.tree_name, 'linux');
  t.equal(co.comment, '[PATCH 1/2] fs/dax: document dax_busy_page()');
  t.same(co.misc.series_patches, series.patches.map((p) => p.subject));
  const baseCo = data.checkouts.find((c) => c.patchset_hash === '')!;
  t.notOk('message_id' in baseCo);
  t.equal(baseCo.git_commit_hash, COMMIT);
  const b = data.builds.find((x) => x.checkout_id === co.id)!;
  t.equal(b.config_name, 'tinyconfig+dax.config');
  t.equal(b.misc.build_key, 'bb1432986e05e667');
  t.ok(b.log_excerpt!.length <= KCIDB_LOG_MAX);
  t.match(b.log_excerpt, /^\[\.\.\. earlier lines cut\]\n {2}CC {6}fs\/dax-\d+\.o\n/, 'cut at a line start');
  t.match(b.log_excerpt, /bzImage is ready {2}\(#1\)\n$/, 'the end of the build log');
  t.notOk('log_excerpt' in data.builds.find((x) => x.checkout_id === baseCo.id)!, 'no build.log given: no excerpt');
  t.equal(data.tests.find((x) => x.misc.run_id === 'r-series')!.build_id, b.id);
});

t.test('what KCIDB cannot take is left out, not sent invalid', async (t) => {
  const odd = runOf(
    {
      runId: 'r-odd',
      kernel: {
        release: '7.2.13',
        origin: 'build:/tmp/sid/linux-7.2@5ea1e01bac9c (tinyconfig+dax.config, key bb1432986e05e667)',
        source: { ...builtSource({ hash: SERIES_HASH, patches: [{ subject: 'local', messageId: 'x@localhost' }] }), tree: '/tmp/sid/linux-7.2', commit: '5ea1e01bac9c' },
      },
    },
    [{ fs: 'ext4', test: 'dotted.name', outcome: 'pass' }],
  );
  const data = planKcidb([odd]);
  t.same(check(data), []);
  const co = data.checkouts[0]!;
  t.notOk('git_commit_hash' in co, 'an abbreviated commit fails the schema\'s 40-hex pattern');
  t.notOk('git_repository_url' in co, 'a local path is no https:// URL');
  t.notOk('message_id' in co, 'a Message-ID that is not an address fails format: email');
  t.same([co.misc.tree, co.misc.commit, co.misc.message_id], ['/tmp/sid/linux-7.2', '5ea1e01bac9c', 'x@localhost'], 'they go to misc');
  t.equal(data.tests[0]!.path, 'dax.ext4.dotted_name', 'a dot in a test name would add a path level');
  t.throws(() => planKcidb([odd], { origin: 'dax-harness' }), /KCIDB origin "dax-harness" is not valid/);
  t.equal(planKcidb([odd], { origin: 'my_lab' }).tests[0]!.id, 'my_lab:r-odd.ext4-dotted.name');
});

t.test('an interrupted run: the planned tests without a record are MISS', async (t) => {
  const r = runOf({ runId: 'r-cut', tests: ['mmap-fault-4k', 'pin-unlink', 'reflink-cow'] }, [
    { fs: 'ext4', test: 'mmap-fault-4k', outcome: 'pass' },
    { fs: 'ext4', test: 'pin-unlink', outcome: 'pass' },
  ]);
  const data = planKcidb([r]);
  t.same(check(data), []);
  const miss = data.tests.filter((x) => x.status === 'MISS');
  t.same(
    miss.map((x) => [x.id, x.path]),
    [
      ['daxharness:r-cut.ext4-reflink-cow', 'dax.ext4.reflink-cow'],
      ['daxharness:r-cut.xfs-mmap-fault-4k', 'dax.xfs.mmap-fault-4k'],
      ['daxharness:r-cut.xfs-pin-unlink', 'dax.xfs.pin-unlink'],
      ['daxharness:r-cut.xfs-reflink-cow', 'dax.xfs.reflink-cow'],
    ],
  );
  t.match(miss[0]!.comment, /^no record: the run ended before this test ran/);
  t.equal(miss[0]!.build_id, data.builds[0]!.id);
  t.equal(data.tests.length, 6);
});

t.test('runs of one package share a checkout and a build; the oldest run dates them', async (t) => {
  const a = runOf({ runId: 'r-late', startedAt: '2026-12-05T02:00:00.000Z' }, [{ fs: 'ext4', test: 'x' }]);
  const b = runOf({ runId: 'r-early', startedAt: '2026-12-04T02:00:00.000Z' }, [{ fs: 'ext4', test: 'x' }]);
  const data = planKcidb([a, b]);
  t.same(check(data), []);
  t.equal(data.checkouts.length, 1);
  t.equal(data.builds.length, 1);
  t.equal(data.checkouts[0]!.start_time, '2026-12-04T02:00:00.000Z');
  t.same(data.tests.map((x) => x.misc.run_id), ['r-early', 'r-late']);
  t.not(planKcidb([runOf({ runId: 'r-new', kernel: { release: '6.1.0-57-amd64', origin: 'debian:linux-image-6.1.0-57-amd64', packageVersion: '6.1.192-4' } }, [])]).checkouts[0]!.id, data.checkouts[0]!.id, 'another package version is another checkout');
});

t.test('the validator is live: broken data is refused', async (t) => {
  const good: KcidbData = planKcidb([real()]);
  const first = good.tests[0]!;
  const broken = (over: Partial<KcidbTest> & Record<string, unknown>): KcidbData => ({ ...good, tests: [{ ...first, ...over } as KcidbTest] });
  t.match(check(broken({ status: 'BOGUS' as KcidbTest['status'] })).join('\n'), /\/tests\/0\/status must be equal to one of the allowed values/);
  t.not(check(broken({ path: 'dax.ext4.a b' })).length, 0, 'a space in a path');
  t.not(check(broken({ start_time: '2026-12-03 14:48' })).length, 0, 'not RFC 3339');
  t.not(check(broken({ log_excerpt: 'x'.repeat(KCIDB_LOG_MAX + 1) })).length, 0, 'longer than 16384');
  t.not(check(broken({ id: 'dax-harness:x' })).length, 0, 'a dash in the origin part of an id');
  t.not(check({ ...good, checkouts: [{ ...good.checkouts[0]!, git_commit_hash: '5ea1e01bac9c' }] }).length, 0, 'an abbreviated commit');
  t.not(check({ ...good, version: { major: 4, minor: 3 } }).length, 0, 'another major version');
});
