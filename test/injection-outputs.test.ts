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

const OPTIONS = ['vmetrics_options', 'vlogs_options', 'vtraces_options', 'vmalert_options', 'alertmanager_options', 'blackbox_options', 'node_exporter_options'];
/** Parameter → the characters that may reach its files, and why that is safe there. */
const ALLOWED: Record<string, { chars: string; why: string }> = {
  ...Object.fromEntries(OPTIONS.map((k) => [k, { chars: ' %', why: 'options are split into arguments at spaces; an EnvironmentFile value is not specifier-expanded' }])),
  grafana_admin_password: { chars: ' #%&;<>{}|', why: 'written between """ in grafana.ini (quotes, backslash and $ are rejected)' },
  grafana_view_password: { chars: ' #%&;<>{}|', why: 'written as a JSON string in the datasource YAML (quotes, backslash and $ are rejected)' },
  node_dns_options: { chars: ' %', why: 'a resolv.conf options line is words' },
  node_ntp_servers: { chars: ' %', why: 'a chrony source line is words (pool NAME iburst)' },
  grafana_pgurl: { chars: '%&', why: 'a URL keeps its escapes and query' },
  ...Object.fromEntries(['grafana_admin_username', 'node_timezone', 'repo_bundle', 'vector_log_endpoint'].map((k) => [k, { chars: '%', why: 'no file these reach reads % specially' }])),
  ...Object.fromEntries(['node_packages', 'node_default_packages', 'infra_packages'].map((k) => [k, { chars: '%', why: 'package names are YAML list items and HCL strings (%{ escaped)' }])),
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
  const valueOf = (p: (typeof PARAMS)[number], markers: string[]) => (p.list ? markers : markers.join(''));
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
        if (hit && !(ALLOWED[p.name]?.chars.includes(ch) && ch.length === 1)) (files.get(marker) ?? (files.set(marker, new Set()), files.get(marker)!)).add(hit);
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

test.run();
