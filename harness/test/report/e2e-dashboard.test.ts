// The dashboard in a real browser: `dax-harness report` over three fixture nights (green, an
// infrastructure error, a new failure), served by Allure's own static server and loaded in
// Debian's headless Chromium. A screenshot is kept in results/test-artifacts/.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { chromium, type Page } from 'playwright-core';
import { serve } from '@allurereport/static-server';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const fixtures = join(repo, 'harness', 'test', 'fixtures', 'report-runs');
const artifacts = join(repo, 'results', 'test-artifacts');
const CHROMIUM = '/usr/bin/chromium';

t.test('the report of three nights loads without console errors and shows what a developer looks for', async (t) => {
  t.ok(existsSync(CHROMIUM), 'Debian chromium is installed (npm test installs it)');
  const out = mkdtempSync(join(tmpdir(), 'dash-'));
  const cli = join(repo, 'harness', 'dist', 'cli.js');
  const printed = execFileSync(process.execPath, [cli, 'report', ...['night1-green', 'night2-infra', 'night3-new-failure'].map((n) => join(fixtures, n)), '--out', out], { encoding: 'utf8' });
  t.match(printed, /3 run\(s\)/);
  t.match(printed, /1 latest run\(s\) shown, 2 added to the history/);

  const server = await serve({ servePath: out, port: 0, open: false });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.teardown(async () => {
    await browser.close();
    await server.stop();
  });
  const page: Page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text().slice(0, 300)}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${String(e).slice(0, 300)}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  await page.goto(`http://127.0.0.1:${server.port}/`);
  await page.getByText('debian-6.1 on qemu').first().waitFor();
  const home = await page.innerText('body');
  t.match(home, /Results\s+47/, 'the 47 points of the latest night');
  t.match(home, /Flaky tests\s+1/, 'one point is flaky');
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'dashboard.png') });

  // The failed point: why, the failed checks with expected and observed, and the dmesg excerpt.
  await page.getByText('ext4 hole-zero-page').first().click();
  await page.getByText('Category: New kernel failures').waitFor();
  const failed = await page.innerText('body');
  t.match(failed, /4 of 23 checks failed; dmesg: warning/);
  t.match(failed, /written_4k: refcount \(legacy model\): expected 1, observed 2/);
  t.match(failed, /WARNING: CPU: 0 PID: \d+ at \.\.\/\.\.\/src\/debian-6\.1\/fs\/dax\.c:400 dax_disassociate_entry/, 'the dmesg excerpt is on the page');
  t.match(failed, /dmesg window/, 'and attached');
  await page.screenshot({ path: join(artifacts, 'dashboard-failed-point.png'), fullPage: true });

  // The flaky point, by Allure's own filter.
  await page.goBack();
  await page.getByText('Flaky', { exact: true }).first().click();
  // The tree comes back collapsed: kernel line, filesystem, test.
  for (const level of ['debian-6.1 on qemu', 'xfs', 'stress-concurrent']) await page.getByText(level, { exact: true }).first().click();
  await page.getByText('xfs stress-concurrent').first().waitFor();
  t.notMatch(await page.innerText('body'), /ext4 hole-zero-page/, 'the filter shows only the flaky point');

  t.same(problems, [], 'no console errors, page errors or failed requests');
  t.ok(readFileSync(join(artifacts, 'dashboard.png')).length > 10_000, 'a screenshot is kept');
});
