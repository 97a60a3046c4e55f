// Building the kernel under test: a base config (tinyconfig or defconfig) plus kernel-tests'
// DAX fragment merged with the kernel's merge_config.sh and verified option by option; an
// out-of-tree (O=) build with ccache; the result (bzImage, .config, System.map, modules
// directory, build log) kept in a cache directory keyed by the content that made it.
import { createHash } from 'node:crypto';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { HarnessError } from '../core/errors.js';
import { checkKconfig } from './kconfig.js';
import type { KernelSpec } from './kernel.js';
import { runCommand, shellQuote, type CommandPlan } from '../core/proc.js';
import type { TreeCheckout } from './tree.js';

export type BaseConfig = 'tinyconfig' | 'defconfig';

export interface KbuildInput {
  tree: TreeCheckout;
  /** The commit to build and the id of its tree object (the content key). */
  commit: string;
  treeId: string;
  baseConfig: BaseConfig;
  fragmentPath: string;
  fragmentText: string;
  cacheDir: string;
  jobs: number;
  /** The compiler's version line: a gcc upgrade makes a different kernel. */
  toolchain: string;
}

// Bumped when the recipe below changes in a way that changes the kernel it makes.
const RECIPE = 'kbuild-v1';
// Fixed build identity: reproducible images, and init/version.c hits ccache every time.
const BUILD_ENV = { KBUILD_BUILD_USER: 'dax-harness', KBUILD_BUILD_HOST: 'dax-harness', KBUILD_BUILD_TIMESTAMP: '2000-01-01' };

export interface KbuildPaths {
  /** The O= directory, one per tree checkout and config, reused by every commit built in it. */
  objDir: string;
  /** Where one build's results are kept, keyed by tree content and config. */
  outDir: string;
  configKey: string;
  key: string;
}

/** Returns the object and output directories of a build (pure). */
export function planKbuildPaths(i: Omit<KbuildInput, 'jobs'>): KbuildPaths {
  const configKey = createHash('sha256').update(`${RECIPE}\0${i.toolchain}\0${i.baseConfig}\0${i.fragmentText}`).digest('hex').slice(0, 12);
  const key = createHash('sha256').update(`${configKey}\0${i.treeId}`).digest('hex').slice(0, 16);
  const checkoutId = createHash('sha256').update(i.tree.workDir).digest('hex').slice(0, 8);
  return { objDir: join(i.cacheDir, 'obj', `${checkoutId}-${configKey}`), outDir: join(i.cacheDir, 'kernels', `build-${key}`), configKey, key };
}

/** Plans the config steps: base config, merge of the fragment, olddefconfig (pure). */
export function planKconfig(i: KbuildInput, objDir: string): CommandPlan[] {
  const src = i.tree.workDir;
  const make = (...a: string[]): CommandPlan => ({ argv: ['make', '-C', src, `O=${objDir}`, ...a], env: BUILD_ENV, timeoutMs: 600_000 });
  return [
    make(i.baseConfig),
    // -m: merge only; olddefconfig afterwards resolves what the merge left open.
    { argv: [join(src, 'scripts', 'kconfig', 'merge_config.sh'), '-m', '-O', objDir, join(objDir, '.config'), i.fragmentPath], cwd: src, timeoutMs: 600_000 },
    make('olddefconfig'),
  ];
}

/** Plans the build itself: bzImage plus modules (which writes Module.symvers for the probe). */
export function planMake(i: KbuildInput, objDir: string, ccacheBase: string): CommandPlan {
  return {
    argv: ['make', '-C', i.tree.workDir, `O=${objDir}`, `-j${i.jobs}`, 'LOCALVERSION=', 'CC=ccache gcc', 'bzImage', 'modules'],
    // ccache rewrites absolute paths under the base dir to relative ones, so every build
    // directory of the same depth shares the cache.
    env: { ...BUILD_ENV, CCACHE_BASEDIR: ccacheBase, CCACHE_NOHASHDIR: '1' },
    timeoutMs: 4 * 3600_000,
  };
}

/** Returns the first compiler or make error of a build log with a little context. */
export function findBuildError(log: string): string {
  const lines = log.split('\n');
  // Compiler errors, linker errors (no "error:" in them), modpost's "ERROR:", then make's own.
  const i = lines.findIndex((l) => /\berror: |undefined reference to |^ERROR: |^make(\[\d+\])?: \*\*\* /.test(l));
  return (i >= 0 ? lines.slice(Math.max(0, i - 3), i + 10) : lines.slice(-20)).join('\n');
}

