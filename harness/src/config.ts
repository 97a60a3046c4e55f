// Resolves the command line into one read-only configuration with every default applied.
// Nothing below the CLI reads process.env or argv.
import { parseArgs } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { HarnessError } from './core/errors.js';
import type { Accel, QemuProfile } from './target/qemu/qemu-plan.js';
import type { FsType } from './target/guest-setup.js';
import { selectTests, type TestDef } from './suite/suite.js';
import { parseSeries, type Patch } from './kernel/series.js';
import { availableParallelism } from 'node:os';
import { DEBIAN_LINES, DEFAULT_DEBIAN_LINE, debianLineNames, debianLineOfRelease, findDebianLine } from './kernel/debian.js';

export type Command = 'run' | 'exec' | 'doctor' | 'list' | 'help' | 'mutate' | 'matrix' | 'report' | 'queue' | 'nightly' | 'index' | 'history' | 'merge' | 'lab';

/** Where the suite runs: a QEMU guest the harness boots, or a lab machine of the inventory. */
export type TargetSpec = { kind: 'qemu' } | { kind: 'lab'; name: string; installKernel: boolean };

/** For the lab command: what to do to which machine. */
export interface LabConfig {
  action: 'add' | 'trust' | 'check' | 'release' | 'list';
  name: string | null;
  host: string | null;
  port: number | null;
  user: string | null;
  identity: string | null;
  fingerprint: string | null;
}

/** A kernel the harness builds: a tree, a base, a series, a config. */
export interface BuildSpec {
  kind: 'build';
  /** debian-6.1 or a path to a git tree. */
  tree: string;
  /** Base ref; undefined = the import (debian-6.1) or HEAD of the tree. */
  base: string | undefined;
  series: { path: string; patches: Patch[] }[];
  baseConfig: 'tinyconfig' | 'defconfig';
  fragmentPath: string;
  jobs: number;
}

export interface HarnessConfig {
  command: Command;
  repoDir: string;
  resultsDir: string;
  cacheDir: string;
  kernel: { kind: 'distro'; line: string; release: string | undefined } | { kind: 'path'; bzImage: string; modulesDir: string | undefined; buildDir: string | undefined } | BuildSpec;
  /** Also build the base and run the same suite on it; report what the series changed. */
  baseline: boolean;
  /** Build each prefix of the series and name the first patch that turns a test red. */
  bisect: boolean;
  /** For matrix: the Debian kernel lines to run, in order. */
  matrixKernels: string[];
  /** For mutate: the directory of mutant patches, and which of them (empty = all). */
  mutantsDir: string;
  mutants: string[];
  profile: QemuProfile;
  accel: Accel;
  filesystems: FsType[];
  tests: TestDef[];
  dryRun: boolean;
  allowInstall: boolean;
  bootTimeoutMs: number;
  /** Overrides every test's own bound when set. */
  testTimeoutMs: number | null;
  /** How often a test that hit an infrastructure error is retried on a fresh guest. */
  infraRetries: number;
  /** Host port for the guest's SSH; null = pick a free one. */
  sshPort: number | null;
  /** Extra kernel command-line words. */
  extraAppend: string[];
  verbose: boolean;
  /** The known-failure list (kernel-tests/known-failures.json unless given). */
  knownFailuresPath: string;
  /** For exec: the command to run in the guest. */
  execArgv: string[];
  /** Run only this share of the points (fs × tests, dealt round-robin); merge joins the shares. */
  shard: { index: number; count: number } | null;
  /** Guests at once: the run is dealt into this many shards that run together, then merged. */
  guests: number;
  /** For report: the run directories (empty: every run under resultsDir) and what to write. */
  report: ReportConfig;
  /** For queue, nightly, index and history. */
  nightly: NightlyConfig;
  target: TargetSpec;
  /** The lab inventory (--inventory, $DAX_HARNESS_INVENTORY, or ~/.config/dax-harness/lab.json). */
  inventoryPath: string;
  /** Leave the harness's files on a lab machine at the end of the run. */
  keep: boolean;
  lab: LabConfig;
}

export interface NightlyConfig {
  /** The series queue (new/, cur/, done/, queue.json). */
  queueDir: string;
  /** For `queue add`: the series files to queue; for merge: the source directories. */
  files: string[];
  /** The reply's From: header. */
  from: string;
  /** Stop after this many series. */
  max: number | null;
  /** The history database (default: <results>/history.sqlite). */
  db: string;
  /** For history: fs/test or a test name. */
  test: string | null;
  /** Arguments passed to every campaign of the nightly (--infra-retries, --boot-timeout, ...). */
  passThrough: string[];
  /** nightly --send-with 'CMD ARGS': each reply piped to this command (nothing is sent without it). */
  sendWith: string[] | null;
}

