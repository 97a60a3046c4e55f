// What a series' author reads in the morning (pure): the verdict of each kernel line, a reply
// ready to send (.eml, In-Reply-To the cover letter) and patchwork checks, one per patch.
import type { QueuedSeries } from './queue.js';

/** A new failure the series brought, with where bisect put it and the evidence. */
export interface NewFailure {
  /** fs/test */
  point: string;
  /** How it fails (and, for a changed failure, how it failed on the base). */
  detail: string;
  /** 1-based index among the patches with a diff; null when bisect could not tell. */
  firstBad: number | null;
  firstBadSubject: string | null;
  /** Why the first bad patch is unknown, or the range it lies in. */
  unknown: string | null;
  /** The dmesg lines, failed checks and reason, cut short. */
  evidence: string[];
}

/** The verdict of one kernel line. `not run` and `does not apply` are never a success. */
export interface LineVerdict {
  line: string;
  status: 'pass' | 'new failures' | 'does not apply' | 'not run';
  /** The commit the series was applied to. */
  base: string | null;
  /** For does not apply / not run: what happened. */
  reason: string | null;
  newFailures: NewFailure[];
  fixed: string[];
  /** Infrastructure trouble that left some point without a verdict (named, never hidden). */
  infra: string[];
  /** For does not apply: what git am said (the conflict). */
  evidence: string[];
  campaignDir: string | null;
}

export interface SeriesVerdict {
  id: string;
  name: string;
  thread: QueuedSeries['thread'];
  patches: { subject: string; messageId: string | null }[];
  lines: LineVerdict[];
  /** pass: every line ran and nothing broke; fail: a new failure or does not apply; incomplete:
   *  a line did not run (or lost points to infrastructure) and nothing failed. */
  overall: 'pass' | 'fail' | 'incomplete';
}

/** Returns the series' overall verdict from its lines. */
export function overallOf(lines: LineVerdict[]): SeriesVerdict['overall'] {
  if (lines.some((l) => l.status === 'new failures' || l.status === 'does not apply')) return 'fail';
  if (lines.some((l) => l.status === 'not run' || l.infra.length > 0)) return 'incomplete';
  return 'pass';
}

const SUMMARY: Record<SeriesVerdict['overall'], string> = {
  pass: 'no new failure on any kernel line',
  fail: 'NEW FAILURES or a line the series does not apply to',
  incomplete: 'no new failure, but NOT every kernel line was tested (see below): this is not a pass',
};

// RFC 5322 wants lines under 998 octets; kernel mail under 80 columns. Evidence lines (dmesg)
// are cut, not wrapped, so they stay greppable.
const cut = (s: string, n = 76): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** Returns the text of the reply (the body only). */
export function formatReplyBody(v: SeriesVerdict, opts: { resultsHint?: string } = {}): string {
  const out: string[] = [
    `dax-harness ran the fs-DAX refcount suite on this series (patchset ${v.id.slice(0, 12)},`,
    `${v.patches.length} patch(es)) on ${v.lines.length} kernel line(s).`,
    '',
    `Verdict: ${v.overall.toUpperCase()}: ${SUMMARY[v.overall]}.`,
    '',
  ];
  for (const l of v.lines) {
    const base = l.base ? ` (base ${l.base.slice(0, 12)})` : '';
    switch (l.status) {
      case 'pass':
        out.push(`${l.line}${base}: no new failure${l.fixed.length ? `; fixed: ${l.fixed.join(', ')}` : ''}.`);
        break;
      case 'new failures':
        out.push(`${l.line}${base}: ${l.newFailures.length} new failure(s):`);
        for (const f of l.newFailures) {
          const where = f.firstBad !== null ? `first bad patch ${f.firstBad}/${v.patches.length}: "${f.firstBadSubject ?? ''}"` : `first bad patch unknown (${f.unknown ?? 'not bisected'})`;
          // Evidence is cut long, never wrapped: a check name or a dmesg line stays greppable.
          out.push('', `  ${f.point}: ${where}`, `    ${cut(f.detail, 200)}`, ...f.evidence.slice(0, 12).map((e) => `    > ${cut(e, 200)}`));
        }
        out.push('');
        break;
      case 'does not apply':
        out.push(`${l.line}: does not apply to ${l.base ? l.base.slice(0, 12) : 'the base'}: ${l.reason ?? ''}`, ...l.evidence.slice(0, 20).map((e) => `    > ${cut(e, 200)}`));
        break;
      case 'not run':
        out.push(`${l.line}: NOT RUN: ${l.reason ?? 'unknown reason'}`);
        break;
    }
    for (const i of l.infra) out.push(`  not judged (infrastructure, not the series): ${cut(i, 60)}`);
  }
  out.push('', '-- ', `dax-harness${opts.resultsHint ? `; evidence: ${opts.resultsHint}` : ''}`, '');
  return out.join('\n');
}

