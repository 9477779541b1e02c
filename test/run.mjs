#!/usr/bin/env node
// Test runner: runs every test/**/*.test.ts in its own Node process (through tsx), two at a time,
// prints each file's uvu report, then one closing line "N passed, N failed, N skipped". A test that
// cannot run here (a tool, root or ../shared missing) says `!!!!!!!! SKIP ...` and returns: each
// such notice counts as a skipped test, not a passed one (so the three add up to the tests run).
// Usage: node test/run.mjs [substring ...]   (only files whose path contains a substring)
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { availableParallelism } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);
function walk(dir) {
  return readdirSync(dir).sort().flatMap((n) => {
    const p = join(dir, n);
    if (n === 'fixtures' || n === 'golden' || n === 'node_modules') return [];
    return statSync(p).isDirectory() ? walk(p) : n.endsWith('.test.ts') ? [p] : [];
  });
}
const files = walk(join(root, 'test')).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
const jobs = Number(process.env.PIGEN_TEST_JOBS) || Math.max(1, Math.min(2, availableParallelism()));
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
let passed = 0, failed = 0, skipped = 0, crashed = [];

function runOne(file) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => {
      const text = strip(out);
      const num = (re) => { const m = text.match(re); return m ? Number(m[1]) : null; };
      const total = num(/Total:\s+(\d+)/), ok = num(/Passed:\s+(\d+)/), sk = num(/Skipped:\s+(\d+)/) ?? 0;
      const notices = (text.match(/^!!!!!!!! SKIP /gm) ?? []).length;
      const rel = relative(root, file);
      process.stdout.write(`\n── ${rel} (${((Date.now() - t0) / 1000).toFixed(1)}s)\n${out.trimEnd()}\n`);
      if (total == null || ok == null) { failed += 1; crashed.push(rel); }
      else { passed += Math.max(0, ok - notices); skipped += sk + Math.min(notices, ok); failed += Math.max(0, total - ok - sk); if (code !== 0 && total === ok + sk) { failed += 1; crashed.push(rel); } }
      resolve();
    });
  });
}
// uvu never runs a test registered after test.run(): such a file would pass while skipping it.
for (const f of files) {
  const src = readFileSync(f, 'utf8');
  const run = src.lastIndexOf('\ntest.run()');
  if (run >= 0 && /\ntest(\.only)?\(/.test(src.slice(run))) { failed += 1; crashed.push(`${relative(root, f)} (a test after test.run())`); }
}
const queue = [...files];
await Promise.all(Array.from({ length: jobs }, async () => { while (queue.length) await runOne(queue.shift()); }));
if (crashed.length) console.log(`\nfiles that crashed or exited non-zero: ${crashed.join(', ')}`);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
