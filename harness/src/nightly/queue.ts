// The series queue: a directory like a maildir, `new/` (series waiting, as b4 writes them:
// .mbx), `cur/` (claimed by a worker) and `done/` (one directory per series, by its patchset
// hash, holding the verdict and the reply). A worker claims a series by renaming it from new/
// to cur/: rename is atomic, so two workers never take the same one.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { alive } from '../core/proc.js';
import { HarnessError } from '../core/errors.js';
import { headerOf, parseSeries, patchsetHash, type Patch } from '../kernel/series.js';

export interface QueueLayout {
  root: string;
  new: string;
  cur: string;
  done: string;
  config: string;
}

/** Returns the paths of a queue directory. */
export function planQueueLayout(root: string): QueueLayout {
  return { root, new: join(root, 'new'), cur: join(root, 'cur'), done: join(root, 'done'), config: join(root, 'queue.json') };
}

/** One kernel line the queue tests every series on. */
export interface QueueLine {
  /** Its name in verdicts and replies (debian-6.1, or your tree's). */
  name: string;
  /** debian-6.1 or a kernel git tree. */
  tree: string;
  /** The base when the series names none (default: the tree's import, or HEAD). */
  base: string | null;
}

export interface QueueConfig {
  lines: QueueLine[];
  /** Test names, or "fast" (default: every test). */
  tests: string | null;
  /** Filesystems, comma separated (default: ext4,xfs). */
  fs: string | null;
}

/** Parses queue.json; throws a config error naming the field that is wrong. */
export function parseQueueConfig(text: string, path: string): QueueConfig {
  const bad = (what: string): HarnessError =>
    new HarnessError('config', `${path}: ${what}`, {
      hint: 'queue.json is {"lines": [{"name": "debian-6.1", "tree": "debian-6.1", "base": null}], "tests": "fast", "fs": "ext4,xfs"}',
    });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw bad(`not valid JSON (${(err as Error).message})`);
  }
  const o = raw as Record<string, unknown>;
  if (!o || typeof o !== 'object' || !Array.isArray(o.lines) || o.lines.length === 0) throw bad('"lines" must be a non-empty list of kernel lines');
  const lines = o.lines.map((l: unknown, i: number): QueueLine => {
    const x = l as Record<string, unknown>;
    if (!x || typeof x.name !== 'string' || !/^[A-Za-z0-9._-]+$/.test(x.name)) throw bad(`lines[${i}].name must be a name of letters, digits, ".", "_" or "-"`);
    if (typeof x.tree !== 'string' || x.tree === '') throw bad(`lines[${i}].tree must be debian-6.1 or the path of a kernel git tree`);
    if (x.base !== undefined && x.base !== null && typeof x.base !== 'string') throw bad(`lines[${i}].base must be a commit, a tag, or null`);
    return { name: x.name, tree: x.tree, base: (x.base as string | null | undefined) ?? null };
  });
  const names = lines.map((l) => l.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw bad(`two lines are named "${dup}"`);
  for (const k of ['tests', 'fs'] as const) if (o[k] !== undefined && o[k] !== null && typeof o[k] !== 'string') throw bad(`"${k}" must be a comma-separated string`);
  return { lines, tests: (o.tests as string | undefined) ?? null, fs: (o.fs as string | undefined) ?? null };
}

/** Returns the commit a series says it applies to (`base-commit:` of git format-patch --base / b4). */
export function parseBaseCommit(text: string): string | null {
  return /^base-commit: ([0-9a-f]{7,40})\s*$/m.exec(text)?.[1] ?? null;
}

export interface QueuedSeries {
  /** The file's name in the queue. */
  name: string;
  patches: Patch[];
  /** KCIDB's patchset hash of its patches: a series is run once, whatever its file is called. */
  id: string;
  base: string | null;
  /** The message a reply answers: the cover letter, else the first patch. */
  thread: { subject: string; messageId: string | null; from: string };
}

/** Reads a series file's text into what the queue needs (pure). */
export function describeQueuedSeries(name: string, text: string): QueuedSeries {
  const patches = parseSeries(text, name);
  const cover = patches.find((p) => !p.hasDiff || p.number === 0) ?? patches[0]!;
  // The reply keeps the subject as sent, [PATCH v2 0/3] and all, so it threads in mail readers.
  const subject = headerOf(cover.raw, 'Subject') || cover.subject;
  return { name, patches, id: patchsetHash(patches), base: parseBaseCommit(text), thread: { subject, messageId: cover.messageId, from: cover.from } };
}

