// The bake/boot split and the Packer templates: simu.yml's 20 nodes share a handful of images,
// image content is what every node of a role shares (and embeds no node's identity), a role with
// one node still bakes its role-generic files, content hashes move with content, every
// user-data.baked passes `cloud-init schema -c`, and `packer validate` (Debian's 1.6.6) passes
// with every image's var file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, SHARED, needShared, needTools, pigen, run, tmp } from './helpers.ts';
import { compileInventory } from './tree.ts';
import { splitImages } from '../generator/emit/images.ts';
import { packageVersion } from '../generator/io.ts';

const version = packageVersion();
/** A fresh empty working directory: no ./pigsty.yml, so the embedded default inventory. */
const emptyDir = () => tmp('pigen-img-cwd-');
const dec = new TextDecoder();
const fileOf = (c: ReturnType<typeof compileInventory>, path: string) => {
  const e = c.tree.find((x) => x.path === path);
  assert.ok(e && 'data' in e, `${path} in the build`);
  return dec.decode((e as { data: Uint8Array }).data);
};

test('simu.yml: 20 nodes, a handful of images; nodes of one role share one image', () => {
  if (!needShared('images of simu.yml')) return;
  const c = compileInventory({ cwd: SHARED!, arg: 'pigsty-conf/simu.yml' });
  const { images, byNode } = splitImages(c.nodes, { version });
  assert.is(c.nodes.length, 20);
  assert.ok(images.length >= 2 && images.length <= 5, `a handful of images, got ${images.length}: ${images.map((i) => i.name).join(' ')}`);
  assert.is(images.length, 2, 'infra nodes and the rest (pigen plans only NODE files on non-infra nodes, so those roles share content)');
  assert.equal(images.reduce((n, i) => n + i.nodes.length, 0), 20, 'every node boots from exactly one image');
  const infra = images.find((i) => i.role.startsWith('infra'))!;
  assert.equal(infra.nodes, ['10.10.10.10', '10.10.10.11', '10.10.10.12']);
  for (const n of c.nodes) {
    const own = byNode.get(n.ip)!;
    const sameRole = c.nodes.filter((m) => m.modules.join() === n.modules.join());
    for (const m of sameRole) assert.is(byNode.get(m.ip)!.image.name, own.image.name, `${n.nodename} and ${m.nodename} share an image`);
    for (const f of own.image.files) {
      const mine = n.files.find((x) => x.path === f.path)!;
      assert.ok(mine, `${n.ip} has ${f.path}`);
      for (const ip of own.image.nodes) assert.not.ok(new RegExp(`(?<![\\d.])${ip.replace(/\./g, '\\.')}(?![\\d])`).test(mine.content), `${f.path} in ${own.image.name} embeds ${ip}`);
    }
  }
  // What goes where on infra nodes.
  const paths = new Set(infra.files.map((f) => f.path));
  for (const p of ['/infra/rules/node.yml', '/etc/systemd/system/vmetrics.service', '/etc/alertmanager.yml', '/etc/nginx/nginx.conf']) assert.ok(paths.has(p), `${p} is image content`);
  for (const p of ['/etc/hosts', '/etc/resolv.conf', '/etc/vector/vector.yaml', '/etc/grafana/grafana.ini', '/etc/dnsmasq.conf']) assert.not.ok(paths.has(p), `${p} is boot content`);
  assert.not.ok([...paths].some((p) => p.startsWith('/infra/targets/')), 'scrape targets (fleet lists) are boot content');
  assert.ok(infra.packages.includes('victoria-metrics'));

  // Written: out/images/<name>.{json,pkrvars.hcl}; each node's manifest entry names its image.
  const m = JSON.parse(fileOf(c, 'manifest.json'));
  for (const img of images) {
    const j = JSON.parse(fileOf(c, `images/${img.name}.json`));
    assert.is(j.hash, img.hash);
    assert.equal(j.nodes, img.nodes);
    assert.match(fileOf(c, `images/${img.name}.pkrvars.hcl`), new RegExp(`content_hash  = "${img.hash}"`));
    for (const ip of img.nodes) assert.is(m.nodes[ip].image.name, img.name);
  }
  assert.match(infra.name, /^pigsty-infra-pgsql-d12-[0-9a-f]{12}$/);
});

