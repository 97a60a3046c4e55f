import t from 'tap';
import { HarnessError, formatError } from '../src/errors.js';
const x: number = 'str';
t.test('smoke', async (t) => {
  t.match(formatError(new HarnessError('config', 'x')), /config error/);
});
