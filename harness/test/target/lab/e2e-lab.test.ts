// End to end, for real: a lab machine that is a real Debian system (the rig: a QEMU VM booted
// from a disk image made with mmdebstrap, OpenSSH's sshd, sudo, ndctl, labelled NVDIMMs with two
// namespaces for the harness and a "precious" one holding a file). The harness reaches it only
// over SSH and through the inventory's console and power commands, which here are the rig's
// stand-ins for a console server (socat on the serial socket) and a PDU (the QEMU monitor).
// Slow lane: one VM for the whole file.
import t from 'tap';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildLabImage, startLabVm, type LabVm } from './rig.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const cli = join(root, 'harness', 'dist', 'cli.js');
const work = mkdtempSync(join(tmpdir(), 'dax-e2e-lab-'));
const results = join(work, 'results');
const inventory = join(work, 'lab.json');
const log = (s: string): void => void process.stderr.write(`rig: ${s}\n`);

let vm: LabVm;
t.before(async () => {
  const t0 = Date.now();
  const image = await buildLabImage({ cacheDir: join(homedir(), '.cache', 'dax-harness'), log });
  const t1 = Date.now();
  vm = await startLabVm({ image, workDir: join(work, 'vm'), log });
  process.stderr.write(`rig: image ${((t1 - t0) / 1000).toFixed(1)} s, boot to SSH ${((Date.now() - t1) / 1000).toFixed(1)} s (${image.release})\n`);
});
t.teardown(async () => {
  await vm?.stop();
  rmSync(work, { recursive: true, force: true });
});

function writeInventory(over: Record<string, unknown> = {}): void {
  const machine = {
    host: vm.host,
    port: vm.port,
    user: vm.user,
    identity: vm.identity,
    hostKeys: [vm.hostKeyFingerprint],
    privilege: 'sudo',
    console: vm.consoleCommand,
    power: vm.power,
    boot: 'kexec',
    namespaces: vm.harnessNamespaces,
    timeouts: { connectS: 20, downS: 60, consoleS: 120, upS: 300 },
    ...over,
  };
  writeFileSync(inventory, JSON.stringify({ machines: { daxlab: machine } }, null, 2));
}

const harness = async (args: string[], timeout = 1_200_000) => await execa(process.execPath, [cli, ...args, '--inventory', inventory], { reject: false, timeout, env: { ...process.env, DAX_HARNESS_INVENTORY: inventory } });
const run = async (args: string[]) => await harness(['run', '--target', 'lab:daxlab', '--results', results, ...args]);
const preciousSum = async (): Promise<string> => (await vm.sshExec(`sha256sum ${vm.precious.file}`)).stdout.split(' ')[0] ?? '';
const leftovers = async (): Promise<string> =>
  (await vm.sshExec('ls -A /var/lib/dax-harness/runs 2>/dev/null; ls -d /var/lib/dax-harness/lease 2>/dev/null; grep -E "^(dax_probe|null_blk) " /proc/modules; grep " /var/lib/dax-harness/mnt" /proc/mounts; true')).stdout.trim();
const runJsonOf = (stderr: string): Record<string, unknown> => {
  const dir = /results in (\S+)/.exec(stderr)?.[1] ?? join(results, readdirSync(results).filter((d) => d.includes('Z-')).sort().pop()!);
  return JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as Record<string, unknown>;
};

t.test('a host key that is not the pinned one is refused, naming both, before anything runs there', async (t) => {
  writeInventory({ hostKeys: [`SHA256:${'Q'.repeat(43)}`] });
  const r = await run(['--tests', 'mmap-fault-4k']);
  t.equal(r.exitCode, 2);
  t.match(r.stderr, new RegExp(`host key of 127\\.0\\.0\\.1:${vm.port} has changed: it presented ${vm.hostKeyFingerprint.replace(/[+/]/g, '\\$&')}, the pinned key is SHA256:Q{43}`));
  t.equal((await vm.sshExec('test -e /var/lib/dax-harness && echo there || echo absent')).stdout.trim(), 'absent', 'nothing was made on the machine');
});

