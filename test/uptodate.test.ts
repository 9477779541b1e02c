// `pigen build` of the inputs that made the output, which is untouched since: the last build's
// report again, nothing parsed, rendered or written (cli/uptodate.ts, io.ts upToDate). Any change
// to an input or to the output, and the build runs as usual.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inputsKey } from '../generator/cli/uptodate.ts';
import { upToDate } from '../generator/io.ts';
import { ROOT, run, tmp, TSX } from './helpers.ts';
import { mainIn, scan } from './tree.ts';

const TWO_INFRA = join(ROOT, 'test/fixtures/two-infra.yml');

const build = (cwd: string, args: string[], env: Record<string, string> = {}) => mainIn(cwd, ['build', ...args], env);

/** A directory with the inventory (with a warning whose code frame shows a password) and a build of it. */
async function setup() {
  const dir = tmp('pigen-uptodate-');
  const inv = join(dir, 'pigsty.yml');
  // (An unknown parameter on a line that also sets a password: the warning's frame shows the line, the password masked.)
  const extra = `    pg-extra:\n      hosts:\n        10.10.10.31: { pg_seq: 1, pg_role: primary, pg_admin_password: 'Sekr1t.Word-77', frobnicate_level: 1 }\n      vars: { pg_cluster: pg-extra }\n`;
  writeFileSync(inv, readFileSync(TWO_INFRA, 'utf8').replace('    pg-test:\n', `${extra}    pg-test:\n`));
  return { dir, inv };
}

const secretsInit = async (cwd: string) => (await mainIn(cwd, ['secrets', 'init'])).code;
const json = (r: { stdout: string }) => JSON.parse(r.stdout) as Record<string, unknown>;
/** The summary line with its counts and time left out. */
const summary = (s: string) => s.replace(/ \([^)]*\) in \d+ ms\n/, ' (…) in … ms\n');

test('a build of the same inputs over an untouched output prints the last report and touches nothing', async () => {
  const { dir } = await setup();
  const first = await build(dir, ['-o', 'out']);
  assert.is(first.code, 0, first.stderr);
  assert.match(first.stderr, /frobnicate_level/);
  assert.not.match(first.stderr, /Sekr1t/);
  // (A cold build records no directory mtimes: the next build lists its output by walking it.)
  const second = await build(dir, ['-o', 'out']);
  assert.match(second.stdout, /\(up to date, nothing rewritten\)/);
  const before = scan(join(dir, 'out'), true);
  const home = join(dir, '.out.pigen');
  const states = () => readdirSync(home).filter((n) => n.startsWith('state-')).map((n) => [n, lstatSync(join(home, n)).mtimeMs, lstatSync(join(home, n)).ino]);
  const statesBefore = states();
  const third = await build(dir, ['-o', 'out']);
  assert.is(third.code, 0);
  assert.match(third.stdout, /\(up to date: the inputs of the last build, its output untouched\)/);
  // The same report, diagnostics and notes as the build that made the output.
  assert.is(third.stderr, second.stderr);
  assert.is(summary(third.stdout), summary(second.stdout));
  // Nothing written: every entry as it was, the states too.
  const after = scan(join(dir, 'out'), true);
  assert.equal([...after.keys()], [...before.keys()]);
  for (const [k, e] of after) {
    const p = before.get(k)!;
    assert.is(e.kind, p.kind, k);
    if (e.kind === 'file' && p.kind === 'file') assert.ok(e.ino === p.ino && e.mtimeMs === p.mtimeMs, `${k}: rewritten`);
    if (e.kind === 'dir' && p.kind === 'dir') assert.is(e.ino, p.ino, `${k}/: replaced`);
    if (e.kind === 'link' && p.kind === 'link') assert.is(e.target, p.target, k);
  }
  assert.equal(states(), statesBefore);
  // --json: the same object as a build that changed nothing, saying the inputs were the last build's.
  const j2 = json(await build(dir, ['-o', 'out', '--json']));
  assert.is(j2.inputsUnchanged, true);
  assert.is(j2.written, 0);
  assert.is(j2.removed, 0);
  assert.equal(j2.io, { files: 0, links: 0, dirs: 0, removed: 0 });
  const cold = json(await build(dir, ['-o', 'cold', '--json']));
  assert.is(cold.inputsUnchanged, false);
  for (const k of ['ok', 'nodes', 'userData', 'files', 'links', 'diagnostics']) assert.equal(j2[k], cold[k], k);
  assert.is(j2.unchanged, cold.written);
  rmSync(dir, { recursive: true, force: true });
});

