// `dax-harness report`: which runs it reads (named, a campaign's, or all under results/) and
// that each output it was asked for is written whole.
import t from 'tap';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRuns, runReportCommand } from '../../src/report/report-command.js';
import type { ReportConfig } from '../../src/config.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'report-runs');
const names = ['night1-green', 'night2-infra', 'night3-new-failure'];

function resultsRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'rc-'));
  for (const n of names) cpSync(join(fixtures, n), join(root, n), { recursive: true });
  return root;
}
const rc = (over: Partial<ReportConfig>): ReportConfig => ({ runs: [], outDir: null, junit: null, kcidb: null, origin: 'daxharness', ...over });

t.test('the runs: all under results/ by default, those named, and a campaign stands for its runs', async (t) => {
  const root = resultsRoot();
  mkdirSync(join(root, 'report'));
  t.equal(loadRuns(rc({}), root).length, 3, 'the report directory is not a run');
  t.same(loadRuns(rc({ runs: [join(root, 'night2-infra')] }), root).map((r) => r.dir), [join(root, 'night2-infra')]);
  const campaign = join(root, 'campaign-baseline');
  mkdirSync(campaign);
  writeFileSync(join(campaign, 'campaign.json'), JSON.stringify({ base: { run_dir: join(root, 'night1-green') }, series: { run_dir: join(root, 'night3-new-failure') } }));
  t.same(loadRuns(rc({ runs: [campaign] }), root).map((r) => r.dir.split('/').pop()), ['night1-green', 'night3-new-failure']);
  t.throws(() => loadRuns(rc({}), mkdtempSync(join(tmpdir(), 'empty-'))), /no runs under/);
});

t.test('junit, kcidb and the dashboard are written from the same runs', async (t) => {
  const root = resultsRoot();
  const out = join(root, 'out');
  const lines = await runReportCommand(rc({ junit: join(out, 'all.xml'), kcidb: join(out, 'kcidb.json'), outDir: join(out, 'dash') }), root, () => {});
  t.match(lines[0], /^3 run\(s\): 20261130-020000Z-.* … 20261202-020000Z-/);
  const xml = readFileSync(join(out, 'all.xml'), 'utf8');
  t.equal((xml.match(/<testcase /g) ?? []).length, 3 * 47, 'every point of every run');
  const k = JSON.parse(readFileSync(join(out, 'kcidb.json'), 'utf8')) as { tests: unknown[]; version: { major: number } };
  t.equal(k.version.major, 5);
  t.equal(k.tests.length, 3 * 47);
  t.ok(existsSync(join(out, 'dash', 'index.html')));
  t.notOk(existsSync(`${join(out, 'all.xml')}.tmp-${process.pid}`), 'no temporary file left');
});
