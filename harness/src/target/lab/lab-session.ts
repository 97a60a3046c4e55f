// A lab machine as a run's target: reached only over SSH with a pinned host key and through the
// inventory's console and power commands. The session leases the machine, installs the helpers
// and the probe under the harness's own directory, sets up the inventory's namespaces, runs the
// tests, and at the end restores the machine: its own kernel, nothing of the harness left
// (unless --keep), the lease released. A kernel that dies is rebooted into the default kernel,
// escalating from a reboot to a power cycle, each phase with its own bound.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { execa } from 'execa';
import { HarnessError } from '../../core/errors.js';
import { alive, runCommand, waitFor } from '../../core/proc.js';
import { ConsoleLog } from '../qemu/boot.js';
import { detectGuestModel } from '../qemu/session.js';
import { runFsSetup, type FsType } from '../guest-setup.js';
import { SshTarget, type GuestCommand, type SshTargetConfig } from '../ssh-target.js';
import type { BootRecord, LiveTarget, TargetHost, TargetSession } from '../target.js';
import type { LabMachine } from './inventory.js';
import { decideTakeover, LAB_ROOT, parseLeaseState, planAcquire, planHeartbeat, planRelease, planTakeover, type LeaseHolder } from './lease.js';
import { checkBootProof, chooseInitrd, labKernelDir, newBootToken, parseBzImageVersion, planKexecCmdline, planKexecExec, planKexecLoad } from './kexec.js';
import { checkPmemDecision, decidePmem, mountsOf, parseBlkid, parseNdctlList, planLabFsSetup, type DeviceUse, type PmemDecision } from './pmem.js';

export interface LabSessionOptions {
  machine: LabMachine;
  runId: string;
  filesystems: FsType[];
  /** The helper binaries and the probe module built for the machine's kernel. */
  helpersDir: string;
  probeKo: string;
  consolePath: string;
  /** Leave the harness's files on the machine at the end. */
  keep: boolean;
  /** The kernel under test, booted one-shot with kexec; null: the kernel the machine runs. */
  kernel: { bzImage: string; release: string; builtIn: boolean } | null;
  /** Kernel command-line words for the kernel under test (besides the machine's own). */
  extraAppend: string[];
  log: (s: string) => void;
}

/** What the machine's running kernel is: read when the session connects. */
export interface KernelIdentity {
  release: string;
  version: string;
  cmdline: string;
  bootId: string;
}

/** One step of the session, with its time: run.json keeps them all. */
export interface LabStep {
  step: string;
  ms: number;
  ok: boolean;
  detail?: string;
}

const HEARTBEAT_MS = 15_000;
const NULLB_ITEM = 'daxh-slow';

/** Returns the SSH configuration of a machine (host keys pinned, sudo where not root). */
export function planLabSsh(m: LabMachine, deadlineMs: number): SshTargetConfig {
  if (m.hostKeys.length === 0) {
    throw new HarnessError('config', `lab machine ${m.name} has no pinned host key: the harness never connects to a host it cannot verify`, {
      hint: `dax-harness lab trust ${m.name} (shows the fingerprint and records it once you confirm)`,
    });
  }
  const agent = m.identity === null ? process.env.SSH_AUTH_SOCK : undefined;
  if (m.identity === null && !agent) {
    throw new HarnessError('config', `lab machine ${m.name} uses the ssh-agent, but SSH_AUTH_SOCK is not set`, { hint: 'start an agent with the key, or set "identity" in the inventory' });
  }
  return {
    host: m.host,
    port: m.port,
    username: m.user,
    privateKey: m.identity === null ? undefined : readFileSync(m.identity, 'utf8'),
    agent,
    hostKey: { fingerprints: m.hostKeys },
    prefix: m.privilege === 'sudo' ? ['sudo', '-n', '--'] : [],
    readyTimeoutMs: m.timeouts.connectS * 1000,
    connectRetries: 10_000,
    connectDeadlineMs: deadlineMs,
    keepaliveIntervalMs: 5000,
    keepaliveCountMax: 4,
  };
}

