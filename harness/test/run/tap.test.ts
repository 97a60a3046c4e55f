import t, { type Test } from 'tap';
import { Parser, type FinalResults, type Result } from 'tap-parser';
import { formatPoint, formatYaml, TapWriter, type YamlValue } from '../../src/run/tap.js';

interface Level {
  plan: { start: number; end: number } | null;
  asserts: Result[];
  children: Level[];
  comments: string[];
  complete: FinalResults | null;
}

interface Parsed {
  version: number | null;
  root: Level;
  extras: string[];
  results: FinalResults;
}

// Parses TAP with tap-parser (strict: non-TAP lines are failures) and keeps the tree of
// plans, points and subtests, and every line the parser could not take as TAP.
async function parseTap(text: string): Promise<Parsed> {
  const extras: string[] = [];
  let version: number | null = null;
  const attach = (p: Parser): Level => {
    const lv: Level = { plan: null, asserts: [], children: [], comments: [], complete: null };
    p.on('plan', (pl: { start: number; end: number }) => (lv.plan = pl));
    p.on('assert', (r: Result) => lv.asserts.push(r));
    p.on('child', (c: Parser) => lv.children.push(attach(c)));
    p.on('comment', (c: string) => lv.comments.push(c));
    p.on('extra', (e: string) => extras.push(e));
    p.on('complete', (r: FinalResults) => (lv.complete = r));
    return lv;
  };
  return await new Promise((resolve) => {
    const p = new Parser({ strict: true }, (results) => resolve({ version, root, extras, results }));
    p.on('version', (v: number) => (version = v));
    const root = attach(p);
    p.end(text);
  });
}

/** Failures that are TAP syntax problems rather than failed test points. */
function tapErrors(r: FinalResults): unknown[] {
  return r.failures.filter((f) => f.tapError);
}

/** What the parser gives back as diag: tap-parser moves a numeric duration_ms to `time`. */
function expectedDiag(d: Record<string, YamlValue>): Record<string, YamlValue> {
  const { duration_ms: _ignored, ...rest } = d;
  return typeof d.duration_ms === 'number' ? rest : d;
}

// Strings a YAML reader could take for something else: each must come back unchanged.
const TRICKY_STRINGS: string[] = [
  'a: b',
  'ends with colon:',
  'key: value # comment',
  'Linux version 6.1.0-56-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1',
  'CPU#1',
  '#starts with hash',
  '- leading dash',
  '--',
  '-95',
  '0x200000',
  '1054867456',
  '007',
  '1e3',
  '.5',
  '+1',
  '2026-11-25',
  '2026-11-25T23:03:40.469Z',
  'true',
  'False',
  'null',
  'NULL',
  '~',
  'yes',
  'off',
  '',
  ' leading space',
  'trailing space ',
  '[bracket',
  '{brace}',
  '*alias',
  '&anchor',
  '!tag',
  '|pipe',
  '>fold',
  "'single'",
  '"double"',
  '%percent',
  '@at',
  '`backtick`',
  '?question',
  ',comma',
  'inner\ttab',
  'carriage\rreturn',
  'escape \u001b[0m end',
  'unicode ümlaut ✓',
  'back\\slash',
  'kernel BUG at mm/filemap.c:1234!',
  'taint 12288 -> 12800',
];

const MULTILINE_STRINGS: string[] = [
  'line one\nline two',
  '  indented first line\nsecond line',
  '\nleading newline',
  'trailing newline\n',
  'blank\n\nmiddle',
  '---\n...\n# not a comment\n    deeper\nnot ok 1 - not a point',
  '[    3.215487] dax-harness-init: start\n[    3.279881] ------------[ cut here ]------------\n[    3.3] WARNING: CPU: 1 PID: 57 at fs/dax.c:123 dax_insert_entry+0x1/0x2',
  'console\r\nlines\r\n',
];

async function roundTrip(t: Test, diag: Record<string, YamlValue>, what: string): Promise<void> {
  const text = ['TAP version 14', '1..1', ...formatPoint({ ok: true, id: 1, name: 'p', diag }), ''].join('\n');
  const r = await parseTap(text);
  t.same(r.extras, [], `${what}: no non-TAP lines`);
  t.same(tapErrors(r.results), [], `${what}: no TAP errors`);
  t.equal(r.root.asserts.length, 1);
  t.same(r.root.asserts[0]?.diag, expectedDiag(diag), `${what}: diag comes back as the same object`);
  t.strictSame(r.root.asserts[0]?.diag, expectedDiag(diag), `${what}: with the same types`);
}

