// dax-harness lab add|trust|check|release|list: the inventory by command, host keys pinned
// only on confirmation, and a pre-flight check whose every line says ok or what is missing.
import { createInterface } from 'node:readline/promises';
import { Client } from 'ssh2';
import { HarnessError } from '../../core/errors.js';
import { runCommand } from '../../core/proc.js';
import type { LabConfig } from '../../config.js';
import { fingerprintOf, SshTarget } from '../ssh-target.js';
import { DEFAULT_TIMEOUTS, findMachine, readInventory, updateMachine, type LabMachine } from './inventory.js';
import { LAB_ROOT, planAcquire, planRelease } from './lease.js';
import { inspectPmem, parseIdentity, planIdentity, planLabSsh, planRestore, planSlowDevice } from './lab-session.js';
import { labMountpoint, planLabFsSetup } from './pmem.js';
import { shellQuote } from '../../core/proc.js';
import type { FsType } from '../guest-setup.js';
import { formatTestPlan, type TestDef } from '../../suite/suite.js';

type Out = (line: string) => void;

/** Returns the SHA256 fingerprint of the host key a machine presents (nothing is authenticated). */
export async function fetchHostKey(host: string, port: number, timeoutMs: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    const c = new Client();
    let seen: string | null = null;
    c.on('error', (err: Error) => (seen ? resolve(seen) : reject(new HarnessError('ssh', `cannot reach ${host}:${port} to read its host key: ${err.message}`, { hint: 'check the host, the port and that sshd runs there' }))));
    c.connect({
      host,
      port,
      username: 'dax-harness-trust',
      readyTimeout: timeoutMs,
      // Refusing the key ends the handshake before any authentication: only the key is learnt.
      hostVerifier: (key: Buffer) => {
        seen = fingerprintOf(key);
        return false;
      },
    });
  });
}

/** Runs the lab command; returns the exit code. */
export async function runLabCommand(lab: LabConfig, inventoryPath: string, out: Out, isTty: boolean): Promise<number> {
  switch (lab.action) {
    case 'list': {
      const inv = readInventory(inventoryPath);
      if (inv.machines.length === 0) out(`no lab machines in ${inventoryPath}; add one: dax-harness lab add NAME --host H --user U`);
      for (const m of inv.machines) {
        out(`${m.name}  ${m.user}@${m.host}:${m.port}  boot ${m.boot}  namespaces ${m.namespaces.join(',') || '-'}  ${m.hostKeys.length > 0 ? 'key pinned' : 'KEY NOT PINNED'}  ${m.health.unhealthy ? `UNHEALTHY (${m.health.unhealthy})` : 'healthy'}`);
      }
      return 0;
    }
    case 'add': {
      const name = lab.name!;
      updateMachine(inventoryPath, name, (old) => {
        if (old) throw new HarnessError('config', `lab machine ${name} is already in ${inventoryPath}`, { hint: 'edit the file to change it, or pick another name' });
        return {
          name,
          host: lab.host!,
          port: lab.port ?? 22,
          user: lab.user!,
          identity: lab.identity,
          hostKeys: [],
          privilege: lab.user === 'root' ? 'root' : 'sudo',
          console: null,
          power: { on: null, off: null, cycle: null },
          boot: 'kexec',
          namespaces: [],
          timeouts: { ...DEFAULT_TIMEOUTS },
          maxFailures: 3,
          health: { failures: 0, unhealthy: null },
        };
      });
      out(`added ${name} to ${inventoryPath}; next: dax-harness lab trust ${name}, then name its namespaces, console and power commands in the file`);
      return 0;
    }
    case 'trust': {
      const m = findMachine(readInventory(inventoryPath), lab.name!);
      const fp = await fetchHostKey(m.host, m.port, m.timeouts.connectS * 1000);
      out(`${m.name} (${m.host}:${m.port}) presents host key ${fp}`);
      if (m.hostKeys.includes(fp)) {
        out('already pinned');
        return 0;
      }
      let confirmed = false;
      if (lab.fingerprint !== null) {
        if (lab.fingerprint !== fp) {
          throw new HarnessError('ssh', `the host key of ${m.name} is ${fp}, not the --fingerprint ${lab.fingerprint} you gave; nothing was recorded`, {
            hint: 'check the fingerprint on the machine itself (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and make sure you reach the right host',
          });
        }
        confirmed = true;
      } else if (isTty) {
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        confirmed = /^y(es)?$/i.test((await rl.question('Compare it with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the machine. Pin it? [y/N] ')).trim());
        rl.close();
      } else {
        throw new HarnessError('config', `not pinning ${fp} without a confirmation`, { hint: `check it on the machine, then: dax-harness lab trust ${m.name} --fingerprint ${fp}` });
      }
      if (!confirmed) {
        out('not pinned');
        return 2;
      }
      updateMachine(inventoryPath, m.name, (cur) => ({ ...cur!, hostKeys: [...cur!.hostKeys, fp] }));
      out(`pinned ${fp} for ${m.name} in ${inventoryPath}`);
      return 0;
    }
    case 'release': {
      const m = findMachine(readInventory(inventoryPath), lab.name!);
      const ssh = await SshTarget.connect(planLabSsh(m, m.timeouts.connectS * 1000));
      try {
        const r = await ssh.exec(planRelease(null));
        out(r.stdout.trim().startsWith('free') ? `${m.name}: no lease was held` : `${m.name}: released the lease of ${r.stdout.trim().split('\n').slice(0, -1).join(' ') || 'an unreadable holder'}`);
        return r.exitCode === 0 ? 0 : 2;
      } finally {
        ssh.close();
      }
    }
    case 'check':
      return await runLabCheck(findMachine(readInventory(inventoryPath), lab.name!), inventoryPath, out);
  }
}

