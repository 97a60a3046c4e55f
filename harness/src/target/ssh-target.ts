// One persistent SSH connection to a test target (a QEMU guest or a lab machine), with
// time-bounded commands, streamed output and uploads. The host key is always verified.
import { createHash } from 'node:crypto';
import { Client, type ClientChannel } from 'ssh2';
import pRetry, { AbortError } from 'p-retry';
import { HarnessError } from '../core/errors.js';
import { shellQuote, type ProcessResult } from '../core/proc.js';

export interface SshTargetConfig {
  host: string;
  port: number;
  username: string;
  /** The client key (OpenSSH or PEM text); or use the agent. */
  privateKey?: string;
  /** An ssh-agent socket to authenticate with (lab machines: the user's own agent). */
  agent?: string;
  /**
   * The host key the server must present: the raw key blob (a guest's key, generated per boot),
   * or the SHA256 fingerprints pinned for a lab machine (`SHA256:...`, as ssh-keygen -l prints).
   */
  hostKey: Buffer | { fingerprints: string[] };
  /** Words before every command on the target (`sudo -n` on a lab machine that is not root). */
  prefix?: string[];
  /** Per-attempt handshake timeout. */
  readyTimeoutMs: number;
  /** Attempts at connecting (p-retry), for a guest whose sshd is still starting. */
  connectRetries: number;
  /** Abort retries after this long in all. */
  connectDeadlineMs: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
}

export interface GuestCommand {
  argv: string[];
  timeoutMs: number;
  input?: Buffer | string;
}

/** A guest command's result has the same shape as a host process's. */
export type GuestResult = ProcessResult;

/** Returns the key blob of an OpenSSH public key line ("ssh-ed25519 AAAA... comment"). */
export function parsePublicKeyLine(line: string): { type: string; blob: Buffer } {
  const m = /^(ssh-[a-z0-9-]+|ecdsa-[a-z0-9-]+)\s+([A-Za-z0-9+/=]+)/.exec(line.trim());
  if (!m?.[1] || !m[2]) throw new Error(`not an OpenSSH public key line: ${line.slice(0, 80)}`);
  return { type: m[1], blob: Buffer.from(m[2], 'base64') };
}

/** Returns the SHA256 fingerprint of a host key blob, as `ssh-keygen -l` prints it. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Returns a command for a message: shell-quoted, cut to one readable line. */
export function describe(argv: string[]): string {
  const q = shellQuote(argv);
  return q.length > 80 ? `${q.slice(0, 77)}...` : q;
}

/** Returns the remote shell line for a command: a guest-side kill timer around the argv. */
export function planRemoteLine(cmd: GuestCommand, prefix: readonly string[] = []): string {
  // The guest enforces the bound itself (SIGKILL after the timeout) so a runaway helper dies
  // even if the host side is gone; the host keeps its own timer as a second line of defence.
  // sudo goes outside the timer, so the timer (and the helper) run as root.
  const secs = Math.max(1, Math.ceil(cmd.timeoutMs / 1000));
  return `${prefix.length > 0 ? `${shellQuote(prefix)} ` : ''}timeout -s KILL ${secs} ${shellQuote(cmd.argv)}`;
}

export class SshTarget {
  private closedReason: string | null = null;
  private readonly closeListeners: ((reason: string) => void)[] = [];

  /** Wraps a client that is already ready; use SshTarget.connect to make one. */
  constructor(
    private readonly client: Client,
    readonly config: SshTargetConfig,
  ) {
    client.on('close', () => this.markClosed('connection closed'));
    client.on('end', () => this.markClosed('connection ended'));
    client.on('error', (err: Error) => this.markClosed(`connection error: ${err.message}`));
  }

  /** Connects, retrying while the server is not up yet; verifies the host key on every try. */
  static async connect(config: SshTargetConfig, shouldStop: () => string | null = () => null): Promise<SshTarget> {
    const started = Date.now();
    const attempt = async (): Promise<SshTarget> => {
      const stop = shouldStop();
      if (stop) throw new AbortError(stop);
      return await connectOnce(config);
    };
    try {
      return await pRetry(attempt, {
        retries: config.connectRetries,
        minTimeout: 250,
        maxTimeout: 1000,
        factor: 1.5,
        shouldRetry: ({ error }) => !(error instanceof HostKeyMismatch) && Date.now() - started < config.connectDeadlineMs && !shouldStop(),
      });
    } catch (err) {
      if (err instanceof HostKeyMismatch) {
        const pinned = Buffer.isBuffer(config.hostKey) ? fingerprintOf(config.hostKey) : config.hostKey.fingerprints.join(', ') || '(none pinned)';
        throw new HarnessError('ssh', `host key of ${config.host}:${config.port} has changed: it presented ${err.message}, the pinned key is ${pinned}; nothing was run there`, {
          hint: 'something else answers on that address, or the machine was reinstalled; if you know why it changed, pin the new key (dax-harness lab trust NAME)',
          cause: err,
        });
      }
      const e = err instanceof Error ? err : new Error(String(err));
      throw new HarnessError('ssh', `cannot connect to ${config.username}@${config.host}:${config.port}: ${e.message}`, {
        hint: 'check that sshd runs on the target and the key is authorized',
        cause: err,
      });
    }
  }

