// A live INFRA stack from the embedded default inventory: `pigen build` with every listening port
// moved to a free port (--set, test-only), then the real daemons (Debian's victoria-metrics,
// vmalert, prometheus-alertmanager and nginx) run as children from a copy of the node's rootfs,
// each with exactly the flags of its generated /etc/default/<unit> (only absolute paths rebased
// into the copy) and nginx with the generated configuration (rebased as in nginx.test.ts). The
// checks go through nginx: /vmetrics/ lists the generated scrape targets, /vmalert/ the
// generated rule groups, /alertmgr/ answers with the generated configuration, and /pigsty/ is an
// autoindex of nginx_home, over HTTP and over HTTPS with the node's own first-boot certificate.
//
// As root (with unshare/nsenter/ip), everything runs in a private network namespace that only
// has loopback: the daemons bind `:port` as generated, and VictoriaMetrics scrapes the
// inventory's 10.10.10.10 targets, so nothing may reach a real interface. Without it, the stack
// runs on the host and the requests still only go to 127.0.0.1 (PIGEN_LIVE_NETNS=0 forces that).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parse, stringify } from 'yaml';
import { needTools, pigen, run, stopChild, tmp, which } from './helpers.ts';
import { copyNginxTree, makeCerts, NGINX } from './nginx-conf.ts';

// openssl makes the node's TLS files: nginx's (its own first-boot commands) and the etcd scrape
// job's client certificate, without which VictoriaMetrics does not start.
const HAVE = needTools('live stack', 'nginx', 'victoria-metrics', 'vmalert', 'prometheus-alertmanager') && needTools('live stack certificates', 'openssl');
const IP = '10.10.10.10';
const POLL_MS = 30_000;

// ---------------------------------------------------------------- processes

const children: { name: string; proc: ChildProcess; log: string }[] = [];
let holder: ChildProcess | undefined;

/** Kills every child: SIGTERM (nginx stops its workers on it), then SIGKILL after 5 s. */
async function stopAll() {
  const procs = [...children.map((c) => c.proc), ...(holder ? [holder] : [])];
  children.length = 0;
  holder = undefined;
  await Promise.all(procs.map((p) => stopChild(p, 'SIGTERM')));
}
// Last resort if the test process dies mid-way.
process.on('exit', () => {
  for (const c of children) c.proc.kill('SIGKILL');
  holder?.kill('SIGKILL');
});

/** A private network namespace with only loopback (up), held open by a child; null when unavailable. */
async function makeNetns(): Promise<string | null> {
  if (process.env.PIGEN_LIVE_NETNS === '0') return null;
  if (process.getuid?.() !== 0 || !which('unshare') || !which('nsenter') || !which('ip')) return null;
  if (run('unshare', ['--net', 'true']).code !== 0) return null;
  const p = spawn('unshare', ['--net', '--', 'sh', '-c', 'ip link set lo up && echo ready && exec cat'], { stdio: ['pipe', 'pipe', 'inherit'] });
  holder = p;
  const ok = await new Promise<boolean>((resolve) => {
    p.stdout!.once('data', (d: Buffer) => resolve(d.toString().includes('ready')));
    p.once('exit', () => resolve(false));
  });
  return ok ? `/proc/${p.pid}/ns/net` : null;
}

/** Starts `cmd args` (inside the namespace when there is one), output to a log file. */
function start(ns: string | null, dir: string, name: string, cmd: string, args: string[]): void {
  const log = join(dir, `${name}.log`);
  const fd = openSync(log, 'w');
  const [c, a] = ns ? ['nsenter', [`--net=${ns}`, '--', cmd, ...args]] : [cmd, args];
  const proc = spawn(c, a, { cwd: dir, stdio: ['ignore', fd, fd] });
  children.push({ name, proc, log });
}