/** Returns the command that reads the running kernel's identity. */
export function planIdentity(): GuestCommand {
  return { argv: ['sh', '-c', 'uname -r; cat /proc/sys/kernel/random/boot_id; cat /proc/version; cat /proc/cmdline'], timeoutMs: 15_000 };
}

/** Returns the identity from planIdentity's output. */
export function parseIdentity(text: string): KernelIdentity {
  const [release = '', bootId = '', version = '', cmdline = ''] = text.split('\n');
  return { release: release.trim(), bootId: bootId.trim(), version: version.trim(), cmdline: cmdline.trim() };
}

/** Returns the script that makes the slow device (null_blk, reads complete after 2 s) and names it. */
export function planSlowDevice(): GuestCommand {
  const script = [
    'loaded=0',
    '[ -d /sys/module/null_blk ] || { modprobe null_blk nr_devices=0 && loaded=1; } || { echo "cannot load null_blk"; exit 20; }',
    'grep -q " /sys/kernel/config " /proc/mounts || mount -t configfs configfs /sys/kernel/config',
    `d=/sys/kernel/config/nullb/${NULLB_ITEM}`,
    // A device a run of ours left (killed before it restored the machine) is taken down first.
    '[ -d "$d" ] && { echo 0 > "$d/power"; rmdir "$d"; }',
    'mkdir "$d" && echo 1024 > "$d/size" && echo 4096 > "$d/blocksize" && echo 2 > "$d/irqmode" && echo 2000000000 > "$d/completion_nsec" && echo 1 > "$d/power" || { echo "cannot make the null_blk device"; exit 21; }',
    'idx=$(cat "$d/index")',
    'for i in $(seq 300); do for c in /dev/' + NULLB_ITEM + ' "/dev/nullb$idx"; do [ -b "$c" ] && { echo "dev $c loaded $loaded"; exit 0; }; done; sleep 0.1; done',
    'echo "no block device for null_blk index $idx"; exit 22',
  ].join('\n');
  return { argv: ['sh', '-c', script], timeoutMs: 90_000 };
}

/**
 * Returns the command that unmounts whatever is mounted under the harness's mount points (its
 * own by definition). Before a set-up a mount that stays is an error; at restore the other
 * steps (unloading, removing the files, releasing the lease) must still run, so it is not.
 */
export function planUnmountOwn(mustSucceed: boolean, root = LAB_ROOT): GuestCommand {
  const onFail = mustSucceed ? 'exit 1' : 'true';
  return { argv: ['sh', '-c', `for m in $(grep -o " $1/[^ ]*" /proc/mounts); do umount "$m" || ${onFail}; done`, 'umount-own', `${root}/mnt`], timeoutMs: 120_000 };
}

/** Returns the restore commands: unmount, unload, take the slow device down, remove the files. */
export function planRestore(runDir: string, unloadNullBlk: boolean, keep: boolean): GuestCommand[] {
  const cmds: GuestCommand[] = [planUnmountOwn(false)];
  cmds.push({ argv: ['sh', '-c', 'grep -q "^dax_probe " /proc/modules && rmmod dax_probe; true'], timeoutMs: 30_000 });
  cmds.push({
    argv: ['sh', '-c', `d=/sys/kernel/config/nullb/${NULLB_ITEM}; [ -d "$d" ] && { echo 0 > "$d/power"; rmdir "$d"; }; [ "$1" = 1 ] && rmmod null_blk; true`, 'nullb', unloadNullBlk ? '1' : '0'],
    timeoutMs: 30_000,
  });
  if (!keep) cmds.push({ argv: ['rm', '-rf', '--one-file-system', runDir], timeoutMs: 60_000 });
  return cmds;
}

