// The build options of the command line (--tree, --series, --baseline, --bisect, --config,
// --jobs, mutate): what they resolve to and which combinations are refused before anything runs.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, type BuildSpec, type HarnessConfig } from '../src/config.js';
import { HarnessError } from '../src/core/errors.js';

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const env = { HOME: '/home/tester' };

// A real format-patch file, written into a temp dir that is also the cwd the options are
// relative to.
const cwd = mkdtempSync(join(tmpdir(), 'dax-config-build-'));
t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
const repo = join(cwd, 'repo');
const git = (...args: string[]): string => execFileSync('git', ['-C', repo, '-c', 'user.name=Dev', '-c', 'user.email=dev@example.org', ...args], { encoding: 'utf8' });
execFileSync('git', ['init', '-q', '-b', 'main', repo]);
mkdirSync(join(repo, 'fs'));
writeFileSync(join(repo, 'fs', 'dax.c'), 'int a;\nint b;\nint c;\n');
git('add', '-A');
git('commit', '-q', '-m', 'base');
writeFileSync(join(repo, 'fs', 'dax.c'), 'int a;\nint bb;\nint c;\n');
git('commit', '-q', '-am', 'fs/dax: rename b');
writeFileSync(join(cwd, 'fix.patch'), git('format-patch', '--stdout', '-1'));
writeFileSync(join(cwd, 'notes.txt'), 'not a patch\n');

const resolve = (argv: string[]): HarnessConfig => resolveConfig(argv, env, repoDir, cwd);
function build(t: Test, c: HarnessConfig): BuildSpec {
  t.equal(c.kernel.kind, 'build', 'a kernel to build');
  return c.kernel as BuildSpec;
}
function configError(t: Test, argv: string[], message: RegExp): void {
  try {
    resolve(argv);
    t.fail(`${argv.join(' ')}: did not throw`);
  } catch (err) {
    t.type(err, HarnessError, `${argv.join(' ')}: a HarnessError`);
    t.equal((err as HarnessError).kind, 'config', `${argv.join(' ')}: kind config`);
    t.match((err as HarnessError).message, message, `${argv.join(' ')}: names the problem`);
    t.ok(((err as HarnessError).hint ?? '').length > 5, `${argv.join(' ')}: says what to do`);
  }
}

t.test('--tree debian-6.1: a build with every default', async (t) => {
  const c = resolve(['run', '--tree', 'debian-6.1']);
  t.same(build(t, c), {
    kind: 'build',
    tree: 'debian-6.1',
    base: undefined,
    series: [],
    baseConfig: 'tinyconfig',
    fragmentPath: join(repoDir, 'kernel-tests', 'dax.config'),
    jobs: availableParallelism(),
  });
  t.equal(c.baseline, false);
  t.equal(c.bisect, false);
  t.same(resolve(['run']).kernel, { kind: 'distro', line: 'debian-6.1', release: undefined }, "without build options: Debian's packaged kernel");
});

t.test('--tree DIR, --base, --config, --jobs, --fragment', async (t) => {
  const k = build(t, resolve(['--tree', 'repo', '--base', 'v6.1', '--config', 'defconfig', '--jobs', '4', '--fragment', 'fix.patch']));
  t.equal(k.tree, repo, 'a tree path is resolved against the cwd');
  t.equal(k.base, 'v6.1');
  t.equal(k.baseConfig, 'defconfig');
  t.equal(k.jobs, 4);
  t.equal(k.fragmentPath, join(cwd, 'fix.patch'));
  t.equal(build(t, resolve(['--base', 'HEAD~1'])).tree, 'debian-6.1', 'any build option implies a build, of debian-6.1 by default');
  configError(t, ['--tree', '/nonexistent'], /--tree \/nonexistent: no such directory/);
  t.equal(build(t, resolve(['--tree', 'debian-7.2'])).tree, 'debian-7.2', 'every Debian line is a tree');
  t.equal(build(t, resolve(['--tree', 'debian-6.12'])).tree, 'debian-6.12');
  configError(t, ['--tree', 'debian-5.10'], /--tree debian-5.10: not a Debian kernel line the harness knows/);
  configError(t, ['--kernel', 'debian-6.12', '--tree', 'debian-6.12'], /--kernel cannot be combined with building a kernel/);
  configError(t, ['--tree', 'debian-6.1', '--fragment', 'nope.config'], /--fragment nope\.config: no such file/);
});

