// pigen userdata: size budgets per cloud, encodings that cloud-init itself decodes back to the same
// files, MIME with a deterministic boundary, and the manifest's per-target sizes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { parse } from 'yaml';
import { makeDeb, needTools, pigen, run, tmp, which } from './helpers.ts';
import { CLOUDS, LIMITS, bestFit, encodeUserData, quotedPrintable, toMime, transferEncoding } from '../generator/emit/userdata.ts';

const cli = (args: string[], cwd = tmp()) => pigen(args, cwd);

const dir = tmp();
const built = cli(['build', '-o', join(dir, 'out')], dir);
const manifest = JSON.parse(readFileSync(join(dir, 'out/manifest.json'), 'utf8'));
const ip = '10.10.10.10';
const text = readFileSync(join(dir, 'out/nodes', ip, 'user-data'), 'utf8');

/** The interpreter cloud-init runs with (its modules are not on every python3). */
function cloudInitPython(): string | null {
  const ci = which('cloud-init');
  if (!ci) return null;
  const first = readFileSync(ci, 'utf8').split('\n')[0]!;
  return first.startsWith('#!') ? first.slice(2).trim().split(' ')[0]! : null;
}

test('build records each node\'s user-data size and fit per target in manifest.json', () => {
  assert.is(built.code, 0, built.stderr);
  const t = manifest.nodes[ip].userData.targets;
  for (const c of CLOUDS) {
    assert.ok(t[c], c);
    assert.is(typeof t[c].size, 'number');
    assert.is(t[c].fits, t[c].limit === null || t[c].size <= t[c].limit);
  }
  assert.is(t.aws.encoding, 'gzip');
  // GCP and vSphere take a text value: the gzip document as base64, with its encoding key set.
  assert.is(t.gcp.encoding, 'gzip+base64');
  assert.equal(t.gcp.metadata, { 'user-data-encoding': 'base64' });
  assert.is(t.vsphere.encoding, 'gzip+base64');
  assert.equal(t.vsphere.metadata, { 'guestinfo.userdata.encoding': 'gzip+base64' });
  assert.is(t.aws.metadata, undefined);
});

test('auto picks the smallest accepted form and reports size and budget', () => {
  for (const c of CLOUDS) {
    const out = join(dir, `ud.${c}`);
    const r = cli(['userdata', ip, '--cloud', c, '-o', out], dir);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`for ${c}`));
    const size = readFileSync(out).length;
    if (Number.isFinite(LIMITS[c].bytes)) assert.ok(size <= LIMITS[c].bytes, `${c}: ${size}`);
  }
  assert.equal(Array.from(readFileSync(join(dir, 'ud.aws')).subarray(0, 2)), [0x1f, 0x8b], 'aws gets gzip');
  assert.is(bestFit(text, 'aws').encoding, 'gzip');
});

test('a node that fits nowhere: exit 1 with size, limit, five largest contributors and the bake hint', () => {
  const r = cli(['userdata', 'pg-meta-1', '--cloud', 'aws', '--encoding', 'plain'], dir);
  assert.is(r.code, 1);
  assert.match(r.stderr, /over the aws limit of 16384 bytes/);
  // Which sizes they are: each file's as it is and gzipped alone (a review found raw sizes listed
  // next to a gzip budget, unnamed); ordered by the one the form counts.
  assert.match(r.stderr, /largest contributors \(bytes of each file: as it is, gzipped alone; largest first\)/);
  const rows = [...r.stderr.matchAll(/^\s+(\d+)\s+(\d+)\s+\//gm)].map((m) => [Number(m[1]), Number(m[2])] as const);
  assert.is(rows.length, 5);
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1]![0] >= rows[i]![0], 'by raw size');
  for (const [raw, gz] of rows) assert.ok(gz < raw, `${gz} < ${raw}`);
  const g = cli(['userdata', 'pg-meta-1', '--cloud', 'aws', '--encoding', 'gzip', '--set', 'node_etc_hosts=' + JSON.stringify(Array.from({ length: 900 }, (_, i) => `10.1.${i >> 8}.${i & 255} h${createHash('sha256').update(String(i)).digest('hex').slice(0, 24)}`)), '--json'], dir);
  assert.is(g.code, 1, g.stderr);
  assert.match(g.stderr, /largest gzip first/);
  const largest = (JSON.parse(g.stdout) as { largest: { path: string; bytes: number; gzip: number }[] }).largest;
  assert.is(largest[0]!.path, '/etc/hosts', 'the file that weighs most gzipped first');
  for (let i = 1; i < largest.length; i++) assert.ok(largest[i - 1]!.gzip >= largest[i]!.gzip);
  assert.match(r.stderr, /pigen bake/);
  assert.match(r.stderr, /boot it with its user-data\.baked: \d+ bytes as plain \(pigen userdata pg-meta-1 --cloud aws --encoding plain --baked\)/);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  // --baked: the node's user-data.baked, as the build writes it.
  const b = cli(['userdata', ip, '--baked', '--encoding', 'plain'], dir);
  assert.is(b.code, 0, b.stderr);
  assert.is(b.stdout, readFileSync(join(dir, 'out/nodes', ip, 'user-data.baked'), 'utf8'));
  // A node whose own boot-time files (its /etc/hosts) are over the limit even baked: the hint says
  // so instead of suggesting the image (a review found it suggested regardless).
  const d = tmp('pigen-ud-big-');
  const hosts = Array.from({ length: 1800 }, (_, i) => `'10.${(i >> 8) & 255}.${i & 255}.${(i * 7) % 251} h${createHash('sha256').update(String(i)).digest('hex').slice(0, 20)}'`);
  writeFileSync(join(d, 'pigsty.yml'), `all:\n  vars:\n    admin_ip: 10.10.10.10\n    node_etc_hosts: [ ${hosts.join(', ')} ]\n  children:\n    infra:\n      hosts:\n        10.10.10.10: { infra_seq: 1 }\n`);
  const big = cli(['userdata', '10.10.10.10', '--cloud', 'aws'], d);
  assert.is(big.code, 1, big.stderr);
  assert.match(big.stderr, /even its baked user-data \(booted from a golden image\) is \d+ bytes as/);
  assert.not.match(big.stderr, /boot it with its user-data\.baked/);
});

