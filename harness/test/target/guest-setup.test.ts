import t from 'tap';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadProfile } from '../../src/config.js';
import { HarnessError } from '../../src/core/errors.js';
import { checkOwnDevice, parseMountOptions, parseNdctlNamespace, parseStatxAttributes, planFsSetup } from '../../src/target/guest-setup.js';
import { runCommand } from '../../src/core/proc.js';

const repoDir = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = (p: string): string => readFileSync(new URL(`../fixtures/${p}`, import.meta.url), 'utf8');
const STATX_ATTR_DAX = 0x200000;

t.test('planFsSetup: default profile (label-less NVDIMMs)', async (t) => {
  const plans = planFsSetup(loadProfile(repoDir, 'default'), ['ext4', 'xfs']);
  t.equal(plans.length, 2);
  const [ext4, xfs] = plans;
  t.equal(ext4?.fs, 'ext4');
  t.equal(ext4?.mountpoint, '/mnt/ext4');
  t.equal(ext4?.device, null, 'the device is known only once ndctl reports it');
  t.same(ext4?.namespace.map((c) => c.argv), [['ndctl', 'create-namespace', '-f', '-e', 'namespace0.0', '-m', 'fsdax', '-M', 'dev']], 'reconfigure the raw label-less namespace, memmap in the device');
  t.same(xfs?.namespace.map((c) => c.argv), [['ndctl', 'create-namespace', '-f', '-e', 'namespace1.0', '-m', 'fsdax', '-M', 'mem']], 'second NVDIMM: memmap in RAM');
  t.same(ext4?.mkfs('/dev/pmem0').argv, ['mkfs.ext4', '-F', '-q', '-b', '4096', '/dev/pmem0'], 'ext4 with 4 KiB blocks (DAX needs block size = page size)');
  t.same(xfs?.mkfs('/dev/pmem1').argv, ['mkfs.xfs', '-f', '-q', '-d', 'su=2m,sw=1', '-m', 'reflink=1', '/dev/pmem1'], 'xfs with 2 MiB stripe unit for PMD faults, reflink asked for');
  t.same(ext4?.mount('/dev/pmem0').argv, ['sh', '-c', 'mkdir -p "$2" && mount -t "$3" -o dax=always "$1" "$2"', 'mount', '/dev/pmem0', '/mnt/ext4', 'ext4']);
  for (const p of plans) {
    for (const c of [...p.namespace, p.mkfs('/dev/x'), p.mount('/dev/x')]) t.ok(c.timeoutMs > 0 && c.timeoutMs <= 120_000, `${c.argv[0]} is time-bounded`);
  }
});

t.test('planFsSetup: labels profile', async (t) => {
  const plans = planFsSetup(loadProfile(repoDir, 'labels'), ['ext4', 'xfs']);
  t.same(plans[0]?.namespace.map((c) => c.argv), [
    ['ndctl', 'disable-region', 'region0'],
    ['ndctl', 'init-labels', '-f', 'nmem0'],
    ['ndctl', 'enable-region', 'region0'],
    ['ndctl', 'create-namespace', '-r', 'region0', '-m', 'fsdax', '-M', 'dev', '-s', '1008M'],
  ], 'labels are initialised with the region disabled, then a namespace is made in the region');
  // The label area takes space from the 1 GiB region: the size must fit and stay 16 MiB-aligned.
  const size = Number(/^(\d+)M$/.exec(plans[0]?.namespace.at(-1)?.argv.at(-1) ?? '')?.[1]);
  t.ok(size < 1024 && size % 16 === 0, `namespace size ${size} MiB fits the region and is 16 MiB-aligned`);
  t.same(plans[1]?.namespace.map((c) => c.argv.join(' ')), [
    'ndctl disable-region region1',
    'ndctl init-labels -f nmem1',
    'ndctl enable-region region1',
    'ndctl create-namespace -r region1 -m fsdax -M mem -s 1008M',
  ]);
  t.same(plans.map((p) => p.device), [null, null]);
});

t.test('planFsSetup: legacy profile (memmap= e820 pmem)', async (t) => {
  const plans = planFsSetup(loadProfile(repoDir, 'legacy'), ['ext4', 'xfs']);
  t.same(plans.map((p) => p.namespace), [[], []], 'no ndctl: e820 pmem is fsdax-capable as it comes');
  t.same(plans.map((p) => p.device), ['/dev/pmem0', '/dev/pmem1']);
  t.same(plans[1]?.mkfs(plans[1].device ?? '').argv.at(-1), '/dev/pmem1');
});

