// npm run bench: build scaling on synthetic inventories (10, 100, 1,000, 10,000 nodes) against the
// physical floor (cp -r of the produced tree), medians of 3 runs; writes bench/results.md.
// Not part of npm test: timing is measured here, never asserted in tests.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SIZES = (process.env.BENCH_SIZES ?? '10,100,1000,10000').split(',').map(Number);

function inventory(n: number): string {
  const infraCount = n >= 10000 ? 3 : 1;
  const ip = (i: number) => `10.${10 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${(i % 256) || 1}`;
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
    rest.slice(c * 10, c * 10 + 10).forEach((a, i) => (y += `        ${a}: { pg_seq: ${i + 1}, pg_role: ${i ? 'replica' : 'primary'} }\n`));
  }
  return y;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
function timed(cmd: string, args: string[]): { ms: number; rssKB: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.slice(-2000)}`);
  const rss = Number(r.stderr.trim().split('\n').pop());
  return { ms, rssKB: rss };
}
function countFiles(d: string): { files: number; bytes: number } {
  let files = 0, bytes = 0;
  for (const n of readdirSync(d)) {
    const p = join(d, n);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) { const c = countFiles(p); files += c.files; bytes += c.bytes; } else { files++; bytes += st.size; }
  }
  return { files, bytes };
}

const rows: string[] = [];
const work = mkdtempSync(join(tmpdir(), 'pigen-bench-'));
const targets: Record<number, number> = { 1000: 2000, 10000: 20000 };
for (const n of SIZES) {
  const inv = join(work, `inv-${n}.yml`);
  writeFileSync(inv, inventory(n));
  const builds: { ms: number; rssKB: number }[] = [];
  const copies: number[] = [];
  let stats = { files: 0, bytes: 0 };
  for (let r = 0; r < RUNS; r++) {
    const out = join(work, `out-${n}`);
    rmSync(out, { recursive: true, force: true });
    builds.push(timed(process.execPath, [CLI, 'build', inv, '-o', out, '--json']));
    stats = countFiles(out);
    const copy = join(work, `copy-${n}`);
    rmSync(copy, { recursive: true, force: true });
    copies.push(timed('cp', ['-r', out, copy]).ms);
  }
  const ms = median(builds.map((b) => b.ms));
  const rss = Math.max(...builds.map((b) => b.rssKB));
  const cp = median(copies);
  const target = targets[n];
  const verdict = target ? (ms <= target ? 'pass' : 'FAIL') : '—';
  rows.push(`| ${n} | ${ms.toFixed(0)} | ${(ms / n).toFixed(2)} | ${(rss / 1024).toFixed(0)} | ${stats.files} | ${(stats.bytes / 1048576).toFixed(1)} | ${cp.toFixed(0)} | ${(ms / cp).toFixed(1)}× | ${target ? `≤ ${target / 1000} s` : '—'} | ${verdict} |`);
  console.log(rows[rows.length - 1]);
}
rmSync(work, { recursive: true, force: true });

const report = `# pigen benchmarks

Machine: ${availableParallelism()} cores, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}. Medians of ${RUNS} runs (full \`pigen build\` as a child process, cold out/).

| nodes | build ms | ms/node | peak RSS MB | files | MB written | cp -r floor ms | vs floor | target | result |
|---:|---:|---:|---:|---:|---:|---:|---:|---|---|
${rows.join('\n')}

Targets (issue 7): 1,000 nodes ≤ 2 s; 10,000 nodes ≤ 20 s and ≤ 1.5 GB RSS; within 3× of the copy floor; linear growth.
Not yet measured here: the incremental rebuild, the Ansible peer and the bundle comparison.
`;
writeFileSync(join(ROOT, 'bench', 'results.md'), report);
console.log(`\nwrote bench/results.md`);
