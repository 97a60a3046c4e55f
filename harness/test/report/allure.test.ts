// The Allure dashboard: how each point becomes an Allure result (pure), and the real Allure
// Report 3 folding night after night into its history (no browser; see e2e-dashboard).
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALLURE_CATEGORIES, allureStatus, formatRunSummary, planAllureResults, runAllureReport, splitLatest, stripAnalytics } from '../../src/report/allure.js';
import { planLineHistory } from '../../src/report/line-history.js';
import { readRunDir } from '../../src/report/run-records.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'report-runs');
const nights = ['night1-green', 'night2-infra', 'night3-new-failure'].map((n) => readRunDir(join(fixtures, n)));

interface Result {
  uuid: string;
  testCaseId: string;
  name: string;
  status: string;
  statusDetails: { message: string; trace: string; known: boolean; flaky: boolean };
  labels: { name: string; value: string }[];
  parameters: { name: string; value: string }[];
  steps: { name: string; status: string }[];
  attachments: { name: string; source: string }[];
  description: string;
}

function results(night: number): { byName: Map<string, Result>; files: Map<string, string> } {
  const h = planLineHistory(nights);
  const r = nights[night]!;
  const files = new Map(planAllureResults(r, h.get(r.run.runId)!, { console: 'console text' }).map((f) => [f.name, f.content]));
  const list = [...files].filter(([n]) => n.endsWith('-result.json')).map(([, c]) => JSON.parse(c) as Result);
  return { byName: new Map(list.map((x) => [x.name, x])), files };
}
const label = (r: Result, name: string): string | undefined => r.labels.find((l) => l.name === name)?.value;

