// Progress for unattended runs: every step is written, and a silent minute repeats the last step
// with its age (a fake clock stands in for a minute of waiting).
import t from 'tap';
import { startProgress } from '../../src/core/progress.js';

t.test('steps are written at once; silence brings a heartbeat naming the step and its age', async (t) => {
  let clock = 0;
  const lines: string[] = [];
  const p = startProgress((l) => lines.push(l), 200, () => clock);
  p.log('building linux (make -j2 bzImage)');
  t.same(lines, ['dax-harness: building linux (make -j2 bzImage)']);
  clock = 100;
  await new Promise((r) => setTimeout(r, 1100));
  t.equal(lines.length, 1, 'no heartbeat before the interval has passed');
  clock = 61_000;
  await new Promise((r) => setTimeout(r, 1100));
  p.stop();
  t.match(lines[1], /^dax-harness: still working \(61 s since: building linux \(make -j2 bzImage\)\)$/);
  const n = lines.length;
  await new Promise((r) => setTimeout(r, 1100));
  t.equal(lines.length, n, 'stopped: no more lines');
});

t.test('no interval, no heartbeat (a terminal shows its own progress)', async (t) => {
  const lines: string[] = [];
  const p = startProgress((l) => lines.push(l), 0);
  p.log('x');
  p.stop();
  t.same(lines, ['dax-harness: x']);
});
