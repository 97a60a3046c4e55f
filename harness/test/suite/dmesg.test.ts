// Tests for the kernel log parser: a corpus of real kernel reports (test/fixtures/dmesg), the
// input formats the harness captures, test markers, the allow-list and taint decoding.
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  EXCERPT_MAX_LINES,
  FINDING_KINDS,
  TAINT_FLAGS,
  formatDmesgLine,
  isFailureTaint,
  parseDmesg,
  parseTaint,
  scanDmesg,
  sliceBetweenMarkers,
  taintDelta,
  type DmesgFinding,
  type FindingKind,
} from '../../src/suite/dmesg.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dmesg');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const scanText = (text: string, allow?: RegExp[]): DmesgFinding[] =>
  scanDmesg(parseDmesg(text), allow ? { allow } : {});
const kinds = (findings: DmesgFinding[]): FindingKind[] => findings.map((f) => f.kind);
const first = (findings: DmesgFinding[]): DmesgFinding => {
  const f = findings[0];
  if (!f) throw new Error('expected at least one finding');
  return f;
};

// Every fixture, the exact incidents it holds, and the header line of each.
const CORPUS: Record<string, { kinds: FindingKind[]; headers: string[] }> = {
  'warn-fsdax-dax-insert-entry.txt': {
    kinds: ['warning'],
    headers: ['WARNING: CPU: 9 PID: 1309428 at fs/dax.c:380 dax_insert_entry+0x2ab/0x320'],
  },
  'warn-2025-format-arm64-clk.txt': {
    kinds: ['warning'],
    headers: ['WARNING: drivers/clk/clk.c:1188 at clk_core_disable+0x238/0x240, CPU#4: rmmod/508'],
  },
  'warn-2025-format-syzbot-no-timestamps.txt': {
    kinds: ['warning'],
    headers: [
      'WARNING: kernel/workqueue.c:4208 at __flush_work+0xabc/0xbc0 kernel/workqueue.c:4208, CPU#0: kworker/0:1/10',
    ],
  },
  'refcount-sock-map-free-two-incidents.txt': {
    kinds: ['refcount', 'refcount'],
    headers: ['refcount_t: addition on 0; use-after-free.', 'refcount_t: underflow; use-after-free.'],
  },
  'bad-page-state-boot.txt': {
    kinds: ['bad-page'],
    headers: ['BUG: Bad page state in process swapper/0  pfn:3d8e06'],
  },
  'kasan-slab-use-after-free.txt': {
    kinds: ['kasan'],
    headers: ['BUG: KASAN: slab-use-after-free in ip6_route_info_create+0xb84/0xc30'],
  },
  'null-deref-oops-panic-libnvdimm.txt': {
    kinds: ['bug', 'panic'],
    headers: [
      'BUG: kernel NULL pointer dereference, address: 0000000000000020',
      'Kernel panic - not syncing: Fatal exception',
    ],
  },
  'hung-task-syslog-prefix.txt': {
    kinds: ['hung-task'],
    headers: ['INFO: task kworker/u48:0:11 blocked for more than 122 seconds.'],
  },
  'soft-lockup-printk-caller.txt': {
    kinds: ['soft-lockup'],
    headers: ['watchdog: BUG: soft lockup - CPU#24 stuck for 23s! [pthread_mutex1_:6650]'],
  },
  'lockdep-circular-util-linux.txt': {
    kinds: ['lockdep'],
    headers: ['WARNING: possible circular locking dependency detected'],
  },
  'warning-then-rcu-stall-syslog-arm64.txt': {
    kinds: ['warning', 'rcu-stall'],
    headers: [
      'WARNING: CPU: 3 PID: 0 at net/sched/sch_generic.c:468 dev_watchdog+0x3a0/0x3a8',
      'rcu: INFO: rcu_preempt self-detected stall on CPU',
    ],
  },
  'list-corruption-printk-caller.txt': {
    kinds: ['list-corruption'],
    headers: [
      'list_del corruption. prev->next should be ffffc9000d18f7e0, but was ffff88804f5b4050. (prev=ffff88804f5b4050)',
    ],
  },
  'memory-failure-fsdax-poison.txt': {
    kinds: ['memory-failure'],
    headers: ['Memory failure: 0x1850602: Sending SIGBUS to fsdax_poison_v1:8457 due to hardware memory corruption'],
  },
  'benign-ext4-dax-experimental-console.txt': { kinds: [], headers: [] },
  'clean-boot-debian-6.1-composed.txt': { kinds: [], headers: [] },
};

