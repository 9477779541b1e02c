// Semantic rules over the resolved inventory. Each rule is a small named function with stable codes;
// all rules run, so the user sees every problem at once.

import { err, hideUserinfo, namesSecret, pathKey, positionOf, warn } from '../diagnostics.js';
import { crontabLineProblem, crontabUser, resolvLineProblem } from '../util/conf-lines.js';
import type { Diagnostic, Inventory, Json, JsonObject, Loaded, Path, Pos, ResolvedNode } from '../types.js';
import { csvWords, isHostname, isIPv4, LONE_SURROGATE, promDurationMs, urlUserinfo } from '../util/text.js';
import { isForeignParam, pgInstance } from './params.js';
import { balancedNginx } from '../util/nginx.js';
import { BASEURL_PLACEHOLDERS, fillsPlaceholders } from './placeholders.js';

/** `known`: the parameters pigen's schema describes (what is neither those nor another module's is written nowhere). */
export type Rule = (inv: Inventory, loaded: Loaded, known?: ReadonlySet<string>) => Diagnostic[];

/** Where a node's parameter was set (falls back to the host entry for defaults). */
const originOf = (n: ResolvedNode, k: string): Path => n.origins[k] ?? n.path;
const isObj = (v: Json | undefined): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Reports each problem once even when many nodes inherit the same bad value. */
function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    // A port clash inherited by many nodes is one problem at one place.
    const k = `${d.code}\u0001${d.path.join('\u0000')}\u0001${d.code === 'port-clash' ? '' : d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export const infraSeq: Rule = (inv) => {
  const out: Diagnostic[] = [];
  const bySeq = new Map<number, ResolvedNode>();
  for (const n of inv.nodes.filter((x) => x.modules.includes('infra'))) {
    const seq = n.vars.infra_seq;
    if (seq === undefined || seq === null) {
      out.push(err('infra-seq-missing', n.path, `infra host ${n.ip} has no \`infra_seq\``));
      continue;
    }
    if (typeof seq !== 'number' || !Number.isInteger(seq)) continue; // schema reports the type
    const first = bySeq.get(seq);
    if (first) {
      out.push(
        err('infra-seq-duplicate', originOf(n, 'infra_seq'), `infra_seq ${seq} is used by ${first.ip} and ${n.ip}`, {
          related: { path: originOf(first, 'infra_seq'), message: `${first.ip} already has infra_seq ${seq}` },
        }),
      );
    } else bySeq.set(seq, n);
  }
  return out;
};

/** Where the fleet's admin_ip is set: all.vars or --set (not a group or host, which set it in vain). */
const adminIpOrigin = (inv: Inventory): Path => inv.adminIpOrigin ?? ['all', 'vars'];

export const adminIpIsInfra: Rule = (inv) => {
  if (!isIPv4(inv.adminIp) || inv.infra.length === 0) return [];
  if (inv.infra.includes(inv.adminIp)) return [];
  const where = adminIpOrigin(inv);
  return [
    err('admin-ip-not-infra', where, `admin_ip ${inv.adminIp} is not one of the infra hosts (${inv.infra.join(', ')})`, {
      hint: `set admin_ip to the infra host that serves the repo, e.g. ${inv.infra[0]}`,
    }),
  ];
};

export const uniqueNodenames: Rule = (inv) => {
  const out: Diagnostic[] = [];
  const seen = new Map<string, ResolvedNode>();
  for (const n of inv.nodes) {
    const at = n.nodenameSource === 'pg' ? originOf(n, 'pg_seq') : n.nodenameSource === 'nodename' ? originOf(n, 'nodename') : n.path;
    if (!isHostname(n.nodename)) {
      out.push(err('nodename-invalid', at, `nodename \`${n.nodename}\` of ${n.ip} is not a valid hostname`));
      continue;
    }
    const first = seen.get(n.nodename);
    if (first) {
      out.push(
        err('nodename-duplicate', at, `nodename \`${n.nodename}\` is used by ${first.ip} and ${n.ip}`, {
          related: { path: first.path, message: `${first.ip} is also named ${n.nodename}` },
        }),
      );
    } else seen.set(n.nodename, n);
  }
  // A PostgreSQL instance, <pg_cluster>-<pg_seq>, is one node: its scrape target is named so. (A
  // node named from them is checked above, with its name.)
  const instances = new Map<string, ResolvedNode>();
  for (const n of inv.nodes) {
    const ins = n.modules.includes('pgsql') ? pgInstance(n.vars) : undefined;
    if (ins === undefined) continue;
    const first = instances.get(ins);
    if (!first) instances.set(ins, n);
    else if (first.nodenameSource !== 'pg' || n.nodenameSource !== 'pg') {
      out.push(err('pg-instance-duplicate', originOf(n, 'pg_seq'), `PostgreSQL instance \`${ins}\` (pg_cluster and pg_seq) is both ${first.ip} and ${n.ip}`, { related: { path: originOf(first, 'pg_seq'), message: `${first.ip} is also ${ins}` } }));
    }
  }
  // So is an etcd, MinIO or Redis member, <cluster>-<seq>: its scrape target file is named so, and
  // of two nodes of one name the infra nodes monitored one (found by a review: `redis_node: 2` on
  // three hosts of a real inventory).
  for (const m of MEMBER_NAMES) {
    const members = new Map<string, ResolvedNode>();
    for (const n of inv.nodes) {
      // (No sequence number is 0, as the target is named: plan/targets.ts.)
      const seq = n.vars[m.seq] ?? 0;
      if (!n.modules.includes(m.module) || typeof seq !== 'number') continue;
      const cls = typeof n.vars[m.cluster] === 'string' ? (n.vars[m.cluster] as string) : m.module;
      const ins = `${cls}-${seq}`;
      const first = members.get(ins);
      if (!first) members.set(ins, n);
      else out.push(err('member-duplicate', originOf(n, m.seq), `${m.what} \`${ins}\` (${m.cluster} and ${m.seq}) is both ${first.ip} and ${n.ip}: one of them would not be monitored`, { related: { path: originOf(first, m.seq), message: `${first.ip} is also ${ins}` } }));
    }
  }
  return out;
};

/** The modules whose members are named <cluster>-<seq> (plan/targets.ts), beside PostgreSQL's. */
const MEMBER_NAMES = [
  { module: 'etcd', cluster: 'etcd_cluster', seq: 'etcd_seq', what: 'etcd member' },
  { module: 'minio', cluster: 'minio_cluster', seq: 'minio_seq', what: 'MinIO node' },
  { module: 'redis', cluster: 'redis_cluster', seq: 'redis_node', what: 'Redis node' },
] as const;

export const oneGroupPerModule: Rule = (inv) => {
  const out: Diagnostic[] = [];
  // Module groups of each host, in group order (one pass over the memberships, not one per node).
  const groupsOf = new Map<string, Inventory['groups']>();
  for (const g of inv.groups) {
    if (g.module === 'node') continue;
    for (const h of new Set(g.hosts)) {
      const l = groupsOf.get(h);
      if (l) l.push(g);
      else groupsOf.set(h, [g]);
    }
  }
  for (const n of inv.nodes) {
    const by = new Map<string, string>();
    for (const g of groupsOf.get(n.ip) ?? []) {
      const first = by.get(g.module);
      if (first) {
        out.push(
          err('module-conflict', [...g.path, 'hosts', n.ip], `${n.ip} is in two ${g.module} groups: \`${first}\` and \`${g.name}\``, {
            related: { path: ['all', 'children', first, 'hosts', n.ip], message: `${n.ip} is first in \`${first}\`` },
          }),
        );
      } else by.set(g.module, g.name);
    }
  }
  return out;
};

/** The listening ports of every enabled service on a node: [param, port, enabled-by]. */
export function servicePorts(n: ResolvedNode): { param: string; port: Json | undefined; label: string }[] {
  const v = n.vars;
  const on = (k: string) => v[k] !== false;
  const ports: { param: string; port: Json | undefined; label: string }[] = [];
  const add = (param: string, label = param) => ports.push({ param, port: v[param], label });
  const m = new Set(n.modules);
  if (m.has('infra')) {
    if (on('nginx_enabled')) {
      add('nginx_port');
      if (v.nginx_sslmode !== 'disable') add('nginx_ssl_port');
      if (on('nginx_exporter_enabled')) add('nginx_exporter_port');
    }
    if (on('dns_enabled')) add('dns_port');
    if (on('vmetrics_enabled')) add('vmetrics_port');
    if (on('vlogs_enabled')) add('vlogs_port');
    if (on('vtraces_enabled')) add('vtraces_port');
    if (on('vmalert_enabled') && on('vmetrics_enabled')) add('vmalert_port');
    if (on('alertmanager_enabled')) add('alertmanager_port');
    if (on('blackbox_enabled')) add('blackbox_port');
    if (on('grafana_enabled')) add('grafana_port');
  }
  if (on('node_exporter_enabled')) add('node_exporter_port');
  if (on('haproxy_enabled')) add('haproxy_exporter_port');
  if (on('vector_enabled')) add('vector_port');
  if (v.vip_enabled === true) add('vip_exporter_port');
  if (m.has('pgsql')) for (const k of ['pg_port', 'pgbouncer_port', 'pg_exporter_port', 'pgbouncer_exporter_port', 'patroni_port', 'pgbackrest_exporter_port']) add(k);
  if (m.has('etcd')) for (const k of ['etcd_port', 'etcd_peer_port']) add(k);
  if (m.has('minio')) for (const k of ['minio_port', 'minio_admin_port']) add(k);
  if (m.has('redis')) {
    add('redis_exporter_port');
    if (isObj(v.redis_instances)) for (const p of Object.keys(v.redis_instances)) ports.push({ param: `redis_instances.${p}`, port: Number(p), label: `redis instance ${p}` });
  }
  return ports.filter((p) => p.port !== undefined && p.port !== null);
}

function originForPort(n: ResolvedNode, param: string): Path {
  if (param.startsWith('redis_instances.')) {
    const base = originOf(n, 'redis_instances');
    return [...base, param.slice('redis_instances.'.length)];
  }
  return originOf(n, param);
}

const isPortNumber = (p: Json | undefined): p is number => typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;

