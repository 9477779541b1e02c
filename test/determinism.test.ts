// Determinism and atomic writes of `pigen build`:
//  - the same inventory built twice gives byte-identical trees (same order, bytes, modes, links);
//  - the time zone, the locale and the umask of the process change neither bytes nor modes (the
//    modes come from the manifest);
//  - a rebuild that changes nothing rewrites no file; a rebuild after `--set` gives new inodes to
//    exactly the files whose bytes changed;
//  - SIGKILL at random moments of a build leaves the output directory holding the previous or the
//    new tree, complete, never a mix; the next build cleans up what the killed one left;
//  - `build -o DIR` refuses a non-empty directory that is not a pigen output and leaves it alone;
//  - the writer thread of `pigen build` leaves what the in-process writeTree leaves.
// The CLI runs from source as a child process (node --import tsx generator/cli.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ROOT, SHARED, TSX, needShared, prng, tmp } from './helpers.ts';
import { checkManifest, cliArgs, compileInventory, diffTrees, reportDiff, sameTree, scan, treeEntries, type BuildInput, type Entry } from './tree.ts';
import { isMountPoint, openTreeWriter, prevalidator, releaseLocks, takeLock, writeTree, writerOf } from '../generator/io.ts';
import type { OutTree } from '../generator/types.ts';

const TWO_INFRA = join(ROOT, 'test', 'fixtures', 'two-infra.yml');

/**
 * The two-infra fixture's tree as is (t1) and with node_exporter_port 9200 (t2), trees that differ
 * in a few files: compiled once for the tests of the writer that alternate between them.
 */
let twoTrees: { t1: OutTree; t2: OutTree } | undefined;
const twoInfraTrees = () =>
  (twoTrees ??= {
    t1: compileInventory({ cwd: dirname(TWO_INFRA), arg: 'two-infra.yml' }).tree,
    t2: compileInventory({ cwd: dirname(TWO_INFRA), arg: 'two-infra.yml', sets: ['node_exporter_port=9200'] }).tree,
  });

/** The child's environment: nothing inherited that could change the output, plus `extra`. */
function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k === 'TZ' || k === 'LANG' || k === 'LANGUAGE' || k.startsWith('LC_') || k === 'SOURCE_DATE_EPOCH' || k === 'FORCE_COLOR') continue;
    env[k] = v;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Runs `pigen ARGS` under `sh -c 'umask U; exec node …'`. */
