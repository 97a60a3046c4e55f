// Pure parsing of kernel logs: text in, typed records out. Reads dmesg, /dev/kmsg records and
// serial-console captures; slices out one test's lines by its markers; finds the incidents
// (WARN, BUG, Oops, panic, sanitizer reports, stalls, poison) that fail a test; decodes taint.
//
// The incident patterns are the union of what syzkaller (pkg/report/linux.go), LKP
// (etc/oops-pattern), fstests (common/rc _check_dmesg) and kdevops (lib/crash.py) treat as
// kernel failures, narrowed by anchoring every pattern at the start of the message: a kernel
// report header always starts its printk, while benign lines that merely contain the word
// ("Spectre V2 : WARNING: Unprivileged eBPF ...", "EXT4-fs (pmem0): DAX enabled. Warning:
// EXPERIMENTAL ...") do not. LKP and kdevops list that Spectre line as benign by hand; the
// anchor makes the hand-kept list unnecessary.

/** One kernel log line: `ts` in seconds since boot (null when the source had none). */
export interface DmesgLine {
  ts: number | null;
  text: string;
  raw: string;
}

/** Every kind of incident scanDmesg can report, in a stable order. */
export const FINDING_KINDS = [
  'warning',
  'bug',
  'oops',
  'general-protection',
  'panic',
  'bad-page',
  'refcount',
  'list-corruption',
  'kasan',
  'kfence',
  'ubsan',
  'lockdep',
  'hung-task',
  'soft-lockup',
  'hard-lockup',
  'rcu-stall',
  'fs-error',
  'memory-failure',
] as const;

/** What kind of incident a finding is. */
export type FindingKind = (typeof FINDING_KINDS)[number];

/**
 * One incident: its kind, the line that names it, where in the kernel it happened (the function
 * of the WARN/BUG site or the faulting RIP, and file:line where the kernel prints one), and the
 * report lines as dmesg prints them.
 */
export interface DmesgFinding {
  kind: FindingKind;
  line: DmesgLine;
  function: string | null;
  file: string | null;
  excerpt: string[];
}

/** Options for scanDmesg. `allow` suppresses incidents whose header lines match. */
export interface ScanOptions {
  allow?: readonly RegExp[];
}

/** The longest excerpt kept per finding; a full KASAN or lockdep report runs past 100 lines. */
export const EXCERPT_MAX_LINES = 40;

// ---------------------------------------------------------------------------------------------
// Parsing

// /dev/kmsg record: "prio,seq,usec,flags[,caller=T1];message" (Documentation/ABI/testing/dev-kmsg).
const KMSG_RE = /^(\d+),(\d+),(\d+),([^,;]*)(?:,[^;]*)?;(.*)$/;
// syslog/journald prefix kept by kern.log and `journalctl -o short[-iso]`.
const SYSLOG_RE =
  /^(?:[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?) \S+ kernel: /;
// A getty prompt on the serial console that a kernel message got appended to ("host login: [ 1.0] BUG...").
const LOGIN_RE = /^.*? login: (?=(?:<\d{1,3}>)?\[)/;
// `dmesg -r` and busybox raw output keep the syslog priority.
const PRIO_RE = /^<\d{1,3}>/;
// "[   12.345678]" optionally followed by the CONFIG_PRINTK_CALLER field "[ T123]" / "[ C2]".
const TS_RE = /^\[\s*(\d+\.\d+)\](?:\[\s*[CT]\d+\])?/;
// `dmesg -T`: wall-clock stamps cannot be turned back into seconds since boot.
const HUMAN_TS_RE = /^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}\]/;
// Userspace on the serial console paints with colour codes; the kernel never does.
const ANSI_RE = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

