// The lab inventory: one human-editable JSON file of the machines the harness may use, each
// with how to reach it (pinned host keys), how to get root, its console and power commands,
// how it boots a kernel under test, the persistent memory it may reconfigure, and a bound per
// phase. Parsing is strict: every bad field is named with what it should be.
import { existsSync, readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { HarnessError } from '../../core/errors.js';

export type BootMethod = 'kexec' | 'grub-reboot' | 'none';

export interface LabTimeouts {
  /** SSH handshake and login. */
  connectS: number;
  /** Any one command the harness runs itself (tests have their own bounds). */
  commandS: number;
  /** From asking for a reboot until the machine stops answering. */
  downS: number;
  /** From going down until the first console line. */
  consoleS: number;
  /** From going down until SSH answers again. */
  upS: number;
}

export interface LabHealth {
  /** Infrastructure failures in a row (a run that ended in exit 2). */
  failures: number;
  /** Set when failures reached the machine's limit; cleared by a passing `lab check`. */
  unhealthy: string | null;
}

export interface LabMachine {
  name: string;
  host: string;
  port: number;
  user: string;
  /** A private key file, or null to use the ssh-agent ($SSH_AUTH_SOCK). */
  identity: string | null;
  /** Pinned host key fingerprints (SHA256:...); a run never connects without one. */
  hostKeys: string[];
  /** How the harness is root: logged in as root, or sudo without a password. */
  privilege: 'root' | 'sudo';
  /** A host command whose stdout is the machine's serial console (null: none). */
  console: string[] | null;
  power: { on: string[] | null; off: string[] | null; cycle: string[] | null };
  boot: BootMethod;
  /** The fsdax namespaces (by name or uuid) the harness may destroy and reformat; nothing else. */
  namespaces: string[];
  timeouts: LabTimeouts;
  /** After this many infrastructure failures in a row the machine is marked unhealthy. */
  maxFailures: number;
  health: LabHealth;
}

export interface Inventory {
  path: string;
  machines: LabMachine[];
}

export const DEFAULT_TIMEOUTS: LabTimeouts = { connectS: 30, commandS: 300, downS: 60, consoleS: 120, upS: 300 };

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

type Json = Record<string, unknown>;

function fieldError(path: string, machine: string, field: string, what: string): HarnessError {
  return new HarnessError('config', `inventory ${path}: machine "${machine}": ${field} ${what}`, {
    hint: 'fix that field in the inventory (README, "Lab machines", has an example), or re-add the machine with dax-harness lab add',
  });
}

function argvField(path: string, name: string, field: string, v: unknown): string[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'string' && x !== '')) {
    throw fieldError(path, name, field, 'must be a command as a list of words, e.g. ["ipmitool", "-H", "bmc1", "chassis", "power", "cycle"]');
  }
  return v as string[];
}

/** Returns one machine from its JSON object, or throws naming the first bad field. */
export function parseMachine(path: string, name: string, m: Json): LabMachine {
  const known = ['host', 'port', 'user', 'identity', 'hostKeys', 'privilege', 'console', 'power', 'boot', 'namespaces', 'timeouts', 'maxFailures', 'health'];
  const unknown = Object.keys(m).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw fieldError(path, name, unknown[0]!, `is not a field of a machine (the fields are ${known.join(', ')})`);
  if (!NAME.test(name)) throw fieldError(path, name, 'the name', 'must be lower-case letters, digits, ".", "_" or "-"');
  if (typeof m.host !== 'string' || m.host === '') throw fieldError(path, name, 'host', 'must be a host name or address');
  const port = m.port ?? 22;
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) throw fieldError(path, name, 'port', 'must be a TCP port (1-65535)');
  if (typeof m.user !== 'string' || !/^[a-z_][a-z0-9_.-]*$/.test(m.user)) throw fieldError(path, name, 'user', 'must be a login name');
  if (m.identity !== undefined && m.identity !== null && (typeof m.identity !== 'string' || !m.identity.startsWith('/'))) {
    throw fieldError(path, name, 'identity', 'must be the absolute path of a private key, or null for the ssh-agent');
  }
  const hostKeys = m.hostKeys ?? [];
  if (!Array.isArray(hostKeys) || !hostKeys.every((k) => typeof k === 'string' && FINGERPRINT.test(k))) {
    throw fieldError(path, name, 'hostKeys', 'must be a list of SHA256 fingerprints as ssh-keygen -l prints them (SHA256: and 43 base64 characters); dax-harness lab trust records them');
  }
  const privilege = m.privilege ?? (m.user === 'root' ? 'root' : 'sudo');
  if (privilege !== 'root' && privilege !== 'sudo') throw fieldError(path, name, 'privilege', 'must be "root" or "sudo" (passwordless)');
  if (privilege === 'root' && m.user !== 'root') throw fieldError(path, name, 'privilege', 'is "root" but user is not root; use "sudo"');
  const power = (m.power ?? {}) as Json;
  if (typeof power !== 'object' || Array.isArray(power)) throw fieldError(path, name, 'power', 'must be an object with on, off and cycle commands');
  const badPower = Object.keys(power).filter((k) => !['on', 'off', 'cycle'].includes(k));
  if (badPower.length > 0) throw fieldError(path, name, `power.${badPower[0]}`, 'is not a power command (they are on, off, cycle)');
  const boot = m.boot ?? 'kexec';
  if (boot !== 'kexec' && boot !== 'grub-reboot' && boot !== 'none') throw fieldError(path, name, 'boot', 'must be "kexec", "grub-reboot" or "none"');
  const namespaces = m.namespaces ?? [];
  if (!Array.isArray(namespaces) || !namespaces.every((n) => typeof n === 'string' && /^[A-Za-z0-9._:-]+$/.test(n))) {
    throw fieldError(path, name, 'namespaces', 'must be a list of the fsdax namespaces (names or uuids, as ndctl list -N shows them) the harness may reconfigure');
  }
  const t = (m.timeouts ?? {}) as Json;
  const timeouts = { ...DEFAULT_TIMEOUTS };
  for (const [k, v] of Object.entries(t)) {
    if (!(k in DEFAULT_TIMEOUTS)) throw fieldError(path, name, `timeouts.${k}`, `is not a phase (they are ${Object.keys(DEFAULT_TIMEOUTS).join(', ')})`);
    if (typeof v !== 'number' || !(v > 0) || v > 86_400) throw fieldError(path, name, `timeouts.${k}`, 'must be a number of seconds, more than 0');
    timeouts[k as keyof LabTimeouts] = v;
  }
  const maxFailures = m.maxFailures ?? 3;
  if (!Number.isInteger(maxFailures) || (maxFailures as number) < 1) throw fieldError(path, name, 'maxFailures', 'must be a whole number, 1 or more');
  const h = (m.health ?? {}) as Json;
  const health: LabHealth = { failures: Number.isInteger(h.failures) ? (h.failures as number) : 0, unhealthy: typeof h.unhealthy === 'string' ? h.unhealthy : null };
  return {
    name,
    host: m.host,
    port: port as number,
    user: m.user,
    identity: (m.identity as string | undefined) ?? null,
    hostKeys: hostKeys as string[],
    privilege,
    console: argvField(path, name, 'console', m.console),
    power: { on: argvField(path, name, 'power.on', power.on), off: argvField(path, name, 'power.off', power.off), cycle: argvField(path, name, 'power.cycle', power.cycle) },
    boot,
    namespaces: namespaces as string[],
    timeouts,
    maxFailures: maxFailures as number,
    health,
  };
}

