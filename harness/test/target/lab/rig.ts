// Test rig that stands in for a lab machine with persistent memory: a real Debian bookworm
// system (systemd, OpenSSH, sudo, ndctl, kexec-tools, Debian's 6.1 kernel) in a QEMU/TCG VM
// with two labelled NVDIMMs, reached only the ways a lab machine is: SSH as a sudo user, a
// console server (a UNIX socket) and a PDU (argv that talk to QEMU's monitor). Test support,
// not a test: the harness's lab-machine code is tested against it.
//
// The image is built once per content hash under ${cacheDir}/lab-rig/<hash>/ (mmdebstrap, then
// mkfs.ext4 -d: no loop devices); each VM runs on a qcow2 overlay and fresh NVDIMM files in
// its own workDir, and is provisioned over SSH on its first boot the way a lab admin would.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, openSync, closeSync, ftruncateSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { runCommand, shellQuote, type CommandPlan, type ProcessResult } from '../../../src/core/proc.js';
import { HarnessError } from '../../../src/core/errors.js';

// Bump when the build steps change in a way the spec below does not show.
const RIG_VERSION = 1;

/** A built lab system image in the cache; everything in it is read-only for VMs. */
export interface LabImage {
  dir: string;
  /** Raw ext4 image of the root filesystem (/dev/vda in the VM). */
  disk: string;
  /** The image's own /boot/vmlinuz-* and /boot/initrd.img-*: the machine's default kernel. */
  kernel: string;
  initrd: string;
  /** `uname -r` of the default kernel, e.g. 6.1.0-57-amd64. */
  release: string;
  /** Private key (ed25519, OpenSSH format, 0600) of the user lab. */
  key: string;
  hash: string;
}

