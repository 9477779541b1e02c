// Emit stage: the output tree (rootfs per node, user-data, meta-data, manifest.json) as values.
// io.ts writes it atomically; nothing here touches the filesystem.

import { sha256 } from '../util/hash.js';
import type { OutEntry, OutTree, RenderedNode } from '../types.js';
import { byCodeUnit, isPlainYaml11String } from '../util/text.js';
import { stringify } from 'yaml';
import { cloudConfigText, cloudConfigTextSized, contentGzipLength, filesGzTotal, rememberGzipLength } from './cloud-config.js';
import { CLOUDS, encodeUserData, encodingMetadata, fitSizes, gzip, LIMITS } from './userdata.js';
import { bakedNode, imageJson, packerVars, splitImages, type ImageSpec } from './images.js';

const enc = new TextEncoder();
export { sha256 };

/** Maps an on-node path to its physical location under rootfs (following the node's symlinks). */
function physical(n: RenderedNode, path: string): string {
  for (const l of n.links) if (path === l.path || path.startsWith(l.path + '/')) return l.target + path.slice(l.path.length);
  return path;
}

export interface ManifestFile {
  path: string;
  out: string;
  kind: string;
  mode: string;
  owner: string;
  sha256: string;
  size: number;
  secret?: true;
}

export interface EmitResult {
  tree: OutTree;
  manifest: Record<string, unknown>;
}

export interface EmitOptions {
  version: string;
  inventory: string;
  bundleSha256?: string;
}

/** The size of a document's gzip (GZIP_OPTIONS), computed elsewhere (a worker thread: io.ts). */
export type GzipSizer = (doc: Uint8Array) => Promise<number>;

/** The output tree and manifest of the rendered nodes. */
export function emit(nodes: RenderedNode[], opts: EmitOptions): EmitResult {
  const tree: OutEntry[] = [];
  const { manifest } = emitWith(nodes, opts, undefined, (e) => void tree.push(e)) as Emitted;
  tree.sort((a, b) => byCodeUnit(a.path, b.path));
  return { tree, manifest };
}

/** What emitting to a sink leaves: the manifest, and how many entries went to the sink. */
export interface Emitted {
  manifest: Record<string, unknown>;
  files: number;
}

/** One node's entries and manifest record that do not depend on the image split (its user-data sizes in the record once `sized`). */
interface NodeEmitted {
  entries: OutEntry[];
  record: Record<string, unknown>;
  sized: Promise<void> | undefined;
}

/** What a node's place in the image split adds: its baked user-data, and its record with the image. */
interface NodeBaked {
  /** The split it was made for: the image's name and the files the image holds for the node. */
  key: string;
  entry: OutEntry;
  record: Record<string, unknown>;
}

/**
 * What a long-lived process (pigen build --watch) keeps between builds: per rendered node (the
 * same object as long as its plan is the same: compile.ts), what it emitted, and what its place in
 * the image split added, with the split it was made for. Emit is a function of them and the
 * options, so only the nodes that changed (or whose image did) are emitted again.
 */
export type EmitMemo = WeakMap<RenderedNode, { own: NodeEmitted; baked?: NodeBaked }>;

/**
 * The same as emit(), each entry given to `sink` as soon as it is made (in no particular order;
 * nothing kept here: a writer that works while the rest is emitted), with the level-9 gzips that
 * size each user-data's gzip and files-gz+b64 forms (a third of the work on a large fleet) done
 * by `gzipSize` meanwhile (the same numbers), node by node as each is rendered (compile.ts):
 * node() gives the sink at once what does
 * not depend on the golden-image split (rootfs, user-data, meta-data; the user-data's gzips go to
 * the sizer), so the writer and the sizer work while the later nodes are planned and rendered;
 * finish() splits the images (that needs every node's files), then emits the images, each node's
 * baked user-data and the manifest.
 */
export interface Emitter {
  node(n: RenderedNode): void;
  finish(): Emitted | Promise<Emitted>;
}

