// A real local bake, as `.ci/run` runs it: `pigen bundle --download` fetches the node image's
// packages (chrony, curl, ca-certificates, sudo, the node exporter and their dependencies) with an isolated apt-get,
// `pigen bundle` makes a real bundle, and `pigen bake --only node --target local --bundle` runs
// Debian's Packer (null source, shell-local): debootstrap (minbase, bookworm, + cloud-init and systemd-sysv), the
// image's packages from the bundle (a file: repo inside the root filesystem), the image files,
// cloud-init clean, a rootfs tarball. The test looks inside the tarball, then checks that a second
// bake reuses it; then boots the image: cloud-init's first boot with a node's user-data.baked in a
// chroot of the unpacked tarball; boots a plain Debian root with a node's full user-data, its
// packages from the bundle served over HTTP; then bakes the same image as a VM would be baked
// (Packer's cloud build over SSH into a booted Debian root). Needs root and the Debian mirror; the debootstrap result and the downloaded
// .debs are cached under the OS temp dir between runs (a cold cache works too, just slower).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { main } from '../generator/cli/main.ts';
import { needTools, ROOT, run, skip, tmp, which } from './helpers.ts';

const HAVE = needTools('local bake (packer, debootstrap)', 'packer', 'debootstrap', 'apt-get', 'chroot', 'mount', 'tar', 'dpkg-deb', 'unshare');
const ROOT_USER = process.getuid?.() === 0;
if (HAVE && !ROOT_USER) skip('SKIP local bake: debootstrap and chroot need root');

async function cli(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  let out = '';
  let err = '';
  const code = await main(args, {
    cwd,
    env,
    stdout: { write: (s) => void (out += s), isTTY: false },
    stderr: { write: (s) => void (err += s), isTTY: false },
    epoch: 0,
  });
  return { code, out, err };
}

const ALICE = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGCnbi4GnkD7wx8YOJ58rQYGLRZ3Dpj/WFkplaN35X64 alice@laptop';
const INVENTORY = `all:
  children:
    infra: { hosts: { 10.10.10.10: { infra_seq: 1, node_repo_modules: 'node,infra' } } }
    web:
      hosts: { 10.10.10.11: {}, 10.10.10.12: {} }
      vars: { vector_enabled: false, node_packages: [] }
  vars:
    admin_ip: 10.10.10.10
    node_ntp_servers: [ 'pool 2.debian.pool.ntp.org iburst' ]
    repo_packages: [chrony, curl, ca-certificates, sudo, prometheus-node-exporter]
    repo_extra_packages: []
    node_admin_pk_list: [ '${ALICE}' ]
`;
/** What the bake leaves for the first-boot test: the inventory's directory and the image's tarball. */
let baked: { dir: string; tarball: string; debootstrap: string } | undefined;

