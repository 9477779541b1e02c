// `pigen bundle verify`: reads a bundle as a stream (multi-member gzip → tar) and checks, in this
// order, reporting the first problem found:
//  1. structure: every entry under the single top directory `pigsty/`, no absolute or `..` paths,
//     only regular files and the directories pigen makes, with its modes (644, 755) and owner
//     (0:0), no duplicates, `repo_complete` the last entry; the gzip header pigen writes;
//  2. `repo_complete` equals sha256(manifest.sha256);
//  3. every manifest.sha256 line matches its file, and every file is in it (manifest.size too);
//  4. every manifest.size line matches its file's size, and it lists exactly the files of
//     manifest.sha256 but itself;
//  5. the APT index: Release checksums of Packages/Packages.gz, Packages.gz = gzip(Packages), and
//     each Packages stanza's Filename exists with its Size and SHA256; every .deb has a stanza.
// Files stream through sha256; only the small index files are kept in memory.

import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGunzip, gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { byCodeUnit } from '../util/text.js';
import { MARKER, SIZES, SUMS, TOP } from './build.js';
import { get, installableNames, parsePackages } from './deb.js';

export interface VerifyResult {
  ok: boolean;
  /** The first problem, when not ok. */
  error?: string;
  /** How many problems were found (after the first structural one, checking stops). */
  problems: number;
  files: number;
  bytes: number;
  debs: number;
  manifestSha256?: string;
  /** The names apt can install from it: each Package of its APT index, and what they provide. */
  packages?: string[];
}

/** Index files kept in memory to check their content (they are small). */
const KEEP = new Set(['Packages', 'Packages.gz', 'Release', SIZES, SUMS, MARKER]);
const KEEP_LIMIT = 512 << 20;

