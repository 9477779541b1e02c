// Hiding secret values in text pigen did not write itself: what a validator prints about a file of
// an output (pigen check). The build knows the secrets it put into the output; it leaves beside
// the output a redaction index, salted hashes of them (never the values: the index may be read by
// a later `pigen check` only), and a check hides every stretch of a validator's message whose hash
// is in it. Without an index (an output copied elsewhere, or made by an older pigen), the check
// still hides what names a secret: `key: value`/`key = value` under a secret-named key, a URL's
// credentials, and the base64 lines of a PEM body.

import { hash as cryptoHash } from 'node:crypto';
import { HIDDEN, hideUserinfo, isSecretKey, maskSecretsInLine } from '../diagnostics.js';

/** Salted hashes of secret values, grouped by length (in UTF-16 code units). */
export interface RedactionIndex {
  v: 1;
  /** Hex; chosen at random when the index is made (io.ts). */
  salt: string;
  /** Per length: the first 32 hex digits of sha256(salt ‖ form), sorted. */
  lengths: Record<string, string[]>;
}

/** Stretches shorter than this are not indexed: a hash of two letters says nothing and hides too much. */
const MIN_LENGTH = 3;

const digest = (salt: string, text: string) => cryptoHash('sha256', `${salt}\u0000${text}`, 'hex').slice(0, 32);

/**
 * A piece of a secret this long or longer is hidden wherever it stands: a validator may quote a
 * line cut short (cloud-init's YAML errors show ~37 characters around the error, a third of a PEM
 * line), so every stretch of this length of each form is indexed too.
 */
const PIECE = 10;

/** The body of Python's repr() of `s` (cloud-init quotes values so): its quote and escapes. */
function pythonRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\' || ch === quote) out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out;
}

/**
 * The forms a secret takes in a file: as is, as a JSON or double-quoted YAML string escapes it
 * (once, or twice: see below), as Python's repr() quotes it (cloud-init's messages), and, for a
 * PEM key's base64 body (`pem`), each 64-character line of it; and every piece of PIECE
 * characters of each of those (but of a URL's or DSN's).
 */
export function secretForms(values: readonly { value: string; pem?: boolean }[]): string[] {
  const out = new Set<string>();
  const pieced = new Set<string>();
  for (const { value, pem } of values) {
    if (pem) {
      for (let i = 0; i < value.length; i += 64) pieced.add(value.slice(i, i + 64));
      continue;
    }
    // (Escaped twice: a file's content held as a double-quoted string in the user-data, the
    // secret in it a double-quoted string of the file.)
    const once = JSON.stringify(value).slice(1, -1);
    // A URL or DSN (a pgurl, a webhook) is hidden whole, not by its pieces: they are its host,
    // its scheme, `sslmode=prefer`, words any message holds (its password is a value of its own).
    const into = /:\/\/|@/.test(value) ? out : pieced;
    for (const f of [value, once, JSON.stringify(once).slice(1, -1), pythonRepr(value)]) into.add(f);
  }
  for (const f of pieced) {
    out.add(f);
    if (f.length > PIECE) for (let i = 0; i + PIECE <= f.length; i++) out.add(f.slice(i, i + PIECE));
  }
  return [...out].filter((f) => f.length >= MIN_LENGTH).sort();
}

/** The index of `forms` (secretForms) under `salt`. */
export function redactionIndex(forms: readonly string[], salt: string): RedactionIndex {
  const lengths: Record<string, string[]> = {};
  for (const f of forms) (lengths[f.length] ??= []).push(digest(salt, f));
  for (const k of Object.keys(lengths)) lengths[k] = [...new Set(lengths[k])].sort();
  return { v: 1, salt, lengths };
}

/** One index holding what either holds (the same salt: `a`'s). */
export function unionIndex(a: RedactionIndex, b: RedactionIndex): RedactionIndex {
  if (a.salt !== b.salt) throw new Error('unionIndex: indexes of different salts');
  const lengths: Record<string, string[]> = {};
  for (const k of new Set([...Object.keys(a.lengths), ...Object.keys(b.lengths)])) lengths[k] = [...new Set([...(a.lengths[k] ?? []), ...(b.lengths[k] ?? [])])].sort();
  // (Integer keys enumerate in ascending order, as in redactionIndex's: equal indexes write alike.)
  return { v: 1, salt: a.salt, lengths };
}

/** Whether `x` is an index this pigen reads (one written by hand or by another version is not trusted). */
export function isRedactionIndex(x: unknown): x is RedactionIndex {
  if (!x || typeof x !== 'object') return false;
  const o = x as Record<string, unknown>;
  if (o.v !== 1 || typeof o.salt !== 'string' || !/^[0-9a-f]{16,128}$/.test(o.salt) || !o.lengths || typeof o.lengths !== 'object' || Array.isArray(o.lengths)) return false;
  return Object.entries(o.lengths as Record<string, unknown>).every(([k, v]) => /^[1-9][0-9]{0,5}$/.test(k) && Array.isArray(v) && v.every((h) => typeof h === 'string' && /^[0-9a-f]{32}$/.test(h)));
}

