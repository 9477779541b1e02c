// `${admin_ip}` and the other placeholders (pigsty-infra.md §1.4). `${admin_ip}` is not Jinja: it is
// replaced only in the fields listed in ADMIN_IP_FIELDS. The repo placeholders are left for the
// plan stage, which knows the target OS. Any other `${name}` in these fields is an error.

import { err } from '../diagnostics.js';
import type { Diagnostic, Json, JsonObject, Path } from '../types.js';
import { didYouMean } from '../util/text.js';

/** Where `${admin_ip}` is replaced. '*' matches any key or index. */
export const ADMIN_IP_FIELDS: string[][] = [
  ['infra_portal', '*', 'endpoint'],
  ['dns_records', '*'],
  ['node_default_etc_hosts', '*'],
  ['node_etc_hosts', '*'],
  ['node_dns_servers', '*'],
  ['node_ntp_servers', '*'],
  ['repo_upstream', '*', 'baseurl', '*'],
  ['vector_log_endpoint', '*'],
  ['repo_endpoint'],
];

/** Fields with repo/package placeholders the plan stage fills in per OS. */
const REPO_FIELDS: string[][] = [
  ['repo_upstream', '*', 'baseurl', '*'],
  ['repo_url_packages', '*'],
  ['repo_url_packages', '*', 'url'],
  ['repo_packages', '*'],
  ['repo_extra_packages', '*'],
  ['node_packages', '*'],
  ['node_default_packages', '*'],
  ['infra_packages', '*'],
  ['cache_pkg_name'],
  ['cache_pkg_dir'],
];

/** Whether `${name}` placeholders are filled in at this path (a parameter, then keys or indexes). */
export function fillsPlaceholders(path: Path): boolean {
  return [...ADMIN_IP_FIELDS, ...REPO_FIELDS].some((pat) => pat.length === path.length && pat.every((seg, i) => seg === '*' || seg === String(path[i])));
}

export const KNOWN_PLACEHOLDERS = ['admin_ip', 'distro_codename', 'distro_name', 'releasever', 'arch', 'pg_version', 'version', 'os'];

/** The placeholders the plan stage fills in a repo_upstream baseurl (plan/repo.ts repoItems). */
export const BASEURL_PLACEHOLDERS = ['admin_ip', 'distro_codename', 'distro_name', 'releasever', 'arch'] as const;

const PLACEHOLDER = /\$\{([^}]*)\}/g;

/** Calls fn for every string at a path matching one of the patterns. */
function eachString(vars: JsonObject, patterns: string[][], fn: (s: string, path: Path) => string | void): void {
  for (const pat of patterns) {
    const walk = (v: Json, i: number, path: Path, set: (x: Json) => void) => {
      if (i === pat.length) {
        if (typeof v === 'string') {
          const r = fn(v, path);
          if (typeof r === 'string' && r !== v) set(r);
        }
        return;
      }
      const seg = pat[i]!;
      if (Array.isArray(v)) {
        if (seg !== '*') return;
        v.forEach((x, k) => walk(x, i + 1, [...path, k], (n) => (v[k] = n)));
      } else if (v && typeof v === 'object') {
        const keys = seg === '*' ? Object.keys(v) : Object.prototype.hasOwnProperty.call(v, seg) ? [seg] : [];
        for (const k of keys) walk(v[k]!, i + 1, [...path, k], (n) => (v[k] = n));
      }
    };
    walk(vars, 0, [], () => {});
  }
}

/** Reports unknown `${name}` placeholders in one vars block (located at `base`). */
export function checkPlaceholders(vars: JsonObject, base: Path): Diagnostic[] {
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  eachString(vars, [...ADMIN_IP_FIELDS, ...REPO_FIELDS], (s, path) => {
    for (const m of s.matchAll(PLACEHOLDER)) {
      const name = m[1]!;
      const key = path.join('\u0000') + '\u0001' + name;
      if (KNOWN_PLACEHOLDERS.includes(name) || seen.has(key)) continue;
      seen.add(key);
      const guess = didYouMean(name, KNOWN_PLACEHOLDERS);
      out.push(
        err('unknown-placeholder', [...base, ...path], `unknown placeholder \`\${${name}}\``, {
          hint: guess ? `did you mean \`\${${guess}}\`?` : `known placeholders: ${KNOWN_PLACEHOLDERS.map((k) => '${' + k + '}').join(', ')}`,
        }),
      );
    }
  });
  return out;
}

/**
 * Replaces `${admin_ip}` in the fields of ADMIN_IP_FIELDS, in place. On the admin node itself an
 * NTP line naming `${admin_ip}` is dropped, so the admin node never syncs time from itself.
 */
export function substituteAdminIp(vars: JsonObject, adminIp: string, isAdminNode: boolean): void {
  if (isAdminNode && Array.isArray(vars.node_ntp_servers)) {
    vars.node_ntp_servers = vars.node_ntp_servers.filter((l) => !(typeof l === 'string' && l.includes('${admin_ip}')));
  }
  eachString(vars, ADMIN_IP_FIELDS, (s) => s.split('${admin_ip}').join(adminIp));
}