export async function verifyBundle(input: AsyncIterable<Uint8Array>): Promise<VerifyResult> {
  // (The names apt can install: read from the APT index at the end; empty until then.)
  const names = new Set<string>();
  const files = new Map<string, { size: number; sha256: string }>();
  const dirs = new Set<string>();
  const kept = new Map<string, Uint8Array>();
  const order: string[] = [];
  let bytes = 0;
  let structural: string | undefined;
  const fail = (msg: string) => {
    structural ??= msg;
  };

  const gunzip = createGunzip();
  const ex = extract();
  // (The gzip header as pigen writes it: deflate, no flags (no name, comment or extra field), no
  // mtime; what gunzip ignores.)
  let header: string | undefined;
  async function* headerChecked(): AsyncGenerator<Uint8Array> {
    let head = Buffer.alloc(0);
    for await (const c of input) {
      if (head.length < 10) {
        head = Buffer.concat([head, c]);
        if (head.length >= 10 && !(head[0] === 0x1f && head[1] === 0x8b && head[2] === 8 && head[3] === 0 && head.readUInt32LE(4) === 0)) {
          header = `its gzip header is not pigen's (${head.subarray(0, 10).toString('hex')}: a name, a comment, flags or a time set)`;
        }
      }
      yield c;
    }
  }
  const src = Readable.from(headerChecked());
  src.on('error', (e) => gunzip.destroy(e));
  src.pipe(gunzip);
  gunzip.on('error', (e) => ex.destroy(e));
  gunzip.pipe(ex);
  try {
    for await (const entry of ex) {
      const h = entry.header;
      const name = h.name;
      order.push(name);
      if (structural) {
        entry.resume();
        continue;
      }
      if (order.length === 1 && !(h.type === 'directory' && name.replace(/\/$/, '') === TOP)) fail(`first entry is ${name}, not the top directory ${TOP}/`);
      if (!name.startsWith(`${TOP}/`)) fail(`entry ${name} is outside the top directory ${TOP}/`);
      const rel = name.slice(TOP.length + 1).replace(/\/$/, '');
      if (name.startsWith('/') || rel.split('/').some((s) => s === '..' || s === '.')) fail(`entry ${name} has an unsafe path`);
      if (h.type !== 'file' && h.type !== 'directory') fail(`entry ${name} is a ${h.type}, not a regular file or directory`);
      if (files.has(rel) || dirs.has(rel)) fail(`entry ${name} appears twice`);
      // (Owners and modes as pigen writes them: tar -x as root applies them.)
      const mode = (h.mode ?? 0) & 0o7777;
      if (h.type === 'directory' && mode !== 0o755) fail(`directory ${name} has mode ${mode.toString(8)}, not 755`);
      if (h.type === 'file' && mode !== 0o644) fail(`entry ${name} has mode ${mode.toString(8)}, not 644`);
      if (h.uid !== 0 || h.gid !== 0) fail(`entry ${name} is owned by ${h.uid}:${h.gid}, not root (0:0)`);
      // (The directories pigen makes: the top one, and repodata/ of an rpm repo.)
      if (h.type === 'directory' && rel !== '' && rel !== 'repodata') fail(`directory ${name} is not one pigen makes`);
      if (h.type === 'directory') dirs.add(rel);
      if (files.has('repo_complete')) fail(`entry ${name} follows repo_complete, which must be the last entry`);
      if (structural || h.type === 'directory') {
        entry.resume();
        continue;
      }
      const hash = createHash('sha256');
      const keep = KEEP.has(rel) && (h.size ?? 0) <= KEEP_LIMIT;
      const parts: Uint8Array[] = [];
      let size = 0;
      for await (const c of entry) {
        hash.update(c as Uint8Array);
        size += (c as Uint8Array).length;
        if (keep) parts.push(c as Uint8Array);
      }
      bytes += size;
      files.set(rel, { size, sha256: hash.digest('hex') });
      if (keep) kept.set(rel, Buffer.concat(parts));
    }
  } catch (e) {
    const last = order[order.length - 1];
    const msg = (e as Error).message;
    return done(`truncated or corrupt bundle: ${msg}${last ? ` (at or after entry ${last})` : ''}`, 1);
  }

  const result = (problems: string[]) => done(problems[0], problems.length);
  function done(error: string | undefined, problems: number): VerifyResult {
    return {
      ok: !error,
      ...(error ? { error } : {}),
      problems: error ? Math.max(1, problems) : 0,
      files: files.size,
      bytes,
      debs: [...files.keys()].filter((k) => k.endsWith('.deb')).length,
      ...(kept.has(SUMS) ? { manifestSha256: createHash('sha256').update(kept.get(SUMS)!).digest('hex') } : {}),
      ...(names.size ? { packages: [...names].sort(byCodeUnit) } : {}),
    };
  }
  if (structural) return done(structural, 1);
  if (header) return done(header, 1);
  if (order.length === 0) return done('empty archive: no entries', 1);

  const problems: string[] = [];
  const manifest = kept.get(SUMS);
  const sizes = kept.get(SIZES);
  const marker = kept.get(MARKER);
  if (!manifest) problems.push('manifest.sha256 is missing');
  if (!sizes) problems.push('manifest.size is missing');
  if (!marker) problems.push('repo_complete is missing (an incomplete bundle)');
  if (order[order.length - 1] !== `${TOP}/repo_complete` && marker) problems.push('repo_complete is not the last entry');
  if (problems.length) return result(problems);

  const manifestSha = createHash('sha256').update(manifest!).digest('hex');
  const markerText = Buffer.from(marker!).toString('utf8').trim();
  if (markerText !== manifestSha) problems.push(`repo_complete holds ${markerText.slice(0, 64) || '(nothing)'}, but sha256(manifest.sha256) is ${manifestSha}`);

  // manifest.sha256 lines: "<64 hex>  <path>".
  const listed = new Set<string>();
  const lines = Buffer.from(manifest!).toString('utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) return void problems.push(`manifest.sha256 line ${i + 1} is malformed: ${JSON.stringify(line.slice(0, 100))}`);
    const [, sum, path] = m as unknown as [string, string, string];
    listed.add(path);
    const f = files.get(path);
    if (!f) problems.push(`${path}: listed in manifest.sha256 but not in the bundle`);
    else if (f.sha256 !== sum) problems.push(`${path}: sha256 ${f.sha256} does not match manifest.sha256 (${sum})`);
  });
  for (const path of [...files.keys()].sort(byCodeUnit)) {
    if (path !== SUMS && path !== MARKER && !listed.has(path)) problems.push(`${path}: in the bundle but not in manifest.sha256`);
  }

  // manifest.size lines: "<bytes>  <path>", the files of manifest.sha256 but itself.
  const sized = new Set<string>();
  const sizeLines = Buffer.from(sizes!).toString('utf8').split('\n');
  if (sizeLines[sizeLines.length - 1] === '') sizeLines.pop();
  sizeLines.forEach((line, i) => {
    const m = /^(0|[1-9][0-9]*)  (.+)$/.exec(line);
    if (!m) return void problems.push(`manifest.size line ${i + 1} is malformed: ${JSON.stringify(line.slice(0, 100))}`);
    const [, size, path] = m as unknown as [string, string, string];
    if (sized.has(path)) problems.push(`${path}: listed twice in manifest.size`);
    sized.add(path);
    const f = files.get(path);
    if (path === SIZES || !listed.has(path)) problems.push(`${path}: listed in manifest.size, which lists only the other files of manifest.sha256`);
    else if (!f) problems.push(`${path}: listed in manifest.size but not in the bundle`);
    else if (String(f.size) !== size) problems.push(`${path}: size ${f.size} does not match manifest.size (${size})`);
  });
  if (!listed.has(SIZES)) problems.push('manifest.size is not listed in manifest.sha256');
  for (const path of [...listed].sort(byCodeUnit)) {
    if (path !== SIZES && !sized.has(path)) problems.push(`${path}: listed in manifest.sha256 but not in manifest.size`);
  }

  // APT index.
  const debs = [...files.keys()].filter((k) => !k.includes('/') && k.endsWith('.deb'));
  const packages = kept.get('Packages');
  if (debs.length && !packages) problems.push(`the bundle has ${debs.length} .deb files but no Packages index`);
  if (packages) {
    const gz = kept.get('Packages.gz');
    if (!gz) problems.push('Packages.gz is missing');
    else {
      let plain: Uint8Array | undefined;
      try {
        plain = gunzipSync(gz);
      } catch (e) {
        problems.push(`Packages.gz does not decompress: ${(e as Error).message}`);
      }
      if (plain && Buffer.compare(Buffer.from(plain), Buffer.from(packages)) !== 0) problems.push('Packages.gz does not decompress to Packages');
    }
    const release = kept.get('Release');
    if (!release) problems.push('Release is missing');
    else checkRelease(Buffer.from(release).toString('utf8'), files, problems);
    const described = new Set<string>();
    for (const st of parsePackages(Buffer.from(packages).toString('utf8'))) {
      const pkg = get(st, 'Package') ?? '?';
      names.add(pkg);
      for (const name of installableNames(st)) names.add(name);
      const fn = (get(st, 'Filename') ?? '').replace(/^\.\//, '');
      const f = files.get(fn);
      described.add(fn);
      if (!fn) problems.push(`Packages: stanza for ${pkg} has no Filename`);
      else if (!f) problems.push(`Packages: ${pkg} points at ${fn}, which is not in the bundle`);
      else {
        if (get(st, 'Size') !== String(f.size)) problems.push(`Packages: ${fn} has Size ${get(st, 'Size')}, the file has ${f.size} bytes`);
        if (get(st, 'SHA256') !== f.sha256) problems.push(`Packages: ${fn} has SHA256 ${get(st, 'SHA256')}, the file has ${f.sha256}`);
      }
    }
    for (const d of debs) if (!described.has(d)) problems.push(`${d}: not described in Packages`);
  }
  return result(problems);
}

function checkRelease(text: string, files: Map<string, { size: number; sha256: string }>, problems: string[]): void {
  const m = /^SHA256:\n((?:[ \t].*\n?)*)/m.exec(text);
  if (!m) return void problems.push('Release has no SHA256 section');
  for (const line of m[1]!.split('\n').filter((l) => l.trim())) {
    const [sum, size, name] = line.trim().split(/\s+/);
    const f = files.get(name ?? '');
    if (!f) problems.push(`Release lists ${name}, which is not in the bundle`);
    else if (f.sha256 !== sum || String(f.size) !== size) problems.push(`Release: ${name} checksum or size does not match the file`);
  }
}
