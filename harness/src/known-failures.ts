// The known-failure list: understood kernel bugs that turn a red test into an expected
// failure (TAP TODO), shown as such and never as a pass. Each entry names the scenario, the
// kernels it applies to, the reason and the evidence (a run directory or a link).
import { readFileSync } from 'node:fs';
import { HarnessError } from './errors.js';
import { isFailureTaint, taintDelta } from './dmesg.js';

/**
 * What a run of the known failure looks like. A record that fails in any other way (another
 * check, another kind of dmesg finding, another taint, another outcome) is not this failure:
 * it stays red, so a known bug cannot hide a new one in the same test.
 */
export interface FailureSignature {
  /** Outcomes it shows (default: fail). */
  outcomes?: string[];
  /** Regular expressions over check names: every failed check must match one. */
  checks?: string[];
  /** Regular expression over the helper's own failure reason, when the helper failed. */
  helper?: string;
  /** Kinds of dmesg finding it brings (warning, bug, ...); none if absent. */
  dmesg?: string[];
  /** Failure taint letters it may add (W, D, ...); none if absent. */
  taint?: string[];
}

/** The parts of a test record a signature is matched against. */
export interface FailureEvidence {
  outcome: string;
  failedChecks: string[];
  /** The helper's failure reason if the helper itself failed, else null. */
  helperFailure: string | null;
  findingKinds: string[];
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
  /** How this failure shows; an entry without one matches any failure of the test. */
  signature?: FailureSignature;
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
    if (k.signature !== undefined) {
      const sig = k.signature as FailureSignature;
      const strings = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');
      for (const key of ['outcomes', 'checks', 'dmesg', 'taint'] as const) {
        if (sig[key] !== undefined && !strings(sig[key])) bad(`signature.${key} must be a list of strings`);
      }
      for (const re of [...(sig.checks ?? []), ...(sig.helper === undefined ? [] : [sig.helper])]) {
        try {
          new RegExp(re);
        } catch {
          bad(`signature pattern "${re}" is not a regular expression`);
        }
      }
    }
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

/** Returns why the evidence does not look like the signature, or null if it does. */
export function mismatchSignature(sig: FailureSignature, e: FailureEvidence): string | null {
  const outcomes = sig.outcomes ?? ['fail'];
  if (!outcomes.includes(e.outcome)) return `outcome ${e.outcome}, expected ${outcomes.join(' or ')}`;
  const patterns = (sig.checks ?? []).map((p) => new RegExp(p));
  const other = e.failedChecks.filter((c) => !patterns.some((p) => p.test(c)));
  if (other.length > 0) return `other checks failed: ${other.join('; ')}`;
  if (e.helperFailure !== null && (sig.helper === undefined || !new RegExp(sig.helper).test(e.helperFailure))) return `the helper failed otherwise: ${e.helperFailure}`;
  const kinds = [...new Set(e.findingKinds)].filter((k) => !(sig.dmesg ?? []).includes(k));
  if (kinds.length > 0) return `other dmesg findings: ${kinds.join(', ')}`;
  if (e.taintBefore !== null && e.taintAfter !== null) {
    const letters = taintDelta(e.taintBefore, e.taintAfter).filter((f) => isFailureTaint(f.bit)).map((f) => f.letter);
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
  const entry = list.find(
    (k) => k.test === test && (!k.fs || k.fs.includes(fs)) && (!k.model || k.model === model) && (!k.release || new RegExp(k.release).test(release)),
  );
  if (!entry) return null;
  const mismatch = entry.signature && evidence ? mismatchSignature(entry.signature, evidence) : null;
  return { entry, mismatch };
}
