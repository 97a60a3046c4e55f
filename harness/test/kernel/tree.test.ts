// The source tree a kernel is built from: Debian's .gitignore fix, the import plan, and with
// real git a user's tree cloned --shared into the cache (the user's repository untouched), a
// series applied with git am -3 patch by patch, reproducibly, and a patch that does not apply.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HarnessError } from '../../src/core/errors.js';
import { parseSeries } from '../../src/kernel/series.js';
import { applySeriesAt, checkoutCommit, planImport, prepareTree, resolveBase, stripDebianGitignore, treeIdOf, type TreeCheckout } from '../../src/kernel/tree.js';

// The end of linux-source-6.1's top-level .gitignore: upstream's entries, then Debian's block
// that ignores every top-level path except its own packaging.
const upstreamPart = `#
# NOTE! Don't add files that are generated in specific
# subdirectories here. Add them in the ".gitignore" file
# in that subdirectory instead.
#
# Normal rules (sorted alphabetically)
#
.*
*.a
*.o
*.ko

#
# Debian directory (make deb-pkg)
#
/debian/

# Kconfig savedefconfig output
/defconfig

# Rust analyzer configuration
/rust-project.json
`;
const debianBlock = `
# Ignore everything in the top-level directory except what Debian's
# packaging keeps under version control
# (debian/patches and debian/config are kept, the rest is generated)
/*
!/debian/
/debian/*
!/debian/bin/
!/debian/config/
!/debian/patches/
`;

