// Shared by commands: loading the inventory with --set/--strict, printing diagnostics.

import { diagnosticsToJson, err, formatDiagnostics, hasErrors, warn } from '../diagnostics.js';
import { fileMode, readAssets, readInventory, readOptionalText, type OutputBusy } from '../io.js';
import { X509Certificate } from 'node:crypto';
import { SECRETS_FILE, applyPasswords, defaultPasswords, infraSans, parseSecretsFile, passwordParams, secretValues, unknownPasswords, type Secrets } from '../secrets/index.js';
import { secretForms } from '../util/redact.js';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { constants as osConstants } from 'node:os';
import { parseInventory, type ParseMemo } from '../load/parse.js';
import { loadAndResolve, type Validated } from '../pipeline.js';
import { parseSet } from '../resolve/index.js';
import type { Assets, Diagnostic, Inventory, Json, ResolveOptions, SetVar, Source } from '../types.js';
import { useColor, type CliContext } from './context.js';

/** Parses a --set value with the inventory's YAML 1.1 rules: the value, or why it is none. */
export function parseSetValue(s: string): { value: Json; wholeFloats?: SetVar['wholeFloats'] } | { error: string } {
  const r = parseInventory({ name: '--set', bytes: new TextEncoder().encode(`v: ${s === '' ? "''" : s}\n`) });
  // (What is wrong by its kind only, never the text: the value may be a password, `*Secret`.)
  if (!r.value) {
    const code = r.diagnostics[0]?.code;
    return { error: code === 'alias-error' ? 'it starts with `*`, an alias with no anchor (quote it if it is a string)' : code === 'yaml-tag' ? 'it starts with `!`, a tag pigen does not read (quote it if it is a string)' : code === 'duplicate-key' ? 'a mapping with a key twice' : 'it is not valid YAML (an unclosed quote or bracket?)' };
  }
  // (A Jinja template, as in the inventory: pigen would write its text.)
  if (r.diagnostics.some((d) => d.code === 'jinja-template')) return { error: 'it holds a Jinja template (`{{`, `{%` or `{#`), which pigen does not evaluate: write the value it stands for' };
  const data = r.value.data as Record<string, Json>;
  // (A line break would start a second key, read and dropped: `nginx_port=8080\nadmin_ip: x`.)
  if (Object.keys(data).length !== 1) return { error: 'it holds more than one value (a line break?): one --set sets one parameter' };
  // (Whole floats, `--set pg_seq=1.0`, at their paths within the value: the schema's check says
  // where an integer is wanted, as for the inventory's own.)
  const floats = r.value.wholeFloats?.map((f) => ({ ...f, path: f.path.slice(1) }));
  return { value: data.v ?? null, ...(floats?.length ? { wholeFloats: floats } : {}) };
}

/** The secrets file a build with inventory argument `arg` reads: beside the inventory (or in `cwd`). */
export function secretsFileOf(cwd: string, arg: string | undefined): string {
  return join(arg ? dirname(resolvePath(cwd, arg)) : cwd, SECRETS_FILE);
}

export interface LoadResult extends Validated {
  source?: Source;
  sourceText?: string;
  secrets?: Secrets;
  /** The secrets file looked for beside the inventory, and its text (undefined: none there); once read. */
  secretsFile?: { path: string; text: string | undefined; mode?: number | undefined };
  /** Until when (ms since the epoch) the diagnostics hold: a certificate's validity changes then. */
  diagnosticsUntil?: number;
}

/** How long before a certificate's end a build warns of it. */
export const EXPIRY_WARNING_MS = 30 * 24 * 3600 * 1000;

/**
 * The CA's and the infra nodes' certificates out of their validity at `now` (expired: an error;
 * not valid yet, or ending within EXPIRY_WARNING_MS: a warning), and the next instant at which that
 * changes.
 */
