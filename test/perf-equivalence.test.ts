// The fast paths of the build (issue 7) give the same bytes as the plain YAML route:
//  - cloud-config YAML stringified piece by piece (and write_files items written directly) equals
//    stringify() of the whole object;
//  - the files-gz+b64 size summed piece by piece as the YAML is written equals the size of the
//    whole-document round trip;
//  - scrape-target files written directly equal toYaml();
//  - templates compiled at build time (dist/render/templates.cjs) render what nunjucks compiling
//    them now renders.
// Checked on every golden inventory and on generated contents (odd whitespace, control characters,
// quotes, unicode, long and short files).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { stringify } from 'yaml';
import { cloudConfigObject, cloudConfigYaml, contentGzipLength, fileItemYaml, filesGzTotal } from '../generator/emit/cloud-config.ts';
import { encodeFiles } from '../generator/emit/userdata.ts';
import { environment, targetsYaml, toYaml } from '../generator/render/index.ts';
import { plan } from '../generator/plan/index.ts';
import { PRECOMPILED_TEMPLATES, readAssets } from '../generator/io.ts';
import { existsSync } from 'node:fs';
import { CI } from './helpers.ts';
import type { OutTree } from '../generator/types.ts';
import { ROOT, SHARED } from './helpers.ts';
import { compileInventory, loadForBuild, type BuildInput } from './tree.ts';

// (YAML 1.1, as the cloud-config writers use it: cloud-init reads user-data with PyYAML.)
const YAML_OPTS = { lineWidth: 0, indent: 2, blockQuote: 'literal', version: '1.1' } as const;
const bytes = (s: string) => Buffer.byteLength(s);

const inputs: [string, BuildInput][] = [
  ['two-infra', { cwd: ROOT, arg: 'test/fixtures/two-infra.yml' }],
  ['default', { cwd: '/' }],
  ...(SHARED
    ? ([
        ['meta', { cwd: SHARED, arg: 'pigsty-conf/meta.yml' }],
        ['full', { cwd: SHARED, arg: 'pigsty-conf/full.yml' }],
        ['simu', { cwd: SHARED, arg: 'pigsty-conf/simu.yml' }],
        ['el9', { cwd: SHARED, arg: 'pigsty-conf/el.yml', sets: ['os_profile=el9'] }],
      ] as [string, BuildInput][])
    : []),
];

for (const [name, input] of inputs) {
  test(`${name}: cloud-config pieces, files-gz+b64 sizes and target files equal the plain YAML route`, () => {
    const c = compileInventory(input);
    for (const n of c.nodes) {
      const cc = cloudConfigObject(n, { version: '0.0.0' });
      const whole = stringify(cc, YAML_OPTS);
      assert.is(cloudConfigYaml(cc), whole, `${n.ip}: cloud-config YAML`);
      const text = `#cloud-config\n# header\n${whole}`;
      assert.is(sizedYaml(cc, '#cloud-config\n# header\n'), bytes(encodeFiles(text)), `${n.ip}: files-gz+b64 size`);
      for (const f of n.files) {
        if (f.kind !== 'scrape-targets') continue;
        const data = (stringify as unknown) && (JSON.parse(JSON.stringify(parseTargets(f.content))) as unknown);
        assert.is(targetsYaml(data), toYaml(data), `${n.ip}: ${f.path}`);
      }
    }
  });
}

/** The files-gz+b64 size that cloudConfigYaml sums piece by piece (checking its YAML on the way). */
function sizedYaml(cc: Record<string, unknown>, header: string): number | undefined {
  const size = { n: bytes(header), contents: [] as string[] };
  assert.is(cloudConfigYaml(cc, size), stringify(cc, YAML_OPTS));
  return Number.isNaN(size.n) ? undefined : filesGzTotal(size, contentGzipLength);
}

// The rendered target file back to data (the plan's data is not kept on the rendered node).
function parseTargets(content: string): unknown {
  const out: { labels: Record<string, string>; targets: string[] }[] = [];
  for (const line of content.split('\n')) {
    if (line.startsWith('- labels:')) out.push({ labels: {}, targets: [] });
    else if (line.startsWith('    - ')) out[out.length - 1]!.targets.push(line.slice(6));
    else if (/^ {4}\S+: /.test(line)) {
      const [k, ...v] = line.trim().split(': ');
      out[out.length - 1]!.labels[k!] = v.join(': ');
    }
  }
  return out;
}

// Deterministic pseudo-random generator (no Math.random: failures must reproduce).
function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
}
const PARTS = ['a: b #c', 'x\\y', '\u2028', '\ufeffbom', '\u0085nel', 'a', 'key: value', '  indented', '\t tab', '# hash', '', ' ', '"q"', "'s'", 'é—ü', '😀 astral', '\ud800 lone', '\u0007bell', '- item', '---', '...', 'x: |', '{a: b}', 'long '.repeat(200), 'y'.repeat(505), '\r'];

