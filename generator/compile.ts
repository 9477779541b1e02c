// The whole pure pipeline after resolve: plan → render → emit.

import { emit, type EmitResult } from './emit/index.js';
import { plan } from './plan/index.js';
import { render } from './render/index.js';
import type { Assets, Inventory, RenderedNode } from './types.js';
import type { Secrets } from './secrets/index.js';

export interface Compiled extends EmitResult {
  nodes: RenderedNode[];
}

export function compile(inv: Inventory, assets: Assets, opts: { version: string; secrets?: Secrets; bundleSha256?: string }): Compiled {
  const nodes = render(assets, plan(inv, opts.secrets));
  return { nodes, ...emit(nodes, { version: opts.version, inventory: inv.file, ...(opts.bundleSha256 ? { bundleSha256: opts.bundleSha256 } : {}) }) };
}
