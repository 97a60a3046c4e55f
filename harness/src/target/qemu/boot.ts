// Starts a QEMU guest from a plan, keeps its serial console, and waits until SSH answers.
// A guest that does not get there in time is a boot (infrastructure) error with the console tail.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync, openSync, closeSync, ftruncateSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { HarnessError } from '../../core/errors.js';
import { planQemu, type Accel, type QemuProfile } from './qemu-plan.js';
import { shellQuote, waitFor, type CommandPlan } from '../../core/proc.js';
import { SshTarget } from '../ssh-target.js';
import type { RunKeys } from '../keys.js';

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
export async function findFreePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// Console lines that mean the kernel died; seeing one ends the wait for SSH at once.
const FATAL_CONSOLE = /Kernel panic - not syncing|---\[ end Kernel panic|Rebooting in|reboot: Restarting system/;

/** The serial console of one guest: written to a file as it comes, with the tail kept in memory. */
export class ConsoleLog {
  private tailLines: string[] = [];
  private partial = '';
  private readonly out: WriteStream;
  private readonly watchers: { re: RegExp; fn: (line: string) => void }[] = [];
  /** Recent console text; base is the absolute offset of its first character. */
  private text = '';
  private base = 0;

  /** Set when the console file could not be written (full disk): the tail in memory stays. */
  writeError: string | null = null;

  constructor(readonly path: string) {
    this.out = createWriteStream(path, { flags: 'a' });
    this.out.on('error', (err) => {
      this.writeError ??= err.message;
    });
  }

  feed(chunk: string): void {
    if (!this.writeError) this.out.write(chunk);
    this.text += chunk;
    // Keep memory bounded for long runs; the file has everything.
    if (this.text.length > 8_000_000) {
      this.base += this.text.length - 4_000_000;
      this.text = this.text.slice(-4_000_000);
    }
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    for (const raw of lines) {
      const line = raw.replace(/\r$/, '');
      this.tailLines.push(line);
      for (const w of this.watchers) if (w.re.test(line)) w.fn(line);
    }
    if (this.tailLines.length > 400) this.tailLines = this.tailLines.slice(-200);
  }

  /** Calls fn for every later console line matching re. */
  watch(re: RegExp, fn: (line: string) => void): void {
    this.watchers.push({ re, fn });
  }

  tail(n = 40): string {
    return [...this.tailLines, this.partial].filter((l) => l !== '').slice(-n).join('\n');
  }

  /** A marker into the console text, for sinceMark. */
  mark(): number {
    return this.base + this.text.length;
  }

  /** Returns the console text written since a mark (what is still in memory of it). */
  sinceMark(mark: number): string {
    return this.text.slice(Math.max(0, mark - this.base));
  }

  async close(): Promise<void> {
    if (this.out.destroyed) return;
    await new Promise<void>((resolve) => {
      this.out.once('close', resolve);
      this.out.end();
    });
  }
}

export interface GuestOptions {
  profile: QemuProfile;
  accel: Accel;
  kernel: string;
  initrd: string;
  keys: RunKeys;
  workDir: string;
  consolePath: string;
  bootTimeoutMs: number;
  extraAppend?: string[];
  /** Host port for SSH; absent = pick a free one. */
  sshPort?: number;
  log: (s: string) => void;
}

export interface Guest {
  /** "QEMU", for messages: the seam's TargetHost. */
  readonly name: string;
  ssh: SshTarget;
  console: ConsoleLog;
  plan: CommandPlan;
  bootToSshMs: number;
  /** Milliseconds from QEMU start to the first console byte and to init's ready line. */
  milestones: { firstConsoleMs: number | null; initReadyMs: number | null };
  /** Set when QEMU has exited: its exit code/signal as text. */
  exited(): string | null;
  /** Stops QEMU (if still running) and removes the pmem backing files. */
  stop(): Promise<void>;
}

/** Creates sparse backing files for the profile's NVDIMMs; a fresh file is a clean NVDIMM. */
export function createPmemFiles(profile: QemuProfile, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  return profile.nvdimms.map((nv, i) => {
    const p = join(dir, `pmem${i}.img`);
    const fd = openSync(p, 'w', 0o600);
    ftruncateSync(fd, nv.sizeMiB * 1024 * 1024);
    closeSync(fd);
    return p;
  });
}

/** Resolves true if nothing listens on 127.0.0.1:port and we could bind it. */
export async function isPortFree(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

// How long to wait for init's ready line before trying SSH without it (a healthy boot prints
// it after ~8 s under TCG).
const READY_LINE_GRACE_MS = 25_000;

/** Throws a config error naming the port unless 127.0.0.1:port can be bound. */
export async function checkSshPortFree(port: number): Promise<void> {
  if (!(await isPortFree(port))) {
    throw new HarnessError('config', `--ssh-port ${port}: port ${port} on 127.0.0.1 is already in use`, {
      hint: 'pick a free port, or leave --ssh-port out and the harness picks one',
    });
  }
}

// QEMU's message when the SSH forward cannot bind its host port.
const PORT_TAKEN = /Could not set up host forwarding rule/;

/** Boots a guest and returns once SSH is connected; throws a boot error otherwise. */
export async function bootGuest(opts: GuestOptions): Promise<Guest> {
  if (opts.sshPort !== undefined) {
    await checkSshPortFree(opts.sshPort);
    return await bootOnce(opts, opts.sshPort);
  }
  // A port found free can be taken by someone else before QEMU binds it: try another.
  for (let attempt = 1; ; attempt++) {
    try {
      return await bootOnce(opts, await findFreePort());
    } catch (err) {
      if (attempt >= 3 || !(err instanceof HarnessError) || !PORT_TAKEN.test(err.detail ?? '')) throw err;
      opts.log('the SSH port was taken before QEMU could bind it; trying another');
    }
  }
}

async function bootOnce(opts: GuestOptions, sshPort: number): Promise<Guest> {
  const pmemDir = join(opts.workDir, 'pmem');
  const pmemFiles = createPmemFiles(opts.profile, pmemDir);
  const plan = planQemu({
    profile: opts.profile,
    accel: opts.accel,
    kernel: opts.kernel,
    initrd: opts.initrd,
    sshPort,
    pmemFiles,
    extraAppend: opts.extraAppend,
  });
  const consoleLog = new ConsoleLog(opts.consolePath);
  consoleLog.feed(`# dax-harness: ${shellQuote(plan.argv)}\n`);
  const started = performance.now();
  // setpriv --pdeathsig: if the harness itself dies (kill -9, OOM), the kernel kills QEMU
  // too, so no orphaned guest keeps burning a core.
  const child: ChildProcess = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...plan.argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let exitText: string | null = null;
  let fatal: string | null = null;
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', (code, sig) => {
      exitText = sig ? `killed by ${sig}` : `exit code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      exitText = `could not start: ${err.message}`;
      resolve();
    });
  });
  child.stdout?.setEncoding('utf8').on('data', (d: string) => consoleLog.feed(d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => consoleLog.feed(d));
  consoleLog.watch(FATAL_CONSOLE, (line) => {
    fatal ??= line;
  });
  const milestones: Guest['milestones'] = { firstConsoleMs: null, initReadyMs: null };
  const since = (): number => Math.round(performance.now() - started);
  child.stdout?.once('data', () => (milestones.firstConsoleMs = since()));
  consoleLog.watch(/dax-harness-init: ready/, () => (milestones.initReadyMs ??= since()));

  const stop = async (): Promise<void> => {
    if (exitText === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exitedP;
      clearTimeout(t);
    }
    await consoleLog.close();
    rmSync(pmemDir, { recursive: true, force: true });
  };

  try {
    // Connecting before the guest's sshd listens costs a full handshake timeout: QEMU's user
    // network accepts the TCP connection and then stalls it. So wait for init's ready line
    // (or QEMU's death) first; the SSH retries then cover only sshd's last moments. The line
    // can be garbled by kernel messages printed in the middle of it on the shared serial
    // console, so after READY_LINE_GRACE_MS the harness tries SSH anyway.
    await waitFor(() => milestones.initReadyMs !== null || exitText !== null || fatal !== null, Math.min(READY_LINE_GRACE_MS, opts.bootTimeoutMs));
    const ssh = await SshTarget.connect(
      {
        host: '127.0.0.1',
        port: sshPort,
        username: 'root',
        privateKey: opts.keys.clientPrivate,
        hostKey: opts.keys.hostKeyBlob,
        readyTimeoutMs: 3000,
        connectRetries: 10_000,
        connectDeadlineMs: Math.max(5000, opts.bootTimeoutMs - since()),
        // A TCG guest on a busy 2-core host can stay silent for over 6 s without anything
        // being wrong (seen once in CI: Debian 6.1, xfs/mremap-mlock, QEMU alive, the retry
        // green). A hung kernel is caught by the test's own bound (with sysrq-w), a dead QEMU
        // at once, a dropped connection by its RST; so the keepalive only needs to catch a
        // network that went silent, and 20 s does that without false losses.
        keepaliveIntervalMs: 5000,
        keepaliveCountMax: 4,
      },
      () => (exitText ? `QEMU ${exitText}` : fatal ? `kernel died during boot: ${fatal}` : null),
    );
    // When QEMU goes, the connection is gone too: say so at once rather than wait for
    // keepalives, so a crash is reported within a second.
    void exitedP.then(() => ssh.destroy(`QEMU ${exitText}`));
    const bootToSshMs = Math.round(performance.now() - started);
    opts.log(`guest up: ssh on 127.0.0.1:${sshPort} after ${(bootToSshMs / 1000).toFixed(1)} s (console ${milestones.firstConsoleMs} ms, init ready ${milestones.initReadyMs} ms)`);
    return { name: 'QEMU', ssh, console: consoleLog, plan, bootToSshMs, milestones, exited: () => exitText, stop };
  } catch (err) {
    const why = exitText ? `QEMU ${exitText}` : fatal ? `the kernel died: ${fatal}` : `no SSH after ${Math.round(opts.bootTimeoutMs / 1000)} s`;
    // Give the console a moment to flush the last lines of a panic.
    await new Promise((r) => setTimeout(r, 200));
    const tail = consoleLog.tail(40);
    await stop();
    throw new HarnessError('boot', `the guest did not boot: ${why}`, {
      hint: `read the console log ${opts.consolePath}; check the kernel command line, the kernel image and the modules`,
      detail: tail,
      cause: err,
    });
  }
}

