// End to end with a kernel the harness builds: Debian's linux-source-6.1 imported into git,
// tinyconfig + kernel-tests/dax.config, ccache; then the fast suite on it, a series compared
// with its base and bisected, and the mutation proof. Slow lane: the first run on a fresh
// machine builds the kernel from scratch (~25 min on 2 cores); later runs reuse the cached
// build (keyed by tree content and config) and rebuild mutants incrementally.
import t from 'tap';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Parser } from 'tap-parser';
import { FAST_TESTS } from '../../src/suite/suite.js';
import { formatAppendPatch } from '../../src/bench.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const cli = join(root, 'harness', 'dist', 'cli.js');
const results = mkdtempSync(join(tmpdir(), 'dax-e2e-build-'));
t.teardown(() => rmSync(results, { recursive: true, force: true }));

interface TapSummary {
  ok: boolean;
  count: number;
  parseErrors: number;
  extra: string[];
  top: { ok: boolean; name: string; todo: boolean }[];
}

function parseTap(text: string): Promise<TapSummary> {
  return new Promise((resolve) => {
    const p = new Parser();
    const extra: string[] = [];
    const top: TapSummary['top'] = [];
    p.on('extra', (e: string) => extra.push(e));
    p.on('assert', (a: { ok: boolean; name: string; todo: unknown }) => top.push({ ok: a.ok, name: a.name, todo: Boolean(a.todo) }));
    p.on('complete', (r: { ok: boolean; count: number; failures: { tapError?: unknown }[] }) =>
      resolve({ ok: r.ok, count: r.count, parseErrors: r.failures.filter((f) => f.tapError).length, extra, top }),
    );
    p.end(text);
  });
}

function newest(prefix: RegExp): string {
  const d = readdirSync(results).filter((x) => prefix.test(x)).sort().pop();
  if (!d) throw new Error(`no run directory matching ${prefix} in ${results}`);
  return join(results, d);
}