/** Returns the lines of a dmesg, /dev/kmsg or serial-console capture; empty lines are dropped. */
export function parseDmesg(text: string): DmesgLine[] {
  const out: DmesgLine[] = [];
  // After a kmsg record, lines starting with a space are its KEY=value dictionary, not text.
  let afterKmsgRecord = false;
  // util-linux dmesg prints the 2nd..nth line of a multi-line record indented to the width of
  // the timestamp and without one; those lines belong to the record above.
  let continuation: { ts: number; width: number } | null = null;

  const push = (ts: number | null, body: string, raw: string): void => {
    const t = body.trimEnd();
    if (t.trim() !== '') out.push({ ts, text: t, raw });
  };

  for (const physical of text.split('\n')) {
    const raw = physical.replace(/\r+$/, '');
    let s = raw.replace(/\r/g, '').replace(ANSI_RE, '');

    // Fixture files carry a "# source:" header; a root shell prompt on the console looks alike.
    if (s.startsWith('# ')) continue;

    if (afterKmsgRecord && s.startsWith(' ')) continue;
    const kmsg = KMSG_RE.exec(s);
    if (kmsg) {
      afterKmsgRecord = true;
      continuation = null;
      const ts = Number(kmsg[3]) / 1e6;
      // kmsg escapes unprintable bytes as \xNN; a multi-line record arrives as one with \x0a.
      const message = String(kmsg[5]).replace(/\\x([0-9a-fA-F]{2})/g, (_m, hex: string) =>
        String.fromCharCode(parseInt(hex, 16)),
      );
      for (const piece of message.split('\n')) push(ts, piece, raw);
      continue;
    }
    afterKmsgRecord = false;

    s = s.replace(SYSLOG_RE, '').replace(LOGIN_RE, '').replace(PRIO_RE, '');

    const stamp = TS_RE.exec(s);
    if (stamp) {
      const ts = Number(stamp[1]);
      const width = stamp[0].length + 1;
      continuation = { ts, width };
      push(ts, s.slice(stamp[0].length).replace(/^ /, ''), raw);
      continue;
    }
    const human = HUMAN_TS_RE.exec(s);
    if (human) {
      continuation = null;
      push(null, s.slice(human[0].length).replace(/^ /, ''), raw);
      continue;
    }
    if (continuation && s.length > continuation.width && /^ +$/.test(s.slice(0, continuation.width))) {
      push(continuation.ts, s.slice(continuation.width), raw);
      continue;
    }
    continuation = null;
    push(null, s, raw);
  }
  return out;
}

/** Returns a line as dmesg prints it: "[   12.345678] text", or the bare text without a stamp. */
export function formatDmesgLine(line: DmesgLine): string {
  return line.ts === null ? line.text : `[${line.ts.toFixed(6).padStart(12)}] ${line.text}`;
}

// ---------------------------------------------------------------------------------------------
// Markers

const MARKER_RE = /^dax-harness: (?:BEGIN|END) \S+$/;
// The first line of every boot; a capture that spans a reboot must not leak across it.
const BOOT_BANNER_RE = /^Linux version \d/;

/**
 * Returns the lines strictly between "dax-harness: BEGIN <id>" and "dax-harness: END <id>", or
 * null when that BEGIN is absent. Without the END (the test crashed the guest) the slice runs to
 * the next test's BEGIN, the next boot, or the end of the log.
 */
export function sliceBetweenMarkers(lines: DmesgLine[], id: string): DmesgLine[] | null {
  const texts = lines.map((l) => l.text.trim());
  // The last BEGIN wins: a rerun of the same test in one capture supersedes the earlier run.
  const begin = texts.lastIndexOf(`dax-harness: BEGIN ${id}`);
  if (begin < 0) return null;
  const stop = texts.findIndex(
    (s, i) =>
      i > begin && (s === `dax-harness: END ${id}` || s.startsWith('dax-harness: BEGIN ') || BOOT_BANNER_RE.test(s)),
  );
  return lines.slice(begin + 1, stop < 0 ? lines.length : stop);
}

// ---------------------------------------------------------------------------------------------
// Incident detection

