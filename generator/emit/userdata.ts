// User-data that fits every cloud: size budgets per target, encodings, MIME multipart.
// Pure: text in, bytes out (gzip through zlib's sync API with a fixed header: no name, mtime 0).

import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { parseDocument, stringify, isMap, isSeq } from 'yaml';
import libqp from 'libqp';
import { shellWord } from '../util/text.js';

export type Cloud = 'aws' | 'azure' | 'gcp' | 'openstack' | 'vsphere' | 'nocloud';
export type Encoding = 'plain' | 'gzip' | 'base64' | 'gzip+base64' | 'files-gz+b64';

/**
 * Size limits of user-data per target. `binary`: the platform delivers arbitrary bytes, so a
 * gzip-compressed document works (cloud-init detects and decompresses it).
 * Sources:
 *  - aws: EC2 user data is limited to 16 KB raw, before base64 (EC2 docs; aws/aws-sdk-java#408).
 *  - azure: customData 65,535 bytes decoded, 87,380 base64 chars (VirtualMachineOSProfile.CustomData).
 *  - gcp: 256 KiB per metadata value, 512 KB total; values are text (Compute API Metadata.Items).
 *    With the metadata key user-data-encoding=base64, cloud-init's GCE datasource base64-decodes
 *    user-data (DataSourceGCE.read_md), then un-gzips it (user_data.convert_string): gzip+base64.
 *  - openstack: Nova's API takes user_data as base64 of at most 65,535 characters (its schema:
 *    format base64, maxLength 65535; openshift/installer#3240): 49,149 bytes decoded.
 *  - vsphere: guestinfo.userdata 524,288 bytes (Broadcom CustomizationCloudinitPrep), a text
 *    value: cloud-init's VMware datasource decodes it as guestinfo.userdata.encoding says
 *    (base64, gzip+base64: DataSourceVMware.decode), so a gzip document goes there only as base64.
 *  - nocloud: a seed file/ISO; no limit.
 */
export const LIMITS: Record<Cloud, { bytes: number; binary: boolean; note: string; /** The limit is on the value as given (its base64 text), not on the decoded bytes. */ encoded?: true }> = {
  aws: { bytes: 16_384, binary: true, note: 'EC2 user data, raw bytes before base64' },
  azure: { bytes: 65_535, binary: true, note: 'Azure customData, decoded bytes' },
  gcp: { bytes: 262_144, binary: false, note: 'GCP metadata value (text; a base64 form counts as its text)', encoded: true },
  openstack: { bytes: 49_149, binary: true, note: 'OpenStack Nova user_data, decoded bytes (65,535 characters of base64)' },
  vsphere: { bytes: 524_288, binary: false, note: 'vSphere guestinfo.userdata (text: the value as set)', encoded: true },
  nocloud: { bytes: Number.POSITIVE_INFINITY, binary: true, note: 'NoCloud seed, no limit' },
};
export const CLOUDS = Object.keys(LIMITS) as Cloud[];

/**
 * The metadata a text target needs set beside a base64 user-data for cloud-init to decode it
 * (cloud-init 22.4: DataSourceGCE.read_md, DataSourceVMware.decode); none for other forms or clouds.
 */
export function encodingMetadata(cloud: Cloud, encoding: Encoding): Record<string, string> | undefined {
  if (encoding !== 'base64' && encoding !== 'gzip+base64') return undefined;
  if (cloud === 'gcp') return { 'user-data-encoding': 'base64' };
  if (cloud === 'vsphere') return { 'guestinfo.userdata.encoding': encoding };
  return undefined;
}

const enc = new TextEncoder();
/** The gzip form's options (also those of the worker that sizes it in a build: io.ts). */
export const GZIP_OPTIONS = { level: 9 } as const;
export const gzip = (b: Uint8Array) => new Uint8Array(gzipSync(b, GZIP_OPTIONS));

// (YAML 1.1, as cloud-init reads it: see emit/cloud-config.ts.)
const YAML_OPTS = { lineWidth: 0, indent: 2, blockQuote: 'literal', version: '1.1' } as const;

/** Contents of at least this many bytes are gzip+base64-encoded in the files-gz+b64 form. */
export const FILES_GZ_MIN = 512;

