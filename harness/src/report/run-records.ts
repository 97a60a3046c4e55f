// The run records every report and export reads: a run directory's run.json and tests.jsonl,
// parsed into one typed shape (parseRunRecords is pure; readRunDir and findRunDirs read files).
// The dashboard (Allure), JUnit and KCIDB are all built from these, never from TAP text.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HarnessError } from '../core/errors.js';
import { customLineOf, debianLineOf, type KernelSource } from '../kernel/kernel.js';
import { treeLine } from '../kernel/built-kernel.js';
import { errorRecord, type InfraEvent, type Outcome, type TestRecord } from '../run/run.js';

/** run.json as the exports read it (older runs lack the later fields). */
export interface RunJson {
  runId: string;
  startedAt: string;
  finishedAt?: string;
  kernel: {
    release: string;
    origin: string;
    packageVersion?: string | null;
    config?: string | null;
    source?: KernelSource | null;
  };
  target?: string;
  /** Set on a shard of a run (run --shard, --guests); null or absent on a whole run. */
  shard?: { index: number; count: number } | null;
  /** On a run merge joined from shards: the shards' run ids. */
  mergedFrom?: string[];
  accel?: string;
  profile?: { name: string };
  filesystems: string[];
  /** The test names the run was given (absent on very old runs). */
  tests?: string[];
  model?: { name: string; idle?: number } | null;
  boots?: { bootToSshMs?: number }[];
  infra?: InfraEvent[];
  counts?: Partial<Record<Outcome, number>>;
  exitCode?: number;
  interrupted?: string;
}

export interface RunRecords {
  dir: string;
  run: RunJson;
  tests: TestRecord[];
  /** Where the kernel's code came from (read from run.json, or worked out from its origin). */
  source: KernelSource;
  /** The target the suite ran on: qemu, or lab:NAME. */
  target: string;
  /** What identifies this very kernel: the package version, the build key or the release. */
  build: string;
}

// A run from before run.json had kernel.source: the origin string says enough.
function sourceFromOrigin(k: RunJson['kernel']): KernelSource {
  const none = { tree: null, commit: null, base: null, buildKey: null, series: null };
  if (k.origin.startsWith('debian:')) return { ...none, line: debianLineOf(k.release), config: 'debian' };
  const b = /^build:(.+)@([0-9a-f]+) \(([^,]+), key ([0-9a-f]+)\)$/.exec(k.origin);
  if (b) return { ...none, line: `build:${treeLine(b[1]!)}`, tree: b[1]!, commit: b[2]!, buildKey: b[4]!, config: b[3]! };
  return { ...none, line: customLineOf(k.release), config: 'unknown' };
}

// Fills what older records lack, so every export sees one shape.
function normalizeTest(raw: Partial<TestRecord> & { id: string }): TestRecord {
  return { ...errorRecord(raw.fs ?? 'all', raw.test ?? raw.id, ''), ...raw };
}

/** Parses a run directory's run.json and tests.jsonl; throws a config error naming the bad line. */
export function parseRunRecords(dir: string, runJsonText: string, testsJsonl: string): RunRecords {
  const bad = (what: string, err: unknown): HarnessError =>
    new HarnessError('config', `${dir}: ${what} is not valid JSON (${(err as Error).message})`, {
      hint: 'the run directory is damaged; leave it out of the report (name the runs to use) or delete it',
    });
  let run: RunJson;
  try {
    run = JSON.parse(runJsonText) as RunJson;
  } catch (err) {
    throw bad('run.json', err);
  }
  if (!run.runId || !run.kernel?.release) {
    throw new HarnessError('config', `${dir}/run.json has no runId or kernel release: not a dax-harness run`, { hint: 'pass run directories made by `dax-harness run`' });
  }
  const tests = testsJsonl
    .split('\n')
    .map((l, i) => ({ l, i }))
    .filter(({ l }) => l.trim() !== '')
    .map(({ l, i }) => {
      try {
        return normalizeTest(JSON.parse(l) as TestRecord);
      } catch (err) {
        throw bad(`tests.jsonl line ${i + 1}`, err);
      }
    });
  const source = run.kernel.source ?? sourceFromOrigin(run.kernel);
  const build = run.kernel.packageVersion ? `${run.kernel.release} ${run.kernel.packageVersion}` : source.buildKey ? `build ${source.buildKey}` : run.kernel.release;
  return { dir, run, tests, source, target: run.target ?? 'qemu', build };
}

