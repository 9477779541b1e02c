// The incremental parse of a watching process (load/parse.ts: reparse): whatever one-line edit is
// made, what it returns is exactly what a whole parse of the edited text returns (data with its key
// order, every position, no diagnostic), or nothing (and the caller parses the whole text). Edits
// are random (seeded: PIGEN_FUZZ_SEED), chained so that the document the memo keeps after one
// reparse is what the next works on, over the project's inventories, the embedded default, a
// fleet written with flow-mapping hosts (as bench/ writes them), and the shared ones when present.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseInventory, reparse, type ParseMemo } from '../generator/load/parse.ts';
import { resolve } from '../generator/resolve/index.ts';
import { compile } from '../generator/compile.ts';
import { readAssets } from '../generator/io.ts';
import { DEFAULT_INVENTORY } from '../generator/default-inventory.ts';
import type { Json, Loaded } from '../generator/types.ts';
import { ROOT, SHARED, prng } from './helpers.ts';

const SEED = Number(process.env.PIGEN_FUZZ_SEED ?? 0x1ec7) >>> 0;
const VALID = join(ROOT, 'test', 'fixtures', 'valid');

function fleet(n: number): string {
  const lines = ['all:', '  vars:', '    admin_ip: 10.10.0.10', '    node_repo_modules: local # the bundle', '  children:', '    infra:', '      hosts:', '        10.10.0.10: { infra_seq: 1 }'];
  for (let c = 0; c * 5 < n; c++) {
    lines.push(`    pg-c${c}:`, `      vars: { pg_cluster: pg-c${c} }`, '      hosts:');
    for (let i = 1; i <= 5; i++) lines.push(`        10.10.${c}.${i}: { pg_seq: ${i}, pg_role: ${i === 1 ? 'primary' : 'replica'} }`);
  }
  return lines.join('\n') + '\n';
}

const seeds: { name: string; text: string }[] = [
  { name: 'default', text: DEFAULT_INVENTORY },
  { name: 'fleet', text: fleet(40) },
  ...readdirSync(VALID)
    .filter((f) => f.endsWith('.yml'))
    .sort()
    .map((f) => ({ name: f, text: readFileSync(join(VALID, f), 'utf8') })),
];
if (SHARED) for (const f of readdirSync(join(SHARED, 'pigsty-conf')).filter((x) => x.endsWith('.yml')).sort()) seeds.push({ name: f, text: readFileSync(join(SHARED, 'pigsty-conf', f), 'utf8') });

const parse = (name: string, text: string, memo?: ParseMemo) => parseInventory({ name, bytes: Buffer.from(text) }, memo);
/** A parse's result as comparable strings: file and text, data with its key order, each position by path. */
const shape = (l: Loaded) => [JSON.stringify([l.file, l.text]), JSON.stringify(l.data), ...[...l.positions].map(([k, v]) => JSON.stringify([k.split('\0'), v])).sort()];
/** The first difference of two shapes (the whole texts are too long to read in a failure). */
function sameShape(got: Loaded, want: Loaded, why: string) {
  const [a, b] = [shape(got), shape(want)];
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) assert.is(a[i], b[i], `${why} (part ${i})`);
}

const TOKENS = ['1', '9', '0', 'x', ' ', ',', ':', ': ', '#', ' #c', '{', '}', '[', ']', "'", '"', '&a ', '*a', '!!str ', 'yes', 'no', '~', 'null', '0x1F', '0755', '1e3', '.inf', '-', '- ', '? ', '---', '...', '%', '\t', '@', '`', 'é', ', k: 9', ', node_exporter_port: 9200', '|', '>', '\\', '{a: 1}', '[1, 2]', '"q\\"', "'it''s'"];

function edit(text: string, rnd: () => number): string {
  const lines = text.split('\n');
  const candidates = lines.map((_, i) => i).filter((i) => lines[i]!.trim() !== '');
  const i = candidates[Math.floor(rnd() * candidates.length)]!;
  const line = lines[i]!;
  const at = Math.floor(rnd() * (line.length + 1));
  const op = rnd();
  const tok = TOKENS[Math.floor(rnd() * TOKENS.length)]!;
  if (op < 0.45) lines[i] = line.slice(0, at) + tok + line.slice(at);
  else if (op < 0.7) lines[i] = line.slice(0, at) + line.slice(at + 1 + Math.floor(rnd() * 3));
  else lines[i] = line.slice(0, at) + tok + line.slice(at + 1);
  return lines.join('\n');
}

