// `pigen check` over real builds: the embedded default and Pigsty's inventories (meta, full, simu,
// rich, el, and el as EL9) pass every validator — cloud-init 22.4 and the upstream cloud-config
// schema, nginx -t (the node's whole configuration), vmalert, promtool, amtool, blackbox, dnsmasq, chronyd, systemd-analyze, VictoriaMetrics,
// visudo and the built-in checks — and every validator actually ran. A corrupted alertmanager.yml, rule
// file, unit or nginx conf makes `pigen check` exit 1 naming the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { checkOutput, type CheckReport } from '../generator/cli/check.ts';
import { listenPorts, remapListen } from '../generator/cli/check-nginx.ts';
import { loadInventory } from '../generator/cli/common.ts';
import type { CliContext } from '../generator/cli/context.ts';
import { main } from '../generator/cli/main.ts';
import { compile } from '../generator/compile.ts';
import { packageVersion, readAssets, writeTree } from '../generator/io.ts';
import { SHARED, needShared, needTools, run, tmp, which } from './helpers.ts';

const TOOLS = ['cloud-init', 'nginx', 'vmalert', 'promtool', 'amtool', 'prometheus-blackbox-exporter', 'dnsmasq', 'chronyd', 'systemd-analyze', 'victoria-metrics', 'openssl', 'visudo'];
const HAVE = needTools('pigen check with the real validators', ...TOOLS);
const SCHEMA = SHARED ? join(SHARED, 'cloud-init-schema', 'schema-cloud-config-v1.json') : null;
/** Every validator `pigen check` has; upstream-schema needs the shared schema file. */
const VALIDATORS = ['cloud-init', 'nginx', 'vmalert', 'promtool', 'amtool', 'prometheus-blackbox-exporter', 'dnsmasq', 'chronyd', 'systemd-analyze', 'victoria-metrics', 'visudo', 'builtin', ...(SCHEMA ? ['upstream-schema'] : [])];

