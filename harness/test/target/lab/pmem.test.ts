// The persistent-memory decision: only the inventory's namespaces, only when dedicated.
import t from 'tap';
import { checkPmemDecision, decidePmem, mountsOf, parseBlkid, parseNdctlList, planLabFsSetup, type DeviceUse } from '../../../src/target/lab/pmem.js';
import { HarnessError } from '../../../src/core/errors.js';

// As ndctl 76 prints `ndctl list -N` on the lab rig (labelled NVDIMMs).
const NDCTL = JSON.stringify([
  { dev: 'namespace1.0', mode: 'fsdax', map: 'dev', size: 264241152, uuid: '5a1b0c1e-0000-4000-8000-000000000001', sector_size: 512, align: 2097152, blockdev: 'pmem1', name: 'precious' },
  { dev: 'namespace0.1', mode: 'fsdax', map: 'dev', size: 515899392, uuid: '5a1b0c1e-0000-4000-8000-000000000002', sector_size: 512, align: 2097152, blockdev: 'pmem0.1', name: 'daxh1' },
  { dev: 'namespace0.0', mode: 'fsdax', map: 'dev', size: 515899392, uuid: '5a1b0c1e-0000-4000-8000-000000000003', sector_size: 512, align: 2097152, blockdev: 'pmem0', name: 'daxh0' },
]);
const MOUNTS = '/dev/vda / ext4 rw,relatime 0 0\n/dev/pmem1 /srv/precious ext4 rw,relatime 0 0\n';
const blank: DeviceUse = { fstype: null, label: null, mounts: [] };

t.test('parsers', async (t) => {
  t.equal(parseNdctlList(NDCTL).length, 3);
  t.same(parseNdctlList('{"dev":"namespace0.0","mode":"raw"}').map((n) => n.dev), ['namespace0.0'], 'one namespace is printed as an object');
  t.same(parseNdctlList(''), []);
  t.same(parseBlkid('DEVNAME=/dev/pmem1\nUUID=x\nTYPE=ext4\nLABEL=precious\n'), { fstype: 'ext4', label: 'precious' });
  t.same(parseBlkid(''), { fstype: null, label: null });
  t.same(mountsOf(MOUNTS, 'pmem1'), ['/srv/precious']);
  t.same(mountsOf(MOUNTS, 'pmem0'), [], 'pmem0 is not pmem0.1 or pmem1');
});

t.test('the inventory\'s dedicated namespaces are assigned in --fs order, by name or uuid', async (t) => {
  const all = parseNdctlList(NDCTL);
  const d = decidePmem(['daxh0', '5a1b0c1e-0000-4000-8000-000000000002'], ['ext4', 'xfs'], all, () => blank);
  t.same(d.refused, []);
  t.same(d.assigned.map((a) => [a.fs, a.ns.dev]), [['ext4', 'namespace0.0'], ['xfs', 'namespace0.1']]);
  const plans = planLabFsSetup(d);
  t.same(plans[0]!.namespace[0]!.argv, ['ndctl', 'create-namespace', '-f', '-e', 'namespace0.0', '-m', 'fsdax', '-M', 'dev', '-n', 'daxh0']);
  t.same(plans[1]!.mkfs('/dev/pmem0.1').argv.slice(-3), ['-L', 'daxh-xfs', '/dev/pmem0.1'], 'the harness labels what it makes');
  t.equal(plans[0]!.mountpoint, '/var/lib/dax-harness/mnt/ext4');
  const again = decidePmem(['daxh0', 'daxh1'], ['ext4', 'xfs'], all, (dev) => (dev === 'pmem0' ? { fstype: 'ext4', label: 'daxh-ext4', mounts: [] } : blank));
  t.same(again.refused, [], 'a filesystem the harness made may be remade');
});

t.test('a namespace that is not dedicated stops the run before any change', async (t) => {
  const all = parseNdctlList(NDCTL);
  const use = (dev: string): DeviceUse => (dev === 'pmem1' ? { fstype: 'ext4', label: 'precious', mounts: mountsOf(MOUNTS, 'pmem1') } : blank);
  const d = decidePmem(['daxh0', 'daxh1', 'precious'], ['ext4', 'xfs'], all, use);
  t.same(d.assigned, [], 'nothing is assigned when one allowed namespace is refused');
  t.match(d.refused[0], /^precious \(\/dev\/pmem1\): mounted on \/srv\/precious/);
  const unmounted = decidePmem(['precious'], ['ext4'], all, (dev) => (dev === 'pmem1' ? { fstype: 'ext4', label: 'precious', mounts: [] } : blank));
  t.match(unmounted.refused[0], /holds a ext4 filesystem labelled "precious" that the harness did not make/);
  t.match(decidePmem(['nosuch'], ['ext4'], all, () => blank).refused[0], /nosuch: no such namespace \(ndctl list -N has precious, daxh1, daxh0\)/);
  t.match(decidePmem(['daxh0'], ['ext4', 'xfs'], all, () => blank).refused[0], /needs 2 namespaces .* allows 1/);
  t.match(decidePmem(['daxh0'], ['ext4'], [{ dev: 'namespace0.0', mode: 'devdax', name: 'daxh0', chardev: 'dax0.0' }], () => blank).refused[0], /mode devdax/);
  const err = (() => {
    try {
      checkPmemDecision('daxlab', d);
    } catch (e) {
      return e;
    }
  })();
  t.type(err, HarnessError);
  t.match((err as HarnessError).message, /refusing to touch its persistent memory: .*nothing was changed/);
});
