import { GUEST_PATHS } from '../../src/target/qemu/session.js';
import t from 'tap';
import { readFileSync } from 'node:fs';
import { detectRefcountModel } from '../../src/kernel/model.js';
import { parseDaxTrace } from '../../src/suite/trace.js';
import { parseDumpPage, parseHelperReport, selectTests, SUITE, type Check, type HelperObs, type HelperReport, type TestDef } from '../../src/suite/suite.js';

// Real fs_dax traces from a 6.1 guest: the 4 KiB case (PMD FALLBACK then PTE faults) and the
// 2 MiB case (PMD NOPAGE), both on ext4.
const TRACE_TEXT = readFileSync(new URL('../fixtures/trace/fs-dax-6.1.txt', import.meta.url), 'utf8');
function traceSection(title: string): string {
  const part = TRACE_TEXT.split('=== ').find((p) => p.startsWith(title)) ?? '';
  return part;
}
const TRACES: Record<string, ReturnType<typeof parseDaxTrace>> = {
  'mmap-fault-4k': parseDaxTrace(traceSection('ext4 4k')),
  'mmap-fault-2m': parseDaxTrace(traceSection('ext4 2m')),
};
function judge(d: TestDef, r: HelperReport, m: ReturnType<typeof detectRefcountModel>): Check[] {
  return d.judge(r, m, { fs: 'ext4', trace: TRACES[d.name] ?? [], dmesg: [] });
}

const fixture = (p: string): string => readFileSync(new URL(`../fixtures/${p}`, import.meta.url), 'utf8');
const LEGACY = detectRefcountModel(new Set(['__put_devmap_managed_page_refs']));
const FOLIO = detectRefcountModel(new Set(['vmf_insert_folio_pmd', 'vmf_insert_page_mkwrite']));
const NAMES = ['mmap-fault-4k', 'mmap-fault-2m', 'odirect-pin', 'uring-longterm'] as const;
type Name = (typeof NAMES)[number];

function test(name: Name): TestDef {
  const d = SUITE.find((s) => s.name === name);
  if (!d) throw new Error(`no test ${name}`);
  return d;
}

/** The helper report a 6.1 guest really printed (results of a run, ext4). */
function legacyReport(name: Name): HelperReport {
  const r = parseHelperReport(fixture(`helpers/legacy-6.1-${name}.stdout.txt`));
  if (!r) throw new Error(`fixture for ${name} does not parse`);
  return r;
}

function ob(phase: string, pfn: number, refcount: number, mapcount: number, order = 0): HelperObs {
  return { phase, pfn, refcount, mapcount, pincount: order > 0 ? 0 : -1, zone_device: 1, order };
}

// Reports a 6.15+ (folio model) guest is expected to print, built to the helper contract in
// kernel-tests/README.md: idle 0, each mapping one reference and one mapcount.
function folioReport(name: Name): HelperReport {
  const base = { v: 1, result: 'ok' as const, reason: '', dax: true };
  switch (name) {
    case 'mmap-fault-4k':
      return { ...base, helper: 'dax-fault', obs: [ob('mapped', 0x109401, 1, 1), ob('mapped_last', 0x109410, 1, 1), ob('unmapped', 0x109401, 0, 0), ob('unmapped_last', 0x109410, 0, 0)], extra: { pages: 16, vaddr_pmd_aligned: false, pfn_contig: true, huge_aligned: false } };
    case 'mmap-fault-2m':
      // One PMD mapping of an order-9 folio: folio refcount and mapcount are 1 for head and tail.
      return { ...base, helper: 'dax-fault', obs: [ob('mapped', 0x109600, 1, 1, 9), ob('mapped_last', 0x1099ff, 1, 1, 9), ob('unmapped', 0x109600, 0, 0, 9), ob('unmapped_last', 0x1099ff, 0, 0, 9)], extra: { pages: 1024, vaddr_pmd_aligned: true, pfn_contig: true, huge_aligned: true } };
    case 'odirect-pin':
      // Direct I/O pins with FOLL_PIN: +1024 on an order-0 folio while in flight.
      return { ...base, helper: 'dax-odirect-pin', obs: [ob('before', 0x10927f, 1, 1), ob('during', 0x10927f, 1025, 1), ob('after', 0x10927f, 1, 1), ob('unmapped', 0x10927f, 0, 0)], extra: { during_samples: 10, io_ms: 2001, io_ret: 4096 } };
    case 'uring-longterm':
      return { ...base, helper: 'dax-uring-pin', obs: [ob('before', 0x109411, 1, 1), ob('after_register', 0x109411, 1, 1), ob('unmapped', 0x109411, 0, 0)], extra: { control_ret: 0, register_ret: -95, pin_acquired_delta: 0, pin_released_delta: 0 } };
  }
}

