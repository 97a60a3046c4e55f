// The seam between a run and the machine it tests on. A QEMU guest (target/qemu/) and a lab
// machine reached over SSH (target/lab/) are two implementations of it; the suite, the judges
// and the run loop only ever see these types.
import type { FsType, MountedFs } from './guest-setup.js';
import type { RefcountModel } from '../kernel/model.js';
import type { SshTarget } from './ssh-target.js';

/** The kernel's console as a target keeps it: everything since a mark, and the last lines. */
export interface TargetConsole {
  /** A marker into the console text, for sinceMark. */
  mark(): number;
  sinceMark(mark: number): string;
  tail(n?: number): string;
}

/** One boot of a machine under test: the connection to it and its console. */
export interface TargetHost {
  /** What the harness calls it in messages: "QEMU", "lab machine daxlab". */
  readonly name: string;
  readonly ssh: SshTarget;
  readonly console: TargetConsole;
  /** Why the machine is known to be gone (QEMU exited), or null while it may still run. */
  exited(): string | null;
}

/** Where a target keeps what the tests need; the test argv builders get these. */
export interface TargetPaths {
  /** The helper binaries. */
  bin: string;
  /** The slow block device (every read completes after 2 s). */
  slowDev: string;
  /** Scratch space on a non-DAX filesystem that the harness owns. */
  tmp: string;
}

/** A booted, set-up target: ready for tests. */
export interface LiveTarget {
  target: TargetHost;
  /** Which boot of the session this is (1-based). */
  boot: number;
  model: RefcountModel;
  mounts: Map<FsType | string, MountedFs>;
  /** /proc/sys/kernel/tainted once the target was set up. */
  taintAtSetup: number;
  /** Set once the slow device was seen. */
  slowDevReady: boolean;
  paths: TargetPaths;
}

/** What a run keeps of each boot. */
export interface BootRecord {
  n: number;
  bootToSshMs: number;
  setupMs: number;
  milestones: Record<string, number | null>;
  /** The QEMU command line (empty on a lab machine). */
  qemu: string[];
  /** On a lab machine: the kernel that came up, and how it was proven. */
  proof?: Record<string, string>;
}

/**
 * The machine a run tests on, kept across tests and replaced when it can no longer be trusted
 * (a crash, a task left in D state, a lost connection, a poisoned page): a QEMU guest is
 * booted afresh, a lab machine is rebooted into its default kernel and set up again.
 */
export interface TargetSession {
  /** `qemu`, or `lab:NAME`: what run.json calls the target. */
  readonly label: string;
  /** Takes the target before the first test (a lab machine's lease and checks); refusals are thrown here. */
  open(): Promise<void>;
  /** Returns a booted, set-up target, bringing one up if there is none. */
  ensure(): Promise<LiveTarget>;
  readonly current: LiveTarget | null;
  readonly boots: BootRecord[];
  /** Lets the current boot go; the next ensure() brings up a fresh one. */
  discard(): Promise<void>;
  /** Ends the session: the target is left as it was found (a lab machine restored, its lease released). */
  close(): Promise<void>;
  /** What a run.json keeps of the session beyond its boots (restore steps and timings). */
  record(): Record<string, unknown>;
}
