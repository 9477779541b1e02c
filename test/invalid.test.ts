// The invalid-inventory corpus: every file in test/fixtures/invalid/ must be rejected with the
// diagnostics its header names, at exactly that line:col. A case file starts with comment lines:
//
//   # <what is wrong>
//   # expect: port-clash@14:17 injection@15:9   (every one must be reported, at that line:col)
//   ...  # only                                 (and nothing else may be reported)
//
// Cases that cannot carry a header (the empty file, binary garbage, a 50 MB file) are in TABLE
// below or generated here. Also: --set, --strict, the injection matrix (every field kind × every
// dangerous character), CRLF/BOM variants, and the CLI's exit code and output for broken input.
import { test } from 'uvu';
import { formatDiagnostics, redactText } from '../generator/diagnostics.ts';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAndResolve } from '../generator/pipeline.ts';
import { readAssets } from '../generator/io.ts';
import { CODES } from '../generator/codes.ts';
import { formatPath } from '../generator/diagnostics.ts';
import { parseSet } from '../generator/resolve/index.ts';
import { parseInventory } from '../generator/load/parse.ts';
import { parseSetValue } from '../generator/cli/common.ts';
import { didYouMean, distance } from '../generator/util/text.ts';
import type { Diagnostic, Json, ResolveOptions, SetVar } from '../generator/types.ts';
import { ROOT, needTools, run, tmp, prng } from './helpers.ts';

const DIR = join(ROOT, 'test', 'fixtures', 'invalid');
const VALID = join(ROOT, 'test', 'fixtures', 'valid');
const assets = readAssets();
const NO_OPTS: ResolveOptions = { sets: [], strict: false };

interface Expectation {
  expects: string[];
  only: boolean;
}

/** Reads `# expect:` and `# only` from the leading comment lines of a case. */
function header(bytes: Uint8Array, file: string): Expectation {
  const lines = Buffer.from(bytes).toString('latin1').split('\n');
  const expects: string[] = [];
  let only = false;
  for (const line of lines) {
    if (!line.startsWith('#')) break;
    const m = line.match(/^#\s*expect:\s*([^#]*)/);
    if (m) expects.push(...m[1]!.trim().split(/\s+/).filter(Boolean));
    if (/#\s*only\b/.test(line)) only = true;
  }
  for (const e of expects) assert.match(e, /^[a-z-]+@\d+:\d+$/, `${file}: malformed expectation ${e}`);
  return { expects, only };
}

/** Cases whose expectations cannot live in the file itself. */
const TABLE: Record<string, Expectation> = {
  '71-empty.yml': { expects: ['empty-file@1:1'], only: true },
};

const key = (d: Diagnostic) => `${d.code}@${d.pos?.line ?? '-'}:${d.pos?.col ?? '-'}`;

/** Shape checks every diagnostic must pass, whatever the input. */
function assertWellFormed(ds: Diagnostic[], text: string, name: string) {
  const lines = text.split('\n').length;
  for (const d of ds) {
    assert.ok(d.code in CODES, `${name}: unknown code ${d.code}`);
    assert.ok(d.severity === 'error' || d.severity === 'warning', `${name}: bad severity ${d.severity}`);
    assert.type(d.message, 'string');
    assert.ok(d.message.length > 0, `${name}: empty message for ${d.code}`);
    if (d.pos) {
      assert.ok(Number.isInteger(d.pos.line) && d.pos.line >= 1 && d.pos.line <= lines + 1, `${name}: ${key(d)} line out of range (${lines} lines)`);
      assert.ok(Number.isInteger(d.pos.col) && d.pos.col >= 1, `${name}: ${key(d)} col < 1`);
      assert.is(d.file, name, `${name}: ${key(d)} names file ${d.file}`);
    }
  }
}

function check(name: string, bytes: Uint8Array, exp: Expectation, opts: ResolveOptions = NO_OPTS) {
  const r = loadAndResolve({ name, bytes }, assets, opts);
  // (A fleet with no bundle warns repo-empty, as most of these do: semantics.test.ts covers it.)
  const got = r.diagnostics.filter((d) => d.code !== 'repo-empty' || exp.expects.some((e) => e.startsWith('repo-empty@'))).map(key);
  const shown = `\n  got:      ${got.join(' ') || '(nothing)'}\n  expected: ${exp.expects.join(' ')}${exp.only ? ' (only)' : ''}`;
  for (const e of exp.expects) assert.ok(got.includes(e), `${name}: missing ${e}${shown}`);
  if (exp.only) assert.equal(got.filter((g) => !exp.expects.includes(g)), [], `${name}: unexpected diagnostics${shown}`);
  assertWellFormed(r.diagnostics, Buffer.from(bytes).toString('utf8'), name);
  if (r.diagnostics.some((d) => d.severity === 'error')) assert.is(r.inventory, undefined, `${name}: an inventory with errors must not resolve`);
  return r;
}

const caseFiles = readdirSync(DIR).filter((f) => /\.(yml|bin)$/.test(f)).sort();

test('the corpus has at least 45 cases, named <nn>-<short-name>.yml, numbers unique', () => {
  assert.ok(caseFiles.length >= 45, `only ${caseFiles.length} cases`);
  const nums = new Set<string>();
  for (const f of caseFiles) {
    assert.match(f, /^\d\d-[a-z0-9-]+\.(yml|bin)$/, `bad case name ${f}`);
    const n = f.slice(0, 2);
    assert.not.ok(nums.has(n), `case number ${n} used twice`);
    nums.add(n);
    const exp = TABLE[f] ?? header(readFileSync(join(DIR, f)), f);
    assert.ok(exp.expects.length > 0, `${f}: no expectations (add a # expect: header or a TABLE entry)`);
  }
});

for (const f of caseFiles) {
  test(`case ${f}`, () => {
    const bytes = readFileSync(join(DIR, f));
    check(f, bytes, TABLE[f] ?? header(bytes, f));
  });
}

test('the valid corpus (test/fixtures/valid) gives no error: the rules reject nothing legitimate there', () => {
  for (const f of readdirSync(VALID).filter((n) => n.endsWith('.yml')).sort()) {
    const r = loadAndResolve({ name: f, bytes: readFileSync(join(VALID, f)) }, assets, NO_OPTS);
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    assert.equal(errors.map((d) => `${d.code}: ${d.message}`), [], f);
    assert.ok(r.inventory, f);
  }
});

test('CRLF line endings and a UTF-8 BOM give the same diagnostics at the same line:col', () => {
  for (const f of caseFiles.filter((x) => !TABLE[x])) {
    const bytes = readFileSync(join(DIR, f));
    const exp = header(bytes, f);
    const crlf = Buffer.from(Buffer.from(bytes).toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
    check(`${f} (CRLF)`, crlf, { expects: exp.expects, only: false });
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]);
    check(`${f} (BOM)`, bom, { expects: exp.expects, only: false });
  }
});

// ── inputs generated here (binary, huge) ────────────────────────────────────────────────────


test('binary garbage (random bytes with NULs) is not-text, reported once, no crash', () => {
  const rnd = prng(0xb1a5);
  for (let k = 0; k < 20; k++) {
    const bytes = new Uint8Array(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rnd() * 256);
    bytes[100 + k] = 0; // at least one NUL
    const r = loadAndResolve({ name: 'garbage.bin', bytes }, assets, NO_OPTS);
    assert.equal(r.diagnostics.map((d) => d.code), ['not-text'], `garbage #${k}`);
    assertWellFormed(r.diagnostics, Buffer.from(bytes).toString('latin1'), 'garbage.bin');
  }
});

test('binary at a known position: NUL, gzip and PNG magic, a BOM before a NUL', () => {
  const enc = (s: string) => Buffer.from(s, 'latin1');
  const cases: [string, Buffer, string][] = [
    ['nul-in-value', enc('all:\n  vars:\n    admin_ip: 10.10\x00.10.10\n'), 'not-text@3:20'],
    ['nul-first', enc('\x00all:\n'), 'not-text@1:1'],
    ['gzip', Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]), 'not-text@1:1'],
    ['png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 'not-text@1:1'],
    ['bom-then-nul', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), enc('all:\x00\n')]), 'not-text@1:5'],
    ['truncated-utf8', Buffer.concat([enc('all:\n  vars: { node_cluster: "caf'), Buffer.from([0xc3])]), 'not-text@2:29'],
    ['overlong-utf8', Buffer.concat([enc('all: '), Buffer.from([0xc0, 0xaf])]), 'not-text@1:6'],
    ['overlong-3-byte', Buffer.concat([enc('all: '), Buffer.from([0xe0, 0x80, 0xaf])]), 'not-text@1:6'],
    ['surrogate', Buffer.concat([enc('all: "'), Buffer.from([0xed, 0xa0, 0xbd]), enc('"\n')]), 'not-text@1:7'],
  ];
  for (const [name, bytes, want] of cases) check(name, bytes, { expects: [want], only: true });
});

