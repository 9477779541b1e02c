// What infra nodes get (INFRA module, pigsty-infra.md §2.2–2.6, §3): nginx and its portal,
// VictoriaMetrics/Logs/Traces, vmalert and rules, alertmanager, blackbox, grafana, dnsmasq.

import type { FilePlan, Inventory, Json, JsonObject, ResolvedNode } from '../types.js';
import { emptyPart, type Part } from './node.js';
import { expandPackages, type OsProfile } from './os.js';
import { servesBundle } from './repo.js';
import { fleetTargets } from './targets.js';
import { splitOptions, unitFiles } from './units.js';
import { Vars } from './vars.js';
import type { Secrets } from '../secrets/index.js';

const isObj = (v: Json | undefined): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Rule files shipped in templates/vmalert, and the module that makes each one relevant. */
const RULE_FILES: [string, string | null][] = [
  ['agent', null],
  ['node', null],
  ['infra', null],
  ['pgsql', 'pgsql'],
  ['etcd', 'etcd'],
  ['redis', 'redis'],
  ['minio', 'minio'],
];

/** The agents agent.yml tells apart by port: their parameter and Pigsty's default. */
export const AGENT_PORTS: [string, string, number][] = [
  ['node', 'node_exporter_port', 9100],
  ['haproxy', 'haproxy_exporter_port', 9101],
  ['keepalived', 'keepalived_exporter_port', 9650],
  ['docker', 'docker_exporter_port', 9323],
  ['vector', 'vector_port', 9598],
  ['pg_exporter', 'pg_exporter_port', 9630],
  ['pgbouncer_exporter', 'pgbouncer_exporter_port', 9631],
  ['pgbackrest_exporter', 'pgbackrest_exporter_port', 9854],
  ['patroni', 'patroni_port', 8008],
];

/** Per agent, the ports the fleet's nodes give it, as a regex alternative (a host may override one). */
function agentPorts(inv: Inventory): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [agent, param, def] of AGENT_PORTS) {
    const ports = new Set(inv.nodes.map((n) => new Vars(n.vars).num(param, def)));
    out[agent] = ports.size === 1 ? String([...ports][0]) : `(${[...ports].sort((a, b) => a - b).join('|')})`;
  }
  return out;
}

export interface PortalEntry {
  key: string;
  domain: string;
  domains: string[];
  kind: 'home' | 'endpoint' | 'path';
  endpoint?: string;
  path?: string;
  scheme: string;
  websocket: boolean;
  certbot?: string;
  cert: string;
  key_file: string;
  enforceHttps: boolean;
  auth: boolean;
  realm: string;
  index: boolean;
  log: string;
  /** Raw `config` directives, one line each (trailing blanks trimmed). */
  config: string[];
}

/** A raw nginx snippet as lines, re-indented by the template: outer blank lines dropped. */
function configLines(s: string): string[] {
  const lines = s.split(/\r?\n/).map((l) => l.trim());
  while (lines.length && !lines[0]) lines.shift();
  while (lines.length && !lines[lines.length - 1]) lines.pop();
  return lines;
}

/** infra_portal entries that render a server block (those with a domain), sorted by key. */
export function portalEntries(v: Vars, signed = false): PortalEntry[] {
  const portal = v.obj('infra_portal');
  const out: PortalEntry[] = [];
  for (const key of Object.keys(portal).sort()) {
    const e = portal[key];
    if (!isObj(e) || typeof e.domain !== 'string' || e.domain === '') continue;
    const kind = key === 'home' ? 'home' : typeof e.path === 'string' ? 'path' : typeof e.endpoint === 'string' ? 'endpoint' : null;
    if (!kind) continue;
    const domain = e.domain;
    out.push({
      key,
      domain,
      domains: Array.isArray(e.domains) ? e.domains.filter((d): d is string => typeof d === 'string') : [],
      kind,
      ...(typeof e.endpoint === 'string' ? { endpoint: e.endpoint } : {}),
      ...(typeof e.path === 'string' ? { path: e.path } : {}),
      scheme: e.scheme === 'https' ? 'https' : 'http',
      websocket: e.websocket === true,
      ...(typeof e.certbot === 'string' && e.certbot ? { certbot: e.certbot } : {}),
      // With the secrets file, every entry uses the node's CA-signed certificate (SAN: all domains).
      cert: typeof e.cert === 'string' ? e.cert : signed ? '/etc/nginx/conf.d/cert/pigsty.crt' : `/etc/nginx/conf.d/cert/${domain}.crt`,
      key_file: typeof e.key === 'string' ? e.key : signed ? '/etc/nginx/conf.d/cert/pigsty.key' : `/etc/nginx/conf.d/cert/${domain}.key`,
      enforceHttps: e.enforce_https === true,
      auth: e.auth === true,
      realm: typeof e.realm === 'string' ? e.realm : 'Pigsty',
      index: key === 'home' ? e.index !== false : e.index === true,
      log: typeof e.log === 'string' ? e.log : `${key}.log`,
      config: typeof e.config === 'string' ? configLines(e.config) : [],
    });
  }
  return out;
}