// (A review found the hint's command without the user's INVENTORY, --set, --cloud or --mime, so
// it could print another inventory's node, and its size measured without --mime.)
test('the bake hint repeats the user\'s arguments (shell-quoted) with --baked, and its size is what that command reports', () => {
  const d = tmp('pigen-ud-hint-');
  const inv = "my inv's.yml";
  writeFileSync(join(d, inv), 'all:\n  vars:\n    admin_ip: 10.10.10.10\n  children:\n    infra:\n      hosts:\n        10.10.10.10: { infra_seq: 1, nodename: zz-1 }\n');
  // (The node's own /etc/hosts, which stays in its baked user-data, makes it not fit as gzip.)
  const hosts = JSON.stringify(Array.from({ length: 500 }, (_, i) => `10.1.${i >> 8}.${i & 255} h${createHash('sha256').update(String(i)).digest('hex').slice(0, 20)}`));
  for (const extra of [['--encoding', 'plain'], ['--encoding', 'plain', '--mime'], ['--mime'], ['--cloud', 'aws', '--mime', '--encoding', 'gzip']]) {
    const r = cli(['userdata', 'zz-1', inv, '--set', 'node_tune=oltp', '--set', `node_etc_hosts=${hosts}`, ...extra], d);
    assert.is(r.code, 1, r.stderr);
    const m = /boot it with its user-data\.baked: (\d+) bytes as ([a-z+-]+)( MIME)? \((pigen userdata .*)\)\n/.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.is(m![3] !== undefined, extra.includes('--mime'), 'MIME said');
    // The command as a shell reads it, run: it prints the baked user-data of this inventory's node,
    // of the size the hint said.
    const words = run('sh', ['-c', `set -- ${m![4]}; printf '%s\\0' "$@"`]).stdout.split('\0').slice(0, -1);
    assert.equal(words.slice(0, 4), ['pigen', 'userdata', 'zz-1', inv], m![4]);
    assert.ok(words.includes('node_tune=oltp') && words.includes(`node_etc_hosts=${hosts}`) && words.at(-1) === '--baked', m![4]);
    // An --encoding that does not fit baked either (plain) gives way to auto's choice.
    if (extra.includes('plain')) assert.ok(!words.includes('--encoding') && m![2] === 'gzip', m![4]);
    assert.is(words.includes('--mime'), extra.includes('--mime'), m![4]);
    if (extra.includes('--cloud')) assert.ok(words.includes('--cloud'), m![4]);
    const b = cli([...words.slice(1), '--json'], d);
    assert.is(b.code, 0, `${m![4]}: ${b.stderr}`);
    const j = JSON.parse(b.stdout) as { nodename: string; size: number; encoding: string; baked: boolean };
    assert.equal([j.nodename, j.baked, j.size, j.encoding], ['zz-1', true, Number(m![1]), m![2]], m![4]);
  }
});

// The hint's command never prints a secret given with --set: masked, and said so (found in the
// review of the change that made the hint repeat the user's arguments).
test('the bake hint masks a secret given with --set', () => {
  const d = tmp('pigen-ud-hint-secret-');
  const r = cli(['userdata', '10.10.10.10', '--encoding', 'plain', '--set', 'grafana_admin_password=S3cretValue99', '--set', 'node_tune=oltp'], d);
  assert.is(r.code, 1, r.stderr);
  assert.not.match(r.stdout + r.stderr, /S3cretValue99/);
  assert.match(r.stderr, /\(pigen userdata 10\.10\.10\.10 --set 'grafana_admin_password=\*\*\*\*' --set node_tune=oltp --encoding plain --baked, with your --set secrets in place of \*\*\*\*\)/);
  // Whatever its spelling: an escape in a quoted value, a password inside a mapping, a short one.
  // (A review found an escaped form printed as given.)
  for (const set of ['grafana_admin_password="S3cret\\u0056alue"', 'pg_users=[{name: a, password: Xy9}]', 'grafana_admin_password=ab']) {
    const e = cli(['userdata', '10.10.10.10', '--encoding', 'plain', '--set', set], d);
    assert.is(e.code, 1, e.stderr);
    assert.not.match(e.stderr, /S3cret|Xy9|=ab\b/, set);
    assert.match(e.stderr, new RegExp(`--set '${set.split('=')[0]}=\\*\\*\\*\\*'`), set);
  }
});

