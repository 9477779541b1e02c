// The bake/boot split must not change what a node ends up with: for every node, the end state of
// (its image's content, then its user-data.baked) is the end state of its full user-data: the same
// files (bytes, mode, owner), packages, users, groups, links, repo removal and first-boot steps.
// Each document is read as cloud-init runs it (bootcmd, write_files, apt, ntp, packages, deferred
// write_files, runcmd; the apt module appends to a file that exists), and every file the node's
// rootfs holds must be there with its bytes. The inventories are the cases where one node of a
// role differs from the others: its packages, an APT source, a symlink, a disabled exporter,
// repo removal off, and an EL node (yum repo files).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { SHARED, needShared, tmp } from './helpers.ts';
import { compileInventory } from './tree.ts';

type FileState = { data: string; mode: number; owner: string };
interface EndState {
  files: Map<string, FileState>;
  packages: Set<string>;
  users: Map<string, string>;
  groups: Set<string>;
  links: Set<string>;
  repoRemoved: boolean;
  runcmd: string[];
  other: Record<string, unknown>;
}

interface ImageJson {
  name: string;
  os: string;
  files: { path: string; mode: string; owner: string; from: string }[];
  packages: string[];
  users: { name: string; groups: string[]; home: string }[];
  groups: string[];
  links: { path: string; target: string }[];
  repoRemove: boolean;
}

const REPO_FILE = /^\/etc\/apt\/sources\.list\.d\/|^\/etc\/yum\.repos\.d\/[^/]+\.repo$/;

