// The source tree a kernel under test is built from: Debian's linux-source-X.Y (6.1, 6.12, 7.2)
// unpacked into the cache and made a git repository once, or a user's git tree, which is cloned (--shared,
// objects borrowed, nothing written into it) so that the user's checkout is never touched.
// Series are applied in the harness's own checkout, where a switch between commits rewrites
// only the files that differ, so make rebuilds only what changed.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HarnessError } from '../core/errors.js';
import { runChecked, runCommand, type CommandPlan, type ProcessResult } from '../core/proc.js';
import { describePatch, type Patch } from './series.js';
import { aptConfigOf, DEFAULT_DEBIAN_LINE, debianLineNames, downloadDebs, findDebianLine, updateApt, type DebianLine } from './debian.js';

/** The embedded default tree: Debian's 6.1 kernel source package. */
export const DEBIAN_TREE = DEFAULT_DEBIAN_LINE;

/** Returns true for a tree the harness imports from Debian's source package (debian-6.12). */
export function isDebianTree(name: string): boolean {
  return findDebianLine(name) !== undefined;
}
// A fixed identity and date make the imported commit id the same on every machine, so a
// build key computed here is valid in every cache.
const IMPORT_ENV = {
  GIT_AUTHOR_NAME: 'dax-harness',
  GIT_AUTHOR_EMAIL: 'dax-harness@localhost',
  GIT_COMMITTER_NAME: 'dax-harness',
  GIT_COMMITTER_EMAIL: 'dax-harness@localhost',
  GIT_AUTHOR_DATE: '2000-01-01T00:00:00Z',
  GIT_COMMITTER_DATE: '2000-01-01T00:00:00Z',
};

export interface TreeCheckout {
  /** What the user named (debian-6.1 or a path), for reports. */
  name: string;
  /** The harness-owned checkout builds run in. */
  workDir: string;
}

export interface AppliedSeries {
  base: string;
  /** Commit after each patch with a diff, in order (empty without a series). */
  commits: { commit: string; patch: Patch }[];
  head: string;
}

function git(cwd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 600_000): Promise<ProcessResult> {
  return runCommand({ argv: ['git', '-C', cwd, ...args], env: { GIT_TERMINAL_PROMPT: '0', ...env }, timeoutMs });
}

/** Returns Debian's .gitignore without its last block, which ignores every top-level path
 *  except debian/ and would hide the whole tree from git. */
export function stripDebianGitignore(text: string): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.trim() === '/*');
  if (i < 0) return text;
  // The block starts at the comment lines right above "/*".
  let start = i;
  while (start > 0 && lines[start - 1]!.startsWith('#')) start -= 1;
  return `${lines.slice(0, start).join('\n').trimEnd()}\n`;
}

/** Plans the import of an unpacked source directory as one commit with a fixed identity, tagged
 *  with the line's name. */
export function planImport(dir: string, version: string, line: DebianLine = findDebianLine(DEBIAN_TREE)!): CommandPlan[] {
  const g = (...a: string[]): CommandPlan => ({ argv: ['git', '-C', dir, ...a], env: IMPORT_ENV, timeoutMs: 1_800_000 });
  return [
    g('init', '-q', '-b', 'main'),
    // Background gc after the first big commit took minutes of CPU on a 2-core machine.
    g('config', 'gc.auto', '0'),
    g('config', 'user.name', 'dax-harness'),
    g('config', 'user.email', 'dax-harness@localhost'),
    g('add', '-A'),
    g('commit', '-q', '-m', `linux-source-${line.series} ${version}`),
    g('tag', line.name),
  ];
}

