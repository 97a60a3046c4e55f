import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKnownFailures, matchKnownFailure, parseKnownFailures, type FailureEvidence } from '../../src/suite/known-failures.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

t.test('the shipped list parses', async (t) => {
  const list = loadKnownFailures(join(root, 'kernel-tests', 'known-failures.json'));
  t.ok(Array.isArray(list));
  for (const k of list) t.ok(k.evidence.length > 0, `${k.test} has evidence`);
});

const SIG = { checks: ['^x'] };

t.test('matching by test, fs, model and release', async (t) => {
  const list = parseKnownFailures(
    JSON.stringify({
      failures: [
        { test: 'pin-truncate-odirect', fs: ['xfs'], model: 'legacy', release: '^6\\.1\\.', reason: 'r1', evidence: 'results/x', signature: SIG },
        { test: 'odirect-pin', reason: 'r2', evidence: 'results/y', signature: SIG },
      ],
    }),
    'k.json',
  );
  t.equal(matchKnownFailure(list, 'pin-truncate-odirect', 'xfs', '6.1.0-56-amd64', 'legacy')?.entry.reason, 'r1');
  t.equal(matchKnownFailure(list, 'pin-truncate-odirect', 'ext4', '6.1.0-56-amd64', 'legacy'), null, 'other fs');
  t.equal(matchKnownFailure(list, 'pin-truncate-odirect', 'xfs', '6.15.0', 'legacy'), null, 'other release');
  t.equal(matchKnownFailure(list, 'pin-truncate-odirect', 'xfs', '6.1.0-56-amd64', 'folio'), null, 'other model');
  t.equal(matchKnownFailure(list, 'odirect-pin', 'ext4', 'anything', null)?.entry.reason, 'r2', 'no constraints: any kernel');
  t.equal(matchKnownFailure(list, 'mmap-fault-4k', 'ext4', '6.1.0', 'legacy'), null, 'unlisted test');
});