function records(dir: string): { id: string; outcome: string; reason: string }[] {
  return readFileSync(join(dir, 'tests.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

t.test('the fast suite on a kernel built from debian-6.1 (tinyconfig + dax.config)', async (t) => {
  const r = await execa(process.execPath, [cli, 'run', '--tree', 'debian-6.1', '--tests', 'fast', '--results', results, '-v'], { reject: false, timeout: 3_600_000 });
  const tap = await parseTap(r.stdout);
  t.equal(tap.parseErrors, 0, 'TAP parses');
  t.same(tap.extra, [], 'no non-TAP lines on stdout');
  const dir = newest(/Z-6\.1\.\d+-/);
  const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
  t.match(run.kernel.origin, /^build:debian-6\.1@[0-9a-f]{12} \(tinyconfig\+dax\.config, key [0-9a-f]{16}\)$/, 'the kernel is the harness-built one');
  t.match(run.kernel.release, /^6\.1\.\d+$/, 'release without a + or a local version');
  t.ok(existsSync(join(dir, 'build.log')), 'the build log is kept with the run');
  t.equal(run.model.name, 'legacy', 'detected as the legacy model from its symbols');
  const recs = records(dir);
  t.equal(recs.length, 2 * FAST_TESTS.length + 1, 'every fast test on both filesystems, and the kernel log outside the tests');
  t.equal(recs.at(-1)?.id, 'all-kernel-log');
  const notPassed = recs.filter((x) => x.outcome !== 'pass');
  t.same(notPassed.map((x) => `${x.id}: ${x.outcome} ${x.reason}`), [], 'every fast test passes on the clean built kernel (GUP_TEST is there: nothing skips)');
  t.equal(r.exitCode, 0, 'exit 0');
  t.ok(run.bootToSshMs > 0, `boot to SSH recorded: ${run.bootToSshMs} ms`);
});

t.test('known 6.1 failures on the built kernel: matched by their sites, whatever path its O= build prints', async (t) => {
  // An out-of-tree build prints WARN sites as "../../src/debian-6.1/fs/dax.c:398"; Debian's as "fs/dax.c:398".
  const r = await execa(process.execPath, [cli, 'run', '--tree', 'debian-6.1', '--tests', 'pin-truncate-odirect-unmapped,reflink-cow', '--fs', 'xfs', '--results', results, '-v'], { reject: false, timeout: 3_600_000 });
  const recs = records(newest(/Z-6\.1\.\d+-/));
  t.same(recs.map((x) => [x.id, x.outcome]), [['xfs-pin-truncate-odirect-unmapped', 'xfail'], ['xfs-reflink-cow', 'xfail'], ['all-kernel-log', 'pass']], `both are the known failures (${recs.map((x) => x.reason).join(' | ')})`);
  t.equal(r.exitCode, 0, 'exit 0');
});

t.test('a series against its base: --bisect names the patch that broke a test, exit 1', async (t) => {
  const series = join(root, 'harness', 'test', 'fixtures', 'series', 'fsdax-wakeup-2.mbox');
  const r = await execa(process.execPath, [cli, 'run', '--tree', 'debian-6.1', '--series', series, '--bisect', '--tests', 'mmap-fault-4k,pin-truncate-vmsplice', '--fs', 'ext4', '--results', results, '-v'], {
    reject: false,
    timeout: 3_600_000,
  });
  t.equal(r.exitCode, 1, 'exit 1: the series breaks a test that passed on the base');
  const tap = await parseTap(r.stdout);
  t.equal(tap.parseErrors, 0, 'one TAP document (each kernel a subtest)');
  t.same(tap.extra, [], 'no non-TAP lines on stdout');
  t.match(tap.top.map((p) => p.name), [/^base 6\.1\./, /^series 6\.1\./, /^comparison: 1 new failure/, /^prefix 1\/2 /], 'base, series, comparison and the prefix run');
  t.ok(tap.top[0]!.ok, 'the base is green');
  t.notOk(tap.top[2]!.ok, 'the comparison is red');
  t.match(r.stdout, /ext4\/pin-truncate-vmsplice\s+pass\s+(timeout|fail)\s+new failure/, 'the table names the new failure');
  t.match(r.stdout, /ext4\/mmap-fault-4k\s+pass\s+pass\s+passing/, 'and what still passes');
  t.match(r.stdout, /ext4\/pin-truncate-vmsplice\s+2\/2\s+mm\/memremap: wake fsdax waiters/, 'bisect: the first bad patch is 2/2, not the harmless 1/2');
  const dir = newest(/Z-baseline-/);
  t.match(readFileSync(join(dir, 'comparison.txt'), 'utf8'), /new failure/, 'the comparison is kept in results');
  t.equal(readFileSync(join(dir, 'results.tap'), 'utf8').trimEnd(), r.stdout.trimEnd(), 'the TAP on disk is what was printed');
});

// The tests that the mutants' own headers name; each mutant must turn at least one red.
const MUTATE_TESTS = ['mmap-fault-2m', 'pin-truncate-vmsplice', 'gup-longterm-pmd', 'poison-hwpoison'];

t.test('mutate: every mutant in kernel-tests/mutants/debian-6.1 is killed, the clean kernel stays green', async (t) => {
  const r = await execa(process.execPath, [cli, 'mutate', '--tests', MUTATE_TESTS.join(','), '--results', results, '-v'], { reject: false, timeout: 3_600_000 });
  const tap = await parseTap(r.stdout);
  t.equal(tap.parseErrors, 0, 'TAP parses');
  const mutants = readdirSync(join(root, 'kernel-tests', 'mutants', 'debian-6.1')).filter((f) => f.endsWith('.patch'));
  t.ok(mutants.length >= 6, `at least 6 mutants (${mutants.length})`);
  t.equal(tap.top.length, 1 + mutants.length, 'one point for the clean kernel and one per mutant');
  t.match(tap.top[0]!.name, /^clean kernel 6\.1\.\d+ stays green$/);
  t.ok(tap.top[0]!.ok, 'the clean kernel is green');
  for (const m of mutants) {
    const name = m.replace(/\.patch$/, '');
    const p = tap.top.find((x) => x.name.startsWith(`mutant ${name} `));
    t.equal(p?.name, `mutant ${name} killed`, `${name} is killed`);
  }
  t.equal(r.exitCode, 0, 'exit 0: every mutant killed');
  const dir = newest(/Z-mutate-/);
  const table = readFileSync(join(dir, 'mutants.txt'), 'utf8');
  t.match(table, /^mutant\s+red tests\s+verdict\s+build\s+boot\s+tests/m, 'the table is kept in results');
  t.notMatch(table, /survived|error/, 'no mutant survived or errored');
});

t.test('mutate: a mutant that does not build is an error (exit 2), never a kill', async (t) => {
  const src = join(process.env.HOME ?? '/root', '.cache', 'dax-harness', 'src', 'debian-6.1');
  const dax = await execa('git', ['-C', src, 'show', 'debian-6.1:fs/dax.c']);
  const dir = mkdtempSync(join(tmpdir(), 'dax-mutants-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, '01-does-not-build.patch'), formatAppendPatch('fs/dax.c', dax.stdout, 'this is not C;', 'fs/dax: a mutant that does not compile'));
  const r = await execa(process.execPath, [cli, 'mutate', '--mutants', dir, '--tests', 'mmap-fault-4k', '--fs', 'ext4', '--results', results, '-v'], { reject: false, timeout: 3_600_000 });
  t.equal(r.exitCode, 2, 'exit 2: infrastructure (a build), not a kernel failure');
  const tap = await parseTap(r.stdout);
  t.equal(tap.parseErrors, 0, 'TAP still parses');
  t.same(tap.top.map((p) => [p.ok, p.name]), [[true, tap.top[0]!.name], [false, 'mutant 01-does-not-build error']], 'the clean kernel, then the mutant as an error');
  t.match(r.stdout, /# Subtest: mutant 01-does-not-build\n    1\.\.0 # SKIP build error: the kernel build failed/, 'its subtest says the build failed');
  t.match(r.stderr, /fs\/dax\.c:\d+:\d+: error: /, 'the first compiler error is shown');
});