// Characters Ansible's YAML parser (libyaml, YAML 1.1) reads otherwise than an editor shows them
// (found by a review against ansible-inventory): a line separator or NEL is a line break there, so
// `# comment<U+2028>node_tune: olap` set node_tune in Ansible and was a comment to pigen; a lone
// CR too; control characters and U+FFFE/U+FFFF fail Ansible's load, and a BOM past the start is an
// invisible character it reads into a key or value.
test('line breaks YAML 1.1 reads and editors do not show, and characters Ansible rejects, are not-text at their position', () => {
  const u = (s: string) => Buffer.from(s, 'utf8');
  const base = 'all:\n  vars:\n    admin_ip: 10.10.10.10\n    # timezone';
  const cases: [string, Buffer, string, RegExp][] = [
    ['line-separator', u(`${base}\u2028    node_tune: olap\n`), 'not-text@4:15', /U\+2028 LINE SEPARATOR, which YAML 1\.1 \(Ansible\) reads as a line break where editors show none/],
    ['paragraph-separator', u(`${base}\u2029x\n`), 'not-text@4:15', /U\+2029 PARAGRAPH SEPARATOR/],
    ['nel', u(`${base}\u0085x\n`), 'not-text@4:15', /U\+0085 NEL/],
    ['lone-cr', u(`${base}\r    node_timezone: Asia/Tokyo\n`), 'not-text@4:15', /carriage return without a newline/],
    ['bel', u('all:\n  vars: { x: "a\u0007b" }\n'), 'not-text@2:16', /control character U\+0007/],
    ['del', u('all: {}\u007f\n'), 'not-text@1:8', /control character U\+007F/],
    ['c1', u('all: {}\u009b\n'), 'not-text@1:8', /control character U\+009B/],
    ['bom-inside', u('all:\n  vars:\n    \ufeffadmin_ip: 10.10.10.10\n'), 'not-text@3:5', /byte order mark \(U\+FEFF\) past its start, an invisible character Ansible reads into the key or value/],
    ['noncharacter', u('all: { x: "\uffff" }\n'), 'not-text@1:12', /U\+FFFF, which is not a character/],
    // (Columns as the parse counts them: an astral character is two.)
    ['after-emoji', u('all: { x: "\u{1F600}\u0007" }\n'), 'not-text@1:14', /U\+0007/],
  ];
  for (const [name, bytes, want, message] of cases) {
    check(name, bytes, { expects: [want], only: true });
    assert.match(parseInventory({ name: 'x.yml', bytes }).diagnostics[0]!.message, message, name);
  }
  // CR LF line endings, tabs and a leading BOM stay text.
  for (const ok of [u('all:\r\n  vars:\r\n    admin_ip: 10.10.10.10\r\n'), u('\ufeffall:\n  vars: { admin_ip:\t10.10.10.10 }\n')]) {
    assert.equal(parseInventory({ name: 'x.yml', bytes: ok }).diagnostics, []);
  }
});

// (A review found yaml's messages quoting the token, a password included, and one stray `}`
// giving 20 errors in the parser's words, 19 of them at valid lines.)
test('syntax errors: in words, never the token (it may be a secret); one stray token is one error, its echoes counted in the hint', () => {
  const text = 'all:\n  vars:\n    admin_ip: 10.10.10.10\n    infra_portal: { home: { domain: i.pigsty } } }\n    grafana_admin_password: Hunter2Secret\n    pg_admin_password: "Other5ecret"\n';
  const r = parseInventory({ name: 'x.yml', bytes: Buffer.from(text) });
  assert.is(r.diagnostics.length, 1, r.diagnostics.map((d) => d.message).join('\n'));
  const d = r.diagnostics[0]!;
  assert.equal([d.code, d.pos?.line, d.pos?.col, d.message], ['yaml-syntax', 4, 50, 'a `}` that closes nothing']);
  assert.match(d.hint!, /\d+ later syntax errors? not shown: they likely follow from this one/);
  assert.not.match(JSON.stringify(r.diagnostics), /Hunter2Secret|Other5ecret|YAML stream/);
  const two = parseInventory({ name: 'x.yml', bytes: Buffer.from('all:\n  vars: { admin_ip: 10.10.10.10 }\n---\nall: {}\n') });
  assert.match(two.diagnostics[0]!.message, /^a second YAML document \(after a `---` line\): an inventory is one document$/);
  // Tags: Ansible Vault's is named (the hint was "custom YAML tags are not part of an Ansible
  // inventory", wrong for it), a standard tag on a value it does not fit too.
  const tags = parseInventory({ name: 'x.yml', bytes: Buffer.from('all:\n  vars:\n    grafana_admin_password: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      6162\n    nginx_port: !!int abc\n    x: !custom 1\n') });
  assert.equal(tags.diagnostics.map((x) => [x.code, x.message]), [
    ['yaml-tag', 'an Ansible Vault value (!vault): pigen does not decrypt vault values'],
    ['yaml-tag', 'the value is not a valid !!int'],
    ['yaml-tag', 'unknown tag !custom'],
  ]);
  // A duplicate key is named, with the line of the one it repeats (yaml's message had neither).
  const dup = parseInventory({ name: 'x.yml', bytes: Buffer.from('all:\n  vars:\n    nginx_port: 80\n    admin_ip: 10.10.10.10\n    nginx_port: 8080\n') });
  assert.equal(dup.diagnostics.map((x) => [x.code, x.message, x.pos?.line]), [['duplicate-key', 'duplicate key `nginx_port` (first on line 3): YAML keeps one of the two values (PyYAML the later one)', 5]]);
  // Independent errors (a tab as indentation) are all still said.
  const tabs = parseInventory({ name: 'x.yml', bytes: Buffer.from('all:\n  vars:\n\t admin_ip: 1\n  children:\n\t x: 1\n') });
  assert.ok(tabs.diagnostics.filter((x) => /tab/i.test(x.message)).length >= 1, tabs.diagnostics.map((x) => x.message).join('\n'));
});

