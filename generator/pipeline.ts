// The pure pipeline: load → schema → resolve (→ plan → render in later stages). Inputs are values
// already in memory; the result carries every diagnostic of every stage that ran.

import { hasErrors, locate, inventorySecretValues, redactSecrets, sortDiagnostics } from './diagnostics.js';
import { parseInventory, type ParseMemo } from './load/parse.js';
import { checkSchema } from './load/schema.js';
import { resolve } from './resolve/index.js';
import { knownParams, publishedSecretDefaults } from './resolve/params.js';
import type { Assets, Diagnostic, Inventory, Loaded, Path, ResolveOptions, Source } from './types.js';

export interface Validated {
  loaded?: Loaded;
  inventory?: Inventory;
  diagnostics: Diagnostic[];
  /** The inventory's secret values (inventorySecretValues), for printing code frames without them. */
  secretValues?: string[];
  /**
   * The inventory as resolved though a rule reported an error (no `inventory` then): for what is
   * still said with those errors (the default passwords, cli/common.ts), never for a build.
   */
  draft?: Inventory;
}

/**
 * Parses, checks the schema and resolves. Stops after a stage that reported an error. (`memo`: a
 * watching process's last parse, load/parse.ts.)
 */
export function loadAndResolve(src: Source, assets: Assets, opts: ResolveOptions, memo?: ParseMemo): Validated {
  const parsed = parseInventory(src, memo);
  if (!parsed.value) return { diagnostics: redactSecrets(sortDiagnostics(locate(parsed.diagnostics, undefined, src.name)), []) };
  const loaded = parsed.value;
  // A Jinja template counts where pigen reads the parameter (the schema's): one in a parameter of
  // a module pigen carries through (`pg_users: [{ password: "{{ vault_pw }}" }]`, a common
  // Ansible pattern) is never written (found by a review: it blocked the build).
  const known = knownParams(assets.schema);
  parsed.diagnostics = parsed.diagnostics.filter((d) => d.code !== 'jinja-template' || known.has(String(paramOf(d.path))));
  // (Parse diagnostics that leave a value: duplicate keys. They come first, and no inventory is made.)
  const schemaDiags = locate([...parsed.diagnostics, ...checkSchema(loaded, assets.schema), ...checkSets(loaded, assets, opts)], loaded, src.name);
  // Resolve even when the schema found type errors in leaf values: rules report more at once.
  // Structural errors (e.g. `all` not a mapping) make resolve skip the broken parts.
  const secretValues = inventorySecretValues(loaded.data, opts.sets, publishedSecretDefaults(assets.schema));
  let resolved: ReturnType<typeof resolve>;
  try {
    resolved = resolve(loaded, assets.schema, opts);
  } catch (e) {
    // Values of the wrong type can trip a rule; the schema errors already explain them.
    if (hasErrors(schemaDiags)) return { loaded, diagnostics: redactSecrets(sortDiagnostics(schemaDiags), secretValues), secretValues };
    throw e;
  }
  const resolveDiags = locate(resolved.diagnostics, loaded, src.name);
  const diagnostics = redactSecrets(sortDiagnostics(dedupeByLocation([...schemaDiags, ...resolveDiags])), secretValues);
  return {
    loaded,
    secretValues,
    ...(resolved.value ? (hasErrors(diagnostics) ? { draft: resolved.value } : { inventory: resolved.value }) : {}),
    diagnostics,
  };
}

/** --set values get the same type and range checks as the inventory's own vars. */
function checkSets(loaded: Loaded, assets: Assets, opts: ResolveOptions): Diagnostic[] {
  return opts.sets.flatMap((s, i) =>
    // (The value alone, with its own whole floats: not the inventory's, whose paths are not in it.)
    checkSchema({ file: loaded.file, text: loaded.text, positions: loaded.positions, data: { all: { vars: { [s.key]: s.value } } }, ...(s.wholeFloats ? { wholeFloats: s.wholeFloats.map((f) => ({ ...f, path: ['all', 'vars', s.key, ...f.path] })) } : {}) }, assets.schema).map((d) => ({
      ...d,
      path: ['--set', i, ...d.path.slice(2)],
      message: `${d.message} (in --set ${s.raw})`,
    })),
  );
}

/** A schema error and a rule error at the same spot say the same thing twice: keep the schema one. */
function dedupeByLocation(ds: Diagnostic[]): Diagnostic[] {
  const schemaAt = new Set(ds.filter((d) => d.code.startsWith('schema-')).map((d) => d.path.join('\u0000')));
  return ds.filter((d) => d.code.startsWith('schema-') || d.severity === 'warning' || !schemaAt.has(d.path.join('\u0000')));
}

/** The parameter a path into the inventory's data is under (all.vars.K, a group's vars.K, a host's K), if any. */
export function paramOf(path: Path): string | number | undefined {
  if (path[0] !== 'all') return undefined;
  for (let i = 1; i < path.length; ) {
    if (path[i] === 'vars') return path[i + 1];
    if (path[i] === 'hosts') return path[i + 2];
    if (path[i] === 'children') i += 2;
    else return undefined;
  }
  return undefined;
}
