// nginx basic-auth lines: `user:$6$salt$hash` (SHA-512-crypt, 5000 rounds, which nginx checks
// through the C library's crypt(3) on Debian and EL), never the password itself. The salt is
// derived, so the same inventory and secrets give the same line (output stays byte-identical):
// with a secret (the CA key), an HMAC of the user and password under it; without one, of the
// user alone (an unkeyed function of the password would let a guess be checked against the salt
// without the 5000 rounds).

import { createHmac } from 'node:crypto';
import { encrypt } from 'unixcrypt';

const CRYPT64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
// (5000 rounds cost ~13 ms in JS: a watching process or a fleet of infra nodes hashes each once.)
const memo = new Map<string, string>();

/** The `.htpasswd` line of `user` with `password`; `key` (a secret, e.g. the CA key) keys the salt. */
export function htpasswdLine(user: string, password: string, key = ''): string {
  const mac = createHmac('sha256', key).update(key ? `pigen htpasswd\0${user}\0${password}` : `pigen htpasswd\0${user}`).digest();
  const salt = [...mac.subarray(0, 16)].map((b) => CRYPT64[b & 63]).join('');
  const k = `${salt}\0${password}`;
  let hash = memo.get(k);
  if (hash === undefined) memo.set(k, (hash = encrypt(password, `$6$${salt}`)));
  return `${user}:${hash}`;
}
