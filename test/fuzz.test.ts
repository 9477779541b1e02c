// Fuzzing the front half: thousands of random mutations of real inventories go through
// loadAndResolve in-process. Whatever the input, pigen must not throw (a throw is an internal bug)
// and every diagnostic must be well-formed: a known code, a severity, and a position inside the file.
//
// The PRNG is seeded (PIGEN_FUZZ_SEED overrides the fixed seed; PIGEN_FUZZ_COUNT the count), and
// every mutant that breaks a rule is written to a temp file whose path is in the failure message,
// so a failure reproduces with `npx pigen validate <that file>`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAndResolve } from '../generator/pipeline.ts';
import { readAssets } from '../generator/io.ts';
import { CODES } from '../generator/codes.ts';
import type { Diagnostic, JsonObject } from '../generator/types.ts';
import { ROOT, SHARED, needShared, tmp, prng } from './helpers.ts';

const SEED = Number(process.env.PIGEN_FUZZ_SEED ?? 0x5eed2026) >>> 0;
const COUNT = Number(process.env.PIGEN_FUZZ_COUNT ?? 2200);
const assets = readAssets();
const VALID = join(ROOT, 'test', 'fixtures', 'valid');

console.log(`fuzz: seed ${SEED} (0x${SEED.toString(16)}), ${COUNT} mutants — rerun with PIGEN_FUZZ_SEED=${SEED}`);


// ── the seed inventories ────────────────────────────────────────────────────────────────────────

const ownFiles = readdirSync(VALID).filter((f) => f.endsWith('.yml')).sort();
const seeds: { name: string; text: string }[] = ownFiles.map((f) => ({ name: `valid/${f}`, text: readFileSync(join(VALID, f), 'utf8') }));
const haveShared = needShared('fuzzing the real Pigsty inventories (own valid inventories are still fuzzed)');
if (haveShared) {
  const dir = join(SHARED!, 'pigsty-conf');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.yml')).sort()) seeds.push({ name: `pigsty-conf/${f}`, text: readFileSync(join(dir, f), 'utf8') });
}

const resolveBytes = (name: string, bytes: Uint8Array, strict = false) => loadAndResolve({ name, bytes }, assets, { sets: [], strict });

// ── the valid inventories themselves ────────────────────────────────────────────────────────────

test('own valid inventories validate with no errors, even under --strict', () => {
  assert.ok(ownFiles.length >= 3, 'test/fixtures/valid needs at least 3 inventories');
  for (const f of ownFiles) {
    const r = resolveBytes(f, readFileSync(join(VALID, f)), true);
    // (No bundle fills their local repo: that one warning is semantics.test.ts's.)
    assert.equal(r.diagnostics.filter((d) => d.code !== 'repo-empty').map((d) => `${d.code}@${d.pos?.line}:${d.pos?.col} ${d.message}`), [], f);
    assert.ok(r.inventory, f);
  }
  const one = resolveBytes('1', readFileSync(join(VALID, '01-single-node.yml'))).inventory!;
  assert.is(one.nodes.length, 1);
  assert.equal(one.infra, ['10.10.10.10']);
  const three = resolveBytes('3', readFileSync(join(VALID, '02-three-nodes.yml'))).inventory!;
  assert.is(three.nodes.length, 3);
  assert.equal(three.infra, ['10.10.10.10', '10.10.10.11']);
});

test('YAML 1.1 as Ansible reads it: y stays a string, on/yes are true, no is false, 6379 key, anchors, merge, >-', () => {
  const r = resolveBytes('03', readFileSync(join(VALID, '03-yaml-features.yml')));
  assert.equal(r.diagnostics, []);
  const inv = r.inventory!;
  const node = (ip: string) => inv.nodes.find((n) => n.ip === ip)!;
  const infra = node('10.10.10.10').vars;
  assert.is(infra.nginx_enabled, true, 'on → true');
  assert.is(infra.dns_enabled, true, 'yes → true');
  assert.is(infra.repo_enabled, false, 'no → false');
  assert.is(infra.vmetrics_options, '-retentionPeriod=30d -promscrape.fileSDCheckInterval=5s', 'folded >- joins lines with one space, no trailing newline');
  const repo = (node('10.10.10.12').vars.pgbackrest_repo as JsonObject).minio as JsonObject;
  assert.is(repo.block, 'y', 'y stays the string "y" (PyYAML)');
  assert.is(repo.bundle, 'n', 'n stays the string "n" (PyYAML)');
  const redis = node('10.10.10.11').vars.redis_instances as JsonObject;
  assert.equal(Object.keys(redis), ['6379', '6380'], 'integer keys survive as their decimal string');
  assert.equal(redis['6380'], { replica_of: '10.10.10.11 6379' });
  const portal = infra.infra_portal as JsonObject;
  assert.equal(portal.grafana, { domain: 'g.pigsty', endpoint: '10.10.10.10:3000', websocket: true }, 'merge key + explicit keys; ${admin_ip} substituted');
  assert.equal(infra.dns_records, ['10.10.10.10 i.pigsty g.pigsty'], 'alias resolves to the anchored list');
  assert.equal(infra.node_etc_hosts, infra.dns_records);
});

