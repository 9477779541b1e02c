// Build step (`npm run build`, run by `prepare`): writes the inventory schema's validator as
// standalone code (dist/load/inventory-validator.cjs), so the CLI starts without compiling the
// schema. Not part of pigen's runtime.

import { PRECOMPILED_VALIDATOR, readAssets, writeFileAtomic } from '../io.js';
import { standaloneValidator } from './schema.js';

writeFileAtomic(PRECOMPILED_VALIDATOR, new TextEncoder().encode(standaloneValidator(readAssets().schema)), 0o644);