test('a role with one node still bakes its role-generic files (the embedded default inventory)', () => {
  const c = compileInventory({ cwd: emptyDir() });
  const { images } = splitImages(c.nodes, { version });
  assert.is(images.length, 1);
  const paths = new Set(images[0]!.files.map((f) => f.path));
  assert.ok(paths.size > 15, `${paths.size} files in the image`);
  assert.ok(paths.has('/etc/systemd/system/node_exporter.service'));
  assert.ok(paths.has('/infra/rules/infra.yml'));
  assert.not.ok(paths.has('/etc/vector/vector.yaml'), 'embeds the node IP');
  assert.not.ok(paths.has('/etc/hosts'));
});

test('the content hash moves with content (a file, the package set, the bundle) and nothing else', () => {
  const base = compileInventory({ cwd: emptyDir() });
  const h = (c: ReturnType<typeof compileInventory>, o = {}) => splitImages(c.nodes, { version, ...o }).images.map((i) => i.hash).join();
  assert.is(h(base), h(compileInventory({ cwd: emptyDir() })), 'deterministic');
  assert.is.not(h(base), h(compileInventory({ cwd: emptyDir(), sets: ['node_exporter_port=9111'] })), 'a unit flag changed');
  assert.is.not(h(base), h(compileInventory({ cwd: emptyDir(), sets: ['node_packages=[jq]'] })), 'a package added');
  // Boot content only: the node's /etc/hosts entries.
  assert.is(h(base), h(compileInventory({ cwd: emptyDir(), sets: ['node_etc_hosts=["10.10.10.99 extra.pigsty"]'] })));
  // The bundle's manifest hash counts only for an image that carries the repo.
  assert.is(h(base), h(base, { bundleSha256: 'a'.repeat(64) }));
  const repo = compileInventory({ cwd: emptyDir(), sets: ['repo_bundle=/tmp/pkg.tgz', 'repo_enabled=true'] });
  assert.ok(splitImages(repo.nodes, { version }).images[0]!.repo, 'the admin infra node carries the repo');
  assert.is.not(h(repo, { bundleSha256: 'a'.repeat(64) }), h(repo, { bundleSha256: 'b'.repeat(64) }));
});

