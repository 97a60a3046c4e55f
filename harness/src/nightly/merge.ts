// `dax-harness merge --results DEST SRC...`: joins results directories made elsewhere (Buildbot
// workers' uploads, another machine's results/) into one, and indexes them. Run and campaign
// directories keep their names (run ids are unique); a campaign's run_dir paths are rewritten
// to where its runs now are. Nothing is overwritten: a name DEST already has is an error.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { HarnessError } from '../core/errors.js';
import { indexRun, openHistoryDb } from '../history/history-db.js';
import { parseRunRecords, readRunDir, type RunRecords } from '../report/run-records.js';
import { formatJunit } from '../report/junit.js';
import { ensureResultsRoot, RunStore } from '../run/results.js';
import { exitCodeFor, formatRunTap, prepare, runSuite } from '../run/run.js';
import type { HarnessConfig } from '../config.js';
import { mergeShardRecords } from '../campaign/shard.js';
import type { RefcountModel } from '../kernel/model.js';

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
  const moved = all.runs.map((d) => join(dest, basename(d)));
  const joined = mergeShardRuns(dest, moved, log);
  const db = openHistoryDb(join(dest, 'history.sqlite'));
  try {
    // A shard joined into a run is indexed as that run, not twice.
    for (const d of [...moved.filter((x) => existsSync(x)), ...joined]) indexRun(db, readRunDir(d));
  } finally {
    db.close();
  }
  log(`merged ${all.runs.length} run(s) and ${all.campaigns.length} campaign(s) into ${dest}${joined.length ? `; ${joined.length} run(s) joined from shards` : ''}`);
  return { runs: all.runs.length, campaigns: all.campaigns.length };
}

// Runs are shards of one run when they ran the same kernel build, tests, filesystems and profile
// in the same number of shards.
function shardGroupKey(r: RunRecords): string | null {
  const j = r.run;
  if (!j.shard) return null;
  return JSON.stringify([r.build, r.source.series?.hash ?? null, j.tests ?? [], j.filesystems, j.profile?.name ?? '', j.shard.count, r.target]);
}

/** Joins complete groups of shard runs under dest into one run each (the shard directories move
 *  into the merged run's shards/); returns the merged runs' directories. */
export function mergeShardRuns(dest: string, runDirs: string[], log: (s: string) => void): string[] {
  const groups = new Map<string, RunRecords[]>();
  for (const d of runDirs) {
    const r = readRunDir(d);
    const k = shardGroupKey(r);
    if (k) groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const merged: string[] = [];
  for (const rs of groups.values()) {
    // Every run of a group has a shard (shardGroupKey keys only those).
    const shard = (r: RunRecords): { index: number; count: number } => r.run.shard!;
    const n = shard(rs[0]!).count;
    const indices = rs.map((r) => shard(r).index).sort((a, b) => a - b);
    if (indices.length !== n || indices.some((x, i) => x !== i + 1)) {
      log(`shards ${indices.join(', ')} of ${n} of ${rs[0]!.run.kernel.release}: not all ${n} here, left as they are`);
      continue;
    }
    rs.sort((a, b) => shard(a).index - shard(b).index);
    const first = rs[0]!.run;
    const records = mergeShardRecords(first.filesystems, first.tests ?? [], rs.map((r) => r.tests));
    const store = RunStore.create(dest, `${first.kernel.release}-merged`);
    const runId = basename(store.dir);
    const runJson = {
      ...first,
      runId,
      startedAt: rs.map((r) => r.run.startedAt).sort()[0],
      finishedAt: rs.map((r) => r.run.finishedAt ?? '').sort().at(-1),
      shard: null,
      mergedFrom: rs.map((r) => r.run.runId),
      boots: rs.flatMap((r) => r.run.boots ?? []),
      infra: rs.flatMap((r) => r.run.infra ?? []),
      counts: records.reduce<Record<string, number>>((c, x) => ({ ...c, [x.outcome]: (c[x.outcome] ?? 0) + 1 }), {}),
      exitCode: exitCodeFor(records.map((x) => x.outcome)),
    };
    for (const x of records) store.record(x);
    store.tap(formatRunTap(records, first.filesystems, [`dax-harness run ${runId} (merged from ${runJson.mergedFrom.join(', ')})`], (first.model as RefcountModel | null | undefined) ?? null));
    store.writeFile('run.json', `${JSON.stringify(runJson, null, 2)}\n`);
    store.writeFile('junit.xml', formatJunit([parseRunRecords(store.dir, JSON.stringify(runJson), records.map((x) => JSON.stringify(x)).join('\n'))]));
    store.close();
    mkdirSync(join(store.dir, 'shards'));
    for (const r of rs) move(r.dir, join(store.dir, 'shards', basename(r.dir)));
    log(`merged ${rs.length} shards into ${store.dir}`);
    merged.push(store.dir);
  }
  return merged;
}

/** `run --guests N`: the run dealt into N shards that run at once, each on its own guest, then
 *  joined into one run directory under cfg.resultsDir. The TAP is printed once, joined. */
export async function runGuests(cfg: HarnessConfig, out: (line: string) => void, log: (s: string) => void): Promise<{ exitCode: number; runDir: string }> {
  ensureResultsRoot(cfg.resultsDir);
  // Kernel and guest image once, before the guests: two builds of one image would race.
  const prepared = await prepare(cfg, log);
  const tmp = mkdtempSync(join(cfg.resultsDir, '.guests-'));
  try {
    const shards = await Promise.all(
      Array.from({ length: cfg.guests }, (_, i) =>
        runSuite({ ...cfg, shard: { index: i + 1, count: cfg.guests }, resultsDir: tmp }, () => {}, (s) => log(`guest ${i + 1}/${cfg.guests}: ${s}`), prepared.kernel),
      ),
    );
    const [dir] = mergeShardRuns(cfg.resultsDir, shards.map((s) => s.runDir), log);
    if (!dir) throw new HarnessError('internal', 'the shards of this run did not join into one');
    for (const line of readFileSync(join(dir, 'results.tap'), 'utf8').trimEnd().split('\n')) out(line);
    const db = openHistoryDb(join(cfg.resultsDir, 'history.sqlite'));
    try {
      indexRun(db, readRunDir(dir));
    } finally {
      db.close();
    }
    return { exitCode: (JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { exitCode: number }).exitCode, runDir: dir };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