/** Reads a machine's namespaces and what is on them, and decides which a run may touch. */
export async function inspectPmem(ssh: SshTarget, m: LabMachine, filesystems: FsType[]): Promise<PmemDecision> {
  const list = await ssh.exec({ argv: ['ndctl', 'list', '-N'], timeoutMs: 30_000 });
  if (list.exitCode !== 0) throw new HarnessError('guest', `ndctl list -N failed on lab machine ${m.name} (exit ${list.exitCode}): ${list.stderr.trim()}`, { hint: 'install ndctl there' });
  const all = parseNdctlList(list.stdout);
  const procMounts = (await ssh.exec({ argv: ['cat', '/proc/mounts'], timeoutMs: 10_000 })).stdout;
  const uses = new Map<string, DeviceUse>();
  for (const ns of all) {
    if (!ns.blockdev) continue;
    const b = await ssh.exec({ argv: ['blkid', '-o', 'export', `/dev/${ns.blockdev}`], timeoutMs: 20_000 });
    uses.set(ns.blockdev, { ...parseBlkid(b.stdout), mounts: mountsOf(procMounts, ns.blockdev) });
  }
  return decidePmem(m.namespaces, filesystems, all, (dev) => uses.get(dev) ?? { fstype: null, label: null, mounts: [] });
}

export class LabSession implements TargetSession {
  readonly label: string;
  readonly boots: BootRecord[] = [];
  readonly steps: LabStep[] = [];
  private ssh: SshTarget | null = null;
  private live: LiveTarget | null = null;
  private readonly console: ConsoleLog;
  private consoleProc: ChildProcess | null = null;
  private consoleStopped = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private leaseLost: string | null = null;
  private opened = false;
  private closed = false;
  private defaultKernel: KernelIdentity | null = null;
  private unloadNullBlk = false;
  /** Set while the machine runs the kernel under test (proven); cleared by any reboot. */
  private inKernelUnderTest = false;
  private kernelDir: string | null = null;
  private readonly runDir: string;
  private readonly holder: LeaseHolder;

  constructor(private readonly o: LabSessionOptions) {
    this.label = `lab:${o.machine.name}`;
    this.console = new ConsoleLog(o.consolePath);
    this.runDir = `${LAB_ROOT}/runs/${o.runId}`;
    const t = o.machine.timeouts;
    // The lease must outlive a reboot the run itself waits for.
    const ttlS = Math.max(120, t.downS + t.upS + 60);
    this.holder = { runId: o.runId, host: hostname(), pid: process.pid, user: userInfo().username, started: new Date().toISOString(), ttlS };
  }

  get current(): LiveTarget | null {
    return this.live;
  }

