// No secret in what `pigen check` prints: a validator may quote a file's lines, a password's. The
// build leaves a redaction index (salted hashes of the secrets it put into the output) beside it;
// the check hides what the index knows and what looks like a secret (generator/util/redact.ts).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { isRedactionIndex, redactHeuristic, redactIndexed, redactionIndex, redactValidatorText, secretForms } from '../generator/util/redact.ts';
import { tmp } from './helpers.ts';
import { mainIn } from './tree.ts';

const temps: string[] = [];
test.after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

test('the index hides each secret, as is and JSON-escaped, wherever it stands; nothing else', () => {
  const forms = secretForms([{ value: 'hunter2-Secret' }, { value: 'back\\slash' }, { value: 'ab' }]);
  // (As is, escaped once and twice (and as Python's repr() quotes it: the same as once here);
  // two-letter values are not indexed; and every piece of 10 characters.)
  const whole = ['back\\\\\\\\slash', 'back\\\\slash', 'back\\slash', 'hunter2-Secret'];
  const pieces = whole.flatMap((f) => Array.from({ length: Math.max(0, f.length - 9) }, (_, i) => f.slice(i, i + 10)));
  assert.equal(forms, [...new Set([...whole, ...pieces])].sort());
  const index = redactionIndex(forms, '00112233445566778899aabbccddeeff');
  assert.ok(isRedactionIndex(index));
  assert.not.match(JSON.stringify(index), /hunter2|slash/);
  assert.is(redactIndexed("line 3: 'hunter2-Secret!' is not valid", index), "line 3: '****!' is not valid");
  assert.is(redactIndexed('hunter2-Secrethunter2-Secret', index), '****', 'adjacent occurrences make one ****');
  assert.is(redactIndexed('"pw": "back\\\\slash", pw2=back\\slash', index), '"pw": "****", pw2=****');
  assert.is(redactIndexed('hunter2-S and nter2-Secr', index), 'hunter2-S and ****', 'a part of 10 characters or more is hidden, a shorter one not');
  assert.is(redactIndexed('Secret2-hunter', index), 'Secret2-hunter');
  assert.is(redactIndexed('', index), '');
  // Another salt: another index, the same verdicts.
  const other = redactionIndex(forms, 'ffeeddccbbaa99887766554433221100');
  assert.not.equal(other.lengths, index.lengths);
  assert.is(redactIndexed('x hunter2-Secret y', other), 'x **** y');
  // A key's body: each 64-character PEM line.
  const body = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7'.repeat(3);
  const k = redactionIndex(secretForms([{ value: body, pem: true }]), '00112233445566778899aabbccddeeff');
  assert.is(redactIndexed(`key:\n${body.slice(64, 128)}\n`, k), 'key:\n****\n');
  // A piece of a line, cut short as cloud-init's YAML errors quote it (found by a review: 32 of
  // a key line's 64 characters were printed).
  assert.is(redactIndexed(`  in "<byte string>", line 9, column 1:\n      ${body.slice(80, 112)} ... \n`, k), '  in "<byte string>", line 9, column 1:\n      **** ... \n');
  // And without an index, by its look: a base64 run of 16 or more beside `...`.
  assert.is(redactHeuristic(`      ${body.slice(80, 112)} ... `), '      **** ... ');
  assert.is(redactHeuristic('      found character ... '), '      found character ... ');
  // A URL or DSN is hidden whole, not by its pieces: they are a host, a scheme, words (found by a
  // review: rich.yml's pgurl hid every `10.10.10.10` and `postgresql` of a check's output).
  const url = redactionIndex(secretForms([{ value: 'postgres://dbuser_meta:Hunter2x@10.10.10.10:5432/meta?sslmode=prefer' }, { value: 'Hunter2x' }]), '00112233445566778899aabbccddeeff');
  assert.is(redactIndexed('server 10.10.10.10 iburst; /usr/lib/postgresql/18; sslmode=prefer', url), 'server 10.10.10.10 iburst; /usr/lib/postgresql/18; sslmode=prefer');
  assert.is(redactIndexed('url postgres://dbuser_meta:Hunter2x@10.10.10.10:5432/meta?sslmode=prefer end', url), 'url **** end');
  // Python's repr() of a value with both quotes (cloud-init's messages; found by a review: 13 of
  // its 16 characters were printed).
  const repr = redactionIndex(secretForms([{ value: `Pw'q"uo\\te #x: y` }]), '00112233445566778899aabbccddeeff');
  assert.is(redactIndexed(`{'auth_password': 'Pw\\'q"uo\\\\te #x: y'} is not valid`, repr), `{'auth_password': '****'} is not valid`);
  // Escaped twice: a file's content as a double-quoted string in the user-data, holding the
  // secret as a double-quoted string of its own (found by a review).
  const twice = redactionIndex(secretForms([{ value: 'Ml\\Pw\u0080Zz99q' }]), '00112233445566778899aabbccddeeff');
  assert.is(redactIndexed('\\        auth_password: \\"Ml\\\\\\\\Pw\u0080Zz99q\\"', twice), '\\        auth_password: \\"****\\"');
});

