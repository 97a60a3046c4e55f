// The nightly's pure parts: the campaign each kernel line runs, and a line's verdict from what
// the campaign found (a line that did not build or boot is "not run", never a pass).
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lineVerdictOf, planLineArgv, sendReply } from '../../src/nightly/nightly.js';
import type { BaselineResult } from '../../src/campaign/campaign.js';
import type { Claimed } from '../../src/nightly/queue.js';
import type { RunSummary, TestRecord } from '../../src/run/run.js';

const claimed = (base: string | null): Claimed => ({ path: '/q/cur/v1.mbx', series: { name: 'v1.mbx', patches: [], id: 'x', base, thread: { subject: 's', messageId: null, from: 'f' } } });

t.test('each line runs --baseline --bisect on the series, on its base-commit when it has one', async (t) => {
  const qc = { lines: [], tests: 'fast', fs: 'ext4' };
  t.same(planLineArgv({ name: 'l', tree: 'debian-6.1', base: 'v6.1' }, claimed('abc1234'), qc, '/r', ['-v']), ['run', '--tree', 'debian-6.1', '--series', '/q/cur/v1.mbx', '--bisect', '--base', 'abc1234', '--tests', 'fast', '--fs', 'ext4', '--results', '/r', '-v']);
  t.same(planLineArgv({ name: 'l', tree: '/src/linux', base: 'v6.1' }, claimed(null), { lines: [], tests: null, fs: null }, '/r'), ['run', '--tree', '/src/linux', '--series', '/q/cur/v1.mbx', '--bisect', '--base', 'v6.1', '--results', '/r'], "the line's base when the series names none");
});

const rec = (fs: string, test: string, outcome: TestRecord['outcome'], over: Partial<TestRecord> = {}): TestRecord => ({ id: `${fs}-${test}`, fs, test, outcome, reason: '', durationMs: 1, checks: [], findings: [], taintBefore: 0, taintAfter: 0, report: null, exitCode: 0, stderr: '', dmesgExcerpt: [], attempts: [], ...over });
const summary = (records: TestRecord[]): RunSummary => ({ exitCode: 0, runDir: '/r/x', records, boots: [], testsMs: 0, infra: [] });
const result = (over: Partial<BaselineResult>): BaselineResult => ({ code: 0, campaignDir: '/r/c', base: { commit: 'b', summary: null, error: null }, series: { commit: 'h', summary: null, error: null }, comparison: null, culprits: null, subjects: ['one', 'two'], ...over });

t.test('a line verdict: new failures with their culprit and evidence; infrastructure named; no build is not run', async (t) => {
  const failing = rec('ext4', 'pin-truncate-vmsplice', 'fail', { reason: '1 of 14 checks failed', checks: [{ name: 'truncate woke up', ok: false, expected: 'true', actual: 'false' }], dmesgExcerpt: ['[ 1.0] random line', '[ 1.1] WARNING: CPU: 0 PID: 1 at fs/dax.c:398 x'] });
  const r = result({
    base: { commit: 'b', summary: summary([rec('ext4', 'pin-truncate-vmsplice', 'pass'), rec('ext4', 'odirect-pin', 'error', { reason: 'infrastructure: guest lost' })]), error: null },
    series: { commit: 'h', summary: summary([failing, rec('ext4', 'odirect-pin', 'pass')]), error: null },
    comparison: [
      { point: 'ext4/pin-truncate-vmsplice', base: 'pass', series: 'fail', change: 'new failure' },
      { point: 'ext4/odirect-pin', base: 'error', series: 'pass', change: 'not compared' },
    ],
    culprits: [{ point: 'ext4/pin-truncate-vmsplice', patch: 2, subject: 'two' }],
  });
  const v = lineVerdictOf('debian-6.1', r);
  t.equal(v.status, 'new failures');
  t.same(v.newFailures.map((f) => [f.point, f.firstBad, f.firstBadSubject]), [['ext4/pin-truncate-vmsplice', 2, 'two']]);
  t.same(v.newFailures[0]!.evidence, ['check: truncate woke up: expected true, observed false', '[ 1.1] WARNING: CPU: 0 PID: 1 at fs/dax.c:398 x']);
  t.same(v.infra, ['base ext4/odirect-pin: infrastructure: guest lost']);
  const none = lineVerdictOf('debian-6.1', result({ base: { commit: 'b', summary: null, error: 'build error: make failed' } }));
  t.equal(none.status, 'not run');
  t.match(none.reason, /^infrastructure: build error: make failed/);
});

t.test('--send-with: each reply piped to the command once; a failed send is kept, said and retried', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'send-'));
  writeFileSync(join(dir, 'reply.eml'), 'From: a\r\nTo: b\r\n\r\nbody\r\n');
  // A real process stands in for the MTA: sh writing what it is given to a file.
  const mailbox = join(dir, 'mailbox');
  const logs: string[] = [];
  t.equal(await sendReply(dir, ['sh', '-c', 'echo "421 try later" >&2; exit 75'], (s) => logs.push(s)), false);
  t.match(logs[0], /failed \(exit 75\): 421 try later; the reply is kept/);
  t.equal(JSON.parse(readFileSync(join(dir, 'sent.json'), 'utf8')).exitCode, 75);
  t.equal(await sendReply(dir, ['sh', '-c', `cat >> ${mailbox}`], (s) => logs.push(s)), true);
  t.equal(readFileSync(mailbox, 'utf8'), readFileSync(join(dir, 'reply.eml'), 'utf8'), 'the MTA got the .eml as it is');
  t.equal(await sendReply(dir, ['sh', '-c', `cat >> ${mailbox}`], (s) => logs.push(s)), true);
  t.equal(readFileSync(mailbox, 'utf8').split('From: a').length - 1, 1, 'never sent twice');
});
