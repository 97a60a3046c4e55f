// The test definitions: which helper runs with which arguments, its time bound, and how its
// observations are judged against the kernel's refcount model. Helpers only observe; the
// judging is here, written once per model through model.ts.
import { shellQuote } from '../core/proc.js';
import { expectedRefcount, type RefcountModel } from '../kernel/model.js';
import { cmp, eq, idleCheck, mappedChecks, obs, setup } from './checks.js';
import { TESTS as PIN_TESTS } from './scenarios/pins.js';
import { TESTS as MAPPING_TESTS } from './scenarios/mappings.js';
import { TESTS as GUP_PIN_TESTS } from './scenarios/gup.js';
import { summarizeDaxFaults, type DaxTraceEvent } from './trace.js';

export interface HelperObs {
  phase: string;
  pfn: number;
  refcount: number;
  mapcount: number;
  pincount: number;
  zone_device: number;
  order: number;
}

export interface HelperReport {
  helper: string;
  v: number;
  /** error: the test's environment is broken (infrastructure), not the kernel. */
  result: 'ok' | 'fail' | 'skip' | 'error';
  reason: string;
  dax: boolean;
  obs: HelperObs[];
  extra: Record<string, unknown>;
}

export interface Check {
  name: string;
  ok: boolean;
  expected: string;
  actual: string;
  /** A precondition of the test rather than kernel behaviour (see checks.ts setup()). */
  setup?: boolean;
}

/** Where a test runs: the target says where its helpers, slow device and scratch space are. */
export interface TestContext {
  mountpoint: string;
  fs: string;
  /** The directory of the helper binaries on the target. */
  bin: string;
  /** The slow block device (reads complete after 2 s) the pin tests read from. */
  slowDev: string;
  /** A scratch directory on a non-DAX filesystem that the harness owns on the target. */
  tmp: string;
}

/** What a judge gets besides the helper's report. */
export interface JudgeContext {
  fs: string;
  /** fs_dax events recorded during the test (empty unless the test asks for tracing). */
  trace: DaxTraceEvent[];
  /** The kernel log lines of the test's dmesg window (message text only). */
  dmesg: string[];
}

export interface TestDef {
  name: string;
  /** What it checks and why, in a sentence or two (shown by `dax-harness list`). */
  description: string;
  argv(ctx: TestContext): string[];
  timeoutMs: number;
  judge(report: HelperReport, model: RefcountModel, ctx: JudgeContext): Check[];
  /** Filesystems the test applies to (default: all); on others it is a SKIP, and `why` says so. */
  filesystems?: string[];
  /** Why the test runs only on `filesystems` (the feature the others lack). */
  filesystemsWhy?: string;
  /**
   * Kernel options the tested feature needs (CONFIG_GUP_TEST, ...). A kernel whose config lacks
   * one gets a SKIP that names it; that is the only way a test is skipped for the kernel.
   */
  requires?: string[];
  /** The test reads from the slow null_blk device: the harness has it ready first. */
  needsSlowDev?: boolean;
  /** dmesg lines this scenario expects (e.g. memory-failure recovery), not failures. */
  allowDmesg?: RegExp[];
  /** Record fs_dax tracepoints during the test and hand them to the judge. */
  trace?: boolean;
  /**
   * The test leaves the guest in a state later tests must not inherit (a poisoned page,
   * a stale share tag): the guest is replaced after it.
   */
  restartAfter?: boolean;
}


/** Returns a test's plan as --dry-run prints it: the exact helper command, then its point and bound. */
export function formatTestPlan(t: TestDef, ctx: TestContext): string {
  return `${shellQuote(t.argv(ctx))}   # ${ctx.fs}/${t.name}, ${t.timeoutMs / 1000} s`;
}

/** Returns the helper's JSON report: the last line of stdout that parses as one. */
export function parseHelperReport(stdout: string): HelperReport | null {
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      const r = JSON.parse(t) as HelperReport;
      // extra is part of the contract; judges read it without checking.
      if (typeof r.helper === 'string' && Array.isArray(r.obs) && ['ok', 'fail', 'skip', 'error'].includes(r.result)) {
        return { ...r, extra: r.extra !== null && typeof r.extra === 'object' ? r.extra : {} };
      }
    } catch {
      // not the report line
    }
  }
  return null;
}

