// `pigen secrets init|rotate`: the secrets file beside the inventory. Keys and certificates are made
// with the openssl program (no hand-written ASN.1); passwords with Node's CSPRNG. Never prints a
// secret value.

import { spawnSync } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { readAssets, takeLock, writeFileAtomic } from '../io.js';
import { SECRETS_FILE, defaultPasswords, infraSans, parseSecrets, serializeSecrets, sshPublicKey, unknownPasswords, type NodeTls, type Secrets } from '../secrets/index.js';
import type { Inventory } from '../types.js';
import { Vars } from '../plan/vars.js';
import { INVENTORY_HELP, INVENTORY_OPTIONS, type Command, type Values } from './commands.js';
import { EXPIRY_WARNING_MS, diagnosticsToJson, hasErrors, loadInventory, printDiagnostics, systemErrorMessage, whenFree } from './common.js';
import { UsageError, type CliContext } from './context.js';

/**
 * Runs openssl (`input` on its stdin) and returns its stdout. (Node hands a child its stdin as a
 * socket, which openssl cannot open as /dev/stdin: `cat` passes it on through a pipe.)
 */
function openssl(args: string[], cwd: string, input?: string): string {
  const r = input === undefined ? spawnSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) : spawnSync('sh', ['-c', 'cat | "$@"', 'sh', 'openssl', ...args], { cwd, encoding: 'utf8', input });
  if (r.error || r.status === 127) throw Object.assign(new Error('the openssl program is needed to make keys and certificates (apt-get install openssl)'), { expected: true });
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.trim().split('\n')[0]}`);
  return r.stdout;
}

// (Private keys never touch the disk: openssl writes them to its stdout and reads them from its
// stdin; a temp directory holds only public data: certificates, a request, extensions. A process
// killed mid-way leaves no key behind.)
const newKey = () => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], tmpdir());

function makeCa(cn: string): Secrets['ca'] {
  const key = newKey();
  const cert = openssl(
    ['req', '-x509', '-new', '-key', '/dev/stdin', '-days', '36500', '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:1', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    tmpdir(),
    key,
  );
  return { cn, key, cert };
}

/** The fleet's admin SSH key pair (node_admin_ssh_exchange): a P-256 key, which OpenSSH reads as PKCS#8. */
function makeAdminSsh(): NonNullable<Secrets['adminSsh']> {
  const key = newKey();
  return { key, pub: sshPublicKey(key) };
}

/** An infra node's key with its two certificates: for its services (`days.cert`) and for nginx (`days.web`). */
function makeNodeCert(ca: Secrets['ca'], ip: string, sans: string[], days: { cert: number; web: number }): NodeTls {
  const d = mkdtempSync(join(tmpdir(), 'pigen-tls-'));
  try {
    writeFileSync(join(d, 'ca.crt'), ca.cert);
    writeFileSync(
      join(d, 'ext.cnf'),
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${sans.join(',')}\n`,
    );
    const key = newKey();
    writeFileSync(join(d, 'node.csr'), openssl(['req', '-new', '-key', '/dev/stdin', '-subj', `/CN=${ip}`], d, key));
    const sign = (n: number) => openssl(['x509', '-req', '-in', 'node.csr', '-CA', 'ca.crt', '-CAkey', '/dev/stdin', '-set_serial', '0x' + randomBytes(16).toString('hex'), '-days', String(n), '-extfile', 'ext.cnf'], d, ca.key);
    return { key, cert: sign(days.cert), webCert: sign(days.web), sans };
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

const password = () => randomBytes(18).toString('base64url');
/** The validity of an infra node's certificates, in days: cert_validity for its services, nginx_cert_validity for nginx. */
const days = (inv: Inventory, ip: string) => {
  const v = new Vars(inv.nodes.find((n) => n.ip === ip)!.vars);
  const of = (param: string, d: number) => Number(/^(\d+)d$/.exec(v.str(param, `${d}d`))?.[1] ?? d);
  return { cert: of('cert_validity', 7300), web: of('nginx_cert_validity', 397) };
};

/** Where the secrets file of an inventory lives: beside it (or in cwd for the embedded default). */
export function secretsPathFor(ctx: CliContext, inventoryArg: string | undefined): string {
  if (inventoryArg) return join(dirname(resolvePath(ctx.cwd, inventoryArg)), SECRETS_FILE);
  return join(ctx.cwd, SECRETS_FILE);
}

