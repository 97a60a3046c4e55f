// Night after night along one kernel line: what changed against the previous run, and which
// points are flaky (a verdict that differs on the same kernel, or flips back and forth).
import t from 'tap';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planLineHistory } from '../../src/report/line-history.js';
import { parseRunRecords, readRunDir, type RunRecords } from '../../src/report/run-records.js';
import type { Outcome } from '../../src/run/run.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'report-runs');

// A run of one point on a line: runId, start day, package version and outcome.
function run(id: string, day: number, pkg: string, outcome: Outcome, line = 'debian-6.1', seriesHash: string | null = null): RunRecords {
  const series = seriesHash ? { hash: seriesHash, patches: [{ subject: 'fs/dax: x', messageId: null }] } : null;
  const runJson = { runId: id, startedAt: `2026-12-0${day}T02:00:00Z`, kernel: { release: '6.1.0-57-amd64', origin: 'x', packageVersion: pkg, source: { line, tree: null, commit: null, base: null, buildKey: null, config: 'debian', series } }, filesystems: ['xfs'] };
  return parseRunRecords(`/r/${id}`, JSON.stringify(runJson), JSON.stringify({ id: 'xfs-t', test: 't', fs: 'xfs', outcome, reason: '' }));
}

t.test('the three fixture nights: new failure, flaky, and infrastructure never counted as a verdict', async (t) => {
  const runs = ['night1-green', 'night2-infra', 'night3-new-failure'].map((n) => readRunDir(join(fixtures, n)));
  const h = planLineHistory(runs);
  const [n1, n2, n3] = runs.map((r) => h.get(r.run.runId)!);
  t.equal(n1!.get('ext4-hole-zero-page')!.change, 'first run');
  t.equal(n3!.get('ext4-hole-zero-page')!.change, 'new failure', 'passed on night 2, fails on night 3');
  t.equal(n3!.get('ext4-hole-zero-page')!.previousRun, runs[1]!.run.runId);
  t.equal(n2!.get('xfs-stress-concurrent')!.change, 'new failure');
  t.equal(n2!.get('xfs-stress-concurrent')!.flaky, true, 'pass then fail on the same package is flaky');
  t.match(n2!.get('xfs-stress-concurrent')!.flakyWhy, /same kernel \(6\.1\.0-57-amd64 6\.1\.192-3\)/);
  t.equal(n3!.get('xfs-stress-concurrent')!.change, 'fixed');
  t.equal(n3!.get('xfs-stress-concurrent')!.flaky, true, 'pass, fail, pass flips twice along the line');
  t.equal(n3!.get('ext4-hole-zero-page')!.flaky, false, 'one pass-to-fail on a new package is a regression, not flakiness');
  t.equal(n2!.get('ext4-odirect-pin')!.change, 'not compared', 'an infrastructure error is not a verdict');
  t.equal(n3!.get('ext4-odirect-pin')!.flaky, false, 'error between two passes is not a flip');
});

t.test('lines are separate: another kernel line or target does not count as the previous run', async (t) => {
  const h = planLineHistory([run('a', 1, '1', 'pass'), run('b', 2, '1', 'fail', 'debian-7.2'), run('c', 3, '1', 'fail')]);
  t.equal(h.get('b')!.get('xfs-t')!.change, 'first run', 'the first run of its own line');
  t.equal(h.get('c')!.get('xfs-t')!.change, 'new failure');
  t.equal(h.get('c')!.get('xfs-t')!.previousRun, 'a');
});

t.test('flakiness: a regression that stays red is not flaky; one that comes and goes is', async (t) => {
  const stays = planLineHistory([run('a', 1, '1', 'pass'), run('b', 2, '2', 'fail'), run('c', 3, '2', 'fail'), run('d', 4, '3', 'xfail')]);
  t.notOk([...stays.values()].some((m) => m.get('xfs-t')!.flaky));
  const goes = planLineHistory([run('a', 1, '1', 'pass'), run('b', 2, '2', 'fail'), run('c', 3, '3', 'pass'), run('d', 4, '4', 'skip')]);
  t.equal(goes.get('c')!.get('xfs-t')!.flaky, true);
  t.equal(goes.get('d')!.get('xfs-t')!.flaky, false, 'a skip judges nothing, so marks nothing');
  t.equal(goes.get('b')!.get('xfs-t')!.flaky, false, 'not yet known on the night it first failed');
});

t.test('a series (or mutant) is a line of its own, compared with its base and never making the base flaky', async (t) => {
  const h = planLineHistory([
    run('base1', 1, '1', 'pass'),
    run('mutA', 2, '1', 'fail', 'debian-6.1', 'a'.repeat(64)),
    run('mutB', 3, '1', 'pass', 'debian-6.1', 'b'.repeat(64)),
    run('mutC', 4, '1', 'fail', 'debian-6.1', 'c'.repeat(64)),
    run('base2', 5, '1', 'pass'),
    run('mutA2', 6, '1', 'fail', 'debian-6.1', 'a'.repeat(64)),
  ]);
  t.equal(h.get('mutA')!.get('xfs-t')!.change, 'new failure', 'against the base run before it');
  t.equal(h.get('mutA')!.get('xfs-t')!.previousRun, 'base1');
  t.equal(h.get('mutC')!.get('xfs-t')!.previousRun, 'base1', 'not against another series');
  t.equal(h.get('mutC')!.get('xfs-t')!.flaky, false, 'three different series do not make a flaky test');
  t.equal(h.get('base2')!.get('xfs-t')!.change, 'passing', 'the base line skips the series runs');
  t.equal(h.get('base2')!.get('xfs-t')!.flaky, false);
  t.equal(h.get('mutA2')!.get('xfs-t')!.previousRun, 'mutA', 'the same series again is compared with itself');
  t.equal(h.get('mutA2')!.get('xfs-t')!.change, 'still failing');
});
