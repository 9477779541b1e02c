// What the rendered files mean on a real node, where a validator cannot tell (found in a review
// against pigsty-infra.md): DNS during first boot, the agent rules' ports, the infra scrape job's
// path, redis instances told apart, parts pigen does not install neither scraped nor silently
// accepted, the Logs datasource's plugin installed, the admin user.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { bypasses } from '../generator/plan/proxy.ts';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadAndResolve } from '../generator/pipeline.ts';
import { formatPath } from '../generator/diagnostics.ts';
import type { ResolveOptions } from '../generator/types.ts';
import { readAssets } from '../generator/io.ts';
import { DEFAULT_INVENTORY } from '../generator/default-inventory.ts';
import { needTools, pigen, tmp } from './helpers.ts';
import { compileInventory } from './tree.ts';

const dec = new TextDecoder();
type Compiled = ReturnType<typeof compileInventory>;
const file = (c: Compiled, path: string) => {
  const e = c.tree.find((x) => x.path === path);
  assert.ok(e && 'data' in e, `${path} in the build`);
  return dec.decode((e as { data: Uint8Array }).data);
};
/** `pigen validate` of the text, as a user runs it (its code frames included). */
const pigenValidate = (text: string) => {
  const dir = tmp('pigen-sem-cli-');
  writeFileSync(join(dir, 'pigsty.yml'), text);
  return pigen(['validate'], dir);
};
const build = (text: string, sets: string[] = []) => {
  const dir = tmp('pigen-sem-');
  writeFileSync(join(dir, 'pigsty.yml'), text);
  return compileInventory({ cwd: dir, arg: 'pigsty.yml', sets });
};
const fleet = (extraHost = '', extraVars = '') =>
  [
    'all:',
    '  children:',
    '    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }',
    '    pg-test:',
    '      vars: { pg_cluster: pg-test }',
    '      hosts:',
    '        10.10.10.11: { pg_seq: 1, pg_role: primary }',
    `        10.10.10.12: { pg_seq: 2, pg_role: replica${extraHost} }`,
    '    redis-x:',
    '      vars: { redis_cluster: redis-x }',
    '      hosts: { 10.10.10.13: { redis_node: 1, redis_instances: { 6379: {}, 6380: {} } } }',
    '  vars:',
    '    admin_ip: 10.10.10.10',
    extraVars,
    '',
  ].join('\n');

test('resolv.conf is written after the packages: until then the node resolves as it booted', () => {
  const c = build(fleet());
  for (const ip of ['10.10.10.10', '10.10.10.11']) {
    const ud = parse(file(c, `nodes/${ip}/user-data`)) as { write_files: { path: string; defer?: boolean }[]; runcmd: string[] };
    const resolv = ud.write_files.find((f) => f.path === '/etc/resolv.conf')!;
    assert.is(resolv.defer, true, `${ip}: resolv.conf deferred (cloud-init's final stage, after package installs)`);
    // The nameservers it found at boot are appended after pigen's (node_dns_method: add).
    assert.ok(ud.runcmd.some((r) => r.includes('/etc/resolv.conf.pigen-orig')), `${ip}: the original nameservers appended`);
  }
});

test("agent.yml tells agents apart by the inventory's ports (a host's override included), and stays out of images", () => {
  const c = build(fleet(', node_exporter_port: 19100, pg_exporter_port: 19630'));
  const agent = file(c, 'nodes/10.10.10.10/rootfs/data/infra/rules/agent.yml');
  assert.match(agent, /record: node_up\n\s+expr: up\{instance=~"\.\*:\(9100\|19100\)"\}/);
  assert.match(agent, /record: pg_exporter_agent_up\n\s+expr: up\{instance=~"\.\*:\(9630\|19630\)"\}/);
  assert.match(agent, /record: patroni_up\n\s+expr: up\{instance=~"\.\*:8008"\}/);
  const def = build(fleet());
  assert.match(file(def, 'nodes/10.10.10.10/rootfs/data/infra/rules/agent.yml'), /up\{instance=~"\.\*:9100"\}/);
  const img = JSON.parse(file(c, `images/${(JSON.parse(file(c, 'manifest.json')) as { nodes: Record<string, { image: { name: string } }> }).nodes['10.10.10.10']!.image.name}.json`)) as { files: { path: string }[] };
  assert.not.ok(img.files.some((f) => f.path === '/infra/rules/agent.yml'), 'a fleet-made file is boot content');
  assert.ok(img.files.some((f) => f.path === '/infra/rules/node.yml'), 'the fixed rule files are image content');
});

test('the infra job scrapes /metrics whatever exporter_metrics_path; the exporters use it', () => {
  const c = build(fleet('', '    exporter_metrics_path: /xmetrics'));
  const prom = parse(file(c, 'nodes/10.10.10.10/rootfs/data/infra/prometheus.yml')) as { scrape_configs: { job_name: string; metrics_path?: string }[] };
  const job = (n: string) => prom.scrape_configs.find((j) => j.job_name === n)!;
  assert.is(job('infra').metrics_path, '/metrics');
  assert.is(job('node').metrics_path, '/xmetrics');
  assert.match(file(c, 'nodes/10.10.10.11/rootfs/etc/default/node_exporter'), /--web\.telemetry-path=\/xmetrics/);
});

test('redis: each instance is its own `instance` (ip:port), scraped through the exporter port', () => {
  const c = build(fleet());
  const prom = parse(file(c, 'nodes/10.10.10.10/rootfs/data/infra/prometheus.yml')) as { scrape_configs: { job_name: string; relabel_configs: { source_labels?: string[]; regex?: string; target_label: string; replacement?: string }[] }[] };
  const relabel = prom.scrape_configs.find((j) => j.job_name === 'redis')!.relabel_configs;
  const targets = (parse(file(c, 'nodes/10.10.10.10/rootfs/data/infra/targets/redis/redis-x-1.yml')) as { targets: string[] }[])[0]!.targets;
  assert.equal(targets, ['redis://10.10.10.13:6379', 'redis://10.10.10.13:6380']);
  // The relabelling as Prometheus applies it (anchored regex, ${n} groups), in order.
  const apply = (address: string) => {
    const labels: Record<string, string> = { __address__: address };
    for (const r of relabel) {
      const src = (r.source_labels ?? []).map((l) => labels[l] ?? '').join(';');
      const m = new RegExp(`^(?:${r.regex ?? '(.*)'})$`).exec(src);
      if (m) labels[r.target_label] = (r.replacement ?? '${1}').replace(/\$\{(\d)\}/g, (_, i) => m[Number(i)] ?? '');
    }
    return labels;
  };
  const a = apply(targets[0]!);
  const b = apply(targets[1]!);
  assert.is(a.instance, '10.10.10.13:6379');
  assert.is(b.instance, '10.10.10.13:6380');
  assert.is(a.__address__, '10.10.10.13:9121');
  assert.is(a.__param_target, 'redis://10.10.10.13:6379');
});

