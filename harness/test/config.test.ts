import t, { type Test } from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadProfile, resolveConfig, USAGE } from '../src/config.js';
import { HarnessError } from '../src/core/errors.js';
import { SUITE } from '../src/suite/suite.js';

const repoDir = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
const env = { HOME: '/home/tester' };
const cwd = '/work/elsewhere';

function configError(t: Test, argv: string[], message: RegExp, what: string, e: Record<string, string | undefined> = env): void {
  try {
    resolveConfig(argv, e, repoDir, cwd);
    t.fail(`${what}: did not throw`);
  } catch (err) {
    t.type(err, HarnessError, `${what}: a HarnessError`);
    const h = err as HarnessError;
    t.equal(h.kind, 'config', `${what}: kind config`);
    t.match(h.message, message, `${what}: the message names the bad input`);
    t.ok(h.hint && h.hint.length > 5, `${what}: a hint says what to do (${h.hint ?? 'none'})`);
  }
}

t.test('defaults', async (t) => {
  const c = resolveConfig([], env, repoDir, cwd);
  t.equal(c.command, 'run');
  t.equal(c.repoDir, repoDir);
  t.equal(c.profile.name, 'default');
  t.equal(c.profile.nvdimms.length, 2);
  t.same(c.filesystems, ['ext4', 'xfs']);
  t.equal(c.accel, 'tcg');
  t.same(c.tests.map((x) => x.name), SUITE.map((x) => x.name), 'every test');
  t.same(c.kernel, { kind: 'distro', line: 'debian-6.1', release: undefined }, "Debian's kernel unless --kernel");
  t.equal(c.resultsDir, `${repoDir}/results`, 'results under the repo, not the cwd');
  t.equal(c.cacheDir, '/home/tester/.cache/dax-harness', 'cache under HOME/.cache');
  t.equal(c.bootTimeoutMs, 120_000);
  t.equal(c.testTimeoutMs, null, 'each test keeps its own bound');
  t.equal(c.dryRun, false);
  t.equal(c.allowInstall, true);
  t.equal(c.verbose, false);
  t.ok(Object.isFrozen(c), 'the configuration is read-only');
  t.throws(() => {
    (c as { accel: string }).accel = 'kvm';
  }, TypeError, 'assigning to it throws (ESM is strict mode)');
});

t.test('cache directory', async (t) => {
  t.equal(resolveConfig([], { HOME: '/h', XDG_CACHE_HOME: '/xdg/cache' }, repoDir, cwd).cacheDir, '/xdg/cache/dax-harness', 'XDG_CACHE_HOME wins over HOME');
  t.equal(resolveConfig([], { HOME: '/h', XDG_CACHE_HOME: '' }, repoDir, cwd).cacheDir, '/h/.cache/dax-harness', 'an empty XDG_CACHE_HOME is ignored (XDG spec)');
  t.equal(resolveConfig([], { HOME: '/h', XDG_CACHE_HOME: 'rel/cache' }, repoDir, cwd).cacheDir, '/h/.cache/dax-harness', 'a relative XDG_CACHE_HOME is ignored (XDG spec)');
  t.equal(resolveConfig(['--cache', 'c'], { HOME: '/h', XDG_CACHE_HOME: '/x' }, repoDir, cwd).cacheDir, `${cwd}/c`, '--cache wins, relative to the cwd');
  t.equal(resolveConfig(['--results', '../r'], env, repoDir, cwd).resultsDir, '/work/r');
});