interface CheckLine {
  ok: boolean;
  what: string;
  detail: string;
  todo?: string;
}

/** Returns the check's lines as printed: ok, or MISSING with what to do. */
export function formatCheck(lines: CheckLine[]): string[] {
  return lines.map((l) => `${l.ok ? 'ok     ' : 'MISSING'}  ${l.what}: ${l.detail}${!l.ok && l.todo ? ` -- what to do: ${l.todo}` : ''}`);
}

/** The pre-flight check of a machine; a pass clears its unhealthy mark. */
export async function runLabCheck(m: LabMachine, inventoryPath: string, out: Out): Promise<number> {
  const lines: CheckLine[] = [];
  const add = (l: CheckLine): void => {
    lines.push(l);
    for (const x of formatCheck([l])) out(x);
  };
  add({ ok: m.hostKeys.length > 0, what: 'host key', detail: m.hostKeys.join(', ') || 'none pinned', todo: `dax-harness lab trust ${m.name}` });
  let ssh: SshTarget | null = null;
  if (m.hostKeys.length > 0) {
    try {
      ssh = await SshTarget.connect(planLabSsh(m, m.timeouts.connectS * 1000));
      add({ ok: true, what: 'ssh', detail: `${m.user}@${m.host}:${m.port}, host key verified` });
    } catch (err) {
      add({ ok: false, what: 'ssh', detail: (err as Error).message, todo: (err as HarnessError).hint ?? 'check the inventory entry' });
    }
  }
  if (ssh) {
    try {
      const run = async (argv: string[], timeoutMs = 20_000) => await ssh!.exec({ argv, timeoutMs });
      const root = await run(['id', '-u']);
      add({ ok: root.exitCode === 0 && root.stdout.trim() === '0', what: m.privilege, detail: root.exitCode === 0 ? `commands run as uid ${root.stdout.trim()}` : root.stderr.trim(), todo: m.privilege === 'sudo' ? `let ${m.user} run sudo without a password (a file in /etc/sudoers.d)` : 'log in as root' });
      if (m.boot === 'kexec') {
        const k = await run(['sh', '-c', 'command -v kexec']);
        add({ ok: k.exitCode === 0, what: 'kexec', detail: k.stdout.trim() || 'not found', todo: 'install kexec-tools (the boot method is kexec)' });
      }
      const nd = await run(['ndctl', '--version']);
      add({ ok: nd.exitCode === 0, what: 'ndctl', detail: nd.exitCode === 0 ? `version ${nd.stdout.trim()}` : 'not found', todo: 'install ndctl' });
      if (nd.exitCode === 0) {
        const d = await inspectPmem(ssh, m, []);
        add({ ok: m.namespaces.length > 0, what: 'pmem layout', detail: m.namespaces.length > 0 ? `the inventory allows ${m.namespaces.join(', ')}` : 'the inventory names no namespace', todo: 'name the fsdax namespaces the harness may reconfigure in "namespaces"' });
        add({ ok: d.refused.length === 0 && m.namespaces.length >= 2, what: 'namespaces dedicated', detail: d.refused.length > 0 ? d.refused.join('; ') : `${m.namespaces.length} namespace(s) free for the harness${m.namespaces.length < 2 ? ' (ext4 and xfs need two)' : ''}`, todo: 'free them (unmount, wipe what is not yours) or fix the inventory' });
      }
      const df = await run(['df', '-Pk', '/var/lib']);
      const freeKb = Number(df.stdout.trim().split('\n')[1]?.split(/\s+/)[3] ?? 0);
      add({ ok: freeKb > 512 * 1024, what: 'free space', detail: `${Math.round(freeKb / 1024)} MiB free under /var/lib (the harness keeps its files in ${LAB_ROOT})`, todo: 'free at least 512 MiB' });
      const lease = await run(['sh', '-c', `cat ${LAB_ROOT}/lease/holder.json 2>/dev/null || echo free`]);
      add({ ok: true, what: 'lease', detail: lease.stdout.trim() === 'free' ? 'free' : `held: ${lease.stdout.trim()}` });
    } finally {
      ssh.close();
    }
  }
  if (m.console) {
    // A console command must connect and stay up (or print): one that exits at once is broken.
    const r = await runCommand({ argv: m.console, timeoutMs: 3000 });
    const ok = r.timedOut || (r.exitCode === 0 && r.stdout.length > 0);
    add({ ok, what: 'console', detail: ok ? `${m.console.join(' ')} answers` : `${m.console.join(' ')} exited ${r.exitCode}: ${r.stderr.trim().slice(0, 200)}`, todo: 'fix the "console" command of the inventory' });
  } else {
    add({ ok: false, what: 'console', detail: 'none configured: a panic will have no evidence', todo: 'set "console" (e.g. ["ipmitool", "-I", "lanplus", "-H", "BMC", "sol", "activate"])' });
  }
  for (const k of ['cycle', 'on', 'off'] as const) {
    const cmd = m.power[k];
    if (!cmd) {
      add({ ok: k !== 'cycle', what: `power ${k}`, detail: 'none configured', todo: 'set power.cycle: without it a hung kernel cannot be recovered' });
      continue;
    }
    const w = await runCommand({ argv: ['sh', '-c', 'command -v "$1"', 'which', cmd[0]!], timeoutMs: 5000 });
    add({ ok: w.exitCode === 0, what: `power ${k}`, detail: w.exitCode === 0 ? `${cmd.join(' ')} (not run by the check)` : `${cmd[0]} not found on this host`, todo: 'install it, or fix the command' });
  }
  const healthy = lines.every((l) => l.ok);
  if (healthy && (m.health.unhealthy || m.health.failures > 0)) {
    updateMachine(inventoryPath, m.name, (cur) => ({ ...cur!, health: { failures: 0, unhealthy: null } }));
    out(`${m.name}: the check passed: the unhealthy mark is cleared`);
  }
  out(`${m.name}: ${healthy ? 'ready' : `${lines.filter((l) => !l.ok).length} problem(s)`}`);
  return healthy ? 0 : 2;
}

