// Repo sources on every node (pigsty-infra.md §2.4, §4): one file per module in node_repo_modules,
// with every repo_upstream item of that module for this OS release and arch.

import { BASEURL_PLACEHOLDERS } from '../resolve/placeholders.js';
import type { FilePlan, Json, JsonObject, NodePlan } from '../types.js';
import type { OsProfile } from './os.js';
import type { Vars } from './vars.js';
import { aptProxyConf, proxiesOf, proxyFor } from './proxy.js';
import { urlUserinfo } from '../util/text.js';

/** The default upstream list (repo_upstream_default) for the OS, when the inventory sets none. */
export function defaultUpstream(os: OsProfile): JsonObject[] {
  const all = [11, 12, 13, 22, 24, 26];
  if (os.family === 'deb') {
    return [
      { name: 'pigsty-local', description: 'Pigsty Local', module: 'local', releases: all, arch: ['x86_64', 'aarch64'], baseurl: { default: 'http://${admin_ip}/pigsty ./' } },
      { name: 'pigsty-pgsql', description: 'Pigsty PgSQL', module: 'pgsql', releases: all, arch: ['x86_64', 'aarch64'], baseurl: { default: 'https://repo.pigsty.io/apt/pgsql/${distro_codename} ${distro_codename} main', china: 'https://repo.pigsty.cc/apt/pgsql/${distro_codename} ${distro_codename} main' } },
      { name: 'pigsty-infra', description: 'Pigsty Infra', module: 'infra', releases: all, arch: ['x86_64', 'aarch64'], baseurl: { default: 'https://repo.pigsty.io/apt/infra/ generic main', china: 'https://repo.pigsty.cc/apt/infra/ generic main' } },
      { name: 'base', description: 'Debian Basic', module: 'node', releases: [11, 12, 13], arch: ['x86_64', 'aarch64'], baseurl: { default: 'http://deb.debian.org/debian/ ${distro_codename} main non-free-firmware' } },
      { name: 'updates', description: 'Debian Updates', module: 'node', releases: [11, 12, 13], arch: ['x86_64', 'aarch64'], baseurl: { default: 'http://deb.debian.org/debian/ ${distro_codename}-updates main non-free-firmware' } },
      { name: 'security', description: 'Debian Security', module: 'node', releases: [11, 12, 13], arch: ['x86_64', 'aarch64'], baseurl: { default: 'http://security.debian.org/debian-security ${distro_codename}-security main non-free-firmware' } },
      { name: 'pgdg', description: 'PGDG', module: 'pgsql', releases: all, arch: ['x86_64', 'aarch64'], baseurl: { default: 'http://apt.postgresql.org/pub/repos/apt/ ${distro_codename}-pgdg main' } },
    ];
  }
  const el = [8, 9, 10];
  return [
    { name: 'pigsty-local', description: 'Pigsty Local', module: 'local', releases: el, arch: ['x86_64', 'aarch64'], baseurl: { default: 'http://${admin_ip}/pigsty' }, meta: { skip_if_unavailable: 1, priority: 1, module_hotfixes: 1 } },
    { name: 'pigsty-infra', description: 'Pigsty Infra', module: 'infra', releases: el, arch: ['x86_64', 'aarch64'], baseurl: { default: 'https://repo.pigsty.io/yum/infra/$basearch' }, meta: { priority: 12 } },
    { name: 'pigsty-pgsql', description: 'Pigsty PgSQL', module: 'pgsql', releases: el, arch: ['x86_64', 'aarch64'], baseurl: { default: 'https://repo.pigsty.io/yum/pgsql/el$releasever.$basearch' }, meta: { priority: 11 } },
    { name: 'baseos', description: 'EL BaseOS', module: 'node', releases: el, arch: ['x86_64', 'aarch64'], baseurl: { default: 'https://dl.rockylinux.org/pub/rocky/$releasever/BaseOS/$basearch/os/' } },
    { name: 'appstream', description: 'EL AppStream', module: 'node', releases: el, arch: ['x86_64', 'aarch64'], baseurl: { default: 'https://dl.rockylinux.org/pub/rocky/$releasever/AppStream/$basearch/os/' }, meta: { exclude: 'postgresql* libpq*' } },
    { name: 'crb', description: 'EL CRB', module: 'node', releases: [9, 10], arch: ['x86_64', 'aarch64'], baseurl: { default: 'https://dl.rockylinux.org/pub/rocky/$releasever/CRB/$basearch/os/' } },
    { name: 'epel', description: 'EL EPEL', module: 'node', releases: el, arch: ['x86_64', 'aarch64'], baseurl: { default: 'https://dl.fedoraproject.org/pub/epel/$releasever/Everything/$basearch/' } },
    { name: 'pgdg-common', description: 'PostgreSQL Common', module: 'pgsql', releases: el, arch: ['x86_64', 'aarch64'], baseurl: { default: 'https://download.postgresql.org/pub/repos/yum/common/redhat/rhel-$releasever-$basearch' } },
  ];
}

