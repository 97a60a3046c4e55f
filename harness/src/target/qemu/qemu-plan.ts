// Pure planning of a QEMU command line from a machine profile. Nothing here starts a process.
import type { CommandPlan } from '../../core/proc.js';

export interface NvdimmSpec {
  sizeMiB: number;
  /** Label area size; absent = label-less NVDIMM (namespace comes up raw). */
  labelKiB?: number;
}

export interface QemuProfile {
  name: string;
  description: string;
  memoryMiB: number;
  cpus: number;
  nvdimms: NvdimmSpec[];
  /** e820 ranges declared persistent with memmap=SIZE!OFFSET (each becomes a /dev/pmemN). */
  legacyPmem?: { sizeMiB: number; offsetMiB: number }[];
}

export type Accel = 'kvm' | 'tcg';

export interface QemuPlanInput {
  profile: QemuProfile;
  accel: Accel;
  kernel: string;
  initrd: string;
  /** Extra kernel command-line words appended after the harness's own. */
  extraAppend?: string[];
  sshPort: number;
  /** One backing file per NVDIMM, in profile order. */
  pmemFiles: string[];
  qemuBinary?: string;
}

// Kernel command line the harness needs:
// - console=ttyS0: the serial console is the evidence of panics and boot failures.
// - panic=-1 with -no-reboot: a panic reboots at once, which makes QEMU exit, which we see.
// - random.trust_cpu=on: without it mkfs and ndctl wait ~10 s for entropy under TCG.
// - printk.devkmsg=on: /dev/kmsg writes are rate limited by default, and the harness's test
//   markers must never be dropped.
// - loglevel=5: warnings and worse reach the serial console (the evidence when a guest
//   dies); the chatty info lines of a boot cost time on an emulated UART.
// - oops=panic is NOT set: an Oops in one test should fail that test, not the run.
// log_buf_len: the whole boot's log is judged (incidents outside every test window too), and
// the default 128 KiB ring of a distro kernel wraps within a suite run; 8 MiB never does.
const BASE_APPEND = ['console=ttyS0,115200', 'panic=-1', 'random.trust_cpu=on', 'printk.devkmsg=on', 'loglevel=5', 'log_buf_len=8M', 'rdinit=/init'];

/** Returns the kernel command line for a profile. */
export function planKernelAppend(profile: QemuProfile, extra: string[] = []): string {
  const words = [...BASE_APPEND];
  for (const r of profile.legacyPmem ?? []) {
    // memmap=SIZE!OFFSET marks RAM as persistent memory (e820 type 12) for nd_e820.
    words.push(`memmap=${r.sizeMiB}M!${r.offsetMiB}M`);
  }
  return [...words, ...extra].join(' ');
}

/** Returns the QEMU argv for a profile; the only side effect free way to see what will run. */
export function planQemu(input: QemuPlanInput): CommandPlan {
  const { profile } = input;
  if (input.pmemFiles.length !== profile.nvdimms.length) {
    throw new Error(`planQemu: profile ${profile.name} has ${profile.nvdimms.length} NVDIMMs but ${input.pmemFiles.length} backing files were given`);
  }
  if (!Number.isInteger(input.sshPort) || input.sshPort < 1 || input.sshPort > 65535) {
    throw new Error(`planQemu: bad ssh port ${input.sshPort}`);
  }
  const hasNvdimm = profile.nvdimms.length > 0;
  const argv = [
    input.qemuBinary ?? 'qemu-system-x86_64',
    '-machine', hasNvdimm ? `pc,nvdimm=on,accel=${input.accel}` : `pc,accel=${input.accel}`,
    // Under TCG "max" would emulate every feature and slow things down; qemu64 is enough for a
    // generic distro kernel. Under KVM the host CPU is cheapest.
    '-cpu', input.accel === 'kvm' ? 'host' : 'qemu64',
    '-smp', String(profile.cpus),
    // qboot is a minimal firmware that only loads a Linux kernel: ~1 s faster than SeaBIOS
    // under TCG, and the harness never boots from a disk.
    '-bios', 'qboot.rom',
  ];
  if (hasNvdimm) {
    const total = profile.nvdimms.reduce((s, n) => s + n.sizeMiB, 0);
    // NVDIMMs are hot-pluggable memory devices: they need slots and maxmem headroom.
    argv.push('-m', `${profile.memoryMiB}M,slots=${profile.nvdimms.length + 1},maxmem=${profile.memoryMiB + total + 1024}M`);
  } else {
    argv.push('-m', `${profile.memoryMiB}M`);
  }
  profile.nvdimms.forEach((nv, i) => {
    // share=on: guest writes reach the file (a real persistence domain). align=16M: QEMU
    // places each NVDIMM at its backend's alignment, and a label area (kept at the end of
    // the backend) shortens the device, so with 2M the next region starts off the 16 MiB
    // boundary Linux wants for namespaces ("misaligned to 16M").
    argv.push('-object', `memory-backend-file,id=pmem${i},share=on,mem-path=${input.pmemFiles[i]},size=${nv.sizeMiB}M,align=16M`);
    const label = nv.labelKiB ? `,label-size=${nv.labelKiB}K` : '';
    argv.push('-device', `nvdimm,id=nvdimm${i},memdev=pmem${i}${label}`);
  });
  argv.push(
    '-kernel', input.kernel,
    '-initrd', input.initrd,
    '-append', planKernelAppend(profile, input.extraAppend),
    // Only 127.0.0.1 is forwarded: a guest sshd with a test key must not face the network.
    '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${input.sshPort}-:22`,
    // romfile= skips the iPXE option ROM: SeaBIOS would spend ~1 s under TCG running it.
    '-device', 'virtio-net-pci,netdev=net0,romfile=',
    '-display', 'none',
    '-monitor', 'none',
    '-serial', 'stdio',
    '-no-reboot',
  );
  return { argv };
}
