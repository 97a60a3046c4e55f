import t from 'tap';
import { readFileSync } from 'node:fs';
import { formatCpio, type CpioEntry } from '../../../src/target/qemu/cpio.js';
import { formatKeyOverlay, hashEntries, parseLdd, parseShowDepends } from '../../../src/target/qemu/image.js';

const fixture = (p: string): string => readFileSync(new URL(`../../fixtures/${p}`, import.meta.url), 'utf8');
const MODROOT = '/root/.cache/dax-harness/kernels/debian-6.1.0-56-amd64/lib/modules/6.1.0-56-amd64/kernel';

t.test('parseShowDepends on real modprobe output (Debian 6.1 modules)', async (t) => {
  // nd_pmem: ndctl's modprobe.d "install libnvdimm ..." rule shows up as an install line
  // even with --ignore-install; it names no .ko and must be skipped.
  const ndPmem = fixture('modprobe/show-depends-nd_pmem-6.1.txt');
  t.match(ndPmem, /^install \/usr\/bin\/ndctl load-keys/m, 'the fixture has the install line');
  t.same(parseShowDepends(ndPmem), [`${MODROOT}/drivers/nvdimm/nd_btt.ko`, `${MODROOT}/drivers/nvdimm/nd_pmem.ko`]);

  t.same(
    parseShowDepends(fixture('modprobe/show-depends-ext4-6.1.txt')),
    ['arch/x86/crypto/crc32c-intel.ko', 'crypto/crc32c_generic.ko', 'fs/jbd2/jbd2.ko', 'fs/mbcache.ko', 'lib/crc16.ko', 'fs/ext4/ext4.ko'].map((p) => `${MODROOT}/${p}`),
    'dependencies first, in modprobe order',
  );

  // Parameters follow the path on the insmod line; only the path is taken.
  t.same(parseShowDepends(fixture('modprobe/show-depends-null_blk-params-6.1.txt')), [
    `${MODROOT}/fs/configfs/configfs.ko`,
    `${MODROOT}/drivers/block/null_blk/null_blk.ko`,
  ]);

  // A built-in module prints "builtin NAME": nothing to load.
  const builtin = fixture('modprobe/show-depends-unix-builtin-6.1.txt');
  t.equal(builtin.trim(), 'builtin unix');
  t.same(parseShowDepends(builtin), []);
});

t.test('parseShowDepends: compressed modules and noise', async (t) => {
  const text = [
    'install /usr/bin/ndctl load-keys ; /sbin/modprobe --ignore-install libnvdimm $CMDLINE_OPTS ',
    'insmod /lib/modules/6.12.0/kernel/drivers/nvdimm/libnvdimm.ko.xz ',
    'insmod /lib/modules/6.12.0/kernel/fs/xfs/xfs.ko.zst ',
    'modprobe: FATAL: Module nope not found in directory /lib/modules/6.12.0',
    '',
  ].join('\n');
  t.same(parseShowDepends(text), ['/lib/modules/6.12.0/kernel/drivers/nvdimm/libnvdimm.ko.xz', '/lib/modules/6.12.0/kernel/fs/xfs/xfs.ko.zst']);
  t.same(parseShowDepends(''), []);
});

t.test('parseLdd on real ldd output', async (t) => {
  const ndctl = parseLdd(fixture('ldd/ndctl.txt'));
  t.ok(ndctl.includes('/lib/x86_64-linux-gnu/libndctl.so.6'), '"=>" form gives the resolved path');
  t.ok(ndctl.includes('/lib/x86_64-linux-gnu/libc.so.6'));
  t.ok(ndctl.includes('/lib64/ld-linux-x86-64.so.2'), 'the bare loader line is kept (the guest needs the loader)');
  t.notOk(ndctl.some((p) => p.includes('vdso')), 'linux-vdso.so.1 has no file and is skipped');
  t.ok(ndctl.every((p) => p.startsWith('/')), 'only absolute paths');
  t.notOk(ndctl.some((p) => p.includes('(') || p.includes('=>')), 'no addresses or arrows leak into paths');
  const fixtureLines = fixture('ldd/ndctl.txt').trim().split('\n').length;
  t.equal(ndctl.length, fixtureLines - 1, 'every line but the vdso gives a path');

  const xfsIo = parseLdd(fixture('ldd/xfs_io.txt'));
  t.ok(xfsIo.includes('/lib/x86_64-linux-gnu/libdevmapper.so.1.02.1'), 'versions with several dots');
  t.equal(xfsIo.length, fixture('ldd/xfs_io.txt').trim().split('\n').length - 1);

  t.same(parseLdd(fixture('ldd/busybox-static.txt')), [], 'a static binary has no libraries');
});