/** Returns the number of objects a kbuild log line reports as built (CC, AS, LD... lines). */
export function countsAsStep(line: string): boolean {
  return /^\s{2}(CC|AS|LD|AR|HOSTCC|OBJCOPY|GEN|CC \[M\])\s/.test(line);
}

export interface BuiltKernel {
  spec: KernelSpec;
  paths: KbuildPaths;
  reused: boolean;
  buildMs: number;
  logPath: string;
}

function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

// Runs make with its output going to the log, showing a progress line on a terminal (and a
// line a minute otherwise), so a 25-minute cold build never looks hung.
async function runLogged(plan: CommandPlan, logPath: string, expectedSteps: number, log: (s: string) => void, label: string): Promise<{ exitCode: number | null; steps: number; timedOut: boolean }> {
  const sink = createWriteStream(logPath, { flags: 'a' });
  sink.write(`$ ${shellQuote(plan.argv)}\n`);
  const tty = process.stderr.isTTY === true;
  const started = performance.now();
  let steps = 0;
  let lastReport = started;
  const show = (final = false): void => {
    const pct = expectedSteps > 0 ? ` ${Math.min(99, Math.floor((steps / expectedSteps) * 100))}%` : '';
    const text = `${label}: ${steps} steps${pct}, ${formatDuration(performance.now() - started)}`;
    if (tty) process.stderr.write(`\r\x1b[K${text}${final ? '\n' : ''}`);
    else if (!final) log(text);
  };
  const [file, ...args] = plan.argv;
  const child = execa(file!, args, { env: plan.env, cwd: plan.cwd, timeout: plan.timeoutMs, reject: false, all: true, buffer: false });
  for await (const line of child.iterable({ from: 'all' })) {
    const l = String(line);
    sink.write(`${l}\n`);
    if (countsAsStep(l)) steps += 1;
    const now = performance.now();
    if (tty ? now - lastReport > 500 : now - lastReport > 60_000) {
      lastReport = now;
      show();
    }
  }
  const r = await child;
  if (tty) show(true);
  await new Promise<void>((res) => sink.end(res));
  return { exitCode: r.exitCode ?? null, steps, timedOut: r.timedOut };
}

function specFor(i: KbuildInput, paths: KbuildPaths, release: string): KernelSpec {
  return {
    release,
    bzImage: join(paths.outDir, 'bzImage'),
    modulesRoot: paths.outDir,
    buildDir: paths.objDir,
    origin: `build:${i.tree.name}@${i.commit.slice(0, 12)} (${i.baseConfig}+${i.fragmentPath.split('/').pop()}, key ${paths.key})`,
    buildLog: join(paths.outDir, 'build.log'),
    configPath: join(paths.outDir, 'config'),
  };
}

/** Returns the cached build for this content and config, if it is complete. */
export function findBuiltKernel(i: Omit<KbuildInput, 'jobs'>): KernelSpec | null {
  const paths = planKbuildPaths(i);
  const done = join(paths.outDir, 'build.json');
  if (!existsSync(done)) return null;
  const meta = JSON.parse(readFileSync(done, 'utf8')) as { release: string };
  return specFor(i as KbuildInput, paths, meta.release);
}