t.test('fixture corpus', async (t) => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.txt')).sort();
  t.ok(files.length >= 10, 'at least ten fixtures');
  t.same(files, Object.keys(CORPUS).sort(), 'every fixture has an expectation and every expectation a fixture');

  for (const file of files) {
    t.test(file, async (t) => {
      const text = fixture(file);
      t.match(text.split('\n')[0], /^# source: \S/, 'first line names the source');
      const lines = parseDmesg(text);
      t.notOk(
        lines.some((l) => l.text.startsWith('# source:')),
        'the source comment is not parsed as a log line',
      );
      const findings = scanDmesg(lines);
      const want = CORPUS[file];
      if (!want) throw new Error(`no expectation for ${file}`);
      t.same(kinds(findings), want.kinds, 'exact kinds, in log order');
      t.same(
        findings.map((f) => f.line.text),
        want.headers,
        'header lines',
      );
      for (const f of findings) {
        t.ok(f.excerpt.length >= 1 && f.excerpt.length <= EXCERPT_MAX_LINES, 'excerpt size within the cap');
        t.ok(f.excerpt.includes(formatDmesgLine(f.line)), 'the excerpt contains its header');
        t.ok(lines.includes(f.line), 'the finding points at the parsed line itself');
      }
    });
  }
});

