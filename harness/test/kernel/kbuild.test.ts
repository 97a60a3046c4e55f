// The kernel build's pure half: cache keys and directories, the make and merge_config plans,
// reading a failed build's log, and finding a finished build in a cache directory.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countsAsStep, findBuildError, findBuiltKernel, planKbuildPaths, planKconfig, planMake, type KbuildInput } from '../../src/kernel/kbuild.js';

const fragmentText = 'CONFIG_FS_DAX=y\nCONFIG_ZONE_DEVICE=y\nCONFIG_LIBNVDIMM=y\n';
function input(over: Partial<KbuildInput> = {}): KbuildInput {
  return {
    tree: { name: 'debian-6.1', workDir: '/cache/src/debian-6.1' },
    commit: '99f17f2c0ffee0000000000000000000000000aa',
    treeId: '4b825dc642cb6eb9a060e54bf8d69288fbee4904',
    baseConfig: 'tinyconfig',
    fragmentPath: '/repo/kernel-tests/dax.config',
    fragmentText,
    cacheDir: '/cache',
    jobs: 2,
    toolchain: 'gcc (Debian 12.2.0-14+deb12u1) 12.2.0',
    ...over,
  };
}

t.test('planKbuildPaths: keyed by config and tree content', async (t) => {
  const a = planKbuildPaths(input());
  const gcc13 = planKbuildPaths(input({ toolchain: 'gcc (Debian 13.1.0-1) 13.1.0' }));
  t.not(gcc13.configKey, a.configKey, 'another compiler: another config key');
  t.not(gcc13.outDir, a.outDir, 'and another cached kernel');
  t.same(planKbuildPaths(input()), a, 'same inputs, same paths and keys');
  t.match(a.configKey, /^[0-9a-f]{12}$/);
  t.match(a.key, /^[0-9a-f]{16}$/);
  t.equal(a.outDir, `/cache/kernels/build-${a.key}`);
  t.match(a.objDir, new RegExp(`^/cache/obj/[0-9a-f]{8}-${a.configKey}$`));

  const frag = planKbuildPaths(input({ fragmentText: `${fragmentText}CONFIG_DEBUG_VM=y\n` }));
  t.not(frag.configKey, a.configKey, 'another fragment text: another config key');
  t.not(frag.key, a.key, 'and another build key');
  t.not(frag.objDir, a.objDir, 'and its own object directory (configs never share one)');
  t.not(planKbuildPaths(input({ baseConfig: 'defconfig' })).configKey, a.configKey, 'the base config is part of the key');

  const tree = planKbuildPaths(input({ treeId: 'f'.repeat(40) }));
  t.equal(tree.objDir, a.objDir, 'another commit of the same checkout builds in the same O= directory');
  t.equal(tree.configKey, a.configKey);
  t.not(tree.outDir, a.outDir, 'but its result is kept apart');

  t.same(planKbuildPaths(input({ commit: 'e'.repeat(40) })), a, 'the key is the tree content, not the commit id');
  t.same(planKbuildPaths(input({ fragmentPath: '/elsewhere/dax.config', jobs: 8 })), a, 'nor the fragment path or -j');
  t.not(planKbuildPaths(input({ tree: { name: '/src/linux', workDir: '/cache/work/abc' } })).objDir, a.objDir, 'each checkout has its own O= directory');
});

t.test('planKconfig: base config, merge of the fragment, olddefconfig', async (t) => {
  const i = input({ baseConfig: 'defconfig' });
  const obj = '/cache/obj/x';
  const p = planKconfig(i, obj);
  t.equal(p.length, 3);
  t.same(p[0]!.argv, ['make', '-C', '/cache/src/debian-6.1', 'O=/cache/obj/x', 'defconfig']);
  t.same(p[1]!.argv, ['/cache/src/debian-6.1/scripts/kconfig/merge_config.sh', '-m', '-O', obj, '/cache/obj/x/.config', '/repo/kernel-tests/dax.config']);
  t.equal(p[1]!.cwd, '/cache/src/debian-6.1', 'merge_config.sh runs in the source tree');
  t.same(p[2]!.argv, ['make', '-C', '/cache/src/debian-6.1', 'O=/cache/obj/x', 'olddefconfig']);
  t.equal(p[0]!.env?.KBUILD_BUILD_USER, 'dax-harness', 'a fixed build identity');
  t.equal(p[0]!.env?.KBUILD_BUILD_TIMESTAMP, '2000-01-01');
  t.equal(planKconfig(input(), obj)[0]!.argv.at(-1), 'tinyconfig');
  for (const step of p) t.ok((step.timeoutMs ?? 0) > 0, `bounded: ${step.argv.at(-1)}`);
});

