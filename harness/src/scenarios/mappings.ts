// Scenarios about how DAX pages are mapped: fork and COW, mremap, mlock, PMD split, reflink, poison, MAP_SYNC.
import type { TestDef } from '../suite.js';

/** The tests of this group, in run order. */
export const TESTS: TestDef[] = [];
