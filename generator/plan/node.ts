// What every node gets (NODE module, pigsty-infra.md §2.7): hostname, /etc/hosts, DNS, chrony,
// repo sources, node_exporter, vector, kernel settings (sysctl, modules, swap, SELinux on EL),
// crontab, aliases, packages; and the admin user (planAdmin).

import type { FilePlan, Inventory, NodePlan, ResolvedNode } from '../types.js';
import type { Secrets } from '../secrets/index.js';
import { expandPackages, type OsProfile } from './os.js';
import { planRepos, servesBundle } from './repo.js';
import { splitOptions, unitFiles } from './units.js';
import { Vars } from './vars.js';

export interface Part {
  files: FilePlan[];
  packages: string[];
  services: string[];
  restart: string[];
  users: NodePlan['users'];
  dirs: NodePlan['dirs'];
  early: string[];
  late: string[];
}

export const emptyPart = (): Part => ({ files: [], packages: [], services: [], restart: [], users: [], dirs: [], early: [], late: [] });

const entryLines = (list: string[]) => list.map((s) => s.trim().split(/\s+/).join(' '));

// The nodes that publish their names (nodename_exchange), in inventory order: found once per
// inventory (asked per node, the scan made planning quadratic: 8.4 s at 10,000 nodes).
const exchangedOf = new WeakMap<Inventory, { ip: string; line: string }[]>();
export function exchanged(inv: Inventory): { ip: string; line: string }[] {
  let list = exchangedOf.get(inv);
  if (list === undefined) exchangedOf.set(inv, (list = inv.nodes.filter((o) => o.vars.nodename_exchange === true).map((o) => ({ ip: o.ip, line: `${o.ip} ${o.nodename}` }))));
  return list;
}

