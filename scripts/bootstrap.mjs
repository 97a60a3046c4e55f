#!/usr/bin/env node
// Set-up that `npm start` and `npm test` run first on any machine: npm packages (npm ci when
// node_modules is missing or stale), the TypeScript build, and with --test the Debian
// packages the test suite itself needs (a real sshd). The harness installs its own
// run-time packages (QEMU, ndctl, ...) when it runs.
import { existsSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));

function run(argv, opts = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.status !== 0) {
    process.stderr.write(`bootstrap: ${argv.join(' ')} failed (exit ${r.status ?? r.signal})\n`);
    process.exit(2);
  }
}

const lock = join(root, 'package-lock.json');
const marker = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs) {
  process.stderr.write('bootstrap: installing npm packages (npm ci)\n');
  run(['npm', 'ci', '--no-audit', '--no-fund', '--loglevel=error'], { stdio: ['ignore', 'ignore', 'inherit'] });
}
run([process.execPath, join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')]);

if (args.has('--test')) {
  // The SSH target is tested against a real OpenSSH server on 127.0.0.1, the dashboard in
  // Debian's headless Chromium.
  const need = [
    ['/usr/sbin/sshd', 'openssh-server'],
    ['/usr/bin/ssh-keygen', 'openssh-client'],
    ['/usr/bin/chromium', 'chromium'],
    // The nightly lane runs a real Buildbot master and two workers on loopback.
    ['/usr/bin/buildbot', 'buildbot'],
    ['/usr/bin/buildbot-worker', 'buildbot-worker'],
    // Unit tests run the real xfs_io and dropbearkey, whatever lane ran first.
    ['/usr/sbin/xfs_io', 'xfsprogs'],
    ['/usr/bin/dropbearkey', 'dropbear-bin'],
    // The lab-machine rig (harness/test/target/lab/rig.ts) builds a Debian system with
    // mmdebstrap and runs it in QEMU, with a qcow2 overlay, a console and a monitor on UNIX
    // sockets reached through socat, and real OpenSSH as the only way in.
    ['/usr/bin/mmdebstrap', 'mmdebstrap'],
    ['/usr/bin/socat', 'socat'],
    ['/usr/bin/qemu-img', 'qemu-utils'],
    ['/usr/bin/qemu-system-x86_64', 'qemu-system-x86'],
    ['/usr/bin/ssh', 'openssh-client'],
  ].filter(([p]) => !existsSync(p));
  if (need.length > 0) {
    const pkgs = need.map(([, p]) => p);
    if (process.getuid?.() !== 0) {
      process.stderr.write(`bootstrap: the tests need ${pkgs.join(' ')}; install them: sudo apt-get install ${pkgs.join(' ')}\n`);
      process.exit(2);
    }
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    run(['apt-get', 'update', '-q'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...pkgs], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  }
}
