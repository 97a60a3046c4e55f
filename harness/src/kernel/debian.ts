// Debian's kernel lines: bookworm's 6.1 (the host's own suite), trixie's 6.12 and sid's 7.2.
// Packages of the suites that are not the host's come through the harness's own apt
// configuration under the cache (a sources file, lists and archives of its own), never through
// the host's sources lists. A kernel of another suite was built with that suite's compiler, so
// the probe module is built in a small chroot of that suite holding the kernel's headers.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from '../core/errors.js';
import { runChecked, runCommand, type CommandPlan, type ProcessResult } from '../core/proc.js';

export interface DebianLine {
  /** What --kernel and --tree take: debian-6.12. */
  name: string;
  suite: 'bookworm' | 'trixie' | 'sid';
  /** The kernel series the suite ships (major.minor). */
  series: string;
  /** The refcount model of the series: folio from 6.15. */
  model: 'legacy' | 'folio';
  /** The host's own suite: its apt lists and its headers package serve this line. */
  host: boolean;
}

/** The Debian kernel lines the harness knows, oldest first. */
export const DEBIAN_LINES: readonly DebianLine[] = Object.freeze([
  { name: 'debian-6.1', suite: 'bookworm', series: '6.1', model: 'legacy', host: true },
  { name: 'debian-6.12', suite: 'trixie', series: '6.12', model: 'legacy', host: false },
  { name: 'debian-7.2', suite: 'sid', series: '7.2', model: 'folio', host: false },
]);

/** The line a run uses when none is named. */
export const DEFAULT_DEBIAN_LINE = 'debian-6.1';

const MIRROR = 'http://deb.debian.org/debian';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
// Package lists older than this are fetched again before a release is resolved.
const LISTS_MAX_AGE_MS = 24 * 3600_000;

/** Returns the line named NAME (debian-6.12), or undefined. */
export function findDebianLine(name: string): DebianLine | undefined {
  return DEBIAN_LINES.find((l) => l.name === name);
}

/** Returns the line a Debian kernel release belongs to (6.12.117+deb13-amd64 → debian-6.12). */
export function debianLineOfRelease(release: string): DebianLine | undefined {
  const mm = /^\d+\.\d+/.exec(release)?.[0];
  return DEBIAN_LINES.find((l) => l.series === mm);
}

/** Returns `debian-6.1|debian-6.12|debian-7.2`, for usage and hints. */
export function debianLineNames(): string {
  return DEBIAN_LINES.map((l) => l.name).join('|');
}

/** The harness's own apt configuration for one suite, under the cache. */
export interface AptConfig {
  suite: string;
  dir: string;
}

/** Returns the apt configuration directory of a suite. */
export function aptConfigOf(cacheDir: string, suite: string): AptConfig {
  return { suite, dir: join(cacheDir, 'apt', suite) };
}

/** Returns the one-line sources file of a suite. */
export function formatSourcesList(suite: string): string {
  return `deb [signed-by=${KEYRING}] ${MIRROR} ${suite} main\n`;
}

/** Returns the apt options that point apt-get and apt-cache at the harness's own files only. */
export function planAptOptions(apt: AptConfig): string[] {
  return [
    '-o', `Dir::Etc::SourceList=${join(apt.dir, 'sources.list')}`,
    '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${join(apt.dir, 'lists')}`,
    '-o', `Dir::Cache=${join(apt.dir, 'cache')}`,
    // The mirror reachable here serves a frozen snapshot whose sid Release file is past its
    // Valid-Until; the archive signature is still checked against Debian's keyring.
    '-o', 'Acquire::Check-Valid-Until=false',
  ];
}

/** Plans one apt-get or apt-cache call on the harness's apt configuration. */
export function planApt(apt: AptConfig, tool: 'apt-get' | 'apt-cache', args: string[], cwd?: string): CommandPlan {
  return { argv: [tool, ...planAptOptions(apt), ...args], cwd, env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: tool === 'apt-get' ? 1_200_000 : 60_000 };
}

/** Writes the suite's apt files and fetches its package lists when missing or a day old. */
export async function updateApt(apt: AptConfig, log: (s: string) => void, now = Date.now()): Promise<void> {
  mkdirSync(join(apt.dir, 'lists', 'partial'), { recursive: true });
  mkdirSync(join(apt.dir, 'cache', 'archives', 'partial'), { recursive: true });
  writeFileSync(join(apt.dir, 'sources.list'), formatSourcesList(apt.suite));
  const stamp = join(apt.dir, 'lists', '.dax-harness-updated');
  if (existsSync(stamp) && now - statSync(stamp).mtimeMs < LISTS_MAX_AGE_MS) return;
  log(`fetching Debian ${apt.suite}'s package lists into ${apt.dir} (the host's sources lists are not touched)`);
  const r = await runCommand(planApt(apt, 'apt-get', ['update', '-q']));
  if (r.exitCode !== 0) {
    // Lists of yesterday still name real packages; only a suite never fetched is fatal.
    if (existsSync(stamp)) {
      log(`apt-get update for ${apt.suite} failed; using the lists of ${new Date(statSync(stamp).mtimeMs).toISOString()}`);
      return;
    }
    throw new HarnessError('config', `cannot fetch the package lists of Debian ${apt.suite} from ${MIRROR}`, {
      hint: `check that ${MIRROR} is reachable from here (the harness uses its own apt files in ${apt.dir})`,
      detail: (r.stderr || r.stdout).trim().slice(-2000),
    });
  }
  writeFileSync(stamp, `${new Date(now).toISOString()}\n`);
}