// (A review found build silent when nodes did not fit AWS, Azure or OpenStack: only a node that
// fits no cloud at all was warned of.)
test('build: one note per cloud whose limit some nodes exceed (exit 0), and the nodes per cloud in --json', () => {
  const d = tmp('pigen-ud-exceed-');
  const hosts = JSON.stringify(Array.from({ length: 500 }, (_, i) => `10.1.${i >> 8}.${i & 255} h${createHash('sha256').update(String(i)).digest('hex').slice(0, 20)}`));
  writeFileSync(join(d, 'pigsty.yml'), 'all:\n  vars:\n    admin_ip: 10.10.10.10\n  children:\n    infra:\n      hosts:\n        10.10.10.10: { infra_seq: 1 }\n    web:\n      hosts:\n        10.10.10.11: {}\n');
  const r = cli(['build', '-o', 'out', '--set', `node_etc_hosts=${hosts}`], d);
  assert.is(r.code, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(d, 'out/manifest.json'), 'utf8')) as { nodes: Record<string, { userData: { targets: Record<string, { fits: boolean }> } }> };
  const over = Object.keys(m.nodes).filter((x) => !m.nodes[x]!.userData.targets.aws!.fits);
  assert.is(over.length, 1, `the infra node over aws: ${over}`);
  assert.ok(r.stderr.includes(`note: ${over.length} of 2 nodes' user-data exceeds aws (16384 bytes) in every encoding (${over.join(', ')}): boot it there from its image with user-data.baked (pigen bake)`), r.stderr);
  assert.not.match(r.stderr, /exceeds? (azure|gcp|vsphere|openstack|nocloud)/);
  assert.not.match(r.stderr, /fits no cloud/);
  const j = cli(['build', '-o', 'out', '--set', `node_etc_hosts=${hosts}`, '--json'], d);
  assert.is(j.code, 0, j.stderr);
  assert.equal((JSON.parse(j.stdout) as { userData: unknown }).userData, { exceeds: { aws: { limit: 16384, nodes: over } } });
  assert.equal((JSON.parse(cli(['build', '-o', 'out2', '--json'], d).stdout) as { userData: unknown }).userData, { exceeds: {} });
});

test('unknown node and bad flags are usage errors (exit 2)', () => {
  assert.is(cli(['userdata', '10.9.9.9'], dir).code, 2);
  assert.is(cli(['userdata', ip, '--cloud', 'mars'], dir).code, 2);
  assert.is(cli(['userdata', ip, '--encoding', 'rot13'], dir).code, 2);
  assert.is(cli(['userdata'], dir).code, 2);
});

test('-o FILE writes 0600 (with --json too); -o DIR or a missing directory: exit 2, a clear message, no temp file left; --json failures are JSON', () => {
  const d = tmp('pigen-ud-out-');
  const r = cli(['userdata', ip, '--json', '-o', 'ud.yml'], d);
  assert.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { ok: boolean; out: string; size: number };
  assert.ok(j.ok);
  assert.is(j.out, 'ud.yml');
  assert.is(statSync(join(d, 'ud.yml')).mode & 0o777, 0o600);
  assert.is(statSync(join(d, 'ud.yml')).size, j.size);
  mkdirSync(join(d, 'sub'));
  for (const out of ['sub', 'nodir/ud.yml']) {
    const e = cli(['userdata', ip, '-o', out], d);
    assert.is(e.code, 2, e.stderr);
    assert.match(e.stderr, new RegExp(`cannot write ${out}: .*give a file path`));
    assert.not.match(e.stderr, /internal error|\n\s+at /);
  }
  assert.equal(readdirSync(d).sort(), ['sub', 'ud.yml'], 'no temp file left beside');
  assert.equal(readdirSync(join(d, 'sub')), []);
  // A FIFO (or a device: /dev/null) is never replaced; a link is written through and stays.
  spawnSync('mkfifo', [join(d, 'fifo')]);
  const fifo = cli(['userdata', ip, '-o', 'fifo'], d);
  assert.is(fifo.code, 2, fifo.stderr);
  assert.match(fifo.stderr, /cannot write fifo: is a FIFO, not a regular file it may replace; give a file path/);
  assert.ok(lstatSync(join(d, 'fifo')).isFIFO());
  symlinkSync('ud.yml', join(d, 'link.yml'));
  assert.is(cli(['userdata', ip, '-o', 'link.yml'], d).code, 0);
  assert.ok(lstatSync(join(d, 'link.yml')).isSymbolicLink(), 'the link stays');
  rmSync(join(d, 'fifo'));
  rmSync(join(d, 'link.yml'));
  const unknown = cli(['userdata', '10.9.9.9', '--json'], d);
  assert.is(unknown.code, 2);
  assert.match((JSON.parse(unknown.stdout) as { error: string }).error, /no node '10\.9\.9\.9'/);
});

