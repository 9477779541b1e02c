// Helpers for tests that look at whole output trees (golden.test.ts, determinism.test.ts):
// in-process builds, scanning a directory, comparing trees, a small unified diff, and the CLI
// command line for child processes.
import { lstatSync, readFileSync, readdirSync, readlinkSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { loadInventory } from '../generator/cli/common.ts';
import { main } from '../generator/cli/main.ts';
import { compile, type Compiled } from '../generator/compile.ts';
import { formatDiagnostics } from '../generator/diagnostics.ts';
import { packageVersion, readAssets } from '../generator/io.ts';
import type { CliContext } from '../generator/cli/context.ts';
import type { Inventory, OutTree } from '../generator/types.ts';
import { ROOT, TSX } from './helpers.ts';

/** The CLI from source, run through tsx (TSX is resolved absolutely, so any cwd works). */
export const CLI = join(ROOT, 'generator', 'cli.ts');
export const cliArgs = (...args: string[]) => ['--import', TSX, CLI, ...args];

/** The CLI in this process (main), in `cwd`, no TTY: its exit code and what it wrote to stdout and stderr. */
export async function mainIn(cwd: string, argv: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const c: CliContext = { cwd, env, stdout: { write: (s) => void out.push(String(s)), isTTY: false }, stderr: { write: (s) => void err.push(String(s)), isTTY: false }, epoch: 0 };
  const code = await main(argv, c);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

export const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

export interface BuildInput {
  /** Working directory the inventory argument is relative to (it is what the manifest records). */
  cwd: string;
  /** Inventory path as given on the command line; undefined: ./pigsty.yml or the embedded default. */
  arg?: string;
  /** --set KEY=VALUE strings. */
  sets?: string[];
}

/** Loads and resolves in-process exactly as `pigen build` does; throws on errors. */
export function loadForBuild(input: BuildInput): Inventory {
  const quiet = { write: () => {}, isTTY: false };
  const ctx: CliContext = { cwd: input.cwd, env: {}, stdout: quiet, stderr: quiet, epoch: 0 };
  const r = loadInventory(ctx, input.arg, input.sets ?? [], false);
  if (!r.inventory) {
    const sources = new Map<string, string>();
    if (r.source) sources.set(r.source.name, r.sourceText ?? '');
    throw new Error(`cannot build ${input.arg ?? '(default)'}:\n${formatDiagnostics(r.diagnostics, { color: false, sources })}`);
  }
  return r.inventory;
}

/** Loads, resolves and compiles in-process exactly as `pigen build` does; throws on errors. */
export function compileInventory(input: BuildInput): Compiled {
  return compile(loadForBuild(input), readAssets(), { version: packageVersion() });
}

export type Entry =
  | { kind: 'file'; data: Buffer; mode: number; ino: number; mtimeMs: number; ctimeMs: number }
  | { kind: 'link'; target: string }
  | { kind: 'dir'; mode: number; ino: number }
  | { kind: 'other' };

/** Every entry under dir (not following symlinks), by relative path with '/', sorted. */
export function scan(dir: string, withDirs = false): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const walk = (d: string, prefix: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const rel = prefix ? `${prefix}/${n}` : n;
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.set(rel, { kind: 'link', target: readlinkSync(p) });
      else if (st.isDirectory()) {
        if (withDirs) out.set(rel, { kind: 'dir', mode: st.mode & 0o7777, ino: st.ino });
        walk(p, rel);
      } else if (st.isFile()) {
        out.set(rel, { kind: 'file', data: readFileSync(p), mode: st.mode & 0o7777, ino: st.ino, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs });
      } else out.set(rel, { kind: 'other' });
    }
  };
  walk(dir, '');
  return out;
}

/** An in-memory tree as scan() would see it once written (no inode data). */
export function treeEntries(tree: OutTree): Map<string, Entry> {
  const m = new Map<string, Entry>();
  for (const e of tree) {
    if ('link' in e) m.set(e.path, { kind: 'link', target: e.link });
    else m.set(e.path, { kind: 'file', data: Buffer.from(e.data), mode: e.mode, ino: 0, mtimeMs: 0, ctimeMs: 0 });
  }
  return m;
}

export interface TreeDiff {
  /** In expected, not in actual. */
  missing: string[];
  /** In actual, not in expected. */
  extra: string[];
  /** Different kind (file vs symlink) or different symlink target. */
  kind: string[];
  /** Files whose bytes differ. */
  content: string[];
  /** Files whose mode differs (only when compared). */
  mode: string[];
}

