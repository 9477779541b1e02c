// Reads the group/host structure of an inventory (pigsty-infra.md §1.1) and the module of each group.

import { err } from '../diagnostics.js';
import type { Diagnostic, GroupInfo, GroupModule, Json, JsonObject, Path } from '../types.js';
import { isIPv4 } from '../util/text.js';

export interface HostOccurrence {
  ip: string;
  group: string | null;
  vars: JsonObject;
  path: Path;
}

export interface Structure {
  groups: (GroupInfo & { depth: number; priority: number; parents: string[] })[];
  /** Every occurrence of a host, in file order. */
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

/** Walks all.children (nested children too). Shape errors are the schema's job; this only skips them. */
export function readStructure(data: JsonObject, diags: Diagnostic[]): Structure {
  const all = isObj(data.all) ? data.all : {};
  const allVars = isObj(all.vars) ? all.vars : {};
  const groups: Structure['groups'] = [];
  const occurrences: HostOccurrence[] = [];

  const addHosts = (hosts: Json | undefined, group: string | null, base: Path) => {
    if (!isObj(hosts)) return [];
    const ips: string[] = [];
    for (const [ip, hv] of Object.entries(hosts)) {
      const path = [...base, 'hosts', ip];
      if (!isIPv4(ip)) {
        diags.push(err('bad-host-key', path, `host key \`${ip}\` is not an IPv4 address`));
        continue;
      }
      ips.push(ip);
      occurrences.push({ ip, group, vars: isObj(hv) ? hv : {}, path });
    }
    return ips;
  };
  addHosts(all.hosts, null, ['all']);

  const visit = (name: string, g: Json, path: Path, depth: number, parents: string[]) => {
    if (!isObj(g)) return;
    const vars = isObj(g.vars) ? g.vars : {};
    const hosts = addHosts(g.hosts, name, path);
    const prio = typeof vars.ansible_group_priority === 'number' ? vars.ansible_group_priority : 1;
    const info = { name, module: moduleOf(name, vars), hosts, vars, path, depth, priority: prio, parents };
    groups.push(info);
    if (isObj(g.children)) {
      for (const [cn, cg] of Object.entries(g.children)) visit(cn, cg, [...path, 'children', cn], depth + 1, [...parents, name]);
    }
    // A group with no hosts of its own and no child groups: bin/validate rejects it. (Hosts with
    // bad keys are reported as such; the group is not empty then.)
    if (hosts.length === 0 && !(isObj(g.hosts) && Object.keys(g.hosts).length > 0) && !isObj(g.children)) {
      diags.push(err('empty-group', path, `group \`${name}\` has no hosts`));
    }
  };
  if (isObj(all.children)) for (const [name, g] of Object.entries(all.children)) visit(name, g, ['all', 'children', name], 1, []);

  // Child groups' hosts are members of their parents too.
  const byName = new Map(groups.map((g) => [g.name, g]));
  const members = new Map<string, Set<string>>();
  for (const g of groups) for (const p of g.parents) {
    const pg = byName.get(p);
    if (!pg) continue;
    let has = members.get(p);
    if (!has) members.set(p, (has = new Set(pg.hosts)));
    for (const h of g.hosts) if (!has.has(h)) has.add(h), pg.hosts.push(h);
  }
  return { groups, occurrences, allVars };
}