// How a header line relates to the lines around it.
// - banner: the die()/__warn() line itself (WARNING:, kernel BUG at, Oops:, invalid opcode:).
// - lead: a message the kernel prints just before (or, on some arches, just after) its banner,
//   as part of the same report: refcount_t, list corruption, "BUG: unable to handle ...".
// - standalone: a report of its own that never shares a banner with another.
type Role = 'banner' | 'lead' | 'standalone';
// Which banner family: an Oops banner may follow a BUG banner (BUG() traps into die()).
type Family = 'warn' | 'bug' | 'oops';
// report: multi-line report with a preamble (message, page dump, lock chains) then a trace.
// line: a one-line message; only a stack dump or same-key lines may follow it.
type Shape = 'report' | 'line';

interface Rule {
  kind: FindingKind;
  re: RegExp;
  role: Role;
  family?: Family;
  shape?: Shape;
  // KASAN, KFENCE and UBSAN bracket their report with "=====" lines; the closing one ends it.
  bracketed?: boolean;
  // Lines that only add to the report in front of them (XFS's follow-up lines about the same
  // device, memory_failure()'s lines about the same pfn) join it instead of opening a new one.
  joinKey?: (text: string) => string | undefined;
  // How many lines may precede the stack dump before the report counts as over; lockdep's
  // dependency chains run long.
  preambleMax?: number;
  // Only on lines with a printk timestamp: the serial console also carries userspace output,
  // and a tool printing "WARNING: ..." there is not the kernel.
  stampedOnly?: boolean;
}

// Not failures although they look like one.
const BENIGN: readonly RegExp[] = [
  // Lockdep running out of its own table space says nothing about the code under test
  // (fstests _check_dmesg_filter drops these two).
  /^BUG: MAX_(?:LOCKDEP_\w+|STACK_TRACE_ENTRIES) too low/,
  // sshd writes these to the console at boot (syzkaller's ignore list); the guest runs sshd.
  /^WARNING: \/etc\/ssh\/moduli does not exist/,
  /^WARNING: workqueue cpumask: online intersect > possible intersect/,
];

// Lockdep headers; kernels before 4.11 bracketed them: "[ INFO: possible circular locking ... ]".
const LOCKDEP_RE = new RegExp(
  '^(?:\\[ )?(?:WARNING|INFO|ERR|BUG): (?:' +
    [
      'possible circular locking dependency detected',
      'possible recursive locking detected',
      'inconsistent lock state',
      'possible irq lock inversion dependency detected',
      '(?:HARD|SOFT)IRQ-safe -> (?:HARD|SOFT)IRQ-unsafe lock order detected',
      'bad unlock balance detected',
      'held lock freed',
      'lock held when returning to user space',
      'lock held at task exit time',
      'suspicious RCU usage',
      'Nested lock was not taken',
      'chain_key collision',
      '.* still has locks held',
    ].join('|') +
    ')',
);

const xfsDevice = (text: string): string | undefined => /^XFS \(([^)]+)\)/.exec(text)?.[1];
const ext4Device = (text: string): string | undefined => /^EXT4-fs (?:error )?\((?:device )?([^)]+)\)/.exec(text)?.[1];
const poisonPfn = (text: string): string | undefined => /^Memory failure: (0x[0-9a-f]+):/.exec(text)?.[1];

