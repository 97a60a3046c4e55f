// What a series changed: the same suite's records on the base and on the series, point by
// point, and the tables a kernel developer reads (pure).
import { describeFinding } from '../suite/dmesg.js';
import { isRed, type Outcome, type TestRecord } from '../run/run.js';

export type Change = 'fixed' | 'new failure' | 'changed failure' | 'still failing' | 'now skipped' | 'passing' | 'not compared';

export interface Comparison {
  /** fs/test */
  point: string;
  base: Outcome | 'missing';
  series: Outcome | 'missing';
  change: Change;
  /** For a changed failure: how the base failed and how the series fails. */
  detail?: string;
}

function red(o: Outcome | 'missing'): boolean {
  return o !== 'missing' && isRed(o);
}

/**
 * Returns how a red point failed, in words that do not change from run to run: its outcome, the
 * checks that failed, the helper's own failure and the dmesg incidents with where they happened
 * (numbers such as milliseconds and addresses are masked).
 */
export function failureFingerprint(r: TestRecord): string {
  const mask = (x: string): string => x.replace(/0x[0-9a-f]+/gi, '0x#').replace(/\d+/g, '#');
  const parts = [
    `outcome ${r.knownAs ?? r.outcome}`,
    ...r.checks.filter((c) => !c.ok).map((c) => `check ${mask(c.name)}`).sort(),
    ...(r.report?.result === 'fail' ? [`helper ${mask(r.report.reason)}`] : []),
    ...[...new Set(r.findings.map((f) => `dmesg ${describeFinding(f)}`))].sort(),
  ];
  return parts.join('; ');
}

/** Returns the change of one point from its outcome on the base and on the series; two red
 *  points are compared by how they failed when their fingerprints are given. */
export function classifyChange(base: Outcome | 'missing', series: Outcome | 'missing', fingerprints?: { base: string; series: string }): Change {
  if (base === 'missing' || series === 'missing') return 'not compared';
  if (base === 'pass' && red(series)) return 'new failure';
  if (red(base) && series === 'pass') return 'fixed';
  if (red(base) && red(series)) return fingerprints && fingerprints.base !== fingerprints.series ? 'changed failure' : 'still failing';
  if (base === 'pass' && series === 'pass') return 'passing';
  if (base === 'pass' && series === 'skip') return 'now skipped';
  return 'not compared';
}

/** Returns one comparison per point present in either run, in the series run's order. */
export function compareRuns(base: TestRecord[], series: TestRecord[]): Comparison[] {
  const key = (r: TestRecord): string => `${r.fs}/${r.test}`;
  const b = new Map(base.map((r) => [key(r), r]));
  const s = new Map(series.map((r) => [key(r), r]));
  const points = [...new Set([...series.map(key), ...base.map(key)])];
  return points.map((p) => {
    const br = b.get(p);
    const sr = s.get(p);
    const bo = br?.outcome ?? 'missing';
    const so = sr?.outcome ?? 'missing';
    const fp = br && sr && red(bo) && red(so) ? { base: failureFingerprint(br), series: failureFingerprint(sr) } : undefined;
    const change = classifyChange(bo, so, fp);
    return change === 'changed failure' ? { point: p, base: bo, series: so, change, detail: `base: ${fp!.base} | series: ${fp!.series}` } : { point: p, base: bo, series: so, change };
  });
}

/** The changes that are the series' fault: a point it turned red, or red another way. */
export function isNewFailure(c: Comparison): boolean {
  return c.change === 'new failure' || c.change === 'changed failure';
}

/** Returns the exit code of a comparison: 1 for a new or changed failure, 2 if infrastructure
 *  kept a point from being compared, else 0 (a test failing the same way on the base is not the
 *  series'). */
export function exitCodeForComparison(c: Comparison[], runsHadInfraErrors: boolean): number {
  if (c.some(isNewFailure)) return 1;
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
  const order: Change[] = ['new failure', 'changed failure', 'now skipped', 'fixed', 'still failing', 'not compared', 'passing'];
  const rows = [...c].sort((a, b) => order.indexOf(a.change) - order.indexOf(b.change)).map((x) => [x.point, x.base, x.series, x.change]);
  const counts = order.map((o) => `${c.filter((x) => x.change === o).length} ${o}`).join(', ');
  const details = c.filter((x) => x.detail).map((x) => `${x.point}: ${x.detail}`);
  return [...formatTable(['point', 'base', 'series', 'change'], rows), counts, ...details];
}
