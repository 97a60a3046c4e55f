// Patch series from a mailing list: parsing and checking an mbox or git format-patch file
// (pure), and applying it with `git am -3` on a throwaway worktree, never the user's checkout.
import { HarnessError } from '../core/errors.js';
import { runCommand } from '../core/proc.js';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

export interface Patch {
  /** Position in the file, 1-based. */
  index: number;
  /** n of [PATCH n/m], when the subject has it. */
  number: number | null;
  total: number | null;
  subject: string;
  from: string;
  /** Whether the message carries a diff at all (a cover letter does not). */
  hasDiff: boolean;
  /** The raw message, separator line included. */
  raw: string;
  /** The Message-ID header without its angle brackets (git format-patch writes none). */
  messageId: string | null;
}

const SEPARATOR = /^From \S+ .*\d{4}$|^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001$/;

/** Returns a header of a message (folding undone), or '' when it has none. */
export function headerOf(raw: string, name: string): string {
  const lines = raw.split('\n');
  const blank = lines.indexOf('');
  return unfoldHeader(blank < 0 ? lines : lines.slice(0, blank), name);
}

/** Returns a header's value with RFC 5322 folding undone. */
function unfoldHeader(lines: string[], name: string): string {
  const i = lines.findIndex((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  if (i < 0) return '';
  let v = lines[i]!.slice(name.length + 1).trim();
  for (let j = i + 1; j < lines.length && /^[ \t]/.test(lines[j]!); j++) v += ` ${lines[j]!.trim()}`;
  return v;
}

/** Checks the hunks of one diff; returns a description of the first broken one, or null. */
export function findBrokenHunk(diffLines: string[]): string | null {
  for (let i = 0; i < diffLines.length; i++) {
    const m = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(diffLines[i]!);
    if (!m) continue;
    let oldLeft = m[1] === undefined ? 1 : Number(m[1]);
    let newLeft = m[2] === undefined ? 1 : Number(m[2]);
    const start = i;
    while (oldLeft > 0 || newLeft > 0) {
      i += 1;
      const l = diffLines[i];
      if (l === undefined || l.startsWith('@@') || l.startsWith('diff --git ')) {
        return `the hunk at line ${start + 1} (${diffLines[start]}) ends early: ${oldLeft} old and ${newLeft} new lines missing`;
      }
      if (l.startsWith('\\')) continue; // "\ No newline at end of file"
      if (l.startsWith('-')) oldLeft -= 1;
      else if (l.startsWith('+')) newLeft -= 1;
      else {
        oldLeft -= 1;
        newLeft -= 1;
      }
      if (oldLeft < 0 || newLeft < 0) return `the hunk at line ${start + 1} (${diffLines[start]}) has more lines than its header says`;
    }
  }
  return null;
}

/** Parses a series file; throws a config error naming the file and the problem. */
export function parseSeries(text: string, source: string): Patch[] {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const starts = lines.flatMap((l, i) => (SEPARATOR.test(l) ? [i] : []));
  const hint = 'save the series with `b4 am` or `git format-patch` (an mbox, one message per patch), or download the raw mbox from lore';
  if (starts.length === 0) throw new HarnessError('config', `--series ${source}: not an mbox or format-patch file (no "From " separator line)`, { hint });
  const patches: Patch[] = [];
  starts.forEach((s, k) => {
    const msg = lines.slice(s, starts[k + 1] ?? lines.length);
    const blank = msg.indexOf('');
    const headers = blank < 0 ? msg : msg.slice(0, blank);
    const subject = unfoldHeader(headers, 'Subject');
    const from = unfoldHeader(headers, 'From');
    if (!subject) throw new HarnessError('config', `--series ${source}: message ${k + 1} (line ${s + 1}) has no Subject header`, { hint });
    const num = /\[[^\]]*?(\d+)\/(\d+)[^\]]*\]/.exec(subject);
    const body = blank < 0 ? [] : msg.slice(blank + 1);
    const hasDiff = body.some((l) => l.startsWith('diff --git ') || l.startsWith('--- a/'));
    const p: Patch = {
      index: k + 1,
      number: num ? Number(num[1]) : null,
      total: num ? Number(num[2]) : null,
      subject: subject.replace(/^\[[^\]]*\]\s*/, ''),
      from,
      hasDiff,
      raw: msg.join('\n'),
      messageId: unfoldHeader(headers, 'Message-ID').replace(/^<|>$/g, '') || null,
    };
    const broken = hasDiff ? findBrokenHunk(body) : null;
    if (broken) {
      throw new HarnessError('config', `--series ${source}: patch ${describePatch(p)} is truncated or damaged: ${broken}`, {
        hint: 'download the series again (a mail client may have wrapped or cut it)',
      });
    }
    patches.push(p);
  });
  const withDiff = patches.filter((p) => p.hasDiff);
  if (withDiff.length === 0) throw new HarnessError('config', `--series ${source}: no patch in it carries a diff`, { hint });
  const total = withDiff[0]?.total ?? null;
  if (total !== null) {
    const have = new Set(withDiff.map((p) => p.number));
    const missing = Array.from({ length: total }, (_, i) => i + 1).filter((n) => !have.has(n));
    if (missing.length > 0) {
      throw new HarnessError('config', `--series ${source}: the series has ${total} patches but ${missing.map((n) => `${n}/${total}`).join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing`, {
        hint: 'fetch the whole thread (b4 am <message-id>) rather than single messages',
      });
    }
  }
  return patches;
}

