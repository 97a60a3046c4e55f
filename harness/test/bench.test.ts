import t from 'tap';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatAppendPatch, median } from '../src/bench.js';
import { parseSeries } from '../src/kernel/series.js';

t.test('median of odd and even lists', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
});

t.test('the patch-to-TAP stamp patch parses as a series and applies with git', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-patch-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const old = 'int a;\n\nint b;\n/* end */\n';
  await execa('git', ['init', '-q', dir]);
  writeFileSync(join(dir, 'dax.c'), old);
  const text = formatAppendPatch('dax.c', old, 'const char stamp[] = "x1";', 'fs/dax: stamp x1');
  const patches = parseSeries(text, 'stamp.patch');
  t.equal(patches.length, 1);
  t.equal(patches[0]!.subject, 'fs/dax: stamp x1');
  t.ok(patches[0]!.hasDiff);
  writeFileSync(join(dir, 'p.patch'), text);
  const r = await execa('git', ['-C', dir, 'apply', 'p.patch'], { reject: false });
  t.equal(r.exitCode, 0, r.stderr);
  t.equal(readFileSync(join(dir, 'dax.c'), 'utf8'), `${old}const char stamp[] = "x1";\n`, 'the line is appended, nothing else changes');
});
