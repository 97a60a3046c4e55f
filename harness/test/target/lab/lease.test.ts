// The lease scripts run for real with sh on this host (a directory stands for the machine's
// /var/lib/dax-harness): atomic take, refusal naming the holder, takeover of a lapsed lease only,
// heartbeat, release.
import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideTakeover, parseLeaseState, planAcquire, planHeartbeat, planRelease, planTakeover, type LeaseHolder } from '../../../src/target/lab/lease.js';
import type { GuestCommand } from '../../../src/target/ssh-target.js';

const root = mkdtempSync(join(tmpdir(), 'dax-lease-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const sh = async (c: GuestCommand) => await execa(c.argv[0]!, c.argv.slice(1), { reject: false, timeout: c.timeoutMs });
const holder = (runId: string, over: Partial<LeaseHolder> = {}): LeaseHolder => ({ runId, host: 'h1', pid: 1234, user: 'ci', started: '2026-12-04T00:00:00Z', ttlS: 120, ...over });

t.test('the first run takes the lease; a second is told who holds it', async (t) => {
  const dir = join(root, 'a');
  const a = await sh(planAcquire(holder('run-a'), dir));
  t.equal(parseLeaseState(a.stdout).kind, 'acquired');
  const b = parseLeaseState((await sh(planAcquire(holder('run-b'), dir))).stdout);
  t.equal(b.kind, 'held');
  if (b.kind !== 'held') return;
  t.equal(b.holder?.runId, 'run-a', 'the holder is read back');
  const d = decideTakeover(b, { host: 'h2', alive: () => false });
  t.equal(d.takeOver, false, 'a fresh heartbeat is never taken over');
  t.match(d.why, /held by run run-a of ci@h1 \(pid 1234/);
});

t.test('racing runs: exactly one wins', async (t) => {
  const dir = join(root, 'race');
  const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => sh(planAcquire(holder(`r${i}`), dir))));
  t.equal(rs.filter((r) => parseLeaseState(r.stdout).kind === 'acquired').length, 1);
});

t.test('a lapsed lease of a gone holder is taken over; a live local holder keeps it', async (t) => {
  const dir = join(root, 'lapsed');
  await sh(planAcquire(holder('old', { ttlS: 5 }), dir));
  // The old run's last heartbeat was 10 minutes ago (by the machine's clock).
  const seen = Math.floor(Date.now() / 1000) - 600;
  writeFileSync(join(dir, 'lease', 'heartbeat'), `${seen}\n`);
  const st = parseLeaseState((await sh(planAcquire(holder('new'), dir))).stdout);
  if (st.kind !== 'held') return t.fail('should be held');
  t.equal(decideTakeover(st, { host: 'h1', alive: () => true }).takeOver, false, 'same host, process alive: kept');
  const d = decideTakeover(st, { host: 'h1', alive: () => false });
  t.equal(d.takeOver, true);
  t.match(d.why, /lapsed \d+ s ago \(after 5 s\) and its process is gone/);
  t.equal(decideTakeover(st, { host: 'elsewhere', alive: () => true }).takeOver, true, 'another host: the heartbeat decides');
  const stale = await sh(planTakeover(holder('other'), seen - 1, dir));
  t.equal(stale.exitCode, 12, 'a takeover based on an old reading is refused (someone renewed it)');
  const ok = await sh(planTakeover(holder('new'), st.heartbeat, dir));
  t.equal(ok.stdout.trim(), 'acquired');
  const now = parseLeaseState((await sh(planAcquire(holder('x'), dir))).stdout);
  t.equal(now.kind === 'held' && now.holder?.runId, 'new');
});

t.test('heartbeat and release touch only the own lease', async (t) => {
  const dir = join(root, 'hb');
  await sh(planAcquire(holder('mine'), dir));
  t.equal((await sh(planHeartbeat('mine', dir))).exitCode, 0);
  t.equal((await sh(planHeartbeat('theirs', dir))).exitCode, 12, 'not ours: the heartbeat says so');
  t.equal((await sh(planRelease('theirs', dir))).stdout.trim(), 'not ours');
  t.equal((await sh(planRelease('mine', dir))).stdout.trim(), 'released');
  t.equal(parseLeaseState((await sh(planAcquire(holder('next'), dir))).stdout).kind, 'acquired');
  const forced = await sh(planRelease(null, dir));
  t.match(forced.stdout, /"runId":"next"[\s\S]*released/, 'lab release names the holder it dropped');
});
