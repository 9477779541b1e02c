#!/usr/bin/env node
// The `pigen` bin (bundled into dist/pigen.js): runs the CLI bundle (dist/pigen.cjs) with its
// code cache (generator/cli/code-cache.ts).

import { fileURLToPath } from 'node:url';
import { loadBundle } from './cli/code-cache.js';

await loadBundle(fileURLToPath(new URL('./pigen.cjs', import.meta.url))).exports.runProcess();
