// fs_dax tracepoints: the plan of tracefs writes that record them around one test, and a
// parser for the trace text, so a test can assert a PMD (NOPAGE) versus a PTE fault.

export interface DaxTraceEvent {
  event: string;
  /** Inode number, for telling the test's file from others. */
  ino: number | null;
  address: number | null;
  pgoff: number | null;
  /** VM_FAULT_* result flags of *_done events (NOPAGE, FALLBACK, NOPAGE|NEEDDSYNC, ...). */
  result: string[];
}

const TRACING = '/sys/kernel/tracing';

/** Returns the guest shell that clears the trace buffer and turns the fs_dax events on. */
export function planTraceStart(): string {
  return `echo 0 > ${TRACING}/tracing_on; echo > ${TRACING}/trace; echo 1 > ${TRACING}/events/fs_dax/enable; echo 1 > ${TRACING}/tracing_on`;
}

/** Returns the guest shell that turns the events off and prints what was recorded. */
export function planTraceStop(): string {
  return `echo 0 > ${TRACING}/events/fs_dax/enable; cat ${TRACING}/trace`;
}

const RESULT_WORDS = /^(NOPAGE|FALLBACK|OOM|SIGBUS|MAJOR|WRITE|LOCKED|RETRY|HWPOISON|HWPOISON_LARGE|SIGSEGV|DONE_COW|NEEDDSYNC|COMPLETED)(\|[A-Z_]+)*$/;

/** Parses tracefs text (`task-pid [cpu] flags ts: event: fields`) into fs_dax events. */
export function parseDaxTrace(text: string): DaxTraceEvent[] {
  const out: DaxTraceEvent[] = [];
  for (const line of text.split('\n')) {
    const m = /\s(dax_[a-z_]+):\s(.*)$/.exec(line);
    if (!m?.[1] || m[2] === undefined) continue;
    const fields = m[2];
    const num = (name: string): number | null => {
      const f = new RegExp(`\\b${name} (0x[0-9a-f]+|\\d+)`).exec(fields);
      return f?.[1] ? Number(f[1]) : null;
    };
    const last = fields.trim().split(/\s+/).pop() ?? '';
    out.push({
      event: m[1],
      ino: num('ino'),
      address: num('address'),
      pgoff: num('pgoff'),
      result: m[1].endsWith('_done') && RESULT_WORDS.test(last) ? last.split('|') : [],
    });
  }
  return out;
}

/** Counts the fault outcomes a test usually asserts on. */
export function summarizeDaxFaults(events: DaxTraceEvent[]): { pmdNopage: number; pmdFallback: number; pteDone: number } {
  let pmdNopage = 0;
  let pmdFallback = 0;
  let pteDone = 0;
  for (const e of events) {
    if (e.event === 'dax_pmd_fault_done') {
      if (e.result.includes('NOPAGE')) pmdNopage += 1;
      if (e.result.includes('FALLBACK')) pmdFallback += 1;
    } else if (e.event === 'dax_pte_fault_done') {
      pteDone += 1;
    }
  }
  return { pmdNopage, pmdFallback, pteDone };
}
