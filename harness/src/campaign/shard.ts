// Sharding one run (pure): its points (fs × tests, in run order) dealt round-robin into N
// shares, and the shares' records joined back into what one unsharded run would have written.
import { isKernelFailure, KERNEL_LOG_POINT, type TestRecord } from '../run/run.js';

export interface Shard {
  /** 1-based */
  index: number;
  count: number;
}

/** Returns the point ids (fs-test) of a shard; every point without one. */
export function shardPoints(filesystems: string[], tests: string[], shard: Shard | null): string[] {
  const all = filesystems.flatMap((fs) => tests.map((t) => `${fs}-${t}`));
  return shard ? all.filter((_, k) => k % shard.count === shard.index - 1) : all;
}

// The kernel-log point of a merged run: each shard judged its own boots' logs, so the merged
// point is red if any was, an error if any could not be read, and names each shard's finding.
function mergeKernelLog(recs: TestRecord[]): TestRecord {
  const first = recs[0]!;
  const outcome = recs.some((r) => isKernelFailure(r.outcome)) ? 'fail' : recs.some((r) => r.outcome === 'error') ? 'error' : recs.every((r) => r.outcome === 'skip') ? 'skip' : 'pass';
  return {
    ...first,
    outcome,
    reason: recs.map((r, i) => `shard ${i + 1}: ${r.reason}`).join('; '),
    durationMs: recs.reduce((a, r) => a + r.durationMs, 0),
    findings: recs.flatMap((r) => r.findings),
    dmesgExcerpt: recs.flatMap((r, i) => (r.dmesgExcerpt.length ? [`# shard ${i + 1}:`, ...r.dmesgExcerpt] : [])),
    attempts: recs.flatMap((r) => r.attempts),
  };
}

/** Returns the records of the shards in the order of an unsharded run; throws on a missing or
 *  doubled point (the shards are not one run's). */
export function mergeShardRecords(filesystems: string[], tests: string[], shards: TestRecord[][]): TestRecord[] {
  const byId = new Map<string, TestRecord>();
  for (const r of shards.flat().filter((x) => x.test !== KERNEL_LOG_POINT)) {
    if (byId.has(r.id)) throw new Error(`point ${r.id} is in two shards`);
    byId.set(r.id, r);
  }
  const order = shardPoints(filesystems, tests, null);
  const missing = order.filter((id) => !byId.has(id));
  if (missing.length > 0) throw new Error(`no shard has ${missing.join(', ')}`);
  const logs = shards.map((s) => s.find((r) => r.test === KERNEL_LOG_POINT)).filter((r): r is TestRecord => r !== undefined);
  return [...order.map((id) => byId.get(id)!), ...(logs.length ? [mergeKernelLog(logs)] : [])];
}
