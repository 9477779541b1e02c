// Plan stage: one typed model per node, independent of delivery (user-data, image, rootfs).

import type { Inventory, JsonObject, NodePlan, Plan, ResolvedNode } from '../types.js';
import { byCodeUnit } from '../util/text.js';
import { planInfra, uniqueFiles } from './infra.js';
import { exchanged, planAdmin, planNodeBase } from './node.js';
import { osProfile } from './os.js';
import { Vars } from './vars.js';
import type { Secrets } from '../secrets/index.js';

export function plan(inv: Inventory, secrets?: Secrets): Plan {
  return { nodes: inv.nodes.map((n) => planNode(inv, n, secrets)) };
}

/**
 * Everything planNode reads beyond the node itself, for a node that is not an infra node (an infra
 * node's plan reads the whole fleet: planInfra), as plain data: the admin IP, the infra nodes and
 * their own vars (vector_log_endpoint `[infra]`), the nodes that exchange nodenames, the fleet's
 * values every node inherits, the secrets. Two builds whose fleet inputs are equal plan such a
 * node the same when its nodeInputs are equal (the compile memo of pigen build --watch plans only
 * the others). Kept beside planNode: a new read of the fleet there belongs here too (test:
 * watch.test.ts compares memoised builds with fresh ones over edits of every kind).
 */
export function fleetInputs(inv: Inventory, secrets?: Secrets): unknown {
  const byIp = new Map(inv.infra.map((ip) => [ip, inv.nodes.find((x) => x.ip === ip)]));
  return {
    adminIp: inv.adminIp,
    infra: inv.infra.map((ip) => ({ ip, vars: ownVars(byIp.get(ip)?.vars ?? {}) })),
    exchanged: exchanged(inv),
    globals: inv.globals,
    secrets: secrets ?? null,
  };
}

/** What planNode reads of the node itself (a node that is no infra node: fleetInputs), as plain data. */
export function nodeInputs(n: ResolvedNode): unknown {
  return { ...n, vars: ownVars(n.vars) };
}

/** A node's own vars (those it does not inherit from the fleet's: resolve) as a plain object. */
function ownVars(v: JsonObject): JsonObject {
  const out: JsonObject = {};
  // (defineProperty: a key named __proto__ stays data.)
  for (const k of Object.keys(v)) Object.defineProperty(out, k, { value: v[k], enumerable: true, writable: true, configurable: true });
  return out;
}

export function planNode(inv: Inventory, n: Inventory['nodes'][number], secrets?: Secrets): NodePlan {
  const v = new Vars(n.vars);
  const os = osProfile(v.str('os_profile', 'd12'));
  const base = planNodeBase(inv, n, os);
  const admin = planAdmin(v, secrets, n.modules.includes('infra'));
  const parts = [base, admin];
  if (n.modules.includes('infra')) parts.push({ ...planInfra(inv, n, os, secrets), apt: [] });
  // Every node trusts the CA (cloud-init ca_certs) and has it at Pigsty's path.
  if (secrets) base.files.push({ path: '/etc/pki/ca.crt', kind: 'ca-cert', mode: '0644', owner: 'root:root', content: secrets.ca.cert });
  const all = <K extends 'files' | 'packages' | 'services' | 'restart' | 'users' | 'dirs' | 'early' | 'late'>(k: K) => parts.flatMap((p) => p[k] as NodePlan[K][number][]);
  const users = all('users');
  const groups = [...new Set(users.flatMap((u) => u.groups))].sort(byCodeUnit);
  const timezone = v.str('node_timezone');
  return {
    ip: n.ip,
    nodename: n.nodename,
    cluster: n.cluster,
    modules: n.modules,
    os,
    ...(base.hostname ? { hostname: base.hostname } : {}),
    files: uniqueFiles(all('files')).sort((a, b) => byCodeUnit(a.path, b.path)),
    links: n.modules.includes('infra') ? infraLinks(v) : [],
    dirs: all('dirs').sort((a, b) => byCodeUnit(a.path, b.path)),
    packages: [...new Set(all('packages'))].sort(byCodeUnit),
    groups,
    users: users.sort((a, b) => byCodeUnit(a.name, b.name)),
    ...(admin.admin ? { admin: admin.admin } : {}),
    services: all('services'),
    masked: n.modules.includes('infra') || v.on('node_exporter_enabled') ? os.conflictingUnits : [],
    restart: [...new Set(all('restart'))],
    aptSources: base.apt,
    repoRemove: v.on('node_repo_remove'),
    early: all('early'),
    late: all('late'),
    ...(timezone ? { timezone } : {}),
    ...(secrets ? { caCert: secrets.ca.cert } : {}),
  };
}

function infraLinks(v: Vars) {
  const links = [{ path: '/infra', target: '/data/infra' }];
  if (v.on('nginx_enabled')) links.push({ path: v.str('nginx_home', '/www'), target: v.str('nginx_data', '/data/nginx') });
  return links.sort((a, b) => byCodeUnit(a.path, b.path));
}
