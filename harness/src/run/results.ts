// The run directory results/<run-id>/: TAP, console log, dmesg, run.json and one JSON record
// per test, each written as it happens so a crash or Ctrl-C loses nothing already known.
import { appendFileSync, closeSync, constants, accessSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync, fsyncSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { HarnessError } from '../core/errors.js';

/** Returns a run id: UTC time, a label and a random suffix, safe as a directory name. */
export function formatRunId(now: Date, label: string, rand = randomBytes(2).toString('hex')): string {
  const ts = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace('T', '-');
  return `${ts}-${label.replace(/[^A-Za-z0-9._-]/g, '_')}-${rand}`;
}

// Turns a failed write into an error that names the file and the fix (a full disk above all).
function writeError(path: string, err: unknown): HarnessError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOSPC' ? 'no space left on the device' : code === 'EDQUOT' ? 'disk quota exceeded' : (err as Error).message;
  return new HarnessError('config', `cannot write ${path}: ${why}`, {
    hint: 'free some space there, or pass --results DIR on a filesystem with room; what was written before stays valid',
    cause: err,
  });
}

/** Makes the results root if needed and throws a config error unless it is writable. */
export function ensureResultsRoot(root: string): void {
  try {
    mkdirSync(root, { recursive: true });
    accessSync(root, constants.W_OK);
  } catch (err) {
    throw new HarnessError('config', `results directory ${root} is not writable: ${(err as Error).message}`, {
      hint: 'pass --results DIR with a directory you can write to',
      cause: err,
    });
  }
}

export class RunStore {
  readonly dir: string;
  private readonly tapFd: number;

  private constructor(dir: string) {
    this.dir = dir;
    this.tapFd = openSync(join(dir, 'results.tap'), 'wx');
  }

  /** Creates a new, never reused run directory under root. */
  static create(root: string, label: string): RunStore {
    ensureResultsRoot(root);
    for (let i = 0; i < 5; i++) {
      const dir = join(root, formatRunId(new Date(), label));
      try {
        // Not recursive: fails if the directory exists, so a run never overwrites another.
        mkdirSync(dir);
        return new RunStore(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    throw new HarnessError('internal', `could not make a fresh run directory under ${root}`);
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** Appends TAP lines and flushes them to disk. */
  tap(lines: string[]): void {
    try {
      writeSync(this.tapFd, `${lines.join('\n')}\n`);
      fsyncSync(this.tapFd);
    } catch (err) {
      throw writeError(join(this.dir, 'results.tap'), err);
    }
  }

  /** Appends one JSON record to tests.jsonl. */
  record(rec: object): void {
    const path = join(this.dir, 'tests.jsonl');
    try {
      appendFileSync(path, `${JSON.stringify(rec)}\n`);
    } catch (err) {
      throw writeError(path, err);
    }
  }

  /** Writes a whole file atomically (write + rename): a failed write leaves the old one whole. */
  writeFile(name: string, data: string | Buffer): void {
    const tmp = join(this.dir, `.${name}.tmp`);
    try {
      writeFileSync(tmp, data);
      renameSync(tmp, join(this.dir, name));
    } catch (err) {
      rmSync(tmp, { force: true });
      throw writeError(join(this.dir, name), err);
    }
  }

  close(): void {
    closeSync(this.tapFd);
  }
}
