// `history TEST` from indexed rows (pure): since when a test fails, on which kernels, how flaky.
import t from 'tap';
import { formatTestHistory, summarizeTestHistory } from '../../src/history/test-history.js';
import type { HistoryRow } from '../../src/history/history-db.js';

let n = 0;
const row = (day: number, outcome: string, build: string, over: Partial<HistoryRow> = {}): HistoryRow => ({
  run_id: `run${(n += 1)}`,
  started_at: `2026-11-${String(day).padStart(2, '0')}T02:00:00Z`,
  line_key: 'debian-6.1 on qemu',
  kernel_release: '6.1.0-57-amd64',
  build,
  point: 'xfs-reflink-cow',
  fs: 'xfs',
  outcome,
  known_as: null,
  reason: '',
  signature: outcome === 'pass' || outcome === 'skip' || outcome === 'error' ? null : 'outcome fail; check after the CoW',
  attempts: 1,
  ...over,
});

t.test('red since the first red run after the last pass, with the kernels it was red on', async (t) => {
  const rows = [row(1, 'pass', 'k1'), row(2, 'pass', 'k1'), row(3, 'fail', 'k2'), row(4, 'error', 'k2', { attempts: 2 }), row(5, 'fail', 'k3')];
  const [s] = summarizeTestHistory(rows);
  t.equal(s!.now, 'red');
  t.equal(s!.redSince!.run_id, rows[2]!.run_id);
  t.equal(s!.lastPass!.run_id, rows[1]!.run_id);
  t.same(s!.redOn, ['k2', 'k3']);
  t.equal(s!.flips, 1);
  t.same(s!.flakyBuilds, []);
  t.equal(s!.infraTrouble, 1);
  const text = formatTestHistory('xfs/reflink-cow', rows);
  t.match(text, /red since 2026-11-03 \(run run3, kernel k2\); last pass 2026-11-02/);
  t.match(text, /flaky: no/);
  t.match(text, /2× outcome fail; check after the CoW/);
});

t.test('flaky: both verdicts on one build, or back and forth', async (t) => {
  const [s] = summarizeTestHistory([row(1, 'pass', 'k1'), row(2, 'fail', 'k1'), row(3, 'pass', 'k1')]);
  t.same(s!.flakyBuilds, ['k1']);
  t.equal(s!.flips, 2);
  t.match(formatTestHistory('t', [row(1, 'pass', 'k1'), row(2, 'fail', 'k1'), row(3, 'pass', 'k1')]), /flaky: yes \(2 flip\(s\) between pass and red; both verdicts on k1\)/);
  t.match(formatTestHistory('t', [row(1, 'pass', 'k1'), row(2, 'fail', 'k1'), row(3, 'pass', 'k1')]), /passing again since/);
});

t.test('lines and filesystems are apart; no rows is said plainly', async (t) => {
  const s = summarizeTestHistory([row(1, 'pass', 'k1'), row(1, 'fail', 'b1', { line_key: 'build:linux on qemu' }), row(1, 'skip', 'k1', { fs: 'ext4' })]);
  t.same(s.map((x) => `${x.line} ${x.fs} ${x.now}`), ['debian-6.1 on qemu xfs pass', 'build:linux on qemu xfs red', 'debian-6.1 on qemu ext4 skip']);
  t.match(formatTestHistory('nope', []), /no indexed run has this test/);
});
