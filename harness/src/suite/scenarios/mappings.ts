// Scenarios about how DAX pages are mapped: fork and COW, mremap, mlock, PMD split, reflink, poison, MAP_SYNC.
// Each judge states its expectations once, through the model (expectedRefcount/expectedMapcount):
// on 6.1 (legacy) every phase reads refcount 1 and mapcount 0 whatever maps the page; on 6.15+
// (folio) each mapping is one reference and one mapcount on top of an idle 0.
import { cmp, eq, idleCheck, obs, setup } from '../checks.js';
import { expectedMapcount, expectedRefcount, type RefcountModel } from '../../kernel/model.js';
import { summarizeDaxFaults, type DaxTraceEvent } from '../trace.js';
import type { Check, HelperReport, JudgeContext, TestDef } from '../suite.js';

// Linux errno values the helpers report (x86-64 and every other architecture the harness boots).
const EOPNOTSUPP = 95;
// si_code of a memory-failure SIGBUS (include/uapi/asm-generic/siginfo.h).
const BUS_MCEERR_AR = 4;
const BUS_MCEERR_AO = 5;
// si_addr_lsb for a page mapped by a PTE.
const PAGE_SHIFT = 12;

/** Checks for an fsdax page mapped by `mappings` user mappings (PTE or PMD) and pinned by nobody. */
function pageChecks(r: HelperReport, m: RefcountModel, phase: string, mappings: number): Check[] {
  const o = obs(r, phase);
  const what = `${mappings} mapping${mappings === 1 ? '' : 's'}, ${m.name} model`;
  return [
    eq(`${phase}: page is ZONE_DEVICE (fsdax)`, 1, o?.zone_device),
    eq(`${phase}: refcount (${what})`, expectedRefcount(m, mappings), o?.refcount),
    eq(`${phase}: mapcount (${what})`, expectedMapcount(m, mappings), o?.mapcount),
  ];
}

/** A check on a boolean the helper put in `extra`. */
function flag(r: HelperReport, key: string, expected: boolean, name: string): Check {
  const v = r.extra[key];
  return { name: `${name} (${key})`, ok: v === expected, expected: String(expected), actual: v === undefined ? 'not observed' : String(v) };
}

/** A number the helper put in `extra`, if it did. */
function num(r: HelperReport, key: string): number | undefined {
  const v = r.extra[key];
  return typeof v === 'number' ? v : undefined;
}

/** The trace events of the helper's test file (by the inode it reported), or all if it reported none. */
function fileEvents(r: HelperReport, trace: DaxTraceEvent[]): DaxTraceEvent[] {
  const ino = num(r, 'ino');
  return ino === undefined ? trace : trace.filter((e) => e.ino === ino);
}

function forkJudge(r: HelperReport, m: RefcountModel): Check[] {
  return [
    ...pageChecks(r, m, 'parent_shared', 1),
    ...pageChecks(r, m, 'parent_private', 1),
    flag(r, 'child_shared_same_pfn', true, 'the child maps the same shared DAX page'),
    flag(r, 'child_private_same_pfn', true, 'the child maps the same private DAX page before its write'),
    flag(r, 'child_read_ok', true, "the child reads the file's data through both mappings"),
    // The parent's mapping and the child's: two mappings of each page while the child lives.
    ...pageChecks(r, m, 'child_shared', 2),
    ...pageChecks(r, m, 'child_private', 2),
    flag(r, 'child_cow_new_pfn', true, "the child's write to the private mapping moved it to a new page (COW)"),
    eq("child_cow: the child's COW copy is anonymous memory, not ZONE_DEVICE", 0, obs(r, 'child_cow')?.zone_device),
    flag(r, 'child_cow_write_ok', true, 'the child reads back its write, and the shared data'),
    ...pageChecks(r, m, 'child_cow_dax', 1),
    flag(r, 'child_exit_ok', true, 'the child exited 0'),
    ...pageChecks(r, m, 'exited_shared', 1),
    ...pageChecks(r, m, 'exited_private', 1),
    flag(r, 'parent_private_intact', true, "the child's COW did not reach the parent's private mapping"),
    flag(r, 'file_intact', true, "the child's COW did not reach the file"),
    idleCheck(r, m, 'unmapped_shared'),
    idleCheck(r, m, 'unmapped_private'),
  ];
}

