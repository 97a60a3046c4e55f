// The known-failure list: understood kernel bugs that turn a red test into an expected
// failure (TAP TODO), shown as such and never as a pass. Each entry names the scenario, the
// kernels it applies to, the reason and the evidence (a run directory or a link).
import { readFileSync } from 'node:fs';
import { HarnessError } from '../core/errors.js';
import { describeFinding, failureTaintDelta } from './dmesg.js';

/** A dmesg incident a known failure brings: its kind and where in the kernel it happened. */
export interface DmesgSignature {
  kind: string;
  /** The function of the WARN/BUG site or of the faulting RIP (exact name, no offset); a
   *  list when builds differ in what they inline (bio_first_folio into __bio_release_pages). */
  function: string | string[];
  /** file:line, where the kernel prints one (WARN, BUG); absent = any line. */
  file?: string;
  /** The incident must be in this run (default: it may be, e.g. a WARN_ON_ONCE that fired
   *  earlier in the boot prints nothing the second time). */
  required?: boolean;
}

/**
 * What a run of the known failure looks like. It matches only on positive evidence: the checks
 * it names did fail, the helper failure it names did happen, each required dmesg incident is
 * there. A record that fails in any other way too (another check, another incident or an
 * incident elsewhere, another taint, another outcome, no report at all) is not this failure: it
 * stays red, so a known bug cannot hide a new one in the same test.
 */
export interface FailureSignature {
  /** Outcomes it shows (default: fail). */
  outcomes?: string[];
  /** Regular expressions over check names: each must match a failed check. */
  checks?: string[];
  /** Regular expressions over check names that may fail along with `checks`. */
  alsoChecks?: string[];
  /** Regular expression over the helper's own failure reason: the helper must have failed so. */
  helper?: string;
  /** The helper prints no report in this failure (it is killed or crashes); default false. */
  noReport?: boolean;
  /** The dmesg incidents it brings; any other incident is not this failure. */
  dmesg?: DmesgSignature[];
  /** Failure taint letters it may add (W, D, ...); none if absent. */
  taint?: string[];
}

/** The parts of a test record a signature is matched against. */
export interface FailureEvidence {
  outcome: string;
  failedChecks: string[];
  /** The helper's failure reason if the helper itself failed, else null. */
  helperFailure: string | null;
  /** Whether the helper printed its report (a crash, a kill or a segfault prints none). */
  reported: boolean;
  findings: { kind: string; function: string | null; file: string | null }[];
  taintBefore: number | null;
  taintAfter: number | null;
}

export interface KnownFailure {
  test: string;
  /** Filesystems it applies to; absent = all. */
  fs?: string[];
  /** Refcount model it applies to; absent = both. */
  model?: 'legacy' | 'folio';
  /** Regular expression over the kernel release (uname -r); absent = any. */
  release?: string;
  reason: string;
  evidence: string;
  /** How this failure shows (required: an entry matches only on its own evidence). */
  signature: FailureSignature;
}

/** Parses and validates the known-failure file; throws a config error naming the bad entry. */
export function parseKnownFailures(text: string, source: string): KnownFailure[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new HarnessError('config', `${source}: not valid JSON: ${(err as Error).message}`, { hint: 'fix the file; it holds a JSON array of entries' });
  }
  const list = (data as { failures?: unknown }).failures;
  if (!Array.isArray(list)) throw new HarnessError('config', `${source}: expected an object with a "failures" array`, { hint: 'see kernel-tests/README.md' });
  return list.map((e: unknown, i) => {
    const k = e as Partial<KnownFailure>;
    const bad = (why: string): never => {
      throw new HarnessError('config', `${source}: entry ${i + 1}: ${why}`, { hint: 'every entry needs test, reason and evidence (the run that showed the failure)' });
    };
    if (typeof k.test !== 'string' || !k.test) bad('no "test"');
    if (typeof k.reason !== 'string' || !k.reason) bad('no "reason"');
    if (typeof k.evidence !== 'string' || !k.evidence) bad('no "evidence": a stock-kernel failure is only listed with the run that showed it');
    if (k.model !== undefined && k.model !== 'legacy' && k.model !== 'folio') bad(`model "${String(k.model)}" is not legacy or folio`);
    if (k.signature === undefined || typeof k.signature !== 'object' || k.signature === null) {
      bad('no "signature": an entry says how its failure shows (checks that fail, the helper failure, the dmesg incidents)');
    }
    const sig = k.signature as FailureSignature;
    const strings = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');
    for (const key of ['outcomes', 'checks', 'alsoChecks', 'taint'] as const) {
      if (sig[key] !== undefined && !strings(sig[key])) bad(`signature.${key} must be a list of strings`);
    }
    if (sig.helper !== undefined && typeof sig.helper !== 'string') bad('signature.helper must be a regular expression (a string)');
    if (sig.dmesg !== undefined) {
      if (!Array.isArray(sig.dmesg)) bad('signature.dmesg must be a list of {kind, function, file?, required?}');
      for (const d of sig.dmesg) {
        const fns = Array.isArray(d?.function) ? d.function : [d?.function];
        if (typeof d !== 'object' || d === null || typeof d.kind !== 'string' || fns.length === 0 || !fns.every((f) => typeof f === 'string' && f !== '')) {
          bad(`signature.dmesg entry ${JSON.stringify(d)} needs a kind and a function: an incident matches by kind and location, never by kind alone`);
        }
        if (d.file !== undefined && !/^\S+:\d+$/.test(d.file)) bad(`signature.dmesg file "${String(d.file)}" is not file:line`);
      }
    }
    for (const re of [...(sig.checks ?? []), ...(sig.alsoChecks ?? []), ...(sig.helper === undefined ? [] : [sig.helper])]) {
      try {
        new RegExp(re);
      } catch {
        bad(`signature pattern "${re}" is not a regular expression`);
      }
    }
    const positive = (sig.checks ?? []).length > 0 || sig.helper !== undefined || (sig.dmesg ?? []).some((d) => d.required === true);
    if (!positive) bad('the signature names no positive evidence: list the checks that fail, the helper failure, or a required dmesg incident');
    if (k.release !== undefined) {
      try {
        new RegExp(k.release);
      } catch {
        bad(`release "${k.release}" is not a regular expression`);
      }
    }
    return k as KnownFailure;
  });
}