export function emitter(opts: EmitOptions, gzipSize: GzipSizer | undefined, sink: (e: OutEntry) => void, memo?: EmitMemo): Emitter {
  let files = 0;
  const put = (e: OutEntry) => {
    files++;
    sink(e);
  };
  const pending: Promise<void>[] = [];
  // A content rendered once for many nodes (a unit file is the same string on every node) is
  // encoded and hashed once; its entries share the bytes (nothing writes into entry data).
  const blobs = new Map<string, { data: Uint8Array; hash: string }>();
  const blob = (content: string) => {
    let b = blobs.get(content);
    if (b === undefined) {
      // (Most contents are one node's own: the map starts again when it grows, so it does not
      // hold every file of a large fleet; the shared ones are back in it at the next node.)
      if (blobs.size >= 4096) blobs.clear();
      const data = enc.encode(content);
      b = { data, hash: sha256(data) };
      blobs.set(content, b);
    }
    return b;
  };
  // Gzip sizes of large contents asked of the sizer, once per content.
  const contentGzips = new Map<string, Promise<number>>();
  const contentGzip = (c: string) => {
    let p = contentGzips.get(c);
    if (p === undefined) contentGzips.set(c, (p = gzipSize!(enc.encode(c)).then((n) => (rememberGzipLength(c, n), n))));
    return p;
  };
  const nodes: RenderedNode[] = [];
  // (Each node's record only: its entries, handed over, are not kept here.)
  const records: Record<string, unknown>[] = [];
  return {
    node(n) {
      let m = memo?.get(n);
      if (m === undefined) {
        m = { own: emitNode(n, opts, gzipSize, blob, contentGzip) };
        memo?.set(n, m);
      }
      for (const e of m.own.entries) put(e);
      if (m.own.sized) pending.push(m.own.sized);
      nodes.push(n);
      records.push(m.own.record);
    },
    finish() {
      // The bake/boot split (emit/images.ts): out/images/<name>.{json,pkrvars.hcl}, user-data.baked.
      const split = splitImages(nodes, { version: opts.version, ...(opts.bundleSha256 ? { bundleSha256: opts.bundleSha256 } : {}) });
      const manifestImages: Record<string, unknown> = {};
      for (const img of split.images) {
        const json = enc.encode(stableJson(imageJson(img)) + '\n');
        const vars = enc.encode(packerVars(img, opts.version));
        const jsonSha = sha256(json);
        const varsSha = sha256(vars);
        put({ path: `images/${img.name}.json`, data: json, mode: 0o644, sha256: jsonSha });
        put({ path: `images/${img.name}.pkrvars.hcl`, data: vars, mode: 0o644, sha256: varsSha });
        manifestImages[img.name] = {
          role: img.role,
          os: img.os,
          hash: img.hash,
          nodes: img.nodes,
          json: { out: `images/${img.name}.json`, size: json.length, sha256: jsonSha },
          pkrvars: { out: `images/${img.name}.pkrvars.hcl`, size: vars.length, sha256: varsSha },
        };
      }
      const manifestNodes: Record<string, unknown> = {};
      nodes.forEach((n, i) => {
        const own = split.byNode.get(n.ip)!;
        // (The split decides the baked user-data: the node's image and which of its files it holds.)
        const key = memo ? `${opts.version}\0${own.image.name}\0${[...own.inImage].join('\0')}` : '';
        const m = memo?.get(n);
        let b = m?.baked;
        if (b === undefined || b.key !== key) {
          b = emitBaked(n, own, opts, records[i]!, key);
          if (m) m.baked = b;
        }
        put(b.entry);
        manifestNodes[n.ip] = b.record;
      });
      const finish = (): Emitted => {
        const manifest = { generator: `pigen ${opts.version}`, inventory: opts.inventory, nodes: manifestNodes, images: manifestImages };
        // (Record by record: a watching process keeps each unchanged record's bytes; and no string
        // of the whole manifest (~0.1 GB at 10,000 nodes) is ever held, with its sorted copy, at
        // the build's peak of memory.)
        put({ path: 'manifest.json', data: manifestBytes(manifest), mode: 0o644 });
        return { manifest, files };
      };
      // (The targets objects are in the manifest already; the sizes land in them before it is written.)
      return pending.length ? Promise.all(pending).then(finish) : finish();
    },
  };
}

function emitWith(nodes: RenderedNode[], opts: EmitOptions, gzipSize: GzipSizer | undefined, sink: (e: OutEntry) => void, memo?: EmitMemo): Emitted | Promise<Emitted> {
  const e = emitter(opts, gzipSize, sink, memo);
  for (const n of nodes) e.node(n);
  return e.finish();
}

