// Scenarios that drive GUP (get_user_pages/pin_user_pages) on fs-DAX pages through CONFIG_GUP_TEST.
// A kernel without gup_test is a SKIP: the helper says so and run.ts never calls the judge.
import { cmp, eq, idleCheck, obs, setup } from '../checks.js';
import { expectedMapcount, expectedRefcount, type RefcountModel } from '../../kernel/model.js';
import { summarizeDaxFaults } from '../trace.js';
import type { Check, HelperReport, JudgeContext, TestDef } from '../suite.js';

const PAGE_SIZE = 4096;
const PLACES = ['pmd', 'pte'] as const;
type Place = (typeof PLACES)[number];
/** The two pages the helper observes in each file: the first, and a tail page of the last PMD. */
const PAGES = ['first', 'mid'] as const;

/** A number the helper put in `extra`, if it did. */
function num(r: HelperReport, key: string): number | undefined {
  const v = r.extra[key];
  return typeof v === 'number' ? v : undefined;
}

/** A check on a boolean the helper put in `extra`. */
function flag(r: HelperReport, key: string, name: string): Check {
  const v = r.extra[key];
  return { name: `${name} (${key})`, ok: v === true, expected: 'true', actual: v === undefined ? 'not observed' : String(v) };
}

/** A check that `extra[key]` equals another reported number (both must be there). */
function sameAs(r: HelperReport, key: string, expected: number | undefined, expectedWhat: string, name: string): Check {
  return cmp(`${name} (${key})`, (a) => expected !== undefined && a === expected, expected === undefined ? `${expectedWhat} (not reported)` : String(expected), num(r, key));
}

/** Checks for a page its one mapping (PMD or PTE) holds and nobody else: `after` says what just let go of it. */
function mappedPage(r: HelperReport, m: RefcountModel, phase: string, after: string): Check[] {
  const o = obs(r, phase);
  return [
    eq(`${phase}: page is ZONE_DEVICE (fsdax)`, 1, o?.zone_device),
    eq(`${phase}: refcount is the mapped value${after} (${m.name} model)`, expectedRefcount(m, 1), o?.refcount),
    eq(`${phase}: mapcount (${m.name} model)`, expectedMapcount(m, 1), o?.mapcount),
  ];
}

/** How each placement's file was faulted, from the fs_dax trace of its inode. */
function faultChecks(r: HelperReport, ctx: JudgeContext): Check[] {
  const faults = (place: Place) => {
    const ino = num(r, `${place}_ino`);
    return ino === undefined ? undefined : summarizeDaxFaults(ctx.trace.filter((e) => e.ino === ino));
  };
  const pmd = faults('pmd');
  const pte = faults('pte');
  return [
    setup(flag(r, 'huge_aligned', 'every 2 MiB of the PMD file starts on a 2 MiB-aligned block')),
    setup(flag(r, 'pfn_contig', 'every 2 MiB of the PMD file is one contiguous run of blocks')),
    cmp('the PMD file was mapped by PMDs (dax_pmd_fault_done NOPAGE)', (a) => a > 0, '> 0', pmd?.pmdNopage),
    cmp('the PTE file was mapped by PTEs (dax_pte_fault_done)', (a) => a > 0, '> 0', pte?.pteDone),
    eq('the PTE file got no PMD (dax_pmd_fault_done NOPAGE)', 0, pte?.pmdNopage),
  ];
}

