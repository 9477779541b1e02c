// npm run bench (issue 7): pigen against the physical floor and its peers, medians of ≥ 3 runs,
// every figure with its target and pass/fail, written to bench/results.md. Not part of npm test:
// timing is measured here, never asserted in tests.
//
//   1. build scaling: synthetic inventories of 10, 100, 1,000, 10,000 nodes (one infra node up to
//      1,000; three at 10,000): wall time, peak RSS, files, per-node cost; the floors measured in
//      the same run: `cp -r` of the produced tree and writing the same bytes from one process;
//      incremental: one host var changed in the 1,000-node inventory, rebuild time and files
//      rewritten (the CLI's --json), against the files whose bytes really differ: by a new
//      `pigen build` process, and by `pigen build --watch` (the inventory replaced under it).
//   2. peer: the same per-node files for 100 nodes rendered by Ansible's template module
//      (ansible-core, connection local, forks 2), against pigen's full build of those 100 nodes.
//   3. bundle: a 1 GiB synthetic package directory (compressible and incompressible .deb files,
//      generated once in the temp dir and reused): pigen bundle against tar -czf and tar -I pigz.
//
// Environment: BENCH_QUICK=1 (sizes 10,100,1000; Ansible on 20 nodes; a 256 MiB bundle),
// BENCH_SIZES=10,100, BENCH_RUNS=3, BENCH_ONLY=build,incremental,ansible,bundle,
// BENCH_ANSIBLE_NODES, BENCH_ANSIBLE_RUNS (default 1: ~2.5 s a node), BENCH_BUNDLE_MIB, BENCH_KEEP=1
// (keep the work directory), BENCH_CLI (another pigen entry point; default dist/pigen.js, the bin),
// BENCH_OUT (report path).
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonLinesChild } from '../test/helpers.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = process.env.BENCH_CLI ?? join(ROOT, 'dist', 'pigen.js');
const QUICK = process.env.BENCH_QUICK === '1';
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const SIZES = (process.env.BENCH_SIZES ?? (QUICK ? '10,100,1000' : '10,100,1000,10000')).split(',').map(Number);
const ONLY = new Set((process.env.BENCH_ONLY ?? 'build,incremental,ansible,bundle').split(','));
const ANSIBLE_NODES = Number(process.env.BENCH_ANSIBLE_NODES ?? (QUICK ? 20 : 100));
const ANSIBLE_RUNS = Math.max(1, Number(process.env.BENCH_ANSIBLE_RUNS ?? 1));
const BUNDLE_MIB = Number(process.env.BENCH_BUNDLE_MIB ?? (QUICK ? 256 : 1024));

// ── what the sections run: checked before anything is measured ─────────────

/** Programs each section runs, and the Debian package that has each. */
const NEEDS: Record<string, [string, string][]> = {
  build: [['/usr/bin/time', 'time'], ['cp', 'coreutils']],
  incremental: [['/usr/bin/time', 'time']],
  ansible: [['/usr/bin/time', 'time'], ['ansible-playbook', 'ansible-core']],
  bundle: [['/usr/bin/time', 'time'], ['tar', 'tar'], ['pigz', 'pigz'], ['dpkg-deb', 'dpkg']],
};
{
  const missing = new Map<string, string>();
  for (const section of ONLY) for (const [cmd, pkg] of NEEDS[section] ?? []) if (spawnSync('sh', ['-c', `command -v "$1"`, 'sh', cmd]).status !== 0) missing.set(cmd, pkg);
  if (missing.size) {
    process.stderr.write(
      `bench: missing ${[...missing.keys()].join(', ')}: install them first (apt-get install ${[...new Set(missing.values())].join(' ')}), or leave their sections out (BENCH_ONLY=${[...ONLY].filter((s) => !(NEEDS[s] ?? []).some(([c]) => missing.has(c))).join(',')})\n`,
    );
    process.exit(2);
  }
}

// ── helpers ────────────────────────────────────────────────────────────────

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmtMs = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);
const log = (s: string) => process.stdout.write(s + '\n');

interface Timed {
  ms: number;
  rssMB: number;
  stdout: string;
}
/** Runs a command under /usr/bin/time: wall time (ms) and peak RSS (MB). Throws on failure. */
function timed(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Timed {
  const tf = join(work, `time-${process.pid}.txt`);
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', tf, cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 28, cwd: opts.cwd, env: opts.env ?? process.env });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stderr + r.stdout).slice(-3000)}`);
  const rssKB = Number(readFileSync(tf, 'utf8').trim().split('\n').pop());
  return { ms, rssMB: rssKB / 1024, stdout: r.stdout };
}

interface Tree {
  dirs: string[];
  files: { rel: string; data: Buffer; mode: number }[];
  links: { rel: string; target: string }[];
}
/** The whole tree in memory (for the write floor and for comparing two builds). */
function readTree(root: string): Tree {
  const t: Tree = { dirs: [], files: [], links: [] };
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const p = join(d, e.name);
      if (e.isSymbolicLink()) t.links.push({ rel: r, target: readlinkSync(p) });
      else if (e.isDirectory()) t.dirs.push(r), walk(p, r);
      else t.files.push({ rel: r, data: readFileSync(p), mode: lstatSync(p).mode & 0o7777 });
    }
  };
  walk(root, '');
  return t;
}
/** Writes a tree from memory: the floor for writing these bytes from one process. */
function writeFloor(t: Tree, dst: string): number {
  discard(dst);
  const t0 = performance.now();
  mkdirSync(dst);
  for (const d of t.dirs) mkdirSync(join(dst, d));
  for (const f of t.files) writeFileSync(join(dst, f.rel), f.data, { mode: f.mode });
  for (const l of t.links) symlinkSync(l.target, join(dst, l.rel));
  return performance.now() - t0;
}
const treeBytes = (t: Tree) => t.files.reduce((s, f) => s + f.data.length, 0);

