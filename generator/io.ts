// The one module that touches the filesystem (besides the CLI): reads inputs and assets, and writes
// output trees atomically (built beside the target, then renamed into place).

import { chmodSync, constants as fsConstants, type Stats, copyFileSync, readSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, renameSync, rmdirSync, rmSync, statSync, symlinkSync, unlinkSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import * as fsModule from 'node:fs';
import * as pathModule from 'node:path';
import { basename, dirname, join, relative, resolve as resolvePath } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DEFAULT_INVENTORY, DEFAULT_INVENTORY_NAME } from './default-inventory.js';
import { err } from './diagnostics.js';
import { MAX_INVENTORY_BYTES } from './load/parse.js';
import { sha256 } from './util/hash.js';
import { isRedactionIndex, redactionIndex, unionIndex, type RedactionIndex } from './util/redact.js';
import type { Assets, Diagnostic, JsonObject, OutEntry, OutTree, Source } from './types.js';

/** The package root: dist/.. when compiled, generator/.. when run from source. */
export const PACKAGE_ROOT = resolvePath(dirname(fileURLToPath(import.meta.url)), '..');
/** The inventory validator `npm run build` precompiles (generator/load/precompile.ts). */
export const PRECOMPILED_VALIDATOR = join(PACKAGE_ROOT, 'dist', 'load', 'inventory-validator.cjs');
/** The templates `npm run build` precompiles (generator/render/precompile.ts). */
export const PRECOMPILED_TEMPLATES = join(PACKAGE_ROOT, 'dist', 'render', 'templates.cjs');
/**
 * The same two modules when the CLI bundle carries them (cli/bundle-entry.ts sets these): loaded
 * from there, under the bundle's code cache (~8 ms of every start: compiling the validator).
 */
export const bundledPrecompiled: { validator?: () => unknown; templates?: () => unknown } = {};

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

let assetsCache: Assets | undefined;
/** Reads schemas/ and templates/ once per process. */
export function readAssets(): Assets {
  if (assetsCache) return assetsCache;
  const schema = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'schemas', 'inventory.schema.json'), 'utf8')) as JsonObject;
  const tdir = join(PACKAGE_ROOT, 'templates');
  const templates = new Map(existsSync(tdir) ? filesUnder(tdir).map((f) => [f, readFileSync(join(tdir, f), 'utf8')] as const) : []);
  assetsCache = { schema, templates };
  return assetsCache;
}

let codeDigest: string | undefined;
/**
 * A digest of the program running: the CLI bundle's bytes when it runs bundled (dist/pigen.cjs),
 * else every module beside this one (dist/ or, under tsx, generator/), with the version of
 * package.json and of Node and its zlib (the manifest records gzip sizes). Once per process.
 */
export function codeIdentity(): string {
  if (codeDigest === undefined) {
    const self = fileURLToPath(import.meta.url);
    const h = createHash('sha256').update(`${packageVersion()}\0${process.version}\0${process.versions.zlib}\0`);
    if (bundledPrecompiled.validator) h.update(readFileSync(self));
    else {
      const root = dirname(self);
      for (const f of filesUnder(root)) if (/\.(?:[cm]?js|ts|json)$/.test(f)) h.update(`${f}\0`).update(readFileSync(join(root, f))).update('\0');
    }
    codeDigest = h.digest('hex');
  }
  return codeDigest;
}

/** pigen's Packer templates and bake scripts (images/, recursively): paths relative to it, and bytes. */
export function readBakeFiles(): { path: string; data: Uint8Array }[] {
  const root = join(PACKAGE_ROOT, 'images');
  return filesUnder(root).map((path) => ({ path, data: readFileSync(join(root, path)) }));
}

/** The files under `root`, recursively, as /-separated paths relative to it, in name order per directory. */
function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(root, p).split('\\').join('/'));
    }
  };
  walk(root);
  return out;
}

/** The inventory file readInventory reads (as given): the argument, else ./pigsty.yml when it exists; undefined: the embedded default. */
export function inventoryFile(arg: string | undefined, cwd: string): string | undefined {
  return arg ?? (existsSync(join(cwd, 'pigsty.yml')) ? 'pigsty.yml' : undefined);
}

/** An absolute path with its links resolved as far as it exists (the rest kept as written). */
function realAsFar(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    const parent = dirname(p);
    return parent === p ? p : join(realAsFar(parent), basename(p));
  }
}

/** Whether `path` is `dir` or lies below it (links resolved where the paths exist). */
export function isWithin(path: string, dir: string): boolean {
  const rel = relative(realAsFar(resolvePath(dir)), realAsFar(resolvePath(path)));
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !rel.startsWith('/'));
}

