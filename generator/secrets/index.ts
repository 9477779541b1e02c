// The secrets file (pigsty.secrets.yml, beside the inventory, mode 0600): a CA, one TLS key and
// certificate per infra node, the fleet's admin SSH key, and random values for passwords left at
// Pigsty's published defaults.
// Pure: parsing, serialising, and deciding what a file must hold. Key generation is done by the
// CLI with the openssl program (generator/cli/secrets.ts).

import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { LineCounter, parseDocument, stringify, visit } from 'yaml';
import type { Inventory, JsonObject } from '../types.js';
import { secretParams } from '../resolve/params.js';
import { portalEntries } from '../plan/infra.js';
import { Vars } from '../plan/vars.js';
import { isIPv4, isWellFormed } from '../util/text.js';

export const SECRETS_FILE = 'pigsty.secrets.yml';

export interface NodeTls {
  key: string;
  /** For the node's services (/etc/pki/infra.crt): valid cert_validity (7300d). */
  cert: string;
  /**
   * For nginx (conf.d/cert/pigsty.crt), the same key and names: valid nginx_cert_validity (397d:
   * browsers refuse a server certificate valid longer than 398 days). A file made before pigen
   * kept two has none: nginx then gets `cert`.
   */
  webCert?: string;
  /** SANs the certificate was issued for (to detect a stale certificate). */
  sans: string[];
}

export interface Secrets {
  version: 1;
  ca: { cn: string; key: string; cert: string };
  infra: Record<string, NodeTls>;
  /**
   * The admin user's SSH key pair (ECDSA P-256; the private key as PKCS#8 PEM, which OpenSSH
   * reads; the public key in OpenSSH's one-line form). node_admin_ssh_exchange: every node's
   * admin user authorizes it, the infra nodes' hold it (plan/node.ts: planAdmin), so their admin
   * users reach every node.
   */
  adminSsh?: { key: string; pub: string };
  passwords: Record<string, string>;
}

/** The comment of the admin key's public line. */
export const ADMIN_SSH_COMMENT = 'pigen-fleet-admin';

/** The OpenSSH public-key line (`ecdsa-sha2-nistp256 AAAA... comment`) of a P-256 private key (PEM). */
export function sshPublicKey(privatePem: string, comment = ADMIN_SSH_COMMENT): string {
  const jwk = createPublicKey(privatePem).export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.x || !jwk.y) throw new Error('not a P-256 key');
  // RFC 5656 §3.1: string "ecdsa-sha2-nistp256", string "nistp256", string Q (uncompressed point).
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, 0].map((_, i) => (b.length >>> (24 - 8 * i)) & 0xff)), b]);
  const q = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  const blob = Buffer.concat([str(Buffer.from('ecdsa-sha2-nistp256')), str(Buffer.from('nistp256')), str(q)]);
  return `ecdsa-sha2-nistp256 ${blob.toString('base64')} ${comment}`;
}

/** SANs of an infra node's certificate: portal domains, i.pigsty, localhost, 127.0.0.1, IP, nodename. */
export function infraSans(inv: Inventory, ip: string): string[] {
  const n = inv.nodes.find((x) => x.ip === ip)!;
  const v = new Vars(n.vars);
  const dns = new Set<string>(['i.pigsty', 'localhost', n.nodename]);
  for (const e of portalEntries(v)) {
    dns.add(e.domain);
    for (const d of e.domains) dns.add(d);
  }
  return [...[...dns].sort().map((d) => `DNS:${d}`), 'IP:127.0.0.1', `IP:${ip}`];
}

/** Password parameters whose value, somewhere in the fleet, is still the published default. */
export function defaultPasswords(inv: Inventory, schema: JsonObject): string[] {
  const props = ((schema.definitions as JsonObject).vars as JsonObject).properties as Record<string, JsonObject>;
  const out = new Set<string>();
  for (const k of secretParams(schema)) {
    const def = props[k]?.default;
    if (typeof def !== 'string' || def === '') continue;
    if (inv.nodes.some((n) => n.vars[k] === def)) out.add(k);
  }
  return [...out].sort();
}

/**
 * The password parameters a secrets file may set: the schema's secret parameters with a published
 * default (the ones it replaces). Any other name under `passwords:` is refused (unknownPasswords):
 * applied, it would set any parameter (`node_admin_username: root`, a shell fragment in a number
 * field) after every check of the inventory.
 */