// ── report ─────────────────────────────────────────────────────────────────

interface Row {
  section: string;
  figure: string;
  value: string;
  target: string;
  result: string;
}
const summary: Row[] = [];
const sections: string[] = [];
/** A figure against its target; `why`: said after a FAIL (what puts the target out of reach). */
const check = (section: string, figure: string, value: string, target: string, ok: boolean | undefined, why?: string) =>
  summary.push({ section, figure, value, target, result: ok === undefined ? '—' : ok ? 'pass' : why ? `FAIL (${why})` : 'FAIL' });
/** The `cp -r` floor of each build size, on the disk (measured in the build section). */
const copyFloor = new Map<number, number>();

// ── inventories ────────────────────────────────────────────────────────────

function inventory(n: number, hostExtra: Record<number, string> = {}): string {
  const infraCount = n >= 10000 ? 3 : 1;
  const ip = (i: number) => `10.${10 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256 || 1}`;
  const ips = new Set<string>();
  const list: string[] = [];
  for (let i = 10; list.length < n; i++) {
    const a = ip(i);
    if (!ips.has(a)) ips.add(a), list.push(a);
  }
  const infra = list.slice(0, infraCount);
  let y = `all:\n  vars:\n    admin_ip: ${infra[0]}\n    node_repo_modules: local\n  children:\n    infra:\n      hosts:\n`;
  infra.forEach((a, i) => (y += `        ${a}: { infra_seq: ${i + 1}${i ? ', repo_enabled: false' : ''} }\n`));
  const rest = list.slice(infraCount);
  for (let c = 0; c * 10 < rest.length; c++) {
    y += `    pg-c${c}:\n      vars: { pg_cluster: pg-c${c} }\n      hosts:\n`;
    rest.slice(c * 10, c * 10 + 10).forEach((a, i) => {
      const k = infraCount + c * 10 + i;
      y += `        ${a}: { pg_seq: ${i + 1}, pg_role: ${i ? 'replica' : 'primary'}${hostExtra[k] ? ', ' + hostExtra[k] : ''} }\n`;
    });
  }
  return y;
}

/**
 * Puts a tree out of the way. On tmpfs: removed. On the disk: renamed into the work directory's
 * trash/, removed when the bench ends. This VM's root filesystem is ext4 without a journal, and
 * there the inode allocator skips, one by one, every inode freed in the last minute
 * (`recently_deleted()` in fs/ext4/ialloc.c, 31 % of a `cp -r`'s samples in `perf`): removing a
 * tree and writing the next one into the same place made each run slower than the one before
 * (a 100-node `cp -r`: 0.55, 0.73, 0.86, 1.0, 1.2, 1.3 s in six cycles; 87 ms every time when
 * nothing was removed). That measures the removal, not the writer; so nothing on the disk is
 * removed while the bench times anything.
 */
function discard(path: string): void {
  if (!existsSync(path)) return;
  if (SHM && path.startsWith(SHM + '/')) return rmSync(path, { recursive: true, force: true });
  mkdirSync(trash, { recursive: true });
  renameSync(path, join(trash, String(trashed++)));
}
let trashed = 0;

/** Where pigen keeps an output's previous generation: .<name>.pigen/ beside it. */
const generationDir = (out: string) => join(dirname(out), `.${basename(out)}.pigen`);

/** Puts an output directory and its previous generation out of the way: a cold build. */
function rmOut(out: string): void {
  discard(out);
  discard(generationDir(out));
}

/**
 * Before a timed run: flushes the disk's dirty pages (their writeback would share the CPU with
 * the run) and, as root, drops the kernel's caches, then reads back what the run reads (node and
 * pigen; `warm`: the tree cp -r copies, the output a rebuild compares against). The bench writes
 * tens of GB: after a few 10,000-node builds this VM held 7 GB of dentry/inode slab and a page
 * cache full of old trees, and the same binary took 24.8 s where it takes 18.5 s after a drop.
 * (Tried and dropped: leaving the page cache (drop_caches 2) or doing the run once untimed
 * first: each made the disk runs slower and more variable, cp -r as much as pigen.) `drop`
 * false: only the sync (Ansible, and the bundle, whose 1 GiB input stays in the page cache).
 */
function settle(warm?: () => void, drop = true): void {
  spawnSync('sync');
  if (!drop || !canDropCaches) return;
  writeFileSync(DROP_CACHES, '3');
  spawnSync(process.execPath, [CLI, '--version']);
  warm?.();
}
const DROP_CACHES = '/proc/sys/vm/drop_caches';
const canDropCaches = (() => {
  try {
    accessSync(DROP_CACHES, constants.W_OK);
    return true;
  } catch {
    return false;
  }
})();

