// Resolve on real inventories: node counts, infra nodes, admin_ip, nodenames, modules, portal
// entries and resolved values as pigsty-infra.md implies; precedence on the project's own fixtures.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, SHARED, needShared } from './helpers.ts';
import { loadAndResolve } from '../generator/pipeline.ts';
import { readAssets } from '../generator/io.ts';
import { parseSet } from '../generator/resolve/index.ts';
import { parseSetValue } from '../generator/cli/common.ts';
import { hasErrors } from '../generator/diagnostics.ts';
import { compile } from '../generator/compile.ts';
import { DEFAULT_UPSTREAM_MODULES } from '../generator/resolve/rules.ts';
import { defaultUpstream } from '../generator/plan/repo.ts';
import { osProfile } from '../generator/plan/os.ts';
import type { Inventory, Json } from '../generator/types.ts';

const assets = readAssets();
function resolveText(text: string, sets: string[] = [], name = 'inline.yml'): ReturnType<typeof loadAndResolve> {
  const parsedSets = sets.map((s) => parseSet(s, parseSetValue) as { key: string; value: Json; raw: string });
  return loadAndResolve({ name, bytes: Buffer.from(text) }, assets, { sets: parsedSets, strict: false });
}
function fixture(name: string): Inventory {
  const r = loadAndResolve({ name, bytes: readFileSync(join(SHARED!, 'pigsty-conf', name)) }, assets, { sets: [], strict: false });
  assert.not.ok(hasErrors(r.diagnostics), JSON.stringify(r.diagnostics.filter((d) => d.severity === 'error'), null, 1));
  return r.inventory!;
}
const node = (inv: Inventory, ip: string) => inv.nodes.find((n) => n.ip === ip)!;

test('all six shared inventories validate with no errors', () => {
  if (!needShared('resolve on shared inventories')) return;
  for (const f of ['meta.yml', 'rich.yml', 'full.yml', 'simu.yml', 'el.yml', 'debian.yml']) fixture(f);
});

test('meta.yml: one node, pg-meta-1, every module, online repos, portal with a ${admin_ip} endpoint', () => {
  if (!SHARED) return;
  const inv = fixture('meta.yml');
  assert.is(inv.nodes.length, 1);
  assert.equal(inv.infra, ['10.10.10.10']);
  assert.is(inv.adminIp, '10.10.10.10');
  const n = node(inv, '10.10.10.10');
  assert.is(n.nodename, 'pg-meta-1');
  assert.is(n.cluster, 'pg-meta');
  assert.equal(n.modules, ['infra', 'node', 'etcd', 'pgsql']);
  assert.is(n.vars.repo_enabled, false, 'infra group vars');
  assert.is(n.vars.node_repo_modules, 'node,infra,pgsql');
  assert.is(n.vars.nodename_overwrite, false);
  assert.equal(Object.keys(n.vars.infra_portal as object), ['home', 'pgadmin']);
  assert.is((n.vars.infra_portal as Record<string, Record<string, string>>).pgadmin!.endpoint, '10.10.10.10:8885');
  assert.equal(n.vars.node_etc_hosts, ['10.10.10.10 i.pigsty sss.pigsty']);
  assert.is(n.vars.nginx_port, 80, 'default');
  assert.is(n.vars.vmetrics_port, 8428, 'default');
  assert.equal(n.vars.node_firewall_public_port, [22, 80, 443, 5432], 'all.vars replaces the default list');
  assert.is(n.vars.pg_version, 18);
});

