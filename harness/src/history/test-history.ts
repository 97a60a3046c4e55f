// `dax-harness history TEST` (pure): from a test's indexed points, per kernel line and
// filesystem — since when it fails, on which kernels, how flaky, and how it fails.
import type { HistoryRow } from './history-db.js';
import { countFlips, FLAKY_FLIPS } from '../report/line-history.js';

export interface LineHistorySummary {
  line: string;
  fs: string;
  runs: number;
  pass: number;
  red: number;
  error: number;
  skip: number;
  /** The state of the latest run. */
  now: 'pass' | 'red' | 'error' | 'skip';
  /** The first red run after the last pass (null while passing, or if never red). */
  redSince: HistoryRow | null;
  lastPass: HistoryRow | null;
  /** Kernel builds it was red on. */
  redOn: string[];
  /** pass/red flips along the line, and builds that gave both verdicts. */
  flips: number;
  flakyBuilds: string[];
  /** Distinct ways it failed, most frequent first. */
  signatures: { signature: string; count: number }[];
  /** Points that needed a retry or ended in an infrastructure error. */
  infraTrouble: number;
}

type State = LineHistorySummary['now'];

function stateOf(outcome: string): State {
  if (outcome === 'pass') return 'pass';
  if (outcome === 'error') return 'error';
  if (outcome === 'skip') return 'skip';
  return 'red';
}

/** Returns one summary per kernel line and filesystem, from rows oldest first. */
export function summarizeTestHistory(rows: HistoryRow[]): LineHistorySummary[] {
  const groups = new Map<string, HistoryRow[]>();
  for (const r of rows) groups.set(`${r.line_key}\0${r.fs}`, [...(groups.get(`${r.line_key}\0${r.fs}`) ?? []), r]);
  return [...groups.values()].map((g) => {
    const states = g.map((r) => stateOf(r.outcome));
    const verdicts = g.filter((r) => ['pass', 'red'].includes(stateOf(r.outcome)));
    const lastPassIdx = states.lastIndexOf('pass');
    const redAfter = g.findIndex((r, i) => i > lastPassIdx && stateOf(r.outcome) === 'red');
    const byBuild = new Map<string, Set<State>>();
    for (const r of verdicts) byBuild.set(r.build, (byBuild.get(r.build) ?? new Set()).add(stateOf(r.outcome)));
    const sigs = new Map<string, number>();
    for (const r of g) if (r.signature) sigs.set(r.signature, (sigs.get(r.signature) ?? 0) + 1);
    const count = (s: State): number => states.filter((x) => x === s).length;
    return {
      line: g[0]!.line_key,
      fs: g[0]!.fs,
      runs: g.length,
      pass: count('pass'),
      red: count('red'),
      error: count('error'),
      skip: count('skip'),
      now: states[states.length - 1]!,
      redSince: redAfter >= 0 ? g[redAfter]! : null,
      lastPass: lastPassIdx >= 0 ? g[lastPassIdx]! : null,
      redOn: [...new Set(g.filter((r) => stateOf(r.outcome) === 'red').map((r) => r.build))],
      flips: countFlips(verdicts.map((r) => stateOf(r.outcome))),
      flakyBuilds: [...byBuild].filter(([, s]) => s.size > 1).map(([b]) => b),
      signatures: [...sigs].map(([signature, c]) => ({ signature, count: c })).sort((a, b) => b.count - a.count),
      infraTrouble: g.filter((r) => r.attempts > 1 || r.outcome === 'error').length,
    };
  });
}

const day = (r: HistoryRow): string => r.started_at.slice(0, 10);

/** Returns the answer printed for `history TEST`. */
export function formatTestHistory(test: string, rows: HistoryRow[]): string {
  if (rows.length === 0) return `${test}: no indexed run has this test (run \`dax-harness index\` after copying runs into results/)`;
  const out = [`${test}: ${rows.length} result(s) in ${new Set(rows.map((r) => r.run_id)).size} run(s)`];
  for (const s of summarizeTestHistory(rows)) {
    out.push('', `${s.line}, ${s.fs}: ${s.runs} run(s): ${s.pass} pass, ${s.red} red, ${s.error} infrastructure error, ${s.skip} skip; now ${s.now}`);
    if (s.redSince) {
      out.push(`  red since ${day(s.redSince)} (run ${s.redSince.run_id}, kernel ${s.redSince.build})${s.lastPass ? `; last pass ${day(s.lastPass)} (run ${s.lastPass.run_id}, kernel ${s.lastPass.build})` : '; never passed'}`);
    } else if (s.red > 0) {
      out.push(`  passing again since ${s.lastPass ? `${day(s.lastPass)} (run ${s.lastPass.run_id})` : '?'}`);
    } else out.push('  never red');
    if (s.redOn.length > 0) out.push(`  red on: ${s.redOn.join(', ')}`);
    const flaky = s.flakyBuilds.length > 0 || s.flips >= FLAKY_FLIPS;
    out.push(`  flaky: ${flaky ? 'yes' : 'no'} (${s.flips} flip(s) between pass and red${s.flakyBuilds.length ? `; both verdicts on ${s.flakyBuilds.join(', ')}` : ''})`);
    for (const sig of s.signatures.slice(0, 5)) out.push(`  ${sig.count}× ${sig.signature}`);
    if (s.infraTrouble > 0) out.push(`  infrastructure trouble in ${s.infraTrouble} run(s) (retried or not judged)`);
  }
  return out.join('\n');
}