export function passwordParams(schema: JsonObject): Set<string> {
  const props = ((schema.definitions as JsonObject).vars as JsonObject).properties as Record<string, JsonObject>;
  return new Set(secretParams(schema).filter((k) => typeof props[k]?.default === 'string' && props[k]!.default !== ''));
}

/** The names under `passwords:` that are no password parameter (passwordParams), sorted. */
export function unknownPasswords(s: Secrets | readonly string[], schema: JsonObject): string[] {
  const known = passwordParams(schema);
  return (Array.isArray(s) ? [...s] : Object.keys((s as Secrets).passwords)).filter((k) => !known.has(k)).sort();
}

/** Applies the secrets file's passwords where the inventory leaves the published default (password parameters only). */
export function applyPasswords(inv: Inventory, schema: JsonObject, secrets: Secrets | undefined): void {
  if (!secrets) return;
  const props = ((schema.definitions as JsonObject).vars as JsonObject).properties as Record<string, JsonObject>;
  const known = passwordParams(schema);
  for (const n of inv.nodes) {
    for (const [k, value] of Object.entries(secrets.passwords)) {
      if (known.has(k) && n.vars[k] === props[k]!.default) n.vars[k] = value;
    }
  }
}

export function serializeSecrets(s: Secrets): string {
  return (
    '# pigen secrets: the CA, infra TLS keys, the admin SSH key and generated passwords for this inventory.\n' +
    '# Keep it private (mode 0600, never commit it). Manage it with `pigen secrets`.\n' +
    stringify(s, { lineWidth: 0, blockQuote: 'literal', sortMapEntries: true })
  );
}

/** Parses a secrets file; returns a message when it is not one (parseSecretsFile: every problem, with positions). */
export function parseSecrets(text: string): Secrets | string {
  const r = parseSecretsFile(text);
  return 'problems' in r ? r.problems.map((p) => p.problem).join('; ') : r.secrets;
}

/** What is wrong in a secrets file, and where when it is known. */
export interface SecretsProblem {
  problem: string;
  pos?: { line: number; col: number };
}

/**
 * Parses a secrets file: its content, or what is wrong with it (and where, for YAML errors). No
 * message holds a value of the file: the YAML parser's own quote the text around an error (a
 * password written `*Hunter2` is an alias to it), so only its kind and position are said.
 */
export function parseSecretsFile(text: string): ({ secrets: Secrets } | { problems: SecretsProblem[] }) & { passwordKeys?: Map<string, { line: number; col: number }> } {
  const said = (kind: string, at?: { line: number; col: number }) => ({
    problems: [
      {
        problem: `not valid YAML: ${kind}${at ? ` at line ${at.line}, column ${at.col}` : ''} (a password starting with *, &, !, |, > or % must be quoted)`,
        ...(at ? { pos: { line: at.line, col: at.col } } : {}),
      },
    ],
  });
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  const first = doc.errors[0];
  if (first) return said(YAML_PROBLEMS[first.code] ?? 'a syntax error', first.linePos?.[0]);
  let d: unknown;
  try {
    d = doc.toJS();
  } catch {
    // (An alias to no anchor is found as the data is made: pigen writes no alias, so the first one is it.)
    let at: number | undefined;
    visit(doc, { Alias: (_, n) => ((at = n.range?.[0]), visit.BREAK) });
    return said(YAML_PROBLEMS.BAD_ALIAS!, at === undefined ? undefined : lineCounter.linePos(at));
  }
  // Where each key of a mapping is (`path` names the mapping): a problem's entry, a password's name.
  const keysOf = (path: string[]) => {
    const out = new Map<string, { line: number; col: number }>();
    const map = (path.length ? doc.getIn(path, true) : doc.contents) as { items?: { key?: { value?: unknown; range?: number[] } }[] } | null | undefined;
    for (const item of map?.items ?? []) {
      const at = item.key?.range?.[0];
      if (at !== undefined) out.set(String(item.key!.value), lineCounter.linePos(at));
    }
    return out;
  };
  // (The names its passwords have, each where it is: those that name no password parameter are said there.)
  const passwordKeys = keysOf(['passwords']);
  const r = checkSecrets(d);
  if (!Array.isArray(r)) return { secrets: r, passwordKeys };
  // (Each problem where its entry is: the key of a password, the IP of an infra entry.)
  const posOf = (path?: string[]) => (path && path.length ? keysOf(path.slice(0, -1)).get(path.at(-1)!) : undefined);
  return { problems: r.map((p) => ((at) => ({ problem: p.problem, ...(at ? { pos: { line: at.line, col: at.col } } : {}) }))(posOf(p.path))), passwordKeys };
}