export interface ReportConfig {
  runs: string[];
  /** The Allure report's directory (null: no dashboard, only the exports asked for). */
  outDir: string | null;
  junit: string | null;
  kcidb: string | null;
  /** KCIDB origin: the name this CI submits under. */
  origin: string;
}

export const USAGE = `usage: dax-harness <command> [options]

commands:
  run       build the guest, boot it, set up fsdax, run the suite, print TAP 14 (default)
  exec      boot and set up the guest as for run, then run one command in it:
            dax-harness exec [options] -- CMD ARGS...  (helpers are in /opt/dax/bin,
            filesystems on /mnt/ext4 and /mnt/xfs; bounded by --test-timeout, default 300 s)
  doctor    list the host prerequisites that are present and missing, and what will be installed
  list      list the tests with what each checks
  mutate    build the tree once per patch in kernel-tests/mutants/<tree>/ (each a deliberate refcount
            bug), run the suite on each, print which tests killed it (exit 1 if one survived)
  matrix    dax-harness matrix [--kernels debian-6.1,debian-6.12,debian-7.2]: the suite on each
            Debian kernel (default: all three), one TAP document with a subtest per kernel and a
            kernel x test table; exit 1 if any kernel has a red test
  queue     dax-harness queue add SERIES.mbx... [--queue DIR]: queue series for the nightly
  nightly   dax-harness nightly [--queue DIR] [--from ADDR] [--max N]: run every queued series as
            --baseline --bisect on each kernel line of DIR/queue.json; each gets done/<hash>/ with
            verdict.json, reply.eml (not sent) and patchwork-checks.json
  index     rebuild the history database (<results>/history.sqlite, or --db FILE) from results/
  history   dax-harness history [FS/]TEST: since when it fails, on which kernels, how flaky
  merge     dax-harness merge --results DEST SRC...: move the runs and campaigns of other results
            directories (Buildbot uploads) into DEST and index them
  lab       dax-harness lab add NAME --host H [--port P] --user U [--identity FILE]: a lab machine
            into the inventory; lab trust NAME [--fingerprint SHA256:...]: pin its host key (shown,
            recorded only when confirmed); lab check NAME: pre-flight, a line per need (ok or what
            to do); lab release NAME: drop its lease; lab list
  report    dax-harness report [RUN_DIR...] [--out DIR] [--junit FILE] [--kcidb FILE]
            an Allure dashboard of the runs (default: every run under --results) with history,
            flakiness and new failures kept in DIR between calls (default: results/report);
            --junit and --kcidb write JUnit XML and KCIDB v5 JSON of the same runs

lab options (run):
  --target lab:NAME      run the suite on a lab machine of the inventory, on the kernel it runs
                         (leased, set up on its allowed namespaces only, restored at the end)
  --inventory FILE       the lab inventory (default: $DAX_HARNESS_INVENTORY or
                         ~/.config/dax-harness/lab.json)
  --keep                 leave the harness's files on the lab machine (/var/lib/dax-harness/runs/ID)

nightly options:
  --queue DIR            the series queue (default: ./queue)
  --from ADDR            From: of the replies (default: dax-harness <dax-harness@localhost>)
  --max N                stop after N series
  --send-with 'CMD ARGS' pipe each reply to this command, e.g. 'sendmail -t -oi' (without it
                         nothing is sent; sent.json beside the reply records each try)
  --db FILE              the history database (default: <results>/history.sqlite)

report options:
  --out DIR              the Allure report directory (default: <results>/report)
  --junit FILE           JUnit XML of the runs (each run directory also has its own junit.xml)
  --kcidb FILE           KCIDB v5 JSON of the runs, for KernelCI
  --origin NAME          the KCIDB origin to submit under (default: daxharness)

run options:
  --kernel debian-6.1|debian-6.12|debian-7.2
                         Debian's packaged kernel of bookworm, trixie or sid (default
                         debian-6.1); the other suites come through the harness's own apt files
  --kernel PATH          a bzImage of yours to test
  --modules DIR          its lib/modules/<release> directory (required with --kernel PATH)
  --kernel-build DIR     its build tree, to compile the probe module (default: DIR/build)
  --distro-release REL   Debian kernel ABI to fetch (default: what the line's linux-image-amd64
                         depends on); names its line when --kernel is left out

kernel built from source (all build options imply a built kernel):
  --tree debian-6.1|debian-6.12|debian-7.2|DIR
                         build the kernel under test: Debian's linux-source-X.Y (imported into
                         the cache once) or a kernel git tree (cloned --shared; never touched)
  --base REF             the commit the series applies to (default: the import, or HEAD)
  --series FILE          an mbox or git format-patch file, applied with git am -3 (repeatable)
  --config tinyconfig|defconfig  base config under the fragment (default: tinyconfig)
  --fragment FILE        Kconfig fragment (default: kernel-tests/dax.config); every option is verified
  --jobs N               make -j (default: the number of CPUs)
  --baseline             also build the base and run the same tests on it; report fixed, new
                         failure, still failing, passing; exit 1 only for a new failure
  --bisect               with --baseline: build each prefix of the series and name the first
                         patch that turns each newly red test red
  --mutants DIR          for mutate: the mutant patches (default: kernel-tests/mutants/<tree>
                         for a Debian tree, else kernel-tests/mutants/debian-6.1)
  --mutant NAME          for mutate: only this mutant (repeatable)

  --profile NAME         QEMU profile from qemu/profiles.json (default: default)
  --fs LIST              filesystems, comma separated (default: ext4,xfs)
  --tests LIST           tests to run by name, comma separated; "fast" is the fast set (default: all)
  --accel tcg|kvm        QEMU accelerator (default: tcg)
  --results DIR          where run directories go (default: ./results)
  --cache DIR            build and download cache (default: ~/.cache/dax-harness)
  --boot-timeout SEC     how long a boot may take to reach SSH (default: 120)
  --test-timeout SEC     override every test's time bound
  --infra-retries N      retries of a test that hit an infrastructure error (default: 1)
  --ssh-port PORT        host port for the guest's SSH on 127.0.0.1 (default: a free one)
  --append WORDS         extra kernel command-line words (repeatable)
  --shard I/N            run only the I-th of N shares of the points (fs x tests, round-robin);
                         dax-harness merge joins the N run directories into one run
  --guests N             run N guests at once (the run dealt into N shards, merged at the end)
  --known-failures FILE  known-failure list (default: kernel-tests/known-failures.json)
  --no-install           never run apt-get; fail with the list of missing packages instead
  --dry-run              print the plans (QEMU command line, guest setup) and exit
  -v, --verbose          progress on stderr

exit codes: 0 every test passed, 1 a kernel test failed, 2 infrastructure or input error`;

