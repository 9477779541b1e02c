// The whole pure pipeline after resolve: plan → render → emit.

import { emit, emitAsync, type EmitResult, type GzipSizer } from './emit/index.js';
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

/** The same, with the user-data gzip sizes computed by `gzipSize` (a worker) alongside; each output entry also goes to `sink` as soon as it is made. */
export async function compileAsync(inv: Inventory, assets: Assets, opts: CompileOptions, gzipSize: GzipSizer, sink?: (e: OutEntry) => void): Promise<Compiled> {
  const nodes = render(assets, plan(inv, opts.secrets));
  return { nodes, ...(await emitAsync(nodes, emitOptions(inv, opts), gzipSize, sink)) };
}

const emitOptions = (inv: Inventory, opts: CompileOptions) => ({ version: opts.version, inventory: inv.file, ...(opts.bundleSha256 ? { bundleSha256: opts.bundleSha256 } : {}) });
