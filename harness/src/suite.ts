// The test definitions: which helper runs with which arguments, its time bound, and how its
// observations are judged against the kernel's refcount model. Helpers only observe; the
// judging is here, written once per model through model.ts.
import { expectedMapcount, expectedRefcount, type RefcountModel } from './model.js';

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
  result: 'ok' | 'fail' | 'skip';
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
}

export interface TestContext {
  mountpoint: string;
  fs: string;
}

export interface TestDef {
  name: string;
  /** What it checks and why, in a sentence or two (shown by `dax-harness list`). */
  description: string;
  argv(ctx: TestContext): string[];
  timeoutMs: number;
  judge(report: HelperReport, model: RefcountModel): Check[];
}

const BIN = '/opt/dax/bin';

/** Returns the helper's JSON report: the last line of stdout that parses as one. */
export function parseHelperReport(stdout: string): HelperReport | null {
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      const r = JSON.parse(t) as HelperReport;
      // extra is part of the contract; judges read it without checking.
      if (typeof r.helper === 'string' && Array.isArray(r.obs) && ['ok', 'fail', 'skip'].includes(r.result)) {
        return { ...r, extra: r.extra !== null && typeof r.extra === 'object' ? r.extra : {} };
      }
    } catch {
      // not the report line
    }
  }
  return null;
}

function obs(r: HelperReport, phase: string): HelperObs | undefined {
  return r.obs.find((o) => o.phase === phase);
}

function eq(name: string, expected: number, actual: number | undefined): Check {
  return { name, ok: actual === expected, expected: String(expected), actual: actual === undefined ? 'not observed' : String(actual) };
}

function cmp(name: string, ok: (a: number) => boolean, expected: string, actual: number | undefined): Check {
  return { name, ok: actual !== undefined && ok(actual), expected, actual: actual === undefined ? 'not observed' : String(actual) };
}

// A page that one process maps with one PTE or PMD, and nobody pins.
function mappedChecks(r: HelperReport, m: RefcountModel, phase: string): Check[] {
  const o = obs(r, phase);
  return [
    eq(`${phase}: page is ZONE_DEVICE (fsdax)`, 1, o?.zone_device),
    eq(`${phase}: refcount (${m.name} model)`, expectedRefcount(m, 1), o?.refcount),
    eq(`${phase}: mapcount (${m.name} model)`, expectedMapcount(m, 1), o?.mapcount),
  ];
}

function idleCheck(r: HelperReport, m: RefcountModel, phase = 'unmapped'): Check {
  return eq(`${phase}: refcount back to idle (${m.name} model)`, expectedRefcount(m, 0), obs(r, phase)?.refcount);
}

function faultTest(name: string, align: '4k' | '2m', size: string, description: string): TestDef {
  return {
    name,
    description,
    argv: (c) => [`${BIN}/dax-fault`, '--file', `${c.mountpoint}/${name}`, '--size', size, '--align', align, '--write', '--timeout', '50'],
    timeoutMs: 60_000,
    judge: (r, m) => [...mappedChecks(r, m, 'mapped'), ...mappedChecks(r, m, 'mapped_last'), idleCheck(r, m), idleCheck(r, m, 'unmapped_last')],
  };
}

export const SUITE: TestDef[] = [
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
    // The slow device is created by the guest's init in the background; wait for it (bounded).
    argv: (c) => [
      'sh',
      '-c',
      'i=0; while [ ! -b /dev/nullb0 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; exec "$@"',
      'wait-nullb',
      `${BIN}/dax-odirect-pin`,
      '--file',
      `${c.mountpoint}/odirect-pin`,
      '--dev',
      '/dev/nullb0',
      '--timeout',
      '60',
    ],
    timeoutMs: 90_000,
    judge: (r, m) => {
      const before = obs(r, 'before')?.refcount;
      const ioMs = typeof r.extra.io_ms === 'number' ? r.extra.io_ms : undefined;
      return [
        ...mappedChecks(r, m, 'before'),
        cmp('during: refcount raised by the in-flight I/O', (a) => before !== undefined && a > before, `> ${before ?? '?'}`, obs(r, 'during')?.refcount),
        eq('after: refcount back to the mapped value', expectedRefcount(m, 1), obs(r, 'after')?.refcount),
        idleCheck(r, m),
        cmp('the I/O really was slow (pin window observed)', (a) => a >= 1000, '>= 1000 ms', ioMs),
      ];
    },
  },
  {
    name: 'uring-longterm',
    description:
      'io_uring fixed-buffer registration of a DAX mapping must be refused (FOLL_LONGTERM is not allowed on fsdax) and must leave nothing pinned: refcount unchanged and every FOLL_PIN acquired also released.',
    argv: (c) => [`${BIN}/dax-uring-pin`, '--file', `${c.mountpoint}/uring-longterm`, '--timeout', '50'],
    timeoutMs: 60_000,
    judge: (r, m) => {
      const x = r.extra;
      const num = (k: string): number | undefined => (typeof x[k] === 'number' ? (x[k] as number) : undefined);
      const acquired = num('pin_acquired_delta');
      const released = num('pin_released_delta');
      return [
        ...mappedChecks(r, m, 'before'),
        cmp('io_uring_register_buffers refused', (a) => a < 0, '< 0 (-errno)', num('register_ret')),
        eq('after_register: refcount unchanged', expectedRefcount(m, 1), obs(r, 'after_register')?.refcount),
        cmp('no FOLL_PIN left behind (acquired - released)', (a) => a === 0, '0', acquired !== undefined && released !== undefined ? acquired - released : undefined),
        idleCheck(r, m),
      ];
    },
  },
];

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
];

/** Returns the tests selected by name (the suite if names is empty); unknown names are an error for the caller. */
export function selectTests(names: string[]): { tests: TestDef[]; unknown: string[] } {
  if (names.length === 0) return { tests: SUITE, unknown: [] };
  const all = [...SUITE, ...SELFTESTS];
  const unknown = names.filter((n) => !all.some((t) => t.name === n));
  // In the order given: a fault-injection run places its faults between ordinary tests.
  return { tests: names.flatMap((n) => all.filter((t) => t.name === n)), unknown };
}
