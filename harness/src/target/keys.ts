// Per-run SSH keys: a fresh host key for the guest's dropbear and a fresh client key. Both
// stay in the run's private directory (0700, files 0600) and are never logged.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { runChecked } from '../core/proc.js';
import { parsePublicKeyLine } from './ssh-target.js';

export interface RunKeys {
  /** dropbear-format host private key, for the guest image. */
  hostKeyDropbear: Buffer;
  /** Raw public key blob the client must see from the guest. */
  hostKeyBlob: Buffer;
  hostKeyLine: string;
  clientPrivate: string;
  clientPublicLine: string;
}

/** Returns the "ssh-..." line from `dropbearkey -y` output. */
export function parseDropbearPublic(text: string): string {
  const line = text.split('\n').find((l) => /^ssh-|^ecdsa-/.test(l));
  if (!line) throw new Error('dropbearkey -y printed no public key line');
  return line.trim();
}

/** Generates both key pairs into dir (created 0700). */
export async function generateRunKeys(dir: string): Promise<RunKeys> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hostPath = join(dir, 'guest_host_ed25519');
  // dropbearkey refuses to overwrite; a key left by an earlier boot is replaced.
  rmSync(hostPath, { force: true });
  await runChecked({ argv: ['dropbearkey', '-t', 'ed25519', '-f', hostPath], timeoutMs: 30_000 }, 'generating the guest host key');
  const pub = await runChecked({ argv: ['dropbearkey', '-y', '-f', hostPath], timeoutMs: 30_000 }, 'reading the guest host key');
  const hostKeyLine = parseDropbearPublic(pub.stdout);
  const client = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'dax-harness' });
  writeFileSync(join(dir, 'client_ed25519'), client.private, { mode: 0o600 });
  writeFileSync(join(dir, 'client_ed25519.pub'), `${client.public}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'known_host'), `${hostKeyLine}\n`, { mode: 0o600 });
  return {
    hostKeyDropbear: readFileSync(hostPath),
    hostKeyBlob: parsePublicKeyLine(hostKeyLine).blob,
    hostKeyLine,
    clientPrivate: client.private,
    clientPublicLine: client.public.trim(),
  };
}