/** A directory on tmpfs (/dev/shm), where writing costs memory bandwidth, not the disk: pigen's own cost. */
const SHM = (() => {
  try {
    return existsSync('/dev/shm') ? mkdtempSync('/dev/shm/pigen-bench-') : undefined;
  } catch {
    return undefined;
  }
})();

function build(inv: string, out: string): Timed & { json: { files: number; written: number; unchanged: number; removed: number; io: { files: number; links: number; dirs: number; removed: number }; inputsUnchanged?: boolean } } {
  const t = timed(process.execPath, [CLI, 'build', inv, '-o', out, '--json']);
  return { ...t, json: JSON.parse(t.stdout) };
}

/** `pigen build --watch --json INV -o OUT` running: next() waits for its next build's JSON line (ok). */
function watchProcess(inv: string, out: string) {
  const child = jsonLinesChild([CLI, 'build', '--watch', '--json', inv, '-o', out]);
  return {
    async next() {
      const j = (await child.next(Infinity)) as { ok: boolean; ms: number; written: number; rendered: number };
      if (!j.ok) throw new Error(`pigen build --watch: ${JSON.stringify(j).slice(0, 3000)}`);
      return j;
    },
    stop: child.stop,
  };
}

/** RUNS cold builds into `out` (removed, and the disk settled, before each); the last one's output stays. */
function coldBuilds(inv: string, out: string): ReturnType<typeof build>[] {
  const runs: ReturnType<typeof build>[] = [];
  for (let r = 0; r < RUNS; r++) {
    rmOut(out);
    settle();
    runs.push(build(inv, out));
  }
  return runs;
}

const work = mkdtempSync(join(tmpdir(), 'pigen-bench-'));
const trash = join(work, 'trash');
const started = performance.now();
const fullBuildMs = new Map<number, number>();

// ── 1. build scaling ───────────────────────────────────────────────────────

if (ONLY.has('build')) {
  const rows: string[] = [];
  const perNode = new Map<number, number>();
  for (const n of SIZES) {
    const inv = join(work, `inv-${n}.yml`);
    writeFileSync(inv, inventory(n));
    const out = join(work, `out-${n}`);
    // tmpfs first: the disk's writeback of earlier trees runs in kernel threads that take CPU
    // from whatever runs next; `sync` before each timed run for the same reason.
    const shmBuilds: Timed[] = [];
    if (SHM) {
      const o = join(SHM, `out-${n}`);
      shmBuilds.push(...coldBuilds(inv, o));
      rmOut(o);
    }
    const builds = coldBuilds(inv, out);
    const files = builds[builds.length - 1]!.json.files;
    const shmMs = shmBuilds.length ? median(shmBuilds.map((b) => b.ms)) : NaN;
    const tree = readTree(out);
    const copies: number[] = [];
    const writes: number[] = [];
    const shmWrites: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const copy = join(work, `copy-${n}`);
      settle(() => readTree(out));
      copies.push(timed('cp', ['-r', out, copy]).ms);
      discard(copy);
      settle();
      writes.push(writeFloor(tree, join(work, `write-${n}`)));
      discard(join(work, `write-${n}`));
      if (SHM) {
        shmWrites.push(writeFloor(tree, join(SHM, `write-${n}`)));
        discard(join(SHM, `write-${n}`));
      }
    }
    const shmWr = shmWrites.length ? median(shmWrites) : NaN;
    const ms = median(builds.map((b) => b.ms));
    fullBuildMs.set(n, ms);
    const rss = Math.max(...builds.map((b) => b.rssMB));
    const cp = median(copies);
    const wr = median(writes);
    perNode.set(n, ms / n);
    rows.push(
      `| ${n.toLocaleString('en')} | ${fmtMs(ms)} | ${(ms / n).toFixed(2)} | ${Number.isNaN(shmMs) ? '—' : fmtMs(shmMs)} | ${rss.toFixed(0)} | ${files.toLocaleString('en')} | ${(treeBytes(tree) / 1048576).toFixed(1)} | ${fmtMs(cp)} | ${fmtMs(wr)} | ${(ms / cp).toFixed(2)}× | ${(ms / wr).toFixed(2)}× | ${Number.isNaN(shmWr) ? '—' : fmtMs(shmWr)} |`,
    );
    log(`build ${n}: ${fmtMs(ms)} (${builds.map((b) => fmtMs(b.ms)).join(', ')}), tmpfs ${fmtMs(shmMs)} (${shmBuilds.map((b) => fmtMs(b.ms)).join(', ')}), ${rss.toFixed(0)} MB, ${files} files; cp -r ${fmtMs(cp)}, write ${fmtMs(wr)}, tmpfs write ${fmtMs(shmWr)}`);
    copyFloor.set(n, cp);
    const floorAbove = (limit: number) => (cp > limit ? `cp -r of the tree alone takes ${fmtMs(cp)} here` : undefined);
    if (n === 1000) {
      check('build', '1,000 nodes: full build (disk)', fmtMs(ms), '≤ 2 s', ms <= 2000, floorAbove(2000));
      if (!Number.isNaN(shmMs)) check('build', '1,000 nodes: full build (tmpfs)', fmtMs(shmMs), '≤ 2 s', shmMs <= 2000);
    }
    if (n === 10000) {
      check('build', '10,000 nodes: full build (disk)', fmtMs(ms), '≤ 20 s', ms <= 20000, floorAbove(20000));
      if (!Number.isNaN(shmMs)) check('build', '10,000 nodes: full build (tmpfs)', fmtMs(shmMs), '≤ 20 s', shmMs <= 20000);
      check('build', '10,000 nodes: peak RSS', `${rss.toFixed(0)} MB`, '≤ 1,536 MB', rss <= 1536);
    }
    if (n >= 100) check('build', `${n.toLocaleString('en')} nodes: vs cp -r floor`, `${(ms / cp).toFixed(2)}×`, '≤ 3×', ms <= 3 * cp);
    rmOut(out);
  }
  const big = Math.max(...SIZES);
  const ref = SIZES.includes(1000) && big > 1000 ? 1000 : SIZES.includes(100) && big > 100 ? 100 : undefined;
  if (ref) {
    const growth = perNode.get(big)! / perNode.get(ref)!;
    check('build', `linear growth: ms/node ${big.toLocaleString('en')} vs ${ref.toLocaleString('en')}`, `${growth.toFixed(2)}×`, '≤ 1.25× (no superlinear step)', growth <= 1.25);
  }
  sections.push(`## Build scaling

Full \`pigen build\` (a child process, cold: no output and no previous generation beside it), medians
of ${RUNS} runs; peak RSS is the largest of the runs. \`build\` writes to the bench's work directory on
disk; \`tmpfs\` is the same build into /dev/shm, where creating a directory costs microseconds
instead of the disk's hundreds (pigen's own cost). Floors, measured in the same run on the produced
tree on disk: \`cp -r\` of it, and writing the same bytes (mkdir, write with mode, symlink) from one
Node process with everything already in memory; the last column is that write on tmpfs (what the
tmpfs build spends at least on writing). Every timed run on the disk writes where nothing was
removed in the last minute: this VM's ext4 has no journal, and its inode allocator then skips
each recently freed inode one by one, so a run after a removal measures the removal
(\`discard()\` in bench/run.ts); the bench removes its trees when it ends. Before each timed run the disk is synced${canDropCaches ? " and the kernel's caches dropped (then node, pigen and the tree cp -r reads are read back)" : ''}: see \`settle()\` in bench/run.ts.

| nodes | build | ms/node | tmpfs | peak RSS MB | files | MB written | cp -r floor | write floor | vs cp -r | vs write | tmpfs write floor |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}
`);
}