// First match wins; the specific BUG:/WARNING: kinds come before the catch-alls.
const RULES: readonly Rule[] = [
  { kind: 'panic', re: /^Kernel panic - not syncing\b/, role: 'standalone' },
  { kind: 'kasan', re: /^BUG: KASAN: /, role: 'standalone', bracketed: true },
  { kind: 'kfence', re: /^BUG: KFENCE: /, role: 'standalone', bracketed: true },
  { kind: 'bug', re: /^BUG: K[CM]SAN: /, role: 'standalone', bracketed: true },
  { kind: 'bad-page', re: /^BUG: Bad page (?:state|map) in process\b/, role: 'standalone' },
  { kind: 'soft-lockup', re: /^(?:[\w ]+: )?BUG: soft lockup\b/, role: 'standalone' },
  // "NMI watchdog: Watchdog detected hard LOCKUP on cpu 2" (until 5.x) and, since the buddy
  // detector, "watchdog: CPU1: Watchdog detected hard LOCKUP on cpu 1".
  { kind: 'hard-lockup', re: /^(?:[\w ]+: )?(?:CPU\d+: )?Watchdog detected hard LOCKUP\b/, role: 'standalone' },
  { kind: 'lockdep', re: LOCKDEP_RE, role: 'standalone', preambleMax: Infinity },
  // x86 page faults: "BUG: unable to handle page fault for address", "BUG: kernel NULL pointer
  // dereference, address: ..." are followed by the "Oops: 0000 [#1]" banner of the same oops.
  {
    kind: 'bug',
    re: /^BUG: (?:unable to handle\b|kernel NULL pointer dereference\b|Unable to handle kernel\b)/,
    role: 'lead',
  },
  { kind: 'bug', re: /^BUG: /, role: 'standalone', stampedOnly: true },
  { kind: 'bug', re: /^[Kk]ernel BUG at /, role: 'banner', family: 'bug' },
  // SLUB debug: "BUG kmalloc-64 (Not tainted): Objects remaining ..." (fstests "BUG .* remaining").
  { kind: 'bug', re: /^BUG [\w.:-]+ \([^)]*\): /, role: 'standalone' },
  // 6.12+ prefixes it: "Oops: general protection fault, probably for non-canonical address".
  { kind: 'general-protection', re: /^(?:Oops: )?general protection fault\b/, role: 'banner', family: 'oops' },
  // arm/arm64/riscv page faults, followed by "Internal error: Oops: ... [#1]".
  { kind: 'oops', re: /^Unable to handle kernel /, role: 'lead' },
  {
    kind: 'oops',
    re: /^(?:Oops\b|Internal error: Oops\b|(?:invalid opcode|divide error|stack segment): [0-9a-f]{4} \[#\d+\]|PANIC: double fault)/,
    role: 'banner',
    family: 'oops',
  },
  { kind: 'refcount', re: /^refcount_t: /, role: 'lead' },
  { kind: 'list-corruption', re: /^list_(?:add|del) corruption\b/, role: 'lead' },
  { kind: 'hung-task', re: /^INFO: task .+ blocked for more than \d+ seconds/, role: 'standalone' },
  {
    kind: 'rcu-stall',
    re: /^(?:rcu: )?INFO: rcu_\w+ (?:self-)?detected (?:expedited )?stalls?\b/,
    role: 'standalone',
  },
  { kind: 'ubsan', re: /^UBSAN: /, role: 'standalone', bracketed: true },
  // XFS asserts print the assertion, then WARN (XFS_WARN) or BUG (DEBUG) on the next lines.
  { kind: 'fs-error', re: /^XFS: Assertion failed: /, role: 'lead' },
  {
    kind: 'fs-error',
    re: /^XFS \([^)]+\): (?:Internal error|Corruption (?:of in-memory data|detected)|Metadata corruption detected)/,
    role: 'standalone',
    shape: 'line',
    joinKey: xfsDevice,
  },
  {
    kind: 'fs-error',
    re: /^EXT4-fs error \(device [^)]+\)/,
    role: 'standalone',
    shape: 'line',
    joinKey: ext4Device,
  },
  { kind: 'memory-failure', re: /^Memory failure: /, role: 'standalone', shape: 'line', joinKey: poisonPfn },
  // Both __warn() formats: "WARNING: CPU: 0 PID: 1 at fs/dax.c:123 f+0x1/0x2" (until 2025),
  // "WARNING: fs/dax.c:123 at f+0x1/0x2, CPU#0: comm/1" (since), and the 2.6-era "WARNING: at".
  {
    kind: 'warning',
    re: /^WARNING: (?:CPU: \d+ PID: \d+ at |at |\S+:\d+ at .+, CPU#\d+: )/,
    role: 'banner',
    family: 'warn',
  },
  { kind: 'warning', re: /^WARNING: /, role: 'standalone', shape: 'line', stampedOnly: true },
];

