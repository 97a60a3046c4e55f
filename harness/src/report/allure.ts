// The dashboard: an Allure Report 3 built from run records. planAllureResults is pure (one
// run's points as Allure result files); runAllureReport folds earlier runs into Allure's
// history, one history entry per run, then renders the latest run of each kernel line.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { AllureReport, resolveConfig } from '@allurereport/core';
import { HarnessError } from '../core/errors.js';
import { describeFinding } from '../suite/dmesg.js';
import type { Outcome, TestRecord } from '../run/run.js';
import { formatKnownEntry } from './junit.js';
import { planLineHistory, type PointHistory } from './line-history.js';
import { basename } from 'node:path';
import { byStartTime, findCampaigns, lineKey, type RunRecords } from './run-records.js';

export interface AllureFile {
  name: string;
  content: string;
}

type AllureStatus = 'passed' | 'failed' | 'broken' | 'skipped';

/** Returns the Allure status of an outcome: a known failure is still failed (marked known). */
export function allureStatus(o: Outcome): AllureStatus {
  switch (o) {
    case 'pass':
      return 'passed';
    case 'skip':
      return 'skipped';
    case 'error':
      return 'broken';
    default:
      return 'failed';
  }
}

// A uuid that is the same for the same run and point, so a report made twice is identical.
function uuidOf(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\0')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Returns the environment name a run's points are shown under: kernel line on target. */
export function environmentOf(r: RunRecords): string {
  return lineKey(r);
}

// What a reader needs first on a red point: why, the checks that failed, the incidents.
function statusMessage(rec: TestRecord): { message: string; trace: string } {
  const failed = rec.checks.filter((c) => !c.ok).map((c) => `check failed: ${c.name}: expected ${c.expected}, observed ${c.actual}`);
  const incidents = rec.findings.map((f) => `dmesg: ${describeFinding(f)}: ${f.line}`);
  const message = rec.outcome === 'xfail' ? `known failure: ${formatKnownEntry(rec)}` : rec.reason;
  return { message, trace: [...failed, ...incidents, ...(rec.dmesgExcerpt.length > 0 ? ['', ...rec.dmesgExcerpt] : [])].join('\n') };
}

/** Returns the Allure result files of one run: a result JSON per point and its attachments. */
export function planAllureResults(r: RunRecords, history: Map<string, PointHistory>, runFiles: { console?: string; buildLog?: string } = {}): AllureFile[] {
  const files: AllureFile[] = [];
  const start = Date.parse(r.run.startedAt);
  let clock = start;
  const env = environmentOf(r);
  for (const rec of r.tests) {
    const uuid = uuidOf(r.run.runId, rec.id);
    const attachments: { name: string; source: string; type: string }[] = [];
    const attach = (name: string, content: string, ext = 'txt', type = 'text/plain'): void => {
      const source = `${uuidOf(r.run.runId, rec.id, name)}-attachment.${ext}`;
      files.push({ name: source, content });
      attachments.push({ name, source, type });
    };
    if (rec.dmesgExcerpt.length > 0) attach('dmesg window', `${rec.dmesgExcerpt.join('\n')}\n`);
    if (rec.report) attach('helper report (JSON)', `${JSON.stringify(rec.report, null, 2)}\n`, 'json', 'application/json');
    if (rec.stderr.trim()) attach('helper stderr', rec.stderr);
    if (rec.attempts.length > 1) attach('attempts', `${rec.attempts.map((a) => `attempt ${a.attempt} (boot ${a.boot ?? '-'}): ${a.outcome} ${a.reason}`).join('\n')}\n`);
    // The whole-run logs belong to the point that judges the whole kernel log, and to points
    // whose guest died (their evidence is on the console).
    const wholeRun = rec.test === 'kernel-log' || rec.outcome === 'crash' || rec.outcome === 'timeout';
    if (wholeRun && runFiles.console) attach('console.log', runFiles.console);
    if (rec.test === 'kernel-log' && runFiles.buildLog) attach('build.log', runFiles.buildLog);
    const h = history.get(rec.id);
    const labels: { name: string; value: string }[] = [
      { name: 'parentSuite', value: env },
      { name: 'suite', value: rec.fs },
      { name: 'subSuite', value: rec.test },
      { name: 'feature', value: rec.test },
      { name: 'kernel', value: r.run.kernel.release },
      { name: 'build', value: r.build },
      { name: 'model', value: r.run.model?.name ?? 'unknown' },
      { name: 'target', value: r.target },
      { name: 'run', value: r.run.runId },
      { name: 'outcome', value: rec.outcome },
      { name: 'tag', value: rec.outcome === 'xfail' ? 'known failure' : rec.outcome },
    ];
    if (h) labels.push({ name: 'change', value: h.change });
    if (h?.previousRun) labels.push({ name: 'compared with', value: h.previousRun });
    if (r.source.series) labels.push({ name: 'series', value: r.source.series.hash.slice(0, 12) });
    const { message, trace } = statusMessage(rec);
    const stop = clock + rec.durationMs;
    const result = {
      uuid,
      // Stable across runs: the same point on the same kernel line and target.
      testCaseId: `dax.${rec.fs}.${rec.test}`,
      fullName: `dax.${rec.fs}.${rec.test}`,
      name: `${rec.fs} ${rec.test}`,
      status: allureStatus(rec.outcome),
      statusDetails: {
        message: rec.outcome === 'pass' ? '' : message,
        trace: rec.outcome === 'pass' ? '' : trace,
        known: rec.outcome === 'xfail',
        flaky: h?.flaky ?? false,
      },
      stage: 'finished',
      description: [
        `${rec.outcome}${rec.knownAs ? ` (the kernel's failure: ${rec.knownAs})` : ''}: ${rec.reason}`,
        ...(rec.known ? ['', `Known failure: ${rec.known.reason}`, '', `Evidence: ${rec.known.evidence}`] : []),
        ...(h?.flakyWhy ? ['', `Flaky: ${h.flakyWhy}`] : []),
        ...(h && h.change !== 'first run' ? ['', `Against ${h.previousRun}: ${h.change}`] : []),
      ].join('\n'),
      start: clock,
      stop,
      parameters: [
        { name: 'kernel line', value: r.source.line },
        { name: 'target', value: r.target },
      ],
      labels,
      steps: rec.checks.map((c) => ({
        name: `${c.ok ? '✓' : '✗'} ${c.name}: expected ${c.expected}, observed ${c.actual}`,
        status: c.ok ? 'passed' : 'failed',
        stage: 'finished',
        parameters: [
          { name: 'expected', value: c.expected },
          { name: 'observed', value: c.actual },
        ],
        start: clock,
        stop,
      })),
      attachments,
    };
    clock = stop;
    files.push({ name: `${uuid}-result.json`, content: JSON.stringify(result) });
  }
  return files;
}

// The trend charts a kernel developer reads; Allure's severity, epic and story charts have no
// meaning here. `feature` is the test, so stability is shown per test across the nights.
const CHARTS = [
  { type: 'currentStatus', title: 'Current status' },
  { type: 'statusDynamics', title: 'Status night after night' },
  { type: 'statusTransitions', title: 'New failures and fixes' },
  { type: 'problemsDistribution', by: 'environment', title: 'Problems by kernel line' },
  { type: 'stabilityDistribution', title: 'Stability by test', skipStatuses: ['skipped', 'unknown'], threshold: 90, groupBy: 'feature' },
  { type: 'durationDynamics', title: 'Durations night after night' },
  { type: 'statusAgePyramid', title: 'Status age' },
];

/** Allure categories: first match wins, so the most urgent come first. */
export const ALLURE_CATEGORIES = [
  { name: 'New kernel failures', matchers: [{ statuses: ['failed'], labels: { change: '^(new failure|changed failure)$' } }] },
  { name: 'Known kernel failures', matchers: [{ labels: { outcome: '^xfail$' } }] },
  { name: 'Flaky', matchers: [{ flaky: true }] },
  { name: 'Kernel failures', matchers: [{ statuses: ['failed'] }] },
  { name: 'Infrastructure errors (not the kernel)', matchers: [{ statuses: ['broken'] }] },
  { name: 'Fixed since the previous run', matchers: [{ statuses: ['passed'], labels: { change: '^fixed$' } }] },
];

/** Returns one line per kernel line's latest run: what a reader of the dashboard checks first. */
export function formatRunSummary(latest: RunRecords[]): string {
  return latest
    .map((r) => {
      const boots = (r.run.boots ?? []).map((b) => b.bootToSshMs).filter((x): x is number => typeof x === 'number');
      const counts = Object.entries(r.run.counts ?? {}).map(([k, v]) => `${v} ${k}`).join(', ');
      return [
        `${lineKey(r)}: run ${r.run.runId}`,
        `  kernel ${r.run.kernel.release} (${r.build}), ${r.run.model?.name ?? 'unknown'} refcount model, origin ${r.run.kernel.origin}`,
        ...(r.source.series ? [`  series ${r.source.series.hash.slice(0, 12)}: ${r.source.series.patches.map((p) => p.subject).join(' | ')}`] : []),
        `  ${counts}; exit ${r.run.exitCode ?? '?'}${r.run.interrupted ? ` (interrupted by ${r.run.interrupted})` : ''}`,
        `  boot to SSH: ${boots.map((b) => `${(b / 1000).toFixed(1)} s`).join(', ') || 'no boot'}`,
        ...(r.run.infra ?? []).map((e) => `  infrastructure: ${e.kind}${e.point ? ` in ${e.point}` : ''}: ${e.reason} (${e.action})`),
      ].join('\n');
    })
    .join('\n\n');
}

/** Returns the report page without Allure's Google Analytics tag: the awesome plugin of 3.18
 *  always embeds it, and a lab's report must not call out (nor fail to, offline). */
export function stripAnalytics(html: string): string {
  return html.replace(/\s*<script async src="https:\/\/www\.googletagmanager\.com\/[^"]*"><\/script>\s*<script>[^<]*?gtag\([^<]*<\/script>/, '');
}

// The page asks for widgets/metrics.json even when Allure wrote none (no metrics were
// recorded): an empty one spares the reader a 404 in the console.
function finishReport(outDir: string): void {
  const index = join(outDir, 'index.html');
  writeFileSync(index, stripAnalytics(readFileSync(index, 'utf8')));
  const metrics = join(outDir, 'widgets', 'metrics.json');
  if (!existsSync(metrics)) writeFileSync(metrics, `${JSON.stringify({ current: [], history: [] })}\n`);
}

/** Returns the latest run of each kernel line (and target), and the earlier ones, oldest first. */
export function splitLatest(runs: RunRecords[]): { latest: RunRecords[]; earlier: RunRecords[] } {
  const ordered = byStartTime(runs);
  const last = new Map<string, RunRecords>();
  for (const r of ordered) last.set(lineKey(r), r);
  const latest = new Set(last.values());
  return { latest: [...latest], earlier: ordered.filter((r) => !latest.has(r)) };
}

export interface AllureReportResult {
  outDir: string;
  /** Runs newly folded into the history this time. */
  folded: string[];
  latest: string[];
  ms: number;
}

// The report directory keeps Allure's history and the list of runs already in it, so the
// nightly report adds only new runs and trends grow night after night.
const STATE_FILE = 'dax-history.json';
const HISTORY_FILE = 'history.jsonl';

function readFolded(outDir: string): Set<string> {
  const p = join(outDir, STATE_FILE);
  if (!existsSync(p)) return new Set();
  try {
    return new Set((JSON.parse(readFileSync(p, 'utf8')) as { folded: string[] }).folded);
  } catch (err) {
    throw new HarnessError('config', `${p} is damaged (${(err as Error).message})`, { hint: 'delete the report directory to rebuild its history from the runs' });
  }
}

// Allure stamps a history entry with the time the report was made; folded at once, a week of
// nights would all read today. The entry gets the night's own start time instead.
function redateLastHistoryEntry(history: string, at: number): void {
  const lines = readFileSync(history, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const last = lines.pop();
  if (last === undefined || !Number.isFinite(at)) return;
  lines.push(JSON.stringify({ ...(JSON.parse(last) as Record<string, unknown>), timestamp: at }));
  const tmp = `${history}.tmp`;
  writeFileSync(tmp, `${lines.join('\n')}\n`);
  renameSync(tmp, history);
}

function writeResults(dir: string, files: AllureFile[]): void {
  mkdirSync(dir, { recursive: true });
  for (const f of files) writeFileSync(join(dir, f.name), f.content);
}

function readIfExists(p: string): string | undefined {
  return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
}

async function generate(opts: { resultsDir: string; outDir: string; history: string; append: boolean; render: boolean; name: string; environments: string[]; globalAttachments?: string[]; cwd: string }): Promise<void> {
  const config = await resolveConfig(
    {
      name: opts.name,
      output: opts.outDir,
      historyPath: opts.history,
      appendHistory: opts.append,
      categories: ALLURE_CATEGORIES,
      environments: Object.fromEntries(
        // Allure's environment ids allow only letters, digits, _ and -; the name is shown.
        opts.environments.map((e) => [
          e.replace(/[^A-Za-z0-9_-]+/g, '_'),
          { name: e, matcher: ({ labels }: { labels: { name: string; value?: string }[] }) => labels.some((l) => l.name === 'parentSuite' && l.value === e) },
        ]),
      ),
      ...(opts.globalAttachments ? { globalAttachments: opts.globalAttachments } : {}),
      // Several files: Allure 3.18's single-file mode still fetches its widgets, which file:// forbids.
      plugins: opts.render ? { awesome: { options: { reportName: opts.name, groupBy: ['parentSuite', 'suite', 'subSuite'], charts: CHARTS } } } : {},
    } as Parameters<typeof resolveConfig>[0],
    { cwd: opts.cwd, ...(opts.render ? {} : { plugins: {} }) },
  );
  const report = new AllureReport(config);
  await report.start();
  await report.readDirectory(opts.resultsDir);
  await report.done();
}

/** Builds the Allure report of the given runs into outDir, keeping history between calls. */
export async function runAllureReport(runs: RunRecords[], outDir: string, opts: { name?: string; log?: (s: string) => void } = {}): Promise<AllureReportResult> {
  const started = performance.now();
  const log = opts.log ?? ((): void => {});
  if (runs.length === 0) throw new HarnessError('config', 'no runs to report', { hint: 'pass run directories, or --results DIR where `dax-harness run` wrote them' });
  const out = resolve(outDir);
  mkdirSync(out, { recursive: true });
  const history = join(out, HISTORY_FILE);
  const folded = readFolded(out);
  const lineHistory = planLineHistory(runs);
  const { latest, earlier } = splitLatest(runs);
  const environments = [...new Set(runs.map(environmentOf))].sort();
  const name = opts.name ?? 'dax-harness: fs-DAX page refcounts';
  const work = mkdtempSync(join(tmpdir(), 'dax-allure-'));
  const files = (r: RunRecords): AllureFile[] =>
    planAllureResults(r, lineHistory.get(r.run.runId) ?? new Map(), { console: readIfExists(join(r.dir, 'console.log')), buildLog: readIfExists(join(r.dir, 'build.log')) });
  const newlyFolded: string[] = [];
  try {
    // Each earlier run becomes one history entry, in the order the runs happened; nothing is
    // rendered for them, so this costs a read of the run only.
    for (const r of earlier.filter((x) => !folded.has(x.run.runId))) {
      const dir = join(work, r.run.runId);
      writeResults(dir, files(r));
      await generate({ resultsDir: dir, outDir: join(work, 'discard'), history, append: true, render: false, name, environments, cwd: work });
      redateLastHistoryEntry(history, Date.parse(r.run.startedAt));
      folded.add(r.run.runId);
      newlyFolded.push(r.run.runId);
      writeFileSync(join(out, STATE_FILE), `${JSON.stringify({ folded: [...folded] }, null, 2)}\n`);
      log(`history: added run ${r.run.runId}`);
    }
    const dir = join(work, 'latest');
    for (const r of latest) writeResults(dir, files(r));
    const globals = join(work, 'global');
    mkdirSync(globals);
    writeFileSync(join(globals, 'runs.txt'), `${formatRunSummary(latest)}\n`);
    // The A/B tables, bisect verdicts and mutant tables of the campaigns these runs belong to.
    for (const c of findCampaigns(runs)) for (const t of c.tables) writeFileSync(join(globals, `${basename(c.dir)}-${t.name}`), t.text);
    // The latest runs are not folded: they are what the report shows, judged against history.
    await generate({ resultsDir: dir, outDir: out, history, append: false, render: true, name, environments, globalAttachments: ['global/*'], cwd: work });
    finishReport(out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { outDir: out, folded: newlyFolded, latest: latest.map((r) => r.run.runId), ms: Math.round(performance.now() - started) };
}
