// .deb control data and the APT flat-repo index (Packages, Packages.gz, Release) pigen writes
// itself. A .deb is an ar archive: debian-binary, control.tar[.gz|.xz|.zst], data.tar[...]. The
// control member is small, so it is decompressed in memory (zlib for gzip, xz-decompress (WASM)
// for xz, fzstd (pure JS) for zstd); the data member is never decompressed.

import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { extract } from 'tar-stream';
import xzDecompress from 'xz-decompress';
import { concat, readAr } from './ar.js';

export class DebError extends Error {}

/** The largest control member pigen accepts (real ones are a few KiB). */
export const MAX_CONTROL = 16 << 20;

/** Whether an ar member is the control tarball, and how it is compressed. */
export function controlMember(name: string): 'none' | 'gz' | 'xz' | 'zst' | null {
  const m = /^control\.tar(?:\.(gz|xz|zst))?$/.exec(name);
  if (!m) return null;
  return (m[1] as 'gz' | 'xz' | 'zst' | undefined) ?? 'none';
}

export async function decompress(kind: 'none' | 'gz' | 'xz' | 'zst', data: Uint8Array): Promise<Uint8Array> {
  try {
    switch (kind) {
      case 'none':
        return data;
      case 'gz':
        return new Uint8Array(gunzipSync(data));
      case 'zst':
        return zstdDecompress(data);
      case 'xz': {
        const web = new Blob([new Uint8Array(data)]).stream() as unknown as ReadableStream<Uint8Array>;
        const out = new xzDecompress.XzReadableStream(web);
        const parts: Uint8Array[] = [];
        const reader = out.getReader();
        for (;;) {
          const r = await reader.read();
          if (r.done) break;
          parts.push(r.value);
        }
        return concat(parts);
      }
    }
  } catch (e) {
    throw new DebError(`cannot decompress control.tar${kind === 'none' ? '' : '.' + kind}: ${(e as Error).message}`);
  }
}

/** The `control` file inside a control tarball. */
export async function controlFromTar(tar: Uint8Array): Promise<string> {
  const ex = extract();
  let found: string | undefined;
  const done = (async () => {
    for await (const entry of ex) {
      const name = entry.header.name.replace(/^\.\//, '');
      if (name === 'control' && entry.header.type === 'file') {
        const parts: Buffer[] = [];
        for await (const c of entry) parts.push(c as Buffer);
        found = Buffer.concat(parts).toString('utf8');
      } else entry.resume();
    }
  })();
  Readable.from([Buffer.from(tar)]).pipe(ex);
  try {
    await done;
  } catch (e) {
    throw new DebError(`bad control tarball: ${(e as Error).message}`);
  }
  if (found === undefined) throw new DebError('control tarball has no ./control file');
  return found;
}

/** The control text of a whole .deb in memory (tests; the bundler streams with ArParser). */
export async function debControl(deb: Uint8Array): Promise<string> {
  const { members, data } = readAr(deb, (n) => controlMember(n) !== null);
  if (members[0]?.name !== 'debian-binary') throw new DebError('not a .deb: first member is not debian-binary');
  const name = members.find((m) => controlMember(m.name) !== null)?.name;
  if (!name) throw new DebError('not a .deb: no control.tar member');
  return controlFromTar(await decompress(controlMember(name)!, data.get(name)!));
}

/** A control stanza as ordered fields; continuation lines stay part of their field's value. */
export type Fields = [string, string][];

export function parseControl(text: string): Fields {
  const out: Fields = [];
  for (const line of text.replace(/\r\n/g, '\n').split('\n')) {
    // A control file has one stanza: a blank line after it ends it.
    if (line.trim() === '') {
      if (out.length) break;
      continue;
    }
    if (line.startsWith('#')) continue;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      const last = out[out.length - 1];
      if (!last) throw new DebError('control file starts with a continuation line');
      last[1] += '\n' + line;
      continue;
    }
    const i = line.indexOf(':');
    if (i <= 0) throw new DebError(`bad control line: ${JSON.stringify(line.slice(0, 80))}`);
    out.push([line.slice(0, i), line.slice(i + 1).trim()]);
  }
  for (const k of ['Package', 'Version', 'Architecture']) {
    if (!get(out, k)) throw new DebError(`control file has no ${k} field`);
  }
  return out;
}

export const get = (f: Fields, k: string): string | undefined => f.find(([n]) => n.toLowerCase() === k.toLowerCase())?.[1];