t.test('formatYaml: the shape a run writes', async (t) => {
  t.same(
    formatYaml({
      outcome: 'pass',
      duration_ms: 81,
      model: 'legacy',
      checks: ['ok: mapped: refcount (legacy model): expected 1, got 1'],
      taint: '12288 -> 12800',
      ok: true,
      none: null,
    }),
    [
      'outcome: pass',
      'duration_ms: 81',
      'model: legacy',
      'checks:',
      '- "ok: mapped: refcount (legacy model): expected 1, got 1"',
      'taint: "12288 -> 12800"',
      'ok: true',
      'none: null',
    ],
  );
  t.same(formatYaml({ a: { b: 1 } }, '  '), ['  a:', '    b: 1'], 'indent is applied to every line');
  t.same(formatYaml({ empty: [] }), ['empty: []']);
  t.same(formatYaml({ 'with space': 1, '1x': 2 }), ['"with space": 1', '"1x": 2'], 'keys that are not identifiers are quoted');
});

t.test('formatYaml: each tricky string round-trips through tap-parser', async (t) => {
  for (const s of TRICKY_STRINGS) await roundTrip(t, { v: s, list: [s] }, JSON.stringify(s));
});

t.test('formatYaml: multi-line strings round-trip', async (t) => {
  for (const s of MULTILINE_STRINGS) {
    await roundTrip(t, { v: s, nested: { deeper: { v: s } }, list: [s], objs: [{ v: s, w: 'x' }] }, JSON.stringify(s));
  }
  t.same(formatYaml({ log: 'a\nb' }), ['log: |2-', '  a', '  b'], 'readable literal block, not an escaped one-liner');
});

t.test('formatYaml: numbers, booleans, arrays and objects round-trip', async (t) => {
  await roundTrip(
    t,
    {
      zero: 0,
      negative: -95,
      float: 1.5,
      big: 1054867456,
      yes: true,
      no: false,
      nothing: null,
      empty_list: [],
      empty_obj: {},
      numbers_as_strings: ['1', '-1', '0x10', '1.0'],
      mixed: [1, 'two', true, null, -3],
      list_of_lists: [['a', 'b: c'], [], [1, 2]],
      list_of_objs: [{ phase: 'mapped', refcount: 1, mapcount: 0 }, {}, { phase: 'unmapped', extra: { pages: 16 } }],
      nested: { kernel: { release: '6.1.0-56-amd64', flags: {}, list: [] }, 'odd key: #1': 'v' },
    },
    'typed values',
  );
});

t.test('formatPoint', async (t) => {
  t.same(formatPoint({ ok: true, id: 3, name: 'mmap-fault-4k' }), ['ok 3 - mmap-fault-4k']);
  t.same(formatPoint({ ok: false, id: 1, name: 'x' }, 1), ['    not ok 1 - x'], 'depth 1 is four spaces');
  t.same(formatPoint({ ok: true, id: 2, name: 'odirect-pin', directive: { kind: 'SKIP', reason: 'no slow\ndevice' } }), ['ok 2 - odirect-pin # SKIP no slow device']);
  t.same(formatPoint({ ok: true, id: 1, name: 'p', diag: { a: 1 } }, 1), ['    ok 1 - p', '      ---', '      a: 1', '      ...'], 'YAML block indented two more than the point');
  t.same(formatPoint({ ok: true, id: 1, name: 'p', diag: {} }), ['ok 1 - p'], 'no empty YAML block');

  const names = ['a # b', '4k faults', 'two\nlines', 'plain'];
  const text = ['TAP version 14', `1..${names.length}`, ...names.flatMap((n, i) => formatPoint({ ok: true, id: i + 1, name: n })), ''].join('\n');
  const r = await parseTap(text);
  t.same(tapErrors(r.results), []);
  t.same(r.extras, []);
  t.same(r.root.asserts.map((a) => a.id), [1, 2, 3, 4], 'ids survive (a leading digit in a name is not taken as the id)');
  t.same(r.root.asserts.map((a) => a.name), ['a _ b', '_4k faults', 'two lines', 'plain']);
  t.notOk(r.root.asserts[0]?.skip || r.root.asserts[0]?.todo, "'#' in a name does not start a directive");
});