export function diffTrees(actual: Map<string, Entry>, expected: Map<string, Entry>, opts: { modes?: boolean } = {}): TreeDiff {
  const d: TreeDiff = { missing: [], extra: [], kind: [], content: [], mode: [] };
  for (const k of expected.keys()) if (!actual.has(k)) d.missing.push(k);
  for (const [k, a] of actual) {
    const e = expected.get(k);
    if (!e) {
      d.extra.push(k);
      continue;
    }
    if (a.kind !== e.kind) d.kind.push(`${k}: ${e.kind} expected, ${a.kind} found`);
    else if (a.kind === 'link' && e.kind === 'link') {
      if (a.target !== e.target) d.kind.push(`${k}: symlink to ${e.target} expected, to ${a.target} found`);
    } else if (a.kind === 'file' && e.kind === 'file') {
      if (!a.data.equals(e.data)) d.content.push(k);
      if (opts.modes && a.mode !== e.mode) d.mode.push(`${k}: ${e.mode.toString(8)} expected, ${a.mode.toString(8)} found`);
    } else if (a.kind === 'dir' && e.kind === 'dir') {
      if (opts.modes && a.mode !== e.mode) d.mode.push(`${k}/: ${e.mode.toString(8)} expected, ${a.mode.toString(8)} found`);
    }
  }
  return d;
}

export const sameTree = (d: TreeDiff) => !d.missing.length && !d.extra.length && !d.kind.length && !d.content.length && !d.mode.length;

/** A readable report of a tree difference: lists, then unified diffs of the first `diffs` files. */
export function reportDiff(d: TreeDiff, actual: Map<string, Entry>, expected: Map<string, Entry>, labels: { actual: string; expected: string }, diffs = 3): string {
  const list = (title: string, xs: string[], max = 40) =>
    xs.length ? `${title} (${xs.length}):\n${xs.slice(0, max).map((x) => `    ${x}`).join('\n')}${xs.length > max ? `\n    … and ${xs.length - max} more` : ''}\n` : '';
  let s = '';
  s += list(`missing: in ${labels.expected}, not in ${labels.actual}`, d.missing);
  s += list(`extra: in ${labels.actual}, not in ${labels.expected}`, d.extra);
  s += list('kind or symlink target differs', d.kind);
  s += list('mode differs', d.mode);
  s += list('content differs', d.content);
  for (const k of d.content.slice(0, diffs)) {
    const a = actual.get(k) as { data: Buffer };
    const e = expected.get(k) as { data: Buffer };
    s += '\n' + unifiedDiff(e.data, a.data, `${labels.expected}/${k}`, `${labels.actual}/${k}`);
  }
  return s;
}

const isText = (b: Buffer) => !b.includes(0) && Buffer.from(b.toString('utf8'), 'utf8').equals(b);

/**
 * A unified diff (3 lines of context) from a to b, at most maxLines lines. Common leading and
 * trailing lines are trimmed first; the rest is an LCS diff, or a plain replace when too large.
 */
