// The guest image: an initramfs assembled from host binaries (busybox, dropbear, ndctl,
// mkfs.*, xfs_io), the kernel's modules in dependency order, the C helpers and the probe
// module. Cached by a hash of its content; the per-run keys go in a small second archive.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { formatCpio, type CpioEntry } from './cpio.js';
import { HarnessError } from '../../core/errors.js';
import { runCommand } from '../../core/proc.js';
import type { KernelSpec } from '../../kernel/kernel.js';

/** A module to load at boot, with the parameters it gets. */
export interface ModuleLoad {
  name: string;
  params?: string;
  /** A kernel without it is fine (a dependency that newer kernels no longer have). */
  optional?: boolean;
}

// Only what the tests need is loaded: each module costs ~0.1-0.9 s of insmod under TCG.
// libnvdimm comes first by name because ndctl's modprobe.d "install" rule hides it from
// --show-depends of its users.
export const GUEST_MODULES: ModuleLoad[] = [
  { name: 'libnvdimm' },
  { name: 'nfit' },
  { name: 'nd_pmem' },
  { name: 'nd_e820' },
  // ext4's metadata checksums through the crypto API on 6.1; from 6.15 or so ext4 calls the
  // crc32c library directly and the module is gone.
  { name: 'crc32c_generic', optional: true },
  { name: 'ext4' },
  { name: 'xfs' },
  // No device at load: the slow device is made through configfs by init, in the background,
  // because its partition scan alone takes 3 x 2 s of delayed reads.
  { name: 'null_blk', params: 'nr_devices=0' },
  { name: 'virtio_pci' },
  { name: 'virtio_net' },
];

// Host programs copied into the guest, with the guest path they get.
export const GUEST_PROGRAMS: { host: string; guest: string }[] = [
  { host: 'dropbear', guest: '/usr/sbin/dropbear' },
  { host: 'ndctl', guest: '/usr/bin/ndctl' },
  { host: 'mkfs.ext4', guest: '/sbin/mkfs.ext4' },
  { host: 'mkfs.xfs', guest: '/sbin/mkfs.xfs' },
  { host: 'xfs_io', guest: '/usr/sbin/xfs_io' },
];

/** Returns the .ko paths, in load order, from `modprobe --show-depends` output. */
export function parseShowDepends(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^insmod\s+(\S+\.ko(?:\.[a-z]+)?)/.exec(line.trim());
    if (m?.[1]) out.push(m[1]);
  }
  return out;
}

/** Returns true if `modprobe --show-depends` says the module is built into the kernel. */
export function isBuiltinModule(text: string, name: string): boolean {
  return text.split('\n').some((l) => l.trim() === `builtin ${name}` || l.trim() === `builtin ${name.replace(/_/g, '-')}`);
}

/** Returns kernel command-line words that give a built-in module its parameters (name.key=value). */
export function formatBuiltinParams(name: string, params: string): string[] {
  return params.split(/\s+/).filter(Boolean).map((p) => `${name}.${p}`);
}

/** Returns the shared-library paths (as the loader names them) from `ldd` output. */
export function parseLdd(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const arrow = /=>\s+(\/\S+)\s+\(0x/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
    const p = arrow?.[1] ?? bare?.[1];
    if (p) out.push(p);
  }
  return out;
}

function which(prog: string): string {
  for (const dir of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = join(dir, prog);
    if (existsSync(p)) return p;
  }
  throw new HarnessError('config', `host program ${prog} is missing; it goes into the guest image`, {
    hint: 'run `dax-harness doctor` to see which Debian packages are missing (run as root to install them)',
  });
}

export interface ModulePlan {
  /** Loadable modules, in load order, with their parameters. */
  loads: { path: string; params: string }[];
  /** Parameters of built-in modules, as kernel command-line words. */
  kernelArgs: string[];
}

/** Resolves the modules to load into ordered .ko paths inside modulesRoot; built-in ones
 *  (a kernel the harness built has everything =y) get their parameters on the command line. */
