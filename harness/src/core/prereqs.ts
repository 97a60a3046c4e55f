// Host prerequisites: which Debian packages the harness needs, which are missing, and the
// apt-get plan that installs them. Checking is pure over a "does this path exist" function.
import { existsSync } from 'node:fs';
import { HarnessError } from './errors.js';
import { runCommand, shellQuote, type CommandPlan } from './proc.js';

export interface Requirement {
  /** Debian package that provides it. */
  pkg: string;
  /** Any one of these paths present means the requirement is met. */
  paths: string[];
  why: string;
}

const BIN = (name: string): string[] => ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].map((d) => `${d}/${name}`);

/** Returns the requirements for running the suite on a kernel release. */
export function planRequirements(opts: { headersFor?: string; chrootFor?: string; kernelBuild?: boolean }): Requirement[] {
  const reqs: Requirement[] = [
    { pkg: 'qemu-system-x86', paths: BIN('qemu-system-x86_64'), why: 'runs the kernel under test' },
    { pkg: 'qemu-system-data', paths: ['/usr/share/qemu/qboot.rom'], why: 'qboot firmware (fast boot)' },
    { pkg: 'busybox-static', paths: ['/bin/busybox'], why: 'guest init and shell' },
    { pkg: 'dropbear-bin', paths: BIN('dropbear'), why: 'guest sshd and host key generation' },
    { pkg: 'ndctl', paths: BIN('ndctl'), why: 'creates fsdax namespaces in the guest' },
    { pkg: 'xfsprogs', paths: BIN('mkfs.xfs'), why: 'mkfs.xfs and xfs_io (statx) in the guest' },
    { pkg: 'e2fsprogs', paths: BIN('mkfs.ext4'), why: 'mkfs.ext4 in the guest' },
    { pkg: 'kmod', paths: BIN('modprobe'), why: 'module dependency order (modprobe --show-depends), depmod' },
    { pkg: 'gcc', paths: BIN('gcc'), why: 'builds the C helpers and the probe module' },
    { pkg: 'make', paths: BIN('make'), why: 'builds the C helpers and the probe module' },
    { pkg: 'libc6-dev', paths: ['/usr/lib/x86_64-linux-gnu/libc.a'], why: 'static C helpers' },
    { pkg: 'liburing-dev', paths: ['/usr/lib/x86_64-linux-gnu/liburing.a'], why: 'io_uring helper (static)' },
  ];
  if (opts.kernelBuild) {
    const why = 'builds the kernel under test';
    reqs.push(
      { pkg: 'git', paths: BIN('git'), why: 'imports and checks out the kernel source, applies series (git am)' },
      { pkg: 'flex', paths: BIN('flex'), why },
      { pkg: 'bison', paths: BIN('bison'), why },
      { pkg: 'bc', paths: BIN('bc'), why },
      { pkg: 'libelf-dev', paths: ['/usr/include/libelf.h'], why: 'objtool (part of the kernel build)' },
      { pkg: 'libssl-dev', paths: ['/usr/include/openssl/ssl.h'], why: 'the kernel\'s host tools (sign-file, extract-cert)' },
      { pkg: 'lz4', paths: BIN('lz4'), why: 'compresses the bzImage (LZ4 boots fastest under TCG)' },
      { pkg: 'ccache', paths: BIN('ccache'), why: 'makes rebuilds of the kernel cheap' },
      { pkg: 'xz-utils', paths: BIN('xz'), why: 'unpacks linux-source-6.1' },
    );
  }
  if (opts.chrootFor) {
    reqs.push(
      { pkg: 'mmdebstrap', paths: BIN('mmdebstrap'), why: `makes the Debian ${opts.chrootFor} chroot the probe module is built in (with that kernel's compiler)` },
      { pkg: 'xz-utils', paths: BIN('xz'), why: 'uncompresses the kernel modules (.ko.xz) for the guest' },
    );
  }
  if (opts.headersFor) {
    reqs.push({
      pkg: `linux-headers-${opts.headersFor}`,
      paths: [`/usr/src/linux-headers-${opts.headersFor}/Makefile`],
      why: 'builds the probe module against the kernel under test',
    });
  }
  return reqs;
}

/** Splits requirements into present and missing with the given existence check. */
export function checkRequirements(reqs: Requirement[], exists: (p: string) => boolean = existsSync): { present: Requirement[]; missing: Requirement[] } {
  const present: Requirement[] = [];
  const missing: Requirement[] = [];
  for (const r of reqs) (r.paths.some(exists) ? present : missing).push(r);
  return { present, missing };
}

/** Returns the apt-get plans that install the missing packages (empty if none). */
export function planInstall(missing: Requirement[]): CommandPlan[] {
  if (missing.length === 0) return [];
  const pkgs = [...new Set(missing.map((r) => r.pkg))].sort();
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  return [
    { argv: ['apt-get', 'update', '-q'], env, timeoutMs: 600_000 },
    { argv: ['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...pkgs], env, timeoutMs: 1_800_000 },
  ];
}

/** Returns the doctor report as text lines. */
export function formatDoctor(present: Requirement[], missing: Requirement[], canInstall: boolean): string[] {
  const lines = present.map((r) => `  ok       ${r.pkg.padEnd(32)} ${r.why}`);
  lines.push(...missing.map((r) => `  MISSING  ${r.pkg.padEnd(32)} ${r.why}`));
  const plans = planInstall(missing);
  if (plans.length === 0) lines.push('all prerequisites are present');
  else if (canInstall) lines.push(`will run: ${plans.map((p) => shellQuote(p.argv)).join(' && ')}`);
  else lines.push(`as root, run: ${plans.map((p) => shellQuote(p.argv)).join(' && ')}`);
  return lines;
}

/** Installs missing packages when allowed (root); otherwise throws naming them. */
export async function ensureRequirements(
  reqs: Requirement[],
  allowInstall: boolean,
  log: (s: string) => void,
  isRoot = process.getuid?.() === 0,
  exists: (p: string) => boolean = existsSync,
): Promise<void> {
  const { missing } = checkRequirements(reqs, exists);
  if (missing.length === 0) return;
  const names = missing.map((r) => r.pkg).join(' ');
  if (!allowInstall || !isRoot) {
    throw new HarnessError('config', `missing Debian packages: ${names}`, {
      hint: `install them: sudo apt-get install --no-install-recommends ${names} (or run dax-harness as root to let it install them)`,
    });
  }
  for (const plan of planInstall(missing)) {
    log(`installing prerequisites: ${shellQuote(plan.argv)}`);
    const r = await runCommand(plan);
    if (r.exitCode !== 0) {
      throw new HarnessError('config', `apt-get failed while installing ${names}`, {
        hint: 'check that apt can reach the Debian mirror and that no other apt process holds the lock',
        detail: (r.stderr || r.stdout).trim().slice(-2000),
      });
    }
  }
  const still = checkRequirements(reqs).missing;
  if (still.length > 0) throw new HarnessError('config', `still missing after apt-get: ${still.map((r) => r.pkg).join(' ')}`);
}
