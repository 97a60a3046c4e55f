// Fault injection, for real, in QEMU: a guest that WARNs, panics, hangs in D state, loses its
// sshd, is killed from outside, boots with a broken command line, or is interrupted with
// SIGINT. Each asserts the outcome, the exit code, that the TAP parses with the right plan,
// and that the run went on. Slow lane (several boots under TCG).
import t from 'tap';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Parser } from 'tap-parser';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'harness', 'dist', 'cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'dax-faults-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

interface Point {
  ok: boolean;
  name: string;
  diag: Record<string, unknown> | null;
  /** tap-parser moves the YAML duration_ms here. */
  time: number | null;
}

/** Parses TAP; returns the points of each subtest, the top plan and parse failures. */
function parseTap(text: string): Promise<{ plan: number; failures: unknown[]; extra: string[]; subtests: Map<string, { plan: number; points: Point[] }> }> {
  return new Promise((resolve) => {
    const p = new Parser();
    const subtests = new Map<string, { plan: number; points: Point[] }>();
    const extra: string[] = [];
    p.on('extra', (e: string) => extra.push(e));
    p.on('child', (c: Parser) => {
      const points: Point[] = [];
      c.on('assert', (a: Point) => points.push(a));
      c.on('complete', (r: { plan: { end: number } }) => subtests.set(c.name, { plan: r.plan.end, points }));
    });
    p.on('complete', (r: { plan: { end: number }; failures: { tapError?: unknown }[] }) =>
      resolve({ plan: r.plan.end, failures: r.failures.filter((f) => f.tapError), extra, subtests }),
    );
    p.end(text);
  });
}

function onlyRun(results: string): string {
  const runs = readdirSync(results);
  if (runs.length !== 1) throw new Error(`expected one run directory in ${results}, found ${runs.length}`);
  return join(results, runs[0]!);
}

