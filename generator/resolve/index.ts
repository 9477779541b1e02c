// Resolve stage: defaults < all.vars < group vars < host vars < --set (dicts and lists replace, as in
// Ansible), placeholders, identity (nodename, cluster, modules), then the rules.

import { err, pathKey, warn } from '../diagnostics.js';
import type {
  Diagnostic,
  GroupModule,
  Inventory,
  Json,
  JsonObject,
  Loaded,
  Path,
  ResolveOptions,
  ResolvedNode,
  Result,
  SetVar,
} from '../types.js';
import { compareIp, didYouMean, isIPv4 } from '../util/text.js';
import { moduleOfVars, readStructure } from './groups.js';
import { setOwn } from '../util/object.js';
import { ADMIN_IP_FIELDS, checkPlaceholders, substituteAdminIp } from './placeholders.js';
import { RULES } from './rules.js';
import { knownParams, paramDefaults, isForeignParam, pgInstance } from './params.js';

const MODULE_ORDER: GroupModule[] = ['infra', 'node', 'etcd', 'minio', 'pgsql', 'redis'];
/** Top-level parameters `${admin_ip}` is substituted in (their values are copied per node). */
const ADMIN_IP_KEYS = [...new Set(ADMIN_IP_FIELDS.map((f) => f[0]!))];