function withObs(r: HelperReport, phase: string, patch: Partial<HelperObs>): HelperReport {
  return { ...r, obs: r.obs.map((o) => (o.phase === phase ? { ...o, ...patch } : o)) };
}

function failed(checks: Check[]): Check[] {
  return checks.filter((c) => !c.ok);
}

t.test('parseHelperReport', async (t) => {
  const stdout = fixture('helpers/legacy-6.1-odirect-pin.stdout.txt');
  const r = parseHelperReport(stdout);
  t.same(r, JSON.parse(stdout), 'the one JSON line of a real helper run');
  t.equal(r?.extra.io_ms, 2001);

  // stdout and stderr mixed (e.g. a shell wrapper with 2>&1): probe lines are not JSON.
  const mixed = `${fixture('helpers/legacy-6.1-mmap-fault-4k.stderr.txt')}${fixture('helpers/legacy-6.1-mmap-fault-4k.stdout.txt')}`;
  t.equal(parseHelperReport(mixed)?.helper, 'dax-fault');

  const first = { ...legacyReport('mmap-fault-4k'), result: 'fail', reason: 'first' };
  const last = { ...legacyReport('mmap-fault-4k'), reason: 'last' };
  t.equal(parseHelperReport(`${JSON.stringify(first)}\n${JSON.stringify(last)}\n`)?.reason, 'last', 'the last report line wins');
  t.equal(
    parseHelperReport(`${JSON.stringify(last)}\r\n{"not":"a report"}\n{"helper":"dax-fault","v":1,"res\nSegmentation fault\n\n`)?.reason,
    'last',
    'later garbage, truncated JSON and non-report objects are skipped',
  );
  t.equal(parseHelperReport('{"helper":"dax-fault","v":1,"result":"ok","reason":"","dax":true,"obs":[{"phase":"mapped"'), null, 'truncated JSON only: null');
  t.equal(parseHelperReport(''), null);
  t.equal(parseHelperReport('dax-fault: open: main: No such file or directory\n'), null);
  t.equal(parseHelperReport('{"helper":"dax-fault","result":"maybe","obs":[]}'), null, 'unknown result value');
  t.equal(parseHelperReport('{"helper":"dax-fault","result":"ok","obs":{}}'), null, 'obs must be an array');
  t.equal(parseHelperReport('{"helper":7,"result":"ok","obs":[]}'), null, 'helper must be a string');
  t.equal(parseHelperReport('[{"helper":"dax-fault","result":"ok","obs":[]}]'), null, 'an array is not a report');
  t.equal(parseHelperReport('{"helper":"dax-uring-pin","v":1,"result":"skip","reason":"io_uring_setup: main: Function not implemented","dax":true,"obs":[],"extra":{}}')?.result, 'skip');
});

