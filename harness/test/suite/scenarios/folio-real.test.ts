// The folio-model judges against a real 6.15+ kernel: every helper report of a whole-suite run
// on Linux 7.2.13 (Debian sid's linux-source-7.2 7.2.13-1, tinyconfig + dax.config, built by the
// harness, run 20261203-152454Z-7.2.13-bc7c with the helpers of 2026-12-03: probe scans below
// idle, pins_done, disable_busy; odirect-pin-pmd's two from run 20261203-213213Z-7.2.13-1244 of the
// same build) judged again here. Under the folio model (what the kernel
// showed: vmf_insert_folio_pmd and friends in kallsyms) each report must pass; under the
// legacy model the same numbers must fail, or the judges would not depend on the model.
// Checks that read the fs_dax trace or dmesg (gup_test's dump_page line) are set aside: neither
// is part of the stored report.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectRefcountModel } from '../../../src/kernel/model.js';
import { SUITE, type HelperReport } from '../../../src/suite/suite.js';

const here = dirname(fileURLToPath(import.meta.url));
const runs = readFileSync(join(here, '..', '..', 'fixtures', 'helpers', 'folio-7.2.13-reports.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { id: string; test: string; fs: string; outcome: string; report: HelperReport });
const FOLIO = detectRefcountModel(new Set(['vmf_insert_folio_pmd', 'vmf_insert_page_mkwrite', 'dax_folio_reset_order']));
const LEGACY = detectRefcountModel(new Set(['__put_devmap_managed_page_refs']));

// A check about the trace or dmesg cannot hold without them; nothing else is set aside.
const traceCheck = (name: string): boolean => /fs_dax:|dump_page|dax_(pmd|pte)_fault_done|dax_load_hole|dax_insert_pfn_mkwrite|NEEDDSYNC|PMD fault|PTE faults|PMDs|PTEs|\(dmesg: /.test(name);

t.test('the 7.2.13 run covers the suite', async (t) => {
  const tested = new Set(runs.map((r) => r.test));
  for (const d of SUITE) t.ok(tested.has(d.name), `${d.name} has a real folio-model report`);
  t.ok(runs.length >= 40, `${runs.length} reports`);
});

for (const run of runs) {
  const def = SUITE.find((d) => d.name === run.test);
  if (!def) continue;
  t.test(`${run.id}: judged as on the kernel, and not as legacy`, async (t) => {
    const ctx = { fs: run.fs, trace: [], dmesg: [] };
    const folio = def.judge(run.report, FOLIO, ctx).filter((c) => !traceCheck(c.name));
    const bad = folio.filter((c) => !c.ok).map((c) => `${c.name}: expected ${c.expected}, got ${c.actual}`);
    t.same(bad, [], 'every check holds under the folio model');
    t.ok(folio.length > 0, `${folio.length} checks`);
    const legacy = def.judge(run.report, LEGACY, ctx).filter((c) => !traceCheck(c.name));
    const countsAPage = run.report.obs.some((o) => o.zone_device === 1);
    if (countsAPage) t.ok(legacy.some((c) => !c.ok), 'the same numbers fail under the legacy model');
  });
}