/** Returns the inventory from its text; throws a config error naming the bad field. */
export function parseInventory(path: string, text: string): Inventory {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new HarnessError('config', `inventory ${path} is not valid JSON: ${(err as Error).message}`, { hint: 'fix the file (it is JSON: no comments, no trailing commas)' });
  }
  const machines = (json as Json | null)?.machines;
  if (typeof machines !== 'object' || machines === null || Array.isArray(machines)) {
    throw new HarnessError('config', `inventory ${path} has no "machines" object`, { hint: 'the file is {"machines": {"NAME": {...}}}; dax-harness lab add writes one' });
  }
  return { path, machines: Object.entries(machines as Record<string, Json>).map(([n, m]) => parseMachine(path, n, m)) };
}

/** Reads the inventory (an empty one if the file does not exist yet). */
export function readInventory(path: string): Inventory {
  if (!existsSync(path)) return { path, machines: [] };
  return parseInventory(path, readFileSync(path, 'utf8'));
}

/** Returns the machine NAME, or a config error listing the machines there are. */
export function findMachine(inv: Inventory, name: string): LabMachine {
  const m = inv.machines.find((x) => x.name === name);
  if (!m) {
    throw new HarnessError('config', `no lab machine "${name}" in ${inv.path}`, {
      hint: inv.machines.length > 0 ? `the machines are ${inv.machines.map((x) => x.name).join(', ')}` : 'add one: dax-harness lab add NAME --host H --user U, then dax-harness lab trust NAME',
    });
  }
  return m;
}

/** Returns the JSON object of a machine, as the inventory file keeps it. */
export function formatMachine(m: LabMachine): Json {
  return {
    host: m.host,
    port: m.port,
    user: m.user,
    identity: m.identity,
    hostKeys: m.hostKeys,
    privilege: m.privilege,
    console: m.console,
    power: m.power,
    boot: m.boot,
    namespaces: m.namespaces,
    timeouts: m.timeouts,
    maxFailures: m.maxFailures,
    health: m.health,
  };
}

/**
 * Changes one machine in the inventory file and writes it back atomically: the file is read
 * again first, so a human's edits to other machines are kept.
 */
export function updateMachine(path: string, name: string, change: (m: LabMachine | null) => LabMachine): LabMachine {
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '{"machines": {}}';
  const inv = parseInventory(path, text);
  const raw = JSON.parse(text) as { machines: Record<string, Json> } & Json;
  const next = change(inv.machines.find((m) => m.name === name) ?? null);
  raw.machines[name] = formatMachine(next);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(raw, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
  return next;
}

/** Returns the machine after a run: failures in a row counted, unhealthy at the limit. */
export function planHealthAfterRun(m: LabMachine, infraFailure: boolean, at: string): LabHealth {
  if (!infraFailure) return { failures: 0, unhealthy: m.health.unhealthy };
  const failures = m.health.failures + 1;
  return { failures, unhealthy: failures >= m.maxFailures ? `${failures} infrastructure failures in a row (last ${at})` : m.health.unhealthy };
}