/** The first `limit` bytes of a file (all of it when shorter), read without asking its size. */
function readAtMost(path: string, limit: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    while (total < limit) {
      const b = Buffer.allocUnsafe(Math.min(1 << 20, limit - total));
      const n = readSync(fd, b, 0, b.length, null);
      if (n === 0) break;
      chunks.push(n === b.length ? b : b.subarray(0, n));
      total += n;
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/**
 * Which inventory to read: the argument, else ./pigsty.yml when it exists, else the embedded
 * default. Returns the source or a diagnostic when the file cannot be read.
 */
export function readInventory(arg: string | undefined, cwd: string): Source | Diagnostic {
  arg = inventoryFile(arg, cwd);
  if (arg === undefined) return { name: DEFAULT_INVENTORY_NAME, bytes: new TextEncoder().encode(DEFAULT_INVENTORY) };
  const path = resolvePath(cwd, arg);
  try {
    const st = statSync(path);
    if (st.isDirectory()) return err('file-unreadable', [], `${arg} is a directory, not an inventory file`, { file: arg, hint: 'pass the path of the pigsty.yml file' });
    // (Read at most one byte past the limit: /dev/zero or a pipe that never ends is refused, not
    // read until memory runs out.)
    const bytes = readAtMost(path, MAX_INVENTORY_BYTES + 1);
    if (bytes.length > MAX_INVENTORY_BYTES) {
      return err('file-too-large', [], st.isFile() ? `file is ${st.size} bytes; the limit is ${MAX_INVENTORY_BYTES} bytes` : `it gives more than ${MAX_INVENTORY_BYTES} bytes (the limit); is it a device or a pipe?`, { file: arg, pos: { line: 1, col: 1 } });
    }
    return { name: arg, bytes };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    return err('file-unreadable', [], `cannot read ${arg}: ${why}`, { file: arg });
  }
}

// ── Output trees ────────────────────────────────────────────────────────────
//
// An output tree is replaced as a whole: the new tree is assembled beside it and swapped in with
// renames, so a reader sees the previous tree or the new one, never a mix, and an interrupted
// build leaves the previous one in place. What makes that cheap is a second generation kept
// beside the output in `.<name>.pigen/`:
//
//   <parent>/<name>/                     the output (generation A)
//   <parent>/.<name>.pigen/spare/        the previous generation (B): same directory skeleton, and
//                                        every file whose bytes did not change is a hard link to
//                                        the same inode as in A
//   <parent>/.<name>.pigen/state-<ino>.json
//                                        what each generation holds (per path: sha256, mode, and
//                                        the inode, size and mtime it was written as), keyed by the
//                                        generation's directory inode
//   <parent>/.<name>.pigen/redact.json   salted hashes of the secrets the last build put into the
//                                        output, for `pigen check` to hide (util/redact.ts); 0600
//   <parent>/.<name>.pigen/old/          only during a swap: A, set aside
//   <parent>/.<name>.pigen/lock          while a build writes: its pid (one writer at a time:
//                                        another build waits, see OutputBusy)
//
// A build brings B up to date (a file whose bytes are unchanged is linked from A, a changed one is
// written as a new inode, never through a link), then swaps: A → old, B → <name>, old → spare. On
// a disk where creating a directory costs far more than linking a file, a rebuild touches only
// what changed instead of re-creating 10,000 directories; unchanged files keep their inode and
// mtime across builds. A state entry is trusted only while lstat still shows the inode, size, mode
// and mtime it recorded, so a file edited in the output is noticed and rewritten.
//
// What a rebuild reads, so that its cost follows what changed rather than the size of the tree:
//  - the output's entries come from its state, not from walking it, while every directory still has
//    the mtime the state recorded (an entry added, removed or renamed by hand changes it; the
//    directories changed within RACY_MS of the save are read and compared as well): 10,000 lstats
//    instead of 10,000 readdirs at 1,000 nodes; any difference, and the tree is walked;
//  - each wanted file is lstat'ed once in the output; one the spare's state records as the very
//    same inode (size, mtime, content, mode) is right in the spare too (a hard link of it: an edit
//    in place shows in both) and is not sent to the writer at all. The writer sees only what must
//    be linked, written or removed, each with the spare's state entry for its path;
//  - the spare's directories keep the mtimes its state recorded, except those the build touched,
//    which are lstat'ed again when its state is saved.

export interface WriteStats {
  /** Files new or changed, relative to the previous output. */
  written: number;
  /** Files carried over unchanged (same inode as in the previous output). */
  unchanged: number;
  /** Files of the previous output that are gone. */
  removed: number;
  /** True when the output already matched and nothing was touched. */
  noop: boolean;
  /** Filesystem work done to assemble the new generation: files written, links made, directories made, entries removed. */
  io: { files: number; links: number; dirs: number; removed: number };
  /** How the previous output was listed: from its state (no directory changed since), or walked. */
  listed: 'state' | 'walked';
}

export interface WriteOptions {
  /** A file that marks a directory as a pigen output (refuses to replace one without it). */
  marker?: string;
  /** Keep the previous generation as the spare for the next build (default true). */
  spare?: boolean;
  /** RACY_MS (tests: 0, so a tree just written is listed from its state). */
  racyMs?: number;
  /** The live output's files already checked against its state (Prevalidator): used when made for the state this build reads. */
  prevalidated?: Prevalidated;
}

/** sha256 (hex) for files, 'L' + target for links; the mode; then the inode, size and mtime written. */
type StateEntry = [content: string, mode: number, ino: number, size: number, mtimeMs: number];
interface TreeState {
  v: 1;
  dev: number;
  ino: number;
  entries: Record<string, StateEntry>;
  /** The mtime of every directory that holds an entry (relative, no '.'), as saved. */
  dirs?: Record<string, number>;
  /** What the build that made this generation was made from, and what it reported (BuildStamp). */
  build?: BuildStamp;
  /** When it was saved (the state file's mtime, on the filesystem's clock): not stored. */
  saved?: number;
}

/**
 * What a build records in the state of the generation it made: a digest of everything its output
 * follows from (`key`: cli/uptodate.ts), and what it reported (opaque here). A state is saved with
 * its entries, so the stamp describes exactly the files the state vouches for.
 */
export interface BuildStamp {
  key: string;
  report: unknown;
}

/**
 * A directory whose mtime is this close to its state's save is read and compared as well: a change
 * in the same tick of the filesystem's clock (coarse: up to 10 ms on Linux, 2 s on FAT) would leave
 * the mtime the same.
 */
const RACY_MS = 2000;

/**
 * The entries and directories of the live output: from its state when no directory changed since
 * it was saved (adding, removing or renaming an entry changes its directory's mtime; a file edited
 * in place is caught by its own lstat, validEntry), else walked. The top directory, renamed into
 * place after its state was saved, is always read and compared.
 */
function liveListing(dir: string, state: TreeState | undefined, racyMs = RACY_MS, dirsChecked?: boolean, fix = false): { entries: Listing; dirs: string[]; walked: boolean } {
  const walk = () => {
    const dirs: string[] = [];
    // (`fix`: a build's walk puts directories' modes back (listTree); the up-to-date check's touches nothing.)
    return { entries: listTree(dir, '', new Map(), dirs, fix), dirs, walked: true };
  };
  const recorded = state?.dirs;
  if (!state || !recorded || state.saved === undefined) return walk();
  // (`dirsChecked`: dirsMatch already done, on a thread: Prevalidated.)
  if (!(dirsChecked ?? dirsMatch(dir, recorded))) return walk();
  // The top directory and those changed within racyMs of the save: read and compared.
  const racy = new Set<string>(['']);
  for (const d of keysOf(recorded)) if (recorded[d]! >= state.saved - racyMs) racy.add(d);
  const want = childrenOf(racy, [keysOf(state.entries), keysOf(recorded)]);
  for (const d of racy) {
    let names;
    try {
      names = readdirSync(d ? `${dir}/${d}` : dir);
    } catch {
      return walk();
    }
    const w = new Set(want.get(d) ?? []);
    if (names.length !== w.size || !names.every((n) => w.has(n))) return walk();
  }
  const entries = state.entries;
  let size: number | undefined;
  return {
    entries: {
      get size() {
        return (size ??= keysOf(entries).length);
      },
      has: (p) => Object.prototype.hasOwnProperty.call(entries, p),
      get: (p) => (Object.prototype.hasOwnProperty.call(entries, p) ? (entries[p]![0].startsWith('L') ? 'link' : 'file') : undefined),
      keys: () => keysOf(entries)[Symbol.iterator](),
    },
    // (Read only after a walk: not made here.)
    get dirs() {
      return keysOf(recorded);
    },
    walked: false,
  };
}

/**
 * The names in each of the directories `dirs` (relative, '' the top) that the relative paths in
 * `records` put there. A few directories (a rebuild's: those changed in the last seconds) are
 * matched by length and prefix, without a substring per path (~30,000 at 1,000 nodes).
 */
function childrenOf(dirs: Set<string>, records: string[][]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const put = (d: string, name: string) => (out.get(d) ?? (out.set(d, []), out.get(d)!)).push(name);
  const byLength = new Map<number, string[]>();
  const few = dirs.size <= 64;
  if (few) for (const d of dirs) if (d) (byLength.get(d.length) ?? (byLength.set(d.length, []), byLength.get(d.length)!)).push(d);
  for (const r of records) {
    for (const p of r) {
      const i = p.lastIndexOf('/');
      if (i < 0) {
        if (dirs.has('')) put('', p);
      } else if (few) {
        const same = byLength.get(i);
        if (same) for (const d of same) if (p.startsWith(d)) put(d, p.slice(i + 1));
      } else {
        const d = p.slice(0, i);
        if (dirs.has(d)) put(d, p.slice(i + 1));
      }
    }
  }
  return out;
}

// The keys of a state's entries and directories, listed once per object: a state is never changed
// once read or saved (a new one is made for each save), and a watching process lists each up to
// four times per build and in the two builds after it was saved (enumerating ~20,000 keys of a
// dictionary costs ~3 ms each time).
const keysCache = new WeakMap<object, string[]>();
function keysOf(o: object): string[] {
  let k = keysCache.get(o);
  if (k === undefined) keysCache.set(o, (k = Object.keys(o)));
  return k;
}

/** What the writer asks of a tree's listing (a Map from walking it, or a view of its state). */
interface Listing {
  readonly size: number;
  has(path: string): boolean;
  get(path: string): 'file' | 'link' | undefined;
  keys(): IterableIterator<string>;
}

/**
 * The entries (files and links) of a tree of pigen's, and its directories into `dirs`. A
 * directory below its top whose mode was changed by hand gets its mode back (0755, as every
 * directory of a tree is made), before it is read: the walk of a tree follows from dirsMatch
 * finding it (a mode changed alone would otherwise stay, and come back with each swap of the
 * generations). The top's mode is the user's (0700 keeps others out): carried to each generation.
 */
function listTree(dir: string, prefix = '', out = new Map<string, 'file' | 'link'>(), dirs?: string[], fix = false): Map<string, 'file' | 'link'> {
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
    else if (d.isDirectory()) dirs?.push(rel), fix && fixDirMode(join(dir, d.name)), listTree(join(dir, d.name), rel, out, dirs, fix);
    else out.set(rel, 'file');
  }
  return out;
}

/** A tree's directory with a mode other than 0755 (chmod'ed by hand) gets 0755 back; one gone is left to the caller. */
function fixDirMode(d: string): void {
  const st = lstatOr(d);
  if (st?.isDirectory() && (st.mode & 0o7777) !== 0o755) chmodSync(d, 0o755);
}

/** Where the state of tree `dir` (output or spare) lies in pigen's home: named by the tree's inode (undefined: no tree). */
function stateFileIn(home: string, dir: string): string | undefined {
  const st = lstatOr(dir);
  return st ? join(home, `state-${st.ino}.json`) : undefined;
}

// States read before by this process (pigen build --watch reads the same two at every build),
// reused while the file is the same one (each save is a new file renamed into place).
const statesRead = new Map<string, { ino: number; size: number; mtimeMs: number; state: TreeState }>();

function readState(file: string, dir: string): TreeState | undefined {
  const st = lstatOr(dir);
  if (!st?.isDirectory()) return undefined;
  try {
    const f = lstatSync(file);
    const was = statesRead.get(file);
    if (was && was.ino === f.ino && was.size === f.size && was.mtimeMs === f.mtimeMs) return was.state.dev === st.dev && was.state.ino === st.ino ? was.state : undefined;
    const s = JSON.parse(readFileSync(file, 'utf8')) as TreeState;
    if (s.v !== 1 || s.dev !== st.dev || s.ino !== st.ino || !s.entries || typeof s.entries !== 'object') return undefined;
    if (s.dirs !== undefined && (typeof s.dirs !== 'object' || s.dirs === null)) return undefined;
    const state = { ...s, saved: f.mtimeMs };
    // (Those of removed generations leave it as they go, in swap(): a few outputs' fit.)
    if (statesRead.size >= 16) statesRead.clear();
    statesRead.set(file, { ino: f.ino, size: f.size, mtimeMs: f.mtimeMs, state });
    return state;
  } catch {
    return undefined;
  }
}

/** Whether a file of a tree without state has these bytes and mode (read and compared). */
function sameFile(path: string, data: Uint8Array, mode: number): boolean {
  try {
    const st = lstatSync(path);
    if (!st.isFile() || st.size !== data.length || (st.mode & 0o7777) !== mode) return false;
    return Buffer.compare(readFileSync(path), data) === 0;
  } catch {
    return false;
  }
}

/** Where a spare generation's writer works, sent once to it. */
interface SpareInit {
  /** The live output (unchanged files are hard-linked from it). */
  dir: string;
  spareDir: string;
  /** The umask is cleared: modes given at creation are exact (else each is set afterwards). */
  exact: boolean;
  /** The spare was made empty for this build: nothing lies where an entry goes. */
  fresh: boolean;
  /** The mode of the output's own directory (the user's: 0755 for a new one), given to the spare's. */
  topMode: number;
  /**
   * Report the mtimes of the directories it changes (SpareResult.dirs), for the state the spare is
   * saved with (the others' are carried over from its previous state, or lstat'ed). Not in a cold
   * build (no previous output): reading them all would cost it ~10,000 lstats at its end at 1,000
   * nodes; its state is saved without directories, and its first rebuild walks it instead.
   */
  recordDirs: boolean;
}
/** One wanted entry, as its writer needs it. */
interface SpareItem {
  path: string;
  data?: Uint8Array;
  link?: string;
  /** The mode a state entry records: the file's, or 0777 for a link. */
  mode: number;
  /** sha256 (files) or 'L' + target (links) */
  key: string;
  /** The live output holds it already (same bytes and mode): hard-linked, not written. */
  inLive: boolean;
  /** Its entry in the live output's state, when there is one. */
  live?: StateEntry;
  /** What the spare's state records at its path, when the spare has a trusted state. */
  spare?: StateEntry;
}
interface SpareResult {
  next: Record<string, StateEntry>;
  io: WriteStats['io'];
  /**
   * The mtime, once its writer was done, of every directory below the top level that it made or
   * changed (the top level's are shared by writers: read by the caller).
   */
  dirs: Record<string, number>;
}

/**
 * The filesystem work of writing a generation. Self-contained (it uses nothing but its
 * arguments), so the same code runs on the main thread or, as source, on a worker thread
 * (openTreeWriter): one copy of it either way.
 */
function treeOps(fs: typeof import('node:fs'), path: typeof import('node:path')) {
  const lstatOr = (p: string) => {
    try {
      // (No exception for a path that does not exist: building one costs more than the lstat.)
      return fs.lstatSync(p, { throwIfNoEntry: false });
    } catch {
      return undefined;
    }
  };
  /** The state entry of `rel` in tree `dir`, if lstat still shows what it recorded. */
  const validEntry = (e: StateEntry | undefined, dir: string, rel: string): StateEntry | undefined => {
    if (!e) return undefined;
    // (`rel` is a tree-relative path as entries and states hold it: no join needed.)
    const st = lstatOr(`${dir}/${rel}`);
    if (!st || st.ino !== e[2] || st.size !== e[3] || st.mtimeMs !== e[4]) return undefined;
    if (e[0].startsWith('L') ? !st.isSymbolicLink() : !st.isFile() || (st.mode & 0o7777) !== e[1]) return undefined;
    return e;
  };
  /**
   * Whether every directory `dirs` records (relative to `dir`) is still one, with the mtime it
   * records, all of them with one mode: 0755 as a tree's are made, or the one a filesystem that
   * ignores chmod shows for all (CIFS, WSL's drvfs, vfat). A chmod changes no mtime: a directory
   * whose mode was changed by hand differs from the others here, and the tree is walked
   * (listTree puts the mode back).
   */
  const dirsMatch = (dir: string, dirs: Record<string, number>): boolean => {
    let mode: number | undefined;
    for (const d in dirs) {
      const st = lstatOr(`${dir}/${d}`);
      if (!st?.isDirectory() || st.mtimeMs !== dirs[d]) return false;
      if (mode === undefined) mode = st.mode & 0o7777;
      else if ((st.mode & 0o7777) !== mode) return false;
    }
    return true;
  };
  /** rm -r without rmSync's retries: one readdir per directory, one unlink or rmdir per entry. */
  const removeTree = (p: string): void => {
    let entries;
    try {
      entries = fs.readdirSync(p, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code === 'ENOTDIR') return fs.unlinkSync(p);
      throw e;
    }
    for (const d of entries) {
      const c = path.join(p, d.name);
      if (d.isDirectory()) removeTree(c);
      else fs.unlinkSync(c);
    }
    fs.rmdirSync(p);
  };
  /**
   * Brings a spare generation up to date, entry by entry (what it has beyond them is pruned by the
   * caller, who knows both trees). Whatever lies where an entry goes (a stale file, a link, a
   * directory) is removed first; an entry its state shows right (and lstat confirms) is left.
   */
  const spareWriter = (init: SpareInit) => {
    const { dir, spareDir, exact, fresh, recordDirs, topMode } = init;
    const next: Record<string, StateEntry> = {};
    // Directories (relative) this writer made or changed, below the top level.
    const changed = new Set<string>();
    const change = (rel: string) => {
      for (let d = path.dirname(rel); d !== '.' && d.includes('/') && !changed.has(d); d = path.dirname(d)) changed.add(d);
    };
    const io = { files: 0, links: 0, dirs: 0, removed: 0 };
    fs.chmodSync(spareDir, topMode);
    const made = new Set<string>([spareDir]);
    const ensureDir = (d: string) => {
      if (made.has(d)) return;
      ensureDir(path.dirname(d));
      // (Another writer of the same generation may make the same directory meanwhile, or remove
      // the spare's file where it goes: each step tolerates the other having done it.)
      for (;;) {
        try {
          fs.mkdirSync(d, { mode: 0o755 });
          io.dirs++;
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        if (lstatOr(d)?.isDirectory()) break;
        // A file of the spare where a directory goes.
        try {
          fs.unlinkSync(d);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
      }
      if (!exact) fs.chmodSync(d, 0o755);
      made.add(d);
    };
    // What is where a wanted entry goes (a file or link of the spare, or one of its directories).
    const clear = (p: string) => {
      if (fresh) return;
      const st = lstatOr(p);
      if (!st) return;
      if (st.isDirectory()) removeTree(p), io.removed++;
      else fs.unlinkSync(p);
    };
    const stateOf = (e: SpareItem, st: { ino: number; size: number; mtimeMs: number }): StateEntry => [e.key, e.mode, st.ino, st.size, st.mtimeMs];
    const add = (e: SpareItem) => {
      const target = path.join(spareDir, e.path);
      // Already right in the spare?
      const s = validEntry(e.spare, spareDir, e.path);
      if (s && s[0] === e.key && s[1] === e.mode) {
        next[e.path] = s;
        return;
      }
      ensureDir(path.dirname(target));
      if (recordDirs) change(e.path);
      clear(target);
      // Unchanged since the live output: the same inode.
      if (e.inLive && e.link === undefined) {
        try {
          fs.linkSync(path.join(dir, e.path), target);
          io.links++;
          next[e.path] = e.live ?? stateOf(e, fs.lstatSync(target));
          return;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK' && code !== 'ENOTSUP') throw err;
        }
      }
      if (e.link !== undefined) {
        fs.symlinkSync(e.link, target);
        io.links++;
        next[e.path] = stateOf(e, fs.lstatSync(target));
        return;
      }
      const data = e.data!;
      const fd = fs.openSync(target, 'wx', e.mode);
      try {
        for (let off = 0; off < data.length; ) off += fs.writeSync(fd, data, off);
        if (!exact) fs.fchmodSync(fd, e.mode);
        next[e.path] = stateOf(e, fs.fstatSync(fd));
      } finally {
        fs.closeSync(fd);
      }
      io.files++;
    };
    return {
      add(items: SpareItem[]): void {
        for (const e of items) add(e);
      },
      end(): SpareResult {
        const dirs: Record<string, number> = {};
        for (const d of changed) {
          const st = lstatOr(path.join(spareDir, d));
          if (st?.isDirectory()) dirs[d] = st.mtimeMs;
        }
        return { next, io, dirs };
      },
    };
  };
  /**
   * Removes entries the new tree does not have from the spare, then the directories left empty.
   * One that is gone or is a directory now (another writer of the same generation removed it, or
   * made a directory where it was) is left alone.
   */
  const prune = (spareDir: string, left: string[], io: { removed: number }) => {
    const emptied = new Set<string>();
    for (const rel of left) {
      const p = path.join(spareDir, rel);
      try {
        fs.unlinkSync(p);
        io.removed++;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR' && !lstatOr(p)?.isDirectory()) throw e;
      }
      for (let d = path.dirname(rel); d !== '.'; d = path.dirname(d)) emptied.add(d);
    }
    for (const d of [...emptied].sort((a, b) => b.length - a.length || (a < b ? -1 : 1))) {
      try {
        fs.rmdirSync(path.join(spareDir, d));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
      }
    }
  };
  return { lstatOr, validEntry, dirsMatch, removeTree, spareWriter, prune };
}
const { lstatOr, validEntry, dirsMatch, removeTree, spareWriter, prune } = treeOps(fsModule, pathModule);

/** Where a spare generation's writer runs: here (calls) or on worker threads (messages). */
interface SpareBackend {
  init(i: SpareInit): void;
  add(items: SpareItem[]): void;
  end(): SpareResult | Promise<SpareResult>;
  close(): Promise<void>;
}
function inlineBackend(): SpareBackend {
  let w: ReturnType<typeof spareWriter> | undefined;
  return {
    init: (i) => void (w = spareWriter(i)),
    add: (items) => w!.add(items),
    end: () => w!.end(),
    close: async () => {},
  };
}
/**
 * The writer on a worker thread: the files are created there while the main thread goes on
 * compiling (on two cores, the disk's cost of a large build overlaps the emit). Entries go over
 * in batches (their bytes copied); the first error ends the writing and is raised by end().
 */
/** A worker thread running `body` with treeOps (the same code as here, as source) in `ops`, and `parentPort`. */
function treeOpsWorker(body: string): Worker {
  return new Worker(
    `const { parentPort } = require('node:worker_threads');
     const __name = (f) => f; // a helper some TypeScript compilers put into functions
     const ops = (${treeOps.toString()})(require('node:fs'), require('node:path'));
     ${body}`,
    { eval: true },
  );
}

function workerBackend(): SpareBackend {
  const worker = treeOpsWorker(
    `let w, failed = false;
     parentPort.on('message', (m) => {
       if (failed) return;
       try {
         if (m.init) w = ops.spareWriter(m.init);
         else if (m.items) w.add(m.items);
         else if (m.end) parentPort.postMessage({ result: w.end() });
       } catch (e) {
         failed = true;
         parentPort.postMessage({ error: { message: String(e && e.message), code: e && e.code, errno: e && e.errno, syscall: e && e.syscall } });
       }
     });`,
  );
  let settle: { resolve(r: SpareResult): void; reject(e: Error): void } | undefined;
  let failure: Error | undefined;
  const fail = (e: Error) => {
    failure ??= e;
    settle?.reject(failure);
    settle = undefined;
  };
  worker.on('message', (m: { result?: SpareResult; error?: { message: string; code?: string; errno?: number; syscall?: string } }) => {
    // (With its errno and syscall: a system error is said as one, one Node has no name for named.)
    if (m.error) fail(Object.assign(new Error(m.error.message), ...(['code', 'errno', 'syscall'] as const).map((k) => (m.error![k] !== undefined && m.error![k] !== null ? { [k]: m.error![k] } : {}))));
    else if (m.result) settle?.resolve(m.result), (settle = undefined);
  });
  worker.on('error', fail);
  worker.on('exit', () => fail(new Error('the writer thread stopped')));
  return {
    init: (i) => worker.postMessage({ init: i }),
    add: (items) => worker.postMessage({ items }),
    end: () =>
      new Promise<SpareResult>((resolve, reject) => {
        if (failure) return reject(failure);
        settle = { resolve, reject };
        worker.postMessage({ end: true });
      }),
    close: async () => {
      worker.removeAllListeners('exit');
      await worker.terminate();
    },
  };
}

/** Which files of a live output still match its state (opaque: see Prevalidator). */
export interface Prevalidated {
  state: object;
  valid(path: string): boolean;
  /** The paths of the state whose files no longer match it (valid: in the state, and not one of these). */
  invalid?: ReadonlySet<string>;
  /** Whether every directory the state records is still one, with the mtime it records (undefined: not checked). */
  dirsValid?: boolean;
  /** The same for the spare generation beside it (its state, and whether its directories match it). */
  spare?: { state: object; dirsValid: boolean };
}

/**
 * Checks the files and directories of an output against its state (validEntry: lstat of each;
 * dirsMatch), and the directories of its spare generation against theirs, on a worker thread,
 * while the caller goes on parsing and planning: `pigen build --watch` starts one as a rebuild
 * begins (a one-shot build over a large output as it starts), and hands the result to its writer
 * (WriteOptions.prevalidated), which then lstat's none of them itself (~30,000 files and
 * directories at 1,000 nodes: ~0.1 s of the main thread). The thread reads the state files itself
 * (sending it their ~20,000 entries cost the main thread ~20 ms), checking first that each is the
 * very file the caller read; it answers with the paths that no longer match (usually none). A file
 * changed between the check and the write is the same race as between an lstat and the link that
 * follows it.
 */
export interface Prevalidator {
  /** Starts checking `outDir` (undefined: it has no state to check against). */
  start(outDir: string): Promise<Prevalidated> | undefined;
  close(): Promise<void>;
}

/** Which state file a thread is to read: its path and the stamp it had when the caller read it. */
interface StateRef {
  dir: string;
  file: string;
  ino: number;
  size: number;
  mtimeMs: number;
}
interface PrevalidateResult {
  id: number;
  /** undefined: the live state file was not the one expected (nothing is prevalidated). */
  invalid?: string[];
  dirsValid?: boolean;
  spareDirsValid?: boolean;
}

/** `minEntries`: an output whose state has fewer entries is left to the writer (start() is undefined). */
export function prevalidator(minEntries = 0): Prevalidator {
  let worker: Worker | undefined;
  let seq = 0;
  const waiting = new Map<number, (v: PrevalidateResult | undefined) => void>();
  const startWorker = () => {
    const w = treeOpsWorker(
      `// (States parsed here before, while their file is the same one: a watching process's live
       // state becomes its spare's at the next build.)
       let parsed = new Map();
       const read = (ref) => {
         if (!ref) return undefined;
         try {
           const st = require('node:fs').lstatSync(ref.file);
           if (st.ino !== ref.ino || st.size !== ref.size || st.mtimeMs !== ref.mtimeMs) return undefined;
           const key = ref.file + '\\0' + st.ino + '\\0' + st.size + '\\0' + st.mtimeMs;
           const was = parsed.get(key);
           if (was) return was;
           const s = JSON.parse(require('node:fs').readFileSync(ref.file, 'utf8'));
           if (parsed.size >= 4) parsed = new Map([...parsed].slice(-2));
           parsed.set(key, s);
           return s;
         } catch {
           return undefined;
         }
       };
       parentPort.on('message', ({ id, live, spare }) => {
         const s = read(live);
         if (!s) return parentPort.postMessage({ id });
         const invalid = [];
         for (const p in s.entries) if (!ops.validEntry(s.entries[p], live.dir, p)) invalid.push(p);
         const dirsValid = s.dirs !== undefined && ops.dirsMatch(live.dir, s.dirs);
         const t = read(spare);
         const spareDirsValid = t !== undefined && t.dirs !== undefined && ops.dirsMatch(spare.dir, t.dirs);
         parentPort.postMessage({ id, invalid, dirsValid, spareDirsValid });
       });`,
    );
    w.on('message', (m: PrevalidateResult) => {
      waiting.get(m.id)?.(m);
      waiting.delete(m.id);
    });
    // (A thread that fails leaves the checks to the writer: nothing is prevalidated.)
    const fail = () => {
      for (const r of waiting.values()) r(undefined);
      waiting.clear();
      worker = undefined;
    };
    w.on('error', fail);
    w.on('exit', fail);
    return w;
  };
  /** A tree's state as readState reads it (its file in `home`), and that file's stamp. */
  const stateOf = (dir: string, home: string): { state: TreeState; ref: StateRef } | undefined => {
    const file = stateFileIn(home, dir);
    if (file === undefined) return undefined;
    const state = readState(file, dir);
    const read = state && statesRead.get(file);
    return state && read ? { state, ref: { dir, file, ino: read.ino, size: read.size, mtimeMs: read.mtimeMs } } : undefined;
  };
  return {
    start(outDir) {
      const dir = resolvePath(outDir);
      const home = homeOf(dir);
      const live = stateOf(dir, home);
      if (!live || keysOf(live.state.entries).length < minEntries) return undefined;
      const spare = stateOf(join(home, 'spare'), home);
      worker ??= startWorker();
      const id = ++seq;
      const result = new Promise<PrevalidateResult | undefined>((resolve) => waiting.set(id, resolve));
      worker.postMessage({ id, live: live.ref, spare: spare ? spare.ref : undefined });
      return result.then((r): Prevalidated => {
        if (!r?.invalid) return { state: {}, valid: () => false };
        const entries = live.state.entries;
        const invalid = new Set(r.invalid);
        return {
          state: live.state,
          valid: (p) => Object.prototype.hasOwnProperty.call(entries, p) && !invalid.has(p),
          invalid,
          dirsValid: r.dirsValid === true,
          ...(spare ? { spare: { state: spare.state, dirsValid: r.spareDirsValid === true } } : {}),
        };
      });
    },
    async close() {
      const w = worker;
      worker = undefined;
      if (w) {
        w.removeAllListeners('exit');
        await w.terminate();
      }
    },
  };
}

/**
 * Which of `n` writers an entry (or a spare directory) goes to: everything under one
 * `<top>/<name>/` (a node's tree) to one writer, chosen by a hash of that prefix; entries and
 * directories nearer the top to the first. So no two writers touch the same path, or one inside
 * another's, except directories both make (tolerated) and a spare's file where a directory of
 * another writer goes (it removes it; pruning then leaves that directory alone).
 */
export function writerOf(path: string, n: number): number {
  const a = path.indexOf('/');
  const b = a < 0 ? -1 : path.indexOf('/', a + 1);
  if (n <= 1 || b < 0) return 0;
  let h = 0x811c9dc5; // FNV-1a over the prefix's UTF-16 code units
  for (let i = 0; i < b; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193);
  return (h >>> 0) % n;
}

/** `n` writers (worker threads), each given its share of the entries (writerOf). */
function partitionedBackend(n: number, make: () => SpareBackend): () => SpareBackend {
  return () => {
    const parts = Array.from({ length: n }, make);
    return {
      init: (i) => parts.forEach((p) => p.init(i)),
      add(items) {
        const out = parts.map((): SpareItem[] => []);
        for (const it of items) out[writerOf(it.path, n)]!.push(it);
        out.forEach((xs, k) => xs.length && parts[k]!.add(xs));
      },
      async end() {
        const rs = await Promise.all(parts.map((p) => p.end()));
        const io = { files: 0, links: 0, dirs: 0, removed: 0 };
        const next: Record<string, StateEntry> = {};
        const dirs: Record<string, number> = {};
        for (const r of rs) {
          Object.assign(next, r.next);
          Object.assign(dirs, r.dirs);
          for (const k of Object.keys(io) as (keyof typeof io)[]) io[k] += r.io[k];
        }
        return { next, io, dirs };
      },
      close: async () => void (await Promise.all(parts.map((p) => p.close()))),
    };
  };
}

export interface TreeWriter {
  /** Entries of the new tree, in any order, as they are made (each path once). */
  add(e: OutEntry): void;
  /**
   * Completes the new generation and swaps it in; `stamp` is recorded in its state (upToDate).
   * `swapped` runs once the new output is in place, still under the output's lock (its errors
   * are ignored: what it does must be optional, as the build succeeded).
   */
  finish(stamp?: BuildStamp, swapped?: () => void): Promise<WriteStats>;
  /** Gives up (the build failed): the output stays as it was. */
  abort(): Promise<void>;
}

/**
 * Writes a tree to `outDir` atomically (see above) as its entries come: the new generation is
 * assembled beside the output while they are made, and swapped in by finish(). An interrupted
 * build leaves the previous output in place; a build that changes nothing touches nothing (the
 * generation is not touched until an entry differs from the output). `threads`: the files are
 * created on that many worker threads (0: here, as add() is called). Throws (code ENOTPIGEN) for
 * a non-empty directory that is not a pigen output.
 */
export function openTreeWriter(outDir: string, opts: WriteOptions = {}, threads = 0): TreeWriter {
  const w = generationWriter(outDir, opts, threads > 1 ? partitionedBackend(threads, workerBackend) : threads === 1 ? workerBackend : inlineBackend);
  return {
    add: w.add,
    finish: async (stamp, swapped) => {
      let r;
      try {
        r = await w.end();
      } catch (e) {
        await w.abort(); // the umask back, the thread ended
        throw e;
      }
      return w.complete(r, stamp, swapped);
    },
    abort: w.abort,
  };
}

/** Writes a whole tree to `outDir` atomically (see openTreeWriter), here and now. */
export function writeTree(outDir: string, tree: OutTree, opts: WriteOptions | string = {}): WriteStats {
  const w = generationWriter(outDir, typeof opts === 'string' ? { marker: opts } : opts, inlineBackend);
  try {
    for (const e of tree) w.add(e);
    return w.complete(w.end() as SpareResult);
  } catch (e) {
    void w.abort();
    throw e;
  }
}

/** The directory an output is written in: `outDir`, or where it points when it is a symbolic link (undefined: a link to nothing). */
function outputDir(outDir: string): string | undefined {
  const dir = resolvePath(outDir);
  if (!lstatOr(dir)?.isSymbolicLink()) return dir;
  try {
    return realpathSync(dir);
  } catch {
    return undefined;
  }
}

/** Whether the output `outDir` has a state of its own (a pigen output written since states were kept). */
export function hasState(outDir: string): boolean {
  const dir = outputDir(outDir);
  if (dir === undefined) return false;
  const file = stateFileIn(homeOf(dir), dir);
  return file !== undefined && existsSync(file);
}

/** The output of pigen build (a directory with its state beside it) that `path` lies in, if any. */
export function managingOutput(path: string): string | undefined {
  // (Up the path as given and up the path it leads to: a link to a directory of the output,
  // `nl -> out/nodes`, leads into it.)
  for (const start of [dirname(resolvePath(path)), realAsFar(dirname(resolvePath(path)))]) {
    for (let d = start; ; d = dirname(d)) {
      if (hasState(d)) return d;
      if (dirname(d) === d) break;
    }
  }
  return undefined;
}

/** The redaction index (util/redact.ts) in the home of the output `outDir`. */
const redactionFile = (dir: string) => join(homeOf(dir), 'redact.json');

/** The redaction index the last build left beside the output `outDir`; undefined when none (or not one this pigen reads). */
export function readRedactionIndex(outDir: string): RedactionIndex | undefined {
  const dir = outputDir(outDir);
  if (dir === undefined) return undefined;
  try {
    const x: unknown = JSON.parse(readFileSync(redactionFile(dir), 'utf8'));
    return isRedactionIndex(x) ? x : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Leaves beside the output `outDir` (written by a build just now) the redaction index of `forms`
 * (secretForms), mode 0600: salted with the salt of the one there, when there is one (then not
 * written again when it is the same), else with a new random one. `keepOld`: with what the index
 * holds already (a build saves that before its swap, and the new one alone after it: until the
 * new output is in place, the live one's secrets, which may be others, stay hidden, whatever
 * stops the build).
 */
export function saveRedactionIndex(outDir: string, forms: readonly string[], keepOld = false): void {
  const dir = outputDir(outDir);
  if (dir === undefined) return;
  const file = redactionFile(dir);
  const old = readRedactionIndex(dir);
  const fresh = redactionIndex(forms, old?.salt ?? randomBytes(16).toString('hex'));
  const index = keepOld && old ? unionIndex(old, fresh) : fresh;
  const text = JSON.stringify(index);
  if (old && JSON.stringify(old) === text && (fileMode(file) ?? 0) === 0o600) return;
  // (A temp file of a build killed while writing it goes at the next: removeStaleTemps.)
  removeStaleTemps(file);
  const tmp = tempBeside(file);
  writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, file);
}

/**
 * The report of the build that made the output `outDir` when it was made from inputs with digest
 * `key` and is still exactly what that build wrote (else undefined, and the caller builds): its
 * state carries that key (BuildStamp), the output's entries are listed from that state (no
 * directory changed since: liveListing), and every file and link still has the inode, size, mode
 * and mtime the state records (`prevalidating`: that check made on a thread, for this very state;
 * else each is lstat'ed here). Looked at under the output's lock (a build writing it meanwhile:
 * undefined, and the caller waits for it as any build does). Touches nothing.
 */
export async function upToDate(outDir: string, key: string, prevalidating?: Promise<Prevalidated> | undefined, racyMs = RACY_MS): Promise<{ report: unknown } | undefined> {
  const dir = outputDir(outDir);
  if (dir === undefined) return undefined;
  const home = homeOf(dir);
  const liveFile = stateFileIn(home, dir);
  const first = liveFile ? readState(liveFile, dir) : undefined;
  if (typeof first?.build?.key !== 'string' || first.build.key !== key) return undefined;
  const pre = await prevalidating;
  let unlock;
  try {
    unlock = lockHome(home, outDir);
  } catch (e) {
    // (On a read-only filesystem no lock can be written, nor can another build write meanwhile:
    // checked without one. Otherwise the build says what is wrong.)
    if ((e as NodeJS.ErrnoException).code !== 'EROFS') return undefined;
    unlock = () => {};
  }
  try {
    // (Read again under the lock: a build may have swapped a new generation in meanwhile. Leftovers
    // of an interrupted build in the home are for a build to clear: openGeneration.)
    const live = readState(liveFile!, dir);
    if (live !== first || existsSync(join(home, 'old'))) return undefined;
    const checked = pre?.state === live ? pre : undefined;
    if (liveListing(dir, live, racyMs, checked?.dirsValid).walked) return undefined;
    if (checked ? checked.invalid === undefined || checked.invalid.size > 0 : !keysOf(live.entries).every((k) => validEntry(live.entries[k], dir, k) !== undefined)) return undefined;
    return { report: live.build!.report };
  } catch {
    // (A directory of the output unreadable, an I/O error: not up to date; the build says why.)
    return undefined;
  } finally {
    unlock();
  }
}

/**
 * Thrown (code EPIGENBUSY) when another live process holds the output's lock: two builds into one
 * output would share its spare generation. `pid` holds it; `lock` is the file, for a user to
 * remove should that pid be another program now (pids are reused).
 */
export interface OutputBusy extends Error {
  code: 'EPIGENBUSY';
  pid: number;
  lock: string;
}

/**
 * Whether `path` is a mount point. /proc/self/mountinfo says: the last mount (in mount order) on
 * the path or on one of its parents is on the path itself (a mount on a parent made later hides
 * it; a btrfs subvolume, another device but no mount, renames as any directory). Without /proc:
 * whether it is on another device than its parent.
 */
export function isMountPoint(path: string, mountinfo?: string): boolean {
  let dir: string;
  try {
    dir = realpathSync(path);
  } catch {
    return false; // (not there yet: made by the build)
  }
  const st = lstatOr(dir);
  if (dirname(dir) === dir || !st?.isDirectory()) return false;
  let info = mountinfo;
  if (info === undefined) {
    try {
      info = readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      const up = lstatOr(dirname(dir));
      return up !== undefined && st.dev !== up.dev;
    }
  }
  // (Field 5 is the mount point, with space, tab, newline and backslash as octal escapes.)
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  let last: string | undefined;
  for (const line of info.split('\n')) {
    const at = line.split(' ')[4];
    if (at === undefined) continue;
    const p = unescape(at);
    if (p === dir || p === '/' || dir.startsWith(p + '/')) last = p;
  }
  return last === dir;
}

/**
 * Takes the lock of a tree's home (`lock`, see takeLock), or throws OutputBusy. A lock whose
 * process no longer runs (a build killed with Ctrl-C or SIGKILL, a crash) is stale: moved aside
 * and taken. Returns its release.
 */
function lockHome(home: string, dir: string): () => void {
  return takeLock(join(home, 'lock'), dir);
}

/** The release of every lock this process holds (releaseLocks). */
const heldLocks = new Set<() => void>();

/**
 * Releases every lock this process holds, for a process ending at once (a second Ctrl-C): the
 * next command finds no lock naming a dead pid, which it would wait on should the pid be reused.
 */
export function releaseLocks(): void {
  for (const release of [...heldLocks]) {
    try {
      release();
    } catch {
      // (Ending anyway: the next command takes over a stale lock.)
    }
  }
}

/**
 * Takes the lock file `lock` (this process's pid and start time in it, linked into place), or
 * throws OutputBusy naming `what` the holder writes. A lock whose process no longer runs is
 * stale: taken over. Returns its release.
 */
export function takeLock(lock: string, what: string): () => void {
  // A lock holds `<pid> <start>`: the holder's pid and its start time, which tells it from a later
  // process given the same pid once it died (a build killed by Ctrl-C leaves its lock: a one-shot
  // build has no signal handler, so Ctrl-C stops it at once). A lock of just a pid (an older
  // pigen's, or one without /proc) is judged by the pid alone.
  const readLock = (f: string) => {
    try {
      const text = readFileSync(f, 'utf8');
      const [pid, start] = text.trim().split(/\s+/);
      return { text, pid: Number.parseInt(pid ?? '', 10), start: start && /^\d+$/.test(start) ? start : undefined };
    } catch {
      return undefined;
    }
  };
  const self = startTime(process.pid);
  for (let attempt = 0; ; attempt++) {
    // Written whole, then linked into place (link(2) fails on an existing name, as O_EXCL does): a
    // lock file never exists without its pid.
    // (Temp files of processes that died writing one, a full disk's: removed first.)
    if (attempt === 0) removeStaleTemps(lock);
    const tmp = tempBeside(lock);
    try {
      writeFileSync(tmp, self === undefined ? `${process.pid}\n` : `${process.pid} ${self}\n`, { flag: 'wx', mode: 0o644 });
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    try {
      linkSync(tmp, lock);
      const ino = lstatSync(lock).ino;
      const release = () => {
        heldLocks.delete(release);
        // (Removed only while it is still this build's own: never a lock another build took since,
        // whose file may have been given the same inode number: its pid tells.)
        if (lstatOr(lock)?.ino === ino && readLock(lock)?.pid === process.pid) rmSync(lock, { force: true });
      };
      heldLocks.add(release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw e;
    } finally {
      rmSync(tmp, { force: true });
    }
    const held = readLock(lock);
    if (held === undefined) {
      // Released meanwhile; or no file of pigen's where the lock goes (a directory or a link made
      // by hand): removed (every build failed on it).
      const st = lstatOr(lock);
      if (st && !st.isFile()) {
        if (st.isDirectory()) removeTree(lock);
        else rmSync(lock, { force: true });
      }
      continue;
    }
    const pid = held.pid;
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isRunning(pid, held.start)) {
      throw Object.assign(new Error(`another pigen process (pid ${pid}) is writing ${what}`), { code: 'EPIGENBUSY', pid, lock }) as OutputBusy;
    }
    // Stale (its pid ended: a build killed with SIGKILL): removed under a second lock, taken the
    // same way, `<lock>.takeover`, if it is still the one read (the same inode and text). Nothing
    // else removes or replaces a lock meanwhile (a build makes one only where none is, and removes
    // only its own), so no build's live lock is ever removed. (Moving it aside to look at it, as
    // pigen did, could move a live one taken just then, and a third build take the free name.)
    takeOver(lock, what, held.text, self, readLock);
  }
}

/**
 * Removes the stale lock `lock` if it still holds `text`, under the lock `<lock>.takeover` (held
 * for a moment; waited for while its process runs; taken over at once when that process is gone,
 * which can only be one killed within that moment).
 */
function takeOver(lock: string, what: string, text: string, self: string | undefined, readLock: (f: string) => { text: string; pid: number; start?: string | undefined } | undefined): void {
  const guard = `${lock}.takeover`;
  removeStaleTemps(guard);
  const tmp = tempBeside(guard);
  writeFileSync(tmp, self === undefined ? `${process.pid}\n` : `${process.pid} ${self}\n`, { flag: 'wx', mode: 0o644 });
  let mine: number | undefined;
  try {
    for (let waited = 0; ; waited++) {
      try {
        linkSync(tmp, guard);
        mine = lstatSync(guard).ino;
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const st = lstatOr(guard);
      if (!st) continue; // released meanwhile: linked again
      // (Not a file pigen writes, a directory or a link made by hand: removed.)
      if (!st.isFile()) {
        if (st.isDirectory()) removeTree(guard);
        else rmSync(guard, { force: true });
        continue;
      }
      const other = readLock(guard);
      if (other === undefined) continue;
      if (Number.isInteger(other.pid) && other.pid > 0 && other.pid !== process.pid && isRunning(other.pid, other.start)) {
        // Its holder runs: waited for (a moment, as a rule). One known by pid and start time is
        // never taken from it (a build stopped or starved inside it): after a second, the build
        // waits as for a busy output; one known by its pid alone, which a later process may have
        // been given, is taken over after a second.
        if (waited < 200) {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
          continue;
        }
        if (other.start !== undefined) throw Object.assign(new Error(`another pigen process (pid ${other.pid}) is writing ${what}`), { code: 'EPIGENBUSY', pid: other.pid, lock: guard }) as OutputBusy;
      }
      // (Its process is gone: that lock is itself stale, removed if it is still the one read.)
      if (lstatOr(guard)?.ino === st.ino && readLock(guard)?.text === other.text) rmSync(guard, { force: true });
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  try {
    const before = lstatOr(lock);
    if (before && readLock(lock)?.text === text && lstatOr(lock)?.ino === before.ino) rmSync(lock, { force: true });
  } finally {
    // (Only its own: never one taken since.)
    if (lstatOr(guard)?.ino === mine && readLock(guard)?.pid === process.pid) rmSync(guard, { force: true });
  }
}

/** Whether process `pid` runs (and, given the `start` its lock recorded, is still the same process). */
function isRunning(pid: number, start?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start === undefined) return true;
  const now = startTime(pid);
  return now === undefined || now === start;
}

/**
 * When process `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat; the command
 * name before it, in parentheses, may hold spaces), or undefined where there is no such file.
 */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return start && /^\d+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/**
 * mkdir -p, one directory at a time from the nearest one that exists: a path that cannot be made
 * fails with the error of the first mkdir (Node's recursive mkdir loops forever under /proc).
 */
function mkdirs(path: string, mode = 0o777): void {
  const missing: string[] = [];
  for (let d = path; !lstatOr(d); ) {
    missing.push(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, { mode });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

/** `<parent>/.<name>.pigen`: the spare generation, the states and the lock of the tree at `dir`. */
function homeOf(dir: string): string {
  return join(dirname(dir), `.${basename(dir)}.pigen`);
}

/** A writer of the next generation of `outDir`, holding its lock (released by complete() or abort()). */
function generationWriter(outDir: string, opts: WriteOptions, backendOf: () => SpareBackend) {
  // An output given as a symbolic link is written where it points (the link stays a link).
  const dir = outputDir(outDir);
  if (dir === undefined) throw Object.assign(new Error(`${outDir} is a symbolic link to nothing (${readlinkSync(resolvePath(outDir))}): make its target, or remove the link`), { code: 'ENOENT' });
  // A mount point (a bind mount of a container, a filesystem of its own) cannot be renamed aside,
  // nor a tree from beside it renamed in (EBUSY, EXDEV): refused before anything is written.
  if (isMountPoint(dir)) {
    throw Object.assign(new Error(`${outDir} is a mount point: pigen builds the new output beside it and renames it into place, which a mount point refuses; build into a directory inside it (-o ${join(outDir, 'out')})`), { code: 'EPIGENMOUNT' });
  }
  const home = homeOf(dir);
  // Not writable by others whatever the umask: the spare generation and the states in it are
  // trusted (an entry whose inode, size, mode and mtime match is not read again).
  mkdirs(home, 0o755);
  const st = lstatSync(home);
  // (Its trees are written and pruned: a link would lead that elsewhere.)
  if (!st.isDirectory()) throw Object.assign(new Error(`${home} is not a directory (a symbolic link?): remove it, pigen makes it again`), { code: 'ENOTDIR' });
  if (st.mode & 0o022 && st.uid === process.getuid?.()) chmodSync(home, st.mode & 0o755);
  // Everything from here to the end of the swap is done by one process at a time.
  const unlock = lockHome(home, outDir);
  try {
    return openGeneration(outDir, dir, opts, backendOf, unlock);
  } catch (e) {
    unlock();
    // (Made just now, beside a directory that is no pigen output: not left behind.)
    try {
      rmdirSync(home);
    } catch {}
    throw e;
  }
}

function openGeneration(outDir: string, dir: string, opts: WriteOptions, backendOf: () => SpareBackend, unlock: () => void) {
  const { marker = 'manifest.json', spare: keepSpare = true } = opts;
  const parent = dirname(dir);
  const name = basename(dir);
  const home = homeOf(dir);
  const spareDir = join(home, 'spare');
  const oldDir = join(home, 'old');

  // pigen's own entries in its home are directories (the trees) and files (the states): anything
  // else there (a link, made by hand) is removed, never followed.
  for (const n of readdirSync(home)) {
    const p = join(home, n);
    const st = lstatOr(p);
    if (!st) continue;
    if ((n === 'spare' || n === 'old') && !st.isDirectory()) unlinkSync(p);
    else if (n.startsWith('state-') && !st.isFile()) st.isDirectory() ? removeTree(p) : unlinkSync(p);
  }
  // Leftovers of interrupted builds. A swap cut between its renames left no output: the previous
  // one waits in old/ (complete: it only ever gets there by a rename). Trees of older pigen
  // versions: `.<name>.new-<pid>` (partial), `.<name>.old-<pid>` (complete), `.<name>.del-<pid>`
  // (being removed): directories of exactly those names (a user's `.out.old-backup` is not one),
  // and one put back as the output only when it holds the marker.
  // (A pid is at most 2^22: a user's `.out.old-20240101` is no such tree.)
  const legacy = (kind: string) => readdirSync(parent).filter((n) => n.startsWith(`.${name}.${kind}-`) && /^\d{1,7}$/.test(n.slice(name.length + kind.length + 3)) && Number(n.slice(name.length + kind.length + 3)) <= 4194304 && lstatOr(join(parent, n))?.isDirectory());
  if (!existsSync(dir)) {
    if (existsSync(oldDir)) renameSync(oldDir, dir);
    else {
      const old = legacy('old')
        .filter((n) => lstatOr(join(parent, n, marker))?.isFile())
        .map((n) => ({ n, t: lstatSync(join(parent, n)).ctimeMs }))
        .sort((a, b) => a.t - b.t || (a.n < b.n ? -1 : 1));
      if (old.length) renameSync(join(parent, old[old.length - 1]!.n), dir);
    }
  }
  for (const n of [...legacy('new'), ...legacy('old'), ...legacy('del')]) removeTree(join(parent, n));
  if (existsSync(oldDir)) {
    // The swap was cut after the new tree went in: what was set aside is a complete generation.
    if (existsSync(spareDir)) removeTree(oldDir);
    else renameSync(oldDir, spareDir);
  }

  const stateFile = (d: string) => stateFileIn(home, d);
  const liveFile = stateFile(dir);
  const live = liveFile ? readState(liveFile, dir) : undefined;
  // The live files checked on a worker already, against this very state (else each is lstat'ed in add()).
  const pre = live && opts.prevalidated?.state === live ? opts.prevalidated : undefined;
  // (A directory with no marker at its top is refused before it is walked: -o /usr.)
  const notOurs = () => Object.assign(new Error(`refusing to replace ${outDir}: it is not empty and has no ${marker} (not a pigen output)`), { code: 'ENOTPIGEN' });
  if (!live && lstatOr(dir)?.isDirectory() && !existsSync(join(dir, marker)) && readdirSync(dir).length > 0) throw notOurs();
  const { entries: existing, dirs: liveDirs, walked } = liveListing(dir, live, opts.racyMs, pre?.dirsValid, true);
  const listed = walked ? ('walked' as const) : ('state' as const);
  // The common case of a rebuild: listed from the live state, its files prevalidated.
  const fast = live && !walked && pre?.invalid ? { entries: live.entries, invalid: pre.invalid } : undefined;
  // (A tree its state is bound to is ours even with its marker deleted: it is put back.)
  if (!live && existing.size && !existing.has(marker)) throw notOurs();
  // Entries in the output its state does not know (added by hand): that state must not describe
  // the tree once it becomes the spare, which is then walked instead.
  // (Nor one missing some of its entries: deleted by hand, a directory with them.)
  // (Nor, once walked, one with a file replaced by hand: a new inode under the same name, which
  // changed its directory's mtime. Re-saved below with the directories' new mtimes, it would
  // vouch for that file as the inode it recorded; made the spare, its entry would then match the
  // live file's, and the hand-made file would come back with the next swap.)
  const liveStateComplete =
    live !== undefined &&
    (!walked ||
      (existing.size === keysOf(live.entries).length &&
        [...existing.keys()].every((k) => k in live.entries) &&
        ((known) => liveDirs.every((d) => known.has(d)))(parentDirs(keysOf(live.entries))) &&
        keysOf(live.entries).every((k) => (pre ? pre.valid(k) : validEntry(live.entries[k], dir, k) !== undefined))));
  // A complete state found by walking the tree (saved without directories, or with mtimes that no
  // longer hold: changed by hand, even if undone since) gets the directories' mtimes as they are
  // now: listed from it next time, and carried over when it becomes the spare.
  // (Its stamp kept: the files are the very ones it was saved with.)
  if (walked && liveStateComplete && liveFile) saveState(liveFile, dir, live.entries, { reported: {}, touched: new Set() }, live.build);

  // The spare generation's state, read now: an entry it records with the same inode, size, mtime,
  // content and mode as the live one (a hard link of the live file, validated just before by
  // lstat) is right in the spare already, and is neither sent to its writer nor looked at there.
  // A spare changed by hand since its state was saved (a file replaced or removed, a directory
  // swapped for a link: each changes a directory's mtime) is not trusted: walked and brought up to
  // date entry by entry. (A file edited in place is a hard link of the live one, checked there.)
  let spareState = ((f) => (f ? readState(f, spareDir) : undefined))(stateFile(spareDir));
  // (Its directories checked on a thread already, when prevalidated against this very state.)
  const spareChecked = spareState && opts.prevalidated?.spare?.state === spareState ? opts.prevalidated.spare.dirsValid : undefined;
  if (spareState && (!spareState.dirs || liveListing(spareDir, spareState, opts.racyMs, spareChecked, true).walked)) spareState = undefined;
  const sameInSpare = (path: string, liveEntry: StateEntry) => {
    const s = spareState?.entries[path];
    return s !== undefined && s[0] === liveEntry[0] && s[1] === liveEntry[1] && s[2] === liveEntry[2] && s[3] === liveEntry[3] && s[4] === liveEntry[4];
  };
  const kept: Record<string, StateEntry> = {};
  // Every path of the new tree: what the spare has beyond them is pruned at the end.
  // (Not needed when the spare is made empty for this build: `wanted` is then left undefined.)
  let wanted: Set<string> | undefined = new Set<string>();
  let spareEntries: string[] = [];
  // A walked spare's directories (one made by hand may hold nothing: pruning files leaves it).
  const spareDirs: string[] = [];
  // The spare's directories this thread changes (pruning): their mtimes are read again when its
  // state is saved. The writers report those they changed; the others' are carried over.
  const touched = new Set<string>();
  const touch = (path: string) => {
    for (let d = dirname(path); d !== '.' && !touched.has(d); d = dirname(d)) touched.add(d);
  };

  let count = 0;
  let nFiles = 0;
  let unchanged = 0;
  let inExisting = 0;
  // Entries the output holds already, kept back until one differs (none may: nothing to do).
  let held: SpareItem[] | undefined = [];
  let backend: SpareBackend | undefined;
  let spareFile = '';
  let umask: number | undefined;
  let batch: SpareItem[] = [];
  let batchBytes = 0;
  const flush = () => {
    if (batch.length) backend!.add(batch);
    batch = [];
    batchBytes = 0;
  };
  const send = (item: SpareItem) => {
    if (item.live && sameInSpare(item.path, item.live)) return void (kept[item.path] = item.live);
    const s = spareState?.entries[item.path];
    if (s) item.spare = s;
    batch.push(item);
    batchBytes += item.data?.length ?? 0;
    if (batch.length >= 256 || batchBytes >= 1 << 20) flush();
  };
  // The spare generation is touched from here on: its state is dropped first, so an interrupted
  // update is never trusted; a fresh directory, or one of unknown content, is walked.
  const commit = () => {
    // (The swap renames DIR and the spare in DIR's directory: one that may not be written to
    // fails it, said now rather than after the whole spare is written. Tried, not asked of
    // access(2), which judges by the real uid and no capabilities: CAP_DAC_OVERRIDE may.)
    const probe = tempBeside(dir);
    mkdirSync(probe, { mode: 0o700 });
    rmdirSync(probe);
    const fresh = !existsSync(spareDir);
    if (fresh) mkdirSync(spareDir, { mode: 0o755 }), (wanted = undefined);
    spareFile = stateFile(spareDir)!;
    rmSync(spareFile, { force: true });
    if (spareState) spareEntries = keysOf(spareState.entries);
    else spareEntries = [...listTree(spareDir, '', new Map(), spareDirs, true).keys()];
    try {
      umask = process.umask(0);
    } catch {
      umask = undefined;
    }
    backend = backendOf();
    // (Directories recorded in every build but the first: a cold build is the one not slowed.)
    const top = lstatOr(dir);
    const topMode = (top?.isDirectory() ? top.mode : 0o755) & 0o7777;
    backend.init({ dir, spareDir, exact: umask !== undefined, fresh, recordDirs: spareState !== undefined || live !== undefined, topMode });
    for (const item of held!) send(item);
    held = undefined;
  };
  const release = async () => {
    if (umask !== undefined) process.umask(umask);
    umask = undefined;
    await backend?.close();
  };

  return {
    add(e: OutEntry): void {
      // (Inputs that could lead a path out of the tree are rejected by the rules; this is the last
      // guard: an entry outside the tree is a bug, never written.)
      const path = e.path;
      if (!path || path.startsWith('/') || UNSAFE_SEGMENT.test(path)) {
        throw new Error(`refusing an output path outside the tree: ${JSON.stringify(path)}`);
      }
      const link = 'link' in e ? e.link : undefined;
      const key = link !== undefined ? 'L' + link : (e as OutFile).sha256 ?? sha256((e as OutFile).data);
      const mode = link !== undefined ? 0o777 : (e as OutFile).mode;
      // Does the live output already hold it? (state + lstat, or read and compare when the live
      // tree has no state: an output of an older pigen).
      let inLive = false;
      let liveEntry: StateEntry | undefined;
      if (fast) {
        // (The listing is the state's own keys, the files checked on a thread: one lookup. An entry
        // is an array; nothing an object inherits is.)
        const s = fast.entries[path];
        if (Array.isArray(s)) {
          inExisting++;
          if (s[0] === key && s[1] === mode && !fast.invalid.has(path)) (inLive = true), (liveEntry = s);
        }
      } else if (existing.has(path)) {
        inExisting++;
        if (live) {
          const s = pre ? (pre.valid(path) ? live.entries[path] : undefined) : validEntry(live.entries[path], dir, path);
          if (s !== undefined && s[0] === key && s[1] === mode) (inLive = true), (liveEntry = s);
        } else if (link !== undefined) inLive = existing.get(path) === 'link' && readlinkSync(join(dir, path)) === link;
        else inLive = existing.get(path) === 'file' && sameFile(join(dir, path), (e as OutFile).data, mode);
      }
      count++;
      wanted?.add(path);
      // Counted over files (links are re-made with every generation).
      if (link === undefined) nFiles++, inLive && unchanged++;
      // (An entry the spare holds already, a link of the live one, needs no item: recorded as kept.)
      if (!held && liveEntry && sameInSpare(path, liveEntry)) return void (kept[path] = liveEntry);
      const item: SpareItem = link !== undefined ? { path, mode, key, inLive, link } : { path, mode, key, inLive, data: (e as OutFile).data };
      if (liveEntry) item.live = liveEntry;
      if (held && inLive) held.push(item);
      else {
        if (held) commit();
        send(item);
      }
    },
    /** The writer's result, once every entry is in (undefined: nothing to do). */
    end(): SpareResult | Promise<SpareResult> | undefined {
      // (Nothing to do, unless the walk found directories the new tree has no entry in: made by hand.)
      if (held && existing.size === count && !(walked && ((needed) => liveDirs.some((d) => !needed.has(d)))(parentDirs(wanted!)))) return undefined;
      if (held) commit();
      flush();
      // What the spare has beyond the new tree is removed once its writers are done.
      const done = (r: SpareResult): SpareResult => {
        const io = { ...r.io };
        const left = wanted ? spareEntries.filter((k) => !wanted!.has(k)) : [];
        for (const k of left) touch(k);
        prune(spareDir, left, io);
        if (spareDirs.length) {
          const needed = parentDirs(wanted!);
          for (const d of spareDirs.filter((d) => !needed.has(d)).sort((x, y) => y.length - x.length)) {
            if (lstatOr(join(spareDir, d))?.isDirectory()) removeTree(join(spareDir, d)), touch(d), io.removed++;
          }
        }
        // (Disjoint: kept were never sent. The few the writers made go into the many kept.)
        return { next: Object.assign(kept, r.next), io, dirs: r.dirs };
      };
      const r = backend!.end();
      return r instanceof Promise ? r.then(done) : done(r);
    },
    complete(r: SpareResult | undefined, stamp?: BuildStamp, swapped?: () => void): WriteStats {
      try {
        const stats = swap(r, stamp);
        // (Still under the lock: no other build's output is in place yet. Its failure fails nothing.)
        try {
          swapped?.();
        } catch {
          // (What it saves is an improvement: see TreeWriter.finish.)
        }
        return stats;
      } finally {
        unlock();
        if (!keepSpare && readdirSync(home).length === 0) rmdirSync(home);
      }
    },
    abort: async () => {
      await release();
      unlock();
    },
  };

  function swap(r: SpareResult | undefined, stamp?: BuildStamp): WriteStats {
    const removed = existing.size - inExisting;
    try {
      if (r === undefined) {
        // The output is the new tree already (its state stamped again when this build's inputs
        // differ from the one that made it, a comment edited, or its report does: a certificate
        // came within the warning's reach since).
        if (!live && liveFile) writeState(liveFile, dir, held!, stamp);
        else if (live && liveFile && stamp && (live.build?.key !== stamp.key || JSON.stringify(live.build.report) !== JSON.stringify(stamp.report))) saveState(liveFile, dir, live.entries, { reported: {}, touched: new Set(), ...(!walked && live.dirs ? { before: live.dirs } : {}) }, stamp);
        return { written: 0, unchanged: nFiles, removed: 0, noop: true, io: { files: 0, links: 0, dirs: 0, removed: 0 }, listed };
      }
      saveState(spareFile, spareDir, r.next, (spareState || live) && { reported: r.dirs, touched, ...(spareState?.dirs ? { before: spareState.dirs } : {}) }, stamp);
    } finally {
      void release();
    }
    // The swap.
    if (existsSync(dir)) {
      renameSync(dir, oldDir);
      try {
        renameSync(spareDir, dir);
      } catch (e) {
        // (The previous output back in its place at once, not left to the next build.)
        try {
          renameSync(oldDir, dir);
        } catch {
          // (The next build puts it back: openGeneration.)
        }
        throw e;
      }
      if (keepSpare) {
        try {
          renameSync(oldDir, spareDir);
        } catch {
          // The new output is in place: the build succeeded; the next one makes old/ the spare
          // (openGeneration), or removes it.
        }
        if (liveFile && !liveStateComplete) rmSync(liveFile, { force: true });
      } else {
        removeTree(oldDir);
        if (liveFile) rmSync(liveFile, { force: true });
      }
    } else {
      renameSync(spareDir, dir);
    }
    // State files of generations that are gone.
    const keep = new Set([stateFile(dir), stateFile(spareDir)].filter(Boolean).map((f) => basename(f!)));
    for (const n of readdirSync(home)) {
      if (n.startsWith('state-') && !keep.has(n)) rmSync(join(home, n), { force: true }), statesRead.delete(join(home, n));
    }
    return { written: nFiles - unchanged, unchanged, removed, noop: false, io: r.io, listed };
  }
}

/** An entry that is a file. */
type OutFile = Exclude<OutEntry, { link: string }>;

/** A path segment that is empty, `.` or `..` (no output path holds one). */
const UNSAFE_SEGMENT = /(?:^|\/)\.{0,2}(?:\/|$)/;

/** Every directory (relative, no '.') that holds one of `paths`. */
function parentDirs(paths: Iterable<string>): Set<string> {
  const dirs = new Set<string>();
  for (const p of paths) {
    for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) {
      const d = p.slice(0, i);
      if (dirs.has(d)) break;
      dirs.add(d);
    }
  }
  return dirs;
}

/** Records the state of entries already in `dir` (read back with lstat). */
function writeState(file: string, dir: string, items: SpareItem[], stamp?: BuildStamp): void {
  const entries: Record<string, StateEntry> = {};
  for (const e of items) {
    const st = lstatSync(join(dir, e.path));
    entries[e.path] = [e.key, e.mode, st.ino, st.size, st.mtimeMs];
  }
  saveState(file, dir, entries, undefined, stamp);
}

/**
 * Writes the state of the tree in `dir` (bound to its directory's device and inode). `known`: the
 * directory mtimes its writers reported, those its previous state recorded (`before`, for the
 * directories nobody changed since), and the directories changed here (`touched`), lstat'ed again
 * with the top level's and any not known; without it, no directory is recorded.
 */
function saveState(file: string, dir: string, entries: Record<string, StateEntry>, known?: { reported: Record<string, number>; touched: Set<string>; before?: Record<string, number> }, stamp?: BuildStamp): void {
  const st = lstatSync(dir);
  let dirs: Record<string, number> | undefined;
  if (known) {
    dirs = {};
    // (In the order the entries give them: a state is read by pigen alone, keyed.)
    for (const d of parentDirs(keysOf(entries))) {
      const k = !known.touched.has(d) && d.includes('/') ? known.reported[d] ?? known.before?.[d] : undefined;
      dirs[d] = k ?? lstatSync(join(dir, d)).mtimeMs;
    }
  }
  const state: TreeState = { v: 1, dev: st.dev, ino: st.ino, entries, ...(dirs ? { dirs } : {}), ...(stamp ? { build: stamp } : {}) };
  writeStateJson(file, state);
  // (Read back by the next build of this process as written.)
  const f = lstatSync(file);
  statesRead.set(file, { ino: f.ino, size: f.size, mtimeMs: f.mtimeMs, state: { ...state, saved: f.mtimeMs } });
}

// The JSON of each state entry (`"path":[...]`) as last written: a watching process saves a state
// per build whose entries are mostly the same objects as the last one's (carried over).
const entryJson = new WeakMap<StateEntry, { path: string; json: string }>();

/** writeJson(file, state), the entries' text made once per entry object. */
function writeStateJson(file: string, state: TreeState): void {
  const parts: string[] = [];
  for (const p of keysOf(state.entries)) {
    const e = state.entries[p]!;
    let j = entryJson.get(e);
    if (j === undefined || j.path !== p) entryJson.set(e, (j = { path: p, json: `${JSON.stringify(p)}:${JSON.stringify(e)}` }));
    parts.push(j.json);
  }
  const { entries: _, ...rest } = state;
  const head = JSON.stringify(rest);
  writeJson(file, `${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"entries":{${parts.join(',')}}}`);
}

/**
 * A small JSON file (its text), written to a temp file beside it and renamed into place; 0644 whatever the
 * umask (a state is saved while the writer has it cleared: without the mode it was 0666, and a
 * state anyone may rewrite could make a build keep a file it should replace).
 */
function writeJson(file: string, text: string): void {
  const tmp = tempBeside(file, false);
  try {
    writeFileSync(tmp, text, { mode: 0o644, flag: 'wx' });
    renameSync(tmp, file);
  } catch (e) {
    // (A full disk: no partial state left behind, tens of MB at 10,000 nodes.)
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * A temp file's name beside `target`: unpredictable, and always created new (flag 'wx': O_EXCL, so
 * a link or file someone put at that name is never written through; the mode is set at creation).
 */
function tempBeside(target: string, hidden = true): string {
  return join(dirname(target), `${hidden ? '.' : ''}${basename(target)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/**
 * Removes the temp files of `target` left by processes that no longer run (a bundle interrupted
 * by Ctrl-C or kill -9 leaves its partial file: hundreds of MB).
 */
function removeStaleTemps(target: string): void {
  const prefix = `.${basename(target)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dirname(target));
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number.parseInt(n.slice(prefix.length), 10);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isRunning(pid)) rmSync(join(dirname(target), n), { force: true });
  }
}

/** Writes one file atomically: a temp file beside it, then rename. */
export function writeFileAtomic(path: string, data: Uint8Array, mode: number, cwd = process.cwd()): void {
  // (Through a link, which stays; never over what is not a regular file: a device, a FIFO.)
  const t = outputFileTarget(resolvePath(cwd, path));
  if ('error' in t) throw Object.assign(new Error(t.error), { code: 'ENOTREG' });
  const target = t.path;
  const tmpPath = tempBeside(target);
  try {
    // (On the disk before the rename: a crash after it leaves the new bytes, never an empty file.)
    const fd = openSync(tmpPath, 'wx', mode);
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmpPath, mode);
    renameSync(tmpPath, target);
  } catch (e) {
    // (Nothing left beside the target: the temp file may hold secrets.)
    rmSync(tmpPath, { force: true });
    throw e;
  }
}

// ── Offline repo bundles: streaming reads, an atomic output file, external tools ─────────────

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, createReadStream, createWriteStream, fdatasync, fsyncSync, mkdtempSync, openSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';

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
export function listDirFiles(dir: string): { files: DirFile[]; skipped: string[]; notUtf8: string[] } {
  const files: DirFile[] = [];
  const skipped: string[] = [];
  // (A name that is no UTF-8 cannot be named in an index or a URL: listed apart, as read with
  // U+FFFD for its bad bytes.)
  const notUtf8: string[] = [];
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const names: string[] = [];
  for (const raw of readdirSync(dir, { encoding: 'buffer' })) {
    try {
      names.push(utf8.decode(raw));
    } catch {
      if (raw[0] !== 0x2e) notUtf8.push(raw.toString('utf8'));
    }
  }
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    let st;
    try {
      st = statSync(path);
    } catch {
      // (A dangling link, or one that cannot be followed.)
      skipped.push(name);
      continue;
    }
    if (st.isFile()) files.push({ name, path, size: st.size });
    else skipped.push(name);
  }
  return { files, skipped, notUtf8: notUtf8.sort() };
}

/** Whether the file at `path` starts with the bytes `head` (false when it cannot be read). */
export function fileStartsWith(path: string, head: Uint8Array): boolean {
  try {
    return readAtMost(path, head.length).equals(head);
  } catch {
    return false;
  }
}

/**
 * The `packages="N"` count of a createrepo_c primary.xml (plain or .gz); undefined when it is in
 * another compression or says none.
 */
export function primaryPackageCount(path: string): number | undefined {
  let text: string;
  try {
    const raw = readFileSync(path);
    if (path.endsWith('.gz')) text = gunzipSync(raw).subarray(0, 4096).toString('utf8');
    else if (path.endsWith('.xml')) text = raw.subarray(0, 4096).toString('utf8');
    else return undefined;
  } catch {
    return undefined;
  }
  const m = /<metadata\b[^>]*\bpackages="(\d+)"/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** stat(2) of a path (following links), or undefined when it cannot be (no such file, no access). */
export function statOr(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Whether a path is an existing directory. */
export const isDirectory = (path: string): boolean => statOr(path)?.isDirectory() === true;

/** What identifies a file's version without reading it (inode, size, mtime), or undefined when it does not exist. */
export function fileStamp(path: string): string | undefined {
  const st = statOr(path);
  return st && `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

/** Size of a file, or undefined when it does not exist. */
export const fileSizeOf = (path: string): number | undefined => statOr(path)?.size;

/** Streams a file in chunks of up to `chunk` bytes (memory stays flat whatever its size). */
export async function* readFileChunks(path: string, chunk = 1 << 20): AsyncGenerator<Uint8Array> {
  for await (const c of createReadStream(path, { highWaterMark: chunk })) yield c as Buffer;
}

/**
 * Where an output file given as `path` is written: through its symbolic links (a link is kept, its
 * target replaced), or why it cannot be: something there that is not a regular file (a device such
 * as /dev/null, a FIFO, a socket, a directory), or a file where a directory on its path should be.
 */
export function outputFileTarget(path: string): { path: string } | { error: string } {
  const p = linkHops(resolvePath(path)).at(-1)!;
  const st = lstatOr(p);
  if (st?.isSymbolicLink()) return { error: 'too many levels of symbolic links' };
  if (st && !st.isFile()) {
    const kind = st.isDirectory() ? 'a directory' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'not a regular file';
    return { error: `${p === resolvePath(path) ? '' : `it leads to ${p}, which `}is ${kind}, not a regular file it may replace` };
  }
  const blocked = fileOnPath(dirname(p));
  return blocked ? { error: `${blocked} is not a directory` } : { path: p };
}

/** The first of `dir` and its parents that exists and is not a directory (nothing can be made under it), if any. */
export function fileOnPath(dir: string): string | undefined {
  for (let d = dir; !isDirectory(d); d = dirname(d)) {
    if (fileSizeOf(d) !== undefined) return d;
    if (dirname(d) === d) break;
  }
  return undefined;
}

/**
 * An output file written through a temp file beside it (`.<name>.tmp-<pid>`) and renamed into
 * place by commit(), after an fsync; abort() removes the temp file. Writes wait for drain.
 */
export async function atomicFileSink(target: string): Promise<{ write(b: Uint8Array): Promise<void>; commit(): Promise<void>; abort(): void; tmpPath: string }> {
  // (The last guard: only a regular file is ever replaced.)
  const st = lstatOr(target);
  if (st && !st.isFile()) throw Object.assign(new Error(`${target} is not a regular file`), { code: 'ENOTREG' });
  mkdirs(dirname(target));
  removeStaleTemps(target);
  const tmpPath = tempBeside(target);
  const ws = createWriteStream(tmpPath, { mode: 0o644, flags: 'wx' });
  await once(ws, 'open');
  const fd = (ws as unknown as { fd: number }).fd;
  let failed: Error | undefined;
  ws.on('error', (e) => (failed = e));
  const drained = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        ws.off('drain', done);
        ws.off('error', done);
        resolve();
      };
      ws.on('drain', done);
      ws.on('error', done);
    });
  // The file goes to disk as it grows (one background fdatasync at a time, every 16 MiB), so the
  // fsync in commit() has little left to wait for.
  let unsynced = 0;
  let syncing: Promise<void> | undefined;
  return {
    tmpPath,
    async write(b) {
      if (failed) throw failed;
      if (!ws.write(b)) await drained();
      if (failed) throw failed;
      unsynced += b.length;
      if (unsynced >= 16 << 20 && !syncing) {
        unsynced = 0;
        syncing = new Promise((resolve) =>
          fdatasync(fd, (e) => {
            if (e) failed ??= e;
            syncing = undefined;
            resolve();
          }),
        );
      }
    },
    async commit() {
      await syncing;
      fsyncSync(fd);
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

/**
 * Calls `onChange` (once per burst of events: `quietMs` without another) when one of `files` is
 * written, replaced, created or removed. Watches their directories, so a file an editor replaces
 * by a rename, or one that does not exist yet, is followed too; and each directory's ancestors
 * (for its name only), so a directory renamed away, removed and made again, or a directory link
 * pointed elsewhere (`ln -sfn v2 current`), is watched again where the path now leads.
 */
export function watchFiles(files: string[], onChange: () => void, quietMs = 25): { close(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const fire = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, quietMs);
  };
  // Watched: each directory on the way to one of the names, with the names it holds there (the
  // file's name in its directory, the directory's name in its parent, up to the root), and the
  // inode it was watched as: a directory now at that path with another inode is watched anew.
  let byDir = new Map<string, Set<string>>();
  const watchers = new Map<string, { w: FSWatcher; ino: number }>();
  const drop = (d: string) => {
    watchers.get(d)?.w.close();
    watchers.delete(d);
  };
  // And each file where it ends, itself (its inode): an edit in place under another name (a hard
  // link of it elsewhere, edited there) shows in no directory watched above.
  const fileWatchers = new Map<string, { w: FSWatcher; ino: number }>();
  const dropFile = (f: string) => {
    fileWatchers.get(f)?.w.close();
    fileWatchers.delete(f);
  };
  // A file given through a symbolic link is watched where the link is, where each link on the way
  // leads, and where it ends (an edit of the target changes nothing in the link's directory). The
  // links are followed again at every event: a link pointed elsewhere (`ln -sfn prod.yml
  // pigsty.yml`), or a file created as a link, is then watched where it now leads.
  const refresh = () => {
    const next = new Map<string, Set<string>>();
    const chains = files.map(linkChain);
    for (const f of chains.flat()) {
      for (let child = f, d = dirname(f); ; child = d, d = dirname(d)) {
        if (!next.has(d)) next.set(d, new Set());
        next.get(d)!.add(basename(child));
        if (dirname(d) === d) break;
      }
    }
    for (const d of [...watchers.keys()]) if (!next.has(d)) drop(d);
    byDir = next;
    // (Where each file ends: its chain's last path, its real path when it has one; a link left
    // dangling, or no file yet, is for its directory's watcher to see come.)
    const ends = new Map<string, number>();
    for (const chain of chains) {
      const st = lstatOr(chain.at(-1)!);
      if (st?.isFile()) ends.set(chain.at(-1)!, st.ino);
    }
    for (const f of [...fileWatchers.keys()]) if (fileWatchers.get(f)!.ino !== ends.get(f)) dropFile(f);
    for (const [f, ino] of ends) {
      if (fileWatchers.has(f)) continue;
      try {
        const w = watch(f, () => {
          refresh();
          fire();
        });
        w.on('error', () => {
          dropFile(f);
          refresh();
          fire();
        });
        fileWatchers.set(f, { w, ino });
      } catch {
        // (Gone meanwhile: its directory's watcher sees it.)
      }
    }
    for (const d of byDir.keys()) {
      let ino: number | undefined;
      try {
        ino = statSync(d, { throwIfNoEntry: false })?.ino;
      } catch {
        // not a directory we can reach
      }
      const had = watchers.get(d);
      if (had && had.ino === ino) continue;
      if (had) drop(d);
      if (ino === undefined) continue; // (not there: its parent's watcher sees it made)
      try {
        const w = watch(d, (_event, name) => {
          if (name !== null && !byDir.get(d)?.has(name.toString())) return;
          refresh();
          fire();
        });
        // (The directory removed under its watcher: followed again from its parent's.)
        w.on('error', () => {
          drop(d);
          refresh();
          fire();
        });
        watchers.set(d, { w, ino });
      } catch {
        // (Not readable, or gone meanwhile: its parent's watcher sees it come back.)
      }
    }
  };
  refresh();
  return {
    close() {
      clearTimeout(timer);
      for (const { w } of watchers.values()) w.close();
      watchers.clear();
      for (const { w } of fileWatchers.values()) w.close();
      fileWatchers.clear();
    },
  };
}

/** `f` and every path its symbolic links lead through, link by link (up to 40 links). */
function linkHops(f: string): string[] {
  const out = [f];
  for (let i = 0; i < 40 && lstatOr(out.at(-1)!)?.isSymbolicLink(); i++) {
    const p = out.at(-1)!;
    try {
      out.push(resolvePath(dirname(p), readlinkSync(p)));
    } catch {
      break; // (removed between the two calls)
    }
  }
  return out;
}

/** `f`, every path its symbolic links lead through, and its real path when it has one. */
function linkChain(f: string): string[] {
  const out = linkHops(f);
  try {
    out.push(realpathSync(f));
  } catch {
    // dangling, or not there (yet)
  }
  return [...new Set(out)];
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
/**
 * Runs a program, its output passed to `onOutput` as it comes. With `group`, in a process group of
 * its own (a terminal's Ctrl-C does not reach it; `stop` does). When `stop` resolves, the program
 * (its group) is sent SIGINT, as a terminal would, and waited for: `stopped` says so.
 */
export async function runProgram(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; onOutput?: (s: string) => void; stop?: Promise<void>; group?: boolean; onSpawn?: (pid: number) => void } = {},
): Promise<{ code: number; stdout: string; stderr: string; stopped: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: (opts.env ?? process.env) as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.group === true });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    let stdout = '';
    let stderr = '';
    let stopped = false;
    let done = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      opts.onOutput?.(d.toString());
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onOutput?.(d.toString());
    });
    void opts.stop?.then(() => {
      if (done || child.pid === undefined) return;
      stopped = true;
      try {
        process.kill(opts.group ? -child.pid : child.pid, 'SIGINT');
      } catch {
        // gone meanwhile
      }
    });
    child.on('error', (e) => {
      done = true;
      reject(e);
    });
    child.on('close', (code, signal) => {
      done = true;
      resolve({ code: code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : -1), stdout, stderr, stopped });
    });
  });
}

/** Removes `dir` if it is an empty directory; anything else is left as it is. */
export function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty, not there, or not a directory
  }
}