/** Builds the checked-out commit (the caller checks it out) or reuses the cached result. */
export async function runKbuild(i: KbuildInput, log: (s: string) => void): Promise<BuiltKernel> {
  const paths = planKbuildPaths(i);
  const logPath = join(paths.outDir, 'build.log');
  const cached = findBuiltKernel(i);
  if (cached) return { spec: cached, paths, reused: true, buildMs: 0, logPath };
  const started = performance.now();
  mkdirSync(paths.objDir, { recursive: true });
  const tmpOut = `${paths.outDir}.tmp-${process.pid}`;
  rmSync(tmpOut, { recursive: true, force: true });
  mkdirSync(tmpOut, { recursive: true });
  const tmpLog = join(tmpOut, 'build.log');
  const fail = (what: string, hint: string, detail: string): never => {
    // The log of a failed build is kept next to the object directory for the user to read.
    const kept = join(paths.objDir, 'failed-build.log');
    if (existsSync(tmpLog)) copyFileSync(tmpLog, kept);
    rmSync(tmpOut, { recursive: true, force: true });
    throw new HarnessError('build', `${what} (full log: ${kept})`, { hint, detail });
  };

  const verifyConfig = (): void => {
    try {
      checkKconfig(i.fragmentText, readFileSync(join(paths.objDir, '.config'), 'utf8'), i.fragmentPath);
    } catch (err) {
      // The config stamp goes too: the next run configures afresh, e.g. after a fragment fix.
      rmSync(join(paths.objDir, '.dax-harness-config'), { force: true });
      rmSync(tmpOut, { recursive: true, force: true });
      throw err;
    }
  };
  // Config: redone when the config key changes; a series that touches Kconfig is handled
  // by make itself (syncconfig), and the result is verified after the build in every case.
  const stamp = join(paths.objDir, '.dax-harness-config');
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== paths.configKey || !existsSync(join(paths.objDir, '.config'))) {
    log(`configuring ${i.baseConfig} + ${i.fragmentPath} in ${paths.objDir}`);
    for (const p of planKconfig(i, paths.objDir)) {
      const r = await runCommand(p);
      writeFileSync(tmpLog, `$ ${shellQuote(p.argv)}\n${r.stdout}${r.stderr}`, { flag: 'a' });
      if (r.exitCode !== 0) fail(`configuring the kernel failed at \`${shellQuote(p.argv)}\``, 'check that the tree is a Linux kernel tree and the fragment is a Kconfig fragment (CONFIG_X=y lines)', findBuildError(r.stdout + r.stderr));
    }
    writeFileSync(stamp, paths.configKey);
  }
  verifyConfig();

  // A percentage only for a build from scratch: the step count of the last such build.
  const stepsFile = join(i.cacheDir, 'obj', `steps-${paths.configKey}`);
  const fresh = !existsSync(join(paths.objDir, 'vmlinux'));
  const expected = fresh && existsSync(stepsFile) ? Number(readFileSync(stepsFile, 'utf8')) || 0 : 0;
  log(`building ${i.tree.name} at ${i.commit.slice(0, 12)} in ${paths.objDir} (-j${i.jobs}, ccache; log ${join(paths.outDir, 'build.log')})`);
  const made = await runLogged(planMake(i, paths.objDir, i.cacheDir), tmpLog, expected, log, `building ${i.commit.slice(0, 12)}`);
  if (made.exitCode !== 0) {
    const text = readFileSync(tmpLog, 'utf8');
    fail(made.timedOut ? 'the kernel build timed out' : 'the kernel build failed', 'the first error is below; a series that does not build is not tested', findBuildError(text));
  }
  verifyConfig();
  const rel = await runCommand({ argv: ['make', '-s', '-C', i.tree.workDir, `O=${paths.objDir}`, 'LOCALVERSION=', 'kernelrelease'], timeoutMs: 120_000 });
  const release = rel.stdout.trim().split('\n').pop() ?? '';
  if (rel.exitCode !== 0 || !release) fail('cannot read the kernel release of the build', 'run `make kernelrelease` in the build directory to see why', rel.stderr);
  // modules_install with everything built in still writes modules.builtin, which the image
  // builder reads to know that a module it wants is built in.
  const inst = await runCommand({ argv: ['make', '-s', '-C', i.tree.workDir, `O=${paths.objDir}`, 'LOCALVERSION=', `INSTALL_MOD_PATH=${tmpOut}`, 'modules_install'], env: BUILD_ENV, timeoutMs: 600_000 });
  if (inst.exitCode !== 0) fail('make modules_install failed', 'see the build log', findBuildError(inst.stdout + inst.stderr));
  await runCommand({ argv: ['depmod', '-b', tmpOut, release], timeoutMs: 120_000 });
  copyFileSync(join(paths.objDir, 'arch', 'x86', 'boot', 'bzImage'), join(tmpOut, 'bzImage'));
  copyFileSync(join(paths.objDir, '.config'), join(tmpOut, 'config'));
  copyFileSync(join(paths.objDir, 'System.map'), join(tmpOut, 'System.map'));
  if (fresh) writeFileSync(stepsFile, String(made.steps));
  const buildMs = Math.round(performance.now() - started);
  writeFileSync(join(tmpOut, 'build.json'), `${JSON.stringify({ release, commit: i.commit, treeId: i.treeId, tree: i.tree.name, baseConfig: i.baseConfig, fragment: i.fragmentPath, buildMs, steps: made.steps, finishedAt: new Date().toISOString() }, null, 2)}\n`);
  rmSync(paths.outDir, { recursive: true, force: true });
  renameSync(tmpOut, paths.outDir);
  log(`built ${release} in ${formatDuration(buildMs)} (${made.steps} steps)`);
  return { spec: specFor(i, paths, release), paths, reused: false, buildMs, logPath };
}

/** Returns the first line of `gcc --version`, part of every build key. */
export async function readToolchain(): Promise<string> {
  const r = await runCommand({ argv: ['gcc', '--version'], timeoutMs: 30_000 });
  return r.stdout.split('\n')[0]?.trim() || 'gcc (unknown version)';
}
