// The generated nginx tree passes the real nginx (`nginx -t`, Debian's 1.22) for the embedded
// default and the shared Pigsty inventories, under each nginx_sslmode, and with a portal holding
// an entry of every kind. Each infra node's /etc/nginx/** is copied under a temp prefix with its
// paths rebased (test copy only), its certificates are made by the node's own first-boot openssl
// commands, and the parsed configuration is checked against the inventory: the home server is
// the default_server, enforce answers plain HTTP of non-home entries with a 301, /pigsty/ is an
// autoindex of nginx_home, websocket headers appear only when asked, and so on.
import { test } from 'uvu';
import { verify as verifyCrypt } from 'unixcrypt';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadInventory } from '../generator/cli/common.ts';
import { compile, type Compiled } from '../generator/compile.ts';
import { formatDiagnostics } from '../generator/diagnostics.ts';
import { packageVersion, readAssets } from '../generator/io.ts';
import type { Json, JsonObject } from '../generator/types.ts';
import { SHARED, needShared, needTools, run, tmp } from './helpers.ts';
import { all, copyNginxTree, location, makeCerts, NGINX, nginxTest, one, parseNginx, servers, stopNginx, type Directive } from './nginx-conf.ts';

const HAVE_TOOLS = needTools('nginx -t', 'nginx', 'openssl');
const HAVE_SHARED = needShared('nginx -t of the Pigsty inventories (the embedded default and own portal cases still run)');

interface Built {
  compiled: Compiled;
  vars: Map<string, JsonObject>;
}

/** Builds in-process exactly as `pigen build` does (same loader, --set parsing and compiler). */
function build(cwd: string, arg: string | undefined, sets: string[]): Built {
  const quiet = { write: () => {}, isTTY: false };
  const r = loadInventory({ cwd, env: {}, stdout: quiet, stderr: quiet, epoch: 0 }, arg, sets, false);
  if (!r.inventory) throw new Error(`cannot build ${arg ?? '(default)'}:\n${formatDiagnostics(r.diagnostics, { color: false, sources: new Map() })}`);
  return { compiled: compile(r.inventory, readAssets(), { version: packageVersion() }), vars: new Map(r.inventory.nodes.map((n) => [n.ip, n.vars])) };
}

interface NodeOut {
  ip: string;
  files: { path: string; content: string }[];
  runcmd: string[];
}

/** Per node: the files as the manifest lists them (read back from the emitted tree) and user-data's runcmd. */
function nodesOf(c: Compiled): NodeOut[] {
  const data = new Map(c.tree.flatMap((e) => ('data' in e ? [[e.path, Buffer.from(e.data).toString('utf8')] as const] : [])));
  const nodes = c.manifest.nodes as Record<string, { files: { path: string; out: string }[]; userData: { out: string } }>;
  return Object.entries(nodes).map(([ip, n]) => ({
    ip,
    files: n.files.map((f) => ({ path: f.path, content: data.get(f.out)! })),
    runcmd: ((parse(data.get(n.userData.out)!) as { runcmd?: string[] }).runcmd ?? []).filter((x) => typeof x === 'string'),
  }));
}

// ---------------------------------------------------------------- expectations from the inventory

const isObj = (v: Json | undefined): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: Json | undefined, d: string) => (typeof v === 'string' ? v : d);
const num = (v: Json | undefined, d: number) => (typeof v === 'number' ? v : d);
const args = (d: Directive | undefined) => d?.args.join(' ');
const header = (list: Directive[] | undefined, name: string) => all(list, 'proxy_set_header').find((d) => d.args[0] === name)?.args[1];
const isRedirect = (s: Directive) => location(s.block, '/')?.block?.some((d) => d.name === 'return' && d.args[0] === '301') === true;