/** Unpacks a line's linux-source-X.Y into the cache as a git repository (once); returns its path. */
export async function fetchDebianSource(cacheDir: string, line: DebianLine, log: (s: string) => void): Promise<string> {
  const dir = join(cacheDir, 'src', line.name);
  if (existsSync(join(dir, '.git', 'dax-harness-complete'))) return dir;
  const pkg = `linux-source-${line.series}`;
  log(`fetching ${pkg} (Debian ${line.suite}) and importing it into ${dir} (once; a few minutes)`);
  const tmp = `${dir}.tmp-${process.pid}`;
  // The host's own suite comes through the host's apt; the others through the harness's.
  const apt = line.host ? null : aptConfigOf(cacheDir, line.suite);
  if (apt) await updateApt(apt, log);
  const [deb] = await downloadDebs([pkg], tmp, {
    apt,
    hint: 'check that apt can reach the Debian mirror (`apt-get update`), or pass --tree DIR with a kernel git tree',
    timeoutMs: 1_200_000,
    updateOnFailure: true,
  });
  const version = /_([^_]+)_all\.deb$/.exec(deb!)?.[1] ?? 'unknown';
  const pkgRoot = join(tmp, 'pkg');
  await runChecked({ argv: ['dpkg-deb', '-x', join(tmp, deb!), pkgRoot], timeoutMs: 600_000 }, `unpacking ${deb}`);
  const tarball = join(pkgRoot, 'usr', 'src', `${pkg}.tar.xz`);
  const src = join(tmp, 'src');
  mkdirSync(src);
  await runChecked({ argv: ['tar', '-xf', tarball, '-C', src, '--strip-components=1'], timeoutMs: 1_200_000 }, `unpacking ${tarball}`);
  rmSync(pkgRoot, { recursive: true, force: true });
  rmSync(join(tmp, deb!), { force: true });
  const gi = join(src, '.gitignore');
  if (existsSync(gi)) writeFileSync(gi, stripDebianGitignore(readFileSync(gi, 'utf8')));
  for (const p of planImport(src, version, line)) await runChecked(p, 'importing the kernel source into git');
  writeFileSync(join(src, '.git', 'dax-harness-complete'), `${version}\n`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(cacheDir, 'src'), { recursive: true });
  renameSync(src, dir);
  rmSync(tmp, { recursive: true, force: true });
  return dir;
}

/** Returns the harness's checkout for --tree: the Debian import itself, or a shared clone of DIR. */
export async function prepareTree(tree: string, cacheDir: string, log: (s: string) => void): Promise<TreeCheckout> {
  const line = findDebianLine(tree);
  if (line) return { name: tree, workDir: await fetchDebianSource(cacheDir, line, log) };
  const user = resolve(tree);
  const top = await git(user, ['rev-parse', '--show-toplevel']);
  if (top.exitCode !== 0) {
    throw new HarnessError('config', `--tree ${tree}: not a git repository`, {
      hint: `pass a kernel git tree (a directory where \`git log\` works) or --tree ${debianLineNames()}`,
    });
  }
  if (!existsSync(join(top.stdout.trim(), 'Kconfig')) || !existsSync(join(top.stdout.trim(), 'fs', 'dax.c'))) {
    throw new HarnessError('config', `--tree ${tree}: not a Linux kernel tree (no Kconfig or fs/dax.c at its top)`, {
      hint: `pass the top directory of a Linux kernel git tree, or --tree ${debianLineNames()}`,
    });
  }
  const topDir = top.stdout.trim();
  const id = createHash('sha256').update(topDir).digest('hex').slice(0, 12);
  const workDir = join(cacheDir, 'work', id);
  if (!existsSync(join(workDir, '.git'))) {
    log(`cloning ${user} (--shared: objects are borrowed, the tree itself is not touched) into ${workDir}`);
    mkdirSync(join(cacheDir, 'work'), { recursive: true });
    await runChecked({ argv: ['git', 'clone', '-q', '--shared', '--no-checkout', top.stdout.trim(), workDir], timeoutMs: 1_800_000 }, `cloning ${user}`);
    await runChecked({ argv: ['git', '-C', workDir, 'config', 'gc.auto', '0'] }, 'configuring the clone');
  }
  // Named by its top directory: a subdirectory given as --tree resolves and fetches from there.
  return { name: topDir, workDir };
}

