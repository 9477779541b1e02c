// `pigen build` with nothing changed: the inputs' digest (buildKey) matches the one the output's
// state records (io.ts: BuildStamp, upToDate) and the output is still exactly what that build
// wrote, so nothing is parsed, planned or rendered: the build's report is printed again, as it
// was recorded. Any doubt (an input unreadable, --bundle given, the output touched, no stamp) and
// the build runs as usual.

import { createHash } from 'node:crypto';
import { resolve as resolvePath } from 'node:path';
import { codeIdentity, inventoryFile, readAssets, readInventory, readOptionalText, statOr } from '../io.js';
import { secretsFileOf } from './common.js';
import type { CliContext } from './context.js';
import type { Values } from './commands.js';
import type { Source } from '../types.js';

/** Bumped whenever what the key covers, or the report's shape, changes. */
const KEY_VERSION = 1;

/**
 * The key of the inputs a build of `args` reads now (inputsKey), and the inventory's name as said;
 * undefined when it cannot be told here (an input unreadable: the build says why), or with
 * --bundle (its manifest is verified by reading it whole, as the build does).
 */
export function buildKey(ctx: CliContext, values: Values, args: string[]): { key: string; source: Source; secrets: string | undefined; mode: number | undefined } | undefined {
  if (values.bundle !== undefined) return undefined;
  // (Only regular files: one read here would use up a pipe, `pigen build <(cat inv.yml)`.)
  const file = inventoryFile(args[0], ctx.cwd);
  const secretsPath = secretsFileOf(ctx.cwd, args[0]);
  const secretsStat = statOr(secretsPath);
  if ((file !== undefined && !statOr(resolvePath(ctx.cwd, file))?.isFile()) || (secretsStat && !secretsStat.isFile())) return undefined;
  const src = readInventory(args[0], ctx.cwd);
  if (!('bytes' in src)) return undefined;
  let secrets: string | undefined;
  try {
    secrets = readOptionalText(secretsPath);
  } catch {
    return undefined;
  }
  const mode = secrets === undefined ? undefined : secretsStat && secretsStat.mode & 0o7777;
  return { key: inputsKey(src, { path: secretsPath, text: secrets, mode }, values), source: src, secrets, mode };
}

/**
 * A digest of everything a build's output follows from: the program (code, Node and zlib
 * versions: codeIdentity), its templates and schema, the inventory's name and bytes (the manifest
 * records the name), the secrets file beside it (path, mode and bytes, or its absence), each --set in
 * order, and --strict. (A build stamps its output with the key of the very bytes it read: a file
 * saved while it ran is not taken for them.)
 */
export function inputsKey(src: Source, secrets: { path: string; text: string | undefined; mode?: number | undefined }, values: Values): string {
  const h = createHash('sha256');
  // (Each part framed by its length in bytes: no two sequences of parts read the same.)
  const part = (s: string | Uint8Array) => ((b) => h.update(`${b.length}:`).update(b))(typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
  part(`pigen build key ${KEY_VERSION}`);
  part(codeIdentity());
  const assets = readAssets();
  part(JSON.stringify(assets.schema));
  for (const [name, text] of [...assets.templates].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) part(name), part(text);
  part(src.name);
  part(src.bytes);
  part(secrets.path);
  part(secrets.text === undefined ? 'absent' : `present:${secrets.mode ?? 'unknown'}:${secrets.text}`);
  const sets = (values.set as string[] | undefined) ?? [];
  part(String(sets.length));
  for (const s of sets) part(s);
  part(values.strict === true ? 'strict' : 'lax');
  return h.digest('hex');
}

/** What a build reported, as recorded with its output and printed again by a build skipped. */
export interface BuildReport {
  /** Each node: its IP, nodename, number of files, modules. */
  nodes: [ip: string, nodename: string, files: number, modules: string[]][];
  /** Nodes whose user-data fits no cloud's limit in any encoding: IP, nodename, size. */
  unfit: [ip: string, nodename: string, size: number][];
  /** Per cloud whose limit some nodes' user-data exceed: the limit and those nodes. */
  exceeds: Record<string, { limit: number; nodes: string[] }>;
  files: number;
  links: number;
  /** The diagnostics as printed (with colour and without) and as --json gives them. */
  diagnostics: { text: string; color: string; json: unknown[] };
  /** Until when (ms since the epoch) they hold: a certificate's validity changes then (LoadResult.diagnosticsUntil). */
  until?: number;
}

/** A report read back from a state (written by this version: KEY_VERSION) that still holds at `now`, or undefined. */
export function asReport(r: unknown, now: number): BuildReport | undefined {
  const x = r as Partial<BuildReport> | null;
  if (!x || !Array.isArray(x.nodes) || !Array.isArray(x.unfit) || typeof x.exceeds !== 'object' || typeof x.files !== 'number' || typeof x.links !== 'number' || typeof x.diagnostics?.text !== 'string' || typeof x.diagnostics.color !== 'string' || !Array.isArray(x.diagnostics.json)) return undefined;
  // (A certificate expired, or came within the warning's reach, since: the build says so.)
  if (x.until !== undefined && !(typeof x.until === 'number' && now < x.until)) return undefined;
  return x as BuildReport;
}