/** `text` with every stretch whose salted hash is in `index` replaced by HIDDEN (adjacent ones by one). */
export function redactIndexed(text: string, index: RedactionIndex): string {
  const hidden = new Uint8Array(text.length);
  let any = false;
  const lengths = Object.keys(index.lengths)
    .map(Number)
    .filter((l) => l <= text.length)
    .sort((a, b) => b - a);
  for (const l of lengths) {
    const set = new Set(index.lengths[l]);
    // (Overlapping matches too: pieces of a secret (secretForms) cover it only together.)
    for (let i = 0; i + l <= text.length; i++) {
      if (!set.has(digest(index.salt, text.slice(i, i + l)))) continue;
      hidden.fill(1, i, i + l);
      any = true;
    }
  }
  if (!any) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    if (!hidden[i]) out += text[i];
    else if (i === 0 || !hidden[i - 1]) out += HIDDEN;
  }
  return out;
}

// `key = value` (ini, conf) or `key: value` under a secret-named key, wherever it stands in the
// line (a validator quotes it after its own words): the value, to the next `, ` or the end of the
// line; and in an apt auth.conf line (`machine H login U password P`, or `password P` alone), the
// word after `password`.
const ANY_ENTRY = /(?<![A-Za-z0-9_.-])(["']?)([A-Za-z0-9_.-]+)\1(\s*[=:]\s*)(?=\S)/g;
const NETRC_LINE = /(?:^|\s)machine\s+\S|^\s*password\s+\S+\s*$/;
const NETRC_SECRET = /\b(password)(\s+)(\S+)/g;
// A line of a PEM body (or any long base64 run): a key's, possibly. (Mixed case and digits: not a
// path, nor a hex digest.)
const BASE64_RUN = /(?<![A-Za-z0-9+/])[A-Za-z0-9+][A-Za-z0-9+/]{39,}={0,2}/g;
const BASE64_LINE = /^(\s*)[A-Za-z0-9+/]{40,}={0,2}\s*$/;
// A shorter run beside `...`: a line a validator cut short (cloud-init's YAML errors), a PEM line's piece.
const BASE64_CUT = /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{16,}={0,2}(?=\s*\.\.\.)|(?<=\.\.\.\s*)[A-Za-z0-9+/]{16,}={0,2}/g;
const looksEncoded = (run: string) => (run.match(/[0-9]/g)?.length ?? 0) >= 3 && (run.match(/[A-Z]/g)?.length ?? 0) >= 3 && (run.match(/[a-z]/g)?.length ?? 0) >= 3;

/** `text` with what looks like a secret hidden, line by line (no index needed: see the top). */
export function redactHeuristic(text: string): string {
  return hideUserinfo(
    text
      .split('\n')
      .map((whole) => {
        // (A line of a double-quoted YAML scalar folded over lines starts with `\`.)
        const fold = /^\s*\\(?=\s)/.exec(whole)?.[0] ?? '';
        const line = whole.slice(fold.length);
        // (A flow mapping's entries as the code frames mask them; any other line by the rule below,
        // which stops at the next `, `.)
        let l = line.includes('{') ? maskSecretsInLine(line) : line;
        // (To the next `, ` when the line goes on: a validator lists several errors on one line.)
        const entry = new RegExp(ANY_ENTRY.source, 'g');
        for (let m = entry.exec(l); m; m = entry.exec(l)) {
          const from = m.index + m[0].length;
          if (!isSecretKey(m[2]!) || l.startsWith(HIDDEN, from)) continue;
          const next = l.indexOf(', ', from);
          l = `${l.slice(0, from)}${HIDDEN}${next < 0 ? '' : l.slice(next)}`;
          entry.lastIndex = from + HIDDEN.length;
        }
        if (NETRC_LINE.test(l)) l = l.replace(NETRC_SECRET, (_m, key: string, sp: string) => `${key}${sp}${HIDDEN}`);
        // (A PEM line alone may start with `/`, which a run within a line may not: a path's.)
        // (Mixed case is enough there: a random line of 40 and more lacks 3 digits one time in ~200.)
        const pem = BASE64_LINE.exec(l);
        if (pem && /[A-Z]/.test(l) && /[a-z]/.test(l)) return `${fold}${pem[1]}${HIDDEN}`;
        return fold + l.replace(BASE64_RUN, (run) => (looksEncoded(run) ? HIDDEN : run)).replace(BASE64_CUT, (run) => (/[A-Z]/.test(run) && /[a-z]/.test(run) && /[0-9+/]/.test(run) ? HIDDEN : run));
      })
      .join('\n'),
  );
}

/** `text` as a validator's output is kept (then read, trimmed, cut): the indexed secrets and URLs' credentials hidden. */
export function redactRaw(text: string, index: RedactionIndex | undefined): string {
  return hideUserinfo(index ? redactIndexed(text, index) : text);
}

/** `text` as a check prints it: the indexed secrets (when the build left an index) and what looks like one, hidden. */
export function redactValidatorText(text: string, index: RedactionIndex | undefined): string {
  return redactHeuristic(index ? redactIndexed(text, index) : text);
}