test('haproxy and the VIP: not scraped (pigen installs neither), and a warning where they are set', () => {
  const c = build(fleet());
  for (const e of c.tree) {
    if (!('data' in e) || !e.path.includes('/targets/')) continue;
    assert.not.match(dec.decode(e.data), /:9101\b|:9650\b/, `${e.path}: no haproxy or keepalived target`);
  }
  const r = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet(', vip_enabled: true, vip_address: 10.10.10.99, vip_vrid: 42', '    haproxy_enabled: true\n    node_admin_username: ops\n    node_admin_pk_current: true')) }, readAssets(), { sets: [], strict: false });
  const warned = r.diagnostics.filter((d) => d.code === 'not-applied').map((d) => `${d.path.at(-1)}@${d.pos?.line}`);
  // (The admin user is deployed; only the key of "the current user", whom pigen has none of, is not.)
  // One warning per feature and mapping, at its first parameter, naming them all.
  assert.equal(warned.sort(), ['haproxy_enabled@14', 'node_admin_pk_current@16', 'vip_enabled@8'].sort());
  assert.match(r.diagnostics.find((d) => d.path.at(-1) === 'vip_enabled')!.message, /^`vip_enabled`, `vip_address` and `vip_vrid` are not applied by pigen \(the L2 VIP .*\): the nodes boot without them$/);
  assert.match(r.diagnostics.find((d) => d.path.at(-1) === 'haproxy_enabled')!.message, /^`haproxy_enabled` is not applied by pigen \(haproxy .*\): the nodes boot without it$/);
  assert.ok(r.inventory, 'warnings only');
  // At the parameter written first in its mapping, the names in the order written, whatever order
  // the nodes' parameters were merged in (all.vars's vip_enabled first; host .10 overrides node_tune).
  const ordered = loadAndResolve({ name: 'o.yml', bytes: Buffer.from('all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1, node_tune: tiny } } }\n    g1:\n      hosts: { 10.10.10.11: {} }\n      vars:\n        vip_address: 10.10.10.99\n        vip_vrid: 42\n        vip_enabled: true\n  vars:\n    admin_ip: 10.10.10.10\n    vip_enabled: false\n    node_tune: oltp\n    node_static_network: true\n') }, readAssets(), { sets: [], strict: false });
  assert.equal(ordered.diagnostics.filter((d) => d.code === 'not-applied').map((d) => `${formatPath(d.path)}@${d.pos?.line}: ${d.message.split(' are not applied')[0]!.split(' is not applied')[0]}`).sort(), [
    "all.children.infra.hosts['10.10.10.10'].node_tune@3: `node_tune`",
    'all.children.g1.vars.vip_address@7: `vip_address`, `vip_vrid` and `vip_enabled`',
    'all.vars.node_tune@13: `node_tune` and `node_static_network`',
  ].sort());
  // The embedded default (Pigsty's meta.yml) sets one: the tuned profile.
  const d = loadAndResolve({ name: 'default', bytes: Buffer.from(DEFAULT_INVENTORY) }, readAssets(), { sets: [], strict: false });
  assert.equal(d.diagnostics.filter((x) => x.code === 'not-applied').map((x) => x.path.at(-1)), ['node_tune']);
  // Let's Encrypt signing (a review found certbot_sign: true silently ignored); false asks nothing.
  for (const [on, n] of [['true', 1], ['false', 0]] as const) {
    const cb = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', `    certbot_sign: ${on}`)) }, readAssets(), { sets: [], strict: false });
    assert.is(cb.diagnostics.filter((x) => x.code === 'not-applied' && x.path.at(-1) === 'certbot_sign').length, n, `certbot_sign: ${on}`);
  }
});

// (A review found: blackbox off left the ping job (every node's up 0, AgentDown firing), `1d`
// stopping vmalert (Go durations have no d), patroni_ssl_enabled and pg_exporters silently ignored.)
test('blackbox off: no ping job nor ping targets; a 1d interval is 24h for vmalert; patroni_ssl_enabled and pg_exporters are not-applied warnings', () => {
  const on = build(fleet());
  assert.match(file(on, 'nodes/10.10.10.10/rootfs/data/infra/prometheus.yml'), /job_name: ping/);
  assert.ok(on.tree.some((e) => e.path.includes('/infra/targets/ping/')));
  const off = build(fleet('', '    blackbox_enabled: false\n    vmetrics_scrape_interval: 1d'));
  const prom = file(off, 'nodes/10.10.10.10/rootfs/data/infra/prometheus.yml');
  assert.not.match(prom, /ping/);
  assert.match(prom, /scrape_interval: 1d/);
  assert.not.ok(off.tree.some((e) => e.path.includes('/infra/targets/ping/')), 'no ping targets');
  assert.ok(off.tree.some((e) => e.path.includes('/infra/targets/node/')), 'the other targets stay');
  assert.match(file(off, 'nodes/10.10.10.10/rootfs/etc/default/vmalert'), /-evaluationInterval=24h\b/);
  const pg = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet(', patroni_ssl_enabled: true', '    pg_exporters: { 20001: { pg_cluster: pg-rds, pg_seq: 1, pg_host: 10.10.10.99 } }')) }, readAssets(), { sets: [], strict: false });
  assert.equal(pg.diagnostics.filter((d) => d.code === 'not-applied').map((d) => d.path.at(-1)).sort(), ['patroni_ssl_enabled', 'pg_exporters']);
  const none = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet(', patroni_ssl_enabled: false', '    pg_exporters: {}')) }, readAssets(), { sets: [], strict: false });
  assert.equal(none.diagnostics.filter((d) => d.code === 'not-applied'), []);
});