// Found by a review: -o over the inventory (gzip bytes where it was) or into a build's output;
// `-o ''` to stdout; base64 for NoCloud, which never decodes it; a nodename that reads as
// another node's IP; the largest contributors blind to bootcmd's files and users' keys.
test('-o never over an input nor into an output pigen build manages; -o \'\' is a usage error; the size line only once written', () => {
  const d = tmp('pigen-ud-safe-');
  const inv = 'all:\n  vars:\n    admin_ip: 10.10.10.10\n    repo_bundle: /tmp/p.tgz\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n';
  writeFileSync(join(d, 'pigsty.yml'), inv);
  writeFileSync(join(d, 'inv.yml'), inv);
  assert.is(cli(['secrets', 'init'], d).code, 0);
  assert.is(cli(['build', '-o', 'out'], d).code, 0);
  const cases: [string[], RegExp][] = [
    [['inv.yml', '-o', 'inv.yml'], /cannot write inv\.yml: it is the inventory/],
    [['-o', 'pigsty.yml'], /cannot write pigsty\.yml: it is the inventory/],
    [['-o', './out/../pigsty.yml'], /it is the inventory/],
    [['-o', 'out/nodes/10.10.10.10/user-data'], /it is inside .*out, an output of pigen build/],
    [['-o', 'out/x.ud'], /it is inside .*out, an output of pigen build/],
  ];
  for (const [args, re] of cases) {
    const before = readFileSync(join(d, 'inv.yml'), 'utf8');
    const r = cli(['userdata', ip, ...args], d);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.not.match(r.stderr, /bytes of \d+ bytes for/, 'no size line before a failure');
    assert.is(readFileSync(join(d, 'inv.yml'), 'utf8'), before);
  }
  assert.not.ok(existsSync(join(d, 'out/x.ud')));
  // Through a link into the output (nl -> out/nodes): found where it leads.
  symlinkSync(join(d, 'out/nodes'), join(d, 'nl'));
  const linked = cli(['userdata', ip, '-o', 'nl/x.ud'], d);
  assert.is(linked.code, 2, linked.stderr);
  assert.match(linked.stderr, /it is inside .*out, an output of pigen build/);
  assert.not.ok(existsSync(join(d, 'out/nodes/x.ud')));
  const secrets = cli(['userdata', ip, '-o', 'pigsty.secrets.yml'], d);
  assert.is(secrets.code, 2);
  assert.match(secrets.stderr, /it is the secrets file/);
  const empty = cli(['userdata', ip, '-o', '', '--json'], d);
  assert.is(empty.code, 2);
  assert.match(empty.stderr, /-o needs a file path/);
  // A write that fails: its message alone, no size line first.
  mkdirSync(join(d, 'sub'));
  const fail = cli(['userdata', ip, '-o', 'sub'], d);
  assert.is(fail.code, 2);
  assert.not.match(fail.stderr, /bytes of \d+ bytes for/);
  const ok = cli(['userdata', ip, '-o', 'ud'], d);
  assert.is(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /gzip, \d+ bytes of 16384 bytes for aws/);
  // The largest contributors see the file bootcmd carries (the bundle's installer).
  const j = JSON.parse(cli(['userdata', ip, '--json'], d).stdout) as { largest: { path: string }[] };
  assert.ok(j.largest.some((c) => c.path === '/usr/local/bin/pigen-install-bundle'), JSON.stringify(j.largest));
});

test('NoCloud takes no base64 form (it never decodes one); a NODE is an IP first, then a nodename', () => {
  for (const e of ['base64', 'gzip+base64']) {
    const r = cli(['userdata', ip, '--cloud', 'nocloud', '--encoding', e], dir);
    assert.is(r.code, 2, e);
    assert.match(r.stderr, /nocloud reads the seed's user-data as it is and decodes no base64/);
  }
  const d = tmp('pigen-ud-names-');
  writeFileSync(join(d, 'pigsty.yml'), 'all:\n  vars:\n    admin_ip: 10.10.10.10\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n    nodes: { hosts: { 10.10.10.20: { nodename: "10.10.10.21" }, 10.10.10.21: { nodename: web } } }\n');
  for (const [arg, want] of [['10.10.10.21', 'web'], ['web', 'web'], ['10.10.10.20', '10.10.10.21']]) {
    const r = cli(['userdata', arg!, '--cloud', 'nocloud', '--encoding', 'plain'], d);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`\nhostname: "?${want!.replaceAll('.', '\\.')}"?\n`), arg);
  }
});