// Which fault size the kernel used, from the fs_dax tracepoints. A PMD mapping is possible only
// where the file's blocks are 2 MiB-aligned and contiguous (the helper reports that); there
// it must be used, elsewhere the kernel must fall back to PTEs.
function faultSizeChecks(r: HelperReport, ctx: JudgeContext, align: '4k' | '2m'): Check[] {
  const f = summarizeDaxFaults(ctx.trace);
  if (align === '4k') {
    return [
      cmp('PTE faults recorded (fs_dax:dax_pte_fault_done)', (a) => a > 0, '> 0', f.pteDone),
      eq('no PMD mapping for a mapping off a 2 MiB boundary', 0, f.pmdNopage),
    ];
  }
  // A PMD fault is what this test is for: blocks the filesystem did not lay out for one leave
  // it untested (a set-up failure), whatever the fallback did.
  return [
    setup(flagCheck('the file sits on 2 MiB-aligned blocks (huge_aligned)', r.extra.huge_aligned)),
    setup(flagCheck('the file is one contiguous run of blocks (pfn_contig)', r.extra.pfn_contig)),
    cmp('PMD fault used where alignment allows (dax_pmd_fault_done NOPAGE)', (a) => a > 0, '> 0', f.pmdNopage),
  ];
}

// An O_DIRECT read held a mapped page: raised while in flight, back to the mapped value, then idle.
function odirectPinChecks(r: HelperReport, m: RefcountModel): Check[] {
  const before = obs(r, 'before')?.refcount;
  const ioMs = typeof r.extra.io_ms === 'number' ? r.extra.io_ms : undefined;
  return [
    ...mappedChecks(r, m, 'before'),
    cmp('during: refcount raised by the in-flight I/O', (a) => before !== undefined && a > before, `> ${before ?? '?'}`, obs(r, 'during')?.refcount),
    eq('after: refcount back to the mapped value', expectedRefcount(m, 1), obs(r, 'after')?.refcount),
    idleCheck(r, m),
    cmp('the I/O really was slow (pin window observed)', (a) => a >= 1000, '>= 1000 ms', ioMs),
  ];
}

function flagCheck(name: string, v: unknown): Check {
  return { name, ok: v === true, expected: 'true', actual: typeof v === 'boolean' ? String(v) : 'not observed' };
}

function faultTest(name: string, align: '4k' | '2m', size: string, description: string): TestDef {
  return {
    name,
    description,
    argv: (c) => [`${c.bin}/dax-fault`, '--file', `${c.mountpoint}/${name}`, '--size', size, '--align', align, '--write', '--timeout', '50'],
    timeoutMs: 60_000,
    trace: true,
    judge: (r, m, ctx) => [
      ...mappedChecks(r, m, 'mapped'),
      ...mappedChecks(r, m, 'mapped_last'),
      idleCheck(r, m),
      idleCheck(r, m, 'unmapped_last'),
      ...faultSizeChecks(r, ctx, align),
    ],
  };
}

const BASE_TESTS: TestDef[] = [
  faultTest(
    'mmap-fault-4k',
    '4k',
    '64k',
    'Write-faults a MAP_SHARED DAX mapping placed off a 2 MiB boundary (PTE faults) and reads the first and last page through the probe: refcount and mapcount must match the model while mapped, and return to idle after munmap.',
  ),
  faultTest(
    'mmap-fault-2m',
    '2m',
    '4m',
    'The same on a 2 MiB-aligned mapping of a 4 MiB file, where the kernel can use PMD faults: the head and tail pages must follow the model as well.',
  ),
  {
    name: 'odirect-pin',
    description:
      'An O_DIRECT read from a slow null_blk device (2 s per I/O) into a DAX mapping: the page refcount must rise while the I/O holds it and fall back to the mapped value after, then to idle after munmap.',
    argv: (c) => [`${c.bin}/dax-odirect-pin`, '--file', `${c.mountpoint}/odirect-pin`, '--dev', c.slowDev, '--timeout', '60'],
    timeoutMs: 90_000,
    needsSlowDev: true,
    judge: (r, m) => odirectPinChecks(r, m),
  },
  {
    name: 'uring-longterm',
    description:
      'io_uring fixed-buffer registration of a DAX mapping must be refused and must leave nothing pinned: refcount unchanged and every FOLL_PIN acquired also released. It is not a FOLL_LONGTERM check: 6.1\'s io_uring refuses every file-backed buffer itself (io_pin_pages) before GUP could, so the refusal says nothing about GUP; gup-longterm-pmd checks that FOLL_LONGTERM pins nothing on fsdax, through gup_test.',
    argv: (c) => [`${c.bin}/dax-uring-pin`, '--file', `${c.mountpoint}/uring-longterm`, '--timeout', '50'],
    timeoutMs: 60_000,
    requires: ['CONFIG_IO_URING'],
    judge: (r, m) => {
      const x = r.extra;
      const num = (k: string): number | undefined => (typeof x[k] === 'number' ? (x[k] as number) : undefined);
      const acquired = num('pin_acquired_delta');
      const released = num('pin_released_delta');
      return [
        ...mappedChecks(r, m, 'before'),
        cmp('io_uring_register_buffers refused the DAX buffer (on 6.1 by io_uring itself, which takes no file-backed buffer)', (a) => a < 0, '< 0 (-errno)', num('register_ret')),
        eq('after_register: refcount unchanged', expectedRefcount(m, 1), obs(r, 'after_register')?.refcount),
        cmp('no FOLL_PIN left behind (acquired - released)', (a) => a === 0, '0', acquired !== undefined && released !== undefined ? acquired - released : undefined),
        idleCheck(r, m),
      ];
    },
  },
];