// Found by a review against pigsty-infra.md.
test('a PostgreSQL target is its instance, <pg_cluster>-<pg_seq>, whatever the node is named; chrony serves NTP as Pigsty allows (and to 172.16/12)', () => {
  const c = build(fleet(', nodename: web-2', '    node_id_from_pg: false'));
  const t = file(c, 'nodes/10.10.10.10/rootfs/data/infra/targets/pgsql/pg-test-2.yml');
  assert.match(t, /ins: pg-test-2\b/);
  assert.not.ok(c.tree.some((e) => e.path.includes('/infra/targets/pgsql/web-2')), 'not named after the node');
  assert.match(file(c, 'nodes/10.10.10.10/rootfs/data/infra/targets/node/10.10.10.12.yml'), /ins: web-2\b/, 'the node target keeps the node name');
  const chrony = file(c, 'nodes/10.10.10.11/rootfs/etc/chrony/chrony.conf');
  assert.equal(chrony.split('\n').filter((l) => l.startsWith('allow ')), ['allow 127.0.0.1/32', 'allow 192.168.0.0/16', 'allow 10.0.0.0/8', 'allow 172.16.0.0/12', 'allow ::/0']);
});

test('two nodes of one PostgreSQL instance (pg_cluster and pg_seq) are an error, also when the nodes are named otherwise', () => {
  const r = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet(', pg_seq: 1, nodename: web-2', '    node_id_from_pg: false')) }, readAssets(), { sets: [], strict: false });
  const d = r.diagnostics.filter((x) => x.code === 'pg-instance-duplicate');
  assert.is(d.length, 1, JSON.stringify(r.diagnostics.map((x) => x.code)));
  assert.match(d[0]!.message, /PostgreSQL instance `pg-test-1` \(pg_cluster and pg_seq\) is both 10\.10\.10\.11 and 10\.10\.10\.12/);
  // (Named from them, the nodename check says it once.)
  const named = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet(', pg_seq: 1')) }, readAssets(), { sets: [], strict: false });
  assert.equal(named.diagnostics.filter((x) => x.code === 'pg-instance-duplicate' || x.code === 'nodename-duplicate').map((x) => x.code), ['nodename-duplicate']);
});

test('the uv virtualenv, its pip packages and a data directory other than /data are not-applied warnings; their empty and default forms are not', () => {
  const warned = (extra: string) =>
    loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', extra)) }, readAssets(), { sets: [], strict: false })
      .diagnostics.filter((d) => d.code === 'not-applied')
      // (Every parameter a warning names: one names those of one feature set in one mapping.)
      .flatMap((d) => [...d.message.split(/ (?:is|are) not applied/)[0]!.matchAll(/`(\w+)`/g)].map((m) => m[1]))
      .sort();
  assert.equal(warned('    node_uv_env: /data/venv\n    node_pip_packages: pgcli\n    node_data: /data2'), ['node_data', 'node_pip_packages', 'node_uv_env']);
  assert.equal(warned("    node_uv_env: ''\n    node_pip_packages: ''\n    node_data: /data"), []);
});

test('repo_upstream `minor: true` on a repo an EL node reads is a not-applied warning at that field', () => {
  const inv = (minor: boolean) =>
    fleet('', `    os_profile: el9\n    node_repo_modules: extra\n    repo_upstream:\n      - { name: vault, description: Vault, module: extra, releases: [9], arch: [x86_64, aarch64], ${minor ? 'minor: true, ' : ''}baseurl: { default: 'https://dl.rockylinux.org/vault/rocky/$releasever/BaseOS/$basearch/os/' } }`);
  const ds = (text: string) => loadAndResolve({ name: 'x.yml', bytes: Buffer.from(text) }, readAssets(), { sets: [], strict: false }).diagnostics.filter((d) => d.code === 'not-applied');
  const w = ds(inv(true));
  assert.is(w.length, 1);
  assert.equal(w[0]!.path.slice(-3), ['repo_upstream', 0, 'minor']);
  assert.match(w[0]!.message, /`minor: true` of repo `vault` is not applied/);
  assert.equal(ds(inv(false)), []);
});

test('a portal entry with a custom template (conf) is a warning, not silently dropped', () => {
  const text = fleet('', "    infra_portal: { home: { domain: i.pigsty }, custom: { domain: c.pigsty, conf: custom.conf } }");
  const r = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(text) }, readAssets(), { sets: [], strict: false });
  const w = r.diagnostics.filter((d) => d.code === 'not-applied');
  assert.equal(w.map((d) => d.path.join('.')), ['all.vars.infra_portal.custom.conf']);
  assert.match(w[0]!.message, /custom template/);
  assert.ok(r.inventory);
});

test("infra_data other than /data/infra, the home page's infra_services: not applied, said where set; node_firewall_mode: off unquoted is off", () => {
  const r = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', "    infra_data: /srv/infra\n    infra_extra_services: [ { name: x, url: /x } ]\n    node_data: /data")) }, readAssets(), { sets: [], strict: false });
  const w = r.diagnostics.filter((d) => d.code === 'not-applied');
  assert.equal(w.map((d) => d.path.join('.')), ['all.vars.infra_data', 'all.vars.infra_extra_services']);
  assert.match(w[0]!.message, /Pigsty links \/infra to \/data\/infra/);
  assert.match(w[1]!.message, /home page/);
  // (An unquoted `off` reads as false, as Ansible reads it: off, no error; not applied, as 'off'.)
  const off = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', '    node_firewall_mode: off')) }, readAssets(), { sets: [], strict: false });
  assert.equal(off.diagnostics.filter((d) => d.path.at(-1) === 'node_firewall_mode').map((d) => d.code), ['not-applied']);
  const same = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', '    infra_data: /data/infra')) }, readAssets(), { sets: [], strict: false });
  assert.not.ok(same.diagnostics.some((d) => d.code === 'not-applied'), 'its default: nothing to say');
});

