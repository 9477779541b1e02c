// The bake/boot split: what goes into a node's golden image, and the small user-data a node booted
// from that image still needs. Pure: works on rendered nodes, returns values.
//
// How a file is classified (per node, decided per image role):
//
//   role   = the node's sorted module set + os_profile (+ "repo" when it serves the offline bundle)
//   image  = a file is image content for a role when ALL of these hold:
//     1. its kind is not boot-only: hosts, resolv, scrape-targets (fleet lists that change whenever
//        a node is added), ca-cert / tls-cert / tls-key (key material never goes into an image that
//        may be shared), cloud-config; and it is not marked secret (grafana passwords...);
//     2. every node of the role has it, and a strict majority of them with the same bytes, mode and
//        owner: that variant is the image's; a node whose variant differs writes its own at boot;
//     3. that variant embeds the identity of no node of the role: a node's IP (as a whole address)
//        or its nodename (as a whole word). This is what decides for a role with a single node,
//        where 2 has nothing to compare against: e.g. vector.yaml (labels ip/ins) and dnsmasq.conf (listen
//        address) stay boot content, alert rules and units go into the image.
//   boot   = everything else, plus hostname, users, links, dirs and the runcmd steps (idempotent).
//
// The image also carries the role's packages (all of the node's packages), users and groups, and
// links. Its content hash is a sha256 over a canonical JSON of: OS, files sorted by path (path,
// mode, owner, sha256 of the content), packages, users, groups, links, repo removal, and the
// bundle manifest hash (repo_complete) when the image carries the offline repo. Roles whose image
// content is identical share one image (the hash is the identity), so e.g. every non-infra role of
// a fleet where pigen plans only the NODE module's files boots from the same image.

import type { RenderedFile, RenderedNode } from '../types.js';
import { byCodeUnit } from '../util/text.js';
import { sha256 } from '../util/hash.js';

const enc = new TextEncoder();

/** Kinds that never go into an image (fleet lists, identity, key material). */
export const BOOT_KINDS: ReadonlySet<string> = new Set(['hosts', 'resolv', 'scrape-targets', 'ca-cert', 'tls-cert', 'tls-key', 'cloud-config']);

export interface ImageFile {
  path: string;
  kind: string;
  mode: string;
  owner: string;
  sha256: string;
  size: number;
  /** Where the bytes lie in the build output (one node's rootfs). */
  from: string;
}

export interface ImageSpec {
  /** pigsty-<role>-<os>-<hash12>: unique per content. */
  name: string;
  /** Modules every node of the image has ('node' dropped unless alone), joined with '-'; '-repo' when it carries the offline repo. */
  role: string;
  /** The role keys (module set + os [+ repo]) whose nodes boot from it. */
  roles: string[];
  os: string;
  distro: string;
  family: 'deb' | 'rpm';
  hash: string;
  generator: string;
  files: ImageFile[];
  packages: string[];
  groups: string[];
  users: { name: string; groups: string[]; home: string }[];
  links: { path: string; target: string }[];
  /** The distro's repo files are removed at bake time (node_repo_remove). */
  repoRemove: boolean;
  /** The offline repo is extracted into the image (the repo-serving infra node). */
  repo?: { installer: string; bundleSha256: string | null };
  nodes: string[];
}

export interface SplitResult {
  images: ImageSpec[];
  /** Per node IP: its image and the paths that come from it. */
  byNode: Map<string, { image: ImageSpec; inImage: Set<string> }>;
}

/** The repo-serving infra node: it installs the offline bundle (its installer is among its files). */
export const BUNDLE_INSTALLER = '/usr/local/bin/pigen-install-bundle';
export const servesRepo = (n: RenderedNode) => n.files.some((f) => f.path === BUNDLE_INSTALLER);

const MODULE_ORDER = ['infra', 'etcd', 'minio', 'pgsql', 'redis', 'node'];

export function roleKey(n: RenderedNode): string {
  const mods = [...n.modules].sort((a, b) => MODULE_ORDER.indexOf(a) - MODULE_ORDER.indexOf(b));
  return `${mods.join(',')}@${n.os.code}${servesRepo(n) ? '+repo' : ''}`;
}