// Scalars read as Ansible reads them: PyYAML's resolvers, checked against PyYAML itself (python3-yaml,
// cloud-init's own dependency). (A review found `1e3` and `08` read as numbers; PyYAML keeps them strings.)
test('numbers, booleans and strings as PyYAML reads them (1e3 and 08 stay strings; 1.0e+3, 010, 0x1F, 1_000, 1:30 are numbers)', () => {
  if (!needTools('scalars compared with PyYAML', 'python3')) return;
  const words = ['1e3', '1.0e3', '1.0e+3', '08', '010', '0o10', '0x1F', '0b101', '1_000', '+12', '-0', '.5', '1.', '1:30', '190:20:30', '1.5e-3', '0.1_0', '12e', '1__0', '0.', 'yes', 'No', 'on', 'y', 'n', '~', 'null', '2024-01-01', '12:30:45', '0755', '0_', '-0_', '0__', '07_', '0_1', '0x_f', '0b1_0', '._5', '1_0.5'];
  const py = run('python3', ['-c', 'import sys, json, yaml\nfor w in sys.argv[1:]:\n    v = yaml.safe_load("v: " + w)["v"]\n    print(json.dumps(v if not isinstance(v, __import__("datetime").date) else w))', ...words]);
  assert.is(py.code, 0, py.stderr);
  const want = py.stdout.trim().split('\n').map((l) => JSON.parse(l) as Json);
  const got = words.map((w) => ((parseInventory({ name: 'x.yml', bytes: Buffer.from(`all: { v: ${w} }\n`) }).value!.data as { all: { v: Json } }).all.v));
  assert.equal(got, want);
});

test('a 50 MB file is refused before parsing: file-too-large at 1:1', () => {
  const dir = tmp('pigen-invalid-');
  const path = join(dir, 'huge.yml');
  const line = '# padding padding padding padding padding padding padding padding padding padding\n';
  const head = 'all:\n  vars:\n    admin_ip: 10.10.10.10\n';
  const size = 50 * 1024 * 1024;
  writeFileSync(path, head + line.repeat(Math.ceil((size - head.length) / line.length)));
  const bytes = readFileSync(path);
  assert.ok(bytes.length >= size);
  const t0 = Date.now();
  check('huge.yml', bytes, { expects: ['file-too-large@1:1'], only: true });
  assert.ok(Date.now() - t0 < 5000, 'the size check must come before any parsing');
  const r = run(process.execPath, ['--import', 'tsx', join(ROOT, 'generator', 'cli.ts'), 'validate', path, '--json'], { cwd: ROOT });
  assert.is(r.code, 2, r.stderr);
  assert.equal(JSON.parse(r.stdout).diagnostics.map((d: { code: string; line: number; col: number }) => `${d.code}@${d.line}:${d.col}`), ['file-too-large@1:1']);
  // A device that never ends is refused after the limit, not read until memory runs out. (A
  // review found `pigen validate /dev/zero` running until killed.)
  const zero = run(process.execPath, ['--import', 'tsx', join(ROOT, 'generator', 'cli.ts'), 'validate', '/dev/zero'], { cwd: ROOT });
  assert.is(zero.code, 2, zero.stderr);
  assert.match(zero.stderr, /error\[file-too-large\]: it gives more than 8388608 bytes \(the limit\)/);
});

// Merge keys and aliases cost what the file holds, not its square: each alias is looked up in an
// anchor table (yaml's own lookup walks the whole document: 5,000 hosts merging one anchor took
// 40 s), a merge moves only the positions its source made, and long keys under deep aliases
// count against a budget of their own (a 15 KB file took 18 s and 3 GB). Found by a review.
test('merge keys on 5,000 hosts read as the same values written out (their positions at the anchor); long keys under deep aliases hit a budget', () => {
  let merged = 'all:\n  vars: { admin_ip: 10.10.10.10, base: &d { node_cluster: web, nodename_overwrite: false } }\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n    web:\n      hosts:\n';
  let plain = merged;
  for (let i = 0; i < 5000; i++) {
    merged += `        10.20.${i >> 8}.${i & 255}: { <<: *d, node_exporter_port: 9100 }\n`;
    plain += `        10.20.${i >> 8}.${i & 255}: { node_cluster: web, nodename_overwrite: false, node_exporter_port: 9100 }\n`;
  }
  // (Timed by nobody here: speed is the bench's; this file took 40 s before.)
  const time = (t: string) => ({ r: parseInventory({ name: 'x.yml', bytes: Buffer.from(t) }) });
  const a = time(merged);
  const b = time(plain);
  assert.equal(a.r.diagnostics, []);
  const hosts = (r: typeof a.r) => ((r.value!.data as { all: { children: { web: { hosts: Record<string, Json> } } } }).all.children.web.hosts);
  assert.equal(hosts(a.r), hosts(b.r), 'the merged values are the written ones');
  assert.equal(a.r.value!.positions.get(['all', 'children', 'web', 'hosts', '10.20.19.135', 'node_cluster'].join('\u0000'))?.value.line, 2, 'a merged value points at its anchor');
  let bomb = 'all:\n  vars:\n    admin_ip: 10.10.10.10\n    m0: &m0 x\n';
  for (let i = 1; i <= 24; i++) bomb += `    m${i}: &m${i} { ${'x'.repeat(300)}${i}: *m${i - 1}, ${'y'.repeat(300)}${i}: *m${i - 1} }\n`;
  const c = parseInventory({ name: 'x.yml', bytes: Buffer.from(bomb) });
  assert.equal(c.diagnostics.map((d) => d.code), ['alias-error']);
  assert.match(c.diagnostics[0]!.message, /paths add up to more than 64,000,000 characters/);
});

