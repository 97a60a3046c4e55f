// The one error type the harness throws on purpose. `kind` decides the exit code and
// whether a failure is the kernel's fault (never) or the infrastructure's.

export type ErrorKind = 'config' | 'build' | 'boot' | 'ssh' | 'timeout' | 'guest' | 'internal';

export class HarnessError extends Error {
  readonly kind: ErrorKind;
  /** What the user should do about it; printed after the message. */
  readonly hint: string | undefined;
  /** Extra evidence (console tail, command output) kept with the error. */
  readonly detail: string | undefined;

  constructor(kind: ErrorKind, message: string, opts: { hint?: string; detail?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HarnessError';
    this.kind = kind;
    this.hint = opts.hint;
    this.detail = opts.detail;
  }
}

// Exit codes of the CLI: 0 all passed, 1 a kernel test failed, 2 infrastructure or input error.
export const EXIT_PASS = 0;
export const EXIT_KERNEL_FAILURE = 1;
export const EXIT_INFRA = 2;

/** Returns a one-paragraph, user-facing description of any thrown value. */
export function formatError(err: unknown): string {
  if (err instanceof HarnessError) {
    const parts = [`dax-harness: ${err.kind} error: ${err.message}`];
    if (err.hint) parts.push(`  what to do: ${err.hint}`);
    if (err.detail) parts.push(err.detail.split('\n').map((l) => `  | ${l}`).join('\n'));
    return parts.join('\n');
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return `dax-harness: internal error: ${e.stack ?? e.message}\n  what to do: this is a harness bug; please report it with the run directory.`;
}
