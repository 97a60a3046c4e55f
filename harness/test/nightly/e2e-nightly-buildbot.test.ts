// The nightly for real: Debian's Buildbot master and two workers on loopback, contrib/buildbot's
// master.cfg, a queue of three series made with `git format-patch --base` against the harness's
// debian-6.1 import (one clean, one that breaks a test, one that does not apply), forced with
// `buildbot sendchange`. Each worker claims series from the queue and runs them on its own
// guest (two guests at once); the nightly build merges the uploads and indexes them.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const cli = join(repo, 'harness', 'dist', 'cli.js');
const fixtures = join(repo, 'harness', 'test', 'fixtures', 'nightly');
const work = mkdtempSync(join(tmpdir(), 'dax-buildbot-'));
const port = 20000 + (process.pid % 20000);
const sh = (cmd: string, args: string[], cwd = work): string => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

t.teardown(() => {
  for (const [cmd, dir] of [['buildbot', 'master'], ['buildbot-worker', 'w1'], ['buildbot-worker', 'w2']] as const) {
    try {
      sh(cmd, ['stop', join(work, dir)]);
    } catch {
      // already stopped (or never started): nothing to do
    }
  }
});

interface BuildRow {
  name: string;
  number: number;
  complete_at: number | null;
  results: number | null;
}

function builds(): BuildRow[] {
  const db = new Database(join(work, 'master', 'state.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT bl.name, b.number, b.complete_at, b.results FROM builds b JOIN builders bl ON bl.id = b.builderid ORDER BY b.id').all() as BuildRow[];
  } finally {
    db.close();
  }
}