export function planNodeBase(inv: Inventory, n: ResolvedNode, os: OsProfile): Part & { apt: NodePlan['aptSources']; hostname?: string } {
  const v = new Vars(n.vars);
  const p = emptyPart();
  const hostname = v.on('nodename_overwrite') ? n.nodename : undefined;

  // /etc/hosts: the node's own name plus node_default_etc_hosts + node_etc_hosts, marked as Pigsty's.
  if (v.on('node_write_etc_hosts')) {
    const entries = entryLines([...v.strings('node_default_etc_hosts'), ...v.strings('node_etc_hosts')]);
    // nodename_exchange: a node with it publishes its name to every node of the inventory (Pigsty
    // writes it into its play hosts' /etc/hosts). Made from the fleet, so boot content: nodes
    // built and booted before a node is added do not learn its name.
    const meta = exchanged(inv)
      .filter((o) => o.ip !== n.ip)
      .map((o) => o.line);
    const exchange = meta.length > 0;
    p.files.push({
      path: '/etc/hosts',
      kind: 'hosts',
      mode: '0644',
      owner: 'root:root',
      template: 'node/hosts.njk',
      ctx: { nodename: hostname ?? n.nodename, ip: n.ip, entries, meta, preserved: hostname === undefined },
      ...(exchange ? { fleet: true } : {}),
    });
    // The hostname kept (nodename_overwrite: false) is the cloud's, unknown here: the file, written
    // whole, has no line for it (Pigsty edits the file in place, and the distro's stays). Added at
    // first boot unless some line names it, or sudo and `hostname -f` cannot resolve it.
    if (hostname === undefined) {
      p.late.push(`h=$(hostname); [ -z "$h" ] || awk -v h="$h" '$1 !~ /^#/ { for (i = 2; i <= NF && $i !~ /^#/; i++) if ($i == h) f = 1 } END { exit !f }' /etc/hosts || echo "127.0.1.1 $h # this node's hostname (nodename_overwrite: false)" >> /etc/hosts`);
    }
  }

  // DNS: node_dns_options then a nameserver per node_dns_servers; `add` keeps up to 3 existing ones.
  const method = v.str('node_dns_method', 'add');
  if (method !== 'none') {
    const servers = v.strings('node_dns_servers').map((s) => s.trim());
    p.files.push({
      path: '/etc/resolv.conf',
      kind: 'resolv',
      mode: '0644',
      owner: 'root:root',
      template: 'node/resolv.conf.njk',
      ctx: { options: v.strings('node_dns_options').map((s) => s.trim()), servers },
      // Written in the final stage, after the packages: until then the node resolves names as it
      // booted (the admin node's own dnsmasq, first in this list, starts only at the end).
      defer: true,
    });
    if (method === 'add') {
      p.early.push('[ -e /etc/resolv.conf.pigen-orig ] || cp -L /etc/resolv.conf /etc/resolv.conf.pigen-orig 2>/dev/null || true');
      const skip = [...servers, inv.adminIp].join(' ');
      p.late.push(
        `for ns in $(awk '$1=="nameserver"{print $2}' /etc/resolv.conf.pigen-orig 2>/dev/null | head -n 3); do case " ${skip} " in *" $ns "*) ;; *) grep -qx "nameserver $ns" /etc/resolv.conf || echo "nameserver $ns" >> /etc/resolv.conf ;; esac; done`,
      );
    }
  }

  // Time: chrony through cloud-init's ntp module, with Pigsty's chrony.conf as its template.
  if (v.on('node_ntp_enabled')) {
    p.packages.push(os.packages.chrony);
    p.files.push({
      path: os.chronyConf,
      kind: 'chrony',
      mode: '0644',
      owner: 'root:root',
      template: 'node/chrony.conf.njk',
      ctx: { servers: v.strings('node_ntp_servers').map((s) => s.trim()), drift: os.chronyDrift },
      via: 'ntp',
    });
  }

  // Repos.
  const repos = planRepos(v, os, inv.adminIp, servesBundle(v, n.ip, inv.adminIp, n.modules));
  p.files.push(...repos.files);

  // node_exporter.
  if (v.on('node_exporter_enabled')) {
    p.packages.push(os.packages.node_exporter);
    p.files.push(
      ...unitFiles({
        name: 'node_exporter',
        description: 'Prometheus node_exporter (pigsty)',
        user: 'root',
        exec: os.bins.node_exporter,
        envVar: 'NODE_EXPORTER_OPTS',
        flags: [`--web.listen-address=:${v.num('node_exporter_port', 9100)}`, `--web.telemetry-path=${v.str('exporter_metrics_path', '/metrics')}`, ...splitOptions(v.str('node_exporter_options'))],
        cpuQuota: '30%',
      }),
    );
    p.services.push('node_exporter');
  }

  // vector: ships journald (and nginx logs on infra nodes) to every infra node's VictoriaLogs.
  if (v.on('vector_enabled')) {
    p.packages.push(os.packages.vector);
    const endpoints = logEndpoints(inv, v);
    const dataDir = v.str('vector_data', '/data/vector');
    p.dirs.push({ path: dataDir, owner: 'root:root', mode: '0755' });
    p.files.push(
      {
        path: '/etc/vector/vector.yaml',
        kind: 'vector',
        mode: '0644',
        owner: 'root:root',
        template: 'vector/vector.yaml.njk',
        ctx: { dataDir, port: v.num('vector_port', 9598), endpoints, ip: n.ip, ins: n.nodename, cls: n.cluster, infra: n.modules.includes('infra'), readFrom: v.str('vector_read_from', 'beginning') },
      },
      ...unitFiles({
        name: 'vector',
        description: 'Vector log shipper (pigsty)',
        user: 'root',
        exec: os.bins.vector,
        envVar: 'VECTOR_OPTS',
        flags: ['--config-dir', '/etc/vector'],
        nofile: 655360,
        after: ['network-online.target'],
        wants: ['network-online.target'],
      }),
    );
    p.services.push('vector');
  }

  // Kernel: node_sysctl_params and node_kernel_modules, as files the OS reads at every boot, and
  // applied at first boot (a module missing from this kernel does not fail the boot).
  // node_hugepage_count (2 MB pages) and node_overcommit_ratio (strict overcommit at that ratio)
  // are sysctl settings too; for a key node_sysctl_params also sets, its value is the one kept.
  const tuning: [string, string][] = [];
  const hugepages = v.num('node_hugepage_count', 0);
  if (hugepages > 0) tuning.push(['vm.nr_hugepages', String(hugepages)]);
  const overcommit = v.num('node_overcommit_ratio', 0);
  if (overcommit > 0) tuning.push(['vm.overcommit_memory', '2'], ['vm.overcommit_ratio', String(overcommit)]);
  const params = Object.entries(v.obj('node_sysctl_params')).map(([k, x]): [string, string] => [k, String(x)]);
  const sysctl = [...tuning.filter(([k]) => !params.some(([q]) => q === k)), ...params];
  if (sysctl.length) {
    const from = [...(hugepages > 0 ? ['node_hugepage_count'] : []), ...(overcommit > 0 ? ['node_overcommit_ratio'] : []), ...(params.length ? ['node_sysctl_params'] : [])];
    p.files.push({ path: '/etc/sysctl.d/90-pigsty.conf', kind: 'sysctl', mode: '0644', owner: 'root:root', content: `# generated by pigen (${from.join(', ')})\n${sysctl.map(([k, x]) => `${k} = ${x}`).join('\n')}\n` });
    // (Hugepages beyond 90 % of the node's memory, Pigsty's cap, are capped at first boot, in the
    // file too: one role's image may serve machines of several sizes.)
    const pages = sysctl.find(([k]) => k === 'vm.nr_hugepages')?.[1];
    if (pages !== undefined && /^\d+$/.test(pages)) {
      p.late.push(
        `max=$(awk '/^MemTotal:/{print int($2*0.9/2048)}' /proc/meminfo); [ -n "$max" ] && [ ${pages} -gt "$max" ] && sed -i "s/^vm.nr_hugepages = .*/vm.nr_hugepages = $max/" /etc/sysctl.d/90-pigsty.conf; true`,
      );
    }
    p.late.push('sysctl -q -p /etc/sysctl.d/90-pigsty.conf || true');
  }
  // node_disable_swap: off now and at every boot (the fstab entries commented out).
  if (v.on('node_disable_swap')) p.late.push("swapoff -a || true; sed -i -E 's/^([^#].*[[:space:]]swap([[:space:]].*)?)$/# \\1  # pigen: node_disable_swap/' /etc/fstab");
  // SELinux (EL): node_selinux_mode in /etc/selinux/config for the next boots, and now as far as
  // a running kernel allows (permissive and disabled both stop enforcing until the reboot).
  if (os.family === 'rpm') {
    const mode = v.str('node_selinux_mode', 'permissive');
    p.files.push({ path: '/etc/selinux/config', kind: 'other', mode: '0644', owner: 'root:root', content: `# generated by pigen (node_selinux_mode)\nSELINUX=${mode}\nSELINUXTYPE=targeted\n` });
    p.late.push(`command -v setenforce >/dev/null && { setenforce ${mode === 'enforcing' ? 1 : 0} || true; } || true`);
  }
  const modules = v.strings('node_kernel_modules').map((m) => m.trim()).filter(Boolean);
  if (modules.length) {
    p.files.push({ path: '/etc/modules-load.d/pigsty.conf', kind: 'kernel-modules', mode: '0644', owner: 'root:root', content: `# generated by pigen (node_kernel_modules)\n${modules.join('\n')}\n` });
    p.late.push(`for m in ${modules.join(' ')}; do modprobe -q "$m" || true; done`);
  }
  // node_crontab: system crontab lines (with their user field) in a file of their own, so the
  // distro's /etc/crontab stays as it is.
  const crontab = v.strings('node_crontab').map((l) => l.trim()).filter(Boolean);
  if (crontab.length) p.files.push({ path: '/etc/cron.d/pigsty', kind: 'crontab', mode: '0644', owner: 'root:root', content: `# generated by pigen (node_crontab)\nSHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n${crontab.join('\n')}\n` });
  // node_aliases: for every login shell.
  const aliases = Object.entries(v.obj('node_aliases'));
  if (aliases.length) p.files.push({ path: '/etc/profile.d/node.alias.sh', kind: 'aliases', mode: '0644', owner: 'root:root', content: `# generated by pigen (node_aliases)\n${aliases.map(([k, x]) => `alias ${k}='${String(x)}'`).join('\n')}\n` });

  // Packages: the components above, the OS base set, node_packages, and node_default_packages when
  // the inventory sets it (its schema default is Pigsty's EL list, not valid on every OS).
  p.packages.push(...os.basePackages);
  const pgv = v.str('pg_version', '18');
  p.packages.push(...expandPackages(os, v.list('node_packages'), pgv));
  if (n.origins.node_default_packages) p.packages.push(...expandPackages(os, v.list('node_default_packages'), pgv));

  return { ...p, apt: repos.apt, ...(hostname ? { hostname } : {}) };
}

