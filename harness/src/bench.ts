// Benchmark: boots the guest N times (default 3) and prints boot-to-SSH figures, then one
// full suite run for the end-to-end time. Output is key=value lines, medians in seconds.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootGuest } from './boot.js';
import { resolveConfig } from './config.js';
import { formatError } from './errors.js';
import { formatKeyOverlay } from './image.js';
import { generateRunKeys } from './keys.js';
import { prepare, runSuite } from './run.js';

/** Returns the median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function main(): Promise<void> {
  const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const argv = process.argv.slice(2);
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

main().catch((err: unknown) => {
  process.stderr.write(`${formatError(err)}\n`);
  process.exit(2);
});
