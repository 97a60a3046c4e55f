import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadProfile } from '../../../src/config.js';
import { planKernelAppend, planQemu, type QemuPlanInput, type QemuProfile } from '../../../src/target/qemu/qemu-plan.js';

const repoDir = fileURLToPath(new URL('../../../../', import.meta.url));
const profileNames = Object.keys(JSON.parse(readFileSync(`${repoDir}/qemu/profiles.json`, 'utf8')) as object).filter((k) => !k.startsWith('_'));

function input(profile: QemuProfile, over: Partial<QemuPlanInput> = {}): QemuPlanInput {
  return {
    profile,
    accel: 'tcg',
    kernel: '/k/bzImage',
    initrd: '/r/initrd',
    sshPort: 10022,
    pmemFiles: profile.nvdimms.map((_, i) => `/r/pmem/pmem${i}.img`),
    ...over,
  };
}

/** The value following each occurrence of a flag. */
function values(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1] ?? '<missing>'] : []));
}

t.test('the profiles file has the three profiles the harness documents', async (t) => {
  t.same(profileNames.sort(), ['default', 'labels', 'legacy']);
});

for (const name of profileNames) {
  t.test(`profile ${name}`, async (t) => {
    const profile = loadProfile(repoDir, name);
    const { argv } = planQemu(input(profile));
    const n = profile.nvdimms.length;

    t.equal(argv[0], 'qemu-system-x86_64');
    t.equal(argv.at(-1), '-no-reboot', 'a panic (panic=-1) must make QEMU exit, not reboot');
    t.equal(values(argv, '-smp')[0], String(profile.cpus));

    for (const [i, a] of argv.entries()) {
      t.type(a, 'string', `argv[${i}] is a string`);
      if (a === '') t.fail(`argv[${i}] is empty`);
      if (a.includes('undefined')) t.fail(`argv[${i}] contains "undefined": ${a}`);
    }
    t.ok(argv.includes('virtio-net-pci,netdev=net0,romfile='), 'romfile= (empty on purpose) skips the option ROM');

    const machine = values(argv, '-machine')[0] ?? '';
    t.equal(machine.includes('nvdimm=on'), n > 0, 'nvdimm=on exactly when the profile has NVDIMMs');
    t.match(machine, /accel=tcg$/);

    const mem = values(argv, '-m');
    t.equal(mem.length, 1);
    if (n > 0) {
      const total = profile.nvdimms.reduce((s, nv) => s + nv.sizeMiB, 0);
      t.equal(mem[0], `${profile.memoryMiB}M,slots=${n + 1},maxmem=${profile.memoryMiB + total + 1024}M`);
      // maxmem must cover boot RAM plus every NVDIMM, and a slot must exist per NVDIMM.
      const m = /slots=(\d+),maxmem=(\d+)M/.exec(mem[0] ?? '');
      t.ok(m && Number(m[1]) >= n && Number(m[2]) >= profile.memoryMiB + total, 'slots and maxmem have room for the NVDIMMs');
    } else {
      t.equal(mem[0], `${profile.memoryMiB}M`);
    }

    const objects = values(argv, '-object');
    const devices = values(argv, '-device').filter((d) => d.startsWith('nvdimm,'));
    t.equal(objects.length, n, 'one memory backend per NVDIMM');
    t.equal(devices.length, n, 'one nvdimm device per NVDIMM');
    profile.nvdimms.forEach((nv, i) => {
      t.equal(objects[i], `memory-backend-file,id=pmem${i},share=on,mem-path=/r/pmem/pmem${i}.img,size=${nv.sizeMiB}M,align=16M`);
      // Every region must start on Linux's 16 MiB namespace alignment (which is also a
      // multiple of the 2 MiB PMD size): the sizes before it must keep that alignment.
      t.equal(nv.sizeMiB % 16, 0, `NVDIMM ${i} size is a multiple of 16 MiB`);
      const label = nv.labelKiB ? `,label-size=${nv.labelKiB}K` : '';
      t.equal(devices[i], `nvdimm,id=nvdimm${i},memdev=pmem${i}${label}`);
    });
    t.equal(
      devices.filter((d) => d.includes('label-size=')).length,
      profile.nvdimms.filter((nv) => nv.labelKiB).length,
      'label-size only on labelled NVDIMMs',
    );

    const netdev = values(argv, '-netdev');
    t.same(netdev, ['user,id=net0,hostfwd=tcp:127.0.0.1:10022-:22'], 'ssh is forwarded on loopback only');
    t.notOk(argv.some((a) => /hostfwd=tcp::|hostfwd=tcp:0\.0\.0\.0/.test(a)), 'no wildcard host address');

    t.same(values(argv, '-kernel'), ['/k/bzImage']);
    t.same(values(argv, '-initrd'), ['/r/initrd']);
    const append = values(argv, '-append');
    t.equal(append.length, 1);
    t.equal(append[0], planKernelAppend(profile), '-append is exactly planKernelAppend');
  });

  t.test(`kernel command line of ${name}`, async (t) => {
    const profile = loadProfile(repoDir, name);
    const words = planKernelAppend(profile).split(' ');
    for (const w of ['console=ttyS0,115200', 'panic=-1', 'printk.devkmsg=on', 'random.trust_cpu=on', 'rdinit=/init']) {
      t.ok(words.includes(w), `has ${w}`);
    }
    t.notOk(words.includes('oops=panic'), 'an Oops must fail one test, not the run');
    const memmap = words.filter((w) => w.startsWith('memmap='));
    t.same(
      memmap,
      (profile.legacyPmem ?? []).map((r) => `memmap=${r.sizeMiB}M!${r.offsetMiB}M`),
      'one memmap=SIZE!OFFSET per legacy range, none otherwise',
    );
  });
}

