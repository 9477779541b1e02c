// The published entry point: `npm run build` bundles the CLI with its pure-JS dependencies into
// dist/pigen.cjs (one file: start-up without resolving and loading ~150 modules) and makes V8's
// code cache for it; dist/pigen.js, the `pigen` bin, loads the two. It must behave exactly as the
// source: same trees, same diagnostics, same exit codes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, SHARED, skip, tmp } from './helpers.ts';
import { compileInventory, diffTrees, reportDiff, sameTree, scan, treeEntries } from './tree.ts';

const BIN = join(ROOT, 'dist', 'pigen.js');
const present = existsSync(BIN) || skip('SKIP dist.test.ts: dist/pigen.js is missing (run npm run build)');
const run = (args: string[], cwd: string) => spawnSync(BIN, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });

test('package.json names the bundle as the bin; it is executable', () => {
  if (!present) return;
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  assert.is(pkg.bin.pigen, 'dist/pigen.js');
  assert.ok((statSync(BIN).mode & 0o111) !== 0, 'executable');
});

test('the bundle builds the same tree as the source, for the default inventory and fixtures', () => {
  if (!present) return;
  const inputs: [string, string | undefined, string][] = [
    ['default', undefined, '/'],
    ['two-infra', join(ROOT, 'test', 'fixtures', 'two-infra.yml'), ROOT],
    ...(SHARED ? ([['full', join(SHARED, 'pigsty-conf', 'full.yml'), SHARED]] as [string, string, string][]) : []),
  ];
  for (const [name, inv, cwd] of inputs) {
    const dir = tmp();
    const arg = inv === undefined ? [] : [inv.startsWith(cwd + '/') ? inv.slice(cwd.length + 1) : inv];
    const r = spawnSync(BIN, ['build', ...arg, '-o', join(dir, 'out')], { cwd: inv === undefined ? dir : cwd, encoding: 'utf8' });
    assert.is(r.status, 0, `${name}: ${r.stderr}`);
    const want = treeEntries(compileInventory({ cwd: inv === undefined ? dir : cwd, ...(arg[0] ? { arg: arg[0] } : {}) }).tree);
    const got = scan(join(dir, 'out'));
    const d = diffTrees(got, want, { modes: true });
    assert.ok(sameTree(d), `${name}: ${reportDiff(d, got, want, { actual: 'bundle', expected: 'source' })}`);
  }
});

test('the bundle: --version, help for every command, bad input (file:line:col, exit 2), usage errors', () => {
  if (!present) return;
  const dir = tmp();
  const v = run(['--version'], dir);
  assert.is(v.status, 0);
  assert.match(v.stdout, /^pigen \d+\.\d+\.\d+/);
  for (const c of ['validate', 'build', 'userdata', 'bundle', 'bake', 'check', 'secrets']) {
    const h = run([c, '--help'], dir);
    assert.is(h.status, 0, c);
    assert.match(h.stdout, new RegExp(`^Usage: pigen ${c}`), c);
  }
  writeFileSync(join(dir, 'bad.yml'), 'all:\n  vars:\n    admin_ip: 10.10.10.10\n    nginx_port: "eighty"\n  hosts:\n    10.10.10.10: { infra_seq: 1 }\n');
  const b = run(['build', 'bad.yml'], dir);
  assert.is(b.status, 2);
  assert.match(b.stderr, /bad\.yml:4:17/);
  assert.not.match(b.stderr, /\n\s+at /, 'no stack trace');
  assert.is(run(['frobnicate'], dir).status, 2);
  // The schema is checked by the precompiled validator, found from the bundle's place.
  const val = run(['validate', 'bad.yml', '--json'], dir);
  assert.is(val.status, 2);
  assert.match(val.stdout, /schema-type/);
});

