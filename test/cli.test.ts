// The CLI shell in-process: help for every command, --version, exit codes, colour rules, and the
// internal-error banner; as a process, exit codes kept through a closed pipe.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS, main } from '../generator/cli/main.ts';
import type { CliContext } from '../generator/cli/context.ts';
import { skip, tmp } from './helpers.ts';
import { cliArgs } from './tree.ts';

function ctx(opts: { tty?: boolean; env?: Record<string, string>; cwd?: string } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const dec = new TextDecoder();
  const c: CliContext = {
    cwd: opts.cwd ?? tmp(),
    env: opts.env ?? {},
    stdout: { write: (s) => void out.push(typeof s === 'string' ? s : dec.decode(s)), isTTY: opts.tty ?? false },
    stderr: { write: (s) => void err.push(typeof s === 'string' ? s : dec.decode(s)), isTTY: opts.tty ?? false },
    epoch: 0,
  };
  return { c, out: () => out.join(''), err: () => err.join('') };
}

test('pigen with no command, --help and help print the command list (exit 0)', async () => {
  for (const argv of [[], ['--help'], ['-h'], ['help']]) {
    const t = ctx();
    assert.is(await main(argv, t.c), 0);
    for (const cmd of COMMANDS) assert.ok(t.out().includes(cmd.name), `${argv.join(' ')}: ${cmd.name}`);
    assert.match(t.out(), /Exit codes: 0 ok, 1 operation failed, 2 bad input or usage/);
  }
});