/** Whether `text` contains `ip` as a whole address or `name` as a whole word. */
/**
 * Whether a file names one of the nodes: an IP as a whole address, or a nodename as a whole word
 * (as the regexes `(?<![\d.])IP(?!\.?\d)` and `(?<![\w.-])NAME(?![\w-])` would find). Built
 * from the file's tokens once, so a role of thousands of nodes costs one pass per file.
 */
function identityTokens(text: string): { ips: Set<string>; words: Set<string> } {
  const ips = new Set<string>();
  for (const m of text.matchAll(/[\d.]+/g)) {
    const run = m[0];
    const start = m.index!;
    if (start > 0 && /[\d.]/.test(text[start - 1]!)) continue;
    ips.add(run);
    ips.add(run.replace(/\.+$/, ''));
  }
  const words = new Set<string>();
  for (const m of text.matchAll(/[\w.-]+/g)) {
    const run = m[0];
    // A name starts at the run's start and ends at the run's end or before a '.'.
    words.add(run);
    for (let i = run.indexOf('.'); i >= 0; i = run.indexOf('.', i + 1)) words.add(run.slice(0, i));
  }
  return { ips, words };
}

function embedsIdentity(tokens: { ips: Set<string>; words: Set<string> }, ip: string, name: string): boolean {
  return tokens.ips.has(ip) || tokens.words.has(name);
}

function imageCandidate(f: RenderedFile): boolean {
  return !BOOT_KINDS.has(f.kind) && !f.secret && !f.fleet;
}

/** Maps an on-node path to where it lies under the node's rootfs in the output (following its links). */
function physical(n: RenderedNode, path: string): string {
  for (const l of n.links) if (path === l.path || path.startsWith(l.path + '/')) return l.target + path.slice(l.path.length);
  return path;
}

export interface SplitOptions {
  version: string;
  /** sha256 of the offline bundle's manifest.sha256 (its repo_complete), when known. */
  bundleSha256?: string;
}

// A rendered node's files by path, made once per node (a watching process splits the same
// rendered nodes again at every rebuild: compile.ts, CompileMemo).
const filesByPath = new WeakMap<RenderedNode, Map<string, RenderedFile>>();
const filesOf = (n: RenderedNode): Map<string, RenderedFile> => {
  let m = filesByPath.get(n);
  if (m === undefined) filesByPath.set(n, (m = new Map(n.files.map((x) => [x.path, x]))));
  return m;
};