test('full.yml: four nodes, one infra, a 3-node pg-test cluster with redis, local repo by default', () => {
  if (!SHARED) return;
  const inv = fixture('full.yml');
  assert.equal(inv.nodes.map((n) => n.ip), ['10.10.10.10', '10.10.10.11', '10.10.10.12', '10.10.10.13']);
  assert.equal(inv.infra, ['10.10.10.10']);
  assert.equal(inv.nodes.map((n) => n.nodename), ['pg-meta-1', 'pg-test-1', 'pg-test-2', 'pg-test-3']);
  for (const ip of ['10.10.10.11', '10.10.10.12', '10.10.10.13']) {
    assert.is(node(inv, ip).cluster, 'pg-test');
    assert.ok(node(inv, ip).modules.includes('pgsql'));
    assert.not.ok(node(inv, ip).modules.includes('infra'));
  }
  assert.is(node(inv, '10.10.10.11').vars.node_repo_modules, 'local', 'role default');
});

test('simu.yml: 20 nodes, 3 infra replicas by infra_seq, NTP from the admin node dropped only on it', () => {
  if (!SHARED) return;
  const inv = fixture('simu.yml');
  assert.is(inv.nodes.length, 20);
  assert.equal(inv.infra, ['10.10.10.10', '10.10.10.11', '10.10.10.12']);
  assert.equal(inv.infra.map((ip) => node(inv, ip).vars.infra_seq), [1, 2, 3]);
  assert.is(inv.adminIp, '10.10.10.10');
  assert.is(node(inv, '10.10.10.11').vars.repo_enabled, false);
  assert.is(node(inv, '10.10.10.12').vars.repo_enabled, false);
  const names = inv.nodes.map((n) => n.nodename);
  assert.is(new Set(names).size, 20, 'nodenames unique');
  const portal = node(inv, '10.10.10.10').vars.infra_portal as Record<string, unknown>;
  assert.is(Object.keys(portal).length, 8);
  const dns = node(inv, '10.10.10.21').vars.node_dns_servers as string[];
  assert.ok(dns.length >= 2 && dns.every((s) => /^10\.10\.10\.1[0-2]$/.test(s)), JSON.stringify(dns));
  assert.equal(node(inv, '10.10.10.21').vars.node_ntp_servers, ['pool cn.pool.ntp.org iburst', 'pool 10.10.10.10 iburst']);
});

test('${admin_ip} in NTP servers: substituted elsewhere, the line dropped on the admin node itself', () => {
  const r = resolveText(`all:
  vars: { admin_ip: 10.10.10.10, node_ntp_servers: ['pool pool.ntp.org iburst', 'server \${admin_ip} iburst'], node_dns_servers: ['\${admin_ip}'] }
  children:
    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }
    web: { hosts: { 10.10.10.11: {} } }
`);
  assert.not.ok(hasErrors(r.diagnostics), JSON.stringify(r.diagnostics));
  const inv = r.inventory!;
  assert.equal(node(inv, '10.10.10.10').vars.node_ntp_servers, ['pool pool.ntp.org iburst']);
  assert.equal(node(inv, '10.10.10.11').vars.node_ntp_servers, ['pool pool.ntp.org iburst', 'server 10.10.10.10 iburst']);
  assert.equal(node(inv, '10.10.10.11').vars.node_dns_servers, ['10.10.10.10']);
});

test('precedence: defaults < all.vars < group vars (by name) < host vars < --set; lists replace', () => {
  const text = `all:
  vars: { admin_ip: 10.10.10.10, nginx_port: 81, node_etc_hosts: ['\${admin_ip} a.pigsty'] }
  children:
    infra:
      hosts: { 10.10.10.10: { infra_seq: 1, vlogs_port: 9500 } }
      vars: { nginx_port: 82, node_etc_hosts: ['1.2.3.4 b.pigsty'] }
    zzz:
      hosts: { 10.10.10.10: { nodename: box1 } }
      vars: { nginx_port: 83 }
`;
  const r = resolveText(text);
  assert.not.ok(hasErrors(r.diagnostics));
  const n = r.inventory!.nodes[0]!;
  assert.is(n.vars.nginx_port, 83, 'groups apply by name: zzz after infra');
  assert.is(n.vars.vlogs_port, 9500, 'host var');
  assert.equal(n.vars.node_etc_hosts, ['1.2.3.4 b.pigsty'], 'a list replaces, never merges');
  assert.is(n.vars.grafana_port, 3000, 'default');
  assert.is(n.nodename, 'box1');
  const s = resolveText(text, ['nginx_port=8080', 'vlogs_port=9600']);
  assert.is(s.inventory!.nodes[0]!.vars.nginx_port, 8080);
  assert.is(s.inventory!.nodes[0]!.vars.vlogs_port, 9600, '--set beats host vars');
  assert.equal(s.inventory!.nodes[0]!.origins.nginx_port, ['--set', 0, 'nginx_port']);
});