  private async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      const v = await fn();
      this.steps.push({ step: name, ms: Math.round(performance.now() - t0), ok: true });
      return v;
    } catch (err) {
      this.steps.push({ step: name, ms: Math.round(performance.now() - t0), ok: false, detail: (err as Error).message });
      throw err;
    }
  }

  /** Runs a command the harness needs to succeed; a failure is a guest (infrastructure) error. */
  private async must(cmd: GuestCommand, what: string): Promise<string> {
    const r = await this.conn().exec(cmd);
    if (r.exitCode !== 0) {
      throw new HarnessError('guest', `${what} failed on lab machine ${this.o.machine.name} (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''})`, { detail: (r.stdout + r.stderr).trim().slice(-2000) });
    }
    return r.stdout;
  }

  private conn(): SshTarget {
    if (!this.ssh || this.ssh.closed) throw new HarnessError('ssh', `the connection to lab machine ${this.o.machine.name} is gone${this.ssh?.closed ? ` (${this.ssh.closed})` : ''}`);
    return this.ssh;
  }

  private async connect(deadlineMs: number): Promise<SshTarget> {
    this.ssh = await SshTarget.connect(planLabSsh(this.o.machine, deadlineMs));
    return this.ssh;
  }

  /** Keeps the console command running for the whole session (console servers drop idle clients). */
  private startConsole(): void {
    const argv = this.o.machine.console;
    if (!argv || this.consoleStopped) return;
    const p = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.consoleProc = p;
    p.stdout?.on('data', (d: Buffer) => this.console.feed(d.toString('utf8')));
    p.on('exit', () => {
      this.consoleProc = null;
      if (!this.consoleStopped) setTimeout(() => this.startConsole(), 1000).unref();
    });
  }

  private async takeLease(): Promise<void> {
    const r = await this.must(planAcquire(this.holder), 'taking the lease');
    const state = parseLeaseState(r);
    if (state.kind === 'held') {
      const d = decideTakeover(state, { host: hostname(), alive });
      if (!d.takeOver) {
        throw new HarnessError('config', `lab machine ${this.o.machine.name} is in use: ${d.why}`, {
          hint: `wait for that run, or if you know it is gone: dax-harness lab release ${this.o.machine.name}`,
        });
      }
      this.o.log(`lab ${this.o.machine.name}: taking over: ${d.why}`);
      const t = await this.conn().exec(planTakeover(this.holder, state.heartbeat));
      if (t.exitCode !== 0) throw new HarnessError('config', `lab machine ${this.o.machine.name}: another run took the lapsed lease first`, { hint: 'try again later' });
    }
    this.heartbeat = setInterval(() => {
      if (!this.ssh || this.ssh.closed) return;
      void this.ssh
        .exec(planHeartbeat(this.o.runId))
        .then((h) => {
          if (h.exitCode === 12) this.leaseLost = 'the lease is no longer this run\'s (released or taken over by hand)';
        })
        .catch(() => undefined);
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /**
   * Takes the machine: console capture, connection, lease, the persistent-memory check (before
   * any change), then the harness's files. Everything that can refuse the run refuses it here.
   */
  async open(): Promise<void> {
    if (this.opened) return;
    const m = this.o.machine;
    if (m.health.unhealthy) {
      throw new HarnessError('config', `lab machine ${m.name} is marked unhealthy (${m.health.unhealthy}) and is skipped`, { hint: `dax-harness lab check ${m.name}; a passing check clears the mark` });
    }
    this.startConsole();
    await this.step('connect', () => this.connect(m.timeouts.connectS * 1000));
    await this.step('lease', () => this.takeLease());
    this.opened = true;
    checkPmemDecision(m.name, await this.decidePmem());
    this.defaultKernel = parseIdentity(await this.must(planIdentity(), 'reading the running kernel'));
    await this.step('install', async () => {
      await this.must({ argv: ['sh', '-c', 'umask 022; mkdir -p "$1/bin" "$1/tmp"', 'mkdir', this.runDir], timeoutMs: 30_000 }, 'making the run directory');
      const tar = await execa('tar', ['-C', this.o.helpersDir, '-cf', '-', '.'], { encoding: 'buffer', timeout: 60_000 });
      await this.must({ argv: ['tar', '-C', `${this.runDir}/bin`, '-xf', '-'], input: Buffer.from(tar.stdout), timeoutMs: 120_000 }, 'installing the helpers');
      await this.conn().upload(readFileSync(this.o.probeKo), `${this.runDir}/dax_probe.ko`, 0o644, 120_000);
    });
  }

  async ensure(): Promise<LiveTarget> {
    if (this.leaseLost) throw new HarnessError('guest', `lab machine ${this.o.machine.name}: ${this.leaseLost}`);
    if (this.live && this.ssh && !this.ssh.closed) return this.live;
    if (!this.opened) await this.open();
    if (!this.ssh || this.ssh.closed) await this.step('reconnect', () => this.connect(this.o.machine.timeouts.upS * 1000));
    const n = this.boots.length + 1;
    let boot: { bootToSshMs: number; milestones: Record<string, number | null> } = { bootToSshMs: 0, milestones: {} };
    if (this.o.kernel && !this.inKernelUnderTest) boot = await this.step(`kexec into ${this.o.kernel.release}`, () => this.bootKernelUnderTest());
    const t0 = performance.now();
    const ident = parseIdentity(await this.must(planIdentity(), 'reading the running kernel'));
    await this.must({ argv: ['sh', '-c', 'grep -q "^dax_probe " /proc/modules && rmmod dax_probe; insmod "$1"', 'insmod', `${this.runDir}/dax_probe.ko`], timeoutMs: 60_000 }, 'loading the probe module');
    await this.must({ argv: ['sh', '-c', 'grep -q " /sys/kernel/debug " /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug'], timeoutMs: 20_000 }, 'mounting debugfs');
    const slow = /^dev (\S+) loaded (\d)$/m.exec(await this.must(planSlowDevice(), 'making the slow device'));
    if (!slow?.[1]) throw new HarnessError('guest', `lab machine ${this.o.machine.name}: the slow device script named no device`);
    if (slow[2] === '1') this.unloadNullBlk = true;
    // A set-up that failed half-way (mkfs of the second filesystem) left the first mounted under
    // the harness's own mount points: those are let go before the namespaces are checked again.
    await this.must(planUnmountOwn(true), 'unmounting what an earlier set-up left');
    const decision = await this.decidePmem();
    checkPmemDecision(this.o.machine.name, decision);
    const mounted = await this.step(`set up ${this.o.filesystems.join(', ')}`, () => runFsSetup(this.conn(), planLabFsSetup(decision)));
    const model = await detectGuestModel(this.conn());
    const taint = Number.parseInt((await this.must({ argv: ['cat', '/proc/sys/kernel/tainted'], timeoutMs: 10_000 }, 'reading the taint mask')).trim(), 10);
    const host: TargetHost = { name: `lab machine ${this.o.machine.name}`, ssh: this.conn(), console: this.console, exited: () => null };
    this.boots.push({ n, bootToSshMs: boot.bootToSshMs, setupMs: Math.round(performance.now() - t0), milestones: boot.milestones, qemu: [], proof: { release: ident.release, bootId: ident.bootId, version: ident.version, cmdline: ident.cmdline } });
    this.live = {
      target: host,
      boot: n,
      model,
      mounts: new Map(mounted.map((x) => [x.fs, x])),
      taintAtSetup: taint,
      slowDevReady: true,
      paths: { bin: `${this.runDir}/bin`, slowDev: slow[1], tmp: `${this.runDir}/tmp` },
    };
    return this.live;
  }

  private decidePmem(): Promise<PmemDecision> {
    return inspectPmem(this.conn(), this.o.machine, this.o.filesystems);
  }

  /** Lets the current boot go: the machine is rebooted into its default kernel and set up again. */
  async discard(): Promise<void> {
    const l = this.live;
    this.live = null;
    if (!l || this.closed) return;
    await this.step('reboot to the default kernel', () => this.rebootToDefault());
  }

  /**
   * Installs the kernel under test (once), loads it with a fresh token and boots it, watching
   * each phase with its own bound: going down, the first console line, SSH up. A phase that
   * overruns, or a kernel that is not the one asked for, ends in a power cycle back to the
   * default kernel and a boot error with the console tail.
   */
  private async bootKernelUnderTest(): Promise<{ bootToSshMs: number; milestones: Record<string, number | null> }> {
    const k = this.o.kernel!;
    const m = this.o.machine;
    const img = readFileSync(k.bzImage);
    const banner = parseBzImageVersion(img);
    if (!this.kernelDir) {
      this.kernelDir = labKernelDir(img);
      await this.must({ argv: ['mkdir', '-p', this.kernelDir], timeoutMs: 20_000 }, 'making the kernel directory');
      await this.conn().upload(img, `${this.kernelDir}/bzImage`, 0o644, 300_000);
    }
    const dflt = this.defaultKernel!;
    const exists = await this.conn().exec({ argv: ['sh', '-c', 'for f; do [ -e "$f" ] && echo "$f"; done; true', 'exists', `/boot/initrd.img-${k.release}`, `/boot/initrd.img-${dflt.release}`], timeoutMs: 15_000 });
    const initrd = chooseInitrd(k.release, dflt.release, k.builtIn, (p) => exists.stdout.split('\n').includes(p));
    if (!initrd) {
      throw new HarnessError('config', `lab machine ${m.name} has no initrd for ${k.release}, and that kernel has modules: it cannot mount the machine's root without one`, {
        hint: 'test a kernel with everything built in (--tree builds one), or the packaged kernel the machine has installed',
      });
    }
    const token = newBootToken();
    const cmdline = planKexecCmdline(dflt.cmdline, this.o.extraAppend, token);
    await this.must(planKexecLoad(`${this.kernelDir}/bzImage`, initrd, cmdline), 'loading the kernel under test (kexec -l)');
    const t0 = performance.now();
    const ms = (): number => Math.round(performance.now() - t0);
    const milestones: Record<string, number | null> = { downMs: null, firstConsoleMs: null, sshMs: null };
    const mark = this.console.mark();
    await this.conn().exec(planKexecExec()).catch(() => undefined);
    const fail = async (why: string): Promise<never> => {
      const tail = this.console.sinceMark(mark).split('\n').map((l) => l.replace(/\r$/, '')).filter(Boolean).slice(-30).join('\n');
      await this.rebootToDefault().catch((err: unknown) => this.o.log(`lab ${m.name}: could not bring it back: ${(err as Error).message}`));
      throw new HarnessError('boot', `the kernel under test (${k.release}) did not come up on lab machine ${m.name}: ${why}; the machine was brought back to its default kernel`, { detail: tail || '(nothing on the console)' });
    };
    if (!(await waitFor(() => this.ssh?.closed != null, m.timeouts.downS * 1000))) return await fail(`the machine did not go down within ${m.timeouts.downS} s of systemctl kexec`);
    milestones.downMs = ms();
    if (m.console) {
      if (!(await waitFor(() => this.console.mark() > mark && /Linux version|Booting|\[\s*\d+\.\d+\]/.test(this.console.sinceMark(mark)), m.timeouts.consoleS * 1000))) {
        return await fail(`nothing on the console within ${m.timeouts.consoleS} s`);
      }
      milestones.firstConsoleMs = ms();
    }
    this.ssh?.destroy('kexec');
    const up = await this.connect(m.timeouts.upS * 1000).catch(() => null);
    if (!up) return await fail(`SSH did not answer within ${m.timeouts.upS} s`);
    milestones.sshMs = ms();
    const now = parseIdentity(await this.must(planIdentity(), 'reading the kernel that came up'));
    const wrong = checkBootProof(now, dflt, { token, banner, release: k.release });
    if (wrong) return await fail(wrong);
    this.inKernelUnderTest = true;
    this.o.log(`lab ${m.name}: ${k.release} is up (proven: new boot_id, token ${token}, version banner), ${ms()} ms after systemctl kexec`);
    return { bootToSshMs: ms(), milestones };
  }

  private async rebootToDefault(): Promise<void> {
    const m = this.o.machine;
    this.inKernelUnderTest = false;
    // The boot to leave: read while the machine answers, else the last one known.
    const answer = this.ssh && !this.ssh.closed ? await this.ssh.exec(planIdentity()).catch(() => null) : null;
    const before = (answer && parseIdentity(answer.stdout).bootId) || this.defaultKernel?.bootId;
    if (this.ssh && !this.ssh.closed) {
      // systemctl answers before the machine goes down; the connection drop is the sign it went.
      await this.ssh.exec({ argv: ['systemctl', 'reboot'], timeoutMs: 15_000 }).catch(() => undefined);
      const down = await waitFor(() => this.ssh?.closed != null, m.timeouts.downS * 1000);
      if (!down) await this.powerCycle('it did not go down within the downS bound');
    } else {
      await this.powerCycle('it does not answer');
    }
    this.ssh?.destroy('rebooting');
    let up = await this.connect(m.timeouts.upS * 1000).catch(() => null);
    if (!up) {
      await this.powerCycle(`SSH did not come back within ${m.timeouts.upS} s`);
      up = await this.connect(m.timeouts.upS * 1000).catch((err: unknown) => {
        throw new HarnessError('boot', `lab machine ${m.name} did not come back after a power cycle: ${(err as Error).message}`, { detail: this.console.tail(40) });
      });
    }
    const now = parseIdentity(await this.must(planIdentity(), 'reading the kernel after the reboot'));
    if (now.bootId === before || now.release !== this.defaultKernel?.release) {
      throw new HarnessError('boot', `lab machine ${m.name} is not back in its default kernel (boot_id ${now.bootId === before ? 'unchanged' : 'changed'}, kernel ${now.release}, expected ${this.defaultKernel?.release})`, { detail: this.console.tail(40) });
    }
    this.defaultKernel = now;
  }

  private async powerCycle(why: string): Promise<void> {
    const cmd = this.o.machine.power.cycle;
    if (!cmd) throw new HarnessError('boot', `lab machine ${this.o.machine.name} needs a power cycle (${why}) and the inventory has no power.cycle command`, { detail: this.console.tail(40) });
    this.o.log(`lab ${this.o.machine.name}: power cycle (${why})`);
    this.ssh?.destroy('power cycle');
    const r = await runCommand({ argv: cmd, timeoutMs: 60_000 });
    this.steps.push({ step: 'power cycle', ms: r.durationMs, ok: r.exitCode === 0, detail: why });
    if (r.exitCode !== 0) throw new HarnessError('boot', `the power cycle command of ${this.o.machine.name} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  }

  /** Restores the machine: nothing of the harness left running or (unless --keep) on disk, lease released. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.live = null;
    try {
      if (this.opened) {
        if (!this.ssh || this.ssh.closed) await this.step('reconnect for restore', () => this.connect(this.o.machine.timeouts.upS * 1000)).catch(() => null);
        // The kernel under test is let go first: every run ends in the default kernel.
        if (this.inKernelUnderTest || (this.o.kernel && this.boots.length > 0)) await this.step('reboot to the default kernel', () => this.rebootToDefault()).catch(() => undefined);
        if (this.ssh && !this.ssh.closed) {
          if (this.kernelDir && !this.o.keep) await this.must({ argv: ['rm', '-rf', '--one-file-system', this.kernelDir], timeoutMs: 60_000 }, 'removing the kernel under test');
          await this.step('restore', async () => {
            for (const c of planRestore(this.runDir, this.unloadNullBlk, this.o.keep)) await this.must(c, `restoring (${c.argv.join(' ').slice(0, 60)})`);
          });
          const now = parseIdentity(await this.must(planIdentity(), 'reading the kernel at the end'));
          this.steps.push({ step: `verify default kernel ${now.release}`, ms: 0, ok: now.release === this.defaultKernel?.release });
          await this.step('release lease', () => this.must(planRelease(this.o.runId), 'releasing the lease'));
        }
      }
    } finally {
      if (this.heartbeat) clearInterval(this.heartbeat);
      this.ssh?.close();
      this.consoleStopped = true;
      this.consoleProc?.kill('SIGKILL');
    }
  }

  record(): Record<string, unknown> {
    return { target: this.label, lab: { machine: this.o.machine.name, host: this.o.machine.host, runDir: this.runDir, defaultKernel: this.defaultKernel, steps: this.steps, kept: this.o.keep } };
  }
}
