import t from 'tap';
import { runChecked, runCommand, shellQuote } from '../../src/core/proc.js';

const AWKWARD = [
  'plain',
  '',
  'with space',
  "it's",
  "''",
  '"double"',
  '$HOME',
  '$(touch /tmp/pwned)',
  '`id`',
  'a;b&&c|d',
  'glob*?[x]',
  '~user',
  '!history',
  'back\\slash',
  'tab\tin',
  'new\nline',
  '#comment',
  '-e',
  'memmap=1024M!4096M',
  'ümlaut ✓',
  '{a,b}',
  '>out <in',
];

t.test('shellQuote: safe words stay bare', async (t) => {
  t.equal(shellQuote(['qemu-system-x86_64', '-m', '2048M,slots=3,maxmem=5120M', 'user,id=net0,hostfwd=tcp:127.0.0.1:10022-:22', '/a/b.img', 'x@y%z+w']), 'qemu-system-x86_64 -m 2048M,slots=3,maxmem=5120M user,id=net0,hostfwd=tcp:127.0.0.1:10022-:22 /a/b.img x@y%z+w');
  t.equal(shellQuote(['']), "''", 'an empty word is kept as a word');
  t.equal(shellQuote(["it's"]), `'it'\\''s'`);
  t.equal(shellQuote([]), '');
});

t.test('shellQuote: a POSIX shell gets back the exact argv', async (t) => {
  // sh -c 'printf "%s\0" "$@"' sh <quoted words>: NUL-separated so newlines survive too.
  const line = `printf '%s\\0' ${shellQuote(AWKWARD)}`;
  const r = await runCommand({ argv: ['sh', '-c', line], timeoutMs: 5000 });
  t.equal(r.exitCode, 0, r.stderr);
  t.same(r.stdout.split('\0').slice(0, -1), AWKWARD, 'every word, byte for byte');

  // The same through "$@", as the brief's round trip does it (one word per line).
  const oneLine = AWKWARD.filter((a) => !a.includes('\n'));
  const r2 = await runCommand({ argv: ['sh', '-c', `set -- ${shellQuote(oneLine)}; printf '%s\\n' "$@"`], timeoutMs: 5000 });
  t.same(r2.stdout.split('\n').slice(0, -1), oneLine);
});

t.test('runCommand: exit 0', async (t) => {
  const r = await runCommand({ argv: ['sh', '-c', 'printf out; printf err >&2; printf "%s" "$X"', 'sh'], env: { X: '-env' }, timeoutMs: 5000 });
  t.same(
    { ...r, durationMs: 0 },
    { argv: ['sh', '-c', 'printf out; printf err >&2; printf "%s" "$X"', 'sh'], exitCode: 0, signal: null, timedOut: false, stdout: 'out-env', stderr: 'err', durationMs: 0 },
    'the one result shape, with env applied',
  );
  t.type(r.durationMs, 'number');
  t.ok(r.durationMs >= 0 && r.durationMs < 5000);

  const trailing = await runCommand({ argv: ['printf', 'a\\n\\n'], timeoutMs: 5000 });
  t.equal(trailing.stdout, 'a\n\n', 'output kept exactly (final newlines not stripped)');

  const cwd = await runCommand({ argv: ['pwd'], cwd: '/tmp', timeoutMs: 5000 });
  t.equal(cwd.stdout, '/tmp\n');

  const input = await runCommand({ argv: ['cat'], input: 'fed on stdin', timeoutMs: 5000 });
  t.equal(input.stdout, 'fed on stdin');
});

t.test('runCommand: a non-zero exit is a result, not an exception', async (t) => {
  const r = await runCommand({ argv: ['sh', '-c', 'echo partial; echo "bad thing" >&2; exit 3'], timeoutMs: 5000 });
  t.equal(r.exitCode, 3);
  t.equal(r.signal, null);
  t.equal(r.timedOut, false);
  t.equal(r.stdout, 'partial\n');
  t.equal(r.stderr, 'bad thing\n');
});

t.test('runCommand: timeout', async (t) => {
  const started = Date.now();
  const r = await runCommand({ argv: ['sleep', '5'], timeoutMs: 200 });
  t.equal(r.timedOut, true);
  t.equal(r.exitCode, null, 'no exit code: it was killed');
  t.equal(r.signal, 'SIGTERM');
  t.ok(Date.now() - started < 3000, 'returns soon after the bound, not after the sleep');
  t.ok(r.durationMs >= 150, `durationMs ${r.durationMs} covers the wait`);
});

t.test('runCommand: a killed process reports its signal', async (t) => {
  const r = await runCommand({ argv: ['sh', '-c', 'kill -KILL $$'], timeoutMs: 5000 });
  t.equal(r.signal, 'SIGKILL');
  t.equal(r.exitCode, null);
  t.equal(r.timedOut, false);
});

t.test('runCommand: a missing program throws', async (t) => {
  await t.rejects(runCommand({ argv: ['/nonexistent/dax-harness-no-such-program', 'x'], timeoutMs: 5000 }), /cannot run \/nonexistent\/dax-harness-no-such-program/);
  await t.rejects(runCommand({ argv: ['dax-harness-no-such-program-in-path'], timeoutMs: 5000 }), /cannot run dax-harness-no-such-program-in-path/);
  await t.rejects(runCommand({ argv: [] }), /empty argv/);
});

t.test('runChecked', async (t) => {
  const ok = await runChecked({ argv: ['echo', 'fine'], timeoutMs: 5000 }, 'echoing');
  t.equal(ok.stdout, 'fine\n');

  const script = 'for i in $(seq 1 30); do echo "line $i" >&2; done; exit 2';
  const err = (await runChecked({ argv: ['sh', '-c', script], timeoutMs: 5000 }, 'building the probe').catch((e: unknown) => e)) as Error;
  t.type(err, Error);
  t.match(err.message, /^building the probe failed \(/, 'what was being done');
  t.ok(err.message.includes(shellQuote(['sh', '-c', script])), 'the command, shell-quoted');
  t.match(err.message, /exited 2\):\n/);
  const tail = err.message.split('\n').slice(1);
  t.same(tail, Array.from({ length: 15 }, (_, i) => `line ${i + 16}`), 'the last 15 lines of stderr');

  const stdoutOnly = (await runChecked({ argv: ['sh', '-c', 'echo "only on stdout"; exit 1'], timeoutMs: 5000 }, 'x').catch((e: unknown) => e)) as Error;
  t.match(stdoutOnly.message, /\nonly on stdout$/, 'stdout when stderr is empty');

  const slow = (await runChecked({ argv: ['sleep', '5'], timeoutMs: 200 }, 'waiting').catch((e: unknown) => e)) as Error;
  t.match(slow.message, /exited SIGTERM, timed out\)/, 'a timeout says so');
});