/** One node's entries (user-data, meta-data, rootfs) and manifest record without its image. */
function emitNode(
  n: RenderedNode,
  opts: EmitOptions,
  gzipSize: GzipSizer | undefined,
  blob: (content: string) => { data: Uint8Array; hash: string },
  contentGzip: (c: string) => Promise<number>,
): NodeEmitted {
  const entries: OutEntry[] = [];
  let sized: Promise<void> | undefined;
  const base = `nodes/${n.ip}`;
  const files: ManifestFile[] = [];
  for (const l of n.links) {
    // A relative link inside rootfs, so the tree is self-contained.
    const depth = l.path.split('/').length - 2;
    entries.push({ path: `${base}/rootfs${l.path}`, link: '../'.repeat(depth) + l.target.slice(1) });
  }
  for (const f of n.files) {
    const out = `${base}/rootfs${physical(n, f.path)}`;
    const { data, hash } = blob(f.content);
    entries.push({ path: out, data, mode: parseInt(f.mode, 8), sha256: hash });
    // (Keys in code-unit order, here and in the record below: stableJson then copies nothing.)
    files.push(f.secret ? { kind: f.kind, mode: f.mode, out, owner: f.owner, path: f.path, secret: true, sha256: hash, size: data.length } : { kind: f.kind, mode: f.mode, out, owner: f.owner, path: f.path, sha256: hash, size: data.length });
  }
  const { text: udText, filesGz } = cloudConfigTextSized(n, { version: opts.version });
  const ud = enc.encode(udText);
  const targets: Record<string, unknown> = {};
  const plain = ud.length;
  const setTargets = (gz: number, files: number) => {
    const fits = fitSizes({ plain, gzip: gz, 'files-gz+b64': files });
    for (const c of CLOUDS_SORTED) {
      const f = fits[c];
      const metadata = encodingMetadata(c, f.encoding);
      // (Keys in code-unit order: stableJson then copies nothing.)
      targets[c] = metadata
        ? { encoding: f.encoding, fits: f.fits, limit: Number.isFinite(LIMITS[c].bytes) ? LIMITS[c].bytes : null, metadata, size: f.size }
        : { encoding: f.encoding, fits: f.fits, limit: Number.isFinite(LIMITS[c].bytes) ? LIMITS[c].bytes : null, size: f.size };
    }
  };
  const filesKnown = filesGz === undefined ? encodeUserData(udText, 'files-gz+b64').delivered : undefined;
  if (gzipSize) {
    // The document's gzip and those of its large contents not sized before, on the sizer.
    const contents = filesGz?.contents ?? [];
    sized = Promise.all([gzipSize(ud), ...contents.map(contentGzip)]).then(([gz, ...lengths]) => {
      const byContent = new Map(contents.map((c, i) => [c, lengths[i]!]));
      setTargets(gz!, filesKnown ?? filesGzTotal(filesGz!, (c) => byContent.get(c)!));
    });
  } else setTargets(gzip(ud).length, filesKnown ?? filesGzTotal(filesGz!, contentGzipLength));
  const udSha = sha256(ud);
  entries.push({ path: `${base}/user-data`, data: ud, mode: 0o600, sha256: udSha });
  const instanceId = `pigen-${n.nodename}-${udSha.slice(0, 12)}`;
  // (A hostname YAML 1.1 would read as a boolean, number or date (`no`, `0755`): quoted.)
  const host = n.hostname ?? n.nodename;
  const meta = enc.encode(`instance-id: ${instanceId}\nlocal-hostname: ${isPlainYaml11String(host) ? host : stringify(host, { version: '1.1' }).trimEnd()}\n`);
  entries.push({ path: `${base}/meta-data`, data: meta, mode: 0o644, sha256: sha256(meta) });
  const record = {
    cluster: n.cluster,
    files: files.sort((a, b) => byCodeUnit(a.path, b.path)),
    links: n.links,
    modules: n.modules,
    nodename: n.nodename,
    os: n.os.code,
    packages: n.packages,
    services: n.services,
    userData: { out: `${base}/user-data`, sha256: udSha, size: ud.length, targets },
  };
  return { entries, record, sized };
}