export function unifiedDiff(a: Uint8Array, b: Uint8Array, labelA: string, labelB: string, maxLines = 120): string {
  const ba = Buffer.from(a), bb = Buffer.from(b);
  const head = `--- ${labelA}\n+++ ${labelB}\n`;
  if (!isText(ba) || !isText(bb)) return `${head}binary files differ (${ba.length} vs ${bb.length} bytes)\n`;
  // Lines as diff(1) sees them: a last line without a newline is a different line (marked).
  const NOEOL = '\u0000noeol';
  const split = (t: string) => {
    if (t === '') return [];
    const ls = t.split('\n');
    if (ls[ls.length - 1] === '') ls.pop();
    else ls[ls.length - 1] += NOEOL;
    return ls;
  };
  const A = split(ba.toString('utf8'));
  const B = split(bb.toString('utf8'));
  let pre = 0;
  while (pre < A.length && pre < B.length && A[pre] === B[pre]) pre++;
  let suf = 0;
  while (suf < A.length - pre && suf < B.length - pre && A[A.length - 1 - suf] === B[B.length - 1 - suf]) suf++;
  const a1 = A.slice(pre, A.length - suf);
  const b1 = B.slice(pre, B.length - suf);
  type Op = { t: ' ' | '-' | '+'; s: string };
  const mid: Op[] = [];
  if (a1.length * b1.length <= 4_000_000) {
    const n = a1.length, m = b1.length;
    const w = m + 1;
    const L = new Uint32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--) L[i * w + j] = a1[i] === b1[j] ? L[(i + 1) * w + j + 1]! + 1 : Math.max(L[(i + 1) * w + j]!, L[i * w + j + 1]!);
    let i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a1[i] === b1[j]) (mid.push({ t: ' ', s: a1[i]! }), i++, j++);
      else if (i < n && (j === m || L[(i + 1) * w + j]! >= L[i * w + j + 1]!)) mid.push({ t: '-', s: a1[i++]! });
      else mid.push({ t: '+', s: b1[j++]! });
    }
  } else {
    for (const s of a1) mid.push({ t: '-', s });
    for (const s of b1) mid.push({ t: '+', s });
  }
  const ops: Op[] = [...A.slice(0, pre).map((s) => ({ t: ' ' as const, s })), ...mid, ...A.slice(A.length - suf).map((s) => ({ t: ' ' as const, s }))];
  // Line numbers before each op.
  const an: number[] = [], bn: number[] = [];
  let x = 1, y = 1;
  for (const o of ops) {
    an.push(x);
    bn.push(y);
    if (o.t !== '+') x++;
    if (o.t !== '-') y++;
  }
  const changes = ops.flatMap((o, i) => (o.t === ' ' ? [] : [i]));
  const C = 3;
  const lines: string[] = [];
  let k = 0;
  while (k < changes.length) {
    const start = Math.max(0, changes[k]! - C);
    let last = changes[k]!;
    while (k + 1 < changes.length && changes[k + 1]! - last <= 2 * C) last = changes[++k]!;
    k++;
    const end = Math.min(ops.length, last + C + 1);
    const slice = ops.slice(start, end);
    const aLen = slice.filter((o) => o.t !== '+').length;
    const bLen = slice.filter((o) => o.t !== '-').length;
    lines.push(`@@ -${aLen ? an[start] : an[start]! - 1},${aLen} +${bLen ? bn[start] : bn[start]! - 1},${bLen} @@`);
    for (const o of slice) lines.push(o.s.endsWith(NOEOL) ? `${o.t}${o.s.slice(0, -NOEOL.length)}\n\\ No newline at end of file` : o.t + o.s);
  }
  const shown = lines.length > maxLines ? [...lines.slice(0, maxLines), `… (${lines.length - maxLines} more diff lines)`] : lines;
  return head + shown.join('\n') + '\n';
}

/**
 * Checks that dir holds a complete pigen output: manifest.json parses, every file it lists exists
 * with its size, sha256 and mode, every node's user-data, meta-data and links are there, and
 * nothing else is. Returns the problems found (empty: consistent).
 */
export function checkManifest(dir: string): string[] {
  const problems: string[] = [];
  const mpath = join(dir, 'manifest.json');
  if (!existsSync(mpath)) return ['manifest.json is missing'];
  type Out = { out: string; sha256: string; size: number };
  let manifest: { images?: Record<string, { json: Out; pkrvars: Out }>; nodes: Record<string, { userData: Out; image?: { userData: Out }; links: { path: string; target: string }[]; files: { out: string; sha256: string; size: number; mode: string }[] }> };
  try {
    manifest = JSON.parse(readFileSync(mpath, 'utf8'));
  } catch (e) {
    return [`manifest.json does not parse: ${(e as Error).message}`];
  }
  const listed = new Set<string>(['manifest.json']);
  const present = scan(dir);
  const checkFile = (out: string, sum: string, size: number, mode?: string) => {
    listed.add(out);
    const e = present.get(out);
    if (!e || e.kind !== 'file') return void problems.push(`${out}: missing`);
    if (e.data.length !== size) problems.push(`${out}: ${e.data.length} bytes, manifest says ${size}`);
    else if (sha256(e.data) !== sum) problems.push(`${out}: sha256 differs from the manifest`);
    if (mode !== undefined && e.mode !== parseInt(mode, 8)) problems.push(`${out}: mode ${e.mode.toString(8)}, manifest says ${mode}`);
  };
  for (const [ip, n] of Object.entries(manifest.nodes)) {
    for (const f of n.files) checkFile(f.out, f.sha256, f.size, f.mode);
    checkFile(n.userData.out, n.userData.sha256, n.userData.size);
    if (n.image) checkFile(n.image.userData.out, n.image.userData.sha256, n.image.userData.size);
    const md = `nodes/${ip}/meta-data`;
    listed.add(md);
    if (present.get(md)?.kind !== 'file') problems.push(`${md}: missing`);
    for (const l of n.links) {
      const p = `nodes/${ip}/rootfs${l.path}`;
      listed.add(p);
      if (present.get(p)?.kind !== 'link') problems.push(`${p}: symlink missing`);
    }
  }
  for (const img of Object.values(manifest.images ?? {})) for (const f of [img.json, img.pkrvars]) checkFile(f.out, f.sha256, f.size);
  for (const k of present.keys()) if (!listed.has(k)) problems.push(`${k}: not in the manifest`);
  return problems;
}
