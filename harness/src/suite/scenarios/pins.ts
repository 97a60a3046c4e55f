// Scenarios where a transient page pin (O_DIRECT from a slow device, vmsplice) races truncate, punch hole, unlink and block reuse; and holes.
import { cmp, eq, idleCheck, mappedChecks, obs } from '../checks.js';
import { expectedRefcount, type RefcountModel } from '../../kernel/model.js';
import type { Check, HelperReport, JudgeContext, TestContext, TestDef } from '../suite.js';

const EBUSY = 16;

function num(r: HelperReport, key: string): number | undefined {
  const v = r.extra[key];
  return typeof v === 'number' ? v : undefined;
}

/** A check on a boolean the helper reported in extra. */
function flag(name: string, expected: boolean, actual: unknown): Check {
  return { name, ok: actual === expected, expected: String(expected), actual: typeof actual === 'boolean' ? String(actual) : 'not observed' };
}

/** A check that the helper observed a phase at all. */
function seen(name: string, r: HelperReport, phase: string): Check {
  return { name, ok: obs(r, phase) !== undefined, expected: `phase ${phase} observed`, actual: obs(r, phase) ? 'observed' : 'not observed' };
}

/** Checks that a pin really raised the page above what its mappings explain. */
function pinnedCheck(r: HelperReport, m: RefcountModel, phase: string, mappings: number, what: string): Check {
  const base = expectedRefcount(m, mappings);
  return cmp(`${phase}: refcount raised by ${what} (${m.name} model)`, (a) => a > base, `> ${base}`, obs(r, phase)?.refcount);
}

// fs_dax events of the test file only: the trace buffer holds every inode's faults.
function countEvents(ctx: JudgeContext, event: string, ino: number | undefined): number | undefined {
  if (ino === undefined) return undefined;
  return ctx.trace.filter((e) => e.event === event && e.ino === ino).length;
}

// ---------------------------------------------------------------------------------------------
// hole-zero-page

function judgeHole(r: HelperReport, m: RefcountModel, ctx: JudgeContext): Check[] {
  const x = r.extra;
  const ino = num(r, 'ino');
  // Without THP the guest cannot show the huge zero page through anonymous memory; the
  // order-9 check still tells it from media.
  const sameAsAnon = x.huge_zero_pfn_known === false ? [] : [flag('hole_2m: it is the huge zero page (same PFN as an anonymous huge zero page)', true, x.hole_2m_is_huge_zero_page)];
  return [
    eq('hole_4k: the read fault maps no fsdax page (zone_device)', 0, obs(r, 'hole_4k')?.zone_device),
    flag('hole_4k: it is the shared zero page', true, x.hole_4k_is_zero_page),
    eq('hole_4k: reads as zeros (nonzero bytes)', 0, num(r, 'hole_4k_nonzero')),
    eq('hole_2m: the read fault maps no fsdax page (zone_device)', 0, obs(r, 'hole_2m')?.zone_device),
    eq('hole_2m: it is one order-9 page (the huge zero page)', 9, obs(r, 'hole_2m')?.order),
    ...sameAsAnon,
    flag('hole_2m: one PMD covers the 2 MiB hole (last PFN = first + 511)', true, x.hole_2m_one_huge_page),
    eq('hole_2m: reads as zeros (nonzero bytes)', 0, num(r, 'hole_2m_nonzero')),
    eq('reading holes allocated no blocks (st_blocks)', 0, num(r, 'blocks_after_reads')),
    cmp('fs_dax:dax_load_hole recorded for the test file', (a) => a > 0, '> 0', countEvents(ctx, 'dax_load_hole', ino)),
    cmp('fs_dax:dax_pmd_load_hole recorded for the test file', (a) => a > 0, '> 0', countEvents(ctx, 'dax_pmd_load_hole', ino)),
    ...mappedChecks(r, m, 'written_4k'),
    ...mappedChecks(r, m, 'written_2m'),
    eq('written_4k: the new block reads as zeros besides the byte written', 0, num(r, 'written_4k_nonzero')),
    eq('written_2m: the new blocks read as zeros besides the byte written', 0, num(r, 'written_2m_nonzero')),
    flag('the written pages reuse blocks that held the old pattern (else stale data is not tested)', true, x.reused_stale_blocks),
    flag('the zero pages are still zero after the writes', true, x.zero_pages_still_zero),
    idleCheck(r, m, 'unmapped_4k'),
    idleCheck(r, m, 'unmapped_2m'),
  ];
}

