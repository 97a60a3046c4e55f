// Guest setup: fsdax namespaces with ndctl, ext4/xfs on them, mounted -o dax, and a proof
// that DAX is really on (STATX_ATTR_DAX on a file), or a loud failure.
import { HarnessError } from '../core/errors.js';
import type { QemuProfile } from './qemu/qemu-plan.js';
import type { GuestCommand, SshTarget } from './ssh-target.js';

export type FsType = 'ext4' | 'xfs';

export interface FsSetupPlan {
  fs: FsType;
  mountpoint: string;
  /** The block device, or null while ndctl has still to report it. */
  device: string | null;
  /** Commands that create the fsdax namespace; print its JSON. */
  namespace: GuestCommand[];
  mkfs: (dev: string) => GuestCommand;
  mount: (dev: string) => GuestCommand;
}

export interface MountedFs {
  fs: FsType;
  device: string;
  mountpoint: string;
  namespace: Record<string, unknown> | null;
  mountOptions: string;
}

const STATX_ATTR_DAX = 0x200000;

/** Plans namespace, mkfs and mount for each filesystem, one NVDIMM (or legacy range) each. */
export function planFsSetup(profile: QemuProfile, filesystems: FsType[]): FsSetupPlan[] {
  const slots = profile.nvdimms.length > 0 ? profile.nvdimms.length : (profile.legacyPmem ?? []).length;
  if (filesystems.length > slots) {
    throw new HarnessError('config', `profile ${profile.name} has ${slots} pmem devices but ${filesystems.length} filesystems were asked for`, {
      hint: 'pick a profile with one NVDIMM per filesystem, or test fewer filesystems (--fs)',
    });
  }
  return filesystems.map((fs, i) => {
    const nv = profile.nvdimms[i];
    // Alternate where the struct pages live: in the namespace itself (-M dev, the default on
    // real hardware) for even slots, in RAM (-M mem) for odd ones; both paths get covered.
    const map = i % 2 === 0 ? 'dev' : 'mem';
    let namespace: GuestCommand[] = [];
    if (nv && nv.labelKiB) {
      namespace = [
        { argv: ['ndctl', 'disable-region', `region${i}`], timeoutMs: 30_000 },
        { argv: ['ndctl', 'init-labels', '-f', `nmem${i}`], timeoutMs: 30_000 },
        { argv: ['ndctl', 'enable-region', `region${i}`], timeoutMs: 30_000 },
        // The label area eats into the region: without an explicit size the namespace is not
        // a multiple of the region's 16 MiB alignment and ndctl refuses it ("misaligned").
        { argv: ['ndctl', 'create-namespace', '-r', `region${i}`, '-m', 'fsdax', '-M', map, '-s', `${Math.floor((nv.sizeMiB - 1) / 16) * 16}M`], timeoutMs: 60_000 },
      ];
    } else if (nv) {
      namespace = [{ argv: ['ndctl', 'create-namespace', '-f', '-e', `namespace${i}.0`, '-m', 'fsdax', '-M', map], timeoutMs: 60_000 }];
    }
    const mountpoint = `/mnt/${fs}`;
    return {
      fs,
      mountpoint,
      // e820 (memmap=) pmem needs no namespace: it is DAX-capable as it comes.
      device: nv ? null : `/dev/pmem${i}`,
      namespace,
      mkfs: (dev: string): GuestCommand => planMkfs(fs, dev),
      mount: (dev: string): GuestCommand => planMount(fs, dev, mountpoint),
    };
  });
}

/** Returns the mkfs of a harness filesystem; a label marks it as the harness's own (lab machines check it). */
export function planMkfs(fs: FsType, dev: string, label?: string): GuestCommand {
  const l = label ? ['-L', label] : [];
  return fs === 'ext4'
    ? { argv: ['mkfs.ext4', '-F', '-q', '-b', '4096', ...l, dev], timeoutMs: 120_000 }
    : // su=2m,sw=1 aligns xfs data extents to 2 MiB so PMD faults are possible
      // (default mkfs gave 4 KiB faults only).
      // reflink=1 is asked for, not left to the mkfs default: reflink-cow runs on xfs only
      // and must never find the feature missing on a filesystem the harness made.
      { argv: ['mkfs.xfs', '-f', '-q', '-d', 'su=2m,sw=1', '-m', 'reflink=1', ...l, dev], timeoutMs: 120_000 };
}

/** Returns the mount -o dax=always of a harness filesystem. */
export function planMount(fs: FsType, dev: string, mountpoint: string): GuestCommand {
  return { argv: ['sh', '-c', 'mkdir -p "$2" && mount -t "$3" -o dax=always "$1" "$2"', 'mount', dev, mountpoint, fs], timeoutMs: 60_000 };
}

