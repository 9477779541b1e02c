// Checks schemas/inventory.schema.json: it compiles under strict ajv, accepts the real Pigsty
// inventories in ../shared/fixtures/pigsty-conf, rejects wrong types, and documents every parameter
// with a description and its Pigsty v4.5.0 default.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import YAML from 'yaml';
import { needShared, SHARED, ROOT } from './helpers.ts';
import { PIGEN_KEYWORDS } from '../generator/load/schema.ts';

// ajv-formats is CommonJS; depending on the loader its default export may be wrapped.
const addFormats = ((addFormatsModule as any).default ?? addFormatsModule) as (a: Ajv) => Ajv;

const schema = JSON.parse(readFileSync(join(ROOT, 'schemas', 'inventory.schema.json'), 'utf8'));
const VARS: Record<string, any> = schema.definitions.vars.properties;

function makeAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  addFormats(ajv);
  for (const k of PIGEN_KEYWORDS) ajv.addKeyword(k);
  return ajv;
}
const validate = makeAjv().compile(schema);

function errorsOf(doc: unknown): string {
  return validate(doc) ? '' : JSON.stringify(validate.errors, null, 2);
}
function assertValid(doc: unknown, what: string) {
  const e = errorsOf(doc);
  if (e) console.error(`schema errors for ${what}:\n${e}`);
  assert.is(e, '', `${what} should be valid`);
}
function assertInvalid(doc: unknown, what: string) {
  assert.is(validate(doc), false, `${what} should be rejected`);
}
const withVars = (vars: Record<string, unknown>) => ({ all: { vars } });

/** Parameters that Pigsty leaves unset by default: identity params, VIP identity, per-OS repo_upstream, repo_build. */
const NO_DEFAULT = new Set([
  'infra_seq', 'nodename', 'pg_cluster', 'pg_seq', 'pg_role', 'etcd_seq', 'minio_seq', 'minio_cluster',
  'redis_node', 'redis_cluster', 'vip_address', 'vip_vrid', 'repo_upstream', 'repo_build',
]);

