// The kernel's fs-DAX page refcount model, told from the running kernel's symbols (never
// from its version string: distros backport), and what each model predicts.
import { HarnessError } from '../core/errors.js';

export interface RefcountModel {
  name: 'legacy' | 'folio';
  /** Refcount of an fsdax page nobody maps or pins. */
  idle: number;
  /** Whether each user mapping holds a page reference (and shows in mapcount). */
  mappingsCounted: boolean;
  /** The symbols that decided it, for the report. */
  evidence: string[];
}

// Before "fs/dax: Properly refcount fs dax pages" (v6.15) an fsdax page is idle at refcount 1
// and put_page() of such a page goes through put_devmap_managed_page(); the series removed
// that hook and added vmf_insert_folio_pmd()/vmf_insert_page_mkwrite() to map DAX folios
// with a reference per mapping. 6.10 renamed the hook to __put_devmap_managed_folio_refs
// (6.12 has only that name).
const LEGACY_MARKERS = ['__put_devmap_managed_page_refs', '__put_devmap_managed_page', 'put_devmap_managed_page', '__put_devmap_managed_folio_refs'];
const FOLIO_MARKERS = ['vmf_insert_folio_pmd', 'vmf_insert_page_mkwrite', 'dax_folio_reset_order'];

/** Returns the grep -E pattern that finds every marker line in /proc/kallsyms. */
export function markerPattern(): string {
  return ` (${[...LEGACY_MARKERS, ...FOLIO_MARKERS].join('|')})$`;
}

/** Returns the symbol names of /proc/kallsyms text ("addr type name [module]" per line). */
export function parseKallsymsNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length >= 3 && parts[2]) names.add(parts[2]);
  }
  return names;
}

/** Decides the model from kernel symbols; throws if the kernel shows neither or both. */
export function detectRefcountModel(symbols: Set<string>): RefcountModel {
  const legacy = LEGACY_MARKERS.filter((s) => symbols.has(s));
  const folio = FOLIO_MARKERS.filter((s) => symbols.has(s));
  if (legacy.length > 0 && folio.length === 0) return { name: 'legacy', idle: 1, mappingsCounted: false, evidence: legacy };
  if (folio.length > 0 && legacy.length === 0) return { name: 'folio', idle: 0, mappingsCounted: true, evidence: folio };
  throw new HarnessError('guest', `cannot tell the kernel's fs-DAX refcount model (legacy markers: ${legacy.join(',') || 'none'}; folio markers: ${folio.join(',') || 'none'})`, {
    hint: 'the kernel needs CONFIG_KALLSYMS and must be a 6.1-6.14 (legacy) or 6.15+ (folio) kernel; a kernel in between is a new case the harness must be taught',
  });
}

/** Returns the refcount the model predicts for one fsdax page mapped by `mappings` user mappings and held by `pins` transient references. */
export function expectedRefcount(model: RefcountModel, mappings: number, pins = 0): number {
  return model.idle + (model.mappingsCounted ? mappings : 0) + pins;
}

/** Returns the mapcount the model predicts for a page mapped `mappings` times by PTEs. */
export function expectedMapcount(model: RefcountModel, mappings: number): number {
  // 6.1 never counts fsdax mappings: page_mapcount() stays 0 while mapped.
  return model.mappingsCounted ? mappings : 0;
}
