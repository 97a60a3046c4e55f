// The run: prepare the kernel and guest image, boot, set up fsdax filesystems, run each test
// bracketed by dmesg markers and taint reads, judge, and stream TAP and records to disk.
import { readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { buildHelpers, buildProbe } from './artifacts.js';
import { bootGuest, type Guest } from './boot.js';
import type { HarnessConfig } from './config.js';
import { isFailureTaint, parseDmesg, scanDmesg, sliceBetweenMarkers, taintDelta, type DmesgFinding } from './dmesg.js';
import { EXIT_INFRA, EXIT_KERNEL_FAILURE, EXIT_PASS, HarnessError } from './errors.js';
import { planFsSetup, runFsSetup, type MountedFs } from './guest-setup.js';
import { buildImage, formatKeyOverlay } from './image.js';
import { generateRunKeys } from './keys.js';
import { fetchDistroKernel, resolveDistroRelease, userKernel, type KernelSpec } from './kernel.js';
import { detectRefcountModel, parseKallsymsNames, type RefcountModel } from './model.js';
import { planRequirements, ensureRequirements } from './prereqs.js';
import { planQemu } from './qemu-plan.js';
import { shellQuote } from './proc.js';
import { RunStore } from './results.js';
import type { SshTarget } from './ssh-target.js';
import { parseHelperReport, type Check, type HelperReport, type TestDef } from './suite.js';
import { TapWriter, type YamlValue } from './tap.js';

export type Outcome = 'pass' | 'fail' | 'skip' | 'timeout' | 'crash' | 'error';

export interface TestRecord {
  id: string;
  test: string;
  fs: string;
  outcome: Outcome;
  reason: string;
  durationMs: number;
  checks: Check[];
  findings: { kind: string; line: string }[];
  taintBefore: number | null;
  taintAfter: number | null;
  report: HelperReport | null;
  exitCode: number | null;
  stderr: string;
  dmesgExcerpt: string[];
}

export interface Prepared {
  kernel: KernelSpec;
  imagePath: string;
  imageHash: string;
  imageReused: boolean;
  prepareMs: number;
}

/** Returns true if an outcome means the kernel misbehaved. */
export function isKernelFailure(o: Outcome): boolean {
  return o === 'fail' || o === 'timeout' || o === 'crash';
}

/** Returns the CLI exit code for a set of outcomes. */
export function exitCodeFor(outcomes: Outcome[]): number {
  if (outcomes.some(isKernelFailure)) return EXIT_KERNEL_FAILURE;
  if (outcomes.some((o) => o === 'error')) return EXIT_INFRA;
  return EXIT_PASS;
}

/** Gets the kernel, helpers, probe and the cached guest image ready. */
export async function prepare(cfg: HarnessConfig, log: (s: string) => void): Promise<Prepared> {
  const t0 = performance.now();
  const release = cfg.kernel.kind === 'distro' ? await resolveDistroRelease(cfg.kernel.release, cfg.allowInstall && process.getuid?.() === 0) : undefined;
  await ensureRequirements(planRequirements({ headersFor: release }), cfg.allowInstall, log);
  const kernel =
    cfg.kernel.kind === 'distro'
      ? await fetchDistroKernel(cfg.cacheDir, release!, log)
      : userKernel(cfg.kernel.bzImage, cfg.kernel.modulesDir, cfg.kernel.buildDir);
  const helpersDir = await buildHelpers(cfg.repoDir, cfg.cacheDir);
  const probeKo = await buildProbe(cfg.repoDir, cfg.cacheDir, kernel);
  const initScript = readFileSync(join(cfg.repoDir, 'qemu', 'init.sh'), 'utf8');
  const img = await buildImage({ kernel, initScript, helpersDir, probeKo }, cfg.cacheDir);
  log(`guest image ${img.reused ? 'reused' : 'built'}: ${img.path} (${(img.bytes / 1e6).toFixed(1)} MB)`);
  return { kernel, imagePath: img.path, imageHash: img.hash, imageReused: img.reused, prepareMs: Math.round(performance.now() - t0) };
}

/** Returns the plans a --dry-run prints: the QEMU command line and the guest setup. */
export function formatDryRun(cfg: HarnessConfig): string {
  const pmem = cfg.profile.nvdimms.map((_, i) => `<run-dir>/pmem/pmem${i}.img`);
  const qemu = planQemu({ profile: cfg.profile, accel: cfg.accel, kernel: '<kernel bzImage>', initrd: '<run-dir>/initrd', sshPort: 10022, pmemFiles: pmem });
  const lines = [`# QEMU (profile ${cfg.profile.name}: ${cfg.profile.description})`, shellQuote(qemu.argv), '', '# guest setup'];
  for (const p of planFsSetup(cfg.profile, cfg.filesystems)) {
    for (const c of p.namespace) lines.push(shellQuote(c.argv));
    const dev = p.device ?? `/dev/<blockdev of the ${p.fs} namespace>`;
    lines.push(shellQuote(p.mkfs(dev).argv), shellQuote(p.mount(dev).argv));
  }
  lines.push('', '# tests');
  for (const fs of cfg.filesystems) for (const t of cfg.tests) lines.push(`${shellQuote(t.argv({ mountpoint: `/mnt/${fs}`, fs }))}   # ${fs}/${t.name}, ${t.timeoutMs / 1000} s`);
  return lines.join('\n');
}

async function guestText(ssh: SshTarget, argv: string[], timeoutMs = 20_000): Promise<string> {
  const r = await ssh.exec({ argv, timeoutMs });
  if (r.exitCode !== 0) throw new HarnessError('guest', `${argv.join(' ')} failed in the guest (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Reads the refcount model from the guest's kallsyms. */
export async function detectGuestModel(ssh: SshTarget): Promise<RefcountModel> {
  // Only the few marker symbols are needed: grep in the guest instead of copying 10 MB.
  const text = await guestText(ssh, ['sh', '-c', "grep -E ' (__put_devmap_managed_page_refs|__put_devmap_managed_page|put_devmap_managed_page|vmf_insert_folio_pmd|vmf_insert_page_mkwrite|dax_folio_reset_order)$' /proc/kallsyms; true"]);
  return detectRefcountModel(parseKallsymsNames(text));
}

function summarizeChecks(checks: Check[]): YamlValue {
  return checks.map((c) => `${c.ok ? 'ok' : 'FAILED'}: ${c.name}: expected ${c.expected}, got ${c.actual}`);
}

function findingsText(fs: DmesgFinding[]): string[] {
  return fs.flatMap((f) => f.excerpt).slice(0, 60);
}

/** Runs one test on one filesystem; only a lost connection escapes as an exception. */
export async function runOneTest(guest: Guest, t: TestDef, m: MountedFs, model: RefcountModel, testTimeoutMs: number | null): Promise<TestRecord> {
  const id = `${m.fs}-${t.name}`;
  const started = performance.now();
  const ssh = guest.ssh;
  const pre = await guestText(ssh, ['sh', '-c', 'echo "dax-harness: BEGIN $1" > /dev/kmsg; cat /proc/sys/kernel/tainted', 'begin', id]);
  const taintBefore = Number.parseInt(pre.trim(), 10);
  const timeoutMs = testTimeoutMs ?? t.timeoutMs;
  const res = await ssh.exec({ argv: t.argv({ mountpoint: m.mountpoint, fs: m.fs }), timeoutMs });
  const durationMs = Math.round(performance.now() - started);
  let stacks: string[] = [];
  if (res.timedOut) {
    // Evidence of the hang: every blocked task's stack, printed by sysrq-w into dmesg.
    await ssh.exec({ argv: ['sh', '-c', 'echo w > /proc/sysrq-trigger'], timeoutMs: 10_000 });
    stacks = ['(blocked-task stacks from sysrq-w follow in the dmesg excerpt)'];
  }
  const post = await guestText(ssh, ['sh', '-c', 'cat /proc/sys/kernel/tainted; echo "dax-harness: END $1" > /dev/kmsg', 'end', id]);
  const taintAfter = Number.parseInt(post.trim(), 10);
  const dmesg = parseDmesg(await guestText(ssh, ['dmesg'], 30_000));
  const window = sliceBetweenMarkers(dmesg, id) ?? [];
  const findings = scanDmesg(window);
  const newTaint = taintDelta(taintBefore, taintAfter).filter((f) => isFailureTaint(f.bit));
  const report = parseHelperReport(res.stdout);

  const rec: TestRecord = {
    id,
    test: t.name,
    fs: m.fs,
    outcome: 'pass',
    reason: '',
    durationMs,
    checks: [],
    findings: findings.map((f) => ({ kind: f.kind, line: f.line.text })),
    taintBefore,
    taintAfter,
    report,
    exitCode: res.exitCode,
    stderr: res.stderr.slice(-4000),
    dmesgExcerpt: res.timedOut ? [...stacks, ...window.map((l) => l.raw).slice(-200)] : findingsText(findings),
  };
  const problems: string[] = [];
  if (findings.length > 0) problems.push(`dmesg: ${[...new Set(findings.map((f) => f.kind))].join(', ')}`);
  if (newTaint.length > 0) problems.push(`kernel newly tainted: ${newTaint.map((f) => `${f.letter} (${f.meaning})`).join(', ')}`);

  if (res.timedOut) {
    rec.outcome = 'timeout';
    rec.reason = `no result within ${timeoutMs / 1000} s`;
  } else if (report?.result === 'skip' || res.exitCode === 4) {
    rec.outcome = problems.length > 0 ? 'fail' : 'skip';
    rec.reason = report?.reason ?? 'helper skipped';
  } else if (!report) {
    rec.outcome = 'fail';
    rec.reason = `helper printed no JSON report (exit ${res.exitCode ?? res.signal})`;
  } else if (report.result === 'fail') {
    rec.outcome = 'fail';
    rec.reason = `helper: ${report.reason}`;
  } else {
    rec.checks = t.judge(report, model);
    const bad = rec.checks.filter((c) => !c.ok);
    if (bad.length > 0) problems.unshift(`${bad.length} of ${rec.checks.length} checks failed`);
    rec.outcome = problems.length > 0 ? 'fail' : 'pass';
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
  if (rec.taintBefore !== rec.taintAfter) d.taint = `${rec.taintBefore} -> ${rec.taintAfter}`;
  if (rec.dmesgExcerpt.length > 0) d.dmesg = rec.dmesgExcerpt.join('\n');
  if (rec.outcome !== 'pass' && rec.stderr.trim()) d.stderr = rec.stderr.trim().split('\n').slice(-15).join('\n');
  return d;
}

function tapPoint(rec: TestRecord, model: RefcountModel | null): Parameters<TapWriter['point']>[0] {
  const diag = tapDiag(rec, model);
  if (rec.outcome === 'skip') return { ok: true, name: rec.test, directive: { kind: 'SKIP', reason: rec.reason }, diag };
  // TIMEOUT and CRASH are named in the description: TAP 14 has no directive for them.
  const suffix = rec.outcome === 'timeout' ? ' (TIMEOUT)' : rec.outcome === 'crash' ? ' (CRASH)' : rec.outcome === 'error' ? ' (INFRASTRUCTURE ERROR)' : '';
  return { ok: rec.outcome === 'pass', name: `${rec.test}${suffix}`, diag };
}

export interface RunSummary {
  exitCode: number;
  runDir: string;
  records: TestRecord[];
}

/** Does a whole run; returns the exit code. Infrastructure failures before the first test throw. */
export async function runSuite(cfg: HarnessConfig, out: (line: string) => void, log: (s: string) => void): Promise<RunSummary> {
  const prepared = await prepare(cfg, log);
  const store = RunStore.create(cfg.resultsDir, prepared.kernel.release);
  log(`run directory: ${store.dir}`);
  const tap = new TapWriter((lines) => {
    store.tap(lines);
    for (const l of lines) out(l);
  });
  const workDir = join(tmpdir(), `dax-harness-${process.pid}-${Date.now()}`);
  mkdirSync(workDir, { recursive: true, mode: 0o700 });
  const runJson: Record<string, unknown> = {
    runId: store.dir.split('/').pop(),
    startedAt: new Date().toISOString(),
    kernel: { release: prepared.kernel.release, origin: prepared.kernel.origin, bzImage: prepared.kernel.bzImage },
    profile: cfg.profile,
    accel: cfg.accel,
    filesystems: cfg.filesystems,
    tests: cfg.tests.map((t) => t.name),
    image: { path: prepared.imagePath, hash: prepared.imageHash, reused: prepared.imageReused },
    prepareMs: prepared.prepareMs,
  };
  const writeRunJson = (): void => store.writeFile('run.json', `${JSON.stringify(runJson, null, 2)}\n`);
  writeRunJson();
  const records: TestRecord[] = [];
  let guest: Guest | null = null;
  let interrupted: string | null = null;
  const onSignal = (sig: string): void => {
    interrupted = sig;
    log(`${sig}: stopping the guest and finishing the results`);
    void guest?.stop();
  };
  const sigint = (): void => onSignal('SIGINT');
  const sigterm = (): void => onSignal('SIGTERM');
  process.once('SIGINT', sigint);
  process.once('SIGTERM', sigterm);
  let model: RefcountModel | null = null;
  try {
    tap.start(cfg.filesystems.length, [
      `dax-harness run ${runJson.runId}`,
      `kernel ${prepared.kernel.release} (${prepared.kernel.origin}), profile ${cfg.profile.name}, accel ${cfg.accel}`,
    ]);
    const keys = await generateRunKeys(join(workDir, 'keys'));
    const initrd = join(workDir, 'initrd');
    // The cached base image plus a small archive with this run's keys: the kernel unpacks
    // concatenated cpio archives in order.
    writeFileSync(initrd, Buffer.concat([readFileSync(prepared.imagePath), formatKeyOverlay(keys.hostKeyDropbear, keys.clientPublicLine)]));
    let mounted: MountedFs[] = [];
    try {
      guest = await bootGuest({
        profile: cfg.profile,
        accel: cfg.accel,
        kernel: prepared.kernel.bzImage,
        initrd,
        keys,
        workDir,
        consolePath: store.path('console.log'),
        bootTimeoutMs: cfg.bootTimeoutMs,
        log,
      });
      runJson.qemu = guest.plan.argv;
      runJson.bootToSshMs = guest.bootToSshMs;
      runJson.bootMilestones = guest.milestones;
      model = await detectGuestModel(guest.ssh);
      runJson.model = model;
      log(`refcount model: ${model.name} (idle refcount ${model.idle}; evidence ${model.evidence.join(', ')})`);
      const t0 = performance.now();
      mounted = await runFsSetup(guest.ssh, planFsSetup(cfg.profile, cfg.filesystems));
      runJson.setupMs = Math.round(performance.now() - t0);
      runJson.mounts = mounted;
      writeRunJson();
      tap.comment(`refcount model ${model.name}: idle refcount ${model.idle}, mappings ${model.mappingsCounted ? '' : 'not '}counted (${model.evidence.join(', ')})`);
    } catch (err) {
      // Nothing could be tested: report every planned point as an infrastructure error.
      const msg = err instanceof Error ? err.message : String(err);
      for (const fs of cfg.filesystems) {
        tap.beginSubtest(fs, cfg.tests.length);
        for (const t of cfg.tests) {
          const rec = errorRecord(fs, t.name, `setup failed: ${msg}`);
          records.push(rec);
          store.record(rec);
          tap.point(tapPoint(rec, model));
        }
        tap.endSubtest();
      }
      throw err;
    }
    let lost: string | null = null;
    for (const m of mounted) {
      tap.beginSubtest(m.fs, cfg.tests.length);
      for (const t of cfg.tests) {
        let rec: TestRecord;
        if (lost || interrupted) {
          rec = { ...errorRecord(m.fs, t.name, lost ?? `run interrupted by ${interrupted}`), outcome: 'skip' };
        } else {
          log(`${m.fs}/${t.name} ...`);
          const mark = guest.console.mark();
          try {
            rec = await runOneTest(guest, t, m, model, cfg.testTimeoutMs);
          } catch (err) {
            rec = await classifyLostGuest(guest, m.fs, t.name, mark, err);
            lost = `not run: the guest was lost during ${m.fs}/${t.name}`;
          }
          log(`${m.fs}/${t.name}: ${rec.outcome}${rec.reason ? ` (${rec.reason})` : ''} in ${rec.durationMs} ms`);
        }
        records.push(rec);
        store.record(rec);
        tap.point(tapPoint(rec, model));
      }
      tap.endSubtest();
    }
    if (guest && !guest.exited() && !guest.ssh.closed) {
      const d = await guest.ssh.exec({ argv: ['dmesg'], timeoutMs: 30_000 }).catch(() => null);
      if (d) store.writeFile('dmesg.txt', d.stdout);
    }
  } finally {
    process.removeListener('SIGINT', sigint);
    process.removeListener('SIGTERM', sigterm);
    if (guest) {
      guest.ssh.close();
      await guest.stop();
    }
    rmSync(workDir, { recursive: true, force: true });
    const counts: Record<string, number> = {};
    for (const r of records) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
    runJson.finishedAt = new Date().toISOString();
    runJson.counts = counts;
    runJson.exitCode = exitCodeFor(records.map((r) => r.outcome));
    if (interrupted) runJson.interrupted = interrupted;
    writeRunJson();
    store.close();
  }
  return { exitCode: interrupted ? EXIT_INFRA : exitCodeFor(records.map((r) => r.outcome)), runDir: store.dir, records };
}

function errorRecord(fs: string, test: string, reason: string): TestRecord {
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
  };
}

// A connection lost mid-test is the kernel's fault only if the console shows it dying.
async function classifyLostGuest(guest: Guest, fs: string, test: string, mark: number, err: unknown): Promise<TestRecord> {
  // Let QEMU finish printing the panic and exit.
  await new Promise((r) => setTimeout(r, 1000));
  const consoleText = guest.console.sinceMark(mark);
  const findings = scanDmesg(parseDmesg(consoleText));
  const died = findings.some((f) => ['panic', 'oops', 'bug', 'general-protection'].includes(f.kind));
  const msg = err instanceof Error ? err.message : String(err);
  const rec = errorRecord(fs, test, died ? `the kernel crashed: ${findings[0]?.line.text ?? ''}` : `infrastructure: ${msg} (QEMU ${guest.exited() ?? 'still running'})`);
  rec.outcome = died ? 'crash' : 'error';
  rec.findings = findings.map((f) => ({ kind: f.kind, line: f.line.text }));
  rec.dmesgExcerpt = died ? findingsText(findings) : consoleText.split('\n').slice(-20);
  return rec;
}
