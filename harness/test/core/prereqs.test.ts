import t from 'tap';
import { checkRequirements, ensureRequirements, formatDoctor, planInstall, planRequirements, type Requirement } from '../../src/core/prereqs.js';

// A fake filesystem: only what cannot be arranged on this host (which has everything installed).
function fakeExists(paths: string[]): (p: string) => boolean {
  const set = new Set(paths);
  return (p) => set.has(p);
}

const ALL_BASE = ['qemu-system-x86', 'qemu-system-data', 'busybox-static', 'dropbear-bin', 'ndctl', 'xfsprogs', 'e2fsprogs', 'kmod', 'gcc', 'make', 'libc6-dev', 'liburing-dev'];

t.test('planRequirements', async (t) => {
  const base = planRequirements({});
  t.same(base.map((r) => r.pkg), ALL_BASE);
  t.ok(base.every((r) => r.paths.length > 0 && r.paths.every((p) => p.startsWith('/')) && r.why.length > 0), 'absolute paths and a reason for each');
  t.notOk(base.some((r) => r.pkg.startsWith('linux-headers')), 'no headers requirement without a kernel release');
  t.same(base.find((r) => r.pkg === 'dropbear-bin')?.paths, ['/usr/bin/dropbear', '/usr/sbin/dropbear', '/bin/dropbear', '/sbin/dropbear'], 'programs are looked for in every bin dir');

  const withHeaders = planRequirements({ headersFor: '6.1.0-56-amd64' });
  t.equal(withHeaders.length, base.length + 1);
  t.same(withHeaders.at(-1)?.pkg, 'linux-headers-6.1.0-56-amd64');
  t.same(withHeaders.at(-1)?.paths, ['/usr/src/linux-headers-6.1.0-56-amd64/Makefile']);
  t.same(planRequirements({ headersFor: '' }).length, base.length, 'an empty release is no release');
});

t.test('checkRequirements', async (t) => {
  const reqs = planRequirements({ headersFor: '6.1.0-56-amd64' });
  const none = checkRequirements(reqs, () => false);
  t.same(none.present, []);
  t.equal(none.missing.length, reqs.length);

  const all = checkRequirements(reqs, () => true);
  t.equal(all.present.length, reqs.length);
  t.same(all.missing, []);

  // Any one path satisfies a requirement: dropbear in /usr/sbin only, mkfs.xfs in /sbin only.
  const some = checkRequirements(reqs, fakeExists(['/usr/sbin/dropbear', '/sbin/mkfs.xfs', '/usr/share/qemu/qboot.rom']));
  t.same(some.present.map((r) => r.pkg), ['qemu-system-data', 'dropbear-bin', 'xfsprogs']);
  t.equal(some.missing.length, reqs.length - 3);
  t.ok(some.missing.some((r) => r.pkg === 'linux-headers-6.1.0-56-amd64'));

  const seen: string[] = [];
  checkRequirements([{ pkg: 'p', paths: ['/a', '/b', '/c'], why: 'w' }], (p) => {
    seen.push(p);
    return p === '/b';
  });
  t.same(seen, ['/a', '/b'], 'stops at the first path that exists');

  // The default existence check is the real filesystem.
  const real = checkRequirements([{ pkg: 'sh', paths: ['/bin/sh'], why: 'w' }, { pkg: 'nope', paths: ['/nonexistent/x'], why: 'w' }]);
  t.same([real.present.map((r) => r.pkg), real.missing.map((r) => r.pkg)], [['sh'], ['nope']]);
});

t.test('planInstall', async (t) => {
  t.same(planInstall([]), [], 'nothing missing, nothing to run');
  const missing: Requirement[] = [
    { pkg: 'xfsprogs', paths: ['/x'], why: 'a' },
    { pkg: 'busybox-static', paths: ['/y'], why: 'b' },
    { pkg: 'xfsprogs', paths: ['/z'], why: 'c' },
    { pkg: 'linux-headers-6.1.0-56-amd64', paths: ['/h'], why: 'd' },
  ];
  const plans = planInstall(missing);
  t.equal(plans.length, 2);
  t.same(plans[0]?.argv, ['apt-get', 'update', '-q'], 'update first, so the package lists know the packages');
  t.same(plans[1]?.argv, ['apt-get', 'install', '-y', '-q', '--no-install-recommends', 'busybox-static', 'linux-headers-6.1.0-56-amd64', 'xfsprogs'], 'sorted, unique packages');
  for (const p of plans) {
    t.same(p.env, { DEBIAN_FRONTEND: 'noninteractive' }, `${p.argv[1]}: no debconf prompts`);
    t.ok((p.timeoutMs ?? 0) >= 60_000, `${p.argv[1]}: bounded, with room for a slow mirror`);
  }
});

t.test('formatDoctor', async (t) => {
  const reqs = planRequirements({});
  const { present, missing } = checkRequirements(reqs, fakeExists(['/usr/bin/qemu-system-x86_64', '/bin/busybox']));
  const root = formatDoctor(present, missing, true);
  t.equal(root.length, reqs.length + 1, 'a line per requirement and a last line');
  t.match(root[0], /^ {2}ok {7}qemu-system-x86 +runs the kernel under test$/);
  t.ok(root.some((l) => /^ {2}MISSING {2}ndctl +creates fsdax namespaces/.test(l)));
  t.equal(root.filter((l) => l.startsWith('  ok')).length, 2);
  t.equal(root.filter((l) => l.startsWith('  MISSING')).length, reqs.length - 2);
  t.equal(root.at(-1), `will run: apt-get update -q && apt-get install -y -q --no-install-recommends ${missing.map((r) => r.pkg).sort().join(' ')}`);

  const user = formatDoctor(present, missing, false);
  t.match(user.at(-1), /^as root, run: apt-get update -q && apt-get install /, 'without install rights it says how to install');

  const done = formatDoctor(reqs, [], false);
  t.equal(done.at(-1), 'all prerequisites are present');
  t.notOk(done.some((l) => l.includes('MISSING')));
  // Names line up in a column whatever their length.
  const whyColumn = new Set(done.slice(0, -1).map((l, i) => l.indexOf(reqs[i]!.why)));
  t.equal(whyColumn.size, 1);
});

t.test('ensureRequirements: a missing package without root is an error naming it and the command', async (t) => {
  const reqs = planRequirements({ headersFor: '6.1.0-56-amd64' });
  const logs: string[] = [];
  const missingQemu = (p: string): boolean => !p.includes('qemu-system-x86_64') && !p.includes('linux-headers');
  const err = await ensureRequirements(reqs, true, (s) => logs.push(s), false, missingQemu).catch((e: unknown) => e);
  t.match(err, { name: 'HarnessError', kind: 'config', message: /missing Debian packages: qemu-system-x86 linux-headers-6\.1\.0-56-amd64/ });
  t.match((err as { hint: string }).hint, /sudo apt-get install --no-install-recommends qemu-system-x86 linux-headers-6\.1\.0-56-amd64/);
  t.same(logs, [], 'nothing was attempted');
  const refused = await ensureRequirements(reqs, false, () => undefined, true, missingQemu).catch((e: unknown) => e);
  t.match(refused, { kind: 'config', message: /missing Debian packages/ }, '--no-install refuses even as root');
  await t.resolves(ensureRequirements(reqs, false, () => undefined, false, () => true), 'nothing missing: nothing to do');
});
