// merge: uploads of several workers joined into one results directory, campaigns' run_dir
// paths rewritten, runs indexed; a clash moves nothing.
import t from 'tap';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { findMergeSources, rewriteRunDirs, runMerge } from '../../src/nightly/merge.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'report-runs');

function uploads(): string {
  const root = mkdtempSync(join(tmpdir(), 'merge-'));
  const incoming = join(root, 'incoming');
  // Two workers' uploads: night 1 and a campaign on one, nights 2 and 3 on the other.
  cpSync(join(fixtures, 'night1-green'), join(incoming, 'shard-w1-7', 'night1-green'), { recursive: true });
  mkdirSync(join(incoming, 'shard-w1-7', 'camp'));
  writeFileSync(join(incoming, 'shard-w1-7', 'camp', 'campaign.json'), JSON.stringify({ base: { run_dir: '/var/lib/buildbot-worker/w1/shard-w1/build/results/night1-green' } }));
  writeFileSync(join(incoming, 'shard-w1-7', 'history.sqlite'), 'the worker\'s own index');
  for (const n of ['night2-infra', 'night3-new-failure']) cpSync(join(fixtures, n), join(incoming, 'shard-w2-7', n), { recursive: true });
  return root;
}

t.test('sources: a results directory, or a directory of them', async (t) => {
  const root = uploads();
  const p = findMergeSources(join(root, 'incoming'));
  t.same(p.runs.map((d) => d.split('/').pop()), ['night1-green', 'night2-infra', 'night3-new-failure']);
  t.same(p.campaigns.map((d) => d.split('/').pop()), ['camp']);
  t.same(rewriteRunDirs({ a: [{ run_dir: '/w/x/r1' }], run_dir: '/w/r2', other: '/w/r3' }, '/dest'), { a: [{ run_dir: '/dest/r1' }], run_dir: '/dest/r2', other: '/w/r3' });
});

t.test('runs and campaigns move into one results directory, indexed, uploads emptied', async (t) => {
  const root = uploads();
  const dest = join(root, 'results');
  const m = runMerge(dest, [join(root, 'incoming')], () => {});
  t.same(m, { runs: 3, campaigns: 1 });
  t.same(readdirSync(dest).sort(), ['camp', 'history.sqlite', 'history.sqlite-shm', 'history.sqlite-wal', 'night1-green', 'night2-infra', 'night3-new-failure'].filter((f) => existsSync(join(dest, f))).sort());
  t.equal(JSON.parse(readFileSync(join(dest, 'camp', 'campaign.json'), 'utf8')).base.run_dir, join(dest, 'night1-green'));
  t.same(readdirSync(join(root, 'incoming')), [], 'the uploads are gone, their own index with them');
  const db = new Database(join(dest, 'history.sqlite'), { readonly: true });
  t.equal((db.prepare('SELECT count(*) n FROM runs').get() as { n: number }).n, 3);
  db.close();
});

t.test('a name the destination already has: nothing moves', async (t) => {
  const root = uploads();
  const dest = join(root, 'results');
  cpSync(join(fixtures, 'night2-infra'), join(dest, 'night2-infra'), { recursive: true });
  t.throws(() => runMerge(dest, [join(root, 'incoming')], () => {}), /merge: night2-infra is in two sources, or already in/);
  t.ok(existsSync(join(root, 'incoming', 'shard-w1-7', 'night1-green', 'run.json')), 'the sources are untouched');
});