test('an index not as pigen writes it is not trusted', () => {
  const good = redactionIndex(['secret-one'], '00112233445566778899aabbccddeeff');
  for (const bad of [null, [], {}, { ...good, v: 2 }, { ...good, salt: 'xyz' }, { ...good, lengths: [] }, { ...good, lengths: { '0': [] } }, { ...good, lengths: { '10': ['nothex'] } }, { ...good, lengths: { '10': 'abc' } }]) {
    assert.not.ok(isRedactionIndex(bad), JSON.stringify(bad));
  }
});

test('by their look: a secret-named key\'s value, a URL\'s credentials, an auth.conf password, a key\'s base64; not paths, digests or words', () => {
  const cases: [string, string][] = [
    ['    admin_password = """fUVD_XexVbI5lMxPTqtqynFx"""', '    admin_password = ****'],
    ['  grafana_admin_password: Hunter2x', '  grafana_admin_password: ****'],
    ['{ user: dba, password: Hunter2x }', '{ user: dba, password: **** }'],
    ['baseurl=https://bob:Hunter2x@repo.example.com/el9', 'baseurl=https://****@repo.example.com/el9'],
    // (And without a scheme, as a host:port list is written; a mailto: address is none.)
    ['endpoint u:Hunter2x@logs:9428 refused', 'endpoint ****@logs:9428 refused'],
    ['receiver mailto:ops@example.com', 'receiver mailto:ops@example.com'],
    ['machine https://repo.example.com login bob password Hunter2x', 'machine https://repo.example.com login bob password ****'],
    ['MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj', '****'],
    // (A key's line may start with `/`: one did, and went through a CI run.)
    ['    /3+RLgYRksoA3IJ3sfDaKYcjj4k+4Eu5HOIm3Ds5jSFTP4T/cDf3LN6H', '    ****'],
    ['    abcdefghijKLMNOPQRSTuvwxyzABCDEFGHIJklmnopqrstUVWXYZab1', '    ****'],
    ['/etc/grafana/provisioning/datasources/pigsty-datasource-defaults.yml: ok', '/etc/grafana/provisioning/datasources/pigsty-datasource-defaults.yml: ok'],
    ['sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 differs', 'sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 differs'],
    ["line 3: 'admin_password' set twice in its section", "line 3: 'admin_password' set twice in its section"],
    ['the password is too short', 'the password is too short'],
    // Quoted after a validator's own words; a line of a double-quoted YAML scalar folded over lines.
    ['error: invalid value: admin_password = Xy7 Qz9', 'error: invalid value: admin_password = ****'],
    ['\\        auth_password: \\"Ml\\\\Pw\\"', '\\        auth_password: ****'],
    // Several errors on one line (cloud-init's schema): the value alone, to the next `, `.
    ["chpasswd.expire: 5 is not of type 'boolean', users.0: bad", 'chpasswd.expire: ****, users.0: bad'],
    ['a password: x1, b_password: y2, c: z', 'a password: ****, b_password: ****, c: z'],
    ['login failed: password incorrect', 'login failed: password incorrect'],
  ];
  for (const [text, want] of cases) assert.is(redactHeuristic(text), want, text);
  assert.is(redactValidatorText('pw hunter2-Secret, password: x', redactionIndex(['hunter2-Secret'], '00112233445566778899aabbccddeeff')), 'pw ****, password: ****');
  assert.is(redactValidatorText('nothing here', undefined), 'nothing here');
  // A long run of scheme characters: each letter after a dot was tried as a scheme's start (found
  // by a review: 300 kB took 23 s). Linear now; the credentials still go.
  const long = `admin@host: ${'a.'.repeat(150_000)} https://u:Hunter2x@h/`;
  assert.is(redactHeuristic(long), long.replace('u:Hunter2x', '****'));
});