test('nodename: pg identity, then nodename, then derived from the IP; node_cluster from pg_cluster', () => {
  const r = resolveText(`all:
  vars: { admin_ip: 10.10.10.10 }
  children:
    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }
    pg-x:
      vars: { pg_cluster: pg-x }
      hosts: { 10.10.10.11: { pg_seq: 2, pg_role: primary, nodename: ignored } }
    web:
      hosts: { 10.10.10.12: { nodename: web-1 } }
    other:
      vars: { node_id_from_pg: false }
      hosts: { 10.10.10.13: { pg_cluster: pg-y, pg_seq: 1, nodename: kept } }
`);
  assert.not.ok(hasErrors(r.diagnostics), JSON.stringify(r.diagnostics));
  const inv = r.inventory!;
  assert.is(node(inv, '10.10.10.10').nodename, 'node-10-10-10-10');
  assert.is(node(inv, '10.10.10.11').nodename, 'pg-x-2');
  assert.is(node(inv, '10.10.10.11').cluster, 'pg-x');
  assert.is(node(inv, '10.10.10.12').nodename, 'web-1');
  assert.is(node(inv, '10.10.10.12').cluster, 'nodes');
  assert.is(node(inv, '10.10.10.13').nodename, 'kept');
  assert.equal(node(inv, '10.10.10.11').modules, ['node', 'pgsql']);
});

test('the project fixtures resolve (anchors, merge keys, YAML 1.1 booleans)', () => {
  const r = loadAndResolve({ name: 'two-infra.yml', bytes: readFileSync(join(ROOT, 'test/fixtures/two-infra.yml')) }, assets, { sets: [], strict: false });
  assert.not.ok(hasErrors(r.diagnostics), JSON.stringify(r.diagnostics));
  assert.is(r.inventory!.infra.length, 2);
});


test('node vars are shared between nodes (only the ${admin_ip} fields are copied): no later stage writes into them', async () => {
  const { compileInventory, loadForBuild } = await import('./tree.ts');
  const { compile } = await import('../generator/compile.ts');
  const { packageVersion } = await import('../generator/io.ts');
  const inputs: { cwd: string; arg?: string }[] = [{ cwd: ROOT, arg: 'test/fixtures/two-infra.yml' }, { cwd: '/' }];
  if (SHARED) for (const f of ['meta', 'full', 'simu']) inputs.push({ cwd: SHARED, arg: `pigsty-conf/${f}.yml` });
  const freeze = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || Object.isFrozen(v)) return;
    Object.freeze(v);
    for (const x of Object.values(v)) freeze(x);
  };
  for (const input of inputs) {
    const inv = loadForBuild(input);
    const [a, b] = inv.nodes;
    if (a && b) {
      // (Every key, the fleet's included: a node's vars inherit them from inv.globals.)
      const keys: string[] = [];
      for (const k in a.vars) keys.push(k);
      assert.ok(keys.some((k) => typeof a.vars[k] === 'object' && a.vars[k] !== null && a.vars[k] === b.vars[k]), 'values are shared');
      assert.is(Object.getPrototypeOf(Object.getPrototypeOf(a.vars)), inv.globals, 'the fleet values are inherited (through the fleet values with ${admin_ip} filled), not copied');
    }
    // Frozen deeply: any write into a node's vars from here on throws (ESM is strict mode).
    // (With what they inherit: the fleet's values.)
    for (const n of inv.nodes) for (let o: object | null = n.vars; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) freeze(o);
    const frozen = compile(inv, readAssets(), { version: packageVersion() });
    const plain = compileInventory(input);
    assert.equal(frozen.tree.map((e) => e.path), plain.tree.map((e) => e.path), `${input.arg ?? 'default'}: same tree`);
  }
});

