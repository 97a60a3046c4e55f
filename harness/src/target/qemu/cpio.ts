// A writer for the cpio "newc" format the kernel unpacks as initramfs. Pure: entries in,
// bytes out. Our own writer keeps images reproducible (fixed uid, gid and mtime) and needs
// neither root ownership tricks nor the cpio program.

export type CpioEntry =
  | { kind: 'dir'; path: string; mode: number }
  | { kind: 'file'; path: string; mode: number; data: Buffer }
  | { kind: 'symlink'; path: string; target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

function header(ino: number, mode: number, size: number, name: string, nlink: number): Buffer {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, nameBytes.length, 0];
  const head = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
  return Buffer.concat([head, nameBytes, pad4(head.length + nameBytes.length)]);
}

/** Returns a complete newc archive (with trailer) holding the entries in the order given. */
export function formatCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    // The kernel wants paths without a leading slash.
    const name = e.path.replace(/^\/+/, '');
    if (e.kind === 'dir') {
      parts.push(header(ino++, S_IFDIR | e.mode, 0, name, 2));
    } else {
      const data = e.kind === 'file' ? e.data : Buffer.from(e.target, 'utf8');
      const mode = e.kind === 'file' ? S_IFREG | e.mode : S_IFLNK | 0o777;
      parts.push(header(ino++, mode, data.length, name, 1), data, pad4(data.length));
    }
  }
  parts.push(header(ino, 0, 0, 'TRAILER!!!', 1));
  return Buffer.concat(parts);
}