/** Free TCP ports on 127.0.0.1, distinct. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

// ---------------------------------------------------------------- an HTTP client inside the namespace

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

// One long-lived Node process reads {id, url, ca} lines and answers with JSON lines.
const AGENT = `
const http = require('node:http'), https = require('node:https');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const q = JSON.parse(line);
  const u = new URL(q.url);
  const req = (u.protocol === 'https:' ? https : http).get(u, { ca: q.ca, timeout: 5000, agent: false }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => out({ id: q.id, status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => out({ id: q.id, error: e.message }));
});`;

class Client {
  private pending = new Map<number, (r: Reply | Error) => void>();
  private next = 1;
  private proc: ChildProcess;
  constructor(ns: string | null) {
    const [c, a] = ns ? ['nsenter', [`--net=${ns}`, '--', process.execPath, '-e', AGENT]] : [process.execPath, ['-e', AGENT]];
    this.proc = spawn(c, a, { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push({ name: 'client', proc: this.proc, log: '' });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const r = JSON.parse(line) as Reply & { id: number; error?: string };
      const done = this.pending.get(r.id);
      this.pending.delete(r.id);
      done?.(r.error ? new Error(r.error) : r);
    });
  }
  get(url: string, ca?: string): Promise<Reply> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, (r) => (r instanceof Error ? reject(r) : resolve(r)));
      this.proc.stdin!.write(JSON.stringify({ id, url, ca }) + '\n');
    });
  }
}

/** Retries `f` (a failed assertion or request) every 300 ms for at most POLL_MS; returns its value. */
async function poll<T>(what: string, f: () => Promise<T>): Promise<T> {
  const end = Date.now() + POLL_MS;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (Date.now() > end) {
        const logs = children.filter((c) => c.log).map((c) => `--- ${c.name} (${c.proc.exitCode ?? c.proc.signalCode ?? 'running'}):\n${readFileSync(c.log, 'utf8').split('\n').slice(-15).join('\n')}`);
        throw new Error(`${what}: still failing after ${POLL_MS / 1000}s: ${(e as Error).message}\n${logs.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

// ---------------------------------------------------------------- the generated flags

/** The `*_OPTS` flags of a generated /etc/default/<unit>, split on blanks as systemd splits `$VAR`. */
function envFlags(root: string, unit: string): string[] {
  const text = readFileSync(join(root, 'etc/default', unit), 'utf8');
  const m = /^[A-Z_]+_OPTS="([^"]*)"$/m.exec(text);
  assert.ok(m, `/etc/default/${unit} has a *_OPTS="..." line`);
  return m![1]!.split(/\s+/).filter(Boolean);
}

/** Rebases the data and config paths of flags (`-flag=/infra/...`, `-flag=/etc/...`) into root; nothing else changes. */
function rebaseFlags(flags: string[], root: string): string[] {
  return flags.map((f) => {
    const m = /^(--?[\w.-]+=)?(\/(infra|etc)\/.*)$/.exec(f);
    return m ? (m[1] ?? '') + root + m[2] : f;
  });
}

/** Every string of a YAML document that is an absolute /infra or /etc path, rebased into root. */
function rebaseYamlPaths(file: string, root: string) {
  const walk = (v: unknown): unknown =>
    typeof v === 'string' && /^\/(infra|etc)\//.test(v) ? root + v : Array.isArray(v) ? v.map(walk) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)])) : v;
  writeFileSync(file, stringify(walk(parse(readFileSync(file, 'utf8')))));
}

// ---------------------------------------------------------------- the test

interface Target {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: string;
}

test('live stack: victoria-metrics, vmalert, alertmanager and nginx from the generated files', async () => {
  if (!HAVE) return;
  const started = Date.now();
  const dir = tmp('pigen-live-');
  chmodSync(dir, 0o755); // nginx workers (www-data) read /pigsty/ under it
  try {
    const names = ['nginx_port', 'nginx_ssl_port', 'vmetrics_port', 'vmalert_port', 'alertmanager_port', 'grafana_port', 'blackbox_port', 'vlogs_port', 'vtraces_port', 'nginx_exporter_port', 'node_exporter_port'];
    const ports = Object.fromEntries((await freePorts(names.length)).map((p, i) => [names[i]!, p])) as Record<string, number>;
    const sets = [...names.map((k) => `${k}=${ports[k]}`), 'nginx_sslmode=enable'];
    const cwd = join(dir, 'cwd');
    mkdirSync(cwd);
    const b = pigen(['build', '-o', join(dir, 'out'), ...sets.flatMap((s) => ['--set', s])], cwd);
    assert.is(b.code, 0, `pigen build: ${b.stderr}`);

    // The node's rootfs, copied (symlinks kept: /infra → data/infra, /www → data/nginx).
    const root = join(dir, 'root');
    cpSync(join(dir, 'out/nodes', IP, 'rootfs'), root, { recursive: true, verbatimSymlinks: true });
    const manifest = JSON.parse(readFileSync(join(dir, 'out/manifest.json'), 'utf8')) as { nodes: Record<string, { files: { path: string; out: string }[] }> };
    const nodeFiles = manifest.nodes[IP]!.files.map((f) => ({ path: f.path, content: readFileSync(join(dir, 'out', f.out), 'utf8') }));
    const runcmd = ((parse(readFileSync(join(dir, 'out/nodes', IP, 'user-data'), 'utf8')) as { runcmd: unknown[] }).runcmd ?? []).filter((x): x is string => typeof x === 'string');

    const flags = {
      vmetrics: rebaseFlags(envFlags(root, 'vmetrics'), root),
      vmalert: rebaseFlags(envFlags(root, 'vmalert'), root),
      alertmanager: rebaseFlags(envFlags(root, 'alertmanager'), root),
    };
    assert.ok(flags.vmetrics.includes(`-httpListenAddr=:${ports.vmetrics_port}`), 'vmetrics listens on vmetrics_port');
    assert.ok(flags.vmalert.includes(`-httpListenAddr=:${ports.vmalert_port}`), 'vmalert listens on vmalert_port');
    assert.ok(flags.vmalert.includes(`-notifier.url=http://127.0.0.1:${ports.alertmanager_port}`), 'vmalert notifies alertmanager_port');
    assert.ok(flags.alertmanager.includes(`--web.listen-address=:${ports.alertmanager_port}`), 'alertmanager listens on alertmanager_port');

    // The scrape config names file_sd and TLS files by absolute path: rebased in the copy, too.
    rebaseYamlPaths(join(root, 'infra/prometheus.yml'), root);
    // The etcd job's client certificate and CA (/etc/pki, Pigsty's CA distribution, §2.1) are made
    // at first boot, not shipped; VictoriaMetrics refuses to start without them, so the test makes
    // stand-ins (the node's own command chowns to group infra, which this machine lacks).
    if (!existsSync(join(root, 'etc/pki/infra.crt'))) {
      mkdirSync(join(root, 'etc/pki'), { recursive: true });
      const k = join(root, 'etc/pki/infra.key');
      const c = join(root, 'etc/pki/infra.crt');
      assert.is(run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${IP}`, '-keyout', k, '-out', c]).code, 0);
      cpSync(c, join(root, 'etc/pki/ca.crt'));
    }
    for (const f of [...flags.vmetrics, ...flags.alertmanager]) {
      const m = /^--?(storageDataPath|storage\.path)=(.*)$/.exec(f);
      if (m) mkdirSync(m[2]!, { recursive: true }); // the runcmd `mkdir -p` of the node's data dirs
    }

    // nginx: the generated tree rebased under the copy (temp paths too, see copyNginxTree).
    const nginx = copyNginxTree(nodeFiles, root);
    assert.equal(makeCerts(nginx, runcmd), [], 'every nginx certificate has a first-boot command');
    const www = join(root, 'data/nginx/pigsty');
    mkdirSync(www, { recursive: true });
    writeFileSync(join(www, 'hello.txt'), 'hello from pigen\n');
    for (const d of ['data', 'data/nginx', 'data/nginx/pigsty']) chmodSync(join(root, d), 0o755);
    const nginxArgs = ['-p', `${root}/`, '-c', nginx.conf, '-g', `daemon off; pid ${root}/nginx.pid;`];

    // ---- start
    const ns = await makeNetns();
    if (!ns) console.log('\n  note: no private network namespace (needs root, unshare, nsenter, ip): the stack runs on the host\n');
    start(ns, dir, 'victoria-metrics', 'victoria-metrics', flags.vmetrics);
    start(ns, dir, 'prometheus-alertmanager', 'prometheus-alertmanager', flags.alertmanager);
    start(ns, dir, 'nginx', NGINX(), nginxArgs);
    const client = new Client(ns);
    const vm = `http://127.0.0.1:${ports.vmetrics_port}`;
    await poll('victoria-metrics /health', async () => assert.is((await client.get(`${vm}/health`)).status, 200));
    start(ns, dir, 'vmalert', 'vmalert', flags.vmalert);
    const shown = (a: string) => (/[\s;*]/.test(a) ? `'${a}'` : a);
    console.log('  started with:\n' + children.filter((c) => c.log).map((c) => `    ${c.proc.spawnargs.slice(ns ? 3 : 0).map(shown).join(' ')}`).join('\n'));

    const web = `http://127.0.0.1:${ports.nginx_port}`;

    // /pigsty/ is an autoindex of nginx_home; files are served.
    const index = await poll('GET /pigsty/', async () => {
      const r = await client.get(`${web}/pigsty/`);
      assert.is(r.status, 200, r.body);
      return r;
    });
    assert.match(index.body, /Index of \/pigsty\//);
    assert.match(index.body, /href="hello\.txt"/);
    const hello = await client.get(`${web}/pigsty/hello.txt`);
    assert.is(hello.status, 200);
    assert.is(hello.body, 'hello from pigen\n');
    assert.is((await client.get(`${web}/pigsty/missing`)).status, 404);
    const crt = nginx.certs.find(([c]) => c.endsWith('/i.pigsty.crt'))?.[0];
    assert.ok(crt, 'the home server has a certificate');
    const s = await client.get(`https://127.0.0.1:${ports.nginx_ssl_port}/pigsty/hello.txt`, readFileSync(root + crt!, 'utf8'));
    assert.is(s.status, 200, 'HTTPS with the first-boot certificate (SAN IP:127.0.0.1), verified');
    assert.is(s.body, 'hello from pigen\n');

    // nginx_exporter's scrape URI (from its env file) answers stub_status.
    const scrape = envFlags(root, 'nginx_exporter').find((f) => f.startsWith('-nginx.scrape-uri='))!.replace(/^[^=]*=/, '');
    assert.is(scrape, `http://127.0.0.1:${ports.nginx_port}/nginx`);
    const stub = await client.get(scrape);
    assert.is(stub.status, 200);
    assert.match(stub.body, /^Active connections: \d+/);

    // VictoriaMetrics (through nginx) has loaded the generated file_sd targets.
    const expected = new Map<string, Set<string>>();
    for (const job of ['node', 'infra', 'ping']) {
      const groups = readdirSync(join(root, 'infra/targets', job)).flatMap((f) => parse(readFileSync(join(root, 'infra/targets', job, f), 'utf8')) as { labels: Record<string, string>; targets: string[] }[]);
      expected.set(job, new Set(groups.flatMap((g) => g.targets.map((t) => `${t} ins=${g.labels.ins} ip=${g.labels.ip} cls=${g.labels.cls}`))));
    }
    // The generated targets follow the remapped ports.
    const infraPorts: [string, string][] = [['nginx', 'nginx_exporter_port'], ['vmetrics', 'vmetrics_port'], ['vlogs', 'vlogs_port'], ['vtraces', 'vtraces_port'], ['vmalert', 'vmalert_port'], ['alertmanager', 'alertmanager_port'], ['blackbox', 'blackbox_port'], ['grafana', 'grafana_port']];
    for (const [cls, port] of infraPorts) assert.ok(expected.get('infra')!.has(`${IP}:${ports[port]} ins=${cls}-1 ip=${IP} cls=${cls}`), `infra target ${cls} on ${port}`);
    assert.ok([...expected.get('node')!].some((t) => t.startsWith(`${IP}:${ports.node_exporter_port} `)), 'node target on node_exporter_port');
    const targets = await poll('GET /vmetrics/api/v1/targets lists node, infra and ping', async () => {
      const r = await client.get(`${web}/vmetrics/api/v1/targets`);
      assert.is(r.status, 200, r.body);
      const active = (JSON.parse(r.body) as { data: { activeTargets: Target[] } }).data.activeTargets;
      for (const [job, want] of expected) {
        // The ping job probes through blackbox: its target travels as ?target= (and the
        // instance label is the blackbox address, as the scrape config relabels it).
        const got = new Set(active.filter((t) => t.labels.job === job).map((t) => `${job === 'ping' ? new URL(t.scrapeUrl).searchParams.get('target') : t.labels.instance} ins=${t.labels.ins} ip=${t.labels.ip} cls=${t.labels.cls}`));
        assert.equal([...got].sort(), [...want].sort(), `job ${job}: instance and labels of the generated targets`);
      }
      return active;
    });
    assert.ok(targets.length >= [...expected.values()].reduce((n, s) => n + s.size, 0));
    const page = await client.get(`${web}/vmetrics/targets`);
    assert.is(page.status, 200);
    assert.match(page.body, /job="node"/);

    // vmalert (through nginx) has loaded the generated rule groups.
    const wantGroups = readdirSync(join(root, 'infra/rules')).flatMap((f) => (parse(readFileSync(join(root, 'infra/rules', f), 'utf8')) as { groups: { name: string }[] }).groups.map((g) => g.name)).sort();
    assert.ok(wantGroups.includes('node-alert') && wantGroups.includes('infra-alert'));
    // (vmalert 1.79 lists groups at /api/v1/rules; it has no /api/v1/groups.)
    await poll('GET /vmalert/api/v1/rules lists the generated groups', async () => {
      const r = await client.get(`${web}/vmalert/api/v1/rules`);
      assert.is(r.status, 200, r.body);
      const got = (JSON.parse(r.body) as { data: { groups: { name: string }[] } }).data.groups.map((g) => g.name).sort();
      assert.equal(got, wantGroups);
    });

    // The home page's "Alert Rules" link (infra_services) reaches vmalert's UI.
    assert.is((await client.get(`${web}/vmalert/vmalert/groups`)).status, 200);

    // alertmanager (through nginx) runs the generated configuration, without clustering.
    const status = await poll('GET /alertmgr/api/v2/status', async () => {
      const r = await client.get(`${web}/alertmgr/api/v2/status`);
      assert.is(r.status, 200, r.body);
      return JSON.parse(r.body) as { config: { original: string }; cluster: { status: string } };
    });
    const amConfig = parse(status.config.original) as { route: { receiver: string }; receivers: { name: string }[] };
    const generated = parse(readFileSync(join(root, 'etc/alertmanager.yml'), 'utf8')) as { route: { receiver: string } };
    assert.is(amConfig.route.receiver, generated.route.receiver);
    assert.ok(amConfig.receivers.some((r) => r.name === generated.route.receiver));
    assert.is(status.cluster.status, 'disabled');

    for (const c of children) assert.is(c.proc.exitCode, null, `${c.name} is still running`);
    console.log(`  live stack checked in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