t.test('legacy profile: e820 pmem from memmap=, no NVDIMM at all', async (t) => {
  const profile = loadProfile(repoDir, 'legacy');
  const { argv } = planQemu(input(profile));
  const append = values(argv, '-append')[0] ?? '';
  t.match(append, / memmap=1024M!4096M memmap=1024M!5120M/);
  t.notOk(argv.some((a) => a.startsWith('nvdimm') || a.startsWith('memory-backend-file')));
  // The ranges must be RAM the guest has: with more than 3.5 GiB, QEMU's pc machine keeps
  // 3 GiB below the 4 GiB hole and maps the rest from 4 GiB up.
  const highRamEndMiB = 4096 + (profile.memoryMiB - 3072);
  for (const r of profile.legacyPmem ?? []) t.ok(r.offsetMiB >= 4096 && r.offsetMiB + r.sizeMiB <= highRamEndMiB, `range at ${r.offsetMiB}M lies in high RAM`);
});

t.test('extra append words come after the harness words', async (t) => {
  const profile = loadProfile(repoDir, 'legacy');
  const words = planKernelAppend(profile, ['loglevel=8', 'dyndbg=+p']).split(' ');
  t.same(words.slice(-2), ['loglevel=8', 'dyndbg=+p']);
  t.ok(words.indexOf('memmap=1024M!5120M') < words.indexOf('loglevel=8'));
  const { argv } = planQemu(input(profile, { extraAppend: ['quiet'] }));
  t.match(values(argv, '-append')[0], / quiet$/);
});

t.test('accelerator and binary', async (t) => {
  const profile = loadProfile(repoDir, 'default');
  const kvm = planQemu(input(profile, { accel: 'kvm', qemuBinary: '/opt/qemu/bin/qemu-system-x86_64' })).argv;
  t.equal(kvm[0], '/opt/qemu/bin/qemu-system-x86_64');
  t.equal(values(kvm, '-machine')[0], 'pc,nvdimm=on,accel=kvm');
  t.same(values(kvm, '-cpu'), ['host']);
  const tcg = planQemu(input(profile)).argv;
  t.same(values(tcg, '-cpu'), ['qemu64']);
});

t.test('wrong number of pmem backing files is refused', async (t) => {
  const profile = loadProfile(repoDir, 'default');
  t.throws(() => planQemu(input(profile, { pmemFiles: ['/only/one'] })), /has 2 NVDIMMs but 1 backing files/);
  t.throws(() => planQemu(input(profile, { pmemFiles: ['/a', '/b', '/c'] })), /has 2 NVDIMMs but 3 backing files/);
  const legacy = loadProfile(repoDir, 'legacy');
  t.throws(() => planQemu(input(legacy, { pmemFiles: ['/a'] })), /has 0 NVDIMMs but 1/);
});

t.test('bad ssh ports are refused', async (t) => {
  const profile = loadProfile(repoDir, 'default');
  for (const port of [0, -1, 65536, 22.5, Number.NaN]) {
    t.throws(() => planQemu(input(profile, { sshPort: port })), /bad ssh port/, `port ${port}`);
  }
  t.doesNotThrow(() => planQemu(input(profile, { sshPort: 1 })));
  t.doesNotThrow(() => planQemu(input(profile, { sshPort: 65535 })));
});