/**
 * The names apt can install a package by: its Package, and each name its Provides gives
 * (`Provides: a (= 1), b:any`: the names, without versions or architecture qualifiers).
 */
export function installableNames(f: Fields): string[] {
  const names = [get(f, 'Package') ?? ''];
  for (const p of (get(f, 'Provides') ?? '').split(',')) names.push(p.trim().split(/[\s(:]/)[0]!);
  return names.filter(Boolean);
}

export interface FileSums {
  size: number;
  sha256: string;
  /** Written only when given: APT needs Size and SHA256 (MD5 and SHA1 are weak hashes it does not trust on their own). */
  md5?: string;
  sha1?: string;
}

/** Fields pigen writes itself; any copy in the control file is dropped. */
const OURS = new Set(['filename', 'size', 'md5sum', 'sha1', 'sha256', 'sha512', 'description-md5']);

/**
 * One Packages stanza: Package first, the control fields in their order, then Filename, Size and
 * the checksums, then Description last (as apt-ftparchive and dpkg-scanpackages place it). The
 * bundler gives SHA256 only: apt needs no other, and MD5 and SHA1 of every package would cost
 * three times the hashing on the bundle's main thread (MD5 runs at a third of SHA-256's speed on
 * CPUs with SHA extensions).
 */
export function packagesStanza(fields: Fields, filename: string, sums: FileSums): string {
  const lines: string[] = [];
  const put = (k: string, v: string) => lines.push(v.startsWith('\n') ? `${k}:${v}` : `${k}: ${v}`);
  put('Package', get(fields, 'Package')!);
  let description: [string, string] | undefined;
  for (const [k, v] of fields) {
    const lk = k.toLowerCase();
    if (lk === 'package' || OURS.has(lk)) continue;
    if (lk === 'description') description = [k, v];
    else put(k, v);
  }
  put('Filename', `./${filename}`);
  put('Size', String(sums.size));
  if (sums.md5) put('MD5sum', sums.md5);
  if (sums.sha1) put('SHA1', sums.sha1);
  put('SHA256', sums.sha256);
  if (description) put(description[0], description[1]);
  return lines.join('\n') + '\n';
}

/** Packages: stanzas separated by blank lines, in the (sorted) order given. */
export function packagesIndex(stanzas: string[]): string {
  return stanzas.join('\n');
}

/** Parses a Packages file into stanzas of fields (for verify). */
export function parsePackages(text: string): Fields[] {
  return text
    .split(/\n\s*\n/)
    .filter((s) => s.trim())
    .map((s) => {
      const f: Fields = [];
      for (const line of s.split('\n')) {
        if (line.startsWith(' ') || line.startsWith('\t')) {
          const last = f[f.length - 1];
          if (last) last[1] += '\n' + line;
          continue;
        }
        const i = line.indexOf(':');
        if (i > 0) f.push([line.slice(0, i), line.slice(i + 1).trim()]);
      }
      return f;
    });
}

/** gzip with a fixed header (no name, mtime 0): the same input gives the same bytes. */
export const gzipFixed = (b: Uint8Array, level = 9) => new Uint8Array(gzipSync(b, { level }));

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** RFC 2822 date in UTC as APT writes it: "Thu, 01 Jan 1970 00:00:00 UTC". */
export function rfc2822(epoch: number): string {
  const d = new Date(epoch * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} UTC`;
}

/**
 * Release of a flat repo: metadata and the MD5Sum/SHA1/SHA256 of each index file. No
 * Architectures field: APT then takes the index for any architecture (a repo of only `all`
 * packages would otherwise be skipped on amd64). Unsigned: clients use `[trusted=yes]` (§2.4).
 */
export function releaseFile(opts: { epoch: number; origin: string; files: { name: string; size: number; md5: string; sha1: string; sha256: string }[] }): string {
  const width = Math.max(1, ...opts.files.map((f) => String(f.size).length));
  const block = (title: string, sum: (f: (typeof opts.files)[number]) => string) =>
    `${title}:\n` + opts.files.map((f) => ` ${sum(f)} ${String(f.size).padStart(width)} ${f.name}`).join('\n') + '\n';
  return (
    `Origin: ${opts.origin}\n` +
    `Label: ${opts.origin}\n` +
    `Date: ${rfc2822(opts.epoch)}\n` +
    `Description: ${opts.origin} offline repository built by pigen\n` +
    block('MD5Sum', (f) => f.md5) +
    block('SHA1', (f) => f.sha1) +
    block('SHA256', (f) => f.sha256)
  );
}