/** The end state of a cloud-config on a node that starts as `image` left it (or fresh). */
function endState(cc: Record<string, any>, image?: { spec: ImageJson; read: (out: string) => string }): EndState {
  const s: EndState = { files: new Map(), packages: new Set(), users: new Map(), groups: new Set(), links: new Set(), repoRemoved: false, runcmd: [], other: {} };
  if (image) {
    // apply-image.sh: users, links, packages, the distro repos' removal, files.
    for (const u of image.spec.users) s.users.set(u.name, `${[...u.groups].sort().join(',')} ${u.home}`);
    for (const g of image.spec.groups) s.groups.add(g);
    for (const p of image.spec.packages) s.packages.add(p);
    s.repoRemoved = image.spec.repoRemove;
    for (const l of image.spec.links) s.links.add(`${l.path} -> ${l.target}`);
    for (const f of image.spec.files) s.files.set(f.path, { data: image.read(f.from), mode: parseInt(f.mode, 8), owner: f.owner });
  }
  for (const c of cc.bootcmd ?? []) {
    if (Array.isArray(c) && c[0] === 'sh' && c.length === 7 && String(c[2]).includes('printf')) s.files.set(c[4], { data: c[5], mode: parseInt(c[6], 8), owner: 'root:root' });
    else if (Array.isArray(c) && c.slice(0, 3).join(' ') === 'cloud-init-per instance pigen-early') {
      for (const line of String(c[5]).split('\n')) {
        const link = line.match(/^mkdir -p (\S+) && \{ \[ -e (\S+) \] \|\| ln -s (\S+) (\S+); \}$/);
        if (link) {
          // ([ -e ] ||: an existing link is kept.)
          if (![...s.links].some((l) => l.startsWith(`${link[2]} -> `))) s.links.add(`${link[2]} -> ${link[1]}`);
        } else if (/^mkdir -p \/etc\/(apt|yum\.repos\.d)\/backup/.test(line)) {
          s.repoRemoved = true;
          for (const p of [...s.files.keys()]) if (REPO_FILE.test(p)) s.files.delete(p);
        }
      }
    }
  }
  for (const g of cc.groups ?? []) s.groups.add(typeof g === 'string' ? g : Object.keys(g)[0]!);
  for (const u of cc.users ?? []) if (u !== 'default') s.users.set(u.name, `${String(u.groups ?? '').split(',').filter(Boolean).sort().join(',')} ${u.homedir}`);
  const writeFiles = (deferred: boolean) => {
    for (const f of cc.write_files ?? []) {
      if (Boolean(f.defer) !== deferred) continue;
      assert.ok(!f.encoding, 'plain content');
      const was = s.files.get(f.path)?.data ?? '';
      s.files.set(f.path, { data: (f.append ? was : '') + f.content, mode: parseInt(f.permissions ?? '0644', 8), owner: f.owner ?? 'root:root' });
    }
  };
  writeFiles(false);
  for (const src of Object.values<Record<string, string>>(cc.apt?.sources ?? {})) {
    const path = `/etc/apt/sources.list.d/${src.filename}`;
    s.files.set(path, { data: (s.files.get(path)?.data ?? '') + src.source + '\n', mode: 0o644, owner: 'root:root' });
  }
  if (cc.ntp?.config?.template) s.files.set(cc.ntp.config.confpath, { data: String(cc.ntp.config.template).replace(/^## template:jinja\n/, ''), mode: 0o644, owner: 'root:root' });
  for (const p of cc.packages ?? []) s.packages.add(String(p));
  writeFiles(true);
  s.runcmd = (cc.runcmd ?? []).filter((r: string) => r !== 'rm -f /usr/sbin/policy-rc.d');
  if ((cc.runcmd ?? []).includes('rm -f /usr/sbin/policy-rc.d')) s.files.delete('/usr/sbin/policy-rc.d');
  for (const k of ['hostname', 'preserve_hostname', 'timezone', 'ca_certs', 'manage_etc_hosts']) if (cc[k] !== undefined) s.other[k] = cc[k];
  return s;
}

const show = (s: EndState) => ({ ...s, files: Object.fromEntries([...s.files].sort(([a], [b]) => (a < b ? -1 : 1))), packages: [...s.packages].sort(), users: Object.fromEntries([...s.users].sort()), groups: [...s.groups].sort(), links: [...s.links].sort() });

function checkInventory(label: string, input: Parameters<typeof compileInventory>[0]): number {
  const c = compileInventory(input);
  const data = new Map(c.tree.flatMap((e) => ('data' in e ? [[e.path, new TextDecoder().decode(e.data)] as const] : [])));
  const read = (p: string) => {
    const d = data.get(p);
    assert.ok(d !== undefined, `${label}: ${p} in the build`);
    return d;
  };
  const manifest = JSON.parse(read('manifest.json'));
  for (const [ip, rec] of Object.entries<any>(manifest.nodes)) {
    const spec = JSON.parse(read(`images/${rec.image.name}.json`)) as ImageJson;
    const full = endState(parse(read(`nodes/${ip}/user-data`)));
    const baked = endState(parse(read(`nodes/${ip}/user-data.baked`)), { spec, read });
    assert.equal(show(baked), show(full), `${label} ${ip}: image + user-data.baked ≠ user-data`);
    // Every file of the node's rootfs is in that end state, as it is in the rootfs.
    for (const f of rec.files) {
      const got = full.files.get(f.path);
      assert.ok(got, `${label} ${ip}: ${f.path} written`);
      assert.is(got.data, read(f.out), `${label} ${ip}: ${f.path} bytes`);
      assert.is(got.mode, parseInt(f.mode, 8), `${label} ${ip}: ${f.path} mode`);
    }
  }
  return Object.keys(manifest.nodes).length;
}

const role = (odd: string, extraVars = '') =>
  [
    'all:',
    '  children:',
    '    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }',
    '    pg-test:',
    '      vars: { pg_cluster: pg-test }',
    '      hosts:',
    '        10.10.10.11: { pg_seq: 1, pg_role: primary }',
    '        10.10.10.12: { pg_seq: 2, pg_role: replica }',
    `        10.10.10.13: { pg_seq: 3, pg_role: replica, ${odd} }`,
    '  vars:',
    '    admin_ip: 10.10.10.10',
    '    node_repo_modules: local,node',
    extraVars,
    '',
  ].join('\n');
const upstream = (local: string, base: string) =>
  `repo_upstream: [ { name: pigsty-local, module: local, releases: [12], baseurl: { default: '${local}' } }, { name: base, module: node, releases: [12], baseurl: { default: '${base}' } } ]`;

const CASES: [string, string][] = [
  ['one node with other packages and APT sources', role(`node_packages: [ htop ], ${upstream('http://10.10.10.99/pigsty ./', 'http://mirror.example.org/debian/ bookworm main')}`)],
  ['the same, node_repo_remove off (the apt module appends)', role(`node_packages: [ ca-certificates, curl, openssh-server ], ${upstream('http://${admin_ip}/pigsty ./', 'http://deb.debian.org/debian/ bookworm main')}`, '    node_repo_remove: false')],
  ['one node without node_exporter (its package leaves the image)', role('node_exporter_enabled: false')],
  // (A review found the image taking its role's first member's node_repo_remove: the odd member,
  // which keeps its distro repos, lost them when booted from the image.)
  ['one node keeps its distro repos, the others remove them', role('node_repo_remove: false')],
  ['the same, the first node of the role keeps them', role('node_repo_remove: true', '    node_repo_remove: false').replace('10.10.10.11: { pg_seq: 1, pg_role: primary }', '10.10.10.11: { pg_seq: 1, pg_role: primary, node_repo_remove: false }').replace('10.10.10.12: { pg_seq: 2, pg_role: replica }', '10.10.10.12: { pg_seq: 2, pg_role: replica, node_repo_remove: true }')],
  // (A review found the image taking its role's first member's users: the member without the
  // Victoria components got their system user from the image.)
  ['one infra node of three without the Victoria components (their user leaves the image)', ['all:', '  children:', '    infra:', '      hosts:', '        10.10.10.10: { infra_seq: 1 }', '        10.10.10.11: { infra_seq: 2 }', '        10.10.10.12: { infra_seq: 3, vmetrics_enabled: false, vlogs_enabled: false, vtraces_enabled: false, vmalert_enabled: false }', '  vars: { admin_ip: 10.10.10.10 }', ''].join('\n')],
  ['one infra node with its own nginx_data (a symlink)', ['all:', '  children:', '    infra:', '      hosts:', '        10.10.10.10: { infra_seq: 1 }', '        10.10.10.20: { infra_seq: 2 }', '        10.10.10.21: { infra_seq: 3, nginx_data: /data/www2 }', '  vars: { admin_ip: 10.10.10.10 }', ''].join('\n')],
];

test('image + user-data.baked = user-data, node by node (a node that differs from its role)', () => {
  const dir = tmp('pigen-baked-eq-');
  let n = 0;
  CASES.forEach(([label, text], i) => {
    writeFileSync(join(dir, `${i}.yml`), text);
    n += checkInventory(label, { cwd: dir, arg: `${i}.yml` });
  });
  n += checkInventory('EL 9 (yum repo files)', { cwd: dir, arg: '0.yml', sets: ['os_profile=el9'] });
  n += checkInventory('the embedded default', { cwd: tmp('pigen-baked-eq-default-') });
  assert.ok(n >= 20, `${n} nodes compared`);
});

test('the same for the shared Pigsty inventories', () => {
  if (!needShared('image + user-data.baked = user-data on the shared inventories') || !SHARED) return;
  for (const f of ['simu.yml', 'full.yml', 'rich.yml', 'meta.yml', 'debian.yml']) checkInventory(f, { cwd: SHARED, arg: `pigsty-conf/${f}` });
  checkInventory('el.yml', { cwd: SHARED, arg: 'pigsty-conf/el.yml', sets: ['os_profile=el9'] });
});

test.run();
