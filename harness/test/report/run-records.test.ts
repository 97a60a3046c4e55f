// Reading run directories into the one shape every report and export uses: real run directories
// (current and older formats), damaged input, and the identity of a kernel line.
import t from 'tap';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { byStartTime, findRunDirs, lineKey, parseRunRecords, readRunDir } from '../../src/report/run-records.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'report-runs');

t.test('a real run directory reads with its kernel line, target and build', async (t) => {
  const r = readRunDir(join(fixtures, 'night1-green'));
  t.equal(r.tests.length, 47, '46 points and the kernel-log point');
  t.equal(r.source.line, 'debian-6.1');
  t.equal(r.target, 'qemu');
  t.equal(r.build, '6.1.0-57-amd64 6.1.192-3', 'a packaged kernel is known by its package version');
  t.equal(lineKey(r), 'debian-6.1 on qemu');
  const known = r.tests.filter((x) => x.outcome === 'xfail');
  t.ok(known.length > 0 && known.every((x) => x.known && x.known.reason.length > 0), 'known failures carry their entry');
});

t.test('an older run (no kernel.source, no target, no attempts) gets its line from the origin', async (t) => {
  const old = (origin: string, release: string) =>
    parseRunRecords('/r/x', JSON.stringify({ runId: 'x', startedAt: '2026-11-26T00:00:00Z', kernel: { release, origin }, filesystems: ['ext4'] }), `${JSON.stringify({ id: 'ext4-a', test: 'a', fs: 'ext4', outcome: 'pass' })}\n`);
  const deb = old('debian:linux-image-6.1.0-56-amd64', '6.1.0-56-amd64');
  t.equal(deb.source.line, 'debian-6.1');
  t.equal(deb.target, 'qemu');
  t.same(deb.tests[0]!.attempts, [], 'missing fields are filled');
  const built = old('build:/tmp/sid/linux-7.2@5ea1e01bac9c (tinyconfig+dax.config, key bb1432986e05e667)', '7.2.13');
  t.equal(built.source.line, 'build:linux-7.2');
  t.equal(built.source.buildKey, 'bb1432986e05e667');
  t.equal(built.build, 'build bb1432986e05e667', 'a built kernel is known by its build key');
  t.equal(old('path:/k/bzImage', '6.18.2').source.line, 'custom-6.18');
});

t.test('damaged input is a clear error naming the file and the line', async (t) => {
  t.throws(() => parseRunRecords('/r/x', '{', ''), /\/r\/x: run\.json is not valid JSON/);
  t.throws(() => parseRunRecords('/r/x', JSON.stringify({ runId: 'x', startedAt: 'y', kernel: { release: '6.1', origin: 'o' } }), '{"id":"a"}\n{oops\n'), /tests\.jsonl line 2 is not valid JSON/);
  t.throws(() => parseRunRecords('/r/x', '{"hello":1}', ''), /not a dax-harness run/);
  const dir = mkdtempSync(join(tmpdir(), 'rr-'));
  t.throws(() => readRunDir(dir), /no run\.json, so not a run directory/);
});

t.test('findRunDirs lists run directories only, oldest first; byStartTime orders by start', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'rr-'));
  for (const n of ['20261202-b', '20261201-a', 'report']) mkdirSync(join(root, n));
  for (const n of ['20261202-b', '20261201-a']) writeFileSync(join(root, n, 'run.json'), '{}');
  t.same(findRunDirs(root).map((d) => d.split('/').pop()), ['20261201-a', '20261202-b'], 'the report directory is not a run');
  t.throws(() => findRunDirs(join(root, 'nope')), /does not exist/);
  const runs = ['night3-new-failure', 'night1-green', 'night2-infra'].map((n) => readRunDir(join(fixtures, n)));
  t.same(byStartTime(runs).map((r) => r.dir.split('/').pop()), ['night1-green', 'night2-infra', 'night3-new-failure']);
});