// cloud-init reads user-data with PyYAML, YAML 1.1: a string such as `no`, `0755`, `1_000`,
// `1:20` or `2001-12-14` must be quoted there, where YAML 1.2 leaves it plain (a review found
// `hostname: no` read as False, failing cloud-init's schema, and meta-data's `local-hostname:
// 0755` read as 493); a lone `=` or `<<` (a value or merge key in 1.1) is rejected.
test('values YAML 1.1 would read as booleans, numbers or dates are quoted in user-data and meta-data; a lone = or << is rejected', () => {
  const d = tmp('pigen-yaml11-');
  const inv = (web: string) =>
    `all:\n  vars:\n    admin_ip: 10.10.10.10\n  children:\n    infra:\n      hosts:\n        10.10.10.10: { infra_seq: 1 }\n    web:\n      hosts:\n${web}`;
  writeFileSync(
    join(d, 'pigsty.yml'),
    inv('        10.10.10.12: { nodename: "no" }\n        10.10.10.13: { nodename: "0755", node_packages: [ "on", "Yes", "1_000", "1:20", "0b101" ] }\n        10.10.10.14: { nodename: "2001-12-14", node_admin_username: "off" }\n'),
  );
  const r = cli(['build', '-o', 'out'], d);
  assert.is(r.code, 0, r.stderr);
  const read = (ipx: string, f: string) => parse(readFileSync(join(d, 'out', 'nodes', ipx, f), 'utf8'), { version: '1.1' }) as Record<string, unknown>;
  for (const [ipx, name] of [['10.10.10.12', 'no'], ['10.10.10.13', '0755'], ['10.10.10.14', '2001-12-14']] as const) {
    for (const f of ['user-data', 'user-data.baked']) assert.is(read(ipx, f).hostname, name, `${ipx} ${f}`);
    assert.is(read(ipx, 'meta-data')['local-hostname'], name, `${ipx} meta-data`);
  }
  const pkgs = read('10.10.10.13', 'user-data').packages as unknown[];
  for (const p of ['on', 'Yes', '1_000', '1:20', '0b101']) assert.ok(pkgs.includes(p), `package ${p} stays a string: ${JSON.stringify(pkgs)}`);
  assert.ok((read('10.10.10.14', 'user-data').users as unknown[]).some((u) => (u as { name?: unknown }).name === 'off'), 'user off');
  writeFileSync(join(d, 'bad.yml'), inv('        10.10.10.12: { node_packages: [ "=", "<<" ] }\n'));
  const bad = cli(['validate', 'bad.yml'], d);
  assert.is(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /node_packages\[0\]: `=` alone cannot be a value pigen writes/);
  assert.match(bad.stderr, /error\[[a-z-]+\]: [^\n]*node_packages\[1\]: /, 'rejected too (as a package name, here)');
  writeFileSync(join(d, 'bad2.yml'), inv('        10.10.10.12: { node_admin_username: "<<" }\n'));
  assert.match(cli(['validate', 'bad2.yml'], d).stderr, /node_admin_username: [^\n]*(`<<` alone cannot be a value pigen writes|contains)/);
});

// (A review found vSphere given raw gzip, which its datasource reads as text, and OpenStack's
// limit applied to decoded bytes where Nova limits the base64 it is sent.)
test('limits: OpenStack counts the base64 Nova is sent, vSphere takes text (never raw gzip)', () => {
  assert.is(LIMITS.openstack.bytes, Math.floor(65_535 / 4) * 3);
  assert.is(Math.ceil(LIMITS.openstack.bytes / 3) * 4 <= 65_535 && Math.ceil((LIMITS.openstack.bytes + 1) / 3) * 4 > 65_535, true);
  assert.is(LIMITS.vsphere.binary, false);
  const r = cli(['userdata', ip, '--cloud', 'vsphere', '--json'], dir);
  assert.is(r.code, 0, r.stderr);
  assert.is.not((JSON.parse(r.stdout) as { encoding: string }).encoding, 'gzip');
  for (const n of Object.values(manifest.nodes as Record<string, { userData: { targets: Record<string, { encoding: string }> } }>)) assert.is.not(n.userData.targets.vsphere!.encoding, 'gzip');
});