function cli(args: string[], opts: { cwd?: string; env?: Record<string, string>; umask?: string } = {}) {
  const r = spawnSync('sh', ['-c', `umask ${opts.umask ?? '022'}; exec "$0" "$@"`, process.execPath, ...cliArgs(...args)], {
    cwd: opts.cwd ?? ROOT,
    env: opts.env ?? childEnv(),
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function assertOk(r: { code: number; stdout: string; stderr: string }, what: string) {
  assert.is(r.code, 0, `${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr.slice(0, 4000)}`);
}

function assertSame(actual: Map<string, Entry>, expected: Map<string, Entry>, labels: { actual: string; expected: string }, modes = true) {
  const d = diffTrees(actual, expected, { modes });
  if (!sameTree(d)) {
    throw new assert.Assertion({ message: `${labels.actual} differs from ${labels.expected}`, details: reportDiff(d, actual, expected, labels), operator: 'tree', expects: expected.size, actual: actual.size });
  }
}

const files = (m: Map<string, Entry>) => [...m].filter(([, e]) => e.kind === 'file') as [string, Extract<Entry, { kind: 'file' }>][];

// ── Determinism ─────────────────────────────────────────────────────────────

test('the same inventory built twice gives identical trees: order, bytes, modes, symlinks', () => {
  const emptyCwd = tmp('pigen-det-cwd-');
  const cases: [string, BuildInput][] = [
    ['two-infra', { cwd: ROOT, arg: 'test/fixtures/two-infra.yml' }],
    ['default', { cwd: emptyCwd }],
  ];
  if (needShared('determinism of simu and el9')) {
    cases.push(['simu', { cwd: SHARED!, arg: 'pigsty-conf/simu.yml' }], ['el9', { cwd: SHARED!, arg: 'pigsty-conf/el.yml', sets: ['os_profile=el9'] }]);
  }
  for (const [name, input] of cases) {
    const a = compileInventory(input);
    const b = compileInventory(input);
    assert.equal(a.tree.map((e) => e.path), b.tree.map((e) => e.path), `${name}: entry order`);
    assertSame(treeEntries(b.tree), treeEntries(a.tree), { actual: `${name} (second build)`, expected: `${name} (first build)` });
  }
  rmSync(emptyCwd, { recursive: true, force: true });
});

test('the child environment really differs: umask 077 vs 022, Pacific/Chatham tr-TR vs UTC C', () => {
  const probe = `process.stdout.write([process.umask().toString(8), Intl.DateTimeFormat().resolvedOptions().timeZone, new Intl.Collator().resolvedOptions().locale].join(' '))`;
  const run = (umask: string, env: Record<string, string>) =>
    spawnSync('sh', ['-c', `umask ${umask}; exec "$0" "$@"`, process.execPath, '--no-deprecation', '-e', probe], { env: childEnv(env), encoding: 'utf8' }).stdout;
  assert.is(run('077', { TZ: 'Pacific/Chatham', LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8' }), '77 Pacific/Chatham tr-TR');
  assert.is(run('022', { TZ: 'UTC', LC_ALL: 'C' }), '22 UTC en-US');
});

test('TZ, locale and umask change neither bytes nor modes; modes are those of the manifest', () => {
  const invs = [TWO_INFRA];
  if (needShared('environment determinism of simu')) invs.push(join(SHARED!, 'pigsty-conf', 'simu.yml'));
  for (const inv of invs) {
    const dir = tmp('pigen-env-');
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    assertOk(cli(['build', inv, '-o', a], { umask: '077', env: childEnv({ TZ: 'Pacific/Chatham', LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8' }) }), 'build under tr_TR/Chatham/077');
    assertOk(cli(['build', inv, '-o', b], { umask: '022', env: childEnv({ TZ: 'UTC', LC_ALL: 'C' }) }), 'build under C/UTC/022');
    const ta = scan(a, true);
    const tb = scan(b, true);
    assertSame(ta, tb, { actual: 'tr_TR/Chatham/077', expected: 'C/UTC/022' });
    // Both are what compile() says, modes included (in-process, the same inventory name).
    const expected = treeEntries(compileInventory({ cwd: ROOT, arg: inv }).tree);
    assertSame(new Map([...ta].filter(([, e]) => e.kind !== 'dir')), expected, { actual: 'tr_TR/Chatham/077 build', expected: 'compile()' });
    for (const [k, e] of ta) if (e.kind === 'dir') assert.is(e.mode, 0o755, `${k}/: directory mode ${e.mode.toString(8)}`);
    assert.is(lstatSync(a).mode & 0o7777, 0o755, 'the output directory itself is 0755 under umask 077');
    // The manifest's mode of every rootfs file is the mode on disk; user-data holds secrets: 0600.
    assert.equal(checkManifest(a), [], `${inv}: manifest vs tree`);
    for (const [k, e] of files(ta)) if (k.endsWith('/user-data')) assert.is(e.mode, 0o600, `${k} mode`);
    // pigen's own bookkeeping beside the outputs (states of the trees) is writable by its owner only,
    // even under umask 000.
    assertOk(cli(['build', inv, '-o', join(dir, 'c')], { umask: '000' }), 'build under umask 000');
    for (const o of ['a', 'b', 'c']) {
      const home = join(dir, `.${o}.pigen`);
      assert.is(lstatSync(home).mode & 0o022, 0, `.${o}.pigen is group/world-writable (${(lstatSync(home).mode & 0o777).toString(8)})`);
      const states = readdirSync(home).filter((n) => n.startsWith('state-'));
      assert.ok(states.length > 0, `${home}: no state`);
      for (const n of states) assert.is(lstatSync(join(home, n)).mode & 0o022, 0, `${o}: ${n} is group/world-writable (${(lstatSync(join(home, n)).mode & 0o777).toString(8)})`);
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

// ── Atomic writes ───────────────────────────────────────────────────────────

test('a rebuild that changes nothing rewrites no file (inode, mtime, ctime kept) and says so', () => {
  const dir = tmp('pigen-noop-');
  const out = join(dir, 'out');
  assertOk(cli(['build', TWO_INFRA, '-o', out]), 'first build');
  const before = scan(out, true);
  const outIno = lstatSync(out).ino;
  const r = cli(['build', TWO_INFRA, '-o', out]);
  assertOk(r, 'second build');
  assert.match(r.stdout, /up to date, nothing rewritten/);
  const after = scan(out, true);
  assert.is(lstatSync(out).ino, outIno, 'the output directory was replaced');
  assert.equal([...after.keys()], [...before.keys()]);
  for (const [k, e] of after) {
    const p = before.get(k)!;
    if (e.kind === 'file' && p.kind === 'file') {
      assert.is(e.ino, p.ino, `${k}: new inode`);
      assert.is(e.mtimeMs, p.mtimeMs, `${k}: mtime changed`);
      assert.is(e.ctimeMs, p.ctimeMs, `${k}: ctime changed`);
    } else if (e.kind === 'dir' && p.kind === 'dir') assert.is(e.ino, p.ino, `${k}/: directory replaced`);
  }
  const j = cli(['build', TWO_INFRA, '-o', out, '--json']);
  assertOk(j, 'third build (--json)');
  const stats = JSON.parse(j.stdout);
  assert.equal([stats.written, stats.removed, stats.unchanged], [0, 0, stats.files]);
  // Links apart (the infra nodes' rootfs links), in the count and in the tree.
  const kinds = [...scan(out).values()].map((e) => e.kind);
  assert.equal([stats.files, stats.links], [kinds.filter((k) => k === 'file').length, kinds.filter((k) => k === 'link').length]);
  assert.ok(stats.links > 0, 'TWO_INFRA has links');
  assert.equal(readdirSync(dir).sort(), ['.out.pigen', 'out'], 'nothing but the spare generation beside the output');
  rmSync(dir, { recursive: true, force: true });
});

test('--set node_exporter_port: only files whose bytes change get a new inode, the others keep theirs', () => {
  const dir = tmp('pigen-set-');
  const out = join(dir, 'out');
  const SET = 'node_exporter_port=9111';
  const base = compileInventory({ cwd: ROOT, arg: TWO_INFRA });
  const next = compileInventory({ cwd: ROOT, arg: TWO_INFRA, sets: [SET] });
  const baseMap = treeEntries(base.tree);
  const nextMap = treeEntries(next.tree);
  const changed = new Set(files(nextMap).filter(([k, e]) => { const p = baseMap.get(k); return !p || p.kind !== 'file' || !p.data.equals(e.data) || p.mode !== e.mode; }).map(([k]) => k));
  const removed = [...baseMap.keys()].filter((k) => !nextMap.has(k));
  const nFiles = files(nextMap).length;
  assert.ok(changed.size > 0 && changed.size < nFiles, `a port change should change some files, not all (${changed.size} of ${nFiles})`);
  assert.ok(changed.has('manifest.json'));

  assertOk(cli(['build', TWO_INFRA, '-o', out]), 'first build');
  const first = scan(out);
  const r = cli(['build', TWO_INFRA, '-o', out, '--set', SET]);
  assertOk(r, 'build with --set');
  assert.match(r.stdout, new RegExp(`\\(${changed.size} written, ${nFiles - changed.size} unchanged, ${removed.length} removed\\)`));
  const second = scan(out);
  assertSame(second, nextMap, { actual: 'output after --set', expected: 'compile() with --set' });
  for (const [k, e] of files(second)) {
    const p = first.get(k);
    if (changed.has(k)) assert.ok(!p || (p.kind === 'file' && p.ino !== e.ino), `${k} changed but kept its inode`);
    else {
      assert.ok(p && p.kind === 'file' && p.ino === e.ino && p.mtimeMs === e.mtimeMs, `${k} is unchanged but was rewritten`);
    }
  }
  // And back: the files that never changed still have the inode of the very first build.
  assertOk(cli(['build', TWO_INFRA, '-o', out]), 'build without --set');
  const third = scan(out);
  assertSame(third, baseMap, { actual: 'output after reverting --set', expected: 'compile()' });
  for (const [k, e] of files(third)) {
    const p = first.get(k) as Extract<Entry, { kind: 'file' }>;
    // A reverted file is the first build's file again (kept in the spare generation), never the --set build's.
    if (changed.has(k)) {
      const q = second.get(k);
      assert.ok(!q || q.kind !== 'file' || q.ino !== e.ino, `${k}: reverted file kept the inode of the --set build`);
    }
    // Content-addressed names (out/images/<name-with-hash>.*): gone in the --set build, written anew.
    else if (removed.includes(k)) assert.ok(k.startsWith('images/'), `${k}: only image files change names`);
    else assert.is(e.ino, p.ino, `${k}: unchanged through both builds but rewritten`);
  }
  assert.equal(readdirSync(dir).sort(), ['.out.pigen', 'out'], 'nothing but the spare generation beside the output');
  rmSync(dir, { recursive: true, force: true });
});

/** A synthetic inventory: 3 infra nodes, one etcd member, and pg clusters of 3 up to `n` nodes. */
function bigInventory(n: number): string {
  const l = ['all:', '  children:', '    infra:', '      hosts:'];
  l.push('        10.10.10.10: { infra_seq: 1 }', '        10.10.10.11: { infra_seq: 2, repo_enabled: false }', '        10.10.10.12: { infra_seq: 3, repo_enabled: false }');
  l.push('    etcd:', '      hosts:', '        10.10.10.10: { etcd_seq: 1 }', '      vars: { etcd_cluster: etcd }');
  let i = 3;
  for (let c = 1; i < n; c++) {
    l.push(`    pg-c${c}:`, '      hosts:');
    for (let s = 1; s <= 3 && i < n; s++, i++) l.push(`        10.10.${11 + Math.floor(i / 200)}.${(i % 200) + 1}: { pg_seq: ${s}, pg_role: ${s === 1 ? 'primary' : 'replica'} }`);
    l.push(`      vars: { pg_cluster: pg-c${c} }`);
  }
  l.push('  vars:', '    admin_ip: 10.10.10.10', '    infra_portal:', '      home: { domain: i.pigsty }');
  return l.join('\n') + '\n';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Nodes of the synthetic inventory and kills while writing (PIGEN_KILL_NODES, PIGEN_KILLS). */
const KILL_NODES = Number(process.env.PIGEN_KILL_NODES) || 60;
const KILLS = Number(process.env.PIGEN_KILLS) || 5;

test('SIGKILL at random moments of a build leaves the previous or the new tree, complete, never a mix', async () => {
  const seed = Number(process.env.PIGEN_SEED) || Date.now() % 1_000_000;
  const rand = prng(seed);
  const where = `(seed ${seed}; repeat with PIGEN_SEED=${seed})`;
  const dir = tmp('pigen-kill-');
  writeFileSync(join(dir, 'big.yml'), bigInventory(KILL_NODES));
  const out = join(dir, 'out');
  // Two trees that differ in many files: A (as written) and B (another node_exporter_port).
  const sets = { A: [] as string[], B: ['--set', 'node_exporter_port=9111'] };
  const trees = {
    A: treeEntries(compileInventory({ cwd: dir, arg: 'big.yml' }).tree),
    B: treeEntries(compileInventory({ cwd: dir, arg: 'big.yml', sets: ['node_exporter_port=9111'] }).tree),
  };
  const differing = files(trees.B).filter(([k, e]) => { const a = trees.A.get(k); return !a || a.kind !== 'file' || !a.data.equals(e.data); }).length;
  assert.ok(differing >= KILL_NODES, `A and B should differ in many files (${differing})`);

  /** Which complete tree `d` holds; fails on anything else. */
  const classify = (d: string, label: string): 'A' | 'B' => {
    const problems = checkManifest(d);
    assert.equal(problems, [], `${label} is not a complete, self-consistent output ${where}`);
    const s = scan(d);
    for (const k of ['A', 'B'] as const) if (sameTree(diffTrees(s, trees[k], { modes: true }))) return k;
    throw new assert.Assertion({ message: `${label} is neither the previous nor the new tree ${where}`, details: reportDiff(diffTrees(s, trees.A, { modes: true }), s, trees.A, { actual: label, expected: 'tree A' }), operator: 'kill', expects: 'A or B', actual: 'a mix' });
  };
  /**
   * The state after a kill: out/ holds A or B. The one moment it cannot is between the swap's two
   * renames (rename(2) cannot exchange two directories); then out/ is missing and the complete
   * previous tree waits in .out.pigen/old for the next build to put back.
   */
  const home = join(dir, '.out.pigen');
  const state = (): { tree: 'A' | 'B'; swap: boolean } => {
    if (existsSync(out)) return { tree: classify(out, 'out/'), swap: false };
    assert.ok(existsSync(join(home, 'old')), `out/ is missing and there is no .out.pigen/old to recover it ${where}: ${readdirSync(dir).join(' ')}`);
    return { tree: classify(join(home, 'old'), '.out.pigen/old'), swap: true };
  };
  /** A build is between its first and last write: the spare generation is being assembled (it has no state file), or the swap is under way. */
  const inFlight = () => {
    if (existsSync(join(home, 'old'))) return true;
    try {
      return !existsSync(join(home, `state-${lstatSync(join(home, 'spare')).ino}.json`));
    } catch {
      return false;
    }
  };
  const leftovers = () => (existsSync(home) ? readdirSync(home).filter((n) => n === 'old' || n.includes('.tmp-')) : []);

  /** Builds the other tree; kills it `delay` ms after it starts, or after it starts writing. */
  const attempt = async (kill?: { after: 'start' | 'writing'; delay: number }) => {
    const target = state().tree === 'A' ? 'B' : 'A';
    const t0 = performance.now();
    const child = spawn(process.execPath, cliArgs('build', 'big.yml', '-o', 'out', ...sets[target]), { cwd: dir, env: childEnv(), stdio: 'ignore' });
    let done = false;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
      child.on('exit', (code, signal) => {
        done = true;
        res({ code, signal });
      }),
    );
    let writingAt: number | undefined;
    if (!kill || kill.after === 'writing') {
      while (!done && !inFlight()) await new Promise((r) => setImmediate(r));
      if (!done) writingAt = performance.now();
    }
    let flightMs: number | undefined;
    if (!kill && writingAt !== undefined) {
      while (!done && inFlight()) await new Promise((r) => setImmediate(r));
      flightMs = performance.now() - writingAt;
    }
    let wasInFlight = false;
    if (kill) {
      await sleep(kill.delay);
      if (!done) {
        wasInFlight = inFlight();
        child.kill('SIGKILL');
      }
    }
    const { code, signal } = await exited;
    if (signal === 'SIGKILL') wasInFlight ||= inFlight();
    const left = leftovers();
    const after = state();
    if (signal !== 'SIGKILL') {
      assert.is(code, 0, `a build that was not killed failed ${where}`);
      assert.is(after.tree, target, `a build completed but out/ is not the new tree ${where}`);
    }
    const ms = performance.now() - t0;
    return { target, signal, code, after, left, wasInFlight, writeMs: flightMs, ms };
  };

  assertOk(cli(['build', 'big.yml', '-o', 'out'], { cwd: dir }), 'initial build');
  assert.is(state().tree, 'A');
  // Two complete rebuilds, to learn how long writing and swapping take here (the first one
  // assembles the spare generation from nothing, the second only what differs).
  await attempt();
  const full = await attempt();
  assert.is(full.after.tree, 'A');
  const writeMs = full.writeMs ?? 50;
  const log = [`complete rebuild: ${full.ms.toFixed(0)} ms, of which writing and swapping ${writeMs.toFixed(0)} ms`];
  let interrupted = 0;
  // Two kills in the first 5–200 ms (startup), then kills spread over the writing and the swap.
  const plan = [
    ...[0, 1].map(() => ({ after: 'start' as const, delay: 5 + Math.floor(rand() * 196) })),
    ...Array.from({ length: KILLS }, () => ({ after: 'writing' as const, delay: Math.floor(rand() * writeMs * 1.2) })),
  ];
  // The window is a few tens of ms and noticing it takes a moment, so while no kill has landed in
  // it, up to eight more aim at its first half.
  for (let i = 0; i < plan.length || (interrupted === 0 && i < plan.length + 8); i++) {
    const k = plan[i] ?? { after: 'writing' as const, delay: Math.floor(rand() * writeMs * 0.5) };
    const r = await attempt(k);
    if (r.signal === 'SIGKILL' && r.wasInFlight) interrupted++;
    log.push(`kill ${i}: ${k.after}+${k.delay}ms → ${r.signal ?? `exit ${r.code}`}${r.wasInFlight ? ' while writing' : ''}; out/ ${r.after.swap ? `missing, previous tree ${r.after.tree} set aside` : `is tree ${r.after.tree}`}${r.left.length ? `; left ${r.left.join(' ')}` : ''}`);
  }
  console.log(`  ${where}\n  ${log.join('\n  ')}`);
  assert.ok(interrupted >= 1, `no kill landed while the tree was being written; the test proved nothing ${where}\n${log.join('\n')}`);

  // A normal build recovers: the wanted tree, and nothing left beside it but the spare generation.
  const target = state().tree === 'A' ? 'B' : 'A';
  assertOk(cli(['build', 'big.yml', '-o', 'out', ...sets[target]], { cwd: dir }), 'build after the kills');
  assert.is(state().tree, target);
  assert.equal(readdirSync(dir).sort(), ['.out.pigen', 'big.yml', 'out'], `leftovers beside the output after a normal build ${where}`);
  assert.equal(readdirSync(home).filter((n) => !/^state-\d+\.json$/.test(n) && n !== 'redact.json'), ['spare'], `leftovers in .out.pigen ${where}`);
  // And the spare generation is a complete tree too (the one before).
  assert.is(classify(join(home, 'spare'), '.out.pigen/spare'), target === 'A' ? 'B' : 'A');
  rmSync(dir, { recursive: true, force: true });
});

test('a build cleans up after killed ones: partial spare, a swap cut between its renames or after them, trees of older versions', () => {
  const dir = tmp('pigen-recover-');
  const out = join(dir, 'out');
  const home = join(dir, '.out.pigen');
  const SET = 'node_exporter_port=9111';
  const A = treeEntries(compileInventory({ cwd: ROOT, arg: TWO_INFRA }).tree);
  const B = treeEntries(compileInventory({ cwd: ROOT, arg: TWO_INFRA, sets: [SET] }).tree);
  const only = (...names: string[]) => assert.equal(readdirSync(dir).sort(), names.sort(), `beside the output: ${readdirSync(dir).join(' ')}`);
  assertOk(cli(['build', TWO_INFRA, '-o', out]), 'first build');
  assertOk(cli(['build', TWO_INFRA, '-o', out, '--set', SET]), 'second build');
  assertSame(scan(join(home, 'spare')), A, { actual: '.out.pigen/spare', expected: 'compile()' });

  // Killed while assembling the spare: its state is gone, it holds a mix plus a stray file.
  const partial = (d: string) => {
    rmSync(join(d, 'manifest.json'));
    rmSync(join(d, 'nodes', '10.10.10.21'), { recursive: true });
    writeFileSync(join(d, 'stray.txt'), 'half-written\n');
  };
  for (const n of readdirSync(home)) if (n.startsWith('state-') && Number(n.slice(6, -5)) === lstatSync(join(home, 'spare')).ino) rmSync(join(home, n));
  partial(join(home, 'spare'));
  // Trees of older pigen versions: a partial staging tree, a complete set-aside one, a half-removed one.
  const legacy = (name: string) => {
    cpSync(out, join(dir, name), { recursive: true, verbatimSymlinks: true });
    partial(join(dir, name));
  };
  legacy('.out.new-999999');
  cpSync(out, join(dir, '.out.old-999998'), { recursive: true, verbatimSymlinks: true });
  legacy('.out.del-999997');
  // (And the user's own files of like names, which are none of them: kept, untouched. A review
  // found them removed, and `.out.old-mine` put in place of a missing output.)
  mkdirSync(join(dir, '.out.new-notes'));
  writeFileSync(join(dir, '.out.new-notes', 'todo.txt'), 'mine\n');
  mkdirSync(join(dir, '.out.old-backup-2024'));
  writeFileSync(join(dir, '.out.del-me-not'), 'mine\n');
  assertOk(cli(['build', TWO_INFRA, '-o', out]), 'build with leftovers');
  assertSame(scan(out), A, { actual: 'out/', expected: 'compile()' });
  only('.out.pigen', 'out', '.out.new-notes', '.out.old-backup-2024', '.out.del-me-not');
  assert.is(readFileSync(join(dir, '.out.new-notes', 'todo.txt'), 'utf8'), 'mine\n');
  for (const n of ['.out.new-notes', '.out.old-backup-2024', '.out.del-me-not']) rmSync(join(dir, n), { recursive: true });
  assertSame(scan(join(home, 'spare')), B, { actual: '.out.pigen/spare', expected: 'compile() with --set' });

  // Killed between the two renames of the swap: out/ is missing, the complete previous tree is set aside.
  renameSync(out, join(home, 'old'));
  assertOk(cli(['build', TWO_INFRA, '-o', out, '--set', SET]), 'build after a cut swap');
  assertSame(scan(out), B, { actual: 'out/', expected: 'compile() with --set' });
  only('.out.pigen', 'out');
  assert.equal(readdirSync(home).filter((n) => !n.startsWith('state-') && n !== 'redact.json'), ['spare']);

  // Killed after both renames, before the old tree became the spare.
  renameSync(join(home, 'spare'), join(home, 'old'));
  assertOk(cli(['build', TWO_INFRA, '-o', out]), 'build after a swap cut at its end');
  assertSame(scan(out), A, { actual: 'out/', expected: 'compile()' });
  assert.equal(readdirSync(home).filter((n) => !n.startsWith('state-') && n !== 'redact.json'), ['spare']);

  // A file edited in place in the output (through the hard link it shares with the spare) is noticed and rewritten.
  const f = join(out, 'nodes', '10.10.10.10', 'user-data');
  writeFileSync(f, readFileSync(f, 'utf8') + '# edited\n');
  assertOk(cli(['build', TWO_INFRA, '-o', out]), 'build after an edit');
  assertSame(scan(out), A, { actual: 'out/ after an edit', expected: 'compile()' });
  // A file added by hand does not survive into a later generation.
  writeFileSync(join(out, 'nodes', 'notes.txt'), 'mine\n');
  assertOk(cli(['build', TWO_INFRA, '-o', out, '--set', SET]), 'build after an added file');
  assertOk(cli(['build', TWO_INFRA, '-o', out]), 'and back');
  assertSame(scan(out), A, { actual: 'out/ two builds after an added file', expected: 'compile()' });
  rmSync(dir, { recursive: true, force: true });
});

test('build -o DIR refuses a non-empty directory that is not a pigen output, exit 2 (bad input), and leaves it untouched', () => {
  const dir = tmp('pigen-refuse-');
  const mine = join(dir, 'mine');
  mkdirSync(join(mine, 'sub'), { recursive: true });
  writeFileSync(join(mine, 'notes.txt'), 'my notes\n');
  writeFileSync(join(mine, 'sub', 'keep.txt'), 'keep me\n');
  chmodSync(join(mine, 'sub', 'keep.txt'), 0o600);
  const before = scan(mine, true);
  const ino = lstatSync(mine).ino;
  const r = cli(['build', TWO_INFRA, '-o', mine]);
  assert.is(r.code, 2, `exit code\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.match(r.stderr, /not a pigen output/);
  const after = scan(mine, true);
  assert.is(lstatSync(mine).ino, ino, 'the directory was replaced');
  assertSame(after, before, { actual: 'mine/ after', expected: 'mine/ before' });
  for (const [k, e] of after) {
    const p = before.get(k)!;
    if (e.kind === 'file' && p.kind === 'file') assert.ok(e.ino === p.ino && e.mtimeMs === p.mtimeMs && e.ctimeMs === p.ctimeMs, `${k} was touched`);
  }
  assert.equal(readdirSync(dir), ['mine'], 'nothing left beside the directory');
  // An existing empty directory is fine.
  mkdirSync(join(dir, 'empty'));
  assertOk(cli(['build', TWO_INFRA, '-o', join(dir, 'empty')]), 'build into an empty directory');
  assert.equal(checkManifest(join(dir, 'empty')), []);
  rmSync(dir, { recursive: true, force: true });
});

test('-o LINK (a symbolic link to a directory): built and rebuilt where it points; the link stays a link', () => {
  const dir = tmp('pigen-link-out-');
  mkdirSync(join(dir, 'real'));
  symlinkSync('real', join(dir, 'out'));
  assertOk(cli(['build', TWO_INFRA, '-o', 'out'], { cwd: dir }), 'first build');
  assertOk(cli(['build', TWO_INFRA, '-o', 'out', '--set', 'node_exporter_port=9111'], { cwd: dir }), 'second build');
  assert.ok(lstatSync(join(dir, 'out')).isSymbolicLink(), 'out is still a link');
  assert.equal(checkManifest(join(dir, 'real')), []);
  assert.match(readFileSync(join(dir, 'real', 'manifest.json'), 'utf8'), /node_exporter/);
  assert.equal(readdirSync(dir).sort(), ['.real.pigen', 'out', 'real']);
  // A link to nothing: a clear failure, nothing made.
  symlinkSync('nowhere', join(dir, 'dang'));
  const r = cli(['build', TWO_INFRA, '-o', 'dang'], { cwd: dir });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /dang is a symbolic link to nothing \(nowhere\)/);
  assert.equal(readdirSync(dir).sort(), ['.real.pigen', 'dang', 'out', 'real']);
  rmSync(dir, { recursive: true, force: true });
});

test('build refuses an inventory or secrets file inside -o DIR (every build replaces DIR whole), exit 2, touching nothing', () => {
  const dir = tmp('pigen-inside-');
  const out = join(dir, 'out');
  assertOk(cli(['build', TWO_INFRA, '-o', out]), 'first build');
  cpSync(TWO_INFRA, join(out, 'pigsty.yml'));
  writeFileSync(join(out, 'pigsty.secrets.yml'), 'not read\n');
  for (const args of [['build', join(out, 'pigsty.yml'), '-o', out], ['build', '-o', '.'], ['build', '--json', '-o', '.']]) {
    const r = cli(args, { cwd: args.includes('.') ? out : dir });
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, /the inventory .*pigsty\.yml lies inside the output directory/);
    if (args.includes('--json')) assert.match(JSON.parse(r.stdout).error, /lies inside the output directory/);
  }
  // A file whose name starts with '..' is inside too.
  cpSync(TWO_INFRA, join(out, '..inv.yml'));
  const dots = cli(['build', join(out, '..inv.yml'), '-o', out], { cwd: dir });
  assert.is(dots.code, 2, dots.stderr);
  rmSync(join(out, '..inv.yml'));
  // The secrets file alone (the inventory elsewhere): the same.
  writeFileSync(join(dir, 'pigsty.yml'), readFileSync(TWO_INFRA));
  const r = cli(['build', '-o', '.'], { cwd: dir });
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /lies inside the output directory/);
  assert.ok(existsSync(join(out, 'pigsty.yml')) && existsSync(join(out, 'pigsty.secrets.yml')), 'the inputs are still there');
  // Run from inside the output, the inventory outside it: refused too (a review found the shell
  // left in the previous tree, moved aside, which then looked empty, and the next build unable to
  // read ../pigsty.yml).
  mkdirSync(join(dir, 'elsewhere'));
  writeFileSync(join(dir, 'elsewhere', 'pigsty.yml'), readFileSync(TWO_INFRA));
  for (const [cwd, args] of [[out, ['build', join(dir, 'elsewhere', 'pigsty.yml'), '-o', '.']], [join(out, 'nodes'), ['build', join(dir, 'elsewhere', 'pigsty.yml'), '-o', '..']]] as const) {
    const r = cli([...args], { cwd });
    assert.is(r.code, 2, r.stderr);
    assert.match(r.stderr, /the current directory lies inside the output directory \.{1,2}, which every build replaces whole .*run pigen from outside it, e\.g\. from .*pigen-inside-[^/ ]+ with -o out/);
  }
  assert.equal(checkManifest(out), ['pigsty.secrets.yml: not in the manifest', 'pigsty.yml: not in the manifest'], 'the output is as it was, the two files put there by hand');
  rmSync(dir, { recursive: true, force: true });
});

test('the writer refuses an entry whose path leaves the tree (.., absolute, empty segments) and writes nothing', () => {
  const dir = tmp('pigen-escape-');
  const out = join(dir, 'out');
  for (const path of ['../escape', 'a/../../escape', '/etc/escape', 'a//b', './a', '']) {
    const tree: OutTree = [{ path: 'manifest.json', data: Buffer.from('{}\n'), mode: 0o644 }, { path, data: Buffer.from('x'), mode: 0o644 }];
    assert.throws(() => writeTree(out, tree), /outside the tree/, JSON.stringify(path));
  }
  assert.equal(readdirSync(dir).filter((n) => n !== '.out.pigen'), [], 'nothing written beside the output');
  assert.not.ok(existsSync(join(dir, 'escape')));
  rmSync(dir, { recursive: true, force: true });
});

test('one build writes an output at a time: another waits for its lock, a stale lock is taken over, two at once leave one complete tree', async () => {
  const dir = tmp('pigen-lock-');
  writeFileSync(join(dir, 'big.yml'), bigInventory(KILL_NODES));
  const out = join(dir, 'out');
  const lock = join(dir, '.out.pigen', 'lock');
  const trees = {
    A: treeEntries(compileInventory({ cwd: dir, arg: 'big.yml' }).tree),
    B: treeEntries(compileInventory({ cwd: dir, arg: 'big.yml', sets: ['node_exporter_port=9111'] }).tree),
  };
  assertOk(cli(['build', 'big.yml', '-o', 'out'], { cwd: dir }), 'first build');
  assert.not.ok(existsSync(lock), 'the lock is released after a build');
  const start = (sets: string[]) => {
    const child = spawn(process.execPath, cliArgs('build', 'big.yml', '-o', 'out', ...sets), { cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.stdout.resume();
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    return { exited, stderr: () => stderr };
  };

  // A live holder (another process's pid in the lock): the build waits, touching nothing, and
  // goes on once the holder is gone.
  const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
  const holderGone = new Promise((res) => holder.on('exit', res));
  // (Its start time beside the pid, as pigen writes it: /proc/<pid>/stat's field 22.)
  const stat = readFileSync(`/proc/${holder.pid}/stat`, 'utf8');
  writeFileSync(lock, `${holder.pid} ${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}\n`);
  const before = scan(out, true);
  const b = start(['--set', 'node_exporter_port=9111']);
  for (let i = 0; i < 600 && !b.stderr().includes('waiting for pid'); i++) await sleep(50);
  assert.match(b.stderr(), new RegExp(`waiting for pid ${holder.pid}, another pigen writing out .*remove .*\\.out\\.pigen/lock`));
  await sleep(300);
  assertSame(scan(out, true), before, { actual: 'out/ while waiting', expected: 'out/ before' });
  holder.kill('SIGKILL');
  await holderGone;
  assert.is(await b.exited, 0, `the waiting build: ${b.stderr()}`);
  assertSame(scan(out), trees.B, { actual: 'out/', expected: 'tree B' });
  assert.not.ok(existsSync(lock), 'the lock is released');

  // A stale lock (its pid ended: a build killed with SIGKILL) is taken over at once.
  const dead = spawnSync('true');
  writeFileSync(lock, `${dead.pid}\n`);
  const r = cli(['build', 'big.yml', '-o', 'out'], { cwd: dir });
  assertOk(r, 'build over a stale lock');
  assert.not.match(r.stderr, /waiting/);
  assertSame(scan(out), trees.A, { actual: 'out/', expected: 'tree A' });
  // A lock a build killed by Ctrl-C left, whose pid now belongs to another process (reused): the
  // start time beside the pid tells them apart, and it is taken over too. (pid 1 runs; its start
  // time is not 1.)
  writeFileSync(lock, '1 1\n');
  const reused = cli(['build', 'big.yml', '-o', 'out'], { cwd: dir });
  assertOk(reused, 'build over the lock of a dead process whose pid runs again');
  assert.not.match(reused.stderr, /waiting/);
  assert.not.ok(existsSync(lock), 'no lock left');
  // And a lock file with no pid in it (not one pigen writes: it links a complete file into place).
  writeFileSync(lock, 'garbage\n');
  assertOk(cli(['build', 'big.yml', '-o', 'out'], { cwd: dir }), 'build over a lock without a pid');
  assert.not.ok(existsSync(lock), 'no lock left');

  // Two builds at once, of different trees: both succeed, one after the other; out/ is complete.
  for (let round = 0; round < 3; round++) {
    const x = start([]);
    const y = start(['--set', 'node_exporter_port=9111']);
    assert.equal([await x.exited, await y.exited], [0, 0], `concurrent builds: ${x.stderr()} ${y.stderr()}`);
    assert.equal(checkManifest(out), [], 'out/ is a complete, self-consistent output');
    const s = scan(out);
    assert.ok(sameTree(diffTrees(s, trees.A, { modes: true })) || sameTree(diffTrees(s, trees.B, { modes: true })), 'out/ is tree A or tree B');
    // And the next build, over whatever they left, is right.
    assertOk(cli(['build', 'big.yml', '-o', 'out'], { cwd: dir }), 'build after the concurrent ones');
    assertSame(scan(out), trees.A, { actual: 'out/ rebuilt', expected: 'tree A' });
    assert.not.ok(existsSync(lock), 'no lock left');
  }
  rmSync(dir, { recursive: true, force: true });
});

// (A review found the takeover of a stale lock could move aside a live one taken just then, and a
// third build take the free name: two builds writing one spare. Now a stale lock is removed only
// under a second lock, `<lock>.takeover`, and only if it is still the one read.)
test('the lock under contention: processes that die holding it (stale locks) and live ones, never two holders at once; a stale takeover lock is taken over', async () => {
  const dir = tmp('pigen-lock-race-');
  const lock = join(dir, 'lock');
  const marker = join(dir, 'holder');
  // Each child takes the lock (waiting while it is busy), proves it holds it alone (a file made
  // with O_EXCL), and then either releases it or exits holding it, as a killed build does.
  const child = (die: boolean) =>
    new Promise<{ code: number | null; err: string }>((resolve) => {
      const script = `import { takeLock } from ${JSON.stringify(join(ROOT, 'generator/io.ts'))};
import { closeSync, openSync, rmSync } from 'node:fs';
let release;
for (let i = 0; ; i++) {
  try { release = takeLock(${JSON.stringify(lock)}, 'x'); break; } catch (e) { if (e.code !== 'EPIGENBUSY' || i > 20000) throw e; Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); }
}
closeSync(openSync(${JSON.stringify(marker)}, 'wx'));
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
rmSync(${JSON.stringify(marker)});
if (!${die}) release();
process.exit(0);`;
      const c = spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr!.on('data', (d) => (err += d));
      c.on('close', (code) => resolve({ code, err }));
    });
  const rnd = prng(11);
  const worker = async () => {
    for (let i = 0; i < 8; i++) {
      const r = await child(rnd() < 0.5);
      assert.is(r.code, 0, r.err);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  // A takeover lock left by a process that died in its moment: taken over, and removed after.
  const dead = spawnSync('true');
  writeFileSync(lock, `${dead.pid}\n`);
  writeFileSync(`${lock}.takeover`, `${dead.pid}\n`);
  const release = takeLock(lock, 'x');
  assert.not.ok(existsSync(`${lock}.takeover`), 'the takeover lock is gone');
  assert.match(readFileSync(lock, 'utf8'), new RegExp(`^${process.pid}\\b`));
  release();
  assert.equal(readdirSync(dir), [], 'no lock, temp file or marker left');
  // A directory or a link made by hand where the lock or the takeover lock goes is no lock:
  // removed (every build failed on it).
  mkdirSync(join(lock, 'sub'), { recursive: true });
  takeLock(lock, 'x')();
  assert.equal(readdirSync(dir), []);
  symlinkSync('nowhere', lock);
  takeLock(lock, 'x')();
  assert.equal(readdirSync(dir), []);
  writeFileSync(lock, `${dead.pid}\n`);
  mkdirSync(`${lock}.takeover`);
  takeLock(lock, 'x')();
  assert.equal(readdirSync(dir), []);
  // A takeover lock whose holder runs, known by pid and start time, is never taken from it: after
  // a second the output is busy, as with a live lock (a review found a live lock removed by a
  // build whose takeover was stalled and taken over).
  const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    const start = readFileSync(`/proc/${holder.pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[19];
    writeFileSync(lock, `${dead.pid}\n`);
    writeFileSync(`${lock}.takeover`, `${holder.pid} ${start}\n`);
    assert.throws(() => takeLock(lock, 'x'), (e: NodeJS.ErrnoException & { pid?: number }) => e.code === 'EPIGENBUSY' && e.pid === holder.pid);
    assert.is(readFileSync(lock, 'utf8'), `${dead.pid}\n`, 'the stale lock left as it was');
  } finally {
    holder.kill('SIGKILL');
  }
  rmSync(`${lock}.takeover`);
  takeLock(lock, 'x')();
  assert.equal(readdirSync(dir), []);
  rmSync(dir, { recursive: true, force: true });
});

test('a rebuild lists the previous output from its state while no directory changed, and walks it when one did: what was added by hand goes from both generations', () => {
  const dir = tmp('pigen-listing-');
  const a = join(dir, 'a');
  const { t1, t2 } = twoInfraTrees();
  // racyMs 0: a directory is trusted as soon as its mtime is the one recorded.
  const opts = { racyMs: 0 };
  writeTree(a, t1, opts);
  writeTree(a, t2, opts);
  writeTree(a, t1, opts);
  assert.is(writeTree(a, t2, opts).listed, 'state', 'nothing changed by hand: listed from the state');
  // By hand: a file deep in a node's tree, a directory with a file in it, an empty directory.
  const deep = dirname(files(treeEntries(t2))[0]![0]);
  writeFileSync(join(a, deep, 'by-hand.txt'), 'x\n');
  mkdirSync(join(a, 'nodes', 'by-hand'));
  writeFileSync(join(a, 'nodes', 'by-hand', 'f'), 'y\n');
  mkdirSync(join(a, 'images', 'empty-by-hand'));
  const s = writeTree(a, t1, opts);
  assert.is(s.listed, 'walked', 'a directory changed: walked');
  const t1Paths = new Set(t1.map((e) => e.path));
  assert.is(s.removed, 2 + t2.filter((e) => !t1Paths.has(e.path)).length, 'the two files added by hand, and what t1 does not have');
  assertSame(scan(a), treeEntries(t1), { actual: 'after the rebuild', expected: 't1' });
  assert.not.ok(existsSync(join(a, 'images', 'empty-by-hand')), 'the empty directory too');
  // The generation that had them is the spare now: the next builds carry none of it.
  for (const t of [t2, t1, t2]) {
    writeTree(a, t, opts);
    assertSame(scan(a), treeEntries(t), { actual: 'a later build', expected: 'its tree' });
    assert.not.ok(existsSync(join(a, 'images', 'empty-by-hand')), 'no empty directory comes back');
  }
  assert.is(writeTree(a, t1, opts).listed, 'state', 'trusted again');
  // A change undone (a file added and removed: its directory's mtime moved) makes one walk; the
  // walked generation's state is dropped, so neither generation is walked again after it.
  writeFileSync(join(a, deep, 'undone.txt'), 'x\n');
  rmSync(join(a, deep, 'undone.txt'));
  assert.equal([t2, t1, t2, t1].map((t) => writeTree(a, t, opts).listed), ['walked', 'state', 'state', 'state']);
  // The default window: directories changed just before the state was saved are read and compared
  // (a change in the same tick of the clock would not show in their mtime); nothing was added here.
  writeTree(a, t2);
  assert.is(writeTree(a, t1).listed, 'state');
  rmSync(dir, { recursive: true, force: true });
});

test('isMountPoint: the last mount on a path or its parents decides (one made later on a parent hides it); escaped names; a path under no mount of its own is none', () => {
  const d = tmp('pigen-mnt-');
  const b = join(d, 'a b', 'c');
  mkdirSync(b, { recursive: true });
  const esc = (p: string) => p.replaceAll(' ', '\\040');
  const line = (id: number, at: string) => `${id} 1 0:${id} / ${esc(at)} rw,relatime shared:${id} - tmpfs tmpfs rw`;
  const root = line(20, '/');
  assert.ok(isMountPoint(b, [root, line(30, b)].join('\n')), 'mounted on itself, its name escaped');
  assert.not.ok(isMountPoint(b, [root, line(30, b), line(31, join(d, 'a b'))].join('\n')), 'hidden by a mount on its parent made later');
  assert.ok(isMountPoint(join(d, 'a b'), [root, line(30, b), line(31, join(d, 'a b'))].join('\n')));
  assert.not.ok(isMountPoint(b, root), 'no mount of its own (a btrfs subvolume is another device, and no mount)');
  assert.not.ok(isMountPoint(join(d, 'missing'), root), 'not there yet');
  rmSync(d, { recursive: true, force: true });
});

test('directories with one mode other than 0755, all alike (a filesystem that ignores chmod: CIFS, drvfs), keep the fast listing; one unlike the others is walked', () => {
  const dir = tmp('pigen-dirmodes-');
  const a = join(dir, 'a');
  const { t1, t2 } = twoInfraTrees();
  const opts = { racyMs: 0 };
  for (const t of [t1, t2, t1]) writeTree(a, t, opts);
  const chmodAll = (root: string, mode: number) => {
    for (const e of readdirSync(root, { withFileTypes: true })) if (e.isDirectory()) chmodSync(join(root, e.name), mode), chmodAll(join(root, e.name), mode);
  };
  chmodAll(a, 0o777);
  chmodAll(join(dir, '.a.pigen', 'spare'), 0o777);
  assert.is(writeTree(a, t2, opts).listed, 'state', 'all alike: listed from the state');
  chmodSync(join(a, 'nodes'), 0o700);
  assert.is(writeTree(a, t1, opts).listed, 'walked', 'one unlike the others: walked');
  rmSync(dir, { recursive: true, force: true });
});

test('releaseLocks (a process stopped at once: a second Ctrl-C) removes the locks it holds, never one another process took since', () => {
  const dir = tmp('pigen-locks-');
  const a = join(dir, 'a.lock');
  const b = join(dir, 'b.lock');
  takeLock(a, 'a');
  takeLock(b, 'b');
  // b's lock removed while held (by hand) and taken by another process: its file written in place
  // of this one's (it may get the same inode number), not this one's to remove.
  rmSync(b);
  writeFileSync(b, '999999\n');
  // (The pid, and the start time that tells this process from a later one given its pid.)
  const stat = readFileSync('/proc/self/stat', 'utf8');
  assert.is(readFileSync(a, 'utf8'), `${process.pid} ${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}\n`);
  releaseLocks();
  assert.not.ok(existsSync(a), 'its own lock removed');
  assert.ok(existsSync(b), "another's lock left");
  assert.is(readFileSync(b, 'utf8'), '999999\n');
  releaseLocks();
  rmSync(dir, { recursive: true, force: true });
});

test("a directory's mode changed by hand is put back (0755, as every directory of a tree below its top, whose mode is the user's), in the output and in the spare: it does not come back with the swaps", () => {
  const dir = tmp('pigen-dirmode-');
  const a = join(dir, 'a');
  const { t1, t2 } = twoInfraTrees();
  const opts = { racyMs: 0 };
  const badModes = (root: string) => {
    const bad: string[] = [];
    const walk = (d: string, rel: string) => {
      if ((lstatSync(d).mode & 0o7777) !== 0o755) bad.push(rel || '.');
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name), rel ? `${rel}/${e.name}` : e.name);
    };
    walk(root, '');
    return bad;
  };
  const spare = join(dir, '.a.pigen', 'spare');
  writeTree(a, t1, opts);
  writeTree(a, t2, opts);
  const deep = dirname(files(treeEntries(t1))[0]![0]);
  // In the output (a node's directory) and in the spare: a no-op build puts them back. (The top's
  // mode is the user's: kept, and carried to the next generations.)
  for (const d of [a, join(a, deep), join(spare, deep)]) chmodSync(d, 0o700);
  writeTree(a, t2, opts);
  assert.equal(badModes(a), ['.'], 'the output after a build of the same tree: its top as the user made it');
  // Builds that change the tree, each swapping the generations.
  chmodSync(join(a, deep), 0o750);
  for (const t of [t1, t2, t1, t2]) {
    writeTree(a, t, opts);
    assert.equal(badModes(a), ['.'], 'every directory 0755 after each build, but the top');
    assert.is(lstatSync(a).mode & 0o7777, 0o700);
    assertSame(scan(a), treeEntries(t), { actual: 'the output', expected: 'its tree' });
  }
  assert.equal(badModes(spare), ['.'], 'and in the spare');
  rmSync(dir, { recursive: true, force: true });
});

test('hand damage is repaired, never followed: a deleted directory or manifest, empty directories, a replaced spare file, a spare or state swapped for a link or a directory', () => {
  const dir = tmp('pigen-damage-');
  const a = join(dir, 'a');
  const { t1, t2 } = twoInfraTrees();
  const opts = { racyMs: 0 };
  const home = join(dir, '.a.pigen');
  // Three builds: a live tree and a spare, both with states that record their directories.
  const settle = () => [t1, t2, t1].forEach((t) => writeTree(a, t, opts));
  const same = (what: string, t = t1) => assertSame(scan(a), treeEntries(t), { actual: what, expected: 'the tree' });
  const deep = dirname(files(treeEntries(t1))[0]![0]);
  settle();
  // A directory deleted from the output (every later build failed: lstat ENOENT).
  rmSync(join(a, deep), { recursive: true });
  writeTree(a, t1, opts);
  same('after a deleted directory');
  writeTree(a, t2, opts);
  same('and the build after it', t2);
  // manifest.json deleted: the tree is still pigen's (its state says so), and it is put back.
  rmSync(join(a, 'manifest.json'));
  writeTree(a, t2, opts);
  same('after a deleted manifest', t2);
  // Empty directories made by hand, nothing else changed: not a no-op, they go.
  mkdirSync(join(a, 'junk'));
  mkdirSync(join(a, 'nodes', 'junk2'));
  writeTree(a, t2, opts);
  assert.not.ok(existsSync(join(a, 'junk')) || existsSync(join(a, 'nodes', 'junk2')), 'empty directories removed');
  same('after empty directories', t2);
  // A file of the spare replaced (its state still says it is the live file's hard link).
  settle();
  const spareFile = join(home, 'spare', deep, readdirSync(join(home, 'spare', deep)).find((n) => lstatSync(join(home, 'spare', deep, n)).isFile())!);
  rmSync(spareFile);
  writeFileSync(spareFile, 'evil\n');
  writeTree(a, t2, opts);
  same('after a replaced spare file', t2);
  writeTree(a, t1, opts);
  same('and the build after it');
  // The spare swapped for a link to a directory outside: nothing there is touched or written.
  settle();
  const victim = join(dir, 'victim');
  mkdirSync(join(victim, 'sub'), { recursive: true });
  writeFileSync(join(victim, 'important.txt'), 'precious\n');
  rmSync(join(home, 'spare'), { recursive: true });
  symlinkSync(victim, join(home, 'spare'));
  writeTree(a, t2, opts);
  same('after a linked spare', t2);
  assert.is(readFileSync(join(victim, 'important.txt'), 'utf8'), 'precious\n');
  assert.ok(existsSync(join(victim, 'sub')));
  assert.ok(lstatSync(a).isDirectory(), 'the output is a directory, not the link');
  // A node directory of the spare swapped for a link outside.
  settle();
  const nodeDir = join(home, 'spare', 'nodes', readdirSync(join(home, 'spare', 'nodes'))[0]!);
  rmSync(nodeDir, { recursive: true });
  symlinkSync(victim, nodeDir);
  writeTree(a, t2, opts);
  writeTree(a, t1, opts);
  same('after a linked spare node directory');
  assert.equal(readdirSync(victim).sort(), ['important.txt', 'sub']);
  // Live files replaced by hand, each a new inode under its name (`sed -i`, same size; a link), in
  // files t1 and t2 share: the build that walks the tree puts them back, and the generation that
  // had them, the spare after it, must not vouch for them (a review found its state re-saved with
  // the directories' new mtimes: the hand-made files came back with the build after).
  settle();
  const e2 = treeEntries(t2);
  const shared = files(treeEntries(t1)).filter(([p, e]) => {
    const o = e2.get(p);
    return o?.kind === 'file' && o.data.equals(e.data);
  });
  const [edited, linked] = [shared[0]![0], shared[shared.length - 1]![0]];
  const text = readFileSync(join(a, edited));
  writeFileSync(join(a, edited + '.tmp'), Buffer.from(text.toString('latin1').replace(/[a-z]/, 'Z'), 'latin1'));
  renameSync(join(a, edited + '.tmp'), join(a, edited));
  rmSync(join(a, linked));
  symlinkSync('/etc/passwd', join(a, linked));
  for (const [i, t] of [t2, t1, t2, t1].entries()) {
    writeTree(a, t, opts);
    same(`build ${i + 1} after live files replaced by hand`, t);
  }
  // State files swapped for directories (an internal error, then every build failed).
  for (const n of readdirSync(home).filter((x) => x.startsWith('state-'))) {
    rmSync(join(home, n));
    mkdirSync(join(home, n));
  }
  writeTree(a, t2, opts);
  same('after states swapped for directories', t2);
  // pigen's home itself a link: refused, nothing followed.
  const out2 = join(dir, 'b');
  symlinkSync(victim, join(dir, '.b.pigen'));
  assert.throws(() => writeTree(out2, t1, opts), /\.b\.pigen is not a directory/);
  assert.equal(readdirSync(victim).sort(), ['important.txt', 'sub']);
  rmSync(dir, { recursive: true, force: true });
});

test('the writer threads (pigen build) leave what writeTree leaves, entries in any order: cold, no-op, changed, hand-edited, removed; their errors reach finish()', async () => {
  const dir = tmp('pigen-writer-');
  const a = join(dir, 'a'); // writeTree, here
  // openTreeWriter on one thread and on three, entries reversed
  // (and one thread given the output's files and directories checked beforehand on another:
  // prevalidator(), as pigen build does over a large output and --watch at every rebuild)
  const threaded = [1, 3].map((n) => ({ n, dir: join(dir, `t${n}`), pre: false })).concat([{ n: 1, dir: join(dir, 'p1'), pre: true }]);
  const pv = prevalidator();
  try {
    // `io`: compare the filesystem work too (after a failed build, the spares differ in how far each
    // writer got before it was stopped: the same output, with more or less work left).
    const both = async (tree: OutTree, io = true) => {
      const sa = writeTree(a, tree);
      for (const t of threaded) {
        const checked = t.pre ? pv.start(t.dir) : undefined;
        const prevalidated = checked && (await checked);
        // (racyMs -1: no directory is read for having been written in the tick of the save, as all
        // are here; the mtimes the other thread compared alone tell.)
        const w = openTreeWriter(t.dir, t.pre ? { racyMs: -1, ...(prevalidated ? { prevalidated } : {}) } : {}, t.n);
        for (const e of [...tree].reverse()) w.add(e);
        const sb = await w.finish();
        if (io) assert.equal(sb, sa, `stats, ${t.n} thread(s)`);
        else assert.equal({ ...sb, io: undefined }, { ...sa, io: undefined }, `stats, ${t.n} thread(s)`);
        assertSame(scan(t.dir), scan(a), { actual: `${t.n} thread(s)`, expected: 'writeTree' });
      }
      assertSame(scan(a), treeEntries(tree), { actual: 'written', expected: 'the tree' });
      return sa;
    };
    const { t1, t2 } = twoInfraTrees();
    assert.ok(new Set(t1.map((e) => writerOf(e.path, 3))).size === 3, 'three threads share the nodes');
    assert.is((await both(t1)).written, files(treeEntries(t1)).length, 'cold: every file written');
    assert.ok((await both(t1)).noop, 'the same tree again: nothing touched');
    const changed = await both(t2);
    assert.ok(changed.written > 0 && changed.unchanged > 0, `one var changed: ${JSON.stringify(changed)}`);
    await both(t1);
    // A file edited in the output is noticed and rewritten by all.
    const edited = files(treeEntries(t1))[0]![0];
    for (const d of [a, ...threaded.map((t) => t.dir)]) writeFileSync(join(d, edited), 'edited by hand\n');
    assert.is((await both(t1)).written, 1, 'the edited file rewritten');
    // A file added by hand (its directory's mtime moves, a clock tick later): noticed, and removed by all.
    await new Promise((resolve) => setTimeout(resolve, 30));
    for (const d of [a, ...threaded.map((t) => t.dir)]) writeFileSync(join(d, dirname(edited), 'added-by-hand'), 'x\n');
    assert.is((await both(t1)).removed, 1, 'the file added by hand removed');
    // A file added by hand to the spare generation beside each output: its directory's mtime tells
    // (for p1, on the prevalidating thread), the spare is walked, and the file is pruned before the
    // spare becomes the output (trusting the spare's state would carry it into the output).
    // (Two builds first: the one before left a spare without a state, never trusted.)
    await both(t2);
    await both(t1);
    await new Promise((resolve) => setTimeout(resolve, 30));
    for (const d of [a, ...threaded.map((t) => t.dir)]) writeFileSync(join(dirname(d), `.${basename(d)}.pigen`, 'spare', dirname(edited), 'added-to-spare'), 'x\n');
    assert.ok((await both(t2)).written > 0);
    await both(t1);
    const fewer = t1.filter((e) => !e.path.endsWith('/meta-data'));
    assert.is((await both(fewer)).removed, t1.length - fewer.length);
    // Files where the previous generations had directories and the other way round, near the top
    // (where writers share directories) and inside a node's tree.
    const f = (path: string): OutTree[number] => ({ path, data: new TextEncoder().encode(path + '\n'), mode: 0o644 });
    const shapeA: OutTree = [f('manifest.json'), f('top'), f('nodes/a'), ...['b', 'c', 'd', 'e'].flatMap((n) => [f(`nodes/${n}/x/1`), f(`nodes/${n}/y`)])];
    const shapeB: OutTree = [f('manifest.json'), ...['p', 'q', 'r', 's'].map((n) => f(`top/${n}/1`)), f('nodes/b'), f('nodes/c/x'), ...['a', 'd', 'e'].map((n) => f(`nodes/${n}/x/1`))];
    assert.ok(new Set(shapeB.map((e) => writerOf(e.path, 3))).size === 3);
    for (const t of [shapeA, shapeB, shapeA, shapeB, t1]) await both(t);
    // An entry that cannot be written: writeTree throws, the threads' finish() rejects, same error; the output stays.
    const bad: OutTree = [...t1, { path: `nodes/${'x'.repeat(300)}`, data: new Uint8Array(1), mode: 0o644 }];
    const before = scan(a);
    assert.throws(() => writeTree(a, bad), /ENAMETOOLONG|name too long/);
    for (const t of threaded) {
      const w = openTreeWriter(t.dir, {}, t.n);
      for (const e of bad) w.add(e);
      const e = await w.finish().then(() => undefined, (x: NodeJS.ErrnoException) => x);
      assert.is(e?.code, 'ENAMETOOLONG', `${t.n} thread(s): ${e?.message}`);
      assertSame(scan(t.dir), before, { actual: `${t.n} thread(s) after the failed build`, expected: 'before' });
    }
    assertSame(scan(a), before, { actual: 'a after the failed build', expected: 'before' });
    assert.ok((await both(t2, false)).written > 0, 'the next build after a failed one');
  } finally {
    await pv.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

test.run();