/** A running lab VM and the ways a harness reaches it. */
export interface LabVm {
  host: '127.0.0.1';
  port: number;
  user: 'lab';
  identity: string;
  /** 'SHA256:...' of the ed25519 host key, as ssh-keygen -lf prints it. */
  hostKeyFingerprint: string;
  /** The host key as an OpenSSH public key line: 'ssh-ed25519 AAAA...'. */
  hostKeyLine: string;
  /** A known_hosts file pinning hostKeyLine for [127.0.0.1]:port. */
  knownHosts: string;
  consoleSock: string;
  monitorSock: string;
  /** Everything the serial console printed, across reboots (QEMU's chardev logfile). */
  consoleLog: string;
  /** Streams the serial console to stdout (read-only), like a console server's port. */
  consoleCommand: string[];
  /** The PDU: cycle = reset and run; off = stop the CPUs; on = reset and run if off. */
  power: { cycle: string[]; off: string[]; on: string[] };
  /** Data the harness must never touch: an fsdax namespace with ext4, mounted from fstab. */
  precious: { namespace: string; mountpoint: string; file: string; sha256: string };
  /** fsdax namespaces (unmounted, no filesystem) a harness may reconfigure. */
  harnessNamespaces: string[];
  /** Argv of the QEMU process, as run (after setpriv). */
  qemuArgv: string[];
  /** Runs a shell command line as lab over OpenSSH; throws only when the time bound hits. */
  sshExec(cmd: string, timeoutMs?: number): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Polls SSH until it answers (or throws with the console tail); returns the ms it took. */
  waitForSsh(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The image: a spec (hashed), then steps (plain data) run by runImageSteps.

/** A file written into the image tree (path absolute inside the tree). */
export interface TreeFile {
  path: string;
  content: string;
  mode: number;
}

/** Everything that shapes the image; its hash names the cache directory. */
export interface LabImageSpec {
  version: number;
  suite: string;
  mirrors: string[];
  packages: string[];
  dpkgOptions: string[];
  /** Written before mmdebstrap runs, so the kernel's postinst already sees them. */
  preseed: TreeFile[];
  /** Written after mmdebstrap. */
  files: TreeFile[];
  enable: string[];
  mask: string[];
  user: string;
  diskSize: string;
}

const BOOKWORM_MIRRORS = [
  'deb http://deb.debian.org/debian bookworm main',
  'deb http://deb.debian.org/debian bookworm-updates main',
  'deb http://deb.debian.org/debian-security bookworm-security main',
];

const LAB_PACKAGES = [
  'systemd-sysv',
  'udev',
  'openssh-server',
  'sudo',
  'kexec-tools',
  'ndctl',
  'e2fsprogs',
  'xfsprogs',
  'linux-image-amd64',
  'iproute2',
  'kmod',
  'procps',
];

// Units that would cost boot time under TCG or run unasked on a test machine:
// - systemd-networkd-wait-online waits (up to 2 min) for a "fully configured" link; nothing
//   here needs the network online, sshd binds to any address.
// - apt/dpkg/e2scrub/fstrim timers would fire maintenance in the middle of a test.
// - ndctl-monitor would watch DIMM health on emulated DIMMs that have none.
const LAB_MASK = [
  'systemd-networkd-wait-online.service',
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  'dpkg-db-backup.timer',
  'e2scrub_all.timer',
  'e2scrub_reap.service',
  'fstrim.timer',
  'ndctl-monitor.service',
];

/** Returns the spec of the lab image: bookworm, the package set, and every customization. */
export function planLabImageSpec(): LabImageSpec {
  return {
    version: RIG_VERSION,
    suite: 'bookworm',
    mirrors: BOOKWORM_MIRRORS,
    packages: LAB_PACKAGES,
    // Documentation and translations are dead weight in a test image, and with no man pages
    // there are no man-db triggers to run.
    dpkgOptions: ['path-exclude=/usr/share/man/*', 'path-exclude=/usr/share/doc/*', 'path-exclude=/usr/share/locale/*', 'path-include=/usr/share/locale/locale.alias'],
    preseed: [
      // The default MODULES=most packs ~36 MB of modules the VM never needs; decompressing
      // that under TCG costs seconds at every boot. The root disk only needs these (the
      // modules.d list is read by mkinitramfs whatever MODULES says).
      { path: '/etc/initramfs-tools/conf.d/lab-rig.conf', content: 'MODULES=list\n', mode: 0o644 },
      { path: '/usr/share/initramfs-tools/modules.d/lab-rig', content: 'virtio_pci\nvirtio_blk\next4\n', mode: 0o644 },
    ],
    files: [
      { path: '/etc/hostname', content: 'daxlab\n', mode: 0o644 },
      // sudo resolves the host name on every call; without this line it warns on stderr.
      { path: '/etc/hosts', content: '127.0.0.1\tlocalhost\n127.0.1.1\tdaxlab\n::1\tlocalhost ip6-localhost ip6-loopback\n', mode: 0o644 },
      // pass 0: the kernel mounts the root rw (root=/dev/vda rw) and replays its journal after
      // a power cycle; an fsck of a mounted root would only be refused.
      { path: '/etc/fstab', content: '/dev/vda\t/\text4\tdefaults\t0\t0\n', mode: 0o644 },
      { path: '/etc/systemd/network/20-lab-rig.network', content: '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n', mode: 0o644 },
      // QEMU's user-mode network has its DNS forwarder at 10.0.2.3; networkd alone (no
      // resolved) does not write resolv.conf.
      { path: '/etc/resolv.conf', content: 'nameserver 10.0.2.3\n', mode: 0o644 },
      { path: '/etc/sudoers.d/lab', content: 'lab ALL=(ALL:ALL) NOPASSWD: ALL\n', mode: 0o440 },
      // kexec-tools' default (LOAD_KEXEC=true) makes every reboot a kexec into /vmlinuz; a lab
      // machine reboots through its firmware into its default kernel, and loads a kexec kernel
      // only when the harness asks.
      {
        path: '/etc/default/kexec',
        content: 'LOAD_KEXEC=false\nKERNEL_IMAGE="/vmlinuz"\nINITRD="/initrd.img"\nAPPEND=""\nUSE_GRUB_CONFIG=false\n',
        mode: 0o644,
      },
      // Drivers for the pc machine's legacy devices (floppy controller, PATA, PC speaker,
      // SMBus), for KVM inside the guest (qemu64 advertises SVM) and for wireless: udev loads
      // them by modalias, and probing them under TCG cost ~8 s of every boot for nothing.
      {
        path: '/etc/modprobe.d/lab-rig-blacklist.conf',
        content: ['floppy', 'ata_piix', 'pata_acpi', 'ata_generic', 'pcspkr', 'i2c_piix4', 'kvm_amd', 'kvm_intel', 'powernow_k8', 'cfg80211'].map((m) => `blacklist ${m}\n`).join(''),
        mode: 0o644,
      },
      {
        path: '/etc/ssh/sshd_config.d/lab-rig.conf',
        content: 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\nUseDNS no\n',
        mode: 0o644,
      },
    ],
    enable: ['systemd-networkd.service', 'serial-getty@ttyS0.service'],
    mask: LAB_MASK,
    user: 'lab',
    // Sparse file: ~800 MB used; the rest is room for the test kernels a harness installs.
    diskSize: '4G',
  };
}

/** Returns the content hash of a spec (the cache key). */
export function hashLabImageSpec(spec: LabImageSpec): string {
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);
}

export type ImageStep =
  | { kind: 'run'; what: string; plan: CommandPlan }
  | { kind: 'write'; file: TreeFile }
  | { kind: 'remove'; path: string };

/** Paths inside a build directory. */
export function labImagePaths(dir: string): { tree: string; disk: string; key: string; hostPub: string; manifest: string; packages: string } {
  return {
    tree: join(dir, 'tree'),
    disk: join(dir, 'disk.img'),
    key: join(dir, 'lab_ed25519'),
    hostPub: join(dir, 'ssh_host_ed25519_key.pub'),
    manifest: join(dir, 'image.json'),
    packages: join(dir, 'packages.txt'),
  };
}

const inTree = (tree: string, f: TreeFile): TreeFile => ({ ...f, path: join(tree, f.path) });

/** Returns the steps that build the tree in dir (up to, not including, mkfs). */
export function planLabTreeSteps(spec: LabImageSpec, dir: string): ImageStep[] {
  const p = labImagePaths(dir);
  const chroot = (argv: string[], what: string, timeoutMs = 60_000): ImageStep => ({ kind: 'run', what, plan: { argv: ['chroot', p.tree, ...argv], timeoutMs } });
  const home = `/home/${spec.user}`;
  return [
    ...spec.preseed.map((f): ImageStep => ({ kind: 'write', file: inTree(p.tree, f) })),
    {
      kind: 'run',
      what: 'generating the lab user key',
      plan: { argv: ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `${spec.user}@dax-lab-rig`, '-f', p.key], timeoutMs: 30_000 },
    },
    {
      kind: 'run',
      what: 'mmdebstrap',
      plan: {
        argv: [
          'mmdebstrap',
          '--mode=root',
          '--variant=apt',
          '--components=main',
          // The tree already holds the preseed files.
          '--skip=check/empty',
          `--include=${spec.packages.join(',')}`,
          ...spec.dpkgOptions.map((o) => `--dpkgopt=${o}`),
          spec.suite,
          p.tree,
          ...spec.mirrors,
        ],
        env: { DEBIAN_FRONTEND: 'noninteractive' },
        timeoutMs: 30 * 60_000,
      },
    },
    ...spec.files.map((f): ImageStep => ({ kind: 'write', file: inTree(p.tree, f) })),
    chroot(['useradd', '--create-home', '--shell', '/bin/bash', '--groups', 'sudo', spec.user], 'adding the lab user'),
    // useradd leaves the password '!' (locked); '*' has no password either but is not
    // "locked", which some sshd/PAM set-ups refuse even for key logins.
    chroot(['usermod', '--password', '*', spec.user], 'unlocking the lab user for key logins'),
    { kind: 'write', file: { path: join(p.tree, home, '.ssh', 'authorized_keys'), content: '@PUBKEY@', mode: 0o600 } },
    chroot(['chown', '-R', `${spec.user}:${spec.user}`, `${home}/.ssh`], 'owning ~lab/.ssh'),
    chroot(['chmod', '700', `${home}/.ssh`], 'closing ~lab/.ssh'),
    // openssh-server's postinst made host keys inside the chroot already; replace them with
    // keys this build made on purpose (ssh-keygen -A with the tree as prefix).
    ...['ed25519', 'ecdsa', 'rsa'].flatMap((t): ImageStep[] => [
      { kind: 'remove', path: join(p.tree, `/etc/ssh/ssh_host_${t}_key`) },
      { kind: 'remove', path: join(p.tree, `/etc/ssh/ssh_host_${t}_key.pub`) },
    ]),
    { kind: 'run', what: 'generating sshd host keys', plan: { argv: ['ssh-keygen', '-A', '-f', p.tree], timeoutMs: 60_000 } },
    // mmdebstrap leaves /etc/machine-id empty, so every boot would invent a new one (and a
    // new persistent-journal directory); a lab machine keeps its identity across reboots.
    { kind: 'remove', path: join(p.tree, '/etc/machine-id') },
    { kind: 'run', what: 'setting the machine id', plan: { argv: ['systemd-machine-id-setup', `--root=${p.tree}`], timeoutMs: 30_000 } },
    { kind: 'run', what: 'enabling units', plan: { argv: ['systemctl', `--root=${p.tree}`, 'enable', ...spec.enable], timeoutMs: 60_000 } },
    { kind: 'run', what: 'masking units', plan: { argv: ['systemctl', `--root=${p.tree}`, 'mask', ...spec.mask], timeoutMs: 60_000 } },
  ];
}