// (A review found GCP and vSphere never offered gzip+base64, and warned it would not decode:
// cloud-init 22.4 decodes both, given the encoding key beside the value.)
test('GCP and vSphere: gzip+base64 as pigen writes it, with the metadata it names, is what cloud-init\'s datasources read back', () => {
  const forms: Record<string, { bytes: string; metadata: Record<string, string> }> = {};
  for (const c of ['gcp', 'vsphere'] as const) {
    const out = join(dir, `ud.b64.${c}`);
    const r = cli(['userdata', ip, '--cloud', c, '--json', '-o', out], dir);
    assert.is(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { encoding: string; metadata: Record<string, string>; size: number };
    assert.is(j.encoding, 'gzip+base64', c);
    assert.is(j.size, statSync(out).size, `${c}: the size is the value's`);
    assert.ok(j.size < encodeUserData(text, 'files-gz+b64', c).delivered, `${c}: smaller than files-gz+b64`);
    forms[c] = { bytes: readFileSync(out, 'utf8'), metadata: j.metadata };
    const t = cli(['userdata', ip, '--cloud', c, '-o', out], dir);
    assert.match(t.stderr, new RegExp(`set ${Object.keys(j.metadata)[0]!.replaceAll('.', '\\.')}=${j.metadata[Object.keys(j.metadata)[0]!]!.replace('+', '\\+')} beside the user-data`));
    // Given explicitly: no warning that it would not decode (a raw gzip still warns).
    assert.not.match(cli(['userdata', ip, '--cloud', c, '--encoding', 'gzip+base64', '-o', out], dir).stderr, /will not decode/);
    assert.match(cli(['userdata', ip, '--cloud', c, '--encoding', 'gzip', '-o', out], dir).stderr, /warning: .*raw gzip document will not decode there/);
  }
  assert.equal(forms.gcp!.metadata, { 'user-data-encoding': 'base64' });
  assert.equal(forms.vsphere!.metadata, { 'guestinfo.userdata.encoding': 'gzip+base64' });
  if (!needTools('cloud-init decoding', 'cloud-init')) return;
  const py = cloudInitPython();
  assert.ok(py, 'cloud-init interpreter');
  const work = tmp();
  writeFileSync(join(work, 'gcp'), forms.gcp!.bytes);
  writeFileSync(join(work, 'vsphere'), forms.vsphere!.bytes);
  writeFileSync(join(work, 'meta.json'), JSON.stringify({ gcp: forms.gcp!.metadata, vsphere: forms.vsphere!.metadata }));
  // cloud-init's own datasources: GCE's read_md (its metadata server's answers given here), then
  // the user-data processing every datasource's goes through; VMware's guestinfo, read from the
  // environment (VMX_GUESTINFO_*), as the datasource does when it runs in a container.
  const script = `
import sys, os, json
from cloudinit import util, user_data
from cloudinit.sources import DataSourceGCE as gce, DataSourceVMware as vmw
w = sys.argv[1]
meta = json.load(open(w + '/meta.json'))
attrs = dict(meta['gcp'], **{'user-data': open(w + '/gcp').read()})
answers = {'instance/id': '1', 'instance/zone': 'projects/1/zones/z', 'instance/hostname': 'h', 'instance/attributes': json.dumps(attrs), 'project/attributes': '{}'}
gce.GoogleMetadataFetcher.get_value = lambda self, path, is_text, is_recursive=False: answers.get(path)
util.is_resolvable_url = lambda url: True
class P: num_retries = 0; sec_between_retries = 0
ret = gce.read_md(url_params=P(), platform_check=False)
assert ret['success'], ret
def cloud_config(raw):
    msg = user_data.UserDataProcessor(paths=None).process(raw)
    parts = [p for p in msg.walk() if not p.is_multipart()]
    assert [p.get_content_type() for p in parts] == ['text/cloud-config'], [p.get_content_type() for p in parts]
    return util.fully_decoded_payload(parts[0])
os.environ['VMX_GUESTINFO'] = '1'
os.environ['VMX_GUESTINFO_USERDATA'] = open(w + '/vsphere').read()
for k, v in meta['vsphere'].items(): os.environ[vmw.get_guestinfo_envvar_key_name(k[len('guestinfo.'):])] = v
ud = vmw.guestinfo_envvar('userdata')
json.dump({'gcp': cloud_config(ret['user-data']), 'vsphere': cloud_config(ud)}, sys.stdout)
`;
  const r = run(py!, ['-c', script, work]);
  assert.is(r.code, 0, r.stderr);
  const got = JSON.parse(r.stdout) as Record<string, string>;
  assert.is(got.gcp, text, 'gcp');
  assert.is(got.vsphere, text, 'vsphere');
});

test('every encoded form decodes (gunzip, base64) back to the same cloud-config', () => {
  for (const e of ['plain', 'gzip', 'base64', 'gzip+base64'] as const) {
    const { bytes } = encodeUserData(text, e);
    let b = Buffer.from(bytes);
    if (e.includes('base64')) b = Buffer.from(b.toString('utf8'), 'base64');
    if (e.startsWith('gzip')) {
      assert.is(b[3], 0, 'gzip header has no file name or comment');
      assert.is(b.readUInt32LE(4), 0, 'gzip header mtime 0');
      b = gunzipSync(b);
    }
    assert.is(b.toString('utf8'), text, e);
  }
});

test('cloud-init decodes gzip user-data and gz+b64 write_files back to the rootfs files; all forms pass its schema', () => {
  if (!needTools('cloud-init decoding', 'cloud-init')) return;
  const py = cloudInitPython();
  assert.ok(py, 'cloud-init interpreter');
  const work = tmp();
  const forms = { plain: encodeUserData(text, 'plain').bytes, gzip: encodeUserData(text, 'gzip').bytes, files: encodeUserData(text, 'files-gz+b64').bytes };
  for (const [name, bytes] of Object.entries(forms)) writeFileSync(join(work, name), bytes);
  // cloud-init's own code: util.decomp_gzip for the document, cc_write_files for each entry.
  const script = `
import sys, json, yaml
from cloudinit import util
from cloudinit.config import cc_write_files as w
out = {}
for name in ('plain', 'gzip', 'files'):
    raw = open(sys.argv[1] + '/' + name, 'rb').read()
    doc = util.decomp_gzip(raw, quiet=False) if name == 'gzip' else raw.decode()
    open(sys.argv[1] + '/' + name + '.decoded', 'w').write(doc)
    cfg = yaml.safe_load(doc)
    files = {}
    for f in cfg.get('write_files', []):
        enc = w.canonicalize_extraction(f.get('encoding'))
        c = w.extract_contents(f.get('content', ''), enc)
        files[f['path']] = c.decode() if isinstance(c, bytes) else c
    out[name] = files
print(json.dumps(out))
`;
  const r = run(py!, ['-c', script, work]);
  assert.is(r.code, 0, r.stderr);
  const decoded = JSON.parse(r.stdout) as Record<string, Record<string, string>>;
  const rootfs = join(dir, 'out/nodes', ip, 'rootfs');
  const files = manifest.nodes[ip].files as { path: string; out: string; via?: string }[];
  for (const form of ['plain', 'gzip', 'files']) {
    let checked = 0;
    for (const f of files) {
      const got = decoded[form]![f.path];
      if (got === undefined) continue; // delivered by the apt/ntp modules
      assert.is(got, readFileSync(join(dir, 'out', f.out), 'utf8'), `${form}: ${f.path}`);
      checked++;
    }
    assert.ok(checked > 20, `${form}: ${checked} files compared`);
    const s = run('cloud-init', ['schema', '-c', join(work, `${form}.decoded`)]);
    assert.is(s.code, 0, s.stdout + s.stderr);
  }
  assert.ok(existsSync(rootfs));
});

test('MIME multipart: deterministic boundary from the content, two parts, runcmd moved to the shell part', () => {
  const a = toMime(text);
  const b = toMime(text);
  assert.is(a, b);
  const boundary = a.match(/boundary="([^"]+)"/)![1]!;
  assert.match(boundary, /^pigen-[0-9a-f]{32}$/);
  assert.is(a.split(`--${boundary}\n`).length - 1, 2);
  assert.ok(a.endsWith(`--${boundary}--\n`));
  const changed = toMime(text.replace('pg-meta-1', 'pg-meta-2'));
  assert.is.not(changed.match(/boundary="([^"]+)"/)![1], boundary);
  const ccPart = a.split(`--${boundary}`)[1]!.split('\n\n').slice(1).join('\n\n');
  // (Quoted-printable: pigen's header has a `—`.)
  const qp = (t: string) => Buffer.from(t.replace(/=\n/g, '').replace(/=([0-9A-F]{2})|[^]/g, (c, h?: string) => (h ? String.fromCharCode(parseInt(h, 16)) : c)), 'latin1').toString('utf8');
  const cc = parse(qp(ccPart));
  assert.is(cc.runcmd, undefined);
  assert.match(a, /systemctl enable \S+\.service.* && systemctl restart \S+\.service/);
  const py = cloudInitPython();
  if (py) {
    const f = join(tmp(), 'mime');
    writeFileSync(f, a);
    const r = run(py, ['-c', 'import email,sys; m=email.message_from_binary_file(open(sys.argv[1],"rb")); print(",".join(p.get_content_type() for p in m.walk() if not p.is_multipart()))', f]);
    assert.is(r.stdout.trim(), 'text/cloud-config,text/x-shellscript');
  }
  // The shell part runs the steps as cloud-init runs runcmd: a failing one does not stop the
  // next, and a list-form step keeps its words (quoted).
  const doc = `#cloud-config\nruncmd:\n  - 'false'\n  - [printf, '%s|', 'a b', "it's"]\n`;
  const m = toMime(doc);
  const mb = m.match(/boundary="([^"]+)"/)![1]!;
  const script = m.split(`--${mb}`)[2]!.split('\n\n').slice(1).join('\n\n');
  assert.not.match(script, /set -e/);
  const sh = run('sh', ['-c', script]);
  assert.is(sh.stdout, "a b|it's|");
});