/**
 * vector_log_endpoint: `[infra]` (the default) means every infra node's vlogs; otherwise host:port
 * or URLs. `[]` ships logs nowhere (vector still serves its metrics): said, not read as the default.
 */
function logEndpoints(inv: Inventory, v: Vars): string[] {
  const out: string[] = [];
  for (const e of v.strings('vector_log_endpoint')) {
    if (e === 'infra') {
      for (const ip of inv.infra) {
        const infraNode = inv.nodes.find((x) => x.ip === ip)!;
        const iv = new Vars(infraNode.vars);
        if (iv.on('vlogs_enabled')) out.push(`http://${ip}:${iv.num('vlogs_port', 9428)}/insert/jsonline`);
      }
    } else out.push(e.includes('://') ? e : `http://${e}/insert/jsonline`);
  }
  return [...new Set(out)];
}

/**
 * The admin user (node_admin_*): created by cloud-init's users module with its own group (gid =
 * uid, made first: useradd would take the next free gid), a home, bash and a locked password;
 * authorized keys from node_admin_pk_list, and with node_admin_ssh_exchange the fleet's admin key
 * from the secrets file: authorized on every node, held by the infra nodes only (their admin users
 * reach every node, which is what Pigsty's playbooks run from). Not by every node, as Pigsty's
 * exchange of per-node keys would give: the key would travel in every node's user-data, which any
 * local process can read from a cloud's metadata service. Its sudo rule is a file in
 * /etc/sudoers.d, as Pigsty writes it.
 */
