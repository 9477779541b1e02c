// Every type that crosses a stage boundary: load → resolve → plan → render → emit.
// Stages are pure functions of these values; only cli.ts and io.ts touch the process.

import type { Code } from './codes.js';

/** A JSON-like value as parsed from the inventory (YAML 1.1, Ansible semantics). */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

/** A source file given to the pipeline (already read by io.ts). */
export interface Source {
  /** Path as shown to the user in diagnostics. */
  name: string;
  /** Raw bytes of the file. */
  bytes: Uint8Array;
}

/** A position in a source file, 1-based. */
export interface Pos {
  line: number;
  col: number;
}

/** A JSON pointer-like path into the inventory, as a list of keys. */
export type PathSeg = string | number;
export type Path = PathSeg[];

export type Severity = 'error' | 'warning';

/** One problem found in the input. Never thrown; collected and reported all at once. */
export interface Diagnostic {
  code: Code;
  severity: Severity;
  /** Short, lowercase statement of what is wrong. */
  message: string;
  /** Parameter path (e.g. ['all','children','infra','hosts','10.10.10.10','infra_seq']). */
  path: Path;
  /** Source file name, when the diagnostic points into one. */
  file?: string;
  pos?: Pos;
  /** How to fix it. */
  hint?: string;
  /** Points at the key of its path, not the value (the problem is the name, or where it stands). */
  atKey?: boolean;
  /** An earlier related location (e.g. the first of two duplicates). */
  related?: { path: Path; pos?: Pos; message: string };
}

export interface Result<T> {
  /** Absent exactly when diagnostics contain an error. */
  value?: T;
  diagnostics: Diagnostic[];
}

/** Output of the load stage: the parsed document with source positions for every node. */
export interface Loaded {
  file: string;
  text: string;
  data: JsonObject;
  /** Key: path joined by '\u0000'. Value: position of the value node (and of its key, when in a map). */
  positions: Map<string, { value: Pos; key?: Pos }>;
  /**
   * Floats of a whole value (`1.0`, `8.08e+3`) and their text: a number here as `1` is, where
   * Ansible keeps them floats (`pg-meta-1.0`). Absent when there are none.
   */
  wholeFloats?: { path: Path; source: string; value: number }[];
}

/** The module a group makes its hosts members of (pigsty-infra.md §1.1). */
export type GroupModule = 'infra' | 'etcd' | 'pgsql' | 'minio' | 'redis' | 'node';
/** Module set of one node: always includes 'node'. */
export type NodeModule = GroupModule;

export interface GroupInfo {
  name: string;
  module: GroupModule;
  hosts: string[];
  vars: JsonObject;
  path: Path;
}

/** One host after variable resolution. */
export interface ResolvedNode {
  ip: string;
  nodename: string;
  /** Whether the nodename came from pg, explicit nodename, or was derived from the IP. */
  nodenameSource: 'pg' | 'nodename' | 'ip';
  cluster: string;
  groups: string[];
  modules: NodeModule[];
  /**
   * Fully merged variables (defaults < all.vars < group vars < host vars < --set), placeholders
   * substituted. The fleet's (defaults, all.vars, --set) are inherited from Inventory.globals, the
   * rest are own keys: read them, never list them (Object.keys sees only the node's own).
   */
  vars: JsonObject;
  /** For each parameter, the inventory path that set it (absent: pigen's default). */
  origins: Record<string, Path>;
  /** Path of the host's first definition in the inventory. */
  path: Path;
}

export interface Inventory {
  file: string;
  adminIp: string;
  /** Where admin_ip is set (all.vars or --set); absent: the default. */
  adminIpOrigin?: Path;
  groups: GroupInfo[];
  /** Sorted by IP (numerically). */
  nodes: ResolvedNode[];
  /** IPs of infra nodes, sorted by infra_seq. */
  infra: string[];
  /** Global vars after defaults and --set (for fleet-wide settings). */
  globals: JsonObject;
}

/** One --set KEY=VALUE, its value parsed as the inventory's YAML. */
export interface SetVar {
  key: string;
  value: Json;
  raw: string;
  /** Whole floats in the value (`--set pg_seq=1.0`), at their paths within it (Loaded.wholeFloats). */
  wholeFloats?: { path: Path; source: string; value: number }[];
}

export interface ResolveOptions {
  /** --set KEY=VALUE pairs, already parsed as YAML scalars. */
  sets: SetVar[];
  strict: boolean;
}

