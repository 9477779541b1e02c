// pigen bundle: ar/.deb parsing (gzip, xz, zstd and plain control members), the Packages/Release
// format, reproducible multi-member gzip output, verify, and the generated boot-time installer
// against good, corrupt and truncated bundles (rebased into a temp dir through WWW=...).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { extract as tarExtract, pack as tarPack, type Header } from 'tar-stream';
import { readAr, writeAr } from '../generator/bundle/ar.ts';
import { buildBundle, type BundleInput } from '../generator/bundle/build.ts';
import { debControl, packagesStanza, parseControl, parsePackages, releaseFile } from '../generator/bundle/deb.ts';
import { looksIncompressible, memberLevel, ParallelGzip } from '../generator/bundle/pgzip.ts';
import { ProgressReporter } from '../generator/bundle/progress.ts';
import { verifyBundle } from '../generator/bundle/verify.ts';
import { main } from '../generator/cli/main.ts';
import { makeDeb, needTools, prng, run, tmp, which } from './helpers.ts';
import { cliArgs } from './tree.ts';

const HAVE_DPKG = needTools('bundle .deb tests', 'dpkg-deb', 'tar', 'sha256sum');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function cli(args: string[], env: Record<string, string | undefined> = {}, epoch = 0) {
  let out = '';
  let err = '';
  const code = await main(args, {
    cwd: process.cwd(),
    env: { ...process.env, ...env },
    stdout: { write: (s) => void (out += s), isTTY: false },
    stderr: { write: (s) => void (err += s), isTTY: false },
    epoch,
  });
  return { code, out, err };
}

let work = '';
let debs = '';
const COMPRESSIONS = ['gzip', 'xz', 'zstd', 'none'];
if (HAVE_DPKG) {
  work = tmp('pigen-bundle-');
  for (const z of COMPRESSIONS) makeDeb(work, `pigen-${z}`, z, z === 'gzip' ? 'Depends: pigen-xz (>= 1.0)\n' : '');
  debs = join(work, 'debs');
}

// ── ar and .deb control ──────────────────────────────────────────────────────────────────────

test('ar: writeAr/readAr round trip, odd sizes padded, truncation detected', () => {
  const a = writeAr([
    { name: 'debian-binary', data: new TextEncoder().encode('2.0\n') },
    { name: 'odd', data: new Uint8Array([1, 2, 3]) },
    { name: 'even', data: new Uint8Array([4, 5]) },
  ]);
  const r = readAr(a);
  assert.equal(r.members.map((m) => [m.name, m.size]), [['debian-binary', 4], ['odd', 3], ['even', 2]]);
  assert.equal([...r.data.get('odd')!], [1, 2, 3]);
  assert.equal([...r.data.get('even')!], [4, 5]);
  assert.throws(() => readAr(a.subarray(0, a.length - 1)), /truncated/);
  assert.throws(() => readAr(new TextEncoder().encode('not an archive')), /bad magic/);
});

for (const z of COMPRESSIONS) {
  test(`deb: control from a dpkg-deb -Z${z} package (control.tar${z === 'none' ? '' : '.' + ({ gzip: 'gz', xz: 'xz', zstd: 'zst' } as Record<string, string>)[z]})`, async () => {
    if (!HAVE_DPKG) return;
    const bytes = readFileSync(join(debs, `pigen-${z}_1.0-1_all.deb`));
    const members = readAr(bytes, () => false).members.map((m) => m.name);
    assert.is(members[0], 'debian-binary');
    assert.ok(members[1]!.startsWith('control.tar'), members.join(','));
    if (z === 'xz') assert.is(members[1], 'control.tar.xz');
    if (z === 'zstd') assert.is(members[1], 'control.tar.zst');
    const fields = parseControl(await debControl(bytes));
    assert.is(fields[0]![1], `pigen-${z}`);
    assert.ok(fields.find(([k]) => k === 'Description')![1].includes('\n .\n Second paragraph.'));
  });
}

test('deb: the ar parser agrees with ar(1) and dpkg-deb -f', async () => {
  if (!HAVE_DPKG) return;
  const file = join(debs, 'pigen-xz_1.0-1_all.deb');
  const names = readAr(readFileSync(file), () => false).members.map((m) => m.name);
  if (which('ar')) assert.equal(names, run('ar', ['t', file]).stdout.trim().split('\n')); // binutils, optional
  assert.is(parseControl(await debControl(readFileSync(file))).find(([k]) => k === 'Version')![1], run('dpkg-deb', ['-f', file, 'Version']).stdout.trim());
});

// ── Packages / Release format ────────────────────────────────────────────────────────────────

test('Packages stanza: Package first, control fields, Filename ./, Size, checksums (MD5sum/SHA1 only when given), Description last', () => {
  const fields = parseControl('Package: foo\nVersion: 1:2.3-4\nArchitecture: amd64\nDepends: libc6 (>= 2.36),\n libfoo1\nDescription: short\n long line\nMD5sum: stale\n');
  const s = packagesStanza(fields, 'foo_2.3-4_amd64.deb', { size: 12, md5: 'm'.repeat(32), sha1: 's'.repeat(40), sha256: 'h'.repeat(64) });
  assert.is(
    s,
    'Package: foo\nVersion: 1:2.3-4\nArchitecture: amd64\nDepends: libc6 (>= 2.36),\n libfoo1\nFilename: ./foo_2.3-4_amd64.deb\nSize: 12\n' +
      `MD5sum: ${'m'.repeat(32)}\nSHA1: ${'s'.repeat(40)}\nSHA256: ${'h'.repeat(64)}\nDescription: short\n long line\n`,
  );
  // What the bundler writes: SHA256 alone (all apt needs; each package is hashed once).
  assert.is(
    packagesStanza(fields, 'foo_2.3-4_amd64.deb', { size: 12, sha256: 'h'.repeat(64) }),
    'Package: foo\nVersion: 1:2.3-4\nArchitecture: amd64\nDepends: libc6 (>= 2.36),\n libfoo1\nFilename: ./foo_2.3-4_amd64.deb\nSize: 12\n' +
      `SHA256: ${'h'.repeat(64)}\nDescription: short\n long line\n`,
  );
  const back = parsePackages(s + '\n' + s);
  assert.is(back.length, 2);
  assert.is(back[0]!.find(([k]) => k === 'Filename')![1], './foo_2.3-4_amd64.deb');
  assert.throws(() => parseControl('Version: 1\nArchitecture: all\n'), /no Package field/);
});

test('Release: Date from the epoch, MD5Sum/SHA1/SHA256 blocks', () => {
  const r = releaseFile({ epoch: 86400, origin: 'pigsty', files: [{ name: 'Packages', size: 100, md5: 'a', sha1: 'b', sha256: 'c' }, { name: 'Packages.gz', size: 7, md5: 'd', sha1: 'e', sha256: 'f' }] });
  assert.match(r, /^Date: Fri, 02 Jan 1970 00:00:00 UTC$/m);
  assert.match(r, /^SHA256:\n c 100 Packages\n f   7 Packages.gz\n/m);
  assert.match(r, /^MD5Sum:\n a 100 Packages\n/m);
});

// ── gzip ─────────────────────────────────────────────────────────────────────────────────────