test("nodename_overwrite: false keeps the cloud's hostname: /etc/hosts, written whole, gets a line for it at first boot unless one names it (found by a review)", () => {
  const c = build(fleet('', '    nodename_overwrite: false'));
  const hosts = file(c, 'nodes/10.10.10.11/rootfs/etc/hosts');
  assert.match(hosts, /^10\.10\.10\.11 pg-test-1\n# \(The node keeps its own hostname, nodename_overwrite: false: a line for it is added below at first boot\.\)$/m);
  const runcmd = (parse(file(c, 'nodes/10.10.10.11/user-data')) as { runcmd: string[] }).runcmd;
  const cmd = runcmd.find((x) => x.startsWith('h=$(hostname)'))!;
  assert.ok(cmd, runcmd.join('\n'));
  // Run as written, against a copy of the file, for a hostname: added once; not when a line names it.
  const dir = tmp('pigen-hosts-');
  const at = join(dir, 'hosts');
  const run = (name: string) => spawnSync('sh', ['-c', cmd.replaceAll('/etc/hosts', at).replace('$(hostname)', name)], { encoding: 'utf8' });
  writeFileSync(at, hosts);
  run('ip-10-0-0-5');
  run('ip-10-0-0-5');
  run('pg-test-1');
  run('pigsty');
  const added = readFileSync(at, 'utf8').slice(hosts.length);
  assert.is(added, "127.0.1.1 ip-10-0-0-5 # this node's hostname (nodename_overwrite: false)\n127.0.1.1 pigsty # this node's hostname (nodename_overwrite: false)\n");
  // The default (the hostname becomes the nodename): no such line, nor comment.
  const d = build(fleet());
  assert.not.match(file(d, 'nodes/10.10.10.11/rootfs/etc/hosts'), /keeps its own hostname/);
  assert.not.ok((parse(file(d, 'nodes/10.10.10.11/user-data')) as { runcmd: string[] }).runcmd.some((x) => x.startsWith('h=$(hostname)')));
});

test("directory parameters: no trailing /, none of the system's own, not /infra nor /data; ca_cn adds no field to the CA's subject (found by a review: `nginx_home: /www/` was an internal error, `ca_cn: \"x;/O=Evil\"` passed)", () => {
  const errs = (vars: string) => loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', vars)) }, readAssets(), { sets: [], strict: false }).diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.path.at(-1)}: ${d.message}`);
  assert.equal(errs('    nginx_home: /www/'), ['nginx_home: path `/www/` ends with /']);
  for (const [k, v] of [['nginx_home', '/'], ['nginx_data', '/'], ['nginx_home', '/etc'], ['vector_data', '/tmp'], ['repo_home', '/usr']]) {
    assert.equal(errs(`    ${k}: ${v}`), [`${k}: path \`${v}\` is a directory of the system's own (pigen would link, chown or chmod it)`]);
  }
  assert.equal(errs('    nginx_home: /infra'), ['nginx_home: path `/infra` is the link pigen makes to /data/infra']);
  assert.equal(errs('    nginx_data: /data'), ['nginx_data: path `/data` is the main data directory (node_data)']);
  assert.equal(errs('    node_data: /data\n    nginx_home: /srv/www\n    nginx_data: /data/www\n    repo_home: /srv/www'), []);
  assert.equal(errs('    node_data: /mnt'), [], 'node_data is not applied (a warning says so): not judged');
  for (const cn of ['x;/O=Evil Corp/CN=evil', 'a#/CN=b', 'a;/emailAddress=x@y']) {
    assert.equal(errs(`    ca_cn: '${cn}'`), [`ca_cn: \`${cn}\` cannot be the CA's common name (it would add fields to the certificate's subject)`]);
  }
  assert.equal(errs("    ca_cn: 'Pigsty CA (test), v2'"), []);
});

test('no credentials in repo_bundle or vector_log_endpoint (world-readable files, a golden image, boot logs), never printed; log endpoints are infra, host:port or http(s) URLs (found by a review)', () => {
  const diags = (vars: string) => loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', vars)) }, readAssets(), { sets: [], strict: false }).diagnostics.filter((d) => d.severity === 'error');
  for (const vars of ['    repo_bundle: "http://u:Zq9SECRETpw@h/x.tgz"', '    vector_log_endpoint: ["http://u:Zq9SECRETpw@h:9428"]', '    vector_log_endpoint: ["u:Zq9SECRETpw@h:9428"]']) {
    const d = diags(vars);
    assert.is(d.length, 1, vars);
    assert.match(d[0]!.message, /credentials/);
    assert.not.match(JSON.stringify(d), /Zq9SECRETpw/);
    const shown = pigenValidate(fleet('', vars));
    assert.is(shown.code, 2);
    assert.not.match(shown.stdout + shown.stderr, /Zq9SECRETpw/, 'nor in the code frame');
  }
  const bad = diags('    vector_log_endpoint: ["h:99999", ":9428", "${admin_ip}:X1", "h:9428", "http://h/insert", "https://[::1]:9428/x", infra, logs.example.com, "logs_1.internal:9428"]');
  assert.equal(bad.map((d) => d.path.at(-1)), [0, 1, 2]);
  assert.match(bad[2]!.message, /`10\.10\.10\.10:X1` is neither `infra`, a host\[:port\] \(a port in 1\.\.65535\) nor an http\(s\) URL/);
});

test("a yum repo's meta options: merged over gpgcheck = 0 and enabled = 1 (each once), names of [a-z0-9_], scalar values, not name/baseurl/proxy (found by a review)", () => {
  const up = (meta: string) => `    os_profile: el9\n    node_repo_modules: zz\n    repo_upstream: [ { name: zz, module: zz, releases: [9], arch: [x86_64], baseurl: { default: 'http://x/' }, meta: ${meta} } ]`;
  const c = build(fleet('', up('{ gpgcheck: 1, priority: 5, enabled: 0 }')));
  assert.is(file(c, 'nodes/10.10.10.11/rootfs/etc/yum.repos.d/zz.repo'), '# generated by pigen (node_repo_modules, repo_upstream)\n[zz]\nname = zz $releasever - $basearch\nbaseurl = http://x/\ngpgcheck = 1\nenabled = 0\npriority = 5\n\n');
  const errs = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', up('{ "a=b": X4, "x y": X3, m: { a: 1 }, baseurl: "http://evil/" }'))) }, readAssets(), { sets: [], strict: false }).diagnostics.filter((d) => d.severity === 'error');
  assert.equal(errs.map((d) => `${d.code} ${d.path.slice(-2).join('.')}`), ['schema-format repo_upstream.0', 'schema-format repo_upstream.0', 'schema-type meta.m', 'bad-value meta.baseurl'].map((x) => x.replace('repo_upstream.0', '0.meta')));
});

test("a cluster named `default` (dns_records' file) and a DNS name two clusters claim are warnings (dns-name-clash; found by a review)", () => {
  const text = [
    'all:',
    '  vars: { admin_ip: 10.10.10.10, repo_bundle: /srv/b.tgz }',
    '  children:',
    '    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }',
    '    pg-x: { vars: { pg_cluster: default }, hosts: { 10.10.10.11: { pg_seq: 1, pg_role: primary } } }',
    '    pg-y: { vars: { pg_cluster: shared }, hosts: { 10.10.10.12: { pg_seq: 1, pg_role: primary }, 10.10.10.13: { pg_seq: 2, pg_role: replica } } }',
    '    mi: { vars: { minio_cluster: shared }, hosts: { 10.10.10.14: { minio_seq: 1 } } }',
    '',
  ].join('\n');
  const w = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(text) }, readAssets(), { sets: [], strict: false }).diagnostics.filter((d) => d.code === 'dns-name-clash');
  assert.equal(w.map((d) => d.path.join('.')), ['all.children.pg-x.vars.pg_cluster', 'all.children.mi.vars.minio_cluster']);
  assert.match(w[0]!.message, /cluster named `default` gets no DNS names/);
  assert.match(w[1]!.message, /the DNS name `shared-1` is claimed by 10\.10\.10\.12 and 10\.10\.10\.14/);
  assert.equal(loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet()) }, readAssets(), { sets: [], strict: false }).diagnostics.filter((d) => d.code === 'dns-name-clash'), [], 'a PGSQL cluster name its members share');
});