const isObj = (v: Json | undefined): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

export interface RepoItem {
  name: string;
  description: string;
  module: string;
  baseurl: string;
  gpgcheck: string;
  enabled: string;
  meta: [string, string][];
}

/** The repo items a node of this OS uses for a module, baseurls resolved for the region. */
export function repoItems(v: Vars, os: OsProfile, adminIp: string, modules: string[], selfRepo = false): RepoItem[] {
  const configured = v.list('repo_upstream').filter(isObj);
  const items = configured.length ? configured : defaultUpstream(os);
  const region = v.str('region', 'default');
  const rel = Number(os.releasever);
  const fill: Record<(typeof BASEURL_PLACEHOLDERS)[number], string> = { admin_ip: adminIp, distro_codename: os.distroCodename, distro_name: os.distroName, releasever: os.releasever, arch: os.arch };
  const out: RepoItem[] = [];
  for (const mod of modules) {
    for (const it of items) {
      if (it.module !== mod) continue;
      const releases = Array.isArray(it.releases) ? it.releases : [];
      const arch = Array.isArray(it.arch) ? it.arch : [os.arch];
      if (releases.length && !releases.includes(rel)) continue;
      if (!arch.includes(os.arch)) continue;
      const base = isObj(it.baseurl) ? it.baseurl : {};
      const chosen = typeof base[region] === 'string' && base[region] !== '' ? base[region] : base.default;
      if (typeof chosen !== 'string') continue;
      let url = BASEURL_PLACEHOLDERS.reduce((u, k) => u.split(`\${${k}}`).join(fill[k]), chosen);
      // The node that serves the repo installs from its own files (it has no nginx yet when its
      // packages are installed): http://<admin_ip>/… becomes file:<repo_home>/… (§4).
      if (selfRepo) url = selfRepoUrl(url, adminIp, v.str('repo_home', '/www'), os);
      // (Merged over gpgcheck = 0 and enabled = 1, as Pigsty merges them: each option once.)
      const options: Record<string, string> = { gpgcheck: '0', enabled: '1' };
      if (isObj(it.meta)) for (const [k, x] of Object.entries(it.meta)) if (typeof x !== 'object') options[k] = String(x);
      const meta = Object.entries(options)
        .filter(([k]) => k !== 'gpgcheck' && k !== 'enabled')
        .sort(([a], [b]) => (a < b ? -1 : 1));
      out.push({ name: String(it.name), description: String(it.description ?? it.name), module: mod, baseurl: url, gpgcheck: options.gpgcheck!, enabled: options.enabled!, meta });
    }
  }
  return out;
}

/** Rewrites http://<admin_ip>[:80]/path to the local directory (deb `file:/www/…`, rpm `file:///www/…`). */
export function selfRepoUrl(url: string, adminIp: string, home: string, os: OsProfile): string {
  const m = new RegExp(`^http://${adminIp.replace(/\./g, '\\.')}(?::80)?/`).exec(url);
  if (!m) return url;
  return `${os.family === 'deb' ? 'file:' : 'file://'}${home.replace(/\/$/, '')}/${url.slice(m[0].length)}`;
}

/**
 * Whether this node installs the offline bundle (repo_bundle) at boot: the admin (repo-serving)
 * infra node with repo_enabled.
 */
export function servesBundle(v: Vars, ip: string, adminIp: string, modules: readonly string[]): boolean {
  return v.str('repo_bundle') !== '' && ip === adminIp && modules.includes('infra') && v.on('repo_enabled');
}

