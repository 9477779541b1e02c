// The bundle the `pigen` bin runs (dist/pigen.cjs, made by esbuild at `npm run build`) and V8's
// code cache for it (dist/pigen.cjs.cache). Node 20 has no compile cache of its own (Node 22's
// module.enableCompileCache); with this one a run skips compiling the ~850 KB bundle and the
// functions a build calls: ~25 ms of every command's start, ~10 % of a 100-node build. The cache
// is made once, at `npm run build` (make-code-cache.ts: nothing is written at run time), and used only
// for the bundle it was made from: it carries the bundle's sha256 (V8 itself checks only the
// source's length, its own version and flags; a cache it rejects is ignored, as is a missing one).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import vm from 'node:vm';
import { sha256 } from '../util/hash.js';

/** What the bundle exports (generator/cli/process.ts). */
export interface Bundle {
  runProcess(): Promise<void>;
  main: typeof import('./main.js').main;
}

/** Loads the CommonJS bundle at `file`, with the code cache at `cacheFile` when it was made for these bytes. */
export function loadBundle(file: string, cacheFile = `${file}.cache`): { exports: Bundle; script: vm.Script; source: string; cached: boolean } {
  const source = readFileSync(file, 'utf8');
  let cachedData: Buffer | undefined;
  try {
    const c = readFileSync(cacheFile);
    if (c.subarray(0, 64).toString('latin1') === sha256(source)) cachedData = c.subarray(64);
  } catch {
    // no cache: compiled as usual
  }
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
    // (import() as in a module. Functions V8 restores from the cache lose it on Node 20: the
    // bundle loads its packages with require() instead, util/packages.ts.)
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const module = { exports: {} as Bundle };
  (script.runInThisContext() as (...a: unknown[]) => void)(module.exports, createRequire(file), module, file, dirname(file));
  return { exports: module.exports, script, source, cached: cachedData !== undefined && !script.cachedDataRejected };
}

/** The cache file's bytes for a script that has run: the bundle's sha256 (hex), then V8's data. */
export function codeCache(source: string, script: vm.Script): Buffer {
  return Buffer.concat([Buffer.from(sha256(source), 'latin1'), script.createCachedData()]);
}
