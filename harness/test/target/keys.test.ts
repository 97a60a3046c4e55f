import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { generateRunKeys, parseDropbearPublic } from '../../src/target/keys.js';
import { runCommand } from '../../src/core/proc.js';

const fixture = (p: string): string => readFileSync(new URL(`../fixtures/${p}`, import.meta.url), 'utf8');

t.test('parseDropbearPublic on real dropbearkey -y output', async (t) => {
  const text = fixture('dropbearkey/y-ed25519.txt');
  t.match(text, /^Public key portion is:\n/, 'the fixture has the header line');
  t.match(text, /\nFingerprint: SHA256:/, 'and the fingerprint line');
  t.equal(parseDropbearPublic(text), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM+41iXnibpeb7gekv3ogoojBBZk7I4Wub3jDvWT/vwy root@vm');
  t.equal(parseDropbearPublic('Public key portion is:\necdsa-sha2-nistp256 AAAAE2VjZHNh root@vm  \r\nFingerprint: x\n'), 'ecdsa-sha2-nistp256 AAAAE2VjZHNh root@vm', 'ecdsa keys, trimmed');
  t.throws(() => parseDropbearPublic('Public key portion is:\nFingerprint: SHA256:x\n'), /printed no public key line/);
  t.throws(() => parseDropbearPublic(''), /printed no public key line/);
  t.throws(() => parseDropbearPublic('  ssh-ed25519 AAAA indented\n'), /no public key line/, 'only a line that starts with the key type');
});

t.test('generateRunKeys with the real dropbearkey', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'keys-test-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'run', 'keys');
  const keys = await generateRunKeys(dir);

  t.equal(statSync(dir).mode & 0o777, 0o700, 'key directory is 0700');
  for (const f of ['guest_host_ed25519', 'client_ed25519', 'client_ed25519.pub', 'known_host']) {
    t.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is 0600`);
  }

  t.match(keys.hostKeyLine, /^ssh-ed25519 [A-Za-z0-9+/]+=* \S+$/);
  const b64 = keys.hostKeyLine.split(' ')[1] ?? '';
  t.ok(keys.hostKeyBlob.equals(Buffer.from(b64, 'base64')), 'hostKeyBlob is the base64 blob of hostKeyLine');
  t.equal(keys.hostKeyBlob.readUInt32BE(0), 11);
  t.equal(keys.hostKeyBlob.toString('ascii', 4, 15), 'ssh-ed25519', 'the blob is an SSH wire-format ed25519 key');
  t.equal(keys.hostKeyBlob.length, 4 + 11 + 4 + 32);
  t.ok(keys.hostKeyDropbear.equals(readFileSync(join(dir, 'guest_host_ed25519'))), 'the dropbear private key as written');
  t.equal(readFileSync(join(dir, 'known_host'), 'utf8'), `${keys.hostKeyLine}\n`);

  // The blob the client will insist on is the public half of the key the guest will use.
  const again = await runCommand({ argv: ['dropbearkey', '-y', '-f', join(dir, 'guest_host_ed25519')], timeoutMs: 10_000 });
  t.equal(parseDropbearPublic(again.stdout), keys.hostKeyLine);

  t.match(keys.clientPublicLine, /^ssh-ed25519 AAAA[A-Za-z0-9+/]+=* dax-harness$/);
  t.equal(readFileSync(join(dir, 'client_ed25519.pub'), 'utf8'), `${keys.clientPublicLine}\n`);
  t.equal(readFileSync(join(dir, 'client_ed25519'), 'utf8'), keys.clientPrivate);
  const priv = ssh2.utils.parseKey(keys.clientPrivate);
  if (priv instanceof Error) {
    t.fail(`client private key does not parse: ${priv.message}`);
  } else {
    const k = Array.isArray(priv) ? priv[0] : priv;
    t.equal(k?.type, 'ssh-ed25519');
    t.ok(k?.isPrivateKey(), 'a private key');
    t.equal(k?.getPublicSSH().toString('base64'), keys.clientPublicLine.split(' ')[1], 'matching the public line');
  }

  // A second boot in the same directory gets fresh keys (dropbearkey itself refuses to overwrite).
  const second = await generateRunKeys(dir);
  t.not(second.hostKeyLine, keys.hostKeyLine, 'a new host key');
  t.not(second.clientPublicLine, keys.clientPublicLine, 'a new client key');
  t.equal(readFileSync(join(dir, 'known_host'), 'utf8'), `${second.hostKeyLine}\n`);
});
