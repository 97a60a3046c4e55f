import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConsoleLog, createPmemFiles, findFreePort } from '../../../src/target/qemu/boot.js';
import { loadProfile } from '../../../src/config.js';

const repoDir = fileURLToPath(new URL('../../../../', import.meta.url));

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'boot-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('findFreePort returns a port that can be bound on 127.0.0.1', async (t) => {
  const port = await findFreePort();
  t.ok(Number.isInteger(port) && port > 0 && port < 65536, `port ${port}`);
  await new Promise<void>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
  });
  t.pass('bound and released');
  const ports = await Promise.all([findFreePort(), findFreePort(), findFreePort()]);
  t.ok(ports.every((p) => p > 0), 'concurrent calls work');
});

t.test('ConsoleLog: lines split across chunks', async (t) => {
  const path = join(tempDir(t), 'console.log');
  const c = new ConsoleLog(path);
  const seen: string[] = [];
  const ready: string[] = [];
  c.watch(/Kernel panic - not syncing/, (l) => seen.push(l));
  c.watch(/dax-harness-init: ready/, (l) => ready.push(l));

  const text = [
    '[    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)\r\n',
    '[    3.2] dax-harness-init: start 3.19\r\n',
    '[    8.4] dax-harness-init: ready 8.40\r\n',
    '[   12.1] Kernel panic - not syncing: Fatal exception\r\n',
    '[   12.2] Kernel panic - not syncing: again\r\n',
    'partial line without newline',
  ].join('');
  // Feed in awkward pieces: mid-word, between \r and \n, one character at a time.
  const cuts = [5, 6, 60, 61, 62, 100, 133, 134, 200, 201, 202, 203, 250];
  let last = 0;
  for (const cut of [...cuts, text.length]) {
    c.feed(text.slice(last, cut));
    last = cut;
  }
  t.same(ready, ['[    8.4] dax-harness-init: ready 8.40'], 'a watcher fires once per matching line, without the \\r');
  t.same(seen, ['[   12.1] Kernel panic - not syncing: Fatal exception', '[   12.2] Kernel panic - not syncing: again'], 'and for each later match');

  t.equal(c.tail(2), '[   12.2] Kernel panic - not syncing: again\npartial line without newline', 'tail includes the unfinished line');
  t.equal(c.tail().split('\n').length, 6);
  t.notMatch(c.tail(), /\r/, 'no carriage returns in the tail');

  c.feed(' ... finished\n');
  t.equal(c.tail(1), 'partial line without newline ... finished');
  await c.close();
  t.equal(readFileSync(path, 'utf8'), `${text} ... finished\n`, 'the file has every byte, \\r included');
});

t.test('ConsoleLog: watch() sees only later lines; tail() is bounded', async (t) => {
  const c = new ConsoleLog(join(tempDir(t), 'c.log'));
  c.feed('early match\n');
  const seen: string[] = [];
  c.watch(/match/, (l) => seen.push(l));
  c.feed('late match\n');
  t.same(seen, ['late match']);

  for (let i = 0; i < 1000; i++) c.feed(`line ${i}\n`);
  const tail = c.tail(40).split('\n');
  t.equal(tail.length, 40);
  t.equal(tail.at(-1), 'line 999');
  t.equal(tail[0], 'line 960');
  t.ok(c.tail(1000).split('\n').length <= 400, 'memory for the tail is bounded');
  await c.close();
});

t.test('ConsoleLog: mark() and sinceMark()', async (t) => {
  const path = join(tempDir(t), 'c.log');
  const c = new ConsoleLog(path);
  c.feed('boot messages\n[ 5.0] dax-harness: BEGIN ext4-odirect-pin\n');
  const m = c.mark();
  t.equal(c.sinceMark(m), '', 'nothing yet after a fresh mark');
  c.feed('[ 6.0] BUG: kernel NULL pointer');
  c.feed(' dereference, address: 0000000000000008\n[ 6.1] Oops: 0000 [#1] PREEMPT SMP NOPTI\n');
  t.equal(c.sinceMark(m), '[ 6.0] BUG: kernel NULL pointer dereference, address: 0000000000000008\n[ 6.1] Oops: 0000 [#1] PREEMPT SMP NOPTI\n', 'exactly the text after the mark');
  const m2 = c.mark();
  t.ok(m2 > m, 'marks increase');
  c.feed('x');
  t.equal(c.sinceMark(m2), 'x');
  const all = 'boot messages\n[ 5.0] dax-harness: BEGIN ext4-odirect-pin\n[ 6.0] BUG: kernel NULL pointer dereference, address: 0000000000000008\n[ 6.1] Oops: 0000 [#1] PREEMPT SMP NOPTI\nx';
  t.equal(c.sinceMark(0), all, 'mark 0 is everything (while it is in memory)');
  await c.close();
  t.equal(readFileSync(path, 'utf8'), all, 'the file has it all after close');
});

t.test('ConsoleLog: marks stay exact when old console text is dropped from memory', async (t) => {
  const path = join(tempDir(t), 'c.log');
  const c = new ConsoleLog(path);
  const mib = `${'a'.repeat(1023)}\n`.repeat(1024);
  for (let i = 0; i < 8; i++) c.feed(mib);
  const m = c.mark();
  t.equal(m, 8 * mib.length);
  const last = `${'b'.repeat(1023)}\n`.repeat(1024);
  c.feed(last);
  t.equal(c.sinceMark(m), last, 'the text since the mark, though the memory was trimmed');
  t.ok(c.sinceMark(0).length < 9 * mib.length, 'older text is gone from memory');
  await c.close();
  t.equal(statSync(path).size, 9 * mib.length, 'but the file has everything');
});

t.test('ConsoleLog: appends to an existing file', async (t) => {
  const path = join(tempDir(t), 'c.log');
  const a = new ConsoleLog(path);
  a.feed('first\n');
  await a.close();
  const b = new ConsoleLog(path);
  b.feed('second\n');
  await b.close();
  t.equal(readFileSync(path, 'utf8'), 'first\nsecond\n');
});

t.test('createPmemFiles makes sparse backing files of the NVDIMM sizes', async (t) => {
  const dir = join(tempDir(t), 'pmem');
  const profile = loadProfile(repoDir, 'default');
  const files = createPmemFiles(profile, dir);
  t.same(files, [join(dir, 'pmem0.img'), join(dir, 'pmem1.img')]);
  for (const [i, f] of files.entries()) {
    const st = statSync(f);
    t.equal(st.size, (profile.nvdimms[i]?.sizeMiB ?? 0) * 1024 * 1024, `${f}: ${profile.nvdimms[i]?.sizeMiB} MiB`);
    t.ok(st.blocks * 512 < 1024 * 1024, `${f}: sparse (${st.blocks} blocks allocated)`);
    t.equal(st.mode & 0o777, 0o600, `${f}: private`);
  }
  // A fresh file is a clean NVDIMM: creating again truncates whatever a guest wrote.
  const again = createPmemFiles({ ...profile, nvdimms: [{ sizeMiB: 2 }] }, dir);
  t.equal(statSync(again[0]!).size, 2 * 1024 * 1024);
  t.same(createPmemFiles(loadProfile(repoDir, 'legacy'), join(dir, 'none')), [], 'no NVDIMMs, no files');
});