const CUT_HERE_RE = /^-{3,}\[ cut here \]-{3,}$/;
const END_TRACE_RE = /^-{2,}\[ end (?:trace\b|Kernel panic\b)/;
const BAR_RE = /^={20,}$/;
// Lines that end a report's preamble: the kernel has started its register/stack dump.
const BODY_ANCHOR_RE =
  /^(?:Modules linked in:|CPU: \d+ (?:UID: \d+ )?PID: |Hardware name: |Call Trace:|Call trace:|RIP: |pc : |NIP: |PC is at |Krnl PSW|stack backtrace:)/;
const TRACE_START_RE = /^(?:Call Trace:|Call trace:|Backtrace:|stack backtrace:)/;
// What a stack dump is made of, so the first line that is none of these ends the report.
const FRAME_RE =
  /^(?:\?\s*)?(?:[\w.$]+\+0x[0-9a-f]+\/0x[0-9a-f]+|[\w.$]+ \([^)]*\.[chS]:\d+|\[<[0-9a-f]+>\]|[\w.$]+ from [\w.$]+\+0x)/;
const CONTEXT_RE = /^<\/?(?:TASK|IRQ|NMI|EOI|SOFTIRQ)>/;
const REGISTER_RE =
  /^(?:RIP|EIP|RSP|ESP|RAX|RBX|RCX|RDX|RSI|RDI|RBP|EAX|EBX|ECX|EDX|ESI|EDI|EBP|R\d{1,2}|FS|GS|CS|DS|ES|SS|CR\d|DR\d|PKRU|Code|NIP|LR|CTR|MSR|XER|CFAR|DAR|DSISR|IRQMASK|REGS|GPR\d\d|Krnl (?:PSW|GPRS|Code)|pstate|pc|lr|sp|x\d{1,2})\s*:/;
const LABEL_RE =
  /^(?:Call Trace|Call trace|Backtrace|Exception stack|Stack|Modules linked in|CPU: \d|Hardware name|Workqueue|Tainted|Kernel Offset|irq event stamp|hardirqs last|softirqs last|task:|Showing all locks|Showing busy|NMI backtrace|Sending NMI|Task dump|note: |Disabling lock debugging|INFO: lockdep is turned off|rcu: |\d+ locks? held by|#\d+: )/;
const PREAMBLE_MAX = 12;

function isBodyLine(text: string): boolean {
  if (/^\s/.test(text)) return true;
  return FRAME_RE.test(text) || CONTEXT_RE.test(text) || REGISTER_RE.test(text) || LABEL_RE.test(text);
}

interface Detection {
  rule: Rule;
  text: string;
}

function detect(line: DmesgLine): Detection | null {
  const t = line.text.trimStart();
  if (BENIGN.some((re) => re.test(t))) return null;
  for (const rule of RULES) {
    if (rule.re.test(t) && !(rule.stampedOnly && line.ts === null)) return { rule, text: t };
  }
  return null;
}

interface Incident {
  rule: Rule | null; // null while only "cut here" has been seen
  header: DmesgLine;
  triggers: string[];
  lines: DmesgLine[];
  seen: number; // lines consumed, including those past the excerpt cap
  banner: Family | undefined;
  inPreamble: boolean;
  inTrace: boolean;
  key: string | undefined;
}

const keyOf = (d: Detection): string | undefined => d.rule.joinKey?.(d.text);

function open(line: DmesgLine, d: Detection | null): Incident {
  const rule = d ? d.rule : null;
  return {
    rule,
    header: line,
    triggers: d ? [d.text] : [],
    lines: [line],
    seen: 1,
    banner: rule?.role === 'banner' ? rule.family : undefined,
    inPreamble: true,
    // A one-line message has no preamble: anything that is not a stack dump ends it.
    inTrace: rule?.shape === 'line',
    key: d ? keyOf(d) : undefined,
  };
}

function append(inc: Incident, line: DmesgLine): void {
  inc.seen++;
  if (inc.lines.length < EXCERPT_MAX_LINES) inc.lines.push(line);
}

// Whether header `d` belongs to the report `inc` is still printing rather than starting one.
function absorbs(inc: Incident, d: Detection): boolean {
  const r = d.rule;
  if (inc.key !== undefined && inc.rule?.joinKey === r.joinKey && keyOf(d) === inc.key) {
    return true;
  }
  if (!inc.inPreamble) return false;
  // After "cut here" the first header names the report, whatever it is.
  if (inc.rule === null) return true;
  if (r.role === 'banner') {
    if (inc.banner === undefined) return inc.rule.role === 'lead';
    // BUG() traps, and die() prints its own "invalid opcode"/"Internal error: Oops - BUG" banner.
    return inc.banner === 'bug' && r.family === 'oops';
  }
  // arm32 and older kernels print the WARN message after the WARNING line, not before it.
  return (
    (r.kind === 'refcount' || r.kind === 'list-corruption') &&
    inc.rule.kind === 'warning' &&
    inc.rule.role === 'banner'
  );
}

function absorb(inc: Incident, line: DmesgLine, d: Detection): void {
  append(inc, line);
  inc.triggers.push(d.text);
  const r = d.rule;
  if (r.role === 'banner' && inc.banner === undefined) inc.banner = r.family;
  // The most specific line names the incident: the refcount_t or list_del message rather than
  // the generic WARNING/BUG banner that carries it; the banner when "cut here" was all so far.
  if (inc.rule === null || (r.role === 'lead' && inc.rule.kind === 'warning')) {
    inc.rule = r;
    inc.header = line;
    inc.key = keyOf(d);
    if (r.shape === 'line') inc.inTrace = true;
  }
}

// "WARNING: CPU: 0 PID: 1 at fs/dax.c:398 dax_disassociate_entry+0x4f/0x60" and the 2025 form
// "WARNING: fs/dax.c:398 at dax_disassociate_entry+0x4f/0x60, CPU#0: comm/1".
const WARN_SITE_RE = /^WARNING: (?:CPU: \d+ PID: \d+ at (\S+:\d+) ([\w.$]+)\+0x|(\S+:\d+) at ([\w.$]+)\+0x|at (\S+:\d+) ([\w.$]+)\+0x)/;
const BUG_SITE_RE = /^[Kk]ernel BUG at (\S+:\d+)!/;
// The faulting instruction: x86 "RIP: 0010:bio_first_folio+0x28/0x40", arm64 "pc : f+0x..", powerpc "NIP [..] f+0x..".
const PC_RE = /^(?:RIP: [0-9a-f]{4}:|EIP: |pc : |NIP \[[0-9a-f]+\] |PC is at )([\w.$]+)\+0x/;

/** Returns where an incident happened: the WARN/BUG site or the first kernel RIP of its report. */
export function locateIncident(lines: readonly DmesgLine[]): { function: string | null; file: string | null } {
  let fn: string | null = null;
  let file: string | null = null;
  for (const l of lines) {
    const t = l.text.trim();
    const w = WARN_SITE_RE.exec(t);
    if (w) {
      file ??= w[1] ?? w[3] ?? w[5] ?? null;
      fn ??= w[2] ?? w[4] ?? w[6] ?? null;
    }
    const b = BUG_SITE_RE.exec(t);
    if (b) file ??= b[1] ?? null;
    const pc = PC_RE.exec(t);
    if (pc) fn ??= pc[1] ?? null;
    if (fn && file) break;
  }
  return { function: fn, file };
}

/**
 * Returns one finding per incident in `lines` — a WARNING with its register and stack dump is one
 * finding — minus those whose header lines match an `allow` pattern.
 */
export function scanDmesg(lines: DmesgLine[], opts: ScanOptions = {}): DmesgFinding[] {
  // A /g or /y pattern keeps state between test() calls; strip those flags so order cannot matter.
  const allow = (opts.allow ?? []).map((re) => new RegExp(re.source, re.flags.replace(/[gy]/g, '')));
  const findings: DmesgFinding[] = [];
  let cur: Incident | null = null;

  const close = (): void => {
    if (!cur) return;
    const inc = cur;
    cur = null;
    const kind: FindingKind = inc.rule?.kind ?? 'warning';
    const triggers = inc.triggers.length > 0 ? inc.triggers : [inc.header.text.trim()];
    // Allowed only if every line that named the incident is allowed: an expected line must not
    // carry an unexpected one joined to it ("Recovered" next to "forcibly killing").
    if (allow.length > 0 && triggers.every((t) => allow.some((re) => re.test(t)))) return;
    findings.push({ kind, line: inc.header, ...locateIncident(inc.lines), excerpt: inc.lines.map(formatDmesgLine) });
  };

  for (const line of lines) {
    const text = line.text;
    const trimmed = text.trim();

    // Test markers and a new boot are outside every report.
    if (MARKER_RE.test(trimmed) || BOOT_BANNER_RE.test(trimmed)) {
      close();
      continue;
    }

    if (CUT_HERE_RE.test(trimmed)) {
      const inc: Incident | null = cur;
      // list_del/refcount messages may come before "cut here" (CHECK_DATA_CORRUPTION's pr_err).
      if (inc && inc.inPreamble && inc.rule?.role === 'lead' && inc.banner === undefined) {
        append(inc, line);
        continue;
      }
      close();
      cur = open(line, null);
      continue;
    }

    const d = detect(line);
    if (d) {
      const inc: Incident | null = cur;
      if (inc && absorbs(inc, d)) {
        absorb(inc, line, d);
        continue;
      }
      close();
      cur = open(line, d);
      continue;
    }

    const inc: Incident | null = cur;
    if (!inc) continue;

    if (END_TRACE_RE.test(trimmed)) {
      append(inc, line);
      close();
      continue;
    }
    if (inc.rule?.bracketed && BAR_RE.test(trimmed)) {
      append(inc, line);
      close();
      continue;
    }
    if (inc.inTrace && !inc.rule?.bracketed && !isBodyLine(text)) {
      close();
      continue;
    }

    append(inc, line);
    if (BODY_ANCHOR_RE.test(trimmed)) inc.inPreamble = false;
    if (TRACE_START_RE.test(trimmed)) inc.inTrace = true;
    if (inc.inPreamble && inc.seen > (inc.rule?.preambleMax ?? PREAMBLE_MAX)) {
      // No stack dump came: a lone "cut here" is still a warning, and the report is over as
      // soon as a line is not part of a dump, rather than swallowing the log that follows.
      inc.inPreamble = false;
      inc.inTrace = true;
    }
  }
  close();
  return findings;
}

// ---------------------------------------------------------------------------------------------
// Taint (Documentation/admin-guide/tainted-kernels.rst, /proc/sys/kernel/tainted)

/** One taint bit: its number, the letter in "Tainted:" lines, and what set it. */
export interface TaintFlag {
  bit: number;
  letter: string;
  meaning: string;
}

/** The taint bits the kernel defines, indexed by bit number. */
export const TAINT_FLAGS: readonly TaintFlag[] = Object.freeze([
  { bit: 0, letter: 'P', meaning: 'proprietary module was loaded' },
  { bit: 1, letter: 'F', meaning: 'module was force loaded' },
  { bit: 2, letter: 'S', meaning: 'kernel running on an out of specification system' },
  { bit: 3, letter: 'R', meaning: 'module was force unloaded' },
  { bit: 4, letter: 'M', meaning: 'processor reported a Machine Check Exception (MCE)' },
  { bit: 5, letter: 'B', meaning: 'bad page referenced or some unexpected page flags' },
  { bit: 6, letter: 'U', meaning: 'taint requested by userspace application' },
  { bit: 7, letter: 'D', meaning: 'kernel died recently, i.e. there was an OOPS or BUG' },
  { bit: 8, letter: 'A', meaning: 'an ACPI table was overridden by user' },
  { bit: 9, letter: 'W', meaning: 'kernel issued warning' },
  { bit: 10, letter: 'C', meaning: 'staging driver was loaded' },
  { bit: 11, letter: 'I', meaning: 'workaround for bug in platform firmware applied' },
  { bit: 12, letter: 'O', meaning: 'externally-built ("out-of-tree") module was loaded' },
  { bit: 13, letter: 'E', meaning: 'unsigned module was loaded' },
  { bit: 14, letter: 'L', meaning: 'soft lockup occurred' },
  { bit: 15, letter: 'K', meaning: 'kernel has been live patched' },
  { bit: 16, letter: 'X', meaning: 'auxiliary taint, defined for and used by distros' },
  { bit: 17, letter: 'T', meaning: 'kernel was built with the struct randomization plugin' },
  { bit: 18, letter: 'N', meaning: 'an in-kernel test has been run' },
  { bit: 19, letter: 'J', meaning: 'userspace used a mutating debug operation in fwctl' },
].map((f) => Object.freeze(f)));

function checkMask(mask: number, name: string): void {
  if (!Number.isSafeInteger(mask) || mask < 0) {
    throw new RangeError(`${name} must be a non-negative integer as read from /proc/sys/kernel/tainted, got ${mask}`);
  }
}

// Arithmetic instead of `&`: JavaScript bit operators truncate to 32 bits.
function hasBit(mask: number, bit: number): boolean {
  return Math.floor(mask / 2 ** bit) % 2 === 1;
}

/** Returns the flags set in a taint mask, lowest bit first; bits newer than this table show as "?". */
export function parseTaint(mask: number): TaintFlag[] {
  checkMask(mask, 'taint mask');
  const flags: TaintFlag[] = [];
  for (let bit = 0, rest = mask; rest > 0; bit++, rest = Math.floor(rest / 2)) {
    if (rest % 2 === 1) flags.push(TAINT_FLAGS[bit] ?? { bit, letter: '?', meaning: `unknown taint bit ${bit}` });
  }
  return flags;
}

/** Returns the flags set in `after` that were not set in `before` (taint is never cleared). */
export function taintDelta(before: number, after: number): TaintFlag[] {
  checkMask(before, 'taint before');
  return parseTaint(after).filter((f) => !hasBit(before, f.bit));
}

// W, D, B, L and M are what the kernel sets when it warns, dies, frees a bad page, locks up or
// takes a machine check. O and E are set on purpose: the harness loads its own unsigned
// out-of-tree probe module.
const FAILURE_TAINT_BITS: ReadonlySet<number> = new Set([4, 5, 7, 9, 14]);

/** Returns whether a newly set taint bit means the kernel misbehaved. */
export function isFailureTaint(bit: number): boolean {
  return FAILURE_TAINT_BITS.has(bit);
}

/** Returns the failure taint flags set in `after` that were not set in `before`. */
export function failureTaintDelta(before: number, after: number): TaintFlag[] {
  return taintDelta(before, after).filter((f) => isFailureTaint(f.bit));
}

/** Returns a finding in words: "warning in dax_disassociate_entry (fs/dax.c:398)". */
export function describeFinding(f: { kind: string; function: string | null; file: string | null }): string {
  return `${f.kind}${f.function ? ` in ${f.function}` : ''}${f.file ? ` (${f.file})` : ''}`;
}
