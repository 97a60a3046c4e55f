import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKnownFailures, matchKnownFailure, parseKnownFailures } from '../src/known-failures.js';

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
  t.equal(matchKnownFailure(list, 'pin-truncate-odirect', 'xfs', '6.1.0-56-amd64', 'legacy')?.reason, 'r1');
  t.equal(matchKnownFailure(list, 'pin-truncate-odirect', 'ext4', '6.1.0-56-amd64', 'legacy'), null, 'other fs');
  t.equal(matchKnownFailure(list, 'pin-truncate-odirect', 'xfs', '6.15.0', 'legacy'), null, 'other release');
  t.equal(matchKnownFailure(list, 'pin-truncate-odirect', 'xfs', '6.1.0-56-amd64', 'folio'), null, 'other model');
  t.equal(matchKnownFailure(list, 'odirect-pin', 'ext4', 'anything', null)?.reason, 'r2', 'no constraints: any kernel');
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
