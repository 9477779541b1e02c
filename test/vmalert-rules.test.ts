// The vmalert rule files shipped in templates/vmalert/: both real validators accept them
// (promtool 2.42, vmalert 1.79 -dryRun), every alert carries the labels and annotations
// alertmanager routing and the dashboards rely on, and a promtool unit test shows the main
// alerts fire (and only those) on a small synthetic fleet.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import nunjucks from 'nunjucks';
import { ROOT, needTools, run, tmp } from './helpers.ts';
import { AGENT_PORTS } from '../generator/plan/infra.ts';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
}
interface Group {
  name: string;
  interval?: string;
  rules: Rule[];
}
interface RuleFile {
  groups: Group[];
}

const DIR = join(ROOT, 'templates', 'vmalert');
/** The rule files as installed (agent.yml from its template agent.yml.njk). */
const FILES = readdirSync(DIR).filter((n) => /\.yml(\.njk)?$/.test(n)).map((n) => n.replace(/\.njk$/, '')).sort();
const sourceOf = (n: string) => join(DIR, n === 'agent.yml' ? 'agent.yml.njk' : n);
// (agent.yml is a template: the agents' ports, Pigsty's defaults here. The rules are checked as
// rendered, in this folder's copy, which the validators read too.)
const RENDERED = tmp('pigen-rules-');
const agentCtx = { ports: Object.fromEntries(AGENT_PORTS.map(([agent, , port]) => [agent, String(port)])) };
for (const n of FILES) writeFileSync(join(RENDERED, n), n === 'agent.yml' ? nunjucks.renderString(readFileSync(sourceOf(n), 'utf8'), agentCtx) : readFileSync(sourceOf(n), 'utf8'));
const PATHS = FILES.map((n) => join(RENDERED, n));
const parsed = new Map<string, RuleFile>(FILES.map((n) => [n, parse(readFileSync(join(RENDERED, n), 'utf8')) as RuleFile]));
const rulesOf = (file: string) => parsed.get(file)!.groups.flatMap((g) => g.rules);
const alertsOf = (file: string) => rulesOf(file).flatMap((r) => (r.alert ? [r.alert] : []));
const allRules = FILES.flatMap(rulesOf);
const recorded = new Set(allRules.flatMap((r) => (r.record ? [r.record] : [])));

// Category each file's alerts must carry (agent.yml records only).
const CATEGORY: Record<string, string> = {
  'node.yml': 'node', 'infra.yml': 'infra', 'pgsql.yml': 'pgsql',
  'etcd.yml': 'etcd', 'minio.yml': 'minio', 'redis.yml': 'redis',
};
const SEVERITY: Record<string, string> = { '0': 'CRIT', '1': 'WARN', '2': 'INFO' };

const EXPECTED_ALERTS: Record<string, string[]> = {
  'node.yml': ['NodeDown', 'HaproxyDown', 'VectorDown', 'DockerDown', 'KeepalivedDown', 'NodeCpuHigh',
    'NodeLoadHigh', 'NodeOutOfMem', 'NodeMemSwapped', 'NodeFsSpaceFull', 'NodeFsFilesFull', 'NodeFdFull',
    'NodeDiskSlow', 'NodeTcpErrHigh', 'NodeTcpRetransHigh', 'NodeTimeDrift'],
  'infra.yml': ['InfraDown', 'AgentDown'],
  'pgsql.yml': ['PostgresDown', 'PgbouncerDown', 'PatroniDown', 'PatroniFailSafeActive', 'PgExporterDown',
    'PgbouncerExporterDown', 'PostgresRestart', 'PostgresPartition', 'PostgresPressureHigh',
    'PostgresReplicationBreak', 'PostgresReplicationLag', 'PostgresXidWarpAround', 'PgbouncerClientQueue',
    'PgbouncerQuerySlow', 'PostgresConnUsageHigh', 'PostgresIdleInXact'],
  'etcd.yml': ['EtcdServerDown', 'EtcdNoLeader', 'EtcdQuotaFull', 'EtcdNetworkPeerRTSlow', 'EtcdWalFsyncSlow'],
  'minio.yml': ['MinioServerDown', 'MinioNodeOffline', 'MinioDiskOffline', 'MinioErasureSetUnhealthy',
    'MinioClusterCapacityHigh'],
  'redis.yml': ['RedisDown', 'RedisRejectConn', 'RedisRTHigh', 'RedisCPUHigh', 'RedisMemHigh', 'RedisQPSHigh'],
};
const AGENT_RECORDS = ['node_up', 'haproxy_up', 'keepalived_exporter_up', 'docker_up', 'vector_up',
  'pg_exporter_agent_up', 'pgbouncer_exporter_agent_up', 'pgbackrest_exporter_agent_up', 'patroni_up',
  'etcd_up', 'minio_up', 'mysql_exporter_up', 'kafka_up', 'kafka_exporter_up'];