test('a reparse is the whole parse of the edited text, or nothing: random one-line edits, chained', () => {
  const rnd = prng(SEED);
  let tried = 0;
  let taken = 0;
  for (const s of seeds) {
    const memo: ParseMemo = {};
    let text = s.text;
    const first = parse(s.name, text, memo);
    assert.ok(first.value && first.diagnostics.length === 0, `${s.name} parses cleanly`);
    // (03-yaml-features has anchors, aliases and merge keys: nothing of it is kept.)
    if (!memo.last) {
      assert.is(s.name, '03-yaml-features.yml', `${s.name}: a plain document is kept for the next parse`);
      continue;
    }
    // (Fewer on the large shared inventories: each edit is parsed whole too.)
    for (let k = 0; k < Math.min(150, Math.floor(2e6 / s.text.length)); k++) {
      const next = edit(text, rnd);
      tried++;
      const got = reparse(memo.last!, next);
      const whole = parse(s.name, next);
      if (got) {
        taken++;
        const why = `${s.name}, seed ${SEED}, edit ${k}: ${JSON.stringify(next.split('\n').find((l, i) => l !== text.split('\n')[i]))}`;
        assert.equal(whole.diagnostics, [], `${why}: reparse took an edit a whole parse rejects`);
        sameShape(got.loaded, whole.value!, why);
        memo.last = got;
        text = next;
      } else if (rnd() < 0.1 && whole.value && whole.diagnostics.length === 0) {
        // (Now and then the chain goes on from an edit reparse left to a whole parse.)
        const again = parse(s.name, next, memo);
        sameShape(again.value!, whole.value!, `${s.name}: the whole parse through the memo`);
        if (!memo.last) break;
        text = next;
      }
    }
  }
  console.log(`reparse: ${taken} of ${tried} random edits reparsed, the rest parsed whole`);
  // (Not vacuous: a good share of random edits are values within a line.)
  assert.ok(taken > tried * 0.15, `only ${taken} of ${tried} edits were reparsed`);
});

test('the edits a watching user makes are reparsed: a host var added, a value changed; a key or a new line is not', () => {
  const memo: ParseMemo = {};
  const text = fleet(40);
  parse('w.yml', text, memo);
  const host = '        10.10.3.5: { pg_seq: 5, pg_role: replica }';
  const added = text.replace(host, host.replace(' }', ', node_exporter_port: 9200 }'));
  const r = reparse(memo.last!, added);
  assert.ok(r, 'a key added to a host');
  sameShape(r!.loaded, parse('w.yml', added).value!, 'a key added to a host');
  // Through parseInventory, and back again.
  const viaMemo = parse('w.yml', added, memo);
  assert.is(viaMemo.value, memo.last!.loaded);
  sameShape(parse('w.yml', text, memo).value!, parse('w.yml', text).value!, 'and back');
  const changed = text.replace('admin_ip: 10.10.0.10', 'admin_ip: 10.10.0.1');
  assert.ok(reparse(memo.last!, changed), 'a scalar changed');
  assert.not.ok(reparse(memo.last!, text.replace('10.10.3.5:', '10.10.3.6:')), 'a key changed');
  assert.not.ok(reparse(memo.last!, text.replace(host, `${host}\n        10.10.3.6: { pg_seq: 6, pg_role: replica }`)), 'a line added');
  assert.not.ok(reparse(memo.last!, text.replace('pg_role: primary', 'pg_role: &p primary')), 'an anchor');
  const v12 = `%YAML 1.2\n---\n${text}`;
  const m12: ParseMemo = {};
  assert.ok(parse('w.yml', v12, m12).value);
  assert.is(m12.last, undefined, 'a document with a directive is not kept');
  // A duplicate key inside the flow mapping is the whole parse's error, not a reparse.
  const dup = text.replace(host, host.replace(' }', ', pg_seq: 6 }'));
  assert.not.ok(reparse(memo.last!, dup));
  const viaDup = parse('w.yml', dup, memo);
  assert.is(viaDup.diagnostics[0]?.code, 'duplicate-key');
  assert.is(memo.last, undefined, 'a parse with a diagnostic is not kept');
});