/** Reads one run directory. */
export function readRunDir(dir: string): RunRecords {
  const runJson = join(dir, 'run.json');
  if (!existsSync(runJson)) {
    throw new HarnessError('config', `${dir}: no run.json, so not a run directory`, {
      hint: 'pass directories that `dax-harness run` made under results/ (a campaign directory holds its runs beside it)',
    });
  }
  const tests = join(dir, 'tests.jsonl');
  return parseRunRecords(resolve(dir), readFileSync(runJson, 'utf8'), existsSync(tests) ? readFileSync(tests, 'utf8') : '');
}

/** Returns the run directories directly under root (those with a run.json), oldest first. */
export function findRunDirs(root: string): string[] {
  if (!existsSync(root)) {
    throw new HarnessError('config', `results directory ${root} does not exist`, { hint: 'run `dax-harness run` first, or pass --results DIR where the runs are' });
  }
  return readdirSync(root)
    .map((n) => join(root, n))
    .filter((d) => statSync(d).isDirectory() && existsSync(join(d, 'run.json')))
    .sort();
}

/** Returns the runs in the order they started. */
export function byStartTime(runs: RunRecords[]): RunRecords[] {
  return [...runs].sort((a, b) => a.run.startedAt.localeCompare(b.run.startedAt) || a.run.runId.localeCompare(b.run.runId));
}

/** Returns the key runs are compared along: the kernel line on one target, and the series
 *  applied on it (a patch series or a mutant is a line of its own, branching off its base). */
export function lineKey(r: RunRecords): string {
  return r.source.series ? `${r.source.line} + series ${r.source.series.hash.slice(0, 12)} on ${r.target}` : baseLineKey(r);
}

/** Returns the line a series run branches off: the kernel line on its target, without the series. */
export function baseLineKey(r: RunRecords): string {
  return `${r.source.line} on ${r.target}`;
}

/** A campaign (--baseline, --bisect, mutate) whose runs are among those reported. */
export interface CampaignRecord {
  dir: string;
  /** Its tables as written: comparison.txt (A/B and bisect), mutants.txt or matrix.txt. */
  tables: { name: string; text: string }[];
}

/** Returns the run directories a campaign.json names (as run_dir, at any depth). */
export function runDirsOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(runDirsOf);
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => (k === 'run_dir' && typeof v === 'string' ? [resolve(v)] : runDirsOf(v)));
  }
  return [];
}

/** Returns the campaigns beside the given runs (in their parent directories) that ran one of them. */
export function findCampaigns(runs: RunRecords[]): CampaignRecord[] {
  const wanted = new Set(runs.map((r) => resolve(r.dir)));
  const parents = [...new Set(runs.map((r) => resolve(r.dir, '..')))];
  return parents.flatMap((root) =>
    readdirSync(root)
      .map((n) => join(root, n))
      .filter((d) => existsSync(join(d, 'campaign.json')))
      .filter((d) => {
        try {
          return runDirsOf(JSON.parse(readFileSync(join(d, 'campaign.json'), 'utf8'))).some((x) => wanted.has(x));
        } catch {
          // A damaged campaign.json loses its tables, never the report.
          return false;
        }
      })
      .sort()
      .map((d) => ({
        dir: d,
        tables: ['comparison.txt', 'mutants.txt', 'matrix.txt'].filter((f) => existsSync(join(d, f))).map((f) => ({ name: f, text: readFileSync(join(d, f), 'utf8') })),
      })),
  );
}