t.test('fixture details', async (t) => {
  t.test('classic WARNING keeps its whole trace as one incident', async (t) => {
    const f = first(scanText(fixture('warn-fsdax-dax-insert-entry.txt')));
    t.equal(f.line.ts, 43262.025815);
    t.equal(f.excerpt.length, 28, 'every line of the report, nothing after it');
    t.equal(f.excerpt.at(-1), '[43262.076413] RIP: 0033:0x7f8ce268bc23');
  });

  t.test('2025 WARNING format: the WARN message between "cut here" and WARNING is kept', async (t) => {
    const f = first(scanText(fixture('warn-2025-format-arm64-clk.txt')));
    t.equal(f.excerpt[0], '[  194.074015] ------------[ cut here ]------------');
    t.equal(f.excerpt[1], '[  194.078779] qdss already disabled');
    t.equal(f.excerpt.length, EXCERPT_MAX_LINES, 'a 50-line report is capped');
  });

  t.test('syzbot reports carry no timestamps', async (t) => {
    const lines = parseDmesg(fixture('warn-2025-format-syzbot-no-timestamps.txt'));
    t.ok(lines.every((l) => l.ts === null));
    t.equal(first(scanDmesg(lines)).excerpt[0], '------------[ cut here ]------------');
  });

  t.test('refcount_t message names the incident, WARNING banner stays inside it', async (t) => {
    const [a, b] = scanText(fixture('refcount-sock-map-free-two-incidents.txt'));
    t.ok(a && b);
    t.equal(a?.excerpt[0], '[   58.955232] ------------[ cut here ]------------');
    t.match(a?.excerpt[2] ?? '', /WARNING: CPU: 0 PID: 9 at lib\/refcount\.c:25/);
    t.equal(a?.excerpt.at(-1), '[   58.985055] ---[ end trace 0000000000000000 ]---', 'ends at its end marker');
    t.equal(b?.excerpt[0], '[   58.985813] ------------[ cut here ]------------', 'the second starts at its own cut');
  });

  t.test('Oops banner belongs to the BUG; the panic after the end marker is separate', async (t) => {
    const [bug, panic] = scanText(fixture('null-deref-oops-panic-libnvdimm.txt'));
    t.equal(bug?.line.ts, 1620.866813, 'the serial "login:" prompt in front of it is stripped');
    t.match(bug?.line.raw ?? '', /^ban25uut130 login: \[ 1620\.866813\] BUG:/, 'raw keeps the prompt');
    t.ok(bug?.excerpt.includes('[ 1620.888879] Oops: 0000 [#1] SMP NOPTI'));
    t.equal(bug?.excerpt.at(-1), '[ 1621.193169] ---[ end trace 7c3f7029ef24aa5a ]---');
    t.same(panic?.excerpt, [
      '[ 1621.418814] Kernel panic - not syncing: Fatal exception',
      '[ 1621.424740] Kernel Offset: 0x39000000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)',
      '[ 1621.550711] ---[ end Kernel panic - not syncing: Fatal exception ]---',
    ]);
  });

  t.test('KASAN report runs to its closing bar, excerpt capped', async (t) => {
    const lines = parseDmesg(fixture('kasan-slab-use-after-free.txt'));
    const f = first(scanDmesg(lines));
    t.equal(f.excerpt.length, EXCERPT_MAX_LINES);
    t.equal(f.excerpt[1], '[   17.307993] Read of size 1 at addr ffff8880100b8a94 by task repro/727');
    const after = parseDmesg(`${fixture('kasan-slab-use-after-free.txt')}\n[   18.000000] EXT4-fs (pmem0): mounted filesystem\n`);
    t.same(kinds(scanDmesg(after)), ['kasan'], 'a line after the closing bar is not part of any report');
  });

  t.test('syslog prefixes are stripped and timestamps kept', async (t) => {
    const lines = parseDmesg(fixture('hung-task-syslog-prefix.txt'));
    const f = first(scanDmesg(lines));
    t.equal(f.line.ts, 369.894678);
    t.equal(f.excerpt.length, 31, 'frames whose indentation was lost still count as the trace');
  });

  t.test('printk caller ids are stripped', async (t) => {
    const lines = parseDmesg(fixture('soft-lockup-printk-caller.txt'));
    t.ok(lines.every((l) => !/^\[\s*[CT]\d+\]/.test(l.text)));
    t.equal(first(scanDmesg(lines)).excerpt.at(-1)?.slice(0, 24), '[  138.658165] Code: 07 ', 'decoded frames stay in');
  });

  t.test('util-linux multi-line records join their record', async (t) => {
    const lines = parseDmesg(fixture('lockdep-circular-util-linux.txt'));
    const held = lines.find((l) => l.text === 'but task is already holding lock:');
    t.equal(held?.ts, 781.75303, 'continuation takes the record timestamp');
    t.ok(lines.some((l) => l.text === ' *** DEADLOCK ***'), 'indentation beyond the stamp width is kept');
  });

  t.test('WARNING then RCU stall are two incidents', async (t) => {
    const [warn, stall] = scanText(fixture('warning-then-rcu-stall-syslog-arm64.txt'));
    t.equal(warn?.excerpt[1], '[  739.813880] NETDEV WATCHDOG: eth0 (bcmgenet): transmit queue 2 timed out');
    t.equal(warn?.excerpt.at(-1), '[  739.814237] ---[ end trace f3e30a4dfa5833b8 ]---');
    t.equal(stall?.excerpt.at(-1), '[  758.414233]  ret_from_fork+0x10/0x30');
  });

  t.test('list corruption with "cut here", kernel BUG and Oops after it is one incident', async (t) => {
    const f = first(scanText(fixture('list-corruption-printk-caller.txt')));
    t.same(f.excerpt.slice(1, 4), [
      '[   66.969443] ------------[ cut here ]------------',
      '[   66.969973] kernel BUG at lib/list_debug.c:64!',
      '[   66.970491] Oops: invalid opcode: 0000 [#1] SMP KASAN NOPTI',
    ]);
  });

  t.test('memory failure lines about one pfn are one incident, and allow-listable', async (t) => {
    const text = fixture('memory-failure-fsdax-poison.txt');
    t.equal(first(scanText(text)).excerpt.length, 2);
    t.same(scanText(text, [/^Memory failure: /]), []);
  });

  t.test('an allowed line never swallows a neighbour joined to it', async (t) => {
    const recovered = /^Memory failure: 0x[0-9a-f]+: recovery action for dax page: Recovered$/;
    const sigbus = /^Memory failure: 0x[0-9a-f]+: Sending SIGBUS to \S+:\d+ due to hardware memory corruption$/;
    const text = fixture('memory-failure-fsdax-poison.txt');
    t.same(scanText(text, [sigbus, recovered]), [], 'every line of the incident is allowed: no finding');
    t.equal(scanText(text, [recovered]).length, 1, 'the SIGBUS line is not allowed by the Recovered pattern: the incident stays');
    const killing = [
      '[ 10.000001] Memory failure: 0x1850602: recovery action for dax page: Recovered',
      '[ 10.000002] Memory failure: 0x1850602: forcibly killing dax-poison:123 because of failure to unmap corrupted page',
    ].join('\n');
    const f = scanText(killing, [sigbus, recovered]);
    t.equal(f.length, 1, '"forcibly killing" next to "Recovered" is still reported');
    t.equal(f[0]?.kind, 'memory-failure');
  });

  t.test('where an incident happened: function and file:line', async (t) => {
    const warn = first(scanText(fixture('warn-fsdax-dax-insert-entry.txt')));
    t.equal(warn.function, 'dax_insert_entry');
    t.equal(warn.file, 'fs/dax.c:380');
    const w2025 = first(scanText(fixture('warn-2025-format-arm64-clk.txt')));
    t.equal(w2025.function, 'clk_core_disable', 'the 2025 WARNING format');
    t.equal(w2025.file, 'drivers/clk/clk.c:1188');
    const oops = first(scanText(fixture('null-deref-oops-panic-libnvdimm.txt')));
    t.equal(oops.function, 'klist_put', 'a page fault: the function of the faulting RIP');
    t.equal(oops.file, null, 'no file:line printed for a page fault');
    const bug = scanText('[ 1.0] kernel BUG at mm/filemap.c:1567!\n[ 1.0] invalid opcode: 0000 [#1] PREEMPT SMP NOPTI\n[ 1.0] RIP: 0010:folio_unlock+0x2a/0x30\n');
    t.equal(bug[0]?.file, 'mm/filemap.c:1567');
    t.equal(bug[0]?.function, 'folio_unlock');
    const hung = scanText('[ 40.0] INFO: task truncate:88 blocked for more than 30 seconds.\n');
    t.same([hung[0]?.function, hung[0]?.file], [null, null], 'a report without a site has no location');
  });

  t.test('benign console capture: shell prompt, mount(8) and ext4 DAX warnings', async (t) => {
    const lines = parseDmesg(fixture('benign-ext4-dax-experimental-console.txt'));
    t.ok(lines.some((l) => l.text === 'EXT4-fs (pmem0): DAX enabled. Warning: EXPERIMENTAL, use at your own risk'));
    t.ok(lines.some((l) => l.ts === null && l.text.startsWith('mount: /mnt/pmem:')), 'userspace lines have no ts');
    t.same(scanDmesg(lines), []);
  });

  t.test('clean 6.1 boot: markers slice the tests out', async (t) => {
    const lines = parseDmesg(fixture('clean-boot-debian-6.1-composed.txt'));
    t.same(
      sliceBetweenMarkers(lines, 't2-xfs-dax-mount')?.map((l) => l.text),
      [
        'XFS (pmem1): DAX enabled. Warning: EXPERIMENTAL, use at your own risk',
        'XFS (pmem1): Mounting V5 Filesystem',
        'XFS (pmem1): Ending clean mount',
        'XFS (pmem1): Unmounting Filesystem',
      ],
    );
    t.same(scanDmesg(sliceBetweenMarkers(lines, 't1-ext4-dax-mount') ?? []), []);
  });
});

