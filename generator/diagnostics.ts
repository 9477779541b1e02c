// Diagnostics: construction, lookup of source positions, and formatting.
//
// Text format (colour only when the caller asks for it):
//
//   error[port-clash]: all.children.infra.vars.vlogs_port: port 8428 is already used by vmetrics_port on 10.10.10.10
//     --> pigsty.yml:14:21
//      |
//   13 |       vmetrics_port: 8428
//   14 |       vlogs_port: 8428
//      |                   ^
//      = note: vmetrics_port is set at pigsty.yml:13:22
//      = hint: move one of the two services to another port, or disable one

import { hintFor, type Code } from './codes.js';
import type { Diagnostic, Loaded, Path, Pos, Severity } from './types.js';
import { escapeRegExp } from './util/text.js';

export function diag(
  code: Code,
  severity: Severity,
  path: Path,
  message: string,
  extra: Partial<Pick<Diagnostic, 'hint' | 'related' | 'pos' | 'file'>> = {},
): Diagnostic {
  return { code, severity, path, message, ...extra };
}

export const err = (code: Code, path: Path, message: string, extra?: Partial<Diagnostic>) =>
  diag(code, 'error', path, message, extra);
export const warn = (code: Code, path: Path, message: string, extra?: Partial<Diagnostic>) =>
  diag(code, 'warning', path, message, extra);

export const hasErrors = (ds: readonly Diagnostic[]) => ds.some((d) => d.severity === 'error');

// ── Secrets stay out of what is printed ─────────────────────────────────────
//
// No secret value is ever printed: a diagnostic about a password names the problem, not the value;
// a code frame shows `****` for the value of every key that names a secret (a line next to the
// one a diagnostic points at may hold one); and, as a net, any secret value the inventory holds is
// replaced wherever a message would still quote it (redactSecrets).

/** Keys whose values are secrets: passwords, secret keys, tokens (Pigsty's and other modules'). */
// (Loose on purpose: a misspelt `grafana_admin_pasword` or a Slack `api_url` hold secrets too; a
// value masked needlessly in a code frame costs nothing.)
// (nginx_users maps user names to passwords; a database URL or DSN carries its password.)
const SECRET_KEY = /pas+w|pass|pwd|pw$|(?:^|_)pw_|secret|token|api_?key|private_?key|access_?key|_key$|credential|api_url|webhook|^nginx_users$|pgurl|dsn|database_?url/i;
export const isSecretKey = (key: string | number) => typeof key === 'string' && SECRET_KEY.test(key);
export const namesSecret = (path: Path) => path.some(isSecretKey);

/** Shown instead of a secret. */
export const HIDDEN = '****';

