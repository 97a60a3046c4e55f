// The CLI on bad input: each a one-paragraph error naming the input and the fix, exit code 2,
// and nothing left behind (no run directory, no QEMU).
import t from 'tap';
import { execa } from 'execa';
import { createServer } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = join(root, 'harness', 'dist', 'cli.js');
const tmp = mkdtempSync(join(tmpdir(), 'dax-cli-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

async function bad(t: Tap.Test, args: string[], message: RegExp, hint: RegExp): Promise<void> {
  const results = join(tmp, `r${Math.random().toString(16).slice(2)}`);
  const r = await execa(process.execPath, [cli, ...args, '--results', results], { reject: false, timeout: 120_000 });
  t.equal(r.exitCode, 2, `${args.join(' ')}: exit 2`);
  t.match(r.stderr, message, 'names what was wrong');
  t.match(r.stderr, /what to do: /, 'says what to do');
  t.match(r.stderr, hint, 'the advice fits');
  t.equal(r.stdout, '', 'no TAP for a run that never started');
  t.notOk(existsSync(results) && readdirSync(results).length > 0, 'no run directory was made');
}

declare namespace Tap {
  type Test = typeof t;
}

t.test('unknown test name', (t) => bad(t, ['run', '--tests', 'mmap-fault-4k,nope'], /unknown test name\(s\): nope/, /dax-harness list/));
t.test('unknown option', (t) => bad(t, ['run', '--frobnicate'], /Unknown option '--frobnicate'/, /help/));
t.test('missing kernel file', (t) => bad(t, ['run', '--kernel', join(tmp, 'no-such-bzImage'), '--modules', tmp], /--kernel .*no-such-bzImage: no such file/, /bzImage/));
t.test('kernel without modules', async (t) => {
  const k = join(tmp, 'bzImage');
  writeFileSync(k, 'x');
  await bad(t, ['run', '--kernel', k], /needs --modules DIR/, /lib\/modules/);
});
t.test('a modules directory that is not one', async (t) => {
  const k = join(tmp, 'bzImage2');
  writeFileSync(k, 'x');
  await bad(t, ['run', '--kernel', k, '--modules', tmp], /not a modules directory \(no modules.dep\)/, /depmod/);
});
t.test('unknown profile', (t) => bad(t, ['run', '--profile', 'huge'], /unknown profile "huge"/, /default/));
t.test('bad --fs', (t) => bad(t, ['run', '--fs', 'btrfs'], /--fs btrfs: only ext4 and xfs/, /--fs ext4,xfs/));

t.test('an unwritable results directory', async (t) => {
  const file = join(tmp, 'a-file');
  writeFileSync(file, '');
  const r = await execa(process.execPath, [cli, 'run', '--results', join(file, 'sub')], { reject: false, timeout: 300_000 });
  t.equal(r.exitCode, 2);
  t.match(r.stderr, /results directory .*a-file\/sub is not writable/);
  t.match(r.stderr, /--results DIR/);
});

t.test('a port already taken', async (t) => {
  const srv = createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  t.teardown(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  await bad(t, ['run', '--ssh-port', String(port)], new RegExp(`--ssh-port ${port}: port ${port} on 127.0.0.1 is already in use`), /leave --ssh-port out/);
  const p = await execa('pgrep', ['-f', `hostfwd=tcp:127.0.0.1:${port}-`], { reject: false });
  t.equal(p.stdout.trim(), '', 'no QEMU was started');
});

t.test('help and list', async (t) => {
  const h = await execa(process.execPath, [cli, 'help']);
  t.match(h.stdout, /exit codes: 0 every test passed, 1 a kernel test failed, 2 infrastructure or input error/);
  const l = await execa(process.execPath, [cli, 'list']);
  for (const n of ['mmap-fault-4k', 'mmap-fault-2m', 'odirect-pin', 'uring-longterm']) t.match(l.stdout, new RegExp(`^${n}$`, 'm'));
  t.notMatch(l.stdout, /selftest-/, 'self-tests are not listed as part of the suite');
});
