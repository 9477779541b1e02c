// The one module that touches the filesystem (besides the CLI): reads inputs and assets, and writes
// output trees atomically (built beside the target, then renamed into place).

import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_INVENTORY, DEFAULT_INVENTORY_NAME } from './default-inventory.js';
import { err } from './diagnostics.js';
import type { Assets, Diagnostic, JsonObject, OutTree, Source } from './types.js';

/** The package root: dist/.. when compiled, generator/.. when run from source. */
export const PACKAGE_ROOT = resolvePath(dirname(fileURLToPath(import.meta.url)), '..');

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

let assetsCache: Assets | undefined;
/** Reads schemas/ and templates/ once per process. */
export function readAssets(): Assets {
  if (assetsCache) return assetsCache;
  const schema = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'schemas', 'inventory.schema.json'), 'utf8')) as JsonObject;
  const templates = new Map<string, string>();
  const tdir = join(PACKAGE_ROOT, 'templates');
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else templates.set(relative(tdir, p).split('\\').join('/'), readFileSync(p, 'utf8'));
    }
  };
  if (existsSync(tdir)) walk(tdir);
  assetsCache = { schema, templates };
  return assetsCache;
}

/**
 * Which inventory to read: the argument, else ./pigsty.yml when it exists, else the embedded
 * default. Returns the source or a diagnostic when the file cannot be read.
 */
export function readInventory(arg: string | undefined, cwd: string): Source | Diagnostic {
  if (arg === undefined) {
    const local = join(cwd, 'pigsty.yml');
    if (!existsSync(local)) return { name: DEFAULT_INVENTORY_NAME, bytes: new TextEncoder().encode(DEFAULT_INVENTORY) };
    arg = 'pigsty.yml';
  }
  const path = resolvePath(cwd, arg);
  try {
    const st = statSync(path);
    if (st.isDirectory()) return err('file-unreadable', [], `${arg} is a directory, not an inventory file`, { file: arg, hint: 'pass the path of the pigsty.yml file' });
    return { name: arg, bytes: readFileSync(path) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    return err('file-unreadable', [], `cannot read ${arg}: ${why}`, { file: arg });
  }
}

// ── Output trees ────────────────────────────────────────────────────────────


export interface WriteStats {
  /** Files whose bytes were written (new or changed). */
  written: number;
  /** Files carried over unchanged (hard-linked, not rewritten). */
  unchanged: number;
  /** Files of the previous output that are gone. */
  removed: number;
  /** True when the output already matched and nothing was touched. */
  noop: boolean;
}

function listTree(dir: string, prefix = '', out = new Map<string, 'file' | 'link'>()): Map<string, 'file' | 'link'> {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw e;
  }
  for (const d of entries) {
    const rel = prefix ? `${prefix}/${d.name}` : d.name;
    if (d.isSymbolicLink()) out.set(rel, 'link');
    else if (d.isDirectory()) listTree(join(dir, d.name), rel, out);
    else out.set(rel, 'file');
  }
  return out;
}