function ensureGitignore(dir: string): void {
  const gi = join(dir, '.gitignore');
  const text = existsSync(gi) ? readFileSync(gi, 'utf8') : '';
  if (text.split('\n').some((l) => l.trim() === SECRETS_FILE || l.trim() === `/${SECRETS_FILE}`)) return;
  appendFileSync(gi, `${text && !text.endsWith('\n') ? '\n' : ''}${SECRETS_FILE}\n`);
}

export const secrets: Command = {
  name: 'secrets',
  summary: 'create or rotate the secrets file (CA, infra TLS keys, admin SSH key, passwords)',
  usage: 'pigen secrets init [INVENTORY] [--force] [--json] [--set KEY=VALUE ...] | pigen secrets rotate NAME [INVENTORY] [--json] [--set KEY=VALUE ...]',
  help: `init writes ${SECRETS_FILE} beside the inventory (mode 0600, added to a .gitignore next to it):
  - a CA (CN from ca_cn, 36500 days, CA:TRUE, pathlen 1);
  - for each infra node a TLS key and two certificates signed by that CA (SAN: every portal
    domain, i.pigsty, localhost, 127.0.0.1, the node IP and nodename): /etc/pki/infra.crt for
    its services (validity cert_validity) and nginx's (validity nginx_cert_validity);
  - the admin user's SSH key pair (ECDSA P-256): with node_admin_ssh_exchange every node
    authorizes it and the infra nodes hold it, so their admin users can log in to every node;
  - a random value for every password parameter left at Pigsty's published default.
rotate NAME regenerates one entry: 'ca' (and every certificate it signed), 'infra:<ip>',
'admin-ssh', or a password name (e.g. grafana_admin_password). 'rotate all' regenerates everything.
Builds read the file; the same inventory and secrets give byte-identical output. No secret value is
ever printed.

${INVENTORY_HELP}
  --force            init: replace an existing secrets file`,
  options: { ...INVENTORY_OPTIONS, force: { type: 'boolean' } },
  maxArgs: 3,
  async run(ctx, values, args) {
    const [sub, a1, a2] = args;
    if (sub !== 'init' && sub !== 'rotate') throw new UsageError(`expected 'init' or 'rotate'\nUsage: ${this.usage}`);
    const name = sub === 'rotate' ? a1 : undefined;
    const invArg = sub === 'rotate' ? a2 : a1;
    if (sub === 'rotate' && !name) throw new UsageError(`rotate needs NAME ('ca', 'infra:<ip>', 'admin-ssh', a password name, or 'all')\nUsage: ${this.usage}`);
    const r = loadInventory(ctx, invArg, (values.set as string[] | undefined) ?? [], values.strict === true, { noSecrets: true });
    if (!values.json) printDiagnostics(ctx, r);
    if (hasErrors(r.diagnostics) || !r.inventory) {
      if (values.json) ctx.stdout.write(JSON.stringify({ ok: false, diagnostics: diagnosticsToJson(r.diagnostics) }, null, 2) + '\n');
      return 2;
    }
    const inv = r.inventory;
    const path = secretsPathFor(ctx, invArg);
    const schema = readAssets().schema;
    const caCn = new Vars(inv.globals).str('ca_cn', 'pigsty-ca');
    const log = (s: string) => ctx.stderr.write(s + '\n');
    // One pigen writes the file at a time (two rotations at once: one would lose the other's).
    const release = (await whenFree(ctx, path, () => takeLock(join(dirname(path), `.${basename(path)}.lock`), path)))!;
    try {
      return await writeSecrets(ctx, values, sub, name, inv, path, schema, caCn, log);
    } finally {
      release();
    }
  },
};

