// The whole pure pipeline after resolve: plan → render → emit.

import { emit, emitAsync, type Emitted, type EmitResult, type GzipSizer } from './emit/index.js';
import { plan } from './plan/index.js';
import { render } from './render/index.js';
import type { Assets, Inventory, OutEntry, RenderedNode } from './types.js';
import type { Secrets } from './secrets/index.js';

export interface Compiled extends EmitResult {
  nodes: RenderedNode[];
}

export interface CompileOptions {
  version: string;
  secrets?: Secrets;
  bundleSha256?: string;
}

export function compile(inv: Inventory, assets: Assets, opts: CompileOptions): Compiled {
  const nodes = render(assets, plan(inv, opts.secrets));
  return { nodes, ...emit(nodes, emitOptions(inv, opts)) };
}

/**
 * The same, each output entry given to `sink` as soon as it is made (not kept: `files` counts
 * them), with the user-data gzip sizes computed by `gzipSize` (a worker) alongside.
 */
export async function compileAsync(inv: Inventory, assets: Assets, opts: CompileOptions, gzipSize: GzipSizer, sink: (e: OutEntry) => void): Promise<Emitted & { nodes: RenderedNode[] }> {
  const nodes = render(assets, plan(inv, opts.secrets));
  return { nodes, ...(await emitAsync(nodes, emitOptions(inv, opts), gzipSize, sink)) };
}

const emitOptions = (inv: Inventory, opts: CompileOptions) => ({ version: opts.version, inventory: inv.file, ...(opts.bundleSha256 ? { bundleSha256: opts.bundleSha256 } : {}) });