test('templates compiled at build time render what nunjucks compiling them now renders, on every golden inventory', () => {
  if (!existsSync(PRECOMPILED_TEMPLATES)) {
    assert.not.ok(CI, `${PRECOMPILED_TEMPLATES} missing under CI: npm ci runs the build`);
    console.log(`  SKIP: ${PRECOMPILED_TEMPLATES} not built (npm run build)`);
    return;
  }
  const assets = readAssets();
  const pre = environment(assets);
  const now = environment(assets, { precompiled: false });
  const used = new Set<string>();
  for (const [name, input] of inputs) {
    for (const n of plan(loadForBuild(input)).nodes) {
      for (const f of n.files) {
        if (!f.template?.endsWith('.njk')) continue;
        used.add(f.template);
        assert.is(pre.render(f.template, f.ctx ?? {}), now.render(f.template, f.ctx ?? {}), `${name} ${n.ip} ${f.path} (${f.template})`);
      }
    }
  }
  assert.ok(used.size >= 10, `templates rendered: ${used.size}`);
  for (const t of used) assert.is((pre.getTemplate(t) as unknown as { tmplStr?: string }).tmplStr, undefined, `${t}: compiled at run time, not taken from the build`);
});

test('write_files items and target lists: fast writers equal the YAML stringifier on generated inputs', () => {
  const r = rng(7);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  for (let i = 0; i < Number(process.env.FUZZ_N ?? 3000); i++) {
    const lines = Array.from({ length: 1 + Math.floor(r() * 8) }, () => pick(PARTS));
    const ends = pick(['', '\n', '\n\n', ' \n', '\n ', '\n\n\n']);
    const content = pick(['', ' ', '\n']) + lines.join('\n') + ends;
    const item: Record<string, unknown> = {
      path: pick(['/etc/x.conf', '/etc/a b', '/data/infra/targets/node/10.0.0.1.yml', '/x:', '/etc/-y']),
      permissions: pick(['0644', '0600', '0755', '644']),
      owner: pick(['root:root', 'vector:vector', 'root', 'a b:c']),
      content,
    };
    if (r() < 0.3) item.defer = true;
    const ref = stringify({ write_files: [item] }, YAML_OPTS);
    const fast = fileItemYaml(item);
    if (fast !== undefined) assert.is('write_files:\n' + fast, ref, JSON.stringify(item));
    const text = `#cloud-config\n${ref}`;
    assert.is(sizedYaml({ write_files: [item] }, '#cloud-config\n'), bytes(encodeFiles(text)), `files-gz+b64 size of ${JSON.stringify(item)}`);
  }
  // Top-level entries with plain scalars only (the shortcut without a round trip).
  const plainWords = ['pg-test-1', 'a b', 'x - y', 'k=v', 'a:b', 'a:', '~x', 'é', 'systemctl enable --now x.service', '1.2.3.4', '@x', '%y', 'a #b', '- z', '[x]', 'yes', 'no', 'on', 'true', 'null', '1e3', '0x1F', '.5', '12', 'x'.repeat(600), 'node-1.example.com'];
  for (let i = 0; i < 3000; i++) {
    const cc = { hostname: pick(plainWords), runcmd: Array.from({ length: Math.floor(r() * 4) }, () => pick(plainWords)), groups: r() < 0.5 ? [] : [pick(plainWords)] };
    const text = `#cloud-config\n${stringify(cc, YAML_OPTS)}`;
    assert.is(sizedYaml(cc, '#cloud-config\n'), bytes(encodeFiles(text)), `plain entries ${JSON.stringify(cc)}`);
  }
  const words = ['10.0.0.1', '10.0.0.1:9100', 'pg-test-1', '1.5', '123', 'true', 'null', 'a:', '-x', '.5', '0x1F', 'ok/path', 'a b', 'x#y', 'é', '~', '1e3', 'pg-meta'];
  for (let i = 0; i < 2000; i++) {
    const data = Array.from({ length: 1 + Math.floor(r() * 3) }, () => ({
      labels: Object.fromEntries(Array.from({ length: 1 + Math.floor(r() * 3) }, () => [pick(['ip', 'ins', 'cls', 'vip', '1', 'a b']), pick(words)])),
      targets: Array.from({ length: Math.floor(r() * 3) }, () => pick(words)),
    }));
    const fast = targetsYaml(data);
    if (fast !== undefined) assert.is(fast, toYaml(data), JSON.stringify(data));
  }
});


test('the sha256 the emitter attaches to a tree entry (reused by writeTree) is the hash of its bytes', async () => {
  const { createHash } = await import('node:crypto');
  for (const [name, input] of inputs) {
    const c = compileInventory(input);
    let n = 0;
    for (const e of c.tree) {
      if (!('data' in e) || e.sha256 === undefined) continue;
      n++;
      assert.is(e.sha256, createHash('sha256').update(e.data).digest('hex'), `${name}: ${e.path}`);
    }
    assert.ok(n > c.tree.length / 2, `${name}: most entries carry their hash (${n} of ${c.tree.length})`);
  }
});

