// The morning's reading: a series' verdict over its kernel lines, the reply (.eml, threaded to
// the cover letter, read back by a real mail parser's rules) and the patchwork checks.
import t from 'tap';
import { formatReplyBody, formatReplyEml, overallOf, planPatchworkChecks, type LineVerdict, type SeriesVerdict } from '../../src/nightly/reply.js';

const line = (over: Partial<LineVerdict>): LineVerdict => ({ line: 'debian-6.1', status: 'pass', base: 'a'.repeat(40), reason: null, newFailures: [], fixed: [], infra: [], evidence: [], campaignDir: '/r/c', ...over });
const verdict = (lines: LineVerdict[]): SeriesVerdict => ({
  id: 'f'.repeat(64),
  name: 'v2.mbx',
  thread: { subject: '[PATCH 0/2] fs/dax: wake waiters', messageId: 'cover.2@example.org', from: 'Ada Dev <ada@example.org>' },
  patches: [
    { subject: 'fs/dax: one', messageId: 'p1@example.org' },
    { subject: 'fs/dax: two', messageId: 'p2@example.org' },
  ],
  lines,
  overall: overallOf(lines),
});
const broken = line({
  status: 'new failures',
  newFailures: [{ point: 'ext4/pin-truncate-vmsplice', detail: '2 of 15 checks failed', firstBad: 2, firstBadSubject: 'fs/dax: two', unknown: null, evidence: ['check: truncate waited for the pin: expected true, observed false', 'WARNING: CPU: 0 PID: 9 at fs/dax.c:398 dax_disassociate_entry+0x38/0x73'] }],
});

t.test('overall: a new failure or a series that does not apply fails; a line not run is never a pass', async (t) => {
  t.equal(overallOf([line({})]), 'pass');
  t.equal(overallOf([line({}), broken]), 'fail');
  t.equal(overallOf([line({ status: 'does not apply', reason: 'patch 1/2 does not apply' })]), 'fail');
  t.equal(overallOf([line({}), line({ line: 'linux', status: 'not run', reason: 'infrastructure: boot failed' })]), 'incomplete');
  t.equal(overallOf([line({ infra: ['series ext4/odirect-pin: infrastructure: guest lost'] })]), 'incomplete', 'a point lost to infrastructure is not a pass');
});

t.test('the reply names the first bad patch, the evidence and what did not run', async (t) => {
  const body = formatReplyBody(verdict([broken, line({ line: 'linux', status: 'not run', reason: 'infrastructure: the kernel did not boot' })]));
  t.match(body, /Verdict: FAIL/);
  t.match(body, /ext4\/pin-truncate-vmsplice: first bad patch 2\/2: "fs\/dax: two"/);
  t.match(body, /> WARNING: CPU: 0 PID: 9 at fs\/dax\.c:398/);
  t.match(body, /linux: NOT RUN: infrastructure: the kernel did not boot/);
  const incomplete = formatReplyBody(verdict([line({}), line({ line: 'linux', status: 'not run', reason: 'x' })]));
  t.match(incomplete, /Verdict: INCOMPLETE: .*this is not a pass/);
});

t.test('the .eml is threaded to the cover letter and well formed', async (t) => {
  const eml = formatReplyEml(verdict([broken]), { from: 'dax-harness <ci@lab.example.org>', date: new Date('2026-12-03T06:00:00Z'), messageIdDomain: 'lab.example.org' });
  const [head, body] = eml.split('\r\n\r\n', 2);
  const h = Object.fromEntries(head!.split('\r\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
  t.equal(h['In-Reply-To'], '<cover.2@example.org>');
  t.equal(h.References, '<cover.2@example.org>');
  t.equal(h.Subject, 'Re: [PATCH 0/2] fs/dax: wake waiters');
  t.equal(h.To, 'Ada Dev <ada@example.org>');
  t.equal(h.Date, 'Thu, 03 Dec 2026 06:00:00 +0000');
  t.match(h['Message-ID'], /^<dax-harness\.f{16}\.\d+@lab\.example\.org>$/);
  t.equal(h['X-Dax-Harness-Verdict'], 'fail');
  t.ok(eml.split('\r\n').every((l) => Buffer.byteLength(l) < 998), 'no line over RFC 5322\'s limit');
  t.notMatch(body!, /[^\r]\n/, 'CRLF line ends throughout');
  const utf8 = formatReplyEml({ ...verdict([broken]), thread: { subject: '[PATCH] fs/dax: naïve fix', messageId: null, from: 'Zoë <z@example.org>' } }, { from: 'x <x@y>', date: new Date(0) });
  t.match(utf8, /^Subject: =\?UTF-8\?B\?/m, 'non-ASCII headers are RFC 2047 encoded');
  t.notMatch(utf8, /In-Reply-To/, 'no thread id, no In-Reply-To');
});

t.test('patchwork checks: fail on the first bad patch only, warning where a line did not run', async (t) => {
  const checks = planPatchworkChecks(verdict([broken, line({ line: 'linux', status: 'not run', reason: 'boot failed' })]));
  t.same(
    checks.map((c) => [c.context, c.patch, c.state]),
    [
      ['dax-harness-debian-6.1', 'fs/dax: one', 'success'],
      ['dax-harness-debian-6.1', 'fs/dax: two', 'fail'],
      ['dax-harness-linux', 'fs/dax: one', 'warning'],
      ['dax-harness-linux', 'fs/dax: two', 'warning'],
    ],
  );
  t.match(checks[1]!.description, /first bad patch of ext4\/pin-truncate-vmsplice/);
  const noApply = planPatchworkChecks(verdict([line({ status: 'does not apply', reason: 'patch 2/2 does not apply to abc' })]));
  t.ok(noApply.every((c) => c.state === 'fail'));
  t.ok(planPatchworkChecks(verdict([line({})])).every((c) => c.state === 'success' && c.description === 'no new failure'));
});