/** Loads the profiles file and returns the named profile. */
export function loadProfile(repoDir: string, name: string): QemuProfile {
  const path = join(repoDir, 'qemu', 'profiles.json');
  const all = JSON.parse(readFileSync(path, 'utf8')) as Record<string, Omit<QemuProfile, 'name'>>;
  const p = all[name];
  if (!p || name.startsWith('_')) {
    const names = Object.keys(all).filter((k) => !k.startsWith('_'));
    throw new HarnessError('config', `unknown profile "${name}"`, { hint: `pick one of: ${names.join(', ')} (defined in ${path})` });
  }
  return { name, ...p, nvdimms: p.nvdimms ?? [] };
}

function list(v: string | undefined): string[] {
  return (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

function seconds(flag: string, v: string | undefined, dflt: number | null): number | null {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 1) throw new HarnessError('config', `${flag} ${v}: not a number of seconds (1 or more)`, { hint: `e.g. ${flag} 120` });
  return Math.round(n * 1000);
}

/** Parses argv (without node and script) into a configuration; env gives HOME/XDG defaults. */
export function resolveConfig(argv: string[], env: Record<string, string | undefined>, repoDir: string, cwd: string): HarnessConfig {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        kernel: { type: 'string' },
        modules: { type: 'string' },
        'kernel-build': { type: 'string' },
        'distro-release': { type: 'string' },
        profile: { type: 'string', default: 'default' },
        fs: { type: 'string', default: 'ext4,xfs' },
        tests: { type: 'string' },
        accel: { type: 'string', default: 'tcg' },
        results: { type: 'string' },
        cache: { type: 'string' },
        'boot-timeout': { type: 'string' },
        'test-timeout': { type: 'string' },
        'infra-retries': { type: 'string', default: '1' },
        'ssh-port': { type: 'string' },
        append: { type: 'string', multiple: true },
        'known-failures': { type: 'string' },
        tree: { type: 'string' },
        base: { type: 'string' },
        series: { type: 'string', multiple: true },
        config: { type: 'string' },
        fragment: { type: 'string' },
        jobs: { type: 'string' },
        baseline: { type: 'boolean', default: false },
        bisect: { type: 'boolean', default: false },
        mutants: { type: 'string' },
        mutant: { type: 'string', multiple: true },
        kernels: { type: 'string' },
        'no-install': { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
        verbose: { type: 'boolean', short: 'v', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        shard: { type: 'string' },
        guests: { type: 'string' },
        out: { type: 'string' },
        junit: { type: 'string' },
        kcidb: { type: 'string' },
        origin: { type: 'string' },
        queue: { type: 'string' },
        from: { type: 'string' },
        'send-with': { type: 'string' },
        max: { type: 'string' },
        db: { type: 'string' },
        target: { type: 'string' },
        inventory: { type: 'string' },
        keep: { type: 'boolean', default: false },
        host: { type: 'string' },
        port: { type: 'string' },
        user: { type: 'string' },
        identity: { type: 'string' },
        fingerprint: { type: 'string' },
      },
    });
  } catch (err) {
    throw new HarnessError('config', (err as Error).message, { hint: 'see `dax-harness help`' });
  }
  const { values: o, positionals } = parsed;
  const cmd = o.help ? 'help' : (positionals[0] ?? 'run');
  if (!['run', 'exec', 'doctor', 'list', 'help', 'mutate', 'matrix', 'report', 'queue', 'nightly', 'index', 'history', 'merge', 'lab'].includes(cmd)) {
    throw new HarnessError('config', `unknown command "${cmd}"`, { hint: 'commands are run, exec, doctor, list, mutate, matrix, report, queue, nightly, index, history, merge, lab, help' });
  }
  const lab = resolveLab(cmd, positionals, o);
  const target = resolveTarget(cmd, o);
  if (cmd === 'merge' && (positionals.length < 2 || o.results === undefined)) {
    throw new HarnessError('config', 'merge needs --results DEST and at least one source directory', { hint: 'e.g. dax-harness merge --results /srv/dax-results /srv/dax-results/incoming' });
  }
  const nightlyOnly = (['queue', 'from', 'max', 'send-with'] as const).filter((k) => o[k] !== undefined);
  if (!['queue', 'nightly'].includes(cmd) && nightlyOnly.length > 0) throw new HarnessError('config', `--${nightlyOnly[0]} belongs to the queue and nightly commands`, { hint: 'dax-harness nightly --queue DIR' });
  if (cmd === 'queue' && (positionals[1] !== 'add' || positionals.length < 3)) {
    throw new HarnessError('config', 'queue needs: queue add SERIES.mbx...', { hint: 'e.g. dax-harness queue add --queue /srv/dax-queue v2_20261203_fsdax.mbx' });
  }
  if (cmd === 'history' && positionals.length !== 2) throw new HarnessError('config', 'history needs one test: history [FS/]TEST', { hint: 'e.g. dax-harness history xfs/reflink-cow (`dax-harness list` names the tests)' });
  const shardM = o.shard === undefined ? null : /^(\d+)\/(\d+)$/.exec(o.shard);
  if (o.shard !== undefined && (!shardM || Number(shardM[1]) < 1 || Number(shardM[1]) > Number(shardM[2]))) {
    throw new HarnessError('config', `--shard ${o.shard}: must be I/N with 1 <= I <= N`, { hint: 'e.g. --shard 1/2 on one machine and --shard 2/2 on another, then dax-harness merge' });
  }
  const guests = o.guests === undefined ? 1 : Number(o.guests);
  if (!Number.isInteger(guests) || guests < 1 || guests > 8) throw new HarnessError('config', `--guests ${o.guests}: must be a whole number from 1 to 8`, { hint: 'each guest is a QEMU with its own CPU share: 2 on a 2-core machine' });
  if (guests > 1 && o.shard !== undefined) throw new HarnessError('config', '--guests and --shard cannot be combined', { hint: '--guests N runs N shards on this machine; --shard I/N runs one of them' });
  if (guests > 1 && o['ssh-port'] !== undefined) throw new HarnessError('config', '--ssh-port gives one port, and --guests needs one per guest', { hint: 'leave --ssh-port out: each guest gets a free port' });
  if ((o.shard !== undefined || guests > 1) && (cmd !== 'run' || o.baseline || o.bisect)) {
    throw new HarnessError('config', `--${o.shard !== undefined ? 'shard' : 'guests'} splits one run's points: it goes with run, not with --baseline, --bisect or ${cmd}`, { hint: 'e.g. dax-harness run --guests 2' });
  }
  if (o['send-with'] !== undefined && o['send-with'].trim() === '') throw new HarnessError('config', '--send-with needs a command', { hint: "e.g. --send-with 'sendmail -t -oi'" });
  const max = o.max === undefined ? null : Number(o.max);
  if (max !== null && (!Number.isInteger(max) || max < 1)) throw new HarnessError('config', `--max ${o.max}: must be a whole number of series, 1 or more`, { hint: 'e.g. --max 1' });
  const reportOnly = (['out', 'junit', 'kcidb', 'origin'] as const).filter((k) => o[k] !== undefined);
  if (cmd !== 'report' && reportOnly.length > 0) throw new HarnessError('config', `--${reportOnly[0]} belongs to the report command`, { hint: 'dax-harness report [RUN_DIR...] --out DIR' });
  if (o.origin !== undefined && !/^[a-z0-9_]+$/.test(o.origin)) {
    throw new HarnessError('config', `--origin ${o.origin}: KCIDB origins are lower-case letters, digits and _`, { hint: 'e.g. --origin my_lab' });
  }
  const execArgv = cmd === 'exec' ? positionals.slice(1) : [];
  if (cmd === 'exec' && execArgv.length === 0) {
    throw new HarnessError('config', 'exec needs a command', { hint: 'e.g. dax-harness exec -- /opt/dax/bin/dax-fault --file /mnt/xfs/f --size 2m --align 2m' });
  }
  if (!['exec', 'report', 'queue', 'history', 'merge', 'lab'].includes(cmd) && positionals.length > 1) throw new HarnessError('config', `unexpected argument "${positionals[1]}"`, { hint: 'see `dax-harness help`' });
  if (o.accel !== 'tcg' && o.accel !== 'kvm') throw new HarnessError('config', `--accel ${o.accel}: must be tcg or kvm`, { hint: 'use --accel tcg, or --accel kvm where /dev/kvm exists' });
  if (o.accel === 'kvm' && !existsSync('/dev/kvm')) throw new HarnessError('config', '--accel kvm: /dev/kvm does not exist', { hint: 'use --accel tcg' });
  const fss = list(o.fs);
  const badFs = fss.filter((f) => f !== 'ext4' && f !== 'xfs');
  if (badFs.length > 0 || fss.length === 0) throw new HarnessError('config', `--fs ${o.fs}: only ext4 and xfs are supported`, { hint: 'e.g. --fs ext4,xfs' });
  const { tests, unknown } = selectTests(list(o.tests));
  if (unknown.length > 0) {
    throw new HarnessError('config', `unknown test name(s): ${unknown.join(', ')}`, { hint: 'run `dax-harness list` for the names' });
  }
  const kernelPath = o.kernel !== undefined && !/^debian-/.test(o.kernel) ? o.kernel : undefined;
  if (kernelPath && o['distro-release'] !== undefined) {
    throw new HarnessError('config', '--distro-release goes with a Debian kernel, not with --kernel PATH', { hint: `pass --kernel ${debianLineNames()} with it, or leave it out` });
  }
  if (o['kernel-build'] && !kernelPath) throw new HarnessError('config', '--kernel-build given without --kernel', { hint: 'the Debian kernel uses its headers package; pass --kernel and --modules with it' });
  if (o.modules && !kernelPath) throw new HarnessError('config', '--modules given without --kernel PATH', { hint: 'pass both, or neither for a Debian kernel' });
  const retries = Number(o['infra-retries']);
  if (!Number.isInteger(retries) || retries < 0 || retries > 10) {
    throw new HarnessError('config', `--infra-retries ${o['infra-retries']}: must be a whole number from 0 to 10`, { hint: 'e.g. --infra-retries 1' });
  }
  const sshPort = o['ssh-port'] === undefined ? null : Number(o['ssh-port']);
  if (sshPort !== null && (!Number.isInteger(sshPort) || sshPort < 1024 || sshPort > 65535)) {
    throw new HarnessError('config', `--ssh-port ${o['ssh-port']}: not a port from 1024 to 65535`, { hint: 'leave it out and the harness picks a free port' });
  }
  const build = resolveBuild(o, cmd, cwd, repoDir);
  const home = env.HOME || homedir();
  // XDG base directories: an empty or relative XDG_CACHE_HOME is to be ignored, not used.
  const xdgCache = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(home, '.cache');
  return Object.freeze({
    command: cmd as Command,
    repoDir,
    resultsDir: resolve(cwd, o.results ?? join(repoDir, 'results')),
    cacheDir: resolve(cwd, o.cache ?? join(xdgCache, 'dax-harness')),
    kernel: build
      ? build
      : kernelPath
        ? { kind: 'path' as const, bzImage: resolve(cwd, kernelPath), modulesDir: o.modules ? resolve(cwd, o.modules) : undefined, buildDir: o['kernel-build'] ? resolve(cwd, o['kernel-build']) : undefined }
        : resolveDistroKernel(o.kernel, o['distro-release']),
    baseline: (o.baseline ?? false) || (o.bisect ?? false),
    bisect: o.bisect ?? false,
    // Mutants are patches against one tree: kernel-tests/mutants/<line> for a Debian line.
    mutantsDir: resolve(cwd, o.mutants ?? join(repoDir, 'kernel-tests', 'mutants', build?.tree && findDebianLine(build.tree) ? build.tree : DEFAULT_DEBIAN_LINE)),
    mutants: o.mutant ?? [],
    matrixKernels: resolveMatrixKernels(cmd, o.kernels, o.kernel),
    profile: loadProfile(repoDir, o.profile ?? 'default'),
    accel: o.accel,
    filesystems: fss as FsType[],
    tests,
    dryRun: o['dry-run'] ?? false,
    allowInstall: !o['no-install'],
    bootTimeoutMs: seconds('--boot-timeout', o['boot-timeout'], 120_000) ?? 120_000,
    testTimeoutMs: seconds('--test-timeout', o['test-timeout'], null),
    infraRetries: retries,
    sshPort,
    extraAppend: (o.append ?? []).flatMap((a) => a.split(/\s+/)).filter(Boolean),
    verbose: o.verbose ?? false,
    execArgv,
    shard: shardM ? { index: Number(shardM[1]), count: Number(shardM[2]) } : null,
    guests,
    knownFailuresPath: resolve(cwd, o['known-failures'] ?? join(repoDir, 'kernel-tests', 'known-failures.json')),
    report: Object.freeze({
      runs: cmd === 'report' ? positionals.slice(1).map((d) => resolve(cwd, d)) : [],
      // Without an export asked for, the dashboard is what report makes.
      outDir: o.out !== undefined || (o.junit === undefined && o.kcidb === undefined) ? resolve(cwd, o.out ?? join(o.results ?? join(repoDir, 'results'), 'report')) : null,
      junit: o.junit === undefined ? null : resolve(cwd, o.junit),
      kcidb: o.kcidb === undefined ? null : resolve(cwd, o.kcidb),
      origin: o.origin ?? 'daxharness',
    }),
    target,
    inventoryPath: resolve(cwd, o.inventory ?? env.DAX_HARNESS_INVENTORY ?? join(env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(home, '.config'), 'dax-harness', 'lab.json')),
    keep: o.keep ?? false,
    lab,
    nightly: Object.freeze({
      queueDir: resolve(cwd, o.queue ?? 'queue'),
      files: cmd === 'queue' ? positionals.slice(2).map((f) => resolve(cwd, f)) : cmd === 'merge' ? positionals.slice(1).map((f) => resolve(cwd, f)) : [],
      from: o.from ?? 'dax-harness <dax-harness@localhost>',
      max,
      db: resolve(cwd, o.db ?? join(o.results ?? join(repoDir, 'results'), 'history.sqlite')),
      test: cmd === 'history' ? positionals[1]! : null,
      // Split on blanks, never given to a shell: 'sendmail -t -oi', 'msmtp -t', 'git send-email --to=... -'.
      sendWith: o['send-with'] === undefined ? null : o['send-with'].split(/\s+/).filter(Boolean),
      passThrough: [
        ...(o['infra-retries'] !== '1' ? ['--infra-retries', o['infra-retries']!] : []),
        ...(o['boot-timeout'] ? ['--boot-timeout', o['boot-timeout']] : []),
        ...(o['test-timeout'] ? ['--test-timeout', o['test-timeout']] : []),
        ...(o.cache ? ['--cache', resolve(cwd, o.cache)] : []),
        ...(o.jobs ? ['--jobs', o.jobs] : []),
        ...(o.verbose ? ['-v'] : []),
      ],
    }),
  });
}

