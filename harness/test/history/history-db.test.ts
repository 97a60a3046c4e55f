// The history database, real SQLite (better-sqlite3): the three fixture nights indexed, the
// rows a `history` query reads, and a rebuild from results/ that gives the same rows.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { indexRun, openHistoryDb, queryTestHistory, rebuildIndex } from '../../src/history/history-db.js';
import { readRunDir } from '../../src/report/run-records.js';
import { formatTestHistory } from '../../src/history/test-history.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'report-runs');
const nights = ['night1-green', 'night2-infra', 'night3-new-failure'].map((n) => readRunDir(join(fixtures, n)));

t.test('runs, points and infrastructure events are indexed; a test\'s rows come back oldest first', async (t) => {
  const db = openHistoryDb(join(mkdtempSync(join(tmpdir(), 'hdb-')), 'history.sqlite'));
  for (const r of nights) indexRun(db, r);
  t.equal((db.prepare('SELECT count(*) n FROM runs').get() as { n: number }).n, 3);
  t.equal((db.prepare('SELECT count(*) n FROM points').get() as { n: number }).n, 3 * 47);
  t.same(db.prepare('SELECT kind, point, action FROM infra_events ORDER BY attempt').all(), [
    { kind: 'guest-lost', point: 'ext4-odirect-pin', action: 'retried' },
    { kind: 'guest-lost', point: 'ext4-odirect-pin', action: 'gave up' },
  ]);
  const run = db.prepare('SELECT kernel_line, line_key, build, target, model, package_version FROM runs WHERE run_id = ?').get(nights[2]!.run.runId);
  t.same(run, { kernel_line: 'debian-6.1', line_key: 'debian-6.1 on qemu', build: '6.1.0-57-amd64 6.1.192-4', target: 'qemu', model: 'legacy', package_version: '6.1.192-4' });
  const rows = queryTestHistory(db, 'ext4/hole-zero-page');
  t.same(rows.map((r) => r.outcome), ['pass', 'pass', 'fail']);
  t.match(rows[2]!.signature, /^outcome fail; check .*; dmesg warning in dax_disassociate_entry/);
  t.equal(queryTestHistory(db, 'hole-zero-page').length, 6, 'both filesystems without a prefix');
  const text = formatTestHistory('ext4/hole-zero-page', rows);
  t.match(text, /red since 2026-12-02 \(run 20261202-020000Z-6\.1\.0-57-amd64-fxni, kernel 6\.1\.0-57-amd64 6\.1\.192-4\); last pass 2026-12-01/);
  t.match(formatTestHistory('xfs/stress-concurrent', queryTestHistory(db, 'xfs/stress-concurrent')), /flaky: yes \(2 flip\(s\) between pass and red; both verdicts on 6\.1\.0-57-amd64 6\.1\.192-3\)/);
  indexRun(db, nights[0]!);
  t.equal((db.prepare('SELECT count(*) n FROM points').get() as { n: number }).n, 3 * 47, 'indexing a run again replaces it');
  db.close();
});

t.test('rebuilding from the runs gives the same rows', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hdb-'));
  const a = openHistoryDb(join(dir, 'a.sqlite'));
  for (const r of nights) indexRun(a, r);
  const b = openHistoryDb(join(dir, 'b.sqlite'));
  indexRun(b, nights[0]!);
  b.prepare("INSERT INTO runs (run_id, dir, started_at, kernel_release, kernel_line, line_key, build, origin, target) VALUES ('stale', '/gone', 'x', 'r', 'l', 'k', 'b', 'o', 'qemu')").run();
  rebuildIndex(b, nights);
  const dump = (db: typeof a): unknown => db.prepare('SELECT r.run_id, p.point, p.outcome, p.signature FROM points p JOIN runs r USING (run_id) ORDER BY 1, 2').all();
  t.same(dump(b), dump(a));
  t.equal((b.prepare("SELECT count(*) n FROM runs WHERE run_id = 'stale'").get() as { n: number }).n, 0, 'what results/ no longer has is gone');
  a.close();
  b.close();
});
