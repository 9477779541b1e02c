// One complete #cloud-config per node: converges a fresh node of the target OS by itself.
// cloud-init's own modules carry what they can (hostname, users, apt sources, ntp, packages,
// write_files, runcmd); bootcmd runs once per instance through cloud-init-per.

import { stringify } from 'yaml';
import type { RenderedFile, RenderedNode } from '../types.js';

export interface CloudConfigOptions {
  version: string;
  /** Leave out files that are in the node's golden image (set by the image split). */
  omit?: (f: RenderedFile) => boolean;
  /** Leave out packages (already in the image). */
  skipPackages?: boolean;
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The cloud-config document as a plain object, keys in cloud-init's stage order. */
export function cloudConfigObject(n: RenderedNode, opts: CloudConfigOptions): Record<string, unknown> {
  const cc: Record<string, unknown> = {};
  const files = n.files.filter((f) => !opts.omit?.(f));
  if (n.hostname) {
    cc.preserve_hostname = false;
    cc.hostname = n.hostname;
    cc.prefer_fqdn_over_hostname = false;
  } else cc.preserve_hostname = true;
  cc.manage_etc_hosts = false;
  if (n.timezone) cc.timezone = n.timezone;

  // Once per instance, before write_files: symlinked data dirs, backups of replaced files.
  const early = [...n.links.map((l) => `mkdir -p ${l.target} && { [ -e ${l.path} ] || ln -s ${l.target} ${l.path}; }`), ...n.early];
  if (n.repoRemove) {
    early.push(
      n.os.family === 'deb'
        ? 'mkdir -p /etc/apt/backup && for f in /etc/apt/sources.list.d/*; do [ -e "$f" ] && mv "$f" /etc/apt/backup/; done; [ -e /etc/apt/sources.list ] && mv /etc/apt/sources.list /etc/apt/backup/ || true'
        : 'mkdir -p /etc/yum.repos.d/backup && for f in /etc/yum.repos.d/*.repo; do [ -e "$f" ] && mv "$f" /etc/yum.repos.d/backup/; done; true',
    );
  }
  const uniqueEarly = [...new Set(early)];
  const bootcmd: unknown[] = [];
  if (uniqueEarly.length) bootcmd.push(['cloud-init-per', 'instance', 'pigen-early', 'sh', '-c', uniqueEarly.join('\n')]);
  // Executables that must run before write_files, apt and packages (the repo_bundle installer):
  // bootcmd writes each one (write_files comes later) and runs it at every boot; they are
  // idempotent. A file in the golden image (omitted) is only run.
  for (const f of n.files.filter((x) => x.via === 'bootcmd')) {
    if (!opts.omit?.(f)) {
      bootcmd.push(['sh', '-c', 'mkdir -p "$(dirname "$1")" && printf %s "$2" > "$1.tmp" && chmod "$3" "$1.tmp" && mv "$1.tmp" "$1"', 'pigen', f.path, f.content, f.mode]);
    }
    bootcmd.push([f.path]);
  }
  if (bootcmd.length) cc.bootcmd = bootcmd;

  if (n.groups.length) cc.groups = [...n.groups];
  if (n.users.length) {
    cc.users = [
      'default',
      ...n.users.map((u) => ({ name: u.name, system: true, groups: u.groups.join(','), homedir: u.home, shell: '/usr/sbin/nologin', lock_passwd: true, no_create_home: true })),
    ];
  }

  if (n.caCert) cc.ca_certs = { trusted: [n.caCert] };

  // APT sources through cloud-init's apt module.
  if (n.os.family === 'deb' && n.aptSources.length) {
    const sources: Record<string, unknown> = {};
    for (const s of n.aptSources) sources[s.name] = { filename: s.filename, source: s.source };
    cc.apt = { preserve_sources_list: true, sources };
  }

  // chrony through the ntp module, with our chrony.conf as its (variable-free) template.
  const chrony = files.find((f) => f.via === 'ntp');
  if (chrony) {
    cc.ntp = {
      enabled: true,
      ntp_client: 'chrony',
      config: {
        confpath: chrony.path,
        check_exe: 'chronyd',
        packages: [n.os.packages.chrony],
        service_name: n.os.chronyService,
        template: `## template:jinja\n${chrony.content}`,
      },
    };
  }

  if (!opts.skipPackages && n.packages.length) {
    cc.package_update = true;
    cc.packages = [...n.packages];
  }

  const wf: Record<string, unknown>[] = [];
  if (n.os.family === 'deb' && !opts.skipPackages) {
    // Packages must not start their daemons with default configs; removed again at the end.
    wf.push({ path: '/usr/sbin/policy-rc.d', permissions: '0755', owner: 'root:root', content: '#!/bin/sh\n# pigen: no service starts during first-boot package installs\nexit 101\n' });
  }
  for (const f of files) {
    if (f.via === 'apt' || f.via === 'ntp' || f.via === 'bootcmd') continue;
    const entry: Record<string, unknown> = { path: f.path, permissions: f.mode, owner: f.owner, content: f.content };
    if (f.defer || !f.owner.startsWith('root:root')) entry.defer = true;
    wf.push(entry);
  }
  if (wf.length) cc.write_files = wf;

  const run: string[] = [];
  run.push('systemctl daemon-reload');
  for (const u of n.masked) run.push(`systemctl disable --now ${u} 2>/dev/null || true; systemctl mask ${u}`);
  for (const d of n.dirs) run.push(`mkdir -p ${d.path} && chown ${d.owner} ${d.path} && chmod ${d.mode} ${d.path}`);
  run.push(...n.late);
  if (n.os.family === 'deb' && !opts.skipPackages) run.push('rm -f /usr/sbin/policy-rc.d');
  if (n.services.length) run.push(`systemctl enable --now ${n.services.map((s) => `${s}.service`).join(' ')}`);
  if (n.restart.length) run.push(`systemctl enable ${n.restart.join(' ')} && systemctl restart ${n.restart.join(' ')}`);
  cc.runcmd = run;
  return cc;
}

/** Renders the object as YAML with the #cloud-config header. */
export function cloudConfigText(n: RenderedNode, opts: CloudConfigOptions): string {
  const body = stringify(cloudConfigObject(n, opts), { lineWidth: 0, indent: 2, blockQuote: 'literal' });
  return `#cloud-config\n# generated by pigen ${opts.version} for ${n.nodename} (${n.ip}); do not edit: rebuild instead\n${body}`;
}

export { sh };
