// A node's nginx configuration, as nginx reads it, for `nginx -t` away from the node: a small
// parser (words and ; { }, comments and quotes as nginx has them), and a copy of the node's
// /etc/nginx tree under a scratch prefix with every file path rebased into it. Rebasing is done in
// the copy only, directive by directive (the directives below take a path as their first
// argument); the generated files are never changed. Used by `pigen check` and by the tests.

import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { nginxTokens } from '../util/nginx.js';

export interface Directive {
  name: string;
  args: string[];
  /** The directives inside `{ ... }`, when the directive has a block. */
  block?: Directive[];
}

/** Parses nginx config text into directives (includes are not followed). */
export function parseNginx(text: string): Directive[] {
  const tokens = nginxTokens(text);
  let pos = 0;
  const parseBlock = (top: boolean): Directive[] => {
    const list: Directive[] = [];
    while (pos < tokens.length) {
      const t = tokens[pos]!;
      if (t.text === '}' && t.value === null) {
        if (top) throw new Error(`unexpected } at offset ${t.start}`);
        pos++;
        return list;
      }
      if (t.value === null) throw new Error(`unexpected ${t.text} at offset ${t.start}`);
      const name = t.value;
      const args: string[] = [];
      pos++;
      for (;;) {
        const a = tokens[pos];
        if (!a) throw new Error(`directive ${name} is not terminated`);
        pos++;
        if (a.value !== null) args.push(a.value);
        else if (a.text === ';') {
          list.push({ name, args });
          break;
        } else if (a.text === '{') {
          list.push({ name, args, block: parseBlock(false) });
          break;
        } else throw new Error(`unexpected } in directive ${name}`);
      }
    }
    if (!top) throw new Error('unbalanced {');
    return list;
  };
  return parseBlock(true);
}

/** Directives whose first argument is a file or directory path. */
export const PATH_DIRECTIVES = new Set([
  'include', 'root', 'alias', 'pid', 'error_log', 'access_log', 'auth_basic_user_file',
  'ssl_certificate', 'ssl_certificate_key', 'ssl_trusted_certificate', 'ssl_client_certificate',
  'ssl_dhparam', 'ssl_crl', 'ssl_password_file', 'ssl_stapling_file', 'ssl_session_ticket_key',
  'proxy_ssl_certificate', 'proxy_ssl_certificate_key', 'proxy_ssl_trusted_certificate',
  'client_body_temp_path', 'proxy_temp_path', 'fastcgi_temp_path', 'uwsgi_temp_path', 'scgi_temp_path',
  'lock_file', 'working_directory', 'load_module',
]);

export interface RebaseResult {
  text: string;
  /** Every path directive met: name and original path (absolute ones were rebased). */
  paths: { name: string; path: string }[];
}

/** Whether a path has a `..` segment (which a prefix or join() would not keep it under). */
export const hasDotDot = (p: string) => p.split('/').includes('..');

type Token = ReturnType<typeof nginxTokens>[number];
type Edit = { start: number; end: number; text: string };

/**
 * Each directive of the text (its name token), with its first argument when it has one and the
 * index of the name in `tokens`: what the rebasing and the listen mapping below edit.
 */
function eachDirective(tokens: Token[], f: (name: Token & { value: string }, arg: (Token & { value: string }) | undefined, k: number) => void): void {
  let atStart = true;
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.value === null) {
      atStart = true;
      continue;
    }
    if (!atStart) continue;
    atStart = false;
    const arg = tokens[k + 1];
    f(t as Token & { value: string }, arg && arg.value !== null ? (arg as Token & { value: string }) : undefined, k);
  }
}

