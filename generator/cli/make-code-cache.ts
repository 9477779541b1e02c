// Build step (`npm run build`, after esbuild): makes the code cache of the CLI bundle
// (dist/pigen.cjs.cache, see code-cache.ts) by running, in this process, what users run most: a
// build of the embedded default inventory (into a temporary directory, removed after), validate,
// and help; V8 then caches the functions those compiled as well. Not part of pigen's runtime.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../io.js';
import { codeCache, loadBundle } from './code-cache.js';

const file = fileURLToPath(new URL('../pigen.cjs', import.meta.url));
const { exports: bundle, script, source } = loadBundle(file, '/nonexistent');
const dir = mkdtempSync(join(tmpdir(), 'pigen-code-cache-'));
try {
  const quiet = { write: () => {}, isTTY: false };
  const ctx = { cwd: dir, env: { NO_COLOR: '1' }, stdout: quiet, stderr: quiet, epoch: 0 };
  for (const args of [['build', '-o', join(dir, 'out')], ['build', '-o', join(dir, 'out')], ['validate'], ['--help'], ['build', '--help']]) {
    const code = await bundle.main(args, ctx);
    if (code !== 0) throw new Error(`pigen ${args.join(' ')} exited ${code} while making the code cache`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
writeFileAtomic(`${file}.cache`, codeCache(source, script), 0o644);