/** Rewrites every write_files content of FILES_GZ_MIN bytes or more as `encoding: gz+b64`. */
export function encodeFiles(cloudConfig: string): string {
  const { header, body } = splitHeader(cloudConfig);
  return header + encodeFilesBody(body);
}

/** The `#` lines at the top (pigen's header), kept as they are, and the YAML body. */
function splitHeader(text: string): { header: string; body: string } {
  let i = 0;
  while (text.startsWith('#', i)) {
    const nl = text.indexOf('\n', i);
    if (nl < 0) break;
    i = nl + 1;
  }
  // As before: the header lines joined by newlines, then one newline.
  return i === 0 ? { header: '\n', body: text } : { header: text.slice(0, i), body: text.slice(i) };
}

/** The body with its large write_files contents gzip+base64-encoded (YAML parse, edit, stringify). */
function encodeFilesBody(body: string): string {
  const doc = parseDocument(body, { version: '1.1' });
  const wf = doc.get('write_files');
  if (isSeq(wf)) {
    for (const item of wf.items) {
      if (!isMap(item)) continue;
      const content = item.get('content');
      if (typeof content !== 'string' || enc.encode(content).length < FILES_GZ_MIN) continue;
      item.set('content', Buffer.from(gzip(enc.encode(content))).toString('base64'));
      item.set('encoding', 'gz+b64');
    }
  }
  return stringify(doc, YAML_OPTS);
}

