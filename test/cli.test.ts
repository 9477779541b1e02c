// The CLI shell in-process: help for every command, --version, exit codes, colour rules, and the
// internal-error banner.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS, main } from '../generator/cli/main.ts';
import type { CliContext } from '../generator/cli/context.ts';
import { tmp } from './helpers.ts';

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
    [['build', '--json', '-o', 'file/out'], 1],
    [['userdata', '10.10.10.10', '--json'], 0],
    [['userdata', '10.9.9.9', '--json'], 2],
    [['bundle', 'verify', 'nope.tgz', '--json'], 2],
    [['bundle', '--packages', '--json'], 0],
    [['check', 'nodir', '--json'], 2],
    [['secrets', 'init', '--json'], 0],
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

test('a bug exits 1 with an internal error banner', async () => {
  COMMANDS.push({ name: 'boom', summary: 'test only', usage: 'pigen boom', help: '', options: {}, maxArgs: 0, run: async () => { throw new TypeError('kaboom'); } });
  try {
    const t = ctx();
    assert.is(await main(['boom'], t.c), 1);
    assert.match(t.err(), /internal error/);
    assert.match(t.err(), /kaboom/);
  } finally {
    COMMANDS.pop();
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

test.run();