export function splitImages(nodes: RenderedNode[], opts: SplitOptions): SplitResult {
  const roles = new Map<string, RenderedNode[]>();
  for (const n of nodes) {
    const k = roleKey(n);
    const list = roles.get(k);
    if (list) list.push(n);
    else roles.set(k, [n]);
  }
  const byHash = new Map<string, ImageSpec>();
  const byNode = new Map<string, { image: ImageSpec; inImage: Set<string> }>();
  for (const [key, members] of [...roles].sort(([a], [b]) => byCodeUnit(a, b))) {
    const first = members[0]!;
    const files: ImageFile[] = [];
    const byPath = members.map(filesOf);
    // Per path: the variant (bytes, mode, owner) a strict majority of the members has goes into
    // the image; a member whose variant differs carries its own at boot (written over the image's).
    // So one node's host var changes that node's boot content, not the image every member shares.
    const inImage = members.map(() => new Set<string>());
    // Users and groups of the role: those every member has, alike (a member that lacks one, its
    // component off by a host var, would get it from the image). A file owned by one made for
    // some members only stays boot content (the image cannot own it by that name).
    const sameUser = (a: ImageSpec['users'][number], b: ImageSpec['users'][number]) => a.name === b.name && a.home === b.home && a.groups.join('\0') === b.groups.join('\0');
    const users = first.users.filter((u) => members.every((m) => m.users.some((x) => sameUser(x, u))));
    const groups = first.groups.filter((g) => members.every((m) => m.groups.includes(g)));
    const made = new Set(members.flatMap((m) => [...m.users.map((u) => u.name), ...m.groups]));
    const owned = new Set([...users.map((u) => u.name), ...groups]);
    const ownable = (owner: string) => owner.split(':').every((o) => !made.has(o) || owned.has(o));
    for (const f of first.files) {
      if (!imageCandidate(f) || !ownable(f.owner)) continue;
      // (Keyed by the content itself, then mode and owner: a content string hashes once, where a key
      // made of all three was a new string per member to hash, the whole content copied each time.)
      const variants = new Map<string, { file: RenderedFile; at: number[] }[]>();
      let everywhere = true;
      for (let i = 0; i < members.length && everywhere; i++) {
        const g = byPath[i]!.get(f.path);
        if (g === undefined || !imageCandidate(g)) everywhere = false;
        else {
          const same = variants.get(g.content);
          const v = same?.find((x) => x.file.mode === g.mode && x.file.owner === g.owner);
          if (v) v.at.push(i);
          else if (same) same.push({ file: g, at: [i] });
          else variants.set(g.content, [{ file: g, at: [i] }]);
        }
      }
      if (!everywhere) continue;
      let major: { file: RenderedFile; at: number[] } | undefined;
      for (const vs of variants.values()) for (const v of vs) if (v.at.length * 2 > members.length) major = v;
      // ...and it names none of the members.
      if (!major || ((tokens) => members.some((o) => embedsIdentity(tokens, o.ip, o.nodename)))(identityTokens(major.file.content))) continue;
      for (const i of major.at) inImage[i]!.add(f.path);
      const g = major.file;
      const owner = members[major.at[0]!]!;
      const data = enc.encode(g.content);
      files.push({ path: g.path, kind: g.kind, mode: g.mode, owner: g.owner, sha256: sha256(data), size: data.length, from: `nodes/${owner.ip}/rootfs${physical(owner, g.path)}` });
    }
    files.sort((a, b) => byCodeUnit(a.path, b.path));
    // Links and packages of the role: identical across its members by construction (they derive
    // from the module set and group vars), but a member that differs is left out by intersection.
    const packages = first.packages.filter((p) => members.every((m) => m.packages.includes(p)));
    // (Links too: a member whose link differs makes its own at boot.)
    const links = first.links.filter((l) => members.every((m) => m.links.some((x) => x.path === l.path && x.target === l.target)));
    const repo = servesRepo(first) ? { installer: BUNDLE_INSTALLER, bundleSha256: opts.bundleSha256 ?? null } : undefined;
    // Apt sources in the image make the distro-repo removal a bake step (else first boot would move
    // them away), when every member removes them; a member that removes them in a role where one
    // keeps them does so at boot (bakedNode).
    const repoRemove = members.every((m) => m.repoRemove);
    const content = {
      os: first.os.code,
      files: files.map((f) => ({ path: f.path, mode: f.mode, owner: f.owner, sha256: f.sha256 })),
      packages,
      groups,
      users,
      links,
      repoRemove,
      ...(repo ? { repo } : {}),
    };
    const hash = sha256(JSON.stringify(content));
    let image = byHash.get(hash);
    if (!image) {
      image = {
        name: '',
        role: '',
        roles: [],
        os: first.os.code,
        distro: first.os.distroCodename,
        family: first.os.family,
        hash,
        generator: `pigen ${opts.version}`,
        files,
        packages,
        groups: [...groups],
        users: users.map((u) => ({ ...u, groups: [...u.groups] })),
        links: links.map((l) => ({ ...l })),
        repoRemove,
        ...(repo ? { repo } : {}),
        nodes: [],
      };
      byHash.set(hash, image);
    }
    image.roles.push(key);
    members.forEach((m, i) => {
      image!.nodes.push(m.ip);
      byNode.set(m.ip, { image: image!, inImage: inImage[i]! });
    });
  }
  const images = [...byHash.values()];
  for (const img of images) {
    const members = nodes.filter((n) => img.nodes.includes(n.ip));
    const common = MODULE_ORDER.filter((m) => members.every((n) => (n.modules as string[]).includes(m)));
    const mods = common.length > 1 ? common.filter((m) => m !== 'node') : common;
    img.role = mods.join('-') + (img.repo ? '-repo' : '');
    img.name = imageName(img.role, img.os, img.hash);
    img.nodes = members.map((n) => n.ip);
    img.roles.sort(byCodeUnit);
  }
  images.sort((a, b) => byCodeUnit(a.name, b.name));
  return { images, byNode };
}