test('a var named __proto__ is data: the node keeps every value it inherits from the fleet', () => {
  const text = (extra: string) => `all:\n  vars:\n    admin_ip: 10.10.0.10\n    __proto__: { nginx_port: 1 }\n  children:\n    infra:\n      hosts:\n        10.10.0.10: { infra_seq: 1${extra} }\n      vars: { __proto__: 3 }\n`;
  for (const extra of ['', ', __proto__: { nginx_port: 2 }']) {
    const r = resolveText(text(extra), ['__proto__=4']);
    assert.not.ok(hasErrors(r.diagnostics), JSON.stringify(r.diagnostics));
    const n = r.inventory!.nodes[0]!;
    assert.is(n.vars.nginx_port, 80, `the default nginx_port (${extra || 'no host __proto__'})`);
    assert.is(n.vars.admin_ip, '10.10.0.10');
    assert.ok(Object.prototype.hasOwnProperty.call(n.vars, '__proto__'), 'kept as an own key');
    assert.is(Object.getPrototypeOf(Object.getPrototypeOf(n.vars)), r.inventory!.globals);
  }
});

// ── Ansible's reading of groups (checked against ansible-inventory 2.14 by a review) ─────────

const ok = (text: string) => {
  const r = resolveText(text);
  assert.not.ok(hasErrors(r.diagnostics), JSON.stringify(r.diagnostics.filter((d) => d.severity === 'error'), null, 1));
  return r.inventory!;
};
const HEAD = `all:\n  vars: { admin_ip: 10.10.10.10 }\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n`;

test('a group declared in two places is one group: vars merged, hosts and parents the union, depth the deepest', () => {
  const inv = ok(`${HEAD}    a: { vars: { nginx_port: 81 }, hosts: { 10.10.10.11: {} } }
    p: { vars: { node_timezone: UTC }, children: { a: { hosts: { 10.10.10.12: {} } } } }
`);
  // (ansible-inventory: .12 nginx_port 81; .11 in a and p, node_timezone UTC.)
  assert.is(node(inv, '10.10.10.12').vars.nginx_port, 81);
  assert.is(node(inv, '10.10.10.11').vars.node_timezone, 'UTC');
  assert.equal(node(inv, '10.10.10.11').groups, ['a', 'p']);
  assert.equal(inv.groups.filter((g) => g.name === 'a').map((g) => g.hosts), [['10.10.10.11', '10.10.10.12']]);
  // Depth: a is p's child (2), so its vars win over p's (1) wherever a is declared.
  const inv2 = ok(`${HEAD}    a: { vars: { nginx_port: 81 }, hosts: { 10.10.10.11: {} } }
    p: { vars: { nginx_port: 82 }, children: { a: } }
`);
  assert.is(node(inv2, '10.10.10.11').vars.nginx_port, 81);
});

test('a group of groups: children listed by name with empty entries, declared elsewhere', () => {
  const inv = ok(`${HEAD}    pgsql:
      vars: { node_timezone: Asia/Hong_Kong }
      children: { pg-meta: , pg-test: {} }
    pg-meta: { vars: { pg_cluster: pg-meta }, hosts: { 10.10.10.11: { pg_seq: 1, pg_role: primary } } }
    pg-test: { vars: { pg_cluster: pg-test }, hosts: { 10.10.10.12: { pg_seq: 1, pg_role: primary } } }
`);
  for (const ip of ['10.10.10.11', '10.10.10.12']) {
    assert.is(node(inv, ip).vars.node_timezone, 'Asia/Hong_Kong', ip);
    assert.ok(node(inv, ip).modules.includes('pgsql'), ip);
  }
  assert.equal(node(inv, '10.10.10.12').groups, ['pg-test', 'pgsql']);
  // A name only ever referred to, never declared with hosts: an empty group, as before.
  const r = resolveText(`${HEAD}    pgsql: { children: { pg-nowhere: } }\n`);
  assert.ok(r.diagnostics.some((d) => d.code === 'empty-group' && /pg-nowhere/.test(d.message)));
  // A group among its own ancestors is said, not looped on.
  const c = resolveText(`${HEAD}    x: { hosts: { 10.10.10.11: {} }, children: { y: { children: { x: } } } }\n`);
  assert.ok(c.diagnostics.some((d) => /among its own ancestors/.test(d.message)), JSON.stringify(c.diagnostics));
});