t.test('the suite', async (t) => {
  t.same(SUITE.slice(0, NAMES.length).map((s) => s.name), [...NAMES], 'the foundation tests come first');
  t.equal(new Set(SUITE.map((s) => s.name)).size, SUITE.length, 'names are unique');
  t.equal(SUITE[SUITE.length - 1]?.name, 'stress-concurrent', 'the stress lane runs last');
  for (const d of SUITE) {
    t.ok(d.description.length > 40, `${d.name} says what it checks`);
    const argv = d.argv({ mountpoint: '/mnt/xfs', fs: 'xfs', ...GUEST_PATHS });
    t.ok(argv.every((a) => typeof a === 'string' && a !== ''), `${d.name}: argv has no empty words`);
    t.ok(argv.some((a) => a.startsWith('/opt/dax/bin/dax-')), `${d.name}: runs a helper from /opt/dax/bin`);
    const file = argv[argv.indexOf('--file') + 1];
    t.equal(file, `/mnt/xfs/${d.name}`, `${d.name}: test file on the filesystem under test, named after the test`);
    // The helper's own alarm must fire before the harness gives up on it, so a hang still
    // yields a JSON report (the harness has the slow device ready before the helper starts).
    const helperTimeoutS = Number(argv[argv.indexOf('--timeout') + 1]);
    t.ok(helperTimeoutS * 1000 < d.timeoutMs, `${d.name}: helper timeout ${helperTimeoutS} s < ${d.timeoutMs} ms`);
  }
  const fault2m = test('mmap-fault-2m').argv({ mountpoint: '/mnt/ext4', fs: 'ext4', ...GUEST_PATHS });
  t.same(fault2m.slice(fault2m.indexOf('--size'), fault2m.indexOf('--size') + 4), ['--size', '4m', '--align', '2m']);
  const fault4k = test('mmap-fault-4k').argv({ mountpoint: '/mnt/ext4', fs: 'ext4', ...GUEST_PATHS });
  t.same(fault4k.slice(fault4k.indexOf('--size'), fault4k.indexOf('--size') + 4), ['--size', '64k', '--align', '4k']);
  t.ok(fault4k.includes('--write'));
  const od = test('odirect-pin').argv({ mountpoint: '/mnt/ext4', fs: 'ext4', ...GUEST_PATHS });
  t.equal(od[0], '/opt/dax/bin/dax-odirect-pin', 'the helper itself: the harness waits for the slow device first');
  t.equal(test('odirect-pin').needsSlowDev, true, 'and knows the test needs it');
  t.same(od.slice(od.indexOf('--dev'), od.indexOf('--dev') + 2), ['--dev', '/dev/nullb0']);
});

for (const name of NAMES) {
  t.test(`${name}: judge`, async (t) => {
    const d = test(name);
    const legacyChecks = judge(d, legacyReport(name), LEGACY);
    t.ok(legacyChecks.length >= 5, 'several checks');
    t.same(failed(legacyChecks), [], 'the real 6.1 report passes under the legacy model');
    t.ok(legacyChecks.every((c) => c.actual !== 'not observed'));
    t.equal(new Set(legacyChecks.map((c) => c.name)).size, legacyChecks.length, 'check names are unique');

    const folioChecks = judge(d, folioReport(name), FOLIO);
    t.same(failed(folioChecks), [], 'a folio-model report passes under the folio model');
    t.ok(folioChecks.some((c) => c.name.includes('(folio model)')), 'check names say which model judged');

    // The models predict different numbers: each report fails under the other model.
    t.ok(failed(judge(d, legacyReport(name), FOLIO)).length > 0, 'the 6.1 report fails under the folio model');
    t.ok(failed(judge(d, folioReport(name), LEGACY)).length > 0, 'the folio report fails under the legacy model');

    const all = d.judge({ ...legacyReport(name), obs: [], extra: {} }, LEGACY, { fs: 'ext4', trace: [], dmesg: [] });
    // Tracepoint checks count events (0 is an observation); the probe checks have nothing.
    const empty = all.filter((c) => !/fault|PMD|PTE/.test(c.name));
    t.ok(empty.length > 0);
    t.same(failed(empty), empty, 'no observations: every probe check fails');
    t.ok(empty.every((c) => c.actual === 'not observed'), 'and says "not observed"');
    if (name.startsWith('mmap-fault')) t.ok(failed(all).some((c) => /fault/.test(c.name)), 'no trace events: a fault-size check fails too');
  });
}

