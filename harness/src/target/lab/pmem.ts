// Persistent memory on a lab machine: the harness reconfigures only the fsdax namespaces the
// inventory names, and only when they are really dedicated (nothing mounted, no filesystem the
// harness did not make). Everything is decided from what the machine reports before any
// change; one namespace that fails the check stops the run before anything is touched.
import { HarnessError } from '../../core/errors.js';
import type { GuestCommand } from '../ssh-target.js';
import { planMkfs, planMount, type FsSetupPlan, type FsType } from '../guest-setup.js';
import { LAB_ROOT } from './lease.js';

/** A namespace as `ndctl list -N` prints it (the fields the harness reads). */
export interface NdctlNamespace {
  dev: string;
  mode: string;
  size?: number;
  uuid?: string;
  name?: string;
  blockdev?: string;
  chardev?: string;
}

/** What is on a block device: from blkid (TYPE, LABEL) and /proc/mounts. */
export interface DeviceUse {
  fstype: string | null;
  label: string | null;
  /** Mount points of the device or its partitions. */
  mounts: string[];
}

/** Labels the harness gives the filesystems it makes: only these may be reformatted. */
export const HARNESS_LABEL = /^daxh-(ext4|xfs)$/;

/** Returns the namespaces from `ndctl list -N` output (one object, a list, or nothing). */
export function parseNdctlList(text: string): NdctlNamespace[] {
  const t = text.trim();
  if (t === '') return [];
  const v = JSON.parse(t) as unknown;
  const list = Array.isArray(v) ? v : [v];
  return list.filter((x): x is NdctlNamespace => typeof x === 'object' && x !== null && typeof (x as NdctlNamespace).dev === 'string');
}

/** Returns TYPE and LABEL from `blkid -o export DEV` (empty output: no filesystem). */
export function parseBlkid(text: string): { fstype: string | null; label: string | null } {
  const get = (k: string): string | null => new RegExp(`^${k}=(.*)$`, 'm').exec(text)?.[1] ?? null;
  return { fstype: get('TYPE'), label: get('LABEL') };
}

/** Returns the mount points of a device and its partitions from /proc/mounts text. */
export function mountsOf(procMounts: string, blockdev: string): string[] {
  return procMounts
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[0] !== undefined && new RegExp(`^/dev/${blockdev}(p\\d+)?$`).test(f[0]))
    .map((f) => f[1] ?? '');
}

export interface PmemDecision {
  /** The namespace each filesystem gets, in --fs order. */
  assigned: { fs: FsType; ns: NdctlNamespace; key: string }[];
  /** Why each refused namespace is refused (empty: go ahead). */
  refused: string[];
}

/** Returns the namespace of the inventory's key (a name or a uuid). */
export function findNamespace(all: NdctlNamespace[], key: string): NdctlNamespace | undefined {
  return all.find((n) => n.name === key || n.uuid === key);
}

/**
 * Decides which inventory namespaces the run may reconfigure. Every namespace the inventory
 * names is checked (not just the ones this run needs): an inventory that points at someone's
 * data is wrong whatever --fs says.
 */
export function decidePmem(allowed: string[], filesystems: FsType[], all: NdctlNamespace[], use: (blockdev: string) => DeviceUse): PmemDecision {
  const refused: string[] = [];
  const ok: { key: string; ns: NdctlNamespace }[] = [];
  for (const key of allowed) {
    const ns = findNamespace(all, key);
    if (!ns) {
      refused.push(`${key}: no such namespace (ndctl list -N has ${all.map((n) => n.name || n.uuid || n.dev).join(', ') || 'none'})`);
      continue;
    }
    if (ns.mode !== 'fsdax' && ns.mode !== 'raw') {
      refused.push(`${key} (${ns.dev}): mode ${ns.mode}; the harness reconfigures fsdax or raw namespaces only (a devdax one may be in use through its character device)`);
      continue;
    }
    if (!ns.blockdev) {
      refused.push(`${key} (${ns.dev}): has no block device`);
      continue;
    }
    const u = use(ns.blockdev);
    if (u.mounts.length > 0) {
      refused.push(`${key} (/dev/${ns.blockdev}): mounted on ${u.mounts.join(', ')}`);
      continue;
    }
    if (u.fstype && !(u.label && HARNESS_LABEL.test(u.label))) {
      refused.push(`${key} (/dev/${ns.blockdev}): holds a ${u.fstype} filesystem${u.label ? ` labelled "${u.label}"` : ''} that the harness did not make`);
      continue;
    }
    ok.push({ key, ns });
  }
  if (refused.length === 0 && ok.length < filesystems.length) {
    refused.push(`the run needs ${filesystems.length} namespaces (${filesystems.join(', ')}) and the inventory allows ${ok.length}`);
  }
  return { assigned: refused.length > 0 ? [] : filesystems.map((fs, i) => ({ fs, ns: ok[i]!.ns, key: ok[i]!.key })), refused };
}

/** Throws, before anything is changed, if the decision refused a namespace. */
export function checkPmemDecision(machine: string, d: PmemDecision): void {
  if (d.refused.length === 0) return;
  throw new HarnessError('config', `lab machine ${machine}: refusing to touch its persistent memory: ${d.refused.join('; ')}; nothing was changed`, {
    hint: 'the inventory\'s "namespaces" must name fsdax namespaces dedicated to the harness (unmounted, empty or holding a daxh-* filesystem); fix the inventory, or free the namespace by hand',
  });
}

/** Where the harness mounts a filesystem on a lab machine. */
export function labMountpoint(fs: FsType, root = LAB_ROOT): string {
  return `${root}/mnt/${fs}`;
}

/** Plans the reconfiguration, mkfs and mount of the assigned namespaces (labelled as the harness's). */
export function planLabFsSetup(d: PmemDecision, root = LAB_ROOT): FsSetupPlan[] {
  return d.assigned.map(({ fs, ns }, i) => {
    const mountpoint = labMountpoint(fs, root);
    // As in the guest: struct pages in the namespace for the first, in RAM for the second.
    const map = i % 2 === 0 ? 'dev' : 'mem';
    const create: GuestCommand = {
      argv: ['ndctl', 'create-namespace', '-f', '-e', ns.dev, '-m', 'fsdax', '-M', map, ...(ns.name ? ['-n', ns.name] : [])],
      timeoutMs: 120_000,
    };
    return {
      fs,
      mountpoint,
      device: null,
      namespace: [create],
      mkfs: (dev: string) => planMkfs(fs, dev, `daxh-${fs}`),
      mount: (dev: string) => planMount(fs, dev, mountpoint),
    };
  });
}
