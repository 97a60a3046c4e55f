import t from 'tap';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from '../src/config.js';
import { EXIT_INFRA, EXIT_KERNEL_FAILURE, EXIT_PASS } from '../src/errors.js';
import { shellQuote } from '../src/proc.js';
import { exitCodeFor, formatDryRun, isKernelFailure, type Outcome } from '../src/run.js';
import { SUITE } from '../src/suite.js';

const repoDir = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
const ALL: Outcome[] = ['pass', 'fail', 'skip', 'timeout', 'crash', 'error'];

t.test('isKernelFailure', async (t) => {
  t.same(ALL.filter(isKernelFailure), ['fail', 'timeout', 'crash'], 'fail, timeout and crash are the kernel; error is infrastructure');
});

t.test('exitCodeFor', async (t) => {
  t.equal(exitCodeFor([]), EXIT_PASS);
  t.equal(exitCodeFor(['pass', 'pass']), EXIT_PASS);
  t.equal(exitCodeFor(['pass', 'skip']), EXIT_PASS, 'a skip is not a failure');
  t.equal(exitCodeFor(['skip']), EXIT_PASS);
  for (const o of ['fail', 'timeout', 'crash'] as const) {
    t.equal(exitCodeFor(['pass', o, 'skip']), EXIT_KERNEL_FAILURE, `${o} is a kernel failure`);
  }
  t.equal(exitCodeFor(['pass', 'error']), EXIT_INFRA, 'infrastructure trouble alone');
  t.equal(exitCodeFor(['error', 'fail']), EXIT_KERNEL_FAILURE, 'a kernel failure is never hidden by an infrastructure error');
  t.equal(exitCodeFor(['crash', 'error', 'error']), EXIT_KERNEL_FAILURE);
  t.same([EXIT_PASS, EXIT_KERNEL_FAILURE, EXIT_INFRA], [0, 1, 2]);
});

t.test('formatDryRun for the default configuration', async (t) => {
  const cfg = resolveConfig(['--dry-run'], { HOME: '/h' }, repoDir, '/tmp');
  const text = formatDryRun(cfg);
  const lines = text.split('\n');
  t.equal(lines[0], '# QEMU (profile default: 2 label-less 1 GiB NVDIMMs: ext4 on one (memmap in the device, -M dev), xfs on the other (memmap in RAM, -M mem))');
  const qemu = lines[1] ?? '';
  t.match(qemu, /^qemu-system-x86_64 -machine pc,nvdimm=on,accel=tcg /, 'the QEMU argv, shell-quoted, on one line');
  t.ok(qemu.includes('mem-path=<run-dir>/pmem/pmem0.img') && qemu.includes('mem-path=<run-dir>/pmem/pmem1.img'), 'both NVDIMM backing files');
  t.ok(qemu.includes("'console=ttyS0,115200 panic=-1"), 'the kernel command line is one quoted word');
  t.ok(qemu.includes("'virtio-net-pci,netdev=net0,romfile='") || qemu.includes('virtio-net-pci,netdev=net0,romfile='));
  t.match(qemu, / -no-reboot$/);

  t.ok(lines.includes('# guest setup'));
  t.ok(lines.includes('ndctl create-namespace -f -e namespace0.0 -m fsdax -M dev'));
  t.ok(lines.includes('ndctl create-namespace -f -e namespace1.0 -m fsdax -M mem'));
  t.ok(lines.includes(shellQuote(['mkfs.ext4', '-F', '-q', '-b', '4096', '/dev/<blockdev of the ext4 namespace>'])));
  t.ok(lines.includes(shellQuote(['mkfs.xfs', '-f', '-q', '-d', 'su=2m,sw=1', '/dev/<blockdev of the xfs namespace>'])));
  t.equal(lines.filter((l) => l.includes('dax=always')).length, 2, 'a mount per filesystem');

  t.ok(lines.includes('# tests'));
  const testLines = lines.slice(lines.indexOf('# tests') + 1);
  t.equal(testLines.length, 2 * SUITE.length, 'every test on both filesystems');
  for (const fs of ['ext4', 'xfs']) {
    for (const d of SUITE) {
      const line = testLines.find((l) => l.endsWith(`# ${fs}/${d.name}, ${d.timeoutMs / 1000} s`));
      t.ok(line, `${fs}/${d.name} is listed with its bound`);
      t.ok(line?.startsWith(shellQuote(d.argv({ mountpoint: `/mnt/${fs}`, fs }))), `${fs}/${d.name} shows the exact helper command`);
    }
  }
});

t.test('formatDryRun follows the configuration', async (t) => {
  const cfg = resolveConfig(['--dry-run', '--profile', 'legacy', '--fs', 'xfs', '--tests', 'odirect-pin', '--accel', 'tcg'], { HOME: '/h' }, repoDir, '/tmp');
  const text = formatDryRun(cfg);
  t.notOk(text.split('\n').some((l) => l.startsWith('ndctl')), 'legacy pmem needs no namespace commands');
  t.match(text, /memmap=1024M!4096M/);
  t.ok(text.includes(shellQuote(['mkfs.xfs', '-f', '-q', '-d', 'su=2m,sw=1', '/dev/pmem0'])), 'the e820 device is known in advance');
  const testLines = text.split('\n').slice(text.split('\n').indexOf('# tests') + 1);
  t.same(testLines.map((l) => l.replace(/^.*# /, '')), ['xfs/odirect-pin, 90 s']);
});