// (A review found any `—` (pigen's own headers have them) sent the cloud-config part as base64,
// which doubled the MIME document's gzip.)
test('MIME: a part with text beyond ASCII goes quoted-printable (base64 only where shorter), which cloud-init decodes to the exact bytes; the gzip stays near the text\'s', () => {
  const doc = `#cloud-config\nwrite_files:\n  - path: /etc/x\n    content: "µs — 10 µs"\nruncmd:\n  - echo ok\n`;
  const m = toMime(doc);
  const boundary = m.match(/boundary="([^"]+)"/)![1]!;
  const [, cc, sh] = m.split(`--${boundary}`);
  assert.match(cc!, /Content-Transfer-Encoding: quoted-printable\n/);
  assert.match(sh!, /Content-Transfer-Encoding: 7bit\n/);
  const body = cc!.split('\n\n').slice(1).join('\n\n');
  for (const line of body.trim().split('\n')) assert.ok(/^[\x20-\x7e]{0,76}$/.test(line) && !/[ \t]$/.test(line), line);
  assert.match(body, /content: "=C2=B5s =E2=80=94 10 =C2=B5s"/);
  // pigen's own cloud-config (a `—` in its header): the MIME document's gzip is about the text's.
  const g = (t: string) => gzipSync(Buffer.from(t)).length;
  assert.ok(g(toMime(text)) < g(text) * 1.15, `${g(toMime(text))} vs ${g(text)}`);
  assert.match(toMime(text), /Content-Transfer-Encoding: quoted-printable\n/);
  // Mostly beyond ASCII: base64, the shorter.
  assert.equal(transferEncoding('日本語'.repeat(30) + '\n').cte, 'base64');
  assert.equal(transferEncoding('ascii\n').cte, '7bit');
  // What cloud-init reads from it: its UserDataProcessor (Python's email), byte for byte; hard
  // cases among them (trailing blanks, `=`, long lines, CR, NUL, no final newline).
  const py = cloudInitPython();
  if (!py) return;
  const cases = [doc, 'x'.repeat(200) + 'é\n', 'trail \nt\t\nend =\n' + '=é'.repeat(60) + ' \n', 'no final é', ' '.repeat(80) + 'é\n', 'a\r\nb é\n\r', '日本語'.repeat(40) + '\n', 'é' + 'a'.repeat(74) + ' \n', 'é' + 'a'.repeat(73) + '\t\n', 'é' + 'a'.repeat(72) + ' \n', 'x\u0000y\u007fé\n', '\n\n \n\té', 'é' + 'a'.repeat(76) + '\n' + 'b'.repeat(75) + ' \n'];
  // Every quoted-printable line: at most 76 characters, no blank at its end, only printable ASCII or a tab.
  for (const c of cases) for (const line of quotedPrintable(c).split('\n')) assert.ok(line.length <= 76 && !/[ \t]$/.test(line) && /^[\t\x20-\x7e]*$/.test(line), JSON.stringify(line));
  const parts = cases.flatMap((c) => [{ c, cte: 'quoted-printable', body: quotedPrintable(c) }, { c, ...transferEncoding(c) }]);
  const f = join(tmp(), 'parts.json');
  writeFileSync(f, JSON.stringify({ parts, mime: m }));
  const script = `
import sys, json
from cloudinit import user_data, util
d = json.load(open(sys.argv[1]))
def payloads(m):
    msg = user_data.UserDataProcessor(paths=None).process(m.encode())
    return [util.fully_decoded_payload(p) for p in msg.walk() if not p.is_multipart()]
out = [payloads('Content-Type: multipart/mixed; boundary="BB"\\nMIME-Version: 1.0\\n\\n--BB\\nContent-Type: text/x-shellscript; charset="utf-8"\\nMIME-Version: 1.0\\nContent-Transfer-Encoding: %s\\n\\n%s\\n--BB--\\n' % (p['cte'], p['body']))[0] for p in d['parts']]
json.dump({'parts': out, 'mime': payloads(d['mime'])[0]}, sys.stdout)
`;
  const r = run(py, ['-c', script, f]);
  assert.is(r.code, 0, r.stderr);
  const got = JSON.parse(r.stdout) as { parts: string[]; mime: string };
  parts.forEach((p, i) => assert.is(got.parts[i], p.c, `${p.cte}: ${JSON.stringify(p.c)}`));
  assert.match(got.mime, /content: "?µs — 10 µs"?\n/);
  assert.equal(parse(got.mime), { write_files: [{ path: '/etc/x', content: 'µs — 10 µs' }] });
});