/** The YAML parser's error codes, said in words that quote nothing of the file. */
const YAML_PROBLEMS: Record<string, string> = {
  BAD_ALIAS: 'an alias (a value starting with *) names no anchor',
  BAD_SCALAR_START: 'a value starts with a character YAML reserves',
  BLOCK_AS_IMPLICIT_KEY: 'a block value where a key was expected',
  BLOCK_IN_FLOW: 'a block value inside a flow collection',
  DUPLICATE_KEY: 'a key appears twice',
  MISSING_CHAR: 'a closing bracket or quote is missing',
  MULTILINE_IMPLICIT_KEY: 'a key spans lines',
  MULTIPLE_ANCHORS: 'a value has two anchors',
  MULTIPLE_DOCS: 'the file holds more than one YAML document',
  TAB_AS_INDENT: 'a tab indents a line',
  UNEXPECTED_TOKEN: 'an unexpected character',
  BAD_INDENT: 'a line is indented wrongly',
  BAD_DIRECTIVE: 'a bad % directive',
  IMPOSSIBLE: 'a syntax error',
};

/** A problem of a secrets file, and the entry it is in (for its position). */
type Problem = { problem: string; path?: string[] };

/**
 * The secrets file's content, or every problem in it: the file's frame (version, the CA) first,
 * alone; then each infra entry's and each password's, all of them.
 */
