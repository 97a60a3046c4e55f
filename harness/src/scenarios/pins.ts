// Scenarios where a transient page pin (O_DIRECT from a slow device, vmsplice) races truncate, punch hole, unlink and block reuse; and holes.
import type { TestDef } from '../suite.js';

/** The tests of this group, in run order. */
export const TESTS: TestDef[] = [];