interface LabOptions {
  host?: string;
  port?: string;
  user?: string;
  identity?: string;
  fingerprint?: string;
  target?: string;
  keep?: boolean;
  tree?: string;
  kernel?: string;
  series?: string[];
  baseline?: boolean;
  bisect?: boolean;
  guests?: string;
  'distro-release'?: string;
}

const LAB_ACTIONS = ['add', 'trust', 'check', 'release', 'list'] as const;

// dax-harness lab add|trust|check|release|list [NAME] [--host H --port P --user U --identity F --fingerprint SHA256:...]
function resolveLab(cmd: string, positionals: string[], o: LabOptions): LabConfig {
  const own = (['host', 'port', 'user', 'identity', 'fingerprint'] as const).filter((k) => o[k] !== undefined);
  const none: LabConfig = { action: 'list', name: null, host: null, port: null, user: null, identity: null, fingerprint: null };
  if (cmd !== 'lab') {
    if (own.length > 0) throw new HarnessError('config', `--${own[0]} belongs to the lab command`, { hint: 'dax-harness lab add NAME --host H --user U' });
    return none;
  }
  const action = positionals[1] ?? 'list';
  if (!(LAB_ACTIONS as readonly string[]).includes(action)) throw new HarnessError('config', `lab ${action}: not a lab action`, { hint: `the actions are ${LAB_ACTIONS.join(', ')}` });
  const name = positionals[2] ?? null;
  if (action !== 'list' && !name) throw new HarnessError('config', `lab ${action} needs a machine name`, { hint: `e.g. dax-harness lab ${action} pmem1` });
  if (positionals.length > 3) throw new HarnessError('config', `unexpected argument "${positionals[3]}"`, { hint: 'see `dax-harness help`' });
  if (action === 'add' && (!o.host || !o.user)) throw new HarnessError('config', 'lab add needs --host and --user', { hint: 'e.g. dax-harness lab add pmem1 --host pmem1.lab --user ci --identity ~/.ssh/id_ed25519' });
  const allowed: Record<string, string[]> = { add: ['host', 'port', 'user', 'identity'], trust: ['fingerprint'], check: [], release: [], list: [] };
  const stray = own.filter((k) => !allowed[action]!.includes(k));
  if (stray.length > 0) throw new HarnessError('config', `--${stray[0]} does not go with lab ${action}`, { hint: 'see `dax-harness help`' });
  const port = o.port === undefined ? null : Number(o.port);
  if (port !== null && (!Number.isInteger(port) || port < 1 || port > 65535)) throw new HarnessError('config', `--port ${o.port}: not a TCP port`, { hint: 'e.g. --port 22' });
  if (o.fingerprint !== undefined && !/^SHA256:[A-Za-z0-9+/]{43}$/.test(o.fingerprint)) {
    throw new HarnessError('config', `--fingerprint ${o.fingerprint}: not a SHA256 fingerprint`, { hint: 'as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it on the machine: SHA256: and 43 characters' });
  }
  if (o.identity !== undefined && !existsSync(o.identity)) throw new HarnessError('config', `--identity ${o.identity}: no such file`, { hint: 'pass the private key the harness logs in with, or leave it out to use the ssh-agent' });
  return { action: action as LabConfig['action'], name, host: o.host ?? null, port, user: o.user ?? null, identity: o.identity ? resolve(o.identity) : null, fingerprint: o.fingerprint ?? null };
}