/** Returns refcount and mapcount of the dump_page() line for pfn (6.1 and later formats). */
export function parseDumpPage(lines: string[], pfn: number): { refcount: number; mapcount: number } | null {
  for (const l of lines) {
    const m = /^page:\s*(?:\S+ )?refcount:(\d+) mapcount:(-?\d+) .*\bpfn:(0x[0-9a-f]+)/.exec(l);
    if (m?.[1] && m[2] && m[3] && Number(m[3]) === pfn) return { refcount: Number(m[1]), mapcount: Number(m[2]) };
  }
  return null;
}

const GUP_TESTS: TestDef[] = [
  {
    name: 'odirect-pin-pmd',
    description:
      "odirect-pin on a 2 MiB-aligned mapping write-faulted as one PMD: the O_DIRECT read's pages are pinned by GUP's fast path on a PMD leaf (gup_fast_pmd_leaf), which a 4 KiB mapping never reaches. The head page's refcount must rise while the I/O holds it and fall back to the mapped value after, then to idle; the PMD fault must have happened (fs_dax tracepoints).",
    argv: (c) => [`${c.bin}/dax-odirect-pin`, '--file', `${c.mountpoint}/odirect-pin-pmd`, '--dev', c.slowDev, '--size', '2m', '--pmd', '--timeout', '60'],
    timeoutMs: 90_000,
    needsSlowDev: true,
    trace: true,
    judge: (r, m, ctx) => [...odirectPinChecks(r, m), ...faultSizeChecks(r, ctx, '2m')],
  },
  {
    name: 'gup-crosscheck',
    description:
      "Cross-checks the probe against the kernel's own dump_page() (CONFIG_GUP_TEST's DUMP_USER_PAGES_TEST, which holds one extra reference while it dumps): refcount and mapcount must agree, so a probe misreading a new kernel's struct page cannot go unnoticed. A kernel without gup_test (Debian's 6.1) is a SKIP.",
    argv: (c) => [`${c.bin}/dax-gup-dump`, '--file', `${c.mountpoint}/gup-crosscheck`, '--timeout', '20'],
    timeoutMs: 30_000,
    requires: ['CONFIG_GUP_TEST'],
    judge: (r, m, ctx) => {
      const before = obs(r, 'before');
      const pfn = typeof r.extra.pfn === 'number' ? r.extra.pfn : before?.pfn;
      const dump = pfn === undefined ? null : parseDumpPage(ctx.dmesg, pfn);
      return [
        ...mappedChecks(r, m, 'before'),
        cmp("gup_test's dump_page refcount = probe's + its own reference", (a) => before !== undefined && a === before.refcount + 1, `${(before?.refcount ?? NaN) + 1}`, dump?.refcount),
        cmp("gup_test's dump_page mapcount = probe's", (a) => before !== undefined && a === before.mapcount, String(before?.mapcount ?? '?'), dump?.mapcount),
        eq('after: gup_test dropped its reference', expectedRefcount(m, 1), obs(r, 'after')?.refcount),
        idleCheck(r, m),
      ];
    },
  },
];

// Seeded, bounded stress: reproducible operation sequences per process.
export const STRESS_SEED = 20261125;

