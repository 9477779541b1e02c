// One line of a system file, as the program that reads it takes it: what `pigen check` runs over
// the written files (cli/check-builtin.ts) and the rules run over the inventory's lines before a
// build (resolve/rules.ts: node_crontab, node_dns_options). Pure: a line in, its problem out.

import { isIP } from 'node:net';

/** A domain of resolv.conf's search/domain lines (labels may hold `_`; a trailing dot is allowed). */
export const RESOLV_DOMAIN = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;

/** What is wrong with a /etc/resolv.conf line (nameserver, search, domain, options, sortlist), if anything. */
export function resolvLineProblem(l: string): string | undefined {
  if (/^\s*([#;].*)?$/.test(l)) return undefined;
  const [key, ...args] = l.trim().split(/\s+/);
  if (key === 'nameserver') return args.length !== 1 || !isIP(args[0]!) ? `nameserver needs one IP address: ${l}` : undefined;
  if (key === 'search' || key === 'domain') {
    if (!args.length) return `${key} without a domain`;
    const bad = args.find((d) => !RESOLV_DOMAIN.test(d));
    return bad === undefined ? undefined : `'${bad}' is not a domain`;
  }
  if (key === 'options') {
    const bad = args.find((o) => !/^[a-z0-9-]+(:\d+)?$/.test(o));
    return bad === undefined ? undefined : `bad option '${bad}'`;
  }
  return key === 'sortlist' ? undefined : `unknown keyword '${key}'`;
}

const CRON_FIELD = /^(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*$|^[A-Za-z]{3}(-[A-Za-z]{3})?$/;

/** The words of a /etc/cron.d job line; undefined for a blank line, a comment or a NAME=value line. */
function cronJobWords(l: string): string[] | undefined {
  if (/^\s*(#.*)?$/.test(l) || /^[A-Za-z_][A-Za-z0-9_]*\s*=/.test(l)) return undefined;
  return l.trim().split(/\s+/);
}

/** The user a /etc/cron.d job line runs as (one crontabLineProblem finds none in); undefined for other lines. */
export function crontabUser(l: string): string | undefined {
  const w = cronJobWords(l);
  return w === undefined ? undefined : w[0]!.startsWith('@') ? w[1] : w[5];
}

/** What is wrong with a /etc/cron.d line (cron(8): NAME=value, five time fields or an @keyword, a user, a command), if anything. */
export function crontabLineProblem(l: string): string | undefined {
  const w = cronJobWords(l);
  if (w === undefined) return undefined;
  if (w[0]?.startsWith('@')) {
    return !/^@(reboot|yearly|annually|monthly|weekly|daily|midnight|hourly)$/.test(w[0]) || w.length < 3 ? `@keyword, user, command expected: ${l}` : undefined;
  }
  return w.length < 7 || !w.slice(0, 5).every((f) => CRON_FIELD.test(f)) ? `five time fields, a user and a command expected: ${l}` : undefined;
}
