// Building blocks for judges: look up an observation by phase and compare it with what the
// refcount model predicts. Every check says what was expected and what was seen.
import { expectedMapcount, expectedRefcount, type RefcountModel } from '../kernel/model.js';
import type { Check, HelperObs, HelperReport } from './suite.js';

/** Where the helpers live in the guest. */
export const BIN = '/opt/dax/bin';

/** The slow device: null_blk with a 2 s completion delay, made by the guest's init. */
export const SLOW_DEV = '/dev/nullb0';

/** Returns the observation of a phase, if the helper made one. */
export function obs(r: HelperReport, phase: string): HelperObs | undefined {
  return r.obs.find((o) => o.phase === phase);
}

/** An equality check on a number that may not have been observed. */
export function eq(name: string, expected: number, actual: number | undefined): Check {
  return { name, ok: actual === expected, expected: String(expected), actual: actual === undefined ? 'not observed' : String(actual) };
}

/**
 * A check of what the test needs to test what it claims (2 MiB-aligned blocks for a PMD
 * fault, ...): when only such checks fail the test did not run as designed, which is the
 * set-up's failure (an infrastructure error), never a pass and never the kernel's red.
 */
export function setup(c: Check): Check {
  return { ...c, setup: true };
}

/** A check with its own predicate. */
export function cmp(name: string, ok: (a: number) => boolean, expected: string, actual: number | undefined): Check {
  return { name, ok: actual !== undefined && ok(actual), expected, actual: actual === undefined ? 'not observed' : String(actual) };
}

/** Checks for a page one process maps with one PTE or PMD, and nobody pins. */
export function mappedChecks(r: HelperReport, m: RefcountModel, phase: string): Check[] {
  const o = obs(r, phase);
  return [
    eq(`${phase}: page is ZONE_DEVICE (fsdax)`, 1, o?.zone_device),
    eq(`${phase}: refcount (${m.name} model)`, expectedRefcount(m, 1), o?.refcount),
    eq(`${phase}: mapcount (${m.name} model)`, expectedMapcount(m, 1), o?.mapcount),
  ];
}

/** Checks that a page is back at the idle refcount. */
export function idleCheck(r: HelperReport, m: RefcountModel, phase = 'unmapped'): Check {
  return eq(`${phase}: refcount back to idle (${m.name} model)`, expectedRefcount(m, 0), obs(r, phase)?.refcount);
}
