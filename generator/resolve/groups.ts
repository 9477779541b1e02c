// Reads the group/host structure of an inventory (pigsty-infra.md §1.1) and the module of each group.

import { err } from '../diagnostics.js';
import type { Diagnostic, GroupInfo, GroupModule, Json, JsonObject, Path } from '../types.js';
import { isIPv4 } from '../util/text.js';
import { setOwn } from '../util/object.js';

export interface HostOccurrence {
  ip: string;
  group: string | null;
  vars: JsonObject;
  path: Path;
}

/** A group as Ansible reads it: one per name, however many places declare it. */
export interface StructureGroup extends GroupInfo {
  depth: number;
  priority: number;
  /** The groups that list it under their children (not `all`). */
  parents: string[];
  /** Where each of its vars was set (the last declaration that sets it). */
  varPaths: Record<string, Path>;
  /** Each place the group is declared (its path, and the vars written there), in file order. */
  declarations: { path: Path; vars: JsonObject }[];
}

export interface Structure {
  groups: StructureGroup[];
  /** Every occurrence of a host, in the order of the walk (resolve sorts them by position). */
  occurrences: HostOccurrence[];
  allVars: JsonObject;
}

const isObj = (v: Json | undefined): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

export function moduleOf(name: string, vars: JsonObject): GroupModule {
  if (name === 'infra') return 'infra';
  if (name === 'etcd') return 'etcd';
  if (vars.pg_cluster != null) return 'pgsql';
  if (vars.minio_cluster != null) return 'minio';
  if (vars.redis_cluster != null) return 'redis';
  return 'node';
}

/** The modules a host's resolved vars make it a member of, whatever its groups (see moduleOf). */
export function moduleOfVars(vars: JsonObject): GroupModule[] {
  const out: GroupModule[] = [];
  // (With pg_seq: Pigsty's identity step fails a host without one, pg_cluster in all.vars too.)
  if (vars.pg_cluster != null && vars.pg_seq != null) out.push('pgsql');
  if (vars.minio_cluster != null && vars.minio_seq != null) out.push('minio');
  if (vars.redis_cluster != null) out.push('redis');
  return out;
}

/**
 * A group's ansible_group_priority as Ansible reads it (Python's int(): a number truncated, a
 * boolean 0 or 1, a string of digits with an optional sign, underscores and spaces around); the
 * default 1 otherwise.
 */
export function groupPriority(v: Json | undefined): number {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && /^\s*[+-]?\d+(?:_\d+)*\s*$/.test(v)) return Number.parseInt(v.replace(/_/g, ''), 10);
  return 1;
}

/**
 * Walks all.children (nested children too). A group name is one group, as in Ansible: declared in
 * several places (at the top and again under another group's children, or referred to there with
 * an empty entry: `children: { pg-meta: , pg-test: {} }`), its vars are merged in the order of the
 * walk (a later declaration's value wins), its hosts and parents are the union of all, its depth is
 * the longest chain of parents from `all`, and its members include every descendant's hosts. Shape
 * errors are the schema's job; this only skips them.
 */
