// Runs over several built kernels: a series against its base (--baseline), the first bad
// patch of a series (--bisect), and the mutation proof (mutate: one deliberately broken
// kernel per patch in kernel-tests/mutants/). Each kernel's run is a full run of its own
// (its own run directory); stdout carries them as TAP 14 subtests of one document.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCommit, prepareSource, type SourceSession } from '../kernel/built-kernel.js';
import { ensureRequirements, planRequirements } from '../core/prereqs.js';
import { compareRuns, exitCodeForComparison, formatComparison, formatTable, isNewFailure, type Comparison } from './compare.js';
import type { BuildSpec, HarnessConfig } from '../config.js';
import { EXIT_INFRA, EXIT_KERNEL_FAILURE, EXIT_PASS, formatError, HarnessError } from '../core/errors.js';
import { RunStore } from '../run/results.js';
import { isKernelFailure, isRed, KERNEL_LOG_POINT, runSuite, type RunSummary, type TestRecord } from '../run/run.js';
import { describePatch, parseSeries, type Patch } from '../kernel/series.js';
import { selectTests } from '../suite/suite.js';
import { formatYaml, type YamlValue } from '../run/tap.js';

type Out = (line: string) => void;
type Log = (s: string) => void;

// One TAP document over several runs: each run's own document becomes an indented subtest.
class OuterTap {
  private id = 0;
  constructor(private readonly sink: (lines: string[]) => void) {}
  start(comments: string[]): void {
    this.sink(['TAP version 14', ...comments.map((c) => `# ${c}`)]);
  }
  comment(lines: string[]): void {
    this.sink(lines.map((l) => `# ${l}`));
  }
  /** Returns the line sink for the subtest's body (its version line dropped, indented). */
  subtest(name: string): Out {
    this.sink([`# Subtest: ${name}`]);
    return (line) => {
      if (line === 'TAP version 14') return;
      this.sink([`    ${line}`]);
    };
  }
  point(ok: boolean, name: string, diag?: Record<string, YamlValue>, todo?: string): void {
    this.id += 1;
    const lines = [`${ok ? 'ok' : 'not ok'} ${this.id} - ${name.replace(/#/g, '\\#')}${todo ? ` # TODO ${todo}` : ''}`];
    if (diag) lines.push('  ---', ...formatYaml(diag, '  '), '  ...');
    this.sink(lines);
  }
  end(): void {
    this.sink([`1..${this.id}`]);
  }
}

interface KernelRun {
  label: string;
  commit: string;
  release: string;
  buildMs: number;
  reused: boolean;
  summary: RunSummary | null;
  error: string | null;
  wallMs: number;
}

function redPoints(records: TestRecord[]): string[] {
  return records.filter((r) => isKernelFailure(r.outcome)).map((r) => `${r.fs}/${r.test}`);
}

// Builds a commit and runs the suite on it; a build or boot failure is the run's error (kept,
// reported), never a kernel test failure.
async function buildAndRun(cfg: HarnessConfig, src: SourceSession, commit: string, label: string, sink: Out, log: Log): Promise<KernelRun> {
  const started = performance.now();
  let wrote = false;
  const out: Out = (line) => {
    wrote = true;
    sink(line);
  };
  try {
    const b = await buildCommit(src, commit, cfg.repoDir, cfg.cacheDir, log);
    const summary = await runSuite(cfg, out, log, b.kernel);
    return { label, commit, release: b.kernel.release, buildMs: b.buildMs, reused: b.reused, summary, error: null, wallMs: Math.round(performance.now() - started) };
  } catch (err) {
    const msg = formatError(err);
    log(`${label}: ${msg}`);
    // A kernel that did not build has an empty subtest; a run that failed after its TAP was
    // written (no guest came up) keeps its own document.
    if (!wrote) out(`1..0 # SKIP ${(msg.split('\n')[0] ?? '').replace(/^dax-harness: /, '')}`);
    return { label, commit, release: '?', buildMs: 0, reused: false, summary: null, error: msg, wallMs: Math.round(performance.now() - started) };
  }
}

function runDiag(r: KernelRun): Record<string, YamlValue> {
  const d: Record<string, YamlValue> = { commit: r.commit, release: r.release, build_s: Math.round(r.buildMs / 100) / 10, build_reused: r.reused, wall_s: Math.round(r.wallMs / 100) / 10 };
  if (r.summary) {
    d.run_dir = r.summary.runDir;
    d.exit_code = r.summary.exitCode;
    d.red = redPoints(r.summary.records);
  }
  if (r.error) d.error = r.error;
  return d;
}

function buildSpecOf(cfg: HarnessConfig): BuildSpec {
  if (cfg.kernel.kind !== 'build') throw new HarnessError('internal', 'a campaign needs a kernel built from a tree');
  return cfg.kernel;
}

/** What --baseline found: the exit code and what the nightly's reply is made from. */
export interface BaselineResult {
  code: number;
  campaignDir: string;
  base: { commit: string; summary: RunSummary | null; error: string | null };
  series: { commit: string; summary: RunSummary | null; error: string | null };
  comparison: Comparison[] | null;
  culprits: Culprit[] | null;
  /** Subjects of the patches with a diff, in order (bisect numbers them from 1). */
  subjects: string[];
}

/** --baseline (and --bisect): the series against its base; exit 1 only for a new failure. */
export async function runBaseline(cfg: HarnessConfig, out: Out, log: Log): Promise<number> {
  return (await runBaselineCampaign(cfg, out, log)).code;
}

/** Runs --baseline (and --bisect) and returns everything it found. */
export async function runBaselineCampaign(cfg: HarnessConfig, out: Out, log: Log): Promise<BaselineResult> {
  const spec = buildSpecOf(cfg);
  // The build tools (flex, bison, ...) first: the kernel's own make needs them from tinyconfig on.
  await ensureRequirements(planRequirements({ kernelBuild: true }), cfg.allowInstall, log);
  // Applying the series comes first: a series that does not apply leaves no campaign behind.
  const src = await prepareSource(spec, cfg.cacheDir, log);
  const store = RunStore.create(cfg.resultsDir, 'baseline');
  const tap = new OuterTap((lines) => {
    store.tap(lines);
    for (const l of lines) out(l);
  });
  const patches = src.applied.commits;
  const result = (code: number, cmp: Comparison[] | null, culprits: Culprit[] | null): BaselineResult => ({
    code,
    campaignDir: store.dir,
    base: { commit: base.commit, summary: base.summary, error: base.error },
    series: { commit: head.commit, summary: head.summary, error: head.error },
    comparison: cmp,
    culprits,
    subjects: patches.map((c) => c.patch.subject),
  });
  tap.start([`dax-harness series vs base: ${patches.length} patch(es) on ${src.applied.base.slice(0, 12)} of ${src.tree.name}`, ...patches.map((c, i) => `patch ${i + 1}: ${c.commit.slice(0, 12)} ${describePatch(c.patch)}`)]);
  const base = await buildAndRun(cfg, src, src.applied.base, 'base', tap.subtest('base'), log);
  // A failure on the base is not the series' fault: shown, but as TODO.
  tap.point(base.summary?.exitCode === EXIT_PASS, `base ${base.release}`, runDiag(base), base.summary?.exitCode === EXIT_KERNEL_FAILURE ? 'the base itself fails; only changes are judged' : undefined);
  const head = await buildAndRun(cfg, src, src.applied.head, 'series', tap.subtest('series'), log);
  tap.point(head.summary?.exitCode === EXIT_PASS, `series ${head.release}`, runDiag(head), head.summary?.exitCode === EXIT_KERNEL_FAILURE ? 'judged against the base below' : undefined);
  if (!base.summary || !head.summary) {
    tap.point(false, 'comparison', { error: 'a kernel did not build or boot; nothing to compare' });
    tap.end();
    store.close();
    return result(EXIT_INFRA, null, null);
  }
  const cmp = compareRuns(base.summary.records, head.summary.records);
  const table = formatComparison(cmp);
  tap.comment(table);
  const infra = [...base.summary.records, ...head.summary.records].some((r) => r.outcome === 'error');
  let code = exitCodeForComparison(cmp, infra);
  const news = cmp.filter(isNewFailure);
  const named = (ch: string): string[] => cmp.filter((c) => c.change === ch).map((c) => c.point);
  tap.point(news.length === 0, `comparison: ${news.length} new failure(s), ${named('changed failure').length} of them failing otherwise than on the base, ${named('fixed').length} fixed, ${named('now skipped').length} now skipped`, {
    new_failures: named('new failure'),
    changed_failures: cmp.filter((c) => c.change === 'changed failure').map((c) => `${c.point}: ${c.detail ?? ''}`),
    now_skipped: named('now skipped'),
    fixed: named('fixed'),
  });
  const summary: Record<string, unknown> = { base: runDiag(base), series: runDiag(head), comparison: cmp };
  let culprits: Culprit[] | null = null;
  if (cfg.bisect && news.length > 0) {
    culprits = await bisect(cfg, src, news, tap, log);
    summary.bisect = culprits;
    // The new failure is certain even where its culprit is not: the exit code stays 1 (a kernel
    // failure is never hidden behind infrastructure trouble); the unknown range is in the table.
  }
  tap.end();
  store.writeFile('comparison.txt', `${table.join('\n')}\n`);
  store.writeFile('campaign.json', `${JSON.stringify(summary, null, 2)}\n`);
  store.close();
  log(`comparison in ${store.dir}`);
  return result(code, cmp, culprits);
}

/** What bisect learned of one point at one prefix of the series. */
export type PrefixState = { state: 'red' } | { state: 'green' } | { state: 'unknown'; why: string };

export interface Culprit {
  point: string;
  /** 1-based index of the first patch after which the point is red; null if it cannot be told. */
  patch: number | null;
  subject: string | null;
  /** When patch is null: the patches it lies between (inclusive), and why it cannot be told. */
  between?: [number, number];
  why?: string;
}

/** Returns the state of a point in a prefix's run: red, green, or unknown with why (a point
 *  that errored or skipped, or a kernel that did not build or boot, proves nothing either way). */
export function prefixState(summary: RunSummary | null, error: string | null, point: string): PrefixState {
  if (!summary) return { state: 'unknown', why: `did not build or boot: ${(error ?? 'no run').split('\n')[0]}` };
  const r = summary.records.find((x) => `${x.fs}/${x.test}` === point);
  if (!r) return { state: 'unknown', why: 'the point was not run' };
  if (isRed(r.outcome)) return { state: 'red' };
  if (r.outcome === 'pass') return { state: 'green' };
  return { state: 'unknown', why: `${r.outcome}: ${r.reason}` };
}

/**
 * Returns the first bad patch of each point from its states at the prefixes 1..n (the base, 0,
 * is green: only new failures are bisected; the head, n, is red). A patch is blamed only when
 * the prefix just before it is known green; a prefix in between that did not build, boot or run
 * the point leaves the culprit "unknown between k and m", with why.
 */
export function decideCulprits(points: string[], states: Map<number, Map<string, PrefixState>>, n: number, subjects: string[]): Culprit[] {
  return points.map((point) => {
    let lastGreen = 0;
    let why: string[] = [];
    for (let k = 1; k <= n; k++) {
      const st: PrefixState = states.get(k)?.get(point) ?? (k === n ? { state: 'red' } : { state: 'unknown', why: 'not run' });
      if (st.state === 'green') {
        lastGreen = k;
        why = [];
      } else if (st.state === 'unknown') {
        why.push(`prefix ${k}: ${st.why}`);
      } else if (k === lastGreen + 1) {
        return { point, patch: k, subject: subjects[k - 1] ?? null };
      } else {
        return { point, patch: null, subject: null, between: [lastGreen + 1, k], why: why.join('; ') };
      }
    }
    return { point, patch: null, subject: null, between: [lastGreen + 1, n], why: why.join('; ') || 'never red' };
  });
}

// Runs the newly failing points on each prefix of the series, shortest first, until every
// point is red somewhere; then decides each point's first bad patch from what each prefix showed.
async function bisect(cfg: HarnessConfig, src: SourceSession, news: Comparison[], tap: OuterTap, log: Log): Promise<Culprit[]> {
  const commits = src.applied.commits;
  const n = commits.length;
  const points = news.map((c) => c.point);
  const open = new Set(points);
  const states = new Map<number, Map<string, PrefixState>>();
  for (let k = 1; k < n && open.size > 0; k++) {
    // The kernel log is judged over whole runs: bisecting it runs the whole suite.
    const wholeRun = [...open].some((p) => p.endsWith(`/${KERNEL_LOG_POINT}`));
    const names = [...new Set([...open].map((p) => p.split('/')[1]!))];
    const fss = [...new Set([...open].map((p) => p.split('/')[0]!))];
    const sub: HarnessConfig = wholeRun ? cfg : { ...cfg, tests: selectTests(names).tests, filesystems: fss as HarnessConfig['filesystems'] };
    const c = commits[k - 1]!;
    const r = await buildAndRun(sub, src, c.commit, `prefix ${k}`, tap.subtest(`prefix ${k}/${n}: ${describePatch(c.patch)}`), log);
    tap.point(true, `prefix ${k}/${n} ${c.commit.slice(0, 12)}`, runDiag(r));
    const at = new Map<string, PrefixState>();
    for (const p of open) {
      const st = prefixState(r.summary, r.error, p);
      at.set(p, st);
      if (st.state === 'red') open.delete(p);
    }
    states.set(k, at);
  }
  const found = decideCulprits(points, states, n, commits.map((c) => c.patch.subject));
  const rows = found.map((f) => [f.point, f.patch !== null ? `${f.patch}/${n}` : `unknown between ${f.between![0]} and ${f.between![1]}`, f.patch !== null ? (f.subject ?? '') : (f.why ?? '')]);
  tap.comment(['first bad patch per newly failing point:', ...formatTable(['point', 'patch', 'subject (or why it cannot be told)'], rows)]);
  for (const f of found) log(f.patch !== null ? `${f.point}: first red after patch ${f.patch}/${n} (${f.subject})` : `${f.point}: first bad patch unknown between ${f.between![0]} and ${f.between![1]} (${f.why})`);
  return found;
}

export interface Mutant {
  name: string;
  path: string;
  patches: Patch[];
  /** The scenario(s) its header says should catch it. */
  expectedKillers: string;
}

/** Returns the mutants of a directory (*.patch, sorted), parsed and checked. */
export function loadMutants(dir: string, only: string[]): Mutant[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.patch')).sort();
  } catch {
    throw new HarnessError('config', `--mutants ${dir}: no such directory`, { hint: 'pass a directory of .patch files, or leave it out for kernel-tests/mutants/<tree>' });
  }
  const all = files.map((f) => {
    const text = readFileSync(join(dir, f), 'utf8');
    const killers = /^Caught-by:[ \t]*(.+)$/m.exec(text)?.[1]?.trim() ?? '';
    return { name: f.replace(/\.patch$/, ''), path: join(dir, f), patches: parseSeries(text, join(dir, f)), expectedKillers: killers };
  });
  if (all.length === 0) throw new HarnessError('config', `${dir} holds no .patch files`, { hint: 'each mutant is one git format-patch file against the tree' });
  const unknown = only.filter((n) => !all.some((m) => m.name === n));
  if (unknown.length > 0) throw new HarnessError('config', `unknown mutant(s): ${unknown.join(', ')}`, { hint: `mutants in ${dir}: ${all.map((m) => m.name).join(', ')}` });
  return only.length > 0 ? all.filter((m) => only.includes(m.name)) : all;
}