// ---------------------------------------------------------------------------------------------
// pin-* : a pin held across truncate, punch hole or unlink

type Op = 'truncate' | 'punch' | 'unlink';
type Pin = 'odirect' | 'vmsplice';

interface PinScenario {
  op: Op;
  pin: Pin;
  unmapFirst: boolean;
  reuse: boolean;
}

const OP_WORDS: Record<Op, string> = { truncate: 'truncate', punch: 'punch hole', unlink: 'close+unlink' };

function pinArgv(name: string, s: PinScenario, c: TestContext): string[] {
  const helper = [`${c.bin}/dax-pin-truncate`, '--file', `${c.mountpoint}/${name}`, '--pin', s.pin, '--op', s.op];
  if (s.pin === 'odirect') helper.push('--dev', c.slowDev);
  if (s.unmapFirst) helper.push('--unmap-first');
  // Neither ext4 nor xfs hands a freed block to the next file at once: the helper fills the
  // filesystem first, so the freed block is the only one left.
  if (s.reuse) helper.push('--reuse', '--fill');
  helper.push('--timeout', '30');
  return helper;
}

function judgePin(s: PinScenario, r: HelperReport, m: RefcountModel): Check[] {
  const x = r.extra;
  const op = OP_WORDS[s.op];
  const pinWhat = s.pin === 'odirect' ? 'the in-flight O_DIRECT read' : 'the pipe holding the page';
  const released = s.pin === 'odirect' ? 'the O_DIRECT read completed' : 'the pipe was drained';
  const checks: Check[] = [
    ...mappedChecks(r, m, 'before'),
    pinnedCheck(r, m, 'pinned', 1, pinWhat),
  ];
  if (s.unmapFirst) checks.push(pinnedCheck(r, m, 'pinned_unmapped', 0, `${pinWhat} after munmap`));
  checks.push(
    seen(`${op} still waiting 300 ms into the pin (it must wait for ${pinWhat})`, r, 'during_op'),
    eq(`op_returned: no pin left on the page when ${op} returned (${m.name} model)`, expectedRefcount(m, 0), obs(r, 'op_returned')?.refcount),
    flag(`${op} returned only after ${released}`, true, x[`${s.op}_finished_after_${s.pin === 'odirect' ? 'io' : 'drain'}`]),
    // A wait that sleeps on in break layouts with the page idle missed its wake-up; the helper
    // then interrupts it with a signal so the test ends (phase "stuck" shows the idle page).
    flag(`${op} woke up when ${released} (no lost wake-up: no signal needed)`, false, x[`${s.op}_needed_signal`]),
    eq(`${op} succeeded (return value)`, 0, num(r, `${s.op}_ret`)),
  );
  if (s.pin === 'odirect') {
    checks.push(
      eq('the O_DIRECT read succeeded (bytes read)', 4096, num(r, 'io_ret')),
      cmp('the O_DIRECT read was slow (pin window)', (a) => a >= 1000, '>= 1000 ms', num(r, 'io_ms')),
    );
  } else {
    checks.push(eq('the pipe gave the page back (bytes drained)', 4096, num(r, 'drained_bytes')));
  }
  checks.push(idleCheck(r, m, 'after'), idleCheck(r, m, 'end'));
  if (s.op === 'truncate') {
    checks.push(eq('the file is empty after truncate (st_size)', 0, num(r, 'size_after')), eq('no blocks left after truncate (st_blocks)', 0, num(r, 'blocks_after')));
  } else if (s.op === 'punch') {
    const before = num(r, 'blocks_before');
    checks.push(cmp('the punched page lost its block (st_blocks fell)', (a) => before !== undefined && a < before, `< ${before ?? '?'}`, num(r, 'blocks_after')));
  }
  if (s.reuse) {
    checks.push(
      flag('the new file got the freed pinned block (else reuse is not tested)', true, x.reused_pinned_block),
      eq('the reused block reads as zeros besides the bytes written', 0, num(r, 'reuse_nonzero_bytes')),
      eq("no byte of the old file's data (0xa5) in the new file", 0, num(r, 'reuse_old_pattern_bytes')),
      ...mappedChecks(r, m, 'reuse_mapped'),
      idleCheck(r, m, 'reuse_unmapped'),
    );
  }
  return checks;
}

