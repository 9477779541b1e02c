// The output writer when the system fails it (found in a review of the writer under failure):
// I/O errors injected into pigen's own system calls with strace (-P: only those on one path), and
// mounts (root). Each failure is said as a write error (exit 1, never the internal-error banner),
// the previous output stays in place, and nothing of a secret goes unhidden meanwhile.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needTools, skip, tmp } from './helpers.ts';
import { cliArgs, diffTrees, sameTree, scan } from './tree.ts';

/** The differences between two scanned trees (none: []), modes included. */
const differences = (a: ReturnType<typeof scan>, b: ReturnType<typeof scan>) => Object.entries(diffTrees(a, b, { modes: true })).filter(([, v]) => v.length);
import { readRedactionIndex } from '../generator/io.ts';
import { redactIndexed } from '../generator/util/redact.ts';

const fleet = (password = '') =>
  [
    'all:',
    '  children:',
    '    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }',
    '    web: { hosts: { 10.10.20.1: {}, 10.10.20.2: {} } }',
    '  vars:',
    '    admin_ip: 10.10.10.10',
    ...(password ? [`    grafana_admin_password: ${password}`] : []),
    '',
  ].join('\n');

/** pigen build in `cwd`, under strace when `inject` is given (strace's -P path and -e inject arguments). */
function build(cwd: string, inject?: { path: string; spec: string }) {
  const node = [process.execPath, ...cliArgs('build', 'inv.yml', '-o', 'out')];
  const argv = inject ? ['strace', '-f', '-qq', '-o', '/dev/null', '-P', inject.path, '-e', `trace=${inject.spec.split(':')[0]}`, '-e', `inject=${inject.spec}`, ...node] : node;
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd, encoding: 'utf8' });
  return { code: r.status, err: r.stderr };
}

const setUp = (password = '') => {
  const d = tmp('pigen-wfail-');
  writeFileSync(join(d, 'inv.yml'), fleet(password));
  return d;
};

test('an unreadable directory of the output (EIO on its readdir, found as the build walks it) is said: exit 1, no internal error', () => {
  if (!needTools('the writer under injected I/O errors', 'strace')) return;
  const d = setUp();
  // Three builds: the last one's output has a state with its directories, and a stamp.
  for (let i = 0; i < 3; i++) assert.is(build(d).code, 0);
  const before = scan(join(d, 'out'));
  // A directory's mtime changed: the up-to-date check walks the output, and so does the build.
  utimesSync(join(d, 'out', 'nodes'), new Date(2020, 0, 1), new Date(2020, 0, 1));
  const r = build(d, { path: join(d, 'out', 'nodes'), spec: 'getdents64:error=EIO' });
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /pigen: cannot write out: EIO/);
  assert.not.match(r.err, /internal error/);
  assert.equal(differences(scan(join(d, 'out')), before), [], 'the output as it was');
});

test('a quota exceeded (EDQUOT, which Node 20 has no name for) is said by name: exit 1, no internal error', () => {
  if (!needTools('the writer under injected I/O errors', 'strace')) return;
  const d = setUp();
  // (A small fleet's writer runs inline, as its entries come: the error comes out of the compile.)
  const r = build(d, { path: join(d, '.out.pigen', 'spare', 'nodes'), spec: 'mkdir:error=EDQUOT' });
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /pigen: cannot write out: EDQUOT \(disk quota exceeded\)/);
  assert.not.match(r.err, /internal error|Unknown system error/);
});

test('a quota exceeded on the writer threads of a large fleet is named as well (the thread passes the errno on)', () => {
  if (!needTools('the writer under injected I/O errors', 'strace')) return;
  const d = tmp('pigen-wfail-');
  const hosts = Array.from({ length: 120 }, (_, i) => `        10.10.${20 + (i >> 8)}.${(i & 255) + 1}: {}`).join('\n');
  writeFileSync(join(d, 'inv.yml'), `all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n    web:\n      hosts:\n${hosts}\n  vars:\n    admin_ip: 10.10.10.10\n`);
  const r = build(d, { path: join(d, '.out.pigen', 'spare', 'nodes'), spec: 'mkdir:error=EDQUOT' });
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /pigen: cannot write out: EDQUOT \(disk quota exceeded\)/);
  assert.not.match(r.err, /internal error|Unknown system error/);
});