/** Checks one infra node's nginx configuration against its resolved variables. */
function checkSemantics(vars: JsonObject, files: Map<string, string>, where: string) {
  const mode = str(vars.nginx_sslmode, 'enable');
  const ssl = mode !== 'disable';
  const port = String(num(vars.nginx_port, 80));
  const sslPort = String(num(vars.nginx_ssl_port, 443));
  const home = str(vars.nginx_home, '/www');
  const portal = isObj(vars.infra_portal) ? vars.infra_portal : {};
  const all_ = servers(files);
  const at = (what: string) => `${where}: ${what}`;

  // Exactly the portal entries with a domain (and something to serve) have a conf file.
  const rendered = Object.entries(portal).filter(([k, e]) => isObj(e) && typeof e.domain === 'string' && e.domain !== '' && (k === 'home' || typeof e.path === 'string' || typeof e.endpoint === 'string'));
  const confs = [...files.keys()].filter((p) => p.startsWith('/etc/nginx/conf.d/') && p.endsWith('.conf')).sort();
  assert.equal(confs, rendered.map(([k]) => `/etc/nginx/conf.d/${k}.conf`).sort(), at('one conf file per portal entry with a domain'));

  // Only the home server is a default_server, on every port it listens on.
  const defaults = all_.flatMap(({ file, server }) => all(server.block, 'listen').filter((l) => l.args.includes('default_server')).map((l) => `${file}: ${args(l)}`));
  if ('home' in Object.fromEntries(rendered)) {
    assert.equal(defaults, [`/etc/nginx/conf.d/home.conf: ${port} default_server`, ...(ssl ? [`/etc/nginx/conf.d/home.conf: ${sslPort} ssl default_server`] : [])], at('default_server listens'));
  }
  if (!ssl) {
    for (const { file, server } of all_) {
      assert.not.ok(all(server.block, 'listen').some((l) => l.args.includes('ssl')), at(`${file}: no TLS listen when sslmode=disable`));
      assert.not.ok(one(server.block, 'ssl_certificate'), at(`${file}: no certificate when sslmode=disable`));
    }
  }

  for (const [key, e0] of rendered) {
    const e = e0 as JsonObject;
    const file = `/etc/nginx/conf.d/${key}.conf`;
    const inFile = all_.filter((s) => s.file === file).map((s) => s.server);
    const main = inFile.filter((s) => !isRedirect(s));
    const redirects = inFile.filter(isRedirect);
    const w = (what: string) => at(`${key}: ${what}`);
    assert.is(main.length, 1, w('one serving server block'));
    const s = main[0]!.block!;
    const names = [e.domain as string, ...(Array.isArray(e.domains) ? (e.domains as string[]) : [])];
    assert.equal(one(s, 'server_name')?.args, names, w('server_name'));
    assert.is(args(one(s, 'access_log')), `/var/log/nginx/${str(e.log, `${key}.log`)} main`, w('access log'));

    // Listening and HTTPS enforcement.
    const enforced = ssl && key !== 'home' && (mode === 'enforce' || e.enforce_https === true);
    const listens = all(s, 'listen').map((l) => l.args.filter((a) => a !== 'default_server').join(' '));
    assert.equal(listens, [...(enforced ? [] : [port]), ...(ssl ? [`${sslPort} ssl`] : [])], w('listen'));
    if (ssl) {
      assert.is(args(one(s, 'ssl_certificate')), str(e.cert, `/etc/nginx/conf.d/cert/${e.domain as string}.crt`), w('ssl_certificate'));
      assert.is(args(one(s, 'ssl_certificate_key')), str(e.key, `/etc/nginx/conf.d/cert/${e.domain as string}.key`), w('ssl_certificate_key'));
    }
    if (enforced) {
      assert.is(redirects.length, 1, w('a 301 server on the plain port (HTTPS enforced)'));
      const r = redirects[0]!.block!;
      assert.equal(all(r, 'listen').map((l) => args(l)), [port], w('redirect server listens on nginx_port only'));
      assert.equal(one(r, 'server_name')?.args, names, w('redirect server_name'));
      const target = `https://$host${sslPort === '443' ? '' : `:${sslPort}`}$request_uri`;
      assert.is(args(one(location(r, '/')?.block, 'return')), `301 ${target}`, w('301 target'));
      if (typeof e.certbot === 'string') assert.is(args(one(location(r, '/.well-known/acme-challenge/')?.block, 'root')), `${home}/acme`, w('ACME challenge stays on plain HTTP'));
    } else {
      assert.is(redirects.length, 0, w('no redirect server unless HTTPS is enforced'));
    }

    // What the entry serves.
    if (key === 'home') {
      assert.is(args(one(s, 'root')), str(e.path, home), w('root'));
      assert.is(args(one(s, 'autoindex')), e.index === false ? 'off' : 'on', w('autoindex'));
      const repo = location(s, '/pigsty/')?.block;
      assert.ok(repo, w('location /pigsty/'));
      assert.is(args(one(repo, 'root')), home, w('/pigsty/ is served from nginx_home'));
      assert.is(args(one(repo, 'autoindex')), 'on', w('/pigsty/ is an autoindex'));
      const ports: [string, string, number][] = [
        ['/vmetrics/', 'vmetrics_port', 8428], ['/vlogs/', 'vlogs_port', 9428], ['/vtraces/', 'vtraces_port', 10428],
        ['/vmalert/', 'vmalert_port', 8880], ['/alertmgr/', 'alertmanager_port', 9059], ['/blackbox/', 'blackbox_port', 9115],
      ];
      for (const [path, param, d] of ports) {
        assert.is(args(one(location(s, path)?.block, 'proxy_pass')), `http://127.0.0.1:${num(vars[param], d)}/`, w(`${path} → ${param}`));
        assert.is(header(location(s, path)?.block, 'Upgrade'), undefined, w(`${path}: no websocket headers`));
      }
      assert.is(args(one(location(s, '/ui/')?.block, 'proxy_pass')), `http://127.0.0.1:${num(vars.grafana_port, 3000)}`, w('/ui/ → grafana_port'));
      assert.is(header(location(s, '/ui/api/live/')?.block, 'Upgrade'), '$http_upgrade', w('grafana live is a websocket'));
      const stub = location(s, '=', '/nginx')?.block;
      if (vars.nginx_exporter_enabled !== false) assert.is(args(one(stub, 'stub_status')), 'on', w('stub_status for nginx_exporter'));
    } else if (typeof e.path === 'string') {
      assert.is(args(one(s, 'root')), e.path, w('root = path'));
      assert.is(args(one(location(s, '/')?.block, 'autoindex')), e.index === true ? 'on' : 'off', w('autoindex only when index: true'));
    } else {
      const up = parseNginx(files.get(file)!).find((d) => d.name === 'upstream' && d.args[0] === key);
      assert.is(args(one(up?.block, 'server')), `${e.endpoint as string} max_fails=0`, w('upstream'));
      const loc = location(s, '/')?.block;
      assert.is(args(one(loc, 'proxy_pass')), `${str(e.scheme, 'http')}://${key}/`, w('proxy_pass scheme'));
      const ws = e.websocket === true;
      assert.is(header(loc, 'Upgrade'), ws ? '$http_upgrade' : undefined, w(`Upgrade header ${ws ? '' : 'only when websocket'}`));
      assert.is(header(loc, 'Connection'), ws ? 'upgrade' : undefined, w('Connection header'));
      assert.is(args(one(loc, 'proxy_http_version')), ws ? '1.1' : undefined, w('proxy_http_version'));
    }
    if (typeof e.certbot === 'string') assert.is(args(one(location(s, '/.well-known/acme-challenge/')?.block, 'root')), `${home}/acme`, w('ACME challenge location'));
    else assert.not.ok(location(s, '/.well-known/acme-challenge/'), w('no ACME location without certbot'));
    if (e.auth === true) {
      assert.is(args(one(s, 'auth_basic')), str(e.realm, 'Pigsty'), w('auth_basic realm'));
      assert.is(args(one(s, 'auth_basic_user_file')), '/etc/nginx/.htpasswd', w('auth_basic_user_file'));
      const users = isObj(vars.nginx_users) ? vars.nginx_users : {};
      // One SHA-512-crypt line per user, sorted, never the password; without nginx_users the file
      // still exists (empty: nobody gets in, rather than a 500).
      const lines = files.get('/etc/nginx/.htpasswd')?.split('\n').filter(Boolean) ?? [];
      assert.equal(lines.map((l) => l.slice(0, l.indexOf(':'))), Object.keys(users).sort(), w('.htpasswd holds nginx_users'));
      for (const l of lines) {
        const [u, hash] = [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)];
        assert.match(hash, /^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/, w(`${u}: a SHA-512-crypt hash`));
        assert.ok(verifyCrypt(String(users[u]), hash), w(`${u}: the hash of its password`));
      }
    } else {
      assert.not.ok(one(s, 'auth_basic'), w('no basic auth unless asked'));
    }
    if (typeof e.config === 'string') {
      for (const d of parseNginx(e.config)) {
        assert.ok(s.some((x) => x.name === d.name && x.args.join(' ') === d.args.join(' ')), w(`raw config directive \`${d.name} ${d.args.join(' ')}\` is in the server block`));
      }
    }
  }
}

