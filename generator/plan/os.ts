// Per-OS profiles: package names, binary and config paths, service users, repo file format.
// Chosen by the `os_profile` parameter (default d12). Debian 12 uses Debian's own packages where
// they exist (victoria-metrics with vmalert, prometheus-*, nginx, dnsmasq, chrony) and Pigsty's
// repo names otherwise (victoria-logs, victoria-traces, vector, grafana).

export type OsCode = 'd12' | 'el9';

/** The components pigen configures, by the name pigen's units use. */
export type Component =
  | 'vmetrics'
  | 'vmalert'
  | 'vlogs'
  | 'vtraces'
  | 'alertmanager'
  | 'blackbox'
  | 'nginx_exporter'
  | 'node_exporter'
  | 'vector'
  | 'dnsmasq'
  | 'nginx'
  | 'grafana'
  | 'chrony';

export interface OsProfile {
  code: OsCode;
  family: 'deb' | 'rpm';
  /** Values of the repo placeholders (§1.4). */
  distroName: string;
  distroCodename: string;
  releasever: string;
  arch: string;
  /** Package providing each component. */
  packages: Record<Component, string>;
  /** Executable of each daemon. */
  bins: Record<Exclude<Component, 'nginx' | 'grafana' | 'chrony'>, string>;
  /** Distro units that would start a second copy of a daemon pigen runs under its own unit. */
  conflictingUnits: string[];
  nginxUser: string;
  chronyConf: string;
  chronyService: string;
  chronyDrift: string;
  grafanaService: string;
  caDir: string;
  caUpdate: string;
  repoDir: string;
  /** Alias → concrete package names (a small part of Pigsty's package_map). */
  aliases: Record<string, string[]>;
  /** Packages every node gets besides the components (node_packages adds to these). */
  basePackages: string[];
}

const D12: OsProfile = {
  code: 'd12',
  family: 'deb',
  distroName: 'debian',
  distroCodename: 'bookworm',
  releasever: '12',
  arch: 'x86_64',
  packages: {
    vmetrics: 'victoria-metrics',
    vmalert: 'victoria-metrics',
    vlogs: 'victoria-logs',
    vtraces: 'victoria-traces',
    alertmanager: 'prometheus-alertmanager',
    blackbox: 'prometheus-blackbox-exporter',
    nginx_exporter: 'prometheus-nginx-exporter',
    node_exporter: 'prometheus-node-exporter',
    vector: 'vector',
    dnsmasq: 'dnsmasq',
    nginx: 'nginx',
    grafana: 'grafana',
    chrony: 'chrony',
  },
  bins: {
    vmetrics: '/usr/bin/victoria-metrics',
    vmalert: '/usr/bin/vmalert',
    vlogs: '/usr/bin/victoria-logs',
    vtraces: '/usr/bin/victoria-traces',
    alertmanager: '/usr/bin/prometheus-alertmanager',
    blackbox: '/usr/bin/prometheus-blackbox-exporter',
    nginx_exporter: '/usr/bin/prometheus-nginx-exporter',
    node_exporter: '/usr/bin/prometheus-node-exporter',
    vector: '/usr/bin/vector',
    dnsmasq: '/usr/sbin/dnsmasq',
  },
  conflictingUnits: [
    'prometheus-alertmanager.service',
    'prometheus-blackbox-exporter.service',
    'prometheus-nginx-exporter.service',
    'prometheus-node-exporter.service',
    'victoria-metrics.service',
  ],
  nginxUser: 'www-data',
  chronyConf: '/etc/chrony/chrony.conf',
  chronyService: 'chrony',
  chronyDrift: '/var/lib/chrony/chrony.drift',
  grafanaService: 'grafana-server',
  caDir: '/usr/local/share/ca-certificates',
  caUpdate: 'update-ca-certificates',
  repoDir: '/etc/apt/sources.list.d',
  aliases: {
    'node-bootstrap': ['python3', 'python3-pip', 'sshpass', 'wget', 'curl', 'ca-certificates'],
    'infra-package': ['nginx', 'dnsmasq', 'etcd', 'haproxy', 'prometheus-node-exporter', 'prometheus-blackbox-exporter', 'prometheus-nginx-exporter'],
    'infra-addons': ['grafana', 'grafana-victorialogs-ds', 'victoria-metrics', 'victoria-logs', 'victoria-traces', 'vector', 'prometheus-alertmanager'],
    'node-package1': ['chrony', 'openssh-server', 'rsync', 'lz4', 'zstd', 'socat'],
    'node-package2': ['haproxy', 'keepalived', 'vector'],
    'node-package3': ['netcat-openbsd', 'tcpdump', 'sysstat', 'lsof'],
    'pgsql-utility': ['postgresql-client', 'pgbackrest'],
    'extra-modules': [],
    'pgsql-main': ['postgresql-$v'],
    'pgsql-common': ['postgresql-common', 'pgbouncer', 'patroni'],
  },
  basePackages: ['ca-certificates', 'curl'],
};

