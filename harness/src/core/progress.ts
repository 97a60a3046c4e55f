// Progress for unattended runs (CI, Buildbot): every log line reaches stderr, and when nothing
// has been said for a minute the last step is repeated with how long it has been running, so a
// 20-minute cold build or a slow test never looks hung.
export interface Progress {
  /** Writes a line and makes it the current step. */
  log: (s: string) => void;
  /** Stops the heartbeat (the process may then exit). */
  stop: () => void;
}

/** Returns a progress logger writing `dax-harness: ...` lines through write, with a heartbeat
 *  every intervalMs of silence (0: none). */
export function startProgress(write: (line: string) => void, intervalMs: number, now: () => number = () => Date.now()): Progress {
  let step = 'starting';
  let stepAt = now();
  let lastAt = stepAt;
  const log = (s: string): void => {
    step = s;
    stepAt = now();
    lastAt = stepAt;
    write(`dax-harness: ${s}`);
  };
  let timer: NodeJS.Timeout | null = null;
  if (intervalMs > 0) {
    timer = setInterval(() => {
      const t = now();
      if (t - lastAt < intervalMs) return;
      lastAt = t;
      write(`dax-harness: still working (${Math.round((t - stepAt) / 1000)} s since: ${step.length > 120 ? `${step.slice(0, 119)}…` : step})`);
    }, Math.max(1000, Math.floor(intervalMs / 4)));
    // The heartbeat never keeps the process alive on its own.
    timer.unref();
  }
  return {
    log,
    stop: () => {
      if (timer) clearInterval(timer);
    },
  };
}