// ── incremental ────────────────────────────────────────────────────────────

/** Rebuilds a watching process does before its timed ones (V8 optimises its code meanwhile). */
const WATCH_WARMUP = 6;

if (ONLY.has('incremental')) {
  const n = 1000;
  const host = 500; // a pgsql node in the middle of the fleet
  const invA = join(work, 'incr-a.yml');
  const invB = join(work, 'incr-b.yml');
  writeFileSync(invA, inventory(n));
  writeFileSync(invB, inventory(n, { [host]: 'node_exporter_port: 9200' }));
  // The files whose bytes differ between the two builds (built cold, compared in memory).
  const dA = join(work, 'incr-ref-a');
  const dB = join(work, 'incr-ref-b');
  rmOut(dB);
  // The full build to compare with: the build section's 1,000-node median when it ran, else
  // measured here the same way (cold, settled, RUNS times).
  const fullMs = fullBuildMs.get(n) ?? median(coldBuilds(invA, dA).map((b) => b.ms));
  if (fullBuildMs.has(n)) rmOut(dA), build(invA, dA);
  build(invB, dB);
  const tA = readTree(dA);
  const tB = new Map(readTree(dB).files.map((f) => [f.rel, f]));
  const differ = tA.files.filter((f) => !tB.get(f.rel)?.data.equals(f.data) || tB.get(f.rel)!.mode !== f.mode).map((f) => f.rel);
  rmOut(dB);
  const out = dA;
  // The first rebuild over a fresh output has no previous generation to reuse yet: it assembles
  // one from nothing (every directory made, every unchanged file linked). Later ones reuse it.
  const first = build(invB, out);
  const rebuilds: { ms: number; written: number; io: number }[] = [];
  const noops: number[] = [];
  let noopsSkipped = 0;
  // (The output the rebuild compares against, and the generation it reuses, read back after the
  // drop, as they are after a build.)
  const warmOut = () => {
    readTree(out);
    const spare = join(generationDir(out), 'spare');
    if (existsSync(spare)) readTree(spare);
  };
  for (let r = 0; r < RUNS; r++) {
    settle(warmOut);
    const b = build(r % 2 === 0 ? invA : invB, out);
    rebuilds.push({ ms: b.ms, written: b.json.written, io: b.json.io.files + b.json.io.links + b.json.io.dirs + b.json.io.removed });
  }
  const last = RUNS % 2 === 0 ? invB : invA;
  for (let r = 0; r < RUNS; r++) {
    settle(warmOut);
    const b = build(last, out);
    noops.push(b.ms);
    if (b.json.inputsUnchanged) noopsSkipped++;
  }
  rmOut(out);
  const ms = median(rebuilds.map((b) => b.ms));
  const written = Math.max(...rebuilds.map((b) => b.written));
  const io = Math.max(...rebuilds.map((b) => b.io));
  log(`incremental: first ${fmtMs(first.ms)}, rebuild ${fmtMs(ms)} (${rebuilds.map((b) => `${fmtMs(b.ms)}/${b.written}w/${b.io}io`).join(', ')}), no-op ${fmtMs(median(noops))}; ${differ.length} files differ`);

  // The same rebuilds in a process that stays: `pigen build --watch`, the inventory file replaced
  // as an editor saves it (a rename); timed from the rename to the build's JSON line, so the
  // change notification and the debounce are in the figure. The disk settled before each, as above.
  const watched = join(work, 'incr-watch.yml');
  const outW = join(work, 'incr-watch-out');
  rmOut(outW);
  const replace = (src: string) => {
    writeFileSync(`${watched}.tmp`, readFileSync(src));
    renameSync(`${watched}.tmp`, watched);
  };
  replace(invA);
  const w = watchProcess(watched, outW);
  // A watching process runs for hours: its figure is its steady state, the median of 9 rebuilds
  // after WATCH_WARMUP rebuilds whose code V8 has not optimised yet (each as slow as ~0.1-0.3 s
  // more; listed in the report, timed the same way).
  const wRuns = Math.max(RUNS, 9);
  const watchRebuilds: { ms: number; written: number; rendered: number }[] = [];
  const warmups: number[] = [];
  let firstWatch: { ms: number; written: number } | undefined;
  try {
    await w.next(); // the first build
    replace(invB); // the first rebuild makes the spare generation (as `first` above)
    firstWatch = (({ ms, written }) => ({ ms, written }))(await w.next());
    for (let r = 0; r < WATCH_WARMUP + wRuns; r++) {
      settle(() => (readTree(outW), readTree(join(generationDir(outW), 'spare'))));
      const t0 = performance.now();
      replace(r % 2 === 0 ? invA : invB);
      const line = await w.next();
      if (r < WATCH_WARMUP) warmups.push(performance.now() - t0);
      else watchRebuilds.push({ ms: performance.now() - t0, written: line.written, rendered: line.rendered });
    }
  } finally {
    await w.stop();
  }
  rmOut(outW);
  const wms = median(watchRebuilds.map((b) => b.ms));
  const wWritten = Math.max(...watchRebuilds.map((b) => b.written));
  log(`incremental --watch: first ${fmtMs(firstWatch.ms)}, warm-up ${warmups.map(fmtMs).join(', ')}, rebuild ${fmtMs(wms)} (${watchRebuilds.map((b) => `${fmtMs(b.ms)}/${b.written}w/${b.rendered}r`).join(', ')})`);
  check('incremental', '1,000 nodes, one host var: rebuild in `pigen build --watch` vs full build', `${fmtMs(wms)} = ${((100 * wms) / fullMs).toFixed(0)} %`, '≤ 30 %', wms <= 0.3 * fullMs);
  check('incremental', '1,000 nodes, one host var: rebuild by a new `pigen build` process vs full build', `${fmtMs(ms)} = ${((100 * ms) / fullMs).toFixed(0)} %`, '≤ 30 %', ms <= 0.3 * fullMs, 'a new process reads, resolves and plans the whole inventory and checks every file: see the README');
  check('incremental', '1,000 nodes, nothing changed: a new `pigen build` process vs full build', `${fmtMs(median(noops))} = ${((100 * median(noops)) / fullMs).toFixed(0)} % (${noopsSkipped} of ${noops.length} skipped: same inputs)`, '— (no target)', undefined);
  check('incremental', '1,000 nodes, one host var: files rewritten', `${Math.max(written, wWritten)} (${differ.length} differ)`, 'only the affected files', written === differ.length && wWritten === differ.length);
  sections.push(`## Incremental rebuild

The 1,000-node inventory with \`node_exporter_port: 9200\` set on one host (${differ.length} files change:
${differ.map((d) => `\`${d}\``).join(', ')}), rebuilt over the previous output, alternating with the
original; medians of ${RUNS} runs. Full build: ${fmtMs(fullMs)}. \`files rewritten\` is what the build
reports as new or changed against the previous output; \`fs operations\` counts what it did to
assemble the new generation (files written, links and directories made, entries removed). The
first rebuild after a cold build has no previous generation to reuse and makes one. A no-op
rebuild (the inventory the output was made from, built again: ${noopsSkipped} of ${noops.length} skipped the build, its inputs
those of the last build and its output untouched: see \`pigen build\` in the README) prints the last build's report.

| rebuild by | rebuild | files rewritten | fs operations | first rebuild | no-op rebuild | vs full build |
|---|---:|---:|---:|---:|---:|---:|
| a new \`pigen build\` process | ${fmtMs(ms)} | ${written} | ${io} | ${fmtMs(first.ms)} | ${fmtMs(median(noops))} | ${((100 * ms) / fullMs).toFixed(0)} % |
| \`pigen build --watch\` (${wRuns} runs after ${WATCH_WARMUP} to warm up) | ${fmtMs(wms)} | ${wWritten} | — | ${fmtMs(firstWatch.ms)} | — | ${((100 * wms) / fullMs).toFixed(0)} % |

\`--watch\` renders again only the nodes whose plan changed (${Math.max(...watchRebuilds.map((b) => b.rendered))} here: the host and the infra
node, whose scrape targets name its port); its figure runs from the inventory's rename to the
build's line on stdout. A watching process runs for hours, so its figure is its steady state:
the timed runs (in order: ${watchRebuilds.map((b) => fmtMs(b.ms)).join(', ')}) come after ${WATCH_WARMUP} rebuilds
timed the same way but not counted, whose code V8 had not optimised yet (${warmups.map(fmtMs).join(', ')}).
`);
}

