// The lease on a lab machine: one run at a time, taken with an atomic mkdir on the machine
// itself (so two harness hosts cannot both win), kept alive by a heartbeat, and taken over only
// when its holder is gone and its heartbeat expired. Pure planners and a parser; lab-session.ts
// runs them over SSH.
import type { GuestCommand } from '../ssh-target.js';

/** Everything the harness keeps on a lab machine lives under this directory. */
export const LAB_ROOT = '/var/lib/dax-harness';

export interface LeaseHolder {
  runId: string;
  /** The harness host that holds it. */
  host: string;
  pid: number;
  user: string;
  started: string;
  /** The lease lapses this long after its last heartbeat. */
  ttlS: number;
}

export type LeaseState =
  | { kind: 'acquired' }
  | { kind: 'held'; holder: LeaseHolder | null; heartbeat: number; now: number };

/** Returns the command that takes the lease if it is free, or reports who holds it. */
export function planAcquire(holder: LeaseHolder, root = LAB_ROOT): GuestCommand {
  // mkdir is atomic on every local filesystem: exactly one of several racing runs creates it.
  const script = [
    'umask 022; mkdir -p "$1" || exit 10',
    'now=$(date +%s)',
    'if mkdir "$1/lease" 2>/dev/null; then printf "%s\\n" "$2" > "$1/lease/holder.json" && echo "$now" > "$1/lease/heartbeat" && echo acquired && exit 0; exit 11; fi',
    'echo held; echo "now $now"; echo "heartbeat $(cat "$1/lease/heartbeat" 2>/dev/null || echo 0)"; cat "$1/lease/holder.json" 2>/dev/null; true',
  ].join('\n');
  return { argv: ['sh', '-c', script, 'lease', root, JSON.stringify(holder)], timeoutMs: 20_000 };
}

/** Returns what planAcquire's command printed, parsed. */
export function parseLeaseState(stdout: string): LeaseState {
  const lines = stdout.trim().split('\n');
  if (lines[0] === 'acquired') return { kind: 'acquired' };
  if (lines[0] !== 'held') throw new Error(`unexpected answer from the lease command: ${stdout.slice(0, 200)}`);
  const num = (key: string): number => Number(/^\S+ (\d+)$/.exec(lines.find((l) => l.startsWith(`${key} `)) ?? '')?.[1] ?? 0);
  const json = lines.slice(3).join('\n').trim();
  let holder: LeaseHolder | null = null;
  try {
    holder = json ? (JSON.parse(json) as LeaseHolder) : null;
  } catch {
    holder = null;
  }
  return { kind: 'held', holder, heartbeat: num('heartbeat'), now: num('now') };
}

/**
 * Returns whether a held lease may be taken over, and why (or why not). Its heartbeat must have
 * expired (by the machine's own clock, so clock skew between hosts does not matter), and its
 * holder must be gone: a holder on this host whose process still lives keeps it.
 */
export function decideTakeover(state: Extract<LeaseState, { kind: 'held' }>, here: { host: string; alive: (pid: number) => boolean }): { takeOver: boolean; why: string } {
  const h = state.holder;
  const age = state.now - state.heartbeat;
  const ttl = h?.ttlS ?? 0;
  const who = h ? `run ${h.runId} of ${h.user}@${h.host} (pid ${h.pid}, since ${h.started})` : 'an unreadable holder';
  if (age <= ttl) return { takeOver: false, why: `held by ${who}, last heartbeat ${age} s ago (lapses after ${ttl} s)` };
  if (h && h.host === here.host && here.alive(h.pid)) return { takeOver: false, why: `held by ${who}: its heartbeat lapsed ${age} s ago but the process still runs on this host` };
  return { takeOver: true, why: `the lease of ${who} lapsed ${age} s ago (after ${ttl} s)${h && h.host === here.host ? ' and its process is gone' : ''}` };
}

/** Returns the command that takes over a lapsed lease: only if its heartbeat is still the one seen. */
export function planTakeover(holder: LeaseHolder, seenHeartbeat: number, root = LAB_ROOT): GuestCommand {
  // Moving the old lease aside is atomic too; the heartbeat check keeps a run from stealing a
  // lease another run has just taken over and renewed.
  const script = [
    'hb=$(cat "$1/lease/heartbeat" 2>/dev/null || echo 0)',
    '[ "$hb" = "$3" ] || { echo renewed; exit 12; }',
    'stale="$1/lease.stale.$$"',
    'mv "$1/lease" "$stale" || exit 13',
    'mkdir "$1/lease" || exit 14',
    'printf "%s\\n" "$2" > "$1/lease/holder.json" && date +%s > "$1/lease/heartbeat" && rm -rf "$stale" && echo acquired',
  ].join('\n');
  return { argv: ['sh', '-c', script, 'takeover', root, JSON.stringify(holder), String(seenHeartbeat)], timeoutMs: 20_000 };
}

/** Returns the heartbeat command; it fails (exit 12) if the lease is no longer this run's. */
export function planHeartbeat(runId: string, root = LAB_ROOT): GuestCommand {
  const script = 'grep -qF "\\"runId\\":\\"$2\\"" "$1/lease/holder.json" 2>/dev/null || exit 12; date +%s > "$1/lease/heartbeat.new" && mv "$1/lease/heartbeat.new" "$1/lease/heartbeat"';
  return { argv: ['sh', '-c', script, 'heartbeat', root, runId], timeoutMs: 15_000 };
}

/** Returns the command that releases the lease: this run's only, or any (`lab release`, force). */
export function planRelease(runId: string | null, root = LAB_ROOT): GuestCommand {
  const script =
    runId === null
      ? '[ -d "$1/lease" ] || { echo free; exit 0; }; cat "$1/lease/holder.json" 2>/dev/null; rm -rf "$1/lease" && echo released'
      : 'grep -qF "\\"runId\\":\\"$2\\"" "$1/lease/holder.json" 2>/dev/null || { echo "not ours"; exit 0; }; rm -rf "$1/lease" && echo released';
  return { argv: ['sh', '-c', script, 'release', root, runId ?? ''], timeoutMs: 15_000 };
}