// Keys yaml holds distinct that pigen reads as one string (`1` and `"1"`, `yes` and `'yes'`): a
// whole parse reports them, and no such document is kept; a value parsed alone with them, or with a
// NUL in a key (positions are keyed by path parts joined with NULs), is left to a whole parse. (A
// review found reparse() splicing into the losing pair of such keys: wrong data, lost positions, a
// throw that ended the watching process.)
test('keys that read the same, or hold a NUL: reported by a whole parse, never reparsed', () => {
  const cases: [string, string, string][] = [
    ['a:\n  1: x\n  "1": y\n', 'a:\n  1: z\n  "1": y\n', 'a number and a string'],
    ['a:\n  1: {p: 1}\n  "1": {q: 2}\n', 'a:\n  1: {p: 1}\n  "1": {q: 3}\n', 'positions under both'],
    ["a:\n  yes: x\n  'yes': y\n", "a:\n  yes: z\n  'yes': y\n", 'a boolean and a string'],
    ['a:\n  1.0: x\n  "1": y\n', 'a:\n  1.0: z\n  "1": y\n', 'a float and a string'],
    ['a:\n  1:\n    p: x\n  "1":\n', 'a:\n  1:\n    p: z\n  "1":\n', 'a mapping and a null'],
  ];
  for (const [old, next, why] of cases) {
    const memo: ParseMemo = {};
    const r = parse('d.yml', old, memo);
    const d = r.diagnostics.find((x) => x.code === 'duplicate-key');
    assert.ok(d, `${why}: reported`);
    assert.is(d!.pos!.line, old.split('\n').findIndex((l) => /^  ["']/.test(l)) + 1, `${why}: at the later key`);
    assert.is(d!.severity, 'error', why);
    assert.ok(r.value, `${why}: the document is still read (its other problems reported in the same run)`);
    assert.is(memo.last, undefined, `${why}: not kept`);
    assert.equal(parse('d.yml', next, memo).diagnostics, parse('d.yml', next).diagnostics, why);
  }
  // Keys of equal values are yaml's own duplicates: reported once.
  assert.is(parse('d.yml', 'a:\n  1: x\n  1.0: y\n').diagnostics.filter((x) => x.code === 'duplicate-key').length, 1);
  // Introduced by an edit within one value: parsed whole, reported.
  const memo: ParseMemo = {};
  const text = 'a:\n  b: {p: 1}\n  c: 2\n';
  parse('d.yml', text, memo);
  assert.ok(memo.last);
  const dup = text.replace('{p: 1}', '{1: a, "1": b}');
  assert.not.ok(reparse(memo.last!, dup), 'a flow mapping with keys that read the same');
  assert.is(parse('d.yml', dup, memo).diagnostics[0]?.code, 'duplicate-key');
  // A NUL in a key: the document is not kept, and a value with one is not reparsed.
  const nul = 'x:\n  a: 1\n  "a\\0b": 2\n';
  const m2: ParseMemo = {};
  const n = parse('d.yml', nul, m2);
  assert.equal(n.diagnostics, []);
  assert.is(m2.last, undefined, 'a key with a NUL: not kept');
  parse('d.yml', text, m2);
  assert.not.ok(reparse(m2.last!, text.replace('{p: 1}', '{"p\\0q": 1}')), 'a value with a NUL in a key');
});

// A reparse shares what did not change with the last parse's data, which the last build read: no
// stage may write into it. Frozen whole, each inventory still resolves and compiles (strict mode:
// a write would throw), to the same output as unfrozen.
test('no stage writes into the parsed data (a reparse shares it with the last build)', () => {
  const assets = readAssets();
  const freeze = (v: Json): void => {
    if (v && typeof v === 'object') {
      Object.freeze(v);
      for (const x of Object.values(v)) freeze(x);
    }
  };
  const build = (l: Loaded) => {
    const inv = resolve(l, assets.schema, { sets: [], strict: false }).value!;
    const out = compile(inv, assets, { version: '0.0.0-test' });
    return JSON.stringify(out.tree.map((e) => [e.path, 'sha256' in e ? e.sha256 : JSON.stringify(e)]));
  };
  for (const s of seeds) {
    const plain = build(parse(s.name, s.text).value!);
    const frozen = parse(s.name, s.text).value!;
    freeze(frozen.data);
    assert.is(build(frozen), plain, s.name);
  }
});

test.run();
