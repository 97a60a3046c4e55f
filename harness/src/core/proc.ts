// Runs host processes from plain-data plans and returns one result shape for success and
// failure alike; callers decide what a non-zero exit means.
import { execa } from 'execa';

export interface CommandPlan {
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  input?: string | Buffer;
}

export interface ProcessResult {
  argv: string[];
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Returns argv as one line a user can paste into a POSIX shell. */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Runs a plan to completion; never throws for a non-zero exit, only for a missing program. */
export async function runCommand(plan: CommandPlan): Promise<ProcessResult> {
  const [file, ...args] = plan.argv;
  if (!file) throw new Error('runCommand: empty argv');
  const started = performance.now();
  const r = await execa(file, args, {
    env: plan.env,
    cwd: plan.cwd,
    timeout: plan.timeoutMs,
    input: plan.input,
    reject: false,
    stripFinalNewline: false,
    encoding: 'utf8',
  });
  if (r.failed && r.exitCode === undefined && !r.timedOut && !r.isTerminated) {
    // execa reports a spawn failure (ENOENT) as failed with no exit code.
    throw new Error(`cannot run ${file}: ${r.shortMessage}`);
  }
  return {
    argv: plan.argv,
    exitCode: r.exitCode ?? null,
    signal: r.signal ?? null,
    timedOut: r.timedOut,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    durationMs: Math.round(performance.now() - started),
  };
}

/** Runs a plan and throws (with its stderr) unless it exits 0. */
export async function runChecked(plan: CommandPlan, what: string): Promise<ProcessResult> {
  const r = await runCommand(plan);
  if (r.exitCode !== 0) {
    const tail = (r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n');
    throw new Error(`${what} failed (${shellQuote(plan.argv)} exited ${r.exitCode ?? r.signal}${r.timedOut ? ', timed out' : ''}):\n${tail}`);
  }
  return r;
}

/** Returns true if a process with this pid exists (signal 0 probes without sending). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Resolves when cond() holds (polled every 50 ms) or the time is up, whichever first. */
export async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
