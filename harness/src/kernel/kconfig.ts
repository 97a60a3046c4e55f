// Kernel config checking: which options a fragment asks for, and which of them did not
// stick in the final .config (kconfig silently drops an option whose dependencies are off).
import { HarnessError } from '../core/errors.js';

/** An option's value: "y", "m", a string or number, or "n" for "is not set". */
export type KconfigValues = Map<string, string>;

/** Parses .config or fragment text: CONFIG_X=v lines and "# CONFIG_X is not set". */
export function parseKconfig(text: string): KconfigValues {
  const out: KconfigValues = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (set?.[1]) {
      out.set(set[1], (set[2] ?? '').replace(/^"(.*)"$/, '$1'));
      continue;
    }
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset?.[1]) out.set(unset[1], 'n');
  }
  return out;
}

export interface KconfigMiss {
  option: string;
  wanted: string;
  got: string;
}

/** Returns the requested options whose final value differs (absent counts as "n"). */
export function findUnmetOptions(requested: KconfigValues, final: KconfigValues): KconfigMiss[] {
  const misses: KconfigMiss[] = [];
  for (const [option, wanted] of requested) {
    const got = final.get(option) ?? 'n';
    if (got !== wanted) misses.push({ option, wanted, got });
  }
  return misses;
}

/** Throws a config error listing every requested option that did not stick. */
export function checkKconfig(fragmentText: string, finalText: string, source: string): void {
  const misses = findUnmetOptions(parseKconfig(fragmentText), parseKconfig(finalText));
  if (misses.length === 0) return;
  throw new HarnessError('config', `${misses.length} requested kernel option${misses.length === 1 ? '' : 's'} did not stick in ${source}`, {
    hint: 'kconfig drops an option whose dependencies are off: add the dependencies to the fragment (make menuconfig shows them under "Depends on"), or remove the option',
    detail: misses.map((m) => `${m.option}: wanted ${m.wanted}, got ${m.got === 'n' ? 'not set' : m.got}`).join('\n'),
  });
}
