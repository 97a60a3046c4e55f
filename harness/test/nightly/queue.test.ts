// The series queue: real git format-patch --base series, queue.json checked field by field,
// claims that two workers never share, and a series run once whatever its file is called.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimNext, describeQueuedSeries, enqueue, fileDone, parseBaseCommit, parseQueueConfig, planQueueLayout, requeueAbandoned } from '../../src/nightly/queue.js';

const dir = mkdtempSync(join(tmpdir(), 'dax-queue-'));
const repo = join(dir, 'repo');
const git = (...args: string[]): string => execFileSync('git', ['-C', repo, '-c', 'user.name=T', '-c', 'user.email=t@example.org', ...args], { encoding: 'utf8' });
execFileSync('git', ['init', '-q', '-b', 'main', repo]);
writeFileSync(join(repo, 'dax.c'), Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n') + '\n');
git('add', '.');
git('commit', '-q', '-m', 'base');
const base = git('rev-parse', 'HEAD').trim();
writeFileSync(join(repo, 'dax.c'), readFileSync(join(repo, 'dax.c'), 'utf8').replace('line 5\n', 'line five\n'));
git('commit', '-q', '-am', 'fs/dax: a change');
git('format-patch', '-q', '--cover-letter', '--base', base, '-o', join(dir, 'out'), `${base}..HEAD`);
const mbx = execFileSync('sh', ['-c', `cat ${join(dir, 'out')}/*.patch`], { encoding: 'utf8' });
writeFileSync(join(dir, 'v1.mbx'), mbx);

t.test('base-commit comes from git format-patch --base; the reply goes to the cover letter', async (t) => {
  t.equal(parseBaseCommit(mbx), base);
  t.equal(parseBaseCommit('no base here'), null);
  const s = describeQueuedSeries('v1.mbx', mbx.replace(/^Subject: \[PATCH 0\/1\]/m, 'Message-ID: <cover.1@example.org>\nSubject: [PATCH 0/1]'));
  t.equal(s.base, base);
  t.equal(s.thread.messageId, 'cover.1@example.org');
  t.match(s.thread.subject, /\*\*\* SUBJECT HERE \*\*\*/);
  t.match(s.id, /^[0-9a-f]{64}$/);
  t.equal(describeQueuedSeries('other-name.mbx', mbx).id, s.id, 'the id is the patches, not the file name');
});

t.test('queue.json: each bad field is named', async (t) => {
  const ok = parseQueueConfig(JSON.stringify({ lines: [{ name: 'debian-6.1', tree: 'debian-6.1' }], tests: 'fast' }), 'q.json');
  t.same(ok, { lines: [{ name: 'debian-6.1', tree: 'debian-6.1', base: null }], tests: 'fast', fs: null });
  t.throws(() => parseQueueConfig('{', 'q.json'), /q\.json: not valid JSON/);
  t.throws(() => parseQueueConfig('{"lines": []}', 'q.json'), /"lines" must be a non-empty list/);
  t.throws(() => parseQueueConfig('{"lines": [{"name": "a b", "tree": "t"}]}', 'q.json'), /lines\[0\]\.name must be/);
  t.throws(() => parseQueueConfig('{"lines": [{"name": "a", "tree": ""}]}', 'q.json'), /lines\[0\]\.tree must be/);
  t.throws(() => parseQueueConfig('{"lines": [{"name": "a", "tree": "t"}, {"name": "a", "tree": "u"}]}', 'q.json'), /two lines are named "a"/);
  t.throws(() => parseQueueConfig('{"lines": [{"name": "a", "tree": "t"}], "tests": 3}', 'q.json'), /"tests" must be a comma-separated string/);
});

t.test('claims: each series once, even with two workers racing; a done series is a duplicate', async (t) => {
  const q = planQueueLayout(join(dir, 'q1'));
  t.same(enqueue(q, [join(dir, 'v1.mbx')]), ['v1.mbx']);
  t.ok(existsSync(join(dir, 'v1.mbx')), "the user's file stays");
  t.throws(() => enqueue(q, [join(repo, 'dax.c')]), /not an mbox/, 'a damaged series is refused before it is queued');
  const a = claimNext(q);
  const b = claimNext(q);
  t.ok(a && !b, 'the second worker finds nothing');
  t.same(readdirSync(q.cur).sort(), ['.v1.mbx.claim', 'v1.mbx'], 'claimed, with who holds it');
  t.match(JSON.parse(readFileSync(join(q.cur, '.v1.mbx.claim'), 'utf8')), { pid: process.pid, host: hostname() });
  const done = fileDone(q, a!, { 'verdict.json': '{}\n', 'reply.eml': 'x' });
  t.same(readdirSync(done).sort(), ['reply.eml', 'v1.mbx', 'verdict.json']);
  t.same(readdirSync(q.cur), []);
  writeFileSync(join(dir, 'v1-resend.mbx'), mbx);
  enqueue(q, [join(dir, 'v1-resend.mbx')]);
  const dups: string[] = [];
  t.equal(claimNext(q, (n) => dups.push(n)), null, 'the same patches under another name are not run again');
  t.same(dups, ['v1-resend.mbx']);
  t.ok(existsSync(join(done, 'duplicate-v1-resend.mbx')));
});

t.test('two processes claiming at once never take the same series', async (t) => {
  const q = planQueueLayout(join(dir, 'q2'));
  const names = Array.from({ length: 20 }, (_, i) => `s${String(i).padStart(2, '0')}.mbx`);
  for (const n of names) {
    // Twenty different series: the patch subject differs, so the patchset hashes do.
    writeFileSync(join(dir, n), mbx.replace('fs/dax: a change', `fs/dax: change ${n}`));
  }
  enqueue(q, names.map((n) => join(dir, n)));
  // The built module (npm test builds it first), run by two real processes at once.
  const mod = new URL('../../../harness/dist/nightly/queue.js', import.meta.url).pathname;
  const worker = `import { claimNext, planQueueLayout } from ${JSON.stringify(mod)}; const q = planQueueLayout(${JSON.stringify(q.root)}); const got = []; for (let c; (c = claimNext(q)); ) got.push(c.series.name); console.log(JSON.stringify(got));`;
  const claimer = (): Promise<string[]> =>
    new Promise((res, rej) => {
      const p = spawn(process.execPath, ['--input-type=module', '-e', worker], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.on('close', (code) => (code === 0 ? res(JSON.parse(out) as string[]) : rej(new Error(`worker exit ${code}`))));
    });
  const [x, y] = await Promise.all([claimer(), claimer()]);
  t.same([...x!, ...y!].sort(), names, 'every series claimed exactly once between the two');
});


t.test('a series whose worker died is put back in the queue; a live or remote holder keeps it', async (t) => {
  const q = planQueueLayout(join(dir, 'q3'));
  writeFileSync(join(dir, 'a.mbx'), mbx.replace('fs/dax: a change', 'fs/dax: change a'));
  writeFileSync(join(dir, 'b.mbx'), mbx.replace('fs/dax: a change', 'fs/dax: change b'));
  writeFileSync(join(dir, 'c.mbx'), mbx.replace('fs/dax: a change', 'fs/dax: change c'));
  enqueue(q, ['a.mbx', 'b.mbx', 'c.mbx'].map((n) => join(dir, n)));
  for (let i = 0; i < 3; i++) claimNext(q);
  // a: its worker died (pid 999999 is checked by the stand-in); b: another host's worker; c: alive.
  const hold = (name: string, pid: number, host: string) => writeFileSync(join(q.cur, `.${name}.claim`), JSON.stringify({ pid, host, at: 'x' }));
  hold('a.mbx', 999999, hostname());
  hold('b.mbx', 999999, 'another-host');
  t.same(requeueAbandoned(q, (pid) => pid !== 999999), ['a.mbx']);
  t.same(readdirSync(q.new), ['a.mbx']);
  t.same(readdirSync(q.cur).filter((n) => !n.startsWith('.')).sort(), ['b.mbx', 'c.mbx']);
  t.equal(claimNext(q)?.series.name, 'a.mbx', 'and it is claimed again');
});