function judgeGupLongterm(r: HelperReport, m: RefcountModel, ctx: JudgeContext): Check[] {
  const size = num(r, 'mapping_bytes');
  const pages = size === undefined ? undefined : size / PAGE_SIZE;
  const acquired = num(r, 'foll_pin_acquired_delta');
  const released = num(r, 'foll_pin_released_delta');
  const checks: Check[] = [
    ...faultChecks(r, ctx),
    sameAs(r, 'longterm_anon_bytes', num(r, 'anon_bytes'), 'anon_bytes', 'control: FOLL_LONGTERM pins all of an anonymous buffer'),
  ];
  for (const place of PLACES) {
    const phases = (step: string) => PAGES.map((page) => `${place}_${page}_${step}`);
    for (const phase of phases('before')) checks.push(...mappedPage(r, m, phase, ''));
    checks.push(sameAs(r, `${place}_gup_bytes`, size, 'mapping_bytes', `GUP_BASIC_TEST took every page of the ${place.toUpperCase()} mapping`));
    for (const phase of phases('after_gup')) checks.push(...mappedPage(r, m, phase, ": GUP_BASIC_TEST's reference taken and given back"));
    checks.push(sameAs(r, `${place}_pin_bytes`, size, 'mapping_bytes', `PIN_BASIC_TEST pinned every page of the ${place.toUpperCase()} mapping`));
    for (const phase of phases('after_pin')) checks.push(...mappedPage(r, m, phase, ": PIN_BASIC_TEST's pin taken and given back"));
    if (place === 'pmd') {
      checks.push(
        eq('the PIN_LONGTERM_BENCHMARK ioctl ran (longterm_errno)', 0, num(r, 'longterm_errno')),
        eq('FOLL_LONGTERM refused on fsdax: nothing pinned (longterm_bytes)', 0, num(r, 'longterm_bytes')),
      );
      for (const phase of phases('after_longterm')) checks.push(...mappedPage(r, m, phase, ': the refused FOLL_LONGTERM pin left nothing'));
    }
    for (const phase of phases('unmapped')) checks.push(idleCheck(r, m, phase));
  }
  checks.push(
    {
      name: 'every FOLL_PIN pin was released (foll_pin_acquired_delta = foll_pin_released_delta)',
      ok: acquired !== undefined && acquired === released,
      expected: released === undefined ? 'equal deltas' : `acquired ${released}`,
      actual: acquired === undefined || released === undefined ? 'not observed' : `acquired ${acquired}, released ${released}`,
    },
    // Without this, 0 = 0 would pass a kernel whose counters miss DAX pins altogether.
    cmp(
      "the FOLL_PIN counters saw PIN_BASIC_TEST's pins of both mappings (foll_pin_acquired_delta)",
      (a) => pages !== undefined && a >= 2 * pages,
      pages === undefined ? '>= 2 x pages (mapping_bytes not reported)' : `>= ${2 * pages}`,
      acquired,
    ),
  );
  return checks;
}

/**
 * gup-longterm-pmd: GUP's slow path on DAX pages, and FOLL_LONGTERM on fsdax.
 *
 * gup_test's GUP_BASIC_TEST (get_user_pages + put_page) and PIN_BASIC_TEST (pin_user_pages +
 * unpin_user_pages) run over a PMD-mapped and a PTE-mapped DAX file; after each, the first page
 * and a tail page of the last PMD must be back at the mapped refcount and mapcount of the model,
 * and every byte must have been taken. On 6.1 a PMD is reached through follow_devmap_pmd(), whose
 * try_grab_page() takes the one reference or pin per page that put_page()/unpin_user_pages()
 * later drop; a PTE through follow_page_pte(). A reference taken twice, or on the wrong page,
 * or never (the put then drops the mapping's own reference: below the mapped value, on 6.1 below
 * idle) shows in these pages. 6.15 moved fsdax to folio refcounts, so the same numbers are
 * checked there through the model.
 *
 * PIN_LONGTERM_BENCHMARK (pin_user_pages with FOLL_LONGTERM) on the PMD mapping must pin nothing:
 * the filesystem could never reclaim or move a block a long-term pin (io_uring fixed buffers,
 * RDMA, VFIO) holds. check_vma_flags() refuses FOLL_LONGTERM on a vma_is_fsdax() VMA with
 * -EOPNOTSUPP before any page is taken; older kernels (get_user_pages_longterm(), 4.15, then
 * check_dax_vmas() in __gup_longterm_locked) took the pages first and put them back, so the
 * FOLL_PIN counters in /proc/vmstat must balance as well. 6.1's io_uring refuses file-backed
 * buffers by itself, which is why dax-uring-pin cannot prove this and gup_test is used here; an
 * anonymous buffer that FOLL_LONGTERM does pin is the control.
 */
export const TESTS: TestDef[] = [
  {
    name: 'gup-longterm-pmd',
    description:
      "get_user_pages and pin_user_pages (CONFIG_GUP_TEST) over a PMD-mapped and a PTE-mapped DAX file must take every page and leave each at the model's mapped refcount and mapcount afterwards, FOLL_LONGTERM on the PMD mapping must pin nothing (check_vma_flags refuses fsdax) while it pins all of an anonymous control buffer, the FOLL_PIN counters must balance, and the observed pages must be idle after munmap; a kernel without gup_test is a SKIP.",
    argv: (c) => [`${c.bin}/dax-gup-pin`, '--file', `${c.mountpoint}/gup-longterm-pmd`, '--timeout', '30'],
    timeoutMs: 45_000,
    requires: ['CONFIG_GUP_TEST'],
    trace: true,
    judge: judgeGupLongterm,
  },
];
