// The nightly: claims each waiting series of a queue, runs it as --baseline --bisect on every
// kernel line of the queue, and files its verdict, a reply ready to send and patchwork checks
// under done/<patchset hash>/. Nothing is sent: that is for the one who reads the verdicts.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '../core/proc.js';
import { runBaselineCampaign, type BaselineResult } from '../campaign/campaign.js';
import type { HarnessConfig } from '../config.js';
import { formatError, HarnessError } from '../core/errors.js';
import { isNewFailure } from '../campaign/compare.js';
import type { TestRecord } from '../run/run.js';
import { claimNext, ensureQueue, fileDone, planQueueLayout, readQueueConfig, requeueAbandoned, type Claimed, type QueueConfig, type QueueLine } from './queue.js';
import { formatReplyEml, overallOf, planPatchworkChecks, type LineVerdict, type NewFailure, type SeriesVerdict } from './reply.js';

/** Returns the argv of one line's campaign for a claimed series (resolved like a user's command). */
export function planLineArgv(line: QueueLine, c: Claimed, qc: QueueConfig, resultsDir: string, extra: string[] = []): string[] {
  const base = c.series.base ?? line.base;
  return [
    'run',
    '--tree',
    line.tree,
    '--series',
    c.path,
    '--bisect',
    ...(base ? ['--base', base] : []),
    ...(qc.tests ? ['--tests', qc.tests] : []),
    ...(qc.fs ? ['--fs', qc.fs] : []),
    '--results',
    resultsDir,
    ...extra,
  ];
}

// The evidence of a new failure in the reply: why, the failed checks, the dmesg lines.
function evidenceOf(rec: TestRecord | undefined): string[] {
  if (!rec) return [];
  return [...rec.checks.filter((c) => !c.ok).map((c) => `check: ${c.name}: expected ${c.expected}, observed ${c.actual}`), ...rec.dmesgExcerpt.filter((l) => /WARNING|BUG|Oops|RIP:|Call Trace|refcount|page:/.test(l)).slice(0, 8)];
}

/** Returns the verdict of one line from what its campaign found (pure). */
export function lineVerdictOf(line: string, r: BaselineResult): LineVerdict {
  const common = { line, base: r.base.commit, campaignDir: r.campaignDir, fixed: [] as string[], newFailures: [] as NewFailure[], evidence: [] as string[] };
  if (!r.comparison || !r.base.summary || !r.series.summary) {
    const why = r.base.error ?? r.series.error ?? 'a kernel did not build or boot';
    return { ...common, status: 'not run', reason: `infrastructure: ${why.split('\n')[0]}`, infra: [] };
  }
  const records = new Map(r.series.summary.records.map((x) => [`${x.fs}/${x.test}`, x]));
  const newFailures = r.comparison.filter(isNewFailure).map((c): NewFailure => {
    const culprit = r.culprits?.find((x) => x.point === c.point) ?? null;
    const rec = records.get(c.point);
    return {
      point: c.point,
      detail: c.detail ?? rec?.reason ?? c.change,
      firstBad: culprit?.patch ?? null,
      firstBadSubject: culprit?.subject ?? null,
      unknown: culprit ? (culprit.patch === null ? `between patches ${culprit.between?.join(' and ')}: ${culprit.why ?? ''}` : null) : 'not bisected',
      evidence: evidenceOf(rec),
    };
  });
  const infra = [...r.base.summary.records.map((x) => ({ x, on: 'base' })), ...r.series.summary.records.map((x) => ({ x, on: 'series' }))]
    .filter(({ x }) => x.outcome === 'error')
    .map(({ x, on }) => `${on} ${x.fs}/${x.test}: ${x.reason}`);
  return {
    ...common,
    status: newFailures.length > 0 ? 'new failures' : 'pass',
    reason: null,
    newFailures,
    fixed: r.comparison.filter((c) => c.change === 'fixed').map((c) => c.point),
    infra,
  };
}

export interface NightlyOptions {
  queueDir: string;
  resultsDir: string;
  /** Resolves a campaign's argv into a configuration (the CLI's resolveConfig). */
  configFor: (argv: string[]) => HarnessConfig;
  /** Passed to every campaign (e.g. --infra-retries 2). */
  extraArgs?: string[];
  from: string;
  out: (line: string) => void;
  log: (s: string) => void;
  /** Stop after this many series (default: until the queue is empty). */
  max?: number;
  /** Send each reply through this command (its stdin: the .eml), e.g. sendmail -t -oi. Only
   *  with this explicit option does anything leave the machine. */
  sendWith?: string[];
}

