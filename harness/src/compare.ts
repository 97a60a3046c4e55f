// What a series changed: the same suite's records on the base and on the series, point by
// point, and the tables a kernel developer reads (pure).
import { isKernelFailure, type Outcome, type TestRecord } from './run.js';

export type Change = 'fixed' | 'new failure' | 'still failing' | 'passing' | 'not compared';

export interface Comparison {
  /** fs/test */
  point: string;
  base: Outcome | 'missing';
  series: Outcome | 'missing';
  change: Change;
}

// A known failure is still a failure when comparing kernels: a series that turns a passing
// test into a known one has broken it all the same.
function red(o: Outcome): boolean {
  return isKernelFailure(o) || o === 'xfail';
}

/** Returns the change of one point from its outcome on the base and on the series. */
export function classifyChange(base: Outcome | 'missing', series: Outcome | 'missing'): Change {
  if (base === 'missing' || series === 'missing') return 'not compared';
  if (base === 'pass' && red(series)) return 'new failure';
  if (red(base) && series === 'pass') return 'fixed';
  if (red(base) && red(series)) return 'still failing';
  if (base === 'pass' && series === 'pass') return 'passing';
  return 'not compared';
}

/** Returns one comparison per point present in either run, in the series run's order. */
export function compareRuns(base: TestRecord[], series: TestRecord[]): Comparison[] {
  const key = (r: TestRecord): string => `${r.fs}/${r.test}`;
  const b = new Map(base.map((r) => [key(r), r.outcome]));
  const s = new Map(series.map((r) => [key(r), r.outcome]));
  const points = [...new Set([...series.map(key), ...base.map(key)])];
  return points.map((p) => {
    const bo = b.get(p) ?? 'missing';
    const so = s.get(p) ?? 'missing';
    return { point: p, base: bo, series: so, change: classifyChange(bo, so) };
  });
}

/** Returns the exit code of a comparison: 1 for a new failure, 2 if infrastructure kept a
 *  point from being compared, else 0 (a test that was already failing is not the series'). */
export function exitCodeForComparison(c: Comparison[], runsHadInfraErrors: boolean): number {
  if (c.some((x) => x.change === 'new failure')) return 1;
  if (runsHadInfraErrors) return 2;
  return 0;
}

/** Returns a fixed-width table with a header, one row per line. */
export function formatTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

/** Returns the comparison as a table, changes first, then the counts. */
export function formatComparison(c: Comparison[]): string[] {
  const order: Change[] = ['new failure', 'fixed', 'still failing', 'not compared', 'passing'];
  const rows = [...c].sort((a, b) => order.indexOf(a.change) - order.indexOf(b.change)).map((x) => [x.point, x.base, x.series, x.change]);
  const counts = order.map((o) => `${c.filter((x) => x.change === o).length} ${o}`).join(', ');
  return [...formatTable(['point', 'base', 'series', 'change'], rows), counts];
}