t.test('planFsSetup: filesystem order and count', async (t) => {
  const only = planFsSetup(loadProfile(repoDir, 'default'), ['xfs']);
  t.equal(only.length, 1);
  t.same(only[0]?.namespace[0]?.argv.slice(4), ['namespace0.0', '-m', 'fsdax', '-M', 'dev'], 'the first filesystem always gets the first NVDIMM');
  t.equal(only[0]?.mkfs('/dev/pmem0').argv[0], 'mkfs.xfs');
  t.same(planFsSetup(loadProfile(repoDir, 'default'), []), []);

  const tooMany = t.throws(() => planFsSetup(loadProfile(repoDir, 'default'), ['ext4', 'xfs', 'ext4'])) as HarnessError;
  t.type(tooMany, HarnessError);
  t.equal(tooMany.kind, 'config');
  t.match(tooMany.message, /profile default has 2 pmem devices but 3 filesystems/);
  t.match(tooMany.hint, /--fs/);
  const legacy = { ...loadProfile(repoDir, 'legacy'), legacyPmem: [{ sizeMiB: 1024, offsetMiB: 4096 }] };
  t.throws(() => planFsSetup(legacy, ['ext4', 'xfs']), { message: /has 1 pmem devices but 2/ });
});

t.test('the mount command passes device, mountpoint and type in the right places', async (t) => {
  // mkdir and mount are stand-ins (they cannot act on a guest pmem device here): each
  // records its argv, so the shell's positional parameters are checked for real.
  const dir = mkdtempSync(join(tmpdir(), 'guest-setup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const prog of ['mkdir', 'mount']) {
    writeFileSync(join(dir, prog), `#!/bin/sh\nprintf '${prog}' >> "$LOG"; printf ' [%s]' "$@" >> "$LOG"; echo >> "$LOG"\n`);
    chmodSync(join(dir, prog), 0o755);
  }
  const log = join(dir, 'log');
  const plan = planFsSetup(loadProfile(repoDir, 'default'), ['ext4', 'xfs'])[1]!;
  const cmd = plan.mount('/dev/pmem1');
  const r = await runCommand({ argv: cmd.argv, env: { PATH: `${dir}:/usr/bin:/bin`, LOG: log }, timeoutMs: 5000 });
  t.equal(r.exitCode, 0, r.stderr);
  t.equal(readFileSync(log, 'utf8'), 'mkdir [-p] [/mnt/xfs]\nmount [-t] [xfs] [-o] [dax=always] [/dev/pmem1] [/mnt/xfs]\n');
});

t.test('parseNdctlNamespace', async (t) => {
  const dev = parseNdctlNamespace(fixture('ndctl/create-namespace-labelless-map-dev.json'));
  t.same(dev, { dev: 'namespace0.0', mode: 'fsdax', map: 'dev', size: 1054867456, uuid: '8ee6159e-91c9-4ebc-b0d8-f6ebc9d51b7e', sector_size: 512, align: 2097152, blockdev: 'pmem0' });
  t.equal(parseNdctlNamespace(fixture('ndctl/create-namespace-labelless-map-mem.json')).blockdev, 'pmem1');
  const human = parseNdctlNamespace(fixture('ndctl/create-namespace-tty-human.json'));
  t.equal(human.size, '1006.00 MiB (1054.87 MB)', 'human sizes (ndctl on a tty) are kept as text');
  t.equal(human.blockdev, 'pmem0');

  // Text around the object (a warning line, a trailing newline) does not matter.
  t.equal(parseNdctlNamespace(`  Warning: something\n${fixture('ndctl/create-namespace-labelless-map-mem.json')}\n`).dev, 'namespace1.0');

  t.throws(() => parseNdctlNamespace('{\n  "dev":"namespace0.0",\n  "mode":"raw",\n  "size":1073741824,\n  "sector_size":512\n}\n'), /no blockdev/, 'a namespace without a block device');
  t.throws(() => parseNdctlNamespace('{"dev":"namespace0.0","blockdev":7}'), /no blockdev/, 'blockdev must be a name');
  t.throws(() => parseNdctlNamespace('failed to create namespace: Device or resource busy\n'), /ndctl printed no JSON: failed to create/);
  t.throws(() => parseNdctlNamespace(''), /printed no JSON/);
  t.throws(() => parseNdctlNamespace('{"dev":"namespace0.0",'), /printed no JSON/);
  t.throws(() => parseNdctlNamespace('{"dev": namespace0.0}'), SyntaxError, 'malformed JSON is not ignored');
});

t.test('parseStatxAttributes', async (t) => {
  // Real output of the xfs_io the guest image carries (xfsprogs 6.1) on a non-DAX file.
  const plain = fixture('xfs_io/statx-r-ext4-plain.txt');
  t.match(plain, /^stat\.attributes_mask = 0x303874$/m, 'the fixture also has attributes_mask');
  t.equal(parseStatxAttributes(plain), 0, 'stat.attributes, not stat.attributes_mask');
  const dax = parseStatxAttributes(fixture('xfs_io/statx-r-dax-derived.txt'));
  t.equal(dax, STATX_ATTR_DAX);
  t.ok(dax !== null && (dax & STATX_ATTR_DAX) !== 0);
  t.equal(parseStatxAttributes('stat.attributes = 0x200020\n'), 0x200020, 'several bits');
  t.equal(parseStatxAttributes('statx: Function not implemented\n'), null);
  t.equal(parseStatxAttributes(''), null);
  t.equal(parseStatxAttributes('stat.attributes_mask = 0x200000\n'), null, 'the mask alone is not the attributes');
});

t.test('parseStatxAttributes on live xfs_io output', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'statx-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'f');
  writeFileSync(file, 'x');
  const r = await runCommand({ argv: ['xfs_io', '-c', 'statx -r', file], timeoutMs: 5000 });
  t.equal(r.exitCode, 0, r.stderr);
  const attrs = parseStatxAttributes(r.stdout);
  t.type(attrs, 'number', 'this host prints stat.attributes too');
  t.equal((attrs ?? 0) & STATX_ATTR_DAX, 0, 'a file in a temp dir is not DAX');
});

