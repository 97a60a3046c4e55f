#!/usr/bin/env node
// The command-line entry: the only place that reads argv and env and calls process.exit.
import { formatLabDryRun, runLabCommand } from './target/lab/lab-command.js';
import { findMachine, readInventory } from './target/lab/inventory.js';
import { findDebianLine } from './kernel/debian.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, USAGE } from './config.js';
import { EXIT_INFRA, formatError } from './core/errors.js';
import { startProgress } from './core/progress.js';
import { checkRequirements, formatDoctor, planRequirements } from './core/prereqs.js';
import { formatDryRun, runExec, runSuite } from './run/run.js';
import { SUITE } from './suite/suite.js';
import { runBaseline, runMatrix, runMutate } from './campaign/campaign.js';
import { runReportCommand, loadRuns } from './report/report-command.js';
import { enqueue, planQueueLayout } from './nightly/queue.js';
import { runNightly } from './nightly/nightly.js';
import { runGuests, runMerge } from './nightly/merge.js';
import { openHistoryDb, queryTestHistory, rebuildIndex } from './history/history-db.js';
import { formatTestHistory } from './history/test-history.js';

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function main(): Promise<number> {
  const cfg = resolveConfig(process.argv.slice(2), process.env, repoDir, process.cwd());
  // Every step reaches stderr; unattended (no terminal) a silent minute repeats the last step.
  const progress = startProgress((line) => process.stderr.write(`${line}\n`), process.stderr.isTTY ? 0 : 60_000);
  const log = progress.log;
  switch (cfg.command) {
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    case 'list':
      for (const t of SUITE) process.stdout.write(`${t.name}\n    ${t.description}\n`);
      return 0;
    case 'doctor': {
      const line = cfg.kernel.kind === 'distro' ? findDebianLine(cfg.kernel.line) : undefined;
      const release = cfg.kernel.kind === 'distro' ? cfg.kernel.release : undefined;
      const { present, missing } = checkRequirements(planRequirements({ headersFor: line?.host ? release : undefined, chrootFor: line && !line.host ? line.suite : undefined }));
      const lines = formatDoctor(present, missing, cfg.allowInstall && process.getuid?.() === 0);
      if (!release && line?.host) lines.push('(the headers package of the Debian kernel is checked once its release is resolved at run time)');
      process.stdout.write(`${lines.join('\n')}\n`);
      return missing.length === 0 ? 0 : EXIT_INFRA;
    }
    case 'exec':
      return await runExec(
        cfg,
        (s) => process.stdout.write(s),
        (s) => process.stderr.write(s),
        log,
      );
    case 'run': {
      if (cfg.dryRun && cfg.target.kind === 'lab') {
        const m = findMachine(readInventory(cfg.inventoryPath), cfg.target.name);
        process.stdout.write(`${await formatLabDryRun(m, cfg.filesystems, cfg.tests, '<run id>', cfg.keep)}\n`);
        return 0;
      }
      if (cfg.dryRun) {
        process.stdout.write(`${formatDryRun(cfg)}\n`);
        return 0;
      }
      if (cfg.baseline) return await runBaseline(cfg, (line) => process.stdout.write(`${line}\n`), log);
      if (cfg.guests > 1) {
        const g = await runGuests(cfg, (line) => process.stdout.write(`${line}\n`), log);
        process.stderr.write(`dax-harness: results in ${g.runDir}\n`);
        return g.exitCode;
      }
      const summary = await runSuite(cfg, (line) => process.stdout.write(`${line}\n`), log);
      process.stderr.write(`dax-harness: results in ${summary.runDir}\n`);
      return summary.exitCode;
    }
    case 'mutate':
      return await runMutate(cfg, (line) => process.stdout.write(`${line}\n`), log);
    case 'matrix':
      return await runMatrix(cfg, (line) => process.stdout.write(`${line}\n`), log);
    case 'queue': {
      const q = planQueueLayout(cfg.nightly.queueDir);
      for (const name of enqueue(q, cfg.nightly.files)) process.stdout.write(`queued ${name} in ${q.new}\n`);
      return 0;
    }
    case 'nightly': {
      const r = await runNightly({
        queueDir: cfg.nightly.queueDir,
        resultsDir: cfg.resultsDir,
        configFor: (argv) => resolveConfig(argv, process.env, repoDir, process.cwd()),
        extraArgs: cfg.nightly.passThrough,
        from: cfg.nightly.from,
        out: (line) => process.stdout.write(`${line}\n`),
        log,
        max: cfg.nightly.max ?? undefined,
        sendWith: cfg.nightly.sendWith ?? undefined,
      });
      process.stdout.write(`# nightly: ${r.done.length} series (${r.done.map((d) => `${d.name}: ${d.overall}`).join(', ') || 'queue empty'}), ${r.duplicates.length} duplicate(s)\n`);
      return r.done.some((d) => d.overall === 'fail') ? 1 : r.done.some((d) => d.overall === 'incomplete') ? 2 : 0;
    }
    case 'index': {
      const runs = loadRuns({ ...cfg.report, runs: [] }, cfg.resultsDir);
      const db = openHistoryDb(cfg.nightly.db);
      rebuildIndex(db, runs);
      db.close();
      process.stdout.write(`indexed ${runs.length} run(s) into ${cfg.nightly.db}\n`);
      return 0;
    }
    case 'merge': {
      const m = runMerge(cfg.resultsDir, cfg.nightly.files, log);
      process.stdout.write(`merged ${m.runs} run(s) and ${m.campaigns} campaign(s) into ${cfg.resultsDir}\n`);
      return 0;
    }
    case 'history': {
      const db = openHistoryDb(cfg.nightly.db);
      process.stdout.write(`${formatTestHistory(cfg.nightly.test!, queryTestHistory(db, cfg.nightly.test!))}\n`);
      db.close();
      return 0;
    }
    case 'lab':
      return await runLabCommand(cfg.lab, cfg.inventoryPath, (line) => process.stdout.write(`${line}\n`), process.stdin.isTTY === true);
    case 'report':
      for (const line of await runReportCommand(cfg.report, cfg.resultsDir, log)) process.stdout.write(`${line}\n`);
      return 0;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${formatError(err)}\n`);
    process.exit(EXIT_INFRA);
  },
);