/** Resolves REF in the user's tree (or the import) to a commit id, fetched into the checkout. */
export async function resolveBase(tree: TreeCheckout, ref: string): Promise<string> {
  const origin = isDebianTree(tree.name) ? tree.workDir : tree.name;
  const r = await git(origin, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  if (r.exitCode !== 0) {
    throw new HarnessError('config', `--base ${ref}: not a commit in ${tree.name}`, {
      hint: isDebianTree(tree.name) ? `leave --base out (the import is tagged ${tree.name})` : 'pass a branch, tag or commit id that exists in the tree (git log shows them)',
    });
  }
  const commit = r.stdout.trim();
  if (origin !== tree.workDir) await runChecked({ argv: ['git', '-C', tree.workDir, 'fetch', '-q', origin, commit], timeoutMs: 1_800_000 }, `fetching ${ref} from ${tree.name}`);
  return commit;
}

/** Checks out base in the harness's checkout and applies the series on it with git am -3. */
export async function applySeriesAt(tree: TreeCheckout, base: string, series: Patch[]): Promise<AppliedSeries> {
  const w = tree.workDir;
  // A run killed in the middle of git am leaves its state behind; a checkout we own can be reset.
  if (existsSync(join(w, '.git', 'rebase-apply'))) await git(w, ['am', '--abort']);
  await runChecked({ argv: ['git', '-C', w, 'checkout', '-q', '--force', '--detach', base], timeoutMs: 1_800_000 }, `checking out ${base}`);
  // Only messages with a diff go to git am: a cover letter is an "empty patch" to it.
  const patches = series.filter((p) => p.hasDiff);
  const commits: AppliedSeries['commits'] = [];
  const dir = join(w, '.git', 'dax-harness-patches');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  for (const [i, p] of patches.entries()) {
    const f = join(dir, `${String(i + 1).padStart(4, '0')}.patch`);
    writeFileSync(f, `${p.raw}\n`);
    // One patch per git am so each prefix of the series has its commit (for --bisect). The
    // committer date is fixed so the same series on the same base gives the same commits.
    const am = await runCommand({
      argv: ['git', '-C', w, '-c', 'user.name=dax-harness', '-c', 'user.email=dax-harness@localhost', 'am', '-3', '--keep-cr', '--committer-date-is-author-date', f],
      timeoutMs: 600_000,
    });
    if (am.exitCode !== 0) {
      const conflict = (await git(w, ['diff'])).stdout.trim();
      await git(w, ['am', '--abort']);
      rmSync(dir, { recursive: true, force: true });
      throw new HarnessError('config', `patch ${describePatch(p)} does not apply to ${base.slice(0, 12)}`, {
        hint: 'rebase the series onto the base (or pass the --base it was written for); your own checkout was not touched',
        detail: (conflict || (am.stdout + am.stderr).trim()).split('\n').slice(0, 60).join('\n'),
      });
    }
    commits.push({ commit: (await git(w, ['rev-parse', 'HEAD'])).stdout.trim(), patch: p });
  }
  rmSync(dir, { recursive: true, force: true });
  return { base, commits, head: commits.at(-1)?.commit ?? base };
}

/** Checks out a commit in the harness's checkout (only files that differ are rewritten). */
export async function checkoutCommit(tree: TreeCheckout, commit: string): Promise<void> {
  await runChecked({ argv: ['git', '-C', tree.workDir, 'checkout', '-q', '--force', '--detach', commit], timeoutMs: 1_800_000 }, `checking out ${commit}`);
}

/** Returns the id of a commit's tree object: equal contents, equal id, whatever the commit. */
export async function treeIdOf(tree: TreeCheckout, commit: string): Promise<string> {
  const r = await runChecked({ argv: ['git', '-C', tree.workDir, 'rev-parse', `${commit}^{tree}`] }, `reading the tree of ${commit}`);
  return r.stdout.trim();
}