const GROUPS: Record<string, string[]> = {
  'agent.yml': ['agent-rules'], 'node.yml': ['node-rules', 'node-alert'], 'infra.yml': ['infra-rules', 'infra-alert'],
  'pgsql.yml': ['pgsql-rules', 'pgbouncer-rules', 'pgsql-alert'], 'etcd.yml': ['etcd-rules', 'etcd-alert'],
  'minio.yml': ['minio-alert'], 'redis.yml': ['redis-rules', 'redis-alert'],
};

// ---------------------------------------------------------------- structure (no tools needed)

test('templates/vmalert holds exactly the expected rule files and groups', () => {
  assert.equal(FILES, Object.keys(GROUPS).sort());
  for (const f of FILES) assert.equal(parsed.get(f)!.groups.map((g) => g.name), GROUPS[f], f);
});

test('files are tidy: header comment naming source and install path, 2-space indent, no tabs', () => {
  for (const f of FILES) {
    const text = readFileSync(join(RENDERED, f), 'utf8');
    assert.ok(text.endsWith('\n') && !text.endsWith('\n\n'), `${f}: ends with exactly one newline`);
    assert.not.match(text, /\t/, `${f}: tab character`);
    assert.not.match(text, /[ \t]+\n/, `${f}: trailing whitespace`);
    const header = text.slice(0, text.indexOf('groups:'));
    assert.match(header, /generated by pigen from templates\/vmalert/, `${f}: header names the source`);
    assert.match(header, new RegExp(`/infra/rules/${f.replace('.', '\\.')}`), `${f}: header names the install path`);
    for (const line of text.split('\n')) {
      const indent = line.length - line.trimStart().length;
      assert.ok(indent % 2 === 0, `${f}: odd indent in ${JSON.stringify(line)}`);
    }
  }
});

test('every rule is exactly one alert or one record, with an expression', () => {
  for (const f of FILES) {
    for (const r of rulesOf(f)) {
      assert.ok(Boolean(r.alert) !== Boolean(r.record), `${f}: ${r.alert ?? r.record} must be alert xor record`);
      assert.type(r.expr, 'string', `${f}: ${r.alert ?? r.record} expr`);
      if (r.record) {
        assert.is(r.labels, undefined, `${f}: record ${r.record} carries no labels`);
        assert.ok(/^[a-z]+:[a-z]+:[a-z0-9_]+$/.test(r.record) || /^[a-z_]+_up$/.test(r.record),
          `${f}: record ${r.record} follows <namespace>:<level>:<metric> (or <agent>_up)`);
      }
    }
  }
});

test('agent.yml records every agent liveness series and nothing else', () => {
  const records = rulesOf('agent.yml').map((r) => r.record);
  assert.equal(records, AGENT_RECORDS);
  assert.equal(alertsOf('agent.yml'), []);
});