test('node_crontab and node_dns_options lines are checked as cron and the resolver read them, before a build (pigen check found them only after; found by a review); a crontab line is not quoted', () => {
  const errs = (vars: string) => loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', vars)) }, readAssets(), { sets: [], strict: false }).diagnostics.filter((d) => d.severity === 'error');
  const e = errs('    node_crontab: ["bad line PGPASSWORD=Hunter2x", "00 01 * * * postgres /pg/bin/pg-backup full", "@daily root true"]\n    node_dns_options: ["nameserver 6.6.6.6 X1", "options timeout:1", "search example.com"]');
  assert.equal(e.map((d) => `${d.path.slice(-2).join('.')}: ${d.message}`), ['node_crontab.0: not a cron.d line: five time fields, a user and a command expected', 'node_dns_options.0: not a resolv.conf line: nameserver needs one IP address: nameserver 6.6.6.6 X1']);
  assert.not.match(JSON.stringify(e), /Hunter2x/);
});

test('node_timezone is a tz name (no .. segments); a host key is no unspecified or broadcast address (found by a review)', () => {
  const diag = (text: string) => loadAndResolve({ name: 'x.yml', bytes: Buffer.from(text) }, readAssets(), { sets: [], strict: false }).diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.code} ${d.path.at(-1)}`);
  assert.equal(diag(fleet('', '    node_timezone: "../../X1"')), ['schema-format node_timezone']);
  for (const tz of ['Asia/Hong_Kong', 'Etc/GMT+8', 'UTC', "''"]) assert.equal(diag(fleet('', `    node_timezone: ${tz}`)), [], tz);
  assert.equal(diag(fleet().replace('10.10.10.13: {', '0.0.0.0: {')), ['bad-host-key 0.0.0.0']);
  assert.equal(diag(fleet().replace('10.10.10.13: {', '255.255.255.255: {')), ['bad-host-key 255.255.255.255']);
});

test("grafana.ini's values hold no `%(`, which its reader (go-ini) expands", () => {
  const d = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', "    grafana_admin_password: 'Hunter%(x)s2'")) }, readAssets(), { sets: [], strict: false }).diagnostics.filter((x) => x.severity === 'error');
  assert.equal(d.map((x) => `${x.code} ${x.path.at(-1)}`), ['injection grafana_admin_password']);
  assert.not.match(JSON.stringify(d), /Hunter/);
});

test("a deb node's repo baseurl is URI SUITE [COMPONENTS] (found by a review: `X1` and `[trusted=yes] http://…` were written after pigen's own `deb [trusted=yes]`)", () => {
  const msgs = (url: string) => loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', `    node_repo_modules: zz\n    repo_upstream: [ { name: zz, module: zz, releases: [12], baseurl: { default: '${url}' } } ]`)) }, readAssets(), { sets: [], strict: false }).diagnostics.filter((d) => d.severity === 'error').map((d) => d.message);
  assert.match(msgs('X1').join(), /and `X1` is no URI$/);
  assert.match(msgs('[trusted=yes] http://h/ ./').join(), /and `\[trusted=yes\]` is no URI \(the options are pigen's\)$/);
  assert.match(msgs('http://u:Pw1@h/').join(), /and it has no suite$/);
  assert.not.match(msgs('http://u:Pw1secret@h/ x').join() + msgs('X1 y').join(), /Pw1secret/);
  assert.equal(msgs('http://deb.debian.org/debian/ ${distro_codename} main'), []);
  assert.equal(msgs('http://h/p ./'), []);
});

test('an empty local repo is a warning: nodes read it, no repo_bundle fills it', () => {
  const diags = (text: string) => loadAndResolve({ name: 'x.yml', bytes: Buffer.from(text) }, readAssets(), { sets: [], strict: false }).diagnostics.filter((d) => d.code === 'repo-empty');
  const w = diags(fleet());
  assert.is(w.length, 1);
  assert.match(w[0]!.message, /every node reads the `local` repo \(http:\/\/10\.10\.10\.10\/pigsty\), but no repo_bundle fills it/);
  assert.ok(w[0]!.pos, 'located');
  assert.equal(diags(fleet('', '    repo_bundle: /srv/pigsty-bundle.tgz')), [], 'a bundle fills it');
  assert.equal(diags(fleet('', "    node_repo_modules: 'node,infra'")), [], 'nodes read upstream repos');
  // (Read as the plan reads it, spaces separating too: the plan writes the local source for it.)
  assert.is(diags(fleet('', "    node_repo_modules: 'node local'")).length, 1, 'a space-separated list naming local');
  assert.equal(diags(fleet('', '    repo_enabled: false\n    node_repo_modules: node')), []);
  assert.equal(diags(DEFAULT_INVENTORY), [], 'the embedded default reads upstream repos');
  // The admin node makes no repo (repo_enabled: false, as Pigsty's one-node online templates keep
  // it), while the nodes read it: said at repo_enabled, a repo_bundle named as not installed.
  const off = diags(fleet('', '    repo_enabled: false\n    repo_bundle: /srv/b.tgz'));
  assert.is(off.length, 1);
  assert.match(off[0]!.message, /every node reads the `local` repo .*, but the admin node has repo_enabled: false: it makes no repo, and its repo_bundle is not installed/);
  assert.equal(off[0]!.path.join('.'), 'all.vars.repo_enabled');
  assert.match(diags(fleet('', '    repo_enabled: false'))[0]!.message, /repo_enabled: false: it makes no repo; booted/);
  // A node of another OS than the admin's reads the local repo: none of its packages are there.
  const mixed = diags(fleet(', os_profile: el9', '    repo_bundle: /srv/b.tgz'));
  assert.equal(mixed.map((d) => d.path.join('.')), ["all.children.pg-test.hosts['10.10.10.12'].os_profile".replace("['10.10.10.12']", '.10.10.10.12')].map((x) => x.replace('hosts..', 'hosts.')));
  assert.match(mixed[0]!.message, /1 node of os_profile el9 reads the `local` repo, which holds the admin node's d12 packages/);
});

test('the repo made in repo_home but served from nginx_home: nodes reading it get nothing (repo-unserved)', () => {
  const diags = (vars: string) => loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', `    repo_bundle: /srv/b.tgz\n${vars}`)) }, readAssets(), { sets: [], strict: false }).diagnostics.filter((d) => d.code === 'repo-unserved');
  const w = diags('    nginx_home: /srv/www');
  assert.is(w.length, 1);
  assert.match(w[0]!.message, /the repo is made in repo_home \/www, while the home server's \/pigsty\/ serves nginx_home \/srv\/www/);
  assert.equal(w[0]!.path.join('.'), 'all.vars.nginx_home');
  assert.equal(diags('    nginx_home: /srv/www\n    repo_home: /srv/www/'), [], 'the same directory');
  assert.equal(diags(''), []);
});

test('repo_upstream with no entry for the OS of a module the nodes read is a warning (an EL inventory built for Debian)', () => {
  const up = "    repo_upstream: [ { name: pigsty-local, module: local, releases: [8, 9], baseurl: { default: 'http://${admin_ip}/pigsty' } } ]\n    repo_bundle: /srv/b.tgz";
  const diags = (text: string, sets: ResolveOptions['sets'] = []) => loadAndResolve({ name: 'x.yml', bytes: Buffer.from(text) }, readAssets(), { sets, strict: false }).diagnostics.filter((d) => d.code === 'repo-unmatched');
  const w = diags(fleet('', up));
  assert.is(w.length, 1);
  assert.match(w[0]!.message, /no repo_upstream entry of module `local` is for os_profile d12 \(release 12\)/);
  assert.equal(diags(fleet('', `${up}\n    os_profile: el9`)), [], 'built for EL 9: it applies');
  assert.equal(diags(fleet()), [], "pigen's per-OS defaults");
});

test("dnsmasq answers for the fleet's clusters: <pg_cluster> (its primary), <pg_cluster>-<seq>; a name that is no DNS label is refused", () => {
  const c = build(fleet());
  assert.is(file(c, 'nodes/10.10.10.10/rootfs/etc/dnsmasq.d/pigsty/pg-test'), '# /etc/dnsmasq.d/pigsty/pg-test — generated by pigen (the cluster\'s names)\n10.10.10.11 pg-test\n10.10.10.11 pg-test-1\n10.10.10.12 pg-test-2\n');
  // (pg_cluster itself is a DNS label by the schema: `^[a-zA-Z0-9-]+$`.)
  const r = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet().replace('vars: { pg_cluster: pg-test }', "vars: { pg_cluster: 'pg_test x' }")) }, readAssets(), { sets: [], strict: false });
  assert.ok(r.diagnostics.some((d) => d.code === 'schema-format' && d.path.at(-1) === 'pg_cluster'));
});

test("grafana gets the VictoriaLogs datasource plugin its Logs datasources need", () => {
  const c = build(fleet());
  const m = JSON.parse(file(c, 'manifest.json')) as { nodes: Record<string, { packages: string[] }> };
  assert.ok(m.nodes['10.10.10.10']!.packages.includes('grafana-victorialogs-ds'));
  assert.match(file(c, 'nodes/10.10.10.10/rootfs/etc/grafana/provisioning/datasources/pigsty.yml'), /type: victoriametrics-logs-datasource/);
});


test('the admin user: cloud-init makes it (uid, its own group with gid = uid, home, bash, locked password, keys); sudo as node_admin_sudo says', () => {
  const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGCnbi4GnkD7wx8YOJ58rQYGLRZ3Dpj/WFkplaN35X64';
  const c = build(fleet(', node_admin_username: ops, node_admin_sudo: limit', `    node_admin_pk_list: ['${KEY}   alice@laptop']`));
  const ud = (ip: string) => parse(file(c, `nodes/${ip}/user-data`));
  const u = ud('10.10.10.11');
  const dba = u.users.find((x: { name?: string }) => x.name === 'dba');
  assert.equal(dba, { name: 'dba', uid: 88, primary_group: 'dba', no_user_group: true, homedir: '/home/dba', shell: '/bin/bash', lock_passwd: true, ssh_authorized_keys: [`${KEY} alice@laptop`] });
  // The group first (bootcmd runs before the users module): with gid = uid, as Pigsty makes it.
  assert.match(JSON.stringify(u.bootcmd), /getent group dba >\/dev\/null \|\| groupadd -g 88 dba/);
  assert.ok(u.packages.includes('sudo'));
  assert.is(file(c, 'nodes/10.10.10.11/rootfs/etc/sudoers.d/dba'), '# generated by pigen (node_admin_sudo: nopass)\ndba ALL=(ALL) NOPASSWD: ALL\n');
  const sudoers = u.write_files.find((f: { path: string }) => f.path === '/etc/sudoers.d/dba');
  assert.equal([sudoers.owner, sudoers.permissions], ['root:root', '0440']);
  // A host's own name and sudo level.
  assert.ok(ud('10.10.10.12').users.some((x: { name?: string; uid?: number }) => x.name === 'ops' && x.uid === 88));
  assert.match(file(c, 'nodes/10.10.10.12/rootfs/etc/sudoers.d/ops'), /^ops ALL=\(ALL\) NOPASSWD: \/usr\/bin\/systemctl start \*, /m);
  assert.not.ok(c.tree.some((e) => e.path === 'nodes/10.10.10.12/rootfs/etc/sudoers.d/dba'));
  // all: with a password (which a locked account never gives); none: no rule, no sudo package.
  assert.match(file(build(fleet(), ['node_admin_sudo=all']), 'nodes/10.10.10.11/rootfs/etc/sudoers.d/dba'), /^dba ALL=\(ALL\) ALL$/m);
  const none = build(fleet(), ['node_admin_sudo=none']);
  assert.not.ok(none.tree.some((e) => e.path.includes('/etc/sudoers.d/')));
  assert.not.ok(parse(file(none, 'nodes/10.10.10.11/user-data')).packages.includes('sudo'));
  // Off: no user, no group, no rule.
  const off = build(fleet(), ['node_admin_enabled=false']);
  const o = parse(file(off, 'nodes/10.10.10.11/user-data'));
  assert.not.ok((o.users ?? []).some((x: { name?: string }) => x.name === 'dba'));
  assert.not.match(JSON.stringify(o.bootcmd ?? []), /groupadd/);
  assert.not.ok(off.tree.some((e) => e.path.includes('/etc/sudoers.d/')));
});

test('node tuning pigen applies: SELinux on EL (config and now), swap off, hugepages and strict overcommit as sysctl settings (node_sysctl_params wins a key it sets)', () => {
  const el = build(fleet(), ['os_profile=el9', 'node_disable_swap=true', 'node_hugepage_count=256', 'node_overcommit_ratio=90', 'node_sysctl_params={vm.overcommit_ratio: 80, fs.nr_open: 8388608}']);
  assert.is(file(el, 'nodes/10.10.10.11/rootfs/etc/selinux/config'), '# generated by pigen (node_selinux_mode)\nSELINUX=permissive\nSELINUXTYPE=targeted\n');
  assert.is(
    file(el, 'nodes/10.10.10.11/rootfs/etc/sysctl.d/90-pigsty.conf'),
    '# generated by pigen (node_hugepage_count, node_overcommit_ratio, node_sysctl_params)\nvm.nr_hugepages = 256\nvm.overcommit_memory = 2\nvm.overcommit_ratio = 80\nfs.nr_open = 8388608\n',
  );
  const run = parse(file(el, 'nodes/10.10.10.11/user-data')).runcmd.join('\n');
  assert.match(run, /setenforce 0/);
  assert.match(run, /swapoff -a/);
  // Hugepages beyond 90 % of memory are capped at first boot (Pigsty's cap): the command, run on
  // a 2 GB node's /proc/meminfo and a copy of the file.
  const cap = parse(file(el, 'nodes/10.10.10.11/user-data')).runcmd.find((x: string) => x.includes('MemTotal'));
  const d = tmp('pigen-hugepages-');
  writeFileSync(join(d, 'meminfo'), 'MemTotal:        2000000 kB\n');
  writeFileSync(join(d, 'sysctl.conf'), file(el, 'nodes/10.10.10.11/rootfs/etc/sysctl.d/90-pigsty.conf').replace('256', '4096'));
  const sh = spawnSync('sh', ['-c', cap.replaceAll('/proc/meminfo', join(d, 'meminfo')).replaceAll('/etc/sysctl.d/90-pigsty.conf', join(d, 'sysctl.conf')).replace('[ 256 -gt', '[ 4096 -gt')], { encoding: 'utf8' });
  assert.is(sh.status, 0, sh.stderr);
  assert.match(readFileSync(join(d, 'sysctl.conf'), 'utf8'), /^vm\.nr_hugepages = 878$/m);
  assert.match(file(build(fleet(), ['os_profile=el9', 'node_selinux_mode=enforcing']), 'nodes/10.10.10.11/rootfs/etc/selinux/config'), /^SELINUX=enforcing$/m);
  // Debian has no SELinux; swap stays on by default; no tuning: the sysctl file is the params'.
  const deb = build(fleet());
  assert.not.ok(deb.tree.some((e) => e.path.endsWith('/etc/selinux/config')));
  assert.not.match(parse(file(deb, 'nodes/10.10.10.11/user-data')).runcmd.join('\n'), /swapoff|setenforce/);
  assert.is(file(deb, 'nodes/10.10.10.11/rootfs/etc/sysctl.d/90-pigsty.conf'), '# generated by pigen (node_sysctl_params)\nfs.nr_open = 8388608\n');
  // What stays unapplied still says so.
  const r = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', '    node_selinux_mode: disabled\n    node_hugepage_ratio: 0.25\n    node_disable_swap: true')) }, readAssets(), { sets: [], strict: false });
  assert.equal(r.diagnostics.filter((d) => d.code === 'not-applied').map((d) => d.path.at(-1)), ['node_hugepage_ratio']);
});

test('nodename_exchange: a node with it is a # pigsty meta line in every other node\'s /etc/hosts (Pigsty publishes it to its play hosts); the file is then fleet-made, boot content', () => {
  // (The flag on the pg-test cluster only: its two nodes publish; every node receives.)
  const text = fleet().replace('    pg-test:\n      vars: { pg_cluster: pg-test }', '    pg-test:\n      vars: { pg_cluster: pg-test, nodename_exchange: true }');
  const c = build(text);
  const meta = (ip: string) => file(c, `nodes/${ip}/rootfs/etc/hosts`).split('\n').filter((l) => l.endsWith(' # pigsty meta'));
  assert.equal(meta('10.10.10.10'), ['10.10.10.11 pg-test-1 # pigsty meta', '10.10.10.12 pg-test-2 # pigsty meta']);
  assert.equal(meta('10.10.10.12'), ['10.10.10.11 pg-test-1 # pigsty meta']);
  assert.equal(meta('10.10.10.13'), ['10.10.10.11 pg-test-1 # pigsty meta', '10.10.10.12 pg-test-2 # pigsty meta']);
  const manifest = JSON.parse(file(c, 'manifest.json'));
  for (const img of Object.values(manifest.images) as { json: { out: string } }[]) assert.not.match(file(c, img.json.out), /"\/etc\/hosts"/);
  // Off (the default): no such line.
  assert.not.match(file(build(fleet()), 'nodes/10.10.10.12/rootfs/etc/hosts'), /pigsty meta/);
});

test('the admin user and SELinux, refused or warned where they would not work: a cloud image\'s default user, a uid Debian or EL assign, a DSA key, enforcing on an EL infra node', () => {
  const KEY = 'ssh-dss AAAAB3NzaC1kc3MAAAABAQAAAAEBAAAAAQEAAAABAQ==';
  const r = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(fleet('', `    node_admin_username: admin\n    node_admin_uid: 33\n    node_admin_pk_list: ['${KEY}']\n    os_profile: el9\n    node_selinux_mode: enforcing`)) }, readAssets(), { sets: [], strict: false });
  const got = r.diagnostics.filter((d) => d.severity === 'error' || d.code === 'selinux-enforcing').map((d) => `${d.code} ${d.message}`);
  assert.ok(got.some((m) => /bad-value `admin` is a user or group the node has already/.test(m)), got.join('\n'));
  assert.ok(got.some((m) => /bad-value uid 33 is taken by www-data on Debian/.test(m)), got.join('\n'));
  assert.ok(got.some((m) => /bad-value entry 0 of node_admin_pk_list has the unknown key type `ssh-dss`/.test(m)), got.join('\n'));
  assert.equal(got.filter((m) => m.startsWith('selinux-enforcing')).length, 1, 'one warning: the infra node');
});