t.test('parseDmesg formats', async (t) => {
  t.test('dmesg: seconds, separator space only, empty lines dropped', async (t) => {
    const lines = parseDmesg('[    0.000000] Linux version 6.1.0\n\n[   12.345678]  dax_fault_iter+0x243/0x600\n[   13.000000]\n');
    t.same(lines, [
      { ts: 0, text: 'Linux version 6.1.0', raw: '[    0.000000] Linux version 6.1.0' },
      { ts: 12.345678, text: ' dax_fault_iter+0x243/0x600', raw: '[   12.345678]  dax_fault_iter+0x243/0x600' },
    ]);
  });

  t.test('serial console: CR, colour codes, getty prompt', async (t) => {
    const lines = parseDmesg(
      '[    1.000000] pmem0: detected capacity change from 0 to 4194304\r\r\n' +
        '\x1b[0;32m  OK  \x1b[0m] Started ssh.service\r\n' +
        'guest login: [    9.500000] Kernel panic - not syncing: Fatal exception\r\n',
    );
    t.same(
      lines.map((l) => [l.ts, l.text]),
      [
        [1, 'pmem0: detected capacity change from 0 to 4194304'],
        [null, '  OK  ] Started ssh.service'],
        [9.5, 'Kernel panic - not syncing: Fatal exception'],
      ],
    );
    t.equal(lines[0]?.raw, '[    1.000000] pmem0: detected capacity change from 0 to 4194304', 'raw loses only trailing CRs');
  });

  t.test('/dev/kmsg records, dictionary continuation lines, escaped newlines', async (t) => {
    const lines = parseDmesg(
      [
        '6,1234,12345678,-;dax-harness: BEGIN t3-ext4-dax-fault',
        '4,1235,12400000,-,caller=T42;------------[ cut here ]------------',
        ' SUBSYSTEM=block',
        ' DEVICE=b259:0',
        '4,1236,12400100,-;first\\x0asecond',
      ].join('\n'),
    );
    t.same(
      lines.map((l) => [l.ts, l.text]),
      [
        [12.345678, 'dax-harness: BEGIN t3-ext4-dax-fault'],
        [12.4, '------------[ cut here ]------------'],
        [12.4001, 'first'],
        [12.4001, 'second'],
      ],
    );
    t.equal(lines[0]?.raw, '6,1234,12345678,-;dax-harness: BEGIN t3-ext4-dax-fault');
  });

  t.test('raw priority, journald ISO prefix, dmesg -T', async (t) => {
    const lines = parseDmesg(
      [
        '<4>[   42.000001] WARNING: CPU: 0 PID: 1 at fs/dax.c:1 f+0x1/0x2',
        '2024-05-01T10:00:00+0000 guest kernel: [   43.5] Memory failure: 0x1: recovery action for dax page: Recovered',
        '[Thu Mar 13 15:18:38 2025] INFO: task cat:1803 blocked for more than 122 seconds.',
      ].join('\n'),
    );
    t.same(
      lines.map((l) => [l.ts, l.text.slice(0, 16)]),
      [
        [42.000001, 'WARNING: CPU: 0 '],
        [43.5, 'Memory failure: '],
        [null, 'INFO: task cat:1'],
      ],
    );
  });

  t.test('only "# " lines are comments', async (t) => {
    t.same(
      parseDmesg('# source: x\n#5 line\n[ 1.0] text').map((l) => l.text),
      ['#5 line', 'text'],
    );
  });

  t.test('formatDmesgLine prints like dmesg', async (t) => {
    t.equal(formatDmesgLine({ ts: 5.1, text: 'x', raw: '' }), '[    5.100000] x');
    t.equal(formatDmesgLine({ ts: null, text: 'x', raw: '' }), 'x');
  });
});