t.test('a forced nightly over three series: verdicts, replies, patchwork checks and database rows', async (t) => {
  const started = performance.now();
  const queue = join(work, 'queue');
  const results = join(work, 'results');
  mkdirSync(queue);
  writeFileSync(join(queue, 'queue.json'), JSON.stringify({ lines: [{ name: 'debian-6.1', tree: 'debian-6.1' }], tests: 'mmap-fault-4k,pin-truncate-vmsplice', fs: 'ext4' }));
  const series = readdirSync(fixtures).filter((f) => f.endsWith('.mbx')).sort();
  t.same(series, ['01-clean.mbx', '02-breaks-a-test.mbx', '03-does-not-apply.mbx']);
  sh(process.execPath, [cli, 'queue', 'add', '--queue', queue, ...series.map((f) => join(fixtures, f))]);

  sh('buildbot', ['create-master', '-q', join(work, 'master')]);
  copyFileSync(join(repo, 'contrib', 'buildbot', 'master.cfg'), join(work, 'master', 'master.cfg'));
  writeFileSync(
    join(work, 'master', 'dax-buildbot.json'),
    JSON.stringify({
      repo,
      queue,
      results,
      port,
      loopback: true,
      workers: [
        { name: 'w1', password: 'pw1' },
        { name: 'w2', password: 'pw2', labs: ['lab-a'] },
      ],
      labs: ['lab-a'],
      change_user: 'lane',
      change_password: 'lanepw',
      from: 'dax-harness lane <lane@example.org>',
      args: ['--infra-retries', '2'],
    }),
  );
  t.match(sh('buildbot', ['checkconfig', join(work, 'master')]), /Config file is good/);
  sh('buildbot', ['start', join(work, 'master')]);
  for (const w of ['w1', 'w2']) {
    sh('buildbot-worker', ['create-worker', '-q', join(work, w), `127.0.0.1:${port}`, w, `pw${w.slice(1)}`]);
    sh('buildbot-worker', ['start', join(work, w)]);
  }
  // Both workers attached before the nightly is forced, so both get a shard.
  for (let i = 0; i < 60 && (readFileSync(join(work, 'master', 'twistd.log'), 'utf8').match(/Worker w\d attached to shard-/g) ?? []).length < 2; i++) await new Promise((r) => setTimeout(r, 500));
  t.match(sh('buildbot', ['sendchange', '--master', `127.0.0.1:${port}`, '--auth', 'lane:lanepw', '--branch', 'nightly', '--who', 'lane', '--comments', 'nightly now']), /change sent successfully/i);

  let rows: BuildRow[] = [];
  for (let i = 0; i < 1800; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    rows = builds();
    if (rows.some((b) => b.name === 'nightly' && b.complete_at !== null)) break;
  }
  const nightly = rows.find((b) => b.name === 'nightly');
  t.ok(nightly?.complete_at, 'the nightly build finished');
  t.equal(nightly?.results, 0, 'the nightly build itself succeeded (shards ran, merge and index done)');
  const shards = rows.filter((b) => b.name.startsWith('shard-'));
  t.same(shards.map((b) => b.name).sort(), ['shard-w1', 'shard-w2'], 'one shard build per worker');
  t.ok(shards.some((b) => b.results === 1), 'the shard that ran the breaking series is WARNINGS (a kernel failure found, not a broken build)');
  t.ok(shards.every((b) => b.results === 0 || b.results === 1), 'no shard failed');

  // The verdicts, one directory per series under done/, by patchset hash.
  const done = readdirSync(join(queue, 'done')).map((d) => JSON.parse(readFileSync(join(queue, 'done', d, 'verdict.json'), 'utf8')) as { name: string; overall: string; lines: { status: string; newFailures: { point: string; firstBad: number | null }[] }[] });
  const by = Object.fromEntries(done.map((v) => [v.name, v]));
  t.same(Object.keys(by).sort(), series, 'every series has a verdict');
  t.same(readdirSync(join(queue, 'new')), [], 'the queue is empty');
  t.same(readdirSync(join(queue, 'cur')), [], 'nothing is left claimed');
  t.equal(by['01-clean.mbx']!.overall, 'pass');
  t.equal(by['02-breaks-a-test.mbx']!.overall, 'fail');
  t.same(by['02-breaks-a-test.mbx']!.lines[0]!.newFailures.map((f) => [f.point, f.firstBad]), [['ext4/pin-truncate-vmsplice', 2]], 'bisect names patch 2/2');
  t.equal(by['03-does-not-apply.mbx']!.lines[0]!.status, 'does not apply');

  const reply = (name: string): string => readFileSync(join(queue, 'done', readdirSync(join(queue, 'done')).find((d) => existsSync(join(queue, 'done', d, name)))!, 'reply.eml'), 'utf8');
  const breaks = reply('02-breaks-a-test.mbx');
  t.match(breaks, /^In-Reply-To: <cover\.breaks@example\.org>\r$/m, 'threaded to the cover letter');
  t.match(breaks, /^Subject: Re: \[PATCH 0\/2\] fsdax: wake waiters when the last reference goes\r$/m);
  t.match(breaks, /ext4\/pin-truncate-vmsplice: first bad patch 2\/2: "mm\/memremap: wake fsdax waiters/);
  t.match(reply('01-clean.mbx'), /Verdict: PASS/);
  t.match(reply('03-does-not-apply.mbx'), /debian-6\.1: does not apply to f3f8fd133968: patch 1\/1 "fs\/dax: tidy a comment of another tree"/);
  const checks = JSON.parse(readFileSync(join(queue, 'done', readdirSync(join(queue, 'done')).find((d) => existsSync(join(queue, 'done', d, '02-breaks-a-test.mbx')))!, 'patchwork-checks.json'), 'utf8')) as { state: string }[];
  t.same(checks.map((c) => c.state), ['success', 'fail'], 'patchwork: the second patch fails, the first does not');

  // The merged results: every run and campaign of both workers, indexed.
  const db = new Database(join(results, 'history.sqlite'), { readonly: true });
  const runs = (db.prepare('SELECT count(*) n FROM runs').get() as { n: number }).n;
  t.equal(runs, 5, 'base and series of the clean series; base, series and one bisect prefix of the breaking one');
  const red = db.prepare("SELECT p.outcome, r.series_hash FROM points p JOIN runs r USING (run_id) WHERE p.point = 'ext4-pin-truncate-vmsplice' AND p.outcome = 'fail'").all() as { outcome: string; series_hash: string | null }[];
  t.equal(red.length, 1, 'one red run of the broken test: the series head');
  t.match(red[0]!.series_hash, /^[0-9a-f]{64}$/, 'and it knows its series');
  db.close();
  const campaigns = readdirSync(results).filter((d) => existsSync(join(results, d, 'campaign.json')));
  t.equal(campaigns.length, 2);
  for (const c of campaigns) {
    const text = readFileSync(join(results, c, 'campaign.json'), 'utf8');
    for (const m of text.matchAll(/"run_dir": "([^"]+)"/g)) t.ok(existsSync(join(m[1]!, 'run.json')), `${c}: run_dir points at the merged run`);
  }
  t.same(readdirSync(join(results, 'incoming')), [], 'the uploads were moved, not copied, and their own indexes dropped');
  t.comment(`nightly lane: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  rmSync(join(work, 'w1', 'shard-w1'), { recursive: true, force: true });
});
