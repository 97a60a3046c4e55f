import t from 'tap';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCpio, type CpioEntry } from '../../../src/target/qemu/cpio.js';
import { runCommand } from '../../../src/core/proc.js';

interface NewcRecord {
  offset: number;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  name: string;
  data: Buffer;
  /** Raw name field, including its NUL. */
  rawName: Buffer;
  dataOffset: number;
}

// A strict reader of the "newc" format (see the kernel's Documentation/driver-api/early-userspace/buffer-format.rst):
// 110-byte ASCII header, name with NUL padded to 4, data padded to 4, ends with TRAILER!!!.
function readNewc(buf: Buffer): NewcRecord[] {
  const out: NewcRecord[] = [];
  let off = 0;
  for (;;) {
    if (off % 4 !== 0) throw new Error(`header at ${off} is not 4-byte aligned`);
    if (off + 110 > buf.length) throw new Error(`truncated header at ${off}`);
    const magic = buf.toString('ascii', off, off + 6);
    if (magic !== '070701') throw new Error(`bad magic ${JSON.stringify(magic)} at ${off}`);
    const field = (i: number): number => {
      const s = buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8);
      if (!/^[0-9a-f]{8}$/.test(s)) throw new Error(`field ${i} at ${off} is not 8 lowercase hex digits: ${s}`);
      return Number.parseInt(s, 16);
    };
    const namesize = field(11);
    const filesize = field(6);
    if (field(12) !== 0) throw new Error('check field must be 0 for newc');
    const nameStart = off + 110;
    const rawName = buf.subarray(nameStart, nameStart + namesize);
    if (rawName.at(-1) !== 0) throw new Error(`name at ${off} is not NUL-terminated`);
    if (rawName.subarray(0, -1).includes(0)) throw new Error(`name at ${off} has an embedded NUL`);
    const name = rawName.subarray(0, -1).toString('utf8');
    const dataOffset = Math.ceil((nameStart + namesize) / 4) * 4;
    for (let i = nameStart + namesize; i < dataOffset; i++) if (buf[i] !== 0) throw new Error(`non-zero name padding at ${i}`);
    const data = buf.subarray(dataOffset, dataOffset + filesize);
    if (data.length !== filesize) throw new Error(`truncated data of ${name}`);
    const next = Math.ceil((dataOffset + filesize) / 4) * 4;
    for (let i = dataOffset + filesize; i < next; i++) if (buf[i] !== 0) throw new Error(`non-zero data padding at ${i}`);
    out.push({ offset: off, ino: field(0), mode: field(1), uid: field(2), gid: field(3), nlink: field(4), mtime: field(5), name, data, rawName, dataOffset });
    off = next;
    if (name === 'TRAILER!!!') {
      if (off !== buf.length) throw new Error(`${buf.length - off} bytes after the trailer`);
      return out;
    }
  }
}

// Sizes chosen to hit every padding case: name+header and data lengths of each residue mod 4.
const entries: CpioEntry[] = [
  { kind: 'dir', path: '/etc', mode: 0o755 },
  { kind: 'dir', path: '/tmp', mode: 0o1777 },
  { kind: 'file', path: '/etc/a', mode: 0o644, data: Buffer.from('') },
  { kind: 'file', path: '/etc/bb', mode: 0o600, data: Buffer.from('x') },
  { kind: 'file', path: '/etc/ccc', mode: 0o755, data: Buffer.from('xy\n') },
  { kind: 'file', path: '/etc/dddd', mode: 0o644, data: Buffer.from('four') },
  { kind: 'file', path: 'etc/binary', mode: 0o644, data: Buffer.from([0, 1, 2, 255, 254, 0, 10, 13]) },
  { kind: 'file', path: '//etc/ütf8-näme', mode: 0o644, data: Buffer.from('äöü\n') },
  { kind: 'symlink', path: '/etc/link', target: '/etc/ccc' },
  { kind: 'symlink', path: '/etc/rel', target: 'dddd' },
];

