// `pigen check`'s built-in checks for the kinds no installed program validates: light syntax and
// consistency checks (pure: text in, problems out). Each returns the problems found, [] when fine.

import { isIP } from 'node:net';
import { parse } from 'yaml';
import { crontabLineProblem, RESOLV_DOMAIN, resolvLineProblem } from '../util/conf-lines.js';

export interface BuiltinResult {
  errors: string[];
  warnings: string[];
}

type Check = (text: string, path: string) => BuiltinResult;

const lines = (text: string) => text.split('\n').map((l, i) => ({ n: i + 1, l: l.replace(/\r$/, '') }));
const isComment = (l: string) => /^\s*(#.*)?$/.test(l);
const HOSTNAME = RESOLV_DOMAIN;

function yamlOf(text: string, errors: string[]): unknown {
  try {
    return parse(text, { version: '1.1', uniqueKeys: true, prettyErrors: false });
  } catch (e) {
    errors.push(`YAML: ${(e as Error).message.split('\n')[0]}`);
    return undefined;
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** /etc/default/<name> read by systemd's EnvironmentFile=: NAME="value" lines and comments. */
const env: Check = (text) => {
  const errors: string[] = [];
  for (const { n, l } of lines(text)) {
    if (isComment(l)) continue;
    if (!/^[A-Za-z_][A-Za-z0-9_]*="(?:[^"\\]|\\.)*"$/.test(l)) errors.push(`line ${n}: not NAME="value": ${lineStart(l)}`);
  }
  return { errors, warnings: [] };
};

/** hosts format (/etc/hosts, dnsmasq hostsdir files): IP name... [# comment]. */
const hosts: Check = (text) => {
  const errors: string[] = [];
  for (const { n, l } of lines(text)) {
    if (isComment(l)) continue;
    const [ip, ...names] = l.replace(/#.*$/, '').trim().split(/\s+/);
    if (!isIP(ip ?? '')) errors.push(`line ${n}: '${ip}' is not an IP address`);
    if (names.length === 0) errors.push(`line ${n}: no host name after ${ip}`);
    for (const h of names) if (!HOSTNAME.test(h)) errors.push(`line ${n}: '${h}' is not a valid host name`);
  }
  return { errors, warnings: [] };
};

/** /etc/resolv.conf: nameserver/search/domain/options/sortlist lines and comments. */
const resolv: Check = (text) => {
  const errors: string[] = [];
  const warnings: string[] = [];
  let ns = 0;
  for (const { n, l } of lines(text)) {
    if (/^\s*nameserver\b/.test(l)) ns++;
    const problem = resolvLineProblem(l);
    if (problem) errors.push(`line ${n}: ${problem}`);
  }
  if (ns > 3) warnings.push(`${ns} nameservers: the resolver uses only the first 3`);
  return { errors, warnings };
};

/** APT one-line sources: deb [options] URL SUITE [COMPONENTS...]. */
const aptSource: Check = (text) => {
  const errors: string[] = [];
  let entries = 0;
  for (const { n, l } of lines(text)) {
    if (isComment(l)) continue;
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)((?:\s+\S+)*)\s*$/.exec(l);
    if (!m) {
      errors.push(`line ${n}: not 'deb [options] URL SUITE [COMPONENTS]': ${l.replace(/\/\/[^@\s/]*@/g, '//****@')}`);
      continue;
    }
    entries++;
    const [, , opts, url, suite, comps] = m as unknown as [string, string, string | undefined, string, string, string];
    for (const o of (opts ?? '').trim().split(/\s+/).filter(Boolean)) {
      if (!/^[a-zA-Z-]+[+-]?=\S+$/.test(o)) errors.push(`line ${n}: bad option '${o}'`);
    }
    let scheme = '';
    try {
      scheme = new URL(url).protocol;
    } catch {
      errors.push(`line ${n}: '${url}' is not a URL`);
    }
    if (scheme && !['http:', 'https:', 'file:', 'ftp:', 'cdrom:', 'copy:', 'mirror:', 'mirror+http:', 'mirror+https:', 'tor+http:', 'tor+https:'].includes(scheme)) {
      errors.push(`line ${n}: unsupported URL scheme '${scheme}'`);
    }
    const components = comps.trim().split(/\s+/).filter(Boolean);
    // apt: an exact path (suite ending in /) takes no component, a distribution needs at least one.
    if (suite.endsWith('/') && components.length) errors.push(`line ${n}: suite '${suite}' is an exact path, so it takes no components`);
    if (!suite.endsWith('/') && !components.length) errors.push(`line ${n}: suite '${suite}' needs at least one component (or end the suite with /)`);
  }
  if (!entries) errors.push('no deb line');
  return { errors, warnings: [] };
};

/** ini files: [section] headers, key = value, comments (# and ;). */
function ini(text: string, errors: string[]): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let cur: Map<string, string> | undefined;
  for (const { n, l } of lines(text)) {
    if (/^\s*([#;].*)?$/.test(l)) continue;
    const sec = /^\[([^\]]+)\]\s*$/.exec(l);
    if (sec) {
      if (sections.has(sec[1]!)) errors.push(`line ${n}: section [${sec[1]}] appears twice`);
      sections.set(sec[1]!, (cur = new Map()));
      continue;
    }
    const kv = /^\s*([A-Za-z0-9_.-]+)\s*=\s*(.*)$/.exec(l);
    if (!kv) errors.push(`line ${n}: not 'key = value': ${lineStart(l)}`);
    else if (!cur) errors.push(`line ${n}: '${kv[1]}' before any [section]`);
    else {
      if (cur.has(kv[1]!)) errors.push(`line ${n}: '${kv[1]}' set twice in its section`);
      cur.set(kv[1]!, kv[2]!);
    }
  }
  return sections;
}

/** yum .repo: ini sections, each with a name and a baseurl (or mirrorlist/metalink) of URLs. */
const yumRepo: Check = (text) => {
  const errors: string[] = [];
  const sections = ini(text, errors);
  if (!sections.size) errors.push('no [repo] section');
  for (const [name, kv] of sections) {
    if (!/^[A-Za-z0-9_.:-]+$/.test(name)) errors.push(`[${name}]: bad repo id`);
    const base = kv.get('baseurl') ?? kv.get('mirrorlist') ?? kv.get('metalink');
    if (!base) errors.push(`[${name}]: no baseurl`);
    else if (kv.has('baseurl')) {
      for (const u of base.split(/[\s,]+/).filter(Boolean)) {
        try {
          new URL(u.replace(/\$(releasever|basearch|arch|contentdir)/g, 'x'));
        } catch {
          errors.push(`[${name}]: baseurl '${u}' is not a URL`);
        }
      }
    }
    for (const k of ['enabled', 'gpgcheck']) if (kv.has(k) && !/^[01]$|^(true|false|yes|no)$/i.test(kv.get(k)!)) errors.push(`[${name}]: ${k} must be 0 or 1`);
  }
  return { errors, warnings: [] };
};

/** Grafana: grafana.ini syntax, or a provisioning YAML (datasources with unique names and uids). */
const grafana: Check = (text, path) => {
  const errors: string[] = [];
  if (path.endsWith('.ini')) {
    const s = ini(text, errors);
    if (!s.has('server')) errors.push('no [server] section');
    return { errors, warnings: [] };
  }
  const doc = yamlOf(text, errors);
  if (errors.length) return { errors, warnings: [] };
  if (!isObj(doc)) return { errors: ['not a YAML mapping'], warnings: [] };
  if (doc.apiVersion !== 1) errors.push('apiVersion must be 1');
  if ('datasources' in doc) {
    if (!Array.isArray(doc.datasources)) errors.push('datasources must be a list');
    else {
      const names = new Set<string>();
      const uids = new Set<string>();
      doc.datasources.forEach((d, i) => {
        if (!isObj(d) || typeof d.name !== 'string' || typeof d.type !== 'string') return errors.push(`datasources[${i}]: needs a name and a type`);
        if (names.has(d.name)) errors.push(`datasources[${i}]: name '${d.name}' is used twice`);
        names.add(d.name);
        if (typeof d.uid === 'string') {
          if (uids.has(d.uid)) errors.push(`datasources[${i}]: uid '${d.uid}' is used twice`);
          if (d.uid.length > 40) errors.push(`datasources[${i}]: uid '${d.uid}' is longer than 40 characters`);
          uids.add(d.uid);
        }
        return undefined;
      });
      if ((doc.datasources as unknown[]).filter((d) => isObj(d) && d.isDefault === true).length > 1) errors.push('more than one datasource isDefault');
    }
  }
  return { errors, warnings: [] };
};

/** Vector: every component has a type, inputs name existing sources/transforms, some sink exists. */
const vector: Check = (text) => {
  const errors: string[] = [];
  const doc = yamlOf(text, errors);
  if (errors.length) return { errors, warnings: [] };
  if (!isObj(doc)) return { errors: ['not a YAML mapping'], warnings: [] };
  const known = new Set(['data_dir', 'sources', 'transforms', 'sinks', 'api', 'enrichment_tables', 'healthchecks', 'schema', 'secret', 'timezone', 'log_schema', 'acknowledgements', 'expire_metrics_secs', 'tests']);
  for (const k of Object.keys(doc)) if (!known.has(k)) errors.push(`unknown top-level key '${k}'`);
  const section = (k: string) => (isObj(doc[k]) ? (doc[k] as Record<string, unknown>) : {});
  const producers = new Set([...Object.keys(section('sources')), ...Object.keys(section('transforms'))]);
  if (!Object.keys(section('sinks')).length) errors.push('no sinks');
  for (const k of ['sources', 'transforms', 'sinks']) {
    for (const [id, c] of Object.entries(section(k))) {
      if (!isObj(c) || typeof c.type !== 'string') {
        errors.push(`${k}.${id}: no type`);
        continue;
      }
      if (k === 'sources') continue;
      if (!Array.isArray(c.inputs) || !c.inputs.length) errors.push(`${k}.${id}: no inputs`);
      else for (const i of c.inputs) if (typeof i !== 'string' || !producers.has(i)) errors.push(`${k}.${id}: input '${String(i)}' is not a source or transform`);
    }
  }
  return { errors, warnings: [] };
};

/** file_sd target files: a list of {labels: {name: string}, targets: [string]}. */
const scrapeTargets: Check = (text) => {
  const errors: string[] = [];
  const doc = yamlOf(text, errors);
  if (errors.length) return { errors, warnings: [] };
  if (!Array.isArray(doc)) return { errors: ['not a YAML list of target groups'], warnings: [] };
  doc.forEach((g, i) => {
    if (!isObj(g)) return errors.push(`[${i}]: not a mapping`);
    for (const k of Object.keys(g)) if (k !== 'labels' && k !== 'targets') errors.push(`[${i}]: unknown key '${k}'`);
    if (!Array.isArray(g.targets) || g.targets.some((t) => typeof t !== 'string' || t === '')) errors.push(`[${i}]: targets must be a list of strings`);
    if (g.labels !== undefined) {
      if (!isObj(g.labels)) errors.push(`[${i}]: labels must be a mapping`);
      else
        for (const [k, v] of Object.entries(g.labels)) {
          if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k)) errors.push(`[${i}]: bad label name '${k}'`);
          if (typeof v !== 'string') errors.push(`[${i}]: label ${k} must be a string`);
        }
    }
    return undefined;
  });
  return { errors, warnings: [] };
};

/** /etc/sysctl.d files: `key = value` lines (sysctl -p's format) and comments. */
const sysctl: Check = (text) => {
  const errors: string[] = [];
  for (const { n, l } of lines(text)) {
    if (/^\s*([#;].*)?$/.test(l)) continue;
    const m = l.match(/^\s*-?([A-Za-z0-9_.\/*-]+)\s*=\s*(\S.*)$/);
    if (!m) errors.push(`line ${n}: not key = value: ${l}`);
  }
  return { errors, warnings: [] };
};

/** /etc/modules-load.d files: one module name per line, and comments. */
const kernelModules: Check = (text) => {
  const errors: string[] = [];
  for (const { n, l } of lines(text)) {
    if (/^\s*([#;].*)?$/.test(l)) continue;
    if (!/^[A-Za-z0-9_-]+$/.test(l.trim())) errors.push(`line ${n}: '${l.trim()}' is not a module name`);
  }
  return { errors, warnings: [] };
};

/** /etc/cron.d files (cron(8)): NAME=value lines, and five time fields (or @reboot, @daily...), a user, a command. */
const crontab: Check = (text) => {
  const errors: string[] = [];
  for (const { n, l } of lines(text)) {
    const problem = crontabLineProblem(l);
    if (problem) errors.push(`line ${n}: ${problem}`);
  }
  return { errors, warnings: [] };
};

/** The built-in check of a kind, if there is one. */
export const BUILTIN: Partial<Record<string, Check>> = {
  env,
  hosts,
  resolv,
  'apt-source': aptSource,
  'yum-repo': yumRepo,
  grafana,
  vector,
  'scrape-targets': scrapeTargets,
  'dnsmasq-hosts': hosts,
  sysctl,
  'kernel-modules': kernelModules,
  crontab,
};

/** A malformed line as a message quotes it: its first word only (the rest may be a password). */
function lineStart(l: string): string {
  const m = /^\s*[^\s=:]*/.exec(l)![0];
  return m.length < l.length ? `${m} …` : l;
}
