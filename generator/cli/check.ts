// `pigen check`: prove a build output with the real daemons' validators. For every file of
// manifest.json it runs the validator(s) of its kind that are on PATH (each in a scratch
// directory, on a copy whose absolute node paths are rebased into a copy of the node's rootfs),
// plus cloud-init's and the upstream schema's checks of every user-data.

import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, closeSync, realpathSync, constants, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, delimiter, dirname, isAbsolute, join, relative as relativePath, resolve as resolvePath } from 'node:path';
import { isPair, isScalar, isSeq, parse, parseDocument, visit, type Pair } from 'yaml';
import { isWithin, PACKAGE_ROOT, readRedactionIndex } from '../io.js';
import { redactRaw, redactValidatorText } from '../util/redact.js';
import { BUILTIN } from './check-builtin.js';
import { copyNginxTree, hasDotDot, listenPorts } from './check-nginx.js';
import type { Command } from './commands.js';
import { visible } from '../diagnostics.js';
import { systemErrorMessage } from './common.js';
import { UsageError } from './context.js';
import { loadDefault } from '../util/packages.js';

// ── Types ───────────────────────────────────────────────────────────────────

export type CheckResult = 'ok' | 'FAIL' | 'skipped';

export interface CheckRow {
  /** Node IP. */
  node: string;
  /** Path on the node ('user-data' for the node's cloud-config). */
  path: string;
  /** Relative to the output directory. */
  out: string;
  kind: string;
  validator: string;
  result: CheckResult;
  /** First line of the validator's message (or why it was skipped). */
  message: string;
  /** Non-fatal findings (deprecated cloud-config keys, stand-in files used). */
  warnings?: string[];
  /** The validator's whole output, for failures. */
  output?: string;
}

export interface CheckReport {
  dir: string;
  rows: CheckRow[];
  /** Programs a check needed that are not on PATH. */
  notFound: string[];
  counts: Record<CheckResult, number>;
  /** How many files each validator actually checked (ok or FAIL). */
  ran: Record<string, number>;
  /**
   * How secrets were hidden in the validators' messages: by the index the build left beside DIR
   * (and by their look), or by their look alone (no index: an output copied elsewhere).
   */
  redaction: 'index' | 'look';
}

export interface CheckOptions {
  /** Environment for PATH lookups and the validators (default process.env). */
  env?: Record<string, string | undefined>;
  /** Upstream cloud-config JSON schema; null = none (the upstream-schema check is skipped). */
  cloudInitSchema?: string | null;
  /** Validators run in parallel (default: CPU count, at most 8). */
  jobs?: number;
}

/** DIR is not a pigen output (no readable manifest.json with nodes). */
export class NotPigenOutput extends Error {}

interface ManifestFile {
  path: string;
  out: string;
  kind: string;
}
interface ManifestNode {
  files: ManifestFile[];
  userData?: { out: string };
  /** The golden image the node boots from, and its user-data for that (user-data.baked). */
  image?: { userData?: { out: string } };
}

/** What one validator concluded about one file. */
interface Outcome {
  result: CheckResult;
  message: string;
  warnings?: string[];
  output?: string;
  /** Programs it needed besides its own and did not find (a skip's reason: listed as not found). */
  missing?: string[];
}

/** One file to check, with what a validator may need around it. */
interface Subject {
  node: string;
  path: string;
  out: string;
  kind: string;
  /** Absolute path of the file in DIR. */
  abs: string;
  /** Absolute path of the node's rootfs in DIR. */
  rootfs: string;
  /** Every file of the node (for units' neighbours). */
  nodeFiles: ManifestFile[];
  /** The output directory. */
  dir: string;
  sha: string;
}

interface Validator {
  name: string;
  /** Programs that must be on PATH. */
  programs: string[];
  /** Results depend on the file's bytes alone, so identical files share one run. */
  pure: boolean;
  /** What else the result depends on (for sharing runs across nodes), when not pure. */
  context?(s: Subject, t: Toolbox): string;
  run(s: Subject, t: Toolbox): Promise<Outcome>;
}

// ── Running programs ────────────────────────────────────────────────────────

interface Ran {
  code: number;
  out: string;
}

/** A validator that could not check at all (not started, killed by a signal, timed out): no verdict on the file. */
class ValidatorBroken extends Error {}

class Toolbox {
  readonly work: string;
  private seq = 0;
  private nodeRoots = new Map<string, Promise<string>>();
  private unitRoots = new Map<string, Promise<string>>();
  private tlsPair: Promise<{ crt: string; key: string } | null> | undefined;
  private running = 0;
  private queue: (() => void)[] = [];

  constructor(
    readonly env: Record<string, string | undefined>,
    readonly schemaPath: string | null,
    private readonly jobs: number,
    /** Hides secrets in a program's output as it comes, before anything is read from it (util/redact.ts: redactRaw). */
    private readonly redact: (text: string) => string,
  ) {
    this.work = mkdtempSync(join(tmpdir(), 'pigen-check-'));
  }

  dispose() {
    rmSync(this.work, { recursive: true, force: true });
  }

  private pathCache = new Map<string, string | null>();
  /** Absolute path of a program on PATH, or null. */
  which(program: string): string | null {
    if (this.pathCache.has(program)) return this.pathCache.get(program)!;
    let found: string | null = null;
    for (const d of (this.env.PATH ?? '').split(delimiter).filter(Boolean)) {
      const p = join(d, program);
      try {
        accessSync(p, constants.X_OK);
        if (statSync(p).isFile()) {
          found = p;
          break;
        }
      } catch {
        /* not here */
      }
    }
    this.pathCache.set(program, found);
    return found;
  }

