// Loading mutants: a directory of real git format-patch files, each a deliberate refcount bug
// whose commit message names the scenario expected to catch it.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideCulprits, formatMatrixTable, loadMutants, matrixCell, prefixState, type PrefixState } from '../../src/campaign/campaign.js';
import { errorRecord } from '../../src/run/run.js';
import type { RunSummary, TestRecord } from '../../src/run/run.js';
import { HarnessError } from '../../src/core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'dax-campaign-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const repo = join(dir, 'linux');
const git = (...args: string[]): string => execFileSync('git', ['-C', repo, '-c', 'user.name=Dev', '-c', 'user.email=dev@example.org', ...args], { encoding: 'utf8' });
execFileSync('git', ['init', '-q', '-b', 'main', repo]);
mkdirSync(join(repo, 'mm'));
writeFileSync(join(repo, 'mm', 'gup.c'), 'static void put_pin(void)\n{\n\tput_page(page);\n}\n');
git('add', '-A');
git('commit', '-q', '-m', 'base');
writeFileSync(join(repo, 'mm', 'gup.c'), 'static void put_pin(void)\n{\n}\n');
git('commit', '-q', '-am', 'mm/gup: leak the pin on unpin\n\nA deliberate refcount bug: a pinned DAX page is never released.\n\nCaught-by: pin-truncate-vmsplice\n');
const leak = git('format-patch', '--stdout', '-1');
writeFileSync(join(repo, 'mm', 'gup.c'), 'static void put_pin(void)\n{\n\tput_page(page);\n\tput_page(page);\n}\n');
git('commit', '-q', '-am', 'mm/gup: drop the pin twice');
const twice = git('format-patch', '--stdout', '-1');

const mutants = join(dir, 'mutants');
mkdirSync(mutants);
// Written out of order: the result is sorted by file name.
writeFileSync(join(mutants, 'put-twice.patch'), twice);
writeFileSync(join(mutants, 'leak-pin.patch'), leak);
writeFileSync(join(mutants, 'README.md'), 'not a mutant\n');

t.test('loadMutants: every .patch file, sorted, parsed, with its expected killers', async (t) => {
  const ms = loadMutants(mutants, []);
  t.same(ms.map((m) => m.name), ['leak-pin', 'put-twice'], 'named after the file, .patch dropped, README ignored');
  t.same(ms.map((m) => m.path), [join(mutants, 'leak-pin.patch'), join(mutants, 'put-twice.patch')]);
  t.equal(ms[0]!.expectedKillers, 'pin-truncate-vmsplice', 'Caught-by: from the commit message');
  t.equal(ms[1]!.expectedKillers, '', 'no Caught-by: line, no expected killer');
  t.equal(ms[0]!.patches.length, 1);
  t.equal(ms[0]!.patches[0]!.subject, 'mm/gup: leak the pin on unpin');
  t.ok(ms[0]!.patches[0]!.hasDiff);
  t.equal(ms[1]!.patches[0]!.subject, 'mm/gup: drop the pin twice');
});

t.test('loadMutants: only the named ones', async (t) => {
  const ms = loadMutants(mutants, ['put-twice']);
  t.same(ms.map((m) => m.name), ['put-twice']);
  t.same(loadMutants(mutants, ['put-twice', 'leak-pin']).map((m) => m.name), ['leak-pin', 'put-twice'], 'in directory order');
});

t.test('loadMutants: bad input is a config error that says what exists', async (t) => {
  const err = (f: () => unknown): HarnessError => {
    try {
      f();
    } catch (e) {
      return e as HarnessError;
    }
    throw new Error('did not throw');
  };
  const unknown = err(() => loadMutants(mutants, ['leak-pin', 'no-such', 'put_twice']));
  t.type(unknown, HarnessError);
  t.equal(unknown.kind, 'config');
  t.equal(unknown.message, 'unknown mutant(s): no-such, put_twice');
  t.match(unknown.hint, /leak-pin, put-twice/, 'the hint lists the mutants there are');

  const empty = join(dir, 'empty');
  mkdirSync(empty);
  writeFileSync(join(empty, 'notes.txt'), 'x\n');
  const e2 = err(() => loadMutants(empty, []));
  t.equal(e2.kind, 'config');
  t.match(e2.message, /empty holds no \.patch files/);
  t.ok(e2.hint);

  const e3 = err(() => loadMutants(join(dir, 'missing'), []));
  t.equal(e3.kind, 'config');
  t.match(e3.message, /--mutants .*missing: no such directory/);
  t.match(e3.hint, /kernel-tests\/mutants/);

  writeFileSync(join(empty, 'broken.patch'), 'just text\n');
  const e4 = err(() => loadMutants(empty, []));
  t.equal(e4.kind, 'config');
  t.match(e4.message, /broken\.patch: not an mbox or format-patch file/, 'a file that is not a patch is named');
});

