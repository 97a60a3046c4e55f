// The inventory: strict per-field errors, edits that keep the rest of the file, quarantine.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findMachine, parseInventory, planHealthAfterRun, readInventory, updateMachine } from '../../../src/target/lab/inventory.js';

const dir = mkdtempSync(join(tmpdir(), 'dax-inv-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const FP = `SHA256:${'A'.repeat(43)}`;
const good = { host: 'pmem1.lab', user: 'ci', identity: '/home/ci/.ssh/id_ed25519', hostKeys: [FP], console: ['ipmitool', 'sol', 'activate'], power: { cycle: ['ipmitool', 'chassis', 'power', 'cycle'] }, namespaces: ['daxh0', 'daxh1'] };
const inv = (m: Record<string, unknown>) => JSON.stringify({ machines: { pmem1: m } });

t.test('a machine with defaults applied', async (t) => {
  const m = parseInventory('/x.json', inv(good)).machines[0]!;
  t.equal(m.port, 22);
  t.equal(m.privilege, 'sudo', 'a non-root user is sudo');
  t.equal(m.boot, 'kexec');
  t.equal(m.timeouts.upS, 300);
  t.same(m.power.on, null);
  t.equal(m.maxFailures, 3);
});

t.test('each bad field is named, with what it should be', async (t) => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ ...good, port: 0 }, /machine "pmem1": port must be a TCP port/],
    [{ ...good, hostKeys: ['MD5:aa'] }, /hostKeys must be a list of SHA256 fingerprints/],
    [{ ...good, console: 'ipmitool sol activate' }, /console must be a command as a list of words/],
    [{ ...good, power: { reset: ['x'] } }, /power\.reset is not a power command/],
    [{ ...good, boot: 'pxe' }, /boot must be "kexec", "grub-reboot" or "none"/],
    [{ ...good, timeouts: { upS: -1 } }, /timeouts\.upS must be a number of seconds/],
    [{ ...good, timeouts: { bootS: 1 } }, /timeouts\.bootS is not a phase/],
    [{ ...good, identity: 'id_rsa' }, /identity must be the absolute path/],
    [{ ...good, privilege: 'root' }, /privilege is "root" but user is not root/],
    [{ ...good, colour: 'red' }, /colour is not a field of a machine/],
    [{ ...good, namespaces: ['a b'] }, /namespaces must be a list/],
  ];
  for (const [m, re] of bad) t.throws(() => parseInventory('/x.json', inv(m)), re);
  t.throws(() => parseInventory('/x.json', '{"machines": [}'), /not valid JSON/);
  t.throws(() => parseInventory('/x.json', '{}'), /has no "machines" object/);
  t.throws(() => findMachine(parseInventory('/x.json', inv(good)), 'pmem2'), /no lab machine "pmem2" .*/);
});

t.test('updates keep the other machines and fields a human wrote', async (t) => {
  const path = join(dir, 'lab.json');
  writeFileSync(path, JSON.stringify({ note: 'kept', machines: { pmem1: good, other: { ...good, host: 'other.lab' } } }, null, 1));
  updateMachine(path, 'pmem1', (m) => ({ ...m!, hostKeys: [...m!.hostKeys, `SHA256:${'B'.repeat(43)}`] }));
  const raw = JSON.parse(readFileSync(path, 'utf8'));
  t.equal(raw.note, 'kept');
  t.equal(raw.machines.other.host, 'other.lab');
  t.equal(readInventory(path).machines.find((m) => m.name === 'pmem1')!.hostKeys.length, 2);
});

t.test('quarantine: N infrastructure failures in a row mark a machine unhealthy; a clean run resets the count', async (t) => {
  let m = parseInventory('/x.json', inv({ ...good, maxFailures: 2 })).machines[0]!;
  m = { ...m, health: planHealthAfterRun(m, true, 't1') };
  t.same(m.health, { failures: 1, unhealthy: null });
  m = { ...m, health: planHealthAfterRun(m, true, 't2') };
  t.match(m.health.unhealthy, /2 infrastructure failures in a row \(last t2\)/);
  t.equal(planHealthAfterRun({ ...m, health: { failures: 1, unhealthy: null } }, false, 't3').failures, 0);
});