t.test('TapWriter: a full document round-trips through tap-parser', async (t) => {
  const lines: string[] = [];
  const w = new TapWriter((ls) => lines.push(...ls));
  const diagOk: Record<string, YamlValue> = {
    outcome: 'pass',
    duration_ms: 81,
    model: 'legacy',
    checks: ['ok: mapped: page is ZONE_DEVICE (fsdax): expected 1, got 1', 'ok: unmapped: refcount back to idle (legacy model): expected 1, got 1'],
    observed: ['mapped: pfn=0x109401 refcount=1 mapcount=0 zone_device=1'],
  };
  const diagFail: Record<string, YamlValue> = {
    outcome: 'fail',
    duration_ms: 2608,
    reason: '1 of 7 checks failed; dmesg: warning',
    checks: ['FAILED: after: refcount back to the mapped value: expected 1, got 2'],
    dmesg: '[   12.1] ------------[ cut here ]------------\n[   12.1] WARNING: CPU: 0 PID: 75 at fs/dax.c:1 x\n[   12.2] ---[ end trace 0000000000000000 ]---',
    stderr: '  dax-odirect-pin: obs during: max refcount 2 over 10 in-flight samples\nsecond line',
    empty: [],
    nested: { pfn: '0x10927f', counts: { before: 1, after: 2 } },
  };
  w.start(2, ['dax-harness run 20261125-230340Z-6.1.0-56-amd64-076b', 'kernel 6.1.0-56-amd64 #1 SMP']);
  w.comment('refcount model legacy: idle refcount 1');
  w.beginSubtest('ext4', 3);
  w.comment('inside ext4');
  w.point({ ok: true, name: 'mmap-fault-4k', diag: diagOk });
  w.point({ ok: true, name: 'odirect-pin', directive: { kind: 'SKIP', reason: 'no slow block device' } });
  w.point({ ok: false, name: 'uring-longterm', directive: { kind: 'TODO', reason: 'known bug' } });
  w.endSubtest();
  w.beginSubtest('xfs', 2);
  w.point({ ok: true, name: 'mmap-fault-4k' });
  w.point({ ok: false, name: 'odirect-pin', diag: diagFail });
  w.endSubtest({ summary: 'xfs: 1 of 2 failed' });

  t.equal(lines[0], 'TAP version 14', 'version line first');
  t.equal(lines.indexOf('1..2'), 3, 'plan after the header comments');
  const r = await parseTap(`${lines.join('\n')}\n`);
  t.equal(r.version, 14);
  t.same(r.extras, [], 'no non-TAP lines');
  t.same(tapErrors(r.results), [], 'no TAP errors');
  t.has(r.root.plan, { start: 1, end: 2 });
  t.equal(r.results.count, 2, 'plan count matches the top-level points');
  t.same(r.root.asserts.map((a) => [a.id, a.name, a.ok]), [
    [1, 'ext4', true],
    [2, 'xfs', false],
  ], 'a failing point makes its subtest point not ok; SKIP and TODO do not');
  t.same(r.root.asserts[1]?.diag, { summary: 'xfs: 1 of 2 failed' }, 'endSubtest diag on the closing point');
  t.notOk(r.results.ok);
  t.equal(r.results.fail, 1);
  t.ok(r.root.comments.some((c) => c.includes('refcount model legacy')));

  t.equal(r.root.children.length, 2, 'two subtests');
  const [ext4, xfs] = r.root.children;
  t.has(ext4?.plan, { start: 1, end: 3 });
  t.equal(ext4?.asserts.length, 3, 'ext4 child has its 3 points');
  t.equal(ext4?.complete?.count, 3);
  t.ok(ext4?.complete?.ok, 'ext4 child is ok (skip and todo do not fail)');
  t.same(ext4?.asserts.map((a) => a.id), [1, 2, 3], 'subtest ids restart at 1');
  t.same(ext4?.asserts[0]?.diag, expectedDiag(diagOk));
  t.equal(ext4?.asserts[0]?.time, 81, 'duration_ms is a number (tap-parser takes it as the time)');
  t.equal(ext4?.asserts[1]?.skip, 'no slow block device', 'SKIP with its reason');
  t.equal(ext4?.asserts[2]?.todo, 'known bug');
  t.ok(ext4?.comments.some((c) => c.includes('inside ext4')), 'comment inside a subtest stays in it');

  t.has(xfs?.plan, { start: 1, end: 2 });
  t.equal(xfs?.asserts.length, 2);
  t.notOk(xfs?.complete?.ok);
  t.equal(xfs?.asserts[1]?.ok, false);
  t.same(xfs?.asserts[1]?.diag, expectedDiag(diagFail), 'multi-line dmesg and indented stderr come back intact');
  t.equal(xfs?.asserts[1]?.time, 2608);
});

t.test('TapWriter: top-level points and a fresh subtest state', async (t) => {
  const lines: string[] = [];
  const w = new TapWriter((ls) => lines.push(...ls));
  w.start(3);
  w.point({ ok: true, name: 'first' });
  w.beginSubtest('s1', 1);
  w.point({ ok: false, name: 'bad' });
  w.endSubtest();
  // A later subtest starts clean: the failure above must not leak into it.
  w.beginSubtest('s2', 1);
  w.point({ ok: true, name: 'good' });
  w.endSubtest();
  const r = await parseTap(`${lines.join('\n')}\n`);
  t.same(tapErrors(r.results), []);
  t.same(r.extras, []);
  t.same(r.root.asserts.map((a) => [a.id, a.name, a.ok]), [
    [1, 'first', true],
    [2, 's1', false],
    [3, 's2', true],
  ]);
  t.equal(r.results.count, 3);
});

t.test('TapWriter streams each result as soon as it is known', async (t) => {
  const batches: string[][] = [];
  const w = new TapWriter((ls) => batches.push(ls));
  w.start(1);
  t.equal(batches.length, 1);
  w.beginSubtest('ext4', 1);
  const before = batches.length;
  w.point({ ok: true, name: 'x' });
  t.equal(batches.length, before + 1, 'one sink call per point');
  t.equal(batches.at(-1)?.[0], '    ok 1 - x');
});