t.test('mmap-fault-*: specific failures', async (t) => {
  const d = test('mmap-fault-4k');
  const leaked = judge(d, withObs(legacyReport('mmap-fault-4k'), 'unmapped', { refcount: 2 }), LEGACY);
  t.same(failed(leaked), [{ name: 'unmapped: refcount back to idle (legacy model)', ok: false, expected: '1', actual: '2' }], 'a reference leaked past munmap is caught, and only that');

  const folioLeak = judge(d, withObs(folioReport('mmap-fault-4k'), 'unmapped_last', { refcount: 1 }), FOLIO);
  t.same(failed(folioLeak).map((c) => [c.name, c.expected, c.actual]), [['unmapped_last: refcount back to idle (folio model)', '0', '1']]);

  const counted = judge(test('mmap-fault-2m'), withObs(legacyReport('mmap-fault-2m'), 'mapped', { mapcount: 1 }), LEGACY);
  t.same(failed(counted).map((c) => c.name), ['mapped: mapcount (legacy model)'], '6.1 never counts fsdax mappings');

  const notDax = judge(test('mmap-fault-2m'), withObs(legacyReport('mmap-fault-2m'), 'mapped_last', { zone_device: 0 }), LEGACY);
  t.same(failed(notDax).map((c) => c.name), ['mapped_last: page is ZONE_DEVICE (fsdax)'], 'a page-cache page is not accepted as fsdax');

  const noTail = judge(d, { ...legacyReport('mmap-fault-4k'), obs: legacyReport('mmap-fault-4k').obs.filter((o) => !o.phase.endsWith('_last')) }, LEGACY);
  t.ok(failed(noTail).length === 4 && failed(noTail).every((c) => c.name.startsWith('mapped_last') || c.name.startsWith('unmapped_last')), 'missing _last phases fail their checks');
});

t.test('odirect-pin: specific failures', async (t) => {
  const d = test('odirect-pin');
  const noPin = judge(d, withObs(legacyReport('odirect-pin'), 'during', { refcount: 1 }), LEGACY);
  t.same(failed(noPin), [{ name: 'during: refcount raised by the in-flight I/O', ok: false, expected: '> 1', actual: '1' }], 'a pin that was not observed fails');

  const stuck = judge(d, withObs(legacyReport('odirect-pin'), 'after', { refcount: 2 }), LEGACY);
  t.same(failed(stuck).map((c) => [c.name, c.expected, c.actual]), [['after: refcount back to the mapped value', '1', '2']], 'a pin not dropped after the I/O fails');

  const fast = judge(d, { ...legacyReport('odirect-pin'), extra: { io_ms: 120, io_ret: 4096, during_samples: 1 } }, LEGACY);
  t.same(failed(fast).map((c) => [c.name, c.actual]), [['the I/O really was slow (pin window observed)', '120']]);

  const noDuring = judge(d, { ...legacyReport('odirect-pin'), obs: legacyReport('odirect-pin').obs.filter((o) => o.phase !== 'during') }, LEGACY);
  t.same(failed(noDuring).map((c) => [c.name, c.actual]), [['during: refcount raised by the in-flight I/O', 'not observed']]);

  const noBefore = judge(d, { ...legacyReport('odirect-pin'), obs: legacyReport('odirect-pin').obs.filter((o) => o.phase !== 'before') }, LEGACY);
  const during = noBefore.find((c) => c.name.startsWith('during'));
  t.equal(during?.ok, false, 'without a before value, a raise cannot be shown');
  t.equal(during?.expected, '> ?');

  const noIoMs = judge(d, { ...legacyReport('odirect-pin'), extra: { io_ret: 4096 } }, LEGACY);
  t.same(failed(noIoMs).map((c) => c.actual), ['not observed']);
});

