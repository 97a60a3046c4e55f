// Benchmark: boots the guest N times (default 3) and prints boot-to-SSH figures, then one
// full suite run for the end-to-end time (any run option applies: `--tree debian-6.1` boots
// the built kernel). `--patch-to-tap` measures a one-line fs/dax.c change to the fast suite's
// TAP with a warm cache. Output is key=value lines, medians in seconds.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bootGuest } from './target/qemu/boot.js';
import { resolveConfig } from './config.js';
import { formatError } from './core/errors.js';
import { formatKeyOverlay } from './target/qemu/image.js';
import { generateRunKeys } from './target/keys.js';
import { prepare, runSuite } from './run/run.js';
import { buildCommit, prepareSource } from './kernel/built-kernel.js';
import { runCommand } from './core/proc.js';

/** Returns the median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Returns a format-patch message that appends one line of code to the end of a file (pure). */
export function formatAppendPatch(path: string, oldText: string, line: string, subject: string): string {
  const lines = oldText.endsWith('\n') ? oldText.slice(0, -1).split('\n') : oldText.split('\n');
  const ctx = lines.slice(-3);
  const start = lines.length - ctx.length + 1;
  return [
    'From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001',
    'From: dax-harness bench <bench@dax-harness.invalid>',
    'Date: Thu, 26 Nov 2026 00:00:00 +0000',
    `Subject: [PATCH] ${subject}`,
    '',
    'A one-line change for measuring patch-to-TAP latency.',
    '---',
    `diff --git a/${path} b/${path}`,
    `--- a/${path}`,
    `+++ b/${path}`,
    `@@ -${start},${ctx.length} +${start},${ctx.length + 1} @@`,
    ...ctx.map((l) => ` ${l}`),
    `+${line}`,
    '-- ',
    '2.39.5',
    '',
  ].join('\n');
}