t.test('lab trust pins a key only when confirmed', async (t) => {
  writeInventory({ hostKeys: [] });
  const none = await run(['--tests', 'mmap-fault-4k']);
  t.match(none.stderr, /has no pinned host key: the harness never connects to a host it cannot verify/);
  const unconfirmed = await harness(['lab', 'trust', 'daxlab']);
  t.equal(unconfirmed.exitCode, 2, 'no terminal and no --fingerprint: not pinned');
  t.match(unconfirmed.stderr, /not pinning SHA256:\S+ without a confirmation/);
  const wrong = await harness(['lab', 'trust', 'daxlab', '--fingerprint', `SHA256:${'Z'.repeat(43)}`]);
  t.equal(wrong.exitCode, 2);
  t.match(wrong.stderr, /not the --fingerprint SHA256:Z{43} you gave; nothing was recorded/);
  const ok = await harness(['lab', 'trust', 'daxlab', '--fingerprint', vm.hostKeyFingerprint]);
  t.equal(ok.exitCode, 0, ok.stderr);
  t.same(JSON.parse(readFileSync(inventory, 'utf8')).machines.daxlab.hostKeys, [vm.hostKeyFingerprint]);
});

t.test('lab check: every line ok on a machine that is ready', async (t) => {
  writeInventory();
  const r = await harness(['lab', 'check', 'daxlab']);
  t.comment(r.stdout);
  t.equal(r.exitCode, 0, r.stdout + r.stderr);
  for (const what of ['host key', 'ssh', 'sudo', 'kexec', 'ndctl', 'pmem layout', 'namespaces dedicated', 'free space', 'console', 'power cycle']) {
    t.match(r.stdout, new RegExp(`^ok +${what}: `, 'm'), `${what} ok`);
  }
});