// ── hints, --strict, multi-error ───────────────────────────────────────────────────────────────

const load = (f: string, opts: ResolveOptions = NO_OPTS) => loadAndResolve({ name: f, bytes: readFileSync(join(DIR, f)) }, assets, opts);

test('unknown parameter: a warning with did-you-mean; an error under --strict', () => {
  const lax = load('51-unknown-param.yml');
  const w = lax.diagnostics.find((d) => d.code === 'unknown-param');
  assert.ok(w);
  assert.is(w!.severity, 'warning');
  assert.match(w!.hint ?? '', /did you mean `nginx_port`/);
  assert.ok(lax.inventory, 'warnings alone do not stop resolution');
  const strict = load('51-unknown-param.yml', { sets: [], strict: true });
  const e = strict.diagnostics.find((d) => d.code === 'unknown-param');
  assert.is(e?.severity, 'error');
  assert.equal(e?.pos, w!.pos);
  assert.is(strict.inventory, undefined);
});

// (`repo_address`, Pigsty v1's, was offered as a misspelt `vip_address`.)
test('did-you-mean: a swap of two letters is one edit; no suggestion that rewrites a whole word of the name', () => {
  const params = ['vip_address', 'nginx_port', 'node_tune', 'pg_cluster', 'pg_role', 'repo_upstream', 'repo_endpoint'];
  const dym = (w: string) => didYouMean(w, params);
  assert.equal(['ngnix_port', 'pg_clsuter', 'pq_role', 'node_tunee', 'repo_upstrem', 'vip_adress'].map(dym), ['nginx_port', 'pg_cluster', 'pg_role', 'node_tune', 'repo_upstream', 'vip_address']);
  assert.equal(['repo_address', 'pg_tune', 'node_role'].map(dym), [undefined, undefined, undefined]);
  // (A word cut short is no word rewritten; and a refused candidate gives way to none, not to one farther.)
  const more = [...params, 'node_uv_env', 'nginx_ssl_port', 'node_pip_packages', 'node_packages'];
  assert.equal(['node_uv_e', 'nginx_ls_port', 'node_op_packages'].map((w) => didYouMean(w, more)), ['node_uv_env', 'nginx_ssl_port', 'node_pip_packages']);
  assert.is(didYouMean('repo_adress', ['vip_address', 'vip_adres']), undefined);
  assert.equal([distance('ngnix', 'nginx'), distance('kitten', 'sitting'), distance('', 'ab'), distance('same', 'same')], [1, 3, 2, 0]);
  const r = loadAndResolve({ name: 'x.yml', bytes: Buffer.from('all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n  vars: { admin_ip: 10.10.10.10, repo_address: pigsty }\n') }, assets, NO_OPTS);
  const w = r.diagnostics.find((d) => d.code === 'unknown-param');
  assert.ok(w && !/did you mean/.test(w.hint ?? ''), w?.hint);
});

// (A review found only "remove the field or fix its spelling" for misspelt fields, and a list's
// index shown as a string: repo_upstream['0'].)
test('unknown field: did-you-mean from the schema at that place; a list index is a number in the path', () => {
  const text = 'all:\n  chilren: {}\n  children:\n    infra: { var: {}, hosts: { 10.10.10.10: { infra_seq: 1 } } }\n  vars:\n    admin_ip: 10.10.10.10\n    infra_portal: { home: { domian: i.pigsty } }\n    repo_upstream: [ { name: x, descripton: y, module: local, releases: [12], arch: [x86_64], baseurl: { default: "http://a/b ./" } } ]\n';
  const r = loadAndResolve({ name: 'x.yml', bytes: Buffer.from(text) }, assets, NO_OPTS);
  const unknown = r.diagnostics.filter((d) => d.code === 'schema-unknown-field').map((d) => [formatPath(d.path), d.hint]);
  assert.equal(unknown, [
    ['all.chilren', 'did you mean `children`?'],
    ['all.children.infra.var', 'did you mean `vars`?'],
    ['all.vars.infra_portal.home.domian', 'did you mean `domain`?'],
    ['all.vars.repo_upstream[0].descripton', 'did you mean `description`?'],
  ]);
});

test('unknown placeholder: the hint suggests ${admin_ip}', () => {
  const d = load('29-unknown-placeholder.yml').diagnostics.find((x) => x.code === 'unknown-placeholder');
  assert.ok(d);
  assert.match(d!.message, /\$\{admin_ipp\}/);
  assert.match(d!.hint ?? '', /did you mean `\$\{admin_ip\}`/);
  const repo = load('66-unknown-repo-placeholder.yml').diagnostics.find((x) => x.code === 'unknown-placeholder');
  assert.match(repo!.hint ?? '', /pg_version/);
});

test('unknown enum value: the hint lists the allowed values', () => {
  const d = load('30-unknown-enum.yml').diagnostics.find((x) => x.code === 'schema-enum');
  assert.match(d!.hint ?? '', /"disable", "enable", "enforce"/);
});

test('a pattern the schema names (x-pigen-pattern-name) is said in words, not as a regular expression', () => {
  const d = load('84-scrape-durations.yml').diagnostics.find((x) => x.code === 'schema-format');
  assert.is(d!.message, 'string "1.5m" is not a Prometheus duration (whole numbers with units y, w, d, h, m, s, ms in that order, e.g. 10s, 1m30s, 1d)');
  // A number there is one type error, not one per schema node the parameter is made of.
  const n = loadAndResolve({ name: 'x.yml', bytes: Buffer.from('all:\n  vars:\n    admin_ip: 10.10.10.10\n    vmetrics_scrape_interval: 10\n') }, assets, NO_OPTS);
  assert.equal(n.diagnostics.filter((x) => x.severity === 'error').map(key), ['schema-type@4:31']);
});

test('related locations: duplicates point back at the first occurrence', () => {
  const seq = load('26-infra-seq-duplicate.yml').diagnostics.find((x) => x.code === 'infra-seq-duplicate');
  assert.equal(seq!.related?.pos, { line: 7, col: 35 });
  const dom = load('35-portal-duplicate-domain.yml').diagnostics.find((x) => x.code === 'portal-duplicate-domain');
  assert.equal(dom!.related?.pos, { line: 12, col: 26 });
  const grp = load('18-port-clash-group.yml').diagnostics.find((x) => x.code === 'port-clash');
  assert.equal(grp!.related?.pos, { line: 9, col: 23 });
});

test('all problems of a multi-error file are reported in one run', () => {
  const r = load('52-multi-error.yml');
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  const codes = new Set(errors.map((d) => d.code));
  for (const c of ['infra-seq-duplicate', 'nodename-duplicate', 'bad-host-key', 'schema-range', 'schema-enum', 'port-clash', 'unknown-placeholder', 'injection']) {
    assert.ok(codes.has(c as keyof typeof CODES), `missing ${c}; got ${[...codes].join(', ')}`);
  }
  assert.ok(codes.size >= 5);
  // Sorted top to bottom.
  const lines = r.diagnostics.map((d) => d.pos!.line);
  assert.equal(lines, [...lines].sort((a, b) => a - b));
});