test('schema compiles with strict ajv 8 + ajv-formats', () => {
  assert.type(validate, 'function');
  assert.is(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.is(schema.$id, 'https://github.com/pigen/pigen/schemas/inventory.schema.json');
});

test('real Pigsty inventories (fixtures) are valid', () => {
  if (!needShared('schema fixture validation')) return;
  const dir = join(SHARED!, 'pigsty-conf');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yml')).sort();
  assert.equal(files, ['debian.yml', 'el.yml', 'full.yml', 'meta.yml', 'rich.yml', 'simu.yml']);
  for (const f of files) {
    const doc = YAML.parse(readFileSync(join(dir, f), 'utf8'), { version: '1.1', merge: true });
    assertValid(doc, f);
  }
});

test('minimal inventories are valid', () => {
  assertValid({ all: { vars: { admin_ip: '10.10.10.10' } } }, 'minimal');
  assertValid({ all: {} }, 'empty all');
  assertValid(
    {
      all: {
        hosts: { '10.10.10.9': null },
        children: {
          infra: { hosts: { '10.10.10.10': { infra_seq: 1 } } },
          app: { hosts: { '10.10.10.10': null }, children: { sub: { hosts: { '10.10.10.11': {} } } } },
        },
        vars: { pg_whatever: { any: ['thing'] }, haproxy_services: [] },
      },
    },
    'nested groups, null hosts, unknown module params',
  );
});

test('wrong types and values are rejected', () => {
  assertInvalid({}, 'missing all');
  assertInvalid({ all: {}, other: {} }, 'extra root key');
  assertInvalid({ all: { vars: {}, foo: 1 } }, 'extra key under all');
  assertInvalid({ all: { children: { g: { hosts: {}, extra: 1 } } } }, 'extra key in group');
  assertInvalid(withVars({ admin_ip: 'not-an-ip' }), 'admin_ip not ipv4');
  assertInvalid({ all: { children: { infra: { hosts: { '10.10.10.10': { infra_seq: 'x' } } } } } }, 'infra_seq: "x" (host vars)');
  assertInvalid(withVars({ infra_seq: 'x' }), 'infra_seq: "x"');
  assertInvalid(withVars({ infra_seq: -1 }), 'infra_seq: -1');
  assertInvalid(withVars({ nginx_port: 70000 }), 'nginx_port: 70000');
  assertInvalid(withVars({ nginx_port: '80' }), 'nginx_port as string');
  assertInvalid(withVars({ nginx_sslmode: 'maybe' }), 'nginx_sslmode: maybe');
  assertInvalid(withVars({ nginx_enabled: 'yes' }), 'nginx_enabled string');
  assertInvalid(withVars({ infra_portal: { home: { domain: 'i.pigsty', bogus: 1 } } }), 'portal entry with unknown field');
  assertInvalid(withVars({ infra_portal: { x: { scheme: 'ftp' } } }), 'portal scheme ftp');
  assertInvalid(withVars({ cert_validity: '20y' }), 'cert_validity 20y');
  assertInvalid(withVars({ pg_role: 'leader' }), 'pg_role leader');
  assertInvalid(withVars({ node_tune: 'fast' }), 'node_tune fast');
  assertInvalid(withVars({ node_dns_servers: '10.10.10.10' }), 'node_dns_servers as string');
  assertInvalid(withVars({ repo_upstream: [{ name: 'x', module: 'node' }] }), 'repo_upstream without baseurl');
  assertInvalid(withVars({ repo_upstream: [{ name: 'x', module: 'node', baseurl: { default: 'u' }, arch: ['i386'] }] }), 'repo_upstream arch i386');
  assertInvalid(withVars({ redis_instances: { abc: {} } }), 'redis_instances non-port key');
  assertInvalid(withVars({ os_profile: 'u24' }), 'os_profile u24');
  assertInvalid(withVars({ vip_vrid: 300 }), 'vip_vrid 300');
});

test('portal endpoints with placeholders are accepted (no regex on endpoint/domain/path)', () => {
  assertValid(
    withVars({ infra_portal: { home: { domain: 'i.pigsty', path: '/www' }, pgadmin: { domain: 'adm.pigsty', endpoint: '${admin_ip}:8885', websocket: true, scheme: 'https' } } }),
    'portal with ${admin_ip}',
  );
});

test('alertmanager_receivers: exactly one notifier, typed fields', () => {
  assertValid(
    withVars({
      alertmanager_receivers: [
        { name: 'ops-hook', matchers: ['severity="CRIT"', 'category=~"node|infra"'], webhook: { url: 'https://hooks.example.com/x', send_resolved: true } },
        { name: 'mail', email: { to: 'ops@example.com', from: 'am@example.com', smarthost: 'smtp.example.com:587', auth_username: 'am', auth_password: 's', require_tls: true } },
        { name: 'chat', slack: { api_url: 'https://hooks.slack.com/services/T/B/X', channel: '#alerts' } },
      ],
    }),
    'receivers',
  );
  assertInvalid(withVars({ alertmanager_receivers: [{ name: 'none' }] }), 'receiver without notifier');
  assertInvalid(withVars({ alertmanager_receivers: [{ name: 'two', webhook: { url: 'https://a.b/c' }, slack: { api_url: 'https://a.b/d' } }] }), 'receiver with two notifiers');
  assertInvalid(withVars({ alertmanager_receivers: [{ name: 'bad name', webhook: { url: 'https://a.b/c' } }] }), 'receiver name with space');
  assertInvalid(withVars({ alertmanager_receivers: [{ name: 'u', webhook: { url: 'not a uri' } }] }), 'webhook url not a uri');
  assertInvalid(withVars({ alertmanager_receivers: [{ name: 'm', email: { to: 'a@b.c', smarthost: 'smtp.example.com' } }] }), 'smarthost without port');
  assertInvalid(withVars({ alertmanager_receivers: [{ name: 'x', webhook: { url: 'https://a.b/c' }, extra: 1 }] }), 'receiver extra field');
  assertInvalid(withVars({ alertmanager_receivers: [{ name: 'x', matchers: ['just text'], webhook: { url: 'https://a.b/c' } }] }), 'bad matcher');
});

test('every vars property has a type, a description and (unless unset in Pigsty) a default', () => {
  const keys = Object.keys(VARS);
  assert.ok(keys.length >= 170, `expected many parameters, got ${keys.length}`);
  for (const k of keys) {
    const p = VARS[k];
    const def = typeof p.$ref === 'string' ? schema.definitions[p.$ref.replace('#/definitions/', '')] : undefined;
    assert.ok(p.type ?? def?.type, `${k} has no type`);
    assert.type(p.description, 'string', `${k} has no description`);
    assert.ok(p.description.length > 5, `${k} description too short`);
    if (NO_DEFAULT.has(k)) assert.not.ok('default' in p, `${k} should have no default`);
    else assert.ok('default' in p, `${k} has no default`);
  }
  for (const k of NO_DEFAULT) assert.ok(k in VARS, `${k} missing`);
});

test('all defaults together form a valid inventory', () => {
  const vars: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(VARS)) if ('default' in p) vars[k] = p.default;
  assertValid(withVars(vars), 'defaults document');
});