test('proxy_env: apt gets the proxies and a DIRECT line per repo host no_proxy names (apt-config reads it); each yum repo its proxy unless no_proxy names its host; no_proxy as hosts, domains, globs, CIDRs', () => {
  assert.ok(bypasses('10.10.10.10', ['localhost', '10.0.0.0/8']));
  assert.not.ok(bypasses('11.0.0.1', ['10.0.0.0/8']));
  assert.ok(bypasses('repo.pigsty', ['*.pigsty']) && bypasses('pigsty', ['.pigsty']) && bypasses('a.b.pigsty', ['pigsty']));
  assert.ok(bypasses('mirrors.tuna.edu.cn', ['mirrors.*']));
  assert.not.ok(bypasses('deb.debian.org', ['mirrors.*', '*.pigsty', 'debian.org.evil']));
  assert.ok(bypasses('anything', ['*']));
  const env = 'proxy_env={http_proxy: "http://proxy.corp:3128", HTTPS_PROXY: "http://proxy.corp:3129", no_proxy: "localhost,10.0.0.0/8,*.pigsty"}';
  const deb = build(fleet(), [env, 'node_repo_modules=local,node']);
  const conf = file(deb, 'nodes/10.10.10.11/rootfs/etc/apt/apt.conf.d/90pigsty-proxy');
  assert.equal(conf.split('\n').filter((l) => l.startsWith('Acquire')), ['Acquire::http::Proxy "http://proxy.corp:3128";', 'Acquire::https::Proxy "http://proxy.corp:3129";', 'Acquire::http::Proxy::10.10.10.10 "DIRECT";']);
  if (needTools('apt-config reading the proxy configuration', 'apt-config')) {
    const d = tmp('pigen-aptconf-');
    writeFileSync(join(d, 'proxy.conf'), conf);
    const r = spawnSync('apt-config', ['-c', join(d, 'proxy.conf'), 'dump'], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Acquire::http::Proxy::10\.10\.10\.10 "DIRECT";$/m);
    assert.match(r.stdout, /^Acquire::https::Proxy "http:\/\/proxy\.corp:3129";$/m);
  }
  // The default proxy_env (no_proxy only) writes nothing.
  assert.not.ok(build(fleet()).tree.some((e) => e.path.endsWith('/90pigsty-proxy')));
  const el = build(fleet(), ['os_profile=el9', env, 'node_repo_modules=local,node']);
  const repo = (name: string) => file(el, `nodes/10.10.10.11/rootfs/etc/yum.repos.d/${name}.repo`);
  assert.match(repo('node'), /^\[baseos\]\n(?:.*\n)*?proxy = http:\/\/proxy\.corp:3129$/m, 'an https repo: the https proxy');
  assert.not.match(repo('local'), /proxy/, 'the admin node\'s repo, in no_proxy: direct');
});