  /** A new empty scratch directory. */
  scratch(tag: string): string {
    const d = join(this.work, `${String(++this.seq).padStart(4, '0')}-${tag.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
    mkdirSync(d, { recursive: true });
    return d;
  }

  private async slot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.jobs) await new Promise<void>((r) => this.queue.push(r));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }

  /** Runs a program (looked up on PATH) in cwd; exit code and stdout+stderr. */
  exec(program: string, args: string[], cwd: string): Promise<Ran> {
    const bin = this.which(program) ?? program;
    return this.slot(
      () =>
        new Promise<Ran>((resolve, reject) => {
          execFile(bin, args, { cwd, env: this.env as NodeJS.ProcessEnv, timeout: 120_000, maxBuffer: 1 << 26, encoding: 'utf8' }, (err, stdout, stderr) => {
            const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string | null }) | null;
            // (Not started, killed, or out of time: the program said nothing about the file.)
            if (e && typeof e.code === 'string') return reject(new ValidatorBroken(`cannot run ${bin}: ${e.code}${e.code === 'ENOENT' ? ' (a broken #! line?)' : ''}`));
            if (e?.killed) return reject(new ValidatorBroken(`${program} took more than 120 s`));
            if (e?.signal) return reject(new ValidatorBroken(`${program} was killed by ${e.signal}`));
            // (Secrets hidden before the output is read, trimmed or cut: a message whose spaces were
            // squeezed, or cut inside a value, would match no secret. What a program prints beyond
            // 1 MB says nothing more about the file.)
            resolve({ code: e ? Number(e.code) : 0, out: this.redact(upTo(`${stdout ?? ''}${stderr ?? ''}`, 1 << 20)) });
          });
        }),
    );
  }

  /**
   * A copy of the node's rootfs to rebase absolute paths into (one per node): its files that the
   * manifest lists and checkOutput vetted, and its links that stay inside it (`/infra`, `/www`);
   * nothing a link leads to outside DIR is read.
   */
  nodeRoot(s: Subject): Promise<string> {
    let p = this.nodeRoots.get(s.node);
    if (!p) {
      const dir = join(this.scratch(`root-${s.node}`), 'root');
      mkdirSync(dir, { recursive: true });
      const prefix = relativePath(s.dir, s.rootfs) + '/';
      for (const f of s.nodeFiles) {
        if (!f.out.startsWith(prefix)) continue;
        const to = join(dir, f.out.slice(prefix.length));
        mkdirSync(dirname(to), { recursive: true });
        copyFileSync(join(s.dir, f.out), to);
      }
      const links = (d: string): void => {
        for (const e of readdirSync(join(s.rootfs, d), { withFileTypes: true })) {
          const rel = d ? `${d}/${e.name}` : e.name;
          if (e.isDirectory()) links(rel);
          else if (e.isSymbolicLink()) {
            const target = readlinkSync(join(s.rootfs, rel));
            if (!isAbsolute(target) && resolvePath(s.rootfs, dirname(rel), target).startsWith(s.rootfs + '/') && !existsSync(join(dir, rel))) {
              mkdirSync(dirname(join(dir, rel)), { recursive: true });
              symlinkSync(target, join(dir, rel));
            }
          }
        }
      };
      if (existsSync(s.rootfs)) links('');
      // (A chain of them may still lead out, `a -> ..` used in another's target: each link of the
      // copy must resolve inside it, or it goes.)
      const top = realpathSync(dir);
      const prune = (d: string): void => {
        for (const e of readdirSync(join(dir, d), { withFileTypes: true })) {
          const rel = d ? `${d}/${e.name}` : e.name;
          if (e.isDirectory()) prune(rel);
          else if (e.isSymbolicLink()) {
            let real: string | undefined;
            try {
              real = realpathSync(join(dir, rel));
            } catch {
              real = undefined;
            }
            if (real === undefined || !(real === top || real.startsWith(top + '/'))) rmSync(join(dir, rel), { force: true });
          }
        }
      };
      prune('');
      p = Promise.resolve(dir);
      this.nodeRoots.set(s.node, p);
    }
    return p;
  }

  private fileSets = new Map<string, string>();
  /**
   * Some files of the node, as sorted "name sha" lines (read and hashed once per node and kind):
   * what a check that reads several of them depends on.
   */
  private fileSet(s: Subject, tag: string, pick: (f: ManifestFile) => boolean, name: (f: ManifestFile) => string): string {
    const key = `${tag}|${s.node}`;
    const known = this.fileSets.get(key);
    if (known !== undefined) return known;
    const set = s.nodeFiles
      .filter(pick)
      .map((f) => `${name(f)} ${hash(readFileSync(join(s.dir, f.out)))}`)
      .sort()
      .join('\n');
    this.fileSets.set(key, set);
    return set;
  }

  /** The node's units: nodes with the same units share one unit root. */
  unitSet(s: Subject): string {
    return this.fileSet(s, 'units', (f) => f.kind === 'systemd-unit', (f) => basename(f.path));
  }

  /** The node's nginx configuration (every /etc/nginx file): what its nginx -t depends on. */
  nginxSet(s: Subject): string {
    return this.fileSet(s, 'nginx', (f) => f.path.startsWith('/etc/nginx/'), (f) => f.path);
  }

  /**
   * A root for `systemd-analyze verify --root`: the node's units in /etc/systemd/system, this
   * machine's distro units (targets) in /usr/lib/systemd/system, and an executable stub at every
   * absolute Exec*= path (the daemons come from packages the node installs, not from pigen).
   */
  unitRoot(s: Subject, set: string): Promise<string> {
    let p = this.unitRoots.get(set);
    if (!p) {
      p = (async () => {
        const root = join(this.scratch(`units-${s.node}`), 'root');
        const sys = join(root, 'etc/systemd/system');
        mkdirSync(sys, { recursive: true });
        for (const d of ['/usr/lib/systemd/system', '/lib/systemd/system']) {
          if (existsSync(d)) {
            cpSync(d, join(root, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
            break;
          }
        }
        for (const f of s.nodeFiles) {
          if (f.kind !== 'systemd-unit') continue;
          const text = readFileSync(join(s.dir, f.out), 'utf8');
          writeFileSync(join(sys, basename(f.path)), text);
          for (const bin of execPaths(text)) {
            // (Never out of the root: a `..` segment gets no stub, and the unit fails for it.)
            if (hasDotDot(bin)) continue;
            const stub = join(root, bin);
            if (existsSync(stub)) continue;
            mkdirSync(dirname(stub), { recursive: true });
            writeFileSync(stub, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
          }
        }
        return root;
      })();
      this.unitRoots.set(set, p);
    }
    return p;
  }

  private nginxRuns = new Map<string, Promise<{ r: Ran; prefix: string; standIns: string[]; noStandIn?: string }>>();
  /**
   * `nginx -t` of the node's whole nginx configuration (once per node): its /etc/nginx files copied
   * under a scratch prefix with every path rebased (check-nginx.ts), the certificates and keys they
   * name copied from the node's rootfs, or a stand-in pair where the node makes its own at first
   * boot (no secrets file).
   */
  nginxRun(s: Subject): Promise<{ r: Ran; prefix: string; standIns: string[]; noStandIn?: string }> {
    let p = this.nginxRuns.get(s.node);
    if (!p) {
      p = (async () => {
        const prefix = this.scratch(`nginx-${s.node}`);
        const files = s.nodeFiles.filter((f) => f.path.startsWith('/etc/nginx/')).map((f) => ({ path: f.path, content: readFileSync(join(s.dir, f.out), 'utf8') }));
        // (The ports it listens on, each mapped to a free one of this machine: nginx -t binds them,
        // and 80 and 443 need root, or fail while a server here has them. Said back as they were.)
        const ports = listenPorts(files.filter((f) => f.path.endsWith('.conf')).map((f) => f.content));
        const free = await freePorts(ports.length);
        const map = new Map(free ? ports.map((p, i) => [p, free[i]!]) : []);
        const copy = copyNginxTree(files, prefix, (u) => spawnSync('id', ['-u', u]).status === 0, (p) => map.get(p) ?? p);
        const standIns: string[] = [];
        // (A path that would leave the prefix or the rootfs, `..` in it, is not copied: nginx -t then
        // reports the file missing. The rules reject such paths in an inventory.)
        // (The pair from the node's vetted files, by path: never through a link of the rootfs.)
        const inside = (root: string, f: string) => ((p) => p.startsWith(root + '/'))(resolvePath(root + f));
        const byPath = new Map(s.nodeFiles.map((f) => [f.path, join(s.dir, f.out)]));
        for (const pair of copy.certs) {
          if (!pair.every((f) => inside(prefix, f))) continue;
          if (pair.every((f) => byPath.has(f))) {
            for (const f of pair) mkdirSync(dirname(prefix + f), { recursive: true }), cpSync(byPath.get(f)!, prefix + f);
            continue;
          }
          const tls = await this.tls();
          // (No openssl to make a stand-in: nginx -t cannot load it, which says nothing of the file.)
          if (!tls) return { r: { code: 0, out: '' }, prefix, standIns, noStandIn: pair[0] };
          standIns.push(pair[0]);
          for (const [f, from] of [[pair[0], tls.crt], [pair[1], tls.key]] as const) mkdirSync(dirname(prefix + f), { recursive: true }), cpSync(from, prefix + f);
        }
        const ran = await this.exec('nginx', ['-t', '-q', '-e', 'stderr', '-p', prefix + '/', '-c', copy.conf, '-g', `pid ${prefix}/nginx.pid;`], prefix);
        const back = new Map([...map].map(([p, q]) => [String(q), String(p)]));
        const r = { ...ran, out: back.size ? ran.out.replace(/(?<=:)\d+(?!\d)/g, (n) => back.get(n) ?? n) : ran.out };
        return { r, prefix, standIns };
      })();
      this.nginxRuns.set(s.node, p);
    }
    return p;
  }

  /** A throwaway self-signed cert and key (openssl), for TLS files the node gets from its CA. */
  tls(): Promise<{ crt: string; key: string } | null> {
    if (!this.tlsPair) {
      this.tlsPair = (async () => {
        if (!this.which('openssl')) return null;
        const d = this.scratch('tls');
        const r = await this.exec('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=pigen-check', '-keyout', 'stand-in.key', '-out', 'stand-in.crt'], d);
        return r.code === 0 ? { crt: join(d, 'stand-in.crt'), key: join(d, 'stand-in.key') } : null;
      })();
    }
    return this.tlsPair;
  }

  upstreamSchema(): Promise<UpstreamSchema | string> {
    const key = this.schemaPath ?? '';
    let p = schemas.get(key);
    if (!p) schemas.set(key, (p = loadUpstreamSchema(this.schemaPath)));
    return p;
  }
}

/** `n` ports free on this machine now (the kernel's choice), or undefined when none can be had. */
async function freePorts(n: number): Promise<number[] | undefined> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((res, rej) => (srv.once('error', rej), srv.listen(0, () => res())));
    }
    return servers.map((srv) => (srv.address() as AddressInfo).port);
  } catch {
    return undefined;
  } finally {
    await Promise.all(servers.map((srv) => new Promise((res) => srv.close(res))));
  }
}

/**
 * A validator's run, unless the file holds a directive (`directive`, said as `what`) with which
 * the program would read more files, on this machine: pigen writes none, and the check reads
 * nothing outside the node's files: it fails, naming it.
 */
function unlessItReadsMore(directive: RegExp, what: string, run: Validator['run']): Validator['run'] {
  return (s, t) => (directive.test(readFileSync(s.abs, 'utf8')) ? Promise.resolve({ result: 'FAIL', message: `${what} (pigen writes none): the check does not read files outside the node's` }) : run(s, t));
}

/** Absolute executables named by Exec*= lines (prefixes @-:+! stripped). */
export function execPaths(unit: string): string[] {
  const out = new Set<string>();
  for (const m of unit.matchAll(/^\s*Exec[A-Za-z]*\s*=\s*(.*)$/gm)) {
    const word = (m[1] ?? '').trim().split(/\s+/)[0]?.replace(/^[-@:+!]+/, '');
    if (word && word.startsWith('/')) out.add(word);
  }
  return [...out];
}

// ── Output helpers ──────────────────────────────────────────────────────────

const NOISE = /^\s*$|level=info|\tinfo\t|^Checking |^ *SUCCESS|^Found:|^ - /;
/** A log line without its timestamp/level/caller prefix; go-kit lines reduced to msg and err. */
function unlog(l: string): string {
  const kit = /\bmsg="((?:[^"\\]|\\.)*)"(?:.*?\berr="((?:[^"\\]|\\.)*)")?/.exec(l);
  if (kit && /^ts=|\blevel=/.test(l)) return [kit[1], kit[2]].filter(Boolean).join(': ').replace(/\\n\s*/g, ' ').replace(/\\"/g, '"');
  return l
    .replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z?\s+(?:(?:fatal|error|warn|info|panic)\s+\S+:\d+\s+)?/, '')
    .trim();
}
/** The first telling line of a validator's output. */
function firstLine(out: string): string {
  const ls = out
    .split('\n')
    .filter((l) => !/level=info|\tinfo\t/.test(l))
    .map((l) => unlog(l.trim()))
    .filter((l) => l && !/^(FAILED|Error):?$/.test(l));
  let i = ls.findIndex((l) => /error|fatal|fail|invalid|unknown|bad |not |cannot|refus|unexpected|missing|duplicate|conflict/i.test(l));
  if (i < 0) i = ls.findIndex((l) => !NOISE.test(l));
  if (i < 0) i = 0;
  // "...: yaml: unmarshal errors:" says what is wrong on the next line.
  const line = ls[i]?.endsWith(':') && ls[i + 1] ? `${ls[i]} ${ls[i + 1]}` : (ls[i] ?? '');
  // (At most 1,000 characters: a table's cell, not a dump.)
  const one = line.replace(/\s+/g, ' ');
  return one.length > 1000 ? `${one.slice(0, 997)}...` : one;
}

/** The output without info-level log lines (for the details under the table). */
const details = (out: string) => out.split('\n').filter((l) => !/level=info|\tinfo\t/.test(l) && l.trim()).join('\n');

/** Replaces scratch paths in a validator's output with the node path of the file. */
function tidy(out: string, replacements: [string, string][]): string {
  let t = out;
  for (const [from, to] of replacements.sort((a, b) => b[0].length - a[0].length)) t = t.split(from).join(to);
  return t.trim();
}

function verdict(r: Ran, replacements: [string, string][], failed = r.code !== 0): Outcome {
  const out = tidy(r.out, replacements);
  if (!failed) return { result: 'ok', message: '' };
  return { result: 'FAIL', message: firstLine(out) || `exit ${r.code}`, output: upTo(details(out), 20_000) };
}

/** `text` cut at a line's end to at most `max` characters (a secret on a line cut in the middle would show its start). */
function upTo(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.lastIndexOf('\n', max);
  return cut > 0 ? text.slice(0, cut) : '';
}

/** Copies the file into a fresh scratch dir under its own name; runs there. */
async function simple(s: Subject, t: Toolbox, program: string, args: (file: string) => string[], judge?: (r: Ran) => boolean): Promise<Outcome> {
  const d = t.scratch(`${program}-${basename(s.path)}`);
  const name = basename(s.path) || 'file';
  writeFileSync(join(d, name), readFileSync(s.abs), { mode: 0o600 });
  const r = await t.exec(program, args(name), d);
  return verdict(r, [[join(d, name), s.path], [d + '/', '']], judge ? !judge(r) : undefined);
}

// ── Rebasing absolute node paths ────────────────────────────────────────────

/** Keys of a Prometheus/VictoriaMetrics scrape config whose values are files on the node. */
const SCRAPE_FILE_KEYS = new Set(['files', 'ca_file', 'cert_file', 'key_file', 'password_file', 'bearer_token_file', 'credentials_file', 'client_secret_file']);
const TLS_KEYS = new Set(['ca_file', 'cert_file', 'key_file']);

/**
 * The scrape config with every file path rebased into the node's root copy; TLS and secret
 * files the node gets from elsewhere (Pigsty's CA) are created there as stand-ins.
 */
async function rebaseScrapeConfig(s: Subject, t: Toolbox, root: string): Promise<{ text: string; notes: string[]; problem?: string; failed?: boolean }> {
  const text = readFileSync(s.abs, 'utf8');
  const doc = parseDocument(text, { version: '1.1' });
  if (doc.errors.length) return { text, notes: [] }; // the validators report the syntax error themselves
  // Insert the root before each path in place, so the validators' line numbers stay right.
  const at: number[] = [];
  const standIns: [string, string][] = [];
  const globs: string[] = [];
  const outside: string[] = [];
  visit(doc, {
    Scalar(_k, node, path) {
      const parent = path[path.length - 1];
      const pair = isPair(parent) ? parent : isSeq(parent) && isPair(path[path.length - 2]) ? (path[path.length - 2] as Pair) : undefined;
      const key = pair && isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (!key || !SCRAPE_FILE_KEYS.has(key) || (isSeq(parent) ? key !== 'files' : key === 'files')) return;
      if (typeof node.value !== 'string' || !node.value.startsWith('/') || !node.range) return;
      if (hasDotDot(node.value)) return void outside.push(node.value);
      const slash = text.indexOf('/', node.range[0]);
      if (slash < 0 || slash >= node.range[1]) return;
      at.push(slash);
      if (key === 'files') globs.push(node.value);
      else if (!existsSync(join(root, node.value))) standIns.push([key, node.value]);
    },
  });
  // (A path with a `..` segment would lead out of the node's root copy: not followed, failed.)
  if (outside.length) return { text, notes: [], problem: `${outside[0]} has a .. segment: the check does not follow it out of the node's files`, failed: true };
  let out = text;
  for (const i of at.sort((a, b) => b - a)) out = out.slice(0, i) + root + out.slice(i);
  const notes: string[] = [];
  for (const g of globs) if (!globMatches(root, g)) notes.push(`no file of the node matches ${g}`);
  if (standIns.length) {
    const tls = standIns.some(([k]) => TLS_KEYS.has(k)) ? await t.tls() : null;
    for (const [k, p] of standIns) {
      const target = join(root, p);
      mkdirSync(dirname(target), { recursive: true });
      if (TLS_KEYS.has(k)) {
        if (!tls) return { text, notes, problem: `openssl not found: cannot make a stand-in for ${p}` };
        if (!existsSync(target)) writeFileSync(target, readFileSync(k === 'key_file' ? tls.key : tls.crt), { mode: 0o600, flag: 'wx' });
      } else if (!existsSync(target)) writeFileSync(target, 'pigen-check-stand-in\n', { mode: 0o600, flag: 'wx' });
    }
    notes.push(`stand-ins used for ${[...new Set(standIns.map(([, p]) => p))].sort().join(', ')} (not among the node's files)`);
  }
  return { text: out, notes };
}

/** Whether a file_sd pattern (wildcards in the last segment only) matches a file under root. */
function globMatches(root: string, pattern: string): boolean {
  const dir = join(root, dirname(pattern));
  const re = new RegExp(`^${basename(pattern).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  try {
    return readdirSync(dir).some((n) => re.test(n));
  } catch {
    return false;
  }
}

/** dnsmasq options that name files or directories it reads. */
const DNSMASQ_PATH_OPTS = new Set(['hostsdir', 'conf-dir', 'conf-file', 'addn-hosts', 'resolv-conf', 'servers-file', 'dhcp-hostsfile', 'dhcp-optsfile', 'dhcp-hostsdir', 'dhcp-optsdir']);
const DNSMASQ_DIR_OPTS = new Set(['hostsdir', 'conf-dir', 'dhcp-hostsdir', 'dhcp-optsdir']);

function rebaseDnsmasq(text: string, root: string, included?: string[]): string {
  return text
    .split('\n')
    .map((l) => {
      const m = /^\s*([a-z-]+)\s*=\s*(\/[^,\s]*)(.*)$/.exec(l);
      if (!m || !DNSMASQ_PATH_OPTS.has(m[1]!) || m[2]!.startsWith(root + '/')) return l;
      // (Out of the node's files by a `..` segment: a path that is nowhere, which dnsmasq reports.)
      const p = hasDotDot(m[2]!) ? join(root, '.pigen-check-path-with-dotdot') : join(root, m[2]!);
      // The package creates these directories on the node.
      if (DNSMASQ_DIR_OPTS.has(m[1]!)) mkdirSync(p, { recursive: true });
      if (m[1] === 'conf-dir' || m[1] === 'conf-file') included?.push(p);
      return `${m[1]}=${p}${m[3]}`;
    })
    .join('\n');
}

/**
 * The files dnsmasq reads through conf-dir and conf-file, in the node's root copy, rebased in
 * turn (their own path options would name this machine's files): a few levels deep.
 */
function rebaseDnsmasqIncludes(root: string, included: string[]): void {
  const seen = new Set<string>();
  for (let depth = 0; depth < 4 && included.length; depth++) {
    const next: string[] = [];
    for (const p of included.splice(0)) {
      let files: string[] = [];
      try {
        const st = statSync(p);
        files = st.isDirectory() ? readdirSync(p, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(p, e.name)) : st.isFile() ? [p] : [];
      } catch {
        files = [];
      }
      for (const f of files) {
        if (seen.has(f) || !f.startsWith(root + '/')) continue;
        seen.add(f);
        writeFileSync(f, rebaseDnsmasq(readFileSync(f, 'utf8'), root, next));
      }
    }
    included.push(...next);
  }
}

// ── The upstream cloud-config schema (ajv, draft-04) ────────────────────────

/** Compiled schemas by path, kept for the process (compiling takes a while). */
const schemas = new Map<string, Promise<UpstreamSchema | string>>();

interface UpstreamSchema {
  validate(doc: unknown): { errors: string[]; deprecated: string[] };
}

async function loadUpstreamSchema(path: string | null): Promise<UpstreamSchema | string> {
  if (!path) return 'no upstream schema (pass --cloud-init-schema FILE)';
  let schema: object;
  try {
    schema = JSON.parse(readFileSync(path, 'utf8')) as object;
  } catch (e) {
    return `cannot read ${path}: ${(e as Error).message}`;
  }
  // (A JSON Schema object that constrains a document: `[]`, `true` or `{}` would pass anything.)
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return 'not a usable JSON Schema: not a JSON object';
  if (!Object.keys(schema).some((k) => ['properties', 'allOf', 'anyOf', 'oneOf', '$ref', 'type', 'definitions', '$defs', 'required', 'patternProperties', 'additionalProperties', 'not', 'enum'].includes(k))) return 'not a usable JSON Schema: it constrains nothing (no type, properties, required, $ref or allOf)';
  const ajvMod = { default: loadDefault<unknown>('ajv-draft-04') };
  const formatsMod = { default: loadDefault<unknown>('ajv-formats') };
  type AjvLike = {
    addKeyword(def: object): void;
    addSchema(s: object, key: string): void;
    getSchema(key: string): (((d: unknown) => boolean) & { errors?: { instancePath: string; message?: string; params: Record<string, unknown> }[] | null }) | undefined;
  };
  const Ajv04 = ((ajvMod.default as { default?: unknown }).default ?? ajvMod.default) as new (o: object) => AjvLike;
  const addFormats = ((formatsMod.default as { default?: unknown }).default ?? formatsMod.default) as (a: AjvLike) => void;
  const ajv = new Ajv04({ allErrors: true, strict: false, logger: false });
  addFormats(ajv);
  // `deprecated: true` marks keys and forms to stop using: record where it applied, judge later.
  let seen: { at: string; schemaPath: string; data: unknown; why: string }[] | null = null;
  ajv.addKeyword({
    keyword: 'deprecated',
    schemaType: 'boolean',
    compile(on: boolean, parent: Record<string, unknown>, it: { errSchemaPath: string }) {
      const schemaPath = it.errSchemaPath;
      const why = String(parent.deprecated_description ?? 'deprecated');
      return (data: unknown, cxt: { instancePath: string }) => {
        if (on && seen) seen.push({ at: cxt.instancePath || '/', schemaPath, data, why });
        return true;
      };
    },
  });
  ajv.addSchema(schema, 'cloud-config');
  const validate = ajv.getSchema('cloud-config');
  if (typeof validate !== 'function') return 'not a usable JSON Schema: it does not compile to a validator';
  return {
    validate(doc) {
      seen = [];
      const ok = validate(doc);
      const hits = seen;
      seen = null;
      const errors = ok ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message}${e.params.additionalProperty ? ` ('${String(e.params.additionalProperty)}')` : ''}`);
      // A deprecated subschema is only a finding when the data actually takes that form (not
      // when it was merely tried as one branch of a oneOf/anyOf).
      const deprecated = [
        ...new Set(
          hits
            .filter((h) => {
              const sub = ajv.getSchema(`cloud-config${h.schemaPath}`);
              return sub ? sub(h.data) : true;
            })
            .map((h) => `${h.at}: deprecated: ${h.why}`),
        ),
      ];
      return { errors: [...new Set(errors)], deprecated };
    },
  };
}