// ── the injection matrix: every field kind × every dangerous character ────────────────────────

const BAD_CHARS: [string, string][] = [
  ['newline', '\n'],
  ['carriage return', '\r'],
  ['tab', '\t'],
  ['semicolon', ';'],
  ['open brace', '{'],
  ['close brace', '}'],
  ['double quote', '"'],
  ['single quote', "'"],
  ['hash', '#'],
  ['backtick', '`'],
  ['command substitution', '$(id)'],
  ['pipe', '|'],
];

/** Field kinds: the YAML line that sets the field (VALUE is replaced), and a harmless value. */
const FIELDS: { name: string; line: string; good: string; host?: boolean }[] = [
  { name: 'portal domain', line: '    infra_portal: { home: { domain: i.pigsty }, x: { domain: VALUE } }', good: 'x.pigsty' },
  { name: 'portal endpoint', line: '    infra_portal: { home: { domain: i.pigsty }, x: { domain: x.pigsty, endpoint: VALUE } }', good: '127.0.0.1:3000' },
  { name: 'portal path', line: '    infra_portal: { home: { domain: i.pigsty }, x: { domain: x.pigsty, path: VALUE } }', good: '/www/x' },
  { name: 'node_etc_hosts entry', line: '    node_etc_hosts: [ VALUE ]', good: '10.10.10.10 x.pigsty' },
  { name: 'dns_records entry', line: '    dns_records: [ VALUE ]', good: '10.10.10.10 x.pigsty' },
  { name: 'node_dns_servers entry', line: '    node_dns_servers: [ VALUE ]', good: '10.10.10.10' },
  { name: 'node_ntp_servers entry', line: '    node_ntp_servers: [ VALUE ]', good: 'pool pool.ntp.org iburst' },
  { name: 'node_packages entry', line: '    node_packages: [ VALUE ]', good: 'openssh-server' },
  { name: 'vmetrics_options', line: '    vmetrics_options: VALUE', good: '-retentionPeriod=15d' },
  { name: 'node_exporter_options', line: '    node_exporter_options: VALUE', good: '--collector.tcpstat' },
  { name: 'nodename', line: '        10.10.10.11: { nodename: VALUE }', good: 'web-1', host: true },
];

function injectionDoc(field: (typeof FIELDS)[number], value: string): { text: string; line: number; col: number } {
  const yamlValue = JSON.stringify(value); // a JSON string is a YAML double-quoted scalar, escapes included
  const fieldLine = field.line.replace('VALUE', yamlValue);
  const lines = [
    'all:',
    '  children:',
    '    infra:',
    '      hosts:',
    '        10.10.10.10: { infra_seq: 1 }',
    '    web:',
    '      hosts:',
    field.host ? fieldLine : '        10.10.10.11: {}',
    '  vars:',
    '    admin_ip: 10.10.10.10',
    ...(field.host ? [] : [fieldLine]),
  ];
  const line = field.host ? 8 : 11;
  return { text: lines.join('\n') + '\n', line, col: fieldLine.indexOf(yamlValue) + 1 };
}

test('injection matrix: each field kind rejects each dangerous character at its line:col', () => {
  let n = 0;
  for (const field of FIELDS) {
    // The harmless value is accepted (so the matrix tests the character, not the field).
    const ok = injectionDoc(field, field.good);
    const okR = loadAndResolve({ name: 'ok.yml', bytes: Buffer.from(ok.text) }, assets, NO_OPTS);
    assert.equal(okR.diagnostics.filter((d) => d.severity === 'error').map(key), [], `${field.name}: harmless value rejected`);
    for (const [what, ch] of BAD_CHARS) {
      const value = field.good + ch + 'evil';
      const doc = injectionDoc(field, value);
      const name = `${field.name} + ${what}`;
      const r = loadAndResolve({ name, bytes: Buffer.from(doc.text) }, assets, NO_OPTS);
      const got = r.diagnostics.map(key);
      assert.ok(got.includes(`injection@${doc.line}:${doc.col}`), `${name}: expected injection@${doc.line}:${doc.col}, got ${got.join(' ')}\n${doc.text}`);
      const others = r.diagnostics.filter((d) => d.code !== 'injection' && d.code !== 'nodename-invalid' && d.code !== 'repo-empty');
      assert.equal(others.map(key), [], `${name}: unexpected diagnostics`);
      assert.is(r.inventory, undefined);
      n++;
    }
  }
  assert.is(n, FIELDS.length * BAD_CHARS.length);
});

// ── --set ──────────────────────────────────────────────────────────────────────────────────────

/** The CLI's --set value parser: the value is read as a YAML 1.1 scalar. */
const setValue = parseSetValue;

test('--set syntax errors are bad-set', () => {
  for (const raw of ['nginx_port', '=8080', '9port=1', 'nginx port=1', 'nginx_port=[1', 'nginx_port={']) {
    const r = parseSet(raw, setValue);
    assert.ok('code' in r, `${raw} should be rejected`);
    assert.is((r as Diagnostic).code, 'bad-set', raw);
    assert.is((r as Diagnostic).severity, 'error', raw);
  }
  const ok = parseSet('nginx_port=8080', setValue);
  assert.equal(ok, { key: 'nginx_port', value: 8080, raw: 'nginx_port=8080' });
  // Each says why, never echoing the value (a review found `=5` shown as "` …`", no reason for a
  // value that is not YAML, and a second line read and dropped without a word).
  const why = (raw: string) => (parseSet(raw, setValue) as Diagnostic).message;
  assert.is(why('=5'), 'a --set has no KEY before its `=`');
  assert.match(why('nginx_port=[1,'), /^cannot read the value of --set nginx_port: /);
  assert.is(why('nginx_port=8080\nadmin_ip: 1.2.3.4'), 'cannot read the value of --set nginx_port: it holds more than one value (a line break?): one --set sets one parameter');
  assert.not.match(why('grafana_admin_password="Hunter2x'), /Hunter2x/);
  // A name ending in pw names a secret too (found by a review: --set grafana_adminpw=… was echoed
  // in its unknown-param warning).
  assert.not.match(JSON.stringify(withSets('grafana_adminpw=Hunter2Secret', 'x_pw_1=Hunter3Secret').diagnostics), /Hunter\dSecret/);
});

const validBytes = readFileSync(join(VALID, '01-single-node.yml'));
const withSets = (...raws: string[]) => {
  const sets = raws.map((raw) => parseSet(raw, setValue) as ResolveOptions['sets'][number]);
  return loadAndResolve({ name: 'single.yml', bytes: validBytes }, assets, { sets, strict: false });
};

