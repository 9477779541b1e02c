// The published entry point: `npm run build` bundles dist/cli.js with its pure-JS dependencies
// into dist/pigen.js (one file: start-up without resolving and loading ~150 modules), the `pigen`
// bin. It must behave exactly as the source: same trees, same diagnostics, same exit codes.
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