function mremapJudge(r: HelperReport, m: RefcountModel, ctx: JudgeContext): Check[] {
  const f = summarizeDaxFaults(fileEvents(r, ctx.trace));
  const zero = (key: string, name: string): Check => cmp(`${name} (${key})`, (a) => a === 0, '0', num(r, key));
  // The move of a PMD mapping is what this test is for: unaligned blocks leave it untested.
  return [
    setup(flag(r, 'huge_aligned', true, 'the file sits on 2 MiB-aligned blocks')),
    setup(flag(r, 'pfn_contig', true, 'the file is one contiguous run of blocks')),
    ...pageChecks(r, m, 'mapped', 1),
    cmp('the file was mapped by PMDs before the move (dax_pmd_fault_done NOPAGE)', (a) => a > 0, '> 0', f.pmdNopage),
    flag(r, 'moved_present', true, 'mremap carried the PMD to the new address (no refault)'),
    flag(r, 'moved_same_pfn', true, 'the moved mapping maps the same pages'),
    flag(r, 'data_intact_after_move', true, 'the data reads back after the move'),
    ...pageChecks(r, m, 'moved', 1),
    ...pageChecks(r, m, 'mlocked', 1),
    zero('nr_mlock_delta_locked', 'mlock does not count DAX pages as mlocked'),
    ...pageChecks(r, m, 'munlocked', 1),
    zero('nr_mlock_delta_unlocked', 'nothing left mlocked after munlock'),
    flag(r, 'data_intact_after_mlock', true, 'the data reads back after mlock/munlock'),
    idleCheck(r, m, 'unmapped'),
    idleCheck(r, m, 'unmapped_last'),
    zero('nr_mlock_delta_unmapped', 'munmap of a locked mapping leaves nothing mlocked'),
  ];
}

function pmdSplitJudge(r: HelperReport, m: RefcountModel, ctx: JudgeContext): Check[] {
  const events = fileEvents(r, ctx.trace);
  const lastPmd = events.reduce((at, e, i) => (e.event === 'dax_pmd_fault_done' && e.result.includes('NOPAGE') ? i : at), -1);
  const pteAfter = lastPmd < 0 ? undefined : events.slice(lastPmd + 1).filter((e) => e.event === 'dax_pte_fault_done').length;
  const hole = num(r, 'hole_page');
  const holeLoads = events.filter((e) => e.event === 'dax_load_hole' && e.pgoff === hole).length;
  const scanKey = `scan_above_${m.idle}`;
  return [
    setup(flag(r, 'huge_aligned', true, 'the first 2 MiB sits on a 2 MiB-aligned extent')),
    cmp('the first 2 MiB was mapped by a PMD (dax_pmd_fault_done NOPAGE)', (a) => a > 0, '> 0', summarizeDaxFaults(events).pmdNopage),
    ...pageChecks(r, m, 'mapped', 1),
    ...pageChecks(r, m, 'mapped_hole', 1),
    flag(r, 'hole_present_after_punch', false, 'the punched page is no longer mapped'),
    idleCheck(r, m, 'punched'),
    cmp('the refault after the punch used PTEs (dax_pte_fault_done after the PMD fault)', (a) => a > 0, '> 0', pteAfter),
    cmp(`the punched page refaulted as a hole (dax_load_hole at pgoff ${hole ?? '?'})`, (a) => a > 0, '> 0', hole === undefined ? undefined : holeLoads),
    flag(r, 'hole_reads_zero', true, 'the punched page reads zeroes'),
    eq('refault_hole: the punched page maps the zero page, not pmem', 0, obs(r, 'refault_hole')?.zone_device),
    flag(r, 'neighbours_intact', true, "the punched page's neighbours keep their data"),
    flag(r, 'data_intact', true, 'every other page of the 2 MiB keeps its data'),
    flag(r, 'neighbours_same_pfn', true, "the neighbours keep their blocks"),
    ...pageChecks(r, m, 'refault_prev', 1),
    ...pageChecks(r, m, 'refault_next', 1),
    idleCheck(r, m, 'unmapped'),
    idleCheck(r, m, 'unmapped_prev'),
    idleCheck(r, m, 'unmapped_punched'),
    cmp(`no page of the 2 MiB above idle after munmap (probe scan, idle ${m.idle})`, (a) => a === 0, '0', num(r, scanKey)),
    cmp(`no page of the 2 MiB below idle after munmap (probe scan, idle ${m.idle})`, (a) => a === 0, '0', num(r, `scan_below_${m.idle}`)),
  ];
}

