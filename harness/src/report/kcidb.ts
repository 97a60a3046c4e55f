// KCIDB v5.3 data of runs (pure): the checkouts, builds and tests KernelCI's common results
// database ingests (`kcidb-submit`). The schema is kcidb-io's v05_03; a copy the tests validate
// against is in test/fixtures/kcidb/.
import { createHash } from 'node:crypto';
import { HarnessError } from '../core/errors.js';
import { KERNEL_LOG_POINT, type Outcome, type TestRecord } from '../run/run.js';
import { formatFailureDetail, formatKnownEntry } from './junit.js';
import { byStartTime, type RunRecords } from './run-records.js';

export type KcidbStatus = 'FAIL' | 'ERROR' | 'MISS' | 'PASS' | 'DONE' | 'SKIP';

export interface KcidbCheckout {
  id: string;
  origin: string;
  tree_name: string;
  git_repository_url?: string;
  git_commit_hash?: string;
  patchset_hash: string;
  message_id?: string;
  comment: string;
  start_time?: string;
  valid: true;
  misc: Record<string, unknown>;
}

export interface KcidbBuild {
  id: string;
  checkout_id: string;
  origin: string;
  comment: string;
  start_time?: string;
  architecture: string;
  config_name: string;
  status: KcidbStatus;
  log_excerpt?: string;
  misc: Record<string, unknown>;
}

export interface KcidbTest {
  id: string;
  build_id: string;
  origin: string;
  path: string;
  status: KcidbStatus;
  comment?: string;
  start_time?: string;
  duration?: number;
  environment: { comment: string; misc: Record<string, unknown> };
  log_excerpt?: string;
  misc: Record<string, unknown>;
}

export interface KcidbData {
  version: { major: 5; minor: 3 };
  checkouts: KcidbCheckout[];
  builds: KcidbBuild[];
  tests: KcidbTest[];
}

export interface KcidbOptions {
  /** The CI system's name in KCIDB (default `daxharness`). */
  origin?: string;
  /** Each run's build.log, by run id, when its run directory holds one. */
  buildLogs?: Map<string, string>;
}

/** The longest log_excerpt KCIDB takes (the schema's maxLength). */
export const KCIDB_LOG_MAX = 16384;

// KCIDB origins (and the part of every id before the colon) match ^[a-z0-9_]+$: no dash.
const ORIGIN = /^[a-z0-9_]+$/;

// Every string in the schema is ^[^\0]*$ (the database cannot hold NUL); dmesg may carry one.
const clean = (s: string): string => s.replace(/\0/g, '');

const stableHash = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 16);

// The schema's date-time is RFC 3339 (run.json's are ISO strings in UTC); KCIDB allows no null,
// so an unreadable time is left out rather than sent empty.
function startTime(r: RunRecords): { start_time?: string } {
  const d = new Date(r.run.startedAt);
  return Number.isNaN(d.getTime()) ? {} : { start_time: d.toISOString() };
}

// ajv-formats' (full) email pattern: message_id is declared `format: email`, and a Message-ID
// is not always an address (`x@localhost` has no dotted domain), so such an id goes to misc.
const EMAIL = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i;

// The last `max` characters of a log, from a line start, with a note of what was cut.
function tail(log: string, max: number): string {
  if (log.length <= max) return log;
  const note = '[... earlier lines cut]\n';
  const t = log.slice(log.length - (max - note.length));
  const nl = t.indexOf('\n');
  return note + (nl >= 0 && nl < t.length - 1 ? t.slice(nl + 1) : t);
}

// Test paths are dot-separated [a-zA-Z0-9_-] words: the dash of the test names is allowed.
const pathWord = (s: string): string => s.replace(/[^a-zA-Z0-9_-]/g, '_') || '_';

function testPath(fs: string, test: string): string {
  return test === KERNEL_LOG_POINT && fs === 'all' ? `dax.${pathWord(test)}` : `dax.${pathWord(fs)}.${pathWord(test)}`;
}

// A known failure is still the kernel failing (KCIDB has no expected-failure status): FAIL,
// with the entry that explains it in misc for dashboards that triage known issues.
const STATUS: Record<Outcome, KcidbStatus> = { pass: 'PASS', fail: 'FAIL', timeout: 'FAIL', crash: 'FAIL', error: 'ERROR', skip: 'SKIP', xfail: 'FAIL' };