// `key: value` in a YAML line: a block mapping entry (the value runs to the end of the line) or an
// entry of a flow mapping (to the next `,` `}` or `]`, or a quoted scalar).
const LINE_ENTRY = /^(\s*(?:-\s+)*)(["']?)([^\s"':{}[\],#]+)\2(\s*:[ \t]+)(.*)$/;
const FLOW_ENTRY = /([{,]\s*)(["']?)([^\s"':{}[\],#]+)\2(\s*:\s*)("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^,}\]]*)/g;

/** A source line with the value of every secret-named key replaced by HIDDEN. */
export function maskSecretsInLine(line: string): string {
  const block = LINE_ENTRY.exec(line);
  if (block && isSecretKey(block[3]!) && block[5]!.trim() !== '') return `${block[1]}${block[2]}${block[3]}${block[2]}${block[4]}${HIDDEN}`;
  return line.replace(FLOW_ENTRY, (m, lead: string, q: string, key: string, colon: string, value: string) => (isSecretKey(key) && value.trim() !== '' ? `${lead}${q}${key}${q}${colon}${HIDDEN}${/\s*$/.exec(value)![0]}` : m));
}

/**
 * The secret values of an inventory's data: every string or number (3 characters or more) under a
 * secret-named key, at any depth, and those given by --set for one; not the `published` defaults
 * (Pigsty's documented passwords are no secret, and `pigsty` is also a word of many messages).
 */
export function inventorySecretValues(data: unknown, sets: readonly { key: string; value: unknown }[] = [], published: ReadonlySet<string> = new Set()): string[] {
  const out = new Set<string>();
  // (Everything under a secret-named key counts; with `keys`, the keys of its mappings too.)
  const add = (v: unknown, keys: boolean): void => {
    if (Array.isArray(v)) v.forEach((x) => add(x, keys));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) keys || x === null ? (add(k, keys), add(x, keys)) : add(x, keys);
    else if ((typeof v === 'string' || typeof v === 'number') && String(v).length >= 3 && !published.has(String(v))) out.add(String(v));
  };
  // (A URL's credentials, anywhere: a proxy's, a repo's. Taken from the value itself, so quotes,
  // spaces or a second `@` in the password do not hide them from the masking.)
  // (And the password alone, as written and percent-decoded: apt's auth.conf holds it so.)
  const userinfo = (v: string) => {
    if (!v.includes('@')) return;
    const m = /^[a-z][a-z0-9+.-]*:\/\/([^/]*)@/i.exec(v.trim());
    if (!m) return;
    const info = m[1]!;
    const colon = info.indexOf(':');
    const pass = colon < 0 ? '' : info.slice(colon + 1);
    for (const x of [info, pass, decoded(pass)]) if (x.length >= 3) out.add(x);
  };
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) isSecretKey(k) ? add(x, false) : walk(x);
    else if (typeof v === 'string') userinfo(v);
  };
  walk(data);
  // (A mapping given by --set for a secret: its keys too, `--set pw={Secret: 1}`; not nginx_users',
  // which are user names.)
  for (const s of sets) {
    if (isSecretKey(s.key)) add(s.value, s.key !== 'nginx_users');
    else walk(s.value);
  }
  return [...out].sort((a, b) => b.length - a.length);
}

/** A URL component percent-decoded ('' when it does not decode). */
const decoded = (x: string) => {
  try {
    return decodeURIComponent(x);
  } catch {
    return '';
  }
};

/** `text` with the credentials of every URL in it (scheme://user:password@) replaced by HIDDEN: a proxy's, a repo's. */
export function hideUserinfo(text: string): string {
  // (To the last `@` before the first `/`: a password may hold one, or a `?`. A scheme starts where no scheme
  // character stands before it: \b there tried every letter of `a.a.a...` again, quadratic.)
  // (And `user:password@host` with no scheme, as a host:port list may be written: an endpoint's.)
  return text.includes('@') ? text.replace(/((?<![a-z0-9+.-])[a-z][a-z0-9+.-]*:\/\/)[^\s/"'`]+@/gi, `$1${HIDDEN}@`).replace(/(?<![^\s"'`[(,=])(?!mailto:)[A-Za-z0-9._~%+-]+:[^\s/@"'`]+@(?=[A-Za-z0-9[])/g, `${HIDDEN}@`) : text;
}

/**
 * `text` with each value (longest first, as given) replaced by HIDDEN, wherever it stands; with
 * `words`, a value shorter than ANYWHERE only where it stands as a word of its own (no letter,
 * digit, `_` or `-` beside it). Words are for pigen's own messages, which name clusters and nodes:
 * Pigsty's example user has the password `test`, and masked everywhere it made the cluster
 * `pg-test` `pg-****` in every message. Code frames and a validator's output show the inventory's
 * own text, where a password may stand inside a word (`mysqldump -pXk9mQ2`): hidden everywhere.
 */
function hideValues(text: string, values: readonly string[], words = false): string {
  return values.reduce((t, v) => {
    if (!t.includes(v)) return t;
    if (!words || v.length >= ANYWHERE) return t.split(v).join(HIDDEN);
    return t.replace(new RegExp(`(?<![A-Za-z0-9_-])${escapeRegExp(v)}(?![A-Za-z0-9_-])`, 'g'), HIDDEN);
  }, text);
}
/** The length from which a secret value is hidden inside longer words of a message too. */
const ANYWHERE = 12;

/** Each secret as it is and as a double-quoted YAML or JSON string writes it, longest first. */
const secretForms = (secrets: readonly string[]) => [...new Set(secrets.flatMap((v) => [v, JSON.stringify(v).slice(1, -1)]))].sort((a, b) => b.length - a.length);

/** `text` with every occurrence of a secret value (as is, or JSON-escaped) and every URL's credentials replaced by HIDDEN. */
export function redactText(text: string, secrets: readonly string[]): string {
  return hideUserinfo(hideValues(text, secretForms(secrets)));
}

/** The diagnostics with every occurrence of a secret value (as is, or JSON-escaped) in their texts replaced by HIDDEN. */
export function redactSecrets(ds: Diagnostic[], secrets: readonly string[]): Diagnostic[] {
  const forms = secretForms(secrets);
  const clean = (t: string) => hideUserinfo(hideValues(t, forms, true));
  return ds.map((d) => {
    const message = clean(d.message);
    const hint = d.hint === undefined ? undefined : clean(d.hint);
    const related = d.related ? { ...d.related, message: clean(d.related.message) } : undefined;
    if (message === d.message && hint === d.hint && related?.message === d.related?.message) return d;
    return { ...d, message, ...(hint !== undefined ? { hint } : {}), ...(related ? { related } : {}) };
  });
}

export const pathKey = (p: Path) => p.join('\u0000');

/** Renders a parameter path the way users write it: all.children.infra.hosts['10.10.10.10'].infra_seq */
export function formatPath(p: Path): string {
  let out = '';
  for (const seg of p) {
    if (seg === '--set' && out === '') out = '--set';
    else if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += (out ? '.' : '') + seg;
    else out += `[${JSON.stringify(seg).replace(/^"|"$/g, "'")}]`;
  }
  return out || '(top level)';
}

/**
 * The source position for a path: the value's position, or for a missing key the nearest
 * existing ancestor. `preferKey` points at the key instead of the value (e.g. unknown parameters).
 */
export function positionOf(loaded: Loaded, p: Path, preferKey = false): Pos | undefined {
  for (let n = p.length; n >= 0; n--) {
    const e = loaded.positions.get(pathKey(p.slice(0, n)));
    if (e) return (preferKey && n === p.length && e.key) || e.value;
  }
  return undefined;
}

/** Codes whose problem is the key itself (a name), not its value: they point at the key. */
const AT_KEY = new Set<string>(['unknown-param', 'duplicate-key', 'schema-unknown-field', 'bad-host-key', 'empty-group', 'portal-name', 'module-conflict']);

/** Fills in file and position for diagnostics that have a path but no position yet. */
export function locate(ds: Diagnostic[], loaded: Loaded | undefined, file: string): Diagnostic[] {
  // A --set value is not in the file: it gets no file position (the message names the --set).
  const inFile = (p: Path) => p[0] !== '--set';
  return ds.map((d) => {
    if (!inFile(d.path) && !d.pos) {
      const related = d.related && !d.related.pos && loaded && d.related.path.length && inFile(d.related.path) ? { ...d.related, pos: positionOf(loaded, d.related.path) } : d.related;
      return { ...d, ...(related ? { related } : {}) };
    }
    if (d.pos || !loaded) return { file: d.file ?? file, ...d };
    const pos = positionOf(loaded, d.path, d.atKey === true || AT_KEY.has(d.code));
    const related = d.related && !d.related.pos && d.related.path.length && inFile(d.related.path) ? { ...d.related, pos: positionOf(loaded, d.related.path) } : d.related;
    return { ...d, file: d.file ?? file, ...(pos ? { pos } : {}), ...(related ? { related } : {}) };
  });
}

/** Sorts by file position so output reads top to bottom; errors before warnings at the same spot. */
export function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return [...ds].sort(
    (a, b) =>
      (a.pos?.line ?? 0) - (b.pos?.line ?? 0) ||
      (a.pos?.col ?? 0) - (b.pos?.col ?? 0) ||
      (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1) ||
      a.code.localeCompare(b.code) ||
      a.message.localeCompare(b.message),
  );
}

export interface FormatOptions {
  color: boolean;
  /** Source text by file name, for code frames. */
  sources: Map<string, string>;
  /** Secret values (inventorySecretValues): shown as HIDDEN wherever a code frame would show them. */
  secrets?: readonly string[];
}

const paint = (on: boolean, code: string, s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);

/** Formats diagnostics as text with code frames; one blank line between entries. */
export function formatDiagnostics(ds: readonly Diagnostic[], opts: FormatOptions): string {
  // (A value written with escapes, "a\nb", shows in the source as its JSON form: both hidden.)
  const withForms = { ...opts, secrets: secretForms(opts.secrets ?? []) };
  return ds.map((d) => formatOne(d, withForms)).join('\n');
}

/**
 * Control characters (C0 but tab and newline, DEL, C1) and bidirectional overrides, which a terminal would
 * act on (a title set, lines hidden or reordered): what an inventory's key or value may carry into
 * a message.
 */
const UNSAFE_FOR_TERMINAL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/** `s` with what a terminal would act on written as an escape (`\u001b`). */
export const visible = (s: string) => s.replace(UNSAFE_FOR_TERMINAL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

function formatOne(d: Diagnostic, { color, sources, secrets }: FormatOptions): string {
  const sev = d.severity === 'error' ? paint(color, '1;31', 'error') : paint(color, '1;33', 'warning');
  const lines: string[] = [];
  const where = d.path.length ? `${formatPath(d.path)}: ` : '';
  lines.push(`${sev}${paint(color, '1', `[${d.code}]`)}: ${paint(color, '1', visible(where + d.message))}`);
  if (d.file) lines.push(`  ${paint(color, '34', '-->')} ${visible(d.file)}${d.pos ? `:${d.pos.line}:${d.pos.col}` : ''}`);
  const text = d.file ? sources.get(d.file) : undefined;
  if (text !== undefined && d.pos) lines.push(...codeFrame(text, d.pos, color, secrets ?? []));
  if (d.related) {
    const at = d.related.pos && d.file ? ` at ${visible(d.file)}:${d.related.pos.line}:${d.related.pos.col}` : '';
    lines.push(`   ${paint(color, '34', '=')} note: ${visible(d.related.message)}${at}`);
  }
  lines.push(`   ${paint(color, '34', '=')} hint: ${visible(d.hint ?? hintFor(d.code))}`);
  return lines.join('\n') + '\n';
}

function codeFrame(text: string, pos: Pos, color: boolean, secrets: readonly string[]): string[] {
  const all = splitLines(text, pos.line + 1);
  const first = Math.max(1, pos.line - 1);
  const last = Math.min(all.length, pos.line);
  const width = String(last).length;
  const gutter = (n: string) => paint(color, '34', `${n.padStart(width)} |`);
  const out = [gutter('')];
  // (By key on the line, and by value: a block scalar's value is on the lines after its key.)
  const mask = (line: string) => hideUserinfo(hideValues(maskSecretsInLine(line), secrets));
  // The caret's column in the line as shown: what masking took out before it (a masked value is
  // not its length) moves it. Masked alone, the text before the caret may mask less than the line
  // does; the caret then stays within the masked line.
  const line = all[pos.line - 1] ?? '';
  const masked = mask(line);
  const col = masked === line ? pos.col : Math.min(mask(line.slice(0, pos.col - 1)).length + 1, masked.length + 1);
  // Long lines are shown as a window around the column so the caret stays on screen.
  const WIDTH = 100;
  const start = col > WIDTH - 20 ? col - 40 : 0;
  for (let n = first; n <= last; n++) {
    const raw = n === pos.line ? masked : mask(all[n - 1] ?? '');
    let shown = raw.slice(start, start + WIDTH);
    if (start > 0) shown = '...' + shown;
    if (raw.length > start + WIDTH) shown += '...';
    out.push(`${gutter(String(n))} ${shown.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '?')}`);
  }
  const caretCol = col - start + (start > 0 ? 3 : 0);
  out.push(`${gutter('')} ${' '.repeat(Math.max(0, caretCol - 1))}${paint(color, '1;31', '^')}`);
  return out;
}

/** The first `max` lines of a text, without scanning the rest (inventories can be large). */
function splitLines(text: string, max: number): string[] {
  const out: string[] = [];
  let start = 0;
  while (out.length < max) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) {
      out.push(text.slice(start));
      break;
    }
    out.push(text.slice(start, nl).replace(/\r$/, ''));
    start = nl + 1;
  }
  return out;
}

/** JSON form for --json: stable field order, no colour, path both as list and as text. */
export function diagnosticsToJson(ds: readonly Diagnostic[]) {
  return ds.map((d) => ({
    code: d.code,
    severity: d.severity,
    message: d.message,
    path: formatPath(d.path),
    pathSegments: d.path,
    file: d.file ?? null,
    line: d.pos?.line ?? null,
    col: d.pos?.col ?? null,
    hint: d.hint ?? hintFor(d.code),
    related: d.related ? { message: d.related.message, path: formatPath(d.related.path), line: d.related.pos?.line ?? null, col: d.related.pos?.col ?? null } : null,
  }));
}

/** Thrown only for bugs; the CLI prints an 'internal error' banner and exits 1. */
export class InternalError extends Error {}