test('parallel gzip: members decompress to the input; output independent of concurrency; fixed headers', async () => {
  const input = new Uint8Array(300_000);
  for (let i = 0; i < input.length; i++) input[i] = (i * 7919) % 251 ^ (i >> 9);
  const compress = async (concurrency: number, pieces: number) => {
    const parts: Uint8Array[] = [];
    const gz = new ParallelGzip({ write: async (b) => void parts.push(b) }, { chunkSize: 64 * 1024, concurrency });
    const step = Math.ceil(input.length / pieces);
    for (let i = 0; i < input.length; i += step) await gz.write(input.subarray(i, i + step));
    await gz.end();
    return { bytes: Buffer.concat(parts), members: gz.members };
  };
  const a = await compress(1, 1);
  const b = await compress(8, 37);
  assert.is(a.members, 5);
  assert.ok(a.bytes.equals(b.bytes), 'same bytes whatever the concurrency and write sizes');
  assert.ok(Buffer.from(gunzipSync(a.bytes)).equals(Buffer.from(input)));
  // Every member: magic, deflate, no flags (no name), mtime 0, OS 3.
  let members = 0;
  for (let i = 0; i + 10 <= a.bytes.length; i++) {
    if (a.bytes[i] === 0x1f && a.bytes[i + 1] === 0x8b && a.bytes[i + 2] === 8 && i % 1 === 0) {
      if (a.bytes.readUInt32LE(i + 4) === 0 && a.bytes[i + 3] === 0 && a.bytes[i + 9] === 3) members++;
    }
  }
  assert.ok(members >= 5, `found ${members} fixed member headers`);
  assert.equal([...a.bytes.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
});

/** Seeded random bytes (the same on every run). */
function randomBytesSeeded(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

/** Text-like bytes: log lines with counters and words (deflate shrinks them ~5×). */
function textBytes(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  const words = Array.from({ length: 64 }, () => Math.floor(r() * 2 ** 32).toString(36));
  let t = '';
  for (let k = 0; t.length < n; k++) t += `2024-01-01T00:00:${String(k % 60).padStart(2, '0')}Z host-${k % 97} ${words[k % 64]} ${words[(k * 7) % 64]} value=${k}\n`;
  return new TextEncoder().encode(t).subarray(0, n);
}

const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

test('store decision: random and already-compressed bytes are stored, text and repeated patterns deflated; a pure function of the bytes', () => {
  const rnd = randomBytesSeeded(1 << 20, 1);
  const text = textBytes(1 << 20, 2);
  assert.ok(looksIncompressible(rnd), 'random bytes');
  assert.ok(looksIncompressible(rnd.slice()), 'a copy gives the same answer');
  assert.is(memberLevel(rnd, 6), 0, 'stored');
  assert.is(memberLevel(rnd, 9), 0);
  assert.is(memberLevel(rnd, 6, false), 6, 'adaptive off: always the level asked for');
  assert.not.ok(looksIncompressible(text), 'text');
  assert.is(memberLevel(text, 6), 6);
  // Compressed data (what real .deb data members are: xz, zstd, gzip) is stored; text made of
  // words in random order stands in for real text here (textBytes' lines repeat too regularly:
  // even their gzip output still deflates).
  const r = prng(3);
  const words = Array.from({ length: 500 }, () => Math.floor(r() * 2 ** 32).toString(36));
  let prose = '';
  while (prose.length < 4 << 20) prose += `${words[Math.floor(r() * 500)]} ${words[Math.floor(r() * 500)]} ${Math.floor(r() * 1e6)}\n`;
  assert.not.ok(looksIncompressible(new TextEncoder().encode(prose).subarray(0, 1 << 20)), 'the text itself');
  const gz = new Uint8Array(gzipSync(prose, { level: 9 }));
  assert.ok(gz.length >= 1 << 20);
  assert.ok(looksIncompressible(gz.subarray(0, 1 << 20)), 'its gzip output');
  // High byte entropy but repeated strings deflate finds (a random block repeated every 3,000 or
  // 12,000 bytes): deflated.
  for (const period of [3000, 12000]) {
    const block = randomBytesSeeded(period, period);
    const rep = new Uint8Array(1 << 20);
    for (let i = 0; i < rep.length; i++) rep[i] = block[i % period]!;
    assert.not.ok(looksIncompressible(rep), `random block repeated every ${period} bytes`);
  }
  assert.not.ok(looksIncompressible(new Uint8Array(1 << 20)), 'zeros');
  assert.not.ok(looksIncompressible(cat(text.subarray(0, 512 << 10), rnd.subarray(0, 512 << 10))), 'half text, half random');
  assert.not.ok(looksIncompressible(rnd.subarray(0, 5_000)), 'short chunks are always deflated');
});

test('parallel gzip: incompressible chunks become stored members, the same whatever the concurrency; the whole gunzips to the input', async () => {
  const K = 64 << 10;
  // Chunks: 4 text, 4 random, 2 text, 3 random, then a short random tail (deflated: too short to sample).
  const input = cat(textBytes(4 * K, 4), randomBytesSeeded(4 * K, 5), textBytes(2 * K, 6), randomBytesSeeded(3 * K + 1000, 7));
  const compress = async (concurrency: number, pieces: number, adaptive?: boolean) => {
    const parts: Uint8Array[] = [];
    const gz = new ParallelGzip({ write: async (b) => void parts.push(b) }, { chunkSize: K, concurrency, ...(adaptive === undefined ? {} : { adaptive }) });
    const step = Math.ceil(input.length / pieces);
    for (let i = 0; i < input.length; i += step) await gz.write(input.subarray(i, i + step));
    await gz.end();
    return { parts, bytes: Buffer.concat(parts), members: gz.members, stored: gz.stored };
  };
  const a = await compress(1, 1);
  const b = await compress(6, 29);
  assert.ok(a.bytes.equals(b.bytes), 'same bytes whatever the concurrency and write sizes');
  assert.is(a.members, 14);
  assert.is(a.stored, 7);
  assert.ok(Buffer.from(gunzipSync(a.bytes)).equals(Buffer.from(input)));
  // One sink write per member: the stored ones are the full random chunks (a stored deflate block,
  // BTYPE 00, after the fixed header; a little larger than their input), the text ones shrink.
  a.parts.forEach((m, i) => {
    assert.equal([...m.subarray(0, 4)], [0x1f, 0x8b, 8, 0], `member ${i} header`);
    if ([4, 5, 6, 7, 10, 11, 12].includes(i)) {
      assert.is(m[10]! & 6, 0, `member ${i} is stored`);
      assert.ok(m.length > K && m.length < K + 64, `stored member ${i}: ${m.length} bytes`);
    } else if (i < 13) assert.ok(m.length < K / 3, `text member ${i} is deflated: ${m.length} bytes`);
  });
  // adaptive: false deflates every chunk: same content, about the same size.
  const c = await compress(2, 3, false);
  assert.is(c.stored, 0);
  assert.ok(Buffer.from(gunzipSync(c.bytes)).equals(Buffer.from(input)));
  assert.ok(a.bytes.length <= c.bytes.length * 1.002, `${a.bytes.length} vs ${c.bytes.length}`);
});

// ── Bundles ──────────────────────────────────────────────────────────────────────────────────

async function bundleBytes(epoch: number, chunkSize?: number, concurrency?: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  const payload: BundleInput[] = readdirSync(debs)
    .sort()
    .reverse() // the builder sorts
    .map((n) => {
      const data = readFileSync(join(debs, n));
      return { name: n, size: data.length, read: async function* () { for (let i = 0; i < data.length; i += 333) yield data.subarray(i, i + 333); } };
    });
  await buildBundle({ epoch, payload, sink: { write: async (b) => void parts.push(b) }, ...(chunkSize ? { chunkSize } : {}), ...(concurrency ? { concurrency } : {}) });
  return Buffer.concat(parts);
}

test('bundle: tar layout (pigsty/ first, packages, index, manifest, repo_complete last), owners, modes, mtime', async () => {
  if (!HAVE_DPKG) return;
  const file = join(work, 'layout.tgz');
  writeFileSync(file, await bundleBytes(1_700_000_000));
  const list = run('tar', ['--numeric-owner', '-tvzf', file]).stdout.trim().split('\n');
  const names = list.map((l) => l.split(/\s+/).pop());
  assert.equal(names, [
    'pigsty/',
    ...COMPRESSIONS.map((z) => `pigsty/pigen-${z}_1.0-1_all.deb`).sort(),
    'pigsty/Packages',
    'pigsty/Packages.gz',
    'pigsty/Release',
    'pigsty/manifest.size',
    'pigsty/manifest.sha256',
    'pigsty/repo_complete',
  ]);
  for (const l of list) {
    assert.match(l, l.startsWith('d') ? /^drwxr-xr-x 0\/0 / : /^-rw-r--r-- 0\/0 /);
    assert.match(l, /2023-11-1[45] /); // 1_700_000_000 (the day depends on TZ)
  }
  const x = join(work, 'layout');
  mkdirSync(x);
  assert.is(run('tar', ['-xzf', file, '-C', x]).code, 0);
  const repo = join(x, 'pigsty');
  const check = run('sha256sum', ['--strict', '-c', 'manifest.sha256'], { cwd: repo });
  assert.is(check.code, 0, check.stdout + check.stderr);
  assert.is(readFileSync(join(repo, 'repo_complete'), 'utf8'), sha(readFileSync(join(repo, 'manifest.sha256'))) + '\n');
  // manifest.sha256: every file but itself and the marker (manifest.size included);
  // manifest.size: "<bytes>  <path>" of the same files but itself, same order.
  const all = readdirSync(repo).sort();
  const sums = readFileSync(join(repo, 'manifest.sha256'), 'utf8').trimEnd().split('\n').map((l) => l.slice(66));
  assert.equal(sums, all.filter((n) => n !== 'manifest.sha256' && n !== 'repo_complete'));
  const sizes = readFileSync(join(repo, 'manifest.size'), 'utf8').trimEnd().split('\n');
  assert.equal(sizes.map((l) => l.replace(/^\d+  /, '')), sums.filter((n) => n !== 'manifest.size'));
  for (const l of sizes) {
    const [, size, name] = /^(\d+)  (.+)$/.exec(l)!;
    assert.is(run('stat', ['-c', '%s', join(repo, name!)]).stdout.trim(), size, `${name}: stat -c %s`);
  }
  const packages = readFileSync(join(repo, 'Packages'));
  assert.ok(Buffer.from(gunzipSync(readFileSync(join(repo, 'Packages.gz')))).equals(packages));
  const stanzas = parsePackages(packages.toString());
  assert.is(stanzas.length, 4);
  for (const st of stanzas) {
    const f = st.find(([k]) => k === 'Filename')![1];
    const data = readFileSync(join(repo, f));
    const get = (k: string) => st.find(([n]) => n === k)![1];
    assert.is(get('Size'), String(data.length));
    assert.is(get('SHA256'), sha(data));
    assert.equal(st.filter(([n]) => n === 'MD5sum' || n === 'SHA1'), [], 'SHA256 only');
  }
  assert.is(stanzas.find((s) => s[0]![1] === 'pigen-gzip')!.find(([k]) => k === 'Depends')![1], 'pigen-xz (>= 1.0)');
  const release = readFileSync(join(repo, 'Release'), 'utf8');
  assert.ok(release.includes(` ${sha(packages)} ${packages.length} Packages`));
  if (which('dpkg-scanpackages')) {
    // Optional cross-check (dpkg-dev); the format itself is asserted above.
    const ref = run('dpkg-scanpackages', ['-m', '.', '/dev/null'], { cwd: repo }).stdout;
    const names = (t: string) => parsePackages(t).map((s) => [s.find(([k]) => k === 'Package')![1], s.find(([k]) => k === 'SHA256')![1]]).sort();
    assert.equal(names(packages.toString()), names(ref));
  }
});

test('bundle: reproducible (same epoch → same bytes, whatever chunking or concurrency); another epoch differs', async () => {
  if (!HAVE_DPKG) return;
  const a = await bundleBytes(0);
  const b = await bundleBytes(0);
  assert.ok(a.equals(b), 'two builds are byte-identical');
  const small1 = await bundleBytes(0, 8192, 1);
  const small8 = await bundleBytes(0, 8192, 8);
  assert.ok(small1.equals(small8), 'concurrency does not change the output');
  assert.ok(Buffer.from(gunzipSync(small1)).equals(Buffer.from(gunzipSync(a))), 'same tar inside, whatever the member size');
  const c = await bundleBytes(1234567890);
  assert.not.ok(a.equals(c), 'SOURCE_DATE_EPOCH changes the bytes');
});

test('bundle: packages of random bytes are stored, text deflated; the bundle extracts (tar -xzf), checks (sha256sum -c) and verifies; same bytes whatever the concurrency', async () => {
  if (!HAVE_DPKG) return;
  const dir = join(work, 'mixed');
  const pkgs = join(dir, 'debs');
  mkdirSync(pkgs, { recursive: true });
  const deb = (name: string, data: Uint8Array, z: string) => {
    const root = join(dir, `src-${name}`);
    mkdirSync(join(root, 'DEBIAN'), { recursive: true });
    mkdirSync(join(root, 'usr/share', name), { recursive: true });
    writeFileSync(join(root, 'usr/share', name, 'data.bin'), data);
    writeFileSync(join(root, 'DEBIAN/control'), `Package: ${name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: pigen <pigen@example.com>\nDescription: ${name}\n`);
    const r = run('dpkg-deb', ['--root-owner-group', `-Z${z}`, '--build', root, join(pkgs, `${name}_1.0-1_all.deb`)]);
    assert.is(r.code, 0, r.stderr);
  };
  deb('noise', randomBytesSeeded(3 << 20, 11), 'none'); // random payload, stored by dpkg-deb as is
  deb('logs', textBytes(3 << 20, 12), 'none'); // text payload, uncompressed in the .deb
  deb('packed', textBytes(3 << 20, 13), 'xz'); // a normal .deb: xz inside
  const build = async (concurrency: number, adaptive?: boolean) => {
    const parts: Uint8Array[] = [];
    const payload: BundleInput[] = readdirSync(pkgs).map((n) => {
      const data = readFileSync(join(pkgs, n));
      return { name: n, size: data.length, read: async function* () { for (let i = 0; i < data.length; i += 100_003) yield data.subarray(i, i + 100_003); } };
    });
    const res = await buildBundle({ epoch: 0, payload, sink: { write: async (b) => void parts.push(b) }, concurrency, ...(adaptive === undefined ? {} : { adaptive }) });
    return { bytes: Buffer.concat(parts), res };
  };
  const a = await build(1);
  const b = await build(7);
  assert.ok(a.bytes.equals(b.bytes), 'same bytes whatever the concurrency');
  // The 1 MiB chunks wholly inside the 3 MiB of noise are stored (the two that share bytes with
  // the text and the headers around it are deflated).
  assert.is(a.res.stored, 2, `stored ${a.res.stored} of ${a.res.members}`);
  const plain = await build(2, false);
  assert.is(plain.res.stored, 0);
  assert.ok(Buffer.from(gunzipSync(a.bytes)).equals(Buffer.from(gunzipSync(plain.bytes))), 'the same tar inside');
  assert.ok(a.bytes.length <= plain.bytes.length * 1.001, `${a.bytes.length} vs ${plain.bytes.length} bytes`);
  const file = join(dir, 'mixed.tgz');
  writeFileSync(file, a.bytes);
  const x = join(dir, 'x');
  mkdirSync(x);
  assert.is(run('tar', ['-xzf', file, '-C', x]).code, 0);
  const check = run('sha256sum', ['--strict', '-c', 'manifest.sha256'], { cwd: join(x, 'pigsty') });
  assert.is(check.code, 0, check.stdout + check.stderr);
  for (const n of readdirSync(pkgs)) assert.ok(readFileSync(join(x, 'pigsty', n)).equals(readFileSync(join(pkgs, n))), n);
  const v = await verifyBundle((async function* () { for (let i = 0; i < a.bytes.length; i += 65_537) yield a.bytes.subarray(i, i + 65_537); })());
  assert.ok(v.ok, v.error);
  assert.is(v.debs, 3);
});

test('CLI: pigen bundle writes the default name atomically, twice identical; verify says ok', async () => {
  if (!HAVE_DPKG) return;
  const outDir = join(work, 'cli');
  mkdirSync(outDir);
  const r1 = await cli(['bundle', '--from', debs, '-o', outDir, '--quiet']);
  assert.is(r1.code, 0, r1.err);
  const name = 'pigsty-pkg-v4.5.0.d12.x86_64.tgz';
  assert.equal(readdirSync(outDir), [name], 'no temp file left beside the output');
  const first = readFileSync(join(outDir, name));
  const r2 = await cli(['bundle', '--from', debs, '-o', join(outDir, name), '--quiet', '--json']);
  assert.is(r2.code, 0, r2.err);
  assert.is(JSON.parse(r2.out).debs, 4);
  assert.ok(first.equals(readFileSync(join(outDir, name))));
  const r3 = await cli(['bundle', '--from', debs, '-o', outDir, '--quiet', '--json']);
  assert.is(JSON.parse(r3.out).out, join(outDir, name), '-o DIR --json names the file written');
  const v = await cli(['bundle', 'verify', join(outDir, name)]);
  assert.is(v.code, 0, v.err);
  const vd = await cli(['bundle', 'verify', outDir, '--json']);
  assert.is(vd.code, 2);
  assert.match(JSON.parse(vd.out).error, /it is a directory/);
  assert.match(v.out, /ok: 10 files \(4 \.deb\)/);
  const e = await cli(['bundle', '--from', debs, '-o', join(outDir, 'e.tgz'), '--quiet'], {}, 86400);
  assert.is(e.code, 0, e.err);
  assert.not.ok(readFileSync(join(outDir, 'e.tgz')).equals(first));
});

test('CLI: --from bundles packages, the Pigsty source tarball and repo_url_packages files; never the inventory, the secrets file or other files', async () => {
  if (!HAVE_DPKG) return;
  const dir = tmp('pigen-from-');
  const from = join(dir, 'repo');
  mkdirSync(from);
  for (const n of readdirSync(debs)) writeFileSync(join(from, n), readFileSync(join(debs, n)));
  // (The inventory read is beside the directory; a copy of it and a secrets file lie in it.)
  const inv = join(dir, 'pigsty.yml');
  writeFileSync(inv, 'all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n  vars:\n    admin_ip: 10.10.10.10\n    grafana_admin_password: NotInTheBundle42\n    repo_url_packages: [ "https://repo.example.com/pkg/vray-5.1.tar.gz?x=1", { name: "juice.bin", url: "https://repo.example.com/juice" } ]\n');
  writeFileSync(join(from, 'pigsty.yml'), readFileSync(inv));
  writeFileSync(join(from, 'pigsty.secrets.yml'), 'ca_key: NotInTheBundleEither\n');
  writeFileSync(join(from, 'notes.txt'), 'mine\n');
  writeFileSync(join(from, 'pigsty-v4.5.0.tgz'), 'source\n');
  writeFileSync(join(from, 'pigsty-pkg-v4.5.0.d12.x86_64.tgz'), 'an older bundle\n');
  writeFileSync(join(from, 'vray-5.1.tar.gz'), 'url package\n');
  writeFileSync(join(from, 'juice.bin'), 'named url package\n');
  const out = join(dir, 'b.tgz');
  const r = await cli(['bundle', inv, '--from', from, '-o', out, '--quiet', '--json']);
  assert.is(r.code, 0, `${r.err}`);
  const left = ['notes.txt', 'pigsty-pkg-v4.5.0.d12.x86_64.tgz', 'pigsty.secrets.yml', 'pigsty.yml'];
  assert.equal(JSON.parse(r.out).notBundled, left);
  assert.match(r.err, new RegExp(`not bundled .*: ${left.join(', ').replaceAll('.', '\\.')}`));
  const x = join(dir, 'x');
  mkdirSync(x);
  assert.is(run('tar', ['-xzf', out, '-C', x]).code, 0);
  const names = readdirSync(join(x, 'pigsty'));
  for (const n of ['pigsty-v4.5.0.tgz', 'vray-5.1.tar.gz', 'juice.bin', ...readdirSync(debs)]) assert.ok(names.includes(n), `${n} is bundled`);
  for (const n of left) assert.not.ok(names.includes(n), `${n} is not bundled`);
  const all = run('sh', ['-c', `zcat '${out}' | grep -a -c NotInTheBundle || true`]).stdout.trim();
  assert.is(all, '0', 'no secret value in the bundle');
});

test('CLI: usage errors and clear failures', async () => {
  const noFrom = await cli(['bundle']);
  assert.is(noFrom.code, 2);
  assert.match(noFrom.err, /--from DIR/);
  const empty = tmp('pigen-empty-');
  const none = await cli(['bundle', '--from', empty]);
  assert.is(none.code, 2);
  assert.match(none.err, /no \.deb or \.rpm files/);
  writeFileSync(join(empty, 'foo-1.0-1.el9.x86_64.rpm'), 'not really an rpm');
  const rpm = await cli(['bundle', '--from', empty, '-o', join(empty, 'x.tgz')], { PATH: '/nonexistent' });
  assert.is(rpm.code, 1);
  assert.match(rpm.err, /createrepo_c/);
  assert.not.ok(existsSync(join(empty, 'x.tgz')));
  // A file named .deb that is no package: the failure names it; no stack trace, no temp file left.
  const junk = tmp('pigen-junk-');
  writeFileSync(join(junk, 'bad_1_all.deb'), 'garbage\n');
  // (A partial bundle of a process that is gone, killed mid-write: removed by the next run.)
  const dead = spawnSync('true').pid!;
  writeFileSync(join(junk, `.b.tgz.tmp-${dead}-0123456789ab`), 'partial');
  const bad = await cli(['bundle', '--from', junk, '-o', join(junk, 'b.tgz'), '--quiet']);
  assert.is(bad.code, 2, bad.err);
  assert.match(bad.err, /bad_1_all\.deb: not a valid Debian package: not an ar archive/);
  assert.equal(readdirSync(junk), [`.b.tgz.tmp-${dead}-0123456789ab`, 'bad_1_all.deb'], 'nothing written, nothing touched');
  if (HAVE_DPKG) {
    rmSync(join(junk, 'bad_1_all.deb'));
    for (const n of readdirSync(debs)) writeFileSync(join(junk, n), readFileSync(join(debs, n)));
    const good = await cli(['bundle', '--from', junk, '-o', join(junk, 'b.tgz'), '--quiet']);
    assert.is(good.code, 0, good.err);
    assert.ok(!existsSync(join(junk, `.b.tgz.tmp-${dead}-0123456789ab`)), 'the dead run\'s partial removed');
  }
  const missing = await cli(['bundle', 'verify', join(empty, 'nope.tgz')]);
  assert.is(missing.code, 2);
  const noFile = await cli(['bundle', 'verify']);
  assert.is(noFile.code, 2);
});

// -o names a file pigen may replace, or a directory (DIR/ made when missing); --from's dangling
// links are skipped; two files of one package, version and architecture are refused. (A review
// found -o /dev/null replaced by a regular file, a stack trace for -o FILE/x.tgz or a dangling
// link in --from, and twins bundled silently.)
test('CLI: -o a FIFO, a link, under a file, DIR/; --from with a dangling link or two files of one package', async () => {
  if (!HAVE_DPKG) return;
  const d = tmp('pigen-bundle-out-');
  const bundle = (...a: string[]) => cli(['bundle', '--from', debs, '--quiet', ...a]);
  spawnSync('mkfifo', [join(d, 'fifo.tgz')]);
  const fifo = await bundle('-o', join(d, 'fifo.tgz'));
  assert.is(fifo.code, 2, fifo.err);
  assert.match(fifo.err, /fifo\.tgz: is a FIFO, not a regular file it may replace/);
  assert.ok(lstatSync(join(d, 'fifo.tgz')).isFIFO(), 'left as it was');
  writeFileSync(join(d, 'target.tgz'), 'old');
  symlinkSync('target.tgz', join(d, 'link.tgz'));
  const link = await bundle('-o', join(d, 'link.tgz'));
  assert.is(link.code, 0, link.err);
  assert.ok(lstatSync(join(d, 'link.tgz')).isSymbolicLink(), 'the link stays a link');
  assert.is((await cli(['bundle', 'verify', join(d, 'target.tgz')])).code, 0, 'its target is the bundle');
  writeFileSync(join(d, 'afile'), 'x');
  const under = await bundle('-o', join(d, 'afile', 'x.tgz'));
  assert.is(under.code, 2, under.err);
  assert.match(under.err, /afile is not a directory/);
  assert.not.match(under.err, /internal error|at /);
  const slash = await bundle('-o', join(d, 'newdir') + '/');
  assert.is(slash.code, 0, slash.err);
  assert.match(readdirSync(join(d, 'newdir')).join(','), /^pigsty-pkg-.*\.tgz$/);
  // --from: a dangling link is skipped with a note.
  const from = join(d, 'from');
  mkdirSync(from);
  for (const n of readdirSync(debs)) writeFileSync(join(from, n), readFileSync(join(debs, n)));
  symlinkSync('/nonexistent', join(from, 'dangling.deb'));
  const dangling = await cli(['bundle', '--from', from, '--quiet', '-o', join(d, 'dangling.tgz')]);
  assert.is(dangling.code, 0, dangling.err);
  assert.match(dangling.err, /skipping non-files in .*: dangling\.deb/);
  // Two files of one package, version and architecture: the same bytes, or not.
  rmSync(join(from, 'dangling.deb'));
  writeFileSync(join(from, 'pigen-xz_1.0-1_all.copy.deb'), readFileSync(join(debs, 'pigen-xz_1.0-1_all.deb')));
  const same = await cli(['bundle', '--from', from, '--quiet', '-o', join(d, 'twins.tgz')]);
  assert.is(same.code, 2, same.err);
  assert.match(same.err, /pigen-xz_1\.0-1_all\.copy\.deb and pigen-xz_1\.0-1_all\.deb are both pigen-xz 1\.0-1 all; keep one of them/);
  rmSync(join(from, 'pigen-xz_1.0-1_all.copy.deb'));
  const other = tmp('pigen-bundle-other-');
  writeFileSync(join(from, 'pigen-xz_1.0-1_all.rebuilt.deb'), readFileSync(makeDeb(other, 'pigen-xz', 'gzip')));
  const differ = await cli(['bundle', '--from', from, '--quiet', '-o', join(d, 'twins.tgz')]);
  assert.is(differ.code, 2, differ.err);
  assert.match(differ.err, /pigen-xz_1\.0-1_all\.deb and pigen-xz_1\.0-1_all\.rebuilt\.deb are both pigen-xz 1\.0-1 all; keep one of them/);
  assert.not.ok(existsSync(join(d, 'twins.tgz')));
});

// Broken inputs are bad input: exit 2, every one named at once, before anything is written. (A
// review found the first corrupt .deb ended the bundle with exit 1, and only it named.)
test('CLI: every broken or duplicated .deb in --from is named at once, exit 2, nothing written', async () => {
  if (!HAVE_DPKG) return;
  const from = tmp('pigen-bundle-broken-');
  for (const n of readdirSync(debs)) writeFileSync(join(from, n), readFileSync(join(debs, n)));
  const good = readFileSync(join(debs, 'pigen-xz_1.0-1_all.deb'));
  writeFileSync(join(from, 'a-garbage_1_all.deb'), 'garbage\n');
  writeFileSync(join(from, 'b-short-head_1_all.deb'), good.subarray(0, 200));
  writeFileSync(join(from, 'c-short-data_1_all.deb'), good.subarray(0, good.length - 7));
  writeFileSync(join(from, 'd-twin_1_all.deb'), good);
  const out = join(from, 'out');
  mkdirSync(out);
  const r = await cli(['bundle', '--from', from, '--quiet', '-o', join(out, 'b.tgz')]);
  assert.is(r.code, 2, r.err);
  assert.match(r.err, /a-garbage_1_all\.deb: not a valid Debian package: not an ar archive \(bad magic\)/);
  assert.match(r.err, /b-short-head_1_all\.deb: not a valid Debian package: truncated archive \(inside member 'control\.tar\.xz'\)/);
  assert.match(r.err, /c-short-data_1_all\.deb: not a valid Debian package: cut short: its member data\.tar\.\w+ needs \d+ bytes, the file has \d+/);
  assert.match(r.err, /d-twin_1_all\.deb and pigen-xz_1\.0-1_all\.deb are both pigen-xz 1\.0-1 all/);
  assert.match(r.err, /4 problems in --from .*, nothing written: replace or remove those files/);
  assert.not.match(r.err, /internal error|\n    at /);
  assert.equal(readdirSync(out), []);
  const j = await cli(['bundle', '--from', from, '--quiet', '--json', '-o', join(out, 'b.tgz')]);
  assert.is(j.code, 2);
  const body = JSON.parse(j.out) as { ok: boolean; errors: string[] };
  assert.is(body.ok, false);
  assert.is(body.errors.length, 4);
});

test('CLI: --packages resolves repo_packages + repo_extra_packages through the alias table', async () => {
  const inv = join(tmp('pigen-inv-'), 'pigsty.yml');
  writeFileSync(inv, 'all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n  vars:\n    admin_ip: 10.10.10.10\n    pg_version: 17\n    repo_packages: [node-package1, "htop, jq"]\n');
  const r = await cli(['bundle', inv, '--packages']);
  assert.is(r.code, 0, r.err);
  const list = r.out.trim().split('\n');
  assert.ok(list.includes('chrony') && list.includes('htop') && list.includes('jq') && list.includes('postgresql-17'), list.join(' '));
  assert.equal(list, [...list].sort());
  const j = await cli(['bundle', inv, '--packages', '--json']);
  assert.equal(JSON.parse(j.out), list);
  const el = await cli(['bundle', inv, '--packages', '--set', 'os_profile=el9']);
  assert.ok(el.out.split('\n').includes('postgresql17-server'));
});

test('the bundle holds what the nodes reading the local repo install (beyond repo_packages, named); --from warns of those no .deb provides', async () => {
  const dir = tmp('pigen-fleet-');
  const inv = join(dir, 'pigsty.yml');
  // (repo_packages short: jq alone. The admin node installs grafana, victoria-*, sudo, … at boot;
  // the other node reads upstream repos, and its node_packages are none of the bundle's business.)
  writeFileSync(
    inv,
    'all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n    web: { hosts: { 10.10.10.11: { node_repo_modules: "node,infra", node_packages: [upstream-only] } } }\n  vars:\n    admin_ip: 10.10.10.10\n    node_repo_modules: local\n    node_packages: [openssh-server, htop]\n    repo_packages: [jq]\n    repo_extra_packages: []\n',
  );
  const r = await cli(['bundle', inv, '--packages', '--json']);
  assert.is(r.code, 0, r.err);
  const list = JSON.parse(r.out) as string[];
  for (const p of ['jq', 'grafana', 'grafana-victorialogs-ds', 'victoria-metrics', 'sudo', 'htop', 'openssh-server', 'prometheus-node-exporter', 'chrony']) assert.ok(list.includes(p), `${p} in ${list.join(' ')}`);
  assert.not.ok(list.includes('upstream-only'), 'a node that does not read the local repo adds nothing');
  assert.equal(list, [...list].sort());
  const note = /note: (\d+) packages beyond repo_packages \+ repo_extra_packages, which the nodes that read the local repo install at boot: (.*)\n/.exec(r.err);
  assert.ok(note, r.err);
  assert.equal(note![2]!.split(' '), list.filter((p) => p !== 'jq'));
  // Nodes that read no local repo: the list is repo_packages' alone, and no note.
  const up = await cli(['bundle', inv, '--packages', '--set', 'node_repo_modules=node']);
  assert.equal(up.out.trim().split('\n'), ['jq']);
  assert.not.match(up.err, /beyond repo_packages/);

  // --from: a directory that lacks some of them is bundled, with a warning naming them (a name
  // a package Provides counts).
  if (!HAVE_DPKG) return;
  const d = join(dir, 'debs-src');
  makeDeb(d, 'jq', 'gzip');
  makeDeb(d, 'htop-ng', 'gzip', 'Provides: htop (= 3.0), other-name\n');
  const out = join(dir, 'b.tgz');
  const b = await cli(['bundle', inv, '--from', join(d, 'debs'), '-o', out, '--quiet', '--json']);
  assert.is(b.code, 0, b.err);
  const lacking = (JSON.parse(b.out) as { lacking: string[] }).lacking;
  assert.ok(lacking.includes('grafana') && lacking.includes('sudo'), lacking.join(' '));
  assert.not.ok(lacking.includes('htop') || lacking.includes('jq'), 'provided by a .deb (Package or Provides)');
  assert.equal(lacking, list.filter((p) => p !== 'jq' && p !== 'htop'));
  assert.match(b.err, new RegExp(`warning: ${lacking.length} packages that the nodes reading the local repo install at boot are in no \\.deb of --from .*: ${lacking.join(' ')}; their package install would fail`));
});

test('progress: plain lines on a pipe every interval, a redrawn bar on a TTY', () => {
  let t = 0;
  const lines: string[] = [];
  const plain = new ProgressReporter({ write: (s) => void lines.push(s), isTTY: false }, { now: () => t, interval: 2000 });
  const p = { bytes: 0, totalBytes: 4 << 20, files: 0, totalFiles: 4, written: 0 };
  plain.update(p);
  t = 2500;
  plain.update({ ...p, bytes: 2 << 20, files: 2 });
  t = 3000;
  plain.update({ ...p, bytes: 3 << 20, files: 3 });
  assert.is(lines.length, 1);
  assert.match(lines[0]!, /^bundle: 50%  2\.00 MiB\/4\.00 MiB  2\/4 files  .*ETA 0:03\n$/);
  const tty: string[] = [];
  const bar = new ProgressReporter({ write: (s) => void tty.push(s), isTTY: true }, { now: () => t });
  bar.update({ ...p, bytes: 1 << 20, files: 1 });
  bar.done();
  assert.match(tty[0]!, /^\r\x1b\[Kbundle \[######\.+\]  25%/);
  assert.is(tty[1], '\r\x1b[K');
});

// ── verify and the boot-time installer against corrupt and truncated bundles ────────────────

/** Renders the installer through `pigen build` with repo_bundle set; returns its path. */
async function installer(): Promise<string> {
  const dir = tmp('pigen-installer-');
  const inv = join(dir, 'pigsty.yml');
  writeFileSync(inv, 'all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n  vars:\n    admin_ip: 10.10.10.10\n    repo_bundle: /tmp/pkg.tgz\n');
  const r = await cli(['build', inv, '-o', join(dir, 'out')]);
  assert.is(r.code, 0, r.err);
  const p = join(dir, 'out/nodes/10.10.10.10/rootfs/usr/local/bin/pigen-install-bundle');
  assert.ok(existsSync(p));
  chmodSync(p, 0o755);
  return p;
}

/** The repo_complete text in an uncompressed bundle tar (the last entry's data). */
function readMarker(tar: Buffer): string {
  const m = /([0-9a-f]{64})\n$/.exec(tar.toString('latin1').replace(/\0+$/, ''));
  return m![1]!;
}

/**
 * Re-packs an uncompressed bundle tar (same entries, order and headers) with `edit` applied to
 * the named files. With `reseal`, manifest.sha256's lines for the edited files and repo_complete
 * are recomputed (manifest.sha256 itself may be edited too), so the marker and every checksum
 * hold and only what the edit broke is wrong.
 */
async function repack(tar: Buffer, edit: Record<string, (text: string) => string>, reseal: boolean, mutate?: (entries: { header: Header; data: Buffer }[]) => void): Promise<Buffer> {
  const entries: { header: Header; data: Buffer }[] = [];
  const ex = tarExtract();
  const read = (async () => {
    for await (const e of ex) {
      const parts: Buffer[] = [];
      for await (const c of e) parts.push(c as Buffer);
      entries.push({ header: e.header, data: Buffer.concat(parts) });
    }
  })();
  ex.end(tar);
  await read;
  const byName = (n: string) => entries.find((e) => e.header.name === `pigsty/${n}`)!;
  for (const [name, f] of Object.entries(edit)) byName(name).data = Buffer.from(f(byName(name).data.toString('utf8')));
  if (reseal) {
    const sums = byName('manifest.sha256');
    sums.data = Buffer.from(
      sums.data
        .toString('utf8')
        .split('\n')
        .map((l) => (edit[l.slice(66)] && l.slice(66) !== 'manifest.sha256' ? `${sha(byName(l.slice(66)).data)}  ${l.slice(66)}` : l))
        .join('\n'),
    );
    byName('repo_complete').data = Buffer.from(sha(sums.data) + '\n');
  }
  mutate?.(entries);
  const p = tarPack();
  const out: Buffer[] = [];
  const collect = (async () => {
    for await (const c of p) out.push(c as Buffer);
  })();
  for (const e of entries) p.entry({ ...e.header, size: e.data.length }, e.data);
  p.finalize();
  await collect;
  return Buffer.concat(out);
}

function install(script: string, bundle: string): { code: number; www: string; out: string } {
  const www = join(tmp('pigen-www-'), 'www');
  const r = run('env', [`WWW=${www}`, 'sh', script, bundle]);
  return { code: r.code, www, out: r.stdout + r.stderr };
}

test('installer: installs a good bundle (marker last), skips when complete', async () => {
  if (!HAVE_DPKG || !needTools('installer test', 'sha256sum', 'mktemp', 'tar')) return;
  const script = await installer();
  const good = join(work, 'good.tgz');
  writeFileSync(good, await bundleBytes(0));
  const r = install(script, good);
  assert.is(r.code, 0, r.out);
  assert.ok(existsSync(join(r.www, 'pigsty/repo_complete')));
  assert.is(readdirSync(join(r.www, 'pigsty')).length, 10);
  assert.equal(readdirSync(join(r.www, '..')).sort(), ['www'], 'temp dir removed');
  const again = run('env', [`WWW=${r.www}`, 'sh', script, '/nonexistent.tgz']);
  assert.is(again.code, 0);
  assert.match(again.stderr, /already complete/);
  // What a killed run left beside www (a partly extracted repo; its pid gone, a name without one,
  // a run of another boot whose pid happens to run now, a name of an older pigen) is removed by
  // the next run; a live run's (this boot, its pid running) is left alone. (Pids start over at
  // each boot: one kept for its pid alone stayed for good, 63 MB each; found by a review.)
  rmSync(join(r.www, 'pigsty'), { recursive: true });
  const parent = join(r.www, '..');
  const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').replace(/[^0-9a-f]/g, '').slice(0, 12);
  const live = `.pigen-bundle.${process.pid}-${boot}.live`;
  for (const n of ['.pigen-bundle.999999999.abc123', '.pigen-bundle.Xy12ab', `.pigen-bundle.${process.pid}.old`, `.pigen-bundle.${process.pid}-000000000000.gone`, `.pigen-bundle.999999999-${boot}.dead`, live]) mkdirSync(join(parent, n, 'x'), { recursive: true });
  const third = run('env', [`WWW=${r.www}`, 'sh', script, good]);
  assert.is(third.code, 0, third.stdout + third.stderr);
  assert.equal(readdirSync(parent).sort(), [live, 'www'], 'stale work directories removed, a live one kept');
});

test('installer: a bundle with a link, a special file or a directory of its own is refused; no repo_complete', async () => {
  if (!HAVE_DPKG) return;
  const script = await installer();
  const tar = Buffer.from(gunzipSync(await bundleBytes(0)));
  type Entries = { header: Header; data: Buffer }[];
  const add = (header: Partial<Header>) => (es: Entries) => void es.splice(1, 0, { header: { ...es[1]!.header, size: 0, ...header } as Header, data: Buffer.alloc(0) });
  // (A link pigsty/root -> / had nginx's /pigsty/ serve the whole filesystem; found by a review.)
  const cases: [string, (es: Entries) => void, RegExp][] = [
    ['a link to /', add({ name: 'pigsty/root', type: 'symlink', linkname: '/' }), /bundle holds \.\/root, which is no regular file/],
    ['a FIFO', add({ name: 'pigsty/fifo', type: 'fifo' }), /bundle holds \.\/fifo, which is no regular file/],
    ['a directory', add({ name: 'pigsty/extra/', type: 'directory', mode: 0o755 }), /bundle holds the directory \.\/extra/],
  ];
  for (const [why, mutate, re] of cases) {
    const file = join(work, `odd-${why.replace(/[^a-z]+/g, '-')}.tgz`);
    writeFileSync(file, gzipSync(await repack(tar, {}, false, mutate)));
    const r = install(script, file);
    assert.is.not(r.code, 0, why);
    assert.match(r.out, re, why);
    assert.not.ok(existsSync(join(r.www, 'pigsty')), why);
  }
});

test('verify and installer: corruption inside a valid gzip/tar is named; no repo_complete', async () => {
  if (!HAVE_DPKG) return;
  const script = await installer();
  const tar = Buffer.from(gunzipSync(await bundleBytes(0)));
  // Flip a byte inside the first package's data (the header is 512 bytes after the pigsty/ entry).
  const bad = Buffer.from(tar);
  bad[512 * 2 + 100] ^= 0xff;
  const file = join(work, 'tampered.tgz');
  writeFileSync(file, gzipSync(bad));
  const v = await cli(['bundle', 'verify', file]);
  assert.is(v.code, 1);
  assert.match(v.err, /pigen-gzip_1\.0-1_all\.deb: sha256 [0-9a-f]+ does not match manifest\.sha256/);
  const r = install(script, file);
  assert.is.not(r.code, 0);
  assert.not.ok(existsSync(join(r.www, 'pigsty/repo_complete')), r.out);
  // A marker that does not match the manifest (same length, so the tar stays valid).
  const marker = tar.lastIndexOf(Buffer.from(readMarker(tar)));
  const forged = Buffer.from(tar);
  forged.write('f'.repeat(64), marker, 'latin1');
  const res = await verifyBundle((async function* () { yield gzipSync(forged); })());
  assert.not.ok(res.ok);
  assert.match(res.error!, /^repo_complete holds f{64}, but sha256\(manifest\.sha256\) is /);
  const file2 = join(work, 'forged.tgz');
  writeFileSync(file2, gzipSync(forged));
  const r2 = install(script, file2);
  assert.is.not(r2.code, 0);
  assert.match(r2.out, /does not match sha256 of manifest/);
  assert.not.ok(existsSync(join(r2.www, 'pigsty/repo_complete')));
  // A size changed in manifest.size alone: its own checksum no longer matches.
  const sized = await repack(tar, { 'manifest.size': (t) => t.replace(/^(\d)/, (d) => String((Number(d) + 1) % 10)) }, false);
  const file3 = join(work, 'sized.tgz');
  writeFileSync(file3, gzipSync(sized));
  const v3 = await cli(['bundle', 'verify', file3]);
  assert.is(v3.code, 1);
  assert.match(v3.err, /manifest\.size: sha256 [0-9a-f]+ does not match manifest\.sha256/);
  const r3 = install(script, file3);
  assert.is.not(r3.code, 0);
  assert.match(r3.out, /checksum mismatch/);
  assert.not.ok(existsSync(join(r3.www, 'pigsty/repo_complete')));
});

// What tar -x as root applies, and what gunzip ignores, are pigen's too: modes, owners, the
// directories it makes, the gzip header (a review found each of these accepted).
test('verify: modes, owners, directories and the gzip header are those pigen writes', async () => {
  if (!HAVE_DPKG) return;
  const tar = Buffer.from(gunzipSync(await bundleBytes(0)));
  const verify = (gz: Buffer) => verifyBundle((async function* () { yield gz; })());
  assert.ok((await verify(gzipSync(tar))).ok, 'the bundle repacked as it is');
  type Entries = { header: Header; data: Buffer }[];
  const cases: [string, (es: Entries) => void, RegExp][] = [
    ['a setuid mode', (es) => void (es[1]!.header.mode = 0o4777), /has mode 4777, not 644/],
    ['an owner', (es) => void (es[1]!.header.uid = 1234), /is owned by 1234:0, not root/],
    ['a directory mode', (es) => void (es[0]!.header.mode = 0o777), /directory pigsty\/ has mode 777/],
    ['an extra directory', (es) => void es.splice(1, 0, { header: { ...es[0]!.header, name: 'pigsty/junk/' }, data: Buffer.alloc(0) }), /directory pigsty\/junk\/? is not one pigen makes/],
    ['the top directory twice', (es) => void es.splice(1, 0, { header: { ...es[0]!.header }, data: Buffer.alloc(0) }), /appears twice/],
  ];
  for (const [why, mutate, re] of cases) {
    const r = await verify(gzipSync(await repack(tar, {}, false, mutate)));
    assert.not.ok(r.ok, why);
    assert.match(r.error!, re, why);
  }
  const timed = gzipSync(tar);
  timed.writeUInt32LE(1_700_000_000, 4);
  const t = await verify(timed);
  assert.not.ok(t.ok, 'a gzip header with a time');
  assert.match(t.error!, /gzip header is not pigen's/);
});

test('verify and installer: sizes are checked against manifest.size (resealed bundles: marker and checksums hold); no repo_complete', async () => {
  if (!HAVE_DPKG) return;
  const script = await installer();
  const tar = Buffer.from(gunzipSync(await bundleBytes(0)));
  const cases: { what: string; edit: Record<string, (t: string) => string>; verify: RegExp; install: RegExp }[] = [
    {
      what: 'a wrong size',
      edit: { 'manifest.size': (t) => t.replace(/^(\d+)(  pigen-gzip_)/m, (_, n: string, rest: string) => `${Number(n) + 1}${rest}`) },
      verify: /^pigen-gzip_1\.0-1_all\.deb: size (\d+) does not match manifest\.size \((?!\1)\d+\)$/,
      install: /pigen-gzip_1\.0-1_all\.deb: size \d+ does not match manifest\.size \(\d+\)/,
    },
    {
      what: 'a file missing from manifest.size',
      edit: { 'manifest.size': (t) => t.replace(/^\d+  Packages\n/m, '') },
      verify: /^Packages: listed in manifest\.sha256 but not in manifest\.size$/,
      install: /manifest\.size does not list the files of manifest\.sha256/,
    },
    {
      what: 'a malformed manifest.size line',
      edit: { 'manifest.size': (t) => t.replace(/^(\d+)  Release$/m, '$1 Release') },
      verify: /^manifest\.size line \d+ is malformed: "\d+ Release"$/,
      install: /manifest\.size does not list the files of manifest\.sha256/,
    },
    {
      what: 'manifest.size not in manifest.sha256',
      edit: { 'manifest.sha256': (t) => t.replace(/^[0-9a-f]{64}  manifest\.size\n/m, '') },
      verify: /^manifest\.size: in the bundle but not in manifest\.sha256$/,
      install: /manifest\.size is not listed in manifest\.sha256/,
    },
  ];
  for (const c of cases) {
    const forged = await repack(tar, c.edit, true);
    assert.is.not(Buffer.compare(forged, tar), 0, `${c.what}: the edit changed something`);
    const res = await verifyBundle((async function* () { yield gzipSync(forged); })());
    assert.not.ok(res.ok, c.what);
    assert.match(res.error!, c.verify, `${c.what}: ${res.error}`);
    const file = join(work, `resealed-${c.what.replace(/\W+/g, '-')}.tgz`);
    writeFileSync(file, gzipSync(forged));
    const r = install(script, file);
    assert.is.not(r.code, 0, `${c.what}: installer accepted it: ${r.out}`);
    assert.match(r.out, c.install, c.what);
    assert.not.ok(existsSync(join(r.www, 'pigsty/repo_complete')), `${c.what}: repo_complete left behind`);
  }
  // The unchanged repack installs (the helper itself is faithful).
  const same = join(work, 'repacked.tgz');
  writeFileSync(same, gzipSync(await repack(tar, {}, true)));
  assert.is(install(script, same).code, 0);
});

test('verify and installer: truncation at random points always fails, never leaves repo_complete', async () => {
  if (!HAVE_DPKG) return;
  const script = await installer();
  const full = await bundleBytes(0, 4096, 2);
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const points = [1, 10, 100, full.length - 1, full.length - 8, ...Array.from({ length: 10 }, () => Math.floor(rand() * full.length))];
  for (const n of points) {
    const file = join(work, `trunc-${n}.tgz`);
    writeFileSync(file, full.subarray(0, n));
    const v = await cli(['bundle', 'verify', file]);
    assert.is(v.code, 1, `verify of a bundle truncated at ${n}/${full.length} must fail`);
    assert.match(v.err, /verification failed/);
    const r = install(script, file);
    assert.is.not(r.code, 0, `installer accepted a bundle truncated at ${n}: ${r.out}`);
    assert.not.ok(existsSync(join(r.www, 'pigsty/repo_complete')), `repo_complete present after truncation at ${n}`);
  }
});

test('user-data: the repo-serving infra node writes and runs the installer in bootcmd and uses a file: source', async () => {
  const dir = tmp('pigen-ud-');
  const inv = join(dir, 'pigsty.yml');
  const base = 'all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 }, 10.10.10.12: { infra_seq: 2 } } }\n    nodes: { hosts: { 10.10.10.11: {} } }\n  vars:\n    admin_ip: 10.10.10.10\n';
  writeFileSync(inv, base + '    repo_bundle: https://files.example.com/pkg.tgz\n');
  assert.is((await cli(['build', inv, '-o', join(dir, 'out')])).code, 0);
  const ud = (ip: string) => readFileSync(join(dir, 'out/nodes', ip, 'user-data'), 'utf8');
  const admin = ud('10.10.10.10');
  assert.match(admin, /- - \/usr\/local\/bin\/pigen-install-bundle\n/);
  assert.ok(admin.indexOf('pigen-install-bundle') < admin.indexOf('\nwrite_files:'), 'installer runs in bootcmd, before write_files');
  assert.match(admin, /source: deb \[trusted=yes\] file:\/www\/pigsty \.\//);
  assert.ok(admin.includes("SRC=${1:-'https://files.example.com/pkg.tgz'}"));
  for (const ip of ['10.10.10.11', '10.10.10.12']) {
    assert.not.ok(ud(ip).includes('pigen-install-bundle'), ip);
    assert.match(ud(ip), /source: deb \[trusted=yes\] http:\/\/10\.10\.10\.10\/pigsty \.\//);
  }
  writeFileSync(inv, base + '    repo_bundle: /tmp/pkg.tgz\n    repo_enabled: false\n');
  assert.is((await cli(['build', inv, '-o', join(dir, 'out')])).code, 0);
  assert.not.ok(ud('10.10.10.10').includes('pigen-install-bundle'), 'repo_enabled: false → no installer');
});

// ── failures a review found: a full disk, bad inputs found late, --json, rpm, names ───────────

test('a sink that fails (a full disk) ends the bundle with its error, not a hang', async () => {
  // (64 MiB of 1 MiB random blocks, which gzip cannot shrink (its window is 32 KiB): far more
  // than the pipeline holds, so the producer is still writing when the sink fails.)
  const block = randomBytes(1 << 20);
  const big = { length: 64 << 20, subarray: (a: number, b: number) => block.subarray(a % (1 << 20), (a % (1 << 20)) + (b - a)) };
  let written = 0;
  const sink = {
    async write(b: Uint8Array) {
      written += b.length;
      if (written > 256 << 10) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    },
  };
  const payload: BundleInput[] = [{ name: 'big.bin', size: big.length, read: async function* () { for (let i = 0; i < big.length; i += 65536) yield big.subarray(i, i + 65536); } }];
  // (A guard against the hang it was, not a timing: the build takes well under a second.)
  let guard: NodeJS.Timeout | undefined;
  const hung = new Promise<string>((res) => (guard = setTimeout(() => res('hung'), 60_000)));
  const got = await Promise.race([buildBundle({ epoch: 0, payload, sink: sink as never, concurrency: 2 }).then(() => 'built', (e: Error) => e.message), hung]);
  clearTimeout(guard);
  assert.match(got, /ENOSPC/);
});

test('CLI: --json says every failure; bad inputs found late exit 2; names apt cannot fetch or no UTF-8 are refused', async () => {
  if (!HAVE_DPKG) return;
  const d = tmp('pigen-bundle-fail-');
  const notDir = await cli(['bundle', '--from', join(d, 'nope'), '--json']);
  assert.is(notDir.code, 2);
  assert.equal(JSON.parse(notDir.out), { ok: false, error: `--from ${join(d, 'nope')}: not a directory` });
  const empty = join(d, 'empty');
  mkdirSync(empty);
  const none = await cli(['bundle', '--from', empty, '--json']);
  assert.is(none.code, 2);
  assert.match((JSON.parse(none.out) as { error: string }).error, /no \.deb or \.rpm files/);
  // A .deb whose head is sound, with bytes after its last member: found by the bundle's own pass
  // over the whole file (exit 1, "bundle failed", before), bad input; nothing written.
  const late = join(d, 'late');
  mkdirSync(late);
  const deb = makeDeb(d, 'pigen-late', 'gzip');
  writeFileSync(join(late, 'pigen-late_1.0-1_all.deb'), Buffer.concat([readFileSync(deb), Buffer.from('trailing junk\n')]));
  const lr = await cli(['bundle', '--from', late, '-o', join(d, 'late.tgz'), '--quiet', '--json']);
  assert.is(lr.code, 2, lr.err);
  assert.match((JSON.parse(lr.out) as { error: string }).error, /^bundle failed: pigen-late_1\.0-1_all\.deb: /);
  assert.not.ok(existsSync(join(d, 'late.tgz')));
  // `#` and `?` in a name: apt asks for the file by URL, where they end the path.
  for (const name of ['a#b_1.0_all.deb', 'a?b_1.0_all.deb']) {
    const dir = join(d, `n${name.includes('#') ? 1 : 2}`);
    mkdirSync(dir);
    writeFileSync(join(dir, name), readFileSync(deb));
    const r = await cli(['bundle', '--from', dir, '-o', join(d, 'n.tgz'), '--quiet']);
    assert.is(r.code, 2, name);
    assert.match(r.err, /# or \?: apt could not fetch it by URL/);
  }
  // A name that is no UTF-8: refused by name (it was skipped as "no file").
  const latin = join(d, 'latin');
  mkdirSync(latin);
  writeFileSync(Buffer.from(join(latin, 'caf\xe9_1.0_all.deb'), 'latin1'), readFileSync(deb));
  writeFileSync(join(latin, 'pigen-late_1.0-1_all.deb'), readFileSync(deb));
  const lat = await cli(['bundle', '--from', latin, '-o', join(d, 'l.tgz'), '--quiet']);
  assert.is(lat.code, 2);
  assert.match(lat.err, /package file names that are no UTF-8 .*: caf\uFFFD_1\.0_all\.deb: rename them/);
  // Said with the directory's other problems, all at once (it hid them; found by a review).
  writeFileSync(join(latin, 'broken_1.0_all.deb'), 'not a package\n');
  const both = await cli(['bundle', '--from', latin, '-o', join(d, 'l.tgz'), '--quiet']);
  assert.is(both.code, 2);
  assert.match(both.err, /no UTF-8[^]*broken_1\.0_all\.deb: not a valid Debian package/);
  rmSync(join(latin, 'broken_1.0_all.deb'));
  // A bad option is a usage error before the inventory is read (it came after its diagnostics).
  writeFileSync(join(latin, 'bad.yml'), 'all: [\n');
  const lvl = await cli(['bundle', join(latin, 'bad.yml'), '--from', latin, '--level', '0']);
  assert.is(lvl.code, 2);
  assert.match(lvl.err, /^pigen: --level must be an integer from 1 to 9/);
  rmSync(join(latin, 'bad.yml'));
  // Another file with such a name is left out (said), as files that are no packages are.
  rmSync(Buffer.from(join(latin, 'caf\xe9_1.0_all.deb'), 'latin1'));
  writeFileSync(Buffer.from(join(latin, 'notes-caf\xe9.txt'), 'latin1'), 'notes\n');
  const note = await cli(['bundle', '--from', latin, '-o', join(d, 'l.tgz'), '--quiet']);
  assert.is(note.code, 0, note.err);
  assert.match(note.err, /note: not bundled \(names that are no UTF-8\): notes-caf\uFFFD\.txt/);
  // The version names the default output: one with a `/` put it outside the working directory.
  const ver = await cli(['bundle', '--set', 'version=x/../../../escaped', '--from', late, '--quiet']);
  assert.is(ver.code, 2, ver.err);
  assert.match(ver.err, /version.*a version string \(letters, digits and \. _ \+ ~ -/);
  // --download's failures are JSON too.
  const el = await cli(['bundle', '--set', 'os_profile=el9', '--download', '--cache', join(d, 'c'), '--json']);
  assert.is(el.code, 1);
  assert.equal(JSON.parse(el.out), { ok: false, error: '--download uses apt-get and supports deb profiles only (os_profile is el9); on EL use repotrack' });
  const noApt = await cli(['bundle', '--download', '--cache', join(d, 'c'), '--json'], { PATH: '/nonexistent' });
  assert.is(noApt.code, 1);
  assert.match((JSON.parse(noApt.out) as { error: string }).error, /--download needs apt-get/);
  // Stray words are counted, not quoted (one may be a password).
  const stray = await cli(['bundle', 'inv.yml', 'Sup3rSecret']);
  assert.is(stray.code, 2);
  assert.not.match(stray.err, /Sup3rSecret/);
});

test('rpm: a real package is indexed by createrepo_c; a file named .rpm that is none is refused by name', async () => {
  if (!needTools('rpm bundle tests', 'rpmbuild', 'createrepo_c')) return;
  const d = tmp('pigen-rpm-');
  const top = join(d, 'rpmbuild');
  mkdirSync(join(top, 'SPECS'), { recursive: true });
  writeFileSync(
    join(top, 'SPECS', 'pigen-rpm.spec'),
    'Name: pigen-rpm\nVersion: 1.0\nRelease: 1\nSummary: pigen test package\nLicense: MIT\nBuildArch: noarch\n%description\npigen test package.\n%install\nmkdir -p %{buildroot}/usr/share/pigen-rpm\necho payload > %{buildroot}/usr/share/pigen-rpm/data.txt\n%files\n/usr/share/pigen-rpm/data.txt\n',
  );
  const b = run('rpmbuild', ['--define', `_topdir ${top}`, '--define', '_build_id_links none', '-bb', join(top, 'SPECS', 'pigen-rpm.spec')], { env: { ...process.env, SOURCE_DATE_EPOCH: '0' } });
  assert.is(b.code, 0, b.stderr);
  const from = join(d, 'from');
  mkdirSync(from);
  writeFileSync(join(from, 'pigen-rpm-1.0-1.noarch.rpm'), readFileSync(join(top, 'RPMS', 'noarch', 'pigen-rpm-1.0-1.noarch.rpm')));
  const inv = join(d, 'el.yml');
  writeFileSync(inv, 'all:\n  vars:\n    admin_ip: 10.10.10.10\n    os_profile: el9\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n');
  const ok = await cli(['bundle', inv, '--from', from, '-o', join(d, 'el.tgz'), '--quiet', '--json']);
  assert.is(ok.code, 0, ok.err);
  const res = JSON.parse(ok.out) as { rpms: number };
  assert.is(res.rpms, 1);
  const x = join(d, 'x');
  mkdirSync(x);
  assert.is(run('tar', ['-xzf', join(d, 'el.tgz'), '-C', x]).code, 0);
  const primary = readdirSync(join(x, 'pigsty', 'repodata')).find((n) => n.includes('primary.xml'))!;
  const xml = primary.endsWith('.gz') ? gunzipSync(readFileSync(join(x, 'pigsty', 'repodata', primary))).toString() : '';
  assert.match(xml, /packages="1"/);
  assert.match(xml, /<location href="pigen-rpm-1\.0-1\.noarch\.rpm"\/>/);
  assert.is((await cli(['bundle', 'verify', join(d, 'el.tgz')])).code, 0);
  // Junk named .rpm: createrepo_c left it out of the index with a warning, exit 0; now exit 2.
  writeFileSync(join(from, 'foo-1.0-1.x86_64.rpm'), 'junk\n');
  const bad = await cli(['bundle', inv, '--from', from, '-o', join(d, 'bad.tgz'), '--quiet']);
  assert.is(bad.code, 2, bad.err);
  assert.match(bad.err, /not RPM packages \(no RPM lead\): foo-1\.0-1\.x86_64\.rpm/);
  assert.not.ok(existsSync(join(d, 'bad.tgz')));
});

test('a bundle goes on when its stderr (progress, notes) is closed by the reader: only a signal stops it', async () => {
  if (!HAVE_DPKG) return;
  const d = tmp('pigen-bundle-pipe-');
  const code = await new Promise<number | null>((res) => {
    const child = spawn(process.execPath, cliArgs('bundle', '--from', debs, '-o', 'b.tgz'), { cwd: d, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.destroy();
    child.on('exit', (c) => res(c));
  });
  assert.is(code, 0);
  assert.ok(existsSync(join(d, 'b.tgz')), 'the bundle is written');
});

test('Ctrl-C or SIGTERM while bundling: the partial file is removed, the previous bundle left as it was', async () => {
  if (!HAVE_DPKG) return;
  const d = tmp('pigen-bundle-int-');
  // (A package of text, which level 9 compresses slowly: the signal comes while it is written.)
  const src = join(d, 'src');
  mkdirSync(join(src, 'DEBIAN'), { recursive: true });
  mkdirSync(join(src, 'usr/share/big'), { recursive: true });
  const block = Buffer.from(randomBytes(3 << 18).toString('base64'));
  writeFileSync(join(src, 'usr/share/big/data.txt'), Buffer.concat(Array.from({ length: 200 }, () => block)));
  writeFileSync(join(src, 'DEBIAN/control'), 'Package: big\nVersion: 1.0-1\nArchitecture: all\nMaintainer: x <x@example.com>\nDescription: big\n');
  const from = join(d, 'from');
  mkdirSync(from);
  assert.is(run('dpkg-deb', ['--root-owner-group', '-Znone', '--build', src, join(from, 'big_1.0-1_all.deb')]).code, 0);
  writeFileSync(join(d, 'b.tgz'), 'the previous bundle\n');
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const child = spawn(process.execPath, cliArgs('bundle', '--from', from, '-o', 'b.tgz', '--quiet', '-j', '1', '--level', '9'), { cwd: d, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => (err += String(c)));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    // (The signal once the partial file is there: the bundle is being written.)
    for (let i = 0; i < 600 && !readdirSync(d).some((n) => n.startsWith('.b.tgz.tmp-')); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(readdirSync(d).some((n) => n.startsWith('.b.tgz.tmp-')), `${sig}: the bundle was never being written: ${err}`);
    child.kill(sig);
    const code = await exited;
    assert.is(code, 1, `${sig}: ${err}`);
    assert.match(err, /interrupted: nothing written \(b\.tgz is the previous bundle, untouched\)/);
    assert.equal(readdirSync(d).filter((n) => n.startsWith('.')), [], `${sig}: a temp file is left`);
    assert.is(readFileSync(join(d, 'b.tgz'), 'utf8'), 'the previous bundle\n');
  }
});

test.run();
