import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withCheckoutLock } from '../src/built-kernel.js';

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
