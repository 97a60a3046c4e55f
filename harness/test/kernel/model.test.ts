import t from 'tap';
import { readFileSync } from 'node:fs';
import { HarnessError } from '../../src/core/errors.js';
import { detectRefcountModel, expectedMapcount, expectedRefcount, parseKallsymsNames } from '../../src/kernel/model.js';

const fixture = (p: string): string => readFileSync(new URL(`../fixtures/${p}`, import.meta.url), 'utf8');

t.test('parseKallsymsNames on /proc/kallsyms text', async (t) => {
  // Captured from this host's 6.18 kernel: a module symbol has "\t[module]" after the name.
  const host = parseKallsymsNames(fixture('kallsyms/host-6.18-excerpt.txt'));
  t.ok(host.has('vmf_insert_folio_pmd'));
  t.ok(host.has('__pfx_vmf_insert_folio_pmd'));
  t.ok(host.has('ftrace_trampoline'), 'the name of a module symbol, not its [module] tag');
  t.notOk(host.has('[__builtin__ftrace]'));
  t.notOk([...host].some((n) => /^[0-9a-f]{16}$/.test(n) || n.length === 1), 'no addresses or type letters taken as names');

  // 6.1 guest lines in the same format (addresses illustrative), with [xfs]/[ext4] modules.
  const guest = parseKallsymsNames(fixture('kallsyms/guest-6.1-constructed.txt'));
  t.same([...guest].sort(), [
    '__put_devmap_managed_page_refs',
    '_stext',
    'ext4_dax_huge_fault',
    'nvdimm_bus_register',
    'vmf_insert_mixed_mkwrite',
    'vmf_insert_pfn_pmd_prot',
    'xfs_filemap_fault',
    'xfs_filemap_huge_fault',
  ]);

  // kptr_restrict hides addresses as zeros; names still count. Blank and short lines are skipped.
  const hidden = parseKallsymsNames('0000000000000000 T vmf_insert_page_mkwrite\n\n0000000000000000 t xfs_filemap_fault [xfs]\ngarbage\nT x\n');
  t.same([...hidden].sort(), ['vmf_insert_page_mkwrite', 'xfs_filemap_fault']);
});

t.test('detectRefcountModel', async (t) => {
  const legacy = detectRefcountModel(parseKallsymsNames(fixture('kallsyms/guest-6.1-constructed.txt')));
  t.same(legacy, { name: 'legacy', idle: 1, mappingsCounted: false, evidence: ['__put_devmap_managed_page_refs'] }, '6.1: idle refcount 1, mappings not counted');

  const folio = detectRefcountModel(parseKallsymsNames(fixture('kallsyms/host-6.18-excerpt.txt')));
  t.same(folio, { name: 'folio', idle: 0, mappingsCounted: true, evidence: ['vmf_insert_folio_pmd', 'vmf_insert_page_mkwrite'] }, '6.18: idle 0, one reference per mapping');

  t.equal(detectRefcountModel(new Set(['put_devmap_managed_page'])).name, 'legacy', 'older legacy marker alone is enough');
  t.equal(detectRefcountModel(new Set(['__put_devmap_managed_folio_refs'])).name, 'legacy', '6.10-6.14 name of the hook (Debian 6.12): legacy');
  t.equal(detectRefcountModel(new Set(['dax_folio_reset_order'])).name, 'folio');
  t.same(detectRefcountModel(new Set(['__put_devmap_managed_page', 'put_devmap_managed_page', 'unrelated'])).evidence, ['__put_devmap_managed_page', 'put_devmap_managed_page']);

  // Near-miss names must not count: the __pfx_ padding symbol and other vmf_insert_* helpers.
  const near = new Set(['__pfx_vmf_insert_folio_pmd', 'vmf_insert_pfn_pmd', 'vmf_insert_mixed_mkwrite', 'dax_folio_put.isra.0']);
  const neither = t.throws(() => detectRefcountModel(near)) as HarnessError;
  t.type(neither, HarnessError);
  t.equal(neither.kind, 'guest', 'an unknown kernel is a guest problem, not a test failure');
  t.match(neither.message, /legacy markers: none; folio markers: none/);
  t.match(neither.hint, /CONFIG_KALLSYMS/);

  const both = t.throws(() => detectRefcountModel(new Set(['__put_devmap_managed_page_refs', 'vmf_insert_folio_pmd']))) as HarnessError;
  t.equal(both.kind, 'guest', 'both sets of markers: refuse to guess');
  t.match(both.message, /legacy markers: __put_devmap_managed_page_refs; folio markers: vmf_insert_folio_pmd/);

  const none = t.throws(() => detectRefcountModel(new Set()), HarnessError, 'an empty grep result (no kallsyms) is refused') as HarnessError;
  t.equal(none.kind, 'guest');
});

t.test('expectedRefcount and expectedMapcount per model', async (t) => {
  const legacy = detectRefcountModel(new Set(['__put_devmap_managed_page_refs']));
  const folio = detectRefcountModel(new Set(['vmf_insert_folio_pmd']));
  // legacy (6.1): idle 1, mappings take no reference and show no mapcount.
  t.equal(expectedRefcount(legacy, 0), 1);
  t.equal(expectedRefcount(legacy, 1), 1);
  t.equal(expectedRefcount(legacy, 3), 1);
  t.equal(expectedRefcount(legacy, 1, 1), 2, 'a transient pin adds one');
  t.equal(expectedRefcount(legacy, 0, 1024), 1025, 'FOLL_PIN bias adds as given');
  t.equal(expectedMapcount(legacy, 0), 0);
  t.equal(expectedMapcount(legacy, 2), 0);
  // folio (6.15+): idle 0, one reference and one mapcount per mapping.
  t.equal(expectedRefcount(folio, 0), 0);
  t.equal(expectedRefcount(folio, 1), 1);
  t.equal(expectedRefcount(folio, 3), 3);
  t.equal(expectedRefcount(folio, 1, 1), 2);
  t.equal(expectedMapcount(folio, 0), 0);
  t.equal(expectedMapcount(folio, 2), 2);
});