t.test('uring-longterm: specific failures', async (t) => {
  const d = test('uring-longterm');
  const base = legacyReport('uring-longterm');
  const accepted = judge(d, { ...base, extra: { ...base.extra, register_ret: 0 } }, LEGACY);
  t.same(failed(accepted).map((c) => [c.name, c.actual]), [['io_uring_register_buffers refused the DAX buffer (on 6.1 by io_uring itself, which takes no file-backed buffer)', '0']], 'a registration of fsdax that succeeds is a failure');
  t.match(d.description, /not a FOLL_LONGTERM check/, 'and the test does not claim to prove FOLL_LONGTERM');
  t.same(d.requires, ['CONFIG_IO_URING']);

  const leak = judge(d, { ...base, extra: { ...base.extra, pin_acquired_delta: 1, pin_released_delta: 0 } }, LEGACY);
  t.same(failed(leak).map((c) => [c.name, c.actual]), [['no FOLL_PIN left behind (acquired - released)', '1']], 'an unreleased FOLL_PIN is caught');

  const balanced = judge(d, { ...base, extra: { ...base.extra, pin_acquired_delta: 3, pin_released_delta: 3 } }, LEGACY);
  t.same(failed(balanced), [], 'pins taken and released again are fine');

  const noCounter = judge(d, { ...base, extra: { control_ret: 0, register_ret: -95, pin_acquired_delta: 0 } }, LEGACY);
  t.same(failed(noCounter).map((c) => c.actual), ['not observed'], 'a missing counter is not taken as zero');

  const held = judge(d, withObs(base, 'after_register', { refcount: 2 }), LEGACY);
  t.same(failed(held).map((c) => [c.name, c.actual]), [['after_register: refcount unchanged', '2']]);
});

t.test('selectTests', async (t) => {
  t.equal(selectTests([]).tests, SUITE, 'no names: the whole suite');
  t.same(selectTests([]).unknown, []);
  const some = selectTests(['uring-longterm', 'mmap-fault-4k']);
  t.same(some.tests.map((x) => x.name), ['uring-longterm', 'mmap-fault-4k'], 'argument order: a fault-injection run places its faults');
  t.same(some.unknown, []);
  const bad = selectTests(['odirect-pin', 'mmap-fault-1g', 'ODIRECT-PIN']);
  t.same(bad.unknown, ['mmap-fault-1g', 'ODIRECT-PIN'], 'unknown names reported (names are case-sensitive)');
  t.same(bad.tests.map((x) => x.name), ['odirect-pin']);
  t.same(selectTests(['odirect-pin', 'odirect-pin']).tests.map((x) => x.name), ['odirect-pin', 'odirect-pin'], 'a name given twice runs twice (e.g. again after a fault)');
  t.same(selectTests(['selftest-panic']).tests.map((x) => x.name), ['selftest-panic'], 'self-tests are selectable by name');
  t.notOk(SUITE.some((x) => x.name.startsWith('selftest-')), 'but never part of the suite');
});

t.test('a report without extra still parses, with an empty extra', async (t) => {
  const r = parseHelperReport('{"helper":"dax-uring-pin","v":1,"result":"ok","reason":"","dax":true,"obs":[]}\n');
  t.same(r?.extra, {});
});

