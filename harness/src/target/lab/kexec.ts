// Booting the kernel under test on a lab machine, one shot: the bzImage goes under the
// harness's directory, `kexec -l` loads it with the machine's own command line plus a per-run
// token, and `systemctl kexec` boots it. Nothing on the machine's boot path changes, so any
// reboot or power cycle lands in its default kernel. What came up is proven, never assumed:
// a new boot_id, the token in /proc/cmdline, and the build's own version banner in /proc/version.
import { createHash, randomBytes } from 'node:crypto';
import type { GuestCommand } from '../ssh-target.js';
import type { KernelIdentity } from './lab-session.js';
import { LAB_ROOT } from './lease.js';

/**
 * Returns the version banner a bzImage carries in its setup header (`6.1.0-57-amd64
 * (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-20)`), or
 * null if it has none. The x86 boot protocol keeps a pointer to it at 0x20e, relative to 0x200.
 */
export function parseBzImageVersion(img: Buffer): string | null {
  if (img.length < 0x210 || img.toString('latin1', 0x202, 0x206) !== 'HdrS') return null;
  const off = img.readUInt16LE(0x20e) + 0x200;
  if (off >= img.length) return null;
  const end = img.indexOf(0, off);
  const s = img.toString('latin1', off, end < 0 ? Math.min(img.length, off + 512) : end).trim();
  return s === '' ? null : s;
}

/** Returns whether /proc/version is the kernel of a bzImage's banner: release, builder and build stamp. */
export function versionMatches(banner: string, procVersion: string): boolean {
  // banner: "REL (USER@HOST) #N ..."; /proc/version: "Linux version REL (USER@HOST) (COMPILER) #N ...".
  const m = /^(\S+) \(([^)]*)\) (#.*)$/.exec(banner);
  if (!m) return false;
  return procVersion.startsWith(`Linux version ${m[1]} (${m[2]}) `) && procVersion.trimEnd().endsWith(m[3]!.trimEnd());
}

/** Returns a fresh token for one boot: it proves that this boot is the one the harness asked for. */
export function newBootToken(): string {
  return randomBytes(8).toString('hex');
}

/** Returns the command line of the kernel under test: the machine's own, its boot-loader word and any old token dropped, plus ours. */
export function planKexecCmdline(machineCmdline: string, extra: readonly string[], token: string): string {
  const words = machineCmdline.split(/\s+/).filter((w) => w !== '' && !w.startsWith('BOOT_IMAGE=') && !w.startsWith('dax_harness.token='));
  return [...words, ...extra, `dax_harness.token=${token}`].join(' ');
}

/** Where a kernel under test is installed on the machine: by its content. */
export function labKernelDir(img: Buffer, root = LAB_ROOT): string {
  return `${root}/kernels/${createHash('sha256').update(img).digest('hex').slice(0, 16)}`;
}

/**
 * Returns the initrd the kernel under test boots with: the machine's own for that release if it
 * has one (the same packaged kernel), else the default kernel's for a kernel with everything
 * built in (its modules would not load, its built-in drivers need none), else null: a modular
 * kernel of another release has no initrd on the machine.
 */
export function chooseInitrd(release: string, defaultRelease: string, builtIn: boolean, exists: (p: string) => boolean): string | null {
  const own = `/boot/initrd.img-${release}`;
  if (exists(own)) return own;
  const dflt = `/boot/initrd.img-${defaultRelease}`;
  if (builtIn && exists(dflt)) return dflt;
  return null;
}

/** Returns `kexec -l` of the kernel under test. */
export function planKexecLoad(bzImage: string, initrd: string | null, cmdline: string): GuestCommand {
  return { argv: ['kexec', '-l', bzImage, ...(initrd ? [`--initrd=${initrd}`] : []), `--command-line=${cmdline}`], timeoutMs: 60_000 };
}

/** Returns the command that boots the loaded kernel after a clean shutdown of the machine's services. */
export function planKexecExec(): GuestCommand {
  // systemctl answers before the machine goes down; the dropped connection is the sign it went.
  return { argv: ['systemctl', 'kexec'], timeoutMs: 15_000 };
}

/** Returns why the kernel that came up is not the one asked for (null: proven). */
export function checkBootProof(now: KernelIdentity, before: { bootId: string }, want: { token: string; banner: string | null; release: string }): string | null {
  if (now.bootId === before.bootId) return `boot_id ${now.bootId} did not change: the machine did not reboot`;
  if (!now.cmdline.split(/\s+/).includes(`dax_harness.token=${want.token}`)) return `this boot's token is not in /proc/cmdline (${now.cmdline.slice(0, 200)}): another kernel came up (a power cycle or a watchdog reboot lands in the default kernel)`;
  if (now.release !== want.release) return `uname -r is ${now.release}, not ${want.release}`;
  if (want.banner && !versionMatches(want.banner, now.version)) return `/proc/version "${now.version.slice(0, 200)}" is not the build's "${want.banner}"`;
  return null;
}