// --target qemu (the default) or lab:NAME. On a lab machine the suite runs on the kernel it
// runs, or on a kernel under test (--kernel, --tree, a series, mutate) booted there with kexec.
function resolveTarget(cmd: string, o: LabOptions): TargetSpec {
  if (o.target === undefined || o.target === 'qemu') {
    if (o.keep) throw new HarnessError('config', '--keep goes with --target lab:NAME', { hint: 'a QEMU guest leaves nothing behind to keep' });
    return { kind: 'qemu' };
  }
  const m = /^lab:([a-z0-9][a-z0-9._-]*)$/.exec(o.target);
  if (!m?.[1]) throw new HarnessError('config', `--target ${o.target}: must be qemu or lab:NAME`, { hint: 'e.g. --target lab:pmem1 (dax-harness lab list names the machines)' });
  if (cmd !== 'run' && cmd !== 'mutate') throw new HarnessError('config', `--target ${o.target} goes with run and mutate (not ${cmd})`, { hint: `dax-harness run --target ${o.target}` });
  const installKernel = cmd === 'mutate' || o.tree !== undefined || o.kernel !== undefined || o['distro-release'] !== undefined || (o.series?.length ?? 0) > 0 || o.baseline === true || o.bisect === true;
  if (o.guests !== undefined) throw new HarnessError('config', `--guests with --target ${o.target}: a lab machine is one target`, { hint: 'leave --guests out' });
  return { kind: 'lab', name: m[1], installKernel };
}