test('defaults match Pigsty v4.5.0 (§2)', () => {
  assert.is(VARS.admin_ip.default, '10.10.10.10');
  assert.is(VARS.nginx_port.default, 80);
  assert.is(VARS.vmetrics_port.default, 8428);
  assert.equal(VARS.node_ntp_servers.default, ['pool pool.ntp.org iburst']);
  assert.equal(VARS.dns_records.default, [
    '${admin_ip} i.pigsty',
    '${admin_ip} m.pigsty supa.pigsty api.pigsty adm.pigsty cli.pigsty ddl.pigsty',
  ]);
  assert.equal(VARS.infra_portal.default, { home: { domain: 'i.pigsty' } });
  assert.is(VARS.nginx_sslmode.default, 'enable');
  assert.is(VARS.alertmanager_port.default, 9059);
  assert.is(VARS.vmetrics_options.default, '-retentionPeriod=15d -promscrape.fileSDCheckInterval=5s');
  assert.equal(VARS.node_dns_servers.default, ['${admin_ip}']);
  assert.is(VARS.repo_modules.default, 'infra,node,pgsql');
  assert.is(VARS.node_repo_modules.default, 'local');
  assert.is(VARS.os_profile.default, 'd12');
  assert.equal(VARS.alertmanager_receivers.default, []);
  assert.is(VARS.repo_bundle.default, '');
});

test('x-pigen annotations', () => {
  const secrets = [
    'grafana_admin_password', 'grafana_view_password', 'haproxy_admin_password', 'vip_auth_pass',
    'pg_admin_password', 'pg_monitor_password', 'pg_replication_password', 'patroni_password',
    'minio_secret_key', 'etcd_root_password',
  ];
  for (const k of secrets) {
    assert.is(VARS[k]['x-pigen-secret'], true, `${k} secret`);
    assert.is(VARS[k].type, 'string');
  }
  const placeholders = [
    'infra_portal', 'dns_records', 'node_default_etc_hosts', 'node_etc_hosts', 'node_dns_servers',
    'node_ntp_servers', 'repo_upstream', 'vector_log_endpoint', 'repo_endpoint',
  ];
  for (const k of placeholders) assert.is(VARS[k]['x-pigen-placeholders'], true, `${k} placeholders`);
  const annotated = Object.keys(VARS).filter((k) => VARS[k]['x-pigen-placeholders']);
  assert.equal(annotated.sort(), [...placeholders].sort());
});


test('the precompiled validator (npm run build) reports exactly what the run-time compiled one does', async () => {
  const { compileAtRunTime, standaloneValidator, schemaHash } = await import('../generator/load/schema.ts');
  const { createRequire } = await import('node:module');
  // The generated CommonJS module, evaluated with a require() resolving from the project (so it
  // finds ajv-formats, as it does from dist/load/).
  const mod = { exports: {} as unknown };
  new Function('module', 'exports', 'require', standaloneValidator(schema))(mod, mod.exports, createRequire(join(ROOT, 'package.json')));
  const pre = mod.exports as ((d: unknown) => boolean) & { errors?: unknown; schemaHash: string };
  assert.is(pre.schemaHash, schemaHash(schema));
  const rt = compileAtRunTime(schema);
  const docs: [string, unknown][] = [];
  for (const d of ['invalid', 'valid']) {
    for (const n of readdirSync(join(ROOT, 'test', 'fixtures', d))) {
      try {
        docs.push([`${d}/${n}`, YAML.parse(readFileSync(join(ROOT, 'test', 'fixtures', d, n), 'utf8'), { version: '1.1', merge: true, logLevel: 'error' })]);
      } catch {
        // YAML syntax errors never reach the schema.
      }
    }
  }
  // And wrong values of every kind.
  docs.push(['bad types', { all: { vars: { admin_ip: 'x', nginx_port: 'eighty', node_dns_method: 'nope', infra_portal: [], nodename_overwrite: 3 }, hosts: { 'a b': 1 } } }]);
  let invalid = 0;
  for (const [name, d] of docs) {
    const a = rt(d);
    const b = pre(d);
    assert.is(b, a, `${name}: valid?`);
    if (!a) invalid++;
    // (What diagnostics are made of; an error's data may be a cyclic document: aliases.)
    const view = (errs: unknown) => JSON.stringify(((errs ?? []) as Record<string, unknown>[]).map((e) => [e.instancePath, e.schemaPath, e.keyword, e.params, e.message]));
    assert.is(view(pre.errors), view(rt.errors), `${name}: errors`);
  }
  assert.ok(invalid >= 10, `the corpus exercised errors (${invalid} invalid documents)`);
});

test.run();