t.test('warn, hang, panic and a lost sshd in one run: each reported right, the run goes on', async (t) => {
  const results = join(tmp, 'mixed');
  const tests = [
    'mmap-fault-4k',
    'selftest-warn',
    'selftest-sleep',
    'mmap-fault-2m',
    'selftest-hang',
    'odirect-pin',
    'selftest-panic',
    'uring-longterm',
    'selftest-ssh-drop',
    'mmap-fault-4k',
  ];
  const r = await execa(process.execPath, [cli, 'run', '--fs', 'ext4', '--tests', tests.join(','), '--infra-retries', '1', '--results', results, '-v'], {
    reject: false,
    timeout: 900_000,
  });
  t.equal(r.exitCode, 1, 'a kernel failure (WARN, timeout, panic) makes exit code 1, not 2');
  const tap = await parseTap(r.stdout);
  t.same(tap.failures, [], 'the TAP parses');
  t.same(tap.extra, []);
  t.equal(tap.plan, 1);
  const ext4 = tap.subtests.get('ext4');
  t.equal(ext4?.plan, tests.length, 'subtest plan: every test');
  const pts = ext4?.points ?? [];
  t.equal(pts.length, tests.length, 'every test reported, including those after each fault');
  const byIndex = (i: number): Point => pts[i] ?? { ok: false, name: 'missing', diag: null, time: null };

  t.ok(byIndex(0).ok, 'an ordinary test before the faults passes');
  t.notOk(byIndex(1).ok, 'selftest-warn fails although its command exited 0');
  t.match(String(byIndex(1).diag?.reason), /dmesg: warning; kernel newly tainted: W/, 'on the dmesg window and the W taint');
  t.match(String(byIndex(1).diag?.dmesg), /WARNING: CPU: \d+ PID: \d+ at .*dax_probe/, 'with the WARNING in the diagnostics');
  t.match(byIndex(2).name, /^selftest-sleep # TIMEOUT no result within 3 s$/, 'a killable overrun is a TIMEOUT');
  t.ok(byIndex(3).ok, 'the guest stayed usable after a killable timeout');
  t.match(byIndex(4).name, /^selftest-hang # TIMEOUT/, 'a D-state hang is a TIMEOUT');
  t.match(String(byIndex(4).diag?.dmesg), /sysrq: Show Blocked State[\s\S]*state:D[\s\S]*msleep/, 'with the blocked-task stacks from sysrq-w');
  t.match(String(byIndex(4).diag?.reason), /left in D state: the guest is restarted/);
  t.ok(byIndex(5).ok, 'the next test passes on a fresh guest');
  t.match(byIndex(6).name, /^selftest-panic # CRASH the kernel crashed: Kernel panic - not syncing: sysrq triggered crash$/, 'a panic is a CRASH');
  t.match(String(byIndex(6).diag?.dmesg), /Call Trace:[\s\S]*sysrq_handle_crash/, 'with the console excerpt');
  t.ok(Number(byIndex(6).time) < 5000, `the panic was detected within seconds (${String(byIndex(6).time)} ms)`);
  t.ok(byIndex(7).ok, 'the run continues after a panic');
  t.match(byIndex(8).name, /^selftest-ssh-drop # ERROR infrastructure: the guest was lost \(QEMU still running\)/, 'a lost sshd is an infrastructure error');
  t.match(String(byIndex(8).diag?.reason), /after 1 retry/, 'retried once on a fresh guest');
  t.ok(Number(byIndex(8).time) < 5000, `the drop was detected within seconds (${String(byIndex(8).time)} ms)`);
  t.ok(byIndex(9).ok, 'and the run goes on');
  t.match(r.stderr, /selftest-ssh-drop: .*retrying on a fresh guest/);

  const dir = onlyRun(results);
  const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
  t.equal(run.boots.length, 5, 'boots: first, after the hang, after the panic, the retry, after the final drop');
  t.same(run.counts, { pass: 5, fail: 1, timeout: 2, crash: 1, error: 1 });
  t.ok(existsSync(join(dir, 'dmesg-boot1.txt')), 'the hung guest\'s dmesg was kept before the restart');
  t.match(readFileSync(join(dir, 'console.log'), 'utf8'), /Kernel panic - not syncing: sysrq triggered crash/, 'the console log keeps the panic');
  const recs = readFileSync(join(dir, 'tests.jsonl'), 'utf8').trim().split('\n');
  t.equal(recs.length, tests.length, 'one flushed record per test');
});

t.test('QEMU killed from outside mid-test: an infrastructure error, and the run goes on', async (t) => {
  const results = join(tmp, 'killed');
  const child = execa(process.execPath, [cli, 'run', '--fs', 'ext4', '--tests', 'odirect-pin,mmap-fault-4k', '--infra-retries', '0', '--results', results, '-v'], {
    reject: false,
    timeout: 600_000,
  });
  let killedAt = 0;
  child.stderr?.on('data', (d: Buffer) => {
    // odirect-pin holds the guest busy for 2 s: kill this run's QEMU inside that window.
    if (!killedAt && d.toString().includes('ext4/odirect-pin ...')) {
      killedAt = Date.now();
      setTimeout(() => void execa('pkill', ['-KILL', '-f', `dax-harness-${child.pid}-.*qemu|qemu.*dax-harness-${child.pid}-`], { reject: false }), 500);
    }
  });
  const r = await child;
  t.ok(killedAt > 0, 'the test started');
  t.equal(r.exitCode, 2, 'infrastructure exit code, not a kernel failure');
  const tap = await parseTap(String(r.stdout));
  t.same(tap.failures, []);
  const pts = tap.subtests.get('ext4')?.points ?? [];
  t.match(pts[0]?.name, /^odirect-pin # ERROR infrastructure: the guest was lost \(QEMU killed by SIGKILL\)/, 'names QEMU\'s death');
  t.ok(pts[1]?.ok, 'the next test ran on a fresh guest and passed');
});

t.test('a broken kernel command line is a boot error with the console tail', async (t) => {
  const results = join(tmp, 'cmdline');
  const started = Date.now();
  const r = await execa(process.execPath, [cli, 'run', '--fs', 'ext4', '--tests', 'mmap-fault-4k', '--append', 'rdinit=/no/such/init', '--results', results], {
    reject: false,
    timeout: 300_000,
  });
  t.equal(r.exitCode, 2);
  t.match(r.stderr, /boot error: the guest did not boot: (the kernel died|QEMU exit code)/);
  t.match(r.stderr, /\| .*(Kernel panic|VFS: Unable to mount root)/, 'the console tail shows why');
  t.ok(Date.now() - started < 60_000, 'detected without waiting for the boot timeout');
  const tap = await parseTap(String(r.stdout));
  t.same(tap.failures, []);
  t.equal(tap.plan, 1);
  t.match(String(r.stdout), /not ok 1 - mmap-fault-4k # ERROR/);
});

t.test('SIGINT mid-run: QEMU stops, the files are finished and parse', async (t) => {
  const results = join(tmp, 'sigint');
  const child = execa(process.execPath, [cli, 'run', '--fs', 'ext4,xfs', '--tests', 'odirect-pin,mmap-fault-4k', '--results', results, '-v'], {
    reject: false,
    timeout: 600_000,
  });
  let sent = false;
  child.stderr?.on('data', (d: Buffer) => {
    if (!sent && d.toString().includes('ext4/odirect-pin ...')) {
      sent = true;
      setTimeout(() => child.kill('SIGINT'), 500);
    }
  });
  const r = await child;
  t.ok(sent);
  t.equal(r.exitCode, 2);
  const dir = onlyRun(results);
  const tap = await parseTap(readFileSync(join(dir, 'results.tap'), 'utf8'));
  t.same(tap.failures, [], 'the TAP on disk parses');
  t.equal(tap.plan, 2);
  t.equal(tap.subtests.get('ext4')?.points.length, 2, 'ext4: every point written');
  t.equal(tap.subtests.get('xfs')?.points.length, 2, 'xfs: every point written');
  t.match(readFileSync(join(dir, 'results.tap'), 'utf8'), /# SKIP not run: interrupted by SIGINT/);
  const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
  t.equal(run.interrupted, 'SIGINT');
  const q = await execa('pgrep', ['-f', `dax-harness-${child.pid}-`], { reject: false });
  t.equal(q.stdout.trim(), '', 'no QEMU left running');
});