/** The kinds of file a node receives (README documents this vocabulary). */
export type FileKind =
  | 'cloud-config'
  | 'nginx'
  | 'vmalert-rules'
  | 'alertmanager'
  | 'scrape-config'
  | 'scrape-targets'
  | 'blackbox'
  | 'dnsmasq'
  | 'chrony'
  | 'systemd-unit'
  | 'env'
  | 'grafana'
  | 'vector'
  | 'apt-source'
  | 'yum-repo'
  | 'hosts'
  | 'resolv'
  | 'ca-cert'
  | 'tls-cert'
  | 'tls-key'
  | 'sysctl'
  | 'kernel-modules'
  | 'crontab'
  | 'aliases'
  | 'sudoers'
  | 'other';

/** Files pigen ships with (schemas/, templates/), read once by io.ts and passed to the pure stages. */
export interface Assets {
  /** schemas/inventory.schema.json, parsed. */
  schema: JsonObject;
  /** templates/** by path relative to templates/ (e.g. 'nginx/home.conf.njk'). */
  templates: Map<string, string>;
}

/** One file a node must have, as planned: what to render and how it lies on disk. */
export interface FilePlan {
  /** Absolute path on the node. */
  path: string;
  kind: FileKind;
  /** Octal mode string, e.g. '0644'. */
  mode: string;
  /** 'user:group'. */
  owner: string;
  /** Template under templates/ (rendered with ctx), or literal content. */
  template?: string;
  ctx?: object;
  content?: string;
  /** Data serialised as YAML by the render stage (keys in the order given). */
  data?: Json;
  /** Holds a secret: never printed, mode must not be world-readable. */
  secret?: boolean;
  /** Made from the whole fleet (it changes when any node does): boot content, never in an image. */
  fleet?: boolean;
  /** Written after packages are installed (owner or path created by a package). */
  defer?: boolean;
  /**
   * How it reaches the node in user-data: write_files (default), or a cloud-init module.
   * `bootcmd`: an executable written and run by bootcmd at every boot, before write_files,
   * apt sources and packages (the repo_bundle installer).
   */
  via?: 'write_files' | 'apt' | 'ntp' | 'ca_certs' | 'bootcmd';
}

/** A symlink a node must have (e.g. /infra → /data/infra). */
export interface LinkPlan {
  path: string;
  target: string;
}

/** Everything one node needs, independent of how it is delivered (user-data, image, rootfs). */
export interface NodePlan {
  ip: string;
  nodename: string;
  cluster: string;
  modules: NodeModule[];
  os: import('./plan/os.js').OsProfile;
  /** Set when nodename_overwrite is true. */
  hostname?: string;
  files: FilePlan[];
  links: LinkPlan[];
  dirs: { path: string; owner: string; mode: string }[];
  packages: string[];
  /** System users and groups pigen creates (services' users). */
  groups: string[];
  users: { name: string; groups: string[]; home: string }[];
  /**
   * The admin user (node_admin_*): a login user with its own group (gid = uid), a home, bash,
   * a locked password and these authorized SSH keys; its sudo rule is a file of the plan.
   */
  admin?: { name: string; uid: number; home: string; keys: string[] };
  /** Units pigen writes and starts, in start order. */
  services: string[];
  /** Distro units masked because pigen runs the daemon under its own unit. */
  masked: string[];
  /** Distro services restarted after their config is written. */
  restart: string[];
  /** APT sources (deb) as cloud-init apt.sources entries. */
  aptSources: { name: string; filename: string; source: string }[];
  /** Remove existing repo files first (node_repo_remove). */
  repoRemove: boolean;
  /** Commands that must run once per instance before files are written (links, dirs). */
  early: string[];
  /** Commands that run once at the end (enable services...). */
  late: string[];
  timezone?: string;
  /** The CA certificate every node trusts (from the secrets file). */
  caCert?: string;
}

export interface Plan {
  nodes: NodePlan[];
}

/** A file after rendering. */
export interface RenderedFile extends Omit<FilePlan, 'template' | 'ctx' | 'content' | 'data'> {
  content: string;
}

export interface RenderedNode extends Omit<NodePlan, 'files'> {
  files: RenderedFile[];
}

/** One entry of an output tree, relative to the output directory. */
export type OutEntry = { path: string; data: Uint8Array; mode: number; /** sha256 (hex) of data, when the emitter computed it anyway. */ sha256?: string } | { path: string; link: string };
export type OutTree = OutEntry[];
