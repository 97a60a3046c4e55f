// Tests for the gup-longterm-pmd judge. The reports are hand-written to the dax-gup-pin
// contract (no guest with CONFIG_GUP_TEST has run it yet): what a sound 6.1 prints (legacy
// model: refcount 1 and mapcount 0 whether mapped or not, order-0 pages) and what a sound 6.15+
// prints (folio model: idle 0, one reference and one mapcount per mapping, the PMD file in
// order-9 folios). Each broken variant must fail exactly the check that names the breakage.
import { GUEST_PATHS } from '../../../src/target/qemu/session.js';
import t from 'tap';
import { detectRefcountModel, expectedRefcount, type RefcountModel } from '../../../src/kernel/model.js';
import { TESTS } from '../../../src/suite/scenarios/gup.js';
import { parseHelperReport, type Check, type HelperObs, type HelperReport, type JudgeContext, type TestDef } from '../../../src/suite/suite.js';
import { parseDaxTrace } from '../../../src/suite/trace.js';

const LEGACY = detectRefcountModel(new Set(['__put_devmap_managed_page_refs']));
const FOLIO = detectRefcountModel(new Set(['vmf_insert_folio_pmd', 'vmf_insert_page_mkwrite']));
const MODELS: RefcountModel[] = [LEGACY, FOLIO];

const SIZE = 4 << 20;
const PAGES = SIZE / 4096;
const PMD_INO = 13;
const PTE_INO = 14;
// The PMD file on one 2 MiB-aligned run; "mid" is page 768, the middle of the second PMD.
const PFN = { pmd_first: 0x109000, pmd_mid: 0x109300, pte_first: 0x109400, pte_mid: 0x109700 } as const;
type Page = keyof typeof PFN;

// fs_dax events as 6.1 records them for the two files: two PMD faults for the PMD file
// (ino 0xd); for the PTE file (ino 0xe, mapped 4 KiB past a 2 MiB boundary) a PMD fault that
// falls back and PTE faults (cut to two: the real trace has 1024).
const TRACE = [
  'dax-gup-pin-230     [000] .....    12.100000: dax_pmd_fault: dev 259:0 ino 0xd shared WRITE|ALLOW_RETRY|KILLABLE|USER|INTERRUPTIBLE address 0x7f1234400000 vm_start 0x7f1234400000 vm_end 0x7f1234800000 pgoff 0x0 max_pgoff 0x400',
  'dax-gup-pin-230     [000] .....    12.102000: dax_pmd_fault_done: dev 259:0 ino 0xd shared WRITE|ALLOW_RETRY|KILLABLE|USER|INTERRUPTIBLE address 0x7f1234400000 vm_start 0x7f1234400000 vm_end 0x7f1234800000 pgoff 0x0 max_pgoff 0x400 NOPAGE',
  'dax-gup-pin-230     [000] .....    12.103000: dax_pmd_fault: dev 259:0 ino 0xd shared WRITE|ALLOW_RETRY|KILLABLE|USER|INTERRUPTIBLE address 0x7f1234600000 vm_start 0x7f1234400000 vm_end 0x7f1234800000 pgoff 0x200 max_pgoff 0x400',
  'dax-gup-pin-230     [000] .....    12.105000: dax_pmd_fault_done: dev 259:0 ino 0xd shared WRITE|ALLOW_RETRY|KILLABLE|USER|INTERRUPTIBLE address 0x7f1234600000 vm_start 0x7f1234400000 vm_end 0x7f1234800000 pgoff 0x200 max_pgoff 0x400 NOPAGE',
  'dax-gup-pin-230     [000] .....    12.110000: dax_pmd_fault: dev 259:0 ino 0xe shared WRITE|ALLOW_RETRY|KILLABLE|USER|INTERRUPTIBLE address 0x7f1233e01000 vm_start 0x7f1233e01000 vm_end 0x7f1234201000 pgoff 0x0 max_pgoff 0x400',
  'dax-gup-pin-230     [000] .....    12.110100: dax_pmd_fault_done: dev 259:0 ino 0xe shared WRITE|ALLOW_RETRY|KILLABLE|USER|INTERRUPTIBLE address 0x7f1233e01000 vm_start 0x7f1233e01000 vm_end 0x7f1234201000 pgoff 0x0 max_pgoff 0x400 FALLBACK',
  'dax-gup-pin-230     [000] .....    12.110200: dax_pte_fault: dev 259:0 ino 0xe shared WRITE|ALLOW_RETRY|KILLABLE|USER|INTERRUPTIBLE address 0x7f1233e01000 pgoff 0x0',
  'dax-gup-pin-230     [000] .....    12.111000: dax_pte_fault_done: dev 259:0 ino 0xe shared WRITE|ALLOW_RETRY|KILLABLE|USER|INTERRUPTIBLE address 0x7f1233e01000 pgoff 0x0 MAJOR|NOPAGE',
  'dax-gup-pin-230     [000] .....    12.111100: dax_pte_fault: dev 259:0 ino 0xe shared WRITE|ALLOW_RETRY|KILLABLE|USER|INTERRUPTIBLE address 0x7f1233e02000 pgoff 0x1',
  'dax-gup-pin-230     [000] .....    12.111900: dax_pte_fault_done: dev 259:0 ino 0xe shared WRITE|ALLOW_RETRY|KILLABLE|USER|INTERRUPTIBLE address 0x7f1233e02000 pgoff 0x1 MAJOR|NOPAGE',
].join('\n');