test('a duplicate key names its parameter path, nested ones too (found by a review: `(top level)`)', () => {
  const text = 'all:\n  vars:\n    admin_ip: 10.10.10.10\n    nginx_port: 80\n    nginx_port: 81\n    infra_portal: { home: { domain: a, domain: b } }\n    node_etc_hosts: [ { x: 1, x: 2 } ]\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n';
  const r = loadAndResolve({ name: 'dk.yml', bytes: Buffer.from(text) }, assets, { sets: [], strict: false });
  assert.equal(r.diagnostics.filter((d) => d.code === 'duplicate-key').map((d) => d.path.join('.')), ['all.vars.nginx_port', 'all.vars.infra_portal.home.domain', 'all.vars.node_etc_hosts.0.x']);
});

test('a document nested hundreds of levels deep: said so, not as the parser\'s stack overflow (found by a review)', () => {
  const text = `all:\n  vars:\n    x: ${'['.repeat(3000)}${']'.repeat(3000)}\n`;
  const r = loadAndResolve({ name: 'deep.yml', bytes: Buffer.from(text) }, assets, { sets: [], strict: false });
  assert.ok(r.diagnostics.some((d) => d.code === 'yaml-syntax' && /nests too deeply/.test(d.message)), JSON.stringify(r.diagnostics.map((d) => d.message)));
  assert.not.ok(r.diagnostics.some((d) => /call stack/i.test(d.message)));
});

test('a message never carries what a terminal acts on (ESC, BEL, C1, bidi overrides): written as escapes (found by a review: a nodename set the terminal title)', () => {
  const text = 'all:\n  children:\n    infra:\n      hosts:\n        10.10.10.10: { infra_seq: 1, nodename: "a\\e]0;PWNED\\ab" }\n  vars:\n    admin_ip: 10.10.10.10\n    "\\e[41mZ\\u202e\\x9b": 1\n';
  const r = loadAndResolve({ name: 'e.yml', bytes: Buffer.from(text) }, assets, { sets: [], strict: false });
  const shown = formatDiagnostics(r.diagnostics, { color: false, sources: new Map([['e.yml', text]]) });
  assert.not.match(shown, /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
  assert.match(shown, /nodename `a\\u001b\]0;PWNED\\u0007b` of 10\.10\.10\.10 is not a valid hostname/);
  assert.match(shown, /unknown parameter `\\u001b\[41mZ\\u202e\\u009b`/);
});

// (Found by a review on Pigsty's own templates: their example user's password `test` made the
// cluster `pg-test` `pg-****` in every message and code frame.)
test('a short secret value is hidden in messages where it stands as a word, not inside names; in code frames and validators\' text everywhere', () => {
  const text = 'all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n    pg-test:\n      hosts: { 10.10.10.11: { pg_seq: 1, pg_role: primary }, 10.10.10.12: { pg_seq: 1, pg_role: replica } }\n      vars: { pg_cluster: pg-test, pg_users: [ { name: test, password: test } ] }\n  vars:\n    admin_ip: 10.10.10.10\n';
  const r = loadAndResolve({ name: 's.yml', bytes: Buffer.from(text) }, assets, { sets: [], strict: false });
  assert.ok(r.secretValues?.includes('test'));
  assert.match(r.diagnostics.find((d) => d.code === 'nodename-duplicate')!.message, /nodename `pg-test-1` is used by 10\.10\.10\.11 and 10\.10\.10\.12/);
  const shown = formatDiagnostics(r.diagnostics, { color: false, sources: new Map([['s.yml', text]]), secrets: r.secretValues ?? [] });
  assert.match(shown, /nodename `pg-test-1` is used by/, shown);
  // (The inventory's own text: a password may stand inside a word there, `mysqldump -pXk9mQ2`.
  // A review found one printed in a crontab-user frame.)
  assert.match(shown, /pg_cluster: pg-\*\*\*\*, pg_users: \[ \{ name: \*\*\*\*, password: \*\*\*\* \}/, shown);
  assert.is(redactText('mysqldump -pXk9mQ2 db token=Xk9mQ2_v2', ['Xk9mQ2']), 'mysqldump -p**** db token=****_v2');
});

test('--set values are checked like the inventory (range, enum, type, clash) and carry no file position', () => {
  assert.equal(withSets().diagnostics, [], 'the base inventory is valid');
  const cases: [string, string][] = [
    ['nginx_port=99999', 'schema-range'],
    ['nginx_port=0', 'schema-range'],
    ['nginx_port=abc', 'schema-type'],
    ['nginx_sslmode=sometimes', 'schema-enum'],
    ['admin_ip=10.10.10', 'schema-format'],
    ['vlogs_port=8428', 'port-clash'],
    ['admin_ip=10.10.10.11', 'admin-ip-not-infra'],
  ];
  for (const [raw, code] of cases) {
    const r = withSets(raw);
    const errs = r.diagnostics.filter((d) => d.severity === 'error');
    assert.equal(errs.map((d) => d.code), [code], `--set ${raw}: ${errs.map((d) => `${d.code}: ${d.message}`).join('; ')}`);
    assert.equal(errs[0]!.path.slice(0, 2), ['--set', 0], `--set ${raw}`);
    assert.is(errs[0]!.pos, undefined, `--set ${raw} must not point into the file`);
    assert.is(r.inventory, undefined);
  }
  const unk = withSets('nginx_prot=8080').diagnostics;
  assert.equal(unk.map((d) => `${d.code}/${d.severity}`), ['unknown-param/warning']);
  assert.match(unk[0]!.hint ?? '', /nginx_port/);
});

// ── the CLI: exit code 2, no stack trace, JSON and text output ──────────────────────────────────

const CLI = join(ROOT, 'generator', 'cli.ts');
const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: DIR });
const noStack = (name: string, s: string) => {
  assert.not.match(s, /^ {4}at /m, `${name}: stack trace in output:\n${s}`);
  assert.not.match(s, /internal error/i, `${name}: internal error:\n${s}`);
};