t.test('hashEntries: stable and sensitive to order, content and mode', async (t) => {
  const base: CpioEntry[] = [
    { kind: 'dir', path: '/etc', mode: 0o755 },
    { kind: 'file', path: '/etc/passwd', mode: 0o644, data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n') },
    { kind: 'symlink', path: '/bin/sh', target: '/bin/busybox' },
  ];
  const h = hashEntries(base);
  t.match(h, /^[0-9a-f]{16}$/);
  t.equal(hashEntries(structuredClone(base)), h, 'equal input, equal hash (not identity based)');
  t.not(hashEntries([base[1]!, base[0]!, base[2]!]), h, 'order matters');
  t.not(hashEntries([base[0]!, { ...(base[1] as Extract<CpioEntry, { kind: 'file' }>), data: Buffer.from('root:x:0:0:root:/root:/bin/ash\n') }, base[2]!]), h, 'file content matters');
  t.not(hashEntries([base[0]!, { ...(base[1] as Extract<CpioEntry, { kind: 'file' }>), mode: 0o600 }, base[2]!]), h, 'file mode matters');
  t.not(hashEntries([{ kind: 'dir', path: '/etc', mode: 0o700 }, base[1]!, base[2]!]), h, 'dir mode matters');
  t.not(hashEntries([base[0]!, base[1]!, { kind: 'symlink', path: '/bin/sh', target: '/bin/bash' }]), h, 'symlink target matters');
  t.not(hashEntries([base[0]!, { ...(base[1] as Extract<CpioEntry, { kind: 'file' }>), path: '/etc/group' }, base[2]!]), h, 'path matters');
  t.not(hashEntries(base.slice(0, 2)), h, 'a missing entry matters');
  // The separators keep "ab"+"c" from hashing like "a"+"bc".
  t.not(
    hashEntries([{ kind: 'symlink', path: '/ab', target: 'c' }]),
    hashEntries([{ kind: 'symlink', path: '/a', target: 'bc' }]),
  );
});

// Minimal newc reader: name, mode and data of each entry.
function entriesOf(buf: Buffer): { name: string; mode: number; data: Buffer }[] {
  const out: { name: string; mode: number; data: Buffer }[] = [];
  let off = 0;
  while (off < buf.length) {
    const f = (i: number): number => Number.parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const namesize = f(11);
    const size = f(6);
    const name = buf.toString('utf8', off + 110, off + 110 + namesize - 1);
    const dataOff = Math.ceil((off + 110 + namesize) / 4) * 4;
    if (name === 'TRAILER!!!') break;
    out.push({ name, mode: f(1), data: buf.subarray(dataOff, dataOff + size) });
    off = Math.ceil((dataOff + size) / 4) * 4;
  }
  return out;
}

t.test('formatKeyOverlay: the per-run keys with private modes', async (t) => {
  const hostKey = Buffer.from([0, 0, 0, 11, ...Buffer.from('ssh-ed25519'), 1, 2, 3]);
  const authorized = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM+41iXnibpeb7gekv3ogoojBBZk7I4Wub3jDvWT/vwy dax-harness';
  const buf = formatKeyOverlay(hostKey, `  ${authorized}\n\n`);
  const es = entriesOf(buf);
  t.same(
    es.map((e) => [e.name, e.mode.toString(8)]),
    [
      ['etc/dropbear', '40755'],
      ['etc/dropbear/dropbear_ed25519_host_key', '100600'],
      ['root', '40700'],
      ['root/.ssh', '40700'],
      ['root/.ssh/authorized_keys', '100600'],
    ],
    'paths dropbear reads, secret files 0600, /root and ~/.ssh 0700',
  );
  t.ok(es[1]?.data.equals(hostKey), 'host key stored byte-exact');
  t.equal(es[4]?.data.toString(), `${authorized}\n`, 'authorized_keys is the trimmed key line plus newline');
  t.ok(buf.equals(formatCpio([
    { kind: 'dir', path: '/etc/dropbear', mode: 0o755 },
    { kind: 'file', path: '/etc/dropbear/dropbear_ed25519_host_key', mode: 0o600, data: hostKey },
    { kind: 'dir', path: '/root', mode: 0o700 },
    { kind: 'dir', path: '/root/.ssh', mode: 0o700 },
    { kind: 'file', path: '/root/.ssh/authorized_keys', mode: 0o600, data: Buffer.from(`${authorized}\n`) },
  ])), 'a complete archive (with trailer) the kernel can append to the base image');
});
