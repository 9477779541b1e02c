// Helpers for the nginx tests (nginx.test.ts, live.test.ts): the parser and the rebased copy of a
// node's /etc/nginx tree that `pigen check` uses (generator/cli/check-nginx.ts), so the real nginx
// can check (nginx -t) or serve the generated configuration; and, for the tests, the node's own
// first-boot certificate commands run under the prefix, and lookups of server blocks.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { run, stopChild, which } from './helpers.ts';
import { copyNginxTree as copyTree, parseNginx, type Directive, type NginxCopy } from '../generator/cli/check-nginx.ts';

export { PATH_DIRECTIVES, parseNginx, rebaseNginx, SYSTEM_MIME_TYPES, type Directive, type NginxCopy, type RebaseResult } from '../generator/cli/check-nginx.ts';

/** copyNginxTree of pigen check, the `user` looked up on this machine with id(1). */
export const copyNginxTree = (nodeFiles: { path: string; content: string }[], prefix: string): NginxCopy => copyTree(nodeFiles, prefix, (u) => run('id', ['-u', u]).code === 0);


/** fastKeys results by the commands that made them: the same commands give the same files. */
const certCache = new Map<string, { crt: Buffer; key: Buffer }>();

/**
 * A first-boot shell command with every absolute path moved under `prefix`, except the
 * `-subj /CN=...` argument and redirections (2>/dev/null). Throws when a path would escape.
 */
export function rebaseCommand(cmd: string, prefix: string): string {
  const out = cmd.replace(/(^|[\s(])(-subj\s+)?(\/[^\s;)]*)/g, (m, pre: string, subj: string | undefined, path: string) => (subj ? m : `${pre}${prefix}${path}`));
  const left = [...out.matchAll(/(^|[\s(=])(\/[^\s;)]*)/g)].map((m) => m[2]!).filter((p) => !p.startsWith(prefix + '/') && !/^\/CN=/.test(p));
  if (left.length) throw new Error(`command would touch ${left.join(', ')} outside the test prefix: ${cmd}`);
  return out;
}

/**
 * Runs the node's own first-boot certificate commands (the `openssl req` runcmd lines that make
 * a certificate the configuration names, in runcmd order, as on the node) with every path
 * rebased under the prefix. Returns the certificates that no command creates.
 * `fastKeys` swaps the RSA key for a P-256 one (milliseconds instead of about half a second per
 * key), for tests that check many configurations rather than the command itself; such
 * results are reused when another case has the very same commands.
 */
export function makeCerts(copy: NginxCopy, runcmd: string[], opts: { fastKeys?: boolean } = {}): string[] {
  const missing: string[] = [];
  for (const [crt, key] of copy.certs) {
    const cmds = runcmd.filter((c) => c.includes('openssl req') && c.includes(`-out ${crt} `) && c.includes(`-keyout ${key} `));
    if (!cmds.length) {
      missing.push(crt);
      continue;
    }
    const id = cmds.join('\n');
    const cached = opts.fastKeys ? certCache.get(id) : undefined;
    if (cached) {
      for (const [p, data, mode] of [[crt, cached.crt, 0o644], [key, cached.key, 0o600]] as const) {
        mkdirSync(dirname(copy.prefix + p), { recursive: true });
        writeFileSync(copy.prefix + p, data, { mode });
      }
      continue;
    }
    for (const cmd of cmds) {
      let rebased = rebaseCommand(cmd, copy.prefix);
      if (opts.fastKeys) rebased = rebased.replace(/ -newkey rsa:\d+ /, ' -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 ');
      const r = run('sh', ['-c', rebased]);
      if (r.code !== 0) throw new Error(`certificate command failed (${r.code}): ${rebased}\n${r.stderr}`);
    }
    if (!existsSync(copy.prefix + crt) || !existsSync(copy.prefix + key)) throw new Error(`${crt}: not made by ${id}`);
    if (opts.fastKeys) certCache.set(id, { crt: readFileSync(copy.prefix + crt), key: readFileSync(copy.prefix + key) });
  }
  return missing;
}

export const NGINX = () => which('nginx') ?? 'nginx';

/** `nginx -t -q` on the copy, as system-tools.md describes. */
export function nginxTest(copy: NginxCopy) {
  return run(NGINX(), ['-t', '-q', '-p', copy.prefix + '/', '-c', copy.conf, '-g', `pid ${copy.prefix}/nginx.pid;`]);
}

/** The http-level server blocks of nginx.conf with its includes expanded from `files`, each with its file. */
export function servers(files: Map<string, string>): { file: string; server: Directive }[] {
  const out: { file: string; server: Directive }[] = [];
  const glob = (pattern: string) => {
    const re = new RegExp('^' + pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*') + '$');
    return [...files.keys()].filter((p) => re.test(p)).sort();
  };
  const walk = (list: Directive[], file: string) => {
    for (const d of list) {
      if (d.name === 'include' && d.args[0]) for (const f of glob(d.args[0])) walk(parseNginx(files.get(f)!), f);
      else if (d.name === 'server') out.push({ file, server: d });
      else if (d.name === 'http' && d.block) walk(d.block, file);
    }
  };
  const main = files.get('/etc/nginx/nginx.conf');
  if (main) walk(parseNginx(main), '/etc/nginx/nginx.conf');
  return out;
}

/** Directives named `name` directly inside `list`. */
export const all = (list: Directive[] | undefined, name: string) => (list ?? []).filter((d) => d.name === name);
/** The one directive named `name` directly inside `list` (undefined when absent). */
export const one = (list: Directive[] | undefined, name: string) => all(list, name)[0];
/** The `location` directive with exactly these arguments. */
export const location = (list: Directive[] | undefined, ...args: string[]) =>
  all(list, 'location').find((d) => d.args.length === args.length && d.args.every((a, i) => a === args[i]));

/**
 * Stops an nginx started with `daemon off`: SIGQUIT to the master, which stops its workers first
 * (SIGKILL of the master alone leaves them listening, re-parented to init), then SIGKILL after 5 s.
 */
export const stopNginx = (child: import('node:child_process').ChildProcess): Promise<void> => stopChild(child, 'SIGQUIT');