t.test('--series: a format-patch file is read and parsed up front', async (t) => {
  const k = build(t, resolve(['--series', 'fix.patch']));
  t.equal(k.series.length, 1);
  t.equal(k.series[0]!.path, join(cwd, 'fix.patch'));
  t.equal(k.series[0]!.patches.length, 1);
  t.equal(k.series[0]!.patches[0]!.subject, 'fs/dax: rename b');
  t.equal(k.series[0]!.patches[0]!.hasDiff, true);
  t.equal(k.tree, 'debian-6.1');
  t.equal(build(t, resolve(['--series', 'fix.patch', '--series', join(cwd, 'fix.patch')])).series.length, 2, 'repeatable');
  configError(t, ['--series', 'missing.mbox'], /--series missing\.mbox: no such file/);
  configError(t, ['--series', 'notes.txt'], /--series notes\.txt: not an mbox or format-patch file/);
});

t.test('--baseline and --bisect need a series; --bisect implies --baseline', async (t) => {
  configError(t, ['--baseline'], /--baseline needs a --series/);
  configError(t, ['--tree', 'debian-6.1', '--bisect'], /--bisect needs a --series/);
  const c = resolve(['--bisect', '--series', 'fix.patch']);
  t.equal(c.bisect, true);
  t.equal(c.baseline, true, '--bisect implies --baseline');
  build(t, c);
  const b = resolve(['--baseline', '--series', 'fix.patch']);
  t.equal(b.baseline, true);
  t.equal(b.bisect, false);
});

t.test('a built kernel excludes a ready one', async (t) => {
  configError(t, ['--kernel', 'X', '--tree', 'debian-6.1'], /--kernel cannot be combined with building a kernel/);
  configError(t, ['--distro-release', 'R', '--series', 'fix.patch'], /--distro-release cannot be combined/);
});

t.test('--config and --jobs are checked', async (t) => {
  configError(t, ['--config', 'allyesconfig'], /--config allyesconfig: must be tinyconfig or defconfig/);
  configError(t, ['--tree', 'debian-6.1', '--jobs', '0'], /--jobs 0: must be a whole number from 1 to 512/);
  configError(t, ['--tree', 'debian-6.1', '--jobs', '2.5'], /--jobs 2\.5/);
  configError(t, ['--tree', 'debian-6.1', '--jobs', 'many'], /--jobs many/);
  configError(t, ['--jobs', '4'], /--jobs given without a kernel to build/);
});

t.test('mutate: a build of the base, mutants from kernel-tests/mutants', async (t) => {
  const c = resolve(['mutate']);
  t.equal(c.command, 'mutate');
  const k = build(t, c);
  t.equal(k.tree, 'debian-6.1');
  t.same(k.series, [], 'the mutants are not a series');
  t.equal(c.mutantsDir, join(repoDir, 'kernel-tests', 'mutants', 'debian-6.1'), 'the mutants of the tree');
  t.equal(resolve(['mutate', '--tree', 'debian-7.2']).mutantsDir, join(repoDir, 'kernel-tests', 'mutants', 'debian-7.2'), 'a Debian tree has its own mutants');
  t.same(c.mutants, []);
  const only = resolve(['mutate', '--mutants', 'm', '--mutant', 'a', '--mutant', 'b']);
  t.equal(only.mutantsDir, join(cwd, 'm'));
  t.same(only.mutants, ['a', 'b']);
  configError(t, ['run', '--mutant', 'x'], /--mutants\/--mutant belong to the mutate command/);
  configError(t, ['run', '--tree', 'debian-6.1', '--mutants', 'm'], /belong to the mutate command/);
  configError(t, ['mutate', '--series', 'fix.patch'], /mutate builds one kernel per mutant on the base/);
  configError(t, ['mutate', '--baseline'], /mutate builds one kernel per mutant/);
});