t.test('planMake: O=, -jN, empty LOCALVERSION, ccache, bzImage and modules', async (t) => {
  const p = planMake(input({ jobs: 7 }), '/cache/obj/x', '/cache');
  t.same(p.argv, ['make', '-C', '/cache/src/debian-6.1', 'O=/cache/obj/x', '-j7', 'LOCALVERSION=', 'CC=ccache gcc', 'bzImage', 'modules']);
  t.equal(p.env?.CCACHE_BASEDIR, '/cache', 'ccache sees paths relative to the cache');
  t.equal(p.env?.CCACHE_NOHASHDIR, '1');
  t.equal(p.env?.KBUILD_BUILD_HOST, 'dax-harness');
  t.ok((p.timeoutMs ?? 0) >= 3600_000, 'a cold build on two cores is given hours');
  t.equal(p.argv.filter((a) => a.startsWith('CC=')).length, 1, 'CC=ccache gcc is one argument, not a shell string');
});

// A failing build as make prints it with -j2: other objects still finish around the error.
const gccLog = `$ make -C /cache/src/debian-6.1 O=/cache/obj/x -j2 LOCALVERSION= 'CC=ccache gcc' bzImage modules
make[1]: Entering directory '/cache/obj/x'
  SYNC    include/config/auto.conf.cmd
  GEN     Makefile
  CC      mm/gup.o
  CC      mm/memory.o
  CC      fs/dax.o
  AR      mm/built-in.a
fs/dax.c: In function 'dax_insert_entry':
fs/dax.c:417:9: error: implicit declaration of function 'dax_associate_entry_x'; did you mean 'dax_associate_entry'? [-Werror=implicit-function-declaration]
  417 |         dax_associate_entry_x(new_entry, mapping, vmf->vma, vmf->address, shared);
      |         ^~~~~~~~~~~~~~~~~~~~~
      |         dax_associate_entry
cc1: some warnings being treated as errors
make[3]: *** [/cache/src/debian-6.1/scripts/Makefile.build:250: fs/dax.o] Error 1
make[2]: *** [/cache/src/debian-6.1/scripts/Makefile.build:500: fs] Error 2
make[1]: *** [/cache/src/debian-6.1/Makefile:2012: .] Error 2
make[1]: Leaving directory '/cache/obj/x'
make: *** [Makefile:226: __sub-make] Error 2
`;

t.test('findBuildError: the first compiler error with the lines around it', async (t) => {
  const e = findBuildError(gccLog);
  const lines = e.split('\n');
  t.equal(lines[3], lines.find((l) => l.includes('error:')), 'three lines of context come first');
  t.match(lines[3], /^fs\/dax\.c:417:9: error: implicit declaration/);
  t.equal(lines[2], "fs/dax.c: In function 'dax_insert_entry':", 'the function the error is in');
  t.match(e, /417 \|\s+dax_associate_entry_x/, 'the source line gcc quotes');
  t.match(e, /make\[3\]: \*\*\* .*fs\/dax\.o\] Error 1/, 'and the make line that names the object');
  t.notMatch(e, /CC {6}mm\/gup\.o/, 'not the objects built long before');
  t.notMatch(e, /Entering directory/);
  t.ok(lines.length <= 13);
});

