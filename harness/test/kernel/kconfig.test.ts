import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkKconfig, findUnmetOptions, parseKconfig } from '../../src/kernel/kconfig.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const fragment = readFileSync(join(root, 'kernel-tests', 'dax.config'), 'utf8');
const debian = readFileSync(new URL('../fixtures/kconfig/debian-6.1.0-56-amd64.config', import.meta.url), 'utf8');

t.test('parses values, strings and "is not set"', async (t) => {
  const v = parseKconfig('CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D="x y"\nCONFIG_E=0x10\n# a comment\n');
  t.same([...v], [['CONFIG_A', 'y'], ['CONFIG_B', 'm'], ['CONFIG_C', 'n'], ['CONFIG_D', 'x y'], ['CONFIG_E', '0x10']]);
});

t.test("Debian's 6.1 config against the DAX fragment: what would not stick", async (t) => {
  const misses = findUnmetOptions(parseKconfig(fragment), parseKconfig(debian));
  const byName = new Map(misses.map((m) => [m.option, m]));
  // Facts of that kernel (FIELD-NOTES): no GUP_TEST, DEBUG_VM or DEVTMPFS_MOUNT; pmem and filesystems as modules.
  t.same(byName.get('CONFIG_GUP_TEST'), { option: 'CONFIG_GUP_TEST', wanted: 'y', got: 'n' });
  t.same(byName.get('CONFIG_DEBUG_VM'), { option: 'CONFIG_DEBUG_VM', wanted: 'y', got: 'n' });
  t.same(byName.get('CONFIG_DEVTMPFS_MOUNT'), { option: 'CONFIG_DEVTMPFS_MOUNT', wanted: 'y', got: 'n' });
  t.equal(byName.get('CONFIG_LIBNVDIMM')?.got, 'm');
  t.equal(byName.get('CONFIG_XFS_FS')?.got, 'm');
  t.notOk(byName.has('CONFIG_FS_DAX'), 'FS_DAX=y is met');
  t.notOk(byName.has('CONFIG_ZONE_DEVICE'));
  t.equal(parseKconfig(fragment).size, 95, 'the fragment asks for 95 options');
});

t.test('checkKconfig: an option that cannot be enabled is an error listing it', async (t) => {
  t.doesNotThrow(() => checkKconfig('CONFIG_A=y\n', 'CONFIG_A=y\n', 'build/.config'));
  const err = (() => {
    try {
      checkKconfig('CONFIG_A=y\nCONFIG_GUP_TEST=y\nCONFIG_B=m\n', 'CONFIG_A=y\n# CONFIG_GUP_TEST is not set\nCONFIG_B=y\n', 'build/.config');
    } catch (e) {
      return e;
    }
    return null;
  })();
  t.match(err, { name: 'HarnessError', kind: 'config', message: '2 requested kernel options did not stick in build/.config' });
  t.match((err as { detail: string }).detail, /CONFIG_GUP_TEST: wanted y, got not set\nCONFIG_B: wanted m, got y/);
  t.match((err as { hint: string }).hint, /dependencies/);
});
