import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planKernelSource, treeLine, withCheckoutLock } from '../../src/kernel/built-kernel.js';
import type { Patch } from '../../src/kernel/series.js';

function checkout(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lock-'));
  mkdirSync(join(dir, '.git'));
  return dir;
}

t.test('the checkout lock: held while fn runs, released after, even on a throw', async (t) => {
  const dir = checkout();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lock = join(dir, '.git', 'dax-harness.lock');
  const seen = await withCheckoutLock(dir, () => undefined, async () => readFileSync(lock, 'utf8').trim());
  t.equal(seen, String(process.pid), 'the lock names its holder');
  t.notOk(existsSync(lock), 'released');
  await t.rejects(withCheckoutLock(dir, () => undefined, async () => Promise.reject(new Error('boom'))), /boom/);
  t.notOk(existsSync(lock), 'released after a throw');
});

t.test('a stale lock (its holder is dead) is taken over', async (t) => {
  const dir = checkout();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['-e', '0']);
  const dead = child.pid!;
  await new Promise((r) => child.on('exit', r));
  writeFileSync(join(dir, '.git', 'dax-harness.lock'), `${dead}\n`);
  t.equal(await withCheckoutLock(dir, () => undefined, async () => 'ran'), 'ran');
});

t.test('a live holder is waited for, and then an error says who holds it', async (t) => {
  const dir = checkout();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
  t.teardown(() => holder.kill('SIGKILL'));
  writeFileSync(join(dir, '.git', 'dax-harness.lock'), `${holder.pid}\n`);
  const logs: string[] = [];
  await t.rejects(withCheckoutLock(dir, (s) => logs.push(s), async () => 'ran', 2500), new RegExp(`still in use by process ${holder.pid}`));
  t.match(logs[0], /waiting for process \d+, which is building/, 'says what it waits for');
  // Released by its holder: the next run goes ahead.
  rmSync(join(dir, '.git', 'dax-harness.lock'));
  t.equal(await withCheckoutLock(dir, () => undefined, async () => 'ran'), 'ran');
});

t.test('a build knows its source: tree, commit, base and the patches under the commit', async (t) => {
  t.equal(treeLine('/home/me/src/linux.git/'), 'linux');
  t.equal(treeLine('https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git'), 'linux');
  t.equal(treeLine('debian-6.1'), 'debian-6.1');
  const patch = (n: number): Patch => ({ index: n, number: n, total: 2, subject: `fs/dax: change ${n}`, from: 'a@b', hasDiff: true, raw: `From x\nSubject: [PATCH ${n}/2]\n\ndiff ${n}`, messageId: `m${n}@x` });
  const s = {
    spec: { kind: 'build' as const, tree: '/src/linux', base: undefined, series: [], baseConfig: 'tinyconfig' as const, fragmentPath: '/r/kernel-tests/dax.config', jobs: 2 },
    applied: { base: 'b'.repeat(40), commits: [{ commit: 'c1', patch: patch(1) }, { commit: 'c2', patch: patch(2) }], head: 'c2' },
  };
  const base = planKernelSource(s, 'b'.repeat(40), 'k0');
  t.same({ line: base.line, series: base.series, config: base.config, buildKey: base.buildKey }, { line: 'build:linux', series: null, config: 'tinyconfig+dax.config', buildKey: 'k0' }, 'the base has no series');
  const first = planKernelSource(s, 'c1', 'k1');
  t.same(first.series!.patches, [{ subject: 'fs/dax: change 1', messageId: 'm1@x' }], 'a prefix has the patches up to it');
  const head = planKernelSource(s, 'c2', 'k2');
  t.equal(head.series!.patches.length, 2);
  t.not(head.series!.hash, first.series!.hash);
  t.equal(head.base, 'b'.repeat(40));
});
