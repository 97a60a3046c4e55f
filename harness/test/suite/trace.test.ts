import t from 'tap';
import { readFileSync } from 'node:fs';
import { parseDaxTrace, planTraceStart, planTraceStop, summarizeDaxFaults } from '../../src/suite/trace.js';

const text = readFileSync(new URL('../fixtures/trace/fs-dax-6.1.txt', import.meta.url), 'utf8');
const section = (title: string): string => text.split('=== ').find((p) => p.startsWith(title)) ?? '';

t.test('parses real 6.1 fs_dax events', async (t) => {
  const ev = parseDaxTrace(section('ext4 4k'));
  t.equal(ev.length, 8);
  t.same(ev[0], { event: 'dax_pmd_fault', ino: 0xd, address: 0x7fc759401000, pgoff: 0, result: [] });
  t.same(ev[1]?.result, ['FALLBACK'], 'a PMD fault off a 2 MiB boundary falls back');
  t.same(ev[3]?.result, ['MAJOR', 'NOPAGE'], 'PTE fault result flags');
  t.equal(ev[4]?.pgoff, 1);
  t.same(parseDaxTrace('# tracer: nop\n#\n  <idle>-0 [000] d.s. 1.0: sched_switch: foo\n'), [], 'other events and headers are ignored');
});

t.test('summarizes PMD versus PTE faults', async (t) => {
  t.same(summarizeDaxFaults(parseDaxTrace(section('ext4 4k'))), { pmdNopage: 0, pmdFallback: 1, pteDone: 3 });
  t.same(summarizeDaxFaults(parseDaxTrace(section('ext4 2m'))), { pmdNopage: 2, pmdFallback: 0, pteDone: 0 });
  t.same(summarizeDaxFaults(parseDaxTrace(section('xfs 2m'))), { pmdNopage: 2, pmdFallback: 0, pteDone: 0 }, 'xfs with su=2m gets PMDs too');
  t.same(summarizeDaxFaults([]), { pmdNopage: 0, pmdFallback: 0, pteDone: 0 });
});

t.test('the tracefs plans clear, enable, disable and read', async (t) => {
  t.match(planTraceStart(), /echo > \/sys\/kernel\/tracing\/trace;.*events\/fs_dax\/enable/);
  t.match(planTraceStop(), /echo 0 > \/sys\/kernel\/tracing\/events\/fs_dax\/enable; cat \/sys\/kernel\/tracing\/trace/);
});