/** The secrets file's new content, written (the lock held). */
async function writeSecrets(ctx: CliContext, values: Values, sub: string, name: string | undefined, inv: Inventory, path: string, schema: ReturnType<typeof readAssets>['schema'], caCn: string, log: (s: string) => void): Promise<number> {
  try {
    let s: Secrets;
    if (sub === 'init') {
      // (Refusals of what was asked: usage, exit 2; with --json, {ok: false, error} too.)
      if (existsSync(path) && !values.force) throw new UsageError(`${path} exists; use 'pigen secrets rotate NAME' or --force to replace it`);
      const ca = makeCa(caCn);
      s = { version: 1, ca, infra: {}, adminSsh: makeAdminSsh(), passwords: {} };
      for (const ip of inv.infra) s.infra[ip] = makeNodeCert(ca, ip, infraSans(inv, ip), days(inv, ip));
      for (const k of defaultPasswords(inv, schema)) s.passwords[k] = password();
      log(`CA ${caCn}; ${inv.infra.length} infra certificate(s); the admin SSH key; ${Object.keys(s.passwords).length} password(s): ${Object.keys(s.passwords).join(', ') || 'none'}`);
    } else {
      if (!existsSync(path)) throw new UsageError(`${path} does not exist; run 'pigen secrets init' first`);
      const parsed = parseSecrets(readFileSync(path, 'utf8'));
      if (typeof parsed === 'string') {
        const message = `${path}: ${parsed}`;
        ctx.stderr.write(`pigen: ${message}\n`);
        if (values.json) ctx.stdout.write(JSON.stringify({ ok: false, error: message }, null, 2) + '\n');
        return 2;
      }
      s = parsed;
      // (Names under passwords: that are no password parameter: a build refuses the file, whose
      // hint sends the user here. Dropped, and said.)
      const stray = unknownPasswords(s, schema);
      for (const k of stray) delete s.passwords[k];
      if (stray.length) log(`dropped ${stray.join(', ')} from passwords: (no password parameter${stray.length === 1 ? '' : 's'})`);
      const all = name === 'all';
      if (all || name === 'ca') {
        s.ca = makeCa(caCn);
        // (Entries of nodes no longer infra nodes are dropped: the new CA signed none of them.)
        const gone = Object.keys(s.infra).filter((ip) => !inv.infra.includes(ip));
        for (const ip of gone) delete s.infra[ip];
        for (const ip of inv.infra) s.infra[ip] = makeNodeCert(s.ca, ip, infraSans(inv, ip), days(inv, ip));
        log(`rotated the CA and ${inv.infra.length} infra certificate(s)${gone.length ? `; dropped the certificates of ${gone.join(', ')} (no longer infra nodes)` : ''}`);
      }
      if (all || name === 'admin-ssh') {
        s.adminSsh = makeAdminSsh();
        log('rotated the admin SSH key');
      }
      if (!all && name!.startsWith('infra:')) {
        const ip = name!.slice(6);
        if (!inv.infra.includes(ip)) throw new UsageError(`${ip} is not an infra node (infra: ${inv.infra.join(', ')})`);
        // (A certificate signed by a CA that has expired, or expires first, would not verify.)
        const caEnds = Date.parse(new X509Certificate(s.ca.cert).validTo);
        if (caEnds - Date.now() <= EXPIRY_WARNING_MS) throw new UsageError(`the CA certificate in ${path} ${caEnds <= Date.now() ? 'expired' : 'expires'} on ${new Date(caEnds).toISOString().slice(0, 10)}: run 'pigen secrets rotate ca' (it issues every infra certificate again)`);
        s.infra[ip] = makeNodeCert(s.ca, ip, infraSans(inv, ip), days(inv, ip));
        log(`rotated the certificate of ${ip}`);
      }
      if (all) {
        const names = defaultPasswords(inv, schema);
        for (const k of names) s.passwords[k] = password();
        log(`rotated ${names.length} password(s): ${names.join(', ') || 'none'}`);
      }
      else if (name !== 'ca' && name !== 'admin-ssh' && !name!.startsWith('infra:')) {
        const known = new Set([...Object.keys(s.passwords), ...defaultPasswords(inv, schema)]);
        if (!known.has(name!)) throw new UsageError(`unknown secret '${name}' (known: ca, ${inv.infra.map((i) => `infra:${i}`).join(', ')}, admin-ssh, ${[...known].join(', ')})`);
        s.passwords[name!] = password();
        log(`rotated ${name}`);
      }
    }
    // (What is written must read back as a secrets file: never one the next build refuses.)
    const text = serializeSecrets(s);
    const back = parseSecrets(text);
    if (typeof back !== 'string' && unknownPasswords(back, schema).length) throw new Error(`the new secrets file would set ${unknownPasswords(back, schema).join(', ')}, no password parameter; ${path} is left as it was`);
    if (typeof back === 'string') throw new Error(`the new secrets file would not read back (${back}); ${path} is left as it was`);
    writeFileAtomic(path, new TextEncoder().encode(text), 0o600, ctx.cwd);
    ensureGitignore(dirname(path));
    // (--json: what the file now holds, by name: never a value.)
    if (values.json) ctx.stdout.write(JSON.stringify({ ok: true, file: path, ca: caCn, infra: Object.keys(s.infra).sort(), adminSsh: s.adminSsh !== undefined, passwords: Object.keys(s.passwords).sort() }, null, 2) + '\n');
    else ctx.stdout.write(`${path}\n`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const message = systemErrorMessage(e);
    ctx.stderr.write(`pigen: ${message}\n`);
    if (values.json) ctx.stdout.write(JSON.stringify({ ok: false, error: message }, null, 2) + '\n');
    return 1;
  }
}