t.test('options', async (t) => {
  const c = resolveConfig(
    ['run', '--kernel', 'bz', '--modules', '/m', '--kernel-build', 'b', '--profile', 'labels', '--fs', ' xfs ', '--tests', 'odirect-pin,mmap-fault-4k', '--boot-timeout', '30', '--test-timeout', '2.5', '--no-install', '--dry-run', '-v'],
    env,
    repoDir,
    cwd,
  );
  t.same(c.kernel, { kind: 'path', bzImage: `${cwd}/bz`, modulesDir: '/m', buildDir: `${cwd}/b` }, 'paths resolved against the cwd');
  t.equal(c.profile.name, 'labels');
  t.same(c.filesystems, ['xfs']);
  t.same(c.tests.map((x) => x.name), ['odirect-pin', 'mmap-fault-4k'], 'tests in the order given');
  t.equal(c.bootTimeoutMs, 30_000);
  t.equal(c.testTimeoutMs, 2500);
  t.equal(c.allowInstall, false);
  t.equal(c.dryRun, true);
  t.equal(c.verbose, true);
  t.same(resolveConfig(['--distro-release', '6.1.0-56-amd64'], env, repoDir, cwd).kernel, { kind: 'distro', line: 'debian-6.1', release: '6.1.0-56-amd64' });
  t.equal(resolveConfig(['--kernel', '/k'], env, repoDir, cwd).kernel.kind, 'path', '--kernel alone is allowed');
  t.same(resolveConfig(['--kernel', 'debian-7.2'], env, repoDir, cwd).kernel, { kind: 'distro', line: 'debian-7.2', release: undefined }, '--kernel names a Debian line');
  t.same(resolveConfig(['--distro-release', '6.12.117+deb13-amd64'], env, repoDir, cwd).kernel, { kind: 'distro', line: 'debian-6.12', release: '6.12.117+deb13-amd64' }, 'a release names its line');
  t.same(resolveConfig(['--kernel', 'debian-6.12', '--distro-release', '6.12.117+deb13-amd64'], env, repoDir, cwd).kernel.kind, 'distro');
  t.same(resolveConfig(['matrix'], env, repoDir, cwd).matrixKernels, ['debian-6.1', 'debian-6.12', 'debian-7.2'], 'matrix: every Debian line by default');
  t.same(resolveConfig(['matrix', '--kernels', 'debian-7.2, debian-6.1'], env, repoDir, cwd).matrixKernels, ['debian-7.2', 'debian-6.1'], 'in the order given');
  configError(t, ['matrix', '--kernels', 'debian-7.2,linux-next'], /--kernels debian-7.2,linux-next: linux-next is not a Debian kernel line/, 'an unknown line');
  configError(t, ['matrix', '--kernel', 'debian-7.2'], /matrix takes --kernels LIST, not --kernel/, '--kernel with matrix');
  configError(t, ['run', '--kernels', 'debian-7.2'], /--kernels belongs to the matrix command/, '--kernels with run');
  configError(t, ['--kernel', 'debian-6.6'], /--kernel debian-6.6: not a Debian kernel line the harness knows/, 'an unknown line');
  configError(t, ['--kernel', 'debian-6.12', '--distro-release', '7.2.13+deb14-amd64'], /--distro-release 7.2.13\+deb14-amd64 is a debian-7.2 kernel, not debian-6.12/, 'a release of another line');
  configError(t, ['--kernel', '/k', '--distro-release', '6.1.0-57-amd64'], /--distro-release goes with a Debian kernel/, 'a release with a path');
  configError(t, ['--kernel', 'debian-6.12', '--modules', '/m'], /--modules given without --kernel PATH/, '--modules belongs to a path');
  t.equal(resolveConfig(['doctor'], env, repoDir, cwd).command, 'doctor');
  t.equal(resolveConfig(['list'], env, repoDir, cwd).command, 'list');
  t.equal(resolveConfig(['run', '--help'], env, repoDir, cwd).command, 'help', '--help wins over the command');
  t.equal(resolveConfig(['-h'], env, repoDir, cwd).command, 'help');
  t.equal(resolveConfig(['--profile', 'legacy', '--fs', 'ext4,xfs'], env, repoDir, cwd).profile.legacyPmem?.length, 2);
  if (existsSync('/dev/kvm')) t.equal(resolveConfig(['--accel', 'kvm'], env, repoDir, cwd).accel, 'kvm');
  else configError(t, ['--accel', 'kvm'], /--accel kvm: \/dev\/kvm does not exist/, 'kvm without /dev/kvm');
});

t.test('errors are config errors that name the input and give a hint', async (t) => {
  configError(t, ['frobnicate'], /unknown command "frobnicate"/, 'unknown command');
  configError(t, ['run', 'extra'], /unexpected argument "extra"/, 'second positional');
  configError(t, ['--bogus'], /--bogus/, 'unknown option');
  configError(t, ['--fs'], /--fs/, 'option without its value');
  configError(t, ['--tests', 'mmap-fault-4k,nope,zilch'], /unknown test name\(s\): nope, zilch/, 'unknown tests');
  configError(t, ['--fs', 'ext4,btrfs'], /--fs ext4,btrfs: only ext4 and xfs/, 'bad --fs');
  configError(t, ['--fs', ','], /--fs ,/, 'empty --fs');
  configError(t, ['--accel', 'hvf'], /--accel hvf: must be tcg or kvm/, 'bad --accel');
  configError(t, ['--modules', '/lib/modules/6.1'], /--modules given without --kernel/, '--modules without --kernel');
  configError(t, ['--boot-timeout', 'soon'], /--boot-timeout soon: not a number of seconds/, 'non-numeric --boot-timeout');
  configError(t, ['--boot-timeout', '0.0001'], /--boot-timeout 0.0001: not a number of seconds \(1 or more\)/, 'a bound under a second');
  configError(t, ['--kernel-build', '/tmp'], /--kernel-build given without --kernel/, '--kernel-build alone');
  configError(t, ['--boot-timeout', '0'], /--boot-timeout 0/, 'zero --boot-timeout');
  configError(t, ['--boot-timeout=-5'], /--boot-timeout -5/, 'negative --boot-timeout');
  configError(t, ['--test-timeout', 'Infinity'], /--test-timeout Infinity/, 'infinite --test-timeout');
  configError(t, ['--profile', 'huge'], /unknown profile "huge"/, 'unknown profile');
  configError(t, ['--profile', '_comment'], /unknown profile "_comment"/, 'the _comment key is not a profile');
});

