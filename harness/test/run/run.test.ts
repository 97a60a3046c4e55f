import { GUEST_PATHS } from '../../src/target/qemu/session.js';
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { resolveConfig } from '../../src/config.js';
import { EXIT_INFRA, EXIT_KERNEL_FAILURE, EXIT_PASS } from '../../src/core/errors.js';
import { shellQuote } from '../../src/core/proc.js';
import { exitCodeFor, failureEvidence, formatDryRun, isKernelFailure, kernelLogRecord, missingOptions, readKernelFeatures, type Outcome, type TestRecord } from '../../src/run/run.js';
import { parseKconfig } from '../../src/kernel/kconfig.js';
import { parseDmesg } from '../../src/suite/dmesg.js';
import { scanOutsideWindows } from '../../src/suite/boot-log.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SUITE } from '../../src/suite/suite.js';

const repoDir = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');
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
  t.ok(lines.includes(shellQuote(['mkfs.xfs', '-f', '-q', '-d', 'su=2m,sw=1', '-m', 'reflink=1', '/dev/<blockdev of the xfs namespace>'])));
  t.equal(lines.filter((l) => l.includes('dax=always')).length, 2, 'a mount per filesystem');

  t.ok(lines.includes('# tests'));
  const testLines = lines.slice(lines.indexOf('# tests') + 1);
  t.equal(testLines.length, 2 * SUITE.length, 'every test on both filesystems');
  for (const fs of ['ext4', 'xfs']) {
    for (const d of SUITE) {
      const line = testLines.find((l) => l.endsWith(`# ${fs}/${d.name}, ${d.timeoutMs / 1000} s`));
      t.ok(line, `${fs}/${d.name} is listed with its bound`);
      t.ok(line?.startsWith(shellQuote(d.argv({ mountpoint: `/mnt/${fs}`, fs, ...GUEST_PATHS }))), `${fs}/${d.name} shows the exact helper command`);
    }
  }
});

t.test('formatDryRun follows the configuration', async (t) => {
  const cfg = resolveConfig(['--dry-run', '--profile', 'legacy', '--fs', 'xfs', '--tests', 'odirect-pin', '--accel', 'tcg'], { HOME: '/h' }, repoDir, '/tmp');
  const text = formatDryRun(cfg);
  t.notOk(text.split('\n').some((l) => l.startsWith('ndctl')), 'legacy pmem needs no namespace commands');
  t.match(text, /memmap=1024M!4096M/);
  t.ok(text.includes(shellQuote(['mkfs.xfs', '-f', '-q', '-d', 'su=2m,sw=1', '-m', 'reflink=1', '/dev/pmem0'])), 'the e820 device is known in advance');
  const testLines = text.split('\n').slice(text.split('\n').indexOf('# tests') + 1);
  t.same(testLines.map((l) => l.replace(/^.*# /, '')), ['xfs/odirect-pin, 90 s']);
});

t.test('a skip is proven from the kernel config: missingOptions', async (t) => {
  const debian = { config: parseKconfig('CONFIG_IO_URING=y\n# CONFIG_GUP_TEST is not set\nCONFIG_MEMORY_FAILURE=y\n'), source: '/cache/boot/config-6.1.0-57-amd64' };
  t.same(missingOptions(['CONFIG_GUP_TEST'], debian), ['CONFIG_GUP_TEST'], '"is not set" proves it absent');
  t.same(missingOptions(['CONFIG_IO_URING', 'CONFIG_MEMORY_FAILURE'], debian), [], 'present options');
  t.same(missingOptions(['CONFIG_NEW_THING'], debian), ['CONFIG_NEW_THING'], 'an option the config does not name is absent');
  t.same(missingOptions(['CONFIG_GUP_TEST'], { config: null, source: 'no kernel config known' }), [], 'no config: nothing can be proven absent');
  t.same(missingOptions(undefined, debian), []);
  const dir = mkdtempSync(join(tmpdir(), 'run-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'config'), '# CONFIG_GUP_TEST is not set\n');
  const k = { release: 'r', bzImage: 'b', modulesRoot: 'm', buildDir: null, origin: 'o' };
  t.same(readKernelFeatures({ ...k, configPath: join(dir, 'config') }).config?.get('CONFIG_GUP_TEST'), 'n');
  t.equal(readKernelFeatures({ ...k, configPath: join(dir, 'missing') }).config, null);
  t.equal(readKernelFeatures({ ...k, configPath: null }).config, null);
});

t.test('failureEvidence: a report that does not match its exit status is not a report', async (t) => {
  const base = { outcome: 'fail', checks: [], findings: [], taintBefore: 0, taintAfter: 0 } as unknown as TestRecord;
  const report = { helper: 'h', v: 1, result: 'fail' as const, reason: 'x', dax: true, obs: [], extra: {} };
  t.equal(failureEvidence({ ...base, report, exitCode: 1 }).reported, true);
  t.equal(failureEvidence({ ...base, report, exitCode: 1 }).helperFailure, 'x');
  t.equal(failureEvidence({ ...base, report, exitCode: null }).reported, false, 'printed, then killed by a signal');
  t.equal(failureEvidence({ ...base, report: null, exitCode: null }).reported, false, 'segfaulted before printing');
});

t.test('kernelLogRecord: the log outside the test windows is a point of its own', async (t) => {
  const lines = parseDmesg(['[ 1.0] Linux version 6.1.0', '[ 2.0] dax-harness: BEGIN ext4-a', '[ 2.1] dax-harness: END ext4-a', '[ 2.2] WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:5 f+0x1/0x2', '[ 2.3] dax-harness: BEGIN ext4-b'].join('\n'));
  const out = scanOutsideWindows(1, lines);
  const red = kernelLogRecord(out, [{ boot: 2, where: 'between ext4-b and ext4-c', letters: ['W'] }], 2);
  t.equal(red.outcome, 'fail', 'an incident outside the windows is the kernel\'s failure');
  t.match(red.reason, /warning in f \(boot 1, between ext4-a and ext4-b\); taint W gained \(boot 2, between ext4-b and ext4-c\)/);
  t.same([red.fs, red.test, red.id], ['all', 'kernel-log', 'all-kernel-log']);
  t.match(red.dmesgExcerpt.join('\n'), /# boot 1, between ext4-a and ext4-b:\n.*WARNING: CPU: 0/);
  t.equal(kernelLogRecord([], [], 3).outcome, 'pass');
  t.equal(kernelLogRecord([], [], 0).outcome, 'error', 'no log read: infrastructure, never a pass');
});