test("one node's host var changes that node's boot content, not the image its role shares (majority variant)", () => {
  const dir = tmp('pigen-img-major-');
  const inv = (extra: string) =>
    [
      'all:',
      '  vars: { admin_ip: 10.10.10.10 }',
      '  children:',
      '    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }',
      '    pg-a:',
      '      vars: { pg_cluster: pg-a }',
      '      hosts:',
      `        10.10.10.11: { pg_seq: 1, pg_role: primary${extra} }`,
      '        10.10.10.12: { pg_seq: 2, pg_role: replica }',
      '        10.10.10.13: { pg_seq: 3, pg_role: replica }',
      '',
    ].join('\n');
  writeFileSync(join(dir, 'a.yml'), inv(''));
  writeFileSync(join(dir, 'b.yml'), inv(', node_exporter_port: 9200'));
  const a = compileInventory({ cwd: dir, arg: 'a.yml' });
  const b = compileInventory({ cwd: dir, arg: 'b.yml' });
  const sa = splitImages(a.nodes, { version });
  const sb = splitImages(b.nodes, { version });
  assert.equal(sb.images.map((i) => i.name), sa.images.map((i) => i.name), 'the same images');
  const env = '/etc/default/node_exporter';
  const pg = sb.byNode.get('10.10.10.12')!;
  assert.ok(pg.image.files.some((f) => f.path === env), `${env} is image content (the majority's variant)`);
  assert.ok(pg.inImage.has(env));
  assert.not.ok(sb.byNode.get('10.10.10.11')!.inImage.has(env), 'the odd node does not take it from the image');
  // In the output: only the odd node's boot user-data changes among the pg nodes, and it carries its own file.
  const data = (c: ReturnType<typeof compileInventory>, p: string) => fileOf(c, p);
  for (const ip of ['10.10.10.12', '10.10.10.13']) assert.is(data(b, `nodes/${ip}/user-data.baked`), data(a, `nodes/${ip}/user-data.baked`), `${ip}: user-data.baked unchanged`);
  const odd = data(b, 'nodes/10.10.10.11/user-data.baked');
  assert.is.not(odd, data(a, 'nodes/10.10.10.11/user-data.baked'));
  assert.match(odd, /\/etc\/default\/node_exporter/);
  assert.match(odd, /9200/);
  assert.not.match(data(b, 'nodes/10.10.10.12/user-data.baked'), /\/etc\/default\/node_exporter/);
  // Two against two has no majority: the file stays boot content for all.
  writeFileSync(join(dir, 'c.yml'), inv(', node_exporter_port: 9200').replace('pg_seq: 2, pg_role: replica }', 'pg_seq: 2, pg_role: replica, node_exporter_port: 9200 }').replace('        10.10.10.13', '        10.10.10.14: { pg_seq: 4, pg_role: replica }\n        10.10.10.13'));
  const sc = splitImages(compileInventory({ cwd: dir, arg: 'c.yml' }).nodes, { version });
  assert.not.ok(sc.byNode.get('10.10.10.13')!.image.files.some((f) => f.path === env), 'no strict majority: not image content');
});

