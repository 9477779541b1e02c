// The CLI bundle's entry (esbuild, at `npm run build`): process.ts, with the inventory validator
// and the templates that the build precompiled before bundling (dist/load/inventory-validator.cjs,
// dist/render/templates.cjs) bundled in, so the bundle's code cache (code-cache.ts) covers them
// as well. Each is evaluated on first use. Only ever run bundled: `require` here is esbuild's.

import { bundledPrecompiled } from '../io.js';

bundledPrecompiled.validator = () => require('../load/inventory-validator.cjs');
bundledPrecompiled.templates = () => require('../render/templates.cjs');

export * from './process.js';
