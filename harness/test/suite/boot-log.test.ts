// The kernel log outside the test windows: incidents during boot, set-up, between tests and
// after the last one are found and placed, never lost.
import t from 'tap';
import { describeStretch, scanOutsideWindows, splitOutsideWindows } from '../../src/suite/boot-log.js';
import { parseDmesg } from '../../src/suite/dmesg.js';

const WARN = [
  'WARNING: CPU: 0 PID: 88 at fs/dax.c:398 dax_disassociate_entry+0x4f/0x60',
  'Modules linked in: dax_probe(OE)',
  'RIP: 0010:dax_disassociate_entry+0x4f/0x60',
  'Call Trace:',
  ' <TASK>',
  ' truncate_inode_pages_range+0x1f/0x30',
  ' </TASK>',
  '---[ end trace 0000000000000000 ]---',
];
const log = (lines: string[]): ReturnType<typeof parseDmesg> => parseDmesg(lines.map((l, i) => `[ ${(i + 1).toFixed(6)}] ${l}`).join('\n'));

t.test('the stretches outside the windows, with their neighbours', async (t) => {
  const lines = log(['Linux version 6.1.0', 'boot line', 'dax-harness: BEGIN ext4-a', 'in a', 'dax-harness: END ext4-a', 'gap', 'dax-harness: BEGIN ext4-b', 'in b', 'dax-harness: END ext4-b', 'tail']);
  const s = splitOutsideWindows(lines);
  t.same(s.map((x) => [x.after, x.before, x.lines.map((l) => l.text)]), [
    [null, 'ext4-a', ['Linux version 6.1.0', 'boot line']],
    ['ext4-a', 'ext4-b', ['gap']],
    ['ext4-b', null, ['tail']],
  ]);
  t.equal(describeStretch(s[0]!), 'boot and set-up, before ext4-a');
  t.equal(describeStretch(s[1]!), 'between ext4-a and ext4-b');
  t.equal(describeStretch(s[2]!), 'after ext4-b, the last test of this boot');
  t.equal(describeStretch({ after: null, before: null }), 'boot and set-up (no test ran)');
});

t.test('a window without END (the test crashed the guest) holds the rest of the log', async (t) => {
  const lines = log(['boot', 'dax-harness: BEGIN xfs-x', 'Kernel panic - not syncing: sysrq triggered crash']);
  t.same(scanOutsideWindows(1, lines), [], 'the panic belongs to the test that crashed');
  const next = log(['dax-harness: BEGIN xfs-x', 'lost', 'dax-harness: BEGIN xfs-y', 'in y', 'dax-harness: END xfs-y', 'after']);
  t.same(splitOutsideWindows(next).map((x) => x.lines.map((l) => l.text)), [[], ['after']], 'a BEGIN closes a window left open');
});

t.test('incidents outside the windows are found and placed; those inside are not', async (t) => {
  const lines = log([
    'Linux version 6.1.0',
    ...WARN,
    'dax-harness: BEGIN ext4-a',
    ...WARN,
    'dax-harness: END ext4-a',
    'INFO: task kworker/0:1:12 blocked for more than 30 seconds.',
    'dax-harness: BEGIN ext4-b',
    'dax-harness: END ext4-b',
  ]);
  const f = scanOutsideWindows(2, lines);
  t.same(
    f.map((x) => [x.boot, x.where, x.finding.kind, x.finding.function]),
    [
      [2, 'boot and set-up, before ext4-a', 'warning', 'dax_disassociate_entry'],
      [2, 'between ext4-a and ext4-b', 'hung-task', null],
    ],
  );
});

t.test('a clean boot log has nothing outside the windows', async (t) => {
  t.same(scanOutsideWindows(1, log(['Linux version 6.1.0', 'dax-harness: BEGIN ext4-a', 'dax-harness: END ext4-a'])), []);
});
