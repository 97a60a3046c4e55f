// A kernel under test built from source: the tree checked out and the series applied once
// (prepareSource), then any commit of it (the base, a prefix of the series, the head, a
// mutant) built into a cached kernel with its probe module (buildCommit).
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildProbe, probePath } from '../suite/artifacts.js';
import type { BuildSpec } from '../config.js';
import { HarnessError } from '../core/errors.js';
import { findBuiltKernel, planKbuildPaths, readToolchain, runKbuild, type KbuildInput } from './kbuild.js';
import type { KernelSource, KernelSpec } from './kernel.js';
import { alive } from '../core/proc.js';
import { patchsetHash, type Patch } from './series.js';
import { applySeriesAt, checkoutCommit, isDebianTree, prepareTree, resolveBase, treeIdOf, type AppliedSeries, type TreeCheckout } from './tree.js';

/**
 * Runs fn holding the checkout's lock: two runs on one tree would switch its commit under each
 * other's build. The lock is a file with the holder's pid; a holder that died leaves it stale,
 * and it is taken over. Another live run is waited for (it is building), up to waitMs.
 */
export async function withCheckoutLock<T>(workDir: string, log: (s: string) => void, fn: () => Promise<T>, waitMs = 4 * 3600_000): Promise<T> {
  const lock = join(workDir, '.git', 'dax-harness.lock');
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number.parseInt(readFileSync(lock, 'utf8'), 10);
      if (!Number.isInteger(holder) || !alive(holder) || holder === process.pid) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new HarnessError('build', `the tree checkout ${workDir} is still in use by process ${holder}`, { hint: 'wait for that run to finish, or pass another --cache DIR' });
      }
      if (!told) log(`waiting for process ${holder}, which is building in ${workDir}`);
      told = true;
      await sleep(2000);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

export interface SourceSession {
  spec: BuildSpec;
  tree: TreeCheckout;
  applied: AppliedSeries;
}

/** Gets the tree ready and applies the series (all files, in order) on the base. */
export async function prepareSource(spec: BuildSpec, cacheDir: string, log: (s: string) => void, extra: Patch[] = []): Promise<SourceSession> {
  const tree = await prepareTree(spec.tree, cacheDir, log);
  return withCheckoutLock(tree.workDir, log, async () => {
    const base = await resolveBase(tree, spec.base ?? (isDebianTree(spec.tree) ? spec.tree : 'HEAD'));
    const patches = [...spec.series.flatMap((s) => s.patches), ...extra];
    if (patches.length > 0) log(`applying ${patches.filter((p) => p.hasDiff).length} patch(es) on ${base.slice(0, 12)}`);
    const applied = await applySeriesAt(tree, base, patches);
    return { spec, tree, applied };
  });
}

export interface BuiltCommit {
  kernel: KernelSpec;
  reused: boolean;
  buildMs: number;
}

/** Returns the kernel line of a tree: its name without the path, URL and .git around it. */
export function treeLine(tree: string): string {
  return basename(tree.replace(/\/+$/, '')).replace(/\.git$/, '') || tree;
}

/** Returns where a commit of the session comes from: the tree, the base and the patches of the
 *  series that lie under the commit (none for the base itself). */
export function planKernelSource(s: Pick<SourceSession, 'spec' | 'applied'>, commit: string, buildKey: string): KernelSource {
  const upTo = s.applied.commits.findIndex((c) => c.commit === commit);
  const patches = upTo < 0 ? [] : s.applied.commits.slice(0, upTo + 1).map((c) => c.patch);
  return {
    // A build is its own line: Debian's package of the same version has another config.
    line: `build:${treeLine(s.spec.tree)}`,
    tree: s.spec.tree,
    commit,
    base: s.applied.base,
    buildKey,
    config: `${s.spec.baseConfig}+${basename(s.spec.fragmentPath)}`,
    series: patches.length === 0 ? null : { hash: patchsetHash(patches), patches: patches.map((p) => ({ subject: p.subject, messageId: p.messageId })) },
  };
}

/** Builds one commit of the session's checkout (or reuses its cached build) and its probe. */
export async function buildCommit(s: SourceSession, commit: string, repoDir: string, cacheDir: string, log: (m: string) => void): Promise<BuiltCommit> {
  const input: KbuildInput = {
    tree: s.tree,
    commit,
    treeId: await treeIdOf(s.tree, commit),
    baseConfig: s.spec.baseConfig,
    fragmentPath: s.spec.fragmentPath,
    fragmentText: readFileSync(s.spec.fragmentPath, 'utf8'),
    cacheDir,
    jobs: s.spec.jobs,
    toolchain: await readToolchain(),
  };
  const paths = planKbuildPaths(input);
  const source = planKernelSource(s, commit, paths.key);
  const cached = findBuiltKernel(input);
  if (cached && existsSync(probePath(repoDir, cacheDir, cached))) {
    log(`kernel ${cached.release} for ${commit.slice(0, 12)} reused from ${paths.outDir}`);
    return { kernel: { ...cached, source }, reused: true, buildMs: 0 };
  }
  // The probe is compiled against the object directory, which must hold this very commit:
  // without a cached probe the build is redone (incremental, ccache) before compiling it.
  return withCheckoutLock(s.tree.workDir, log, async () => {
    if (cached) rmSync(paths.outDir, { recursive: true, force: true });
    await checkoutCommit(s.tree, commit);
    const b = await runKbuild(input, log);
    await buildProbe(repoDir, cacheDir, b.spec);
    return { kernel: { ...b.spec, source }, reused: false, buildMs: b.buildMs };
  });
}
