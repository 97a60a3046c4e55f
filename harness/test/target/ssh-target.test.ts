// The SSH target against a real OpenSSH server on 127.0.0.1 (started here, with its own
// host key and authorized key), through the real ssh2 client.
import t from 'tap';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { SshTarget, parsePublicKeyLine, planRemoteLine, type SshTargetConfig } from '../../src/target/ssh-target.js';
import { findFreePort } from '../../src/target/qemu/boot.js';
import { HarnessError } from '../../src/core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'dax-sshd-'));
const hostKey = join(dir, 'host_ed25519');
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
const client = ssh2.utils.generateKeyPairSync('ed25519');
writeFileSync(join(dir, 'authorized_keys'), `${client.public}\n`, { mode: 0o600 });
// sshd insists on its privilege-separation directory.
mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

let sshd: ChildProcess | null = null;
let port = 0;

async function startSshd(): Promise<void> {
  port = await findFreePort();
  const cfg = join(dir, 'sshd_config');
  writeFileSync(
    cfg,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'ClientAliveInterval 0',
    ].join('\n') + '\n',
  );
  sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  // Ready when the port accepts connections.
  const net = await import('node:net');
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((res) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.end();
        res(true);
      });
      s.on('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('sshd did not start');
}

function config(over: Partial<SshTargetConfig> = {}): SshTargetConfig {
  const pub = readFileSync(`${hostKey}.pub`, 'utf8');
  return {
    host: '127.0.0.1',
    port,
    username: process.env.USER && process.env.USER !== 'root' ? process.env.USER : 'root',
    privateKey: client.private,
    hostKey: parsePublicKeyLine(pub).blob,
    readyTimeoutMs: 5000,
    connectRetries: 3,
    connectDeadlineMs: 10_000,
    keepaliveIntervalMs: 1000,
    keepaliveCountMax: 3,
    ...over,
  };
}

t.before(startSshd);
t.teardown(() => {
  sshd?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

t.test('planRemoteLine puts a guest-side kill timer around the quoted argv', async (t) => {
  t.equal(planRemoteLine({ argv: ['echo', 'a b', "it's"], timeoutMs: 1500 }), `timeout -s KILL 2 echo 'a b' 'it'\\''s'`);
});

t.test('one persistent connection runs commands with exit codes, stdout and stderr', async (t) => {
  const ssh = await SshTarget.connect(config());
  t.teardown(() => ssh.close());
  const a = await ssh.exec({ argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'], timeoutMs: 10_000 });
  t.equal(a.exitCode, 3);
  t.equal(a.stdout, 'out\n');
  t.equal(a.stderr, 'err\n');
  t.equal(a.timedOut, false);
  // The same connection serves many commands (no reconnect per command).
  const started = performance.now();
  for (let i = 0; i < 10; i++) {
    const r = await ssh.exec({ argv: ['echo', String(i)], timeoutMs: 10_000 });
    t.equal(r.stdout, `${i}\n`);
  }
  t.ok(performance.now() - started < 10_000, '10 commands on one connection');
  const chunks: string[] = [];
  const s = await ssh.exec({ argv: ['sh', '-c', 'echo one; sleep 0.3; echo two'], timeoutMs: 10_000 }, (stream, c) => chunks.push(`${stream}:${c}`));
  t.same(chunks, ['stdout:one\n', 'stdout:two\n'], 'output is streamed as it comes');
  t.equal(s.exitCode, 0);
});

t.test('a command that outlives its bound is killed and reported as timed out', async (t) => {
  const ssh = await SshTarget.connect(config());
  t.teardown(() => ssh.close());
  const started = performance.now();
  const r = await ssh.exec({ argv: ['sleep', '30'], timeoutMs: 1000 });
  t.equal(r.timedOut, true, `timedOut (exit ${r.exitCode}, signal ${r.signal}, ${r.durationMs} ms)`);
  t.ok(performance.now() - started < 8000, 'returned long before the command would have ended');
  const after = await ssh.exec({ argv: ['echo', 'still here'], timeoutMs: 5000 });
  t.equal(after.stdout, 'still here\n', 'the connection survives a timeout');
});

t.test('upload writes the bytes and the mode', async (t) => {
  const ssh = await SshTarget.connect(config());
  t.teardown(() => ssh.close());
  const data = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
  const dest = join(dir, 'uploaded.bin');
  await ssh.upload(data, dest, 0o640);
  t.ok(readFileSync(dest).equals(data), 'content is byte-exact');
  const mode = (await ssh.exec({ argv: ['stat', '-c', '%a', dest], timeoutMs: 5000 })).stdout.trim();
  t.equal(mode, '640');
  await t.rejects(ssh.upload(data, '/nonexistent-dir/x'), { name: 'HarnessError' }, 'a failed upload is an error');
});

t.test('a wrong host key is refused at once, without retries', async (t) => {
  const other = ssh2.utils.generateKeyPairSync('ed25519');
  const started = performance.now();
  const err = await SshTarget.connect(config({ hostKey: parsePublicKeyLine(other.public).blob, connectRetries: 50 })).catch((e: unknown) => e);
  t.type(err, HarnessError);
  t.equal((err as HarnessError).kind, 'ssh');
  t.match((err as HarnessError).message, /host key of .* has changed: it presented SHA256:\S+, the pinned key is SHA256:/);
  t.ok(performance.now() - started < 3000, 'no retry loop on a mismatch');
});

t.test('an unauthorized client key is an ssh error naming the target', async (t) => {
  const stranger = ssh2.utils.generateKeyPairSync('ed25519');
  const err = await SshTarget.connect(config({ privateKey: stranger.private, connectRetries: 1 })).catch((e: unknown) => e);
  t.type(err, HarnessError);
  t.match((err as HarnessError).message, new RegExp(`127\\.0\\.0\\.1:${port}`));
});

t.test('nobody listening: retries until the deadline, then an ssh error', async (t) => {
  const dead = await findFreePort();
  const started = performance.now();
  const err = await SshTarget.connect(config({ port: dead, connectRetries: 100, connectDeadlineMs: 1500 })).catch((e: unknown) => e);
  const took = performance.now() - started;
  t.type(err, HarnessError);
  t.equal((err as HarnessError).kind, 'ssh');
  t.ok(took >= 1000 && took < 6000, `gave up after the deadline (${Math.round(took)} ms)`);
});

t.test('a connection dropped mid-command rejects that command and later ones', async (t) => {
  const ssh = await SshTarget.connect(config());
  let closedReason: string | null = null;
  ssh.onClose((r) => (closedReason = r));
  // Kill the per-connection sshd processes (children of the listener) while a command runs:
  // the TCP connection goes away under it.
  const started = performance.now();
  const pending = ssh.exec({ argv: ['sleep', '20'], timeoutMs: 30_000 }).catch((e: unknown) => e);
  await new Promise((r) => setTimeout(r, 300));
  execFileSync('pkill', ['-KILL', '-P', String(sshd?.pid)]);
  const err = await pending;
  t.type(err, HarnessError);
  t.equal((err as HarnessError).kind, 'ssh');
  t.ok(performance.now() - started < 10_000, 'detected within seconds');
  t.ok(closedReason, 'onClose fired');
  await t.rejects(ssh.exec({ argv: ['true'], timeoutMs: 1000 }), { name: 'HarnessError' });
});