test("a host's entries apply in the order the file gives them (the last one's value wins)", () => {
  // (ansible-inventory: 81, the later entry; the walk took the child group's first.)
  const inv = ok(`${HEAD}    p:
      children: { c: { hosts: { 10.10.10.11: { nginx_port: 82 } } } }
      hosts: { 10.10.10.11: { nginx_port: 81 } }
`);
  assert.is(node(inv, '10.10.10.11').vars.nginx_port, 81);
  // all.hosts written after all.children: its entry is the later one.
  const inv2 = ok(`all:
  vars: { admin_ip: 10.10.10.10 }
  children:
    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }
    b: { hosts: { 10.10.10.11: { nginx_port: 82 } } }
  hosts:
    10.10.10.11: { nginx_port: 81 }
`);
  assert.is(node(inv2, '10.10.10.11').vars.nginx_port, 81);
});

test('ansible_group_priority as Ansible reads it (int()), and not a variable of the hosts', () => {
  for (const [prio, want] of [['"5"', 81], ['5', 81], ['5.9', 81], ["' 7 '", 81], ['"x"', 82], ['0', 82]] as const) {
    const inv = ok(`${HEAD}    a: { vars: { nginx_port: 81, ansible_group_priority: ${prio} }, hosts: { 10.10.10.11: {} } }
    b: { vars: { nginx_port: 82 }, hosts: { 10.10.10.11: {} } }
`);
    assert.is(node(inv, '10.10.10.11').vars.nginx_port, want, `priority ${prio}`);
    assert.not.ok(Object.prototype.hasOwnProperty.call(node(inv, '10.10.10.11').vars, 'ansible_group_priority'));
  }
});

test('a parameter pigen does not know is written nowhere: a line break in it is no injection error', () => {
  const r = resolveText(`${HEAD.replace('admin_ip: 10.10.10.10', 'admin_ip: 10.10.10.10, my_motd: "hello\\nworld"')}`);
  assert.not.ok(hasErrors(r.diagnostics), JSON.stringify(r.diagnostics));
  assert.ok(r.diagnostics.some((d) => d.code === 'unknown-param'));
  // One of pigen's own still is.
  const own = resolveText(`${HEAD.replace('admin_ip: 10.10.10.10', 'admin_ip: 10.10.10.10, grafana_admin_username: "adm\\nY"')}`);
  assert.ok(own.diagnostics.some((d) => d.code === 'injection'));
});

test('hosts written as a plain string: the schema says so, and no false empty-group', () => {
  const r = resolveText(`${HEAD}    b: { hosts: 10.10.10.12 }\n`);
  assert.ok(r.diagnostics.some((d) => d.code === 'schema-type'), JSON.stringify(r.diagnostics));
  assert.not.ok(r.diagnostics.some((d) => d.code === 'empty-group'), JSON.stringify(r.diagnostics));
});