export function certificateValidity(s: Secrets, infra: string[], now: number): { problems: { what: string; message: string; expired: boolean; rotate: string }[]; until: number } {
  const problems: { what: string; message: string; expired: boolean; rotate: string }[] = [];
  let until = Infinity;
  const certs: [string, string, string][] = [
    ['the CA certificate', s.ca.cert, 'ca'],
    ...infra
      .filter((ip) => s.infra[ip])
      .flatMap((ip): [string, string, string][] => [[`the certificate of ${ip}`, s.infra[ip]!.cert, `infra:${ip}`], ...(s.infra[ip]!.webCert !== undefined ? [[`the web certificate of ${ip} (nginx)`, s.infra[ip]!.webCert!, `infra:${ip}`] as [string, string, string]] : [])]),
  ];
  for (const [what, pem, rotate] of certs) {
    const c = new X509Certificate(pem);
    const from = Date.parse(c.validFrom);
    const to = Date.parse(c.validTo);
    const day = (t: number) => new Date(t).toISOString().slice(0, 10);
    if (now >= to) problems.push({ what, message: `expired on ${day(to)}`, expired: true, rotate });
    else if (now < from) problems.push({ what, message: `is not valid before ${new Date(from).toISOString()} (is this machine's clock behind?)`, expired: false, rotate });
    else if (to - now <= EXPIRY_WARNING_MS) problems.push({ what, message: `expires on ${day(to)}`, expired: false, rotate });
    for (const t of [from, to - EXPIRY_WARNING_MS, to]) if (t > now && t < until) until = t;
  }
  return { problems, until };
}