test('every seed inventory is valid before mutation', () => {
  for (const s of seeds) {
    const r = resolveBytes(s.name, Buffer.from(s.text));
    assert.equal(r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.code}@${d.pos?.line}:${d.pos?.col} ${d.message}`), [], s.name);
  }
});

// ── mutations ───────────────────────────────────────────────────────────────────────────────────

type Rnd = () => number;
const int = (rnd: Rnd, n: number) => Math.floor(rnd() * n);
const pick = <T>(rnd: Rnd, xs: readonly T[]): T => xs[int(rnd, xs.length)]!;

/** `key: value` lines (block mappings and `- key: value` list items), value not a comment. */
const KV = /^(\s*(?:-\s+)?[^\s#:][^:#]*:\s+)([^#\s].*)$/;

const VALUES = [
  // numbers
  '0', '-1', '70000', '3.5', '65535', '1e3', '0x10', '010', '.inf', '.nan',
  // strings
  '"x"', "''", 'abc', '"a\\nb"', "'semi;colon'", '"${admin_ipp}"', '"${admin_ip}"', 'y', 'n', '"10.10.10.256"', 'i.pigsty',
  // lists, maps, null, bools
  '[]', '[1, a]', '[[1]]', '{}', '{a: 1}', '{ domain: x }', '~', 'null', '', 'yes', 'off', 'true',
  // YAML trouble
  '*nope', '&a x', '!!binary aGk=', '!!python/object:os.system x', '!custom x', '"unclosed', '{a: 1', '[1, 2', '<<: 5', '|', '>-', '@x', '`x`', '%x',
  '2001-12-14', '1_000', '12:30:00', '- a',
];
const TOKENS = ['{', '}', '[', ']', ':', ',', '&', '*', '!', '|', '>', "'", '"', '%', '@', '`', '#', '-', '?', '<<', '\t', ' ', '\n', '${', '\\'];

interface Mutation {
  name: string;
  apply(rnd: Rnd, text: string): string | Uint8Array;
}

const lines = (t: string) => t.split('\n');
const join_ = (ls: string[]) => ls.join('\n');

const MUTATIONS: Mutation[] = [
  {
    name: 'delete lines',
    apply(rnd, t) {
      const ls = lines(t);
      const at = int(rnd, ls.length);
      ls.splice(at, 1 + int(rnd, 5));
      return join_(ls);
    },
  },
  {
    name: 'duplicate lines',
    apply(rnd, t) {
      const ls = lines(t);
      const at = int(rnd, ls.length);
      const n = 1 + int(rnd, 3);
      ls.splice(at + n, 0, ...ls.slice(at, at + n));
      return join_(ls);
    },
  },
  {
    name: 'swap two values',
    apply(rnd, t) {
      const ls = lines(t);
      const kv = ls.map((l, i) => [i, l.match(KV)] as const).filter(([, m]) => m);
      if (kv.length < 2) return t;
      const [i, a] = pick(rnd, kv);
      const [j, b] = pick(rnd, kv);
      ls[i] = a![1] + b![2];
      ls[j] = b![1] + a![2];
      return join_(ls);
    },
  },
  {
    name: 'change a value type',
    apply(rnd, t) {
      const ls = lines(t);
      const kv = ls.map((l, i) => [i, l.match(KV)] as const).filter(([, m]) => m);
      if (!kv.length) return t;
      const [i, m] = pick(rnd, kv);
      ls[i] = m![1] + pick(rnd, VALUES);
      return join_(ls);
    },
  },
  {
    name: 'insert random bytes',
    apply(rnd, t) {
      const b = Buffer.from(t);
      const at = int(rnd, b.length + 1);
      const ins = Buffer.from(Array.from({ length: 1 + int(rnd, 8) }, () => int(rnd, 256)));
      return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
    },
  },
  {
    name: 'insert YAML tokens',
    apply(rnd, t) {
      let out = t;
      for (let k = 1 + int(rnd, 3); k > 0; k--) {
        const at = int(rnd, out.length + 1);
        out = out.slice(0, at) + pick(rnd, TOKENS) + out.slice(at);
      }
      return out;
    },
  },
  {
    name: 'truncate',
    apply(rnd, t) {
      const b = Buffer.from(t);
      return b.subarray(0, int(rnd, b.length + 1)); // may cut a UTF-8 sequence in half
    },
  },
  {
    name: 'change indentation',
    apply(rnd, t) {
      const ls = lines(t);
      const at = int(rnd, ls.length);
      const n = 1 + int(rnd, 3);
      const how = int(rnd, 4);
      for (let i = at; i < Math.min(ls.length, at + n); i++) {
        const l = ls[i]!;
        if (how === 0) ls[i] = ' '.repeat(1 + int(rnd, 4)) + l;
        else if (how === 1) ls[i] = l.replace(/^ {1,4}/, '');
        else if (how === 2) ls[i] = l.replace(/^( +)/, '\t');
        else ls[i] = l.trimStart();
      }
      return join_(ls);
    },
  },
];

// ── checks ──────────────────────────────────────────────────────────────────────────────────────

function problems(ds: Diagnostic[], bytes: Uint8Array): string[] {
  const text = Buffer.from(bytes).toString('utf8');
  const ls = text.split('\n');
  const out: string[] = [];
  if (!Array.isArray(ds)) return ['diagnostics is not an array'];
  for (const d of ds) {
    const what = `${d.code}@${d.pos?.line}:${d.pos?.col}`;
    if (!(d.code in CODES)) out.push(`unknown code ${String(d.code)}`);
    if (d.severity !== 'error' && d.severity !== 'warning') out.push(`${what}: bad severity ${String(d.severity)}`);
    if (typeof d.message !== 'string' || !d.message) out.push(`${what}: no message`);
    if (!Array.isArray(d.path)) out.push(`${what}: path is not a list`);
    if (d.pos) {
      const { line, col } = d.pos;
      if (!Number.isInteger(line) || line < 1 || line > ls.length + 1) out.push(`${what}: line outside 1..${ls.length + 1}`);
      else if (!Number.isInteger(col) || col < 1) out.push(`${what}: col < 1`);
      else if (col > (ls[line - 1]?.length ?? 0) + 1 && d.code !== 'not-text') out.push(`${what}: col past the end of line ${line} (${ls[line - 1]?.length ?? 0} chars)`);
    }
    if (d.related?.pos && (d.related.pos.line < 1 || d.related.pos.col < 1 || d.related.pos.line > ls.length + 1)) out.push(`${what}: related position out of range`);
  }
  return out;
}

test(`fuzz: ${COUNT} mutants never throw and only produce well-formed diagnostics`, () => {
  assert.ok(seeds.length >= 3);
  const rnd = prng(SEED);
  const failDir = tmp('pigen-fuzz-');
  const failures: string[] = [];
  // Parsing cost grows with size (el.yml and debian.yml are ~860 lines): the big seeds get one
  // turn per round, the small ones two, so the run stays well inside the time budget.
  const schedule = seeds.flatMap((s) => (s.text.split('\n').length > 300 ? [s] : [s, s]));
  const perSeed = new Map<string, number>();
  const byMutation = new Map<string, number>();
  const codesSeen = new Set<string>();
  let withErrors = 0;
  const t0 = Date.now();
  let done = 0;
  for (; done < COUNT && failures.length < 5; done++) {
    const seed = schedule[done % schedule.length]!;
    perSeed.set(seed.name, (perSeed.get(seed.name) ?? 0) + 1);
    // One to three stacked mutations (most inputs get one).
    let cur: string | Uint8Array = seed.text;
    const applied: string[] = [];
    for (let k = rnd() < 0.7 ? 1 : 2 + int(rnd, 2); k > 0; k--) {
      const m = pick(rnd, MUTATIONS);
      const text: string = typeof cur === 'string' ? cur : Buffer.from(cur).toString('latin1');
      cur = typeof cur === 'string' ? m.apply(rnd, text) : Buffer.from(m.apply(rnd, text) as string, 'latin1');
      applied.push(m.name);
    }
    const bytes = typeof cur === 'string' ? Buffer.from(cur) : cur;
    for (const a of applied) byMutation.set(a, (byMutation.get(a) ?? 0) + 1);
    const label = `mutant #${done} of ${seed.name} (${applied.join(' + ')})`;
    const save = () => {
      const p = join(failDir, `mutant-${done}.yml`);
      writeFileSync(p, bytes);
      return p;
    };
    let ds: Diagnostic[];
    try {
      ds = resolveBytes(`mutant-${done}.yml`, bytes, rnd() < 0.2).diagnostics;
    } catch (e) {
      failures.push(`${label} THREW — an internal bug. Input saved to ${save()}\n${(e as Error).stack ?? e}`);
      continue;
    }
    const bad = problems(ds, bytes);
    if (bad.length) failures.push(`${label}: malformed diagnostics — input saved to ${save()}\n  ${bad.join('\n  ')}`);
    if (ds.some((d) => d.severity === 'error')) withErrors++;
    for (const d of ds) codesSeen.add(d.code);
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`fuzz: ${done} mutants of ${seeds.length} inventories in ${secs}s; ${withErrors} rejected; codes seen: ${[...codesSeen].sort().join(' ')}`);
  console.log(`fuzz: mutants per seed: ${[...perSeed].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`fuzz: mutations applied: ${[...byMutation].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (failures.length) assert.unreachable(`seed ${SEED}: ${failures.length} failing mutant(s):\n\n${failures.join('\n\n')}`);
  assert.is(done, COUNT);
  assert.ok(withErrors > done / 4, 'most mutants should be rejected; the mutations are not biting');
});

test.run();
