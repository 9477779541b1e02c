// Shared by commands: loading the inventory with --set/--strict, printing diagnostics.

import { diagnosticsToJson, formatDiagnostics, hasErrors } from '../diagnostics.js';
import { readAssets, readInventory } from '../io.js';
import { parseInventory } from '../load/parse.js';
import { loadAndResolve, type Validated } from '../pipeline.js';
import { parseSet } from '../resolve/index.js';
import type { Diagnostic, Json, ResolveOptions, Source } from '../types.js';
import { useColor, type CliContext } from './context.js';

/** Parses a --set value with the inventory's YAML 1.1 rules. */
function parseSetValue(s: string): Json | undefined {
  const r = parseInventory({ name: '--set', bytes: new TextEncoder().encode(`v: ${s === '' ? "''" : s}\n`) });
  if (!r.value) return undefined;
  return (r.value.data as { v?: Json }).v ?? null;
}

export interface LoadResult extends Validated {
  source?: Source;
  sourceText?: string;
}

export function loadInventory(ctx: CliContext, arg: string | undefined, sets: string[], strict: boolean): LoadResult {
  const src = readInventory(arg, ctx.cwd);
  if (!('bytes' in src)) return { diagnostics: [src] };
  const parsedSets: ResolveOptions['sets'] = [];
  const setDiags: Diagnostic[] = [];
  for (const raw of sets) {
    const r = parseSet(raw, parseSetValue);
    if ('code' in r) setDiags.push(r);
    else parsedSets.push(r);
  }
  if (setDiags.length) return { source: src, diagnostics: setDiags };
  const v = loadAndResolve(src, readAssets(), { sets: parsedSets, strict });
  return { ...v, source: src, sourceText: v.loaded?.text };
}

/** Prints diagnostics to stderr (text) — JSON output is the command's business. */
export function printDiagnostics(ctx: CliContext, r: LoadResult): void {
  if (r.diagnostics.length === 0) return;
  const sources = new Map<string, string>();
  if (r.source) sources.set(r.source.name, r.sourceText ?? new TextDecoder().decode(r.source.bytes));
  ctx.stderr.write(formatDiagnostics(r.diagnostics, { color: useColor(ctx, ctx.stderr), sources }));
  const e = r.diagnostics.filter((d) => d.severity === 'error').length;
  const w = r.diagnostics.length - e;
  ctx.stderr.write(`\n${e} error${e === 1 ? '' : 's'}, ${w} warning${w === 1 ? '' : 's'}\n`);
}

export { diagnosticsToJson, hasErrors };
