// The known-failure list: understood kernel bugs that turn a red test into an expected
// failure (TAP TODO), shown as such and never as a pass. Each entry names the scenario, the
// kernels it applies to, the reason and the evidence (a run directory or a link).
import { readFileSync } from 'node:fs';
import { HarnessError } from './errors.js';

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

/** Returns the entry that covers a test on this kernel, if any. */
export function matchKnownFailure(list: KnownFailure[], test: string, fs: string, release: string, model: string | null): KnownFailure | null {
  return (
    list.find(
      (k) =>
        k.test === test &&
        (!k.fs || k.fs.includes(fs)) &&
        (!k.model || k.model === model) &&
        (!k.release || new RegExp(k.release).test(release)),
    ) ?? null
  );
}