/** A node's baked user-data (what its image leaves to boot), and its record with the image. */
function emitBaked(
  n: RenderedNode,
  own: { image: Pick<ImageSpec, 'name' | 'hash' | 'files' | 'packages' | 'repoRemove'>; inImage: Set<string> },
  opts: EmitOptions,
  record: Record<string, unknown>,
  key: string,
): NodeBaked {
  const base = `nodes/${n.ip}`;
  const baked0 = bakedNode(n, own.inImage, own.image);
  const bakedText = cloudConfigText(baked0.node, { version: opts.version, omit: (f) => baked0.fromImage.has(f.path), skipPackages: baked0.node.packages.length === 0 }).replace(
    /\n/,
    `\n# boots from image ${own.image.name}: image files and packages left out\n`,
  );
  const baked = enc.encode(bakedText);
  const bakedSha = sha256(baked);
  return {
    key,
    entry: { path: `${base}/user-data.baked`, data: baked, mode: 0o600, sha256: bakedSha },
    // (`image` in its place among the keys: see emitNode.)
    record: withKey(record, 'image', { files: own.inImage.size, hash: own.image.hash, name: own.image.name, userData: { out: `${base}/user-data.baked`, sha256: bakedSha, size: baked.length } }),
  };
}

// Each node's record as the bytes of its manifest entry (`    "<ip>": {...}`, indented as in the
// manifest), made once per record: a watching process keeps the records of unchanged nodes
// (EmitMemo), so theirs are neither stringified nor encoded again.
const recordBytes = new WeakMap<object, Uint8Array>();

/**
 * The bytes of stableJson(manifest) + '\n', each node's record written once per record object.
 * (JSON.stringify with an indent is compositional: a value nested at depth d is its own text with
 * d indents more after each newline, and no JSON string holds a raw newline.) "nodes" sorts last
 * of the manifest's keys.
 */
function manifestBytes(manifest: { nodes: Record<string, unknown> } & Record<string, unknown>): Uint8Array {
  const head = stableJson({ ...manifest, nodes: {} });
  const ips = Object.keys(manifest.nodes).sort(byCodeUnit);
  if (ips.length === 0 || !head.endsWith('\n  "nodes": {}\n}')) return enc.encode(stableJson(manifest) + '\n');
  const parts: Uint8Array[] = [enc.encode(`${head.slice(0, -'{}\n}'.length)}{\n`)];
  const comma = enc.encode(',\n');
  ips.forEach((ip, i) => {
    const r = manifest.nodes[ip] as object;
    let b = recordBytes.get(r);
    if (b === undefined) recordBytes.set(r, (b = enc.encode(`    ${JSON.stringify(ip)}: ${stableJson(r).replaceAll('\n', '\n    ')}`)));
    if (i) parts.push(comma);
    parts.push(b);
  });
  parts.push(enc.encode('\n  }\n}\n'));
  return Buffer.concat(parts);
}

/** `o` with `key` added among its keys in code-unit order (o's keys in that order already). */
function withKey(o: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let placed = false;
  for (const k of Object.keys(o)) {
    if (!placed && byCodeUnit(key, k) < 0) (out[key] = value), (placed = true);
    out[k] = o[k];
  }
  if (!placed) out[key] = value;
  return out;
}

/** The clouds in code-unit order: the order of a record's `targets` keys. */
const CLOUDS_SORTED = [...CLOUDS].sort(byCodeUnit);

/**
 * Whether every object in `x` is a plain one (or an array) with its keys in code-unit order
 * already: JSON.stringify then writes what stableJson would, with no sorted copy made.
 */
function keysSorted(x: unknown): boolean {
  if (Array.isArray(x)) {
    for (const e of x) if (!keysSorted(e)) return false;
    return true;
  }
  if (x === null || typeof x !== 'object') return true;
  if (Object.getPrototypeOf(x) !== Object.prototype) return false;
  const keys = Object.keys(x);
  // (`<` on strings compares code units: byCodeUnit's order.)
  for (let i = 1; i < keys.length; i++) if (!(keys[i - 1]! < keys[i]!)) return false;
  for (const k of keys) if (!keysSorted((x as Record<string, unknown>)[k])) return false;
  return true;
}

/** JSON with object keys sorted at every level (arrays keep their order). */
export function stableJson(v: unknown): string {
  if (keysSorted(v)) return JSON.stringify(v, null, 2);
  const norm = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(norm);
    if (x && typeof x === 'object') {
      const o: Record<string, unknown> = {};
      for (const k of Object.keys(x).sort(byCodeUnit)) o[k] = norm((x as Record<string, unknown>)[k]);
      return o;
    }
    return x;
  };
  // (A sorted copy stringified natively: three times faster than writing the text by hand.)
  return JSON.stringify(norm(v), null, 2);
}