t.test('outcomes map honestly: known failures are failed and marked known, never passed', async (t) => {
  t.same(['pass', 'fail', 'timeout', 'crash', 'error', 'skip', 'xfail'].map((o) => allureStatus(o as never)), ['passed', 'failed', 'failed', 'failed', 'broken', 'skipped', 'failed']);
  const { byName } = results(1);
  t.equal(byName.size, 47, 'one Allure result per point');
  const known = byName.get('ext4 pin-unlink')!;
  t.equal(known.status, 'failed');
  t.equal(known.statusDetails.known, true);
  t.match(known.statusDetails.message, /^known failure: 6\.1's ext4 and xfs inode eviction/);
  t.match(known.description, /Evidence: dax-harness runs/);
  const infra = byName.get('ext4 odirect-pin')!;
  t.equal(infra.status, 'broken', 'infrastructure trouble is broken, not failed');
  t.equal(infra.attachments.find((a) => a.name === 'attempts') !== undefined, true, 'both attempts are attached');
  const skip = byName.get('xfs gup-crosscheck')!;
  t.equal(skip.status, 'skipped');
  t.match(skip.statusDetails.message, /CONFIG_GUP_TEST/, 'the skip keeps its proof');
});

t.test('a failed point carries its failed checks as steps and its dmesg window as trace and attachment', async (t) => {
  const { byName, files } = results(2);
  const r = byName.get('ext4 hole-zero-page')!;
  t.equal(r.status, 'failed');
  t.equal(label(r, 'change'), 'new failure');
  t.equal(r.steps.filter((s) => s.status === 'failed').length, 4, 'four checks failed');
  t.match(r.steps.find((s) => s.status === 'failed')!.name, /expected 1, observed 2/);
  t.match(r.statusDetails.trace, /WARNING: CPU: 0 PID: \d+ at .*fs\/dax\.c:400 dax_disassociate_entry/);
  const dmesg = r.attachments.find((a) => a.name === 'dmesg window')!;
  t.match(files.get(dmesg.source)!, /dax_disassociate_entry/);
  t.equal(byName.get('xfs stress-concurrent')!.statusDetails.flaky, true);
  t.equal(label(byName.get('all kernel-log')!, 'outcome'), 'pass');
  t.ok(byName.get('all kernel-log')!.attachments.some((a) => a.name === 'console.log'), 'the whole-run log goes with the kernel-log point');
});

t.test('identity is stable: the same point on the same line has the same test case and parameters', async (t) => {
  const a = results(0).byName.get('xfs reflink-cow')!;
  const b = results(2).byName.get('xfs reflink-cow')!;
  t.equal(a.testCaseId, 'dax.xfs.reflink-cow');
  t.equal(a.testCaseId, b.testCaseId);
  t.same(a.parameters, b.parameters);
  t.same(a.parameters, [{ name: 'kernel line', value: 'debian-6.1' }, { name: 'target', value: 'qemu' }]);
  t.not(a.uuid, b.uuid, 'each run has its own result');
  t.same([...results(2).files], [...results(2).files], 'planning twice gives the same files, byte for byte');
});

t.test('categories put new failures first and infrastructure apart', async (t) => {
  t.same(ALLURE_CATEGORIES.map((c) => c.name), ['New kernel failures', 'Known kernel failures', 'Flaky', 'Kernel failures', 'Infrastructure errors (not the kernel)', 'Fixed since the previous run']);
});

t.test('stripAnalytics removes the tracking tag and nothing else', async (t) => {
  const page = `<body>\n    <div id="app"></div>\n    <script async src="https://www.googletagmanager.com/gtag/js?id=G-X"></script>\n    <script>\n        window.dataLayer = window.dataLayer || [];\n        function gtag(){dataLayer.push(arguments);}\n        gtag('js', new Date());\n        gtag('config', 'G-X', { "report": "awesome" });\n    </script>\n    <script>window.allureReportDataReady = true;</script>\n</body>`;
  const out = stripAnalytics(page);
  t.notMatch(out, /googletagmanager|gtag/);
  t.match(out, /<div id="app"><\/div>/);
  t.match(out, /allureReportDataReady/);
  t.equal(stripAnalytics(out), out, 'a page without it is left alone');
});

t.test('the run summary names the kernel, the package, the model, boots and infrastructure events', async (t) => {
  const s = formatRunSummary([nights[1]!]);
  t.match(s, /^debian-6\.1 on qemu: run 20261201-020000Z/);
  t.match(s, /kernel 6\.1\.0-57-amd64 \(6\.1\.0-57-amd64 6\.1\.192-3\), legacy refcount model/);
  t.match(s, /boot to SSH: \d+\.\d s/);
  t.match(s, /infrastructure: guest-lost in ext4-odirect-pin: .* \(gave up\)/);
  t.same(splitLatest(nights).latest.map((r) => r.run.runId), [nights[2]!.run.runId]);
});

t.test('the real Allure Report folds each earlier night into history once, and renders the latest', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'allure-'));
  const first = await runAllureReport(nights.slice(0, 2), out);
  t.same(first.folded, [nights[0]!.run.runId], 'night 1 goes into history; night 2 is shown');
  t.same(first.latest, [nights[1]!.run.runId]);
  const second = await runAllureReport(nights, out);
  t.same(second.folded, [nights[1]!.run.runId], 'only the night not yet in history is added');
  const again = await runAllureReport(nights, out);
  t.same(again.folded, [], 'reporting the same runs again adds nothing');
  const history = readFileSync(join(out, 'history.jsonl'), 'utf8').trim().split('\n');
  t.equal(history.length, 2, 'one history entry per earlier night');
  t.same(history.map((l) => new Date((JSON.parse(l) as { timestamp: number }).timestamp).toISOString()), [nights[0]!.run.startedAt, nights[1]!.run.startedAt], 'each entry is dated by its night, not by when the report was made');
  t.ok(existsSync(join(out, 'index.html')));
  t.notMatch(readFileSync(join(out, 'index.html'), 'utf8'), /googletagmanager/);
  t.ok(existsSync(join(out, 'widgets', 'metrics.json')));
  await t.rejects(runAllureReport([], out), /no runs to report/);
});
