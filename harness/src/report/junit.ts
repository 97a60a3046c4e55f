// JUnit XML of runs (pure), in the shape Jenkins' junit step and GitLab's test reports read:
// one <testsuite> per run and filesystem, one <testcase> per test record, with the same counts
// as the run's TAP (a known failure is skipped here as it is TODO there, never a pass).
import { describeFinding } from '../suite/dmesg.js';
import type { TestRecord } from '../run/run.js';
import type { RunRecords } from './run-records.js';

// XML 1.0 allows only these characters (https://www.w3.org/TR/xml/#charsets): dmesg and helper
// stderr can carry ESC sequences, NULs and lone bytes, and one of them makes the file unreadable.
const ILLEGAL_XML = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

function xmlText(s: string): string {
  return s.replace(ILLEGAL_XML, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// Attribute values are normalized by parsers (a raw newline or tab becomes a space), so they
// are written as character references to survive.
function xmlAttr(s: string): string {
  return xmlText(s).replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');
}

function attrs(a: Record<string, string | number>): string {
  return Object.entries(a)
    .map(([k, v]) => ` ${k}="${xmlAttr(String(v))}"`)
    .join('');
}

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

/** Returns the known-failure entry that explains an xfail: the entry's own text, or (records from
 *  before `known` was kept) the part of the reason the harness wrote from it. */
export function formatKnownEntry(rec: TestRecord): string {
  if (rec.known) return rec.known.reason;
  const m = /^known failure: ([\s\S]*?) \(evidence: [\s\S]*\); this run: /.exec(rec.reason);
  return m ? m[1]! : rec.reason.replace(/^known failure: /, '');
}

/** Returns what a red point's record says about how it failed: the reason, the failed checks
 *  (expected against observed), the dmesg findings and the tries lost to infrastructure. */
export function formatFailureDetail(rec: TestRecord): string {
  const lines = rec.reason ? [rec.reason] : [];
  const failed = rec.checks.filter((c) => !c.ok);
  if (failed.length > 0) lines.push('failed checks:', ...failed.map((c) => `  ${c.name}: expected ${c.expected}, observed ${c.actual}`));
  if (rec.findings.length > 0) lines.push('dmesg findings:', ...rec.findings.map((f) => `  ${describeFinding(f)}: ${f.line}`));
  if (rec.attempts.length > 1) lines.push('attempts:', ...rec.attempts.map((a) => `  ${a.attempt} (boot ${a.boot ?? 'none'}): ${a.outcome}${a.reason ? `: ${a.reason}` : ''}`));
  return lines.join('\n');
}

// The outcome as JUnit has it; the counts on <testsuite> are the TAP's: fail, timeout and crash
// are failures, error is infrastructure, skip and xfail are skipped.
function verdict(rec: TestRecord): string {
  const body = xmlText(formatFailureDetail(rec));
  switch (rec.outcome) {
    case 'pass':
      return '';
    case 'fail':
    case 'timeout':
    case 'crash':
      return `      <failure${attrs({ message: rec.reason, type: rec.outcome })}>${body}</failure>\n`;
    case 'error':
      return `      <error${attrs({ message: rec.reason, type: 'infrastructure' })}>${body}</error>\n`;
    case 'skip':
      return `      <skipped${attrs({ message: rec.reason })}/>\n`;
    case 'xfail':
      return `      <skipped${attrs({ message: `known failure: ${formatKnownEntry(rec)}` })}>${body}</skipped>\n`;
  }
}

// Runs of one kernel line give their tests the same classname and name, so Jenkins and GitLab
// track each test's history across nights; the dots Jenkins reads as package separators are
// kept for dax.<line>.<fs> alone.
function className(line: string, fs: string): string {
  const safe = (s: string): string => s.replace(/[^A-Za-z0-9_-]/g, '_');
  return `dax.${safe(line)}.${safe(fs)}`;
}

function testcase(rec: TestRecord, line: string): string {
  const head = `    <testcase${attrs({ classname: className(line, rec.fs), name: rec.test, time: seconds(rec.durationMs) })}`;
  const inner = [
    verdict(rec),
    rec.dmesgExcerpt.length > 0 ? `      <system-out>${xmlText(rec.dmesgExcerpt.join('\n'))}</system-out>\n` : '',
    rec.stderr.trim() ? `      <system-err>${xmlText(rec.stderr)}</system-err>\n` : '',
  ].join('');
  return inner ? `${head}>\n${inner}    </testcase>\n` : `${head}/>\n`;
}

function properties(r: RunRecords): string {
  const k = r.run.kernel;
  const props: [string, string | null | undefined][] = [
    ['kernel.release', k.release],
    ['kernel.package_version', k.packageVersion],
    ['kernel.build_key', r.source.buildKey],
    ['kernel.line', r.source.line],
    ['kernel.origin', k.origin],
    ['kernel.commit', r.source.commit],
    ['kernel.series_hash', r.source.series?.hash],
    ['refcount.model', r.run.model?.name],
    ['target', r.target],
    ['run.id', r.run.runId],
  ];
  const kept = props.filter((p): p is [string, string] => typeof p[1] === 'string' && p[1] !== '');
  return `    <properties>\n${kept.map(([name, value]) => `      <property${attrs({ name, value })}/>\n`).join('')}    </properties>\n`;
}

interface Counts {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  ms: number;
}

function count(recs: TestRecord[]): Counts {
  const n = (...o: string[]): number => recs.filter((r) => o.includes(r.outcome)).length;
  return { tests: recs.length, failures: n('fail', 'timeout', 'crash'), errors: n('error'), skipped: n('skip', 'xfail'), ms: recs.reduce((a, r) => a + r.durationMs, 0) };
}

// The Ant JUnit schema's timestamp has no zone and no fraction; the harness's times are UTC.
function timestamp(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().slice(0, 19);
}

function suites(r: RunRecords): { xml: string; counts: Counts }[] {
  // The run's filesystems in its own order, then the points of no single filesystem (kernel-log).
  const fss = [...new Set([...r.run.filesystems, ...r.tests.map((t) => t.fs)])].filter((fs) => r.tests.some((t) => t.fs === fs));
  return fss.map((fs) => {
    const recs = r.tests.filter((t) => t.fs === fs);
    const c = count(recs);
    const name = `${r.source.line} ${fs} (${r.run.kernel.release}, ${r.target})`;
    const head = `  <testsuite${attrs({ name, tests: c.tests, failures: c.failures, errors: c.errors, skipped: c.skipped, time: seconds(c.ms), timestamp: timestamp(r.run.startedAt) })}>\n`;
    return { xml: `${head}${properties(r)}${recs.map((t) => testcase(t, r.source.line)).join('')}  </testsuite>\n`, counts: c };
  });
}

/** Returns the JUnit XML document of the runs: a testsuite per run and filesystem. */
export function formatJunit(runs: RunRecords[]): string {
  const all = runs.flatMap(suites);
  const sum = (k: keyof Counts): number => all.reduce((a, s) => a + s.counts[k], 0);
  const head = `<testsuites${attrs({ name: 'dax-harness', tests: sum('tests'), failures: sum('failures'), errors: sum('errors'), skipped: sum('skipped'), time: seconds(sum('ms')) })}>\n`;
  return `<?xml version="1.0" encoding="UTF-8"?>\n${head}${all.map((s) => s.xml).join('')}</testsuites>\n`;
}