const CTX: JudgeContext = { fs: 'ext4', trace: parseDaxTrace(TRACE), dmesg: [] };

function def(): TestDef {
  const d = TESTS.find((x) => x.name === 'gup-longterm-pmd');
  if (!d) throw new Error('no test gup-longterm-pmd');
  return d;
}

/** The phases the helper records, in its order. */
function phases(): { phase: string; page: Page; mapped: boolean }[] {
  const out: { phase: string; page: Page; mapped: boolean }[] = [];
  for (const place of ['pmd', 'pte'] as const) {
    const steps = ['before', 'after_gup', 'after_pin', ...(place === 'pmd' ? ['after_longterm'] : [])];
    for (const step of steps) for (const p of ['first', 'mid'] as const) out.push({ phase: `${place}_${p}_${step}`, page: `${place}_${p}`, mapped: true });
  }
  for (const place of ['pmd', 'pte'] as const) for (const p of ['first', 'mid'] as const) out.push({ phase: `${place}_${p}_unmapped`, page: `${place}_${p}`, mapped: false });
  return out;
}

/** The report a sound kernel of model `m` prints. */
function goodReport(m: RefcountModel): HelperReport {
  const obs: HelperObs[] = phases().map(({ phase, page, mapped }) => {
    // 6.15+ maps a 2 MiB DAX extent as one order-9 folio; 6.1 fsdax pages are never compound.
    const order = m.name === 'folio' && page.startsWith('pmd') ? 9 : 0;
    return {
      phase,
      pfn: PFN[page],
      refcount: expectedRefcount(m, mapped ? 1 : 0),
      mapcount: m.mappingsCounted && mapped ? 1 : 0,
      pincount: order > 0 ? 0 : -1,
      zone_device: 1,
      order,
    };
  });
  return {
    helper: 'dax-gup-pin',
    v: 1,
    result: 'ok',
    reason: '',
    dax: true,
    obs,
    extra: {
      mapping_bytes: SIZE,
      anon_bytes: 65536,
      longterm_anon_bytes: 65536,
      pmd_ino: PMD_INO,
      pfn_contig: true,
      huge_aligned: true,
      pte_ino: PTE_INO,
      pmd_gup_bytes: SIZE,
      pmd_pin_bytes: SIZE,
      pte_gup_bytes: SIZE,
      pte_pin_bytes: SIZE,
      longterm_errno: 0,
      longterm_bytes: 0,
      foll_pin_acquired_delta: 2 * PAGES,
      foll_pin_released_delta: 2 * PAGES,
    },
  };
}

function judge(r: HelperReport, m: RefcountModel, ctx: JudgeContext = CTX): Check[] {
  return def().judge(r, m, ctx);
}

function failedNames(checks: Check[]): string[] {
  return checks.filter((c) => !c.ok).map((c) => c.name);
}

function withObs(r: HelperReport, phase: string, patch: Partial<HelperObs>): HelperReport {
  if (!r.obs.some((o) => o.phase === phase)) throw new Error(`no phase ${phase}`);
  return { ...r, obs: r.obs.map((o) => (o.phase === phase ? { ...o, ...patch } : o)) };
}

function withExtra(r: HelperReport, patch: Record<string, unknown>): HelperReport {
  return { ...r, extra: { ...r.extra, ...patch } };
}

function withoutExtra(r: HelperReport, key: string): HelperReport {
  const extra = { ...r.extra };
  delete extra[key];
  return { ...r, extra };
}