test('the bundle carries the precompiled validator and templates (under its code cache): a build loads neither file', () => {
  if (!present) return;
  const dir = tmp();
  // A preload that records every module the process loads from a file.
  const preload = join(dir, 'record.cjs');
  writeFileSync(
    preload,
    `const Module = require('node:module'); const load = Module._load; const seen = [];
     Module._load = function (id, ...rest) { seen.push(id); return load.call(this, id, ...rest); };
     process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(join(dir, 'loaded.json'))}, JSON.stringify(seen)));`,
  );
  const r = spawnSync(process.execPath, ['--require', preload, BIN, 'build', '-o', join(dir, 'out')], { cwd: dir, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const loaded = JSON.parse(readFileSync(join(dir, 'loaded.json'), 'utf8')) as string[];
  assert.ok(loaded.some((id) => id.endsWith('formats')), `the validator ran (it loads ajv-formats): ${loaded.join(' ')}`);
  assert.not.ok(loaded.some((id) => /inventory-validator|templates\.cjs/.test(id)), `loaded from files: ${loaded.join(' ')}`);
  assert.ok(existsSync(join(dir, 'out', 'manifest.json')));
});

test('the bin loads the bundle with the code cache made by npm run build; a cache not made for these bytes is ignored', async () => {
  if (!present) return;
  const { loadBundle } = await import('../generator/cli/code-cache.ts');
  const file = join(ROOT, 'dist', 'pigen.cjs');
  assert.ok(existsSync(`${file}.cache`), 'dist/pigen.cjs.cache');
  const version = async (b: Awaited<ReturnType<typeof loadBundle>>) => {
    let out = '';
    const sink = { write: (s: string) => void (out += s), isTTY: false };
    assert.is(await b.exports.main(['--version'], { cwd: ROOT, env: {}, stdout: sink, stderr: sink, epoch: 0 }), 0);
    return out;
  };
  const real = loadBundle(file);
  assert.ok(real.cached, 'the cache is used');
  const want = await version(real);
  assert.match(want, /^pigen \d+\.\d+\.\d+/);
  const dir = tmp();
  const cache = readFileSync(`${file}.cache`);
  // Made for other bytes (the sha256 it carries differs), and V8's data damaged: compiled as usual.
  const other = Buffer.from(cache);
  other.write('0'.repeat(64), 0, 'latin1');
  const damaged = Buffer.concat([cache.subarray(0, 64), Buffer.alloc(4096, 7)]);
  writeFileSync(join(dir, 'other'), other);
  const b = loadBundle(file, join(dir, 'other'));
  assert.not.ok(b.cached, 'made for other bytes: not used');
  assert.is(await version(b), want);
  assert.not.ok(loadBundle(file, join(dir, 'missing')).cached);
  // (In a process of its own: this one has the bundle compiled already, so V8 never reads the data.)
  writeFileSync(join(dir, 'damaged'), damaged);
  const loader = `import { loadBundle } from ${JSON.stringify(join(ROOT, 'dist', 'cli', 'code-cache.js'))};
    const b = loadBundle(${JSON.stringify(file)}, ${JSON.stringify(join(dir, 'damaged'))});
    process.stdout.write(String(b.cached) + ' ');
    await b.exports.main(['--version'], { cwd: '/', env: {}, stdout: process.stdout, stderr: process.stderr, epoch: 0 });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', loader], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, `false ${want}`, 'damaged: rejected by V8, compiled as usual');
});

test('the bin, run from its code cache, loads packages on first use: check with an upstream schema, bake --target aws (the AWS SDK)', () => {
  if (!present) return;
  const dir = tmp();
  assert.is(run(['build', join(ROOT, 'test', 'fixtures', 'two-infra.yml'), '-o', 'out'], dir).status, 0);
  // A small draft-04 schema: the check loads ajv-draft-04 and ajv-formats for it.
  writeFileSync(join(dir, 'schema.json'), JSON.stringify({ $schema: 'http://json-schema.org/draft-04/schema#', type: 'object', properties: { hostname: { type: 'string', format: 'hostname' } } }));
  const c = run(['check', 'out', '--json', '--cloud-init-schema', 'schema.json'], dir);
  const rows = (JSON.parse(c.stdout) as { rows: { validator: string; result: string; message: string }[] }).rows.filter((r) => r.validator === 'upstream-schema');
  assert.ok(rows.length > 0, 'upstream-schema rows');
  for (const r of rows) assert.is(r.result, 'ok', `upstream-schema: ${r.result} ${r.message}`);
  // The SDK is loaded and asks for credentials: a clear failure, not an internal error.
  const b = spawnSync(BIN, ['bake', join(ROOT, 'test', 'fixtures', 'two-infra.yml'), '--target', 'aws', '--dry-run', '--aws-endpoint', 'http://127.0.0.1:9'], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: dir, NO_COLOR: '1', AWS_EC2_METADATA_DISABLED: 'true' },
  });
  assert.not.match(b.stderr, /internal error|dynamic import/i, b.stderr);
  assert.match(b.stderr, /AWS|credentials/);
});

test('the bundle runs `pigen bundle verify` (tar-stream inside the bundle)', () => {
  if (!present) return;
  const dir = tmp();
  writeFileSync(join(dir, 'x.tgz'), 'not a bundle');
  const r = run(['bundle', 'verify', 'x.tgz'], dir);
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stdout + r.stderr, /x\.tgz/);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
});

test.run();
