import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKnownFailures, matchKnownFailure, parseKnownFailures, type FailureEvidence } from '../src/known-failures.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

t.test('the shipped list parses', async (t) => {
  const list = loadKnownFailures(join(root, 'kernel-tests', 'known-failures.json'));
  t.ok(Array.isArray(list));
  for (const k of list) t.ok(k.evidence.length > 0, `${k.test} has evidence`);
});

t.test('matching by test, fs, model and release', async (t) => {
  const list = parseKnownFailures(
    JSON.stringify({
      failures: [
        { test: 'pin-truncate-odirect', fs: ['xfs'], model: 'legacy', release: '^6\\.1\\.', reason: 'r1', evidence: 'results/x' },
        { test: 'odirect-pin', reason: 'r2', evidence: 'results/y' },
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
  t.throws(() => parseKnownFailures('{"failures":[{"test":"a","reason":"r"}]}', 'k.json'), { kind: 'config', message: /entry 1: no "evidence"/ });
  t.throws(() => parseKnownFailures('{"failures":[{"test":"a","reason":"r","evidence":"e","model":"new"}]}', 'k.json'), { message: /entry 1: model "new"/ });
  t.throws(() => parseKnownFailures('{"failures":[{"test":"a","reason":"r","evidence":"e","release":"("}]}', 'k.json'), { message: /not a regular expression/ });
  const dir = mkdtempSync(join(tmpdir(), 'kf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.throws(() => loadKnownFailures(join(dir, 'missing.json')), { kind: 'config', message: /cannot read the known-failure list/ });
  t.ok(readFileSync(join(root, 'kernel-tests', 'known-failures.json'), 'utf8').includes('evidence'));
});

t.test('signatures: a known failure must fail the known way, or it stays red', async (t) => {
  const list = parseKnownFailures(
    JSON.stringify({
      failures: [
        {
          test: 'umount-pinned',
          reason: 'r',
          evidence: 'e',
          signature: { checks: ['^umount did not drop the pinned page', '^umount returned only after'], dmesg: ['warning'], taint: ['W'] },
        },
        { test: 'namespace-disable-pinned', reason: 'r', evidence: 'e', signature: { helper: 'has not completed \\d+ ms', dmesg: ['bug'], taint: ['D', 'W'] } },
      ],
    }),
    'inline',
  );
  const ev = (over: Partial<FailureEvidence> = {}): FailureEvidence => ({
    outcome: 'fail',
    failedChecks: ['umount did not drop the pinned page: EBUSY, or the page idle when it returned (legacy model)', 'umount returned only after the O_DIRECT read completed'],
    helperFailure: null,
    findingKinds: ['warning'],
    taintBefore: 4096,
    taintAfter: 4096 + 512,
    ...over,
  });
  const m = (e: FailureEvidence, test = 'umount-pinned') => matchKnownFailure(list, test, 'ext4', '6.1.0', 'legacy', e);
  t.equal(m(ev())?.mismatch, null, 'the known failure, as the run showed it');
  t.equal(m(ev({ findingKinds: [], taintAfter: 4096 }))?.mismatch, null, 'the WARN may have fired earlier in the boot (WARN_ON_ONCE)');
  t.match(m(ev({ failedChecks: [...ev().failedChecks, 'unmounted: refcount back to idle (legacy model)'] }))?.mismatch, /other checks failed: unmounted: refcount back to idle/, 'one more failed check is a new failure');
  t.match(m(ev({ findingKinds: ['warning', 'bad-page'] }))?.mismatch, /other dmesg findings: bad-page/);
  t.match(m(ev({ taintAfter: 4096 + 512 + 128 }))?.mismatch, /other taint: D/, 'an Oops on top is new');
  t.match(m(ev({ outcome: 'timeout' }))?.mismatch, /outcome timeout, expected fail/);
  t.match(m(ev({ failedChecks: [], helperFailure: 'timeout after 30 s during umount' }))?.mismatch, /the helper failed otherwise/);
  const ns = { outcome: 'fail', failedChecks: [], helperFailure: 'the O_DIRECT read has not completed 10000 ms after the namespace disable', findingKinds: ['bug', 'bug'], taintBefore: 4096, taintAfter: 4096 + 512 + 128 };
  t.equal(m(ns, 'namespace-disable-pinned')?.mismatch, null, 'the Oops after the disable, as the run showed it');
  t.match(m({ ...ns, helperFailure: 'umount: umount2: Device or resource busy' }, 'namespace-disable-pinned')?.mismatch, /the helper failed otherwise/);
  t.equal(matchKnownFailure(list, 'umount-pinned', 'ext4', '6.1.0', 'legacy')?.mismatch, null, 'without evidence only the entry is looked up');
});

t.test('signatures: malformed ones are config errors', async (t) => {
  const one = (signature: unknown): string => JSON.stringify({ failures: [{ test: 'x', reason: 'r', evidence: 'e', signature }] });
  t.throws(() => parseKnownFailures(one({ checks: 'x' }), 'f.json'), /entry 1: signature.checks must be a list of strings/);
  t.throws(() => parseKnownFailures(one({ checks: ['('] }), 'f.json'), /signature pattern "\(" is not a regular expression/);
  t.throws(() => parseKnownFailures(one({ helper: '[' }), 'f.json'), /not a regular expression/);
});

t.test('the real list: every entry has a signature', async (t) => {
  const real = loadKnownFailures(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'kernel-tests', 'known-failures.json'));
  for (const k of real) t.ok(k.signature, `${k.test}: signature`);
});