// The probe's page->mapping reading, as dax-reflink reports it: NULL, the PAGE_MAPPING_DAX_COW
// share tag (6.1), or a file's address_space.
const MAPPING_NULL = 0;
const MAPPING_DAX_COW = 1;

/**
 * The clone's page after the source's CoW: still shared by the clone, and marked so. 6.1
 * (legacy) tags a shared DAX page with PAGE_MAPPING_DAX_COW in page->mapping and keeps the
 * share count in page->index: the tag must stay while the clone maps it (memory_failure() and
 * dax_lock_page() find the page's users through page->mapping). 6.15+ (folio) marks a shared
 * folio the other way round: dax_folio_make_shared() clears folio->mapping and counts users in
 * folio->share, and the folio stays shared (mapping NULL) until its last user lets go; a file
 * pointer there would mean the share was lost.
 */
function sharedAfterCowCheck(r: HelperReport, m: RefcountModel): Check {
  const key = 'mapping_kind_shared_after_cow';
  if (m.name === 'folio') {
    return cmp(`after the source's CoW, the clone's folio is still marked shared: folio->mapping NULL (${key}: 0 NULL, 1 DAX share tag, 2 file; folio model)`, (a) => a === MAPPING_NULL, String(MAPPING_NULL), num(r, key));
  }
  return cmp(`after the source's CoW, the clone's page keeps its DAX share tag (${key}: 0 NULL, 1 DAX share tag, 2 file; legacy model)`, (a) => a === MAPPING_DAX_COW, `${MAPPING_DAX_COW} (PAGE_MAPPING_DAX_COW)`, num(r, key));
}

function reflinkJudge(r: HelperReport, m: RefcountModel): Check[] {
  const released = (key: string, name: string): Check =>
    cmp(`${name} (${key}: 0 NULL, 1 DAX share tag, 2 file)`, (a) => a === MAPPING_NULL, String(MAPPING_NULL), num(r, key));
  return [
    flag(r, 'read_ok', true, 'both files read the cloned data'),
    flag(r, 'shared_pfn', true, 'the clone and the source map one PFN (shared block)'),
    // One page, mapped once through each file.
    ...pageChecks(r, m, 'a_mapped', 2),
    ...pageChecks(r, m, 'b_mapped', 2),
    flag(r, 'cow_new_pfn', true, 'a write to the source moved it to a new block (CoW)'),
    flag(r, 'cow_data_ok', true, 'the source reads its write, the clone the old data'),
    ...pageChecks(r, m, 'a_cow', 1),
    ...pageChecks(r, m, 'b_after_cow', 1),
    sharedAfterCowCheck(r, m),
    idleCheck(r, m, 'a_truncated_cow'),
    ...pageChecks(r, m, 'a_truncated_shared', 1),
    idleCheck(r, m, 'b_truncated'),
    idleCheck(r, m, 'unmapped_cow'),
    idleCheck(r, m, 'unmapped_shared'),
    released('mapping_kind_cow_end', "the CoW page's page->mapping is released once the source is truncated"),
    released('mapping_kind_shared_end', "the shared page's page->mapping is released once both files are truncated"),
  ];
}

// memory_failure()'s verdict on the poisoned page: "Memory failure: 0x<pfn>: recovery action for dax page: Recovered".
function recoveryLine(pfn: number | undefined, dmesg: string[]): Check {
  const want = pfn === undefined ? null : `Memory failure: 0x${pfn.toString(16)}: recovery action for dax page: Recovered`;
  const seenLines = dmesg.filter((l) => l.startsWith('Memory failure: '));
  return {
    name: 'memory_failure() recovered the dax page (dmesg: recovery action for dax page: Recovered)',
    ok: want !== null && dmesg.some((l) => l.trim() === want),
    expected: want ?? 'the line for the poisoned pfn (pfn not observed)',
    actual: seenLines.length > 0 ? seenLines.join(' | ') : 'no memory-failure line',
  };
}

