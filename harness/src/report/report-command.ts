// `dax-harness report`: reads the run records once and writes what was asked for from them —
// the Allure dashboard, JUnit XML, KCIDB JSON.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ReportConfig } from '../config.js';
import { HarnessError } from '../core/errors.js';
import { runAllureReport } from './allure.js';
import { formatJunit } from './junit.js';
import { planKcidb } from './kcidb.js';
import { byStartTime, findRunDirs, readRunDir, runDirsOf, type RunRecords } from './run-records.js';

// Written whole or not at all: a reader (Jenkins, a KCIDB submitter) never sees half a file.
function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

// A campaign directory (--baseline, mutate) stands for the runs it made.
function expandCampaign(dir: string): string[] {
  const c = join(dir, 'campaign.json');
  if (existsSync(join(dir, 'run.json')) || !existsSync(c)) return [dir];
  let runs: string[];
  try {
    runs = runDirsOf(JSON.parse(readFileSync(c, 'utf8')));
  } catch (err) {
    throw new HarnessError('config', `${c} is not valid JSON (${(err as Error).message})`, { hint: 'name the campaign\'s run directories instead' });
  }
  return [...new Set(runs)].filter((d) => existsSync(join(d, 'run.json')));
}

/** Returns the runs a report covers: those named (a campaign stands for its runs), else every
 *  run under the results directory. */
export function loadRuns(rc: ReportConfig, resultsDir: string): RunRecords[] {
  const dirs = rc.runs.length > 0 ? [...new Set(rc.runs.flatMap(expandCampaign))] : findRunDirs(resultsDir);
  if (dirs.length === 0) throw new HarnessError('config', `no runs under ${resultsDir}`, { hint: 'run `dax-harness run` first, or name run directories: dax-harness report DIR...' });
  return byStartTime(dirs.map(readRunDir));
}

/** Writes the report and exports; returns the lines to print. */
export async function runReportCommand(rc: ReportConfig, resultsDir: string, log: (s: string) => void): Promise<string[]> {
  const runs = loadRuns(rc, resultsDir);
  const span = runs.length === 1 ? runs[0]!.run.runId : `${runs[0]!.run.runId} … ${runs[runs.length - 1]!.run.runId}`;
  const lines: string[] = [`${runs.length} run(s): ${span}`];
  if (rc.junit) {
    writeAtomic(rc.junit, formatJunit(runs));
    lines.push(`JUnit XML: ${rc.junit}`);
  }
  if (rc.kcidb) {
    const buildLogs = new Map(runs.filter((r) => existsSync(join(r.dir, 'build.log'))).map((r) => [r.run.runId, readFileSync(join(r.dir, 'build.log'), 'utf8')]));
    writeAtomic(rc.kcidb, `${JSON.stringify(planKcidb(runs, { origin: rc.origin, buildLogs }), null, 2)}\n`);
    lines.push(`KCIDB v5 JSON: ${rc.kcidb}`);
  }
  if (rc.outDir) {
    const r = await runAllureReport(runs, rc.outDir, { log });
    lines.push(`Allure report: ${join(r.outDir, 'index.html')} (${r.latest.length} latest run(s) shown, ${r.folded.length} added to the history, ${(r.ms / 1000).toFixed(1)} s)`);
    lines.push(`  serve it with: npx allure open ${r.outDir}`);
  }
  return lines;
}
