// The whole pure pipeline after resolve: plan → render → emit.

import { emit, emitter, type Emitted, type EmitMemo, type EmitResult, type GzipSizer } from './emit/index.js';
import { fleetInputs, nodeInputs, plan, planNode } from './plan/index.js';
import { render, renderNode } from './render/index.js';
import type { Assets, Inventory, NodePlan, OutEntry, RenderedNode } from './types.js';
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
 * them), with the user-data gzip sizes computed by `gzipSize` (a worker) alongside. Each node is
 * planned, rendered and emitted in turn (what does not wait for the image split: emit/index.ts,
 * emitter), so the writer and the sizer start on the first node, not after the last is rendered.
 */
export async function compileAsync(inv: Inventory, assets: Assets, opts: CompileOptions, gzipSize: GzipSizer, sink: (e: OutEntry) => void, memo?: CompileMemo): Promise<Emitted & { nodes: RenderedNode[] }> {
  const e = emitter(emitOptions(inv, opts), gzipSize, sink, memo?.emitted);
  let nodes: RenderedNode[];
  if (memo) {
    // (A watching process renders only the nodes whose plan changed: it plans every node first.)
    nodes = await memo.render(assets, inv, opts.secrets);
    for (let i = 0; i < nodes.length; i++) {
      e.node(nodes[i]!);
      if ((i + 1) % 64 === 0) await turn();
    }
  } else {
    nodes = [];
    for (const n of inv.nodes) {
      const r = renderNode(assets, planNode(inv, n, opts.secrets));
      e.node(r);
      nodes.push(r);
      // (The event loop runs every 64 nodes: the sizer's answers come in, and the documents they
      // sized, held until then, can go.)
      if (nodes.length % 64 === 0) await turn();
    }
  }
  return { nodes, ...(await e.finish()) };
}

/**
 * What a long-lived process (pigen build --watch) keeps from one build to the next so that a
 * rebuild renders and emits only the nodes whose plan changed: per node, its plan and what it
 * rendered to; per rendered node, what it emitted (emit/index.ts: EmitMemo). Holds the last
 * build's nodes only. The output is the same as without it.
 */
export interface CompileMemo {
  /**
   * Plans and renders every node of `inv`, those whose plan is the last build's from the memo.
   * (The event loop runs every 64 nodes: a signal, a second Ctrl-C, is handled meanwhile.)
   */
  render(assets: Assets, inv: Inventory, secrets?: Secrets): Promise<RenderedNode[]>;
  emitted: EmitMemo;
  /** The IPs of the nodes the last render() rendered (not found in the memo). */
  readonly changed: string[];
}

export function compileMemo(): CompileMemo {
  /** A node's plan, what it rendered to, and what it was planned from (undefined: an infra node, planned each time). */
  type Memoised = { plan: NodePlan; rendered: RenderedNode; input: unknown };
  let last = new Map<string, Memoised>();
  let lastFleet: unknown;
  let lastAssets: Assets | undefined;
  let changed: string[] = [];
  return {
    async render(assets, inv, secrets) {
      if (assets !== lastAssets) (last = new Map()), (lastAssets = assets);
      const next = new Map<string, Memoised>();
      changed = [];
      // A node that is no infra node, given the same fleet inputs and the same inputs of its own as
      // in the last build, has the same plan (plan/index.ts: fleetInputs): it is not planned again.
      const fleet = fleetInputs(inv, secrets);
      const sameFleet = samePlainData(fleet, lastFleet);
      lastFleet = fleet;
      // (Node by node, each plan compared as it is made: one equal to the last build's dies young,
      // where planning the whole fleet first kept ~1,000 plans alive through the young
      // generation's collections, each copying them.)
      const nodes: RenderedNode[] = [];
      for (const n of inv.nodes) {
        const was = last.get(n.ip);
        const input = n.modules.includes('infra') ? undefined : nodeInputs(n);
        if (sameFleet && was && input !== undefined && samePlainData(input, was.input)) {
          next.set(n.ip, was);
          nodes.push(was.rendered);
          continue;
        }
        const p = planNode(inv, n, secrets);
        // (The plan kept is the old one when equal.)
        const kept = was && samePlainData(was.plan, p) ? { ...was, input } : { plan: p, input, rendered: (changed.push(p.ip), renderNode(assets, p)) };
        next.set(n.ip, kept);
        nodes.push(kept.rendered);
        if (nodes.length % 64 === 0) await turn();
      }
      last = next;
      return nodes;
    },
    emitted: new WeakMap(),
    get changed() {
      return changed;
    },
  };
}

/**
 * Whether two plain data values (plans: objects, arrays, strings, numbers, booleans, null) are the
 * same, keys in the same order (a template may iterate an object). It allocates only small key
 * arrays that die young, where comparing their JSON would build megabytes of strings per rebuild.
 */
export function samePlainData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!samePlainData(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b) || Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype) return false;
  const kx = Object.keys(a);
  const ky = Object.keys(b);
  if (kx.length !== ky.length) return false;
  for (let i = 0; i < kx.length; i++) {
    const k = kx[i]!;
    if (k !== ky[i] || !samePlainData((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

const emitOptions = (inv: Inventory, opts: CompileOptions) => ({ version: opts.version, inventory: inv.file, ...(opts.bundleSha256 ? { bundleSha256: opts.bundleSha256 } : {}) });

/** Lets the event loop run (I/O callbacks, signals, worker answers), then goes on. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