// Pigsty's playbooks pick their hosts by their resolved vars (pgsql.yml: every host with
// pg_cluster; minio.yml: minio_cluster and minio_seq; redis.yml: redis_cluster), so a cluster name
// given per host, as Pigsty's own ha/citus.yml gives it, makes the host a member as a group's
// does (a review found such nodes planned as plain nodes: no targets, no DNS records).
test('pg_cluster, minio_cluster + minio_seq and redis_cluster given per host make the host a member of their module', () => {
  const r = resolveText(`all:
  children:
    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }
    citus:
      hosts:
        10.10.10.11: { pg_cluster: pg-c1, pg_seq: 1, pg_role: primary }
        10.10.10.12: { pg_cluster: pg-c2, pg_seq: 1, pg_role: primary }
        10.10.10.13: { minio_cluster: m, minio_seq: 1 }
        10.10.10.14: { minio_cluster: m }
        10.10.10.15: { redis_cluster: r, redis_node: 1, redis_instances: { 6379: {} } }
  vars: { admin_ip: 10.10.10.10 }
`);
  assert.not.ok(hasErrors(r.diagnostics), JSON.stringify(r.diagnostics));
  const inv = r.inventory!;
  assert.equal(inv.nodes.map((n) => [n.ip, n.nodename, n.modules.join(',')]), [
    ['10.10.10.10', 'node-10-10-10-10', 'infra,node'],
    ['10.10.10.11', 'pg-c1-1', 'node,pgsql'],
    ['10.10.10.12', 'pg-c2-1', 'node,pgsql'],
    ['10.10.10.13', 'node-10-10-10-13', 'node,minio'],
    ['10.10.10.14', 'node-10-10-10-14', 'node'],
    ['10.10.10.15', 'node-10-10-10-15', 'node,redis'],
  ]);
  // (pg_cluster without pg_seq, as in all.vars, makes no member: Pigsty's identity step fails it.)
  const global = resolveText('all:\n  children: { infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }, web: { hosts: { 10.10.10.12: {} } } }\n  vars: { admin_ip: 10.10.10.10, pg_cluster: pg-meta }\n');
  assert.equal(global.inventory!.nodes.map((n) => n.modules.join(',')), ['infra,node', 'node']);
  // What membership brings: the admin node's scrape targets and DNS records for them.
  const files = new Map(compile(inv, assets, { version: 't' }).nodes.find((n) => n.ip === '10.10.10.10')!.files.map((f) => [f.path, f.content]));
  assert.match(files.get('/infra/targets/pgsql/pg-c1-1.yml') ?? '', /10\.10\.10\.11/);
  assert.match(files.get('/etc/dnsmasq.d/pigsty/pg-c2') ?? '', /^10\.10\.10\.12 pg-c2$/m);
  assert.match(files.get('/etc/dnsmasq.d/pigsty/m') ?? '', /^10\.10\.10\.13 m-1$/m);
  assert.ok([...files.keys()].some((p) => p.startsWith('/infra/targets/redis/')), [...files.keys()].filter((p) => p.includes('targets')).join(' '));
});