// How Ansible (libyaml, YAML 1.1, its own constructor) reads what yaml would read otherwise (a
// review against ansible-inventory found each of these).
test('read as Ansible reads it: %YAML 1.2 still YAML 1.1, integers past 2^53 exact, the later of two merge keys, !unsafe strings; Jinja and bad directives reported', () => {
  const parse = (t: string) => parseInventory({ name: 'x.yml', bytes: Buffer.from(t) });
  const vars = (t: string) => (parse(t).value?.data as { all: { vars: Record<string, Json> } } | undefined)?.all.vars;
  // %YAML 1.2 switched yaml to 1.2's core schema (0200 was 200 where Ansible reads 128).
  assert.equal(vars('%YAML 1.2\n---\nall:\n  vars: { a: 0200, b: 1_000, c: 1:30, d: 0b11, e: yes, f: 1e3 }\n'), { a: 128, b: 1000, c: 90, d: 3, e: true, f: '1e3' });
  for (const [t, message] of [
    ['%YAML 2.0\n---\nall: {}\n', '%YAML 2.0 is not a YAML version Ansible reads (1.1 and 1.2 are)'],
    ['%YAML 1.1\n%YAML 1.1\n---\nall: {}\n', 'a second %YAML directive'],
    ['# x\n%FOO bar\n---\nall: {}\n', 'unknown directive %FOO'],
  ] as const) {
    const r = parse(t);
    assert.equal(r.diagnostics.map((d) => [d.code, d.message]), [['yaml-syntax', message]], t);
  }
  // Past 2^53 a number would round (9223372036854775807 written as 9223372036854776000): the
  // digits, exactly, as PyYAML's int has them (a string: an integer parameter then fails its type).
  assert.equal(vars('all:\n  vars: { a: 9223372036854775807, b: -9007199254740993, c: 0x1_0000_0000_0000_0001, d: 0777777777777777777777, e: 1:0:0:0:0:0:0:0:0:0, f: 9007199254740991, 12345678901234567890: k }\n'), {
    a: '9223372036854775807',
    b: '-9007199254740993',
    c: '18446744073709551617',
    d: '9223372036854775807',
    e: '10077696000000000',
    f: 9007199254740991,
    '12345678901234567890': 'k',
  });
  // Two merge keys: both merged, the later one's values winning where they share a key, as PyYAML
  // (so Ansible) flattens them, without a word (pigen kept the first only). A whole float taken
  // from a merge is judged where it lands; one another value won over is not.
  const merges = parse('all:\n  vars:\n    base: &base { node_timezone: UTC, a: 1 }\n    tokyo: &tokyo { node_timezone: Asia/Tokyo }\n    x: { <<: *base, <<: *tokyo }\n');
  assert.equal((merges.value!.data as { all: { vars: { x: Json } } }).all.vars.x, { node_timezone: 'Asia/Tokyo', a: 1 });
  assert.equal(merges.diagnostics, []);
  const merged = loadAndResolve({ name: 'm.yml', bytes: Buffer.from('all:\n  vars:\n    admin_ip: 10.10.10.10\n    <<: { node_hugepage_ratio: 0.0, dns_port: 53.0 }\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1, <<: { nginx_port: 80.0, vlogs_port: 9428.0 }, vlogs_port: 9428 } } }\n') }, assets, { sets: [parseSet('nginx_exporter_port=9113', setValue) as ResolveOptions['sets'][number]], strict: false });
  assert.equal(merged.diagnostics.filter((d) => d.severity === 'error').map((d) => [d.code, formatPath(d.path)]), [
    ['schema-type', 'all.vars.dns_port'],
    ['schema-type', "all.children.infra.hosts['10.10.10.10'].nginx_port"],
  ]);
  // Jinja: Ansible evaluates it, pigen would write the text; reported at the value (never quoted:
  // it may be a secret), once however many aliases name it; !unsafe is Ansible's way to mean the text.
  const jinja = parse('all:\n  vars:\n    node_aliases: { dps: !unsafe \'docker ps --format "{{.Names}}"\' }\n    a: !unsafe 12\n    c: &x "echo {{ admin_ip }}"\n    d: *x\n    e: "{% if x %}"\n    f: "{ braces } and ${admin_ip}"\n');
  assert.equal((jinja.value!.data as { all: { vars: Json } }).all.vars, { node_aliases: { dps: 'docker ps --format "{{.Names}}"' }, a: '12', c: 'echo {{ admin_ip }}', d: 'echo {{ admin_ip }}', e: '{% if x %}', f: '{ braces } and ${admin_ip}' });
  assert.equal(jinja.diagnostics.map((d) => [d.code, d.severity, formatPath(d.path), d.pos]), [
    ['jinja-template', 'error', 'all.vars.c', { line: 5, col: 11 }],
    ['jinja-template', 'error', 'all.vars.e', { line: 7, col: 8 }],
  ]);
  assert.match(jinja.diagnostics[0]!.message, /^a Jinja template \(\{\{ in the value\): Ansible evaluates it, pigen does not/);
  assert.equal(parse('all:\n  vars:\n    m: !unsafe { a: 1 }\n').diagnostics.map((d) => d.message), ['!unsafe on a mapping or a list: pigen takes it on single values']);
  // Only where pigen reads the parameter: a vault variable in pg_users (carried, never written) is
  // Ansible's business (found by a review: it blocked the build).
  const carried = loadAndResolve({ name: 'j.yml', bytes: Buffer.from('all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n    pg-x: { hosts: { 10.10.10.11: { pg_seq: 1, pg_role: primary } }, vars: { pg_cluster: pg-x, pg_users: [ { name: app, password: "{{ vault_pw }}" } ] } }\n  vars: { admin_ip: 10.10.10.10, node_crontab: [ "0 1 * * * root echo {{ x }}" ] }\n') }, assets, { sets: [], strict: false });
  assert.equal(carried.diagnostics.filter((d) => d.code === 'jinja-template').map((d) => formatPath(d.path)), ['all.vars.node_crontab[0]']);
  // Anchors libyaml rejects: a name with a `.`, one defined twice (yaml took the later).
  assert.equal(parse('all:\n  vars:\n    a: &x 1\n    b: &x 2\n    c: *x\n').diagnostics.map((d) => [d.code, d.pos, d.message]), [['yaml-syntax', { line: 4, col: 8 }, 'the anchor &x is defined a second time (Ansible rejects the file)']]);
  assert.equal(parse('all:\n  vars:\n    a: &pg.base { x: 1 }\n    b: *pg.base\n').diagnostics.map((d) => [d.pos, d.message.split(':')[0]]), [
    [{ line: 3, col: 8 }, 'the anchor &pg.base'],
    [{ line: 4, col: 8 }, 'the alias *pg.base'],
  ]);
  assert.equal(parse('all:\n  vars:\n    a: &ok-1_x 1\n    b: *ok-1_x\n').diagnostics, []);
  // A whole float where an integer goes: a number to JavaScript as 1 is, a float to Ansible
  // (`pg-meta-1.0`); a float parameter takes it (node_hugepage_ratio), an unknown one is not judged.
  const floats = loadAndResolve({ name: 'f.yml', bytes: Buffer.from('all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1.0 } } }\n  vars: { admin_ip: 10.10.10.10, nginx_port: 8.08e+3, node_hugepage_ratio: 1.0, a: &x 2.0, dns_port: *x }\n') }, assets, { sets: [], strict: false });
  assert.equal(floats.diagnostics.filter((d) => d.code === 'schema-type').map((d) => [formatPath(d.path), d.pos?.line, d.message.split(',')[0], d.hint]), [
    ["all.children.infra.hosts['10.10.10.10'].infra_seq", 3, '`1.0` is a float in YAML', 'write it as an integer: 1'],
    ['all.vars.nginx_port', 4, '`8.08e+3` is a float in YAML', 'write it as an integer: 8080'],
    ['all.vars.dns_port', 4, '`2.0` is a float in YAML', 'write it as an integer: 2'],
  ]);
  // The same through --set (pigen took `--set pg_seq=1.0` for 1), deep in a value too; a float parameter takes one.
  const sets = ['pg_seq=1.0', 'node_hugepage_ratio=1.0', 'nginx_port=8080', 'nginx_ssl_port=9007199254740993.0', "repo_upstream=[{ name: r, description: R, module: local, releases: [12, 13.0], arch: [x86_64], baseurl: { default: 'http://10.10.10.10/r/' } }]"].map((raw) => parseSet(raw, setValue) as SetVar);
  const viaSet = loadAndResolve({ name: 'f.yml', bytes: Buffer.from('all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n  vars: { admin_ip: 10.10.10.10 }\n') }, assets, { sets, strict: false });
  assert.equal(viaSet.diagnostics.filter((d) => d.code === 'schema-type').map((d) => [formatPath(d.path), d.message.split(',')[0], d.hint]).sort(), [
    ['--set[0].pg_seq', '`1.0` is a float in YAML', 'write it as an integer: 1'],
    // (Past 2^52 too, where half a unit more rounds back to an integer.)
    ['--set[3].nginx_ssl_port', '`9007199254740993.0` is a float in YAML', 'write it as an integer: 9007199254740993'],
    ['--set[4].repo_upstream[0].releases[1]', '`13.0` is a float in YAML', 'write it as an integer: 13'],
  ]);
  assert.not.ok(viaSet.inventory);
});

test('CLI --json on broken inputs: exit 2, parseable JSON with the expected line:col, no stack trace', () => {
  const dir = tmp('pigen-invalid-cli-');
  const garbage = join(dir, 'garbage.bin');
  const rnd = prng(7);
  writeFileSync(garbage, Buffer.from(Array.from({ length: 2048 }, () => Math.floor(rnd() * 256)).concat([0])));
  const cases: [string, string[]][] = [
    ['04-unclosed-quote.yml', ['yaml-syntax@9:15']],
    ['06-duplicate-key-nested.yml', ['duplicate-key@11:5']],
    ['17-port-clash-global.yml', ['port-clash@10:17']],
    ['53-invalid-utf8.yml', ['not-text@4:25']],
    ['71-empty.yml', ['empty-file@1:1']],
    [garbage, []],
  ];
  for (const [file, want] of cases) {
    const r = cli('validate', file, '--json');
    assert.is(r.code, 2, `${file}: exit ${r.code}\n${r.stderr}`);
    noStack(file, r.stdout + r.stderr);
    const out = JSON.parse(r.stdout);
    assert.is(out.ok, false);
    assert.ok(out.errors >= 1);
    const got = out.diagnostics.map((d: { code: string; line: number; col: number }) => `${d.code}@${d.line}:${d.col}`);
    for (const w of want) assert.ok(got.includes(w), `${file}: missing ${w} in ${got.join(' ')}`);
    for (const d of out.diagnostics) {
      assert.ok(d.code in CODES);
      assert.type(d.hint, 'string');
    }
  }
});

test('CLI text output: file:line:col, a caret under the column, a hint line; all errors at once', () => {
  const r = cli('validate', '52-multi-error.yml');
  assert.is(r.code, 2);
  noStack('52-multi-error.yml', r.stdout + r.stderr);
  const exp = header(readFileSync(join(DIR, '52-multi-error.yml')), '52-multi-error.yml');
  for (const e of exp.expects) {
    const [code, at] = e.split('@') as [string, string];
    assert.ok(r.stderr.includes(`[${code}]`), `missing [${code}]`);
    assert.ok(r.stderr.includes(`52-multi-error.yml:${at}`), `missing 52-multi-error.yml:${at}\n${r.stderr}`);
  }
  assert.match(r.stderr, /^\s+\|\s+\^$/m);
  assert.match(r.stderr, /= hint: /);
  assert.match(r.stderr, /\b\d+ errors?, \d+ warnings?/);
  // The caret sits under the reported column of the reported line.
  const frame = r.stderr.split('\n');
  const at = frame.findIndex((l) => l.includes('52-multi-error.yml:15:17'));
  const src = frame.slice(at).find((l) => /^\s*15 \| /.test(l))!;
  const caret = frame.slice(at).find((l) => /^\s+\|\s+\^$/.test(l))!;
  assert.is(caret.indexOf('^') - caret.indexOf('|'), src.indexOf('70000') - src.indexOf('|'));

  for (const f of ['03-tab-indentation.yml', '21-host-key-256.yml']) {
    const t = cli('validate', f);
    assert.is(t.code, 2, f);
    noStack(f, t.stdout + t.stderr);
    const [code, at] = header(readFileSync(join(DIR, f)), f).expects[0]!.split('@') as [string, string];
    assert.ok(t.stderr.includes(`error[${code}]`) && t.stderr.includes(`${f}:${at}`), `${f}:\n${t.stderr}`);
    assert.match(t.stderr, /^\s+\|\s*\^$/m);
    assert.match(t.stderr, /= hint: /);
  }
});

test('CLI --set: bad syntax and out-of-range values exit 2 with a readable message', () => {
  const valid = join(VALID, '01-single-node.yml');
  const ok = cli('validate', valid);
  assert.is(ok.code, 0, ok.stderr);
  const bad = cli('validate', valid, '--set', 'nginx_port');
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /error\[bad-set\]/);
  noStack('--set nginx_port', bad.stderr);
  const range = cli('validate', valid, '--set', 'nginx_port=99999', '--json');
  assert.is(range.code, 2, range.stderr);
  noStack('--set nginx_port=99999', range.stderr);
  const out = JSON.parse(range.stdout);
  const d = out.diagnostics.find((x: { severity: string }) => x.severity === 'error');
  assert.is(d.code, 'schema-range');
  assert.match(d.message, /--set nginx_port=99999/);
  assert.is(d.line, null);
  const typo = cli('validate', valid, '--set', 'nginx_prot=1', '--strict');
  assert.is(typo.code, 2);
  assert.match(typo.stderr, /error\[unknown-param\]/);
  // A bad --set is said with the inventory's own errors, not instead of them (a review found it
  // hid them all).
  const both = cli('validate', join(DIR, '77-duplicate-key-and-more.yml'), '--set', 'nginx_port=[1,', '--json');
  assert.is(both.code, 2);
  assert.equal(JSON.parse(both.stdout).diagnostics.filter((x: { severity: string }) => x.severity === 'error').map((x: { code: string }) => x.code), ['bad-set', 'duplicate-key', 'schema-range']);
});

test.run();
