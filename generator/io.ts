// The one module that touches the filesystem (besides the CLI): reads inputs and assets, and writes
// output trees atomically (built beside the target, then renamed into place).

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_INVENTORY, DEFAULT_INVENTORY_NAME } from './default-inventory.js';
import { err } from './diagnostics.js';
import type { Assets, Diagnostic, JsonObject, Source } from './types.js';

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