t.test('sliceBetweenMarkers', async (t) => {
  const log = (s: string) => parseDmesg(s);
  const texts = (l: ReturnType<typeof sliceBetweenMarkers>) => l?.map((x) => x.text) ?? null;

  t.test('strictly between BEGIN and END', async (t) => {
    const lines = log(
      '[1.0] dax-harness: BEGIN t3-ext4-dax-fault\n[1.1] inside\n[1.2] dax-harness: END t3-ext4-dax-fault\n[1.3] after',
    );
    t.same(texts(sliceBetweenMarkers(lines, 't3-ext4-dax-fault')), ['inside']);
  });

  t.test('null without BEGIN; ids match exactly, not by prefix', async (t) => {
    const lines = log('[1.0] dax-harness: BEGIN t3-ext4-dax-fault-pmd\n[1.1] x');
    t.equal(sliceBetweenMarkers(lines, 't3-ext4-dax-fault'), null);
    t.equal(sliceBetweenMarkers(log('[1.0] hello'), 't1'), null);
  });

  t.test('missing END (the test crashed): everything after BEGIN', async (t) => {
    const lines = log('[1.0] dax-harness: BEGIN t4\n[1.1] BUG: kernel NULL pointer dereference, address: 0\n[1.2] Oops: 0000 [#1]');
    t.same(texts(sliceBetweenMarkers(lines, 't4')), ['BUG: kernel NULL pointer dereference, address: 0', 'Oops: 0000 [#1]']);
  });

  t.test('missing END stops at the next test or the next boot', async (t) => {
    const lines = log(
      '[1.0] dax-harness: BEGIN t4\n[1.1] a\n[2.0] dax-harness: BEGIN t5\n[2.1] b\n' +
        '[0.000000] Linux version 6.1.0 (x)\n[0.1] c',
    );
    t.same(texts(sliceBetweenMarkers(lines, 't4')), ['a']);
    t.same(texts(sliceBetweenMarkers(lines, 't5')), ['b']);
  });

  t.test('a rerun supersedes the earlier run', async (t) => {
    const lines = log(
      '[1.0] dax-harness: BEGIN t6\n[1.1] first\n[1.2] dax-harness: END t6\n' +
        '[2.0] dax-harness: BEGIN t6\n[2.1] second\n[2.2] dax-harness: END t6',
    );
    t.same(texts(sliceBetweenMarkers(lines, 't6')), ['second']);
  });

  t.test('markers written through /dev/kmsg', async (t) => {
    const lines = log('12,1,100,-;dax-harness: BEGIN k1\n4,2,200,-;inner\n12,3,300,-;dax-harness: END k1');
    t.same(texts(sliceBetweenMarkers(lines, 'k1')), ['inner']);
  });
});

t.test('scanDmesg classification of real header lines', async (t) => {
  const cases: [string, FindingKind][] = [
    ['WARNING: CPU: 0 PID: 5246 at fs/dax.c:372 dax_insert_entry+0x2d5/0x2f0', 'warning'],
    ['WARNING: fs/dax.c:123 at dax_insert_entry+0x12/0x34, CPU#0: t3/123', 'warning'],
    ['WARNING: at fs/dax.c:226 get_unlocked_entry+0xf7/0x120()', 'warning'],
    ['WARNING: kernel stack regs at ffffc90000e0fe58 in syz-executor:123 has bad \'bp\' value 0000000000000000', 'warning'],
    ['kernel BUG at fs/ext2/inode.c:637!', 'bug'],
    ['BUG: unable to handle page fault for address: ffffc90000e00000', 'bug'],
    ['BUG: sleeping function called from invalid context at mm/memory.c:5684', 'bug'],
    ['BUG: scheduling while atomic: kworker/0:1/10/0x00000002', 'bug'],
    ['BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!', 'bug'],
    ['BUG: Bad rss-counter state mm:00000000b1a2c3d4 type:MM_FILEPAGES val:-512', 'bug'],
    ['BUG kmalloc-64 (Not tainted): Objects remaining in kmalloc-64 on __kmem_cache_shutdown()', 'bug'],
    ['BUG: Bad page map in process t3  pte:8000000104e00225 pmd:10b7a1067', 'bad-page'],
    ['BUG: KASAN: use-after-free in dax_iomap_rw+0x1c0/0x1d0', 'kasan'],
    ['BUG: KFENCE: out-of-bounds read in test_out_of_bounds_read+0xa6/0x234', 'kfence'],
    ['Oops: 0000 [#1] PREEMPT SMP NOPTI', 'oops'],
    ['invalid opcode: 0000 [#1] PREEMPT SMP PTI', 'oops'],
    ['Internal error: Oops: 96000007 [#1] PREEMPT SMP', 'oops'],
    ['Unable to handle kernel paging request at virtual address ffffffc011debc78', 'oops'],
    ['general protection fault: 0000 [#1] SMP', 'general-protection'],
    ['Oops: general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] PREEMPT SMP KASAN NOPTI', 'general-protection'],
    ['Kernel panic - not syncing: panic_on_warn set ...', 'panic'],
    ['refcount_t: underflow; use-after-free.', 'refcount'],
    ['refcount_t: saturated; leaking memory.', 'refcount'],
    ['refcount_t: addition on 0; use-after-free.', 'refcount'],
    ['refcount_t: decrement hit 0; leaking memory.', 'refcount'],
    ['list_add corruption. prev->next should be next (ffff888100a1b2c0), but was 0000000000000000. (prev=ffff888100a1b2c0).', 'list-corruption'],
    ['list_del corruption, ffff888000000000->next is LIST_POISON1 (dead000000000100)', 'list-corruption'],
    ['INFO: task t3-ext4-dax-fault:123 blocked for more than 120 seconds.', 'hung-task'],
    ['watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [t3:123]', 'soft-lockup'],
    ['NMI watchdog: Watchdog detected hard LOCKUP on cpu 2', 'hard-lockup'],
    // The buddy/perf detector since 6.6 (kernel/watchdog.c watchdog_hardlockup_check).
    ['watchdog: CPU1: Watchdog detected hard LOCKUP on cpu 1', 'hard-lockup'],
    ['watchdog: CPU12: Watchdog detected hard LOCKUP on cpu 3', 'hard-lockup'],
    ['rcu: INFO: rcu_sched self-detected stall on CPU', 'rcu-stall'],
    ['rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:', 'rcu-stall'],
    ['INFO: rcu_sched detected stalls on CPUs/tasks: { 1} (detected by 0, t=21002 jiffies, g=1234, c=1233, q=12)', 'rcu-stall'],
    ['UBSAN: shift-out-of-bounds in fs/dax.c:1234:56', 'ubsan'],
    ['WARNING: possible circular locking dependency detected', 'lockdep'],
    ['WARNING: possible recursive locking detected', 'lockdep'],
    ['WARNING: inconsistent lock state', 'lockdep'],
    ['WARNING: suspicious RCU usage', 'lockdep'],
    ['WARNING: bad unlock balance detected!', 'lockdep'],
    ['INFO: possible circular locking dependency detected', 'lockdep'],
    ['[ INFO: possible recursive locking detected ]', 'lockdep'],
    ['Memory failure: 0x20cb00: recovery action for dax page: Recovered', 'memory-failure'],
    ['XFS (pmem0): Internal error xfs_trans_cancel at line 1097 of file fs/xfs/xfs_trans.c.  Caller xfs_create+0x29c/0x5f0 [xfs]', 'fs-error'],
    ['XFS (pmem0): Corruption detected. Unmount and run xfs_repair', 'fs-error'],
    ['EXT4-fs error (device pmem0): ext4_lookup:1851: inode #2: comm ls: iget: checksum invalid', 'fs-error'],
  ];
  for (const [line, kind] of cases) {
    t.same(kinds(scanText(`[   10.000000] ${line}`)), [kind], line);
  }
  t.same(
    [...new Set(cases.map(([, k]) => k))].sort(),
    [...FINDING_KINDS].sort(),
    'every kind in the union is exercised',
  );
});

