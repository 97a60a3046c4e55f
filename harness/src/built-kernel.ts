// A kernel under test built from source: the tree checked out and the series applied once
// (prepareSource), then any commit of it (the base, a prefix of the series, the head, a
// mutant) built into a cached kernel with its probe module (buildCommit).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { buildProbe, probePath } from './artifacts.js';
import type { BuildSpec } from './config.js';
import { findBuiltKernel, planKbuildPaths, readToolchain, runKbuild, type KbuildInput } from './kbuild.js';
import type { KernelSpec } from './kernel.js';
import type { Patch } from './series.js';
import { applySeriesAt, checkoutCommit, DEBIAN_TREE, prepareTree, resolveBase, treeIdOf, type AppliedSeries, type TreeCheckout } from './tree.js';

export interface SourceSession {
  spec: BuildSpec;
  tree: TreeCheckout;
  applied: AppliedSeries;
}

/** Gets the tree ready and applies the series (all files, in order) on the base. */
export async function prepareSource(spec: BuildSpec, cacheDir: string, log: (s: string) => void, extra: Patch[] = []): Promise<SourceSession> {
  const tree = await prepareTree(spec.tree, cacheDir, log);
  const base = await resolveBase(tree, spec.base ?? (spec.tree === DEBIAN_TREE ? DEBIAN_TREE : 'HEAD'));
  const patches = [...spec.series.flatMap((s) => s.patches), ...extra];
  if (patches.length > 0) log(`applying ${patches.filter((p) => p.hasDiff).length} patch(es) on ${base.slice(0, 12)}`);
  const applied = await applySeriesAt(tree, base, patches);
  return { spec, tree, applied };
}

export interface BuiltCommit {
  kernel: KernelSpec;
  reused: boolean;
  buildMs: number;
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
  const cached = findBuiltKernel(input);
  if (cached && existsSync(probePath(repoDir, cacheDir, cached))) {
    log(`kernel ${cached.release} for ${commit.slice(0, 12)} reused from ${planKbuildPaths(input).outDir}`);
    return { kernel: cached, reused: true, buildMs: 0 };
  }
  // The probe is compiled against the object directory, which must hold this very commit:
  // without a cached probe the build is redone (incremental, ccache) before compiling it.
  if (cached) rmSync(planKbuildPaths(input).outDir, { recursive: true, force: true });
  await checkoutCommit(s.tree, commit);
  const b = await runKbuild(input, log);
  await buildProbe(repoDir, cacheDir, b.spec);
  return { kernel: b.spec, reused: false, buildMs: b.buildMs };
}