test('--mime with --encoding files-gz+b64: the cloud-config part has its files gzipped (no internal error)', () => {
  const r = cli(['userdata', '10.10.10.10', '--mime', '--encoding', 'files-gz+b64', '--cloud', 'nocloud']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Content-Type: multipart\/mixed/);
  const boundary = r.stdout.match(/boundary="([^"]+)"/)![1]!;
  const part = r.stdout.split(`--${boundary}`)[1]!;
  const body = part.split('\n\n').slice(1).join('\n\n');
  const cc = /Content-Transfer-Encoding: base64/.test(part) ? Buffer.from(body, 'base64').toString('utf8') : body;
  assert.match(cc, /encoding: gz\+b64/);
  assert.match(r.stderr, /files-gz\+b64 MIME/);
});

test('GCP and vSphere count a base64 form as its text; AWS as the decoded bytes', () => {
  const doc = '#cloud-config\n' + 'x'.repeat(3000) + '\n';
  const raw = Buffer.byteLength(doc);
  assert.is(encodeUserData(doc, 'base64', 'aws').delivered, raw);
  // (The text as written, its final newline included: a review found it measured one byte short.)
  assert.is(encodeUserData(doc, 'base64', 'gcp').delivered, Math.ceil(raw / 3) * 4 + 1);
  assert.is(encodeUserData(doc, 'base64', 'vsphere').delivered, Math.ceil(raw / 3) * 4 + 1);
  for (const c of ['gcp', 'vsphere'] as const) for (const e of ['base64', 'gzip+base64'] as const) assert.is(encodeUserData(doc, e, c).delivered, encodeUserData(doc, e, c).bytes.length, `${c} ${e}`);
});


// (Found by a review: `--baked` of the node serving the repo named the bundle-less image, where
// `pigen build --bundle` had named the image with the bundle's manifest hash.)
test('--baked --bundle FILE: the baked user-data pigen build --bundle writes, its image named with the bundle', () => {
  if (!needTools('userdata --bundle', 'dpkg-deb', 'tar')) return;
  const d = tmp('pigen-ud-bundle-');
  writeFileSync(join(d, 'pigsty.yml'), 'all:\n  vars:\n    admin_ip: 10.10.10.10\n    repo_bundle: /tmp/p.tgz\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n');
  makeDeb(d, 'pigen-ud', 'gzip');
  assert.is(cli(['bundle', '--from', 'debs', '-o', 'b.tgz', '--quiet'], d).code, 0);
  assert.is(cli(['build', '-o', 'out', '--bundle', 'b.tgz'], d).code, 0);
  const written = readFileSync(join(d, 'out/nodes/10.10.10.10/user-data.baked'), 'utf8');
  const withBundle = cli(['userdata', '10.10.10.10', '--baked', '--bundle', 'b.tgz', '--encoding', 'plain', '--cloud', 'nocloud'], d);
  assert.is(withBundle.code, 0, withBundle.stderr);
  assert.is(withBundle.stdout, written);
  const without = cli(['userdata', '10.10.10.10', '--baked', '--encoding', 'plain', '--cloud', 'nocloud'], d);
  assert.is.not(without.stdout, written, 'the image without the bundle is another');
  const bad = cli(['userdata', '10.10.10.10', '--baked', '--bundle', 'pigsty.yml'], d);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--bundle pigsty\.yml: not a valid pigen bundle/);
});

test.run();