const quiet = { write: () => {}, isTTY: false };
const temps: string[] = [];
const temp = (prefix: string) => {
  const d = tmp(prefix);
  temps.push(d);
  return d;
};
test.after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Builds an inventory in-process (as `pigen build` does) into a fresh temp dir. */
function build(arg: string | undefined, sets: string[] = []): string {
  const cwd = arg ? SHARED! : temp('pigen-vt-inv-'); // no ./pigsty.yml there: the embedded default
  const ctx: CliContext = { cwd, env: {}, stdout: quiet, stderr: quiet, epoch: 0 };
  const r = loadInventory(ctx, arg, sets, false);
  if (!r.inventory) throw new Error(`cannot load ${arg ?? 'the embedded default'}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  const out = join(temp('pigen-vt-'), 'out');
  writeTree(out, compile(r.inventory, readAssets(), { version: packageVersion() }).tree);
  return out;
}

function failures(r: CheckReport): string {
  return r.rows
    .filter((x) => x.result === 'FAIL')
    .map((x) => `  ${x.node}:${x.path} [${x.validator}] ${x.message}\n${(x.output ?? '').split('\n').slice(0, 8).map((l) => `      ${l}`).join('\n')}`)
    .join('\n');
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const ctx: CliContext = {
    cwd: process.cwd(),
    env: process.env,
    stdout: { write: (s) => void (stdout += String(s)), isTTY: false },
    stderr: { write: (s) => void (stderr += String(s)), isTTY: false },
    epoch: 0,
  };
  const code = await main(args, ctx);
  return { code, stdout, stderr };
}

const CASES: [string, string | undefined, string[]][] = [['embedded default', undefined, []]];
if (HAVE && needShared('pigen check of the Pigsty inventories')) {
  for (const f of ['meta', 'full', 'simu', 'rich', 'el']) CASES.push([f, `pigsty-conf/${f}.yml`, []]);
  CASES.push(['el (os_profile=el9)', 'pigsty-conf/el.yml', ['os_profile=el9']]);
}

for (const [name, arg, sets] of CASES) {
  test(`pigen check passes on ${name}, every validator ran`, async () => {
    if (!HAVE) return;
    const dir = build(arg, sets);
    const r = await checkOutput(dir, { cloudInitSchema: SCHEMA });
    assert.equal(r.notFound, [], 'validators not found');
    assert.is(r.counts.FAIL, 0, `failures:\n${failures(r)}`);
    for (const v of VALIDATORS) assert.ok((r.ran[v] ?? 0) > 0, `${v} never ran (ran: ${JSON.stringify(r.ran)})`);
    // Every user-data is checked by both cloud-config validators, with no deprecated key.
    const nodes = new Set(r.rows.map((x) => x.node));
    // So is every user-data.baked, what a node booted from its image gets (a review found it unchecked).
    for (const v of ['cloud-init', ...(SCHEMA ? ['upstream-schema'] : [])]) {
      assert.is(r.rows.filter((x) => x.path === 'user-data' && x.validator === v && x.result === 'ok').length, nodes.size, `${v} on every user-data`);
      assert.is(r.rows.filter((x) => x.path === 'user-data.baked' && x.validator === v && x.result === 'ok').length, nodes.size, `${v} on every user-data.baked`);
    }
    const deprecated = r.rows.flatMap((x) => (x.warnings ?? []).filter((w) => /deprecat/i.test(w)).map((w) => `${x.node}:${x.path} ${w}`));
    assert.equal(deprecated, [], 'deprecated cloud-config keys');
    // Only the kinds without a validator are skipped (and, in a clone without ../shared, the
    // upstream schema check, which has no schema file there: needShared says so).
    if (!SCHEMA) needShared('the upstream cloud-config schema check in pigen check');
    const skippedKinds = new Set(r.rows.filter((x) => x.result === 'skipped' && (SCHEMA || x.validator !== 'upstream-schema')).map((x) => x.kind));
    for (const k of skippedKinds) assert.ok(['other', 'ca-cert', 'tls-cert', 'tls-key'].includes(k), `kind ${k} skipped`);
  });
}

test('node_aliases, node_crontab, node_sysctl_params, node_kernel_modules: written, checked (sh -n, cron and sysctl formats), and a broken one fails', async () => {
  if (!HAVE) return;
  const dir = build(undefined, ['node_aliases={ll: "ls -l | less", k: kubectl}', 'node_crontab=["00 01 * * * postgres /pg/bin/pg-backup full", "@reboot root /bin/true"]', 'node_sysctl_params={vm.swappiness: 1, net.ipv4.tcp_rmem: "4096 87380 6291456"}']);
  const rootfs = join(dir, 'nodes', '10.10.10.10', 'rootfs');
  assert.is(readFileSync(join(rootfs, 'etc/profile.d/node.alias.sh'), 'utf8'), "# generated by pigen (node_aliases)\nalias ll='ls -l | less'\nalias k='kubectl'\n");
  assert.match(readFileSync(join(rootfs, 'etc/cron.d/pigsty'), 'utf8'), /^00 01 \* \* \* postgres \/pg\/bin\/pg-backup full$/m);
  assert.match(readFileSync(join(rootfs, 'etc/sysctl.d/90-pigsty.conf'), 'utf8'), /^net\.ipv4\.tcp_rmem = 4096 87380 6291456$/m);
  assert.match(readFileSync(join(rootfs, 'etc/modules-load.d/pigsty.conf'), 'utf8'), /^softdog$/m);
  // The aliases file means what it says to a shell.
  const sh = run('sh', ['-c', '. "$1"; alias ll', 'sh', join(rootfs, 'etc/profile.d/node.alias.sh')]);
  assert.is(sh.stdout.trim(), "ll='ls -l | less'");
  let r = await checkOutput(dir, { cloudInitSchema: SCHEMA });
  const row = (p: string) => r.rows.find((x) => x.node === '10.10.10.10' && x.path === p)!;
  for (const [p, v] of [['/etc/profile.d/node.alias.sh', 'sh'], ['/etc/cron.d/pigsty', 'builtin'], ['/etc/sysctl.d/90-pigsty.conf', 'builtin'], ['/etc/modules-load.d/pigsty.conf', 'builtin']]) {
    assert.is(row(p!)?.result, 'ok', `${p}: ${JSON.stringify(row(p!))}`);
    assert.is(row(p!)!.validator, v);
  }
  writeFileSync(join(rootfs, 'etc/profile.d/node.alias.sh'), "alias ll='ls -l\n");
  writeFileSync(join(rootfs, 'etc/cron.d/pigsty'), '00 01 * * postgres /bin/true\n');
  writeFileSync(join(rootfs, 'etc/sysctl.d/90-pigsty.conf'), 'vm.swappiness 1\n');
  r = await checkOutput(dir, { cloudInitSchema: SCHEMA });
  for (const p of ['/etc/profile.d/node.alias.sh', '/etc/cron.d/pigsty', '/etc/sysctl.d/90-pigsty.conf']) assert.is(row(p).result, 'FAIL', p);
});

test('the admin user\'s sudo rule passes visudo at every level (nopass, all, limit); a broken one fails', async () => {
  if (!HAVE) return;
  for (const level of ['nopass', 'all', 'limit']) {
    const dir = build(undefined, [`node_admin_sudo=${level}`]);
    const r = await checkOutput(dir, { cloudInitSchema: SCHEMA });
    const row = r.rows.find((x) => x.path === '/etc/sudoers.d/dba');
    assert.equal([row?.validator, row?.result], ['visudo', 'ok'], `${level}: ${JSON.stringify(row)}`);
    if (level !== 'limit') continue;
    writeFileSync(join(dir, 'nodes', '10.10.10.10', 'rootfs', 'etc', 'sudoers.d', 'dba'), 'dba ALL=(ALL NOPASSWD: ALL\n');
    const bad = await checkOutput(dir, { cloudInitSchema: SCHEMA });
    assert.is(bad.rows.find((x) => x.path === '/etc/sudoers.d/dba')?.result, 'FAIL');
  }
});

test('a corrupted alertmanager.yml, rule file and unit: pigen check exits 1 naming each file', async () => {
  if (!HAVE) return;
  const dir = build(undefined);
  const rootfs = join(dir, 'nodes', '10.10.10.10', 'rootfs');
  const edit = (p: string, f: (s: string) => string) => writeFileSync(join(rootfs, p), f(readFileSync(join(rootfs, p), 'utf8')));
  edit('etc/alertmanager.yml', (s) => s.replace('group_wait: 30s', 'group_wait: thirty'));
  edit('data/infra/rules/node.yml', (s) => s.replace(/expr: /, 'expr: sum(('));
  edit('etc/systemd/system/vector.service', (s) => s.replace(/^ExecStart=.*$/m, ''));
  appendFileSync(join(rootfs, 'etc/systemd/system/node_exporter.service'), 'LimitNOFILEE=1\n');
  edit('etc/nginx/conf.d/home.conf', (s) => s.replace(/listen 80 default_server;/, 'listen 80 default_server'));
  const r = await cli(['check', dir]);
  assert.is(r.code, 1, r.stdout + r.stderr);
  const failed = r.stdout.split('\n').filter((l) => /\sFAIL\s/.test(l));
  const named = (path: string, validator: string) => failed.some((l) => l.startsWith(`10.10.10.10:${path} `) && l.includes(` ${validator} `));
  assert.ok(named('/etc/alertmanager.yml', 'amtool'), r.stdout);
  assert.ok(named('/infra/rules/node.yml', 'vmalert'), r.stdout);
  assert.ok(named('/infra/rules/node.yml', 'promtool'), r.stdout);
  assert.ok(named('/etc/systemd/system/vector.service', 'systemd-analyze'), r.stdout);
  assert.ok(named('/etc/systemd/system/node_exporter.service', 'systemd-analyze'), r.stdout);
  assert.ok(named('/etc/nginx/conf.d/home.conf', 'nginx'), r.stdout);
  assert.match(r.stdout, /invalid parameter "listen" in \/etc\/nginx\/conf\.d\/home\.conf:\d+/);
  assert.match(r.stdout, /10\.10\.10\.10:\/etc\/nginx\/nginx\.conf +nginx +skipped +nginx -t stopped at \/etc\/nginx\/conf\.d\/home\.conf/);
  assert.is(failed.length, 6, r.stdout);
  assert.match(r.stdout, /not a valid duration string/);
  assert.match(r.stdout, /LimitNOFILEE/);

  // --json: the same table as data.
  const j = await cli(['check', dir, '--json']);
  assert.is(j.code, 1);
  const data = JSON.parse(j.stdout) as { ok: boolean; counts: { FAIL: number }; rows: { path: string; result: string }[] };
  assert.is(data.ok, false);
  assert.is(data.counts.FAIL, 6);
  assert.ok(data.rows.some((x) => x.path === '/etc/alertmanager.yml' && x.result === 'FAIL'));
});

test('user-data: an unknown key fails the upstream schema, a deprecated key is only a warning', async () => {
  if (!HAVE || !SCHEMA) return;
  const dir = build(undefined);
  const ud = join(dir, 'nodes', '10.10.10.10', 'user-data');
  const text = readFileSync(ud, 'utf8');
  writeFileSync(ud, text.replace('\nmanage_etc_hosts: false\n', '\nmanage_etc_hosts: false\napt_update: true\n'));
  let r = await checkOutput(dir, { cloudInitSchema: SCHEMA });
  const rows = r.rows.filter((x) => x.path === 'user-data');
  assert.equal(rows.map((x) => x.result), ['ok', 'ok'], failures(r));
  for (const x of rows) assert.ok(x.warnings?.some((w) => w.includes('apt_update')), `${x.validator} warns about apt_update`);

  writeFileSync(ud, text.replace('\nmanage_etc_hosts: false\n', '\nmanage_etc_hosts: false\nmanage_etc_hostz: false\n'));
  r = await checkOutput(dir, { cloudInitSchema: SCHEMA });
  const up = r.rows.find((x) => x.path === 'user-data' && x.validator === 'upstream-schema')!;
  assert.is(up.result, 'FAIL');
  assert.match(up.message, /manage_etc_hostz/);
});

test("nginx -t of pigen check listens on free ports, not the node's: it passes while this machine holds 80 and 443 (or may not bind them), and says a port as the node has it", async () => {
  // (Each listen's port mapped in the scratch copy, distinct ones to distinct ones; a review found
  // a correct output failing as a user that may not bind 80, and a server here on 80 fails it too.)
  assert.is(remapListen('listen 80 default_server;\nlisten [::]:443 ssl;\nlisten 127.0.0.1;\nlisten unix:/run/x.sock;\nserver_name listen;\n', (p) => p + 40000), 'listen "40080" default_server;\nlisten "[::]:40443" ssl;\nlisten "127.0.0.1:40080";\nlisten unix:/run/x.sock;\nserver_name listen;\n');
  assert.equal(listenPorts(['listen 8080; listen *:80;', 'server { listen 80; listen localhost; }']), [80, 8080]);
  if (!HAVE) return;
  const dir = build(undefined);
  const held = await Promise.all(
    [80, 443].map(
      (port) =>
        new Promise<Server | undefined>((res) => {
          const srv = createServer();
          srv.once('error', () => res(undefined));
          srv.listen(port, () => res(srv));
        }),
    ),
  );
  try {
    const r = await cli(['check', dir, '--json']);
    const rows = (JSON.parse(r.stdout) as CheckReport).rows.filter((x) => x.validator === 'nginx');
    assert.ok(rows.length > 1 && rows.every((x) => x.result === 'ok'), JSON.stringify(rows.filter((x) => x.result !== 'ok')));
  } finally {
    await Promise.all(held.map((srv) => srv && new Promise((res) => srv.close(res))));
  }
  const home = join(dir, 'nodes/10.10.10.10/rootfs/etc/nginx/conf.d/home.conf');
  writeFileSync(home, readFileSync(home, 'utf8').replace(/^(\s*)listen 80 default_server;$/m, '$&\n$1listen 80 default_server;'));
  const bad = await cli(['check', dir]);
  assert.is(bad.code, 1);
  assert.match(bad.stdout, /10\.10\.10\.10:\/etc\/nginx\/conf\.d\/home\.conf +nginx +FAIL +nginx: a duplicate listen 0\.0\.0\.0:80 in \/etc\/nginx\/conf\.d\/home\.conf:\d+/);
});

test('pigen check: exit 2 when DIR is not a pigen output; validators not on PATH are skipped and listed', async () => {
  const empty = temp('pigen-vt-notout-');
  const r = await cli(['check', empty]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /not a pigen output/);
  // Gone, its previous tree set aside by a build cut in its swap: said so.
  const gone = join(empty, 'gone');
  mkdirSync(join(empty, '.gone.pigen', 'old'), { recursive: true });
  writeFileSync(join(empty, '.gone.pigen', 'old', 'manifest.json'), '{}');
  const cut = await cli(['check', gone]);
  assert.is(cut.code, 2, cut.stderr);
  assert.match(cut.stderr, /gone is missing: a build was cut between the renames that swap in a new output, and the previous one waits in .*\.gone\.pigen\/old \(the next build puts it back first\); run 'pigen build -o .*gone' first/);
  // Through a link to it too.
  symlinkSync('gone', join(empty, 'link'));
  assert.match((await cli(['check', join(empty, 'link')])).stderr, /link is missing: .*\.gone\.pigen\/old/);
  rmSync(join(empty, 'link'));
  rmSync(join(empty, '.gone.pigen'), { recursive: true });
  writeFileSync(join(empty, 'manifest.json'), '{"nodes": 1}');
  assert.is((await cli(['check', empty])).code, 2);
  // A manifest not as pigen writes it: exit 2 (was an internal error, exit 1, for the first three),
  // and no file outside DIR is read (one naming ../../etc/shadow listed its user names). Found by
  // a review.
  const file = (out: unknown) => JSON.stringify({ generator: 'pigen 0.1.0', nodes: { '10.10.10.10': { files: [{ path: '/etc/x', kind: 'env', out }] } } });
  for (const m of ['null', '[]', '{"generator": "pigen", "nodes": {"10.10.10.10": {"files": [], "userData": {"out": 5}}}}', file('.'), file('../../../../etc/shadow'), file('nodes/10.10.10.10/../../../../etc/shadow'), file('/etc/shadow'), file(5)]) {
    writeFileSync(join(empty, 'manifest.json'), m);
    for (const json of [false, true]) {
      const bad = await cli(['check', empty, ...(json ? ['--json'] : [])]);
      assert.is(bad.code, 2, `${m}: ${bad.stderr}`);
      assert.match(bad.stderr, /not a pigen manifest|has no valid files list|userData\.out is not under/, m);
      assert.not.match(bad.stderr + bad.stdout, /internal error|root:|TypeError/, m);
    }
  }
  // A --cloud-init-schema named but unusable (not JSON, a directory, no JSON Schema): a usage
  // error, exit 2 (was: every upstream check skipped and exit 0, or each one crashed, exit 1).
  const outDir = build(undefined);
  writeFileSync(join(empty, 'notjson.json'), 'nope');
  writeFileSync(join(empty, 'noschema.json'), '{"type": 5}');
  for (const [f, why] of [[join(empty, 'notjson.json'), /cannot read it: .*JSON/], [empty, /cannot read it: EISDIR/], [join(empty, 'noschema.json'), /not a usable JSON Schema: schema is invalid/]] as const) {
    const r2 = await cli(['check', outDir, '--cloud-init-schema', f]);
    assert.is(r2.code, 2, r2.stderr);
    assert.match(r2.stderr, why);
  }
  // A validator that cannot run (a broken #! line) or dies by a signal says so, on every file it
  // was to check: no file is blamed, none "skipped before reaching it". (A review found the first
  // nginx file failed with "spawn ENOENT", the others skipped as if nginx had stopped there.)
  const bin = temp('pigen-vt-bin-');
  for (const [name, body] of [['nginx', '#!/nonexistent/sh\n'], ['amtool', '#!/bin/sh\nkill -SEGV $$\n'], ['cloud-init', '#!/bin/sh\nexit 0\n']] as const) writeFileSync(join(bin, name), body, { mode: 0o755 });
  // (Without openssl, nginx -t is skipped: no stand-in certificate can be made for it.)
  const noSsl = await checkOutput(outDir, { env: { PATH: bin }, cloudInitSchema: null });
  assert.ok(noSsl.notFound.includes('openssl'), 'openssl listed as not found');
  for (const x of noSsl.rows.filter((x) => x.validator === 'nginx')) assert.match(x.message, /^openssl not found: no stand-in certificate for \/etc\/nginx\/conf\.d\/cert\/\S+ \(the node makes its own at first boot\), which nginx -t needs$/);
  symlinkSync(which('openssl')!, join(bin, 'openssl'));
  const broken = await checkOutput(outDir, { env: { PATH: bin }, cloudInitSchema: null });
  const nginxRows = broken.rows.filter((x) => x.validator === 'nginx');
  assert.ok(nginxRows.length > 1);
  for (const x of nginxRows) assert.match(x.message, /^nginx could not check it: cannot run .*nginx: ENOENT \(a broken #! line\?\)$/, `${x.path}: ${x.message}`);
  assert.match(broken.rows.find((x) => x.validator === 'amtool')!.message, /^amtool could not check it: amtool was killed by SIGSEGV$/);
  assert.match(broken.rows.find((x) => x.validator === 'cloud-init')!.message, /^cloud-init could not check it: cloud-init schema exited 0 without saying "Valid cloud-config"$/);
  // A file of the manifest that is a directory, or a link out of DIR: a FAIL row, not read.
  const links = build(undefined);
  const mf = JSON.parse(readFileSync(join(links, 'manifest.json'), 'utf8')) as { nodes: Record<string, { files: { out: string; kind: string }[] }> };
  const [ip, node] = Object.entries(mf.nodes)[0]!;
  const env = node.files.find((f) => f.kind === 'env')!;
  rmSync(join(links, env.out));
  symlinkSync('/etc/shadow', join(links, env.out));
  const hosts = node.files.find((f) => f.kind === 'hosts')!;
  rmSync(join(links, hosts.out));
  mkdirSync(join(links, hosts.out));
  const out = await checkOutput(links, { env: { PATH: '/nonexistent' }, cloudInitSchema: null });
  const row = (o: string) => out.rows.find((x) => x.out === o && x.node === ip)!;
  assert.match(row(env.out).message, /leads out of/);
  assert.match(row(hosts.out).message, /is not a regular file/);
  assert.not.match(JSON.stringify(out.rows), /root:/);

  // Nothing a link leads to outside DIR is read by the checks that read a node's other files
  // (found by a review: nginx -t read a linked conf through a second manifest entry of its path,
  // and the rootfs copy kept links out of it, which dnsmasq's conf-dir followed).
  const sneaky = build(undefined);
  const outside = join(temp('pigen-vt-outside-'), 'outside.conf');
  writeFileSync(outside, 'outside_dir_secret_Value_1234;\n');
  const smf = JSON.parse(readFileSync(join(sneaky, 'manifest.json'), 'utf8')) as { nodes: Record<string, { files: { path: string; out: string; kind: string }[] }> };
  const sn = smf.nodes['10.10.10.10']!;
  const home = sn.files.find((f) => f.path === '/etc/nginx/conf.d/home.conf')!;
  writeFileSync(join(sneaky, home.out.replace('home.conf', 'home2.conf')), readFileSync(join(sneaky, home.out)));
  rmSync(join(sneaky, home.out));
  symlinkSync(outside, join(sneaky, home.out));
  sn.files.unshift({ ...home, out: home.out.replace('home.conf', 'home2.conf') });
  writeFileSync(join(sneaky, 'manifest.json'), JSON.stringify(smf));
  symlinkSync(outside, join(sneaky, 'nodes/10.10.10.10/rootfs/etc/dnsmasq.d/evil'));
  const sr = await checkOutput(sneaky, { env: process.env, cloudInitSchema: null });
  assert.not.match(JSON.stringify(sr.rows), /outside_dir_secret/);
  assert.ok(sr.rows.some((x) => x.out === home.out && /is listed twice in manifest\.json/.test(x.message)), JSON.stringify(sr.rows.filter((x) => x.result === 'FAIL')));
  if (HAVE) assert.is(sr.rows.find((x) => x.validator === 'dnsmasq')!.result, 'ok', 'the link out of the rootfs is not in the copy dnsmasq reads');
  // Nor through a chain of relative links (`L -> ..` used in another's target), nor by a `..`
  // segment in a path a file names (nginx include, scrape config file, unit ExecStart): nothing
  // outside DIR is read or written (found by a review of the change above).
  const chain = build(undefined);
  const R = join(chain, 'nodes/10.10.10.10/rootfs');
  const deep = join(R, 'data/a/b/c/d/e');
  mkdirSync(deep, { recursive: true });
  const out2 = dirname(outside);
  symlinkSync('..', join(deep, 'L'));
  symlinkSync('L/../../../../..', join(deep, 'x1'));
  symlinkSync('x1/../../../../..', join(deep, 'x2'));
  symlinkSync(`x2${outside}`, join(deep, 'x3'));
  symlinkSync(`x2${out2}/created-by-link`, join(deep, 'x4'));
  symlinkSync('../../data/a/b/c/d/e/x3', join(R, 'etc/dnsmasq.d/evil2'));
  const up = '/..'.repeat(12);
  const pgadmin = join(R, 'etc/nginx/conf.d/home.conf');
  writeFileSync(pgadmin, readFileSync(pgadmin, 'utf8').replace(/^(server \{)$/m, `include ${up}${outside};\n$1`));
  const prom = join(R, 'data/infra/prometheus.yml');
  writeFileSync(prom, readFileSync(prom, 'utf8').replace('scrape_configs:\n', `scrape_configs:\n  - job_name: evil\n    basic_auth: { username: x, password_file: ${up}${out2}/created-by-dotdot }\n    static_configs: [ { targets: [ "127.0.0.1:1" ] } ]\n  - job_name: evil2\n    basic_auth: { username: x, password_file: /data/a/b/c/d/e/x4 }\n    static_configs: [ { targets: [ "127.0.0.1:1" ] } ]\n`));
  const unit = join(R, 'etc/systemd/system/vector.service');
  writeFileSync(unit, readFileSync(unit, 'utf8').replace(/^ExecStart=.*$/m, `ExecStart=${up}${out2}/stub-created`));
  appendFileSync(join(R, 'etc/alertmanager.yml'), `templates:\n  - ${outside}\n`);
  // (A file of conf-dir naming this machine's file, listed in the manifest; a sudoers include.)
  writeFileSync(join(R, 'etc/dnsmasq.d/evil3'), `conf-file=${outside}\n`);
  const cmf = JSON.parse(readFileSync(join(chain, 'manifest.json'), 'utf8')) as { nodes: Record<string, { files: Record<string, unknown>[] }> };
  cmf.nodes['10.10.10.10']!.files.push({ path: '/etc/dnsmasq.d/evil3', out: 'nodes/10.10.10.10/rootfs/etc/dnsmasq.d/evil3', kind: 'other', mode: '0644', owner: 'root:root' });
  const sudoers = cmf.nodes['10.10.10.10']!.files.find((f) => f.kind === 'sudoers');
  if (sudoers) appendFileSync(join(chain, sudoers.out as string), `@include ${outside}\n`);
  writeFileSync(join(chain, 'manifest.json'), JSON.stringify(cmf));
  const cr = await checkOutput(chain, { env: process.env, cloudInitSchema: null });
  if (HAVE && sudoers) assert.match(cr.rows.find((x) => x.validator === 'visudo')!.message, /an include directive \(pigen writes none\)/);
  if (HAVE) assert.match(cr.rows.find((x) => x.validator === 'amtool')!.message, /a templates list \(pigen writes none\)/);
  assert.not.match(JSON.stringify(cr.rows), /outside_dir_secret/);
  assert.equal(readdirSync(out2).sort(), ['outside.conf'], 'nothing made outside DIR');
  if (HAVE) {
    // (The conf-dir file's conf-file is read in the node's copy, where there is no such file.)
    const dm = cr.rows.find((x) => x.validator === 'dnsmasq')!;
    assert.is(dm.result, 'FAIL', JSON.stringify(dm));
    assert.match(dm.message, /outside\.conf/);
    assert.not.match(dm.message, /bad option/);
    assert.match(cr.rows.find((x) => x.validator === 'victoria-metrics')!.message, /has a \.\. segment: the check does not follow it/);
    assert.match(cr.rows.find((x) => x.path === '/etc/nginx/conf.d/home.conf' && x.validator === 'nginx')!.message, /pigen-check-path-with-dotdot/);
  }
  // What a file of DIR holds reaches the table: nothing a terminal acts on is printed as it is.
  const esc = build(undefined);
  appendFileSync(join(esc, 'nodes/10.10.10.10/rootfs/etc/hosts'), '10.10.10.10 bad\x1b]0;PWNED\x07name\n');
  const shown = await cli(['check', esc]);
  assert.is(shown.code, 1);
  assert.not.match(shown.stdout, /[\x1b\x07]/);
  assert.match(shown.stdout, /bad\\u001b\]0;PWNED\\u0007name/);
  // A file this user cannot read: a FAIL row saying so (was an internal error with a stack).
  // A manifest that lists no node, a node's file of a kind named like an object's property: exit
  // 2, and no crash.
  if (process.getuid?.() !== 0) {
    const ro = build(undefined);
    const f = join(ro, 'nodes/10.10.10.10/rootfs/etc/default/node_exporter');
    chmodSync(f, 0);
    const rr = await checkOutput(ro, { env: { PATH: '/nonexistent' }, cloudInitSchema: null });
    assert.match(rr.rows.find((x) => x.out.endsWith('etc/default/node_exporter'))!.message, /cannot be read: permission denied/);
  }
  const odd = build(undefined);
  const omf = JSON.parse(readFileSync(join(odd, 'manifest.json'), 'utf8')) as { nodes: Record<string, { files: { kind: string }[] }> };
  for (const [i, k] of ['toString', 'constructor', '__proto__', 'hasOwnProperty'].entries()) omf.nodes['10.10.10.10']!.files[i]!.kind = k;
  writeFileSync(join(odd, 'manifest.json'), JSON.stringify(omf));
  const or = await checkOutput(odd, { env: { PATH: '/nonexistent' }, cloudInitSchema: null });
  assert.not.match(JSON.stringify(or.rows), /check crashed/);
  writeFileSync(join(odd, 'manifest.json'), '{"generator": "pigen 0.1.0", "nodes": {}}');
  const none = await cli(['check', odd]);
  assert.is(none.code, 2);
  assert.match(none.stderr, /lists no node/);
  // A --cloud-init-schema that constrains nothing or is no object: exit 2 (`[]` crashed each check).
  for (const body of ['[]', '{}', 'true']) {
    writeFileSync(join(empty, 'weak.json'), body);
    const w = await cli(['check', outDir, '--cloud-init-schema', join(empty, 'weak.json')]);
    assert.is(w.code, 2, `${body}: ${w.stderr}`);
    assert.match(w.stderr, /not a usable JSON Schema/);
  }

  const dir = build(undefined);
  const report = await checkOutput(dir, { env: { PATH: '/nonexistent' }, cloudInitSchema: null });
  assert.is(report.counts.FAIL, 0, failures(report));
  assert.ok(report.notFound.includes('amtool') && report.notFound.includes('cloud-init'), report.notFound.join(','));
  assert.equal(Object.keys(report.ran), ['builtin']);
  const am = report.rows.find((x) => x.path === '/etc/alertmanager.yml')!;
  assert.is(am.result, 'skipped');
  assert.match(am.message, /amtool not found/);
});

test.run();