t.test('bisect: a patch is blamed only when the prefix before it is known green', async (t) => {
  const red: PrefixState = { state: 'red' };
  const green: PrefixState = { state: 'green' };
  const unknown = (why: string): PrefixState => ({ state: 'unknown', why });
  const states = new Map<number, Map<string, PrefixState>>([
    [1, new Map([['ext4/a', green], ['ext4/b', unknown('did not build or boot: build error: make failed')], ['ext4/c', red]])],
    [2, new Map([['ext4/a', red], ['ext4/b', red]])],
  ]);
  const c = decideCulprits(['ext4/a', 'ext4/b', 'ext4/c', 'ext4/d'], states, 3, ['p1', 'p2', 'p3']);
  t.same(c[0], { point: 'ext4/a', patch: 2, subject: 'p2' }, 'green at 1, red at 2: patch 2');
  t.same(c[1], { point: 'ext4/b', patch: null, subject: null, between: [1, 2], why: 'prefix 1: did not build or boot: build error: make failed' }, 'unknown at 1, red at 2: between 1 and 2, never patch 2');
  t.same(c[2], { point: 'ext4/c', patch: 1, subject: 'p1' }, 'red at the first prefix: patch 1 (the base is green)');
  t.same(c[3], { point: 'ext4/d', patch: null, subject: null, between: [1, 3], why: 'prefix 1: not run; prefix 2: not run' }, 'never run at a prefix: unknown, never the head');
  const d = decideCulprits(['ext4/e'], new Map([[1, new Map([['ext4/e', green]])], [2, new Map([['ext4/e', green]])]]), 3, ['p1', 'p2', 'p3']);
  t.same(d[0], { point: 'ext4/e', patch: 3, subject: 'p3' }, 'green up to n-1: the last patch');
});

t.test('bisect: what a prefix run says of a point', async (t) => {
  const summary = (outcome: TestRecord['outcome'], reason = ''): RunSummary => ({ exitCode: 0, runDir: '', records: [{ fs: 'ext4', test: 'a', outcome, reason } as TestRecord], boots: [], testsMs: 0, infra: [] });
  t.same(prefixState(summary('fail'), null, 'ext4/a'), { state: 'red' });
  t.same(prefixState(summary('xfail'), null, 'ext4/a'), { state: 'red' });
  t.same(prefixState(summary('pass'), null, 'ext4/a'), { state: 'green' });
  t.same(prefixState(summary('error', 'infrastructure: the guest was lost'), null, 'ext4/a'), { state: 'unknown', why: 'error: infrastructure: the guest was lost' });
  t.same(prefixState(null, 'dax-harness: build error: make failed\nmore', 'ext4/a'), { state: 'unknown', why: 'did not build or boot: dax-harness: build error: make failed' });
  t.same(prefixState(summary('pass'), null, 'xfs/a'), { state: 'unknown', why: 'the point was not run' });
});

t.test('the matrix table: a row per point, a column per kernel, counts at the bottom', async (t) => {
  const rec = (fs: string, test: string, outcome: TestRecord['outcome']): TestRecord => ({ ...errorRecord(fs, test, ''), outcome });
  const k61 = [rec('ext4', 'pin-unlink', 'xfail'), rec('ext4', 'odirect-pin', 'pass'), rec('ext4', 'gup-crosscheck', 'skip'), rec('', 'kernel-log', 'pass')];
  const k72 = [rec('ext4', 'pin-unlink', 'fail'), rec('ext4', 'odirect-pin', 'pass')];
  const points = ['pin-unlink', 'odirect-pin', 'gup-crosscheck'].map((test) => ({ fs: 'ext4', test }));
  const table = formatMatrixTable([{ label: 'debian-6.1', records: k61 }, { label: 'debian-7.2', records: k72 }, { label: 'debian-6.12', records: null }], points);
  t.match(table[0], /^point\s+debian-6\.1\s+debian-7\.2\s+debian-6\.12$/);
  t.match(table.find((l) => l.startsWith('ext4/pin-unlink')), /xfail\s+fail\s+error/, 'known on one kernel, red on another, the kernel that never ran says error');
  t.match(table.find((l) => l.startsWith('ext4/gup-crosscheck')), /skip\s+-\s+error/, 'a point a kernel did not run is -, never pass');
  t.match(table.at(-1), /^\(pass\/known\/skip\/red\)\s+1\/1\/1\/0\s+1\/0\/0\/1\s+error$/, 'the kernel-log point is not counted as a test');
  t.equal(matrixCell(null, 'ext4', 'x'), 'error');
});