// ---------------------------------------------------------------- cases

interface Case {
  name: string;
  cwd: string;
  arg?: string;
  sets: string[];
}

const emptyDir = tmp('pigen-nginx-cwd-');
/** One entry of every kind (and one without a domain, which renders nothing). */
const PORTAL = `{
  home: { domain: i.pigsty, domains: [ home.pigsty ], certbot: i.pigsty },
  ws: { domain: ws.pigsty, endpoint: "\${admin_ip}:8884", websocket: true, scheme: https },
  api: { domain: api.pigsty, endpoint: "127.0.0.1:8885", log: api-access.log },
  site: { domain: site.pigsty, path: /www/site, index: true },
  docs: { domain: docs.pigsty, path: /www/docs },
  cb: { domain: cb.pigsty, endpoint: "127.0.0.1:8886", certbot: cb.pigsty, enforce_https: true },
  secret: { domain: sec.pigsty, path: /www/secret, auth: true, realm: Pigsty Admin },
  raw: { domain: raw.pigsty, endpoint: "127.0.0.1:8887", config: "add_header X-Pigen portal;\\n\\nclient_max_body_size 1g;\\nlocation = /health { return 200 ok; }\\n" },
  tls: { domain: tls.pigsty, endpoint: "127.0.0.1:8888", cert: /etc/ssl/pigen/tls.crt, key: /etc/ssl/private/tls.key },
  legacy: { endpoint: "\${admin_ip}:9115" }
}`;
const CASES: Case[] = [];
const INVENTORIES: { name: string; arg?: string }[] = [
  { name: 'default' },
  ...(HAVE_SHARED ? ['meta', 'full', 'simu', 'rich'].map((n) => ({ name: n, arg: `pigsty-conf/${n}.yml` })) : []),
];
for (const mode of ['disable', 'enable', 'enforce']) {
  for (const inv of INVENTORIES) CASES.push({ name: `${inv.name} sslmode=${mode}`, cwd: inv.arg ? SHARED! : emptyDir, ...(inv.arg ? { arg: inv.arg } : {}), sets: [`nginx_sslmode=${mode}`] });
  CASES.push({
    name: `portal kinds sslmode=${mode}`,
    cwd: emptyDir,
    sets: [`nginx_sslmode=${mode}`, `infra_portal=${PORTAL}`, 'nginx_users={ admin: pigsty, ops: "s3cr3t" }', 'nginx_port=8080', 'nginx_ssl_port=8443'],
  });
}
CASES.push({ name: 'default os_profile=el9', cwd: emptyDir, sets: ['os_profile=el9', `infra_portal=${PORTAL}`] });