// Pigsty v3's default portal entries proxied to Prometheus (9090), Alertmanager (9093) and Loki
// (3100) on the admin node; an inventory carried into v4 keeps them, and their servers answer 502
// (a review found 12 of 30 real inventories with one, built without a word).
test('a portal entry with a domain proxying to a port where v3 ran Prometheus, Alertmanager or Loki, and nothing listens now, is a warning', () => {
  const r = resolveText(`all:
  children: { infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }, web: { hosts: { 10.10.10.11: {} } } }
  vars:
    admin_ip: 10.10.10.10
    infra_portal:
      home:         { domain: h.pigsty }
      grafana:      { domain: g.pigsty, endpoint: "\${admin_ip}:3000", websocket: true }
      prometheus:   { domain: p.pigsty, endpoint: "\${admin_ip}:9090" }
      alertmanager: { domain: a.pigsty, endpoint: "\${admin_ip}:9093" }
      loki:         { endpoint: "\${admin_ip}:3100" }
      app:          { domain: app.pigsty, endpoint: "\${admin_ip}:8885" }
      vm:           { domain: v.pigsty, endpoint: "10.10.10.10:9090" }
      cockpit:      { domain: c.pigsty, endpoint: "10.10.10.11:9090" }
`, ['vmetrics_port=9090']);
  const legacy = r.diagnostics.filter((d) => d.code === 'legacy-portal');
  assert.equal(legacy.map((d) => [d.severity, d.path.join('.'), d.pos?.line]), [['warning', 'all.vars.infra_portal.alertmanager.endpoint', 9]]);
  assert.match(legacy[0]!.message, /^portal entry `alertmanager` proxies to 10\.10\.10\.10:9093, where Pigsty v3 ran Alertmanager; nothing pigen deploys listens there/);
  assert.match(legacy[0]!.hint!, /\/alertmgr\//);
  const without = resolveText(`all:
  children: { infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } } }
  vars: { admin_ip: 10.10.10.10, infra_portal: { home: { domain: h.pigsty }, prometheus: { domain: p.pigsty, endpoint: "\${admin_ip}:9090" } } }
`);
  assert.equal(without.diagnostics.filter((d) => d.code === 'legacy-portal').map((d) => d.path.join('.')), ['all.vars.infra_portal.prometheus.endpoint']);
});

// pigen's own repo_upstream has entries of four modules; Pigsty's templates name others
// (docker, mssql, beta...), which got no source at all, without a word (found by a review).
test('a node_repo_modules module that pigen\'s default repo_upstream lacks is a repo-unmatched warning; the list matches the defaults', () => {
  for (const code of ['d12', 'el9']) {
    const mods = [...new Set(defaultUpstream(osProfile(code)).map((it) => String(it.module)))].sort();
    assert.equal(mods, DEFAULT_UPSTREAM_MODULES, code);
  }
  const r = resolveText(`all:
  children: { infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } } }
  vars: { admin_ip: 10.10.10.10, node_repo_modules: 'node,infra,pgsql,docker' }
`);
  assert.equal(r.diagnostics.filter((d) => d.code === 'repo-unmatched').map((d) => [d.severity, d.path.join('.'), d.message]), [
    ['warning', 'all.vars.node_repo_modules', "module `docker` is in node_repo_modules, but pigen's default repo_upstream has no entry of it (its modules: infra, local, node, pgsql): its nodes get no source for it, and the packages it carries do not install"],
  ]);
});

// An etcd, MinIO or Redis member is <cluster>-<seq>, as a PostgreSQL instance is: two nodes of
// one name left one of them unmonitored, without a word (found by a review on a real inventory).
test('two etcd, MinIO or Redis members of one name (<cluster>-<seq>) are member-duplicate errors', () => {
  const r = resolveText(`all:
  children:
    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }
    etcd: { hosts: { 10.10.10.11: { etcd_seq: 1 }, 10.10.10.12: { etcd_seq: 1 } }, vars: { etcd_cluster: etcd } }
    redis-x: { hosts: { 10.10.10.15: { redis_node: 1 }, 10.10.10.16: { redis_node: 1 } }, vars: { redis_cluster: redis-x } }
    minio: { hosts: { 10.10.10.17: { minio_seq: 1 }, 10.10.10.18: { minio_seq: 2 } }, vars: { minio_cluster: minio } }
    redis-y: { hosts: { 10.10.10.19: { redis_node: 1 } }, vars: { redis_cluster: redis-y } }
    redis-z: { hosts: { 10.10.10.21: {}, 10.10.10.22: {} }, vars: { redis_cluster: redis-z } }
  vars: { admin_ip: 10.10.10.10 }
`);
  assert.equal(r.diagnostics.filter((d) => d.code === 'member-duplicate').map((d) => [d.severity, d.path.join('.'), d.message]), [
    ['error', 'all.children.etcd.hosts.10.10.10.12.etcd_seq', 'etcd member `etcd-1` (etcd_cluster and etcd_seq) is both 10.10.10.11 and 10.10.10.12: one of them would not be monitored'],
    ['error', 'all.children.redis-x.hosts.10.10.10.16.redis_node', 'Redis node `redis-x-1` (redis_cluster and redis_node) is both 10.10.10.15 and 10.10.10.16: one of them would not be monitored'],
    // (No redis_node is 0, as the target is named: two such members are one name too.)
    ['error', 'all.children.redis-z.hosts.10.10.10.22', 'Redis node `redis-z-0` (redis_cluster and redis_node) is both 10.10.10.21 and 10.10.10.22: one of them would not be monitored'],
  ]);
});

// A cron.d line run as a user the node lacks at first boot (Pigsty's backup as postgres, a user of
// PGSQL's packages, which pigen does not deploy): cron skips it, Debian's cron the whole file,
// read again only when it changes (found by a review: 8 of 30 real inventories).
test('a node_crontab line run as a user the node does not have at first boot is a crontab-user warning', () => {
  const r = resolveText(`all:
  children: { infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } } }
  vars:
    admin_ip: 10.10.10.10
    node_admin_username: ops
    node_crontab: [ '00 01 * * * postgres /pg/bin/pg-backup full', '@daily root /bin/true', '0 2 * * * ops /bin/true', 'MAILTO=""', '@reboot www-data /bin/true', '0 3 * * * grafana /bin/true', '@hourly redis /bin/true', '0 4 * * * prometheus /bin/true', '0 5 * * * vector /bin/true' ]
`);
  assert.equal(r.diagnostics.filter((d) => d.code === 'crontab-user').map((d) => [d.severity, d.path.join('.'), /runs as `(\S+)`/.exec(d.message)?.[1]]), [
    ['warning', 'all.vars.node_crontab.0', 'postgres'],
    ['warning', 'all.vars.node_crontab.6', 'redis'],
  ]);
});

// Ansible reads `10.10.10.[11:13]` as three hosts and `10.10.10.20:22` as a host and its port;
// pigen keys hosts by the address alone, and says which it met (found by a review).
test('an Ansible host range or an address with a port as a host key is bad-host-key, named as such', () => {
  const r = resolveText(`all:
  children:
    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }
    web: { hosts: { "10.10.10.[11:13]": {}, "10.10.10.20:22": {}, web1: {} } }
  vars: { admin_ip: 10.10.10.10 }
`);
  assert.equal(r.diagnostics.filter((d) => d.code === 'bad-host-key').map((d) => [d.message, d.hint]), [
    ['host key `10.10.10.[11:13]` is an Ansible host range', 'pigen does not expand Ansible host ranges: list each host by its IPv4 address'],
    ['host key `10.10.10.20:22` is an address with a port', 'a host key is the address alone: pigen reaches no host over SSH (drop the port)'],
    ['host key `web1` is not an IPv4 address', undefined],
  ]);
});

// A node whose own repo_upstream has no `local` entry for its release gets no source for it
// (repo-unmatched); repo-empty said beside it that it read the repo, which nothing fills (found by
// a review on a real inventory written for Ubuntu).
test('repo-empty counts only the nodes that get a source for the local repo', () => {
  const r = resolveText(`all:
  children: { infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } } }
  vars:
    admin_ip: 10.10.10.10
    node_repo_modules: local
    repo_upstream: [ { name: pigsty-local, description: x, module: local, releases: [22, 24], arch: [x86_64], baseurl: { default: 'http://\${admin_ip}/pigsty ./' } } ]
`);
  assert.equal(r.diagnostics.filter((d) => d.code.startsWith('repo-')).map((d) => d.code), ['repo-unmatched']);
  // (An empty repo_upstream is pigen's default, as the plan reads it: the local repo is read.)
  const empty = resolveText('all:\n  children: { infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } } }\n  vars: { admin_ip: 10.10.10.10, node_repo_modules: local, repo_upstream: [] }\n');
  assert.equal(empty.diagnostics.filter((d) => d.code.startsWith('repo-')).map((d) => d.code), ['repo-empty']);
});

test.run();
