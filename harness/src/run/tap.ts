// TAP 14 output: pure formatters for test points, YAML diagnostics and subtests, and a
// streaming writer that emits each line as soon as the result is known.

export type YamlValue = string | number | boolean | null | YamlValue[] | { [k: string]: YamlValue };

export interface TapPoint {
  ok: boolean;
  id: number;
  name: string;
  directive?: { kind: 'SKIP' | 'TODO'; reason: string };
  /**
   * How a failed point failed, written like a directive (`not ok 3 - name # TIMEOUT ...`) so a
   * reader of the stream sees it at once. Not a TAP directive: the point still counts as failed.
   */
  tag?: { kind: 'TIMEOUT' | 'CRASH' | 'ERROR'; reason: string };
  /** Free-form reason appended as a comment (e.g. TIMEOUT); tap-parser keeps it as text. */
  diag?: Record<string, YamlValue>;
}

function yamlScalar(v: string | number | boolean | null): string {
  if (v === null) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  // Quote anything a YAML reader could take for another type or syntax: ' #' starts a
  // comment (the rest of the value would be dropped), a trailing ':' is a mapping key (a
  // parse error), and control characters such as '\r' are line breaks or not allowed.
  if (v === '' || /^[\s-?:,[\]{}#&*!|>'"%@`]|[:#]\s|\s#|:$|\s$|[\x00-\x08\x0a-\x1f\x7f]|^(true|false|null|yes|no|on|off|~)$|^[-+.\d]/i.test(v)) return JSON.stringify(v);
  return v;
}

// A literal block keeps a multi-line string readable; it cannot hold a trailing newline
// (chomped) or control characters other than tab, so those strings are double-quoted.
function blockSafe(v: string): boolean {
  return !v.endsWith('\n') && !/[\x00-\x08\x0b-\x1f\x7f]/.test(v);
}

/** Returns YAML lines (no indentation) for a mapping of diagnostics. */
export function formatYaml(obj: Record<string, YamlValue>, indent = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(k) ? k : JSON.stringify(k);
    if (Array.isArray(v)) {
      if (v.length === 0) {
        out.push(`${indent}${key}: []`);
        continue;
      }
      out.push(`${indent}${key}:`);
      for (const item of v) {
        if (item !== null && typeof item === 'object' && !Array.isArray(item) && Object.keys(item).length === 0) {
          out.push(`${indent}- {}`);
        } else if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
          const lines = formatYaml(item, `${indent}  `);
          out.push(`${indent}- ${(lines[0] ?? '').trimStart()}`, ...lines.slice(1));
        } else if (Array.isArray(item)) {
          out.push(`${indent}- ${JSON.stringify(item)}`);
        } else {
          out.push(`${indent}- ${typeof item === 'string' && item.includes('\n') ? JSON.stringify(item) : yamlScalar(item)}`);
        }
      }
    } else if (v !== null && typeof v === 'object') {
      // A bare "key:" would read back as null.
      if (Object.keys(v).length === 0) out.push(`${indent}${key}: {}`);
      else out.push(`${indent}${key}:`, ...formatYaml(v, `${indent}  `));
    } else if (typeof v === 'string' && v.includes('\n') && blockSafe(v)) {
      // The explicit indentation indicator (2) keeps a first line that starts with spaces
      // from being taken as the block's indentation (a parse error for the lines after it).
      out.push(`${indent}${key}: |2-`, ...v.split('\n').map((l) => `${indent}  ${l.replace(/\t/g, '    ')}`));
    } else if (typeof v === 'string' && v.includes('\n')) {
      out.push(`${indent}${key}: ${JSON.stringify(v)}`);
    } else {
      out.push(`${indent}${key}: ${yamlScalar(v)}`);
    }
  }
  return out;
}

// A test name must not contain '#' (starts a directive) or start with a digit (taken as the id).
function safeName(name: string): string {
  return name.replace(/#/g, '_').replace(/\n/g, ' ').replace(/^(\d)/, '_$1');
}

/** Returns the lines of one test point with its YAML block, at the given nesting depth. */
export function formatPoint(p: TapPoint, depth = 0): string[] {
  const pad = '    '.repeat(depth);
  let line = `${pad}${p.ok ? 'ok' : 'not ok'} ${p.id} - ${safeName(p.name)}`;
  const d = p.directive ?? p.tag;
  if (d) line += ` # ${d.kind} ${d.reason.replace(/\n/g, ' ')}`.trimEnd();
  const out = [line];
  if (p.diag && Object.keys(p.diag).length > 0) {
    out.push(`${pad}  ---`, ...formatYaml(p.diag).map((l) => `${pad}  ${l}`), `${pad}  ...`);
  }
  return out;
}

/** Streams a TAP 14 document with one level of subtests, line by line, to a sink. */
export class TapWriter {
  private topId = 0;
  private subId = 0;
  private subName: string | null = null;
  private subFailed = false;

  constructor(private readonly sink: (lines: string[]) => void) {}

  /** Writes the version line, the plan (count of top-level points) and header comments. */
  start(plan: number, comments: string[] = []): void {
    this.sink(['TAP version 14', ...comments.map((c) => `# ${c}`), `1..${plan}`]);
  }

  comment(text: string, depth = this.subName ? 1 : 0): void {
    this.sink(text.split('\n').map((l) => `${'    '.repeat(depth)}# ${l}`));
  }

  /** Opens a subtest; its points are indented four spaces. */
  beginSubtest(name: string, plan: number): void {
    this.subName = name;
    this.subId = 0;
    this.subFailed = false;
    this.sink([`# Subtest: ${safeName(name)}`, `    1..${plan}`]);
  }

  /** Writes a point inside the open subtest (or at top level if none is open). */
  point(p: Omit<TapPoint, 'id'>): void {
    if (this.subName !== null) {
      this.subId += 1;
      if (!p.ok && !p.directive) this.subFailed = true;
      this.sink(formatPoint({ ...p, id: this.subId }, 1));
    } else {
      this.topId += 1;
      this.sink(formatPoint({ ...p, id: this.topId }, 0));
    }
  }

  /** Closes the subtest with its own top-level point, failed if any point inside failed. */
  endSubtest(diag?: Record<string, YamlValue>): void {
    const name = this.subName ?? 'subtest';
    const failed = this.subFailed;
    this.subName = null;
    this.point({ ok: !failed, name, diag });
  }
}
