// Tests for the JUnit export: a real run (Debian 6.1.0-57, 17 known failures) and constructed
// records for what that run lacks (crash, timeout, infrastructure error, control characters),
// parsed back with a real XML parser.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { formatJunit, formatKnownEntry } from '../../src/report/junit.js';
import { parseRunRecords, type RunJson, type RunRecords } from '../../src/report/run-records.js';
import type { TestRecord } from '../../src/run/run.js';

const REAL = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'runs-real', '6.1.0-57');
const real = (): RunRecords => parseRunRecords(REAL, readFileSync(join(REAL, 'run.json'), 'utf8'), readFileSync(join(REAL, 'tests.jsonl'), 'utf8'));

// A run as parseRunRecords reads it from disk: run.json and tests.jsonl text (constructed).
function runOf(run: Partial<RunJson> & { runId: string }, recs: (Partial<TestRecord> & { fs: string; test: string })[]): RunRecords {
  const json: RunJson = {
    startedAt: '2026-12-04T02:00:00.000Z',
    kernel: { release: '6.1.0-57-amd64', origin: 'debian:linux-image-6.1.0-57-amd64', packageVersion: '6.1.192-3' },
    filesystems: ['ext4', 'xfs'],
    model: { name: 'legacy', idle: 1 },
    ...run,
  };
  const lines = recs.map((r) => JSON.stringify({ id: `${r.fs}-${r.test}`, outcome: 'pass', durationMs: 100, ...r }));
  return parseRunRecords(`/results/${run.runId}`, JSON.stringify(json), lines.join('\n'));
}

interface Case {
  classname: string;
  name: string;
  time: string;
  failure?: { message: string; type: string; '#text'?: string };
  error?: { message: string; type: string; '#text'?: string };
  skipped?: { message: string; '#text'?: string } | '';
  'system-out'?: string;
  'system-err'?: string;
}
interface Suite {
  name: string;
  tests: string;
  failures: string;
  errors: string;
  skipped: string;
  time: string;
  timestamp: string;
  properties: { property: { name: string; value: string }[] };
  testcase: Case[];
}

function parse(xml: string): Suite[] {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`not well-formed XML: ${JSON.stringify(valid.err)}`);
  const p = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    parseTagValue: false,
    // Decodes the &#10; that keep newlines in attribute values.
    htmlEntities: true,
    isArray: (name) => ['testsuite', 'testcase', 'property'].includes(name),
  });
  return (p.parse(xml) as { testsuites: { testsuite?: Suite[] } }).testsuites.testsuite ?? [];
}

const prop = (s: Suite, name: string): string | undefined => s.properties.property.find((p) => p.name === name)?.value;
const allCases = (suites: Suite[]): Case[] => suites.flatMap((s) => s.testcase);

t.test('the real run: one suite per filesystem, counts equal to the run\'s own outcome counts', async (t) => {
  const r = real();
  const suites = parse(formatJunit([r]));
  t.same(
    suites.map((s) => s.name),
    ['debian-6.1 ext4 (6.1.0-57-amd64, qemu)', 'debian-6.1 xfs (6.1.0-57-amd64, qemu)'],
  );
  const counts = r.run.counts!;
  t.same(counts, { pass: 24, skip: 5, xfail: 17 }, 'what the harness wrote in run.json when the run ended');
  const sum = (k: 'tests' | 'failures' | 'errors' | 'skipped'): number => suites.reduce((a, s) => a + Number(s[k]), 0);
  t.equal(sum('tests'), r.tests.length, 'one testcase per record');
  t.equal(allCases(suites).length, r.tests.length);
  t.equal(sum('failures'), 0);
  t.equal(sum('errors'), 0);
  t.equal(sum('skipped'), counts.skip! + counts.xfail!, 'skip and xfail are skipped, as SKIP and TODO are in TAP');
  for (const s of suites) {
    t.equal(Number(s.tests), s.testcase.length, `${s.name}: tests attribute`);
    t.equal(Number(s.skipped), s.testcase.filter((c) => c.skipped !== undefined).length, `${s.name}: skipped attribute`);
    t.equal(s.timestamp, '2026-12-03T14:48:02');
  }
  const ext4 = suites[0]!;
  t.equal(prop(ext4, 'kernel.release'), '6.1.0-57-amd64');
  t.equal(prop(ext4, 'kernel.line'), 'debian-6.1');
  t.equal(prop(ext4, 'refcount.model'), 'legacy');
  t.equal(prop(ext4, 'target'), 'qemu');
  t.equal(prop(ext4, 'run.id'), '20261203-144802Z-6.1.0-57-amd64-3d4b');
  t.equal(prop(ext4, 'kernel.origin'), 'debian:linux-image-6.1.0-57-amd64');
  t.equal(prop(ext4, 'kernel.commit'), undefined, 'a package has no commit');
});

