// npm packages loaded on first use, with require(): the `pigen` bin runs its bundle from V8's code
// cache (cli/code-cache.ts), and on Node 20 the functions V8 restores from a cache lose import()'s
// host callback ("A dynamic import callback was not specified"), whatever the Script was given.
// Every package loaded this way ships CommonJS.

import { createRequire } from 'node:module';

const requireHere = createRequire(import.meta.url);

/** The package's exports (its CommonJS module.exports). */
export function loadPackage<T>(name: string): T {
  return requireHere(name) as T;
}

/** A package's default export, as import() would give it (module.exports.default, or module.exports). */
export function loadDefault<T>(name: string): T {
  const m = loadPackage<{ default?: unknown }>(name);
  return ((m && typeof m === 'object' && 'default' in m ? m.default : m) ?? m) as T;
}