/** Returns the linux-* packages of one release that a kernel image package depends on: sid
 *  splits the image into linux-binary-R (vmlinuz), linux-modules-R and linux-base-R (config). */
export function parseReleaseParts(dependsText: string, release: string): string[] {
  const parts = new Set<string>();
  for (const m of dependsText.matchAll(/Depends:\s+(linux-(?:binary|modules|base)-(\S+))/g)) {
    if (m[2] === release) parts.add(m[1]!);
  }
  return [...parts].sort();
}

/** Returns the ABI package name linux-image-amd64 depends on, from `apt-cache depends` output. */
export function parseMetaDepends(text: string): string | null {
  const m = /Depends:\s+(linux-image-[0-9][^\s]*-amd64)\b/.exec(text);
  return m?.[1] ?? null;
}

/** Returns the release (6.1.0-NN-amd64) of a linux-image package name. */
export function releaseOfImagePackage(pkg: string): string {
  return pkg.replace(/^linux-image-/, '').replace(/-unsigned$/, '');
}

/** Resolves the release a line's linux-image-amd64 points at in the harness's apt lists. */
export async function resolveLineRelease(cacheDir: string, line: DebianLine, log: (s: string) => void): Promise<string> {
  const apt = aptConfigOf(cacheDir, line.suite);
  await updateApt(apt, log);
  const r = await runCommand(planApt(apt, 'apt-cache', ['depends', 'linux-image-amd64']));
  const pkg = parseMetaDepends(r.stdout);
  if (!pkg) {
    throw new HarnessError('config', `cannot tell which kernel Debian ${line.suite}'s linux-image-amd64 points at`, {
      hint: `remove ${apt.dir} to fetch the lists again, or pass --distro-release with the ABI (e.g. ${line.series}.N+debNN-amd64)`,
      detail: (r.stdout + r.stderr).trim().slice(0, 2000),
    });
  }
  return releaseOfImagePackage(pkg);
}

/** Downloads packages with apt-get download into a fresh directory; returns the .deb names. */
export async function downloadDebs(pkgs: string[], tmp: string, opts: { apt: AptConfig | null; hint: string; timeoutMs: number; updateOnFailure: boolean }): Promise<string[]> {
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  // apt-get download drops privileges to _apt, which must be able to write the target dir.
  chmodSync(tmp, 0o777);
  const plan = (): CommandPlan =>
    opts.apt ? { ...planApt(opts.apt, 'apt-get', ['download', ...pkgs], tmp), timeoutMs: opts.timeoutMs } : { argv: ['apt-get', 'download', ...pkgs], cwd: tmp, timeoutMs: opts.timeoutMs };
  let dl: ProcessResult = await runCommand(plan());
  // A fresh machine may have no host package lists yet: fetch them once (root only), try again.
  if (dl.exitCode !== 0 && !opts.apt && opts.updateOnFailure && process.getuid?.() === 0) {
    await runCommand({ argv: ['apt-get', 'update', '-q'], env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 600_000 });
    dl = await runCommand(plan());
  }
  const debs = readdirSync(tmp).filter((f) => f.endsWith('.deb')).sort();
  if (dl.exitCode !== 0 || debs.length < pkgs.length) {
    rmSync(tmp, { recursive: true, force: true });
    throw new HarnessError('config', `cannot download the Debian package${pkgs.length > 1 ? 's' : ''} ${pkgs.join(' ')}`, { hint: opts.hint, detail: (dl.stderr || dl.stdout).trim().slice(-2000) });
  }
  return debs;
}

/** Downloads and unpacks a kernel of a non-host suite into root: vmlinuz and config under
 *  boot/, modules uncompressed under lib/modules/R, depmod run. Returns the image .deb's name. */