// The reason and failed checks first, then as much of the dmesg window as fits, its oldest lines
// dropped first: the reason is what a reader needs, the window the evidence.
function testLog(rec: TestRecord): string | undefined {
  const head = clean(formatFailureDetail(rec));
  if (rec.dmesgExcerpt.length === 0) return head ? head.slice(0, KCIDB_LOG_MAX) : undefined;
  const title = `${head ? `${head}\n` : ''}dmesg:\n`;
  const dmesg = rec.dmesgExcerpt.map(clean);
  const whole = title + dmesg.join('\n');
  if (whole.length <= KCIDB_LOG_MAX) return whole;
  // Room for the note of the lines cut (its count has at most as many digits as the line count).
  const note = (n: number): string => `[... ${n} earlier dmesg line(s) cut]`;
  let room = KCIDB_LOG_MAX - title.length - note(dmesg.length).length - 1;
  if (room <= 0) return head.slice(0, KCIDB_LOG_MAX);
  let from = dmesg.length;
  while (from > 0 && dmesg[from - 1]!.length + 1 <= room) {
    from -= 1;
    room -= dmesg[from]!.length + 1;
  }
  // Not even the last line fits whole: its end, where a panic line's reason is.
  if (from === dmesg.length) return `${title}${note(dmesg.length - 1)}\n${dmesg[dmesg.length - 1]!.slice(-room)}`;
  return [title + note(from), ...dmesg.slice(from)].join('\n');
}