/** Returns the namespace record ndctl printed (create-namespace prints one JSON object). */
export function parseNdctlNamespace(text: string): Record<string, unknown> {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  if (start < 0 || end < start) throw new Error(`ndctl printed no JSON: ${text.slice(0, 200)}`);
  const rec = JSON.parse(text.slice(start, end + 1)) as Record<string, unknown>;
  if (typeof rec.blockdev !== 'string') throw new Error(`ndctl namespace has no blockdev: ${text.slice(0, 200)}`);
  return rec;
}

/** Returns stx_attributes from `xfs_io -c 'statx -r'` output, or null if absent. */
export function parseStatxAttributes(text: string): number | null {
  const m = /^stat\.attributes = (0x[0-9a-f]+)/m.exec(text);
  return m?.[1] ? Number.parseInt(m[1], 16) : null;
}

/** Returns the options of a mountpoint from /proc/mounts text. */
export function parseMountOptions(procMounts: string, mountpoint: string): string | null {
  // With mounts stacked on one point, the last one is the one visible.
  let found: string | null = null;
  for (const line of procMounts.split('\n')) {
    const f = line.split(' ');
    if (f[1] === mountpoint) found = f[3] ?? null;
  }
  return found;
}

// Only emulated persistent memory the harness made is ever formatted: a namespace it just
// created (ndctl names the device) or a memmap= range it put on the command line.
const OWN_DEVICE = /^\/dev\/pmem\d+(\.\d+)?$/;

/** Throws unless device is one the harness may format. */
export function checkOwnDevice(device: string, fs: string): void {
  if (!OWN_DEVICE.test(device)) {
    throw new HarnessError('guest', `refusing to format ${device} for ${fs}: the harness only formats the pmem devices it created`, {
      hint: 'this is a harness bug or an unexpected ndctl answer; nothing was formatted',
    });
  }
}

async function must(ssh: SshTarget, cmd: GuestCommand, what: string): Promise<string> {
  const r = await ssh.exec(cmd);
  if (r.exitCode !== 0) {
    throw new HarnessError('guest', `${what} failed in the guest (exit ${r.exitCode}${r.timedOut ? ', timed out' : ''}): ${cmd.argv.join(' ')}`, {
      hint: 'the guest log (dmesg.txt in the run directory) usually says why',
      detail: (r.stderr + r.stdout).trim().slice(-2000),
    });
  }
  return r.stdout;
}

/** Carries out the setup plans; throws a guest error if a filesystem does not come up with DAX. */
export async function runFsSetup(ssh: SshTarget, plans: FsSetupPlan[]): Promise<MountedFs[]> {
  const out: MountedFs[] = [];
  for (const p of plans) {
    let device = p.device;
    let ns: Record<string, unknown> | null = null;
    for (const [i, cmd] of p.namespace.entries()) {
      const text = await must(ssh, cmd, `namespace setup for ${p.fs}`);
      if (i === p.namespace.length - 1) {
        ns = parseNdctlNamespace(text);
        device = `/dev/${String(ns.blockdev)}`;
      }
    }
    if (!device) throw new HarnessError('internal', `no device for ${p.fs}`);
    checkOwnDevice(device, p.fs);
    await must(ssh, p.mkfs(device), `mkfs of ${p.fs} on ${device}`);
    await must(ssh, p.mount(device), `mount -o dax of ${p.fs}`);
    const mounts = await must(ssh, { argv: ['cat', '/proc/mounts'], timeoutMs: 10_000 }, 'reading /proc/mounts');
    const opts = parseMountOptions(mounts, p.mountpoint) ?? '';
    const probeFile = `${p.mountpoint}/.dax-check`;
    const statx = await must(
      ssh,
      { argv: ['sh', '-c', 'dd if=/dev/zero of="$1" bs=4096 count=1 2>/dev/null && xfs_io -c "statx -r" "$1"', 'statx', probeFile], timeoutMs: 30_000 },
      `statx on ${p.fs}`,
    );
    const attrs = parseStatxAttributes(statx);
    if (attrs === null || (attrs & STATX_ATTR_DAX) === 0) {
      throw new HarnessError('guest', `${p.fs} on ${device} is mounted but files are not DAX (stx_attributes=${attrs === null ? 'missing' : `0x${attrs.toString(16)}`}, mount options ${opts})`, {
        hint: 'the namespace must be in fsdax mode and the kernel must have CONFIG_FS_DAX; see dmesg.txt for the mount messages',
      });
    }
    out.push({ fs: p.fs, device, mountpoint: p.mountpoint, namespace: ns, mountOptions: opts });
  }
  return out;
}
