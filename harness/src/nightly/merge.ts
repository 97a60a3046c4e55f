// `dax-harness merge --results DEST SRC...`: joins results directories made elsewhere (Buildbot
// workers' uploads, another machine's results/) into one, and indexes them. Run and campaign
// directories keep their names (run ids are unique); a campaign's run_dir paths are rewritten
// to where its runs now are. Nothing is overwritten: a name DEST already has is an error.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { HarnessError } from '../errors.js';
import { indexRun, openHistoryDb } from '../history/history-db.js';
import { readRunDir } from '../report/run-records.js';

export interface MergePlan {
  runs: string[];
  campaigns: string[];
}

/** Returns the run and campaign directories in a source: a results directory, or a directory of
 *  results directories (Buildbot's incoming/), one level down. */
export function findMergeSources(src: string): MergePlan {
  const plan: MergePlan = { runs: [], campaigns: [] };
  const visit = (dir: string, depth: number): void => {
    if (existsSync(join(dir, 'run.json'))) plan.runs.push(dir);
    else if (existsSync(join(dir, 'campaign.json'))) plan.campaigns.push(dir);
    else if (depth < 2) for (const n of readdirSync(dir).sort()) if (statSync(join(dir, n)).isDirectory()) visit(join(dir, n), depth + 1);
  };
  visit(resolve(src), 0);
  return plan;
}

/** Returns campaign.json with each run_dir pointed at the run of the same name under dest (pure). */
export function rewriteRunDirs(campaign: unknown, dest: string): unknown {
  if (Array.isArray(campaign)) return campaign.map((x) => rewriteRunDirs(x, dest));
  if (campaign && typeof campaign === 'object') {
    return Object.fromEntries(Object.entries(campaign).map(([k, v]) => [k, k === 'run_dir' && typeof v === 'string' ? join(dest, basename(v)) : rewriteRunDirs(v, dest)]));
  }
  return campaign;
}

// rename where it can (same filesystem), else copy and remove.
function move(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    cpSync(from, to, { recursive: true });
    rmSync(from, { recursive: true, force: true });
  }
}

/** Moves every run and campaign of the sources into dest and indexes the runs; returns counts. */
export function runMerge(dest: string, sources: string[], log: (s: string) => void): { runs: number; campaigns: number } {
  mkdirSync(dest, { recursive: true });
  const plans = sources.map(findMergeSources);
  const all = { runs: plans.flatMap((p) => p.runs), campaigns: plans.flatMap((p) => p.campaigns) };
  // Checked before anything moves: a merge either happens whole or not at all.
  const names = [...all.runs, ...all.campaigns].map((d) => basename(d));
  const clash = names.find((n, i) => names.indexOf(n) !== i || existsSync(join(dest, n)));
  if (clash) {
    throw new HarnessError('config', `merge: ${clash} is in two sources, or already in ${dest}`, { hint: 'each run directory has a unique name: merge each upload once, into a results directory that does not have it yet' });
  }
  for (const d of all.runs) move(d, join(dest, basename(d)));
  for (const d of all.campaigns) {
    const to = join(dest, basename(d));
    move(d, to);
    const c = join(to, 'campaign.json');
    writeFileSync(c, `${JSON.stringify(rewriteRunDirs(JSON.parse(readFileSync(c, 'utf8')), dest), null, 2)}\n`);
  }
  // What is left of a source is its own index of the runs just moved: derived, so removed, and
  // the source directory with it once empty. Anything else is left where it was.
  for (const parent of new Set([...all.runs, ...all.campaigns].map((d) => dirname(d)))) {
    for (const f of readdirSync(parent)) if (/^history\.sqlite(-wal|-shm)?$/.test(f)) rmSync(join(parent, f), { force: true });
    if (readdirSync(parent).length === 0 && !sources.map((x) => resolve(x)).includes(parent)) rmSync(parent, { recursive: true, force: true });
  }
  const db = openHistoryDb(join(dest, 'history.sqlite'));
  try {
    for (const d of all.runs) indexRun(db, readRunDir(join(dest, basename(d))));
  } finally {
    db.close();
  }
  log(`merged ${all.runs.length} run(s) and ${all.campaigns.length} campaign(s) into ${dest}`);
  return { runs: all.runs.length, campaigns: all.campaigns.length };
}
