// The run: prepare the kernel and guest image, boot, set up fsdax filesystems, run each test
// bracketed by dmesg markers and taint reads, judge, and stream TAP and records to disk.
import { existsSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { buildHelpers, buildProbe } from '../suite/artifacts.js';
import { checkSshPortFree } from '../target/qemu/boot.js';
import type { LiveTarget, TargetHost, TargetSession } from '../target/target.js';
import type { HarnessConfig } from '../config.js';
import { describeFinding, failureTaintDelta, parseDmesg, scanDmesg, sliceBetweenMarkers, type DmesgFinding } from '../suite/dmesg.js';
import { describeStretch, scanOutsideWindows, type OutsideFinding, type OutsideTaint } from '../suite/boot-log.js';
import { parseKconfig, type KconfigValues } from '../kernel/kconfig.js';
import { EXIT_INFRA, EXIT_KERNEL_FAILURE, EXIT_PASS, HarnessError } from '../core/errors.js';
import { planFsSetup, type MountedFs } from '../target/guest-setup.js';
import { buildImage } from '../target/qemu/image.js';
import { ensureSlowDev, GuestSession, GUEST_PATHS } from '../target/qemu/session.js';
import { prepareSource, buildCommit } from '../kernel/built-kernel.js';
import { planKconfig, planMake } from '../kernel/kbuild.js';
import { fetchDistroKernel, resolveDistroRelease, userKernel, type KernelSpec } from '../kernel/kernel.js';
import { debianLineNames, debianLineOfRelease, findDebianLine } from '../kernel/debian.js';
import { findMachine, planHealthAfterRun, readInventory, updateMachine } from '../target/lab/inventory.js';
import { LabSession, parseIdentity, planIdentity, planLabSsh } from '../target/lab/lab-session.js';
import { SshTarget } from '../target/ssh-target.js';
import type { RefcountModel } from '../kernel/model.js';
import { planRequirements, ensureRequirements } from '../core/prereqs.js';
import { planQemu } from '../target/qemu/qemu-plan.js';
import { shellQuote } from '../core/proc.js';
import { ensureResultsRoot, RunStore } from './results.js';
import type { GuestResult } from '../target/ssh-target.js';
import { formatTestPlan, parseHelperReport, type Check, type HelperReport, type TestDef } from '../suite/suite.js';
import { TapWriter, type YamlValue } from './tap.js';
import { parseDaxTrace, planTraceStart, planTraceStop } from '../suite/trace.js';
import { loadKnownFailures, matchKnownFailure, type FailureEvidence } from '../suite/known-failures.js';
import { parseRunRecords, type RunRecords } from '../report/run-records.js';
import { indexRun, openHistoryDb } from '../history/history-db.js';
import { formatJunit } from '../report/junit.js';
import { shardPoints } from '../campaign/shard.js';

// xfail: a kernel failure the known-failure list explains; shown as TAP TODO, never as a pass.
export type Outcome = 'pass' | 'fail' | 'skip' | 'timeout' | 'crash' | 'error' | 'xfail';

/** A dmesg incident as a record keeps it: its kind, header line and where it happened. */
export interface RecordFinding {
  kind: string;
  line: string;
  function: string | null;
  file: string | null;
}

/** One try of a test: infrastructure trouble is retried on a fresh guest, and each try is kept. */
export interface Attempt {
  attempt: number;
  /** The boot it ran on (null: no guest came up). */
  boot: number | null;
  outcome: Outcome;
  reason: string;
  durationMs: number;
}

export interface TestRecord {
  id: string;
  test: string;
  fs: string;
  outcome: Outcome;
  reason: string;
  durationMs: number;
  checks: Check[];
  findings: RecordFinding[];
  taintBefore: number | null;
  taintAfter: number | null;
  report: HelperReport | null;
  exitCode: number | null;
  stderr: string;
  dmesgExcerpt: string[];
  /** Every try of this point, in order (more than one only after infrastructure trouble). */
  attempts: Attempt[];
  /** For an expected failure (xfail): the outcome the kernel's failure had. */
  knownAs?: Outcome;
  /** For an expected failure: the known-failure entry that explains it. */
  known?: { reason: string; evidence: string };
}

/** An infrastructure event of a run: on the record in TAP, tests.jsonl, run.json and stderr. */
export interface InfraEvent {
  at: string;
  kind: 'boot-failed' | 'guest-lost' | 'helper-error' | 'set-up';
  /** fs-test it happened in (null: between tests). */
  point: string | null;
  attempt: number;
  boot: number | null;
  /** What the harness did: booted again / ran the point again on a fresh guest, or gave up. */
  action: 'retried' | 'gave up';
  reason: string;
}

export interface Prepared {
  kernel: KernelSpec;
  helpersDir: string;
  probeKo: string;
  imagePath: string;
  imageHash: string;
  imageReused: boolean;
  /** Kernel command-line words the image needs (built-in module parameters). */
  kernelArgs: string[];
  prepareMs: number;
}

/** Returns true if an outcome means the kernel misbehaved. */
export function isKernelFailure(o: Outcome): boolean {
  return o === 'fail' || o === 'timeout' || o === 'crash';
}

/** Returns true if a point is red: a kernel failure, known or not. Comparing kernels, a known
 *  failure is still a failure: a change that turns a passing test into a known one broke it. */
export function isRed(o: Outcome): boolean {
  return isKernelFailure(o) || o === 'xfail';
}

/** Returns the CLI exit code for a set of outcomes. */
export function exitCodeFor(outcomes: Outcome[]): number {
  if (outcomes.some(isKernelFailure)) return EXIT_KERNEL_FAILURE;
  if (outcomes.some((o) => o === 'error')) return EXIT_INFRA;
  return EXIT_PASS;
}

/** Returns the kernel under test of a run: a built one, the user's, or Debian's. */
async function kernelFor(cfg: HarnessConfig, log: (s: string) => void): Promise<KernelSpec> {
  // A user's kernel is checked before anything is installed or downloaded: bad input first.
  const given = cfg.kernel.kind === 'path' ? userKernel(cfg.kernel.bzImage, cfg.kernel.modulesDir, cfg.kernel.buildDir) : null;
  const line = cfg.kernel.kind === 'distro' ? findDebianLine(cfg.kernel.line) : undefined;
  const release = cfg.kernel.kind === 'distro' ? await resolveDistroRelease(line!, cfg.kernel.release, cfg.cacheDir, cfg.allowInstall && process.getuid?.() === 0, log) : undefined;
  // The host's headers package serves its own suite; another suite's headers come in a chroot.
  await ensureRequirements(planRequirements({ headersFor: line?.host ? release : undefined, chrootFor: line && !line.host ? line.suite : undefined, kernelBuild: cfg.kernel.kind === 'build' }), cfg.allowInstall, log);
  if (given) return given;
  if (cfg.kernel.kind === 'build') {
    const src = await prepareSource(cfg.kernel, cfg.cacheDir, log);
    return (await buildCommit(src, src.applied.head, cfg.repoDir, cfg.cacheDir, log)).kernel;
  }
  return fetchDistroKernel(cfg.cacheDir, release!, log);
}

/** Gets the kernel (unless given: a campaign builds its own), helpers, probe and the cached guest image ready. */
export async function prepare(cfg: HarnessConfig, log: (s: string) => void, givenKernel?: KernelSpec): Promise<Prepared> {
  const t0 = performance.now();
  const kernel = givenKernel ?? (await kernelFor(cfg, log));
  const helpersDir = await buildHelpers(cfg.repoDir, cfg.cacheDir);
  const probeKo = await buildProbe(cfg.repoDir, cfg.cacheDir, kernel);
  // A lab machine boots its own system: no guest image.
  if (cfg.target.kind === 'lab') return { kernel, helpersDir, probeKo, imagePath: '', imageHash: '', imageReused: true, kernelArgs: [], prepareMs: Math.round(performance.now() - t0) };
  const initScript = readFileSync(join(cfg.repoDir, 'qemu', 'init.sh'), 'utf8');
  const img = await buildImage({ kernel, initScript, helpersDir, probeKo }, cfg.cacheDir);
  log(`guest image ${img.reused ? 'reused' : 'built'}: ${img.path} (${(img.bytes / 1e6).toFixed(1)} MB)`);
  return { kernel, helpersDir, probeKo, imagePath: img.path, imageHash: img.hash, imageReused: img.reused, kernelArgs: img.kernelArgs, prepareMs: Math.round(performance.now() - t0) };
}

/** Returns the plans a --dry-run prints: the QEMU command line and the guest setup. */
export function formatDryRun(cfg: HarnessConfig): string {
  const pmem = cfg.profile.nvdimms.map((_, i) => `<run-dir>/pmem/pmem${i}.img`);
  const qemu = planQemu({ profile: cfg.profile, accel: cfg.accel, kernel: '<kernel bzImage>', initrd: '<run-dir>/initrd', sshPort: 10022, pmemFiles: pmem });
  const lines: string[] = [];
  if (cfg.kernel.kind === 'build') {
    const k = cfg.kernel;
    // The plans with placeholders: the commit and the build keys are known once the tree is imported.
    const input = { tree: { name: k.tree, workDir: '<tree checkout>' }, commit: '<commit>', treeId: '<tree>', baseConfig: k.baseConfig, fragmentPath: k.fragmentPath, fragmentText: '', cacheDir: cfg.cacheDir, jobs: k.jobs, toolchain: '<gcc --version>' };
    lines.push(`# kernel build (${k.tree}${k.base ? ` at ${k.base}` : ''}; ${k.series.reduce((n, s) => n + s.patches.filter((p) => p.hasDiff).length, 0)} patch(es) applied with git am -3 in the harness's checkout)`);
    for (const p of planKconfig(input, '<obj dir>')) lines.push(shellQuote(p.argv));
    lines.push(shellQuote(planMake(input, '<obj dir>', cfg.cacheDir).argv), '');
  }
  lines.push(`# QEMU (profile ${cfg.profile.name}: ${cfg.profile.description})`, shellQuote(qemu.argv), '', '# guest setup');
  for (const p of planFsSetup(cfg.profile, cfg.filesystems)) {
    for (const c of p.namespace) lines.push(shellQuote(c.argv));
    const dev = p.device ?? `/dev/<blockdev of the ${p.fs} namespace>`;
    lines.push(shellQuote(p.mkfs(dev).argv), shellQuote(p.mount(dev).argv));
  }
  lines.push('', '# tests');
  for (const fs of cfg.filesystems) for (const t of cfg.tests) lines.push(formatTestPlan(t, { mountpoint: `/mnt/${fs}`, fs, ...GUEST_PATHS }));
  return lines.join('\n');
}

async function guestText(ssh: SshTarget, argv: string[], timeoutMs = 20_000): Promise<string> {
  const r = await ssh.exec({ argv, timeoutMs });
  if (r.exitCode !== 0) throw new HarnessError('guest', `${argv.join(' ')} failed in the guest (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return r.stdout;
}

function summarizeChecks(checks: Check[]): YamlValue {
  return checks.map((c) => `${c.ok ? 'ok' : 'FAILED'}: ${c.name}: expected ${c.expected}, got ${c.actual}`);
}

function findingsText(fs: DmesgFinding[]): string[] {
  return fs.flatMap((f) => f.excerpt).slice(0, 60);
}

// The exit status each helper result comes with (kernel-tests/README.md): a report that does not
// match its exit status is not a report to judge (the helper printed it, then died).
const HELPER_EXIT: Record<HelperReport['result'], number> = { ok: 0, fail: 1, error: 3, skip: 4 };

/** What the harness knows of the kernel's config, to prove a feature absent. */
export interface KernelFeatures {
  /** The .config read (null: unknown, so no absence can be proven from it). */
  config: KconfigValues | null;
  source: string;
}

/** Returns the options of `requires` the kernel config proves absent (empty if unknown). */
export function missingOptions(requires: readonly string[] | undefined, f: KernelFeatures): string[] {
  if (!f.config) return [];
  const cfg = f.config;
  return (requires ?? []).filter((o) => {
    const v = cfg.get(o);
    return v === undefined || v === 'n';
  });
}

function recordFinding(f: DmesgFinding): RecordFinding {
  return { kind: f.kind, line: f.line.text, function: f.function, file: f.file };
}

/** Returns the outcome and reason of a helper run that did not print a usable report. */
function unjudgeable(res: GuestResult, report: HelperReport | null): string | null {
  const exit = res.exitCode ?? (res.signal ? `SIG${res.signal.replace(/^SIG/, '')}` : 'unknown');
  if (!report) return `helper printed no JSON report (exit ${exit})`;
  if (res.exitCode !== HELPER_EXIT[report.result]) return `helper reported "${report.result}" but exited ${exit} (expected ${HELPER_EXIT[report.result]}): the report is not trusted`;
  return null;
}

/** Runs one test on one filesystem; only a lost connection escapes as an exception. */
export async function runOneTest(live: LiveTarget, t: TestDef, m: MountedFs, testTimeoutMs: number | null, features: KernelFeatures): Promise<TestRecord> {
  const id = `${m.fs}-${t.name}`;
  const started = performance.now();
  const ssh = live.target.ssh;
  const model = live.model;
  const traceOn = t.trace ? `${planTraceStart()}; ` : '';
  const pre = await guestText(ssh, ['sh', '-c', `${traceOn}echo "dax-harness: BEGIN $1" > /dev/kmsg; cat /proc/sys/kernel/tainted`, 'begin', id]);
  const taintBefore = Number.parseInt(pre.trim(), 10);
  const timeoutMs = testTimeoutMs ?? t.timeoutMs;
  const res = await ssh.exec({ argv: t.argv({ mountpoint: m.mountpoint, fs: m.fs, ...live.paths }), timeoutMs });
  const durationMs = Math.round(performance.now() - started);
  let stacks: string[] = [];
  if (res.timedOut) {
    // Evidence of the hang: every blocked task's stack, printed by sysrq-w into dmesg.
    await ssh.exec({ argv: ['sh', '-c', 'echo w > /proc/sysrq-trigger'], timeoutMs: 10_000 });
    stacks = ['(blocked-task stacks from sysrq-w follow in the dmesg excerpt)'];
  }
  const post = await guestText(ssh, ['sh', '-c', 'cat /proc/sys/kernel/tainted; echo "dax-harness: END $1" > /dev/kmsg', 'end', id]);
  const taintAfter = Number.parseInt(post.trim(), 10);
  const trace = t.trace ? parseDaxTrace(await guestText(ssh, ['sh', '-c', planTraceStop()], 30_000)) : [];
  const dmesg = parseDmesg(await guestText(ssh, ['dmesg'], 30_000));
  const window = sliceBetweenMarkers(dmesg, id);
  const report = parseHelperReport(res.stdout);
  const rec: TestRecord = {
    ...errorRecord(m.fs, t.name, ''),
    outcome: 'pass',
    durationMs,
    taintBefore,
    taintAfter,
    report,
    exitCode: res.exitCode,
    stderr: res.stderr.slice(-4000),
  };
  // Without both markers the test's window is unknown: judging it would read the wrong lines or none.
  const ended = window !== null && dmesg.some((l) => l.text.trim() === `dax-harness: END ${id}`);
  if (window === null || !ended) {
    return { ...rec, outcome: 'error', reason: `infrastructure: the kernel log has no "dax-harness: ${window === null ? 'BEGIN' : 'END'} ${id}" marker, so the test's dmesg window is unknown (the log was cut or a /dev/kmsg write was lost)` };
  }
  const findings = scanDmesg(window, { allow: t.allowDmesg });
  const newTaint = failureTaintDelta(taintBefore, taintAfter);
  rec.findings = findings.map(recordFinding);
  rec.dmesgExcerpt = res.timedOut ? [...stacks, ...window.map((l) => l.raw).slice(-200)] : findingsText(findings);
  const problems: string[] = [];
  if (findings.length > 0) problems.push(`dmesg: ${[...new Set(findings.map((f) => f.kind))].join(', ')}`);
  if (newTaint.length > 0) problems.push(`kernel newly tainted: ${newTaint.map((f) => `${f.letter} (${f.meaning})`).join(', ')}`);

  const broken = res.timedOut ? null : unjudgeable(res, report);
  if (res.timedOut) {
    rec.outcome = 'timeout';
    rec.reason = `no result within ${timeoutMs / 1000} s`;
  } else if (broken || !report) {
    rec.outcome = 'fail';
    rec.reason = broken ?? 'helper printed no JSON report';
  } else if (report.result === 'error') {
    rec.outcome = problems.length > 0 ? 'fail' : 'error';
    rec.reason = `infrastructure: the helper could not run the test: ${report.reason}`;
  } else if (report.result === 'skip') {
    // Only a kernel that lacks a feature is a skip, and the harness proves that from the
    // kernel's config before it runs a test; a helper that skips anyway met a guest that is not
    // set up as the test needs.
    if (problems.length > 0) {
      rec.outcome = 'fail';
      rec.reason = `helper skipped: ${report.reason}`;
    } else if (features.config === null) {
      rec.outcome = 'skip';
      rec.reason = `${report.reason} (the helper's own check: the kernel's config is unknown)`;
    } else {
      rec.outcome = 'error';
      const has = (t.requires ?? []).length > 0 ? `the kernel has ${t.requires!.join(', ')} (${features.source})` : 'the test needs no kernel option the config could lack';
      rec.reason = `infrastructure: the helper skipped (${report.reason}), but ${has}: the guest is not set up as the test needs`;
    }
  } else if (report.result === 'fail') {
    rec.outcome = 'fail';
    rec.reason = `helper: ${report.reason}`;
  } else {
    rec.checks = t.judge(report, model, { fs: m.fs, trace, dmesg: window.map((l) => l.text) });
    const bad = rec.checks.filter((c) => !c.ok);
    const badSetup = bad.filter((c) => c.setup);
    if (bad.length > badSetup.length) problems.unshift(`${bad.length - badSetup.length} of ${rec.checks.length} checks failed`);
    if (problems.length > 0) {
      rec.outcome = 'fail';
    } else if (badSetup.length > 0) {
      // The test did not run as designed: not a pass, and not the kernel's failure either.
      rec.outcome = 'error';
      rec.reason = `infrastructure: set-up did not give the test what it needs: ${badSetup.map((c) => `${c.name} (expected ${c.expected}, got ${c.actual})`).join('; ')}`;
    }
  }
  if (problems.length > 0) rec.reason = [rec.reason, ...problems].filter(Boolean).join('; ');
  return rec;
}

function tapDiag(rec: TestRecord, model: RefcountModel | null): Record<string, YamlValue> {
  const d: Record<string, YamlValue> = { outcome: rec.outcome, duration_ms: rec.durationMs };
  if (rec.reason) d.reason = rec.reason;
  if (model) d.model = model.name;
  if (rec.checks.length > 0) d.checks = summarizeChecks(rec.checks);
  if (rec.report && rec.report.obs.length > 0) {
    d.observed = rec.report.obs.map((o) => `${o.phase}: pfn=0x${o.pfn.toString(16)} refcount=${o.refcount} mapcount=${o.mapcount} zone_device=${o.zone_device}`);
  }
  if (rec.report && Object.keys(rec.report.extra).length > 0) d.extra = rec.report.extra as Record<string, YamlValue>;
  if (rec.findings.length > 0) d.findings = rec.findings.map(describeFinding);
  if (rec.taintBefore !== rec.taintAfter) d.taint = `${rec.taintBefore} -> ${rec.taintAfter}`;
  // Tries lost to infrastructure trouble stay on the record: dashboards count them as flakes.
  if (rec.attempts.length > 1) d.attempts = rec.attempts.map((a) => ({ attempt: a.attempt, boot: a.boot, outcome: a.outcome, reason: a.reason }));
  if (rec.dmesgExcerpt.length > 0) d.dmesg = rec.dmesgExcerpt.join('\n');
  if (rec.outcome !== 'pass' && rec.stderr.trim()) d.stderr = rec.stderr.trim().split('\n').slice(-15).join('\n');
  return d;
}

/** Returns the TAP document of a finished run from its records (what a merged run prints). */
export function formatRunTap(records: TestRecord[], filesystems: string[], header: string[], model: RefcountModel | null): string[] {
  const lines: string[] = [];
  const tap = new TapWriter((l) => lines.push(...l));
  tap.start(filesystems.length + 1, header);
  for (const fs of filesystems) {
    const recs = records.filter((r) => r.fs === fs);
    tap.beginSubtest(fs, recs.length);
    for (const r of recs) tap.point(tapPoint(r, model));
    tap.endSubtest();
  }
  for (const r of records.filter((x) => x.fs === 'all')) tap.point(tapPoint(r, null));
  return lines;
}

function tapPoint(rec: TestRecord, model: RefcountModel | null): Parameters<TapWriter['point']>[0] {
  const diag = tapDiag(rec, model);
  if (rec.outcome === 'skip') return { ok: true, name: rec.test, directive: { kind: 'SKIP', reason: rec.reason }, diag };
  if (rec.outcome === 'xfail') return { ok: false, name: rec.test, directive: { kind: 'TODO', reason: shortReason(rec.reason) }, diag };
  const tags = { timeout: 'TIMEOUT', crash: 'CRASH', error: 'ERROR' } as const;
  const kind = rec.outcome === 'timeout' || rec.outcome === 'crash' || rec.outcome === 'error' ? tags[rec.outcome] : null;
  return { ok: rec.outcome === 'pass', name: rec.test, diag, ...(kind ? { tag: { kind, reason: shortReason(rec.reason) } } : {}) };
}

// The reason after a TIMEOUT/CRASH/ERROR tag: one short line; the YAML block has the rest.
function shortReason(reason: string): string {
  const first = reason.split(/[;\n]/)[0] ?? '';
  return first.length > 100 ? `${first.slice(0, 97)}...` : first;
}

// The run's private scratch directory (keys, initrd, pmem files): 0700, removed at the end.
function makeWorkDir(): string {
  const dir = join(tmpdir(), `dax-harness-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

// The target of a run: a lab machine of the inventory, or a QEMU guest.
function newSession(cfg: HarnessConfig, prepared: Prepared, workDir: string, consolePath: string, log: (s: string) => void, runId = ''): TargetSession {
  if (cfg.target.kind === 'lab') {
    const k = prepared.kernel;
    return new LabSession({
      machine: findMachine(readInventory(cfg.inventoryPath), cfg.target.name),
      runId,
      filesystems: cfg.filesystems,
      helpersDir: prepared.helpersDir,
      probeKo: prepared.probeKo,
      consolePath,
      keep: cfg.keep,
      log,
      // A kernel the harness built has everything built in; a packaged one needs its modules there.
      kernel: cfg.target.installKernel ? { bzImage: k.bzImage, release: k.release, builtIn: k.source?.commit != null } : null,
      extraAppend: cfg.extraAppend,
    });
  }
  return new GuestSession({
    profile: cfg.profile,
    accel: cfg.accel,
    kernel: prepared.kernel.bzImage,
    imagePath: prepared.imagePath,
    filesystems: cfg.filesystems,
    workDir,
    consolePath,
    bootTimeoutMs: cfg.bootTimeoutMs,
    sshPort: cfg.sshPort ?? undefined,
    extraAppend: [...prepared.kernelArgs, ...cfg.extraAppend],
    log,
  });
}

export interface RunSummary {
  exitCode: number;
  runDir: string;
  records: TestRecord[];
  /** Boot-to-SSH time of each boot of the run. */
  boots: number[];
  /** Time spent in tests (sum of the records' durations). */
  testsMs: number;
  /** Every infrastructure event of the run, recovered or not. */
  infra: InfraEvent[];
}

/** Returns what a known-failure signature is matched against. */
export function failureEvidence(rec: TestRecord): FailureEvidence {
  const reported = rec.report !== null && rec.exitCode === HELPER_EXIT[rec.report.result];
  return {
    outcome: rec.outcome,
    failedChecks: rec.checks.filter((c) => !c.ok).map((c) => c.name),
    helperFailure: reported && rec.report?.result === 'fail' ? rec.report.reason : null,
    reported,
    findings: rec.findings.map((f) => ({ kind: f.kind, function: f.function, file: f.file })),
    taintBefore: rec.taintBefore,
    taintAfter: rec.taintAfter,
  };
}

/** Returns true if the guest still has a task in uninterruptible sleep (a wedged kernel path). */
async function hasStuckTask(ssh: SshTarget): Promise<boolean> {
  const r = await ssh.exec({ argv: ['sh', '-c', "grep -l '^State:[[:space:]]*D' /proc/[0-9]*/status 2>/dev/null; true"], timeoutMs: 10_000 });
  return r.timedOut || r.stdout.trim() !== '';
}

/** Reads the kernel's config, if the kernel came with one. */
export function readKernelFeatures(kernel: KernelSpec): KernelFeatures {
  if (!kernel.configPath || !existsSync(kernel.configPath)) return { config: null, source: 'no kernel config known' };
  return { config: parseKconfig(readFileSync(kernel.configPath, 'utf8')), source: kernel.configPath };
}

/** The name of the point that judges the kernel log outside the test windows. */
export const KERNEL_LOG_POINT = 'kernel-log';

/** Returns the record of the kernel-log point: red if anything happened outside the test windows. */
export function kernelLogRecord(outside: OutsideFinding[], taint: OutsideTaint[], scannedBoots: number): TestRecord {
  const rec = errorRecord('all', KERNEL_LOG_POINT, '');
  rec.findings = outside.map((o) => recordFinding(o.finding));
  rec.dmesgExcerpt = outside.flatMap((o) => [`# boot ${o.boot}, ${o.where}:`, ...o.finding.excerpt]).slice(0, 200);
  const parts = [
    ...outside.map((o) => `${o.finding.kind}${o.finding.function ? ` in ${o.finding.function}` : ''} (boot ${o.boot}, ${o.where})`),
    ...taint.map((t) => `taint ${t.letters.join(', ')} gained (boot ${t.boot}, ${t.where})`),
  ];
  if (scannedBoots === 0) return { ...rec, outcome: 'error', reason: 'infrastructure: no boot log was read (no guest came up)' };
  if (parts.length === 0) return { ...rec, outcome: 'pass', reason: `${scannedBoots} boot log(s) read: nothing outside the test windows` };
  return { ...rec, outcome: 'fail', reason: `the kernel reported ${parts.length} incident(s) outside every test window: ${parts.join('; ')}` };
}

// The history database is an index of results/, which stays the source of truth: a database
// that cannot be written is said on stderr, never a failed run (`dax-harness index` rebuilds it).
function indexIntoHistory(path: string, recs: RunRecords, warn: (s: string) => void): void {
  try {
    const db = openHistoryDb(path);
    try {
      indexRun(db, recs);
    } finally {
      db.close();
    }
  } catch (err) {
    warn(`the history database ${path} was not updated (${(err as Error).message}); \`dax-harness index\` rebuilds it from the run directories`);
  }
}

/** Does a whole run: boots (and reboots) guests, runs every test, streams TAP; returns the exit code. */
export async function runSuite(
  cfg: HarnessConfig,
  out: (line: string) => void,
  log: (s: string) => void,
  givenKernel?: KernelSpec,
  // Infrastructure events reach stderr whether or not the run is verbose.
  warn: (s: string) => void = (s) => process.stderr.write(`dax-harness: ${s}\n`),
): Promise<RunSummary> {
  // Bad input is refused before anything is installed, built or written.
  ensureResultsRoot(cfg.resultsDir);
  if (cfg.sshPort !== null) await checkSshPortFree(cfg.sshPort);
  const knownFailures = loadKnownFailures(cfg.knownFailuresPath);
  // On a lab machine the kernel under test is the one it runs: its Debian package gives the
  // probe's headers and the config that proves skips.
  const labKernel = cfg.target.kind === 'lab' && !cfg.target.installKernel && !givenKernel ? await kernelOfLab(cfg, log) : undefined;
  const prepared = await prepare(cfg, log, givenKernel ?? labKernel);
  const features = readKernelFeatures(prepared.kernel);
  const store = RunStore.create(cfg.resultsDir, prepared.kernel.release);
  log(`run directory: ${store.dir}`);
  if (prepared.kernel.buildLog && existsSync(prepared.kernel.buildLog)) store.writeFile('build.log', readFileSync(prepared.kernel.buildLog, 'utf8'));
  const tap = new TapWriter((lines) => {
    store.tap(lines);
    for (const l of lines) out(l);
  });
  const workDir = makeWorkDir();
  const infra: InfraEvent[] = [];
  const runJson: Record<string, unknown> = {
    runId: store.dir.split('/').pop(),
    startedAt: new Date().toISOString(),
    kernel: {
      release: prepared.kernel.release,
      origin: prepared.kernel.origin,
      bzImage: prepared.kernel.bzImage,
      packageVersion: prepared.kernel.packageVersion ?? null,
      config: features.config ? features.source : null,
      source: prepared.kernel.source ?? null,
    },
    // Where the suite ran: `qemu`, or `lab:NAME`.
    target: cfg.target.kind === 'lab' ? `lab:${cfg.target.name}` : 'qemu',
    shard: cfg.shard,
    profile: cfg.profile,
    accel: cfg.accel,
    filesystems: cfg.filesystems,
    tests: cfg.tests.map((t) => t.name),
    image: { path: prepared.imagePath, hash: prepared.imageHash, reused: prepared.imageReused },
    prepareMs: prepared.prepareMs,
    infra,
  };
  const session = newSession(cfg, prepared, workDir, store.path('console.log'), log, String(runJson.runId));
  const writeRunJson = (): void => {
    runJson.boots = session.boots;
    const first = session.boots[0];
    if (first) {
      runJson.qemu = first.qemu;
      runJson.bootToSshMs = first.bootToSshMs;
      runJson.bootMilestones = first.milestones;
      runJson.setupMs = first.setupMs;
    }
    store.writeFile('run.json', `${JSON.stringify(runJson, null, 2)}\n`);
  };
  writeRunJson();
  const onInfra = (e: Omit<InfraEvent, 'at'>): void => {
    const ev = { at: new Date().toISOString(), ...e };
    infra.push(ev);
    const line = `infrastructure: ${ev.kind}${ev.point ? ` in ${ev.point}` : ''} (attempt ${ev.attempt}${ev.boot ? `, boot ${ev.boot}` : ''}): ${ev.reason.replace(/^infrastructure: /, '')}; ${ev.action === 'retried' ? 'retrying on a fresh guest' : 'gave up'}`;
    warn(line);
    tap.comment(line);
    writeRunJson();
  };
  const records: TestRecord[] = [];
  let interrupted: string | null = null;
  const onSignal = (sig: string): void => {
    interrupted = sig;
    log(`${sig}: stopping the guest and finishing the results`);
    void session.discard();
  };
  const sigint = (): void => onSignal('SIGINT');
  const sigterm = (): void => onSignal('SIGTERM');
  process.once('SIGINT', sigint);
  process.once('SIGTERM', sigterm);
  // The kernel log outside every test window, boot by boot: read when a guest is let go.
  const outside: OutsideFinding[] = [];
  const outsideTaint: OutsideTaint[] = [];
  let scannedBoots = 0;
  // The taint mask as the last test of the current boot left it: a failure bit set between two
  // tests (or during set-up) belongs to no test, and is judged with the kernel log.
  let lastTaint: { boot: number; mask: number; after: string | null } | null = null;
  const failureLetters = (before: number, after: number): string[] => failureTaintDelta(before, after).map((f) => f.letter);
  // The taint a boot's set-up left, judged once per boot: when its first test starts, or when
  // it is let go before any test ran on it (a boot lost during set-up keeps its evidence).
  const noteSetupTaint = (boot: number, atSetup: number): void => {
    if (lastTaint?.boot === boot) return;
    const letters = failureLetters(0, atSetup);
    if (letters.length > 0) outsideTaint.push({ boot, where: 'boot and set-up', letters });
    lastTaint = { boot, mask: atSetup, after: null };
  };
  const noteTaint = (boot: number, mask: number, before: string): void => {
    noteSetupTaint(boot, session.current?.taintAtSetup ?? 0);
    const gained = failureLetters(lastTaint!.mask, mask);
    if (gained.length > 0) outsideTaint.push({ boot, where: describeStretch({ after: lastTaint!.after, before }), letters: gained });
  };
  // Reads a guest's whole log (dmesg while it answers, else its console) before it goes, keeps
  // it in the run directory and judges what lies outside the test windows.
  const retire = async (keepAs?: string, final = false): Promise<void> => {
    const l = session.current;
    if (l && !interrupted) {
      let text: string | null = null;
      if (!l.target.exited() && !l.target.ssh.closed) {
        const d = await l.target.ssh.exec({ argv: ['dmesg'], timeoutMs: 30_000 }).catch(() => null);
        if (d && !d.timedOut && d.exitCode === 0) text = d.stdout;
      }
      if (text !== null) store.writeFile(keepAs ?? `dmesg-boot${l.boot}.txt`, text);
      else text = l.target.console.sinceMark(0);
      outside.push(...scanOutsideWindows(l.boot, parseDmesg(text)));
      noteSetupTaint(l.boot, l.taintAtSetup);
      scannedBoots += 1;
    }
    // The last boot is not replaced: the session ends (a lab machine is restored).
    await (final ? session.close() : session.discard());
  };
  let bootFailures = 0;
  let fatal: unknown = null;
  let lost: string | null = null;
  let thrown: unknown = null;
  try {
    // A lab machine is taken (lease, pmem check, install) before TAP starts: a refusal is one error.
    await session.open();
    tap.start(cfg.filesystems.length + 1, [
      `dax-harness run ${runJson.runId}`,
      `kernel ${prepared.kernel.release} (${prepared.kernel.origin}${prepared.kernel.packageVersion ? ` ${prepared.kernel.packageVersion}` : ''}), profile ${cfg.profile.name}, accel ${cfg.accel}`,
    ]);
    let announcedModel = false;
    // The model of the guest a test ran on, kept when that guest is replaced right after.
    let lastModel: RefcountModel | null = null;
    // A shard runs its share of the points only; the others are another shard's (merge joins them).
    const mine = new Set(shardPoints(cfg.filesystems, cfg.tests.map((t) => t.name), cfg.shard));
    for (const fs of cfg.filesystems) {
      const tests = cfg.tests.filter((t) => mine.has(`${fs}-${t.name}`));
      tap.beginSubtest(fs, tests.length);
      for (const t of tests) {
        const point = `${fs}-${t.name}`;
        const attempts: Attempt[] = [];
        let rec: TestRecord | null = null;
        for (let attempt = 1; rec === null; attempt++) {
          if (lost || interrupted) {
            rec = { ...errorRecord(fs, t.name, lost ?? `not run: interrupted by ${interrupted}`), outcome: lost ? 'error' : 'skip' };
            break;
          }
          if (t.filesystems && !t.filesystems.includes(fs)) {
            rec = { ...errorRecord(fs, t.name, `not applicable to ${fs}: ${t.filesystemsWhy ?? `the test runs on ${t.filesystems.join(', ')}`}`), outcome: 'skip' };
            break;
          }
          const missing = missingOptions(t.requires, features);
          if (missing.length > 0) {
            rec = { ...errorRecord(fs, t.name, `the kernel lacks ${missing.join(', ')} (not set in ${features.source})`), outcome: 'skip' };
            break;
          }
          let live: LiveTarget;
          try {
            live = await session.ensure();
            bootFailures = 0;
          } catch (err) {
            bootFailures += 1;
            const msg = err instanceof Error ? err.message : String(err);
            // A boot that fails is infrastructure trouble: retried like any other, then given up.
            const retry = bootFailures <= cfg.infraRetries && !interrupted;
            onInfra({ kind: 'boot-failed', point, attempt, boot: null, action: retry ? 'retried' : 'gave up', reason: msg });
            attempts.push({ attempt, boot: null, outcome: 'error', reason: `infrastructure: ${msg}`, durationMs: 0 });
            if (retry) continue;
            if (session.boots.length === 0) fatal ??= err;
            lost = `not run: no guest (${msg})`;
            rec = errorRecord(fs, t.name, `infrastructure: ${msg}`);
            // The console tail says why the guest did not come up.
            if (err instanceof HarnessError && err.detail) rec.dmesgExcerpt = err.detail.split('\n');
            break;
          }
          lastModel = live.model;
          if (!announcedModel) {
            announcedModel = true;
            runJson.model = live.model;
            runJson.mounts = [...live.mounts.values()];
            writeRunJson();
            log(`refcount model: ${live.model.name} (idle refcount ${live.model.idle}; evidence ${live.model.evidence.join(', ')})`);
            tap.comment(`refcount model ${live.model.name}: idle refcount ${live.model.idle}, mappings ${live.model.mappingsCounted ? '' : 'not '}counted (${live.model.evidence.join(', ')})`);
          }
          const m = live.mounts.get(fs)!;
          log(`${fs}/${t.name} ...${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
          const mark = live.target.console.mark();
          const started = performance.now();
          let r: TestRecord;
          try {
            if (t.needsSlowDev) await ensureSlowDev(live, live.paths.slowDev);
            r = await runOneTest(live, t, m, cfg.testTimeoutMs, features);
          } catch (err) {
            if (err instanceof HarnessError && err.kind === 'guest' && !live.target.ssh.closed && !live.target.exited()) {
              // The guest answers but lacks what the test needs (the slow device): set-up trouble.
              r = errorRecord(fs, t.name, `infrastructure: ${err.message}`);
              if (err.detail) r.dmesgExcerpt = err.detail.split('\n');
            } else {
              r = await classifyLostGuest(live.target, fs, t.name, mark, started, err);
            }
            if (interrupted) r = { ...r, outcome: 'skip', reason: `not run: interrupted by ${interrupted}` };
          }
          attempts.push({ attempt, boot: live.boot, outcome: r.outcome, reason: r.reason, durationMs: r.durationMs });
          if (r.taintBefore !== null) {
            noteTaint(live.boot, r.taintBefore, point);
            lastTaint = { boot: live.boot, mask: r.taintAfter ?? r.taintBefore, after: point };
          }
          if (r.outcome === 'timeout') {
            // A task stuck in D state (or a guest too wedged to say) poisons later tests.
            const stuck = await hasStuckTask(live.target.ssh).catch(() => true);
            if (stuck) {
              r.reason += '; a task was left in D state: the guest is restarted';
              await retire();
            }
          } else if (r.outcome === 'crash') {
            await retire();
          } else if (r.outcome === 'error') {
            await retire();
            // Infrastructure trouble is retried on a fresh guest; kernel failures never are.
            const retry = attempt <= cfg.infraRetries && !interrupted;
            const kind = r.reason.startsWith('infrastructure: the guest was lost') ? 'guest-lost' : 'set-up';
            onInfra({ kind, point, attempt, boot: live.boot, action: retry ? 'retried' : 'gave up', reason: r.reason });
            if (retry) continue;
            r.reason += attempt > 1 ? ` (after ${attempt - 1} retr${attempt === 2 ? 'y' : 'ies'})` : '';
          }
          rec = r;
          if (t.restartAfter && session.current) await retire();
        }
        rec.attempts = attempts;
        if (isKernelFailure(rec.outcome)) {
          const known = matchKnownFailure(knownFailures, t.name, fs, prepared.kernel.release, lastModel?.name ?? null, failureEvidence(rec));
          if (known && known.mismatch === null) {
            rec = {
              ...rec,
              outcome: 'xfail',
              knownAs: rec.outcome,
              known: { reason: known.entry.reason, evidence: known.entry.evidence },
              reason: `known failure: ${known.entry.reason} (evidence: ${known.entry.evidence}); this run: ${rec.reason}`,
            };
          } else if (known) {
            // A known bug in this test, but this run failed differently: a new failure, kept red.
            rec = { ...rec, reason: `${rec.reason}; not the known failure (${known.mismatch})` };
          }
        }
        log(`${fs}/${t.name}: ${rec.outcome}${rec.reason ? ` (${rec.reason})` : ''} in ${rec.durationMs} ms`);
        records.push(rec);
        store.record(rec);
        tap.point(tapPoint(rec, lastModel));
      }
      tap.endSubtest();
    }
    await retire('dmesg.txt', true);
    const logRec = interrupted
      ? { ...errorRecord('all', KERNEL_LOG_POINT, `not run: interrupted by ${interrupted}`), outcome: 'skip' as const }
      : kernelLogRecord(outside, outsideTaint, scannedBoots);
    records.push(logRec);
    store.record(logRec);
    tap.point(tapPoint(logRec, null));
  } catch (err) {
    thrown = err;
    throw err;
  } finally {
    process.removeListener('SIGINT', sigint);
    process.removeListener('SIGTERM', sigterm);
    await session.close();
    Object.assign(runJson, session.record());
    rmSync(workDir, { recursive: true, force: true });
    const counts: Record<string, number> = {};
    for (const r of records) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
    runJson.finishedAt = new Date().toISOString();
    runJson.counts = counts;
    runJson.exitCode = interrupted ? EXIT_INFRA : exitCodeFor(records.map((r) => r.outcome));
    if (interrupted) runJson.interrupted = interrupted;
    try {
      writeRunJson();
      // JUnit for Jenkins and GitLab, from the same records (never from the TAP text).
      const recs = parseRunRecords(store.dir, JSON.stringify(runJson), records.map((r) => JSON.stringify(r)).join('\n'));
      store.writeFile('junit.xml', formatJunit([recs]));
      indexIntoHistory(join(cfg.resultsDir, 'history.sqlite'), recs, warn);
    } catch (err) {
      // Already failing (e.g. a full disk): the first error is the one to report.
      fatal ??= err;
    }
    store.close();
    if (cfg.target.kind === 'lab') noteLabHealth(cfg.inventoryPath, cfg.target.name, thrown, Number(runJson.exitCode), warn);
  }
  // The first boot failing means nothing was tested: the caller reports that error itself.
  if (fatal) throw fatal;
  return {
    exitCode: interrupted ? EXIT_INFRA : exitCodeFor(records.map((r) => r.outcome)),
    runDir: store.dir,
    records,
    boots: session.boots.map((b) => b.bootToSshMs),
    testsMs: records.reduce((a, r) => a + r.durationMs, 0),
    infra,
  };
}

/** Returns a record with no result yet: outcome error, no checks, no evidence. */
export function errorRecord(fs: string, test: string, reason: string): TestRecord {
  return {
    id: `${fs}-${test}`,
    test,
    fs,
    outcome: 'error',
    reason,
    durationMs: 0,
    checks: [],
    findings: [],
    taintBefore: null,
    taintAfter: null,
    report: null,
    exitCode: null,
    stderr: '',
    dmesgExcerpt: [],
    attempts: [],
  };
}

// A connection lost mid-test is the kernel's fault only if the console shows it dying.
async function classifyLostGuest(guest: TargetHost, fs: string, test: string, mark: number, started: number, err: unknown): Promise<TestRecord> {
  // Let QEMU finish printing the panic and exit.
  await new Promise((r) => setTimeout(r, 1000));
  const consoleText = guest.console.sinceMark(mark);
  const findings = scanDmesg(parseDmesg(consoleText));
  const died = findings.some((f) => ['panic', 'oops', 'bug', 'general-protection'].includes(f.kind));
  const msg = err instanceof Error ? err.message : String(err);
  const rec = errorRecord(fs, test, died ? `the kernel crashed: ${findings[0]?.line.text ?? ''}` : `infrastructure: the guest was lost (${guest.name} ${guest.exited() ?? 'still running'}): ${msg}`);
  rec.outcome = died ? 'crash' : 'error';
  rec.findings = findings.map(recordFinding);
  rec.durationMs = Math.round(performance.now() - started);
  rec.dmesgExcerpt = died ? findingsText(findings) : consoleText.split('\n').map((l) => l.replace(/\r$/, '')).filter(Boolean).slice(-20);
  return rec;
}

/** Boots and sets up a guest as a run would, runs one command in it, and returns its exit code. */
export async function runExec(cfg: HarnessConfig, out: (s: string) => void, err: (s: string) => void, log: (s: string) => void): Promise<number> {
  const prepared = await prepare(cfg, log);
  const workDir = makeWorkDir();
  const session = newSession(cfg, prepared, workDir, join(workDir, 'console.log'), log);
  try {
    const live = await session.ensure();
    log(`refcount model ${live.model.name}; running: ${shellQuote(cfg.execArgv)}`);
    const r = await live.target.ssh.exec({ argv: cfg.execArgv, timeoutMs: cfg.testTimeoutMs ?? 300_000 }, (stream, chunk) => (stream === 'stdout' ? out(chunk) : err(chunk)));
    if (r.timedOut) {
      err(`dax-harness: the command did not finish within ${(cfg.testTimeoutMs ?? 300_000) / 1000} s\n`);
      return EXIT_KERNEL_FAILURE;
    }
    return r.exitCode ?? EXIT_KERNEL_FAILURE;
  } finally {
    await session.discard();
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Returns the kernel a lab machine runs, as a Debian package the harness can fetch headers and config for. */
async function kernelOfLab(cfg: HarnessConfig, log: (s: string) => void): Promise<KernelSpec> {
  const m = findMachine(readInventory(cfg.inventoryPath), (cfg.target as { name: string }).name);
  const ssh = await SshTarget.connect(planLabSsh(m, m.timeouts.connectS * 1000));
  let ident;
  try {
    const r = await ssh.exec(planIdentity());
    ident = parseIdentity(r.stdout);
  } finally {
    ssh.close();
  }
  const line = debianLineOfRelease(ident.release);
  if (!line) {
    throw new HarnessError('config', `lab machine ${m.name} runs ${ident.release}, which is not a Debian kernel the harness can fetch headers for (${debianLineNames()})`, {
      hint: 'run a Debian kernel there, or test your kernel in QEMU (--kernel/--tree without --target)',
    });
  }
  log(`lab ${m.name} runs ${ident.release} (${ident.version.slice(0, 120)})`);
  await ensureRequirements(planRequirements({ headersFor: line.host ? ident.release : undefined, chrootFor: line.host ? undefined : line.suite }), cfg.allowInstall, log);
  const k = await fetchDistroKernel(cfg.cacheDir, ident.release, log);
  // The package the harness fetched must be the build the machine runs, or the config proves nothing.
  if (k.packageVersion && !ident.version.includes(k.packageVersion)) {
    throw new HarnessError('config', `lab machine ${m.name} runs ${ident.release} built as "${ident.version.slice(0, 160)}", but the package the harness found is ${k.packageVersion}`, {
      hint: 'upgrade the machine to the current package of its kernel, or refresh the host\'s apt lists (apt-get update)',
    });
  }
  return k;
}

// Quarantine: infrastructure failures in a row are counted in the inventory, a clean run resets them.
function noteLabHealth(path: string, name: string, thrown: unknown, exitCode: number, warn: (s: string) => void): void {
  const infra = thrown instanceof HarnessError ? ['ssh', 'boot', 'guest', 'timeout'].includes(thrown.kind) : thrown !== null || exitCode === EXIT_INFRA;
  try {
    const m = updateMachine(path, name, (cur) => ({ ...cur!, health: planHealthAfterRun(cur!, infra, new Date().toISOString()) }));
    if (m.health.unhealthy) warn(`lab machine ${name} is marked unhealthy: ${m.health.unhealthy}; it is skipped until dax-harness lab check ${name} passes`);
  } catch (err) {
    warn(`could not record the health of lab machine ${name} in ${path}: ${(err as Error).message}`);
  }
}