/** The default upstream schema: ../shared/fixtures/cloud-init-schema beside the package. */
export function defaultCloudInitSchema(): string | null {
  const p = resolvePath(PACKAGE_ROOT, '..', 'shared', 'fixtures', 'cloud-init-schema', 'schema-cloud-config-v1.json');
  return existsSync(p) ? p : null;
}

// ── Validators ──────────────────────────────────────────────────────────────

const V: Record<string, Validator> = {
  'cloud-init': {
    name: 'cloud-init',
    programs: ['cloud-init'],
    pure: true,
    async run(s, t) {
      const d = t.scratch('cloud-init');
      writeFileSync(join(d, 'user-data'), readFileSync(s.abs));
      const r = await t.exec('cloud-init', ['schema', '-c', 'user-data'], d);
      const valid = /Valid cloud-config/.test(r.out);
      // (Exit 0 without its verdict: not a cloud-init that checked the file.)
      if (r.code === 0 && !valid) throw new ValidatorBroken(`cloud-init schema exited 0 without saying "Valid cloud-config"${r.out.trim() ? `: ${firstLine(r.out)}` : ''}`);
      const o = verdict(r, [[d + '/', '']], r.code !== 0);
      const dep = /Cloud config schema deprecations:\s*(.+)/.exec(r.out)?.[1]?.trim();
      if (dep) o.warnings = dep.split(/, (?=[\w.-]+: )/).map((x) => `deprecated: ${x}`);
      return o;
    },
  },
  'upstream-schema': {
    name: 'upstream-schema',
    programs: [],
    pure: true,
    async run(s, t) {
      const schema = await t.upstreamSchema();
      if (typeof schema === 'string') return { result: 'skipped', message: schema };
      const text = readFileSync(s.abs, 'utf8');
      if (!text.startsWith('#cloud-config\n')) return { result: 'FAIL', message: "first line is not '#cloud-config'" };
      let doc: unknown;
      try {
        doc = parse(text, { version: '1.1', uniqueKeys: true }); // cloud-init reads it with PyYAML (YAML 1.1)
      } catch (e) {
        return { result: 'FAIL', message: `YAML: ${(e as Error).message.split('\n')[0]}` };
      }
      const { errors, deprecated } = schema.validate(doc);
      const o: Outcome = errors.length ? { result: 'FAIL', message: errors[0]!, output: errors.join('\n') } : { result: 'ok', message: '' };
      if (deprecated.length) o.warnings = deprecated;
      return o;
    },
  },
  nginx: {
    name: 'nginx',
    programs: ['nginx'],
    pure: false,
    // (nginx -t reads the node's whole configuration: one run per node, each file's row from it;
    // the result depends on every nginx file of the node, and on the rootfs its certificates are in.)
    context: (s, t) => `${s.rootfs}|${t.nginxSet(s)}|${t.which('openssl') ?? ''}`,
    async run(s, t) {
      let { r, prefix, standIns, noStandIn } = await t.nginxRun(s);
      if (noStandIn) return { result: 'skipped', message: `openssl not found: no stand-in certificate for ${noStandIn} (the node makes its own at first boot), which nginx -t needs`, missing: ['openssl'] };
      const warnings = standIns.map((c) => `stand-in certificate for ${c} (the node makes its own at first boot)`);
      if (r.code === 0) return { result: 'ok', message: '', ...(warnings.length ? { warnings } : {}) };
      // (Its lines start with a time, a level and pid#tid: left out.)
      const strip = (x: string) => x.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[\w+\] \d+#\d+: /gm, 'nginx: ');
      r = { ...r, out: strip(r.out) };
      const out = tidy(r.out, [[prefix, '']]);
      // nginx stops at its first error, naming the file: that file fails; the others are unknown.
      const at = /in (\/\S+?):(\d+)/.exec(out);
      const nginxFiles = new Set(s.nodeFiles.filter((f) => f.kind === 'nginx').map((f) => f.path));
      const blamed = at && nginxFiles.has(at[1]!) ? at[1]! : '/etc/nginx/nginx.conf';
      if (s.path !== blamed) return { result: 'skipped', message: `nginx -t stopped at ${at ? `${at[1]}:${at[2]}` : blamed} before reaching it` };
      return { ...verdict(r, [[prefix, '']]), ...(warnings.length ? { warnings } : {}) };
    },
  },
  vmalert: { name: 'vmalert', programs: ['vmalert'], pure: true, run: (s, t) => simple(s, t, 'vmalert', (f) => ['-dryRun', `-rule=${f}`]) },
  'promtool-rules': { name: 'promtool', programs: ['promtool'], pure: true, run: (s, t) => simple(s, t, 'promtool', (f) => ['check', 'rules', f]) },
  amtool: {
    name: 'amtool',
    programs: ['amtool'],
    pure: true,
    // (amtool reads the template files `templates` names, on this machine.)
    run: unlessItReadsMore(/^templates\s*:/m, 'a templates list', (s, t) => simple(s, t, 'amtool', (f) => ['check-config', f])),
  },
  blackbox: {
    name: 'prometheus-blackbox-exporter',
    programs: ['prometheus-blackbox-exporter'],
    pure: true,
    run: (s, t) => simple(s, t, 'prometheus-blackbox-exporter', (f) => ['--config.check', `--config.file=${f}`]),
  },
  // (Parsed only, never run: sh -n.)
  sh: { name: 'sh', programs: ['sh'], pure: true, run: (s, t) => simple(s, t, 'sh', (f) => ['-n', f]) },
  visudo: {
    name: 'visudo',
    programs: ['visudo'],
    pure: true,
    // (visudo -c reads what #include and @includedir name, on this machine.)
    run: unlessItReadsMore(/^\s*[#@]include/m, 'an include directive', (s, t) => simple(s, t, 'visudo', (f) => ['-c', '-f', f])),
  },
  chronyd: {
    name: 'chronyd',
    programs: ['chronyd'],
    pure: true,
    // (chronyd -p reads what include, confdir and sourcedir name, on this machine.)
    run: unlessItReadsMore(/^\s*(include|confdir|sourcedir)\b/m, 'an include, confdir or sourcedir directive', (s, t) => simple(s, t, 'chronyd', (f) => ['-p', '-f', f])),
  },
  dnsmasq: {
    name: 'dnsmasq',
    programs: ['dnsmasq'],
    pure: false,
    async run(s, t) {
      const root = await t.nodeRoot(s);
      const d = t.scratch('dnsmasq');
      const included: string[] = [];
      writeFileSync(join(d, 'dnsmasq.conf'), rebaseDnsmasq(readFileSync(s.abs, 'utf8'), root, included));
      rebaseDnsmasqIncludes(root, included);
      // (By its absolute path, which the message maps back to the node's: dnsmasq names the file as given.)
      const r = await t.exec('dnsmasq', ['--test', '-C', join(d, 'dnsmasq.conf')], d);
      return verdict(r, [[join(d, 'dnsmasq.conf'), s.path], [root, ''], [d + '/', '']], r.code !== 0 || !/syntax check OK/.test(r.out));
    },
  },
  'openssl-cert': { name: 'openssl', programs: ['openssl'], pure: true, run: (s, t) => simple(s, t, 'openssl', (f) => ['x509', '-noout', '-in', f]) },
  // -noout: a key's bytes are never printed, whatever happens.
  'openssl-key': { name: 'openssl', programs: ['openssl'], pure: true, run: (s, t) => simple(s, t, 'openssl', (f) => ['pkey', '-noout', '-in', f]) },
  'systemd-analyze': {
    name: 'systemd-analyze',
    programs: ['systemd-analyze'],
    pure: false,
    context: (s, t) => t.unitSet(s),
    async run(s, t) {
      const root = await t.unitRoot(s, t.unitSet(s));
      const unit = basename(s.path);
      const d = t.scratch(`systemd-${unit}`);
      const r = await t.exec('systemd-analyze', ['verify', `--root=${root}`, unit], d);
      const out = tidy(r.out, [[root, '']]);
      // Warnings about the unit's own lines (unknown keys, bad values) exit 0 but are mistakes.
      const ownLines = out.split('\n').filter((l) => l.startsWith(`${s.path}:`) || l.startsWith(`/etc/systemd/system/${unit}:`));
      const o = verdict({ code: r.code, out }, [], r.code !== 0 || ownLines.length > 0);
      if (o.result === 'FAIL' && ownLines.length) o.message = ownLines[0]!;
      return o;
    },
  },
  'victoria-metrics': {
    name: 'victoria-metrics',
    programs: ['victoria-metrics'],
    pure: false,
    async run(s, t) {
      const root = await t.nodeRoot(s);
      const { text, notes, problem, failed } = await rebaseScrapeConfig(s, t, root);
      if (problem && failed) return { result: 'FAIL', message: problem };
      if (problem) return { result: 'skipped', message: problem, missing: ['openssl'] };
      const d = t.scratch('victoria-metrics');
      writeFileSync(join(d, 'prometheus.yml'), text);
      const r = await t.exec('victoria-metrics', ['-promscrape.config=prometheus.yml', '-promscrape.config.dryRun', '-loggerLevel=ERROR'], d);
      const o = verdict(r, [[root, ''], [join(d, 'prometheus.yml'), s.path], [d + '/', '']]);
      if (notes.length) o.warnings = notes;
      return o;
    },
  },
  'promtool-config': {
    name: 'promtool',
    programs: ['promtool'],
    pure: false,
    async run(s, t) {
      const root = await t.nodeRoot(s);
      const { text } = await rebaseScrapeConfig(s, t, root);
      const d = t.scratch('promtool-config');
      writeFileSync(join(d, 'prometheus.yml'), text);
      const r = await t.exec('promtool', ['check', 'config', '--syntax-only', 'prometheus.yml'], d);
      return verdict(r, [[root, ''], [join(d, 'prometheus.yml'), s.path], [d + '/', '']]);
    },
  },
};

function builtin(kind: string): Validator {
  return {
    name: 'builtin',
    programs: [],
    pure: true,
    async run(s) {
      const r = BUILTIN[kind]!(readFileSync(s.abs, 'utf8'), s.path);
      const o: Outcome = r.errors.length ? { result: 'FAIL', message: r.errors[0]!, output: r.errors.join('\n') } : { result: 'ok', message: '' };
      if (r.warnings.length) o.warnings = r.warnings;
      return o;
    },
  };
}

/** The validators of a file, by kind (dnsmasq: the main config, or a hosts-format records file). */
export function validatorsFor(kind: string, path: string): Validator[] {
  switch (kind) {
    case 'cloud-config':
      return [V['cloud-init']!, V['upstream-schema']!];
    case 'vmalert-rules':
      return [V.vmalert!, V['promtool-rules']!];
    case 'alertmanager':
      return [V.amtool!];
    case 'nginx':
      return [V.nginx!];
    case 'blackbox':
      return [V.blackbox!];
    case 'chrony':
      return [V.chronyd!];
    case 'aliases':
      return [V.sh!];
    case 'sudoers':
      return [V.visudo!];
    case 'systemd-unit':
      return [V['systemd-analyze']!];
    case 'scrape-config':
      return [V['victoria-metrics']!, V['promtool-config']!];
    case 'dnsmasq':
      return path.endsWith('.conf') ? [V.dnsmasq!] : [builtin('dnsmasq-hosts')];
    case 'ca-cert':
    case 'tls-cert':
      return [V['openssl-cert']!];
    case 'tls-key':
      return [V['openssl-key']!];
    default:
      return Object.hasOwn(BUILTIN, kind) ? [builtin(kind)] : [];
  }
}

// ── The engine ──────────────────────────────────────────────────────────────

function readManifest(dir: string): Record<string, ManifestNode> {
  const mf = join(dir, 'manifest.json');
  let m: { generator?: unknown; nodes?: unknown };
  try {
    m = JSON.parse(readFileSync(mf, 'utf8')) as typeof m;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // (Gone, its previous tree set aside: a build cut between the two renames of its swap, or one
    // in that moment now. Not put back from here: a build under way does that itself.)
    // (DIR a link to the output: the output's own home.)
    let real = dir;
    try {
      real = resolvePath(dirname(dir), readlinkSync(dir));
    } catch {}
    const aside = join(dirname(real), `.${basename(real)}.pigen`, 'old', 'manifest.json');
    if (code === 'ENOENT' && !existsSync(dir) && existsSync(aside)) {
      throw new NotPigenOutput(`${dir} is missing: a build was cut between the renames that swap in a new output, and the previous one waits in ${dirname(aside)} (the next build puts it back first)`);
    }
    throw new NotPigenOutput(code === 'ENOENT' || code === 'ENOTDIR' ? `${dir} is not a pigen output (no manifest.json)` : `${mf}: ${(e as Error).message}`);
  }
  if (!m || typeof m !== 'object' || typeof m.generator !== 'string' || !m.generator.startsWith('pigen') || !m.nodes || typeof m.nodes !== 'object' || Array.isArray(m.nodes)) {
    throw new NotPigenOutput(`${mf} is not a pigen manifest`);
  }
  const nodes = m.nodes as Record<string, ManifestNode>;
  if (!Object.keys(nodes).length) throw new NotPigenOutput(`${mf} lists no node (a pigen build writes at least one)`);
  // (Every file it names lies in DIR, under its node's directory, as pigen writes them: a manifest
  // edited to name ../../etc/shadow is no pigen output, and no file outside DIR is read.)
  const under = (out: unknown, ip: string) => typeof out === 'string' && out.startsWith(`nodes/${ip}/`) && !out.split('/').some((x) => x === '..' || x === '.' || x === '');
  for (const [ip, n] of Object.entries(nodes)) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) throw new NotPigenOutput(`${mf}: node ${JSON.stringify(ip)} is not an IPv4 address`);
    if (!n || typeof n !== 'object' || !Array.isArray(n.files) || n.files.some((f) => typeof f?.path !== 'string' || !under(f?.out, ip) || typeof f?.kind !== 'string')) {
      throw new NotPigenOutput(`${mf}: node ${ip} has no valid files list (each file: path, kind, and out under nodes/${ip}/)`);
    }
    if (n.userData !== undefined && (!n.userData || !under(n.userData.out, ip))) throw new NotPigenOutput(`${mf}: node ${ip}'s userData.out is not under nodes/${ip}/`);
    if (n.image?.userData !== undefined && (!n.image.userData || !under(n.image.userData.out, ip))) throw new NotPigenOutput(`${mf}: node ${ip}'s image.userData.out is not under nodes/${ip}/`);
  }
  return nodes;
}

