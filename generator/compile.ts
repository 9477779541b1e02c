// The whole pure pipeline after resolve: plan → render → emit.

import { emit, emitAsync, type Emitted, type EmitMemo, type EmitResult, type GzipSizer } from './emit/index.js';
import { plan } from './plan/index.js';
import { render, renderNode } from './render/index.js';
import type { Assets, Inventory, OutEntry, Plan, RenderedNode } from './types.js';
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
export async function compileAsync(inv: Inventory, assets: Assets, opts: CompileOptions, gzipSize: GzipSizer, sink: (e: OutEntry) => void, memo?: CompileMemo): Promise<Emitted & { nodes: RenderedNode[] }> {
  const planned = plan(inv, opts.secrets);
  const nodes = memo ? memo.render(assets, planned) : render(assets, planned);
  return { nodes, ...(await emitAsync(nodes, emitOptions(inv, opts), gzipSize, sink, memo?.emitted)) };
}

/**
 * What a long-lived process (pigen build --watch) keeps from one build to the next so that a
 * rebuild renders and emits only the nodes whose plan changed: per node, its plan's JSON (plans are
 * plain data built in a fixed order) and what it rendered to; per rendered node, what it emitted
 * (emit/index.ts: EmitMemo). Holds the last build's nodes only. The output is the same as without it.
 */
export interface CompileMemo {
  render(assets: Assets, planned: Plan): RenderedNode[];
  emitted: EmitMemo;
  /** The IPs of the nodes the last render() rendered (not found in the memo). */
  readonly changed: string[];
}

export function compileMemo(): CompileMemo {
  let last = new Map<string, RenderedNode>();
  let lastAssets: Assets | undefined;
  let changed: string[] = [];
  return {
    render(assets, planned) {
      if (assets !== lastAssets) (last = new Map()), (lastAssets = assets);
      const next = new Map<string, RenderedNode>();
      changed = [];
      const nodes = planned.nodes.map((p) => {
        const key = JSON.stringify(p);
        let r = last.get(key);
        if (r === undefined) (r = renderNode(assets, p)), changed.push(p.ip);
        next.set(key, r);
        return r;
      });
      last = next;
      return nodes;
    },
    emitted: new WeakMap(),
    get changed() {
      return changed;
    },
  };
}

const emitOptions = (inv: Inventory, opts: CompileOptions) => ({ version: opts.version, inventory: inv.file, ...(opts.bundleSha256 ? { bundleSha256: opts.bundleSha256 } : {}) });