test('colour: the recorded diagnostics print as a build prints them, with colour or without', async () => {
  const { dir } = await setup();
  await build(dir, ['-o', 'out']);
  const normal = await build(dir, ['-o', 'out'], { FORCE_COLOR: '1' });
  const skipped = await build(dir, ['-o', 'out'], { FORCE_COLOR: '1' });
  assert.match(skipped.stdout, /inputs of the last build/);
  assert.match(skipped.stderr, /\x1b\[/);
  assert.is(skipped.stderr, normal.stderr);
  const plain = await build(dir, ['-o', 'out'], { FORCE_COLOR: '1', NO_COLOR: '1' });
  assert.match(plain.stdout, /inputs of the last build/);
  assert.not.match(plain.stderr, /\x1b\[/);
  rmSync(dir, { recursive: true, force: true });
});

test('any change to an input, or to the output, and the build runs again (the output made right)', async () => {
  const { dir, inv } = await setup();
  const out = join(dir, 'out');
  const fresh = async (args: string[] = []) => {
    const r = await build(dir, ['-o', 'out', '--json', ...args]);
    assert.is(r.code, 0, r.stderr);
    return json(r);
  };
  await fresh();
  await fresh();
  assert.is((await fresh()).inputsUnchanged, true);
  const reference = scan(out);
  const same = () => {
    const now = scan(out);
    assert.equal([...now.keys()], [...reference.keys()]);
    for (const [k, e] of now) {
      const r = reference.get(k)!;
      if (e.kind === 'file' && r.kind === 'file') assert.ok(Buffer.compare(e.data, r.data) === 0 && e.mode === r.mode, `${k} differs`);
    }
  };
  const node = join(out, 'nodes/10.10.10.21/rootfs/etc/hosts');
  const cases: [string, () => unknown, string[]?][] = [
    ['a comment added to the inventory', () => appendFileSync(inv, '# a comment\n')],
    ['a file edited in the output (same size)', () => writeFileSync(node, readFileSync(node, 'utf8').replace(/[a-z]/, 'X'))],
    ['a file removed from the output', () => unlinkSync(node)],
    ['a file added to the output', () => writeFileSync(join(out, 'nodes/10.10.10.21/stray'), 'x')],
    ['a directory added to the output', () => mkdirSync(join(out, 'nodes/10.10.10.21/rootfs/etc/stray.d'))],
    ["a file's mtime moved", () => utimesSync(node, new Date(0), new Date(0))],
    ['a --set', () => {}, ['--set', 'nginx_port=8080']],
    ['--strict (a warning becomes an error: no build)', () => {}, ['--strict']],
    ['the secrets file made', () => secretsInit(dir)],
    ['the secrets file changed', () => appendFileSync(join(dir, 'pigsty.secrets.yml'), '# a comment\n')],
    // (Its mode decides a warning: the report printed again must have it.)
    ['the secrets file made readable by others', () => chmodSync(join(dir, 'pigsty.secrets.yml'), 0o644)],
  ];
  for (const [what, change, args = []] of cases) {
    await change();
    if (args.includes('--strict')) {
      const r = await build(dir, ['-o', 'out', '--json', ...args]);
      assert.is(r.code, 2, `${what}: exit ${r.code}`);
      continue;
    }
    const r = await fresh(args);
    assert.is(r.inputsUnchanged, false, what);
    if (args.length === 0 && what.includes('output')) same();
    // (Built over again: the next build of the same inputs is the quick one.)
    assert.is((await fresh(args)).inputsUnchanged, true, `${what}: again`);
    if (args.length) await fresh();
  }
  rmSync(dir, { recursive: true, force: true });
});

test('the report recorded with the output holds no secret value, and the key differs for each input', async () => {
  const { dir, inv } = await setup();
  assert.is(await secretsInit(dir), 0);
  await build(dir, ['-o', 'out']);
  await build(dir, ['-o', 'out']);
  const home = join(dir, '.out.pigen');
  const stateText = readdirSync(home).filter((n) => n.startsWith('state-')).map((n) => readFileSync(join(home, n), 'utf8')).join('\n');
  assert.match(stateText, /"build":\{"key":"[0-9a-f]{64}"/);
  const secrets = readFileSync(join(dir, 'pigsty.secrets.yml'), 'utf8');
  const values = [...secrets.matchAll(/^\s+[a-z_]+: ['"]?([A-Za-z0-9+/=._-]{12,})['"]?$/gm)].map((m) => m[1]!);
  const pems = [...secrets.matchAll(/^\s+([A-Za-z0-9+/]{40,})$/gm)].map((m) => m[1]!);
  assert.ok(values.length > 5 && pems.length > 5, `secret values found: ${values.length}, PEM lines: ${pems.length}`);
  for (const v of [...values, ...pems, 'Sekr1t.Word-77']) assert.not.ok(stateText.includes(v), `the state holds a secret value (${v.slice(0, 4)}…)`);
  // Each input moves the key.
  const src = { name: 'pigsty.yml', bytes: readFileSync(inv) };
  const s = { path: join(dir, 'pigsty.secrets.yml'), text: secrets };
  const base = inputsKey(src, s, {});
  const keys = [
    inputsKey({ ...src, name: './pigsty.yml' }, s, {}),
    inputsKey({ ...src, bytes: Buffer.concat([src.bytes, Buffer.from('\n')]) }, s, {}),
    inputsKey(src, { ...s, text: undefined }, {}),
    inputsKey(src, { ...s, text: secrets + '\n' }, {}),
    inputsKey(src, { ...s, path: join(dir, 'x', 'pigsty.secrets.yml') }, {}),
    inputsKey(src, s, { set: ['a=1'] }),
    inputsKey(src, s, { set: ['a=1', 'b=2'] }),
    inputsKey(src, s, { set: ['b=2', 'a=1'] }),
    inputsKey(src, s, { strict: true }),
  ];
  assert.is(new Set([base, ...keys]).size, keys.length + 1, 'two inputs gave the same key');
  assert.is(inputsKey(src, s, {}), base, 'the key is not stable');
  rmSync(dir, { recursive: true, force: true });
});

test('an inventory read from a pipe builds (the check for unchanged inputs reads no pipe)', async () => {
  const { dir, inv } = await setup();
  // (A shell's pipe: Node's own stdin for a child is a socket, which /dev/stdin cannot open.)
  const r = run('bash', ['-c', 'cat "$1" | "$2" --import "$3" "$4" build /dev/stdin -o out --json', 'sh', inv, process.execPath, TSX, join(ROOT, 'generator/cli.ts')], { cwd: dir });
  assert.is(r.code, 0, r.stderr);
  assert.is((JSON.parse(r.stdout) as { nodes: number }).nodes, 5);
  rmSync(dir, { recursive: true, force: true });
});

test('a report that no longer holds (a certificate came within reach since) is printed again only after a build', async () => {
  const { dir } = await setup();
  await build(dir, ['-o', 'out']);
  await build(dir, ['-o', 'out']);
  assert.is(json(await build(dir, ['-o', 'out', '--json'])).inputsUnchanged, true);
  const home = join(dir, '.out.pigen');
  const file = join(home, `state-${lstatSync(join(dir, 'out')).ino}.json`);
  const state = JSON.parse(readFileSync(file, 'utf8')) as { build: { report: { until?: number } } };
  state.build.report.until = 1;
  writeFileSync(file, JSON.stringify(state));
  // (The state's file changed: its directories are read again, and the state is re-saved.)
  assert.is(json(await build(dir, ['-o', 'out', '--json'])).inputsUnchanged, false);
  assert.is(json(await build(dir, ['-o', 'out', '--json'])).inputsUnchanged, true, 'stamped again');
  rmSync(dir, { recursive: true, force: true });
});

test('upToDate: not while another process holds the output, nor for another key', async () => {
  const { dir } = await setup();
  await build(dir, ['-o', 'out']);
  await build(dir, ['-o', 'out']);
  const j = json(await build(dir, ['-o', 'out', '--json']));
  assert.is(j.inputsUnchanged, true);
  const home = join(dir, '.out.pigen');
  const key = readdirSync(home)
    .filter((n) => n.startsWith(`state-${lstatSync(join(dir, 'out')).ino}.`))
    .map((n) => (JSON.parse(readFileSync(join(home, n), 'utf8')) as { build: { key: string } }).build.key)[0]!;
  assert.ok(await upToDate(join(dir, 'out'), key, undefined, 0));
  assert.is(await upToDate(join(dir, 'out'), key.replace(/^./, (c) => (c === '0' ? '1' : '0')), undefined, 0), undefined);
  // (A lock of a process that runs: pid 1. One of this process would be taken for a stale one.)
  writeFileSync(join(home, 'lock'), '1\n');
  try {
    assert.is(await upToDate(join(dir, 'out'), key, undefined, 0), undefined, 'looked at while locked');
  } finally {
    unlinkSync(join(home, 'lock'));
  }
  assert.ok(await upToDate(join(dir, 'out'), key, undefined, 0));
  rmSync(dir, { recursive: true, force: true });
});

test.run();