/** Makes the queue's directories (and keeps anything already in them). */
export function ensureQueue(q: QueueLayout): void {
  for (const d of [q.new, q.cur, q.done]) mkdirSync(d, { recursive: true });
}

/** Reads queue.json. */
export function readQueueConfig(q: QueueLayout): QueueConfig {
  if (!existsSync(q.config)) {
    throw new HarnessError('config', `${q.config} is missing`, { hint: 'write the kernel lines to test each series on, e.g. {"lines": [{"name": "debian-6.1", "tree": "debian-6.1"}]}' });
  }
  return parseQueueConfig(readFileSync(q.config, 'utf8'), q.config);
}

/** Copies series files into new/ (keeping the user's files); returns the names queued. */
export function enqueue(q: QueueLayout, files: string[]): string[] {
  ensureQueue(q);
  return files.map((f) => {
    const text = readFileSync(f, 'utf8');
    describeQueuedSeries(basename(f), text); // refuses a damaged series before it is queued
    const name = basename(f);
    const tmp = join(q.root, `.${name}.tmp-${process.pid}`);
    writeFileSync(tmp, text);
    // Into new/ only when whole: a worker never claims half a file.
    renameSync(tmp, join(q.new, name));
    return name;
  });
}

export interface Claimed {
  series: QueuedSeries;
  /** Its file under cur/. */
  path: string;
}

// Who holds a claim: a worker that dies (killed, machine rebooted) leaves its series in cur/,
// and the next worker on the same host puts it back in new/ instead of losing it.
interface ClaimRecord {
  pid: number;
  host: string;
  at: string;
}
const claimFile = (q: QueueLayout, name: string): string => join(q.cur, `.${name}.claim`);

/** Puts back into new/ the series whose worker on this host is gone; returns their names. */
export function requeueAbandoned(q: QueueLayout, isAlive: (pid: number) => boolean = alive): string[] {
  ensureQueue(q);
  const back: string[] = [];
  for (const name of readdirSync(q.cur).filter((n) => !n.startsWith('.'))) {
    let holder: ClaimRecord | null = null;
    try {
      holder = JSON.parse(readFileSync(claimFile(q, name), 'utf8')) as ClaimRecord;
    } catch {
      // Claimed but not yet recorded (the worker is between rename and write): leave it.
      continue;
    }
    if (holder.host !== hostname() || isAlive(holder.pid)) continue;
    try {
      renameSync(join(q.cur, name), join(q.new, name));
      rmSync(claimFile(q, name), { force: true });
      back.push(name);
    } catch (err) {
      // Another worker requeued it first.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return back;
}

/** Claims the oldest waiting series (by name) for this worker; null when none is left. A series
 *  already done (same patchset hash) is moved straight to done/ as a duplicate. */
export function claimNext(q: QueueLayout, onDuplicate: (name: string, id: string) => void = () => {}): Claimed | null {
  ensureQueue(q);
  for (const name of readdirSync(q.new).filter((n) => !n.startsWith('.')).sort()) {
    const path = join(q.cur, name);
    try {
      renameSync(join(q.new, name), path);
    } catch (err) {
      // Another worker took it between readdir and rename.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    writeFileSync(claimFile(q, name), `${JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() } satisfies ClaimRecord)}\n`);
    const series = describeQueuedSeries(name, readFileSync(path, 'utf8'));
    if (existsSync(join(q.done, series.id, 'verdict.json'))) {
      rmSync(claimFile(q, name), { force: true });
      renameSync(path, join(q.done, series.id, `duplicate-${name}`));
      onDuplicate(name, series.id);
      continue;
    }
    return { series, path };
  }
  return null;
}

/** Files a finished series under done/<id>/: its file, and the files given (verdict, reply, ...). */
export function fileDone(q: QueueLayout, c: Claimed, files: Record<string, string>): string {
  const dir = join(q.done, c.series.id);
  mkdirSync(dir, { recursive: true });
  // verdict.json last: its presence says the series is done.
  for (const [name, text] of Object.entries(files).sort(([a], [b]) => (a === 'verdict.json' ? 1 : b === 'verdict.json' ? -1 : a.localeCompare(b)))) {
    writeFileSync(join(dir, `.${name}.tmp`), text);
    renameSync(join(dir, `.${name}.tmp`), join(dir, name));
  }
  renameSync(c.path, join(dir, c.series.name));
  rmSync(claimFile(q, c.series.name), { force: true });
  return dir;
}