function checkSecrets(d: unknown): Secrets | Problem[] {
  const s = d as Partial<Secrets> | null;
  const fatal = (problem: string, path?: string[]): Problem[] => [{ problem, ...(path ? { path } : {}) }];
  if (!s || typeof s !== 'object' || s.version !== 1) return fatal('not a pigen secrets file (version: 1 missing)');
  if (!s.ca || typeof s.ca.key !== 'string' || typeof s.ca.cert !== 'string') return fatal('the CA key or certificate is missing', ['ca']);
  // Its values go into generated files as they are: each must be what pigen writes there (a PEM
  // block, a password without quotes, backslashes, $ or line breaks), whoever edited the file.
  if (!isPem(s.ca.key) || !isPem(s.ca.cert)) return fatal('the CA key or certificate is not a PEM block', ['ca']);
  if (s.infra !== undefined && (typeof s.infra !== 'object' || s.infra === null || Array.isArray(s.infra))) return fatal('infra is not a mapping', ['infra']);
  // Each key must be its certificate's, and each infra certificate the CA's: a key put in the wrong
  // place (the CA's in an infra slot, two nodes' swapped) would be written to a node, and a
  // damaged block would break every node's TLS. (A review found each accepted.)
  const pair = (certPem: string, keyPem: string): { cert: X509Certificate } | string => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certPem);
    } catch {
      return 'the certificate does not parse';
    }
    try {
      if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return "the key is not the certificate's";
    } catch {
      return 'the key does not parse';
    }
    return { cert };
  };
  const ca = pair(s.ca.cert, s.ca.key);
  if (typeof ca === 'string') return fatal(`CA: ${ca}`, ['ca']);
  if (!ca.cert.ca) return fatal('CA: the certificate is not a CA certificate', ['ca']);
  const problems: Problem[] = [];
  // Each slot is an infra node's IP, and holds a certificate issued for that IP, with a key no
  // other slot holds: entries swapped or copied by hand would put one node's key on another.
  const keysSeen = new Map<string, string>();
  // (Each entry's first problem; the others' too.)
  const infraProblem = (ip: string, t: Secrets['infra'][string] | undefined): string | undefined => {
    if (!isIPv4(ip)) return `infra: the entry ${JSON.stringify(ip)} is not an IPv4 address (each entry is an infra node's IP)`;
    if (!t || typeof t !== 'object' || !isPem(t.key) || !isPem(t.cert) || !Array.isArray(t.sans)) return `infra ${ip}: the key, certificate or sans are missing or not PEM`;
    const own = pair(t.cert, t.key);
    if (typeof own === 'string') return `infra ${ip}: ${own}`;
    // (Both certificates, when it has two: the key's, the CA's, for this IP.)
    for (const [which, pem] of [['certificate', t.cert], ...(t.webCert !== undefined ? [['web certificate', t.webCert]] : [])] as [string, unknown][]) {
      if (!isPem(pem)) return `infra ${ip}: the ${which} is not PEM`;
      const c = which === 'certificate' ? own : pair(pem as string, t.key);
      if (typeof c === 'string') return `infra ${ip}: ${which === 'certificate' ? '' : 'web certificate: '}${c}`;
      if (c.cert.ca || !c.cert.checkIssued(ca.cert) || !c.cert.verify(ca.cert.publicKey)) return `infra ${ip}: the ${which} is not one the CA signed for a server`;
      if (!(c.cert.subjectAltName ?? '').split(', ').includes(`IP Address:${ip}`)) return `infra ${ip}: the ${which} is not issued for ${ip} (an entry moved from another node?): run \`pigen secrets rotate infra:${ip}\``;
    }
    // (The same key in another encoding, PKCS#1 or PKCS#8, is the same key.)
    const body = createPublicKey(t.key).export({ type: 'spki', format: 'der' }).toString('base64');
    const other = keysSeen.get(body);
    if (other !== undefined) return `infra ${ip}: the same key as infra ${other}: run \`pigen secrets rotate infra:${ip}\``;
    keysSeen.set(body, ip);
    return undefined;
  };
  for (const [ip, t] of Object.entries(s.infra ?? {})) {
    const problem = infraProblem(ip, t);
    if (problem) problems.push({ problem, path: ['infra', ip] });
  }
  if (s.passwords !== undefined && (typeof s.passwords !== 'object' || s.passwords === null || Array.isArray(s.passwords))) problems.push({ problem: 'passwords is not a mapping', path: ['passwords'] });
  else {
    for (const [k, v] of Object.entries(s.passwords ?? {})) {
      if (typeof v !== 'string' || v === '' || /["'`\\$\u0000-\u001f\u007f\u0085\u2028\u2029]|%\(/.test(v) || !isWellFormed(v)) problems.push({ problem: `password ${k} is empty, not a string, or holds a quote, backslash, $, %(, line break or lone UTF-16 surrogate (they would break the files it goes into)`, path: ['passwords', k] });
    }
  }
  let adminSsh: Secrets['adminSsh'];
  if (s.adminSsh !== undefined) {
    const a = s.adminSsh as Partial<NonNullable<Secrets['adminSsh']>> | null;
    const problem = ((): string | undefined => {
      if (!a || typeof a !== 'object' || !isPem(a.key) || typeof a.pub !== 'string') return 'adminSsh: the key is not a PEM block, or the public key is missing';
      let pub: string;
      try {
        pub = sshPublicKey(a.key!);
      } catch {
        return 'adminSsh: the key is not a P-256 private key';
      }
      // (The public line goes into authorized_keys: it must be the key's own.)
      if (a.pub !== pub) return 'adminSsh: the public key is not the private key\'s';
      adminSsh = { key: a.key!, pub };
      return undefined;
    })();
    if (problem) problems.push({ problem, path: ['adminSsh'] });
  }
  if (problems.length) return problems;
  return { version: 1, ca: s.ca, infra: s.infra ?? {}, ...(adminSsh ? { adminSsh } : {}), passwords: s.passwords ?? {} } as Secrets;
}

const isPem = (v: unknown): boolean => typeof v === 'string' && /^-----BEGIN [A-Z0-9 ]+-----\r?\n[A-Za-z0-9+/=\r\n]+-----END [A-Z0-9 ]+-----\r?\n?$/.test(v);

/** Every secret value in a secrets file, for leak scanning and redaction. */
export function secretValues(s: Secrets): { name: string; value: string; kind: 'ca-key' | 'tls-key' | 'ssh-key' | 'password'; node?: string }[] {
  const pemBody = (pem: string) => pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const out: ReturnType<typeof secretValues> = [{ name: 'ca.key', value: pemBody(s.ca.key), kind: 'ca-key' }];
  for (const [ip, t] of Object.entries(s.infra)) out.push({ name: `infra.${ip}.key`, value: pemBody(t.key), kind: 'tls-key', node: ip });
  if (s.adminSsh) out.push({ name: 'adminSsh.key', value: pemBody(s.adminSsh.key), kind: 'ssh-key' });
  for (const [k, v] of Object.entries(s.passwords)) out.push({ name: k, value: v, kind: 'password' });
  return out;
}