interface BuildOptions {
  kernel?: string;
  'distro-release'?: string;
  tree?: string;
  base?: string;
  series?: string[];
  config?: string;
  fragment?: string;
  jobs?: string;
  baseline?: boolean;
  bisect?: boolean;
  mutants?: string;
  mutant?: string[];
}

// matrix runs Debian lines only: a built or a user's kernel has its own commands.
function resolveMatrixKernels(cmd: string, kernels: string | undefined, kernel: string | undefined): string[] {
  if (cmd !== 'matrix') {
    if (kernels !== undefined) throw new HarnessError('config', '--kernels belongs to the matrix command', { hint: `dax-harness matrix --kernels ${DEBIAN_LINES.map((l) => l.name).join(',')}` });
    return [];
  }
  if (kernel !== undefined) throw new HarnessError('config', 'matrix takes --kernels LIST, not --kernel', { hint: `e.g. dax-harness matrix --kernels ${DEBIAN_LINES.map((l) => l.name).join(',')}` });
  const names = kernels === undefined ? DEBIAN_LINES.map((l) => l.name) : list(kernels);
  const bad = names.filter((n) => !findDebianLine(n));
  if (bad.length > 0 || names.length === 0) {
    throw new HarnessError('config', `--kernels ${kernels}: ${bad.length > 0 ? `${bad.join(', ')} ${bad.length > 1 ? 'are' : 'is'} not a Debian kernel line` : 'no kernel named'}`, { hint: `name some of ${debianLineNames()}, comma-separated` });
  }
  return [...new Set(names)];
}