// ---------------------------------------------------------------- tests

test('rendered nginx files are tidy: no tabs, no trailing blanks, no doubled blank lines, one final newline', () => {
  const { compiled } = build(emptyDir, undefined, [`infra_portal=${PORTAL}`, 'nginx_sslmode=enforce', 'nginx_users={ admin: pigsty }']);
  for (const n of nodesOf(compiled)) {
    for (const f of n.files.filter((x) => x.path.startsWith('/etc/nginx/') && x.path.endsWith('.conf'))) {
      assert.not.match(f.content, /\t/, `${f.path}: tab`);
      assert.not.match(f.content, /[ \t]+\n/, `${f.path}: trailing whitespace`);
      assert.not.match(f.content, /\n\n\n/, `${f.path}: doubled blank line`);
      assert.not.match(f.content, /\{\n\n|\n\n\s*\}/, `${f.path}: blank line after { or before }`);
      assert.ok(f.content.endsWith('\n') && !f.content.endsWith('\n\n'), `${f.path}: one final newline`);
      for (const line of f.content.split('\n')) assert.ok((line.length - line.trimStart().length) % 4 === 0, `${f.path}: indent of ${JSON.stringify(line)}`);
    }
  }
});

test('the parser and the path rebasing used below understand the generated configuration', () => {
  const conf = 'user www-data;\npid /run/nginx.pid;\nhttp {\n  access_log off;\n  server { root "/www"; location / { return 301 https://$host$request_uri; } } # a comment\n}\n';
  const tree = parseNginx(conf);
  assert.equal(tree.map((d) => d.name), ['user', 'pid', 'http']);
  const s = one(one(tree, 'http')!.block, 'server')!;
  assert.is(args(one(s.block, 'root')), '/www');
  assert.ok(isRedirect(s));
  const dir = tmp('pigen-nginx-rebase-');
  try {
    const copy = copyNginxTree([{ path: '/etc/nginx/nginx.conf', content: conf }], dir);
    assert.is(copy.files.get('/etc/nginx/nginx.conf'), conf, 'files keeps the generated text');
    assert.equal(copy.paths.map((p) => `${p.name} ${p.path}`), ['pid /run/nginx.pid', 'access_log off', 'root /www']);
    const written = parseNginx(readFileSync(copy.conf, 'utf8'));
    assert.equal(written.map((d) => d.name), ['user', 'http'], 'pid is left to -g');
    const http = one(written, 'http')!.block;
    assert.is(args(one(http, 'proxy_temp_path')), `${dir}/var/lib/nginx/proxy`);
    assert.is(args(one(http, 'access_log')), 'off');
    assert.is(args(one(one(http, 'server')!.block, 'root')), `${dir}/www`);
    assert.ok(existsSync(join(dir, 'etc/nginx/mime.types')), 'the system mime.types is copied');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('first-boot certificate commands, run as generated, cover every domain, the validity and the key mode', () => {
  if (!HAVE_TOOLS) return;
  const portal = '{ home: { domain: i.pigsty, domains: [ home.pigsty ], certbot: i.pigsty }, api: { domain: api.pigsty, domains: [ api2.pigsty ], endpoint: "127.0.0.1:8885" } }';
  const { compiled } = build(emptyDir, undefined, [`infra_portal=${portal}`, 'nginx_cert_validity=30d']);
  const [n] = nodesOf(compiled);
  const prefix = tmp('pigen-nginx-certs-');
  try {
    const copy = copyNginxTree(n!.files, prefix);
    assert.equal(makeCerts(copy, n!.runcmd), []);
    const want: Record<string, string> = {
      '/etc/nginx/conf.d/cert/i.pigsty.crt': 'DNS:i.pigsty, DNS:home.pigsty, DNS:localhost, IP Address:127.0.0.1, IP Address:10.10.10.10',
      '/etc/nginx/conf.d/cert/api.pigsty.crt': 'DNS:api.pigsty, DNS:api2.pigsty, DNS:localhost, IP Address:127.0.0.1, IP Address:10.10.10.10',
    };
    assert.equal(copy.certs.map(([c]) => c).sort(), Object.keys(want).sort());
    for (const [crt, key] of copy.certs) {
      const san = run('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', prefix + crt]);
      assert.is(san.stdout.split('\n')[1]?.trim(), want[crt], `${crt}: SAN`);
      assert.is(run('openssl', ['x509', '-noout', '-checkend', String(29 * 86400), '-in', prefix + crt]).code, 0, `${crt}: valid for 29 days`);
      assert.is(run('openssl', ['x509', '-noout', '-checkend', String(31 * 86400), '-in', prefix + crt]).code, 1, `${crt}: expires within 31 days (nginx_cert_validity)`);
      assert.is(statSync(prefix + key).mode & 0o777, 0o600, `${key}: mode`);
    }
    const again = makeCerts(copy, n!.runcmd);
    assert.equal(again, [], 'the commands are idempotent');
    const r = nginxTest(copy);
    assert.is(r.code, 0, r.stderr);
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
});

for (const c of CASES) {
  test(`nginx -t: ${c.name}`, () => {
    if (!HAVE_TOOLS) return;
    const { compiled, vars } = build(c.cwd, c.arg, c.sets);
    const infra = nodesOf(compiled).filter((n) => n.files.some((f) => f.path === '/etc/nginx/nginx.conf'));
    assert.ok(infra.length > 0, 'some node runs nginx');
    for (const n of infra) {
      const where = `${c.name} ${n.ip}`;
      const prefix = tmp('pigen-nginx-');
      try {
        const copy = copyNginxTree(n.files, prefix);
        // Every path the configuration names was rebased (only `access_log off` stays as is).
        for (const p of copy.paths) assert.ok(p.path.startsWith('/') || (p.name === 'access_log' && p.path === 'off'), `${where}: ${p.file}: ${p.name} ${p.path} is not absolute`);
        const missing = makeCerts(copy, n.runcmd, { fastKeys: true });
        assert.equal(missing, [], `${where}: certificates that no first-boot command creates (nginx would not start)`);
        const r = nginxTest(copy);
        assert.is(r.code, 0, `${where}: nginx -t failed:\n${r.stderr}`);
        assert.is(r.stderr.trim(), '', `${where}: nginx -t printed:\n${r.stderr}`);
        checkSemantics(vars.get(n.ip)!, copy.files, where);
      } finally {
        rmSync(prefix, { recursive: true, force: true });
      }
    }
  });
}

test.after(() => rmSync(emptyDir, { recursive: true, force: true }));

test('basic auth in a real nginx: the hashed .htpasswd lets each user in with its password (`:` and spaces included), nobody else', async () => {
  if (!HAVE_TOOLS || !needTools('basic auth through nginx', 'curl')) return;
  const port = await new Promise<number>((res) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as AddressInfo).port;
      srv.close(() => res(p));
    });
  });
  const users = { admin: 'pigsty', ops: 'p:a ss!' };
  const { compiled } = build(emptyDir, undefined, ['nginx_sslmode=disable', `nginx_port=${port}`, 'infra_portal={ home: { domain: i.pigsty, auth: true, certbot: i.pigsty }, sec: { domain: sec.pigsty, path: /www/secret, auth: true } }', `nginx_users=${JSON.stringify(users)}`]);
  const n = nodesOf(compiled).find((x) => x.files.some((f) => f.path === '/etc/nginx/.htpasswd'))!;
  assert.not.match(n.files.find((f) => f.path === '/etc/nginx/.htpasswd')!.content, /pigsty|p:a ss/, 'no password in the file');
  const prefix = tmp('pigen-nginx-auth-');
  const copy = copyNginxTree(n.files, prefix);
  makeCerts(copy, n.runcmd, { fastKeys: true });
  assert.ok(copy.paths.some((p) => p.name === 'root' && p.path === '/www/secret'), 'the entry serves /www/secret');
  // (Readable by nginx's workers, which run as another user.)
  chmodSync(prefix, 0o755);
  mkdirSync(join(prefix, 'www/secret'), { recursive: true });
  writeFileSync(join(prefix, 'www/secret/index.html'), 'in\n');
  mkdirSync(join(prefix, 'www/pigsty'), { recursive: true });
  writeFileSync(join(prefix, 'www/pigsty/Packages'), 'Package: x\n');
  const child = spawn(NGINX(), ['-p', prefix + '/', '-c', copy.conf, '-g', `daemon off; pid ${prefix}/nginx.pid;`], { stdio: 'ignore' });
  const code = (cred?: string) => run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', ...(cred ? ['-u', cred] : []), '--resolve', `sec.pigsty:${port}:127.0.0.1`, `http://sec.pigsty:${port}/`]).stdout;
  try {
    for (let i = 0; i < 50 && code() === '000'; i++) await new Promise((res) => setTimeout(res, 100));
    assert.is(code('admin:pigsty'), '200');
    assert.is(code('ops:p:a ss!'), '200');
    assert.is(code('admin:wrong'), '401');
    assert.is(code('ops:pigsty'), '401');
    assert.is(code(), '401');
    // Basic auth on the home server keeps its pages behind it, but not the local repo (every
    // node's apt sends no credentials), nginx_exporter's /nginx, nor the ACME challenge. (A
    // review found all three answering 401: no node could install a package.)
    const home = (path: string, cred?: string) => run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', ...(cred ? ['-u', cred] : []), '--resolve', `i.pigsty:${port}:127.0.0.1`, `http://i.pigsty:${port}${path}`]).stdout;
    assert.is(home('/'), '401');
    assert.is(home('/vmetrics/'), '401');
    assert.is(home('/pigsty/Packages'), '200');
    assert.is(home('/nginx'), '200');
    assert.is(home('/.well-known/acme-challenge/none'), '404');
  } finally {
    await stopNginx(child);
    rmSync(prefix, { recursive: true, force: true });
  }
});

test.run();