export async function planModuleOrder(kernel: KernelSpec, mods: ModuleLoad[]): Promise<ModulePlan> {
  const seen = new Set<string>();
  const order: { path: string; params: string }[] = [];
  const kernelArgs: string[] = [];
  for (const m of mods) {
    const r = await runCommand({
      argv: ['modprobe', '-d', kernel.modulesRoot, '-S', kernel.release, '--show-depends', '--ignore-install', m.name],
      timeoutMs: 30_000,
    });
    if (isBuiltinModule(r.stdout, m.name)) {
      kernelArgs.push(...formatBuiltinParams(m.name, m.params ?? ''));
      continue;
    }
    const paths = parseShowDepends(r.stdout);
    if (paths.length === 0 && m.optional) continue;
    if (paths.length === 0) {
      throw new HarnessError('config', `kernel ${kernel.release} has no module ${m.name} (needed by the guest)`, {
        hint: `build the kernel with the option for ${m.name} as =m or =y; ${r.stderr.trim()}`,
      });
    }
    for (const p of paths) {
      if (seen.has(p)) continue;
      seen.add(p);
      const isSelf = p.includes(`/${m.name}.ko`) || p.includes(`/${m.name.replace(/_/g, '-')}.ko`);
      order.push({ path: p, params: isSelf ? (m.params ?? '') : '' });
    }
  }
  return { loads: order, kernelArgs };
}

export interface ImageInput {
  kernel: KernelSpec;
  initScript: string;
  helpersDir: string;
  probeKo: string | null;
}

export interface ImageResult {
  path: string;
  hash: string;
  reused: boolean;
  bytes: number;
  /** Kernel command-line words the image needs (parameters of built-in modules). */
  kernelArgs: string[];
}

async function busyboxApplets(busybox: string): Promise<string[]> {
  const r = await runCommand({ argv: [busybox, '--list-full'], timeoutMs: 10_000 });
  if (r.exitCode !== 0) throw new HarnessError('config', `${busybox} --list-full failed`, { hint: 'install busybox-static' });
  return r.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
}

async function libsOf(bins: string[]): Promise<string[]> {
  const libs = new Set<string>();
  for (const b of bins) {
    const r = await runCommand({ argv: ['ldd', b], timeoutMs: 10_000 });
    // A library the host cannot resolve would only fail inside the guest, far from the cause.
    const missing = /^\s*(\S+) => not found/m.exec(r.stdout);
    if (missing) {
      throw new HarnessError('config', `${b} needs ${missing[1]}, which the host does not have; it cannot go into the guest image`, {
        hint: 'reinstall the package that provides the program (dax-harness doctor lists them)',
      });
    }
    for (const l of parseLdd(r.stdout)) libs.add(l);
  }
  return [...libs].sort();
}