export function imageName(role: string, os: string, hash: string): string {
  return `pigsty-${role}-${os}-${hash.slice(0, 12)}`;
}

/** The image description written to out/images/<name>.json. */
export function imageJson(img: ImageSpec): Record<string, unknown> {
  return {
    name: img.name,
    role: img.role,
    roles: img.roles,
    os: img.os,
    distro: img.distro,
    hash: img.hash,
    generator: img.generator,
    files: img.files,
    packages: img.packages,
    groups: img.groups,
    users: img.users,
    links: img.links,
    repoRemove: img.repoRemove,
    ...(img.repo ? { repo: img.repo } : {}),
    nodes: img.nodes,
  };
}

const hclString = (s: string) => JSON.stringify(s).replace(/\$\{/g, '$${').replace(/%\{/g, '%%{');

/** Packer variables of one image (out/images/<name>.pkrvars.hcl): everything known at build time. */
export function packerVars(img: ImageSpec, version: string): string {
  const list = (xs: string[]) => `[${xs.map(hclString).join(', ')}]`;
  const lines = [
    `# generated by pigen ${version}: Packer variables of image ${img.name}; do not edit: rebuild instead`,
    `image_name    = ${hclString(img.name)}`,
    `image_role    = ${hclString(img.role)}`,
    `os_profile    = ${hclString(img.os)}`,
    `os_family     = ${hclString(img.family)}`,
    `distro_suite  = ${hclString(img.distro)}`,
    `content_hash  = ${hclString(img.hash)}`,
    `pigen_version = ${hclString(version)}`,
    `packages      = ${list(img.packages)}`,
  ];
  return lines.join('\n') + '\n';
}

/**
 * What a node booted from its image still needs: its rendering with what the image holds left to
 * the image. Returns the node as the baked user-data describes it, and the paths that come from
 * the image (omitted from it).
 *  - Packages: the node's that the image lacks (an image has the packages its whole role shares).
 *  - Repo files: the distro repos were removed at bake time when the image's role removes them;
 *    otherwise a node that removes them does so at boot, and then none of its repo files can come
 *    from the image (they are written after the removal).
 *  - An APT source file whose variant differs from the image's is written whole (write_files):
 *    cloud-init's apt module appends to a file that exists.
 */
export function bakedNode(n: RenderedNode, inImage: Set<string>, image: Pick<ImageSpec, 'files' | 'packages' | 'repoRemove'>): { node: RenderedNode; fromImage: Set<string> } {
  const imagePaths = new Set(image.files.map((f) => f.path));
  const isRepo = (f: RenderedFile) => f.kind === 'apt-source' || f.kind === 'yum-repo';
  const repoRemove = n.repoRemove && !image.repoRemove;
  const fromImage = new Set(n.files.filter((f) => inImage.has(f.path) && !(repoRemove && isRepo(f))).map((f) => f.path));
  const files = n.files.map((f) => (f.via === 'apt' && !fromImage.has(f.path) && imagePaths.has(f.path) ? { ...f, via: 'write_files' as const } : f));
  const aptPath = (filename: string) => files.find((f) => f.kind === 'apt-source' && f.path.endsWith(`/${filename}`));
  return {
    node: {
      ...n,
      files,
      // (An APT source the image holds, or one written whole, is not configured through apt again.)
      aptSources: n.aptSources.filter((s) => ((f) => !f || f.via === 'apt' && !fromImage.has(f.path))(aptPath(s.filename))),
      repoRemove,
      packages: n.packages.filter((p) => !image.packages.includes(p)),
    },
    fromImage,
  };
}