t.test('report: run directories, the dashboard directory and the exports', async (t) => {
  const c = resolveConfig(['report', 'r1', '/abs/r2', '--junit', 'j.xml', '--kcidb', 'k.json', '--origin', 'my_lab'], env, repoDir, cwd);
  t.equal(c.command, 'report');
  t.same(c.report, { runs: [`${cwd}/r1`, '/abs/r2'], outDir: null, junit: `${cwd}/j.xml`, kcidb: `${cwd}/k.json`, origin: 'my_lab' }, 'exports only: no dashboard unless --out');
  const d = resolveConfig(['report'], env, repoDir, cwd);
  t.same(d.report, { runs: [], outDir: `${repoDir}/results/report`, junit: null, kcidb: null, origin: 'daxharness' }, 'by default: every run, the dashboard under results/report');
  t.equal(resolveConfig(['report', '--results', 'res'], env, repoDir, cwd).report.outDir, `${cwd}/res/report`);
  t.equal(resolveConfig(['report', '--out', 'o', '--junit', 'j'], env, repoDir, cwd).report.outDir, `${cwd}/o`);
  configError(t, ['run', '--out', 'o'], /--out belongs to the report command/, 'report options on run');
  configError(t, ['report', '--origin', 'My-Lab'], /--origin My-Lab: KCIDB origins are lower-case letters/, 'a bad KCIDB origin');
});

t.test('nightly --send-with is split into argv, never given to a shell', async (t) => {
  t.same(resolveConfig(['nightly', '--send-with', 'sendmail  -t -oi'], env, repoDir, cwd).nightly.sendWith, ['sendmail', '-t', '-oi']);
  t.equal(resolveConfig(['nightly'], env, repoDir, cwd).nightly.sendWith, null, 'nothing is sent without it');
  configError(t, ['nightly', '--send-with', ' '], /--send-with needs a command/, 'an empty command');
  configError(t, ['run', '--send-with', 'sendmail -t'], /--send-with belongs to the queue and nightly commands/, 'on run');
});

t.test('--shard and --guests split one run', async (t) => {
  t.same(resolveConfig(['run', '--shard', '2/3'], env, repoDir, cwd).shard, { index: 2, count: 3 });
  t.equal(resolveConfig(['run', '--guests', '2'], env, repoDir, cwd).guests, 2);
  t.equal(resolveConfig(['run'], env, repoDir, cwd).shard, null);
  configError(t, ['run', '--shard', '3/2'], /--shard 3\/2: must be I\/N with 1 <= I <= N/, 'shard beyond the count');
  configError(t, ['run', '--shard', '0/2'], /--shard 0\/2/, 'shard 0');
  configError(t, ['run', '--guests', '9'], /--guests 9: must be a whole number from 1 to 8/, 'too many guests');
  configError(t, ['run', '--guests', '2', '--shard', '1/2'], /--guests and --shard cannot be combined/, 'both');
  configError(t, ['run', '--guests', '2', '--ssh-port', '10022'], /--ssh-port gives one port/, 'one port for two guests');
  configError(t, ['run', '--tree', 'debian-6.1', '--series', 'x', '--baseline', '--guests', '2'], /.*/, 'with a campaign');
});

t.test('loadProfile', async (t) => {
  const p = loadProfile(repoDir, 'default');
  t.equal(p.name, 'default');
  t.same(p.nvdimms, [{ sizeMiB: 1024 }, { sizeMiB: 1024 }]);
  t.same(loadProfile(repoDir, 'legacy').nvdimms, [], 'nvdimms defaults to none');
  const err = t.throws(() => loadProfile(repoDir, 'nope')) as HarnessError;
  t.match(err.hint, /pick one of: default, labels, legacy/, 'the hint lists the real profiles');
  t.notMatch(err.hint, /_comment/);
});

t.test('usage mentions every option the parser accepts', async (t) => {
  for (const o of ['--kernel', '--modules', '--kernel-build', '--distro-release', '--profile', '--fs', '--tests', '--accel', '--results', '--cache', '--boot-timeout', '--test-timeout', '--no-install', '--dry-run', '--verbose', '--out', '--junit', '--kcidb', '--origin']) {
    t.ok(USAGE.includes(o), o);
  }
});