  get closed(): string | null {
    return this.closedReason;
  }

  /** Calls fn once when the connection is lost (or at once if it already is). */
  onClose(fn: (reason: string) => void): void {
    if (this.closedReason) fn(this.closedReason);
    else this.closeListeners.push(fn);
  }

  private markClosed(reason: string): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    for (const fn of this.closeListeners.splice(0)) fn(reason);
  }

  /** Runs a command; resolves with its result (timedOut set when the bound hit), rejects only if the connection is lost. */
  exec(cmd: GuestCommand, onData?: (stream: 'stdout' | 'stderr', chunk: string) => void): Promise<GuestResult> {
    const started = performance.now();
    const line = planRemoteLine(cmd, this.config.prefix);
    return new Promise((resolve, reject) => {
      if (this.closedReason) {
        reject(new HarnessError('ssh', `connection to the target is gone (${this.closedReason}) before running ${describe(cmd.argv)}`));
        return;
      }
      let stdout = '';
      let stderr = '';
      let exitCode: number | null = null;
      let signal: string | null = null;
      let timedOut = false;
      let settled = false;
      let channel: ClientChannel | null = null;
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve({ argv: cmd.argv, exitCode, signal, timedOut, stdout, stderr, durationMs: Math.round(performance.now() - started) });
      };
      // Host-side bound: the guest's own `timeout` should fire first; if the guest is wedged
      // we give up on the channel a few seconds later.
      const timer = setTimeout(() => {
        timedOut = true;
        channel?.close();
        finish();
      }, cmd.timeoutMs + 5000);
      this.onClose((reason) => finish(new HarnessError('ssh', `connection lost (${reason}) while running ${describe(cmd.argv)}`)));
      this.client.exec(line, (err, ch) => {
        if (err) {
          finish(new HarnessError('ssh', `cannot start ${describe(cmd.argv)}: ${err.message}`, { cause: err }));
          return;
        }
        channel = ch;
        ch.on('data', (d: Buffer) => {
          const s = d.toString('utf8');
          stdout += s;
          onData?.('stdout', s);
        });
        ch.stderr.on('data', (d: Buffer) => {
          const s = d.toString('utf8');
          stderr += s;
          onData?.('stderr', s);
        });
        ch.on('exit', (code: number | null, sig?: string) => {
          exitCode = code;
          signal = sig ?? null;
          // The guest-side timer fired: busybox timeout exits 137 after killing the command;
          // coreutils timeout signals its whole process group, itself included (signal KILL).
          // Only counted when the bound has really elapsed: an early SIGKILL (OOM) is not a timeout.
          const killed = code === 137 || code === 124 || sig === 'KILL' || sig === 'SIGKILL';
          if (killed && performance.now() - started >= cmd.timeoutMs * 0.9) timedOut = true;
        });
        ch.on('close', () => finish());
        if (cmd.input !== undefined) ch.end(cmd.input);
        else ch.end();
      });
    });
  }

  /** Writes data to a file on the target (through `cat`, so no SFTP server is needed). */
  async upload(data: Buffer, remotePath: string, mode = 0o644, timeoutMs = 60_000): Promise<void> {
    const r = await this.exec({ argv: ['sh', '-c', `cat > "$1" && chmod ${mode.toString(8)} "$1"`, 'upload', remotePath], input: data, timeoutMs });
    if (r.exitCode !== 0) {
      throw new HarnessError('ssh', `upload to ${remotePath} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
    }
  }

  close(): void {
    this.markClosed('closed by the harness');
    this.client.end();
  }

  /** Declares the connection lost (e.g. QEMU exited): pending and later commands reject at once. */
  destroy(reason: string): void {
    this.markClosed(reason);
    this.client.destroy();
  }
}

class HostKeyMismatch extends Error {}

/** Returns true if a presented host key blob is the expected one. */
export function hostKeyMatches(expected: SshTargetConfig['hostKey'], blob: Buffer): boolean {
  if (Buffer.isBuffer(expected)) return blob.equals(expected);
  return expected.fingerprints.includes(fingerprintOf(blob));
}

function connectOnce(config: SshTargetConfig): Promise<SshTarget> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let mismatch: string | null = null;
    client.once('ready', () => resolve(new SshTarget(client, config)));
    // ssh2 may emit several errors for one failed attempt (e.g. timeout, then connection
    // lost): keep a listener for the client's whole life so none is unhandled.
    client.on('error', (err: Error) => {
      client.end();
      reject(mismatch ? new HostKeyMismatch(mismatch) : err);
    });
    client.connect({
      host: config.host,
      port: config.port,
      username: config.username,
      privateKey: config.privateKey,
      agent: config.agent,
      readyTimeout: config.readyTimeoutMs,
      keepaliveInterval: config.keepaliveIntervalMs,
      keepaliveCountMax: config.keepaliveCountMax,
      hostVerifier: (key: Buffer) => {
        const ok = Buffer.isBuffer(key) && hostKeyMatches(config.hostKey, key);
        if (!ok) mismatch = Buffer.isBuffer(key) ? fingerprintOf(key) : 'a key of unknown form';
        return ok;
      },
    });
  });
}
