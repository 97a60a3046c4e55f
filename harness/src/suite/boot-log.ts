// The kernel log outside the test windows (pure). Each test is judged on the lines between its
// BEGIN and END markers; whatever the kernel reports during the boot, the guest set-up, between
// two tests or after the last one belongs to no test, and is judged here instead, so an
// incident there can never go unread.
import { scanDmesg, type DmesgFinding, type DmesgLine } from './dmesg.js';

/** A stretch of log outside every test window: which test came before it and which after. */
export interface OutsideStretch {
  /** The test window it follows (null: from the start of the boot). */
  after: string | null;
  /** The test window it precedes (null: to the end of the log). */
  before: string | null;
  lines: DmesgLine[];
}

/** An incident outside the test windows, with where it happened. */
export interface OutsideFinding {
  boot: number;
  /** "boot and set-up, before ext4-mmap-fault-4k", "between ext4-a and ext4-b", ... */
  where: string;
  finding: DmesgFinding;
}

/** Failure taint bits the kernel gained outside the test windows. */
export interface OutsideTaint {
  boot: number;
  where: string;
  letters: string[];
}

const BEGIN_RE = /^dax-harness: BEGIN (\S+)$/;
const END_RE = /^dax-harness: END (\S+)$/;

/** Returns the stretches of a boot's log that lie outside every BEGIN/END window. */
export function splitOutsideWindows(lines: readonly DmesgLine[]): OutsideStretch[] {
  const out: OutsideStretch[] = [];
  let after: string | null = null;
  let inside: string | null = null;
  let cur: DmesgLine[] = [];
  for (const l of lines) {
    const t = l.text.trim();
    const begin = BEGIN_RE.exec(t);
    if (begin) {
      if (inside === null) out.push({ after, before: begin[1]!, lines: cur });
      // A BEGIN inside an open window: the earlier test never wrote its END (it crashed the
      // guest or lost its connection); its window ends here, as sliceBetweenMarkers has it.
      inside = begin[1]!;
      cur = [];
      continue;
    }
    const end = END_RE.exec(t);
    if (end && inside === end[1]) {
      inside = null;
      after = end[1]!;
      cur = [];
      continue;
    }
    if (inside === null) cur.push(l);
  }
  if (inside === null) out.push({ after, before: null, lines: cur });
  return out;
}

/** Returns where a stretch lies, in words. */
export function describeStretch(s: Pick<OutsideStretch, 'after' | 'before'>): string {
  if (s.after === null && s.before === null) return 'boot and set-up (no test ran)';
  if (s.after === null) return `boot and set-up, before ${s.before}`;
  if (s.before === null) return `after ${s.after}, the last test of this boot`;
  return `between ${s.after} and ${s.before}`;
}

/** Returns the incidents of one boot's log that no test window holds. */
export function scanOutsideWindows(boot: number, lines: readonly DmesgLine[]): OutsideFinding[] {
  return splitOutsideWindows(lines).flatMap((s) => scanDmesg(s.lines).map((finding) => ({ boot, where: describeStretch(s), finding })));
}
