#!/usr/bin/env node
// pigen's unbundled entry (dist/cli.js; the tests run generator/cli.ts): the CLI in this process.
// The published bin is dist/pigen.js (generator/bin.ts), which loads the same program bundled.

import { runProcess } from './cli/process.js';

await runProcess();
