// A real local bake, as `.ci/run` runs it: `pigen bundle --download` fetches the node image's
// packages (chrony, curl, ca-certificates and their dependencies) with an isolated apt-get,
// `pigen bundle` makes a real bundle, and `pigen bake --only node --target local --bundle` runs
// Debian's Packer (null source, shell-local): debootstrap (minbase, bookworm, + cloud-init), the
// image's packages from the bundle (a file: repo inside the root filesystem), the image files,
// cloud-init clean, a rootfs tarball. The test looks inside the tarball, then checks that a second
// bake reuses it; then boots the image: cloud-init's first boot with a node's user-data.baked in a
// chroot of the unpacked tarball. Needs root and the Debian mirror; the debootstrap result and the downloaded
// .debs are cached under the OS temp dir between runs (a cold cache works too, just slower).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../generator/cli/main.ts';
import { needTools, ROOT, run, skip, tmp } from './helpers.ts';

const HAVE = needTools('local bake (packer, debootstrap)', 'packer', 'debootstrap', 'apt-get', 'chroot', 'mount', 'tar', 'dpkg-deb', 'unshare');
const ROOT_USER = process.getuid?.() === 0;
if (HAVE && !ROOT_USER) skip('SKIP local bake: debootstrap and chroot need root');

async function cli(args: string[], cwd: string) {
  let out = '';
  let err = '';
  const code = await main(args, {
    cwd,
    env: process.env,
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
      vars: { node_exporter_enabled: false, vector_enabled: false, node_packages: [] }
  vars:
    admin_ip: 10.10.10.10
    node_ntp_servers: [ 'pool 2.debian.pool.ntp.org iburst' ]
    repo_packages: [chrony, curl, ca-certificates, sudo]
    repo_extra_packages: []
    node_admin_pk_list: [ '${ALICE}' ]
`;
/** What the bake leaves for the first-boot test: the inventory's directory and the image's tarball. */
let baked: { dir: string; tarball: string } | undefined;

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
  for (const p of [...spec.packages, 'cloud-init']) assert.ok(installed.has(p), `${p} installed`);
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
  baked = { dir, tarball };
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
  const host = hostname();
  const root = join(dir, 'boot');
  mkdirSync(root);
  assert.is(run('tar', ['-C', root, '--numeric-owner', '-xzpf', tarball]).code, 0);
  const seed = join(root, 'var/lib/cloud/seed/nocloud');
  mkdirSync(seed, { recursive: true });
  copyFileSync(join(dir, 'out/nodes', ip, 'user-data.baked'), join(seed, 'user-data'));
  copyFileSync(join(dir, 'out/nodes', ip, 'meta-data'), join(seed, 'meta-data'));
  // (The test's own cloud.cfg: the seed only; minbase has no locales but C.UTF-8.)
  writeFileSync(join(root, 'etc/cloud/cloud.cfg.d/99-test.cfg'), 'datasource_list: [NoCloud, None]\nlocale: C.UTF-8\n');
  // The commands that would change this machine's kernel through the chroot's /proc (sysctl,
  // modules, swap, SELinux) are stand-ins that log their arguments, first on PATH; /proc/sys is
  // read-only besides.
  const stubs = ['sysctl', 'modprobe', 'swapoff', 'setenforce'];
  for (const c of stubs) writeFileSync(join(root, 'usr/local/sbin', c), `#!/bin/sh\necho "${c} $*" >> /var/log/pigen-stubs.log\n`, { mode: 0o755 });
  const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  assert.is(run('mount', ['-t', 'proc', 'proc', join(root, 'proc')]).code, 0);
  try {
    assert.is(run('mount', ['--bind', join(root, 'proc/sys'), join(root, 'proc/sys')]).code, 0);
    assert.is(run('mount', ['-o', 'remount,bind,ro', join(root, 'proc/sys')]).code, 0);
    for (const stage of [['init', '--local'], ['init'], ['modules', '--mode=config'], ['modules', '--mode=final']]) {
      // (In a UTS namespace of its own: cloud-init sets the hostname, which a chroot shares.)
      const r = run('unshare', ['--uts', 'chroot', root, 'env', PATH, 'cloud-init', ...stage]);
      assert.is(r.code, 0, `cloud-init ${stage.join(' ')}: ${r.stdout}${r.stderr}`);
    }
    const status = run('chroot', [root, 'cloud-init', 'status', '--long']).stdout;
    assert.match(status, /^status: done$/m, status);
    assert.is(hostname(), host, 'the machine running the test keeps its hostname');
    // runcmd ran its kernel steps (through the stand-ins).
    const stubbed = readFileSync(join(root, 'var/log/pigen-stubs.log'), 'utf8');
    assert.match(stubbed, /^sysctl -q -p \/etc\/sysctl\.d\/90-pigsty\.conf$/m);
    assert.match(stubbed, /^modprobe -q softdog$/m);
    const id = run('chroot', [root, 'id', 'dba']).stdout.trim();
    assert.is(id, 'uid=88(dba) gid=88(dba) groups=88(dba)');
    assert.match(run('chroot', [root, 'getent', 'passwd', 'dba']).stdout, /^dba:x:88:88::\/home\/dba:\/bin\/bash$/m);
    assert.match(run('chroot', [root, 'passwd', '-S', 'dba']).stdout, /^dba L /, 'password locked');
    assert.match(run('chroot', [root, 'sudo', '-l', '-U', 'dba']).stdout, /\(ALL\) NOPASSWD: ALL/);
    const secrets = parseYaml(readFileSync(join(dir, 'pigsty.secrets.yml'), 'utf8')) as { adminSsh: { pub: string } };
    const keys = readFileSync(join(root, 'home/dba/.ssh/authorized_keys'), 'utf8').trim().split('\n').sort();
    assert.equal(keys, [secrets.adminSsh.pub, ALICE].sort());
    assert.is(statSync(join(root, 'home/dba/.ssh')).mode & 0o777, 0o700);
    // Every file of the node, as the build wrote it (resolv.conf: pigen's, then the nameservers
    // the node booted with, appended by node_dns_method `add`).
    const manifest = JSON.parse(readFileSync(join(dir, 'out/manifest.json'), 'utf8')) as { nodes: Record<string, { files: { path: string; out: string; mode: string; owner: string }[] }> };
    const ids = (f: string) => new Map(readFileSync(join(root, 'etc', f), 'utf8').trim().split('\n').map((l) => l.split(':')).map((x) => [x[0]!, Number(x[2])]));
    const [users, groups] = [ids('passwd'), ids('group')];
    for (const f of manifest.nodes[ip]!.files) {
      const on = join(root, f.path);
      assert.ok(existsSync(on), `${f.path} on the booted node`);
      const want = readFileSync(join(dir, 'out', f.out), 'utf8');
      const got = readFileSync(on, 'utf8');
      if (f.path === '/etc/resolv.conf') assert.ok(got.startsWith(want), `${f.path}: ${got}`);
      else assert.is(got, want, f.path);
      const st = statSync(on);
      assert.is((st.mode & 0o7777).toString(8).padStart(4, '0'), f.mode, `${f.path} mode`);
      const [u, g] = f.owner.split(':');
      assert.equal([st.uid, st.gid], [users.get(u!), groups.get(g!)], `${f.path} owner ${f.owner}`);
    }
  } finally {
    for (const m of [join(root, 'proc/sys'), join(root, 'proc')]) run('umount', [m]).code === 0 || run('umount', ['-l', m]);
  }
});

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