export function planAdmin(v: Vars, secrets: Secrets | undefined, holdsKey: boolean): Part & { admin?: NonNullable<NodePlan['admin']> } {
  const p = emptyPart();
  if (!v.on('node_admin_enabled')) return p;
  const name = v.str('node_admin_username', 'dba');
  const uid = v.num('node_admin_uid', 88);
  const home = `/home/${name}`;
  const keys = v.strings('node_admin_pk_list').map((k) => k.trim().split(/\s+/).join(' '));
  const exchange = v.on('node_admin_ssh_exchange') ? secrets?.adminSsh : undefined;
  if (exchange) keys.push(exchange.pub);
  if (exchange && holdsKey) {
    // (Deferred: the user exists only after the users module, which runs after write_files.)
    p.files.push(
      { path: `${home}/.ssh/id_ecdsa`, kind: 'other', mode: '0600', owner: `${name}:${name}`, content: exchange.key, secret: true, defer: true },
      // (Fleet-wide like the key, and owned by a user the image does not have: boot content.)
      { path: `${home}/.ssh/id_ecdsa.pub`, kind: 'other', mode: '0644', owner: `${name}:${name}`, content: exchange.pub + '\n', fleet: true, defer: true },
    );
  }
  p.early.push(`getent group ${name} >/dev/null || groupadd -g ${uid} ${name} || groupadd ${name}`);
  const sudo = v.str('node_admin_sudo', 'nopass');
  const rule = SUDO_RULES[sudo];
  if (rule) {
    p.packages.push('sudo');
    p.files.push({ path: `/etc/sudoers.d/${name}`, kind: 'sudoers', mode: '0440', owner: 'root:root', content: `# generated by pigen (node_admin_sudo: ${sudo})\n${name} ${rule}\n` });
  }
  return { ...p, admin: { name, uid, home, keys: [...new Set(keys)] } };
}

/** node_admin_sudo: the rule after the user name (`none`: no rule). `limit`: services only. */
const SUDO_RULES: Record<string, string> = {
  all: 'ALL=(ALL) ALL',
  nopass: 'ALL=(ALL) NOPASSWD: ALL',
  limit: 'ALL=(ALL) NOPASSWD: /usr/bin/systemctl start *, /usr/bin/systemctl stop *, /usr/bin/systemctl restart *, /usr/bin/systemctl reload *, /usr/bin/systemctl status *',
};