test('user-data.baked: no image files, no packages, hostname and boot files kept; passes cloud-init schema -c', () => {
  const cases = [{ cwd: emptyDir() }, ...(SHARED ? [{ cwd: SHARED, arg: 'pigsty-conf/simu.yml' }, { cwd: SHARED, arg: 'pigsty-conf/el.yml', sets: ['os_profile=el9'] }] : [])];
  const haveCi = needTools('cloud-init schema of user-data.baked', 'cloud-init');
  const dir = tmp('pigen-baked-');
  let n = 0;
  for (const input of cases) {
    const c = compileInventory(input);
    const { byNode } = splitImages(c.nodes, { version });
    const seen = new Set<string>();
    for (const node of c.nodes) {
      const text = fileOf(c, `nodes/${node.ip}/user-data.baked`);
      assert.match(text, /^#cloud-config\n# boots from image pigsty-/);
      assert.not.match(text, /^packages:/m);
      assert.not.match(text, /^package_update:/m);
      const own = byNode.get(node.ip)!;
      for (const p of own.inImage) assert.not.ok(text.includes(`path: ${p}\n`), `${node.ip}: ${p} is in the image`);
      if (node.hostname) assert.match(text, new RegExp(`^hostname: ${node.hostname}$`, 'm'));
      assert.ok(text.length < fileOf(c, `nodes/${node.ip}/user-data`).length);
      if (haveCi && !seen.has(text)) {
        seen.add(text);
        const f = join(dir, `ud-${n++}`);
        writeFileSync(f, text);
        const r = run('cloud-init', ['schema', '-c', f]);
        assert.is(r.code, 0, `${node.ip}: ${r.stdout}${r.stderr}`);
      }
    }
  }
});

test('packer validate passes for every image var file (Debian Packer 1.6.6), required_plugins kept apart', () => {
  if (!needTools('packer validate of images/', 'packer')) return;
  const dir = tmp('pigen-packer-');
  const inputs = [{ name: 'default', cwd: emptyDir() }, ...(SHARED ? [{ name: 'simu', cwd: SHARED, arg: 'pigsty-conf/simu.yml' }, { name: 'el9', cwd: SHARED, arg: 'pigsty-conf/el.yml', sets: ['os_profile=el9'] }] : [])];
  let count = 0;
  for (const input of inputs) {
    const c = compileInventory(input);
    for (const e of c.tree.filter((x) => x.path.endsWith('.pkrvars.hcl'))) {
      const f = join(dir, `${input.name}-${e.path.split('/').pop()}`);
      writeFileSync(f, (e as { data: Uint8Array }).data);
      const r = run('packer', ['validate', `-var-file=${f}`, join(ROOT, 'images')]);
      assert.is(r.code, 0, `${f}:\n${r.stdout}${r.stderr}`);
      count++;
    }
  }
  // (Every input has at least one image; in a clone without ../shared only the default is built.)
  if (!SHARED) needShared('packer validate of the shared inventories\' images');
  assert.ok(count >= inputs.length, `${count} var files validated`);
  // The newer-Packer-only block lives outside images/ (1.6.6 rejects it).
  assert.not.ok(readdirSync(join(ROOT, 'images')).some((f) => f.endsWith('.pkr.hcl') && readFileSync(join(ROOT, 'images', f), 'utf8').includes('required_plugins')));
  assert.match(readFileSync(join(ROOT, 'images/plugins/required_plugins.pkr.hcl'), 'utf8'), /required_plugins/);
});

test('pigen build writes images/ and user-data.baked; pigen bake --dry-run plans without packer', () => {
  const cwd = emptyDir();
  const b = pigen(['build', '-o', 'out'], cwd);
  assert.is(b.code, 0, b.stderr);
  const imgs = readdirSync(join(cwd, 'out/images')).sort();
  assert.is(imgs.length, 2);
  assert.match(imgs[0]!, /^pigsty-.*\.json$/);
  assert.match(imgs[1]!, /^pigsty-.*\.pkrvars\.hcl$/);
  const name = imgs[0]!.replace(/\.json$/, '');
  mkdirSync(join(cwd, 'baked'), { recursive: true });
  const d = pigen(['bake', '--dry-run'], cwd, { PATH: '/nonexistent' });
  assert.is(d.code, 0, d.stderr);
  assert.match(d.stdout, new RegExp(`bake  ${name}  1 node, \\d+ files, \\d+ packages: no baked/${name}\\.rootfs\\.tar\\.gz`));
  writeFileSync(join(cwd, 'baked', `${name}.rootfs.tar.gz`), 'x');
  const again = pigen(['bake', '--dry-run'], cwd);
  assert.match(again.stdout, new RegExp(`reuse ${name} .*baked/${name}\\.rootfs\\.tar\\.gz exists`));
  const bad = pigen(['bake', '--only', 'nope'], cwd);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /no image matches --only nope; the images of this inventory: pigsty-/);
  // (A review found: `--only ''` taking every image, -o naming a file a stack trace, a malformed
  // --aws-endpoint reported as a failed lookup.)
  assert.is(pigen(['bake', '--only', '', '--dry-run'], cwd).code, 2, "--only '' matches nothing");
  writeFileSync(join(cwd, 'afile'), 'x');
  for (const o of ['afile', 'afile/sub']) {
    const f = pigen(['bake', '-o', o], cwd, { PATH: '/nonexistent' });
    assert.is(f.code, 2, f.stderr);
    assert.match(f.stderr, /-o afile(\/sub)?: (\S*afile is |is )?not a directory/);
    assert.not.match(f.stderr, /internal error/);
  }
  const url = pigen(['bake', '--target', 'aws', '--aws-endpoint', 'not a url', '--dry-run'], cwd, { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' });
  assert.is(url.code, 2, url.stderr);
  assert.match(url.stderr, /'not a url' is not an http\(s\) URL/);
  // A corrupt --bundle is bad input (exit 2, as for pigen build --bundle); --json is a report on
  // stdout for a real bake too, not only --dry-run. (A review found exit 1, and --json ignored.)
  writeFileSync(join(cwd, 'junk.tgz'), 'not a bundle');
  const junk = pigen(['bake', '--bundle', 'junk.tgz', '--json'], cwd, { PATH: '/nonexistent' });
  assert.is(junk.code, 2, junk.stderr);
  assert.match(junk.stderr, /--bundle junk\.tgz: not a valid pigen bundle: .*\(make it again: pigen bundle\)/);
  assert.equal(Object.keys(JSON.parse(junk.stdout)), ['ok', 'error']);
  rmSync(join(cwd, 'baked', `${name}.rootfs.tar.gz`));
  const noPacker = pigen(['bake', '--json'], cwd, { PATH: '/nonexistent' });
  assert.is(noPacker.code, 1, noPacker.stderr);
  const report = JSON.parse(noPacker.stdout) as { ok: boolean; error: string; images: { name: string; action: string; result: string }[] };
  assert.is(report.ok, false);
  assert.match(report.error, /bake needs packer on PATH/);
  assert.equal(report.images.map((i) => [i.name, i.action, i.result]), [[name, 'bake', 'not baked']]);
});

test('a qemu or aws bake uploads the --bundle with the content (images/build.pkr.hcl reads /tmp/pigen-content/bundle.tgz)', () => {
  if (!needTools('staging a bundle for a VM bake', 'dpkg-deb', 'tar')) return;
  const cwd = emptyDir();
  // A real (tiny) bundle, and a `packer` that records what pigen staged and makes the artifact.
  const root = join(cwd, 'pkgroot');
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  writeFileSync(join(root, 'DEBIAN/control'), 'Package: pigen-tiny\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n');
  mkdirSync(join(cwd, 'debs'));
  assert.is(run('dpkg-deb', ['--root-owner-group', '--build', root, join(cwd, 'debs/pigen-tiny_1.0_all.deb')]).code, 0);
  const b = pigen(['bundle', '--from', 'debs', '-o', 'bundle.tgz', '--quiet'], cwd);
  assert.is(b.code, 0, b.stderr);
  const bin = join(cwd, 'bin');
  mkdirSync(bin);
  writeFileSync(
    join(bin, 'packer'),
    `#!/bin/sh\nfor a in "$@"; do case "$a" in content_dir=*) c=\${a#content_dir=};; output_dir=*) o=\${a#output_dir=};; image_name=*) n=\${a#image_name=};; esac; done\nls "$c" > "${cwd}/staged.txt"\ncmp "$c/bundle.tgz" "${cwd}/bundle.tgz" && echo same >> "${cwd}/staged.txt"\nexit 0\n`,
    { mode: 0o755 },
  );
  const r = pigen(['bake', '--target', 'qemu', '--bundle', 'bundle.tgz', '-o', 'baked', '--json'], cwd, { PATH: `${bin}:${process.env.PATH}` });
  // (--json: the report alone on stdout; this packer makes no qcow2, so the bake failed.)
  assert.is(r.code, 1, r.stderr);
  const report = JSON.parse(r.stdout) as { ok: boolean; images: { result: string; error: string; seconds: number }[] };
  assert.is(report.ok, false);
  assert.is(report.images[0]!.result, 'failed');
  assert.match(report.images[0]!.error, /^packer exit 0, no baked\/.*\.qcow2$/);
  assert.match(r.stderr, /\] packer build -color=false/, 'progress lines on stderr');
  const staged = readFileSync(join(cwd, 'staged.txt'), 'utf8').split('\n');
  assert.ok(staged.includes('bundle.tgz'), `staged: ${staged.join(' ')}\n${r.stdout}${r.stderr}`);
  assert.ok(staged.includes('same'), 'the staged bundle is the --bundle file');
  assert.ok(staged.includes('image.json') && staged.includes('files.tsv'));
});

test.run();