function checkoutOf(r: RunRecords, origin: string): KcidbCheckout {
  const s = r.source;
  const k = r.run.kernel;
  // A checkout is the code: a tree's commit with its series, or the distribution's package.
  const key = s.tree || s.commit ? `git ${s.tree ?? ''} ${s.commit ?? ''} ${s.series?.hash ?? ''}` : `package ${k.origin} ${k.packageVersion ?? ''}`;
  const first = s.series?.patches[0];
  const messageId = first?.messageId && EMAIL.test(first.messageId) ? first.messageId : undefined;
  const misc: Record<string, unknown> = { kernel_origin: k.origin };
  if (k.packageVersion) misc.package_version = k.packageVersion;
  if (s.tree && !/^https:\/\//.test(s.tree)) misc.tree = s.tree;
  if (s.commit && !/^[0-9a-f]{40}$/.test(s.commit)) misc.commit = s.commit;
  if (s.base) misc.base = s.base;
  if (s.series) misc.series_patches = s.series.patches.map((p) => p.subject);
  if (first?.messageId && !messageId) misc.message_id = first.messageId;
  const comment = first ? first.subject : s.tree ? `${s.tree}${s.commit ? `@${s.commit}` : ''}` : `${k.origin}${k.packageVersion ? ` ${k.packageVersion}` : ''}`;
  return {
    id: `${origin}:${stableHash(key)}`,
    origin,
    tree_name: clean(s.line),
    // The schema takes only https:// URLs; a local path or another scheme stays in misc.
    ...(s.tree && /^https:\/\/\S+$/.test(s.tree) ? { git_repository_url: s.tree } : {}),
    ...(s.commit && /^[0-9a-f]{40}$/.test(s.commit) ? { git_commit_hash: s.commit } : {}),
    patchset_hash: s.series?.hash ?? '',
    ...(messageId ? { message_id: messageId } : {}),
    comment: clean(comment),
    ...startTime(r),
    valid: true,
    misc,
  };
}

function buildOf(r: RunRecords, checkoutId: string, origin: string, log: string | undefined): KcidbBuild {
  const k = r.run.kernel;
  const misc: Record<string, unknown> = { kernel_release: k.release, kernel_origin: k.origin };
  if (r.source.buildKey) misc.build_key = r.source.buildKey;
  if (k.packageVersion) misc.package_version = k.packageVersion;
  return {
    id: `${origin}:build-${stableHash(`${checkoutId} ${r.build}`)}`,
    checkout_id: checkoutId,
    origin,
    comment: clean(r.build),
    // The records do not say when a cached build was made: the first run that used it stands in.
    ...startTime(r),
    architecture: 'x86_64',
    config_name: clean(r.source.config),
    // A run exists, so the kernel built (or its package installed) and booted far enough.
    status: 'PASS',
    ...(log ? { log_excerpt: tail(clean(log), KCIDB_LOG_MAX) } : {}),
    misc,
  };
}

function environment(r: RunRecords): KcidbTest['environment'] {
  const misc: Record<string, unknown> = {};
  if (r.run.model?.name) misc.model = r.run.model.name;
  if (r.run.profile?.name) misc.profile = r.run.profile.name;
  if (r.run.accel) misc.accel = r.run.accel;
  return { comment: r.target, misc };
}

function testOf(r: RunRecords, rec: TestRecord, buildId: string, origin: string): KcidbTest {
  const misc: Record<string, unknown> = { run_id: r.run.runId, fs: rec.fs, test: rec.test, outcome: rec.outcome };
  if (rec.outcome === 'xfail') {
    misc.known_failure = clean(formatKnownEntry(rec));
    if (rec.known) misc.known_evidence = clean(rec.known.evidence);
    if (rec.knownAs) misc.known_as = rec.knownAs;
  }
  if (rec.attempts.length > 1) misc.attempts = rec.attempts.length;
  const comment = clean(rec.reason.split('\n')[0] ?? '');
  const log = testLog(rec);
  return {
    id: `${origin}:${r.run.runId}.${rec.id}`,
    build_id: buildId,
    origin,
    path: testPath(rec.fs, rec.test),
    status: STATUS[rec.outcome],
    ...(comment ? { comment } : {}),
    // A record keeps its duration but not its start: the run's start is the closest truth.
    ...startTime(r),
    duration: rec.durationMs / 1000,
    environment: environment(r),
    ...(log ? { log_excerpt: log } : {}),
    misc,
  };
}

// The tests run.json says the run would do but which have no record: the run died first. The
// kernel-log point is left out: runs from before it existed lack it without being cut short.
function missing(r: RunRecords, buildId: string, origin: string): KcidbTest[] {
  const planned = (r.run as { tests?: unknown }).tests;
  if (!Array.isArray(planned)) return [];
  const have = new Set(r.tests.map((t) => t.id));
  const why = `no record: the run ended before this test ran${r.run.interrupted ? ` (interrupted by ${r.run.interrupted})` : ''}`;
  return r.run.filesystems.flatMap((fs) =>
    planned
      .filter((t): t is string => typeof t === 'string' && !have.has(`${fs}-${t}`))
      .map((test) => ({
        id: `${origin}:${r.run.runId}.${fs}-${test}`,
        build_id: buildId,
        origin,
        path: testPath(fs, test),
        status: 'MISS' as const,
        comment: why,
        ...startTime(r),
        environment: environment(r),
        misc: { run_id: r.run.runId, fs, test },
      })),
  );
}

/** Returns the KCIDB v5.3 data of the runs: a checkout per source, a build per kernel, a test per record. */
export function planKcidb(runs: RunRecords[], opts: KcidbOptions = {}): KcidbData {
  const origin = opts.origin ?? 'daxharness';
  if (!ORIGIN.test(origin)) {
    throw new HarnessError('config', `KCIDB origin "${origin}" is not valid: KCIDB origins are lowercase letters, digits and _ only`, {
      hint: 'pass an origin such as daxharness or my_lab',
    });
  }
  const checkouts = new Map<string, KcidbCheckout>();
  const builds = new Map<string, KcidbBuild>();
  const tests: KcidbTest[] = [];
  // Oldest first: a checkout's and a build's start time are those of the first run that used them.
  for (const r of byStartTime(runs)) {
    const checkout = checkoutOf(r, origin);
    if (!checkouts.has(checkout.id)) checkouts.set(checkout.id, checkout);
    const build = buildOf(r, checkout.id, origin, opts.buildLogs?.get(r.run.runId));
    const known = builds.get(build.id);
    if (!known) builds.set(build.id, build);
    else if (!known.log_excerpt && build.log_excerpt) known.log_excerpt = build.log_excerpt;
    tests.push(...r.tests.map((rec) => testOf(r, rec, build.id, origin)), ...missing(r, build.id, origin));
  }
  return { version: { major: 5, minor: 3 }, checkouts: [...checkouts.values()], builds: [...builds.values()], tests };
}