export async function unpackLineKernel(cacheDir: string, line: DebianLine, release: string, tmp: string): Promise<string> {
  const apt = aptConfigOf(cacheDir, line.suite);
  const image = `linux-image-${release}`;
  const deps = await runCommand(planApt(apt, 'apt-cache', ['depends', image]));
  const pkgs = [image, ...parseReleaseParts(deps.stdout, release)];
  const debs = await downloadDebs(pkgs, tmp, {
    apt,
    hint: `check that ${MIRROR} is reachable and that Debian ${line.suite} still has ${image} (apt-cache ${planAptOptions(apt).join(' ')} policy ${image})`,
    timeoutMs: 1_200_000,
    updateOnFailure: false,
  });
  const root = join(tmp, 'root');
  for (const d of debs) await runChecked({ argv: ['dpkg-deb', '-x', join(tmp, d), root], timeoutMs: 300_000 }, `unpacking ${d}`);
  normalizeKernelTree(root, release);
  // Newer Debian kernels ship modules as .ko.xz; the guest loads them with busybox insmod,
  // which takes plain ELF. Unpacking them once here costs ~5 s for ~8,000 modules.
  const modDir = join(root, 'lib', 'modules', release);
  await runChecked({ argv: ['sh', '-c', 'find "$0" -name "*.ko.xz" -print0 | xargs -0 -r -n 200 -P 2 xz -d', modDir], timeoutMs: 600_000 }, 'uncompressing the kernel modules');
  await runChecked({ argv: ['depmod', '-b', root, release], timeoutMs: 120_000 }, 'depmod of the unpacked kernel');
  return debs.find((d) => d.startsWith(`${image}_`)) ?? debs[0]!;
}

// Packages of merged-/usr suites put modules under usr/lib/modules, and sid's put vmlinuz and
// config there too; the harness reads boot/vmlinuz-R, boot/config-R and lib/modules/R.
function normalizeKernelTree(root: string, release: string): void {
  const usrMods = join(root, 'usr', 'lib', 'modules');
  const mods = join(root, 'lib', 'modules');
  if (existsSync(usrMods) && !existsSync(mods)) {
    mkdirSync(join(root, 'lib'), { recursive: true });
    renameSync(usrMods, mods);
  }
  mkdirSync(join(root, 'boot'), { recursive: true });
  for (const [inMods, inBoot] of [['vmlinuz', `vmlinuz-${release}`], ['config', `config-${release}`], ['System.map', `System.map-${release}`]] as const) {
    const from = join(mods, release, inMods);
    if (existsSync(from) && !existsSync(join(root, 'boot', inBoot))) renameSync(from, join(root, 'boot', inBoot));
  }
  if (!existsSync(join(root, 'boot', `vmlinuz-${release}`))) {
    throw new HarnessError('config', `the packages of ${release} hold no vmlinuz (looked in boot/ and usr/lib/modules/${release}/)`, {
      hint: 'Debian may have changed how it splits the kernel packages: report it with the list of the packages\' files',
    });
  }
}

/** Returns the path of a suite's toolchain chroot for one kernel release (may not exist yet). */
export function toolchainRootOf(cacheDir: string, release: string): string {
  return join(cacheDir, 'toolchains', release, 'root');
}

/** Makes (once) a chroot of the line's suite with the release's headers package and its
 *  compiler, where the probe module is built; returns its path. */
export async function fetchToolchainRoot(cacheDir: string, line: DebianLine, release: string, log: (s: string) => void): Promise<string> {
  const root = toolchainRootOf(cacheDir, release);
  const done = join(root, '..', '.complete');
  if (existsSync(done)) return root;
  const tmp = `${root}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(root, '..'), { recursive: true });
  log(`making a Debian ${line.suite} chroot with linux-headers-${release} and its compiler in ${root} (once; about a minute)`);
  const r = await runCommand(planToolchainRoot(line, release, tmp, process.getuid?.() === 0));
  if (r.exitCode !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new HarnessError('build', `making the ${line.suite} chroot for the probe module of ${release} failed`, {
      hint: `mmdebstrap must be installed (apt-get install mmdebstrap) and ${MIRROR} reachable`,
      detail: (r.stderr || r.stdout).trim().slice(-2000),
    });
  }
  rmSync(root, { recursive: true, force: true });
  renameSync(tmp, root);
  writeFileSync(done, `linux-headers-${release}\n`);
  return root;
}

/** Plans mmdebstrap of the chroot that builds out-of-tree modules for a release. */
export function planToolchainRoot(line: DebianLine, release: string, dir: string, asRoot: boolean): CommandPlan {
  return {
    argv: [
      'mmdebstrap',
      `--mode=${asRoot ? 'root' : 'unshare'}`,
      '--variant=apt',
      '--aptopt=Acquire::Check-Valid-Until "false"',
      `--include=linux-headers-${release},make`,
      line.suite,
      dir,
      MIRROR,
    ],
    timeoutMs: 1_200_000,
  };
}

/** Plans `make modules` of an out-of-tree module inside a toolchain chroot: objtool reads
 *  /proc, so a private mount namespace gets its own /proc that goes away with the command. */
export function planChrootModuleBuild(root: string, headersDir: string, moduleDir: string): CommandPlan {
  return {
    argv: ['unshare', '--mount', '--fork', 'sh', '-c', 'mount -t proc proc "$0/proc" && exec chroot "$0" make -C "$1" M="$2" modules', root, headersDir, moduleDir],
    timeoutMs: 600_000,
  };
}