t.test('stress-concurrent: judge', async (t) => {
  const d = SUITE.find((x) => x.name === 'stress-concurrent')!;
  // The extra of a real 6.1 run (ext4).
  // The extra of a real 6.1 run (Debian 6.1.0-57, xfs, run 20261203-145110Z): 512 pin attempts, 411 pins.
  const extra = { seed: 20261125, procs: 4, seconds: 5, ops_map: 481, ops_map_pin: 512, pins_done: 411, ops_truncate: 473, ops_punch: 523, sigbus: 412, pfns_seen: 5236, pfns_checked: 5236, pfns_not_dax: 0, min_refcount: 1, max_refcount: 1 };
  const rep: HelperReport = { helper: 'dax-stress', v: 1, result: 'ok', reason: '', dax: true, obs: [], extra };
  const ctx = { fs: 'ext4', trace: [], dmesg: [] };
  t.same(failed(d.judge(rep, LEGACY, ctx)), [], 'the real 6.1 run passes under the legacy model');
  t.ok(failed(d.judge(rep, FOLIO, ctx)).length > 0, 'and fails under the folio model (idle is 0 there)');
  t.same(failed(d.judge({ ...rep, extra: { ...extra, min_refcount: 0, max_refcount: 0 } }, FOLIO, ctx)), [], 'an all-idle folio kernel passes');
  t.match(failed(d.judge({ ...rep, extra: { ...extra, max_refcount: 2 } }, LEGACY, ctx)).map((c) => c.name), [/highest refcount/], 'one leaked reference is caught');
  t.match(failed(d.judge({ ...rep, extra: { ...extra, min_refcount: 0 } }, LEGACY, ctx)).map((c) => c.name), [/lowest refcount/], 'one reference dropped twice is caught');
  t.ok(failed(d.judge({ ...rep, extra: { ...extra, ops_punch: 0 } }, LEGACY, ctx)).length > 0, 'a run where an operation never happened proves less: fails');
  t.ok(failed(d.judge({ ...rep, extra: { ...extra, pfns_checked: 0 } }, LEGACY, ctx)).length > 0, 'nothing checked: fails');
  t.match(failed(d.judge({ ...rep, extra: { ...extra, pins_done: 0 } }, LEGACY, ctx)).map((c) => c.name), [/really pinned/], 'pin attempts that never pinned: fails');
  const { pins_done: _unused, ...old } = extra;
  t.match(failed(d.judge({ ...rep, extra: old }, LEGACY, ctx)).map((c) => c.actual), ['not observed'], 'attempts alone are not counted as pins');
});

t.test('gup-crosscheck: dump_page lines and the judge', async (t) => {
  // dump_page() formats: 6.1 prints the hashed page pointer after "page:", later kernels do not.
  const v61 = 'page:00000000a1b2c3d4 refcount:2 mapcount:0 mapping:000000004f3c2a1b index:0x0 pfn:0x109a04';
  const vNew = 'page: refcount:2 mapcount:1 mapping:000000004f3c2a1b index:0x0 pfn:0x109a04';
  t.same(parseDumpPage(['flags: 0x27ffffc0001000(reserved)', v61], 0x109a04), { refcount: 2, mapcount: 0 });
  t.same(parseDumpPage([vNew], 0x109a04), { refcount: 2, mapcount: 1 });
  t.equal(parseDumpPage([v61], 0x109a05), null, 'another PFN is not this page');
  const d = SUITE.find((x) => x.name === 'gup-crosscheck')!;
  const o = (phase: string, refcount: number, mapcount = 0): HelperObs => ({ phase, pfn: 0x109a04, refcount, mapcount, pincount: -1, zone_device: 1, order: 0 });
  const rep: HelperReport = { helper: 'dax-gup-dump', v: 1, result: 'ok', reason: '', dax: true, obs: [o('before', 1), o('after', 1), o('unmapped', 1)], extra: { pfn: 0x109a04 } };
  t.same(failed(d.judge(rep, LEGACY, { fs: 'ext4', trace: [], dmesg: [v61] })), [], 'the probe agrees with dump_page (legacy)');
  t.match(failed(d.judge(rep, LEGACY, { fs: 'ext4', trace: [], dmesg: ['page:0000 refcount:3 mapcount:0 mapping:0 index:0x0 pfn:0x109a04'] })).map((c) => c.name), [/refcount = probe's/], 'a probe that misreads the refcount is caught');
  t.match(failed(d.judge(rep, LEGACY, { fs: 'ext4', trace: [], dmesg: [] })).map((c) => c.actual), ['not observed', 'not observed'], 'no dump line: the cross-check fails, it does not pass');
  const folio: HelperReport = { ...rep, obs: [o('before', 1, 1), o('after', 1, 1), o('unmapped', 0)] };
  t.same(failed(d.judge(folio, FOLIO, { fs: 'ext4', trace: [], dmesg: [vNew] })), [], 'folio model with the newer dump format');
});