function poisonJudge(r: HelperReport, m: RefcountModel, ctx: JudgeContext): Check[] {
  const code = num(r, 'si_code');
  return [
    ...pageChecks(r, m, 'mapped', 1),
    recoveryLine(obs(r, 'mapped')?.pfn, ctx.dmesg),
    eq('madvise(MADV_HWPOISON) succeeded (madvise_errno)', 0, num(r, 'madvise_errno')),
    eq('one SIGBUS for the poisoned page (sigbus_count)', 1, num(r, 'sigbus_count')),
    cmp(
      'SIGBUS si_code is a memory-failure code (si_code)',
      (a) => a === BUS_MCEERR_AR || a === BUS_MCEERR_AO,
      `${BUS_MCEERR_AR} (BUS_MCEERR_AR) or ${BUS_MCEERR_AO} (BUS_MCEERR_AO)`,
      code,
    ),
    eq('si_addr_lsb is the PTE mapping size (si_addr_lsb)', PAGE_SHIFT, num(r, 'si_addr_lsb')),
    flag(r, 'si_addr_match', true, 'si_addr is the poisoned page'),
    flag(r, 'present_after_poison', false, 'the poisoned page was unmapped from the process'),
    idleCheck(r, m, 'poisoned'),
    idleCheck(r, m, 'punched'),
    flag(r, 'refault_ok', true, 'after the punch, the offset write-faults again without SIGBUS'),
    flag(r, 'neighbours_intact', true, "the poisoned page's neighbours keep their data"),
    ...pageChecks(r, m, 'refault', 1),
    idleCheck(r, m, 'unmapped'),
    idleCheck(r, m, 'unmapped_poisoned'),
  ];
}

function mapSyncJudge(r: HelperReport, m: RefcountModel, ctx: JudgeContext): Check[] {
  const events = fileEvents(r, ctx.trace);
  const needDsync = events.filter((e) => e.event.endsWith('_fault_done') && e.result.includes('NEEDDSYNC')).length;
  const mkwrite = events.filter((e) => e.event === 'dax_insert_pfn_mkwrite').length;
  return [
    eq('MAP_SHARED_VALIDATE|MAP_SYNC accepted on the DAX file (map_sync_errno)', 0, num(r, 'map_sync_errno')),
    flag(r, 'nondax_is_dax', false, 'the control file (tmpfs) is not DAX'),
    eq('MAP_SYNC refused on a non-DAX file with EOPNOTSUPP (nondax_map_sync_errno)', EOPNOTSUPP, num(r, 'nondax_map_sync_errno')),
    ...pageChecks(r, m, 'mapped', 1),
    {
      name: 'the MAP_SYNC write fault took the synchronous path (NEEDDSYNC result or dax_insert_pfn_mkwrite)',
      ok: needDsync + mkwrite > 0,
      expected: '> 0 NEEDDSYNC results or dax_insert_pfn_mkwrite events',
      actual: `${needDsync} NEEDDSYNC, ${mkwrite} dax_insert_pfn_mkwrite`,
    },
    idleCheck(r, m, 'unmapped'),
  ];
}

