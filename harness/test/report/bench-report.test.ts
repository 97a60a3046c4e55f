// The report benchmark's nights (pure): the same every time, one flaky point, one regression
// that comes with a new package, counts that match the records.
import t from 'tap';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { planNights, seededRandom } from '../../src/report/bench-report.js';
import { readRunDir } from '../../src/report/run-records.js';

const seed = readRunDir(join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'report-runs', 'night1-green'));
const plan = (n: number) => planNights(seed.run as unknown as Record<string, unknown>, seed.tests, n, seededRandom(42));

t.test('nights are reproducible, dated a day apart, with counts that match their records', async (t) => {
  const a = plan(20);
  t.same(a, plan(20), 'the same seed gives the same nights');
  t.equal(a.length, 20);
  t.equal(a[1]!.runJson.startedAt, '2026-09-02T02:00:00.000Z');
  for (const night of a) {
    const counts: Record<string, number> = {};
    for (const r of night.tests) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
    t.same(night.runJson.counts, counts);
  }
});

t.test('one point regresses from the middle night on, with a new package; one is flaky', async (t) => {
  const a = plan(20);
  const regress = seed.tests.filter((x) => x.outcome === 'pass' && x.test !== 'kernel-log')[1]!.id;
  t.ok(a.slice(0, 10).every((n) => n.tests.find((x) => x.id === regress)!.outcome === 'pass'));
  t.ok(a.slice(10).every((n) => n.tests.find((x) => x.id === regress)!.outcome === 'fail'));
  const pkg = (i: number) => (a[i]!.runJson.kernel as { packageVersion: string }).packageVersion;
  t.not(pkg(9), pkg(10), 'the regression night has a new package');
  const flaky = seed.tests.filter((x) => x.outcome === 'pass' && x.test !== 'kernel-log')[0]!.id;
  const outcomes = new Set(a.map((n) => n.tests.find((x) => x.id === flaky)!.outcome));
  t.same([...outcomes].sort(), ['fail', 'pass']);
});