const STRESS_TESTS: TestDef[] = [
  {
    name: 'stress-concurrent',
    description:
      'Four processes fault, vmsplice-pin, truncate and re-extend, and punch holes in one DAX file for 5 s (seeded): no WARN, no process killed, and afterwards every fsdax page any of them mapped is at the idle refcount — no reference leaked or dropped twice under concurrency.',
    argv: (c) => [`${c.bin}/dax-stress`, '--file', `${c.mountpoint}/stress-concurrent`, '--seed', String(STRESS_SEED), '--procs', '4', '--seconds', '5', '--timeout', '60'],
    timeoutMs: 90_000,
    judge: (r, m) => {
      const n = (k: string): number | undefined => (typeof r.extra[k] === 'number' ? (r.extra[k] as number) : undefined);
      const idle = expectedRefcount(m, 0);
      return [
        cmp('every kind of operation ran', (a) => a > 0, '> 0 of the rarest kind', Math.min(n('ops_map') ?? 0, n('ops_map_pin') ?? 0, n('ops_truncate') ?? 0, n('ops_punch') ?? 0)),
        // An attempt whose vmsplice failed pinned nothing: only pins that happened count.
        cmp('pages were really pinned in pipes (vmsplice succeeded and was drained)', (a) => a > 0, '> 0', n('pins_done')),
        cmp('fsdax pages were mapped and checked', (a) => a > 0, '> 0', n('pfns_checked')),
        eq(`lowest refcount of those pages is idle (${m.name} model)`, idle, n('min_refcount')),
        eq(`highest refcount of those pages is idle (${m.name} model)`, idle, n('max_refcount')),
      ];
    },
  },
];

/** The refcount suite, in run order. */
export const SUITE: TestDef[] = [...BASE_TESTS, ...GUP_TESTS, ...GUP_PIN_TESTS, ...PIN_TESTS, ...MAPPING_TESTS, ...STRESS_TESTS];

// Self-tests of the harness: each makes the guest misbehave on purpose so the fault-injection
// tests can prove a WARN is seen, a panic is a crash, a hang is a timeout and a dropped
// connection is an infrastructure error. Selected only by name, never part of the suite.
const SELFTEST_OK = JSON.stringify({ helper: 'selftest', v: 1, result: 'ok', reason: '', dax: false, obs: [], extra: {} });
const FAULT_FILE = '/sys/kernel/debug/dax_probe/fault';

function selftest(name: string, description: string, script: string, timeoutMs: number): TestDef {
  return {
    name,
    description,
    argv: () => ['sh', '-c', `${script} && echo '${SELFTEST_OK}'`],
    timeoutMs,
    judge: () => [],
  };
}

export const SELFTESTS: TestDef[] = [
  selftest('selftest-warn', 'Triggers a WARN in the probe module: must fail on the dmesg window and the W taint.', `echo warn > ${FAULT_FILE}`, 20_000),
  selftest('selftest-panic', 'Panics the guest with sysrq-c: must be a crash (kernel failure), then the VM restarts.', 'echo c > /proc/sysrq-trigger', 20_000),
  selftest('selftest-hang', 'Sleeps in D state in the kernel for 10 minutes: must time out with blocked-task stacks, then the VM restarts.', `echo 'hang 600' > ${FAULT_FILE}`, 8_000),
  selftest('selftest-sleep', 'A killable process that overruns its bound: must time out; the guest stays usable.', 'sleep 600', 3_000),
  selftest('selftest-ssh-drop', "Kills the guest's sshd: an infrastructure error, retried, never a kernel failure.", 'killall -9 dropbear', 20_000),
  // The shell kills itself before printing anything: a helper that segfaults at its start.
  selftest('selftest-segv', 'Dies of SIGSEGV before printing a report: a red test, and never a known failure unless its entry says so.', 'kill -SEGV $$', 20_000),
  selftest('selftest-log-cut', "Clears the kernel log (dmesg -c), and with it the test's BEGIN marker: an infrastructure error, never an empty window.", 'dmesg -c >/dev/null', 20_000),
];

// `--tests fast`: one or two tests per invariant, none of those that wait seconds for a slow
// device or run a timed stress (under a minute for both filesystems on a built kernel).
export const FAST_TESTS: string[] = [
  'mmap-fault-4k',
  'mmap-fault-2m',
  'uring-longterm',
  'gup-crosscheck',
  'gup-longterm-pmd',
  'hole-zero-page',
  'pin-truncate-vmsplice',
  'fork-shared-private',
  'mremap-mlock',
  'pmd-split-punch',
  'map-sync',
  'poison-hwpoison',
];

/** Returns the tests selected by name (the suite if names is empty; `fast` is the fast set); unknown names are an error for the caller. */
export function selectTests(requested: string[]): { tests: TestDef[]; unknown: string[] } {
  if (requested.length === 0) return { tests: SUITE, unknown: [] };
  const names = requested.flatMap((n) => (n === 'fast' ? FAST_TESTS : [n]));
  const all = [...SUITE, ...SELFTESTS];
  const unknown = names.filter((n) => !all.some((t) => t.name === n));
  // In the order given: a fault-injection run places its faults between ordinary tests.
  return { tests: names.flatMap((n) => all.filter((t) => t.name === n)), unknown };
}