/** The tests of this group, in run order (poison last: it leaves PG_hwpoison on a freed block). */
export const TESTS: TestDef[] = [
  {
    name: 'fork-shared-private',
    description:
      'fork() with a MAP_SHARED and a MAP_PRIVATE DAX mapping: while the child maps both, each page counts two mappings (folio model); the child\'s write to the private page must COW it into anonymous memory and leave the DAX page, the parent and the file alone; after the child exits one mapping, after munmap idle. Guards the fork/COW reference handling of "fs/dax: Properly refcount fs dax pages" (6.15).',
    argv: (c) => [`${c.bin}/dax-fork`, '--file', `${c.mountpoint}/fork-shared-private`, '--timeout', '20'],
    timeoutMs: 30_000,
    judge: forkJudge,
  },
  {
    name: 'mremap-mlock',
    description:
      'mremap(MREMAP_MAYMOVE|MREMAP_FIXED) of a PMD-mapped DAX file to a 2 MiB-aligned address, then mlock/munlock, then mlock and munmap while locked: one mapping throughout, idle after, data intact, and no DAX page counted in nr_mlock. Guards the mlock handling of DAX PMDs changed by "fs/dax: Properly refcount fs dax pages" (6.15).',
    argv: (c) => [`${c.bin}/dax-mremap-mlock`, '--file', `${c.mountpoint}/mremap-mlock`, '--timeout', '50'],
    timeoutMs: 60_000,
    trace: true,
    judge: mremapJudge,
  },
  {
    name: 'pmd-split-punch',
    description:
      'Punches a 4 KiB hole (PUNCH_HOLE|KEEP_SIZE) into a PMD-mapped DAX extent: the punched page must be unmapped and idle, the refault must use PTEs, the hole must read zeroes (zero page) while its neighbours keep their data and blocks, and all 512 pages must be idle after munmap. Guards the PMD zap and DAX-entry teardown on a partial punch.',
    argv: (c) => [`${c.bin}/dax-pmd-split`, '--file', `${c.mountpoint}/pmd-split-punch`, '--timeout', '50'],
    timeoutMs: 60_000,
    trace: true,
    judge: pmdSplitJudge,
  },
  {
    name: 'reflink-cow',
    description:
      'FICLONE of a DAX file (xfs): both files map one shared PFN (two mappings, folio model), a write CoWs the source to a new block while the clone\'s page stays associated, truncating both leaves every page idle and page->mapping released, with no WARN. Guards the shared-DAX page accounting that 6.1 did with PAGE_MAPPING_DAX_COW (WARN_ON_ONCE in dax_associate_entry/dax_disassociate_entry) and 6.15 reworked.',
    argv: (c) => [
      `${c.bin}/dax-reflink`,
      '--file',
      `${c.mountpoint}/reflink-cow`,
      '--clone',
      `${c.mountpoint}/reflink-cow.clone`,
      '--timeout',
      '20',
    ],
    timeoutMs: 30_000,
    filesystems: ['xfs'],
    filesystemsWhy: 'ext4 has no reflink (FICLONE)',
    // On 6.1 a CoW page keeps its PAGE_MAPPING_DAX_COW tag after both files are gone, and
    // later xfs tests would be handed that block: they run on a fresh guest instead.
    restartAfter: true,
    judge: reflinkJudge,
  },
  {
    name: 'map-sync',
    description:
      'mmap(MAP_SHARED_VALIDATE|MAP_SYNC) is accepted on the DAX mount and refused with EOPNOTSUPP on tmpfs; a write fault on fresh blocks through MAP_SYNC must take the synchronous path (NEEDDSYNC, dax_insert_pfn_mkwrite in the fs_dax trace) and the page follows the model mapped and after munmap.',
    argv: (c) => [`${c.bin}/dax-map-sync`, '--file', `${c.mountpoint}/map-sync`, '--nondax-file', `${c.tmp}/map-sync-nondax`, '--timeout', '20'],
    timeoutMs: 30_000,
    trace: true,
    judge: mapSyncJudge,
  },
  {
    name: 'poison-hwpoison',
    description:
      'madvise(MADV_HWPOISON) on a PTE-mapped DAX page: one SIGBUS (BUS_MCEERR_AR/AO, si_addr_lsb 12, si_addr the page), the page unmapped and idle, dmesg reporting a recovered dax page; then PUNCH_HOLE over it makes the offset usable again (write fault, data, counts per model, idle after munmap). The PG_hwpoison flag stays on the freed block.',
    argv: (c) => [`${c.bin}/dax-poison`, '--file', `${c.mountpoint}/poison-hwpoison`, '--timeout', '20'],
    timeoutMs: 30_000,
    requires: ['CONFIG_MEMORY_FAILURE'],
    // memory_failure() logs these on purpose; they join into one incident per PFN, which is
    // allowed only if every line of it is one of these: any other outcome than "Recovered"
    // (Failed, Ignored, "forcibly killing") still fails the test.
    allowDmesg: [
      /^Memory failure: 0x[0-9a-f]+: Sending SIGBUS to \S+:\d+ due to hardware memory corruption$/,
      /^Memory failure: 0x[0-9a-f]+: recovery action for dax page: Recovered$/,
    ],
    // PG_hwpoison stays on the freed block (only clearing pmem badblocks clears it) and the
    // filesystem may hand it to the next file: later tests get a fresh guest.
    restartAfter: true,
    judge: poisonJudge,
  },
];