// ── 2. the Ansible peer ────────────────────────────────────────────────────

if (ONLY.has('ansible')) {
  const n = ANSIBLE_NODES;
  const dir = join(work, 'ansible');
  mkdirSync(join(dir, 'templates'), { recursive: true });
  const inv = join(work, `peer-${n}.yml`);
  writeFileSync(inv, inventory(n));
  // Both write to the same filesystem: tmpfs where there is one (this machine's disk makes each
  // directory cost hundreds of microseconds, which says nothing about either tool), else the disk.
  const peerBase = SHM ?? work;
  const ref = join(peerBase, 'peer-ref');
  discard(ref);
  const pigenRuns = coldBuilds(inv, ref);
  const manifest = JSON.parse(readFileSync(join(ref, 'manifest.json'), 'utf8')) as { nodes: Record<string, { nodename: string; cluster: string; files: { path: string; out: string }[] }> };
  // Templates made from pigen's own output, one set per kind of node (a plain node; the infra
  // node, whose vector.yaml also ships nginx's logs), from one sample of each kind with its IP,
  // name and cluster as variables, so Ansible writes the same bytes pigen does.
  const files = ['/etc/hosts', '/etc/chrony/chrony.conf', '/etc/default/node_exporter', '/etc/systemd/system/node_exporter.service', '/etc/vector/vector.yaml'];
  type Node = (typeof manifest.nodes)[string];
  const kindOf = (v: Node) => (v.files.some((f) => f.path.startsWith('/infra')) ? 'infra' : 'node');
  const hosts = Object.entries(manifest.nodes).filter(([, v]) => files.every((p) => v.files.some((f) => f.path === p)));
  const esc = (s: string) => s.replace(/\{\{|\{%|\{#/g, (m) => `{{ '${m}' }}`);
  for (const kind of new Set(hosts.map(([, v]) => kindOf(v)))) {
    const [sampleIp, sample] = hosts.find(([, v]) => kindOf(v) === kind)!;
    mkdirSync(join(dir, 'templates', kind), { recursive: true });
    files.forEach((p, i) => {
      const f = sample.files.find((x) => x.path === p)!;
      const text = esc(readFileSync(join(ref, f.out), 'utf8'))
        .split(sampleIp).join('{{ ip }}')
        .split(sample.nodename).join('{{ nodename }}')
        .split(sample.cluster).join('{{ cluster }}');
      writeFileSync(join(dir, 'templates', kind, `f${i}.j2`), text);
    });
  }
  writeFileSync(
    join(dir, 'hosts.ini'),
    '[nodes]\n' + hosts.map(([ip, v]) => `${v.nodename} ansible_connection=local ansible_python_interpreter=/usr/bin/python3 ip=${ip} nodename=${v.nodename} cluster=${v.cluster} kind=${kindOf(v)}`).join('\n') + '\n',
  );
  writeFileSync(join(dir, 'ansible.cfg'), '[defaults]\nforks = 2\ngathering = explicit\nhost_key_checking = False\nretry_files_enabled = False\nstdout_callback = minimal\nlocalhost_warning = False\n');
  writeFileSync(
    join(dir, 'play.yml'),
    `- hosts: nodes
  gather_facts: false
  tasks:
    - name: directories
      ansible.builtin.file: { path: "{{ out }}/{{ ip }}{{ item }}", state: directory, mode: "0755" }
      loop: [/etc/chrony, /etc/default, /etc/systemd/system, /etc/vector]
${files.map((p, i) => `    - name: ${p}\n      ansible.builtin.template: { src: "templates/{{ kind }}/f${i}.j2", dest: "{{ out }}/{{ ip }}${p}", mode: "0644" }`).join('\n')}
`,
  );
  const outA = join(peerBase, 'ansible-out');
  const runs: number[] = [];
  for (let r = 0; r < ANSIBLE_RUNS; r++) {
    discard(outA);
    settle(undefined, false);
    const t = timed('ansible-playbook', ['-i', 'hosts.ini', 'play.yml', '-e', `out=${outA}`], { cwd: dir, env: { ...process.env, ANSIBLE_CONFIG: join(dir, 'ansible.cfg'), ANSIBLE_NOCOLOR: '1' } });
    runs.push(t.ms);
  }
  let same = 0;
  let total = 0;
  for (const [ip, v] of hosts) {
    for (const p of files) {
      total++;
      const f = v.files.find((x) => x.path === p)!;
      const a = join(outA, ip, p);
      if (existsSync(a) && readFileSync(a).equals(readFileSync(join(ref, f.out)))) same++;
    }
  }
  // pigen on the disk too, for the record.
  const diskRuns: Timed[] = [];
  if (SHM) {
    const d = join(work, 'peer-ref-disk');
    diskRuns.push(...coldBuilds(inv, d));
    rmOut(d);
  }
  const diskMs = diskRuns.length ? median(diskRuns.map((t) => t.ms)) : NaN;
  const ams = median(runs);
  const pms = median(pigenRuns.map((t) => t.ms));
  const speedup = ams / pms;
  log(`ansible ${hosts.length} nodes: ${fmtMs(ams)} (${runs.map(fmtMs).join(', ')}); pigen ${fmtMs(pms)}${SHM ? ` (tmpfs; disk ${fmtMs(diskMs)})` : ''}; ${same}/${total} files identical; speedup ${speedup.toFixed(0)}×`);
  check('peer', `${n} nodes: pigen speedup over Ansible template${SHM ? ' (both on tmpfs)' : ''}`, `${speedup.toFixed(0)}×`, '≥ 200×', speedup >= 200);
  const cp = copyFloor.get(n);
  if (SHM) {
    check('peer', `${n} nodes: the same, pigen writing to the disk`, `${(ams / diskMs).toFixed(0)}×`, '≥ 200×', ams / diskMs >= 200,
      `the disk adds ${fmtMs(diskMs - pms)} to pigen's ${fmtMs(pms)}${cp !== undefined ? `; cp -r of the tree there: ${fmtMs(cp)}` : ''}`);
  }
  sections.push(`## Peer: Ansible's template module

ansible-core ${(spawnSync('ansible-playbook', ['--version'], { encoding: 'utf8' }).stdout.match(/core ([\d.]+)/) ?? [])[1] ?? '?'}, connection local, forks 2, no fact gathering: ${hosts.length} hosts, one task
creating the directories and one \`template\` task per file (${files.map((f) => `\`${f}\``).join(', ')}),
the templates made from pigen's own output, one set per kind of node (plain, infra) (${same} of ${total} files byte-identical to pigen's).
pigen: the full build of the same ${n}-node inventory (every file of every node, user-data, manifest).
${SHM ? `Both write to tmpfs (/dev/shm); pigen's build of the same inventory into the bench's directory on disk took ${fmtMs(diskMs)} (median of ${RUNS}).` : 'Both write to the bench directory on disk.'}
Medians of ${ANSIBLE_RUNS} Ansible runs and ${RUNS} pigen runs.

| Ansible (${hosts.length} × ${files.length} files) | Ansible per node | pigen full build | pigen per node | speedup |
|---:|---:|---:|---:|---:|
| ${fmtMs(ams)} | ${fmtMs(ams / hosts.length)} | ${fmtMs(pms)} | ${(pms / n).toFixed(1)} ms | ${speedup.toFixed(0)}× |
`);
  discard(outA);
  rmOut(ref);
}

// ── 3. bundle ──────────────────────────────────────────────────────────────

/** A reusable synthetic package directory: .deb files (dpkg-deb -Znone), half text-like, half random. */
function packageDir(mib: number): string {
  const dir = join(tmpdir(), `pigen-bench-pkgs-${mib}m`);
  if (existsSync(join(dir, '.complete'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const per = 16;
  const count = Math.max(2, Math.round(mib / per));
  const stage = join(work, 'deb-stage');
  for (let i = 0; i < count; i++) {
    const name = `bench-pkg-${String(i).padStart(3, '0')}`;
    const root = join(stage, name);
    mkdirSync(join(root, 'DEBIAN'), { recursive: true });
    mkdirSync(join(root, 'usr', 'share', 'bench'), { recursive: true });
    writeFileSync(join(root, 'DEBIAN', 'control'), `Package: ${name}\nVersion: 1.0-${i}\nArchitecture: amd64\nMaintainer: bench <bench@example.org>\nDescription: synthetic ${i % 2 ? 'incompressible' : 'compressible'} payload\n`);
    let data: Buffer;
    if (i % 2) data = randomBytes(per << 20);
    else {
      // Text-like: log lines with counters and a few random words (gzip ratio ~4-6×).
      const words = Array.from({ length: 512 }, () => randomBytes(6).toString('hex'));
      const lines: string[] = [];
      let size = 0;
      for (let k = 0; size < per << 20; k++) {
        const l = `2024-01-01T00:00:${String(k % 60).padStart(2, '0')}Z host-${k % 97} ${words[(k * 7919) % 512]} ${words[(k * 104729) % 512]} value=${k}\n`;
        lines.push(l);
        size += l.length;
      }
      data = Buffer.from(lines.join('')).subarray(0, per << 20);
    }
    writeFileSync(join(root, 'usr', 'share', 'bench', `${name}.dat`), data);
    const r = spawnSync('dpkg-deb', ['--root-owner-group', '-Znone', '--build', root, join(dir, `${name}_1.0-${i}_amd64.deb`)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`dpkg-deb: ${r.stderr}`);
    rmSync(root, { recursive: true, force: true });
  }
  writeFileSync(join(dir, '.complete'), '');
  return dir;
}

if (ONLY.has('bundle')) {
  const src = packageDir(BUNDLE_MIB);
  const srcBytes = readdirSync(src).filter((f) => f.endsWith('.deb')).reduce((s, f) => s + lstatSync(join(src, f)).size, 0);
  const outDir = join(work, 'bundle');
  mkdirSync(outDir, { recursive: true });
  const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
  const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };
  const measure = (label: string, cmd: string, args: (out: string) => string[], out: string) => {
    const runs: (Timed & { sha: string; size: number })[] = [];
    for (let r = 0; r < RUNS; r++) {
      rmSync(out, { force: true });
      settle(undefined, false);
      const t = timed(cmd, args(out), { env, cwd: src });
      runs.push({ ...t, sha: sha(out), size: lstatSync(out).size });
      rmSync(out, { force: true });
    }
    const ms = median(runs.map((r) => r.ms));
    log(`bundle ${label}: ${fmtMs(ms)} (${runs.map((r) => fmtMs(r.ms)).join(', ')}), ${Math.max(...runs.map((r) => r.rssMB)).toFixed(0)} MB RSS, ${(runs[0]!.size / 1048576).toFixed(0)} MiB`);
    return { ms, rss: Math.max(...runs.map((r) => r.rssMB)), size: runs[0]!.size, identical: runs.every((r) => r.sha === runs[0]!.sha) };
  };
  const pigen = measure('pigen', process.execPath, (o) => [CLI, 'bundle', '--from', src, '-o', o, '--quiet'], join(outDir, 'pigen.tgz'));
  const tgz = measure('tar -czf', 'tar', (o) => ['--sort=name', '-czf', o, '.'], join(outDir, 'tar.tgz'));
  const pigz = measure('tar -I pigz', 'tar', (o) => ['--sort=name', '-I', 'pigz', '-cf', o, '.'], join(outDir, 'pigz.tgz'));
  const mib = (srcBytes / 1048576).toFixed(0);
  check('bundle', `${mib} MiB: speedup over tar -czf`, `${(tgz.ms / pigen.ms).toFixed(2)}×`, '≥ 1.6×', tgz.ms / pigen.ms >= 1.6);
  check('bundle', `${mib} MiB: vs tar -I pigz`, `${(pigen.ms / pigz.ms).toFixed(2)}×`, '≤ 1.15×', pigen.ms <= 1.15 * pigz.ms);
  check('bundle', `${mib} MiB: peak RSS`, `${pigen.rss.toFixed(0)} MB`, '≤ 200 MB', pigen.rss <= 200);
  check('bundle', `${mib} MiB: same bytes across ${RUNS} runs`, pigen.identical ? 'identical' : 'DIFFERENT', 'identical', pigen.identical);
  const row = (name: string, m: { ms: number; rss: number; size: number; identical: boolean }) =>
    `| ${name} | ${fmtMs(m.ms)} | ${((srcBytes / 1048576 / m.ms) * 1000).toFixed(0)} | ${m.rss.toFixed(0)} | ${(m.size / 1048576).toFixed(0)} | ${m.identical ? 'yes' : 'no'} |`;
  sections.push(`## Bundle

${mib} MiB of synthetic .deb files (dpkg-deb -Znone, ${readdirSync(src).filter((f) => f.endsWith('.deb')).length} packages of 16 MiB: half text-like, half random bytes), generated
once in \`${src}\` and reused. pigen also reads every package's control data and writes the
APT index, manifest.size and manifest.sha256. Medians of ${RUNS} runs; RSS is the peak of the runs.

| tool | time | MiB/s | peak RSS MB | output MiB | same bytes every run |
|---|---:|---:|---:|---:|---|
${row('pigen bundle (level 6, -j ' + availableParallelism() + ')', pigen)}
${row('tar --sort=name -czf', tgz)}
${row('tar --sort=name -I pigz -cf', pigz)}
`);
}

// ── write the report ───────────────────────────────────────────────────────

// (The report is written before the work directory is removed: removing the trees set aside,
// tens of GB at 10,000 nodes, takes minutes on this disk and measures nothing.)
const total = (performance.now() - started) / 1000;
const report = `# pigen benchmarks

Machine: ${availableParallelism()} cores (nproc), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}; load average
at the end ${loadavg().map((x) => x.toFixed(1)).join(' / ')}. ${QUICK ? 'Reduced set (BENCH_QUICK=1). ' : ''}Generated by \`npm run bench\` in ${total.toFixed(0)} s${process.env.BENCH_CLI ? ` with ${process.env.BENCH_CLI}` : ''}.

## Every figure, its target (issue 7) and the result

| area | figure | value | target | result |
|---|---|---:|---|---|
${summary.map((r) => `| ${r.section} | ${r.figure} | ${r.value} | ${r.target} | ${r.result} |`).join('\n')}

${sections.join('\n')}`;
if (ONLY.size === 4 || process.env.BENCH_WRITE === '1') {
  const file = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results.md');
  writeFileSync(file, report);
  log(`\nwrote ${relative(process.cwd(), file) || file} (${total.toFixed(0)} s)`);
} else {
  log(report);
  log('(partial run: bench/results.md left as it is; BENCH_WRITE=1 writes it)');
}
if (SHM) rmSync(SHM, { recursive: true, force: true });
if (process.env.BENCH_KEEP !== '1') {
  log(`removing ${work} (the trees set aside)…`);
  rmSync(work, { recursive: true, force: true });
}