/** Returns KCIDB's patchset hash of the patches with a diff: the sha256 of their sha256 sums,
 *  each as 64 hex digits and a newline (`sha256sum *.patch | cut -c-64 | sha256sum`). */
export function patchsetHash(patches: Patch[]): string {
  const sums = patches.filter((p) => p.hasDiff).map((p) => `${createHash('sha256').update(`${p.raw}\n`).digest('hex')}\n`);
  return sums.length === 0 ? '' : createHash('sha256').update(sums.join('')).digest('hex');
}

/** Returns "2/5 (fs/dax: ...)" or "#2 (...)" for messages. */
export function describePatch(p: Patch): string {
  const n = p.number !== null && p.total !== null ? `${p.number}/${p.total}` : `#${p.index}`;
  return `${n} "${p.subject}"`;
}

export interface WorktreePlan {
  tree: string;
  base: string;
  /** Where the throwaway worktree goes (must not exist). */
  worktree: string;
}

/** Applies the series files on a fresh detached worktree of tree at base; the user's checkout is never touched. */
export async function applySeries(plan: WorktreePlan, patches: Patch[][]): Promise<{ head: string }> {
  const git = (cwd: string, ...args: string[]): ReturnType<typeof runCommand> => runCommand({ argv: ['git', '-C', cwd, ...args], timeoutMs: 600_000, env: { GIT_TERMINAL_PROMPT: '0' } });
  const base = await git(plan.tree, 'rev-parse', '--verify', `${plan.base}^{commit}`);
  if (base.exitCode !== 0) {
    throw new HarnessError('config', `--base ${plan.base}: not a commit in ${plan.tree}`, { hint: 'pass a branch, tag or commit id that exists in the tree (git log shows them)' });
  }
  const add = await git(plan.tree, 'worktree', 'add', '--detach', plan.worktree, base.stdout.trim());
  if (add.exitCode !== 0) throw new HarnessError('config', `cannot make a worktree of ${plan.tree}: ${add.stderr.trim()}`, { hint: 'check that the tree is a git repository you can write to' });
  // Only messages with a diff go to git am: a cover letter is an "empty patch" to it.
  const all = patches.flat().filter((p) => p.hasDiff);
  const dir = `${plan.worktree}.patches`;
  mkdirSync(dir, { recursive: true });
  const files = all.map((p, i) => {
    const f = join(dir, `${String(i + 1).padStart(4, '0')}.patch`);
    writeFileSync(f, `${p.raw}\n`);
    return f;
  });
  const am = await runCommand({
    argv: ['git', '-C', plan.worktree, '-c', 'user.name=dax-harness', '-c', 'user.email=dax-harness@localhost', 'am', '-3', '--keep-cr', ...files],
    timeoutMs: 600_000,
  });
  rmSync(dir, { recursive: true, force: true });
  if (am.exitCode !== 0) {
    // git am names the failing patch by its position: "Patch failed at 0002 <subject>".
    const m = /Patch failed at (\d+) (.*)/.exec(am.stdout + am.stderr);
    const at = m ? Number(m[1]) : null;
    const p = at !== null ? all[at - 1] : undefined;
    const conflict = (await git(plan.worktree, 'diff')).stdout.trim();
    await git(plan.worktree, 'am', '--abort');
    await git(plan.tree, 'worktree', 'remove', '--force', plan.worktree);
    throw new HarnessError('config', `patch ${p ? describePatch(p) : (m?.[2] ?? '?')} does not apply to ${plan.base}`, {
      hint: 'rebase the series onto the base (or pass the --base it was written for); your checkout was not touched',
      detail: (conflict || (am.stdout + am.stderr).trim()).split('\n').slice(0, 60).join('\n'),
    });
  }
  const head = await git(plan.worktree, 'rev-parse', 'HEAD');
  return { head: head.stdout.trim() };
}