test('--json: every command prints one parseable JSON object on stdout, on success and on failure', async () => {
  const d = tmp('pigen-json-');
  writeFileSync(join(d, 'bad.yml'), 'all:\n  vars: { admin_ip: nope }\n');
  writeFileSync(join(d, 'file'), 'x');
  const cases: [string[], number][] = [
    [['validate', '--json'], 0],
    [['validate', 'bad.yml', '--json'], 2],
    [['build', '--json', '-o', 'out'], 0],
    [['build', 'bad.yml', '--json'], 2],
    // (-o under a file, or a file, or empty: bad input, said before any work; was ENOTDIR, exit 1.)
    [['build', '--json', '-o', 'file/out'], 2],
    [['build', '--json', '-o', 'file'], 2],
    [['build', '--json', '-o', ''], 2],
    [['userdata', '10.10.10.10', '--json'], 0],
    [['userdata', '10.9.9.9', '--json'], 2],
    [['bundle', 'verify', 'nope.tgz', '--json'], 2],
    [['bundle', '--packages', '--json'], 0],
    [['check', 'nodir', '--json'], 2],
    [['secrets', 'init', '--json'], 0],
    // Usage errors too (two reviews found nothing on stdout for them).
    [['bake', '--only', 'zzz', '--dry-run', '--json'], 2],
    [['bake', '--target', 'aws', '--aws-endpoint', 'not a url', '--dry-run', '--json'], 2],
    [['build', '--bogus', '--json'], 2],
    [['validate', 'a.yml', 'b.yml', '--json'], 2],
  ];
  for (const [argv, code] of cases) {
    const t = ctx({ cwd: d });
    assert.is(await main(argv, t.c), code, `${argv.join(' ')}: ${t.err()}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(t.out());
    } catch {
      assert.unreachable(`${argv.join(' ')}: stdout is not one JSON value:\n${t.out()}`);
    }
    assert.type(parsed, 'object', argv.join(' '));
    if (code === 2 && !(parsed as { diagnostics?: unknown }).diagnostics) assert.is((parsed as { ok: boolean }).ok, false, argv.join(' '));
  }
  // A `--json` that is no option (after `--`, or an option's value): no JSON for a usage error.
  for (const argv of [['build', '--bogus', '--', '--json'], ['build', '--set', 'x', '-o', '--json', '--bogus']]) {
    const t = ctx({ cwd: d });
    assert.is(await main(argv, t.c), 2, argv.join(' '));
    assert.is(t.out(), '', `${argv.join(' ')}: printed JSON`);
  }
});

test('every command has --help with a usage line (exit 0)', async () => {
  for (const cmd of COMMANDS) {
    const t = ctx();
    assert.is(await main([cmd.name, '--help'], t.c), 0, cmd.name);
    assert.match(t.out(), new RegExp(`^Usage: pigen ${cmd.name}`), cmd.name);
    const h = ctx();
    assert.is(await main(['help', cmd.name], h.c), 0);
    assert.is(h.out(), t.out());
  }
});

test('--version prints the package version', async () => {
  const t = ctx();
  assert.is(await main(['--version'], t.c), 0);
  assert.match(t.out(), /^pigen \d+\.\d+\.\d+\n$/);
});

test('usage errors exit 2 with a pointer to --help', async () => {
  for (const argv of [['frobnicate'], ['validate', '--bogus'], ['validate', 'a.yml', 'b.yml']]) {
    const t = ctx();
    assert.is(await main(argv, t.c), 2, argv.join(' '));
    assert.match(t.err(), /pigen: /);
    assert.not.match(t.err(), /\n\s+at /, 'no stack trace');
  }
});

test('colour only on a TTY, never with NO_COLOR', async () => {
  const dir = tmp();
  writeFileSync(join(dir, 'pigsty.yml'), 'all:\n  vars:\n    admin_ip: 10.10.10.10\n    nginx_sslmode: maybe\n');
  const tty = ctx({ tty: true, cwd: dir });
  assert.is(await main(['validate'], tty.c), 2);
  assert.match(tty.err(), /\x1b\[/);
  const noColor = ctx({ tty: true, cwd: dir, env: { NO_COLOR: '1' } });
  assert.is(await main(['validate'], noColor.c), 2);
  assert.not.match(noColor.err(), /\x1b\[/);
  const pipe = ctx({ tty: false, cwd: dir });
  assert.is(await main(['validate'], pipe.c), 2);
  assert.not.match(pipe.err(), /\x1b\[/);
  assert.match(pipe.err(), /pigsty\.yml:4:\d+/);
});

// (A review found the success line printed first, then the refusal, exit 2.)
test('userdata on a terminal: gzip bytes are refused before anything is said of them (exit 2, no size line)', async () => {
  const t = ctx({ tty: true });
  assert.is(await main(['userdata', '10.10.10.10'], t.c), 2);
  assert.match(t.err(), /refusing to print gzip bytes to a terminal/);
  assert.not.match(t.err(), /bytes of \d+ bytes for aws/);
  assert.is(t.out(), '');
  const o = ctx({ tty: true });
  assert.is(await main(['userdata', '10.10.10.10', '-o', 'ud.gz'], o.c), 0, o.err());
  assert.match(o.err(), /gzip, \d+ bytes of 16384 bytes for aws/);
});

// (A review found a node's private keys printed to a terminal without a word.)
test('userdata printed to a terminal: a warning on stderr names the files holding secrets, with no secret in it; none through a pipe or to a file', async () => {
  const t = ctx({ tty: true });
  assert.is(await main(['userdata', '10.10.10.10', '--cloud', 'nocloud', '--encoding', 'plain'], t.c), 0, t.err());
  assert.match(t.err(), /warning: this user-data holds secrets \(2 files: \/etc\/grafana\/grafana\.ini, [^)]+\) and goes to the terminal; -o FILE/);
  const secret = /admin_password = (\S+)/.exec(t.out())?.[1];
  assert.ok(secret, 'grafana.ini holds a password');
  assert.not.ok(t.err().includes(secret!), 'no secret in the warning');
  for (const [tty, args] of [[false, []], [true, ['-o', 'ud.yml']], [true, ['--json']]] as const) {
    const p = ctx({ tty });
    assert.is(await main(['userdata', '10.10.10.10', '--cloud', 'nocloud', '--encoding', 'plain', ...args], p.c), 0, p.err());
    assert.not.match(p.err(), /holds secrets/, `${tty} ${args.join(' ')}`);
  }
});

test('a bug exits 1 with an internal error banner', async () => {
  COMMANDS.push({ name: 'boom', summary: 'test only', usage: 'pigen boom', help: '', options: { json: { type: 'boolean' } }, maxArgs: 0, run: async () => { throw new TypeError('kaboom'); } });
  try {
    const t = ctx();
    assert.is(await main(['boom'], t.c), 1);
    assert.match(t.err(), /internal error/);
    assert.match(t.err(), /kaboom/);
    assert.is(t.out(), '');
    // With --json, one JSON object on stdout says it too (found by a review: nothing there).
    const j = ctx();
    assert.is(await main(['boom', '--json'], j.c), 1);
    assert.equal(JSON.parse(j.out()), { ok: false, error: 'internal error (a bug in pigen): kaboom' });
  } finally {
    COMMANDS.pop();
  }
});

// A closed pipe (`pigen build ... 2>&1 | head -1`) drops what is written after, and the command
// goes on to its own exit code. (A review found a failed build exiting 0 so: the closed pipe's
// error ended the process before the build had its exit code.)
test('through a closed pipe, the exit code is still the command\'s: a failed build 1, bad input 2, a good build 0', async () => {
  const d = tmp('pigen-epipe-');
  writeFileSync(join(d, 'pigsty.yml'), 'all:\n  children:\n    infra:\n      hosts:\n        10.10.10.10: { infra_seq: 1 }\n  vars:\n    admin_ip: 10.10.10.10\n');
  writeFileSync(join(d, 'bad.yml'), 'all:\n  vars: { admin_ip: nope, a: {b\n');
  writeFileSync(join(d, 'file'), 'x');
  // (From 100 nodes a build has a gzip thread, closed after its error is printed: the window in
  // which the closed pipe's error came first.)
  const hosts = Array.from({ length: 120 }, (_, i) => `        10.10.20.${i + 1}: { pg_seq: ${i + 1}, pg_role: ${i ? 'replica' : 'primary'} }`);
  writeFileSync(join(d, 'fleet.yml'), `all:\n  children:\n    infra:\n      hosts:\n        10.10.10.10: { infra_seq: 1 }\n    pg-test:\n      vars: { pg_cluster: pg-test }\n      hosts:\n${hosts.join('\n')}\n  vars:\n    admin_ip: 10.10.10.10\n`);
  // Both pipes closed by the reader before the child writes a byte (its warnings then fail to go out).
  const closedPipes = (args: string[]) =>
    new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, cliArgs(...args), { cwd: d, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy();
      child.stderr.destroy();
      child.on('exit', (code) => resolve(code));
    });
  // (A failed build: an output that cannot be made, under /proc.)
  const cases: [string[], number][] = [
    [['build', 'pigsty.yml', '-o', '/proc/pigen-no/out'], 1],
    [['build', 'fleet.yml', '-o', '/proc/pigen-no/out'], 1],
    [['build', 'pigsty.yml', '-o', '/proc/pigen-no/out', '--json'], 1],
    [['build', 'pigsty.yml', '-o', 'file'], 2],
    [['validate', 'bad.yml'], 2],
    [['validate', 'bad.yml', '--json'], 2],
    [['build', 'pigsty.yml', '-o', 'out'], 0],
  ];
  for (const [args, code] of cases) assert.is(await closedPipes(args), code, args.join(' '));
});

test('stdout that cannot be written (a full disk: /dev/full): said on stderr, exit 1; a bad SOURCE_DATE_EPOCH: exit 2', async () => {
  if (!existsSync('/dev/full')) return void skip('/dev/full tests: no /dev/full here');
  const d = tmp('pigen-full-');
  // (Lost with exit 0 (userdata), or a stack trace (validate), before; found by a review.)
  for (const args of [['--version'], ['validate'], ['userdata', '10.10.10.10', '--cloud', 'nocloud', '--encoding', 'plain']]) {
    const full = openSync('/dev/full', 'w');
    const r = spawnSync(process.execPath, cliArgs(...args), { cwd: d, stdio: ['ignore', full, 'pipe'], encoding: 'utf8' });
    closeSync(full);
    assert.is(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /pigen: cannot write stdout: ENOSPC: the output is incomplete/, args.join(' '));
    assert.not.match(r.stderr, /internal error|    at /, args.join(' '));
  }
  // (Said by the command that uses it: a bundle's mtimes; --version does not care.)
  mkdirSync(join(d, 'from'));
  writeFileSync(join(d, 'from', 'x_1.0_all.deb'), 'not read: the value is refused first\n');
  for (const bad of ['abc', '-1', '1.5', '8589934592']) {
    const r = spawnSync(process.execPath, cliArgs('bundle', '--from', 'from', '--quiet'), { cwd: d, env: { ...process.env, SOURCE_DATE_EPOCH: bad }, encoding: 'utf8' });
    assert.is(r.status, 2, bad);
    assert.match(r.stderr, /SOURCE_DATE_EPOCH must be a whole number of seconds from 0 to 8589934591/, bad);
    assert.is(spawnSync(process.execPath, cliArgs('--version'), { cwd: d, env: { ...process.env, SOURCE_DATE_EPOCH: bad } }).status, 0, `--version with ${bad}`);
  }
});

test('--json output of validate is parseable and carries diagnostics with line and col', async () => {
  const dir = tmp();
  writeFileSync(join(dir, 'pigsty.yml'), 'all:\n  vars:\n    admin_ip: 10.10.10.10\n    nginx_port: 70000\n');
  const t = ctx({ cwd: dir });
  assert.is(await main(['validate', '--json'], t.c), 2);
  const j = JSON.parse(t.out());
  assert.is(j.ok, false);
  const d = j.diagnostics.find((x: { code: string }) => x.code === 'schema-range');
  assert.ok(d, t.out());
  assert.is(d.line, 4);
  assert.is(d.path, 'all.vars.nginx_port');
});

test('pigen build over the earlier output of a large fleet (its files checked on a thread of their own): only what changed, was edited or was added by hand is touched', async () => {
  const d = tmp('pigen-rebuild-');
  // 120 nodes (the thread is started from 1,500 entries in the earlier output: ~100 nodes).
  const hosts = Array.from({ length: 119 }, (_, i) => `        10.20.${Math.floor((i + 11) / 250)}.${((i + 11) % 250) + 1}: { pg_seq: ${i + 1}, pg_role: replica }`);
  const inv = (port: number) =>
    `all:\n  vars: { admin_ip: 10.20.0.1, node_exporter_port: ${port} }\n  children:\n    infra: { hosts: { 10.20.0.1: { infra_seq: 1 } } }\n    pg-big:\n      vars: { pg_cluster: pg-big }\n      hosts:\n${hosts.join('\n')}\n`;
  writeFileSync(join(d, 'inv.yml'), inv(9100));
  const build = async () => {
    const t = ctx({ cwd: d });
    assert.is(await main(['build', 'inv.yml', '-o', 'out', '--json'], t.c), 0, t.err());
    return JSON.parse(t.out()) as { files: number; written: number; unchanged: number; removed: number };
  };
  const first = await build();
  assert.ok(first.files >= 1500, `${first.files} files`);
  assert.is((await build()).written, 0, 'nothing changed: nothing written');
  writeFileSync(join(d, 'out', 'nodes', '10.20.0.12', 'rootfs', 'etc', 'hosts'), 'edited by hand\n');
  writeFileSync(join(d, 'out', 'nodes', '10.20.0.13', 'rootfs', 'etc', 'added-by-hand'), 'x\n');
  const fixed = await build();
  assert.equal([fixed.written, fixed.removed], [1, 1], JSON.stringify(fixed));
  writeFileSync(join(d, 'inv.yml'), inv(9200));
  const changed = await build();
  assert.ok(changed.written > 100 && changed.unchanged > 0, JSON.stringify(changed));
});

// A full disk while the files are written as they come (a small fleet's writer runs inline) is
// said as a write error, exit 1, not an internal error. (A review found the bug banner, and
// `--watch` ended by it.) Needs root for a small tmpfs.
test('a full disk during the build: "cannot write", exit 1, no internal error', async () => {
  if (process.getuid?.() !== 0) return void skip('SKIP full-disk case: needs root to mount a small tmpfs');
  const d = tmp('pigen-enospc-');
  const mnt = join(d, 'mnt');
  mkdirSync(mnt);
  assert.is(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=100k', 'tmpfs', mnt]).status, 0);
  try {
    // (Thirty nodes: ~600 files, written in batches while the build goes on, and under the size
    // from which the writer runs on threads.)
    const hosts = Array.from({ length: 30 }, (_, i) => `        10.10.20.${i + 1}: {}`).join('\n');
    writeFileSync(join(d, 'fleet.yml'), `all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n    web:\n      hosts:\n${hosts}\n  vars:\n    admin_ip: 10.10.10.10\n`);
    const t = ctx({ cwd: mnt });
    assert.is(await main(['build', join(d, 'fleet.yml'), '-o', 'out'], t.c), 1, t.err());
    assert.match(t.err(), /pigen: cannot write out: ENOSPC/);
    assert.not.match(t.err(), /internal error/);
  } finally {
    spawnSync('umount', [mnt]);
  }
});

test.run();