/**
 * The plans of a lab run, for --dry-run: read-only on the machine (its kernel and namespaces
 * are read, nothing is changed, no lease is taken), printed with exactly which namespaces the
 * run would destroy.
 */
export async function formatLabDryRun(m: LabMachine, filesystems: FsType[], tests: TestDef[], runId: string, keep: boolean): Promise<string> {
  const ssh = await SshTarget.connect(planLabSsh(m, m.timeouts.connectS * 1000));
  try {
    const ident = parseIdentity((await ssh.exec(planIdentity())).stdout);
    const d = await inspectPmem(ssh, m, filesystems);
    const runDir = `${LAB_ROOT}/runs/${runId}`;
    const lines = [`# lab machine ${m.name} (${m.user}@${m.host}:${m.port}, ${m.privilege}), running ${ident.release}`, '# the lease', shellQuote(planAcquire({ runId, host: '<this host>', pid: 0, user: '<you>', started: '<now>', ttlS: 0 }).argv.slice(0, 3)), ''];
    lines.push('# persistent memory');
    if (d.refused.length > 0) lines.push(`# REFUSED, the run would stop here before any change: ${d.refused.join('; ')}`);
    for (const a of d.assigned) lines.push(`# DESTROYS namespace ${a.key} (${a.ns.dev}, /dev/${a.ns.blockdev}, ${a.ns.mode}${a.ns.size ? `, ${Math.round(a.ns.size / 2 ** 20)} MiB` : ''}) for ${a.fs}`);
    const others = m.namespaces.filter((k) => !d.assigned.some((a) => a.key === k));
    if (others.length > 0) lines.push(`# allowed but not used by this run: ${others.join(', ')}`);
    for (const p of planLabFsSetup(d)) {
      for (const c of p.namespace) lines.push(shellQuote(c.argv));
      lines.push(shellQuote(p.mkfs('<blockdev>').argv), shellQuote(p.mount('<blockdev>').argv));
    }
    lines.push('', `# install into ${runDir}`, shellQuote(['tar', '-C', `${runDir}/bin`, '-xf', '-']), shellQuote(['insmod', `${runDir}/dax_probe.ko`]), shellQuote(planSlowDevice().argv.slice(0, 2)), '', '# tests');
    const paths = { bin: `${runDir}/bin`, slowDev: '<slow device>', tmp: `${runDir}/tmp` };
    for (const fs of filesystems) for (const t of tests) lines.push(formatTestPlan(t, { mountpoint: labMountpoint(fs), fs, ...paths }));
    lines.push('', '# restore');
    for (const c of planRestore(runDir, true, keep)) lines.push(shellQuote(c.argv));
    lines.push(shellQuote(planRelease(runId).argv.slice(0, 3)));
    return lines.join('\n');
  } finally {
    ssh.close();
  }
}