function pinTest(name: string, s: PinScenario, description: string): TestDef {
  return {
    name,
    description,
    argv: (c) => pinArgv(name, s, c),
    // The helper's own 30 s bound, and room for it to report.
    timeoutMs: 60_000,
    needsSlowDev: s.pin === 'odirect',
    judge: (r, m) => judgePin(s, r, m),
  };
}

/**
 * The probe's scan of a namespace's struct pages: every page idle. A page above idle holds a
 * leaked reference; one below idle lost a reference it never had (a put too many: the next
 * put frees a page still in use).
 */
function scanChecks(r: HelperReport, m: RefcountModel, what: string, when: string): Check[] {
  return [
    cmp(`the scan of ${what} saw struct pages`, (a) => a > 0, '> 0', num(r, 'scan_valid')),
    eq(`no page of ${what} above idle ${when} (${m.name} model, idle ${m.idle})`, 0, num(r, `scan_above_${m.idle}`)),
    eq(`no page of ${what} below idle ${when} (${m.name} model, idle ${m.idle})`, 0, num(r, `scan_below_${m.idle}`)),
  ];
}

// ---------------------------------------------------------------------------------------------
// umount-pinned

function judgeUmount(r: HelperReport, m: RefcountModel): Check[] {
  const ret = num(r, 'umount_ret');
  const ebusy = ret === -EBUSY;
  const atReturn = obs(r, 'umount_returned')?.refcount;
  const checks: Check[] = [
    ...mappedChecks(r, m, 'before'),
    pinnedCheck(r, m, 'pinned', 1, 'the in-flight O_DIRECT read'),
    pinnedCheck(r, m, 'pinned_closed', 0, 'the O_DIRECT read after munmap and close'),
    cmp('umount succeeded or refused with EBUSY', (a) => a === 0 || a === -EBUSY, `0 or -${EBUSY}`, ret),
    // Either answer is sound; returning success while the page is still pinned is not.
    {
      name: `umount did not drop the pinned page: EBUSY, or the page idle when it returned (${m.name} model)`,
      ok: ebusy || atReturn === expectedRefcount(m, 0),
      expected: `-${EBUSY} or refcount ${expectedRefcount(m, 0)}`,
      actual: ret === undefined || atReturn === undefined ? 'not observed' : `umount ${ret}, refcount ${atReturn}`,
    },
  ];
  if (ebusy) checks.push(eq('umount went through once the pin was gone', 0, num(r, 'umount_retry_ret')));
  else checks.push(flag('umount returned only after the O_DIRECT read completed', true, r.extra.umount_finished_after_io));
  checks.push(
    idleCheck(r, m, 'unmounted'),
    ...scanChecks(r, m, 'the namespace', 'after unmount'),
    eq('the O_DIRECT read succeeded (bytes read)', 4096, num(r, 'io_ret')),
    flag('the filesystem is mounted again with DAX files', true, r.extra.remounted_dax),
  );
  return checks;
}

// ---------------------------------------------------------------------------------------------
// namespace-disable-pinned

/**
 * Judges namespace-disable-pinned. The file is unmapped and closed and the filesystem unmounted
 * while an O_DIRECT read pins one of its pages; then `ndctl disable-namespace` tears down the
 * namespace's dev_pagemap (memunmap_pages(); a -M mem namespace's struct pages are freed with
 * it). The disable must be refused, or return only once the read has completed: returning
 * success while the page is pinned lets the read's completion put_page() a struct page that no
 * longer exists (an oops, or a silent write into memory that was handed out again). Refused,
 * it must go through once the pin is gone; then the namespace must enable and mount again with
 * DAX files, and no struct page of it may be above idle. It guards the rule that no pin
 * outlives its pgmap, which takes two halves: unmount waits for the pin (6.15's
 * dax_break_layout_final(); the disable then finds the page idle), or the teardown does. On
 * 6.1 neither does: unmount returns at once (see umount-pinned), and memunmap_pages() waits
 * only for pgmap->ref, which GUP holds during the page-table walk, not for the pin's lifetime.
 */
