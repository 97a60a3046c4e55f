// Booting the kernel under test one-shot: the command line, the initrd choice, and the proof.
import t from 'tap';
import { checkBootProof, chooseInitrd, parseBzImageVersion, planKexecCmdline, planKexecLoad, versionMatches } from '../../../src/target/lab/kexec.js';

// A setup header as the x86 boot protocol lays it out: "HdrS" at 0x202, the version string's
// offset (from 0x200) at 0x20e.
function bzImage(version: string): Buffer {
  const b = Buffer.alloc(0x600);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x300, 0x20e);
  b.write(`${version}\0`, 0x500, 'latin1');
  return b;
}
const BANNER = '6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-20)';
const PROC = 'Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-20)';

t.test('the version banner of a bzImage, and /proc/version against it', async (t) => {
  t.equal(parseBzImageVersion(bzImage(BANNER)), BANNER);
  t.equal(parseBzImageVersion(Buffer.alloc(0x600)), null, 'not a bzImage');
  t.ok(versionMatches(BANNER, PROC));
  t.notOk(versionMatches(BANNER, PROC.replace('6.1.192-3', '6.1.192-2')), 'another build of the same release');
  t.notOk(versionMatches('6.1.192 (dax@harness) #1 SMP', 'Linux version 6.1.192 (dax@harness) (gcc) #2 SMP'), 'another build number');
});

t.test('the command line: the machine\'s own, without its boot loader word or an old token, plus ours', async (t) => {
  t.equal(
    planKexecCmdline('BOOT_IMAGE=/boot/vmlinuz-6.1.0-57-amd64 root=UUID=abc ro quiet dax_harness.token=old', ['log_buf_len=8M'], 'feed'),
    'root=UUID=abc ro quiet log_buf_len=8M dax_harness.token=feed',
  );
  t.same(planKexecLoad('/var/lib/dax-harness/kernels/k/bzImage', '/boot/initrd.img-6.1.0-57-amd64', 'root=/dev/vda').argv, [
    'kexec', '-l', '/var/lib/dax-harness/kernels/k/bzImage', '--initrd=/boot/initrd.img-6.1.0-57-amd64', '--command-line=root=/dev/vda',
  ]);
});

t.test('the initrd: the release\'s own; the default\'s only for a kernel with everything built in', async (t) => {
  const has = (ps: string[]) => (p: string) => ps.includes(p);
  t.equal(chooseInitrd('6.1.0-57-amd64', '6.1.0-57-amd64', false, has(['/boot/initrd.img-6.1.0-57-amd64'])), '/boot/initrd.img-6.1.0-57-amd64');
  t.equal(chooseInitrd('6.1.192', '6.1.0-57-amd64', true, has(['/boot/initrd.img-6.1.0-57-amd64'])), '/boot/initrd.img-6.1.0-57-amd64');
  t.equal(chooseInitrd('6.12.117+deb13-amd64', '6.1.0-57-amd64', false, has(['/boot/initrd.img-6.1.0-57-amd64'])), null, 'a modular kernel of another release');
});

t.test('the proof: a new boot, this boot\'s token, the build\'s release and banner', async (t) => {
  const before = { bootId: 'b1' };
  const want = { token: 'feed', banner: BANNER, release: '6.1.0-57-amd64' };
  const now = { release: '6.1.0-57-amd64', bootId: 'b2', version: PROC, cmdline: 'root=/dev/vda dax_harness.token=feed' };
  t.equal(checkBootProof(now, before, want), null);
  t.match(checkBootProof({ ...now, bootId: 'b1' }, before, want), /did not change: the machine did not reboot/);
  t.match(checkBootProof({ ...now, cmdline: 'root=/dev/vda' }, before, want), /token is not in \/proc\/cmdline .*another kernel came up/);
  t.match(checkBootProof({ ...now, cmdline: 'root=/dev/vda dax_harness.token=feedbeef' }, before, want), /token is not in/, 'a prefix is not the token');
  t.match(checkBootProof({ ...now, version: PROC.replace('#1', '#2') }, before, want), /is not the build's/);
});