export function readStructure(data: JsonObject, diags: Diagnostic[]): Structure {
  const all = isObj(data.all) ? data.all : {};
  const allVars = isObj(all.vars) ? all.vars : {};
  const occurrences: HostOccurrence[] = [];

  const addHosts = (hosts: Json | undefined, group: string | null, base: Path) => {
    if (!isObj(hosts)) return [];
    const ips: string[] = [];
    for (const [ip, hv] of Object.entries(hosts)) {
      const path = [...base, 'hosts', ip];
      if (!isIPv4(ip)) {
        // (Ansible reads `10.10.10.[11:13]` as three hosts, `10.10.10.10:22` as a host and its SSH
        // port: said so, not as a bad address.)
        const range = /\[[0-9a-z]+:[0-9a-z]+(?::\d+)?\]/i.test(ip);
        const port = !range && /^[\d.]+:\d+$/.test(ip) && isIPv4(ip.slice(0, ip.lastIndexOf(':')));
        const hint = range ? 'pigen does not expand Ansible host ranges: list each host by its IPv4 address' : port ? 'a host key is the address alone: pigen reaches no host over SSH (drop the port)' : undefined;
        diags.push(err('bad-host-key', path, `host key \`${ip}\` is ${range ? 'an Ansible host range' : port ? 'an address with a port' : 'not an IPv4 address'}`, hint ? { hint } : {}));
        continue;
      }
      // (An address no machine has: the unspecified one, the broadcast one.)
      if (ip === '0.0.0.0' || ip === '255.255.255.255') {
        diags.push(err('bad-host-key', path, `host key \`${ip}\` is ${ip === '0.0.0.0' ? 'the unspecified address' : 'the broadcast address'}, no machine's`));
        continue;
      }
      ips.push(ip);
      occurrences.push({ ip, group, vars: isObj(hv) ? hv : {}, path });
    }
    return ips;
  };
  addHosts(all.hosts, null, ['all']);

  interface Found {
    name: string;
    path: Path;
    vars: JsonObject;
    varPaths: Record<string, Path>;
    own: string[];
    ownSet: Set<string>;
    parents: Set<string>;
    children: Set<string>;
    declarations: { path: Path; vars: JsonObject }[];
    /** Some declaration has hosts (even bad keys), children, or a `hosts` that is no mapping (the schema's). */
    filled: boolean;
  }
  const found = new Map<string, Found>();
  const visit = (name: string, g: Json, path: Path, parent: string | null) => {
    let f = found.get(name);
    if (!f) found.set(name, (f = { name, path, vars: {}, varPaths: Object.create(null) as Record<string, Path>, own: [], ownSet: new Set(), parents: new Set(), children: new Set(), declarations: [], filled: false }));
    if (parent !== null) f.parents.add(parent);
    // (A null entry refers to a group declared elsewhere; anything else not a mapping is the schema's.)
    if (!isObj(g)) return;
    const vars = isObj(g.vars) ? g.vars : {};
    // (Said where it is first declared, not where it is first referred to.)
    if (f.declarations.length === 0) f.path = path;
    f.declarations.push({ path, vars });
    for (const [k, v] of Object.entries(vars)) {
      setOwn(f.vars, k, v);
      f.varPaths[k] = [...path, 'vars', k];
    }
    for (const ip of addHosts(g.hosts, name, path)) if (!f.ownSet.has(ip)) f.ownSet.add(ip), f.own.push(ip);
    if ((isObj(g.hosts) && Object.keys(g.hosts).length > 0) || isObj(g.children) || (g.hosts !== undefined && g.hosts !== null && !isObj(g.hosts))) f.filled = true;
    if (isObj(g.children)) {
      for (const [cn, cg] of Object.entries(g.children)) {
        f.children.add(cn);
        visit(cn, cg, [...path, 'children', cn], name);
      }
    }
  };
  if (isObj(all.children)) for (const [name, g] of Object.entries(all.children)) visit(name, g, ['all', 'children', name], null);

  // Depth: the longest chain of parents from `all` (a group only at the top: 1). A cycle is an error.
  const depths = new Map<string, number>();
  const onPath = new Set<string>();
  const depthOf = (name: string): number => {
    const known = depths.get(name);
    if (known !== undefined) return known;
    if (onPath.has(name)) return 0;
    onPath.add(name);
    let d = 1;
    for (const p of found.get(name)!.parents) {
      if (onPath.has(p)) {
        diags.push(err('bad-value', [...found.get(name)!.path], `group \`${name}\` is among its own ancestors (through \`${p}\`)`, { hint: 'a group cannot contain itself, directly or through its children' }));
        continue;
      }
      d = Math.max(d, depthOf(p) + 1);
    }
    onPath.delete(name);
    depths.set(name, d);
    return d;
  };
  // Members: a group's own hosts and every descendant's.
  const membersOf = (name: string): string[] => {
    const out = new Set<string>();
    const seen = new Set<string>();
    const walk = (n: string) => {
      if (seen.has(n)) return;
      seen.add(n);
      const f = found.get(n)!;
      for (const h of f.own) out.add(h);
      for (const c of f.children) walk(c);
    };
    walk(name);
    return [...out];
  };
  const groups: StructureGroup[] = [];
  for (const f of found.values()) {
    // A group with no hosts of its own and no child groups, wherever it is declared: bin/validate
    // rejects it. (Hosts with bad keys are reported as such; the group is not empty then.)
    if (!f.filled) diags.push(err('empty-group', f.path, `group \`${f.name}\` has no hosts`));
    const members = f.children.size ? membersOf(f.name) : f.own;
    groups.push({
      name: f.name,
      module: moduleOf(f.name, f.vars),
      hosts: members,
      vars: f.vars,
      path: f.path,
      depth: depthOf(f.name),
      priority: groupPriority(f.vars.ansible_group_priority),
      parents: [...f.parents],
      varPaths: f.varPaths,
      declarations: f.declarations,
    });
  }
  return { groups, occurrences, allVars };
}