t.test('scanDmesg leaves benign lines alone', async (t) => {
  const benign = [
    'x86/cpu: SGX disabled by BIOS.',
    'pmem0: detected capacity change from 0 to 4194304',
    'EXT4-fs (pmem0): DAX enabled. Warning: EXPERIMENTAL, use at your own risk',
    'XFS (pmem0): DAX enabled. Warning: EXPERIMENTAL, use at your own risk',
    'EXT2-fs (pmem0): DAX enabled. Warning: EXPERIMENTAL, use at your own risk',
    // LKP's etc/oops-pattern-ignore and kdevops' BENIGN_WARNINGS both list this one.
    'Spectre V2 : WARNING: Unprivileged eBPF is enabled with eIBRS on, data leaks possible via Spectre v2 BHB attacks!',
    'Speculative Return Stack Overflow: WARNING: See https://kernel.org/doc/html/latest/admin-guide/hw-vuln/srso.html for mitigation options.',
    'printk: console [ttyS0] enabled',
    'tsc: Marking TSC unstable due to clocksource watchdog',
    'random: crng init done',
    'dax_probe: loading out-of-tree module taints kernel.',
    'dax_probe: module verification failed: signature and/or required key missing - tainting kernel',
    'Disabling lock debugging due to kernel taint',
    'BUG: MAX_LOCKDEP_CHAIN_HLOCKS too low!',
    'BUG: MAX_STACK_TRACE_ENTRIES too low!',
    'WARNING: /etc/ssh/moduli does not exist, using fixed modulus',
    'Buffer I/O error on dev pmem0, logical block 0, async page read',
    'nd_pmem namespace0.0: unable to guarantee persistence of writes',
    'Injecting memory failure for pfn 0x20cb00 at process virtual address 0x7f763dd00000',
    'mce: Uncorrected hardware memory error in user-access at 1850602400',
    'INFO: task cat:1803 is blocked on a semaphore likely last held by task nvidia-modeset',
  ];
  for (const line of benign) t.same(scanText(`[    1.000000] ${line}`), [], line);
});

t.test('scanDmesg and userspace output on the serial console', async (t) => {
  const consoleText = [
    'WARNING: The following packages cannot be authenticated!',
    'BUG: report it to the helper author',
    '[    5.000000] WARNING: kernel stack regs at ffffc90000e0fe58 in t3:123 has bad \'bp\' value 0000000000000000',
  ].join('\n');
  t.same(kinds(scanText(consoleText)), ['warning'], 'the generic WARNING:/BUG: forms need a printk timestamp');
  t.same(
    kinds(scanText('WARNING: CPU: 0 PID: 1 at fs/dax.c:1 f+0x1/0x2\nBUG: KASAN: use-after-free in f+0x1/0x2')),
    ['warning', 'kasan'],
    'the kernel-only formats are found without one',
  );
});