// --kernel debian-X.Y names a packaged Debian kernel line; --distro-release alone names its
// line by its version.
function resolveDistroKernel(kernel: string | undefined, release: string | undefined): { kind: 'distro'; line: string; release: string | undefined } {
  if (kernel !== undefined && !findDebianLine(kernel)) {
    throw new HarnessError('config', `--kernel ${kernel}: not a Debian kernel line the harness knows`, { hint: `pass one of ${debianLineNames()}, or the path of a bzImage` });
  }
  const byRelease = release === undefined ? undefined : debianLineOfRelease(release);
  if (release !== undefined && !byRelease) {
    throw new HarnessError('config', `--distro-release ${release}: not a release of a known Debian line (${debianLineNames()})`, { hint: 'e.g. --distro-release 6.12.117+deb13-amd64' });
  }
  if (kernel !== undefined && byRelease && byRelease.name !== kernel) {
    throw new HarnessError('config', `--distro-release ${release} is a ${byRelease.name} kernel, not ${kernel}`, { hint: `pass --kernel ${byRelease.name}, or leave --distro-release out` });
  }
  return { kind: 'distro', line: kernel ?? byRelease?.name ?? DEFAULT_DEBIAN_LINE, release };
}

// The build options, checked together: a built kernel excludes --kernel and --distro-release,
// --bisect needs a series, and a series file is read and checked before anything runs.
function resolveBuild(o: BuildOptions, cmd: string, cwd: string, repoDir: string): BuildSpec | null {
  const wantsBuild = o.tree !== undefined || o.base !== undefined || (o.series?.length ?? 0) > 0 || o.config !== undefined || o.fragment !== undefined || o.baseline || o.bisect || cmd === 'mutate';
  if (!wantsBuild) {
    if (o.jobs !== undefined && cmd !== 'nightly') throw new HarnessError('config', '--jobs given without a kernel to build', { hint: 'add --tree debian-6.1 (or a tree of yours)' });
    if (o.mutants !== undefined || (o.mutant?.length ?? 0) > 0) throw new HarnessError('config', '--mutants/--mutant belong to the mutate command', { hint: 'dax-harness mutate [--mutant NAME]' });
    return null;
  }
  if (o.kernel !== undefined || o['distro-release'] !== undefined) {
    throw new HarnessError('config', `${o.kernel !== undefined ? '--kernel' : '--distro-release'} cannot be combined with building a kernel (--tree, --series, --baseline, mutate)`, {
      hint: 'either test a ready kernel (--kernel/--distro-release) or build one from a tree',
    });
  }
  if (cmd !== 'mutate' && (o.mutants !== undefined || (o.mutant?.length ?? 0) > 0)) throw new HarnessError('config', '--mutants/--mutant belong to the mutate command', { hint: 'dax-harness mutate [--mutant NAME]' });
  if (cmd === 'mutate' && ((o.series?.length ?? 0) > 0 || o.baseline || o.bisect)) {
    throw new HarnessError('config', 'mutate builds one kernel per mutant on the base: --series, --baseline and --bisect do not apply', { hint: 'dax-harness mutate [--tree T] [--base REF] [--mutant NAME]' });
  }
  const series = (o.series ?? []).map((f) => {
    const path = resolve(cwd, f);
    if (!existsSync(path)) throw new HarnessError('config', `--series ${f}: no such file`, { hint: 'pass an mbox (b4 am) or a git format-patch file' });
    return { path, patches: parseSeries(readFileSync(path, 'utf8'), f) };
  });
  if ((o.baseline || o.bisect) && series.length === 0) {
    throw new HarnessError('config', `--${o.bisect ? 'bisect' : 'baseline'} needs a --series to compare against its base`, { hint: 'e.g. --tree debian-6.1 --series fix.mbox --baseline' });
  }
  const baseConfig = o.config ?? 'tinyconfig';
  if (baseConfig !== 'tinyconfig' && baseConfig !== 'defconfig') throw new HarnessError('config', `--config ${baseConfig}: must be tinyconfig or defconfig`, { hint: 'tinyconfig builds in about a third of the time' });
  const fragmentPath = resolve(cwd, o.fragment ?? join(repoDir, 'kernel-tests', 'dax.config'));
  if (!existsSync(fragmentPath)) throw new HarnessError('config', `--fragment ${o.fragment}: no such file`, { hint: 'pass a Kconfig fragment (CONFIG_X=y lines), or leave it out for kernel-tests/dax.config' });
  const jobs = o.jobs === undefined ? availableParallelism() : Number(o.jobs);
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 512) throw new HarnessError('config', `--jobs ${o.jobs}: must be a whole number from 1 to 512`, { hint: 'leave it out for the number of CPUs' });
  const tree = o.tree ?? DEFAULT_DEBIAN_LINE;
  const debianTree = findDebianLine(tree) !== undefined;
  if (!debianTree && /^debian-/.test(tree) && !existsSync(resolve(cwd, tree))) {
    throw new HarnessError('config', `--tree ${tree}: not a Debian kernel line the harness knows`, { hint: `pass one of ${debianLineNames()}, or a kernel git tree` });
  }
  if (!debianTree && !existsSync(resolve(cwd, tree))) {
    throw new HarnessError('config', `--tree ${tree}: no such directory`, { hint: 'pass a kernel git tree, or --tree debian-6.1 for Debian\'s 6.1 source' });
  }
  return { kind: 'build', tree: debianTree ? tree : resolve(cwd, tree), base: o.base, series, baseConfig, fragmentPath, jobs };
}
