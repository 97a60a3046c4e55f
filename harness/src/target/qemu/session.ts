// The guest a run tests on, kept alive across tests and replaced when it can no longer be
// trusted: after a crash, a hang that left a task in D state, or a lost connection. Each
// replacement boots from fresh pmem backing files and sets the filesystems up again.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootGuest, type Guest } from './boot.js';
import { planFsSetup, runFsSetup, type FsType, type MountedFs } from '../guest-setup.js';
import { formatKeyOverlay } from './image.js';
import { generateRunKeys } from '../keys.js';
import { detectRefcountModel, markerPattern, parseKallsymsNames, type RefcountModel } from '../../kernel/model.js';
import type { QemuProfile, Accel } from './qemu-plan.js';
import { HarnessError } from '../../core/errors.js';
import type { SshTarget } from '../ssh-target.js';
import type { BootRecord, LiveTarget, TargetPaths, TargetSession } from '../target.js';
import { BIN, SLOW_DEV } from '../../suite/checks.js';

/** Where the guest image puts the helpers, and what init makes. */
export const GUEST_PATHS: TargetPaths = { bin: BIN, slowDev: SLOW_DEV, tmp: '/tmp' };

export interface SessionOptions {
  profile: QemuProfile;
  accel: Accel;
  kernel: string;
  imagePath: string;
  filesystems: FsType[];
  workDir: string;
  consolePath: string;
  bootTimeoutMs: number;
  sshPort?: number;
  extraAppend?: string[];
  log: (s: string) => void;
}

export type { BootRecord } from '../target.js';

/** A live QEMU guest: the seam's LiveTarget, with the guest itself. */
export interface LiveGuest extends LiveTarget {
  guest: Guest;
}

/** How long init may take to make the slow device after SSH is up (its creation blocks on
 *  delayed reads of the partition scan: ~6 s). */
const SLOW_DEV_WAIT_S = 30;

/**
 * Waits until the guest's slow null_blk device exists. A guest without it cannot run the pin
 * tests as designed: that is an infrastructure error naming what init reported, never a skip.
 */
export async function ensureSlowDev(live: LiveTarget, dev: string): Promise<void> {
  if (live.slowDevReady) return;
  // init leaves /run/slowdev.failed when it could not make the device: no need to wait then.
  const script = `i=0; while [ ! -b "$1" ] && [ ! -e /run/slowdev.failed ] && [ $i -lt ${SLOW_DEV_WAIT_S * 10} ]; do sleep 0.1; i=$((i+1)); done; [ -b "$1" ]`;
  const r = await live.target.ssh.exec({ argv: ['sh', '-c', script, 'slowdev', dev], timeoutMs: (SLOW_DEV_WAIT_S + 15) * 1000 });
  if (r.exitCode === 0) {
    live.slowDevReady = true;
    return;
  }
  const log = await live.target.ssh.exec({ argv: ['sh', '-c', "dmesg | grep -iE 'null_blk|nullb|dax-harness-init' | tail -n 12"], timeoutMs: 15_000 }).catch(() => null);
  throw new HarnessError('guest', `the slow device ${dev} is missing (init could not make it, or not within ${SLOW_DEV_WAIT_S} s): the pin tests cannot hold a page without it`, {
    hint: 'the kernel needs null_blk (CONFIG_BLK_DEV_NULL_BLK) with configfs; the guest log below says what init got',
    detail: log?.stdout.trim() || '(no null_blk lines in the guest log)',
  });
}

/** Reads the refcount model from the guest's kallsyms. */
export async function detectGuestModel(ssh: SshTarget): Promise<RefcountModel> {
  // Only the few marker symbols are needed: grep in the guest instead of copying 10 MB.
  const r = await ssh.exec({
    argv: ['sh', '-c', 'grep -E "$0" /proc/kallsyms; true', markerPattern()],
    timeoutMs: 20_000,
  });
  return detectRefcountModel(parseKallsymsNames(r.stdout));
}

export class GuestSession implements TargetSession {
  private live: LiveGuest | null = null;
  readonly boots: BootRecord[] = [];
  readonly label = 'qemu';

  constructor(private readonly opts: SessionOptions) {}

  /** Returns a booted, set-up guest, booting a fresh one if there is none. */
  async ensure(): Promise<LiveGuest> {
    if (this.live && !this.live.guest.exited() && !this.live.guest.ssh.closed) return this.live;
    await this.discard();
    const n = this.boots.length + 1;
    const o = this.opts;
    const keys = await generateRunKeys(join(o.workDir, `keys-${n}`));
    const initrd = join(o.workDir, 'initrd');
    // The cached base image plus a small archive with this boot's keys: the kernel unpacks
    // concatenated cpio archives in order.
    writeFileSync(initrd, Buffer.concat([readFileSync(o.imagePath), formatKeyOverlay(keys.hostKeyDropbear, keys.clientPublicLine)]));
    o.log(n > 1 ? `booting a fresh guest (boot ${n})` : 'booting the guest');
    const guest = await bootGuest({
      profile: o.profile,
      accel: o.accel,
      kernel: o.kernel,
      initrd,
      keys,
      workDir: join(o.workDir, `boot-${n}`),
      consolePath: o.consolePath,
      bootTimeoutMs: o.bootTimeoutMs,
      sshPort: o.sshPort,
      extraAppend: o.extraAppend,
      log: o.log,
    });
    try {
      const model = await detectGuestModel(guest.ssh);
      const t0 = performance.now();
      const mounted = await runFsSetup(guest.ssh, planFsSetup(o.profile, o.filesystems));
      const taint = await guest.ssh.exec({ argv: ['cat', '/proc/sys/kernel/tainted'], timeoutMs: 10_000 });
      const taintAtSetup = Number.parseInt(taint.stdout.trim(), 10);
      if (taint.exitCode !== 0 || !Number.isSafeInteger(taintAtSetup)) throw new HarnessError('guest', `cannot read /proc/sys/kernel/tainted in the guest: ${taint.stderr.trim() || taint.stdout.trim()}`);
      this.boots.push({ n, bootToSshMs: guest.bootToSshMs, setupMs: Math.round(performance.now() - t0), milestones: guest.milestones, qemu: guest.plan.argv });
      this.live = { guest, target: guest, boot: n, model, mounts: new Map(mounted.map((m) => [m.fs, m])), taintAtSetup, slowDevReady: false, paths: GUEST_PATHS };
      return this.live;
    } catch (err) {
      guest.ssh.close();
      await guest.stop();
      if (err instanceof HarnessError) throw err;
      throw new HarnessError('guest', `guest setup failed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The current guest, if one is up. */
  get current(): LiveGuest | null {
    return this.live;
  }

  /** A guest is booted by the first ensure(): nothing to take first. */
  async open(): Promise<void> {}

  /** A guest leaves nothing behind: closing is letting it go. */
  async close(): Promise<void> {
    await this.discard();
  }

  record(): Record<string, unknown> {
    return {};
  }

  /** Stops the current guest (if any); the next ensure() boots a new one. */
  async discard(): Promise<void> {
    const l = this.live;
    this.live = null;
    if (l) {
      l.guest.ssh.close();
      await l.guest.stop();
    }
  }
}
