// Runs over several built kernels: a series against its base (--baseline), the first bad
// patch of a series (--bisect), and the mutation proof (mutate: one deliberately broken
// kernel per patch in kernel-tests/mutants/). Each kernel's run is a full run of its own
// (its own run directory); stdout carries them as TAP 14 subtests of one document.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCommit, prepareSource, type SourceSession } from './built-kernel.js';
import { compareRuns, exitCodeForComparison, formatComparison, formatTable, type Comparison } from './compare.js';
import type { BuildSpec, HarnessConfig } from './config.js';
import { EXIT_INFRA, EXIT_KERNEL_FAILURE, EXIT_PASS, formatError, HarnessError } from './errors.js';
import { RunStore } from './results.js';
import { isKernelFailure, runSuite, type RunSummary, type TestRecord } from './run.js';
import { describePatch, parseSeries, type Patch } from './series.js';
import { selectTests } from './suite.js';
import { formatYaml, type YamlValue } from './tap.js';

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

/** --baseline (and --bisect): the series against its base; exit 1 only for a new failure. */
export async function runBaseline(cfg: HarnessConfig, out: Out, log: Log): Promise<number> {
  const spec = buildSpecOf(cfg);
  const store = RunStore.create(cfg.resultsDir, 'baseline');
  const tap = new OuterTap((lines) => {
    store.tap(lines);
    for (const l of lines) out(l);
  });
  const src = await prepareSource(spec, cfg.cacheDir, log);
  const patches = src.applied.commits;
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
    return EXIT_INFRA;
  }
  const cmp = compareRuns(base.summary.records, head.summary.records);
  const table = formatComparison(cmp);
  tap.comment(table);
  const infra = [...base.summary.records, ...head.summary.records].some((r) => r.outcome === 'error');
  let code = exitCodeForComparison(cmp, infra);
  const news = cmp.filter((c) => c.change === 'new failure');
  tap.point(news.length === 0, `comparison: ${news.length} new failure(s), ${cmp.filter((c) => c.change === 'fixed').length} fixed`, { new_failures: news.map((c) => c.point), fixed: cmp.filter((c) => c.change === 'fixed').map((c) => c.point) });
  const summary: Record<string, unknown> = { base: runDiag(base), series: runDiag(head), comparison: cmp };
  if (cfg.bisect && news.length > 0) {
    const culprits = await bisect(cfg, src, news, tap, log);
    summary.bisect = culprits;
    if (culprits.some((c) => c.patch === null)) code = Math.max(code, EXIT_INFRA);
  }
  tap.end();
  store.writeFile('comparison.txt', `${table.join('\n')}\n`);
  store.writeFile('campaign.json', `${JSON.stringify(summary, null, 2)}\n`);
  store.close();
  log(`comparison in ${store.dir}`);
  return code;
}

interface Culprit {
  point: string;
  /** 1-based index of the first patch after which the point is red; null if not found. */
  patch: number | null;
  subject: string | null;
}

// Runs the newly failing points on each prefix of the series, shortest first, until every
// point has its first bad patch. The head's result counts for the last prefix.
async function bisect(cfg: HarnessConfig, src: SourceSession, news: Comparison[], tap: OuterTap, log: Log): Promise<Culprit[]> {
  const commits = src.applied.commits;
  const open = new Set(news.map((c) => c.point));
  const found: Culprit[] = [];
  for (let k = 1; k < commits.length && open.size > 0; k++) {
    const names = [...new Set([...open].map((p) => p.split('/')[1]!))];
    const fss = [...new Set([...open].map((p) => p.split('/')[0]!))];
    const sub: HarnessConfig = { ...cfg, tests: selectTests(names).tests, filesystems: fss as HarnessConfig['filesystems'] };
    const c = commits[k - 1]!;
    const r = await buildAndRun(sub, src, c.commit, `prefix ${k}`, tap.subtest(`prefix ${k}/${commits.length}: ${describePatch(c.patch)}`), log);
    tap.point(true, `prefix ${k}/${commits.length} ${c.commit.slice(0, 12)}`, runDiag(r));
    if (!r.summary) continue;
    for (const p of redPoints(r.summary.records)) {
      if (!open.delete(p)) continue;
      found.push({ point: p, patch: k, subject: c.patch.subject });
    }
  }
  const last = commits.at(-1)!;
  for (const p of open) found.push({ point: p, patch: commits.length, subject: last.patch.subject });
  const rows = found.map((f) => [f.point, f.patch === null ? '?' : `${f.patch}/${commits.length}`, f.subject ?? '']);
  tap.comment(['first bad patch per newly failing point:', ...formatTable(['point', 'patch', 'subject'], rows)]);
  for (const f of found) log(`${f.point}: first red after patch ${f.patch}/${commits.length} (${f.subject})`);
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
    throw new HarnessError('config', `--mutants ${dir}: no such directory`, { hint: 'pass a directory of .patch files, or leave it out for kernel-tests/mutants' });
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