t.test('scanDmesg incident boundaries', async (t) => {
  const stamp = (lines: string[]) => lines.map((l, i) => `[${(100 + i / 1000).toFixed(6)}] ${l}`).join('\n');

  t.test('two WARNINGs back to back are two incidents', async (t) => {
    const text = stamp([
      'WARNING: CPU: 0 PID: 1 at fs/dax.c:1 a+0x1/0x2',
      'Call Trace:',
      ' a+0x1/0x2',
      'WARNING: CPU: 0 PID: 1 at fs/dax.c:2 b+0x1/0x2',
      'Call Trace:',
      ' b+0x1/0x2',
    ]);
    t.same(kinds(scanText(text)), ['warning', 'warning']);
  });

  t.test('a lone "cut here" is a warning', async (t) => {
    const f = first(scanText(stamp(['------------[ cut here ]------------', 'some WARN text'])));
    t.equal(f.kind, 'warning');
    t.equal(f.line.text, '------------[ cut here ]------------');
  });

  t.test('"cut here" then a WARNING line of a shape not known here is one warning', async (t) => {
    const text = stamp([
      '------------[ cut here ]------------',
      'WARNING: kernel stack frame pointer at 00000000deadbeef in t3:123 has bad value 0000000000000000',
      'CPU: 0 PID: 123 Comm: t3 Not tainted 6.1.0 #1',
      'EXT4-fs (pmem0): mounted filesystem with ordered data mode. Quota mode: none.',
    ]);
    const found = scanText(text);
    t.same(kinds(found), ['warning']);
    t.equal(found[0]?.excerpt.length, 3, 'the line after the report is not in it');
  });

  t.test('arm32 order, WARNING before the refcount message, is one refcount incident', async (t) => {
    const text = stamp([
      '------------[ cut here ]------------',
      'WARNING: CPU: 0 PID: 200 at lib/refcount.c:28 refcount_warn_saturate+0xf0/0x15c',
      'refcount_t: underflow; use-after-free.',
      'CPU: 0 PID: 200 Comm: modetest Not tainted 6.1.55-linux4microchip-2023.10 #4',
      ' unwind_backtrace from show_stack+0x10/0x18',
      '---[ end trace 0000000000000000 ]---',
    ]);
    const f = first(scanText(text));
    t.same(kinds(scanText(text)), ['refcount']);
    t.equal(f.line.text, 'refcount_t: underflow; use-after-free.');
  });

  t.test('arm64 page fault: "Unable to handle" and its Internal error banner are one oops', async (t) => {
    const text = stamp([
      'Unable to handle kernel paging request at virtual address ffffffc011debc78',
      'Mem abort info:',
      '  ESR = 0x96000007',
      'Internal error: Oops: 96000007 [#1] PREEMPT SMP',
      'Modules linked in: vmac(O)',
    ]);
    t.same(kinds(scanText(text)), ['oops']);
  });

  t.test('BUG() then the trap banner is one bug', async (t) => {
    const text = stamp([
      'kernel BUG at fs/dax.c:637!',
      'invalid opcode: 0000 [#1] PREEMPT SMP PTI',
      'CPU: 0 PID: 1192 Comm: truncate Not tainted 6.3.0-rc2 #139',
    ]);
    t.same(kinds(scanText(text)), ['bug']);
  });

  t.test('XFS assertion with its XFS_WARN warning is one fs-error', async (t) => {
    const text = stamp([
      'XFS: Assertion failed: xfs_bmap_validate_extent(ip, whichfork, &rec) == NULL, file: fs/xfs/libxfs/xfs_bmap.c, line: 1219',
      '------------[ cut here ]------------',
      'WARNING: CPU: 1 PID: 2 at fs/xfs/xfs_message.c:104 assfail+0x23/0x28 [xfs]',
      'Call Trace:',
      ' <TASK>',
      ' </TASK>',
      '---[ end trace 0000000000000000 ]---',
    ]);
    t.same(kinds(scanText(text)), ['fs-error']);
  });

  t.test('a one-line report does not swallow the log after it', async (t) => {
    const text = stamp([
      'Memory failure: 0x20cb00: Killing dax-pmd:5421 due to hardware memory corruption',
      'Memory failure: 0x20cb00: recovery action for dax page: Recovered',
      'Memory failure: 0x20cc00: recovery action for dax page: Recovered',
      'EXT4-fs (pmem0): mounted filesystem with ordered data mode. Quota mode: none.',
    ]);
    const found = scanText(text);
    t.same(kinds(found), ['memory-failure', 'memory-failure'], 'another pfn is another incident');
    t.same(found.map((f) => f.excerpt.length), [2, 1]);
  });

  t.test('a report without a stack dump stops once the dump fails to come', async (t) => {
    const normal = Array.from({ length: 30 }, (_, i) => `EXT4-fs (pmem${i}): mounted filesystem`);
    const f = first(scanText(stamp(['BUG: Bad rss-counter state mm:0000000 type:MM_FILEPAGES val:-1', ...normal])));
    t.ok(f.excerpt.length <= 13, `excerpt has ${f.excerpt.length} lines`);
  });

  t.test('a test marker ends an open incident', async (t) => {
    const text = stamp([
      'WARNING: CPU: 0 PID: 1 at fs/dax.c:1 a+0x1/0x2',
      'Modules linked in:',
      'dax-harness: END t1',
      ' not part of it',
    ]);
    t.equal(first(scanText(text)).excerpt.length, 2);
  });

  t.test('the excerpt is capped but the incident still ends where it ends', async (t) => {
    const frames = Array.from({ length: 60 }, (_, i) => ` f${i}+0x1/0x2`);
    const text = stamp([
      'WARNING: CPU: 0 PID: 1 at fs/dax.c:1 a+0x1/0x2',
      'Call Trace:',
      ...frames,
      '---[ end trace 0000000000000000 ]---',
      'WARNING: CPU: 0 PID: 1 at fs/dax.c:2 b+0x1/0x2',
    ]);
    const found = scanText(text);
    t.same(kinds(found), ['warning', 'warning']);
    t.equal(found[0]?.excerpt.length, EXCERPT_MAX_LINES);
  });
});