test('pigen bake --target local: a rootfs tarball with the image files, packages from the bundle, cloud-init cleaned; reused the second time', async () => {
  if (!HAVE || !ROOT_USER) return;
  const t0 = Date.now();
  const dir = tmp('pigen-bake-');
  writeFileSync(join(dir, 'pigsty.yml'), INVENTORY);
  // (With a secrets file: the CA in the image, the fleet's admin SSH key at boot.)
  assert.is((await cli(['secrets', 'init'], dir)).code, 0);
  const cacheRoot = join(tmpdir(), 'pigen-test-cache');
  mkdirSync(cacheRoot, { recursive: true });

  // The image: both web nodes, chrony.conf and the local repo source baked in.
  const plan = await cli(['bake', '--dry-run', '--json', '--only', 'node'], dir);
  assert.is(plan.code, 0, plan.err);
  const img = JSON.parse(plan.out).images[0] as { name: string; hash: string; bakeKey: string; nodes: string[]; action: string };
  assert.equal(img.nodes, ['10.10.10.11', '10.10.10.12']);
  assert.is(img.action, 'bake');
  assert.match(img.name, /^pigsty-node-d12-[0-9a-f]{12}$/);

  // A real bundle of the image's packages.
  const apt = join(cacheRoot, 'apt-bake');
  const dl = await cli(['bundle', '--download', '--cache', apt, '--quiet'], dir);
  assert.is(dl.code, 0, dl.err);
  const b = await cli(['bundle', '--from', join(apt, 'archives'), '-o', join(dir, 'pkg.tgz'), '--quiet'], dir);
  assert.is(b.code, 0, b.err);
  const tDl = Date.now();

  const args = ['bake', '--only', img.name, '--target', 'local', '--bundle', 'pkg.tgz', '--cache', join(cacheRoot, 'debootstrap'), '-o', 'baked'];
  // (Under a umask that would make the image's directories 0700: the bake scripts set their own.
  // A review found /etc/pigen, /etc/apt/backup and the link targets made 0750 under umask 027.)
  const umask = process.umask(0o077);
  let r: Awaited<ReturnType<typeof cli>>;
  try {
    r = await cli(args, dir);
  } finally {
    process.umask(umask);
  }
  const tBake = Date.now();
  assert.is(r.code, 0, r.out.split('\n').slice(-60).join('\n') + r.err);
  assert.match(r.out, new RegExp(`^  bake  ${img.name} `, 'm'));
  assert.match(r.out, new RegExp(`^\\[${img.name} \\+\\d+s\\] ==> local\\.null\\.local: Running local shell script: .*debootstrap\\.sh$`, 'm'), 'packer output streamed, prefixed');
  assert.match(r.out, new RegExp(`^\\[${img.name}\\] baked in [\\d.]+ s: baked/${img.name}\\.rootfs\\.tar\\.gz$`, 'm'));
  const tarball = join(dir, 'baked', `${img.name}.rootfs.tar.gz`);

  const list = run('tar', ['-tzvf', tarball]);
  assert.is(list.code, 0, list.stderr);
  const entries = new Map(list.stdout.split('\n').filter(Boolean).map((l) => {
    const parts = l.split(/\s+/);
    return [parts.slice(5).join(' ').replace(/ -> .*$/, ''), { mode: parts[0]!, owner: parts[1]!, size: Number(parts[2]) }] as const;
  }));
  const cat = (p: string) => run('tar', ['-xzOf', tarball, `.${p}`]).stdout;

  // The image files, byte for byte as the build renders them.
  const built = await cli(['build', '-o', 'out'], dir);
  assert.is(built.code, 0, built.err);
  const spec = JSON.parse(readFileSync(join(dir, 'out/images', `${img.name}.json`), 'utf8')) as { files: { path: string; from: string; mode: string }[]; packages: string[]; hash: string };
  assert.is(spec.hash, img.hash);
  assert.ok(spec.files.some((f) => f.path === '/etc/chrony/chrony.conf'));
  for (const f of spec.files) {
    assert.ok(entries.has(`.${f.path}`), `${f.path} in the tarball`);
    assert.is(cat(f.path), readFileSync(join(dir, 'out', f.from), 'utf8'), f.path);
    assert.is(entries.get(`.${f.path}`)!.owner, '0/0');
  }
  assert.match(cat('/etc/chrony/chrony.conf'), /pool 2\.debian\.pool\.ntp\.org iburst/);

  // The packages, installed (dpkg status), from the bundle.
  const status = cat('/var/lib/dpkg/status');
  const installed = new Set([...status.matchAll(/^Package: (\S+)\n(?:[^\n]+\n)*?Status: install ok installed$/gm)].map((m) => m[1]!));
  // (And an init: a root filesystem without one boots nothing, and its services cannot be enabled.)
  for (const p of [...spec.packages, 'cloud-init', 'systemd-sysv']) assert.ok(installed.has(p), `${p} installed`);
  assert.ok(spec.packages.includes('prometheus-node-exporter'), spec.packages.join(' '));
  assert.ok(entries.has('./usr/sbin/chronyd') && entries.has('./usr/bin/curl'));
  assert.not.ok(entries.has('./usr/sbin/policy-rc.d'), 'policy-rc.d removed after the installs');
  assert.not.ok([...entries.keys()].some((k) => k.startsWith('./var/tmp/pigen-repo')), 'the bake repo is gone');

  // cloud-init cleaned: no instance, no logs, no seed; machine-id empty (generated at first boot).
  assert.not.ok([...entries.keys()].some((k) => /^\.\/var\/lib\/cloud\/(instance|instances\/|seed\/)/.test(k)), [...entries.keys()].filter((k) => k.startsWith('./var/lib/cloud')).join(' '));
  assert.not.ok(entries.has('./var/log/cloud-init.log'));
  assert.ok(entries.has('./etc/machine-id'));
  assert.is(entries.get('./etc/machine-id')!.size, 0);
  // (The key of this bake: with the bundle, unlike the plan above.)
  const key = (JSON.parse((await cli([...args, '--dry-run', '--json'], dir)).out) as { images: { bakeKey: string }[] }).images[0]!.bakeKey;
  assert.is.not(key, img.bakeKey, 'the bundle is part of the bake key');
  assert.match(cat('/etc/pigen/image'), new RegExp(`content_hash=${img.hash}\nbake_key=${key}\n`));
  assert.is(readFileSync(`${tarball}.bake-key`, 'utf8'), `${key}\n`, 'the stamp beside the tarball');
  // The bake's own directories and files have the modes write_files gives, whatever the umask.
  for (const [p, mode] of [['./etc/pigen/', 'drwxr-xr-x'], ['./etc/pigen/image', '-rw-r--r--'], ['./etc/machine-id', '-rw-r--r--'], ['./etc/apt/backup/', 'drwxr-xr-x']] as const) {
    assert.is(entries.get(p)?.mode, mode, p);
  }

  // The second bake finds the tarball and runs no packer.
  const again = await cli(args, dir);
  assert.is(again.code, 0, again.err);
  assert.match(again.out, new RegExp(`^  reuse ${img.name} .*baked/${img.name}\\.rootfs\\.tar\\.gz exists`, 'm'));
  assert.not.match(again.out, /packer build|baked in/);
  const report = await cli([...args, '--json'], dir);
  assert.is(report.code, 0, report.err);
  const j = JSON.parse(report.out) as { ok: boolean; images: { name: string; action: string; result: string }[] };
  assert.equal([j.ok, j.images.map((i) => [i.name, i.action, i.result])], [true, [[img.name, 'reuse', 'reused']]]);
  console.log(`  download+bundle ${((tDl - t0) / 1000).toFixed(1)} s, bake ${((tBake - tDl) / 1000).toFixed(1)} s, total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  // (The plain Debian root the bake started from: the VM bake below starts from it too.)
  const debootstrap = /^.*debootstrap: (?:cache hit:|cached as) (\S+)$/m.exec(r.out)?.[1];
  assert.ok(debootstrap && existsSync(debootstrap), r.out);
  baked = { dir, tarball, debootstrap: debootstrap! };
});

// The last step of a local bake packs the root filesystem: a tar that fails part-way fails the
// step and leaves no tarball (a review found `tar | gzip` under `set -e` renaming a cut tarball into
// place, reported as baked and then reused). Needs no root: a root filesystem without cloud-init.
test('pack-rootfs.sh: a tar that fails leaves no tarball and fails the step; one that works writes it', () => {
  if (!needTools('pack-rootfs.sh', 'tar', 'gzip')) return;
  const dir = tmp('pigen-pack-');
  const rootfs = join(dir, 'root');
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/hostname'), 'x\n');
  writeFileSync(join(rootfs, 'etc/motd'), 'kept\n');
  // (The build host's DNS, copied in by debootstrap.sh, as a link into the host: neither followed nor kept.)
  const hostFile = join(dir, 'host-resolv.conf');
  writeFileSync(hostFile, 'nameserver 192.0.2.53\n');
  symlinkSync(hostFile, join(rootfs, 'etc/resolv.conf'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const realTar = run('sh', ['-c', 'command -v tar']).stdout.trim();
  writeFileSync(join(bin, 'tar'), `#!/bin/sh\n"${realTar}" "$@"\necho 'tar: cut short' >&2\nexit 2\n`, { mode: 0o755 });
  const script = join(ROOT, 'images/scripts/pack-rootfs.sh');
  const out = join(dir, 'baked', 'x.rootfs.tar.gz');
  const env = { ROOT: rootfs, OUT: out, IMAGE: 'x', HASH: 'h' };
  const bad = run('sh', [script], { env: { ...process.env, ...env, PATH: `${bin}:${process.env.PATH}` } });
  assert.is.not(bad.code, 0, bad.stdout + bad.stderr);
  assert.not.ok(existsSync(out), 'no tarball after a failed tar');
  assert.equal(run('ls', ['-A', join(dir, 'baked')]).stdout.trim(), '', 'no temporary file left');
  const good = run('sh', [script], { env: { ...process.env, ...env } });
  assert.is(good.code, 0, good.stdout + good.stderr);
  const listed = run('tar', ['-tzf', out]).stdout;
  assert.match(listed, /^\.\/etc\/motd$/m);
  // The build host's name and DNS servers stay out of the image (found by a review): no
  // hostname, an empty resolv.conf; the host's own file untouched.
  assert.not.match(listed, /^\.\/etc\/hostname$/m);
  assert.is(run('tar', ['-xzOf', out, './etc/resolv.conf']).stdout, '');
  assert.is(readFileSync(hostFile, 'utf8'), 'nameserver 192.0.2.53\n');
});

// The image boots: cloud-init's own first boot (its four stages, in a chroot of the unpacked
// tarball, NoCloud seed = the node's user-data.baked and meta-data) ends with no module in error,
// every file of the node's manifest on disk as built (bytes, mode, owner), and the admin user as
// Pigsty makes it: uid and gid 88, bash, a locked password, its keys, passwordless sudo.
test('the baked image boots with its user-data.baked in cloud-init: no module fails, every file as built, the admin user made', async () => {
  if (!HAVE || !ROOT_USER) return;
  assert.ok(baked, 'the bake test ran first');
  const { dir, tarball } = baked!;
  const ip = '10.10.10.11';
  const root = join(dir, 'boot');
  mkdirSync(root);
  assert.is(run('tar', ['-C', root, '--numeric-owner', '-xzpf', tarball]).code, 0);
  await firstBoot(root, readFileSync(join(dir, 'out/nodes', ip, 'user-data.baked'), 'utf8'), readFileSync(join(dir, 'out/nodes', ip, 'meta-data'), 'utf8'), () => checkBootedNode(root, dir, 'out', ip));
});

// The way most nodes get their configuration, user-data pasted into a cloud console: a plain
// Debian root (the debootstrap the bakes start from) boots with a node's full `user-data` in
// cloud-init. The local repo it reads is the bundle, served by a real nginx on loopback (the
// inventory's `repo_upstream` pointing the local repo there): cloud-init's apt module writes its
// source, its ntp and packages modules install the node's packages from it, and the node ends as
// the baked one does.
test("a plain Debian root boots with a node's full user-data in cloud-init: its packages from the local repo over HTTP, every file as built, the admin user made", async () => {
  if (!HAVE || !ROOT_USER) return;
  if (!needTools('booting the full user-data (nginx serves the repo)', 'nginx')) return;
  assert.ok(baked, 'the bake test ran first');
  const { dir, debootstrap } = baked!;
  const ip = '10.10.10.11';
  const repo = await serveRepo(dir, join(dir, 'pkg.tgz'));
  try {
    const built = await cli(['build', '-o', 'out-full', '--set', `repo_upstream=${JSON.stringify([repo.upstream])}`], dir);
    assert.is(built.code, 0, built.err);
    const userData = readFileSync(join(dir, 'out-full/nodes', ip, 'user-data'), 'utf8');
    assert.ok(userData.includes(`deb [trusted=yes] ${repo.url} ./`), 'the local repo at the loopback server');
    const packages = (parseYaml(userData) as { packages: string[] }).packages;
    assert.ok(packages.includes('chrony') && packages.includes('sudo'), packages.join(' '));
    const root = join(dir, 'full-boot');
    mkdirSync(root);
    assert.is(run('tar', ['-C', root, '--numeric-owner', '-xpf', debootstrap]).code, 0);
    await firstBoot(root, userData, readFileSync(join(dir, 'out-full/nodes', ip, 'meta-data'), 'utf8'), () => {
      checkBootedNode(root, dir, 'out-full', ip);
      // Its packages, installed, from the repo.
      const installed = installedPackages(root);
      for (const p of packages) assert.ok(installed.has(p), `${p} installed`);
      const fetched = repo.fetched();
      assert.match(fetched, /"GET \/pigsty\/(?:\.\/)?Packages(?:\.gz)? HTTP\/1\.1" 200 /, fetched);
      assert.match(fetched, /"GET \/pigsty\/(?:\.\/)?chrony_[^ ]+\.deb HTTP\/1\.1" 200 /, fetched);
    });
  } finally {
    await repo.stop();
  }
});

// The infra node, the one with the most to do at its first boot (nginx and the portal's
// certificates, VictoriaMetrics, vmalert, Alertmanager, blackbox, Grafana, dnsmasq, and its
// own users and directories), booted the same way from its full user-data, three ways: air-gapped,
// its repo_bundle a file on the node (installed at boot before its packages, which come from it
// through file:/www/pigsty: no network at all), with a secrets file; its packages over HTTP from
// the bundle served on loopback, without one (the first boot makes the portal's certificate, as
// a newcomer's first build has it); and its golden image, baked from the same bundle (packages,
// files and the offline repo in it), booted with user-data.baked. The packages Debian has are
// Debian's (downloaded and bundled by pigen); those only Pigsty's repo has (Grafana and its
// VictoriaLogs datasource, Vector, VictoriaLogs, VictoriaTraces), which this machine cannot
// reach, are stand-in packages of the same names (Grafana's has its unit and makes its user
// and group, as the real one does). Each time the real nginx, dnsmasq and vmalert installed in
// the root read the configuration as booted (nginx with the certificates it booted with).
test("the infra node boots in cloud-init from its full user-data, air-gapped (repo_bundle) and over HTTP, and from its baked image: packages from the bundle, every file as built, the daemons accept their configuration in place", async () => {
  if (!HAVE || !ROOT_USER) return;
  if (!needTools('booting the infra node (nginx serves the repo)', 'nginx', 'sha256sum')) return;
  assert.ok(baked, 'the bake test ran first');
  const { debootstrap } = baked!;
  const dir = tmp('pigen-infra-boot-');
  const ip = '10.10.10.10';
  const standIns = ['grafana', 'grafana-victorialogs-ds', 'vector', 'victoria-logs', 'victoria-traces'];
  const BUNDLE_AT = '/var/tmp/pigsty-pkg.tgz';
  const inventory = (packages: string[], modules: string, bundle = false) =>
    `all:\n  children:\n    infra: { hosts: { ${ip}: { infra_seq: 1 } } }\n  vars:\n    admin_ip: ${ip}\n    node_repo_modules: ${modules}\n    node_ntp_servers: [ 'pool 2.debian.pool.ntp.org iburst' ]\n    repo_packages: [ ${packages.join(', ')} ]\n    repo_extra_packages: []\n    node_admin_pk_list: [ '${ALICE}' ]\n${bundle ? `    repo_bundle: ${BUNDLE_AT}\n` : ''}`;
  writeFileSync(join(dir, 'pigsty.yml'), inventory(['nginx'], 'local', true));
  assert.is((await cli(['secrets', 'init'], dir)).code, 0);
  // What the node installs at boot: Debian's packages downloaded (an inventory of them alone,
  // its node reading upstream repos), the others made here.
  const listed = await cli(['bundle', '--packages', '--json'], dir);
  assert.is(listed.code, 0, listed.err);
  const all = JSON.parse(listed.out) as string[];
  for (const p of [...standIns, 'nginx', 'victoria-metrics', 'prometheus-alertmanager', 'prometheus-blackbox-exporter', 'dnsmasq']) assert.ok(all.includes(p), `${p} in ${all.join(' ')}`);
  const fromDebian = all.filter((p) => !standIns.includes(p));
  const dl = join(dir, 'download');
  mkdirSync(dl);
  writeFileSync(join(dl, 'pigsty.yml'), inventory(fromDebian, 'node'));
  const apt = join(tmpdir(), 'pigen-test-cache', 'apt-infra');
  const got = await cli(['bundle', '--download', '--cache', apt, '--quiet'], dl);
  assert.is(got.code, 0, got.err);
  const debs = join(dir, 'debs');
  mkdirSync(debs);
  for (const f of readdirSync(join(apt, 'archives'))) if (f.endsWith('.deb')) copyFileSync(join(apt, 'archives', f), join(debs, f));
  for (const name of standIns) standInDeb(dir, debs, name);
  const pkg = join(dir, 'pkg.tgz');
  const b = await cli(['bundle', '--from', debs, '-o', pkg, '--quiet'], dir);
  assert.is(b.code, 0, b.err);
  assert.not.match(b.err, /lack/, b.err);

  // The node as booted: every file as built, its users, services; the portal's certificate
  // verifies against the CA the node trusts (the secrets file's; else the node's own, made at
  // first boot, which is its own CA), for the portal's domain; nginx, dnsmasq and vmalert, as
  // installed, take the configuration as booted; its directories are its services' users'; the
  // packages installed.
  const checkInfra = (root: string, at: string, secrets: boolean, packages: string[]) => {
    checkBootedNode(root, at, 'out', ip);
    const installed = installedPackages(root);
    for (const p of packages) assert.ok(installed.has(p), `${p} installed`);
    const cert = secrets ? '/etc/nginx/conf.d/cert/pigsty.crt' : '/etc/nginx/conf.d/cert/i.pigsty.crt';
    const verified = run('chroot', [root, 'openssl', 'verify', '-CAfile', secrets ? '/etc/pki/ca.crt' : cert, cert]);
    assert.is(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(run('chroot', [root, 'openssl', 'x509', '-noout', '-ext', 'subjectAltName', '-in', cert]).stdout, /DNS:i\.pigsty\b/);
    assert.match(run('chroot', [root, 'stat', '-c', '%U:%G %a', cert.replace(/crt$/, 'key')]).stdout, /^root:root 600$/m);
    const nginxT = run('chroot', [root, 'nginx', '-t']);
    assert.is(nginxT.code, 0, nginxT.stderr);
    const dnsmasq = run('chroot', [root, 'dnsmasq', '--test']);
    assert.is(dnsmasq.code, 0, dnsmasq.stderr);
    const manifest = JSON.parse(readFileSync(join(at, 'out/manifest.json'), 'utf8')) as { nodes: Record<string, { files: { path: string }[] }> };
    const rules = manifest.nodes[ip]!.files.filter((f) => /\/rules\/[^/]+\.yml$/.test(f.path)).map((f) => f.path);
    assert.ok(rules.length > 0, 'alert rules');
    const vmalert = run('chroot', [root, 'vmalert', '-dryRun', ...rules.map((r) => `-rule=${r}`)]);
    assert.is(vmalert.code, 0, vmalert.stdout + vmalert.stderr);
    for (const [path, owner] of [['/data/infra/metrics', 'victoria:infra'], ['/data/infra/alertmgr', 'prometheus:infra']] as const) {
      assert.is(run('chroot', [root, 'stat', '-c', '%U:%G', path]).stdout.trim(), owner, path);
    }
    assert.match(run('chroot', [root, 'stat', '-c', '%U:%G %a', '/etc/grafana/grafana.ini']).stdout, /^root:grafana 640$/m);
    // Each service's unit, as systemd reads it in the node it runs on: its program there, its
    // users, its dependencies.
    const services = (JSON.parse(readFileSync(join(at, 'out/manifest.json'), 'utf8')) as { nodes: Record<string, { services: string[] }> }).nodes[ip]!.services;
    const verify = run('chroot', [root, 'systemd-analyze', 'verify', ...services.map((s) => `/etc/systemd/system/${s}.service`)]);
    assert.is(verify.code, 0, verify.stdout + verify.stderr);
    assert.is(verify.stderr.trim(), '', verify.stderr);
  };
  // The offline repo in place on the node: complete (its marker), every file as its manifest says.
  const checkRepo = (root: string) => {
    const repo = inRoot(root, '/www/pigsty');
    assert.ok(existsSync(join(repo, 'repo_complete')), 'repo_complete');
    assert.is(readFileSync(join(repo, 'repo_complete'), 'utf8').trim(), run('sha256sum', [join(repo, 'manifest.sha256')]).stdout.split(' ')[0]);
    const sums = run('sha256sum', ['--strict', '--quiet', '-c', 'manifest.sha256'], { cwd: repo });
    assert.is(sums.code, 0, sums.stdout + sums.stderr);
  };
  const boot = async (at: string, userData: string, before: (root: string) => void, check: (root: string) => void) => {
    const root = join(at, 'root');
    mkdirSync(root);
    before(root);
    await firstBoot(root, userData, readFileSync(join(at, 'out/nodes', ip, 'meta-data'), 'utf8'), () => check(root));
    // (The root is large: gone before the next.)
    rmSync(root, { recursive: true, force: true });
  };
  const plainRoot = (root: string) => assert.is(run('tar', ['-C', root, '--numeric-owner', '-xpf', debootstrap]).code, 0);

  // Air-gapped: the bundle a file on the node; no repo on the network.
  {
    const built = await cli(['build', '-o', 'out'], dir);
    assert.is(built.code, 0, built.err);
    const userData = readFileSync(join(dir, 'out/nodes', ip, 'user-data'), 'utf8');
    const packages = (parseYaml(userData) as { packages: string[] }).packages;
    assert.equal([...packages].sort(), [...all].sort());
    assert.ok(userData.includes('file:/www/pigsty'), 'the node reads its own repo from its disk');
    assert.not.ok(/deb \[[^\]]*\] https?:/.test(userData), 'and no repo over the network');
    await boot(
      dir,
      userData,
      (root) => {
        plainRoot(root);
        copyFileSync(pkg, join(root, BUNDLE_AT));
      },
      (root) => {
        checkInfra(root, dir, true, packages);
        checkRepo(root);
      },
    );
  }

  const repo = await serveRepo(dir, pkg);
  try {
    // Over HTTP, with no secrets file: the bundle served on loopback as the local repo.
    const plain = join(dir, 'no-secrets');
    mkdirSync(plain);
    writeFileSync(join(plain, 'pigsty.yml'), inventory(['nginx'], 'local'));
    const built = await cli(['build', '-o', 'out', '--set', `repo_upstream=${JSON.stringify([repo.upstream])}`], plain);
    assert.is(built.code, 0, built.err);
    const userData = readFileSync(join(plain, 'out/nodes', ip, 'user-data'), 'utf8');
    const packages = (parseYaml(userData) as { packages: string[] }).packages;
    assert.equal([...packages].sort(), [...all].sort());
    await boot(plain, userData, plainRoot, (root) => {
      checkInfra(root, plain, false, packages);
      assert.match(repo.fetched(), /"GET \/pigsty\/(?:\.\/)?nginx[-_][^ ]+\.deb HTTP\/1\.1" 200 /);
    });

    // Its golden image, baked from the same bundle (the air-gapped inventory: packages, files
    // and the offline repo in it), boots with its user-data.baked: the same node, nothing fetched.
    const plan = await cli(['bake', '--dry-run', '--json', '--only', 'infra-repo', '--bundle', pkg], dir);
    assert.is(plan.code, 0, plan.err);
    const img = (JSON.parse(plan.out) as { images: { name: string; nodes: string[] }[] }).images[0]!;
    assert.equal(img.nodes, [ip]);
    const bake = await cli(['bake', '--only', img.name, '--target', 'local', '--bundle', pkg, '--cache', join(tmpdir(), 'pigen-test-cache', 'debootstrap'), '-o', 'baked'], dir);
    assert.is(bake.code, 0, bake.out.split('\n').slice(-60).join('\n') + bake.err);
    // (The build of the same inputs as the bake: its bundle is part of the image's content.)
    const rebuilt = await cli(['build', '-o', 'out', '--bundle', pkg], dir);
    assert.is(rebuilt.code, 0, rebuilt.err);
    const spec = JSON.parse(readFileSync(join(dir, 'out/images', `${img.name}.json`), 'utf8')) as { packages: string[]; repo?: unknown };
    assert.ok(spec.repo, 'the image carries the offline repo');
    const logged = repo.fetched().length;
    await boot(
      dir,
      readFileSync(join(dir, 'out/nodes', ip, 'user-data.baked'), 'utf8'),
      (root) => assert.is(run('tar', ['-C', root, '--numeric-owner', '-xzpf', join(dir, 'baked', `${img.name}.rootfs.tar.gz`)]).code, 0),
      (root) => {
        checkInfra(root, dir, true, spec.packages);
        checkRepo(root);
        assert.is(repo.fetched().slice(logged), '', 'nothing fetched at boot: the image has it all');
      },
    );
  } finally {
    await repo.stop();
  }
});

/** A package of `name` that installs nothing but a note and a program that does nothing where the real one's is (Grafana's has its unit, and makes its system user and group, as the real one does). */
function standInDeb(dir: string, debs: string, name: string): void {
  const src = join(dir, `stand-in-${name}`);
  mkdirSync(join(src, 'DEBIAN'), { recursive: true });
  mkdirSync(join(src, 'usr/share/doc', name), { recursive: true });
  writeFileSync(join(src, 'usr/share/doc', name, 'README.pigen-test'), `A stand-in for ${name}, from Pigsty's repo, which this machine cannot reach.\n`);
  writeFileSync(join(src, 'DEBIAN/control'), `Package: ${name}\nVersion: 0.0.0-pigen.test\nArchitecture: all\nMaintainer: pigen <pigen@example.com>\nSection: misc\nPriority: optional\nDescription: stand-in for ${name}\n`);
  // (The real package's program, where pigen's unit runs it.)
  const bin = { vector: 'vector', 'victoria-logs': 'victoria-logs', 'victoria-traces': 'victoria-traces' }[name];
  if (bin) {
    mkdirSync(join(src, 'usr/bin'), { recursive: true });
    writeFileSync(join(src, 'usr/bin', bin), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  }
  if (name === 'grafana') {
    // (The real package's unit, by name: the node enables grafana-server.)
    mkdirSync(join(src, 'lib/systemd/system'), { recursive: true });
    writeFileSync(join(src, 'lib/systemd/system/grafana-server.service'), '[Unit]\nDescription=Grafana (stand-in)\n\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n');
    writeFileSync(
      join(src, 'DEBIAN/postinst'),
      '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then\n  getent group grafana >/dev/null || groupadd -r grafana\n  getent passwd grafana >/dev/null || useradd -r -g grafana -d /usr/share/grafana -M -s /bin/false grafana\nfi\n',
      { mode: 0o755 },
    );
  }
  const r = run('dpkg-deb', ['--root-owner-group', '--build', src, join(debs, `${name}_0.0.0-pigen.test_all.deb`)]);
  assert.is(r.code, 0, r.stderr);
}

/** The packages dpkg has installed in `root`. */
function installedPackages(root: string): Set<string> {
  const status = readFileSync(join(root, 'var/lib/dpkg/status'), 'utf8');
  return new Set([...status.matchAll(/^Package: (\S+)\n(?:[^\n]+\n)*?Status: install ok installed$/gm)].map((m) => m[1]!));
}

/**
 * The bundle `tgz`, extracted in `dir` and served by a real nginx on a loopback port (its own
 * configuration and access log in `dir`), as `<url>` = http://127.0.0.1:PORT/pigsty; `upstream`
 * is the repo_upstream entry for it (module `local`). stop() ends nginx and checks its log.
 */
async function serveRepo(dir: string, tgz: string) {
  const www = join(dir, 'www');
  mkdirSync(www);
  assert.is(run('tar', ['-C', www, '-xzf', tgz]).code, 0);
  const port = await freePort();
  const conf = join(dir, 'repo-nginx.conf');
  const log = join(dir, 'repo-access.log');
  writeFileSync(conf, `user root;\ndaemon off;\npid ${join(dir, 'repo-nginx.pid')};\nerror_log stderr;\nevents {}\nhttp {\n  access_log ${log};\n  server {\n    listen 127.0.0.1:${port};\n    root ${www};\n  }\n}\n`);
  const nginx = spawn(which('nginx')!, ['-p', dir, '-c', conf, '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let nginxLog = '';
  nginx.stderr!.on('data', (d) => (nginxLog += d));
  const exited = new Promise((r) => nginx.on('close', r));
  const url = `http://127.0.0.1:${port}/pigsty`;
  const stop = async () => {
    nginx.kill('SIGQUIT');
    await exited;
    assert.not.match(nginxLog, /\[(?:emerg|alert|crit)\]/, nginxLog);
  };
  try {
    await waitForPort(port);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    url,
    upstream: { name: 'pigsty-local', description: 'Pigsty Local', module: 'local', releases: [11, 12, 13], arch: ['x86_64', 'aarch64'], baseurl: { default: `${url} ./` } },
    fetched: () => readFileSync(log, 'utf8'),
    stop,
  };
}

/**
 * cloud-init's own first boot of the root filesystem `root`: its four stages, in a chroot, in a
 * UTS namespace of its own (cloud-init sets the hostname, which a chroot shares), NoCloud seed =
 * `userData` and `metaData`; they end with no module in error. Then `check` runs, /proc still
 * mounted. The commands that would change this machine's kernel through the chroot's /proc
 * (sysctl, modules, swap, SELinux) are stand-ins that log their arguments, first on PATH; /proc/sys
 * is read-only besides. So are those that would start a daemon here, on the machine running the
 * test (`service`, which cloud-init's ntp module runs with no systemd as PID 1, and `invoke-rc.d`,
 * which packages' scripts run): no process may be left running in the root (one is killed, and
 * fails the boot). (The test's own cloud.cfg: the seed only; minbase has no locales but C.UTF-8.)
 */
async function firstBoot(root: string, userData: string, metaData: string, check: () => void | Promise<void>): Promise<void> {
  const host = hostname();
  const seed = join(root, 'var/lib/cloud/seed/nocloud');
  mkdirSync(seed, { recursive: true });
  writeFileSync(join(seed, 'user-data'), userData);
  writeFileSync(join(seed, 'meta-data'), metaData);
  writeFileSync(join(root, 'etc/cloud/cloud.cfg.d/99-test.cfg'), 'datasource_list: [NoCloud, None]\nlocale: C.UTF-8\n');
  for (const c of ['sysctl', 'modprobe', 'swapoff', 'setenforce', 'service', 'invoke-rc.d']) writeFileSync(join(root, 'usr/local/sbin', c), `#!/bin/sh\necho "${c} $*" >> /var/log/pigen-stubs.log\n`, { mode: 0o755 });
  const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  // (systemctl acts as in any chroot: units enabled and masked on disk, start and reload ignored.
  // It cannot tell it is in one here, where /proc/1/root is unreadable, and would try the bus.)
  const OFFLINE = 'SYSTEMD_OFFLINE=1';
  const mounted: string[] = [];
  let booted = false;
  try {
    assert.is(run('mount', ['-t', 'proc', 'proc', join(root, 'proc')]).code, 0);
    mounted.unshift(join(root, 'proc'));
    assert.is(run('mount', ['--bind', join(root, 'proc/sys'), join(root, 'proc/sys')]).code, 0);
    mounted.unshift(join(root, 'proc/sys'));
    assert.is(run('mount', ['-o', 'remount,bind,ro', join(root, 'proc/sys')]).code, 0);
    for (const stage of [['init', '--local'], ['init'], ['modules', '--mode=config'], ['modules', '--mode=final']]) {
      const r = run('unshare', ['--uts', 'chroot', root, 'env', PATH, OFFLINE, 'cloud-init', ...stage]);
      assert.is(r.code, 0, `cloud-init ${stage.join(' ')}: ${r.stdout}${r.stderr}`);
    }
    const status = run('chroot', [root, 'cloud-init', 'status', '--long']).stdout;
    assert.match(status, /^status: done$/m, status);
    assert.is(hostname(), host, 'the machine running the test keeps its hostname');
    await check();
    booted = true;
  } finally {
    const left = processesIn(realpathSync(root));
    for (const { pid } of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    for (const m of mounted) run('umount', [m]).code === 0 || run('umount', ['-l', m]);
    if (booted) assert.equal(left.map((p) => p.command), [], 'no process left running in the booted root');
  }
}

/** The processes whose root directory is `root` (started in the chroot), and their command lines. */
function processesIn(root: string): { pid: number; command: string }[] {
  const out: { pid: number; command: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readlinkSync(`/proc/${d}/root`) === root) out.push({ pid: Number(d), command: readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() });
    } catch {}
  }
  return out;
}

/**
 * A node booted in `root` as Pigsty makes it: runcmd's kernel steps ran (through the stand-ins),
 * the admin user (uid and gid 88, bash, a locked password, its keys, passwordless sudo), and every
 * file of the node's manifest in `dir`/`out` on disk as built: bytes, mode, owner (resolv.conf:
 * pigen's, then the nameservers the node booted with, appended by node_dns_method `add`).
 */
function checkBootedNode(root: string, dir: string, out: string, ip: string): void {
  const stubbed = readFileSync(join(root, 'var/log/pigen-stubs.log'), 'utf8');
  assert.match(stubbed, /^sysctl -q -p \/etc\/sysctl\.d\/90-pigsty\.conf$/m);
  assert.match(stubbed, /^modprobe -q softdog$/m);
  const id = run('chroot', [root, 'id', 'dba']).stdout.trim();
  assert.is(id, 'uid=88(dba) gid=88(dba) groups=88(dba)');
  assert.match(run('chroot', [root, 'getent', 'passwd', 'dba']).stdout, /^dba:x:88:88::\/home\/dba:\/bin\/bash$/m);
  assert.match(run('chroot', [root, 'passwd', '-S', 'dba']).stdout, /^dba L /, 'password locked');
  assert.match(run('chroot', [root, 'sudo', '-l', '-U', 'dba']).stdout, /\(ALL\) NOPASSWD: ALL/);
  // (The fleet's admin key when there is a secrets file.)
  const secretsFile = join(dir, 'pigsty.secrets.yml');
  const fleetKey = existsSync(secretsFile) ? [(parseYaml(readFileSync(secretsFile, 'utf8')) as { adminSsh: { pub: string } }).adminSsh.pub] : [];
  const keys = readFileSync(join(root, 'home/dba/.ssh/authorized_keys'), 'utf8').trim().split('\n').sort();
  assert.equal(keys, [...fleetKey, ALICE].sort());
  assert.is(statSync(join(root, 'home/dba/.ssh')).mode & 0o777, 0o700);
  const manifest = JSON.parse(readFileSync(join(dir, out, 'manifest.json'), 'utf8')) as { nodes: Record<string, { services: string[]; files: { path: string; out: string; mode: string; owner: string }[] }> };
  // Its services enabled (pigen's units), Debian's own units of the same daemons masked.
  const services = manifest.nodes[ip]!.services;
  assert.ok(services.includes('node_exporter'), services.join(' '));
  // (Enabled by name: a package's own unit of the same name may have been enabled before, in an
  // image, its link left as it was; pigen's, in /etc, is the one systemd loads.)
  for (const s of services) {
    assert.match(readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants', `${s}.service`)), new RegExp(`^/(?:etc|lib|usr/lib)/systemd/system/${s}\\.service$`), `${s} enabled`);
    assert.is(run('chroot', [root, 'env', 'SYSTEMD_OFFLINE=1', 'systemctl', 'is-enabled', `${s}.service`]).stdout.trim(), 'enabled', `${s} enabled`);
    assert.ok(lstatSync(join(root, 'etc/systemd/system', `${s}.service`)).isFile(), `pigen's ${s}.service`);
  }
  assert.is(readlinkSync(join(root, 'etc/systemd/system/prometheus-node-exporter.service')), '/dev/null', "Debian's node exporter unit masked");
  const ids = (f: string) => new Map(readFileSync(join(root, 'etc', f), 'utf8').trim().split('\n').map((l) => l.split(':')).map((x) => [x[0]!, Number(x[2])]));
  const [users, groups] = [ids('passwd'), ids('group')];
  for (const f of manifest.nodes[ip]!.files) {
    const on = inRoot(root, f.path);
    assert.ok(existsSync(on), `${f.path} on the booted node`);
    const want = readFileSync(join(dir, out, f.out), 'utf8');
    const got = readFileSync(on, 'utf8');
    if (f.path === '/etc/resolv.conf') assert.ok(got.startsWith(want), `${f.path}: ${got}`);
    else assert.is(got, want, f.path);
    const st = statSync(on);
    assert.is((st.mode & 0o7777).toString(8).padStart(4, '0'), f.mode, `${f.path} mode`);
    const [u, g] = f.owner.split(':');
    assert.equal([st.uid, st.gid], [users.get(u!), groups.get(g!)], `${f.path} owner ${f.owner}`);
  }
}

/** Where `path`, as the node sees it, lies in `root`: each link followed as in a chroot (an absolute target from `root`). */
function inRoot(root: string, path: string): string {
  const todo = path.split('/').filter((p) => p !== '' && p !== '.');
  let at = '';
  for (let links = 0; todo.length; ) {
    const seg = todo.shift()!;
    if (seg === '..') {
      at = dirname(at === '' ? '/' : at);
      if (at === '/') at = '';
      continue;
    }
    const st = lstatSync(join(root, at, seg), { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) {
      assert.ok(++links < 40, `${path}: too many links`);
      const target = readlinkSync(join(root, at, seg));
      if (target.startsWith('/')) at = '';
      todo.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
      continue;
    }
    at = `${at}/${seg}`;
  }
  return join(root, at);
}

// The VM bake (`--target aws` or `qemu`: images/build.pkr.hcl, build "cloud"), run for real as far
// as this machine allows: Debian's Packer connects over SSH (a real sshd on loopback, its session
// chrooted into a plain Debian root from the same debootstrap, booted once by cloud-init as a
// cloud VM is), runs the cloud build's provisioners in order (wait for cloud-init, make
// /tmp/pigen-content, upload the staged content and the bundle, apply-image.sh as root with
// ROOT=/, forget the boot), and the root is then checked as the local bake's image is. Only the
// source differs: a null source with an SSH communicator stands in for the VM Packer would start
// (added to the build's sources in a copy of images/), `pigen bake --target qemu` stages the
// content, and a `packer` first on PATH runs the real one with `-only=cloud.null.ssh`. (A review
// found every VM bake failing at the upload, the destination never made.) Uploads go over SFTP:
// a minbase root has no scp. Cloud images have sudo, minbase does not: a stand-in runs the command.
test('a VM bake: real Packer runs the cloud build\'s provisioners over real SSH into a booted Debian root, which then holds the image', async () => {
  if (!HAVE || !ROOT_USER) return;
  if (!needTools('VM bake over SSH (sshd)', 'sshd', 'ssh-keygen')) return;
  assert.ok(baked, 'the bake test ran first');
  const { dir, debootstrap } = baked!;
  const t0 = Date.now();
  // (sshd takes a chroot only where every directory on its path is root's and writable by no
  // one else: not under /tmp.)
  const vm = mkdtempSync('/var/lib/pigen-test-vm-');
  chmodSync(vm, 0o755);
  // (Removed however the test ends, an interrupted run too: ~300 MB outside the temp directory.)
  const unmake = () => {
    for (const m of ['proc/sys', 'proc']) if (run('mountpoint', ['-q', join(vm, m)]).code === 0) run('umount', ['-l', join(vm, m)]);
    rmSync(vm, { recursive: true, force: true });
  };
  process.once('exit', unmake);
  const keys = join(dir, 'ssh');
  mkdirSync(keys);
  let sshd: ChildProcess | undefined;
  let sshdLog = '';
  let sshdClosed: Promise<unknown> | undefined;
  // (A path is looked at, not followed: instance, for one, is a link to an absolute path inside the root.)
  const present = (p: string) => lstatSync(join(vm, p), { throwIfNoEntry: false }) !== undefined;
  try {
    assert.is(run('tar', ['-C', vm, '--numeric-owner', '-xpf', debootstrap]).code, 0);
    writeFileSync(join(vm, 'usr/local/bin/sudo'), '#!/bin/sh\n# pigen test: a stand-in for the sudo every cloud image has\nexec "$@"\n', { mode: 0o755 });
    // Its first boot: an empty cloud-config (Packer's first step waits for cloud-init to be done).
    await firstBoot(vm, '#cloud-config\n{}\n', 'instance-id: pigen-test-vm\n', async () => {
      assert.ok(present('var/lib/cloud/instance'), 'booted');
      try {
        // sshd on a free loopback port: root by key only, its session chrooted into the VM's root.
        for (const k of ['host', 'client']) assert.is(run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `pigen-test-${k}`, '-f', join(keys, k)]).code, 0);
        copyFileSync(join(keys, 'client.pub'), join(keys, 'authorized_keys'));
        const port = await freePort();
        const config = join(keys, 'sshd_config');
        writeFileSync(
          config,
          [
            `Port ${port}`,
            'ListenAddress 127.0.0.1',
            `HostKey ${join(keys, 'host')}`,
            'PidFile none',
            `AuthorizedKeysFile ${join(keys, 'authorized_keys')}`,
            'StrictModes no',
            'PermitRootLogin prohibit-password',
            'PasswordAuthentication no',
            'KbdInteractiveAuthentication no',
            'UsePAM no',
            `ChrootDirectory ${vm}`,
            'Subsystem sftp internal-sftp',
            'LogLevel VERBOSE',
            '',
          ].join('\n'),
        );
        // (Its privilege separation directory, which a running ssh service makes.)
        mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
        const sshdPath = which('sshd')!;
        const check = run(sshdPath, ['-t', '-f', config]);
        assert.is(check.code, 0, check.stderr);
        sshd = spawn(sshdPath, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
        sshd.stderr!.on('data', (d) => (sshdLog += d));
        sshdClosed = new Promise((r) => sshd!.on('close', r));
        await waitForPort(port);

        // Packer, as pigen bake runs it, but against the null source.
        const images = join(dir, 'images-ssh');
        assert.is(run('cp', ['-r', join(ROOT, 'images'), images]).code, 0);
        const build = readFileSync(join(images, 'build.pkr.hcl'), 'utf8');
        const sources = 'sources = ["source.amazon-ebs.pigsty", "source.qemu.pigsty"]';
        assert.ok(build.includes(sources), 'the cloud build names its two sources');
        writeFileSync(join(images, 'build.pkr.hcl'), build.replace(sources, 'sources = ["source.amazon-ebs.pigsty", "source.qemu.pigsty", "source.null.ssh"]'));
        writeFileSync(
          join(images, 'test-ssh.pkr.hcl'),
          `source "null" "ssh" {\n  communicator             = "ssh"\n  ssh_host                 = "127.0.0.1"\n  ssh_port                 = ${port}\n  ssh_username             = "root"\n  ssh_private_key_file     = "${join(keys, 'client')}"\n  ssh_file_transfer_method = "sftp"\n  ssh_timeout              = "30s"\n}\n`,
        );
        const bin = join(dir, 'bin-ssh');
        mkdirSync(bin);
        const plan = await cli(['bake', '--dry-run', '--json', '--only', 'node', '--target', 'qemu'], dir);
        assert.is(plan.code, 0, plan.err);
        const img = (JSON.parse(plan.out) as { images: { name: string }[] }).images[0]!.name;
        const artifact = join(dir, 'baked-vm', `${img}.qemu`, `${img}.qcow2`);
        // (After Packer, the qcow2 the qemu source would have made: an empty stand-in.)
        writeFileSync(
          join(bin, 'packer'),
          [
            '#!/bin/bash',
            'args=()',
            'for a in "$@"; do',
            '  case "$a" in',
            '    -only=cloud.qemu.pigsty) args+=("-only=cloud.null.ssh") ;;',
            `    ${JSON.stringify(join(ROOT, 'images'))}) args+=(${JSON.stringify(images)}) ;;`,
            '    *) args+=("$a") ;;',
            '  esac',
            'done',
            `${JSON.stringify(which('packer')!)} "\${args[@]}" || exit`,
            `mkdir -p ${JSON.stringify(dirname(artifact))} && : > ${JSON.stringify(artifact)}`,
            '',
          ].join('\n'),
          { mode: 0o755 },
        );
        const tPacker = Date.now();
        const bakeArgs = ['bake', '--only', img, '--target', 'qemu', '--bundle', 'pkg.tgz', '-o', 'baked-vm'];
        const r = await cli(bakeArgs, dir, { ...process.env, PATH: `${bin}:${process.env.PATH}` });
        const tBake = Date.now();
        assert.is(r.code, 0, r.out.split('\n').slice(-60).join('\n') + r.err + sshdLog.slice(-3000));
        // Packer's steps, in order, over SSH.
        const steps = [
          /==> cloud\.null\.ssh: Using ssh communicator to connect: 127\.0\.0\.1/,
          /==> cloud\.null\.ssh: Provisioning with shell script: /,
          /==> cloud\.null\.ssh: Uploading .*\/content\/ => \/tmp\/pigen-content/,
          /cloud\.null\.ssh: apply-image: installing: /,
          /cloud\.null\.ssh: apply-image: \d+ files written/,
          /cloud\.null\.ssh: apply-image: done/,
        ];
        let at = 0;
        for (const s of steps) {
          const m = s.exec(r.out.slice(at));
          assert.ok(m, `${s} after offset ${at}:\n${r.out}`);
          at += m!.index + m![0].length;
        }
        assert.match(r.out, new RegExp(`^\\[${img}\\] baked in [\\d.]+ s: baked-vm/${img}\\.qemu/${img}\\.qcow2$`, 'm'));
        assert.match(sshdLog, /Accepted publickey for root from 127\.0\.0\.1/);

        // The root now holds the image, as the local bake's tarball does: every file as built (bytes,
        // mode, owner), the packages installed from the bundle, the bake's own traces gone, the boot
        // forgotten (cloud-init's instance, logs and seed; machine-id empty).
        const spec = JSON.parse(readFileSync(join(dir, 'out/images', `${img}.json`), 'utf8')) as { files: { path: string; from: string; mode: string; owner: string }[]; packages: string[]; hash: string };
        assert.match(r.out, new RegExp(`apply-image: ${spec.files.length} files written`));
        const ids = (f: string) => new Map(readFileSync(join(vm, 'etc', f), 'utf8').trim().split('\n').map((l) => l.split(':')).map((x) => [x[0]!, Number(x[2])]));
        const [users, groups] = [ids('passwd'), ids('group')];
        for (const f of spec.files) {
          const on = join(vm, f.path);
          assert.is(readFileSync(on, 'utf8'), readFileSync(join(dir, 'out', f.from), 'utf8'), f.path);
          const st = statSync(on);
          assert.is((st.mode & 0o7777).toString(8).padStart(4, '0'), f.mode, `${f.path} mode`);
          const [u, g] = f.owner.split(':');
          assert.equal([st.uid, st.gid], [users.get(u!), groups.get(g!)], `${f.path} owner ${f.owner}`);
        }
        const status = readFileSync(join(vm, 'var/lib/dpkg/status'), 'utf8');
        const installed = new Set([...status.matchAll(/^Package: (\S+)\n(?:[^\n]+\n)*?Status: install ok installed$/gm)].map((m) => m[1]!));
        for (const p of spec.packages) assert.ok(installed.has(p), `${p} installed`);
        // What the image is, as a local bake's tarball says it.
        const key = (JSON.parse((await cli([...bakeArgs, '--dry-run', '--json'], dir)).out) as { images: { bakeKey: string }[] }).images[0]!.bakeKey;
        assert.is(readFileSync(join(vm, 'etc/pigen/image'), 'utf8'), `image=${img}\ncontent_hash=${spec.hash}\nbake_key=${key}\n`);
        assert.is(statSync(join(vm, 'etc/pigen/image')).mode & 0o777, 0o644);
        for (const gone of ['tmp/pigen-content', 'usr/sbin/policy-rc.d', 'var/tmp/pigen-repo', 'var/tmp/pigen-bundle.tgz', 'var/lib/cloud/instance', 'var/lib/cloud/seed', 'var/log/cloud-init.log']) {
          assert.not.ok(present(gone), `${gone} is gone`);
        }
        assert.equal(readdirSync(join(vm, 'tmp')).filter((f) => f.startsWith('script_')), [], "Packer's uploaded scripts removed");
        assert.is(statSync(join(vm, 'etc/machine-id')).size, 0, 'machine-id empty');
        // sudo's own /etc/sudoers, not the stub cloud-init wrote before sudo was there (a review
        // found root and the sudo group refused: dpkg kept the stub under --force-confold).
        rmSync(join(vm, 'usr/local/bin/sudo'));
        const sudo = run('chroot', [vm, 'sudo', '-n', 'true']);
        assert.is(sudo.code, 0, sudo.stderr);
        assert.match(readFileSync(join(vm, 'etc/sudoers'), 'utf8'), /^Defaults\s+secure_path=/m);
        assert.not.ok(present('etc/sudoers.dpkg-dist'));
        console.log(`  VM bake over SSH: ${((tBake - tPacker) / 1000).toFixed(1)} s, ${((Date.now() - t0) / 1000).toFixed(1)} s with the first boot and the checks`);
      } finally {
        // (Before the root's /proc is unmounted: its sessions run inside.)
        if (sshd) {
          sshd.kill();
          await sshdClosed;
        }
      }
    });
  } finally {
    unmake();
  }
});

/** A TCP port on 127.0.0.1 that nothing listens on (asked of the kernel). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on 127.0.0.1:port (up to 10 s). */
async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1', () => (c.end(), resolve(true)));
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.unreachable(`nothing listens on 127.0.0.1:${port}`);
}

// The links before the packages, as the full user-data's bootcmd makes them (found by a review:
// a package that ships /var/www made nginx_home's link land inside it, /var/www/nginx).
test('apply-image.sh: a link replaces the empty directory a package left at its path; a directory with files fails the step', () => {
  if (process.getuid?.() !== 0) return void skip('apply-image.sh links test: needs root (it mounts /proc in the root filesystem)');
  for (const [what, fill, ok] of [['empty', false, true], ['with files', true, false]] as const) {
    const dir = tmp('pigen-apply-');
    const rootfs = join(dir, 'root');
    mkdirSync(join(rootfs, 'var/www'), { recursive: true });
    if (fill) writeFileSync(join(rootfs, 'var/www/index.html'), 'x\n');
    const content = join(dir, 'content');
    mkdirSync(content);
    writeFileSync(join(content, 'links.tsv'), '/var/www\t/data/nginx\n');
    const r = run('sh', [join(ROOT, 'images/scripts/apply-image.sh')], { env: { ...process.env, ROOT: rootfs, CONTENT: content } });
    if (ok) {
      assert.is(r.code, 0, `${what}: ${r.stdout}${r.stderr}`);
      assert.ok(lstatSync(join(rootfs, 'var/www')).isSymbolicLink(), what);
      assert.is(readlinkSync(join(rootfs, 'var/www')), '/data/nginx');
    } else {
      assert.is.not(r.code, 0, what);
      assert.match(r.stdout + r.stderr, /\/var\/www is a directory with files in it: cannot make it a link to \/data\/nginx/);
    }
  }
});

test.run();