// RFC 2047 encoded-word for a header with non-ASCII text (an author's name, a subject).
function headerText(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;
}

/** Returns a reply ready to send as an .eml: In-Reply-To and References the series' thread. */
export function formatReplyEml(v: SeriesVerdict, opts: { from: string; date: Date; messageIdDomain?: string; resultsHint?: string }): string {
  const subject = v.thread.subject.startsWith('Re:') ? v.thread.subject : `Re: ${v.thread.subject}`;
  const ref = v.thread.messageId ? `<${v.thread.messageId}>` : null;
  const headers = [
    `From: ${opts.from}`,
    `To: ${headerText(v.thread.from || 'unknown')}`,
    `Subject: ${headerText(subject)}`,
    `Date: ${opts.date.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <dax-harness.${v.id.slice(0, 16)}.${opts.date.getTime()}@${opts.messageIdDomain ?? 'dax-harness.invalid'}>`,
    ...(ref ? [`In-Reply-To: ${ref}`, `References: ${ref}`] : []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    `X-Dax-Harness-Verdict: ${v.overall}`,
  ];
  return `${headers.join('\r\n')}\r\n\r\n${formatReplyBody(v, opts).replace(/\r?\n/g, '\r\n')}`;
}

/** A patchwork check (POST /api/patches/ID/checks/): state, context, description. */
export interface PatchworkCheck {
  patch: string;
  messageId: string | null;
  state: 'success' | 'warning' | 'fail';
  context: string;
  description: string;
}

/** Returns one check per patch and kernel line: fail on the first bad patch (or every patch when
 *  the culprit is unknown or the series does not apply), warning where a line did not run. */
export function planPatchworkChecks(v: SeriesVerdict): PatchworkCheck[] {
  return v.lines.flatMap((l) =>
    v.patches.map((p, i): PatchworkCheck => {
      const context = `dax-harness-${l.line}`;
      const mine = l.newFailures.filter((f) => f.firstBad === i + 1);
      const unknown = l.newFailures.filter((f) => f.firstBad === null);
      const base = { patch: p.subject, messageId: p.messageId, context };
      if (l.status === 'does not apply') return { ...base, state: 'fail', description: cut(`the series does not apply: ${l.reason ?? ''}`, 140) };
      if (l.status === 'not run') return { ...base, state: 'warning', description: cut(`not tested: ${l.reason ?? ''}`, 140) };
      if (mine.length > 0) return { ...base, state: 'fail', description: cut(`first bad patch of ${mine.map((f) => f.point).join(', ')}`, 140) };
      if (unknown.length > 0) return { ...base, state: 'fail', description: cut(`the series breaks ${unknown.map((f) => f.point).join(', ')}; the patch could not be told`, 140) };
      if (l.infra.length > 0) return { ...base, state: 'warning', description: `${l.infra.length} point(s) not judged (infrastructure)` };
      if (l.newFailures.length > 0) return { ...base, state: 'success', description: 'not the first bad patch of any new failure' };
      return { ...base, state: 'success', description: 'no new failure' };
    }),
  );
}