export function resolve(loaded: Loaded, schema: JsonObject, opts: ResolveOptions): Result<Inventory> {
  const diags: Diagnostic[] = [];
  const { groups, occurrences, allVars } = readStructure(loaded.data, diags);
  const defaults = paramDefaults(schema);
  const known = knownParams(schema);

  // Unknown parameter names, in every vars block.
  const checkNames = (vars: JsonObject, base: Path) => {
    for (const k of Object.keys(vars)) {
      if (known.has(k) || isForeignParam(k)) continue;
      const guess = didYouMean(k, known);
      const d = (opts.strict ? err : warn)('unknown-param', [...base, k], `unknown parameter \`${k}\``, {
        hint: guess ? `did you mean \`${guess}\`?` : 'pigen does not know this parameter; it is carried through untouched',
      });
      diags.push(d);
    }
    diags.push(...checkPlaceholders(vars, base));
  };
  checkNames(allVars, ['all', 'vars']);
  for (const g of groups) for (const d of g.declarations) checkNames(d.vars, [...d.path, 'vars']);
  for (const o of occurrences) checkNames(o.vars, o.path);
  opts.sets.forEach((s, i) => {
    if (!known.has(s.key) && !isForeignParam(s.key)) {
      const guess = didYouMean(s.key, known);
      diags.push((opts.strict ? err : warn)('unknown-param', ['--set', i, s.key], `unknown parameter \`${s.key}\` in --set ${s.raw}`, guess ? { hint: `did you mean \`${guess}\`?` } : {}));
    }
    diags.push(...checkPlaceholders({ [s.key]: s.value }, ['--set', i]));
  });

  // Group order as Ansible applies group vars: depth, then ansible_group_priority, then name.
  const ordered = [...groups].sort((a, b) => a.depth - b.depth || a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // Global scope (for fleet-wide values like admin_ip).
  const globals: JsonObject = { ...defaults };
  const globalOrigins: Record<string, Path> = {};
  for (const [k, v] of Object.entries(allVars)) {
    setOwn(globals, k, v);
    setOwn(globalOrigins, k, ['all', 'vars', k]);
  }
  opts.sets.forEach((s, i) => {
    setOwn(globals, s.key, s.value);
    setOwn(globalOrigins, s.key, ['--set', i, s.key]);
  });
  const adminIp = typeof globals.admin_ip === 'string' ? globals.admin_ip : String(globals.admin_ip);
  // admin_ip is the fleet's (the repo, DNS and ${admin_ip} of every node): one in a group's or a
  // host's vars is not read, so it is said.
  for (const [vars, base] of [...groups.flatMap((g) => g.declarations.map((d) => [d.vars, [...d.path, 'vars']] as const)), ...occurrences.map((o) => [o.vars, o.path] as const)]) {
    if (Object.prototype.hasOwnProperty.call(vars, 'admin_ip')) {
      diags.push(warn('admin-ip-scope', [...base, 'admin_ip'], `admin_ip is the fleet's: pigen reads it from all.vars (or --set) only, so this one is ignored (the fleet's is ${adminIp}${globalOrigins.admin_ip ? '' : ', the default'})`, { atKey: true }));
    }
  }

  // A host's entries apply in the order the file gives them, as Ansible reads it (the last one's
  // value wins): the walk above takes a group's own hosts before its children's, and JavaScript
  // lists integer-like keys first.
  const at = new Map(
    occurrences.map((o) => {
      const p = loaded.positions.get(pathKey(o.path));
      const pos = p?.key ?? p?.value;
      return [o, pos ? pos.line * 1e6 + pos.col : Infinity] as const;
    }),
  );
  occurrences.sort((a, b) => at.get(a)! - at.get(b)!);
  const ips = [...new Set(occurrences.map((o) => o.ip))].sort(compareIp);
  // Indexes so large fleets resolve in linear time.
  const occByIp = new Map<string, typeof occurrences>();
  for (const o of occurrences) {
    const l = occByIp.get(o.ip);
    if (l) l.push(o);
    else occByIp.set(o.ip, [o]);
  }
  // The groups of each host, in application order (one pass over the memberships).
  const groupsByIp = new Map<string, typeof ordered>();
  for (const g of ordered) {
    for (const h of new Set(g.hosts)) {
      const l = groupsByIp.get(h);
      if (l) l.push(g);
      else groupsByIp.set(h, [g]);
    }
  }
  // The fleet's values with `${admin_ip}` substituted (the same on every node but the admin node,
  // which leaves its own address out of node_ntp_servers), once: every node inherits them.
  const fleet: JsonObject = Object.create(globals) as JsonObject;
  for (const k of ADMIN_IP_KEYS) if (k in globals) fleet[k] = structuredClone(globals[k]!);
  substituteAdminIp(fleet, adminIp, false);
  const nodes: ResolvedNode[] = [];
  for (const ip of ips) {
    // (The fleet's values are its prototype, not copied: a node's own keys are what its groups,
    // its host entry and --set give it. Reads see both; no stage lists a node's keys.)
    const vars: JsonObject = Object.create(fleet) as JsonObject;
    const origins: Record<string, Path> = { ...globalOrigins };
    const memberOf = groupsByIp.get(ip) ?? [];
    for (const g of memberOf) {
      for (const [k, v] of Object.entries(g.vars)) {
        // (Ansible's own, read as the group's priority: no variable of its hosts.)
        if (k === 'ansible_group_priority') continue;
        setOwn(vars, k, v);
        setOwn(origins, k, g.varPaths[k]!);
      }
    }
    const occ = occByIp.get(ip) ?? [];
    for (const o of occ) {
      for (const [k, v] of Object.entries(o.vars)) {
        setOwn(vars, k, v);
        setOwn(origins, k, [...o.path, k]);
      }
    }
    opts.sets.forEach((s, i) => {
      setOwn(vars, s.key, s.value);
      setOwn(origins, s.key, ['--set', i, s.key]);
    });
    // `vars` is the node's own object; of its values, a copy of its own only for what substitution
    // rewrites (those it sets itself; on the admin node, all: from the fleet's as written): the
    // rest is shared between nodes, read-only from here on (no later stage writes into node vars).
    const isAdmin = ip === adminIp;
    for (const k of ADMIN_IP_KEYS) {
      if (Object.prototype.hasOwnProperty.call(vars, k)) vars[k] = structuredClone(vars[k]!);
      else if (isAdmin && k in globals) vars[k] = structuredClone(globals[k]!);
    }
    substituteAdminIp(vars, adminIp, isAdmin);

    const modules = new Set<GroupModule>(['node']);
    for (const g of memberOf) modules.add(g.module);
    // (And from the node's own resolved vars, as Pigsty's playbooks pick their hosts: pgsql.yml
    // runs on every host with pg_cluster defined, minio.yml on those with minio_cluster and
    // minio_seq, redis.yml on those with redis_cluster. Pigsty's own ha/citus.yml sets pg_cluster
    // per host in one group: a review found its 12 nodes given no PGSQL targets or DNS records.)
    for (const m of moduleOfVars(vars)) modules.add(m);
    const { nodename, source } = nodenameOf(ip, vars);
    let cluster = typeof vars.node_cluster === 'string' ? vars.node_cluster : 'nodes';
    if (cluster === 'nodes' && vars.node_id_from_pg !== false && typeof vars.pg_cluster === 'string') cluster = vars.pg_cluster;
    nodes.push({
      ip,
      nodename,
      nodenameSource: source,
      cluster,
      groups: memberOf.map((g) => g.name).sort(),
      modules: MODULE_ORDER.filter((m) => modules.has(m)),
      vars,
      origins,
      path: occ[0]!.path,
    });
  }

  const infra = nodes
    .filter((n) => n.modules.includes('infra'))
    .sort((a, b) => seqOf(a) - seqOf(b) || compareIp(a.ip, b.ip))
    .map((n) => n.ip);
  const inventory: Inventory = {
    file: loaded.file,
    adminIp,
    ...(globalOrigins.admin_ip ? { adminIpOrigin: globalOrigins.admin_ip } : {}),
    groups: groups.map(({ name, module, hosts, vars, path }) => ({ name, module, hosts: [...hosts].sort(compareIp), vars, path })),
    nodes,
    infra,
    globals,
  };
  if (!isIPv4(adminIp)) {
    diags.push(err('admin-ip-invalid', globalOrigins.admin_ip ?? ['all', 'vars'], `admin_ip \`${adminIp}\` is not an IPv4 address`));
  }
  for (const rule of RULES) diags.push(...rule(inventory, loaded, known));
  // (With errors too: the pipeline builds nothing from it then, and keeps it as a draft.)
  return { value: inventory, diagnostics: diags };
}


const seqOf = (n: ResolvedNode) => (typeof n.vars.infra_seq === 'number' ? n.vars.infra_seq : Number.MAX_SAFE_INTEGER);

/** pigsty-infra.md §1.2: <pg_cluster>-<pg_seq> when node_id_from_pg, else nodename, else from the IP. */
export function nodenameOf(ip: string, vars: JsonObject): { nodename: string; source: ResolvedNode['nodenameSource'] } {
  const pg = pgInstance(vars);
  if (vars.node_id_from_pg !== false && pg !== undefined) return { nodename: pg, source: 'pg' };
  if (typeof vars.nodename === 'string' && vars.nodename !== '') return { nodename: vars.nodename, source: 'nodename' };
  return { nodename: `node-${ip.replace(/\./g, '-')}`, source: 'ip' };
}

/** Parses `--set KEY=VALUE` with the same YAML 1.1 scalar rules as the inventory. */
export function parseSet(raw: string, parseValue: (s: string) => { value: Json; wholeFloats?: SetVar['wholeFloats'] } | { error: string }): SetVar | Diagnostic {
  const eq = raw.indexOf('=');
  const key = eq > 0 ? raw.slice(0, eq).trim() : '';
  if (eq === 0) return err('bad-set', ['--set'], 'a --set has no KEY before its `=`');
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
    // (Its first word only: what follows may be a password, `--set grafana_admin_password: x`.)
    const head = /^[^=:\s]*/.exec(raw)![0].slice(0, 60);
    return err('bad-set', ['--set'], `\`${head.length < raw.length ? `${head} …` : raw}\` is not KEY=VALUE`);
  }
  const parsed = parseValue(raw.slice(eq + 1));
  if ('error' in parsed) return err('bad-set', ['--set', key], `cannot read the value of --set ${key}: ${parsed.error}`, { hint: 'the value is read as YAML, e.g. --set nginx_port=8080 or --set "node_etc_hosts=[\'1.2.3.4 x.pigsty\']"' });
  return { key, value: parsed.value, raw, ...(parsed.wholeFloats ? { wholeFloats: parsed.wholeFloats } : {}) };
}

export type { Json };
