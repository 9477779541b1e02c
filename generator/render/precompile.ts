// Build step (`npm run build`, run by `prepare`): writes every template compiled by nunjucks
// (dist/render/templates.cjs), so the CLI starts without compiling them. Not part of pigen's runtime.

import { PRECOMPILED_TEMPLATES, readAssets, writeFileAtomic } from '../io.js';
import { standaloneTemplates } from './index.js';

writeFileAtomic(PRECOMPILED_TEMPLATES, new TextEncoder().encode(standaloneTemplates(readAssets().templates)), 0o644);
