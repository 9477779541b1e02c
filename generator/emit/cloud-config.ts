// One complete #cloud-config per node: converges a fresh node of the target OS by itself.
// cloud-init's own modules carry what they can (hostname, users, apt sources, ntp, packages,
// write_files, runcmd); bootcmd runs once per instance through cloud-init-per.

import { stringify } from 'yaml';
import type { RenderedFile, RenderedNode } from '../types.js';
import { isPlainYaml11String } from '../util/text.js';
import { FILES_GZ_MIN, filesGzSize, gzip } from './userdata.js';

const enc = new TextEncoder();

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
  if (n.users.length || n.admin) {
    const a = n.admin;
    cc.users = [
      'default',
      ...n.users.map((u) => ({ name: u.name, system: true, groups: u.groups.join(','), homedir: u.home, shell: '/usr/sbin/nologin', lock_passwd: true, no_create_home: true })),
      // The admin user: its group (gid = uid) is made by bootcmd before this module runs.
      ...(a ? [{ name: a.name, uid: a.uid, primary_group: a.name, no_user_group: true, homedir: a.home, shell: '/bin/bash', lock_passwd: true, ...(a.keys.length ? { ssh_authorized_keys: a.keys } : {}) }] : []),
    ];
  }

  if (n.caCert) cc.ca_certs = { trusted: [n.caCert] };

  // APT sources through cloud-init's apt module. The node's sources.list is pigen's (or gone:
  // node_repo_remove) even with no source to add (a node booted from an image that holds them):
  // cloud-init would write one from its template otherwise.
  if (n.os.family === 'deb') {
    const sources: Record<string, unknown> = {};
    for (const s of n.aptSources) sources[s.name] = { filename: s.filename, source: s.source };
    cc.apt = n.aptSources.length ? { preserve_sources_list: true, sources } : { preserve_sources_list: true };
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
  // (Restarted, not started: one its package enabled already runs with the packaged config by
  // now, on a node booted from a baked image or from a base image that has it: dnsmasq.)
  if (n.services.length) ((units) => run.push(`systemctl enable ${units} && systemctl restart ${units}`))(n.services.map((s) => `${s}.service`).join(' '));
  if (n.restart.length) run.push(`systemctl enable ${n.restart.join(' ')} && systemctl restart ${n.restart.join(' ')}`);
  cc.runcmd = run;
  return cc;
}

/** Renders the object as YAML with the #cloud-config header. */
export function cloudConfigText(n: RenderedNode, opts: CloudConfigOptions): string {
  return cloudConfigHeader(n, opts) + cloudConfigYaml(cloudConfigObject(n, opts));
}

/**
 * The same text, and the byte size of its files-gz+b64 form (what encodeFiles(text) gives),
 * summed piece by piece as the YAML is written (undefined: no pieces; the caller round-trips).
 */
export function cloudConfigTextSized(n: RenderedNode, opts: CloudConfigOptions): { text: string; filesGz: FilesGzSize | undefined } {
  const header = cloudConfigHeader(n, opts);
  const size: FilesGzSize = { n: Buffer.byteLength(header), contents: [] };
  const text = header + cloudConfigYaml(cloudConfigObject(n, opts), size);
  return { text, filesGz: Number.isNaN(size.n) ? undefined : size };
}

/**
 * The size of a files-gz+b64 form: `n` bytes, plus for each of `contents` the base64 length of
 * its gzip (GZIP_OPTIONS), left to the caller (emit sizes them on a worker thread in a build).
 */
export interface FilesGzSize {
  n: number;
  contents: string[];
}

/** The bytes of a FilesGzSize, given the gzip size of each content. */
export const filesGzTotal = (s: FilesGzSize, gzipLength: (content: string) => number) => s.contents.reduce((t, c) => t + b64Length(gzipLength(c)), s.n);
const b64Length = (n: number) => 4 * Math.ceil(n / 3);

/** The gzip size of a content, computed here (cached: most are on many nodes). */
export function contentGzipLength(content: string): number {
  let g = gzLen.get(content);
  if (g === undefined) {
    if (gzLen.size >= PIECES_MAX) gzLen.clear();
    g = gzip(enc.encode(content)).length;
    gzLen.set(content, g);
  }
  return g;
}