t.test('--dry-run names exactly the namespaces it would destroy, and changes nothing', async (t) => {
  writeInventory();
  const before = (await vm.sshExec('sudo ndctl list -N')).stdout;
  const r = await run(['--tests', 'mmap-fault-4k', '--dry-run']);
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, /^# DESTROYS namespace daxh0 \(namespace\d\.\d, \/dev\/pmem\S+, fsdax, \d+ MiB\) for ext4$/m);
  t.match(r.stdout, /^# DESTROYS namespace daxh1 .* for xfs$/m);
  t.notMatch(r.stdout, /DESTROYS namespace precious/);
  t.equal((await vm.sshExec('sudo ndctl list -N')).stdout, before, 'ndctl shows the same namespaces');
  t.equal(await leftovers(), '', 'no lease, no files, nothing loaded or mounted');
});

t.test('an inventory that points at a namespace in use is refused before any change', async (t) => {
  writeInventory({ namespaces: ['daxh0', vm.precious.namespace] });
  const before = (await vm.sshExec('sudo ndctl list -N')).stdout;
  const r = await run(['--tests', 'mmap-fault-4k']);
  t.equal(r.exitCode, 2);
  t.match(r.stderr, new RegExp(`refusing to touch its persistent memory: ${vm.precious.namespace} \\(/dev/pmem\\S+\\): mounted on ${vm.precious.mountpoint}.*nothing was changed`));
  t.equal((await vm.sshExec('sudo ndctl list -N')).stdout, before);
  t.equal(await leftovers(), '', 'the lease was given back');
  t.equal(await preciousSum(), vm.precious.sha256, 'the precious file is intact');
});

t.test('a live lease is refused with its holder; a lapsed one is taken over', async (t) => {
  writeInventory();
  const holder = JSON.stringify({ runId: 'other-run', host: 'elsewhere', pid: 1, user: 'someone', started: '2026-12-04T00:00:00Z', ttlS: 600 });
  await vm.sshExec(`sudo mkdir -p /var/lib/dax-harness/lease && echo '${holder}' | sudo tee /var/lib/dax-harness/lease/holder.json >/dev/null && date +%s | sudo tee /var/lib/dax-harness/lease/heartbeat >/dev/null`);
  const live = await run(['--tests', 'mmap-fault-4k']);
  t.equal(live.exitCode, 2);
  t.match(live.stderr, /lab machine daxlab is in use: held by run other-run of someone@elsewhere \(pid 1, since 2026-12-04T00:00:00Z\), last heartbeat \d+ s ago \(lapses after 600 s\)/);
  t.match(live.stderr, /dax-harness lab release daxlab/);
  await vm.sshExec('echo $(( $(date +%s) - 3600 )) | sudo tee /var/lib/dax-harness/lease/heartbeat >/dev/null');
  const lapsed = await run(['--tests', 'mmap-fault-4k', '--fs', 'ext4', '-v']);
  t.equal(lapsed.exitCode, 0, lapsed.stderr.slice(-3000));
  t.match(lapsed.stderr, /taking over: the lease of run other-run of someone@elsewhere .* lapsed \d+ s ago \(after 600 s\)/);
  t.equal(await leftovers(), '', 'restored, the lease released');
});

t.test('the fast suite on the machine\'s running kernel: set up, judged, and the machine restored', async (t) => {
  writeInventory();
  const bootId = (await vm.sshExec('cat /proc/sys/kernel/random/boot_id')).stdout.trim();
  const t0 = Date.now();
  // ext4 only: mkfs.xfs refuses the rig's 502 MiB namespaces (seen 2026-12-04, not yet explained).
  const r = await run(['--tests', 'fast', '--fs', 'ext4']);
  t.comment(`fast suite on the lab machine: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  t.equal(r.exitCode, 0, `green apart from known failures and proven skips (stderr tail: ${r.stderr.slice(-3000)})`);
  const rj = runJsonOf(r.stderr);
  t.equal(rj.target, 'lab:daxlab');
  const lab = rj.lab as { steps: { step: string; ms: number; ok: boolean }[]; defaultKernel: { release: string } };
  t.comment(lab.steps.map((s) => `${s.step}: ${s.ms} ms${s.ok ? '' : ' FAILED'}`).join('\n'));
  t.ok(lab.steps.every((s) => s.ok), 'every step ok');
  t.ok(lab.steps.some((s) => s.step === 'reboot to the default kernel'), 'poison-hwpoison leaves a poisoned page: the machine was rebooted, not reused');
  t.ok(lab.steps.some((s) => s.step.startsWith('verify default kernel ')), 'the end is verified in the default kernel');
  t.match(r.stdout, /^\s*ok \d+ - mmap-fault-2m/m);
  t.match(r.stdout, /gup-crosscheck # SKIP the kernel lacks CONFIG_GUP_TEST/);
  t.notSame((await vm.sshExec('cat /proc/sys/kernel/random/boot_id')).stdout.trim(), bootId, 'a new boot');
  t.equal(await leftovers(), '', 'nothing of the harness left: files, lease, modules, mounts');
  t.equal(await preciousSum(), vm.precious.sha256, 'the precious file is intact');
});

t.test('a panic mid-test is red with the panic text, the machine is power-cycled back and the run goes on', async (t) => {
  writeInventory();
  const r = await run(['--tests', 'selftest-panic,mmap-fault-4k', '--fs', 'ext4']);
  t.equal(r.exitCode, 1, 'a kernel failure');
  t.match(r.stdout, /^\s*not ok 1 - selftest-panic # CRASH the kernel crashed: Kernel panic - not syncing: sysrq triggered crash$/m, 'the panic from the console');
  t.match(r.stdout, /^\s*ok 2 - mmap-fault-4k/m, 'the next test ran on the rebooted machine');
  const lab = runJsonOf(r.stderr).lab as { steps: { step: string }[]; defaultKernel: { release: string } };
  t.ok(lab.steps.some((s) => s.step === 'reboot to the default kernel'));
  t.equal((await vm.sshExec('uname -r')).stdout.trim(), lab.defaultKernel.release, 'back in the default kernel');
  t.equal(await leftovers(), '');
  t.equal(await preciousSum(), vm.precious.sha256, 'the precious file is intact');
  t.ok(existsSync(inventory));
});