t.test('stripDebianGitignore drops the last block and keeps the rest', async (t) => {
  const out = stripDebianGitignore(upstreamPart + debianBlock);
  t.equal(out, upstreamPart, 'exactly the upstream part, ending in one newline');
  t.notMatch(out, /^\/\*$/m, 'no "/*" line is left to hide the tree');
  t.notMatch(out, /!\/debian\//);
  t.notMatch(out, /Ignore everything in the top-level/, 'the comment lines above "/*" go with it');
  t.match(out, /^\/debian\/$/m, "upstream's own /debian/ entry stays");
  t.equal(stripDebianGitignore(upstreamPart), upstreamPart, 'without "/*" the text is unchanged');
  t.equal(stripDebianGitignore(''), '');
  t.equal(stripDebianGitignore(`${upstreamPart}/*\n!/debian/\n`), upstreamPart, 'a block without comment lines');
});

t.test('planImport: one commit with a fixed identity and date, tagged', async (t) => {
  const p = planImport('/cache/src/x', '6.1.192-2');
  t.same(p.map((s) => s.argv.slice(3)), [
    ['init', '-q', '-b', 'main'],
    ['config', 'gc.auto', '0'],
    ['config', 'user.name', 'dax-harness'],
    ['config', 'user.email', 'dax-harness@localhost'],
    ['add', '-A'],
    ['commit', '-q', '-m', 'linux-source-6.1 6.1.192-2'],
    ['tag', 'debian-6.1'],
  ]);
  for (const s of p) {
    t.same(s.argv.slice(0, 3), ['git', '-C', '/cache/src/x']);
    t.equal(s.env?.GIT_COMMITTER_DATE, '2000-01-01T00:00:00Z');
    t.equal(s.env?.GIT_AUTHOR_DATE, '2000-01-01T00:00:00Z');
    t.equal(s.env?.GIT_AUTHOR_NAME, 'dax-harness');
  }
  t.same(planImport('/cache/src/x', '6.1.192-2'), p, 'pure: same plan twice');
});

// ---- with real git ----
const dir = mkdtempSync(join(tmpdir(), 'dax-tree-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const user = join(dir, 'linux');
const cacheDir = join(dir, 'cache');
const fixedDate = '2001-02-03T04:05:06Z';
const gitEnv = { ...process.env, GIT_AUTHOR_DATE: fixedDate, GIT_COMMITTER_DATE: fixedDate };
const gitIn = (cwd: string, ...args: string[]): string =>
  execFileSync('git', ['-C', cwd, '-c', 'user.name=Dev', '-c', 'user.email=dev@example.org', ...args], { encoding: 'utf8', env: gitEnv, stdio: ['ignore', 'pipe', 'pipe'] });
const git = (...args: string[]): string => gitIn(user, ...args);
const daxC = (edit: (s: string) => string): void => writeFileSync(join(user, 'fs', 'dax.c'), edit(readFileSync(join(user, 'fs', 'dax.c'), 'utf8')));

execFileSync('git', ['init', '-q', '-b', 'master', user]);
mkdirSync(join(user, 'fs'));
writeFileSync(join(user, 'Kconfig'), 'mainmenu "Linux/$(ARCH) $(KERNELVERSION) Kernel Configuration"\n');
writeFileSync(join(user, 'Makefile'), 'VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n');
writeFileSync(join(user, 'fs', 'dax.c'), Array.from({ length: 60 }, (_, i) => `int dax_line_${i + 1};`).join('\n') + '\n');
git('add', '-A');
git('commit', '-q', '-m', 'Linux 6.1');
git('tag', 'v6.1');
// A two-patch series with a cover letter, as format-patch writes it.
git('checkout', '-q', '-b', 'series');
daxC((s) => s.replace('int dax_line_10;', 'int dax_line_ten;'));
git('commit', '-q', '-am', 'fs/dax: rename line ten');
daxC((s) => s.replace('int dax_line_50;', 'int dax_line_fifty;'));
git('commit', '-q', '-am', 'fs/dax: rename line fifty');
git('format-patch', '-q', '--cover-letter', '-o', join(dir, 'out'), 'v6.1..series');
const seriesText = readdirSync(join(dir, 'out')).sort().map((f) => readFileSync(join(dir, 'out', f), 'utf8')).join('');
// A base where line fifty changed otherwise: patch 2/2 conflicts on it.
git('checkout', '-q', '-b', 'conflicting', 'v6.1');
daxC((s) => s.replace('int dax_line_50;', 'int dax_line_FIFTY_OTHER;'));
git('commit', '-q', '-am', 'fs/dax: another change to line fifty');
// A commit with the same content as v6.1 (same tree object, another commit id).
git('checkout', '-q', 'master');
git('commit', '-q', '--allow-empty', '-m', 'empty');
const state = (): string[] => [git('rev-parse', 'HEAD'), git('status', '--porcelain'), git('for-each-ref'), git('worktree', 'list', '--porcelain'), git('stash', 'list')];
const before = state();
const logs: string[] = [];
const log = (s: string): void => {
  logs.push(s);
};

let tree: TreeCheckout;

t.test("prepareTree: a shared clone in the cache; the user's repository is untouched", async (t) => {
  tree = await prepareTree(user, cacheDir, log);
  t.equal(tree.name, user);
  t.match(tree.workDir, new RegExp(`^${cacheDir}/work/[0-9a-f]{12}$`));
  t.ok(existsSync(join(tree.workDir, '.git')), 'a repository of its own');
  t.match(readFileSync(join(tree.workDir, '.git', 'objects', 'info', 'alternates'), 'utf8'), new RegExp(`${realpathSync(user)}/\\.git/objects`), '--shared: objects borrowed from the user');
  t.equal(logs.length, 1);
  t.match(logs[0], /^cloning .*linux \(--shared: objects are borrowed/);
  t.same(state(), before, "the user's HEAD, status, refs and worktrees are as they were");

  const again = await prepareTree(join(user, 'fs'), cacheDir, log);
  t.equal(again.workDir, tree.workDir, 'a subdirectory of the tree is the same tree: the same checkout');
  t.equal(logs.length, 1, 'an existing checkout is reused, not cloned again');
});

t.test('prepareTree: a directory that is not a kernel git tree is a config error', async (t) => {
  const plain = join(dir, 'plain');
  mkdirSync(plain);
  writeFileSync(join(plain, 'Kconfig'), '');
  const e1 = await prepareTree(plain, cacheDir, log).catch((e: unknown) => e);
  t.type(e1, HarnessError);
  t.match(e1, { kind: 'config', message: /--tree .*plain: not a git repository/, hint: /git log|debian-6\.1/ });

  const other = join(dir, 'not-linux');
  execFileSync('git', ['init', '-q', other]);
  writeFileSync(join(other, 'Kconfig'), '');
  const e2 = await prepareTree(other, cacheDir, log).catch((e: unknown) => e);
  t.type(e2, HarnessError);
  t.match(e2, { kind: 'config', message: /not a Linux kernel tree \(no Kconfig or fs\/dax\.c at its top\)/, hint: /top directory of a Linux kernel git tree/ });
  t.notOk(existsSync(join(cacheDir, 'work')) && readdirSync(join(cacheDir, 'work')).length > 1, 'nothing cloned for either');
});

t.test('resolveBase: a ref of the user tree, fetched into the checkout; a bad ref is a config error', async (t) => {
  const v61 = await resolveBase(tree, 'v6.1');
  t.equal(v61, git('rev-parse', 'v6.1^{commit}').trim());
  t.equal(gitIn(tree.workDir, 'cat-file', '-t', v61).trim(), 'commit', 'the commit is there for the checkout');
  t.equal(await resolveBase(tree, 'HEAD'), git('rev-parse', 'master').trim(), "HEAD is the user's HEAD");
  const bad = await resolveBase(tree, 'no-such-branch').catch((e: unknown) => e);
  t.type(bad, HarnessError);
  t.match(bad, { kind: 'config', message: /--base no-such-branch: not a commit in / });
  t.ok((bad as HarnessError).hint, 'with a hint');
});

t.test('applySeriesAt: one commit per patch, reproducible, the head has the change', async (t) => {
  const patches = parseSeries(seriesText, 'series.mbox');
  t.equal(patches.length, 3, 'cover letter and two patches');
  const base = await resolveBase(tree, 'v6.1');
  const a = await applySeriesAt(tree, base, patches);
  t.equal(a.base, base);
  t.equal(a.commits.length, 2, 'the cover letter makes no commit');
  t.same(a.commits.map((c) => c.patch.subject), ['fs/dax: rename line ten', 'fs/dax: rename line fifty']);
  t.equal(a.head, a.commits[1]!.commit);
  t.equal(gitIn(tree.workDir, 'rev-parse', 'HEAD').trim(), a.head, 'the checkout is at the head');
  const head = readFileSync(join(tree.workDir, 'fs', 'dax.c'), 'utf8');
  t.match(head, /int dax_line_ten;[\s\S]*int dax_line_fifty;/, 'both changes in the checked-out tree');
  t.equal(gitIn(tree.workDir, 'rev-parse', `${a.commits[0]!.commit}^`).trim(), base, 'patch 1 sits on the base');
  t.equal(gitIn(tree.workDir, 'rev-parse', `${a.head}^`).trim(), a.commits[0]!.commit, 'patch 2 on patch 1');
  t.match(gitIn(tree.workDir, 'show', `${a.commits[0]!.commit}:fs/dax.c`), /dax_line_ten;[\s\S]*dax_line_50;/, 'the first prefix has only the first change');
  t.equal(gitIn(tree.workDir, 'log', '-1', '--format=%cI %aI %cn', a.head).trim(), '2001-02-03T04:05:06+00:00 2001-02-03T04:05:06+00:00 dax-harness', 'the committer date is the author date');

  const b = await applySeriesAt(tree, base, patches);
  t.same(b.commits.map((c) => c.commit), a.commits.map((c) => c.commit), 'the same series on the same base: the same commit ids');
  t.notOk(existsSync(join(tree.workDir, '.git', 'dax-harness-patches')), 'the split patch files are removed');
  t.equal(gitIn(tree.workDir, 'status', '--porcelain').trim(), '');

  const none = await applySeriesAt(tree, base, []);
  t.same(none, { base, commits: [], head: base }, 'no series: the head is the base');
  t.notMatch(readFileSync(join(tree.workDir, 'fs', 'dax.c'), 'utf8'), /dax_line_ten/, 'and the base is checked out');
  t.same(state(), before, "the user's repository is still untouched");
});

t.test('applySeriesAt: a patch that does not apply is named; the checkout stays usable', async (t) => {
  const patches = parseSeries(seriesText, 'series.mbox');
  const base = await resolveBase(tree, 'conflicting');
  const err = await applySeriesAt(tree, base, patches).catch((e: unknown) => e);
  t.type(err, HarnessError);
  t.match(err, { kind: 'config', message: `patch 2/2 "fs/dax: rename line fifty" does not apply to ${base.slice(0, 12)}` });
  t.match((err as HarnessError).detail, /dax_line_FIFTY_OTHER|dax_line_fifty|fs\/dax\.c/, 'the conflict is shown');
  t.match((err as HarnessError).hint, /your own checkout was not touched/);
  t.notOk(existsSync(join(tree.workDir, '.git', 'rebase-apply')), 'no git am left in progress');
  t.notOk(existsSync(join(tree.workDir, '.git', 'dax-harness-patches')));
  t.equal(gitIn(tree.workDir, 'status', '--porcelain').trim(), '', 'no conflict markers left in the checkout');

  const good = await resolveBase(tree, 'v6.1');
  const again = await applySeriesAt(tree, good, patches);
  t.equal(again.commits.length, 2, 'the next series applies in the same checkout');
  t.same(state(), before, "the user's repository is still untouched");
});

t.test('applySeriesAt recovers a checkout left in the middle of git am', async (t) => {
  const patches = parseSeries(seriesText, 'series.mbox');
  const base = await resolveBase(tree, 'conflicting');
  // What a run killed during git am leaves behind.
  await checkoutCommit(tree, base);
  writeFileSync(join(dir, 'p2.patch'), `${patches[2]!.raw}\n`);
  try {
    gitIn(tree.workDir, 'am', '-3', join(dir, 'p2.patch'));
  } catch {
    // expected: it conflicts
  }
  t.ok(existsSync(join(tree.workDir, '.git', 'rebase-apply')), 'set-up: git am is in progress');
  const good = await resolveBase(tree, 'v6.1');
  const r = await applySeriesAt(tree, good, patches);
  t.equal(r.commits.length, 2);
  t.equal(gitIn(tree.workDir, 'rev-parse', 'HEAD').trim(), r.head);
  t.notOk(existsSync(join(tree.workDir, '.git', 'rebase-apply')));
});

t.test('treeIdOf: equal content, equal id; checkoutCommit moves the checkout', async (t) => {
  const v61 = await resolveBase(tree, 'v6.1');
  const empty = await resolveBase(tree, 'master');
  t.not(v61, empty, 'two commits');
  t.equal(await treeIdOf(tree, v61), await treeIdOf(tree, empty), 'with one tree');
  t.equal(await treeIdOf(tree, v61), git('rev-parse', 'v6.1^{tree}').trim());
  const applied = await applySeriesAt(tree, v61, parseSeries(seriesText, 'series.mbox'));
  t.not(await treeIdOf(tree, applied.head), await treeIdOf(tree, v61), 'a patch changes it');
  t.equal(await treeIdOf(tree, applied.head), git('rev-parse', 'series^{tree}').trim(), 'the applied series has the content of the branch it was made from');

  await checkoutCommit(tree, v61);
  t.equal(gitIn(tree.workDir, 'rev-parse', 'HEAD').trim(), v61);
  t.notMatch(readFileSync(join(tree.workDir, 'fs', 'dax.c'), 'utf8'), /dax_line_ten/);
  await checkoutCommit(tree, applied.commits[0]!.commit);
  t.match(readFileSync(join(tree.workDir, 'fs', 'dax.c'), 'utf8'), /dax_line_ten;[\s\S]*dax_line_50;/);
  t.same(state(), before, "the user's repository is still untouched");
});

// Known bug (reported, not fixed here): prepareTree accepts a subdirectory of a tree and clones
// its top, but keeps the subdirectory as the name resolveBase fetches from, and git fetch
// refuses a path that is not a repository's top: a plain Error ("internal error") instead of
// the base.
t.test('--tree a subdirectory of the tree: the base resolves as for the top', async (t) => {
  const sub = await prepareTree(join(user, 'fs'), cacheDir, log);
  t.equal(await resolveBase(sub, 'v6.1').catch((e: unknown) => String(e)), git('rev-parse', 'v6.1^{commit}').trim());
});
