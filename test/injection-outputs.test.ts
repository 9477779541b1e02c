// Every string parameter pigen's schema declares × every dangerous character: the value is either
// rejected (a diagnostic, no inventory), or it reaches no generated file. The injection matrix in
// invalid.test.ts proves the field kinds pigen knows to guard; this one finds the fields nobody
// thought of: each value carries a marker, and every output file of the build is searched for it.
// A few characters are fine where a parameter is written (ALLOWED, each with its reason).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAndResolve } from '../generator/pipeline.ts';
import { compile } from '../generator/compile.ts';
import { DEFAULT_INVENTORY } from '../generator/default-inventory.ts';
import { packageVersion, readAssets } from '../generator/io.ts';
import { ROOT } from './helpers.ts';

const assets = readAssets();
const version = packageVersion();
const props = (JSON.parse(readFileSync(join(ROOT, 'schemas', 'inventory.schema.json'), 'utf8')) as { definitions: { vars: { properties: Record<string, { type?: string; items?: { type?: string } }> } } }).definitions.vars.properties;
const PARAMS = Object.entries(props)
  .filter(([, s]) => s.type === 'string' || (s.type === 'array' && s.items?.type === 'string'))
  .map(([name, s]) => ({ name, list: s.type === 'array' }));

const CHARS = ['\n', '\r', '\u2028', ';', '{', '}', '"', "'", '`', '$(', '${x}', '\\', '<', '>', '|', '&', '#', ' ', '%'];

/** Every character of CHARS but the line breaks (and the multi-character ones, as themselves). */
const ANY_ON_A_LINE = CHARS.filter((c) => !/[\n\r\u2028]/.test(c));
const OPTIONS = ['vmetrics_options', 'vlogs_options', 'vtraces_options', 'vmalert_options', 'alertmanager_options', 'blackbox_options', 'node_exporter_options'];
/** Parameter → the characters that may reach its files, and why that is safe there. */
const ALLOWED: Record<string, { chars: string | string[]; why: string }> = {
  ...Object.fromEntries(OPTIONS.map((k) => [k, { chars: ' %', why: 'options are split into arguments at spaces; an EnvironmentFile value is not specifier-expanded' }])),
  grafana_admin_password: { chars: ' #%&;<>{}|', why: 'written between """ in grafana.ini (quotes, backslash and $ are rejected)' },
  grafana_view_password: { chars: ' #%&;<>{}|', why: 'written as a JSON string in the datasource YAML (quotes, backslash and $ are rejected)' },
  node_dns_options: { chars: ' %', why: 'a resolv.conf options line is words' },
  node_ntp_servers: { chars: ' %', why: 'a chrony source line is words (pool NAME iburst)' },
  grafana_pgurl: { chars: '%&', why: 'a URL keeps its escapes and query' },
  // (node_timezone is a tz name: no character of CHARS passes.)
  ...Object.fromEntries(['grafana_admin_username', 'repo_bundle', 'vector_log_endpoint'].map((k) => [k, { chars: '%', why: 'no file these reach reads % specially' }])),
  ...Object.fromEntries(['node_packages', 'node_default_packages', 'infra_packages'].map((k) => [k, { chars: '%', why: 'package names are YAML list items and HCL strings (%{ escaped)' }])),
  node_crontab: { chars: ANY_ON_A_LINE, why: "a crontab line's command is a shell command: any character of one line (line breaks are rejected)" },
};

const BASES: [string, string][] = [
  ['three-nodes', readFileSync(join(ROOT, 'test', 'fixtures', 'valid', '02-three-nodes.yml'), 'utf8')],
  ['default', DEFAULT_INVENTORY],
];

