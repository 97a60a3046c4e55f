// The history database: every run indexed into SQLite (better-sqlite3) — kernel, build, series,
// target, each point's outcome and failure signature, durations, infrastructure events — so
// "when did this start failing, on which kernels, how flaky" is one query. results/ stays the
// source of truth: `dax-harness index` rebuilds the database from it at any time.
import Database from 'better-sqlite3';
import { failureFingerprint } from '../campaign/compare.js';
import { isRed } from '../run/run.js';
import { lineKey, type RunRecords } from '../report/run-records.js';

export type HistoryDb = Database.Database;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY,
  dir TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  kernel_release TEXT NOT NULL,
  kernel_line TEXT NOT NULL,
  line_key TEXT NOT NULL,
  build TEXT NOT NULL,
  origin TEXT NOT NULL,
  package_version TEXT,
  commit_hash TEXT,
  series_hash TEXT,
  target TEXT NOT NULL,
  model TEXT,
  exit_code INTEGER,
  interrupted TEXT
);
CREATE TABLE IF NOT EXISTS points (
  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  point TEXT NOT NULL,
  test TEXT NOT NULL,
  fs TEXT NOT NULL,
  outcome TEXT NOT NULL,
  known_as TEXT,
  reason TEXT NOT NULL,
  signature TEXT,
  duration_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  PRIMARY KEY (run_id, point)
);
CREATE INDEX IF NOT EXISTS points_by_test ON points(test, fs);
CREATE TABLE IF NOT EXISTS infra_events (
  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  point TEXT,
  attempt INTEGER NOT NULL,
  boot INTEGER,
  action TEXT NOT NULL,
  reason TEXT NOT NULL
);
`;

/** Opens (or creates) the database at path. */
export function openHistoryDb(path: string): HistoryDb {
  const db = new Database(path);
  // WAL: a reader (the history command, a dashboard) never blocks a run indexing itself.
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.exec(SCHEMA);
  return db;
}

/** Indexes one run (replacing what was indexed of it before). */
export function indexRun(db: HistoryDb, r: RunRecords): void {
  const k = r.run.kernel;
  const put = db.transaction(() => {
    db.prepare('DELETE FROM runs WHERE run_id = ?').run(r.run.runId);
    db.prepare(
      `INSERT INTO runs (run_id, dir, started_at, finished_at, kernel_release, kernel_line, line_key, build, origin, package_version, commit_hash, series_hash, target, model, exit_code, interrupted)
       VALUES (@run_id, @dir, @started_at, @finished_at, @kernel_release, @kernel_line, @line_key, @build, @origin, @package_version, @commit_hash, @series_hash, @target, @model, @exit_code, @interrupted)`,
    ).run({
      run_id: r.run.runId,
      dir: r.dir,
      started_at: r.run.startedAt,
      finished_at: r.run.finishedAt ?? null,
      kernel_release: k.release,
      kernel_line: r.source.line,
      line_key: lineKey(r),
      build: r.build,
      origin: k.origin,
      package_version: k.packageVersion ?? null,
      commit_hash: r.source.commit,
      series_hash: r.source.series?.hash ?? null,
      target: r.target,
      model: r.run.model?.name ?? null,
      exit_code: r.run.exitCode ?? null,
      interrupted: r.run.interrupted ?? null,
    });
    const point = db.prepare(
      `INSERT INTO points (run_id, point, test, fs, outcome, known_as, reason, signature, duration_ms, attempts)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const t of r.tests) {
      const red = isRed(t.outcome);
      point.run(r.run.runId, t.id, t.test, t.fs, t.outcome, t.knownAs ?? null, t.reason, red ? failureFingerprint(t) : null, t.durationMs, Math.max(1, t.attempts.length));
    }
    const ev = db.prepare('INSERT INTO infra_events (run_id, at, kind, point, attempt, boot, action, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    for (const e of r.run.infra ?? []) ev.run(r.run.runId, e.at, e.kind, e.point, e.attempt, e.boot, e.action, e.reason);
  });
  put();
}

/** Empties the database and indexes the runs again (results/ is the source of truth). */
export function rebuildIndex(db: HistoryDb, runs: RunRecords[]): void {
  db.transaction(() => {
    db.exec('DELETE FROM infra_events; DELETE FROM points; DELETE FROM runs;');
    for (const r of runs) indexRun(db, r);
  })();
}

/** One point of one run, as the history of a test reads it. */
export interface HistoryRow {
  run_id: string;
  started_at: string;
  line_key: string;
  kernel_release: string;
  build: string;
  point: string;
  fs: string;
  outcome: string;
  known_as: string | null;
  reason: string;
  signature: string | null;
  attempts: number;
}

/** Returns every indexed point of a test (fs/test, or every fs of a test name), oldest first. */
export function queryTestHistory(db: HistoryDb, test: string): HistoryRow[] {
  const [fs, name] = test.includes('/') ? test.split('/', 2) : [null, test];
  return db
    .prepare(
      `SELECT r.run_id, r.started_at, r.line_key, r.kernel_release, r.build, p.point, p.fs, p.outcome, p.known_as, p.reason, p.signature, p.attempts
       FROM points p JOIN runs r ON r.run_id = p.run_id
       WHERE p.test = ? AND (? IS NULL OR p.fs = ?)
       ORDER BY r.started_at, r.run_id, p.fs`,
    )
    .all(name, fs, fs) as HistoryRow[];
}