/** Collects every entry of the base image (no keys) in a deterministic order. */
export async function collectImageEntries(input: ImageInput): Promise<{ entries: CpioEntry[]; kernelArgs: string[] }> {
  const { kernel } = input;
  const files = new Map<string, CpioEntry>();
  const dirs = new Set<string>();
  const addDirs = (p: string): void => {
    for (let d = dirname(p); d !== '/' && d !== '.'; d = dirname(d)) dirs.add(d);
  };
  const addFile = (path: string, data: Buffer, mode: number): void => {
    addDirs(path);
    files.set(path, { kind: 'file', path, mode, data });
  };
  const addLink = (path: string, target: string): void => {
    addDirs(path);
    if (!files.has(path)) files.set(path, { kind: 'symlink', path, target });
  };
  for (const d of ['/dev', '/proc', '/sys', '/tmp', '/run', '/mnt', '/root/.ssh', '/etc/dropbear', '/var/log']) dirs.add(d);

  const busybox = which('busybox');
  addFile('/bin/busybox', readFileSync(busybox), 0o755);
  const programs = GUEST_PROGRAMS.map((p) => ({ ...p, hostPath: which(p.host) }));
  for (const p of programs) addFile(p.guest, readFileSync(realpathSync(p.hostPath)), 0o755);
  for (const lib of await libsOf(programs.map((p) => p.hostPath))) addFile(lib, readFileSync(realpathSync(lib)), 0o755);
  // Real programs win over busybox applets of the same name.
  for (const applet of await busyboxApplets(busybox)) {
    const path = `/${applet}`;
    if (path !== '/bin/busybox' && !files.has(path)) addLink(path, '/bin/busybox');
  }
  if (existsSync('/etc/mke2fs.conf')) addFile('/etc/mke2fs.conf', readFileSync('/etc/mke2fs.conf'), 0o644);
  addFile('/etc/passwd', Buffer.from('root:x:0:0:root:/root:/bin/sh\n'), 0o644);
  addFile('/etc/group', Buffer.from('root:x:0:\n'), 0o644);
  // dropbear refuses users whose shell is not listed here.
  addFile('/etc/shells', Buffer.from('/bin/sh\n'), 0o644);
  addFile('/init', Buffer.from(input.initScript), 0o755);

  const modRoot = join(kernel.modulesRoot, 'lib', 'modules', kernel.release);
  const order = await planModuleOrder(kernel, GUEST_MODULES);
  const loadLines: string[] = [];
  for (const m of order.loads) {
    const guestPath = `/lib/modules/${kernel.release}/${relative(modRoot, m.path)}`;
    addFile(guestPath, readFileSync(m.path), 0o644);
    loadLines.push(`${guestPath} ${m.params}`.trim());
  }
  for (const f of ['modules.dep', 'modules.alias', 'modules.symbols', 'modules.builtin', 'modules.order']) {
    const p = join(modRoot, f);
    if (existsSync(p)) addFile(`/lib/modules/${kernel.release}/${f}`, readFileSync(p), 0o644);
  }
  if (input.probeKo) {
    const guestPath = `/lib/modules/${kernel.release}/extra/dax_probe.ko`;
    addFile(guestPath, readFileSync(input.probeKo), 0o644);
    // The fault file exists only for the harness's own self-tests (selftest-* tests).
    loadLines.push(`${guestPath} selftest_faults=1`);
  }
  addFile('/etc/dax-harness/modules', Buffer.from(`${loadLines.join('\n')}\n`), 0o644);
  for (const h of readdirSync(input.helpersDir).sort()) {
    addFile(`/opt/dax/bin/${h}`, readFileSync(join(input.helpersDir, h)), 0o755);
  }

  const dirEntries: CpioEntry[] = [...dirs].sort().map((path) => ({ kind: 'dir', path, mode: path === '/tmp' ? 0o1777 : 0o755 }));
  const rest = [...files.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { entries: [...dirEntries, ...rest], kernelArgs: order.kernelArgs };
}

/** Returns the content hash of a list of entries: equal inputs give equal images. */
export function hashEntries(entries: readonly CpioEntry[]): string {
  const h = createHash('sha256');
  for (const e of entries) {
    h.update(`${e.kind}\0${e.path}\0`);
    if (e.kind === 'dir') h.update(`${e.mode}\0`);
    else if (e.kind === 'symlink') h.update(`${e.target}\0`);
    else h.update(`${e.mode}\0`).update(createHash('sha256').update(e.data).digest());
  }
  return h.digest('hex').slice(0, 16);
}

/** Builds (or reuses) the base image in the cache; returns its path. */
export async function buildImage(input: ImageInput, cacheDir: string): Promise<ImageResult> {
  const { entries, kernelArgs } = await collectImageEntries(input);
  const hash = hashEntries(entries);
  const dir = join(cacheDir, 'images');
  const path = join(dir, `initramfs-${input.kernel.release}-${hash}.cpio`);
  if (existsSync(path)) return { path, hash, reused: true, bytes: statSync(path).size, kernelArgs };
  mkdirSync(dir, { recursive: true });
  const data = formatCpio(entries);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
  return { path, hash, reused: false, bytes: data.length, kernelArgs };
}

/** Returns the per-run archive: the guest's host key and the client's authorized key. */
export function formatKeyOverlay(hostKeyDropbear: Buffer, authorizedKey: string): Buffer {
  return formatCpio([
    { kind: 'dir', path: '/etc/dropbear', mode: 0o755 },
    { kind: 'file', path: '/etc/dropbear/dropbear_ed25519_host_key', mode: 0o600, data: hostKeyDropbear },
    { kind: 'dir', path: '/root', mode: 0o700 },
    { kind: 'dir', path: '/root/.ssh', mode: 0o700 },
    { kind: 'file', path: '/root/.ssh/authorized_keys', mode: 0o600, data: Buffer.from(`${authorizedKey.trim()}\n`) },
  ]);
}
