import t from 'tap';
import { EXIT_INFRA, EXIT_KERNEL_FAILURE, EXIT_PASS, formatError, HarnessError } from '../../src/core/errors.js';

t.test('HarnessError carries kind, hint, detail and cause', async (t) => {
  const cause = new Error('ECONNRESET');
  const e = new HarnessError('ssh', 'connection lost', { hint: 'look at console.log', detail: 'tail', cause });
  t.type(e, Error);
  t.equal(e.name, 'HarnessError');
  t.equal(e.kind, 'ssh');
  t.equal(e.message, 'connection lost');
  t.equal(e.hint, 'look at console.log');
  t.equal(e.detail, 'tail');
  t.equal(e.cause, cause);
  const bare = new HarnessError('config', 'x');
  t.equal(bare.hint, undefined);
  t.equal(bare.detail, undefined);
  t.notOk('cause' in bare, 'no cause property unless one is given');
});

t.test('formatError: HarnessError with hint and detail', async (t) => {
  const e = new HarnessError('boot', 'the guest did not boot: no SSH after 120 s', {
    hint: 'read the console log /r/console.log',
    detail: '[    9.1] Kernel panic - not syncing: VFS: Unable to mount root fs\n---[ end Kernel panic ]---',
  });
  t.equal(
    formatError(e),
    [
      'dax-harness: boot error: the guest did not boot: no SSH after 120 s',
      '  what to do: read the console log /r/console.log',
      '  | [    9.1] Kernel panic - not syncing: VFS: Unable to mount root fs',
      '  | ---[ end Kernel panic ]---',
    ].join('\n'),
    'kind and message, then the hint, then every detail line marked',
  );
});

t.test('formatError: HarnessError without hint or detail', async (t) => {
  t.equal(formatError(new HarnessError('config', '--fs btrfs: only ext4 and xfs are supported')), 'dax-harness: config error: --fs btrfs: only ext4 and xfs are supported');
  t.equal(formatError(new HarnessError('guest', 'x', { hint: '', detail: '' })), 'dax-harness: guest error: x', 'empty hint and detail print nothing');
});

t.test('formatError: anything else is an internal error with its stack', async (t) => {
  const e = new TypeError('cannot read properties of undefined');
  const text = formatError(e);
  t.match(text, /^dax-harness: internal error: TypeError: cannot read properties of undefined\n/);
  t.match(text, /errors\.test\.ts/, 'the stack is included, to find the bug');
  t.match(text, /what to do: this is a harness bug; please report it with the run directory\.$/);

  const noStack = new Error('plain');
  noStack.stack = undefined;
  t.equal(formatError(noStack), 'dax-harness: internal error: plain\n  what to do: this is a harness bug; please report it with the run directory.');

  t.match(formatError('a thrown string'), /^dax-harness: internal error: Error: a thrown string\n/, 'non-Error values are wrapped');
  t.match(formatError(undefined), /^dax-harness: internal error: Error: undefined/);
});

t.test('exit codes are distinct: pass, kernel failure, infrastructure', async (t) => {
  t.same([EXIT_PASS, EXIT_KERNEL_FAILURE, EXIT_INFRA], [0, 1, 2]);
});