t.test('findBuildError: a make-only failure, and a log without any error', async (t) => {
  const make = [
    "make[1]: Entering directory '/cache/obj/x'",
    '  GEN     Makefile',
    '  HOSTCC  scripts/basic/fixdep',
    '  SYNC    include/config/auto.conf.cmd',
    '  CC      scripts/mod/empty.o',
    "make[2]: *** No rule to make target 'arch/x86/boot/bzImage'.  Stop.",
    'make[1]: *** [/cache/src/debian-6.1/Makefile:2012: bzImage] Error 2',
    'make: *** [Makefile:226: __sub-make] Error 2',
  ].join('\n');
  const e = findBuildError(make);
  t.match(e.split('\n')[3], /^make\[2\]: \*\*\* No rule to make target 'arch\/x86\/boot\/bzImage'/, 'the first *** line, after three of context');
  t.notMatch(e, /Entering directory/);
  t.match(e, /__sub-make\] Error 2/);

  const quiet = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n');
  const tail = findBuildError(quiet).split('\n');
  t.equal(tail.length, 20, 'no error line: the last twenty lines');
  t.equal(tail[0], 'line 11');
  t.equal(tail.at(-1), 'line 30');
});

t.test('countsAsStep: kbuild object lines count, make chatter does not', async (t) => {
  for (const l of ['  CC      mm/gup.o', '  LD      vmlinux', '  AS      arch/x86/entry/entry_64.o', '  AR      fs/built-in.a', '  HOSTCC  scripts/kconfig/conf.o', '  OBJCOPY arch/x86/boot/setup.bin', '  GEN     Makefile', '  CC [M]  fs/xfs/xfs_file.o']) {
    t.ok(countsAsStep(l), JSON.stringify(l));
  }
  for (const l of ["make[1]: Entering directory '/cache/obj/x'", '  SYNC    include/config/auto.conf.cmd', '  LDS     arch/x86/kernel/vmlinux.lds', 'CC      mm/gup.o', "fs/dax.c:417:9: error: 'x' undeclared", '']) {
    t.notOk(countsAsStep(l), JSON.stringify(l));
  }
});

t.test('findBuiltKernel: null until build.json exists, then the cached kernel', async (t) => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'dax-kbuild-'));
  t.teardown(() => rmSync(cacheDir, { recursive: true, force: true }));
  const i = input({ cacheDir });
  t.equal(findBuiltKernel(i), null, 'no output directory');
  const paths = planKbuildPaths(i);
  mkdirSync(paths.outDir, { recursive: true });
  writeFileSync(join(paths.outDir, 'bzImage'), '');
  t.equal(findBuiltKernel(i), null, 'an output directory without build.json is an unfinished build');
  writeFileSync(join(paths.outDir, 'build.json'), `${JSON.stringify({ release: '6.1.192', commit: i.commit, treeId: i.treeId })}\n`);
  const k = findBuiltKernel(i);
  t.same(k, {
    release: '6.1.192',
    bzImage: join(paths.outDir, 'bzImage'),
    modulesRoot: paths.outDir,
    buildDir: paths.objDir,
    origin: `build:debian-6.1@99f17f2c0ffe (tinyconfig+dax.config, key ${paths.key})`,
    buildLog: join(paths.outDir, 'build.log'),
    configPath: join(paths.outDir, 'config'),
  });
  t.equal(findBuiltKernel(input({ cacheDir, treeId: 'a'.repeat(40) })), null, 'other tree content: not that build');
  t.equal(findBuiltKernel(input({ cacheDir, fragmentText: 'CONFIG_X=y\n' })), null, 'other config: not that build');
  t.ok(findBuiltKernel(input({ cacheDir, commit: 'c'.repeat(40) })), 'another commit with the same tree reuses it');
});

t.test('findBuildError: a link failure shows its first undefined reference', async (t) => {
  const log = ['  LD      vmlinux.o', 'ld: fs/dax.o: in function `dax_fault\':', "dax.c:(.text+0x1a): undefined reference to `foo'", "dax.c:(.text+0x2b): undefined reference to `bar'", 'make[1]: *** [Makefile:1160: vmlinux] Error 1'].join('\n');
  t.match(findBuildError(log), /undefined reference to `foo'/);
});