/** The base inventory with `name: value` set on all (vars) or on the first infra host. */
function withParam(base: string, where: 'all' | 'host', name: string, value: unknown): string {
  const y = JSON.stringify(value); // a JSON value is YAML (flow), escapes included
  if (where === 'all') {
    const at = base.indexOf('\n  vars:\n');
    assert.ok(at >= 0, 'the base inventory has all.vars');
    return base.slice(0, at) + `\n  vars:\n    ${name}: ${y}\n` + base.slice(at + '\n  vars:\n'.length);
  }
  const m = base.match(/\n( +)(10\.10\.10\.10): \{ *infra_seq: 1/);
  assert.ok(m, 'the base inventory has 10.10.10.10 with infra_seq 1');
  return base.replace(m[0], `${m[0]}, ${name}: ${y}`);
}

test('bases: the markers only ever come from the parameter set', () => {
  for (const [what, text] of BASES) {
    assert.not.ok(text.includes('QZX'), what);
    const r = loadAndResolve({ name: what, bytes: Buffer.from(withParam(text, 'host', 'node_timezone', 'Asia/Shanghai')) }, assets, { sets: [], strict: false });
    assert.ok(r.inventory, `${what}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  }
  assert.ok(PARAMS.length >= 80, `${PARAMS.length} string parameters in the schema`);
});

test('every string parameter × every dangerous character: rejected, or in no generated file', () => {
  const leaks: string[] = [];
  let accepted = 0;
  let rejected = 0;
  const reached = new Set<string>();
  const resolveText = (text: string) => loadAndResolve({ name: 'inv.yml', bytes: Buffer.from(text) }, assets, { sets: [], strict: false });
  // (Lines of system files are checked as their programs read them (rules.ts, confLines): the
  // marker goes where a line takes any word.)
  const WRAP: Record<string, (m: string) => string> = { node_dns_options: (m) => `search ${m}`, node_crontab: (m) => `* * * * * root echo ${m}`, vector_log_endpoint: (m) => `logs:9428/${m}` };
  const valueOf = (p: (typeof PARAMS)[number], markers: string[]) => ((ms) => (p.list ? ms : ms.join('')))(markers.map(WRAP[p.name] ?? ((m) => m)));
  // Searches a build for the markers of the characters accepted, reporting those not allowed.
  const search = (label: string, p: (typeof PARAMS)[number], inv: NonNullable<ReturnType<typeof resolveText>['inventory']>, chars: string[]) => {
    const { tree } = compile(inv, assets, { version });
    const files = new Map<string, Set<string>>();
    for (const e of tree) {
      const text = 'data' in e ? Buffer.from(e.data).toString('utf8') : e.link;
      if (!text.includes('QZX')) continue;
      reached.add(p.name);
      for (const ch of chars) {
        const marker = `QZX${ch}MRK`;
        // The whole marker with the character (or a part of it: the character split it).
        const hit = text.includes(marker) ? e.path : text.includes(`QZX${ch[0]}`) ? `${e.path} (part)` : undefined;
        const allowed = ALLOWED[p.name]?.chars;
        if (hit && !(allowed !== undefined && (typeof allowed === 'string' ? ch.length === 1 && allowed.includes(ch) : allowed.includes(ch)))) (files.get(marker) ?? (files.set(marker, new Set()), files.get(marker)!)).add(hit);
      }
    }
    for (const [marker, fs] of files) leaks.push(`${label} ${p.name} = ${JSON.stringify(marker)} → ${[...fs].slice(0, 4).join(', ')}`);
  };
  for (const [baseName, base] of BASES) {
    for (const p of PARAMS) {
      // (The default inventory is one node: set on all or on the host is the same.)
      for (const where of baseName === 'default' ? (['host'] as const) : (['all', 'host'] as const)) {
        const ok: string[] = [];
        for (const ch of CHARS) {
          const r = resolveText(withParam(base, where, p.name, valueOf(p, [`QZX${ch}MRK`])));
          if (r.inventory) ok.push(ch), accepted++;
          else {
            rejected++;
            assert.ok(r.diagnostics.some((d) => d.severity === 'error' && d.pos), `${p.name} ${JSON.stringify(ch)}: rejected without a located error`);
          }
        }
        if (!ok.length) continue;
        // One build with every accepted character's marker (one by one should they not pass together).
        const all = resolveText(withParam(base, where, p.name, valueOf(p, ok.map((ch) => `QZX${ch}MRK`))));
        if (all.inventory) search(`${baseName} ${where}`, p, all.inventory, ok);
        else for (const ch of ok) search(`${baseName} ${where}`, p, resolveText(withParam(base, where, p.name, valueOf(p, [`QZX${ch}MRK`]))).inventory!, [ch]);
      }
    }
  }
  assert.equal(leaks, [], `values that reached generated files unchecked:\n${leaks.join('\n')}`);
  // The test has teeth: some values are accepted and written (the allowed characters), most rejected.
  console.log(`injection outputs: ${accepted} values accepted and searched for, ${rejected} rejected`);
  assert.ok(accepted > 0 && rejected > accepted, `accepted ${accepted}, rejected ${rejected}`);
  for (const k of Object.keys(ALLOWED)) assert.ok(reached.has(k), `${k}: allowed characters, but its value reached no file (stale entry?)`);
});

// ── parameters that are objects: every string in them, keys included ────────────────────────────

/** A value of each object parameter pigen writes, with a string in every field it reads. */
const OBJECTS: Record<string, unknown> = {
  proxy_env: { http_proxy: 'http://10.1.1.1:3128', no_proxy: 'localhost' },
  infra_portal: {
    home: { domain: 'i.pigsty' },
    x: { domain: 'x.pigsty', domains: ['y.pigsty'], endpoint: '127.0.0.1:3000', log: 'x.log', realm: 'X', scheme: 'http', websocket: true },
    s: { domain: 's.pigsty', path: '/www/s', cert: '/etc/pki/s.crt', key: '/etc/pki/s.key', index: true },
  },
  infra_services: [{ name: 'X', url: '/x/', desc: 'x d', icon: 'metrics', name_cn: 'X', desc_cn: 'x' }],
  infra_extra_services: [{ name: 'X', url: '/x/', desc: 'x d', icon: 'metrics' }],
  nginx_users: { alice: 'secretpw' },
  repo_upstream: [{ name: 'xrepo', description: 'X repo', module: 'node', releases: [12], arch: ['x86_64'], baseurl: { default: 'http://10.1.1.1/x/ ./' } }],
  repo_url_packages: ['http://10.1.1.1/x.deb', { name: 'y.deb', url: 'http://10.1.1.1/y' }],
  alertmanager_receivers: [
    { name: 'hook', matchers: ['severity="CRIT"'], webhook: { url: 'http://10.1.1.1/hook' } },
    { name: 'mail', email: { to: 'ops@x.io', from: 'am@x.io', smarthost: 'smtp.x.io:587', auth_username: 'am', auth_password: 'pw' } },
    { name: 'chat', slack: { api_url: 'https://hooks.slack.com/services/T0/B0/x', channel: '#ops' } },
  ],
  node_sysctl_params: { 'fs.x': 'v1' },
  node_aliases: { ll: 'ls -l' },
};

const OBJECT_CHARS = [...CHARS, ':', '='];

/** A field (its path inside the parameter, '*' for any key or index) → what may reach its files, and why. */
const OBJECT_ALLOWED: [string, string[], string][] = [
  ['infra_portal.*.path', ['%', ':', '='], 'an nginx root/path word: nothing there is special to nginx'],
  ['infra_portal.*.cert', ['%', ':', '='], 'the same'],
  ['infra_portal.*.key', ['%', ':', '='], 'the same'],
  ['repo_upstream.*.baseurl.*', ['%', ':', '=', '$(', ' '], 'Pigsty writes an apt baseurl as `URI suite components` (so spaces); apt substitutes only $(ARCH), runs nothing'],
  ['alertmanager_receivers.*.matchers.*', ['='], 'a matcher is label=value (a YAML string in alertmanager.yml)'],
  // (webhook.url and slack.api_url: an http(s) URL or an error, so the marker never gets through.)
  ['alertmanager_receivers.*.email.auth_password', OBJECT_CHARS.filter((c) => !/[\n\r\u2028]/.test(c)), 'a JSON string in alertmanager.yml'],
  ...['to', 'from', 'auth_username'].map((f): [string, string[], string] => [`alertmanager_receivers.*.email.${f}`, OBJECT_CHARS.filter((c) => !/[\n\r\u2028{}]/.test(c) && c !== '${x}'), 'a JSON string in alertmanager.yml ("Ops <ops@x.io>", "a@x, b@y"); braces are rejected: Alertmanager expands templates there']),
  ['node_sysctl_params.*', OBJECT_CHARS.filter((c) => !/[\n\r\u2028]/.test(c)), 'a sysctl value is the rest of its line (sysctl.d has comments only at the start of a line)'],
  ['node_aliases.*', OBJECT_CHARS.filter((c) => !/[\n\r\u2028']/.test(c)), "a command between single quotes (alias NAME='...'): only a quote would end it"],
  ['alertmanager_receivers.*.slack.channel', OBJECT_CHARS.filter((c) => !/[\n\r\u2028{}]/.test(c) && c !== '${x}'), 'the same'],
];

type Leaf = { path: (string | number)[]; key: boolean };
function leaves(v: unknown, path: (string | number)[] = [], out: Leaf[] = []): Leaf[] {
  if (typeof v === 'string') out.push({ path, key: false });
  else if (Array.isArray(v)) v.forEach((x, i) => leaves(x, [...path, i], out));
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      out.push({ path: [...path, k], key: true });
      leaves(x, [...path, k], out);
    }
  }
  return out;
}

/** `v` with the string (or key) at `leaf` given the marker after its first character. */
function withMarker(v: unknown, leaf: Leaf, marker: string): unknown {
  const c = structuredClone(v) as Record<string | number, unknown>;
  let o = c;
  for (const s of leaf.path.slice(0, -1)) o = o[s] as Record<string | number, unknown>;
  const last = leaf.path[leaf.path.length - 1]!;
  // (A repo URL keeps its URI and suite, which the rules require: the marker goes into its path.)
  const m = (s: string) => (/^https?:\/\/\S+ \.\/$/.test(s) ? `${s.slice(0, -3)}${marker} ./` : s.slice(0, 1) + marker);
  if (!leaf.key) o[last] = m(String(o[last]));
  else {
    const entries = Object.entries(o);
    for (const k of Object.keys(o)) delete o[k];
    for (const [k, x] of entries) o[k === String(last) ? m(k) : k] = x;
  }
  return c;
}

const allowedIn = (param: string, leaf: Leaf, ch: string) =>
  !leaf.key &&
  OBJECT_ALLOWED.some(([pat, chars]) => {
    const segs = pat.split('.');
    const path = [param, ...leaf.path.map(String)];
    return chars.includes(ch) && segs.length === path.length && segs.every((s, i) => s === '*' || s === path[i]);
  });

test('every string of every object parameter, keys included × every dangerous character: rejected, or in no generated file', () => {
  const leaks: string[] = [];
  const used = new Set<string>();
  let searched = 0;
  const at = /\n( +)(10\.10\.10\.10): \{ *infra_seq: 1/;
  for (const [param, sample] of Object.entries(OBJECTS)) {
    const set = (v: unknown) => DEFAULT_INVENTORY.replace(at, (m) => `${m}, ${param}: ${JSON.stringify(v)}`);
    const base = loadAndResolve({ name: 'inv.yml', bytes: Buffer.from(set(sample)) }, assets, { sets: [], strict: false });
    assert.ok(base.inventory, `${param}: the sample is valid: ${base.diagnostics.map((d) => d.message).join('; ')}`);
    for (const leaf of leaves(sample)) {
      for (const ch of OBJECT_CHARS) {
        const marker = `QZX${ch}MRK`;
        const r = loadAndResolve({ name: 'inv.yml', bytes: Buffer.from(set(withMarker(sample, leaf, marker))) }, assets, { sets: [], strict: false });
        if (!r.inventory) continue;
        searched++;
        const files = new Set<string>();
        for (const e of compile(r.inventory, assets, { version }).tree) {
          const text = 'data' in e ? Buffer.from(e.data).toString('utf8') : e.link;
          if (text.includes(marker)) files.add(e.path);
          else if (text.includes(`QZX${ch[0]}`)) files.add(`${e.path} (part)`);
        }
        const field = `${param}.${leaf.path.join('.')}${leaf.key ? ' (key)' : ''}`;
        if (!files.size) continue;
        if (allowedIn(param, leaf, ch)) used.add(field);
        else leaks.push(`${field} = ${JSON.stringify(marker)} → ${[...files].slice(0, 4).join(', ')}`);
      }
    }
  }
  assert.equal(leaks, [], `values that reached generated files unchecked:\n${leaks.join('\n')}`);
  assert.ok(searched > 100 && used.size >= OBJECT_ALLOWED.length, `${searched} values built, allowed fields written: ${[...used].join(', ')}`);
});

test.run();
