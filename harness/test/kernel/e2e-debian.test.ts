// End to end, for real: Debian's trixie 6.12 and sid 7.2 kernels, fetched through the harness's
// own apt files, their probe built in a chroot of their own suite, booted under QEMU, and judged
// each by its own refcount model, in one `matrix` run over a fast subset of the suite. Slow lane.
import t from 'tap';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Parser } from 'tap-parser';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const cli = join(root, 'harness', 'dist', 'cli.js');
const results = mkdtempSync(join(tmpdir(), 'dax-e2e-debian-'));
t.teardown(() => rmSync(results, { recursive: true, force: true }));

// One test per kind of verdict: the counts per model, a transient pin, a pin a truncate must wait
// for (both kernels), and eviction under a pin (a known failure on 6.12, fixed by 6.15).
const TESTS = ['mmap-fault-4k', 'odirect-pin', 'pin-truncate-odirect', 'pin-unlink'];
// The packages this lane was checked against; Debian publishing a new one is a reason to re-run.
const PINNED: Record<string, { release: RegExp; model: string }> = {
  'debian-6.12': { release: /^6\.12\.\d+\+deb13-amd64$/, model: 'legacy' },
  'debian-7.2': { release: /^7\.2\.\d+\+deb14-amd64$/, model: 'folio' },
};

interface Rec {
  fs: string;
  test: string;
  outcome: string;
  model?: string;
  known?: { reason: string; evidence: string };
}

function topLevel(text: string): Promise<{ ok: boolean; names: string[]; parseErrors: number }> {
  return new Promise((resolve) => {
    const p = new Parser();
    const names: string[] = [];
    let parseErrors = 0;
    p.on('assert', (a: { name: string }) => names.push(a.name));
    p.on('complete', (r: { ok: boolean; failures: { tapError?: string }[] }) => {
      parseErrors = r.failures.filter((f) => f.tapError).length;
      resolve({ ok: r.ok, names, parseErrors });
    });
    p.end(text);
  });
}

t.test('matrix --kernels debian-6.12,debian-7.2: each kernel fetched, booted and judged by its own model', async (t) => {
  const started = Date.now();
  const r = await execa(process.execPath, [cli, 'matrix', '--kernels', 'debian-6.12,debian-7.2', '--tests', TESTS.join(','), '--results', results], {
    reject: false,
    timeout: 1_800_000,
  });
  t.comment(`matrix wall time ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const tap = await topLevel(r.stdout);
  t.equal(tap.parseErrors, 0, 'one TAP document that parses');
  t.same(tap.names, ['debian-6.12', 'debian-7.2'], 'a point per kernel, in the order given');
  t.equal(r.exitCode, 0, `exit 0: green apart from listed known failures (stderr tail: ${r.stderr.slice(-1500)})`);
  t.match(r.stdout, /^# Subtest: debian-6\.12$/m, 'a subtest per kernel');
  t.match(r.stdout, /^# point\s+debian-6\.12\s+debian-7\.2$/m, 'the kernel x test table');

  const campaign = readdirSync(results).find((d) => /Z-matrix-/.test(d));
  t.ok(campaign, 'the matrix is a campaign in results');
  const matrix = JSON.parse(readFileSync(join(results, campaign!, 'campaign.json'), 'utf8')).matrix as Record<string, { run_dir: string; exit_code: number }>;
  t.match(readFileSync(join(results, campaign!, 'matrix.txt'), 'utf8'), /^ext4\/pin-unlink\s+xfail\s+pass$/m, 'pin-unlink: known on 6.12, passing on 7.2');

  for (const [line, pin] of Object.entries(PINNED)) {
    const dir = matrix[line]!.run_dir;
    const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
    t.match(run.kernel.release, pin.release, `${line}: the kernel of its suite (${run.kernel.release}, package ${run.kernel.packageVersion})`);
    t.equal(run.kernel.source.line, line, `${line}: runs are compared along the line`);
    t.equal(run.model.name, pin.model, `${line} is judged as the ${pin.model} model`);
    t.same(run.infra, [], `${line}: no infrastructure event`);
    const recs = readFileSync(join(dir, 'tests.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);
    for (const fs of ['ext4', 'xfs']) {
      for (const test of ['mmap-fault-4k', 'odirect-pin', 'pin-truncate-odirect']) {
        t.equal(recs.find((x) => x.fs === fs && x.test === test)?.outcome, 'pass', `${line} ${fs}/${test} passes`);
      }
    }
    const unlink = recs.filter((x) => x.test === 'pin-unlink');
    if (line === 'debian-6.12') {
      t.same(unlink.map((x) => x.outcome), ['xfail', 'xfail'], '6.12 still frees a pinned file\'s blocks at eviction: a known failure on both filesystems');
      t.match(unlink[0]?.known?.evidence, /6\.12\.117/, 'with the entry whose evidence is from 6.12 itself');
    } else {
      t.same(unlink.map((x) => x.outcome), ['pass', 'pass'], '7.2 waits for the pin (dax_break_layout_final)');
    }
  }
  // The second suite's apt files are the harness's own: the host's sources are not touched.
  const cache = join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '/root', '.cache'), 'dax-harness', 'apt');
  if (existsSync(cache)) t.ok(readdirSync(cache).includes('sid'), 'sid\'s lists live under the harness cache');
});