/**
 * Records a content's gzip size measured elsewhere (the emitter's sizer thread), so later
 * user-data holding the same content find it here (a watching process sized the infra node's large
 * contents again at every rebuild: ~1 MB of level-9 gzip at 1,000 nodes).
 */
export function rememberGzipLength(content: string, length: number): void {
  if (gzLen.size >= PIECES_MAX) gzLen.clear();
  gzLen.set(content, length);
}

const cloudConfigHeader = (n: RenderedNode, opts: CloudConfigOptions) =>
  `#cloud-config\n# generated by pigen ${opts.version} for ${n.nodename} (${n.ip}); do not edit: rebuild instead\n`;

// (YAML 1.1, as cloud-init reads it with PyYAML: a string such as `no`, `on`, `1_000`, `1:20`,
// `0b101` or `2001-12-14` is quoted, where YAML 1.2 would leave it plain and PyYAML read a
// boolean, a number or a date.)
const YAML_OPTS = { lineWidth: 0, indent: 2, blockQuote: 'literal', version: '1.1' } as const;

// The YAML of a cloud-config, piece by piece: a block mapping is its entries one after the other,
// and a block sequence (write_files) its items, so each top-level entry and each write_files item
// is stringified on its own and cached by its JSON (most are the same on every node of a fleet:
// one YAML stringify per distinct piece instead of one per node). Same bytes as stringifying the
// whole object (test/perf-equivalence.test.ts compares them); the object has no shared
// sub-objects, so there are no anchors to lose. The files-gz+b64 form composes the same way, so
// each piece also carries its size in that form (computed when first asked for).
interface Piece {
  text: string;
  /** Bytes of the piece in the files-gz+b64 form; -1 until computed. */
  gz: number;
}
const pieces = new Map<string, Piece>();
const PIECES_MAX = 200_000;
const WF_HEAD = 'write_files:\n';

function piece(key: string, make: () => string): Piece {
  let p = pieces.get(key);
  if (p === undefined) {
    if (pieces.size >= PIECES_MAX) pieces.clear();
    p = { text: make(), gz: -1 };
    pieces.set(key, p);
  }
  return p;
}

// A write_files item in the common shape, written directly: path, owner and permissions that the
// stringifier leaves plain (or double-quotes, for the octal permissions), and a content it writes
// as a clipped literal block: not starting with a space or newline, ending in exactly one newline
// after a non-blank character, no control characters (those force double quotes). Anything else
// goes through the stringifier (test/userdata.test.ts compares both on every golden and on
// generated contents).
const PATH_SAFE = /^\/[A-Za-z0-9_.\/@+-]*$/;
const OWNER_SAFE = /^[A-Za-z_][A-Za-z0-9_.-]*:[A-Za-z_][A-Za-z0-9_.-]*$/;
const PERM_SAFE = /^[0-7]{3,4}$/;
// (Any surrogate code unit, paired or not, sends a content to the stringifier: a lone one forces
// quotes; without the `u` flag the scan is four times faster, and astral characters are rare.)
// eslint-disable-next-line no-control-regex
const FORCES_QUOTES = /[\x00-\x08\x0b-\x1f\x7f-\x9f\uD800-\uDFFF]/;
const ITEM_INDENT = '      ';

export function fileItemYaml(item: unknown): string | undefined {
  if (!item || typeof item !== 'object') return undefined;
  const o = item as Record<string, unknown>;
  const keys = Object.keys(o);
  const n = keys.length;
  if ((n !== 4 && n !== 5) || keys[0] !== 'path' || keys[1] !== 'permissions' || keys[2] !== 'owner' || keys[3] !== 'content') return undefined;
  if (n === 5 && (keys[4] !== 'defer' || o.defer !== true)) return undefined;
  const { path, permissions, owner, content } = o;
  if (typeof path !== 'string' || !PATH_SAFE.test(path) || typeof owner !== 'string' || !OWNER_SAFE.test(owner)) return undefined;
  if (typeof permissions !== 'string' || !PERM_SAFE.test(permissions) || typeof content !== 'string') return undefined;
  const body = literalBody(content);
  if (body === null) return undefined;
  return `  - path: ${path}\n    permissions: "${permissions}"\n    owner: ${owner}\n    content: |\n${ITEM_INDENT}${body}\n${n === 5 ? '    defer: true\n' : ''}`;
}

