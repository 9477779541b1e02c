// Build step (`npm run build`, run by `prepare`): writes the inventory schema's validator as
// standalone code next to the compiled schema module (dist/load/inventory-validator.cjs), so the
// CLI starts without compiling the schema. Not part of pigen's runtime.

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readAssets, writeFileAtomic } from '../io.js';
import { standaloneValidator } from './schema.js';

const here = fileURLToPath(new URL('.', import.meta.url));
writeFileAtomic(join(here, 'inventory-validator.cjs'), new TextEncoder().encode(standaloneValidator(readAssets().schema)), 0o644);