// --patch-to-tap: a fresh one-line change to fs/dax.c (a new string each time, so ccache
// cannot hide the compile) applied as a series, built incrementally, booted, fast suite run.
async function patchToTap(repoDir: string, argv: string[], log: (s: string) => void): Promise<void> {
  const base = resolveConfig(['run', '--tree', 'debian-6.1', '--tests', 'fast', ...argv], process.env, repoDir, process.cwd());
  if (base.kernel.kind !== 'build') throw new Error('unreachable: --tree gives a build');
  const work = join(tmpdir(), `dax-bench-${process.pid}`);
  mkdirSync(work, { recursive: true, mode: 0o700 });
  try {
    // Warm case: the tree imported and the object directory one change away. An untimed
    // first stamp brings the object directory to base + one fs/dax.c line; the timed second
    // stamp then differs from it in that line only.
    const src0 = await prepareSource(base.kernel, base.cacheDir, log);
    const dax = (await runCommand({ argv: ['git', '-C', src0.tree.workDir, 'show', `${src0.applied.base}:fs/dax.c`], timeoutMs: 60_000 })).stdout;
    const stamped = (i: number): string[] => {
      const stamp = `bench-${Date.now()}-${i}`;
      const patch = join(work, `stamp${i}.patch`);
      writeFileSync(patch, formatAppendPatch('fs/dax.c', dax, `const char dax_bench_stamp[] = "${stamp}";`, `fs/dax: ${stamp}`));
      return ['run', '--tree', 'debian-6.1', '--tests', 'fast', '--series', patch, ...argv];
    };
    const warm = resolveConfig(stamped(0), process.env, repoDir, process.cwd());
    if (warm.kernel.kind !== 'build') throw new Error('unreachable: --tree gives a build');
    const w = await prepareSource(warm.kernel, warm.cacheDir, log);
    await buildCommit(w, w.applied.head, repoDir, warm.cacheDir, log);
    const cfg = resolveConfig(stamped(1), process.env, repoDir, process.cwd());
    if (cfg.kernel.kind !== 'build') throw new Error('unreachable: --tree gives a build');
    const t0 = performance.now();
    const src = await prepareSource(cfg.kernel, cfg.cacheDir, log);
    const t1 = performance.now();
    const b = await buildCommit(src, src.applied.head, repoDir, cfg.cacheDir, log);
    const t2 = performance.now();
    const results = join(work, 'results');
    const s = await runSuite({ ...cfg, resultsDir: results }, () => undefined, log, b.kernel);
    const t3 = performance.now();
    const sec = (a: number, z: number): string => ((z - a) / 1000).toFixed(1);
    console.log(`patch_to_tap_s=${sec(t0, t3)} apply_s=${sec(t0, t1)} build_and_probe_s=${sec(t1, t2)} run_s=${sec(t2, t3)} boot_to_ssh_s=${((s.boots[0] ?? 0) / 1000).toFixed(2)} tests=${s.records.length} exit=${s.exitCode}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const argv = process.argv.slice(2);
  if (argv[0] === '--patch-to-tap') {
    await patchToTap(repoDir, argv.slice(1), (s) => void process.stderr.write(`bench: ${s}\n`));
    return;
  }
  const nIdx = argv.indexOf('--boots');
  const boots = nIdx >= 0 ? Number(argv.splice(nIdx, 2)[1]) : 3;
  const cfg = resolveConfig(['run', ...argv], process.env, repoDir, process.cwd());
  const log = (s: string): void => void process.stderr.write(`bench: ${s}\n`);
  const t0 = performance.now();
  const prepared = await prepare(cfg, log);
  console.log(`prepare_s=${((performance.now() - t0) / 1000).toFixed(2)}`);
  const work = join(tmpdir(), `dax-bench-${process.pid}`);
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const totals: number[] = [];
  const firstConsole: number[] = [];
  const initReady: number[] = [];
  try {
    for (let i = 0; i < boots; i++) {
      const keys = await generateRunKeys(join(work, `keys${i}`));
      const initrd = join(work, 'initrd');
      writeFileSync(initrd, Buffer.concat([readFileSync(prepared.imagePath), formatKeyOverlay(keys.hostKeyDropbear, keys.clientPublicLine)]));
      const g = await bootGuest({
        profile: cfg.profile,
        accel: cfg.accel,
        kernel: prepared.kernel.bzImage,
        initrd,
        keys,
        workDir: join(work, `w${i}`),
        consolePath: join(work, `console${i}.log`),
        bootTimeoutMs: cfg.bootTimeoutMs,
        log,
      });
      totals.push(g.bootToSshMs / 1000);
      if (g.milestones.firstConsoleMs !== null) firstConsole.push(g.milestones.firstConsoleMs / 1000);
      if (g.milestones.initReadyMs !== null) initReady.push(g.milestones.initReadyMs / 1000);
      g.ssh.close();
      await g.stop();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  console.log(`kernel=${prepared.kernel.release} accel=${cfg.accel} profile=${cfg.profile.name} boots=${boots}`);
  console.log(`boot_to_ssh_s=${median(totals).toFixed(2)}`);
  console.log(`boot_to_ssh_all_s=${totals.map((x) => x.toFixed(2)).join(',')}`);
  if (initReady.length) console.log(`qemu_to_init_ready_s=${median(initReady).toFixed(2)}`);
  const results = join(tmpdir(), `dax-bench-results-${process.pid}`);
  const t1 = performance.now();
  const s = await runSuite({ ...cfg, resultsDir: results }, () => undefined, log);
  console.log(`suite_run_s=${((performance.now() - t1) / 1000).toFixed(2)} suite_exit=${s.exitCode} tests=${s.records.length}`);
  const byTest = s.records.map((r) => `${r.id}:${r.durationMs}`).join(',');
  console.log(`test_ms=${byTest}`);
  rmSync(results, { recursive: true, force: true });
}

// Run only as a script: the tests import the pure formatters above.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${formatError(err)}\n`);
    process.exit(2);
  });
}