// The indented literal block of a content, or null when the stringifier would not write it as a
// clipped literal. Kept for a content seen before (a unit file is the same string on every node);
// one seen once (a node's own vector.yaml) is not copied into the cache.
const bodies = new Map<string, string | null>();
const seen = new Set<string>();
function literalBody(content: string): string | null {
  let body = bodies.get(content);
  if (body !== undefined) return body;
  const again = seen.has(content);
  const len = content.length;
  const last = content.charCodeAt(len - 2);
  const first = content.charCodeAt(0);
  body =
    len < 2 || content.charCodeAt(len - 1) !== 10 || last === 10 || last === 32 || last === 9 || first === 32 || first === 10 || FORCES_QUOTES.test(content)
      ? null
      : content.slice(0, -1).replace(/\n+/g, `$&${ITEM_INDENT}`);
  if (!again) {
    if (seen.size >= PIECES_MAX) seen.clear();
    seen.add(content);
    return body;
  }
  if (bodies.size >= PIECES_MAX) bodies.clear();
  bodies.set(content, body);
  return body;
}

/**
 * Same as stringify(cc, YAML_OPTS). With `size`, adds to it the size of the YAML's files-gz+b64
 * form (encodeFiles' body), or sets size.n to NaN when it cannot tell.
 */
export function cloudConfigYaml(cc: Record<string, unknown>, size?: FilesGzSize): string {
  const keys = Object.keys(cc).filter((k) => cc[k] !== undefined);
  if (keys.length === 0) {
    if (size) size.n = NaN;
    return stringify(cc, YAML_OPTS);
  }
  let out = '';
  let gz = 0;
  for (const k of keys) {
    const v = cc[k];
    if (k === 'write_files' && Array.isArray(v) && v.length > 0) {
      out += WF_HEAD;
      gz += WF_HEAD.length;
      for (const item of v) {
        const fast = fileItemYaml(item);
        if (fast !== undefined) {
          out += fast;
          if (size) gz += fileItemGzSize(item as FileItem, fast, size.contents);
          continue;
        }
        const p = piece(`\u0001${JSON.stringify(item)}`, () => stringify({ write_files: [item] }, YAML_OPTS).slice(WF_HEAD.length));
        out += p.text;
        if (size) {
          if (p.gz < 0) p.gz = filesGzSize(WF_HEAD + p.text) - WF_HEAD.length;
          gz += p.gz;
        }
      }
      continue;
    }
    // A short string the stringifier leaves plain (a node's hostname): written as it is; its
    // files-gz+b64 form is itself.
    if (typeof v === 'string' && v.length < FILES_GZ_MIN && isPlainYaml11String(v)) {
      const line = `${k}: ${v}\n`;
      out += line;
      gz += line.length;
      continue;
    }
    const p = piece(`${JSON.stringify(k)}\u0000${JSON.stringify(v)}`, () => stringify({ [k]: v }, YAML_OPTS));
    out += p.text;
    if (size) {
      if (p.gz < 0) p.gz = filesGzSize(p.text);
      gz += p.gz;
    }
  }
  if (size) size.n += gz;
  return out;
}

interface FileItem {
  path: string;
  permissions: string;
  owner: string;
  content: string;
  defer?: true;
}

// A write_files item that fileItemYaml wrote (ASCII path, owner and permissions; a clipped
// literal content) in the files-gz+b64 form, without YAML: below FILES_GZ_MIN bytes of content it
// stays as it is; otherwise the round trip keeps the content node's literal style around the
// base64 text (`|-`: one line, no final newline) and appends `encoding: gz+b64` after the rest.
// The base64 text's length is added here when the content's gzip size is known, else its content
// goes to `later`.
const gzLen = new Map<string, number>();
function fileItemGzSize(o: FileItem, yaml: string, later: string[]): number {
  if (Buffer.byteLength(o.content) < FILES_GZ_MIN) return Buffer.byteLength(yaml);
  const g = gzLen.get(o.content);
  if (g === undefined) later.push(o.content);
  const head = '  - path: '.length + o.path.length + '\n    permissions: "'.length + o.permissions.length + '"\n    owner: '.length + o.owner.length + '\n    content: '.length;
  return head + '|-\n'.length + ITEM_INDENT.length + (g === undefined ? 0 : b64Length(g)) + 1 + (o.defer ? '    defer: true\n'.length : 0) + '    encoding: gz+b64\n'.length;
}

export { sh };
