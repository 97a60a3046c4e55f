// Benchmark of the dashboard and exports: N nights of one kernel line, made from a real run
// (each night redated; a few points turn red, flaky or broken, the package moves on now and
// then), then `report` cold over all of them, again with one more night, and the exports.
// Output is key=value lines. `--keep DIR` keeps the nights and the report (for screenshots).
//   node harness/dist/report/bench-report.js [--nights 100] [--from RUN_DIR] [--keep DIR]
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { runAllureReport } from './allure.js';
import { formatJunit } from './junit.js';
import { planKcidb } from './kcidb.js';
import { readRunDir } from './run-records.js';
import type { TestRecord } from '../run/run.js';

/** Returns a seeded pseudo-random source in [0, 1) (mulberry32): the same nights every time. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Night {
  name: string;
  runJson: Record<string, unknown>;
  tests: TestRecord[];
}

/**
 * Returns n nights made from one real run (pure): night i starts i days after the first, the
 * package version moves on every 10 nights, one point is flaky (fails one night in four), one
 * point regresses from night n/2 on (with a new package), and an infrastructure error hits about
 * one night in twenty.
 */
export function planNights(run: Record<string, unknown>, tests: TestRecord[], n: number, rand: () => number, firstDay = Date.parse('2026-09-01T02:00:00Z')): Night[] {
  const passing = tests.filter((t) => t.outcome === 'pass' && t.test !== 'kernel-log').map((t) => t.id);
  const flaky = passing[0]!;
  const regress = passing[1]!;
  const kernel = run.kernel as { release: string; packageVersion?: string };
  return Array.from({ length: n }, (_, i) => {
    const at = new Date(firstDay + i * 86_400_000).toISOString();
    const name = `${at.slice(0, 10).replace(/-/g, '')}-020000Z-${kernel.release}-n${String(i).padStart(3, '0')}`;
    const ts = tests.map((t) => {
      if (t.id === flaky && rand() < 0.25) return { ...t, outcome: 'fail' as const, reason: 'bench: the flaky point failed this night' };
      if (t.id === regress && i >= n / 2) return { ...t, outcome: 'fail' as const, reason: 'bench: regressed from the middle night on' };
      if (t.outcome === 'pass' && rand() < 0.05 / passing.length) return { ...t, outcome: 'error' as const, reason: 'infrastructure: bench: the guest was lost' };
      return t;
    });
    const counts: Record<string, number> = {};
    for (const t of ts) counts[t.outcome] = (counts[t.outcome] ?? 0) + 1;
    return {
      name,
      // The regression comes with a new package, as it would: the same package failing where it
      // passed before would be flakiness, not a regression.
      runJson: { ...run, runId: name, startedAt: at, finishedAt: at, counts, kernel: { ...kernel, packageVersion: `${kernel.packageVersion ?? '0'}+b${Math.floor(i / 10)}${i >= n / 2 ? 'r' : ''}` } },
      tests: ts,
    };
  });
}

function writeNight(root: string, night: Night, consoleLog: string | null): void {
  const dir = join(root, night.name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'run.json'), `${JSON.stringify(night.runJson, null, 2)}\n`);
  writeFileSync(join(dir, 'tests.jsonl'), night.tests.map((t) => `${JSON.stringify(t)}\n`).join(''));
  if (consoleLog !== null) writeFileSync(join(dir, 'console.log'), consoleLog);
}

function duBytes(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((a, n) => a + duBytes(join(p, n)), 0);
}

async function main(): Promise<void> {
  const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const { values } = parseArgs({ options: { nights: { type: 'string', default: '100' }, from: { type: 'string' }, keep: { type: 'string' } } });
  const n = Number(values.nights);
  const from = values.from ?? join(repo, 'harness', 'test', 'fixtures', 'report-runs', 'night1-green');
  const work = values.keep ?? mkdtempSync(join(tmpdir(), 'bench-report-'));
  const runsDir = join(work, 'runs');
  const out = join(work, 'report');
  rmSync(runsDir, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
  const seed = readRunDir(from);
  const consoleLog = existsSync(join(from, 'console.log')) ? readFileSync(join(from, 'console.log'), 'utf8') : null;
  const nights = planNights(seed.run as unknown as Record<string, unknown>, seed.tests, n + 1, seededRandom(42));
  for (const night of nights.slice(0, n)) writeNight(runsDir, night, consoleLog);
  const runs = () => readdirSync(runsDir).sort().map((d) => readRunDir(join(runsDir, d)));
  const print = (k: string, v: string | number): void => void process.stdout.write(`${k}=${v}\n`);
  print('nights', n);
  print('points_per_night', seed.tests.length);

  let t0 = performance.now();
  const all = runs();
  print('read_runs_s', ((performance.now() - t0) / 1000).toFixed(2));
  t0 = performance.now();
  const cold = await runAllureReport(all, out);
  print('allure_cold_s', ((performance.now() - t0) / 1000).toFixed(2));
  print('allure_history_entries', cold.folded.length);
  print('allure_report_mib', (duBytes(out) / 2 ** 20).toFixed(1));
  print('allure_history_mib', (statSync(join(out, 'history.jsonl')).size / 2 ** 20).toFixed(1));

  writeNight(runsDir, nights[n]!, consoleLog);
  t0 = performance.now();
  const warm = await runAllureReport(runs(), out);
  print('allure_one_more_night_s', ((performance.now() - t0) / 1000).toFixed(2));
  print('allure_one_more_night_folded', warm.folded.length);

  t0 = performance.now();
  const junit = formatJunit(all);
  print('junit_s', ((performance.now() - t0) / 1000).toFixed(2));
  print('junit_mib', (Buffer.byteLength(junit) / 2 ** 20).toFixed(1));
  t0 = performance.now();
  const kcidb = JSON.stringify(planKcidb(all));
  print('kcidb_s', ((performance.now() - t0) / 1000).toFixed(2));
  print('kcidb_mib', (Buffer.byteLength(kcidb) / 2 ** 20).toFixed(1));
  if (values.keep) print('kept', work);
  else rmSync(work, { recursive: true, force: true });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench-report: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(2);
  });
}

