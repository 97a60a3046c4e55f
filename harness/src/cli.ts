#!/usr/bin/env node
// The command-line entry: the only place that reads argv and env and calls process.exit.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfig, USAGE } from './config.js';
import { EXIT_INFRA, formatError } from './errors.js';
import { checkRequirements, formatDoctor, planRequirements } from './prereqs.js';
import { formatDryRun, runExec, runSuite } from './run.js';
import { SUITE } from './suite.js';
import { runBaseline, runMutate } from './campaign.js';
import { runReportCommand } from './report/report-command.js';

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function main(): Promise<number> {
  const cfg = resolveConfig(process.argv.slice(2), process.env, repoDir, process.cwd());
  const log = (s: string): void => {
    if (cfg.verbose || process.stderr.isTTY) process.stderr.write(`dax-harness: ${s}\n`);
  };
  switch (cfg.command) {
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    case 'list':
      for (const t of SUITE) process.stdout.write(`${t.name}\n    ${t.description}\n`);
      return 0;
    case 'doctor': {
      const release = cfg.kernel.kind === 'distro' ? cfg.kernel.release : undefined;
      const { present, missing } = checkRequirements(planRequirements({ headersFor: release }));
      const lines = formatDoctor(present, missing, cfg.allowInstall && process.getuid?.() === 0);
      if (!release && cfg.kernel.kind === 'distro') lines.push('(the headers package of the Debian kernel is checked once its release is resolved at run time)');
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
      if (cfg.dryRun) {
        process.stdout.write(`${formatDryRun(cfg)}\n`);
        return 0;
      }
      if (cfg.baseline) return await runBaseline(cfg, (line) => process.stdout.write(`${line}\n`), log);
      const summary = await runSuite(cfg, (line) => process.stdout.write(`${line}\n`), log);
      process.stderr.write(`dax-harness: results in ${summary.runDir}\n`);
      return summary.exitCode;
    }
    case 'mutate':
      return await runMutate(cfg, (line) => process.stdout.write(`${line}\n`), log);
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