function judgeNamespaceDisable(r: HelperReport, m: RefcountModel): Check[] {
  const ret = num(r, 'disable_ret');
  const afterIo = r.extra.disable_finished_after_io;
  // Refused means ndctl said the namespace is busy; any other non-zero exit is ndctl failing.
  const refused = ret !== undefined && ret !== 0 && r.extra.disable_busy === true;
  const msg = typeof r.extra.disable_msg === 'string' && r.extra.disable_msg ? `: ${r.extra.disable_msg}` : '';
  let actual = 'not observed';
  if (refused) actual = `exit ${ret} (refused: busy${msg})`;
  else if (ret !== undefined && ret !== 0) actual = `exit ${ret}, not refused as busy${msg}`;
  else if (ret === 0 && typeof afterIo === 'boolean') actual = afterIo ? 'exit 0 after the read completed' : 'exit 0 while the read was in flight';
  else if (ret === 0) actual = 'exit 0, timing not observed';
  const checks: Check[] = [
    ...mappedChecks(r, m, 'before'),
    pinnedCheck(r, m, 'pinned', 1, 'the in-flight O_DIRECT read'),
    pinnedCheck(r, m, 'pinned_closed', 0, 'the O_DIRECT read after munmap and close'),
    // Either answer is sound; tearing the pgmap down under the pin is not.
    {
      name: 'namespace disable refused as busy, or returned only after the O_DIRECT read completed',
      ok: refused || (ret === 0 && afterIo === true),
      expected: 'refused with the namespace busy, or exit 0 after the read completed',
      actual,
    },
  ];
  if (refused) checks.push(eq('namespace disable went through once the pin was gone (exit status)', 0, num(r, 'disable_retry_ret')));
  checks.push(
    eq('the O_DIRECT read succeeded (bytes read)', 4096, num(r, 'io_ret')),
    eq('ndctl enable-namespace succeeded (exit status)', 0, num(r, 'enable_ret')),
    idleCheck(r, m, 'reenabled'),
    ...scanChecks(r, m, 'the re-enabled namespace', 'after the disable'),
    eq('the filesystem mounts again on the re-enabled namespace (-o dax=always)', 0, num(r, 'remount_ret')),
    flag('a new file on the remounted filesystem is DAX', true, r.extra.remounted_dax),
  );
  return checks;
}

/** The argv of a helper that pins a page with the slow device and unmounts the filesystem. */
function unmountingHelper(helper: string, test: string, c: TestContext, timeoutS: number): string[] {
  return [`${c.bin}/${helper}`, '--file', `${c.mountpoint}/${test}`, '--dev', c.slowDev, '--mountpoint', c.mountpoint, '--fstype', c.fs, '--timeout', String(timeoutS)];
}

/**
 * The tests of this group, in run order. pin-block-reuse fills and frees the whole filesystem;
 * followed by umount-pinned's remount, that left ext4 placing the next 2 MiB file off 2 MiB
 * alignment (pmd-split-punch then failed), so it runs after umount-pinned.
 * namespace-disable-pinned, between them, replaces the guest: pin-block-reuse starts on fresh
 * filesystems.
 */