const refcountCheck = (phase: string, after: string, m: RefcountModel): string => `${phase}: refcount is the mapped value${after} (${m.name} model)`;
const AFTER_GUP = ": GUP_BASIC_TEST's reference taken and given back";
const AFTER_PIN = ": PIN_BASIC_TEST's pin taken and given back";
const LONGTERM = 'FOLL_LONGTERM refused on fsdax: nothing pinned (longterm_bytes)';
const BALANCED = 'every FOLL_PIN pin was released (foll_pin_acquired_delta = foll_pin_released_delta)';
const COUNTED = "the FOLL_PIN counters saw PIN_BASIC_TEST's pins of both mappings (foll_pin_acquired_delta)";

t.test('the test definition', async (t) => {
  t.same(TESTS.map((d) => d.name), ['gup-longterm-pmd']);
  const d = def();
  t.ok(d.description.length > 80, 'says what it checks and why');
  t.same(d.argv({ mountpoint: '/mnt/xfs', fs: 'xfs', ...GUEST_PATHS }), ['/opt/dax/bin/dax-gup-pin', '--file', '/mnt/xfs/gup-longterm-pmd', '--timeout', '30']);
  t.ok(d.timeoutMs > 30_000, "the harness's bound leaves the helper's own 30 s timeout room to report");
  t.equal(d.trace, true, 'records fs_dax events: the judge needs them to tell PMD from PTE faults');
});

t.test('a sound kernel passes under its model', async (t) => {
  for (const m of MODELS) {
    const checks = judge(goodReport(m), m);
    t.same(failedNames(checks), [], `${m.name}: every check passes`);
    // 2 placements x 2 pages: before, after_gup, after_pin (+ after_longterm for pmd) x 3 checks, unmapped x 1.
    t.ok(checks.length >= 2 * 2 * 3 * 3 + 2 * 3 + 4, `${m.name}: every phase is judged (${checks.length} checks)`);
  }
});

t.test('a report is judged by the model of the kernel that printed it', async (t) => {
  // A 6.1 report read as 6.15+: mapped pages without a mapcount, unmapped pages at 1.
  const failed = failedNames(judge(goodReport(LEGACY), FOLIO));
  t.ok(failed.includes('pmd_first_before: mapcount (folio model)'));
  t.ok(failed.includes('pte_mid_unmapped: refcount back to idle (folio model)'));
  t.same(
    failed.filter((n) => !/^(pmd|pte)_(first|mid)_[a-z_]+: (refcount|mapcount)/.test(n)),
    [],
    'only page refcounts and mapcounts depend on the model, not the byte and counter checks',
  );
});

t.test('under-count: GUP never took its reference, the put dropped the mapping\'s own', async (t) => {
  for (const m of MODELS) {
    const phase = 'pmd_first_after_gup';
    const under = expectedRefcount(m, 1) - 1;
    const checks = judge(withObs(goodReport(m), phase, { refcount: under }), m);
    t.same(failedNames(checks), [refcountCheck(phase, AFTER_GUP, m)], `${m.name}: only the after-GUP refcount fails`);
    const c = checks.find((x) => !x.ok);
    t.equal(c?.actual, String(under));
    t.equal(c?.expected, String(expectedRefcount(m, 1)));
    if (m.name === 'legacy') t.ok(under < m.idle, 'on 6.1 the page fell below idle');
  }
  // The PTE path (follow_page_pte) is judged the same way.
  t.same(failedNames(judge(withObs(goodReport(LEGACY), 'pte_mid_after_gup', { refcount: 0 }), LEGACY)), [refcountCheck('pte_mid_after_gup', AFTER_GUP, LEGACY)]);
});

t.test('leak: a page one above the mapped value after PIN_BASIC_TEST', async (t) => {
  for (const m of MODELS) {
    for (const phase of ['pmd_mid_after_pin', 'pte_first_after_pin']) {
      const r = withObs(goodReport(m), phase, { refcount: expectedRefcount(m, 1) + 1 });
      t.same(failedNames(judge(r, m)), [refcountCheck(phase, AFTER_PIN, m)], `${m.name} ${phase}: only its refcount check fails`);
    }
    // Left behind for good, the leak also keeps the page from going idle after munmap.
    let r = goodReport(m);
    for (const step of ['after_pin', 'after_longterm']) r = withObs(r, `pmd_first_${step}`, { refcount: expectedRefcount(m, 1) + 1 });
    r = withObs(r, 'pmd_first_unmapped', { refcount: expectedRefcount(m, 0) + 1 });
    t.same(
      failedNames(judge(r, m)),
      [
        refcountCheck('pmd_first_after_pin', AFTER_PIN, m),
        refcountCheck('pmd_first_after_longterm', ': the refused FOLL_LONGTERM pin left nothing', m),
        `pmd_first_unmapped: refcount back to idle (${m.name} model)`,
      ],
      `${m.name}: a lasting leak fails every later phase of the page`,
    );
  }
});

