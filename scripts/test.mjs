#!/usr/bin/env node
// Runs the test suite with tap and ends with one line `N passed, N failed` (CI reads it).
// Lanes: --unit runs everything but the QEMU end-to-end tests; default runs all.
// A test point counts once: the top-level tests of each test file.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Parser } from 'tap-parser';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const unitOnly = process.argv.includes('--unit');
const files = readdirSync(join(root, 'harness', 'test'), { recursive: true })
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => !(unitOnly && f.split('/').pop().startsWith('e2e')))
  .sort()
  .map((f) => join('harness', 'test', f));

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
const parser = new Parser();
// Depth 1 = one test file; its child points are the tests we count.
parser.on('child', (file) => {
  file.on('assert', (a) => {
    if (a.skip || a.todo) skipped += 1;
    else if (a.ok) passed += 1;
    else {
      failed += 1;
      failures.push(`${file.name}: ${a.name}`);
    }
  });
});

const child = spawn(
  process.execPath,
  [join(root, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs'), '--disable-coverage', '--reporter=tap', '--timeout=3600', '--jobs=1', ...files],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
);
child.stdout.on('data', (d) => {
  process.stdout.write(d);
  parser.write(d);
});
child.on('close', (code) => {
  parser.end();
  if (failures.length > 0) process.stdout.write(`\nfailed:\n${failures.map((f) => `  ${f}`).join('\n')}\n`);
  process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