test('every alert has level/severity/category labels and summary/description annotations', () => {
  for (const f of FILES) {
    for (const r of rulesOf(f).filter((x) => x.alert)) {
      const where = `${f}: ${r.alert}`;
      const labels = r.labels ?? {};
      assert.type(labels.level, 'string', `${where}: level must be a YAML string`);
      assert.ok(String(labels.level) in SEVERITY, `${where}: level ${String(labels.level)}`);
      assert.is(labels.severity, SEVERITY[String(labels.level)], `${where}: severity matches level`);
      assert.is(labels.category, CATEGORY[f], `${where}: category`);
      const ann = r.annotations ?? {};
      assert.type(ann.summary, 'string', `${where}: summary`);
      assert.type(ann.description, 'string', `${where}: description`);
      assert.ok((ann.summary as string).startsWith(`${labels.severity as string} ${r.alert}`), `${where}: summary prefix`);
      assert.match(ann.description as string, /\/ui\/d\/[a-z-]+/, `${where}: description links a dashboard under /ui/d/`);
      assert.not.match(ann.description as string, /https?:\/\//, `${where}: dashboard link is relative`);
    }
  }
});

test('alert names and group names are unique across files; expected alerts are present', () => {
  const alerts = FILES.flatMap(alertsOf);
  assert.equal(alerts.length, new Set(alerts).size, `duplicate alert names: ${alerts.filter((a, i) => alerts.indexOf(a) !== i).join(', ')}`);
  const groups = FILES.flatMap((f) => parsed.get(f)!.groups.map((g) => g.name));
  assert.equal(groups.length, new Set(groups).size, 'duplicate group names');
  for (const [f, want] of Object.entries(EXPECTED_ALERTS)) {
    const have = new Set(alertsOf(f));
    const missing = want.filter((a) => !have.has(a));
    assert.equal(missing, [], `${f} is missing alerts`);
  }
});

test('every recording rule an expression uses is defined in some file', () => {
  // exporter-native *_up gauges; any other *_up must come from a recording rule
  const native = new Set(['up', 'pg_up', 'pgbouncer_up', 'redis_up']);
  for (const r of allRules) {
    const expr = r.expr.replace(/"[^"]*"/g, '""');
    for (const m of expr.matchAll(/\b[a-z_]+:[a-z_]+:[a-z0-9_]+\b/g)) {
      assert.ok(recorded.has(m[0]), `${r.alert ?? r.record}: uses ${m[0]}, which no rule records`);
    }
    for (const m of expr.matchAll(/\b[a-z_]+_up\b/g)) {
      assert.ok(native.has(m[0]) || recorded.has(m[0]), `${r.alert ?? r.record}: uses ${m[0]}, which no rule records`);
    }
  }
});

// ---------------------------------------------------------------- real validators

const haveTools = needTools('rule validators', 'promtool', 'vmalert');
const toolTest = haveTools ? test : test.skip;

const VMALERT_ARGS = ['-dryRun', '-rule.validateExpressions=true', '-rule.validateTemplates=true', '-loggerLevel=WARN'];

toolTest('promtool check rules accepts every file', () => {
  for (const p of PATHS) {
    const r = run('promtool', ['check', 'rules', p]);
    const out = r.stdout + r.stderr;
    assert.is(r.code, 0, `promtool check rules ${p}\n${out}`);
    assert.match(out, /SUCCESS: \d+ rules found/, p);
    assert.not.match(out, /warn|lint|duplicate/i, `${p}\n${out}`);
  }
});

toolTest('vmalert -dryRun accepts every file, alone and all together (as -rule=/infra/rules/*.yml)', () => {
  const cases = [...PATHS.map((p) => [`-rule=${p}`]), [`-rule=${join(RENDERED, '*.yml')}`]];
  for (const ruleArgs of cases) {
    const r = run('vmalert', [...VMALERT_ARGS, ...ruleArgs]);
    const out = r.stdout + r.stderr;
    assert.is(r.code, 0, `vmalert ${ruleArgs.join(' ')}\n${out}`);
    assert.not.match(out, /\t(warn|error|fatal|panic)\t/, `vmalert ${ruleArgs.join(' ')}\n${out}`);
  }
});

toolTest('vmalert -dryRun really validates (control: a broken rule is rejected)', () => {
  const dir = tmp('pigen-vmalert-');
  const bad = join(dir, 'bad.yml');
  writeFileSync(bad, 'groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up <\n        bogus: 1\n');
  assert.is.not(run('vmalert', [...VMALERT_ARGS, `-rule=${bad}`]).code, 0);
  assert.is.not(run('promtool', ['check', 'rules', bad]).code, 0);
});

// ---------------------------------------------------------------- behaviour (promtool test rules)

const series = (name: string, labels: Record<string, string>, values: string) => ({
  series: `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`,
  values,
});
const N11 = { ip: '10.10.10.11', ins: 'node-11', cls: 'nodes' };
const N12 = { ip: '10.10.10.12', ins: 'node-12', cls: 'nodes' };
const PG1 = { job: 'pgsql', instance: '10.10.10.11:9630', ip: '10.10.10.11', ins: 'pg-test-1', cls: 'pg-test' };
const PG2 = { job: 'pgsql', instance: '10.10.10.13:9630', ip: '10.10.10.13', ins: 'pg-test-2', cls: 'pg-test' };
const PGB1 = { ...PG1, instance: '10.10.10.11:9631' };
const KAFKA = { job: 'kafka', instance: '10.10.10.14:9308', ip: '10.10.10.14', ins: 'kf-1', cls: 'kf' };
const REDIS = { job: 'redis', instance: '10.10.10.16:9121', ip: '10.10.10.16', ins: 'redis-1', cls: 'redis' };
const MINIO = { job: 'minio', instance: '10.10.10.15:9000', ip: '10.10.10.15', ins: 'minio-1', cls: 'minio' };

// 15s samples for 25 minutes; counters grow at a fixed per-sample step
const K = (v: number) => `${v}x100`;
const C = (step: number) => `0+${step}x100`;

const INPUT = [
  // node-11: exporter and vector up, haproxy down, 2 cores at 80% busy, load1 0.5 per core
  series('up', { job: 'node', instance: '10.10.10.11:9100', ...N11 }, K(1)),
  series('up', { job: 'node', instance: '10.10.10.11:9101', ...N11 }, K(0)),
  series('up', { job: 'node', instance: '10.10.10.11:9598', ...N11 }, K(1)),
  series('node_cpu_seconds_total', { job: 'node', instance: '10.10.10.11:9100', ...N11, cpu: '0', mode: 'idle' }, C(3)),
  series('node_cpu_seconds_total', { job: 'node', instance: '10.10.10.11:9100', ...N11, cpu: '1', mode: 'idle' }, C(3)),
  series('node_load1', { job: 'node', instance: '10.10.10.11:9100', ...N11 }, K(1)),
  // node-12: node_exporter unreachable
  series('up', { job: 'node', instance: '10.10.10.12:9100', ...N12 }, K(0)),
  // pg-test: two primaries (split brain); pg-test-1 is busy (1s of statements per second on 2 cores)
  series('up', PG1, K(1)),
  series('up', PG2, K(1)),
  series('pg_up', PG1, K(1)),
  series('pg_up', PG2, K(1)),
  series('pg_in_recovery', PG1, K(0)),
  series('pg_in_recovery', PG2, K(0)),
  series('pg_db_active_time', { ...PG1, datname: 'app' }, C(15)),
  // pg-test-2 lags 2 MiB behind pg-test-1; a pg_receivewal client lags more but is ignored
  series('pg_repl_replay_diff', { ...PG1, appname: 'pg-test-2', usename: 'replicator', address: '10.10.10.13', pid: '101' }, K(2097152)),
  series('pg_repl_replay_diff', { ...PG1, appname: 'pg_receivewal', usename: 'replicator', address: '10.10.10.20', pid: '102' }, K(1e9)),
  // 80 of 100 connections in use, database without its own limit
  series('pg_db_numbackends', { ...PG1, datname: 'app' }, K(80)),
  series('pg_db_conn_limit', { ...PG1, datname: 'app' }, K(-1)),
  series('pg_setting_max_connections', PG1, K(100)),
  // 5 clients queueing in pgbouncer
  series('up', PGB1, K(1)),
  series('pgbouncer_up', PGB1, K(1)),
  series('pgbouncer_pool_waiting_clients', { ...PGB1, datname: 'app', user: 'dbuser_app' }, K(5)),
  // a kafka_exporter down (AgentDown); a redis scrape down (has its own RedisDown, so no AgentDown)
  series('up', KAFKA, K(0)),
  series('up', REDIS, K(0)),
  series('redis_up', { ...REDIS }, K(1)),
  // minio: free-capacity gauge left out by metrics v3 (i.e. 0 free) => full
  series('up', MINIO, K(1)),
  series('minio_cluster_health_capacity_usable_total_bytes', MINIO, K(1e12)),
];

const alertLabels = (alertname: string, level: string, category: string, labels: Record<string, string>) => {
  const all: Record<string, string> = {
    alertname, alertstate: 'firing', level, severity: SEVERITY[level]!, category, ...labels,
  };
  return `ALERTS{${Object.entries(all).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}="${v}"`).join(',')}}`;
};

const EXPECTED_FIRING = [
  alertLabels('HaproxyDown', '0', 'node', { job: 'node', instance: '10.10.10.11:9101', ...N11 }),
  alertLabels('NodeDown', '0', 'node', { job: 'node', instance: '10.10.10.12:9100', ...N12 }),
  alertLabels('NodeCpuHigh', '1', 'node', { job: 'node', instance: '10.10.10.11:9100', ...N11 }),
  alertLabels('PostgresPressureHigh', '1', 'pgsql', { job: 'pgsql', ip: PG1.ip, ins: PG1.ins, cls: PG1.cls }),
  alertLabels('PostgresPartition', '0', 'pgsql', { job: 'pgsql', cls: 'pg-test' }),
  alertLabels('PostgresReplicationLag', '1', 'pgsql', { job: 'pgsql', cls: 'pg-test', ins: 'pg-test-2' }),
  alertLabels('PostgresConnUsageHigh', '1', 'pgsql', PG1),
  alertLabels('PostgresConnUsageHigh', '1', 'pgsql', { ...PG1, datname: 'app' }),
  alertLabels('PgbouncerClientQueue', '0', 'pgsql', { ...PGB1, datname: 'app' }),
  alertLabels('AgentDown', '1', 'infra', KAFKA),
  alertLabels('MinioClusterCapacityHigh', '1', 'minio', { job: 'minio', cls: 'minio' }),
];

toolTest('promtool test rules: a synthetic fleet fires exactly the expected alerts', () => {
  const dir = tmp('pigen-rules-test-');
  const spec = {
    rule_files: PATHS,
    evaluation_interval: '15s',
    tests: [{
      interval: '15s',
      input_series: INPUT,
      promql_expr_test: [
        { expr: 'ALERTS{alertstate="firing"}', eval_time: '20m', exp_samples: EXPECTED_FIRING.map((labels) => ({ labels, value: 1 })) },
        // recording chain spot checks
        { expr: 'pg:ins:pressure1', eval_time: '20m', exp_samples: [{ labels: `pg:ins:pressure1{cls="pg-test",ins="pg-test-1",ip="10.10.10.11",job="pgsql"}`, value: 0.8 }] },
        { expr: 'pg:db:conn_limit', eval_time: '20m', exp_samples: [{ labels: `pg:db:conn_limit{cls="pg-test",datname="app",instance="10.10.10.11:9630",ins="pg-test-1",ip="10.10.10.11",job="pgsql"}`, value: 100 }] },
        { expr: 'node:ins:cpu_count', eval_time: '20m', exp_samples: [{ labels: `node:ins:cpu_count{cls="nodes",instance="10.10.10.11:9100",ins="node-11",ip="10.10.10.11",job="node"}`, value: 2 }] },
      ],
    }],
  };
  const file = join(dir, 'rules.test.yml');
  writeFileSync(file, stringify(spec));
  const r = run('promtool', ['test', 'rules', file]);
  assert.is(r.code, 0, `promtool test rules ${file}\n${r.stdout}${r.stderr}`);
});

test.run();