test('stableJson: the same data as JSON.stringify, keys sorted at every level, the same text whatever the key order', async () => {
  const { stableJson } = await import('../generator/emit/index.ts');
  const { byCodeUnit } = await import('../generator/util/text.ts');
  // Non-index keys in code-unit order (integer-like keys come first in any JS object, in numeric order).
  const isIndex = (k: string) => /^(0|[1-9]\d*)$/.test(k);
  const sortedKeys = (x: unknown): boolean => {
    if (Array.isArray(x)) return x.every(sortedKeys);
    if (!x || typeof x !== 'object') return true;
    const keys = Object.keys(x).filter((k) => !isIndex(k));
    return keys.every((k, i) => i === 0 || byCodeUnit(keys[i - 1]!, k) < 0) && Object.values(x).every(sortedKeys);
  };
  /** The same value with every object's keys inserted in reverse order. */
  const reversed = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(reversed);
    if (!x || typeof x !== 'object') return x;
    return Object.fromEntries(Object.entries(x).reverse().map(([k, v]) => [k, reversed(v)]));
  };
  const values: unknown[] = [
    {},
    [],
    { b: 1, a: [1, 'x', null, { d: undefined, c: true }], e: {}, f: [] },
    { z: undefined, y: [undefined, () => 1], 'é': 'ü\n"\\', '10': 1, '9': 2, B: -0.5, a: 1e21 },
    [[[]], [{}], { x: [{ y: {} }] }],
    'str',
    42,
    null,
  ];
  for (const [, input] of inputs) values.push(compileInventory(input).manifest);
  for (const v of values) {
    const text = stableJson(v);
    const back = JSON.parse(text) as unknown;
    assert.equal(back, JSON.parse(JSON.stringify(v)), 'the same data');
    assert.ok(sortedKeys(back), 'keys sorted at every level');
    assert.is(text, JSON.stringify(back, null, 2), 'indented by two spaces');
    assert.is(stableJson(reversed(v)), text, 'independent of key order');
  }
});

test('a build sizes the gzip form in a worker thread: the same tree and manifest as sizing it inline', async () => {
  const { compileAsync } = await import('../generator/compile.ts');
  const { gzipSizeWorker, packageVersion, readAssets } = await import('../generator/io.ts');
  const { GZIP_OPTIONS, gzip } = await import('../generator/emit/userdata.ts');
  for (const [name, input] of inputs) {
    const sync = compileInventory(input);
    const gz = gzipSizeWorker(GZIP_OPTIONS);
    let sizes = 0;
    const sizer = (doc: Uint8Array) => (sizes++, gz.size(doc));
    const tree: OutTree = [];
    const c = await compileAsync(loadForBuild(input), readAssets(), { version: packageVersion() }, sizer, (e) => tree.push(e)).finally(() => gz.close());
    assert.is(sizes, sync.nodes.length, `${name}: one document per node went to the worker`);
    assert.equal(c.manifest, sync.manifest, `${name}: manifest`);
    assert.is(c.files, tree.length, `${name}: entries counted`);
    tree.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    assert.equal(tree.map((e) => e.path), sync.tree.map((e) => e.path), `${name}: paths`);
    tree.forEach((e, i) => assert.equal(e, sync.tree[i], `${name}: ${e.path}`));
  }
  // The worker's sizes come back in order and are gzip()'s, for small, empty and large documents.
  const gz = gzipSizeWorker(GZIP_OPTIONS);
  const docs = Array.from({ length: 300 }, (_, i) => new TextEncoder().encode(i % 7 === 0 ? '' : `doc ${i}\n`.repeat(i * 37)));
  try {
    assert.equal(await Promise.all(docs.map((d) => gz.size(d))), docs.map((d) => gzip(d).length));
  } finally {
    await gz.close();
  }
  // Once the thread is gone (closed, or failed), documents are sized inline: the same numbers.
  assert.equal(await Promise.all(docs.slice(0, 20).map((d) => gz.size(d))), docs.slice(0, 20).map((d) => gzip(d).length));
});

test('a small fleet is built on one thread (no writer, no gzip thread): the same tree and manifest', async () => {
  const { compileAsync } = await import('../generator/compile.ts');
  const { SMALL_FLEET, writerThreads } = await import('../generator/cli/build.ts');
  const { inlineGzipSizer, packageVersion, readAssets } = await import('../generator/io.ts');
  const { GZIP_OPTIONS } = await import('../generator/emit/userdata.ts');
  assert.is(writerThreads(1, 2), 0, 'one node: written inline');
  assert.is(writerThreads(SMALL_FLEET - 1, 2), 0, 'below SMALL_FLEET: inline');
  assert.is(writerThreads(SMALL_FLEET, 2), 1, 'from SMALL_FLEET: a writer thread');
  assert.is(writerThreads(10000, 2), 2, 'a large fleet on two cores: two');
  assert.is(writerThreads(10000, 1), 1, 'one core: one');
  for (const [name, input] of inputs) {
    const sync = compileInventory(input);
    const gz = inlineGzipSizer(GZIP_OPTIONS);
    const tree: OutTree = [];
    const c = await compileAsync(loadForBuild(input), readAssets(), { version: packageVersion() }, gz.size, (e) => tree.push(e)).finally(() => gz.close());
    assert.equal(c.manifest, sync.manifest, `${name}: manifest`);
    tree.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    assert.equal(tree, sync.tree, `${name}: entries`);
  }
});

test.run();