test('a swap that fails puts the previous output back at once; the secrets index holds the old secrets and the new until the new output is in place', () => {
  if (!needTools('the writer under injected I/O errors', 'strace')) return;
  const d = setUp('OldSecretPw1');
  assert.is(build(d).code, 0);
  assert.is(build(d).code, 0);
  const before = scan(join(d, 'out'));
  writeFileSync(join(d, 'inv.yml'), fleet('NewSecretPw2'));
  // rename(spare → out) fails: out had been renamed aside already.
  const r = build(d, { path: join(d, '.out.pigen', 'spare'), spec: 'rename:error=EIO' });
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /pigen: cannot write out: EIO/);
  assert.ok(existsSync(join(d, 'out')), 'the output is there');
  assert.not.ok(existsSync(join(d, '.out.pigen', 'old')), 'put back at once, not left in old/');
  assert.equal(differences(scan(join(d, 'out')), before), [], 'the previous output');
  const hidden = (index: ReturnType<typeof readRedactionIndex>, text: string) => redactIndexed(text, index!);
  const failed = readRedactionIndex(join(d, 'out'));
  assert.is(hidden(failed, 'password = OldSecretPw1'), 'password = ****', 'the secret of the output in place: hidden');
  assert.is(hidden(failed, 'password = NewSecretPw2'), 'password = ****', 'and the new one');
  assert.is(build(d).code, 0);
  const after = readRedactionIndex(join(d, 'out'));
  assert.is(hidden(after, 'password = NewSecretPw2'), 'password = ****');
  assert.is(hidden(after, 'password = OldSecretPw1'), 'password = OldSecretPw1', 'the old one no longer in the index once the new output is in place');
});

// (A review found a 1,000-node build writing its whole spare before failing on the first rename.)
test("an output whose directory the user may not write to fails before the new tree is written (exit 1, said), the output intact; a build of unchanged inputs still skips", () => {
  if (process.getuid?.() !== 0) return void skip('SKIP the read-only parent: it needs root, to build as another user');
  if (!needTools('a build as another user (setpriv)', 'setpriv')) return;
  // (The checkout must be readable to that user: a clone in a 0700 directory is not.)
  if (spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'test', '-r', cliArgs()[1]!.replace(/^file:\/\//, '')]).status !== 0) return void console.log('  NOTICE: the read-only parent test needs a checkout that user nobody can read; not run here');
  const d = setUp();
  const parent = join(d, 'p');
  mkdirSync(parent);
  chmodSync(d, 0o755);
  spawnSync('chown', ['-R', 'nobody:nogroup', d]);
  const asNobody = (...extra: string[]) => {
    const r = spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, ...cliArgs('build', '../inv.yml', '-o', 'out', ...extra)], { cwd: parent, encoding: 'utf8' });
    return { code: r.status, err: r.stderr };
  };
  const first = asNobody();
  assert.is(first.code, 0, first.err);
  const before = scan(join(parent, 'out'));
  chmodSync(parent, 0o555);
  const r = asNobody('--set', 'nginx_port=8080');
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /cannot write out: EACCES: permission denied, mkdir '.*\/p\/\.out\.tmp-/);
  assert.not.match(r.err, /internal error/);
  assert.equal(readdirSync(join(parent, '.out.pigen')).filter((n) => n === 'spare'), [], 'no spare written');
  assert.ok(sameTree(diffTrees(scan(join(parent, 'out')), before)), 'the output as it was');
  const same = asNobody();
  assert.is(same.code, 0, same.err);
  chmodSync(parent, 0o755);
});