/** Loads the known-failure file. */
export function loadKnownFailures(path: string): KnownFailure[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new HarnessError('config', `cannot read the known-failure list ${path}: ${(err as Error).message}`, {
      hint: 'pass --known-failures FILE with an existing file, or leave it out for kernel-tests/known-failures.json',
    });
  }
  return parseKnownFailures(text, path);
}

// __FILE__ is relative to the build: an out-of-tree (O=) build prints
// "../../src/debian-6.1/fs/dax.c:398" where a distro build prints "fs/dax.c:398".
function sameSite(printed: string | null, listed: string): boolean {
  return printed !== null && (printed === listed || printed.endsWith(`/${listed}`));
}

function findingMatches(f: FailureEvidence['findings'][number], d: DmesgSignature): boolean {
  const fns = Array.isArray(d.function) ? d.function : [d.function];
  return f.kind === d.kind && f.function !== null && fns.includes(f.function) && (d.file === undefined || sameSite(f.file, d.file));
}

/** Returns why the evidence does not look like the signature, or null if it does. */
export function mismatchSignature(sig: FailureSignature, e: FailureEvidence): string | null {
  const outcomes = sig.outcomes ?? ['fail'];
  if (!outcomes.includes(e.outcome)) return `outcome ${e.outcome}, expected ${outcomes.join(' or ')}`;
  if (!e.reported && e.outcome === 'fail' && !sig.noReport) return 'the helper printed no report';
  const required = (sig.checks ?? []).map((p) => new RegExp(p));
  const allowed = [...required, ...(sig.alsoChecks ?? []).map((p) => new RegExp(p))];
  const missing = required.filter((p) => !e.failedChecks.some((c) => p.test(c)));
  if (missing.length > 0) return `the known failing check did not fail: ${missing.map((p) => p.source).join('; ')}`;
  const other = e.failedChecks.filter((c) => !allowed.some((p) => p.test(c)));
  if (other.length > 0) return `other checks failed: ${other.join('; ')}`;
  if (sig.helper !== undefined && (e.helperFailure === null || !new RegExp(sig.helper).test(e.helperFailure))) {
    return e.helperFailure === null ? `the helper did not fail as known (${sig.helper})` : `the helper failed otherwise: ${e.helperFailure}`;
  }
  if (sig.helper === undefined && e.helperFailure !== null) return `the helper failed otherwise: ${e.helperFailure}`;
  const known = sig.dmesg ?? [];
  const unknown = e.findings.filter((f) => !known.some((d) => findingMatches(f, d)));
  if (unknown.length > 0) return `other dmesg findings: ${[...new Set(unknown.map(describeFinding))].join(', ')}`;
  const absent = known.filter((d) => d.required && !e.findings.some((f) => findingMatches(f, d)));
  if (absent.length > 0) return `the known dmesg incident is missing: ${absent.map((d) => describeFinding({ kind: d.kind, function: [d.function].flat().join(' or '), file: d.file ?? null })).join(', ')}`;
  if (e.taintBefore !== null && e.taintAfter !== null) {
    const letters = failureTaintDelta(e.taintBefore, e.taintAfter).map((f) => f.letter);
    const extra = letters.filter((l) => !(sig.taint ?? []).includes(l));
    if (extra.length > 0) return `other taint: ${extra.join(', ')}`;
  }
  return null;
}

/** Returns the entry that covers a test on this kernel, if any (and whether the failure looks
 *  like it: `mismatch` says how it differs when an entry applies but its signature does not). */
export function matchKnownFailure(
  list: KnownFailure[],
  test: string,
  fs: string,
  release: string,
  model: string | null,
  evidence?: FailureEvidence,
): { entry: KnownFailure; mismatch: string | null } | null {
  const entries = list.filter(
    (k) => k.test === test && (!k.fs || k.fs.includes(fs)) && (!k.model || k.model === model) && (!k.release || new RegExp(k.release).test(release)),
  );
  if (entries.length === 0) return null;
  if (!evidence) return { entry: entries[0]!, mismatch: null };
  // Several entries may cover one test (one per way it is known to fail): the first that fits.
  const tried = entries.map((entry) => ({ entry, mismatch: mismatchSignature(entry.signature, evidence) }));
  return tried.find((t) => t.mismatch === null) ?? tried[0]!;
}