export const portsValid: Rule = (inv, loaded) => {
  const out: Diagnostic[] = [];
  for (const n of inv.nodes) {
    const ports = servicePorts(n);
    for (const p of ports) {
      // Schema-known ports are range-checked by the schema; this catches redis instance keys and --set.
      if (!isPortNumber(p.port) && (p.param.startsWith('redis_instances.') || originForPort(n, p.param)[0] === '--set')) {
        const path = originForPort(n, p.param);
        out.push(err('port-range', path, `${p.label} on ${n.ip}: ${JSON.stringify(p.port)} is not a port (1..65535)`, portAt(loaded, p.param, path)));
      }
    }
    // No two services on one port (the common case): nothing to locate.
    const valid = ports.filter((p) => isPortNumber(p.port));
    if (new Set(valid.map((p) => p.port)).size === valid.length) continue;
    const seen = new Map<number, { param: string; label: string; path: Path; isDefault: boolean }>();
    // Visit in source order so the later setting is the one reported.
    const located = valid
      .map((p) => ({ ...p, path: originForPort(n, p.param) }))
      .map((p) => ({ ...p, pos: posKey(positionOf(loaded, p.path)), isDefault: !n.origins[p.param.split('.')[0]!] }))
      .sort((a, b) => Number(!a.isDefault) - Number(!b.isDefault) || a.pos - b.pos);
    for (const p of located) {
      const port = p.port as number;
      const first = seen.get(port);
      if (first) {
        out.push(
          err('port-clash', p.path, `port ${port} of ${p.label} clashes with ${first.label} on ${n.ip} (${n.nodename})`, {
            ...portAt(loaded, p.param, p.path),
            related: first.isDefault
              ? { path: [], pos: undefined, message: `${first.label} uses port ${port} by default` }
              : { path: first.path, message: `${first.label} uses port ${port}` },
          }),
        );
      } else seen.set(port, { param: p.param, label: p.label, path: p.path, isDefault: p.isDefault });
    }
  }
  return dedupe(out);
};

/** A redis instance's port is its key: point there, not at the instance's options. */
function portAt(loaded: Loaded, param: string, path: Path): { pos?: Pos } {
  const pos = param.startsWith('redis_instances.') && path[0] !== '--set' ? positionOf(loaded, path, true) : undefined;
  return pos ? { pos } : {};
}

const posKey = (p: Pos | undefined) => (p ? p.line * 100000 + p.col : 0);