export const TESTS: TestDef[] = [
  {
    name: 'hole-zero-page',
    description:
      'Read-faults the holes of a sparse file at 4 KiB (dax_load_hole) and 2 MiB (dax_pmd_load_hole): each must map the shared or huge zero page, never an fsdax page, read zeros and allocate nothing; a write then gives a zeroed fsdax page (the blocks held an old pattern) at the mapped refcount, idle after munmap. Guards the zero-page paths 6.15 reworked into zero folios.',
    argv: (c) => [`${c.bin}/dax-hole`, '--file', `${c.mountpoint}/hole-zero-page`, '--size', '4m', '--timeout', '20'],
    timeoutMs: 30_000,
    trace: true,
    judge: judgeHole,
  },
  pinTest(
    'pin-truncate-odirect',
    { op: 'truncate', pin: 'odirect', unmapFirst: false, reuse: false },
    'Truncates a mapped file while an O_DIRECT read from a 2 s device holds its page: ext4_break_layouts/xfs_break_dax_layouts must wait in dax_layout_busy_page_range until the read drops its reference and wake up then (put_page -> wake_up_var on 6.1, dax_page_is_idle from 6.15; a wait still asleep 1 s after the release with the page idle is a lost wake-up, ended by a signal), leaving the page idle.',
  ),
  pinTest(
    'pin-truncate-odirect-unmapped',
    { op: 'truncate', pin: 'odirect', unmapFirst: true, reuse: false },
    'The same with the mapping gone before the truncate: the pin still holds the page, so truncate must still wait. 6.1 skips files that are not mapped (mapping_mapped() in dax_layout_busy_page_range) and frees a pinned block; 6.15 scans them.',
  ),
  pinTest(
    'pin-truncate-vmsplice',
    { op: 'truncate', pin: 'vmsplice', unmapFirst: false, reuse: false },
    'vmsplice() puts the DAX page in a pipe (a page reference held by the pipe buffer), then truncate: it must not return while the pipe holds the page, and must return as soon as the pipe is drained, leaving the page idle.',
  ),
  pinTest(
    'pin-truncate-vmsplice-unmapped',
    { op: 'truncate', pin: 'vmsplice', unmapFirst: true, reuse: false },
    'The vmsplice pin with the mapping gone before the truncate: the pipe still holds the page, so truncate must still wait until it is drained (6.1 skips unmapped files in dax_layout_busy_page_range; 6.15 scans them).',
  ),
  pinTest(
    'pin-punch-hole',
    { op: 'punch', pin: 'odirect', unmapFirst: false, reuse: false },
    'fallocate(PUNCH_HOLE|KEEP_SIZE) of the page an O_DIRECT read holds: the punch must wait for the read (break layouts on the range), then free the block and leave the page idle.',
  ),
  pinTest(
    'pin-unlink',
    { op: 'unlink', pin: 'odirect', unmapFirst: true, reuse: false },
    'munmap, close and unlink a file while an O_DIRECT read holds its page: eviction must not drop the page from the file or free its block while it is pinned (6.15 added dax_break_layout_final() to ext4/xfs eviction; 6.1 truncates at once).',
  ),
  {
    name: 'umount-pinned',
    description:
      'Unmounts the filesystem while an O_DIRECT read still holds a page of a file that is unmapped and closed: umount must wait for the pin or refuse with EBUSY, no page of the namespace may stay above idle (probe range scan), and the filesystem is mounted again for later tests. 6.15 added dax_break_layout_final() to ext4/xfs eviction for this.',
    argv: (c) => unmountingHelper('dax-umount-pinned', 'umount-pinned', c, 30),
    timeoutMs: 60_000,
    needsSlowDev: true,
    judge: judgeUmount,
  },
  {
    name: 'namespace-disable-pinned',
    description:
      'Unmounts the filesystem while an O_DIRECT read still holds a page of a closed file, then disables its fsdax namespace with ndctl: tearing down the dev_pagemap (memunmap_pages(), which frees the struct pages of a -M mem namespace) must wait for the pin or be refused, never return while the read can still put_page() the page; the namespace must then enable and mount again with DAX, and no page of it may be above idle (probe range scan). The guest is replaced afterwards.',
    argv: (c) => unmountingHelper('dax-ns-disable-pinned', 'namespace-disable-pinned', c, 75),
    // The helper's own 75 s bound (two ndctl runs, a mount and two namespace scans under TCG).
    timeoutMs: 100_000,
    needsSlowDev: true,
    // Its namespace was disabled and enabled and its filesystem unmounted and mounted again
    // outside the harness's setup: later tests get a fresh guest.
    restartAfter: true,
    judge: judgeNamespaceDisable,
  },
  pinTest(
    'pin-block-reuse',
    { op: 'truncate', pin: 'odirect', unmapFirst: false, reuse: true },
    'After a pinned page was truncated and the pin released, a new file on the full filesystem gets its freed block (PFN checked): the block must read as zeros, never the old 0xa5 data, and the page must be at the mapped refcount, then idle, with no reference left from the old pin.',
  ),
];