/** rm -r without rmSync's retries: one readdir per directory, one unlink or rmdir per entry. */
function removeTree(path: string): void {
  let entries;
  try {
    entries = readdirSync(path, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') return unlinkSync(path);
    throw e;
  }
  for (const d of entries) {
    const p = join(path, d.name);
    if (d.isDirectory()) removeTree(p);
    else unlinkSync(p);
  }
  rmdirSync(path);
}

/** Runs `fn` with the umask cleared, so modes given at creation are exact; undefined where the umask cannot be set (worker threads). */
function withoutUmask<T>(fn: (exact: boolean) => T): T {
  let prev: number | undefined;
  try {
    prev = process.umask(0);
  } catch {
    return fn(false);
  }
  try {
    return fn(true);
  } finally {
    process.umask(prev);
  }
}

function sameFile(path: string, data: Uint8Array, mode: number): boolean {
  try {
    const st = lstatSync(path);
    if (!st.isFile() || st.size !== data.length || (st.mode & 0o7777) !== mode) return false;
    return Buffer.compare(readFileSync(path), data) === 0;
  } catch {
    return false;
  }
}

/**
 * Writes a tree to `outDir` atomically: the new tree is assembled beside it (unchanged files are
 * hard-linked from the old tree, so they are not rewritten) and swapped in with two renames. An
 * interrupted build leaves the previous output in place; a build that changes nothing touches
 * nothing. Refuses to replace a non-empty directory that is not a pigen output.
 */
export function writeTree(outDir: string, tree: OutTree, marker = 'manifest.json'): WriteStats {
  const dir = resolvePath(outDir);
  const parent = dirname(dir);
  const name = basename(dir);
  mkdirSync(parent, { recursive: true });
  // Leftovers of interrupted builds: `.new-*` partial staging trees, `.old-*` complete previous
  // trees (only ever made by a rename), `.del-*` previous trees being removed. A swap interrupted
  // between its two renames left no output: put the newest previous tree back first.
  const leftovers = (kind: string) => readdirSync(parent).filter((n) => n.startsWith(`.${name}.${kind}-`));
  if (!existsSync(dir)) {
    const old = leftovers('old').map((n) => ({ n, t: lstatSync(join(parent, n)).ctimeMs })).sort((a, b) => a.t - b.t || (a.n < b.n ? -1 : 1));
    if (old.length) renameSync(join(parent, old[old.length - 1]!.n), dir);
  }
  for (const n of [...leftovers('new'), ...leftovers('old'), ...leftovers('del')]) rmSync(join(parent, n), { recursive: true, force: true });
  const existing = listTree(dir);
  if (existing.size && !existing.has(marker)) {
    throw Object.assign(new Error(`refusing to replace ${outDir}: it is not empty and has no ${marker} (not a pigen output)`), { code: 'ENOTPIGEN' });
  }
  // Nothing changed: leave every file alone. (Comparisons are remembered for the write below.)
  const same = new Map<string, boolean>();
  const isSame = (e: Extract<OutTree[number], { data: Uint8Array }>) => {
    let r = same.get(e.path);
    if (r === undefined) same.set(e.path, (r = existing.get(e.path) === 'file' && sameFile(join(dir, e.path), e.data, e.mode)));
    return r;
  };
  const identical =
    existing.size === tree.length &&
    tree.every((e) => {
      if ('link' in e) return existing.get(e.path) === 'link' && readlinkSync(join(dir, e.path)) === e.link;
      return isSame(e);
    });
  if (identical) return { written: 0, unchanged: tree.length, removed: 0, noop: true };

  const staging = join(parent, `.${name}.new-${process.pid}`);
  let written = 0;
  let unchanged = 0;
  // With the umask cleared, the modes given to mkdir and open are the modes on disk (no chmod per
  // file); where it cannot be cleared, every directory and file is chmod-ed as before.
  withoutUmask((exact) => {
    mkdirSync(staging, { recursive: true, mode: 0o755 });
    chmodSync(staging, 0o755);
    const made = new Set<string>([staging]);
    const ensureDir = (d: string) => {
      if (made.has(d)) return;
      ensureDir(dirname(d));
      try {
        mkdirSync(d, { mode: 0o755 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      if (!exact) chmodSync(d, 0o755);
      made.add(d);
    };
    for (const e of tree) {
      const target = join(staging, e.path);
      ensureDir(dirname(target));
      if ('link' in e) {
        symlinkSync(e.link, target);
        continue;
      }
      if (isSame(e)) {
        linkSync(join(dir, e.path), target);
        unchanged++;
      } else {
        writeFileSync(target, e.data, { mode: e.mode });
        if (!exact) chmodSync(target, e.mode);
        written++;
      }
    }
  });
  const wanted = new Set(tree.map((e) => e.path));
  let removed = 0;
  for (const k of existing.keys()) if (!wanted.has(k)) removed++;
  if (existing.size) {
    const old = join(parent, `.${name}.old-${process.pid}`);
    const del = join(parent, `.${name}.del-${process.pid}`);
    renameSync(dir, old);
    renameSync(staging, dir);
    // Renamed before removal, so a `.old-*` is always complete (an interrupted removal leaves a
    // `.del-*`, which is never restored); the next build removes either.
    renameSync(old, del);
    removeTree(del);
  } else {
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
  }
  return { written, unchanged, removed, noop: false };
}

/** Writes one file atomically: a temp file beside it, then rename. */
export function writeFileAtomic(path: string, data: Uint8Array, mode: number, cwd = process.cwd()): void {
  const target = resolvePath(cwd, path);
  const tmpPath = join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
  writeFileSync(tmpPath, data, { mode });
  chmodSync(tmpPath, mode);
  renameSync(tmpPath, target);
}

// ── Offline repo bundles: streaming reads, an atomic output file, external tools ─────────────

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream, fsyncSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

/** A regular file at the top of a directory. */
export interface DirFile {
  name: string;
  path: string;
  size: number;
}

/**
 * The regular files directly inside `dir` (symlinks to files count), sorted by name; hidden files
 * are ignored and subdirectories reported as skipped.
 */
export function listDirFiles(dir: string): { files: DirFile[]; skipped: string[] } {
  const files: DirFile[] = [];
  const skipped: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isFile()) files.push({ name, path, size: st.size });
    else skipped.push(name);
  }
  return { files, skipped };
}

/** Whether a path is an existing directory. */
export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Size of a file, or undefined when it does not exist. */
export function fileSizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

/** Streams a file in chunks of up to `chunk` bytes (memory stays flat whatever its size). */
export async function* readFileChunks(path: string, chunk = 1 << 20): AsyncGenerator<Uint8Array> {
  for await (const c of createReadStream(path, { highWaterMark: chunk })) yield c as Buffer;
}

/**
 * An output file written through a temp file beside it (`.<name>.tmp-<pid>`) and renamed into
 * place by commit(), after an fsync; abort() removes the temp file. Writes wait for drain.
 */
export async function atomicFileSink(target: string): Promise<{ write(b: Uint8Array): Promise<void>; commit(): Promise<void>; abort(): void; tmpPath: string }> {
  mkdirSync(dirname(target), { recursive: true });
  const tmpPath = join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
  const ws = createWriteStream(tmpPath, { mode: 0o644 });
  await once(ws, 'open');
  let failed: Error | undefined;
  ws.on('error', (e) => (failed = e));
  return {
    tmpPath,
    async write(b) {
      if (failed) throw failed;
      if (!ws.write(b)) await Promise.race([once(ws, 'drain'), once(ws, 'error')]);
      if (failed) throw failed;
    },
    async commit() {
      fsyncSync((ws as unknown as { fd: number }).fd);
      ws.end();
      await once(ws, 'close');
      if (failed) throw failed;
      chmodSync(tmpPath, 0o644);
      renameSync(tmpPath, target);
    },
    abort() {
      ws.destroy();
      rmSync(tmpPath, { force: true });
    },
  };
}

/** A fresh temp directory (under the system temp dir unless `parent` is given). */
export function makeTempDir(prefix = 'pigen-', parent?: string): string {
  return mkdtempSync(join(parent ?? tmpdir(), prefix));
}

export function removePath(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

/** Absolute path of a program on PATH, or undefined. */
export function findProgram(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const d of path.split(':').filter(Boolean)) {
    const p = join(d, name);
    try {
      const st = statSync(p);
      if (st.isFile() && st.mode & 0o111) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Runs a program, streaming its stderr to `onStderr` when given; resolves with its exit code. */
export async function runProgram(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string | undefined>; onOutput?: (s: string) => void } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: (opts.env ?? process.env) as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      opts.onOutput?.(d.toString());
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onOutput?.(d.toString());
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Creates directories (with parents) and empty files that do not exist yet. */
export function ensurePaths(dirs: string[], emptyFiles: string[] = []): void {
  for (const d of dirs) mkdirSync(d, { recursive: true });
  for (const f of emptyFiles) if (!existsSync(f)) writeFileSync(f, '');
}

/** Makes `link` a symlink to `target` (tests and tools that stage files without copying). */
export function symlinkFile(target: string, link: string): void {
  symlinkSync(target, link);
}

/** Reads a text file if it exists (e.g. the secrets file); undefined when absent. */
export function readOptionalText(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}
