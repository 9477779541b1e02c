// End to end with real parts: `pigen bundle --download` fetches real Debian packages (jq and its
// whole dependency closure) with an isolated apt-get, `pigen bundle` bundles them, the generated
// boot-time installer verifies and extracts the bundle into a temp /www, the real nginx serves it
// on a loopback port (a minimal autoindex server over that /www, standing in for the home
// server), and an isolated apt client pointed at `deb [trusted=yes] http://127.0.0.1:PORT/pigsty ./`
// (its own sources list, state and cache) runs `apt-get update` and `install --download-only`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { main } from '../generator/cli/main.ts';
import { needTools, run, tmp } from './helpers.ts';

const HAVE = needTools('bundle end-to-end (apt, nginx)', 'apt-get', 'nginx', 'dpkg-deb', 'sha256sum', 'tar', 'curl');

async function cli(args: string[]) {
  let out = '';
  let err = '';
  const code = await main(args, {
    cwd: process.cwd(),
    env: process.env,
    stdout: { write: (s) => void (out += s), isTTY: false },
    stderr: { write: (s) => void (err += s), isTTY: false },
    epoch: 0,
  });
  return { code, out, err };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

test('real packages: download, bundle, install with the generated script, serve with nginx, apt update + install from it', async () => {
  if (!HAVE) return;
  const dir = tmp('pigen-e2e-');
  const inv = join(dir, 'pigsty.yml');
  writeFileSync(
    inv,
    'all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n  vars:\n    admin_ip: 10.10.10.10\n    repo_packages: [jq]\n    repo_extra_packages: []\n    repo_bundle: /tmp/pkg.tgz\n',
  );

  // 1. Download with dependencies (isolated apt: own lists, cache, empty dpkg status).
  const pk = await cli(['bundle', inv, '--packages']);
  assert.equal(pk.out.trim().split('\n'), ['jq']);
  const cache = join(dir, 'cache');
  const dl = await cli(['bundle', inv, '--download', '--cache', cache, '--quiet']);
  assert.is(dl.code, 0, dl.err);
  const archives = join(cache, 'archives');
  const debs = readdirSync(archives).filter((n) => n.endsWith('.deb'));
  for (const p of ['jq_', 'libjq1_', 'libonig5_', 'libc6_']) assert.ok(debs.some((d) => d.startsWith(p)), `${p}* downloaded: ${debs.join(' ')}`);
  // A second run reuses the cache (apt finds the files already there).
  const again = await cli(['bundle', inv, '--download', '--cache', cache, '--quiet']);
  assert.is(again.code, 0, again.err);

  // 2. Bundle and verify.
  const bundle = join(dir, 'pkg.tgz');
  const b = await cli(['bundle', inv, '--from', archives, '-o', bundle, '--quiet']);
  assert.is(b.code, 0, b.err);
  const v = await cli(['bundle', 'verify', bundle]);
  assert.is(v.code, 0, v.err);

  // 3. Install with the generated boot-time script into a temp /www.
  assert.is((await cli(['build', inv, '-o', join(dir, 'out')])).code, 0);
  const script = join(dir, 'out/nodes/10.10.10.10/rootfs/usr/local/bin/pigen-install-bundle');
  chmodSync(script, 0o755);
  const www = join(dir, 'www');
  const ins = run('env', [`WWW=${www}`, 'sh', script, bundle]);
  assert.is(ins.code, 0, ins.stdout + ins.stderr);
  assert.ok(existsSync(join(www, 'pigsty/repo_complete')));
  chmodSync(dir, 0o755);

  // 4. Serve with nginx on a loopback port.
  const port = await freePort();
  const prefix = join(dir, 'nginx');
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `user root root;\nworker_processes 1;\npid ${prefix}/nginx.pid;\nerror_log ${prefix}/error.log;\nevents { worker_connections 64; }\n` +
      `http {\n  access_log ${prefix}/access.log;\n  client_body_temp_path ${prefix}/tmp/body; proxy_temp_path ${prefix}/tmp/proxy; fastcgi_temp_path ${prefix}/tmp/fcgi; uwsgi_temp_path ${prefix}/tmp/uwsgi; scgi_temp_path ${prefix}/tmp/scgi;\n` +
      `  types { application/octet-stream deb; text/plain txt; }\n  default_type application/octet-stream;\n` +
      `  server {\n    listen 127.0.0.1:${port};\n    root ${www};\n    autoindex on;\n  }\n}\n`,
  );
  const start = run('nginx', ['-p', prefix, '-c', conf]);
  assert.is(start.code, 0, start.stderr);
  try {
    const idx = run('curl', ['-fsS', `http://127.0.0.1:${port}/pigsty/`]);
    assert.is(idx.code, 0, idx.stderr);
    assert.match(idx.stdout, /repo_complete/);

    // 5. An isolated apt client using only this repo.
    const a = join(dir, 'apt');
    mkdirSync(join(a, 'state/lists/partial'), { recursive: true });
    mkdirSync(join(a, 'cache/archives/partial'), { recursive: true });
    writeFileSync(join(a, 'sources.list'), `deb [trusted=yes] http://127.0.0.1:${port}/pigsty ./\n`);
    const opts = [
      '-o', `Dir::Etc::sourcelist=${join(a, 'sources.list')}`,
      '-o', 'Dir::Etc::sourceparts=/dev/null',
      '-o', `Dir::State=${join(a, 'state')}`,
      '-o', 'Dir::State::status=/var/lib/dpkg/status',
      '-o', `Dir::Cache=${join(a, 'cache')}`,
      '-o', 'Debug::NoLocking=1',
      '-o', 'APT::Sandbox::User=root',
    ];
    const up = run('apt-get', [...opts, 'update']);
    assert.is(up.code, 0, up.stdout + up.stderr);
    assert.not.match(up.stdout + up.stderr, /^(Err|W|E):/m);
    assert.match(up.stdout, new RegExp(`127\\.0\\.0\\.1:${port}/pigsty \\./ (Release|Packages)`));
    const get = run('apt-get', [...opts, '-y', '--reinstall', 'install', '--download-only', 'jq', 'libjq1', 'libonig5']);
    assert.is(get.code, 0, get.stdout + get.stderr);
    const fetched = readdirSync(join(a, 'cache/archives')).filter((n) => n.endsWith('.deb'));
    for (const p of ['jq_', 'libjq1_', 'libonig5_']) {
      const name = fetched.find((d) => d.startsWith(p));
      assert.ok(name, `${p}* fetched from the bundle repo: ${fetched.join(' ')}`);
      const sum = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
      assert.is(sum(join(a, 'cache/archives', name!)), sum(join(www, 'pigsty', name!)));
    }
    const log = readFileSync(join(prefix, 'access.log'), 'utf8');
    assert.match(log, /GET \/pigsty\/(\.\/)?jq_\S+\.deb HTTP\/1\.1" 200/, log);
    assert.match(log, /GET \/pigsty\/(\.\/)?Packages(\.gz)? HTTP\/1\.1" 200/, log);
  } finally {
    run('nginx', ['-p', prefix, '-c', conf, '-s', 'stop']);
  }
});

test.run();