test('pigen check prints no secret a validator quotes: with the index the build leaves, and by their look without it', async () => {
  const dir = tmp('pigen-redact-');
  temps.push(dir);
  // (Two spaces in it: a validator's message, its spaces squeezed, held it whole; found by a review.)
  const PW = 'Zq7-secret  Value-91';
  const PW2 = 'Hosts-Secret-42';
  writeFileSync(
    join(dir, 'pigsty.yml'),
    `all:\n  vars:\n    admin_ip: 10.10.10.10\n    grafana_admin_password: '${PW}'\n    pg_admin_password: ${PW2}\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n    pg-a: { hosts: { 10.10.10.11: { pg_seq: 1, pg_role: primary } }, vars: { pg_cluster: pg-a } }\n`,
  );
  assert.is((await mainIn(dir, ['secrets', 'init'])).code, 0);
  const b = await mainIn(dir, ['build']);
  assert.is(b.code, 0, b.stderr);
  const indexFile = join(dir, '.out.pigen', 'redact.json');
  assert.is(statSync(indexFile).mode & 0o777, 0o600);
  const indexText = readFileSync(indexFile, 'utf8');
  const rootfs = join(dir, 'out', 'nodes', '10.10.10.10', 'rootfs');
  const keyLines = readFileSync(join(rootfs, 'etc/pki/infra.key'), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'));
  assert.ok(keyLines.length > 0);
  for (const s of [PW, PW2, ...keyLines]) assert.not.ok(indexText.includes(s), 'the index holds hashes only');
  assert.ok(readFileSync(join(rootfs, 'etc/grafana/grafana.ini'), 'utf8').includes(PW), 'the password is in the output');

  // Validators that quote what they read: cloud-init a line of the user-data, then all of it,
  // openssl the key; and the built-in hosts check quotes a host name that happens to be a password.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'cloud-init'), '#!/bin/sh\nprintf "error: invalid value: %s\\n" "$(/bin/grep -m1 admin_password user-data)"\n/bin/cat user-data\nexit 1\n', { mode: 0o755 });
  writeFileSync(join(bin, 'openssl'), '#!/bin/sh\nfor a; do f=$a; done\n/bin/cat "$f"\nexit 1\n', { mode: 0o755 });
  appendFileSync(join(dir, 'out', 'nodes', '10.10.10.11', 'rootfs', 'etc', 'hosts'), `10.9.9.9 ${PW2}!\n`);
  const env = { PATH: bin };
  const leaks = (text: string) => [PW, PW.replace(/\s+/g, ' '), 'Value-91', PW2, ...keyLines].filter((s) => text.includes(s));

  const j = await mainIn(dir, ['check', 'out', '--json'], env);
  assert.is(j.code, 1, j.stderr);
  const report = JSON.parse(j.stdout) as { redaction: string; rows: { node: string; path: string; validator: string; result: string; message: string; output?: string }[] };
  assert.is(report.redaction, 'index');
  assert.equal(leaks(j.stdout + j.stderr), []);
  const hosts = report.rows.find((r) => r.node === '10.10.10.11' && r.path === '/etc/hosts')!;
  assert.match(hosts.message, /^line \d+: '\*\*\*\*!' is not a valid host name$/);
  const ud = report.rows.find((r) => r.node === '10.10.10.10' && r.path === 'user-data' && r.validator === 'cloud-init')!;
  assert.is(ud.result, 'FAIL');
  assert.is(ud.message, 'error: invalid value: admin_password = ****');
  assert.match(ud.output!, /admin_password = \*\*\*\*/);
  const key = report.rows.find((r) => r.path === '/etc/pki/infra.key')!;
  assert.is(key.result, 'FAIL');
  assert.match(key.output!, /-----BEGIN [A-Z ]*PRIVATE KEY-----\n\*\*\*\*/);
  const t = await mainIn(dir, ['check', 'out'], env);
  assert.is(t.code, 1);
  assert.equal(leaks(t.stdout + t.stderr), []);
  assert.not.match(t.stdout, /no redaction index/);

  // No index (an output copied elsewhere): what looks like a secret is still hidden, and the
  // check says the rest may not be.
  renameSync(indexFile, indexFile + '.away');
  const j2 = await mainIn(dir, ['check', 'out', '--json'], env);
  const r2 = JSON.parse(j2.stdout) as typeof report;
  assert.is(r2.redaction, 'look');
  assert.equal(leaks(r2.rows.filter((r) => r.path !== '/etc/hosts').map((r) => `${r.message}\n${r.output ?? ''}`).join('\n')), []);
  const t2 = await mainIn(dir, ['check', 'out'], env);
  assert.match(t2.stdout, /note: no redaction index beside out/);
  renameSync(indexFile + '.away', indexFile);

  // The index is kept (its salt, its bytes) while the secrets are the same, and follows them.
  const before = readFileSync(indexFile, 'utf8');
  assert.is((await mainIn(dir, ['build', '--set', 'node_tune=oltp'])).code, 0);
  assert.is(readFileSync(indexFile, 'utf8'), before);
  assert.is((await mainIn(dir, ['build', '--set', 'grafana_admin_password=Other-Secret-77'])).code, 0);
  const after = JSON.parse(readFileSync(indexFile, 'utf8')) as { salt: string };
  assert.is(after.salt, (JSON.parse(before) as { salt: string }).salt);
  assert.is(redactIndexed('x Other-Secret-77 y', after as never), 'x **** y');
});

test('diagnostics that quote a value cut short hide its credentials first; stray arguments are counted, not quoted', async () => {
  const dir = tmp('pigen-redact-diag-');
  temps.push(dir);
  const base = `all:\n  vars:\n    admin_ip: 10.10.10.10\n  children:\n    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }\n`;
  // (Both messages cut the value before its `@`: the credentials were no URL's to hide.)
  writeFileSync(join(dir, 'proxy.yml'), base.replace('admin_ip: 10.10.10.10', 'admin_ip: 10.10.10.10\n    proxy_env: "http://alice:Sup3rS3cretProxyPassw0rd9876@proxy.example:3128"'));
  writeFileSync(
    join(dir, 'repo.yml'),
    base.replace(
      'admin_ip: 10.10.10.10',
      "admin_ip: 10.10.10.10\n    repo_upstream:\n      - { name: x, description: X, module: node, releases: [12], arch: [x86_64, aarch64], baseurl: { default: 'https://alice:Sup3rS3cretRepoPassw0rdXYZ123456abcdefghijk;x@repo.example/deb bookworm main' } }",
    ),
  );
  for (const f of ['proxy.yml', 'repo.yml']) {
    for (const json of [[], ['--json']]) {
      const r = await mainIn(dir, ['validate', f, ...json]);
      assert.is(r.code, 2, `${f}: ${r.stdout}${r.stderr}`);
      assert.not.match(r.stdout + r.stderr, /Sup3rS3cret/, f);
    }
  }
  assert.match((await mainIn(dir, ['validate', 'proxy.yml'])).stderr, /http:\/\/\*\*\*\*@proxy/);
  const stray = await mainIn(dir, ['validate', 'proxy.yml', '--set', 'grafana_admin_password=', 'Sup3rSecretPw']);
  assert.is(stray.code, 2);
  assert.not.match(stray.stdout + stray.stderr, /Sup3rSecretPw/);
  assert.match(stray.stderr, /too many arguments: validate takes at most 1, and 1 more was given/);
});

test.run();