t.test('parseMountOptions', async (t) => {
  const guest = fixture('mounts/guest-dax-constructed.txt');
  t.equal(parseMountOptions(guest, '/mnt/ext4'), 'rw,relatime,dax=always');
  t.match(parseMountOptions(guest, '/mnt/xfs'), /(^|,)dax=always(,|$)/);
  t.equal(parseMountOptions(guest, '/mnt'), null, 'a prefix of a mountpoint is not the mountpoint');
  t.equal(parseMountOptions(guest, '/dev/pmem0'), null, 'the device column is not the mountpoint');

  const host = fixture('mounts/host-proc-mounts.txt');
  t.equal(parseMountOptions(host, '/'), 'rw,relatime,discard,resv_strict,resuid=65534,resgid=65534');
  t.equal(parseMountOptions(host, '/proc'), 'rw,relatime');
  t.equal(parseMountOptions(host, '/sys/fs/cgroup/cpuacct'), 'rw,relatime,cpuacct');
  t.equal(parseMountOptions(host, '/dev/pts'), 'rw,relatime,mode=600,ptmxmode=000', 'a mountpoint listed twice');
  t.equal(parseMountOptions('', '/'), null);

  const live = parseMountOptions(readFileSync('/proc/mounts', 'utf8'), '/proc');
  t.match(live, /^r[wo](,|$)/, 'live /proc/mounts: options start with rw or ro');
});

t.test('parseMountOptions takes the last of stacked mounts', async (t) => {
  const text = '/dev/pmem0 /mnt/ext4 ext4 rw,relatime 0 0\n/dev/pmem1 /mnt/ext4 ext4 rw,relatime,dax=always 0 0\n';
  t.equal(parseMountOptions(text, '/mnt/ext4'), 'rw,relatime,dax=always');
});

t.test('checkOwnDevice lets only harness-made pmem devices be formatted', async (t) => {
  for (const ok of ['/dev/pmem0', '/dev/pmem12', '/dev/pmem1.1']) t.doesNotThrow(() => checkOwnDevice(ok, 'ext4'), ok);
  for (const bad of ['/dev/sda', '/dev/nvme0n1', '/dev/pmem0p1', '/dev/pmem0/../sda', 'pmem0', '/dev/nullb0', '']) {
    t.throws(() => checkOwnDevice(bad, 'xfs'), { name: 'HarnessError', kind: 'guest', message: /refusing to format/ }, `refuses ${bad || '(empty)'}`);
  }
});
