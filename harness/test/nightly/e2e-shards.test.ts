// One run split for real: --guests 2 (two QEMU guests at once) and --shard 1/2 + --shard 2/2
// joined by merge give the same points, outcomes and TAP as the unsharded run.
import t from 'tap';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const cli = join(repo, 'harness', 'dist', 'cli.js');
const work = mkdtempSync(join(tmpdir(), 'dax-shards-'));
const common = ['--distro-release', '6.1.0-57-amd64', '--tests', 'mmap-fault-4k,odirect-pin,hole-zero-page', '--fs', 'ext4,xfs'];

const runDirs = (results: string): string[] => readdirSync(results).filter((d) => existsSync(join(results, d, 'run.json'))).map((d) => join(results, d));
const points = (dir: string): string[] =>
  readFileSync(join(dir, 'tests.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; outcome: string }).map((r) => `${r.id}:${r.outcome}`);
// The TAP points without their diagnostics (durations and addresses differ run to run).
const tapPoints = (text: string): string[] => text.split('\n').filter((l) => /^\s*(not )?ok \d+ /.test(l));

t.test('unsharded, --guests 2, and two --shard runs merged: the same run', async (t) => {
  const one = join(work, 'one');
  const r1 = await execa(process.execPath, [cli, 'run', ...common, '--results', one], { reject: false });
  t.equal(r1.exitCode, 0, 'the unsharded run is green');
  const two = join(work, 'two');
  const r2 = await execa(process.execPath, [cli, 'run', '--guests', '2', ...common, '--results', two], { reject: false });
  t.equal(r2.exitCode, 0);
  t.match(r2.stderr, /guest 1\/2: .*guest 2\/2: |guest 2\/2: .*guest 1\/2: /s, 'both guests report progress');
  const [d1] = runDirs(one);
  const [d2] = runDirs(two);
  t.equal(runDirs(two).length, 1, 'one run directory');
  t.same(points(d2!), points(d1!), 'same points and outcomes, in the same order');
  t.same(tapPoints(r2.stdout), tapPoints(r1.stdout), 'same TAP points');
  const rj = JSON.parse(readFileSync(join(d2!, 'run.json'), 'utf8')) as { mergedFrom: string[]; boots: unknown[]; shard: unknown };
  t.equal(rj.mergedFrom.length, 2);
  t.equal(rj.shard, null);
  t.equal(readdirSync(join(d2!, 'shards')).length, 2, 'the shards are kept as evidence inside the run');

  const sharded = join(work, 'sharded');
  for (const s of ['1/2', '2/2']) {
    const r = await execa(process.execPath, [cli, 'run', '--shard', s, ...common, '--results', join(work, `shard-${s[0]}`)], { reject: false });
    t.equal(r.exitCode, 0, `shard ${s}`);
  }
  const m = await execa(process.execPath, [cli, 'merge', '--results', sharded, join(work, 'shard-1'), join(work, 'shard-2')], { reject: false });
  t.equal(m.exitCode, 0, m.stderr);
  t.match(m.stderr, /1 run\(s\) joined from shards/);
  const [d3] = runDirs(sharded);
  t.equal(runDirs(sharded).length, 1, 'the two shard runs became one run');
  t.same(points(d3!), points(d1!));
  t.same(tapPoints(readFileSync(join(d3!, 'results.tap'), 'utf8')), tapPoints(r1.stdout));
});