/**
 * Outcomes of the checks whose result depends only on the file (and the program that checked
 * it), kept for the process: identical files across nodes and builds are checked once.
 */
const shared = new Map<string, Promise<Outcome>>();

/** Runs every check over the output directory DIR. Throws NotPigenOutput when DIR is not one. */
export async function checkOutput(dir: string, opts: CheckOptions = {}): Promise<CheckReport> {
  const nodes = readManifest(dir);
  const schemaPath = opts.cloudInitSchema === undefined ? defaultCloudInitSchema() : opts.cloudInitSchema;
  // No secret is printed: a validator may quote the line of a file it fails on, a password's.
  // (With the index the build left beside DIR: exactly the values it put there, in the programs'
  // output as it comes; and, index or not, whatever looks like one in what the rows say:
  // util/redact.ts.)
  const index = readRedactionIndex(dir);
  const indexKey = index ? hash(new TextEncoder().encode(JSON.stringify(index))) : '';
  const t = new Toolbox(opts.env ?? process.env, schemaPath, opts.jobs ?? Math.max(1, Math.min(8, availableParallelism())), (text) => redactRaw(text, index));
  const rows: CheckRow[] = [];
  const pending: Promise<void>[] = [];
  const notFound = new Set<string>();
  try {
    // (Read only a regular file within DIR that this user can read: not a directory, nor a link
    // out of DIR, nor one it may not open; said once, as the file's row.)
    const problemOf = (abs: string, out: string): string | undefined => {
      try {
        if (!statSync(abs).isFile()) return `${out} is not a regular file`;
        if (!isWithin(abs, dir)) return `${out} leads out of ${dir}`;
        closeSync(openSync(abs, 'r'));
        return undefined;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return `${out} is listed in manifest.json but missing`;
        return `${out} cannot be read: ${code === 'EACCES' ? 'permission denied (run pigen check as the user who built it, or root)' : systemErrorMessage(e)}`;
      }
    };
    for (const ip of Object.keys(nodes).sort()) {
      const n = nodes[ip]!;
      const rootfs = join(dir, 'nodes', ip, 'rootfs');
      // Each file the manifest lists, vetted once: only those reach the checks that read a node's
      // other files too (nginx -t, the units, the rootfs copy). A path listed twice is no pigen output's.
      const problems = new Map<ManifestFile, string>();
      const seenPaths = new Set<string>();
      for (const f of n.files) {
        const why = seenPaths.has(f.path) ? `${f.out}: ${f.path} is listed twice in manifest.json` : problemOf(join(dir, f.out), f.out);
        seenPaths.add(f.path);
        if (why) problems.set(f, why);
      }
      const nodeFiles = n.files.filter((f) => !problems.has(f));
      const subjects: (Subject & { problem?: string })[] = n.files.map((f) => ({ node: ip, path: f.path, out: f.out, kind: f.kind, abs: join(dir, f.out), rootfs, nodeFiles, dir, sha: '', ...(problems.has(f) ? { problem: problems.get(f)! } : {}) }));
      const ud = n.userData?.out ?? `nodes/${ip}/user-data`;
      subjects.push({ node: ip, path: 'user-data', out: ud, kind: 'cloud-config', abs: join(dir, ud), rootfs, nodeFiles, dir, sha: '' });
      // (What a node booted from its golden image gets instead: checked the same way.)
      const baked = n.image?.userData?.out;
      if (baked) subjects.push({ node: ip, path: 'user-data.baked', out: baked, kind: 'cloud-config', abs: join(dir, baked), rootfs, nodeFiles, dir, sha: '' });
      for (const s of subjects) {
        const vs = validatorsFor(s.kind, s.path);
        const base = { node: ip, path: s.path, out: s.out, kind: s.kind };
        const what = s.problem ?? problemOf(s.abs, s.out);
        if (what) {
          rows.push({ ...base, validator: 'manifest', result: 'FAIL', message: what });
          continue;
        }
        if (!vs.length) {
          rows.push({ ...base, validator: '-', result: 'skipped', message: `no validator for kind ${s.kind}` });
          continue;
        }
        s.sha = hash(readFileSync(s.abs));
        for (const v of vs) {
          const row: CheckRow = { ...base, validator: v.name, result: 'skipped', message: '' };
          rows.push(row);
          const missing = v.programs.filter((p) => !t.which(p));
          if (missing.length) {
            missing.forEach((p) => notFound.add(p));
            row.message = `${missing.join(', ')} not found on PATH`;
            continue;
          }
          const ctxKey = v.pure ? '' : v.context?.(s, t);
          // The programs' locations and the schema are part of the key: another PATH, another run.
          const tools = v.programs.map((x) => t.which(x)).join(',') + (v.name === 'upstream-schema' ? `|${schemaPath}` : '');
          // (And the redaction index: outputs are kept with the secrets it hid.)
          const key = ctxKey === undefined ? undefined : `${v.name}|${tools}|${s.kind}|${s.path}|${s.sha}|${ctxKey}|${indexKey}`;
          let p = key ? shared.get(key) : undefined;
          if (!p) {
            p = v.run(s, t).catch((e: unknown) => ({ result: 'FAIL' as const, message: e instanceof ValidatorBroken ? `${v.name} could not check it: ${e.message}` : `check crashed: ${(e as Error).message}` }));
            if (key) shared.set(key, p);
          }
          pending.push(
            p.then((o) => {
              Object.assign(row, { result: o.result, message: o.message });
              for (const m of o.missing ?? []) notFound.add(m);
              if (o.warnings?.length) row.warnings = o.warnings;
              if (o.output) row.output = o.output;
            }),
          );
        }
      }
    }
    await Promise.all(pending);
  } finally {
    t.dispose();
  }
  const redacted = new Map<string, string>();
  const clean = (t: string) => {
    let c = redacted.get(t);
    if (c === undefined) redacted.set(t, (c = redactValidatorText(t, index)));
    return c;
  };
  for (const r of rows) {
    r.message = clean(r.message);
    if (r.warnings) r.warnings = r.warnings.map(clean);
    if (r.output !== undefined) r.output = clean(r.output);
  }
  const counts: Record<CheckResult, number> = { ok: 0, FAIL: 0, skipped: 0 };
  const ran: Record<string, number> = {};
  for (const r of rows) {
    counts[r.result]++;
    if (r.result !== 'skipped') ran[r.validator] = (ran[r.validator] ?? 0) + 1;
  }
  return { dir, rows, notFound: [...notFound].sort(), counts, ran, redaction: index ? 'index' : 'look' };
}