test('proxy_env is the environment of `pigen bundle --download`: apt-get runs with its proxies', () => {
  const d = tmp('pigen-proxy-dl-');
  const bin = join(d, 'bin');
  mkdirSync(bin);
  // A stand-in apt-get that records its environment (the real one is proven in bundle-e2e).
  writeFileSync(join(bin, 'apt-get'), `#!/bin/sh\nenv >> '${join(d, 'env.txt')}'\nexit 0\n`, { mode: 0o755 });
  writeFileSync(join(d, 'pigsty.yml'), fleet('', '    proxy_env: { http_proxy: "http://proxy.corp:3128", no_proxy: "localhost,10.0.0.0/8" }'));
  const r = pigen(['bundle', '--download', '--cache', join(d, 'cache'), '--quiet'], d, { PATH: `${bin}:${process.env.PATH}` });
  assert.is(r.code, 0, r.stderr);
  const env = readFileSync(join(d, 'env.txt'), 'utf8');
  assert.match(env, /^http_proxy=http:\/\/proxy\.corp:3128$/m);
  assert.match(env, /^no_proxy=localhost,10\.0\.0\.0\/8$/m);
});

test("vector_log_endpoint: [infra] (the default) ships logs to every infra node's vlogs; [] ships them nowhere (the metrics sink stays), not read as the default; a host:port is a jsonline URL", () => {
  const sinks = (c: Compiled, ip: string) => (parse(file(c, `nodes/${ip}/rootfs/etc/vector/vector.yaml`)) as { sinks: Record<string, { uri?: string }> }).sinks;
  const uris = (c: Compiled, ip: string) => Object.values(sinks(c, ip)).flatMap((s) => (s.uri ? [s.uri] : []));
  assert.equal(uris(build(fleet()), '10.10.10.11'), ['http://10.10.10.10:9428/insert/jsonline']);
  const none = build(fleet('', '    vector_log_endpoint: []'));
  assert.equal(uris(none, '10.10.10.11'), []);
  assert.equal(Object.keys(sinks(none, '10.10.10.11')), ['prometheus']);
  assert.equal(uris(build(fleet('', '    vector_log_endpoint: [ "10.9.9.9:9428" ]')), '10.10.10.11'), ['http://10.9.9.9:9428/insert/jsonline']);
});

test.run();