/** `text` with each edit's span replaced (spans do not overlap). */
function applyEdits(text: string, edits: Edit[]): string {
  let out = text;
  for (const e of edits.sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}

/**
 * Prefixes the absolute path argument of every path directive with `prefix`. `pid` directives are
 * dropped (the caller passes `-g 'pid ...;'`, and nginx refuses a second pid directive).
 */
export function rebaseNginx(text: string, prefix: string): RebaseResult {
  const tokens = nginxTokens(text);
  const edits: Edit[] = [];
  const paths: RebaseResult['paths'] = [];
  eachDirective(tokens, (t, arg, k) => {
    if (!PATH_DIRECTIVES.has(t.value) || !arg) return;
    paths.push({ name: t.value, path: arg.value });
    if (t.value === 'pid') {
      const semi = tokens[k + 2];
      edits.push({ start: t.start, end: semi?.text === ';' ? semi.end : arg.end, text: `# pid ${arg.value}; (set with -g)` });
    } else if (arg.value.startsWith('/')) {
      // (A `..` segment would lead out of the prefix: a path that is nowhere, which nginx reports.)
      const to = hasDotDot(arg.value) ? `${prefix}/.pigen-check-path-with-dotdot` : prefix + arg.value;
      edits.push({ start: arg.start, end: arg.end, text: JSON.stringify(to) });
    }
  });
  return { text: applyEdits(text, edits), paths };
}

/**
 * A `listen` argument's port (`80`, `*:80`, `127.0.0.1:80`, `[::]:443`; an address alone listens
 * on 80), and the argument with another port; undefined for a unix socket.
 */
export function listenPort(arg: string): { port: number; with(port: number): string } | undefined {
  if (arg.startsWith('unix:')) return undefined;
  const m = /^(?:(.*):)?(\d+)$/.exec(arg);
  if (m) return { port: Number(m[2]), with: (p) => (m[1] !== undefined ? `${m[1]}:${p}` : String(p)) };
  return { port: 80, with: (p) => `${arg}:${p}` };
}

/** Every port the `listen` directives of these configs name, sorted. */
export function listenPorts(texts: readonly string[]): number[] {
  const ports = new Set<number>();
  for (const text of texts) {
    eachDirective(nginxTokens(text), (t, arg) => {
      const l = t.value === 'listen' && arg ? listenPort(arg.value) : undefined;
      if (l) ports.add(l.port);
    });
  }
  return [...ports].sort((a, b) => a - b);
}

/** `text` with each `listen` directive's port mapped by `port` (the copy's: see copyNginxTree). */
export function remapListen(text: string, port: (p: number) => number): string {
  const edits: Edit[] = [];
  eachDirective(nginxTokens(text), (t, arg) => {
    const l = t.value === 'listen' && arg ? listenPort(arg.value) : undefined;
    if (l && port(l.port) !== l.port) edits.push({ start: arg!.start, end: arg!.end, text: JSON.stringify(l.with(port(l.port))) });
  });
  return applyEdits(text, edits);
}

/** The system's mime.types (nginx package), which the generated nginx.conf includes. */
export const SYSTEM_MIME_TYPES = '/etc/nginx/mime.types';

export interface NginxCopy {
  prefix: string;
  conf: string;
  /** Original path → text of every /etc/nginx file of the node. */
  files: Map<string, string>;
  /** Every path directive in the copied configs, with its original path. */
  paths: { file: string; name: string; path: string }[];
  /** [certificate, key] pairs named by ssl_certificate / ssl_certificate_key (original paths). */
  certs: [string, string][];
}

/**
 * Writes the node's /etc/nginx/** files under `prefix` with every path rebased, copies the
 * system mime.types, creates the log directory, and, when the configured `user` does not exist
 * on this machine (e.g. `nginx` of the el9 profile), runs the copy as `www-data` instead. The
 * compiled-in temp directories (/var/lib/nginx/*, which nginx creates even for `-t`) are set
 * under the prefix at the top of the http block. `port` maps the ports `listen` names (nginx -t
 * binds them: 80 and 443 need root, and one in use fails it), distinct ones to distinct ones.
 */
export function copyNginxTree(nodeFiles: { path: string; content: string }[], prefix: string, userExists: (user: string) => boolean, port?: (p: number) => number): NginxCopy {
  const extraHttp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${prefix}/var/lib/nginx/${t}; # check copy only`);
  mkdirSync(join(prefix, 'var/lib/nginx'), { recursive: true });
  const files = new Map<string, string>();
  const paths: NginxCopy['paths'] = [];
  for (const f of nodeFiles) {
    if (!f.path.startsWith('/etc/nginx/')) continue;
    files.set(f.path, f.content);
    let text = f.content;
    if (f.path.endsWith('.conf')) {
      const r = rebaseNginx(text, prefix);
      text = port ? remapListen(r.text, port) : r.text;
      paths.push(...r.paths.map((p) => ({ file: f.path, ...p })));
      if (f.path === '/etc/nginx/nginx.conf') {
        const user = /^user\s+([^\s;]+)/m.exec(text)?.[1];
        if (user && !userExists(user)) text = text.replace(/^user\s+[^\s;]+/m, 'user www-data');
        const before = text;
        text = text.replace(/^http\s*\{\n/m, (m) => m + extraHttp.map((l) => `    ${l}\n`).join(''));
        if (text === before) throw new Error('nginx.conf has no `http {` line for the temp paths');
      }
    }
    const dst = prefix + f.path;
    mkdirSync(dirname(dst), { recursive: true });
    writeFileSync(dst, text);
  }
  if (!files.has('/etc/nginx/mime.types')) copyFileSync(SYSTEM_MIME_TYPES, join(prefix, 'etc/nginx/mime.types'));
  mkdirSync(join(prefix, 'var/log/nginx'), { recursive: true });
  const certs: [string, string][] = [];
  const seen = new Set<string>();
  for (let k = 0; k < paths.length; k++) {
    const p = paths[k]!;
    if (p.name !== 'ssl_certificate') continue;
    const key = paths.slice(k + 1).find((q) => q.file === p.file && q.name === 'ssl_certificate_key');
    if (key && !seen.has(p.path)) {
      seen.add(p.path);
      certs.push([p.path, key.path]);
    }
  }
  return { prefix, conf: join(prefix, 'etc/nginx/nginx.conf'), files, paths, certs };
}
