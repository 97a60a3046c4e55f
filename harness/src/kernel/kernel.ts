// The kernel under test: Debian's packaged kernel unpacked into a cache (never installed into
// the host's /boot), or a bzImage plus modules directory given by the user.
import { existsSync, readFileSync, rmSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { HarnessError } from '../core/errors.js';
import { runChecked, runCommand, type ProcessResult } from '../core/proc.js';
import { debianLineOfRelease, downloadDebs, fetchToolchainRoot, parseMetaDepends, releaseOfImagePackage, resolveLineRelease, toolchainRootOf, unpackLineKernel, type DebianLine } from './debian.js';

export interface KernelSpec {
  /** Kernel release, the name of its /lib/modules directory (uname -r). */
  release: string;
  bzImage: string;
  /** Root that holds lib/modules/<release>; what modprobe -d takes. */
  modulesRoot: string;
  /** Directory to build out-of-tree modules against (headers or O= build dir); null if none. */
  buildDir: string | null;
  /** A chroot that holds buildDir and the compiler the kernel was built with (a Debian kernel
   *  of another suite than the host's); absent = buildDir is on the host. */
  buildRoot?: string;
  /** Where it came from, for run.json. */
  origin: string;
  /** The build log, when the harness built it (copied into the run directory). */
  buildLog?: string;
  /** The kernel's .config, when known: what proves that a test's kernel feature is absent. */
  configPath: string | null;
  /** The Debian package version (e.g. 6.1.192-3), for a packaged kernel. */
  packageVersion?: string;
  /** Where its code came from, for run.json and the exports. */
  source?: KernelSource;
}

/** Where a kernel's code came from: what KCIDB calls the checkout and the build. */
export interface KernelSource {
  /** The kernel line runs are compared along, night after night: debian-6.1, or the tree's name. */
  line: string;
  /** The tree's name (a path, URL or debian-6.1); null for a packaged kernel. */
  tree: string | null;
  /** The built commit (full hash); null for a packaged kernel. */
  commit: string | null;
  /** The commit the series was applied on. */
  base: string | null;
  /** The build cache key (content of tree, config and toolchain). */
  buildKey: string | null;
  /** How it was configured: `debian` for Debian's package, `tinyconfig+dax.config` for a build. */
  config: string;
  /** The series applied up to this commit (none: the base itself). */
  series: SeriesSource | null;
}

export interface SeriesSource {
  /** KCIDB's patchset hash: sha256 over the newline-terminated sha256 of each patch, in order. */
  hash: string;
  patches: { subject: string; messageId: string | null }[];
}

// The kernel's major.minor, or the whole release if it has none (6.1 of 6.1.0-57-amd64).
function majorMinor(release: string): string {
  return /^\d+\.\d+/.exec(release)?.[0] ?? release;
}

/** Returns the kernel line of a Debian release: debian-6.1 for 6.1.0-57-amd64. */
export function debianLineOf(release: string): string {
  return `debian-${majorMinor(release)}`;
}

/** Returns the kernel line of a kernel the user gave: custom-6.18 for 6.18.2. */
export function customLineOf(release: string): string {
  return `custom-${majorMinor(release)}`;
}

/** Resolves the Debian kernel ABI to test: the given release, or what the line's
 *  linux-image-amd64 points at (the host's apt for the host's suite, the harness's own apt
 *  configuration for the others). */
export async function resolveDistroRelease(line: DebianLine, release: string | undefined, cacheDir: string, mayUpdateApt: boolean, log: (s: string) => void): Promise<string> {
  if (release) {
    if (debianLineOfRelease(release)?.name !== line.name) {
      throw new HarnessError('config', `--distro-release ${release} is not a release of ${line.name} (Debian ${line.suite} ships ${line.series})`, {
        hint: `pass --kernel ${debianLineOfRelease(release)?.name ?? 'debian-X.Y'} with it, or a ${line.series} release`,
      });
    }
    return release;
  }
  if (!line.host) return resolveLineRelease(cacheDir, line, log);
  const ask = (): Promise<ProcessResult> => runCommand({ argv: ['apt-cache', 'depends', 'linux-image-amd64'], timeoutMs: 60_000 });
  let r = await ask();
  // A fresh machine may have no package lists yet: fetch them once and ask again.
  if (!parseMetaDepends(r.stdout) && mayUpdateApt) {
    await runCommand({ argv: ['apt-get', 'update', '-q'], env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 600_000 });
    r = await ask();
  }
  const pkg = parseMetaDepends(r.stdout);
  if (!pkg) {
    throw new HarnessError('config', 'cannot tell which kernel linux-image-amd64 points at (apt-cache depends printed nothing useful)', {
      hint: 'run `apt-get update` (the package lists may be missing), or pass --distro-release 6.1.0-NN-amd64',
      detail: (r.stdout + r.stderr).trim().slice(0, 2000),
    });
  }
  return releaseOfImagePackage(pkg);
}

/** Fetches Debian's kernel image package into the cache and unpacks it; reuses a complete copy. */
export async function fetchDistroKernel(cacheDir: string, release: string, log: (s: string) => void): Promise<KernelSpec> {
  const line = debianLineOfRelease(release);
  const dir = join(cacheDir, 'kernels', `debian-${release}`);
  const done = join(dir, '.complete');
  const spec: KernelSpec = {
    release,
    bzImage: join(dir, 'boot', `vmlinuz-${release}`),
    modulesRoot: dir,
    buildDir: distroHeadersDir(release),
    // A kernel of another suite is built with that suite's compiler: its probe is built in a
    // chroot of that suite.
    buildRoot: line && !line.host ? toolchainRootOf(cacheDir, release) : undefined,
    origin: `debian:linux-image-${release}`,
    configPath: join(dir, 'boot', `config-${release}`),
    source: { line: debianLineOf(release), tree: null, commit: null, base: null, buildKey: null, config: 'debian', series: null },
  };
  if (spec.buildRoot && line) await fetchToolchainRoot(cacheDir, line, release, log);
  if (existsSync(done)) return withPackageVersion(spec, readFileSync(done, 'utf8'));

  log(`fetching Debian kernel linux-image-${release} into ${dir}`);
  const tmp = `${dir}.tmp-${process.pid}`;
  const deb = line && !line.host ? await unpackLineKernel(cacheDir, line, release, tmp) : await unpackHostKernel(release, tmp);
  rmSync(dir, { recursive: true, force: true });
  renameSync(join(tmp, 'root'), dir);
  rmSync(tmp, { recursive: true, force: true });
  writeFileSync(done, `${deb}\n`);
  return withPackageVersion(spec, deb);
}

// Downloads a kernel of the host's suite with the host's apt and unpacks it into tmp/root.
async function unpackHostKernel(release: string, tmp: string): Promise<string> {
  const [deb] = await downloadDebs([`linux-image-${release}`], tmp, {
    apt: null,
    hint: 'check that apt can reach the Debian mirror (`apt-get update`), or that the release exists (`apt-cache policy linux-image-amd64`)',
    timeoutMs: 600_000,
    // A release given with --distro-release skipped the package-list check of
    // resolveDistroRelease: a fresh machine may have no lists yet.
    updateOnFailure: true,
  });
  const root = join(tmp, 'root');
  await runChecked({ argv: ['dpkg-deb', '-x', join(tmp, deb!), root], timeoutMs: 300_000 }, 'unpacking the kernel package');
  await runChecked({ argv: ['depmod', '-b', root, release], timeoutMs: 120_000 }, 'depmod of the unpacked kernel');
  return deb!;
}

// The .deb's file name (linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb) carries its version;
// runs are compared across machines, and one ABI name is rebuilt under several versions.
function withPackageVersion(spec: KernelSpec, debName: string): KernelSpec {
  const v = /_([^_]+)_[^_]+\.deb\s*$/.exec(debName)?.[1];
  return v ? { ...spec, packageVersion: decodeURIComponent(v) } : spec;
}

/** Returns the host path of Debian's headers package for a release (may not be installed yet). */
export function distroHeadersDir(release: string): string {
  return `/usr/src/linux-headers-${release}`;
}

/** Checks a user-given kernel: a bzImage file and a lib/modules/<release> directory. */
export function userKernel(bzImage: string, modulesDir: string | undefined, buildDir: string | undefined): KernelSpec {
  if (!existsSync(bzImage) || !statSync(bzImage).isFile()) {
    throw new HarnessError('config', `--kernel ${bzImage}: no such file`, { hint: 'pass the path of a bzImage (arch/x86/boot/bzImage of a build tree)' });
  }
  if (!modulesDir) {
    throw new HarnessError('config', `--kernel ${bzImage} needs --modules DIR`, {
      hint: 'pass the lib/modules/<release> directory that matches the kernel (make modules_install INSTALL_MOD_PATH=DIR)',
    });
  }
  if (!existsSync(join(modulesDir, 'modules.dep'))) {
    throw new HarnessError('config', `--modules ${modulesDir}: not a modules directory (no modules.dep)`, {
      hint: 'pass the lib/modules/<release> directory itself, after depmod has run in it',
    });
  }
  const release = basename(modulesDir);
  const libModules = join(modulesDir, '..');
  if (basename(libModules) !== 'modules' || basename(join(libModules, '..')) !== 'lib') {
    throw new HarnessError('config', `--modules ${modulesDir}: expected a path ending in lib/modules/<release>`, {
      hint: 'install the modules with INSTALL_MOD_PATH=DIR and pass DIR/lib/modules/<release>',
    });
  }
  const bd = buildDir ?? (existsSync(join(modulesDir, 'build', 'Makefile')) ? join(modulesDir, 'build') : null);
  const config = bd && existsSync(join(bd, '.config')) ? join(bd, '.config') : null;
  return {
    release,
    bzImage,
    modulesRoot: join(libModules, '..', '..'),
    buildDir: bd,
    origin: `path:${bzImage}`,
    configPath: config,
    source: { line: customLineOf(release), tree: null, commit: null, base: null, buildKey: null, config: config ? 'given' : 'unknown', series: null },
  };
}
