// End to end with real parts: `pigen bundle --download` fetches real Debian packages (jq and its
// whole dependency closure) with an isolated apt-get, `pigen bundle` bundles them, `pigen build`
// (nginx_port on a free loopback port, nginx_sslmode=disable, node_repo_modules=local) renders the
// repo-serving infra node and a plain node; the infra node's generated nginx tree is rebased into
// a temp prefix (test/nginx-conf.ts), its generated boot-time installer verifies and extracts the
// bundle into the rebased nginx_home, the real nginx serves it with that generated home-server
// configuration (/pigsty/ = <nginx_home>/pigsty, autoindex), and an isolated apt client (its own
// sources list, state and cache) uses the plain node's generated `pigsty-local` source line,
// rewritten to 127.0.0.1:PORT, for `apt-get update` and `install --download-only`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { main } from '../generator/cli/main.ts';
import { needTools, run, tmp } from './helpers.ts';
import { all, copyNginxTree, location, NGINX, nginxTest, one, servers } from './nginx-conf.ts';

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
    'all:\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n    nodes: { hosts: { 10.10.10.11: {} } }\n  vars:\n    admin_ip: 10.10.10.10\n    repo_packages: [jq]\n    repo_extra_packages: []\n    repo_bundle: /tmp/pkg.tgz\n    node_repo_modules: node\n',
  );

  // 1. Download with dependencies (isolated apt: own lists, cache, empty dpkg status). (The
  //    nodes read upstream repos here, so the bundle is repo_packages' alone; grafana, vector and
  //    the like, which they install, are not in this build host's sources. Built below with
  //    node_repo_modules=local: the served repo is what is tested.)
  const pk = await cli(['bundle', inv, '--packages']);
  assert.equal(pk.out.trim().split('\n'), ['jq']);
  const cache = join(dir, 'cache');
  const dl = await cli(['bundle', inv, '--download', '--cache', cache, '--quiet']);
  assert.is(dl.code, 0, dl.err);
  const archives = join(cache, 'archives');
  const debs = readdirSync(archives).filter((n) => n.endsWith('.deb'));
  for (const p of ['jq_', 'libjq1_', 'libonig5_', 'libc6_']) assert.ok(debs.some((d) => d.startsWith(p)), `${p}* downloaded: ${debs.join(' ')}`);
  // A second run reuses the cache (apt finds the files already there).
  const again = await cli(['bundle', inv, '--download', '--cache', cache, '--quiet', '--json']);
  assert.is(again.code, 0, again.err);
  // (--json: one report on stdout.)
  const rep = JSON.parse(again.out) as { ok: boolean; archives: string; debs: number; missing: string[] };
  assert.equal([rep.ok, rep.archives, rep.debs, rep.missing], [true, archives, debs.length, []]);

  // 2. Bundle and verify.
  const bundle = join(dir, 'pkg.tgz');
  const b = await cli(['bundle', inv, '--from', archives, '-o', bundle, '--quiet']);
  assert.is(b.code, 0, b.err);
  const v = await cli(['bundle', 'verify', bundle]);
  assert.is(v.code, 0, v.err);

  // 3. The generated files: the repo-serving infra node (installer, nginx home server on a free
  //    loopback port, plain HTTP) and a plain node (its `pigsty-local` apt source).
  const port = await freePort();
  const sets = [`nginx_port=${port}`, 'nginx_sslmode=disable', 'node_repo_modules=local'];
  const built = await cli(['build', inv, '-o', join(dir, 'out'), ...sets.flatMap((x) => ['--set', x])]);
  assert.is(built.code, 0, built.err);
  const manifest = JSON.parse(readFileSync(join(dir, 'out/manifest.json'), 'utf8')) as { nodes: Record<string, { files: { path: string; out: string; kind: string }[] }> };
  const filesOf = (ip: string) => manifest.nodes[ip]!.files.map((f) => ({ ...f, content: readFileSync(join(dir, 'out', f.out), 'utf8') }));
  const sources = filesOf('10.10.10.11').filter((f) => f.kind === 'apt-source');
  assert.equal(sources.map((f) => f.path), ['/etc/apt/sources.list.d/local.list'], 'node_repo_modules=local: one apt source');
  const line = sources[0]!.content.trim();
  assert.is(line, 'deb [trusted=yes] http://10.10.10.10/pigsty ./', 'the generated pigsty-local source line');

  // 4. nginx: the infra node's generated tree, rebased under a temp prefix (copyNginxTree).
  chmodSync(dir, 0o755); // nginx workers (www-data) read the repo under it
  const prefix = join(dir, 'nginx');
  const copy = copyNginxTree(filesOf('10.10.10.10'), prefix);
  assert.equal(copy.certs, [], 'nginx_sslmode=disable: no certificate to make');
  const home = servers(copy.files).find(({ server }) => all(server.block, 'listen').some((d) => d.args[0] === String(port)));
  assert.ok(home, `a server listens on nginx_port ${port}`);
  const repoLoc = location(home!.server.block, '/pigsty/');
  assert.ok(repoLoc, 'the home server has a /pigsty/ location');
  assert.is(one(repoLoc!.block, 'autoindex')?.args[0], 'on');
  const nginxHome = one(repoLoc!.block, 'root')?.args[0] ?? '';
  assert.is(nginxHome, '/www', '/pigsty/ serves <nginx_home>/pigsty');
  const www = prefix + nginxHome;
  const t = nginxTest(copy);
  assert.is(t.code, 0, t.stderr);

  // 5. Install with the generated boot-time script into the rebased nginx_home.
  const script = join(dir, 'out/nodes/10.10.10.10/rootfs/usr/local/bin/pigen-install-bundle');
  chmodSync(script, 0o755);
  const ins = run('env', [`WWW=${www}`, 'sh', script, bundle]);
  assert.is(ins.code, 0, ins.stdout + ins.stderr);
  assert.ok(existsSync(join(www, 'pigsty/repo_complete')));

  // 6. Serve it with the real nginx, generated configuration.
  const nginxArgs = ['-p', `${prefix}/`, '-c', copy.conf, '-g', `pid ${prefix}/nginx.pid;`];
  const start = run(NGINX(), nginxArgs);
  assert.is(start.code, 0, start.stderr);
  try {
    const idx = run('curl', ['-fsS', `http://127.0.0.1:${port}/pigsty/`]);
    assert.is(idx.code, 0, idx.stderr);
    assert.match(idx.stdout, /Index of \/pigsty\//);
    assert.match(idx.stdout, /repo_complete/);

    // 7. An isolated apt client using only this repo: the generated source line, on the test port.
    const a = join(dir, 'apt');
    mkdirSync(join(a, 'state/lists/partial'), { recursive: true });
    mkdirSync(join(a, 'cache/archives/partial'), { recursive: true });
    const rewritten = line.replace('http://10.10.10.10/', `http://127.0.0.1:${port}/`);
    assert.is(rewritten, `deb [trusted=yes] http://127.0.0.1:${port}/pigsty ./`);
    writeFileSync(join(a, 'sources.list'), rewritten + '\n');
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
    // The home server's own access log (access_log /var/log/nginx/home.log, rebased).
    const logPath = all(home!.server.block, 'access_log')[0]?.args[0];
    assert.ok(logPath?.startsWith('/'), 'the home server has an access log');
    const log = readFileSync(prefix + logPath!, 'utf8');
    assert.match(log, /GET \/pigsty\/(\.\/)?jq_\S+\.deb HTTP\/1\.1" 200/, log);
    assert.match(log, /GET \/pigsty\/(\.\/)?Packages(\.gz)? HTTP\/1\.1" 200/, log);
  } finally {
    run(NGINX(), [...nginxArgs, '-s', 'stop']);
  }
});

test.run();