t.test('newc structure read back by an independent reader', async (t) => {
  const buf = formatCpio(entries);
  t.equal(buf.length % 4, 0, 'archive length is a multiple of 4');
  const recs = readNewc(buf);
  t.equal(recs.length, entries.length + 1, 'one record per entry plus the trailer');
  t.equal(recs.at(-1)?.name, 'TRAILER!!!');

  const names = recs.slice(0, -1).map((r) => r.name);
  t.same(names, ['etc', 'tmp', 'etc/a', 'etc/bb', 'etc/ccc', 'etc/dddd', 'etc/binary', 'etc/ütf8-näme', 'etc/link', 'etc/rel'], 'leading slashes stripped, order kept');

  for (const r of recs) {
    t.equal(r.offset % 4, 0, `${r.name}: header 4-byte aligned`);
    t.equal(r.dataOffset % 4, 0, `${r.name}: data 4-byte aligned`);
    t.equal(r.uid, 0);
    t.equal(r.gid, 0);
    t.equal(r.mtime, 0, 'fixed mtime keeps images reproducible');
  }
  const byName = new Map(recs.map((r) => [r.name, r]));
  t.equal(byName.get('etc')?.mode, 0o040755, 'dir mode is S_IFDIR | perms');
  t.equal(byName.get('tmp')?.mode, 0o041777, 'sticky bit kept');
  t.equal(byName.get('etc')?.nlink, 2);
  t.equal(byName.get('etc/bb')?.mode, 0o100600, 'file mode is S_IFREG | perms');
  t.equal(byName.get('etc/ccc')?.mode, 0o100755);
  t.equal(byName.get('etc/link')?.mode, 0o120777, 'symlink mode is S_IFLNK | 0777');
  t.equal(byName.get('etc/link')?.data.toString(), '/etc/ccc', 'symlink data is its target');
  t.equal(byName.get('etc/rel')?.data.toString(), 'dddd');
  t.equal(byName.get('etc/a')?.data.length, 0);
  t.same([...(byName.get('etc/binary')?.data ?? [])], [0, 1, 2, 255, 254, 0, 10, 13], 'binary data byte-exact');
  t.equal(byName.get('etc/ütf8-näme')?.data.toString('utf8'), 'äöü\n');
  t.equal(byName.get('etc/ütf8-näme')?.rawName.length, Buffer.byteLength('etc/ütf8-näme') + 1, 'namesize counts UTF-8 bytes and the NUL');
  const inos = recs.slice(0, -1).map((r) => r.ino);
  t.equal(new Set(inos).size, inos.length, 'inode numbers are unique');
  for (const r of recs.slice(0, -1)) if (r.mode & 0o100000 && !(r.mode & 0o040000)) t.equal(r.nlink, 1, `${r.name}: nlink 1 (no hardlink merging)`);
});

t.test('empty archive is just the trailer', async (t) => {
  const buf = formatCpio([]);
  const recs = readNewc(buf);
  t.equal(recs.length, 1);
  t.equal(recs[0]?.name, 'TRAILER!!!');
  t.equal(recs[0]?.mode, 0);
});

t.test('equal entries give identical bytes', async (t) => {
  t.ok(formatCpio(entries).equals(formatCpio(entries)));
});

t.test('GNU cpio reads the archive', { skip: existsSync('/usr/bin/cpio') ? false : 'cpio is not installed (/usr/bin/cpio)' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cpio-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const buf = formatCpio(entries);
  const archive = join(dir, 'a.cpio');
  writeFileSync(archive, buf);

  const list = await runCommand({ argv: ['cpio', '-t', '--quiet', '-F', archive], timeoutMs: 10_000 });
  t.equal(list.exitCode, 0, `cpio -t exits 0 (stderr: ${list.stderr})`);
  t.same(
    list.stdout.trim().split('\n'),
    entries.map((e) => e.path.replace(/^\/+/, '')),
    'cpio -t lists every name in order',
  );

  const out = join(dir, 'out');
  const ex = await runCommand({ argv: ['sh', '-c', 'mkdir -p "$1" && cd "$1" && cpio -idm --quiet --no-absolute-filenames -F "$2"', 'x', out, archive], timeoutMs: 10_000 });
  t.equal(ex.exitCode, 0, `cpio -idm exits 0 (stderr: ${ex.stderr})`);
  for (const e of entries) {
    const p = join(out, e.path.replace(/^\/+/, ''));
    const st = lstatSync(p);
    if (e.kind === 'dir') {
      t.ok(st.isDirectory(), `${e.path} is a directory`);
    } else if (e.kind === 'file') {
      t.ok(st.isFile(), `${e.path} is a file`);
      t.ok(readFileSync(p).equals(e.data), `${e.path} content is byte-exact`);
      t.equal(st.mode & 0o777, e.mode & 0o777, `${e.path} mode`);
    } else {
      t.ok(st.isSymbolicLink(), `${e.path} is a symlink`);
      t.equal(readlinkSync(p), e.target);
    }
  }
});
