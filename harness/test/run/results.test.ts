import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { HarnessError } from '../../src/core/errors.js';
import { formatRunId, RunStore } from '../../src/run/results.js';

function tempRoot(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'results-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('formatRunId', async (t) => {
  t.equal(formatRunId(new Date('2026-11-25T23:03:40.469Z'), '6.1.0-56-amd64', '076b'), '20261125-230340Z-6.1.0-56-amd64-076b', 'UTC stamp, label, suffix');
  t.equal(formatRunId(new Date('2027-01-02T03:04:05.000Z'), 'x', 'ffff'), '20270102-030405Z-x-ffff', 'zero-padded fields, milliseconds dropped');
  t.equal(formatRunId(new Date(0), 'my kernel/6.1+rc:1 ü', 'aa'), '19700101-000000Z-my_kernel_6.1_rc_1__-aa', 'anything unsafe in a directory name becomes _');
  const random = formatRunId(new Date(0), 'k');
  t.match(random, /^19700101-000000Z-k-[0-9a-f]{4}$/, 'a random 4-hex-digit suffix by default');
  const many = new Set(Array.from({ length: 50 }, () => formatRunId(new Date(0), 'k')));
  t.ok(many.size > 40, 'the suffix varies');
  // Lexical order of run ids is time order.
  const a = formatRunId(new Date('2026-11-25T09:59:59Z'), 'k', '0000');
  const b = formatRunId(new Date('2026-11-25T10:00:00Z'), 'k', '0000');
  t.ok(a < b);
});

t.test('RunStore.create makes a fresh directory every time', async (t) => {
  const root = join(tempRoot(t), 'nested', 'results');
  const s1 = RunStore.create(root, '6.1.0-56-amd64');
  const s2 = RunStore.create(root, '6.1.0-56-amd64');
  t.teardown(() => {
    s1.close();
    s2.close();
  });
  t.not(s1.dir, s2.dir, 'two stores never share a directory');
  t.equal(dirname(s1.dir), root, 'created under the root (made if missing)');
  t.match(basename(s1.dir), /^\d{8}-\d{6}Z-6\.1\.0-56-amd64-[0-9a-f]{4}$/);
  t.same(readdirSync(root).sort(), [basename(s1.dir), basename(s2.dir)].sort());
  t.ok(statSync(s1.path('results.tap')).isFile(), 'results.tap exists from the start');
  t.equal(s1.path('console.log'), join(s1.dir, 'console.log'));
});

t.test('tap() appends and is on disk at once', async (t) => {
  const s = RunStore.create(tempRoot(t), 'k');
  t.teardown(() => s.close());
  t.equal(readFileSync(s.path('results.tap'), 'utf8'), '');
  s.tap(['TAP version 14', '1..2']);
  t.equal(readFileSync(s.path('results.tap'), 'utf8'), 'TAP version 14\n1..2\n', 'readable before close');
  s.tap(['ok 1 - ext4']);
  s.tap(['not ok 2 - xfs', '  ---', '  reason: x', '  ...']);
  t.equal(readFileSync(s.path('results.tap'), 'utf8'), 'TAP version 14\n1..2\nok 1 - ext4\nnot ok 2 - xfs\n  ---\n  reason: x\n  ...\n');
});

t.test('record() writes one JSON line per call', async (t) => {
  const s = RunStore.create(tempRoot(t), 'k');
  t.teardown(() => s.close());
  t.notOk(existsSync(s.path('tests.jsonl')));
  const r1 = { id: 'ext4-mmap-fault-4k', outcome: 'pass', checks: [{ name: 'a\nb', ok: true }] };
  const r2 = { id: 'xfs-odirect-pin', outcome: 'fail', reason: 'during: "quoted"' };
  s.record(r1);
  t.same(readFileSync(s.path('tests.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as unknown), [r1], 'on disk after the first record');
  s.record(r2);
  const lines = readFileSync(s.path('tests.jsonl'), 'utf8').split('\n');
  t.equal(lines.length, 3, 'two lines and the final newline (newlines inside values are escaped)');
  t.equal(lines[2], '');
  t.same(lines.slice(0, 2).map((l) => JSON.parse(l) as unknown), [r1, r2]);
});

t.test('writeFile() replaces the file whole, with no temporary left behind', async (t) => {
  const s = RunStore.create(tempRoot(t), 'k');
  t.teardown(() => s.close());
  s.writeFile('run.json', '{"a":1}\n');
  t.equal(readFileSync(s.path('run.json'), 'utf8'), '{"a":1}\n');
  s.writeFile('run.json', Buffer.from('{"a":2,"finished":true}\n'));
  t.equal(readFileSync(s.path('run.json'), 'utf8'), '{"a":2,"finished":true}\n', 'overwritten, not appended');
  t.same(readdirSync(s.dir).sort(), ['results.tap', 'run.json'], 'no .run.json.tmp left');
});

t.test('an unwritable results directory is a config error', async (t) => {
  const file = join(tempRoot(t), 'a-file');
  writeFileSync(file, 'x');
  const root = join(file, 'sub');
  const err = t.throws(() => RunStore.create(root, 'k')) as HarnessError;
  t.type(err, HarnessError);
  t.equal(err.kind, 'config');
  t.match(err.message, `results directory ${root} is not writable`);
  t.match(err.hint, /--results/);
  t.ok(err.cause, 'the filesystem error is kept as the cause');
});