export function planInfra(inv: Inventory, n: ResolvedNode, os: OsProfile, secrets?: Secrets): Part {
  const v = new Vars(n.vars);
  const p = emptyPart();
  const seq = v.num('infra_seq', 0);
  const infraData = '/data/infra';
  const scrapeInterval = v.str('vmetrics_scrape_interval', '10s');
  const fleetModules = new Set(inv.nodes.flatMap((x) => x.modules));
  const userOpts = (k: string) => splitOptions(v.str(k));
  const victoriaUsed = ['vmetrics_enabled', 'vlogs_enabled', 'vtraces_enabled', 'vmalert_enabled'].some((k) => v.on(k));

  p.early.push(`mkdir -p ${infraData} && { [ -e /infra ] || ln -s ${infraData} /infra; }`);
  p.users.push({ name: 'victoria', groups: ['infra'], home: '/var/lib/victoria' });
  p.users.push({ name: 'prometheus', groups: ['infra'], home: '/var/lib/prometheus' });

  // ── VictoriaMetrics + scrape config + targets ──
  if (v.on('vmetrics_enabled')) {
    p.packages.push(os.packages.vmetrics);
    p.dirs.push({ path: '/infra/metrics', owner: 'victoria:infra', mode: '0750' });
    p.files.push({
      path: '/infra/prometheus.yml',
      kind: 'scrape-config',
      mode: '0644',
      owner: 'root:root',
      template: 'victoria/prometheus.yml.njk',
      ctx: {
        interval: scrapeInterval,
        timeout: v.str('vmetrics_scrape_timeout', '8s'),
        blackbox: `127.0.0.1:${v.num('blackbox_port', 9115)}`,
        metricsPath: v.str('exporter_metrics_path', '/metrics'),
        redisExporterPort: v.num('redis_exporter_port', 9121),
        modules: { pgsql: fleetModules.has('pgsql'), etcd: fleetModules.has('etcd'), minio: fleetModules.has('minio'), redis: fleetModules.has('redis') },
      },
    });
    p.files.push(...fleetTargets(inv));
    p.files.push(
      ...unitFiles({
        name: 'vmetrics',
        description: 'VictoriaMetrics (pigsty)',
        user: 'victoria',
        group: 'infra',
        exec: os.bins.vmetrics,
        envVar: 'VMETRICS_OPTS',
        flags: ['-storageDataPath=/infra/metrics', `-httpListenAddr=:${v.num('vmetrics_port', 8428)}`, '-promscrape.config=/infra/prometheus.yml', ...userOpts('vmetrics_options')],
        nofile: 8388608,
        oomScoreAdjust: -1000,
        timeoutSec: 120,
        after: ['network-online.target'],
        wants: ['network-online.target'],
      }),
    );
    p.services.push('vmetrics');
  }
  // VictoriaLogs and VictoriaTraces: the same shape, their own data dir, port and open-file limit.
  for (const [name, title, dir, port, nofile] of [
    ['vlogs', 'VictoriaLogs', '/infra/logs', v.num('vlogs_port', 9428), 4194304],
    ['vtraces', 'VictoriaTraces', '/infra/traces', v.num('vtraces_port', 10428), 2097152],
  ] as const) {
    if (!v.on(`${name}_enabled`)) continue;
    p.packages.push(os.packages[name]);
    p.dirs.push({ path: dir, owner: 'victoria:infra', mode: '0750' });
    p.files.push(
      ...unitFiles({
        name,
        description: `${title} (pigsty)`,
        user: 'victoria',
        group: 'infra',
        exec: os.bins[name],
        envVar: `${name.toUpperCase()}_OPTS`,
        flags: [`-storageDataPath=${dir}`, `-httpListenAddr=:${port}`, ...userOpts(`${name}_options`)],
        nofile,
        after: ['network-online.target'],
        wants: ['network-online.target'],
      }),
    );
    p.services.push(name);
  }

  // ── vmalert + rules ──
  if (v.on('vmalert_enabled') && v.on('vmetrics_enabled')) {
    p.packages.push(os.packages.vmalert);
    for (const [name, mod] of RULE_FILES) {
      if (mod && !fleetModules.has(mod as never)) continue;
      p.files.push({ path: `/infra/rules/${name}.yml`, kind: 'vmalert-rules', mode: '0644', owner: 'root:root', ...(name === 'agent' ? { template: 'vmalert/agent.yml.njk', ctx: { ports: agentPorts(inv) }, fleet: true } : { template: `vmalert/${name}.yml` }) });
    }
    const vm = `http://127.0.0.1:${v.num('vmetrics_port', 8428)}`;
    p.files.push(
      ...unitFiles({
        name: 'vmalert',
        description: 'vmalert (pigsty)',
        user: 'victoria',
        group: 'infra',
        exec: os.bins.vmalert,
        envVar: 'VMALERT_OPTS',
        flags: [
          `-datasource.url=${vm}`,
          `-remoteRead.url=${vm}`,
          `-remoteWrite.url=${vm}`,
          // Debian's vmalert 1.79 has no -notifier.blackhole: without alertmanager, notifications just fail.
          `-notifier.url=http://127.0.0.1:${v.num('alertmanager_port', 9059)}`,
          `-httpListenAddr=:${v.num('vmalert_port', 8880)}`,
          '-rule=/infra/rules/*.yml',
          `-evaluationInterval=${scrapeInterval}`,
          ...userOpts('vmalert_options'),
        ],
        nofile: 131072,
        after: ['vmetrics.service'],
        wants: ['vmetrics.service'],
      }),
    );
    p.services.push('vmalert');
  }

  // ── alertmanager ──
  if (v.on('alertmanager_enabled')) {
    p.packages.push(os.packages.alertmanager);
    p.dirs.push({ path: '/infra/alertmgr', owner: 'prometheus:infra', mode: '0750' });
    const receivers = v.list('alertmanager_receivers').filter(isObj);
    const port = v.num('alertmanager_port', 9059);
    p.files.push({
      path: '/etc/alertmanager.yml',
      kind: 'alertmanager',
      mode: '0640',
      owner: 'prometheus:infra',
      template: 'alertmanager/alertmanager.yml.njk',
      ctx: { receivers },
      // Any receiver may carry a credential (a webhook URL with its token, a Slack URL, SMTP
      // auth): such a file stays out of golden images, on the node alone.
      secret: receivers.length > 0,
      defer: true,
    });
    p.files.push(
      ...unitFiles({
        name: 'alertmanager',
        description: 'Alertmanager (pigsty)',
        user: 'prometheus',
        group: 'infra',
        exec: os.bins.alertmanager,
        envVar: 'ALERTMANAGER_OPTS',
        flags: [
          '--config.file=/etc/alertmanager.yml',
          `--web.listen-address=:${port}`,
          `--cluster.advertise-address=${n.ip}:${port}`,
          '--cluster.listen-address=',
          '--storage.path=/infra/alertmgr',
          '--web.external-url=http://localhost/alertmgr',
          '--web.route-prefix=/',
          ...userOpts('alertmanager_options'),
        ],
        nofile: 16384,
      }),
    );
    p.services.push('alertmanager');
  }

  // ── blackbox ──
  if (v.on('blackbox_enabled')) {
    p.packages.push(os.packages.blackbox);
    p.files.push({ path: '/etc/blackbox.yml', kind: 'blackbox', mode: '0644', owner: 'root:root', template: 'blackbox/blackbox.yml.njk', ctx: {} });
    p.files.push(
      ...unitFiles({
        name: 'blackbox_exporter',
        description: 'Prometheus blackbox_exporter (pigsty)',
        user: 'root',
        exec: os.bins.blackbox,
        envVar: 'BLACKBOX_EXPORTER_OPTS',
        flags: ['--config.file=/etc/blackbox.yml', `--web.listen-address=:${v.num('blackbox_port', 9115)}`, ...userOpts('blackbox_options')],
        capabilities: ['CAP_NET_RAW'],
      }),
    );
    p.services.push('blackbox_exporter');
  }

  // ── nginx + portal ──
  const tls = secrets?.infra[n.ip];
  const entries = portalEntries(v, tls !== undefined);
  if (v.on('nginx_enabled')) {
    p.packages.push(os.packages.nginx);
    const sslmode = v.str('nginx_sslmode', 'enable');
    const home = v.str('nginx_home', '/www');
    const nginxData = v.str('nginx_data', '/data/nginx');
    p.early.push(`mkdir -p ${nginxData} && { [ -e ${home} ] || ln -s ${nginxData} ${home}; }`);
    const common = {
      port: v.num('nginx_port', 80),
      sslPort: v.num('nginx_ssl_port', 443),
      ssl: sslmode !== 'disable',
      enforce: sslmode === 'enforce',
      home,
      exporter: v.on('nginx_exporter_enabled'),
      ports: {
        grafana: v.num('grafana_port', 3000),
        vmetrics: v.num('vmetrics_port', 8428),
        vlogs: v.num('vlogs_port', 9428),
        vtraces: v.num('vtraces_port', 10428),
        vmalert: v.num('vmalert_port', 8880),
        alertmgr: v.num('alertmanager_port', 9059),
        blackbox: v.num('blackbox_port', 9115),
        code: v.num('code_port', 8443),
        jupyter: v.num('jupyter_port', 8888),
      },
    };
    p.files.push({
      path: '/etc/nginx/nginx.conf',
      kind: 'nginx',
      mode: '0644',
      owner: 'root:root',
      template: 'nginx/nginx.conf.njk',
      ctx: { user: os.nginxUser },
      defer: true,
    });
    for (const e of entries) {
      // Plain HTTP of a non-home entry only redirects to HTTPS when HTTPS is enforced.
      const redirect = common.ssl && (common.enforce || e.enforceHttps) && e.kind !== 'home';
      p.files.push({ path: `/etc/nginx/conf.d/${e.key}.conf`, kind: 'nginx', mode: '0644', owner: 'root:root', template: `nginx/${e.kind}.conf.njk`, ctx: { e, redirect, ...common }, defer: true });
    }
    // The nginx.org package's default server (EL) would answer for localhost; Pigsty removes it.
    if (!entries.some((e) => e.key === 'default')) p.late.push('rm -f /etc/nginx/conf.d/default.conf');
    // Written whenever an entry asks for basic auth, even without users: an empty file denies
    // everybody (401), a missing one makes nginx answer 500.
    const users = v.obj('nginx_users');
    if (Object.keys(users).length || entries.some((e) => e.auth)) {
      p.files.push({
        path: '/etc/nginx/.htpasswd',
        kind: 'other',
        mode: '0640',
        owner: `root:${os.nginxUser}`,
        content: Object.keys(users).sort().map((u) => `${u}:{PLAIN}${String(users[u])}`).join('\n') + '\n',
        secret: true,
        defer: true,
      });
    }
    // Without a CA from the secrets file, each infra node makes its own self-signed certificate at
    // first boot, so no private key ever travels in user-data. Entries signed by certbot get one
    // too: nginx refuses to start while a configured certificate is missing, and certbot (run
    // later, by hand) needs nginx up to answer its challenge.
    if (common.ssl) {
      const days = v.str('nginx_cert_validity', '397d').replace(/d$/, '') || '397';
      const certs = new Map<string, { key: string; names: string[] }>();
      for (const e of entries) {
        const c = certs.get(e.cert) ?? { key: e.key_file, names: [] };
        c.names.push(e.domain, ...e.domains);
        certs.set(e.cert, c);
      }
      for (const crt of [...certs.keys()].sort()) {
        const { key, names } = certs.get(crt)!;
        const san = [...new Set([...names, 'localhost'])].map((d) => `DNS:${d}`).concat(['IP:127.0.0.1', `IP:${n.ip}`]).join(',');
        p.late.push(
          `[ -s ${crt} ] || { mkdir -p $(dirname ${crt}) $(dirname ${key}) && openssl req -x509 -newkey rsa:2048 -nodes -days ${days} -subj /CN=${names[0]} -addext subjectAltName=${san} -keyout ${key} -out ${crt} 2>/dev/null && chmod 0600 ${key}; }`,
        );
      }
    }
    p.restart.push('nginx');
  }
  if (v.on('nginx_enabled') && v.on('nginx_exporter_enabled')) {
    p.packages.push(os.packages.nginx_exporter);
    p.files.push(
      ...unitFiles({
        name: 'nginx_exporter',
        description: 'Prometheus nginx_exporter (pigsty)',
        user: 'prometheus',
        group: 'infra',
        exec: os.bins.nginx_exporter,
        envVar: 'NGINX_EXPORTER_OPTS',
        flags: [`-nginx.scrape-uri=http://127.0.0.1:${v.num('nginx_port', 80)}/nginx`, `-web.listen-address=:${v.num('nginx_exporter_port', 9113)}`],
        after: ['nginx.service'],
      }),
    );
    p.services.push('nginx_exporter');
  }

  // ── grafana ──
  if (v.on('grafana_enabled')) {
    // (The Logs datasources are of type victoriametrics-logs-datasource: a plugin, packaged in
    // Pigsty's repo, as infra_packages_default lists it.)
    p.packages.push(os.packages.grafana, 'grafana-victorialogs-ds');
    const datasources = inv.infra.map((ip) => {
      const iv = new Vars(inv.nodes.find((x) => x.ip === ip)!.vars);
      const s = iv.num('infra_seq', 0);
      return { seq: s, ip, vmetrics: iv.num('vmetrics_port', 8428), vlogs: iv.num('vlogs_port', 9428), vtraces: iv.num('vtraces_port', 10428) };
    });
    p.files.push(
      {
        path: '/etc/grafana/grafana.ini',
        kind: 'grafana',
        mode: '0640',
        owner: 'root:grafana',
        template: 'grafana/grafana.ini.njk',
        ctx: {
          port: v.num('grafana_port', 3000),
          adminUser: v.str('grafana_admin_username', 'admin'),
          adminPassword: v.str('grafana_admin_password', 'pigsty'),
          language: v.str('language', 'en'),
          origins: ['localhost', 'i.pigsty', n.ip, '127.0.0.1'],
          authProxy: v.bool('grafana_auth_proxy'),
          pgurl: v.str('grafana_pgurl'),
        },
        secret: true,
        defer: true,
      },
      {
        path: '/etc/grafana/provisioning/datasources/pigsty.yml',
        kind: 'grafana',
        mode: '0640',
        owner: 'root:grafana',
        template: 'grafana/datasources.yml.njk',
        ctx: {
          vmetrics: v.num('vmetrics_port', 8428),
          vlogs: v.num('vlogs_port', 9428),
          vtraces: v.num('vtraces_port', 10428),
          viewPassword: v.str('grafana_view_password', 'DBUser.Viewer'),
          pgPort: v.num('pg_port', 5432),
          self: seq,
          infra: datasources,
        },
        secret: true,
        defer: true,
      },
    );
    p.restart.push(os.grafanaService);
  }

  // ── dnsmasq ──
  if (v.on('dns_enabled')) {
    p.packages.push(os.packages.dnsmasq);
    p.files.push(
      { path: '/etc/dnsmasq.conf', kind: 'dnsmasq', mode: '0644', owner: 'root:root', template: 'dnsmasq/dnsmasq.conf.njk', ctx: { ip: n.ip, port: v.num('dns_port', 53) }, defer: true },
      { path: '/etc/dnsmasq.d/pigsty/default', kind: 'dnsmasq', mode: '0644', owner: 'root:root', template: 'dnsmasq/records.njk', ctx: { records: v.strings('dns_records').map((r) => r.trim().split(/\s+/).join(' ')) } },
    );
    p.files.push(
      ...unitFiles({
        name: 'dnsmasq',
        description: 'dnsmasq DNS server (pigsty)',
        user: 'root',
        exec: `${os.bins.dnsmasq} -k -C /etc/dnsmasq.conf`,
        after: ['network-online.target'],
        wants: ['network-online.target'],
      }),
    );
    p.services.push('dnsmasq');
  }

  // ── offline repo bundle (repo_bundle): verified and installed at boot, before packages ──
  if (servesBundle(v, n.ip, inv.adminIp, n.modules)) {
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const src = v.str('repo_bundle');
    const home = v.str('repo_home', '/www');
    const name = v.str('repo_name', 'pigsty');
    p.files.push({
      path: '/usr/local/bin/pigen-install-bundle',
      kind: 'other',
      mode: '0755',
      owner: 'root:root',
      template: 'repo/install-bundle.sh.njk',
      ctx: { src, home, name, src_q: q(src), home_q: q(home), name_q: q(name) },
      via: 'bootcmd',
    });
  }

  // VictoriaMetrics 1.79 loads the scrape config's TLS files with the config and exits when one
  // is missing or unreadable. Pigsty's CA provides /etc/pki/{ca.crt,infra.crt,infra.key}; when
  // nothing (the CA, a portal entry's certificate command above) has made them by now,
  // self-signed stand-ins keep vmetrics up; the etcd/minio scrapes then fail verification until
  // the real files are installed. The key must be readable by vmetrics' user.
  if (v.on('vmetrics_enabled') && (fleetModules.has('etcd') || fleetModules.has('minio'))) {
    const days = v.str('cert_validity', '7300d').replace(/d$/, '') || '7300';
    p.late.push(
      `[ -s /etc/pki/infra.crt ] && [ -s /etc/pki/infra.key ] || { mkdir -p /etc/pki && openssl req -x509 -newkey rsa:2048 -nodes -days ${days} -subj /CN=${n.ip} -addext subjectAltName=DNS:localhost,DNS:${n.nodename},IP:127.0.0.1,IP:${n.ip} -keyout /etc/pki/infra.key -out /etc/pki/infra.crt 2>/dev/null; }; chown root:infra /etc/pki/infra.key && chmod 0640 /etc/pki/infra.key`,
      '[ -s /etc/pki/ca.crt ] || cp /etc/pki/infra.crt /etc/pki/ca.crt',
    );
  }

  // The node's CA-signed key and certificate from the secrets file: for services (/etc/pki) and
  // for nginx. The key lands only on this node, never world-readable.
  if (tls) {
    p.files.push(
      { path: '/etc/pki/infra.crt', kind: 'tls-cert', mode: '0644', owner: 'root:root', content: tls.cert },
      { path: '/etc/pki/infra.key', kind: 'tls-key', mode: '0640', owner: 'root:infra', content: tls.key, secret: true, defer: true },
    );
    if (v.on('nginx_enabled')) {
      p.files.push(
        { path: '/etc/nginx/conf.d/cert/pigsty.crt', kind: 'tls-cert', mode: '0644', owner: 'root:root', content: tls.cert, defer: true },
        { path: '/etc/nginx/conf.d/cert/pigsty.key', kind: 'tls-key', mode: '0600', owner: 'root:root', content: tls.key, secret: true, defer: true },
      );
    }
  }

  if (n.origins.infra_packages) p.packages.push(...expandPackages(os, v.list('infra_packages'), v.str('pg_version', '18')));
  if (!victoriaUsed) p.users.splice(0, 1);
  return p;
}

/** Files are sorted by path; a path planned twice keeps its first plan. */
export function uniqueFiles(files: FilePlan[]): FilePlan[] {
  const seen = new Set<string>();
  return files.filter((f) => (seen.has(f.path) ? false : (seen.add(f.path), true)));
}