// eslint-disable-next-line no-control-regex
const NOT_PLAIN = /["'|>\\\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]/;

/**
 * Bytes of one piece of a cloud-config body (a top-level entry, or `write_files:` with one item)
 * in the files-gz+b64 form. Block collections are their entries one after the other, so the
 * pieces' sizes add up to the whole body's (cloud-config.ts sums them as it writes the YAML).
 */
export function filesGzSize(piece: string): number {
  // A piece shorter than FILES_GZ_MIN bytes holds no content that long (YAML never renders a
  // string shorter than it is), so nothing in it is re-encoded. When it also has only plain
  // scalars (no quotes, block scalars, escapes or control characters) its round trip is itself.
  // (Others may not be: escapes come back spelled differently, whitespace-only lines of a kept
  // block lose their spaces.)
  const bytes = Buffer.byteLength(piece);
  if (bytes < FILES_GZ_MIN && !NOT_PLAIN.test(piece)) return bytes;
  return Buffer.byteLength(encodeFilesBody(piece));
}

/** Encodes a cloud-config in one of the forms; `bytes` is what the platform receives decoded. */
export function encodeUserData(text: string, encoding: Encoding, cloud?: Cloud): { bytes: Uint8Array; delivered: number } {
  const raw = enc.encode(text);
  // What a target's limit counts of a base64 form: the decoded bytes (an API that takes base64 and
  // delivers bytes), or the text itself (a metadata value: GCP, vSphere guestinfo), as written:
  // its final newline too (a value set from the file holds it).
  const b64 = (b: Uint8Array) => ({ bytes: enc.encode(Buffer.from(b).toString('base64') + '\n'), delivered: cloud ? b64Delivered(b.length, cloud) : b.length });
  switch (encoding) {
    case 'plain':
      return { bytes: raw, delivered: raw.length };
    case 'gzip': {
      const g = gzip(raw);
      return { bytes: g, delivered: g.length };
    }
    case 'base64':
      return b64(raw);
    case 'gzip+base64':
      return b64(gzip(raw));
    case 'files-gz+b64': {
      const t = enc.encode(encodeFiles(text));
      return { bytes: t, delivered: t.length };
    }
  }
}

/**
 * Forms a target accepts: binary platforms take a gzip document; text ones (GCP, vSphere) a gzip
 * document as base64 with its encoding key set (encodingMetadata), or per-file gz+b64.
 */
export function candidates(cloud: Cloud): Encoding[] {
  return LIMITS[cloud].binary ? ['plain', 'gzip', 'files-gz+b64'] : ['plain', 'gzip+base64', 'files-gz+b64'];
}

export interface Fit {
  cloud: Cloud;
  encoding: Encoding;
  size: number;
  limit: number;
  fits: boolean;
}

/** The smallest of the forms a target accepts, given their sizes, and whether it fits. */
function smallestFit(cloud: Cloud, sizeOf: (e: Encoding) => number): Fit {
  let best: Fit | undefined;
  for (const e of candidates(cloud)) {
    const size = sizeOf(e);
    if (!best || size < best.size) best = { cloud, encoding: e, size, limit: LIMITS[cloud].bytes, fits: size <= LIMITS[cloud].bytes };
  }
  return best!;
}

/** The smallest accepted form for a target and whether it fits. */
export const bestFit = (text: string, cloud: Cloud): Fit => smallestFit(cloud, (e) => encodeUserData(text, e, cloud).delivered);

/**
 * What weighs most in a cloud-config, largest first: its files (write_files, ntp's template, apt's
 * sources, and `bootcmdFiles`, the files a bootcmd entry carries (RenderedFile via 'bootcmd'),
 * those of them the document holds), each user's SSH keys and the CA certificates. `bytes`, their
 * content's size; `gzip`, that content's gzip alone (what it adds to a gzip form, about: a
 * document's gzip also shares strings across files). Ordered by `by`.
 */
export function largestContributors(text: string, n = 5, by: 'bytes' | 'gzip' = 'bytes', bootcmdFiles: readonly { path: string; content: string }[] = []): { path: string; bytes: number; gzip: number }[] {
  const body = text.replace(/^(#.*\n)+/, '');
  const data = parseDocument(body, { version: '1.1' }).toJS() as {
    write_files?: { path: string; content?: string }[];
    ntp?: { config?: { confpath?: string; template?: string } };
    apt?: { sources?: Record<string, { source?: string; key?: string; filename?: string }> };
    bootcmd?: unknown[];
    users?: unknown[];
    ca_certs?: { trusted?: string[] };
  };
  const list = (data.write_files ?? []).map((f) => ({ path: f.path, content: f.content ?? '' }));
  if (data.ntp?.config?.template) list.push({ path: data.ntp.config.confpath ?? 'ntp', content: data.ntp.config.template });
  for (const [k, src] of Object.entries(data.apt?.sources ?? {})) list.push({ path: `/etc/apt/sources.list.d/${src.filename ?? `${k}.list`}`, content: `${src.source ?? ''}${src.key ?? ''}` });
  // (A file a bootcmd entry writes: found by its content among the entry's words.)
  const words = new Set((data.bootcmd ?? []).flatMap((c) => (Array.isArray(c) ? c : [c])).filter((w): w is string => typeof w === 'string'));
  for (const f of bootcmdFiles) if (words.has(f.content)) list.push(f);
  for (const u of data.users ?? []) {
    const user = u as { name?: string; ssh_authorized_keys?: string[] };
    if (user && typeof user === 'object' && user.ssh_authorized_keys?.length) list.push({ path: `users.${user.name}.ssh_authorized_keys`, content: user.ssh_authorized_keys.join('\n') });
  }
  if (data.ca_certs?.trusted?.length) list.push({ path: 'ca_certs.trusted', content: data.ca_certs.trusted.join('\n') });
  const sized = list.map(({ path, content }) => {
    const b = enc.encode(content);
    return { path, bytes: b.length, gzip: gzip(b).length };
  });
  return sized.sort((a, b) => b[by] - a[by] || b.bytes - a.bytes || (a.path < b.path ? -1 : 1)).slice(0, n);
}

/**
 * MIME multipart form: the cloud-config part without runcmd, and the runcmd steps as a
 * text/x-shellscript part (both run in cloud-init's final stage). The boundary is derived from
 * the content hash, so the output is deterministic (cloud-init's make-mime uses a random one).
 */
export function toMime(text: string): string {
  const lines = text.split('\n');
  const headerEnd = lines.findIndex((l) => !l.startsWith('#'));
  const header = lines.slice(0, headerEnd).join('\n');
  const doc = parseDocument(lines.slice(headerEnd).join('\n'), { version: '1.1' });
  const run = (doc.get('runcmd') as { toJSON(): unknown } | undefined)?.toJSON() as (string | string[])[] | undefined;
  doc.delete('runcmd');
  const cc = `${header}\n${stringify(doc, YAML_OPTS)}`;
  // (Run as cloud-init runs runcmd: one sh script, a failing step does not stop the next ones, so
  // the same user-data behaves the same in either form; a list-form step is quoted word by word.)
  const script = `#!/bin/sh\n# pigen: first-boot steps (the runcmd of the cloud-config part)\n${(run ?? []).map((c) => (Array.isArray(c) ? c.map(shellWord).join(' ') : c)).join('\n')}\n`;
  const boundary = `pigen-${createHash('sha256').update(cc).update('\0').update(script).digest('hex').slice(0, 32)}`;
  const part = (type: string, name: string, body: string) => {
    const t = transferEncoding(body);
    return `--${boundary}\nContent-Type: ${type}; charset="utf-8"\nMIME-Version: 1.0\nContent-Transfer-Encoding: ${t.cte}\nContent-Disposition: attachment; filename="${name}"\n\n${t.body}`;
  };
  return (
    `Content-Type: multipart/mixed; boundary="${boundary}"\nMIME-Version: 1.0\n\n` +
    part('text/cloud-config', 'cloud-config.yaml', cc) +
    '\n' +
    part('text/x-shellscript', 'pigen-firstboot.sh', script) +
    `\n--${boundary}--\n`
  );
}

/**
 * A MIME part's body as it is sent: ASCII as it is (7bit); else quoted-printable (RFC 2045 6.7),
 * which leaves the ASCII as it is, so a cloud-config with a few `—` still gzips as well as the text
 * (base64 doubled its gzip); or base64 where that is shorter (mostly non-ASCII text). (A part with
 * bytes beyond ASCII is never 7bit: cloud-init reads a 7bit part's UTF-8 wrongly, and fails on
 * some characters, µ among them.) Python's email package, as cloud-init uses it, decodes either
 * to the same bytes.
 */
export function transferEncoding(text: string): { cte: '7bit' | 'quoted-printable' | 'base64'; body: string } {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return { cte: '7bit', body: text };
  const qp = quotedPrintable(text);
  const b64 = base64Lines(text);
  return qp.length <= b64.length ? { cte: 'quoted-printable', body: qp } : { cte: 'base64', body: b64 };
}

/**
 * Quoted-printable of a text's UTF-8 (RFC 2045 6.7), by libqp: printable ASCII but `=` as it is,
 * `=XX` for other bytes and for a blank that ends a line, lines of at most 76 characters with `=`
 * soft breaks. Made to fit this document: its lines end in LF (libqp's soft breaks are CRLF), a CR
 * of the text is `=0D` (Python's email would read a literal one as a line end), and a text without
 * a final newline ends with a soft break (the part's end is not read as one). (libqp: nodemailer's
 * codec, rather than one more hand-written one.)
 */
export function quotedPrintable(text: string): string {
  const encoded = libqp.encode(Buffer.from(text, 'utf8')).replaceAll('\r', '=0D');
  // (Line by line: libqp.wrap looks for CRLF, and breaks the LF lines of a whole text anywhere.)
  const wrapped = encoded
    .split('\n')
    .map((line) => libqp.wrap(line, 76).replaceAll('=\r\n', '=\n'))
    .join('\n');
  return wrapped === '' || wrapped.endsWith('\n') ? wrapped : `${wrapped}=\n`;
}

/** base64 of a text's UTF-8 in lines of 76 characters (RFC 2045), each ended by a newline. */
function base64Lines(text: string): string {
  const b = Buffer.from(text, 'utf8').toString('base64');
  let out = '';
  for (let i = 0; i < b.length; i += 76) out += b.slice(i, i + 76) + '\n';
  return out;
}

/** The sizes of the forms candidates() offers (gzip+base64's follows from gzip's). */
export type CandidateSizes = Record<'plain' | 'gzip' | 'files-gz+b64', number>;

/** Per-target fit for every cloud: the smallest form it accepts. */
export function fitSizes(sizes: CandidateSizes): Record<Cloud, Fit> {
  const out = {} as Record<Cloud, Fit>;
  for (const cloud of CLOUDS) out[cloud] = smallestFit(cloud, (e) => (e === 'gzip+base64' ? b64Delivered(sizes.gzip, cloud) : sizes[e as keyof CandidateSizes]));
  return out;
}

/** What a base64 form of `n` bytes counts for a target: its text with the final newline, or the bytes (see encodeUserData). */
const b64Delivered = (n: number, cloud: Cloud) => (LIMITS[cloud].encoded ? 4 * Math.ceil(n / 3) + 1 : n);