/** Sends a filed reply with the given command unless it was sent before; records the outcome in
 *  sent.json beside it. A failed send keeps the reply for a later try and is said, never hidden. */
export async function sendReply(dir: string, argv: string[], log: (s: string) => void): Promise<boolean> {
  const sent = join(dir, 'sent.json');
  if (existsSync(sent) && (JSON.parse(readFileSync(sent, 'utf8')) as { exitCode: number | null }).exitCode === 0) return true;
  const r = await runCommand({ argv, input: readFileSync(join(dir, 'reply.eml')), timeoutMs: 60_000 });
  writeFileSync(sent, `${JSON.stringify({ at: new Date().toISOString(), argv, exitCode: r.exitCode, timedOut: r.timedOut, stderr: r.stderr.slice(-2000) }, null, 2)}\n`);
  if (r.exitCode !== 0) log(`sending ${join(dir, 'reply.eml')} with ${argv.join(' ')} failed (${r.timedOut ? 'timed out after 60 s' : `exit ${r.exitCode}`}): ${r.stderr.trim().split('\n').pop() ?? ''}; the reply is kept, send it by hand or let the next nightly retry`);
  return r.exitCode === 0;
}

export interface NightlyResult {
  done: { id: string; name: string; overall: SeriesVerdict['overall']; dir: string }[];
  duplicates: string[];
}

/** Works through the queue until it is empty (or max series are done). */
export async function runNightly(o: NightlyOptions): Promise<NightlyResult> {
  const q = planQueueLayout(o.queueDir);
  ensureQueue(q);
  const qc = readQueueConfig(q);
  const result: NightlyResult = { done: [], duplicates: [] };
  for (const name of requeueAbandoned(q)) o.log(`${name}: its worker on this host is gone; put back in the queue`);
  for (;;) {
    if (o.max !== undefined && result.done.length >= o.max) break;
    const c = claimNext(q, (name, id) => {
      result.duplicates.push(name);
      o.log(`${name}: already tested as ${id.slice(0, 12)} (same patches): filed as a duplicate`);
    });
    if (!c) break;
    o.log(`series ${c.series.name} (${c.series.id.slice(0, 12)}, ${c.series.patches.filter((p) => p.hasDiff).length} patch(es)): ${qc.lines.length} kernel line(s)`);
    const lines: LineVerdict[] = [];
    for (const line of qc.lines) {
      const base = c.series.base ?? line.base;
      try {
        const cfg = o.configFor(planLineArgv(line, c, qc, o.resultsDir, o.extraArgs));
        o.out(`# series ${c.series.name} on ${line.name}`);
        const r = await runBaselineCampaign(cfg, o.out, o.log);
        lines.push(lineVerdictOf(line.name, r));
      } catch (err) {
        const none = { line: line.name, base, newFailures: [], fixed: [], infra: [], campaignDir: null };
        // git am refusing the series is the series' result; anything else is a line not run.
        if (err instanceof HarnessError && /does not apply to/.test(err.message)) {
          lines.push({ ...none, status: 'does not apply', reason: err.message, evidence: (err.detail ?? '').split('\n').filter(Boolean).slice(0, 20) });
        } else {
          const msg = err instanceof HarnessError ? err.message : formatError(err).replace(/^dax-harness: /, '').split('\n')[0]!;
          lines.push({ ...none, status: 'not run', reason: msg, evidence: [] });
        }
      }
      o.log(`series ${c.series.name} on ${line.name}: ${lines[lines.length - 1]!.status}`);
    }
    const withDiff = c.series.patches.filter((p) => p.hasDiff);
    const verdict: SeriesVerdict = {
      id: c.series.id,
      name: c.series.name,
      thread: c.series.thread,
      patches: withDiff.map((p) => ({ subject: p.subject, messageId: p.messageId })),
      lines,
      overall: overallOf(lines),
    };
    const dir = fileDone(q, c, {
      'reply.eml': formatReplyEml(verdict, { from: o.from, date: new Date(), resultsHint: lines.map((l) => l.campaignDir).filter(Boolean).join(', ') || undefined }),
      'patchwork-checks.json': `${JSON.stringify(planPatchworkChecks(verdict), null, 2)}\n`,
      'verdict.json': `${JSON.stringify(verdict, null, 2)}\n`,
    });
    o.out(`# series ${c.series.name}: ${verdict.overall} (${join(dir, 'reply.eml')})`);
    if (o.sendWith) await sendReply(dir, o.sendWith, o.log);
    result.done.push({ id: verdict.id, name: verdict.name, overall: verdict.overall, dir });
  }
  return result;
}