/** Creates directories (with parents) and empty files that do not exist yet. */
export function ensurePaths(dirs: string[], emptyFiles: string[] = []): void {
  for (const d of dirs) mkdirs(d);
  for (const f of emptyFiles) if (!existsSync(f)) writeFileSync(f, '');
}

/** Makes `link` a symlink to `target` (tests and tools that stage files without copying). */
/** Puts a file at `dest` (replacing one there): a hard link of `src`, or a copy across filesystems. */
export function linkOrCopy(src: string, dest: string): void {
  rmSync(dest, { force: true });
  try {
    linkSync(src, dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK' && code !== 'ENOTSUP') throw e;
    copyFileSync(src, dest, fsConstants.COPYFILE_FICLONE);
  }
}

export function symlinkFile(target: string, link: string): void {
  symlinkSync(target, link);
}

/** Reads a text file if it exists (e.g. the secrets file); undefined when absent. */
export function readOptionalText(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/** A file's permission bits (undefined: no such file). */
export function fileMode(path: string): number | undefined {
  const st = statOr(path);
  return st && st.mode & 0o7777;
}

/** What sizes a build's documents' gzips: a worker thread (gzipSizeWorker) or this one (inlineGzipSizer). */
export type GzipSizes = { size(doc: Uint8Array): Promise<number>; close(): Promise<void> };

/** gzipSizeWorker's sizes, computed here as they are asked for (a small build: no thread to start). */
export function inlineGzipSizer(options: Record<string, number>): GzipSizes {
  return { size: (doc) => Promise.resolve(gzipSync(doc, options).length), close: async () => {} };
}

/**
 * A worker thread that gzips documents with the given zlib options and answers with the sizes.
 * A build's main thread goes on emitting meanwhile: on two cores the level-9 gzip of every
 * user-data (a third of the work on a large fleet) costs it nothing. Documents go over in
 * batches (in order, as they come; the last one when the caller next waits); close() ends it.
 */
export function gzipSizeWorker(options: Record<string, number>): GzipSizes {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const { gzipSync } = require('node:zlib');
     parentPort.on('message', (docs) => parentPort.postMessage(docs.map((d) => gzipSync(d, workerData).length)));`,
    { eval: true, workerData: options },
  );
  // Should the thread fail (it cannot start, or dies), the documents are sized here instead.
  const inline = (doc: Uint8Array) => gzipSync(doc, options).length;
  const waiting: { doc: Uint8Array; resolve(n: number): void }[] = [];
  let failed = false;
  const fail = () => {
    failed = true;
    for (const w of waiting.splice(0)) w.resolve(inline(w.doc));
  };
  worker.on('message', (sizes: number[]) => {
    for (const n of sizes) waiting.shift()?.resolve(n);
  });
  worker.on('error', fail);
  worker.on('exit', fail);
  let batch: Uint8Array[] = [];
  let bytes = 0;
  let flushQueued = false;
  const flush = () => {
    flushQueued = false;
    if (batch.length) worker.postMessage(batch);
    batch = [];
    bytes = 0;
  };
  return {
    size(doc) {
      if (failed) return Promise.resolve(inline(doc));
      const p = new Promise<number>((resolve) => waiting.push({ doc, resolve }));
      batch.push(doc);
      bytes += doc.length;
      if (batch.length >= 64 || bytes >= 1 << 20) flush();
      else if (!flushQueued) {
        flushQueued = true;
        queueMicrotask(flush);
      }
      return p;
    },
    async close() {
      fail();
      await worker.terminate();
    },
  };
}
