// What changed night after night (pure): each point of each run against the previous run of the
// same kernel line on the same target, and which points are flaky.
import { classifyChange, failureFingerprint, type Change } from '../campaign/compare.js';
import { isRed, type TestRecord } from '../run/run.js';
import { baseLineKey, byStartTime, lineKey, type RunRecords } from './run-records.js';

export interface PointHistory {
  /** Against the previous run of the line: `first run` when there is none or it lacked the point. */
  change: Change | 'first run';
  /** The run it was compared with. */
  previousRun: string | null;
  /** Flaky: the verdict differed on this very kernel build, or flipped between pass and a
   *  kernel failure more than once along the line. A single pass-to-fail is a regression. */
  flaky: boolean;
  flakyWhy: string | null;
}

type Verdict = 'pass' | 'red';

/** Flips between pass and red at which a point counts as flaky along a line (one flip, pass to
 *  red, is a regression). */
export const FLAKY_FLIPS = 2;

/** Returns how often a sequence of verdicts changes between pass and red. */
export function countFlips<T>(verdicts: T[]): number {
  return verdicts.slice(1).filter((v, i) => v !== verdicts[i]).length;
}

// Only pass and kernel failures count towards flakiness: a skip or an infrastructure error
// says nothing about the kernel.
function verdictOf(r: TestRecord): Verdict | null {
  if (r.outcome === 'pass') return 'pass';
  if (isRed(r.outcome)) return 'red';
  return null;
}

/** Returns, per run id and point id, its change and flakiness along its line (runs in any order).
 *  A series run is compared with the previous run of its own series, else with the latest run
 *  of the line it branches off (its base); flips are counted within one line only. */
export function planLineHistory(runs: RunRecords[]): Map<string, Map<string, PointHistory>> {
  const out = new Map<string, Map<string, PointHistory>>();
  const last = new Map<string, RunRecords>();
  // Per line and point: the verdicts seen so far, with the build each came from.
  const seen = new Map<string, { verdict: Verdict; build: string; run: string }[]>();
  for (const run of byStartTime(runs)) {
    const key = lineKey(run);
    const prev = last.get(key) ?? last.get(baseLineKey(run)) ?? null;
    const points = new Map<string, PointHistory>();
    const before = new Map((prev?.tests ?? []).map((t) => [t.id, t]));
    for (const t of run.tests) {
      const p = before.get(t.id);
      const change = p ? classifyChange(p.outcome, t.outcome, { base: failureFingerprint(p), series: failureFingerprint(t) }) : 'first run';
      const v = verdictOf(t);
      const trailKey = `${key}\0${t.id}`;
      const trail = [...(seen.get(trailKey) ?? []), ...(v ? [{ verdict: v, build: run.build, run: run.run.runId }] : [])];
      seen.set(trailKey, trail);
      const sameBuild = trail.filter((x) => x.build === run.build);
      const flips = countFlips(trail.map((x) => x.verdict));
      let flakyWhy: string | null = null;
      if (v && new Set(sameBuild.map((x) => x.verdict)).size > 1) {
        flakyWhy = `passed and failed on the same kernel (${run.build}): runs ${sameBuild.map((x) => `${x.run} ${x.verdict === 'pass' ? 'pass' : 'fail'}`).join(', ')}`;
      } else if (v && flips >= FLAKY_FLIPS) {
        flakyWhy = `flipped between pass and fail ${flips} times along ${key}: ${trail.map((x) => (x.verdict === 'pass' ? 'pass' : 'fail')).join(' → ')}`;
      }
      points.set(t.id, { change, previousRun: p ? prev!.run.runId : null, flaky: flakyWhy !== null, flakyWhy });
    }
    out.set(run.run.runId, points);
    last.set(key, run);
  }
  return out;
}