t.test('scanDmesg allow-list', async (t) => {
  const warnAndPoison = [
    '[ 10.000000] Memory failure: 0x1850602: recovery action for dax page: Recovered',
    '[ 10.100000] WARNING: CPU: 0 PID: 7 at fs/dax.c:380 dax_insert_entry+0x2ab/0x320',
    '[ 10.100001] Call Trace:',
    '[ 10.100002]  dax_fault_iter+0x243/0x600',
  ].join('\n');

  t.test('suppresses only incidents whose header matches', async (t) => {
    t.same(kinds(scanText(warnAndPoison)), ['memory-failure', 'warning']);
    t.same(kinds(scanText(warnAndPoison, [/^Memory failure: /])), ['warning'], 'an allowed poison line hides no WARNING');
    t.same(kinds(scanText(warnAndPoison, [/at fs\/dax\.c:380 /])), ['memory-failure']);
  });

  t.test('an incident is allowed only when every header line of it is: the message and its banner', async (t) => {
    const text = fixture('refcount-sock-map-free-two-incidents.txt');
    t.same(kinds(scanText(text, [/refcount_t: addition on 0/])), ['refcount', 'refcount'], 'the message alone leaves its WARNING banner unallowed');
    t.same(kinds(scanText(text, [/at lib\/refcount\.c:28 /])), ['refcount', 'refcount'], 'the banner alone leaves its message unallowed');
    t.same(kinds(scanText(text, [/refcount_t: underflow/, /at lib\/refcount\.c:28 /])), ['refcount'], 'both: that incident is allowed, the other stays');
  });

  t.test('a /g pattern gives the same answer every time', async (t) => {
    const allow = [/Memory failure/g];
    t.same(kinds(scanText(warnAndPoison, allow)), ['warning']);
    t.same(kinds(scanText(warnAndPoison, allow)), ['warning']);
  });
});

t.test('taint', async (t) => {
  t.test('TAINT_FLAGS follows tainted-kernels.rst', async (t) => {
    t.equal(TAINT_FLAGS.map((f) => f.letter).join(''), 'PFSRMBUDAWCIOELKXTNJ');
    TAINT_FLAGS.forEach((f, i) => t.equal(f.bit, i, `${f.letter} at bit ${i}`));
    t.ok(Object.isFrozen(TAINT_FLAGS) && Object.isFrozen(TAINT_FLAGS[0]));
  });

  t.test('parseTaint', async (t) => {
    t.same(parseTaint(0), []);
    t.same(parseTaint(512).map((f) => f.letter), ['W']);
    // What the harness sees after loading its probe module: O and E.
    t.same(parseTaint(4096 + 8192).map((f) => [f.bit, f.letter]), [[12, 'O'], [13, 'E']]);
    t.same(parseTaint(2 ** 25), [{ bit: 25, letter: '?', meaning: 'unknown taint bit 25' }]);
    t.same(parseTaint(2 ** 40 + 1).map((f) => f.bit), [0, 40], 'bits past 31 are not truncated');
    t.throws(() => parseTaint(-1), RangeError);
    t.throws(() => parseTaint(1.5), RangeError);
    t.throws(() => parseTaint(Number.NaN), RangeError);
  });

  t.test('taintDelta returns the bits newly set', async (t) => {
    const before = 4096 + 8192;
    t.same(taintDelta(before, before), []);
    t.same(taintDelta(before, before + 512 + 128).map((f) => f.letter), ['D', 'W']);
    t.same(taintDelta(512, 512 + 32).map((f) => f.letter), ['B'], 'a warning before the test is not blamed on it');
    t.throws(() => taintDelta(-1, 0), RangeError);
  });

  t.test('isFailureTaint', async (t) => {
    t.same(
      TAINT_FLAGS.filter((f) => isFailureTaint(f.bit)).map((f) => f.letter),
      ['M', 'B', 'D', 'W', 'L'],
    );
    t.notOk(isFailureTaint(12), 'O: the harness loads its own out-of-tree module');
    t.notOk(isFailureTaint(13), 'E: ... unsigned');
    t.notOk(isFailureTaint(99));
  });
});
