// Sharding one run: every point in exactly one shard, dealt round-robin in run order, and the
// shards' records joined back in the order of an unsharded run.
import t from 'tap';
import { mergeShardRecords, shardPoints } from '../../src/campaign/shard.js';
import type { TestRecord } from '../../src/run/run.js';

const fss = ['ext4', 'xfs'];
const tests = ['a', 'b', 'c'];

t.test('every point is in exactly one shard; shards differ in size by one at most', async (t) => {
  const all = shardPoints(fss, tests, null);
  t.same(all, ['ext4-a', 'ext4-b', 'ext4-c', 'xfs-a', 'xfs-b', 'xfs-c']);
  for (const n of [1, 2, 3, 4, 7]) {
    const parts = Array.from({ length: n }, (_, i) => shardPoints(fss, tests, { index: i + 1, count: n }));
    t.same(parts.flat().sort(), [...all].sort(), `${n} shards cover every point once`);
    const sizes = parts.map((p) => p.length);
    t.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${n} shards: sizes ${sizes.join(', ')}`);
  }
  t.same(shardPoints(fss, tests, { index: 2, count: 2 }), ['ext4-b', 'xfs-a', 'xfs-c'], 'round-robin over both filesystems');
});

const rec = (fs: string, test: string, outcome: TestRecord['outcome'], reason = ''): TestRecord => ({ id: `${fs}-${test}`, fs, test, outcome, reason, durationMs: 5, checks: [], findings: [], taintBefore: 0, taintAfter: 0, report: null, exitCode: 0, stderr: '', dmesgExcerpt: [], attempts: [] });

t.test('records come back in unsharded order; the kernel-log points join, red if any shard\'s was', async (t) => {
  const s1 = [rec('ext4', 'a', 'pass'), rec('ext4', 'c', 'pass'), rec('xfs', 'b', 'xfail'), rec('all', 'kernel-log', 'pass', 'boot 1 clean')];
  const s2 = [rec('ext4', 'b', 'fail'), rec('xfs', 'a', 'pass'), rec('xfs', 'c', 'skip'), rec('all', 'kernel-log', 'fail', 'WARN at set-up')];
  const m = mergeShardRecords(fss, tests, [s1, s2]);
  t.same(m.map((r) => `${r.id}:${r.outcome}`), ['ext4-a:pass', 'ext4-b:fail', 'ext4-c:pass', 'xfs-a:pass', 'xfs-b:xfail', 'xfs-c:skip', 'all-kernel-log:fail']);
  t.equal(m.at(-1)!.reason, 'shard 1: boot 1 clean; shard 2: WARN at set-up');
  t.throws(() => mergeShardRecords(fss, tests, [s1]), /no shard has ext4-b, xfs-a, xfs-c/);
  t.throws(() => mergeShardRecords(fss, tests, [s1, s1, s2]), /point ext4-a is in two shards/);
});