/** Characters that would break or extend a generated file, by field kind. */
// (U+0085, U+2028 and U+2029 are line breaks to YAML 1.1 readers and some config parsers. A lone
// UTF-16 surrogate, which only a `\ud800` escape can make, is no character: UTF-8 cannot hold it,
// so a file would get U+FFFD where the YAML of user-data keeps the escape, and cloud-init's
// write_files stops at it.)
const CONTROL = new RegExp(`[\\u0000-\\u001f\\u007f\\u0085\\u2028\\u2029]|${LONE_SURROGATE.source}`);
const NUL_OR_LONE = new RegExp(`\\u0000|${LONE_SURROGATE.source}`);
/** What no string pigen may write holds: line breaks and control characters (a tab is fine). */
const LINE_BREAK = new RegExp(`[\\u0000-\\u0008\\u000a-\\u001f\\u007f\\u0085\\u2028\\u2029]|${LONE_SURROGATE.source}`);
/** Characters of a path a shell command or a config file gets unquoted: none but these. */
const PATH_OK = /^\/(?:[A-Za-z0-9._@+=:,~-]+\/?)*$/;
/** Names that become file names, directory names and labels. */
const NAME_OK = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const STRICT_BAD = /[;{}"'`#\\$<>|&]/;
/** Package lists (words split at commas and spaces): also no word starting with `-`, an option to apt-get and dnf. */
const PACKAGE_BAD = /[;{}"'`#\\$<>|&]|(?:^|[\s,])-/;
const OPTIONS_BAD = /[;{}"'`#\\$<>|&]/;
/** The same, for paths and locations (also no whitespace or glob characters: unquoted in commands). */
const PATHISH_BAD = /[;{}"'`#\\$<>|&\s*?[\]]/;

/** Placeholders are filled in by pigen itself (unknown ones are reported on their own). */
const KNOWN_PLACEHOLDER = /\$\{[A-Za-z0-9_]*\}/g;

function describeBad(s0: string, re: RegExp, opts: { control?: RegExp; placeholders?: boolean } = {}): string | undefined {
  // (`${name}` is filled in by pigen, except where nothing fills it in: passwords.)
  const s = opts.placeholders === false ? s0 : s0.replace(KNOWN_PLACEHOLDER, 'x');
  const m = s.match(opts.control ?? CONTROL) ?? s.match(re);
  if (!m) return undefined;
  const c = m[0];
  const names: Record<string, string> = { '\n': 'a newline', '\r': 'a carriage return', '\u0000': 'a NUL byte', '\t': 'a tab', '\u0085': 'a line break (U+0085)', '\u2028': 'a line separator (U+2028)', '\u2029': 'a paragraph separator (U+2029)' };
  if (/^[\s,]?-$/.test(c)) return 'a word starting with `-` (apt-get and dnf would read it as an option)';
  if (LONE_SURROGATE.test(c)) return `a lone UTF-16 surrogate, U+${c.charCodeAt(0).toString(16).toUpperCase()} (no character: UTF-8 cannot hold it)`;
  return names[c] ?? (CONTROL.test(c) ? `control character U+${c.charCodeAt(0).toString(16).padStart(4, '0')}` : `\`${c}\``);
}

interface FieldCheck {
  /** Parameter, then a path pattern inside it ('*' = any key/index). */
  pattern: string[];
  what: string;
  bad: RegExp;
}

const FIELD_CHECKS: FieldCheck[] = [
  { pattern: ['infra_portal', '*', 'domain'], what: 'portal domain', bad: STRICT_BAD },
  { pattern: ['infra_portal', '*', 'domains', '*'], what: 'portal domain', bad: STRICT_BAD },
  { pattern: ['infra_portal', '*', 'endpoint'], what: 'portal endpoint', bad: STRICT_BAD },
  { pattern: ['infra_portal', '*', 'path'], what: 'portal path', bad: PATHISH_BAD },
  { pattern: ['infra_portal', '*', 'cert'], what: 'portal cert path', bad: PATHISH_BAD },
  { pattern: ['infra_portal', '*', 'key'], what: 'portal key path', bad: PATHISH_BAD },
  { pattern: ['infra_portal', '*', 'log'], what: 'portal log name', bad: STRICT_BAD },
  { pattern: ['infra_portal', '*', 'realm'], what: 'portal realm', bad: STRICT_BAD },
  { pattern: ['infra_portal', '*', 'certbot'], what: 'portal certbot name', bad: STRICT_BAD },
  { pattern: ['dns_records', '*'], what: 'DNS record', bad: STRICT_BAD },
  { pattern: ['node_etc_hosts', '*'], what: 'hosts entry', bad: STRICT_BAD },
  { pattern: ['node_default_etc_hosts', '*'], what: 'hosts entry', bad: STRICT_BAD },
  { pattern: ['node_dns_servers', '*'], what: 'DNS server', bad: STRICT_BAD },
  { pattern: ['node_dns_options', '*'], what: 'DNS option', bad: STRICT_BAD },
  { pattern: ['node_ntp_servers', '*'], what: 'NTP server', bad: STRICT_BAD },
  { pattern: ['node_packages', '*'], what: 'package name', bad: PACKAGE_BAD },
  { pattern: ['node_default_packages', '*'], what: 'package name', bad: PACKAGE_BAD },
  { pattern: ['infra_packages', '*'], what: 'package name', bad: PACKAGE_BAD },
  { pattern: ['repo_packages', '*'], what: 'package name', bad: PACKAGE_BAD },
  { pattern: ['repo_extra_packages', '*'], what: 'package name', bad: PACKAGE_BAD },
  // (Spaces are Pigsty's: an apt baseurl is `URI suite components`; ${...} is filled in here.)
  { pattern: ['repo_upstream', '*', 'baseurl', '*'], what: 'repo URL', bad: /[;{}"'`#\\<>|&]/ },
  { pattern: ['repo_upstream', '*', 'name'], what: 'repo name', bad: STRICT_BAD },
  { pattern: ['vector_log_endpoint', '*'], what: 'log endpoint', bad: /[;{}"'`#\\$<>|&\s]/ },
  { pattern: ['nodename'], what: 'nodename', bad: STRICT_BAD },
  { pattern: ['node_cluster'], what: 'node cluster name', bad: STRICT_BAD },
  { pattern: ['nginx_home'], what: 'path', bad: STRICT_BAD },
  { pattern: ['nginx_data'], what: 'path', bad: STRICT_BAD },
  { pattern: ['infra_data'], what: 'path', bad: STRICT_BAD },
  { pattern: ['vector_data'], what: 'path', bad: STRICT_BAD },
  { pattern: ['node_data'], what: 'path', bad: STRICT_BAD },
  { pattern: ['repo_bundle'], what: 'bundle location', bad: PATHISH_BAD },
  // (Written as a JSON string; `|` is a regexp's alternation (category=~"node|infra"), `\` escapes a quote.)
  { pattern: ['alertmanager_receivers', '*', 'matchers', '*'], what: 'alert matcher', bad: /[;{}`#$<>&]/ },
  // Written as JSON strings, but Alertmanager expands Go templates ({{ }}) in these fields.
  ...['to', 'from', 'auth_username'].map((f) => ({ pattern: ['alertmanager_receivers', '*', 'email', f], what: `alert e-mail ${f.replace('_', ' ')}`, bad: /[{}]/ })),
  { pattern: ['alertmanager_receivers', '*', 'slack', 'channel'], what: 'Slack channel', bad: /[{}]/ },
  // (Written as `alias NAME='COMMAND'` in /etc/profile.d: a quote would end the command.)
  { pattern: ['node_aliases', '*'], what: 'alias command', bad: /'/ },
  { pattern: ['node_timezone'], what: 'timezone', bad: /[;{}"'`#\\$<>|&\s]/ },
  // grafana.ini values (unquoted there: go-ini would end the value at a comment or quote); the
  // URL keeps & % ? = for its query and escapes.
  { pattern: ['grafana_admin_username'], what: 'Grafana user name', bad: /[;{}"'`#\\$<>|&\s]/ },
  { pattern: ['grafana_pgurl'], what: 'Grafana database URL', bad: /[;{}"'`#\\$<>|\s]/ },
];

function walkPattern(v: Json | undefined, pat: string[], path: Path, fn: (s: string, p: Path) => void) {
  if (v === undefined) return;
  if (pat.length === 0) {
    if (typeof v === 'string') fn(v, path);
    return;
  }
  const [seg, ...rest] = pat as [string, ...string[]];
  if (Array.isArray(v)) {
    if (seg === '*') v.forEach((x, i) => walkPattern(x, rest, [...path, i], fn));
  } else if (isObj(v)) {
    const keys = seg === '*' ? Object.keys(v) : Object.prototype.hasOwnProperty.call(v, seg) ? [seg] : [];
    for (const k of keys) walkPattern(v[k], rest, [...path, k], fn);
  }
}

/** Values that would break or extend a generated file are rejected, never escaped. */
export const noInjection: Rule = (inv, _loaded, known) => {
  const out: Diagnostic[] = [];
  for (const n of inv.nodes) {
    const v = n.vars;
    // (The parameters set in the inventory, asked of a Set: looked up on each node's origins, of
    // a shape of its own, the ~100 lookups below cost more than the whole check.)
    const set = new Set(Object.keys(n.origins));
    // (Paths reported by a field's own check are not reported again by the generic one.)
    const reported = new Set<string>();
    const check = (s: string, path: Path, what: string, re: RegExp, opts?: { control?: RegExp; placeholders?: boolean }) => {
      // (`${...}` is pigen's to fill only in the fields it fills it in: elsewhere it stays as
      // written, and grafana, systemd or a shell would expand it.)
      const bad = describeBad(s, re, { ...opts, placeholders: opts?.placeholders ?? fillsPlaceholders(path) });
      if (!bad) return;
      reported.add(pathKey(path));
      const [param, ...rest] = path as [string, ...Path];
      // pigen's defaults are clean; one can only turn bad through admin_ip, which is reported itself.
      if (!n.origins[param]) return;
      const base = originOf(n, param);
      out.push(
        // (A secret's value is not shown: only what is wrong with it.)
        // (A URL's credentials hidden before the cut: one cut before its `@` is no URL's to hide.)
        err('injection', [...base, ...rest], `${what} ${namesSecret(path) ? '' : JSON.stringify(((h) => (h.length > 60 ? h.slice(0, 57) + '...' : h))(hideUserinfo(s))) + ' '}contains ${bad}`, {
          hint: `remove ${bad} from the ${what}; pigen rejects such values instead of escaping them`,
        }),
      );
    };
    // (Parameters left at their defaults are skipped up front: the check above would drop them.)
    for (const fc of FIELD_CHECKS) if (set.has(fc.pattern[0]!)) walkPattern(v[fc.pattern[0]!], fc.pattern.slice(1), [fc.pattern[0]!], (s, p) => check(s, p, fc.what, fc.bad));
    // (The parameters set in the inventory: those with an origin; far fewer than the node's vars.)
    for (const k of set) {
      const val = v[k];
      // Any string pigen may write somewhere (its own parameters, at any depth, keys included):
      // no line break or control character, whatever the field. (Raw nginx `config` blocks are
      // checked for their braces instead; other modules' parameters are carried, not written.)
      if (typeof val === 'string' && k.endsWith('_options')) check(val, [k], 'option string', OPTIONS_BAD);
      if (typeof val === 'string' && /_password$|_secret_key$|^vip_auth_pass$/.test(k)) check(val, [k], 'password', /["'`\\$]/, { placeholders: false });
      // grafana.ini's reader (go-ini) replaces `%(name)s` in any value with that key's value (an
      // empty string when there is none): a password holding it would not be the one written.
      if (typeof val === 'string' && /^grafana_(admin_username|admin_password|view_password|pgurl)$/.test(k) && !reported.has(pathKey([k])) && val.includes('%(')) {
        out.push(err('injection', originOf(n, k), `${k} holds \`%(\`, which grafana.ini's reader expands (\`%(name)s\` becomes another key's value)`, { hint: 'use a value without `%(`' }));
        reported.add(pathKey([k]));
      }
      if (!isForeignParam(k) && (known === undefined || known.has(k))) {
        walkStrings(val, [k], (s, p) => {
          if ((k === 'infra_portal' && p[2] === 'config' && p.length === 3) || reported.has(pathKey(p))) return;
          check(s, p, 'value', /(?!)/, { control: LINE_BREAK });
          // (YAML 1.1, as cloud-init reads its user-data, takes a lone `=` or `<<` for a value or
          // merge key, whatever the quoting pigen's writer chose: never a string there.)
          if ((s === '=' || s === '<<') && n.origins[k]) out.push(err('bad-value', [...originOf(n, k), ...p.slice(1)], `\`${s}\` alone cannot be a value pigen writes (YAML 1.1, cloud-init's reader, takes it for a ${s === '=' ? 'value' : 'merge'} key)`, { hint: 'remove it, or write what it stands for' }));
        });
      }
    }
    const caCn = v.ca_cn;
    // (No check above looks at it: any character outside these is said here, `;` and `/` too.)
    if (set.has('ca_cn') && typeof caCn === 'string' && !reported.has(pathKey(['ca_cn'])) && !/^[A-Za-z0-9][A-Za-z0-9 .,_()-]*$/.test(caCn)) {
      out.push(err('bad-value', originOf(n, 'ca_cn'), `\`${caCn}\` cannot be the CA's common name (it would add fields to the certificate's subject)`, { hint: 'use letters, digits, spaces and . , _ ( ) -' }));
    }
    // Paths go unquoted into shell commands and configs; names become file and directory names.
    for (const k of PATH_PARAMS) {
      const val = v[k];
      // (Skipped only where a check above reported the value already: not every path has one.)
      if (!set.has(k) || typeof val !== 'string' || reported.has(pathKey([k]))) continue;
      if (!PATH_OK.test(val) || val.split('/').some((seg) => seg === '..' || seg === '.')) {
        out.push(err('bad-value', originOf(n, k), `path \`${val}\` is not a plain absolute path`, { hint: 'use an absolute path of letters, digits and . _ - @ + = : , ~ (no spaces, globs, quotes or .. segments)' }));
      } else if (k !== 'exporter_metrics_path' && k !== 'node_data') {
        // (node_data is not applied: said by notApplied, not judged here.)
        // A directory pigen makes, links or chowns: named one way (no trailing /, which made an
        // output path `rootfs/www/` and a link `ln -s … /www/`), and none of the system's own.
        const why =
          val !== '/' && val.endsWith('/')
            ? 'ends with /'
            : SYSTEM_DIRS.has(val)
              ? "is a directory of the system's own (pigen would link, chown or chmod it)"
              : val === '/infra' || (val === '/data' && k !== 'node_data')
                ? `is ${val === '/infra' ? 'the link pigen makes to /data/infra' : 'the main data directory (node_data)'}`
                : undefined;
        if (why) out.push(err('bad-value', originOf(n, k), `path \`${val}\` ${why}`, { hint: val.endsWith('/') && val !== '/' ? `write it \`${val.replace(/\/+$/, '')}\`` : 'use a directory of its own, such as /data/<name> (Pigsty: /www, /data/nginx, /data/vector)' }));
      }
    }
    for (const [k, inner] of NAME_PARAMS) {
      if (!set.has(k)) continue;
      walkPattern(v[k], inner, [k], (s, p) => {
        const items = k.endsWith('_modules') ? s.split(',').map((x) => x.trim()) : [s];
        const bad = items.find((x) => !NAME_OK.test(x));
        if (bad === undefined || reported.has(pathKey(p))) return;
        const [param, ...rest] = p as [string, ...Path];
        out.push(err('bad-value', [...originOf(n, param), ...rest], `\`${bad}\` cannot be used as a name (it names files and directories)`, { hint: 'use letters, digits, . _ and -, starting with a letter or digit' }));
      });
    }
    // Keys that become words of a file: an alias name, a sysctl key.
    for (const [k, ok, what] of [['node_aliases', /^[A-Za-z0-9_.+-]+$/, 'an alias name'], ['node_sysctl_params', /^[A-Za-z0-9_.\/*-]+$/, 'a sysctl key']] as const) {
      const obj = v[k];
      if (!set.has(k) || !isObj(obj)) continue;
      for (const key of Object.keys(obj)) {
        if (ok.test(key) || reported.has(pathKey([k, key]))) continue;
        out.push(err('bad-value', [...originOf(n, k), key], `\`${key}\` cannot be ${what}`, { hint: 'use letters, digits and . _ - (no spaces, = or quotes)' }));
      }
    }
  }
  return dedupe(out);
};

/** The system's own directories: never a directory pigen makes, links to or chowns. */
const SYSTEM_DIRS = new Set(['/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/media', '/mnt', '/opt', '/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr', '/usr/bin', '/usr/lib', '/usr/local', '/usr/sbin', '/usr/share', '/var', '/var/lib', '/var/log', '/var/tmp']);

/** Parameters holding a path on the node (written into shell commands and configs unquoted). */
const PATH_PARAMS = ['infra_data', 'nginx_home', 'nginx_data', 'repo_home', 'node_data', 'vector_data', 'exporter_metrics_path'];
/** Parameters (and the path inside them) whose strings name files, directories or sections. */
const NAME_PARAMS: [string, string[]][] = [
  ['node_cluster', []],
  ['etcd_cluster', []],
  ['minio_cluster', []],
  ['redis_cluster', []],
  ['repo_name', []],
  ['repo_modules', []],
  ['node_repo_modules', []],
  ['repo_upstream', ['*', 'name']],
  ['repo_upstream', ['*', 'module']],
  ['node_kernel_modules', ['*']],
];

/** Every string in a value, object keys included (a key's path ends with the key itself). */
function walkStrings(v: Json | undefined, path: Path, fn: (s: string, p: Path) => void): void {
  if (typeof v === 'string') fn(v, path);
  else if (Array.isArray(v)) v.forEach((x, i) => walkStrings(x, [...path, i], fn));
  else if (isObj(v)) {
    for (const [k, x] of Object.entries(v)) {
      fn(k, [...path, k]);
      walkStrings(x, [...path, k], fn);
    }
  }
}

/**
 * Ports that Pigsty v3's default portal entries proxied to (pigsty-infra.md §2.2), for services v4
 * no longer runs there: what listened, and where v4 serves it instead.
 */
const PROMETHEUS = { what: 'Prometheus', hint: 'Pigsty v4 (and pigen) serve metrics with VictoriaMetrics, at /vmetrics/ on the home server: remove the entry, or point it at vmetrics_port (8428)' };
const LEGACY_PORTAL_PORTS: Record<number, { what: string; hint: string }> = {
  9090: PROMETHEUS,
  9058: PROMETHEUS,
  9093: { what: 'Alertmanager', hint: 'Pigsty v4 (and pigen) serve Alertmanager at /alertmgr/ on the home server, on alertmanager_port (9059): remove the entry, or point it there' },
  3100: { what: 'Loki', hint: 'Pigsty v4 (and pigen) keep logs in VictoriaLogs, at /vlogs/ on the home server: remove the entry, or point it at vlogs_port (9428)' },
};

export const portalEntries: Rule = (inv) => {
  const out: Diagnostic[] = [];
  const byIp = new Map(inv.nodes.map((n) => [n.ip, n]));
  for (const n of inv.nodes.filter((x) => x.modules.includes('infra'))) {
    const portal = n.vars.infra_portal;
    if (!isObj(portal)) continue;
    const base = originOf(n, 'infra_portal');
    const domains = new Map<string, Path>();
    for (const [key, e] of Object.entries(portal)) {
      if (!isObj(e)) continue;
      const p = [...base, key];
      if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(key)) out.push(err('portal-name', p, `portal key \`${key}\` cannot be used as a file and upstream name`));
      const names = [e.domain, ...(Array.isArray(e.domains) ? e.domains : [])];
      names.forEach((d, i) => {
        if (typeof d !== 'string' || describeBad(d, STRICT_BAD)) return;
        const dp = i === 0 ? [...p, 'domain'] : [...p, 'domains', i - 1];
        if (!isHostname(d) || isIPv4(d)) {
          out.push(err('portal-domain', dp, `\`${d}\` is not a valid domain name`));
          return;
        }
        const first = domains.get(d.toLowerCase());
        if (first) out.push(err('portal-duplicate-domain', dp, `domain \`${d}\` is served by two portal entries`, { related: { path: first, message: `\`${d}\` is first used here` } }));
        else domains.set(d.toLowerCase(), dp);
      });
      if (typeof e.endpoint === 'string' && !e.endpoint.includes('${') && !describeBad(e.endpoint, STRICT_BAD)) {
        const m = e.endpoint.match(/^([^:]+):(\d+)$/);
        const host = m?.[1] ?? '';
        const port = Number(m?.[2]);
        if (!m || !(isIPv4(host) || isHostname(host)) || !(port >= 1 && port <= 65535)) {
          out.push(err('portal-endpoint', [...p, 'endpoint'], `endpoint \`${e.endpoint}\` is not host:port with a port in 1..65535`));
        } else {
          // A Pigsty v3 entry, carried into a v4 inventory, proxies to a service nothing runs now
          // (a review found 12 of 30 real inventories with one, built without a word).
          const target = byIp.get(host);
          const legacy = LEGACY_PORTAL_PORTS[port];
          // (An entry without a domain has no server: nothing answers for it.)
          if (target?.modules.includes('infra') && legacy && names.some((d) => typeof d === 'string') && !servicePorts(target).some((sp) => sp.port === port)) {
            out.push(warn('legacy-portal', [...p, 'endpoint'], `portal entry \`${key}\` proxies to ${host}:${port}, where Pigsty v3 ran ${legacy.what}; nothing pigen deploys listens there (the entry's server would answer 502)`, { hint: legacy.hint }));
          }
        }
      }
      if (typeof e.path === 'string' && !describeBad(e.path, STRICT_BAD) && (!e.path.startsWith('/') || e.path.includes('..'))) {
        out.push(err('portal-path', [...p, 'path'], `path \`${e.path}\` is not an absolute directory`));
      }
      // (A space would give access_log a second argument: its format.)
      if (typeof e.log === 'string' && !describeBad(e.log, STRICT_BAD) && !NAME_OK.test(e.log)) {
        out.push(err('bad-value', [...p, 'log'], `log \`${e.log}\` must be a file name under /var/log/nginx`, { hint: "use letters, digits, . _ and -, without '/' or spaces" }));
      }
      for (const f of ['cert', 'key'] as const) {
        const val = e[f];
        if (typeof val === 'string' && !describeBad(val, PATHISH_BAD) && (!val.startsWith('/') || val.split('/').some((seg) => seg === '..' || seg === '.'))) {
          out.push(err('portal-path', [...p, f], `${f} \`${val}\` must be an absolute path without . or .. segments`));
        }
      }
      if (typeof e.config === 'string') {
        const bad = e.config.includes('\u0000') || LONE_SURROGATE.test(e.config) ? describeBad(e.config, /(?!)/, { control: NUL_OR_LONE }) : undefined;
        if (bad) out.push(err('injection', [...p, 'config'], `raw nginx \`config\` contains ${bad}`, { hint: `remove ${bad} from it` }));
        else if (!balancedNginx(e.config)) out.push(err('injection', [...p, 'config'], 'raw nginx `config` has unbalanced braces; it would break out of its server block'));
      }
      // (Pigsty renders a template file of its own by that name; pigen has none to render.)
      if (typeof e.conf === 'string') {
        out.push(warn('not-applied', [...p, 'conf'], `portal entry \`${key}\` names a custom template (\`conf: ${e.conf}\`), which pigen cannot render: it writes the entry from domain/path/endpoint, or none when it has neither`, { hint: 'give the entry a path or an endpoint, and its extra directives as `config`' }));
      }
    }
  }
  return dedupe(out);
};

/** IPs in DNS/hosts/NTP/vector fields must be well-formed where the field starts with an IP. */
export const addressFields: Rule = (inv) => {
  const out: Diagnostic[] = [];
  const badAdminIp = isIPv4(inv.adminIp) ? undefined : inv.adminIp;
  for (const n of inv.nodes) {
    const v = n.vars;
    for (const k of ['dns_records', 'node_etc_hosts', 'node_default_etc_hosts'] as const) {
      const list = v[k];
      // Defaults are only wrong through a bad admin_ip (reported itself); `${...}` left after
      // substitution is an unknown placeholder (reported itself).
      if (!Array.isArray(list) || !n.origins[k]) continue;
      list.forEach((e, i) => {
        if (typeof e !== 'string' || describeBad(e, STRICT_BAD) || e.includes('${')) return;
        const [ip, ...names] = e.trim().split(/\s+/);
        if (ip === badAdminIp) return; // `${admin_ip}` with a bad admin_ip: reported on admin_ip
        if (!ip || !isIPv4(ip) || names.length === 0 || !names.every(isHostname)) {
          out.push(err('bad-value', [...originOf(n, k), i], `\`${e}\` is not "<ipv4> <hostname> [hostname...]"`));
        }
      });
    }
    const dns = v.node_dns_servers;
    if (Array.isArray(dns) && n.origins.node_dns_servers) dns.forEach((e, i) => {
      if (typeof e === 'string' && !describeBad(e, STRICT_BAD) && !e.includes('${') && e.trim() !== badAdminIp && !isIPv4(e.trim())) out.push(err('bad-ip', [...originOf(n, 'node_dns_servers'), i], `DNS server \`${e}\` is not an IPv4 address`));
    });
  }
  return dedupe(out);
};

/** nginx_users become `.htpasswd` lines: a name is a plain word, a password one line. */
export const nginxUsers: Rule = (inv) => {
  const out: Diagnostic[] = [];
  for (const n of inv.nodes.filter((x) => x.modules.includes('infra'))) {
    const users = n.vars.nginx_users;
    if (!isObj(users)) continue;
    const base = originOf(n, 'nginx_users');
    for (const [name, pass] of Object.entries(users)) {
      if (!/^[A-Za-z0-9._-]+$/.test(name)) {
        out.push(err('injection', [...base, name], `nginx user name ${JSON.stringify(name)} must be letters, digits, '.', '_' or '-'`, { hint: 'a `:` or newline in a name would add lines to /etc/nginx/.htpasswd' }));
      }
      if (typeof pass !== 'string' && typeof pass !== 'number') {
        out.push(err('bad-value', [...base, name], `the password of nginx user \`${name}\` must be a string`));
      } else if (CONTROL.test(String(pass))) {
        out.push(err('injection', [...base, name], `the password of nginx user \`${name}\` contains a control character (a newline would add a line to /etc/nginx/.htpasswd)`));
      }
    }
  }
  return dedupe(out);
};

/**
 * NODE parameters pigen knows but does not apply (Pigsty's node playbook does): set in the
 * inventory, each is a warning once where it is set, so nobody expects an effect that never comes.
 */
const NOT_APPLIED: [RegExp, string][] = [
  [/^node_(tune|disable_numa|hugepage_ratio|static_network|disk_prefetch)$/, 'kernel and hardware tuning beyond node_sysctl_params, node_hugepage_count, node_overcommit_ratio and node_disable_swap'],
  [/^node_(firewall_mode|firewall_intranet|firewall_public_port)$/, 'the firewall'],
  [/^haproxy_(enabled|clean|reload|auth_enabled|admin_username|admin_password|exporter_port|client_timeout|server_timeout|services)$/, 'haproxy (pigen does not install it, nor scrape it)'],
  [/^vip_(enabled|address|vrid|role|preempt|interface|dns_suffix|auth_pass|exporter_port)$/, 'the L2 VIP (keepalived; pigen does not install it, nor scrape it)'],
  // (pigen runs on no controller whose key it could take: the key goes into node_admin_pk_list.)
  [/^node_admin_pk_current$/, "the key of whoever runs the build: list it in node_admin_pk_list"],
  [/^certbot_sign$/, "Let's Encrypt certificates: the portal is served with the CA's certificates"],
  [/^node_(uv_env|pip_packages)$/, 'the uv virtualenv and its pip packages'],
  [/^node_data$/, 'a main data directory other than /data: the directories pigen makes are /data/infra and those of nginx_data, vector_data and the like'],
  // (Fixed in Pigsty too: /infra is linked to the literal /data/infra, the env files name /infra.)
  [/^infra_data$/, 'an infra data directory other than /data/infra (Pigsty links /infra to /data/infra whatever it says)'],
  [/^infra_(extra_)?services$/, "the portal's home page (index.html) and its navigation: the home server serves the repo, the CA certificate and the portal's locations"],
  // (Scrape jobs of the PGSQL module that pigen does not write: its own pgsql job scrapes 8008 as plain http.)
  [/^patroni_ssl_enabled$/, "Patroni's https scrape job (pgsql-patroni): 8008 is scraped over plain http, and PatroniDown fires"],
  [/^pg_exporters$/, 'the remote PostgreSQL exporters (the pgrds scrape job and its targets)'],
];

export const notApplied: Rule = (inv, loaded) => {
  // One warning per feature and per mapping that sets it (a vars block, a host), at the parameter
  // written first, naming them all in the order written: Pigsty's debian.yml sets ten haproxy
  // parameters in all.vars (eight ask for something).
  const groups = new Map<string, { at: Path; what: string; keys: string[] }>();
  const seen = new Set<string>();
  for (const n of inv.nodes) {
    for (const k of Object.keys(n.origins)) {
      const what = NOT_APPLIED.find(([re]) => re.test(k))?.[1];
      // (Turned off or empty, it asks for nothing pigen leaves out.)
      const val = n.vars[k];
      if (!what || (val === false && k !== 'node_firewall_mode') || val === '' || (k === 'node_data' && val === '/data') || (k === 'infra_data' && val === '/data/infra') || (isObj(val) && !Object.keys(val).length) || (Array.isArray(val) && !val.length)) continue;
      const at = originOf(n, k);
      if (seen.has(pathKey(at))) continue;
      seen.add(pathKey(at));
      const group = `${what}\u0001${pathKey(at.slice(0, -1))}`;
      const g = groups.get(group);
      if (g) g.keys.push(k);
      else groups.set(group, { at, what, keys: [k] });
    }
  }
  // (Found node by node, in the order each node's parameters were merged: sorted by where they stand.)
  const written = (k: Path) => {
    const pos = positionOf(loaded, k, true);
    return pos ? pos.line * 1e6 + pos.col : Infinity;
  };
  return [...groups.values()].map(({ at: first, what, keys: found }) => {
    const scope = first.slice(0, -1);
    const keys = [...found].sort((a, b) => written([...scope, a]) - written([...scope, b]) || (a < b ? -1 : a > b ? 1 : 0));
    const at = [...scope, keys[0]!];
    return keys.length === 1
      ? warn('not-applied', at, `\`${keys[0]}\` is not applied by pigen (${what}): the nodes boot without it`)
      : warn('not-applied', at, `${keys.slice(0, -1).map((k) => `\`${k}\``).join(', ')} and \`${keys.at(-1)}\` are not applied by pigen (${what}): the nodes boot without them`);
  });
};

/**
 * Users and groups a node has already, or gets from a package: the OS's (Debian, EL), the cloud
 * images' default users (cloud-init merges a user of that name into its default one, whose sudo
 * rule then wins), the packages pigen and Pigsty install, pigen's services'.
 */
const SYSTEM_USERS = new Set(
  [
    'root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc gnats nobody nogroup _apt messagebus sshd adm wheel sudo staff users operator shutdown halt ftp tss tcpdump dbus rpc rpcuser nscd unbound',
    'systemd-network systemd-resolve systemd-timesync systemd-journal-remote systemd-coredump systemd-oom polkitd',
    'admin debian ubuntu cloud-user ec2-user centos rocky almalinux fedora opc core',
    'nginx grafana prometheus victoria victoriametrics infra dnsmasq _chrony chrony postgres etcd minio redis vector haproxy keepalived',
  ]
    .join(' ')
    .split(' '),
);
/** uids that Debian (base-passwd) or EL assign statically to their own users. */
const STATIC_UIDS = new Map<number, string>([
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14].map((u): [number, string] => [u, 'a system user of Debian or EL']),
  [33, 'www-data on Debian'],
  [34, 'backup on Debian'],
  [38, 'list on Debian'],
  [39, 'irc on Debian'],
  [41, 'gnats on Debian'],
  [59, 'tss on EL'],
  [72, 'tcpdump on EL'],
  [74, 'sshd on EL'],
  [81, 'dbus on EL'],
  [99, 'nobody on older EL'],
  [100, 'the users group on Debian'],
]);
// (No ssh-dss: OpenSSH refuses DSA keys by default since 7.0.)
const SSH_KEY_TYPES = new Set(['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com']);

/** Why a line is not an OpenSSH public key (`TYPE BASE64 [COMMENT]`), or undefined when it is one. */
export function sshKeyProblem(line: string): string | undefined {
  const m = line.trim().match(/^(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*))?$/);
  if (!m) return 'is not of the form `TYPE BASE64 [COMMENT]` (options before the type are not accepted)';
  const [, type, b64, comment] = m as unknown as [string, string, string, string | undefined];
  if (!SSH_KEY_TYPES.has(type)) return `has the unknown key type \`${type}\``;
  const blob = Buffer.from(b64, 'base64');
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (len < 0 || blob.subarray(4, 4 + len).toString('latin1') !== type) return `is not a ${type} key (its base64 part does not start with that type: a mixed-up paste?)`;
  // (A public key blob is a run of length-prefixed fields that ends exactly at its end.)
  let at = 0;
  let fields = 0;
  while (at + 4 <= blob.length) (at += 4 + blob.readUInt32BE(at)), fields++;
  if (at !== blob.length || fields < 2) return 'is cut short or has extra bytes (its base64 part is not a whole key: a truncated paste?)';
  if (comment !== undefined && !/^[A-Za-z0-9@._+:=,\/ -]*$/.test(comment)) return 'has a comment with characters other than letters, digits, spaces and @ . _ + : = , / -';
  return undefined;
}

/**
 * The admin user (node_admin_*): a name useradd and sudoers accept that is not a user the node
 * has already (cloud-init would give that one the sudo rule and keys), a uid that is not root's,
 * and public keys in OpenSSH's one-line form.
 */
export const adminUser: Rule = (inv) => {
  const out: Diagnostic[] = [];
  for (const n of inv.nodes) {
    const v = n.vars;
    if (v.node_admin_enabled === false) continue;
    const name = v.node_admin_username;
    if (n.origins.node_admin_username && typeof name === 'string') {
      if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name)) out.push(err('bad-value', originOf(n, 'node_admin_username'), `\`${name}\` cannot be a user name`, { hint: 'use up to 32 lower-case letters, digits, _ and -, starting with a letter or _' }));
      else if (SYSTEM_USERS.has(name)) out.push(err('bad-value', originOf(n, 'node_admin_username'), `\`${name}\` is a user or group the node has already (the OS, a package or pigen makes it): the admin user would take over its account`, { hint: 'choose another name (Pigsty uses dba)' }));
    }
    const uid = v.node_admin_uid;
    if (n.origins.node_admin_uid && typeof uid === 'number' && (uid === 0 || uid >= 65534 || STATIC_UIDS.has(uid))) {
      const why = uid === 0 ? "root's: the admin user would be a second root" : uid >= 65534 ? 'reserved (nobody, or beyond 16 bits)' : `taken by ${STATIC_UIDS.get(uid)} (useradd would fail)`;
      out.push(err('bad-value', originOf(n, 'node_admin_uid'), `uid ${uid} is ${why}`, { hint: 'use a free uid such as 88 (Pigsty\'s) between 1 and 65533' }));
    }
    const keys = v.node_admin_pk_list;
    if (n.origins.node_admin_pk_list && Array.isArray(keys)) {
      keys.forEach((k, i) => {
        if (typeof k !== 'string' || LINE_BREAK.test(k)) return; // (the schema or the line-break check reports it)
        const why = sshKeyProblem(k);
        if (why) out.push(err('bad-value', [...originOf(n, 'node_admin_pk_list'), i], `entry ${i} of node_admin_pk_list ${why}`, { hint: 'paste the one line of a public key file (~/.ssh/id_ed25519.pub)' }));
      });
    }
  }
  return dedupe(out);
};

const PROXY_KEYS = new Set(['http_proxy', 'https_proxy', 'all_proxy', 'ftp_proxy', 'no_proxy']);

/**
 * proxy_env: the proxies go into apt's configuration (a quoted string) and yum repo files (a
 * value to the end of its line): each must be one URL; no_proxy a list of hosts, domains, globs
 * and CIDRs. A key pigen does not know would be silently ignored: it is an error.
 */
export const proxyEnv: Rule = (inv) => {
  const out: Diagnostic[] = [];
  for (const n of inv.nodes) {
    const env = n.vars.proxy_env;
    if (!n.origins.proxy_env || !isObj(env)) continue;
    const base = originOf(n, 'proxy_env');
    for (const [k, x] of Object.entries(env)) {
      if (typeof x !== 'string' || LINE_BREAK.test(x)) continue; // (the schema or the line-break check reports it)
      const key = k.toLowerCase();
      if (!PROXY_KEYS.has(key)) out.push(err('bad-value', [...base, k], `\`${k}\` is not a proxy variable pigen knows`, { hint: `use ${[...PROXY_KEYS].join(', ')} (or their upper-case forms)`, atKey: true }));
      else if (key === 'no_proxy' ? !/^[A-Za-z0-9.*\/:_, -]*$/.test(x) : x.trim() !== '' && !/^(https?|socks5h?|socks4a?):\/\/[A-Za-z0-9._~%!*+,=:@\/\[\]-]+$/.test(x.trim())) {
        out.push(err('bad-value', [...base, k], key === 'no_proxy' ? `no_proxy ${JSON.stringify(x)} holds characters other than those of host names, globs and CIDRs` : `${k} ${JSON.stringify(x)} is not a proxy URL`, { hint: key === 'no_proxy' ? 'a comma-separated list such as localhost,10.0.0.0/8,*.pigsty' : 'such as http://proxy.example.com:3128 (no quotes, spaces or ;)' }));
      }
    }
  }
  return dedupe(out);
};

/**
 * SELinux enforcing on an EL infra node: pigen sets no labels or booleans for its layout (nginx
 * serving /www, a link to the data directory; nginx proxying to the local services), which
 * enforcing then denies. Pigsty's infra playbook sets them; pigen says so where it is asked for.
 */
export const selinuxEnforcing: Rule = (inv) => {
  const out: Diagnostic[] = [];
  for (const n of inv.nodes) {
    const v = n.vars;
    if (!n.modules.includes('infra') || v.node_selinux_mode !== 'enforcing' || !String(v.os_profile ?? 'd12').startsWith('el')) continue;
    out.push(warn('selinux-enforcing', originOf(n, 'node_selinux_mode'), `infra node ${n.ip} would enforce SELinux, but pigen labels nothing for it: nginx could neither read ${String(v.nginx_home ?? '/www')} (a link to ${String(v.nginx_data ?? '/data/nginx')}) nor proxy to the local services`));
  }
  return dedupe(out);
};

/** `every node reads`, or `N of M nodes read`: the nodes of `inv` that `some` are. */
const readersOf = (inv: Inventory, some: readonly ResolvedNode[]) => (some.length === inv.nodes.length ? 'every node reads' : `${some.length} of ${inv.nodes.length} nodes read`);

/** A node's node_repo_modules, as a list: read as the plan reads it (plan/repo.ts, Vars.csv). */
const repoModules = (vars: JsonObject): string[] => csvWords(vars.node_repo_modules);

/**
 * The `local` repo is the admin node's, filled by an offline bundle (repo_bundle, installed at
 * boot): without one, nodes that read only it install no packages at first boot.
 */
export const repoEmpty: Rule = (inv) => {
  const admin = inv.nodes.find((n) => n.ip === inv.adminIp);
  if (!admin || !admin.modules.includes('infra')) return [];
  const av = admin.vars;
  const bundle = typeof av.repo_bundle === 'string' && av.repo_bundle !== '' ? av.repo_bundle : undefined;
  // (The nodes that get a source for it: one whose own repo_upstream has no `local` entry for its
  // release gets none, which repo-unmatched says; this said the opposite of it beside it.)
  const users = inv.nodes.filter((n) => repoModules(n.vars).includes('local') && readsLocal(n));
  if (!users.length) return [];
  // (repo_enabled: false, as Pigsty's one-node online templates keep it while their comment
  // suggests node_repo_modules: local: the admin node makes no repo, nor installs a bundle.)
  if (av.repo_enabled === false) {
    return [
      warn('repo-empty', originOf(admin, 'repo_enabled'), `${readersOf(inv, users)} the \`local\` repo (http://${inv.adminIp}/pigsty), but the admin node has repo_enabled: false: it makes no repo${bundle ? ', and its repo_bundle is not installed' : ''}; booted from their full user-data, they install no packages`, {
        hint: 'set repo_enabled: true on the admin node (with repo_bundle), or point node_repo_modules at upstream repos',
      }),
    ];
  }
  // (The repo holds the admin node's OS's packages: a node of another OS finds none of its own.)
  const osOf = (n: ResolvedNode) => (typeof n.vars.os_profile === 'string' ? n.vars.os_profile : 'd12');
  const others = users.filter((n) => osOf(n) !== osOf(admin));
  const mixed = others.length
    ? [
        warn('repo-empty', others[0]!.origins.os_profile ?? others[0]!.origins.node_repo_modules ?? others[0]!.path, `${others.length} node${others.length === 1 ? '' : 's'} of os_profile ${[...new Set(others.map(osOf))].join(', ')} read${others.length === 1 ? 's' : ''} the \`local\` repo, which holds the admin node's ${osOf(admin)} packages (and pigen bundle bundles one OS): ${others.length === 1 ? 'it installs' : 'they install'} none of ${others.length === 1 ? 'its' : 'their'} packages from it`, {
          hint: "point those nodes' node_repo_modules at upstream repos of their OS",
        }),
      ]
    : [];
  if (bundle) return mixed;
  const at = users[0]!.origins.node_repo_modules ?? admin.origins.admin_ip ?? admin.path;
  return [
    warn('repo-empty', at, `${readersOf(inv, users)} the \`local\` repo (http://${inv.adminIp}/pigsty), but no repo_bundle fills it: booted from their full user-data, they install no packages`),
    ...mixed,
  ];
};

/**
 * What the nodes read from the admin node at boot, and whether it serves it: the `local` repo
 * (http://<admin_ip>/pigsty: port 80, the home portal entry's /pigsty/) and DNS (a nameserver
 * line has no port). Each problem leaves every node that reads it without packages or names.
 */
export const adminServes: Rule = (inv) => {
  if (!isIPv4(inv.adminIp)) return [];
  const out: Diagnostic[] = [];
  const admin = inv.nodes.find((n) => n.ip === inv.adminIp);
  const repoUsers = inv.nodes.filter((n) => repoModules(n.vars).includes('local'));
  const dnsUsers = inv.nodes.filter((n) => n.ip !== inv.adminIp && Array.isArray(n.vars.node_dns_servers) && n.vars.node_dns_servers.some((s) => typeof s === 'string' && s.trim() === inv.adminIp));
  if (!admin || !admin.modules.includes('infra')) {
    // (admin_ip names an infra host the rule adminIpIsInfra reports; here: no infra host at all.)
    if (inv.infra.length || (!repoUsers.length && !dnsUsers.length)) return [];
    const at = adminIpOrigin(inv);
    const what = [repoUsers.length ? `${readersOf(inv, repoUsers)} its packages from the \`local\` repo (http://${inv.adminIp}/pigsty)` : '', dnsUsers.length ? `${readersOf(inv, dnsUsers)} DNS from it` : ''].filter(Boolean).join(', and ');
    out.push(
      warn('admin-outside', at, `admin_ip ${inv.adminIp} is ${admin ? 'not an infra host' : 'not a host of this inventory'}, and the inventory has no infra group: ${what}, but nothing built here serves ${repoUsers.length ? 'them' : 'it'}`, {
        hint: 'add the admin node to the inventory (an infra group with infra_seq), or, if it runs already, make sure it serves the repo and DNS; or point node_repo_modules and node_dns_servers elsewhere',
      }),
    );
    return out;
  }
  // (Resolved values: defaults merged in; `*_enabled` is on unless false. A port out of range or
  // of another type is an error of its own, as is a portal of another shape: nothing said here.)
  const av = { on: (k: string) => admin.vars[k] !== false, num: (k: string, d: number) => (typeof admin.vars[k] === 'number' ? (admin.vars[k] as number) : d) };
  const portOk = (k: string) => admin.vars[k] === undefined || (Number.isInteger(admin.vars[k]) && (admin.vars[k] as number) >= 1 && (admin.vars[k] as number) <= 65535);
  if (!portOk('nginx_port') || !portOk('dns_port') || (admin.vars.infra_portal !== undefined && !isObj(admin.vars.infra_portal))) return out;
  if (repoUsers.length && av.on('repo_enabled')) {
    const at = admin.origins.infra_portal ?? admin.origins.nginx_port ?? admin.origins.nginx_enabled ?? admin.origins.admin_ip ?? admin.path;
    const home = isObj(admin.vars.infra_portal) ? admin.vars.infra_portal.home : undefined;
    const repoDir = dirOf(admin, 'repo_home');
    const homeDir = dirOf(admin, 'nginx_home');
    const why = !av.on('nginx_enabled')
      ? { at: originOf(admin, 'nginx_enabled'), msg: 'nginx_enabled is false on the admin node' }
      : !isObj(home) || typeof home.domain !== 'string' || home.domain === ''
        ? { at: admin.origins.infra_portal ?? at, msg: `the admin node's infra_portal has no \`home\` entry with a domain (the server that holds /pigsty/)` }
        : av.num('nginx_port', 80) !== 80
          ? { at: originOf(admin, 'nginx_port'), msg: `nginx listens on ${av.num('nginx_port', 80)}, not 80 (the repo URL has no port)` }
          : repoDir !== undefined && homeDir !== undefined && repoDir !== homeDir
            ? { at: originOf(admin, admin.origins.repo_home ? 'repo_home' : 'nginx_home'), msg: `the repo is made in repo_home ${repoDir}, while the home server's /pigsty/ serves nginx_home ${homeDir}` }
            : undefined;
    if (why) {
      out.push(
        warn('repo-unserved', why.at, `${readersOf(inv, repoUsers)} the \`local\` repo (http://${inv.adminIp}/pigsty), but nothing serves it there: ${why.msg}; they install no packages at first boot`, {
          hint: 'keep nginx on port 80 with a `home` portal entry on the admin node, or point node_repo_modules at upstream repos',
        }),
      );
    }
  }
  if (dnsUsers.length) {
    const why = !av.on('dns_enabled') ? { at: originOf(admin, 'dns_enabled'), msg: 'dns_enabled is false on the admin node' } : av.num('dns_port', 53) !== 53 ? { at: originOf(admin, 'dns_port'), msg: `dnsmasq listens on ${av.num('dns_port', 53)}, and a nameserver line has no port` } : undefined;
    if (why) {
      out.push(
        warn('dns-unserved', why.at, `${readersOf(inv, dnsUsers)} DNS from the admin node (node_dns_servers: ${inv.adminIp}), but it answers none there: ${why.msg}; every lookup waits for the next nameserver`, {
          hint: 'keep dnsmasq on the admin node on port 53, or list other servers in node_dns_servers',
        }),
      );
    }
  }
  return out;
};

/**
 * A directory parameter of a node (default /www, as repo_home and nginx_home are), without a
 * trailing slash; undefined when it is no plain absolute path (an error of its own).
 */
const dirOf = (n: ResolvedNode, k: string) => {
  const d = (typeof n.vars[k] === 'string' && n.vars[k] !== '' ? (n.vars[k] as string) : '/www').replace(/(.)\/+$/, '$1');
  return /^\/[A-Za-z0-9._/-]*$/.test(d) && !d.split('/').includes('..') ? d : undefined;
};

/** Prometheus refuses a scrape timeout longer than the interval (the scrape config; pigen check's promtool). */
export const scrapeDurations: Rule = (inv) => {
  const out: Diagnostic[] = [];
  for (const n of inv.nodes.filter((x) => x.modules.includes('infra'))) {
    const interval = promDurationMs(String(n.vars.vmetrics_scrape_interval ?? '10s'));
    const timeout = promDurationMs(String(n.vars.vmetrics_scrape_timeout ?? '8s'));
    if (interval === undefined || timeout === undefined) continue;
    if (interval === 0) out.push(err('bad-value', originOf(n, 'vmetrics_scrape_interval'), 'vmetrics_scrape_interval is zero', { hint: 'scrape every few seconds at least, e.g. 10s' }));
    else if (timeout > interval) {
      out.push(
        err('bad-value', originOf(n, n.origins.vmetrics_scrape_timeout ? 'vmetrics_scrape_timeout' : 'vmetrics_scrape_interval'), `vmetrics_scrape_timeout ${String(n.vars.vmetrics_scrape_timeout ?? '8s')} is longer than vmetrics_scrape_interval ${String(n.vars.vmetrics_scrape_interval ?? '10s')}: Prometheus' scrape config refuses it`, {
          hint: 'set vmetrics_scrape_timeout no longer than the interval',
        }),
      );
    }
  }
  return dedupe(out);
};

/**
 * alertmanager_receivers as Alertmanager reads them: unique names (pigen's own route is named
 * `default`), matchers it parses (a quoted value closed, no bare `"`; a regexp that compiles),
 * http(s) URLs. (E-mail's smarthost and from are required by the schema: there is no global one.)
 */
export const alertReceivers: Rule = (inv) => {
  const out: Diagnostic[] = [];
  for (const n of inv.nodes.filter((x) => x.modules.includes('infra'))) {
    const list = n.vars.alertmanager_receivers;
    if (!n.origins.alertmanager_receivers || !Array.isArray(list)) continue;
    const base = originOf(n, 'alertmanager_receivers');
    const names = new Map<string, number>();
    list.forEach((r, i) => {
      if (!isObj(r)) return;
      const p = [...base, i];
      if (typeof r.name === 'string') {
        if (r.name === 'default') out.push(err('alert-receiver', [...p, 'name'], 'receiver name `default` is taken by pigen\'s own catch-all route', { hint: 'name the receiver otherwise, e.g. ops' }));
        else if (names.has(r.name)) out.push(err('alert-receiver', [...p, 'name'], `receiver name \`${r.name}\` is used twice (Alertmanager needs unique names)`, { related: { path: [...base, names.get(r.name)!, 'name'], message: 'first used here' } }));
        else names.set(r.name, i);
      }
      if (Array.isArray(r.matchers)) {
        r.matchers.forEach((m, j) => {
          if (typeof m !== 'string') return;
          const bad = matcherProblem(m);
          if (bad) out.push(err('alert-receiver', [...p, 'matchers', j], `matcher ${JSON.stringify(m)}: ${bad}`, { hint: 'write label="value" (quotes around the value; \\" for a quote inside), or label=~"regexp"' }));
        });
      }
      for (const [kind, key] of [['webhook', 'url'], ['slack', 'api_url']] as const) {
        const u = isObj(r[kind]) ? (r[kind] as JsonObject)[key] : undefined;
        if (typeof u === 'string' && !/^https?:\/\/[^/\s]+/i.test(u)) {
          out.push(err('alert-receiver', [...p, kind, key], `${kind} ${key} is not an http(s) URL: Alertmanager refuses other schemes`, { hint: 'use an http:// or https:// URL' }));
        }
      }
    });
  }
  return dedupe(out);
};

/**
 * What is wrong with an Alertmanager matchers entry (its parser's rules, ParseMatchers: one or
 * more matchers, comma-separated, optionally in braces), if anything.
 */
function matcherProblem(entry: string): string | undefined {
  let body = entry.trim();
  if (body.startsWith('{') && body.endsWith('}')) body = body.slice(1, -1);
  // (Split at commas outside double quotes.)
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '\\' && quoted) {
      cur += c + (body[i + 1] ?? '');
      i++;
    } else if (c === '"') (quoted = !quoted), (cur += c);
    else if (c === ',' && !quoted) parts.push(cur), (cur = '');
    else cur += c;
  }
  if (quoted) return 'its quoted value is not closed';
  parts.push(cur);
  for (const m of parts.length > 1 ? parts.filter((p) => p.trim() !== '') : parts) {
    const bad = oneMatcherProblem(m);
    if (bad) return parts.length > 1 ? `${JSON.stringify(m.trim())}: ${bad}` : bad;
  }
  return undefined;
}

function oneMatcherProblem(m: string): string | undefined {
  const x = /^\s*[A-Za-z_][A-Za-z0-9_]*\s*(=~|!~|!=|=)\s*(.*?)\s*$/s.exec(m);
  if (!x) return 'not label, operator (=, !=, =~, !~) and value';
  let value = x[2]!;
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
  else if (value.startsWith('"')) return 'its quoted value is not closed';
  // (Alertmanager: a `"` inside the value needs a backslash.)
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '\\') i++;
    else if (value[i] === '"') return 'a double quote in its value is not escaped (\\")';
  }
  if (x[1] === '=~' || x[1] === '!~') {
    const re = value.replace(/\\(["\\])/g, '$1');
    // (Go's RE2: no lookaround, no backreferences; its flag groups, (?i) and (?i:...), and named
    // groups (?P<name>...) are JavaScript's to compile without them.)
    if (/\(\?<?[=!]|\\[1-9]/.test(re)) return 'its regexp uses lookaround or a backreference, which Go\'s RE2 does not have';
    const js = re.replace(/\(\?[imsU-]+\)/g, '').replace(/\(\?[imsU-]+:/g, '(?:').replace(/\(\?P</g, '(?<');
    try {
      new RegExp(`^(?:${js})$`);
    } catch (e) {
      return `its regexp does not compile: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`;
    }
  }
  return undefined;
}

/**
 * A module of node_repo_modules with no repo_upstream entry for the node's OS release (an EL
 * inventory built for Debian): the node gets no source for it, and its packages do not install.
 * (Only where repo_upstream is set: pigen's per-OS defaults match by construction.)
 */
export const repoUnmatched: Rule = (inv) => {
  const out: Diagnostic[] = [];
  for (const n of inv.nodes) {
    const u = upstreamOf(n);
    if (!u) {
      // pigen's own repo_upstream (plan/repo.ts: defaultUpstream) has entries of these modules
      // only: another one named (Pigsty's docker, mssql, beta...) got no source, without a word.
      const missing = repoModules(n.vars).filter((m) => NAME_OK.test(m) && !DEFAULT_UPSTREAM_MODULES.includes(m));
      for (const m of missing) {
        out.push(warn('repo-unmatched', n.origins.node_repo_modules ?? n.path, `module \`${m}\` is in node_repo_modules, but pigen's default repo_upstream has no entry of it (its modules: ${DEFAULT_UPSTREAM_MODULES.join(', ')}): its nodes get no source for it, and the packages it carries do not install`, { hint: `set repo_upstream with the repos of module \`${m}\` (and the others the nodes read), or drop it from node_repo_modules` }));
      }
      continue;
    }
    for (const m of u.modules) {
      if (!u.entries.some((it) => isObj(it) && it.module === m && u.forRelease(it))) {
        out.push(warn('repo-unmatched', n.origins.node_repo_modules ?? n.origins.repo_upstream!, `no repo_upstream entry of module \`${m}\` is for os_profile ${u.os} (release ${u.rel}): its nodes get no source for it, and the packages it carries do not install`));
      }
    }
  }
  return dedupe(out);
};

/**
 * `minor: true` on a repo an EL node reads: Pigsty puts the node's full OS version (9.6) in place
 * of $releasever, known only on the node; pigen's .repo keeps $releasever, which dnf reads as
 * the major version. (A vault URL, whose directories are minor versions, would not resolve.)
 */
export const repoMinor: Rule = (inv) => {
  const out: Diagnostic[] = [];
  for (const n of inv.nodes) {
    const u = upstreamOf(n);
    if (!u || !u.os.startsWith('el')) continue;
    u.entries.forEach((it, i) => {
      if (!isObj(it) || it.minor !== true || !u.forRelease(it) || !u.modules.includes(String(it.module))) return;
      out.push(warn('not-applied', [...n.origins.repo_upstream!, i, 'minor'], `\`minor: true\` of repo \`${String(it.name)}\` is not applied by pigen (the full OS version is known only on the node): its .repo keeps $releasever, which dnf reads as the major version`, { hint: 'write the minor version into the baseurl, or drop minor: true' }));
    });
  }
  return dedupe(out);
};

/** Whether a node reading the `local` module gets a source for it (pigen's default repo_upstream has one). */
function readsLocal(n: ResolvedNode): boolean {
  const u = upstreamOf(n);
  return !u || u.entries.some((it) => isObj(it) && it.module === 'local' && u.forRelease(it));
}

/** The modules of pigen's own repo_upstream for every OS (plan/repo.ts: defaultUpstream; a test keeps them equal). */
export const DEFAULT_UPSTREAM_MODULES = ['infra', 'local', 'node', 'pgsql'];

/**
 * A node's repo_upstream as the inventory sets it (undefined when it is left to pigen's per-OS
 * defaults): its entries, the node's os_profile and release, its repo modules (a bad name is an
 * error of its own), and whether an entry is for that release.
 */
function upstreamOf(n: ResolvedNode) {
  const v = n.vars;
  // (An empty list, or one of no entries, is pigen's default, as the plan reads it: plan/repo.ts.)
  if (!n.origins.repo_upstream || !Array.isArray(v.repo_upstream) || !v.repo_upstream.some(isObj)) return undefined;
  const os = typeof v.os_profile === 'string' ? v.os_profile : 'd12';
  const rel = Number(os.replace(/\D/g, ''));
  const forRelease = (it: JsonObject) => !Array.isArray(it.releases) || it.releases.length === 0 || it.releases.includes(rel);
  return { entries: v.repo_upstream, os, rel, modules: repoModules(v).filter((m) => NAME_OK.test(m)), forRelease };
}

// cloud-init's apt module writes each source line through its templater: `$RELEASE` becomes the
// codename, and a name it does not know (`$basearch`) fails the module at boot, so a node would
// get no sources and install nothing. (pigen fills its own placeholders first.)
const PIGEN_URL_PLACEHOLDERS = new RegExp(`\\$\\{(?:${BASEURL_PLACEHOLDERS.join('|')})\\}`, 'g');
export const aptSourceVars: Rule = (inv) => {
  const out: Diagnostic[] = [];
  eachAptBaseurl(inv, (os, path, url) => {
    // A source line's URI, then its suite: pigen writes `deb [trusted=yes] ` before them.
    const [uri = '', ...rest] = url.trim().split(/\s+/);
    const isUri = /^(https?|file|ftp|copy|cdrom|(mirror|tor)\+[a-z]+):/.test(uri);
    if (!isUri || !rest.length) {
      const why = isUri ? 'it has no suite' : `\`${hideUserinfo(uri)}\` is no URI${uri.startsWith('[') ? " (the options are pigen's)" : ''}`;
      out.push(err('bad-value', path, `the baseurl of a ${os} node's apt source is \`URI SUITE [COMPONENTS]\` (pigen writes \`deb [trusted=yes]\` before it), and ${why}`, { hint: "e.g. 'http://deb.debian.org/debian/ ${distro_codename} main' (a flat repo: 'http://host/path ./')" }));
      return;
    }
    if (!url.replace(PIGEN_URL_PLACEHOLDERS, '').includes('$')) return;
    out.push(
      err('bad-value', path, `baseurl \`${url}\` of a ${os} node's apt source holds a \`$\` that cloud-init's apt module would expand (\`$RELEASE\` to the codename; a name it does not know fails the module at boot)`, {
        hint: "write the URL out, or use pigen's placeholders: ${distro_codename}, ${distro_name}, ${releasever}, ${arch}, ${admin_ip}",
      }),
    );
  });
  return dedupe(out);
};

/**
 * Credentials in a deb node's repo URL go to apt's auth.conf.d as tokens (plan/repo.ts), percent-
 * decoded: one that decodes to a blank, `#`, a quote or a backslash (or a control character) cannot
 * be one, and is refused rather than written as apt would not read it.
 */
export const aptCredentials: Rule = (inv) => {
  const out: Diagnostic[] = [];
  eachAptBaseurl(inv, (os, path, url) => {
    const info = urlUserinfo(url)?.userinfo;
    if (info === undefined) return;
    const bad = info.split(':', 2).some((x) => {
      try {
        return /[\s#"'\\\u0000-\u001f\u007f]/.test(decodeURIComponent(x));
      } catch {
        return true;
      }
    });
    // (The URL is not shown: it holds a password.)
    if (bad) out.push(err('bad-value', path, `the user or password in a ${os} node's repo URL decodes to a blank, \`#\`, a quote, a backslash or a control character (or is no valid percent-encoding), which apt's auth.conf cannot hold`, { hint: 'use a credential without them (apt reads it from /etc/apt/auth.conf.d/, token by token)' }));
  });
  return dedupe(out);
};

/**
 * Locations written into files every reader of the node (or of its golden image) may read, and
 * said in boot logs: no credentials in them. repo_bundle (the admin node's installer script, 0755,
 * part of its image) and vector_log_endpoint (vector.yaml, 0644), whose entries are also
 * `infra`, `host[:port]` or an http(s) URL, a port in 1..65535.
 */
export const locationUrls: Rule = (inv) => {
  const out: Diagnostic[] = [];
  const ENDPOINT = /^(?:(https?):\/\/)?([A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?(\/[^\s]*)?$/;
  for (const n of inv.nodes) {
    const bundle = n.vars.repo_bundle;
    if (n.origins.repo_bundle && typeof bundle === 'string' && urlUserinfo(bundle)) {
      out.push(err('bad-value', originOf(n, 'repo_bundle'), "repo_bundle's URL holds credentials, which would be written into the admin node's installer script (readable by every user, and part of its golden image) and its boot log", { hint: 'serve the bundle where the admin node fetches it without credentials (its own network), or give a path on the node' }));
    }
    const eps = n.vars.vector_log_endpoint;
    if (!n.origins.vector_log_endpoint || !Array.isArray(eps)) continue;
    eps.forEach((e, i) => {
      if (typeof e !== 'string' || e === 'infra' || /[;{}"'`#\\$<>|&\s]/.test(e)) return;
      const at = [...originOf(n, 'vector_log_endpoint'), i];
      if (urlUserinfo(e) || /^[^/]*@/.test(e)) {
        out.push(err('bad-value', at, 'a vector_log_endpoint with credentials would be written into vector.yaml, readable by every user of the node', { hint: 'give the endpoint without them (VictoriaLogs on the infra nodes takes none)' }));
        return;
      }
      const m = ENDPOINT.exec(e);
      const port = m?.[3] === undefined ? undefined : Number(m[3]);
      if (!m || (port !== undefined && (port < 1 || port > 65535))) {
        out.push(err('bad-value', at, `vector_log_endpoint \`${e}\` is neither \`infra\`, a host[:port] (a port in 1..65535) nor an http(s) URL`, { hint: 'e.g. 10.10.10.10:9428, or http://logs.example.com:9428/insert/jsonline' }));
      }
    });
  }
  return dedupe(out);
};

/**
 * The names the infra nodes' dnsmasq answers for the PGSQL and MINIO clusters (plan/infra.ts,
 * clusterRecords): a cluster named `default` would share dns_records' file (`pigsty/default`, left
 * to dns_records), and a name two nodes claim resolves to both.
 */
export const clusterNames: Rule = (inv) => {
  if (!inv.infra.length) return [];
  const out: Diagnostic[] = [];
  // (Each name with who claims it: a cluster's own name (its PGSQL primary's), a member's `-<seq>`.)
  const owners = new Map<string, { ip: string; at: Path; cluster: boolean }[]>();
  const claim = (name: string, ip: string, at: Path, cluster: boolean) => void (owners.get(name) ?? (owners.set(name, []), owners.get(name)!)).push({ ip, at, cluster });
  for (const n of inv.nodes) {
    for (const [mod, clusterKey, seqKey, fallback] of [['pgsql', 'pg_cluster', 'pg_seq', undefined], ['minio', 'minio_cluster', 'minio_seq', 'minio']] as const) {
      if (!n.modules.includes(mod)) continue;
      const cls = typeof n.vars[clusterKey] === 'string' ? (n.vars[clusterKey] as string) : fallback;
      const seq = n.vars[seqKey];
      if (cls === undefined || !Number.isInteger(seq)) continue;
      const at = originOf(n, n.origins[clusterKey] ? clusterKey : seqKey);
      if (cls === 'default') {
        out.push(warn('dns-name-clash', at, `a ${mod === 'pgsql' ? 'PGSQL' : 'MINIO'} cluster named \`default\` gets no DNS names: its file would be dns_records' (/etc/dnsmasq.d/pigsty/default)`));
        continue;
      }
      claim(`${cls}-${seq}`, n.ip, at, false);
      if (mod === 'pgsql') claim(cls, n.ip, at, true);
    }
  }
  for (const [name, list] of [...owners].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const ips = [...new Set(list.map((o) => o.ip))];
    // (A PGSQL cluster's own name is claimed by all its members, and answered with its primary.)
    if (ips.length < 2 || list.every((o) => o.cluster)) continue;
    out.push(warn('dns-name-clash', [...list].reverse().find((o) => !o.cluster)?.at ?? list[0]!.at, `the DNS name \`${name}\` is claimed by ${ips.join(' and ')} (two clusters' names and sequence numbers meet): dnsmasq answers with all of them`));
  }
  return dedupe(out);
};

/**
 * Lines the inventory gives for system files, read as their programs read them (the checks
 * `pigen check` runs over the written files): node_crontab (/etc/cron.d/pigsty, where cron ignores
 * a file with one bad line) and node_dns_options (/etc/resolv.conf). The crontab line is not
 * quoted: a command may hold a password.
 */
export const confLines: Rule = (inv) => {
  const out: Diagnostic[] = [];
  for (const n of inv.nodes) {
    let users: Set<string> | undefined;
    for (const [k, problemOf, what] of [['node_crontab', crontabLineProblem, 'a cron.d line'], ['node_dns_options', resolvLineProblem, 'a resolv.conf line']] as const) {
      const list = n.vars[k];
      if (!n.origins[k] || !Array.isArray(list)) continue;
      list.forEach((l, i) => {
        if (typeof l !== 'string' || /[\r\n]/.test(l)) return;
        const problem = problemOf(l);
        if (!problem) {
          // cron skips a line whose user does not exist (Debian's drops the whole file), and
          // reads it again only when the file changes (a review: 8 of 30 real inventories run Pigsty's backup as
          // postgres, a user of PGSQL's packages, which pigen does not deploy).
          const user = k === 'node_crontab' ? crontabUser(l) : undefined;
          if (user !== undefined && !(users ??= usersAtBoot(n)).has(user)) {
            out.push(warn('crontab-user', [...originOf(n, k), i], `a node_crontab line runs as \`${user}\`, a user the node does not have at first boot (pigen makes root, the admin user and its services' users; PGSQL and the other modules pigen does not deploy make theirs): cron skips the job while the user is missing (Debian's cron all of /etc/cron.d/pigsty), and reads the file again only when it changes`));
          }
          return;
        }
        const said = k === 'node_crontab' ? problem.replace(/: .*$/, '') : problem;
        out.push(err('bad-value', [...originOf(n, k), i], `not ${what}: ${said}`, { hint: k === 'node_crontab' ? "e.g. '00 01 * * * root /usr/local/bin/backup' (minute hour day month weekday user command)" : "e.g. 'options single-request-reopen timeout:1', 'search example.com'" }));
      });
    }
  }
  return dedupe(out);
};

/**
 * The users a node has when cron first reads /etc/cron.d/pigsty: the OS's base users (Debian's
 * base-passwd, EL's setup), root, the admin user, the users pigen makes (plan/infra.ts) and those of
 * the packages pigen installs (chrony, nginx, grafana).
 */
function usersAtBoot(n: ResolvedNode): Set<string> {
  const v = n.vars;
  const el = String(v.os_profile ?? 'd12').startsWith('el');
  const users = new Set(el ? ['root', 'bin', 'daemon', 'adm', 'lp', 'sync', 'shutdown', 'halt', 'mail', 'operator', 'games', 'ftp', 'nobody', 'chrony'] : ['root', 'daemon', 'bin', 'sys', 'sync', 'games', 'man', 'lp', 'mail', 'news', 'uucp', 'proxy', 'www-data', 'backup', 'list', 'irc', '_apt', 'nobody', '_chrony']);
  // (openssh-server's, the node exporter's (Debian's package makes prometheus), vector's.)
  for (const u of ['sshd', 'prometheus', 'vector']) users.add(u);
  if (v.node_admin_enabled !== false) users.add(typeof v.node_admin_username === 'string' ? v.node_admin_username : 'dba');
  if (n.modules.includes('infra')) for (const u of ['victoria', 'grafana', 'dnsmasq', ...(el ? ['nginx'] : [])]) users.add(u);
  return users;
}

/** A repo's yum options (meta) that pigen writes itself: `name`, `baseurl`, `proxy` (from proxy_env). */
export const repoMeta: Rule = (inv) => {
  const out: Diagnostic[] = [];
  for (const n of inv.nodes) {
    const list = n.vars.repo_upstream;
    if (!n.origins.repo_upstream || !Array.isArray(list)) continue;
    list.forEach((it, i) => {
      if (!isObj(it) || !isObj(it.meta)) return;
      for (const k of ['name', 'baseurl', 'proxy']) {
        if (k in it.meta) out.push(err('bad-value', [...n.origins.repo_upstream!, i, 'meta', k], `\`${k}\` cannot be a repo's meta option: pigen writes it (${k === 'proxy' ? 'from proxy_env' : `from the repo's ${k === 'name' ? 'description' : 'baseurl'}`})`, { hint: k === 'proxy' ? 'set proxy_env' : `set the repo's ${k === 'name' ? 'description' : 'baseurl'}` }));
      }
    });
  }
  return dedupe(out);
};

/** Each baseurl an apt source of a deb node is written from (the repos of its modules and release): the node's OS, where the URL is set, the URL. */
function eachAptBaseurl(inv: Inventory, fn: (os: string, path: Path, url: string) => void): void {
  for (const n of inv.nodes) {
    const u = upstreamOf(n);
    if (!u || !/^[du]/.test(u.os)) continue;
    u.entries.forEach((it, i) => {
      if (!isObj(it) || !u.modules.includes(String(it.module)) || !u.forRelease(it) || !isObj(it.baseurl)) return;
      for (const [region, url] of Object.entries(it.baseurl)) if (typeof url === 'string') fn(u.os, [...n.origins.repo_upstream!, i, 'baseurl', region], url);
    });
  }
}

export const RULES: Rule[] = [nginxUsers, infraSeq, adminIpIsInfra, uniqueNodenames, oneGroupPerModule, portsValid, noInjection, portalEntries, addressFields, adminUser, proxyEnv, selinuxEnforcing, notApplied, repoEmpty, repoUnmatched, repoMinor, aptSourceVars, aptCredentials, locationUrls, repoMeta, clusterNames, confLines, adminServes, scrapeDurations, alertReceivers];
