// The one module that touches the filesystem (besides the CLI): reads inputs and assets, and writes
// output trees atomically (built beside the target, then renamed into place).

import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
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

function listTree(dir: string, prefix = ''): Map<string, 'file' | 'link'> {
  const out = new Map<string, 'file' | 'link'>();
  if (!existsSync(dir)) return out;
  for (const n of readdirSync(dir)) {
    const rel = prefix ? `${prefix}/${n}` : n;
    const st = lstatSync(join(dir, n));
    if (st.isSymbolicLink()) out.set(rel, 'link');
    else if (st.isDirectory()) for (const [k, v] of listTree(join(dir, n), rel)) out.set(k, v);
    else out.set(rel, 'file');
  }
  return out;
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
  // Recover from a swap interrupted between its two renames.
  if (!existsSync(dir)) {
    const old = readdirSync(parent).filter((n) => n.startsWith(`.${name}.old-`)).sort();
    if (old.length) renameSync(join(parent, old[old.length - 1]!), dir);
  }
  for (const n of readdirSync(parent)) if (n.startsWith(`.${name}.new-`)) rmSync(join(parent, n), { recursive: true, force: true });
  const existing = listTree(dir);
  if (existing.size && !existing.has(marker)) {
    throw Object.assign(new Error(`refusing to replace ${outDir}: it is not empty and has no ${marker} (not a pigen output)`), { code: 'ENOTPIGEN' });
  }
  // Nothing changed: leave every file alone.
  const wanted = new Map(tree.map((e) => [e.path, e]));
  const identical =
    existing.size === tree.length &&
    tree.every((e) => {
      const p = join(dir, e.path);
      if ('link' in e) return existing.get(e.path) === 'link' && readlinkSync(p) === e.link;
      return existing.get(e.path) === 'file' && sameFile(p, e.data, e.mode);
    });
  if (identical) return { written: 0, unchanged: tree.length, removed: 0, noop: true };

  const staging = join(parent, `.${name}.new-${process.pid}`);
  mkdirSync(staging, { recursive: true });
  chmodSync(staging, 0o755);
  const made = new Set<string>();
  const ensureDir = (d: string) => {
    if (made.has(d) || d === staging) return;
    ensureDir(dirname(d));
    if (!existsSync(d)) {
      mkdirSync(d);
      chmodSync(d, 0o755);
    }
    made.add(d);
  };
  let written = 0;
  let unchanged = 0;
  for (const e of tree) {
    const target = join(staging, e.path);
    ensureDir(dirname(target));
    if ('link' in e) {
      symlinkSync(e.link, target);
      continue;
    }
    const prev = join(dir, e.path);
    if (existing.get(e.path) === 'file' && sameFile(prev, e.data, e.mode)) {
      linkSync(prev, target);
      unchanged++;
    } else {
      writeFileSync(target, e.data, { mode: e.mode });
      chmodSync(target, e.mode);
      written++;
    }
  }
  const removed = [...existing.keys()].filter((k) => !wanted.has(k)).length;
  if (existing.size) {
    const old = join(parent, `.${name}.old-${process.pid}`);
    renameSync(dir, old);
    renameSync(staging, dir);
    rmSync(old, { recursive: true, force: true });
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
