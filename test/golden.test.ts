// Golden output trees: each case is built (in-process, written with writeTree into a temp dir) and
// compared byte for byte with test/golden/<name>/ — every file, the list of files and symlinks, and
// every symlink's target. On a mismatch the test prints the missing/extra files and a unified diff
// of the first differing files.
//
//   UPDATE=1 node test/run.mjs golden     rewrites test/golden/<name>/ (stale files are deleted)
//
// Inventories are named relative to a fixed directory (the manifest records the name given), so
// the golden trees hold nothing machine-specific; a test below checks that.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { writeTree } from '../generator/io.ts';
import { ROOT, SHARED, needShared, tmp } from './helpers.ts';
import { checkManifest, compileInventory, diffTrees, reportDiff, sameTree, scan, type BuildInput, type Entry } from './tree.ts';

const GOLDEN = join(ROOT, 'test', 'golden');
const UPDATE = process.env.UPDATE === '1' || process.env.UPDATE === 'true';

interface Case {
  name: string;
  /** Needs ../shared/fixtures. */
  shared: boolean;
  input: () => BuildInput;
}

const emptyDir = tmp('pigen-golden-cwd-');
const CASES: Case[] = [
  { name: 'meta', shared: true, input: () => ({ cwd: SHARED!, arg: 'pigsty-conf/meta.yml' }) },
  { name: 'full', shared: true, input: () => ({ cwd: SHARED!, arg: 'pigsty-conf/full.yml' }) },
  { name: 'simu', shared: true, input: () => ({ cwd: SHARED!, arg: 'pigsty-conf/simu.yml' }) },
  { name: 'el9', shared: true, input: () => ({ cwd: SHARED!, arg: 'pigsty-conf/el.yml', sets: ['os_profile=el9'] }) },
  { name: 'two-infra', shared: false, input: () => ({ cwd: ROOT, arg: 'test/fixtures/two-infra.yml' }) },
  // No argument and no ./pigsty.yml in the working directory: the embedded default inventory.
  { name: 'default', shared: false, input: () => ({ cwd: emptyDir }) },
];

/** Replaces test/golden/<name>/ with the built tree (files written 0644: git keeps no modes). */
function writeGolden(dir: string, built: Map<string, Entry>) {
  rmSync(dir, { recursive: true, force: true });
  for (const [rel, e] of built) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    if (e.kind === 'file') writeFileSync(p, e.data);
    else if (e.kind === 'link') symlinkSync(e.target, p);
  }
}

const builtTrees = new Map<string, Map<string, Entry>>();
/** The temp directories the cases were built in: their paths must not leak into the output. */
const buildDirs: string[] = [];

for (const c of CASES) {
  test(`golden tree: ${c.name}`, () => {
    if (c.shared && !needShared(`golden ${c.name}`)) return;
    const compiled = compileInventory(c.input());
    const out = join(tmp('pigen-golden-'), 'out');
    buildDirs.push(dirname(out));
    writeTree(out, compiled.tree);
    const built = scan(out);
    rmSync(dirname(out), { recursive: true, force: true });
    builtTrees.set(c.name, built);
    assert.ok(built.size > 0, 'the build wrote nothing');
    for (const [k, e] of built) assert.ok(e.kind === 'file' || e.kind === 'link', `${k}: unexpected ${e.kind} in the output`);

    const dir = join(GOLDEN, c.name);
    if (UPDATE) {
      writeGolden(dir, built);
      console.log(`  updated test/golden/${c.name}/ (${built.size} entries)`);
    }
    assert.ok(existsSync(dir), `test/golden/${c.name}/ does not exist; create it with UPDATE=1 node test/run.mjs golden`);
    const golden = scan(dir);
    const d = diffTrees(built, golden);
    if (!sameTree(d)) {
      const report = reportDiff(d, built, golden, { actual: 'built', expected: `test/golden/${c.name}` });
      throw new assert.Assertion({
        message: `golden tree ${c.name} differs from the build (if intended: UPDATE=1 node test/run.mjs golden, then review git diff test/golden)`,
        details: report,
        operator: 'golden',
        expects: `${golden.size} entries`,
        actual: `${built.size} entries`,
      });
    }
  });
}

test('golden trees are self-consistent pigen outputs (manifest lists every file with its sha256)', () => {
  for (const c of CASES) {
    if (c.shared && !SHARED) continue;
    const dir = join(GOLDEN, c.name);
    if (!existsSync(dir)) continue; // reported by the case itself
    // Golden files are stored 0644 (git keeps no modes), so modes are checked in determinism.test.ts.
    const problems = checkManifest(dir).filter((p) => !/: mode \d+, manifest says/.test(p));
    assert.equal(problems, [], `test/golden/${c.name}`);
  }
});

test('golden trees hold nothing machine-specific: no absolute paths of this machine, no date of today', () => {
  const today = new Date().toISOString().slice(0, 10);
  const needles = [ROOT, emptyDir, ...buildDirs, ...(SHARED ? [SHARED] : []), today, ...(hostname().length >= 6 ? [hostname()] : [])];
  assert.ok(builtTrees.size > 0, 'no golden case was built');
  for (const [name, tree] of builtTrees) {
    for (const [k, e] of tree) {
      if (e.kind !== 'file') continue;
      const text = e.data.toString('utf8');
      for (const n of needles) assert.not.ok(text.includes(n), `${name}: ${k} contains ${JSON.stringify(n)}`);
    }
    const m = JSON.parse(tree.get('manifest.json')!.kind === 'file' ? (tree.get('manifest.json') as { data: Buffer }).data.toString('utf8') : '{}');
    assert.not.match(String(m.inventory), /^\//, `${name}: the manifest names the inventory by an absolute path`);
  }
});

test('no stale golden directories (every test/golden/<name>/ belongs to a case)', () => {
  if (!existsSync(GOLDEN)) return;
  const names = new Set(CASES.map((c) => c.name));
  const stale = scan(GOLDEN, true);
  const top = [...stale.keys()].filter((k) => !k.includes('/'));
  for (const t of top) {
    if (UPDATE && !names.has(t)) {
      rmSync(join(GOLDEN, t), { recursive: true, force: true });
      continue;
    }
    assert.ok(names.has(t), `test/golden/${t} is not a golden case (delete it, or run with UPDATE=1)`);
  }
});

test.after(() => rmSync(emptyDir, { recursive: true, force: true }));

test.run();