/** Repo files for node_repo_modules: apt .list lines (via cloud-init apt) or yum .repo stanzas. */
export function planRepos(v: Vars, os: OsProfile, adminIp: string, selfRepo = false): { files: FilePlan[]; apt: NodePlan['aptSources'] } {
  const modules = v.csv('node_repo_modules');
  const files: FilePlan[] = [];
  const apt: NodePlan['aptSources'] = [];
  const proxies = proxiesOf(v.obj('proxy_env'));
  const aptUrls: string[] = [];
  // Credentials in a repo URL (https://user:password@host/…): apt reads them from auth.conf.d (mode
  // 0600), the sources lines hold the URL without them (apt_auth.conf(5)); written into a source
  // or a repo file, they would be world-readable, and baked into images.
  const aptAuth: string[] = [];
  for (const mod of modules) {
    const items = repoItems(v, os, adminIp, [mod], selfRepo);
    if (!items.length) continue;
    if (os.family === 'deb') {
      const content = items.map((i) => `deb [trusted=yes] ${withoutUserinfo(i.baseurl, aptAuth)}`).join('\n') + '\n';
      files.push({ path: `${os.repoDir}/${mod}.list`, kind: 'apt-source', mode: '0644', owner: 'root:root', content, via: 'apt' });
      apt.push({ name: mod, filename: `${mod}.list`, source: content.trimEnd() });
      aptUrls.push(...items.map((i) => i.baseurl.split(/\s+/)[0]!));
    } else {
      // (Each repo its own proxy line: dnf has no no_proxy, and a repo no_proxy names has none.)
      const withProxy = items.map((i) => ({ ...i, proxy: proxyFor(i.baseurl, proxies) }));
      const secret = withProxy.some((i) => hasUserinfo(i.baseurl) || (i.proxy !== undefined && hasUserinfo(i.proxy)));
      files.push({ path: `${os.repoDir}/${mod}.repo`, kind: 'yum-repo', mode: secret ? '0600' : '0644', owner: 'root:root', template: 'repo/yum.repo.njk', ctx: { items: withProxy }, ...(secret ? { secret } : {}) });
    }
  }
  // apt's proxies (written before the apt module and the packages run: write_files comes first).
  const conf = os.family === 'deb' ? aptProxyConf(proxies, aptUrls) : undefined;
  // (A proxy's credentials stay in its URL: apt takes a proxy's from there only.)
  const proxySecret = [proxies.http, proxies.https].some((u) => u !== undefined && hasUserinfo(u));
  if (conf) files.push({ path: '/etc/apt/apt.conf.d/90pigsty-proxy', kind: 'other', mode: proxySecret ? '0600' : '0644', owner: 'root:root', content: conf, ...(proxySecret ? { secret: true } : {}) });
  if (aptAuth.length) files.push({ path: '/etc/apt/auth.conf.d/90pigsty.conf', kind: 'other', mode: '0600', owner: 'root:root', content: `# generated by pigen (repo_upstream): the credentials of repo URLs\n${[...new Set(aptAuth)].join('\n')}\n`, secret: true });
  return { files, apt };
}

/** Whether a URL carries credentials (`scheme://user[:password]@host…`). */
export const hasUserinfo = (url: string): boolean => urlUserinfo(url) !== undefined;

/**
 * An apt sources entry (`URL suite components`) with the credentials taken out of its URL, and
 * their auth.conf line (`machine host[:port]/path login USER password PASSWORD`) added to `auth`.
 */
function withoutUserinfo(entry: string, auth: string[]): string {
  const u = urlUserinfo(entry);
  if (!u) return entry;
  const { scheme, userinfo } = u;
  // (The URL ends at the first blank: the suite and components follow.)
  const blank = u.rest.search(/\s/);
  const [rest, tail] = blank < 0 ? [u.rest, ''] : [u.rest.slice(0, blank), u.rest.slice(blank)];
  const i = userinfo.indexOf(':');
  // (Percent-decoded: apt takes auth.conf's tokens as they are. One that decodes to what would end
  // or break a token is refused by the rules: resolve/rules.ts aptCredentials.)
  const dec = (x: string) => {
    try {
      return decodeURIComponent(x);
    } catch {
      return x;
    }
  };
  // (Without a scheme an entry matches https only; a `password` with no value would take the next
  // line's first word, and the rest of that line would then be read as this entry's.)
  const machine = /^https:\/\//i.test(scheme) ? rest.replace(/\/+$/, '') : `${scheme.toLowerCase()}${rest.replace(/\/+$/, '')}`;
  const password = i < 0 ? undefined : dec(userinfo.slice(i + 1));
  auth.push(`machine ${machine} login ${dec(i < 0 ? userinfo : userinfo.slice(0, i))}${password ? ` password ${password}` : ''}`);
  return `${scheme}${rest}${tail}`;
}
