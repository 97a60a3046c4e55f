// Builds what goes into the guest from kernel-tests/: the static C helpers (once per source
// change) and the probe module (once per kernel and source change). Both cached by content.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { HarnessError } from '../core/errors.js';
import { runCommand } from '../core/proc.js';
import type { KernelSpec } from '../kernel/kernel.js';
import { planChrootModuleBuild } from '../kernel/debian.js';

/** Returns a short sha256 over the files of dirs (names and contents, sorted) plus extra strings. */
export function hashTree(dirs: string[], extra: string[] = []): string {
  const h = createHash('sha256');
  for (const d of dirs) {
    for (const f of listFiles(d)) h.update(`${f}\0`).update(readFileSync(join(d, f))).update('\0');
  }
  for (const e of extra) h.update(`${e}\0`);
  return h.digest('hex').slice(0, 16);
}

function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, prefix)).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    if (statSync(join(dir, rel)).isDirectory()) out.push(...listFiles(dir, rel));
    else out.push(rel);
  }
  return out;
}

function firstError(text: string): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => /\berror\b/i.test(l));
  return (i >= 0 ? lines.slice(Math.max(0, i - 2), i + 8) : lines.slice(-15)).join('\n');
}

/** Builds the helpers into the cache; returns the directory that holds the binaries. */
export async function buildHelpers(repoDir: string, cacheDir: string): Promise<string> {
  const src = join(repoDir, 'kernel-tests');
  const hash = hashTree([join(src, 'helpers')], [readFileSync(join(src, 'Makefile'), 'utf8')]);
  const out = join(cacheDir, 'helpers', hash);
  if (existsSync(join(out, '.complete'))) return join(out, 'bin');
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'bin'), { recursive: true });
  const r = await runCommand({ argv: ['make', '-C', src, `OUT=${join(tmp, 'bin')}`, '-j2'], timeoutMs: 300_000 });
  if (r.exitCode !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new HarnessError('build', 'building the C helpers in kernel-tests/ failed', {
      hint: 'gcc, make and liburing-dev (for the static liburing.a) are needed: run `dax-harness doctor`',
      detail: firstError(r.stderr + r.stdout),
    });
  }
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  mkdirSync(join(out, '.complete'));
  return join(out, 'bin');
}

/** Returns where the probe built for this kernel and this probe source is cached. */
export function probePath(repoDir: string, cacheDir: string, kernel: KernelSpec): string {
  const hash = hashTree([join(repoDir, 'kernel-tests', 'probe')], [kernel.release, kernel.buildDir ?? '', kernel.buildRoot ?? '', kernel.origin]);
  return join(cacheDir, 'probe', `${kernel.release}-${hash}`, 'dax_probe.ko');
}

/** Builds dax_probe.ko against the kernel's build tree; returns its path. */
export async function buildProbe(repoDir: string, cacheDir: string, kernel: KernelSpec): Promise<string> {
  if (!kernel.buildDir || !existsSync(join(kernel.buildRoot ?? '/', kernel.buildDir, 'Makefile'))) {
    throw new HarnessError('build', `no build tree to compile the probe module against for kernel ${kernel.release}`, {
      hint: kernel.origin.startsWith('debian:')
        ? `install linux-headers-${kernel.release} (dax-harness installs it when run as root)`
        : 'pass --kernel-build DIR (the O= build directory of that kernel)',
    });
  }
  const src = join(repoDir, 'kernel-tests', 'probe');
  const ko = probePath(repoDir, cacheDir, kernel);
  const out = dirname(ko);
  if (existsSync(ko)) return ko;
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  // Build in a copy: kbuild writes its objects next to the sources, and the repo stays clean.
  // A kernel of another Debian suite builds in that suite's chroot, with its compiler.
  const inRoot = kernel.buildRoot ? join(kernel.buildRoot, 'tmp', `dax-probe-${process.pid}`) : null;
  const buildIn = inRoot ?? tmp;
  cpSync(src, buildIn, { recursive: true });
  const r = await runCommand(
    kernel.buildRoot ? planChrootModuleBuild(kernel.buildRoot, kernel.buildDir, `/tmp/${basename(buildIn)}`) : { argv: ['make', '-C', kernel.buildDir, `M=${tmp}`, 'modules'], timeoutMs: 600_000 },
  );
  if (inRoot && existsSync(join(inRoot, 'dax_probe.ko'))) cpSync(join(inRoot, 'dax_probe.ko'), join(tmp, 'dax_probe.ko'));
  if (inRoot) rmSync(inRoot, { recursive: true, force: true });
  if (r.exitCode !== 0 || !existsSync(join(tmp, 'dax_probe.ko'))) {
    rmSync(tmp, { recursive: true, force: true });
    throw new HarnessError('build', `building the probe module against ${kernel.buildDir} failed`, {
      hint: 'the build tree must match the kernel under test (same release and config)',
      detail: firstError(r.stderr + r.stdout),
    });
  }
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  return ko;
}