export function loadInventory(ctx: CliContext, arg: string | undefined, sets: string[], strict: boolean, opts: { noSecrets?: boolean; parseMemo?: ParseMemo } = {}): LoadResult {
  const src = readInventory(arg, ctx.cwd);
  if (!('bytes' in src)) return { diagnostics: [src] };
  const parsedSets: ResolveOptions['sets'] = [];
  const setDiags: Diagnostic[] = [];
  for (const raw of sets) {
    const r = parseSet(raw, parseSetValue);
    if ('code' in r) setDiags.push(r);
    else parsedSets.push(r);
  }
  const assets = readAssets();
  const v = loadAndResolve(src, assets, { sets: parsedSets, strict }, opts.parseMemo);
  // (A bad --set is said with the inventory's own problems, not instead of them.)
  if (setDiags.length) {
    v.draft ??= v.inventory;
    delete v.inventory;
    v.diagnostics = [...setDiags, ...v.diagnostics];
  }
  const { draft, ...validated } = v;
  const result: LoadResult = { ...validated, source: src, sourceText: v.loaded?.text };
  if (!v.inventory && draft && !opts.noSecrets) {
    // (With errors elsewhere, the default passwords are said all the same: every problem at once.
    // The secrets file's passwords count when it reads; its own problems are said once the
    // inventory resolves. A draft of values of the wrong type may trip this: the errors said
    // explain them. Under --strict, where it is an error, it is said with the others too.)
    try {
      const text = readOptionalText(secretsFileOf(ctx.cwd, arg));
      const read = text === undefined ? undefined : parseSecretsFile(text);
      if (read && 'secrets' in read) applyPasswords(draft, assets.schema, read.secrets);
      if (read === undefined || 'secrets' in read) result.diagnostics = [...result.diagnostics, ...defaultSecret(draft, assets, src.name, text === undefined, strict)];
    } catch {
      // (Said once the inventory resolves.)
    }
  }
  if (!v.inventory || opts.noSecrets) return result;
  // The secrets file beside the inventory: its passwords replace published defaults.
  const secretsPath = secretsFileOf(ctx.cwd, arg);
  let text: string | undefined;
  try {
    text = readOptionalText(secretsPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : systemErrorMessage(e);
    result.diagnostics = [...result.diagnostics, err('file-unreadable', [], `cannot read ${secretsPath}: ${why}`, { file: secretsPath, hint: 'the secrets file beside the inventory must be a file pigen can read (pigen secrets init makes one)' })];
    delete result.inventory;
    return result;
  }
  const mode = text === undefined ? undefined : fileMode(secretsPath);
  result.secretsFile = { path: secretsPath, text, mode };
  // (Readable by others: said, as ssh says of a private key; its mode is in a build's key, cli/uptodate.ts.)
  if (mode !== undefined && mode & 0o077) {
    result.diagnostics = [...result.diagnostics, warn('secrets-mode', [], `${secretsPath} is readable or writable by others (mode ${mode.toString(8).padStart(4, '0')})`, { file: secretsPath })];
  }
  if (text !== undefined) {
    const read = parseSecretsFile(text);
    // (Every problem at once, each where it is: the entries' and the names that are no password parameter.)
    const keys = read.passwordKeys ?? new Map<string, { line: number; col: number }>();
    const names = 'secrets' in read ? Object.keys(read.secrets.passwords) : [...keys.keys()];
    const unknown = unknownPasswords(names, assets.schema);
    if ('problems' in read || unknown.length) {
      const found = [
        ...('problems' in read
          ? read.problems.map((p) =>
              err('bad-value', [], `${secretsPath}: ${p.problem}`, {
                file: secretsPath,
                ...(p.pos ? { pos: p.pos } : {}),
                hint: p.problem.startsWith('not valid YAML')
                  ? 'fix that line (a password starting with *, &, !, |, > or % must be quoted), or replace one entry with `pigen secrets rotate NAME`'
                  : 'fix that entry, or replace it with `pigen secrets rotate NAME`; `pigen secrets init --force` makes a new file (a new CA, keys and passwords)',
              }),
            )
          : []),
        // (Each at its line.)
        ...unknown.map((name) =>
          err('bad-value', [], `${secretsPath}: passwords: ${name} is no password parameter (a secrets file sets only parameters whose published default it replaces: ${[...passwordParams(assets.schema)].sort().join(', ')})`, {
            file: secretsPath,
            ...(keys.get(name) ? { pos: keys.get(name)! } : {}),
            hint: 'delete that line (any `pigen secrets rotate NAME` drops it too)',
          }),
        ),
      ];
      result.diagnostics = [...result.diagnostics, ...found];
      delete result.inventory;
      return result;
    }
    const parsed = read.secrets;
    result.secrets = parsed;
    // Certificates out of their validity (checked against the clock: until when these diagnostics
    // hold is kept, so a build skipped as of the same inputs says them again: cli/uptodate.ts).
    const validity = certificateValidity(parsed, v.inventory.infra, Date.now());
    result.diagnosticsUntil = validity.until;
    for (const p of validity.problems) {
      result.diagnostics = [...result.diagnostics, (p.expired ? err : warn)('stale-secret', [], `${p.what} in ${secretsPath} ${p.message}`, { file: secretsPath, hint: `run \`pigen secrets rotate ${p.rotate}\`` })];
    }
    if (validity.problems.some((p) => p.expired)) delete result.inventory;
    applyPasswords(v.inventory, assets.schema, parsed);
    for (const ip of v.inventory.infra) {
      const tls = parsed.infra[ip];
      const want = infraSans(v.inventory, ip);
      if (!tls) {
        result.diagnostics = [...result.diagnostics, warn('stale-secret', [], `${secretsPath} has no certificate for infra node ${ip}; it will make a self-signed one at first boot`, { file: src.name, hint: `run \`pigen secrets rotate infra:${ip}\`` })];
      } else if (tls.webCert === undefined) {
        result.diagnostics = [...result.diagnostics, warn('stale-secret', [], `${secretsPath} holds one certificate of ${ip} for nginx and its services alike (made before pigen kept two): /etc/pki/infra.crt then lasts nginx_cert_validity, not cert_validity`, { file: src.name, hint: `run \`pigen secrets rotate infra:${ip}\`` })];
      } else if (want.join(',') !== [...tls.sans].join(',')) {
        result.diagnostics = [...result.diagnostics, warn('stale-secret', [], `the certificate of ${ip} in ${secretsPath} does not cover the current names (${want.filter((x) => !tls.sans.includes(x)).join(', ') || 'names removed'})`, { file: src.name, hint: `run \`pigen secrets rotate infra:${ip}\`` })];
      }
    }
    // (A file made before pigen kept an admin SSH key: the exchange has no key to place.)
    if (!parsed.adminSsh && v.inventory.nodes.some((n) => n.vars.node_admin_enabled !== false && n.vars.node_admin_ssh_exchange !== false)) {
      result.diagnostics = [...result.diagnostics, warn('stale-secret', [], `${secretsPath} has no admin SSH key: node_admin_ssh_exchange gives the admin users no key to reach each other`, { file: src.name, hint: 'run `pigen secrets rotate admin-ssh`' })];
    }
  }
  const defaults = defaultSecret(v.inventory, assets, src.name, text === undefined, strict);
  result.diagnostics = [...result.diagnostics, ...defaults];
  if (strict && defaults.length) delete result.inventory;
  return result;
}

/** The default-secret diagnostic of an inventory (its secrets file's passwords applied), if it has default passwords. */
function defaultSecret(inv: Inventory, assets: Assets, file: string, noSecretsFile: boolean, strict: boolean): Diagnostic[] {
  const defaults = defaultPasswords(inv, assets.schema);
  if (!defaults.length) return [];
  return [
    (strict ? err : warn)('default-secret', [], `well-known default passwords are in use: ${defaults.join(', ')}`, {
      file,
      hint: noSecretsFile ? 'run `pigen secrets init` to generate random ones (kept in pigsty.secrets.yml)' : 'run `pigen secrets rotate all` to generate the missing ones',
    }),
  ];
}

/**
 * The forms of every secret a build of `r` puts into its output (util/redact.ts): the inventory's
 * and --set's secret values, and the secrets file's passwords and node keys (not the CA key: it
 * stays in the secrets file).
 */
export function secretFormsOf(r: LoadResult): string[] {
  const values: { value: string; pem?: boolean }[] = (r.secretValues ?? []).map((value) => ({ value }));
  if (r.secrets) for (const s of secretValues(r.secrets)) if (s.kind !== 'ca-key') values.push(s.kind === 'password' ? { value: s.value } : { value: s.value, pem: true });
  return secretForms(values);
}

/** Prints diagnostics to stderr (text) — JSON output is the command's business. */
export function printDiagnostics(ctx: CliContext, r: LoadResult): void {
  ctx.stderr.write(diagnosticsText(r, useColor(ctx, ctx.stderr)));
}

/** What printDiagnostics prints (nothing without diagnostics), with colour or without; secret values in code frames masked. */
export function diagnosticsText(r: LoadResult, color: boolean): string {
  if (r.diagnostics.length === 0) return '';
  const sources = new Map<string, string>();
  if (r.source) sources.set(r.source.name, r.sourceText ?? new TextDecoder().decode(r.source.bytes));
  const e = r.diagnostics.filter((d) => d.severity === 'error').length;
  const w = r.diagnostics.length - e;
  return `${formatDiagnostics(r.diagnostics, { color, sources, ...(r.secretValues ? { secrets: r.secretValues } : {}) })}\n${e} error${e === 1 ? '' : 's'}, ${w} warning${w === 1 ? '' : 's'}\n`;
}

export { diagnosticsToJson, hasErrors };

/**
 * What `take` locks (an output directory, the secrets file: io.ts takeLock), once no other live
 * pigen holds it: the wait is said once on stderr, and tried again every 100 ms. undefined when
 * `stopped` says to give up meanwhile; any other error is thrown.
 */
export async function whenFree<T>(ctx: CliContext, what: string, take: () => T, stopped?: () => boolean): Promise<T | undefined> {
  for (let waiting = false; ; ) {
    try {
      return take();
    } catch (e) {
      const busy = e as OutputBusy;
      if (busy.code !== 'EPIGENBUSY') throw e;
      if (!waiting) ctx.stderr.write(`pigen: waiting for pid ${busy.pid}, another pigen writing ${what} (should no such process run, remove ${busy.lock})\n`);
      waiting = true;
      if (stopped?.()) return undefined;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** An error of a system call (ENOSPC, EIO, EDQUOT, EACCES...), not of pigen's own code. */
export function isSystemError(e: unknown): boolean {
  const x = e as { code?: unknown; syscall?: unknown; errno?: unknown };
  // (Node 20 has no name for some errnos, EDQUOT's: its code is then 'Unknown system error -122'.)
  return typeof x?.syscall === 'string' && ((typeof x.code === 'string' && /^E[A-Z]+$/.test(x.code)) || typeof x.errno === 'number');
}

/** A system error's message, an errno Node has no name for named (`Unknown system error -122` → EDQUOT, disk quota exceeded). */
export function systemErrorMessage(e: unknown): string {
  const x = e as { message?: unknown; errno?: unknown };
  const message = String(x?.message ?? e);
  if (typeof x?.errno !== 'number' || !message.includes(`Unknown system error ${x.errno}`)) return message;
  const name = Object.entries(osConstants.errno).find(([, n]) => n === -x.errno!)?.[0];
  if (name === undefined) return message;
  const said = ERRNO_TEXT[name] ? `${name} (${ERRNO_TEXT[name]})` : name;
  return message.replaceAll(`Unknown system error ${x.errno}`, said);
}
const ERRNO_TEXT: Record<string, string> = { EDQUOT: 'disk quota exceeded' };