/** Returns the mkfs.ext4 plan that turns the tree into a raw disk image, no loop device. */
export function planLabDisk(spec: LabImageSpec, dir: string): CommandPlan {
  const p = labImagePaths(dir);
  return { argv: ['mkfs.ext4', '-q', '-F', '-L', 'daxlab-root', '-d', p.tree, p.disk, spec.diskSize], timeoutMs: 10 * 60_000 };
}

/** Returns the kernel release from the names in a /boot directory (exactly one kernel). */
export function parseBootRelease(names: readonly string[]): string {
  const rel = names.map((n) => /^vmlinuz-(.+)$/.exec(n)?.[1]).filter((r): r is string => Boolean(r));
  if (rel.length !== 1 || !rel[0]) throw new Error(`expected exactly one kernel in /boot, found: ${names.join(' ')}`);
  return rel[0];
}

async function runStep(step: ImageStep, pubKey: () => string, log: (s: string) => void): Promise<void> {
  if (step.kind === 'remove') {
    rmSync(step.path, { force: true });
    return;
  }
  if (step.kind === 'write') {
    mkdirSync(dirname(step.file.path), { recursive: true });
    const content = step.file.content === '@PUBKEY@' ? pubKey() : step.file.content;
    writeFileSync(step.file.path, content);
    chmodSync(step.file.path, step.file.mode);
    return;
  }
  const started = performance.now();
  const r = await runCommand(step.plan);
  if (r.exitCode !== 0) {
    throw new HarnessError('build', `lab image: ${step.what} failed (exit ${r.exitCode ?? r.signal}${r.timedOut ? ', timed out' : ''})`, {
      hint: 'read the output below; mmdebstrap needs root and a reachable Debian mirror',
      detail: `${shellQuote(step.plan.argv)}\n${tail(r.stderr || r.stdout, 30)}`,
    });
  }
  log(`lab image: ${step.what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/** Builds the lab image once (by content hash) and returns it; a cached image returns at once. */
export async function buildLabImage(opts: { cacheDir: string; log: (s: string) => void }): Promise<LabImage> {
  const spec = planLabImageSpec();
  const hash = hashLabImageSpec(spec);
  const root = join(opts.cacheDir, 'lab-rig');
  const final = join(root, hash);
  const cached = readImageManifest(final);
  if (cached) return cached;

  mkdirSync(root, { recursive: true });
  removeDeadBuilds(root);
  // Built beside the final place (same filesystem) and renamed into it: a build that fails
  // or is killed never leaves a directory that looks complete.
  const tmp = join(root, `.tmp-${hash}-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(tmp, { mode: 0o700 });
  try {
    const p = labImagePaths(tmp);
    mkdirSync(p.tree);
    const started = performance.now();
    for (const step of planLabTreeSteps(spec, tmp)) await runStep(step, () => readFileSync(`${p.key}.pub`, 'utf8'), opts.log);
    const bootNames = readdirSync(join(p.tree, 'boot'));
    const release = parseBootRelease(bootNames);
    copyFileSync(join(p.tree, 'boot', `vmlinuz-${release}`), join(tmp, `vmlinuz-${release}`));
    copyFileSync(join(p.tree, 'boot', `initrd.img-${release}`), join(tmp, `initrd.img-${release}`));
    copyFileSync(join(p.tree, 'etc/ssh/ssh_host_ed25519_key.pub'), p.hostPub);
    // Which kernel and ndctl a run had depends on the mirror on the day of the build.
    const pk = await runCommand({ argv: ['dpkg-query', `--admindir=${join(p.tree, 'var/lib/dpkg')}`, '-W', '-f', '${Package} ${Version}\n'], timeoutMs: 30_000 });
    writeFileSync(p.packages, pk.stdout);
    await runStep({ kind: 'run', what: 'mkfs.ext4 -d', plan: planLabDisk(spec, tmp) }, () => '', opts.log);
    await runStep({ kind: 'run', what: 'removing the tree', plan: planRemoveTree(p.tree) }, () => '', opts.log);
    const manifest = { hash, release, spec, builtAt: new Date().toISOString(), buildMs: Math.round(performance.now() - started) };
    writeFileSync(p.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
    try {
      renameSync(tmp, final);
    } catch (err) {
      // Another process finished the same build first: use its image.
      const other = readImageManifest(final);
      if (!other) throw err;
      rmSync(tmp, { recursive: true, force: true });
      return other;
    }
    opts.log(`lab image ${hash} (${release}) built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const built = readImageManifest(final);
    if (!built) throw new HarnessError('internal', `lab image ${final} vanished after its build`);
    return built;
  } finally {
    if (existsSync(tmp)) await runCommand(planRemoveTree(tmp));
  }
}

// rm(1), not fs.rmSync: Node's recursive removal took 41 s for the ~30,000 files of the tree.
// --one-file-system: never follow into anything mounted inside a half-built tree.
function planRemoveTree(path: string): CommandPlan {
  return { argv: ['rm', '-rf', '--one-file-system', '--', path], timeoutMs: 5 * 60_000 };
}

function readImageManifest(dir: string): LabImage | null {
  const p = labImagePaths(dir);
  if (!existsSync(p.manifest)) return null;
  const m = JSON.parse(readFileSync(p.manifest, 'utf8')) as { hash: string; release: string };
  return {
    dir,
    disk: p.disk,
    kernel: join(dir, `vmlinuz-${m.release}`),
    initrd: join(dir, `initrd.img-${m.release}`),
    release: m.release,
    key: p.key,
    hash: m.hash,
  };
}

// A build killed hard (SIGKILL, power loss) leaves its .tmp-<hash>-<pid>-* directory behind;
// remove those whose process is gone.
function removeDeadBuilds(root: string): void {
  for (const name of readdirSync(root)) {
    const pid = Number(/^\.tmp-[0-9a-f]+-(\d+)-/.exec(name)?.[1]);
    if (!pid) continue;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code !== 'ESRCH';
    }
    if (!alive) rmSync(join(root, name), { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The VM.

export interface NvdimmLayout {
  /** Backend size; a label area of labelKiB is carved from its end by QEMU. */
  sizeMiB: number;
  labelKiB: number;
}

// NVDIMM 0 holds the harness's two namespaces, NVDIMM 1 the precious one. Sizes are
// multiples of 16 MiB because the backends are aligned to 16 MiB (see planLabQemu).
export const LAB_NVDIMMS: NvdimmLayout[] = [
  { sizeMiB: 1024 + 16, labelKiB: 128 },
  { sizeMiB: 256 + 16, labelKiB: 128 },
];

export interface LabQemuInput {
  image: LabImage;
  overlay: string;
  nvdimmFiles: string[];
  sshPort: number;
  consoleSock: string;
  consoleLog: string;
  monitorSock: string;
}

// Kernel command line:
// - root=/dev/vda rw: the initramfs mounts the virtio disk read-write at once (fstab pass 0).
// - console=ttyS0: the serial console is the console server's port and the boot evidence.
// - random.trust_cpu=on (plus the virtio-rng device): without entropy, sshd's and ndctl's
//   getrandom() calls stall for seconds under TCG.
// - panic=-1: a panicked test kernel reboots at once, like a lab machine with a watchdog;
//   without -no-reboot that brings the default kernel back.
// - mitigations=off: the speculative-execution workarounds only cost emulated cycles here.
// - systemd.show_status=false: the boot's status lines would compete with kernel messages
//   for the emulated UART; the kernel's own lines stay.
export const LAB_APPEND = ['root=/dev/vda', 'rw', 'console=ttyS0,115200', 'random.trust_cpu=on', 'panic=-1', 'mitigations=off', 'systemd.show_status=false'];

// Socket paths go into socat addresses and sockaddr_un (108 bytes): keep them plain.
function checkSocketPath(path: string): string {
  if (path.length > 100 || !/^[A-Za-z0-9_./+-]+$/.test(path)) {
    throw new HarnessError('config', `lab VM socket path not usable: ${path}`, { hint: 'use a short workDir without special characters (e.g. under /tmp)' });
  }
  return path;
}

/** Returns the QEMU command line of the lab VM (not yet wrapped in setpriv). */
export function planLabQemu(input: LabQemuInput): CommandPlan {
  if (input.nvdimmFiles.length !== LAB_NVDIMMS.length) throw new Error(`planLabQemu: ${LAB_NVDIMMS.length} NVDIMM files needed`);
  const argv = [
    'qemu-system-x86_64',
    '-name', 'daxlab',
    // No default devices (floppy, CD-ROM, VGA, NIC): fewer things for firmware and kernel to
    // probe under TCG, and nothing the lab machine would not have.
    '-nodefaults',
    '-no-user-config',
    // No KVM on this machine (FIELD-NOTES, 2026-12-03): TCG. nvdimm=on makes QEMU build the
    // ACPI NFIT the kernel's nfit driver reads the NVDIMMs (and their labels) from.
    '-machine', 'pc,nvdimm=on,accel=tcg',
    // qemu64 rather than max: TCG emulating every feature of max is slower, and a generic
    // distro kernel needs none of them.
    '-cpu', 'qemu64',
    '-smp', '2',
    // NVDIMMs are memory devices: each takes a hotplug slot within maxmem.
    '-m', '2G,slots=2,maxmem=8G',
  ];
  LAB_NVDIMMS.forEach((nv, i) => {
    // share=on: guest writes reach the file, so the NVDIMM keeps its data (and labels) across
    // a reset, as persistent memory does across a power cycle. align=16M: QEMU places each
    // NVDIMM at its backend's alignment, and the label area shortens the device, so with a
    // smaller alignment the next region starts off the 16 MiB boundary Linux wants.
    argv.push('-object', `memory-backend-file,id=pmem${i},share=on,mem-path=${input.nvdimmFiles[i]},size=${nv.sizeMiB}M,align=16M`);
    argv.push('-device', `nvdimm,id=nvdimm${i},memdev=pmem${i},label-size=${nv.labelKiB}K`);
  });
  argv.push(
    // cache=unsafe: the overlay is thrown away with the VM; a guest power cycle is a reset
    // inside this QEMU process, which loses nothing QEMU has already accepted.
    '-drive', `file=${input.overlay},format=qcow2,if=none,id=root,cache=unsafe`,
    '-device', 'virtio-blk-pci,drive=root',
    // Only 127.0.0.1 is forwarded: an sshd with a test key must not face the network.
    '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${input.sshPort}-:22`,
    // romfile= skips the iPXE option ROM, which the firmware would run for nothing.
    '-device', 'virtio-net-pci,netdev=net0,romfile=',
    // qemu64 has no RDRAND, so random.trust_cpu alone gives no entropy: virtio-rng does.
    '-device', 'virtio-rng-pci',
    // The console server: a socket anyone may attach to (one client at a time), and a logfile
    // that records everything, attached or not.
    '-chardev', `socket,id=ser0,path=${checkSocketPath(input.consoleSock)},server=on,wait=off,logfile=${input.consoleLog},logappend=on`,
    '-serial', 'chardev:ser0',
    // The PDU: HMP on a socket; power argv send it system_reset, stop and cont.
    '-monitor', `unix:${checkSocketPath(input.monitorSock)},server=on,wait=off`,
    '-display', 'none',
    // A guest poweroff stops the CPUs instead of ending QEMU: the machine is "off" and the
    // PDU can turn it on again, as with a real one.
    '-no-shutdown',
    // No -no-reboot: a reboot, a panic or a system_reset must come back up in the default
    // kernel, which QEMU reloads from -kernel/-initrd at every reset.
    '-kernel', input.image.kernel,
    '-initrd', input.image.initrd,
    '-append', LAB_APPEND.join(' '),
  );
  return { argv };
}

// One HMP session: the commands on stdin, -t so socat waits for QEMU's answers to drain
// before closing. The socket path is a positional parameter, never spliced into the script.
const HMP = 'printf "%s\\n" "$@" | socat -t 2 - "UNIX-CONNECT:$0" >/dev/null';
// on: only a machine that is off (stopped, or shut down under -no-shutdown) is started; an
// outlet that is on stays on.
const HMP_ON =
  'if printf "info status\\n" | socat -t 2 - "UNIX-CONNECT:$0" | grep -q "VM status: paused"; then printf "system_reset\\ncont\\n" | socat -t 2 - "UNIX-CONNECT:$0" >/dev/null; fi';

/** Returns the PDU and console-server argv for a VM's sockets. */
export function planLabPower(monitorSock: string, consoleSock: string): { power: LabVm['power']; consoleCommand: string[] } {
  const m = checkSocketPath(monitorSock);
  return {
    power: {
      // Power cycle: reset (RAM and devices; the NVDIMM files keep their data) and make sure
      // the CPUs run, whether the machine was on or off.
      cycle: ['sh', '-c', HMP, m, 'system_reset', 'cont'],
      // Off: stop the CPUs. Nothing in the guest runs, SSH stops answering; system_reset here
      // would be a reboot, not an off.
      off: ['sh', '-c', HMP, m, 'stop'],
      on: ['sh', '-c', HMP_ON, m],
    },
    consoleCommand: ['socat', '-u', `UNIX-CONNECT:${checkSocketPath(consoleSock)}`, '-'],
  };
}

export interface SshTarget {
  port: number;
  identity: string;
  knownHosts: string;
}

/** Returns the OpenSSH plan that runs a command line as lab, with the host key pinned. */
export function planLabSsh(target: SshTarget, remote: string, timeoutMs: number, input?: string): CommandPlan {
  return {
    argv: [
      'ssh',
      // The user's own ssh config must not change what the rig does.
      '-F', '/dev/null',
      '-i', target.identity,
      '-p', String(target.port),
      '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', `UserKnownHostsFile=${target.knownHosts}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      // Only the ed25519 host key is pinned; without this the server could offer another.
      '-o', 'HostKeyAlgorithms=ssh-ed25519',
      // QEMU's user network accepts the TCP connection at once even when the guest is not up
      // and stalls it; ConnectTimeout also bounds the wait for the server's banner.
      '-o', 'ConnectTimeout=5',
      '-o', 'ServerAliveInterval=5',
      '-o', 'ServerAliveCountMax=4',
      '-o', 'LogLevel=ERROR',
      'lab@127.0.0.1',
      '--',
      remote,
    ],
    timeoutMs,
    input: input ?? '',
  };
}

/** Returns the remote command line for argv run as root (sudo -n) under a remote time bound. */
export function planSudoLine(argv: readonly string[], timeoutMs: number): string {
  return shellQuote(['sudo', '-n', 'timeout', '-s', 'KILL', String(Math.ceil(timeoutMs / 1000)), ...argv]);
}

/** Returns the name after SHA256: from `ssh-keygen -lf` output ('256 SHA256:x comment (ED25519)'). */
export function parseFingerprint(text: string): string {
  const m = /\b(SHA256:[A-Za-z0-9+/]+)/.exec(text);
  if (!m?.[1]) throw new Error(`no SHA256 fingerprint in: ${text.slice(0, 120)}`);
  return m[1];
}

export interface NdctlNamespace {
  dev: string;
  mode: string;
  name?: string;
  blockdev?: string;
  size: number;
  uuid?: string;
}

export interface NdctlRegion {
  dev: string;
  size: number;
  available_size: number;
}

/** Returns the records of `ndctl list` JSON: ndctl prints a lone object for one record. */
export function parseNdctlList<T>(text: string): T[] {
  const t = text.trim();
  if (t === '') return [];
  const v = JSON.parse(t) as T | T[];
  return Array.isArray(v) ? v : [v];
}

export interface ProvisionPlan {
  big: string;
  small: string;
  harnessNamespaces: string[];
  harnessSizeMiB: number;
  precious: { namespace: string; mountpoint: string; file: string; sizeMiB: number };
}

/** Picks the regions (by size: NVDIMM 0 is the big one) and returns the namespace layout. */
export function planLabNamespaces(regions: readonly NdctlRegion[]): ProvisionPlan {
  if (regions.length !== 2) throw new Error(`expected 2 pmem regions, found ${regions.length}: ${regions.map((r) => r.dev).join(' ')}`);
  const [big, small] = [...regions].sort((a, b) => b.size - a.size);
  if (!big || !small) throw new Error('unreachable');
  return {
    big: big.dev,
    small: small.dev,
    harnessNamespaces: ['daxh0', 'daxh1'],
    harnessSizeMiB: 512,
    precious: { namespace: 'precious', mountpoint: '/srv/precious', file: '/srv/precious/data.bin', sizeMiB: 8 },
  };
}

function tail(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

function readTail(path: string, n: number): string {
  try {
    // The log holds the console's raw bytes: carriage returns and escape sequences.
    return tail(readFileSync(path, 'utf8').replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''), n);
  } catch {
    return '(no console log)';
  }
}

async function findFreePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// A sparse file of the backend's size: QEMU maps it whole (share=on), and zeroes are what a
// fresh NVDIMM holds (no labels, no namespaces).
function createNvdimmFile(path: string, sizeMiB: number): void {
  rmSync(path, { force: true });
  const fd = openSync(path, 'w', 0o600);
  try {
    ftruncateSync(fd, sizeMiB * 1024 * 1024);
  } finally {
    closeSync(fd);
  }
}

/** Boots the lab VM on an overlay of image, provisions its NVDIMMs, and returns it running. */
export async function startLabVm(opts: { image: LabImage; workDir: string; log: (s: string) => void; bootTimeoutMs?: number }): Promise<LabVm> {
  const { image, workDir, log } = opts;
  const bootTimeoutMs = opts.bootTimeoutMs ?? 240_000;
  mkdirSync(workDir, { recursive: true });
  const overlay = join(workDir, 'root.qcow2');
  const consoleSock = join(workDir, 'console.sock');
  const monitorSock = join(workDir, 'monitor.sock');
  const consoleLog = join(workDir, 'console-raw.log');
  const knownHosts = join(workDir, 'known_hosts');
  for (const f of [overlay, consoleSock, monitorSock, consoleLog]) rmSync(f, { force: true });

  // The VM never writes to the cached disk: all writes land in this overlay.
  const ov = await runCommand({ argv: ['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', image.disk, overlay], timeoutMs: 30_000 });
  if (ov.exitCode !== 0) throw new HarnessError('boot', `qemu-img create failed: ${ov.stderr.trim()}`);
  const nvdimmFiles = LAB_NVDIMMS.map((nv, i) => {
    const f = join(workDir, `nvdimm${i}.img`);
    createNvdimmFile(f, nv.sizeMiB);
    return f;
  });

  const hostPub = readFileSync(labImagePaths(image.dir).hostPub, 'utf8').trim();
  const hostKeyLine = hostPub.split(/\s+/).slice(0, 2).join(' ');
  const fp = await runCommand({ argv: ['ssh-keygen', '-lf', labImagePaths(image.dir).hostPub], timeoutMs: 10_000 });
  const hostKeyFingerprint = parseFingerprint(fp.stdout);
  const port = await findFreePort();
  // The known_hosts entry names the forwarded port: OpenSSH looks keys up as [host]:port.
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKeyLine}\n`, { mode: 0o600 });
  const target: SshTarget = { port, identity: image.key, knownHosts };

  const plan = planLabQemu({ image, overlay, nvdimmFiles, sshPort: port, consoleSock, consoleLog, monitorSock });
  // setpriv --pdeathsig KILL: QEMU dies with the test process, even after a kill -9 of it.
  const qemuArgv = ['setpriv', '--pdeathsig', 'KILL', '--', ...plan.argv];
  writeFileSync(join(workDir, 'qemu-argv.txt'), `${shellQuote(qemuArgv)}\n`);
  log(`lab VM: ${shellQuote(plan.argv)}`);
  const qemuErr = join(workDir, 'qemu-stderr.log');
  const errFd = openSync(qemuErr, 'w');
  const started = performance.now();
  const child: ChildProcess = spawn(qemuArgv[0] as string, qemuArgv.slice(1), { stdio: ['ignore', errFd, errFd] });
  closeSync(errFd);
  let exitText: string | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, sig) => {
      exitText = sig ? `killed by ${sig}` : `exit code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      exitText = `could not start: ${err.message}`;
      resolve();
    });
  });

  const stop = async (): Promise<void> => {
    if (exitText !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };

  const ssh = async (remote: string, timeoutMs: number, input?: string): Promise<ProcessResult> => await runCommand(planLabSsh(target, remote, timeoutMs, input));

  const waitForSsh = async (timeoutMs = bootTimeoutMs): Promise<number> => {
    const t0 = performance.now();
    const end = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < end) {
      if (exitText !== null) break;
      const r = await ssh('true', Math.min(15_000, Math.max(1000, end - Date.now())));
      if (r.exitCode === 0) return Math.round(performance.now() - t0);
      last = r.timedOut ? 'ssh timed out' : r.stderr.trim();
      // A host key mismatch or a refused key will not fix itself: stop at once.
      if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|Permission denied/.test(last)) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const why = exitText !== null ? `QEMU ${exitText}: ${readTail(qemuErr, 5)}` : `no SSH after ${Math.round(timeoutMs / 1000)} s (last: ${last})`;
    throw new HarnessError('boot', `lab VM: ${why}`, { hint: `read the console log ${consoleLog}`, detail: readTail(consoleLog, 40) });
  };

  const sudo = async (argv: string[], timeoutMs = 60_000, input?: string): Promise<string> => {
    const r = await ssh(planSudoLine(argv, timeoutMs), timeoutMs + 10_000, input);
    if (r.exitCode !== 0) {
      throw new HarnessError('guest', `lab VM provisioning: ${shellQuote(argv)} failed (exit ${r.exitCode ?? r.signal}${r.timedOut ? ', timed out' : ''})`, {
        detail: tail(`${r.stdout}\n${r.stderr}`, 20),
      });
    }
    return r.stdout;
  };

  try {
    const bootMs = await waitForSsh(bootTimeoutMs);
    log(`lab VM: SSH on 127.0.0.1:${port} after ${((performance.now() - started) / 1000).toFixed(1)} s (${bootMs} ms polling)`);
    const precious = await provision(sudo, log);
    log(`lab VM: provisioned in ${((performance.now() - started) / 1000 - bootMs / 1000).toFixed(1)} s`);
    const { power, consoleCommand } = planLabPower(monitorSock, consoleSock);
    return {
      host: '127.0.0.1',
      port,
      user: 'lab',
      identity: image.key,
      hostKeyFingerprint,
      hostKeyLine,
      knownHosts,
      consoleSock,
      monitorSock,
      consoleLog,
      consoleCommand,
      power,
      precious,
      harnessNamespaces: ['daxh0', 'daxh1'],
      qemuArgv,
      sshExec: async (cmd: string, timeoutMs = 60_000) => {
        const r = await ssh(cmd, timeoutMs);
        if (r.timedOut) throw new HarnessError('timeout', `lab VM: ssh command timed out after ${timeoutMs} ms: ${cmd.slice(0, 120)}`);
        return { exitCode: r.exitCode ?? 255, stdout: r.stdout, stderr: r.stderr };
      },
      waitForSsh,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

// What a lab admin did once on the real machine: labels on both DIMMs, two empty fsdax
// namespaces for the harness on DIMM 0, and on DIMM 1 a filesystem with data that must
// survive whatever the harness does (mounted from fstab, so it is there after every boot).
async function provision(sudo: (argv: string[], timeoutMs?: number, input?: string) => Promise<string>, log: (s: string) => void): Promise<LabVm['precious']> {
  // udev loads nfit (ACPI0012) on its own; sshd may be up before the regions are.
  let regions: NdctlRegion[] = [];
  for (let i = 0; i < 60; i++) {
    regions = parseNdctlList<NdctlRegion>(await sudo(['ndctl', 'list', '-R']));
    if (regions.length >= 2) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const layout = planLabNamespaces(regions);
  // Fresh NVDIMM files have no label index: until init-labels the kernel treats them as
  // label-less and names cannot be stored. init-labels needs the regions disabled.
  await sudo(['ndctl', 'disable-region', 'all']);
  await sudo(['ndctl', 'init-labels', '-f', 'all']);
  await sudo(['ndctl', 'enable-region', 'all']);
  for (const name of layout.harnessNamespaces) {
    await sudo(['ndctl', 'create-namespace', '-r', layout.big, '-m', 'fsdax', '-n', name, '-s', `${layout.harnessSizeMiB}M`]);
  }
  const pre = parseNdctlList<NdctlNamespace>(await sudo(['ndctl', 'create-namespace', '-r', layout.small, '-m', 'fsdax', '-n', layout.precious.namespace]))[0];
  if (!pre?.blockdev) throw new HarnessError('guest', 'lab VM provisioning: create-namespace printed no blockdev for precious');
  const dev = `/dev/${pre.blockdev}`;
  // -b 4096: for a device this small mke2fs picks 1 KiB blocks, and ext4 refuses DAX with
  // blocks smaller than a page ("unsupported blocksize for DAX").
  await sudo(['mkfs.ext4', '-q', '-b', '4096', '-L', 'precious', dev]);
  const uuid = (await sudo(['blkid', '-s', 'UUID', '-o', 'value', dev])).trim();
  if (!/^[0-9a-f-]{36}$/.test(uuid)) throw new HarnessError('guest', `lab VM provisioning: blkid gave no UUID for ${dev}: ${uuid}`);
  await sudo(['mkdir', '-p', layout.precious.mountpoint]);
  // No nofail: like a lab machine whose admin relies on the mount, boot (and so sshd) waits
  // for it; SSH answering means the precious data is mounted.
  await sudo(['tee', '-a', '/etc/fstab'], 30_000, `UUID=${uuid}\t${layout.precious.mountpoint}\text4\tdax\t0\t0\n`);
  await sudo(['systemctl', 'daemon-reload']);
  await sudo(['mount', layout.precious.mountpoint]);
  await sudo(['dd', 'if=/dev/urandom', `of=${layout.precious.file}`, 'bs=1M', `count=${layout.precious.sizeMiB}`, 'status=none', 'conv=fsync']);
  await sudo(['sync']);
  const sha256 = (await sudo(['sha256sum', layout.precious.file])).split(/\s+/)[0] ?? '';
  // The names are only real if the labels took them.
  const ns = parseNdctlList<NdctlNamespace>(await sudo(['ndctl', 'list', '-N']));
  for (const want of [...layout.harnessNamespaces, layout.precious.namespace]) {
    const n = ns.find((x) => x.name === want);
    if (!n || n.mode !== 'fsdax') throw new HarnessError('guest', `lab VM provisioning: namespace ${want} missing or not fsdax in ndctl list -N`, { detail: JSON.stringify(ns) });
  }
  log(`lab VM: namespaces ${ns.map((n) => `${n.name}=${n.dev}/${n.blockdev}`).join(' ')}; precious ${sha256.slice(0, 12)}`);
  return { namespace: layout.precious.namespace, mountpoint: layout.precious.mountpoint, file: layout.precious.file, sha256 };
}