t.test('FOLL_LONGTERM accepted on fsdax', async (t) => {
  for (const m of MODELS) {
    // The pins were taken and released (balanced counters, pages back): only the refusal fails.
    const r = withExtra(goodReport(m), { longterm_bytes: SIZE, foll_pin_acquired_delta: 3 * PAGES, foll_pin_released_delta: 3 * PAGES });
    t.same(failedNames(judge(r, m)), [LONGTERM], m.name);
  }
  // A failing ioctl proves nothing about FOLL_LONGTERM.
  const r = withExtra(goodReport(LEGACY), { longterm_errno: 22, longterm_bytes: -1 });
  t.same(failedNames(judge(r, LEGACY)), ['the PIN_LONGTERM_BENCHMARK ioctl ran (longterm_errno)', LONGTERM]);
  // Nor does a refusal when FOLL_LONGTERM pins nothing anywhere (the control).
  t.same(failedNames(judge(withExtra(goodReport(LEGACY), { longterm_anon_bytes: 0 }), LEGACY)), [
    'control: FOLL_LONGTERM pins all of an anonymous buffer (longterm_anon_bytes)',
  ]);
});

t.test('unbalanced FOLL_PIN counters', async (t) => {
  for (const m of MODELS) {
    const r = withExtra(goodReport(m), { foll_pin_released_delta: 2 * PAGES - 1 });
    const checks = judge(r, m);
    t.same(failedNames(checks), [BALANCED], `${m.name}: a pin left behind`);
    t.equal(checks.find((c) => c.name === BALANCED)?.actual, `acquired ${2 * PAGES}, released ${2 * PAGES - 1}`);
  }
  // Counters that never moved balance trivially: they must have seen the pins.
  t.same(failedNames(judge(withExtra(goodReport(FOLIO), { foll_pin_acquired_delta: 0, foll_pin_released_delta: 0 }), FOLIO)), [COUNTED]);
  t.same(failedNames(judge(withoutExtra(goodReport(LEGACY), 'foll_pin_released_delta'), LEGACY)), [BALANCED]);
});

t.test('GUP stopped short of the mapping', async (t) => {
  const r = withExtra(goodReport(LEGACY), { pmd_pin_bytes: SIZE / 2 });
  t.same(failedNames(judge(r, LEGACY)), ['PIN_BASIC_TEST pinned every page of the PMD mapping (pmd_pin_bytes)']);
  // Without the mapping size nothing can be compared: the byte checks fail, never pass.
  const failed = failedNames(judge(withoutExtra(goodReport(LEGACY), 'mapping_bytes'), LEGACY));
  t.same(failed, [
    'GUP_BASIC_TEST took every page of the PMD mapping (pmd_gup_bytes)',
    'PIN_BASIC_TEST pinned every page of the PMD mapping (pmd_pin_bytes)',
    'GUP_BASIC_TEST took every page of the PTE mapping (pte_gup_bytes)',
    'PIN_BASIC_TEST pinned every page of the PTE mapping (pte_pin_bytes)',
    COUNTED,
  ]);
});

t.test('the PMD file was not PMD-mapped', async (t) => {
  // Unaligned blocks: the PMD faults fall back, and follow_devmap_pmd is never exercised.
  const fellBack = parseDaxTrace(TRACE.replaceAll('max_pgoff 0x400 NOPAGE', 'max_pgoff 0x400 FALLBACK'));
  const r = withExtra(goodReport(LEGACY), { huge_aligned: false });
  t.same(failedNames(judge(r, LEGACY, { ...CTX, trace: fellBack })), [
    'every 2 MiB of the PMD file starts on a 2 MiB-aligned block (huge_aligned)',
    'the PMD file was mapped by PMDs (dax_pmd_fault_done NOPAGE)',
  ]);
  // No trace at all: the fault checks fail rather than pass.
  t.same(failedNames(judge(goodReport(LEGACY), LEGACY, { ...CTX, trace: [] })), [
    'the PMD file was mapped by PMDs (dax_pmd_fault_done NOPAGE)',
    'the PTE file was mapped by PTEs (dax_pte_fault_done)',
  ]);
});

t.test('the helper report line parses into what the judge reads', async (t) => {
  const r = goodReport(FOLIO);
  const parsed = parseHelperReport(`dax-gup-pin: obs pmd_first_before: dax_probe v1 ...\n${JSON.stringify(r)}\n`);
  t.same(parsed, r);
  t.same(failedNames(judge(parsed as HelperReport, FOLIO)), []);
});
