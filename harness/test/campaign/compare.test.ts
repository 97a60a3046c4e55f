// Comparing a series' run against its base's: the change of each point, the exit code a
// kernel developer's CI sees, and the tables.
import t from 'tap';
import { classifyChange, compareRuns, exitCodeForComparison, failureFingerprint, formatComparison, formatTable, type Comparison } from '../../src/campaign/compare.js';
import type { Outcome, TestRecord } from '../../src/run/run.js';

// compareRuns reads only fs, test and outcome; the other fields are filled with neutral values.
function rec(fs: string, test: string, outcome: Outcome, over: Partial<TestRecord> = {}): TestRecord {
  const partial: Partial<TestRecord> = { id: `${fs}-${test}`, fs, test, outcome, reason: '', durationMs: 1, checks: [], findings: [], report: null, ...over };
  return partial as TestRecord;
}

const failed = (name: string) => ({ name, ok: false, expected: '1', actual: '2' });

t.test('classifyChange: a test turning red on the series is a new failure', async (t) => {
  for (const s of ['fail', 'xfail', 'timeout', 'crash'] as const) t.equal(classifyChange('pass', s), 'new failure', `pass -> ${s}`);
});

t.test('classifyChange: red on the base and green on the series is fixed', async (t) => {
  for (const b of ['fail', 'xfail', 'timeout', 'crash'] as const) t.equal(classifyChange(b, 'pass'), 'fixed', `${b} -> pass`);
});

t.test('classifyChange: red on both is still failing, green on both is passing', async (t) => {
  t.equal(classifyChange('fail', 'fail'), 'still failing');
  t.equal(classifyChange('xfail', 'fail'), 'still failing', 'a known failure that now fails otherwise');
  t.equal(classifyChange('crash', 'timeout'), 'still failing');
  t.equal(classifyChange('fail', 'xfail'), 'still failing');
  t.equal(classifyChange('pass', 'pass'), 'passing');
});

t.test('classifyChange: error, skip and missing are never compared', async (t) => {
  const cases: [Outcome | 'missing', Outcome | 'missing'][] = [
    ['pass', 'error'],
    ['error', 'pass'],
    ['error', 'fail'],
    ['fail', 'error'],
    ['skip', 'fail'],
    ['skip', 'skip'],
    ['missing', 'fail'],
    ['pass', 'missing'],
    ['missing', 'pass'],
  ];
  for (const [b, s] of cases) t.equal(classifyChange(b, s), 'not compared', `${b} -> ${s}`);
});

t.test('classifyChange: red on both, but failing another way, is a changed failure', async (t) => {
  t.equal(classifyChange('fail', 'fail', { base: 'a', series: 'a' }), 'still failing');
  t.equal(classifyChange('xfail', 'fail', { base: 'a', series: 'b' }), 'changed failure');
  t.equal(classifyChange('pass', 'skip'), 'now skipped', 'a point that stopped running is reported, not dropped');
});

