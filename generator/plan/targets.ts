// Scrape targets for the whole fleet (pigsty-infra.md §3.2). Every infra node receives every target
// file, so each one scrapes the whole fleet independently (replicas, not federation).

import type { FilePlan, Inventory, Json, ResolvedNode } from '../types.js';
import { Vars } from './vars.js';
import { pgInstance } from '../resolve/params.js';

type Target = { labels: Record<string, string>; targets: string[] };
const file = (path: string, data: Target[]): FilePlan => ({
  path,
  kind: 'scrape-targets',
  mode: '0644',
  owner: 'root:root',
  data: data as unknown as Json,
});

function nodeTargets(n: ResolvedNode): FilePlan[] {
  const v = new Vars(n.vars);
  const labels = { ip: n.ip, ins: n.nodename, cls: n.cluster };
  const out: FilePlan[] = [];
  const ports: string[] = [];
  if (v.on('node_exporter_enabled')) ports.push(`${n.ip}:${v.num('node_exporter_port', 9100)}`);
  // (haproxy and the VIP's keepalived are NODE parts pigen does not install: not scraped, or
  // their Down alerts would fire on every node; rules.ts: notApplied warns where they are set.)
  if (v.on('vector_enabled')) ports.push(`${n.ip}:${v.num('vector_port', 9598)}`);
  if (ports.length) out.push(file(`/infra/targets/node/${n.ip}.yml`, [{ labels, targets: ports }]));
  out.push(file(`/infra/targets/ping/${n.ip}.yml`, [{ labels, targets: [n.ip] }]));
  const m = new Set(n.modules);
  if (m.has('pgsql')) {
    // The PostgreSQL instance, <pg_cluster>-<pg_seq> (Pigsty's pg_instance), whatever the node is
    // named (node_id_from_pg: false, or a nodename of its own); the node's name without them.
    const cls = v.str('pg_cluster', n.cluster);
    const ins = pgInstance(n.vars) ?? n.nodename;
    const pg = [`${n.ip}:${v.num('pg_exporter_port', 9630)}`, `${n.ip}:${v.num('pgbouncer_exporter_port', 9631)}`, `${n.ip}:${v.num('patroni_port', 8008)}`, `${n.ip}:${v.num('pgbackrest_exporter_port', 9854)}`];
    out.push(file(`/infra/targets/pgsql/${ins}.yml`, [{ labels: { ip: n.ip, ins, cls }, targets: pg }]));
  }
  if (m.has('etcd')) {
    const cls = v.str('etcd_cluster', 'etcd');
    const ins = `${cls}-${v.num('etcd_seq', 0)}`;
    out.push(file(`/infra/targets/etcd/${ins}.yml`, [{ labels: { ip: n.ip, ins, cls }, targets: [`${n.ip}:${v.num('etcd_port', 2379)}`] }]));
  }
  if (m.has('minio')) {
    const cls = v.str('minio_cluster', 'minio');
    const ins = `${cls}-${v.num('minio_seq', 0)}`;
    out.push(file(`/infra/targets/minio/${ins}.yml`, [{ labels: { ip: n.ip, ins, cls }, targets: [`${n.ip}:${v.num('minio_port', 9000)}`] }]));
  }
  if (m.has('redis')) {
    const cls = v.str('redis_cluster', 'redis');
    const ins = `${cls}-${v.num('redis_node', 0)}`;
    const ports = Object.keys(v.obj('redis_instances')).map(Number).sort((a, b) => a - b);
    const targets = ports.map((p) => `redis://${n.ip}:${p}`);
    if (targets.length) out.push(file(`/infra/targets/redis/${ins}.yml`, [{ labels: { ip: n.ip, ins, cls }, targets }]));
  }
  return out;
}

function infraTargets(n: ResolvedNode): FilePlan {
  const v = new Vars(n.vars);
  const seq = v.num('infra_seq', 0);
  const comp: [string, string, number][] = [];
  const add = (on: boolean, name: string, port: number) => on && comp.push([name, `${name}-${seq}`, port]);
  add(v.on('nginx_enabled') && v.on('nginx_exporter_enabled'), 'nginx', v.num('nginx_exporter_port', 9113));
  add(v.on('vmetrics_enabled'), 'vmetrics', v.num('vmetrics_port', 8428));
  add(v.on('vlogs_enabled'), 'vlogs', v.num('vlogs_port', 9428));
  add(v.on('vtraces_enabled'), 'vtraces', v.num('vtraces_port', 10428));
  add(v.on('vmalert_enabled') && v.on('vmetrics_enabled'), 'vmalert', v.num('vmalert_port', 8880));
  add(v.on('alertmanager_enabled'), 'alertmanager', v.num('alertmanager_port', 9059));
  add(v.on('blackbox_enabled'), 'blackbox', v.num('blackbox_port', 9115));
  add(v.on('grafana_enabled'), 'grafana', v.num('grafana_port', 3000));
  return file(
    `/infra/targets/infra/infra-${seq}.yml`,
    comp.map(([cls, ins, port]) => ({ labels: { ip: n.ip, ins, cls }, targets: [`${n.ip}:${port}`] })),
  );
}

/** Every target file of the fleet, sorted by path. */
export function fleetTargets(inv: Inventory): FilePlan[] {
  const files: FilePlan[] = [];
  for (const n of inv.nodes) {
    files.push(...nodeTargets(n));
    if (n.modules.includes('infra')) files.push(infraTargets(n));
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