t.test('the real run: a known failure is skipped with its entry, the dmesg window in system-out', async (t) => {
  const r = real();
  const cases = allCases(parse(formatJunit([r])));
  const c = cases.find((x) => x.classname === 'dax.debian-6_1.ext4' && x.name === 'pin-truncate-odirect-unmapped')!;
  t.ok(c, 'classname dax.<line>.<fs> with the line\'s dot replaced');
  t.notOk(c.failure);
  const skipped = c.skipped as { message: string; '#text'?: string };
  t.match(skipped.message, /^known failure: 6\.1's dax_layout_busy_page_range\(\) returns at once/);
  t.notMatch(skipped.message, /evidence:|this run:/, 'the entry alone: a record from before `known` was kept');
  t.match(skipped['#text'], /failed checks:\n {2}\S/, 'how this run failed stays in the body');
  t.match(c['system-out'], /WARNING: CPU: 0 PID: 342 at fs\/dax\.c:398 dax_disassociate_entry/);
  t.match(c['system-err'], /^dax-pin-truncate: obs before:/);
  const rec = r.tests.find((x) => x.id === 'ext4-pin-truncate-odirect-unmapped')!;
  t.equal(c.time, (rec.durationMs / 1000).toFixed(3));
  const skip = cases.find((x) => x.classname === 'dax.debian-6_1.ext4' && x.name === 'reflink-cow')!;
  t.same(skip.skipped, { message: 'not applicable to ext4 (runs on xfs)' });
  const pass = cases.find((x) => x.name === 'mmap-fault-4k')!;
  t.equal(pass.failure ?? pass.error ?? pass.skipped, undefined, 'a pass has no verdict element');
});

t.test('testcase identity is the same across two runs of one kernel line', async (t) => {
  const a = real();
  const b = runOf({ runId: '20261204-020000Z-6.1.0-58-amd64-aaaa', kernel: { release: '6.1.0-58-amd64', origin: 'debian:linux-image-6.1.0-58-amd64', packageVersion: '6.1.193-1' } }, a.tests.map((x) => ({ fs: x.fs, test: x.test, outcome: 'pass' as const })));
  const ids = (r: RunRecords): string[] => allCases(parse(formatJunit([r]))).map((c) => `${c.classname} ${c.name}`);
  t.same(ids(b), ids(a), 'another release and package of debian-6.1: same classname and name');
  const both = parse(formatJunit([a, b]));
  t.equal(both.length, 4, 'two suites per run');
  t.equal(prop(both[2]!, 'kernel.package_version'), '6.1.193-1');
  const built = runOf({ runId: 'r-built', kernel: { release: '7.2.13', origin: 'build:/tmp/sid/linux-7.2@5ea1e01bac9c (tinyconfig+dax.config, key bb1432986e05e667)' } }, [{ fs: 'ext4', test: 'mmap-fault-4k' }]);
  const s = parse(formatJunit([built]))[0]!;
  t.match(s.testcase[0]!.classname, /^dax\.[A-Za-z0-9_-]*linux-7_2\.ext4$/, 'a built tree\'s line, its dots and colons made safe');
  t.equal(prop(s, 'kernel.build_key'), 'bb1432986e05e667');
  t.equal(prop(s, 'kernel.commit'), '5ea1e01bac9c');
});

t.test('each outcome maps to its JUnit element; errors are infrastructure, not failures', async (t) => {
  const r = runOf({ runId: 'r-mixed' }, [
    { fs: 'ext4', test: 'a', outcome: 'fail', reason: '1 of 3 checks failed', checks: [{ name: 'unmapped: refcount back to idle', ok: false, expected: '1', actual: '2' }, { name: 'mapped: refcount', ok: true, expected: '2', actual: '2' }] },
    { fs: 'ext4', test: 'b', outcome: 'timeout', reason: 'helper did not finish in 120 s' },
    { fs: 'ext4', test: 'c', outcome: 'crash', reason: 'the kernel crashed: BUG: kernel NULL pointer dereference', findings: [{ kind: 'bug', line: 'BUG: kernel NULL pointer dereference, address: 0000000000000008', function: 'dax_insert_entry', file: null }] },
    {
      fs: 'xfs',
      test: 'a',
      outcome: 'error',
      reason: 'infrastructure: the guest was lost (QEMU exited 1): ssh: connection reset (after 1 retry)',
      attempts: [
        { attempt: 1, boot: 2, outcome: 'error', reason: 'infrastructure: the guest was lost', durationMs: 10 },
        { attempt: 2, boot: 3, outcome: 'error', reason: 'infrastructure: the guest was lost', durationMs: 10 },
      ],
    },
    { fs: 'xfs', test: 'b', outcome: 'skip', reason: 'the kernel lacks CONFIG_GUP_TEST' },
    { fs: 'xfs', test: 'c', outcome: 'xfail', knownAs: 'fail', reason: 'known failure: 6.1 frees a pinned block (evidence: run x); this run: 1 of 2 checks failed', known: { reason: '6.1 frees a pinned block', evidence: 'run x' } },
    { fs: 'all', test: 'kernel-log', outcome: 'fail', reason: 'the kernel reported 1 incident(s) outside every test window: warning (boot 1, set-up)' },
  ]);
  const suites = parse(formatJunit([r]));
  t.same(
    suites.map((s) => [s.name, s.tests, s.failures, s.errors, s.skipped]),
    [
      ['debian-6.1 ext4 (6.1.0-57-amd64, qemu)', '3', '3', '0', '0'],
      ['debian-6.1 xfs (6.1.0-57-amd64, qemu)', '3', '0', '1', '2'],
      ['debian-6.1 all (6.1.0-57-amd64, qemu)', '1', '1', '0', '0'],
    ],
    'the kernel-log point has its own suite',
  );
  const [ext4, xfs, all] = suites as [Suite, Suite, Suite];
  t.equal(ext4.testcase[0]!.failure!.type, 'fail');
  t.equal(ext4.testcase[0]!.failure!.message, '1 of 3 checks failed');
  t.match(ext4.testcase[0]!.failure!['#text'], 'unmapped: refcount back to idle: expected 1, observed 2');
  t.notMatch(ext4.testcase[0]!.failure!['#text'], 'mapped: refcount:', 'passed checks are left out');
  t.equal(ext4.testcase[1]!.failure!.type, 'timeout');
  t.equal(ext4.testcase[2]!.failure!.type, 'crash');
  t.match(ext4.testcase[2]!.failure!['#text'], 'bug in dax_insert_entry: BUG: kernel NULL pointer dereference');
  t.equal(xfs.testcase[0]!.error!.type, 'infrastructure');
  t.notOk(xfs.testcase[0]!.failure, 'infrastructure trouble is never a failure');
  t.match(xfs.testcase[0]!.error!['#text'], /attempts:\n {2}1 \(boot 2\): error/);
  t.same(xfs.testcase[1]!.skipped, { message: 'the kernel lacks CONFIG_GUP_TEST' });
  t.equal((xfs.testcase[2]!.skipped as { message: string }).message, 'known failure: 6.1 frees a pinned block', 'the entry text from known.reason');
  t.equal(all.testcase[0]!.classname, 'dax.debian-6_1.all');
  t.equal(all.testcase[0]!.name, 'kernel-log');
});

t.test('text is escaped and characters XML 1.0 forbids are dropped', async (t) => {
  const dmesg = ['[ 9.1] BUG: unable to handle page fault <dax_iomap_pfn+0x2a/0x80> & more', '\u001b[31m[ 9.2] Oops: 0000 [#1] \u0000PREEMPT SMP\u0007\u001b[0m', '[ 9.3] RIP: 0010:"quoted" \ud800lone surrogate'];
  const r = runOf({ runId: 'r-ctl' }, [
    { fs: 'ext4', test: 'crashy', outcome: 'crash', reason: 'the kernel crashed: Oops <"&">\nsecond line', dmesgExcerpt: dmesg, stderr: 'helper: \u001b]0;x\u0007 lost <stdout>' },
  ]);
  const xml = formatJunit([r]);
  t.notMatch(xml, /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/, 'no control character but tab, newline and carriage return');
  t.notMatch(xml, /[\ud800-\udfff]/, 'no lone surrogate');
  // A conforming parser turns a raw newline in an attribute into a space: it is written as &#10;.
  t.match(xml, 'message="the kernel crashed: Oops &lt;&quot;&amp;&quot;&gt;&#10;second line"');
  const c = parse(xml)[0]!.testcase[0]!;
  t.equal(c['system-out'], ['[ 9.1] BUG: unable to handle page fault <dax_iomap_pfn+0x2a/0x80> & more', '[31m[ 9.2] Oops: 0000 [#1] PREEMPT SMP[0m', '[ 9.3] RIP: 0010:"quoted" lone surrogate'].join('\n'));
  t.equal(c.failure!.message, 'the kernel crashed: Oops <"&">\nsecond line', 'a newline in an attribute survives as &#10;');
  t.equal(c['system-err'], 'helper: ]0;x lost <stdout>');
});

t.test('formatKnownEntry: the entry from known, else from the reason the harness wrote', async (t) => {
  const base = { fs: 'ext4', test: 'x', outcome: 'xfail' as const };
  const [withKnown] = runOf({ runId: 'k' }, [{ ...base, reason: 'known failure: A (evidence: e); this run: r', known: { reason: 'A', evidence: 'e' } }]).tests;
  t.equal(formatKnownEntry(withKnown!), 'A');
  const [old] = runOf({ runId: 'k' }, [{ ...base, reason: 'known failure: B (as in a (nested) note) (evidence: runs (two)); this run: 3 of 16 checks failed' }]).tests;
  t.equal(formatKnownEntry(old!), 'B (as in a (nested) note)');
  const [bare] = runOf({ runId: 'k' }, [{ ...base, reason: 'some other wording' }]).tests;
  t.equal(formatKnownEntry(bare!), 'some other wording');
});

t.test('no runs: an empty, well-formed document', async (t) => {
  const xml = formatJunit([]);
  t.equal(XMLValidator.validate(xml), true);
  t.match(xml, '<testsuites name="dax-harness" tests="0" failures="0" errors="0" skipped="0" time="0.000">');
});