const hash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

// ── The command ─────────────────────────────────────────────────────────────

function table(rows: CheckRow[]): string {
  const cells = rows.map((r) => {
    const note = r.result === 'ok' && r.warnings?.length ? `warning: ${r.warnings[0]}${r.warnings.length > 1 ? ` (+${r.warnings.length - 1} more)` : ''}` : r.message;
    // (What a file of DIR holds reaches these messages: nothing a terminal would act on is printed.)
    return [visible(`${r.node}:${r.path}`), r.validator, r.result, visible(note.length > 160 ? note.slice(0, 157) + '...' : note)];
  });
  const head = ['FILE', 'VALIDATOR', 'RESULT', 'MESSAGE'];
  const w = [0, 1, 2].map((i) => Math.max(head[i]!.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => `${c[0]!.padEnd(w[0]!)}  ${c[1]!.padEnd(w[1]!)}  ${c[2]!.padEnd(w[2]!)}  ${c[3]}`.trimEnd();
  return [line(head), ...cells.map(line)].join('\n') + '\n';
}

export const check: Command = {
  name: 'check',
  summary: "run the real validators (cloud-init, nginx, vmalert, promtool, amtool, ...) over a build's output",
  usage: 'pigen check [DIR] [--json] [--cloud-init-schema FILE]',
  help: `Reads DIR/manifest.json (DIR defaults to out) and checks every file with the validator of its
kind, when that program is on PATH: cloud-config (each node's user-data and user-data.baked) with 'cloud-init schema -c'
and the upstream JSON schema; nginx with 'nginx -t' (the node's whole configuration, paths rebased
into a copy); vmalert-rules with 'vmalert -dryRun' and 'promtool check rules';
alertmanager with 'amtool check-config'; blackbox with 'prometheus-blackbox-exporter
--config.check'; dnsmasq with 'dnsmasq --test'; chrony with 'chronyd -p'; systemd-unit with
'systemd-analyze verify --root' (daemon binaries stubbed); scrape-config with 'victoria-metrics
-promscrape.config.dryRun' and 'promtool check config --syntax-only'. env, hosts, resolv, grafana,
vector, apt-source, yum-repo, scrape-targets, sysctl, kernel-modules and crontab get a built-in
check; ca-cert, tls-cert and tls-key files are read with 'openssl x509|pkey -noout'; sudoers with
'visudo -c -f'; aliases with 'sh -n'. Validators run in scratch directories (mode 0700),
on copies whose absolute node paths point into a copy of the node's rootfs.

Prints a table (file, validator, ok/FAIL/skipped, first line of the message), then the validators
that were not found. Deprecated cloud-config keys are warnings. No secret is printed: what a
validator quotes of a file is shown with the secrets the build put there (known from the index it
leaves beside DIR) and anything that looks like one (a password's line, a URL's credentials, a
key's base64) as ****. A validator not on PATH is listed, and its checks skipped: they do not
fail the run. Exit 0 when nothing failed, 1 when a check failed, 2 when DIR is not a pigen output
or --cloud-init-schema names no usable JSON Schema.

Arguments:
  DIR                       a 'pigen build' output directory (default: out)

Options:
  --cloud-init-schema FILE  upstream cloud-config schema (draft-04 JSON); default
                            ../shared/fixtures/cloud-init-schema/schema-cloud-config-v1.json
                            beside the package, when it exists
  --json                    print the table as JSON on stdout
  -h, --help                show this help`,
  options: { json: { type: 'boolean' }, 'cloud-init-schema': { type: 'string' } },
  maxArgs: 1,
  async run(ctx, values, args) {
    const dirArg = args[0] ?? 'out';
    const dir = resolvePath(ctx.cwd, dirArg);
    let schema: string | null | undefined;
    if (typeof values['cloud-init-schema'] === 'string') {
      schema = resolvePath(ctx.cwd, values['cloud-init-schema']);
      if (!existsSync(schema)) throw new UsageError(`--cloud-init-schema: no such file: ${values['cloud-init-schema']}`);
      // (A schema named on the command line that cannot be used is a usage error, found before
      // any check: not a row of skipped or crashed checks. Compiled once: the checks reuse it.)
      const named = schema;
      const loaded = schemas.get(named) ?? loadUpstreamSchema(named).catch((e: unknown) => `not a usable JSON Schema: ${(e as Error).message}`);
      schemas.set(named, loaded);
      const usable = await loaded;
      if (typeof usable === 'string') throw new UsageError(`--cloud-init-schema ${values['cloud-init-schema']}: ${usable.replace(`cannot read ${named}: `, 'cannot read it: ')}`);
    }
    let report: CheckReport;
    try {
      report = await checkOutput(dir, { env: ctx.env, ...(schema !== undefined ? { cloudInitSchema: schema } : {}) });
    } catch (e) {
      if (e instanceof NotPigenOutput) {
        ctx.stderr.write(`pigen: ${e.message}; run 'pigen build -o ${dirArg}' first\n`);
        if (values.json) ctx.stdout.write(JSON.stringify({ dir: dirArg, ok: false, error: e.message }, null, 2) + '\n');
        return 2;
      }
      throw e;
    }
    const failed = report.counts.FAIL > 0;
    if (values.json) {
      ctx.stdout.write(JSON.stringify({ dir: dirArg, ok: !failed, counts: report.counts, ran: report.ran, notFound: report.notFound, redaction: report.redaction, rows: report.rows }, null, 2) + '\n');
    } else {
      ctx.stdout.write(table(report.rows));
      for (const r of report.rows.filter((x) => x.result === 'FAIL' && x.output && x.output.includes('\n'))) {
        ctx.stdout.write(`\n${visible(`${r.node}:${r.path}`)} (${r.validator}):\n${r.output!.split('\n').slice(0, 20).map((l) => `  ${visible(l)}`).join('\n')}\n`);
      }
      ctx.stdout.write(`\nvalidators not found: ${report.notFound.length ? report.notFound.join(', ') : 'none'}\n`);
      if (failed && report.redaction === 'look') {
        ctx.stdout.write(`note: no redaction index beside ${dirArg} (the one \`pigen build\` leaves in its .pigen directory): in the messages above only what looks like a secret is hidden; check the output where it was built\n`);
      }
      const c = report.counts;
      ctx.stdout.write(`${report.rows.length} checks: ${c.ok} ok, ${c.FAIL} FAIL, ${c.skipped} skipped\n`);
    }
    return failed ? 1 : 0;
  },
};