t.test('bad lists are config errors naming the entry', async (t) => {
  t.throws(() => parseKnownFailures('{', 'k.json'), { kind: 'config', message: /k\.json: not valid JSON/ });
  t.throws(() => parseKnownFailures('[]', 'k.json'), { kind: 'config', message: /"failures" array/ });
  t.throws(() => parseKnownFailures('{"failures":[{"test":"a","reason":"r","signature":{"checks":["x"]}}]}', 'k.json'), { kind: 'config', message: /entry 1: no "evidence"/ });
  t.throws(() => parseKnownFailures('{"failures":[{"test":"a","reason":"r","evidence":"e","model":"new","signature":{"checks":["x"]}}]}', 'k.json'), { message: /entry 1: model "new"/ });
  t.throws(() => parseKnownFailures('{"failures":[{"test":"a","reason":"r","evidence":"e","release":"(","signature":{"checks":["x"]}}]}', 'k.json'), { message: /not a regular expression/ });
  const dir = mkdtempSync(join(tmpdir(), 'kf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.throws(() => loadKnownFailures(join(dir, 'missing.json')), { kind: 'config', message: /cannot read the known-failure list/ });
  t.ok(readFileSync(join(root, 'kernel-tests', 'known-failures.json'), 'utf8').includes('evidence'));
});

const UMOUNT_CHECKS = ['umount did not drop the pinned page: EBUSY, or the page idle when it returned (legacy model)', 'umount returned only after the O_DIRECT read completed'];
const DAX_WARN = { kind: 'warning', function: 'dax_disassociate_entry', file: 'fs/dax.c:398' };

t.test('signatures: a known failure matches only on its own positive evidence', async (t) => {
  const list = parseKnownFailures(
    JSON.stringify({
      failures: [
        {
          test: 'umount-pinned',
          reason: 'r',
          evidence: 'e',
          signature: { checks: ['^umount did not drop the pinned page', '^umount returned only after'], dmesg: [{ kind: 'warning', function: 'dax_disassociate_entry', file: 'fs/dax.c:398' }], taint: ['W'] },
        },
        {
          test: 'namespace-disable-pinned',
          reason: 'r',
          evidence: 'e',
          signature: {
            helper: 'has not completed \\d+ ms',
            dmesg: [{ kind: 'bug', function: ['bio_first_folio', '__bio_release_pages'], required: true }, DAX_WARN],
            taint: ['D', 'W'],
          },
        },
      ],
    }),
    'inline',
  );
  const ev = (over: Partial<FailureEvidence> = {}): FailureEvidence => ({
    outcome: 'fail',
    failedChecks: UMOUNT_CHECKS,
    helperFailure: null,
    reported: true,
    findings: [{ ...DAX_WARN }],
    taintBefore: 4096,
    taintAfter: 4096 + 512,
    ...over,
  });
  const m = (e: FailureEvidence, test = 'umount-pinned') => matchKnownFailure(list, test, 'ext4', '6.1.0', 'legacy', e);
  t.equal(m(ev())?.mismatch, null, 'the known failure, as the run showed it');
  t.equal(m(ev({ findings: [], taintAfter: 4096 }))?.mismatch, null, 'the WARN may have fired earlier in the boot (WARN_ON_ONCE)');
  // What the issue tried: the helper segfaulted at its start, so no check ran and nothing was logged.
  t.match(m(ev({ failedChecks: [], findings: [], taintAfter: 4096, reported: false }))?.mismatch, /the helper printed no report/, 'a helper that printed nothing is never the known failure');
  t.match(m(ev({ failedChecks: [UMOUNT_CHECKS[0]!] }))?.mismatch, /the known failing check did not fail: \^umount returned only after/, 'every named check must have failed');
  t.match(m(ev({ failedChecks: [] }))?.mismatch, /the known failing check did not fail/, 'no failed check at all: not the known failure');
  t.match(m(ev({ failedChecks: [...UMOUNT_CHECKS, 'unmounted: refcount back to idle (legacy model)'] }))?.mismatch, /other checks failed: unmounted: refcount back to idle/, 'one more failed check is a new failure');
  t.match(m(ev({ findings: [{ kind: 'bad-page', function: null, file: null }] }))?.mismatch, /other dmesg findings: bad-page/);
  t.match(m(ev({ findings: [{ kind: 'warning', function: 'dax_insert_entry', file: 'fs/dax.c:380' }] }))?.mismatch, /other dmesg findings: warning in dax_insert_entry \(fs\/dax\.c:380\)/, 'a WARNING in another function is not the known one');
  t.match(m(ev({ findings: [{ kind: 'warning', function: 'dax_disassociate_entry', file: 'fs/dax.c:404' }] }))?.mismatch, /other dmesg findings/, 'nor one at another line');
  t.equal(m(ev({ findings: [{ kind: 'warning', function: 'dax_disassociate_entry', file: '../../src/debian-6.1/fs/dax.c:398' }] }))?.mismatch, null, 'an out-of-tree build prints the path from its object directory: the same site');
  t.match(m(ev({ findings: [{ kind: 'warning', function: 'dax_disassociate_entry', file: '../../src/debian-6.1/xfs/dax.c:398' }] }))?.mismatch, /other dmesg findings/, 'a path that only ends alike is not the same file');
  t.match(m(ev({ taintAfter: 4096 + 512 + 128 }))?.mismatch, /other taint: D/, 'an Oops on top is new');
  t.match(m(ev({ outcome: 'timeout' }))?.mismatch, /outcome timeout, expected fail/);
  t.match(m(ev({ outcome: 'crash', reported: false }))?.mismatch, /outcome crash/, 'a crash is never the known failure unless the entry says so');
  t.match(m(ev({ failedChecks: [], helperFailure: 'timeout after 30 s during umount' }))?.mismatch, /did not fail|the helper failed otherwise/);

  const bug = { kind: 'bug', function: 'bio_first_folio', file: null };
  const ns = ev({ failedChecks: [], helperFailure: 'the O_DIRECT read has not completed 10000 ms after the namespace disable', findings: [bug, { ...DAX_WARN }], taintAfter: 4096 + 512 + 128 });
  t.equal(m(ns, 'namespace-disable-pinned')?.mismatch, null, 'the Oops in bio_first_folio after the disable, as the run showed it');
  t.equal(m({ ...ns, findings: [{ kind: 'bug', function: '__bio_release_pages', file: null }] }, 'namespace-disable-pinned')?.mismatch, null, 'the same Oops where a build inlined bio_first_folio (Debian 6.1.0-57)');
  t.match(m({ ...ns, findings: [{ ...DAX_WARN }] }, 'namespace-disable-pinned')?.mismatch, /the known dmesg incident is missing: bug in bio_first_folio or __bio_release_pages/, 'the required Oops must be there');
  t.match(m({ ...ns, findings: [{ kind: 'bug', function: 'memunmap_pages', file: null }] }, 'namespace-disable-pinned')?.mismatch, /other dmesg findings: bug in memunmap_pages/, 'an Oops elsewhere is not the known one');
  t.match(m({ ...ns, helperFailure: 'umount: umount2: Device or resource busy' }, 'namespace-disable-pinned')?.mismatch, /the helper failed otherwise/);
  t.match(m({ ...ns, helperFailure: null }, 'namespace-disable-pinned')?.mismatch, /the helper did not fail as known/);
  t.equal(matchKnownFailure(list, 'umount-pinned', 'ext4', '6.1.0', 'legacy')?.mismatch, null, 'without evidence only the entry is looked up');
});

t.test('signatures: several entries for one test, the first that fits wins', async (t) => {
  const list = parseKnownFailures(
    JSON.stringify({
      failures: [
        { test: 'x', reason: 'one way', evidence: 'e', signature: { checks: ['^a'] } },
        { test: 'x', reason: 'another way', evidence: 'e', signature: { checks: ['^b'] } },
      ],
    }),
    'inline',
  );
  const e = (checks: string[]): FailureEvidence => ({ outcome: 'fail', failedChecks: checks, helperFailure: null, reported: true, findings: [], taintBefore: 0, taintAfter: 0 });
  t.equal(matchKnownFailure(list, 'x', 'ext4', '6.1.0', 'legacy', e(['b1']))?.entry.reason, 'another way');
  t.match(matchKnownFailure(list, 'x', 'ext4', '6.1.0', 'legacy', e(['c']))?.mismatch, /did not fail: \^a/, 'none fits: the first one says why');
});

t.test('signatures: malformed or evidence-free ones are config errors', async (t) => {
  const one = (signature: unknown): string => JSON.stringify({ failures: [{ test: 'x', reason: 'r', evidence: 'e', signature }] });
  t.throws(() => parseKnownFailures(JSON.stringify({ failures: [{ test: 'x', reason: 'r', evidence: 'e' }] }), 'f.json'), /entry 1: no "signature"/);
  t.throws(() => parseKnownFailures(one({ checks: 'x' }), 'f.json'), /entry 1: signature.checks must be a list of strings/);
  t.throws(() => parseKnownFailures(one({ checks: ['('] }), 'f.json'), /signature pattern "\(" is not a regular expression/);
  t.throws(() => parseKnownFailures(one({ helper: '[' }), 'f.json'), /not a regular expression/);
  t.throws(() => parseKnownFailures(one({ checks: ['x'], dmesg: ['warning'] }), 'f.json'), /needs a kind and a function/, 'a dmesg kind alone is refused');
  t.throws(() => parseKnownFailures(one({ checks: ['x'], dmesg: [{ kind: 'warning', function: 'f', file: 'fs/dax.c' }] }), 'f.json'), /not file:line/);
  t.throws(() => parseKnownFailures(one({ taint: ['W'] }), 'f.json'), /no positive evidence/, 'taint alone proves nothing');
  t.throws(() => parseKnownFailures(one({ noReport: true, outcomes: ['fail'] }), 'f.json'), /no positive evidence/, 'no report alone proves nothing');
  t.throws(() => parseKnownFailures(one({ dmesg: [{ kind: 'warning', function: 'f' }] }), 'f.json'), /no positive evidence/, 'an optional incident is not evidence');
});

t.test('the real list: every entry names positive evidence', async (t) => {
  const real = loadKnownFailures(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'kernel-tests', 'known-failures.json'));
  for (const k of real) {
    t.ok((k.signature.checks ?? []).length > 0 || k.signature.helper || (k.signature.dmesg ?? []).some((d) => d.required), `${k.test}: positive evidence`);
    for (const d of k.signature.dmesg ?? []) t.ok(d.function, `${k.test}: dmesg ${d.kind} has a location`);
  }
});