/** mutate: the clean kernel and each mutant; a mutant is killed when its run exits 1. */
export async function runMutate(cfg: HarnessConfig, out: Out, log: Log): Promise<number> {
  const spec = buildSpecOf(cfg);
  const mutants = loadMutants(cfg.mutantsDir, cfg.mutants);
  const store = RunStore.create(cfg.resultsDir, 'mutate');
  const tap = new OuterTap((lines) => {
    store.tap(lines);
    for (const l of lines) out(l);
  });
  tap.start([`dax-harness mutate: ${mutants.length} mutant(s) from ${cfg.mutantsDir}`]);
  // On a fresh machine mutate may be the first build: its tools come first (a run installs them too).
  await ensureRequirements(planRequirements({ kernelBuild: true }), cfg.allowInstall, log);
  const clean = await prepareSource(spec, cfg.cacheDir, log);
  const cleanRun = await buildAndRun(cfg, clean, clean.applied.head, 'clean', tap.subtest('clean kernel'), log);
  const cleanOk = cleanRun.summary?.exitCode === EXIT_PASS;
  tap.point(cleanOk, `clean kernel ${cleanRun.release} stays green`, runDiag(cleanRun));
  const rows: string[][] = [];
  const results: Record<string, unknown>[] = [];
  let infra = !cleanRun.summary;
  let survived = 0;
  for (const m of mutants) {
    let r: KernelRun;
    try {
      const src = await prepareSource(spec, cfg.cacheDir, log, m.patches);
      r = await buildAndRun(cfg, src, src.applied.head, m.name, tap.subtest(`mutant ${m.name}`), log);
    } catch (err) {
      r = { label: m.name, commit: '?', release: '?', buildMs: 0, reused: false, summary: null, error: formatError(err), wallMs: 0 };
    }
    const code = r.summary?.exitCode ?? EXIT_INFRA;
    const verdict = code === EXIT_KERNEL_FAILURE ? 'killed' : code === EXIT_PASS ? 'survived' : 'error';
    if (verdict === 'survived') survived += 1;
    if (verdict === 'error') infra = true;
    const red = r.summary ? redPoints(r.summary.records) : [];
    const boots = r.summary?.boots ?? [];
    rows.push([m.name, red.join(' ') || '-', verdict, `${(r.buildMs / 1000).toFixed(0)}s`, boots.length > 0 ? `${(boots[0]! / 1000).toFixed(1)}s` : '-', `${((r.summary?.testsMs ?? 0) / 1000).toFixed(0)}s`]);
    results.push({ mutant: m.name, expected: m.expectedKillers, verdict, ...runDiag(r) });
    tap.point(verdict === 'killed', `mutant ${m.name} ${verdict}`, { expected_killers: m.expectedKillers, ...runDiag(r) });
  }
  const table = formatTable(['mutant', 'red tests', 'verdict', 'build', 'boot', 'tests'], rows);
  tap.comment(table);
  tap.end();
  store.writeFile('mutants.txt', `${table.join('\n')}\n`);
  store.writeFile('campaign.json', `${JSON.stringify({ clean: runDiag(cleanRun), mutants: results }, null, 2)}\n`);
  store.close();
  log(`mutation table in ${store.path('mutants.txt')}`);
  if (!cleanOk && cleanRun.summary?.exitCode === EXIT_KERNEL_FAILURE) return EXIT_KERNEL_FAILURE;
  if (survived > 0) return EXIT_KERNEL_FAILURE;
  return infra ? EXIT_INFRA : EXIT_PASS;
}

