// Small pure helpers shared by stages.

/** Edit distance (optimal string alignment: a swap of two neighbours is one edit), for did-you-mean suggestions. */
export function distance(a: string, b: string): number {
  if (a === b) return 0;
  // Rows i-2, i-1 and i of the table.
  let before = new Array<number>(b.length + 1).fill(0);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  let row = new Array<number>(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, before[j - 2]! + 1);
    }
    [before, prev, row] = [prev, row, before];
  }
  return prev[b.length]!;
}

/**
 * The closest candidate within a distance proportional to the word's length, if any. Not one
 * with a word of its name (between `_`) more than half rewritten, by three edits or more:
 * `repo_address` is no misspelt `vip_address`, nor `node_role` a misspelt `node_tune`; and then
 * none at all, rather than one farther still.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  const limit = Math.max(1, Math.min(3, Math.floor(w.length / 3)));
  let bestD = Infinity;
  let best: string[] = [];
  for (const c of candidates) {
    const d = distance(w, c.toLowerCase());
    if (d > limit || d > bestD) continue;
    if (d < bestD) (bestD = d), (best = []);
    best.push(c);
  }
  const parts = w.split('_');
  const rewritten = (c: string) => {
    const cParts = c.toLowerCase().split('_');
    // (Three edits or more: a short word cut short, `node_uv_e`, is still `node_uv_env`.)
    return parts.length === cParts.length && parts.length > 1 && parts.some((p, i) => ((d) => d >= 3 && d * 2 > Math.max(p.length, cParts[i]!.length))(distance(p, cParts[i]!)));
  };
  return best.sort().find((c) => !rewritten(c));
}

export const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const isIPv4 = (s: string) => IPV4.test(s);

/**
 * A URL's credentials (`scheme://userinfo@rest`): the scheme with its `://`, the userinfo, and
 * what follows the `@`; undefined when it carries none.
 */
export function urlUserinfo(url: string): { scheme: string; userinfo: string; rest: string } | undefined {
  // (To the last `@` before the first `/`, as apt reads it: a password may hold a raw `@`, `?` or `#`.)
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/\s]*)@(.*)$/is.exec(url);
  return m ? { scheme: m[1]!, userinfo: m[2]!, rest: m[3]! } : undefined;
}
/** A list parameter written as comma/space separated words, or as a list (node_repo_modules: 'node,infra,pgsql'). */
export function csvWords(x: unknown): string[] {
  const s = Array.isArray(x) ? x.join(',') : typeof x === 'string' ? x : '';
  return s.split(/[\s,]+/).filter(Boolean);
}
/** RFC 1123 hostname (labels of letters, digits and inner dashes), also accepting '*.' wildcards off. */
export const HOSTNAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
export const isHostname = (s: string) => HOSTNAME.test(s);

/** Numeric sort key for IPv4 addresses (falls back to string order for anything else). */
export function compareIp(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  if (pa.length === 4 && pb.length === 4 && [...pa, ...pb].every((n) => Number.isInteger(n))) {
    for (let i = 0; i < 4; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
    return 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Byte-wise (locale-independent) string comparison for deterministic sorting. */
export const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

// A string the YAML stringifier (core schema) writes plain, unquoted, at any position: only
// [A-Za-z0-9_./:-], not starting with an indicator, not ending with ':', and not a number, bool or
// null of the core schema (test/perf-equivalence.test.ts compares the writers that rely on it
// with the stringifier).
const PLAIN_SAFE = /^[A-Za-z0-9_][A-Za-z0-9_./:-]*$/;
const CORE_SCALAR = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[Tt]rue|TRUE|[Ff]alse|FALSE|[Nn]ull|NULL)$/;
export const isPlainYamlString = (x: unknown): x is string => typeof x === 'string' && PLAIN_SAFE.test(x) && !x.endsWith(':') && !CORE_SCALAR.test(x);
// The same for YAML 1.1, as cloud-init reads its user-data (the stringifier then runs with
// version 1.1): not a boolean, null, number or date of 1.1 either. Only a string starting with a
// letter that is no 1.1 boolean is taken; anything else goes to the stringifier.
const YAML11_WORD = /^(?:[yYnN]|[Yy]es|YES|[Nn]o|NO|[Oo]n|ON|[Oo]ff|OFF)$/;
export const isPlainYaml11String = (x: unknown): x is string => isPlainYamlString(x) && /^[A-Za-z]/.test(x) && !YAML11_WORD.test(x);

/** Prometheus' duration units, largest first, in milliseconds (model.ParseDuration). */
const PROM_UNITS: [string, number][] = [
  ['y', 365 * 24 * 3600e3],
  ['w', 7 * 24 * 3600e3],
  ['d', 24 * 3600e3],
  ['h', 3600e3],
  ['m', 60e3],
  ['s', 1e3],
  ['ms', 1],
];

/** A Prometheus duration (`10s`, `1h30m`, `1d`: units y w d h m s ms in that order, integers) in milliseconds; undefined when it is none. */
export function promDurationMs(s: string): number | undefined {
  if (s === '0') return 0;
  const m = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(s);
  if (!s || !m) return undefined;
  return PROM_UNITS.reduce((sum, [, ms], i) => sum + Number(m[i + 1] ?? 0) * ms, 0);
}

/** The same duration as Go's time.ParseDuration reads it (vmalert's flags: no d, w or y): `1d` → `24h`. */
export function goDuration(s: string): string {
  let ms = promDurationMs(s);
  if (ms === undefined) return s;
  if (ms === 0) return '0s';
  let out = '';
  for (const [u, size] of PROM_UNITS.slice(3)) {
    const k = Math.floor(ms / size);
    if (k) out += `${k}${u}`;
    ms -= k * size;
  }
  return out;
}

/** A UTF-16 surrogate not in a pair: no character (UTF-8 cannot hold it); only an escape makes one. */
export const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Whether `s` is Unicode text (no lone surrogate). (String.prototype.isWellFormed is ES2024.) */
export const isWellFormed = (s: string) => !LONE_SURROGATE.test(s);

/** A word as a POSIX shell reads it back: as it is when plain, else single-quoted. */
export const shellWord = (w: string) => (/^[A-Za-z0-9_./=:,@%+-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`);

/** `s` as a regular expression that matches it literally. */
export const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