const EL9: OsProfile = {
  code: 'el9',
  family: 'rpm',
  distroName: 'el',
  distroCodename: 'el9',
  releasever: '9',
  arch: 'x86_64',
  packages: {
    vmetrics: 'victoria-metrics',
    vmalert: 'vmutils',
    vlogs: 'victoria-logs',
    vtraces: 'victoria-traces',
    alertmanager: 'alertmanager',
    blackbox: 'blackbox_exporter',
    nginx_exporter: 'nginx_exporter',
    node_exporter: 'node_exporter',
    vector: 'vector',
    dnsmasq: 'dnsmasq',
    nginx: 'nginx',
    grafana: 'grafana',
    chrony: 'chrony',
  },
  bins: {
    vmetrics: '/usr/bin/victoria-metrics',
    vmalert: '/usr/bin/vmalert',
    vlogs: '/usr/bin/victoria-logs',
    vtraces: '/usr/bin/victoria-traces',
    alertmanager: '/usr/bin/alertmanager',
    blackbox: '/usr/bin/blackbox_exporter',
    nginx_exporter: '/usr/bin/nginx_exporter',
    node_exporter: '/usr/bin/node_exporter',
    vector: '/usr/bin/vector',
    dnsmasq: '/usr/sbin/dnsmasq',
  },
  conflictingUnits: [],
  nginxUser: 'nginx',
  chronyConf: '/etc/chrony.conf',
  chronyService: 'chronyd',
  chronyDrift: '/var/lib/chrony/drift',
  grafanaService: 'grafana-server',
  caDir: '/etc/pki/ca-trust/source/anchors',
  caUpdate: 'update-ca-trust',
  repoDir: '/etc/yum.repos.d',
  aliases: {
    'node-bootstrap': ['python3', 'python3-pip', 'sshpass', 'wget', 'curl', 'ca-certificates'],
    'infra-package': ['nginx', 'dnsmasq', 'etcd', 'haproxy', 'node_exporter', 'blackbox_exporter', 'nginx_exporter'],
    'infra-addons': ['grafana', 'grafana-victorialogs-ds', 'victoria-metrics', 'victoria-logs', 'victoria-traces', 'vmutils', 'vector', 'alertmanager'],
    'node-package1': ['chrony', 'openssh-server', 'rsync', 'lz4', 'zstd', 'socat'],
    'node-package2': ['haproxy', 'keepalived', 'vector'],
    'node-package3': ['nmap-ncat', 'tcpdump', 'sysstat', 'lsof'],
    'pgsql-utility': ['postgresql$v', 'pgbackrest'],
    'extra-modules': [],
    'pgsql-main': ['postgresql$v-server', 'postgresql$v-contrib'],
    'pgsql-common': ['pgbouncer', 'patroni'],
  },
  basePackages: ['ca-certificates', 'curl'],
};

export const OS_PROFILES: Record<OsCode, OsProfile> = { d12: D12, el9: EL9 };

export function osProfile(code: unknown): OsProfile {
  return code === 'el9' ? EL9 : D12;
}

/** The package a word of a package list installs (`curl=1.0`, `wget:amd64`, `x/bookworm`: curl, wget, x). */
export const packageName = (word: string): string => word.split(/[=:/]/)[0]!;

/**
 * Expands package list items (names or aliases separated by spaces or commas, `$v` = pg_version)
 * into sorted, unique package names.
 */
export function expandPackages(os: OsProfile, items: readonly unknown[], pgVersion: string): string[] {
  const out = new Set<string>();
  for (const item of items) {
    if (typeof item !== 'string') continue;
    for (const word of item.split(/[\s,]+/).filter(Boolean)) {
      const names = os.aliases[word] ?? [word];
      for (const n of names) out.add(n.replace(/\$\{pg_version\}|\$v/g, pgVersion));
    }
  }
  return [...out].sort();
}