test("the output directory's own mode is the user's (0700 keeps others out), carried to every generation; those below it are 0755", () => {
  const d = setUp();
  assert.is(build(d).code, 0);
  chmodSync(join(d, 'out'), 0o700);
  for (let i = 0; i < 3; i++) {
    writeFileSync(join(d, 'inv.yml'), fleet(`Pw${i}xyz`));
    assert.is(build(d).code, 0);
    assert.is(lstatSync(join(d, 'out')).mode & 0o7777, 0o700, `build ${i + 1}`);
    assert.is(lstatSync(join(d, 'out', 'nodes')).mode & 0o7777, 0o755);
  }
});

test('a mount point as the output is refused before anything is written (exit 2, a directory inside it named); a read-only one still skips an unchanged build', () => {
  if (process.getuid?.() !== 0) return void skip('SKIP mount-point cases: need root to mount');
  const d = setUp();
  const mnt = join(d, 'out');
  mkdirSync(mnt);
  assert.is(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', mnt]).status, 0);
  try {
    const r = build(d);
    assert.is(r.code, 2, r.err);
    assert.match(r.err, /out is a mount point: .*build into a directory inside it \(-o .*out\/out\)/);
    assert.equal(readdirSync(mnt), [], 'nothing written into it');
    assert.not.ok(existsSync(join(d, '.out.pigen', 'spare')), 'nor beside it');
  } finally {
    spawnSync('umount', [mnt]);
  }
  // A bind mount: the same device as its parent.
  const src = join(d, 'src');
  mkdirSync(src);
  assert.is(spawnSync('mount', ['--bind', src, mnt]).status, 0);
  try {
    assert.is(build(d).code, 2);
  } finally {
    spawnSync('umount', [mnt]);
  }
  // The output inside a filesystem mounted read-only: a build of unchanged inputs takes no lock it
  // cannot write, and prints the last report.
  const fs = join(d, 'fs');
  mkdirSync(fs);
  assert.is(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', fs]).status, 0);
  try {
    writeFileSync(join(fs, 'inv.yml'), fleet());
    for (let i = 0; i < 3; i++) assert.is(build(fs).code, 0);
    assert.is(spawnSync('mount', ['-o', 'remount,ro', fs]).status, 0);
    const r = spawnSync(process.execPath, cliArgs('build', 'inv.yml', '-o', 'out'), { cwd: fs, encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /up to date: the inputs of the last build/);
  } finally {
    spawnSync('umount', [fs]);
  }
});

test('a full disk: the build that fails leaves no temp file (its lock\'s, a state\'s) in the output\'s home; the next one, with space, builds', () => {
  if (process.getuid?.() !== 0) return void skip('SKIP full-disk temp files: needs root to mount a small tmpfs');
  const d = tmp('pigen-wfull-');
  const fs = join(d, 'fs');
  mkdirSync(fs);
  assert.is(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', fs]).status, 0);
  try {
    writeFileSync(join(fs, 'inv.yml'), fleet());
    assert.is(build(fs).code, 0);
    spawnSync('dd', ['if=/dev/zero', `of=${join(fs, 'fill')}`, 'bs=64k'], { stdio: 'ignore' });
    writeFileSync(join(d, 'inv.yml'), fleet('AnotherPw9'));
    // (Twice: what a failed build leaves does not pile up.)
    for (let i = 0; i < 2; i++) {
      // (The inventory written over in place: the full disk has room for its pages again.)
      spawnSync('cp', [join(d, 'inv.yml'), join(fs, 'inv.yml')]);
      const r = build(fs);
      assert.is(r.code, 1, r.err);
      assert.match(r.err, /ENOSPC/);
      assert.equal(readdirSync(join(fs, '.out.pigen')).filter((n) => n.includes('.tmp-')), [], 'no temp file left');
    }
    spawnSync('rm', ['-f', join(fs, 'fill')]);
    assert.is(build(fs).code, 0);
    assert.ok(readFileSync(join(fs, 'out', 'manifest.json'), 'utf8').includes('10.10.20.2'));
  } finally {
    spawnSync('umount', [fs]);
  }
});

test.run();