t.test('failureFingerprint: how a point failed, stable across runs', async (t) => {
  const a = rec('ext4', 'x', 'fail', { checks: [failed('truncate woke up after 1010 ms')], findings: [{ kind: 'warning', line: 'WARNING: CPU: 0 PID: 12 at fs/dax.c:398 dax_disassociate_entry+0x4f/0x60', function: 'dax_disassociate_entry', file: 'fs/dax.c:398' }] });
  const b = rec('ext4', 'x', 'fail', { checks: [failed('truncate woke up after 1022 ms')], findings: [{ kind: 'warning', line: 'WARNING: CPU: 1 PID: 99 at fs/dax.c:398 dax_disassociate_entry+0x4f/0x60', function: 'dax_disassociate_entry', file: 'fs/dax.c:398' }] });
  t.equal(failureFingerprint(a), failureFingerprint(b), 'numbers, CPUs and PIDs do not make a failure new');
  const xfail = rec('ext4', 'x', 'xfail', { knownAs: 'fail', checks: a.checks, findings: a.findings });
  t.equal(failureFingerprint(xfail), failureFingerprint(a), 'a known failure is compared by how the kernel failed');
  const other = rec('ext4', 'x', 'fail', { checks: a.checks, findings: [{ kind: 'warning', line: 'x', function: 'dax_insert_entry', file: 'fs/dax.c:380' }] });
  t.not(failureFingerprint(other), failureFingerprint(a), 'a WARNING elsewhere is another failure');
  const helper = rec('ext4', 'x', 'fail', { report: { helper: 'h', v: 1, result: 'fail', reason: 'timeout after 30 s during umount', dax: true, obs: [], extra: {} } });
  t.match(failureFingerprint(helper), /helper timeout after # s during umount/);
});

t.test('compareRuns: a point red on both kernels, failing otherwise on the series, is new (exit 1)', async (t) => {
  const base = [rec('ext4', 'pin', 'xfail', { knownAs: 'fail', checks: [failed('truncate woke up when the O_DIRECT read completed')] }), rec('xfs', 'pin', 'xfail', { knownAs: 'fail', checks: [failed('truncate woke up when the O_DIRECT read completed')] }), rec('ext4', 'gup', 'pass')];
  const series = [
    rec('ext4', 'pin', 'fail', { checks: [failed('truncate woke up when the O_DIRECT read completed'), failed('after: refcount back to idle (legacy model)')] }),
    rec('xfs', 'pin', 'xfail', { knownAs: 'fail', checks: [failed('truncate woke up when the O_DIRECT read completed')] }),
    rec('ext4', 'gup', 'skip'),
  ];
  const c = compareRuns(base, series);
  t.same(c.map((x) => [x.point, x.change]), [['ext4/pin', 'changed failure'], ['xfs/pin', 'still failing'], ['ext4/gup', 'now skipped']]);
  t.match(c[0]?.detail, /base: outcome fail; check truncate woke up.* \| series: outcome fail; check after: refcount back to idle/);
  t.equal(exitCodeForComparison(c, false), 1, 'counted as new');
  const lines = formatComparison(c);
  t.match(lines[2], /^ext4\/pin\s+xfail\s+fail\s+changed failure$/, 'shown first');
  t.match(lines[3], /^ext4\/gup\s+pass\s+skip\s+now skipped$/);
  t.match(lines.at(-1), /^ext4\/pin: base: /, 'how it changed is printed under the table');
});

t.test('compareRuns: one row per point of either run, series order first', async (t) => {
  const base = [rec('xfs', 'gone-on-series', 'pass'), rec('ext4', 'a', 'pass'), rec('xfs', 'a', 'fail'), rec('ext4', 'b', 'xfail')];
  const series = [rec('ext4', 'a', 'fail'), rec('xfs', 'a', 'pass'), rec('ext4', 'b', 'xfail'), rec('ext4', 'new-test', 'pass')];
  const c = compareRuns(base, series);
  t.same(c, [
    { point: 'ext4/a', base: 'pass', series: 'fail', change: 'new failure' },
    { point: 'xfs/a', base: 'fail', series: 'pass', change: 'fixed' },
    { point: 'ext4/b', base: 'xfail', series: 'xfail', change: 'still failing' },
    { point: 'ext4/new-test', base: 'missing', series: 'pass', change: 'not compared' },
    { point: 'xfs/gone-on-series', base: 'pass', series: 'missing', change: 'not compared' },
  ]);
  t.notOk(c.some((x) => x.point === 'ext4/a' && x.base === 'fail'), 'the same test on two filesystems is two points');
  t.same(compareRuns([], []), []);
});

t.test('exitCodeForComparison: a new failure wins over infrastructure errors', async (t) => {
  const row = (change: Comparison['change']): Comparison => ({ point: 'ext4/x', base: 'pass', series: 'pass', change });
  t.equal(exitCodeForComparison([row('passing'), row('new failure')], true), 1, 'new failure and infra errors: 1');
  t.equal(exitCodeForComparison([row('new failure')], false), 1);
  t.equal(exitCodeForComparison([row('changed failure')], false), 1, 'a changed failure is new');
  t.equal(exitCodeForComparison([row('now skipped'), row('passing')], false), 0, 'a skip is reported, not a failure');
  t.equal(exitCodeForComparison([row('passing'), row('not compared')], true), 2, 'infra only: 2');
  t.equal(exitCodeForComparison([row('still failing'), row('fixed'), row('passing')], false), 0, 'already failing is not the series fault');
  t.equal(exitCodeForComparison([], false), 0);
});

t.test('formatTable: columns line up, the last one is not padded', async (t) => {
  const lines = formatTable(['point', 'change'], [['ext4/odirect-pin', 'fixed'], ['xfs/a', 'new failure']]);
  t.same(lines, ['point             change', '----------------  -----------', 'ext4/odirect-pin  fixed', 'xfs/a             new failure']);
  const wide = formatTable(['a', 'b', 'c'], [['xxxx', '', 'z'], ['y', 'long-cell', '']]);
  t.equal(wide[0], 'a     b          c');
  t.equal(wide[2], 'xxxx             z', 'an empty middle cell still takes its width');
  t.equal(wide[3], 'y     long-cell', 'trailing blanks are trimmed');
  for (const l of wide.slice(2)) t.equal(l, l.trimEnd());
});

t.test('formatComparison: new failures first, counts last', async (t) => {
  const c = compareRuns(
    [rec('ext4', 'p', 'pass'), rec('ext4', 'f', 'fail'), rec('xfs', 'n', 'pass'), rec('xfs', 's', 'fail'), rec('xfs', 'e', 'pass')],
    [rec('ext4', 'p', 'pass'), rec('ext4', 'f', 'pass'), rec('xfs', 's', 'fail'), rec('xfs', 'e', 'error'), rec('xfs', 'n', 'timeout')],
  );
  const lines = formatComparison(c);
  t.match(lines[0], /^point\s+base\s+series\s+change$/);
  t.match(lines[1], /^-+ +-+ +-+ +-+$/);
  t.match(lines[2], /^xfs\/n\s+pass\s+timeout\s+new failure$/, 'the new failure is the first row');
  t.match(lines[3], /^ext4\/f\s+fail\s+pass\s+fixed$/);
  t.match(lines[4], /^xfs\/s\s+fail\s+fail\s+still failing$/);
  t.match(lines[5], /^xfs\/e\s+pass\s+error\s+not compared$/);
  t.match(lines[6], /^ext4\/p\s+pass\s+pass\s+passing$/);
  t.equal(lines.at(-1), '1 new failure, 0 changed failure, 0 now skipped, 1 fixed, 1 still failing, 1 not compared, 1 passing');
  t.equal(lines.length, 2 + 5 + 1);
  const col = lines[0]!.indexOf('change');
  for (const l of lines.slice(2, 7)) t.match(l.slice(col), /^(new failure|fixed|still failing|not compared|passing)$/, 'the change column lines up');
});
