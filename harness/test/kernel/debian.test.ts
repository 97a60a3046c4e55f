// The Debian lines, the harness's own apt files and the plans around them (pure); the package
// lists of the real suites are read by the e2e lane of the Debian kernels.
import t from 'tap';
import { mkdtempSync, readFileSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  aptConfigOf,
  DEBIAN_LINES,
  debianLineOfRelease,
  findDebianLine,
  formatSourcesList,
  parseMetaDepends,
  parseReleaseParts,
  planApt,
  planChrootModuleBuild,
  planToolchainRoot,
  releaseOfImagePackage,
  updateApt,
} from '../../src/kernel/debian.js';

t.test('the three lines: suites, series and refcount models', async (t) => {
  t.same(
    DEBIAN_LINES.map((l) => [l.name, l.suite, l.model, l.host]),
    [
      ['debian-6.1', 'bookworm', 'legacy', true],
      ['debian-6.12', 'trixie', 'legacy', false],
      ['debian-7.2', 'sid', 'folio', false],
    ],
  );
  t.equal(debianLineOfRelease('6.1.0-57-amd64')?.name, 'debian-6.1');
  t.equal(debianLineOfRelease('6.12.117+deb13-amd64')?.name, 'debian-6.12', '6.12 is not 6.1');
  t.equal(debianLineOfRelease('7.2.13+deb14-amd64')?.name, 'debian-7.2');
  t.equal(debianLineOfRelease('5.10.0-30-amd64'), undefined);
  t.equal(findDebianLine('debian-6.6'), undefined);
});

t.test('apt: the harness\'s own files, never the host\'s', async (t) => {
  const apt = aptConfigOf('/c', 'sid');
  const plan = planApt(apt, 'apt-get', ['download', 'linux-image-7.2.13+deb14-amd64'], '/tmp/x');
  t.same(plan.argv.slice(0, 1), ['apt-get']);
  t.ok(plan.argv.includes('Dir::Etc::SourceList=/c/apt/sid/sources.list'));
  t.ok(plan.argv.includes('Dir::Etc::SourceParts=/dev/null'), 'the host\'s sources.list.d is not read');
  t.ok(plan.argv.includes('Dir::State::Lists=/c/apt/sid/lists'));
  t.ok(plan.argv.includes('Dir::Cache=/c/apt/sid/cache'));
  t.equal(plan.cwd, '/tmp/x');
  t.match(formatSourcesList('trixie'), /^deb \[signed-by=\/usr\/share\/keyrings\/debian-archive-keyring\.gpg\] http:\/\/deb\.debian\.org\/debian trixie main\n$/, 'signed by Debian\'s keyring');
});

t.test('updateApt: fresh lists are not fetched again; a day-old failure keeps yesterday\'s lists', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dax-apt-'));
  const apt = { suite: 'trixie', dir };
  mkdirSync(join(dir, 'lists'), { recursive: true });
  writeFileSync(join(dir, 'lists', '.dax-harness-updated'), 'x\n');
  const logs: string[] = [];
  await updateApt(apt, (s) => logs.push(s));
  t.same(logs, [], 'lists of today: no apt-get update');
  t.equal(readFileSync(join(dir, 'sources.list'), 'utf8'), formatSourcesList('trixie'), 'the sources file is written');
  // Two days old, and a mirror that cannot be reached (an unresolvable host in a copy of the config).
  const old = (Date.now() - 2 * 24 * 3600_000) / 1000;
  utimesSync(join(dir, 'lists', '.dax-harness-updated'), old, old);
  await updateApt({ suite: 'no-such-suite-dax', dir }, (s) => logs.push(s));
  t.match(logs.join('\n'), /fetching Debian no-such-suite-dax's package lists/);
  t.match(logs.join('\n'), /apt-get update for no-such-suite-dax failed; using the lists of/, 'an old list is used, and it says so');
  const fresh = mkdtempSync(join(tmpdir(), 'dax-apt-'));
  await t.rejects(updateApt({ suite: 'no-such-suite-dax', dir: fresh }, () => {}), /cannot fetch the package lists of Debian no-such-suite-dax/, 'no lists at all: a clear error');
});

t.test('parsers of apt-cache depends', async (t) => {
  const sid = [
    'linux-image-7.2.13+deb14-amd64',
    '  Depends: dracut',
    ' |Depends: initramfs-tools',
    '  Depends: linux-base-7.2.13+deb14-amd64',
    '  Depends: linux-binary-7.2.13+deb14-amd64',
    '  Depends: linux-modules-7.2.13+deb14-amd64',
    '  Depends: linux-modules-7.1.4+deb14-amd64',
  ].join('\n');
  t.same(parseReleaseParts(sid, '7.2.13+deb14-amd64'), ['linux-base-7.2.13+deb14-amd64', 'linux-binary-7.2.13+deb14-amd64', 'linux-modules-7.2.13+deb14-amd64'], 'sid\'s split image: only this release\'s parts');
  t.same(parseReleaseParts('linux-image-6.12.117+deb13-amd64\n  Depends: kmod\n  Depends: linux-base\n', '6.12.117+deb13-amd64'), [], 'trixie\'s image is one package');
  t.equal(parseMetaDepends('linux-image-amd64\n  Depends: linux-image-6.12.117+deb13-amd64\n'), 'linux-image-6.12.117+deb13-amd64');
  t.equal(releaseOfImagePackage('linux-image-6.12.117+deb13-amd64-unsigned'), '6.12.117+deb13-amd64');
});

t.test('the toolchain chroot and the module build in it', async (t) => {
  const sid = findDebianLine('debian-7.2')!;
  const p = planToolchainRoot(sid, '7.2.13+deb14-amd64', '/c/tc', true);
  t.same(p.argv.slice(0, 3), ['mmdebstrap', '--mode=root', '--variant=apt']);
  t.ok(p.argv.includes('--include=linux-headers-7.2.13+deb14-amd64,make'), 'the headers bring the suite\'s compiler');
  t.same(p.argv.slice(-3), ['sid', '/c/tc', 'http://deb.debian.org/debian']);
  t.equal(planToolchainRoot(sid, '7.2.13+deb14-amd64', '/c/tc', false).argv[1], '--mode=unshare', 'not root: an unshared user namespace');
  const b = planChrootModuleBuild('/c/tc', '/usr/src/linux-headers-7.2.13+deb14-amd64', '/tmp/dax-probe-1');
  t.same(b.argv.slice(0, 4), ['unshare', '--mount', '--fork', 'sh'], 'a private mount namespace: /proc goes away with it');
  t.same(b.argv.slice(-3), ['/c/tc', '/usr/src/linux-headers-7.2.13+deb14-amd64', '/tmp/dax-probe-1'], 'paths are arguments, never pasted into the script');
  t.ok(b.timeoutMs > 0, 'bounded');
});