/** The outcome cell of one point in the matrix table: its outcome, or '-' if it did not run. */
export function matrixCell(records: TestRecord[] | null, fs: string, test: string): string {
  if (!records) return 'error';
  return records.find((r) => r.fs === fs && r.test === test)?.outcome ?? '-';
}

/** Returns the kernel × test table: a row per fs/test, a column per kernel. */
export function formatMatrixTable(kernels: { label: string; records: TestRecord[] | null }[], points: { fs: string; test: string }[]): string[] {
  const rows = points.map((p) => [`${p.fs}/${p.test}`, ...kernels.map((k) => matrixCell(k.records, p.fs, p.test))]);
  const count = (k: { records: TestRecord[] | null }, o: string): number => k.records?.filter((r) => r.outcome === o && r.test !== KERNEL_LOG_POINT).length ?? 0;
  rows.push(['(pass/known/skip/red)', ...kernels.map((k) => (k.records ? `${count(k, 'pass')}/${count(k, 'xfail')}/${count(k, 'skip')}/${k.records.filter((r) => isKernelFailure(r.outcome)).length}` : 'error'))]);
  return formatTable(['point', ...kernels.map((k) => k.label)], rows);
}

/** matrix: the suite on each Debian kernel line, one TAP document, a kernel × test table. */
export async function runMatrix(cfg: HarnessConfig, out: Out, log: Log): Promise<number> {
  const store = RunStore.create(cfg.resultsDir, 'matrix');
  const tap = new OuterTap((lines) => {
    store.tap(lines);
    for (const l of lines) out(l);
  });
  tap.start([`dax-harness matrix: ${cfg.matrixKernels.join(', ')} x ${cfg.filesystems.join(',')} x ${cfg.tests.length} test(s)`]);
  const started = performance.now();
  const runs: { label: string; records: TestRecord[] | null; exitCode: number; diag: Record<string, YamlValue> }[] = [];
  for (const line of cfg.matrixKernels) {
    const sub: HarnessConfig = Object.freeze({ ...cfg, kernel: { kind: 'distro' as const, line, release: undefined } });
    const sink = tap.subtest(line);
    const t0 = performance.now();
    let wrote = false;
    try {
      const summary = await runSuite(sub, (l) => {
        wrote = true;
        sink(l);
      }, log);
      const diag = { run_dir: summary.runDir, exit_code: summary.exitCode, red: redPoints(summary.records), wall_s: Math.round((performance.now() - t0) / 100) / 10 };
      runs.push({ label: line, records: summary.records, exitCode: summary.exitCode, diag });
      tap.point(summary.exitCode === EXIT_PASS, line, diag);
    } catch (err) {
      // A kernel that could not be fetched or booted is infrastructure trouble of its column.
      const msg = formatError(err);
      log(`${line}: ${msg}`);
      if (!wrote) sink(`1..0 # SKIP ${(msg.split('\n')[0] ?? '').replace(/^dax-harness: /, '')}`);
      runs.push({ label: line, records: null, exitCode: EXIT_INFRA, diag: { error: msg } });
      tap.point(false, `${line} # ERROR infrastructure`, { error: msg });
    }
  }
  const points = cfg.filesystems.flatMap((fs) => cfg.tests.map((t) => ({ fs, test: t.name })));
  const table = formatMatrixTable(runs, points);
  tap.comment([...table, `wall time ${((performance.now() - started) / 1000).toFixed(0)} s`]);
  tap.end();
  store.writeFile('matrix.txt', `${table.join('\n')}\n`);
  store.writeFile('campaign.json', `${JSON.stringify({ matrix: Object.fromEntries(runs.map((r) => [r.label, r.diag])) }, null, 2)}\n`);
  store.close();
  log(`matrix table in ${store.path('matrix.txt')}`);
  if (runs.some((r) => r.exitCode === EXIT_KERNEL_FAILURE)) return EXIT_KERNEL_FAILURE;
  return runs.some((r) => r.exitCode !== EXIT_PASS) ? EXIT_INFRA : EXIT_PASS;
}
