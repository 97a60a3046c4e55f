// Patch series: real `git format-patch` output from a scratch repository, cut and broken in
// the ways mail does, and `git am -3` on a throwaway worktree.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applySeries, describePatch, findBrokenHunk, parseSeries, patchsetHash } from '../../src/kernel/series.js';

const dir = mkdtempSync(join(tmpdir(), 'dax-series-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const repo = join(dir, 'repo');
const git = (...args: string[]): string =>
  execFileSync('git', ['-C', repo, '-c', 'user.name=T', '-c', 'user.email=t@example.org', ...args], { encoding: 'utf8' });

execFileSync('git', ['init', '-q', '-b', 'main', repo]);
writeFileSync(join(repo, 'dax.c'), Array.from({ length: 40 }, (_, i) => `line ${i + 1}`).join('\n') + '\n');
git('add', '.');
git('commit', '-q', '-m', 'base');
git('tag', 'v1');
writeFileSync(join(repo, 'dax.c'), readFileSync(join(repo, 'dax.c'), 'utf8').replace('line 5\n', 'line five\n'));
git('commit', '-q', '-am', 'fs/dax: first change');
writeFileSync(join(repo, 'dax.c'), readFileSync(join(repo, 'dax.c'), 'utf8').replace('line 30\n', 'line thirty\n'));
git('commit', '-q', '-am', 'fs/dax: second change');
git('format-patch', '-q', '--cover-letter', '-o', join(dir, 'out'), 'v1..HEAD');
const series = execFileSync('sh', ['-c', `cat ${join(dir, 'out')}/*.patch`], { encoding: 'utf8' });
writeFileSync(join(dir, 'series.mbox'), series);

t.test('a real format-patch series parses, cover letter included', async (t) => {
  const ps = parseSeries(series, 'series.mbox');
  t.equal(ps.length, 3);
  t.same(ps.map((p) => [p.number, p.total, p.hasDiff]), [[0, 2, false], [1, 2, true], [2, 2, true]]);
  t.equal(ps[1]?.subject, 'fs/dax: first change');
  t.equal(describePatch(ps[2]!), '2/2 "fs/dax: second change"');
});

t.test('malformed input is a config error naming the file and the problem', async (t) => {
  t.throws(() => parseSeries('just some text\n', 'notes.txt'), { kind: 'config', message: /--series notes.txt: not an mbox or format-patch file/ });
  const cut = series.slice(0, series.lastIndexOf('line thirty') + 5);
  t.throws(() => parseSeries(cut, 'cut.mbox'), { kind: 'config', message: /patch 2\/2 "fs\/dax: second change" is truncated or damaged: the hunk at line \d+ .* ends early/ });
  const withoutFirst = series.split(/(?=^From [0-9a-f]{40} )/m).filter((m) => !m.includes('first change')).join('');
  t.throws(() => parseSeries(withoutFirst, 'gap.mbox'), { message: /the series has 2 patches but 1\/2 is missing/ });
  const coverOnly = series.split(/(?=^From [0-9a-f]{40} )/m)[0]!;
  t.throws(() => parseSeries(coverOnly, 'cover.mbox'), { message: /no patch in it carries a diff/ });
  t.throws(() => parseSeries(series.replace(/^Subject: .*first change\n/m, ''), 'nosubj.mbox'), { message: /message 2 \(line \d+\) has no Subject header/ });
});

t.test('findBrokenHunk', async (t) => {
  t.equal(findBrokenHunk(['@@ -1,2 +1,2 @@', ' a', '-b', '+c']), null);
  t.match(findBrokenHunk(['@@ -1,3 +1,3 @@', ' a', '-b', '+c']), /ends early: 1 old and 1 new lines missing/);
  t.match(findBrokenHunk(['@@ -1 +1 @@', '-a', '+b', '+c']), null, 'lines after a complete hunk are not counted');
  t.equal(findBrokenHunk(['@@ -1 +1 @@', '-a', '\\ No newline at end of file', '+b']), null);
});

t.test('git am -3 on a worktree: applies, and the checkout stays as it was', async (t) => {
  const before = git('rev-parse', 'HEAD').trim();
  const wt = join(dir, 'wt-ok');
  const r = await applySeries({ tree: repo, base: 'v1', worktree: wt }, [parseSeries(series, 'series.mbox')]);
  t.match(r.head, /^[0-9a-f]{40}$/);
  t.match(readFileSync(join(wt, 'dax.c'), 'utf8'), /line five[\s\S]*line thirty/);
  t.equal(git('rev-parse', 'HEAD').trim(), before, "the user's HEAD did not move");
  t.equal(git('status', '--porcelain').trim(), '', "the user's checkout is clean");
});

t.test('a patch that does not apply is named, with the conflict, and nothing is left behind', async (t) => {
  // A base where line 30 already changed: patch 2/2 conflicts.
  git('checkout', '-q', '-b', 'other', 'v1');
  writeFileSync(join(repo, 'dax.c'), readFileSync(join(repo, 'dax.c'), 'utf8').replace('line 30\n', 'line XXX\n'));
  git('commit', '-q', '-am', 'other change');
  git('checkout', '-q', 'main');
  const wt = join(dir, 'wt-bad');
  const err = await applySeries({ tree: repo, base: 'other', worktree: wt }, [parseSeries(series, 'series.mbox')]).catch((e: unknown) => e);
  t.match(err, { name: 'HarnessError', kind: 'config', message: /patch 2\/2 "fs\/dax: second change" does not apply to other/ });
  t.match((err as { detail: string }).detail, /line XXX|line thirty|dax\.c/, 'shows the conflict');
  t.notOk(existsSync(wt), 'the throwaway worktree is removed');
  t.notOk(existsSync(`${wt}.patches`), 'and the split patch files');
  t.equal(git('status', '--porcelain').trim(), '');
  const bad = await applySeries({ tree: repo, base: 'no-such-ref', worktree: join(dir, 'wt-x') }, []).catch((e: unknown) => e);
  t.match(bad, { kind: 'config', message: /--base no-such-ref: not a commit/ });
});

t.test('patchsetHash is KCIDB\'s: sha256sum of the patch files, cut to the sums, sha256sum again', async (t) => {
  const ps = parseSeries(series, 'series.mbox');
  // The definition in KCIDB's schema, run for real on the files git am is given.
  const files = join(dir, 'hash');
  execFileSync('mkdir', ['-p', files]);
  ps.filter((p) => p.hasDiff).forEach((p, i) => writeFileSync(join(files, `${String(i + 1).padStart(4, '0')}.patch`), `${p.raw}\n`));
  const shell = execFileSync('sh', ['-c', 'sha256sum *.patch | cut -c-64 | sha256sum | cut -c-64'], { cwd: files, encoding: 'utf8' }).trim();
  t.equal(patchsetHash(ps), shell);
  t.match(patchsetHash(ps), /^[0-9a-f]{64}$/);
  t.equal(patchsetHash(ps.filter((p) => !p.hasDiff)), '', 'no patch, no hash (KCIDB: empty string)');
});

t.test('a Message-ID is kept without its angle brackets; format-patch output has none', async (t) => {
  const ps = parseSeries(series, 'series.mbox');
  t.ok(ps.every((p) => p.messageId === null));
  const mail = series.replace(/^Subject: (.*)$/m, 'Message-ID: <20261203.1-dax@example.org>\nSubject: $1');
  t.equal(parseSeries(mail, 'mail.mbox')[0]!.messageId, '20261203.1-dax@example.org');
});
